//! The bank-account bot (seed 000), as a library: consumes queue `bank-bot`, and for each task
//! (one bank account) logs in to the bank portal in headless Chromium, walks every transactions
//! page and stores the deposits, idempotently, in Redis.
//!
//! Modules:
//! - [`credentials`]: resolving an account's portal credentials from a secrets file or
//!   `BANK_CREDENTIALS_<ACCOUNT>` variables (never from the task).
//! - [`portal`]: driving the portal's pages (login with CSRF, one-time code, pagination).
//! - [`handler`]: the task handler: session per task, error mapping, deposit store, result.
//!
//! One process runs one [`lanes_browser::BrowserPool`]: by default one browser shared by every
//! concurrent bot through an isolated browser context per account.

pub mod credentials;
pub mod handler;
pub mod portal;

use std::sync::Arc;
use std::time::Duration;

use lanes_bank::DepositStore;
use lanes_browser::{BrowserConfig, BrowserPool, MemoryRow};
use lanes_queue::{KindConfig, Lanes, Worker, WorkerConfig, WorkerReport};
use tokio_util::sync::CancellationToken;

pub use credentials::{CredentialStore, Credentials};
pub use handler::Bot;
pub use portal::Portal;

/// Everything a bot process needs besides the engine's worker settings.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Base URL of the portal, e.g. `http://127.0.0.1:8090/bank`.
    pub bank_url: String,
    /// How long one page (load or form submit) may take.
    pub page_timeout: Duration,
    pub browser: BrowserConfig,
    pub credentials: CredentialStore,
    /// Retry policy and time limits of the bot's task kind.
    pub kind: KindConfig,
}

/// Runs a bot worker until `shutdown` fires (or its task budget is spent), then closes the
/// browser.
pub async fn run(
    lanes: Lanes,
    cfg: BotConfig,
    worker: WorkerConfig,
    shutdown: CancellationToken,
) -> lanes_queue::Result<WorkerReport> {
    let bot = Arc::new(Bot::new(
        Arc::new(BrowserPool::new(cfg.browser.clone())),
        Portal::new(&cfg.bank_url, cfg.page_timeout),
        cfg.credentials.clone(),
        DepositStore::for_lanes(&lanes),
    ));
    let report = worker_for(lanes, worker, cfg.kind.clone(), bot.clone())
        .run(shutdown)
        .await;
    bot.pool().close().await;
    report
}

/// A worker with the bot's kind registered (for callers that keep the [`Bot`], e.g. to read its
/// browser pool's stats).
pub fn worker_for(lanes: Lanes, worker: WorkerConfig, kind: KindConfig, bot: Arc<Bot>) -> Worker {
    Worker::new(lanes, worker).register(lanes_bank::KIND, kind, handler::handler(bot))
}

/// Memory of N concurrent accounts in both browser modes, each with the portal's login page
/// loaded (see [`lanes_browser::measure_rss`]).
pub async fn measure(
    browser: &BrowserConfig,
    bank_url: &str,
    accounts: &[usize],
) -> lanes_browser::Result<Vec<MemoryRow>> {
    let url = format!("{}/login", bank_url.trim_end_matches('/'));
    lanes_browser::measure_rss(browser, &url, accounts).await
}
