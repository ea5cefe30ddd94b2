//! `Lanes`: the engine's client. Producers enqueue and read status through it; the worker runtime
//! leases, renews, acks and fails through it. Every multi-key step is one Lua script.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanes_redis::{Conn, Endpoint, SharedOptions};
use redis::Value;
use serde::Serialize;
use serde_json::Value as Json;

use crate::codec;
use crate::error::{Error, Result};
use crate::keys::{Keys, QueueKeys};
use crate::scripts::SCRIPTS;
use crate::task::{
    KeyPolicy, NewTask, TaskId, TaskInfo, TaskState, validate_key, validate_kind, validate_queue,
};

/// Engine settings shared by producers and workers. Every process on one Redis should agree on
/// `prefix`; the rest may differ per process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespace of every key (`lanes` by default).
    pub prefix: String,
    /// How long a lease lasts without renewal; a dead worker's task returns after this.
    pub lease: Duration,
    /// How long finished tasks (and their results) are kept.
    pub result_ttl: Duration,
    /// How long dead-lettered tasks are kept.
    pub dead_ttl: Duration,
    /// At most this many dead-lettered tasks per queue; the oldest go first.
    pub dead_cap: u64,
    /// Payloads of at least this many bytes (as JSON) are stored gzip-compressed.
    pub compress_threshold: usize,
    /// Largest payload accepted, in bytes of JSON.
    pub max_payload: usize,
    /// How long to wait for Redis to answer a command.
    pub response_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            prefix: "lanes".into(),
            lease: Duration::from_secs(15),
            result_ttl: Duration::from_secs(24 * 3600),
            dead_ttl: Duration::from_secs(7 * 24 * 3600),
            dead_cap: 10_000,
            compress_threshold: 8 * 1024,
            max_payload: 8 * 1024 * 1024,
            response_timeout: Duration::from_secs(5),
        }
    }
}

/// A worker's claim on a running task. Writes carrying a stale token are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub id: TaskId,
    pub token: String,
}

impl Lease {
    pub fn queue(&self) -> &str {
        self.id.queue()
    }
}

/// A task handed to a worker by [`Lanes::fetch`].
#[derive(Debug, Clone)]
pub struct Fetched {
    pub lease: Lease,
    pub kind: String,
    pub payload: Vec<u8>,
    pub encoding: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub max_retries: Option<u32>,
    pub soft_limit: Option<Duration>,
    pub hard_limit: Option<Duration>,
    pub created_at_ms: u64,
    /// The task's key, if it has one.
    pub key: Option<String>,
}

/// What one fetch returned.
#[derive(Debug, Clone, Default)]
pub struct FetchBatch {
    pub tasks: Vec<Fetched>,
    /// Redis time of the fetch, in ms.
    pub now_ms: u64,
    /// When the earliest scheduled or retrying task becomes due, in ms (Redis clock).
    pub next_due_ms: Option<u64>,
}

/// How an attempt that did not succeed ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Run again after the delay.
    Retry { delay: Duration },
    /// Retries exhausted: dead-letter it.
    Dead,
    /// Bad input or a permanent error: dead-letter it without retrying.
    Failed,
    /// Stopped on request.
    Cancelled,
}

/// What renewing one queue's leases found.
#[derive(Debug, Clone, Default)]
pub struct Renewal {
    /// Leases that are no longer ours (expired and reaped, or the task was removed).
    pub lost: Vec<TaskId>,
    /// Running tasks someone asked to stop.
    pub stop: Vec<TaskId>,
}

/// What [`Lanes::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "state", rename_all = "snake_case")]
pub enum CancelOutcome {
    /// It was waiting and is gone for good.
    Cancelled,
    /// It is running; its worker was told to stop it.
    Stopping,
    /// It had already finished in this state.
    Finished(TaskState),
    /// No such task (never existed, or expired).
    NotFound,
}

/// What [`Lanes::enqueue_detailed`] did with one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    pub id: TaskId,
    /// True when a `dedupe` key matched: `id` is the task already queued or running.
    pub existing: bool,
}

/// One key of a queue with work: its holder and its waiting tasks.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub key: String,
    /// Tasks of the key ready, delayed or running (at most its key concurrency).
    pub slots_held: u64,
    /// Tasks waiting behind them.
    pub waiting: u64,
    /// For one-slot keys: the task holding it.
    pub holder: Option<TaskId>,
    pub holder_state: Option<TaskState>,
}

