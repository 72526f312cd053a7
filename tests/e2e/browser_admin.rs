//! 系统管理 in a real browser: the city administrator finds a unit by search and renames it,
//! creates a user and reads the one-time password once, disables a user, records the 2027
//! holidays, and finds the rename in the audit with their name; adds a keyword to a matter of
//! the dispatch catalogue and sees the next suggestion follow it, and a refused word said in
//! place.

use serde_json::json;

use crate::browser::{Browser, ONE_BROWSER, click, type_into};
use crate::helpers::{PASSWORD, TestApp};

const OLD_NAME: &str = "兰州市住房和城乡建设局";
const NEW_NAME: &str = "兰州市住房城乡建设局";

/// Sets the value of the `index`-th input named `name` (date inputs read typed keys by the
/// browser's locale, so the test fills them as a date picker would).
async fn set_input(browser: &Browser, name: &str, index: usize, value: &str) {
    browser
        .client
        .execute(
            "document.getElementsByName(arguments[0])[arguments[1]].value = arguments[2];",
            vec![json!(name), json!(index), json!(value)],
        )
        .await
        .unwrap_or_else(|e| panic!("set `{name}` {index}: {e}"));
}

#[tokio::test]
async fn the_administrator_renames_a_unit_manages_users_adds_a_year_and_reads_the_audit() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "admin", PASSWORD).await;

    // 机构: find the unit by search, rename it, see the new name.
    click(
        &browser,
        "//nav[@aria-label='主导航']//a[normalize-space()='系统管理']",
    )
    .await;
    browser
        .wait_for("//h1[normalize-space()='系统管理 · 机构管理']")
        .await;
    browser
        .wait_for("//table[contains(@class, 'unit-tree')]")
        .await;
    type_into(&browser, "//input[@id='unit-q']", "住房和城乡建设").await;
    click(&browser, "//button[normalize-space()='查找']").await;
    click(
        &browser,
        &format!("//table//a[normalize-space()='{OLD_NAME}']"),
    )
    .await;
    browser
        .wait_for(&format!(
            "//section[@aria-label='单位详情']//h2[normalize-space()='{OLD_NAME}']"
        ))
        .await;
    click(&browser, "//summary[normalize-space()='更名']").await;
    let name = browser.wait_for("//input[@id='rename-name']").await;
    name.clear().await.expect("clear the name");
    name.send_keys(NEW_NAME).await.expect("type the new name");
    click(&browser, "//button[normalize-space()='保存名称']").await;
    browser
        .wait_for("//*[@role='status'][contains(., '单位已更名')]")
        .await;
    browser
        .wait_for(&format!(
            "//section[@aria-label='单位详情']//h2[normalize-space()='{NEW_NAME}']"
        ))
        .await;
    browser.screenshot("admin-units").await;

    // 人员: a new user and the one-time password, shown once.
    click(
        &browser,
        "//nav[@aria-label='系统管理']//a[normalize-space()='人员管理']",
    )
    .await;
    click(&browser, "//summary[normalize-space()='新增用户']").await;
    type_into(&browser, "//input[@id='new-username']", "housing_clerk").await;
    type_into(&browser, "//input[@id='new-name']", "王小明").await;
    type_into(&browser, "//input[@id='new-unit']", "city.bureau.housing").await;
    click(&browser, "//input[@name='roles'][@value='handler']").await;
    click(&browser, "//button[normalize-space()='新增用户']").await;
    let password = browser.text("//code[contains(@class, 'password')]").await;
    assert!(password.trim().len() >= 8, "{password}");
    let panel = browser.text("//section[@aria-label='一次性密码']").await;
    assert!(
        panel.contains("housing_clerk") && panel.contains("只显示这一次"),
        "{panel}"
    );
    browser.screenshot("admin-users").await;
    // Shown once: the user's page again does not show it.
    browser
        .goto(&app.url("/admin/users?user=housing_clerk"))
        .await;
    browser.wait_for("//section[@aria-label='用户详情']").await;
    let page = browser.text("//main").await;
    assert!(
        !page.contains(password.trim()),
        "the password is shown again"
    );

    // Disable the user: the status says 停用.
    click(&browser, "//button[normalize-space()='停用账号']").await;
    browser
        .wait_for("//*[@role='status'][contains(., '用户已停用')]")
        .await;
    browser
        .wait_for_text("//dd[@aria-label='账号状态']", "停用")
        .await;

    // 规则: the 2027 holidays, every festival, then listed.
    click(
        &browser,
        "//nav[@aria-label='系统管理']//a[normalize-space()='日历、时限与派单目录']",
    )
    .await;
    click(
        &browser,
        "//summary[normalize-space()='录入或更正一年的节假日安排']",
    )
    .await;
    type_into(&browser, "//input[@id='year']", "2027").await;
    type_into(&browser, "//input[@id='number']", "国办发明电〔2026〕9号").await;
    type_into(
        &browser,
        "//input[@id='title']",
        "国务院办公厅关于2027年部分节假日安排的通知",
    )
    .await;
    set_input(&browser, "published", 0, "2026-11-10").await;
    // The seven festivals are the form's first rows, in this order.
    let spans = [
        ("2027-01-01", "2027-01-03"),
        ("2027-02-05", "2027-02-13"),
        ("2027-04-03", "2027-04-05"),
        ("2027-05-01", "2027-05-05"),
        ("2027-06-09", "2027-06-11"),
        ("2027-09-15", "2027-09-17"),
        ("2027-10-01", "2027-10-07"),
    ];
    for (i, (from, to)) in spans.iter().enumerate() {
        set_input(&browser, "holiday_from", i, from).await;
        set_input(&browser, "holiday_to", i, to).await;
    }
    click(&browser, "//button[normalize-space()='保存节假日安排']").await;
    browser
        .wait_for("//*[@role='status'][contains(., '节假日安排已保存')]")
        .await;
    let year = browser.text("//div[@aria-label='2027年']").await;
    assert!(
        year.contains("国办发明电〔2026〕9号") && year.contains("国庆节"),
        "{year}"
    );
    assert!(year.contains("2027-10-07"), "{year}");
    browser.screenshot("admin-rules").await;

    // 审计: the rename, by the administrator, by name.
    click(
        &browser,
        "//nav[@aria-label='系统管理']//a[normalize-space()='审计记录']",
    )
    .await;
    let row = browser
        .text(&format!(
            "//section[@aria-label='机构人员变更记录']//tr[contains(., '更名为「{NEW_NAME}」')]"
        ))
        .await;
    assert!(row.contains("曾春梅") && row.contains(OLD_NAME), "{row}");
    browser
        .wait_for(
            "//section[@aria-label='机构人员变更记录']//tr[contains(., '停用用户 housing_clerk')]",
        )
        .await;
    browser.screenshot("admin-audit").await;
    browser.close().await;
}

