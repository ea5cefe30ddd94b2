//! What a task handler is, what it returns, and what it sees while it runs.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::client::{Lanes, Lease};
use crate::error::Result;
use crate::task::TaskId;

/// How an attempt ended badly. The engine decides what happens next from the variant, never from
/// the message.
#[derive(Debug)]
pub enum TaskError {
    /// Try again (after `after`, or the kind's backoff), while the retry budget lasts.
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Never retry: the input is bad or the failure is final. The task is dead-lettered as `failed`.
    Permanent { message: String },
}

impl TaskError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self::Retry {
            message: message.into(),
            after: None,
        }
    }

    pub fn retry_after(message: impl Into<String>, after: Duration) -> Self {
        Self::Retry {
            message: message.into(),
            after: Some(after),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Retry { message, .. } | Self::Permanent { message } => message,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Any error converts into a retryable failure carrying its full cause chain, so `?` works.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(e: E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Self::retry(message)
    }
}

/// What a handler returns: a JSON result, or how it failed.
pub type TaskResult = std::result::Result<Value, TaskError>;

/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = TaskResult> + Send + 'static>>;

/// Runs tasks of one kind. Any `Fn(TaskContext) -> impl Future<Output = TaskResult>` is a handler.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, ctx: TaskContext) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = TaskResult> + Send + 'static,
{
    fn call(&self, ctx: TaskContext) -> HandlerFuture {
        Box::pin(self(ctx))
    }
}

/// Why a running handler was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The soft time limit passed; the hard limit, if any, still follows.
    SoftTimeLimit,
    /// Someone stopped the task (API, CLI).
    Stopped,
    /// The lease was lost: another worker may be running this task now.
    LeaseLost,
}

/// Everything a handler gets for one attempt.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub id: TaskId,
    pub queue: String,
    pub kind: String,
    /// The task's key (its lane), if it has one.
    pub key: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    pub payload: Value,
    pub(crate) cancel: CancellationToken,
    pub(crate) reason: Arc<OnceLock<CancelReason>>,
    pub(crate) lanes: Lanes,
    pub(crate) lease: Lease,
}

impl TaskContext {
    /// Fires when the handler should wind down: soft time limit, stop request, or lost lease.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Resolves when the handler should wind down, with the reason.
    pub async fn cancelled(&self) -> CancelReason {
        self.cancel.cancelled().await;
        self.cancel_reason().unwrap_or(CancelReason::Stopped)
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.reason.get().copied()
    }

    /// The payload as a typed value; a mismatch is a permanent failure naming the problem.
    pub fn payload_as<T: DeserializeOwned>(&self) -> std::result::Result<T, TaskError> {
        serde_path_to_error::deserialize(&self.payload).map_err(|e| {
            let at = e.path().to_string();
            let at = if at == "." {
                String::new()
            } else {
                format!("{at}: ")
            };
            TaskError::permanent(format!(
                "payload does not fit task kind {:?}: {at}{}",
                self.kind,
                e.inner()
            ))
        })
    }

    /// Records progress, readable through the task's status. Refused once the lease is lost.
    pub async fn progress(&self, progress: Value) -> Result<()> {
        self.lanes.progress(&self.lease, &progress).await
    }

    /// The lease this attempt runs under (for fenced writes of the caller's own).
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The engine client, for handlers that enqueue follow-up work.
    pub fn lanes(&self) -> &Lanes {
        &self.lanes
    }
}
