//! The photo scenario (seed 002): the Gemini fake with a per-minute quota (run 60× faster: 10
//! calls a second), the broker, two `photo-worker` processes sharing one Gemini limiter, and
//! the seed's load test — 50 concurrent uploads to `POST /seller/snap` — through a 429 storm.
//! Then the fixture photos' items and prices, a bad upload (400) and a text file sent as a
//! photo (its task fails with a clear message).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lanes_testkit::ChildGuard;
use photo_worker::load_test::{LoadTestConfig, load_photos, run as load_test};
use serde_json::{Value, json};

use crate::stack::Stack;
use crate::summary::Row;

const UPLOADS: usize = 50;
const WORKERS: usize = 2;
/// Gemini's quota in the fake: calls per window (the seed's "per minute", 60× faster).
const QUOTA: u32 = 10;
/// The workers' shared limiter, a hair under the quota.
const RATE: &str = "9/s";
const STORM: u64 = 6;
/// The fake's key (not a secret; real keys come from the environment too).
const KEY: &str = "demo-gemini-key";

pub async fn run(stack: &mut Stack, rows: &mut Vec<Row>) -> Result<bool> {
    println!(
        "\n== photos: {UPLOADS} concurrent uploads to POST /seller/snap, {WORKERS} photo-worker processes, Gemini quota {QUOTA}/s (the seed's per-minute quota at 60x), a 429 storm =="
    );
    let fakes_port = lanes_testkit::free_port();
    stack.spawn(
        "fakes (Gemini)",
        "fakes",
        &["--listen", &format!("127.0.0.1:{fakes_port}")],
    )?;
    let broker_port = lanes_testkit::free_port();
    stack.spawn(
        "broker",
        "broker",
        &["--listen", &format!("127.0.0.1:{broker_port}")],
    )?;
    crate::stack::wait_listening(fakes_port).await?;
    crate::stack::wait_listening(broker_port).await?;
    let gemini = format!("http://127.0.0.1:{fakes_port}/gemini");
    let broker = format!("http://127.0.0.1:{broker_port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let control = |body: Value| {
        let http = http.clone();
        let url = format!("{gemini}/_control");
        async move {
            let r = http.post(url).json(&body).send().await?;
            anyhow::ensure!(r.status().is_success(), "fake control: {}", r.status());
            Ok::<_, anyhow::Error>(())
        }
    };
    control(json!({"key": KEY, "quota": {"limit": QUOTA, "window_ms": 1000}, "reset_stats": true}))
        .await?;

    let mut workers = Vec::new();
    for i in 0..WORKERS {
        workers.push(spawn_worker(stack, &format!("photo-worker-{i}"), &gemini)?);
    }

    // The storm: the next calls get 429 RESOURCE_EXHAUSTED with RetryInfo 1 s.
    control(json!({"fail_next": {"count": STORM, "status": 429, "retry_delay_ms": 1000}})).await?;
    let dir = fixtures_dir();
    let photos: Vec<Vec<u8>> = load_photos(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let report = load_test(
        LoadTestConfig {
            broker: broker.clone(),
            token: None,
            uploads: UPLOADS,
            photos_per_upload: 1,
            photos,
            timeout: Duration::from_secs(120),
            poll: Duration::from_millis(250),
        },
        |p| {
            println!(
                "  [{:>4.1}s] uploads accepted {:>2}/{} · jobs completed {:>2} · failed {}",
                p.elapsed_ms as f64 / 1000.0,
                p.accepted,
                p.uploads,
                p.completed,
                p.failed
            )
        },
    )
    .await?;
    println!("  {}", report.to_string().replace('\n', "\n  "));
    let stats: Value = http
        .get(format!("{gemini}/_stats"))
        .send()
        .await?
        .json()
        .await?;
    let n = |f: &str| stats[f].as_u64().unwrap_or(0);
    let ms = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| format!("{v} ms"));
    rows.push(Row {
        scenario: "photos",
        what: format!("{UPLOADS} concurrent uploads accepted"),
        expected: UPLOADS.to_string(),
        got: report.accepted.to_string(),
        detail: format!("refused {}", report.refused),
        ok: report.accepted == UPLOADS as u64,
    });
    rows.push(Row {
        scenario: "photos",
        what: "jobs completed (item + price)".into(),
        expected: UPLOADS.to_string(),
        got: report.completed.to_string(),
        detail: format!(
            "p50 {} p95 {}; {:.0} photos/min; ${:.4}",
            ms(report.p50_ms),
            ms(report.p95_ms),
            report.photos_per_minute,
            report.cost_usd
        ),
        ok: report.completed == UPLOADS as u64,
    });
    rows.push(Row {
        scenario: "photos",
        what: "Gemini calls in any 1 s (peak)".into(),
        expected: format!("<= {QUOTA}"),
        got: n("peak_in_window").to_string(),
        detail: format!(
            "quota 429s {}; limiter {RATE} shared by {WORKERS} processes",
            n("quota_429")
        ),
        ok: n("peak_in_window") <= u64::from(QUOTA) && n("quota_429") == 0,
    });
    rows.push(Row {
        scenario: "photos",
        what: "429 storm absorbed".into(),
        expected: format!("{STORM} hit, 0 lost"),
        got: format!("{} hit, {} lost", n("injected_429"), report.failed),
        detail: "limiter paused fleet-wide for RetryInfo".into(),
        ok: n("injected_429") == STORM && report.failed == 0,
    });

    fixtures_check(&http, &broker, &dir, rows).await?;
    bad_inputs(&http, &broker, rows).await?;

    // Stop the workers: SIGTERM, they finish or hand back, exit 0.
    for (_, w) in &workers {
        w.signal(libc::SIGTERM);
    }
    let mut clean = 0;
    for (name, mut w) in workers {
        let status =
            tokio::task::spawn_blocking(move || w.wait_timeout(Duration::from_secs(40))).await?;
        match status {
            Some(s) if s.success() => {
                clean += 1;
                println!("  stopped {name}: exit 0");
            }
            Some(s) => println!("  stopped {name}: {s}"),
            None => println!("  {name} did not stop within 40 s; killed"),
        }
    }
    rows.push(Row {
        scenario: "photos",
        what: "photo workers stop on SIGTERM".into(),
        expected: format!("{WORKERS} exit 0"),
        got: format!("{clean} exit 0"),
        detail: String::new(),
        ok: clean == WORKERS,
    });
    Ok(true)
}

