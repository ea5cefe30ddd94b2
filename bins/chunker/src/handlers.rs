//! The chunker's task kinds:
//! - [`KIND_JOB`]: a whole job. At most `chunk_threshold` products are analyzed right here, in
//!   one task (progress in the task's own record); more are split into a batch of `chunks`
//!   children plus a finalize task, created idempotently under the job's own id.
//! - [`KIND_CHUNK`]: one slice of a split job; progress goes to the batch (absolute counts every
//!   [`SYNC_EVERY`] products, or [`SYNC_INTERVAL`] after the last write when products are slow;
//!   fenced by the lease), and a redelivered chunk resumes after its
//!   last synced product.
//! - [`KIND_FINALIZE`]: runs once after the last chunk ended; its result (counts, duration, top
//!   errors, best sellers) becomes the batch's result.
//!
//! A product that fails is counted in `error_count` and never fails its chunk. Cancellation is
//! checked between products (and while waiting for a rate-limit grant).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanes_queue::{
    BatchSpec, BatchState, CancelReason, ChildProgress, NewTask, TaskContext, TaskError, TaskResult,
};
use serde_json::{Value, json};

use crate::apis::{Analysis, Apis, ProductError};
use crate::job::{
    FinalizePayload, KIND_CHUNK, KIND_FINALIZE, ProductsPayload, SingleProgress, split,
};

/// Products between two progress writes.
pub const SYNC_EVERY: u64 = 10;
/// Longest time between two progress writes while products are being done (at the real
/// SP-API and Keepa rates, 8 chunks take ~16 s for 10 products each).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Most failed products a chunk lists in its result (all of them are counted).
const MAX_LISTED_ERRORS: usize = 100;
/// Best sellers kept per chunk and in the summary.
const TOP: usize = 5;

/// How jobs are split.
#[derive(Debug, Clone, Copy)]
pub struct Splitting {
    /// Chunks a large job is split into.
    pub chunks: usize,
    /// Jobs of at most this many products run as one task.
    pub threshold: usize,
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Deps {
    pub apis: Apis,
    pub splitting: Splitting,
}

/// Where progress goes: the batch (a chunk) or the task's own record (a job run as one task).
enum Sink<'a> {
    Batch(&'a TaskContext),
    Task(&'a TaskContext, u64),
}

impl Sink<'_> {
    /// Writes absolute counts; false when the job was cancelled.
    async fn sync(&self, p: ChildProgress) -> Result<bool, TaskError> {
        match self {
            Sink::Batch(ctx) => Ok(ctx.batch_progress(p).await? != BatchState::Cancelled),
            Sink::Task(ctx, total) => {
                let sp = SingleProgress {
                    processed: p.processed,
                    succeeded: p.succeeded,
                    errors: p.errors,
                    total: *total,
                };
                ctx.progress(json!(sp)).await?;
                Ok(true)
            }
        }
    }
}

/// What one pass over a list of products did.
#[derive(Default)]
struct Pass {
    progress: ChildProgress,
    errors: Vec<(String, String)>,
    top: Vec<Analysis>,
    throttled: u64,
    stopped: bool,
}

impl Pass {
    fn keep_top(&mut self, a: Analysis) {
        self.top.push(a);
        self.top.sort_by_key(|a| a.bsr);
        self.top.truncate(TOP);
    }

