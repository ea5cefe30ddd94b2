//! Per-kind policies: retry budget, exponential backoff with full jitter, time limits.

use std::time::Duration;

/// How failed attempts of a kind are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; then the task is dead-lettered.
    pub max_retries: u32,
    /// Backoff ceiling for the first retry; doubles each retry.
    pub base: Duration,
    /// Backoff never exceeds this.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Delay before the retry that follows attempt `attempt` (1-based): uniformly random in
    /// `[0, min(cap, base * 2^(attempt-1))]` ("full jitter"), so retrying workers spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        let ceiling = self.base.saturating_mul(1u32 << exp.min(31)).min(self.cap);
        let ms = ceiling.as_millis() as u64;
        Duration::from_millis(if ms == 0 { 0 } else { fastrand::u64(0..=ms) })
    }
}

/// Settings for one task kind.
#[derive(Debug, Clone, Default)]
pub struct KindConfig {
    pub retry: RetryPolicy,
    /// After this long the handler's cancellation fires (it may clean up and return).
    pub soft_limit: Option<Duration>,
    /// After this long the handler is dropped and the attempt fails.
    pub hard_limit: Option<Duration>,
}

impl KindConfig {
    pub fn max_retries(mut self, n: u32) -> Self {
        self.retry.max_retries = n;
        self
    }

    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.retry.base = base;
        self.retry.cap = cap;
        self
    }

    pub fn soft_limit(mut self, limit: Duration) -> Self {
        self.soft_limit = Some(limit);
        self
    }

    pub fn hard_limit(mut self, limit: Duration) -> Self {
        self.hard_limit = Some(limit);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_the_cap() {
        let p = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for attempt in 1..=12u32 {
            let ceiling = Duration::from_millis(100 * (1u64 << (attempt - 1).min(20))).min(p.cap);
            for _ in 0..200 {
                assert!(p.backoff(attempt) <= ceiling, "attempt {attempt}");
            }
        }
        // Full jitter: the spread covers the range, not just the ceiling.
        let samples: Vec<_> = (0..500).map(|_| p.backoff(4)).collect();
        assert!(samples.iter().any(|d| *d < Duration::from_millis(200)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(600)));
    }
}
