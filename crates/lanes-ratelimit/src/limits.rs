//! `Limits`: the entry point that makes named limiters and semaphores under one key prefix and
//! lists the ones the fleet has used (for dashboards).

use std::collections::HashMap;

use lanes_redis::Conn;
use redis::AsyncCommands;

use crate::error::Result;
use crate::keys::Keys;
use crate::limiter::Limiter;
use crate::rate::Rate;
use crate::retry::RetryPolicy;
use crate::semaphore::{Semaphore, SemaphoreConfig};

/// Makes limiters and semaphores that share one Redis connection, key prefix and retry policy.
///
/// Cheap to clone. Every process that names the same limiter under the same prefix shares it,
/// so configure the same [`Rate`] for a name everywhere (the rate travels with each call; the
/// latest caller's rate is what the limiter enforces at that moment).
///
/// ```no_run
/// # async fn demo(conn: lanes_redis::Conn) -> Result<(), lanes_ratelimit::Error> {
/// use lanes_ratelimit::Limits;
/// use tokio_util::sync::CancellationToken;
///
/// let limits = Limits::new(conn, "lanes")?;
/// let sp_api = limits.limiter("sp_api", "8/s".parse()?)?;
/// let shutdown = CancellationToken::new();
/// sp_api.acquire(1, &shutdown).await?; // now call the API
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Limits {
    pub(crate) conn: Conn,
    pub(crate) keys: Keys,
    pub(crate) retry: RetryPolicy,
}

/// One limiter as registered in Redis by the processes that used it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimiterInfo {
    pub name: String,
    pub rate: Rate,
}

/// One semaphore as registered in Redis by the processes that used it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemaphoreInfo {
    pub name: String,
    pub capacity: u32,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("prefix", &self.keys.prefix())
            .field("retry", &self.retry)
            .finish()
    }
}

impl Limits {
    /// Limits whose keys live under `prefix`, using the caller's connection (the caller picks its
    /// timeouts and reconnect policy): a [`Conn`] to one server or a cluster, or a plain
    /// `ConnectionManager`.
    pub fn new(conn: impl Into<Conn>, prefix: &str) -> Result<Self> {
        Ok(Self {
            conn: conn.into(),
            keys: Keys::new(prefix)?,
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the retry policy used when Redis does not answer (default: 3 attempts).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Result<Self> {
        retry.validate()?;
        self.retry = retry;
        Ok(self)
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The rate limiter `name` (shared with every process using the same prefix and name).
    pub fn limiter(&self, name: &str, rate: Rate) -> Result<Limiter> {
        Limiter::new(self, name, rate)
    }

    /// The distributed semaphore `name` (shared with every process using the same prefix and name).
    pub fn semaphore(&self, name: &str, config: SemaphoreConfig) -> Result<Semaphore> {
        Semaphore::new(self, name, config)
    }

    /// Every limiter that was used under this prefix, sorted by name, with the rate it was last
    /// used with. Entries whose stored rate no longer parses are skipped with a warning.
    pub async fn list_limiters(&self) -> Result<Vec<LimiterInfo>> {
        let entries = self
            .read_index("list limiters", self.keys.limiter_index())
            .await?;
        let mut out: Vec<LimiterInfo> = entries
            .into_iter()
            .filter_map(|(name, rate)| match rate.parse() {
                Ok(rate) => Some(LimiterInfo { name, rate }),
                Err(error) => {
                    tracing::warn!(limiter = %name, %error, "skipping limiter with an unreadable rate");
                    None
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every semaphore that was used under this prefix, sorted by name, with its capacity.
    pub async fn list_semaphores(&self) -> Result<Vec<SemaphoreInfo>> {
        let entries = self
            .read_index("list semaphores", self.keys.semaphore_index())
            .await?;
        let mut out: Vec<SemaphoreInfo> = entries
            .into_iter()
            .filter_map(|(name, capacity)| match capacity.parse() {
                Ok(capacity) => Some(SemaphoreInfo { name, capacity }),
                Err(error) => {
                    tracing::warn!(semaphore = %name, %error, "skipping semaphore with an unreadable capacity");
                    None
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn read_index(&self, op: &'static str, key: String) -> Result<HashMap<String, String>> {
        self.retry
            .run(op, self.keys.prefix(), || {
                let mut conn = self.conn.clone();
                let key = key.clone();
                async move { conn.hgetall(key).await }
            })
            .await
            .map_err(crate::error::Error::from)
    }

    /// Records `name → value` in an index hash so dashboards can enumerate it.
    pub(crate) async fn register(
        &self,
        op: &'static str,
        index: String,
        name: &str,
        value: String,
    ) -> Result<()> {
        self.retry
            .run(op, name, || {
                let mut conn = self.conn.clone();
                let (index, value) = (index.clone(), value.clone());
                async move { conn.hset(index, name, value).await.map(|_: usize| ()) }
            })
            .await
            .map_err(crate::error::Error::from)
    }
}
