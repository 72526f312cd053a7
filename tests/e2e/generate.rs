//! `minqing generate`: a generated year is served as the service's own data.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

use chrono::{Datelike, FixedOffset, Utc};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, intake};

const CASES: u64 = 400;

fn generate(data: &Path, year: i32) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minqing"))
        .arg("generate")
        .arg("--data")
        .arg(data)
        .args(["--cases", &CASES.to_string(), "--seed", "7"])
        .args(["--year", &year.to_string()])
        .env("MINQING_DEMO_PASSWORD", PASSWORD)
        .env("RUST_LOG", "off")
        .output()
        .expect("run minqing generate")
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let res = app.get(Some(token), path).await;
    let status = res.status();
    let body: Value = res.json().await.expect("JSON body");
    assert!(status.is_success(), "{path} answered {status}: {body}");
    body
}

#[tokio::test]
async fn a_generated_year_is_served_like_the_services_own_data() {
    let shanghai = FixedOffset::east_opt(8 * 3600).expect("offset");
    let today = Utc::now().with_timezone(&shanghai);
    // The current year (cut at the present), unless it has barely begun.
    let year = if today.ordinal() >= 15 {
        today.year()
    } else {
        today.year() - 1
    };
    let data = tempfile::tempdir().expect("temporary data directory");
    let out = generate(data.path(), year);
    assert!(
        out.status.success(),
        "generate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(&format!("generated {CASES} cases")),
        "{summary}"
    );
    // A store that holds cases is refused.
    let again = generate(data.path(), year);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains(&format!("already holds {CASES} cases")),
        "{err}"
    );

    // The service numbers a new case after the generated ones of today.
    let day = today.format("%Y%m%d").to_string();
    let generated_today: u32 = {
        let conn = rusqlite::Connection::open(data.path().join("events.db")).expect("open store");
        conn.query_row(
            "SELECT count(*) FROM streams WHERE stream >= ?1 AND stream < ?2",
            [format!("case-{day}"), format!("case-{day}~")],
            |r| r.get(0),
        )
        .expect("count today's cases")
    };

    let app = TestApp::spawn_on(data).await;
    let operator = app.login("operator").await;
    let leader = app.login("city_leader").await;
    let created = app.create(&operator, &intake("生成数据之后的新工单")).await;
    assert_eq!(created.id, format!("{day}{:05}", generated_today + 1));

    // The list shows every case, spread over the city's districts.
    let mut items: Vec<Value> = Vec::new();
    for page in 1..=3 {
        let list = get_json(
            &app,
            &leader,
            &format!(
                "/api/v1/cases?per_page=200&page={page}&min_position={}",
                created.position
            ),
        )
        .await;
        assert_eq!(list["total"], CASES + 1);
        items.extend(list["items"].as_array().expect("items").iter().cloned());
    }
    assert_eq!(items.len() as u64, CASES + 1);
    let districts: HashSet<&str> = items
        .iter()
        .filter_map(|c| c["district_id"].as_str())
        .collect();
    assert!(districts.len() >= 6, "{districts:?}");
    let immediate = get_json(&app, &leader, "/api/v1/cases?kind=immediate&per_page=1").await;
    let n_immediate = immediate["total"].as_u64().expect("total");
    assert!(
        (CASES * 2 / 5..=CASES * 3 / 5).contains(&n_immediate),
        "{n_immediate} answered on the call"
    );

    // Routes show joint cases (one transfer to several units) and recalls.
    let (mut joint, mut recalled) = (0, 0);
    let mut transferred = None;
    for item in items.iter().filter(|c| c["kind"] != "immediate") {
        let id = item["id"].as_str().expect("id");
        let route = get_json(&app, &leader, &format!("/api/v1/cases/{id}/route")).await;
        let hops = route["route"].as_array().expect("route");
        let transfers: Vec<u64> = hops
            .iter()
            .filter_map(|h| h["transfer_id"].as_u64())
            .collect();
        if transfers
            .iter()
            .any(|t| transfers.iter().filter(|x| *x == t).count() > 1)
        {
            joint += 1;
        }
        if hops.iter().any(|h| h["state"] == "recalled") {
            recalled += 1;
        }
        if !hops.is_empty() && transferred.is_none() {
            transferred = Some(item);
        }
    }
    assert!(joint > 0, "no joint case");
    assert!(recalled > 0, "no recalled case");

    // Commands on generated cases work, at the versions the list shows.
    let case = transferred.expect("a transferred case");
    let id = case["id"].as_str().expect("id");
    let version = case["version"].as_u64().expect("version");
    let supervisor = app.login("supervisor").await;
    let done = app
        .ok(
            &supervisor,
            id,
            "supervise",
            &json!({ "opinion": "请加快办理（生成数据上的督办）" }),
        )
        .await;
    assert_eq!(done.version, version + 1);
    let done = app
        .ok(&leader, id, "annotate", &json!({ "text": "请妥善处理。" }))
        .await;
    assert_eq!(done.version, version + 2);
}
