//! The query page's exports and the knowledge-base forms over plain HTTP: what a browser
//! downloads or is refused, which the browser tests (`browser_query.rs`) do not read.

use std::io::Read as _;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, LOCATION};
use serde_json::json;

use crate::helpers::{TestApp, intake, urlencode};

use crate::web::{csrf_of, no_redirects, sign_in};

async fn get(http: &reqwest::Client, cookie: &str, url: String) -> reqwest::Response {
    http.get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("GET")
}

/// Cases the operator registers and the dispatcher sends to `unit`; their numbers.
async fn transferred(app: &TestApp, titles: &[&str], unit: &str) -> Vec<String> {
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let mut ids = Vec::new();
    for title in titles {
        let id = app.accept(&operator, title).await;
        app.ok(
            &dispatcher,
            &id,
            "transfer",
            &json!({ "lead_unit_id": unit }),
        )
        .await;
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn the_csv_export_opens_in_excel_quotes_its_fields_and_runs_no_formula() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let titles = [
        "夜市噪音，扰民严重",
        "楼下\"烧烤\"油烟",
        "=cmd|' /C calc'!A0",
        "@SUM(1+1)",
    ];
    let mut last = 0;
    for title in titles {
        last = app.create(&operator, &intake(title)).await.position;
    }
    let http = no_redirects();
    let cookie = sign_in(&app, &http, "operator").await;
    let res = get(
        &http,
        &cookie,
        app.url(&format!(
            "/query/export.csv?category=complaint&status=&min_position={last}"
        )),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
    let disposition = res.headers()[CONTENT_DISPOSITION].to_str().expect("ascii");
    assert!(
        disposition.starts_with("attachment; filename=\"cases-") && disposition.contains(".csv\""),
        "{disposition}"
    );
    let bytes = res.bytes().await.expect("body");
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "a UTF-8 BOM for Excel");
    let csv = std::str::from_utf8(&bytes[3..]).expect("UTF-8");
    let mut lines = csv.split("\r\n");
    let header = lines.next().expect("a header line");
    assert!(
        header
            .starts_with("工单编号,标题,状态,诉求类别,件别,紧急程度,所在区县,地址,来电人,来电号码"),
        "{header}"
    );
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), titles.len(), "{csv}");
    assert!(csv.contains(",\"夜市噪音，扰民严重\",") || csv.contains(",夜市噪音，扰民严重,"));
    assert!(csv.contains(",\"楼下\"\"烧烤\"\"油烟\","), "{csv}");
    assert!(csv.contains(",'=cmd|' /C calc'!A0,"), "{csv}");
    assert!(csv.contains(",'@SUM(1+1),"), "{csv}");
    // Lists mask every caller, and so does their export.
    assert!(csv.contains("139****5678"), "{csv}");
    assert!(!csv.contains("13912345678"), "{csv}");
    assert!(csv.contains("投诉") && csv.contains("城关区"), "{csv}");

    // A comma in an address is quoted (the Chinese comma above needs none).
    let mut with_comma = intake("井盖缺失");
    with_comma["address"] = json!("城关区酒泉路,北门");
    let last = app.create(&operator, &with_comma).await.position;
    let res = get(
        &http,
        &cookie,
        app.url(&format!(
            "/query/export.csv?q={}&min_position={last}",
            urlencode("井盖")
        )),
    )
    .await;
    let csv = res.text().await.expect("body");
    assert!(csv.contains(",\"城关区酒泉路,北门\","), "{csv}");
}