#[tokio::test]
async fn a_handler_is_refused_the_administration_pages() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser
        .sign_in(&app.base, "housing_handler", PASSWORD)
        .await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    let nav = browser.text("//nav[@aria-label='主导航']").await;
    assert!(!nav.contains("系统管理"), "{nav}");
    browser.goto(&app.url("/admin/users")).await;
    let alert = browser.text("//*[@role='alert']").await;
    assert!(alert.contains("只有系统管理员"), "{alert}");
    browser.close().await;
}

#[tokio::test]
async fn the_administrator_adds_a_keyword_to_a_matter_and_the_suggestion_follows_it() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let path = format!(
        "/api/v1/routing/suggest?location_unit_id=d.chengguan.s01.c01&category=complaint&text={}",
        crate::helpers::urlencode("楼顶养鸽")
    );
    let before: serde_json::Value = app
        .get(Some(&operator), &path)
        .await
        .json()
        .await
        .expect("JSON");
    assert_ne!(before["matter"]["name"], "流浪动物与犬只", "{before}");
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "admin", PASSWORD).await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    browser.goto(&app.url("/admin/rules")).await;

    // Find the matter by a word it lists, open it, add the new word after its keywords.
    type_into(&browser, "//input[@id='catalogue-q']", "流浪").await;
    click(&browser, "//button[normalize-space()='查找事项']").await;
    // The answer to the search: only then are the rows its.
    browser
        .wait_for("//a[normalize-space()='显示全部事项']")
        .await;
    let row = browser
        .text("//table[@aria-label='派单目录事项']//tr[td[contains(., '流浪动物与犬只')]]")
        .await;
    assert!(
        row.contains("流浪狗") && row.contains("各区县城市管理局"),
        "{row}"
    );
    click(&browser, "//a[@aria-label='编辑流浪动物与犬只']").await;
    browser.wait_for("//*[@aria-label='编辑事项']").await;
    type_into(&browser, "//textarea[@id='matter-keywords']", "、楼顶养鸽").await;
    click(&browser, "//button[normalize-space()='保存事项']").await;
    browser
        .wait_for("//*[@role='status'][contains(., '派单目录已保存')]")
        .await;
    let keywords = browser
        .wait_for("//textarea[@id='matter-keywords']")
        .await
        .prop("value")
        .await
        .expect("keywords")
        .unwrap_or_default();
    assert!(keywords.ends_with("、楼顶养鸽"), "{keywords}");
    let versions = browser.text("//section[@aria-label='规则版本']").await;
    assert!(versions.contains("第 2 版"), "{versions}");
    browser.screenshot("admin-catalogue").await;

    // The next suggestion reads the new word and chooses the matter.
    let after: serde_json::Value = app
        .get(Some(&operator), &path)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(after["matter"]["name"], "流浪动物与犬只", "{after}");
    assert_eq!(after["matched"], json!(["楼顶养鸽"]), "{after}");

    // A word the rules refuse: said in Chinese in the form, with what was typed.
    type_into(
        &browser,
        "//textarea[@id='matter-keywords']",
        "、这个关键词实在是太长了超过了二十个字的限制",
    )
    .await;
    click(&browser, "//button[normalize-space()='保存事项']").await;
    let alert = browser
        .text("//*[@aria-label='编辑事项']//*[@role='alert']")
        .await;
    assert!(
        alert.contains("流浪动物与犬只") && alert.contains("关键词") && alert.contains("无效"),
        "{alert}"
    );
    let typed = browser
        .wait_for("//textarea[@id='matter-keywords']")
        .await
        .prop("value")
        .await
        .expect("keywords")
        .unwrap_or_default();
    assert!(typed.contains("超过了二十个字"), "{typed}");
    let rules: serde_json::Value = app
        .get(Some(&operator), "/api/v1/rules")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        rules["version"], 2,
        "the refused catalogue recorded nothing"
    );
    browser.assert_no_console_errors().await;
    browser.close().await;
}
