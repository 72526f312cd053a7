//! Several `minqing serve` instances on one PostgreSQL store (issue 13): each with its own
//! data directory (read models, indexes), all taking commands on the same log. The store is a
//! fresh database on the test server (`MINQING_TEST_POSTGRES_URL`, which `scripts/test`
//! starts), or, for the test that restarts PostgreSQL, a server of the test's own.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, intake};

/// A new empty database on the test server; its URL.
async fn fresh_database() -> String {
    let server = std::env::var("MINQING_TEST_POSTGRES_URL")
        .expect("MINQING_TEST_POSTGRES_URL is not set (scripts/test starts a server)");
    let name = format!("e2e_{}", uuid::Uuid::new_v4().simple());
    run_sql(&server, &format!("CREATE DATABASE {name}")).await;
    let (base, _) = server.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{name}")
}

async fn run_sql(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client.query(sql, &[]).await.expect("run SQL")
}

/// The process id of the instance holding the scheduled jobs' lease, if one does.
async fn jobs_holder(url: &str) -> Option<u32> {
    let rows = run_sql(
        url,
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()",
    )
    .await;
    rows.iter().find_map(|row| {
        let name: String = row.get(0);
        name.strip_prefix("minqing lease (pid ")?
            .strip_suffix(')')?
            .parse()
            .ok()
    })
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Both instances take intakes at once and never hand out one number twice; a write on one
/// is read on the other once it reached the write's position; a command decided on the
/// other's older version is decided again, and a user's own stale `If-Match` is still 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_take_commands_on_one_store() {
    let url = fresh_database().await;
    let a = TestApp::spawn_with(&["--store", &url]).await;
    let b = TestApp::spawn_with(&["--store", &url]).await;
    let (op_a, op_b) = (a.login("operator").await, b.login("operator").await);

    // Intakes on both at once.
    let mut tasks = Vec::new();
    for n in 0..24 {
        let (client, token) = if n % 2 == 0 {
            (a.client(), op_a.clone())
        } else {
            (b.client(), op_b.clone())
        };
        tasks.push(tokio::spawn(async move {
            let res = client
                .create_case(&token, &intake(&format!("两台同时受理 {n}")))
                .await
                .expect("an answer");
            assert_eq!(res.status(), 201);
            let body: Value = res.json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        assert!(
            ids.insert(task.await.unwrap()),
            "a case number was handed out twice"
        );
    }
    assert_eq!(ids.len(), 24);
    // And none was skipped: the day's counter on the store hands out 1 to 24.
    let mut numbers: Vec<u32> = ids.iter().map(|id| id[8..].parse().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=24).collect::<Vec<_>>(), "{ids:?}");

    // Written on A, read on B at A's position: the case and B's lists have it.
    let done = a.create(&op_a, &intake("甲台受理，乙台查看")).await;
    let res = b
        .get(
            Some(&op_b),
            &format!("/api/v1/cases/{}?min_position={}", done.id, done.position),
        )
        .await;
    let status = res.status();
    let case: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["version"], done.version);
    let res = b
        .get(
            Some(&op_b),
            &format!("/api/v1/cases?per_page=100&min_position={}", done.position),
        )
        .await;
    assert_eq!(res.status(), 200);
    let list: Value = res.json().await.unwrap();
    let listed: HashSet<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["id"].as_str())
        .collect();
    assert!(listed.contains(done.id.as_str()), "B's list lacks A's case");
    for id in &ids {
        assert!(listed.contains(id.as_str()), "B's list lacks {id}");
    }

    // B transfers the case A made (A still has version 1 in its cache).
    let (disp_a, disp_b) = (a.login("dispatcher").await, b.login("dispatcher").await);
    let to_housing = json!({ "lead_unit_id": "city.bureau.housing" });
    let moved = b.ok(&disp_b, &done.id, "transfer", &to_housing).await;
    assert_eq!(moved.version, 2);
    // The dispatcher on A still holds version 1: their own stale If-Match is a conflict.
    let res = a
        .post_verb_if_match(&disp_a, &done.id, "transfer", &to_housing, 1)
        .await;
    assert_eq!(res.status(), 409);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["type"], "version_conflict");
    // Without If-Match, A decides on the case as it now is (transferred), not on its cache.
    let res = a
        .post_verb(&disp_a, &done.id, "transfer", &to_housing)
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["type"], "already_transferred", "{problem}");
    // A command on A, after B's, appends at version 3.
    let supervisor = a.login("supervisor").await;
    let urged = a
        .ok(
            &supervisor,
            &done.id,
            "supervise",
            &json!({ "opinion": "请加快办理" }),
        )
        .await;
    assert_eq!(urged.version, 3);
}

