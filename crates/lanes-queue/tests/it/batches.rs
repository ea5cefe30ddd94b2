//! Batches: children counted once per outcome inside the engine's scripts, absolute progress
//! fenced by leases (redelivered children never count twice), finalize exactly once under
//! concurrent last children, cancellation, events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanes_queue::{
    BatchCancel, BatchId, BatchInfo, BatchSpec, BatchState, ChildProgress, Error, FailMode, Lanes,
    NewTask, TaskContext, TaskError, TaskState, Worker,
};
use serde_json::{Value, json};

use crate::support::{env, env_with, start, worker_cfg};

fn children(n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|i| NewTask::new("chunk", json!({ "chunk": i })))
        .collect()
}

fn progress(processed: u64, succeeded: u64, errors: u64) -> ChildProgress {
    ChildProgress {
        processed,
        succeeded,
        errors,
    }
}

async fn info(lanes: &Lanes, id: &BatchId) -> BatchInfo {
    lanes
        .batch(id)
        .await
        .expect("read batch")
        .expect("batch exists")
}

/// Polls until the batch is finished (or 60 s pass, then panics).
async fn wait_finished(lanes: &Lanes, id: &BatchId) -> BatchInfo {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let b = info(lanes, id).await;
        if b.is_finished() {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "batch {id} stuck: {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_batch_counts_its_children_and_enqueues_the_finalize_task_once() {
    let e = env().await;
    let spec = BatchSpec::new(children(3))
        .total_items(30)
        .finalize(NewTask::new("finalize", json!({"report": true})))
        .meta(json!({"user": "u1"}));
    let id = e
        .lanes
        .create_batch("analysis", spec)
        .await
        .expect("create");
    assert_eq!(id.queue(), "analysis");
    let b = info(&e.lanes, &id).await;
    assert_eq!(b.state, BatchState::Running);
    assert_eq!((b.total_children, b.children_done), (3, 0));
    assert_eq!((b.total_items, b.processed_items, b.progress), (30, 0, 0.0));
    assert_eq!(b.children.len(), 3);
    assert_eq!(b.meta["user"], "u1");
    let fin = b.finalize_task.clone().expect("finalize id known up front");
    assert!(
        e.lanes.task(&fin).await.expect("read").is_none(),
        "not enqueued yet"
    );
    assert_eq!(
        e.lanes.queue_stats("analysis").await.expect("stats").queued,
        3
    );

    let got = e
        .lanes
        .fetch("analysis", "w", 3)
        .await
        .expect("fetch")
        .tasks;
    assert_eq!(got.len(), 3);
    for (i, t) in got.iter().enumerate() {
        assert_eq!(
            e.lanes.batch_of(&t.lease.id).await.expect("batch_of"),
            Some(id.clone())
        );
        let i = i as u64;
        let state = e
            .lanes
            .batch_progress(&t.lease, progress(10, 9 - i, 1 + i))
            .await
            .expect("progress");
        assert_eq!(state, BatchState::Running);
    }
    let b = info(&e.lanes, &id).await;
    assert_eq!(
        (
            b.processed_items,
            b.success_count,
            b.error_count,
            b.progress
        ),
        (30, 24, 6, 100.0)
    );

    e.lanes.ack(&got[0].lease, &json!(0)).await.expect("ack");
    e.lanes.ack(&got[1].lease, &json!(1)).await.expect("ack");
    let b = info(&e.lanes, &id).await;
    assert_eq!((b.children_done, b.children_succeeded), (2, 2));
    assert_eq!(b.state, BatchState::Running);
    assert!(e.lanes.task(&fin).await.expect("read").is_none());

    e.lanes.ack(&got[2].lease, &json!(2)).await.expect("ack");
    let b = info(&e.lanes, &id).await;
    assert_eq!(b.state, BatchState::Finalizing);
    assert_eq!((b.children_done, b.children_succeeded), (3, 3));
    assert!(!b.is_finished());
    let fin_task = e.lanes.task(&fin).await.expect("read").expect("enqueued");
    assert_eq!(fin_task.state, TaskState::Queued);
    assert_eq!(fin_task.kind, "finalize");

    let f = e
        .lanes
        .fetch("analysis", "w", 5)
        .await
        .expect("fetch")
        .tasks;
    assert_eq!(f.len(), 1, "only the finalize task is left");
    assert_eq!(f[0].lease.id, fin);
    assert_eq!(
        e.lanes.batch_of(&fin).await.expect("batch_of"),
        Some(id.clone())
    );
    e.lanes
        .ack(&f[0].lease, &json!({"summary": "ok"}))
        .await
        .expect("ack finalize");
    let b = info(&e.lanes, &id).await;
    assert_eq!(b.state, BatchState::Completed);
    assert!(b.is_finished());
    assert_eq!(b.finalize_state, Some(TaskState::Succeeded));
    assert_eq!(b.result, Some(json!({"summary": "ok"})));

    // Finished batches expire with the results.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(e.lanes.keys().queue("analysis").batch(id.as_str()))
        .query_async(&mut e.lanes.connection())
        .await
        .expect("pttl");
    assert!(ttl > 0, "a finished batch has a TTL, got {ttl}");

    let events = e
        .lanes
        .batch_events("analysis", None, 100)
        .await
        .expect("events");
    let names: Vec<&str> = events.iter().map(|ev| ev.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"created"));
    assert_eq!(names.iter().filter(|n| **n == "progress").count(), 3);
    assert_eq!(names.iter().filter(|n| **n == "child_succeeded").count(), 3);
    assert_eq!(names.iter().filter(|n| **n == "finalizing").count(), 1);
    assert_eq!(names.last(), Some(&"completed"));
    let last = events.last().expect("an event");
    assert_eq!(last.batch, id);
    assert_eq!((last.processed_items, last.children_done), (30, 3));
    let after = e
        .lanes
        .batch_events("analysis", Some(&events[2].id), 100)
        .await
        .expect("events after");
    assert_eq!(after.len(), events.len() - 3);
}

