//! The bank portal at the HTTP level: CSRF bound to the form's cookie, lock-out after repeated
//! bad passwords, sessions required, pages and counters.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use lanes_fakes::FakesConfig;
use lanes_fakes::bank::{LOCK_AFTER, default_credentials, deposits, profile};
use serde_json::Value;
use tower::ServiceExt;

struct Page {
    status: StatusCode,
    location: Option<String>,
    cookies: Vec<String>,
    body: String,
}

async fn send(app: &Router, method: &str, uri: &str, cookie: &str, form: Option<String>) -> Page {
    let mut req = Request::builder().method(method).uri(uri);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f)
        }
        None => Body::empty(),
    };
    let resp = app
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cookies = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    Page {
        status,
        location,
        cookies,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn csrf(body: &str) -> String {
    let field = "name=\"csrf_token\" value=\"";
    let at = body.find(field).expect("a csrf field") + field.len();
    body[at..].split('"').next().unwrap_or("").to_owned()
}

/// Loads the login form and submits it; returns the answer.
async fn login(app: &Router, user: &str, password: &str) -> Page {
    let form = send(app, "GET", "/bank/login", "", None).await;
    assert_eq!(form.status, StatusCode::OK);
    let token = csrf(&form.body);
    send(
        app,
        "POST",
        "/bank/login",
        &form.cookies.join("; "),
        Some(format!(
            "csrf_token={token}&username={user}&password={password}"
        )),
    )
    .await
}

async fn stats(app: &Router, account: &str) -> Value {
    let s = send(app, "GET", "/bank/_stats", "", None).await;
    let v: Value = serde_json::from_str(&s.body).expect("json");
    v["accounts"][account].clone()
}

#[tokio::test]
async fn sign_in_walks_pages_and_counts_sessions() {
    let app = lanes_fakes::app(&FakesConfig::default());
    let account = "acct-http-1";
    let creds = default_credentials(account);
    let ok = login(&app, &creds.username, &creds.password).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("transactions?page=1"));
    let session = ok
        .cookies
        .iter()
        .find(|c| c.starts_with("bank_session="))
        .expect("a session cookie")
        .clone();
    let mut rows = 0;
    for page in 1..=profile(account).pages {
        let p = send(
            &app,
            "GET",
            &format!("/bank/transactions?page={page}"),
            &session,
            None,
        )
        .await;
        assert_eq!(p.status, StatusCode::OK);
        rows += p.body.matches("data-kind=\"deposit\"").count();
    }
    assert_eq!(rows, deposits(account).len());
    let s = stats(&app, account).await;
    assert_eq!(
        (s["logins"].as_u64(), s["active_sessions"].as_u64()),
        (Some(1), Some(1))
    );
    let anonymous = send(&app, "GET", "/bank/transactions?page=1", "", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location.as_deref(), Some("login"));
}

#[tokio::test]
async fn a_forged_form_is_refused() {
    let app = lanes_fakes::app(&FakesConfig::default());
    let creds = default_credentials("acct-http-2");
    let form = send(&app, "GET", "/bank/login", "", None).await;
    let forged = send(
        &app,
        "POST",
        "/bank/login",
        &form.cookies.join("; "),
        Some(format!(
            "csrf_token=forged&username={}&password={}",
            creds.username, creds.password
        )),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("data-error=\"csrf\""));
}

#[tokio::test]
async fn repeated_bad_passwords_lock_the_account() {
    let app = lanes_fakes::app(&FakesConfig::default());
    let account = "acct-http-3";
    for n in 1..LOCK_AFTER {
        let bad = login(&app, account, "wrong").await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED, "attempt {n}");
        assert!(bad.body.contains("data-error=\"invalid_credentials\""));
    }
    let locked = login(&app, account, "wrong").await;
    assert_eq!(locked.status, StatusCode::FORBIDDEN);
    assert!(locked.body.contains("data-error=\"locked\""));
    let right = default_credentials(account);
    let still = login(&app, account, &right.password).await;
    assert_eq!(
        still.status,
        StatusCode::FORBIDDEN,
        "locked even with the right password"
    );
    let s = stats(&app, account).await;
    assert_eq!(
        (s["lockouts"].as_u64(), s["locked"].as_bool()),
        (Some(1), Some(true))
    );
    send(
        &app,
        "POST",
        &format!("/bank/_accounts/{account}/unlock"),
        "",
        None,
    )
    .await;
    let ok = login(&app, account, &right.password).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}
