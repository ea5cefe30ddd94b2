//! Graceful shutdown, hand-back, task budgets, prefetch.

use std::time::Duration;

use lanes_queue::{NewTask, TaskContext, TaskState, Worker, WorkerConfig};
use serde_json::{Value, json};

use crate::support::{Calls, env, start, wait_final, wait_state, worker_cfg};

fn sleeper(
    ms: u64,
) -> impl Fn(
    TaskContext,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = lanes_queue::TaskResult> + Send>>
+ Send
+ Sync
+ 'static {
    move |_ctx| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Value::Null)
        })
    }
}

#[tokio::test]
async fn shutdown_lets_short_tasks_finish_and_hands_long_ones_back_without_an_attempt() {
    let e = env().await;
    let cfg = WorkerConfig {
        grace: Duration::from_millis(500),
        ..worker_cfg(&["jobs"], 2)
    };
    let w = Worker::new(e.lanes.clone(), cfg)
        .handle("short", sleeper(200))
        .handle("long", sleeper(60_000));
    let running = start(w);
    let short = e
        .lanes
        .enqueue("jobs", NewTask::new("short", json!({})))
        .await
        .expect("enqueue");
    let long = e
        .lanes
        .enqueue("jobs", NewTask::new("long", json!({})))
        .await
        .expect("enqueue");
    wait_state(&e.lanes, &short, |s| s == TaskState::Running).await;
    wait_state(&e.lanes, &long, |s| s == TaskState::Running).await;
    let report = running.shutdown().await;
    assert_eq!((report.succeeded, report.handed_back), (1, 1));
    assert_eq!(
        e.lanes
            .task(&short)
            .await
            .expect("read")
            .expect("exists")
            .state,
        TaskState::Succeeded
    );
    let info = e.lanes.task(&long).await.expect("read").expect("exists");
    assert_eq!(
        (info.state, info.attempts),
        (TaskState::Queued, 0),
        "handed back, attempt not counted"
    );
    assert_eq!(info.position, Some(0), "back at the front of its queue");

    // The next worker picks it up as a first attempt.
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).handle("long", sleeper(10));
    let running = start(w);
    let info = wait_final(&e.lanes, &long).await;
    assert_eq!((info.state, info.attempts), (TaskState::Succeeded, 1));
    running.shutdown().await;
}

#[tokio::test]
async fn max_tasks_exits_cleanly_after_that_many() {
    let e = env().await;
    let calls = Calls::default();
    let c = calls.clone();
    let cfg = WorkerConfig {
        max_tasks: Some(5),
        ..worker_cfg(&["jobs"], 3)
    };
    let w = Worker::new(e.lanes.clone(), cfg).handle("noop", move |_ctx: TaskContext| {
        let c = c.clone();
        async move {
            c.hit();
            Ok(Value::Null)
        }
    });
    e.lanes
        .enqueue_bulk(
            "jobs",
            (0..12).map(|_| NewTask::new("noop", json!({}))).collect(),
        )
        .await
        .expect("enqueue");
    let stop = tokio_util::sync::CancellationToken::new();
    let report = tokio::time::timeout(Duration::from_secs(30), w.run(stop))
        .await
        .expect("exits by itself")
        .expect("runs");
    assert_eq!(report.succeeded, 5);
    assert_eq!(calls.get(), 5);
    let stats = e.lanes.queue_stats("jobs").await.expect("stats");
    assert_eq!(
        (stats.queued, stats.running),
        (7, 0),
        "the rest stay queued, none leased"
    );
}

#[tokio::test]
async fn without_prefetch_a_busy_worker_leaves_work_for_others_and_with_it_reserves_ahead() {
    let e = env().await;
    e.lanes
        .enqueue_bulk(
            "jobs",
            (0..6).map(|_| NewTask::new("slow", json!({}))).collect(),
        )
        .await
        .expect("enqueue");
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).handle("slow", sleeper(1500));
    let running = start(w);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = e.lanes.queue_stats("jobs").await.expect("stats");
    assert_eq!(
        (stats.running, stats.queued),
        (2, 4),
        "fetched only for its two free slots"
    );
    running.shutdown().await;

    let cfg = WorkerConfig {
        prefetch: 2,
        ..worker_cfg(&["jobs"], 2)
    };
    let w = Worker::new(e.lanes.clone(), cfg).handle("slow", sleeper(1500));
    let running = start(w);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let workers = e.lanes.workers().await.expect("workers");
        if let Some(w) = workers.first()
            && w.active.len() == 2
            && w.reserved.len() == 2
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw 2 active + 2 reserved: {workers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = running.shutdown().await;
    assert!(
        report.handed_back >= 2,
        "reserved tasks are handed back on shutdown: {report:?}"
    );
    let stats = e.lanes.queue_stats("jobs").await.expect("stats");
    assert_eq!(stats.running, 0, "nothing stays leased after a clean exit");
}
