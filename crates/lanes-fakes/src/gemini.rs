//! Google's Gemini `generateContent`, faithful where a client can tell: the same route, key
//! header, request validation, answer shape (`candidates`, `usageMetadata`, `modelVersion`) and
//! error bodies (`google.rpc.Status` with `ErrorInfo`, `QuotaFailure`, `RetryInfo`), and a
//! per-minute request quota that answers the real 429.
//!
//! Routes (under `/gemini`):
//! - `POST /v1beta/models/{model}:generateContent` — key in `x-goog-api-key` (or `?key=`);
//! - `GET /_stats` — counters, the requests in flight, and the most requests seen in any
//!   quota window (not part of Gemini);
//! - `POST /_control` — set the key, the quota, latency; inject the next N failures (429
//!   storms, 503s, 504s) or slow answers (not part of Gemini). See [`Control`].
//!
//! What it answers, deterministically from the image (see [`catalog`]): a request with an image
//! is item detection — the dominant colour and the shape of the photo name a catalog item; a
//! text-only request is pricing — the catalog item named in the prompt gets its price. The
//! answer is JSON filling the request's `responseSchema` properties by name (`item_name`,
//! `category`, `brand`, `condition`, `confidence`, `description`; `price_usd`, `low_usd`,
//! `high_usd`, `currency`, `rationale`; anything else gets its type's empty value).
//!
//! Checks, in Gemini's order: the key (403 without, 400 `API_KEY_INVALID` when wrong), the model
//! (404), injected failures, the quota (429 with `RetryInfo.retryDelay` = when the window frees a
//! slot), then the body: JSON, non-empty `contents`, parts that are `text` or `inline_data`,
//! an image MIME type, base64 that decodes, bytes that are an image, and — stricter than Gemini,
//! because every caller here asks for JSON — `responseMimeType: application/json` with an
//! OBJECT `responseSchema`. Image tokens are counted like Gemini 2.x: 258 for an image within
//! 384 × 384, else 258 per 768 × 768 tile.
//!
//! The quota counts every admitted call of the key, across models (one fleet-wide limiter per
//! key is what the photo worker keeps; Google meters per model, which is looser).

pub mod catalog;
pub mod photos;

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::FakesConfig;
use catalog::Seen;

/// Models the fake serves (others answer 404 like Gemini).
pub const MODELS: &[&str] = &[
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
    "gemini-1.5-pro",
    "gemini-1.5-flash",
];
/// Largest request Gemini takes inline (20 MB).
pub const MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;
/// MIME types accepted for inline images.
pub const IMAGE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "image/heif",
];
/// Tokens per image tile (and per small image), as Gemini 2.x counts them.
pub const TOKENS_PER_TILE: u64 = 258;

/// A request quota: at most `limit` admitted calls in any sliding `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub limit: u32,
    #[serde(rename = "window_ms", with = "millis")]
    pub window: Duration,
}

impl Quota {
    pub fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(60),
        }
    }
}

/// The fake's settings at start (all can be changed through `POST /_control`).
#[derive(Debug, Clone, PartialEq)]
pub struct GeminiFakeConfig {
    /// The only key accepted; `None` accepts any non-empty key.
    pub key: Option<String>,
    /// `None`: no quota.
    pub quota: Option<Quota>,
    /// Added to every answer.
    pub latency: Duration,
}

impl Default for GeminiFakeConfig {
    /// Any key, 60 requests per minute, no added latency.
    fn default() -> Self {
        Self {
            key: None,
            quota: Some(Quota::per_minute(60)),
            latency: Duration::ZERO,
        }
    }
}

/// What `POST /_control` takes; every field is optional and only the given ones change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Accept only this key from now on.
    pub key: Option<String>,
    /// Accept any non-empty key again.
    #[serde(default)]
    pub any_key: bool,
    /// Enforce this quota (the window starts empty).
    pub quota: Option<Quota>,
    /// Drop the quota.
    #[serde(default)]
    pub no_quota: bool,
    /// Milliseconds added to every answer.
    pub latency_ms: Option<u64>,
    /// The next `count` calls (after `skip`) fail with `status` (429, 500, 503 or 504).
    pub fail_next: Option<FailNext>,
    /// The next `count` calls take `delay_ms` longer.
    pub slow_next: Option<SlowNext>,
    /// Zero every counter.
    #[serde(default)]
    pub reset_stats: bool,
}

