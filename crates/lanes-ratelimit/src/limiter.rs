//! `Limiter`: a named rate limiter shared by every process, one GCRA on the Redis clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::ServerTime;
use crate::error::{Error, Result};
use crate::keys::{LimiterKeys, check_name};
use crate::limits::Limits;
use crate::rate::Rate;
use crate::scripts;

/// Default for [`Limiter::with_lookahead`].
pub const DEFAULT_LOOKAHEAD: Duration = Duration::from_millis(25);
/// Longest accepted pause.
const MAX_PAUSE: Duration = Duration::from_secs(365 * 24 * 3600);

/// A named rate limiter: every process that uses the same prefix and name draws from it.
///
/// Decisions are taken by one Lua script (GCRA) on the Redis clock, so the limit holds across
/// processes and machines whatever their local clocks say: in any window of length `W`, at most
/// `count × W / period + burst` grants, and a saturated limiter hands out its full rate.
///
/// Cheap to clone; clones share the same limiter.
#[derive(Clone)]
pub struct Limiter {
    limits: Limits,
    name: Arc<str>,
    rate: Rate,
    keys: Arc<LimiterKeys>,
    lookahead: Duration,
    registered: Arc<AtomicBool>,
}

/// The answer of [`Limiter::try_acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The tokens are taken: go ahead now.
    Allowed,
    /// Nothing was taken; the tokens could be granted after this long, unless someone else takes
    /// them first or a pause is set.
    Wait(Duration),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed)
    }
}

/// A grant returned by [`Limiter::acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grant {
    /// The instant, on the Redis clock, the grant counts at. `acquire` returns at (or just after)
    /// this instant.
    pub at: ServerTime,
}

/// A snapshot of a limiter, from [`Limiter::state`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimiterState {
    /// The rate this handle is configured with.
    pub rate: Rate,
    /// The Redis clock when the snapshot was taken.
    pub now: ServerTime,
    /// Tokens that could be granted right now (0 to burst; 0 while paused).
    pub available: u32,
    /// Time until one more token can be granted (zero when `available > 0`).
    pub next_free: Duration,
    /// When the limiter is paused by [`Limiter::pause_for`], the end of the pause.
    pub paused_until: Option<ServerTime>,
}

struct Reply {
    granted: bool,
    at: ServerTime,
    now: ServerTime,
}

impl Reply {
    fn wait(&self) -> Duration {
        self.at.saturating_duration_since(self.now)
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("name", &self.name)
            .field("rate", &self.rate.to_string())
            .field("lookahead", &self.lookahead)
            .finish()
    }
}

impl Limiter {
    /// The limiter `name` under `limits`' prefix. Refuses names that cannot live in a key.
    pub fn new(limits: &Limits, name: &str, rate: Rate) -> Result<Self> {
        check_name(name)?;
        Ok(Self {
            limits: limits.clone(),
            name: name.into(),
            rate,
            keys: Arc::new(limits.keys.limiter(name)),
            lookahead: DEFAULT_LOOKAHEAD,
            registered: Arc::new(AtomicBool::new(false)),
        })
    }

