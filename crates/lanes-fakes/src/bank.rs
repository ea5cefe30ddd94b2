//! A bank portal, as a bank-account bot meets it: a login form with a CSRF token bound to a
//! cookie, a session cookie, a one-time-code (TOTP) step for some accounts, a paginated
//! transactions table, a slow page and a transient 500 on some accounts, and lock-out after
//! repeated bad passwords. It counts logins and concurrent sessions per account, so tests can
//! prove that no two bots ever worked one account at once.
//!
//! Pages are the templates under `fixtures/bank/` (an embedded copy is used when the directory
//! is missing). Every account id is an account; its data is derived from the id alone:
//! - transactions: [`transactions`] (deposits and other types, [`PAGE_SIZE`] per page);
//! - traits by name: an id containing `otp` asks for a one-time code, `slow` serves its second
//!   page after [`SLOW_PAGE`], `flaky` answers the first request for its second page with 500;
//! - credentials: [`default_credentials`], replaceable with `PUT /bank/_accounts/{id}`.
//!
//! Routes (under `/bank`): `GET /login`, `POST /login`, `GET /otp`, `POST /otp`,
//! `GET /transactions?page=N`, `POST /logout`; test hooks `GET /_stats`,
//! `GET /_accounts/{id}` (profile and expected deposits), `PUT /_accounts/{id}`,
//! `POST /_accounts/{id}/unlock`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::FakesConfig;

/// Transactions per page.
pub const PAGE_SIZE: usize = 10;
/// Bad passwords in a row that lock an account.
pub const LOCK_AFTER: u32 = 3;
/// How long the second transactions page of a `slow` account takes.
pub const SLOW_PAGE: Duration = Duration::from_millis(1500);
/// A session unused this long no longer counts as open.
pub const SESSION_IDLE: Duration = Duration::from_secs(30);
/// TOTP step (RFC 6238 defaults: 30 s, 6 digits, HMAC-SHA1).
pub const OTP_STEP: u64 = 30;

const PRE_COOKIE: &str = "bank_pre";
const SESSION_COOKIE: &str = "bank_session";

/// What kind of transaction a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    Deposit,
    Withdrawal,
    CardPayment,
    Fee,
    TransferOut,
}

impl TxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::CardPayment => "card_payment",
            Self::Fee => "fee",
            Self::TransferOut => "transfer_out",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Deposit => "Deposit",
            Self::Withdrawal => "Withdrawal",
            Self::CardPayment => "Card payment",
            Self::Fee => "Fee",
            Self::TransferOut => "Transfer out",
        }
    }
}

/// One row of an account's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub kind: TxKind,
    pub description: String,
    /// Signed amount in cents: deposits positive, the rest negative.
    pub amount_cents: i64,
    pub currency: String,
}

/// How an account behaves, derived from its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub otp: bool,
    pub slow: bool,
    pub flaky: bool,
    pub transactions: usize,
    pub pages: usize,
}

/// An account's portal credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// TOTP secret (raw bytes of this string), for accounts asked for a one-time code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_seed: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .field("otp_seed", &self.otp_seed.as_ref().map(|_| "***"))
            .finish()
    }
}

/// FNV-1a: a stable hash (the same on every machine and build), for deterministic data.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A small deterministic generator (splitmix64).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The account's traits and statement size.
pub fn profile(account: &str) -> Profile {
    let n = 23 + (fnv(account) % 25) as usize;
    Profile {
        otp: account.contains("otp"),
        slow: account.contains("slow"),
        flaky: account.contains("flaky"),
        transactions: n,
        pages: n.div_ceil(PAGE_SIZE),
    }
}

/// The credentials the portal accepts for an account unless replaced.
pub fn default_credentials(account: &str) -> Credentials {
    Credentials {
        username: account.to_owned(),
        password: format!("pw-{account}-{:04x}", fnv(account) & 0xffff),
        otp_seed: profile(account)
            .otp
            .then(|| format!("seed-{account}-{:08x}", fnv(account) >> 32)),
    }
}

