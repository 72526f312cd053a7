//! The work lists a centre lives on, over HTTP: 待转办 → transfer → 待接收 → 退回申请 or
//! 延期申请 → 待审批 → decided, with the counts of every list and the flags on each row.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, intake};

/// `GET path` as `token`, asserting 200.
async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let res = app.get(Some(token), path).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    serde_json::from_str(&text).expect("JSON")
}

/// The caller's work list `list` once the read model has applied `position`.
async fn list(app: &TestApp, token: &str, list: &str, position: u64) -> Value {
    get_json(
        app,
        token,
        &format!("/api/v1/worklist?list={list}&min_position={position}"),
    )
    .await
}

/// The caller's counts once the read model has applied `position`.
async fn counts(app: &TestApp, token: &str, position: u64) -> Value {
    get_json(
        app,
        token,
        &format!("/api/v1/worklist/counts?min_position={position}"),
    )
    .await
}

/// The row of case `id` in a list, if listed.
fn row<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["id"] == id)
}

#[tokio::test]
async fn a_case_walks_from_to_transfer_through_to_decide_with_its_counts() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let chengguan = app.login("chengguan_dispatcher").await;
    let supervisor = app.login("supervisor").await;
    let leader = app.login("city_leader").await;

    // 受理, confidential: waiting at the city centre to be sent on.
    let mut body = intake("夜间施工噪音");
    body["confidential"] = json!(true);
    let accepted = app.create(&operator, &body).await;
    let id = accepted.id.clone();
    let to_transfer = list(&app, &dispatcher, "to_transfer", accepted.position).await;
    let waiting = row(&to_transfer, &id).expect("in the city centre's 待转办");
    assert_eq!(waiting["confidential"], true, "{waiting}");
    assert_eq!(waiting["joint"], false, "{waiting}");
    assert_eq!(
        counts(&app, &dispatcher, accepted.position).await["to_transfer"],
        1
    );

    // 督办 before it is sent; then a joint transfer: the district centre leads, the housing
    // bureau helps.
    app.ok(
        &supervisor,
        &id,
        "supervise",
        &json!({ "opinion": "请尽快转办" }),
    )
    .await;
    let sent = app
        .ok(
            &dispatcher,
            &id,
            "transfer",
            &json!({ "lead_unit_id": "d.chengguan", "co_unit_ids": ["city.bureau.housing"] }),
        )
        .await;
    let centre = counts(&app, &dispatcher, sent.position).await;
    assert_eq!(centre["to_transfer"], 0, "{centre}");
    assert_eq!(centre["transferred_by_me"], 1, "{centre}");
    assert!(
        row(
            &list(&app, &dispatcher, "to_transfer", sent.position).await,
            &id
        )
        .is_none()
    );
    let district = counts(&app, &chengguan, sent.position).await;
    assert_eq!(district["to_receive"], 1, "{district}");
    assert_eq!(district["to_transfer"], 0, "{district}");

    // 批示 once it is out with units the leader oversees.
    let annotated = app
        .ok(
            &leader,
            &id,
            "annotate",
            &json!({ "text": "请依法依规处理" }),
        )
        .await;
    let to_receive = list(&app, &chengguan, "to_receive", annotated.position).await;
    let flags = row(&to_receive, &id).expect("in the district's 待接收");
    for flag in ["supervised", "annotated", "joint", "confidential"] {
        assert_eq!(flags[flag], true, "{flag}: {flags}");
    }
    assert_eq!(flags["warned"], false, "{flags}");
    assert_eq!(flags["overdue"], false, "{flags}");
    // The case list's rows carry the same flags.
    let cases = get_json(
        &app,
        &dispatcher,
        &format!("/api/v1/cases?min_position={}", annotated.position),
    )
    .await;
    let in_cases = row(&cases, &id).expect("in the case list");
    assert_eq!(in_cases["supervised"], true, "{in_cases}");
    assert_eq!(in_cases["annotated"], true, "{in_cases}");
    assert_eq!(in_cases["joint"], true, "{in_cases}");

    // Received by the district centre: now its own case to send on, until it asks for a
    // return, which waits for the city centre's decision.
    let received = app.ok(&chengguan, &id, "receive", &json!({})).await;
    let district = counts(&app, &chengguan, received.position).await;
    assert_eq!(district["to_receive"], 0, "{district}");
    assert_eq!(district["to_transfer"], 1, "{district}");
    let asked = app
        .ok(
            &chengguan,
            &id,
            "return-request",
            &json!({ "reason": "不属于本区职责" }),
        )
        .await;
    assert_eq!(
        counts(&app, &chengguan, asked.position).await["to_transfer"],
        0
    );
    let to_decide = list(&app, &dispatcher, "to_decide", asked.position).await;
    let request = row(&to_decide, &id).expect("in the city centre's 待审批");
    assert_eq!(request["requests"], json!(["return"]), "{request}");
    assert_eq!(
        counts(&app, &dispatcher, asked.position).await["to_decide"],
        1
    );

    // Accepted: gone from 待审批, back in the city centre's 待转办.
    let decided = app
        .ok(
            &dispatcher,
            &id,
            "return-decision",
            &json!({ "accept": true, "note": "同意退回" }),
        )
        .await;
    let centre = counts(&app, &dispatcher, decided.position).await;
    assert_eq!(centre["to_decide"], 0, "{centre}");
    assert_eq!(centre["to_transfer"], 1, "{centre}");
    assert_eq!(centre["transferred_by_me"], 0, "{centre}");
    assert!(
        row(
            &list(&app, &dispatcher, "to_decide", decided.position).await,
            &id
        )
        .is_none()
    );
    let back = list(&app, &dispatcher, "to_transfer", decided.position).await;
    let back = row(&back, &id).expect("back in 待转办");
    // The recalled joint transfer leaves no joint case.
    assert_eq!(back["joint"], false, "{back}");
    assert_eq!(
        counts(&app, &chengguan, decided.position).await["to_receive"],
        0
    );
}

