//! 座席受理 in a real browser: an operator (or shift leader) with a caller on the line types the
//! number and sees the caller's earlier cases, picks the place by name, registers the case,
//! transfers it with the routing suggestion, answers an inquiry on the call from the
//! knowledge base, saves a draft and finds it again; a refusal shows in place with nothing
//! lost.

use serde_json::json;

use crate::browser::{Browser, ONE_BROWSER, click, tab};
use crate::helpers::{PASSWORD, TestApp, intake};

/// The earlier caller of the complaint fixture (`helpers::intake`).
const PHONE: &str = "13912345678";

async fn type_into(browser: &Browser, id: &str, text: &str) {
    browser
        .wait_for(&format!("//*[@id='{id}']"))
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into #{id}: {e}"));
}

async fn select(browser: &Browser, id: &str, value: &str) {
    browser
        .wait_for(&format!("//select[@id='{id}']"))
        .await
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("select {value} in #{id}: {e}"));
}

async fn value(browser: &Browser, id: &str) -> String {
    browser
        .wait_for(&format!("//*[@id='{id}']"))
        .await
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
}

/// Waits until the element shows text containing `want`.
async fn wait_for_containing(browser: &Browser, xpath: &str, want: &str) {
    browser
        .wait_for(&format!("{xpath}[contains(., '{want}')]"))
        .await;
}

/// The case number in the result's header.
async fn shown_case_id(browser: &Browser) -> String {
    let text = browser.text("//span[contains(@class, 'number')]/a").await;
    text.trim().to_owned()
}

#[tokio::test]
async fn a_shift_leader_registers_a_call_by_number_and_place_and_transfers_it_as_suggested() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let earlier = app.create(&operator, &intake("上月投诉夜市噪音")).await.id;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "shift_leader", PASSWORD).await;
    click(
        &browser,
        "//nav[@aria-label='主导航']//a[normalize-space()='受理']",
    )
    .await;
    browser.wait_for("//h1[normalize-space()='座席受理']").await;
    assert!(
        browser
            .text("//*[@aria-label='快捷键']")
            .await
            .contains("提交受理")
    );

    // 来电弹屏: the number typed, the caller's earlier case appears.
    type_into(&browser, "caller_phone", PHONE).await;
    wait_for_containing(&browser, "//*[@id='history']", &earlier).await;
    assert!(
        browser
            .text("//*[@id='history']")
            .await
            .contains("上月投诉夜市噪音")
    );

    type_into(&browser, "caller_name", "王芳").await;
    select(&browser, "category", "complaint").await;
    select(&browser, "kind", "escalated").await;
    type_into(&browser, "title", "小区门口占道经营噪音扰民").await;
    type_into(
        &browser,
        "content",
        "小区门口每晚有人占道经营摆摊，噪音很大，影响休息，请城管部门处理。",
    )
    .await;
    type_into(&browser, "address", "张掖路西沙社区北门").await;

    // The place by its name, then one level down.
    type_into(&browser, "place_q", "张掖路").await;
    click(
        &browser,
        "//*[@id='place-list']//button[contains(., '张掖路街道')]",
    )
    .await;
    wait_for_containing(&browser, "//*[@id='place-path']", "张掖路街道").await;
    click(
        &browser,
        "//*[@id='place']//button[normalize-space()='西沙社区']",
    )
    .await;
    wait_for_containing(&browser, "//*[@id='place-path']", "西沙社区").await;
    assert_eq!(
        browser.text("//*[@id='place-path']").await,
        "城关区 / 张掖路街道 / 西沙社区"
    );
    browser.screenshot("intake").await;

    click(&browser, "//button[contains(., '提交受理')]").await;
    wait_for_containing(&browser, "//*[@role='status']", "已受理").await;
    let id = shown_case_id(&browser).await;
    // The suggestion with its reason, and the transfer pre-filled with it.
    let reason = browser.text("//*[@aria-label='建议理由']").await;
    assert!(!reason.trim().is_empty());
    let lead = value(&browser, "lead_unit_id").await;
    assert!(!lead.is_empty(), "no unit pre-filled; reason: {reason}");
    // Only the units the rules allow are offered.
    let api = app.login("shift_leader").await;
    let case = app.case(&api, &id).await;
    let allowed: Vec<String> = case["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["verb"] == "transfer")
        .expect("transfer allowed")["transfer_targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["unit_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let offered = browser
        .client
        .execute(
            "return Array.from(document.querySelectorAll('#lead_unit_id option')).map(o => o.value).filter(v => v);",
            vec![],
        )
        .await
        .expect("options");
    assert_eq!(offered, json!(allowed));
    assert!(allowed.contains(&lead));
    browser.screenshot("intake-transfer").await;

    click(&browser, "//form[contains(@class, 'transfer')]//button").await;
    wait_for_containing(&browser, "//*[@role='status']", "已转办").await;
    let case = app.case(&api, &id).await;
    assert_eq!(case["status"], "transferred");
    assert_eq!(case["holders"][0]["unit_id"], lead.as_str());
    assert_eq!(case["caller_phone"], PHONE);
    assert_eq!(case["location_unit_id"], "d.chengguan.s02.c01");
    browser.close().await;
}

#[tokio::test]
async fn an_operator_answers_an_inquiry_on_the_call_by_clicking_a_suggested_article() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "operator", PASSWORD).await;
    browser.goto(&app.url("/intake")).await;
    type_into(&browser, "caller_phone", "13800001111").await;
    wait_for_containing(&browser, "//*[@id='history']", "没有历史工单").await;
    select(&browser, "category", "inquiry").await;
    type_into(&browser, "title", "社保卡丢了").await;
    type_into(&browser, "content", "社保卡丢了怎么办，去哪里补办").await;
    let article = "//*[@id='kb']//li[contains(., '社会保障卡遗失如何挂失和补办')]";
    click(&browser, &format!("{article}//button")).await;
    wait_for_containing(&browser, "//*[@role='status']", "已即办答复").await;
    let id = shown_case_id(&browser).await;
    let api = app.login("operator").await;
    let case = app.case(&api, &id).await;
    assert_eq!(case["answered_on_call"], true);
    assert_eq!(case["kind"], "immediate");
    assert_eq!(case["kb_article_ids"], json!(["hrss-001"]));
    assert_eq!(case["status"], "completed", "{case}");
    browser.close().await;
}

