//! Google Gemini generateContent (not built yet: answers 501).

use axum::Router;

use crate::FakesConfig;

/// The gemini fake's routes.
pub fn router(_cfg: &FakesConfig) -> Router {
    crate::not_built("gemini")
}
