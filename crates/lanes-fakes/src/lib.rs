//! Faithful fakes of the services no machine here can reach, served by the project on loopback:
//! same wire shapes, same errors, same rate limits enforced (a fake that never answers 429 proves
//! nothing). Real deployments point the same binaries at the real endpoints by configuration.
//!
//! One module per service, each mounted under its own path prefix by [`app`]:
//! - [`spapi`] (`/spapi`): an Amazon SP-API-like catalog and pricing API.
//! - [`keepa`] (`/keepa`): a Keepa-like product API with its token bucket.
//! - [`bank`] (`/bank`): a bank portal with a login form, CSRF, one-time codes, paginated
//!   transactions.
//! - [`gemini`] (`/gemini`): Google's Gemini `generateContent`.
//! - [`channels`] (`/channels`): a Telegram-like message channel API.
//!
//! Shared by the product APIs: [`products`] (the product fixture) and [`quota`] (the token
//! bucket and the counters served at `GET /<fake>/_stats`).

pub mod bank;
pub mod channels;
pub mod gemini;
pub mod keepa;
pub mod products;
pub mod quota;
pub mod spapi;

use std::path::PathBuf;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Settings shared by every fake.
#[derive(Debug, Clone)]
pub struct FakesConfig {
    /// The `fixtures/` directory (pages, product lists, photos, channel dumps).
    pub fixtures: PathBuf,
    /// The SP-API fake's rate limit.
    pub spapi: spapi::SpApiConfig,
    /// The Keepa fake's token bucket and key.
    pub keepa: keepa::KeepaConfig,
}

impl Default for FakesConfig {
    fn default() -> Self {
        Self {
            fixtures: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures")),
            spapi: spapi::SpApiConfig::default(),
            keepa: keepa::KeepaConfig::default(),
        }
    }
}

/// Every fake, each under its prefix.
pub fn app(cfg: &FakesConfig) -> Router {
    Router::new()
        .nest("/spapi", spapi::router(cfg))
        .nest("/keepa", keepa::router(cfg))
        .nest("/bank", bank::router(cfg))
        .nest("/gemini", gemini::router(cfg))
        .nest("/channels", channels::router(cfg))
}

/// Serves [`app`] on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    cfg: FakesConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app(&cfg))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