#[tokio::test]
async fn a_redelivered_child_resumes_and_never_counts_twice() {
    let e = env_with(|c| c.lease = Duration::from_millis(300)).await;
    let id = e
        .lanes
        .create_batch("q", BatchSpec::new(children(1)).total_items(50))
        .await
        .expect("create");
    let first = e
        .lanes
        .fetch("q", "w1", 1)
        .await
        .expect("fetch")
        .tasks
        .remove(0);
    assert_eq!(
        e.lanes.child_progress(&first.lease.id).await.expect("read"),
        Some(ChildProgress::default())
    );
    e.lanes
        .batch_progress(&first.lease, progress(10, 9, 1))
        .await
        .expect("progress");
    // The worker dies here: no renewal, the lease expires, the reaper hands the child back.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (expired, requeued) = e.lanes.reap("q", 3, &HashMap::new()).await.expect("reap");
    assert_eq!((expired, requeued), (1, 1));
    let b = info(&e.lanes, &id).await;
    assert_eq!(
        (b.children_done, b.processed_items),
        (0, 10),
        "a redelivery is not an outcome"
    );

    let second = e
        .lanes
        .fetch("q", "w2", 1)
        .await
        .expect("fetch")
        .tasks
        .remove(0);
    assert_eq!(second.lease.id, first.lease.id);
    assert_eq!(second.attempt, 2);
    let resume = e
        .lanes
        .child_progress(&second.lease.id)
        .await
        .expect("read")
        .expect("a batch child");
    assert_eq!(
        resume,
        progress(10, 9, 1),
        "the next attempt sees the last synced counts"
    );

    // The old holder wakes up and reports: refused, nothing counted.
    let stale = e
        .lanes
        .batch_progress(&first.lease, progress(20, 19, 1))
        .await;
    assert!(matches!(stale, Err(Error::StaleLease { .. })), "{stale:?}");

    // The new attempt resumes after item 10 and reports absolute counts.
    e.lanes
        .batch_progress(&second.lease, progress(30, 28, 2))
        .await
        .expect("progress");
    e.lanes
        .batch_progress(&second.lease, progress(50, 47, 3))
        .await
        .expect("progress");
    // Reporting the same counts again (a retried write) changes nothing.
    e.lanes
        .batch_progress(&second.lease, progress(50, 47, 3))
        .await
        .expect("progress");
    let b = info(&e.lanes, &id).await;
    assert_eq!(
        (b.processed_items, b.success_count, b.error_count),
        (50, 47, 3)
    );

    let stale_ack = e.lanes.ack(&first.lease, &json!(null)).await;
    assert!(matches!(stale_ack, Err(Error::StaleLease { .. })));
    assert_eq!(info(&e.lanes, &id).await.children_done, 0);
    e.lanes.ack(&second.lease, &json!(null)).await.expect("ack");
    let b = info(&e.lanes, &id).await;
    assert_eq!(
        b.state,
        BatchState::Completed,
        "no finalize task: done at once"
    );
    assert_eq!((b.children_done, b.children_succeeded), (1, 1));
    assert_eq!(
        (b.processed_items, b.success_count, b.error_count),
        (50, 47, 3)
    );
    assert!(b.is_finished());
}

