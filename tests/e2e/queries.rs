//! The read models over HTTP: the case list with its conditions and scope, citizen history,
//! work lists, read-your-writes, and `minqing rebuild` giving the tables the live runner built.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Done, TestApp, assert_problem, intake, urlencode};

/// A complaint located in `unit`, with a caller number.
fn located(title: &str, unit: &str, phone: &str) -> Value {
    let mut body = intake(title);
    body["location_unit_id"] = json!(unit);
    body["caller_phone"] = json!(phone);
    body
}

/// `GET path` as `token`, asserting 200.
async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let res = app.get(Some(token), path).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    serde_json::from_str(&text).expect("JSON")
}

fn listed(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Two cases in 城关 and one in 七里河, each sent to its district centre.
async fn three_districts(app: &TestApp) -> (Vec<String>, Done) {
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let mut ids = Vec::new();
    let mut last = None;
    for (title, unit, district, phone) in [
        ("城关一号", "d.chengguan.s01", "d.chengguan", "13700000001"),
        ("城关二号", "d.chengguan.s02", "d.chengguan", "13700000002"),
        ("七里河一号", "d.qilihe.s01", "d.qilihe", "13700000001"),
    ] {
        let id = app.create(&operator, &located(title, unit, phone)).await.id;
        last = Some(
            app.ok(
                &dispatcher,
                &id,
                "transfer",
                &json!({ "lead_unit_id": district }),
            )
            .await,
        );
        ids.push(id);
    }
    (ids, last.expect("three cases"))
}

#[tokio::test]
async fn a_district_never_sees_another_districts_cases_in_the_list() {
    let app = TestApp::spawn().await;
    let (ids, last) = three_districts(&app).await;
    let at = format!("min_position={}", last.position);
    let chengguan = app.login("chengguan_dispatcher").await;
    let list = get_json(&app, &chengguan, &format!("/api/v1/cases?{at}")).await;
    assert_eq!(listed(&list), [ids[0].clone(), ids[1].clone()]);
    let asked = get_json(
        &app,
        &chengguan,
        &format!("/api/v1/cases?district=d.qilihe&{at}"),
    )
    .await;
    assert_eq!(asked["total"], 0, "{asked}");
    let qilihe = app.login("qilihe_leader").await;
    let list = get_json(&app, &qilihe, &format!("/api/v1/cases?{at}")).await;
    assert_eq!(listed(&list), [ids[2].clone()]);
    // The leader sees callers masked; the district list shows the Chinese label.
    assert_eq!(list["items"][0]["caller_phone"], "137****0001");
    assert_eq!(list["items"][0]["identity_masked"], true);
    assert_eq!(list["items"][0]["status_label"], "已转办（未接收）");
    let admin = app.login("admin").await;
    let list = get_json(
        &app,
        &admin,
        &format!("/api/v1/cases?{at}&district=d.chengguan&status=transferred&q=一号"),
    )
    .await;
    assert_eq!(listed(&list), [ids[0].clone()]);
}

#[tokio::test]
async fn citizen_history_lists_every_case_of_a_phone_number() {
    let app = TestApp::spawn().await;
    let (ids, last) = three_districts(&app).await;
    let operator = app.login("operator").await;
    let list = get_json(
        &app,
        &operator,
        &format!(
            "/api/v1/cases?caller_phone=13700000001&min_position={}",
            last.position
        ),
    )
    .await;
    assert_eq!(listed(&list), [ids[0].clone(), ids[2].clone()]);
    // Lists show callers masked even to the centre; the full identity is on the case itself,
    // where each view is recorded.
    assert_eq!(list["items"][0]["caller_phone"], "137****0001");
    assert_eq!(list["items"][0]["identity_masked"], true);
    let shift_leader = app.login("shift_leader").await;
    let before = identity_views(&app, &shift_leader, &ids[0]).await;
    let case = app.case(&operator, &ids[0]).await;
    assert_eq!(case["caller_phone"], "13700000001");
    let after = identity_views(&app, &shift_leader, &ids[0]).await;
    assert_eq!(
        after["total"].as_u64().unwrap(),
        before["total"].as_u64().unwrap() + 1,
        "listing recorded nothing; opening the case recorded one view"
    );
}

#[tokio::test]
async fn work_lists_follow_the_case_from_unit_to_unit() {
    let app = TestApp::spawn().await;
    let (ids, last) = three_districts(&app).await;
    let chengguan = app.login("chengguan_dispatcher").await;
    let path = |list: &str, pos: u64| format!("/api/v1/worklist?list={list}&min_position={pos}");
    let to_receive = get_json(&app, &chengguan, &path("to_receive", last.position)).await;
    assert_eq!(listed(&to_receive), [ids[0].clone(), ids[1].clone()]);
    let received = app.ok(&chengguan, &ids[0], "receive", &json!({})).await;
    let to_receive = get_json(&app, &chengguan, &path("to_receive", received.position)).await;
    assert_eq!(listed(&to_receive), [ids[1].clone()]);
    let in_progress = get_json(&app, &chengguan, &path("in_progress", received.position)).await;
    assert_eq!(listed(&in_progress), [ids[0].clone()]);
    let dispatcher = app.login("dispatcher").await;
    let mine = get_json(
        &app,
        &dispatcher,
        &path("transferred_by_me", received.position),
    )
    .await;
    assert_eq!(mine["total"], 3, "{mine}");
    let first = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["id"] == ids[0].as_str())
        .expect("listed");
    assert_eq!(first["recallable"], true);
    let res = app
        .get(Some(&chengguan), "/api/v1/worklist?list=everything")
        .await;
    assert_problem(res, 400, "invalid_query").await;
}

