//! The dispatch catalogue (派单目录) as versioned rules data: a new version recorded through
//! the API routes a request by its new keyword to its unit at once, the earlier version stays
//! readable at a time before the change, and a refused catalogue records nothing.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, urlencode};

/// A request only the new keyword matches: pigeons kept on a roof. (Words the similar-cases
/// model ties to other units, 邻居 for the street, may still outweigh a new keyword: the model
/// is learned once at start-up and says so in the reason.)
const TEXT: &str = "楼顶养鸽，羽毛乱飞";
const NEW_WORD: &str = "楼顶养鸽";

async fn json_of(res: reqwest::Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let text = res.text().await.expect("body");
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).expect("JSON")
}

async fn suggest(app: &TestApp, token: &str) -> Value {
    let path = format!(
        "/api/v1/routing/suggest?location_unit_id=d.chengguan.s01.c01&category=complaint&text={}",
        urlencode(TEXT)
    );
    json_of(app.get(Some(token), &path).await, 200).await
}

async fn catalogue_at(
    app: &TestApp,
    token: &str,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> Value {
    let path = match at {
        Some(at) => format!("/api/v1/rules/catalogue?at={}", urlencode(&at.to_rfc3339())),
        None => "/api/v1/rules/catalogue".to_owned(),
    };
    json_of(app.get(Some(token), &path).await, 200).await
}

fn post(app: &TestApp, token: &str, body: String) -> reqwest::RequestBuilder {
    app.http
        .post(app.url("/api/v1/rules/catalogue"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
}

/// The matter of `code` in a catalogue's JSON.
fn matter<'a>(matters: &'a mut Value, code: &str) -> Option<&'a mut Value> {
    for m in matters.as_array_mut()? {
        if m["code"] == code {
            return Some(m);
        }
        if let Some(found) = m.get_mut("children").and_then(|c| matter(c, code)) {
            return Some(found);
        }
    }
    None
}

#[tokio::test]
async fn a_new_catalogue_routes_by_its_new_keyword_and_the_old_one_stays_readable_before_it() {
    let app = TestApp::spawn().await;
    let admin = app.login("admin").await;
    let operator = app.login("operator").await;

    // Before: no matter knows pigeons, so the new unit is not chosen.
    let old_suggestion = suggest(&app, &operator).await;
    assert_ne!(
        old_suggestion["units"][0]["unit"]["unit_id"], "city.bureau.ecology",
        "{old_suggestion}"
    );
    assert!(
        !old_suggestion["matched"]
            .as_array()
            .expect("matched")
            .contains(&json!(NEW_WORD))
    );
    let old = catalogue_at(&app, &operator, None).await;
    assert_eq!(
        (old["version"].clone(), old["set_in_version"].clone()),
        (json!(1), json!(1))
    );
    let fixture: Value =
        serde_json::from_str(include_str!("../../fixtures/dispatch-catalogue.json"))
            .expect("fixture");
    assert_eq!(old["catalogue"], fixture);

    // The administrator adds a matter under 生态环境 for the new word, with its own unit, and
    // posts the whole catalogue as the fixture writes it (pretty, over the API's usual 64 KiB).
    let mut new = old["catalogue"].clone();
    let class = new["matters"]
        .as_array_mut()
        .expect("matters")
        .iter_mut()
        .find(|m| m["name"] == "生态环境")
        .expect("a class 生态环境");
    let code = format!("{}99", class["code"].as_str().expect("code"));
    class["children"]
        .as_array_mut()
        .expect("children")
        .push(json!({
            "code": code,
            "name": "楼顶养鸽扰民",
            "categories": ["complaint", "report"],
            "keywords": [NEW_WORD],
            "targets": [{ "level": "city", "unit_kind": "bureau", "slug": "ecology" }],
        }));
    let body = serde_json::to_string_pretty(&new).expect("JSON");
    assert!(body.len() > 64 * 1024, "{}", body.len());
    let before = chrono::Utc::now();
    let changed = json_of(post(&app, &admin, body).send().await.expect("post"), 200).await;
    assert_eq!(changed["version"], 2, "{changed}");
    assert_eq!(changed["stream_version"], 1);

    // Now: the new keyword chooses the new matter and its unit.
    let s = suggest(&app, &operator).await;
    assert_eq!(s["matter"]["code"], json!(code), "{s}");
    assert_eq!(s["matter"]["name"], "楼顶养鸽扰民");
    assert_eq!(s["matched"], json!([NEW_WORD]));
    assert_eq!(
        s["units"][0]["unit"]["unit_id"], "city.bureau.ecology",
        "{s}"
    );
    assert_eq!(
        s["units"][0]["transfer_to"]["unit_id"],
        "city.bureau.ecology"
    );

    // The catalogue in force is the new one; at a time before the change, the old one.
    let now = catalogue_at(&app, &operator, None).await;
    assert_eq!(
        (now["version"].clone(), now["set_in_version"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(now["catalogue"], new);
    let then = catalogue_at(&app, &operator, Some(before)).await;
    assert_eq!(then["version"], 1);
    assert_eq!(then["catalogue"], fixture);
    let rules_then = json_of(
        app.get(
            Some(&operator),
            &format!("/api/v1/rules?at={}", urlencode(&before.to_rfc3339())),
        )
        .await,
        200,
    )
    .await;
    let rules_now = json_of(app.get(Some(&operator), "/api/v1/rules").await, 200).await;
    assert_eq!(rules_then["catalogue"]["set_in_version"], 1);
    assert_eq!(rules_now["catalogue"]["set_in_version"], 2);
    assert_eq!(
        rules_now["catalogue"]["matters"].as_u64(),
        rules_then["catalogue"]["matters"].as_u64().map(|n| n + 1)
    );

    // Refused, with the matter and the field in Chinese, and nothing recorded: a blank
    // keyword, a unit the city does not have, the same catalogue again, an operator.
    let mut blank = new.clone();
    matter(&mut blank["matters"], &code).expect("the new matter")["keywords"] =
        json!([NEW_WORD, " "]);
    let refused = assert_problem(
        post(&app, &admin, blank.to_string())
            .send()
            .await
            .expect("post"),
        422,
        "invalid_catalogue",
    )
    .await;
    assert_eq!(
        refused["title"],
        format!("事项 {code}「楼顶养鸽扰民」的第 2 个关键词为空"),
        "{refused}"
    );
    let mut unknown = new.clone();
    matter(&mut unknown["matters"], &code).expect("the new matter")["targets"] =
        json!([{ "level": "city", "unit_kind": "bureau", "slug": "pigeons" }]);
    let refused = assert_problem(
        post(&app, &admin, unknown.to_string())
            .send()
            .await
            .expect("post"),
        422,
        "invalid_catalogue",
    )
    .await;
    assert_eq!(
        refused["title"],
        format!(
            "事项 {code}「楼顶养鸽扰民」的第 1 个责任单位：没有部门代码为「pigeons」的市直部门"
        ),
        "{refused}"
    );
    assert_problem(
        post(&app, &admin, new.to_string())
            .send()
            .await
            .expect("post"),
        422,
        "no_change",
    )
    .await;
    assert_problem(
        post(&app, &operator, new.to_string())
            .send()
            .await
            .expect("post"),
        403,
        "role_not_allowed",
    )
    .await;
    // A field the catalogue does not have is bad input.
    let mut unknown_field = new.clone();
    unknown_field["owner"] = json!("x");
    assert_problem(
        post(&app, &admin, unknown_field.to_string())
            .send()
            .await
            .expect("post"),
        400,
        "invalid_field",
    )
    .await;
    let after = json_of(app.get(Some(&operator), "/api/v1/rules").await, 200).await;
    assert_eq!(after["version"], 2);
    assert_eq!(after["versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(catalogue_at(&app, &operator, None).await["catalogue"], new);
    let s = suggest(&app, &operator).await;
    assert_eq!(s["units"][0]["unit"]["unit_id"], "city.bureau.ecology");
}
