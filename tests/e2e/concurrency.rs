//! Two dispatchers transfer the same case at the same moment: exactly one wins.

use serde_json::{Value, json};

use crate::helpers::{TestApp, holder_units, timeline_types};

async fn answer(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("JSON body");
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_transferring_the_same_version_at_once_make_one_transfer() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let second = app.login("dispatcher").await;
    let shift_leader = app.login("shift_leader").await;
    for round in 0..10 {
        let id = app.accept(&op, &format!("抢单测试 {round}")).await;
        // Alternate the second party: the same dispatcher in another session, or the shift leader.
        let other = if round % 2 == 0 {
            &second
        } else {
            &shift_leader
        };
        let (to_housing, to_urban) = (
            json!({ "lead_unit_id": "city.bureau.housing" }),
            json!({ "lead_unit_id": "city.bureau.urban" }),
        );
        let (a, b) = tokio::join!(
            app.post_verb_if_match(&dispatcher, &id, "transfer", &to_housing, 1),
            app.post_verb_if_match(other, &id, "transfer", &to_urban, 1),
        );
        let (a, b) = (answer(a).await, answer(b).await);
        let answers = [&a, &b];
        let wins: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
        let conflicts: Vec<_> = answers.iter().filter(|(s, _)| *s == 409).collect();
        assert_eq!(
            wins.len(),
            1,
            "round {round}: exactly one transfer succeeds: {a:?} {b:?}"
        );
        assert_eq!(
            conflicts.len(),
            1,
            "round {round}: the other is a conflict: {a:?} {b:?}"
        );
        assert_eq!(conflicts[0].1["type"], "version_conflict");
        assert_eq!(wins[0].1["version"], 2);

        let case = app.case(&op, &id).await;
        assert_eq!(case["version"], 2, "round {round}");
        assert_eq!(timeline_types(&case), ["accepted", "transferred"]);
        let winner = if a.0 == 200 {
            "city.bureau.housing"
        } else {
            "city.bureau.urban"
        };
        assert_eq!(holder_units(&case), [winner], "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_transferring_at_once_without_if_match_still_make_one_transfer() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let shift_leader = app.login("shift_leader").await;
    for round in 0..10 {
        let id = app.accept(&op, &format!("无版本抢单 {round}")).await;
        let (to_housing, to_urban) = (
            json!({ "lead_unit_id": "city.bureau.housing" }),
            json!({ "lead_unit_id": "city.bureau.urban" }),
        );
        let (a, b) = tokio::join!(
            app.post_verb(&dispatcher, &id, "transfer", &to_housing),
            app.post_verb(&shift_leader, &id, "transfer", &to_urban),
        );
        let (a, b) = (answer(a).await, answer(b).await);
        let oks = [&a, &b].iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(oks, 1, "round {round}: {a:?} {b:?}");
        let loser = if a.0 == 200 { &b } else { &a };
        assert!(
            (loser.0 == 409 && loser.1["type"] == "version_conflict")
                || (loser.0 == 422 && loser.1["type"] == "already_transferred"),
            "round {round}: the loser is a conflict or already_transferred: {loser:?}"
        );
        let case = app.case(&op, &id).await;
        assert_eq!(
            timeline_types(&case),
            ["accepted", "transferred"],
            "round {round}"
        );
        assert_eq!(case["holders"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_operators_accepting_at_once_get_distinct_numbers() {
    let app = TestApp::spawn().await;
    let mut tokens = Vec::new();
    for user in ["operator", "operator2", "operator3", "shift_leader"] {
        tokens.push(app.login(user).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, token) in tokens.iter().cycle().take(40).enumerate() {
        let client = app.client();
        let token = token.clone();
        tasks.spawn(async move {
            let res = client
                .create_case(&token, &crate::helpers::intake(&format!("同时受理 {i}")))
                .await
                .expect("answer");
            assert_eq!(res.status(), 201);
            let body: Value = res.json().await.expect("JSON");
            body["id"].as_str().expect("id").to_owned()
        });
    }
    let mut ids: Vec<String> = tasks.join_all().await;
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every accepted case has its own number");
    for id in &ids {
        assert_eq!(app.version(id).await, 1);
    }
}

/// A client that timed out resends a command with the same `Idempotency-Key` while the first
/// copy is still being handled: every copy must get the first copy's answer. (The race is
/// narrow, hence many rounds of four copies.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_retried_while_the_first_copy_is_in_flight_applies_once() {
    const ROUNDS: usize = 150;
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let mut different = Vec::new();
    for round in 0..ROUNDS {
        let id = app.accept(&op, &format!("转办重试 {round}")).await;
        let key = format!("transfer-retry-{round}");
        let body = json!({ "lead_unit_id": "city.bureau.housing" });
        let send = || {
            app.verb_request(&dispatcher, &id, "transfer")
                .header("Idempotency-Key", key.as_str())
                .json(&body)
                .send()
        };
        let (a, b, c, d) = tokio::join!(send(), send(), send(), send());
        let mut answers = Vec::new();
        for res in [a, b, c, d] {
            answers.push(answer(res.unwrap()).await);
        }
        // Whatever the answers, the transfer happened once.
        let case = app.case_as_admin(&id).await;
        assert_eq!(
            timeline_types(&case),
            ["accepted", "transferred"],
            "round {round}"
        );
        if answers.iter().any(|x| x.0 != 200 || *x != answers[0]) {
            different.push((round, answers));
        }
    }
    assert!(
        different.is_empty(),
        "{} of {ROUNDS} simultaneous retries were not answered as the first copy; first: {:?}",
        different.len(),
        different[0]
    );
}
