//! Keyed lanes: serial order within a key (also across retries), no overlap, no head-of-line
//! blocking, round-robin fairness, reject and dedupe, positions, cancellation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lanes_queue::{
    CancelOutcome, Error, KeyPolicy, NewTask, TaskContext, TaskError, TaskState, Worker,
};
use serde_json::{Value, json};

use crate::support::{env, fast_retries, start, wait_final, wait_state, worker_cfg};

#[derive(Debug, Clone)]
struct Event {
    key: String,
    seq: u64,
    attempt: u32,
    start: Instant,
    end: Instant,
}

type Log = Arc<Mutex<Vec<Event>>>;

/// A handler that sleeps `ms`, fails its first attempt when `fail` is set, and logs start/end.
fn recorder(
    log: Log,
) -> impl Fn(
    TaskContext,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = lanes_queue::TaskResult> + Send>>
+ Send
+ Sync
+ 'static {
    move |ctx| {
        let log = log.clone();
        Box::pin(async move {
            let start = Instant::now();
            let ms = ctx.payload["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let fail = ctx.payload["fail"].as_bool().unwrap_or(false) && ctx.attempt == 1;
            log.lock().expect("log").push(Event {
                key: ctx.key.clone().unwrap_or_default(),
                seq: ctx.payload["seq"].as_u64().unwrap_or(0),
                attempt: ctx.attempt,
                start,
                end: Instant::now(),
            });
            if fail {
                return Err(TaskError::retry("first attempt fails on purpose"));
            }
            Ok(Value::Null)
        })
    }
}

/// Per key: attempts start in enqueue order and never overlap.
fn check_serial(log: &[Event]) -> usize {
    let mut by_key: HashMap<&str, Vec<&Event>> = HashMap::new();
    for e in log {
        by_key.entry(&e.key).or_default().push(e);
    }
    for (key, mut events) in by_key.clone() {
        events.sort_by_key(|e| e.start);
        for pair in events.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(
                b.start >= a.end,
                "key {key}: seq {} attempt {} overlaps seq {} attempt {}",
                b.seq,
                b.attempt,
                a.seq,
                a.attempt
            );
            assert!(
                b.seq >= a.seq,
                "key {key}: seq {} started after seq {} (out of order)",
                b.seq,
                a.seq
            );
        }
    }
    by_key.len()
}

#[tokio::test]
async fn tasks_of_a_key_run_one_at_a_time_in_order_across_workers_and_retries() {
    let e = env().await;
    let log: Log = Arc::default();
    let mut running = Vec::new();
    for _ in 0..3 {
        let lanes = lanes_queue::Lanes::connect(e.prefix.url(), e.lanes.config().clone())
            .await
            .expect("connect");
        let w = Worker::new(lanes, worker_cfg(&["tickets"], 16)).register(
            "ticket",
            fast_retries(3),
            recorder(log.clone()),
        );
        running.push(start(w));
    }
    let (keys, per_key) = (40u64, 6u64);
    let mut tasks = Vec::new();
    for seq in 0..per_key {
        for k in 0..keys {
            let fail = (k + seq) % 5 == 0;
            let payload = json!({"seq": seq, "ms": fastrand_ms(k, seq), "fail": fail});
            tasks.push(
                NewTask::new("ticket", payload).key(format!("project-{k}"), KeyPolicy::Serial),
            );
        }
    }
    let ids = e
        .lanes
        .enqueue_bulk("tickets", tasks)
        .await
        .expect("enqueue");
    for id in &ids {
        assert_eq!(wait_final(&e.lanes, id).await.state, TaskState::Succeeded);
    }
    let log = log.lock().expect("log").clone();
    assert_eq!(
        log.len() as u64,
        keys * per_key + ids.len() as u64 / 5,
        "every task once, failing ones twice"
    );
    assert_eq!(check_serial(&log), keys as usize);
    assert!(
        e.lanes
            .keys_status("tickets")
            .await
            .expect("keys")
            .is_empty(),
        "every key released"
    );
    for r in running {
        r.shutdown().await;
    }
}

fn fastrand_ms(k: u64, seq: u64) -> u64 {
    (k * 7 + seq * 13) % 30
}

