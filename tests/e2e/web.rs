//! The workbench over plain HTTP: sign-in redirects, the session cookie, CSRF refusals,
//! sign-out, and the headers of pages and assets. The browser tests (`browser.rs`) do the
//! work as a person would; these check what a browser does not show.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// The sign-in form's token and its cookie (`name=value`), as a browser gets them.
pub(crate) async fn login_form(app: &TestApp, http: &reqwest::Client) -> (String, String) {
    let res = http
        .get(app.url("/login"))
        .send()
        .await
        .expect("GET /login");
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = set_cookie_named(&res, "minqing_login").expect("the sign-in form's cookie");
    let html = res.text().await.expect("the form");
    let token = field_value(&html, "login_token");
    (
        token,
        cookie.split(';').next().expect("name=value").to_owned(),
    )
}

/// The `Set-Cookie` of the cookie `name`, whole.
pub(crate) fn set_cookie_named(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Signs in through the form (its token first, as a browser does); returns the `Cookie`
/// header value of the session.
pub(crate) async fn sign_in(app: &TestApp, http: &reqwest::Client, username: &str) -> String {
    let (token, login_cookie) = login_form(app, http).await;
    let res = http
        .post(app.url("/login"))
        .header(COOKIE, login_cookie)
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("login_token", &token),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/");
    let cookie = set_cookie_named(&res, "minqing_session").expect("the session cookie");
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
pub(crate) fn csrf_of(html: &str) -> String {
    field_value(html, "csrf")
}

/// The value of the first form field `name` in a page (`name="…" value="…"`).
pub(crate) fn field_value(html: &str, name: &str) -> String {
    let prefix = format!(r#"name="{name}" value=""#);
    let at = html
        .find(&prefix)
        .unwrap_or_else(|| panic!("no field `{name}` in the page"))
        + prefix.len();
    let rest = &html[at..];
    rest[..rest.find('"').expect("end of the value")].to_owned()
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

#[tokio::test]
async fn a_sign_in_without_the_form_s_own_token_checks_no_password() {
    let app = TestApp::spawn().await;
    let http = no_redirects();
    // Another site's form: no token, no cookie.
    let res = http
        .post(app.url("/login"))
        .form(&[("username", "operator"), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie_named(&res, "minqing_session").is_none());
    assert!(res.text().await.expect("html").contains("登录页面已过期"));
    // The token without its cookie (a page of this site's, posted from elsewhere) neither.
    let (token, _) = login_form(&app, &http).await;
    let res = http
        .post(app.url("/login"))
        .form(&[
            ("username", "operator"),
            ("password", PASSWORD),
            ("login_token", &token),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie_named(&res, "minqing_session").is_none());
    // Nothing was counted against the account: the real form signs in at once.
    sign_in(&app, &http, "operator").await;
}

#[tokio::test]
async fn with_secure_cookies_every_cookie_is_secure() {
    let app = TestApp::spawn_with(&["--secure-cookies"]).await;
    let http = no_redirects();
    let res = http
        .get(app.url("/login"))
        .send()
        .await
        .expect("GET /login");
    let cookie = set_cookie_named(&res, "minqing_login").expect("the form's cookie");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_path_that_is_no_page_answers_a_page_and_under_the_api_problem_json() {
    let app = TestApp::spawn().await;
    let res = app.get(None, "/no/such/page").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .expect("type")
            .starts_with("text/html")
    );
    assert!(res.text().await.expect("html").contains("页面不存在"));
    let res = app.get(None, "/api/v1/no-such-route").await;
    crate::helpers::assert_problem(res, 404, "route_not_found").await;
}

/// Marks `username`'s password as handed out in the stopped service's `users.json`, as an
/// administrator's reset will.
fn hand_out_password(app: &TestApp, username: &str) {
    let path = app.data_dir().join("users.json");
    let mut users: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("users.json")).expect("json");
    for user in &mut users {
        if user["username"] == username {
            user["must_change_password"] = json!(true);
        }
    }
    std::fs::write(&path, serde_json::to_string(&users).expect("json")).expect("write");
}

#[tokio::test]
async fn a_handed_out_password_is_changed_before_anything_else_and_by_the_policy() {
    let mut app = TestApp::spawn().await;
    app.kill_hard();
    hand_out_password(&app, "operator");
    app.restart().await;
    let http = no_redirects();
    let (token, login_cookie) = login_form(&app, &http).await;
    let res = http
        .post(app.url("/login"))
        .header(COOKIE, login_cookie)
        .form(&[
            ("username", "operator"),
            ("password", PASSWORD),
            ("login_token", &token),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/account/password");
    let cookie = set_cookie_named(&res, "minqing_session").expect("session");
    let cookie = cookie.split(';').next().expect("name=value").to_owned();
    // Every other page sends the user back to the password page.
    for path in ["/", "/account", "/cases/2026120200001"] {
        let res = http
            .get(app.url(path))
            .header(COOKIE, &cookie)
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[LOCATION], "/account/password", "{path}");
    }
    // The API holds the same line: who am I and sign-out answer, nothing else.
    let login = app
        .login_with("operator", PASSWORD)
        .await
        .json::<serde_json::Value>()
        .await
        .expect("login");
    assert_eq!(login["user"]["must_change_password"], true, "{login}");
    let bearer = login["token"].as_str().expect("token").to_owned();
    let me = app.get(Some(&bearer), "/api/v1/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    let list = app.get(Some(&bearer), "/api/v1/worklist").await;
    crate::helpers::assert_problem(list, 403, "password_change_required").await;
    let create = app
        .create_case(&bearer, &crate::helpers::intake("改密前受理"))
        .await;
    crate::helpers::assert_problem(create, 403, "password_change_required").await;
    let page = http
        .get(app.url("/account/password"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("password page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("初始密码"), "says why");
    let csrf = csrf_of(&html);
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        http.post(app.url("/account/password"))
            .header(COOKIE, &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("current", current),
                ("new", new),
                ("confirm", confirm),
            ])
            .send()
    };
    for (current, new, confirm, says) in [
        (PASSWORD, "abc12345", "abc12345", "过于常见"),
        (PASSWORD, "short1", "short1", "至少 8 位"),
        (PASSWORD, "Hotline-2026", "Hotline-2027", "不一致"),
        (
            "wrong-password-1",
            "Hotline-2026",
            "Hotline-2026",
            "当前密码不正确",
        ),
    ] {
        let res = change(current, new, confirm).await.expect("POST");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{says}");
        assert!(res.text().await.expect("html").contains(says), "{says}");
    }
    let res = change(PASSWORD, "Hotline-2026", "Hotline-2026")
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/");
    let res = http
        .get(app.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("work lists");
    assert_eq!(res.status(), StatusCode::OK, "free to work now");
    // The old password is gone, the new one signs in, and the change is in the audit.
    assert_eq!(app.login_with("operator", PASSWORD).await.status(), 401);
    assert_eq!(
        app.login_with("operator", "Hotline-2026").await.status(),
        200
    );
    let admin = app.login("admin").await;
    let started = std::time::Instant::now();
    loop {
        let events: serde_json::Value = app
            .get(Some(&admin), "/api/v1/security/events?per_page=100")
            .await
            .json()
            .await
            .expect("json");
        let found = events["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "password_changed" && e["username"] == "operator");
        if found {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no password_changed in {events}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // It survives a restart: the flag is cleared in the file.
    app.kill_hard();
    app.restart().await;
    assert_eq!(
        app.login_with("operator", "Hotline-2026").await.status(),
        200
    );
}
