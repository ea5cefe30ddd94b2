//! Retries with backoff, permanent failures, dead letters, panics and undecodable tasks.

use std::time::Duration;

use lanes_queue::{NewTask, TaskContext, TaskError, TaskState, Worker};
use serde_json::{Value, json};

use crate::support::{Calls, env, fast_retries, start, wait_final, worker_cfg};

fn flaky(
    calls: Calls,
    fail_until: usize,
) -> impl Fn(
    TaskContext,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = lanes_queue::TaskResult> + Send>>
+ Send
+ Sync
+ 'static {
    move |ctx| {
        let calls = calls.clone();
        Box::pin(async move {
            let n = calls.hit();
            if n <= fail_until {
                return Err(TaskError::retry(format!("flaky failure {n}")));
            }
            Ok(json!({"attempt": ctx.attempt}))
        })
    }
}

#[tokio::test]
async fn a_failing_task_is_retried_until_it_succeeds() {
    let e = env().await;
    let calls = Calls::default();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).register(
        "flaky",
        fast_retries(3),
        flaky(calls.clone(), 2),
    );
    let running = start(w);
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("flaky", json!({})))
        .await
        .expect("enqueue");
    let info = wait_final(&e.lanes, &id).await;
    assert_eq!(info.state, TaskState::Succeeded);
    assert_eq!(info.attempts, 3);
    assert_eq!(info.result, Some(json!({"attempt": 3})));
    assert_eq!(calls.get(), 3);
    let report = running.shutdown().await;
    assert_eq!((report.retried, report.succeeded), (2, 1));
}

#[tokio::test]
async fn exhausted_retries_dead_letter_the_task_with_its_last_error_and_it_can_be_requeued() {
    let e = env().await;
    let calls = Calls::default();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).register(
        "flaky",
        fast_retries(2),
        flaky(calls.clone(), 3),
    );
    let running = start(w);
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("flaky", json!({})))
        .await
        .expect("enqueue");
    let info = wait_final(&e.lanes, &id).await;
    assert_eq!(info.state, TaskState::Dead);
    assert_eq!(info.attempts, 3, "first attempt plus two retries");
    assert_eq!(
        info.error.as_deref(),
        Some("gave up after 3 attempts: flaky failure 3")
    );
    let dead = e
        .lanes
        .dead_letters("jobs", 10)
        .await
        .expect("dead letters");
    assert_eq!(
        dead.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![id.clone()]
    );

    // Re-queued from the dead-letter set, it runs again with a fresh budget (and now succeeds).
    assert!(e.lanes.requeue_dead(&id).await.expect("requeue"));
    let info = wait_final(&e.lanes, &id).await;
    assert_eq!(info.state, TaskState::Succeeded);
    assert!(
        e.lanes
            .dead_letters("jobs", 10)
            .await
            .expect("dead letters")
            .is_empty()
    );
    assert!(
        !e.lanes.requeue_dead(&id).await.expect("requeue"),
        "only dead tasks requeue"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn per_task_max_retries_overrides_the_kind() {
    let e = env().await;
    let calls = Calls::default();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).register(
        "flaky",
        fast_retries(5),
        flaky(calls.clone(), 10),
    );
    let running = start(w);
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("flaky", json!({})).max_retries(0))
        .await
        .expect("enqueue");
    let info = wait_final(&e.lanes, &id).await;
    assert_eq!(
        (info.state, info.attempts, calls.get()),
        (TaskState::Dead, 1, 1)
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried() {
    let e = env().await;
    let calls = Calls::default();
    let c = calls.clone();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).handle(
        "strict",
        move |ctx: TaskContext| {
            let c = c.clone();
            async move {
                c.hit();
                #[derive(serde::Deserialize)]
                #[allow(dead_code)]
                struct Input {
                    product_id: u64,
                }
                let _input: Input = ctx.payload_as()?;
                Ok(Value::Null)
            }
        },
    );
    let running = start(w);
    let id = e
        .lanes
        .enqueue(
            "jobs",
            NewTask::new("strict", json!({"product_id": "junk"})),
        )
        .await
        .expect("enqueue");
    let info = wait_final(&e.lanes, &id).await;
    assert_eq!(info.state, TaskState::Failed);
    assert_eq!(calls.get(), 1);
    let err = info.error.expect("error recorded");
    assert!(
        err.contains("payload does not fit task kind \"strict\"") && err.contains("product_id"),
        "{err}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn unknown_kinds_panics_and_undecodable_payloads_fail_the_task_not_the_worker() {
    let e = env().await;
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2))
        .register("boom", fast_retries(0), |_ctx: TaskContext| async move {
            if true {
                panic!("index out of bounds in the handler");
            }
            Ok(Value::Null)
        })
        .register("ok", fast_retries(0), |_ctx: TaskContext| async {
            Ok(json!("fine"))
        });
    let running = start(w);
    let unknown = e
        .lanes
        .enqueue("jobs", NewTask::new("mystery", json!({})))
        .await
        .expect("enqueue");
    let panics = e
        .lanes
        .enqueue("jobs", NewTask::new("boom", json!({})))
        .await
        .expect("enqueue");
    // Corrupt a stored payload, as a bad producer or a bit flip would.
    let corrupt = e
        .lanes
        .enqueue(
            "jobs",
            NewTask::new("ok", json!({})).delay(Duration::from_millis(300)),
        )
        .await
        .expect("enqueue");
    let key = e.lanes.keys().queue("jobs").task(corrupt.as_str());
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("payload")
        .arg(b"\x1f\x8b\x00garbage".as_slice())
        .arg("enc")
        .arg("gz")
        .query_async(&mut e.lanes.connection())
        .await
        .expect("corrupt");

    let info = wait_final(&e.lanes, &unknown).await;
    assert_eq!(info.state, TaskState::Failed);
    assert!(
        info.error
            .as_deref()
            .unwrap_or("")
            .contains("unknown task kind \"mystery\""),
        "{info:?}"
    );
    let info = wait_final(&e.lanes, &panics).await;
    assert_eq!(info.state, TaskState::Dead);
    assert!(
        info.error
            .as_deref()
            .unwrap_or("")
            .contains("handler panicked: index out of bounds"),
        "{info:?}"
    );
    let info = wait_final(&e.lanes, &corrupt).await;
    assert_eq!(info.state, TaskState::Failed);
    assert!(
        info.error
            .as_deref()
            .unwrap_or("")
            .contains("payload does not decompress"),
        "{info:?}"
    );

    // The worker is still alive and working.
    let after = e
        .lanes
        .enqueue("jobs", NewTask::new("ok", json!({})))
        .await
        .expect("enqueue");
    assert_eq!(
        wait_final(&e.lanes, &after).await.result,
        Some(json!("fine"))
    );
    running.shutdown().await;
}

