//! The Gemini fake: answers per fixture photo, wire shapes, keys, models, bad bodies, the
//! per-window quota with the real 429 body, injected 429/503s and slow answers.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use lanes_fakes::gemini::photos::{
    FIXTURE_PHOTOS, NOT_A_PHOTO, Stored, fixture_bytes, write_fixtures,
};
use lanes_fakes::gemini::{Control, FailNext, GeminiFake, GeminiFakeConfig, Quota, SlowNext};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const KEY: &str = "test-gemini-key";

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/photos"
    ))
}

fn fake(quota: Option<Quota>) -> (GeminiFake, Router) {
    let fake = GeminiFake::new(GeminiFakeConfig {
        key: Some(KEY.into()),
        quota,
        ..GeminiFakeConfig::default()
    });
    let app = Router::new().nest("/gemini", fake.router());
    (fake, app)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn vision_body(image: &[u8], mime: &str) -> Value {
    json!({
        "contents": [{"role": "user", "parts": [
            {"inline_data": {"mime_type": mime, "data": b64(image)}},
            {"text": "What is the main item?"}
        ]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {
                "item_name": {"type": "STRING"},
                "category": {"type": "STRING"},
                "brand": {"type": "STRING", "nullable": true},
                "condition": {"type": "STRING", "enum": ["new", "like new", "good", "fair", "poor"]},
                "confidence": {"type": "NUMBER"},
                "mystery": {"type": "INTEGER"}
            }}
        }
    })
}

fn pricing_body(prompt: &str) -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "You price things."}]},
        "contents": [{"parts": [{"text": prompt}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {
                "price_usd": {"type": "NUMBER"}, "low_usd": {"type": "NUMBER"},
                "high_usd": {"type": "NUMBER"}, "currency": {"type": "STRING"}
            }}
        }
    })
}

struct Resp {
    status: StatusCode,
    body: Value,
}

async fn post(app: &Router, uri: &str, key: Option<&str>, body: &Value) -> Resp {
    let mut req = Request::post(uri).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("x-goog-api-key", k);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    Resp {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{uri}: JSON body ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        }),
    }
}

const FLASH: &str = "/gemini/v1beta/models/gemini-2.5-flash:generateContent";

fn answer(r: &Resp) -> Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let text = r.body["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .expect("text");
    serde_json::from_str(text).expect("the text is JSON")
}

/// The fake names each committed photo's item as `expected.json` says (the sideways phone
/// photo once turned upright). `LANES_REGENERATE_FIXTURES=1` rewrites them first from
/// `lanes_fakes::gemini::photos` (byte-exact output depends on the encoder's version).
#[tokio::test]
async fn fixture_photos_are_recognised() {
    let dir = fixtures();
    if std::env::var_os("LANES_REGENERATE_FIXTURES").is_some() {
        write_fixtures(&dir).expect("write fixtures");
    }
    let expected: Vec<Value> = serde_json::from_slice(
        &std::fs::read(dir.join("expected.json")).expect("fixtures/photos/expected.json"),
    )
    .expect("expected.json parses");
    assert_eq!(expected.len(), FIXTURE_PHOTOS.len());
    let (_, app) = fake(None);
    for f in &FIXTURE_PHOTOS {
        let bytes = std::fs::read(dir.join(f.file)).expect("fixture photo");
        assert!(
            bytes.len() < 200_000,
            "{} stays small: {} bytes",
            f.file,
            bytes.len()
        );
        let want = expected
            .iter()
            .find(|e| e["file"] == f.file)
            .expect("listed in expected.json");
        let mime = match f.stored {
            Stored::Png => "image/png",
            Stored::WebP => "image/webp",
            _ => "image/jpeg",
        };
        let sent = if f.stored == Stored::SidewaysJpeg {
            // As stored, the fake sees a landscape photo (it ignores EXIF, like a careless
            // client would make it): the worker must turn it upright first.
            let raw = answer(&post(&app, FLASH, Some(KEY), &vision_body(&bytes, mime)).await);
            assert_ne!(
                raw["item_name"], want["item"],
                "sideways pixels are another item"
            );
            upright_jpeg(&bytes)
        } else {
            bytes
        };
        let got = answer(&post(&app, FLASH, Some(KEY), &vision_body(&sent, mime)).await);
        assert_eq!(got["item_name"], want["item"], "{}", f.file);
        assert_eq!(got["category"], want["category"], "{}", f.file);
        assert_eq!(got["brand"], want["brand"], "{}", f.file);
        assert_eq!(got["condition"], "good");
        assert_eq!(
            got["mystery"], 0,
            "unknown properties get their type's empty value"
        );
        let prompt = format!("Price this: {}", want["item"].as_str().expect("name"));
        let price = answer(&post(&app, FLASH, Some(KEY), &pricing_body(&prompt)).await);
        assert_eq!(price["price_usd"], want["price_usd"], "{}", f.file);
        assert_eq!(price["low_usd"], want["low_usd"]);
        assert_eq!(price["high_usd"], want["high_usd"]);
        assert_eq!(price["currency"], "USD");
    }
    assert_eq!(
        std::fs::read(dir.join(NOT_A_PHOTO.0)).expect("text fixture"),
        NOT_A_PHOTO.1
    );
}

