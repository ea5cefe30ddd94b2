//! A Telegram-like message channel API (Bot API wire shapes) over deterministic generated
//! content, metered per client with Telegram's flood wait.
//!
//! Routes (under `/channels`; `<token>` is the client's bot token, as in the Bot API):
//! - `GET /bot<token>/getChat?chat_id=@name` — channel info: `id`, `type`, `title`,
//!   `username`, `message_count`, `last_message_id`;
//! - `GET /bot<token>/getHistory?chat_id=@name&offset_id=N&limit=100` — up to `limit`
//!   (1..=100) messages with an id greater than `offset_id`, oldest first, plus `count` (the
//!   channel's total); message ids have gaps, as deleted messages leave in real channels;
//! - `GET /file/bot<token>/photos/<name>/<id>.png` — a photo's bytes (a real PNG), named by the
//!   `file_path` of the message's largest `photo` size;
//! - `GET /_stats` — counters (not part of the API): `served`, `refused_429`, `flood_waits`,
//!   `violations`, `in_flight_429`, per method, per answer.
//!
//! Every answer is `{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description"}`.
//! A channel the directory does not hold answers 404. A channel with `fail_after` answers 500
//! `HISTORY_GET_FAILED` to every history page starting at or after that id (it fails part-way,
//! every time). A missing token is 401; a bad `limit`, `offset_id` or `chat_id` is 400.
//!
//! **Flood wait.** Each client (token) has a token bucket (`rate_per_sec`, `burst`; every call
//! counts, file downloads too). A call the bucket refuses starts a flood wait: it is answered
//! 429 `Too Many Requests: retry after N` with `parameters.retry_after = N` (and a `Retry-After`
//! header), and every call of that client until the wait ends is answered 429 with the seconds
//! left. Such a call is a **violation** (the client did not honour the wait) unless it arrives
//! within `grace` of the 429 that started the wait: those were already on the wire when the
//! client learned of it and are counted as `in_flight_429` instead.
//!
//! The directory is `fixtures/channels/channels.json` (see [`Directory::load`]); tests and the
//! benchmark build their own with [`Directory::new`] and serve it with [`router_with`]. Content
//! is a pure function of the channel's spec, so [`Channel::messages`] and [`Channel::photo`] are
//! exactly what a client that collected the channel must hold.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::FakesConfig;
use crate::quota::{Answer, QuotaStats, TokenBucket};

/// Most messages one history page holds (the API's own limit).
pub const MAX_PAGE: u64 = 100;
/// Unix time of every channel's first message.
const EPOCH: u64 = 1_704_067_200;

/// One channel of the directory, as the fixture describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChannelSpec {
    /// The public name, without `@` (lowercase letters, digits and `_`).
    pub username: String,
    pub title: String,
    /// How many messages the channel holds.
    pub messages: u64,
    /// Per mille of messages that carry a photo.
    #[serde(default = "default_photo_permille")]
    pub photo_permille: u32,
    /// History pages starting at or after this message id answer 500 (the channel fails
    /// part-way); `None`: it never fails.
    #[serde(default)]
    pub fail_after: Option<u64>,
    /// Seeds the channel's content.
    #[serde(default)]
    pub seed: u64,
}

fn default_photo_permille() -> u32 {
    150
}

impl ChannelSpec {
    /// A channel of `messages` messages whose content is seeded by its name.
    pub fn new(username: &str, messages: u64) -> Self {
        Self {
            username: username.to_owned(),
            title: username.replace('_', " "),
            messages,
            photo_permille: default_photo_permille(),
            fail_after: None,
            seed: hash(0x5EED_0004, username.bytes().map(u64::from).sum()),
        }
    }

    pub fn photos(mut self, permille: u32) -> Self {
        self.photo_permille = permille;
        self
    }

    pub fn fail_after(mut self, id: u64) -> Self {
        self.fail_after = Some(id);
        self
    }
}

/// A channel with its message ids laid out.
#[derive(Debug, Clone)]
pub struct Channel {
    spec: ChannelSpec,
    id: i64,
    ids: Vec<u64>,
}

/// Every channel the fake serves, by name.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    channels: HashMap<String, Channel>,
    order: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Fixture {
    channels: Vec<ChannelSpec>,
}

