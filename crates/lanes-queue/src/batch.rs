//! Batches: a parent job with children on one queue, counters updated atomically, a finalize
//! task enqueued exactly once after the last child ends, cancellation, and events.
//!
//! A batch lives in one hash (`P:{q}:batch:<id>`, see [`crate::keys`]) on the same queue — so
//! the same hash tag — as its children. Every change to it happens inside a script:
//! - [`Lanes::create_batch`] writes the batch and enqueues every child in one script call;
//! - a child's **outcome** (ack, permanent failure, death, cancellation; not a retry or a lease
//!   expiry that is retried) is counted inside the engine's own ack / fail / reap / cancel
//!   scripts, once per child; the script that counts the last child enqueues the finalize task
//!   in the same call, so it is enqueued exactly once however many children end at once;
//! - [`Lanes::batch_progress`] takes a child's **absolute** item counts, fenced by its lease;
//!   the batch moves by the difference from that child's previous report, so a redelivered child
//!   (which resumes from [`Lanes::child_progress`]) or an item done twice never counts twice;
//! - [`Lanes::cancel_batch`] marks the batch cancelled, cancels its waiting children at once and
//!   asks its running children to stop through the queue's stop set; the finalize task still
//!   runs once they have all ended.
//!
//! Every change appends an event (`created`, `progress`, `child_succeeded`, `child_failed`,
//! `child_cancelled`, `cancelling`, `finalizing`, `completed`, `cancelled`) with the batch's
//! counters to the queue's **event stream** `P:{q}:batch-events` (a Redis stream capped at about
//! 10 000 entries; read it with [`Lanes::batch_events`] or `XREAD BLOCK`). A finished batch
//! expires after the result TTL, like a finished task.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use redis::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::client::{Lanes, Lease};
use crate::codec;
use crate::error::{Error, Result};
use crate::handler::TaskContext;
use crate::scripts::SCRIPTS;
use crate::task::{NewTask, TaskId, TaskState, validate_kind, validate_queue};

/// Most children one batch may have.
pub const MAX_CHILDREN: usize = 10_000;

/// A batch id: `<queue>.<uuid v7 hex>`, like a task id, so it names its queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BatchId(String);

impl BatchId {
    fn generate(queue: &str) -> Self {
        Self(TaskId::generate(queue).into())
    }

    /// The queue the batch and its children belong to.
    pub fn queue(&self) -> &str {
        self.0.split_once('.').map_or("", |(q, _)| q)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BatchId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        s.parse::<TaskId>()
            .map(|t| Self(t.into()))
            .map_err(|_| Error::InvalidBatchId { id: s.to_owned() })
    }
}

impl TryFrom<String> for BatchId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// The batch a task creates for itself: the same id string, so a task that splits into a batch
/// can be redelivered and create it again without creating a second one (see
/// [`BatchSpec::id`]), and its id finds the batch.
impl From<TaskId> for BatchId {
    fn from(id: TaskId) -> Self {
        Self(id.into())
    }
}

impl From<BatchId> for String {
    fn from(id: BatchId) -> String {
        id.0
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`Lanes::create_batch`] creates.
#[derive(Debug, Clone, Default)]
pub struct BatchSpec {
    /// The batch's id; generated when `None`. With an id, creation is idempotent: when a batch
    /// with this id exists, nothing is written and its id is returned.
    pub id: Option<BatchId>,
    /// The children, enqueued at once on the batch's queue. They may not carry a key.
    pub children: Vec<NewTask>,
    /// Items the children will process together (the denominator of `progress`).
    pub total_items: u64,
    /// Enqueued exactly once, after the last child ended (succeeded, failed, dead or
    /// cancelled). Its result becomes the batch's result. It may not carry a key.
    pub finalize: Option<NewTask>,
    /// Anything the caller wants kept with the batch (shown by [`Lanes::batch`]).
    pub meta: Json,
}

impl BatchSpec {
    pub fn new(children: Vec<NewTask>) -> Self {
        Self {
            children,
            ..Self::default()
        }
    }

