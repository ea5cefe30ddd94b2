//! Bearer tokens: mutating routes need one when configured, reads only with protect-reads, the
//! public routes never, and cross-site mutations are refused outright.

use axum::http::{StatusCode, header};
use serde_json::json;

use crate::support::{Ctx, TOKEN, bearer, delete, get, missing_id, post_json};

fn with_token(protect_reads: bool) -> Ctx {
    Ctx::with(|c| {
        c.auth.token = Some(TOKEN.into());
        c.auth.protect_reads = protect_reads;
    })
}

const TASK: &str = r#"{"kind":"x"}"#;

#[tokio::test]
async fn a_mutating_route_needs_the_right_token() {
    let ctx = with_token(false);
    let uri = "/api/queues/secure/tasks";

    let none = ctx.send(post_json(uri, TASK)).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.message().contains("Bearer"), "{}", none.text());
    assert!(none.headers.contains_key(header::WWW_AUTHENTICATE));

    let wrong = ctx
        .send(bearer(post_json(uri, TASK), "not-the-token"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.message().contains("not valid"), "{}", wrong.text());

    let right = ctx.send(bearer(post_json(uri, TASK), TOKEN)).await;
    assert_eq!(right.status, StatusCode::ACCEPTED, "{}", right.text());

    let id = missing_id("secure");
    let del = ctx.send(delete(&format!("/api/tasks/{id}"))).await;
    assert_eq!(del.status, StatusCode::UNAUTHORIZED);
    let q = ctx.send(get("/api/queues/secure")).await.json();
    assert_eq!(q["queued"], 1, "only the authorized request enqueued");
}

#[tokio::test]
async fn reads_are_open_unless_protect_reads() {
    let open = with_token(false);
    for uri in ["/api/queues", "/api/workers", "/metrics"] {
        let r = open.send(get(uri)).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text());
    }

    let closed = with_token(true);
    for uri in [
        "/api/queues",
        "/api/workers",
        "/metrics",
        "/api/events",
        "/api/limiters",
    ] {
        let r = closed.send(get(uri)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let r = closed.send(bearer(get("/api/queues"), TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn the_page_health_and_the_document_stay_public() {
    let ctx = with_token(true);
    for uri in [
        "/",
        "/assets/dashboard.js",
        "/assets/dashboard.css",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ] {
        let r = ctx.send(get(uri)).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text());
    }
}

#[tokio::test]
async fn without_a_token_everything_is_open_but_cross_site_writes_are_refused() {
    let ctx = Ctx::new();
    let ok = ctx.send(post_json("/api/queues/open/tasks", TASK)).await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text());

    let mut req = post_json(
        "/api/queues/open/tasks",
        &json!({"kind": "evil"}).to_string(),
    );
    req.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().expect("value"));
    let r = ctx.send(req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message().contains("cross-site"), "{}", r.text());
}
