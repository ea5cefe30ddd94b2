//! Task identity, states, what a producer submits and what a reader sees.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// A task id: `<queue>.<uuid v7 hex>`. Time-ordered, and it names its queue, so any id can be
/// looked up without an index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(String);

impl TaskId {
    pub(crate) fn generate(queue: &str) -> Self {
        Self(format!("{queue}.{}", uuid::Uuid::now_v7().simple()))
    }

    /// The queue the task belongs to.
    pub fn queue(&self) -> &str {
        self.0.split_once('.').map_or("", |(q, _)| q)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TaskId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidTaskId { id: s.to_owned() };
        let (queue, rest) = s.split_once('.').ok_or_else(bad)?;
        validate_queue(queue).map_err(|_| bad())?;
        if rest.len() != 32 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for TaskId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a queue name: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn validate_queue(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidQueue {
            name: name.to_owned(),
        })
    }
}

pub(crate) fn validate_kind(kind: &str) -> Result<()> {
    let ok = !kind.is_empty() && kind.len() <= 128 && kind.chars().all(|c| !c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKind {
            kind: kind.to_owned(),
        })
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting in the queue.
    Queued,
    /// Waiting for its run-at time.
    Scheduled,
    /// Leased to a worker.
    Running,
    /// Failed an attempt; waiting for its backoff to pass.
    Retrying,
    /// Done; its result is kept for the result TTL.
    Succeeded,
    /// Failed permanently (bad input); in the dead-letter set.
    Failed,
    /// Retries exhausted; in the dead-letter set.
    Dead,
    /// Cancelled while waiting, or stopped while running.
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "scheduled" => Self::Scheduled,
            "running" => Self::Running,
            "retrying" => Self::Retrying,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// True once the task will not run again by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Dead | Self::Cancelled
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty() && key.len() <= 256 && key.chars().all(|c| !c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKey {
            key: key.to_owned(),
        })
    }
}

/// What happens to a task whose key already has work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPolicy {
    /// Wait behind the key's earlier tasks; run one at a time (or `key_concurrency` at a time) in
    /// enqueue order. Other keys never wait behind it.
    #[default]
    Serial,
    /// Refuse at enqueue while a task of the key is queued or running (`Error::KeyBusy`).
    Reject,
    /// Return the id of the task of the key already queued or running instead of a new one.
    Dedupe,
}

impl KeyPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Serial => "serial",
            Self::Reject => "reject",
            Self::Dedupe => "dedupe",
        }
    }
}

impl FromStr for KeyPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "serial" => Ok(Self::Serial),
            "reject" => Ok(Self::Reject),
            "dedupe" => Ok(Self::Dedupe),
            other => Err(Error::InvalidKeyPolicy {
                policy: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for KeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default priority: the middle of 0..=9.
pub const DEFAULT_PRIORITY: u8 = 5;

/// A task to enqueue.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub kind: String,
    pub payload: Value,
    /// 0 (lowest) to 9 (highest); within a priority, first in first out.
    pub priority: u8,
    /// Run no earlier than this long after enqueue.
    pub delay: Duration,
    /// Overrides the kind's retry budget.
    pub max_retries: Option<u32>,
    /// Overrides the kind's soft time limit.
    pub soft_limit: Option<Duration>,
    /// Overrides the kind's hard time limit.
    pub hard_limit: Option<Duration>,
    /// The lane this task belongs to (a bank account, a project id): see [`KeyPolicy`].
    pub key: Option<String>,
    pub key_policy: KeyPolicy,
    /// Tasks of one key allowed to run at once (serial policy only).
    pub key_concurrency: u32,
}

impl NewTask {
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            priority: DEFAULT_PRIORITY,
            delay: Duration::ZERO,
            max_retries: None,
            soft_limit: None,
            hard_limit: None,
            key: None,
            key_policy: KeyPolicy::Serial,
            key_concurrency: 1,
        }
    }

    /// Puts the task in a key's lane under a policy.
    pub fn key(mut self, key: impl Into<String>, policy: KeyPolicy) -> Self {
        self.key = Some(key.into());
        self.key_policy = policy;
        self
    }

    /// Lets up to `n` tasks of this task's key run at once (serial policy).
    pub fn key_concurrency(mut self, n: u32) -> Self {
        self.key_concurrency = n;
        self
    }

    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    pub fn soft_limit(mut self, limit: Duration) -> Self {
        self.soft_limit = Some(limit);
        self
    }

    pub fn hard_limit(mut self, limit: Duration) -> Self {
        self.hard_limit = Some(limit);
        self
    }
}

/// A task as stored, for status pages and `worker status`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub id: TaskId,
    pub queue: String,
    pub kind: String,
    pub state: TaskState,
    pub attempts: u32,
    pub priority: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// While queued behind its key: 1 = next of its key to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Position in the queue's ready set (0 = next), while queued there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    pub created_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at_ms: Option<u64>,
    pub stop_requested: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_queue_and_round_trip() {
        let id = TaskId::generate("photos");
        assert_eq!(id.queue(), "photos");
        let parsed: TaskId = id.as_str().parse().expect("parses");
        assert_eq!(parsed, id);
    }

    #[test]
    fn bad_ids_and_queues_are_refused() {
        for bad in [
            "",
            "photos",
            "photos.xyz",
            "bad queue.0123456789abcdef0123456789abcdef",
        ] {
            assert!(bad.parse::<TaskId>().is_err(), "{bad:?}");
        }
        assert!(validate_queue("tickets-2_b").is_ok());
        for bad in ["", "a.b", "a b", &"x".repeat(65)] {
            assert!(validate_queue(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn states_round_trip() {
        for s in [
            "queued",
            "scheduled",
            "running",
            "retrying",
            "succeeded",
            "failed",
            "dead",
            "cancelled",
        ] {
            assert_eq!(TaskState::parse(s).map(TaskState::as_str), Some(s));
        }
    }
}
