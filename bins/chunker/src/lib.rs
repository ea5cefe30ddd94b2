//! The product-batch analyzer (seed 003), as a library: 1000 products split into 8 chunks run
//! in parallel by any number of `chunker` processes, under fleet-wide SP-API (8/s) and Keepa
//! (5/s) limits, with one parent job whose progress is updated atomically, cancellation, and a
//! finalize step that runs exactly once.
//!
//! Modules:
//! - [`job`]: the dispatch side the broker uses too: `dispatch_job`, `job_status`,
//!   `cancel_job`, the queue and kind names, the payloads. Needs no HTTP client.
//! - `apis` (feature `worker`): SP-API and Keepa behind the fleet-wide limiters `sp_api` and
//!   `keepa`, 429 handling (pause the limiter for the API's hint, retry the product).
//! - `handlers` (feature `worker`): the kinds `analysis.job`, `analysis.chunk`,
//!   `analysis.finalize`.
//!
//! [`worker`] builds the `Worker` that runs the three kinds; `main.rs` parses flags and runs it.

pub mod job;

#[cfg(feature = "worker")]
pub mod apis;
#[cfg(feature = "worker")]
pub mod handlers;

pub use job::{
    DispatchError, JobCancel, JobState, JobStatus, QUEUE, cancel_job, dispatch_job, job_status,
};

#[cfg(feature = "worker")]
pub use worker_side::*;

#[cfg(feature = "worker")]
mod worker_side {
    use std::sync::Arc;

    use lanes_queue::{KindConfig, Lanes, Worker, WorkerConfig};
    use lanes_ratelimit::{Limits, Rate};

    use crate::apis::{ApiConfig, Apis};
    use crate::handlers::{self, Deps, Splitting};
    use crate::job::{KIND_CHUNK, KIND_FINALIZE, KIND_JOB};

    /// Name of the fleet-wide SP-API limiter.
    pub const SP_API_LIMITER: &str = "sp_api";
    /// Name of the fleet-wide Keepa limiter.
    pub const KEEPA_LIMITER: &str = "keepa";

    /// A chunker's settings (validated from its flags).
    #[derive(Debug, Clone)]
    pub struct ChunkerConfig {
        pub apis: ApiConfig,
        /// The `sp_api` limiter's rate; every chunker process should agree on it.
        pub sp_api_rate: Rate,
        /// The `keepa` limiter's rate.
        pub keepa_rate: Rate,
        pub splitting: Splitting,
    }

    /// What can stop a chunker from starting.
    #[derive(Debug, thiserror::Error)]
    pub enum SetupError {
        #[error("rate limiter: {0}")]
        RateLimit(#[from] lanes_ratelimit::Error),
        #[error("http client: {0}")]
        Http(#[from] reqwest::Error),
    }

    /// A worker running the chunker's kinds with `kind` (retries, time limits) for each.
    pub fn worker(
        lanes: Lanes,
        cfg: WorkerConfig,
        kind: KindConfig,
        chunker: ChunkerConfig,
    ) -> Result<Worker, SetupError> {
        let limits = Limits::new(lanes.connection(), lanes.keys().prefix())?;
        let sp_api = limits.limiter(SP_API_LIMITER, chunker.sp_api_rate)?;
        let keepa = limits.limiter(KEEPA_LIMITER, chunker.keepa_rate)?;
        let deps = Arc::new(Deps {
            apis: Apis::new(chunker.apis, sp_api, keepa)?,
            splitting: chunker.splitting,
        });
        let (d1, d2) = (deps.clone(), deps);
        Ok(Worker::new(lanes, cfg)
            .register(KIND_JOB, kind.clone(), move |ctx| {
                handlers::job(ctx, d1.clone())
            })
            .register(KIND_CHUNK, kind.clone(), move |ctx| {
                handlers::chunk(ctx, d2.clone())
            })
            .register(KIND_FINALIZE, kind, handlers::finalize))
    }
}
