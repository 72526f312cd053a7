//! Issue 10, items 2, 3 and the audit of access: guessing is stopped (lock-out per account
//! and per client address, lifted by an administrator), logins cannot exhaust memory (a
//! bounded number of password hashes, `503 too_busy` beyond), and every login, failure,
//! lock, unlock and logout is a security event administrators and the city's efficiency
//! office can page through.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem};

/// How long security events may take to reach the store (they are written in the
/// background).
const EVENTS_LIMIT: Duration = Duration::from_secs(20);

async fn login_from(
    app: &TestApp,
    username: &str,
    password: &str,
    from: &str,
) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .header("X-Forwarded-For", from)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("send login")
}

async fn delete(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.http
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("send DELETE")
}

/// The `Retry-After` of a 429, checked to be a whole number of seconds within the lock.
fn retry_after(res: &reqwest::Response) -> u64 {
    let secs: u64 = res
        .headers()
        .get("retry-after")
        .expect("a 429 says when to retry")
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("seconds");
    assert!((1..=15 * 60).contains(&secs), "Retry-After {secs}");
    secs
}

/// The security events (newest first) once `done` holds for them, bounded.
async fn events_until(app: &TestApp, token: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + EVENTS_LIMIT;
    loop {
        let res = app
            .get(Some(token), "/api/v1/security/events?per_page=200")
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.expect("events JSON");
        let events = page["events"].as_array().expect("events").clone();
        if done(&events) {
            assert!(page["total"].as_u64().expect("total") >= events.len() as u64);
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "the security events never showed what was expected: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(events: &[Value], kind: &str, username: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == kind && (e["username"] == username || e["lock_key"] == username))
        .count()
}

#[tokio::test]
async fn ten_wrong_passwords_lock_the_account_until_an_administrator_lifts_it() {
    let app = TestApp::spawn().await;
    let admin = app.login("admin").await;
    for i in 0..10 {
        let res = app.login_with("operator", &format!("guess-{i}")).await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    // The right password is refused while the lock holds, and says for how long.
    let res = app.login_with("operator", PASSWORD).await;
    retry_after(&res);
    let locked = assert_problem(res, 429, "login_locked").await;
    assert_eq!(
        locked["title"], "登录失败次数过多，已临时锁定，请稍后再试",
        "{locked}"
    );

    // Administrators see the lock; nobody else does.
    let res = app.get(Some(&admin), "/api/v1/admin/locks").await;
    assert_eq!(res.status(), StatusCode::OK);
    let locks: Value = res.json().await.expect("locks JSON");
    let lock = locks
        .as_array()
        .expect("a list")
        .iter()
        .find(|l| l["kind"] == "account" && l["key"] == "operator")
        .unwrap_or_else(|| panic!("the operator's lock is listed: {locks}"));
    assert_eq!(lock["failures"], 10, "{lock}");
    assert!(
        lock["until"]
            .as_str()
            .is_some_and(|t| t.ends_with("+08:00")),
        "{lock}"
    );
    let dispatcher = app.login("dispatcher").await;
    assert_problem(
        app.get(Some(&dispatcher), "/api/v1/admin/locks").await,
        403,
        "role_not_allowed",
    )
    .await;
    assert_problem(
        delete(&app, &dispatcher, "/api/v1/admin/locks/accounts/operator").await,
        403,
        "role_not_allowed",
    )
    .await;

    // An administrator lifts it; the right password works again.
    let res = delete(&app, &admin, "/api/v1/admin/locks/accounts/operator").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        delete(&app, &admin, "/api/v1/admin/locks/accounts/operator").await,
        404,
        "not_found",
    )
    .await;
    let operator = app.login("operator").await;
    let res = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&operator)
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // The audit of access shows it all, newest first, without a password.
    let events = events_until(&app, &admin, |events| {
        count(events, "logged_out", "operator") == 1
    })
    .await;
    assert_eq!(count(&events, "login_failed", "operator"), 10);
    assert_eq!(count(&events, "login_locked", "operator"), 1);
    assert_eq!(count(&events, "login_unlocked", "operator"), 1);
    assert_eq!(count(&events, "login_succeeded", "operator"), 1);
    assert_eq!(count(&events, "login_succeeded", "admin"), 1);
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["username"] == "operator" || e["lock_key"] == "operator")
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        kinds[..4],
        [
            "logged_out",
            "login_succeeded",
            "login_unlocked",
            "login_locked"
        ],
        "{kinds:?}"
    );
    let unlocked = events
        .iter()
        .find(|e| e["type"] == "login_unlocked")
        .expect("unlocked");
    assert_eq!(unlocked["by"], "admin", "{unlocked}");
    let text = serde_json::to_string(&events).expect("JSON");
    assert!(
        !text.contains("guess-") && !text.contains(PASSWORD),
        "{text}"
    );
    let positions: Vec<u64> = events
        .iter()
        .map(|e| e["position"].as_u64().expect("position"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "newest first");

    // The city's efficiency office reads it too; a district's office and a handler do not.
    let supervisor = app.login("supervisor").await;
    let res = app.get(Some(&supervisor), "/api/v1/security/events").await;
    assert_eq!(res.status(), StatusCode::OK);
    for username in ["chengguan_supervisor", "housing_handler"] {
        let token = app.login(username).await;
        assert_problem(
            app.get(Some(&token), "/api/v1/security/events").await,
            403,
            "role_not_allowed",
        )
        .await;
    }
    // Paging is bounded.
    for query in ["per_page=0", "per_page=201", "page=0", "page=4294967295"] {
        assert_problem(
            app.get(Some(&admin), &format!("/api/v1/security/events?{query}"))
                .await,
            400,
            "invalid_query",
        )
        .await;
    }
    let page = |query: &'static str| {
        let app = &app;
        let admin = &admin;
        async move {
            let res = app
                .get(Some(admin), &format!("/api/v1/security/events?{query}"))
                .await;
            res.json::<Value>().await.expect("page JSON")
        }
    };
    let first = page("per_page=10").await;
    let second = page("page=2&per_page=5").await;
    assert_eq!(
        second["events"].as_array().expect("events").len(),
        5,
        "{second}"
    );
    assert_eq!(
        second["events"][0]["position"],
        first["events"][5]["position"]
    );
}

