//! The dispatch side of product jobs, shared by the broker and the worker: `dispatch_job`,
//! `job_status`, `cancel_job`, and the payloads the worker's kinds read.
//!
//! A job is one task of kind [`KIND_JOB`] on queue [`QUEUE`]; its task id is the job id. The
//! worker that runs it either analyzes every product itself (at most `--chunk-threshold`
//! products: one task) or splits it into a batch whose id is the same string (see
//! `BatchId::from(TaskId)`), with `--chunks` children and a finalize task. Status and
//! cancellation look at the batch when there is one, else at the job task.
//!
//! Junk ids (not `^[A-Z0-9]{10}$` once trimmed) are accepted when the list also holds real
//! ASINs: each counts as an error of its job ("not an ASIN ..."), without an API call. A list of
//! nothing but junk is refused at dispatch ([`DispatchError::AllJunk`], HTTP 400): no work could
//! come of it.

use lanes_queue::{
    BatchCancel, BatchId, BatchInfo, BatchState, CancelOutcome, Lanes, NewTask, TaskId, TaskInfo,
    TaskState,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The queue product jobs run on.
pub const QUEUE: &str = "analysis";
/// A whole job: analyzed in place, or split into a batch of chunks.
pub const KIND_JOB: &str = "analysis.job";
/// One chunk of a split job (a batch child).
pub const KIND_CHUNK: &str = "analysis.chunk";
/// The finalize step of a split job: sums the chunks up into the batch's result.
pub const KIND_FINALIZE: &str = "analysis.finalize";
/// Most products one job may hold.
pub const MAX_PRODUCTS: usize = 10_000;
/// What a junk id's error says.
pub const JUNK_MESSAGE: &str = "not an ASIN: expected 10 characters of A-Z and 0-9";

/// The payload of a job and of a chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductsPayload {
    pub products: Vec<String>,
}

/// The payload of a finalize task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinalizePayload {
    pub job: TaskId,
}

/// Why a product list was refused.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("the product list is empty")]
    Empty,
    #[error("{count} products in one job; send at most {max}")]
    TooMany { count: usize, max: usize },
    #[error("no product id is an ASIN (10 characters of A-Z and 0-9), e.g. {examples:?}")]
    AllJunk { examples: Vec<String> },
    /// The engine refused or Redis failed.
    #[error(transparent)]
    Engine(#[from] lanes_queue::Error),
}

/// True for the shape of an ASIN: `^[A-Z0-9]{10}$`.
pub fn is_asin(s: &str) -> bool {
    s.len() == 10
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Checks a product list (trimming each id) and returns it ready to enqueue.
pub fn validate_products(products: Vec<String>) -> Result<Vec<String>, DispatchError> {
    if products.is_empty() {
        return Err(DispatchError::Empty);
    }
    if products.len() > MAX_PRODUCTS {
        return Err(DispatchError::TooMany {
            count: products.len(),
            max: MAX_PRODUCTS,
        });
    }
    let products: Vec<String> = products.into_iter().map(|p| p.trim().to_owned()).collect();
    if !products.iter().any(|p| is_asin(p)) {
        let examples = products.iter().take(3).cloned().collect();
        return Err(DispatchError::AllJunk { examples });
    }
    Ok(products)
}

/// Enqueues a product job on [`QUEUE`] and returns its id (the job id).
pub async fn dispatch_job(lanes: &Lanes, products: Vec<String>) -> Result<TaskId, DispatchError> {
    let products = validate_products(products)?;
    let count = products.len();
    let payload =
        serde_json::to_value(ProductsPayload { products }).map_err(lanes_queue::Error::from)?;
    let id = lanes
        .enqueue(QUEUE, NewTask::new(KIND_JOB, payload))
        .await?;
    tracing::info!(job_id = %id, products = count, "product job dispatched");
    Ok(id)
}

/// Splits `products` into at most `chunks` contiguous slices of nearly equal size.
pub fn split(products: &[String], chunks: usize) -> Vec<Vec<String>> {
    let chunks = chunks.clamp(1, products.len().max(1));
    let (size, extra) = (products.len() / chunks, products.len() % chunks);
    let mut out = Vec::with_capacity(chunks);
    let mut at = 0;
    for i in 0..chunks {
        let n = size + usize::from(i < extra);
        out.push(products[at..at + n].to_vec());
        at += n;
    }
    out
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Queued; nothing processed yet.
    Pending,
    /// Products are being analyzed.
    Processing,
    /// Every chunk ended; the summary is being written.
    Finalizing,
    Completed,
    /// Cancel requested; running chunks are winding down.
    Cancelling,
    /// Cancelled; the counters say how far it got.
    Cancelled,
    /// The job could not run (its task failed for good).
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Finalizing => "finalizing",
            Self::Completed => "completed",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    /// True once the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }
}

/// A job's status, as `GET /api/v1/jobs/{job_id}` answers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    pub job_id: String,
    pub status: JobState,
    /// Percent of the products processed (0 to 100).
    pub progress: u32,
    pub processed_items: u64,
    pub total_items: u64,
    pub success_count: u64,
    pub error_count: u64,
    /// Chunks the job was split into (0: it runs as one task).
    pub chunks: u64,
    /// The summary, once finished (counts, duration, top errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why the job failed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The counters a single-task job records as its task progress.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct SingleProgress {
    pub processed: u64,
    pub succeeded: u64,
    pub errors: u64,
    pub total: u64,
}

