//! `http`: sends the payload's request and records status and body. 2xx succeeds; 408, 429 and
//! 5xx are retried (honouring `Retry-After`); other statuses fail permanently.

use std::collections::BTreeMap;
use std::time::Duration;

use lanes_queue::{TaskContext, TaskError, TaskResult};
use serde::Deserialize;
use serde_json::{Value, json};

/// Bytes of response body kept in the result.
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPayload {
    pub url: String,
    /// GET, POST (default), PUT, PATCH or DELETE.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as JSON.
    #[serde(default)]
    pub body: Option<Value>,
    /// Per-request timeout in seconds (default 30).
    #[serde(default)]
    pub timeout_s: Option<f64>,
}

/// Builds the `http` handler around one shared client.
pub fn handler(
    client: reqwest::Client,
) -> impl Fn(TaskContext) -> super::exec::futures_box::Fut + Send + Sync + 'static {
    move |ctx| Box::pin(run(ctx, client.clone()))
}

async fn run(ctx: TaskContext, client: reqwest::Client) -> TaskResult {
    let p: HttpPayload = ctx.payload_as()?;
    let url = reqwest::Url::parse(&p.url)
        .map_err(|e| TaskError::permanent(format!("http: bad url {:?}: {e}", p.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TaskError::permanent(format!(
            "http: unsupported scheme {:?}",
            url.scheme()
        )));
    }
    let method = p.method.as_deref().unwrap_or("POST").to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| TaskError::permanent(format!("http: bad method {method:?}")))?;
    let timeout = Duration::try_from_secs_f64(p.timeout_s.unwrap_or(30.0))
        .map_err(|e| TaskError::permanent(format!("http: timeout_s: {e}")))?;
    let mut req = client.request(method, url).timeout(timeout);
    for (k, v) in &p.headers {
        req = req.header(k, v);
    }
    if let Some(body) = &p.body {
        req = req.json(body);
    }
    let resp = tokio::select! {
        r = req.send() => r.map_err(|e| TaskError::retry(format!("http: {}", error_chain(&e))))?,
        why = ctx.cancelled() => return Err(TaskError::retry(format!("http: request abandoned: {why:?}"))),
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| TaskError::retry(format!("http: reading body: {e}")))?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(BODY_LIMIT)]).into_owned();
    let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    let result = json!({ "status": status.as_u16(), "body": body });
    if status.is_success() {
        return Ok(result);
    }
    let message = format!("http: {} answered {status}", p.url);
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(TaskError::Retry {
            message,
            after: retry_after,
        })
    } else {
        Err(TaskError::permanent(message))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
