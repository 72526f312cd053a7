//! `TestApp`: the real `minqing` binary started as a child process on `127.0.0.1:0` with a
//! temporary data directory, and typed helpers to use it as a client would.
//!
//! Logs are silent unless `TEST_LOG=1`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::OnceCell;

/// The password every demo account gets when a test's data directory is seeded.
pub const PASSWORD: &str = "e2e-secret-12345";

/// How long a child may take to print its address or to exit.
const PROCESS_LIMIT: Duration = Duration::from_secs(30);

/// A running `minqing serve` on a data directory that outlives restarts of the process.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The client every helper uses.
    pub http: reqwest::Client,
    data: TempDir,
    /// Extra `serve` arguments.
    args: Vec<String>,
    child: Option<Child>,
    /// An admin session, for reading versions whoever acts (sessions die with the process).
    admin: OnceCell<String>,
}

/// A cheap, `'static` handle for requests from spawned tasks.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    /// `POST /api/v1/cases`; `Err` when the request got no answer (the server died).
    pub async fn create_case(&self, token: &str, body: &Value) -> reqwest::Result<Response> {
        self.http
            .post(format!("{}/api/v1/cases", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
    }
}

/// What a successful command or create returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub id: String,
    pub version: u64,
    pub position: u64,
}

impl Done {
    async fn from_response(res: Response, expected: StatusCode, what: &str) -> Self {
        let status = res.status();
        let text = res.text().await.expect("response body");
        assert_eq!(status, expected, "{what} answered {status}: {text}");
        let v: Value = serde_json::from_str(&text).expect("command response is JSON");
        Done {
            id: v["id"].as_str().expect("response has an id").to_owned(),
            version: v["version"].as_u64().expect("response has a version"),
            position: v["position"].as_u64().expect("response has a position"),
        }
    }
}

impl TestApp {
    /// Starts the binary on a fresh data directory.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts the binary on a fresh data directory with extra `serve` arguments (kept for
    /// restarts).
    pub async fn spawn_with(args: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("temporary data directory");
        Self::spawn_on_with(data, args).await
    }

    /// Starts the binary on a data directory prepared by the test (e.g. `minqing generate`).
    pub async fn spawn_on(data: TempDir) -> Self {
        Self::spawn_on_with(data, &[]).await
    }

    async fn spawn_on_with(data: TempDir, args: &[&str]) -> Self {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let (child, addr) = start_child(&data, &args);
        TestApp {
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // Below the server's idle timeout (60 s), so no request races its close.
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            data,
            args,
            child: Some(child),
            admin: OnceCell::new(),
        }
    }

    /// A handle on a service this test process runs itself (`crate::inprocess::spawn_app`):
    /// the same helpers, no child process.
    pub fn attached(addr: String, data: TempDir) -> Self {
        TestApp {
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            data,
            args: Vec::new(),
            child: None,
            admin: OnceCell::new(),
        }
    }

    /// Starts the binary again on the same data directory (the previous process must be gone).
    pub async fn restart(&mut self) {
        self.restart_logging(None).await;
    }

    /// [`TestApp::restart`] with the process's log (`minqing=info`) written to `log`, for a
    /// test that reads what the service said.
    pub async fn restart_logging(&mut self, log: Option<&std::path::Path>) {
        assert!(self.child.is_none(), "the previous process still runs");
        let (child, addr) = start_child_logging(&self.data, &self.args, log);
        self.base = format!("http://{addr}");
        self.addr = addr;
        // A fresh client: no pooled connections to the dead process.
        self.http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        self.child = Some(child);
        self.admin = OnceCell::new();
    }

