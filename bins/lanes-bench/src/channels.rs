//! The channel collector (seed 004) against the seed's own approach, same fake, same run:
//! 8 channels of skewed sizes at concurrency 4, collected (a) the seed's way, fixed batches of
//! 4 each awaited whole (`asyncio.gather` per batch: the slowest channel of a batch holds the
//! next batch back), and (b) the Lanes way, one job whose channels a collector worker runs 4 at
//! a time with no barrier. Both use the same per-channel code (pages of 100, photos 4 at a
//! time, checkpoints), so the difference is the scheduling alone. The fake answers with a fixed
//! latency per page and per photo and a rate limit well above what either needs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use collector::CollectorConfig;
use collector::api::ApiConfig;
use lanes_fakes::channels::{ChannelSpec, ChannelsConfig, Directory};
use lanes_queue::{KindConfig, Lanes, WorkerConfig};
use tokio_util::sync::CancellationToken;

use crate::engine::{Settings, cleanup, fresh};
use crate::report::Row;

/// Channels in flight at once, both ways (the seed's `concurrent_limit`).
const CONCURRENCY: usize = 4;
/// Rounds of each approach; the best of each is reported.
const ROUNDS: usize = 2;

/// The seed's scenario: 8 channels of very different sizes, listed in no particular order.
fn channels() -> Vec<ChannelSpec> {
    [
        ("bench_archive", 2000),
        ("bench_alerts", 150),
        ("bench_digest", 400),
        ("bench_jobs", 100),
        ("bench_market", 1600),
        ("bench_events", 250),
        ("bench_quiet", 60),
        ("bench_photos", 900),
    ]
    .into_iter()
    .map(|(name, n)| ChannelSpec::new(name, n).photos(150))
    .collect()
}

struct Run {
    wall: Duration,
    messages: u64,
    images: u64,
}

