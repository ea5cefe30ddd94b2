//! The crate's one error type: what went wrong, named for what the caller can do about it.

/// Everything a lock call can fail with.
///
/// Expected conditions are not errors: a lock held by someone else is `Ok(None)`, a wait that
/// ran out is `Ok(None)`, a release of a lock that was already lost is `Ok(false)`, a stale
/// fenced write is `Ok(false)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lock key (or fenced resource name) cannot be used in a Redis key: pick another.
    #[error("invalid lock key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    /// A configuration value (TTL, prefix, retry policy, ...) is out of range: fix the
    /// configuration.
    #[error("invalid {what}: {reason}")]
    InvalidConfig { what: &'static str, reason: String },

    /// Redis did not answer after every retry: no lock was acquired (one that a lost reply may
    /// have taken is released in the background, or expires with its TTL); try again later or
    /// fail the work.
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

    /// The cancellation token fired before the lock was acquired; nothing is held.
    #[error("cancelled")]
    Cancelled,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
