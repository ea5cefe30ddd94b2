//! What can go wrong with a call, what the caller should do about it, and the parsing of
//! Gemini's error bodies (`google.rpc.Status` with `ErrorInfo`, `QuotaFailure`, `RetryInfo`).

use std::time::Duration;

use serde_json::Value;

/// How long a message taken from an answer may be.
const MAX_MESSAGE: usize = 300;

/// A failed call. [`Error::disposition`] says what to do; the message is for people.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 429 `RESOURCE_EXHAUSTED`: over a quota. Wait `retry_after` (the body's `RetryInfo`,
    /// capped) before the next call — and make every other caller wait too.
    #[error("gemini quota exhausted (429 RESOURCE_EXHAUSTED{}): {message}", quota.as_deref().map(|q| format!(", {q}")).unwrap_or_default())]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
        /// The violated quota's id, when the body names one.
        quota: Option<String>,
    },
    /// 5xx: overloaded (`UNAVAILABLE`), too slow (`DEADLINE_EXCEEDED`) or broken (`INTERNAL`).
    #[error("gemini unavailable ({status} {code}): {message}")]
    Unavailable {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer within the configured timeout.
    #[error("gemini did not answer within {timeout:?}")]
    Timeout { timeout: Duration },
    /// The connection failed (refused, reset, DNS, TLS).
    #[error("cannot reach gemini: {0}")]
    Connect(String),
    /// The key is invalid, expired or lacks permission (400 `API_KEY_INVALID`, 401, 403).
    #[error("gemini refused the API key ({status} {code}): {message}")]
    InvalidKey {
        status: u16,
        code: String,
        message: String,
    },
    /// The request is wrong and will stay wrong: 400 `INVALID_ARGUMENT` (a bad image, a bad
    /// schema), 404 (unknown model), 413, ...
    #[error("gemini refused the request ({status} {code}): {message}")]
    InvalidRequest {
        status: u16,
        code: String,
        message: String,
    },
    /// The prompt or the answer was blocked (`promptFeedback.blockReason`, or a `finishReason`
    /// such as `SAFETY`).
    #[error("gemini blocked the {what}: {reason}")]
    Blocked { what: &'static str, reason: String },
    /// A 2xx answer that is not the documented shape (no candidate, no text).
    #[error("gemini answered an unexpected shape: {0}")]
    BadResponse(String),
    /// The answer's text is not the JSON the schema asked for (truncated, or the model
    /// wandered); another try may do better.
    #[error("gemini's answer is not the JSON asked for: {message}")]
    BadOutput { message: String },
    /// The client is misconfigured (base URL, key, model name).
    #[error("gemini client configuration: {0}")]
    Config(String),
}

/// What a caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Over a quota: wait this long (when Gemini said), pause every caller, then retry.
    RateLimited { retry_after: Option<Duration> },
    /// Worth another try after a backoff with jitter.
    Transient,
    /// Retrying cannot help: fail with the message.
    Permanent,
}

impl Error {
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::RateLimited { retry_after, .. } => Disposition::RateLimited {
                retry_after: *retry_after,
            },
            Self::Unavailable { .. }
            | Self::Timeout { .. }
            | Self::Connect(_)
            | Self::BadResponse(_)
            | Self::BadOutput { .. } => Disposition::Transient,
            Self::InvalidKey { .. }
            | Self::InvalidRequest { .. }
            | Self::Blocked { .. }
            | Self::Config(_) => Disposition::Permanent,
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.disposition() == Disposition::Permanent
    }
}

