//! Issue 12's done-when: from an empty data directory, a small city imported from its CSV and
//! XLSX lists (`fixtures/city/`), one of its users signed in, a unit holding an open case
//! renamed, a year added to the calendar and a new deadline using it, and the old events and
//! deadlines unchanged.

use std::path::Path;
use std::process::Command;

use minqing::app::Clock as _;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, time};
use crate::inprocess::spawn_app_on;
use crate::web::{csrf_of, login_form, no_redirects, set_cookie_named};

const INITIAL: &str = "Hexi-initial-1";
const CHOSEN: &str = "Hexi-chosen-2026";

fn import_org(data: &Path, extra: &[&str]) -> std::process::Output {
    let city = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/city");
    Command::new(env!("CARGO_BIN_EXE_minqing"))
        .arg("import-org")
        .arg("--data")
        .arg(data)
        .arg("--units")
        .arg(city.join("units.csv"))
        .arg("--users")
        .arg(city.join("users.xlsx"))
        .args(extra)
        .env("MINQING_INITIAL_PASSWORD", INITIAL)
        .env("RUST_LOG", "off")
        .output()
        .expect("run minqing import-org")
}

/// Signs `username` in with the handed-out password and changes it in the workbench, as the
/// workbench makes a new user do before anything else.
async fn first_sign_in(app: &TestApp, username: &str) {
    let http = no_redirects();
    let (token, login_cookie) = login_form(app, &http).await;
    let res = http
        .post(app.url("/login"))
        .header(COOKIE, login_cookie)
        .form(&[
            ("username", username),
            ("password", INITIAL),
            ("login_token", &token),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{username}");
    assert_eq!(res.headers()[LOCATION], "/account/password");
    let cookie = set_cookie_named(&res, "minqing_session").expect("session");
    let cookie = cookie.split(';').next().expect("name=value").to_owned();
    let html = http
        .get(app.url("/account/password"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("password page")
        .text()
        .await
        .expect("html");
    let res = http
        .post(app.url("/account/password"))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("current", INITIAL),
            ("new", CHOSEN),
            ("confirm", CHOSEN),
        ])
        .send()
        .await
        .expect("change the password");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{username}");
}

async fn token(app: &TestApp, username: &str) -> String {
    let res = app.login_with(username, CHOSEN).await;
    assert_eq!(res.status(), 200, "{username}");
    let body: Value = res.json().await.expect("login");
    assert_eq!(body["user"]["must_change_password"], false);
    body["token"].as_str().expect("token").to_owned()
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> Value {
    let res = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).expect("JSON")
}

/// A suggestion (建议件, 10 working days) at 东大街街道, transferred there by the district.
async fn transferred_suggestion(
    app: &TestApp,
    (op, lead, dispatcher): (&str, &str, &str),
    title: &str,
) -> String {
    let created = post(
        app,
        op,
        "/api/v1/cases",
        &json!({
            "caller_name": "王芳",
            "caller_phone": "13912345678",
            "channel": "phone",
            "category": "proposal",
            "kind": "suggestion",
            "urgency": "normal",
            "title": title,
            "content": "建议在文化路口增设人行横道信号灯。",
            "address": "东城区东大街文化路口",
            "location_unit_id": "d.dongcheng.s01.c01",
        }),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    post(
        app,
        lead,
        &format!("/api/v1/cases/{id}/transfer"),
        &json!({ "lead_unit_id": "d.dongcheng", "note": "请东城区处理" }),
    )
    .await;
    app.ok(dispatcher, &id, "receive", &json!({})).await;
    app.ok(
        dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.dongcheng.s01", "note": "请街道办理" }),
    )
    .await;
    id
}

fn street_holder(case: &Value) -> Value {
    case["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .find(|h| h["unit_id"] == "d.dongcheng.s01")
        .expect("the street holds it")
        .clone()
}

/// 2027's notice as a test writes it (the dates of the real one, published 2026-11).
fn year_2027() -> Value {
    json!({
        "year": 2027,
        "notice": {
            "title": "国务院办公厅关于2027年部分节假日安排的通知",
            "number": "国办发明电〔2026〕9号",
            "published": "2026-11-10",
        },
        "holidays": [
            { "name": "元旦", "from": "2027-01-01", "to": "2027-01-03" },
            { "name": "春节", "from": "2027-02-05", "to": "2027-02-13" },
            { "name": "清明节", "from": "2027-04-03", "to": "2027-04-05" },
            { "name": "劳动节", "from": "2027-05-01", "to": "2027-05-05" },
            { "name": "端午节", "from": "2027-06-09", "to": "2027-06-11" },
            { "name": "中秋节", "from": "2027-09-15", "to": "2027-09-17" },
            { "name": "国庆节", "from": "2027-10-01", "to": "2027-10-07" },
        ],
        "make_up_working_days": [],
    })
}

#[tokio::test]
async fn a_city_imported_from_its_lists_runs_and_its_directory_and_calendar_change_while_history_stays()
 {
    let data = tempfile::tempdir().expect("empty data directory");
    // A dry run says what would change and records nothing.
    let dry = import_org(data.path(), &["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let said = String::from_utf8_lossy(&dry.stdout);
    assert!(
        said.contains("单位：新增 18 个") && said.contains("用户：新增 10 个"),
        "{said}"
    );
    assert!(said.contains("预演"), "{said}");
    let done = import_org(data.path(), &[]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    // Monday 2026-12-21, 10:00 in Shanghai: ten working days run into 2027, whose holidays
    // the compiled-in calendar does not know yet.
    let now = "2026-12-21T02:00:00Z".parse().expect("time");
    let app = spawn_app_on(data, now).await;
    // The demo city is not there: the imported one is.
    let units: Value = app
        .http
        .get(app.url("/api/v1/units?q=东大街"))
        .bearer_auth({
            first_sign_in(&app, "admin").await;
            token(&app, "admin").await
        })
        .send()
        .await
        .expect("units")
        .json()
        .await
        .expect("JSON");
    assert_eq!(units[0]["id"], "d.dongcheng.s01");
    assert_eq!(
        app.login_with("dispatcher", INITIAL).await.status(),
        401,
        "no demo user in an imported city"
    );
    for user in [
        "operator",
        "shift_leader",
        "dc_dispatcher",
        "dc_s01_handler",
    ] {
        first_sign_in(&app, user).await;
    }
    let admin = token(&app, "admin").await;
    let op = token(&app, "operator").await;
    let lead = token(&app, "shift_leader").await;
    let dispatcher = token(&app, "dc_dispatcher").await;
    let street = token(&app, "dc_s01_handler").await;

    let first = transferred_suggestion(&app, (&op, &lead, &dispatcher), "文化路口增设信号灯").await;
    app.ok(&street, &first, "receive", &json!({})).await;
    app.caught_up().await;
    let before = app.case(&street, &first).await;
    let holder = street_holder(&before);
    assert_eq!(holder["deadline_provisional"], true, "{holder}");
    assert!(time(&holder["complete_by"]).to_rfc3339().as_str() > "2027");

    // The street office is renamed while it holds the case.
    post(
        &app,
        &admin,
        "/api/v1/units/d.dongcheng.s01/rename",
        &json!({ "name": "东大街街道办事处" }),
    )
    .await;
    // 2027's notice is published: the admin adds the year.
    let before_year = app.clock.now();
    app.clock.advance(chrono::Duration::minutes(5));
    let set = post(
        &app,
        &admin,
        "/api/v1/rules/years",
        &json!({ "year": 2027, "data": year_2027() }),
    )
    .await;
    assert_eq!(set["version"], 2);
    // The same again is no change, and a district's admin may not change the rules.
    let again = app
        .http
        .post(app.url("/api/v1/rules/years"))
        .bearer_auth(&admin)
        .json(&json!({ "year": 2027, "data": year_2027() }))
        .send()
        .await
        .expect("again");
    assert_problem(again, 422, "no_change").await;

    // A case transferred now gets a final deadline, past 元旦 2027 (a Friday holiday).
    app.clock.advance(chrono::Duration::minutes(5));
    let second = transferred_suggestion(&app, (&op, &lead, &dispatcher), "东大街增设公交站").await;
    app.caught_up().await;
    let new_holder = street_holder(&app.case(&street, &second).await);
    assert_eq!(new_holder["deadline_provisional"], false, "{new_holder}");
    assert!(
        time(&new_holder["complete_by"]) > time(&holder["complete_by"]),
        "the holiday on 2027-01-01 moves the deadline: {} then {}",
        holder["complete_by"],
        new_holder["complete_by"]
    );

    // The first case: its events and deadlines as recorded, its earlier steps under the name
    // the street had then, its holder under the name it has now.
    let after = app.case(&street, &first).await;
    let old_holder = street_holder(&after);
    assert_eq!(old_holder["complete_by"], holder["complete_by"]);
    assert_eq!(old_holder["receive_by"], holder["receive_by"]);
    assert_eq!(old_holder["deadline_provisional"], true);
    assert_eq!(old_holder["unit_name"], "东大街街道办事处");
    assert_eq!(after["timeline"], {
        let mut timeline = before["timeline"].clone();
        for step in timeline.as_array_mut().expect("timeline") {
            assert_ne!(step["unit_name"], "东大街街道办事处");
        }
        timeline
    });

    // The rules in force at any time.
    let at = |t: chrono::DateTime<chrono::Utc>| {
        format!(
            "/api/v1/rules?at={}",
            crate::helpers::urlencode(&t.to_rfc3339())
        )
    };
    let then: Value = app
        .get(Some(&op), &at(before_year))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(then["version"], 1);
    assert!(
        !then["known_years"]
            .as_array()
            .expect("years")
            .contains(&json!(2027))
    );
    let now: Value = app
        .get(Some(&op), "/api/v1/rules")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(now["version"], 2);
    assert!(
        now["known_years"]
            .as_array()
            .expect("years")
            .contains(&json!(2027))
    );
    app.stop().await;
}