/// Injected failures: see [`Control::fail_next`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailNext {
    pub count: u32,
    pub status: u16,
    /// For 429s: the `RetryInfo.retryDelay` to send (default 1 s).
    #[serde(default)]
    pub retry_delay_ms: Option<u64>,
    /// Let this many calls through first (to fail, say, the second call of a photo).
    #[serde(default)]
    pub skip: u32,
}

impl FailNext {
    /// The next `count` calls fail with `status`.
    pub fn new(count: u32, status: u16) -> Self {
        Self {
            count,
            status,
            ..Self::default()
        }
    }

    pub fn retry_delay_ms(mut self, ms: u64) -> Self {
        self.retry_delay_ms = Some(ms);
        self
    }

    pub fn skip(mut self, calls: u32) -> Self {
        self.skip = calls;
        self
    }
}

/// Injected slowness: see [`Control::slow_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowNext {
    pub count: u32,
    pub delay_ms: u64,
}

/// What `GET /_stats` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeminiStats {
    /// `generateContent` calls received, whatever the answer.
    pub requests: u64,
    /// Answered 200.
    pub ok: u64,
    /// 200s to calls with an image (item detection) and without (pricing).
    pub vision_calls: u64,
    pub text_calls: u64,
    /// Refused by the quota.
    pub quota_429: u64,
    /// Injected through `fail_next`.
    pub injected_429: u64,
    pub injected_5xx: u64,
    /// Missing or wrong key.
    pub auth_failures: u64,
    /// Other 4xx (bad body, bad image, unknown model).
    pub bad_requests: u64,
    /// Calls being answered right now.
    pub in_flight: u64,
    /// Most calls received within any `window_ms` (all calls, whatever their answer).
    pub peak_in_window: u64,
    /// The window of `peak_in_window`: the quota's, or a minute without a quota.
    pub window_ms: u64,
    /// The quota's limit per window, when there is one.
    pub quota_limit: Option<u32>,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Default)]
struct Injected {
    fail: Option<FailNext>,
    slow: Option<SlowNext>,
}

#[derive(Debug)]
struct Settings {
    key: Option<String>,
    quota: Option<Quota>,
    latency: Duration,
}

#[derive(Debug, Default)]
struct Windows {
    /// Arrival times of every call within the peak window.
    seen: VecDeque<Instant>,
    /// Admission times of calls within the quota window.
    admitted: VecDeque<Instant>,
}

struct Inner {
    settings: Mutex<Settings>,
    injected: Mutex<Injected>,
    windows: Mutex<Windows>,
    stats: Mutex<GeminiStats>,
    in_flight: AtomicU64,
    responses: AtomicU64,
}

/// The Gemini fake; cheap to clone (clones share state). Tests keep one to read its stats and
/// steer it without HTTP.
#[derive(Clone)]
pub struct GeminiFake {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GeminiFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiFake").finish_non_exhaustive()
    }
}

/// The gemini fake's routes (configured at run time through `POST /gemini/_control`).
pub fn router(_cfg: &FakesConfig) -> Router {
    GeminiFake::new(GeminiFakeConfig::default()).router()
}

