//! Real `photo-worker` processes: a 429 storm across two of them under one shared limit, a
//! worker SIGKILLed in the middle of a Gemini call, and the key's command-line guard.
//!
//! Time is scaled up 60×: the fake's quota is 10 calls per second where Gemini's would be 600
//! per minute, so a test sees many quota windows in seconds.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_fakes::gemini::{Control, FailNext, Quota, SlowNext};
use lanes_photos::SnapState;
use lanes_queue::TaskState;

use crate::support::{Env, fixture};

/// The photos the process tests send (the small ones: debug builds decode slowly).
fn photos(n: usize) -> Vec<Vec<u8>> {
    let files = [
        "red-dutch-oven.jpg",
        "blue-sofa.png",
        "green-vase.webp",
        "yellow-rain-jacket-sideways.jpg",
        "black-camera.jpg",
    ];
    (0..n).map(|i| fixture(files[i % files.len()])).collect()
}

/// Gemini's quota here: 10 calls in any 1-second window ("600/m", scaled 60×). The workers'
/// shared limiter is set a hair under it (9/s), as one does against a real quota, so network
/// jitter can never squeeze an eleventh call into a window.
const QUOTA: u32 = 10;
const RATE: &str = "9/s";

#[tokio::test]
async fn a_429_storm_across_two_processes_completes_every_photo_under_the_quota() {
    let env = Env::new(Some(Quota {
        limit: QUOTA,
        window: Duration::from_secs(1),
    }))
    .await;
    // The storm: Gemini answers the first 6 calls with 429 RESOURCE_EXHAUSTED, retry in 1 s.
    env.fake.control(Control {
        fail_next: Some(FailNext::new(6, 429).retry_delay_ms(1000)),
        ..Control::default()
    });
    let job = env.submit(&photos(20)).await;
    let _a = env.spawn_worker("storm-a", &["--gemini-rate", RATE, "--concurrency", "4"]);
    let _b = env.spawn_worker("storm-b", &["--gemini-rate", RATE, "--concurrency", "4"]);
    let s = env.wait_done(&job, Duration::from_secs(90)).await;

    assert_eq!(s.status, SnapState::Completed);
    assert_eq!((s.succeeded, s.failed), (20, 0), "every photo completes");
    for p in &s.photos {
        assert_eq!(
            p.state,
            TaskState::Succeeded,
            "photo {}: {:?}",
            p.index,
            p.error
        );
    }
    let stats = env.fake.stats();
    assert_eq!(stats.injected_429, 6, "the storm hit");
    assert_eq!(stats.quota_429, 0, "the quota itself never refused a call");
    assert!(
        stats.peak_in_window <= u64::from(QUOTA),
        "Gemini saw {} calls within one window; its limit is {QUOTA}",
        stats.peak_in_window
    );
    assert_eq!(stats.ok, 40);
    // Both processes did work (as their published records say, a heartbeat later).
    let by_name = succeeded_by_worker(&env, 20).await;
    assert!(
        by_name.get("storm-a").is_some_and(|n| *n > 0)
            && by_name.get("storm-b").is_some_and(|n| *n > 0),
        "both worker processes analyzed photos: {by_name:?}"
    );
}

#[tokio::test]
async fn a_worker_killed_mid_call_leaves_its_photo_to_complete_once() {
    let env = Env::new(None).await;
    // The first call (the victim's detection) takes 20 s: the worker is killed during it.
    env.fake.control(Control {
        slow_next: Some(SlowNext {
            count: 1,
            delay_ms: 20_000,
        }),
        ..Control::default()
    });
    let job = env.submit(&photos(1)).await;
    let mut victim = env.spawn_worker("victim", &["--lease", "2s"]);
    let in_call = async {
        while env.fake.stats().in_flight == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), in_call)
        .await
        .expect("the victim is in the middle of a Gemini call");
    victim.signal(libc::SIGKILL);
    assert!(
        victim.wait_timeout(Duration::from_secs(5)).is_some(),
        "killed"
    );

    let _rescuer = env.spawn_worker("rescuer", &["--lease", "2s"]);
    let s = env.wait_done(&job, Duration::from_secs(45)).await;
    let p = &s.photos[0];
    assert_eq!(p.state, TaskState::Succeeded, "{:?}", p.error);
    assert_eq!(p.attempts, 2, "the lease expired and the task ran again");
    assert_eq!(
        p.result.as_ref().map(|r| r.item.name.as_str()),
        Some("Red Cast-Iron Dutch Oven")
    );
    let by_name = succeeded_by_worker(&env, 1).await;
    assert_eq!(by_name.get("rescuer"), Some(&1), "{by_name:?}");
    // Completed once: one success recorded for the queue and for the batch.
    let stats = env
        .lanes
        .queue_stats(lanes_photos::QUEUE)
        .await
        .expect("stats");
    assert_eq!(stats.counters.get("succeeded").copied(), Some(1));
    assert_eq!((s.succeeded, s.done, s.failed), (1, 1, 0));
    assert_eq!(env.fake.stats().text_calls, 1, "priced once");
}

/// Tasks each live worker says it completed, by name, once they add up to `total` (workers
/// publish their records every heartbeat).
async fn succeeded_by_worker(env: &Env, total: u64) -> HashMap<String, u64> {
    let mut by_name = HashMap::new();
    for _ in 0..100 {
        by_name.clear();
        for w in env.lanes.workers().await.expect("workers") {
            *by_name.entry(w.name).or_default() += w.stats.succeeded;
        }
        if by_name.values().sum::<u64>() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    by_name
}

#[test]
fn the_key_comes_from_the_environment_only() {
    let run = |args: &[&str], key: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_photo-worker"));
        cmd.args(args)
            .env_remove("GEMINI_API_KEY")
            .env("REDIS_URL", "redis://127.0.0.1:1/")
            .stdin(Stdio::null());
        if let Some(k) = key {
            cmd.env("GEMINI_API_KEY", k);
        }
        let out = cmd.output().expect("run photo-worker");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&["--gemini-api-key", "sk-on-the-command-line"], None);
    assert!(!ok);
    assert!(err.contains("GEMINI_API_KEY environment variable"), "{err}");
    assert!(!err.contains("sk-on-the-command-line"), "{err}");
    let (ok, err) = run(&[], None);
    assert!(!ok);
    assert!(err.contains("GEMINI_API_KEY is not set"), "{err}");
    let help = Command::new(env!("CARGO_BIN_EXE_photo-worker"))
        .arg("--help")
        .env("GEMINI_API_KEY", "sk-secret-in-env")
        .output()
        .expect("help");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("GEMINI_API_KEY"), "{text}");
    assert!(!text.contains("sk-secret-in-env"), "hide_env_values");
    assert!(
        text.contains("[default: 240s]"),
        "the photo queue's soft limit: {text}"
    );
}
