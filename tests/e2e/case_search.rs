//! Fuzzy case search: `GET /api/v1/cases?q=` through the case-text index (segmented words,
//! synonyms, relevance), combined with the structured filters and the caller's scope, and
//! rebuilt by `minqing rebuild`.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, intake};

/// A complaint with its own texts, located in `unit`.
fn complaint(title: &str, content: &str, address: &str, unit: &str) -> Value {
    let mut body = intake(title);
    body["content"] = json!(content);
    body["address"] = json!(address);
    body["location_unit_id"] = json!(unit);
    body
}

/// `GET /api/v1/cases?{query}` as `token`: the ids in the order returned.
async fn search(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let path = format!("/api/v1/cases?{query}");
    let res = app.get(Some(token), &path).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    let list: Value = serde_json::from_str(&text).expect("JSON");
    let ids: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(list["total"], ids.len(), "{list}");
    ids
}

/// Street vending in 城关 (transferred), street vending in 七里河 (transferred), noise in 城关
/// (transferred), and street vending in 城关 still with the centre (accepted). None of the texts
/// says 摆摊. Returns the ids and the position of the last write.
async fn four_cases(app: &TestApp) -> (Vec<String>, u64) {
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let cases = [
        (
            complaint(
                "阳光花园小区门口占道经营",
                "阳光花园小区北门每天晚上都有商贩占道经营，堵塞通行。",
                "城关区酒泉路街道阳光花园小区北门",
                "d.chengguan.s01",
            ),
            Some("d.chengguan"),
        ),
        (
            complaint(
                "幸福里小区门口占道经营",
                "幸福里小区门口有商贩占道经营，影响居民出行。",
                "七里河区西湖街道幸福里小区",
                "d.qilihe.s01",
            ),
            Some("d.qilihe"),
        ),
        (
            complaint(
                "楼上装修噪音",
                "楼上装修每天早上七点开始，噪音很大。",
                "城关区酒泉路街道阳光花园小区",
                "d.chengguan.s01",
            ),
            Some("d.chengguan"),
        ),
        (
            complaint(
                "菜市场外流动商贩占道经营",
                "菜市场外人行道被流动商贩占道经营。",
                "城关区张掖路街道菜市场",
                "d.chengguan.s02",
            ),
            None,
        ),
    ];
    let mut ids = Vec::new();
    let mut position = 0;
    for (body, district) in cases {
        let done = app.create(&operator, &body).await;
        position = done.position;
        if let Some(district) = district {
            position = app
                .ok(
                    &dispatcher,
                    &done.id,
                    "transfer",
                    &json!({ "lead_unit_id": district }),
                )
                .await
                .position;
        }
        ids.push(done.id);
    }
    (ids, position)
}

#[tokio::test]
async fn a_district_dispatchers_text_search_finds_only_their_districts_cases_by_synonym() {
    let app = TestApp::spawn().await;
    let (ids, position) = four_cases(&app).await;
    let at = format!("min_position={position}");
    let chengguan = app.login("chengguan_dispatcher").await;
    // Colloquial words: 摆摊 is a synonym of 占道经营, 小区门口 matches the community.
    let found = search(&app, &chengguan, &format!("{at}&q=小区门口有人摆摊")).await;
    assert_eq!(
        found,
        [ids[0].clone()],
        "only 城关's transferred vending case"
    );
    let qilihe = app.login("qilihe_leader").await;
    let found = search(&app, &qilihe, &format!("{at}&q=小区门口有人摆摊")).await;
    assert_eq!(found, [ids[1].clone()]);
    // The centre sees every district: the community named ranks its case first.
    let dispatcher = app.login("dispatcher").await;
    let found = search(&app, &dispatcher, &format!("{at}&q=阳光花园门口有人摆摊")).await;
    assert_eq!(found.first(), Some(&ids[0]), "{found:?}");
    let found = search(&app, &dispatcher, &format!("{at}&q=有人摆摊")).await;
    assert_eq!(
        found.len(),
        3,
        "every vending case, in any district: {found:?}"
    );
    assert!(!found.contains(&ids[2]), "{found:?}");
    // No word in common: nothing, not everything.
    assert!(
        search(&app, &chengguan, &format!("{at}&q=公积金提取"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_new_case_is_found_by_its_own_words_at_once_with_min_position() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    // The index commits on a timer; a query asking for the position of its write gets a commit
    // (`case_search::tests` shows it does not wait for the timer).
    for n in 0..3 {
        let body = complaint(
            &format!("和平小区{n}号楼电梯停运"),
            "电梯已经停了三天，老人上下楼困难。",
            "城关区酒泉路街道和平小区",
            "d.chengguan.s01",
        );
        let done = app.create(&operator, &body).await;
        let found = search(
            &app,
            &operator,
            &format!("min_position={}&q=电梯停运&sort=-created_at", done.position),
        )
        .await;
        assert_eq!(found.first(), Some(&done.id), "{found:?}");
        assert_eq!(found.len(), n + 1);
    }
}

#[tokio::test]
async fn a_text_search_combines_with_status_and_district_and_sort() {
    let app = TestApp::spawn().await;
    let (ids, position) = four_cases(&app).await;
    let at = format!("min_position={position}");
    let dispatcher = app.login("dispatcher").await;
    let transferred = search(
        &app,
        &dispatcher,
        &format!("{at}&q=摆摊&status=transferred"),
    )
    .await;
    let mut sorted = transferred.clone();
    sorted.sort();
    let mut expected = vec![ids[0].clone(), ids[1].clone()];
    expected.sort();
    assert_eq!(sorted, expected);
    let accepted = search(&app, &dispatcher, &format!("{at}&q=摆摊&status=accepted")).await;
    assert_eq!(accepted, [ids[3].clone()]);
    let chengguan_only = search(
        &app,
        &dispatcher,
        &format!("{at}&q=摆摊&district=d.chengguan&sort=case_id"),
    )
    .await;
    let mut expected = vec![ids[0].clone(), ids[3].clone()];
    expected.sort();
    assert_eq!(chengguan_only, expected);
    let res = app
        .get(Some(&dispatcher), "/api/v1/cases?q=摆摊&sort=score")
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rebuild_restores_the_case_index() {
    let mut app = TestApp::spawn().await;
    let (ids, position) = four_cases(&app).await;
    let dispatcher = app.login("dispatcher").await;
    let query = format!("min_position={position}&q=摆摊&sort=case_id");
    let before = search(&app, &dispatcher, &query).await;
    assert_eq!(before.len(), 3, "{before:?} of {ids:?}");
    app.terminate();
    assert!(app.wait_exit().success());
    let out = Command::new(env!("CARGO_BIN_EXE_minqing"))
        .args(["rebuild", "--data"])
        .arg(app.data_dir())
        .output()
        .expect("run minqing rebuild");
    assert!(
        out.status.success(),
        "rebuild failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("case index"));
    app.restart().await;
    let dispatcher = app.login("dispatcher").await;
    assert_eq!(search(&app, &dispatcher, &query).await, before);
}
