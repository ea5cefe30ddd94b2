//! Test support: the bank fake on a free port, a Redis prefix, secrets files, bots in process
//! and as child processes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use browser_bot::{Bot, CredentialStore, Portal};
use lanes_bank::{BotResult, DepositStore};
use lanes_browser::launch::LaunchOptions;
use lanes_browser::{BrowserConfig, BrowserPool, PoolMode};
use lanes_queue::{Config, KindConfig, Lanes, TaskId, TaskInfo, TaskState, WorkerConfig};
use lanes_testkit::Prefix;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// The bank fake on 127.0.0.1:0, stopped when dropped.
pub struct Bank {
    pub url: String,
    _stop: tokio_util::sync::DropGuard,
    http: reqwest::Client,
}

impl Bank {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = lanes_fakes::serve(listener, lanes_fakes::FakesConfig::default(), s).await;
        });
        Self {
            url: format!("http://{addr}/bank"),
            _stop: stop.drop_guard(),
            http: reqwest::Client::new(),
        }
    }

    /// The fake's counters for one account.
    pub async fn stats(&self, account: &str) -> lanes_fakes::bank::AccountStats {
        let v: Value = self
            .http
            .get(format!("{}/_stats", self.url))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON");
        serde_json::from_value(v["accounts"][account].clone()).unwrap_or_default()
    }

    /// Replaces an account's credentials at the bank.
    pub async fn set_credentials(&self, account: &str, creds: &lanes_fakes::bank::Credentials) {
        let resp = self
            .http
            .put(format!("{}/_accounts/{account}", self.url))
            .json(creds)
            .send()
            .await
            .expect("set credentials");
        assert_eq!(resp.status().as_u16(), 204);
    }
}

/// Writes a secrets file with the bank's default credentials of `accounts`, plus `extra`.
pub fn secrets_file(dir: &Path, accounts: &[&str], extra: &[(&str, Value)]) -> PathBuf {
    let mut all = serde_json::Map::new();
    for a in accounts {
        let c = lanes_fakes::bank::default_credentials(a);
        all.insert((*a).to_owned(), serde_json::to_value(c).expect("json"));
    }
    for (a, v) in extra {
        all.insert((*a).to_owned(), v.clone());
    }
    let path = dir.join("bank-secrets.json");
    std::fs::write(&path, Value::Object(all).to_string()).expect("write secrets");
    path
}

pub fn browser(mode: PoolMode, max: Option<u64>) -> BrowserConfig {
    BrowserConfig {
        launch: LaunchOptions {
            executable: chromium(),
            ..LaunchOptions::default()
        },
        mode,
        max_sessions_per_browser: max,
    }
}

pub fn kind() -> KindConfig {
    KindConfig::default()
        .max_retries(3)
        .backoff(Duration::from_millis(100), Duration::from_millis(500))
}

pub async fn lanes(prefix: &Prefix, lease: Duration) -> Lanes {
    Lanes::connect(
        prefix.url(),
        Config {
            prefix: prefix.name().to_owned(),
            lease,
            ..Config::default()
        },
    )
    .await
    .expect("connect to redis")
}

/// A bot worker running in this process.
pub struct InProcess {
    pub bot: Arc<Bot>,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl InProcess {
    pub async fn start(
        lanes: &Lanes,
        bank: &Bank,
        secrets: PathBuf,
        concurrency: usize,
        browser: BrowserConfig,
    ) -> Self {
        let bot = Arc::new(Bot::new(
            Arc::new(BrowserPool::new(browser)),
            Portal::new(&bank.url, Duration::from_secs(20)),
            CredentialStore::new(Some(secrets), Vec::new()),
            DepositStore::for_lanes(lanes),
        ));
        let worker = browser_bot::worker_for(
            lanes.clone(),
            WorkerConfig {
                name: "bot-test".into(),
                queues: vec![lanes_bank::QUEUE.into()],
                concurrency,
                heartbeat: Duration::from_millis(300),
                idle_wait: Duration::from_millis(500),
                ..WorkerConfig::default()
            },
            kind(),
            bot.clone(),
        );
        let stop = CancellationToken::new();
        let s = stop.clone();
        let b = bot.clone();
        let handle = tokio::spawn(async move {
            let _ = worker.run(s).await;
            b.pool().close().await;
        });
        Self { bot, stop, handle }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.handle.await;
    }
}

/// Waits until the task is final (panics after `timeout`).
pub async fn wait_final(lanes: &Lanes, id: &TaskId, timeout: Duration) -> TaskInfo {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(t) = lanes.task(id).await.expect("read task")
            && t.state.is_final()
        {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} not final within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the task is in `state`.
pub async fn wait_state(
    lanes: &Lanes,
    id: &TaskId,
    state: TaskState,
    timeout: Duration,
) -> TaskInfo {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(t) = lanes.task(id).await.expect("read task")
            && t.state == state
        {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} not {state} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

pub fn result(t: &TaskInfo) -> BotResult {
    assert_eq!(
        t.state,
        TaskState::Succeeded,
        "task {} {:?}: {:?}",
        t.id,
        t.state,
        t.error
    );
    serde_json::from_value(t.result.clone().expect("a result")).expect("a BotResult")
}

/// The fake's deposit ids of an account, sorted.
pub fn expected_ids(account: &str) -> Vec<String> {
    let mut ids: Vec<String> = lanes_fakes::bank::deposits(account)
        .into_iter()
        .map(|t| t.id)
        .collect();
    ids.sort();
    ids
}

pub async fn stored_ids(lanes: &Lanes, account: &str) -> Vec<String> {
    let mut ids: Vec<String> = DepositStore::for_lanes(lanes)
        .list(account)
        .await
        .expect("list deposits")
        .into_iter()
        .map(|d| d.id)
        .collect();
    ids.sort();
    ids
}

pub fn bad_password(account: &str, password: &str) -> Value {
    json!({"username": account, "password": password})
}