impl Directory {
    pub fn new(specs: Vec<ChannelSpec>) -> Self {
        let mut dir = Self::default();
        for spec in specs {
            let name = spec.username.to_ascii_lowercase();
            let id = -(1_000_000_000_000 + (hash(spec.seed, 7) % 900_000_000) as i64);
            let mut ids = Vec::with_capacity(spec.messages as usize);
            let mut candidate = 0;
            while (ids.len() as u64) < spec.messages {
                candidate += 1;
                // About one id in eleven belongs to a deleted message.
                if !hash(spec.seed ^ 0xDE1E7ED, candidate).is_multiple_of(11) {
                    ids.push(candidate);
                }
            }
            dir.order.push(name.clone());
            dir.channels.insert(name, Channel { spec, id, ids });
        }
        dir
    }

    /// Loads `<fixtures>/channels/channels.json`.
    pub fn load(fixtures: &Path) -> Result<Self, String> {
        let path = fixtures.join("channels").join("channels.json");
        let bytes = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        let fixture: Fixture =
            serde_json::from_slice(&bytes).map_err(|e| format!("parse {}: {e}", path.display()))?;
        Ok(Self::new(fixture.channels))
    }

    /// The channel called `name` (with or without `@`, any case).
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        let name = name.trim_start_matches('@').to_ascii_lowercase();
        self.channels.get(&name)
    }

    /// Every channel, in the fixture's order.
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.order.iter().filter_map(|n| self.channels.get(n))
    }

    fn by_chat_id(&self, chat_id: &str) -> Option<&Channel> {
        match chat_id.parse::<i64>() {
            Ok(id) => self.channels.values().find(|c| c.id == id),
            Err(_) => self.channel(chat_id),
        }
    }
}

impl Channel {
    pub fn spec(&self) -> &ChannelSpec {
        &self.spec
    }

    pub fn username(&self) -> &str {
        &self.spec.username
    }

    /// The ids of its messages, ascending (with gaps).
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// What `getChat` answers as `result`.
    pub fn info(&self) -> Value {
        json!({
            "id": self.id,
            "type": "channel",
            "title": self.spec.title,
            "username": self.spec.username,
            "message_count": self.ids.len(),
            "last_message_id": self.ids.last().copied().unwrap_or(0),
        })
    }

    /// Every message, oldest first, exactly as `getHistory` serves them.
    pub fn messages(&self) -> Vec<Value> {
        self.ids.iter().map(|id| self.message(*id)).collect()
    }

    /// Up to `limit` messages with an id greater than `after`, oldest first.
    pub fn history(&self, after: u64, limit: u64) -> Vec<Value> {
        let start = self.ids.partition_point(|id| *id <= after);
        self.ids[start..]
            .iter()
            .take(limit as usize)
            .map(|id| self.message(*id))
            .collect()
    }

    fn has_photo(&self, id: u64) -> bool {
        hash(self.spec.seed ^ 0xF070, id) % 1000 < u64::from(self.spec.photo_permille)
    }

    fn photo_size(&self, id: u64) -> (u32, u32) {
        let h = hash(self.spec.seed ^ 0x512E, id);
        (24 + (h % 40) as u32, 16 + ((h >> 16) % 32) as u32)
    }

    /// The path a photo is downloaded from (`/file/bot<token>/<path>`).
    pub fn photo_path(&self, id: u64) -> String {
        format!("photos/{}/{id}.png", self.spec.username)
    }

    /// The photo of message `id` (a PNG), if it has one.
    pub fn photo(&self, id: u64) -> Option<Vec<u8>> {
        if self.ids.binary_search(&id).is_err() || !self.has_photo(id) {
            return None;
        }
        let (w, h) = self.photo_size(id);
        Some(png(w, h, hash(self.spec.seed ^ 0xC010, id)))
    }

    /// One message, as served.
    pub fn message(&self, id: u64) -> Value {
        let seed = self.spec.seed;
        let h = hash(seed, id);
        let date = EPOCH + id * 97 + h % 60;
        let words = 3 + (h % 23) as usize;
        let mut text = String::new();
        for i in 0..words {
            if i > 0 {
                text.push(' ');
            }
            let w = hash(seed ^ (i as u64 + 1), id);
            text.push_str(WORDS[(w % WORDS.len() as u64) as usize]);
        }
        if h.is_multiple_of(7) {
            text.push_str(&format!(" https://example.org/{}/{id}", self.spec.username));
        }
        let views = 50 + hash(seed ^ 0x71E5, id) % 20_000;
        let mut msg = json!({
            "message_id": id,
            "date": date,
            "chat": {"id": self.id, "type": "channel", "username": self.spec.username},
            "views": views,
        });
        if let Some(bytes) = self.photo(id) {
            let (w, hgt) = self.photo_size(id);
            msg["caption"] = json!(text);
            msg["photo"] = json!([{
                "file_id": format!("AgAC{:016x}{id:08x}", hash(seed ^ 0xF11E, id)),
                "file_unique_id": format!("AQAD{:012x}", hash(seed ^ 0xF11F, id) >> 16),
                "width": w,
                "height": hgt,
                "file_size": bytes.len(),
                "file_path": self.photo_path(id),
            }]);
        } else {
            msg["text"] = json!(text);
        }
        if h.is_multiple_of(13) {
            msg["edit_date"] = json!(date + 300 + h % 3000);
        }
        msg
    }
}

