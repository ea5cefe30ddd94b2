//! `Semaphore`: at most N holders across the fleet, each on a lease that a background task renews.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::ServerTime;
use crate::error::{Error, Result};
use crate::keys::check_name;
use crate::limits::Limits;
use crate::retry::RetryPolicy;
use crate::scripts;

/// Default lease of a holder that stops renewing (a dead process): its slot frees after this.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);
/// Default longest sleep between two attempts of a waiting [`Semaphore::acquire`].
pub const DEFAULT_MAX_POLL: Duration = Duration::from_millis(250);
const MIN_LEASE_TTL: Duration = Duration::from_millis(30);
const FIRST_POLL: Duration = Duration::from_millis(5);

/// How a [`Semaphore`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemaphoreConfig {
    capacity: u32,
    lease_ttl: Duration,
    owner: Option<String>,
    max_poll: Duration,
}

impl SemaphoreConfig {
    /// At most `capacity` holders at once, lease TTL 15 s.
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            lease_ttl: DEFAULT_LEASE_TTL,
            owner: None,
            max_poll: DEFAULT_MAX_POLL,
        }
    }

    /// How long a holder keeps its slot without renewing (renewal runs every third of it).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// A label put in front of every holder id (for example the worker name), so that
    /// [`Semaphore::state`] shows who holds what.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Longest sleep between two attempts of a waiting acquire (the backoff starts at 5 ms and
    /// doubles up to this; a release in the same process wakes waiters at once).
    pub fn max_poll(mut self, max_poll: Duration) -> Self {
        self.max_poll = max_poll;
        self
    }

    fn validate(&self) -> Result<()> {
        let refuse = |reason: String| {
            Err(Error::InvalidConfig {
                what: "semaphore",
                reason,
            })
        };
        if self.capacity == 0 {
            return refuse("capacity must be at least 1".into());
        }
        if self.lease_ttl < MIN_LEASE_TTL {
            return refuse(format!("lease ttl must be at least {MIN_LEASE_TTL:?}"));
        }
        if self.lease_ttl > Duration::from_secs(24 * 3600) {
            return refuse("lease ttl must be at most a day".into());
        }
        if self.max_poll.is_zero() {
            return refuse("max poll must be positive".into());
        }
        if let Some(owner) = &self.owner
            && (owner.is_empty() || owner.len() > 200)
        {
            return refuse("owner must be 1 to 200 bytes".into());
        }
        Ok(())
    }
}

/// A distributed counting semaphore: at most `capacity` [`Permit`]s exist across every process
/// using the same prefix and name.
///
/// Each permit is a lease in Redis (a sorted-set member scored by its expiry on the Redis
/// clock), renewed every third of the lease TTL while the permit lives and removed when it is
/// released or dropped. A holder that dies stops renewing and loses its slot when its lease
/// expires. Waiting acquirers poll with a bounded backoff; there is no fairness between them.
///
/// Cheap to clone; clones share the same semaphore.
#[derive(Clone)]
pub struct Semaphore {
    inner: Arc<Inner>,
}

struct Inner {
    limits: Limits,
    name: String,
    holders: String,
    config: SemaphoreConfig,
    registered: AtomicBool,
    released: Notify,
}

/// A slot of a [`Semaphore`], held until it is dropped or [`released`](Permit::release).
///
/// Dropping it releases the slot in the background (a tokio task); `release().await` does it in
/// line and reports errors. If the lease is lost (Redis unreachable for longer than the TTL, or
/// the process stalled), [`lost`](Permit::lost) fires: stop the guarded work.
#[must_use = "the slot is released as soon as the permit is dropped"]
pub struct Permit {
    inner: Arc<Inner>,
    holder: String,
    stop_renewal: CancellationToken,
    lost: CancellationToken,
    released: bool,
}

/// A snapshot of a semaphore, from [`Semaphore::state`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SemaphoreState {
    pub capacity: u32,
    /// The Redis clock when the snapshot was taken.
    pub now: ServerTime,
    /// Live holders, soonest expiry first.
    pub holders: Vec<Holder>,
}

/// One live holder of a semaphore.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    pub id: String,
    /// Time left on its lease unless it renews.
    pub lease_left: Duration,
}

enum Attempt {
    Taken,
    /// Full; the earliest lease expires after this long.
    Full(Duration),
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("name", &self.inner.name)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("semaphore", &self.inner.name)
            .field("holder", &self.holder)
            .field("lost", &self.lost.is_cancelled())
            .finish()
    }
}

