//! Google Gemini generateContent (being built: answers 501 until then, never a silent success).

use axum::Router;
use axum::http::StatusCode;

use crate::FakesConfig;

/// The gemini fake's routes.
pub fn router(_cfg: &FakesConfig) -> Router {
    Router::new().fallback(|| async {
        let message = serde_json::json!({ "message": "the gemini fake is not built yet" });
        (StatusCode::NOT_IMPLEMENTED, axum::Json(message))
    })
}
