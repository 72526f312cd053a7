//! The workbench's static files, compiled into the binary: htmx (vendored, pinned) and our
//! stylesheet. Each is served under a name that changes with its content (htmx by its
//! version, the stylesheet by a hash of its bytes), so browsers may keep them for a year.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The vendored htmx version (`src/web/assets/htmx-VERSION.min.js`, from the npm registry's
/// `htmx.org` package; its licence, 0BSD, beside it).
pub const HTMX_VERSION: &str = "2.0.11";
const HTMX: &[u8] = include_bytes!("assets/htmx-2.0.11.min.js");
const HTMX_LICENSE: &[u8] = include_bytes!("assets/htmx-LICENSE.txt");
const CSS: &[u8] = include_bytes!("assets/minqing.css");
/// The tab's icon: 民 on the brand's blue (our own, a few bytes).
const ICON: &[u8] = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#0b5cad"/><text x="16" y="23" font-size="20" text-anchor="middle" fill="#fff">民</text></svg>"##.as_bytes();

/// Where pages load the icon from (also answered at `/favicon.ico`).
pub const ICON_URL: &str = "/assets/favicon-1.svg";

/// 64-bit FNV-1a of `bytes`, computed at compile time for the stylesheet's name.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

const CSS_HASH: u64 = fnv1a(CSS);

/// Where pages load the stylesheet from: `/assets/minqing-<hash>.css`.
pub static CSS_URL: LazyLock<String> =
    LazyLock::new(|| format!("/assets/minqing-{:016x}.css", CSS_HASH));
/// Where pages load htmx from: `/assets/htmx-<version>.min.js`.
pub static HTMX_URL: LazyLock<String> =
    LazyLock::new(|| format!("/assets/htmx-{HTMX_VERSION}.min.js"));

/// `GET /assets/{name}`: a file by its versioned name, cached for a year (`immutable`);
/// any other name is 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    let path = format!("/assets/{name}");
    let (body, content_type, immutable) = if path == *CSS_URL {
        (CSS, "text/css; charset=utf-8", true)
    } else if path == *HTMX_URL {
        (HTMX, "text/javascript; charset=utf-8", true)
    } else if path == ICON_URL {
        (ICON, "image/svg+xml", true)
    } else if name == "htmx-LICENSE.txt" {
        (HTMX_LICENSE, "text/plain; charset=utf-8", false)
    } else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=86400"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

/// `GET /favicon.ico`: browsers ask for it whatever the page says; the same icon.
pub async fn favicon() -> Response {
    asset(Path("favicon-1.svg".to_owned())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stylesheet_s_name_changes_with_its_content() {
        assert_ne!(fnv1a(b"a{}"), fnv1a(b"b{}"));
        assert!(CSS_URL.starts_with("/assets/minqing-") && CSS_URL.ends_with(".css"));
        assert!(HTMX.starts_with(b"var htmx") || HTMX.len() > 40_000);
    }
}