/// Every row of every table of the read database, sorted.
fn dump(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("open read database");
    let tables: Vec<String> = conn
        // Not the planner's statistics (`sqlite_stat*`): ANALYZE samples, it holds no data.
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_stat%' ORDER BY name",
        )
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table}"))
            .expect("select");
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut line = format!("{table}:");
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    line.push_str(&format!(" {v:?}"));
                }
                Ok(line)
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        rows.sort();
        out.extend(rows);
    }
    out
}

#[tokio::test]
async fn a_rebuilt_read_model_equals_the_live_one() {
    let mut app = TestApp::spawn().await;
    let (ids, _) = three_districts(&app).await;
    let chengguan = app.login("chengguan_dispatcher").await;
    app.ok(&chengguan, &ids[0], "receive", &json!({})).await;
    app.ok(
        &chengguan,
        &ids[0],
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.s01" }),
    )
    .await;
    let dispatcher = app.login("dispatcher").await;
    let last = app
        .ok(
            &dispatcher,
            &ids[2],
            "recall",
            &json!({ "reason": "派错单位" }),
        )
        .await;
    // A leader sees callers masked, so this read records no identity view (no later event).
    let leader = app.login("city_leader").await;
    let list = get_json(
        &app,
        &leader,
        &format!("/api/v1/cases?min_position={}", last.position),
    )
    .await;
    assert_eq!(list["total"], 3, "{list}");
    // At or past the recall: the login's security event may be written after it.
    assert!(
        list["position"].as_u64().unwrap() >= last.position,
        "{list}"
    );
    app.terminate();
    assert!(app.wait_exit().success());
    let path = app.data_dir().join("read.db");
    let live = dump(&path);
    assert!(live.iter().any(|l| l.starts_with("case_holder:")));
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("重建读模型"));
    assert_eq!(dump(&path), live);
    // The service starts on the rebuilt database and answers from it.
    app.restart().await;
    let leader = app.login("city_leader").await;
    let list = get_json(&app, &leader, "/api/v1/cases?sort=case_id").await;
    assert_eq!(list["total"], 3, "{list}");
}