#[tokio::test]
async fn failed_dead_and_reaped_children_count_and_still_finalize() {
    let e = env_with(|c| c.lease = Duration::from_millis(200)).await;
    let mut kids = children(4);
    kids[3] = NewTask::new("chunk", json!({"chunk": 3})).max_retries(0);
    let id = e
        .lanes
        .create_batch(
            "q",
            BatchSpec::new(kids).finalize(NewTask::new("finalize", json!({}))),
        )
        .await
        .expect("create");
    let got = e.lanes.fetch("q", "w", 4).await.expect("fetch").tasks;
    assert_eq!(got.len(), 4);
    // A retry is not an outcome.
    e.lanes
        .fail(
            &got[0].lease,
            FailMode::Retry {
                delay: Duration::ZERO,
            },
            "flaky",
        )
        .await
        .expect("retry");
    assert_eq!(info(&e.lanes, &id).await.children_done, 0);
    e.lanes
        .fail(&got[1].lease, FailMode::Failed, "bad input")
        .await
        .expect("failed");
    e.lanes
        .fail(&got[2].lease, FailMode::Dead, "gave up")
        .await
        .expect("dead");
    let b = info(&e.lanes, &id).await;
    assert_eq!((b.children_done, b.children_failed), (2, 2));

    // Child 3 has no retries left: its expired lease kills it, through the reaper.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let retried = e.lanes.fetch("q", "w", 1).await.expect("fetch").tasks;
    assert_eq!(retried.len(), 1, "the retried child is back");
    assert_eq!(retried[0].lease.id, got[0].lease.id);
    let (expired, requeued) = e.lanes.reap("q", 3, &HashMap::new()).await.expect("reap");
    assert_eq!((expired, requeued), (1, 0), "child 3 is dead, not requeued");
    let b = info(&e.lanes, &id).await;
    assert_eq!((b.children_done, b.children_failed), (3, 3));
    assert_eq!(b.state, BatchState::Running);

    e.lanes
        .ack(&retried[0].lease, &json!(null))
        .await
        .expect("ack");
    let b = info(&e.lanes, &id).await;
    assert_eq!(b.state, BatchState::Finalizing);
    assert_eq!(
        (b.children_done, b.children_succeeded, b.children_failed),
        (4, 1, 3)
    );

    // A re-queued dead child ends again without counting twice.
    let dead_child = got[2].lease.id.clone();
    assert!(e.lanes.requeue_dead(&dead_child).await.expect("requeue"));
    let again = e.lanes.fetch("q", "w", 5).await.expect("fetch").tasks;
    let fin = b.finalize_task.clone().expect("finalize");
    assert_eq!(again.len(), 2, "the finalize task and the re-queued child");
    for t in &again {
        if t.lease.id == dead_child {
            e.lanes.ack(&t.lease, &json!(null)).await.expect("ack");
        }
    }
    let b = info(&e.lanes, &id).await;
    assert_eq!((b.children_done, b.children_succeeded), (4, 1));

    // The finalize task failing permanently still ends the batch, with its error.
    let f = again
        .iter()
        .find(|t| t.lease.id == fin)
        .expect("finalize leased");
    e.lanes
        .fail(&f.lease, FailMode::Failed, "report store down")
        .await
        .expect("fail finalize");
    let b = info(&e.lanes, &id).await;
    assert_eq!(b.state, BatchState::Completed);
    assert_eq!(b.finalize_state, Some(TaskState::Failed));
    assert_eq!(b.finalize_error.as_deref(), Some("report store down"));
    assert!(b.is_finished());
}

