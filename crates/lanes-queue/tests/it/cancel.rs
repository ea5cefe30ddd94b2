//! Cancelling waiting tasks and stopping running ones.

use std::time::Duration;

use lanes_queue::{
    CancelOutcome, CancelReason, NewTask, TaskContext, TaskError, TaskState, Worker,
};
use serde_json::{Value, json};

use crate::support::{Calls, env, start, wait_final, wait_state, worker_cfg};

#[tokio::test]
async fn a_cancelled_waiting_task_is_gone_for_good() {
    let e = env().await;
    let queued = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", json!({})))
        .await
        .expect("enqueue");
    let delayed = e
        .lanes
        .enqueue(
            "jobs",
            NewTask::new("noop", json!({})).delay(Duration::from_millis(200)),
        )
        .await
        .expect("enqueue");
    let kept = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", json!({})))
        .await
        .expect("enqueue");
    assert_eq!(
        e.lanes.cancel(&queued).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        e.lanes.cancel(&delayed).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        e.lanes.cancel(&queued).await.expect("cancel"),
        CancelOutcome::Finished(TaskState::Cancelled)
    );
    let missing: lanes_queue::TaskId = "jobs.0123456789abcdef0123456789abcdef".parse().expect("id");
    assert_eq!(
        e.lanes.cancel(&missing).await.expect("cancel"),
        CancelOutcome::NotFound
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let calls = Calls::default();
    let c = calls.clone();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).handle(
        "noop",
        move |ctx: TaskContext| {
            let c = c.clone();
            async move {
                c.hit();
                Ok(json!(ctx.id.to_string()))
            }
        },
    );
    let running = start(w);
    assert_eq!(
        wait_final(&e.lanes, &kept).await.state,
        TaskState::Succeeded
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(calls.get(), 1, "only the task that was not cancelled ran");
    assert_eq!(
        e.lanes
            .task(&queued)
            .await
            .expect("read")
            .expect("kept for the result ttl")
            .state,
        TaskState::Cancelled
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_running_task_is_told_to_stop_through_redis() {
    let e = env().await;
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).handle(
        "long",
        |ctx: TaskContext| async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => Ok(Value::Null),
                why = ctx.cancelled() => {
                    assert_eq!(why, CancelReason::Stopped);
                    Err(TaskError::retry("interrupted"))
                }
            }
        },
    );
    let running = start(w);
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("long", json!({})))
        .await
        .expect("enqueue");
    wait_state(&e.lanes, &id, |s| s == TaskState::Running).await;
    assert_eq!(
        e.lanes.cancel(&id).await.expect("cancel"),
        CancelOutcome::Stopping
    );
    let info = wait_final(&e.lanes, &id).await;
    assert_eq!(info.state, TaskState::Cancelled, "stopped, not retried");
    assert_eq!(info.attempts, 1);
    assert!(info.stop_requested);
    let report = running.shutdown().await;
    assert_eq!(report.cancelled, 1);
}

#[tokio::test]
async fn a_handler_that_ignores_a_stop_is_dropped() {
    let e = env().await;
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).handle(
        "deaf",
        |_ctx: TaskContext| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Value::Null)
        },
    );
    let running = start(w);
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("deaf", json!({})))
        .await
        .expect("enqueue");
    wait_state(&e.lanes, &id, |s| s == TaskState::Running).await;
    e.lanes.cancel(&id).await.expect("cancel");
    let info = wait_final(&e.lanes, &id).await;
    assert_eq!(info.state, TaskState::Cancelled);
    assert!(
        info.error
            .as_deref()
            .unwrap_or("")
            .contains("did not return in time"),
        "{info:?}"
    );
    running.shutdown().await;
}
