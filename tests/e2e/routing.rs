//! Routing suggestions (派单目录): for operators and dispatchers, with the matter chosen and the
//! transfer path.

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

/// The matter's path of names, after checking that `rule_id` is its code.
fn matter_path(s: &Value) -> Vec<&str> {
    assert_eq!(s["rule_id"], s["matter"]["code"], "{s}");
    s["matter"]["path"]
        .as_array()
        .expect("matter path")
        .iter()
        .map(|n| n.as_str().expect("name"))
        .collect()
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
async fn a_routing_suggestion_names_the_unit_the_path_and_the_matter() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let s = suggestion(
        &app,
        &operator,
        "location_unit_id=d.chengguan.s01.c01&category=complaint&text=%E6%B5%81%E5%8A%A8%E6%91%8A%E8%B4%A9",
    )
    .await;
    assert_eq!(matter_path(&s), ["城市管理", "占道经营"], "{s}");
    assert_eq!(s["matter"]["name"], "占道经营");
    assert_eq!(s["matched"], json!(["流动摊贩"]));
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
    assert_eq!(
        matter_path(&s),
        ["其他", "默认受理", "属地事项（投诉、举报、求助）"]
    );
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
async fn the_most_specific_matter_wins_over_a_generic_word() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    // 小区 (a housing estate) says little; 停水 says the water company, not housing.
    let s = suggestion(
        &app,
        &operator,
        "location_unit_id=d.chengguan.s01.c01.g01.b01&category=complaint&text=%E5%B0%8F%E5%8C%BA%E5%81%9C%E6%B0%B4",
    )
    .await;
    assert_eq!(matter_path(&s), ["城乡建设", "供水", "停水"], "{s}");
    assert_eq!(s["matter"]["code"].as_str().map(str::len), Some(6));
    assert_eq!(s["units"][0]["unit"]["unit_id"], "city.bureau.water");
    assert_eq!(path_ids(&s["units"][0]), ["city", "city.bureau.water"]);
    let reason = s["reason"].as_str().expect("reason");
    assert!(
        reason.contains("城乡建设 > 供水 > 停水") && reason.contains("停水"),
        "{s}"
    );
    // At the city level a district department's matter falls back to the city bureau.
    let s = suggestion(
        &app,
        &operator,
        "location_unit_id=city&category=complaint&text=%E7%89%A9%E4%B8%9A%E4%B9%B1%E6%94%B6%E8%B4%B9",
    )
    .await;
    assert_eq!(
        s["units"][0]["unit"]["unit_id"], "city.bureau.housing",
        "{s}"
    );
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
    // 占道经营 and 噪音扰民 at a shop's door: the district's urban management either way.
    assert!(!matter_path(suggestion).is_empty(), "{route}");
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

#[tokio::test]
async fn the_openapi_document_describes_the_matter_of_a_suggestion() {
    let app = TestApp::spawn().await;
    let res = app.get(None, "/api/v1/openapi.json").await;
    assert_eq!(res.status().as_u16(), 200);
    let doc: Value = res.json().await.expect("JSON");
    let schemas = &doc["components"]["schemas"];
    let suggestion = &schemas["SuggestionView"]["properties"];
    for field in ["matter", "matched", "rule_id", "reason", "units"] {
        assert!(suggestion.get(field).is_some(), "{field}: {suggestion}");
    }
    let matter = &schemas["MatterView"]["properties"];
    for field in ["code", "name", "path"] {
        assert!(matter.get(field).is_some(), "{field}: {matter}");
    }
    let params = doc["paths"]["/api/v1/routing/suggest"]["get"]["parameters"].to_string();
    assert!(params.contains("text"), "{params}");
}
