//! The channel API as the collector calls it (Bot API shapes: `getChat`, `getHistory` paged by
//! offset id, photo downloads by `file_path`).
//!
//! Every call first waits out any flood wait this process knows of, then takes a grant from
//! the fleet-wide limiter (`channels_api`: one GCRA in Redis shared by every collector), and
//! checks the flood gate again (a wait may have begun meanwhile). A 429 closes this process's
//! flood gate at once for `retry_after`, pauses the shared limiter for every collector for the
//! same time, and the call is made again after it. A flood wait longer than `max_flood_wait`
//! is returned instead ([`ApiError::FloodWait`]) so the task is retried later and frees its
//! slot. Every call has a timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanes_ratelimit::Limiter;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where and how to reach the API.
#[derive(Clone)]
pub struct ApiConfig {
    /// Base URL up to the `bot<token>` segment (the fake: `http://127.0.0.1:8090/channels`).
    pub base_url: String,
    /// The bot token (a secret: never logged).
    pub token: String,
    /// Timeout of every HTTP call.
    pub timeout: Duration,
    /// Longest flood wait sat out in place; a longer one retries the task after it.
    pub max_flood_wait: Duration,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("base_url", &self.base_url)
            .field("token", &"***")
            .field("timeout", &self.timeout)
            .field("max_flood_wait", &self.max_flood_wait)
            .finish()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The channel does not exist (or is not visible): bad input, never retried.
    #[error("channel @{channel} not found (HTTP 404: {description})")]
    NotFound {
        channel: String,
        description: String,
    },
    /// The token was refused: a configuration error, never retried.
    #[error("the channel API refused the token (HTTP {status}: {description})")]
    Unauthorized { status: u16, description: String },
    /// Any other 4xx: the request is wrong, retrying will not help.
    #[error("the channel API refused {what} (HTTP {status}: {description})")]
    Rejected {
        what: String,
        status: u16,
        description: String,
    },
    /// 5xx: worth retrying later.
    #[error("the channel API failed {what} (HTTP {status}: {description})")]
    Server {
        what: String,
        status: u16,
        description: String,
    },
    #[error("flood wait of {}s asked for, longer than the {}s sat out in place", retry_after.as_secs(), max.as_secs())]
    FloodWait {
        retry_after: Duration,
        max: Duration,
    },
    #[error("cannot reach the channel API for {what}: {message}")]
    Transport { what: String, message: String },
    #[error("unexpected answer from the channel API for {what}: {message}")]
    Protocol { what: String, message: String },
    #[error("rate limiter: {0}")]
    Limiter(lanes_ratelimit::Error),
    #[error("stopped")]
    Cancelled,
}

impl ApiError {
    /// True for errors retrying cannot fix (bad input or configuration).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. } | Self::Unauthorized { .. } | Self::Rejected { .. }
        )
    }
}

/// What `getChat` tells about a channel.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatInfo {
    pub id: i64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub message_count: u64,
    #[serde(default)]
    pub last_message_id: u64,
}

#[derive(Debug, Deserialize)]
struct History {
    #[serde(default)]
    messages: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
}

/// Counts of one collection's calls.
#[derive(Debug, Default)]
pub struct Meter {
    /// 429s met (each sat out).
    pub flood_waits: AtomicU64,
    pub calls: AtomicU64,
}