#[tokio::test]
async fn cancel_removes_queued_children_stops_running_ones_and_still_finalizes() {
    let e = env().await;
    let id = e
        .lanes
        .create_batch(
            "q",
            BatchSpec::new(children(10))
                .total_items(100)
                .finalize(NewTask::new("finalize", json!({}))),
        )
        .await
        .expect("create");
    let running = e.lanes.fetch("q", "w", 2).await.expect("fetch").tasks;
    e.lanes
        .batch_progress(&running[0].lease, progress(4, 4, 0))
        .await
        .expect("progress");

    let out = e.lanes.cancel_batch(&id).await.expect("cancel");
    assert_eq!(
        out,
        BatchCancel::Cancelled {
            removed: 8,
            stopping: 2
        }
    );
    let b = info(&e.lanes, &id).await;
    assert_eq!(b.state, BatchState::Cancelled);
    assert!(b.cancelled_at_ms.is_some());
    assert!(!b.is_finished(), "two children still running");
    assert_eq!((b.children_done, b.children_cancelled), (8, 8));
    let stats = e.lanes.queue_stats("q").await.expect("stats");
    assert_eq!(stats.queued, 0, "queued children are gone");
    for t in &running {
        let info = e
            .lanes
            .task(&t.lease.id)
            .await
            .expect("read")
            .expect("task");
        assert!(info.stop_requested, "running children are told to stop");
    }
    // The running children's renewals report the stop request.
    let leases: Vec<_> = running.iter().map(|t| t.lease.clone()).collect();
    let renewal = e.lanes.renew("q", &leases).await.expect("renew");
    assert_eq!(renewal.stop.len(), 2);
    // A running child learns it from its progress writes too.
    let state = e
        .lanes
        .batch_progress(&running[0].lease, progress(5, 5, 0))
        .await
        .expect("progress");
    assert_eq!(state, BatchState::Cancelled);

    // Cancelling again removes nothing more.
    assert_eq!(
        e.lanes.cancel_batch(&id).await.expect("cancel"),
        BatchCancel::Cancelled {
            removed: 0,
            stopping: 2
        }
    );

    e.lanes
        .fail(&running[0].lease, FailMode::Cancelled, "stopped on request")
        .await
        .expect("cancelled");
    e.lanes
        .ack(&running[1].lease, &json!(null))
        .await
        .expect("ack");
    let b = info(&e.lanes, &id).await;
    assert_eq!(
        (b.children_done, b.children_cancelled, b.children_succeeded),
        (10, 9, 1)
    );
    assert_eq!(b.state, BatchState::Cancelled);
    assert_eq!(b.processed_items, 5);
    let fin = e.lanes.fetch("q", "w", 5).await.expect("fetch").tasks;
    assert_eq!(fin.len(), 1, "the finalize task runs once after a cancel");
    assert_eq!(Some(&fin[0].lease.id), b.finalize_task.as_ref());
    e.lanes
        .ack(&fin[0].lease, &json!({"cancelled": true}))
        .await
        .expect("ack");
    let b = info(&e.lanes, &id).await;
    assert_eq!(b.state, BatchState::Cancelled);
    assert!(b.is_finished());
    assert_eq!(b.result, Some(json!({"cancelled": true})));
    assert_eq!(
        e.lanes.cancel_batch(&id).await.expect("cancel"),
        BatchCancel::Finished {
            state: BatchState::Cancelled
        }
    );
    let missing: BatchId = "q.0123456789abcdef0123456789abcdef".parse().expect("id");
    assert_eq!(
        e.lanes.cancel_batch(&missing).await.expect("cancel"),
        BatchCancel::NotFound
    );
    assert!(e.lanes.batch(&missing).await.expect("read").is_none());
}

