//! Integration tests of the broker: `app()` driven with `tower::ServiceExt::oneshot` against a
//! real Redis, each test under its own key prefix.

mod auth;
mod bank;
mod channels;
mod dashboard_browser;
mod fuzz;
mod inspect;
mod inspect_keys;
mod jobs;
mod metrics;
mod ops;
mod photos;
mod redis_restart;
mod support;
mod tasks;
mod tickets;
