//! Bad input and faults: each answered with its status and a problem+json body, and nothing
//! appended (the case's version is unchanged, or no case was created).

use reqwest::RequestBuilder;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::helpers::{TestApp, assert_any_problem, assert_problem, intake, timeline_types};

/// Sends a raw request against case `id` that must be refused, and checks the case did not move.
async fn refused_raw(app: &TestApp, id: &str, req: RequestBuilder, status: u16, code: &str) {
    app.refused_request(id, req, status, code).await;
}

/// Checks that `id` is the only case of its day on this (fresh) server: every lower number is
/// unknown, so the refused creates before it stored nothing.
async fn assert_first_case(app: &TestApp, token: &str, id: &str) {
    assert_eq!(id.len(), 13, "case numbers are YYYYMMDD + 5 digits: {id}");
    let (day, n) = id.split_at(8);
    let n: u32 = n.parse().expect("sequence number");
    for earlier in 1..n {
        let other = format!("{day}{earlier:05}");
        assert_problem(app.get_case(token, &other).await, 404, "not_found").await;
    }
}

fn raw_json(
    app: &TestApp,
    token: &str,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> RequestBuilder {
    app.http
        .post(app.url(path))
        .bearer_auth(token)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
}

#[tokio::test]
async fn malformed_json_unknown_fields_and_missing_fields_are_refused() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;

    // On create: nothing is stored.
    assert_problem(
        raw_json(&app, &op, "/api/v1/cases", r#"{"title": "半截"#)
            .send()
            .await
            .unwrap(),
        400,
        "malformed_json",
    )
    .await;
    let mut unknown = intake("多了字段");
    unknown["colour"] = json!("red");
    assert_problem(app.create_case(&op, &unknown).await, 400, "invalid_field").await;
    // A wrongly typed or unknown enum value is a field error too.
    let mut wrong_enum = intake("类别不对");
    wrong_enum["category"] = json!("gossip");
    assert_problem(
        app.create_case(&op, &wrong_enum).await,
        400,
        "invalid_field",
    )
    .await;
    // Intake fields all have defaults, so a missing one is the rule's 422, not the parser's 400.
    for field in ["title", "content", "caller_phone", "category", "kind"] {
        let mut missing = intake("缺字段");
        missing.as_object_mut().unwrap().remove(field);
        let problem =
            assert_problem(app.create_case(&op, &missing).await, 422, "missing_field").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "the detail names `{field}`: {problem}"
        );
    }
    let id = app.accept(&op, "格式错误测试").await;
    assert_first_case(&app, &op, &id).await;

    // On a command: the case does not move.
    refused_raw(
        &app,
        &id,
        raw_json(
            &app,
            &dispatcher,
            &format!("/api/v1/cases/{id}/transfer"),
            "{\"lead_unit_id\": ",
        ),
        400,
        "malformed_json",
    )
    .await;
    refused_raw(
        &app,
        &id,
        raw_json(
            &app,
            &dispatcher,
            &format!("/api/v1/cases/{id}/transfer"),
            "[]",
        ),
        400,
        "invalid_field",
    )
    .await;
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing", "priority": "high" }),
        400,
        "invalid_field",
    )
    .await;
    // A field without a default, missing: the parser's 400.
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({}),
        400,
        "invalid_field",
    )
    .await;
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": 7 }),
        400,
        "invalid_field",
    )
    .await;
    app.refused(
        &op,
        &id,
        "callback",
        &json!({ "satisfaction": "satisfied" }),
        400,
        "invalid_field",
    )
    .await;
    app.refused(
        &op,
        &id,
        "callback",
        &json!({ "satisfaction": "so-so", "resolved": true }),
        400,
        "invalid_field",
    )
    .await;
    // Verbs without fields still take `{}` only.
    app.refused(
        &op,
        &id,
        "archive",
        &json!({ "force": true }),
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(app.version(&id).await, 1);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;

    let mut huge = intake("超大请求");
    huge["content"] = json!("噪".repeat(70 * 1024 / 3 + 1000));
    assert_problem(app.create_case(&op, &huge).await, 413, "body_too_large").await;
    let id = app.accept(&op, "超大请求之后").await;
    assert_first_case(&app, &op, &id).await;

    let note = "x".repeat(65 * 1024);
    refused_raw(
        &app,
        &id,
        app.verb_request(&dispatcher, &id, "transfer")
            .json(&json!({ "lead_unit_id": "city.bureau.housing", "note": note })),
        413,
        "body_too_large",
    )
    .await;
    refused_raw(
        &app,
        &id,
        app.verb_request(&dispatcher, &id, "transfer")
            .body(r#"{"lead_unit_id": "city.bureau.housing"}"#),
        415,
        "unsupported_media_type",
    )
    .await;
    refused_raw(
        &app,
        &id,
        app.verb_request(&dispatcher, &id, "transfer")
            .header(CONTENT_TYPE, "text/plain")
            .body(r#"{"lead_unit_id": "city.bureau.housing"}"#),
        415,
        "unsupported_media_type",
    )
    .await;
    // Just under the limit is fine.
    let mut big = intake("接近上限的请求");
    big["content"] = json!("长".repeat(1500));
    app.create(&op, &big).await;
}

#[tokio::test]
async fn an_invalid_phone_or_an_unknown_unit_is_refused_by_the_rules() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;

    for phone in ["12812345678", "1381234567", "0931-81234", "abc"] {
        let mut body = intake("号码错误");
        body["caller_phone"] = json!(phone);
        let problem = assert_problem(app.create_case(&op, &body).await, 422, "invalid_phone").await;
        assert_eq!(problem["title"], "电话号码格式不正确");
    }
    let mut body = intake("位置错误");
    body["location_unit_id"] = json!("d.nowhere");
    assert_problem(app.create_case(&op, &body).await, 422, "unknown_unit").await;
    // Landlines with an area code are fine.
    let mut landline = intake("座机来电");
    landline["caller_phone"] = json!("0931-8123456");
    let id = app.create(&op, &landline).await.id;
    assert_first_case(&app, &op, &id).await;

    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.nowhere" }),
        422,
        "unknown_unit",
    )
    .await;
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing", "co_unit_ids": ["city.bureau.nowhere"] }),
        422,
        "unknown_unit",
    )
    .await;
}