const WORDS: &[&str] = &[
    "lanes",
    "queue",
    "redis",
    "worker",
    "channel",
    "update",
    "release",
    "notes",
    "today",
    "news",
    "market",
    "price",
    "photo",
    "weekend",
    "launch",
    "rust",
    "async",
    "tokio",
    "batch",
    "fleet",
    "rate",
    "limit",
    "flood",
    "wait",
    "resume",
    "checkpoint",
    "crash",
    "restart",
    "привет",
    "мир",
    "🚀",
    "✅",
    "📷",
    "über",
    "café",
    "naïve",
    "#daily",
    "#tips",
    "@team",
    "v2.4",
    "42",
    "and",
    "the",
    "of",
    "to",
    "in",
    "new",
    "fast",
    "slow",
    "big",
    "small",
    "first",
    "last",
    "read",
    "more",
    "“quoted”",
    "line\nbreak",
    "tab\there",
    "back\\slash",
    "<b>bold</b>",
    "a&b",
];

/// SplitMix64 of `seed` and `n`: the fake's only source of variety.
fn hash(seed: u64, n: u64) -> u64 {
    let mut z = seed
        .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A `w`×`h` RGB PNG with a gradient coloured by `seed`.
fn png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let [r0, g0, b0, ..] = seed.to_le_bytes();
    let mut raw = Vec::with_capacity((h * (1 + 3 * w)) as usize);
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            raw.push(r0.wrapping_add((x * 4) as u8));
            raw.push(g0.wrapping_add((y * 4) as u8));
            raw.push(b0.wrapping_add(((x + y) * 2) as u8));
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &idat[..]),
        (b"IEND", &[][..]),
    ] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    out
}

/// The fake's limits and timing.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelsConfig {
    /// Calls per second each client may make (its bucket's refill).
    pub rate_per_sec: f64,
    /// Calls a client may make at once after a quiet spell.
    pub burst: u32,
    /// The flood wait a refused call starts, in whole seconds (Telegram's `retry_after`).
    pub flood_wait_secs: u64,
    /// Calls arriving this soon after the 429 that started a flood wait were on the wire
    /// already: answered 429 but not counted as violations.
    pub grace: Duration,
    /// Time the fake takes to answer a history page (or chat info).
    pub history_latency: Duration,
    /// Time the fake takes to serve a photo.
    pub file_latency: Duration,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 100.0,
            burst: 30,
            flood_wait_secs: 1,
            grace: Duration::from_millis(250),
            history_latency: Duration::from_millis(15),
            file_latency: Duration::from_millis(3),
        }
    }
}

/// One client's meter.
struct Client {
    bucket: TokenBucket,
    /// (when the 429 that started it went out, when it ends).
    flood: Option<(Instant, Instant)>,
}

#[derive(Default)]
struct FloodStats {
    flood_waits: AtomicU64,
    violations: AtomicU64,
    in_flight: AtomicU64,
    chat: AtomicU64,
    history: AtomicU64,
    files: AtomicU64,
    unauthorized: AtomicU64,
}

struct Fake {
    dir: Result<Directory, String>,
    cfg: ChannelsConfig,
    clients: Mutex<HashMap<String, Client>>,
    quota: QuotaStats,
    flood: FloodStats,
}

/// The channels fake's routes, over the directory in `cfg.fixtures` with the default limits.
pub fn router(cfg: &FakesConfig) -> Router {
    let dir = Directory::load(&cfg.fixtures);
    if let Err(e) = &dir {
        tracing::error!(error = %e, "channels fake: fixture missing; every call answers 500");
    }
    serve_dir(dir, ChannelsConfig::default())
}

/// The channels fake's routes over `dir` with `cfg`'s limits (tests, benchmarks).
pub fn router_with(dir: Directory, cfg: ChannelsConfig) -> Router {
    serve_dir(Ok(dir), cfg)
}