#[tokio::test]
async fn a_draft_is_saved_found_in_the_drafts_and_submitted_later() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "operator", PASSWORD).await;
    browser.goto(&app.url("/intake")).await;
    type_into(&browser, "caller_phone", "0931-8123456").await;
    type_into(&browser, "title", "楼顶漏水待核实").await;
    // Alt+G (listed on screen) saves the draft from the keyboard; Alt, G, then Alt let go.
    type_into(&browser, "title", "\u{e00a}g\u{e000}").await;
    wait_for_containing(&browser, "//*[@role='status']", "草稿已保存").await;
    let id = shown_case_id(&browser).await;

    click(&browser, "//a[normalize-space()='我的待办']").await;
    click(&browser, &tab("草稿")).await;
    // From the list to the draft's case page, and from there back to the console.
    click(&browser, &format!("//table//a[normalize-space()='{id}']")).await;
    click(&browser, "//a[normalize-space()='在受理页面打开草稿']").await;
    assert_eq!(value(&browser, "title").await, "楼顶漏水待核实");
    assert_eq!(value(&browser, "caller_phone").await, "09318123456");
    select(&browser, "category", "help_request").await;
    select(&browser, "kind", "escalated").await;
    type_into(&browser, "content", "顶楼住户反映雨天楼顶漏水。").await;
    click(&browser, "//button[contains(., '提交受理')]").await;
    wait_for_containing(&browser, "//*[@role='status']", "已受理").await;
    assert_eq!(shown_case_id(&browser).await, id);
    // An operator may not transfer: the case waits for the dispatchers.
    assert!(
        browser
            .text("//section[@aria-label='转办']")
            .await
            .contains("待转办")
    );
    let api = app.login("operator").await;
    assert_eq!(app.case(&api, &id).await["status"], "accepted");
    browser.close().await;
}

#[tokio::test]
async fn a_telephone_system_pops_the_console_with_the_callers_history() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let earlier = app
        .create(&operator, &intake("去年反映的路灯问题"))
        .await
        .id;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "operator2", PASSWORD).await;
    browser.wait_for("//h1[normalize-space()='我的待办']").await;
    browser
        .goto(&app.url(&format!("/intake?phone={PHONE}")))
        .await;
    assert_eq!(value(&browser, "caller_phone").await, PHONE);
    let history = browser.text("//*[@id='history']").await;
    assert!(history.contains(&earlier), "{history}");
    assert!(history.contains("去年反映的路灯问题"), "{history}");
    browser.close().await;

    // Who may not take calls has no 受理 in the navigation, and the page says why.
    let browser = Browser::start().await;
    browser
        .sign_in(&app.base, "housing_handler", PASSWORD)
        .await;
    let nav = browser.text("//nav[@aria-label='主导航']").await;
    assert!(!nav.contains("受理"), "{nav}");
    browser.goto(&app.url("/intake")).await;
    let alert = browser.text("//*[@role='alert']").await;
    assert!(alert.contains("当前角色无权执行此操作"), "{alert}");
    // The 403 document is the page's honest answer, not a script's failure.
    let unexpected: Vec<_> = browser
        .log()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .filter(|e| {
            let message = e["message"].as_str().unwrap_or_default();
            !(message.contains("/intake") && message.contains("status of 403"))
        })
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    browser.close().await;
}

#[tokio::test]
async fn an_empty_content_is_said_in_place_and_nothing_typed_is_lost() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "operator", PASSWORD).await;
    browser.goto(&app.url("/intake")).await;
    type_into(&browser, "caller_phone", PHONE).await;
    type_into(&browser, "caller_name", "王芳").await;
    select(&browser, "category", "complaint").await;
    select(&browser, "kind", "escalated").await;
    type_into(&browser, "title", "噪音扰民").await;
    type_into(&browser, "place_q", "张掖路").await;
    click(
        &browser,
        "//*[@id='place-list']//button[contains(., '张掖路街道')]",
    )
    .await;
    wait_for_containing(&browser, "//*[@id='place-path']", "张掖路街道").await;
    click(&browser, "//button[contains(., '提交受理')]").await;

    let alert = browser.text("//*[@role='alert']").await;
    assert!(alert.contains("诉求内容"), "{alert}");
    assert_eq!(
        browser
            .wait_for("//*[@id='content']")
            .await
            .attr("aria-invalid")
            .await
            .expect("attribute")
            .as_deref(),
        Some("true")
    );
    assert_eq!(value(&browser, "caller_phone").await, PHONE);
    assert_eq!(value(&browser, "caller_name").await, "王芳");
    assert_eq!(value(&browser, "title").await, "噪音扰民");
    assert_eq!(value(&browser, "category").await, "complaint");
    assert_eq!(value(&browser, "kind").await, "escalated");
    assert!(
        browser
            .text("//*[@id='place-path']")
            .await
            .contains("张掖路街道")
    );
    // The history is shown again with the form.
    assert!(!browser.text("//*[@id='history']").await.is_empty());
    browser.close().await;
}
