//! The Lanes broker: the front door of a Lanes deployment. An HTTP API to dispatch tasks and
//! read their status, a live dashboard, Prometheus metrics, and an `inspect` CLI.
//!
//! The broker keeps no state of its own: everything it serves is read from Redis on demand, so
//! any number of brokers can run behind a load balancer.
//!
//! Modules:
//! - [`config`]: `ServeArgs` (the serving flags) and the validated [`Config`].
//! - [`state`]: [`AppState`], what every handler shares (the lazily connected engine client).
//! - [`routes`]: the router, one module per system (`generic` now; bank bot, tickets, photos,
//!   jobs and channels later), the operational routes and the OpenAPI document.
//! - [`model`]: request and response types of the API (they derive the OpenAPI schemas).
//! - [`error`]: [`AppError`], every failure as `{"message": ...}` with its status.
//! - [`auth`]: bearer-token checks for mutating (and optionally all) routes.
//! - [`fleet`]: reads queues, workers and limiters from Redis for the dashboard, `/metrics`
//!   and `inspect`.
//! - [`hub`]: one snapshot poller per broker shared by every dashboard stream.
//! - [`metrics`]: HTTP metrics and the Prometheus text rendering.
//! - [`inspect`]: `broker inspect active|reserved|stats|dead|queues|keys`.

pub mod auth;
pub mod config;
pub mod error;
pub mod fleet;
pub mod hub;
pub mod inspect;
pub mod metrics;
pub mod model;
pub mod routes;
pub mod state;

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{AuthConfig, Config, ServeArgs};
pub use error::AppError;
pub use state::AppState;

/// How long open connections (dashboards, slow clients) may take to finish after a shutdown
/// signal before the broker exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The broker's whole HTTP surface for `state`.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Binds `cfg.listen` and serves until `shutdown` is cancelled.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listen on {}", cfg.listen))?;
    serve(listener, cfg, shutdown).await
}

/// Serves on an already bound listener until `shutdown` is cancelled: stops accepting, ends the
/// dashboards' event streams, lets in-flight requests finish (at most 10 s), then returns.
pub async fn serve(
    listener: TcpListener,
    cfg: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("read the bound address")?;
    let state = AppState::new(cfg, shutdown.clone());
    tracing::info!(%addr, dashboard = %format!("http://{addr}/"), "broker listening");
    let probe = state.clone();
    tokio::spawn(async move {
        match probe.check_redis().await {
            Ok(()) => tracing::info!("redis reachable"),
            Err(e) => {
                tracing::warn!(error = %e.cause(), "redis not reachable yet; serving 503 until it is")
            }
        }
    });
    let server = axum::serve(listener, app(state)).with_graceful_shutdown({
        let token = shutdown.clone();
        async move { token.cancelled().await }
    });
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served.context("serve http")?,
        () = deadline => tracing::warn!("connections still open after the grace period; exiting"),
    }
    tracing::info!("broker stopped");
    Ok(())
}
