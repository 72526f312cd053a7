//! Input bounds: every paging parameter and every date has a documented range and a 400
//! beyond it, no text field takes control characters or bidi overrides, and the bearer
//! scheme is read in any case.

use serde_json::json;

use crate::helpers::{TestApp, assert_problem, intake};

/// Every list route with paging, as `(user, path with its other parameters)`.
const PAGED_ROUTES: &[(&str, &str)] = &[
    ("admin", "/api/v1/cases?"),
    ("admin", "/api/v1/cases?q=%E5%99%AA%E9%9F%B3&"),
    ("dispatcher", "/api/v1/worklist?list=to_transfer&"),
    ("dispatcher", "/api/v1/worklist?list=transferred_by_me&"),
    ("operator", "/api/v1/kb/search?q=%E7%A4%BE%E4%BF%9D&"),
    ("shift_leader", "/api/v1/kb/gaps?"),
    ("shift_leader", "/api/v1/kb/articles?"),
];

#[tokio::test]
async fn every_list_route_refuses_pages_out_of_bounds_and_stays_up() {
    let app = TestApp::spawn().await;
    for (user, path) in PAGED_ROUTES {
        let token = app.login(user).await;
        for bad in ["page=4294967295", "page=0", "per_page=0", "per_page=100000"] {
            let res = app.get(Some(&token), &format!("{path}{bad}")).await;
            let body = assert_problem(res, 400, "invalid_paging").await;
            assert!(
                body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("`per_page` 1 to")),
                "{path}{bad}: {body}"
            );
        }
    }
    // Limits of the other lists.
    let op = app.login("operator").await;
    for path in [
        "/api/v1/units?q=%E5%9F%8E%E5%85%B3&limit=0",
        "/api/v1/units?q=%E5%9F%8E%E5%85%B3&limit=100000",
    ] {
        let res = app.get(Some(&op), path).await;
        assert_eq!(res.status(), 400, "{path}");
    }
    for path in [
        "/api/v1/kb/suggest?q=%E7%A4%BE&limit=0",
        "/api/v1/kb/suggest?q=%E7%A4%BE&limit=100000",
    ] {
        assert_problem(app.get(Some(&op), path).await, 400, "invalid_paging").await;
    }
    // The process is still up and answers a normal page.
    let res = app
        .get(Some(&op), "/api/v1/cases?page=1&per_page=200")
        .await;
    assert_eq!(res.status(), 200);
    let res = app.get(None, "/healthz").await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn dates_outside_the_years_2000_to_2100_are_refused() {
    let app = TestApp::spawn().await;
    let leader = app.login("shift_leader").await;
    for path in [
        "/api/v1/kpis?date=9999-12-31",
        "/api/v1/kpis?date=1999-12-31",
        "/api/v1/kpis?period=week&date=2026-13-01",
        "/api/v1/reports/daily?date=9999-12-31",
        "/api/v1/reports/daily?date=0001-01-01",
        "/api/v1/cases?created_from=9999-12-31T00:00:00Z",
        "/api/v1/cases?created_to=1900-01-01T00:00:00%2B08:00",
    ] {
        let body = assert_problem(app.get(Some(&leader), path).await, 400, "invalid_query").await;
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("2000 to 2100")),
            "{path}: {body}"
        );
    }
    for path in [
        "/api/v1/kpis?period=month&date=2100-12-31",
        "/api/v1/reports/daily?date=2000-01-03",
        "/api/v1/cases?created_from=2000-01-01T00:00:00Z&created_to=2100-12-31T00:00:00Z",
    ] {
        let res = app.get(Some(&leader), path).await;
        assert_eq!(res.status(), 200, "{path}: {}", res.text().await.unwrap());
    }
}

#[tokio::test]
async fn control_characters_and_bidi_overrides_are_refused_in_commands_and_articles() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    for (field, value) in [
        ("title", "噪音\u{1b}[2J扰民"),
        ("content", "正常内容\u{0}"),
        ("address", "城关区\u{202e}号8路掖张"),
        ("caller_name", "王\u{2066}芳"),
        ("title", "两行\n标题"),
    ] {
        let mut body = intake("控制字符");
        body[field] = json!(value);
        let problem = assert_problem(
            app.create_case(&op, &body).await,
            422,
            "forbidden_character",
        )
        .await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("`{field}`"))),
            "{field}: {problem}"
        );
    }
    // Several lines are fine where a field allows them.
    let mut body = intake("多行内容");
    body["content"] = json!("第一行\r\n\t第二行");
    assert_eq!(app.create_case(&op, &body).await.status(), 201);

    let leader = app.login("shift_leader").await;
    let res = app
        .http
        .post(app.url("/api/v1/kb/articles"))
        .bearer_auth(&leader)
        .json(&json!({
            "id": "bidi-title",
            "title": "社保卡\u{202e}挂失",
            "body": "拨打 12333。",
            "category": "社会保障",
            "unit_id": "city.bureau.hrss",
        }))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 422, "forbidden_character").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("`title`"),
        "{problem}"
    );
    // Nothing was stored.
    let res = app
        .get(Some(&leader), "/api/v1/kb/articles/bidi-title")
        .await;
    assert_problem(res, 404, "not_found").await;
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let res = app
            .http
            .get(app.url("/api/v1/me"))
            .header("Authorization", format!("{scheme} {op}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{scheme}");
    }
    let res = app
        .http
        .get(app.url("/api/v1/me"))
        .header("Authorization", format!("Basic {op}"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
}
