//! The generic Lanes worker, as a library: the built-in kinds and the CLI's commands.
//!
//! Modules:
//! - [`kinds`]: `exec`, `http`, `sleep`, `noop`.
//! - [`commands`]: `submit`, `status`, `inspect`, `cancel`, `requeue` (what `celery call` and
//!   `celery inspect` do, against any queue).
//! - [`tickets`]: the ticket executor (seed 001): queue `tickets`, one lane per project.

pub mod commands;
pub mod kinds;
pub mod tickets;

use lanes_queue::{KindConfig, Lanes, Worker, WorkerConfig};

pub use kinds::exec::ExecPolicy;

/// A worker with every built-in kind registered under `kind_cfg`; with a ticket command, also
/// the ticket executor's `ticket` kind.
pub fn builtin_worker(
    lanes: Lanes,
    cfg: WorkerConfig,
    kind_cfg: KindConfig,
    exec: ExecPolicy,
    ticket_command: Option<String>,
) -> Worker {
    let http = reqwest::Client::builder()
        .user_agent(concat!("lanes-worker/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let worker = match ticket_command {
        Some(cmd) => {
            Worker::new(lanes, cfg).register(tickets::KIND, kind_cfg.clone(), tickets::handler(cmd))
        }
        None => Worker::new(lanes, cfg),
    };
    worker
        .register("noop", kind_cfg.clone(), kinds::noop)
        .register("sleep", kind_cfg.clone(), kinds::sleep)
        .register("exec", kind_cfg.clone(), kinds::exec::handler(exec))
        .register("http", kind_cfg, kinds::http::handler(http))
}
