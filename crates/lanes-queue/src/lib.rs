//! Lanes' engine: a Redis-backed task queue with leases, fencing tokens, retries, delays,
//! priorities, time limits, cancellation, and the worker runtime that consumes it.
//!
//! Modules:
//! - [`client`]: `Lanes`, the client producers and workers share (enqueue, fetch, ack, fail, ...).
//! - [`worker`]: `Worker`, the runtime that runs handlers from one or more queues.
//! - [`batch`]: batches: a parent job with children, atomic progress, finalize exactly once.
//! - [`handler`]: the `Handler` trait, `TaskContext` and `TaskError` handlers use.
//! - [`retry`]: per-kind retry policies and time limits.
//! - [`limits`]: per-queue rate limits (one distributed limiter per queue, from `lanes-ratelimit`).
//! - [`registry`]: worker records (`inspect active|reserved|stats`).
//! - [`admin`]: read-mostly operator queries for the broker (many queues' stats in one trip).
//! - `held`: the leases one worker holds, keyed by (task id, fencing token).
//! - [`task`]: task ids, states, `NewTask` and `TaskInfo`.
//! - [`keys`]: the Redis key schema (the only place key names are built).
//! - [`codec`]: payload encoding and compression.
//! - `scripts`: the Lua scripts under `lua/`.
//!
//! A task's life: `enqueue` → ready (or delayed) → `fetch` leases it with a fencing token →
//! the handler runs while the heartbeat renews the lease → `ack` (succeeded), `fail` (retrying →
//! ready again, or dead / failed in the dead-letter set, or cancelled), or `release` (handed
//! back on shutdown). A lease that is not renewed expires and the reaper returns the task.

pub mod admin;
pub mod batch;
pub mod client;
pub mod codec;
pub mod error;
pub mod handler;
mod held;
pub mod keys;
pub mod limits;
pub mod registry;
pub mod retry;
mod scripts;
pub mod task;
pub mod worker;

pub use batch::{
    BatchCancel, BatchEvent, BatchId, BatchInfo, BatchSpec, BatchState, ChildProgress,
};
pub use client::{
    CancelOutcome, Config, Enqueued, FailMode, FetchBatch, Fetched, KeyStatus, Lanes, Lease,
    QueueStats, Renewal,
};
pub use error::{Error, Result};
pub use handler::{CancelReason, Handler, TaskContext, TaskError, TaskResult};
pub use registry::{TaskSummary, WorkerInfo, WorkerStats};
pub use retry::{KindConfig, RetryPolicy};
pub use task::{KeyPolicy, NewTask, TaskId, TaskInfo, TaskState};
pub use worker::{Worker, WorkerConfig, WorkerReport, WriteOutcome, WriteReport};
