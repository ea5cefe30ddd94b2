//! Leases, fencing, renewal, reaping, and the worker registry.

use std::collections::HashMap;
use std::time::Duration;

use lanes_queue::{Error, NewTask, TaskError, TaskState, Worker};
use serde_json::{Value, json};

use crate::support::{Calls, LEASE, env, start, wait_final, wait_state, worker_cfg};

#[tokio::test]
async fn fetch_leases_only_what_was_asked_and_each_task_once() {
    let e = env().await;
    e.lanes
        .enqueue_bulk(
            "jobs",
            (0..10).map(|n| NewTask::new("noop", json!(n))).collect(),
        )
        .await
        .expect("enqueue");
    let a = e.lanes.fetch("jobs", "a", 3).await.expect("fetch");
    let b = e.lanes.fetch("jobs", "b", 100).await.expect("fetch");
    assert_eq!(a.tasks.len(), 3);
    assert_eq!(b.tasks.len(), 7);
    let mut tokens: Vec<_> = a
        .tasks
        .iter()
        .chain(&b.tasks)
        .map(|t| t.lease.token.clone())
        .collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 10, "every lease has its own fencing token");
    let stats = e.lanes.queue_stats("jobs").await.expect("stats");
    assert_eq!((stats.queued, stats.running), (0, 10));
    let info = e
        .lanes
        .task(&a.tasks[0].lease.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(info.state, TaskState::Running);
    assert_eq!(info.worker.as_deref(), Some("a"));
}

#[tokio::test]
async fn an_expired_lease_is_reaped_once_and_the_stale_token_is_refused() {
    let e = env().await;
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", json!({})))
        .await
        .expect("enqueue");
    let first = e
        .lanes
        .fetch("jobs", "zombie", 1)
        .await
        .expect("fetch")
        .tasks
        .remove(0);
    // Nothing expires while the lease is fresh.
    assert_eq!(
        e.lanes
            .reap("jobs", 3, &HashMap::new())
            .await
            .expect("reap"),
        (0, 0)
    );
    tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
    // Two reapers at once: the lease is returned exactly once.
    let none = HashMap::new();
    let (r1, r2) = tokio::join!(
        e.lanes.reap("jobs", 3, &none),
        e.lanes.reap("jobs", 3, &none)
    );
    let (r1, r2) = (r1.expect("reap"), r2.expect("reap"));
    assert_eq!(r1.1 + r2.1, 1, "requeued once in total: {r1:?} {r2:?}");

    // The zombie's writes are refused from now on.
    let err = e.lanes.ack(&first.lease, &json!("late")).await.unwrap_err();
    assert!(matches!(err, Error::StaleLease { .. }), "{err}");
    assert!(matches!(
        e.lanes.progress(&first.lease, &json!(50)).await,
        Err(Error::StaleLease { .. })
    ));

    let second = e
        .lanes
        .fetch("jobs", "healthy", 1)
        .await
        .expect("fetch")
        .tasks
        .remove(0);
    assert_eq!(second.lease.id, id);
    assert_eq!(second.attempt, 2);
    assert!(matches!(
        e.lanes.ack(&first.lease, &json!("late")).await,
        Err(Error::StaleLease { .. })
    ));
    e.lanes
        .ack(&second.lease, &json!("ok"))
        .await
        .expect("current lease acks");
    let info = e.lanes.task(&id).await.expect("read").expect("exists");
    assert_eq!(
        (info.state, info.result),
        (TaskState::Succeeded, Some(json!("ok")))
    );
    // And a second ack of a finished task is refused too.
    assert!(matches!(
        e.lanes.ack(&second.lease, &json!("again")).await,
        Err(Error::StaleLease { .. })
    ));
}

#[tokio::test]
async fn renewal_keeps_a_lease_alive_and_reports_lost_ones() {
    let e = env().await;
    e.lanes
        .enqueue_bulk(
            "jobs",
            vec![
                NewTask::new("noop", json!(1)),
                NewTask::new("noop", json!(2)),
            ],
        )
        .await
        .expect("enqueue");
    let batch = e.lanes.fetch("jobs", "w", 2).await.expect("fetch");
    let (kept, dropped) = (&batch.tasks[0].lease, &batch.tasks[1].lease);
    for _ in 0..4 {
        tokio::time::sleep(LEASE / 2).await;
        let r = e
            .lanes
            .renew("jobs", std::slice::from_ref(kept))
            .await
            .expect("renew");
        assert!(r.lost.is_empty());
        e.lanes
            .reap("jobs", 3, &HashMap::new())
            .await
            .expect("reap");
    }
    // Two lease lengths later the renewed task is still ours; the other was reaped.
    let r = e
        .lanes
        .renew("jobs", &[kept.clone(), dropped.clone()])
        .await
        .expect("renew");
    assert_eq!(r.lost, vec![dropped.id.clone()]);
    e.lanes
        .ack(kept, &Value::Null)
        .await
        .expect("renewed lease still acks");
}