#[tokio::test]
async fn steps_out_of_order_are_refused_as_illegal_transitions() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&op, "顺序错误").await;

    app.refused(
        &op,
        &id,
        "callback",
        &json!({ "satisfaction": "satisfied", "resolved": true }),
        422,
        "not_completed",
    )
    .await;
    app.refused(&op, &id, "archive", &json!({}), 422, "not_archivable")
        .await;
    app.refused(&op, &id, "submit", &json!({}), 422, "not_a_draft")
        .await;
    app.refused(
        &op,
        &id,
        "answer",
        &json!({ "reply": "答复", "kb_article_ids": ["kb-1"] }),
        422,
        "not_immediate",
    )
    .await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.urban" }),
        422,
        "already_transferred",
    )
    .await;
    app.refused(
        &housing,
        &id,
        "complete",
        &json!({ "reply": "已办" }),
        422,
        "not_received",
    )
    .await;
    app.refused(
        &housing,
        &id,
        "progress",
        &json!({ "note": "办理中" }),
        422,
        "not_received",
    )
    .await;
    app.refused(
        &op,
        &id,
        "reopen",
        &json!({ "reason": "重办" }),
        422,
        "not_unsatisfied",
    )
    .await;
    assert_eq!(
        timeline_types(&app.case(&op, &id).await),
        ["accepted", "transferred"]
    );
}

/// The issue lists "receive before transfer" among the illegal transitions answered 422.
#[tokio::test]
async fn receiving_a_case_never_transferred_to_the_unit_is_forbidden_and_receiving_twice_is_illegal()
 {
    // For a unit that was given no part of the case it does not exist (404, as for an unknown
    // case: rule 14); an out-of-order step by the unit that holds it is a broken rule (422).
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&op, "未转办先接收").await;
    app.refused(&housing, &id, "receive", &json!({}), 404, "not_found")
        .await;
    app.post_verb(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.refused(
        &housing,
        &id,
        "complete",
        &json!({ "reply": "已办" }),
        422,
        "not_received",
    )
    .await;
    let res = app.post_verb(&housing, &id, "receive", &json!({})).await;
    assert_eq!(res.status().as_u16(), 200);
    app.refused(
        &housing,
        &id,
        "receive",
        &json!({}),
        422,
        "already_received",
    )
    .await;
}

