//! Operational routes and the document: health, readiness (also with Redis down), metrics,
//! the OpenAPI document against the routes really served, the event stream, the dashboard.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use broker::{AppState, Config, app};
use futures::StreamExt;
use lanes_testkit::{Prefix, free_port};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::support::{
    Ctx, config, get, kill_next, missing_id, post_json, request, send, succeed_next,
};

/// A broker whose Redis is a closed port.
fn redis_down() -> axum::Router {
    let prefix = Prefix::new();
    let mut cfg: Config = config(&prefix);
    cfg.redis_url = format!("redis://127.0.0.1:{}/", free_port());
    cfg.redis_timeout = Duration::from_millis(500);
    app(AppState::new(cfg, CancellationToken::new()))
}

#[tokio::test]
async fn healthz_is_ok_even_when_redis_is_down() {
    let r = send(&redis_down(), get("/healthz")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_ok_when_redis_answers() {
    let ctx = Ctx::new();
    let r = ctx.send(get("/readyz")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"status": "ready"}));
}

#[tokio::test]
async fn readyz_and_api_routes_answer_503_when_redis_is_down() {
    let app = redis_down();
    let r = send(&app, get("/readyz")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    for req in [
        get("/api/queues"),
        get(&format!("/api/tasks/{}", missing_id("q"))),
        post_json("/api/queues/q/tasks", r#"{"kind":"x"}"#),
    ] {
        let r = send(&app, req).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
        let msg = r.message();
        assert!(msg.contains("unavailable"), "{msg}");
        assert!(!msg.contains("127.0.0.1"), "5xx bodies stay generic: {msg}");
    }
    let m = send(&app, get("/metrics")).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.text().contains("lanes_redis_up 0"), "{}", m.text());
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test]
async fn metrics_report_queue_depths_and_counters_from_redis() {
    let ctx = Ctx::new();
    for _ in 0..4 {
        ctx.enqueue("mq", json!({"kind": "k"})).await;
    }
    ctx.enqueue("mq", json!({"kind": "k", "delay_s": 600}))
        .await;
    let lanes = ctx.lanes().await;
    succeed_next(&lanes, "mq").await;
    kill_next(&lanes, "mq").await;
    crate::support::lease_next(&lanes, "mq").await;

    let r = ctx.send(get("/metrics")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|v| v.starts_with("application/openmetrics-text")),
    );
    let text = r.text();
    let depth = |state: &str| {
        metric(
            &text,
            &format!(r#"lanes_queue_depth{{queue="mq",state="{state}"}}"#),
        )
    };
    assert_eq!(depth("queued"), Some(1.0), "{text}");
    assert_eq!(depth("scheduled"), Some(1.0), "{text}");
    assert_eq!(depth("running"), Some(1.0), "{text}");
    assert_eq!(depth("dead"), Some(1.0), "{text}");
    let total = |outcome: &str| {
        metric(
            &text,
            &format!(r#"lanes_tasks_total{{queue="mq",outcome="{outcome}"}}"#),
        )
    };
    assert_eq!(total("enqueued"), Some(5.0), "{text}");
    assert_eq!(total("succeeded"), Some(1.0), "{text}");
    assert_eq!(total("dead"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "lanes_redis_up"), Some(1.0));
    assert_eq!(metric(&text, "lanes_workers_alive"), Some(0.0));
    assert!(text.ends_with("# EOF\n"));

    let again = ctx.send(get("/metrics")).await.text();
    assert!(
        again
            .contains(r#"lanes_http_requests_total{method="GET",route="/metrics",status="200"} 1"#),
        "{again}"
    );
    assert!(
        again.contains("lanes_http_request_duration_seconds_bucket"),
        "{again}"
    );
}

/// Every route the router serves, read from its `Debug` output (axum has no listing API).
fn served_paths(app: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{app:?}");
    let mut paths = BTreeSet::new();
    let mut rest = debug.as_str();
    while let Some(start) = rest.find("\"/") {
        rest = &rest[start + 1..];
        let Some(end) = rest.find('"') else { break };
        let path = &rest[..end];
        if !path.contains("__private__") {
            paths.insert(path.to_owned());
        }
        rest = &rest[end..];
    }
    paths
}

fn concrete(path: &str) -> String {
    path.replace("{queue}", "probe")
        .replace("{id}", &missing_id("probe"))
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_served() {
    let ctx = Ctx::new();
    let r = ctx.send(get("/openapi.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc: Value = r.json();
    let documented: Vec<(String, Vec<String>)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(p, item)| {
            let methods = item
                .as_object()
                .expect("path item")
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(|k| k.to_uppercase())
                .collect();
            (p.clone(), methods)
        })
        .collect();

    // Every path the router serves is documented ...
    let served = served_paths(&ctx.app);
    assert!(
        served.len() >= 10,
        "router paths readable from Debug: {served:?}"
    );
    let doc_paths: BTreeSet<String> = documented.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(served, doc_paths, "served vs documented paths");

    // ... every documented method reaches a handler, and no undocumented method does.
    for (path, methods) in &documented {
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let method = Method::from_bytes(m.as_bytes()).expect("method");
            let resp = ctx
                .app
                .clone()
                .oneshot(request(method, &concrete(path)))
                .await
                .expect("infallible");
            let status = resp.status();
            if methods.iter().any(|d| d == m) {
                assert_ne!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} is documented but not served"
                );
                if status == StatusCode::NOT_FOUND {
                    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                        .await
                        .expect("body");
                    assert!(
                        !String::from_utf8_lossy(&body).contains("no route"),
                        "{m} {path} is documented but not served"
                    );
                }
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} is served but not documented"
                );
            }
        }
    }
    for schema in [
        "EnqueueTask",
        "TaskView",
        "QueueView",
        "WorkerView",
        "Snapshot",
        "ErrorBody",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let ctx = Ctx::new();
    let r = ctx.send(get("/api/nothing-here")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains("no route"), "{}", r.text());
    let r = ctx.send(request(Method::PUT, "/api/queues")).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.message().contains("PUT"), "{}", r.text());
}

