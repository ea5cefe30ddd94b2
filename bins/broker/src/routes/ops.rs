//! Operational routes: liveness (`/healthz`), readiness (`/readyz`: Redis answers PING within
//! the Redis timeout), Prometheus metrics (`/metrics`) and this API's OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::AppError;
use crate::metrics;
use crate::model::{ErrorBody, Health};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(prometheus))
        .routes(routes!(openapi_json))
}

/// The process is up (always 200; says nothing about Redis).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses((status = 200, description = "Up", body = Health))
)]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Ready to serve: Redis answered PING within the Redis timeout.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Redis answers", body = Health),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, AppError> {
    state.check_redis().await?;
    Ok(Json(Health {
        status: "ready".into(),
    }))
}

/// Prometheus metrics (OpenMetrics text): queue depths, fleet-wide task counters, workers and
/// slots, limiters and semaphores (read from Redis at scrape time), and this broker's HTTP
/// requests and latencies. When Redis cannot be read, `lanes_redis_up` is 0 and only the HTTP
/// metrics follow.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "Metrics", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "Missing or wrong API token (with --protect-reads)", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn prometheus(State(state): State<AppState>) -> Result<Response, AppError> {
    let fleet = match tokio::time::timeout(state.config().redis_timeout, state.fleet()).await {
        Ok(Ok(f)) => Some(f),
        Ok(Err(e)) => {
            tracing::warn!(error = %e.cause(), "metrics: cannot read the fleet");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: reading the fleet timed out");
            None
        }
    };
    let text = metrics::render(fleet.as_ref(), state.http_metrics())
        .map_err(|e| AppError::internal(anyhow::anyhow!("encode metrics: {e}")))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        text,
    )
        .into_response())
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
async fn openapi_json(
    Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Result<Response, AppError> {
    let json = doc
        .to_pretty_json()
        .map_err(|e| AppError::internal(anyhow::anyhow!("serialize openapi: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}