#[tokio::test]
async fn a_task_running_three_leases_long_is_never_redelivered_while_its_worker_lives() {
    let e = env().await;
    let calls = Calls::default();
    let c = calls.clone();
    let long = LEASE * 3 + Duration::from_millis(500);
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 4)).handle(
        "long",
        move |ctx: lanes_queue::TaskContext| {
            let c = c.clone();
            async move {
                c.hit();
                tokio::time::sleep(long).await;
                Ok(json!({"attempt": ctx.attempt}))
            }
        },
    );
    // A second worker on the same queue would pick the task up if its lease ever expired.
    let calls2 = calls.clone();
    let w2 = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 4)).handle("long", move |_ctx| {
        let c = calls2.clone();
        async move {
            c.hit();
            Ok(Value::Null)
        }
    });
    let (r1, r2) = (start(w), start(w2));
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("long", json!({})))
        .await
        .expect("enqueue");
    let info = wait_final(&e.lanes, &id).await;
    assert_eq!(info.state, TaskState::Succeeded);
    assert_eq!(info.attempts, 1);
    assert_eq!(calls.get(), 1, "ran exactly once");
    assert_eq!(
        e.lanes
            .queue_stats("jobs")
            .await
            .expect("stats")
            .counters
            .get("expired"),
        None
    );
    r1.shutdown().await;
    r2.shutdown().await;
}

#[tokio::test]
async fn progress_is_fenced_and_readable_while_running() {
    let e = env().await;
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 1)).handle(
        "report",
        |ctx: lanes_queue::TaskContext| async move {
            ctx.progress(json!({"done": 1, "of": 2}))
                .await
                .map_err(|e| TaskError::retry(e.to_string()))?;
            tokio::time::sleep(Duration::from_millis(600)).await;
            Ok(json!("finished"))
        },
    );
    let running = start(w);
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("report", json!({})))
        .await
        .expect("enqueue");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = e.lanes.task(&id).await.expect("read").expect("exists");
        if info.progress.is_some() {
            assert_eq!(info.progress, Some(json!({"done": 1, "of": 2})));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "progress never showed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        wait_final(&e.lanes, &id).await.result,
        Some(json!("finished"))
    );
    running.shutdown().await;
}