    /// The data directory (event store, read database).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the process runs").id()
    }

    /// `kill -9`: SIGKILL, then reap.
    pub fn kill_hard(&mut self) {
        let mut child = self.child.take().expect("the process runs");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap the killed process");
    }

    /// Sends SIGTERM (through `kill -TERM`, the test crate has no libc).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits (bounded) for the process to exit and reaps it.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("the process runs");
        let deadline = Instant::now() + PROCESS_LIMIT;
        loop {
            if let Some(status) = child.try_wait().expect("poll the process") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {PROCESS_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A handle for spawned tasks.
    pub fn client(&self) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in with the demo password; a new session each time.
    pub async fn login(&self, username: &str) -> String {
        let res = self.login_with(username, PASSWORD).await;
        let status = res.status();
        let body: Value = res.json().await.expect("login body");
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        body["token"].as_str().expect("token").to_owned()
    }

    pub async fn login_with(&self, username: &str, password: &str) -> Response {
        self.http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("send login")
    }

    /// `GET` with an optional bearer token.
    pub async fn get(&self, token: Option<&str>, path: &str) -> Response {
        let mut req = self.http.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("send GET")
    }

    /// `POST /api/v1/cases`.
    pub async fn create_case(&self, token: &str, body: &Value) -> Response {
        self.http
            .post(self.url("/api/v1/cases"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("send create")
    }

    /// Creates a case and asserts 201.
    pub async fn create(&self, token: &str, body: &Value) -> Done {
        Done::from_response(
            self.create_case(token, body).await,
            StatusCode::CREATED,
            "create",
        )
        .await
    }

    /// An operator accepts a complaint to transfer; returns its id.
    pub async fn accept(&self, token: &str, title: &str) -> String {
        self.create(token, &intake(title)).await.id
    }

    /// `POST /api/v1/cases/{id}/{verb}`.
    pub async fn post_verb(&self, token: &str, id: &str, verb: &str, body: &Value) -> Response {
        self.verb_request(token, id, verb)
            .json(body)
            .send()
            .await
            .expect("send command")
    }

    /// `POST /api/v1/cases/{id}/{verb}` with `If-Match`.
    pub async fn post_verb_if_match(
        &self,
        token: &str,
        id: &str,
        verb: &str,
        body: &Value,
        version: u64,
    ) -> Response {
        self.verb_request(token, id, verb)
            .header("If-Match", version.to_string())
            .json(body)
            .send()
            .await
            .expect("send command")
    }

    /// A command request to finish and send.
    pub fn verb_request(&self, token: &str, id: &str, verb: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(&format!("/api/v1/cases/{id}/{verb}")))
            .bearer_auth(token)
    }

    /// Runs a command and asserts 200.
    pub async fn ok(&self, token: &str, id: &str, verb: &str, body: &Value) -> Done {
        Done::from_response(
            self.post_verb(token, id, verb, body).await,
            StatusCode::OK,
            verb,
        )
        .await
    }

    /// `PUT /api/v1/cases/{id}/draft`, to finish and send.
    pub fn draft_request(&self, token: &str, id: &str) -> reqwest::RequestBuilder {
        self.http
            .put(self.url(&format!("/api/v1/cases/{id}/draft")))
            .bearer_auth(token)
    }

    /// Replaces a draft's intake and asserts 200.
    pub async fn put_draft(&self, token: &str, id: &str, body: &Value) -> Done {
        let res = self
            .draft_request(token, id)
            .json(body)
            .send()
            .await
            .expect("send draft");
        Done::from_response(res, StatusCode::OK, "PUT draft").await
    }

    /// `GET /api/v1/cases/{id}`.
    pub async fn get_case(&self, token: &str, id: &str) -> Response {
        self.get(Some(token), &format!("/api/v1/cases/{id}")).await
    }

    /// The case view, asserting 200.
    pub async fn case(&self, token: &str, id: &str) -> Value {
        let res = self.get_case(token, id).await;
        let status = res.status();
        let text = res.text().await.expect("case body");
        assert_eq!(status, StatusCode::OK, "GET case {id}: {text}");
        serde_json::from_str(&text).expect("case view is JSON")
    }

    async fn admin_token(&self) -> &str {
        self.admin.get_or_init(|| self.login("admin")).await
    }

    /// The case as an admin sees it (admins see every case).
    pub async fn case_as_admin(&self, id: &str) -> Value {
        let token = self.admin_token().await.to_owned();
        self.case(&token, id).await
    }

    /// The case's stream version.
    pub async fn version(&self, id: &str) -> u64 {
        self.case_as_admin(id).await["version"]
            .as_u64()
            .expect("version")
    }

    /// Sends a request about case `id` that must be refused with `status` and `code`, and
    /// checks nothing was appended to the case.
    pub async fn refused_request(
        &self,
        id: &str,
        req: reqwest::RequestBuilder,
        status: u16,
        code: &str,
    ) -> Value {
        let before = self.version(id).await;
        let problem = assert_problem(req.send().await.expect("send"), status, code).await;
        assert_eq!(
            self.version(id).await,
            before,
            "refused with `{code}` yet the case moved on"
        );
        problem
    }

    /// Runs a command that must be refused with `status` and `code`, and checks nothing was
    /// appended to the case.
    pub async fn refused(
        &self,
        token: &str,
        id: &str,
        verb: &str,
        body: &Value,
        status: u16,
        code: &str,
    ) -> Value {
        self.refused_request(
            id,
            self.verb_request(token, id, verb).json(body),
            status,
            code,
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `minqing serve` and reads its address from the line it prints.
fn start_child(data: &TempDir, args: &[String]) -> (Child, String) {
    start_child_logging(data, args, None)
}

/// [`start_child`], with the log written to `log` when given.
fn start_child_logging(
    data: &TempDir,
    args: &[String],
    log: Option<&std::path::Path>,
) -> (Child, String) {
    let verbose = std::env::var_os("TEST_LOG").is_some_and(|v| v != "0" && !v.is_empty());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minqing"));
    cmd.arg("serve")
        .arg("--addr")
        .arg("127.0.0.1:0")
        .arg("--data")
        .arg(data.path())
        .args(args)
        .env("MINQING_DEMO_PASSWORD", PASSWORD)
        .env_remove("MINQING_ADDR")
        .env_remove("MINQING_DATA")
        .env_remove("MINQING_DEADLINE_WARNING_HOURS")
        .env_remove("MINQING_SWEEP_SCHEDULE")
        .env_remove("MINQING_REPORT_SCHEDULE")
        .env_remove("MINQING_KPI_WEIGHTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if let Some(log) = log {
        let file = std::fs::File::create(log).expect("create the log file");
        cmd.env("RUST_LOG", "minqing=info").stderr(file);
    } else if verbose {
        cmd.stderr(Stdio::inherit());
    } else {
        cmd.env("RUST_LOG", "off").stderr(Stdio::null());
    }
    let mut child = cmd.spawn().expect("start the minqing binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line
                .strip_prefix("minqing listening on http://")
                .map(|a| a.trim().to_owned())
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr);
            }
            if verbose {
                println!("[minqing] {line}");
            }
        }
    });
    match rx.recv_timeout(PROCESS_LIMIT) {
        Ok(addr) => (child, addr),
        Err(err) => {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "minqing did not print its address ({err}); exit: {status:?}; run with TEST_LOG=1"
            );
        }
    }
}

