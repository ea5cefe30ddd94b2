//! Shared helpers: connections, a `Locks` per test prefix, the contention recorder, and child
//! processes that re-run this test binary in a "child" mode.

use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_lock::{Guard, Locks};
use lanes_redis::{Conn, Endpoint, SharedOptions};
use lanes_testkit::{ChildGuard, Prefix};
use redis::AsyncCommands;

/// Environment variable naming the child mode (`contend`, `holder`).
pub const CHILD_MODE: &str = "LANES_LOCK_TEST_CHILD";
/// Environment variable carrying the parent test's key prefix to a child.
pub const CHILD_PREFIX: &str = "LANES_LOCK_TEST_PREFIX";

/// A shared connection to the test Redis (one server or a cluster, as the URL says).
pub async fn connect(url: &str) -> Conn {
    Endpoint::open(url)
        .expect("valid redis url")
        .shared(SharedOptions::default())
        .await
        .expect("connect to the test redis")
}

/// A `Locks` with its own connection under `prefix`, waiting by polling (no blocking client).
pub async fn polling_locks_at(url: &str, prefix: &str) -> Locks {
    Locks::new(connect(url).await, prefix).expect("valid prefix")
}

/// A `Locks` with its own connection under `prefix`, waiting with `BLPOP` on release signals.
pub async fn blocking_locks_at(url: &str, prefix: &str) -> Locks {
    let endpoint = Endpoint::open(url).expect("valid redis url");
    polling_locks_at(url, prefix)
        .await
        .with_wait_client(endpoint)
}

pub async fn polling_locks(prefix: &Prefix) -> Locks {
    polling_locks_at(prefix.url(), prefix.name()).await
}

pub async fn blocking_locks(prefix: &Prefix) -> Locks {
    blocking_locks_at(prefix.url(), prefix.name()).await
}

/// A test-owned key under the prefix (not a lock key: the recorder's bookkeeping).
pub fn test_key(prefix: &str, name: &str) -> String {
    format!("{prefix}:test:{name}")
}

/// The critical section of the contention tests: counts holders inside in Redis (a second
/// holder inside is a violation), appends the fencing token to the order log, and checks the
/// guard was not lost meanwhile.
pub async fn critical_section(conn: &mut Conn, prefix: &str, guard: &Guard) {
    let inside: i64 = conn
        .incr(test_key(prefix, "inside"), 1)
        .await
        .expect("INCR inside");
    if inside != 1 {
        let _: usize = conn
            .rpush(
                test_key(prefix, "violations"),
                format!("{inside} holders inside at fence {}", guard.fencing_token()),
            )
            .await
            .expect("RPUSH violation");
    }
    let _: usize = conn
        .rpush(test_key(prefix, "fences"), guard.fencing_token())
        .await
        .expect("RPUSH fence");
    tokio::time::sleep(Duration::from_millis(1)).await;
    let _: i64 = conn
        .decr(test_key(prefix, "inside"), 1)
        .await
        .expect("DECR inside");
    if guard.is_lost() {
        let _: usize = conn
            .rpush(
                test_key(prefix, "violations"),
                format!("lost while inside at fence {}", guard.fencing_token()),
            )
            .await
            .expect("RPUSH violation");
    }
}

/// Checks what the critical sections recorded: no violation, `expected` entries, fencing tokens
/// strictly increasing in the order the holders entered.
pub async fn assert_exclusive(prefix: &Prefix, expected: usize) {
    let mut conn = connect(prefix.url()).await;
    let violations: Vec<String> = conn
        .lrange(test_key(prefix.name(), "violations"), 0, -1)
        .await
        .expect("LRANGE violations");
    assert!(
        violations.is_empty(),
        "mutual exclusion broken: {violations:?}"
    );
    let fences: Vec<u64> = conn
        .lrange(test_key(prefix.name(), "fences"), 0, -1)
        .await
        .expect("LRANGE fences");
    assert_eq!(fences.len(), expected, "every round entered once");
    for pair in fences.windows(2) {
        assert!(
            pair[0] < pair[1],
            "fencing tokens not strictly increasing: {} then {}",
            pair[0],
            pair[1]
        );
    }
}

/// Runs this test binary again as a child in `mode`, pointed at the same Redis and prefix.
pub fn spawn_child(mode: &str, prefix: &Prefix) -> ChildGuard {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["child_entry", "--exact", "--nocapture", "--quiet"])
        .env(CHILD_MODE, mode)
        .env(CHILD_PREFIX, prefix.name())
        .env("REDIS_URL", prefix.url())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    ChildGuard::spawn(&mut cmd).expect("spawn a child test process")
}

/// Waits (blocking) for a child to exit successfully; 120 s is a hang guard, not a bound.
pub fn expect_success(child: &mut ChildGuard) {
    let status = child
        .wait_timeout(Duration::from_secs(120))
        .expect("child process finished");
    assert!(status.success(), "child process failed: {status}");
}

/// Dispatches a child process to its mode; returns at once when not a child.
pub fn child_main() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let prefix = std::env::var(CHILD_PREFIX).expect("child prefix in the environment");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        match mode.as_str() {
            "contend" => crate::contention::child_contend(&prefix).await,
            "holder" => crate::expiry::child_holder(&prefix).await,
            other => panic!("unknown child mode {other:?}"),
        }
    });
}

/// Runs `fut` with a generous hang guard: a test that hangs fails instead of blocking the run.
pub async fn guard<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(90), fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} hung for 90 s"),
    }
}

/// Polls the list `key` until it has an element, and returns the first one.
pub async fn first_in_list(conn: &mut Conn, key: &str) -> String {
    loop {
        let first: Option<String> = conn.lindex(key, 0).await.expect("LINDEX");
        if let Some(first) = first {
            return first;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
