//! A Keepa-like product API over the product fixture, metered by Keepa's token bucket (default
//! 5 tokens/s, burst 2; one token per product asked for).
//!
//! Routes (under `/keepa`):
//! - `GET /product?key=KEY&domain=1&asin=ASIN[,ASIN...]` — products with `stats.current`
//!   (Keepa's price-type indices: 0 Amazon, 1 new, 2 used, 3 sales rank; prices in cents);
//! - `GET /_stats` — served, refused_429, peak_per_second, ... (not part of Keepa).
//!
//! As Keepa does: every answer carries the token state (`tokensLeft`, `refillIn` in ms,
//! `refillRate` per minute, `timestamp`); without enough tokens the answer is 429 with that
//! state and no products; a wrong or missing key is 401 (only when the fake is given a key, any
//! non-empty key otherwise); products Keepa does not know are left out of `products`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::FakesConfig;
use crate::products::{Catalog, Product, is_asin};
use crate::quota::{Answer, QuotaStats, TokenBucket};

/// Most ASINs one request may ask for (Keepa's own limit).
pub const MAX_ASINS: usize = 100;

/// The Keepa fake's limit and key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeepaConfig {
    /// Tokens refilled per second.
    pub rate_per_sec: f64,
    /// Most tokens the bucket holds.
    pub burst: u32,
    /// The only accepted API key; `None` accepts any non-empty key.
    pub key: Option<String>,
}

impl Default for KeepaConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 5.0,
            burst: 2,
            key: None,
        }
    }
}

struct Keepa {
    catalog: Result<Catalog, String>,
    bucket: TokenBucket,
    stats: QuotaStats,
    key: Option<String>,
}

/// The keepa fake's routes.
pub fn router(cfg: &FakesConfig) -> Router {
    let catalog = Catalog::load(&cfg.fixtures);
    if let Err(e) = &catalog {
        tracing::error!(error = %e, "keepa fake: product fixture missing; every call answers 500");
    }
    let state = Arc::new(Keepa {
        catalog,
        bucket: TokenBucket::new(cfg.keepa.rate_per_sec, cfg.keepa.burst),
        stats: QuotaStats::default(),
        key: cfg.keepa.key.clone(),
    });
    Router::new()
        .route("/product", get(product))
        .route("/_stats", get(stats))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct ProductQuery {
    key: Option<String>,
    domain: Option<String>,
    asin: Option<String>,
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "type": kind, "message": message } })),
    )
        .into_response()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Keepa {
    fn token_state(&self, tokens_left: f64, consumed: u32) -> serde_json::Map<String, Value> {
        let interval_ms = 1000.0 / self.bucket.rate();
        let refill_in = if tokens_left >= 1.0 {
            0
        } else {
            ((1.0 - tokens_left) * interval_ms).ceil() as u64
        };
        let mut m = serde_json::Map::new();
        m.insert("timestamp".into(), json!(now_ms()));
        m.insert("tokensLeft".into(), json!(tokens_left.floor() as i64));
        m.insert("refillIn".into(), json!(refill_in));
        m.insert(
            "refillRate".into(),
            json!((self.bucket.rate() * 60.0).round() as u64),
        );
        m.insert("tokenFlowReduction".into(), json!(0.0));
        m.insert("tokensConsumed".into(), json!(consumed));
        m.insert("processingTimeInMs".into(), json!(1));
        m
    }
}

fn product_json(p: &Product) -> Value {
    let cents = (p.price * 100.0).round() as i64;
    let avg = |pct: i64| cents + cents * pct / 100;
    json!({
        "asin": p.asin,
        "domainId": 1,
        "productType": 0,
        "title": p.title,
        "brand": p.brand,
        "productGroup": p.category,
        "rootCategory": p.category_id,
        "categoryTree": [{"catId": p.category_id, "name": p.category}],
        "salesRankReference": p.category_id,
        "stats": {
            "current": [cents, cents, -1, p.bsr],
            "avg30": [avg(3), avg(2), -1, p.bsr + p.bsr / 10],
            "avg90": [avg(6), avg(5), -1, p.bsr + p.bsr / 5],
        },
    })
}

async fn product(State(k): State<Arc<Keepa>>, Query(q): Query<ProductQuery>) -> Response {
    let key = q.key.unwrap_or_default();
    let key_ok = match &k.key {
        Some(expected) => &key == expected,
        None => !key.trim().is_empty(),
    };
    if !key_ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalidKey",
            "The API key is invalid or missing.",
        );
    }
    let asins: Vec<String> = q
        .asin
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    // One token per product asked for; the quota is checked before the request is looked at.
    let n = u32::try_from(asins.len().clamp(1, MAX_ASINS)).unwrap_or(1);
    let left = match k.bucket.take(n) {
        Ok(left) => left,
        Err(refused) => {
            k.stats.refused();
            let body = k.token_state(refused.tokens, 0);
            return (StatusCode::TOO_MANY_REQUESTS, Json(Value::Object(body))).into_response();
        }
    };
    k.stats.admitted();
    if q.domain.as_deref() != Some("1") {
        k.stats.answered(Answer::BadRequest);
        return error(
            StatusCode::BAD_REQUEST,
            "invalidParameter",
            "domain: this fake serves domain 1 (amazon.com) only",
        );
    }
    if asins.is_empty() || asins.len() > MAX_ASINS || !asins.iter().all(|a| is_asin(a)) {
        k.stats.answered(Answer::BadRequest);
        return error(
            StatusCode::BAD_REQUEST,
            "invalidParameter",
            &format!("asin: give 1 to {MAX_ASINS} comma-separated ASINs (10 of A-Z 0-9)"),
        );
    }
    let Ok(catalog) = &k.catalog else {
        k.stats.answered(Answer::ServerError);
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internalError",
            "product data unavailable",
        );
    };
    let products: Vec<Value> = asins
        .iter()
        .filter_map(|a| catalog.get(a))
        .map(product_json)
        .collect();
    k.stats.answered(if products.is_empty() {
        Answer::NotFound
    } else {
        Answer::Ok
    });
    let mut body = k.token_state(left, n);
    body.insert("products".into(), Value::Array(products));
    (StatusCode::OK, Json(Value::Object(body))).into_response()
}

async fn stats(State(k): State<Arc<Keepa>>) -> Json<Value> {
    Json(json!(k.stats.snapshot(&k.bucket)))
}
