//! Page sessions: the bearer session of `directory` carried in a cookie, and the CSRF token
//! derived from it.
//!
//! The cookie holds the same token `POST /api/v1/auth/login` hands out, opened by the same
//! `access::Access::login` (lock-out, bounded hashing, audit): one session store, one login
//! path. It is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends
//! it) and `Path=/`; `Secure` with `--secure-cookies` (the service speaks plain HTTP itself;
//! behind a TLS proxy it should be set, see decision 0011). A session lasts at most what every
//! session lasts ([`Directory::session_ttl`], 12 hours from sign-in) and ends earlier after
//! `--session-idle-minutes` without the user's activity; a page's own polling (requests
//! carrying [`POLL_HEADER`]) does not count as activity.
//!
//! A user whose password was handed out (`User::must_change_password`) reaches only the
//! password page and sign-out until it is changed.
//!
//! The sign-in form has a CSRF token of its own (login CSRF: another site must not sign a
//! browser into an account of its choosing): a random value in a short-lived `SameSite=Strict`
//! cookie that the form must repeat.

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
/// The header a page's own periodic refresh sends (`hx-headers` on the polling element):
/// such a request is not the user's activity and does not hold the session open.
pub const POLL_HEADER: &str = "x-minqing-poll";
/// The sign-in form's CSRF cookie.
pub const LOGIN_COOKIE: &str = "minqing_login";
/// The pages a user who must change the password may still reach.
pub const PASSWORD_PAGE: &str = "/account/password";
const REACHABLE_BEFORE_CHANGE: &[&str] = &[PASSWORD_PAGE, "/logout"];

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
    cookie(headers, COOKIE)
}

/// The value of the cookie `name` in `headers`, if it is there and plain (letters, digits).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `Set-Cookie` for `name=value`, `HttpOnly`, `SameSite=Strict`, `Secure` when asked.
fn cookie_header(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("minqing_session=; Path=/; Max-Age=0"))
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(token: &str, secure: bool) -> HeaderValue {
    cookie_header(COOKIE, token, Directory::session_ttl().as_secs(), secure)
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    cookie_header(COOKIE, "", 0, secure)
}

/// `Set-Cookie` for the sign-in form's CSRF token (an hour to fill in the form).
pub fn set_login_cookie(token: &str, secure: bool) -> HeaderValue {
    cookie_header(LOGIN_COOKIE, token, 3600, secure)
}

/// `Set-Cookie` that removes the sign-in form's cookie (once signed in).
pub fn clear_login_cookie(secure: bool) -> HeaderValue {
    cookie_header(LOGIN_COOKIE, "", 0, secure)
}

/// A new random token for the sign-in form (hex of 16 bytes from the OS).
pub fn new_login_token() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether the sign-in form's `sent` token is the one its cookie holds.
pub fn login_csrf_ok(headers: &HeaderMap, sent: Option<&str>) -> bool {
    match (cookie(headers, LOGIN_COOKIE), sent) {
        (Some(held), Some(sent)) => same(held.as_bytes(), sent.as_bytes()),
        _ => false,
    }
}

/// Whether htmx sent the request (`HX-Request: true`).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

/// To the sign-in page: a redirect for a browser, `HX-Redirect` for htmx (which would
/// otherwise swap the sign-in page into a fragment).
pub fn to_login(headers: &HeaderMap) -> Response {
    to_page(headers, "/login")
}

/// To `path`: a redirect for a browser, `HX-Redirect` for htmx.
fn to_page(headers: &HeaderMap, path: &'static str) -> Response {
    if is_htmx(headers) {
        (StatusCode::OK, [("hx-redirect", path)]).into_response()
    } else {
        Redirect::to(path).into_response()
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
        let activity = !parts.headers.contains_key(POLL_HEADER);
        let idle = state.access.session_idle();
        let user = match state.directory.authenticate_active(&token, idle, activity) {
            Some(user) => user,
            None => {
                // Perhaps a session another instance opened a moment ago.
                state.app.caught_up_with_others().await;
                state
                    .directory
                    .authenticate_active(&token, idle, activity)
                    .ok_or_else(|| to_login(&parts.headers))?
            }
        };
        if user.must_change_password && !REACHABLE_BEFORE_CHANGE.contains(&parts.uri.path()) {
            return Err(to_page(&parts.headers, PASSWORD_PAGE));
        }
        let csrf = csrf_of(&token);
        Ok(Session {
            user: User::clone(&user),
            token,
            csrf,
        })
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
        let cookie = set_cookie("abc", false);
        let cookie = cookie.to_str().expect("ascii");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("Path=/") && !cookie.contains("Secure"));
        let secure = set_cookie("abc", true);
        assert!(secure.to_str().expect("ascii").ends_with("; Secure"));
        assert!(
            clear_cookie(true)
                .to_str()
                .expect("ascii")
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn the_sign_in_form_s_token_must_match_its_cookie() {
        let token = new_login_token().expect("random");
        let mut headers = HeaderMap::new();
        assert!(!login_csrf_ok(&headers, Some(&token)), "no cookie");
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{LOGIN_COOKIE}={token}")).expect("header"),
        );
        assert!(login_csrf_ok(&headers, Some(&token)));
        assert!(!login_csrf_ok(&headers, Some("0000")));
        assert!(!login_csrf_ok(&headers, None));
    }
}
