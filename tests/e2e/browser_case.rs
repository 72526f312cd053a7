//! 工单详情 in a real browser: every action the viewer may take now is a form on the page,
//! refusals are said in place in Chinese, a stale page says so, the caller's identity is
//! revealed by a deliberate, recorded click. The JSON API sets cases up quickly; the part
//! under test is done through the page, as a person would.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::{Browser, ONE_BROWSER, click, sign_out, transferred_to_housing, type_into};
use crate::helpers::{PASSWORD, TestApp, intake};

/// The block of an action by its label (签收 is a plain button; the others open).
fn action(label: &str) -> String {
    format!("//section[@aria-label='可执行操作']//details[summary[normalize-space()='{label}']]")
}

/// Opens the action `label`, types `text` into its text (if any) and presses `button`.
async fn run(browser: &Browser, label: &str, text: &str, button: &str) {
    let block = action(label);
    click(browser, &format!("{block}/summary")).await;
    if !text.is_empty() {
        type_into(browser, &format!("{block}//textarea"), text).await;
    }
    click(
        browser,
        &format!("{block}//button[normalize-space()='{button}']"),
    )
    .await;
}

/// Waits for the notice above the case to say `text`.
async fn notice(browser: &Browser, text: &str) {
    browser
        .wait_for(&format!("//*[@role='status'][contains(., '{text}')]"))
        .await;
}

async fn open_case(browser: &Browser, app: &TestApp, id: &str) {
    browser.goto(&app.url(&format!("/cases/{id}"))).await;
    browser.wait_for("//*[@aria-label='状态']").await;
}

const TIMELINE: &str = "//ol[contains(@class, 'timeline')]";

async fn count(browser: &Browser, xpath: &str) -> usize {
    browser
        .client
        .find_all(Locator::XPath(xpath))
        .await
        .expect("find elements")
        .len()
}

