//! The crate's one error type: what went wrong, named for what the caller can do about it.

/// Everything a rate limiter or semaphore call can fail with.
///
/// Expected conditions are not errors: a limiter that says "not yet" answers
/// [`Decision::Wait`](crate::Decision::Wait), a full semaphore answers `Ok(None)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The rate string or numbers are malformed or out of range: fix the configuration.
    #[error("invalid rate {input:?}: {reason}")]
    InvalidRate { input: String, reason: String },

    /// A limiter, semaphore or key prefix name cannot be used in a Redis key: pick another.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// A configuration value (capacity, lease TTL, ...) is out of range: fix the configuration.
    #[error("invalid {what}: {reason}")]
    InvalidConfig { what: &'static str, reason: String },

    /// More tokens were asked for at once than the burst can ever hold (or zero): ask for fewer.
    #[error(
        "cannot take {requested} tokens at once from limiter {limiter:?}: ask for 1 to {burst}"
    )]
    InvalidAmount {
        limiter: String,
        requested: u32,
        burst: u32,
    },

    /// Redis did not answer after every retry: nothing was granted; try again later or fail the
    /// work. A limiter never lets work through when it cannot reach Redis.
    #[error("redis unavailable after {attempts} attempts")]
    Unavailable {
        attempts: u32,
        #[source]
        source: redis::RedisError,
    },

    /// Redis answered with an error that retrying will not fix (a wrong key type, a script
    /// error, a refused command).
    #[error("redis command failed")]
    Redis(#[source] redis::RedisError),

    /// Redis answered something the crate's scripts never return (a key overwritten by other
    /// software, or a version mismatch).
    #[error("unexpected reply from redis: {0}")]
    BadReply(String),

    /// The cancellation token fired before the call could finish; nothing is held.
    #[error("cancelled")]
    Cancelled,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
