//! The channel collector's routes (seed 004): dispatch a job collecting N channels, read its
//! progress with per-channel counts, cancel it. Collector processes (`bins/collector`) do the
//! work, a few channels at a time each, with no barrier between channels.
//!
//! Channel names are checked at dispatch (`@name`, `name` or `https://t.me/name`; 400 for any
//! other shape). A well-formed name the channel API does not know fails that channel alone,
//! permanently, with the API's message in its `error`; the other channels go on.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use collector::{ChannelStatus, DispatchError, JobStatus};
use lanes_queue::{BatchCancel, BatchId};
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
        .routes(routes!(collect))
        .routes(routes!(get_collect))
        .routes(routes!(cancel_collect))
}

/// Channels to collect.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectRequest {
    /// Channel usernames (`@name`, `name` or `https://t.me/name`), at most 1000; repeats are
    /// collected once.
    #[schema(example = json!(["@lanes_news", "rust_daily", "https://t.me/market_watch"]))]
    pub channels: Vec<String>,
}

/// A dispatched collect job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectCreated {
    pub job_id: String,
    /// The channels as they will be collected (normalized, repeats dropped).
    pub channels: Vec<String>,
}

/// One channel of a job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelView {
    #[schema(example = "rust_daily")]
    pub channel: String,
    pub task_id: String,
    /// `queued`, `running`, `retrying`, `succeeded`, `failed` (bad input: never retried),
    /// `dead` (retries spent) or `cancelled`.
    #[schema(example = "running")]
    pub state: String,
    pub attempts: u32,
    /// Messages this job added to the channel's output.
    #[schema(example = 300)]
    pub messages: u64,
    /// Photos this job saved.
    pub images: u64,
    /// Messages stored for the channel in all (this job and earlier ones).
    pub stored_messages: u64,
    /// The channel's message count when last seen.
    #[schema(example = 1200)]
    pub total_messages: u64,
    /// The last message stored: a later collection resumes after it.
    pub last_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<ChannelStatus> for ChannelView {
    fn from(c: ChannelStatus) -> Self {
        Self {
            channel: c.channel,
            task_id: c.task_id.to_string(),
            state: c.state.to_string(),
            attempts: c.attempts,
            messages: c.messages,
            images: c.images,
            stored_messages: c.stored_messages,
            total_messages: c.total_messages,
            last_id: c.last_id,
            error: c.error,
        }
    }
}

/// A collect job's progress.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectView {
    pub job_id: String,
    /// `running`, `finalizing`, `completed` or `cancelled`.
    #[schema(example = "running")]
    pub state: String,
    /// Channels ended / channels, in percent.
    #[schema(example = 37.5)]
    pub progress: f64,
    pub channels_total: u64,
    pub channels_done: u64,
    pub channels_succeeded: u64,
    pub channels_failed: u64,
    pub channels_cancelled: u64,
    /// Messages collected by this job so far.
    pub messages: u64,
    /// Photos saved by this job so far.
    pub images: u64,
    pub channels: Vec<ChannelView>,
    /// The summary once every channel ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub created_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
}

impl From<JobStatus> for CollectView {
    fn from(s: JobStatus) -> Self {
        Self {
            job_id: s.job_id.to_string(),
            state: s.state.to_string(),
            progress: s.progress,
            channels_total: s.channels_total,
            channels_done: s.channels_done,
            channels_succeeded: s.channels_succeeded,
            channels_failed: s.channels_failed,
            channels_cancelled: s.channels_cancelled,
            messages: s.messages,
            images: s.images,
            channels: s.channels.into_iter().map(Into::into).collect(),
            result: s.result,
            created_at_ms: s.created_at_ms,
            finished_at_ms: s.finished_at_ms,
        }
    }
}

/// What a cancel request did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectCancelled {
    pub job_id: String,
    /// Queued channels dropped.
    pub removed_channels: u64,
    /// Running channels told to stop (each after its current page; what it wrote is kept).
    pub stopping_channels: u64,
}

fn dispatch_error(e: DispatchError) -> AppError {
    match e {
        DispatchError::Engine(e) => e.into(),
        other => AppError::BadRequest(other.to_string()),
    }
}

fn job_id(raw: Result<Path<String>, PathRejection>) -> Result<BatchId, AppError> {
    super::job_id(raw, collector::QUEUE, BatchId::queue, "collect job")
}

fn no_job(id: &BatchId) -> AppError {
    super::no_job("collect job", id)
}

/// Collect channels: one job, one task per channel, run by any collector with a free slot.
#[utoipa::path(
    post,
    path = "/api/channels/collect",
    tag = "channels",
    request_body = CollectRequest,
    responses(
        (status = 202, description = "Dispatched", body = CollectCreated),
        (status = 400, description = "Malformed JSON, an empty or oversized list, or a name that is not a channel name", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn collect(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CollectRequest>,
) -> Result<Response, AppError> {
    let channels = collector::job::validate_channels(body.channels).map_err(dispatch_error)?;
    let id = collector::dispatch_job(state.lanes().await?, channels.clone())
        .await
        .map_err(dispatch_error)?;
    let body = CollectCreated {
        job_id: id.to_string(),
        channels,
    };
    Ok(accepted(format!("/api/channels/collect/{id}"), body))
}

/// A collect job's progress, each channel's counts and errors, and its summary once done.
#[utoipa::path(
    get,
    path = "/api/channels/collect/{job_id}",
    tag = "channels",
    params(("job_id" = String, Path, description = "The job id from POST /api/channels/collect")),
    responses(
        (status = 200, description = "The job", body = CollectView),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job (or it expired)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn get_collect(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<CollectView>, AppError> {
    let id = job_id(id)?;
    match collector::job_status(state.lanes().await?, &id).await? {
        Some(s) => Ok(Json(s.into())),
        None => Err(no_job(&id)),
    }
}

/// Cancel a collect job: queued channels are dropped, running ones stop after their current
/// page (checkpointed: a later job resumes them), and the summary is still written.
#[utoipa::path(
    post,
    path = "/api/channels/collect/{job_id}/cancel",
    tag = "channels",
    params(("job_id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "Cancelled", body = CollectCancelled),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Every channel had already ended", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn cancel_collect(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<CollectCancelled>, AppError> {
    let id = job_id(id)?;
    match collector::cancel_job(state.lanes().await?, &id).await? {
        BatchCancel::Cancelled { removed, stopping } => {
            tracing::info!(job_id = %id, removed, stopping, "collect job cancelled");
            Ok(Json(CollectCancelled {
                job_id: id.to_string(),
                removed_channels: removed,
                stopping_channels: stopping,
            }))
        }
        BatchCancel::Finished { state } => Err(AppError::Conflict(format!(
            "collect job {id} has no channel left to stop: it is {state}"
        ))),
        BatchCancel::NotFound => Err(no_job(&id)),
    }
}
