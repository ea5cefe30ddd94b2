//! The `collect_deposits` handler: one bank account per task, in its own browser context.
//!
//! Errors are mapped by what should happen next: bad credentials, a locked account, missing
//! credentials or a missing OTP seed fail permanently (retrying bad credentials would lock the
//! account); 5xx pages, timeouts, a refused one-time code and a failed browser are retried with
//! the kind's backoff (the pool relaunches a dead browser for the next attempt).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanes_bank::{BotPayload, BotResult, Deposit, DepositStore, validate_account};
use lanes_browser::BrowserPool;
use lanes_queue::{CancelReason, TaskContext, TaskError, TaskResult};
use serde_json::json;
use tracing::{info, warn};

use crate::credentials::CredentialStore;
use crate::portal::{Portal, PortalError, Statement};

/// What every task of a bot process shares.
#[derive(Debug)]
pub struct Bot {
    pool: Arc<BrowserPool>,
    portal: Portal,
    credentials: CredentialStore,
    deposits: DepositStore,
}

impl Bot {
    pub fn new(
        pool: Arc<BrowserPool>,
        portal: Portal,
        credentials: CredentialStore,
        deposits: DepositStore,
    ) -> Self {
        Self {
            pool,
            portal,
            credentials,
            deposits,
        }
    }

    pub fn pool(&self) -> &BrowserPool {
        &self.pool
    }
}

/// The handler registered for [`lanes_bank::KIND`].
pub fn handler(bot: Arc<Bot>) -> impl lanes_queue::Handler {
    move |ctx| {
        let bot = bot.clone();
        async move { collect(&bot, ctx).await }
    }
}

async fn collect(bot: &Bot, ctx: TaskContext) -> TaskResult {
    let payload: BotPayload = ctx.payload_as()?;
    let account = payload.account_id;
    validate_account(&account).map_err(|e| TaskError::permanent(e.to_string()))?;
    let creds = bot
        .credentials
        .resolve(&account)
        .map_err(|e| TaskError::permanent(e.to_string()))?;
    let started = Instant::now();
    info!(task_id = %ctx.id, account = %account, attempt = ctx.attempt, "bot started");

    let session = bot.pool.session().await.map_err(|e| {
        warn!(task_id = %ctx.id, account = %account, error = %e, "no browser session");
        TaskError::retry(format!("cannot open a browser session: {e}"))
    })?;
    let browser_pid = session.browser_pid();
    let page = session
        .page()
        .map_err(|e| TaskError::retry(e.to_string()))?
        .clone();
    let progress_ctx = ctx.clone();
    let visit = bot.portal.visit(&page, &creds, move |n, of| {
        let ctx = progress_ctx.clone();
        // Progress is advisory: written in the background, never awaited by the walk.
        tokio::spawn(async move {
            let _ = ctx.progress(json!({"page": n, "pages": of})).await;
        });
    });
    let outcome = tokio::select! {
        r = visit => Ok(r),
        why = ctx.cancelled() => Err(why),
    };
    // The context goes first in every case: its cookies and page die with it.
    drop(page);
    session.close().await;
    let statement = match outcome {
        Ok(r) => r.map_err(|e| map_error(&account, e))?,
        Err(why) => {
            info!(task_id = %ctx.id, account = %account, reason = ?why, "bot stopped; browser context closed");
            return Err(match why {
                CancelReason::SoftTimeLimit => TaskError::retry("soft time limit reached"),
                _ => TaskError::permanent(format!("stopped ({why:?})")),
            });
        }
    };
    let result = store(bot, &account, statement, started, browser_pid).await?;
    info!(
        task_id = %ctx.id,
        account = %account,
        new_deposits = result.new_deposits,
        total_deposits = result.total_deposits,
        pages = result.pages,
        duration_ms = result.duration_ms,
        "bot finished"
    );
    serde_json::to_value(result).map_err(|e| TaskError::retry(e.to_string()))
}

async fn store(
    bot: &Bot,
    account: &str,
    statement: Statement,
    started: Instant,
    browser_pid: u32,
) -> Result<BotResult, TaskError> {
    let transactions_seen = statement.rows.len() as u64;
    let deposits: Vec<Deposit> = statement
        .rows
        .into_iter()
        .filter(|r| r.kind == "deposit")
        .map(|r| Deposit {
            id: r.id,
            date: r.date,
            description: r.description,
            amount_cents: r.amount_cents,
            currency: r.currency,
        })
        .collect();
    let stored = bot
        .deposits
        .store(account, &deposits)
        .await
        .map_err(|e| TaskError::retry(format!("storing deposits: {e}")))?;
    Ok(BotResult {
        account_id: account.to_owned(),
        new_deposits: stored.new,
        total_deposits: stored.total,
        deposits_seen: deposits.len() as u64,
        transactions_seen,
        pages: statement.pages,
        otp: statement.otp,
        duration_ms: started.elapsed().as_millis() as u64,
        browser_pid,
    })
}

fn map_error(account: &str, e: PortalError) -> TaskError {
    match e {
        PortalError::BadCredentials => TaskError::permanent(format!(
            "the bank rejected the username or password for account {account}; not retried, so \
             the account is not locked out: fix the credentials and start the bot again"
        )),
        PortalError::Locked => TaskError::permanent(format!(
            "account {account} is locked at the bank after failed sign-ins: unlock it with the \
             bank, then start the bot again"
        )),
        PortalError::NoOtpSeed => TaskError::permanent(format!(
            "the bank asks for a one-time code for account {account} but its credentials have \
             no otp_seed"
        )),
        PortalError::Browser(b) if b.is_browser_gone() => TaskError::retry_after(
            format!("the browser failed: {b}"),
            Duration::from_millis(200),
        ),
        other => TaskError::retry(other.to_string()),
    }
}
