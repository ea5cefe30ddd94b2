//! Scale-out: no-op throughput with 1, 2 and 4 `worker` processes, against one Redis and against
//! a local 3-master Redis Cluster with the tasks spread over several queues (each queue is one
//! hash tag, so queues are what spread over the cluster's shards).
//!
//! Everything runs on this machine: the workers, the bench and every Redis node share its cores,
//! so the table shows how the engine behaves as processes are added here, not what more machines
//! would give.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lanes_queue::{Lanes, NewTask};
use lanes_testkit::{ChildGuard, RedisCluster};
use serde_json::json;

use crate::engine::{Settings, cleanup, fresh};
use crate::report::Row;

/// Queues the tasks are spread over (several hash tags, so several slots and shards).
const QUEUES: usize = 6;
const CONCURRENCY: usize = 32;
const PROCESSES: [usize; 3] = [1, 2, 4];

pub async fn run_all(cfg: &Settings) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut single = Vec::new();
    for n in PROCESSES {
        let rate = run(cfg, &cfg.url, n, false).await?;
        single.push(rate);
        rows.push(row("one Redis", n, rate, cfg.tasks));
    }
    eprintln!("starting a local 3-master Redis Cluster...");
    let cluster = RedisCluster::start().map_err(anyhow::Error::msg)?;
    let mut clustered = Vec::new();
    for n in PROCESSES {
        let rate = run(cfg, cluster.url(), n, true).await?;
        clustered.push(rate);
        rows.push(row("3-master cluster", n, rate, cfg.tasks));
    }
    let last = PROCESSES.len() - 1;
    rows.push(Row::ratio(
        "scaling: 4 processes / 1, one Redis",
        single[last] / single[0].max(1.0),
        "same machine: workers and Redis share 2 cores",
    ));
    rows.push(Row::ratio(
        "scaling: 4 processes / 1, 3-master cluster",
        clustered[last] / clustered[0].max(1.0),
        "same machine: workers and 3 Redis nodes share 2 cores",
    ));
    rows.push(Row::ratio(
        "cluster / one Redis, 4 processes",
        clustered[last] / single[last].max(1.0),
        format!("{QUEUES} queues in both; the cluster's nodes compete for the same cores"),
    ));
    Ok(rows)
}

fn row(topology: &str, processes: usize, rate: f64, tasks: usize) -> Row {
    Row::rate(
        format!("no-op, {topology}, {processes} x {CONCURRENCY}"),
        rate,
        format!("{tasks} tasks over {QUEUES} queues, `worker` processes"),
    )
}

fn queue(i: usize) -> String {
    format!("scale{i}")
}

/// Enqueues `cfg.tasks` no-ops round-robin over the queues, starts `processes` workers that
/// consume them all, and measures completions per second.
async fn run(cfg: &Settings, url: &str, processes: usize, cluster: bool) -> Result<f64> {
    let where_ = if cluster { "cluster" } else { "one redis" };
    eprintln!("scale-out, {where_}, {processes} worker processes x {CONCURRENCY}...");
    let settings = Settings {
        url: url.to_owned(),
        redis_port: None,
        tasks: cfg.tasks,
        samples: cfg.samples,
        worker_bin: cfg.worker_bin.clone(),
    };
    let lanes = fresh(&settings, "scale").await?;
    let per_queue = cfg.tasks / QUEUES;
    for q in 0..QUEUES {
        for start in (0..per_queue).step_by(1000) {
            let n = 1000.min(per_queue - start);
            let tasks = (0..n).map(|_| NewTask::new("noop", json!({}))).collect();
            lanes.enqueue_bulk(&queue(q), tasks).await?;
        }
    }
    let total = (per_queue * QUEUES) as u64;
    let queues: Vec<String> = (0..QUEUES).map(queue).collect();
    let mut children = Vec::new();
    for i in 0..processes {
        let mut cmd = Command::new(&cfg.worker_bin);
        cmd.args(["--queues", &queues.join(",")])
            .args(["--concurrency", &CONCURRENCY.to_string()])
            .args(["--name", &format!("scale-{i}")])
            .env("REDIS_URL", url)
            .env("LANES_PREFIX", lanes.keys().prefix())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        children.push(
            ChildGuard::spawn(&mut cmd)
                .with_context(|| format!("start {}", cfg.worker_bin.display()))?,
        );
    }
    let rate = drain_rate(&lanes, &queues, total).await?;
    for c in &children {
        c.signal(15); // SIGTERM: finish and hand back
    }
    for mut c in children {
        c.wait_timeout(Duration::from_secs(30));
    }
    // The cluster is dropped with its keys; one Redis is shared with the other benchmarks.
    if !cluster {
        cleanup(&lanes).await?;
    }
    Ok(rate)
}

/// Completions per second over every queue, from the first completion to the last.
async fn drain_rate(lanes: &Lanes, queues: &[String], total: u64) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, u64)> = None;
    loop {
        // One pipeline over every queue: on a cluster it is split by node.
        let done: u64 = lanes
            .queue_stats_many(queues)
            .await?
            .iter()
            .map(|s| s.counters.get("succeeded").copied().unwrap_or(0))
            .sum();
        match first {
            None if done > 0 => first = Some((Instant::now(), done)),
            Some((t0, d0)) if done >= total => {
                return Ok((done - d0) as f64 / t0.elapsed().as_secs_f64());
            }
            _ => {}
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {done} of {total} tasks completed in 600 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
