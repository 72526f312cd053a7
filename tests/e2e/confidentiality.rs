//! Rule 12: a confidential caller's identity is masked for handling units, and every view of
//! the full identity is recorded.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, intake};

const NAME: &str = "欧阳娜娜";
const PHONE: &str = "13812345678";

fn confidential(title: &str) -> Value {
    let mut body = intake(title);
    body["caller_name"] = json!(NAME);
    body["caller_phone"] = json!(PHONE);
    body["confidential"] = json!(true);
    body
}

/// The intake inside the timeline's first event (`accepted`).
fn timeline_intake(case: &Value) -> &Value {
    &case["timeline"][0]["data"]["intake"]
}

#[tokio::test]
async fn a_confidential_caller_is_masked_for_the_handler_and_full_views_are_recorded() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let shift_leader = app.login("shift_leader").await;
    let id = app.create(&op, &confidential("请为来电人保密")).await.id;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;

    // The handler of the receiving unit sees the identity masked, the timeline included.
    let res = app.get_case(&housing, &id).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        !text.contains(PHONE),
        "the full number leaked to the handler: {text}"
    );
    assert!(
        !text.contains(NAME),
        "the full name leaked to the handler: {text}"
    );
    let case: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(case["identity_masked"], true);
    assert_eq!(case["confidential"], true);
    assert_eq!(case["caller_phone"], "138****5678");
    assert_eq!(case["caller_name"], "欧***");
    assert_eq!(timeline_intake(&case)["caller_phone"], "138****5678");
    assert_eq!(timeline_intake(&case)["caller_name"], "欧***");
    // The rest of the case is there for handling.
    assert_eq!(case["title"], "请为来电人保密");
    assert_eq!(timeline_intake(&case)["title"], "请为来电人保密");
    // Receiving and handling change nothing about that.
    app.ok(&housing, &id, "receive", &json!({})).await;
    let case = app.case(&housing, &id).await;
    assert_eq!(case["caller_phone"], "138****5678");

    // The accepting centre sees it in full (it calls back).
    let case = app.case(&op, &id).await;
    assert_eq!(case["identity_masked"], false);
    assert_eq!(case["caller_phone"], PHONE);
    assert_eq!(case["caller_name"], NAME);
    assert_eq!(timeline_intake(&case)["caller_phone"], PHONE);
    assert_eq!(timeline_intake(&case)["caller_name"], NAME);
    app.case(&op, &id).await;
    let case = app.case(&dispatcher, &id).await;
    assert_eq!(case["caller_phone"], PHONE);

    // Who looked: the operator (twice) and the dispatcher, never the handler.
    let res = app
        .get(
            Some(&shift_leader),
            &format!("/api/v1/cases/{id}/identity-views"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    let views = page["items"].as_array().unwrap();
    let who: Vec<&str> = views
        .iter()
        .map(|v| v["username"].as_str().unwrap())
        .collect();
    // The operator's second look, minutes after the first, is not recorded again.
    assert_eq!(who, ["operator", "dispatcher"], "{views:?}");
    assert_eq!(page["total"], 2);
    assert_eq!(views[0]["unit_id"], "city");
    for v in views {
        crate::helpers::time(&v["time"]);
    }
    // The log is not for handlers, nor for operators.
    for token in [&housing, &op] {
        assert_problem(
            app.get(Some(token), &format!("/api/v1/cases/{id}/identity-views"))
                .await,
            403,
            "role_not_allowed",
        )
        .await;
    }
    // The efficiency office may read it.
    let supervisor = app.login("supervisor").await;
    let res = app
        .get(
            Some(&supervisor),
            &format!("/api/v1/cases/{id}/identity-views"),
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_district_dispatcher_and_a_leader_see_a_confidential_caller_masked() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let district = app.login("chengguan_dispatcher").await;
    let leader = app.login("chengguan_leader").await;
    let street = app.login("chengguan_s01_handler").await;
    let id = app.create(&op, &confidential("保密来电转区中心")).await.id;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan" }),
    )
    .await;
    app.ok(&district, &id, "receive", &json!({})).await;
    app.ok(
        &district,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.s01" }),
    )
    .await;
    for token in [&district, &leader, &street] {
        let res = app.get_case(token, &id).await;
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert!(!text.contains(PHONE), "leaked: {text}");
        let case: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(case["identity_masked"], true);
        assert_eq!(case["caller_phone"], "138****5678");
    }
    let shift_leader = app.login("shift_leader").await;
    let page: Value = app
        .get(
            Some(&shift_leader),
            &format!("/api/v1/cases/{id}/identity-views"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 0, "no one saw the full identity: {page}");
}

#[tokio::test]
async fn a_caller_who_did_not_ask_for_confidentiality_is_seen_by_the_handler() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&op, "普通来电").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    let case = app.case(&housing, &id).await;
    assert_eq!(case["identity_masked"], false);
    assert_eq!(case["confidential"], false);
    assert_eq!(case["caller_phone"], "13912345678");
    assert_eq!(case["caller_name"], "王芳");
    // The handler's view of a full identity is recorded too.
    let shift_leader = app.login("shift_leader").await;
    let page: Value = app
        .get(
            Some(&shift_leader),
            &format!("/api/v1/cases/{id}/identity-views"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["username"] == "housing_handler"),
        "{page}"
    );
}