#[tokio::test]
async fn retry_after_from_the_handler_sets_the_delay() {
    let e = env().await;
    let calls = Calls::default();
    let c = calls.clone();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).register(
        "limited",
        fast_retries(3),
        move |_ctx: TaskContext| {
            let c = c.clone();
            async move {
                if c.hit() == 1 {
                    return Err(TaskError::retry_after(
                        "429 from upstream",
                        Duration::from_millis(800),
                    ));
                }
                Ok(Value::Null)
            }
        },
    );
    let running = start(w);
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("limited", json!({})))
        .await
        .expect("enqueue");
    let retrying = crate::support::wait_state(&e.lanes, &id, |s| s == TaskState::Retrying).await;
    let info = wait_final(&e.lanes, &id).await;
    assert_eq!(info.state, TaskState::Succeeded);
    // Measured on Redis' clock: the retry started no earlier than the handler asked.
    let run_at = retrying.run_at_ms.expect("run_at while retrying");
    assert!(info.started_at_ms.expect("started") >= run_at);
    assert!(run_at >= info.created_at_ms + 800);
    running.shutdown().await;
}

/// Retries with no backoff, leased again at once by other slots of the same worker, each succeed
/// on their second attempt with no stale write and no expired lease. (The race this exercises —
/// an old attempt's bookkeeping touching the new attempt of the same id — is pinned down
/// deterministically by the unit tests of the worker's held-lease set.)
#[tokio::test]
async fn an_immediate_retry_on_the_same_worker_keeps_its_lease() {
    let e = env().await;
    let cfg = lanes_queue::WorkerConfig {
        heartbeat: Duration::from_millis(20),
        ..worker_cfg(&["jobs"], 8)
    };
    let w = Worker::new(e.lanes.clone(), cfg).register(
        "once",
        fast_retries(3),
        |ctx: TaskContext| async move {
            if ctx.attempt == 1 {
                return Err(TaskError::retry_after("fails once", Duration::ZERO));
            }
            Ok(Value::Null)
        },
    );
    let running = start(w);
    let ids = e
        .lanes
        .enqueue_bulk(
            "jobs",
            (0..300).map(|_| NewTask::new("once", json!({}))).collect(),
        )
        .await
        .expect("enqueue");
    for id in &ids {
        let info = wait_final(&e.lanes, id).await;
        assert_eq!(
            (info.state, info.attempts),
            (TaskState::Succeeded, 2),
            "{info:?}"
        );
    }
    let report = running.shutdown().await;
    assert_eq!(report.stale, 0, "no attempt lost its lease: {report:?}");
    let stats = e.lanes.queue_stats("jobs").await.expect("stats");
    assert_eq!(stats.counters.get("expired"), None, "{stats:?}");
}
