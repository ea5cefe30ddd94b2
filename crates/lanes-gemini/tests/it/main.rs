//! The client against the Gemini fake served on 127.0.0.1:0: answers, usage and cost, and every
//! kind of failure mapped to what the caller should do.

use std::time::Duration;

use lanes_fakes::gemini::photos::{FIXTURE_PHOTOS, NOT_A_PHOTO, fixture_bytes};
use lanes_fakes::gemini::{Control, FailNext, GeminiFake, GeminiFakeConfig, Quota, SlowNext};
use lanes_gemini::{ApiKey, Disposition, Error, Gemini, GeminiConfig, GenerateRequest, PriceTable};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const KEY: &str = "it-key";

struct Fixture {
    fake: GeminiFake,
    base: String,
    _stop: tokio_util::sync::DropGuard,
}

async fn serve(quota: Option<Quota>) -> Fixture {
    let fake = GeminiFake::new(GeminiFakeConfig {
        key: Some(KEY.into()),
        quota,
        ..GeminiFakeConfig::default()
    });
    let stop = CancellationToken::new();
    let base = fake.spawn(stop.clone()).await.expect("serve the fake");
    Fixture {
        fake,
        base,
        _stop: stop.drop_guard(),
    }
}

fn client(base: &str, key: &str, timeout: Duration) -> Gemini {
    let mut cfg = GeminiConfig::new(base, ApiKey::new(key));
    cfg.timeout = timeout;
    cfg.max_retry_delay = Duration::from_secs(5);
    Gemini::new(cfg).expect("client")
}

fn vision(image: &[u8]) -> GenerateRequest {
    GenerateRequest::new()
        .system("You identify items.")
        .image("image/jpeg", image)
        .text("What is the main item?")
        .json_schema(json!({
            "type": "OBJECT",
            "properties": {"item_name": {"type": "STRING"}, "category": {"type": "STRING"}},
            "required": ["item_name", "category"]
        }))
        .temperature(0.2)
}

#[tokio::test]
async fn a_photo_is_answered_with_json_usage_and_a_cost() {
    let f = serve(None).await;
    let g = client(&f.base, KEY, Duration::from_secs(10));
    let photo = fixture_bytes(&FIXTURE_PHOTOS[0]);
    let answer = g
        .generate("gemini-2.5-flash", &vision(&photo))
        .await
        .expect("answer");
    let v: Value = answer.json().expect("json");
    assert_eq!(v["item_name"], "Red Cast-Iron Dutch Oven");
    assert_eq!(v["category"], "Cookware");
    assert!(answer.usage.prompt_tokens > 258, "{:?}", answer.usage);
    assert!(answer.usage.output_tokens > 0);
    assert_eq!(
        answer.usage.total_tokens,
        answer.usage.prompt_tokens + answer.usage.output_tokens
    );
    assert_eq!(answer.finish_reason.as_deref(), Some("STOP"));
    assert_eq!(answer.model_version.as_deref(), Some("gemini-2.5-flash"));
    let cost = PriceTable::default()
        .cost("gemini-2.5-flash", &answer.usage)
        .expect("priced");
    let want =
        (answer.usage.prompt_tokens as f64 * 0.30 + answer.usage.output_tokens as f64 * 2.50) / 1e6;
    assert!((cost - want).abs() < 1e-12, "{cost} vs {want}");
    assert_eq!(f.fake.stats().vision_calls, 1);
}

#[tokio::test]
async fn a_bad_key_is_permanent_with_geminis_message() {
    let f = serve(None).await;
    let g = client(&f.base, "not-the-key", Duration::from_secs(10));
    let e = g
        .generate(
            "gemini-2.5-flash",
            &vision(&fixture_bytes(&FIXTURE_PHOTOS[0])),
        )
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::InvalidKey { status: 400, .. }), "{e:?}");
    assert_eq!(e.disposition(), Disposition::Permanent);
    assert!(e.to_string().contains("API key not valid"), "{e}");
    assert!(
        !e.to_string().contains("not-the-key"),
        "the key never shows: {e}"
    );
}

#[tokio::test]
async fn quota_429s_carry_the_retry_delay_capped() {
    let f = serve(Some(Quota {
        limit: 1,
        window: Duration::from_secs(30),
    }))
    .await;
    let g = client(&f.base, KEY, Duration::from_secs(10));
    let req = GenerateRequest::new()
        .text("Price the Grey Laptop")
        .json_schema(json!({"type": "OBJECT", "properties": {"price_usd": {"type": "NUMBER"}}}));
    g.generate("gemini-2.5-flash-lite", &req)
        .await
        .expect("first call fits");
    let e = g
        .generate("gemini-2.5-flash-lite", &req)
        .await
        .expect_err("over quota");
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    // The window frees a slot in about 30 s; the client caps hints at 5 s.
    assert_eq!(
        e.disposition(),
        Disposition::RateLimited {
            retry_after: Some(Duration::from_secs(5))
        }
    );
    assert!(e.to_string().contains("GenerateRequestsPerMinute"), "{e}");
    f.fake.control(Control {
        no_quota: true,
        fail_next: Some(FailNext::new(1, 429).retry_delay_ms(1500)),
        ..Control::default()
    });
    let e = g
        .generate("gemini-2.5-flash-lite", &req)
        .await
        .expect_err("storm");
    assert_eq!(
        e.disposition(),
        Disposition::RateLimited {
            retry_after: Some(Duration::from_millis(1500))
        }
    );
}

#[tokio::test]
async fn overloads_timeouts_and_dead_servers_are_transient() {
    let f = serve(None).await;
    let g = client(&f.base, KEY, Duration::from_millis(400));
    let req = vision(&fixture_bytes(&FIXTURE_PHOTOS[4]));
    for status in [503, 504, 500] {
        f.fake.control(Control {
            fail_next: Some(FailNext::new(1, status)),
            ..Control::default()
        });
        let e = g
            .generate("gemini-2.5-flash", &req)
            .await
            .expect_err("injected");
        assert!(
            matches!(e, Error::Unavailable { status: s, .. } if s == status),
            "{e:?}"
        );
        assert_eq!(e.disposition(), Disposition::Transient);
    }
    f.fake.control(Control {
        slow_next: Some(SlowNext {
            count: 1,
            delay_ms: 1500,
        }),
        ..Control::default()
    });
    let e = g
        .generate("gemini-2.5-flash", &req)
        .await
        .expect_err("too slow");
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(e.disposition(), Disposition::Transient);
    g.generate("gemini-2.5-flash", &req)
        .await
        .expect("then fine");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dead = client(
        &format!("http://127.0.0.1:{port}"),
        KEY,
        Duration::from_secs(2),
    );
    let e = dead
        .generate("gemini-2.5-flash", &req)
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert_eq!(e.disposition(), Disposition::Transient);
}

#[tokio::test]
async fn bad_images_and_unknown_models_are_permanent() {
    let f = serve(None).await;
    let g = client(&f.base, KEY, Duration::from_secs(10));
    let e = g
        .generate("gemini-2.5-flash", &vision(NOT_A_PHOTO.1))
        .await
        .expect_err("not an image");
    assert!(
        matches!(e, Error::InvalidRequest { status: 400, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("Unable to process input image"),
        "{e}"
    );
    assert!(e.is_permanent());
    let e = g
        .generate("gemini-0-nope", &vision(&fixture_bytes(&FIXTURE_PHOTOS[0])))
        .await
        .expect_err("no such model");
    assert!(
        matches!(e, Error::InvalidRequest { status: 404, .. }),
        "{e:?}"
    );
    assert!(e.is_permanent());
}
