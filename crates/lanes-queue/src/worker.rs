//! The worker runtime: fetch for free slots, run handlers under time limits, renew leases,
//! reap expired ones, publish the worker record, and shut down gracefully.
//!
//! One process runs one [`Worker`]. Its moving parts:
//! - one fetcher per queue: waits for a free slot, leases up to that many tasks in one script
//!   call, and blocks on the queue's signal list (no polling) when the queue is empty; a
//!   rate-limited queue's fetcher takes a grant from the queue's limiter per task instead
//!   (see [`crate::limits`]);
//! - one task per leased task: waits for a run slot (prefetched tasks wait here as "reserved"),
//!   runs the handler, then acks, retries, dead-letters or hands the task back;
//! - one heartbeat loop: renews every held lease (one script call per queue), learns of stop
//!   requests and lost leases, publishes the worker record, and reaps expired leases.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::client::{FailMode, Fetched, Lanes, Lease};
use crate::codec;
use crate::error::{Error, Result};
use crate::handler::{CancelReason, Handler, TaskContext, TaskError};
use crate::held::HeldSet;
use crate::limits::{Limits, QueueLimits, Rate};
use crate::registry::{WorkerInfo, WorkerStats, hostname, now_ms};
use crate::retry::KindConfig;
use crate::task::validate_queue;

/// How long a stopped handler gets to return before it is dropped.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Most tasks leased in one fetch.
const MAX_FETCH: usize = 128;
/// Most tasks one slot runs back to back through ack-and-fetch before it returns to the pool,
/// so the fetchers of a worker's other queues get their turn.
const MAX_CHAIN: u32 = 32;

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Display name (`--name`); the worker's id adds a random suffix so it is unique per process.
    pub name: String,
    /// Queues to consume, in no particular order (each gets its own fetcher).
    pub queues: Vec<String>,
    /// Handlers running at once.
    pub concurrency: usize,
    /// Extra tasks leased ahead of free slots (0: fetch only for free slots).
    pub prefetch: usize,
    /// Exit cleanly after starting this many tasks.
    pub max_tasks: Option<u64>,
    /// On shutdown, how long running tasks may take to finish before they are handed back.
    pub grace: Duration,
    /// How often leases are renewed and the worker record published.
    pub heartbeat: Duration,
    /// Longest an idle fetcher blocks before it looks again (delayed tasks wake it sooner).
    pub idle_wait: Duration,
    /// Settings for kinds registered without their own.
    pub default_kind: KindConfig,
    /// At most this many keyed tasks run at once in this process (`--max-concurrent-keys`,
    /// the seed's `MAX_CONCURRENT_PROJECTS`), independent of `concurrency`; unkeyed tasks do not
    /// count. `None`: no cap beyond `concurrency`.
    pub max_concurrent_keys: Option<usize>,
    /// Per-queue rate limits (`--rate-limit photos=50/m`): a limited queue is fetched no faster
    /// than its rate by all workers together. Queues this worker does not consume are ignored.
    pub rate_limits: HashMap<String, Rate>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            name: format!("{}-{}", hostname(), std::process::id()),
            queues: vec!["default".into()],
            concurrency: 8,
            prefetch: 0,
            max_tasks: None,
            grace: Duration::from_secs(30),
            heartbeat: Duration::from_secs(1),
            idle_wait: Duration::from_secs(5),
            default_kind: KindConfig::default(),
            rate_limits: HashMap::new(),
            max_concurrent_keys: None,
        }
    }
}

struct Kind {
    handler: Arc<dyn Handler>,
    cfg: KindConfig,
}

/// What became of a fenced write about one attempt (see [`Worker::on_write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Redis recorded it: this attempt's outcome is the task's.
    Accepted,
    /// Refused by fencing: the lease was no longer this attempt's.
    Refused,
    /// Redis did not answer through every retry; the lease will expire and the task run again.
    Unanswered,
}

