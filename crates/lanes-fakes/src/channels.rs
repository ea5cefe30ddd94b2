//! A Telegram-like message channel API (being built: answers 501 until then, never a silent success).

use axum::Router;
use axum::http::StatusCode;

use crate::FakesConfig;

/// The channels fake's routes.
pub fn router(_cfg: &FakesConfig) -> Router {
    Router::new().fallback(|| async {
        let message = serde_json::json!({ "message": "the channels fake is not built yet" });
        (StatusCode::NOT_IMPLEMENTED, axum::Json(message))
    })
}
