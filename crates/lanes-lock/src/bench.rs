//! Measuring locks: the latency of an uncontended acquire + release, for the benchmark binary
//! ("lock acquire+release latency p50/p99").

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::locks::{DEFAULT_TTL, Locks};

/// Latency of single operations, from [`acquire_release_latency`].
#[derive(Clone, Debug, PartialEq)]
pub struct LatencySummary {
    pub samples: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl LatencySummary {
    /// Summarises `took` (any order).
    pub fn from_samples(mut took: Vec<Duration>) -> Self {
        took.sort_unstable();
        let at = |q: f64| {
            took.get(((took.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        let total: Duration = took.iter().sum();
        Self {
            samples: took.len(),
            mean: if took.is_empty() {
                Duration::ZERO
            } else {
                total.div_f64(took.len() as f64)
            },
            p50: at(0.50),
            p99: at(0.99),
            max: took.last().copied().unwrap_or_default(),
        }
    }
}

/// Times `samples` sequential uncontended [`Locks::try_lock`] + [`Guard::release`] pairs (two
/// `EVALSHA` round trips each, plus starting and stopping the renewal task), after one warm-up
/// pair that loads the scripts. Uses a scratch lock key under `locks`' prefix and deletes its
/// keys afterwards.
///
/// [`Guard::release`]: crate::Guard::release
pub async fn acquire_release_latency(locks: &Locks, samples: usize) -> Result<LatencySummary> {
    let key = format!("bench:latency:{}", uuid::Uuid::now_v7());
    let outcome = time_pairs(locks, &key, samples).await;
    let purged = locks.purge(&key).await;
    let took = outcome?;
    purged?;
    Ok(LatencySummary::from_samples(took))
}

async fn time_pairs(locks: &Locks, key: &str, samples: usize) -> Result<Vec<Duration>> {
    let mut took = Vec::with_capacity(samples);
    for i in 0..=samples {
        let started = Instant::now();
        let guard = locks.try_lock(key, DEFAULT_TTL).await?.ok_or_else(|| {
            Error::BadReply(format!("benchmark lock {key:?} is held by someone else"))
        })?;
        guard.release().await?;
        if i > 0 {
            took.push(started.elapsed());
        }
    }
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_samples() {
        let took = (1..=100).rev().map(Duration::from_millis).collect();
        let s = LatencySummary::from_samples(took);
        assert_eq!(s.samples, 100);
        assert_eq!(s.p50, Duration::from_millis(51));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(s.mean, Duration::from_micros(50_500));
    }

    #[test]
    fn no_samples_is_all_zero() {
        let s = LatencySummary::from_samples(Vec::new());
        assert_eq!(
            (s.samples, s.p50, s.p99, s.max),
            (0, Duration::ZERO, Duration::ZERO, Duration::ZERO)
        );
    }
}
