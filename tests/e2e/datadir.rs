//! One owner per data directory (issue 9 item 8): a running service holds a lock that a second
//! `serve` and a `rebuild` meet before they open or replace anything, and `serve` binds its
//! port before it creates and seeds a new data directory.

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::SystemTime;

use crate::helpers::TestApp;

/// Runs `minqing ARGS --data DATA` to its end and returns its status and stderr.
fn run_to_end(args: &[&str], data: &Path) -> (ExitStatus, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minqing"));
    cmd.args(args)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "off");
    crate::helpers::run_to_end(cmd)
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("`{}`: {e}", path.display()))
}

#[tokio::test]
async fn a_second_serve_and_a_rebuild_on_a_live_data_directory_are_refused() {
    let mut app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let id = app.accept(&operator, "楼道灯坏了").await;
    let read_db = app.data_dir().join("read.db");
    let before = modified(&read_db);

    let (status, stderr) = run_to_end(&["serve", "--addr", "127.0.0.1:0"], app.data_dir());
    assert!(!status.success(), "a second serve started: {stderr}");
    assert!(
        stderr.contains("is in use by another minqing process"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("pid {}", app.pid())), "{stderr}");

    let (status, stderr) = run_to_end(&["rebuild"], app.data_dir());
    assert!(
        !status.success(),
        "rebuild ran on a live directory: {stderr}"
    );
    assert!(
        stderr.contains("is in use by another minqing process"),
        "{stderr}"
    );
    assert_eq!(
        modified(&read_db),
        before,
        "the refused rebuild touched read.db"
    );
    assert!(!app.data_dir().join("read.db.rebuild").exists());

    // The service goes on as if nothing happened.
    let res = app
        .get(Some(&operator), &format!("/api/v1/cases/{id}"))
        .await;
    assert_eq!(res.status(), 200);

    // The lock goes with the process, even a killed one: rebuild then runs.
    app.kill_hard();
    let (status, stderr) = run_to_end(&["rebuild"], app.data_dir());
    assert!(status.success(), "rebuild after the service died: {stderr}");
}

#[test]
fn serve_on_a_taken_port_creates_no_data_directory() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let parent = tempfile::tempdir().expect("dir");
    let data = parent.path().join("data");
    let (status, stderr) = run_to_end(&["serve", "--addr", &addr], &data);
    assert!(!status.success(), "serve started on a taken port: {stderr}");
    assert!(stderr.contains("failed to listen on"), "{stderr}");
    assert!(
        !data.exists(),
        "the data directory was created before the bind"
    );
}
