//! Reaching and calling Redis, shared by every Lanes crate that talks to Redis:
//!
//! - [`Endpoint`] and [`Conn`] (module `conn`): one server or a Redis Cluster, chosen by the URL,
//!   behind one connection type.
//! - [`RetryPolicy`] retries one call a bounded number of times while Redis is unreachable, and
//!   [`is_transient`] says which errors another attempt may cure. Each crate maps [`CallError`]
//!   into its own error type.

mod conn;

pub use conn::{Conn, Endpoint, SharedOptions};

use std::future::Future;
use std::time::Duration;

use redis::{RedisError, RedisResult, RetryMethod};

/// How a call failed for good.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Every attempt failed with a transient error (connection, timeout, failover).
    #[error("redis unavailable after {attempts} attempts: {source}")]
    Unavailable {
        attempts: u32,
        #[source]
        source: RedisError,
    },
    /// Redis answered with an error another attempt would not cure (a script error, a wrong type).
    #[error("redis: {0}")]
    Redis(RedisError),
}

/// A retry policy that could never call Redis.
#[derive(Debug, thiserror::Error)]
#[error("invalid retry policy: {0}")]
pub struct InvalidPolicy(pub &'static str);

/// Bounded retries for one Redis call. After the last attempt the call fails with
/// [`CallError::Unavailable`]: a caller never proceeds as if Redis had answered.
///
/// Note that the caller's [`Conn`] also bounds each command with its own response
/// timeout and reconnects in the background.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1. Default 3.
    pub attempts: u32,
    /// Pause before the second attempt, doubled before each later one. Default 50 ms.
    pub backoff: Duration,
    /// Upper bound for one attempt, including a reconnect. Default 2 s.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_millis(50),
            attempt_timeout: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Refuses a policy that could never call Redis.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        if self.attempts == 0 {
            return Err(InvalidPolicy("attempts must be at least 1"));
        }
        if self.attempt_timeout.is_zero() {
            return Err(InvalidPolicy("attempt timeout must be positive"));
        }
        Ok(())
    }

    /// Runs `call` until it succeeds, fails for good, or the attempts run out.
    pub async fn run<T, F, Fut>(
        &self,
        op: &'static str,
        name: &str,
        mut call: F,
    ) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            let outcome = match tokio::time::timeout(self.attempt_timeout, call()).await {
                Ok(outcome) => outcome,
                Err(_elapsed) => Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "redis call timed out",
                ))),
            };
            let err = match outcome {
                Ok(value) => return Ok(value),
                Err(err) if !is_transient(&err) => return Err(CallError::Redis(err)),
                Err(err) => err,
            };
            if attempt >= self.attempts {
                tracing::warn!(op, name, attempts = attempt, error = %err, "redis unavailable, giving up");
                return Err(CallError::Unavailable {
                    attempts: attempt,
                    source: err,
                });
            }
            tracing::debug!(op, name, attempt, error = %err, "redis call failed, retrying");
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }
}

/// Errors that another attempt may cure: the connection, a timeout, a server that is loading or
/// failing over. Script errors and wrong types are permanent.
pub fn is_transient(err: &RedisError) -> bool {
    if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
    {
        return true;
    }
    matches!(
        err.retry_method(),
        RetryMethod::Reconnect
            | RetryMethod::RetryImmediately
            | RetryMethod::WaitAndRetry
            | RetryMethod::ReconnectFromInitialConnections
    )
}