#[tokio::test]
async fn other_keys_progress_while_one_key_is_stuck() {
    let e = env().await;
    let log: Log = Arc::default();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["tickets"], 8))
        .handle("ticket", recorder(log.clone()));
    let running = start(w);
    let stuck = e
        .lanes
        .enqueue(
            "tickets",
            NewTask::new("ticket", json!({"seq": 0, "ms": 3000})).key("slow", KeyPolicy::Serial),
        )
        .await
        .expect("enqueue");
    let behind = e
        .lanes
        .enqueue(
            "tickets",
            NewTask::new("ticket", json!({"seq": 1})).key("slow", KeyPolicy::Serial),
        )
        .await
        .expect("enqueue");
    let others = e
        .lanes
        .enqueue_bulk(
            "tickets",
            (0..30)
                .map(|n| {
                    NewTask::new("ticket", json!({"seq": n}))
                        .key(format!("k{}", n % 10), KeyPolicy::Serial)
                })
                .collect(),
        )
        .await
        .expect("enqueue");
    for id in &others {
        assert_eq!(wait_final(&e.lanes, id).await.state, TaskState::Succeeded);
    }
    let info = e.lanes.task(&stuck).await.expect("read").expect("exists");
    assert_eq!(
        info.state,
        TaskState::Running,
        "the slow key is still on its first task"
    );
    let info = e.lanes.task(&behind).await.expect("read").expect("exists");
    assert_eq!(
        (info.state, info.key_position),
        (TaskState::Queued, Some(1))
    );
    assert_eq!(
        e.lanes.executing_keys("tickets").await.expect("keys"),
        vec!["slow".to_owned()]
    );
    assert_eq!(
        wait_final(&e.lanes, &behind).await.state,
        TaskState::Succeeded
    );
    running.shutdown().await;
}

#[tokio::test]
async fn keys_are_served_round_robin_not_hot_key_first() {
    let e = env().await;
    let log: Log = Arc::default();
    let mut tasks: Vec<_> = (0..20)
        .map(|n| NewTask::new("ticket", json!({"seq": n})).key("hot", KeyPolicy::Serial))
        .collect();
    tasks.extend((0..5).map(|n| {
        NewTask::new("ticket", json!({"seq": n})).key(format!("cold{n}"), KeyPolicy::Serial)
    }));
    let ids = e
        .lanes
        .enqueue_bulk("tickets", tasks)
        .await
        .expect("enqueue");
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["tickets"], 1))
        .handle("ticket", recorder(log.clone()));
    let running = start(w);
    for id in &ids {
        wait_final(&e.lanes, id).await;
    }
    running.shutdown().await;
    let mut log = log.lock().expect("log").clone();
    log.sort_by_key(|e| e.start);
    let order: Vec<_> = log.iter().map(|e| e.key.as_str()).collect();
    let last_cold = order
        .iter()
        .rposition(|k| k.starts_with("cold"))
        .expect("cold keys ran");
    assert!(
        last_cold <= 6,
        "every cold key ran within the first round: {order:?}"
    );
}