impl Semaphore {
    /// The semaphore `name` under `limits`' prefix.
    pub fn new(limits: &Limits, name: &str, config: SemaphoreConfig) -> Result<Self> {
        check_name(name)?;
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                limits: limits.clone(),
                name: name.to_owned(),
                holders: limits.keys.semaphore_holders(name),
                config,
                registered: AtomicBool::new(false),
                released: Notify::new(),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn capacity(&self) -> u32 {
        self.inner.config.capacity
    }

    pub fn lease_ttl(&self) -> Duration {
        self.inner.config.lease_ttl
    }

    /// A slot if one is free now, `Ok(None)` when the semaphore is full.
    pub async fn try_acquire(&self) -> Result<Option<Permit>> {
        let holder = self.inner.new_holder_id();
        match self.inner.attempt(&holder).await? {
            Attempt::Taken => Ok(Some(self.permit(holder))),
            Attempt::Full(_) => Ok(None),
        }
    }

    /// A slot, waiting for one to free up, or [`Error::Cancelled`] when `cancel` fires first.
    #[tracing::instrument(level = "debug", skip(self, cancel), fields(semaphore = %self.inner.name))]
    pub async fn acquire(&self, cancel: &CancellationToken) -> Result<Permit> {
        let holder = self.inner.new_holder_id();
        let mut backoff = FIRST_POLL.min(self.inner.config.max_poll);
        loop {
            let released = self.inner.released.notified();
            let attempt = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    // The script may have run before the cancel: give back what it took.
                    self.inner.spawn_release(holder);
                    return Err(Error::Cancelled);
                }
                attempt = self.inner.attempt(&holder) => attempt?,
            };
            let Attempt::Full(next_expiry) = attempt else {
                return Ok(self.permit(holder));
            };
            // Sleep up to the backoff, or until the earliest lease could expire if that is
            // sooner, with jitter so that waiters spread out.
            let cap = backoff.min(next_expiry + Duration::from_millis(1));
            let nap = cap.mul_f64(0.5 + fastrand::f64() / 2.0);
            tracing::trace!(nap_ms = nap.as_millis() as u64, "semaphore full, waiting");
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                () = released => {}
                () = tokio::time::sleep(nap) => {}
            }
            backoff = (backoff * 2).min(self.inner.config.max_poll);
        }
    }

    /// Capacity and live holders, read on the Redis clock.
    pub async fn state(&self) -> Result<SemaphoreState> {
        let inner = &self.inner;
        let values: Vec<String> = inner
            .limits
            .retry
            .run("semaphore state", &inner.name, || {
                let mut conn = inner.limits.conn.clone();
                let mut call = scripts::SEM_STATE.prepare_invoke();
                call.key(&inner.holders);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        let bad = || Error::BadReply(format!("semaphore state returned {values:?}"));
        let (now, rest) = values.split_first().ok_or_else(bad)?;
        let now_ms: u64 = now.parse().map_err(|_| bad())?;
        let mut holders = Vec::with_capacity(rest.len() / 2);
        for pair in rest.chunks(2) {
            let [id, expiry] = pair else {
                return Err(bad());
            };
            let expiry_ms = expiry.parse::<f64>().map_err(|_| bad())? as u64;
            holders.push(Holder {
                id: id.clone(),
                lease_left: Duration::from_millis(expiry_ms.saturating_sub(now_ms)),
            });
        }
        Ok(SemaphoreState {
            capacity: inner.config.capacity,
            now: ServerTime::from_micros(now_ms.saturating_mul(1000)),
            holders,
        })
    }

    fn permit(&self, holder: String) -> Permit {
        let stop_renewal = CancellationToken::new();
        let lost = CancellationToken::new();
        tokio::spawn(renew_until_stopped(
            self.inner.clone(),
            holder.clone(),
            stop_renewal.clone(),
            lost.clone(),
        ));
        tracing::debug!(semaphore = %self.inner.name, holder = %holder, "semaphore slot taken");
        Permit {
            inner: self.inner.clone(),
            holder,
            stop_renewal,
            lost,
            released: false,
        }
    }
}

impl Inner {
    fn new_holder_id(&self) -> String {
        let id = uuid::Uuid::now_v7();
        match &self.config.owner {
            Some(owner) => format!("{owner}/{id}"),
            None => id.to_string(),
        }
    }

    async fn attempt(&self, holder: &str) -> Result<Attempt> {
        self.ensure_registered().await?;
        let capacity = self.config.capacity;
        let ttl_ms = self.config.lease_ttl.as_millis() as u64;
        let values: Vec<i64> = self
            .limits
            .retry
            .run("acquire semaphore", &self.name, || {
                let mut conn = self.limits.conn.clone();
                let mut call = scripts::SEM_ACQUIRE.prepare_invoke();
                call.key(&self.holders)
                    .arg(capacity)
                    .arg(holder)
                    .arg(ttl_ms);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        let [taken, expiry, now] = values[..] else {
            return Err(Error::BadReply(format!(
                "semaphore acquire returned {values:?}"
            )));
        };
        Ok(if taken == 1 {
            Attempt::Taken
        } else {
            Attempt::Full(Duration::from_millis(
                u64::try_from(expiry - now).unwrap_or(0),
            ))
        })
    }

    /// `Ok(false)` when the lease is gone (expired or removed).
    async fn renew(&self, holder: &str, policy: &RetryPolicy) -> Result<bool> {
        let ttl_ms = self.config.lease_ttl.as_millis() as u64;
        let expiry: i64 = policy
            .run("renew semaphore lease", &self.name, || {
                let mut conn = self.limits.conn.clone();
                let mut call = scripts::SEM_RENEW.prepare_invoke();
                call.key(&self.holders).arg(holder).arg(ttl_ms);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(expiry > 0)
    }

    /// Removes the holder; `Ok(true)` if it was still there.
    async fn release(&self, holder: &str) -> Result<bool> {
        let removed: usize = self
            .limits
            .retry
            .run("release semaphore", &self.name, || {
                let mut conn = self.limits.conn.clone();
                let key = self.holders.clone();
                async move { redis::AsyncCommands::zrem(&mut conn, key, holder).await }
            })
            .await?;
        self.released.notify_waiters();
        Ok(removed > 0)
    }

    /// Releases in a background task when a tokio runtime is around; otherwise the lease
    /// expires on its own.
    fn spawn_release(self: &Arc<Self>, holder: String) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(semaphore = %self.name, holder = %holder, "no runtime to release the slot; it frees when the lease expires");
            return;
        };
        let inner = self.clone();
        runtime.spawn(async move {
            if let Err(error) = inner.release(&holder).await {
                tracing::warn!(semaphore = %inner.name, holder = %holder, %error, "semaphore release failed; the slot frees when the lease expires");
            }
        });
    }

    async fn ensure_registered(&self) -> Result<()> {
        if self.registered.load(Ordering::Relaxed) {
            return Ok(());
        }
        let index = self.limits.keys.semaphore_index();
        self.limits
            .register(
                "register semaphore",
                index,
                &self.name,
                self.config.capacity.to_string(),
            )
            .await?;
        self.registered.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// Renews the lease every third of its TTL until stopped; fires `lost` when the lease is gone or
/// could not be renewed for a whole TTL.
async fn renew_until_stopped(
    inner: Arc<Inner>,
    holder: String,
    stop: CancellationToken,
    lost: CancellationToken,
) {
    let ttl = inner.config.lease_ttl;
    let every = ttl / 3;
    // One attempt per tick: the next tick is the retry.
    let policy = RetryPolicy {
        attempts: 1,
        backoff: Duration::ZERO,
        attempt_timeout: every,
    };
    let mut renewed_at = Instant::now();
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match inner.renew(&holder, &policy).await {
            Ok(true) => renewed_at = Instant::now(),
            Ok(false) => {
                tracing::warn!(semaphore = %inner.name, holder = %holder, "semaphore lease lost");
                lost.cancel();
                return;
            }
            Err(error) if renewed_at.elapsed() >= ttl => {
                tracing::warn!(semaphore = %inner.name, holder = %holder, %error, "semaphore lease not renewed for a whole ttl, presumed lost");
                lost.cancel();
                return;
            }
            Err(error) => {
                tracing::warn!(semaphore = %inner.name, holder = %holder, %error, "semaphore lease renew failed, will retry");
            }
        }
    }
}

impl Permit {
    /// The id this permit holds its slot under (shown by [`Semaphore::state`]).
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Fires when the lease is lost; the slot may then belong to someone else.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Gives the slot back now. `Ok(true)` if the lease was still held, `Ok(false)` if it had
    /// already been lost.
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        self.stop_renewal.cancel();
        let held = self.inner.release(&self.holder).await?;
        tracing::debug!(semaphore = %self.inner.name, holder = %self.holder, held, "semaphore slot released");
        Ok(held)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.stop_renewal.cancel();
        if !self.released {
            self.inner.spawn_release(std::mem::take(&mut self.holder));
        }
    }
}
