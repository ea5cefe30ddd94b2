//! Process-level tests of the `worker` binary: real processes, real signals, a real Redis.

mod cli;
mod keys;
mod rate_limit;
mod redis_restart;
mod signals;
mod support;
