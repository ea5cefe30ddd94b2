//! Engine benchmarks: no-op tasks through the real engine and a real Redis.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lanes_queue::{Config, Lanes, NewTask, Worker, WorkerConfig};
use lanes_testkit::ChildGuard;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::report::Row;

pub struct Settings {
    pub url: String,
    /// Port of the Redis started by the bench (for redis-benchmark); parsed from `url` otherwise.
    pub redis_port: Option<u16>,
    pub tasks: usize,
    pub samples: usize,
    pub worker_bin: PathBuf,
}

pub async fn run_all(cfg: &Settings) -> Result<Vec<Row>> {
    let mut rows = redis_ceiling(cfg)?;
    let ceiling = rows.iter().filter_map(|r| r.per_sec).fold(0.0, f64::max);
    rows.push(enqueue_single(cfg).await?);
    rows.push(enqueue_bulk(cfg).await?);
    let mut best: f64 = 0.0;
    for c in [1, 8, 64] {
        let row = process_in_process(cfg, c).await?;
        best = best.max(row.per_sec.unwrap_or(0.0));
        rows.push(row);
    }
    let row = process_in_processes(cfg, 2, 32).await?;
    best = best.max(row.per_sec.unwrap_or(0.0));
    rows.push(row);
    rows.push(latency(cfg).await?);
    rows.extend(crate::keys::keyed_vs_unkeyed(cfg).await?);
    rows.push(crate::keys::lock_latency(cfg).await?);
    if ceiling > 0.0 {
        rows.push(Row::ratio(
            "ratio: raw ceiling / best processing rate",
            ceiling / best.max(1.0),
            format!("target ≤ 3.0 (ceiling {ceiling:.0}/s, best {best:.0} tasks/s)"),
        ));
    }
    Ok(rows)
}

fn port_of(cfg: &Settings) -> Option<(String, u16)> {
    if let Some(p) = cfg.redis_port {
        return Some(("127.0.0.1".into(), p));
    }
    let rest = cfg.url.split("://").nth(1)?;
    let hostport = rest.rsplit('@').next()?.split('/').next()?;
    let (host, port) = hostport.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// `redis-benchmark` on the same server: SET and LPUSH, 50 clients, no pipelining.
fn redis_ceiling(cfg: &Settings) -> Result<Vec<Row>> {
    let Some((host, port)) = port_of(cfg) else {
        eprintln!("redis-benchmark skipped: cannot read host:port from the Redis URL");
        return Ok(Vec::new());
    };
    eprintln!("running redis-benchmark (raw round-trip ceiling)...");
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            &host,
            "-p",
            &port.to_string(),
            "-t",
            "set,lpush",
            "-n",
            "200000",
            "-c",
            "50",
            "-q",
        ])
        .stdin(Stdio::null())
        .output()
        .context("run redis-benchmark (Debian package redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    // Lines look like "SET: 98765.43 requests per second, p50=0.255 msec"; progress uses \r.
    for line in text.split(['\n', '\r']) {
        let Some((name, rest)) = line.split_once(": ") else {
            continue;
        };
        let Some(rps) = rest
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<f64>().ok())
        else {
            continue;
        };
        if rest.contains("requests per second") {
            rows.push(Row::rate(
                format!("redis-benchmark {name} (50 clients)"),
                rps,
                "raw Redis round-trip ceiling",
            ));
        }
    }
    if rows.is_empty() {
        bail!("redis-benchmark printed no rates: {text}");
    }
    Ok(rows)
}

pub(crate) async fn fresh(cfg: &Settings, tag: &str) -> Result<Lanes> {
    let prefix = format!(
        "bench-{tag}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() % 1000 + fastrand_u32()
    );
    Ok(Lanes::connect(
        &cfg.url,
        Config {
            prefix,
            ..Config::default()
        },
    )
    .await?)
}

fn fastrand_u32() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u128)
        .unwrap_or(0)
}

