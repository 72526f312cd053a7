//! The daily report (日报): `GET /api/v1/reports/daily`, computed from the read database.

use chrono::{DateTime, Duration, FixedOffset};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, time};

/// The first holder's assignment, as the case view shows it.
async fn holder(app: &TestApp, id: &str) -> Value {
    app.case_as_admin(id).await["holders"][0].clone()
}

/// The row of `unit` in a report.
fn row<'a>(report: &'a Value, unit: &str) -> &'a Value {
    report["units"]
        .as_array()
        .expect("units")
        .iter()
        .find(|u| u["unit_id"] == unit)
        .unwrap_or_else(|| panic!("no row for {unit}: {report}"))
}

#[tokio::test]
async fn the_daily_report_counts_the_days_cases_per_district_and_bureau_for_supervisors_only() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let chengguan = app.login("chengguan_dispatcher").await;
    let housing = app.login("housing_handler").await;
    let transfer = |unit: &str| json!({ "lead_unit_id": unit });
    // A: the housing bureau signs, completes, and the citizen is satisfied.
    let a = app.accept(&operator, "楼道灯坏了").await;
    app.ok(
        &dispatcher,
        &a,
        "transfer",
        &transfer("city.bureau.housing"),
    )
    .await;
    app.ok(&housing, &a, "receive", &json!({})).await;
    app.ok(&housing, &a, "complete", &json!({ "reply": "已修复" }))
        .await;
    app.ok(
        &operator,
        &a,
        "callback",
        &json!({ "satisfaction": "satisfied", "resolved": true }),
    )
    .await;
    // B: the housing bureau does not sign.
    let b = app.accept(&operator, "电梯停运").await;
    app.ok(
        &dispatcher,
        &b,
        "transfer",
        &transfer("city.bureau.housing"),
    )
    .await;
    // C: 城关 signs and hands it to a street, which does not sign.
    let c = app.accept(&operator, "占道经营").await;
    app.ok(&dispatcher, &c, "transfer", &transfer("d.chengguan"))
        .await;
    app.ok(&chengguan, &c, "receive", &json!({})).await;
    let last = app
        .ok(&chengguan, &c, "transfer", &transfer("d.chengguan.s01"))
        .await;

    // The day of the transfers (Asia/Shanghai) and whether the unsigned holders' receive-by
    // falls before its end: that depends on when the test runs, so it is read from the cases.
    let b_holder = holder(&app, &b).await;
    let c_holder = holder(&app, &c).await;
    let day = b_holder["transferred_at"].as_str().expect("time")[..10].to_owned();
    assert_eq!(
        &c_holder["transferred_at"].as_str().expect("time")[..10],
        day,
        "the cases were transferred on one day"
    );
    let end: DateTime<FixedOffset> = DateTime::parse_from_rfc3339(&format!("{day}T00:00:00+08:00"))
        .expect("day")
        + Duration::days(1);
    let path = format!(
        "/api/v1/reports/daily?date={day}&min_position={}",
        last.position
    );
    let supervisor = app.login("supervisor").await;
    let res = app.get(Some(&supervisor), &path).await;
    assert_eq!(res.status(), StatusCode::OK);
    let report: Value = res.json().await.expect("JSON");
    // Today's report is a snapshot of the moment it was asked for, not of the coming midnight.
    let as_of = time(&report["as_of"]);
    assert!(as_of <= end, "{report}");
    let unsigned_late = |h: &Value| u64::from(time(&h["receive_by"]) < as_of);
    let (b_late, c_late) = (unsigned_late(&b_holder), unsigned_late(&c_holder));
    assert_eq!(report["date"], day.as_str());
    assert_eq!(report["units"].as_array().expect("units").len(), 9 + 15);
    let housing_row = row(&report, "city.bureau.housing");
    assert_eq!(housing_row["unit_name"], "兰州市住房和城乡建设局");
    assert_eq!(housing_row["received"], 2, "{housing_row}");
    assert_eq!(housing_row["completed"], 1, "{housing_row}");
    assert_eq!(housing_row["completed_late"], 0, "{housing_row}");
    assert_eq!(housing_row["overdue_not_received"], b_late, "{housing_row}");
    assert_eq!(housing_row["called_back"], 1, "{housing_row}");
    assert_eq!(housing_row["satisfaction_rate"], 1.0, "{housing_row}");
    let chengguan_row = row(&report, "d.chengguan");
    assert_eq!(chengguan_row["received"], 1, "{chengguan_row}");
    assert_eq!(chengguan_row["completed"], 0, "{chengguan_row}");
    assert_eq!(
        chengguan_row["overdue_not_received"], c_late,
        "{chengguan_row}"
    );
    assert_eq!(row(&report, "d.qilihe")["received"], 0);
    let total = &report["total"];
    assert_eq!(total["unit_name"], "合计");
    assert_eq!(total["received"], 3, "{total}");
    assert_eq!(total["completed"], 1, "{total}");
    assert_eq!(total["overdue_not_received"], b_late + c_late, "{total}");
    assert_eq!(total["called_back"], 1, "{total}");

    // The same as CSV, with Chinese headers.
    let res = app
        .get(Some(&supervisor), &format!("{path}&format=csv"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("header")
            .starts_with("text/csv")
    );
    let csv = res.text().await.expect("CSV");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].contains("单位名称,接收量,办结量,逾期办结量,逾期未接收"),
        "{csv}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "{day},city.bureau.housing,兰州市住房和城乡建设局,2,1,0,{b_late},0,1,1,100.0%"
        ))),
        "{csv}"
    );
    assert!(
        lines
            .last()
            .expect("total")
            .starts_with(&format!("{day},,合计,3,1,")),
        "{csv}"
    );

    // A district leader sees their own district only; a shift leader and an admin see all.
    let leader = app.login("chengguan_leader").await;
    let theirs: Value = app
        .get(Some(&leader), &path)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        theirs["units"].as_array().expect("units").len(),
        1,
        "{theirs}"
    );
    assert_eq!(theirs["total"]["received"], 1, "{theirs}");
    for user in ["shift_leader", "admin"] {
        let token = app.login(user).await;
        let res = app.get(Some(&token), &path).await;
        assert_eq!(res.status(), StatusCode::OK, "{user}");
    }

    // Operators, dispatchers and handlers may not read it.
    for user in ["operator", "dispatcher", "housing_handler"] {
        let token = app.login(user).await;
        let problem =
            assert_problem(app.get(Some(&token), &path).await, 403, "role_not_allowed").await;
        assert!(
            problem["title"].as_str().expect("title").contains("日报"),
            "{problem}"
        );
    }
    let res = app.get(None, &path).await;
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .get(Some(&supervisor), "/api/v1/reports/daily?date=2025-13-01")
        .await;
    assert_problem(res, 400, "invalid_query").await;
    let res = app
        .get(Some(&supervisor), "/api/v1/reports/daily?format=xml")
        .await;
    assert_problem(res, 400, "invalid_query").await;
}
