//! The OpenAPI document against real tools: a validator (`openapi-spec-validator`) and a
//! property-based fuzzer (`schemathesis`) run against the running server, logged in, checking
//! that no request gets a 5xx and that every response is as documented. The tools live in a
//! Python virtual environment made by `scripts/test` (`MINQING_PYTHON_TOOLS`, default
//! `.venv/bin` in the checkout); without them these tests fail and say how to install them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp};

/// Test cases per operation and user: enough to find what the fuzzer found so far, small
/// enough that the whole run stays well under three minutes on two cores.
const EXAMPLES_PER_OPERATION: &str = "25";
/// The fuzzer's seed, so a failure in CI replays the same requests (override with
/// `MINQING_FUZZ_SEED`).
const DEFAULT_SEED: &str = "12345";
/// How long the search indexes of a fresh data directory may take to catch up.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

/// The directory holding the Python tools, or a failure saying how to get them.
fn tools() -> PathBuf {
    let dir = std::env::var_os("MINQING_PYTHON_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin"));
    for tool in ["openapi-spec-validator", "st"] {
        assert!(
            dir.join(tool).is_file(),
            "`{tool}` is not in `{}`: run the tests with `scripts/test`, which installs the \
             pinned Python tools of scripts/python-tools.txt into `.venv`, or point \
             MINQING_PYTHON_TOOLS at a directory holding `openapi-spec-validator` and `st`",
            dir.display()
        );
    }
    dir
}

fn run(mut cmd: Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn document(app: &TestApp) -> Value {
    let res = app.get(None, "/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    res.json().await.expect("the document is JSON")
}

/// Every operation of the document: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn the_openapi_document_passes_an_openapi_validator() {
    let tools = tools();
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).expect("serialise")).expect("write");
    let mut cmd = Command::new(tools.join("openapi-spec-validator"));
    cmd.arg(&file);
    let out = run(cmd, "openapi-spec-validator");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn query_parameters_are_in_the_query_and_say_whether_they_are_required() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let params = |path: &str, method: &str| -> Vec<Value> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has parameters"))
            .clone()
    };
    let list = params("/api/v1/cases", "get");
    for name in [
        "status",
        "overdue",
        "category",
        "unit_id",
        "caller_phone",
        "q",
        "page",
        "per_page",
        "min_position",
    ] {
        let p = list
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("GET /api/v1/cases declares `{name}`"));
        assert_eq!(p["in"], "query", "{p}");
        assert_eq!(p["required"], false, "{p}");
    }
    let page = list.iter().find(|p| p["name"] == "page").expect("page");
    assert_eq!(page["schema"]["type"], "integer", "{page}");
    let worklist = params("/api/v1/worklist", "get");
    let which = worklist.iter().find(|p| p["name"] == "list").expect("list");
    assert_eq!(
        (&which["in"], &which["required"]),
        (&"query".into(), &true.into())
    );
    // Nothing but real path segments is `in: path`.
    for (path, method, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                let segment = format!("{{{}}}", p["name"].as_str().expect("name"));
                assert!(path.contains(&segment), "{method} {path}: {p}");
            }
        }
    }
}

