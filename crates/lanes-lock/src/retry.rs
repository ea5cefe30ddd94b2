//! How a Redis call is retried when Redis is unreachable, and how its failure is classified.

use std::future::Future;
use std::time::Duration;

use redis::{RedisError, RedisResult, RetryMethod};

use crate::error::{Error, Result};

/// Bounded retries for one Redis call. After the last attempt the call fails with
/// [`Error::Unavailable`]; a lock is never reported acquired without an answer from Redis.
///
/// Note that the caller's `ConnectionManager` also bounds each command with its own response
/// timeout (500 ms by default in the redis crate) and reconnects in the background.
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
    pub(crate) fn validate(&self) -> Result<()> {
        if self.attempts == 0 {
            return Err(Error::InvalidConfig {
                what: "retry policy",
                reason: "attempts must be at least 1".into(),
            });
        }
        if self.attempt_timeout.is_zero() {
            return Err(Error::InvalidConfig {
                what: "retry policy",
                reason: "attempt timeout must be positive".into(),
            });
        }
        Ok(())
    }

    /// Runs `call` until it succeeds, fails for good, or the attempts run out.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        op: &'static str,
        name: &str,
        mut call: F,
    ) -> Result<T>
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
                Err(err) if !is_transient(&err) => return Err(Error::Redis(err)),
                Err(err) => err,
            };
            if attempt >= self.attempts {
                tracing::warn!(op, lock = name, attempts = attempt, error = %err, "redis unavailable, giving up");
                return Err(Error::Unavailable {
                    attempts: attempt,
                    source: err,
                });
            }
            tracing::debug!(op, lock = name, attempt, error = %err, "redis call failed, retrying");
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }
}

/// Errors that another attempt may cure: the connection, a timeout, a server that is loading or
/// failing over. Script errors and wrong types are permanent.
fn is_transient(err: &RedisError) -> bool {
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
