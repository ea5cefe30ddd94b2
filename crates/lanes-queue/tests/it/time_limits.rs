//! Soft and hard time limits, per kind and per task.

use std::time::Duration;

use lanes_queue::{CancelReason, KindConfig, NewTask, TaskContext, TaskError, TaskState, Worker};
use serde_json::json;

use crate::support::{env, start, wait_final, worker_cfg};

#[tokio::test]
async fn the_soft_limit_lets_the_handler_clean_up_and_the_hard_limit_drops_it() {
    let e = env().await;
    let soft_kind = KindConfig::default()
        .max_retries(0)
        .soft_limit(Duration::from_millis(200))
        .hard_limit(Duration::from_secs(20));
    let hard_kind = KindConfig::default()
        .max_retries(0)
        .hard_limit(Duration::from_millis(300));
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 4))
        .register("polite", soft_kind, |ctx: TaskContext| async move {
            let why = ctx.cancelled().await;
            assert_eq!(why, CancelReason::SoftTimeLimit);
            // Cleaning up, then reporting what was done so far.
            Ok(json!({"partial": true}))
        })
        .register("stubborn", hard_kind, |_ctx: TaskContext| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(json!("never"))
        })
        .register(
            "gives-up",
            KindConfig::default()
                .max_retries(0)
                .soft_limit(Duration::from_millis(200)),
            |ctx: TaskContext| async move {
                ctx.cancelled().await;
                Err(TaskError::retry("stopped early"))
            },
        );
    let running = start(w);
    let polite = e
        .lanes
        .enqueue("jobs", NewTask::new("polite", json!({})))
        .await
        .expect("enqueue");
    let stubborn = e
        .lanes
        .enqueue("jobs", NewTask::new("stubborn", json!({})))
        .await
        .expect("enqueue");
    let gives_up = e
        .lanes
        .enqueue("jobs", NewTask::new("gives-up", json!({})))
        .await
        .expect("enqueue");

    let info = wait_final(&e.lanes, &polite).await;
    assert_eq!(
        (info.state, info.result),
        (TaskState::Succeeded, Some(json!({"partial": true})))
    );
    let info = wait_final(&e.lanes, &stubborn).await;
    assert_eq!(info.state, TaskState::Dead);
    assert!(
        info.error
            .as_deref()
            .unwrap_or("")
            .contains("hard time limit of 300ms exceeded"),
        "{info:?}"
    );
    let info = wait_final(&e.lanes, &gives_up).await;
    assert_eq!(info.state, TaskState::Dead);
    assert!(
        info.error
            .as_deref()
            .unwrap_or("")
            .contains("soft time limit of 200ms exceeded: stopped early"),
        "{info:?}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_task_can_override_its_kinds_hard_limit() {
    let e = env().await;
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).register(
        "sleepy",
        KindConfig::default()
            .max_retries(0)
            .hard_limit(Duration::from_secs(30)),
        |_ctx: TaskContext| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(json!("never"))
        },
    );
    let running = start(w);
    let id = e
        .lanes
        .enqueue(
            "jobs",
            NewTask::new("sleepy", json!({})).hard_limit(Duration::from_millis(250)),
        )
        .await
        .expect("enqueue");
    let info = wait_final(&e.lanes, &id).await;
    assert!(
        info.error
            .as_deref()
            .unwrap_or("")
            .contains("hard time limit of 250ms"),
        "{info:?}"
    );
    running.shutdown().await;
}