#[tokio::test]
async fn a_batch_without_children_finalizes_at_once_and_keyed_children_are_refused() {
    let e = env().await;
    let id = e
        .lanes
        .create_batch(
            "q",
            BatchSpec::new(Vec::new()).finalize(NewTask::new("finalize", json!({}))),
        )
        .await
        .expect("create");
    let b = info(&e.lanes, &id).await;
    assert_eq!(b.state, BatchState::Finalizing);
    assert_eq!(
        e.lanes.fetch("q", "w", 5).await.expect("fetch").tasks.len(),
        1
    );

    // With an explicit id, creation is idempotent: a redelivered task that splits itself into a
    // batch does not create a second one.
    let job = e
        .lanes
        .enqueue("q", NewTask::new("job", json!({})))
        .await
        .expect("enqueue");
    let own: BatchId = job.clone().into();
    for _ in 0..2 {
        let got = e
            .lanes
            .create_batch("q", BatchSpec::new(children(3)).id(own.clone()))
            .await
            .expect("create");
        assert_eq!(got, own);
    }
    assert_eq!(own.as_str(), job.as_str());
    assert_eq!(info(&e.lanes, &own).await.total_children, 3);
    assert_eq!(
        e.lanes.queue_stats("q").await.expect("stats").queued,
        4,
        "1 job + 3 children, once"
    );
    let other_queue = e
        .lanes
        .create_batch("elsewhere", BatchSpec::new(children(1)).id(own.clone()))
        .await;
    assert!(
        matches!(other_queue, Err(Error::InvalidBatch { .. })),
        "{other_queue:?}"
    );

    let keyed = BatchSpec::new(vec![
        NewTask::new("chunk", json!({})).key("k", lanes_queue::KeyPolicy::Serial),
    ]);
    let err = e.lanes.create_batch("q", keyed).await;
    assert!(matches!(err, Err(Error::InvalidBatch { .. })), "{err:?}");

    // A task outside any batch cannot write batch progress.
    let plain = e
        .lanes
        .enqueue("p", NewTask::new("x", json!({})))
        .await
        .expect("enqueue");
    let t = e
        .lanes
        .fetch("p", "w", 1)
        .await
        .expect("fetch")
        .tasks
        .remove(0);
    assert_eq!(t.lease.id, plain);
    let err = e.lanes.batch_progress(&t.lease, progress(1, 1, 0)).await;
    assert!(matches!(err, Err(Error::NotInBatch { .. })), "{err:?}");
    assert_eq!(e.lanes.child_progress(&plain).await.expect("read"), None);
}

