//! The API's request and response types. They derive their OpenAPI schemas, and they are what
//! the handlers (de)serialize, so the published document cannot drift from the wire format.
//! Engine types are mirrored here rather than exposed directly: the API is a contract, the
//! engine's structs are free to grow.

use std::collections::BTreeMap;
use std::time::Duration;

use lanes_queue::client::KeyStatus;
use lanes_queue::{KeyPolicy, NewTask, QueueStats, TaskInfo, TaskSummary, WorkerInfo, WorkerStats};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::AppError;

/// Every error body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    #[schema(example = "no task demo.0190f3c2a4b07d2e8f1a2b3c4d5e6f70")]
    pub message: String,
}

/// One task to enqueue.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueTask {
    /// The task kind; the worker runs the handler registered under it.
    #[schema(example = "sleep")]
    pub kind: String,
    /// Any JSON the handler understands (default `{}`). Never put secrets here: pass a
    /// reference the worker resolves.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object, example = json!({"ms": 500}))]
    pub payload: Value,
    /// 0 (lowest) to 9 (highest); default 5. Within a priority, first in first out.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 9)]
    pub priority: Option<u8>,
    /// Run no earlier than this many seconds from now.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub delay_s: Option<f64>,
    /// Retries after a failed first attempt (overrides the kind's setting).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Soft time limit in seconds: the handler is told to wind down.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub soft_limit_s: Option<f64>,
    /// Hard time limit in seconds: the attempt is aborted and counts as a failure.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub hard_limit_s: Option<f64>,
    /// The lane the task belongs to (an account, a project): tasks of one key run one at a time,
    /// in enqueue order; other keys never wait behind them.
    #[serde(default)]
    #[schema(example = "project-42")]
    pub key: Option<String>,
    /// What to do when the key already has work (default `serial`).
    #[serde(default)]
    pub key_policy: Option<KeyPolicyBody>,
    /// Tasks of the key allowed to run at once (serial policy only; default 1).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub key_concurrency: Option<u32>,
}

/// What happens to a task whose key already has work queued or running.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyPolicyBody {
    /// Wait behind the key's earlier tasks, in order.
    Serial,
    /// Refuse with 409 while the key has a task queued or running.
    Reject,
    /// Answer the id of the key's task already queued or running.
    Dedupe,
}

impl From<KeyPolicyBody> for KeyPolicy {
    fn from(p: KeyPolicyBody) -> Self {
        match p {
            KeyPolicyBody::Serial => KeyPolicy::Serial,
            KeyPolicyBody::Reject => KeyPolicy::Reject,
            KeyPolicyBody::Dedupe => KeyPolicy::Dedupe,
        }
    }
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// One task, or a list of tasks enqueued in one round trip.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EnqueueRequest {
    One(EnqueueTask),
    Many(Vec<EnqueueTask>),
}

impl EnqueueTask {
    /// The engine's task, with durations checked.
    pub fn into_new_task(self, at: &str) -> Result<NewTask, AppError> {
        let mut task = NewTask::new(self.kind, self.payload);
        if let Some(p) = self.priority {
            if p > 9 {
                return Err(AppError::BadRequest(format!(
                    "invalid body at {at}priority: {p} is out of range, use 0 (lowest) to 9 (highest)"
                )));
            }
            task = task.priority(p);
        }
        task.delay = seconds(self.delay_s, at, "delay_s")?.unwrap_or_default();
        task.max_retries = self.max_retries;
        task.soft_limit = seconds(self.soft_limit_s, at, "soft_limit_s")?;
        task.hard_limit = seconds(self.hard_limit_s, at, "hard_limit_s")?;
        match self.key {
            Some(key) => {
                task = task.key(key, self.key_policy.map_or(KeyPolicy::Serial, Into::into));
                if let Some(n) = self.key_concurrency {
                    task = task.key_concurrency(n);
                }
            }
            None if self.key_policy.is_some() || self.key_concurrency.is_some() => {
                return Err(AppError::BadRequest(format!(
                    "invalid body at {at}key: key_policy and key_concurrency need a key"
                )));
            }
            None => {}
        }
        Ok(task)
    }
}

fn seconds(v: Option<f64>, at: &str, field: &str) -> Result<Option<Duration>, AppError> {
    v.map(|s| {
        Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| *d <= Duration::from_secs(10 * 365 * 24 * 3600))
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "invalid body at {at}{field}: expected seconds between 0 and 10 years, got {s}"
                ))
            })
    })
    .transpose()
}

/// `202` for one task.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Enqueued {
    #[schema(example = "photos.0190f3c2a4b07d2e8f1a2b3c4d5e6f70")]
    pub task_id: String,
    /// True when a `dedupe` key matched: `task_id` is the task already queued or running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub existing: bool,
}

