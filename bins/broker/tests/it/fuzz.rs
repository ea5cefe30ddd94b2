//! OpenAPI-driven fuzzing. The broker's own `/openapi.json` lists every operation; each gets
//! generated malformed requests through `oneshot`: garbage bytes and random JSON bodies, the
//! documented body with one field of the wrong type, missing, unknown or huge, truncated or
//! deeply nested JSON, hostile path parameters (unicode, `../`, bad percent escapes, huge),
//! garbage query strings, wrong methods, missing or garbage content types and tokens.
//!
//! Three broker configurations, each against the real test Redis unless said otherwise:
//! - `redis-up`: no 5xx at all (a real Redis, so a 503 cannot mask a bug);
//! - `redis-down`: Redis is a closed port; 503 is the only 5xx allowed;
//! - `token`: an API token with `--protect-reads`, garbage `Authorization` headers.
//!
//! Every 4xx (and the 503s) must be JSON `{"message": "..."}`; no request may hang.
//!
//! Bounded: `LANES_FUZZ_CASES` cases per operation in `redis-up` (default 200), a fifth of that
//! in the other two; the modes run on their own threads. `LANES_FUZZ_SEED` (a number) replays a
//! run; the seed is printed with every finding. Inputs that once found a bug are kept below as
//! plain regression tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body as HttpBody;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use broker::{AppState, Config, app};
use lanes_testkit::{Prefix, free_port};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{
    Config as PropConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use serde_json::{Map, Number, Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::support::{Ctx, TOKEN, config, get, missing_id, post_json, send};

// ---- the document -------------------------------------------------------------------------

/// One documented operation.
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    /// The template, `/api/tasks/{id}`.
    path: String,
    /// Path parameters in template order.
    params: Vec<String>,
    /// Query parameter names.
    query: Vec<String>,
    /// The request body's schema, `$ref`s left in place (resolved while generating).
    body: Option<Value>,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    let paths = doc["paths"].as_object().expect("the document has paths");
    for (path, item) in paths {
        for (m, op) in item.as_object().expect("a path item") {
            let Ok(method) = Method::from_bytes(m.to_uppercase().as_bytes()) else {
                continue;
            };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "query" {
                    query.push(p["name"].as_str().expect("parameter name").to_owned());
                }
            }
            let params = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_owned)
                .collect();
            let body = op["requestBody"]["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .map(|media| media["schema"].clone());
            ops.push(Operation {
                method,
                path: path.clone(),
                params,
                query,
                body,
            });
        }
    }
    ops
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        match s["$ref"].as_str().and_then(|r| r.strip_prefix("#/")) {
            Some(pointer) => s = doc.pointer(&format!("/{pointer}")).unwrap_or(&Value::Null),
            None => break,
        }
    }
    s
}

/// A plausible valid instance of `schema` (its examples where it has them), so that one
/// mutation reaches the code behind the parser. `choice` picks among `oneOf`/`anyOf` variants.
fn example(doc: &Value, schema: &Value, choice: usize, depth: usize) -> Value {
    let s = resolve(doc, schema);
    if depth > 6 {
        return Value::Null;
    }
    if let Some(e) = s.get("example") {
        return e.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(vs) = s[key].as_array().filter(|v| !v.is_empty()) {
            let non_null: Vec<&Value> = vs.iter().filter(|v| v["type"] != "null").collect();
            let pick = non_null.get(choice % non_null.len().max(1)).copied();
            return pick.map_or(Value::Null, |v| example(doc, v, choice / 2, depth + 1));
        }
    }
    if let Some(all) = s["allOf"].as_array() {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(o) = example(doc, part, choice, depth + 1) {
                merged.extend(o);
            }
        }
        return Value::Object(merged);
    }
    if let Some(first) = s["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let ty = match &s["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if s.get("properties").is_some() => "object",
        _ => "object",
    };
    match ty {
        "object" => Value::Object(
            s["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), example(doc, v, choice, depth + 1)))
                .collect(),
        ),
        "array" => json!([example(doc, &s["items"], choice, depth + 1)]),
        "string" => json!("x"),
        "integer" => s["minimum"].as_u64().map_or(json!(1), |m| json!(m.max(1))),
        "number" => json!(1.5),
        "boolean" => json!(true),
        _ => Value::Null,
    }
}

