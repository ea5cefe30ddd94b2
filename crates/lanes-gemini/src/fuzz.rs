//! Fuzzing the decoders of Gemini's answers: `generateContent` bodies (random JSON, and a valid
//! answer with one field replaced by any JSON value), error bodies under every status, retry
//! delays, and the usage arithmetic on whatever counts an answer claims. Never a panic; every
//! error says what was wrong. `LANES_FUZZ_CASES` cases per target (default 256); failures are
//! kept under `proptest-regressions/`.

use std::time::Duration;

use lanes_testkit::fuzz;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::error::from_status;
use crate::response::parse_generated;
use crate::{Usage, parse_retry_delay};

fn config() -> ProptestConfig {
    lanes_testkit::fuzz::config(256)
}

fn json_value() -> impl Strategy<Value = Value> {
    const FIELDS: &[&str] = &[
        "candidates",
        "content",
        "parts",
        "text",
        "usageMetadata",
        "error",
        "details",
        "retryDelay",
    ];
    const DELAYS: &[&str] = &["43s", "1e309s", "-1s", "NaNs", "s", "SAFETY"];
    fuzz::json_value(DELAYS, fuzz::keys("[a-zA-Z@]{1,12}", FIELDS))
}

/// A well-formed answer, so a single replaced field reaches the code past the first checks.
fn valid_answer() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "{\"a\":1}"}]},
                        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                          "thoughtsTokenCount": 2, "totalTokenCount": 17},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1"
    })
}

const POINTERS: &[&str] = &[
    "/candidates",
    "/candidates/0",
    "/candidates/0/content",
    "/candidates/0/content/parts",
    "/candidates/0/content/parts/0",
    "/candidates/0/content/parts/0/text",
    "/candidates/0/finishReason",
    "/usageMetadata",
    "/usageMetadata/promptTokenCount",
    "/usageMetadata/candidatesTokenCount",
    "/usageMetadata/thoughtsTokenCount",
    "/modelVersion",
];

fn valid_error() -> Value {
    json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
    "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaId": "PerMinute"}]},
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "43s"}
    ]}})
}

const ERROR_POINTERS: &[&str] = &[
    "/error",
    "/error/message",
    "/error/status",
    "/error/details",
    "/error/details/0/violations",
    "/error/details/0/violations/0/quotaId",
    "/error/details/1/reason",
    "/error/details/2",
    "/error/details/2/retryDelay",
];

fn replace(mut v: Value, pointer: &str, with: Value) -> Value {
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = with;
    }
    v
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn answers_decode_or_say_why(body in prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        vec(any::<u8>(), 0..256),
        (0..POINTERS.len(), json_value())
            .prop_map(|(i, v)| replace(valid_answer(), POINTERS[i], v).to_string().into_bytes()),
    ]) {
        match parse_generated(&body) {
            Ok(g) => {
                prop_assert!(!g.text.is_empty());
                // The arithmetic a caller does on the counts: saturating, never a panic.
                let _ = g.usage.billed_output();
                let _ = g.usage + g.usage;
                let _ = g.json::<Value>();
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn error_bodies_decode_under_every_status(
        status in prop_oneof![Just(400u16), Just(401), Just(403), Just(404), Just(408), Just(429),
                              Just(500), Just(503), 100u16..1000],
        body in prop_oneof![
            json_value().prop_map(|v| v.to_string().into_bytes()),
            vec(any::<u8>(), 0..256),
            (0..ERROR_POINTERS.len(), json_value()).prop_map(|(i, v)| {
                replace(valid_error(), ERROR_POINTERS[i], v).to_string().into_bytes()
            }),
        ],
        header in proptest::option::of(any::<u64>()),
    ) {
        let cap = Duration::from_secs(60);
        let e = from_status(status, &body, header.map(Duration::from_secs), cap);
        prop_assert!(!e.to_string().is_empty());
        if let crate::Disposition::RateLimited { retry_after: Some(d) } = e.disposition() {
            prop_assert!(d <= cap, "{d:?} beyond the cap");
        }
    }

    #[test]
    fn retry_delays_parse_or_not(s in prop_oneof![
        any::<String>(),
        any::<f64>().prop_map(|f| format!("{f}s")),
        "[0-9.eE+-]{0,12}s",
    ]) {
        if let Some(d) = parse_retry_delay(&s) {
            prop_assert!(d.as_secs_f64().is_finite());
        }
    }
}

/// Found while writing `answers_decode_or_say_why` (it feeds `u64::MAX` counts): usage counts
/// near `u64::MAX` overflowed (a panic in debug builds) when the photo worker added the two
/// calls' usage or billed the output.
#[test]
fn huge_usage_counts_saturate() {
    let max = Usage {
        prompt_tokens: u64::MAX,
        output_tokens: u64::MAX,
        thoughts_tokens: u64::MAX,
        total_tokens: u64::MAX,
    };
    assert_eq!(max.billed_output(), u64::MAX);
    assert_eq!((max + max).total_tokens, u64::MAX);
}