    /// Creates the batch under this id, idempotently (see [`BatchSpec::id`]).
    pub fn id(mut self, id: BatchId) -> Self {
        self.id = Some(id);
        self
    }

    pub fn total_items(mut self, n: u64) -> Self {
        self.total_items = n;
        self
    }

    pub fn finalize(mut self, task: NewTask) -> Self {
        self.finalize = Some(task);
        self
    }

    pub fn meta(mut self, meta: Json) -> Self {
        self.meta = meta;
        self
    }
}

/// Where a batch is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Children are queued or running.
    Running,
    /// Every child ended; the finalize task is queued or running.
    Finalizing,
    /// Every child ended and the finalize task (if any) ended.
    Completed,
    /// Cancelled: waiting children were removed, running ones told to stop. `finished_at_ms`
    /// says whether the finalize step has run yet.
    Cancelled,
}

impl BatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finalizing => "finalizing",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "finalizing" => Self::Finalizing,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

impl fmt::Display for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch as stored, from [`Lanes::batch`].
#[derive(Debug, Clone, Serialize)]
pub struct BatchInfo {
    pub id: BatchId,
    pub queue: String,
    pub state: BatchState,
    pub total_children: u64,
    /// Children that ended for good (the next four added up).
    pub children_done: u64,
    pub children_succeeded: u64,
    /// Failed permanently or dead (retries spent, or a lease that expired too often).
    pub children_failed: u64,
    pub children_cancelled: u64,
    pub total_items: u64,
    pub processed_items: u64,
    pub success_count: u64,
    pub error_count: u64,
    /// `processed_items / total_items` in percent (children done / children without items),
    /// one decimal.
    pub progress: f64,
    pub children: Vec<TaskId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalize_task: Option<TaskId>,
    /// How the finalize task ended: succeeded, failed (failed or dead) or cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalize_state: Option<TaskState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalize_error: Option<String>,
    /// The finalize task's result (or what a task wrote with [`Lanes::set_batch_result`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Json>,
    pub meta: Json,
    pub created_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at_ms: Option<u64>,
    /// Set once the batch is over (it then expires after the result TTL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
}

impl BatchInfo {
    /// True once every child and the finalize task have ended.
    pub fn is_finished(&self) -> bool {
        self.finished_at_ms.is_some()
    }
}

/// One child's progress, as absolute counts since the child's first attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildProgress {
    /// Items done (succeeded + errors).
    pub processed: u64,
    pub succeeded: u64,
    pub errors: u64,
}

/// What [`Lanes::cancel_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BatchCancel {
    /// The batch is cancelled: `removed` waiting children are gone for good, `stopping`
    /// running ones were told to stop. The finalize task runs once they have all ended.
    Cancelled { removed: u64, stopping: u64 },
    /// Too late: every child had already ended (the batch is finalizing or finished).
    Finished { state: BatchState },
    /// No such batch (never existed, or expired).
    NotFound,
}

/// One entry of a queue's batch event stream.
#[derive(Debug, Clone, Serialize)]
pub struct BatchEvent {
    /// The stream entry id (pass it as `after` to read on).
    pub id: String,
    pub batch: BatchId,
    /// `created`, `progress`, `child_succeeded`, `child_failed`, `child_cancelled`,
    /// `cancelling`, `finalizing`, `completed` or `cancelled`.
    pub event: String,
    pub state: Option<BatchState>,
    pub total_children: u64,
    pub children_done: u64,
    pub total_items: u64,
    pub processed_items: u64,
    pub success_count: u64,
    pub error_count: u64,
}

struct Encoded {
    id: TaskId,
    kind: String,
    payload: Vec<u8>,
    enc: &'static str,
    priority: u8,
    delay_ms: u64,
    max_retries: String,
    soft_ms: String,
    hard_ms: String,
}

