//! Photo analyzer benchmarks (seed 002): image preparation of a 12-megapixel phone photo on one
//! core and the bytes it saves, then photos per minute end to end — snap queued, photo worker
//! (in this process, concurrency 8), Gemini fake on loopback — with the `gemini` limiter off and
//! at 600/m (two calls a photo: at most 300 photos a minute).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use lanes_fakes::gemini::photos::{jpeg, sample_image};
use lanes_fakes::gemini::{GeminiFake, GeminiFakeConfig, Quota};
use lanes_gemini::{ApiKey, GeminiConfig};
use lanes_photos::{SnapState, encode_photo, snap_status, submit_snap};
use lanes_queue::WorkerConfig;
use lanes_ratelimit::Rate;
use photo_worker::{PhotoConfig, PrepareConfig};
use tokio_util::sync::CancellationToken;

use crate::engine::{Settings, cleanup, fresh};
use crate::report::Row;

/// Preparation runs of the 12 MP photo.
const PREPARE_RUNS: usize = 8;
/// Photos per end-to-end run without a limit, and with the 600/m limit.
const OPEN_PHOTOS: usize = 100;
const LIMITED_PHOTOS: usize = 50;
const LIMIT: &str = "600/m";
const KEY: &str = "bench-key";

pub async fn run_all(cfg: &Settings) -> Result<Vec<Row>> {
    println!("photos: preparing a 12-megapixel JPEG, then end to end against the Gemini fake");
    let mut rows = prepare_rows()?;
    rows.push(end_to_end(cfg, None, OPEN_PHOTOS).await?);
    rows.push(end_to_end(cfg, Some(LIMIT), LIMITED_PHOTOS).await?);
    Ok(rows)
}

/// A phone photo: 4000 × 3000 with sensor-like grain, JPEG quality 90.
fn twelve_megapixels() -> Vec<u8> {
    jpeg(&sample_image("red", 4000, 3000, 6, 12), 90)
}

fn prepare_rows() -> Result<Vec<Row>> {
    let photo = twelve_megapixels();
    let cfg = PrepareConfig::default();
    // One warm-up, then timed runs on this thread: one core.
    let first = photo_worker::prepare::prepare(&photo, &cfg).context("prepare")?;
    let started = Instant::now();
    for _ in 0..PREPARE_RUNS {
        std::hint::black_box(photo_worker::prepare::prepare(&photo, &cfg).context("prepare")?);
    }
    let secs = started.elapsed().as_secs_f64();
    let per_sec = PREPARE_RUNS as f64 / secs;
    let i = &first.info;
    let saved = 1.0 - i.sent_bytes as f64 / i.bytes as f64;
    Ok(vec![
        Row::rate(
            "photos: prepare 12 MP JPEG -> 1024 px (1 core)",
            per_sec,
            format!(
                "{}x{} q90 decoded, oriented, downscaled to {}x{}, JPEG q{}; {:.0} ms a photo",
                i.width,
                i.height,
                i.sent_width,
                i.sent_height,
                cfg.jpeg_quality,
                secs * 1000.0 / PREPARE_RUNS as f64
            ),
        ),
        Row::ratio(
            "photos: bytes sent / bytes received",
            i.sent_bytes as f64 / i.bytes as f64,
            format!(
                "{:.0}% saved: {:.2} MB in, {:.0} KB to Gemini (and fewer image tokens)",
                saved * 100.0,
                i.bytes as f64 / 1e6,
                i.sent_bytes as f64 / 1e3
            ),
        ),
    ])
}

/// Photos a minute through the real engine, one worker (concurrency 8) and the fake.
async fn end_to_end(cfg: &Settings, limit: Option<&str>, n: usize) -> Result<Row> {
    let lanes = fresh(cfg, "photos").await?;
    let fake = GeminiFake::new(GeminiFakeConfig {
        key: Some(KEY.into()),
        // Gemini's own quota, when the fleet limits itself to it.
        quota: limit.map(|_| Quota::per_minute(600)),
        ..GeminiFakeConfig::default()
    });
    let stop = CancellationToken::new();
    let url = fake.spawn(stop.clone()).await?;
    let mut photos_cfg = PhotoConfig::new(GeminiConfig::new(url, ApiKey::new(KEY)));
    photos_cfg.rate = limit.unwrap_or("1000000/s").parse::<Rate>()?;
    let worker = photo_worker::worker(
        lanes.clone(),
        WorkerConfig {
            name: "bench-photos".into(),
            queues: vec![lanes_photos::QUEUE.into()],
            concurrency: 8,
            ..WorkerConfig::default()
        },
        photo_worker::kind_config(),
        photos_cfg,
    )?;
    let worker = tokio::spawn(worker.run(stop.clone()));

    // Phone photos of 1600 × 1200 in four colours (the fake tells them apart).
    let photos: Vec<String> = ["red", "blue", "green", "black"]
        .iter()
        .enumerate()
        .map(|(i, c)| encode_photo(&jpeg(&sample_image(c, 1600, 1200, 6, i as u64), 85)))
        .collect();
    let snap: Vec<String> = (0..n).map(|i| photos[i % photos.len()].clone()).collect();
    // One snap of at most 50 photos per request, as the broker takes them.
    let mut jobs = Vec::new();
    for chunk in snap.chunks(lanes_photos::MAX_PHOTOS) {
        jobs.push(submit_snap(&lanes, chunk.to_vec()).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut first, mut last, mut ok) = (u64::MAX, 0u64, 0u64);
    for job in &jobs {
        loop {
            let s = snap_status(&lanes, job).await?.context("the snap exists")?;
            if s.status != SnapState::Processing {
                first = first.min(s.created_at_ms);
                last = last.max(s.finished_at_ms.unwrap_or(0));
                ok += s.succeeded;
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "photos did not finish within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.cancel();
    let _ = worker.await;
    let stats = fake.stats();
    cleanup(&lanes).await?;
    ensure!(ok == n as u64, "{} of {n} photos succeeded", ok);
    let secs = (last.saturating_sub(first)) as f64 / 1000.0;
    let per_sec = n as f64 / secs.max(0.001);
    let per_min = per_sec * 60.0;
    Ok(match limit {
        None => Row::rate(
            "photos: end to end, limit off",
            per_sec,
            format!(
                "{per_min:.0} photos/min; {n} photos of 1600x1200, 1 worker x 8, {} Gemini calls, fake on loopback",
                stats.ok
            ),
        ),
        Some(l) => Row::rate(
            format!("photos: end to end, limit {l}"),
            per_sec,
            format!(
                "{per_min:.0} photos/min of the 300 a {l} limit allows (2 calls a photo): {:.0}%; Gemini 429s {}",
                per_min / 3.0,
                stats.quota_429 + stats.injected_429
            ),
        ),
    })
}
