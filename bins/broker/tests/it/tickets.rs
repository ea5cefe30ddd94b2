//! The ticket executor's routes (seed 001).

use axum::http::StatusCode;

use crate::support::{Ctx, get, lease_next, post};

fn queue(project: &str, ticket: &str) -> String {
    format!("/api/projects/{project}/tickets/{ticket}/queue-execution")
}

#[tokio::test]
async fn tickets_queue_with_positions_and_can_be_cancelled_and_stopped() {
    let ctx = Ctx::new();
    for (n, t) in ["T1", "T2", "T3"].iter().enumerate() {
        let r = ctx.send(post(&queue("7", t))).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        assert_eq!(r.json()["position"], n as u64 + 1, "{}", r.text());
        assert_eq!(r.json()["label"], format!("Queued (#{})", n + 1));
    }
    let again = ctx.send(post(&queue("7", "T2"))).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    assert_eq!(again.message(), "ticket T2 is already queued (#2)");

    let status = ctx.send(get("/api/projects/7/tickets/queue-status")).await;
    assert_eq!(status.status, StatusCode::OK);
    let labels: Vec<String> = status.json()["tickets"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["label"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(labels, vec!["Queued (#1)", "Queued (#2)", "Queued (#3)"]);

    // Cancel T2 while queued: T3 moves up. A second cancel is a conflict.
    let r = ctx
        .send(post("/api/projects/7/tickets/T2/cancel-queue"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = ctx
        .send(post("/api/projects/7/tickets/T2/cancel-queue"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());

    // Stop only applies to an executing ticket.
    let r = ctx.send(post("/api/projects/7/tickets/T1/stop")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let lanes = ctx.lanes().await;
    lease_next(&lanes, "tickets").await;
    let r = ctx.send(post("/api/projects/7/tickets/T1/stop")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let r = ctx
        .send(post("/api/projects/7/tickets/T1/cancel-queue"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "an executing ticket is stopped, not removed: {}",
        r.text()
    );

    let status = ctx
        .send(get("/api/projects/7/tickets/queue-status"))
        .await
        .json();
    let view = |id: &str| {
        status["tickets"]
            .as_array()
            .and_then(|l| l.iter().find(|t| t["ticket_id"] == id).cloned())
            .unwrap_or_default()
    };
    assert_eq!(view("T1")["label"], "Executing");
    assert_eq!(view("T3")["label"], "Queued (#1)");
    assert_eq!(view("T2")["status"], "done");
    assert_eq!(view("T2")["state"], "cancelled");

    let exec = ctx.send(get("/api/executor/status")).await;
    assert_eq!(exec.status, StatusCode::OK);
    assert_eq!(exec.json()["queue_length"], 1);
    assert_eq!(exec.json()["executing_projects"], serde_json::json!(["7"]));
}
