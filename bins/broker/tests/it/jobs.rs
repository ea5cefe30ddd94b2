//! The product-batch analyzer's routes (seed 003): dispatch, progress, cancel, and bad lists.
//! The chunker's processes are not running here: a split job is played by the engine directly
//! (the batch a chunker would create, under the job's id).

use axum::http::{StatusCode, header};
use lanes_queue::{BatchId, BatchSpec, ChildProgress, NewTask, TaskId};
use serde_json::json;

use crate::support::{Ctx, get, post, post_json};

const ASIN: &str = "B07XJ8C8F5";

async fn dispatch(ctx: &Ctx, products: serde_json::Value) -> String {
    let r = ctx
        .send(post_json(
            "/api/v1/jobs",
            &json!({ "products": products }).to_string(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = r.json()["job_id"].as_str().expect("job_id").to_owned();
    assert_eq!(
        r.headers[header::LOCATION].to_str().ok(),
        Some(format!("/api/v1/jobs/{id}").as_str())
    );
    id
}

#[tokio::test]
async fn a_dispatched_job_reads_back_pending_and_can_be_cancelled() {
    let ctx = Ctx::new();
    let id = dispatch(&ctx, json!([ASIN, "B09GV6CYNL", "junk"])).await;
    assert!(id.starts_with("analysis."), "{id}");

    let r = ctx.send(get(&format!("/api/v1/jobs/{id}"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(j["job_id"], id.as_str());
    assert_eq!(j["status"], "pending");
    assert_eq!(j["progress"], 0);
    assert_eq!(j["total_items"], 3);
    assert_eq!(j["processed_items"], 0);
    assert_eq!(
        (j["success_count"].clone(), j["error_count"].clone()),
        (json!(0), json!(0))
    );

    let r = ctx.send(post(&format!("/api/v1/jobs/{id}/cancel"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"], "cancelled");
    let j = ctx.send(get(&format!("/api/v1/jobs/{id}"))).await.json();
    assert_eq!(j["status"], "cancelled");
    let r = ctx.send(post(&format!("/api/v1/jobs/{id}/cancel"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.message().contains("already finished"), "{}", r.text());
}

#[tokio::test]
async fn a_split_job_shows_its_batch_progress_and_cancel_stops_its_chunks() {
    let ctx = Ctx::new();
    let lanes = ctx.lanes().await;
    let products: Vec<String> = (0..200).map(|i| format!("B0{i:08}")).collect();
    let id = dispatch(&ctx, json!(products)).await;
    let job: TaskId = id.parse().expect("id");
    // Play the chunker: lease the job, split it into 4 chunks under its own id.
    let leased = lanes.fetch("analysis", "w1", 1).await.expect("fetch").tasks;
    assert_eq!(leased[0].lease.id, job);
    let children = (0..4)
        .map(|_| NewTask::new("analysis.chunk", json!({"products": []})))
        .collect();
    let spec = BatchSpec::new(children)
        .id(BatchId::from(job.clone()))
        .total_items(200)
        .finalize(NewTask::new("analysis.finalize", json!({"job": id})));
    lanes.create_batch("analysis", spec).await.expect("split");
    lanes
        .ack(&leased[0].lease, &json!({"batch": id, "chunks": 4}))
        .await
        .expect("ack the job");
    let chunk = lanes
        .fetch("analysis", "w1", 1)
        .await
        .expect("fetch")
        .tasks
        .remove(0);
    lanes
        .batch_progress(
            &chunk.lease,
            ChildProgress {
                processed: 30,
                succeeded: 28,
                errors: 2,
            },
        )
        .await
        .expect("progress");

    let j = ctx.send(get(&format!("/api/v1/jobs/{id}"))).await.json();
    assert_eq!(j["status"], "processing");
    assert_eq!(j["progress"], 15);
    assert_eq!(j["processed_items"], 30);
    assert_eq!(j["total_items"], 200);
    assert_eq!(j["success_count"], 28);
    assert_eq!(j["error_count"], 2);
    assert_eq!(j["chunks"], 4);

    let r = ctx.send(post(&format!("/api/v1/jobs/{id}/cancel"))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let c = r.json();
    assert_eq!(c["status"], "cancelling");
    assert_eq!(
        (c["removed_chunks"].clone(), c["stopping_chunks"].clone()),
        (json!(3), json!(1))
    );
    let j = ctx.send(get(&format!("/api/v1/jobs/{id}"))).await.json();
    assert_eq!(j["status"], "cancelling");
    assert_eq!(j["processed_items"], 30, "counters stay as they were");

    // The running chunk stops; the finalize step writes the summary.
    lanes
        .fail(&chunk.lease, lanes_queue::FailMode::Cancelled, "stopped")
        .await
        .expect("stop the chunk");
    let fin = lanes
        .fetch("analysis", "w1", 1)
        .await
        .expect("fetch")
        .tasks
        .remove(0);
    lanes
        .ack(
            &fin.lease,
            &json!({"status": "cancelled", "processed_items": 30}),
        )
        .await
        .expect("finalize");
    let j = ctx.send(get(&format!("/api/v1/jobs/{id}"))).await.json();
    assert_eq!(j["status"], "cancelled");
    assert_eq!(j["result"]["processed_items"], 30);
}

#[tokio::test]
async fn bad_lists_and_ids_are_refused_with_a_message() {
    let ctx = Ctx::new();
    for (body, says) in [
        (
            r#"{"products": []}"#.to_owned(),
            "the product list is empty",
        ),
        (
            r#"{"products": ["junk", "b07xj8c8f5"]}"#.to_owned(),
            "no product id is an ASIN",
        ),
        (
            r#"{"products": ["B07XJ8C8F5", 7]}"#.to_owned(),
            "products[1]",
        ),
        (r#"{"items": ["B07XJ8C8F5"]}"#.to_owned(), "unknown field"),
        (r#"{"products": ["B07XJ8C8F5""#.to_owned(), "malformed JSON"),
        (
            json!({"products": vec![ASIN; 10_001]}).to_string(),
            "send at most 10000",
        ),
    ] {
        let r = ctx.send(post_json("/api/v1/jobs", &body)).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}: {}",
            &body[..body.len().min(60)],
            r.text()
        );
        assert!(r.message().contains(says), "{}: {}", says, r.message());
    }
    let r = ctx.send(get("/api/v1/jobs/not-a-job")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = ctx
        .send(get(
            "/api/v1/jobs/analysis.0123456789abcdef0123456789abcdef",
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = ctx
        .send(get("/api/v1/jobs/photos.0123456789abcdef0123456789abcdef"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a task of another queue is no job: {}",
        r.text()
    );
    let r = ctx
        .send(post(
            "/api/v1/jobs/analysis.0123456789abcdef0123456789abcdef/cancel",
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}
