//! `broker inspect queues` and `broker inspect keys [--queue Q]`: queues with depths and
//! counters, keys (lanes) with their executing and queued tasks and positions, as tables and
//! JSON, from the library and from the real binary.

use broker::inspect::{Inspect, inspect};
use serde_json::{Value, json};

use crate::support::{Ctx, lease_next};

async fn run(ctx: &Ctx, what: Inspect, queues: Option<&[&str]>, json: bool) -> String {
    let lanes = ctx.lanes().await;
    let queues = queues.map(|q| q.iter().map(|s| (*s).to_owned()).collect());
    let mut out = Vec::new();
    inspect(&lanes, what, queues, json, &mut out)
        .await
        .expect("inspect");
    String::from_utf8(out).expect("utf-8")
}

/// `tk`: project-1 has three tasks (the first running), project-2 one queued, plus an unkeyed
/// task. `wide`: a key of two slots with both running and one waiting. `other`: a keyed task
/// in a queue the filter leaves out.
async fn setup(ctx: &Ctx) -> Vec<String> {
    let mut ids = Vec::new();
    for key in ["project-1", "project-1", "project-1", "project-2"] {
        ids.push(
            ctx.enqueue("tk", json!({"kind": "ticket", "key": key}))
                .await,
        );
    }
    ctx.enqueue("tk", json!({"kind": "plain"})).await;
    for _ in 0..3 {
        let body = json!({"kind": "fan", "key": "wide", "key_concurrency": 2});
        ids.push(ctx.enqueue("wq", body).await);
    }
    ctx.enqueue("other", json!({"kind": "x", "key": "elsewhere"}))
        .await;
    let lanes = ctx.lanes().await;
    let first = lease_next(&lanes, "tk").await;
    assert_eq!(first.lease.id.as_str(), ids[0]);
    lease_next(&lanes, "wq").await;
    lease_next(&lanes, "wq").await;
    ids
}

fn tasks(key: &Value) -> Vec<(String, String, Value)> {
    key["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().expect("id").to_owned(),
                t["state"].as_str().expect("state").to_owned(),
                t.get("key_position").cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[tokio::test]
async fn keys_show_executing_and_queued_tasks_with_positions() {
    let ctx = Ctx::new();
    let ids = setup(&ctx).await;

    let v: Value =
        serde_json::from_str(&run(&ctx, Inspect::Keys, Some(&["tk"]), true).await).expect("json");
    let keys = v.as_array().expect("a list of keys");
    assert_eq!(keys.len(), 2, "{v:#}");
    let p1 = &keys[0];
    assert_eq!(
        (&p1["queue"], &p1["key"], &p1["slots_held"], &p1["waiting"]),
        (&json!("tk"), &json!("project-1"), &json!(1), &json!(2)),
        "{v:#}"
    );
    assert_eq!(p1["holder"], ids[0].as_str());
    assert_eq!(p1["holder_state"], "running");
    assert_eq!(
        tasks(p1),
        vec![
            (ids[0].clone(), "running".into(), Value::Null),
            (ids[1].clone(), "queued".into(), json!(1)),
            (ids[2].clone(), "queued".into(), json!(2)),
        ],
        "{v:#}"
    );
    assert_eq!(p1["tasks"][0]["worker"], "w1");
    assert_eq!(
        tasks(&keys[1]),
        vec![(ids[3].clone(), "queued".into(), json!(1))]
    );

    // A key of two slots has no single holder: its running tasks are found by their key.
    let v: Value =
        serde_json::from_str(&run(&ctx, Inspect::Keys, Some(&["wq"]), true).await).expect("json");
    let wide = &v[0];
    assert_eq!(
        (&wide["slots_held"], &wide["waiting"]),
        (&json!(2), &json!(1))
    );
    let states: Vec<(String, Value)> = tasks(wide).into_iter().map(|(_, s, p)| (s, p)).collect();
    assert_eq!(
        states,
        vec![
            ("running".into(), Value::Null),
            ("running".into(), Value::Null),
            ("queued".into(), json!(1)),
        ]
    );
    assert_eq!(tasks(wide)[2].0, ids[6]);

    // Without a filter every queue's keys are listed; the table has a row per task.
    let table = run(&ctx, Inspect::Keys, None, false).await;
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let row = |id: &str| {
        rows.iter()
            .find(|r| r.contains(&id))
            .unwrap_or_else(|| panic!("a row for {id}: {table}"))
            .clone()
    };
    assert_eq!(
        row(&ids[0]),
        ["tk", "project-1", "running", "-", &ids[0], "ticket", "w1"]
    );
    assert_eq!(
        row(&ids[2]),
        ["tk", "project-1", "queued", "2", &ids[2], "ticket"]
    );
    assert!(table.contains("elsewhere"), "{table}");
    assert!(table.ends_with("(4 keys with work)\n"), "{table}");
}

#[tokio::test]
async fn queues_show_depths_and_counters() {
    let ctx = Ctx::new();
    setup(&ctx).await;
    let v: Value =
        serde_json::from_str(&run(&ctx, Inspect::Queues, None, true).await).expect("json");
    let names: Vec<&str> = v
        .as_array()
        .expect("a list of queues")
        .iter()
        .map(|q| q["queue"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["other", "tk", "wq"]);
    let tk = &v[1];
    assert_eq!(
        (&tk["queued"], &tk["waiting_on_key"], &tk["running"]),
        (&json!(4), &json!(2), &json!(1)),
        "{tk:#}"
    );
    assert_eq!(tk["counters"]["enqueued"], 5);

    let table = run(&ctx, Inspect::Queues, Some(&["tk"]), false).await;
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("tk "))
        .unwrap_or_else(|| panic!("a row for tk: {table}"))
        .split_whitespace()
        .collect();
    // QUEUE QUEUED ON-KEY SCHEDULED RUNNING DEAD ENQUEUED SUCCEEDED FAILED RETRIED EXPIRED CANCELLED
    assert_eq!(
        row,
        ["tk", "4", "2", "0", "1", "0", "5", "0", "0", "0", "0", "0"],
        "{table}"
    );
    assert!(table.ends_with("(1 queues)\n"), "{table}");
}

#[tokio::test]
async fn the_binary_inspects_keys_of_one_queue_as_json() {
    let ctx = Ctx::new();
    let ids = setup(&ctx).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["inspect", "keys", "--queue", "tk", "--json"])
        .env("REDIS_URL", ctx.prefix.url())
        .env("LANES_PREFIX", ctx.prefix.name())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run broker inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    let keys: Vec<&str> = v
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, ["project-1", "project-2"]);
    assert_eq!(v[0]["tasks"][2]["id"], ids[2].as_str());
    assert_eq!(v[0]["tasks"][2]["key_position"], 2);

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["inspect", "queues"])
        .env("REDIS_URL", ctx.prefix.url())
        .env("LANES_PREFIX", ctx.prefix.name())
        .output()
        .await
        .expect("run broker inspect");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && table.starts_with("QUEUE"),
        "{table}"
    );
    assert!(table.contains("(3 queues)"), "{table}");
}