fn percent(processed: u64, total: u64) -> u32 {
    if total == 0 {
        return 0;
    }
    (processed.min(total) * 100 / total) as u32
}

fn from_batch(id: &TaskId, b: BatchInfo) -> JobStatus {
    let status = match (b.state, b.is_finished()) {
        (BatchState::Running, _) => JobState::Processing,
        (BatchState::Finalizing, _) => JobState::Finalizing,
        (BatchState::Completed, _) => JobState::Completed,
        (BatchState::Cancelled, false) => JobState::Cancelling,
        (BatchState::Cancelled, true) => JobState::Cancelled,
    };
    JobStatus {
        job_id: id.to_string(),
        status,
        progress: percent(b.processed_items, b.total_items),
        processed_items: b.processed_items,
        total_items: b.total_items,
        success_count: b.success_count,
        error_count: b.error_count,
        chunks: b.total_children,
        result: b.result,
        error: b.finalize_error,
    }
}

fn from_task(lanes_total: u64, t: TaskInfo) -> JobStatus {
    let p: SingleProgress = t
        .progress
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let done: Option<SingleProgress> = t.result.as_ref().and_then(|r| {
        Some(SingleProgress {
            processed: r.get("processed_items")?.as_u64()?,
            succeeded: r.get("success_count")?.as_u64()?,
            errors: r.get("error_count")?.as_u64()?,
            total: r.get("total_items")?.as_u64()?,
        })
    });
    let p = done.unwrap_or(p);
    let total = if p.total > 0 { p.total } else { lanes_total };
    let status = match t.state {
        TaskState::Queued | TaskState::Scheduled => JobState::Pending,
        TaskState::Running | TaskState::Retrying if t.stop_requested => JobState::Cancelling,
        TaskState::Running | TaskState::Retrying => JobState::Processing,
        TaskState::Succeeded => JobState::Completed,
        TaskState::Cancelled => JobState::Cancelled,
        TaskState::Failed | TaskState::Dead => JobState::Failed,
    };
    JobStatus {
        job_id: t.id.to_string(),
        status,
        progress: percent(p.processed, total),
        processed_items: p.processed,
        total_items: total,
        success_count: p.succeeded,
        error_count: p.errors,
        chunks: 0,
        result: t.result.filter(|_| status == JobState::Completed),
        error: t
            .error
            .filter(|_| matches!(status, JobState::Failed | JobState::Cancelled)),
    }
}

/// The job's status, or `None` when there is no such job (or it finished and expired).
pub async fn job_status(lanes: &Lanes, id: &TaskId) -> lanes_queue::Result<Option<JobStatus>> {
    if let Some(b) = lanes.batch(&BatchId::from(id.clone())).await? {
        return Ok(Some(from_batch(id, b)));
    }
    let Some(t) = lanes.task(id).await? else {
        return Ok(None);
    };
    if t.kind != KIND_JOB {
        return Ok(None);
    }
    if t.state == TaskState::Succeeded
        && t.result.as_ref().is_some_and(|r| r.get("batch").is_some())
    {
        // It split into a batch: either between our two reads (read the batch again) or long
        // enough ago that the batch has expired (nothing left to report).
        let batch = lanes.batch(&BatchId::from(id.clone())).await?;
        return Ok(batch.map(|b| from_batch(id, b)));
    }
    let total = match t.state {
        TaskState::Queued | TaskState::Scheduled | TaskState::Running | TaskState::Retrying => {
            lanes
                .payloads(std::slice::from_ref(id))
                .await?
                .into_iter()
                .flatten()
                .next()
                .and_then(|p| serde_json::from_value::<ProductsPayload>(p).ok())
                .map_or(0, |p| p.products.len() as u64)
        }
        _ => 0,
    };
    Ok(Some(from_task(total, t)))
}

