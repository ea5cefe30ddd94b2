//! A `worker` process lives through Redis going away and coming back.
//!
//! With the append-only file on (`appendfsync everysec`), Redis SIGKILLed more than a second after
//! the last write keeps every queued task; the same worker process (never restarted) reconnects
//! and drains them. Without persistence, even a clean restart loses everything: queued,
//! scheduled and running tasks, results, queue records; the worker reconnects and runs whatever
//! is enqueued afterwards.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_queue::{Config, Lanes, NewTask, TaskId, TaskState};
use lanes_testkit::{ChildGuard, RestartableRedis};
use serde_json::json;

use crate::support::bin;

const QUEUE: &str = "restart";
const PREFIX: &str = "restart";

fn spawn_worker(url: &str, log: &Path) -> ChildGuard {
    let out = std::fs::File::create(log).expect("create the worker log");
    let err = out.try_clone().expect("clone the log handle");
    let mut c = Command::new(bin());
    c.env("REDIS_URL", url)
        .env("LANES_PREFIX", PREFIX)
        .env("LANES_LEASE", "5s")
        .env("RUST_LOG", "info")
        .args(["--queues", QUEUE, "--concurrency", "1", "--name", "restart"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    ChildGuard::spawn(&mut c).expect("spawn worker")
}

async fn connect(url: &str) -> Lanes {
    let cfg = Config {
        prefix: PREFIX.into(),
        ..Config::default()
    };
    Lanes::connect(url, cfg).await.expect("connect")
}

async fn state(lanes: &Lanes, id: &TaskId) -> Option<TaskState> {
    lanes
        .task(id)
        .await
        .expect("read the task")
        .map(|t| t.state)
}

/// Polls every 100 ms, at most `secs` seconds, until every task is in `want`.
async fn wait_all(lanes: &Lanes, ids: &[TaskId], want: TaskState, secs: u64) -> bool {
    for _ in 0..secs * 10 {
        let mut all = true;
        for id in ids {
            if state(lanes, id).await != Some(want) {
                all = false;
                break;
            }
        }
        if all {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn alive(child: &mut ChildGuard, log: &Path) {
    let exited = child.0.try_wait().ok().flatten();
    assert!(
        exited.is_none(),
        "the worker exited ({exited:?}): {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_tasks_survive_a_redis_crash_and_the_same_worker_drains_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut redis = RestartableRedis::start(dir.path(), true).expect("start redis-server");
    let url = redis.url();
    let log = dir.path().join("worker.log");
    let mut worker = spawn_worker(&url, &log);
    let lanes = connect(&url).await;

    // One slot, taken by a long sleep: everything behind it stays queued across the crash.
    let blocker = lanes
        .enqueue(QUEUE, NewTask::new("sleep", json!({"ms": 4000})))
        .await
        .expect("enqueue");
    assert!(
        wait_all(
            &lanes,
            std::slice::from_ref(&blocker),
            TaskState::Running,
            30
        )
        .await,
        "the worker never started the blocker: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let tasks = (0..20)
        .map(|n| NewTask::new("noop", json!({ "n": n })))
        .collect();
    let ids = lanes.enqueue_bulk(QUEUE, tasks).await.expect("enqueue");
    assert!(wait_all(&lanes, &ids, TaskState::Queued, 1).await);
    drop(lanes);

    // SIGKILL after the once-a-second fsync: nothing acknowledged is lost.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.stop(libc::SIGKILL).expect("kill redis-server");
    tokio::time::sleep(Duration::from_secs(3)).await;
    alive(&mut worker, &log);
    redis.restart().expect("restart redis-server");

    let lanes = connect(&url).await;
    for id in &ids {
        let s = state(&lanes, id).await;
        assert!(
            matches!(
                s,
                Some(TaskState::Queued | TaskState::Running | TaskState::Succeeded)
            ),
            "{id} after the crash: {s:?}"
        );
    }
    let mut all = ids.clone();
    all.push(blocker);
    assert!(
        wait_all(&lanes, &all, TaskState::Succeeded, 60).await,
        "the worker did not drain the queue after redis came back: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    alive(&mut worker, &log);
    worker.signal(libc::SIGTERM);
    let status = worker.wait_timeout(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "the worker stops cleanly: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_persistence_a_redis_restart_loses_every_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut redis = RestartableRedis::start(dir.path(), false).expect("start redis-server");
    let url = redis.url();
    let log = dir.path().join("worker.log");
    let mut worker = spawn_worker(&url, &log);
    let lanes = connect(&url).await;

    let running = lanes
        .enqueue(QUEUE, NewTask::new("sleep", json!({"ms": 60_000})))
        .await
        .expect("enqueue");
    assert!(
        wait_all(
            &lanes,
            std::slice::from_ref(&running),
            TaskState::Running,
            30
        )
        .await,
        "the worker never started the long task"
    );
    let mut lost = lanes
        .enqueue_bulk(
            QUEUE,
            (0..5).map(|_| NewTask::new("noop", json!({}))).collect(),
        )
        .await
        .expect("enqueue");
    let scheduled = NewTask::new("noop", json!({})).delay(Duration::from_secs(3600));
    lost.push(lanes.enqueue(QUEUE, scheduled).await.expect("enqueue"));
    lost.push(running);
    drop(lanes);

    // A clean stop: Redis exits normally, and still keeps nothing without persistence.
    redis.stop(libc::SIGTERM).expect("stop redis-server");
    redis.restart().expect("restart redis-server");
    let lanes = connect(&url).await;
    for id in &lost {
        assert_eq!(state(&lanes, id).await, None, "{id} survived a restart");
    }
    let stats = lanes.queue_stats(QUEUE).await.expect("stats");
    assert_eq!(
        (stats.queued, stats.scheduled, stats.running),
        (0, 0, 0),
        "{stats:?}"
    );

    // The worker is still there: it reconnects, finds its old lease gone (its handler is
    // cancelled, nothing is resurrected) and runs new work.
    let fresh = lanes
        .enqueue(QUEUE, NewTask::new("noop", json!({})))
        .await
        .expect("enqueue");
    assert!(
        wait_all(
            &lanes,
            std::slice::from_ref(&fresh),
            TaskState::Succeeded,
            30
        )
        .await,
        "the worker did not run new work after the restart: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(state(&lanes, &lost[lost.len() - 1]).await, None);
    alive(&mut worker, &log);
    worker.signal(libc::SIGTERM);
    let status = worker.wait_timeout(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "the worker stops cleanly: {status:?}"
    );
}
