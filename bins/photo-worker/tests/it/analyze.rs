//! The handler against the Gemini fake, with a worker in this process: items and prices of the
//! fixture photos, permanent failures (bad key, not an image) without retries, retried
//! overloads, and resuming after detection.

use std::time::Duration;

use lanes_fakes::gemini::photos::NOT_A_PHOTO;
use lanes_fakes::gemini::{Control, FailNext};
use lanes_photos::SnapState;
use lanes_queue::TaskState;

use crate::support::{Env, KEY, expected, fixture};

/// The limiter is effectively off here (6000/m); the limit itself is tested across processes.
const FAST: &str = "6000/m";

#[tokio::test]
async fn fixture_photos_get_the_right_item_and_price() {
    let env = Env::new(None).await;
    let want = expected();
    let photos: Vec<Vec<u8>> = want
        .iter()
        .map(|e| fixture(e["file"].as_str().expect("file")))
        .collect();
    let job = env.submit(&photos).await;
    let (stop, worker) = env.run_worker(env.photo_config(KEY, FAST), 4);
    let s = env.wait_done(&job, Duration::from_secs(60)).await;
    stop.cancel();
    worker.await.expect("worker");

    assert_eq!(s.status, SnapState::Completed);
    assert_eq!((s.total, s.done, s.succeeded, s.failed), (6, 6, 6, 0));
    assert_eq!(s.progress, 100.0);
    for (p, e) in s.photos.iter().zip(&want) {
        let file = e["file"].as_str().expect("file");
        assert_eq!(p.state, TaskState::Succeeded, "{file}: {:?}", p.error);
        assert_eq!(p.attempts, 1, "{file}");
        let r = p.result.as_ref().expect("a result");
        assert_eq!(r.item.name, e["item"].as_str().expect("item"), "{file}");
        assert_eq!(
            r.item.category,
            e["category"].as_str().expect("category"),
            "{file}"
        );
        assert_eq!(r.item.brand.as_deref(), e["brand"].as_str(), "{file}");
        assert_eq!(
            r.price.price_usd,
            e["price_usd"].as_f64().expect("price"),
            "{file}"
        );
        assert_eq!(
            r.price.low_usd,
            e["low_usd"].as_f64().expect("low"),
            "{file}"
        );
        assert_eq!(
            r.price.high_usd,
            e["high_usd"].as_f64().expect("high"),
            "{file}"
        );
        assert_eq!(r.price.currency, "USD");
        assert!(
            r.tokens.input > 258 && r.tokens.output > 0,
            "{file}: {:?}",
            r.tokens
        );
        assert_eq!(r.tokens.total, r.tokens.input + r.tokens.output);
        let cost = r.cost_usd.expect("both models are priced");
        assert!(cost > 0.0 && cost < 0.01, "{file}: ${cost}");
        assert_eq!(r.vision_model, "gemini-2.5-flash");
        assert_eq!(r.pricing_model, "gemini-2.5-flash-lite");
        assert!(
            r.image.sent_width.max(r.image.sent_height) <= 1024,
            "{file}"
        );
    }
    let by_file = |f: &str| {
        let i = want.iter().position(|e| e["file"] == f).expect("listed");
        s.photos[i].result.clone().expect("result").image
    };
    let large = by_file("orange-kayak-large.jpg");
    assert_eq!((large.width, large.height), (1600, 1066));
    assert_eq!((large.sent_width, large.sent_height), (1024, 682));
    assert!(large.sent_bytes < large.bytes, "{large:?}");
    let sideways = by_file("yellow-rain-jacket-sideways.jpg");
    assert_eq!(
        (sideways.width, sideways.height),
        (480, 320),
        "stored sideways"
    );
    assert_eq!(
        (sideways.sent_width, sideways.sent_height),
        (320, 480),
        "sent upright"
    );
    assert_eq!(by_file("green-vase.webp").format, "webp");
    assert_eq!(by_file("blue-sofa.png").format, "png");

    let total: u64 = s
        .photos
        .iter()
        .map(|p| p.result.as_ref().map_or(0, |r| r.tokens.total))
        .sum();
    assert_eq!(s.tokens.total, total);
    let stats = env.fake.stats();
    assert_eq!((stats.vision_calls, stats.text_calls), (6, 6));
    assert_eq!(stats.requests, 12, "two calls a photo, nothing retried");
}