/// Depths and counters of one queue.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueStats {
    pub queue: String,
    /// Waiting to run: in the ready set or behind their key.
    pub queued: u64,
    /// Of `queued`, those waiting behind an earlier task of their key.
    pub waiting_on_key: u64,
    pub scheduled: u64,
    pub running: u64,
    pub dead: u64,
    pub counters: HashMap<String, u64>,
}

impl QueueStats {
    /// Builds the stats from the queue's set sizes and its raw `stats` hash (one place knows that
    /// `laned` is a gauge of tasks waiting behind their key, counted as queued).
    pub(crate) fn from_parts(
        queue: &str,
        ready: u64,
        scheduled: u64,
        running: u64,
        dead: u64,
        raw: HashMap<String, i64>,
    ) -> Self {
        let mut counters: HashMap<String, u64> = raw
            .into_iter()
            .map(|(name, n)| (name, n.max(0) as u64))
            .collect();
        let waiting_on_key = counters.remove("laned").unwrap_or(0);
        Self {
            queue: queue.to_owned(),
            queued: ready + waiting_on_key,
            waiting_on_key,
            scheduled,
            running,
            dead,
            counters,
        }
    }
}

/// The engine's client; cheap to clone, one multiplexed connection underneath (to one server or
/// to every node of a Redis Cluster).
#[derive(Clone)]
pub struct Lanes {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    conn: Conn,
    keys: Keys,
    cfg: Config,
    known_queues: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("prefix", &self.inner.cfg.prefix)
            .finish_non_exhaustive()
    }
}