/// `202` for a list of tasks, ids in request order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnqueuedMany {
    pub task_ids: Vec<String>,
    /// Ids (of `task_ids`) that a `dedupe` key matched to a task already queued or running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub existing: Vec<String>,
}

/// What `POST /api/queues/{queue}/tasks` answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EnqueueResponse {
    One(Enqueued),
    Many(EnqueuedMany),
}

/// A task as stored (its payload is never shown).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    #[schema(example = "photos.0190f3c2a4b07d2e8f1a2b3c4d5e6f70")]
    pub id: String,
    pub queue: String,
    pub kind: String,
    /// `queued`, `scheduled`, `running`, `retrying`, `succeeded`, `failed`, `dead` or `cancelled`.
    #[schema(example = "queued")]
    pub state: String,
    /// Attempts started so far.
    pub attempts: u32,
    pub priority: u8,
    /// The task's key (lane), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// While waiting behind its key: 1 = next of its key to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_position: Option<u64>,
    /// The handler's result, once succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// The last error, after a failed attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The latest progress the handler reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Value>,
    /// The worker running it, while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Position in the queue (0 = next), while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    pub created_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// When a scheduled or retrying task becomes due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at_ms: Option<u64>,
    /// A stop was requested while it runs.
    pub stop_requested: bool,
}

impl From<TaskInfo> for TaskView {
    fn from(t: TaskInfo) -> Self {
        Self {
            id: t.id.to_string(),
            queue: t.queue,
            kind: t.kind,
            state: t.state.as_str().to_owned(),
            attempts: t.attempts,
            priority: t.priority,
            key: t.key,
            key_position: t.key_position,
            result: t.result,
            error: t.error,
            progress: t.progress,
            worker: t.worker,
            position: t.position,
            created_at_ms: t.created_at_ms,
            started_at_ms: t.started_at_ms,
            finished_at_ms: t.finished_at_ms,
            run_at_ms: t.run_at_ms,
            stop_requested: t.stop_requested,
        }
    }
}

/// What `DELETE /api/tasks/{id}` did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancelResponse {
    pub task_id: String,
    /// `cancelled` (it was waiting and is gone) or `stopping` (its worker was told to stop it).
    #[schema(example = "cancelled")]
    pub outcome: String,
}

/// What `POST /api/tasks/{id}/requeue` did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequeueResponse {
    pub task_id: String,
    /// Always `queued`.
    pub state: String,
}

/// Depths and counters of one queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    pub queue: String,
    /// Waiting to run: ready, or waiting behind an earlier task of their key.
    pub queued: u64,
    /// Of `queued`, those waiting behind an earlier task of their key.
    pub waiting_on_key: u64,
    /// Waiting for a run-at time (delayed or backing off before a retry).
    pub scheduled: u64,
    /// Leased to a worker.
    pub running: u64,
    /// In the dead-letter set.
    pub dead: u64,
    /// Fleet-wide counters since the queue was created: `enqueued`, `succeeded`, `failed`,
    /// `retried`, `dead`, `cancelled`, `expired`.
    pub counters: BTreeMap<String, u64>,
    /// Tasks succeeded per second over the last snapshot interval (dashboard stream only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeded_per_s: Option<f64>,
}

impl From<QueueStats> for QueueView {
    fn from(q: QueueStats) -> Self {
        Self {
            queue: q.queue,
            queued: q.queued,
            waiting_on_key: q.waiting_on_key,
            scheduled: q.scheduled,
            running: q.running,
            dead: q.dead,
            counters: q.counters.into_iter().collect(),
            succeeded_per_s: None,
        }
    }
}

impl QueueView {
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// `GET /api/queues`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueList {
    pub queues: Vec<QueueView>,
}

/// `GET /api/queues/{queue}/dead`: newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetters {
    pub queue: String,
    pub tasks: Vec<TaskView>,
}

/// A task a worker holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerTask {
    pub id: String,
    pub kind: String,
    pub attempt: u32,
    /// When it was fetched (reserved) or started (active), ms since the epoch.
    pub since_ms: u64,
}

impl From<TaskSummary> for WorkerTask {
    fn from(t: TaskSummary) -> Self {
        Self {
            id: t.id,
            kind: t.kind,
            attempt: t.attempt,
            since_ms: t.since_ms,
        }
    }
}

/// A worker's counters since it started.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct WorkerCounters {
    pub processed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub dead: u64,
    pub cancelled: u64,
    pub handed_back: u64,
    /// Writes refused because the lease had expired.
    pub stale: u64,
}