fn upright_jpeg(bytes: &[u8]) -> Vec<u8> {
    use image::ImageDecoder;
    let mut d = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("format")
        .into_decoder()
        .expect("decoder");
    let o = d.orientation().expect("orientation");
    let mut img = image::DynamicImage::from_decoder(d).expect("decode");
    img.apply_orientation(o);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img.into_rgb8())
        .expect("encode");
    out
}

#[tokio::test]
async fn answers_have_the_real_shape_and_count_tokens() {
    let (fake, app) = fake(None);
    let f = &FIXTURE_PHOTOS[0];
    let r = post(
        &app,
        FLASH,
        Some(KEY),
        &vision_body(&fixture_bytes(f), "image/jpeg"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let b = &r.body;
    assert_eq!(b["candidates"][0]["finishReason"], "STOP");
    assert_eq!(b["candidates"][0]["content"]["role"], "model");
    assert_eq!(b["modelVersion"], "gemini-2.5-flash");
    assert!(b["responseId"].as_str().is_some());
    let u = &b["usageMetadata"];
    let prompt = u["promptTokenCount"].as_u64().expect("prompt tokens");
    let out = u["candidatesTokenCount"].as_u64().expect("output tokens");
    assert_eq!(u["totalTokenCount"].as_u64(), Some(prompt + out));
    let image_tokens = u["promptTokensDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["modality"] == "IMAGE"))
        .and_then(|d| d["tokenCount"].as_u64());
    assert_eq!(image_tokens, Some(258), "one 768 px tile");
    let s = fake.stats();
    assert_eq!(
        (s.requests, s.ok, s.vision_calls, s.text_calls),
        (1, 1, 1, 0)
    );
    assert_eq!(s.prompt_tokens, prompt);
}

#[tokio::test]
async fn keys_and_models_are_checked_like_gemini() {
    let (fake, app) = fake(None);
    let body = pricing_body("Price this: Red Road Bike");
    let r = post(&app, FLASH, None, &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"]["status"], "PERMISSION_DENIED");
    let r = post(&app, FLASH, Some("wrong"), &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        r.body["error"]["message"],
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(r.body["error"]["details"][0]["reason"], "API_KEY_INVALID");
    assert!(
        !r.body.to_string().contains("wrong"),
        "the key is never echoed"
    );
    let r = post(&app, &format!("{FLASH}?key={KEY}"), None, &body).await;
    assert_eq!(r.status, StatusCode::OK, "?key= works too");
    let r = post(
        &app,
        "/gemini/v1beta/models/gemini-9-ultra:generateContent",
        Some(KEY),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["status"], "NOT_FOUND");
    let r = post(
        &app,
        "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        Some(KEY),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let s = fake.stats();
    assert_eq!((s.auth_failures, s.ok, s.bad_requests), (2, 1, 2));
}

#[tokio::test]
async fn bad_bodies_and_images_are_400_with_gemini_messages() {
    let (_, app) = fake(None);
    let jpeg = fixture_bytes(&FIXTURE_PHOTOS[0]);
    let mut bad_b64 = vision_body(&jpeg, "image/jpeg");
    bad_b64["contents"][0]["parts"][0]["inline_data"]["data"] = json!("%%% not base64");
    let mut cases = vec![
        (bad_b64, "Base64 decoding failed"),
        (
            vision_body(NOT_A_PHOTO.1, "image/jpeg"),
            "Unable to process input image",
        ),
        (
            vision_body(&jpeg, "text/plain"),
            "Unsupported MIME type: text/plain",
        ),
        (json!({"contents": []}), "contents is not specified"),
    ];
    let mut no_schema = vision_body(&jpeg, "image/jpeg");
    no_schema["generationConfig"] = json!({});
    cases.push((no_schema, "responseSchema"));
    let mut empty_schema = vision_body(&jpeg, "image/jpeg");
    empty_schema["generationConfig"]["responseSchema"] =
        json!({"type": "OBJECT", "properties": {}});
    cases.push((empty_schema, "should be non-empty"));
    for (body, says) in cases {
        let r = post(&app, FLASH, Some(KEY), &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{says}: {}", r.body);
        assert_eq!(r.body["error"]["status"], "INVALID_ARGUMENT");
        let msg = r.body["error"]["message"].as_str().expect("message");
        assert!(msg.contains(says), "{msg:?} should say {says:?}");
    }
}

#[tokio::test]
async fn the_quota_answers_the_real_429_and_frees_up_with_its_window() {
    let (fake, app) = fake(Some(Quota {
        limit: 3,
        window: Duration::from_millis(600),
    }));
    let body = pricing_body("Price this: Red Road Bike");
    for _ in 0..3 {
        assert_eq!(
            post(&app, FLASH, Some(KEY), &body).await.status,
            StatusCode::OK
        );
    }
    let r = post(&app, FLASH, Some(KEY), &body).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let e = &r.body["error"];
    assert_eq!(e["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(e["code"], 429);
    let details = e["details"].as_array().expect("details");
    let of = |t: &str| {
        details
            .iter()
            .find(|d| d["@type"].as_str().is_some_and(|x| x.ends_with(t)))
    };
    let violation = &of("google.rpc.QuotaFailure").expect("QuotaFailure")["violations"][0];
    assert_eq!(violation["quotaValue"], "3");
    assert_eq!(violation["quotaDimensions"]["model"], "gemini-2.5-flash");
    let delay = of("google.rpc.RetryInfo").expect("RetryInfo")["retryDelay"]
        .as_str()
        .expect("retryDelay")
        .to_owned();
    let secs: f64 = delay.trim_end_matches('s').parse().expect("a duration");
    assert!(secs > 0.0 && secs <= 0.6, "{delay}");
    tokio::time::sleep(Duration::from_secs_f64(secs) + Duration::from_millis(20)).await;
    assert_eq!(
        post(&app, FLASH, Some(KEY), &body).await.status,
        StatusCode::OK
    );
    let s = fake.stats();
    assert_eq!((s.ok, s.quota_429), (4, 1));
    assert_eq!(s.quota_limit, Some(3));
    assert_eq!(s.window_ms, 600);
    assert_eq!(s.peak_in_window, 4, "the refused call was seen too");
}

#[tokio::test]
async fn failures_and_slowness_can_be_injected() {
    let fake = GeminiFake::new(GeminiFakeConfig {
        quota: None,
        ..GeminiFakeConfig::default()
    });
    let shutdown = CancellationToken::new();
    let base = fake.spawn(shutdown.clone()).await.expect("serve");
    let http = reqwest::Client::new();
    let call = || {
        http.post(format!(
            "{base}/v1beta/models/gemini-2.5-flash-lite:generateContent"
        ))
        .header("x-goog-api-key", "any")
        .json(&pricing_body("Price this: Grey Laptop"))
        .send()
    };
    let control = |c: Value| http.post(format!("{base}/_control")).json(&c).send();

    let r = control(json!({"fail_next": {"count": 2, "status": 503}}))
        .await
        .expect("control");
    assert_eq!(r.status(), 200);
    for _ in 0..2 {
        let r = call().await.expect("call");
        assert_eq!(r.status(), 503);
        let b: Value = r.json().await.expect("json");
        assert_eq!(b["error"]["status"], "UNAVAILABLE");
    }
    assert_eq!(call().await.expect("call").status(), 200);

    fake.control(Control {
        fail_next: Some(FailNext::new(1, 429).retry_delay_ms(2500)),
        ..Control::default()
    });
    let b: Value = call().await.expect("call").json().await.expect("json");
    assert_eq!(b["error"]["details"][2]["retryDelay"], "2.500s");

    fake.control(Control {
        slow_next: Some(SlowNext {
            count: 1,
            delay_ms: 400,
        }),
        ..Control::default()
    });
    let slow = tokio::spawn(call());
    let seen = async {
        while fake.stats().in_flight == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), seen)
        .await
        .expect("the slow call is seen in flight");
    assert_eq!(slow.await.expect("join").expect("call").status(), 200);
    assert_eq!(fake.stats().in_flight, 0);

    let r = control(json!({"fail_next": {"count": 1, "status": 418}}))
        .await
        .expect("control");
    assert_eq!(r.status(), 400);
    let s: Value = http
        .get(format!("{base}/_stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(s["injected_5xx"], 2);
    assert_eq!(s["injected_429"], 1);
    assert_eq!(s["ok"], 2);
    shutdown.cancel();
}
