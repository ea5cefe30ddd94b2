//! Integration tests of the broker: `app()` driven with `tower::ServiceExt::oneshot` against a
//! real Redis, each test under its own key prefix.

mod auth;
mod bank;
mod inspect;
mod ops;
mod support;
mod tasks;
mod tickets;
