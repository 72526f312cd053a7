//! `minqing backup` / `restore` and `export` / `import`: every stream comes back event by
//! event, a backup is taken while the service writes, and bad input leaves nothing behind.

use std::path::Path;
use std::process::{Command, Output};

use minqing::backup::streams_of;

use crate::helpers::{PASSWORD, TestApp};

fn minqing(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minqing"))
        .args(args)
        .env("MINQING_DEMO_PASSWORD", PASSWORD)
        .env("RUST_LOG", "off")
        .output()
        .expect("run minqing")
}

fn run(args: &[&str], paths: &[&Path]) -> Output {
    // `args` then each path after its flag, in order: ["backup", "--data", "--to"] + [a, b].
    let mut all: Vec<&std::ffi::OsStr> = vec![args[0].as_ref()];
    for (flag, path) in args[1..].iter().zip(paths) {
        all.push(flag.as_ref());
        all.push(path.as_os_str());
    }
    minqing(&all)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn generated(cases: u64) -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("data directory");
    let out = minqing(&[
        "generate".as_ref(),
        "--data".as_ref(),
        data.path().as_os_str(),
        "--cases".as_ref(),
        cases.to_string().as_ref(),
        "--seed".as_ref(),
        "3".as_ref(),
    ]);
    ok(&out);
    data
}

#[tokio::test]
async fn a_backup_taken_while_the_service_writes_restores_every_stream_and_serves() {
    let app = TestApp::spawn_on(generated(300)).await;
    let operator = app.login("operator").await;
    let before = app.accept(&operator, "备份前受理的工单").await;
    let work = tempfile::tempdir().expect("work directory");
    let file = work.path().join("minqing.backup");
    // Cases keep coming while the copy is taken.
    let writer = {
        let (client, token) = (app.client(), operator.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                let body = crate::helpers::intake(&format!("备份期间受理 {i}"));
                let res = client.create_case(&token, &body).await.expect("request");
                assert!(res.status().is_success(), "{}", res.status());
            }
        })
    };
    let data = app.data_dir().to_owned();
    let file_for = file.clone();
    let out = tokio::task::spawn_blocking(move || {
        run(&["backup", "--data", "--to"], &[&data, &file_for])
    })
    .await
    .expect("backup");
    let summary = ok(&out);
    assert!(summary.contains("备份完成"), "{summary}");
    writer.await.expect("writer");
    // A second backup to the same file is refused, and the first is untouched.
    let size = std::fs::metadata(&file).expect("backup file").len();
    let again = refused(&run(
        &["backup", "--data", "--to"],
        &[app.data_dir(), &file],
    ));
    assert!(again.contains("已存在"), "{again}");
    assert_eq!(std::fs::metadata(&file).expect("backup").len(), size);

    let restored = work.path().join("restored");
    let out = ok(&run(&["restore", "--from", "--data"], &[&file, &restored]));
    assert!(out.contains("已恢复"), "{out}");
    // Every stream of the copy is the source's, event by event, up to the copy's head.
    let copy = streams_of(&restored.join("events.db")).expect("restored streams");
    let source = streams_of(&app.data_dir().join("events.db")).expect("source streams");
    let head = copy
        .values()
        .flatten()
        .map(|e| e.position.0)
        .max()
        .expect("events");
    let source_at_head: std::collections::BTreeMap<_, Vec<_>> = source
        .into_iter()
        .map(|(stream, events)| {
            let kept: Vec<_> = events
                .into_iter()
                .filter(|e| e.position.0 <= head)
                .collect();
            (stream, kept)
        })
        .filter(|(_, events)| !events.is_empty())
        .collect();
    assert_eq!(copy.len(), source_at_head.len());
    assert!(copy == source_at_head, "a restored stream differs");
    assert!(copy.len() > 300, "{} streams", copy.len());
    // Restoring over a directory with a store is refused.
    let twice = refused(&run(&["restore", "--from", "--data"], &[&file, &restored]));
    assert!(twice.contains("已有事件库"), "{twice}");

    // The restored directory serves: its users sign in, the case taken before is there.
    drop(app);
    let copy_dir = tempfile::tempdir().expect("dir");
    for name in ["events.db", "users.json"] {
        std::fs::copy(restored.join(name), copy_dir.path().join(name)).expect("copy");
    }
    let served = TestApp::spawn_on(copy_dir).await;
    let token = served.login("operator").await;
    let res = served.get_case(&token, &before).await;
    assert!(res.status().is_success(), "{}", res.status());
}

#[tokio::test]
async fn an_export_imported_into_an_empty_directory_has_every_stream_and_bad_lines_load_nothing() {
    let data = generated(200);
    let work = tempfile::tempdir().expect("work directory");
    let file = work.path().join("events.jsonl");
    let out = ok(&run(&["export", "--data", "--to"], &[data.path(), &file]));
    assert!(out.contains("已导出"), "{out}");
    let text = std::fs::read_to_string(&file).expect("export");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("a JSON line");
    assert_eq!(first["position"], 1);
    assert!(
        first["data"].is_object(),
        "the payload is JSON, not a string: {first}"
    );

    let loaded = work.path().join("loaded");
    let out = ok(&run(&["import", "--from", "--data"], &[&file, &loaded]));
    assert!(out.contains("已导入"), "{out}");
    let source = streams_of(&data.path().join("events.db")).expect("source");
    let copy = streams_of(&loaded.join("events.db")).expect("copy");
    assert!(source.len() > 200);
    assert!(source == copy, "an imported stream differs");
    // The read models were rebuilt with the import.
    assert!(loaded.join("read.db").exists());

    // A second import into it is refused.
    let again = refused(&run(&["import", "--from", "--data"], &[&file, &loaded]));
    assert!(again.contains("已有事件库"), "{again}");
    // A line that is no event names its line; nothing is left.
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = lines[..10].join("\n");
    bad.push_str("\n{\"position\": 11, \"stream\": 5}\n");
    let bad_file = work.path().join("bad.jsonl");
    std::fs::write(&bad_file, bad).expect("write");
    let empty = work.path().join("empty");
    let err = refused(&run(&["import", "--from", "--data"], &[&bad_file, &empty]));
    assert!(err.contains("第 11 行"), "{err}");
    assert!(!empty.join("events.db").exists());
    // Events out of order for their stream are refused too.
    let stream_of = |line: &str| {
        let v: serde_json::Value = serde_json::from_str(line).expect("line");
        (
            v["stream"].as_str().expect("stream").to_owned(),
            v["version"].as_u64().expect("version"),
        )
    };
    let third = lines
        .iter()
        .map(|l| stream_of(l))
        .find(|(_, version)| *version == 3)
        .expect("a stream of three events")
        .0;
    let second = lines
        .iter()
        .position(|l| stream_of(l) == (third.clone(), 2))
        .expect("its second event");
    let mut swapped: Vec<&str> = lines.clone();
    swapped.remove(second);
    std::fs::write(&bad_file, swapped.join("\n")).expect("write");
    let err = refused(&run(&["import", "--from", "--data"], &[&bad_file, &empty]));
    assert!(err.contains("的版本"), "{err}");
    assert!(!empty.join("events.db").exists());
    // An export is no backup.
    let err = refused(&run(&["restore", "--from", "--data"], &[&file, &empty]));
    assert!(err.contains("备份"), "{err}");
    assert!(!empty.join("events.db").exists());
}
