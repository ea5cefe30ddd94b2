//! `AppError`: every way a request can fail, as `{"message": ...}` with the right status. Client
//! errors (4xx) keep their message; server errors (5xx) answer a generic message and log the
//! cause, so nothing about the deployment leaks.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::model::ErrorBody;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed JSON, a bad field, a bad queue name or task id.
    #[error("{0}")]
    BadRequest(String),
    /// A token is required and was missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// Refused whatever the credentials (a cross-site request to a mutating route).
    #[error("{0}")]
    Forbidden(String),
    /// No such task, queue or route.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request conflicts with the task's state (already finished, not dead-lettered).
    #[error("{0}")]
    Conflict(String),
    /// The body or the payload is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Redis cannot be reached (or is loading, or read-only): retry later.
    #[error("the task store is unavailable; try again later")]
    Unavailable(#[source] anyhow::Error),
    /// The request took longer than the configured timeout.
    #[error("the request timed out; try again later")]
    Timeout,
    /// A bug or an unexpected reply: logged, answered generically.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) | Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The underlying cause with its chain, for logs (never for response bodies).
    pub fn cause(&self) -> String {
        match self {
            Self::Unavailable(e) | Self::Internal(e) => format!("{e:#}"),
            other => other.to_string(),
        }
    }

    pub fn unavailable(e: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable(e.into())
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Unavailable(_) => tracing::warn!(error = %self.cause(), "redis unavailable"),
            Self::Internal(_) => tracing::error!(error = %self.cause(), "internal error"),
            Self::Timeout => tracing::warn!("request timed out"),
            _ => {}
        }
        let mut resp = (
            status,
            Json(ErrorBody {
                message: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lanes\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<lanes_queue::Error> for AppError {
    fn from(e: lanes_queue::Error) -> Self {
        use lanes_queue::Error as E;
        match e {
            E::Redis(r) if is_outage(&r) => Self::unavailable(r),
            E::Redis(r) => Self::internal(r),
            E::InvalidQueue { .. }
            | E::InvalidKind { .. }
            | E::InvalidTaskId { .. }
            | E::InvalidPriority { .. }
            | E::InvalidDelay { .. }
            | E::InvalidKey { .. }
            | E::InvalidKeyPolicy { .. }
            | E::InvalidKeyConcurrency { .. }
            | E::Payload(_) => Self::BadRequest(e.to_string()),
            E::PayloadTooLarge { .. } => Self::PayloadTooLarge(e.to_string()),
            E::StaleLease { .. } | E::KeyBusy { .. } => Self::Conflict(e.to_string()),
            E::RateLimit(r) => r.into(),
            // Variants added to the engine later answer 500 until they are mapped here.
            #[allow(unreachable_patterns)]
            other => Self::internal(other),
        }
    }
}

impl From<lanes_ratelimit::Error> for AppError {
    fn from(e: lanes_ratelimit::Error) -> Self {
        match e {
            lanes_ratelimit::Error::Unavailable { .. } => Self::unavailable(e),
            lanes_ratelimit::Error::Redis(ref r) if is_outage(r) => Self::unavailable(e),
            other => Self::internal(other),
        }
    }
}

/// True when a Redis error means "not reachable right now" (retry later) rather than a bug.
pub fn is_outage(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind as K, ServerErrorKind as S};
    match e.kind() {
        K::Io
        | K::AuthenticationFailed
        | K::ClusterConnectionNotFound
        | K::MasterNameNotFoundBySentinel
        | K::NoValidReplicasFoundBySentinel
        | K::Server(S::BusyLoading | S::TryAgain | S::ClusterDown | S::MasterDown | S::ReadOnly) => {
            true
        }
        _ => e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_cause() {
        let e = AppError::unavailable(anyhow::anyhow!("connection refused to 10.0.0.7:6379"));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.to_string().contains("10.0.0.7"));
        assert!(e.cause().contains("10.0.0.7"));
        let e = AppError::from(lanes_queue::Error::InvalidQueue { name: "a b".into() });
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("a b"));
    }
}
