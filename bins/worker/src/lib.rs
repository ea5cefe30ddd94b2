//! The generic Lanes worker, as a library: the built-in kinds and the CLI's commands.
//!
//! Modules:
//! - [`kinds`]: `exec`, `http`, `sleep`, `noop`.
//! - [`commands`]: `submit`, `status`, `inspect`, `cancel`, `requeue` (what `celery call` and
//!   `celery inspect` do, against any queue).

pub mod commands;
pub mod kinds;

use lanes_queue::{KindConfig, Lanes, Worker, WorkerConfig};

pub use kinds::exec::ExecPolicy;

/// A worker with every built-in kind registered under `kind_cfg`.
pub fn builtin_worker(
    lanes: Lanes,
    cfg: WorkerConfig,
    kind_cfg: KindConfig,
    exec: ExecPolicy,
) -> Worker {
    let http = reqwest::Client::builder()
        .user_agent(concat!("lanes-worker/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    Worker::new(lanes, cfg)
        .register("noop", kind_cfg.clone(), kinds::noop)
        .register("sleep", kind_cfg.clone(), kinds::sleep)
        .register("exec", kind_cfg.clone(), kinds::exec::handler(exec))
        .register("http", kind_cfg, kinds::http::handler(http))
}