/// Many batches, many workers, children ending at the same moment: every batch finalizes
/// exactly once, and its counters are exact.
#[tokio::test]
async fn finalize_runs_exactly_once_under_concurrent_last_children() {
    const BATCHES: usize = 40;
    const CHILDREN: usize = 6;
    const ITEMS: u64 = 5;
    let e = env().await;
    let finals: Arc<Mutex<HashMap<String, usize>>> = Arc::default();

    let mut ids = Vec::new();
    for b in 0..BATCHES {
        let kids = (0..CHILDREN)
            .map(|c| NewTask::new("chunk", json!({"fail": (b + c) % 5 == 0})))
            .collect();
        let spec = BatchSpec::new(kids)
            .total_items(CHILDREN as u64 * ITEMS)
            .finalize(NewTask::new("finalize", json!({})));
        ids.push(e.lanes.create_batch("many", spec).await.expect("create"));
    }

    let mut workers = Vec::new();
    for _ in 0..4 {
        let f = finals.clone();
        let w = Worker::new(e.lanes.clone(), worker_cfg(&["many"], 8))
            .handle("chunk", |ctx: TaskContext| async move {
                let mut done = ctx.child_progress().await?.unwrap_or_default();
                while done.processed < ITEMS {
                    done.processed += 1;
                    if done.processed % 2 == 0 {
                        done.errors += 1;
                    } else {
                        done.succeeded += 1;
                    }
                    ctx.batch_progress(done).await?;
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..4))).await;
                }
                if ctx.payload["fail"] == true {
                    return Err(TaskError::permanent("this chunk fails on purpose"));
                }
                Ok(json!(done.processed))
            })
            .handle("finalize", move |ctx: TaskContext| {
                let f = f.clone();
                async move {
                    let batch = ctx
                        .batch_id()
                        .await?
                        .ok_or_else(|| TaskError::permanent("no batch"))?;
                    *f.lock()
                        .expect("lock")
                        .entry(batch.to_string())
                        .or_default() += 1;
                    let b = ctx
                        .lanes()
                        .batch(&batch)
                        .await?
                        .ok_or_else(|| TaskError::permanent("gone"))?;
                    Ok(json!({"processed": b.processed_items, "children": b.children_done}))
                }
            });
        workers.push(start(w));
    }

    for id in &ids {
        let b = wait_finished(&e.lanes, id).await;
        assert_eq!(b.state, BatchState::Completed, "{b:?}");
        assert_eq!(b.children_done, CHILDREN as u64);
        assert_eq!(b.children_succeeded + b.children_failed, CHILDREN as u64);
        assert_eq!(b.processed_items, CHILDREN as u64 * ITEMS);
        assert_eq!(b.success_count, CHILDREN as u64 * 3);
        assert_eq!(b.error_count, CHILDREN as u64 * 2);
        assert_eq!(
            b.result,
            Some(json!({"processed": CHILDREN as u64 * ITEMS, "children": CHILDREN}))
        );
    }
    for w in workers {
        w.shutdown().await;
    }
    let finals = finals.lock().expect("lock").clone();
    assert_eq!(finals.len(), BATCHES, "every batch finalized");
    assert!(
        finals.values().all(|n| *n == 1),
        "each batch finalized exactly once: {finals:?}"
    );
    let failed: u64 = {
        let mut n = 0;
        for id in &ids {
            n += info(&e.lanes, id).await.children_failed;
        }
        n
    };
    let expected_failed = (0..BATCHES)
        .flat_map(|b| (0..CHILDREN).map(move |c| (b + c) % 5 == 0))
        .filter(|f| *f)
        .count() as u64;
    assert_eq!(failed, expected_failed);
}

/// A running child stopped through `cancel_batch` sees it through its context and ends; the
/// finalize task still runs.
#[tokio::test]
async fn cancelling_a_batch_stops_children_running_in_a_worker() {
    let e = env().await;
    let id = e
        .lanes
        .create_batch(
            "slow",
            BatchSpec::new(children(6))
                .total_items(6000)
                .finalize(NewTask::new("finalize", json!({}))),
        )
        .await
        .expect("create");
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["slow"], 2))
        .handle("chunk", |ctx: TaskContext| async move {
            let mut done = ctx.child_progress().await?.unwrap_or_default();
            while done.processed < 1000 {
                if ctx.is_cancelled() {
                    break;
                }
                done.processed += 1;
                done.succeeded += 1;
                if done.processed % 10 == 0
                    && ctx.batch_progress(done).await? == BatchState::Cancelled
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            ctx.batch_progress(done).await?;
            Ok(Value::from(done.processed))
        })
        .handle("finalize", |ctx: TaskContext| async move {
            let batch = ctx
                .batch_id()
                .await?
                .ok_or_else(|| TaskError::permanent("no batch"))?;
            let b = ctx
                .lanes()
                .batch(&batch)
                .await?
                .ok_or_else(|| TaskError::permanent("gone"))?;
            Ok(json!({"state": b.state, "processed": b.processed_items}))
        });
    let running = start(w);
    // Let the first two children get going.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while info(&e.lanes, &id).await.processed_items < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "children never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = e.lanes.cancel_batch(&id).await.expect("cancel");
    assert!(
        matches!(
            out,
            BatchCancel::Cancelled {
                removed: 4,
                stopping: 2
            }
        ),
        "{out:?}"
    );
    let b = wait_finished(&e.lanes, &id).await;
    running.shutdown().await;
    assert_eq!(b.state, BatchState::Cancelled);
    assert_eq!(b.children_done, 6);
    assert_eq!(b.children_cancelled + b.children_succeeded, 6);
    assert!(
        b.processed_items < 2000,
        "the running children stopped early: {b:?}"
    );
    assert_eq!(b.processed_items, b.success_count + b.error_count);
    let result = b.result.expect("finalize result");
    assert_eq!(result["state"], "cancelled");
    assert_eq!(result["processed"], b.processed_items);
}