/// An administrator's change on one instance reaches the other's memory: a renamed unit is
/// listed by its new name there, and a user disabled there loses the session they had there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_change_on_one_instance_reaches_the_other() {
    let url = fresh_database().await;
    let a = TestApp::spawn_with(&["--store", &url]).await;
    let b = TestApp::spawn_with(&["--store", &url]).await;
    let admin = a.login("admin").await;
    let (op_b, handler_b) = (b.login("operator").await, b.login("housing_handler").await);
    assert_eq!(b.get(Some(&handler_b), "/api/v1/me").await.status(), 200);

    let res = a
        .http
        .post(a.url("/api/v1/units/city.bureau.housing/rename"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "兰州市住房保障和房产管理局" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    wait_until(
        "B lists the unit by its new name",
        Duration::from_secs(10),
        || {
            let (b, op_b) = (&b, &op_b);
            async move {
                let res = b
                    .get(
                        Some(op_b),
                        &format!(
                            "/api/v1/units?q={}",
                            crate::helpers::urlencode("住房保障和房产")
                        ),
                    )
                    .await;
                let units: Value = res.json().await.unwrap();
                units.to_string().contains("兰州市住房保障和房产管理局")
            }
        },
    )
    .await;

    let res = a
        .http
        .post(a.url("/api/v1/users/housing_handler/disable"))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    wait_until(
        "the disabled user's session on B ends",
        Duration::from_secs(10),
        || {
            let (b, handler_b) = (&b, &handler_b);
            async move { b.get(Some(handler_b), "/api/v1/me").await.status() == 401 }
        },
    )
    .await;
}

/// Sessions and passwords are the store's: a token from a sign-in on one instance works at
/// once on the other, a sign-out on one ends it on both, and a user created on one signs in
/// on the other with the one-time password handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_or_password_from_one_instance_works_on_the_other() {
    let url = fresh_database().await;
    let a = TestApp::spawn_with(&["--store", &url]).await;
    let b = TestApp::spawn_with(&["--store", &url]).await;

    let token = a.login("operator").await;
    let me = b.get(Some(&token), "/api/v1/me").await;
    assert_eq!(me.status(), 200, "A's session is unknown to B");
    let res = a
        .http
        .post(a.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    wait_until(
        "the sign-out on A ends the session on B",
        Duration::from_secs(10),
        || {
            let (b, token) = (&b, &token);
            async move { b.get(Some(token), "/api/v1/me").await.status() == 401 }
        },
    )
    .await;
    // A token no instance issued stays refused (after B looked at the log).
    assert_eq!(
        b.get(Some("0123456789abcdef"), "/api/v1/me").await.status(),
        401
    );

    let admin = a.login("admin").await;
    let res = a
        .http
        .post(a.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(
            &json!({ "username": "housing_clerk", "display_name": "马晓燕",
                       "unit_id": "city.bureau.housing", "roles": ["handler"] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let initial = created["initial_password"].as_str().unwrap().to_owned();
    wait_until(
        "B signs the new user in with the one-time password",
        Duration::from_secs(10),
        || {
            let (b, initial) = (&b, &initial);
            async move { b.login_with("housing_clerk", initial).await.status() == 200 }
        },
    )
    .await;
}

/// Whether `app` lists a lock on the operator's account.
async fn operator_locked(app: &TestApp, admin: &str) -> bool {
    let locks: Value = app
        .get(Some(admin), "/api/v1/admin/locks")
        .await
        .json()
        .await
        .unwrap();
    locks
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["kind"] == "account" && l["key"] == "operator")
}

/// The lock-out counts an account's failures on every instance: two wrong passwords on each
/// of two instances lock it on both (four allowed), and an administrator's unlock on one
/// lifts it on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_spread_over_two_instances_lock_the_account_on_both() {
    let url = fresh_database().await;
    let args = ["--store", &url, "--login-max-failures", "4"];
    let a = TestApp::spawn_with(&args).await;
    let b = TestApp::spawn_with(&args).await;
    let (admin_a, admin_b) = (a.login("admin").await, b.login("admin").await);
    for i in 0..2 {
        for app in [&a, &b] {
            let res = app.login_with("operator", &format!("guess-{i}")).await;
            assert_eq!(res.status(), 401);
        }
    }
    for (app, admin, name) in [(&a, &admin_a, "A"), (&b, &admin_b, "B")] {
        wait_until(
            &format!("{name} locks the operator after four failures on both"),
            Duration::from_secs(10),
            || operator_locked(app, admin),
        )
        .await;
        let res = app.login_with("operator", PASSWORD).await;
        assert_eq!(
            res.status(),
            429,
            "{name} let the right password through the lock"
        );
    }

    let res = a
        .http
        .delete(a.url("/api/v1/admin/locks/accounts/operator"))
        .bearer_auth(&admin_a)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    wait_until(
        "the unlock on A lifts the lock on B",
        Duration::from_secs(10),
        || async { !operator_locked(&b, &admin_b).await },
    )
    .await;
    assert_eq!(b.login_with("operator", PASSWORD).await.status(), 200);
}

/// A data directory whose read models follow one store is refused for another: its
/// checkpoints are positions of the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_another_store_is_refused() {
    let url = fresh_database().await;
    let mut embedded = TestApp::spawn().await;
    let op = embedded.login("operator").await;
    embedded.create(&op, &intake("单机时受理")).await;
    embedded.kill_hard();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_minqing"));
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(embedded.data_dir())
        .args(["--store", &url])
        .env("RUST_LOG", "off");
    let (status, stderr) = crate::helpers::run_to_end(serve);
    assert!(!status.success());
    assert!(stderr.contains("another event store"), "{stderr}");
    assert!(
        !stderr.contains("postgres://"),
        "the URL reached the output: {stderr}"
    );
}

/// Two instances under load on the same cases, one killed with `kill -9` in the middle: no
/// acknowledged command is lost, the survivor's read models hold every event once (its
/// subscription skipped or repeated none), and the scheduled jobs' lease passes to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_load_loses_no_acknowledged_command() {
    let url = fresh_database().await;
    let mut a = TestApp::spawn_with(&["--store", &url]).await;
    let b = TestApp::spawn_with(&["--store", &url]).await;
    let (op, dispatcher) = (a.login("operator").await, a.login("dispatcher").await);
    let mut cases = Vec::new();
    for n in 0..4 {
        let id = a.accept(&op, &format!("两台督办 {n}")).await;
        a.ok(
            &dispatcher,
            &id,
            "transfer",
            &json!({ "lead_unit_id": "city.bureau.housing" }),
        )
        .await;
        cases.push(id);
    }
    let (sup_a, sup_b) = (a.login("supervisor").await, b.login("supervisor").await);

    // Supervisors on both instances urge the same four cases, without If-Match.
    let mut load = Vec::new();
    for worker in 0..8 {
        let (client, token) = if worker % 2 == 0 {
            (a.client(), sup_a.clone())
        } else {
            (b.client(), sup_b.clone())
        };
        let cases = cases.clone();
        load.push(tokio::spawn(async move {
            // (case, version) of every acknowledged command; answers lost with A.
            let mut acknowledged = Vec::new();
            let mut unanswered = 0;
            let mut refused = 0;
            for round in 0..40 {
                let id = &cases[(worker + round) % cases.len()];
                let res = client
                    .http
                    .post(format!("{}/api/v1/cases/{id}/supervise", client.base))
                    .bearer_auth(&token)
                    .json(&json!({ "opinion": format!("第 {round} 次督办") }))
                    .send()
                    .await;
                match res {
                    Ok(res) if res.status() == 200 => {
                        let body: Value = res.json().await.unwrap();
                        acknowledged.push((id.clone(), body["version"].as_u64().unwrap()));
                    }
                    // Lost to the other writers more often than the service decides again
                    // (possible under this much contention on four cases): refused, nothing
                    // appended.
                    Ok(res) if res.status() == 409 => refused += 1,
                    Ok(res) => panic!("answered {}: {}", res.status(), res.text().await.unwrap()),
                    // A is gone: this worker is done.
                    Err(_) => {
                        unanswered += 1;
                        break;
                    }
                }
            }
            (acknowledged, unanswered, refused)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let a_pid = a.pid();
    a.kill_hard();
    let mut acknowledged = Vec::new();
    let mut unanswered = 0;
    let mut refused = 0;
    for task in load {
        let (acks, lost, conflicts) = task.await.unwrap();
        acknowledged.extend(acks);
        unanswered += lost;
        refused += conflicts;
    }
    assert!(!acknowledged.is_empty());
    assert!(
        refused * 10 <= acknowledged.len(),
        "{refused} conflicts against {} acknowledged: commands are not decided again",
        acknowledged.len()
    );

    // Every acknowledged command is in the log, each version once.
    let versions: HashSet<&(String, u64)> = acknowledged.iter().collect();
    assert_eq!(
        versions.len(),
        acknowledged.len(),
        "one version acknowledged twice"
    );
    let op_b = b.login("operator").await;
    let mut per_case: HashMap<&str, u64> = HashMap::new();
    for id in &cases {
        let case = b.case(&op_b, id).await;
        let version = case["version"].as_u64().unwrap();
        per_case.insert(id, version);
        let timeline = case["timeline"].as_array().expect("timeline");
        assert_eq!(timeline.len() as u64, version, "{id}: timeline and version");
        for (acked, at) in &acknowledged {
            if acked == id {
                assert!(*at <= version, "{id}: acknowledged version {at} is missing");
            }
        }
        let acked_here = acknowledged.iter().filter(|(c, _)| c == id).count() as u64;
        // accepted + transferred + each urge; at most the unanswered ones more.
        assert!(
            version >= 2 + acked_here,
            "{id}: lost an acknowledged command"
        );
        assert!(
            version <= 2 + acked_here + unanswered,
            "{id}: more events than commands"
        );
    }
    // B's read model (its own subscription) saw every event once: its versions are the log's.
    wait_until(
        "B's list shows the log's versions",
        Duration::from_secs(10),
        || {
            let b = &b;
            let op_b = &op_b;
            let per_case = &per_case;
            async move {
                let res = b.get(Some(op_b), "/api/v1/cases?per_page=100").await;
                let list: Value = res.json().await.unwrap();
                list["items"].as_array().is_some_and(|items| {
                    per_case.iter().all(|(id, version)| {
                        items
                            .iter()
                            .any(|item| item["id"] == *id && item["version"] == *version)
                    })
                })
            }
        },
    )
    .await;

    // The jobs' lease is B's once A is dead (if A held it, the server freed it with A's
    // connection).
    let b_pid = b.pid();
    wait_until("B holds the jobs' lease", Duration::from_secs(15), || {
        let url = url.clone();
        async move { jobs_holder(&url).await == Some(b_pid) }
    })
    .await;
    assert_ne!(a_pid, b_pid);
}

/// PostgreSQL restarted under load: while it is away the service answers 503
/// `storage_unavailable` (never a hang or a 500), and once it is back the same process takes
/// commands again, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_is_503_then_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir: PathBuf = dir.path().join("pg");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres-server");
    let out = Command::new(script)
        .arg("start")
        .arg(&server_dir)
        .output()
        .expect("run scripts/postgres-server");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    struct Stop(PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres-server");
            let _ = Command::new(script).arg("stop").arg(&self.0).status();
        }
    }
    let _stop = Stop(server_dir.clone());
    let app = TestApp::spawn_with(&["--store", &url]).await;
    let op = app.login("operator").await;
    app.create(&op, &intake("重启之前")).await;

    let status = Command::new(script)
        .arg("pause")
        .arg(&server_dir)
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let res = app.create_case(&op, &intake("数据库不在")).await;
    assert_eq!(res.status(), 503, "{}", res.text().await.unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the answer took {:?}",
        started.elapsed()
    );
    let res = app.create_case(&op, &intake("数据库不在")).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["type"], "storage_unavailable");

    let status = Command::new(script)
        .arg("resume")
        .arg(&server_dir)
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let created = loop {
        let res = app.create_case(&op, &intake("数据库回来了")).await;
        if res.status() == 201 {
            let body: Value = res.json().await.unwrap();
            break (
                body["id"].as_str().unwrap().to_owned(),
                body["position"].as_u64().unwrap(),
            );
        }
        assert_eq!(res.status(), 503, "while PostgreSQL comes back");
        assert!(
            Instant::now() < deadline,
            "no command succeeded within 30 s of the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Its read models follow the log again.
    let (id, position) = created;
    let res = app
        .get(
            Some(&op),
            &format!("/api/v1/cases?per_page=100&min_position={position}"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let list: Value = res.json().await.unwrap();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|item| item["id"] == id),
        "the read model did not catch up after the restart"
    );
}