impl Lanes {
    /// Connects to Redis: a `redis://`, `rediss://` or `redis+unix://` URL (AUTH in the URL) for
    /// one server, `redis+cluster://host:port,host:port` for a Redis Cluster.
    pub async fn connect(url: &str, cfg: Config) -> Result<Self> {
        let endpoint = Endpoint::open(url)?;
        let conn = endpoint
            .shared(SharedOptions {
                response_timeout: cfg.response_timeout,
                ..SharedOptions::default()
            })
            .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                conn,
                keys: Keys::new(cfg.prefix.clone()),
                cfg,
                known_queues: Mutex::new(HashSet::new()),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// A clone of the shared multiplexed connection, for callers with their own commands.
    pub fn connection(&self) -> Conn {
        self.inner.conn.clone()
    }

    /// Where this client connects (for components that open connections of their own).
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// A dedicated connection without a response timeout, for blocking commands.
    pub async fn blocking_connection(&self) -> Result<Conn> {
        Ok(self
            .inner
            .endpoint
            .dedicated(Duration::from_secs(5))
            .await?)
    }

    fn qkeys(&self, queue: &str) -> QueueKeys {
        self.inner.keys.queue(queue)
    }

    /// Records a queue name so listings (`queues`, the dashboard) show it before its first task.
    pub async fn note_queue(&self, queue: &str) -> Result<()> {
        let known = self
            .inner
            .known_queues
            .lock()
            .map(|q| q.contains(queue))
            .unwrap_or(false);
        if !known {
            let _: () = redis::cmd("SADD")
                .arg(self.inner.keys.queues())
                .arg(queue)
                .query_async(&mut self.connection())
                .await?;
            if let Ok(mut q) = self.inner.known_queues.lock() {
                q.insert(queue.to_owned());
            }
        }
        Ok(())
    }

    /// Enqueues one task and returns its id (for a `dedupe` key already taken, the existing id).
    pub async fn enqueue(&self, queue: &str, task: NewTask) -> Result<TaskId> {
        let mut ids = self.enqueue_bulk(queue, vec![task]).await?;
        Ok(ids.remove(0))
    }

    /// Enqueues many tasks in one round trip and returns their ids.
    pub async fn enqueue_bulk(&self, queue: &str, tasks: Vec<NewTask>) -> Result<Vec<TaskId>> {
        Ok(self
            .enqueue_detailed(queue, tasks)
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect())
    }

    /// Enqueues many tasks (one script call per 1000, pipelined: one round trip) and says, per
    /// task, whether a `dedupe` key matched an existing task. A `reject` key that is taken fails
    /// the whole call with [`Error::KeyBusy`] before anything is written.
    pub async fn enqueue_detailed(
        &self,
        queue: &str,
        tasks: Vec<NewTask>,
    ) -> Result<Vec<Enqueued>> {
        validate_queue(queue)?;
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let cfg = &self.inner.cfg;
        let mut encoded = Vec::with_capacity(tasks.len());
        for t in &tasks {
            validate_kind(&t.kind)?;
            if t.priority > 9 {
                return Err(Error::InvalidPriority {
                    priority: t.priority,
                });
            }
            if let Some(key) = &t.key {
                validate_key(key)?;
                let single = matches!(t.key_policy, KeyPolicy::Reject | KeyPolicy::Dedupe);
                if t.key_concurrency == 0 || (single && t.key_concurrency != 1) {
                    return Err(Error::InvalidKeyConcurrency {
                        concurrency: t.key_concurrency,
                        policy: t.key_policy.to_string(),
                    });
                }
            }
            let delay_ms = u64::try_from(t.delay.as_millis())
                .ok()
                .filter(|ms| *ms < 100 * 365 * 24 * 3600 * 1000)
                .ok_or(Error::InvalidDelay { delay: t.delay })?;
            let (payload, enc) =
                codec::encode(&t.payload, cfg.compress_threshold, cfg.max_payload)?;
            encoded.push((TaskId::generate(queue), t, payload, enc, delay_ms));
        }
        self.note_queue(queue).await?;
        let k = self.qkeys(queue);
        let mut pipe = redis::pipe();
        for chunk in encoded.chunks(1000) {
            let mut inv = SCRIPTS.enqueue.prepare_invoke();
            inv.key(&k.ready)
                .key(&k.delayed)
                .key(&k.signal)
                .key(&k.seq)
                .key(&k.stats);
            inv.key(&k.kheld).key(&k.kowner);
            inv.arg(&k.task_prefix).arg(&k.lane_prefix).arg(chunk.len());
            for (id, t, payload, enc, delay_ms) in chunk {
                inv.arg(id.as_str())
                    .arg(&t.kind)
                    .arg(payload.as_slice())
                    .arg(*enc)
                    .arg(t.priority)
                    .arg(*delay_ms)
                    .arg(opt(t.max_retries))
                    .arg(opt(t.soft_limit.map(|d| d.as_millis())))
                    .arg(opt(t.hard_limit.map(|d| d.as_millis())))
                    .arg(t.key.as_deref().unwrap_or(""))
                    .arg(t.key_policy.as_str())
                    .arg(t.key_concurrency);
            }
            pipe.invoke_script(&inv);
        }
        let mut conn = self.connection();
        let replies = match pipe.query_async::<Vec<Vec<Value>>>(&mut conn).await {
            Ok(r) => r,
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                // First use on this server: load the script, then send the batch again.
                SCRIPTS
                    .enqueue
                    .prepare_invoke()
                    .load_async(&mut conn)
                    .await?;
                pipe.query_async::<Vec<Vec<Value>>>(&mut conn).await?
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::with_capacity(encoded.len());
        let mut ids = encoded.into_iter().map(|(id, ..)| id);
        for reply in replies {
            if let Some(busy) = busy_reply(&reply) {
                return Err(busy);
            }
            for v in reply {
                let Some(id) = ids.next() else { break };
                match v {
                    Value::Int(_) => out.push(Enqueued {
                        id,
                        existing: false,
                    }),
                    other => {
                        let existing: TaskId = text(other).parse()?;
                        out.push(Enqueued {
                            id: existing,
                            existing: true,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Leases up to `n` tasks of `queue` to `worker` for the configured lease.
    pub async fn fetch(&self, queue: &str, worker: &str, n: usize) -> Result<FetchBatch> {
        let k = self.qkeys(queue);
        let reply: Vec<Value> = SCRIPTS
            .fetch
            .key(&k.ready)
            .key(&k.delayed)
            .key(&k.leased)
            .key(&k.seq)
            .key(&k.signal)
            .arg(&k.task_prefix)
            .arg(n)
            .arg(worker)
            .arg(self.inner.cfg.lease.as_millis() as u64)
            .invoke_async(&mut self.connection())
            .await?;
        parse_fetch(reply)
    }

    /// Records success. `Err(StaleLease)` when the lease is no longer ours.
    pub async fn ack(&self, lease: &Lease, result: &Json) -> Result<()> {
        self.ack_and_fetch(lease, result, "", 0).await.map(drop)
    }

    /// Records success and, in the same script call, leases up to `n` more tasks of the same
    /// queue to `worker`: one round trip per task while a queue is busy.
    pub async fn ack_and_fetch(
        &self,
        lease: &Lease,
        result: &Json,
        worker: &str,
        n: usize,
    ) -> Result<FetchBatch> {
        self.ack_and_fetch_once(lease, result, worker, n, None)
            .await
    }

    /// [`Lanes::ack_and_fetch`] that may be sent again after its reply was lost (a timeout while
    /// Redis stalled: the script may have run). Every try of one write carries the same
    /// `write_id`; a try finding that write already recorded succeeds without leasing anything,
    /// instead of reporting the lease stale. (Tasks the lost reply leased expire and return.)
    pub async fn ack_and_fetch_once(
        &self,
        lease: &Lease,
        result: &Json,
        worker: &str,
        n: usize,
        write_id: Option<u64>,
    ) -> Result<FetchBatch> {
        let k = self.qkeys(lease.queue());
        let mut reply: Vec<Value> = SCRIPTS
            .ack
            .key(k.task(lease.id.as_str()))
            .key(&k.leased)
            .key(&k.stats)
            .key(&k.ready)
            .key(&k.delayed)
            .key(&k.seq)
            .key(&k.signal)
            .key(&k.kheld)
            .key(&k.kowner)
            .arg(lease.id.as_str())
            .arg(&lease.token)
            .arg(serde_json::to_vec(result)?)
            .arg(self.inner.cfg.result_ttl.as_millis() as u64)
            .arg(&k.task_prefix)
            .arg(n)
            .arg(worker)
            .arg(self.inner.cfg.lease.as_millis() as u64)
            .arg(&k.lane_prefix)
            .arg(&k.batch_prefix)
            .arg(&k.batch_events)
            .arg(opt(write_id))
            .invoke_async(&mut self.connection())
            .await?;
        let ok = reply.first().and_then(int) == Some(1);
        stale_unless(ok, lease)?;
        reply.remove(0);
        parse_fetch(reply)
    }

    /// Ends an attempt that did not succeed. `Err(StaleLease)` when the lease is no longer ours.
    pub async fn fail(&self, lease: &Lease, mode: FailMode, error: &str) -> Result<()> {
        self.fail_once(lease, mode, error, None).await
    }

    /// [`Lanes::fail`] that may be sent again after its reply was lost: see
    /// [`Lanes::ack_and_fetch_once`].
    pub async fn fail_once(
        &self,
        lease: &Lease,
        mode: FailMode,
        error: &str,
        write_id: Option<u64>,
    ) -> Result<()> {
        let k = self.qkeys(lease.queue());
        let (name, delay) = match mode {
            FailMode::Retry { delay } => ("retry", delay),
            FailMode::Dead => ("dead", Duration::ZERO),
            FailMode::Failed => ("failed", Duration::ZERO),
            FailMode::Cancelled => ("cancelled", Duration::ZERO),
        };
        let cfg = &self.inner.cfg;
        let ok: i64 = SCRIPTS
            .fail
            .key(k.task(lease.id.as_str()))
            .key(&k.leased)
            .key(&k.delayed)
            .key(&k.dead)
            .key(&k.stats)
            .key(&k.stop)
            .key(&k.signal)
            .key(&k.ready)
            .key(&k.seq)
            .key(&k.kheld)
            .key(&k.kowner)
            .arg(lease.id.as_str())
            .arg(&lease.token)
            .arg(error)
            .arg(name)
            .arg(delay.as_millis() as u64)
            .arg(cfg.result_ttl.as_millis() as u64)
            .arg(cfg.dead_ttl.as_millis() as u64)
            .arg(cfg.dead_cap)
            .arg(&k.task_prefix)
            .arg(&k.lane_prefix)
            .arg(&k.batch_prefix)
            .arg(&k.batch_events)
            .arg(opt(write_id))
            .invoke_async(&mut self.connection())
            .await?;
        stale_unless(ok == 1, lease)
    }

    /// Hands a leased task back to the front of its queue without counting the attempt.
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        let k = self.qkeys(lease.queue());
        let ok: i64 = SCRIPTS
            .release
            .key(k.task(lease.id.as_str()))
            .key(&k.leased)
            .key(&k.ready)
            .key(&k.signal)
            .arg(lease.id.as_str())
            .arg(&lease.token)
            .invoke_async(&mut self.connection())
            .await?;
        stale_unless(ok == 1, lease)
    }

    /// Writes progress for a running task (fenced).
    pub async fn progress(&self, lease: &Lease, progress: &Json) -> Result<()> {
        let k = self.qkeys(lease.queue());
        let ok: i64 = SCRIPTS
            .progress
            .key(k.task(lease.id.as_str()))
            .arg(&lease.token)
            .arg(serde_json::to_vec(progress)?)
            .invoke_async(&mut self.connection())
            .await?;
        stale_unless(ok == 1, lease)
    }

    /// Renews the given leases of one queue; one script call for all of them.
    pub async fn renew(&self, queue: &str, leases: &[Lease]) -> Result<Renewal> {
        if leases.is_empty() {
            return Ok(Renewal::default());
        }
        let k = self.qkeys(queue);
        let mut inv = SCRIPTS.renew.prepare_invoke();
        inv.key(&k.leased).key(&k.stop);
        inv.arg(&k.task_prefix)
            .arg(self.inner.cfg.lease.as_millis() as u64);
        for l in leases {
            inv.arg(l.id.as_str()).arg(&l.token);
        }
        let (lost, stop): (Vec<String>, Vec<String>) =
            inv.invoke_async(&mut self.connection()).await?;
        let parse = |v: Vec<String>| v.into_iter().filter_map(|s| s.parse().ok()).collect();
        Ok(Renewal {
            lost: parse(lost),
            stop: parse(stop),
        })
    }

    /// Returns expired leases of `queue` to the queue, or dead-letters them once their retry
    /// budget (`max_retries` per kind, else `default_max_retries`) is spent.
    /// Returns (expired, requeued). Safe to call from many workers at once.
    pub async fn reap(
        &self,
        queue: &str,
        default_max_retries: u32,
        max_retries: &HashMap<String, u32>,
    ) -> Result<(u64, u64)> {
        let k = self.qkeys(queue);
        let cfg = &self.inner.cfg;
        let limits = if max_retries.is_empty() {
            "{}".to_owned()
        } else {
            serde_json::to_string(max_retries)?
        };
        let (expired, requeued): (u64, u64) = SCRIPTS
            .reap
            .key(&k.leased)
            .key(&k.ready)
            .key(&k.signal)
            .key(&k.dead)
            .key(&k.stats)
            .key(&k.delayed)
            .key(&k.seq)
            .key(&k.kheld)
            .key(&k.kowner)
            .arg(&k.task_prefix)
            .arg(default_max_retries)
            .arg(limits)
            .arg(cfg.dead_ttl.as_millis() as u64)
            .arg(cfg.dead_cap)
            .arg(&k.lane_prefix)
            .arg(&k.batch_prefix)
            .arg(&k.batch_events)
            .arg(cfg.result_ttl.as_millis() as u64)
            .invoke_async(&mut self.connection())
            .await?;
        Ok((expired, requeued))
    }

    /// Blocks on `conn` (from [`Lanes::blocking_connection`]) until `queue` signals new work or
    /// `timeout` passes. Returns true when woken by a signal.
    pub async fn wait_for_work(
        &self,
        conn: &mut Conn,
        queue: &str,
        timeout: Duration,
    ) -> Result<bool> {
        let k = self.qkeys(queue);
        let secs = timeout.as_secs_f64().max(0.01);
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(&k.signal)
            .arg(secs)
            .query_async(conn)
            .await?;
        Ok(popped.is_some())
    }

    /// Cancels a waiting task for good, or asks a running one to stop.
    pub async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome> {
        let k = self.qkeys(id.queue());
        let out: String = SCRIPTS
            .cancel
            .key(k.task(id.as_str()))
            .key(&k.ready)
            .key(&k.delayed)
            .key(&k.stop)
            .key(&k.stats)
            .key(&k.signal)
            .key(&k.seq)
            .key(&k.kheld)
            .key(&k.kowner)
            .arg(id.as_str())
            .arg(self.inner.cfg.result_ttl.as_millis() as u64)
            .arg(&k.task_prefix)
            .arg(&k.lane_prefix)
            .arg(&k.batch_prefix)
            .arg(&k.batch_events)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(match out.as_str() {
            "cancelled" => CancelOutcome::Cancelled,
            "stopping" => CancelOutcome::Stopping,
            "missing" => CancelOutcome::NotFound,
            other => other
                .strip_prefix("done:")
                .and_then(TaskState::parse)
                .map_or(CancelOutcome::NotFound, CancelOutcome::Finished),
        })
    }

    /// Puts a dead-lettered task back on its queue with a fresh retry budget. `Ok(false)` when it
    /// is not in the dead-letter set; `Err(KeyBusy)` when its reject/dedupe key is taken.
    pub async fn requeue_dead(&self, id: &TaskId) -> Result<bool> {
        let k = self.qkeys(id.queue());
        let reply: Value = SCRIPTS
            .requeue_dead
            .key(k.task(id.as_str()))
            .key(&k.dead)
            .key(&k.ready)
            .key(&k.signal)
            .key(&k.delayed)
            .key(&k.seq)
            .key(&k.kheld)
            .key(&k.kowner)
            .key(&k.stats)
            .arg(id.as_str())
            .arg(&k.task_prefix)
            .arg(&k.lane_prefix)
            .invoke_async(&mut self.connection())
            .await?;
        match reply {
            Value::Array(items) => Err(busy_reply(&items).unwrap_or(Error::KeyBusy {
                key: String::new(),
                task: String::new(),
            })),
            v => Ok(int(&v) == Some(1)),
        }
    }

    /// The task's current record, or `None` when it does not exist (or has expired). A task
    /// waiting behind its key reports its `key_position` (1 = next of its key).
    pub async fn task(&self, id: &TaskId) -> Result<Option<TaskInfo>> {
        let k = self.qkeys(id.queue());
        let tkey = k.task(id.as_str());
        let (fields, rank): (Vec<Option<Vec<u8>>>, Option<u64>) = redis::pipe()
            .cmd("HMGET")
            .arg(&tkey)
            .arg(&INFO_FIELDS[..])
            .cmd("ZRANK")
            .arg(&k.ready)
            .arg(id.as_str())
            .query_async(&mut self.connection())
            .await?;
        let Some(mut info) = task_info(id.clone(), fields, rank) else {
            return Ok(None);
        };
        if let (Some(key), TaskState::Queued | TaskState::Scheduled) =
            (info.key.clone(), info.state)
        {
            info.key_position = Some(
                self.key_position(&k, id, &key, info.position.is_none())
                    .await?,
            );
        }
        Ok(Some(info))
    }

    /// 1-based place of a waiting keyed task among its key's waiting tasks.
    async fn key_position(
        &self,
        k: &QueueKeys,
        id: &TaskId,
        key: &str,
        in_lane: bool,
    ) -> Result<u64> {
        if !in_lane {
            return Ok(1);
        }
        let (rank, owner): (Option<u64>, Option<String>) = redis::pipe()
            .zrank(k.lane(key), id.as_str())
            .hget(&k.kowner, key)
            .query_async(&mut self.connection())
            .await?;
        let Some(rank) = rank else { return Ok(1) };
        // A holder that has not started yet is ahead of the lane too.
        let owner_waiting = match owner {
            Some(owner) => {
                let state: Option<String> = redis::cmd("HGET")
                    .arg(k.task(&owner))
                    .arg("state")
                    .query_async(&mut self.connection())
                    .await?;
                matches!(state.as_deref(), Some("queued" | "scheduled" | "retrying"))
            }
            None => false,
        };
        Ok(rank + 1 + u64::from(owner_waiting))
    }

    /// Many tasks' records in one round trip (missing ones are skipped; no positions).
    pub async fn tasks(&self, ids: &[TaskId]) -> Result<Vec<TaskInfo>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.qkeys(id.queue()).task(id.as_str()))
                .arg(&INFO_FIELDS[..]);
        }
        let rows: Vec<Vec<Option<Vec<u8>>>> = pipe.query_async(&mut self.connection()).await?;
        Ok(ids
            .iter()
            .zip(rows)
            .filter_map(|(id, f)| task_info(id.clone(), f, None))
            .collect())
    }

    /// The decoded payloads of many tasks, in one round trip (`None` for missing or undecodable).
    pub async fn payloads(&self, ids: &[TaskId]) -> Result<Vec<Option<Json>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.qkeys(id.queue()).task(id.as_str()))
                .arg("payload")
                .arg("enc");
        }
        let rows: Vec<(Option<Vec<u8>>, Option<String>)> =
            pipe.query_async(&mut self.connection()).await?;
        let limit = self.inner.cfg.max_payload;
        Ok(rows
            .into_iter()
            .map(|(p, enc)| {
                p.and_then(|p| codec::decode(&p, enc.as_deref().unwrap_or(""), limit).ok())
            })
            .collect())
    }

    /// Every key of a queue that holds a slot or has tasks waiting, with its running or next task
    /// and how many wait behind it. O(active keys): for status pages, not hot paths.
    pub async fn keys_status(&self, queue: &str) -> Result<Vec<KeyStatus>> {
        validate_queue(queue)?;
        let k = self.qkeys(queue);
        let (held, owners): (HashMap<String, u64>, HashMap<String, String>) = redis::pipe()
            .hgetall(&k.kheld)
            .hgetall(&k.kowner)
            .query_async(&mut self.connection())
            .await?;
        let mut names: Vec<String> = held.keys().cloned().collect();
        names.sort();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.zcard(k.lane(name));
            pipe.cmd("HGET")
                .arg(k.task(owners.get(name).map_or("", String::as_str)))
                .arg("state");
        }
        let replies: Vec<Value> = pipe.query_async(&mut self.connection()).await?;
        let mut out = Vec::with_capacity(names.len());
        for (i, name) in names.into_iter().enumerate() {
            let waiting = replies.get(2 * i).and_then(int).unwrap_or(0) as u64;
            let state = replies
                .get(2 * i + 1)
                .cloned()
                .map(text)
                .and_then(|s| TaskState::parse(&s));
            let holder = owners.get(&name).and_then(|id| id.parse().ok());
            out.push(KeyStatus {
                slots_held: held.get(&name).copied().unwrap_or(0),
                waiting,
                holder,
                holder_state: state,
                key: name,
            });
        }
        Ok(out)
    }

    /// Keys of a queue whose task is running now.
    pub async fn executing_keys(&self, queue: &str) -> Result<Vec<String>> {
        Ok(self
            .keys_status(queue)
            .await?
            .into_iter()
            .filter(|k| k.holder_state == Some(TaskState::Running))
            .map(|k| k.key)
            .collect())
    }

    /// One key's tasks that are not finished, in the order they will run: the holder first, then
    /// the lane. Each waiting one carries its `key_position`.
    pub async fn key_tasks(&self, queue: &str, key: &str) -> Result<Vec<TaskInfo>> {
        validate_queue(queue)?;
        validate_key(key)?;
        let k = self.qkeys(queue);
        let (owner, lane): (Option<String>, Vec<String>) = redis::pipe()
            .hget(&k.kowner, key)
            .zrange(k.lane(key), 0, -1)
            .query_async(&mut self.connection())
            .await?;
        let ids: Vec<TaskId> = owner
            .into_iter()
            .chain(lane)
            .filter_map(|s| s.parse().ok())
            .collect();
        let mut infos = self.tasks(&ids).await?;
        let mut next = 1;
        for t in &mut infos {
            if t.state != TaskState::Running && !t.state.is_final() {
                t.key_position = Some(next);
                next += 1;
            }
        }
        Ok(infos)
    }

    /// The newest dead-lettered tasks of a queue (at most `limit`).
    pub async fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<TaskInfo>> {
        validate_queue(queue)?;
        let k = self.qkeys(queue);
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&k.dead)
            .arg(0)
            .arg(limit.saturating_sub(1))
            .arg("REV")
            .query_async(&mut self.connection())
            .await?;
        let ids: Vec<TaskId> = ids.into_iter().filter_map(|s| s.parse().ok()).collect();
        self.tasks(&ids).await
    }

