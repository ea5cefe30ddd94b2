//! Per-queue rate limits: one limit for every worker, tasks wait in the queue (never failed or
//! re-queued for the limit), and a limiter that cannot reach Redis lets nothing through.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_queue::limits::{Limits, Rate};
use lanes_queue::{Lanes, NewTask, TaskId, TaskInfo, TaskState, Worker, WorkerConfig};
use lanes_ratelimit::{RetryPolicy, ServerTime, bench};
use lanes_testkit::{ChildGuard, free_port, wait_for};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Value, json};

use crate::support::{env, start, wait_final, wait_state, worker_cfg};

fn limited(queues: &[&str], concurrency: usize, limits: &[(&str, &str)]) -> WorkerConfig {
    WorkerConfig {
        rate_limits: limits
            .iter()
            .map(|(q, r)| ((*q).to_owned(), r.parse::<Rate>().expect("valid rate")))
            .collect(),
        ..worker_cfg(queues, concurrency)
    }
}

fn noop_worker(lanes: Lanes, cfg: WorkerConfig) -> Worker {
    Worker::new(lanes, cfg).handle("noop", |_ctx| async { Ok(Value::Null) })
}

async fn enqueue(lanes: &Lanes, queue: &str, n: usize) -> Vec<TaskId> {
    lanes
        .enqueue_bulk(
            queue,
            (0..n).map(|i| NewTask::new("noop", json!(i))).collect(),
        )
        .await
        .expect("enqueue")
}

/// Start times on the Redis clock (ms resolution), for the window checks.
fn starts(infos: &[TaskInfo]) -> Vec<ServerTime> {
    infos
        .iter()
        .map(|t| ServerTime::from_micros(t.started_at_ms.expect("started") * 1000))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_queue_limit() {
    const RATE: &str = "20/s";
    const TASKS: usize = 100;
    let e = env().await;
    // A second worker on its own connection, as another process would be.
    let other = Lanes::connect(e.prefix.url(), e.lanes.config().clone())
        .await
        .expect("second connection");
    let ids = enqueue(&e.lanes, "jobs", TASKS).await;
    let a = start(noop_worker(
        e.lanes.clone(),
        limited(&["jobs"], 4, &[("jobs", RATE)]),
    ));
    let b = start(noop_worker(other, limited(&["jobs"], 4, &[("jobs", RATE)])));
    for id in &ids {
        wait_final(&e.lanes, id).await;
    }
    let (ra, rb) = (a.shutdown().await, b.shutdown().await);
    assert_eq!(ra.processed + rb.processed, TASKS as u64, "{ra:?} {rb:?}");
    assert!(
        ra.processed > 0 && rb.processed > 0,
        "both workers took part: {ra:?} {rb:?}"
    );

    let infos = e.lanes.tasks(&ids).await.expect("read tasks");
    assert_eq!(infos.len(), TASKS);
    for t in &infos {
        assert_eq!(
            (t.state, t.attempts),
            (TaskState::Succeeded, 1),
            "nothing failed or re-queued for the limit: {t:?}"
        );
    }
    let rate: Rate = RATE.parse().expect("valid rate");
    for window in [Duration::from_secs(1), Duration::from_millis(500)] {
        let report = bench::check_windows(&starts(&infos), &rate, window);
        assert!(report.within_limit(), "over the queue's limit: {report:?}");
    }
    let report = bench::check_windows(&starts(&infos), &rate, rate.period());
    eprintln!("2 workers, queue limited to {rate}: {report:?}");
    assert!(
        report.delivered_ratio >= 0.9,
        "a busy limited queue should run near its rate: {report:?}"
    );
}

#[tokio::test]
async fn waiting_tasks_stay_queued_and_other_queues_run_freely() {
    let e = env().await;
    let slow = enqueue(&e.lanes, "slow", 3).await;
    let fast = enqueue(&e.lanes, "fast", 50).await;
    let w = start(noop_worker(
        e.lanes.clone(),
        limited(
            &["slow", "fast"],
            4,
            &[("slow", "1/m"), ("elsewhere", "1/s")],
        ),
    ));
    for id in &fast {
        wait_final(&e.lanes, id).await;
    }
    // An idle limiter grants its burst (1) at once; the next grant is a minute away.
    let first = wait_final(&e.lanes, &slow[0]).await;
    assert_eq!(first.state, TaskState::Succeeded);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in &slow[1..] {
        let t = e.lanes.task(id).await.expect("read").expect("exists");
        assert_eq!(
            (t.state, t.attempts),
            (TaskState::Queued, 0),
            "a task over the limit waits in the queue: {t:?}"
        );
    }
    let stats = e.lanes.queue_stats("slow").await.expect("stats");
    assert_eq!((stats.queued, stats.running), (2, 0), "{stats:?}");
    // Shutdown interrupts the fetcher's wait for its next grant.
    let report = w.shutdown().await;
    assert_eq!(report.processed, 51, "{report:?}");
    for id in &slow[1..] {
        let t = e.lanes.task(id).await.expect("read").expect("exists");
        assert_eq!((t.state, t.attempts), (TaskState::Queued, 0), "{t:?}");
    }
}

/// A connection manager that gives up quickly, pointed at `url`.
fn lazy_manager(url: &str) -> ConnectionManager {
    let client = redis::Client::open(url).expect("valid url");
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Some(Duration::from_millis(200)))
        .set_response_timeout(Some(Duration::from_millis(200)));
    ConnectionManager::new_lazy_with_config(client, config).expect("lazy connection manager")
}

