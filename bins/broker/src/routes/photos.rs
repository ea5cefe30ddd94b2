//! The photo analyzer's routes (seed 002): a seller uploads photos (`POST /seller/snap`), photo
//! workers (`bins/photo-worker`) ask Gemini for each one's item and price, and the seller reads
//! the job (`GET /seller/snap/{job_id}`).
//!
//! The broker checks only what it can without an image decoder (it never links one): base64
//! that decodes, not empty, not too large, at most 50 photos. Whether the bytes are an image is
//! the worker's call, per photo: a text file among photos fails alone, with a clear message,
//! and the others are analyzed.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lanes_photos::{PhotoStatus, SnapError, SnapStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, accepted, path_param};
use crate::error::AppError;
use crate::model::ErrorBody;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_snap))
        .routes(routes!(get_snap))
}

/// Photos to analyze.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapRequest {
    /// 1 to 50 photos (JPEG, PNG or WebP) as standard base64, each at most 6 MiB decoded; a
    /// `data:image/...;base64,` prefix is accepted.
    #[schema(example = json!(["/9j/4AAQSkZJRgABAQ..."]))]
    pub photos: Vec<String>,
}

/// An accepted snap.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapCreated {
    #[schema(example = "photos.0190f3c2a4b07d2e8f1a2b3c4d5e6f70")]
    pub job_id: String,
    pub photos: usize,
}

/// What the vision model saw.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemView {
    #[schema(example = "Red Cast-Iron Dutch Oven")]
    pub name: String,
    #[schema(example = "Cookware")]
    pub category: String,
    pub brand: Option<String>,
    /// `new`, `like new`, `good`, `fair` or `poor`.
    pub condition: String,
    /// 0 to 1.
    pub confidence: f64,
    pub description: Option<String>,
}

/// What the pricing model estimated.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PriceView {
    #[schema(example = 180.0)]
    pub price_usd: f64,
    pub low_usd: f64,
    pub high_usd: f64,
    pub currency: String,
    pub rationale: Option<String>,
}

/// Tokens billed (both calls of a photo, or all photos of a job).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokensView {
    pub input: u64,
    pub output: u64,
    pub total: u64,
}

/// One photo of a job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PhotoView {
    /// Its place in the upload.
    pub index: usize,
    pub task_id: String,
    /// `queued`, `running`, `retrying`, `succeeded`, `failed`, `dead` or `cancelled`.
    #[schema(example = "succeeded")]
    pub state: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<PriceView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokensView>,
    /// Estimated from the worker's price table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Why it failed (or why its last attempt did, while it retries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A job: progress, then every photo's item, price, tokens and cost.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapView {
    pub job_id: String,
    /// `processing`, `completed` (every photo ended; see `failed`), `failed` (none succeeded)
    /// or `cancelled`.
    #[schema(example = "processing")]
    pub status: String,
    /// Percent of the photos that have ended.
    pub progress: f64,
    pub total: u64,
    pub done: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub photos: Vec<PhotoView>,
    /// Summed over the photos analyzed.
    pub tokens: TokensView,
    pub cost_usd: f64,
    pub created_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
}

fn tokens(t: lanes_photos::TokenCounts) -> TokensView {
    TokensView {
        input: t.input,
        output: t.output,
        total: t.total,
    }
}

impl From<PhotoStatus> for PhotoView {
    fn from(p: PhotoStatus) -> Self {
        let r = p.result;
        Self {
            index: p.index,
            task_id: p.task_id.to_string(),
            state: p.state.as_str().into(),
            attempts: p.attempts,
            item: r.as_ref().map(|r| ItemView {
                name: r.item.name.clone(),
                category: r.item.category.clone(),
                brand: r.item.brand.clone(),
                condition: r.item.condition.clone(),
                confidence: r.item.confidence,
                description: r.item.description.clone(),
            }),
            price: r.as_ref().map(|r| PriceView {
                price_usd: r.price.price_usd,
                low_usd: r.price.low_usd,
                high_usd: r.price.high_usd,
                currency: r.price.currency.clone(),
                rationale: r.price.rationale.clone(),
            }),
            tokens: r.as_ref().map(|r| tokens(r.tokens)),
            cost_usd: r.as_ref().and_then(|r| r.cost_usd),
            error: p.error,
        }
    }
}

impl From<SnapStatus> for SnapView {
    fn from(s: SnapStatus) -> Self {
        Self {
            job_id: s.job_id.to_string(),
            status: s.status.as_str().into(),
            progress: s.progress,
            total: s.total,
            done: s.done,
            succeeded: s.succeeded,
            failed: s.failed,
            photos: s.photos.into_iter().map(PhotoView::from).collect(),
            tokens: tokens(s.tokens),
            cost_usd: s.cost_usd,
            created_at_ms: s.created_at_ms,
            finished_at_ms: s.finished_at_ms,
        }
    }
}

impl From<SnapError> for AppError {
    fn from(e: SnapError) -> Self {
        match e {
            SnapError::Engine(e) => e.into(),
            e if e.is_too_large() => AppError::PayloadTooLarge(e.to_string()),
            other => AppError::BadRequest(other.to_string()),
        }
    }
}

/// Upload photos to analyze: one job, one task per photo, processed in parallel by the photo
/// workers under the fleet's Gemini rate limit.
#[utoipa::path(
    post,
    path = "/seller/snap",
    tag = "photos",
    request_body = SnapRequest,
    responses(
        (status = 202, description = "Accepted; follow the job at the Location", body = SnapCreated),
        (status = 400, description = "Malformed JSON, no photos or more than 50, a photo that is not valid base64 or is empty", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 413, description = "The body, or a photo (over 6 MiB), is too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn create_snap(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SnapRequest>,
) -> Result<Response, AppError> {
    // Decoding megabytes of base64 is CPU work: off the async threads.
    let photos = tokio::task::spawn_blocking(move || lanes_photos::validate_snap(body.photos))
        .await
        .map_err(AppError::internal)??;
    let count = photos.len();
    let id = lanes_photos::submit_snap(state.lanes().await?, photos).await?;
    tracing::info!(job_id = %id, photos = count, "snap accepted");
    let body = SnapCreated {
        job_id: id.to_string(),
        photos: count,
    };
    Ok(accepted(format!("/seller/snap/{id}"), body))
}

/// A job's progress and every photo's item, price, tokens and cost so far.
#[utoipa::path(
    get,
    path = "/seller/snap/{job_id}",
    tag = "photos",
    params(("job_id" = String, Path, description = "The job id from POST /seller/snap")),
    responses(
        (status = 200, description = "The job", body = SnapView),
        (status = 400, description = "Not a photo job id", body = ErrorBody),
        (status = 404, description = "No such job (or it expired)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn get_snap(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SnapView>, AppError> {
    let id = lanes_photos::parse_job_id(&path_param(id)?)?;
    match lanes_photos::snap_status(state.lanes().await?, &id).await? {
        Some(s) => Ok(Json(s.into())),
        None => Err(AppError::NotFound(format!(
            "no photo job {id} (it never existed, or it finished and expired)"
        ))),
    }
}
