//! `browser-bot` as a process: SIGKILL mid-bot (the key frees after the lease, no browser is
//! left behind), and no secret in its logs or in anything it writes to Redis.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_bank::{Error as BankError, start_bot};
use lanes_queue::TaskState;
use lanes_testkit::{ChildGuard, Prefix};
use serde_json::json;

use crate::support::{
    Bank, chromium, expected_ids, lanes, result, secrets_file, stored_ids, wait_final, wait_state,
};

const LONG: Duration = Duration::from_secs(90);

fn spawn_bot(prefix: &Prefix, bank: &Bank, secrets: &Path, log: &Path) -> ChildGuard {
    let log = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_browser-bot"));
    cmd.args([
        "--concurrency",
        "2",
        "--lease",
        "2s",
        "--retry-base",
        "100ms",
    ])
    .arg("--bank-url")
    .arg(&bank.url)
    .arg("--secrets-file")
    .arg(secrets)
    .arg("--chromium")
    .arg(chromium())
    .env("REDIS_URL", prefix.url())
    .env("LANES_PREFIX", prefix.name())
    .env("RUST_LOG", "debug")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(log);
    ChildGuard::spawn(&mut cmd).expect("start browser-bot")
}

/// Chromium processes whose parent is `pid`.
fn chromium_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let comm_ok = stat.contains("(chromium)") || stat.contains("(chrome)");
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if comm_ok && ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    lanes_browser::launch::process_alive(pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_killed_mid_run_frees_its_key_after_the_lease() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, Duration::from_secs(2)).await;
    let bank = Bank::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let account = "slow-killed";
    let secrets = secrets_file(dir.path(), &[account], &[]);
    let mut first = spawn_bot(&prefix, &bank, &secrets, &dir.path().join("bot1.log"));

    let id = start_bot(&lanes, account).await.expect("start");
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let t = lanes.task(&id).await.expect("task").expect("exists");
        if t.state == TaskState::Running && t.progress.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bot never got going: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let browsers = chromium_children(first.pid());
    assert_eq!(browsers.len(), 1, "one browser under the bot");
    first.signal(libc::SIGKILL);
    assert!(first.wait_timeout(Duration::from_secs(5)).is_some());
    let gone = lanes_testkit::wait_for(Duration::from_secs(10), || {
        browsers.iter().all(|p| !alive(*p)).then_some(())
    });
    assert!(gone.is_some(), "the browser died with its bot");

    // Still leased to the dead worker: refused, with no manual DEL anywhere.
    assert!(matches!(
        start_bot(&lanes, account).await,
        Err(BankError::AlreadyRunning { .. })
    ));
    // Any live bot reaps the expired lease and runs the task again.
    let _second = spawn_bot(&prefix, &bank, &secrets, &dir.path().join("bot2.log"));
    let t = wait_final(&lanes, &id, LONG).await;
    let r = result(&t);
    assert!(t.attempts >= 2, "{t:?}");
    assert_eq!(r.total_deposits as usize, expected_ids(account).len());
    let again = start_bot(&lanes, account).await.expect("the key is free");
    let r = result(&wait_final(&lanes, &again, LONG).await);
    assert_eq!(r.new_deposits, 0);
    assert_eq!(stored_ids(&lanes, account).await, expected_ids(account));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_or_redis() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, Duration::from_secs(5)).await;
    let bank = Bank::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let account = "acct-otp-secret";
    // Distinctive and random: a hit can only be a leak.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        ^ u128::from(std::process::id());
    let password = format!("S3cr3t-CANARY-password-{nonce:x}");
    let seed = format!("S3cr3t-CANARY-otp-seed-{nonce:x}");
    let (password, seed) = (password.as_str(), seed.as_str());
    let creds = lanes_fakes::bank::Credentials {
        username: "secret-user".into(),
        password: password.into(),
        otp_seed: Some(seed.into()),
    };
    bank.set_credentials(account, &creds).await;
    let secrets = secrets_file(
        dir.path(),
        &[],
        &[(
            account,
            json!({"username": "secret-user", "password": password, "otp_seed": seed}),
        )],
    );
    let log = dir.path().join("bot.log");
    let bot = spawn_bot(&prefix, &bank, &secrets, &log);
    let id = start_bot(&lanes, account).await.expect("start");
    wait_state(&lanes, &id, TaskState::Running, LONG).await;
    let r = result(&wait_final(&lanes, &id, LONG).await);
    assert!(r.otp);
    assert_eq!(stored_ids(&lanes, account).await, expected_ids(account));
    // The worker record is written while the bot lives: read everything before stopping it.
    // This prefix's keys by type, then every key of the whole Redis (streams included, gzip
    // payloads inflated), then the status answer the broker's bank route serves.
    let mut dump = dump_prefix(&prefix).await;
    dump.push_str(&lanes_testkit::dump_redis(prefix.url()).expect("dump redis"));
    let status = lanes_bank::bot_status(&lanes, account)
        .await
        .expect("bot status")
        .expect("the bot ran");
    dump.push_str(&format!("{status:?}"));
    assert!(
        dump.contains(id.as_str()),
        "the dump covers the task record"
    );
    assert!(
        dump.contains("browser-bot") || dump.contains("worker"),
        "and the worker record"
    );
    drop(bot);
    let logs = std::fs::read_to_string(&log).expect("read log");
    assert!(logs.contains("bot finished"), "the log is there: {logs}");
    for secret in [password, seed] {
        assert!(!logs.contains(secret), "secret in the bot's log");
        assert!(!dump.contains(secret), "secret in redis");
    }
}

/// Every key under the prefix with its value, as text (the task record, results, worker
/// records, deposits).
async fn dump_prefix(prefix: &Prefix) -> String {
    let client = redis::Client::open(prefix.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut out = String::new();
    for key in prefix.keys() {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("type");
        let value: redis::Value = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).query_async(&mut conn).await,
            "hash" => redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await,
            "zset" => {
                redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut conn)
                    .await
            }
            "set" => {
                redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
            }
            "list" => {
                redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn)
                    .await
            }
            _ => Ok(redis::Value::Nil),
        }
        .expect("read key");
        out.push_str(&format!("{key} = {}\n", text(&value)));
    }
    out
}

fn text(v: &redis::Value) -> String {
    match v {
        // Payloads this small are never compressed (the threshold is 8 KiB), so text is all.
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().map(text).collect::<Vec<_>>().join(" ")
        }
        redis::Value::Map(kv) => kv
            .iter()
            .map(|(k, v)| format!("{}={}", text(k), text(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => format!("{other:?}"),
    }
}
