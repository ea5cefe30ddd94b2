//! `Gemini`: one reqwest client, the base URL and the key; `generate` makes one call.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};

use crate::error::{Error, from_status};
use crate::request::GenerateRequest;
use crate::response::{Generated, parse_generated};

/// An API key. It is sent only in the `x-goog-api-key` header (marked sensitive), and its
/// `Debug` never shows it; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Where Gemini is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct GeminiConfig {
    /// Up to (not including) `/v1beta`: `https://generativelanguage.googleapis.com`, or a fake's
    /// `http://127.0.0.1:8090/gemini`.
    pub base_url: String,
    pub api_key: ApiKey,
    /// Longest one call may take, sending the image included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// A 429's `retryDelay` is capped at this (a hint of an hour should not park a photo for an
    /// hour; the caller retries and asks again).
    pub max_retry_delay: Duration,
}

impl GeminiConfig {
    /// Defaults: 60 s per call, 5 s to connect, retry delays capped at 60 s.
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            max_retry_delay: Duration::from_secs(60),
        }
    }
}

/// The client. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Gemini {
    http: reqwest::Client,
    base: String,
    cfg: GeminiConfig,
}

impl Gemini {
    /// Checks the configuration (an http(s) base URL, a key) and builds the HTTP client.
    pub fn new(cfg: GeminiConfig) -> Result<Self, Error> {
        let base = cfg.base_url.trim().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| Error::Config(format!("base URL {base:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "base URL {base:?}: use http:// or https://"
            )));
        }
        if url.query().is_some() {
            return Err(Error::Config(format!(
                "base URL {base:?}: no query string (the key goes in a header)"
            )));
        }
        if cfg.api_key.is_empty() {
            return Err(Error::Config(
                "no API key (set GEMINI_API_KEY in the environment)".into(),
            ));
        }
        let mut key = HeaderValue::from_str(cfg.api_key.expose())
            .map_err(|_| Error::Config("the API key holds characters a header cannot".into()))?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-goog-api-key", key);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .user_agent(concat!("lanes-gemini/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("http client: {e}")))?;
        Ok(Self { http, base, cfg })
    }

    pub fn config(&self) -> &GeminiConfig {
        &self.cfg
    }

    /// The URL of `model`'s `generateContent` (no key in it).
    pub fn url(&self, model: &str) -> Result<String, Error> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        let ok = !model.is_empty()
            && model.len() <= 128
            && model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !ok {
            return Err(Error::Config(format!("invalid model name {model:?}")));
        }
        Ok(format!(
            "{}/v1beta/models/{model}:generateContent",
            self.base
        ))
    }

    /// One `generateContent` call. Never retries by itself: the error says whether and when to
    /// (see [`Error::disposition`]).
    #[tracing::instrument(level = "debug", skip(self, req), fields(model = %model))]
    pub async fn generate(&self, model: &str, req: &GenerateRequest) -> Result<Generated, Error> {
        let url = self.url(model)?;
        let body = serde_json::to_vec(&req.body())
            .map_err(|e| Error::Config(format!("request does not serialize: {e}")))?;
        let started = Instant::now();
        let resp = self
            .http
            .post(&url)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        tracing::debug!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            bytes = bytes.len(),
            "gemini answered"
        );
        if !status.is_success() {
            return Err(from_status(
                status.as_u16(),
                &bytes,
                retry_after,
                self.cfg.max_retry_delay,
            ));
        }
        parse_generated(&bytes)
    }

    fn transport(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                timeout: self.cfg.timeout,
            }
        } else {
            // reqwest names the URL, which holds no secret: the key travels in a header.
            Error::Connect(e.without_url().to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_show() {
        let cfg = GeminiConfig::new("http://127.0.0.1:1", ApiKey::new("sk-very-secret"));
        assert!(!format!("{cfg:?}").contains("very-secret"));
        let g = Gemini::new(cfg).expect("valid");
        assert!(!format!("{g:?}").contains("very-secret"));
    }

    #[test]
    fn urls_and_models_are_checked() {
        let g = Gemini::new(GeminiConfig::new(
            "http://127.0.0.1:9/gemini/",
            ApiKey::new("k"),
        ))
        .expect("valid");
        assert_eq!(
            g.url("gemini-2.5-flash").expect("model"),
            "http://127.0.0.1:9/gemini/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            g.url("models/gemini-2.5-flash").expect("model"),
            "http://127.0.0.1:9/gemini/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert!(g.url("../admin").is_err());
        assert!(g.url("").is_err());
        for bad in ["ftp://x", "not a url", "http://x/?key=1"] {
            assert!(
                Gemini::new(GeminiConfig::new(bad, ApiKey::new("k"))).is_err(),
                "{bad}"
            );
        }
        assert!(Gemini::new(GeminiConfig::new("http://x", ApiKey::new(" "))).is_err());
    }
}
