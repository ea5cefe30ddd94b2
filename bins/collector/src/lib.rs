//! The channel collector (seed 004), as a library: a job collects N message channels with
//! bounded concurrency and no batch barriers (a slow channel never holds the others), one
//! channel's error never stops the others, the channel API's flood waits are honoured by every
//! collector at once, and a collection resumes where it stopped after a crash or a restart.
//!
//! Modules:
//! - [`job`]: the dispatch side the broker uses too: `dispatch_job`, `job_status`,
//!   `cancel_job`, queue and kind names, channel names. Needs no HTTP client.
//! - [`checkpoint`]: each channel's checkpoint in Redis (last message id, output length,
//!   counts), fenced by the channel lock's token.
//! - [`keys`]: the collector's Redis key schema (the only place its key names are built).
//! - `api` (feature `worker`): the channel API behind the fleet-wide `channels_api` limiter and
//!   the flood gate.
//! - `collect` (feature `worker`): collecting one channel into the data directory.
//! - `handlers` (feature `worker`): the kinds `channels.collect` and `channels.finalize`.
//!
//! [`worker`] builds the `Worker` that runs both kinds; `main.rs` parses flags and runs it.

pub mod checkpoint;
pub mod job;
pub mod keys;

#[cfg(feature = "worker")]
pub mod api;
#[cfg(feature = "worker")]
pub mod collect;
#[cfg(feature = "worker")]
pub mod handlers;

pub use job::{
    ChannelStatus, DispatchError, JobStatus, KIND_COLLECT, KIND_FINALIZE, QUEUE, cancel_job,
    dispatch_job, job_status,
};

#[cfg(feature = "worker")]
pub use worker_side::*;

#[cfg(feature = "worker")]
mod worker_side {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use lanes_lock::Locks;
    use lanes_queue::{KindConfig, Lanes, Worker, WorkerConfig};
    use lanes_ratelimit::{Limits, Rate};

    use crate::api::{Api, ApiConfig};
    use crate::checkpoint::Checkpoints;
    use crate::collect::Collector;
    use crate::handlers::{self, Deps};
    use crate::job::{KIND_COLLECT, KIND_FINALIZE};

    /// Name of the fleet-wide limiter every call to the channel API goes through.
    pub const API_LIMITER: &str = "channels_api";

    /// A collector's settings (validated from its flags).
    #[derive(Debug, Clone)]
    pub struct CollectorConfig {
        pub api: ApiConfig,
        /// The `channels_api` limiter's rate; every collector process should agree on it.
        pub api_rate: Rate,
        /// Where channels are written (`<data_dir>/<channel>/messages.jsonl`, `media/`).
        pub data_dir: PathBuf,
        /// Photos of one channel downloaded at once.
        pub download_concurrency: usize,
        /// How long a task waits for a channel another task is collecting.
        pub lock_wait: Duration,
    }

    /// What can stop a collector from starting.
    #[derive(Debug, thiserror::Error)]
    pub enum SetupError {
        #[error("rate limiter: {0}")]
        RateLimit(#[from] lanes_ratelimit::Error),
        #[error("channel locks: {0}")]
        Lock(#[from] lanes_lock::Error),
        #[error("http client: {0}")]
        Http(#[from] reqwest::Error),
        #[error("data directory {}: {source}", path.display())]
        DataDir {
            path: PathBuf,
            source: std::io::Error,
        },
    }

    /// The collection machinery on `lanes`' Redis and prefix, without the queue (the benchmark's
    /// fixed-batch baseline drives it directly).
    pub fn collector(lanes: &Lanes, cfg: &CollectorConfig) -> Result<Collector, SetupError> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| SetupError::DataDir {
            path: cfg.data_dir.clone(),
            source,
        })?;
        let limits = Limits::new(lanes.connection(), lanes.keys().prefix())?;
        let limiter = limits.limiter(API_LIMITER, cfg.api_rate)?;
        Ok(Collector {
            api: Api::new(cfg.api.clone(), limiter)?,
            checkpoints: Checkpoints::new(
                lanes.connection(),
                lanes.keys().prefix(),
                lanes.config().result_ttl,
            ),
            data_dir: cfg.data_dir.clone(),
            download_concurrency: cfg.download_concurrency.max(1),
        })
    }

    /// A worker running the collector's kinds, `kind` (retries, time limits) for each.
    pub fn worker(
        lanes: Lanes,
        cfg: WorkerConfig,
        kind: KindConfig,
        collector_cfg: CollectorConfig,
    ) -> Result<Worker, SetupError> {
        let deps = Arc::new(Deps {
            collector: collector(&lanes, &collector_cfg)?,
            locks: Locks::new(lanes.connection(), lanes.keys().prefix())?,
            lock_ttl: lanes.config().lease,
            lock_wait: collector_cfg.lock_wait,
        });
        Ok(Worker::new(lanes, cfg)
            .register(KIND_COLLECT, kind.clone(), move |ctx| {
                handlers::collect(ctx, deps.clone())
            })
            .register(KIND_FINALIZE, kind, handlers::finalize))
    }
}