/// One fenced write about an attempt and its outcome, as told to a [`Worker::on_write`] observer.
#[derive(Debug, Clone)]
pub struct WriteReport {
    pub lease: Lease,
    /// `ack`; `retry`, `dead`, `failed` or `cancelled` (a failed attempt, by how it ends); or
    /// `hand back`.
    pub write: &'static str,
    pub outcome: WriteOutcome,
}

type WriteObserver = Arc<dyn Fn(&WriteReport) + Send + Sync>;

/// A worker process: register handlers by kind, then [`Worker::run`].
pub struct Worker {
    lanes: Lanes,
    cfg: WorkerConfig,
    kinds: HashMap<String, Kind>,
    id: String,
    limits: Option<Limits>,
    on_write: Option<WriteObserver>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("queues", &self.cfg.queues)
            .finish_non_exhaustive()
    }
}

/// What a worker did, returned when it exits.
pub type WorkerReport = WorkerStats;

impl Worker {
    pub fn new(lanes: Lanes, cfg: WorkerConfig) -> Self {
        let id = format!("{}-{:08x}", cfg.name, fastrand::u32(..));
        Self {
            lanes,
            cfg,
            kinds: HashMap::new(),
            id,
            limits: None,
            on_write: None,
        }
    }

    /// Calls `observer` after every ack, failure or hand-back this worker writes, with whether
    /// Redis accepted it or fencing refused it (audits, chaos runs). It runs on the worker's
    /// tasks: keep it short and non-blocking.
    pub fn on_write(mut self, observer: impl Fn(&WriteReport) + Send + Sync + 'static) -> Self {
        self.on_write = Some(Arc::new(observer));
        self
    }

    /// Where the per-queue limiters live: by default a [`Limits`] on the engine's connection and
    /// prefix; pass one to share its retry policy with the handlers' own limiters (or to keep
    /// limiters on another Redis).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Registers the handler for a task kind, with its retry policy and time limits.
    pub fn register(
        mut self,
        kind: impl Into<String>,
        cfg: KindConfig,
        handler: impl Handler,
    ) -> Self {
        self.kinds.insert(
            kind.into(),
            Kind {
                handler: Arc::new(handler),
                cfg,
            },
        );
        self
    }

    /// Registers a handler with the worker's default kind settings.
    pub fn handle(self, kind: impl Into<String>, handler: impl Handler) -> Self {
        let cfg = self.cfg.default_kind.clone();
        self.register(kind, cfg, handler)
    }

    /// This process's unique worker id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `shutdown` fires (or `max_tasks` is reached), then drains: stops fetching, hands
    /// back tasks not yet started, gives running ones `grace` to finish, hands back the rest.
    pub async fn run(self, shutdown: CancellationToken) -> Result<WorkerReport> {
        for q in &self.cfg.queues {
            validate_queue(q)?;
        }
        let concurrency = self.cfg.concurrency.max(1);
        let lanes = &self.lanes;
        let limits = QueueLimits::new(&self.cfg.rate_limits, &self.cfg.queues, || {
            match self.limits {
                Some(limits) => Ok(limits),
                None => Ok(Limits::new(lanes.connection(), lanes.keys().prefix())?),
            }
        })?;
        let sh = Arc::new(Shared {
            lanes: self.lanes,
            id: self.id,
            started_at_ms: now_ms(),
            kinds: self.kinds,
            run_slots: Arc::new(Semaphore::new(concurrency)),
            key_slots: self
                .cfg
                .max_concurrent_keys
                .map(|n| Arc::new(Semaphore::new(n.max(1)))),
            budget: self.cfg.max_tasks.map(AtomicU64::new),
            held: Mutex::new(HeldSet::default()),
            stats: Counters::default(),
            shutdown: shutdown.clone(),
            stop_fetching: CancellationToken::new(),
            abort_running: CancellationToken::new(),
            limits,
            on_write: self.on_write,
            cfg: WorkerConfig {
                concurrency,
                ..self.cfg
            },
        });
        for q in &sh.cfg.queues {
            sh.lanes.note_queue(q).await?;
        }
        sh.publish().await?;
        info!(worker = %sh.id, queues = ?sh.cfg.queues, concurrency, prefetch = sh.cfg.prefetch, "worker started");

        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat_loop(sh.clone(), heartbeat_stop.clone()));
        let tracker = TaskTracker::new();
        let in_hand = Arc::new(Semaphore::new(concurrency + sh.cfg.prefetch));
        let fetchers: Vec<_> = sh
            .cfg
            .queues
            .iter()
            .map(|q| {
                tokio::spawn(fetch_loop(
                    sh.clone(),
                    q.clone(),
                    in_hand.clone(),
                    tracker.clone(),
                ))
            })
            .collect();

