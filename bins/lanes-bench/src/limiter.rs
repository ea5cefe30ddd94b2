//! Rate-limiter benchmarks: decision latency, achieved rate against the configured one with 8
//! tasks in 4 processes sharing one limiter, and a rate-limited queue through the real engine.
//!
//! Every count is taken on the Redis clock (grant timestamps, task start times), so the rows say
//! what Redis saw, not what one process believed. "Achieved" is `(n − 1) / (last − first)`: n
//! grants span n − 1 intervals, so a limiter delivering exactly its rate scores 1.00.
//! The 4 processes are this binary re-run in the hidden `limiter-child` mode; each records its
//! grants in a Redis list the parent reads.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use lanes_queue::{Lanes, NewTask};
use lanes_ratelimit::bench::{self, WindowReport};
use lanes_ratelimit::{Limits, Rate, ServerTime};
use lanes_testkit::ChildGuard;
use serde_json::json;

use crate::engine::{Settings, cleanup, fresh};
use crate::report::Row;

const PROCESSES: usize = 4;
const TASKS_PER_PROCESS: usize = 2;
/// The long-period row: 50/m, run alongside the others. Its 8 tasks loop for 14 s, then each
/// takes the one grant it is already waiting for (8 × 1.2 s more): about 20 grants over 23 s.
const PER_MINUTE_RUN: Duration = Duration::from_secs(14);
/// The queue benchmark: tasks through a queue limited to this rate, by 2 `worker` processes.
const QUEUE_RATE: &str = "200/s";
const QUEUE_TASKS: usize = 1000;

/// Arguments of one child process (hidden `limiter-child` subcommand).
#[derive(Debug, Args)]
pub struct ChildArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    prefix: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    rate: Rate,
    #[arg(long)]
    tasks: usize,
    #[arg(long)]
    run_ms: u64,
}

/// Child mode: `tasks` loops hammer the limiter for `run_ms`, then the grants (µs, Redis clock)
/// go to the list the parent reads.
pub async fn child(a: ChildArgs) -> Result<()> {
    let lanes = connect(&a.url, &a.prefix).await?;
    let limits = Limits::new(lanes.connection(), &a.prefix)?;
    let limiter = limits.limiter(&a.name, a.rate)?;
    let grants = bench::hammer(&limiter, a.tasks, Duration::from_millis(a.run_ms)).await?;
    let micros: Vec<u64> = grants.iter().map(|t| t.as_micros()).collect();
    let _: usize = redis::cmd("RPUSH")
        .arg(grants_key(&a.prefix, &a.name))
        .arg(micros)
        .query_async(&mut lanes.connection())
        .await?;
    Ok(())
}

fn grants_key(prefix: &str, name: &str) -> String {
    format!("{prefix}:bench:grants:{name}")
}

async fn connect(url: &str, prefix: &str) -> Result<Lanes> {
    Ok(Lanes::connect(
        url,
        lanes_queue::Config {
            prefix: prefix.to_owned(),
            ..lanes_queue::Config::default()
        },
    )
    .await?)
}

pub async fn run_all(cfg: &Settings) -> Result<Vec<Row>> {
    let lanes = fresh(cfg, "rl").await?;
    let prefix = lanes.keys().prefix().to_owned();
    let exe = std::env::current_exe().context("path of lanes-bench")?;

    eprintln!("limiter 50/m for about 23 s, in the background...");
    let per_minute: Rate = "50/m".parse()?;
    let slow = tokio::spawn(in_processes(
        exe.clone(),
        cfg.url.clone(),
        prefix.clone(),
        "per-minute".into(),
        per_minute,
        PER_MINUTE_RUN,
    ));

    let mut rows = vec![decision_latency(&lanes, cfg.samples.max(100) * 4).await?];
    for (rate, run) in [("8/s", 5), ("1000/s", 3)] {
        eprintln!("limiter {rate}, {PROCESSES} processes x {TASKS_PER_PROCESS} tasks...");
        let rate: Rate = rate.parse()?;
        let name = format!("r{}", rate.count());
        let grants = in_processes(
            exe.clone(),
            cfg.url.clone(),
            prefix.clone(),
            name,
            rate,
            Duration::from_secs(run),
        )
        .await?;
        rows.push(limiter_row(&rate, &grants, Duration::from_secs(1), "")?);
    }
    rows.push(queue_limit(cfg).await?);

    eprintln!("waiting for the 50/m run...");
    let grants = slow.await.context("50/m run panicked")??;
    rows.push(limiter_row(
        &per_minute,
        &grants,
        Duration::from_secs(12),
        "; scaled: 50/m measured over ~23 s, not over whole minutes",
    )?);
    cleanup(&lanes).await?;
    Ok(rows)
}

