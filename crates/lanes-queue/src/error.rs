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
    /// A delay too long to represent.
    #[error("delay {delay:?} is too long")]
    InvalidDelay { delay: Duration },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