        tokio::select! {
            _ = shutdown.cancelled() => info!(worker = %sh.id, "shutdown requested: draining"),
            _ = sh.stop_fetching.cancelled() => info!(worker = %sh.id, "task budget reached: draining"),
        }
        sh.stop_fetching.cancel();
        for f in fetchers {
            let _ = f.await;
        }
        tracker.close();
        if !shutdown.is_cancelled() {
            // Budget reached: let everything started finish, unless a shutdown arrives meanwhile.
            tokio::select! {
                _ = tracker.wait() => {}
                _ = shutdown.cancelled() => {}
            }
        }
        if tokio::time::timeout(sh.cfg.grace, tracker.wait())
            .await
            .is_err()
        {
            let left = tracker.len();
            warn!(worker = %sh.id, tasks = left, grace = ?sh.cfg.grace, "grace period over: handing running tasks back");
            sh.abort_running.cancel();
            tracker.wait().await;
        }
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        if let Err(e) = sh.lanes.remove_worker(&sh.id).await {
            warn!(worker = %sh.id, error = %e, "could not remove the worker record; it expires by itself");
        }
        let report = sh.stats.snapshot();
        info!(worker = %sh.id, processed = report.processed, succeeded = report.succeeded, handed_back = report.handed_back, "worker stopped");
        Ok(report)
    }
}

struct Shared {
    lanes: Lanes,
    id: String,
    cfg: WorkerConfig,
    started_at_ms: u64,
    kinds: HashMap<String, Kind>,
    run_slots: Arc<Semaphore>,
    /// Keyed tasks running in this process (`max_concurrent_keys`).
    key_slots: Option<Arc<Semaphore>>,
    /// Task starts left before `max_tasks` is reached.
    budget: Option<AtomicU64>,
    held: Mutex<HeldSet>,
    stats: Counters,
    /// The caller's shutdown signal.
    shutdown: CancellationToken,
    /// Fetchers stop (shutdown or budget reached).
    stop_fetching: CancellationToken,
    /// Grace is over: running handlers are dropped and their tasks handed back.
    abort_running: CancellationToken,
    /// Limiters of the rate-limited queues.
    limits: QueueLimits,
    /// Told the outcome of every fenced write.
    on_write: Option<WriteObserver>,
}

#[derive(Default)]
struct Counters {
    processed: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    cancelled: AtomicU64,
    handed_back: AtomicU64,
    stale: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WorkerStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerStats {
            processed: g(&self.processed),
            succeeded: g(&self.succeeded),
            failed: g(&self.failed),
            retried: g(&self.retried),
            dead: g(&self.dead),
            cancelled: g(&self.cancelled),
            handed_back: g(&self.handed_back),
            stale: g(&self.stale),
        }
    }
}

