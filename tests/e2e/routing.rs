//! Routing suggestions (职责清单): for operators and dispatchers, with the transfer path.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

async fn suggestion(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app
        .get(Some(token), &format!("/api/v1/routing/suggest?{query}"))
        .await;
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON")
}

fn path_ids(unit: &Value) -> Vec<&str> {
    unit["path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|u| u["unit_id"].as_str().expect("id"))
        .collect()
}

#[tokio::test]
async fn a_routing_suggestion_names_the_unit_the_path_and_the_rule() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let s = suggestion(
        &app,
        &operator,
        "location_unit_id=d.chengguan.s01.c01&category=complaint&text=%E6%B5%81%E5%8A%A8%E6%91%8A%E8%B4%A9",
    )
    .await;
    assert_eq!(s["rule_id"], "street_vending", "{s}");
    assert_eq!(s["category_label"], "投诉");
    let reason = s["reason"].as_str().expect("reason");
    assert!(
        reason.contains("摊贩") && reason.contains("城关区城市管理局"),
        "{s}"
    );
    let main = &s["units"][0];
    assert_eq!(main["unit"]["unit_id"], "d.chengguan.dept.urban");
    assert_eq!(main["kind_label"], "区/县属部门");
    assert_eq!(
        path_ids(main),
        ["city", "d.chengguan", "d.chengguan.dept.urban"]
    );
    // The city operator's centre transfers to the district centre first.
    assert_eq!(main["transfer_to"]["unit_id"], "d.chengguan");
    assert_eq!(s["units"][1]["unit"]["unit_id"], "d.chengguan.s01");

    // A social-insurance inquiry goes straight to the city bureau.
    let dispatcher = app.login("chengguan_dispatcher").await;
    let s = suggestion(
        &app,
        &dispatcher,
        "location_unit_id=d.chengguan.s01&category=inquiry&text=%E7%A4%BE%E4%BF%9D",
    )
    .await;
    assert_eq!(s["units"][0]["unit"]["unit_id"], "city.bureau.hrss", "{s}");
    assert_eq!(path_ids(&s["units"][0]), ["city", "city.bureau.hrss"]);
    // A district dispatcher is not on a bureau's path.
    assert!(s["units"][0]["transfer_to"].is_null());
    // Without keywords a complaint goes to the street (属地).
    let s = suggestion(
        &app,
        &dispatcher,
        "location_unit_id=d.chengguan.s01.c01.g01&category=complaint",
    )
    .await;
    assert_eq!(s["rule_id"], "local_matters");
    assert_eq!(s["units"][0]["unit"]["unit_id"], "d.chengguan.s01");
    assert_eq!(s["units"][0]["transfer_to"]["unit_id"], "d.chengguan.s01");
    let place: Vec<&str> = s["place"]
        .as_array()
        .expect("place")
        .iter()
        .map(|u| u["level_label"].as_str().expect("label"))
        .collect();
    assert_eq!(place, ["市", "区/县", "街道/乡镇", "社区/村", "网格"]);
}

#[tokio::test]
async fn routing_suggestions_refuse_bad_input_and_other_roles() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    for query in [
        "location_unit_id=nowhere&category=complaint",
        "location_unit_id=d.chengguan.s01&category=gossip",
        "category=complaint",
        "location_unit_id=&category=complaint",
        "location_unit_id=d.chengguan.s01&category=complaint&extra=1",
    ] {
        let res = app
            .get(Some(&operator), &format!("/api/v1/routing/suggest?{query}"))
            .await;
        let status = res.status().as_u16();
        assert_eq!(status, 400, "{query}");
        crate::helpers::assert_any_problem(res, 400).await;
    }
    let handler = app.login("housing_handler").await;
    let res = app
        .get(
            Some(&handler),
            "/api/v1/routing/suggest?location_unit_id=d.chengguan.s01&category=complaint",
        )
        .await;
    assert_problem(res, 403, "role_not_allowed").await;
    let res = app
        .get(
            None,
            "/api/v1/routing/suggest?location_unit_id=d.chengguan.s01&category=complaint",
        )
        .await;
    assert_problem(res, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_case_route_carries_the_suggestion_for_centre_staff() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let id = app.accept(&operator, "占道经营").await;
    let res = app
        .get(Some(&operator), &format!("/api/v1/cases/{id}/route"))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let route: Value = res.json().await.expect("JSON");
    let suggestion = &route["suggestion"];
    assert_eq!(suggestion["rule_id"], "street_vending", "{route}");
    assert_eq!(
        suggestion["units"][0]["unit"]["unit_id"],
        "d.chengguan.dept.urban"
    );
    // The suggested first hop is one the centre may actually transfer to.
    let dispatcher = app.login("dispatcher").await;
    let first = suggestion["units"][0]["transfer_to"]["unit_id"]
        .as_str()
        .expect("first hop")
        .to_owned();
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": first }),
    )
    .await;
}
