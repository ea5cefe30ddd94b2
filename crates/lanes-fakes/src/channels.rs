//! A Telegram-like message channel API (not built yet: answers 501).

use axum::Router;

use crate::FakesConfig;

/// The channels fake's routes.
pub fn router(_cfg: &FakesConfig) -> Router {
    crate::not_built("channels")
}