impl Shared {
    /// Takes up to `n` task starts from the budget; returns how many were granted.
    fn take_budget(&self, n: usize) -> usize {
        let Some(budget) = &self.budget else { return n };
        let mut granted = 0;
        let _ = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            granted = left.min(n as u64);
            Some(left - granted)
        });
        granted as usize
    }

    fn return_budget(&self, n: usize) {
        if let Some(budget) = &self.budget {
            budget.fetch_add(n as u64, Ordering::SeqCst);
        }
    }

    fn held<T>(&self, f: impl FnOnce(&mut HeldSet) -> T) -> T {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut held)
    }

    /// Starts tracking a leased task (renewed by the heartbeat, shown by inspect).
    fn hold(&self, task: &Fetched, started: bool) -> (CancellationToken, CancellationToken) {
        self.held(|h| h.insert(task, started, now_ms()))
    }

    fn info(&self) -> WorkerInfo {
        let (active, reserved) = self.held(|held| held.summaries());
        WorkerInfo {
            id: self.id.clone(),
            name: self.cfg.name.clone(),
            host: hostname(),
            pid: std::process::id(),
            queues: self.cfg.queues.clone(),
            concurrency: self.cfg.concurrency,
            prefetch: self.cfg.prefetch,
            state: if self.stop_fetching.is_cancelled() {
                "draining"
            } else {
                "running"
            }
            .into(),
            started_at_ms: self.started_at_ms,
            heartbeat_at_ms: now_ms(),
            active,
            reserved,
            stats: self.stats.snapshot(),
        }
    }

    async fn publish(&self) -> Result<()> {
        let ttl = (self.cfg.heartbeat * 5).max(Duration::from_secs(10));
        self.lanes.publish_worker(&self.info(), ttl).await
    }

    fn kind_cfg(&self, kind: &str) -> &KindConfig {
        self.kinds
            .get(kind)
            .map_or(&self.cfg.default_kind, |k| &k.cfg)
    }
}