#[tokio::test]
async fn every_worker_registers_with_a_unique_id_and_shows_its_active_tasks() {
    let e = env().await;
    let mk = || {
        Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2)).handle("slow", |_ctx| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok(Value::Null)
        })
    };
    let (a, b) = (mk(), mk());
    assert_ne!(
        a.id(),
        b.id(),
        "same name, different processes/instances, different ids"
    );
    let (ra, rb) = (start(a), start(b));
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("slow", json!({})))
        .await
        .expect("enqueue");
    wait_state(&e.lanes, &id, |s| s == TaskState::Running).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let workers = e.lanes.workers().await.expect("workers");
        let active: Vec<_> = workers
            .iter()
            .flat_map(|w| w.active.iter().map(|t| t.id.clone()))
            .collect();
        if workers.len() == 2 && active == vec![id.to_string()] {
            assert!(
                workers
                    .iter()
                    .all(|w| w.name == "test" && w.pid == std::process::id())
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "registry never showed the active task: {workers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_final(&e.lanes, &id).await;
    ra.shutdown().await;
    rb.shutdown().await;
    assert!(
        e.lanes.workers().await.expect("workers").is_empty(),
        "clean exits remove their records"
    );
}

#[tokio::test]
async fn the_write_observer_hears_accepted_writes_and_writes_refused_by_fencing() {
    use lanes_queue::{WriteOutcome, WriteReport};
    use std::sync::{Arc, Mutex};

    let e = env().await;
    let heard: Arc<Mutex<Vec<WriteReport>>> = Arc::default();
    let sink = heard.clone();
    let worker = Worker::new(e.lanes.clone(), worker_cfg(&["jobs"], 2))
        .handle("fine", |_ctx| async { Ok(json!("ok")) })
        .handle("broken", |_ctx| async {
            Err(TaskError::permanent("bad input"))
        })
        .handle("flaky", |ctx: lanes_queue::TaskContext| async move {
            if ctx.attempt == 1 {
                return Err(TaskError::retry("first attempt fails"));
            }
            Ok(json!("ok"))
        })
        // Someone else records this attempt first (as a newer attempt would after a lease
        // expiry): the worker's own ack must then be refused by its stale token.
        .handle("overtaken", |ctx: lanes_queue::TaskContext| async move {
            ctx.lanes().ack(ctx.lease(), &json!("first")).await?;
            Ok(json!("second"))
        })
        .on_write(move |r| sink.lock().expect("observer lock").push(r.clone()));
    let running = start(worker);
    let mut ids = HashMap::new();
    for kind in ["fine", "broken", "flaky", "overtaken"] {
        let id = e
            .lanes
            .enqueue("jobs", NewTask::new(kind, json!({})))
            .await
            .expect("enqueue");
        wait_final(&e.lanes, &id).await;
        ids.insert(id, kind);
    }
    running.shutdown().await;
    let heard = heard.lock().expect("observer lock").clone();
    let mut seen: Vec<(&str, &str, WriteOutcome)> = heard
        .iter()
        .map(|r| (ids[&r.lease.id], r.write, r.outcome))
        .collect();
    seen.sort_by_key(|(kind, ..)| *kind);
    assert_eq!(
        seen,
        vec![
            ("broken", "failed", WriteOutcome::Accepted),
            ("fine", "ack", WriteOutcome::Accepted),
            ("flaky", "retry", WriteOutcome::Accepted),
            ("flaky", "ack", WriteOutcome::Accepted),
            ("overtaken", "ack", WriteOutcome::Refused),
        ]
    );
    let overtaken = ids
        .iter()
        .find(|(_, k)| **k == "overtaken")
        .map(|(id, _)| id);
    let info = e
        .lanes
        .task(overtaken.expect("overtaken id"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        info.result,
        Some(json!("first")),
        "the refused ack wrote nothing"
    );
}

/// Found by the chaos run: Redis frozen longer than the response timeout. The ack's reply is
/// lost, but Redis runs the script when it wakes; the worker's retry of that same ack used to be
/// refused as stale, so a task that succeeded was counted, logged and reported as a refused ack.
#[tokio::test]
async fn a_write_resent_after_its_reply_was_lost_is_accepted_and_counted_once() {
    use lanes_queue::FailMode;

    let e = env().await;
    let ids = e
        .lanes
        .enqueue_bulk(
            "jobs",
            vec![
                NewTask::new("k", json!({})),
                NewTask::new("k", json!({})),
                NewTask::new("k", json!({})),
            ],
        )
        .await
        .expect("enqueue");
    let first = e.lanes.fetch("jobs", "w", 1).await.expect("fetch").tasks;
    let lease = first[0].lease.clone();
    e.lanes
        .ack_and_fetch_once(&lease, &json!("done"), "w", 0, Some(42))
        .await
        .expect("the first try is recorded (its reply is what got lost)");
    let again = e
        .lanes
        .ack_and_fetch_once(&lease, &json!("done"), "w", 1, Some(42))
        .await
        .expect("the resend of the same write is accepted, not stale");
    assert!(again.tasks.is_empty(), "a resend leases nothing more");
    for other in [Some(43), None] {
        assert!(
            matches!(
                e.lanes
                    .ack_and_fetch_once(&lease, &json!("other"), "w", 0, other)
                    .await,
                Err(Error::StaleLease { .. })
            ),
            "any other write with the old token is still fenced off"
        );
    }
    let info = e.lanes.task(&ids[0]).await.expect("read").expect("exists");
    assert_eq!(info.result, Some(json!("done")));

    // The same for a failed attempt's write (here a retry).
    let second = e.lanes.fetch("jobs", "w", 1).await.expect("fetch").tasks;
    let lease = second[0].lease.clone();
    let retry = FailMode::Retry {
        delay: Duration::from_secs(3600),
    };
    for _ in 0..2 {
        e.lanes
            .fail_once(&lease, retry, "flaky", Some(7))
            .await
            .expect("recorded, then the resend is accepted");
    }
    assert!(matches!(
        e.lanes.fail_once(&lease, retry, "flaky", Some(8)).await,
        Err(Error::StaleLease { .. })
    ));
    let stats = e.lanes.queue_stats("jobs").await.expect("stats");
    assert_eq!(stats.counters.get("succeeded"), Some(&1), "{stats:?}");
    assert_eq!(stats.counters.get("retried"), Some(&1), "{stats:?}");
    assert_eq!((stats.queued, stats.scheduled, stats.running), (1, 1, 0));
}
