//! `Locks`: the entry point. Acquires locks (at once or waiting for a release), answers operator
//! questions (who holds it, force it free) and guards resources with fencing tokens.

use std::sync::Arc;
use std::time::Duration;

use lanes_redis::{Conn, Endpoint};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::guard::Guard;
use crate::keys::{Keys, LockKeys};
use crate::retry::RetryPolicy;
use crate::scripts;
use crate::signal::SignalWaiter;

/// Default lock TTL: a holder that dies (and stops renewing) frees its lock after this long.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// Shortest TTL accepted (renewal runs every third of it).
pub const MIN_TTL: Duration = Duration::from_millis(30);
/// Longest TTL accepted.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default longest pause of a waiting [`Locks::lock`] between two attempts when no release
/// signal arrives (a signal lost to a cancelled waiter, or a holder that died without releasing
/// and whose TTL is not known yet).
pub const DEFAULT_MAX_POLL: Duration = Duration::from_millis(500);
/// First pause of a waiting [`Locks::lock`] that has no blocking connection; it doubles up to the
/// max poll.
const FIRST_POLL: Duration = Duration::from_millis(5);
/// How long a release wake-up waits in the signal list for a waiter before it expires.
pub(crate) const SIGNAL_TTL_MS: u64 = 10_000;

/// Distributed locks under one key prefix, sharing one Redis connection and retry policy.
///
/// Cheap to clone; clones share everything, including the pool of blocking connections.
///
/// Waiting ([`lock`](Self::lock)) blocks on the lock's release signal with `BLPOP` when a
/// client for blocking connections is configured ([`with_wait_client`](Self::with_wait_client));
/// without one it polls with a jittered backoff up to the max poll, and a release through the
/// same `Locks` (or a clone) wakes its waiters at once.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use lanes_lock::{Locks, DEFAULT_TTL};
/// use tokio_util::sync::CancellationToken;
///
/// // One server; `redis+cluster://host:port,host:port` reaches a Redis Cluster.
/// let endpoint = lanes_redis::Endpoint::open("redis://127.0.0.1/")?;
/// let conn = endpoint.shared(lanes_redis::SharedOptions::default()).await?;
/// let locks = Locks::new(conn, "lanes")?.with_wait_client(endpoint);
///
/// let Some(guard) = locks.try_lock("bank:acct-42", DEFAULT_TTL).await? else {
///     return Err("bot is already running for this account".into());
/// };
/// // ... work, watching guard.lost(); pass guard.fencing_token() to every write ...
/// guard.release().await?;
///
/// let shutdown = CancellationToken::new();
/// if let Some(guard) = locks
///     .lock("report", DEFAULT_TTL, Duration::from_secs(30), &shutdown)
///     .await?
/// {
///     drop(guard); // released in the background
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Locks {
    pub(crate) conn: Conn,
    pub(crate) keys: Keys,
    pub(crate) retry: RetryPolicy,
    max_poll: Duration,
    owner_label: Option<Arc<str>>,
    waiter: Option<Arc<SignalWaiter>>,
    released: Arc<Notify>,
}

/// Who holds a lock, from [`Locks::holder`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HolderInfo {
    /// The holder's owner token (`label/uuid` when the holder set an owner label).
    pub owner: String,
    /// The holder's fencing token.
    pub fencing_token: u64,
    /// Time left before the lock expires unless its holder renews it.
    pub ttl_left: Duration,
}

/// A fenced resource's value and the fencing token that wrote it, from [`Locks::fenced_get`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FencedValue {
    pub fencing_token: u64,
    pub value: String,
}

pub(crate) enum Attempt {
    Taken { fence: u64, sent_at: Instant },
    Held { ttl_left: Duration },
}

impl std::fmt::Debug for Locks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locks")
            .field("prefix", &self.keys.prefix())
            .field("retry", &self.retry)
            .field("max_poll", &self.max_poll)
            .field("owner_label", &self.owner_label)
            .field("blocking_waits", &self.waiter.is_some())
            .finish()
    }
}