#[tokio::test]
async fn a_client_address_guessing_many_names_is_locked_and_its_unknown_names_are_counted() {
    let app = TestApp::spawn_with(&["--login-max-failures-per-address", "12"]).await;
    let admin = app.login("admin").await;
    for i in 0..12 {
        let res = app.login_with(&format!("nobody-{i}"), "guess").await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    // Every name from that address is refused now, a real one with its right password too.
    let res = app.login_with("operator", PASSWORD).await;
    retry_after(&res);
    assert_problem(res, 429, "login_locked").await;
    // Forwarded-for headers are not believed from an untrusted peer.
    let res = login_from(&app, "operator", PASSWORD, "10.9.9.9").await;
    assert_problem(res, 429, "login_locked").await;
    let locks: Value = app
        .get(Some(&admin), "/api/v1/admin/locks")
        .await
        .json()
        .await
        .expect("locks JSON");
    assert!(
        locks
            .as_array()
            .expect("list")
            .iter()
            .any(|l| l["kind"] == "address" && l["key"] == "127.0.0.1"),
        "{locks}"
    );

    // The unknown names are counted per address, not written one by one nor named.
    let events = events_until(&app, &admin, |events| {
        events
            .iter()
            .any(|e| e["type"] == "login_locked" && e["lock_kind"] == "address")
    })
    .await;
    let counted: u64 = events
        .iter()
        .filter(|e| e["type"] == "unknown_user_logins_failed" && e["address"] == "127.0.0.1")
        .map(|e| e["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(counted, 12, "{events:?}");
    let text = serde_json::to_string(&events).expect("JSON");
    assert!(!text.contains("nobody-"), "{text}");

    let res = delete(&app, &admin, "/api/v1/admin/locks/addresses/127.0.0.1").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.login("operator").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_counts_on_its_own() {
    let app = TestApp::spawn_with(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--login-max-failures-per-address",
        "3",
    ])
    .await;
    for i in 0..3 {
        let res = login_from(&app, &format!("nobody-{i}"), "guess", "10.0.0.1").await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = login_from(&app, "operator", PASSWORD, "10.0.0.1").await;
    assert_problem(res, 429, "login_locked").await;
    // Another client behind the same proxy is not locked out; a spoofed hop before the
    // proxy's own entry does not change who the client is.
    let res = login_from(&app, "operator", PASSWORD, "10.0.0.1, 10.0.0.2").await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// Wrong passwords from many clients at once (a botnet, one address each): a bounded
/// number of hashes run at once, the others wait briefly or are told to come back; the
/// process's memory stays far below what 64 concurrent argon2 hashes (19 MiB each) take.
#[tokio::test]
async fn a_flood_of_logins_is_answered_too_busy_rather_than_hashed_all_at_once() {
    let app = TestApp::spawn_with(&["--trusted-proxy", "127.0.0.1"]).await;
    let mut tasks = Vec::new();
    // Made-up names cost a hash each, as much as a wrong password of a real account (each
    // account's own lock-out would refuse most of a flood on a few real names at once).
    for i in 0..160u32 {
        let client = app.client();
        let username = format!("flood-{i}");
        tasks.push(tokio::spawn(async move {
            let res = client
                .http
                .post(format!("{}/api/v1/auth/login", client.base))
                .header("X-Forwarded-For", format!("10.1.{}.{}", i / 256, i % 256))
                .json(&json!({ "username": username, "password": format!("guess-{i}") }))
                .send()
                .await
                .expect("an answer");
            let status = res.status().as_u16();
            let retry = res.headers().contains_key("retry-after");
            let body: Value = res.json().await.expect("problem JSON");
            (
                status,
                retry,
                body["type"].as_str().unwrap_or_default().to_owned(),
            )
        }));
    }
    let mut busy = 0;
    for task in tasks {
        let (status, retry, kind) = task.await.expect("task");
        match status {
            401 => assert_eq!(kind, "invalid_credentials"),
            503 => {
                assert_eq!(kind, "too_busy");
                assert!(retry, "a 503 says when to retry");
                busy += 1;
            }
            other => panic!("unexpected {other} {kind}"),
        }
    }
    assert!(busy > 0, "160 logins at once were all hashed at once");
    // Linux: the peak resident memory of the server process.
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", app.pid())) {
        let hwm_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        assert!(hwm_kb < 700 * 1024, "peak RSS {} MB", hwm_kb / 1024);
    }
}

#[tokio::test]
async fn the_openapi_document_declares_the_lock_out_and_the_security_routes() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .get(None, "/api/v1/openapi.json")
        .await
        .json()
        .await
        .expect("document");
    let login = &doc["paths"]["/api/v1/auth/login"]["post"]["responses"];
    for status in ["429", "503"] {
        assert!(
            login[status]["headers"].get("Retry-After").is_some(),
            "login {status}: {login}"
        );
    }
    for (path, method) in [
        ("/api/v1/security/events", "get"),
        ("/api/v1/admin/locks", "get"),
        ("/api/v1/admin/locks/accounts/{username}", "delete"),
        ("/api/v1/admin/locks/addresses/{address}", "delete"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(op["responses"].get("403").is_some(), "{method} {path} 403");
    }
}