/// Waits until `xpath` matches `want` elements (a list htmx narrows).
async fn wait_for_count(browser: &Browser, xpath: &str, want: usize) {
    let started = Instant::now();
    loop {
        let n = count(browser, xpath).await;
        if n == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "`{xpath}` matches {n}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The pages of a PDF as Chromium writes it (each page a `/Type /Page` dictionary).
fn pdf_pages(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    text.match_indices("/Type /Page")
        .filter(|(at, m)| !text[at + m.len()..].starts_with('s'))
        .count()
}

#[tokio::test]
async fn the_street_receives_records_progress_and_completes_and_the_centre_calls_back_and_reopens()
{
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let district = app.login("chengguan_dispatcher").await;
    let id = app.accept(&operator, "路灯不亮影响夜间出行").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan" }),
    )
    .await;
    app.ok(&district, &id, "receive", &json!({})).await;
    app.ok(
        &district,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.s01", "note": "请街道核实处理" }),
    )
    .await;

    let browser = Browser::start().await;
    browser
        .sign_in(&app.base, "chengguan_s01_handler", PASSWORD)
        .await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    open_case(&browser, &app, &id).await;
    click(&browser, "//button[normalize-space()='签收']").await;
    notice(&browser, "已签收").await;
    let holders = browser.text("//table[contains(@class, 'holders')]").await;
    assert!(holders.contains("按时签收"), "{holders}");

    run(
        &browser,
        "办理记录",
        "已联系供电所，明日上门检修",
        "保存办理记录",
    )
    .await;
    notice(&browser, "已记录办理情况").await;
    assert!(
        browser
            .text(TIMELINE)
            .await
            .contains("已联系供电所，明日上门检修")
    );
    run(&browser, "办结", "路灯已修复，恢复照明", "确认办结").await;
    notice(&browser, "已办结").await;
    let timeline = browser.text(TIMELINE).await;
    assert!(timeline.contains("路灯已修复，恢复照明"), "{timeline}");
    assert!(timeline.contains("按时办结"), "{timeline}");
    // Its part done, the street has nothing more to do here.
    assert_eq!(
        count(&browser, "//section[@aria-label='可执行操作']//details").await,
        0
    );
    sign_out(&browser).await;

    // The centre calls the citizen back: not satisfied, not solved; then reopens.
    browser.sign_in(&app.base, "operator", PASSWORD).await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    open_case(&browser, &app, &id).await;
    let callback = action("回访");
    click(&browser, &format!("{callback}/summary")).await;
    click(
        &browser,
        &format!("{callback}//label[normalize-space()='不满意']/input"),
    )
    .await;
    click(
        &browser,
        &format!("{callback}//label[normalize-space()='未解决']/input"),
    )
    .await;
    type_into(
        &browser,
        &format!("{callback}//textarea"),
        "市民反映路灯仍时亮时灭",
    )
    .await;
    click(
        &browser,
        &format!("{callback}//button[normalize-space()='保存回访结果']"),
    )
    .await;
    notice(&browser, "已回访").await;
    assert!(browser.text(TIMELINE).await.contains("不满意，未解决"));

    // A reopen without a reason is refused, and said in the form itself.
    run(&browser, "重办", "", "确认重办").await;
    let alert = browser
        .text(&format!("{}//*[@role='alert']", action("重办")))
        .await;
    assert_eq!(alert, "必填项未填写");
    type_into(
        &browser,
        &format!("{}//textarea", action("重办")),
        "市民不满意，请街道重新核查线路",
    )
    .await;
    click(
        &browser,
        &format!("{}//button[normalize-space()='确认重办']", action("重办")),
    )
    .await;
    notice(&browser, "已重办").await;
    let timeline = browser.text(TIMELINE).await;
    assert!(
        timeline.contains("市民不满意，请街道重新核查线路"),
        "{timeline}"
    );
    browser.screenshot("case").await;
    assert_eq!(app.case(&operator, &id).await["n_reopened"], 1);
    // Printed, the case (every field and the whole timeline) fits one A4 page.
    let config = fantoccini::wd::PrintConfiguration::builder()
        .shrink_to_fit(false)
        .build()
        .expect("print settings");
    let pdf = browser.client.print(config).await.expect("print to PDF");
    assert_eq!(
        pdf_pages(&pdf),
        1,
        "the printed case takes more than one page"
    );
    browser.close().await;
}

#[tokio::test]
async fn a_return_is_asked_and_accepted_then_a_joint_transfer_offers_only_allowed_units_and_is_recalled()
 {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let id = transferred_to_housing(&app, "小区绿化带被私自占用").await;

    let browser = Browser::start().await;
    browser
        .sign_in(&app.base, "housing_handler", PASSWORD)
        .await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    open_case(&browser, &app, &id).await;
    run(
        &browser,
        "申请退回",
        "该事项属城关区管辖，非本局职责",
        "提交退回申请",
    )
    .await;
    notice(&browser, "已提交退回申请").await;
    sign_out(&browser).await;

    browser.sign_in(&app.base, "dispatcher", PASSWORD).await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    open_case(&browser, &app, &id).await;
    run(&browser, "审核退回", "", "同意退回").await;
    notice(&browser, "已审核退回申请").await;
    assert!(browser.text(TIMELINE).await.contains("同意退回"));

    // The transfer offers exactly the units the rules allow the city centre now.
    let dispatcher = app.login("dispatcher").await;
    let case = app.case(&dispatcher, &id).await;
    let mut allowed: Vec<String> = case["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["verb"] == "transfer")
        .expect("transfer allowed")["transfer_targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["unit_id"].as_str().expect("unit id").to_owned())
        .collect();
    let transfer = action("转办");
    click(&browser, &format!("{transfer}/summary")).await;
    let leads = format!("{transfer}//input[@name='lead_unit_id']");
    let mut offered = Vec::new();
    for input in browser
        .client
        .find_all(Locator::XPath(&leads))
        .await
        .expect("lead choices")
    {
        offered.push(input.attr("value").await.expect("value").expect("a unit"));
    }
    allowed.sort();
    offered.sort();
    assert_eq!(offered, allowed);
    assert!(!offered.iter().any(|u| u.starts_with("d.chengguan.")));

    // Search narrows the list; what was chosen stays chosen.
    type_into(&browser, "//input[@id='unit-q']", "城关").await;
    wait_for_count(&browser, &leads, 1).await;
    click(&browser, "//input[@id='lead-d.chengguan']").await;
    let search = browser.wait_for("//input[@id='unit-q']").await;
    search.clear().await.expect("clear the search");
    search.send_keys("城市管理").await.expect("type");
    wait_for_count(&browser, &leads, 2).await;
    click(&browser, "//input[@id='co-city.bureau.urban']").await;
    let lead_kept = browser
        .wait_for("//input[@id='lead-d.chengguan']")
        .await
        .prop("checked")
        .await
        .expect("checked");
    assert_eq!(lead_kept.as_deref(), Some("true"));
    type_into(
        &browser,
        &format!("{transfer}//textarea"),
        "请城关区主办，市城管委协办",
    )
    .await;
    click(
        &browser,
        &format!("{transfer}//button[normalize-space()='确认转办']"),
    )
    .await;
    notice(&browser, "已转办").await;
    let holders: Vec<(String, String)> = app.case(&dispatcher, &id).await["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .map(|h| {
            (
                h["unit_id"].as_str().unwrap_or_default().to_owned(),
                h["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        holders,
        [
            ("d.chengguan".to_owned(), "lead".to_owned()),
            ("city.bureau.urban".to_owned(), "co".to_owned())
        ]
    );

    // 追回: the recall stands out in the timeline.
    run(&browser, "追回", "协办单位有误，重新派发", "确认追回").await;
    notice(&browser, "已追回").await;
    let recalled = browser
        .text(&format!(
            "{TIMELINE}/li[contains(@class, 'recalled')][last()]"
        ))
        .await;
    assert!(recalled.contains("协办单位有误，重新派发"), "{recalled}");
    assert!(
        browser
            .text("//table[contains(@class, 'holders')]")
            .await
            .contains("已追回")
    );
    browser.close().await;
}

#[tokio::test]
async fn a_leader_s_annotation_on_a_stale_page_is_refused_with_a_reload_then_stands_out() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let id = transferred_to_housing(&app, "老旧小区加装电梯进展缓慢").await;
    let browser = Browser::start().await;
    browser
        .sign_in(&app.base, "city_leader_housing", PASSWORD)
        .await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    open_case(&browser, &app, &id).await;
    let annotate = action("批示");
    click(&browser, &format!("{annotate}/summary")).await;
    type_into(
        &browser,
        &format!("{annotate}//textarea"),
        "请市住建局三日内答复市民",
    )
    .await;

    // Meanwhile the efficiency office presses the bureau: the page is now stale.
    let supervisor = app.login("supervisor").await;
    app.ok(
        &supervisor,
        &id,
        "supervise",
        &json!({ "opinion": "请尽快签收办理" }),
    )
    .await;
    click(
        &browser,
        &format!("{annotate}//button[normalize-space()='确认批示']"),
    )
    .await;
    notice(&browser, "工单已被他人更新").await;
    let supervised = browser
        .text(&format!("{TIMELINE}/li[contains(@class, 'supervised')]"))
        .await;
    assert!(supervised.contains("请尽快签收办理"), "{supervised}");
    click(
        &browser,
        "//*[@role='status']//a[normalize-space()='重新加载']",
    )
    .await;
    run(&browser, "批示", "请市住建局三日内答复市民", "确认批示").await;
    notice(&browser, "已批示").await;
    let annotated = browser
        .text(&format!("{TIMELINE}/li[contains(@class, 'annotated')]"))
        .await;
    assert!(
        annotated.contains("请市住建局三日内答复市民"),
        "{annotated}"
    );
    assert!(annotated.contains("顾晓峰"), "{annotated}");
    browser.close().await;
}

#[tokio::test]
async fn a_confidential_caller_is_masked_for_the_handler_and_a_reveal_at_the_centre_is_audited() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let mut body = intake("举报小区违规群租");
    body["confidential"] = Value::Bool(true);
    let id = app.create(&operator, &body).await.id;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;

    let browser = Browser::start().await;
    browser
        .sign_in(&app.base, "housing_handler", PASSWORD)
        .await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    open_case(&browser, &app, &id).await;
    let fields = browser.text("//dl[contains(@class, 'fields')]").await;
    assert!(fields.contains("139****5678"), "{fields}");
    assert!(fields.contains("王*"), "{fields}");
    assert!(fields.contains("来电人要求保密"), "{fields}");
    assert_eq!(
        count(&browser, "//button[normalize-space()='显示完整来电信息']").await,
        0,
        "the handler may not see a confidential caller at all"
    );
    sign_out(&browser).await;

    browser.sign_in(&app.base, "shift_leader", PASSWORD).await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    open_case(&browser, &app, &id).await;
    let fields = browser.text("//dl[contains(@class, 'fields')]").await;
    assert!(
        fields.contains("139****5678"),
        "masked until asked: {fields}"
    );
    let hint = browser.text("//form[contains(@class, 'reveal')]").await;
    assert!(hint.contains("将被记录"), "{hint}");
    let shift_leader = app.login("shift_leader").await;
    let audit = |views: Value| -> Vec<String> {
        views["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|v| v["username"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let path = format!("/api/v1/cases/{id}/identity-views");
    let before: Value = app
        .get(Some(&shift_leader), &path)
        .await
        .json()
        .await
        .expect("views");
    assert!(audit(before).is_empty(), "opening the page records nothing");

    click(&browser, "//button[normalize-space()='显示完整来电信息']").await;
    notice(&browser, "本次查看已记录").await;
    let fields = browser.text("//dl[contains(@class, 'fields')]").await;
    assert!(fields.contains("13912345678"), "{fields}");
    assert!(fields.contains("王芳"), "{fields}");
    let after: Value = app
        .get(Some(&shift_leader), &path)
        .await
        .json()
        .await
        .expect("views");
    assert_eq!(audit(after), ["shift_leader"]);
    browser.close().await;
}
