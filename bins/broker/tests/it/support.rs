//! Test support: a broker app per test under its own key prefix, request builders, response
//! helpers, and an engine client to drive tasks to a state (running, succeeded, dead).

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use broker::{AppState, Config, app};
use lanes_queue::{FailMode, Fetched, Lanes, TaskId};
use lanes_testkit::Prefix;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A broker app on the test Redis under a fresh prefix.
pub struct Ctx {
    pub prefix: Prefix,
    pub app: Router,
}

/// Broker settings for `prefix` (with the test Redis).
pub fn config(prefix: &Prefix) -> Config {
    let engine = lanes_queue::Config {
        prefix: prefix.name().to_owned(),
        ..lanes_queue::Config::default()
    };
    Config::new(prefix.url(), engine)
}

impl Ctx {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// With settings changed by `tweak`.
    pub fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let prefix = Prefix::new();
        let mut cfg = config(&prefix);
        tweak(&mut cfg);
        let app = app(AppState::new(cfg, CancellationToken::new()));
        Self { prefix, app }
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        send(&self.app, req).await
    }

    /// An engine client under this test's prefix.
    pub async fn lanes(&self) -> Lanes {
        lanes(&self.prefix).await
    }

    /// Enqueues one task through the API and returns its id.
    pub async fn enqueue(&self, queue: &str, body: Value) -> String {
        let r = self
            .send(post_json(
                &format!("/api/queues/{queue}/tasks"),
                &body.to_string(),
            ))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        r.json()["task_id"].as_str().expect("task_id").to_owned()
    }
}

pub async fn lanes(prefix: &Prefix) -> Lanes {
    let cfg = lanes_queue::Config {
        prefix: prefix.name().to_owned(),
        ..lanes_queue::Config::default()
    };
    Lanes::connect(prefix.url(), cfg).await.expect("connect")
}

/// Leases the next task of `queue` as worker `w1` (it becomes `running`).
pub async fn lease_next(lanes: &Lanes, queue: &str) -> Fetched {
    let batch = lanes.fetch(queue, "w1", 1).await.expect("fetch");
    batch.tasks.into_iter().next().expect("a task to lease")
}

/// Runs the next task of `queue` to success.
pub async fn succeed_next(lanes: &Lanes, queue: &str) -> TaskId {
    let t = lease_next(lanes, queue).await;
    lanes
        .ack(&t.lease, &json!({"ok": true}))
        .await
        .expect("ack");
    t.lease.id
}

/// Runs the next task of `queue` into the dead-letter set.
pub async fn kill_next(lanes: &Lanes, queue: &str) -> TaskId {
    let t = lease_next(lanes, queue).await;
    lanes
        .fail(&t.lease, FailMode::Dead, "boom: upstream said no")
        .await
        .expect("fail");
    t.lease.id
}

/// A response, fully read (do not use for the event stream).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is JSON ({e}): {}", self.text()))
    }

    /// The `message` of an error body.
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("error body has a message: {}", self.text()))
            .to_owned()
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Resp {
    let resp = tokio::time::timeout(Duration::from_secs(30), app.clone().oneshot(req))
        .await
        .expect("the broker answered (no hang)")
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("read body");
    Resp {
        status,
        headers,
        body,
    }
}

pub fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request")
}

pub fn get(uri: &str) -> Request<Body> {
    request(Method::GET, uri)
}

pub fn delete(uri: &str) -> Request<Body> {
    request(Method::DELETE, uri)
}

pub fn post(uri: &str) -> Request<Body> {
    request(Method::POST, uri)
}

pub fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

/// The same request with `Authorization: Bearer <token>`.
pub fn bearer(mut req: Request<Body>, token: &str) -> Request<Body> {
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header value"),
    );
    req
}

/// A well-formed id of a task that does not exist.
pub fn missing_id(queue: &str) -> String {
    format!("{queue}.0123456789abcdef0123456789abcdef")
}
