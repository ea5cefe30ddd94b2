//! `Guard`: a held lock. Renews its TTL in the background while it lives, reports a lost lock,
//! and releases with compare-and-delete.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::keys::LockKeys;
use crate::locks::Locks;
use crate::retry::RetryPolicy;

/// A held lock, until it is dropped or [`released`](Guard::release).
///
/// While the guard lives, a tokio task renews the lock every third of its TTL with
/// compare-and-`PEXPIRE`, so a live holder never loses it to expiry, and a dead one (its process
/// gone, so no renewals) loses it within one TTL. Dropping the guard releases the lock in the
/// background; `release().await` does it in line and reports the outcome.
///
/// If the lock is lost anyway (force-released by an operator, Redis unreachable for a whole
/// TTL, the process stalled past its TTL), [`lost`](Guard::lost) fires: stop the guarded work.
/// Pass [`fencing_token`](Guard::fencing_token) with every write to a protected resource, so the
/// resource can refuse writes from a holder that has lost the lock without noticing yet.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Guard {
    locks: Locks,
    key: String,
    keys: LockKeys,
    owner: String,
    fencing_token: u64,
    ttl: Duration,
    stop_renewal: CancellationToken,
    lost: CancellationToken,
    released: bool,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("key", &self.key)
            .field("owner", &self.owner)
            .field("fencing_token", &self.fencing_token)
            .field("ttl", &self.ttl)
            .field("lost", &self.lost.is_cancelled())
            .finish()
    }
}

impl Guard {
    /// A guard for a lock just taken, whose TTL started no earlier than `sent_at` (when the
    /// acquiring command was sent), with its renewal task running.
    pub(crate) fn start(
        locks: &Locks,
        key: &str,
        keys: LockKeys,
        owner: String,
        fencing_token: u64,
        ttl: Duration,
        sent_at: Instant,
    ) -> Self {
        let stop_renewal = CancellationToken::new();
        let lost = CancellationToken::new();
        tokio::spawn(
            Renewal {
                locks: locks.clone(),
                key: key.to_owned(),
                keys: keys.clone(),
                owner: owner.clone(),
                ttl,
                stop: stop_renewal.clone(),
                lost: lost.clone(),
            }
            .run(sent_at + ttl),
        );
        Self {
            locks: locks.clone(),
            key: key.to_owned(),
            keys,
            owner,
            fencing_token,
            ttl,
            stop_renewal,
            lost,
            released: false,
        }
    }

    /// The lock key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The random token this guard holds the lock under (shown by
    /// [`Locks::holder`](crate::Locks::holder)).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// This acquisition's fencing token: higher than every earlier acquisition of the same key.
    pub fn fencing_token(&self) -> u64 {
        self.fencing_token
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Fires when the lock is lost (or presumed lost); the lock may belong to someone else now.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Releases the lock now (compare-and-delete: never someone else's) and wakes a waiter.
    /// `Ok(true)` when the lock was still held, `Ok(false)` when it had been lost already.
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        self.stop_renewal.cancel();
        let held = self
            .locks
            .release_owned(&self.keys, &self.key, &self.owner)
            .await?;
        tracing::debug!(lock = %self.key, owner = %self.owner, fence = self.fencing_token, held, "lock released");
        Ok(held)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop_renewal.cancel();
        if !self.released {
            self.locks.spawn_release(
                self.keys.clone(),
                std::mem::take(&mut self.key),
                std::mem::take(&mut self.owner),
            );
        }
    }
}

/// The background task that keeps a guard's lock alive.
struct Renewal {
    locks: Locks,
    key: String,
    keys: LockKeys,
    owner: String,
    ttl: Duration,
    stop: CancellationToken,
    lost: CancellationToken,
}

impl Renewal {
    /// Renews every third of the TTL until stopped. Fires `lost` when a renewal finds the lock
    /// gone or someone else's, or when `valid_until` (the latest moment the lock can still be
    /// ours without a renewal) passes with every renewal since failing.
    async fn run(self, mut valid_until: Instant) {
        let every = self.ttl / 3;
        // One attempt per renewal; a failed one is retried sooner than a tick.
        let policy = RetryPolicy {
            attempts: 1,
            backoff: Duration::ZERO,
            attempt_timeout: every,
        };
        let mut next = Instant::now() + every;
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep_until(next.min(valid_until)) => {}
            }
            if Instant::now() >= valid_until {
                return self.presume_lost();
            }
            let sent_at = Instant::now();
            let outcome = tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep_until(valid_until) => return self.presume_lost(),
                outcome = self.locks.renew(&self.keys, &self.key, &self.owner, self.ttl, &policy) => outcome,
            };
            match outcome {
                Ok(true) => {
                    valid_until = sent_at + self.ttl;
                    next = sent_at + every;
                }
                Ok(false) => {
                    tracing::warn!(lock = %self.key, owner = %self.owner, "lock lost: it expired or was taken over");
                    self.lost.cancel();
                    return;
                }
                Err(error) => {
                    tracing::warn!(lock = %self.key, owner = %self.owner, %error, "lock renew failed, will retry");
                    next = Instant::now() + every / 3;
                }
            }
        }
    }

    fn presume_lost(&self) {
        tracing::warn!(lock = %self.key, owner = %self.owner, "lock not renewed for a whole ttl, presumed lost");
        self.lost.cancel();
    }
}
