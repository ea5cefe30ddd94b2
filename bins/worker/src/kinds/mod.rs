//! The built-in task kinds: `exec`, `http`, `sleep`, `noop`.

pub mod exec;
pub mod http;

use std::time::Duration;

use lanes_queue::{TaskContext, TaskError, TaskResult};
use serde::Deserialize;
use serde_json::{Value, json};

/// `noop`: does nothing and succeeds (benchmarks, smoke tests).
pub async fn noop(_ctx: TaskContext) -> TaskResult {
    Ok(Value::Null)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SleepPayload {
    /// Milliseconds to sleep.
    #[serde(default)]
    ms: Option<u64>,
    /// Seconds to sleep (fractions allowed).
    #[serde(default)]
    seconds: Option<f64>,
    /// Fail (retryably) after sleeping, on attempts up to and including this one.
    #[serde(default)]
    fail_until_attempt: u32,
}

/// `sleep`: `{"ms": 500}` or `{"seconds": 1.5}`; wakes early when cancelled.
pub async fn sleep(ctx: TaskContext) -> TaskResult {
    let p: SleepPayload = ctx.payload_as()?;
    let d = match (p.ms, p.seconds) {
        (Some(ms), None) => Duration::from_millis(ms),
        (None, Some(s)) => Duration::try_from_secs_f64(s)
            .map_err(|e| TaskError::permanent(format!("seconds: {e}")))?,
        (None, None) => Duration::ZERO,
        (Some(_), Some(_)) => return Err(TaskError::permanent("give ms or seconds, not both")),
    };
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        why = ctx.cancelled() => return Err(TaskError::retry(format!("sleep interrupted: {why:?}"))),
    }
    if ctx.attempt <= p.fail_until_attempt {
        return Err(TaskError::retry(format!(
            "failing on purpose on attempt {}",
            ctx.attempt
        )));
    }
    Ok(json!({ "slept_ms": d.as_millis() as u64 }))
}
