//! The workbench over plain HTTP: sign-in redirects, the session cookie, CSRF refusals,
//! sign-out, and the headers of pages and assets. The browser tests (`browser.rs`) do the
//! work as a person would; these check what a browser does not show.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Signs in through the form; returns the `Cookie` header value.
async fn sign_in(app: &TestApp, http: &reqwest::Client, username: &str) -> String {
    let res = http
        .post(app.url("/login"))
        .form(&[("username", username), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/");
    let cookie = res.headers()[SET_COOKIE]
        .to_str()
        .expect("cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "served over plain HTTP: {cookie}"
    );
    cookie.split(';').next().expect("name=value").to_owned()
}

/// The CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with the CSRF token");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("end of the token")].to_owned()
}

#[tokio::test]
async fn a_page_without_a_session_goes_to_sign_in() {
    let app = TestApp::spawn().await;
    let http = no_redirects();
    for path in ["/", "/cases/2026120200001"] {
        let res = http.get(app.url(path)).send().await.expect("GET");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[LOCATION], "/login", "{path}");
    }
    // htmx (the polled counts) is told to leave the page rather than swap the form in.
    let res = http
        .get(app.url("/"))
        .header("hx-request", "true")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["hx-redirect"], "/login");
    let res = http
        .get(app.url("/"))
        .header(COOKIE, "minqing_session=0123456789abcdef")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "an unknown session");
}

#[tokio::test]
async fn a_page_command_without_the_session_s_csrf_token_does_nothing() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let id = app.accept(&operator, "CSRF 检查").await;
    let transferred = app
        .ok(
            &dispatcher,
            &id,
            "transfer",
            &json!({ "lead_unit_id": "city.bureau.housing" }),
        )
        .await;
    let http = no_redirects();
    let cookie = sign_in(&app, &http, "housing_handler").await;
    let page = http
        .get(app.url(&format!("/cases/{id}")))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("case page")
        .text()
        .await
        .expect("html");
    let csrf = csrf_of(&page);
    let version = transferred.version.to_string();
    for sent in [None, Some("0".repeat(csrf.len()))] {
        let mut form = vec![
            ("action", "receive".to_owned()),
            ("version", version.clone()),
        ];
        if let Some(token) = &sent {
            form.push(("csrf", token.clone()));
        }
        let res = http
            .post(app.url(&format!("/cases/{id}")))
            .header(COOKIE, &cookie)
            .form(&form)
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{sent:?}");
        let body = res.text().await.expect("html");
        assert!(body.contains("请刷新页面后重试"), "{body}");
    }
    assert_eq!(
        app.version(&id).await,
        transferred.version,
        "nothing was done"
    );
    // Sign-out needs it too.
    let res = http
        .post(app.url("/logout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", "nope")])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The token in the header works as in the form (htmx sends it so).
    let res = http
        .post(app.url(&format!("/cases/{id}")))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .form(&[("action", "receive"), ("version", version.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.version(&id).await, transferred.version + 1);
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let http = no_redirects();
    let cookie = sign_in(&app, &http, "operator").await;
    let page = http
        .get(app.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("work lists");
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_of(&page.text().await.expect("html"));
    let res = http
        .post(app.url("/logout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("sign out");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()[SET_COOKIE]
            .to_str()
            .expect("cookie")
            .contains("Max-Age=0")
    );
    let res = http
        .get(app.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "the session is over");
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_assets_a_long_cache() {
    let app = TestApp::spawn().await;
    let http = no_redirects();
    let res = http
        .get(app.url("/login"))
        .send()
        .await
        .expect("login page");
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    let html = res.text().await.expect("html");
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    let assets: Vec<&str> = html
        .split('"')
        .filter(|part| part.starts_with("/assets/"))
        .collect();
    assert_eq!(assets.len(), 3, "icon, stylesheet, htmx: {assets:?}");
    for asset in assets {
        let res = http.get(app.url(asset)).send().await.expect("asset");
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
        assert_eq!(
            res.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "{asset}"
        );
    }
    let res = http
        .get(app.url("/assets/minqing-0000000000000000.css"))
        .send()
        .await
        .expect("asset");
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "an outdated name");
}