fn encode(lanes: &Lanes, queue: &str, t: &NewTask, what: &str) -> Result<Encoded> {
    validate_kind(&t.kind)?;
    if t.priority > 9 {
        return Err(Error::InvalidPriority {
            priority: t.priority,
        });
    }
    if t.key.is_some() {
        return Err(Error::InvalidBatch {
            reason: format!("{what} carries a key; batch tasks cannot be keyed"),
        });
    }
    let delay_ms = u64::try_from(t.delay.as_millis())
        .ok()
        .filter(|ms| *ms < 100 * 365 * 24 * 3600 * 1000)
        .ok_or(Error::InvalidDelay { delay: t.delay })?;
    let cfg = lanes.config();
    let (payload, enc) = codec::encode(&t.payload, cfg.compress_threshold, cfg.max_payload)?;
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis().to_string());
    Ok(Encoded {
        id: TaskId::generate(queue),
        kind: t.kind.clone(),
        payload,
        enc,
        priority: t.priority,
        delay_ms,
        max_retries: t.max_retries.map(|n| n.to_string()).unwrap_or_default(),
        soft_ms: ms(t.soft_limit).unwrap_or_default(),
        hard_ms: ms(t.hard_limit).unwrap_or_default(),
    })
}

impl Lanes {
    /// Creates a batch on `queue` and enqueues all its children, in one script call (one round
    /// trip): either everything is written or nothing is. With [`BatchSpec::id`] set and that
    /// batch already there, nothing is written and the id is returned.
    #[tracing::instrument(skip(self, spec), fields(queue = %queue, children = spec.children.len()))]
    pub async fn create_batch(&self, queue: &str, spec: BatchSpec) -> Result<BatchId> {
        validate_queue(queue)?;
        if spec.children.len() > MAX_CHILDREN {
            return Err(Error::InvalidBatch {
                reason: format!(
                    "{} children; a batch holds at most {MAX_CHILDREN}",
                    spec.children.len()
                ),
            });
        }
        let children = spec
            .children
            .iter()
            .enumerate()
            .map(|(i, t)| encode(self, queue, t, &format!("child {i}")))
            .collect::<Result<Vec<_>>>()?;
        let finalize = spec
            .finalize
            .as_ref()
            .map(|t| encode(self, queue, t, "the finalize task"))
            .transpose()?;
        let meta = serde_json::to_vec(&spec.meta)?;
        self.note_queue(queue).await?;
        let explicit = spec.id.is_some();
        let id = match spec.id {
            Some(id) if id.queue() != queue => {
                return Err(Error::InvalidBatch {
                    reason: format!(
                        "batch id {id} belongs to queue {:?}, not {queue:?}",
                        id.queue()
                    ),
                });
            }
            Some(id) => id,
            None => BatchId::generate(queue),
        };
        let k = self.keys().queue(queue);
        let mut inv = SCRIPTS.batch_create.prepare_invoke();
        inv.key(k.batch(id.as_str()))
            .key(&k.ready)
            .key(&k.delayed)
            .key(&k.signal)
            .key(&k.seq)
            .key(&k.stats)
            .key(&k.batch_events);
        inv.arg(id.as_str())
            .arg(&k.task_prefix)
            .arg(&k.batch_prefix)
            .arg(self.config().result_ttl.as_millis() as u64)
            .arg(spec.total_items)
            .arg(meta);
        match &finalize {
            Some(f) => inv
                .arg(f.id.as_str())
                .arg(&f.kind)
                .arg(f.payload.as_slice())
                .arg(f.enc)
                .arg(f.priority)
                .arg(&f.max_retries)
                .arg(&f.soft_ms)
                .arg(&f.hard_ms),
            None => inv
                .arg("")
                .arg("")
                .arg("")
                .arg("")
                .arg(5)
                .arg("")
                .arg("")
                .arg(""),
        };
        inv.arg(children.len());
        for c in &children {
            inv.arg(c.id.as_str())
                .arg(&c.kind)
                .arg(c.payload.as_slice())
                .arg(c.enc)
                .arg(c.priority)
                .arg(c.delay_ms)
                .arg(&c.max_retries)
                .arg(&c.soft_ms)
                .arg(&c.hard_ms);
        }
        let created: i64 = inv.invoke_async(&mut self.connection()).await?;
        if created != 1 {
            if explicit {
                tracing::debug!(batch = %id, "batch exists already");
                return Ok(id);
            }
            // A v7 uuid collision: practically impossible, but never overwrite a batch.
            return Err(Error::InvalidBatch {
                reason: format!("batch id {id} already exists"),
            });
        }
        tracing::debug!(batch = %id, "batch created");
        Ok(id)
    }