/// The API behind the fleet-wide limiter and this process's flood gate. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    cfg: Arc<ApiConfig>,
    limiter: Limiter,
    /// When this process's known flood wait ends.
    gate: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("cfg", &self.cfg)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(cfg: ApiConfig, limiter: Limiter) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("lanes-collector/", env!("CARGO_PKG_VERSION")))
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()?;
        Ok(Self {
            http,
            cfg: Arc::new(cfg),
            limiter,
            gate: Arc::new(Mutex::new(None)),
        })
    }

    fn gate_until(&self) -> Option<Instant> {
        let gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        gate.filter(|until| *until > Instant::now())
    }

    fn close_gate(&self, wait: Duration) {
        let until = Instant::now() + wait.min(MAX_FLOOD_WAIT);
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        if gate.is_none_or(|g| g < until) {
            *gate = Some(until);
        }
    }

    fn url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.token
        )
    }

    /// Sends one call under the flood gate and the limiter, sitting out 429s.
    async fn send(
        &self,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
        meter: &Meter,
        cancel: &CancellationToken,
    ) -> Result<reqwest::Response, ApiError> {
        loop {
            if let Some(until) = self.gate_until() {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(ApiError::Cancelled),
                    () = tokio::time::sleep_until(until) => {}
                }
            }
            match self.limiter.acquire(1, cancel).await {
                Ok(_) => {}
                Err(lanes_ratelimit::Error::Cancelled) => return Err(ApiError::Cancelled),
                Err(e) => return Err(ApiError::Limiter(e)),
            }
            if self.gate_until().is_some() {
                continue;
            }
            meter.calls.fetch_add(1, Ordering::Relaxed);
            let resp = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(ApiError::Cancelled),
                r = request().send() => r.map_err(|e| ApiError::Transport {
                    what: what.to_owned(),
                    message: chain(e),
                })?,
            };
            if resp.status() != StatusCode::TOO_MANY_REQUESTS {
                return Ok(resp);
            }
            let header = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp.bytes().await.unwrap_or_default();
            let wait = flood_wait(header.as_deref(), &body);
            let secs = wait.as_secs();
            self.close_gate(wait);
            meter.flood_waits.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                call = what,
                retry_after_s = secs,
                "flood wait: pausing every collector"
            );
            if let Err(e) = self.limiter.pause_for(wait).await {
                tracing::warn!(error = %e, "could not pause the shared limiter; waiting here only");
            }
            if wait > self.cfg.max_flood_wait {
                return Err(ApiError::FloodWait {
                    retry_after: wait,
                    max: self.cfg.max_flood_wait,
                });
            }
        }
    }

    /// Reads a JSON answer's `result`, or the error it carries.
    async fn result(
        &self,
        what: &str,
        channel: &str,
        resp: reqwest::Response,
    ) -> Result<Value, ApiError> {
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ApiError::Transport {
            what: what.to_owned(),
            message: chain(e),
        })?;
        decode_result(what, channel, status, &body)
    }

    /// The channel's info (`getChat`).
    pub async fn chat(
        &self,
        channel: &str,
        meter: &Meter,
        cancel: &CancellationToken,
    ) -> Result<ChatInfo, ApiError> {
        let what = format!("the info of @{channel}");
        let url = self.url("getChat");
        let chat_id = format!("@{channel}");
        let resp = self
            .send(
                &what,
                || self.http.get(&url).query(&[("chat_id", &chat_id)]),
                meter,
                cancel,
            )
            .await?;
        let v = self.result(&what, channel, resp).await?;
        serde_json::from_value(v).map_err(|e| ApiError::Protocol {
            what,
            message: e.to_string(),
        })
    }

    /// Up to `limit` messages after `offset_id`, oldest first (`getHistory`).
    pub async fn history(
        &self,
        channel: &str,
        offset_id: u64,
        limit: u64,
        meter: &Meter,
        cancel: &CancellationToken,
    ) -> Result<Vec<Value>, ApiError> {
        let what = format!("the history of @{channel} after message {offset_id}");
        let url = self.url("getHistory");
        let (chat_id, offset, limit) = (
            format!("@{channel}"),
            offset_id.to_string(),
            limit.to_string(),
        );
        let query = [
            ("chat_id", &chat_id),
            ("offset_id", &offset),
            ("limit", &limit),
        ];
        let resp = self
            .send(&what, || self.http.get(&url).query(&query), meter, cancel)
            .await?;
        let v = self.result(&what, channel, resp).await?;
        let h: History = serde_json::from_value(v).map_err(|e| ApiError::Protocol {
            what,
            message: e.to_string(),
        })?;
        Ok(h.messages)
    }

    /// A file's bytes, by its `file_path`.
    pub async fn file(
        &self,
        channel: &str,
        path: &str,
        meter: &Meter,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, ApiError> {
        let what = format!("photo {path}");
        let url = format!(
            "{}/file/bot{}/{}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.token,
            path.trim_start_matches('/')
        );
        let resp = self
            .send(&what, || self.http.get(&url), meter, cancel)
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let description = resp
                .json::<Envelope>()
                .await
                .map(|e| e.description)
                .unwrap_or_default();
            return Err(match status_error(&what, channel, status, description) {
                // A photo that is gone is not a missing channel; try again later.
                ApiError::NotFound { description, .. } => ApiError::Server {
                    what,
                    status: 404,
                    description,
                },
                e => e,
            });
        }
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ApiError::Transport {
                what,
                message: chain(e),
            })
    }
}

/// The longest flood wait believed: an answer asking for more is treated as asking for this.
const MAX_FLOOD_WAIT: Duration = Duration::from_secs(24 * 3600);

/// How long a 429 asks to wait: the body's `parameters.retry_after`, else the `Retry-After`
/// header, else 1 s; at least 1 s and at most [`MAX_FLOOD_WAIT`].
fn flood_wait(header: Option<&str>, body: &[u8]) -> Duration {
    let header = header.and_then(|v| v.trim().parse::<u64>().ok());
    let secs = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|b| b.parameters)
        .and_then(|p| p.retry_after)
        .or(header)
        .unwrap_or(1)
        .clamp(1, MAX_FLOOD_WAIT.as_secs());
    Duration::from_secs(secs)
}

