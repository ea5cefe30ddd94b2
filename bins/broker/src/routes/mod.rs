//! The router: every route is registered through `utoipa_axum::routes!`, which adds it to the
//! OpenAPI document at the same time, so `/openapi.json` lists exactly what is served.
//!
//! Route modules, one per system: [`generic`] (tasks, queues, workers, limiters), [`ops`]
//! (health, readiness, metrics, the OpenAPI document), [`dashboard`] (the page, its assets and
//! its event stream). The seeds' systems (bank bot, tickets, photos, jobs, channels) each get a
//! module of their own, merged in [`api`].
//!
//! Layers, outermost first: security headers → HTTP metrics → panic catcher → timeout →
//! auth → body limit → handler.

pub mod bank;
pub mod channels;
pub mod dashboard;
pub mod generic;
pub mod jobs;
pub mod ops;
pub mod photos;
pub mod tickets;

use std::any::Any;
use std::sync::Arc;

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Extension, Router};
use serde::de::DeserializeOwned;
use tower::ServiceBuilder;
use tower::timeout::TimeoutLayer;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::AppError;
use crate::state::AppState;
use crate::{auth, metrics};

/// The document's fixed parts; paths and schemas are added by the route modules.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lanes broker",
        description = "Dispatch tasks to Lanes queues and read their status. Errors are \
            `{\"message\": ...}` with a 4xx or 5xx status. With an API token configured, \
            mutating routes need `Authorization: Bearer <token>` (and read routes too with \
            --protect-reads)."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tasks", description = "Enqueue, read, cancel and re-queue tasks"),
        (name = "queues", description = "Queue depths, counters and dead letters"),
        (name = "fleet", description = "Workers, rate limiters and semaphores"),
        (name = "dashboard", description = "The built-in dashboard and its live event stream"),
        (name = "ops", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route, with its OpenAPI description.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(generic::routes())
        .merge(bank::routes())
        .merge(channels::routes())
        .merge(tickets::routes())
        .merge(jobs::routes())
        .merge(photos::routes())
        .merge(ops::routes())
        .merge(dashboard::routes())
}

/// The served router: [`api`] plus fallbacks and the layers listed above.
pub fn router(state: AppState) -> Router {
    let cfg = state.config().clone();
    let (routes, doc) = api().split_for_parts();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Arc::new(doc)))
        .layer(DefaultBodyLimit::max(cfg.body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(timeout_error))
                .layer(TimeoutLayer::new(cfg.request_timeout)),
        )
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn not_found(req: Request) -> AppError {
    AppError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> AppError {
    AppError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        req.method(),
        req.uri().path()
    ))
}

async fn timeout_error(err: BoxError) -> AppError {
    if err.is::<tower::timeout::error::Elapsed>() {
        AppError::Timeout
    } else {
        AppError::Internal(anyhow::anyhow!("middleware error: {err}"))
    }
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic");
    AppError::Internal(anyhow::anyhow!("handler panicked: {what}")).into_response()
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// A JSON request body: `Content-Type: application/json` (or `+json`) required, size limited by
/// `--body-limit` (413), malformed JSON and bad fields answered 400 with the field's path.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        if !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ));
        }
        let limit = state.config().body_limit;
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge(format!(
                    "request body is larger than the limit of {limit} bytes"
                ))
            } else {
                AppError::BadRequest(format!("cannot read the request body: {}", r.body_text()))
            }
        })?;
        parse_json(&body).map(ApiJson)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// Parses JSON into `T`: syntax errors are "malformed JSON", type errors name the field's path.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(describe)?;
    de.end()
        .map_err(|e| AppError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Converts an already parsed JSON value into `T`, naming the field's path on error.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(value).map_err(describe)
}

fn describe(e: serde_path_to_error::Error<serde_json::Error>) -> AppError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        AppError::BadRequest(format!("malformed JSON: {inner}"))
    } else if path == "." {
        AppError::BadRequest(format!("invalid body: {inner}"))
    } else {
        AppError::BadRequest(format!("invalid body at {path}: {inner}"))
    }
}

/// A path parameter, or 400 with a JSON message.
pub fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    p.map(|Path(v)| v)
        .map_err(|r| AppError::BadRequest(format!("bad path: {}", r.body_text())))
}

/// 202 Accepted for work just dispatched: where to follow it, and what was created.
pub fn accepted(location: String, body: impl serde::Serialize) -> Response {
    (
        axum::http::StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response()
}

/// The id of a job that lives on `queue` (a chunker or collector job): 400 when the path is not
/// an id, 404 when it names another queue's job. `what` names the job in the message.
pub fn job_id<T: std::str::FromStr + std::fmt::Display>(
    raw: Result<Path<String>, PathRejection>,
    queue: &str,
    queue_of: impl Fn(&T) -> &str,
    what: &str,
) -> Result<T, AppError> {
    let raw = path_param(raw)?;
    let id: T = raw
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{raw:?} is not a job id")))?;
    if queue_of(&id) != queue {
        return Err(no_job(what, &id));
    }
    Ok(id)
}

/// 404 for a job that is not (or no longer) there.
pub fn no_job(what: &str, id: &impl std::fmt::Display) -> AppError {
    AppError::NotFound(format!(
        "no {what} {id} (it never existed, or it finished and expired)"
    ))
}
