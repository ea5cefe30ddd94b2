//! Process-level tests of the `worker` binary: real processes, real signals, a real Redis.

mod cli;
mod signals;
mod support;