#[tokio::test]
async fn the_xlsx_export_is_a_workbook_holding_the_rows() {
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let mut last = 0;
    for n in 0..3 {
        last = app
            .create(&operator, &intake(&format!("路灯不亮第{n}处")))
            .await
            .position;
    }
    let http = no_redirects();
    let cookie = sign_in(&app, &http, "operator").await;
    let res = get(
        &http,
        &cookie,
        app.url(&format!("/query/export.xlsx?min_position={last}")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[CONTENT_TYPE],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let disposition = res.headers()[CONTENT_DISPOSITION].to_str().expect("ascii");
    assert!(disposition.contains(".xlsx\""), "{disposition}");
    let bytes = res.bytes().await.expect("body");
    assert_eq!(&bytes[..2], b"PK", "a zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip");
    let mut read = |name: &str| {
        let mut text = String::new();
        zip.by_name(name)
            .unwrap_or_else(|e| panic!("no `{name}` in the workbook: {e}"))
            .read_to_string(&mut text)
            .expect("UTF-8 XML");
        text
    };
    let sheet = read("xl/worksheets/sheet1.xml");
    assert_eq!(sheet.matches("<row ").count(), 1 + 3, "{sheet}");
    let strings = read("xl/sharedStrings.xml");
    for text in ["工单编号", "路灯不亮第0处", "路灯不亮第2处", "139****5678"] {
        assert!(strings.contains(text), "`{text}` in {strings}");
    }
    assert!(!strings.contains("13912345678"));
    assert!(read("xl/workbook.xml").contains("工单查询"));
}

#[tokio::test]
async fn an_export_holds_only_the_cases_in_the_viewer_s_scope() {
    let app = TestApp::spawn().await;
    let housing = transferred(&app, &["楼道照明损坏", "电梯停运"], "city.bureau.housing").await;
    let urban = transferred(&app, &["占道经营"], "city.bureau.urban").await;
    let http = no_redirects();
    let cookie = sign_in(&app, &http, "housing_handler").await;
    let csv = get(&http, &cookie, app.url("/query/export.csv"))
        .await
        .text()
        .await
        .expect("body");
    for id in &housing {
        assert!(csv.contains(id.as_str()), "{id} in {csv}");
    }
    assert!(!csv.contains(urban[0].as_str()), "{csv}");
    assert!(!csv.contains("占道经营"), "{csv}");
    assert_eq!(csv.trim_end().lines().count(), 1 + housing.len(), "{csv}");
    // Asking for the other unit's cases by condition finds none either.
    let csv = get(
        &http,
        &cookie,
        app.url("/query/export.csv?unit_id=city.bureau.urban"),
    )
    .await
    .text()
    .await
    .expect("body");
    assert_eq!(csv.trim_end().lines().count(), 1, "{csv}");
    // The page lists the same.
    let html = get(&http, &cookie, app.url("/query"))
        .await
        .text()
        .await
        .expect("page");
    assert!(html.contains(housing[0].as_str()) && !html.contains(urban[0].as_str()));
}

#[tokio::test]
async fn bad_conditions_are_said_in_place_and_exports_need_a_session() {
    let app = TestApp::spawn().await;
    let http = no_redirects();
    for path in [
        "/query",
        "/query/export.csv",
        "/query/export.xlsx",
        "/kb",
        "/kb/gaps",
    ] {
        let res = http.get(app.url(path)).send().await.expect("GET");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[LOCATION], "/login", "{path}");
    }
    let cookie = sign_in(&app, &http, "operator").await;
    let res = get(&http, &cookie, app.url("/query?from=2026-13-40")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .expect("page")
            .contains("起始日期须为有效日期")
    );
    let res = get(&http, &cookie, app.url("/query?status=lost")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .expect("page")
            .contains("查询条件的取值不正确")
    );
    let res = get(&http, &cookie, app.url("/query/export.csv?page=0")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_article_form_says_its_refusal_in_place_and_a_stale_version_is_noticed() {
    let app = TestApp::spawn().await;
    let http = no_redirects();
    let cookie = sign_in(&app, &http, "shift_leader").await;
    let form = get(&http, &cookie, app.url("/kb/new"))
        .await
        .text()
        .await
        .expect("form");
    let csrf = csrf_of(&form);
    let post = |fields: Vec<(&'static str, String)>, path: String| {
        let http = http.clone();
        let cookie = cookie.clone();
        let url = app.url(&path);
        async move {
            http.post(url)
                .header(COOKIE, cookie)
                .form(&fields)
                .send()
                .await
                .expect("POST")
        }
    };
    // No title: the rule's Chinese title, the typed body kept.
    let res = post(
        vec![
            ("csrf", csrf.clone()),
            ("title", String::new()),
            ("body", "先到社区登记。".into()),
            ("category", "社会保障".into()),
            ("unit_id", "city".into()),
        ],
        "/kb".into(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.expect("page");
    assert!(html.contains("标题不能为空"), "{html}");
    assert!(html.contains("先到社区登记。"));
    // Without the token nothing is done.
    let res = post(vec![("title", "无令牌".into())], "/kb".into()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = post(
        vec![
            ("csrf", csrf.clone()),
            ("title", "居住证办理流程".into()),
            ("body", "携带身份证到社区服务中心办理。".into()),
            ("category", "户籍".into()),
            ("unit_id", "city".into()),
        ],
        "/kb".into(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = res.headers()[LOCATION].to_str().expect("ascii").to_owned();
    let id = page
        .strip_prefix("/kb/")
        .and_then(|p| p.split('?').next())
        .expect("the article's page")
        .to_owned();
    // Publishing with the version 1 page shows (stream version 1), then again with the stale one.
    let publish = |version: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("action", "publish".into()),
            ("version", version.to_owned()),
        ]
    };
    let res = post(publish("1"), format!("/kb/{id}")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = post(publish("1"), format!("/kb/{id}")).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let html = res.text().await.expect("page");
    assert!(html.contains("文章已被他人修改"), "{html}");
    assert!(html.contains("重新加载"));
    // Retiring needs a reason, said in place.
    let res = post(
        vec![
            ("csrf", csrf.clone()),
            ("action", "retire".into()),
            ("version", "2".into()),
            ("reason", " ".into()),
        ],
        format!("/kb/{id}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.expect("page").contains("下线须填写原因"));
    // An operator reads it, and is offered no editing.
    let operator = sign_in(&app, &http, "operator").await;
    let html = get(&http, &operator, app.url(&format!("/kb/{id}")))
        .await
        .text()
        .await
        .expect("page");
    assert!(html.contains("居住证办理流程") && !html.contains(">修改<"));
    let res = get(&http, &operator, app.url("/kb/new")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = get(&http, &operator, app.url("/kb/gaps")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
