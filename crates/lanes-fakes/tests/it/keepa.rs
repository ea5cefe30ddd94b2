//! The Keepa fake: product shape with the token state, keys, bad parameters, 429s.

use axum::Router;
use axum::http::StatusCode;
use lanes_fakes::FakesConfig;
use lanes_fakes::keepa::KeepaConfig;

use crate::support::{catalog, get};

fn app(rate_per_sec: f64, burst: u32, key: Option<&str>) -> Router {
    let cfg = FakesConfig {
        keepa: KeepaConfig {
            rate_per_sec,
            burst,
            key: key.map(str::to_owned),
        },
        ..FakesConfig::default()
    };
    lanes_fakes::app(&cfg)
}

#[tokio::test]
async fn products_carry_prices_ranks_and_the_token_state() {
    let app = app(5.0, 5, None);
    let cat = catalog();
    let p = &cat.products()[11];
    let r = get(
        &app,
        &format!("/keepa/product?key=k&domain=1&asin={}", p.asin),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tokensConsumed"], 1);
    assert_eq!(r.body["tokensLeft"], 4);
    assert_eq!(r.body["refillRate"], 300, "5/s is 300 tokens per minute");
    assert!(r.body["timestamp"].as_u64().is_some());
    let product = &r.body["products"][0];
    assert_eq!(product["asin"], p.asin.as_str());
    assert_eq!(product["title"], p.title.as_str());
    assert_eq!(
        product["stats"]["current"][0],
        (p.price * 100.0).round() as i64
    );
    assert_eq!(product["stats"]["current"][3], p.bsr);

    // Two products cost two tokens; unknown ones are left out.
    let missing = &cat.not_found()[0];
    let r = get(
        &app,
        &format!("/keepa/product?key=k&domain=1&asin={},{missing}", p.asin),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["tokensConsumed"], 2);
    assert_eq!(r.body["products"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn keys_and_parameters_are_checked() {
    let app = app(100.0, 100, Some("secret"));
    let asin = catalog().products()[0].asin.clone();
    let r = get(
        &app,
        &format!("/keepa/product?key=wrong&domain=1&asin={asin}"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["type"], "invalidKey");
    let r = get(&app, &format!("/keepa/product?domain=1&asin={asin}"), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = get(
        &app,
        &format!("/keepa/product?key=secret&domain=9&asin={asin}"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get(&app, "/keepa/product?key=secret&domain=1&asin=junk", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["type"], "invalidParameter");
    let r = get(
        &app,
        &format!("/keepa/product?key=secret&domain=1&asin={asin}"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_burst_over_the_bucket_gets_429_with_the_refill_hint() {
    let app = app(5.0, 2, None);
    let asin = catalog().products()[0].asin.clone();
    let uri = format!("/keepa/product?key=k&domain=1&asin={asin}");
    let mut ok = 0;
    let mut refused = 0;
    for _ in 0..12 {
        let r = get(&app, &uri, &[]).await;
        match r.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert_eq!(r.body["tokensLeft"], 0);
                let refill_in = r.body["refillIn"].as_u64().expect("refillIn");
                assert!((1..=200).contains(&refill_in), "refillIn {refill_in} ms");
                assert_eq!(r.body["refillRate"], 300);
                assert!(r.body.get("products").is_none());
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert!((2..=3).contains(&ok), "ok {ok}");
    let stats = get(&app, "/keepa/_stats", &[]).await.body;
    assert_eq!(stats["served"], ok);
    assert_eq!(stats["refused_429"], refused);
    assert_eq!(stats["rate_per_second"], 5.0);
}