#[tokio::test]
async fn kpis_count_a_completed_and_rated_case_for_its_unit_as_json_and_csv() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&operator, "物业问题").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &id, "receive", &json!({})).await;
    app.ok(&housing, &id, "complete", &json!({ "reply": "已处理" }))
        .await;
    let last = app
        .ok(
            &operator,
            &id,
            "callback",
            &json!({ "satisfaction": "satisfied", "resolved": true }),
        )
        .await;
    let admin = app.login("admin").await;
    let path = format!("/api/v1/kpis?period=month&min_position={}", last.position);
    let report = get_json(&app, &admin, &path).await;
    let units = report["units"].as_array().expect("units");
    assert_eq!(units.len(), 1, "{report}");
    let row = &units[0];
    assert_eq!(row["unit_id"], "city.bureau.housing");
    assert_eq!(row["unit_name"], "兰州市住房和城乡建设局");
    assert_eq!(row["received"], 1);
    assert_eq!(row["completed"], 1);
    assert_eq!(row["satisfaction_rate"], 1.0);
    // One rated case is too few to be ranked; it is compared with the city's bureaus.
    assert_eq!(row["rank"], Value::Null);
    assert_eq!(row["ranked_among"], 0);
    assert_eq!(row["peer_group"], "市局委办");
    assert_eq!(row["unit_path"], "兰州市住房和城乡建设局");
    // Given and completed within moments: next to no working time (none at night).
    let hours = row["avg_handling_hours"].as_f64().expect("an average");
    assert!((0.0..0.1).contains(&hours), "{row}");
    // Another district's centre sees no bureau's figures.
    let chengguan = app.login("chengguan_dispatcher").await;
    let theirs = get_json(&app, &chengguan, &path).await;
    assert_eq!(theirs["units"], json!([]), "{theirs}");
    let res = app.get(Some(&admin), &format!("{path}&format=csv")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("header")
            .starts_with("text/csv")
    );
    let csv = res.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].contains("按时办结率"), "{csv}");
    assert!(lines[0].contains("平均办理时长(工作小时)"), "{csv}");
    assert!(
        lines[1].starts_with("市局委办,,city.bureau.housing,"),
        "{csv}"
    );
    let res = app.get(Some(&admin), "/api/v1/kpis?period=year").await;
    assert_problem(res, 400, "invalid_query").await;
}

