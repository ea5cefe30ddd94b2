//! Test support: the Gemini fake on 127.0.0.1:0, an engine client under a fresh key prefix,
//! photo workers in this process or as real `photo-worker` processes, and snaps to follow.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_fakes::gemini::{GeminiFake, GeminiFakeConfig, Quota};
use lanes_gemini::{ApiKey, GeminiConfig};
use lanes_photos::{SnapState, SnapStatus, encode_photo, snap_status, submit_snap, validate_snap};
use lanes_queue::{BatchId, KindConfig, Lanes, RetryPolicy, WorkerConfig, WorkerReport};
use lanes_ratelimit::Rate;
use lanes_testkit::{ChildGuard, Prefix};
use photo_worker::PhotoConfig;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The key the fake accepts.
pub const KEY: &str = "test-gemini-key-0123";

pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/photos"
    ))
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// `fixtures/photos/expected.json`, by file name.
pub fn expected() -> Vec<Value> {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).expect("expected.json"))
        .expect("expected.json parses")
}

/// A fake, a prefix, an engine client.
pub struct Env {
    pub prefix: Prefix,
    pub lanes: Lanes,
    pub fake: GeminiFake,
    pub gemini_url: String,
    _stop: DropGuard,
}

impl Env {
    /// The fake accepts only [`KEY`], under `quota` (none when `None`).
    pub async fn new(quota: Option<Quota>) -> Self {
        let fake = GeminiFake::new(GeminiFakeConfig {
            key: Some(KEY.into()),
            quota,
            ..GeminiFakeConfig::default()
        });
        let stop = CancellationToken::new();
        let gemini_url = fake.spawn(stop.clone()).await.expect("serve the fake");
        let prefix = Prefix::new();
        let lanes = Lanes::connect(
            prefix.url(),
            lanes_queue::Config {
                prefix: prefix.name().to_owned(),
                ..lanes_queue::Config::default()
            },
        )
        .await
        .expect("connect");
        Self {
            prefix,
            lanes,
            fake,
            gemini_url,
            _stop: stop.drop_guard(),
        }
    }

    /// Photo settings against the fake with `key`, the `gemini` limiter at `rate`.
    pub fn photo_config(&self, key: &str, rate: &str) -> PhotoConfig {
        let mut gemini = GeminiConfig::new(&self.gemini_url, ApiKey::new(key));
        gemini.timeout = Duration::from_secs(10);
        let mut cfg = PhotoConfig::new(gemini);
        cfg.rate = rate.parse::<Rate>().expect("rate");
        cfg
    }

    /// Runs a photo worker in this process until the returned token is cancelled. Retries back
    /// off from 50 ms (the seed's 1 s, scaled down for tests).
    pub fn run_worker(
        &self,
        photos: PhotoConfig,
        concurrency: usize,
    ) -> (CancellationToken, JoinHandle<WorkerReport>) {
        let cfg = WorkerConfig {
            name: "it-photo".into(),
            queues: vec![lanes_photos::QUEUE.into()],
            concurrency,
            ..WorkerConfig::default()
        };
        let kind = KindConfig {
            retry: RetryPolicy {
                base: Duration::from_millis(50),
                cap: Duration::from_millis(500),
                ..photo_worker::kind_config().retry
            },
            ..photo_worker::kind_config()
        };
        let worker = photo_worker::worker(self.lanes.clone(), cfg, kind, photos).expect("worker");
        let stop = CancellationToken::new();
        let s = stop.clone();
        let handle = tokio::spawn(async move { worker.run(s).await.expect("worker runs") });
        (stop, handle)
    }

    /// Starts a `photo-worker` process on this test's Redis and prefix.
    pub fn spawn_worker(&self, name: &str, args: &[&str]) -> ChildGuard {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_photo-worker"));
        cmd.args(["--name", name, "--gemini-url", &self.gemini_url])
            .args(args)
            .env("REDIS_URL", self.prefix.url())
            .env("LANES_PREFIX", self.prefix.name())
            .env("GEMINI_API_KEY", KEY)
            .env("LANES_RETRY_BASE", "200ms")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        ChildGuard::spawn(&mut cmd).expect("start photo-worker")
    }

    /// Submits photos as one snap, as the broker does.
    pub async fn submit(&self, photos: &[Vec<u8>]) -> BatchId {
        let encoded =
            validate_snap(photos.iter().map(|p| encode_photo(p)).collect()).expect("valid");
        submit_snap(&self.lanes, encoded).await.expect("submit")
    }

    pub async fn status(&self, id: &BatchId) -> SnapStatus {
        snap_status(&self.lanes, id)
            .await
            .expect("status")
            .expect("the job exists")
    }

    /// Waits until the snap has ended.
    pub async fn wait_done(&self, id: &BatchId, timeout: Duration) -> SnapStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let s = self.status(id).await;
            if s.status != SnapState::Processing {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the snap did not finish within {timeout:?}: {}",
                serde_json::to_string_pretty(&s).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