    /// Ids of the tasks currently leased on a queue.
    pub async fn running(&self, queue: &str) -> Result<Vec<TaskId>> {
        let k = self.qkeys(queue);
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&k.leased)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.connection())
            .await?;
        Ok(ids.into_iter().filter_map(|s| s.parse().ok()).collect())
    }

    /// Every queue that has seen a task.
    pub async fn queues(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.inner.keys.queues())
            .query_async(&mut self.connection())
            .await?;
        names.sort();
        Ok(names)
    }

    /// Depths and counters of one queue.
    pub async fn queue_stats(&self, queue: &str) -> Result<QueueStats> {
        validate_queue(queue)?;
        let k = self.qkeys(queue);
        let (ready, scheduled, running, dead, raw): (u64, u64, u64, u64, HashMap<String, i64>) =
            redis::pipe()
                .zcard(&k.ready)
                .zcard(&k.delayed)
                .zcard(&k.leased)
                .zcard(&k.dead)
                .hgetall(&k.stats)
                .query_async(&mut self.connection())
                .await?;
        Ok(QueueStats::from_parts(
            queue, ready, scheduled, running, dead, raw,
        ))
    }
}

fn opt(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// `{'busy', key, owner}` from a script: a reject/dedupe key is taken.
fn busy_reply(items: &[Value]) -> Option<Error> {
    match items {
        [Value::BulkString(tag), key, owner] if tag.as_slice() == b"busy" => Some(Error::KeyBusy {
            key: text(key.clone()),
            task: text(owner.clone()),
        }),
        _ => None,
    }
}

fn stale_unless(ok: bool, lease: &Lease) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::StaleLease {
            id: lease.id.to_string(),
        })
    }
}