/// The error for a non-2xx answer: its status, its `google.rpc.Status` body, and a
/// `Retry-After` header as a fallback for the retry delay.
pub(crate) fn from_status(
    status: u16,
    body: &[u8],
    retry_after_header: Option<Duration>,
    max_retry_delay: Duration,
) -> Error {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().map(|v| &v["error"]);
    let text = |f: &str| {
        err.and_then(|e| e[f].as_str())
            .map(str::to_owned)
            .filter(|s| !s.is_empty())
    };
    let code = text("status").unwrap_or_else(|| default_code(status).to_owned());
    let message = clip(&text("message").unwrap_or_else(|| {
        let raw = String::from_utf8_lossy(body);
        if raw.trim().is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            raw.into_owned()
        }
    }));
    let details: &[Value] = err
        .and_then(|e| e["details"].as_array())
        .map_or(&[], Vec::as_slice);
    let of_type = |suffix: &str| {
        details
            .iter()
            .find(|d| d["@type"].as_str().is_some_and(|t| t.ends_with(suffix)))
    };
    let reason = of_type("google.rpc.ErrorInfo")
        .and_then(|d| d["reason"].as_str())
        .unwrap_or("");
    match status {
        429 => {
            let hinted = of_type("google.rpc.RetryInfo")
                .and_then(|d| d["retryDelay"].as_str())
                .and_then(parse_retry_delay)
                .or(retry_after_header);
            let quota = of_type("google.rpc.QuotaFailure")
                .and_then(|d| d["violations"].as_array())
                .and_then(|v| v.first())
                .and_then(|v| v["quotaId"].as_str().or_else(|| v["quotaMetric"].as_str()))
                .map(str::to_owned);
            Error::RateLimited {
                message,
                retry_after: hinted.map(|d| d.min(max_retry_delay)),
                quota,
            }
        }
        400 if reason == "API_KEY_INVALID" || reason == "API_KEY_EXPIRED" => Error::InvalidKey {
            status,
            code,
            message,
        },
        401 | 403 => Error::InvalidKey {
            status,
            code,
            message,
        },
        408 | 500..=599 => Error::Unavailable {
            status,
            code,
            message,
        },
        _ => Error::InvalidRequest {
            status,
            code,
            message,
        },
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "HTTP_ERROR",
    }
}

/// Parses a protobuf `Duration` as JSON writes it: `"43s"`, `"1.5s"`, `"0.250s"`.
pub fn parse_retry_delay(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

pub(crate) fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_MESSAGE {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_MESSAGE).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CAP: Duration = Duration::from_secs(60);

    fn err(status: u16, body: Value) -> Error {
        from_status(status, body.to_string().as_bytes(), None, CAP)
    }

    #[test]
    fn retry_delays_parse() {
        assert_eq!(parse_retry_delay("43s"), Some(Duration::from_secs(43)));
        assert_eq!(parse_retry_delay("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse_retry_delay("0.250s"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_delay("43"), None);
        assert_eq!(parse_retry_delay("-1s"), None);
    }

    #[test]
    fn a_429_carries_its_retry_info_capped() {
        let body = json!({"error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
             "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                             "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "43s"}
        ]}});
        let e = err(429, body.clone());
        assert_eq!(
            e.disposition(),
            Disposition::RateLimited {
                retry_after: Some(Duration::from_secs(43))
            }
        );
        assert!(e.to_string().contains("GenerateRequestsPerMinute"), "{e}");
        let long = body.to_string().replace("43s", "3600s");
        let e = from_status(429, long.as_bytes(), None, CAP);
        assert_eq!(
            e.disposition(),
            Disposition::RateLimited {
                retry_after: Some(CAP)
            }
        );
        // No RetryInfo: the Retry-After header, else no hint.
        let bare =
            json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down"}});
        let e = from_status(
            429,
            bare.to_string().as_bytes(),
            Some(Duration::from_secs(2)),
            CAP,
        );
        assert_eq!(
            e.disposition(),
            Disposition::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            err(429, bare).disposition(),
            Disposition::RateLimited { retry_after: None }
        );
    }

    #[test]
    fn statuses_map_to_what_to_do() {
        let bad_key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                         "domain": "googleapis.com"}]}});
        let e = err(400, bad_key);
        assert!(matches!(e, Error::InvalidKey { .. }), "{e:?}");
        assert!(e.is_permanent());
        assert!(e.to_string().contains("API key not valid"));

        let bad_image = json!({"error": {"code": 400, "message": "Unable to process input image.", "status": "INVALID_ARGUMENT"}});
        assert!(matches!(err(400, bad_image), Error::InvalidRequest { .. }));
        let no_model = json!({"error": {"code": 404, "message": "models/gemini-9 is not found", "status": "NOT_FOUND"}});
        assert!(err(404, no_model).is_permanent());
        let overloaded = json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}});
        let e = err(503, overloaded);
        assert_eq!(e.disposition(), Disposition::Transient);
        assert!(e.to_string().contains("UNAVAILABLE"));
        let e = from_status(504, b"", None, CAP);
        assert_eq!(e.disposition(), Disposition::Transient);
        assert!(e.to_string().contains("DEADLINE_EXCEEDED"), "{e}");
        assert!(
            from_status(502, b"<html>bad gateway</html>", None, CAP)
                .to_string()
                .contains("bad gateway")
        );
    }

    #[test]
    fn long_messages_are_clipped() {
        let s = "x".repeat(1000);
        let c = clip(&s);
        assert!(c.chars().count() <= MAX_MESSAGE + 1);
        assert!(c.ends_with('…'));
    }
}