impl GeminiFake {
    pub fn new(cfg: GeminiFakeConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings: Mutex::new(Settings {
                    key: cfg.key,
                    quota: cfg.quota,
                    latency: cfg.latency,
                }),
                injected: Mutex::new(Injected::default()),
                windows: Mutex::new(Windows::default()),
                stats: Mutex::new(GeminiStats::default()),
                in_flight: AtomicU64::new(0),
                responses: AtomicU64::new(0),
            }),
        }
    }

    /// The routes, at the root (nest them under `/gemini`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1beta/models/{spec}", post(generate))
            .route("/_stats", get(stats))
            .route("/_control", post(control))
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES + 1024))
            .with_state(self.clone())
    }

    /// Serves the fake under `/gemini` on a free loopback port until `shutdown` fires; returns
    /// the base URL to give a client (`http://127.0.0.1:PORT/gemini`).
    pub async fn spawn(&self, shutdown: CancellationToken) -> std::io::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new().nest("/gemini", self.router());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
        });
        Ok(format!("http://{addr}/gemini"))
    }

    pub fn stats(&self) -> GeminiStats {
        let mut s = lock(&self.inner.stats).clone();
        s.in_flight = self.inner.in_flight.load(Ordering::SeqCst);
        let settings = lock(&self.inner.settings);
        s.quota_limit = settings.quota.map(|q| q.limit);
        s.window_ms = peak_window(&settings).as_millis() as u64;
        s
    }

    /// Applies a [`Control`] (what `POST /_control` does).
    pub fn control(&self, c: Control) {
        {
            let mut s = lock(&self.inner.settings);
            if c.any_key {
                s.key = None;
            }
            if let Some(k) = c.key {
                s.key = Some(k);
            }
            if c.no_quota {
                s.quota = None;
            }
            if let Some(q) = c.quota {
                s.quota = Some(Quota {
                    limit: q.limit.max(1),
                    window: q.window.max(Duration::from_millis(1)),
                });
                *lock(&self.inner.windows) = Windows::default();
            }
            if let Some(ms) = c.latency_ms {
                s.latency = Duration::from_millis(ms);
            }
        }
        {
            let mut inj = lock(&self.inner.injected);
            if let Some(f) = c.fail_next {
                inj.fail = Some(f).filter(|f| f.count > 0);
            }
            if let Some(sl) = c.slow_next {
                inj.slow = Some(sl).filter(|s| s.count > 0);
            }
        }
        if c.reset_stats {
            *lock(&self.inner.stats) = GeminiStats::default();
            lock(&self.inner.windows).seen.clear();
        }
    }

    fn bump(&self, f: impl FnOnce(&mut GeminiStats)) {
        f(&mut lock(&self.inner.stats));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn peak_window(s: &Settings) -> Duration {
    s.quota.map_or(Duration::from_secs(60), |q| q.window)
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A `google.rpc.Status` error answer.
fn status_error(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    let mut err = json!({ "code": status.as_u16(), "message": message, "status": code });
    if details.as_array().is_some_and(|d| !d.is_empty()) {
        err["details"] = details;
    }
    (status, Json(json!({ "error": err }))).into_response()
}

fn retry_delay(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

fn quota_exceeded(model: &str, quota: Option<Quota>, delay: Duration) -> Response {
    let limit = quota.map_or_else(|| "unknown".to_owned(), |q| q.limit.to_string());
    status_error(
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more \
         information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        json!([
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                    "quotaDimensions": { "location": "global", "model": model },
                    "quotaValue": limit,
                }]
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
                }]
            },
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": retry_delay(delay)
            }
        ]),
    )
}

fn bad_request(message: &str) -> Response {
    status_error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        message,
        Value::Null,
    )
}

/// Counts a call as in flight until dropped (also when the client goes away mid-call).
struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Deserialize)]
struct KeyQuery {
    key: Option<String>,
}