/// Deletes a run's keys (SCAN + UNLINK) so runs do not add up in Redis.
pub(crate) async fn cleanup(lanes: &Lanes) -> Result<()> {
    let mut conn = lanes.connection();
    let pattern = format!("{}:*", lanes.keys().prefix());
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(keys)
                .query_async(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

fn noop() -> NewTask {
    NewTask::new("noop", json!({}))
}

async fn enqueue_single(cfg: &Settings) -> Result<Row> {
    eprintln!("enqueue single...");
    let lanes = fresh(cfg, "single").await?;
    let started = Instant::now();
    let in_flight = 64;
    let per = cfg.tasks / in_flight;
    let mut handles = Vec::new();
    for _ in 0..in_flight {
        let l = lanes.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per {
                l.enqueue("bench", noop()).await?;
            }
            Ok::<_, lanes_queue::Error>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let rate = (per * in_flight) as f64 / started.elapsed().as_secs_f64();
    cleanup(&lanes).await?;
    Ok(Row::rate(
        "enqueue single",
        rate,
        format!(
            "{} tasks, {in_flight} producers in one process",
            per * in_flight
        ),
    ))
}

async fn enqueue_bulk(cfg: &Settings) -> Result<Row> {
    eprintln!("enqueue bulk...");
    let lanes = fresh(cfg, "bulk").await?;
    let started = Instant::now();
    for chunk in (0..cfg.tasks).collect::<Vec<_>>().chunks(1000) {
        lanes
            .enqueue_bulk("bench", chunk.iter().map(|_| noop()).collect())
            .await?;
    }
    let rate = cfg.tasks as f64 / started.elapsed().as_secs_f64();
    cleanup(&lanes).await?;
    Ok(Row::rate(
        "enqueue bulk (1000 per call)",
        rate,
        format!("{} tasks", cfg.tasks),
    ))
}

async fn succeeded(lanes: &Lanes) -> Result<u64> {
    let stats = lanes.keys().queue("bench").stats;
    let n: Option<u64> = redis::cmd("HGET")
        .arg(stats)
        .arg("succeeded")
        .query_async(&mut lanes.connection())
        .await?;
    Ok(n.unwrap_or(0))
}

/// Waits for the first completion, then measures completions per second until all are done.
pub(crate) async fn measure_drain(lanes: &Lanes, total: u64) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let (t0, c0) = loop {
        let n = succeeded(lanes).await?;
        if n > 0 {
            break (Instant::now(), n);
        }
        anyhow::ensure!(Instant::now() < deadline, "no task completed");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    loop {
        let n = succeeded(lanes).await?;
        if n >= total {
            return Ok((n - c0) as f64 / t0.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {n} of {total} tasks completed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn process_in_process(cfg: &Settings, concurrency: usize) -> Result<Row> {
    eprintln!("process, concurrency {concurrency}...");
    let lanes = fresh(cfg, "proc").await?;
    for chunk in (0..cfg.tasks).collect::<Vec<_>>().chunks(1000) {
        lanes
            .enqueue_bulk("bench", chunk.iter().map(|_| noop()).collect())
            .await?;
    }
    let wcfg = WorkerConfig {
        queues: vec!["bench".into()],
        concurrency,
        name: "bench".into(),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(lanes.clone(), wcfg).handle("noop", |_ctx| async { Ok(Value::Null) });
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    let rate = measure_drain(&lanes, cfg.tasks as u64).await?;
    stop.cancel();
    running.await??;
    cleanup(&lanes).await?;
    Ok(Row::rate(
        format!("process no-op, concurrency {concurrency}"),
        rate,
        format!("{} tasks, 1 worker (in-process)", cfg.tasks),
    ))
}

async fn process_in_processes(cfg: &Settings, processes: usize, concurrency: usize) -> Result<Row> {
    eprintln!("process, {processes} worker processes x concurrency {concurrency}...");
    let lanes = fresh(cfg, "procs").await?;
    for chunk in (0..cfg.tasks).collect::<Vec<_>>().chunks(1000) {
        lanes
            .enqueue_bulk("bench", chunk.iter().map(|_| noop()).collect())
            .await?;
    }
    let mut children = Vec::new();
    for i in 0..processes {
        let mut cmd = Command::new(&cfg.worker_bin);
        cmd.args([
            "--queues",
            "bench",
            "--concurrency",
            &concurrency.to_string(),
            "--name",
            &format!("bench-{i}"),
        ])
        .env("REDIS_URL", &cfg.url)
        .env("LANES_PREFIX", lanes.keys().prefix())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
        children.push(
            ChildGuard::spawn(&mut cmd)
                .with_context(|| format!("start {}", cfg.worker_bin.display()))?,
        );
    }
    let rate = measure_drain(&lanes, cfg.tasks as u64).await?;
    for c in &children {
        c.signal(15);
    }
    for mut c in children {
        c.wait_timeout(Duration::from_secs(30));
    }
    cleanup(&lanes).await?;
    Ok(Row::rate(
        format!("process no-op, {processes} processes x {concurrency}"),
        rate,
        format!("{} tasks, `worker` binaries", cfg.tasks),
    ))
}

/// Enqueue → handler start on an idle queue, one task at a time.
async fn latency(cfg: &Settings) -> Result<Row> {
    eprintln!("latency on an idle queue...");
    let lanes = fresh(cfg, "lat").await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let wcfg = WorkerConfig {
        queues: vec!["bench".into()],
        concurrency: 8,
        name: "bench".into(),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(lanes.clone(), wcfg).handle("probe", move |_ctx| {
        let _ = tx.send(Instant::now());
        async { Ok(Value::Null) }
    });
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut samples = Vec::with_capacity(cfg.samples);
    for _ in 0..cfg.samples {
        tokio::time::sleep(Duration::from_millis(3)).await;
        let t = Instant::now();
        lanes
            .enqueue("bench", NewTask::new("probe", json!({})))
            .await?;
        let started = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await?
            .context("worker gone")?;
        samples.push(started.duration_since(t).as_secs_f64() * 1000.0);
    }
    stop.cancel();
    running.await??;
    cleanup(&lanes).await?;
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    Ok(Row::latency(
        "latency enqueue → handler start (idle)",
        pct(0.5),
        pct(0.99),
        format!("{} samples, blocking wait (no polling)", samples.len()),
    ))
}

/// Waits (up to 5 s) until something listens on 127.0.0.1:`port`.
pub(crate) fn wait_listening(port: u16) -> Result<()> {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listened on port {port}")
}
