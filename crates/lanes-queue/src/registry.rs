//! The worker registry: every worker process publishes a record with a heartbeat, so `inspect`,
//! the dashboard and `/metrics` see every worker on every machine.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::client::Lanes;
use crate::error::Result;

/// A running task as a worker reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSummary {
    pub id: String,
    pub kind: String,
    pub attempt: u32,
    /// When it was fetched (reserved) or started (active), ms since the epoch.
    pub since_ms: u64,
}

/// A worker's counters since it started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerStats {
    pub processed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub dead: u64,
    pub cancelled: u64,
    pub handed_back: u64,
    /// Writes refused because the lease had expired (this worker was too slow or paused).
    pub stale: u64,
}

/// One worker process, as it last published itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Unique per process, generated.
    pub id: String,
    /// The name it was given (`--name`), not necessarily unique.
    pub name: String,
    pub host: String,
    pub pid: u32,
    pub queues: Vec<String>,
    pub concurrency: usize,
    pub prefetch: usize,
    /// `running`, or `draining` after a shutdown signal.
    pub state: String,
    pub started_at_ms: u64,
    pub heartbeat_at_ms: u64,
    pub active: Vec<TaskSummary>,
    pub reserved: Vec<TaskSummary>,
    pub stats: WorkerStats,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// This machine's host name, for worker records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

impl Lanes {
    /// Publishes a worker record that lives for `ttl` unless published again.
    pub async fn publish_worker(&self, info: &WorkerInfo, ttl: Duration) -> Result<()> {
        let json = serde_json::to_string(info)?;
        let _: () = redis::pipe()
            .cmd("SET")
            .arg(self.keys().worker(&info.id))
            .arg(json)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .ignore()
            .cmd("ZADD")
            .arg(self.keys().workers())
            .arg(info.heartbeat_at_ms)
            .arg(&info.id)
            .ignore()
            .query_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// Removes a worker record (clean exit).
    pub async fn remove_worker(&self, id: &str) -> Result<()> {
        let _: () = redis::pipe()
            .cmd("DEL")
            .arg(self.keys().worker(id))
            .ignore()
            .cmd("ZREM")
            .arg(self.keys().workers())
            .arg(id)
            .ignore()
            .query_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// Every live worker, newest heartbeat first. Records of workers that died without saying
    /// goodbye expire with their TTL and are pruned from the index here.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let mut conn = self.connection();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys().workers())
            .arg(0)
            .arg(-1)
            .arg("REV")
            .query_async(&mut conn)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys().worker(id)).collect();
        let records: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, rec) in ids.into_iter().zip(records) {
            match rec.and_then(|r| serde_json::from_str::<WorkerInfo>(&r).ok()) {
                Some(info) => out.push(info),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _: () = redis::cmd("ZREM")
                .arg(self.keys().workers())
                .arg(gone)
                .query_async(&mut conn)
                .await?;
        }
        Ok(out)
    }
}
