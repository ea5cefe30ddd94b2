//! Measuring a limiter: drive it from many tasks, check the window guarantee on the grants'
//! Redis timestamps, and time single decisions. Used by the benchmark binary and the tests.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clock::ServerTime;
use crate::error::{Error, Result};
use crate::limiter::Limiter;
use crate::rate::Rate;

/// Runs `tasks` concurrent loops of `limiter.acquire(1)` for `run_for`, and returns the Redis
/// timestamp of every grant (unsorted).
///
/// A loop stops after the first grant past `run_for`, never in the middle of a wait, so no
/// booked slot is wasted and the grants stay back to back.
pub async fn hammer(limiter: &Limiter, tasks: usize, run_for: Duration) -> Result<Vec<ServerTime>> {
    let deadline = Instant::now() + run_for;
    let never = CancellationToken::new();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let limiter = limiter.clone();
        let never = never.clone();
        set.spawn(async move {
            let mut grants = Vec::new();
            while Instant::now() < deadline {
                grants.push(limiter.acquire(1, &never).await?.at);
            }
            Ok::<_, Error>(grants)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(grants) => all.extend(grants?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_cancelled) => return Err(Error::Cancelled),
        }
    }
    Ok(all)
}

/// What [`check_windows`] found in a list of grants.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowReport {
    pub grants: usize,
    pub window: Duration,
    /// Most grants seen in any closed window `[t, t + window]`.
    pub max_in_window: usize,
    /// What the rate allows in such a window: `⌊count × window / period⌋ + burst`.
    pub limit_in_window: u64,
    /// First grant to last grant, Redis clock.
    pub elapsed: Duration,
    /// Grants delivered over what the rate allows in `elapsed` (`grants / (rate × elapsed)`);
    /// a saturated limiter is at or slightly above 1.0.
    pub delivered_ratio: f64,
    /// Smallest gap between two consecutive grants.
    pub min_gap: Option<Duration>,
}

impl WindowReport {
    /// No window held more than the rate allows.
    pub fn within_limit(&self) -> bool {
        self.max_in_window as u64 <= self.limit_in_window
    }
}

/// Checks grant timestamps against `rate`: the fullest window of length `window` (every window
/// starting at a grant, which is where the fullest one starts) and the delivered fraction.
pub fn check_windows(grants: &[ServerTime], rate: &Rate, window: Duration) -> WindowReport {
    let mut times: Vec<u64> = grants.iter().map(|t| t.as_micros()).collect();
    times.sort_unstable();
    let window_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
    let mut max_in_window = 0;
    let mut end = 0;
    for (start, &t) in times.iter().enumerate() {
        while end < times.len() && times[end] <= t.saturating_add(window_us) {
            end += 1;
        }
        max_in_window = max_in_window.max(end - start);
    }
    let elapsed = match (times.first(), times.last()) {
        (Some(first), Some(last)) => Duration::from_micros(last - first),
        _ => Duration::ZERO,
    };
    let allowed = rate.per_second_f64() * elapsed.as_secs_f64();
    let delivered_ratio = if allowed > 0.0 {
        times.len() as f64 / allowed
    } else {
        0.0
    };
    let min_gap = times
        .windows(2)
        .map(|w| Duration::from_micros(w[1] - w[0]))
        .min();
    WindowReport {
        grants: times.len(),
        window,
        max_in_window,
        limit_in_window: rate.max_in_window(window),
        elapsed,
        delivered_ratio,
        min_gap,
    }
}

/// Latency of single decisions, from [`decision_latency`].
#[derive(Clone, Debug, PartialEq)]
pub struct LatencySummary {
    pub samples: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// How many of the samples were [`Decision::Allowed`](crate::Decision::Allowed).
    pub allowed: usize,
}

/// Times `samples` sequential [`Limiter::try_acquire`] calls (one `EVALSHA` round trip each),
/// after one warm-up call that loads the script.
pub async fn decision_latency(limiter: &Limiter, samples: usize) -> Result<LatencySummary> {
    limiter.try_acquire(1).await?;
    let mut took = Vec::with_capacity(samples);
    let mut allowed = 0;
    for _ in 0..samples {
        let started = Instant::now();
        if limiter.try_acquire(1).await?.is_allowed() {
            allowed += 1;
        }
        took.push(started.elapsed());
    }
    took.sort_unstable();
    let at = |q: f64| {
        took.get(((took.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let total: Duration = took.iter().sum();
    Ok(LatencySummary {
        samples,
        mean: if samples == 0 {
            Duration::ZERO
        } else {
            total.div_f64(samples as f64)
        },
        p50: at(0.50),
        p99: at(0.99),
        max: took.last().copied().unwrap_or_default(),
        allowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: &[u64]) -> Vec<ServerTime> {
        ms.iter()
            .map(|m| ServerTime::from_micros(m * 1000))
            .collect()
    }

    #[test]
    fn counts_the_fullest_closed_window() {
        let rate: Rate = "2/s".parse().expect("valid rate");
        // 0, 500, 1000 fit in [0, 1000]: 3 = 2 + burst 1, still within the limit.
        let report = check_windows(&at(&[1000, 0, 500]), &rate, Duration::from_secs(1));
        assert_eq!(
            (report.grants, report.max_in_window, report.limit_in_window),
            (3, 3, 3)
        );
        assert!(report.within_limit());
        assert_eq!(report.min_gap, Some(Duration::from_millis(500)));
        assert_eq!(report.elapsed, Duration::from_secs(1));
        assert!((report.delivered_ratio - 1.5).abs() < 1e-9);

        let report = check_windows(&at(&[0, 400, 800, 1000]), &rate, Duration::from_secs(1));
        assert_eq!(report.max_in_window, 4);
        assert!(!report.within_limit());
    }

    #[test]
    fn empty_input_is_an_empty_report() {
        let rate: Rate = "2/s".parse().expect("valid rate");
        let report = check_windows(&[], &rate, Duration::from_secs(1));
        assert_eq!(
            (report.grants, report.max_in_window, report.min_gap),
            (0, 0, None)
        );
    }
}