#[tokio::test]
async fn the_route_of_a_multi_hop_case_shows_the_recall_and_who_may_receive_it_next() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let chengguan = app.login("chengguan_dispatcher").await;
    let street = app.login("chengguan_s01_handler").await;
    let id = app.accept(&operator, "多级流转").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan", "co_unit_ids": ["city.bureau.urban"] }),
    )
    .await;
    app.ok(
        &dispatcher,
        &id,
        "recall",
        &json!({ "reason": "协办单位派错" }),
    )
    .await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan" }),
    )
    .await;
    app.ok(&chengguan, &id, "receive", &json!({})).await;
    app.ok(
        &chengguan,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.s01" }),
    )
    .await;
    app.ok(&street, &id, "receive", &json!({})).await;
    let route = get_json(&app, &chengguan, &format!("/api/v1/cases/{id}/route")).await;
    let place: Vec<&str> = route["place"]
        .as_array()
        .expect("place")
        .iter()
        .map(|u| u["level_label"].as_str().expect("label"))
        .collect();
    assert_eq!(place, ["市", "区/县", "街道/乡镇"], "{route}");
    let hops: Vec<(String, String, String)> = route["route"]
        .as_array()
        .expect("route")
        .iter()
        .map(|h| {
            (
                h["from"]["unit_id"].as_str().expect("from").to_owned(),
                h["to"]["unit_id"].as_str().expect("to").to_owned(),
                h["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect();
    let hop = |a: &str, b: &str, s: &str| (a.to_owned(), b.to_owned(), s.to_owned());
    assert_eq!(
        hops,
        [
            hop("city", "d.chengguan", "recalled"),
            hop("city", "city.bureau.urban", "recalled"),
            hop("city", "d.chengguan", "received"),
            hop("d.chengguan", "d.chengguan.s01", "received"),
        ]
    );
    assert!(route["route"][0]["recalled_at"].is_string());
    assert_eq!(route["holders"][0]["unit_id"], "d.chengguan.s01");
    let next = &route["next"][0];
    assert_eq!(next["from"]["unit_id"], "d.chengguan.s01");
    let candidates: Vec<&str> = next["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|u| u["unit_id"].as_str().expect("id"))
        .collect();
    assert!(candidates.contains(&"d.chengguan.s01.c01"), "{next}");
    assert!(candidates.iter().all(|c| c.starts_with("d.chengguan.s01.")));
    // Another district does not see the case at all.
    let qilihe = app.login("qilihe_dispatcher").await;
    let res = app
        .get(Some(&qilihe), &format!("/api/v1/cases/{id}/route"))
        .await;
    assert_problem(res, 404, "not_found").await;
}

async fn identity_views(app: &TestApp, token: &str, id: &str) -> serde_json::Value {
    let res = app
        .get(Some(token), &format!("/api/v1/cases/{id}/identity-views"))
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_case_number_a_phone_written_any_way_and_a_unit_name_find_what_people_look_for() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    // The caller gives the number with the country code and spaces the first time.
    let first = app
        .create(
            &op,
            &located("楼道灯坏了", "d.chengguan.s02", "+86 137 0000 0002"),
        )
        .await;
    let second = app
        .create(
            &op,
            &located("电梯停运", "d.chengguan.s02", "137-0000-0002"),
        )
        .await;
    let landline = app
        .create(&op, &located("水压低", "d.chengguan.s02", "0931 812 3456"))
        .await;
    let last = landline.position;
    // Filed in one form.
    assert_eq!(
        app.case(&op, &first.id).await["caller_phone"],
        "13700000002"
    );
    assert_eq!(
        app.case(&op, &landline.id).await["caller_phone"],
        "09318123456"
    );

    for written in [
        "13700000002",
        "+8613700000002",
        "137 0000 0002",
        "0086-137-0000-0002",
    ] {
        let list = get_json(
            &app,
            &op,
            &format!(
                "/api/v1/cases?caller_phone={}&min_position={last}",
                urlencode(written)
            ),
        )
        .await;
        assert_eq!(
            listed(&list),
            {
                let mut ids = vec![first.id.clone(), second.id.clone()];
                ids.sort();
                ids
            },
            "caller history for `{written}`"
        );
    }
    let list = get_json(
        &app,
        &op,
        &format!("/api/v1/cases?caller_phone=0931-8123456&min_position={last}"),
    )
    .await;
    assert_eq!(listed(&list), vec![landline.id.clone()]);

    // A case number in `q` finds that case, for whoever may see it.
    let found = get_json(
        &app,
        &op,
        &format!("/api/v1/cases?q={}&min_position={last}", second.id),
    )
    .await;
    assert_eq!(listed(&found), vec![second.id.clone()]);
    assert_eq!(found["text_match"], "case_id");
    let street = app.login("chengguan_s01_handler").await;
    let found = get_json(&app, &street, &format!("/api/v1/cases?q={}", second.id)).await;
    assert_eq!(found["total"], 0, "not in the street's scope: {found}");

    // Units by name, with their path, best match first.
    let units = get_json(
        &app,
        &op,
        &format!("/api/v1/units?q={}", urlencode("张掖路")),
    )
    .await;
    let units = units.as_array().expect("units");
    assert_eq!(units[0]["id"], "d.chengguan.s02", "{units:?}");
    assert_eq!(units[0]["path"], "城关区 / 张掖路街道");
    assert!(
        units.len() > 1,
        "its communities and grids follow: {units:?}"
    );
    assert!(units.len() <= 20);
    assert!(
        units[1..].iter().all(|u| u["path"]
            .as_str()
            .unwrap()
            .starts_with("城关区 / 张掖路街道 / ")),
        "{units:?}"
    );
    let res = app.get(Some(&op), "/api/v1/units?q=x&limit=0").await;
    assert_problem(res, 400, "invalid_query").await;
    let all = get_json(&app, &op, "/api/v1/units").await;
    assert_eq!(all.as_array().expect("units").len(), 1382);
}
