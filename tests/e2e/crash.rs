//! Crash safety: every case whose 201 reached the client survives `kill -9`, and the restarted
//! server numbers on without reusing a number.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{TestApp, intake};

const TASKS: usize = 30;
const PER_TASK: usize = 10;
/// Acknowledgements to wait for before pulling the plug.
const KILL_AFTER: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_case_survives_kill_9_and_numbering_continues() {
    let mut app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let client = app.client();
        let token = op.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            for i in 0..PER_TASK {
                let title = format!("断电前受理 {t}-{i}");
                let Ok(res) = client.create_case(&token, &intake(&title)).await else {
                    return;
                };
                if res.status() != 201 {
                    // The server died mid-answer; nothing was acknowledged.
                    return;
                }
                // Acknowledged only once the whole answer arrived.
                let Ok(body) = res.json::<Value>().await else {
                    return;
                };
                let id = body["id"].as_str().expect("id").to_owned();
                if tx.send((id, title)).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);

    let mut acked = Vec::new();
    while acked.len() < KILL_AFTER {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(ack)) => acked.push(ack),
            Ok(None) => panic!("the creates stopped before the kill"),
            Err(_) => panic!("no acknowledgement within 60 s"),
        }
    }
    app.kill_hard();
    while tasks.join_next().await.is_some() {}
    while let Some(ack) = rx.recv().await {
        acked.push(ack);
    }
    assert!(
        acked.len() < TASKS * PER_TASK,
        "every create finished before the kill; the crash did not hit requests in flight"
    );
    println!(
        "{} of {} creates acknowledged before kill -9",
        acked.len(),
        TASKS * PER_TASK
    );
    let distinct: HashSet<&str> = acked.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        distinct.len(),
        acked.len(),
        "two acknowledged cases share a number"
    );

    app.restart().await;
    let op = app.login("operator").await;
    for (id, title) in &acked {
        let res = app.get_case(&op, id).await;
        assert_eq!(res.status(), 200, "acknowledged case {id} was lost");
        let case: Value = res.json().await.unwrap();
        assert_eq!(case["title"], title.as_str(), "case {id}");
        assert_eq!(case["status"], "accepted");
        assert_eq!(case["version"], 1);
    }

    // Numbering goes on past every number handed out before the crash.
    let highest = acked.iter().map(|(id, _)| id.clone()).max().unwrap();
    let fresh = app.create(&op, &intake("重启后的第一张工单")).await;
    assert!(
        fresh.id > highest,
        "{} reuses or precedes {highest}",
        fresh.id
    );
    assert_eq!(fresh.version, 1, "a brand-new stream, not an existing case");
    let case = app.case(&op, &fresh.id).await;
    assert_eq!(case["title"], "重启后的第一张工单");
    assert_eq!(case["timeline"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_idempotent_create_retried_after_a_crash_returns_the_first_answer() {
    let mut app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let send = |app: &TestApp, token: &str| {
        app.http
            .post(app.url("/api/v1/cases"))
            .bearer_auth(token)
            .header("Idempotency-Key", "call-2026-0001")
            .json(&intake("崩溃前受理、崩溃后重试"))
            .send()
    };
    let first: Value = send(&app, &op).await.unwrap().json().await.unwrap();
    app.kill_hard();
    app.restart().await;
    let op = app.login("operator").await;
    let res = send(&app, &op).await.unwrap();
    assert_eq!(res.status(), 201);
    let again: Value = res.json().await.unwrap();
    assert_eq!(
        again, first,
        "the retry after the crash answers as the first attempt did"
    );
    // And no second case was made: the next one takes the next number.
    let next = app.create(&op, &intake("下一张工单")).await;
    let n = |id: &str| id[8..].parse::<u32>().unwrap();
    assert_eq!(n(&next.id), n(first["id"].as_str().unwrap()) + 1);
}