/// What [`cancel_job`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobCancel {
    /// It had not started: gone for good.
    Cancelled,
    /// Running work was told to stop (`removed` queued chunks dropped, `stopping` running ones
    /// told to stop); the job settles as `cancelled` shortly.
    Stopping {
        removed: u64,
        stopping: u64,
    },
    /// It had already finished.
    Finished(JobState),
    NotFound,
}

/// Cancels a job: a queued one is removed, a running one stops between two products (its
/// chunks' counters stay exact), and a split one still writes its summary.
pub async fn cancel_job(lanes: &Lanes, id: &TaskId) -> lanes_queue::Result<JobCancel> {
    let bid = BatchId::from(id.clone());
    let by_batch = |out: BatchCancel| match out {
        BatchCancel::Cancelled { removed, stopping } => {
            Some(JobCancel::Stopping { removed, stopping })
        }
        BatchCancel::Finished { state } => Some(JobCancel::Finished(match state {
            BatchState::Cancelled => JobState::Cancelled,
            _ => JobState::Completed,
        })),
        BatchCancel::NotFound => None,
    };
    if let Some(out) = by_batch(lanes.cancel_batch(&bid).await?) {
        return Ok(out);
    }
    match lanes.cancel(id).await? {
        CancelOutcome::Cancelled => Ok(JobCancel::Cancelled),
        CancelOutcome::NotFound => Ok(JobCancel::NotFound),
        outcome => {
            // The job task may be splitting right now: its handler checks for a stop request
            // before and after creating the batch, and this looks for the batch after asking.
            if let Some(out) = by_batch(lanes.cancel_batch(&bid).await?) {
                return Ok(out);
            }
            Ok(match outcome {
                CancelOutcome::Finished(TaskState::Succeeded) => {
                    JobCancel::Finished(JobState::Completed)
                }
                CancelOutcome::Finished(TaskState::Cancelled) => {
                    JobCancel::Finished(JobState::Cancelled)
                }
                CancelOutcome::Finished(_) => JobCancel::Finished(JobState::Failed),
                _ => JobCancel::Stopping {
                    removed: 0,
                    stopping: 1,
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asins_are_ten_upper_alphanumerics() {
        assert!(is_asin("B07XJ8C8F5"));
        assert!(is_asin("0123456789"));
        for junk in [
            "",
            "b07xj8c8f5",
            "B07XJ8C8F",
            "B07XJ8C8F55",
            "B07XJ-C8F5",
            "B07XJ8C8F\u{e9}",
        ] {
            assert!(!is_asin(junk), "{junk:?}");
        }
    }

    #[test]
    fn lists_are_checked() {
        assert!(matches!(
            validate_products(vec![]),
            Err(DispatchError::Empty)
        ));
        let many = vec!["B07XJ8C8F5".to_owned(); MAX_PRODUCTS + 1];
        assert!(matches!(
            validate_products(many),
            Err(DispatchError::TooMany { .. })
        ));
        let junk = vec!["nope".to_owned(), "also nope".to_owned()];
        assert!(matches!(
            validate_products(junk),
            Err(DispatchError::AllJunk { .. })
        ));
        let mixed = vec![" B07XJ8C8F5 ".to_owned(), "junk".to_owned()];
        assert_eq!(
            validate_products(mixed).expect("valid"),
            vec!["B07XJ8C8F5".to_owned(), "junk".to_owned()]
        );
    }

    #[test]
    fn splits_are_contiguous_and_even() {
        let products: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let parts = split(&products, 8);
        assert_eq!(parts.len(), 8);
        assert!(parts.iter().all(|p| p.len() == 125));
        assert_eq!(parts.concat(), products);
        let parts = split(&products[..10], 3);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 3, 3]
        );
        assert_eq!(split(&products[..2], 8).len(), 2);
    }
}
