//! The reliability campaign behind `make chaos`: "nothing lost when a worker dies", proved
//! against real processes, real signals and a real Redis, and the broker under load.
//!
//! Modules:
//! - [`run`]: the controller (`chaos run`): its own Redis and worker processes, the workload
//!   in waves, SIGKILLs and restarts, a zombie frozen past its lease, Redis frozen.
//! - [`worker`]: a chaos worker process (`chaos worker`): the engine's `Worker` with handlers
//!   that record every attempt, and a write observer that records every ack's fate.
//! - [`workload`]: the mixed workload (generic, keyed `serial`, batches) and designed failures.
//! - [`record`]: the independent record files (JSON lines, `O_APPEND`).
//! - [`check`]: the verdict: lost, duplicates acked, order violations, overlaps, batch counters.
//! - [`procs`]: the processes a campaign owns (Redis, workers), signals, RSS.
//! - [`load`]: the broker under `wrk` (`chaos load`): requests/s, p99, errors, memory.

pub mod check;
pub mod load;
pub mod procs;
pub mod record;
pub mod run;
pub mod worker;
pub mod workload;