impl Locks {
    /// Locks whose keys live under `prefix`, using the caller's connection (the caller picks its
    /// response timeout and reconnect policy): a [`Conn`] to one server or a cluster, or a plain
    /// `ConnectionManager` (whose default response timeout is 500 ms).
    pub fn new(conn: impl Into<Conn>, prefix: &str) -> Result<Self> {
        Ok(Self {
            conn: conn.into(),
            keys: Keys::new(prefix)?,
            retry: RetryPolicy::default(),
            max_poll: DEFAULT_MAX_POLL,
            owner_label: None,
            waiter: None,
            released: Arc::new(Notify::new()),
        })
    }

    /// Replaces the retry policy used when Redis does not answer (default: 3 attempts).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Result<Self> {
        retry.validate()?;
        self.retry = retry;
        Ok(self)
    }

    /// Lets waiting [`lock`](Self::lock) calls block on the lock's release signal (`BLPOP`) on
    /// dedicated connections to `endpoint` (the same Redis as the shared connection; a
    /// `redis::Client` converts), instead of polling. Blocking connections have no response
    /// timeout of their own; each wait is bounded by the max poll.
    pub fn with_wait_client(mut self, endpoint: impl Into<Endpoint>) -> Self {
        self.waiter = Some(Arc::new(SignalWaiter::new(endpoint.into())));
        self
    }

    /// Longest pause of a waiting [`lock`](Self::lock) between two attempts when no release
    /// signal arrives (default 500 ms, at most an hour). A waiter also retries as soon as the
    /// holder's TTL runs out.
    pub fn with_max_poll(mut self, max_poll: Duration) -> Result<Self> {
        if max_poll < Duration::from_millis(1) || max_poll > Duration::from_secs(3600) {
            return Err(Error::InvalidConfig {
                what: "max poll",
                reason: format!("{max_poll:?} must be between 1 ms and an hour"),
            });
        }
        self.max_poll = max_poll;
        Ok(self)
    }

    /// Puts `label` (for example the worker name) in front of every owner token, so that
    /// [`holder`](Self::holder) shows who holds a lock.
    pub fn with_owner_label(mut self, label: &str) -> Result<Self> {
        if label.is_empty()
            || label.len() > 200
            || label.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::InvalidConfig {
                what: "owner label",
                reason: format!("{label:?} must be 1 to 200 bytes without whitespace"),
            });
        }
        self.owner_label = Some(label.into());
        Ok(self)
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The lock `key` if it is free now, `Ok(None)` when someone holds it.
    ///
    /// The returned [`Guard`] renews the lock every `ttl / 3` until it is released or dropped.
    #[tracing::instrument(level = "debug", skip_all, fields(lock = %key))]
    pub async fn try_lock(&self, key: &str, ttl: Duration) -> Result<Option<Guard>> {
        let keys = self.keys.lock(key)?;
        check_ttl(ttl)?;
        let owner = self.new_owner();
        match self.attempt(&keys, key, &owner, ttl).await? {
            Attempt::Taken { fence, sent_at } => Ok(Some(Guard::start(
                self, key, keys, owner, fence, ttl, sent_at,
            ))),
            Attempt::Held { .. } => Ok(None),
        }
    }

    /// The lock `key`, waiting up to `wait` for its holder to release it or expire.
    ///
    /// `Ok(None)` when the wait passed with the lock still held; [`Error::Cancelled`] when
    /// `cancel` fired first. Waiters are woken by the release signal (see the type's docs),
    /// and retry at least every max poll and as soon as the holder's TTL runs out.
    #[tracing::instrument(level = "debug", skip_all, fields(lock = %key, wait_ms = wait.as_millis() as u64))]
    pub async fn lock(
        &self,
        key: &str,
        ttl: Duration,
        wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<Guard>> {
        let keys = self.keys.lock(key)?;
        check_ttl(ttl)?;
        let owner = self.new_owner();
        // A wait too long to represent is as good as forever.
        let deadline = Instant::now()
            .checked_add(wait)
            .unwrap_or_else(|| Instant::now() + MAX_TTL * 365);
        let mut backoff = FIRST_POLL.min(self.max_poll);
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        loop {
            let released = self.released.notified();
            let attempt = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    // The script may have run before the cancel: give back what it took.
                    self.spawn_release(keys, key.to_owned(), owner);
                    return Err(Error::Cancelled);
                }
                attempt = self.attempt(&keys, key, &owner, ttl) => attempt?,
            };
            let ttl_left = match attempt {
                Attempt::Taken { fence, sent_at } => {
                    return Ok(Some(Guard::start(
                        self, key, keys, owner, fence, ttl, sent_at,
                    )));
                }
                Attempt::Held { ttl_left } => ttl_left,
            };
            let now = Instant::now();
            if now >= deadline {
                tracing::debug!("lock still held when the wait ran out");
                return Ok(None);
            }
            // Retry when a release signal arrives, when the holder's TTL runs out, at the max
            // poll, or at the deadline, whichever comes first.
            let nap = (deadline - now)
                .min(self.max_poll)
                .min(ttl_left.saturating_add(Duration::from_millis(1)));
            if let Some(waiter) = &self.waiter {
                let woke = tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(Error::Cancelled),
                    woke = waiter.wait(&keys.signal, nap) => woke,
                };
                match woke {
                    Ok(signalled) => {
                        tracing::trace!(signalled, "lock waiter woke");
                        continue;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "blocking wait failed, sleeping instead");
                    }
                }
            }
            let sleep = jitter(backoff.min(nap));
            tracing::trace!(sleep_ms = sleep.as_millis() as u64, "lock held, waiting");
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                () = released => {}
                () = tokio::time::sleep(sleep) => {}
            }
            backoff = (backoff * 2).min(self.max_poll);
        }
    }

    /// Who holds `key` right now (owner, fencing token, TTL left), or `Ok(None)` when it is free.
    pub async fn holder(&self, key: &str) -> Result<Option<HolderInfo>> {
        let keys = self.keys.lock(key)?;
        let values: Vec<String> = self
            .retry
            .run("lock holder", key, || {
                let mut conn = self.conn.clone();
                let mut call = scripts::HOLDER.prepare_invoke();
                call.key(&keys.holder);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        let bad = || Error::BadReply(format!("lock holder returned {values:?}"));
        let [owner, fence, pttl] = &values[..] else {
            return if values.is_empty() {
                Ok(None)
            } else {
                Err(bad())
            };
        };
        let fencing_token = fence.parse().map_err(|_| bad())?;
        // -1 (no expiry) never comes from this crate's scripts; -2 (gone) cannot follow HMGET.
        let ttl_left = pttl.parse::<u64>().map_err(|_| bad())?;
        Ok(Some(HolderInfo {
            owner: owner.clone(),
            fencing_token,
            ttl_left: Duration::from_millis(ttl_left),
        }))
    }

    /// Operator override: frees `key` whoever holds it (a stuck or unwanted holder) and wakes a
    /// waiter. `Ok(true)` when a lock was deleted. The evicted holder's guard sees it at its next
    /// renewal and fires [`Guard::lost`]; its fencing token stays lower than the next holder's,
    /// so fenced writes still refuse it.
    #[tracing::instrument(level = "info", skip_all, fields(lock = %key))]
    pub async fn force_release(&self, key: &str) -> Result<bool> {
        let keys = self.keys.lock(key)?;
        let deleted: i64 = self
            .retry
            .run("force release lock", key, || {
                let mut conn = self.conn.clone();
                let mut call = scripts::FORCE_RELEASE.prepare_invoke();
                call.key(&keys.holder).key(&keys.signal).arg(SIGNAL_TTL_MS);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        self.released.notify_waiters();
        tracing::info!(deleted = deleted == 1, "lock force-released");
        Ok(deleted == 1)
    }

    /// Whether `token` is the fencing token of the current holder of `key` (`false` when the
    /// lock is free or held under another token). A holder can call it before an irreversible
    /// step; a resource should rather refuse stale tokens itself (see
    /// [`fenced_set`](Self::fenced_set)), since the answer can change right after it is given.
    pub async fn check_fence(&self, key: &str, token: u64) -> Result<bool> {
        let keys = self.keys.lock(key)?;
        let current: Option<String> = self
            .retry
            .run("check fence", key, || {
                let mut conn = self.conn.clone();
                let holder = keys.holder.clone();
                async move { redis::AsyncCommands::hget(&mut conn, holder, "fence").await }
            })
            .await?;
        Ok(current.is_some_and(|current| current == token.to_string()))
    }

    /// Writes `value` to the fenced resource `resource` unless a higher fencing token has
    /// written it before: `Ok(false)` means the writer's lock was lost to a newer holder and
    /// nothing was written. A resource accepts tokens of one lock key only (tokens of different
    /// keys are unrelated).
    ///
    /// This is the pattern a protected resource should follow (Kleppmann's fencing): the
    /// resource, not the lock holder, refuses stale writes, so a holder that stalled past its
    /// TTL cannot overwrite its successor's work.
    #[tracing::instrument(level = "debug", skip_all, fields(resource = %resource, fence = token))]
    pub async fn fenced_set(&self, resource: &str, token: u64, value: &str) -> Result<bool> {
        let key = self.keys.fenced(resource)?;
        let token_arg = token.to_string();
        let reply: (String, String) = self
            .retry
            .run("fenced set", resource, || {
                let mut conn = self.conn.clone();
                let mut call = scripts::FENCED_SET.prepare_invoke();
                call.key(&key).arg(&token_arg).arg(value);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        match reply.0.as_str() {
            "1" => Ok(true),
            "0" => {
                tracing::warn!(token, highest = %reply.1, "stale fencing token refused");
                Ok(false)
            }
            _ => Err(Error::BadReply(format!("fenced set returned {reply:?}"))),
        }
    }

    /// The value of a fenced resource and the token that wrote it, `Ok(None)` if never written.
    pub async fn fenced_get(&self, resource: &str) -> Result<Option<FencedValue>> {
        let key = self.keys.fenced(resource)?;
        let (fence, value): (Option<String>, Option<String>) = self
            .retry
            .run("fenced get", resource, || {
                let mut conn = self.conn.clone();
                let key = key.clone();
                async move {
                    redis::cmd("HMGET")
                        .arg(key)
                        .arg("fence")
                        .arg("value")
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let (Some(fence), Some(value)) = (fence, value) else {
            return Ok(None);
        };
        let fencing_token = fence
            .parse()
            .map_err(|_| Error::BadReply(format!("fenced resource has token {fence:?}")))?;
        Ok(Some(FencedValue {
            fencing_token,
            value,
        }))
    }

    fn new_owner(&self) -> String {
        let id = uuid::Uuid::now_v7();
        match &self.owner_label {
            Some(label) => format!("{label}/{id}"),
            None => id.to_string(),
        }
    }

    /// One acquisition attempt. On an error the script may still have run (a lost reply), so
    /// whatever it may have taken is released in the background.
    async fn attempt(
        &self,
        keys: &LockKeys,
        key: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Attempt> {
        let ttl_ms = ttl_millis(ttl);
        let mut sent_at = Instant::now();
        let outcome = self
            .retry
            .run("acquire lock", key, || {
                sent_at = Instant::now();
                let mut conn = self.conn.clone();
                let mut call = scripts::ACQUIRE.prepare_invoke();
                call.key(&keys.holder)
                    .key(&keys.fence)
                    .key(&keys.signal)
                    .arg(owner)
                    .arg(ttl_ms);
                async move { call.invoke_async::<Vec<String>>(&mut conn).await }
            })
            .await;
        let values = match outcome {
            Ok(values) => values,
            Err(error) => {
                self.spawn_release(keys.clone(), key.to_owned(), owner.to_owned());
                return Err(error.into());
            }
        };
        let bad = || Error::BadReply(format!("lock acquire returned {values:?}"));
        let [taken, fence, ttl_left] = &values[..] else {
            return Err(bad());
        };
        match taken.as_str() {
            "1" => {
                let fence = fence.parse().map_err(|_| bad())?;
                tracing::debug!(lock = %key, owner, fence, "lock acquired");
                Ok(Attempt::Taken { fence, sent_at })
            }
            "0" => Ok(Attempt::Held {
                // A holder without a TTL (written by other software) is polled at the max poll.
                ttl_left: ttl_left
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .unwrap_or(self.max_poll),
            }),
            _ => Err(bad()),
        }
    }

    /// Compare-and-PEXPIRE: `Ok(false)` when the lock is gone or someone else's.
    pub(crate) async fn renew(
        &self,
        keys: &LockKeys,
        key: &str,
        owner: &str,
        ttl: Duration,
        policy: &RetryPolicy,
    ) -> Result<bool> {
        let ttl_ms = ttl_millis(ttl);
        let renewed: i64 = policy
            .run("renew lock", key, || {
                let mut conn = self.conn.clone();
                let mut call = scripts::RENEW.prepare_invoke();
                call.key(&keys.holder).arg(owner).arg(ttl_ms);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(renewed == 1)
    }

    /// Compare-and-delete: `Ok(true)` when the lock was still `owner`'s and is now free.
    pub(crate) async fn release_owned(
        &self,
        keys: &LockKeys,
        key: &str,
        owner: &str,
    ) -> Result<bool> {
        let released: i64 = self
            .retry
            .run("release lock", key, || {
                let mut conn = self.conn.clone();
                let mut call = scripts::RELEASE.prepare_invoke();
                call.key(&keys.holder)
                    .key(&keys.signal)
                    .arg(owner)
                    .arg(SIGNAL_TTL_MS);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        self.released.notify_waiters();
        Ok(released == 1)
    }

    /// Releases in a background task when a tokio runtime is around; otherwise the lock expires
    /// with its TTL.
    pub(crate) fn spawn_release(&self, keys: LockKeys, key: String, owner: String) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(lock = %key, owner = %owner, "no runtime to release the lock; it frees when its ttl runs out");
            return;
        };
        let locks = self.clone();
        runtime.spawn(async move {
            if let Err(error) = locks.release_owned(&keys, &key, &owner).await {
                tracing::warn!(lock = %key, owner = %owner, %error, "lock release failed; it frees when its ttl runs out");
            }
        });
    }

    /// Deletes every key of lock `key`, fence counter included (benchmark scratch keys only:
    /// a real lock must keep its counter).
    pub(crate) async fn purge(&self, key: &str) -> Result<()> {
        let keys = self.keys.lock(key)?;
        self.retry
            .run("purge lock", key, || {
                let mut conn = self.conn.clone();
                let all = [keys.holder.clone(), keys.fence.clone(), keys.signal.clone()];
                async move { redis::AsyncCommands::del::<_, ()>(&mut conn, &all).await }
            })
            .await
            .map_err(Error::from)
    }
}

fn check_ttl(ttl: Duration) -> Result<()> {
    if ttl < MIN_TTL || ttl > MAX_TTL {
        return Err(Error::InvalidConfig {
            what: "lock ttl",
            reason: format!("{ttl:?} must be between {MIN_TTL:?} and {MAX_TTL:?}"),
        });
    }
    Ok(())
}

fn ttl_millis(ttl: Duration) -> u64 {
    // check_ttl bounds the TTL to a day, far below u64::MAX milliseconds.
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// Somewhere between half and all of `d`, so that waiters spread out.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + fastrand::f64() / 2.0)
}