#[tokio::test]
async fn a_role_without_the_right_is_forbidden() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let supervisor = app.login("supervisor").await;
    let leader = app.login("city_leader").await;
    let dispatcher = app.login("dispatcher").await;
    let id = app.accept(&op, "越权操作").await;

    let problem = app
        .refused(
            &op,
            &id,
            "transfer",
            &json!({ "lead_unit_id": "city.bureau.housing" }),
            403,
            "role_not_allowed",
        )
        .await;
    assert_eq!(
        problem["title"],
        "当前角色无权执行此操作，需要：转办人员、值班长、办理人员"
    );
    app.refused(
        &supervisor,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
        403,
        "role_not_allowed",
    )
    .await;
    app.refused(&leader, &id, "archive", &json!({}), 403, "role_not_allowed")
        .await;
    // A district dispatcher is not the accepting centre: before the case reaches the
    // district, it does not exist there.
    let district = app.login("chengguan_dispatcher").await;
    app.refused(
        &district,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.s01" }),
        404,
        "not_found",
    )
    .await;
    // Dispatchers transfer; they do not accept calls.
    assert_problem(
        app.create_case(&dispatcher, &intake("转办员受理")).await,
        403,
        "role_not_allowed",
    )
    .await;
    assert_problem(
        app.create_case(&leader, &intake("领导受理")).await,
        403,
        "role_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn no_token_or_a_bad_token_is_401() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .post(app.url("/api/v1/cases"))
        .json(&intake("未登录受理"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let op = app.login("operator").await;
    let id = app.accept(&op, "未登录访问").await;
    assert_first_case(&app, &op, &id).await;

    assert_problem(
        app.get(None, &format!("/api/v1/cases/{id}")).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.get(Some("forged-token"), &format!("/api/v1/cases/{id}"))
            .await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(app.get(None, "/api/v1/me").await, 401, "unauthorized").await;
    assert_problem(app.get(None, "/api/v1/units").await, 401, "unauthorized").await;
    let basic = app
        .http
        .get(app.url("/api/v1/me"))
        .header("Authorization", format!("Basic {op}"))
        .send()
        .await
        .unwrap();
    assert_problem(basic, 401, "unauthorized").await;
    refused_raw(
        &app,
        &id,
        app.http
            .post(app.url(&format!("/api/v1/cases/{id}/archive")))
            .json(&json!({})),
        401,
        "unauthorized",
    )
    .await;
    refused_raw(
        &app,
        &id,
        app.http
            .post(app.url(&format!("/api/v1/cases/{id}/archive")))
            .bearer_auth("0".repeat(64))
            .json(&json!({})),
        401,
        "unauthorized",
    )
    .await;
    let me: serde_json::Value = app.get(Some(&op), "/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["username"], "operator");
}

#[tokio::test]
async fn a_stale_if_match_is_409_and_a_current_one_is_accepted() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&op, "并发修改").await;
    let transfer = json!({ "lead_unit_id": "city.bureau.housing" });

    let before = app.version(&id).await;
    let problem = assert_problem(
        app.post_verb_if_match(&dispatcher, &id, "transfer", &transfer, 0)
            .await,
        409,
        "version_conflict",
    )
    .await;
    assert_eq!(problem["title"], "工单已被他人更新，请刷新后重试");
    assert_problem(
        app.post_verb_if_match(&dispatcher, &id, "transfer", &transfer, 5)
            .await,
        409,
        "version_conflict",
    )
    .await;
    refused_raw(
        &app,
        &id,
        app.verb_request(&dispatcher, &id, "transfer")
            .header("If-Match", "abc")
            .json(&transfer),
        400,
        "invalid_if_match",
    )
    .await;
    assert_eq!(app.version(&id).await, before);

    let res = app
        .post_verb_if_match(&dispatcher, &id, "transfer", &transfer, 1)
        .await;
    assert_eq!(res.status(), 200);
    // Quoted (ETag style) versions are tolerated.
    let res = app
        .verb_request(&housing, &id, "receive")
        .header("If-Match", "\"2\"")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Now 1 is stale.
    refused_raw(
        &app,
        &id,
        app.verb_request(&housing, &id, "progress")
            .header("If-Match", "1")
            .json(&json!({ "note": "过期版本" })),
        409,
        "version_conflict",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_case_or_route_is_404() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    assert_problem(app.get_case(&op, "2020010100001").await, 404, "not_found").await;
    assert_problem(app.get_case(&op, "no%20such").await, 404, "not_found").await;
    assert_problem(
        app.post_verb(
            &dispatcher,
            "2020010100001",
            "transfer",
            &json!({ "lead_unit_id": "city.bureau.housing" }),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(Some(&op), "/api/v1/cases/2020010100001/identity-views")
            .await,
        403,
        "role_not_allowed",
    )
    .await;
    let shift_leader = app.login("shift_leader").await;
    assert_problem(
        app.get(
            Some(&shift_leader),
            "/api/v1/cases/2020010100001/identity-views",
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let route = assert_problem(
        app.get(Some(&op), "/api/v1/nothing-here").await,
        404,
        "route_not_found",
    )
    .await;
    assert_eq!(route["title"], "接口不存在", "{route}");
    let id = app.accept(&op, "未知动作").await;
    refused_raw(
        &app,
        &id,
        app.verb_request(&dispatcher, &id, "teleport")
            .json(&json!({})),
        404,
        "route_not_found",
    )
    .await;
}

/// Every error is problem+json (DESIGN.md "HTTP conventions"), those axum answers itself included.
#[tokio::test]
async fn a_wrong_method_is_answered_with_a_problem() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let id = app.accept(&op, "错误的方法").await;
    assert_problem(
        app.get(Some(&op), &format!("/api/v1/cases/{id}/transfer"))
            .await,
        405,
        "method_not_allowed",
    )
    .await;
    // Drafts are replaced with PUT; a POST there is the wrong method.
    refused_raw(
        &app,
        &id,
        app.verb_request(&op, &id, "draft")
            .json(&intake("用 POST 改草稿")),
        405,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_query_string_is_answered_with_a_problem() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let id = app.accept(&op, "错误的查询参数").await;
    assert_any_problem(
        app.get(Some(&op), &format!("/api/v1/cases/{id}?min_position=soon"))
            .await,
        400,
    )
    .await;
    assert_any_problem(app.get(Some(&op), "/api/v1/units?level=galaxy").await, 400).await;
}

#[tokio::test]
async fn the_same_create_sent_twice_with_one_idempotency_key_makes_one_case() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let send = |key: &'static str, title: &'static str| {
        app.http
            .post(app.url("/api/v1/cases"))
            .bearer_auth(&op)
            .header("Idempotency-Key", key)
            .json(&intake(title))
            .send()
    };
    let first: serde_json::Value = {
        let res = send("create-0001", "重试安全的受理").await.unwrap();
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    };
    let again: serde_json::Value = {
        let res = send("create-0001", "重试安全的受理").await.unwrap();
        assert_eq!(
            res.status(),
            201,
            "a retried create answers as the first did"
        );
        res.json().await.unwrap()
    };
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["version"], first["version"]);
    assert_eq!(again["position"], first["position"]);
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(app.version(&id).await, 1);
    assert_first_case(&app, &op, &id).await;
    // The next case takes the next number: the retry neither stored nor used one.
    let next = send("create-0002", "另一个受理").await.unwrap();
    assert_eq!(next.status(), 201);
    let next: serde_json::Value = next.json().await.unwrap();
    let n = |v: &serde_json::Value| v["id"].as_str().unwrap()[8..].parse::<u32>().unwrap();
    assert_eq!(n(&next), n(&first) + 1);
    // A key is the user's own: another operator with the same key makes their own case.
    let op2 = app.login("operator2").await;
    let other: serde_json::Value = app
        .http
        .post(app.url("/api/v1/cases"))
        .bearer_auth(&op2)
        .header("Idempotency-Key", "create-0001")
        .json(&intake("另一位接线员的受理"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(other["id"], first["id"]);

    // A retried command too: one transfer, the same answer.
    let transfer = |key: &'static str| {
        app.verb_request(&dispatcher, &id, "transfer")
            .header("Idempotency-Key", key)
            .json(&json!({ "lead_unit_id": "city.bureau.housing" }))
            .send()
    };
    let t1: serde_json::Value = transfer("transfer-1").await.unwrap().json().await.unwrap();
    let t2 = transfer("transfer-1").await.unwrap();
    assert_eq!(t2.status(), 200);
    let t2: serde_json::Value = t2.json().await.unwrap();
    assert_eq!(t1, t2);
    assert_eq!(
        timeline_types(&app.case(&op, &id).await),
        ["accepted", "transferred"]
    );
    // An empty key is bad input.
    assert_problem(
        app.http
            .post(app.url("/api/v1/cases"))
            .bearer_auth(&op)
            .header("Idempotency-Key", "")
            .json(&intake("空键"))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_idempotency_key",
    )
    .await;
}

/// A client that times out and retries sends the second copy while the first is in flight.
#[tokio::test]
async fn the_same_create_sent_twice_at_once_with_one_idempotency_key_makes_one_case() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    for round in 0..5 {
        let key = format!("simultaneous-{round}");
        let send = || {
            app.http
                .post(app.url("/api/v1/cases"))
                .bearer_auth(&op)
                .header("Idempotency-Key", key.as_str())
                .json(&intake("同时重试的受理"))
                .send()
        };
        let (a, b) = tokio::join!(send(), send());
        let mut ids = Vec::new();
        for res in [a.unwrap(), b.unwrap()] {
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            assert!(
                status == 201 || status == 409,
                "round {round}: a simultaneous retry answered {status}: {text}"
            );
            if status == 201 {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                ids.push(v["id"].as_str().unwrap().to_owned());
            }
        }
        assert!(
            !ids.is_empty(),
            "round {round}: one of the two must succeed"
        );
        ids.dedup();
        assert_eq!(ids.len(), 1, "round {round}: one key, one case: {ids:?}");
    }
}

#[tokio::test]
async fn a_read_waiting_for_a_position_never_written_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let created = app.create(&op, &intake("读己之写")).await;
    let res = app
        .get(
            Some(&op),
            &format!(
                "/api/v1/cases/{}?min_position={}",
                created.id, created.position
            ),
        )
        .await;
    assert_eq!(res.status(), 200);
    // No write has reached that position: waiting could only end in a 503, so the server
    // says at once that the position is wrong (the fuzzer reported the 503s).
    let problem = assert_problem(
        app.get(
            Some(&op),
            &format!(
                "/api/v1/cases/{}?min_position={}",
                created.id,
                created.position + 1000
            ),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("min_position")),
        "{problem}"
    );
}

#[tokio::test]
async fn an_idempotency_key_reused_for_a_different_request_is_refused() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let create = |title: &'static str| {
        app.http
            .post(app.url("/api/v1/cases"))
            .bearer_auth(&op)
            .header("Idempotency-Key", "reused-key")
            .json(&intake(title))
            .send()
    };
    let first = create("第一次受理").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let other = create("另一件事").await.unwrap();
    assert_problem(other, 422, "idempotency_key_reused").await;
    // The same request with the same key still answers as the first time.
    let again: serde_json::Value = create("第一次受理").await.unwrap().json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
}

#[tokio::test]
async fn a_wrong_password_says_so_and_is_not_a_missing_login() {
    let app = TestApp::spawn().await;
    let problem = assert_problem(
        app.login_with("operator", "not-the-password").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(problem["title"], "用户名或密码错误", "{problem}");
    let problem = assert_problem(app.get(None, "/api/v1/me").await, 401, "unauthorized").await;
    assert_eq!(problem["title"], "请先登录", "{problem}");
}

#[tokio::test]
async fn a_refusal_names_the_roles_that_may_and_the_unit_that_decides() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&op, "谁来追回").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    let problem = app
        .refused(
            &op,
            &id,
            "recall",
            &json!({ "reason": "接线员" }),
            403,
            "role_not_allowed",
        )
        .await;
    assert_eq!(
        problem["allowed_roles"],
        json!(["dispatcher", "shift_leader", "handler"]),
        "{problem}"
    );
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        detail.contains("`shift_leader`") && !detail.contains("ShiftLeader"),
        "{detail}"
    );
    // The receiver may not recall: the city centre transferred it, and the refusal says so.
    let problem = app
        .refused(
            &housing,
            &id,
            "recall",
            &json!({ "reason": "收错了" }),
            403,
            "unit_not_allowed",
        )
        .await;
    assert_eq!(
        problem["decided_by"],
        json!({ "unit_id": "city", "unit_name": "兰州市12345政务服务便民热线中心" }),
        "{problem}"
    );
    assert_eq!(
        problem["title"],
        "该操作应由兰州市12345政务服务便民热线中心办理"
    );
}