/// Asserts a problem+json answer with this status and `type`; returns its body.
pub async fn assert_problem(res: Response, status: u16, code: &str) -> Value {
    let v = assert_any_problem(res, status).await;
    assert_eq!(v["type"], code, "problem type: {v}");
    v
}

/// Asserts a problem+json answer with this status, whatever its `type`; returns its body.
pub async fn assert_any_problem(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let content_type = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.expect("problem body");
    assert_eq!(got, status, "expected {status}, got {got}: {text}");
    assert_eq!(
        content_type, "application/problem+json",
        "a {status} must be problem+json: {text}"
    );
    let v: Value = serde_json::from_str(&text).expect("problem body is JSON");
    assert!(
        v["type"].as_str().is_some_and(|t| !t.is_empty()),
        "problem type: {text}"
    );
    assert_eq!(v["status"], status, "problem status field: {text}");
    assert!(
        v["title"].as_str().is_some_and(|t| !t.is_empty()),
        "problem title: {text}"
    );
    assert!(
        v["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "problem detail: {text}"
    );
    v
}

/// A complaint in 城关区 ready to transfer.
pub fn intake(title: &str) -> Value {
    json!({
        "caller_name": "王芳",
        "caller_phone": "13912345678",
        "channel": "phone",
        "category": "complaint",
        "kind": "escalated",
        "urgency": "normal",
        "title": title,
        "content": "小区门口夜间占道经营，噪音扰民，请相关部门处理。",
        "address": "城关区酒泉路街道某小区北门",
        "location_unit_id": "d.chengguan.s01",
    })
}

/// An inquiry the operator answers on the call.
pub fn immediate_intake(title: &str) -> Value {
    json!({
        "caller_name": "李强",
        "caller_phone": "0931-8123456",
        "category": "inquiry",
        "kind": "immediate",
        "title": title,
        "content": "咨询公积金提取需要哪些材料。",
        "location_unit_id": "d.chengguan",
    })
}

/// The event types of a case's timeline, in order.
pub fn timeline_types(case: &Value) -> Vec<String> {
    case["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["type"].as_str().expect("event type").to_owned())
        .collect()
}

/// The unit ids of a case's current holders.
pub fn holder_units(case: &Value) -> Vec<String> {
    case["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .map(|h| h["unit_id"].as_str().expect("unit id").to_owned())
        .collect()
}

/// An RFC 3339 time of the API.
pub fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("`{s}` is not RFC 3339: {e}"))
}

/// Runs `cmd` (a `minqing` command that must end by itself, within 60 s) with no input and
/// returns its exit status and stderr.
pub fn run_to_end(mut cmd: Command) -> (ExitStatus, String) {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start minqing");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    (status, stderr)
}

/// `text` as a URL query value (percent-encoded UTF-8).
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
