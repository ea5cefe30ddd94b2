//! An Amazon SP-API-like catalog and pricing API over the product fixture, metered by one token
//! bucket for the whole account (default 8 requests/s, burst 2), like the limits the seed's
//! workers share.
//!
//! Routes (under `/spapi`):
//! - `GET /catalog/2022-04-01/items/{asin}?marketplaceIds=ATVPDKIKX0DER` — `getCatalogItem`
//!   with `summaries` and `salesRanks`;
//! - `GET /products/pricing/v0/items/{asin}/offers?MarketplaceId=ATVPDKIKX0DER&ItemCondition=New`
//!   — `getItemOffers`;
//! - `GET /_stats` — served, refused_429, peak_per_second, ... (not part of SP-API).
//!
//! As SP-API does: every call needs an `x-amz-access-token` header (403 without), every answer
//! carries `x-amzn-RateLimit-Limit` and `x-amzn-RequestId`, errors are
//! `{"errors":[{"code","message","details"}]}`; over the limit the answer is 429
//! `QuotaExceeded`. Ids of the fixture's `not_found` list answer 404, of its `server_error` list
//! 500 `InternalFailure`; malformed ids 400.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::FakesConfig;
use crate::products::{Catalog, is_asin};
use crate::quota::{Answer, QuotaStats, TokenBucket};

/// The US marketplace, the only one the fake knows.
pub const MARKETPLACE_US: &str = "ATVPDKIKX0DER";

/// The SP-API fake's limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpApiConfig {
    /// Requests per second for the whole account.
    pub rate_per_sec: f64,
    /// Requests the bucket lets through at once after a quiet spell.
    pub burst: u32,
}

impl Default for SpApiConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 8.0,
            burst: 2,
        }
    }
}

struct SpApi {
    catalog: Result<Catalog, String>,
    bucket: TokenBucket,
    stats: QuotaStats,
    request_ids: AtomicU64,
}

/// The spapi fake's routes.
pub fn router(cfg: &FakesConfig) -> Router {
    let catalog = Catalog::load(&cfg.fixtures);
    if let Err(e) = &catalog {
        tracing::error!(error = %e, "spapi fake: product fixture missing; every call answers 500");
    }
    let state = Arc::new(SpApi {
        catalog,
        bucket: TokenBucket::new(cfg.spapi.rate_per_sec, cfg.spapi.burst),
        stats: QuotaStats::default(),
        request_ids: AtomicU64::new(0),
    });
    Router::new()
        .route("/catalog/2022-04-01/items/{asin}", get(catalog_item))
        .route("/products/pricing/v0/items/{asin}/offers", get(item_offers))
        .route("/_stats", get(stats))
        .with_state(state)
}

fn errors(status: StatusCode, code: &str, message: &str, details: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "errors": [{ "code": code, "message": message, "details": details }] }),
    )
}

impl SpApi {
    /// What every call goes through: the access token, the quota, the id. `Ok` carries the
    /// catalog to answer from.
    fn admit(&self, headers: &HeaderMap, asin: &str) -> Result<&Catalog, (StatusCode, Value)> {
        let token = headers
            .get("x-amz-access-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if token.trim().is_empty() {
            return Err(errors(
                StatusCode::FORBIDDEN,
                "Unauthorized",
                "Access to requested resource is denied.",
                "The access token you provided is revoked, malformed or invalid.",
            ));
        }
        if self.bucket.take(1).is_err() {
            self.stats.refused();
            return Err(errors(
                StatusCode::TOO_MANY_REQUESTS,
                "QuotaExceeded",
                "You exceeded your quota for the requested resource.",
                "",
            ));
        }
        self.stats.admitted();
        let catalog = self.catalog.as_ref().map_err(|_| {
            errors(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "We encountered an internal error. Please try again.",
                "",
            )
        })?;
        if !is_asin(asin) {
            return Err(errors(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                &format!("Invalid ASIN '{asin}': an ASIN is 10 characters of A-Z and 0-9."),
                "",
            ));
        }
        if catalog.fails_with_500(asin) {
            return Err(errors(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "We encountered an internal error. Please try again.",
                "",
            ));
        }
        Ok(catalog)
    }

    fn respond(&self, answer: Result<Value, (StatusCode, Value)>) -> Response {
        let (status, body) = match answer {
            Ok(body) => (StatusCode::OK, body),
            Err(e) => e,
        };
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::FORBIDDEN => {}
            StatusCode::OK => self.stats.answered(Answer::Ok),
            StatusCode::NOT_FOUND => self.stats.answered(Answer::NotFound),
            s if s.is_server_error() => self.stats.answered(Answer::ServerError),
            _ => self.stats.answered(Answer::BadRequest),
        }
        let mut resp = (status, Json(body)).into_response();
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("{:.1}", self.bucket.rate())) {
            h.insert("x-amzn-ratelimit-limit", v);
        }
        let n = self.request_ids.fetch_add(1, Ordering::Relaxed);
        if let Ok(v) = HeaderValue::from_str(&format!("fa4e0000-0000-4000-8000-{n:012x}")) {
            h.insert("x-amzn-requestid", v);
        }
        resp
    }
}

