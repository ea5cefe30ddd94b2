//! Keyed-lane and lock benchmarks: 1000 keys × 20 no-op tasks under the serial policy next to the
//! same work unkeyed (order and overlap checked from the handler's own record), and lock
//! acquire+release latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use lanes_queue::{KeyPolicy, NewTask, TaskContext, Worker, WorkerConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::engine::{Settings, cleanup, fresh, measure_drain};
use crate::report::Row;

const KEYS: usize = 1000;
const PER_KEY: usize = 20;
const CONCURRENCY: usize = 64;

type Log = Arc<Mutex<Vec<(u32, u32, Instant, Instant)>>>;

/// Keyed throughput and, for the ratio, the same no-op work unkeyed, in one run.
pub async fn keyed_vs_unkeyed(cfg: &Settings) -> Result<Vec<Row>> {
    eprintln!("keyed: {KEYS} keys x {PER_KEY} tasks, serial, concurrency {CONCURRENCY}...");
    let (unkeyed, _) = drain(cfg, false).await?;
    let (keyed, log) = drain(cfg, true).await?;
    let (violations, overlaps) = check(&log);
    Ok(vec![
        Row::rate(
            format!("process no-op unkeyed, concurrency {CONCURRENCY}"),
            unkeyed,
            format!("{} tasks (reference for the keyed row)", KEYS * PER_KEY),
        ),
        Row::rate(
            format!("process no-op keyed {KEYS} keys x {PER_KEY}, serial"),
            keyed,
            format!("{violations} order violations, {overlaps} overlaps; enqueued key by key"),
        ),
        Row::ratio(
            "ratio: keyed / unkeyed throughput",
            keyed / unkeyed.max(1.0),
            "target ≥ 0.80",
        ),
    ])
}

async fn drain(cfg: &Settings, keyed: bool) -> Result<(f64, Vec<(u32, u32, Instant, Instant)>)> {
    let lanes = fresh(cfg, if keyed { "keyed" } else { "unkeyed" }).await?;
    // Key by key: all 20 tasks of key 0, then of key 1, ... (the hot-key-first order).
    let tasks: Vec<NewTask> = (0..KEYS)
        .flat_map(|k| {
            (0..PER_KEY).map(move |s| {
                let t = NewTask::new("probe", json!({"k": k, "s": s}));
                if keyed {
                    t.key(format!("k{k}"), KeyPolicy::Serial)
                } else {
                    t
                }
            })
        })
        .collect();
    for chunk in tasks.chunks(1000) {
        lanes.enqueue_bulk("bench", chunk.to_vec()).await?;
    }
    let log: Log = Arc::default();
    let l = log.clone();
    let wcfg = WorkerConfig {
        queues: vec!["bench".into()],
        concurrency: CONCURRENCY,
        name: "bench".into(),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(lanes.clone(), wcfg).handle("probe", move |ctx: TaskContext| {
        let l = l.clone();
        async move {
            let start = Instant::now();
            let k = ctx.payload["k"].as_u64().unwrap_or(0) as u32;
            let s = ctx.payload["s"].as_u64().unwrap_or(0) as u32;
            tokio::task::yield_now().await;
            if let Ok(mut log) = l.lock() {
                log.push((k, s, start, Instant::now()));
            }
            Ok(Value::Null)
        }
    });
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    let rate = measure_drain(&lanes, (KEYS * PER_KEY) as u64).await?;
    stop.cancel();
    running.await??;
    cleanup(&lanes).await?;
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    Ok((rate, log))
}

/// Per key: starts in enqueue order (seq never decreases) and no start before the previous end.
fn check(log: &[(u32, u32, Instant, Instant)]) -> (usize, usize) {
    let mut by_key: HashMap<u32, Vec<(u32, Instant, Instant)>> = HashMap::new();
    for (k, s, a, b) in log {
        by_key.entry(*k).or_default().push((*s, *a, *b));
    }
    let (mut violations, mut overlaps) = (0, 0);
    for events in by_key.values_mut() {
        events.sort_by_key(|e| e.1);
        for pair in events.windows(2) {
            violations += usize::from(pair[1].0 < pair[0].0);
            overlaps += usize::from(pair[1].1 < pair[0].2);
        }
    }
    (violations, overlaps)
}

/// Lock acquire + release latency on one key, sequentially.
pub async fn lock_latency(cfg: &Settings) -> Result<Row> {
    eprintln!("lock acquire+release latency...");
    let lanes = fresh(cfg, "lock").await?;
    let locks = lanes_lock::Locks::new(lanes.connection(), lanes.keys().prefix())?;
    let s = lanes_lock::bench::acquire_release_latency(&locks, 2000).await?;
    cleanup(&lanes).await?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    Ok(Row::latency(
        "lock acquire+release",
        ms(s.p50),
        ms(s.p99),
        format!("{} samples, max {:.2} ms", s.samples, ms(s.max)),
    ))
}