/// One snap of every fixture photo: each one's item and price as `expected.json` says.
async fn fixtures_check(
    http: &reqwest::Client,
    broker: &str,
    dir: &std::path::Path,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let expected: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.join("expected.json"))?)?;
    let photos: Vec<String> = expected
        .iter()
        .map(|e| {
            let f = e["file"].as_str().unwrap_or_default();
            std::fs::read(dir.join(f)).map(|b| lanes_photos::encode_photo(&b))
        })
        .collect::<std::io::Result<_>>()?;
    let job = submit(http, broker, &photos).await?;
    let s = follow(http, broker, &job).await?;
    let mut right = 0;
    for (p, e) in s["photos"].as_array().into_iter().flatten().zip(&expected) {
        let ok = p["item"]["name"] == e["item"] && p["price"]["price_usd"] == e["price_usd"];
        right += usize::from(ok);
        println!(
            "  {:<34} -> {:<28} ${:<6} {} tokens, ${:.5}",
            e["file"].as_str().unwrap_or(""),
            p["item"]["name"].as_str().unwrap_or("?"),
            p["price"]["price_usd"],
            p["tokens"]["total"],
            p["cost_usd"].as_f64().unwrap_or(0.0)
        );
    }
    rows.push(Row {
        scenario: "photos",
        what: "fixture photos: item and price".into(),
        expected: format!("{} right", expected.len()),
        got: format!("{right} right"),
        detail: "incl. an EXIF-rotated phone photo, PNG, WebP".into(),
        ok: right == expected.len(),
    });
    Ok(())
}

/// Bad base64 is refused at the door; a text file is accepted and fails alone, clearly.
async fn bad_inputs(http: &reqwest::Client, broker: &str, rows: &mut Vec<Row>) -> Result<()> {
    let r = http
        .post(format!("{broker}/seller/snap"))
        .json(&json!({"photos": ["this is %%% not base64"]}))
        .send()
        .await?;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    rows.push(Row {
        scenario: "photos",
        what: "bad base64 refused".into(),
        expected: "400".into(),
        got: status.to_string(),
        detail: body["message"].as_str().unwrap_or("").to_owned(),
        ok: status == 400,
    });
    let text = lanes_photos::encode_photo(b"name,price\nkettle,12\n");
    let job = submit(http, broker, &[text]).await?;
    let s = follow(http, broker, &job).await?;
    let p = &s["photos"][0];
    let error = p["error"].as_str().unwrap_or("").to_owned();
    println!(
        "  a text file sent as a photo: {} after {} attempt(s): {error}",
        p["state"], p["attempts"]
    );
    rows.push(Row {
        scenario: "photos",
        what: "text file as a photo".into(),
        expected: "failed, 1 try".into(),
        got: format!(
            "{}, {} try",
            p["state"].as_str().unwrap_or("?"),
            p["attempts"]
        ),
        detail: error.clone(),
        ok: p["state"] == "failed" && p["attempts"] == 1 && error.contains("not an image"),
    });
    Ok(())
}

async fn submit(http: &reqwest::Client, broker: &str, photos: &[String]) -> Result<String> {
    let r = http
        .post(format!("{broker}/seller/snap"))
        .json(&json!({ "photos": photos }))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 202, "upload answered {}", r.status());
    let body: Value = r.json().await?;
    body["job_id"]
        .as_str()
        .map(str::to_owned)
        .context("202 without a job_id")
}

async fn follow(http: &reqwest::Client, broker: &str, job: &str) -> Result<Value> {
    let started = Instant::now();
    loop {
        let s: Value = http
            .get(format!("{broker}/seller/snap/{job}"))
            .send()
            .await?
            .json()
            .await?;
        if s["status"] != "processing" {
            return Ok(s);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "job {job} did not finish within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A photo worker with the fake's key in its environment (never on its command line).
fn spawn_worker(stack: &Stack, name: &str, gemini: &str) -> Result<(String, ChildGuard)> {
    let path = stack.bin_dir.join("photo-worker");
    let mut cmd = Command::new(&path);
    cmd.args([
        "--name",
        name,
        "--concurrency",
        "4",
        "--gemini-url",
        gemini,
        "--gemini-rate",
        RATE,
        "--retry-base",
        "200ms",
    ])
    .env("REDIS_URL", &stack.url)
    .env("LANES_PREFIX", &stack.prefix)
    .env("GEMINI_API_KEY", KEY)
    .env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    let child = ChildGuard::spawn(&mut cmd).with_context(|| format!("start {}", path.display()))?;
    println!("  started {name} (pid {})", child.pid());
    Ok((name.to_owned(), child))
}

fn fixtures_dir() -> PathBuf {
    let here = PathBuf::from("fixtures/photos");
    if here.is_dir() {
        here
    } else {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/photos"
        ))
    }
}