#[tokio::test]
async fn every_operation_but_login_needs_the_bearer_token_and_declares_its_errors() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&"http".into(), &"bearer".into())
    );
    for (path, method, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        if path == "/api/v1/auth/login" {
            assert!(op.get("security").is_none(), "login needs no token: {op}");
        } else {
            assert_eq!(
                op["security"],
                serde_json::json!([{ "bearer": [] }]),
                "{method} {path}"
            );
            assert!(
                responses.contains_key("401"),
                "{method} {path} declares 401"
            );
        }
        if op.get("requestBody").is_some() {
            // A write the disk cannot take is 503 `storage_unavailable`.
            for status in ["400", "413", "415", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} declares {status}"
                );
            }
        }
        if path.contains('{') {
            assert!(
                responses.contains_key("404"),
                "{method} {path} declares 404"
            );
        }
        for (status, res) in responses {
            if status.as_str() >= "400" {
                assert_eq!(
                    res["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
            assert!(
                res["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{method} {path} {status} has a description"
            );
        }
    }
    for path in ["/api/v1/kpis", "/api/v1/reports/daily"] {
        let content = &doc["paths"][path]["get"]["responses"]["200"]["content"];
        assert!(content.get("text/csv").is_some(), "{path}: {content}");
        assert!(
            content.get("application/json").is_some(),
            "{path}: {content}"
        );
    }
    // Verbs without fields take no body.
    let receive = &doc["paths"]["/api/v1/cases/{id}/receive"]["post"]["requestBody"];
    assert_eq!(receive["required"], false, "{receive}");
}

/// Waits (bounded) until both search indexes follow the store: before, searches answer 503
/// by design, which the fuzzer would rightly report as server errors.
async fn wait_until_caught_up(app: &TestApp, token: &str) {
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    loop {
        let status: Value = app
            .get(Some(token), "/api/v1/status")
            .await
            .json()
            .await
            .expect("status JSON");
        if status["kb_index"]["state"] == "following"
            && status["case_index"]["state"] == "following"
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "indexes still catching up: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `st run` against the server as `username`; the fuzzer's output on failure.
fn fuzz(tools: &Path, app: &TestApp, username: &str, token: &str) {
    let seed = std::env::var("MINQING_FUZZ_SEED").unwrap_or_else(|_| DEFAULT_SEED.to_owned());
    let reports = tempfile::tempdir().expect("report directory");
    let mut cmd = Command::new(tools.join("st"));
    cmd.arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // Logging out would end the session the rest of the run uses.
        .args(["--exclude-path", "/api/v1/auth/logout"])
        // So would disabling the fuzzing user, resetting its password or taking its roles
        // (tests/e2e/admin.rs covers those commands).
        .args([
            "--exclude-path-regex",
            r"^/api/v1/users/\{username\}/(disable|reset-password|change)$",
        ])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", EXAMPLES_PER_OPERATION])
        .args(["--seed", &seed])
        .args(["--workers", "2"])
        .args(["--request-timeout", "10"])
        .args(["--no-color"])
        .arg("--report-dir")
        .arg(reports.path())
        // Its caches stay out of the checkout.
        .current_dir(reports.path())
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env(
            "PYTHONPATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts"),
        )
        .env("NO_COLOR", "1");
    let out = run(cmd, &format!("schemathesis as `{username}`"));
    let text = String::from_utf8_lossy(&out.stdout);
    // The figures, for the log of the run.
    for line in text
        .lines()
        .filter(|l| l.contains("Operations:") || l.contains("generated") || l.contains("Selected:"))
    {
        println!("schemathesis as {username}: {}", line.trim());
    }
}

#[tokio::test]
async fn the_fuzzer_finds_no_server_error_and_every_response_as_documented() {
    let tools = tools();
    let app = TestApp::spawn().await;
    // A dispatcher works cases; an admin may do everything else (users, articles, locks).
    // Both log in before the fuzzer runs: its wrong passwords lock out its own address.
    let mut sessions = Vec::new();
    for username in ["dispatcher", "admin"] {
        let res = app.login_with(username, PASSWORD).await;
        assert_eq!(res.status(), 200);
        let token = res.json::<Value>().await.expect("login JSON")["token"]
            .as_str()
            .expect("token")
            .to_owned();
        sessions.push((username, token));
    }
    for (username, token) in sessions {
        wait_until_caught_up(&app, &token).await;
        // The fuzzer blocks this thread; the server is another process.
        fuzz(&tools, &app, username, &token);
    }
}

/// The operations of the README's API table (`## API`): each row's first cell lists
/// `METHOD /path` items (a query string after `?` ignored); `POST /api/v1/cases/{id}/{verb}`
/// stands for every verb its second cell names in backticks.
fn readme_operations() -> std::collections::BTreeSet<(String, String)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## API\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("an `## API` section");
    let mut out = std::collections::BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let first = cells[0].trim_start_matches("| ");
        for item in first.split(", ") {
            let item = item.trim_matches('`');
            let Some((method, path)) = item.split_once(' ') else {
                continue;
            };
            if !path.starts_with('/') || !method.chars().all(|c| c.is_ascii_uppercase()) {
                continue;
            }
            let path = path.split('?').next().unwrap_or(path).to_owned();
            if path.ends_with("/{verb}") {
                let verbs = cells.get(1).copied().unwrap_or_default();
                let is_verb = |v: &&str| {
                    v.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-' || c == '/')
                };
                for verb in verbs.split('`').skip(1).step_by(2).filter(is_verb) {
                    out.insert((method.to_lowercase(), path.replace("{verb}", verb)));
                }
            } else {
                out.insert((method.to_lowercase(), path));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_readme_api_table_lists_exactly_the_documented_operations() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.insert((method.to_owned(), path.clone()));
            }
        }
    }
    // Outside the generated document: liveness.
    documented.insert(("get".to_owned(), "/healthz".to_owned()));
    let listed = readme_operations();
    let missing: Vec<_> = documented.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&documented).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README's API table and /api/v1/openapi.json differ:\n  not in the README: \
         {missing:?}\n  not in the document: {stale:?}"
    );
}
