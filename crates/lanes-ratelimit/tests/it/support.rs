//! Shared helpers: connections, a `Limits` per test prefix, and child processes that re-run this
//! test binary in a "child" mode.

use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_ratelimit::Limits;
use lanes_redis::{Conn, Endpoint, SharedOptions};
use lanes_testkit::{ChildGuard, Prefix};

/// Environment variable naming the child mode (`hammer`, `holder`).
pub const CHILD_MODE: &str = "LANES_RL_TEST_CHILD";
/// Environment variable carrying the parent test's key prefix to a child.
pub const CHILD_PREFIX: &str = "LANES_RL_TEST_PREFIX";
/// Extra per-mode argument for a child.
pub const CHILD_ARG: &str = "LANES_RL_TEST_ARG";

/// A shared connection to the test Redis (one server or a cluster, as the URL says).
pub async fn connect(url: &str) -> Conn {
    Endpoint::open(url)
        .expect("valid redis url")
        .shared(SharedOptions::default())
        .await
        .expect("connect to the test redis")
}

/// A fresh `Limits` (its own connection) under the test's prefix.
pub async fn limits(prefix: &Prefix) -> Limits {
    Limits::new(connect(prefix.url()).await, prefix.name()).expect("valid prefix")
}

/// Runs this test binary again as a child in `mode`, pointed at the same Redis and prefix.
pub fn spawn_child(mode: &str, prefix: &Prefix, arg: &str) -> ChildGuard {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["child_entry", "--exact", "--nocapture", "--quiet"])
        .env(CHILD_MODE, mode)
        .env(CHILD_PREFIX, prefix.name())
        .env(CHILD_ARG, arg)
        .env("REDIS_URL", prefix.url())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    ChildGuard::spawn(&mut cmd).expect("spawn a child test process")
}

/// Waits (blocking) for a child to exit successfully; 60 s is a hang guard, not a bound.
pub fn expect_success(child: &mut ChildGuard) {
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .expect("child process finished");
    assert!(status.success(), "child process failed: {status}");
}

/// Dispatches a child process to its mode; returns at once when not a child.
pub fn child_main() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let prefix = std::env::var(CHILD_PREFIX).expect("child prefix in the environment");
    let arg = std::env::var(CHILD_ARG).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        match mode.as_str() {
            "hammer" => crate::hammer::child(&prefix, &arg).await,
            "holder" => crate::semaphore::child_holder(&prefix).await,
            other => panic!("unknown child mode {other:?}"),
        }
    });
}

/// Runs `fut` with a generous hang guard: a test that hangs fails instead of blocking the run.
pub async fn guard<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} hung for 60 s"),
    }
}

/// PTTL of a key in milliseconds (-1 no expiry, -2 missing).
pub async fn pttl(conn: &mut Conn, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(conn)
        .await
        .expect("PTTL")
}