#[tokio::test]
async fn verbs_without_fields_take_no_body_an_empty_body_or_an_empty_object() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    for (n, how) in ["no body", "Content-Length: 0", "{}"].iter().enumerate() {
        let id = app.accept(&op, &format!("签收方式{n}")).await;
        app.ok(
            &dispatcher,
            &id,
            "transfer",
            &json!({ "lead_unit_id": "city.bureau.housing" }),
        )
        .await;
        let req = app.verb_request(&housing, &id, "receive");
        let req = match *how {
            "no body" => req,
            "Content-Length: 0" => req.header(reqwest::header::CONTENT_LENGTH, "0").body(""),
            _ => req.json(&json!({})),
        };
        let res = req.send().await.expect("send receive");
        let status = res.status();
        assert_eq!(
            status,
            200,
            "receive with {how}: {}",
            res.text().await.unwrap_or_default()
        );
        let case = app.case(&housing, &id).await;
        assert_eq!(case["status"], "in_progress", "{how}");
    }
    // A verb with fields and no body names what is missing.
    let id = app.accept(&op, "追回无理由").await;
    refused_raw(
        &app,
        &id,
        app.verb_request(&dispatcher, &id, "recall"),
        400,
        "invalid_field",
    )
    .await;
}

/// Found by the fuzzer (tests/e2e/openapi.rs): a page far out made the search index reserve
/// hundreds of gigabytes and the process abort; a `min_position` nobody wrote waited 5 s for
/// a 503.
#[tokio::test]
async fn a_page_far_out_or_a_position_never_written_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let kb = app
        .get(
            Some(&op),
            "/api/v1/kb/search?q=社保卡&page=1004153052&per_page=50",
        )
        .await;
    assert_problem(kb, 400, "invalid_paging").await;
    let cases = app
        .get(Some(&op), "/api/v1/cases?q=噪音&page=4000000&per_page=200")
        .await;
    assert_problem(cases, 400, "invalid_paging").await;
    // Within the pages but past the rows a list pages through.
    let kb = app
        .get(Some(&op), "/api/v1/kb/search?q=社保卡&page=100&per_page=50")
        .await;
    assert_problem(kb, 400, "invalid_paging").await;
    let cases = app
        .get(Some(&op), "/api/v1/cases?q=噪音&page=100&per_page=200")
        .await;
    assert_problem(cases, 400, "invalid_paging").await;
    for path in [
        "/api/v1/cases?min_position=9223372036854775808",
        "/api/v1/kpis?min_position=123456789",
        "/api/v1/kb/search?q=社保卡&min_position=123456789",
    ] {
        assert_problem(app.get(Some(&op), path).await, 400, "invalid_query").await;
    }
    // The service is still there, and the first page is fine.
    let res = app
        .get(Some(&op), "/api/v1/kb/search?q=社保卡&page=1")
        .await;
    assert_eq!(res.status(), 200);
}