async fn fetch_loop(sh: Arc<Shared>, queue: String, in_hand: Arc<Semaphore>, tracker: TaskTracker) {
    let mut blocking = None;
    let mut backoff = Duration::from_millis(100);
    // A rate-limited queue leases one task per grant.
    let mut limited = sh.limits.fetcher(&queue);
    let max_fetch = if limited.is_some() { 1 } else { MAX_FETCH };
    loop {
        let first = tokio::select! {
            biased;
            _ = sh.stop_fetching.cancelled() => break,
            p = in_hand.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let mut permits = vec![first];
        while permits.len() < max_fetch {
            match in_hand.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        // Under a key cap, lease no more than the free key slots (any fetched task may be keyed).
        let mut key_permits = Vec::new();
        if let Some(ks) = &sh.key_slots {
            let first = tokio::select! {
                biased;
                _ = sh.stop_fetching.cancelled() => break,
                p = ks.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            key_permits.push(first);
            while key_permits.len() < permits.len() {
                match ks.clone().try_acquire_owned() {
                    Ok(p) => key_permits.push(p),
                    Err(_) => break,
                }
            }
            permits.truncate(key_permits.len());
        }
        let want = sh.take_budget(permits.len());
        if want == 0 {
            sh.stop_fetching.cancel();
            break;
        }
        permits.truncate(want);
        let fetched = match limited.as_mut() {
            None => sh.lanes.fetch(&queue, &sh.id, want).await.map(Some),
            Some(l) => l.fetch(&sh.lanes, &queue, &sh.id, &sh.stop_fetching).await,
        };
        let batch = match fetched {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                sh.return_budget(want);
                break;
            }
            Err(e) => {
                sh.return_budget(want);
                drop(permits);
                warn!(queue = %queue, error = %e, retry_in = ?backoff, "fetch failed");
                tokio::select! {
                    _ = sh.stop_fetching.cancelled() => break,
                    _ = sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let got = batch.tasks.len();
        sh.return_budget(want - got);
        for (task, permit) in batch.tasks.into_iter().zip(permits.drain(..)) {
            let (stop, lost) = sh.hold(&task, false);
            let key_permit = if task.key.is_some() {
                key_permits.pop()
            } else {
                None
            };
            tracker.spawn(run_task(sh.clone(), task, permit, key_permit, stop, lost));
        }
        drop(permits);
        drop(key_permits);
        if got == want {
            continue;
        }
        // The queue is drained: block until a task arrives, the next delayed one is due, or a while.
        let wait = match batch.next_due_ms {
            Some(due) => {
                Duration::from_millis(due.saturating_sub(batch.now_ms)).min(sh.cfg.idle_wait)
            }
            None => sh.cfg.idle_wait,
        };
        if wait.is_zero() {
            continue;
        }
        if blocking.is_none() {
            blocking = sh.lanes.blocking_connection().await.ok();
        }
        let Some(conn) = blocking.as_mut() else {
            tokio::select! {
                _ = sh.stop_fetching.cancelled() => break,
                _ = sleep(wait.min(Duration::from_millis(500))) => continue,
            }
        };
        tokio::select! {
            _ = sh.stop_fetching.cancelled() => break,
            r = sh.lanes.wait_for_work(conn, &queue, wait) => if let Err(e) = r {
                debug!(queue = %queue, error = %e, "blocking wait failed; reconnecting");
                blocking = None;
                sleep(Duration::from_millis(100)).await;
            },
        }
    }
}

enum Outcome {
    Done(Value),
    Error(TaskError),
    Panicked(String),
    HardLimit(Duration),
    /// The handler ignored a stop request for `STOP_GRACE`.
    StopIgnored,
    HandBack,
    LeaseLost,
}

/// Runs a leased task in a slot; while the queue is busy, runs the next one the ack leased.
async fn run_task(
    sh: Arc<Shared>,
    task: Fetched,
    in_hand: OwnedSemaphorePermit,
    mut key_permit: Option<OwnedSemaphorePermit>,
    stop: CancellationToken,
    lost: CancellationToken,
) {
    let mut slot = None;
    let mut next = Some((task, stop, lost));
    let mut chained = 0;
    while let Some((task, stop, lost)) = next.take() {
        if slot.is_none() {
            slot = tokio::select! {
                biased;
                _ = sh.shutdown.cancelled() => None,
                p = sh.run_slots.clone().acquire_owned() => p.ok(),
            };
        }
        let outcome = if slot.is_some() {
            sh.held(|held| held.mark_started(&task.lease, now_ms()));
            Counters::bump(&sh.stats.processed);
            execute(&sh, &task, &stop, &lost).await
        } else {
            Outcome::HandBack
        };
        chained += 1;
        // Chaining would lease past a queue's rate limiter, or past the key cap unless this slot
        // holds a key permit the next task can inherit.
        let may_chain = slot.is_some()
            && chained < MAX_CHAIN
            && !sh.limits.is_limited(task.lease.queue())
            && (sh.key_slots.is_none() || key_permit.is_some());
        next = finish(&sh, &task, outcome, stop.is_cancelled(), may_chain)
            .await
            .map(|t| {
                let (stop, lost) = sh.hold(&t, true);
                (t, stop, lost)
            });
        if next.as_ref().is_none_or(|(t, ..)| t.key.is_none()) {
            key_permit = None;
        }
        // Only this attempt's entry: a retry of the same task may already be held by another slot.
        sh.held(|held| held.remove(&task.lease));
    }
    drop(in_hand);
}

async fn execute(
    sh: &Shared,
    task: &Fetched,
    stop: &CancellationToken,
    lost: &CancellationToken,
) -> Outcome {
    let Some(kind) = sh.kinds.get(&task.kind) else {
        let mut known: Vec<_> = sh.kinds.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Outcome::Error(TaskError::permanent(format!(
            "unknown task kind {:?} on queue {:?} (this worker handles: {})",
            task.kind,
            task.lease.queue(),
            known.join(", ")
        )));
    };
    let payload = match codec::decode(&task.payload, &task.encoding, sh.lanes.config().max_payload)
    {
        Ok(p) => p,
        Err(msg) => return Outcome::Error(TaskError::permanent(msg)),
    };
    let cancel = CancellationToken::new();
    let reason = Arc::new(OnceLock::new());
    let ctx = TaskContext {
        id: task.lease.id.clone(),
        queue: task.lease.queue().to_owned(),
        kind: task.kind.clone(),
        key: task.key.clone(),
        attempt: task.attempt,
        max_retries: task.max_retries.unwrap_or(kind.cfg.retry.max_retries),
        payload,
        cancel: cancel.clone(),
        reason: reason.clone(),
        lanes: sh.lanes.clone(),
        lease: task.lease.clone(),
    };
    let signal = |why: CancelReason| {
        let _ = reason.set(why);
        cancel.cancel();
    };
    let soft = task.soft_limit.or(kind.cfg.soft_limit);
    let hard = task.hard_limit.or(kind.cfg.hard_limit);
    let start = Instant::now();
    let far = start + Duration::from_secs(100 * 365 * 24 * 3600);
    let soft_at = soft.map_or(far, |d| start + d);
    let hard_at = hard.map_or(far, |d| start + d);
    let mut stop_at = far;
    let mut handle = tokio::spawn(kind.handler.call(ctx));
    let outcome = loop {
        tokio::select! {
            biased;
            r = &mut handle => break match r {
                Ok(Ok(v)) => Outcome::Done(v),
                Ok(Err(e)) => match (reason.get(), soft) {
                    (Some(CancelReason::SoftTimeLimit), Some(limit)) => Outcome::Error(TaskError::Retry {
                        message: format!("soft time limit of {limit:?} exceeded: {e}"),
                        after: None,
                    }),
                    _ => Outcome::Error(e),
                },
                Err(join) => Outcome::Panicked(panic_message(join)),
            },
            _ = sh.abort_running.cancelled() => break Outcome::HandBack,
            _ = lost.cancelled() => {
                signal(CancelReason::LeaseLost);
                break Outcome::LeaseLost;
            }
            _ = sleep_until(hard_at) => break Outcome::HardLimit(hard.unwrap_or_default()),
            _ = sleep_until(soft_at), if !cancel.is_cancelled() => signal(CancelReason::SoftTimeLimit),
            _ = stop.cancelled(), if stop_at == far => {
                signal(CancelReason::Stopped);
                stop_at = Instant::now() + STOP_GRACE;
            }
            _ = sleep_until(stop_at) => break Outcome::StopIgnored,
        }
    };
    handle.abort();
    outcome
}

fn panic_message(join: tokio::task::JoinError) -> String {
    if !join.is_panic() {
        return "handler was aborted".into();
    }
    let payload = join.into_panic();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    format!("handler panicked: {msg}")
}

/// Records how the attempt ended. After a success it may lease the worker's next task of the
/// same queue in the same call (`may_chain`), and returns it.
async fn finish(
    sh: &Shared,
    task: &Fetched,
    outcome: Outcome,
    stop_requested: bool,
    may_chain: bool,
) -> Option<Fetched> {
    let lease = &task.lease;
    let retry_or_dead = |message: String, after: Option<Duration>| {
        let policy = sh.kind_cfg(&task.kind).retry;
        let max = task.max_retries.unwrap_or(policy.max_retries);
        if task.attempt <= max {
            let delay = after.unwrap_or_else(|| policy.backoff(task.attempt));
            (FailMode::Retry { delay }, message)
        } else {
            let n = task.attempt;
            (
                FailMode::Dead,
                format!(
                    "gave up after {n} attempt{}: {message}",
                    if n == 1 { "" } else { "s" }
                ),
            )
        }
    };
    let (mode, message) = match outcome {
        Outcome::Done(result) => {
            let n = if may_chain && !sh.stop_fetching.is_cancelled() {
                sh.take_budget(1)
            } else {
                0
            };
            // One id for every try of this write: a try after a lost reply is not "stale".
            let wid = Some(fastrand::u64(1..));
            let batch = record(sh, lease, "ack", &sh.stats.succeeded, || {
                sh.lanes.ack_and_fetch_once(lease, &result, &sh.id, n, wid)
            })
            .await;
            let next = batch.and_then(|b| b.tasks.into_iter().next());
            if n == 1 && next.is_none() {
                sh.return_budget(1);
            }
            return next;
        }
        Outcome::HandBack => {
            record(sh, lease, "hand back", &sh.stats.handed_back, || {
                sh.lanes.release(lease)
            })
            .await;
            return None;
        }
        Outcome::LeaseLost => {
            Counters::bump(&sh.stats.stale);
            warn!(task_id = %lease.id, "lease lost while running: another worker owns this task now");
            return None;
        }
        Outcome::StopIgnored => (
            FailMode::Cancelled,
            "stopped on request; the handler did not return in time".to_owned(),
        ),
        _ if stop_requested => (FailMode::Cancelled, "stopped on request".to_owned()),
        Outcome::Error(TaskError::Permanent { message }) => (FailMode::Failed, message),
        Outcome::Error(TaskError::Retry { message, after }) => retry_or_dead(message, after),
        Outcome::Panicked(message) => retry_or_dead(message, None),
        Outcome::HardLimit(limit) => {
            retry_or_dead(format!("hard time limit of {limit:?} exceeded"), None)
        }
    };
    let counter = match mode {
        FailMode::Retry { .. } => &sh.stats.retried,
        FailMode::Dead => &sh.stats.dead,
        FailMode::Failed => &sh.stats.failed,
        FailMode::Cancelled => &sh.stats.cancelled,
    };
    debug!(task_id = %lease.id, kind = %task.kind, attempt = task.attempt, ?mode, error = %message, "attempt did not succeed");
    let what = match mode {
        FailMode::Retry { .. } => "retry",
        FailMode::Dead => "dead",
        FailMode::Failed => "failed",
        FailMode::Cancelled => "cancelled",
    };
    let wid = Some(fastrand::u64(1..));
    record(sh, lease, what, counter, || {
        sh.lanes.fail_once(lease, mode, &message, wid)
    })
    .await;
    None
}

/// Runs a fenced write, retrying while Redis is unreachable (the lease stays renewed meanwhile).
async fn record<T, F, Fut>(
    sh: &Shared,
    lease: &Lease,
    what: &'static str,
    counter: &AtomicU64,
    write: F,
) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let tell = |outcome| {
        if let Some(observer) = &sh.on_write {
            observer(&WriteReport {
                lease: lease.clone(),
                write: what,
                outcome,
            });
        }
    };
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=8 {
        match write().await {
            Ok(v) => {
                Counters::bump(counter);
                tell(WriteOutcome::Accepted);
                return Some(v);
            }
            Err(Error::StaleLease { .. }) => {
                Counters::bump(&sh.stats.stale);
                tell(WriteOutcome::Refused);
                warn!(task_id = %lease.id, write = what, "refused: the lease expired and the task moved on");
                return None;
            }
            Err(e) if attempt < 8 => {
                debug!(task_id = %lease.id, write = what, error = %e, "write failed; retrying");
                sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tell(WriteOutcome::Unanswered);
                warn!(task_id = %lease.id, write = what, error = %e, "write failed; the lease will expire and the task run again")
            }
        }
    }
    None
}

async fn heartbeat_loop(sh: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(sh.cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let default_max = sh.cfg.default_kind.retry.max_retries;
    let limits: HashMap<String, u32> = sh
        .kinds
        .iter()
        .map(|(name, k)| (name.clone(), k.cfg.retry.max_retries))
        .collect();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let by_queue = sh.held(|held| held.leases_by_queue());
        let lanes = &sh.lanes;
        let renewals = futures::future::join_all(
            by_queue
                .iter()
                .map(|(q, leases)| async move { (leases, lanes.renew(q, leases).await) }),
        );
        let reaps = futures::future::join_all(
            sh.cfg
                .queues
                .iter()
                .map(|q| sh.lanes.reap(q, default_max, &limits)),
        );
        let (renewals, reaps, published) = tokio::join!(renewals, reaps, sh.publish());
        for (sent, r) in renewals {
            match r {
                Ok(r) => sh.held(|held| held.apply_renewal(sent, &r)),
                Err(e) => warn!(worker = %sh.id, error = %e, "lease renewal failed"),
            }
        }
        for (q, r) in sh.cfg.queues.iter().zip(reaps) {
            match r {
                Ok((0, _)) => {}
                Ok((expired, requeued)) => {
                    info!(queue = %q, expired, requeued, "reaped expired leases")
                }
                Err(e) => debug!(queue = %q, error = %e, "reap failed"),
            }
        }
        if let Err(e) = published {
            debug!(worker = %sh.id, error = %e, "publishing the worker record failed");
        }
    }
}
