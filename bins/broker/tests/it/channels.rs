//! The channel collector's routes (seed 004): dispatch, per-channel progress, cancel, bad
//! lists. No collector runs here: a channel's task is played by the engine directly.

use axum::http::{StatusCode, header};
use lanes_queue::{ChildProgress, FailMode};
use serde_json::json;

use crate::support::{Ctx, get, lease_next, post, post_json};

async fn dispatch(ctx: &Ctx, channels: serde_json::Value) -> serde_json::Value {
    let r = ctx
        .send(post_json(
            "/api/channels/collect",
            &json!({ "channels": channels }).to_string(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let body = r.json();
    let id = body["job_id"].as_str().expect("job_id");
    assert!(id.starts_with("channels."), "{id}");
    assert_eq!(
        r.headers[header::LOCATION].to_str().ok(),
        Some(format!("/api/channels/collect/{id}").as_str())
    );
    body
}

#[tokio::test]
async fn a_job_shows_each_channel_and_failures_stay_their_own() {
    let ctx = Ctx::new();
    let body = dispatch(
        &ctx,
        json!(["@Rust_Daily", "https://t.me/lanes_news", "rust_daily"]),
    )
    .await;
    assert_eq!(
        body["channels"],
        json!(["rust_daily", "lanes_news"]),
        "normalized, once each"
    );
    let id = body["job_id"].as_str().expect("job_id").to_owned();

    let r = ctx.send(get(&format!("/api/channels/collect/{id}"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(j["state"], "running");
    assert_eq!(j["channels_total"], 2);
    assert_eq!(j["channels"][0]["channel"], "rust_daily");
    assert_eq!(j["channels"][0]["state"], "queued");
    assert_eq!(j["channels"][1]["channel"], "lanes_news");

    // One channel makes progress and succeeds, the other fails for good.
    let lanes = ctx.lanes().await;
    let first = lease_next(&lanes, "channels").await;
    let second = lease_next(&lanes, "channels").await;
    let p = ChildProgress {
        processed: 250,
        succeeded: 250,
        errors: 0,
    };
    lanes
        .batch_progress(&first.lease, p)
        .await
        .expect("progress");
    let j = ctx
        .send(get(&format!("/api/channels/collect/{id}")))
        .await
        .json();
    assert_eq!(j["messages"], 250);
    assert_eq!(j["channels"][0]["state"], "running");
    lanes
        .ack(&first.lease, &json!({"new_messages": 250}))
        .await
        .expect("ack");
    lanes
        .fail(
            &second.lease,
            FailMode::Failed,
            "channel @lanes_news not found (HTTP 404: Not Found)",
        )
        .await
        .expect("fail");
    let j = ctx
        .send(get(&format!("/api/channels/collect/{id}")))
        .await
        .json();
    assert_eq!(j["channels_done"], 2);
    assert_eq!(
        (
            j["channels_succeeded"].clone(),
            j["channels_failed"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(j["channels"][0]["state"], "succeeded");
    assert_eq!(j["channels"][1]["state"], "failed");
    assert!(
        j["channels"][1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("not found"),
        "{j}"
    );
    assert_eq!(j["progress"], 100.0);
}

#[tokio::test]
async fn a_job_can_be_cancelled() {
    let ctx = Ctx::new();
    let id = dispatch(&ctx, json!(["alpha_one", "beta_two"])).await["job_id"]
        .as_str()
        .expect("job_id")
        .to_owned();
    let r = ctx
        .send(post(&format!("/api/channels/collect/{id}/cancel")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["removed_channels"], 2);
    let j = ctx
        .send(get(&format!("/api/channels/collect/{id}")))
        .await
        .json();
    assert_eq!(j["channels_cancelled"], 2, "{j}");
    assert_eq!(j["channels"][0]["state"], "cancelled");
    // Cancelling again changes nothing.
    let r = ctx
        .send(post(&format!("/api/channels/collect/{id}/cancel")))
        .await;
    assert!(
        r.status == StatusCode::OK || r.status == StatusCode::CONFLICT,
        "{}",
        r.text()
    );
    if r.status == StatusCode::OK {
        assert_eq!(r.json()["removed_channels"], 0);
    }
}

#[tokio::test]
async fn bad_lists_and_unknown_jobs_are_refused_with_a_message() {
    let ctx = Ctx::new();
    for (body, says) in [
        (json!({"channels": []}), "empty"),
        (
            json!({"channels": ["fine_name", "not a name"]}),
            "not a channel name",
        ),
        (json!({"channels": ["@ab"]}), "4 to 32"),
        (json!({"channels": "rust_daily"}), "invalid body"),
        (json!({"channel": ["rust_daily"]}), "invalid body"),
    ] {
        let r = ctx
            .send(post_json("/api/channels/collect", &body.to_string()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        assert!(r.message().contains(says), "{body}: {}", r.message());
    }
    let r = ctx.send(get("/api/channels/collect/nope")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = ctx
        .send(get(
            "/api/channels/collect/channels.0190f3c2a4b07d2e8f1a2b3c4d5e6f70",
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = ctx
        .send(get(
            "/api/channels/collect/analysis.0190f3c2a4b07d2e8f1a2b3c4d5e6f70",
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another queue's id is no collect job"
    );
}
