//! Page sessions: the bearer session of `directory` carried in a cookie, and the CSRF token
//! derived from it.
//!
//! The cookie holds the same token `POST /api/v1/auth/login` hands out, opened by the same
//! `access::Access::login` (lock-out, bounded hashing, audit): one session store, one login
//! path. It is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends
//! it) and `Path=/`; not `Secure`, since the service speaks plain HTTP today (behind a TLS
//! proxy it should be; see decision 0011). A session lasts what every session lasts
//! ([`Directory::session_ttl`], 12 hours from sign-in); there is no sliding idle timeout.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::directory::{Directory, User};

/// The session cookie's name.
pub const COOKIE: &str = "minqing_session";
/// The header htmx sends the CSRF token in (set once per page through `hx-headers`).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Where CSRF tokens are derived from session tokens. Another namespace than the session
/// store's digest, so the stored digest does not give the CSRF token away.
const CSRF_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6d69_6e71_696e_672d_6373_7266_2d76_3100);

/// A signed-in person on a page request.
pub struct Session {
    /// Who.
    pub user: User,
    /// The session token (the cookie's value).
    pub token: String,
    /// The CSRF token every state-changing request of this session must carry.
    pub csrf: String,
}

/// The CSRF token of a session: a digest of its secret token, so it needs no storage and
/// dies with the session.
pub fn csrf_of(token: &str) -> String {
    uuid::Uuid::new_v5(&CSRF_NAMESPACE, token.as_bytes())
        .simple()
        .to_string()
}

/// The value of the session cookie in `headers`, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(token: &str) -> HeaderValue {
    let max_age = Directory::session_ttl().as_secs();
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("minqing_session=; Path=/"))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("minqing_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether htmx sent the request (`HX-Request: true`).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

/// To the sign-in page: a redirect for a browser, `HX-Redirect` for htmx (which would
/// otherwise swap the sign-in page into a fragment).
pub fn to_login(headers: &HeaderMap) -> Response {
    if is_htmx(headers) {
        (StatusCode::OK, [("hx-redirect", "/login")]).into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

impl Session {
    /// Whether `sent` (a form field, else the [`CSRF_HEADER`]) is this session's CSRF token.
    pub fn csrf_ok(&self, headers: &HeaderMap, sent: Option<&str>) -> bool {
        let sent = sent.or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
        sent.is_some_and(|sent| same(sent.as_bytes(), self.csrf.as_bytes()))
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = cookie_token(&parts.headers).ok_or_else(|| to_login(&parts.headers))?;
        let user = state
            .directory
            .authenticate(&token)
            .ok_or_else(|| to_login(&parts.headers))?
            .clone();
        let csrf = csrf_of(&token);
        Ok(Session { user, token, csrf })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_read_among_others_and_never_with_odd_bytes() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; minqing_session=abc123; b=2"),
        );
        assert_eq!(cookie_token(&headers).as_deref(), Some("abc123"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("minqing_session=a\"b"),
        );
        assert_eq!(cookie_token(&headers), None);
    }

    #[test]
    fn the_csrf_token_is_tied_to_the_session_and_is_not_its_stored_digest() {
        assert_eq!(csrf_of("t1"), csrf_of("t1"));
        assert_ne!(csrf_of("t1"), csrf_of("t2"));
        let stored = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, b"t1")
            .simple()
            .to_string();
        assert_ne!(csrf_of("t1"), stored);
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let cookie = set_cookie("abc");
        let cookie = cookie.to_str().expect("ascii");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("Path=/"));
    }
}
