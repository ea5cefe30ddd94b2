//! The generic task and queue routes: enqueue (one and many), read, cancel and stop, dead
//! letters and re-queue, queues and workers, and every kind of bad input.

use axum::http::{StatusCode, header};
use lanes_queue::{TaskState, WorkerInfo, WorkerStats};
use serde_json::json;

use crate::support::{
    Ctx, delete, get, kill_next, lease_next, missing_id, post, post_json, succeed_next,
};

#[tokio::test]
async fn enqueue_one_answers_202_and_the_task_reads_back_queued() {
    let ctx = Ctx::new();
    let r = ctx
        .send(post_json(
            "/api/queues/photos/tasks",
            r#"{"kind":"analyze","payload":{"photo":"ref:42"},"priority":7,"max_retries":2}"#,
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = r.json()["task_id"].as_str().expect("task_id").to_owned();
    assert!(id.starts_with("photos."), "{id}");
    assert_eq!(
        r.headers[header::LOCATION].to_str().ok(),
        Some(format!("/api/tasks/{id}").as_str())
    );

    let t = ctx.send(get(&format!("/api/tasks/{id}"))).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text());
    let t = t.json();
    assert_eq!(t["id"], id.as_str());
    assert_eq!(t["queue"], "photos");
    assert_eq!(t["kind"], "analyze");
    assert_eq!(t["state"], "queued");
    assert_eq!(t["priority"], 7);
    assert_eq!(t["position"], 0);
    assert!(t.get("payload").is_none(), "payloads are never shown");
}

#[tokio::test]
async fn enqueue_a_list_answers_202_with_every_id_in_order() {
    let ctx = Ctx::new();
    let body = json!([
        {"kind": "a"},
        {"kind": "b", "delay_s": 3600},
        {"kind": "c", "payload": [1, 2, 3], "soft_limit_s": 1.5, "hard_limit_s": 3},
    ]);
    let r = ctx
        .send(post_json("/api/queues/bulk/tasks", &body.to_string()))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let ids: Vec<String> = r.json()["task_ids"]
        .as_array()
        .expect("task_ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    let mut kinds = Vec::new();
    for id in &ids {
        let t = ctx.send(get(&format!("/api/tasks/{id}"))).await.json();
        kinds.push((t["kind"].clone(), t["state"].clone()));
    }
    assert_eq!(
        kinds,
        vec![
            (json!("a"), json!("queued")),
            (json!("b"), json!("scheduled")),
            (json!("c"), json!("queued")),
        ]
    );
    let q = ctx.send(get("/api/queues/bulk")).await.json();
    assert_eq!(
        (q["queued"].clone(), q["scheduled"].clone()),
        (json!(2), json!(1))
    );
}

#[tokio::test]
async fn malformed_json_is_400_with_a_message() {
    let ctx = Ctx::new();
    let r = ctx
        .send(post_json("/api/queues/photos/tasks", r#"{"kind": "x", "#))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().starts_with("malformed JSON"), "{}", r.text());

    let trailing = ctx
        .send(post_json("/api/queues/photos/tasks", r#"{"kind": "x"} {}"#))
        .await;
    assert_eq!(trailing.status, StatusCode::BAD_REQUEST);
    assert!(
        trailing.message().contains("malformed JSON"),
        "{}",
        trailing.text()
    );
}

#[tokio::test]
async fn bad_fields_are_400_naming_the_field() {
    let ctx = Ctx::new();
    let cases = [
        (r#"{"payload": {}}"#, "missing field `kind`"),
        (r#"{"kind": "x", "delay": 5}"#, "unknown field `delay`"),
        (
            r#"[{"kind": "x"}, {"kind": "y", "priority": "high"}]"#,
            "[1].priority",
        ),
        (
            r#"[{"kind": "x"}, {"kind": "y", "priority": 12}]"#,
            "[1].priority",
        ),
        (r#"{"kind": "x", "delay_s": -1}"#, "delay_s"),
        (r#"{"kind": ""}"#, "invalid task kind"),
        (r#"[]"#, "empty"),
        (r#""just a string""#, "expected a task object"),
    ];
    for (body, want) in cases {
        let r = ctx.send(post_json("/api/queues/photos/tasks", body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        assert!(r.message().contains(want), "{body}: {}", r.text());
    }
    let q = ctx.send(get("/api/queues")).await.json();
    assert_eq!(q["queues"], json!([]), "nothing was enqueued");
}

#[tokio::test]
async fn a_bad_queue_name_is_400() {
    let ctx = Ctx::new();
    let r = ctx
        .send(post_json(
            "/api/queues/no%20spaces/tasks",
            r#"{"kind":"x"}"#,
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.message().contains("invalid queue name"), "{}", r.text());
    let long = "q".repeat(65);
    let r = ctx.send(get(&format!("/api/queues/{long}"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415() {
    let ctx = Ctx::new();
    let mut req = post_json("/api/queues/photos/tasks", r#"{"kind":"x"}"#);
    req.headers_mut()
        .insert(header::CONTENT_TYPE, "text/plain".parse().expect("value"));
    let r = ctx.send(req).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.message().contains("application/json"), "{}", r.text());
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let ctx = Ctx::with(|c| c.body_limit = 4096);
    let big = json!({"kind": "x", "payload": {"blob": "a".repeat(10_000)}}).to_string();
    let r = ctx.send(post_json("/api/queues/photos/tasks", &big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.message().contains("4096"), "{}", r.text());
    let small = ctx
        .send(post_json("/api/queues/photos/tasks", r#"{"kind":"x"}"#))
        .await;
    assert_eq!(small.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_unknown_task_is_404_and_a_malformed_id_is_400() {
    let ctx = Ctx::new();
    let id = missing_id("photos");
    for req in [
        get(&format!("/api/tasks/{id}")),
        delete(&format!("/api/tasks/{id}")),
        post(&format!("/api/tasks/{id}/requeue")),
    ] {
        let r = ctx.send(req).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        assert!(r.message().contains(&id), "{}", r.text());
    }
    let r = ctx.send(get("/api/tasks/not-a-task-id")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("invalid task id"), "{}", r.text());
}

#[tokio::test]
async fn cancelling_a_queued_task_takes_it_off_the_queue() {
    let ctx = Ctx::new();
    let keep = ctx.enqueue("tickets", json!({"kind": "run"})).await;
    let gone = ctx.enqueue("tickets", json!({"kind": "run"})).await;
    let r = ctx.send(delete(&format!("/api/tasks/{gone}"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"task_id": gone, "outcome": "cancelled"}));

    let t = ctx.send(get(&format!("/api/tasks/{gone}"))).await.json();
    assert_eq!(t["state"], "cancelled");
    let q = ctx.send(get("/api/queues/tickets")).await.json();
    assert_eq!(q["queued"], 1);
    assert_eq!(q["counters"]["cancelled"], 1);
    let lanes = ctx.lanes().await;
    let next = lease_next(&lanes, "tickets").await;
    assert_eq!(
        next.lease.id.as_str(),
        keep,
        "only the other task is left to run"
    );
}

#[tokio::test]
async fn stopping_a_running_task_is_202() {
    let ctx = Ctx::new();
    let id = ctx.enqueue("tickets", json!({"kind": "run"})).await;
    let lanes = ctx.lanes().await;
    lease_next(&lanes, "tickets").await;
    let r = ctx.send(delete(&format!("/api/tasks/{id}"))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["outcome"], "stopping");
    let t = ctx.send(get(&format!("/api/tasks/{id}"))).await.json();
    assert_eq!(
        (t["state"].clone(), t["stop_requested"].clone()),
        (json!("running"), json!(true))
    );
}

#[tokio::test]
async fn cancelling_a_finished_task_is_409() {
    let ctx = Ctx::new();
    let id = ctx.enqueue("tickets", json!({"kind": "run"})).await;
    let lanes = ctx.lanes().await;
    succeed_next(&lanes, "tickets").await;
    let r = ctx.send(delete(&format!("/api/tasks/{id}"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(
        r.message().contains("already finished: succeeded"),
        "{}",
        r.text()
    );
    let t = ctx.send(get(&format!("/api/tasks/{id}"))).await.json();
    assert_eq!(t["state"], "succeeded");
    assert_eq!(t["result"], json!({"ok": true}));
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_can_be_requeued_once() {
    let ctx = Ctx::new();
    let id = ctx.enqueue("photos", json!({"kind": "analyze"})).await;
    let lanes = ctx.lanes().await;
    kill_next(&lanes, "photos").await;

    let dead = ctx.send(get("/api/queues/photos/dead")).await;
    assert_eq!(dead.status, StatusCode::OK, "{}", dead.text());
    let dead = dead.json();
    assert_eq!(dead["queue"], "photos");
    assert_eq!(dead["tasks"][0]["id"], id.as_str());
    assert_eq!(dead["tasks"][0]["state"], "dead");
    assert_eq!(dead["tasks"][0]["error"], "boom: upstream said no");

    let r = ctx.send(post(&format!("/api/tasks/{id}/requeue"))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json(), json!({"task_id": id, "state": "queued"}));
    let t = lanes
        .task(&id.parse().expect("id"))
        .await
        .expect("read")
        .expect("task");
    assert_eq!(t.state, TaskState::Queued);
    let dead = ctx.send(get("/api/queues/photos/dead")).await.json();
    assert_eq!(dead["tasks"], json!([]));

    let again = ctx.send(post(&format!("/api/tasks/{id}/requeue"))).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    assert!(
        again.message().contains("not in the dead-letter set"),
        "{}",
        again.text()
    );

    let bad_limit = ctx.send(get("/api/queues/photos/dead?limit=0")).await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unknown_queue_is_404() {
    let ctx = Ctx::new();
    for uri in ["/api/queues/nope", "/api/queues/nope/dead"] {
        let r = ctx.send(get(uri)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.text());
        assert!(r.message().contains("no queue"), "{}", r.text());
    }
}

#[tokio::test]
async fn queues_list_every_queue_with_depths_and_counters() {
    let ctx = Ctx::new();
    for _ in 0..3 {
        ctx.enqueue("alpha", json!({"kind": "k"})).await;
    }
    ctx.enqueue("beta", json!({"kind": "k", "delay_s": 600}))
        .await;
    let lanes = ctx.lanes().await;
    succeed_next(&lanes, "alpha").await;
    let r = ctx.send(get("/api/queues")).await;
    assert_eq!(r.status, StatusCode::OK);
    let qs = r.json()["queues"].clone();
    assert_eq!(qs[0]["queue"], "alpha");
    assert_eq!(qs[0]["queued"], 2);
    assert_eq!(qs[0]["counters"]["enqueued"], 3);
    assert_eq!(qs[0]["counters"]["succeeded"], 1);
    assert_eq!(qs[1]["queue"], "beta");
    assert_eq!(qs[1]["scheduled"], 1);
}

#[tokio::test]
async fn workers_are_listed_with_their_running_tasks() {
    let ctx = Ctx::new();
    let lanes = ctx.lanes().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let info = WorkerInfo {
        id: "w-test-1".into(),
        name: "tickets-1".into(),
        host: "box".into(),
        pid: 42,
        queues: vec!["tickets".into()],
        concurrency: 4,
        prefetch: 0,
        state: "running".into(),
        started_at_ms: now - 60_000,
        heartbeat_at_ms: now,
        active: vec![lanes_queue::TaskSummary {
            id: missing_id("tickets"),
            kind: "run".into(),
            attempt: 1,
            since_ms: now - 1000,
        }],
        reserved: Vec::new(),
        stats: WorkerStats {
            processed: 7,
            ..WorkerStats::default()
        },
    };
    lanes
        .publish_worker(&info, std::time::Duration::from_secs(30))
        .await
        .expect("publish");
    let r = ctx.send(get("/api/workers")).await;
    assert_eq!(r.status, StatusCode::OK);
    let w = r.json()["workers"][0].clone();
    assert_eq!(w["id"], "w-test-1");
    assert_eq!(w["concurrency"], 4);
    assert_eq!(w["active"][0]["kind"], "run");
    assert_eq!(w["stats"]["processed"], 7);
    assert!(w["heartbeat_age_ms"].as_u64().is_some());
}

#[tokio::test]
async fn keyed_tasks_reject_dedupe_and_wait_in_their_lane() {
    let ctx = Ctx::new();
    let uri = "/api/queues/bank-bot/tasks";
    let bot = json!({"kind": "collect", "key": "account-7", "key_policy": "reject"});
    let first = ctx.send(post_json(uri, &bot.to_string())).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    let again = ctx.send(post_json(uri, &bot.to_string())).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    assert!(again.message().contains("account-7"), "{}", again.text());

    let dedupe = json!({"kind": "sync", "key": "account-8", "key_policy": "dedupe"});
    let a = ctx.send(post_json(uri, &dedupe.to_string())).await.json();
    let b = ctx.send(post_json(uri, &dedupe.to_string())).await.json();
    assert_eq!(a["task_id"], b["task_id"]);
    assert_eq!(b["existing"], true);
    assert!(a.get("existing").is_none());

    let serial = json!([
        {"kind": "ticket", "key": "project-1"},
        {"kind": "ticket", "key": "project-1"},
    ]);
    let r = ctx
        .send(post_json("/api/queues/tickets/tasks", &serial.to_string()))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let second = r.json()["task_ids"][1].as_str().expect("id").to_owned();
    let t = ctx.send(get(&format!("/api/tasks/{second}"))).await.json();
    assert_eq!(t["key"], "project-1");
    // Second of its key to run: the first (still queued, holding the key) goes before it.
    assert_eq!(t["key_position"], 2, "{t}");
    let q = ctx.send(get("/api/queues/tickets")).await.json();
    assert_eq!(
        (q["queued"].clone(), q["waiting_on_key"].clone()),
        (json!(2), json!(1))
    );

    for (body, want) in [
        (json!({"kind": "x", "key_policy": "reject"}), "need a key"),
        (
            json!({"kind": "x", "key": "k", "key_policy": "sometimes"}),
            "key_policy",
        ),
        (
            json!({"kind": "x", "key": "k", "key_policy": "reject", "key_concurrency": 2}),
            "concurrency",
        ),
    ] {
        let r = ctx.send(post_json(uri, &body.to_string())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        assert!(r.message().contains(want), "{body}: {}", r.text());
    }
}
