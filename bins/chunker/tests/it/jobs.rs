//! Product jobs end to end: 1000 products through 8 chunks on 2 chunker processes with exact
//! counters and zero 429s, 429s handled when an API's limit is lower than the limiter's, cancel
//! mid-job, a chunker killed mid-job, small jobs as one task, junk lists refused.

use std::time::Duration;

use chunker::{DispatchError, JobCancel, JobState, cancel_job, dispatch_job, job_status};
use lanes_queue::{BatchId, BatchState};
use lanes_testkit::Prefix;
use serde_json::Value;

use crate::support::{E2E, Fakes, Flags, lanes, products, spawn_chunker, wait_job};

const MATCHED: Flags = Flags {
    sp_api_rate: "200/s",
    keepa_rate: "100/s",
    concurrency: 4,
    lease: "15s",
};

/// How many of `events` of the queue's batch stream name this batch and event.
async fn count_events(lanes: &lanes_queue::Lanes, batch: &BatchId, event: &str) -> usize {
    let mut n = 0;
    let mut after: Option<String> = None;
    loop {
        let page = lanes
            .batch_events(chunker::QUEUE, after.as_deref(), 1000)
            .await
            .expect("events");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        n += page
            .iter()
            .filter(|e| &e.batch == batch && e.event == event)
            .count();
    }
    n
}