#[tokio::test]
async fn a_bad_key_fails_permanently_without_retries() {
    let env = Env::new(None).await;
    let job = env.submit(&[fixture("red-dutch-oven.jpg")]).await;
    let (stop, worker) = env.run_worker(env.photo_config("revoked-key", FAST), 2);
    let s = env.wait_done(&job, Duration::from_secs(30)).await;
    stop.cancel();
    worker.await.expect("worker");
    assert_eq!(s.status, SnapState::Failed);
    let p = &s.photos[0];
    assert_eq!(
        p.state,
        TaskState::Failed,
        "failed, not dead: no retries were tried"
    );
    assert_eq!(p.attempts, 1);
    let error = p.error.as_deref().expect("an error");
    assert!(error.contains("API key not valid"), "{error}");
    assert!(
        !error.contains("revoked-key"),
        "the key is never recorded: {error}"
    );
    let stats = env.fake.stats();
    assert_eq!((stats.requests, stats.auth_failures), (1, 1));
}

#[tokio::test]
async fn a_text_file_sent_as_a_photo_fails_clearly_and_alone() {
    let env = Env::new(None).await;
    let job = env
        .submit(&[NOT_A_PHOTO.1.to_vec(), fixture("black-camera.jpg")])
        .await;
    let (stop, worker) = env.run_worker(env.photo_config(KEY, FAST), 2);
    let s = env.wait_done(&job, Duration::from_secs(30)).await;
    stop.cancel();
    worker.await.expect("worker");
    assert_eq!(
        s.status,
        SnapState::Completed,
        "the other photo still counts"
    );
    assert_eq!((s.succeeded, s.failed), (1, 1));
    let text = &s.photos[0];
    assert_eq!(text.state, TaskState::Failed);
    assert_eq!(text.attempts, 1);
    assert_eq!(
        text.error.as_deref(),
        Some(
            "photo 0: not an image: the data is not a JPEG, PNG or WebP file (it looks like \
             text: \"name,price\\nkettle,12\\nlamp,30\\n\")"
        )
    );
    assert_eq!(
        s.photos[1].result.as_ref().map(|r| r.item.name.as_str()),
        Some("Black Mirrorless Camera")
    );
    assert_eq!(
        env.fake.stats().requests,
        2,
        "the text never reached Gemini"
    );
}

#[tokio::test]
async fn overloads_are_retried_and_a_retry_resumes_after_detection() {
    let env = Env::new(None).await;
    // Detection passes; pricing then gets two 503s (one per attempt).
    env.fake.control(Control {
        fail_next: Some(FailNext::new(2, 503).skip(1)),
        ..Control::default()
    });
    let job = env.submit(&[fixture("blue-sofa.png")]).await;
    let (stop, worker) = env.run_worker(env.photo_config(KEY, FAST), 1);
    let s = env.wait_done(&job, Duration::from_secs(30)).await;
    stop.cancel();
    worker.await.expect("worker");
    let p = &s.photos[0];
    assert_eq!(p.state, TaskState::Succeeded, "{:?}", p.error);
    assert_eq!(p.attempts, 3, "two retries after the 503s");
    assert_eq!(
        p.result.as_ref().map(|r| r.item.name.as_str()),
        Some("Blue Velvet Sofa")
    );
    let stats = env.fake.stats();
    assert_eq!(stats.injected_5xx, 2);
    assert_eq!(
        (stats.vision_calls, stats.text_calls),
        (1, 1),
        "the retries resumed from the saved detection"
    );
    // The detection's tokens are still counted in the result.
    let r = p.result.as_ref().expect("result");
    assert!(r.tokens.input > 258, "{:?}", r.tokens);
}