fn ping(url: &str) -> Option<()> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_connection().ok()?;
    redis::cmd("PING").query::<String>(&mut conn).ok().map(drop)
}

#[tokio::test]
async fn an_unreachable_limiter_lets_nothing_through_until_it_answers() {
    let e = env().await;
    let ids = enqueue(&e.lanes, "jobs", 5).await;
    // The limiter lives on a Redis that is not there yet (the queue's Redis is fine).
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let limits = Limits::new(lazy_manager(&url), e.prefix.name())
        .expect("limits")
        .with_retry(RetryPolicy {
            attempts: 1,
            attempt_timeout: Duration::from_millis(300),
            ..RetryPolicy::default()
        })
        .expect("valid retry policy");
    let w = start(
        noop_worker(e.lanes.clone(), limited(&["jobs"], 4, &[("jobs", "50/s")]))
            .with_limits(limits),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in &ids {
        let t = e.lanes.task(id).await.expect("read").expect("exists");
        assert_eq!(
            (t.state, t.attempts),
            (TaskState::Queued, 0),
            "nothing is fetched without a grant: {t:?}"
        );
    }

    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let _server = ChildGuard::spawn(&mut cmd).expect("start the limiter's redis-server");
    assert!(
        wait_for(Duration::from_secs(10), || ping(&url)).is_some(),
        "the limiter's redis-server did not start"
    );
    for id in &ids {
        let t = wait_final(&e.lanes, id).await;
        assert_eq!((t.state, t.attempts), (TaskState::Succeeded, 1), "{t:?}");
    }
    w.shutdown().await;
}

#[tokio::test]
async fn a_limited_queue_wakes_on_new_work_and_on_due_delayed_tasks() {
    let e = env().await;
    let w = start(noop_worker(
        e.lanes.clone(),
        limited(&["jobs"], 2, &[("jobs", "100/s")]),
    ));
    // The fetcher found the queue empty and blocks on its signal.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let now = enqueue(&e.lanes, "jobs", 3).await;
    let later = e
        .lanes
        .enqueue(
            "jobs",
            NewTask::new("noop", json!({})).delay(Duration::from_millis(300)),
        )
        .await
        .expect("enqueue delayed");
    for id in now.iter().chain([&later]) {
        let t = wait_final(&e.lanes, id).await;
        assert_eq!((t.state, t.attempts), (TaskState::Succeeded, 1), "{t:?}");
    }
    let report = w.shutdown().await;
    assert_eq!(report.processed, 4, "{report:?}");
}

#[tokio::test]
async fn an_idle_limited_queue_spends_no_grants() {
    let e = env().await;
    // The test worker wakes from its blocking wait every 500 ms.
    let w = start(noop_worker(
        e.lanes.clone(),
        limited(&["jobs"], 2, &[("jobs", "1/m")]),
    ));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let limits = Limits::new(e.lanes.connection(), e.prefix.name()).expect("limits");
    let limiter = limits
        .limiter(
            &lanes_queue::limits::limiter_name("jobs"),
            "1/m".parse().expect("rate"),
        )
        .expect("limiter");
    let state = limiter.state().await.expect("limiter state");
    assert_eq!(state.available, 1, "idle wake-ups took grants: {state:?}");
    // So the first task runs at once.
    let id = enqueue(&e.lanes, "jobs", 1).await.remove(0);
    let t = wait_final(&e.lanes, &id).await;
    assert_eq!(t.state, TaskState::Succeeded);
    w.shutdown().await;
}

#[tokio::test]
async fn a_queue_limiter_is_listed_under_the_engine_prefix() {
    let e = env().await;
    let id = enqueue(&e.lanes, "photos", 1).await.remove(0);
    let w = start(noop_worker(
        e.lanes.clone(),
        limited(&["photos"], 1, &[("photos", "50/m")]),
    ));
    wait_state(&e.lanes, &id, |s| s == TaskState::Succeeded).await;
    w.shutdown().await;
    let limits = Limits::new(e.lanes.connection(), e.prefix.name()).expect("limits");
    let listed: HashMap<String, String> = limits
        .list_limiters()
        .await
        .expect("list")
        .into_iter()
        .map(|l| (l.name, l.rate.to_string()))
        .collect();
    assert_eq!(
        listed.get("queue:photos").map(String::as_str),
        Some("50/m"),
        "{listed:?}"
    );
}
