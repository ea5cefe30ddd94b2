//! The channel collector scenario (seed 004): 8 channels of skewed sizes (one the API does not
//! know, one that fails part-way) dispatched through the broker's `POST /api/channels/collect`,
//! collected by a `collector` at concurrency 4 whose API rate is set above the fake's limit (so
//! flood waits happen and must be honoured). Mid-collection the collector is SIGKILLed and two
//! new ones take over. Prints a progress line per second, then checks every channel's output
//! against the fake's content byte for byte (no duplicates, no gaps across the crash), the two
//! failures, and the fake's flood-wait violations (zero).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lanes_fakes::FakesConfig;
use lanes_fakes::channels::Directory;
use lanes_testkit::ChildGuard;
use serde_json::{Value, json};

use crate::stack::Stack;
use crate::summary::Row;

const CHANNELS: [&str; 8] = [
    "@city_events",
    "lanes_news",
    "market_watch",
    "deleted_channel",
    "rust_daily",
    "flaky_feed",
    "photo_of_the_day",
    "https://t.me/tiny_updates",
];
const MISSING: &str = "deleted_channel";
const FLAKY: &str = "flaky_feed";

pub async fn run(stack: &mut Stack, rows: &mut Vec<Row>) -> Result<bool> {
    println!(
        "\n== channels: {} channels of skewed sizes (one missing, one failing part-way), collectors at concurrency 4, one SIGKILLed mid-way ==",
        CHANNELS.len()
    );
    let dir = Directory::load(&FakesConfig::default().fixtures)
        .map_err(anyhow::Error::msg)
        .context("load the channel fixture")?;
    let fakes_port = lanes_testkit::free_port();
    stack.spawn(
        "fakes (channel API: 100 calls/s per client, 1 s flood waits)",
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
    let api = format!("http://127.0.0.1:{fakes_port}/channels");
    let broker = format!("http://127.0.0.1:{broker_port}");
    let data = std::env::temp_dir().join(format!("lanes-demo-channels-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    let mut first = spawn_collector(stack, "collector-0", &api, &data)?;
    let r = http
        .post(format!("{broker}/api/channels/collect"))
        .json(&json!({ "channels": CHANNELS }))
        .send()
        .await
        .context("POST /api/channels/collect")?;
    anyhow::ensure!(
        r.status().as_u16() == 202,
        "collect answered {}",
        r.status()
    );
    let job = r.json::<Value>().await?["job_id"]
        .as_str()
        .context("job_id")?
        .to_owned();
    println!("  POST /api/channels/collect → 202 job {job}");

    let expected: u64 = CHANNELS
        .iter()
        .filter_map(|c| dir.channel(c.rsplit('/').next().unwrap_or(c)))
        .filter(|c| c.username() != FLAKY)
        .map(|c| c.ids().len() as u64)
        .sum();
    let started = Instant::now();
    let mut killed_at = None;
    let mut others = Vec::new();
    let mut last_print = Instant::now() - Duration::from_secs(5);
    let status = loop {
        let s: Value = http
            .get(format!("{broker}/api/channels/collect/{job}"))
            .send()
            .await?
            .json()
            .await?;
        let messages = s["messages"].as_u64().unwrap_or(0);
        if last_print.elapsed() >= Duration::from_secs(1) || s["finished_at_ms"].is_u64() {
            last_print = Instant::now();
            println!(
                "  [{:>4.1}s] {}/{} channels done · {messages} messages · {}",
                started.elapsed().as_secs_f64(),
                s["channels_done"],
                s["channels_total"],
                progress_line(&s)
            );
        }
        if s["finished_at_ms"].is_u64() {
            break s;
        }
        if killed_at.is_none() && messages >= expected / 3 {
            first.signal(libc::SIGKILL);
            let _ = first.wait_timeout(Duration::from_secs(5));
            killed_at = Some(messages);
            println!(
                "  SIGKILL collector-0 (pid {}) at {messages} messages; starting collector-1 and collector-2",
                first.pid()
            );
            for name in ["collector-1", "collector-2"] {
                others.push(spawn_collector(stack, name, &api, &data)?);
            }
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the collect job did not finish in 120 s: {s}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    for c in &others {
        c.signal(libc::SIGTERM);
    }
    let mut clean_exit = true;
    for mut c in others {
        let exited =
            tokio::task::spawn_blocking(move || c.wait_timeout(Duration::from_secs(30))).await?;
        clean_exit &= exited.is_some_and(|s| s.success());
    }
    drop(first);
    let stats: Value = http
        .get(format!("{api}/_stats"))
        .send()
        .await?
        .json()
        .await?;
    let checks = check(&dir, &data, &status, killed_at, &stats, clean_exit, rows);
    let _ = std::fs::remove_dir_all(&data);
    checks?;
    Ok(true)
}

fn spawn_collector(stack: &Stack, name: &str, api: &str, data: &Path) -> Result<ChildGuard> {
    let path = stack.bin_dir.join("collector");
    let mut cmd = Command::new(&path);
    cmd.env("REDIS_URL", &stack.url)
        .env("LANES_PREFIX", &stack.prefix)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        // The fake's credential, not a secret; a real token comes from the environment.
        .env("CHANNELS_API_TOKEN", "demo:collector")
        .args([
            "--name",
            name,
            "--concurrency",
            "4",
            "--download-concurrency",
            "4",
        ])
        // Above the fake's 100/s: flood waits happen, and every collector must sit them out.
        .args(["--api-rate", "130/s,burst=20", "--lease", "3s"])
        .args(["--max-retries", "3", "--retry-base", "300ms"])
        .arg("--channels-url")
        .arg(api)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let child = ChildGuard::spawn(&mut cmd).with_context(|| format!("start {}", path.display()))?;
    println!("  started {name} (pid {})", child.pid());
    Ok(child)
}

fn progress_line(s: &Value) -> String {
    let empty = Vec::new();
    s["channels"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|c| {
            let name = c["channel"].as_str().unwrap_or("?");
            match c["state"].as_str().unwrap_or("?") {
                "succeeded" => format!("{name} ✓"),
                "running" => format!("{name} {}/{}", c["stored_messages"], c["total_messages"]),
                "queued" => format!("{name} queued"),
                other => format!("{name} {other}"),
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The channel's output equals the fake's first `n` messages (all when `None`), photos
/// included, byte for byte. Returns the number of messages held.
fn exact(dir: &Directory, data: &Path, name: &str, n: Option<usize>) -> Result<usize> {
    let c = dir.channel(name).context("a fixture channel")?;
    let mut want = c.messages();
    if let Some(n) = n {
        want.truncate(n);
    }
    let text = std::fs::read_to_string(data.join(name).join("messages.jsonl")).unwrap_or_default();
    let got: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(
        got == want,
        "@{name}: {} messages held, {} expected (or they differ)",
        got.len(),
        want.len()
    );
    let media: PathBuf = data.join(name).join("media");
    let mut photos = 0;
    for m in &want {
        let id = m["message_id"].as_u64().unwrap_or(0);
        if let Some(bytes) = c.photo(id) {
            photos += 1;
            let saved = std::fs::read(media.join(format!("{id}.png")))
                .with_context(|| format!("@{name}: photo of message {id}"))?;
            anyhow::ensure!(saved == bytes, "@{name}: photo of message {id} differs");
        }
    }
    let files = std::fs::read_dir(&media).map_or(0, |d| d.count());
    anyhow::ensure!(
        files == photos,
        "@{name}: {files} files in media/, {photos} expected"
    );
    Ok(got.len())
}

fn check(
    dir: &Directory,
    data: &Path,
    s: &Value,
    killed_at: Option<u64>,
    stats: &Value,
    clean_exit: bool,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let empty = Vec::new();
    let channels = s["channels"].as_array().unwrap_or(&empty);
    let find = |n: &str| {
        channels
            .iter()
            .find(|c| c["channel"] == n)
            .cloned()
            .unwrap_or_default()
    };
    let good: Vec<&str> = channels
        .iter()
        .filter_map(|c| c["channel"].as_str())
        .filter(|n| *n != MISSING && *n != FLAKY)
        .collect();
    let mut exact_ok = 0;
    let mut problems = Vec::new();
    for name in &good {
        match exact(dir, data, name, None) {
            Ok(_) if find(name)["state"] == "succeeded" => exact_ok += 1,
            Ok(_) => problems.push(format!("@{name} is {}", find(name)["state"])),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    rows.push(Row {
        scenario: "channels",
        what: "channels collected exactly".into(),
        expected: format!("{} of {}", good.len(), good.len()),
        got: format!("{exact_ok} of {}", good.len()),
        detail: problems
            .first()
            .cloned()
            .unwrap_or_else(|| "= the API's messages and photos, byte for byte".into()),
        ok: exact_ok == good.len() && good.len() == 6,
    });
    let resumed = channels
        .iter()
        .filter(|c| c["attempts"].as_u64().unwrap_or(0) >= 2 && c["state"] == "succeeded")
        .count();
    rows.push(Row {
        scenario: "channels",
        what: "SIGKILL mid-collection, restart".into(),
        expected: "exact".into(),
        got: if exact_ok == good.len() {
            "exact".into()
        } else {
            "MISMATCH".into()
        },
        detail: format!(
            "no dup, no gap; killed at {} msgs, {resumed} channels resumed",
            killed_at.unwrap_or(0)
        ),
        ok: killed_at.is_some() && exact_ok == good.len() && clean_exit,
    });
    let missing = find(MISSING);
    let msg = missing["error"].as_str().unwrap_or("");
    rows.push(Row {
        scenario: "channels",
        what: "missing channel fails alone".into(),
        expected: "failed ×1".into(),
        got: format!(
            "{} ×{}",
            missing["state"].as_str().unwrap_or("?"),
            missing["attempts"]
        ),
        detail: msg.to_owned(),
        ok: missing["state"] == "failed" && missing["attempts"] == 1 && msg.contains("not found"),
    });
    let flaky = find(FLAKY);
    let kept = exact(
        dir,
        data,
        FLAKY,
        flaky["stored_messages"].as_u64().map(|n| n as usize),
    );
    let msg = flaky["error"].as_str().unwrap_or("");
    rows.push(Row {
        scenario: "channels",
        what: "channel failing part-way".into(),
        expected: "dead, kept".into(),
        got: format!(
            "{}, {} kept",
            flaky["state"].as_str().unwrap_or("?"),
            kept.as_ref().map_or(0, |n| *n)
        ),
        detail: msg.to_owned(),
        ok: flaky["state"] == "dead" && kept.is_ok_and(|n| n > 0) && msg.contains("HTTP 500"),
    });
    let violations = stats["violations"].as_u64().unwrap_or(u64::MAX);
    rows.push(Row {
        scenario: "channels",
        what: "flood waits honoured".into(),
        expected: "0 violations".into(),
        got: format!("{violations} violations"),
        detail: format!(
            "{} flood waits met, {} calls were already in flight",
            stats["flood_waits"], stats["in_flight_429"]
        ),
        ok: violations == 0,
    });
    let summary = &s["result"];
    rows.push(Row {
        scenario: "channels",
        what: "job summary (finalize, once)".into(),
        expected: "6 ok, 2 fail".into(),
        got: format!(
            "{} ok, {} fail",
            summary["succeeded"],
            summary["failed"].as_array().map_or(0, Vec::len)
        ),
        detail: format!(
            "{} messages, {} photos",
            summary["messages"], summary["images"]
        ),
        ok: summary["succeeded"] == 6 && summary["failed"].as_array().map(Vec::len) == Some(2),
    });
    Ok(())
}
