//! SP-API and Keepa as the chunker calls them. Every call first takes a grant from its
//! fleet-wide limiter (`sp_api`, `keepa`: one GCRA each in Redis, shared by every chunker
//! process), so the fleet stays under the APIs' limits. Should an API still answer 429 (its
//! limit is lower than configured, or another client shares the account), the limiter is paused
//! for every process for the API's hint — SP-API's `x-amzn-RateLimit-Limit` (one token's
//! worth), Keepa's `refillIn` — and the call is made again. 5xx and network errors are retried a
//! few times; a product that still fails is an error of its job, never of its chunk.

use std::sync::Arc;
use std::time::Duration;

use lanes_ratelimit::Limiter;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::job::{JUNK_MESSAGE, is_asin};

/// Attempts per call on 5xx and network errors.
const MAX_ATTEMPTS: u32 = 3;
/// 429s tolerated per call before the product counts as an error.
const MAX_THROTTLED: u32 = 200;

/// Where and how to reach the APIs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// SP-API base URL, up to the operation paths (`.../catalog/2022-04-01/items/...`).
    pub spapi_url: String,
    /// The LWA access token sent as `x-amz-access-token`.
    pub spapi_token: Option<String>,
    pub marketplace: String,
    /// Keepa base URL, up to `/product`.
    pub keepa_url: String,
    pub keepa_key: Option<String>,
    /// Timeout of every HTTP call.
    pub timeout: Duration,
}

/// What the chunker learns about one product.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    pub asin: String,
    pub title: String,
    pub category: String,
    /// Best-seller rank in its category (SP-API).
    pub bsr: u64,
    /// Current Amazon price in USD (Keepa), when it has one.
    pub price: Option<f64>,
    /// 30-day average price in USD (Keepa).
    pub avg30: Option<f64>,
}

/// Why a product was not analyzed.
#[derive(Debug)]
pub enum ProductError {
    /// The product cannot be analyzed: an error of its job, with a message fit for grouping.
    Item(String),
    /// The task was told to stop while waiting for a grant or a retry.
    Cancelled,
    /// The limiter's Redis is unreachable: the chunk should retry later (and resume).
    Infra(String),
}

/// The two APIs behind their limiters.
#[derive(Clone)]
pub struct Apis {
    http: reqwest::Client,
    cfg: Arc<ApiConfig>,
    sp_api: Limiter,
    keepa: Limiter,
}

impl std::fmt::Debug for Apis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apis")
            .field("spapi_url", &self.cfg.spapi_url)
            .field("keepa_url", &self.cfg.keepa_url)
            .field("sp_api", &self.sp_api)
            .field("keepa", &self.keepa)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Catalog,
    Keepa,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Self::Catalog => "SP-API catalog",
            Self::Keepa => "Keepa product",
        }
    }
}

