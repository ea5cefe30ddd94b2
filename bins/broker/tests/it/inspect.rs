//! `broker inspect`: the same tables and JSON as `worker inspect`, from the broker's reader.

use broker::inspect::{Inspect, inspect};
use serde_json::{Value, json};

use crate::support::{Ctx, kill_next, lease_next};

async fn run(ctx: &Ctx, what: Inspect, json: bool) -> String {
    let lanes = ctx.lanes().await;
    let mut out = Vec::new();
    inspect(&lanes, what, None, json, &mut out)
        .await
        .expect("inspect");
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test]
async fn stats_and_dead_show_queues_and_dead_letters() {
    let ctx = Ctx::new();
    for _ in 0..3 {
        ctx.enqueue("inspected", json!({"kind": "k"})).await;
    }
    let lanes = ctx.lanes().await;
    let dead = kill_next(&lanes, "inspected").await;
    lease_next(&lanes, "inspected").await;

    let table = run(&ctx, Inspect::Stats, false).await;
    let row = table
        .lines()
        .find(|l| l.starts_with("inspected "))
        .unwrap_or_else(|| panic!("a row for the queue: {table}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols, ["inspected", "1", "0", "1", "1", "3", "0"], "{table}");

    let v: Value = serde_json::from_str(&run(&ctx, Inspect::Stats, true).await).expect("json");
    assert_eq!(v["queues"][0]["queue"], "inspected");
    assert_eq!(v["queues"][0]["running"], 1);

    let dead_table = run(&ctx, Inspect::Dead, false).await;
    assert!(dead_table.contains(dead.as_str()), "{dead_table}");
    assert!(dead_table.contains("boom"), "{dead_table}");

    let active = run(&ctx, Inspect::Active, false).await;
    assert!(active.contains("(0 workers)"), "{active}");
}
