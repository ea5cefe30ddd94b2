//! `worker submit | status | cancel | inspect | requeue` from a shell.

use crate::support::{run, spawn_worker, status, submit};
use lanes_testkit::Prefix;

#[test]
fn submit_prints_one_id_per_task_and_status_reports_the_outcome_in_its_exit_code() {
    let p = Prefix::new();
    let ids = submit(&p, &["--queue", "demo", "--kind", "noop", "--count", "5"]);
    assert_eq!(ids.len(), 5);
    assert!(ids.iter().all(|id| id.starts_with("demo.")));
    let failing = submit(
        &p,
        &[
            "--queue",
            "demo",
            "--kind",
            "exec",
            "--payload",
            r#"{"cmd":"false"}"#,
            "--max-retries",
            "0",
        ],
    );
    let not_allowed = submit(
        &p,
        &[
            "--queue",
            "demo",
            "--kind",
            "exec",
            "--payload",
            r#"{"cmd":"rm","args":["-rf","/"]}"#,
        ],
    );
    let (queued, code) = status(&p, &ids[0], false);
    assert_eq!((queued["state"].as_str(), code), (Some("queued"), 1));

    let _w = spawn_worker(
        &p,
        &[
            "--queues",
            "demo",
            "--concurrency",
            "4",
            "--exec-allow",
            "false,sh",
        ],
    );
    for id in &ids {
        let (v, code) = status(&p, id, true);
        assert_eq!((v["state"].as_str(), code), (Some("succeeded"), 0), "{v}");
    }
    let (v, code) = status(&p, &failing[0], true);
    assert_eq!((v["state"].as_str(), code), (Some("dead"), 1), "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("exited with 1"),
        "{v}"
    );
    let (v, code) = status(&p, &not_allowed[0], true);
    assert_eq!((v["state"].as_str(), code), (Some("failed"), 1), "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("not allowed on this worker"),
        "{v}"
    );

    let out = run(&p, &["inspect", "stats", "--json"]);
    let stats: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("inspect stats is JSON");
    assert_eq!(
        stats["workers"].as_array().map(Vec::len),
        Some(1),
        "{stats}"
    );
    assert_eq!(stats["queues"][0]["counters"]["succeeded"], 5, "{stats}");

    let out = run(&p, &["inspect", "dead"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&failing[0]) && text.contains(&not_allowed[0]),
        "{text}"
    );
    let out = run(&p, &["requeue", &failing[0]]);
    assert!(out.status.success());
}

#[test]
fn bad_input_from_the_shell_gets_a_clear_error_and_a_nonzero_exit() {
    let p = Prefix::new();
    let out = run(&p, &["submit", "--kind", "noop", "--payload", "{not json"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--payload is not JSON"),
        "{out:?}"
    );
    let out = run(&p, &["submit", "--queue", "bad queue", "--kind", "noop"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid queue name"),
        "{out:?}"
    );
    let out = run(&p, &["status", "nonsense"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid task id"),
        "{out:?}"
    );
    let (v, code) = status(&p, "demo.0123456789abcdef0123456789abcdef", false);
    assert_eq!((v["state"].as_str(), code), (Some("missing"), 2));
    let out = run(&p, &["--concurrency", "0"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--concurrency must be at least 1"),
        "{out:?}"
    );
}

#[test]
fn cancel_from_the_shell_removes_a_waiting_task() {
    let p = Prefix::new();
    let ids = submit(
        &p,
        &[
            "--kind",
            "sleep",
            "--payload",
            r#"{"ms":10}"#,
            "--delay",
            "1m",
        ],
    );
    let out = run(&p, &["cancel", &ids[0]]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cancelled"));
    let (v, code) = status(&p, &ids[0], false);
    assert_eq!((v["state"].as_str(), code), (Some("cancelled"), 1));
}
