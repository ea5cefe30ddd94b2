//! Shared helpers: a client per test prefix, a worker running in the background, waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lanes_queue::{
    Config, KindConfig, Lanes, TaskId, TaskInfo, TaskState, Worker, WorkerConfig, WorkerReport,
};
use lanes_testkit::Prefix;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const LEASE: Duration = Duration::from_secs(1);

pub struct Env {
    /// Held so the test's keys are deleted when it ends.
    #[allow(dead_code)]
    pub prefix: Prefix,
    pub lanes: Lanes,
}

pub async fn env() -> Env {
    env_with(|_| {}).await
}

pub async fn env_with(tweak: impl FnOnce(&mut Config)) -> Env {
    let prefix = Prefix::new();
    let mut cfg = Config {
        prefix: prefix.name().to_owned(),
        lease: LEASE,
        ..Config::default()
    };
    tweak(&mut cfg);
    let lanes = Lanes::connect(prefix.url(), cfg)
        .await
        .expect("connect to the test redis");
    Env { prefix, lanes }
}

/// Worker settings for tests: fast heartbeat, short waits, fast retries.
pub fn worker_cfg(queues: &[&str], concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        name: "test".into(),
        queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        concurrency,
        heartbeat: Duration::from_millis(200),
        idle_wait: Duration::from_millis(500),
        grace: Duration::from_secs(5),
        default_kind: fast_retries(3),
        ..WorkerConfig::default()
    }
}

pub fn fast_retries(max: u32) -> KindConfig {
    KindConfig::default()
        .max_retries(max)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
}

pub struct Running {
    pub stop: CancellationToken,
    pub handle: JoinHandle<lanes_queue::Result<WorkerReport>>,
}

impl Running {
    pub async fn shutdown(self) -> WorkerReport {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("worker stops within 30s")
            .expect("worker task joins")
            .expect("worker run succeeds")
    }
}

pub fn start(worker: Worker) -> Running {
    let stop = CancellationToken::new();
    let handle = tokio::spawn(worker.run(stop.clone()));
    Running { stop, handle }
}

/// Polls the task until it is final (or 30 s pass, then panics).
pub async fn wait_final(lanes: &Lanes, id: &TaskId) -> TaskInfo {
    wait_state(lanes, id, |s| s.is_final()).await
}

pub async fn wait_state(lanes: &Lanes, id: &TaskId, want: impl Fn(TaskState) -> bool) -> TaskInfo {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info = lanes.task(id).await.expect("read task");
        if let Some(info) = info {
            if want(info.state) {
                return info;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {id} stuck in {:?}",
                info.state
            );
        } else {
            assert!(tokio::time::Instant::now() < deadline, "task {id} missing");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counts calls; clone it into handlers.
#[derive(Clone, Default)]
pub struct Calls(pub Arc<AtomicUsize>);

impl Calls {
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}