async fn generate(
    State(fake): State<GeminiFake>,
    Path(spec): Path<String>,
    Query(q): Query<KeyQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    fake.inner.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlight(fake.inner.clone());
    let (key, quota, latency) = {
        let s = lock(&fake.inner.settings);
        let window = peak_window(&s);
        let mut w = lock(&fake.inner.windows);
        w.seen.push_back(now);
        while w
            .seen
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            w.seen.pop_front();
        }
        let seen = w.seen.len() as u64;
        fake.bump(|st| {
            st.requests += 1;
            st.peak_in_window = st.peak_in_window.max(seen);
        });
        (s.key.clone(), s.quota, s.latency)
    };

    let Some((model, action)) = spec.split_once(':') else {
        fake.bump(|s| s.bad_requests += 1);
        return status_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Method not found: models/{spec}"),
            Value::Null,
        );
    };
    let sent = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.key)
        .unwrap_or_default();
    if sent.trim().is_empty() {
        fake.bump(|s| s.auth_failures += 1);
        return status_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
            Value::Null,
        );
    }
    if key.as_ref().is_some_and(|k| *k != sent) {
        fake.bump(|s| s.auth_failures += 1);
        return status_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            json!([
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": { "service": "generativelanguage.googleapis.com" }
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": "API key not valid. Please pass a valid API key."
                }
            ]),
        );
    }
    if !MODELS.contains(&model) || action != "generateContent" {
        fake.bump(|s| s.bad_requests += 1);
        return status_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 {action}. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
            Value::Null,
        );
    }
    let (fail, slow) = {
        let mut inj = lock(&fake.inner.injected);
        let fail = take_fail(&mut inj.fail);
        let slow = take_slow(&mut inj.slow);
        (fail, slow)
    };
    if let Some(f) = fail {
        return injected_failure(&fake, model, quota, f);
    }
    if let Some(q) = quota {
        let mut w = lock(&fake.inner.windows);
        while w
            .admitted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= q.window)
        {
            w.admitted.pop_front();
        }
        if w.admitted.len() >= q.limit as usize {
            let frees_at = w.admitted.front().map_or(now, |t| *t + q.window);
            let delay = frees_at
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            drop(w);
            fake.bump(|s| s.quota_429 += 1);
            return quota_exceeded(model, quota, delay);
        }
        w.admitted.push_back(now);
    }
    let extra = latency + slow.map_or(Duration::ZERO, |s| Duration::from_millis(s.delay_ms));
    if !extra.is_zero() {
        tokio::time::sleep(extra).await;
    }
    let m = model.to_owned();
    let answered = tokio::task::spawn_blocking(move || answer(&m, &body)).await;
    match answered {
        Ok(Ok(a)) => {
            let n = fake.inner.responses.fetch_add(1, Ordering::Relaxed);
            fake.bump(|s| {
                s.ok += 1;
                if a.vision {
                    s.vision_calls += 1;
                } else {
                    s.text_calls += 1;
                }
                s.prompt_tokens += a.prompt_tokens;
                s.output_tokens += a.output_tokens;
            });
            let body = json!({
                "candidates": [{
                    "content": { "parts": [{ "text": a.text }], "role": "model" },
                    "finishReason": "STOP",
                    "index": 0
                }],
                "usageMetadata": {
                    "promptTokenCount": a.prompt_tokens,
                    "candidatesTokenCount": a.output_tokens,
                    "totalTokenCount": a.prompt_tokens + a.output_tokens,
                    "promptTokensDetails": a.details,
                },
                "modelVersion": model,
                "responseId": format!("fake-{n:08x}"),
            });
            (StatusCode::OK, Json(body)).into_response()
        }
        Ok(Err(message)) => {
            fake.bump(|s| s.bad_requests += 1);
            bad_request(&message)
        }
        Err(_) => status_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
            Value::Null,
        ),
    }
}

/// Takes one call's failure from the injection, if it is this call's turn.
fn take_fail(slot: &mut Option<FailNext>) -> Option<FailNext> {
    let f = slot.as_mut()?;
    if f.skip > 0 {
        f.skip -= 1;
        return None;
    }
    let v = *f;
    if f.count > 1 {
        f.count -= 1;
    } else {
        *slot = None;
    }
    Some(v)
}

/// Takes one call's slowness from the injection.
fn take_slow(slot: &mut Option<SlowNext>) -> Option<SlowNext> {
    let v = (*slot)?;
    *slot = (v.count > 1).then_some(SlowNext {
        count: v.count - 1,
        ..v
    });
    Some(v)
}

fn injected_failure(fake: &GeminiFake, model: &str, quota: Option<Quota>, f: FailNext) -> Response {
    match f.status {
        429 => {
            fake.bump(|s| s.injected_429 += 1);
            let delay = Duration::from_millis(f.retry_delay_ms.unwrap_or(1000));
            quota_exceeded(model, quota, delay)
        }
        504 => {
            fake.bump(|s| s.injected_5xx += 1);
            status_error(
                StatusCode::GATEWAY_TIMEOUT,
                "DEADLINE_EXCEEDED",
                "Deadline expired before operation could complete.",
                Value::Null,
            )
        }
        500 => {
            fake.bump(|s| s.injected_5xx += 1);
            status_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "An internal error has occurred. Please retry or report in \
                 https://developers.generativeai.google/guide/troubleshooting",
                Value::Null,
            )
        }
        _ => {
            fake.bump(|s| s.injected_5xx += 1);
            status_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
                Value::Null,
            )
        }
    }
}

async fn stats(State(fake): State<GeminiFake>) -> Json<GeminiStats> {
    Json(fake.stats())
}

