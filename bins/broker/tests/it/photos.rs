//! The photo routes (seed 002): uploads checked at the door without decoding images (bad
//! base64 is 400, a huge photo 413), a snap queued as a batch of one task per photo, and its
//! status with every photo's item, price, tokens and cost.

use axum::http::StatusCode;
use lanes_photos::{KIND, QUEUE, encode_photo};
use lanes_queue::FailMode;
use serde_json::{Value, json};

use crate::support::{Ctx, get, lease_next, missing_id, post_json};

fn snap(photos: &[String]) -> String {
    json!({ "photos": photos }).to_string()
}

fn jpeg_ish() -> String {
    encode_photo(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 pretend pixels")
}

#[tokio::test]
async fn bad_base64_is_400_naming_the_photo() {
    let ctx = Ctx::new();
    let r = ctx
        .send(post_json(
            "/seller/snap",
            &snap(&[jpeg_ish(), "%%% not base64 %%%".into()]),
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let m = r.message();
    assert!(m.starts_with("photos[1]: not valid base64: "), "{m}");
    assert_eq!(ctx.prefix.key_count(), 0, "nothing was queued");
}

#[tokio::test]
async fn empty_too_many_and_malformed_uploads_are_refused() {
    let ctx = Ctx::new();
    for (body, status, says) in [
        (snap(&[]), StatusCode::BAD_REQUEST, "no photos"),
        (
            snap(&vec![jpeg_ish(); 51]),
            StatusCode::BAD_REQUEST,
            "51 photos in one snap; send at most 50",
        ),
        (
            snap(&["   ".into()]),
            StatusCode::BAD_REQUEST,
            "photos[0]: the photo is empty",
        ),
        (
            json!({"photos": "abc"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid body at photos",
        ),
        (
            json!({"pics": []}).to_string(),
            StatusCode::BAD_REQUEST,
            "unknown field `pics`",
        ),
        (
            "{\"photos\": [".into(),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
    ] {
        let r = ctx.send(post_json("/seller/snap", &body)).await;
        assert_eq!(r.status, status, "{says}: {}", r.text());
        assert!(
            r.message().contains(says),
            "{:?} should say {says:?}",
            r.message()
        );
    }
    let mut req = post_json("/seller/snap", &snap(&[jpeg_ish()]));
    req.headers_mut().remove("content-type");
    assert_eq!(
        ctx.send(req).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn a_photo_over_the_limit_is_413() {
    let ctx = Ctx::new();
    let big = encode_photo(&vec![7u8; lanes_photos::MAX_PHOTO_BYTES + 1]);
    let r = ctx.send(post_json("/seller/snap", &snap(&[big]))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(
        r.message().starts_with("photos[0]: the photo is "),
        "{}",
        r.message()
    );
}

#[tokio::test]
async fn a_snap_is_a_batch_whose_status_shows_items_prices_and_costs() {
    let ctx = Ctx::new();
    // A text file is no reason to refuse the upload: its own task fails, with a message.
    let text = encode_photo(b"name,price\nkettle,12\n");
    let r = ctx
        .send(post_json(
            "/seller/snap",
            &snap(&[format!("data:image/jpeg;base64,{}", jpeg_ish()), text]),
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let job = r.json()["job_id"].as_str().expect("job_id").to_owned();
    assert!(job.starts_with("photos."), "{job}");
    assert_eq!(r.json()["photos"], 2);
    assert_eq!(
        r.headers["location"],
        format!("/seller/snap/{job}").as_str()
    );

    let s = ctx.send(get(&format!("/seller/snap/{job}"))).await.json();
    assert_eq!(s["status"], "processing");
    assert_eq!(
        (s["total"].as_u64(), s["done"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(s["photos"][0]["state"], "queued");
    assert!(s["photos"][0].get("item").is_none());

    // A worker analyzes the first photo and fails the second for good.
    let lanes = ctx.lanes().await;
    let first = lease_next(&lanes, QUEUE).await;
    assert_eq!(first.kind, KIND);
    let payload: Value =
        lanes_queue::codec::decode(&first.payload, &first.encoding, usize::MAX).expect("payload");
    assert_eq!(payload["index"], 0);
    assert_eq!(payload["photo"], jpeg_ish(), "the data: prefix is gone");
    let result = json!({
        "item": {"name": "Red Cast-Iron Dutch Oven", "category": "Cookware", "brand": "Le Creuset",
                 "condition": "good", "confidence": 0.92, "description": null},
        "price": {"price_usd": 180.0, "low_usd": 144.0, "high_usd": 216.0, "currency": "USD",
                  "rationale": "typical resale"},
        "tokens": {"input": 600, "output": 60, "total": 660},
        "cost_usd": 0.00042,
        "vision_model": "gemini-2.5-flash",
        "pricing_model": "gemini-2.5-flash-lite",
        "image": {"format": "jpeg", "width": 480, "height": 480, "bytes": 30000,
                  "sent_width": 480, "sent_height": 480, "sent_bytes": 25000}
    });
    lanes.ack(&first.lease, &result).await.expect("ack");
    let second = lease_next(&lanes, QUEUE).await;
    let why = "photo 1: not an image: the data is not a JPEG, PNG or WebP file";
    lanes
        .fail(&second.lease, FailMode::Failed, why)
        .await
        .expect("fail");

    let s = ctx.send(get(&format!("/seller/snap/{job}"))).await.json();
    assert_eq!(s["status"], "completed");
    assert_eq!(s["progress"], 100.0);
    assert_eq!(
        (s["succeeded"].as_u64(), s["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let p0 = &s["photos"][0];
    assert_eq!(p0["state"], "succeeded");
    assert_eq!(p0["item"]["name"], "Red Cast-Iron Dutch Oven");
    assert_eq!(p0["price"]["price_usd"], 180.0);
    assert_eq!(p0["tokens"]["total"], 660);
    assert_eq!(p0["cost_usd"], 0.00042);
    let p1 = &s["photos"][1];
    assert_eq!(p1["state"], "failed");
    assert_eq!(p1["error"], why);
    assert_eq!(s["tokens"]["total"], 660);
    assert_eq!(s["cost_usd"], 0.00042);
    assert!(s["finished_at_ms"].as_u64().is_some());
}

#[tokio::test]
async fn unknown_and_foreign_job_ids() {
    let ctx = Ctx::new();
    let r = ctx
        .send(get(&format!("/seller/snap/{}", missing_id(QUEUE))))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    for bad in ["nope", &missing_id("analysis")] {
        let r = ctx.send(get(&format!("/seller/snap/{bad}"))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert!(
            r.message().contains("is not a photo job id"),
            "{}",
            r.message()
        );
    }
    let doc = ctx.send(get("/openapi.json")).await.json();
    assert!(doc["paths"].get("/seller/snap").is_some());
    assert!(doc["paths"].get("/seller/snap/{job_id}").is_some());
}
