//! The dashboard: one HTML page with its stylesheet and script, embedded in the binary (no
//! front-end build), and the server-sent-events stream that keeps it live.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::hub::Frame;
use crate::model::{ErrorBody, Snapshot};
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../dashboard/index.html");
const DASHBOARD_CSS: &str = include_str!("../dashboard/dashboard.css");
const DASHBOARD_JS: &str = include_str!("../dashboard/dashboard.js");

/// Only our own script, style and connections; no framing (the page has action buttons).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(stylesheet))
        .routes(routes!(script))
        .routes(routes!(events))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

/// The dashboard page.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    responses((status = 200, description = "The dashboard", content_type = "text/html", body = String))
)]
async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// The dashboard's stylesheet.
#[utoipa::path(
    get,
    path = "/assets/dashboard.css",
    tag = "dashboard",
    responses((status = 200, description = "CSS", content_type = "text/css", body = String))
)]
async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", DASHBOARD_CSS)
}

/// The dashboard's script.
#[utoipa::path(
    get,
    path = "/assets/dashboard.js",
    tag = "dashboard",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript", body = String))
)]
async fn script() -> Response {
    asset("text/javascript; charset=utf-8", DASHBOARD_JS)
}

/// Live fleet snapshots as server-sent events: an event `snapshot` with a [`Snapshot`] as JSON
/// right away and then every snapshot interval (about 1 s), plus keep-alive comments.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "dashboard",
    responses(
        (status = 200, description = "`event: snapshot` frames, `data:` a Snapshot as JSON", content_type = "text/event-stream", body = Snapshot),
        (status = 401, description = "Missing or wrong API token (with --protect-reads)", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.hub().subscribe(&state);
    let shutdown = state.shutdown().clone();
    let frames = futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            rx.changed().await.ok()?;
        }
        loop {
            let frame: Option<Frame> = rx.borrow_and_update().clone();
            if let Some(frame) = frame {
                let event = Event::default().event("snapshot").data(frame.as_str());
                return Some((Ok(event), (rx, false)));
            }
            rx.changed().await.ok()?;
        }
    });
    Sse::new(frames.take_until(shutdown.cancelled_owned()))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