    /// The batch's current record, or `None` when it does not exist (or has expired).
    pub async fn batch(&self, id: &BatchId) -> Result<Option<BatchInfo>> {
        let k = self.keys().queue(id.queue());
        let raw: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
            .arg(k.batch(id.as_str()))
            .query_async(&mut self.connection())
            .await?;
        Ok(batch_info(id, &raw))
    }

    /// Cancels a batch: waiting children are removed at once, running ones are told to stop
    /// (they see it within a heartbeat), and the finalize task still runs once all have ended.
    #[tracing::instrument(skip(self), fields(batch = %id))]
    pub async fn cancel_batch(&self, id: &BatchId) -> Result<BatchCancel> {
        let k = self.keys().queue(id.queue());
        let reply: Value = SCRIPTS
            .batch_cancel
            .key(k.batch(id.as_str()))
            .key(&k.ready)
            .key(&k.delayed)
            .key(&k.stop)
            .key(&k.stats)
            .key(&k.signal)
            .key(&k.seq)
            .key(&k.kheld)
            .key(&k.kowner)
            .key(&k.batch_events)
            .arg(id.as_str())
            .arg(self.config().result_ttl.as_millis() as u64)
            .arg(&k.task_prefix)
            .arg(&k.lane_prefix)
            .arg(&k.batch_prefix)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(match reply {
            Value::Array(v) => BatchCancel::Cancelled {
                removed: v.first().and_then(int).unwrap_or(0).max(0) as u64,
                stopping: v.get(1).and_then(int).unwrap_or(0).max(0) as u64,
            },
            other => {
                let s = text(&other);
                match s.strip_prefix("done:").and_then(BatchState::parse) {
                    Some(state) => BatchCancel::Finished { state },
                    None => BatchCancel::NotFound,
                }
            }
        })
    }

    /// Records a batch child's progress as **absolute** counts for this child (not
    /// increments), fenced by its lease: the batch's counters move by the difference from the
    /// child's previous report. Returns the batch's state, so a child can stop early when it is
    /// [`BatchState::Cancelled`]. `Err(StaleLease)` once the lease is lost.
    pub async fn batch_progress(&self, lease: &Lease, p: ChildProgress) -> Result<BatchState> {
        let k = self.keys().queue(lease.queue());
        let reply: Vec<Value> = SCRIPTS
            .batch_progress
            .key(k.task(lease.id.as_str()))
            .key(&k.batch_events)
            .arg(&lease.token)
            .arg(&k.batch_prefix)
            .arg(p.processed)
            .arg(p.succeeded)
            .arg(p.errors)
            .invoke_async(&mut self.connection())
            .await?;
        match reply.first().and_then(int) {
            Some(1) => Ok(reply
                .get(1)
                .map(text)
                .and_then(|s| BatchState::parse(&s))
                .unwrap_or(BatchState::Running)),
            Some(0) => Err(Error::StaleLease {
                id: lease.id.to_string(),
            }),
            Some(-2) => Err(Error::BatchNotFound {
                id: format!("of task {}", lease.id),
            }),
            _ => Err(Error::NotInBatch {
                id: lease.id.to_string(),
            }),
        }
    }

