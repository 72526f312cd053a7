//! The workbench in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver) with fantoccini, against the real binary. Each test signs in as a demo user and
//! does one piece of someone's work, reading the page by its visible Chinese text. Any
//! JavaScript error in the browser's console fails the test.
//!
//! `scripts/test` installs `chromium`, `chromium-driver` and `fonts-wqy-microhei` (as root
//! with apt-get); without them these tests fail and say so. With `MINQING_SCREENSHOTS=1` they
//! rewrite the screenshots in `docs/screenshots/` (1366×768).

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{PASSWORD, TestApp};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what a test waits for.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// One browser at a time: two cores do not run several Chromiums and the server well.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A headless Chromium with a fresh profile, and its chromedriver.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Drop for Browser {
    /// Ends chromedriver and the browser it started: they are a process group of their own,
    /// so a test that fails before `close` leaves no Chromium behind.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// chromedriver's log endpoint (`goog:loggingPrefs`), which fantoccini does not wrap.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    pub(crate) async fn start() -> Self {
        for tool in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: the browser tests need Debian's chromium and \
                 chromium-driver; run `scripts/test`, which installs them (as root)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run", "--lang=zh-CN",
                    "--window-size=1366,768",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".to_owned(), json!({ "browser": "ALL" }));
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(err) if started.elapsed() > WAIT => panic!("chromedriver did not start: {err}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The console's entries since the last call.
    pub(crate) async fn log(&self) -> Vec<Value> {
        let res = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("browser log");
        res.as_array().cloned().unwrap_or_default()
    }

    /// Fails on any error in the console since the last call. A page answered with a
    /// refusal's status (the sign-in form's 401, the stale case's 409, a rule's 422) is
    /// reported by Chromium as a network error of the document: that is the page's honest
    /// status, not a script's failure, and is let through; a failed script, style, icon or
    /// htmx request is not.
    pub(crate) async fn assert_no_console_errors(&self) {
        let errors: Vec<Value> = self
            .log()
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE" && !is_refused_page(e))
            .collect();
        assert!(
            errors.is_empty(),
            "errors in the browser console: {errors:#?}"
        );
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("open page");
    }

    /// The element with this XPath, once it is there.
    pub(crate) async fn wait_for(&self, xpath: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("no `{xpath}` on the page: {e}"))
    }

    /// The visible text of the element with this XPath.
    pub(crate) async fn text(&self, xpath: &str) -> String {
        self.wait_for(xpath)
            .await
            .text()
            .await
            .expect("element text")
    }

    /// Waits until the element with this XPath shows `want` (e.g. a count htmx updates).
    pub(crate) async fn wait_for_text(&self, xpath: &str, want: &str) {
        let started = Instant::now();
        loop {
            let text = self.text(xpath).await;
            if text.trim() == want {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "`{xpath}` shows `{text}`, not `{want}`"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub(crate) async fn sign_in(&self, base: &str, username: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.wait_for("//input[@id='username']")
            .await
            .send_keys(username)
            .await
            .expect("type the username");
        self.wait_for("//input[@id='password']")
            .await
            .send_keys(password)
            .await
            .expect("type the password");
        self.wait_for("//button[normalize-space()='登录']")
            .await
            .click()
            .await
            .expect("click 登录");
    }

    /// With `MINQING_SCREENSHOTS=1`, the page as `docs/screenshots/NAME.png`.
    pub(crate) async fn screenshot(&self, name: &str) {
        if std::env::var("MINQING_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).expect("docs/screenshots");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
    }

    pub(crate) async fn close(self) {
        self.assert_no_console_errors().await;
        let client = self.client.clone();
        client.close().await.expect("close the browser");
    }
}

/// Clicks the element with this XPath, once it is there. An element that htmx swapped out
/// between finding and clicking it (a list that refreshes as the user types), or that the
/// settling layout covered at that instant, is found again.
pub(crate) async fn click(browser: &Browser, xpath: &str) {
    for attempt in 0.. {
        match browser.wait_for(xpath).await.click().await {
            Ok(()) => return,
            // Swapped out, or covered for a moment by what a swap moved (the layout settling).
            Err(fantoccini::error::CmdError::Standard(e))
                if matches!(
                    e.error,
                    fantoccini::error::ErrorStatus::StaleElementReference
                        | fantoccini::error::ErrorStatus::ElementClickIntercepted
                ) && attempt < 5 =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("click `{xpath}`: {e}"),
        }
    }
}

/// Types `text` into the element with this XPath, once it is there.
pub(crate) async fn type_into(browser: &Browser, xpath: &str, text: &str) {
    browser
        .wait_for(xpath)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into `{xpath}`: {e}"));
}

/// Signs out from the header and waits for the sign-in page.
pub(crate) async fn sign_out(browser: &Browser) {
    click(browser, "//button[normalize-space()='退出登录']").await;
    browser.wait_for("//h1[normalize-space()='登录']").await;
}

/// A console entry for a page document (sign-in, case page, operator's console) answered
/// 401, 409, 422 or 429.
fn is_refused_page(entry: &Value) -> bool {
    let message = entry["message"].as_str().unwrap_or_default();
    let Some((url, rest)) = message.split_once(" - ") else {
        return false;
    };
    let path = url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    // A page document: anything but an asset or the API (a refused page is still a page).
    let page = !path.starts_with("/assets/") && !path.starts_with("/api/");
    let refusal = ["401", "403", "404", "409", "422", "429"]
        .iter()
        .any(|status| rest.contains(&format!("status of {status} ")));
    entry["source"] == "network" && page && refusal
}

/// The tab of a work list by its label, and its count.
pub(crate) fn tab(label: &str) -> String {
    format!("//nav[@id='tabs']//a[contains(normalize-space(), '{label}')]")
}
pub(crate) fn tab_count(label: &str) -> String {
    format!("{}/span[contains(@class, 'count')]", tab(label))
}

/// A case the city centre accepted and transferred to 市住建局; returns its number.
pub(crate) async fn transferred_to_housing(app: &TestApp, title: &str) -> String {
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let id = app.accept(&operator, title).await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    id
}

#[tokio::test]
async fn the_housing_handler_receives_a_case_from_the_work_list() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let id = transferred_to_housing(&app, "楼道照明损坏无人维修").await;
    let browser = Browser::start().await;

    browser.goto(&app.url("/login")).await;
    browser.wait_for("//h1[normalize-space()='登录']").await;
    browser.screenshot("login").await;
    browser
        .sign_in(&app.base, "housing_handler", PASSWORD)
        .await;
    // Who is signed in, always in the header.
    let who = browser.text("//*[@aria-label='当前用户']").await;
    assert!(who.contains("市住建局") || who.contains("住房"), "{who}");
    assert!(who.contains("办理人员"), "{who}");
    browser.wait_for_text(&tab_count("待签收"), "1").await;

    // New work shows up without a reload: the counts are polled.
    browser
        .client
        .execute("window.minqingNotReloaded = true;", vec![])
        .await
        .expect("mark the page");
    let second = transferred_to_housing(&app, "小区电梯频繁故障").await;
    browser.wait_for_text(&tab_count("待签收"), "2").await;
    // ... and so are the rows of the list shown.
    browser
        .wait_for(&format!(
            "//div[@id='rows']//a[normalize-space()='{second}']"
        ))
        .await;
    let kept = browser
        .client
        .execute("return window.minqingNotReloaded === true;", vec![])
        .await
        .expect("read the mark");
    assert_eq!(kept, json!(true), "the page was reloaded");

    browser
        .wait_for(&tab("待签收"))
        .await
        .click()
        .await
        .expect("open 待签收");
    let row = format!("//table//tr[.//a[normalize-space()='{id}']]");
    let mark = browser
        .wait_for(&format!("{row}//span[contains(@class, 'time-left')]"))
        .await;
    let left = mark.text().await.expect("time left");
    assert!(
        left.starts_with("剩余") || left.starts_with("已超时"),
        "{left}"
    );
    assert!(browser.text(&row).await.contains("已转办"));
    browser.screenshot("worklist").await;

    browser
        .wait_for("//table//a[normalize-space()='楼道照明损坏无人维修']")
        .await
        .click()
        .await
        .expect("open the case");
    browser
        .wait_for("//h1[normalize-space()='楼道照明损坏无人维修']")
        .await;
    assert!(
        browser
            .text("//*[@aria-label='状态']")
            .await
            .contains("已转办")
    );
    // The bureau holds the case now, so it may see the caller (rule 12), masked until it asks
    // (`browser_case` reveals and finds the view recorded).
    let fields = browser.text("//dl[contains(@class, 'fields')]").await;
    assert!(fields.contains("139****5678"), "{fields}");
    browser
        .wait_for("//button[normalize-space()='显示完整来电信息']")
        .await;
    assert!(
        browser
            .text("//ol[contains(@class, 'timeline')]")
            .await
            .contains("转办")
    );

    browser
        .wait_for("//button[normalize-space()='签收']")
        .await
        .click()
        .await
        .expect("click 签收");
    browser
        .wait_for("//*[@role='status'][contains(., '已签收')]")
        .await;
    assert!(
        browser
            .text("//*[@aria-label='状态']")
            .await
            .contains("正在办理")
    );
    assert!(
        browser
            .text("//ol[contains(@class, 'timeline')]")
            .await
            .contains("签收")
    );

    browser
        .wait_for("//a[contains(., '我的待办')][starts-with(@href, '/?min_position=')]")
        .await
        .click()
        .await
        .expect("back to the lists");
    browser.wait_for_text(&tab_count("待签收"), "1").await;
    browser.wait_for_text(&tab_count("办理中"), "1").await;
    browser
        .wait_for(&tab("办理中"))
        .await
        .click()
        .await
        .expect("open 办理中");
    browser
        .wait_for(&format!("//table//a[normalize-space()='{id}']"))
        .await;
    let api = app.login("housing_handler").await;
    assert_eq!(app.case(&api, &second).await["status"], "transferred");
    browser.close().await;
}

#[tokio::test]
async fn a_wrong_password_is_said_in_place() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser
        .sign_in(&app.base, "housing_handler", "not-the-password")
        .await;
    let alert = browser.text("//*[@role='alert']").await;
    assert_eq!(alert, "用户名或密码错误");
    let username = browser
        .wait_for("//input[@id='username']")
        .await
        .prop("value")
        .await
        .expect("username value");
    assert_eq!(username.as_deref(), Some("housing_handler"));
    browser.close().await;
}

#[tokio::test]
async fn a_stale_case_page_says_so_instead_of_failing() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let id = transferred_to_housing(&app, "路灯不亮").await;
    let browser = Browser::start().await;
    browser
        .sign_in(&app.base, "housing_handler", PASSWORD)
        .await;
    browser.wait_for(&tab("待签收")).await;
    browser.goto(&app.url(&format!("/cases/{id}"))).await;
    browser.wait_for("//button[normalize-space()='签收']").await;

    // Meanwhile the efficiency office presses the bureau: the case moves on.
    let supervisor = app.login("supervisor").await;
    app.ok(
        &supervisor,
        &id,
        "supervise",
        &json!({ "opinion": "请尽快签收" }),
    )
    .await;

    browser
        .wait_for("//button[normalize-space()='签收']")
        .await
        .click()
        .await
        .expect("click 签收");
    let notice = browser.text("//*[@role='status']").await;
    assert!(notice.contains("工单已被他人更新"), "{notice}");
    assert!(
        browser
            .text("//ol[contains(@class, 'timeline')]")
            .await
            .contains("督办")
    );
    browser
        .wait_for("//*[@role='status']//a[normalize-space()='重新加载']")
        .await
        .click()
        .await
        .expect("reload");
    browser
        .wait_for("//button[normalize-space()='签收']")
        .await
        .click()
        .await
        .expect("click 签收 again");
    browser
        .wait_for("//*[@role='status'][contains(., '已签收')]")
        .await;
    browser.close().await;
}