const INFO_FIELDS: [&str; 16] = [
    "kind",
    "state",
    "attempts",
    "prio",
    "result",
    "error",
    "progress",
    "worker",
    "created",
    "started",
    "finished",
    "run_at",
    "stop_requested",
    "enc",
    "key",
    "lane",
];

fn task_info(id: TaskId, f: Vec<Option<Vec<u8>>>, rank: Option<u64>) -> Option<TaskInfo> {
    let text = |i: usize| {
        f.get(i)
            .cloned()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let num = |i: usize| text(i).and_then(|s| s.parse::<u64>().ok());
    let json = |i: usize| {
        f.get(i)
            .cloned()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
    };
    let state = TaskState::parse(&text(1)?)?;
    Some(TaskInfo {
        queue: id.queue().to_owned(),
        kind: text(0).unwrap_or_default(),
        state,
        attempts: num(2).unwrap_or(0) as u32,
        priority: num(3).unwrap_or(0) as u8,
        result: json(4),
        error: text(5),
        progress: json(6),
        worker: text(7).filter(|_| state == TaskState::Running),
        position: rank.filter(|_| state == TaskState::Queued),
        key: text(14),
        key_position: None,
        created_at_ms: num(8).unwrap_or(0),
        started_at_ms: num(9),
        finished_at_ms: num(10),
        run_at_ms: num(11).filter(|_| matches!(state, TaskState::Scheduled | TaskState::Retrying)),
        stop_requested: text(12).is_some(),
        id,
    })
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn bytes(v: Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

fn text(v: Value) -> String {
    String::from_utf8_lossy(&bytes(v)).into_owned()
}

fn parse_fetch(reply: Vec<Value>) -> Result<FetchBatch> {
    const FIELDS: usize = 11;
    let malformed = || {
        Error::Redis(redis::RedisError::from((
            redis::ErrorKind::Client,
            "malformed fetch reply",
        )))
    };
    let mut it = reply.into_iter();
    let now_ms = it.next().as_ref().and_then(int).ok_or_else(malformed)? as u64;
    let next_due = it.next().as_ref().and_then(int).ok_or_else(malformed)?;
    let rest: Vec<Value> = it.collect();
    if !rest.len().is_multiple_of(FIELDS) {
        return Err(malformed());
    }
    let ms = |v: Value| {
        text(v)
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    };
    let mut tasks = Vec::with_capacity(rest.len() / FIELDS);
    let mut rest = rest.into_iter();
    while let Some(id) = rest.next() {
        let mut f: Vec<Value> = rest.by_ref().take(FIELDS - 1).collect();
        let id = text(id);
        let Ok(id) = id.parse::<TaskId>() else {
            continue;
        };
        let key = f.pop().map(text).filter(|k| !k.is_empty());
        let created = f.pop().map(text).and_then(|s| s.parse().ok()).unwrap_or(0);
        let hard = f.pop().and_then(ms);
        let soft = f.pop().and_then(ms);
        let max_retries = f.pop().map(text).and_then(|s| s.parse().ok());
        let attempt = f.pop().as_ref().and_then(int).unwrap_or(1) as u32;
        let encoding = f.pop().map(text).unwrap_or_default();
        let payload = f.pop().map(bytes).unwrap_or_default();
        let kind = f.pop().map(text).unwrap_or_default();
        let token = f.pop().as_ref().and_then(int).unwrap_or(0).to_string();
        tasks.push(Fetched {
            lease: Lease { id, token },
            kind,
            payload,
            encoding,
            attempt,
            max_retries,
            soft_limit: soft,
            hard_limit: hard,
            created_at_ms: created,
            key,
        });
    }
    Ok(FetchBatch {
        tasks,
        now_ms,
        next_due_ms: u64::try_from(next_due).ok(),
    })
}
