//! The Gemini API key never leaves the photo worker: two `photo-worker` processes, one with the
//! key the fake accepts and one with a wrong key (its calls fail, and failures are where keys
//! leak), both with distinctive random keys and debug logging. Afterwards every line either
//! process printed, every key and value in Redis (all types, gzip payloads inflated) and every
//! status answer the test read hold neither key.

use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_fakes::gemini::{GeminiFake, GeminiFakeConfig};
use lanes_photos::{encode_photo, snap_status, submit_snap, validate_snap};
use lanes_queue::Lanes;
use lanes_testkit::{ChildGuard, Prefix, dump_redis};
use tokio_util::sync::CancellationToken;

use crate::support::fixture;

fn canary(what: &str) -> String {
    format!(
        "S3cr3t-CANARY-{what}-{:016x}",
        fastrand::u64(..) ^ u64::from(std::process::id())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gemini_key_is_in_no_log_redis_value_or_status() {
    let good = canary("gemini");
    let wrong = canary("wrong-gemini");
    let fake = GeminiFake::new(GeminiFakeConfig {
        key: Some(good.clone()),
        ..GeminiFakeConfig::default()
    });
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let url = fake.spawn(stop).await.expect("serve the fake");
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
    let dir = tempfile::tempdir().expect("temp dir");
    let spawn = |name: &str, key: &str| {
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log handle");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_photo-worker"));
        cmd.args(["--name", name, "--gemini-url", &url])
            .env("REDIS_URL", prefix.url())
            .env("LANES_PREFIX", prefix.name())
            .env("GEMINI_API_KEY", key)
            .env("LANES_RETRY_BASE", "200ms")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        (
            ChildGuard::spawn(&mut cmd).expect("start photo-worker"),
            log,
        )
    };
    let mut answers = String::new();
    let mut logs = Vec::new();
    // One worker at a time, so each snap meets the key under test.
    for (name, key) in [("good-key", &good), ("wrong-key", &wrong)] {
        let (worker, log) = spawn(name, key);
        let photos =
            validate_snap(vec![encode_photo(&fixture("red-dutch-oven.jpg"))]).expect("valid");
        let id = submit_snap(&lanes, photos).await.expect("submit");
        let mut status = None;
        for _ in 0..600 {
            let s = snap_status(&lanes, &id)
                .await
                .expect("status")
                .expect("the snap exists");
            answers.push_str(&serde_json::to_string(&s).expect("json"));
            if s.status != lanes_photos::SnapState::Processing {
                status = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = status.unwrap_or_else(|| panic!("the {name} snap did not end"));
        let want = if name == "good-key" {
            lanes_photos::SnapState::Completed
        } else {
            lanes_photos::SnapState::Failed
        };
        assert_eq!(
            status.status,
            want,
            "{name}: {}",
            serde_json::to_string(&status).unwrap_or_default()
        );
        // Everything in Redis while the worker still lives (its record included).
        answers.push_str(&dump_redis(prefix.url()).expect("dump redis"));
        drop(worker);
        logs.push(std::fs::read_to_string(&log).expect("read the log"));
    }
    let logs = logs.join("\n");
    assert!(
        logs.lines().count() > 10,
        "the workers logged at debug level: {logs}"
    );
    let redis = dump_redis(prefix.url()).expect("dump redis");
    assert!(
        redis.contains(prefix.name()),
        "the dump covers this test's keys"
    );
    for secret in [&good, &wrong] {
        assert!(!logs.contains(secret.as_str()), "{secret} in a log");
        assert!(!redis.contains(secret.as_str()), "{secret} in redis");
        assert!(!answers.contains(secret.as_str()), "{secret} in a status");
    }
}