    fn result(&self) -> Value {
        json!({
            "processed_items": self.progress.processed,
            "success_count": self.progress.succeeded,
            "error_count": self.progress.errors,
            "errors": self.errors.iter().map(|(asin, message)| json!({"asin": asin, "message": message})).collect::<Vec<_>>(),
            "top": self.top,
            "throttled_429": self.throttled,
        })
    }
}

/// Analyzes `products` from `resume.processed` on, syncing every [`SYNC_EVERY`] products (or
/// [`SYNC_INTERVAL`]) and at the end.
async fn process(
    ctx: &TaskContext,
    apis: &Apis,
    products: &[String],
    resume: ChildProgress,
    sink: &Sink<'_>,
) -> Result<Pass, TaskError> {
    let mut pass = Pass {
        progress: resume,
        ..Pass::default()
    };
    let start = usize::try_from(resume.processed)
        .unwrap_or(usize::MAX)
        .min(products.len());
    if start > 0 {
        tracing::info!(task_id = %ctx.id, resume_at = start, "resuming after the last synced product");
    }
    let mut synced = tokio::time::Instant::now();
    for asin in products.iter().skip(start) {
        if ctx.is_cancelled() {
            pass.stopped = true;
            break;
        }
        let (outcome, throttled) = apis.analyze(asin, ctx.cancellation()).await;
        pass.throttled += u64::from(throttled);
        match outcome {
            Ok(a) => {
                pass.progress.succeeded += 1;
                pass.keep_top(a);
            }
            Err(ProductError::Item(message)) => {
                tracing::debug!(task_id = %ctx.id, asin, error = %message, "product failed");
                pass.progress.errors += 1;
                if pass.errors.len() < MAX_LISTED_ERRORS {
                    pass.errors.push((asin.clone(), message));
                }
            }
            Err(ProductError::Cancelled) => {
                pass.stopped = true;
                break;
            }
            Err(ProductError::Infra(message)) => {
                sink.sync(pass.progress).await?;
                return Err(TaskError::retry(message));
            }
        }
        pass.progress.processed += 1;
        if pass.progress.processed.is_multiple_of(SYNC_EVERY) || synced.elapsed() >= SYNC_INTERVAL {
            synced = tokio::time::Instant::now();
            if !sink.sync(pass.progress).await? {
                pass.stopped = true;
                break;
            }
        }
    }
    // The final counts; a job cancelled after this pass's last product changes nothing here.
    sink.sync(pass.progress).await?;
    Ok(pass)
}

/// Ends an attempt that stopped early. A stop request reaches the worker within a heartbeat, so
/// waiting for it makes the engine record the attempt as cancelled.
async fn stopped(ctx: &TaskContext) -> TaskError {
    let reason = tokio::time::timeout(Duration::from_secs(3), ctx.cancelled()).await;
    match reason {
        Ok(CancelReason::SoftTimeLimit) => {
            TaskError::retry("soft time limit: will resume after the last synced product")
        }
        Ok(CancelReason::LeaseLost) => TaskError::retry("lease lost"),
        _ => TaskError::permanent("stopped: the job was cancelled"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `analysis.job`: analyze in place, or split into a batch.
pub async fn job(ctx: TaskContext, deps: Arc<Deps>) -> TaskResult {
    let payload: ProductsPayload = ctx.payload_as()?;
    let total = payload.products.len();
    if total <= deps.splitting.threshold {
        return single(ctx, deps, payload.products).await;
    }
    let lanes = ctx.lanes();
    let stop_requested = || async {
        Ok::<_, TaskError>(
            ctx.is_cancelled() || lanes.task(&ctx.id).await?.is_some_and(|t| t.stop_requested),
        )
    };
    if stop_requested().await? {
        return Err(TaskError::permanent(
            "stopped: the job was cancelled before it was split",
        ));
    }
    let parts = split(&payload.products, deps.splitting.chunks);
    let chunks = parts.len();
    let children = parts
        .into_iter()
        .map(|products| NewTask::new(KIND_CHUNK, json!(ProductsPayload { products })))
        .collect();
    let spec = BatchSpec::new(children)
        .id(ctx.id.clone().into())
        .total_items(total as u64)
        .finalize(NewTask::new(
            KIND_FINALIZE,
            json!(FinalizePayload {
                job: ctx.id.clone()
            }),
        ))
        .meta(json!({"job": ctx.id, "products": total, "chunks": chunks}));
    let batch = lanes.create_batch(&ctx.queue, spec).await?;
    // A cancel that raced with the split: it asked the job task to stop after this task looked.
    if stop_requested().await? {
        lanes.cancel_batch(&batch).await?;
    }
    tracing::info!(job_id = %ctx.id, products = total, chunks, "job split into chunks");
    Ok(json!({"batch": batch, "chunks": chunks}))
}

/// A job of at most `threshold` products, run in this one task.
async fn single(ctx: TaskContext, deps: Arc<Deps>, products: Vec<String>) -> TaskResult {
    let started = now_ms();
    let total = products.len() as u64;
    let resume: SingleProgress = ctx
        .lanes()
        .task(&ctx.id)
        .await?
        .and_then(|t| t.progress)
        .and_then(|p| serde_json::from_value(p).ok())
        .unwrap_or_default();
    let resume = ChildProgress {
        processed: resume.processed,
        succeeded: resume.succeeded,
        errors: resume.errors,
    };
    let pass = process(
        &ctx,
        &deps.apis,
        &products,
        resume,
        &Sink::Task(&ctx, total),
    )
    .await?;
    if pass.stopped {
        return Err(stopped(&ctx).await);
    }
    let errors: Vec<(String, String)> = pass.errors.clone();
    Ok(summary(Summary {
        status: "completed",
        mode: "single",
        total_items: total,
        progress: pass.progress,
        chunks: 0,
        chunks_failed: 0,
        chunks_cancelled: 0,
        duration_ms: now_ms().saturating_sub(started),
        errors,
        top: pass.top,
        throttled: pass.throttled,
    }))
}

/// `analysis.chunk`: one slice of a split job.
pub async fn chunk(ctx: TaskContext, deps: Arc<Deps>) -> TaskResult {
    let payload: ProductsPayload = ctx.payload_as()?;
    let resume = ctx.child_progress().await?.unwrap_or_default();
    let pass = process(
        &ctx,
        &deps.apis,
        &payload.products,
        resume,
        &Sink::Batch(&ctx),
    )
    .await?;
    if pass.stopped {
        return Err(stopped(&ctx).await);
    }
    Ok(pass.result())
}

/// `analysis.finalize`: sums up the chunks into the batch's result.
pub async fn finalize(ctx: TaskContext) -> TaskResult {
    let payload: FinalizePayload = ctx.payload_as()?;
    let lanes = ctx.lanes();
    let batch_id = ctx
        .batch_id()
        .await?
        .ok_or_else(|| TaskError::permanent("a finalize task outside a batch"))?;
    let Some(b) = lanes.batch(&batch_id).await? else {
        return Err(TaskError::permanent(format!("batch {batch_id} is gone")));
    };
    let mut errors = Vec::new();
    let mut top = Vec::new();
    let mut throttled = 0;
    for t in lanes.tasks(&b.children).await? {
        let Some(r) = t.result else { continue };
        if let Some(list) = r.get("errors").and_then(Value::as_array) {
            for e in list {
                if let (Some(asin), Some(message)) = (
                    e.get("asin").and_then(Value::as_str),
                    e.get("message").and_then(Value::as_str),
                ) {
                    errors.push((asin.to_owned(), message.to_owned()));
                }
            }
        }
        if let Some(list) = r.get("top") {
            top.extend(serde_json::from_value::<Vec<Analysis>>(list.clone()).unwrap_or_default());
        }
        throttled += r.get("throttled_429").and_then(Value::as_u64).unwrap_or(0);
    }
    top.sort_by_key(|a| a.bsr);
    top.truncate(TOP);
    let status = if b.state == BatchState::Cancelled {
        "cancelled"
    } else {
        "completed"
    };
    tracing::info!(job_id = %payload.job, processed = b.processed_items, errors = b.error_count, status, "job finalized");
    Ok(summary(Summary {
        status,
        mode: "chunked",
        total_items: b.total_items,
        progress: ChildProgress {
            processed: b.processed_items,
            succeeded: b.success_count,
            errors: b.error_count,
        },
        chunks: b.total_children,
        chunks_failed: b.children_failed,
        chunks_cancelled: b.children_cancelled,
        duration_ms: now_ms().saturating_sub(b.created_at_ms),
        errors,
        top,
        throttled,
    }))
}

struct Summary {
    status: &'static str,
    mode: &'static str,
    total_items: u64,
    progress: ChildProgress,
    chunks: u64,
    chunks_failed: u64,
    chunks_cancelled: u64,
    duration_ms: u64,
    errors: Vec<(String, String)>,
    top: Vec<Analysis>,
    throttled: u64,
}

/// A finished job's result: counts, duration, errors grouped by message (most frequent first,
/// with a few example ids), best sellers.
fn summary(s: Summary) -> Value {
    let mut groups: HashMap<String, (u64, Vec<String>)> = HashMap::new();
    for (asin, message) in s.errors {
        let g = groups.entry(message).or_default();
        g.0 += 1;
        if g.1.len() < 5 {
            g.1.push(asin);
        }
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    let top_errors: Vec<Value> = groups
        .into_iter()
        .take(10)
        .map(
            |(message, (count, asins))| json!({"message": message, "count": count, "asins": asins}),
        )
        .collect();
    json!({
        "status": s.status,
        "mode": s.mode,
        "total_items": s.total_items,
        "processed_items": s.progress.processed,
        "success_count": s.progress.succeeded,
        "error_count": s.progress.errors,
        "chunks": s.chunks,
        "chunks_failed": s.chunks_failed,
        "chunks_cancelled": s.chunks_cancelled,
        "duration_ms": s.duration_ms,
        "top_errors": top_errors,
        "best_sellers": s.top,
        "throttled_429": s.throttled,
    })
}
