//! Spawning `worker` processes against the test Redis, under a test's own key prefix.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use lanes_testkit::{ChildGuard, Prefix};
use serde_json::Value;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_worker"))
}

/// A `worker` command for this prefix, with a short lease.
pub fn cmd(prefix: &Prefix) -> Command {
    let mut c = Command::new(bin());
    c.env("REDIS_URL", prefix.url())
        .env("LANES_PREFIX", prefix.name())
        .env("LANES_LEASE", "2s")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    c
}

pub fn spawn_worker(prefix: &Prefix, args: &[&str]) -> ChildGuard {
    let mut c = cmd(prefix);
    c.args(args).stdout(Stdio::null()).stderr(Stdio::inherit());
    ChildGuard::spawn(&mut c).expect("spawn worker")
}

pub fn run(prefix: &Prefix, args: &[&str]) -> Output {
    cmd(prefix).args(args).output().expect("run worker cli")
}

pub fn submit(prefix: &Prefix, args: &[&str]) -> Vec<String> {
    let mut all = vec!["submit"];
    all.extend_from_slice(args);
    let out = run(prefix, &all);
    assert!(
        out.status.success(),
        "submit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `worker status ID` as JSON plus the exit code.
pub fn status(prefix: &Prefix, id: &str, wait: bool) -> (Value, i32) {
    let mut args = vec!["status", id];
    if wait {
        args.extend(["--wait", "--timeout", "60s"]);
    }
    let out = run(prefix, &args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status output is JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (v, out.status.code().unwrap_or(-1))
}

/// Waits (up to 30 s) until the task's state is `want`.
pub fn wait_state(prefix: &Prefix, id: &str, want: &str) -> Value {
    lanes_testkit::wait_for(Duration::from_secs(30), || {
        let (v, _) = status(prefix, id, false);
        (v["state"] == want).then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "task {id} never reached {want}: {}",
            status(prefix, id, false).0
        )
    })
}