    /// A batch child's last recorded progress (zeros before its first report), so a redelivered
    /// child can resume after its last synced item. `None` when the task is not a batch child
    /// (or has expired).
    pub async fn child_progress(&self, id: &TaskId) -> Result<Option<ChildProgress>> {
        let k = self.keys().queue(id.queue());
        let (batch, prog): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(k.task(id.as_str()))
            .arg("batch")
            .arg("bprog")
            .query_async(&mut self.connection())
            .await?;
        if batch.is_none() {
            return Ok(None);
        }
        let mut n = prog
            .unwrap_or_default()
            .split(',')
            .map(|v| v.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
            .into_iter();
        Ok(Some(ChildProgress {
            processed: n.next().unwrap_or(0),
            succeeded: n.next().unwrap_or(0),
            errors: n.next().unwrap_or(0),
        }))
    }

    /// The batch a task belongs to, as a child or as its finalize task.
    pub async fn batch_of(&self, id: &TaskId) -> Result<Option<BatchId>> {
        let k = self.keys().queue(id.queue());
        let (batch, fin_of): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(k.task(id.as_str()))
            .arg("batch")
            .arg("fin_of")
            .query_async(&mut self.connection())
            .await?;
        batch.or(fin_of).map(|s| s.parse()).transpose()
    }

    /// Writes the batch's result from one of its running tasks (fenced by its lease). A batch
    /// with a finalize task gets that task's result automatically; this is for the rest (a
    /// batch of one child that sums up its own work).
    pub async fn set_batch_result(&self, lease: &Lease, result: &Json) -> Result<()> {
        let k = self.keys().queue(lease.queue());
        let reply: i64 = SCRIPTS
            .batch_result
            .key(k.task(lease.id.as_str()))
            .arg(&lease.token)
            .arg(&k.batch_prefix)
            .arg(serde_json::to_vec(result)?)
            .invoke_async(&mut self.connection())
            .await?;
        match reply {
            1 => Ok(()),
            0 => Err(Error::StaleLease {
                id: lease.id.to_string(),
            }),
            -2 => Err(Error::BatchNotFound {
                id: format!("of task {}", lease.id),
            }),
            _ => Err(Error::NotInBatch {
                id: lease.id.to_string(),
            }),
        }
    }

    /// Batch events of `queue` after the stream entry `after` (from the oldest kept when
    /// `None`), at most `count`.
    pub async fn batch_events(
        &self,
        queue: &str,
        after: Option<&str>,
        count: usize,
    ) -> Result<Vec<BatchEvent>> {
        validate_queue(queue)?;
        let k = self.keys().queue(queue);
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let reply: Value = redis::cmd("XRANGE")
            .arg(&k.batch_events)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut self.connection())
            .await?;
        Ok(parse_events(reply))
    }
}

impl TaskContext {
    /// This task's batch, if it is a batch child or a finalize task.
    pub async fn batch_id(&self) -> Result<Option<BatchId>> {
        self.lanes.batch_of(&self.id).await
    }

    /// See [`Lanes::batch_progress`]: absolute counts for this child, fenced by this attempt's
    /// lease.
    pub async fn batch_progress(&self, p: ChildProgress) -> Result<BatchState> {
        self.lanes.batch_progress(&self.lease, p).await
    }

    /// See [`Lanes::child_progress`]: what earlier attempts of this child recorded.
    pub async fn child_progress(&self) -> Result<Option<ChildProgress>> {
        self.lanes.child_progress(&self.id).await
    }
}

