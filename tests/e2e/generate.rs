//! `minqing generate`: a generated year is served as the service's own data.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

use chrono::{Datelike, FixedOffset, Utc};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, intake};

const CASES: u64 = 400;

fn generate(data: &Path, year: i32) -> Output {
    generate_n(data, year, CASES)
}

fn generate_n(data: &Path, year: i32, cases: u64) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minqing"))
        .arg("generate")
        .arg("--data")
        .arg(data)
        .args(["--cases", &cases.to_string(), "--seed", "7"])
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

/// The current year (cut at the present), unless it has barely begun.
fn generated_year() -> i32 {
    let shanghai = FixedOffset::east_opt(8 * 3600).expect("offset");
    let today = Utc::now().with_timezone(&shanghai);
    if today.ordinal() >= 15 {
        today.year()
    } else {
        today.year() - 1
    }
}

#[tokio::test]
async fn a_generated_year_is_served_like_the_services_own_data() {
    let shanghai = FixedOffset::east_opt(8 * 3600).expect("offset");
    let today = Utc::now().with_timezone(&shanghai);
    let year = generated_year();
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

/// What the service says of its projections.
async fn status(app: &TestApp, token: &str) -> Value {
    get_json(app, token, "/api/v1/status").await
}

fn catching_up(status: &Value, index: &str) -> bool {
    match status[index]["state"].as_str() {
        Some("catching_up") => true,
        Some("following") => false,
        other => panic!("{index} state {other:?} in {status}"),
    }
}

#[tokio::test]
async fn the_service_listens_while_its_search_indexes_are_built_and_never_answers_from_half_an_index()
 {
    let data = tempfile::tempdir().expect("temporary data directory");
    // Enough cases that building the case index takes a few seconds in a debug build.
    let out = generate_n(data.path(), generated_year(), 4000);
    assert!(out.status.success());
    // A generated directory has no search indexes: the first start builds both, from the
    // final states of the cases and every article, and listens meanwhile.
    let app = TestApp::spawn_on(data).await;
    let operator = app.login("operator").await;
    let word = "阳光花园";
    let (mut substring_answers, mut unavailable) = (0, 0);
    let started = std::time::Instant::now();
    loop {
        let before = status(&app, &operator).await;
        let head = before["head"].as_u64().expect("head");
        assert!(before["read_model"]["applied"].as_u64().expect("applied") <= head);
        let list = app
            .get(
                Some(&operator),
                &format!("/api/v1/cases?q={word}&per_page=5"),
            )
            .await;
        assert_eq!(list.status(), 200);
        let list: Value = list.json().await.expect("JSON");
        let suggest = app
            .get(Some(&operator), "/api/v1/kb/suggest?q=社保卡丢了")
            .await;
        let suggest_status = suggest.status().as_u16();
        let retry_after = suggest.headers().get("retry-after").cloned();
        let after = status(&app, &operator).await;

        let mode = list["text_match"].as_str().expect("text_match");
        if !catching_up(&before, "case_index") {
            assert_eq!(mode, "segmented", "{list}");
        } else if catching_up(&after, "case_index") {
            // Half an index would miss cases: the read model answered, by substring.
            assert_eq!(mode, "substring", "{list}");
            substring_answers += 1;
            for item in list["items"].as_array().expect("items") {
                let case = app.case(&operator, item["id"].as_str().expect("id")).await;
                let text = format!("{}{}{}", case["title"], case["content"], case["address"]);
                assert!(text.contains(word), "{case}");
            }
        }
        if !catching_up(&before, "kb_index") {
            assert_eq!(suggest_status, 200);
        } else if catching_up(&after, "kb_index") {
            assert_eq!(suggest_status, 503);
            assert_eq!(retry_after.expect("Retry-After"), "1");
            unavailable += 1;
        }
        if !catching_up(&after, "case_index") && !catching_up(&after, "kb_index") {
            for index in ["case_index", "kb_index"] {
                let s = &after[index];
                assert!(s["visible"].as_u64() >= s["start_head"].as_u64(), "{after}");
            }
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "indexes still catching up: {after}"
        );
    }
    // Caught up: the text is matched by words, and the KB answers.
    let list = get_json(&app, &operator, &format!("/api/v1/cases?q={word}")).await;
    assert_eq!(list["text_match"], "segmented");
    assert!(list["total"].as_u64().expect("total") > 0, "{list}");
    let suggest = get_json(&app, &operator, "/api/v1/kb/suggest?q=社保卡丢了").await;
    assert!(!suggest["results"].as_array().expect("results").is_empty());
    eprintln!(
        "while the indexes caught up: {substring_answers} substring answers, {unavailable} KB 503s"
    );
}
