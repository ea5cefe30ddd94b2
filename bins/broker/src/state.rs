//! `AppState`: what every handler shares. The engine client connects lazily, so the broker
//! starts (and answers `/healthz`, `/readyz` 503, the dashboard page) while Redis is still down,
//! and every request that needs Redis answers 503 quickly until it is up.

use std::sync::Arc;

use lanes_queue::Lanes;
use lanes_ratelimit::Limits;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::AppError;
use crate::fleet;
use crate::hub::Hub;
use crate::metrics::HttpMetrics;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Config,
    lanes: OnceCell<Lanes>,
    http: HttpMetrics,
    hub: Hub,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("cfg", &self.inner.cfg)
            .field("connected", &self.inner.lanes.initialized())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for `cfg`; `shutdown` ends the dashboards' event streams.
    pub fn new(cfg: Config, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                lanes: OnceCell::new(),
                http: HttpMetrics::new(),
                hub: Hub::default(),
                shutdown,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    pub fn http_metrics(&self) -> &HttpMetrics {
        &self.inner.http
    }

    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The engine client, connecting on first use (bounded by the Redis timeout). A failed
    /// connect is 503 and is tried again by the next request.
    pub async fn lanes(&self) -> Result<&Lanes, AppError> {
        let cfg = &self.inner.cfg;
        self.inner
            .lanes
            .get_or_try_init(|| async {
                match tokio::time::timeout(
                    cfg.redis_timeout,
                    Lanes::connect(&cfg.redis_url, cfg.engine.clone()),
                )
                .await
                {
                    Ok(Ok(lanes)) => Ok(lanes),
                    Ok(Err(e)) => Err(AppError::from(e)),
                    Err(_) => Err(AppError::unavailable(anyhow::anyhow!(
                        "connecting to redis at {} took longer than {:?}",
                        lanes_cli::redact(&cfg.redis_url),
                        cfg.redis_timeout
                    ))),
                }
            })
            .await
    }

    /// Rate limiters and semaphores under the engine's prefix (see [`fleet::limits_for`]).
    pub async fn limits(&self) -> Result<Limits, AppError> {
        fleet::limits_for(self.lanes().await?, self.inner.cfg.redis_timeout)
    }

    /// The fleet now (see [`fleet::fleet`]).
    pub async fn fleet(&self) -> Result<fleet::Fleet, AppError> {
        fleet::fleet(self.lanes().await?, &self.limits().await?).await
    }

    /// Connects if needed and pings Redis, within the Redis timeout.
    pub async fn check_redis(&self) -> Result<(), AppError> {
        let timeout = self.inner.cfg.redis_timeout;
        let ping = async { Ok::<_, AppError>(self.lanes().await?.ping().await?) };
        match tokio::time::timeout(timeout, ping).await {
            Ok(r) => r,
            Err(_) => Err(AppError::unavailable(anyhow::anyhow!(
                "redis did not answer PING within {timeout:?}"
            ))),
        }
    }
}
