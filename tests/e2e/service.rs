//! The service around the cases: health, the OpenAPI document, the directory, login.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, assert_problem};

#[tokio::test]
async fn healthz_answers_without_a_token() {
    let app = TestApp::spawn().await;
    let res = app.get(None, "/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::spawn().await;
    let res = app.get(None, "/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    let expected: &[(&str, &str)] = &[
        ("/api/v1/auth/login", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/units", "get"),
        ("/api/v1/users", "get"),
        ("/api/v1/cases", "post"),
        ("/api/v1/cases/{id}", "get"),
        ("/api/v1/cases/{id}/draft", "put"),
        ("/api/v1/cases/{id}/submit", "post"),
        ("/api/v1/cases/{id}/answer", "post"),
        ("/api/v1/cases/{id}/transfer", "post"),
        ("/api/v1/cases/{id}/recall", "post"),
        ("/api/v1/cases/{id}/return-request", "post"),
        ("/api/v1/cases/{id}/return-decision", "post"),
        ("/api/v1/cases/{id}/receive", "post"),
        ("/api/v1/cases/{id}/progress", "post"),
        ("/api/v1/cases/{id}/complete", "post"),
        ("/api/v1/cases/{id}/extension", "post"),
        ("/api/v1/cases/{id}/extension/decide", "post"),
        ("/api/v1/cases/{id}/callback", "post"),
        ("/api/v1/cases/{id}/reopen", "post"),
        ("/api/v1/cases/{id}/supervise", "post"),
        ("/api/v1/cases/{id}/annotate", "post"),
        ("/api/v1/cases/{id}/archive", "post"),
        ("/api/v1/cases/{id}/merge", "post"),
        ("/api/v1/cases/{id}/appeal", "post"),
        ("/api/v1/cases/{id}/appeal-decision", "post"),
        ("/api/v1/cases/{id}/identity-views", "get"),
        ("/api/v1/cases", "get"),
        ("/api/v1/worklist", "get"),
        ("/api/v1/kpis", "get"),
        ("/api/v1/reports/daily", "get"),
    ];
    for (path, method) in expected {
        let item = paths.get(*path).unwrap_or_else(|| {
            panic!(
                "`{path}` is missing from {:?}",
                paths.keys().collect::<Vec<_>>()
            )
        });
        assert!(
            item.get(*method).is_some(),
            "`{method} {path}` is not documented: {item}"
        );
    }
    // Commands document If-Match and their problem answers.
    let transfer = &paths["/api/v1/cases/{id}/transfer"]["post"];
    let params: Vec<&str> = transfer["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(params.contains(&"If-Match"), "{params:?}");
    assert!(params.contains(&"Idempotency-Key"), "{params:?}");
    for status in ["200", "403", "409", "422"] {
        assert!(
            transfer["responses"].get(status).is_some(),
            "transfer documents {status}"
        );
    }
}

#[tokio::test]
async fn the_units_span_the_six_levels_of_the_tree() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let res = app.get(Some(&op), "/api/v1/units").await;
    assert_eq!(res.status(), 200);
    let units: Vec<Value> = res.json().await.unwrap();
    let levels: BTreeSet<&str> = units.iter().map(|u| u["level"].as_str().unwrap()).collect();
    assert_eq!(
        levels,
        BTreeSet::from([
            "building",
            "city",
            "community",
            "district",
            "grid",
            "street"
        ])
    );
    let by_id: HashMap<&str, &Value> = units
        .iter()
        .map(|u| (u["id"].as_str().unwrap(), u))
        .collect();
    assert_eq!(by_id["city"]["kind"], "hotline_centre");
    assert!(by_id["city"]["parent_id"].is_null());
    assert_eq!(by_id["city.bureau.housing"]["kind"], "bureau");
    assert_eq!(by_id["d.chengguan"]["kind"], "district_centre");
    assert_eq!(by_id["d.chengguan.s01"]["level"], "street");
    assert_eq!(by_id["d.chengguan.s01"]["parent_id"], "d.chengguan");
    // Parents come first.
    let index: HashMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u["id"].as_str().unwrap(), i))
        .collect();
    for (i, u) in units.iter().enumerate() {
        if let Some(parent) = u["parent_id"].as_str() {
            assert!(
                index[parent] < i,
                "{} is listed before its parent {parent}",
                u["id"]
            );
        }
    }

    // Filters: the streets of 城关区.
    let streets: Vec<Value> = app
        .get(
            Some(&op),
            "/api/v1/units?parent_id=d.chengguan&level=street",
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(!streets.is_empty());
    assert!(
        streets
            .iter()
            .all(|u| u["level"] == "street" && u["parent_id"] == "d.chengguan")
    );
    assert!(streets.iter().any(|u| u["id"] == "d.chengguan.s01"));
}

#[tokio::test]
async fn the_user_list_is_for_admins_and_shows_what_leaders_oversee() {
    let app = TestApp::spawn().await;
    let admin = app.login("admin").await;
    let op = app.login("operator").await;
    let res = app.get(Some(&admin), "/api/v1/users").await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    // No field holds a password or its hash; the one flag that names it says only whether
    // the password must be changed.
    assert!(
        !text
            .replace("\"must_change_password\"", "")
            .contains("password"),
        "the user list leaks password hashes"
    );
    assert!(
        !text.contains("argon2"),
        "the user list leaks password hashes"
    );
    let users: Vec<Value> = serde_json::from_str(&text).unwrap();
    let by_name: HashMap<&str, &Value> = users
        .iter()
        .map(|u| (u["username"].as_str().unwrap(), u))
        .collect();
    assert_eq!(
        by_name["city_leader"]["roles"],
        serde_json::json!(["leader"])
    );
    assert_eq!(
        by_name["city_leader"]["oversees"],
        serde_json::json!(["city"])
    );
    assert_eq!(
        by_name["city_leader_housing"]["oversees"],
        serde_json::json!(["city.bureau.housing", "city.bureau.urban"])
    );
    assert_eq!(
        by_name["chengguan_leader"]["oversees"],
        serde_json::json!(["d.chengguan"])
    );
    assert_eq!(by_name["operator"]["oversees"], serde_json::json!([]));
    assert_eq!(by_name["housing_handler"]["unit_id"], "city.bureau.housing");
    assert_eq!(
        by_name["shift_leader"]["roles"],
        serde_json::json!(["shift_leader"])
    );

    assert_problem(
        app.get(Some(&op), "/api/v1/users").await,
        403,
        "role_not_allowed",
    )
    .await;
    assert_problem(app.get(None, "/api/v1/users").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn logging_in_with_a_wrong_password_or_an_unknown_user_is_401() {
    let app = TestApp::spawn().await;
    let wrong = assert_problem(
        app.login_with("operator", "wrong-password").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong["title"], "用户名或密码错误", "{wrong}");
    assert_problem(
        app.login_with("nobody", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(
        app.login_with("operator", "").await,
        401,
        "invalid_credentials",
    )
    .await;
    // Missing field: the parser's 400.
    let res = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "operator" }))
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "invalid_field").await;

    let res = app.login_with("housing_handler", PASSWORD).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert_eq!(body["user"]["username"], "housing_handler");
    assert_eq!(body["user"]["unit_id"], "city.bureau.housing");
    assert_eq!(body["user"]["roles"], serde_json::json!(["handler"]));
    let token = body["token"].as_str().unwrap();
    let me: Value = app
        .get(Some(token), "/api/v1/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "housing_handler");
    assert_eq!(me["display_name"], "周立新");
}

#[tokio::test]
async fn a_logged_out_token_no_longer_works() {
    let app = TestApp::spawn().await;
    let token = app.login("operator").await;
    assert_eq!(app.get(Some(&token), "/api/v1/me").await.status(), 200);
    let logout = || {
        app.http
            .post(app.url("/api/v1/auth/logout"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(logout().await.unwrap().status(), 204);
    assert_problem(
        app.get(Some(&token), "/api/v1/me").await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(logout().await.unwrap(), 401, "unauthorized").await;
}

#[tokio::test]
async fn a_token_outlives_a_restart_of_the_service() {
    let mut app = TestApp::spawn().await;
    let token = app.login("operator").await;
    app.terminate();
    assert!(app.wait_exit().success());
    app.restart().await;
    let me = app.get(Some(&token), "/api/v1/me").await;
    assert_eq!(
        me.status(),
        200,
        "an operator mid-shift is not logged out by a restart"
    );
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["username"], "operator");
}

/// Runs `minqing serve` with extra arguments and environment on a fresh data directory and
/// returns its exit status and stderr; it must exit on its own.
fn serve_refused(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let data = tempfile::tempdir().expect("data directory");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_minqing"));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(args)
        .env("RUST_LOG", "off")
        .env_remove("MINQING_SWEEP_SCHEDULE")
        .env_remove("MINQING_REPORT_SCHEDULE")
        .env_remove("MINQING_KPI_WEIGHTS");
    for (key, value) in env {
        cmd.env(key, value);
    }
    crate::helpers::run_to_end(cmd)
}

/// A start that must fail: extra arguments, extra environment, and what stderr must say.
struct Refusal {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    says: &'static [&'static str],
}

#[test]
fn serve_refuses_a_bad_schedule_or_bad_kpi_weights_and_names_the_setting() {
    let refusals = [
        Refusal {
            args: &["--report-schedule", "0 30 8 * * 2-6"],
            env: &[],
            says: &["`--report-schedule`", "Mon-Fri"],
        },
        Refusal {
            args: &["--sweep-schedule", "every ten minutes"],
            env: &[],
            says: &["`--sweep-schedule`", "not a cron expression"],
        },
        Refusal {
            args: &[],
            env: &[("MINQING_SWEEP_SCHEDULE", "*/10 * * *")],
            says: &["`MINQING_SWEEP_SCHEDULE`"],
        },
        Refusal {
            args: &["--kpi-weights", "on_time_receive=1,speed=2"],
            env: &[],
            says: &["`--kpi-weights`", "unknown KPI weight `speed`"],
        },
        Refusal {
            args: &["--kpi-weights", "on_time_receive=1,on_time_completion=-0.5"],
            env: &[],
            says: &["`--kpi-weights`", "`on_time_completion`", "at least 0"],
        },
        Refusal {
            args: &[],
            env: &[("MINQING_KPI_WEIGHTS", "satisfaction=0,resolution=0")],
            says: &["`MINQING_KPI_WEIGHTS`", "every KPI weight is 0"],
        },
    ];
    for Refusal { args, env, says } in refusals {
        let (status, stderr) = serve_refused(args, env);
        assert!(!status.success(), "{args:?} {env:?} started");
        for text in says {
            assert!(stderr.contains(text), "{args:?} {env:?}: {stderr}");
        }
    }
}

#[tokio::test]
async fn serve_ranks_by_the_configured_kpi_weights() {
    let app = TestApp::spawn_with(&[
        "--sweep-schedule",
        "0 */5 * * * Mon-Sat",
        "--report-schedule",
        "0 0 9 * * *",
        "--kpi-weights",
        "satisfaction=1",
    ])
    .await;
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&operator, "物业不作为").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &serde_json::json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &id, "receive", &serde_json::json!({}))
        .await;
    app.ok(
        &housing,
        &id,
        "complete",
        &serde_json::json!({ "reply": "已处理" }),
    )
    .await;
    let last = app
        .ok(
            &operator,
            &id,
            "callback",
            &serde_json::json!({ "satisfaction": "unsatisfied", "resolved": false }),
        )
        .await;
    let admin = app.login("admin").await;
    let res = app
        .get(
            Some(&admin),
            &format!("/api/v1/kpis?period=month&min_position={}", last.position),
        )
        .await;
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    // Signed and completed in time, but only satisfaction weighs: the score is 0 (the
    // default weights would give 0.5).
    assert_eq!(report["units"][0]["score"], 0.0, "{report}");
}
