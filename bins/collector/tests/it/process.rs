//! The real `collector` binary: SIGKILL mid-collection, then a restart, gives exactly the
//! output of a clean run; `--help` documents the defaults.

use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_fakes::channels::{ChannelSpec, ChannelsConfig};
use lanes_testkit::{ChildGuard, Prefix};

use crate::support::{
    FakeApi, assert_collected, collector_cfg, lanes, spawn_worker, tree, wait_finished,
};

fn spawn_collector(prefix: &Prefix, api: &FakeApi, data: &std::path::Path) -> ChildGuard {
    let mut c = Command::new(env!("CARGO_BIN_EXE_collector"));
    c.env("REDIS_URL", prefix.url())
        .env("LANES_PREFIX", prefix.name())
        .env("RUST_LOG", "warn")
        .env("CHANNELS_API_TOKEN", "test:token")
        .args([
            "--lease",
            "2s",
            "--concurrency",
            "3",
            "--download-concurrency",
            "3",
        ])
        .args(["--retry-base", "100ms", "--api-rate", "5000/s,burst=100"])
        .arg("--channels-url")
        .arg(&api.url)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    ChildGuard::spawn(&mut c).expect("spawn collector")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_collection_then_restart_equals_a_clean_run() {
    let cfg = ChannelsConfig {
        rate_per_sec: 100_000.0,
        burst: 10_000,
        history_latency: Duration::from_millis(25),
        file_latency: Duration::from_millis(4),
        ..ChannelsConfig::default()
    };
    let specs = vec![
        ChannelSpec::new("kill_long", 1500).photos(150),
        ChannelSpec::new("kill_mid", 700).photos(150),
        ChannelSpec::new("kill_short", 150).photos(150),
    ];
    let names: Vec<String> = specs.iter().map(|s| s.username.clone()).collect();
    let api = FakeApi::start(specs, cfg).await;

    // The clean run, in process, on its own prefix and directory.
    let clean_prefix = Prefix::new();
    let clean_lanes = lanes(&clean_prefix, Duration::from_secs(15)).await;
    let clean = tempfile::tempdir().expect("tempdir");
    let (stop, worker) = spawn_worker(
        &clean_lanes,
        collector_cfg(&api, clean.path(), "5000/s,burst=100"),
        3,
    );
    let job = collector::dispatch_job(&clean_lanes, names.clone())
        .await
        .expect("dispatch");
    wait_finished(&clean_lanes, &job, Duration::from_secs(60)).await;
    stop.cancel();
    worker.await.expect("worker stops");

    // The crashing run: the real binary, killed once a third of the messages are written.
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, Duration::from_secs(15)).await;
    let data = tempfile::tempdir().expect("tempdir");
    let job = collector::dispatch_job(&lanes, names.clone())
        .await
        .expect("dispatch");
    let mut first = spawn_collector(&prefix, &api, data.path());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = collector::job_status(&lanes, &job)
            .await
            .expect("status")
            .expect("job");
        if s.messages >= 800 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.signal(libc::SIGKILL);
    assert!(
        first.wait_timeout(Duration::from_secs(5)).is_some(),
        "killed"
    );
    let at_kill = collector::job_status(&lanes, &job)
        .await
        .expect("status")
        .expect("job");
    assert!(
        !at_kill.is_finished(),
        "killed mid-collection: {at_kill:#?}"
    );

    let mut second = spawn_collector(&prefix, &api, data.path());
    let status = wait_finished(&lanes, &job, Duration::from_secs(60)).await;
    second.signal(libc::SIGTERM);
    assert!(
        second
            .wait_timeout(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );

    assert_eq!(status.channels_succeeded, 3, "{status:#?}");
    for name in &names {
        assert_collected(&api, data.path(), name, None);
    }
    assert!(
        tree(data.path()) == tree(clean.path()),
        "the output differs from a clean run's"
    );
    let resumed = status
        .result
        .as_ref()
        .map_or(0, |r| r["messages"].as_u64().unwrap_or(0));
    assert_eq!(resumed, 2350, "each message counted once across the crash");
    assert!(
        status.channels.iter().any(|c| c.attempts >= 2),
        "a channel was resumed: {status:#?}"
    );
}

#[test]
fn help_documents_the_flags_and_their_defaults() {
    let out = Command::new(env!("CARGO_BIN_EXE_collector"))
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for flag in [
        "--concurrency",
        "--data-dir",
        "--channels-url",
        "--download-concurrency",
        "--api-rate",
        "--queues",
        "LANES_CONCURRENCY",
        "CHANNELS_API_TOKEN",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(
        help.contains("[default: 4]"),
        "concurrency defaults to 4:\n{help}"
    );
}
