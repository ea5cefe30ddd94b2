//! Integration tests of the engine against a real Redis (started by lanes-testkit).

mod batches;
mod cancel;
mod cluster;
mod delivery;
mod enqueue;
mod fuzz;
mod keys;
mod rate_limits;
mod retries;
mod shutdown;
mod support;
mod time_limits;
