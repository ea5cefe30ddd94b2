//! A small chaos campaign end to end: the real `chaos` binary starts its own redis-server and
//! worker processes, SIGKILLs and restarts workers, freezes one past its lease and freezes Redis
//! (once past the engine's response timeout), and its verdict (from the workers' independent
//! record) must be clean.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_small_campaign_loses_nothing_duplicates_nothing_and_keeps_every_key_in_order() {
    let out = std::env::temp_dir().join(format!("chaos-it-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("out dir");
    let run = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["run", "--tasks", "1500", "--kills", "5", "--workers", "3"])
        // Two Redis pauses: a short one, then one past the engine's 5 s response timeout.
        .args(["--redis-pauses", "2", "--redis-pause", "2s"])
        .args(["--long-redis-pause", "6s", "--lease", "2s"])
        .args(["--window", "20s", "--deadline", "150s", "--seed", "7"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run the chaos binary");
    let table = String::from_utf8_lossy(&run.stdout);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("chaos.json")).expect("chaos.json written"))
            .expect("chaos.json is JSON");
    let v = &report["verdict"];
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    let context = format!(
        "{table}\n{}\n{}",
        String::from_utf8_lossy(&run.stderr),
        v["problems"]
    );
    assert!(run.status.success(), "chaos run failed:\n{context}");
    assert_eq!(report["passed"], Value::Bool(true), "{context}");
    assert_eq!(n(v, "tasks"), 1500, "{context}");
    for zero in [
        "lost",
        "wrong_outcome",
        "duplicates_acked",
        "unexplained_acks",
        "order_violations",
        "overlaps",
        "batch_mismatches",
        "engine_mismatches",
        "unplanned_tasks",
    ] {
        assert_eq!(n(v, zero), 0, "{zero}: {context}");
    }
    assert_eq!(n(&report, "kills"), 5, "{context}");
    assert_eq!(n(&report, "zombie_pauses"), 1, "{context}");
    assert_eq!(n(&report, "redis_pauses"), 2, "{context}");
    // The chaos reached work in flight: attempts were redelivered beyond the designed retries,
    // and every batch finalized once.
    assert!(n(v, "redeliveries") > 0, "{context}");
    assert_eq!(
        n(v, "finalize_runs_accepted"),
        report["shape"]["batches"].as_u64().unwrap_or(0),
        "{context}"
    );
    assert!(table.contains("duplicates acked"), "the table is printed");
    let _ = std::fs::remove_dir_all(&out);
}
