//! Enqueue: single and bulk, compression, validation.

use std::time::Duration;

use lanes_queue::{Error, NewTask, TaskState};
use serde_json::json;

use crate::support::env;

#[tokio::test]
async fn single_and_bulk_enqueue_return_ids_of_queued_tasks() {
    let e = env().await;
    let one = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", json!({"n": 1})))
        .await
        .expect("enqueue");
    assert_eq!(one.queue(), "jobs");
    let many = e
        .lanes
        .enqueue_bulk(
            "jobs",
            (0..2500)
                .map(|n| NewTask::new("noop", json!({ "n": n })))
                .collect(),
        )
        .await
        .expect("bulk enqueue");
    assert_eq!(many.len(), 2500);
    let stats = e.lanes.queue_stats("jobs").await.expect("stats");
    assert_eq!(stats.queued, 2501);
    assert_eq!(stats.counters.get("enqueued"), Some(&2501));
    let info = e
        .lanes
        .task(&many[10])
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(info.state, TaskState::Queued);
    assert_eq!(
        info.position,
        Some(11),
        "FIFO position after the single task and ten others"
    );
    assert_eq!(
        e.lanes.queues().await.expect("queues"),
        vec!["jobs".to_owned()]
    );
}

#[tokio::test]
async fn large_payloads_are_stored_compressed_and_read_back_intact() {
    let e = env().await;
    let big = json!({ "text": "lorem ipsum ".repeat(5000) });
    let id = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", big.clone()))
        .await
        .expect("enqueue");
    let mut conn = e.lanes.connection();
    let key = e.lanes.keys().queue("jobs").task(id.as_str());
    let (enc, stored): (String, Vec<u8>) = redis::pipe()
        .hget(&key, "enc")
        .hget(&key, "payload")
        .query_async(&mut conn)
        .await
        .expect("read raw");
    assert_eq!(enc, "gz");
    assert!(
        stored.len() < 2000,
        "stored {} bytes for 60 KB of JSON",
        stored.len()
    );
    let batch = e.lanes.fetch("jobs", "w", 1).await.expect("fetch");
    let decoded =
        lanes_queue::codec::decode(&batch.tasks[0].payload, &batch.tasks[0].encoding, 1 << 24)
            .expect("decode");
    assert_eq!(decoded, big);
}

#[tokio::test]
async fn bad_input_is_refused_at_enqueue_with_a_clear_error() {
    let e = env().await;
    let err = e
        .lanes
        .enqueue("no spaces", NewTask::new("noop", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidQueue { .. }), "{err}");
    let err = e
        .lanes
        .enqueue("jobs", NewTask::new("", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidKind { .. }), "{err}");
    let err = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", json!({})).priority(10))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("priority"), "{err}");
    let err = e
        .lanes
        .enqueue(
            "jobs",
            NewTask::new("noop", json!({})).delay(Duration::from_secs(u64::MAX / 4)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidDelay { .. }), "{err}");
    let huge = json!("x".repeat(9 * 1024 * 1024));
    let err = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", huge))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err}");
    assert!("jobs.nothex".parse::<lanes_queue::TaskId>().is_err());
    // Nothing was written by the refused calls.
    assert_eq!(e.lanes.queue_stats("jobs").await.expect("stats").queued, 0);
}

#[tokio::test]
async fn higher_priority_runs_first_and_fifo_holds_within_a_priority() {
    let e = env().await;
    let low = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", json!("low")).priority(1))
        .await
        .expect("enqueue");
    let mid1 = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", json!("mid1")))
        .await
        .expect("enqueue");
    let mid2 = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", json!("mid2")))
        .await
        .expect("enqueue");
    let high = e
        .lanes
        .enqueue("jobs", NewTask::new("noop", json!("high")).priority(9))
        .await
        .expect("enqueue");
    let batch = e.lanes.fetch("jobs", "w", 10).await.expect("fetch");
    let order: Vec<_> = batch.tasks.iter().map(|t| t.lease.id.clone()).collect();
    assert_eq!(order, vec![high, mid1, mid2, low]);
}

#[tokio::test]
async fn delayed_tasks_wait_for_their_time() {
    let e = env().await;
    let id = e
        .lanes
        .enqueue(
            "jobs",
            NewTask::new("noop", json!({})).delay(Duration::from_millis(700)),
        )
        .await
        .expect("enqueue");
    let info = e.lanes.task(&id).await.expect("read").expect("exists");
    assert_eq!(info.state, TaskState::Scheduled);
    let batch = e.lanes.fetch("jobs", "w", 10).await.expect("fetch");
    assert!(batch.tasks.is_empty(), "not due yet");
    let due = batch.next_due_ms.expect("next due time reported");
    assert!(due >= batch.now_ms, "due in the future");
    tokio::time::sleep(Duration::from_millis(due - batch.now_ms + 50)).await;
    let batch = e.lanes.fetch("jobs", "w", 10).await.expect("fetch");
    assert_eq!(batch.tasks.len(), 1);
    assert!(
        batch.now_ms >= info.run_at_ms.expect("run_at"),
        "ran no earlier than its run-at time"
    );
}
