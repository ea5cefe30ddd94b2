//! Integration tests of the engine against a real Redis (started by lanes-testkit).

mod cancel;
mod delivery;
mod enqueue;
mod retries;
mod shutdown;
mod support;
mod time_limits;
