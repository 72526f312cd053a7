//! Issue 10 items 5 and 6: a unit that no longer holds a case keeps the case up to the end of
//! its part with the caller masked; a leader sees only what went to the units they oversee;
//! re-reading a case records one identity view, and the audit is paged.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const PHONE: &str = "13912345678";

#[tokio::test]
async fn a_recalled_unit_keeps_the_case_up_to_its_recall_without_the_caller() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let urban = app.login("urban_handler").await;
    let id = app.accept(&op, "改派后原单位还能看到什么").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &id, "receive", &json!({})).await;
    let case = app.case(&housing, &id).await;
    assert_eq!(case["caller_phone"], PHONE, "the holder calls the citizen");
    assert_eq!(case["history_until"], Value::Null);

    app.ok(&dispatcher, &id, "recall", &json!({ "reason": "派错单位" }))
        .await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.urban" }),
    )
    .await;
    app.ok(&urban, &id, "receive", &json!({})).await;
    app.ok(
        &urban,
        &id,
        "progress",
        &json!({ "note": "城管执法队已到现场核实" }),
    )
    .await;

    // The housing bureau still finds the case it touched, as it was when it was recalled.
    let res = app.get_case(&housing, &id).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(!text.contains(PHONE), "the caller leaked: {text}");
    assert!(
        !text.contains("城管执法队"),
        "a later holder's note leaked: {text}"
    );
    assert!(
        !text.contains("city.bureau.urban"),
        "the new holder leaked: {text}"
    );
    let case: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(case["identity_masked"], true);
    crate::helpers::time(&case["history_until"]);
    let types: Vec<&str> = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.last(), Some(&"recalled"), "{types:?}");
    assert!(case["actions"].as_array().unwrap().is_empty(), "{case}");
    let route = app
        .get(Some(&housing), &format!("/api/v1/cases/{id}/route"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!route.contains("city.bureau.urban"), "{route}");
    // Its list shows the case it touched, not where the case went after it.
    let list = app
        .get(Some(&housing), "/api/v1/cases")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(&id), "{list}");
    assert!(!list.contains("city.bureau.urban"), "{list}");

    // The new holder and the accepting centre read the whole case.
    let case = app.case(&urban, &id).await;
    assert_eq!(case["caller_phone"], PHONE);
    assert_eq!(case["history_until"], Value::Null);
    let text = app.get_case(&dispatcher, &id).await.text().await.unwrap();
    assert!(text.contains("城管执法队"), "{text}");
}

#[tokio::test]
async fn a_leader_at_the_city_centre_sees_only_what_went_to_the_units_they_oversee() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let leader = app.login("city_leader_housing").await;
    let to_housing = app.accept(&op, "交给住建局的").await;
    app.ok(
        &dispatcher,
        &to_housing,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    let to_district = app.accept(&op, "交给城关区的").await;
    let last = app
        .ok(
            &dispatcher,
            &to_district,
            "transfer",
            &json!({ "lead_unit_id": "d.chengguan" }),
        )
        .await;
    assert_eq!(app.get_case(&leader, &to_housing).await.status(), 200);
    assert_eq!(app.get_case(&leader, &to_district).await.status(), 404);
    let list: Value = app
        .get(
            Some(&leader),
            &format!("/api/v1/cases?min_position={}", last.position),
        )
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [to_housing.as_str()], "{list}");
}

#[tokio::test]
async fn re_reading_a_case_records_one_view_and_the_audit_is_paged() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let shift_leader = app.login("shift_leader").await;
    let id = app.accept(&op, "反复查看同一工单").await;
    for _ in 0..30 {
        assert_eq!(app.case(&op, &id).await["caller_phone"], PHONE);
    }
    let page: Value = app
        .get(
            Some(&shift_leader),
            &format!("/api/v1/cases/{id}/identity-views?per_page=1"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["username"], "operator");
    for bad in ["per_page=0", "per_page=201", "page=0", "page=4294967295"] {
        let res = app
            .get(
                Some(&shift_leader),
                &format!("/api/v1/cases/{id}/identity-views?{bad}"),
            )
            .await;
        crate::helpers::assert_problem(res, 400, "invalid_paging").await;
    }
}
