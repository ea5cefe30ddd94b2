//! The collector's task kinds:
//! - [`KIND_COLLECT`](crate::job::KIND_COLLECT): one channel. Takes the channel's lock (one
//!   collection of a channel at a time across every job and process; its fencing token fences
//!   the checkpoint), collects from the checkpoint on, reports the batch progress after every
//!   page. A channel that does not exist (404), a refused token or a bad request fails
//!   permanently with the API's message; anything else (5xx, network, a long flood wait) is
//!   retried with backoff and resumes from the checkpoint.
//! - [`KIND_FINALIZE`](crate::job::KIND_FINALIZE): runs once after the job's last channel
//!   ended; its summary becomes the job's result.

use std::sync::Arc;
use std::time::Duration;

use lanes_lock::Locks;
use lanes_queue::{BatchState, ChildProgress, TaskContext, TaskError, TaskResult};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::checkpoint::{Base, Checkpoint};
use crate::collect::{CollectError, Collector, Flow, Progress};
use crate::job::{self, CollectPayload};
use crate::keys::lock_name;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Deps {
    pub collector: Collector,
    pub locks: Locks,
    /// The channel lock's TTL (renewed while held; a dead holder's lock frees after it).
    pub lock_ttl: Duration,
    /// How long a task waits for a channel another task is collecting before it retries later.
    pub lock_wait: Duration,
}

/// Progress of a collect task: the batch's counters (absolute, fenced by the lease) and the
/// task's own record.
struct TaskProgress<'a>(&'a TaskContext);

impl Progress for TaskProgress<'_> {
    async fn report(
        &self,
        channel: &str,
        cp: &Checkpoint,
        base: Base,
    ) -> Result<Flow, CollectError> {
        let ctx = self.0;
        let added = cp.messages.saturating_sub(base.messages);
        let mut flow = Flow::Continue;
        match ctx
            .batch_progress(ChildProgress {
                processed: added,
                succeeded: added,
                errors: 0,
            })
            .await
        {
            Ok(BatchState::Cancelled) => flow = Flow::Stop,
            Ok(_) | Err(lanes_queue::Error::NotInBatch { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        ctx.progress(json!({
            "channel": channel,
            "messages": added,
            "images": cp.images.saturating_sub(base.images),
            "stored_messages": cp.messages,
            "total_messages": cp.total,
            "last_id": cp.last_id,
        }))
        .await?;
        Ok(flow)
    }
}

/// Collects the channel of one task.
pub async fn collect(ctx: TaskContext, deps: Arc<Deps>) -> TaskResult {
    let payload: CollectPayload = ctx.payload_as()?;
    let channel = job::normalize_channel(&payload.channel)
        .map_err(|e| TaskError::permanent(e.to_string()))?;
    let lock = deps
        .locks
        .lock(
            &lock_name(&channel),
            deps.lock_ttl,
            deps.lock_wait,
            ctx.cancellation(),
        )
        .await;
    let guard = match lock {
        Ok(Some(g)) => g,
        Ok(None) => {
            return Err(TaskError::retry_after(
                format!("channel @{channel} is being collected by another task"),
                deps.lock_wait,
            ));
        }
        Err(lanes_lock::Error::Cancelled) => return Err(TaskError::retry("stopped")),
        Err(e) => return Err(TaskError::retry(format!("channel lock: {e}"))),
    };
    // Stop when the task is told to, or when the lock is lost (another task may hold it).
    let cancel = ctx.cancellation().child_token();
    let watch = {
        let (lost, cancel) = (guard.lost().clone(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = lost.cancelled() => cancel.cancel(),
                () = cancel.cancelled() => {}
            }
        })
    };
    let result = deps
        .collector
        .collect(
            &channel,
            guard.fencing_token(),
            ctx.id.as_str(),
            &TaskProgress(&ctx),
            &cancel,
        )
        .await;
    let lost = guard.is_lost();
    stop(&cancel, watch).await;
    if let Err(e) = guard.release().await {
        tracing::warn!(channel = %channel, error = %e, "could not release the channel lock; it expires by itself");
    }
    match result {
        Ok(summary) => Ok(json!(summary)),
        Err(e) => Err(task_error(&channel, e, lost)),
    }
}

async fn stop(cancel: &CancellationToken, watch: tokio::task::JoinHandle<()>) {
    cancel.cancel();
    let _ = watch.await;
}

/// How a failed collection ends: bad input and configuration never retry.
fn task_error(channel: &str, e: CollectError, lock_lost: bool) -> TaskError {
    match e {
        CollectError::Api(api) if api.is_permanent() => {
            tracing::warn!(channel, error = %api, "channel failed for good");
            TaskError::permanent(api.to_string())
        }
        CollectError::Api(ApiError::FloodWait { retry_after, .. }) => {
            TaskError::retry_after(format!("channel @{channel}: {e}"), retry_after)
        }
        CollectError::Stopped | CollectError::Api(ApiError::Cancelled) if lock_lost => {
            TaskError::retry(format!("channel @{channel}: the channel lock was lost"))
        }
        other => {
            tracing::warn!(channel, error = %other, "channel failed; it will be retried from its checkpoint");
            TaskError::retry(format!("channel @{channel}: {other}"))
        }
    }
}

/// Sums the job up once its last channel ended.
pub async fn finalize(ctx: TaskContext) -> TaskResult {
    let Some(batch) = ctx.batch_id().await? else {
        return Err(TaskError::permanent(
            "a channels.finalize task must belong to a channel job",
        ));
    };
    let Some(status) = job::job_status(ctx.lanes(), &batch).await? else {
        return Err(TaskError::permanent(format!("channel job {batch} is gone")));
    };
    let failed: Vec<Value> = status
        .channels
        .iter()
        .filter(|c| c.state != lanes_queue::TaskState::Succeeded)
        .map(|c| json!({"channel": c.channel, "state": c.state, "error": c.error}))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let summary = json!({
        "channels": status.channels_total,
        "succeeded": status.channels_succeeded,
        "failed": failed,
        "messages": status.channels.iter().map(|c| c.messages).sum::<u64>(),
        "images": status.images,
        "took_ms": now.saturating_sub(status.created_at_ms),
    });
    tracing::info!(job_id = %batch, summary = %summary, "channel job finished");
    Ok(summary)
}