#[derive(Debug, Deserialize)]
struct CatalogQuery {
    #[serde(rename = "marketplaceIds")]
    marketplace_ids: Option<String>,
}

async fn catalog_item(
    State(api): State<Arc<SpApi>>,
    Path(asin): Path<String>,
    Query(q): Query<CatalogQuery>,
    headers: HeaderMap,
) -> Response {
    let answer = api.admit(&headers, &asin).and_then(|catalog| {
        let market = q.marketplace_ids.unwrap_or_default();
        if market.is_empty() {
            return Err(errors(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                "Missing required 'marketplaceIds'.",
                "",
            ));
        }
        if !market.split(',').any(|m| m == MARKETPLACE_US) {
            return Err(errors(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                &format!("Invalid marketplaceIds '{market}'."),
                "",
            ));
        }
        let p = catalog.get(&asin).ok_or_else(|| {
            errors(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("Requested item '{asin}' not found in marketplace '{MARKETPLACE_US}'."),
                "",
            )
        })?;
        Ok(json!({
            "asin": p.asin,
            "summaries": [{
                "marketplaceId": MARKETPLACE_US,
                "brand": p.brand,
                "itemName": p.title,
                "browseClassification": {
                    "displayName": p.category,
                    "classificationId": p.category_id.to_string(),
                },
            }],
            "salesRanks": [{
                "marketplaceId": MARKETPLACE_US,
                "classificationRanks": [],
                "displayGroupRanks": [{
                    "websiteDisplayGroup": p.display_group,
                    "title": p.category,
                    "link": format!("http://www.amazon.com/gp/bestsellers/{}", p.display_group),
                    "rank": p.bsr,
                }],
            }],
        }))
    });
    api.respond(answer)
}

#[derive(Debug, Deserialize)]
struct OffersQuery {
    #[serde(rename = "MarketplaceId")]
    marketplace_id: Option<String>,
    #[serde(rename = "ItemCondition")]
    item_condition: Option<String>,
}

async fn item_offers(
    State(api): State<Arc<SpApi>>,
    Path(asin): Path<String>,
    Query(q): Query<OffersQuery>,
    headers: HeaderMap,
) -> Response {
    let answer = api.admit(&headers, &asin).and_then(|catalog| {
        if q.marketplace_id.as_deref() != Some(MARKETPLACE_US) {
            return Err(errors(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                "Missing or invalid required 'MarketplaceId'.",
                "",
            ));
        }
        let condition = q.item_condition.unwrap_or_default();
        if !["New", "Used", "Collectible", "Refurbished", "Club"].contains(&condition.as_str()) {
            return Err(errors(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                "Missing or invalid required 'ItemCondition'.",
                "",
            ));
        }
        let p = catalog.get(&asin).ok_or_else(|| {
            errors(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("Requested item '{asin}' not found in marketplace '{MARKETPLACE_US}'."),
                "",
            )
        })?;
        let money = |amount: f64| json!({"CurrencyCode": "USD", "Amount": amount});
        let offers = 1 + p.bsr % 7;
        Ok(json!({
            "payload": {
                "ASIN": p.asin,
                "status": "Success",
                "ItemCondition": condition,
                "marketplaceId": MARKETPLACE_US,
                "Identifier": {"MarketplaceId": MARKETPLACE_US, "ASIN": p.asin, "ItemCondition": condition},
                "Summary": {
                    "TotalOfferCount": offers,
                    "NumberOfOffers": [{"condition": condition.to_lowercase(), "fulfillmentChannel": "Amazon", "OfferCount": offers}],
                    "LowestPrices": [{
                        "condition": condition.to_lowercase(),
                        "fulfillmentChannel": "Amazon",
                        "LandedPrice": money(p.price),
                        "ListingPrice": money(p.price),
                        "Shipping": money(0.0),
                    }],
                    "BuyBoxPrices": [{
                        "condition": condition,
                        "LandedPrice": money(p.price),
                        "ListingPrice": money(p.price),
                        "Shipping": money(0.0),
                    }],
                    "SalesRankings": [{"ProductCategoryId": p.display_group, "Rank": p.bsr}],
                },
                "Offers": [{
                    "SubCondition": "new",
                    "ListingPrice": money(p.price),
                    "Shipping": money(0.0),
                    "IsFulfilledByAmazon": true,
                    "IsBuyBoxWinner": true,
                    "SellerId": "A2FAKESELLER01",
                }],
            }
        }))
    });
    api.respond(answer)
}

async fn stats(State(api): State<Arc<SpApi>>) -> Json<Value> {
    Json(json!(api.stats.snapshot(&api.bucket)))
}
