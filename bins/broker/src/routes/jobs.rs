//! The product-batch analyzer's routes (seed 003): dispatch a job of products, read its atomic
//! progress, cancel it. Chunker processes (`bins/chunker`) do the work; jobs of more than 100
//! products are split into chunks run in parallel, smaller ones run as one task.
//!
//! A list mixing ASINs and junk ids is accepted, each junk id counting as an error of the job;
//! a list of nothing but junk is refused with 400.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chunker::{DispatchError, JobCancel, JobStatus};
use lanes_queue::TaskId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, accepted};
use crate::error::AppError;
use crate::model::ErrorBody;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_job))
        .routes(routes!(get_job))
        .routes(routes!(cancel_job))
}

/// A job of products to analyze.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// ASINs (10 characters of A-Z and 0-9), at most 10 000. Junk ids count as errors of the
    /// job; a list with no ASIN at all is refused.
    #[schema(example = json!(["B07XJ8C8F5", "B09GV6CYNL"]))]
    pub products: Vec<String>,
}

/// A dispatched job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobCreated {
    pub job_id: String,
    pub total_items: u64,
}

/// A job's progress (the seed's shape, plus the job id, its chunks and, once done, its result).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub job_id: String,
    /// `pending`, `processing`, `finalizing`, `completed`, `cancelling`, `cancelled` or `failed`.
    #[schema(example = "processing")]
    pub status: String,
    /// Percent of the products processed.
    #[schema(example = 45)]
    pub progress: u32,
    #[schema(example = 450)]
    pub processed_items: u64,
    #[schema(example = 1000)]
    pub total_items: u64,
    #[schema(example = 445)]
    pub success_count: u64,
    #[schema(example = 5)]
    pub error_count: u64,
    /// Chunks the job was split into (0: it runs as one task).
    pub chunks: u64,
    /// The summary once finished: counts, duration, top errors, best sellers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why it failed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<JobStatus> for JobView {
    fn from(s: JobStatus) -> Self {
        Self {
            job_id: s.job_id,
            status: s.status.as_str().into(),
            progress: s.progress,
            processed_items: s.processed_items,
            total_items: s.total_items,
            success_count: s.success_count,
            error_count: s.error_count,
            chunks: s.chunks,
            result: s.result,
            error: s.error,
        }
    }
}

/// What a cancel request did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobCancelled {
    pub job_id: String,
    /// `cancelled` (it had not started) or `cancelling` (running chunks stop between two
    /// products; the job then reads `cancelled`).
    pub status: String,
    /// Queued chunks removed.
    pub removed_chunks: u64,
    /// Running chunks told to stop.
    pub stopping_chunks: u64,
}

impl From<DispatchError> for AppError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Engine(e) => e.into(),
            other => AppError::BadRequest(other.to_string()),
        }
    }
}

fn job_id(raw: Result<Path<String>, PathRejection>) -> Result<TaskId, AppError> {
    super::job_id(raw, chunker::QUEUE, TaskId::queue, "job")
}

fn no_job(id: &TaskId) -> AppError {
    super::no_job("job", id)
}

/// Dispatch a job of products to analyze.
#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    tag = "jobs",
    request_body = JobRequest,
    responses(
        (status = 202, description = "Dispatched", body = JobCreated),
        (status = 400, description = "Malformed JSON, an empty or oversized list, or no ASIN at all", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn create_job(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<JobRequest>,
) -> Result<Response, AppError> {
    let total = body.products.len() as u64;
    let id = chunker::dispatch_job(state.lanes().await?, body.products).await?;
    let body = JobCreated {
        job_id: id.to_string(),
        total_items: total,
    };
    Ok(accepted(format!("/api/v1/jobs/{id}"), body))
}

/// A job's progress and, once done, its summary.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job id from POST /api/v1/jobs")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job (or it expired)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn get_job(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobView>, AppError> {
    let id = job_id(id)?;
    match chunker::job_status(state.lanes().await?, &id).await? {
        Some(s) => Ok(Json(s.into())),
        None => Err(no_job(&id)),
    }
}

/// Cancel a job: queued chunks are dropped, running ones stop between two products, and the
/// summary is still written.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{job_id}/cancel",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "It had not started: cancelled", body = JobCancelled),
        (status = 202, description = "Running chunks were told to stop", body = JobCancelled),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "It already finished", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn cancel_job(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let id = job_id(id)?;
    let out = chunker::cancel_job(state.lanes().await?, &id).await?;
    tracing::info!(job_id = %id, ?out, "job cancel requested");
    let (code, status, removed, stopping) = match out {
        JobCancel::Cancelled => (StatusCode::OK, "cancelled", 0, 0),
        JobCancel::Stopping { removed, stopping } => {
            (StatusCode::ACCEPTED, "cancelling", removed, stopping)
        }
        JobCancel::Finished(s) => {
            return Err(AppError::Conflict(format!(
                "job {id} already finished: {}",
                s.as_str()
            )));
        }
        JobCancel::NotFound => return Err(no_job(&id)),
    };
    let body = JobCancelled {
        job_id: id.to_string(),
        status: status.into(),
        removed_chunks: removed,
        stopping_chunks: stopping,
    };
    Ok((code, Json(body)).into_response())
}
