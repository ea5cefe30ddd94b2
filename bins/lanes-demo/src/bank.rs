//! The bank-bot scenario (seed 000): the bank fake and one `browser-bot` process (one shared
//! headless Chromium, an isolated context per account), bots for 4 accounts at once (one asks
//! for a one-time code), a second start for a running account refused, deposits checked against
//! the fake's data, and a new start after the first finished (no stuck key, no duplicates).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lanes_bank::{BotResult, DepositStore, Error as BankError, QUEUE, start_bot};
use lanes_queue::{TaskId, TaskInfo};

use crate::stack::Stack;
use crate::summary::Row;

const ACCOUNTS: [&str; 4] = ["acct-1001", "acct-1002", "acct-otp-1003", "acct-slow-1004"];

pub async fn run(stack: &mut Stack, rows: &mut Vec<Row>) -> Result<bool> {
    println!(
        "\n== bank bot: {} accounts on queue `{QUEUE}`, one browser-bot process ==",
        ACCOUNTS.len()
    );
    let port = lanes_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    stack.spawn(
        "fakes",
        "fakes",
        &["--listen", &format!("127.0.0.1:{port}")],
    )?;
    crate::stack::wait_listening(port).await?;
    let secrets = SecretsFile::write(&ACCOUNTS)?;
    let bank_url = format!("{base}/bank");
    stack.spawn(
        "browser-bot",
        "browser-bot",
        &[
            "--concurrency",
            "4",
            "--name",
            "bank-bot-0",
            "--bank-url",
            &bank_url,
            "--secrets-file",
            &secrets.path.to_string_lossy(),
            "--retry-base",
            "300ms",
        ],
    )?;
    let lanes = stack.lanes.clone();
    let mut ids: Vec<(&str, TaskId)> = Vec::new();
    for a in ACCOUNTS {
        let id = start_bot(&lanes, a).await?;
        println!("  started bot for {a}: task {id}");
        ids.push((a, id));
    }
    let refused = match start_bot(&lanes, ACCOUNTS[0]).await {
        Err(e @ BankError::AlreadyRunning { .. }) => {
            println!(
                "  second start for {}: refused (409 {:?})",
                ACCOUNTS[0],
                e.to_string()
            );
            true
        }
        Ok(id) => {
            println!(
                "  second start for {}: NOT refused (task {id})",
                ACCOUNTS[0]
            );
            false
        }
        Err(e) => return Err(e.into()),
    };
    rows.push(Row {
        scenario: "bank",
        what: "second start while running".into(),
        expected: "409".into(),
        got: if refused {
            "409".into()
        } else {
            "accepted".into()
        },
        detail: "Bot is already running for this account".into(),
        ok: refused,
    });

    let started = Instant::now();
    let mut pids = Vec::new();
    for (account, id) in &ids {
        let t = wait_final(stack, id, Duration::from_secs(180)).await?;
        let result: Option<BotResult> = t
            .result
            .clone()
            .and_then(|v| serde_json::from_value(v).ok());
        let want = lanes_fakes::bank::deposits(account);
        let mut want_ids: Vec<String> = want.iter().map(|d| d.id.clone()).collect();
        want_ids.sort();
        let mut got_ids: Vec<String> = DepositStore::for_lanes(&lanes)
            .list(account)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        got_ids.sort();
        let ok = result.is_some() && got_ids == want_ids;
        let detail = match &result {
            Some(r) => {
                pids.push(r.browser_pid);
                format!(
                    "{} pages{}, {} ms, {:?}",
                    r.pages,
                    if r.otp { ", one-time code" } else { "" },
                    r.duration_ms,
                    t.state
                )
            }
            None => format!("{:?}: {}", t.state, t.error.unwrap_or_default()),
        };
        println!(
            "  {account}: {} deposits stored ({} at the bank) after {:.1}s",
            got_ids.len(),
            want_ids.len(),
            started.elapsed().as_secs_f64()
        );
        rows.push(Row {
            scenario: "bank",
            what: format!("deposits of {account}"),
            expected: want_ids.len().to_string(),
            got: got_ids.len().to_string(),
            detail,
            ok,
        });
    }
    pids.sort_unstable();
    pids.dedup();
    rows.push(Row {
        scenario: "bank",
        what: "browsers for 4 parallel bots".into(),
        expected: "1".into(),
        got: pids.len().to_string(),
        detail: "one shared Chromium, an isolated context per account".into(),
        ok: pids.len() == 1,
    });

    // No stuck key: the finished account starts again at once and stores nothing twice.
    let again = start_bot(&lanes, ACCOUNTS[0]).await;
    let (got, detail, ok) = match again {
        Ok(id) => {
            let t = wait_final(stack, &id, Duration::from_secs(120)).await?;
            let r: Option<BotResult> = t.result.and_then(|v| serde_json::from_value(v).ok());
            match r {
                Some(r) => (
                    "started".to_owned(),
                    format!(
                        "{} new deposits, {} total",
                        r.new_deposits, r.total_deposits
                    ),
                    r.new_deposits == 0,
                ),
                None => ("failed".to_owned(), format!("{:?}", t.state), false),
            }
        }
        Err(e) => ("refused".to_owned(), e.to_string(), false),
    };
    println!(
        "  start again for {} after it finished: {got} ({detail})",
        ACCOUNTS[0]
    );
    rows.push(Row {
        scenario: "bank",
        what: "no stuck key: start after finish".into(),
        expected: "started".into(),
        got,
        detail,
        ok,
    });
    Ok(rows.iter().filter(|r| r.scenario == "bank").all(|r| r.ok))
}

async fn wait_final(stack: &Stack, id: &TaskId, timeout: Duration) -> Result<TaskInfo> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = stack.lanes.task(id).await?
            && t.state.is_final()
        {
            return Ok(t);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "bot task {id} did not finish within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The bot's secrets file (the portal's credentials of the demo accounts), in a private temp
/// directory removed when the demo ends.
struct SecretsFile {
    path: PathBuf,
    dir: PathBuf,
}

impl SecretsFile {
    fn write(accounts: &[&str]) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("lanes-demo-bank-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut all = serde_json::Map::new();
        for a in accounts {
            all.insert(
                (*a).to_owned(),
                serde_json::to_value(lanes_fakes::bank::default_credentials(a))?,
            );
        }
        let path = dir.join("bank-secrets.json");
        std::fs::write(&path, serde_json::Value::Object(all).to_string())
            .with_context(|| format!("write {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(Self { path, dir })
    }
}

impl Drop for SecretsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
