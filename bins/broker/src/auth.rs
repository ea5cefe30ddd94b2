//! Bearer-token checks. With a token configured, every mutating request (POST, PUT, PATCH,
//! DELETE) needs `Authorization: Bearer <token>`, and with `protect_reads` every other request
//! too, except the public ones (the dashboard page and its assets, `/healthz`, `/readyz`,
//! `/openapi.json`). Tokens are compared in constant time.
//!
//! Whatever the token, a mutating request a browser marks as cross-site (`Sec-Fetch-Site`) is
//! refused, so a web page cannot drive an unauthenticated loopback broker.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::state::AppState;

/// Paths anyone may read, whatever `protect_reads` says.
const PUBLIC: [&str; 4] = ["/", "/healthz", "/readyz", "/openapi.json"];

fn is_public(path: &str) -> bool {
    PUBLIC.contains(&path) || path.starts_with("/assets/")
}

fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware enforcing the rules above.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mutating = is_mutating(req.method());
    if mutating
        && req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return AppError::Forbidden("cross-site requests may not change tasks".into())
            .into_response();
    }
    let auth = &state.config().auth;
    let Some(token) = auth.token.as_deref() else {
        return next.run(req).await;
    };
    let needed = mutating || (auth.protect_reads && !is_public(req.uri().path()));
    if !needed {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    match presented {
        None => AppError::Unauthorized(
            "this route needs an API token: send Authorization: Bearer <token>".into(),
        )
        .into_response(),
        Some(p) if !token_matches(p, token) => {
            tracing::warn!(method = %req.method(), path = %req.uri().path(), "wrong API token");
            AppError::Unauthorized("the API token is not valid".into()).into_response()
        }
        Some(_) => next.run(req).await,
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Constant-time in the token's content (the length may show, which does not help a guesser).
fn token_matches(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_and_compared() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
    }

    #[test]
    fn public_paths() {
        assert!(is_public("/"));
        assert!(is_public("/assets/dashboard.js"));
        assert!(!is_public("/api/queues"));
        assert!(!is_public("/metrics"));
        assert!(is_mutating(&Method::DELETE));
        assert!(!is_mutating(&Method::HEAD));
    }
}
