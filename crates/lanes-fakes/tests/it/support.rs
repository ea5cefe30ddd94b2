//! Request helpers: one fakes app per test, requests through `oneshot`, bodies as JSON.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use lanes_fakes::FakesConfig;
use lanes_fakes::products::Catalog;
use serde_json::Value;
use tower::ServiceExt;

pub fn catalog() -> Catalog {
    Catalog::load(&FakesConfig::default().fixtures).expect("the product fixture loads")
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// GET `uri` (with the given headers) from `app`.
pub async fn get(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{uri}: body is JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    Resp {
        status,
        headers,
        body,
    }
}