/// Every transaction of an account, newest first: the same list for the same id, always.
pub fn transactions(account: &str) -> Vec<Transaction> {
    const DEPOSITS: [&str; 5] = [
        "Salary ACME Corp",
        "Cash deposit",
        "Incoming transfer",
        "Refund",
        "Interest",
    ];
    const OTHERS: [&str; 6] = [
        "Grocery store",
        "Rent",
        "ATM withdrawal",
        "Monthly fee",
        "Online shop",
        "Utilities",
    ];
    let p = profile(account);
    let mut rng = Mix(fnv(account));
    let tag = format!("{:06X}", fnv(account) & 0xff_ffff);
    let mut out: Vec<Transaction> = (0..p.transactions)
        .map(|i| {
            let kind = match rng.below(10) {
                0..=3 => TxKind::Deposit,
                4 => TxKind::Withdrawal,
                5..=7 => TxKind::CardPayment,
                8 => TxKind::Fee,
                _ => TxKind::TransferOut,
            };
            let cents = match kind {
                TxKind::Deposit => 1_000 + rng.below(500_000) as i64,
                TxKind::Fee => -(100 + rng.below(2_000) as i64),
                _ => -(500 + rng.below(200_000) as i64),
            };
            let description = match kind {
                TxKind::Deposit => DEPOSITS[rng.below(DEPOSITS.len() as u64) as usize],
                _ => OTHERS[rng.below(OTHERS.len() as u64) as usize],
            };
            // One transaction per day, walking back from 2025-12-31 (day 364 of 2025).
            let day = 364 - (i as u32 * 3 + rng.below(3) as u32) % 365;
            Transaction {
                id: format!("TX-{tag}-{:04}", p.transactions - i),
                date: date_2025(day),
                kind,
                description: description.to_owned(),
                amount_cents: cents,
                currency: "EUR".into(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| b.id.cmp(&a.id)));
    out
}

/// The account's deposits (what a bot should collect), newest first.
pub fn deposits(account: &str) -> Vec<Transaction> {
    transactions(account)
        .into_iter()
        .filter(|t| t.kind == TxKind::Deposit)
        .collect()
}

/// `YYYY-MM-DD` of day `d` (0-based) of 2025.
fn date_2025(d: u32) -> String {
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut d = d.min(364);
    let mut month = 0;
    while d >= DAYS[month] {
        d -= DAYS[month];
        month += 1;
    }
    format!("2025-{:02}-{:02}", month + 1, d + 1)
}

/// The one-time code for `seed` at unix time `t` (RFC 6238: 30 s, 6 digits, HMAC-SHA1).
pub fn otp_code(seed: &str, t: u64) -> String {
    totp_lite::totp_custom::<totp_lite::Sha1>(OTP_STEP, 6, seed.as_bytes(), t)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Per-account counters, as `GET /bank/_stats` shows them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountStats {
    /// Successful password logins.
    pub logins: u64,
    pub failed_logins: u64,
    pub otp_failures: u64,
    /// Sessions open now (logged in, not logged out, used within the idle timeout).
    pub active_sessions: u64,
    /// Most sessions open at once.
    pub peak_sessions: u64,
    /// Times the account was locked.
    pub lockouts: u64,
    pub locked: bool,
    pub pages_served: u64,
    /// 500s served (the transient error of `flaky` accounts).
    pub errors_served: u64,
}

#[derive(Debug, Default)]
struct Account {
    stats: AccountStats,
    failed_streak: u32,
    served_flaky_error: bool,
}

#[derive(Debug)]
struct Session {
    account: String,
    authed: bool,
    csrf: String,
    open: bool,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct Bank {
    accounts: HashMap<String, Account>,
    /// Replaced credentials, by account id.
    creds: HashMap<String, Credentials>,
    /// Pre-login cookie → CSRF token of the login form it was served with.
    pre: HashMap<String, String>,
    sessions: HashMap<String, Session>,
}

impl Bank {
    fn account(&mut self, id: &str) -> &mut Account {
        self.accounts.entry(id.to_owned()).or_default()
    }

    fn credentials(&self, account: &str) -> Credentials {
        self.creds
            .get(account)
            .cloned()
            .unwrap_or_else(|| default_credentials(account))
    }

    /// The account a username belongs to: a replaced username, else the id itself.
    fn account_of(&self, username: &str) -> Option<String> {
        if let Some((id, _)) = self.creds.iter().find(|(_, c)| c.username == username) {
            return Some(id.clone());
        }
        let valid = !username.is_empty()
            && username.len() <= 64
            && username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        (valid && !self.creds.contains_key(username)).then(|| username.to_owned())
    }

    fn active_sessions(&self, account: &str) -> u64 {
        self.sessions
            .values()
            .filter(|s| s.account == account && s.open && s.last_seen.elapsed() < SESSION_IDLE)
            .count() as u64
    }

    fn stats(&self) -> HashMap<String, AccountStats> {
        self.accounts
            .iter()
            .map(|(id, a)| {
                let mut s = a.stats.clone();
                s.active_sessions = self.active_sessions(id);
                (id.clone(), s)
            })
            .collect()
    }
}

#[derive(Clone)]
struct BankState {
    bank: Arc<Mutex<Bank>>,
    pages: Arc<Pages>,
}

impl BankState {
    fn with<T>(&self, f: impl FnOnce(&mut Bank) -> T) -> T {
        let mut bank = self.bank.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut bank)
    }
}

struct Pages {
    login: String,
    otp: String,
    transactions: String,
    error: String,
}

impl Pages {
    fn load(dir: &Path) -> Self {
        let read = |name: &str, embedded: &str| {
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|_| embedded.to_owned())
        };
        Self {
            login: read(
                "login.html",
                include_str!("../../../fixtures/bank/login.html"),
            ),
            otp: read("otp.html", include_str!("../../../fixtures/bank/otp.html")),
            transactions: read(
                "transactions.html",
                include_str!("../../../fixtures/bank/transactions.html"),
            ),
            error: read(
                "error.html",
                include_str!("../../../fixtures/bank/error.html"),
            ),
        }
    }
}

/// Fills `{{name}}` placeholders; values are inserted as given (callers escape text).
fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(resp: &mut Response, name: &str, value: &str) {
    let c = format!("{name}={value}; Path=/bank; HttpOnly; SameSite=Lax");
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn clear_cookie(resp: &mut Response, name: &str) {
    let c = format!("{name}=; Path=/bank; HttpOnly; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn error_page(st: &BankState, status: StatusCode, code: &str, message: &str) -> Response {
    let body = render(
        &st.pages.error,
        &[
            ("status", status.as_str()),
            ("code", code),
            ("message", &escape(message)),
        ],
    );
    (status, Html(body)).into_response()
}

/// The bank fake's routes.
pub fn router(cfg: &FakesConfig) -> Router {
    let st = BankState {
        bank: Arc::new(Mutex::new(Bank::default())),
        pages: Arc::new(Pages::load(&cfg.fixtures.join("bank"))),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/bank/login") }))
        .route("/login", get(login_page).post(login))
        .route("/otp", get(otp_page).post(otp))
        .route("/transactions", get(transactions_page))
        .route("/logout", post(logout))
        .route("/_stats", get(stats))
        .route("/_accounts/{id}", get(account_info).put(set_credentials))
        .route("/_accounts/{id}/unlock", post(unlock))
        .with_state(st)
}

fn login_form(st: &BankState, status: StatusCode, error: Option<(&str, &str)>) -> Response {
    let pre = token();
    let csrf = token();
    st.with(|b| {
        // Bounded: forget the oldest half when many forms were served and never submitted.
        if b.pre.len() > 10_000 {
            b.pre.clear();
        }
        b.pre.insert(pre.clone(), csrf.clone());
    });
    let error = error.map_or(String::new(), |(code, msg)| {
        format!(
            r#"<p class="error" data-error="{code}">{}</p>"#,
            escape(msg)
        )
    });
    let body = render(&st.pages.login, &[("csrf", &csrf), ("error", &error)]);
    let mut resp = (status, Html(body)).into_response();
    set_cookie(&mut resp, PRE_COOKIE, &pre);
    resp
}

async fn login_page(State(st): State<BankState>) -> Response {
    login_form(&st, StatusCode::OK, None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

enum LoginOutcome {
    Csrf,
    Unknown,
    Locked,
    Bad { now_locked: bool },
    Ok { sid: String, otp: bool },
}

async fn login(
    State(st): State<BankState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let pre = cookie(&headers, PRE_COOKIE);
    let outcome = st.with(|b| {
        let expected = pre.as_ref().and_then(|p| b.pre.remove(p));
        if expected.is_none() || expected.as_deref() != Some(f.csrf_token.as_str()) {
            return LoginOutcome::Csrf;
        }
        let Some(account) = b.account_of(&f.username) else {
            return LoginOutcome::Unknown;
        };
        let creds = b.credentials(&account);
        let a = b.account(&account);
        if a.stats.locked {
            return LoginOutcome::Locked;
        }
        if creds.password != f.password {
            a.stats.failed_logins += 1;
            a.failed_streak += 1;
            let now_locked = a.failed_streak >= LOCK_AFTER;
            if now_locked {
                a.stats.locked = true;
                a.stats.lockouts += 1;
            }
            return LoginOutcome::Bad { now_locked };
        }
        a.failed_streak = 0;
        a.stats.logins += 1;
        let otp = profile(&account).otp;
        let sid = token();
        b.sessions
            .retain(|_, s| s.open && s.last_seen.elapsed() < SESSION_IDLE * 4);
        b.sessions.insert(
            sid.clone(),
            Session {
                account: account.clone(),
                authed: !otp,
                csrf: token(),
                open: true,
                last_seen: Instant::now(),
            },
        );
        let active = b.active_sessions(&account);
        let a = b.account(&account);
        a.stats.peak_sessions = a.stats.peak_sessions.max(active);
        LoginOutcome::Ok { sid, otp }
    });
    match outcome {
        LoginOutcome::Csrf => error_page(
            &st,
            StatusCode::FORBIDDEN,
            "csrf",
            "Your session expired or the form was tampered with. Please sign in again.",
        ),
        LoginOutcome::Unknown | LoginOutcome::Bad { now_locked: false } => login_form(
            &st,
            StatusCode::UNAUTHORIZED,
            Some(("invalid_credentials", "Invalid username or password.")),
        ),
        LoginOutcome::Locked | LoginOutcome::Bad { now_locked: true } => error_page(
            &st,
            StatusCode::FORBIDDEN,
            "locked",
            "This account is locked after too many failed sign-in attempts. Call your branch.",
        ),
        LoginOutcome::Ok { sid, otp } => {
            let to = if otp { "otp" } else { "transactions?page=1" };
            let mut resp = Redirect::to(to).into_response();
            set_cookie(&mut resp, SESSION_COOKIE, &sid);
            clear_cookie(&mut resp, PRE_COOKIE);
            resp
        }
    }
}

/// The session of a request, touched; `None` when missing, logged out or idle too long.
fn session(st: &BankState, headers: &HeaderMap) -> Option<(String, String, bool, String)> {
    let sid = cookie(headers, SESSION_COOKIE)?;
    st.with(|b| {
        let s = b.sessions.get_mut(&sid)?;
        if !s.open || s.last_seen.elapsed() >= SESSION_IDLE {
            s.open = false;
            return None;
        }
        s.last_seen = Instant::now();
        Some((sid.clone(), s.account.clone(), s.authed, s.csrf.clone()))
    })
}

async fn otp_page(State(st): State<BankState>, headers: HeaderMap) -> Response {
    match session(&st, &headers) {
        None => Redirect::to("login").into_response(),
        Some((_, _, true, _)) => Redirect::to("transactions?page=1").into_response(),
        Some((_, _, false, csrf)) => {
            Html(render(&st.pages.otp, &[("csrf", &csrf), ("error", "")])).into_response()
        }
    }
}

#[derive(Deserialize)]
struct OtpForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    code: String,
}

async fn otp(State(st): State<BankState>, headers: HeaderMap, Form(f): Form<OtpForm>) -> Response {
    let Some((sid, account, authed, csrf)) = session(&st, &headers) else {
        return Redirect::to("login").into_response();
    };
    if authed {
        return Redirect::to("transactions?page=1").into_response();
    }
    if f.csrf_token != csrf {
        return error_page(
            &st,
            StatusCode::FORBIDDEN,
            "csrf",
            "The form was tampered with.",
        );
    }
    let seed = st
        .with(|b| b.credentials(&account).otp_seed)
        .unwrap_or_default();
    let now = unix_now();
    // The current step and the one before it, as authenticator servers allow for clock skew.
    let ok = !seed.is_empty()
        && [now, now.saturating_sub(OTP_STEP)]
            .iter()
            .any(|t| otp_code(&seed, *t) == f.code.trim());
    if !ok {
        st.with(|b| b.account(&account).stats.otp_failures += 1);
        let body = render(
            &st.pages.otp,
            &[
                ("csrf", &csrf),
                (
                    "error",
                    r#"<p class="error" data-error="invalid_code">That code is not valid.</p>"#,
                ),
            ],
        );
        return (StatusCode::UNAUTHORIZED, Html(body)).into_response();
    }
    st.with(|b| {
        if let Some(s) = b.sessions.get_mut(&sid) {
            s.authed = true;
        }
    });
    Redirect::to("transactions?page=1").into_response()
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<usize>,
}

async fn transactions_page(
    State(st): State<BankState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some((_, account, authed, csrf)) = session(&st, &headers) else {
        return Redirect::to("login").into_response();
    };
    if !authed {
        return Redirect::to("otp").into_response();
    }
    let p = profile(&account);
    let page = q.page.unwrap_or(1).clamp(1, p.pages.max(1));
    if page == 2 && p.flaky {
        let first = st.with(|b| {
            let a = b.account(&account);
            let first = !a.served_flaky_error;
            if first {
                a.served_flaky_error = true;
                a.stats.errors_served += 1;
            }
            first
        });
        if first {
            return error_page(
                &st,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "The statement service is temporarily unavailable. Try again later.",
            );
        }
    }
    if page == 2 && p.slow {
        tokio::time::sleep(SLOW_PAGE).await;
    }
    let all = transactions(&account);
    let rows: String = all
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|t| {
            format!(
                "<tr data-txid=\"{}\" data-kind=\"{}\" data-amount-cents=\"{}\" data-currency=\"{}\"><td class=\"date\">{}</td><td class=\"type\">{}</td><td class=\"description\">{}</td><td class=\"amount\">{}{}.{:02} {}</td></tr>\n",
                escape(&t.id),
                t.kind.as_str(),
                t.amount_cents,
                t.currency,
                t.date,
                t.kind.label(),
                escape(&t.description),
                if t.amount_cents < 0 { "-" } else { "" },
                t.amount_cents.abs() / 100,
                t.amount_cents.abs() % 100,
                t.currency,
            )
        })
        .collect();
    let prev = if page > 1 {
        format!(
            r#"<a rel="prev" href="transactions?page={}">Previous</a>"#,
            page - 1
        )
    } else {
        String::new()
    };
    let next = if page < p.pages {
        format!(
            r#"<a rel="next" href="transactions?page={}">Next</a>"#,
            page + 1
        )
    } else {
        String::new()
    };
    st.with(|b| b.account(&account).stats.pages_served += 1);
    let body = render(
        &st.pages.transactions,
        &[
            ("account", &escape(&account)),
            ("page", &page.to_string()),
            ("pages", &p.pages.to_string()),
            ("rows", &rows),
            ("prev", &prev),
            ("next", &next),
            ("csrf", &csrf),
        ],
    );
    Html(body).into_response()
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

async fn logout(
    State(st): State<BankState>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Some(sid) = cookie(&headers, SESSION_COOKIE) {
        st.with(|b| {
            if let Some(s) = b.sessions.get_mut(&sid)
                && s.csrf == f.csrf_token
            {
                s.open = false;
            }
        });
    }
    let mut resp = Redirect::to("login").into_response();
    clear_cookie(&mut resp, SESSION_COOKIE);
    resp
}

async fn stats(State(st): State<BankState>) -> Json<serde_json::Value> {
    Json(json!({ "accounts": st.with(|b| b.stats()) }))
}

async fn account_info(
    State(st): State<BankState>,
    UrlPath(id): UrlPath<String>,
) -> Json<serde_json::Value> {
    let stats = st.with(|b| b.stats().remove(&id)).unwrap_or_default();
    Json(json!({
        "account_id": id,
        "profile": profile(&id),
        "deposits": deposits(&id),
        "stats": stats,
    }))
}

async fn set_credentials(
    State(st): State<BankState>,
    UrlPath(id): UrlPath<String>,
    Json(creds): Json<Credentials>,
) -> StatusCode {
    st.with(|b| b.creds.insert(id, creds));
    StatusCode::NO_CONTENT
}

async fn unlock(State(st): State<BankState>, UrlPath(id): UrlPath<String>) -> StatusCode {
    st.with(|b| {
        let a = b.account(&id);
        a.stats.locked = false;
        a.failed_streak = 0;
    });
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_deterministic_per_account() {
        assert_eq!(transactions("acct-1"), transactions("acct-1"));
        assert_ne!(transactions("acct-1"), transactions("acct-2"));
        let p = profile("acct-1");
        assert!((23..48).contains(&p.transactions));
        assert_eq!(p.pages, p.transactions.div_ceil(PAGE_SIZE));
        assert!(p.pages >= 3);
        let d = deposits("acct-1");
        assert!(!d.is_empty() && d.len() < p.transactions);
        assert!(d.iter().all(|t| t.amount_cents > 0));
        let mut ids: Vec<_> = transactions("acct-1").into_iter().map(|t| t.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), p.transactions);
    }

    #[test]
    fn traits_come_from_the_id() {
        assert!(profile("acct-otp-1").otp && !profile("acct-1").otp);
        assert!(profile("slow-9").slow && profile("flaky-2").flaky);
        assert!(default_credentials("acct-otp-1").otp_seed.is_some());
        assert!(default_credentials("acct-1").otp_seed.is_none());
        assert!(!format!("{:?}", default_credentials("acct-1")).contains("pw-"));
    }

    #[test]
    fn dates_are_valid() {
        assert_eq!(date_2025(0), "2025-01-01");
        assert_eq!(date_2025(58), "2025-02-28");
        assert_eq!(date_2025(59), "2025-03-01");
        assert_eq!(date_2025(364), "2025-12-31");
    }

    #[test]
    fn otp_codes_follow_rfc_6238() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) → 287082 (6 digits).
        assert_eq!(otp_code("12345678901234567890", 59), "287082");
    }
}
