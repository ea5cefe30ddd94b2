//! The photo analyzer (seed 002), as a library: any number of `photo-worker` processes consume
//! queue `photos`; each photo is prepared (EXIF orientation, downscale to 1024 px, JPEG), then
//! Gemini's vision model names the item and a cheaper text model prices it. All Gemini calls of
//! the fleet share one rate limiter (`gemini`, default 50/m); 429s pause it for everyone.
//!
//! The queue's engine defaults are what the seed configured by hand in Celery: acks late (a
//! task is acknowledged only after its handler returns), re-queued when its worker dies (the
//! lease expires and any worker reaps it), payloads gzip-compressed, 3 retries with exponential
//! backoff (full jitter, capped at 600 s), soft and hard time limits of 240 s and 300 s
//! ([`kind_config`]).
//!
//! Modules:
//! - [`prepare`]: image preparation (CPU, run on blocking threads).
//! - [`analyze`]: the `photos.analyze` handler: limiter, Gemini calls, error mapping, result.
//! - [`load_test`]: N concurrent uploads against a broker's `/seller/snap` (the seed's load
//!   test), used by `photo-load-test` and the demo.
//!
//! [`worker`] builds the `Worker`; `main.rs` parses flags and runs it. The contract with the
//! broker (queue, kind, payload, result) is `lanes-photos`.

pub mod analyze;
pub mod load_test;
pub mod prepare;

use std::sync::Arc;
use std::time::Duration;

use lanes_gemini::{Gemini, GeminiConfig, PriceTable};
use lanes_queue::{KindConfig, Lanes, RetryPolicy, Worker, WorkerConfig};
use lanes_ratelimit::{Limits, Rate};

pub use analyze::Analyzer;
pub use lanes_photos::{KIND, QUEUE};
pub use prepare::{PrepareConfig, PrepareError, Prepared};

/// Name of the fleet-wide Gemini limiter.
pub const LIMITER: &str = "gemini";

/// The seed's settings for photo tasks: 3 retries, backoff from 1 s doubling to at most 600 s
/// with full jitter, soft limit 240 s, hard limit 300 s.
pub fn kind_config() -> KindConfig {
    KindConfig {
        retry: RetryPolicy {
            max_retries: 3,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(600),
        },
        soft_limit: Some(Duration::from_secs(240)),
        hard_limit: Some(Duration::from_secs(300)),
    }
}

/// A photo worker's settings (validated from its flags).
#[derive(Debug, Clone)]
pub struct PhotoConfig {
    pub gemini: GeminiConfig,
    pub vision_model: String,
    pub pricing_model: String,
    /// The `gemini` limiter's rate; every photo worker should agree on it.
    pub rate: Rate,
    pub prices: PriceTable,
    pub prepare: PrepareConfig,
    /// 429s absorbed within one attempt before the task is retried later.
    pub rate_limit_waits: u32,
    /// `thinkingConfig.thinkingBudget` for both calls (`None`: the model's default).
    pub thinking_budget: Option<i32>,
}

impl PhotoConfig {
    /// Defaults around a Gemini endpoint and key: `gemini-2.5-flash` sees, `gemini-2.5-flash-lite`
    /// prices, 50 calls a minute.
    pub fn new(gemini: GeminiConfig) -> Self {
        Self {
            gemini,
            vision_model: "gemini-2.5-flash".into(),
            pricing_model: "gemini-2.5-flash-lite".into(),
            rate: Rate::per_minute(50).expect("50 per minute is a valid rate"),
            prices: PriceTable::default(),
            prepare: PrepareConfig::default(),
            rate_limit_waits: 3,
            thinking_budget: None,
        }
    }
}

/// What can stop a photo worker from starting.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("rate limiter: {0}")]
    RateLimit(#[from] lanes_ratelimit::Error),
    #[error(transparent)]
    Gemini(#[from] lanes_gemini::Error),
}

/// The analyzer a worker's handler uses (also for benchmarks that drive it directly).
pub fn analyzer(lanes: &Lanes, photos: PhotoConfig) -> Result<Analyzer, SetupError> {
    let limits = Limits::new(lanes.connection(), lanes.keys().prefix())?;
    let limiter = limits.limiter(LIMITER, photos.rate)?;
    Ok(Analyzer {
        default_retry_delay: Duration::from_secs(10).min(photos.gemini.max_retry_delay),
        gemini: Gemini::new(photos.gemini)?,
        limiter,
        vision_model: photos.vision_model,
        pricing_model: photos.pricing_model,
        prices: photos.prices,
        prepare: photos.prepare,
        rate_limit_waits: photos.rate_limit_waits,
        thinking_budget: photos.thinking_budget,
    })
}

/// A worker running `photos.analyze` with `kind` (retries, time limits).
pub fn worker(
    lanes: Lanes,
    cfg: WorkerConfig,
    kind: KindConfig,
    photos: PhotoConfig,
) -> Result<Worker, SetupError> {
    let a = Arc::new(analyzer(&lanes, photos)?);
    Ok(Worker::new(lanes, cfg).register(KIND, kind, move |ctx| analyze::analyze(ctx, a.clone())))
}
