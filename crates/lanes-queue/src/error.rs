//! The engine's error type.

use std::time::Duration;

/// What can go wrong talking to the engine, named for what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis could not be reached or refused a command; retrying later may work.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A queue name outside `[A-Za-z0-9_-]{1,64}`.
    #[error("invalid queue name {name:?}: use 1 to 64 of A-Z a-z 0-9 _ -")]
    InvalidQueue { name: String },
    /// A task kind that is empty, too long or not printable.
    #[error("invalid task kind {kind:?}: use 1 to 128 printable characters")]
    InvalidKind { kind: String },
    /// A string that is not a Lanes task id (`<queue>.<32 hex>`).
    #[error("invalid task id {id:?}: expected <queue>.<id>")]
    InvalidTaskId { id: String },
    /// A priority outside 0..=9.
    #[error("invalid priority {priority}: use 0 (lowest) to 9 (highest)")]
    InvalidPriority { priority: u8 },
    /// The payload is larger than the configured limit.
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
    /// The payload could not be serialized to JSON.
    #[error("payload does not serialize: {0}")]
    Payload(#[from] serde_json::Error),
    /// An ack, progress or result write carried a fencing token that is no longer current:
    /// the lease expired and the task belongs to someone else now.
    #[error("stale lease for task {id}: the lease expired and was given to another worker")]
    StaleLease { id: String },
    /// A key that is empty, longer than 256 bytes, or holds control characters.
    #[error("invalid key {key:?}: use 1 to 256 bytes without control characters")]
    InvalidKey { key: String },
    /// A key policy other than serial, reject or dedupe.
    #[error("unknown key policy {policy:?}: use serial, reject or dedupe")]
    InvalidKeyPolicy { policy: String },
    /// A key concurrency of 0, or above 1 for a reject/dedupe key.
    #[error(
        "invalid key concurrency {concurrency} for policy {policy}: use at least 1 (exactly 1 for reject and dedupe)"
    )]
    InvalidKeyConcurrency { concurrency: u32, policy: String },
    /// A `reject` key already has a task queued or running.
    #[error("key {key:?} already has task {task} queued or running")]
    KeyBusy { key: String, task: String },
    /// A delay too long to represent.
    #[error("delay {delay:?} is too long")]
    InvalidDelay { delay: Duration },
    /// A queue's rate limiter could not be set up (a prefix it cannot use) or could not reach
    /// Redis after its bounded retry; nothing was fetched without a grant.
    #[error("rate limiter: {0}")]
    RateLimit(#[from] lanes_ratelimit::Error),
    /// A batch that cannot be created as asked (a keyed child or finalize task, too many children).
    #[error("invalid batch: {reason}")]
    InvalidBatch { reason: String },
    /// A string that is not a batch id (`<queue>.<32 hex>`).
    #[error("invalid batch id {id:?}: expected <queue>.<id>")]
    InvalidBatchId { id: String },
    /// A batch write (progress, result) from a task that belongs to no batch.
    #[error("task {id} is not part of a batch")]
    NotInBatch { id: String },
    /// No such batch: it never existed, or it finished and expired.
    #[error("no batch {id} (it never existed, or it finished and expired)")]
    BatchNotFound { id: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