fn batch_info(id: &BatchId, raw: &HashMap<String, Vec<u8>>) -> Option<BatchInfo> {
    let text = |f: &str| raw.get(f).map(|b| String::from_utf8_lossy(b).into_owned());
    let num = |f: &str| {
        text(f)
            .and_then(|s| s.parse::<i64>().ok())
            .map(|n| n.max(0) as u64)
    };
    let n = |f: &str| num(f).unwrap_or(0);
    let json = |f: &str| raw.get(f).and_then(|b| serde_json::from_slice(b).ok());
    let state = BatchState::parse(&text("state")?)?;
    let (total_items, processed) = (n("total_items"), n("processed_items"));
    let (total_children, done) = (n("total_children"), n("children_done"));
    let progress = if total_items > 0 {
        processed as f64 * 100.0 / total_items as f64
    } else if total_children > 0 {
        done as f64 * 100.0 / total_children as f64
    } else {
        100.0
    };
    let children = text("children")
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    Some(BatchInfo {
        id: id.clone(),
        queue: id.queue().to_owned(),
        state,
        total_children,
        children_done: done,
        children_succeeded: n("children_succeeded"),
        children_failed: n("children_failed"),
        children_cancelled: n("children_cancelled"),
        total_items,
        processed_items: processed,
        success_count: n("success_count"),
        error_count: n("error_count"),
        progress: (progress.min(100.0) * 10.0).round() / 10.0,
        children,
        finalize_task: text("fin_id").and_then(|s| s.parse().ok()),
        finalize_state: text("fin_state").and_then(|s| TaskState::parse(&s)),
        finalize_error: text("fin_error"),
        result: json("result"),
        meta: json("meta").unwrap_or(Json::Null),
        created_at_ms: n("created"),
        cancelled_at_ms: num("cancelled"),
        finished_at_ms: num("finished"),
    })
}

fn parse_events(reply: Value) -> Vec<BatchEvent> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(mut parts) = entry else {
            continue;
        };
        if parts.len() != 2 {
            continue;
        }
        let fields = parts.pop();
        let id = parts.pop().map(|v| text(&v)).unwrap_or_default();
        let Some(Value::Array(fields)) = fields else {
            continue;
        };
        let mut map = HashMap::new();
        for pair in fields.chunks(2) {
            if let [k, v] = pair {
                map.insert(text(k), text(v));
            }
        }
        let n = |f: &str| {
            map.get(f)
                .and_then(|s| s.parse::<i64>().ok())
                .map_or(0, |n| n.max(0) as u64)
        };
        let Some(batch) = map.get("batch").and_then(|b| b.parse().ok()) else {
            continue;
        };
        out.push(BatchEvent {
            batch,
            event: map.get("event").cloned().unwrap_or_default(),
            state: map.get("state").and_then(|s| BatchState::parse(s)),
            total_children: n("total_children"),
            children_done: n("children_done"),
            total_items: n("total_items"),
            processed_items: n("processed_items"),
            success_count: n("success_count"),
            error_count: n("error_count"),
            id,
        });
    }
    out
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_name_their_queue_and_round_trip() {
        let id = BatchId::generate("analysis");
        assert_eq!(id.queue(), "analysis");
        assert_eq!(id.as_str().parse::<BatchId>().ok(), Some(id));
        assert!(matches!(
            "nope".parse::<BatchId>(),
            Err(Error::InvalidBatchId { .. })
        ));
    }

    #[test]
    fn progress_is_items_then_children() {
        let id = BatchId::generate("q");
        let mut raw: HashMap<String, Vec<u8>> = [
            ("state", "running"),
            ("total_items", "1000"),
            ("processed_items", "455"),
            ("total_children", "8"),
            ("children_done", "2"),
            ("meta", "{\"a\":1}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
        let info = batch_info(&id, &raw).expect("parses");
        assert_eq!(info.progress, 45.5);
        assert_eq!(info.meta["a"], 1);
        raw.insert("total_items".into(), b"0".to_vec());
        assert_eq!(batch_info(&id, &raw).expect("parses").progress, 25.0);
        raw.insert("state".into(), b"bogus".to_vec());
        assert!(batch_info(&id, &raw).is_none());
    }
}
