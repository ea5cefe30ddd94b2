//! Test support: the channel API fake on a free port, an engine client and collector workers
//! under a test's own key prefix, and checks of a data directory against the fake's content.

use std::path::{Path, PathBuf};
use std::time::Duration;

use collector::api::ApiConfig;
use collector::{CollectorConfig, JobStatus};
use lanes_fakes::channels::{ChannelSpec, ChannelsConfig, Directory};
use lanes_queue::{BatchId, KindConfig, Lanes, WorkerConfig, WorkerReport};
use lanes_ratelimit::Rate;
use lanes_testkit::Prefix;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The channel API fake, served until the test ends.
pub struct FakeApi {
    pub url: String,
    pub dir: Directory,
    _stop: tokio_util::sync::DropGuard,
}

impl FakeApi {
    pub async fn start(specs: Vec<ChannelSpec>, cfg: ChannelsConfig) -> Self {
        let dir = Directory::new(specs);
        let app = axum::Router::new().nest(
            "/channels",
            lanes_fakes::channels::router_with(dir.clone(), cfg),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await;
        });
        Self {
            url: format!("http://{addr}/channels"),
            dir,
            _stop: stop.drop_guard(),
        }
    }

    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_stats", self.url))
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON")
    }
}

/// A fake with generous limits and no latency.
pub fn fast() -> ChannelsConfig {
    ChannelsConfig {
        rate_per_sec: 100_000.0,
        burst: 10_000,
        history_latency: Duration::ZERO,
        file_latency: Duration::ZERO,
        ..ChannelsConfig::default()
    }
}

pub async fn lanes(prefix: &Prefix, lease: Duration) -> Lanes {
    let cfg = lanes_queue::Config {
        prefix: prefix.name().to_owned(),
        lease,
        ..lanes_queue::Config::default()
    };
    Lanes::connect(prefix.url(), cfg).await.expect("connect")
}

pub fn collector_cfg(api: &FakeApi, data_dir: &Path, rate: &str) -> CollectorConfig {
    CollectorConfig {
        api: ApiConfig {
            base_url: api.url.clone(),
            token: "test:token".into(),
            timeout: Duration::from_secs(10),
            max_flood_wait: Duration::from_secs(30),
        },
        api_rate: rate.parse::<Rate>().expect("rate"),
        data_dir: data_dir.to_path_buf(),
        download_concurrency: 4,
        lock_wait: Duration::from_secs(20),
    }
}

/// Retries fast: 2 retries, backoff ceiling 50 ms.
pub fn kind() -> KindConfig {
    KindConfig::default()
        .max_retries(2)
        .backoff(Duration::from_millis(20), Duration::from_millis(50))
}

/// Starts an in-process collector worker; cancel the token to stop it.
pub fn spawn_worker(
    lanes: &Lanes,
    cfg: CollectorConfig,
    concurrency: usize,
) -> (CancellationToken, JoinHandle<WorkerReport>) {
    let wcfg = WorkerConfig {
        name: "collector-test".into(),
        queues: vec![collector::QUEUE.into()],
        concurrency,
        heartbeat: Duration::from_millis(200),
        idle_wait: Duration::from_millis(200),
        grace: Duration::from_secs(5),
        ..WorkerConfig::default()
    };
    let worker = collector::worker(lanes.clone(), wcfg, kind(), cfg).expect("collector worker");
    let stop = CancellationToken::new();
    let s = stop.clone();
    let handle = tokio::spawn(async move { worker.run(s).await.expect("worker runs") });
    (stop, handle)
}

/// Waits (up to `timeout`) for the job to finish and returns its status.
pub async fn wait_finished(lanes: &Lanes, job: &BatchId, timeout: Duration) -> JobStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let status = collector::job_status(lanes, job)
            .await
            .expect("status")
            .expect("the job exists");
        if status.is_finished() {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job not finished in {timeout:?}: {}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The messages of a channel's output, parsed line by line.
pub fn output(data_dir: &Path, channel: &str) -> Vec<Value> {
    let path = data_dir.join(channel).join("messages.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON message"))
        .collect()
}

/// Asserts the channel's output is exactly the fake's first `n` messages (all when `None`),
/// with every photo among them saved byte for byte, and no other photo.
pub fn assert_collected(api: &FakeApi, data_dir: &Path, channel: &str, n: Option<usize>) {
    let c = api.dir.channel(channel).expect("the fake knows it");
    let mut want = c.messages();
    if let Some(n) = n {
        want.truncate(n);
    }
    let got = output(data_dir, channel);
    assert_eq!(got.len(), want.len(), "@{channel}: message count");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "@{channel}: message {}", w["message_id"]);
    }
    let media = data_dir.join(channel).join("media");
    let mut photos = 0;
    for m in &want {
        let id = m["message_id"].as_u64().expect("id");
        if let Some(bytes) = c.photo(id) {
            photos += 1;
            let saved = std::fs::read(media.join(format!("{id}.png")))
                .unwrap_or_else(|e| panic!("@{channel}: photo of message {id}: {e}"));
            assert!(saved == bytes, "@{channel}: photo of message {id} differs");
        }
    }
    let files = std::fs::read_dir(&media).map_or(0, |d| d.count());
    assert_eq!(files, photos, "@{channel}: files in media/ (no leftovers)");
}

/// Every file under `dir` with its bytes, sorted by path.
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
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
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.push((p.strip_prefix(dir).expect("under dir").to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}