async fn control(State(fake): State<GeminiFake>, body: Bytes) -> Response {
    let c: Control = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "message": format!("bad control: {e}") })),
            )
                .into_response();
        }
    };
    if let Some(f) = c.fail_next
        && !matches!(f.status, 429 | 500 | 503 | 504)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "message": "fail_next.status must be 429, 500, 503 or 504" })),
        )
            .into_response();
    }
    fake.control(c);
    let s = lock(&fake.inner.settings);
    let settings = json!({
        "key": if s.key.is_some() { "set" } else { "any" },
        "quota": s.quota,
        "latency_ms": s.latency.as_millis() as u64,
    });
    drop(s);
    Json(json!({ "settings": settings, "stats": fake.stats() })).into_response()
}

/// A successful answer, before it is wrapped.
struct Answer {
    vision: bool,
    text: String,
    prompt_tokens: u64,
    output_tokens: u64,
    details: Value,
}

/// Validates the body and answers it; `Err` is a 400 message.
fn answer(model: &str, body: &[u8]) -> Result<Answer, String> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(format!(
            "Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
        ));
    }
    let req: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON payload received. {e}"))?;
    let contents = req["contents"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    let gen_cfg = req
        .get("generationConfig")
        .or_else(|| req.get("generation_config"))
        .unwrap_or(&Value::Null);
    let field = |camel: &str, snake: &str| gen_cfg.get(camel).or_else(|| gen_cfg.get(snake));
    let mime = field("responseMimeType", "response_mime_type").and_then(Value::as_str);
    let schema = field("responseSchema", "response_schema");
    let Some(schema) = schema.filter(|_| mime == Some("application/json")) else {
        return Err(
            "this fake answers JSON only: set generationConfig.responseMimeType to \
             application/json with a responseSchema"
                .into(),
        );
    };
    let properties = schema["properties"]
        .as_object()
        .filter(|p| !p.is_empty() && schema_type(schema) == "OBJECT")
        .ok_or(
            "* GenerateContentRequest.generation_config.response_schema.properties: should be \
             non-empty for OBJECT type",
        )?;

    let mut text = String::new();
    if let Some(sys) = req
        .get("systemInstruction")
        .or_else(|| req.get("system_instruction"))
    {
        for p in sys["parts"].as_array().into_iter().flatten() {
            text.push_str(p["text"].as_str().unwrap_or(""));
            text.push('\n');
        }
    }
    let mut images = Vec::new();
    for (ci, content) in contents.iter().enumerate() {
        let parts = content["parts"]
            .as_array()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("* GenerateContentRequest.contents[{ci}].parts: contents.parts must not be empty."))?;
        for (pi, part) in parts.iter().enumerate() {
            if let Some(t) = part.get("text") {
                text.push_str(t.as_str().unwrap_or(""));
                text.push('\n');
                continue;
            }
            let Some(inline) = part.get("inline_data").or_else(|| part.get("inlineData")) else {
                return Err(format!(
                    "Invalid JSON payload received. contents[{ci}].parts[{pi}]: expected text \
                     or inline_data"
                ));
            };
            let mime = inline
                .get("mime_type")
                .or_else(|| inline.get("mimeType"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !IMAGE_TYPES.contains(&mime) {
                return Err(format!("Unsupported MIME type: {mime}"));
            }
            let data = inline["data"].as_str().unwrap_or("");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| {
                    let head: String = data.chars().take(16).collect();
                    format!(
                        "Invalid value at 'contents[{ci}].parts[{pi}].inline_data.data' \
                         (TYPE_BYTES), Base64 decoding failed for \"{head}\""
                    )
                })?;
            let img = image::ImageReader::new(Cursor::new(&bytes))
                .with_guessed_format()
                .ok()
                .and_then(|r| r.decode().ok())
                .ok_or(
                    "Unable to process input image. Please retry or report in \
                     https://developers.generativeai.google/guide/troubleshooting",
                )?;
            images.push(img);
        }
    }

    let image_tokens: u64 = images
        .iter()
        .map(|i| image_tokens(i.width(), i.height()))
        .sum();
    let text_tokens = tokens_of(&text);
    let (vision, facts) = match images.first() {
        Some(img) => (true, vision_facts(&catalog::look(img))),
        None => (false, price_facts(&text)),
    };
    let out = fill(properties, &facts);
    let out_text = Value::Object(out).to_string();
    let mut details = vec![json!({ "modality": "TEXT", "tokenCount": text_tokens })];
    if image_tokens > 0 {
        details.push(json!({ "modality": "IMAGE", "tokenCount": image_tokens }));
    }
    tracing::debug!(model, vision, "gemini fake answered");
    Ok(Answer {
        vision,
        prompt_tokens: text_tokens + image_tokens,
        output_tokens: tokens_of(&out_text),
        text: out_text,
        details: Value::Array(details),
    })
}

