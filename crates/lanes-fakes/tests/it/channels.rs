//! The channel API fake: Bot API shapes over the fixture, paging with gaps, photos, 404, the
//! channel that fails part-way, bad requests, and flood waits with their violation count.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use lanes_fakes::FakesConfig;
use lanes_fakes::channels::{ChannelSpec, ChannelsConfig, Directory, router_with};
use tower::ServiceExt;

use crate::support::get;

const BOT: &str = "/channels/bot123:test";

fn fixture_app() -> Router {
    lanes_fakes::app(&FakesConfig::default())
}

#[tokio::test]
async fn chat_info_and_history_pages_have_the_bot_api_shape() {
    let app = fixture_app();
    let dir = Directory::load(&FakesConfig::default().fixtures).expect("the fixture loads");
    let c = dir.channel("lanes_news").expect("in the fixture");

    let r = get(&app, &format!("{BOT}/getChat?chat_id=@lanes_news"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["ok"], true);
    assert_eq!(r.body["result"]["type"], "channel");
    assert_eq!(r.body["result"]["username"], "lanes_news");
    assert_eq!(r.body["result"]["message_count"], c.ids().len());

    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let r = get(
            &app,
            &format!("{BOT}/getHistory?chat_id=@lanes_news&offset_id={after}&limit=100"),
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["result"]["count"], c.ids().len());
        let page = r.body["result"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 100);
        for m in page {
            after = m["message_id"].as_u64().expect("id");
            seen.push(m);
        }
        if seen.len() > 300 {
            break;
        }
    }
    assert_eq!(
        seen[..],
        c.messages()[..seen.len()],
        "pages are the channel, in order"
    );
    let photo = seen
        .iter()
        .find(|m| m.get("photo").is_some())
        .expect("a photo");
    assert!(photo.get("caption").is_some() && photo.get("text").is_none());
    let path = photo["photo"][0]["file_path"].as_str().expect("file_path");
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .uri(format!("/channels/file/bot123:test/{path}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    assert_eq!(
        bytes.len() as u64,
        photo["photo"][0]["file_size"].as_u64().unwrap_or(0)
    );
    assert!(bytes.starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn missing_failing_and_bad_requests_answer_like_the_api() {
    let app = fixture_app();
    let r = get(
        &app,
        &format!("{BOT}/getChat?chat_id=@deleted_channel"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["error_code"], 404);

    let ok = get(
        &app,
        &format!("{BOT}/getHistory?chat_id=@flaky_feed&offset_id=100"),
        &[],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "before the failure point");
    let r = get(
        &app,
        &format!("{BOT}/getHistory?chat_id=@flaky_feed&offset_id=260"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.body["description"]
            .as_str()
            .unwrap_or("")
            .contains("HISTORY_GET_FAILED")
    );

    for (uri, code) in [
        (
            format!("{BOT}/getHistory?chat_id=@lanes_news&limit=101"),
            400,
        ),
        (
            format!("{BOT}/getHistory?chat_id=@lanes_news&offset_id=x"),
            400,
        ),
        (format!("{BOT}/getHistory"), 400),
        ("/channels/bot/getChat?chat_id=@lanes_news".to_owned(), 401),
    ] {
        let r = get(&app, &uri, &[]).await;
        assert_eq!(r.status.as_u16(), code, "{uri}: {}", r.body);
        assert_eq!(r.body["error_code"], code);
    }
}

#[tokio::test]
async fn a_flood_wait_is_announced_and_calls_during_it_are_violations() {
    let cfg = ChannelsConfig {
        rate_per_sec: 2.0,
        burst: 2,
        flood_wait_secs: 1,
        grace: Duration::from_millis(100),
        history_latency: Duration::ZERO,
        file_latency: Duration::ZERO,
    };
    let app = Router::new().nest(
        "/channels",
        router_with(Directory::new(vec![ChannelSpec::new("flood_me", 10)]), cfg),
    );
    let uri = format!("{BOT}/getChat?chat_id=@flood_me");
    for _ in 0..2 {
        assert_eq!(get(&app, &uri, &[]).await.status, StatusCode::OK);
    }
    let r = get(&app, &uri, &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["parameters"]["retry_after"], 1);
    assert_eq!(r.headers["retry-after"], "1");
    // Another client is not affected.
    let other = get(
        &app,
        "/channels/bot999:other/getChat?chat_id=@flood_me",
        &[],
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    // Within the grace: on the wire already. After it: a violation.
    assert_eq!(
        get(&app, &uri, &[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        get(&app, &uri, &[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        get(&app, &uri, &[]).await.status,
        StatusCode::OK,
        "the wait is over"
    );
    let s = get(&app, "/channels/_stats", &[]).await.body;
    assert_eq!(s["flood_waits"], 1, "{s}");
    assert_eq!(s["in_flight_429"], 1, "{s}");
    assert_eq!(s["violations"], 1, "{s}");
    assert_eq!(s["refused_429"], 3, "{s}");
    assert_eq!(s["clients"], 2, "{s}");
}