impl Apis {
    pub fn new(cfg: ApiConfig, sp_api: Limiter, keepa: Limiter) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("lanes-chunker/", env!("CARGO_PKG_VERSION")))
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()?;
        Ok(Self {
            http,
            cfg: Arc::new(cfg),
            sp_api,
            keepa,
        })
    }

    /// Analyzes one product: its catalog item (title, category, rank) from SP-API, then its
    /// prices from Keepa. Also returns how many 429s it met and handled.
    pub async fn analyze(
        &self,
        asin: &str,
        cancel: &CancellationToken,
    ) -> (Result<Analysis, ProductError>, u32) {
        let mut throttled = 0;
        if !is_asin(asin) {
            return (Err(ProductError::Item(JUNK_MESSAGE.into())), 0);
        }
        let item = match self.call(Api::Catalog, asin, cancel, &mut throttled).await {
            Ok(v) => v,
            Err(e) => return (Err(e), throttled),
        };
        let keepa = match self.call(Api::Keepa, asin, cancel, &mut throttled).await {
            Ok(v) => v,
            Err(e) => return (Err(e), throttled),
        };
        (parse(asin, &item, &keepa), throttled)
    }

    fn request(&self, api: Api, asin: &str) -> reqwest::RequestBuilder {
        match api {
            Api::Catalog => {
                let url = format!(
                    "{}/catalog/2022-04-01/items/{asin}",
                    self.cfg.spapi_url.trim_end_matches('/')
                );
                let mut req = self.http.get(url).query(&[
                    ("marketplaceIds", self.cfg.marketplace.as_str()),
                    ("includedData", "summaries,salesRanks"),
                ]);
                if let Some(token) = &self.cfg.spapi_token {
                    req = req.header("x-amz-access-token", token);
                }
                req
            }
            Api::Keepa => {
                let url = format!("{}/product", self.cfg.keepa_url.trim_end_matches('/'));
                self.http.get(url).query(&[
                    ("key", self.cfg.keepa_key.as_deref().unwrap_or("")),
                    ("domain", "1"),
                    ("asin", asin),
                    ("stats", "90"),
                ])
            }
        }
    }

    async fn call(
        &self,
        api: Api,
        asin: &str,
        cancel: &CancellationToken,
        throttled: &mut u32,
    ) -> Result<Value, ProductError> {
        let limiter = match api {
            Api::Catalog => &self.sp_api,
            Api::Keepa => &self.keepa,
        };
        let mut failures = 0;
        loop {
            limiter.acquire(1, cancel).await.map_err(|e| match e {
                lanes_ratelimit::Error::Cancelled => ProductError::Cancelled,
                other => ProductError::Infra(format!("{} limiter: {other}", api.name())),
            })?;
            // Keepa's key travels in the query string: errors are reported without their URL.
            let failure = match self.request(api, asin).send().await {
                Err(e) => format!("{}: {}", api.name(), e.without_url()),
                Ok(resp) => {
                    let status = resp.status();
                    let limit_header = resp
                        .headers()
                        .get("x-amzn-ratelimit-limit")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<f64>().ok());
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    if status.is_success() {
                        return Ok(body);
                    }
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        *throttled += 1;
                        if *throttled > MAX_THROTTLED {
                            return Err(ProductError::Item(format!(
                                "{}: still 429 after {MAX_THROTTLED} tries",
                                api.name()
                            )));
                        }
                        // One token's worth, doubling while this product keeps meeting 429s.
                        let hint =
                            pause_hint(api, limit_header, &body) * (1 << (*throttled - 1).min(4));
                        tracing::debug!(
                            api = api.name(),
                            asin,
                            pause_ms = hint.as_millis() as u64,
                            "429: pausing the limiter"
                        );
                        limiter.pause_for(hint).await.map_err(|e| {
                            ProductError::Infra(format!("{} limiter: {e}", api.name()))
                        })?;
                        continue;
                    }
                    let code = error_code(api, &body);
                    let failure = format!("{}: {} {code}", api.name(), status.as_u16());
                    if !status.is_server_error() {
                        return Err(ProductError::Item(failure));
                    }
                    failure
                }
            };
            failures += 1;
            if failures >= MAX_ATTEMPTS {
                return Err(ProductError::Item(format!(
                    "{failure} (after {MAX_ATTEMPTS} attempts)"
                )));
            }
            let backoff = Duration::from_millis(100 << failures);
            tokio::select! {
                () = cancel.cancelled() => return Err(ProductError::Cancelled),
                () = tokio::time::sleep(backoff) => {}
            }
        }
    }
}

/// How long to pause a limiter after a 429.
fn pause_hint(api: Api, limit_header: Option<f64>, body: &Value) -> Duration {
    let d = match api {
        // SP-API says its rate; one token's worth of time lets the bucket refill one.
        // (A rate so small that 1/r is not a duration waits the most.)
        Api::Catalog => limit_header
            .filter(|r| *r > 0.0)
            .map_or(Duration::from_secs(1), |r| {
                Duration::try_from_secs_f64(1.0 / r).unwrap_or(Duration::MAX)
            }),
        // Keepa says when its next token arrives.
        Api::Keepa => body
            .get("refillIn")
            .and_then(Value::as_u64)
            .map_or(Duration::from_secs(1), |ms| {
                Duration::from_millis(ms.saturating_add(1))
            }),
    };
    d.clamp(Duration::from_millis(5), Duration::from_secs(60))
}

fn error_code(api: Api, body: &Value) -> String {
    let code = match api {
        Api::Catalog => body.pointer("/errors/0/code"),
        Api::Keepa => body.pointer("/error/type"),
    };
    code.and_then(Value::as_str).unwrap_or("error").to_owned()
}

