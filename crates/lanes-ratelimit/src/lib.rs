//! Distributed rate limiting for Lanes: named GCRA rate limiters and lease-based semaphores that
//! hold across every process and machine sharing one Redis.
//!
//! Everything is decided on the Redis clock (`TIME`) inside Lua scripts, so local clock skew
//! never loosens a limit, and a Redis that does not answer is an [`Error::Unavailable`] after a
//! bounded retry, never an unlimited pass.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lanes_ratelimit::{Limits, SemaphoreConfig};
//! use tokio_util::sync::CancellationToken;
//!
//! // One server; `redis+cluster://host:port,host:port` reaches a Redis Cluster.
//! let endpoint = lanes_redis::Endpoint::open("redis://127.0.0.1/")?;
//! let conn = endpoint.shared(lanes_redis::SharedOptions::default()).await?;
//! let limits = Limits::new(conn, "lanes")?;
//! let shutdown = CancellationToken::new();
//!
//! // SP-API: 8 requests per second across the fleet, strictly spaced (burst 1).
//! let sp_api = limits.limiter("sp_api", "8/s".parse()?)?;
//! sp_api.acquire(1, &shutdown).await?;
//! // ... the API answered 429 with "retry after 2 s": every worker waits.
//! sp_api.pause_for(std::time::Duration::from_secs(2)).await?;
//!
//! // At most 4 browsers at once across the fleet.
//! let browsers = limits.semaphore("browsers", SemaphoreConfig::new(4))?;
//! let permit = browsers.acquire(&shutdown).await?;
//! // ... work; watch permit.lost() ...
//! permit.release().await?;
//! # Ok(()) }
//! ```
//!
//! Modules:
//! - `limits` — [`Limits`], the entry point: one connection, one key prefix, listings.
//! - `rate` — [`Rate`], parsed from `"8/s"`, `"50/m"`, `"3000/h"`, `"8/s,burst=4"`.
//! - `limiter` — [`Limiter`]: `try_acquire`, `acquire`, `pause_for`, `state`.
//! - `semaphore` — [`Semaphore`] and its [`Permit`] guard with automatic lease renewal.
//! - `keys` — [`Keys`], the only place Redis key names are built (schema in its docs).
//! - `scripts` — the Lua scripts under `lua/`.
//! - `retry` — [`RetryPolicy`] for an unreachable Redis.
//! - `clock` — [`ServerTime`], an instant on the Redis clock.
//! - `error` — [`Error`].
//! - [`bench`](mod@bench) — drive a limiter hard, check its windows, time its decisions.

pub mod bench;
mod clock;
mod error;
mod keys;
mod limiter;
mod limits;
mod rate;
mod retry;
mod scripts;
mod semaphore;

pub use clock::ServerTime;
pub use error::{Error, Result};
pub use keys::{Keys, LimiterKeys};
pub use limiter::{DEFAULT_LOOKAHEAD, Decision, Grant, Limiter, LimiterState};
pub use limits::{LimiterInfo, Limits, SemaphoreInfo};
pub use rate::Rate;
pub use retry::RetryPolicy;
pub use semaphore::{
    DEFAULT_LEASE_TTL, DEFAULT_MAX_POLL, Holder, Permit, Semaphore, SemaphoreConfig, SemaphoreState,
};
