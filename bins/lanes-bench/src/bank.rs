//! Bank-bot benchmarks: memory of the bot's Chromium tree per concurrent account (one shared
//! browser with a context per account, against a browser per bot), and accounts scraped per
//! minute by one `browser-bot` process against the fake portal.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lanes_testkit::ChildGuard;

use crate::engine::{Settings, cleanup, fresh};
use crate::report::Row;

const ACCOUNTS: usize = 8;

pub async fn run(cfg: &Settings) -> Result<Vec<Row>> {
    let dir = cfg
        .worker_bin
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let bot = dir.join("browser-bot");
    if !bot.exists() || !dir.join("fakes").exists() {
        eprintln!("bank bench skipped: build browser-bot and fakes (release) first");
        return Ok(Vec::new());
    }
    let port = lanes_testkit::free_port();
    let mut fakes_cmd = Command::new(dir.join("fakes"));
    fakes_cmd
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _fakes = ChildGuard::spawn(&mut fakes_cmd).context("start fakes")?;
    crate::engine::wait_listening(port)?;
    let bank_url = format!("http://127.0.0.1:{port}/bank");

    eprintln!("bank bot memory at 1, 4 and 8 accounts (both modes)...");
    let out = Command::new(&bot)
        .args(["--measure", "1,4,8", "--bank-url", &bank_url])
        .env("REDIS_URL", &cfg.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .context("run browser-bot --measure")?;
    if !out.status.success() {
        bail!(
            "browser-bot --measure failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [mode, accounts, browsers, processes, rss, pss, _, pss_per] = f[..] else {
            continue;
        };
        let num = |s: &str| s.parse::<f64>().unwrap_or(0.0);
        rows.push(Row::memory(
            format!("bot memory, {mode}, {accounts} account(s) (PSS)"),
            num(pss),
            format!("{:.0} MiB per account; RSS {:.0} MiB; {browsers} browser(s), {processes} processes", num(pss_per), num(rss)),
        ));
    }
    rows.push(scrape_rate(cfg, &bot, &bank_url).await?);
    Ok(rows)
}

/// Accounts scraped per minute: `ACCOUNTS` bots on one process at concurrency 4.
async fn scrape_rate(cfg: &Settings, bot: &Path, bank_url: &str) -> Result<Row> {
    eprintln!("bank bot: {ACCOUNTS} accounts on one browser-bot process...");
    let lanes = fresh(cfg, "bank").await?;
    let accounts: Vec<String> = (1..=ACCOUNTS)
        .map(|n| format!("acct-{}", 3000 + n))
        .collect();
    let dir = std::env::temp_dir().join(format!("lanes-bench-bank-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let secrets = dir.join("secrets.json");
    let all: serde_json::Map<String, serde_json::Value> = accounts
        .iter()
        .map(|a| {
            Ok((
                a.clone(),
                serde_json::to_value(lanes_fakes::bank::default_credentials(a))?,
            ))
        })
        .collect::<Result<_>>()?;
    std::fs::write(&secrets, serde_json::Value::Object(all).to_string())?;
    let mut cmd = Command::new(bot);
    cmd.args([
        "--concurrency",
        "4",
        "--bank-url",
        bank_url,
        "--secrets-file",
        &secrets.to_string_lossy(),
    ])
    .env("REDIS_URL", &cfg.url)
    .env("LANES_PREFIX", lanes.keys().prefix())
    .env("RUST_LOG", "warn")
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    let mut worker = ChildGuard::spawn(&mut cmd).context("start browser-bot")?;
    let started = Instant::now();
    let mut ids = Vec::new();
    for a in &accounts {
        ids.push(lanes_bank::start_bot(&lanes, a).await?);
    }
    let deadline = started + Duration::from_secs(300);
    loop {
        let infos = lanes.tasks(&ids).await?;
        if infos.len() == ids.len() && infos.iter().all(|t| t.state.is_final()) {
            break;
        }
        if Instant::now() > deadline {
            bail!("bank bots did not finish within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let ok = lanes
        .tasks(&ids)
        .await?
        .iter()
        .filter(|t| t.state == lanes_queue::TaskState::Succeeded)
        .count();
    worker.signal(15);
    worker.wait_timeout(Duration::from_secs(30));
    cleanup(&lanes).await?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(Row::rate(
        "bank bot: accounts scraped per minute",
        ok as f64 / minutes,
        format!(
            "{ok}/{ACCOUNTS} accounts (login + every page) by one process, concurrency 4, one shared browser"
        ),
    ))
}