#[tokio::test]
async fn reject_refuses_a_busy_key_until_its_task_finishes_and_dedupe_returns_the_running_task() {
    let e = env().await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["bank-bot"], 4)).handle(
        "collect",
        move |_ctx: TaskContext| {
            let g = g.clone();
            async move {
                g.notified().await;
                Ok(json!("collected"))
            }
        },
    );
    let running = start(w);
    let bot = |acct: &str| NewTask::new("collect", json!({})).key(acct, KeyPolicy::Reject);
    let first = e
        .lanes
        .enqueue("bank-bot", bot("acct-1"))
        .await
        .expect("first start");
    // Refused while queued or running, with the holder named.
    let err = e
        .lanes
        .enqueue("bank-bot", bot("acct-1"))
        .await
        .expect_err("second start refused");
    assert!(
        matches!(&err, Error::KeyBusy { key, task } if key == "acct-1" && task == first.as_str()),
        "{err}"
    );
    wait_state(&e.lanes, &first, |s| s == TaskState::Running).await;
    assert!(matches!(
        e.lanes.enqueue("bank-bot", bot("acct-1")).await,
        Err(Error::KeyBusy { .. })
    ));
    // Another account is independent.
    let other = e
        .lanes
        .enqueue("bank-bot", bot("acct-2"))
        .await
        .expect("other account starts");
    // Dedupe on the same queue's key space returns the holder instead of a new task.
    let dup = e
        .lanes
        .enqueue_detailed(
            "bank-bot",
            vec![NewTask::new("collect", json!({})).key("acct-1", KeyPolicy::Dedupe)],
        )
        .await
        .expect("dedupe");
    assert_eq!((dup[0].id.clone(), dup[0].existing), (first.clone(), true));
    // A bulk with a conflict writes nothing at all.
    let err = e
        .lanes
        .enqueue_bulk("bank-bot", vec![bot("acct-9"), bot("acct-1")])
        .await
        .expect_err("conflict");
    assert!(matches!(err, Error::KeyBusy { .. }));
    assert!(
        e.lanes.enqueue("bank-bot", bot("acct-9")).await.is_ok(),
        "acct-9 was not claimed by the refused bulk"
    );

    gate.notify_waiters();
    loop {
        gate.notify_waiters();
        let done = e
            .lanes
            .task(&first)
            .await
            .expect("read")
            .expect("exists")
            .state
            .is_final();
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = e
        .lanes
        .enqueue("bank-bot", bot("acct-1"))
        .await
        .expect("a new start works after it finished");
    assert_ne!(again, first);
    for id in [other, again] {
        loop {
            gate.notify_waiters();
            if e.lanes
                .task(&id)
                .await
                .expect("read")
                .expect("exists")
                .state
                .is_final()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    running.shutdown().await;
}

#[tokio::test]
async fn positions_move_up_when_a_waiting_task_is_cancelled() {
    let e = env().await;
    let t = |n: u64| NewTask::new("ticket", json!({"seq": n})).key("project-7", KeyPolicy::Serial);
    let ids = e
        .lanes
        .enqueue_bulk("tickets", (0..4).map(t).collect())
        .await
        .expect("enqueue");
    let pos = |info: Option<lanes_queue::TaskInfo>| info.expect("exists").key_position;
    let stats = e.lanes.queue_stats("tickets").await.expect("stats");
    assert_eq!(
        (stats.queued, stats.waiting_on_key),
        (4, 3),
        "lane tasks count as queued"
    );
    assert_eq!(pos(e.lanes.task(&ids[0]).await.expect("read")), Some(1));
    assert_eq!(pos(e.lanes.task(&ids[2]).await.expect("read")), Some(3));
    assert_eq!(
        e.lanes.cancel(&ids[1]).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert_eq!(pos(e.lanes.task(&ids[2]).await.expect("read")), Some(2));
    assert_eq!(pos(e.lanes.task(&ids[3]).await.expect("read")), Some(3));
    let listed = e
        .lanes
        .key_tasks("tickets", "project-7")
        .await
        .expect("key tasks");
    let listed: Vec<_> = listed
        .iter()
        .map(|t| (t.id.clone(), t.key_position))
        .collect();
    assert_eq!(
        listed,
        vec![
            (ids[0].clone(), Some(1)),
            (ids[2].clone(), Some(2)),
            (ids[3].clone(), Some(3))
        ]
    );
    // Cancelling the holder hands its slot to the next one.
    assert_eq!(
        e.lanes.cancel(&ids[0]).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert_eq!(pos(e.lanes.task(&ids[2]).await.expect("read")), Some(1));
    let status = e.lanes.keys_status("tickets").await.expect("keys");
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].holder.clone(), status[0].waiting),
        (Some(ids[2].clone()), 1)
    );
    let stats = e.lanes.queue_stats("tickets").await.expect("stats");
    assert_eq!((stats.queued, stats.waiting_on_key), (2, 1));
}

#[tokio::test]
async fn a_dead_lettered_task_releases_its_key_and_a_requeue_waits_its_turn() {
    let e = env().await;
    let log: Log = Arc::default();
    let l = log.clone();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["tickets"], 4)).register(
        "ticket",
        fast_retries(1),
        move |ctx: TaskContext| {
            let l = l.clone();
            async move {
                if ctx.payload["doomed"].as_bool().unwrap_or(false) {
                    return Err(TaskError::retry("always fails"));
                }
                recorder(l)(ctx).await
            }
        },
    );
    let running = start(w);
    let doomed = e
        .lanes
        .enqueue(
            "tickets",
            NewTask::new("ticket", json!({"doomed": true})).key("p", KeyPolicy::Serial),
        )
        .await
        .expect("enqueue");
    let next = e
        .lanes
        .enqueue(
            "tickets",
            NewTask::new("ticket", json!({"seq": 1})).key("p", KeyPolicy::Serial),
        )
        .await
        .expect("enqueue");
    assert_eq!(wait_final(&e.lanes, &doomed).await.state, TaskState::Dead);
    assert_eq!(
        wait_final(&e.lanes, &next).await.state,
        TaskState::Succeeded
    );
    running.shutdown().await;
    // Re-queued while the key is free: it takes the key again (a later task would wait behind it).
    assert!(e.lanes.requeue_dead(&doomed).await.expect("requeue"));
    let later = e
        .lanes
        .enqueue(
            "tickets",
            NewTask::new("ticket", json!({"seq": 2})).key("p", KeyPolicy::Serial),
        )
        .await
        .expect("enqueue");
    assert_eq!(
        e.lanes
            .task(&later)
            .await
            .expect("read")
            .expect("exists")
            .key_position,
        Some(2)
    );
}