fn parse(asin: &str, item: &Value, keepa: &Value) -> Result<Analysis, ProductError> {
    let summary = item.pointer("/summaries/0");
    let title = summary
        .and_then(|s| s.get("itemName"))
        .and_then(Value::as_str)
        .ok_or_else(|| ProductError::Item("SP-API catalog: item without a summary".into()))?;
    let category = summary
        .and_then(|s| s.pointer("/browseClassification/displayName"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let bsr = item
        .pointer("/salesRanks/0/displayGroupRanks/0/rank")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let product = keepa
        .get("products")
        .and_then(Value::as_array)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("asin").and_then(Value::as_str) == Some(asin))
        })
        .ok_or_else(|| ProductError::Item("Keepa product: no data for the product".into()))?;
    let cents = |path: &str| {
        product
            .pointer(path)
            .and_then(Value::as_i64)
            .filter(|c| *c >= 0)
            .map(|c| c as f64 / 100.0)
    };
    Ok(Analysis {
        asin: asin.to_owned(),
        title: title.to_owned(),
        category,
        bsr,
        price: cents("/stats/current/0"),
        avg30: cents("/stats/avg30/0"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pause_hints_follow_each_api() {
        assert_eq!(
            pause_hint(Api::Catalog, Some(8.0), &Value::Null),
            Duration::from_millis(125)
        );
        assert_eq!(
            pause_hint(Api::Keepa, None, &json!({"refillIn": 199})),
            Duration::from_millis(200)
        );
        assert_eq!(
            pause_hint(Api::Catalog, None, &Value::Null),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn products_parse_from_both_answers() {
        let item = json!({"asin": "B000000001", "summaries": [{"itemName": "Mug", "browseClassification": {"displayName": "Kitchen"}}],
            "salesRanks": [{"displayGroupRanks": [{"rank": 42}]}]});
        let keepa = json!({"products": [{"asin": "B000000001", "stats": {"current": [1999, 1999, -1, 42], "avg30": [2099]}}]});
        let a = parse("B000000001", &item, &keepa).expect("parses");
        assert_eq!(
            (a.title.as_str(), a.bsr, a.price, a.avg30),
            ("Mug", 42, Some(19.99), Some(20.99))
        );
        assert!(matches!(
            parse("B000000001", &item, &json!({"products": []})),
            Err(ProductError::Item(_))
        ));
    }
}

/// Fuzzing the decoders of SP-API and Keepa answers (`parse`, `error_code`, `pause_hint`): random
/// JSON, valid answers with one field replaced by any JSON value, any rate-limit header. Never a
/// panic. `LANES_FUZZ_CASES` cases per target (default 256); failures are kept under
/// `proptest-regressions/`.
#[cfg(test)]
mod fuzz {
    use lanes_testkit::fuzz;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn config() -> ProptestConfig {
        lanes_testkit::fuzz::config(256)
    }

    fn json_value() -> impl Strategy<Value = Value> {
        fuzz::json_value(&[ASIN], fuzz::keys("[a-zA-Z]{1,10}", &[]))
    }

    const ASIN: &str = "B000000001";

    fn item() -> Value {
        json!({"asin": ASIN, "summaries": [{"itemName": "Mug",
            "browseClassification": {"displayName": "Kitchen"}}],
            "salesRanks": [{"displayGroupRanks": [{"rank": 42}]}],
            "errors": [{"code": "InvalidInput"}]})
    }

    fn keepa() -> Value {
        json!({"products": [{"asin": ASIN, "stats": {"current": [1999], "avg30": [2099]}}],
            "refillIn": 199, "error": {"type": "x"}})
    }

    const ITEM_POINTERS: &[&str] = &[
        "",
        "/summaries",
        "/summaries/0",
        "/summaries/0/itemName",
        "/summaries/0/browseClassification",
        "/salesRanks/0/displayGroupRanks/0/rank",
        "/errors/0/code",
    ];
    const KEEPA_POINTERS: &[&str] = &[
        "",
        "/products",
        "/products/0",
        "/products/0/asin",
        "/products/0/stats",
        "/products/0/stats/current",
        "/products/0/stats/current/0",
        "/products/0/stats/avg30/0",
        "/refillIn",
        "/error/type",
    ];

    fn replaced(mut v: Value, pointer: &str, with: Value) -> Value {
        if let Some(slot) = v.pointer_mut(pointer) {
            *slot = with;
        }
        v
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn answers_parse_or_say_why(
            (i, a) in (0..ITEM_POINTERS.len(), json_value()),
            (k, b) in (0..KEEPA_POINTERS.len(), json_value()),
        ) {
            let item = replaced(item(), ITEM_POINTERS[i], a);
            let keepa = replaced(keepa(), KEEPA_POINTERS[k], b);
            match parse(ASIN, &item, &keepa) {
                Ok(p) => {
                    prop_assert_eq!(p.asin.as_str(), ASIN);
                    prop_assert!(p.price.is_none_or(|c| c >= 0.0));
                }
                Err(ProductError::Item(m)) => prop_assert!(!m.is_empty()),
                Err(other) => prop_assert!(false, "{other:?}"),
            }
            for api in [Api::Catalog, Api::Keepa] {
                prop_assert!(!error_code(api, &item).is_empty());
                prop_assert!(!error_code(api, &keepa).is_empty());
            }
        }

        #[test]
        fn pause_hints_stay_within_bounds(
            header in proptest::option::of(prop_oneof![
                any::<f64>(),
                Just(f64::MIN_POSITIVE),
                Just(5e-324),
                Just(f64::INFINITY),
                Just(f64::NAN),
            ]),
            body in json_value(),
            refill in proptest::option::of(any::<u64>()),
        ) {
            let body = match refill {
                Some(ms) => json!({"refillIn": ms}),
                None => body,
            };
            for api in [Api::Catalog, Api::Keepa] {
                let d = pause_hint(api, header, &body);
                prop_assert!(d >= Duration::from_millis(5) && d <= Duration::from_secs(60));
            }
        }
    }

    /// Found while writing the targets above: an `x-amzn-ratelimit-limit` of 5e-324 made
    /// `1 / r` infinite and `Duration::from_secs_f64` panic; a Keepa `refillIn` of `u64::MAX`
    /// overflowed `ms + 1` (a panic in debug builds).
    #[test]
    fn extreme_rate_hints_are_clamped() {
        assert_eq!(
            pause_hint(Api::Catalog, Some(5e-324), &Value::Null),
            Duration::from_secs(60)
        );
        assert_eq!(
            pause_hint(Api::Keepa, None, &json!({"refillIn": u64::MAX})),
            Duration::from_secs(60)
        );
    }
}
