//! 工单详情's forms over plain HTTP, for the verbs the browser tests (`browser_case.rs`) do
//! not click through: extension and its decision, supervision, appeal and its decision,
//! merge (the master found through the case list) and archive. Each form posts what the
//! page's form posts; success is a redirect back to the page, a refusal the page again with
//! the Chinese message in the form.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::json;

use crate::browser::transferred_to_housing;
use crate::helpers::TestApp;

/// A person signed in to the workbench through the form.
struct Desk {
    http: reqwest::Client,
    cookie: String,
}

impl Desk {
    async fn sign_in(app: &TestApp, username: &str) -> Self {
        let http = crate::web::no_redirects();
        let cookie = crate::web::sign_in(app, &http, username).await;
        Desk { http, cookie }
    }

    async fn get(&self, app: &TestApp, path: &str) -> (StatusCode, String) {
        let res = self
            .http
            .get(app.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("GET");
        (res.status(), res.text().await.expect("body"))
    }

    /// Posts the form of `action` as the page shows it now (its CSRF token and version).
    async fn post(
        &self,
        app: &TestApp,
        id: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let (status, page) = self.get(app, &format!("/cases/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains(&format!(r#"name="action" value="{action}""#)),
            "the page offers no `{action}` form"
        );
        let version = crate::web::field_value(&page, "version");
        let csrf = crate::web::csrf_of(&page);
        let mut form: Vec<(&str, &str)> =
            vec![("csrf", &csrf), ("action", action), ("version", &version)];
        form.extend_from_slice(fields);
        let res = self
            .http
            .post(app.url(&format!("/cases/{id}")))
            .header(COOKIE, &self.cookie)
            .form(&form)
            .send()
            .await
            .expect("POST");
        let status = res.status();
        if status == StatusCode::SEE_OTHER {
            let to = res.headers()[LOCATION]
                .to_str()
                .expect("location")
                .to_owned();
            assert!(to.starts_with(&format!("/cases/{id}?done=")), "{to}");
            return (status, to);
        }
        (status, res.text().await.expect("body"))
    }
}

/// The message a refused form shows in itself.
fn alert(html: &str) -> String {
    let at = html
        .find(r#"role="alert">"#)
        .expect("a message in the form")
        + 13;
    let rest = &html[at..];
    rest[..rest.find('<').expect("end of the message")].to_owned()
}

#[tokio::test]
async fn extension_supervision_appeal_merge_and_archive_run_from_the_case_page_s_forms() {
    let app = TestApp::spawn().await;
    let id = transferred_to_housing(&app, "小区楼顶违建影响采光").await;
    let housing = app.login("housing_handler").await;
    app.ok(&housing, &id, "receive", &json!({})).await;

    // 延期: a number that is not one is said in the form; then asked and approved.
    let handler = Desk::sign_in(&app, "housing_handler").await;
    let (status, page) = handler
        .post(
            &app,
            &id,
            "extension",
            &[("working_days", "三"), ("text", "需现场勘查")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(alert(&page), "延期天数须填写整数（工作日）");
    assert!(page.contains("需现场勘查"), "what was typed is kept");
    let (status, _) = handler
        .post(
            &app,
            &id,
            "extension",
            &[("working_days", "3"), ("text", "需现场勘查")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let dispatcher = Desk::sign_in(&app, "dispatcher").await;
    let (status, _) = dispatcher
        .post(
            &app,
            &id,
            "extension/decide",
            &[("decision", "yes"), ("text", "同意延期")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = dispatcher.get(&app, &format!("/cases/{id}")).await;
    assert!(page.contains("批准，办理时限延至"), "the timeline says so");

    // 督办, then the bureau completes and the centre calls back unsatisfied.
    let supervisor = Desk::sign_in(&app, "supervisor").await;
    let (status, _) = supervisor
        .post(&app, &id, "supervise", &[("text", "请按延期时限办结")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = handler
        .post(&app, &id, "complete", &[("text", "已责令拆除违建")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let operator = Desk::sign_in(&app, "operator").await;
    let (status, page) = operator
        .post(&app, &id, "callback", &[("resolved", "no")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(alert(&page), "请选择满意程度");
    let (status, _) = operator
        .post(
            &app,
            &id,
            "callback",
            &[("satisfaction", "unsatisfied"), ("resolved", "no")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // 申诉 and its decision.
    let (status, _) = handler
        .post(
            &app,
            &id,
            "appeal",
            &[("text", "违建已拆除，市民诉求超出职责")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page) = dispatcher
        .post(&app, &id, "appeal-decision", &[("decision", "yes")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(alert(&page), "必填项未填写");
    let (status, page) = dispatcher
        .post(
            &app,
            &id,
            "appeal-decision",
            &[("decision", "yes"), ("text", "核实属实，申诉成立")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");

    // 并单: a duplicate finds its master by number through the case list, and is merged.
    let op = app.login("operator").await;
    let duplicate = app.accept(&op, "楼顶违建（重复来电）").await;
    let (status, found) = operator
        .get(&app, &format!("/cases/{duplicate}/masters?master_q={id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        found.contains(&format!(r#"name="master_id" value="{id}""#)),
        "{found}"
    );
    let (status, _) = operator
        .post(&app, &duplicate, "merge", &[("master_id", &id)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // 归档: the master, and its duplicate with it.
    let (status, _) = operator.post(&app, &id, "archive", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "archived");
    let types: Vec<&str> = case["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for step in [
        "extension_requested",
        "extension_decided",
        "supervised",
        "completed",
        "called_back",
        "appealed",
        "appeal_decided",
        "archived",
    ] {
        assert!(types.contains(&step), "{step} in {types:?}");
    }
    let dup = app.case(&op, &duplicate).await;
    assert_eq!(dup["merged_into"], id.as_str());
    assert_eq!(dup["status"], "archived");
}

#[tokio::test]
async fn the_transfer_picker_narrows_to_allowed_units_by_name() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let id = app.accept(&op, "背街小巷垃圾清运不及时").await;
    let dispatcher = Desk::sign_in(&app, "dispatcher").await;
    let (status, all) = dispatcher.get(&app, &format!("/cases/{id}/targets")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(all.contains(r#"value="d.chengguan""#), "{all}");
    assert!(all.contains("市直部门"), "grouped by kind: {all}");
    // A street is no unit the city centre transfers to.
    assert!(!all.contains(r#"value="d.chengguan.s01""#));
    let (_, narrowed) = dispatcher
        .get(
            &app,
            &format!(
                "/cases/{id}/targets?unit_q={}&co_unit_ids=city.bureau.urban",
                crate::helpers::urlencode("城关")
            ),
        )
        .await;
    assert!(narrowed.contains(r#"value="d.chengguan""#), "{narrowed}");
    assert!(!narrowed.contains(r#"value="d.qilihe""#), "{narrowed}");
    // The chosen co-handler stays on the list, chosen.
    assert!(
        narrowed.contains(r#"value="city.bureau.urban" id="co-city.bureau.urban" aria-label="协办 兰州市城市管理委员会" checked"#),
        "{narrowed}"
    );
    // Someone who cannot transfer this case is offered nothing; outside the scope it is 404.
    let street = Desk::sign_in(&app, "qilihe_s01_handler").await;
    let (status, _) = street.get(&app, &format!("/cases/{id}/targets")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
