//! `minqing migrate`: a generated data directory's event log into PostgreSQL, a run killed
//! mid-way and resumed without copying anything twice, the copy verified, and `serve --store`
//! on it answering about a case as the source's service does.
//!
//! Needs the test server of `scripts/test` (`MINQING_TEST_POSTGRES_URL`).

use std::collections::HashSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use minqing::backup::streams_of;
use minqing::store::postgres::PostgresStore;
use minqing::store::{EventStore, Position};
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp};

/// A throwaway schema on the test server, dropped with its tables at the end.
struct Schema {
    admin: tokio_postgres::Client,
    name: String,
    /// A store in the schema.
    url: String,
}

impl Schema {
    async fn new() -> Self {
        let server = std::env::var("MINQING_TEST_POSTGRES_URL").expect(
            "MINQING_TEST_POSTGRES_URL is not set: the postgres tests need a server \
             (scripts/test starts one)",
        );
        let name = format!("e2e_migrate_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&server).await;
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create a schema");
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-csearch_path%3D{name}");
        Schema { admin, name, url }
    }

    /// Events in the schema's store (0 before the store made its tables).
    async fn events(&self) -> i64 {
        let table = format!("{}.events", self.name);
        let exists: bool = self
            .admin
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .expect("look for the events")
            .get(0);
        if !exists {
            return 0;
        }
        self.admin
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count the events")
            .get(0)
    }

    async fn drop(self) {
        let _ = self
            .admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .await;
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(connection);
    client
}

fn minqing() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minqing"));
    cmd.env("MINQING_DEMO_PASSWORD", PASSWORD)
        .env("RUST_LOG", "off")
        .env_remove("MINQING_STORE");
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run minqing")
}

fn ok(out: &Output) -> (String, String) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "failed: {stdout}\n{stderr}");
    (stdout, stderr)
}

fn migrate(data: &std::path::Path, url: &str) -> Command {
    let mut cmd = minqing();
    cmd.arg("migrate")
        .arg("--from")
        .arg(data)
        .arg("--to")
        .arg(url);
    cmd
}

/// The case view without the positions of its timeline (the target gives its own), after
/// checking they still rise in the timeline's order.
fn without_positions(mut case: Value) -> Value {
    let timeline = case["timeline"].as_array_mut().expect("a timeline");
    let positions: Vec<u64> = timeline
        .iter_mut()
        .map(|entry| {
            let object = entry.as_object_mut().expect("an entry");
            object
                .remove("position")
                .and_then(|p| p.as_u64())
                .expect("a position")
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    case
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_killed_mid_way_resumes_verifies_and_serves_the_same_cases() {
    let data = tempfile::tempdir().expect("data directory");
    ok(&output(
        minqing()
            .args(["generate", "--cases", "300", "--seed", "5", "--data"])
            .arg(data.path()),
    ));
    let events_file = data.path().join("events.db");
    let source = streams_of(&events_file).expect("the source's streams");
    let total: usize = source.values().map(Vec::len).sum();
    assert!(total > 1000, "{total} events");
    let schema = Schema::new().await;

    // A first run, in small transactions, is stopped part-way: the test takes a lock that
    // holds back its next insert, then kills it (SIGKILL) while it waits.
    let mut first = migrate(data.path(), &schema.url)
        .args(["--batch-events", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start minqing migrate");
    let deadline = Instant::now() + Duration::from_secs(60);
    while schema.events().await < 200 {
        assert!(Instant::now() < deadline, "the first run copied nothing");
        assert!(
            first.try_wait().expect("poll").is_none(),
            "the first run ended early"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    schema
        .admin
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {}.events IN SHARE MODE",
            schema.name
        ))
        .await
        .expect("lock the target");
    let copied = usize::try_from(schema.events().await).expect("a count");
    assert!(
        copied >= 200 && copied < total,
        "{copied} of {total} copied when stopped"
    );
    // Still waiting for the lock, with a transaction open.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(first.try_wait().expect("poll").is_none(), "the run ended");
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");
    schema
        .admin
        .batch_execute("ROLLBACK")
        .await
        .expect("unlock");
    assert_eq!(usize::try_from(schema.events().await).unwrap(), copied);

    // The rerun finds what is there, copies the rest and verifies.
    let (stdout, stderr) = ok(&output(&mut migrate(data.path(), &schema.url)));
    assert!(
        stdout.contains(&format!(
            "migrated {} events of `{}`",
            total - copied,
            data.path().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("resumed after the {copied} already there")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("verified: {total} events")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "already holds the first {copied} of {total} events"
        )),
        "{stderr}"
    );

    // Event by event the source's, in its order; only the positions are new.
    let target = PostgresStore::open(&schema.url).await.expect("the target");
    let copy = target
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read the target");
    assert_eq!(copy.len(), total);
    let ids: HashSet<_> = copy.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), total, "an event was copied twice");
    let mut in_order: Vec<_> = source.values().flatten().collect();
    in_order.sort_by_key(|e| e.position);
    for (copied, original) in copy.iter().zip(&in_order) {
        let strip = |e: &minqing::store::RecordedEvent| {
            let mut e = e.clone();
            e.position = Position::START;
            e
        };
        assert_eq!(strip(copied), strip(original));
    }
    drop(target);

    // A third run only verifies.
    let (stdout, _) = ok(&output(&mut migrate(data.path(), &schema.url)));
    assert!(
        stdout.contains(&format!("already holds all {total} events")),
        "{stdout}"
    );
    assert!(stdout.contains("nothing copied"), "{stdout}");

    // The copy serves: an instance with a fresh data directory on it shows a case as the
    // source's own service does, and a migration of a served directory is refused.
    let case_id = source
        .iter()
        .filter(|(stream, _)| stream.starts_with("case-"))
        .max_by_key(|(_, events)| events.len())
        .map(|(stream, _)| stream.trim_start_matches("case-").to_owned())
        .expect("a case");
    let data_path = data.path().to_owned();
    let original = TestApp::spawn_on(data).await;
    let out = output(&mut migrate(&data_path, &schema.url));
    assert!(!out.status.success());
    let refusal = String::from_utf8_lossy(&out.stderr);
    assert!(
        refusal.contains("in use by another minqing process"),
        "{refusal}"
    );
    let moved = TestApp::spawn_with(&["--store", &schema.url]).await;
    let before = original.case_as_admin(&case_id).await;
    let after = moved.case_as_admin(&case_id).await;
    assert_eq!(without_positions(after), without_positions(before));
    drop(moved);
    drop(original);
    schema.drop().await;
}
