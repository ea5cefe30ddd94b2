//! Distributed locks for Lanes, usable on their own: one holder per key across every process and
//! machine sharing one Redis, with a fencing token per acquisition, automatic lease renewal while
//! held, and compare-and-delete release.
//!
//! What it guarantees:
//! - At most one [`Guard`] per key at a time, unless a holder stalls past its TTL: then
//!   [`Guard::lost`] fires for it and its fencing token is lower than the next holder's, so a
//!   fenced resource ([`Locks::fenced_set`]) refuses its late writes.
//! - A live holder keeps its lock (renewed every third of the TTL); a dead one loses it within
//!   one TTL ([`DEFAULT_TTL`] is 10 s). No stuck locks, no manual `DEL`.
//! - A release only ever deletes the caller's own lock; operators have [`Locks::holder`] and
//!   [`Locks::force_release`].
//! - A Redis that does not answer is an [`Error::Unavailable`] after a bounded retry, never an
//!   acquired lock.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lanes_lock::{DEFAULT_TTL, Locks};
//!
//! // One server; `redis+cluster://host:port,host:port` reaches a Redis Cluster.
//! let endpoint = lanes_redis::Endpoint::open("redis://127.0.0.1/")?;
//! let conn = endpoint.shared(lanes_redis::SharedOptions::default()).await?;
//! let locks = Locks::new(conn, "lanes")?.with_wait_client(endpoint);
//!
//! let Some(guard) = locks.try_lock("bank:acct-42", DEFAULT_TTL).await? else {
//!     return Err("bot is already running for this account".into());
//! };
//! // Writes carry the fencing token; a holder that lost the lock is refused.
//! let written = locks
//!     .fenced_set("bank:acct-42:deposits", guard.fencing_token(), "[...]")
//!     .await?;
//! assert!(written);
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! Modules:
//! - `locks` — [`Locks`], the entry point: `try_lock`, `lock` (waiting), `holder`,
//!   `force_release`, `check_fence`, `fenced_set` / `fenced_get`.
//! - `guard` — [`Guard`], a held lock with its renewal task and `lost` token.
//! - `signal` — blocking waits for a release signal (`BLPOP` on dedicated connections).
//! - `keys` — [`Keys`], the only place Redis key names are built (schema in its docs).
//! - `scripts` — the Lua scripts under `lua/`.
//! - `retry` — [`RetryPolicy`] for an unreachable Redis.
//! - `error` — [`Error`].
//! - [`bench`](mod@bench) — acquire + release latency for the benchmark binary.

pub mod bench;
mod error;
mod guard;
mod keys;
mod locks;
mod retry;
mod scripts;
mod signal;

pub use error::{Error, Result};
pub use guard::Guard;
pub use keys::{Keys, LockKeys, MAX_KEY_LEN};
pub use locks::{DEFAULT_MAX_POLL, DEFAULT_TTL, FencedValue, HolderInfo, Locks, MAX_TTL, MIN_TTL};
pub use retry::RetryPolicy;