pub async fn run_all(cfg: &Settings) -> Result<Vec<Row>> {
    eprintln!("running the channel collector against the fixed-batch baseline...");
    let specs = channels();
    let names: Vec<String> = specs.iter().map(|s| s.username.clone()).collect();
    let total: u64 = specs.iter().map(|s| s.messages).sum();
    let fake = ChannelsConfig {
        rate_per_sec: 1_000_000.0,
        burst: 100_000,
        history_latency: Duration::from_millis(30),
        file_latency: Duration::from_millis(8),
        ..ChannelsConfig::default()
    };
    let (url, _stop) = serve_fake(Directory::new(specs), fake).await?;
    let scratch = std::env::temp_dir().join(format!("lanes-bench-channels-{}", std::process::id()));
    let mut best_fixed: Option<Run> = None;
    let mut best_lanes: Option<Run> = None;
    let mut identical = true;
    for round in 0..ROUNDS {
        let fixed_dir = scratch.join(format!("fixed-{round}"));
        let lanes_dir = scratch.join(format!("lanes-{round}"));
        let fixed = fixed_batches(cfg, &url, &fixed_dir, &names).await?;
        let run = lanes_job(cfg, &url, &lanes_dir, &names).await?;
        for r in [&fixed, &run] {
            if r.messages != total {
                bail!("a run collected {} of {total} messages", r.messages);
            }
        }
        identical &= tree(&fixed_dir) == tree(&lanes_dir);
        if best_fixed.as_ref().is_none_or(|b| fixed.wall < b.wall) {
            best_fixed = Some(fixed);
        }
        if best_lanes.as_ref().is_none_or(|b| run.wall < b.wall) {
            best_lanes = Some(run);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let (Some(fixed), Some(run)) = (best_fixed, best_lanes) else {
        bail!("no round ran");
    };
    let rate = |r: &Run| r.messages as f64 / r.wall.as_secs_f64().max(1e-9);
    let note = |r: &Run, how: &str| {
        format!(
            "{how}; wall {:.2} s, {} msgs + {} photos, best of {ROUNDS}",
            r.wall.as_secs_f64(),
            r.messages,
            r.images
        )
    };
    Ok(vec![
        Row::rate(
            "channels: lanes job, 8 skewed, c=4 (msg/s)",
            rate(&run),
            note(&run, "no barrier"),
        ),
        Row::rate(
            "channels: seed fixed batches of 4 (msg/s)",
            rate(&fixed),
            note(&fixed, "asyncio.gather per batch"),
        ),
        Row::ratio(
            "ratio: lanes / fixed batches (msg/s)",
            rate(&run) / rate(&fixed).max(1e-9),
            format!(
                "same fake (30 ms/page, 8 ms/photo), same per-channel code; outputs {}",
                if identical { "identical" } else { "DIFFER" }
            ),
        ),
    ])
}

/// Serves the fake on a free loopback port until the returned guard is dropped.
async fn serve_fake(
    dir: Directory,
    cfg: ChannelsConfig,
) -> Result<(String, tokio_util::sync::DropGuard)> {
    let app = axum::Router::new().nest("/channels", lanes_fakes::channels::router_with(dir, cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the channel API fake")?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await;
    });
    Ok((format!("http://{addr}/channels"), stop.drop_guard()))
}

fn collector_cfg(url: &str, data_dir: &Path) -> Result<CollectorConfig> {
    Ok(CollectorConfig {
        api: ApiConfig {
            base_url: url.to_owned(),
            token: "bench:token".into(),
            timeout: Duration::from_secs(30),
            max_flood_wait: Duration::from_secs(60),
        },
        api_rate: "100000/s,burst=1000".parse()?,
        data_dir: data_dir.to_path_buf(),
        download_concurrency: 4,
        lock_wait: Duration::from_secs(30),
    })
}

/// The seed: `for batch in batches_of_4: await asyncio.gather(*batch)`.
async fn fixed_batches(cfg: &Settings, url: &str, dir: &Path, names: &[String]) -> Result<Run> {
    let lanes = fresh(cfg, "channels-fixed").await?;
    let c = collector::collector(&lanes, &collector_cfg(url, dir)?)?;
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let (mut messages, mut images) = (0, 0);
    for batch in names.chunks(CONCURRENCY) {
        let runs = batch
            .iter()
            .map(|name| c.collect(name, 1, "baseline", &(), &cancel));
        for r in futures::future::join_all(runs).await {
            let s = r.context("baseline collection")?;
            messages += s.new_messages;
            images += s.new_images;
        }
    }
    let wall = started.elapsed();
    cleanup(&lanes).await?;
    Ok(Run {
        wall,
        messages,
        images,
    })
}

/// Lanes: one job, a collector worker with 4 slots, no barrier.
async fn lanes_job(cfg: &Settings, url: &str, dir: &Path, names: &[String]) -> Result<Run> {
    let lanes: Lanes = fresh(cfg, "channels-lanes").await?;
    let wcfg = WorkerConfig {
        name: "bench-collector".into(),
        queues: vec![collector::QUEUE.into()],
        concurrency: CONCURRENCY,
        ..WorkerConfig::default()
    };
    let worker = collector::worker(
        lanes.clone(),
        wcfg,
        KindConfig::default(),
        collector_cfg(url, dir)?,
    )?;
    let stop = CancellationToken::new();
    let handle = tokio::spawn(worker.run(stop.clone()));
    let started = Instant::now();
    let job = collector::dispatch_job(&lanes, names.to_vec()).await?;
    let status = loop {
        let s = collector::job_status(&lanes, &job)
            .await?
            .context("the job vanished")?;
        if s.channels_done == s.channels_total {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the collect job did not finish in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let wall = started.elapsed();
    stop.cancel();
    handle.await??;
    if status.channels_succeeded != status.channels_total {
        bail!("channels failed: {:?}", status.channels);
    }
    cleanup(&lanes).await?;
    Ok(Run {
        wall,
        messages: status.messages,
        images: status.images,
    })
}

/// Every file under `dir` with its bytes, sorted by path.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let (Ok(bytes), Ok(rel)) = (std::fs::read(&p), p.strip_prefix(dir)) {
                out.push((rel.to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}