#[tokio::test]
async fn an_extension_request_waits_in_the_transferrers_to_decide_until_decided() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&operator, "楼道灯不亮").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &id, "receive", &json!({})).await;
    let asked = app
        .ok(
            &housing,
            &id,
            "extension",
            &json!({ "working_days": 3, "reason": "需现场勘查" }),
        )
        .await;
    let to_decide = list(&app, &dispatcher, "to_decide", asked.position).await;
    let request = row(&to_decide, &id).expect("in 待审批");
    assert_eq!(request["requests"], json!(["extension"]), "{request}");
    let centre = counts(&app, &dispatcher, asked.position).await;
    assert_eq!(centre["to_decide"], 1, "{centre}");
    // Nobody else is asked.
    assert_eq!(counts(&app, &housing, asked.position).await["to_decide"], 0);
    let decided = app
        .ok(
            &dispatcher,
            &id,
            "extension/decide",
            &json!({ "approve": true, "note": "同意" }),
        )
        .await;
    assert_eq!(
        counts(&app, &dispatcher, decided.position).await["to_decide"],
        0
    );
    assert!(
        row(
            &list(&app, &dispatcher, "to_decide", decided.position).await,
            &id
        )
        .is_none()
    );
}

#[tokio::test]
async fn the_counts_route_is_in_the_openapi_document_and_refuses_a_bad_window() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .get(None, "/api/v1/openapi.json")
        .await
        .json()
        .await
        .expect("document");
    assert!(
        doc["paths"]["/api/v1/worklist/counts"]["get"].is_object(),
        "{}",
        doc["paths"]
    );
    let dispatcher = app.login("dispatcher").await;
    let res = app
        .get(
            Some(&dispatcher),
            "/api/v1/worklist/counts?due_within_hours=0",
        )
        .await;
    crate::helpers::assert_problem(res, 400, "invalid_query").await;
    let counts = get_json(&app, &dispatcher, "/api/v1/worklist/counts").await;
    for list in [
        "drafts",
        "to_transfer",
        "to_receive",
        "in_progress",
        "due_soon",
        "overdue",
        "to_decide",
        "to_call_back",
        "transferred_by_me",
    ] {
        assert_eq!(counts[list], 0, "{list}: {counts}");
    }
    assert_eq!(counts["capped"], json!([]), "{counts}");
}
