//! Rule 14, one table over every demo user (issue 9 item 4): what each user gets from the case
//! detail, the case list, the text search and a command verb agrees with
//! `domain::identity::may_view_case` on the cases' real states, read back from the event store;
//! KPIs and the daily report show only units within the user's scope. A district's efficiency
//! office sees its district only.

use std::collections::{BTreeMap, BTreeSet};

use domain::identity::may_view_case;
use domain::org::UnitId;
use domain::roles::Actor;
use minqing::store::EventStore;
use serde_json::{Value, json};

use crate::helpers::{TestApp, immediate_intake, intake};

/// Titles whose words appear in no other case (the helpers' content is shared by all).
const TITLES: [&str; 6] = [
    "电梯故障停运",
    "暖气管道漏水",
    "井盖缺失",
    "路灯不亮",
    "垃圾清运迟缓",
    "树木倒伏",
];

async fn ok_json(res: reqwest::Response, what: &str) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{what}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_surface_shows_each_demo_user_exactly_the_cases_in_their_scope() {
    let mut app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let city = app.login("dispatcher").await;
    let chengguan = app.login("chengguan_dispatcher").await;
    let street = app.login("chengguan_s01_handler").await;
    let housing = app.login("housing_handler").await;

    // A: city → 城关区 centre → a street office, received there.
    let a = app.accept(&op, TITLES[0]).await;
    app.ok(
        &city,
        &a,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan" }),
    )
    .await;
    app.ok(&chengguan, &a, "receive", &json!({})).await;
    app.ok(
        &chengguan,
        &a,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.s01" }),
    )
    .await;
    app.ok(&street, &a, "receive", &json!({})).await;
    // B: in 七里河区, waiting for its centre.
    let mut b = intake(TITLES[1]);
    b["location_unit_id"] = json!("d.qilihe.s01");
    let b = app.create(&op, &b).await.id;
    app.ok(
        &city,
        &b,
        "transfer",
        &json!({ "lead_unit_id": "d.qilihe" }),
    )
    .await;
    // C: a city bureau, received.
    let c = app.accept(&op, TITLES[2]).await;
    app.ok(
        &city,
        &c,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &c, "receive", &json!({})).await;
    // D: a draft.
    let mut d = intake(TITLES[3]);
    d["submit"] = json!(false);
    let d = app.create(&op, &d).await.id;
    // E: answered on the call.
    let e = app.create(&op, &immediate_intake(TITLES[4])).await.id;
    app.ok(
        &op,
        &e,
        "answer",
        &json!({ "reply": "已告知", "kb_article_ids": ["fund-001"] }),
    )
    .await;
    // F: given to 西固区 and recalled.
    let f = app.accept(&op, TITLES[5]).await;
    app.ok(&city, &f, "transfer", &json!({ "lead_unit_id": "d.xigu" }))
        .await;
    let last = app
        .ok(&city, &f, "recall", &json!({ "reason": "转错单位" }))
        .await
        .position;
    let cases = [&a, &b, &c, &d, &e, &f];

    let org = minqing::directory::load_org().expect("org");
    let actors = minqing::directory::fixture_actors().expect("users");
    // What every surface showed each user: (username, surface) → the cases seen.
    let mut seen: BTreeMap<(String, &str), BTreeSet<String>> = BTreeMap::new();
    for actor in &actors {
        let token = app.login(&actor.username).await;
        let mut saw = |surface: &'static str, id: &str| {
            seen.entry((actor.username.clone(), surface))
                .or_default()
                .insert(id.to_owned());
        };
        for id in cases {
            let res = app.get(Some(&token), &format!("/api/v1/cases/{id}")).await;
            match res.status().as_u16() {
                200 => saw("detail", id),
                404 => {}
                other => panic!("{}: GET {id} answered {other}", actor.username),
            }
            // No pending return anywhere: in scope this is refused by a rule or a role,
            // outside it the case does not exist.
            let res = app
                .post_verb(&token, id, "return-decision", &json!({ "accept": true }))
                .await;
            match res.status().as_u16() {
                404 => {}
                403 | 422 => saw("command", id),
                other => panic!(
                    "{}: return-decision on {id} answered {other}",
                    actor.username
                ),
            }
        }
        let list = ok_json(
            app.get(
                Some(&token),
                &format!("/api/v1/cases?per_page=100&min_position={last}"),
            )
            .await,
            "list",
        )
        .await;
        for item in list["items"].as_array().expect("items") {
            saw("list", item["id"].as_str().expect("id"));
        }
        for (id, title) in cases.iter().zip(TITLES) {
            let found = ok_json(
                app.get(
                    Some(&token),
                    &format!("/api/v1/cases?q={title}&min_position={last}"),
                )
                .await,
                "search",
            )
            .await;
            let ids: Vec<&str> = found["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|i| i["id"].as_str())
                .collect();
            if ids.contains(&id.as_str()) {
                saw("search", id);
            }
        }
        check_unit_rows(&app, &token, actor, &org, &last.to_string()).await;
    }

    // The truth: the cases' states from the store, judged by the domain's own rule.
    app.kill_hard();
    let store = minqing::store::sqlite::SqliteStore::open(&app.data_dir().join("events.db"))
        .expect("store");
    let mut states = BTreeMap::new();
    for id in cases {
        let mut case = domain::Case::default();
        for rec in store
            .read_stream(&format!("case-{id}"), 1)
            .await
            .expect("stream")
        {
            case = domain::evolve(case, &minqing::app::codec::decode(&rec).expect("decode"));
        }
        states.insert(id.clone(), case);
    }
    let mut wrong = Vec::new();
    for actor in &actors {
        let may: BTreeSet<String> = cases
            .iter()
            .filter(|id| may_view_case(actor, &states[**id], &org))
            .map(|id| (*id).clone())
            .collect();
        for (surface, expected) in [
            ("detail", &may),
            ("command", &may),
            ("list", &may),
            ("search", &may),
        ] {
            let got = seen
                .get(&(actor.username.clone(), surface))
                .cloned()
                .unwrap_or_default();
            if &got != expected {
                wrong.push(format!(
                    "{} {surface}: got {got:?}, rule says {expected:?}",
                    actor.username
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The table is not trivially empty: a district's efficiency office sees its own district's
    // case and nothing of another district.
    let chengguan_office = actors
        .iter()
        .find(|a| a.username == "chengguan_supervisor")
        .expect("user");
    assert!(may_view_case(chengguan_office, &states[&a], &org));
    assert!(!may_view_case(chengguan_office, &states[&b], &org));
}

/// KPI and daily-report rows name only units within the caller's scope.
async fn check_unit_rows(
    app: &TestApp,
    token: &str,
    actor: &Actor,
    org: &domain::org::OrgTree,
    last: &str,
) {
    let scope_units: Vec<UnitId> = std::iter::once(actor.unit_id.clone())
        .chain(actor.oversees.iter().cloned())
        .collect();
    let within = |unit: &str| {
        actor.sees_every_case(org)
            || scope_units
                .iter()
                .any(|s| org.is_within(&UnitId::new(unit), s))
    };
    let res = app
        .get(
            Some(token),
            &format!("/api/v1/kpis?period=month&min_position={last}"),
        )
        .await;
    if res.status() == 200 {
        let kpis: Value = res.json().await.expect("kpis");
        for row in kpis["units"].as_array().expect("units") {
            let unit = row["unit_id"].as_str().expect("unit");
            assert!(within(unit), "{} sees KPIs of `{unit}`", actor.username);
        }
    }
    let res = app.get(Some(token), "/api/v1/reports/daily").await;
    if res.status() == 200 {
        let report: Value = res.json().await.expect("report");
        for row in report["units"].as_array().expect("units") {
            if let Some(unit) = row["unit_id"].as_str() {
                assert!(
                    within(unit),
                    "{} sees the daily report of `{unit}`",
                    actor.username
                );
            }
        }
    }
}
