//! `--rate-limit` (env `LANES_RATE_LIMIT`): refused with a clear message when malformed, and one
//! limit shared by every worker process consuming the queue.

use std::time::Duration;

use lanes_testkit::Prefix;

use crate::support::{cmd, spawn_worker, status, submit};

#[test]
fn malformed_rate_limits_are_refused_at_startup() {
    let p = Prefix::new();
    for (value, says) in [
        ("photos=fast", "expected COUNT/PERIOD"),
        ("=5/s", "missing queue name"),
        ("photos=0/s", "rate must be positive"),
        ("photos", "is not QUEUE=RATE"),
    ] {
        let by_flag = cmd(&p)
            .args(["--queues", "photos", "--rate-limit", value])
            .output()
            .expect("run worker");
        let by_env = cmd(&p)
            .args(["--queues", "photos"])
            .env("LANES_RATE_LIMIT", value)
            .output()
            .expect("run worker");
        for (how, out) in [("flag", by_flag), ("env", by_env)] {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{how} {value:?} was accepted: {stderr}"
            );
            assert!(
                stderr.contains("--rate-limit") && stderr.contains(says),
                "{how} {value:?}: {stderr}"
            );
        }
    }
}

/// Most starts in any closed window of `window_ms`.
fn max_in_window(starts: &[u64], window_ms: u64) -> usize {
    let mut best = 0;
    let mut end = 0;
    for (i, &t) in starts.iter().enumerate() {
        while end < starts.len() && starts[end] <= t + window_ms {
            end += 1;
        }
        best = best.max(end - i);
    }
    best
}

#[test]
fn two_worker_processes_share_one_queue_limit() {
    const TASKS: usize = 40;
    let p = Prefix::new();
    let ids = submit(
        &p,
        &[
            "--queue",
            "jobs",
            "--kind",
            "noop",
            "--count",
            &TASKS.to_string(),
        ],
    );
    let args = [
        "--queues",
        "jobs",
        "--concurrency",
        "4",
        "--rate-limit",
        "jobs=20/s",
    ];
    let _a = spawn_worker(&p, &args);
    let _b = spawn_worker(&p, &args);
    let mut starts = Vec::new();
    for id in &ids {
        let (v, code) = status(&p, id, true);
        assert_eq!((v["state"].as_str(), code), (Some("succeeded"), 0), "{v}");
        assert_eq!(v["attempts"], 1, "nothing re-queued for the limit: {v}");
        starts.push(v["started_at_ms"].as_u64().expect("started_at_ms"));
    }
    starts.sort_unstable();
    // 20/s with burst 1: at most 20 + 1 starts in any closed 1 s window (Redis clock).
    let most = max_in_window(&starts, 1000);
    assert!(most <= 21, "{most} starts in one second: {starts:?}");
    let span = Duration::from_millis(starts[TASKS - 1] - starts[0]);
    let ratio = TASKS as f64 / (20.0 * span.as_secs_f64());
    assert!(ratio >= 0.9, "ran at {ratio:.2} of the limit: {starts:?}");
}
