//! What the rate-limited fakes share: a token bucket (the way SP-API and Keepa meter calls) and
//! the counters each fake exposes at `GET /<fake>/_stats`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A token bucket: `rate` tokens per second, holding at most `burst`; it starts full.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

/// A refused take: the bucket holds `tokens` (< the amount asked) and will hold enough again in
/// `refill_in`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refused {
    pub tokens: f64,
    pub refill_in: Duration,
}

impl TokenBucket {
    /// `rate` tokens per second (at least 0.001), `burst` tokens at most (at least 1).
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: rate.max(0.001),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> u32 {
        self.burst as u32
    }

    /// Takes `n` tokens if the bucket holds them and returns what is left.
    pub fn take(&self, n: u32) -> Result<f64, Refused> {
        let n = f64::from(n.max(1));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        if tokens + 1e-9 >= n {
            *state = (tokens - n, now);
            Ok(tokens - n)
        } else {
            *state = (tokens, now);
            Err(Refused {
                tokens,
                refill_in: Duration::from_secs_f64((n - tokens) / self.rate),
            })
        }
    }
}

/// Request counters of one fake.
#[derive(Debug)]
pub struct QuotaStats {
    start: Instant,
    served: AtomicU64,
    refused: AtomicU64,
    ok: AtomicU64,
    not_found: AtomicU64,
    server_errors: AtomicU64,
    bad_requests: AtomicU64,
    /// (second since start, requests served in it, the highest such count).
    window: Mutex<(u64, u64, u64)>,
}

/// What `GET /<fake>/_stats` answers.
#[derive(Debug, Clone, Serialize)]
pub struct StatsSnapshot {
    /// Requests admitted by the rate limit (answered with anything but 429).
    pub served: u64,
    /// Requests refused with 429.
    pub refused_429: u64,
    /// Most requests admitted within one wall-clock second.
    pub peak_per_second: u64,
    pub ok: u64,
    pub not_found: u64,
    pub server_errors: u64,
    pub bad_requests: u64,
    /// The bucket the fake enforces.
    pub rate_per_second: f64,
    pub burst: u32,
}

impl Default for QuotaStats {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            served: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            not_found: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            bad_requests: AtomicU64::new(0),
            window: Mutex::new((0, 0, 0)),
        }
    }
}

/// How an admitted request was answered, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    NotFound,
    ServerError,
    BadRequest,
}

impl QuotaStats {
    /// Counts a request the rate limit admitted.
    pub fn admitted(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
        let second = self.start.elapsed().as_secs();
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.0 != second {
            *w = (second, 0, w.2);
        }
        w.1 += 1;
        w.2 = w.2.max(w.1);
    }

    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn answered(&self, a: Answer) {
        let c = match a {
            Answer::Ok => &self.ok,
            Answer::NotFound => &self.not_found,
            Answer::ServerError => &self.server_errors,
            Answer::BadRequest => &self.bad_requests,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, bucket: &TokenBucket) -> StatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let peak = self.window.lock().map(|w| w.2).unwrap_or(0);
        StatsSnapshot {
            served: g(&self.served),
            refused_429: g(&self.refused),
            peak_per_second: peak,
            ok: g(&self.ok),
            not_found: g(&self.not_found),
            server_errors: g(&self.server_errors),
            bad_requests: g(&self.bad_requests),
            rate_per_second: bucket.rate(),
            burst: bucket.burst(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_grants_its_burst_then_refuses_with_the_refill_time() {
        let b = TokenBucket::new(10.0, 3);
        assert!(b.take(1).is_ok());
        assert!(b.take(1).is_ok());
        assert!(b.take(1).is_ok());
        let refused = b.take(1).expect_err("empty");
        assert!(refused.refill_in <= Duration::from_millis(100));
        assert!(refused.refill_in > Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(120));
        assert!(b.take(1).is_ok());
    }
}