/// Every field of `v` (object keys and array items, nested), as JSON pointers.
fn fields(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                fields(child, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                fields(child, &p, out);
            }
        }
        _ => {}
    }
}

/// Removes the field at `pointer` (a key of an object or an item of an array).
fn remove(v: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match v.pointer_mut(parent) {
        Some(Value::Object(o)) => {
            o.remove(&last);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

// ---- generated inputs ---------------------------------------------------------------------

/// A path parameter.
#[derive(Debug, Clone)]
enum PathArg {
    /// A well-formed value (`probe`, or a well-formed id of a task that does not exist).
    Probe,
    /// Any text, percent-encoded.
    Text(String),
    /// Raw text put in the path as is when it is a valid URI (else percent-encoded).
    Raw(String),
    /// `n` letters.
    Huge(usize),
}

#[derive(Debug, Clone)]
enum ContentType {
    Json,
    Missing,
    Named(&'static str),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Body {
    Empty,
    /// The documented body as is.
    Example,
    /// Field `i` (modulo the number of fields) of the documented body replaced.
    Replace(usize, Value),
    /// Field `i` removed.
    Remove(usize),
    /// An unknown field added.
    Extra(String, Value),
    /// Field `i` set to a string of `n` characters.
    Huge(usize, usize),
    /// Any JSON value.
    Json(Value),
    /// Bytes, mostly not JSON.
    Bytes(Vec<u8>),
    /// The documented body cut after `n` bytes.
    Truncated(usize),
    /// `n` nested arrays.
    Deep(usize),
}

#[derive(Debug, Clone)]
enum Auth {
    Missing,
    Right,
    Header(Vec<u8>),
}

/// One generated request.
#[derive(Debug, Clone)]
struct Case {
    /// `None`: the documented method.
    method: Option<Method>,
    params: Vec<PathArg>,
    query: Vec<Option<String>>,
    raw_query: Option<&'static str>,
    content_type: ContentType,
    body: Body,
    variant: usize,
    auth: Auth,
}

const NASTY_SEGMENTS: &[&str] = &[
    "..",
    ".",
    "../",
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%2e%2e%2f",
    "a%2Fb",
    "%",
    "%%",
    "%Z1",
    "%FF",
    "%C3%28",
    "%ED%A0%80",
    "%00",
    "%0A%0D",
    "%F0%9F%92%A9",
    "ü",
    "🦀",
    "q.",
    ".0123456789abcdef0123456789abcdef",
    "q.0123456789ABCDEF0123456789ABCDEF",
    "q.0123456789abcdef0123456789abcdeg",
    "q..0123456789abcdef0123456789abcdef",
    "*",
    "{queue}",
    "null",
    "-1",
    "0",
    "18446744073709551616",
    "%20",
    "+",
    "a;b",
    "a:b",
    "@",
];

const NASTY_STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\u{202e}evil",
    "../../etc/passwd",
    "%s%n%x",
    "'; DROP TABLE tasks; --",
    "<script>alert(1)</script>",
    "{}",
    "[]",
    "null",
    "1e999",
    "-0",
    "\u{fffd}\u{fffd}",
    "🦀🦀🦀",
    "lanes:{q}:ready",
    "*",
];

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "FUZZ",
];

const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin1",
    "application/problem+json",
    "APPLICATION/JSON",
    "application/json;;;",
    "application/jsonx",
    "*/*",
    "",
];

const RAW_QUERIES: &[&str] = &[
    "%%%",
    "&&&==",
    "limit=",
    "limit=-1",
    "limit=0",
    "limit=1001",
    "limit=1.5",
    "limit=99999999999999999999999",
    "limit=1&limit=2",
    "limit=%FF",
    "x=%00",
    "=",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        any::<String>().prop_map(Value::from),
        select(NASTY_STRINGS).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(
                prop_oneof![
                    "[a-z_]{1,12}",
                    select(&["kind", "payload", "priority", "key", "key_policy", "queue"][..])
                        .prop_map(str::to_owned),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value of (usually) the wrong type for whatever field it replaces.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(&[f64::MAX, f64::MIN, -0.0, 1e-300, -1.0, 0.5, 1e20, 9.5][..])
            .prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        select(NASTY_STRINGS).prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        json_value(),
    ]
}

fn path_arg() -> impl Strategy<Value = PathArg> {
    prop_oneof![
        4 => Just(PathArg::Probe),
        2 => any::<String>().prop_map(PathArg::Text),
        3 => select(NASTY_SEGMENTS).prop_map(|s| PathArg::Raw(s.to_owned())),
        1 => (1usize..5).prop_map(|n| PathArg::Raw(format!("{}etc/passwd", "../".repeat(n)))),
        1 => select(&[65usize, 129, 4096, 30_000][..]).prop_map(PathArg::Huge),
        1 => "[A-Za-z0-9_-]{1,70}".prop_map(PathArg::Text),
        1 => "[a-z]{1,8}\\.[0-9a-f]{0,40}".prop_map(PathArg::Text),
    ]
}

fn content_type() -> impl Strategy<Value = ContentType> {
    prop_oneof![
        6 => Just(ContentType::Json),
        1 => Just(ContentType::Missing),
        2 => select(CONTENT_TYPES).prop_map(ContentType::Named),
        1 => vec(any::<u8>(), 0..40).prop_map(ContentType::Bytes),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        3 => Just(Body::Example),
        4 => (any::<usize>(), hostile_value()).prop_map(|(i, v)| Body::Replace(i, v)),
        1 => any::<usize>().prop_map(Body::Remove),
        1 => ("[a-z_]{1,12}", json_value()).prop_map(|(k, v)| Body::Extra(k, v)),
        1 => (any::<usize>(), select(&[1_000usize, 20_000, 70_000, 200_000][..]))
            .prop_map(|(i, n)| Body::Huge(i, n)),
        2 => json_value().prop_map(Body::Json),
        1 => vec(any::<u8>(), 0..512).prop_map(Body::Bytes),
        1 => any::<usize>().prop_map(Body::Truncated),
        1 => select(&[100usize, 129, 1_000, 50_000][..]).prop_map(Body::Deep),
        1 => Just(Body::Empty),
    ]
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        3 => Just(Auth::Missing),
        2 => Just(Auth::Right),
        1 => select(&[
            "Bearer",
            "Bearer ",
            "bearer test-token-0123456789abcdeX",
            "Basic dGVzdDp0ZXN0",
            "Bearer test-token-0123456789abcdef extra",
            "Bearer\ttest-token-0123456789abcdef",
        ][..])
        .prop_map(|s| Auth::Header(s.as_bytes().to_vec())),
        1 => vec(any::<u8>(), 0..80).prop_map(Auth::Header),
    ]
}

fn case(op: &Operation) -> impl Strategy<Value = Case> + use<> {
    let method = prop_oneof![
        8 => Just(None),
        2 => select(METHODS).prop_map(|m| Method::from_bytes(m.as_bytes()).ok()),
    ];
    (
        method,
        vec(path_arg(), op.params.len()),
        vec(
            option::of(prop_oneof!["-?[0-9]{1,25}", any::<String>(), "[a-z]{0,5}",]),
            op.query.len(),
        ),
        option::weighted(0.2, select(RAW_QUERIES)),
        content_type(),
        body(),
        any::<usize>(),
        auth(),
    )
        .prop_map(
            |(method, params, query, raw_query, content_type, body, variant, auth)| Case {
                method,
                params,
                query,
                raw_query,
                content_type,
                body,
                variant,
                auth,
            },
        )
}

// ---- building and checking requests -------------------------------------------------------

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn probe(name: &str) -> String {
    if name == "id" || (name.ends_with("_id") && name != "project_id") {
        missing_id("probe")
    } else {
        "probe".to_owned()
    }
}

fn uri(op: &Operation, c: &Case, raw: bool) -> String {
    let mut path = op.path.clone();
    for (name, arg) in op.params.iter().zip(&c.params) {
        let value = match arg {
            PathArg::Probe => probe(name),
            PathArg::Text(s) => percent_encode(s),
            PathArg::Raw(s) if raw => s.clone(),
            PathArg::Raw(s) => percent_encode(s),
            PathArg::Huge(n) => "a".repeat(*n),
        };
        path = path.replace(&format!("{{{name}}}"), &value);
    }
    let mut query: Vec<String> = op
        .query
        .iter()
        .zip(&c.query)
        .filter_map(|(name, v)| v.as_ref().map(|v| format!("{name}={}", percent_encode(v))))
        .collect();
    if let Some(raw_query) = c.raw_query {
        query.push(raw_query.to_owned());
    }
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn body_bytes(doc: &Value, op: &Operation, c: &Case) -> Vec<u8> {
    let mut v = op
        .body
        .as_ref()
        .map_or_else(|| json!({}), |s| example(doc, s, c.variant, 0));
    let mut all = Vec::new();
    fields(&v, "", &mut all);
    let pick = |i: usize| all.get(i % all.len().max(1)).cloned();
    match &c.body {
        Body::Empty => return Vec::new(),
        Body::Example => {}
        Body::Replace(i, new) => match pick(*i) {
            Some(p) => {
                if let Some(slot) = v.pointer_mut(&p) {
                    *slot = new.clone();
                }
            }
            None => v = new.clone(),
        },
        Body::Remove(i) => {
            if let Some(p) = pick(*i) {
                remove(&mut v, &p);
            }
        }
        Body::Extra(k, new) => match &mut v {
            Value::Object(o) => {
                o.insert(k.clone(), new.clone());
            }
            Value::Array(items) => items.push(json!({ k.clone(): new.clone() })),
            _ => v = json!({ k.clone(): new.clone() }),
        },
        Body::Huge(i, n) => {
            let huge = Value::String("x".repeat(*n));
            match pick(*i).and_then(|p| v.pointer_mut(&p)) {
                Some(slot) => *slot = huge,
                None => v = huge,
            }
        }
        Body::Json(j) => v = j.clone(),
        Body::Bytes(b) => return b.clone(),
        Body::Truncated(n) => {
            let full = v.to_string().into_bytes();
            let cut = n % full.len().max(1);
            return full[..cut].to_vec();
        }
        Body::Deep(n) => return format!("{}{}", "[".repeat(*n), "]".repeat(*n)).into_bytes(),
    }
    v.to_string().into_bytes()
}

fn request(doc: &Value, op: &Operation, c: &Case) -> Request<HttpBody> {
    let method = c.method.clone().unwrap_or_else(|| op.method.clone());
    let build = |uri: String| {
        let mut b = Request::builder().method(method.clone()).uri(uri);
        match &c.content_type {
            ContentType::Json => b = b.header(header::CONTENT_TYPE, "application/json"),
            ContentType::Missing => {}
            ContentType::Named(s) => b = b.header(header::CONTENT_TYPE, *s),
            ContentType::Bytes(bytes) => {
                if let Ok(v) = HeaderValue::from_bytes(bytes) {
                    b = b.header(header::CONTENT_TYPE, v);
                }
            }
        }
        match &c.auth {
            Auth::Missing => {}
            Auth::Right => b = b.header(header::AUTHORIZATION, format!("Bearer {TOKEN}")),
            Auth::Header(bytes) => {
                if let Ok(v) = HeaderValue::from_bytes(bytes) {
                    b = b.header(header::AUTHORIZATION, v);
                }
            }
        }
        b.body(HttpBody::from(body_bytes(doc, op, c))).ok()
    };
    build(uri(op, c, true))
        .or_else(|| build(uri(op, c, false)))
        .expect("a percent-encoded request always builds")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    RedisUp,
    RedisDown,
    Token,
}

/// Sends one request and checks the answer: no 5xx (503 only with Redis down), no hang, and
/// every 4xx or 5xx is JSON `{"message": "..."}`. Returns the status.
async fn check(app: &Router, req: Request<HttpBody>, mode: Mode) -> Result<StatusCode, String> {
    let head = req.method() == Method::HEAD;
    let resp = tokio::time::timeout(Duration::from_secs(30), app.clone().oneshot(req))
        .await
        .map_err(|_| "no answer within 30 s (hung)".to_owned())?
        .map_err(|e| format!("service error: {e}"))?;
    let status = resp.status();
    if status.is_server_error()
        && !(mode == Mode::RedisDown && status == StatusCode::SERVICE_UNAVAILABLE)
    {
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        return Err(format!(
            "answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    if !(status.is_client_error() || status.is_server_error()) || head {
        return Ok(status);
    }
    let json_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .map_err(|e| format!("{status} with an unreadable body: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    if !json_type {
        return Err(format!("{status} is not declared JSON: {text}"));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v["message"].as_str().is_some_and(|m| !m.is_empty()) => Ok(status),
        _ => Err(format!("{status} body is not {{\"message\": ...}}: {text}")),
    }
}

// ---- the run ------------------------------------------------------------------------------

/// What one mode's run saw.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    statuses: BTreeMap<u16, u64>,
    findings: Vec<String>,
}

fn seed() -> u64 {
    std::env::var("LANES_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(Instant::now())
        })
}

fn cases_per_operation() -> u32 {
    std::env::var("LANES_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

fn runner(cases: u32, seed: u64, salt: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = seed
            ^ salt
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(i as u32 * 16);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let config = PropConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..PropConfig::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

fn run_mode(
    rt: &tokio::runtime::Handle,
    app: &Router,
    doc: &Value,
    ops: &[Operation],
    mode: Mode,
    cases: u32,
    seed: u64,
) -> Tally {
    let tally = Mutex::new(Tally::default());
    for (i, op) in ops.iter().enumerate() {
        let mut runner = runner(cases, seed, i as u64 * 3 + mode as u64);
        let result = runner.run(&case(op), |c| {
            let req = request(doc, op, &c);
            let outcome = rt.block_on(check(app, req, mode));
            let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
            t.requests += 1;
            match outcome {
                Ok(status) => {
                    *t.statuses.entry(status.as_u16()).or_default() += 1;
                    Ok(())
                }
                Err(why) => Err(TestCaseError::fail(why)),
            }
        });
        if let Err(e) = result {
            let finding = match e {
                TestError::Fail(why, input) => {
                    let req = request(doc, op, &input);
                    format!(
                        "{mode:?} {op}: {why}\n  request: {} {}\n  input: {input:?}",
                        req.method(),
                        req.uri()
                    )
                }
                TestError::Abort(why) => format!("{mode:?} {op}: aborted: {why}"),
            };
            let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
            t.findings.push(finding);
        }
    }
    tally.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// A broker whose Redis is a closed port, answering 503 fast.
fn redis_down_app() -> Router {
    let prefix = Prefix::new();
    let mut cfg: Config = config(&prefix);
    cfg.redis_url = format!("redis://127.0.0.1:{}/", free_port());
    cfg.redis_timeout = Duration::from_millis(25);
    cfg.body_limit = 64 * 1024;
    app(AppState::new(cfg, CancellationToken::new()))
}

#[test]
fn every_operation_survives_malformed_input() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let up = Ctx::with(|c| c.body_limit = 64 * 1024);
    let token = Ctx::with(|c| {
        c.auth.token = Some(TOKEN.into());
        c.auth.protect_reads = true;
        c.body_limit = 64 * 1024;
    });
    let down = redis_down_app();
    let doc = rt.block_on(async { send(&up.app, get("/openapi.json")).await.json() });
    let ops = operations(&doc);
    assert!(
        ops.len() >= 12,
        "operations read from the document: {ops:?}"
    );
    // A queue and a task to find, so well-formed requests reach the code past the lookups.
    rt.block_on(async {
        let r = send(
            &up.app,
            post_json("/api/queues/probe/tasks", r#"{"kind":"k"}"#),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    });

    let cases = cases_per_operation();
    let seed = seed();
    let started = Instant::now();
    let handle = rt.handle();
    let (a, b, c) = std::thread::scope(|s| {
        let a = s.spawn(|| run_mode(handle, &up.app, &doc, &ops, Mode::RedisUp, cases, seed));
        let b = s.spawn(|| run_mode(handle, &down, &doc, &ops, Mode::RedisDown, cases / 5, seed));
        let c = s.spawn(|| run_mode(handle, &token.app, &doc, &ops, Mode::Token, cases / 5, seed));
        (
            a.join().expect("redis-up run"),
            b.join().expect("redis-down run"),
            c.join().expect("token run"),
        )
    });
    let findings: Vec<&String> = [&a, &b, &c].iter().flat_map(|t| &t.findings).collect();
    eprintln!(
        "fuzz: seed {seed}, {} operations, {cases} cases each (redis-up) and {} (redis-down, \
         token); requests: redis-up {} {:?}, redis-down {} {:?}, token {} {:?}; {} findings in \
         {:.1}s",
        ops.len(),
        cases / 5,
        a.requests,
        a.statuses,
        b.requests,
        b.statuses,
        c.requests,
        c.statuses,
        findings.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        findings.is_empty(),
        "{} findings (replay with LANES_FUZZ_SEED={seed}):\n{}",
        findings.len(),
        findings
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

/// The same classic inputs for every operation, whatever the seed: each hostile path segment
/// in every path parameter; the worst bodies (deeply nested, not UTF-8, truncated, huge,
/// `null`) with hostile query strings; and every field of the documented body (each variant of
/// a `oneOf`), one at a time, replaced by a value of each JSON type, a huge string, or removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_survives_the_classic_inputs() {
    let ctx = Ctx::with(|c| c.body_limit = 64 * 1024);
    let doc = send(&ctx.app, get("/openapi.json")).await.json();
    let base = Case {
        method: None,
        params: Vec::new(),
        query: Vec::new(),
        raw_query: None,
        content_type: ContentType::Json,
        body: Body::Example,
        variant: 0,
        auth: Auth::Missing,
    };
    let mut findings = Vec::new();
    let mut sent = 0;
    for op in operations(&doc) {
        let mut cases: Vec<Case> = NASTY_SEGMENTS
            .iter()
            .map(|s| Case {
                params: vec![PathArg::Raw((*s).to_owned()); op.params.len()],
                ..base.clone()
            })
            .collect();
        for body in [
            Body::Deep(50_000),
            Body::Bytes(vec![0xff, 0xfe, b'{', 0x00]),
            Body::Truncated(7),
            Body::Huge(0, 200_000),
            Body::Json(Value::Null),
        ] {
            cases.push(Case {
                params: vec![PathArg::Probe; op.params.len()],
                query: vec![Some("\u{fffd}%FF-1e999".into()); op.query.len()],
                raw_query: Some("%%%"),
                body,
                ..base.clone()
            });
        }
        let wrong = [
            Value::Null,
            json!(true),
            json!(-1),
            json!(1.5e300),
            json!("x"),
            json!([]),
            json!({}),
            Value::String("y".repeat(100_000)),
        ];
        for variant in 0..2 {
            let example = op
                .body
                .as_ref()
                .map_or_else(|| json!({}), |s| example(&doc, s, variant, 0));
            let mut all = Vec::new();
            fields(&example, "", &mut all);
            for i in 0..all.len() {
                let bodies = wrong
                    .iter()
                    .map(|v| Body::Replace(i, v.clone()))
                    .chain([Body::Remove(i)]);
                cases.extend(bodies.map(|body| Case {
                    params: vec![PathArg::Probe; op.params.len()],
                    body,
                    variant,
                    ..base.clone()
                }));
            }
        }
        for c in cases {
            sent += 1;
            let req = request(&doc, &op, &c);
            let uri = req.uri().clone();
            if let Err(why) = check(&ctx.app, req, Mode::RedisUp).await {
                findings.push(format!("{op} ({uri}): {why}\n  input: {c:?}"));
            }
        }
    }
    assert!(sent > 1000, "{sent} requests");
    assert!(findings.is_empty(), "{}", findings.join("\n\n"));
}

/// The checks themselves: a plain-text 4xx, a 500, and a 503 while Redis is up are findings;
/// `{"message"}` errors and a 503 while Redis is down are not.
#[tokio::test]
async fn the_checks_flag_plain_text_errors_and_server_errors() {
    use axum::Json;
    use axum::routing::get as route;
    let app = Router::new()
        .route(
            "/plain",
            route(|| async { (StatusCode::BAD_REQUEST, "nope") }),
        )
        .route("/empty", route(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/boom",
            route(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            "/json",
            route(|| async { (StatusCode::CONFLICT, Json(json!({"message": "taken"}))) }),
        )
        .route(
            "/down",
            route(|| async {
                let body = Json(json!({"message": "unavailable"}));
                (StatusCode::SERVICE_UNAVAILABLE, body)
            }),
        );
    let status =
        |r: Result<StatusCode, String>| r.map_err(|e| e.split(':').next().map(str::to_owned));
    for path in ["/plain", "/empty", "/boom", "/down"] {
        let r = check(&app, get(path), Mode::RedisUp).await;
        assert!(r.is_err(), "{path} passed: {r:?}");
    }
    assert_eq!(
        status(check(&app, get("/json"), Mode::RedisUp).await),
        Ok(StatusCode::CONFLICT)
    );
    assert_eq!(
        status(check(&app, get("/down"), Mode::RedisDown).await),
        Ok(StatusCode::SERVICE_UNAVAILABLE)
    );
}
