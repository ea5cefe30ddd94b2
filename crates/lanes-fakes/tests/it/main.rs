//! Integration tests of the fakes: wire shapes, errors and rate limits, through `app()` with
//! `oneshot` and through a real server bound on 127.0.0.1:0.

mod bank;
mod channels;
mod gemini;
mod keepa;
mod spapi;
mod support;