fn serve_dir(dir: Result<Directory, String>, cfg: ChannelsConfig) -> Router {
    let state = Arc::new(Fake {
        dir,
        cfg,
        clients: Mutex::new(HashMap::new()),
        quota: QuotaStats::default(),
        flood: FloodStats::default(),
    });
    Router::new()
        .route("/{bot}/getChat", get(get_chat))
        .route("/{bot}/getHistory", get(get_history))
        .route("/file/{bot}/photos/{channel}/{file}", get(get_file))
        .route("/_stats", get(stats))
        .with_state(state)
}

type Failure = (StatusCode, String);

fn fail(status: StatusCode, description: impl Into<String>) -> Failure {
    (status, description.into())
}

impl Fake {
    /// What every call goes through: the token, the client's flood wait and bucket.
    fn admit(&self, bot: &str) -> Result<&Directory, Failure> {
        let token = bot.strip_prefix("bot").unwrap_or("").trim();
        if token.is_empty() {
            self.flood.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Err(fail(StatusCode::UNAUTHORIZED, "Unauthorized"));
        }
        let now = Instant::now();
        let refused = {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            let client = clients.entry(token.to_owned()).or_insert_with(|| Client {
                bucket: TokenBucket::new(self.cfg.rate_per_sec, self.cfg.burst),
                flood: None,
            });
            match client.flood {
                Some((started, until)) if now < until => {
                    let counter = if now.duration_since(started) > self.cfg.grace {
                        &self.flood.violations
                    } else {
                        &self.flood.in_flight
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    Some(until.duration_since(now))
                }
                _ => match client.bucket.take(1) {
                    Ok(_) => None,
                    Err(_) => {
                        let wait = Duration::from_secs(self.cfg.flood_wait_secs.max(1));
                        client.flood = Some((now, now + wait));
                        self.flood.flood_waits.fetch_add(1, Ordering::Relaxed);
                        Some(wait)
                    }
                },
            }
        };
        if let Some(left) = refused {
            self.quota.refused();
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too Many Requests: retry after {}", secs.max(1)),
            ));
        }
        self.quota.admitted();
        self.dir
            .as_ref()
            .map_err(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))
    }

    fn respond(&self, answer: Result<Value, Failure>) -> Response {
        match answer {
            Ok(result) => {
                self.quota.answered(Answer::Ok);
                Json(json!({"ok": true, "result": result})).into_response()
            }
            Err((status, description)) => self.error(status, description),
        }
    }

    fn error(&self, status: StatusCode, description: String) -> Response {
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::UNAUTHORIZED => {}
            StatusCode::NOT_FOUND => self.quota.answered(Answer::NotFound),
            s if s.is_server_error() => self.quota.answered(Answer::ServerError),
            _ => self.quota.answered(Answer::BadRequest),
        }
        let mut body = json!({
            "ok": false,
            "error_code": status.as_u16(),
            "description": description,
        });
        let mut retry_after = None;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let secs: u64 = description
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1);
            body["parameters"] = json!({"retry_after": secs});
            retry_after = HeaderValue::from_str(&secs.to_string()).ok();
        }
        let mut resp = (status, Json(body)).into_response();
        if let Some(v) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

#[derive(Debug, Deserialize)]
struct ChatQuery {
    chat_id: Option<String>,
}

fn find<'a>(dir: &'a Directory, chat_id: Option<&str>) -> Result<&'a Channel, Failure> {
    let chat_id = chat_id.map(str::trim).unwrap_or("");
    if chat_id.is_empty() {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "Bad Request: chat_id is empty",
        ));
    }
    dir.by_chat_id(chat_id).ok_or_else(|| {
        fail(
            StatusCode::NOT_FOUND,
            format!("Not Found: chat {chat_id} not found"),
        )
    })
}

async fn get_chat(
    State(fake): State<Arc<Fake>>,
    UrlPath(bot): UrlPath<String>,
    Query(q): Query<ChatQuery>,
) -> Response {
    fake.flood.chat.fetch_add(1, Ordering::Relaxed);
    let answer = match fake.admit(&bot) {
        Ok(dir) => {
            tokio::time::sleep(fake.cfg.history_latency).await;
            find(dir, q.chat_id.as_deref()).map(Channel::info)
        }
        Err(e) => Err(e),
    };
    fake.respond(answer)
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    chat_id: Option<String>,
    offset_id: Option<String>,
    limit: Option<String>,
}