/// Times single `try_acquire` decisions (one EVALSHA round trip each).
async fn decision_latency(lanes: &Lanes, samples: usize) -> Result<Row> {
    eprintln!("limiter decision latency...");
    let limits = Limits::new(lanes.connection(), lanes.keys().prefix())?;
    let limiter = limits.limiter("latency", "1000/s".parse()?)?;
    let s = bench::decision_latency(&limiter, samples).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Row::latency(
        "limiter decision latency (try_acquire)",
        ms(s.p50),
        ms(s.p99),
        format!(
            "{} sequential decisions at 1000/s ({} allowed), max {:.2} ms",
            s.samples,
            s.allowed,
            ms(s.max)
        ),
    ))
}

/// Runs `PROCESSES` children with `TASKS_PER_PROCESS` tasks each against one limiter.
async fn in_processes(
    exe: std::path::PathBuf,
    url: String,
    prefix: String,
    name: String,
    rate: Rate,
    run_for: Duration,
) -> Result<Vec<ServerTime>> {
    let mut children = Vec::new();
    for i in 0..PROCESSES {
        let mut cmd = Command::new(&exe);
        cmd.args(["limiter-child", "--url", &url, "--prefix", &prefix])
            .args(["--name", &name, "--rate", &rate.to_string()])
            .args(["--tasks", &TASKS_PER_PROCESS.to_string()])
            .args(["--run-ms", &run_for.as_millis().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        children.push(
            ChildGuard::spawn(&mut cmd)
                .with_context(|| format!("start limiter child {i} ({})", exe.display()))?,
        );
    }
    let hang_guard = run_for + Duration::from_secs(60);
    let statuses = tokio::task::spawn_blocking(move || {
        children
            .iter_mut()
            .map(|c| c.wait_timeout(hang_guard))
            .collect::<Vec<_>>()
    })
    .await?;
    for (i, status) in statuses.into_iter().enumerate() {
        match status {
            Some(s) if s.success() => {}
            Some(s) => bail!("limiter child {i} failed: {s}"),
            None => bail!("limiter child {i} hung"),
        }
    }
    let lanes = connect(&url, &prefix).await?;
    let micros: Vec<u64> = redis::cmd("LRANGE")
        .arg(grants_key(&prefix, &name))
        .arg(0)
        .arg(-1)
        .query_async(&mut lanes.connection())
        .await?;
    Ok(micros.into_iter().map(ServerTime::from_micros).collect())
}

/// `(n − 1) / (rate × elapsed)`: 1.00 when the grants came exactly at the configured rate.
fn achieved(report: &WindowReport, rate: &Rate) -> f64 {
    let allowed = rate.per_second_f64() * report.elapsed.as_secs_f64();
    if allowed > 0.0 {
        report.grants.saturating_sub(1) as f64 / allowed
    } else {
        0.0
    }
}

/// The fullest window's count, reported for `window` and also checked in `also`.
fn window_note(
    grants: &[ServerTime],
    rate: &Rate,
    window: Duration,
    also: &[Duration],
    over_means: &str,
) -> (WindowReport, String) {
    let over: Vec<String> = std::iter::once(window)
        .chain(also.iter().copied())
        .map(|w| bench::check_windows(grants, rate, w))
        .filter(|r| !r.within_limit())
        .map(|r| {
            format!(
                "{} in {:?} (limit {})",
                r.max_in_window, r.window, r.limit_in_window
            )
        })
        .collect();
    let report = bench::check_windows(grants, rate, window);
    let verdict = if over.is_empty() {
        "never above".to_owned()
    } else {
        format!("{over_means}: {}", over.join(", "))
    };
    let note = format!(
        "max {} in any {:?} window (limit {}, {verdict})",
        report.max_in_window, window, report.limit_in_window
    );
    (report, note)
}

fn limiter_row(rate: &Rate, grants: &[ServerTime], window: Duration, extra: &str) -> Result<Row> {
    ensure!(grants.len() >= 2, "limiter {rate}: too few grants to judge");
    // Grants: also in a tenth of the window and in one emission interval (burst 1: never two).
    let also = [window / 10, rate.emission_interval()];
    let (report, windows) = window_note(grants, rate, window, &also, "OVER THE LIMIT");
    let ratio = achieved(&report, rate);
    let mut row = Row::ratio(
        format!("limiter {rate}, {TASKS_PER_PROCESS} tasks x {PROCESSES} processes"),
        ratio,
        format!(
            "{:.2}/s of {rate}: {} grants over {:.1} s; {windows}{extra}; bar ≥ 0.97",
            ratio * rate.per_second_f64(),
            report.grants,
            report.elapsed.as_secs_f64()
        ),
    );
    row.per_sec = Some(ratio * rate.per_second_f64());
    Ok(row)
}

/// No-op tasks through a queue limited to `QUEUE_RATE`, drained by 2 `worker` processes; the
/// start times (Redis clock) are checked like grants.
async fn queue_limit(cfg: &Settings) -> Result<Row> {
    eprintln!("queue limited to {QUEUE_RATE}, 2 worker processes...");
    let rate: Rate = QUEUE_RATE.parse()?;
    let lanes = fresh(cfg, "rlq").await?;
    let mut ids = Vec::with_capacity(QUEUE_TASKS);
    for chunk in (0..QUEUE_TASKS).collect::<Vec<_>>().chunks(1000) {
        let tasks = chunk.iter().map(|_| NewTask::new("noop", json!({})));
        ids.extend(lanes.enqueue_bulk("bench", tasks.collect()).await?);
    }
    let mut children = Vec::new();
    for i in 0..2 {
        let mut cmd = Command::new(&cfg.worker_bin);
        cmd.args(["--queues", "bench", "--concurrency", "8"])
            .args(["--name", &format!("bench-rl-{i}")])
            .args(["--rate-limit", &format!("bench={QUEUE_RATE}")])
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
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = lanes.queue_stats("bench").await?;
        let done = stats.counters.get("succeeded").copied().unwrap_or(0);
        if done >= QUEUE_TASKS as u64 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "only {done} of {QUEUE_TASKS} tasks done"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for c in &children {
        c.signal(15);
    }
    for mut c in children {
        c.wait_timeout(Duration::from_secs(30));
    }
    let infos = lanes.tasks(&ids).await?;
    let retried = infos.iter().filter(|t| t.attempts != 1).count();
    let starts: Vec<ServerTime> = infos
        .iter()
        .filter_map(|t| t.started_at_ms)
        .map(|ms| ServerTime::from_micros(ms * 1000))
        .collect();
    cleanup(&lanes).await?;
    ensure!(starts.len() >= 2, "queue limit: too few tasks started");
    // Start times carry the workers' scheduling jitter and ms resolution, so only the 1 s
    // window is judged here; the grants themselves are judged by the rows above.
    let (report, windows) = window_note(
        &starts,
        &rate,
        Duration::from_secs(1),
        &[],
        "starts above by fetch jitter",
    );
    let ratio = achieved(&report, &rate);
    let mut row = Row::ratio(
        format!("queue limited to {rate}, 2 processes x 8"),
        ratio,
        format!(
            "{:.1} tasks/s of {rate}: {} tasks over {:.1} s ({retried} with attempts ≠ 1); {windows}",
            ratio * rate.per_second_f64(),
            report.grants,
            report.elapsed.as_secs_f64()
        ),
    );
    row.per_sec = Some(ratio * rate.per_second_f64());
    Ok(row)
}