fn error_count(result: &Value, prefix: &str) -> u64 {
    result["top_errors"]
        .as_array()
        .expect("top_errors")
        .iter()
        .filter(|e| e["message"].as_str().unwrap_or("").starts_with(prefix))
        .map(|e| e["count"].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_products_in_eight_chunks_on_three_processes_with_zero_429s() {
    let _turn = E2E.lock().await;
    let prefix = Prefix::new();
    let fakes = Fakes::start(200.0, 100.0).await;
    let lanes = lanes(&prefix).await;
    let _a = spawn_chunker(&prefix, &fakes, "chunker-a", &MATCHED);
    let _b = spawn_chunker(&prefix, &fakes, "chunker-b", &MATCHED);
    let _c = spawn_chunker(&prefix, &fakes, "chunker-c", &MATCHED);
    let (list, errors) = products(1000, 2);
    let id = dispatch_job(&lanes, list).await.expect("dispatch");

    let mut seen_progress = false;
    let s = wait_job(&lanes, &id, Duration::from_secs(120), |s| {
        seen_progress |=
            s.status == JobState::Processing && s.processed_items > 0 && s.processed_items < 1000;
        s.status.is_final()
    })
    .await;
    assert_eq!(s.status, JobState::Completed, "{s:?}");
    assert_eq!(s.chunks, 8);
    assert_eq!(
        (s.processed_items, s.total_items, s.progress),
        (1000, 1000, 100)
    );
    assert_eq!(s.error_count, errors as u64, "{s:?}");
    assert_eq!(s.success_count + s.error_count, 1000);

    let result = s.result.expect("the finalize summary");
    assert_eq!(result["status"], "completed");
    assert_eq!(result["processed_items"], 1000);
    assert_eq!(result["error_count"], errors);
    assert_eq!(error_count(&result, "SP-API catalog: 404 NotFound"), 3);
    assert_eq!(
        error_count(&result, "SP-API catalog: 500 InternalFailure"),
        3
    );
    assert_eq!(error_count(&result, "not an ASIN"), 2);
    assert!(result["duration_ms"].as_u64().unwrap_or(0) > 0);
    assert_eq!(result["best_sellers"].as_array().map(Vec::len), Some(5));

    // The finalize task ran exactly once.
    let batch = BatchId::from(id.clone());
    let b = lanes.batch(&batch).await.expect("read").expect("batch");
    assert_eq!(b.state, BatchState::Completed);
    assert_eq!((b.children_done, b.children_succeeded), (8, 8));
    assert_eq!(count_events(&lanes, &batch, "finalizing").await, 1);
    assert_eq!(count_events(&lanes, &batch, "completed").await, 1);
    let fin = lanes
        .task(b.finalize_task.as_ref().expect("finalize id"))
        .await
        .expect("read")
        .expect("finalize task");
    assert_eq!(fin.attempts, 1);

    // The limiters kept both APIs under their limits: not one 429.
    let sp = fakes.stats("spapi").await;
    let keepa = fakes.stats("keepa").await;
    assert_eq!(sp["refused_429"], 0, "SP-API {sp}");
    assert_eq!(keepa["refused_429"], 0, "Keepa {keepa}");
    // Every product called each API once: 992 found + 3 not found, 3 × 3 attempts on the 500s.
    assert_eq!(sp["served"], 992 + 3 + 9, "SP-API {sp}");
    assert_eq!(keepa["served"], 992, "Keepa {keepa}");
    assert!(seen_progress, "progress was readable while the job ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apis_slower_than_the_limiters_answer_429s_that_are_paused_and_retried() {
    let _turn = E2E.lock().await;
    // First SP-API, then Keepa allows a fraction of what its limiter is set to (200/s, 100/s).
    for (spapi_rate, keepa_rate, throttled) in [(40.0, 100.0, "spapi"), (200.0, 30.0, "keepa")] {
        let prefix = Prefix::new();
        let fakes = Fakes::start(spapi_rate, keepa_rate).await;
        let lanes = lanes(&prefix).await;
        let _a = spawn_chunker(&prefix, &fakes, "chunker-a", &MATCHED);
        let _b = spawn_chunker(&prefix, &fakes, "chunker-b", &MATCHED);
        let (list, errors) = products(400, 0);
        let id = dispatch_job(&lanes, list).await.expect("dispatch");
        let s = wait_job(&lanes, &id, Duration::from_secs(120), |s| {
            s.status.is_final()
        })
        .await;
        assert_eq!(s.status, JobState::Completed, "{s:?}");
        assert_eq!((s.processed_items, s.total_items), (400, 400));
        assert_eq!(s.error_count, errors as u64);
        assert_eq!(s.success_count, 400 - errors as u64);

        let sp = fakes.stats("spapi").await;
        let keepa = fakes.stats("keepa").await;
        let slow = fakes.stats(throttled).await;
        eprintln!(
            "{throttled} slower than its limiter: 429s from SP-API {}, Keepa {}",
            sp["refused_429"], keepa["refused_429"]
        );
        assert!(
            slow["refused_429"].as_u64().unwrap_or(0) > 0,
            "{throttled} refused some calls: {slow}"
        );
        let refused =
            sp["refused_429"].as_u64().unwrap_or(0) + keepa["refused_429"].as_u64().unwrap_or(0);
        let result = s.result.expect("summary");
        assert_eq!(
            result["throttled_429"], refused,
            "every 429 was seen and handled"
        );
        // Retried after each 429, every product still reached each API exactly once.
        assert_eq!(sp["served"], 394 + 3 + 9, "SP-API {sp}");
        assert_eq!(keepa["served"], 394, "Keepa {keepa}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_job_stops_the_remaining_items_and_keeps_counters_consistent() {
    let _turn = E2E.lock().await;
    let prefix = Prefix::new();
    let fakes = Fakes::start(50.0, 50.0).await;
    let lanes = lanes(&prefix).await;
    let slow = Flags {
        sp_api_rate: "50/s",
        keepa_rate: "50/s",
        ..MATCHED
    };
    let _a = spawn_chunker(&prefix, &fakes, "chunker-a", &slow);
    let _b = spawn_chunker(&prefix, &fakes, "chunker-b", &slow);
    let (list, _) = products(1000, 0);
    let id = dispatch_job(&lanes, list).await.expect("dispatch");
    wait_job(&lanes, &id, Duration::from_secs(60), |s| {
        s.processed_items >= 100
    })
    .await;

    let out = cancel_job(&lanes, &id).await.expect("cancel");
    assert!(matches!(out, JobCancel::Stopping { .. }), "{out:?}");
    let s = wait_job(&lanes, &id, Duration::from_secs(60), |s| {
        s.status.is_final()
    })
    .await;
    assert_eq!(s.status, JobState::Cancelled, "{s:?}");
    assert!(
        s.processed_items < 1000,
        "the remaining items were not processed: {s:?}"
    );
    assert_eq!(s.success_count + s.error_count, s.processed_items);
    let result = s.result.expect("the finalize step still ran");
    assert_eq!(result["status"], "cancelled");
    assert_eq!(result["processed_items"], s.processed_items);

    let b = lanes
        .batch(&BatchId::from(id.clone()))
        .await
        .expect("read")
        .expect("batch");
    assert_eq!(b.children_done, 8);
    assert!(b.children_cancelled > 0, "{b:?}");
    // Nothing runs any more.
    let before = fakes.stats("spapi").await["served"].clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fakes.stats("spapi").await["served"], before);
    assert!(matches!(
        cancel_job(&lanes, &id).await.expect("cancel"),
        JobCancel::Finished(JobState::Cancelled)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunker_killed_mid_job_leaves_exact_counters() {
    let _turn = E2E.lock().await;
    let prefix = Prefix::new();
    let fakes = Fakes::start(200.0, 100.0).await;
    let lanes = lanes(&prefix).await;
    let flags = Flags {
        concurrency: 8,
        lease: "2s",
        ..MATCHED
    };
    let a = spawn_chunker(&prefix, &fakes, "chunker-a", &flags);
    let _b = spawn_chunker(&prefix, &fakes, "chunker-b", &flags);
    let (list, errors) = products(1000, 0);
    let id = dispatch_job(&lanes, list).await.expect("dispatch");
    wait_job(&lanes, &id, Duration::from_secs(60), |s| {
        s.processed_items >= 250
    })
    .await;
    drop(a); // SIGKILL: its chunks come back when their leases expire and resume.
    let s = wait_job(&lanes, &id, Duration::from_secs(120), |s| {
        s.status.is_final()
    })
    .await;
    assert_eq!(s.status, JobState::Completed, "{s:?}");
    assert_eq!((s.processed_items, s.total_items), (1000, 1000));
    assert_eq!(s.error_count, errors as u64);
    assert_eq!(s.success_count, 1000 - errors as u64);
    let sp = fakes.stats("spapi").await;
    assert_eq!(sp["refused_429"], 0, "{sp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_job_runs_as_one_task_and_junk_lists_are_refused() {
    let _turn = E2E.lock().await;
    let prefix = Prefix::new();
    let fakes = Fakes::start(200.0, 100.0).await;
    let lanes = lanes(&prefix).await;
    let _a = spawn_chunker(&prefix, &fakes, "chunker-a", &MATCHED);
    let (list, errors) = products(60, 1);
    let id = dispatch_job(&lanes, list).await.expect("dispatch");
    let s = wait_job(&lanes, &id, Duration::from_secs(60), |s| {
        s.status.is_final()
    })
    .await;
    assert_eq!(s.status, JobState::Completed, "{s:?}");
    assert_eq!(s.chunks, 0, "at most 100 products run as one task");
    assert_eq!(
        (s.processed_items, s.total_items, s.error_count),
        (60, 60, errors as u64)
    );
    assert!(
        lanes
            .batch(&BatchId::from(id.clone()))
            .await
            .expect("read")
            .is_none()
    );
    let result = s.result.expect("summary");
    assert_eq!(result["mode"], "single");
    assert_eq!(error_count(&result, "not an ASIN"), 1);

    let refused = dispatch_job(&lanes, vec!["junk".into(), "b07xj8c8f5".into()]).await;
    assert!(
        matches!(refused, Err(DispatchError::AllJunk { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        dispatch_job(&lanes, vec![]).await,
        Err(DispatchError::Empty)
    ));
    let missing = "analysis.0123456789abcdef0123456789abcdef"
        .parse()
        .expect("id");
    assert!(job_status(&lanes, &missing).await.expect("read").is_none());
}