async fn get_history(
    State(fake): State<Arc<Fake>>,
    UrlPath(bot): UrlPath<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    fake.flood.history.fetch_add(1, Ordering::Relaxed);
    let answer = match fake.admit(&bot) {
        Ok(dir) => {
            tokio::time::sleep(fake.cfg.history_latency).await;
            history(dir, &q)
        }
        Err(e) => Err(e),
    };
    fake.respond(answer)
}

fn history(dir: &Directory, q: &HistoryQuery) -> Result<Value, Failure> {
    let offset: u64 = match q.offset_id.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(s) => s.parse().map_err(|_| {
            fail(
                StatusCode::BAD_REQUEST,
                format!("Bad Request: offset_id {s:?} is not a message id"),
            )
        })?,
    };
    let limit: u64 = match q.limit.as_deref().map(str::trim) {
        None | Some("") => MAX_PAGE,
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                fail(
                    StatusCode::BAD_REQUEST,
                    format!("Bad Request: limit must be between 1 and {MAX_PAGE}"),
                )
            })?,
    };
    let channel = find(dir, q.chat_id.as_deref())?;
    if channel.spec.fail_after.is_some_and(|at| offset >= at) {
        return Err(fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error: HISTORY_GET_FAILED",
        ));
    }
    Ok(json!({
        "count": channel.ids.len(),
        "messages": channel.history(offset, limit),
    }))
}

async fn get_file(
    State(fake): State<Arc<Fake>>,
    UrlPath((bot, name, file)): UrlPath<(String, String, String)>,
) -> Response {
    fake.flood.files.fetch_add(1, Ordering::Relaxed);
    let dir = match fake.admit(&bot) {
        Ok(dir) => dir,
        Err((status, description)) => return fake.error(status, description),
    };
    tokio::time::sleep(fake.cfg.file_latency).await;
    let photo = file
        .strip_suffix(".png")
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| dir.channel(&name).and_then(|c| c.photo(id)));
    match photo {
        Some(bytes) => {
            fake.quota.answered(Answer::Ok);
            ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
        }
        None => fake.error(
            StatusCode::NOT_FOUND,
            "Not Found: file not found".to_owned(),
        ),
    }
}

async fn stats(State(fake): State<Arc<Fake>>) -> Json<Value> {
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let bucket = TokenBucket::new(fake.cfg.rate_per_sec, fake.cfg.burst);
    let mut v = json!(fake.quota.snapshot(&bucket));
    let f = &fake.flood;
    v["flood_waits"] = json!(g(&f.flood_waits));
    v["violations"] = json!(g(&f.violations));
    v["in_flight_429"] = json!(g(&f.in_flight));
    v["unauthorized"] = json!(g(&f.unauthorized));
    v["calls"] = json!({"getChat": g(&f.chat), "getHistory": g(&f.history), "files": g(&f.files)});
    v["flood_wait_secs"] = json!(fake.cfg.flood_wait_secs);
    v["grace_ms"] = json!(fake.cfg.grace.as_millis() as u64);
    v["clients"] = json!(fake.clients.lock().map(|c| c.len()).unwrap_or(0));
    Json(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_with_gaps_and_photos() {
        let a = Directory::new(vec![ChannelSpec::new("alpha_news", 500)]);
        let b = Directory::new(vec![ChannelSpec::new("alpha_news", 500)]);
        let (ca, cb) = (
            a.channel("@Alpha_News").expect("found"),
            b.channel("alpha_news").expect("found"),
        );
        assert_eq!(ca.messages(), cb.messages());
        assert_eq!(ca.ids().len(), 500);
        assert!(ca.ids().last().copied().unwrap_or(0) > 500, "ids have gaps");
        let photos = ca
            .ids()
            .iter()
            .filter(|id| ca.photo(**id).is_some())
            .count();
        assert!((30..=120).contains(&photos), "{photos} photos");
        let page = ca.history(0, 100);
        assert_eq!(page.len(), 100);
        let last = page[99]["message_id"].as_u64().unwrap_or(0);
        assert_eq!(ca.history(last, 100)[0]["message_id"], ca.ids()[100]);
    }

    #[test]
    fn photos_are_pngs_of_the_advertised_size() {
        let d = Directory::new(vec![ChannelSpec::new("pics", 50).photos(1000)]);
        let c = d.channel("pics").expect("found");
        let id = c.ids()[3];
        let msg = c.message(id);
        let bytes = c.photo(id).expect("a photo");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(msg["photo"][0]["file_size"], bytes.len());
        assert_eq!(
            msg["photo"][0]["file_path"],
            format!("photos/pics/{id}.png")
        );
    }
}