/// A JSON answer's `result`, or the error it carries.
fn decode_result(
    what: &str,
    channel: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<Value, ApiError> {
    let envelope: Option<Envelope> = serde_json::from_slice(body).ok();
    if status.is_success() {
        return match envelope {
            Some(e) if e.ok => Ok(e.result),
            _ => Err(ApiError::Protocol {
                what: what.to_owned(),
                message: format!("HTTP {status} without an ok JSON body"),
            }),
        };
    }
    let description = envelope
        .map(|e| e.description)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    Err(status_error(what, channel, status, description))
}

fn status_error(what: &str, channel: &str, status: StatusCode, description: String) -> ApiError {
    let code = status.as_u16();
    match status {
        StatusCode::NOT_FOUND => ApiError::NotFound {
            channel: channel.to_owned(),
            description,
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ApiError::Unauthorized {
            status: code,
            description,
        },
        s if s.is_client_error() => ApiError::Rejected {
            what: what.to_owned(),
            status: code,
            description,
        },
        _ => ApiError::Server {
            what: what.to_owned(),
            status: code,
            description,
        },
    }
}

/// An error with its sources, without the URL (it holds the token).
fn chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Fuzzing the decoders of channel-API answers: the envelope of every call under any status,
/// `getChat` and `getHistory` results, and flood-wait hints (body and `Retry-After`). Never a
/// panic. `LANES_FUZZ_CASES` cases per target (default 256); failures are kept under
/// `proptest-regressions/`.
#[cfg(test)]
mod fuzz {
    use lanes_testkit::fuzz;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn config() -> ProptestConfig {
        lanes_testkit::fuzz::config(256)
    }

    fn json_value() -> impl Strategy<Value = Value> {
        const FIELDS: &[&str] = &[
            "ok",
            "result",
            "messages",
            "parameters",
            "retry_after",
            "description",
        ];
        fuzz::json_value(&[], fuzz::keys("[a-z_]{1,12}", FIELDS))
    }

    fn valid() -> Value {
        json!({"ok": true, "description": "x", "parameters": {"retry_after": 3},
            "result": {"id": -100, "title": "t", "message_count": 5, "last_message_id": 9,
                       "messages": [{"id": 1}]}})
    }

    const POINTERS: &[&str] = &[
        "",
        "/ok",
        "/description",
        "/parameters",
        "/parameters/retry_after",
        "/result",
        "/result/id",
        "/result/message_count",
        "/result/messages",
    ];

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            json_value().prop_map(|v| v.to_string().into_bytes()),
            vec(any::<u8>(), 0..300),
            (0..POINTERS.len(), json_value()).prop_map(|(i, v)| {
                let mut doc = valid();
                if let Some(slot) = doc.pointer_mut(POINTERS[i]) {
                    *slot = v;
                }
                doc.to_string().into_bytes()
            }),
        ]
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn answers_decode_or_say_why(status in 100u16..600, body in body()) {
            let status = StatusCode::from_u16(status).expect("a status in range");
            match decode_result("the info of @c", "c", status, &body) {
                Ok(v) => {
                    prop_assert!(status.is_success());
                    let _ = serde_json::from_value::<ChatInfo>(v.clone());
                    let _ = serde_json::from_value::<History>(v);
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn flood_waits_stay_within_bounds(
            header in proptest::option::of(prop_oneof![
                any::<String>(),
                any::<u64>().prop_map(|n| n.to_string()),
            ]),
            body in body(),
        ) {
            let d = flood_wait(header.as_deref(), &body);
            prop_assert!(d >= Duration::from_secs(1) && d <= MAX_FLOOD_WAIT);
            // What the caller does with it: close this process's gate.
            let _ = Instant::now() + d;
        }
    }

    /// Found while writing `flood_waits_stay_within_bounds`: a 429 asking for `u64::MAX`
    /// seconds made `Instant::now() + wait` overflow, a panic in the collector's call loop.
    #[test]
    fn a_huge_flood_wait_is_capped() {
        let body = json!({"ok": false, "parameters": {"retry_after": u64::MAX}}).to_string();
        assert_eq!(flood_wait(None, body.as_bytes()), MAX_FLOOD_WAIT);
        assert_eq!(
            flood_wait(Some("18446744073709551615"), b"not json"),
            MAX_FLOOD_WAIT
        );
        assert_eq!(flood_wait(Some(" 7 "), b""), Duration::from_secs(7));
    }
}
