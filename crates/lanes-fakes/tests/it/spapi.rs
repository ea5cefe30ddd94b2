//! The SP-API fake: catalog and pricing shapes, auth, failing and malformed ids, 429s.

use axum::Router;
use axum::http::StatusCode;
use lanes_fakes::FakesConfig;
use lanes_fakes::spapi::{MARKETPLACE_US, SpApiConfig};

use crate::support::{catalog, get};

const TOKEN: (&str, &str) = ("x-amz-access-token", "Atza|fake");

fn app(rate_per_sec: f64, burst: u32) -> Router {
    let cfg = FakesConfig {
        spapi: SpApiConfig {
            rate_per_sec,
            burst,
        },
        ..FakesConfig::default()
    };
    lanes_fakes::app(&cfg)
}

fn item(asin: &str) -> String {
    format!(
        "/spapi/catalog/2022-04-01/items/{asin}?marketplaceIds={MARKETPLACE_US}&includedData=summaries,salesRanks"
    )
}

#[tokio::test]
async fn catalog_items_have_the_sp_api_shape() {
    let app = app(1000.0, 100);
    let p = catalog().products()[7].clone();
    let r = get(&app, &item(&p.asin), &[TOKEN]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["x-amzn-ratelimit-limit"], "1000.0");
    assert!(r.headers.contains_key("x-amzn-requestid"));
    assert_eq!(r.body["asin"], p.asin.as_str());
    assert_eq!(r.body["summaries"][0]["itemName"], p.title.as_str());
    assert_eq!(r.body["summaries"][0]["marketplaceId"], MARKETPLACE_US);
    assert_eq!(
        r.body["summaries"][0]["browseClassification"]["displayName"],
        p.category.as_str()
    );
    assert_eq!(
        r.body["salesRanks"][0]["displayGroupRanks"][0]["rank"],
        p.bsr
    );
}

#[tokio::test]
async fn item_offers_have_the_pricing_shape() {
    let app = app(1000.0, 100);
    let p = catalog().products()[3].clone();
    let uri = format!(
        "/spapi/products/pricing/v0/items/{}/offers?MarketplaceId={MARKETPLACE_US}&ItemCondition=New",
        p.asin
    );
    let r = get(&app, &uri, &[TOKEN]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let payload = &r.body["payload"];
    assert_eq!(payload["ASIN"], p.asin.as_str());
    assert_eq!(payload["status"], "Success");
    assert_eq!(
        payload["Summary"]["BuyBoxPrices"][0]["LandedPrice"]["Amount"],
        p.price
    );
    assert_eq!(
        payload["Summary"]["LowestPrices"][0]["ListingPrice"]["CurrencyCode"],
        "USD"
    );

    let bad = get(
        &app,
        &format!(
            "/spapi/products/pricing/v0/items/{}/offers?MarketplaceId={MARKETPLACE_US}",
            p.asin
        ),
        &[TOKEN],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errors"][0]["code"], "InvalidInput");
}

#[tokio::test]
async fn failing_missing_and_malformed_ids_answer_like_sp_api() {
    let app = app(1000.0, 100);
    let cat = catalog();
    let missing = &cat.not_found()[0];
    let r = get(&app, &item(missing), &[TOKEN]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["errors"][0]["code"], "NotFound");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains(missing.as_str())
    );

    for asin in cat.server_error() {
        let r = get(&app, &item(asin), &[TOKEN]).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{asin}");
        assert_eq!(r.body["errors"][0]["code"], "InternalFailure");
    }

    let r = get(&app, &item("not-an-asin"), &[TOKEN]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["code"], "InvalidInput");

    let p = &cat.products()[0].asin;
    let r = get(&app, &item(p), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no access token");
    assert_eq!(r.body["errors"][0]["code"], "Unauthorized");

    let r = get(
        &app,
        &format!("/spapi/catalog/2022-04-01/items/{p}"),
        &[TOKEN],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no marketplaceIds");

    let stats = get(&app, "/spapi/_stats", &[]).await.body;
    assert_eq!(stats["not_found"], 1);
    assert_eq!(stats["server_errors"], cat.server_error().len());
    assert_eq!(stats["refused_429"], 0);
}

#[tokio::test]
async fn a_burst_over_the_limit_gets_429_quota_exceeded() {
    let app = app(8.0, 2);
    let asin = catalog().products()[0].asin.clone();
    let mut ok = 0;
    let mut refused = 0;
    for _ in 0..20 {
        let r = get(&app, &item(&asin), &[TOKEN]).await;
        match r.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert_eq!(r.headers["x-amzn-ratelimit-limit"], "8.0");
                assert_eq!(
                    r.body,
                    serde_json::json!({"errors": [{
                        "code": "QuotaExceeded",
                        "message": "You exceeded your quota for the requested resource.",
                        "details": ""
                    }]})
                );
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    // The burst (2) plus whatever refilled while the 20 requests ran (8/s).
    assert!((2..=4).contains(&ok), "ok {ok}");
    assert_eq!(ok + refused, 20);
    let stats = get(&app, "/spapi/_stats", &[]).await.body;
    assert_eq!(stats["served"], ok);
    assert_eq!(stats["refused_429"], refused);
    assert_eq!(stats["peak_per_second"], ok);
    assert_eq!(stats["rate_per_second"], 8.0);
    assert_eq!(stats["burst"], 2);
}

#[tokio::test]
async fn a_real_server_on_port_0_serves_the_fakes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(lanes_fakes::serve(
        listener,
        FakesConfig::default(),
        stop.clone(),
    ));
    let asin = catalog().products()[1].asin.clone();
    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{addr}{}", item(&asin)))
        .header(TOKEN.0, TOKEN.1)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(
        r.headers()["x-amzn-ratelimit-limit"],
        "8.0",
        "the default limit is SP-API's 8/s"
    );
    let stats: serde_json::Value = http
        .get(format!("http://{addr}/spapi/_stats"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["served"], 1);
    stop.cancel();
    server.await.expect("join").expect("serve");
}