/// Gemini 2.x image tokens: 258 within 384 × 384, else 258 per 768 × 768 tile.
pub fn image_tokens(width: u32, height: u32) -> u64 {
    if width <= 384 && height <= 384 {
        return TOKENS_PER_TILE;
    }
    u64::from(width.div_ceil(768)) * u64::from(height.div_ceil(768)) * TOKENS_PER_TILE
}

/// About four characters per token.
fn tokens_of(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

fn schema_type(schema: &Value) -> String {
    schema["type"].as_str().unwrap_or("").to_ascii_uppercase()
}

fn vision_facts(seen: &Seen) -> Map<String, Value> {
    let it = seen.item;
    let confidence = if seen.share >= 0.5 { 0.92 } else { 0.61 };
    let description = format!(
        "A {} on a {} background, photographed {}.",
        it.name.to_lowercase(),
        seen.background,
        seen.shape.as_str()
    );
    let mut m = Map::new();
    for k in ["item_name", "name", "item", "title"] {
        m.insert(k.into(), json!(it.name));
    }
    m.insert("category".into(), json!(it.category));
    m.insert("brand".into(), json!(it.brand));
    m.insert("condition".into(), json!("good"));
    m.insert("confidence".into(), json!(confidence));
    m.insert("description".into(), json!(description));
    m.insert("colour".into(), json!(seen.colour));
    m.insert("color".into(), json!(seen.colour));
    m
}

fn price_facts(prompt: &str) -> Map<String, Value> {
    let (price, low, high, why) = match catalog::item_named_in(prompt) {
        Some(it) => (
            it.price_usd,
            it.low_usd(),
            it.high_usd(),
            format!(
                "Typical resale price of a {} in good condition on second-hand marketplaces.",
                it.name
            ),
        ),
        None => {
            // Not in the catalog: a stable price from the prompt's words.
            let h = prompt.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            let p = 10.0 + (h % 490) as f64;
            (
                p,
                (p * 0.8).round(),
                (p * 1.2).round(),
                "Estimated from similar listings.".to_owned(),
            )
        }
    };
    let mut m = Map::new();
    for k in ["price_usd", "price", "estimate_usd", "estimated_price_usd"] {
        m.insert(k.into(), json!(price));
    }
    for k in ["low_usd", "min_usd", "price_low_usd"] {
        m.insert(k.into(), json!(low));
    }
    for k in ["high_usd", "max_usd", "price_high_usd"] {
        m.insert(k.into(), json!(high));
    }
    m.insert("currency".into(), json!("USD"));
    m.insert("rationale".into(), json!(why));
    m.insert("reasoning".into(), json!(why));
    m
}

/// The schema's properties filled from `facts` by name, else with their type's empty value.
fn fill(properties: &Map<String, Value>, facts: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, prop) in properties {
        let nullable = prop["nullable"].as_bool().unwrap_or(false);
        let mut v = facts.get(name).cloned().unwrap_or(Value::Null);
        if v.is_null() && !nullable {
            v = match schema_type(prop).as_str() {
                "NUMBER" | "INTEGER" => json!(0),
                "BOOLEAN" => json!(false),
                "ARRAY" => json!([]),
                "OBJECT" => json!({}),
                _ => json!(""),
            };
        }
        if let Some(allowed) = prop["enum"].as_array()
            && !v.is_null()
            && !allowed.contains(&v)
        {
            v = allowed.first().cloned().unwrap_or(Value::Null);
        }
        out.insert(name.clone(), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tokens_follow_the_tiling_rule() {
        assert_eq!(image_tokens(384, 200), 258);
        assert_eq!(image_tokens(1024, 768), 2 * 258);
        assert_eq!(image_tokens(1024, 1024), 4 * 258);
        assert_eq!(image_tokens(768, 400), 258);
    }

    #[test]
    fn retry_delays_look_like_protobuf_durations() {
        assert_eq!(retry_delay(Duration::from_secs(43)), "43s");
        assert_eq!(retry_delay(Duration::from_millis(1250)), "1.250s");
        assert_eq!(retry_delay(Duration::from_millis(7)), "0.007s");
    }
}
