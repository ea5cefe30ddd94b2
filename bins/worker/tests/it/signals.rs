//! Worker processes killed, terminated and recycled.

use std::time::Duration;

use lanes_testkit::Prefix;

use crate::support::{spawn_worker, status, submit, wait_state};

/// A task that appends its attempt to a file, then sleeps: the file is the independent record.
fn recording_task(record: &std::path::Path, sleep_s: &str) -> String {
    serde_json::json!({
        "cmd": "sh",
        "args": ["-c", format!("echo \"start $LANES_ATTEMPT\" >> {0}; sleep {sleep_s}; echo \"end $LANES_ATTEMPT\" >> {0}", record.display())],
    })
    .to_string()
}

#[test]
fn a_task_whose_worker_is_killed_runs_again_elsewhere_after_the_lease_and_is_acked_once() {
    let p = Prefix::new();
    let dir = std::env::temp_dir().join(format!("lanes-kill-{}", p.name()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let record = dir.join("record");
    let mut victim = spawn_worker(
        &p,
        &["--queues", "jobs", "--exec-allow", "sh", "--name", "victim"],
    );
    let id = submit(
        &p,
        &[
            "--queue",
            "jobs",
            "--kind",
            "exec",
            "--payload",
            &recording_task(&record, "1"),
        ],
    )
    .remove(0);
    let running = wait_state(&p, &id, "running");
    assert!(
        running["worker"]
            .as_str()
            .unwrap_or("")
            .starts_with("victim-"),
        "{running}"
    );

    // Kill only once the command is under way, so the record shows the interrupted attempt.
    lanes_testkit::wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&record)
            .ok()
            .filter(|t| t.contains("start 1"))
    })
    .expect("the first attempt started its command");
    victim.signal(libc::SIGKILL);
    victim
        .wait_timeout(Duration::from_secs(10))
        .expect("killed worker exits");
    let _rescuer = spawn_worker(
        &p,
        &[
            "--queues",
            "jobs",
            "--exec-allow",
            "sh",
            "--name",
            "rescuer",
        ],
    );
    let (v, code) = status(&p, &id, true);
    assert_eq!((v["state"].as_str(), code), (Some("succeeded"), 0), "{v}");
    assert_eq!(v["attempts"], 2, "{v}");

    let lines = std::fs::read_to_string(&record).expect("record");
    assert_eq!(
        lines, "start 1\nstart 2\nend 2\n",
        "killed mid-task, then run once more to the end"
    );
    let stats = lanes_counters(&p);
    assert_eq!(
        (stats["succeeded"].as_u64(), stats["expired"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_hands_in_flight_work_back_and_exits_zero() {
    let p = Prefix::new();
    let mut w = spawn_worker(
        &p,
        &["--queues", "jobs", "--grace", "500ms", "--concurrency", "2"],
    );
    let long = submit(
        &p,
        &[
            "--queue",
            "jobs",
            "--kind",
            "sleep",
            "--payload",
            r#"{"seconds":60}"#,
        ],
    )
    .remove(0);
    let short = submit(
        &p,
        &[
            "--queue",
            "jobs",
            "--kind",
            "sleep",
            "--payload",
            r#"{"ms":200}"#,
        ],
    )
    .remove(0);
    wait_state(&p, &long, "running");
    w.signal(libc::SIGTERM);
    let exit = w
        .wait_timeout(Duration::from_secs(20))
        .expect("exits after its grace period");
    assert_eq!(exit.code(), Some(0));
    let (v, _) = status(&p, &short, false);
    assert_eq!(v["state"], "succeeded", "{v}");
    let (v, _) = status(&p, &long, false);
    assert_eq!(
        (v["state"].as_str(), v["attempts"].as_u64()),
        (Some("queued"), Some(0)),
        "{v}"
    );
    assert_eq!(lanes_running(&p), 0);
}

#[test]
fn max_tasks_recycles_the_process_cleanly() {
    let p = Prefix::new();
    submit(&p, &["--queue", "jobs", "--kind", "noop", "--count", "10"]);
    let mut w = spawn_worker(&p, &["--queues", "jobs", "--max-tasks", "4"]);
    let exit = w
        .wait_timeout(Duration::from_secs(30))
        .expect("exits by itself");
    assert_eq!(exit.code(), Some(0));
    assert_eq!(lanes_counters(&p)["succeeded"], 4);
}

fn lanes_stats(p: &Prefix) -> serde_json::Value {
    let out = crate::support::run(p, &["inspect", "stats", "--json", "--queues", "jobs"]);
    serde_json::from_slice(&out.stdout).expect("stats JSON")
}

fn lanes_counters(p: &Prefix) -> serde_json::Value {
    lanes_stats(p)["queues"][0]["counters"].clone()
}

fn lanes_running(p: &Prefix) -> u64 {
    lanes_stats(p)["queues"][0]["running"]
        .as_u64()
        .unwrap_or(u64::MAX)
}