#[tokio::test]
async fn the_event_stream_starts_with_a_snapshot() {
    let ctx = Ctx::new();
    ctx.enqueue("live", json!({"kind": "k"})).await;
    let resp = ctx
        .app
        .clone()
        .oneshot(get("/api/events"))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE].to_str().ok(),
        Some("text/event-stream")
    );
    let mut body = resp.into_body().into_data_stream();
    let mut text = String::new();
    let first_event = async {
        while !text.contains("\n\n") {
            let chunk = body.next().await.expect("stream open").expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(30), first_event)
        .await
        .expect("a first event (no hang)");
    let event = text.split("\n\n").next().expect("event");
    assert!(event.lines().any(|l| l == "event: snapshot"), "{event}");
    let data: String = event
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    let snap: Value = serde_json::from_str(&data).expect("snapshot JSON");
    assert_eq!(snap["redis_ok"], true, "{snap}");
    assert_eq!(snap["queues"][0]["queue"], "live");
    assert_eq!(snap["queues"][0]["queued"], 1);
    assert_eq!(snap["totals"]["queued"], 1);
    assert_eq!(snap["waiting"][0]["kind"], "k");
    assert!(snap["limiters"].is_array() && snap["keys"].is_array());
}

#[tokio::test]
async fn the_dashboard_page_and_its_assets_are_served() {
    let ctx = Ctx::new();
    let page = ctx.send(get("/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|v| v.starts_with("text/html"))
    );
    assert!(page.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    let html = page.text();
    assert!(html.contains("<title>Lanes"), "{html}");
    assert!(html.contains("/assets/dashboard.js") && html.contains("/assets/dashboard.css"));
    let js = ctx.send(get("/assets/dashboard.js")).await;
    assert!(
        js.text().contains("/api/events"),
        "the script follows the event stream"
    );
    let css = ctx.send(get("/assets/dashboard.css")).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(!css.body.is_empty());
}