impl From<WorkerStats> for WorkerCounters {
    fn from(s: WorkerStats) -> Self {
        Self {
            processed: s.processed,
            succeeded: s.succeeded,
            failed: s.failed,
            retried: s.retried,
            dead: s.dead,
            cancelled: s.cancelled,
            handed_back: s.handed_back,
            stale: s.stale,
        }
    }
}

/// One live worker process.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerView {
    /// Unique per process.
    pub id: String,
    /// The name it was given.
    pub name: String,
    pub host: String,
    pub pid: u32,
    pub queues: Vec<String>,
    /// Slots: tasks it runs at once.
    pub concurrency: usize,
    pub prefetch: usize,
    /// `running`, or `draining` after a shutdown signal.
    pub state: String,
    pub started_at_ms: u64,
    pub heartbeat_at_ms: u64,
    /// Time since its last heartbeat, by this broker's clock.
    pub heartbeat_age_ms: u64,
    /// Running now.
    pub active: Vec<WorkerTask>,
    /// Leased ahead of a free slot.
    pub reserved: Vec<WorkerTask>,
    pub stats: WorkerCounters,
}

impl WorkerView {
    pub fn new(w: WorkerInfo, now_ms: u64) -> Self {
        Self {
            heartbeat_age_ms: now_ms.saturating_sub(w.heartbeat_at_ms),
            id: w.id,
            name: w.name,
            host: w.host,
            pid: w.pid,
            queues: w.queues,
            concurrency: w.concurrency,
            prefetch: w.prefetch,
            state: w.state,
            started_at_ms: w.started_at_ms,
            heartbeat_at_ms: w.heartbeat_at_ms,
            active: w.active.into_iter().map(Into::into).collect(),
            reserved: w.reserved.into_iter().map(Into::into).collect(),
            stats: w.stats.into(),
        }
    }
}

/// `GET /api/workers`: newest heartbeat first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerView>,
}

/// A distributed rate limiter and its state now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LimiterView {
    pub name: String,
    /// As configured, e.g. `8/s` or `50/m,burst=5`.
    pub rate: String,
    pub per_second: f64,
    pub burst: u32,
    /// Tokens that could be granted right now.
    pub available: u32,
    /// Time until one more token is free.
    pub next_free_ms: u64,
    /// When paused (an API said "retry after"), the end of the pause, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_until_ms: Option<u64>,
}

/// A distributed semaphore and its holders now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SemaphoreView {
    pub name: String,
    pub capacity: u32,
    pub held: u32,
}

/// `GET /api/limiters`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LimiterList {
    pub limiters: Vec<LimiterView>,
    pub semaphores: Vec<SemaphoreView>,
}

/// One key (lane) of a queue with work.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    pub queue: String,
    pub key: String,
    /// Tasks of the key ready, scheduled or running (at most its key concurrency).
    pub slots_held: u64,
    /// Tasks waiting behind them.
    pub waiting: u64,
    /// For one-slot keys: the task holding the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_state: Option<String>,
}

impl KeyView {
    pub fn new(queue: &str, k: KeyStatus) -> Self {
        Self {
            queue: queue.to_owned(),
            key: k.key,
            slots_held: k.slots_held,
            waiting: k.waiting,
            holder: k.holder.map(String::from),
            holder_state: k.holder_state.map(|s| s.as_str().to_owned()),
        }
    }
}

/// Fleet-wide sums, for the dashboard's headline.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Totals {
    pub queued: u64,
    pub scheduled: u64,
    pub running: u64,
    pub dead: u64,
    pub workers: u64,
    /// Slots running a task, over all workers.
    pub busy_slots: u64,
    /// Slots in all, over all workers.
    pub slots: u64,
    /// Keys (lanes) with work, over all queues.
    pub keys: u64,
    /// Sum of the queues' rates, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeded_per_s: Option<f64>,
}

/// What the dashboard's event stream sends every interval (event name `snapshot`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    /// When it was taken, ms since the epoch (broker clock).
    pub at_ms: u64,
    /// False when Redis could not be read; everything else is then empty.
    pub redis_ok: bool,
    /// Why it could not be read (generic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub totals: Totals,
    pub queues: Vec<QueueView>,
    pub workers: Vec<WorkerView>,
    /// The next tasks of each queue (queued in run order, then scheduled), a few per queue.
    pub waiting: Vec<TaskView>,
    /// The newest dead letters of each queue.
    pub dead: Vec<TaskView>,
    pub limiters: Vec<LimiterView>,
    pub semaphores: Vec<SemaphoreView>,
    /// Keys (lanes) with work, busiest first (at most 50; `totals.keys` counts them all).
    pub keys: Vec<KeyView>,
    /// Batches (reserved: filled once the engine lists batches).
    #[schema(value_type = Vec<Object>)]
    pub batches: Vec<Value>,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}
