//! The bot's task: queue, kind, payload (the account id: credentials are resolved by the bot,
//! never carried in the task), result, and starting one bot per account.

use std::time::Duration;

use lanes_queue::{KeyPolicy, Lanes, NewTask, TaskId, TaskInfo};
use serde::{Deserialize, Serialize};

use crate::keys::BankKeys;
use crate::{Error, Result};

/// The queue the bank bots consume.
pub const QUEUE: &str = "bank-bot";
/// The task kind of one bot run.
pub const KIND: &str = "collect_deposits";
/// The message a refused second start carries (the seed's wording).
pub const ALREADY_RUNNING: &str = "Bot is already running for this account";

/// A bot run's payload: which account. Nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotPayload {
    pub account_id: String,
}

/// What a successful bot run records as its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotResult {
    pub account_id: String,
    /// Deposits stored by this run (not seen before).
    pub new_deposits: u64,
    /// Deposits stored for the account after this run.
    pub total_deposits: u64,
    /// Deposits listed by the bank in this run.
    pub deposits_seen: u64,
    /// Transactions of every type listed by the bank in this run.
    pub transactions_seen: u64,
    /// Transaction pages walked.
    pub pages: u32,
    /// Whether the bank asked for a one-time code.
    pub otp: bool,
    pub duration_ms: u64,
    /// PID of the browser the run used (shared by the process's bots in shared mode).
    pub browser_pid: u32,
}

/// Checks an account id: 1 to 64 of `A-Z a-z 0-9 _ -` (it becomes a Redis key part and an
/// environment variable name).
pub fn validate_account(account: &str) -> Result<()> {
    let ok = !account.is_empty()
        && account.len() <= 64
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidAccount {
            account: account.to_owned(),
        })
    }
}

/// The task that runs one bot for `account`: keyed by the account with policy `reject`.
pub fn start_task(account: &str) -> Result<NewTask> {
    validate_account(account)?;
    let payload = serde_json::to_value(BotPayload {
        account_id: account.to_owned(),
    })?;
    Ok(NewTask::new(KIND, payload).key(account, KeyPolicy::Reject))
}

/// Starts a bot for `account`, or refuses at once with [`Error::AlreadyRunning`] while one is
/// queued or running. Remembers the task as the account's latest (for [`bot_status`]).
pub async fn start_bot(lanes: &Lanes, account: &str) -> Result<TaskId> {
    let task = start_task(account)?;
    let id = match lanes.enqueue(QUEUE, task).await {
        Ok(id) => id,
        Err(lanes_queue::Error::KeyBusy { task, .. }) => {
            return Err(Error::AlreadyRunning {
                account: account.to_owned(),
                task,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let keys = BankKeys::new(lanes.keys().prefix());
    let ttl = lanes.config().result_ttl.max(Duration::from_secs(1));
    let _: () = redis::cmd("SET")
        .arg(keys.last_task(account))
        .arg(id.as_str())
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .query_async(&mut lanes.connection())
        .await?;
    Ok(id)
}

/// The account's latest bot task (running, queued or finished), if any is still recorded.
pub async fn bot_status(lanes: &Lanes, account: &str) -> Result<Option<TaskInfo>> {
    validate_account(account)?;
    let keys = BankKeys::new(lanes.keys().prefix());
    let last: Option<String> = redis::cmd("GET")
        .arg(keys.last_task(account))
        .query_async(&mut lanes.connection())
        .await?;
    let Some(id) = last.and_then(|s| s.parse::<TaskId>().ok()) else {
        return Ok(None);
    };
    Ok(lanes.task(&id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_checked() {
        assert!(validate_account("acct-01_b").is_ok());
        for bad in ["", "a b", "a:b", "{x}", &"x".repeat(65)] {
            assert!(validate_account(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_task_carries_only_the_account() {
        let t = start_task("acct-7").expect("valid");
        assert_eq!(t.kind, KIND);
        assert_eq!(t.key.as_deref(), Some("acct-7"));
        assert_eq!(t.key_policy, KeyPolicy::Reject);
        assert_eq!(t.payload, serde_json::json!({"account_id": "acct-7"}));
    }
}