#[tokio::test]
async fn a_key_may_allow_more_than_one_task_at_a_time() {
    let e = env().await;
    let log: Log = Arc::default();
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 8))
        .handle("ticket", recorder(log.clone()));
    let running = start(w);
    let ids = e
        .lanes
        .enqueue_bulk(
            "jobs",
            (0..8)
                .map(|n| {
                    NewTask::new("ticket", json!({"seq": n, "ms": 150}))
                        .key("wide", KeyPolicy::Serial)
                        .key_concurrency(2)
                })
                .collect(),
        )
        .await
        .expect("enqueue");
    for id in &ids {
        wait_final(&e.lanes, id).await;
    }
    running.shutdown().await;
    let log = log.lock().expect("log").clone();
    let max_overlap = log
        .iter()
        .map(|a| {
            log.iter()
                .filter(|b| b.start <= a.start && b.end > a.start)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert_eq!(max_overlap, 2, "two at a time, never three");
}

#[tokio::test]
async fn bad_keys_and_policies_are_refused_at_enqueue() {
    let e = env().await;
    let task = || NewTask::new("ticket", json!({}));
    for key in ["", &"k".repeat(257), "tab\there"] {
        let err = e
            .lanes
            .enqueue("tickets", task().key(key, KeyPolicy::Serial))
            .await
            .expect_err("bad key");
        assert!(matches!(err, Error::InvalidKey { .. }), "{key:?}: {err}");
    }
    let err = "sequential"
        .parse::<KeyPolicy>()
        .expect_err("unknown policy");
    assert_eq!(
        err.to_string(),
        "unknown key policy \"sequential\": use serial, reject or dedupe"
    );
    let err = e
        .lanes
        .enqueue(
            "tickets",
            task().key("k", KeyPolicy::Reject).key_concurrency(2),
        )
        .await
        .expect_err("bad concurrency");
    assert!(matches!(err, Error::InvalidKeyConcurrency { .. }), "{err}");
    let err = e
        .lanes
        .enqueue(
            "tickets",
            task().key("k", KeyPolicy::Serial).key_concurrency(0),
        )
        .await
        .expect_err("bad concurrency");
    assert!(matches!(err, Error::InvalidKeyConcurrency { .. }), "{err}");
    assert_eq!(
        e.lanes.queue_stats("tickets").await.expect("stats").queued,
        0
    );
}

#[tokio::test]
async fn a_process_runs_at_most_its_key_cap_of_keyed_tasks_while_unkeyed_ones_use_the_other_slots()
{
    let e = env().await;
    let log: Log = Arc::default();
    let cfg = lanes_queue::WorkerConfig {
        max_concurrent_keys: Some(2),
        ..worker_cfg(&["tickets"], 8)
    };
    let w = Worker::new(e.lanes.clone(), cfg).handle("ticket", recorder(log.clone()));
    let mut tasks: Vec<_> = (0..6)
        .map(|k| {
            NewTask::new("ticket", json!({"seq": 0, "ms": 300}))
                .key(format!("project-{k}"), KeyPolicy::Serial)
        })
        .collect();
    tasks.extend((0..4).map(|_| NewTask::new("ticket", json!({"seq": 0, "ms": 300}))));
    let ids = e
        .lanes
        .enqueue_bulk("tickets", tasks)
        .await
        .expect("enqueue");
    let running = start(w);
    for id in &ids {
        assert_eq!(wait_final(&e.lanes, id).await.state, TaskState::Succeeded);
    }
    running.shutdown().await;
    let log = log.lock().expect("log").clone();
    // Most tasks running at one instant, counting only those `counts` selects.
    let at_once = |counts: &dyn Fn(&Event) -> bool| {
        log.iter()
            .filter(|a| counts(a))
            .map(|a| {
                log.iter()
                    .filter(|b| counts(b) && b.start <= a.start && b.end > a.start)
                    .count()
            })
            .max()
            .unwrap_or(0)
    };
    assert_eq!(
        at_once(&|e| !e.key.is_empty()),
        2,
        "keyed tasks capped at 2 in this process"
    );
    let all = at_once(&|_| true);
    assert!(all > 2, "unkeyed tasks ran beside them: {all} at once");
}