    /// How far ahead [`acquire`](Self::acquire) may book a slot (default 25 ms; zero disables
    /// booking).
    ///
    /// A waiting `acquire` wakes `lookahead` before its slot and books it in Redis, then sleeps
    /// the rest. Booking ahead is what lets a strictly spaced limiter (burst 1) deliver its full
    /// rate: without it, every late wake-up (timer granularity, scheduling, the round trip)
    /// would be lost capacity, since GCRA never hands back time that passed unused. The slot
    /// counts at its booked instant, so the window guarantee is unchanged. Two costs, each at
    /// most `lookahead` wide: a slot booked by a call that is then cancelled is wasted, and
    /// slots booked before a [`pause_for`](Self::pause_for) still go ahead.
    pub fn with_lookahead(mut self, lookahead: Duration) -> Self {
        self.lookahead = lookahead;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    pub fn lookahead(&self) -> Duration {
        self.lookahead
    }

    /// Takes `n` tokens now if the limiter allows it; one `EVALSHA` round trip.
    ///
    /// `Ok(Decision::Wait(d))` is the normal "not yet"; errors are for bad `n` and for a Redis
    /// that does not answer (never a silent pass).
    pub async fn try_acquire(&self, n: u32) -> Result<Decision> {
        let reply = self.decide(n, Duration::ZERO).await?;
        Ok(if reply.granted {
            Decision::Allowed
        } else {
            Decision::Wait(reply.wait())
        })
    }

    /// Takes `n` tokens, waiting as long as needed, or fails with [`Error::Cancelled`] when
    /// `cancel` fires first.
    ///
    /// It sleeps for the wait Redis reports (less the lookahead, see
    /// [`with_lookahead`](Self::with_lookahead)) and asks again; it never polls in a loop.
    #[tracing::instrument(level = "debug", skip(self, cancel), fields(limiter = %self.name))]
    pub async fn acquire(&self, n: u32, cancel: &CancellationToken) -> Result<Grant> {
        loop {
            let reply = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                reply = self.decide(n, self.lookahead) => reply?,
            };
            let wait = reply.wait();
            if reply.granted {
                if !wait.is_zero() {
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => {
                            tracing::debug!(wait_us = as_micros(wait), "cancelled before a booked slot");
                            return Err(Error::Cancelled);
                        }
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                return Ok(Grant { at: reply.at });
            }
            let nap = wait.saturating_sub(self.lookahead);
            tracing::trace!(wait_us = as_micros(wait), "rate limited, sleeping");
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Pauses the limiter for every process until `duration` from now (Redis clock), for
    /// example when an API answers 429 with a retry hint. Never shortens a longer pause already
    /// set. Returns the end of the pause now in force.
    ///
    /// Every decision taken after this call waits for the pause to end; slots already booked
    /// (at most [`lookahead`](Self::with_lookahead) ahead) still go.
    #[tracing::instrument(level = "debug", skip(self), fields(limiter = %self.name))]
    pub async fn pause_for(&self, duration: Duration) -> Result<ServerTime> {
        if duration > MAX_PAUSE {
            return Err(Error::InvalidConfig {
                what: "pause",
                reason: format!("{duration:?} is longer than 365 days"),
            });
        }
        self.ensure_registered().await?;
        let pause_us = as_micros(duration);
        let values: Vec<i64> = self
            .limits
            .retry
            .run("pause limiter", &self.name, || {
                let mut conn = self.limits.conn.clone();
                let mut call = scripts::PAUSE.prepare_invoke();
                call.key(&self.keys.pause).arg(pause_us);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        let [until, _now] = values[..] else {
            return Err(Error::BadReply(format!("pause returned {values:?}")));
        };
        let until = ServerTime::from_reply(until);
        tracing::info!(
            pause_ms = duration.as_millis() as u64,
            until_us = until.as_micros(),
            "limiter paused"
        );
        Ok(until)
    }

    /// Ends a pause early (an operator's override); a no-op when the limiter is not paused.
    pub async fn clear_pause(&self) -> Result<()> {
        self.limits
            .retry
            .run("clear pause", &self.name, || {
                let mut conn = self.limits.conn.clone();
                let key = self.keys.pause.clone();
                async move {
                    redis::AsyncCommands::del(&mut conn, key)
                        .await
                        .map(|_: usize| ())
                }
            })
            .await
            .map_err(Error::from)
    }

    /// Tokens available now, time to the next free slot and the pause, read on the Redis clock
    /// without taking anything.
    pub async fn state(&self) -> Result<LimiterState> {
        let values: Vec<i64> = self
            .limits
            .retry
            .run("limiter state", &self.name, || {
                let mut conn = self.limits.conn.clone();
                let mut call = scripts::LIMITER_STATE.prepare_invoke();
                call.key(&self.keys.tat).key(&self.keys.pause);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        let [now, tat, pause] = values[..] else {
            return Err(Error::BadReply(format!(
                "limiter state returned {values:?}"
            )));
        };
        Ok(self.snapshot(now, tat, pause))
    }

    fn snapshot(&self, now: i64, tat: i64, pause: i64) -> LimiterState {
        let interval = i128::from(self.rate.interval_micros().max(1));
        let burst = i128::from(self.rate.burst());
        let (now, tat, pause) = (i128::from(now), i128::from(tat.max(now)), i128::from(pause));
        let paused = pause > now;
        // GCRA: k more tokens fit now iff now >= tat + (k - burst) * interval.
        let backlog_slots = (tat - now + interval - 1) / interval;
        let available = if paused {
            0
        } else {
            (burst - backlog_slots).clamp(0, burst)
        };
        let next = (tat + (1 - burst) * interval).max(now).max(pause);
        LimiterState {
            rate: self.rate,
            now: ServerTime::from_micros(u64::try_from(now).unwrap_or(0)),
            available: u32::try_from(available).unwrap_or(0),
            next_free: Duration::from_micros(u64::try_from(next - now).unwrap_or(0)),
            paused_until: paused
                .then(|| ServerTime::from_micros(u64::try_from(pause).unwrap_or(0))),
        }
    }

    /// One run of the GCRA script: grants `n` tokens at a slot at most `reserve` ahead, or says
    /// when the earliest slot is.
    async fn decide(&self, n: u32, reserve: Duration) -> Result<Reply> {
        if n == 0 || n > self.rate.burst() {
            return Err(Error::InvalidAmount {
                limiter: self.name.to_string(),
                requested: n,
                burst: self.rate.burst(),
            });
        }
        self.ensure_registered().await?;
        let interval = self.rate.interval_micros();
        let burst = self.rate.burst();
        let reserve = as_micros(reserve);
        let values: Vec<i64> = self
            .limits
            .retry
            .run("rate limit", &self.name, || {
                let mut conn = self.limits.conn.clone();
                let mut call = scripts::GCRA.prepare_invoke();
                call.key(&self.keys.tat)
                    .key(&self.keys.pause)
                    .arg(interval)
                    .arg(burst)
                    .arg(n)
                    .arg(reserve);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        let [granted, at, now] = values[..] else {
            return Err(Error::BadReply(format!(
                "rate limit script returned {values:?}"
            )));
        };
        Ok(Reply {
            granted: granted == 1,
            at: ServerTime::from_reply(at),
            now: ServerTime::from_reply(now),
        })
    }

    /// Adds the name to the limiter index once per handle (and its clones).
    async fn ensure_registered(&self) -> Result<()> {
        if self.registered.load(Ordering::Relaxed) {
            return Ok(());
        }
        let index = self.limits.keys.limiter_index();
        self.limits
            .register("register limiter", index, &self.name, self.rate.to_string())
            .await?;
        self.registered.store(true, Ordering::Relaxed);
        Ok(())
    }
}

fn as_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
