//! 综合查询 and 知识库 in a real browser: a person searches cases by a condition and by their
//! words and pages through them; an editor writes, edits, publishes and retires an article,
//! which an operator finds and then no longer finds; the knowledge gaps of the intake are
//! listed for editors.

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{Browser, ONE_BROWSER, click};
use crate::helpers::{PASSWORD, TestApp, immediate_intake, intake};

/// Types `text` into the input with this id, replacing what it held.
async fn type_into(browser: &Browser, id: &str, text: &str) {
    let input = browser.wait_for(&format!("//*[@id='{id}']")).await;
    input.clear().await.expect("clear the field");
    input.send_keys(text).await.expect("type");
}

async fn rows(browser: &Browser) -> usize {
    browser
        .client
        .find_all(Locator::XPath("//section[@id='results']//tbody/tr"))
        .await
        .expect("rows")
        .len()
}

async fn sign_out_and_in(browser: &Browser, app: &TestApp, username: &str) {
    click(browser, "//button[normalize-space()='退出登录']").await;
    browser.wait_for("//h1[normalize-space()='登录']").await;
    browser.sign_in(&app.base, username, PASSWORD).await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
}

#[tokio::test]
async fn a_user_finds_cases_by_a_condition_and_by_their_words_and_pages_through_them() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    for n in 1..=23 {
        app.create(&operator, &intake(&format!("小区噪音扰民第{n}号")))
            .await;
    }
    let mut last = 0;
    for n in 1..=3 {
        last = app
            .create(&operator, &immediate_intake(&format!("公积金提取咨询{n}")))
            .await
            .position;
    }
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "operator", PASSWORD).await;
    browser.wait_for("//*[@aria-label='当前用户']").await;
    click(
        &browser,
        "//nav[@aria-label='主导航']//a[normalize-space()='综合查询']",
    )
    .await;
    browser.wait_for("//h1[normalize-space()='综合查询']").await;
    // The first visit waits for the cases just written.
    browser
        .goto(&app.url(&format!("/query?min_position={last}")))
        .await;
    browser
        .wait_for("//section[@id='results']//span[normalize-space()='共 26 件']")
        .await;

    // By a condition: complaints only, 20 a page.
    browser
        .wait_for("//select[@id='category']")
        .await
        .select_by_value("complaint")
        .await
        .expect("choose 投诉");
    click(&browser, "//button[normalize-space()='查询']").await;
    browser
        .wait_for("//section[@id='results']//span[normalize-space()='共 23 件']")
        .await;
    browser
        .wait_for("//section[@id='results']//span[normalize-space()='第 1 / 2 页']")
        .await;
    assert_eq!(rows(&browser).await, 20);
    let page = browser.text("//section[@id='results']//tbody").await;
    assert!(
        page.contains("小区噪音扰民") && !page.contains("公积金"),
        "{page}"
    );
    // Lists mask the caller.
    assert!(page.contains("139****5678") && !page.contains("13912345678"));
    browser.screenshot("query").await;
    click(
        &browser,
        "//section[@id='results']//a[normalize-space()='下一页']",
    )
    .await;
    browser
        .wait_for("//section[@id='results']//span[normalize-space()='第 2 / 2 页']")
        .await;
    assert_eq!(rows(&browser).await, 3);
    let url = browser.client.current_url().await.expect("url");
    assert!(url.as_str().contains("page=2") && url.as_str().contains("category=complaint"));
    click(
        &browser,
        "//section[@id='results']//a[normalize-space()='上一页']",
    )
    .await;
    browser
        .wait_for("//section[@id='results']//span[normalize-space()='第 1 / 2 页']")
        .await;

    // By the words: every category again, 公积金.
    browser
        .wait_for("//select[@id='category']")
        .await
        .select_by_value("")
        .await
        .expect("every category");
    type_into(&browser, "q", "公积金").await;
    click(&browser, "//button[normalize-space()='查询']").await;
    browser
        .wait_for("//section[@id='results']//span[normalize-space()='共 3 件']")
        .await;
    let page = browser.text("//section[@id='results']//tbody").await;
    assert!(
        page.contains("公积金提取咨询") && !page.contains("噪音"),
        "{page}"
    );
    // The export links carry the same conditions.
    let csv = browser
        .wait_for("//a[normalize-space()='CSV']")
        .await
        .attr("href")
        .await
        .expect("href")
        .expect("a link");
    assert!(
        csv.starts_with("/query/export.csv?") && csv.contains("q="),
        "{csv}"
    );
    browser.close().await;
}

#[tokio::test]
async fn an_editor_writes_edits_publishes_and_retires_an_article_and_operators_find_it_only_while_it_is_published()
 {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "shift_leader", PASSWORD).await;
    click(
        &browser,
        "//nav[@aria-label='主导航']//a[normalize-space()='知识库']",
    )
    .await;
    click(&browser, "//a[normalize-space()='新建文章']").await;
    browser.wait_for("//h1[normalize-space()='新建文章']").await;
    type_into(&browser, "title", "电动自行车上牌须知").await;
    type_into(
        &browser,
        "body",
        "携带购车发票、车辆合格证和身份证，到就近的登记点办理上牌。",
    )
    .await;
    type_into(&browser, "similar_questions", "电动车怎么上牌").await;
    type_into(&browser, "category", "交通出行").await;
    type_into(&browser, "tags", "电动车、上牌").await;
    click(&browser, "//button[normalize-space()='保存为草稿']").await;
    browser
        .wait_for("//*[@role='status'][contains(., '文章已保存为草稿')]")
        .await;
    assert_eq!(browser.text("//*[@aria-label='状态']").await, "草稿");

    click(&browser, "//a[normalize-space()='修改']").await;
    browser.wait_for("//h1[normalize-space()='修改文章']").await;
    type_into(&browser, "title", "电动自行车登记上牌须知").await;
    click(&browser, "//button[normalize-space()='保存修改']").await;
    browser
        .wait_for("//*[@role='status'][contains(., '文章已修改')]")
        .await;
    browser
        .wait_for("//h1[normalize-space()='电动自行车登记上牌须知']")
        .await;
    assert!(
        browser
            .text("//dl[contains(@class, 'fields')]")
            .await
            .contains("第 2 版")
    );
    click(&browser, "//button[normalize-space()='发布']").await;
    browser
        .wait_for("//*[@role='status'][contains(., '文章已发布')]")
        .await;
    assert_eq!(browser.text("//*[@aria-label='状态']").await, "已发布");

    // An operator finds it by what a caller says.
    sign_out_and_in(&browser, &app, "operator").await;
    click(
        &browser,
        "//nav[@aria-label='主导航']//a[normalize-space()='知识库']",
    )
    .await;
    type_into(&browser, "kb-q", "电动车怎么上牌").await;
    click(&browser, "//button[normalize-space()='检索']").await;
    let hit = "//ol[contains(@class, 'hits')]//a[normalize-space()='电动自行车登记上牌须知']";
    browser.wait_for(hit).await;
    browser.screenshot("kb").await;
    click(&browser, hit).await;
    browser
        .wait_for("//h1[normalize-space()='电动自行车登记上牌须知']")
        .await;
    let body = browser.text("//div[contains(@class, 'kb-body')]").await;
    assert!(body.contains("车辆合格证"), "{body}");
    let article = browser.client.current_url().await.expect("url");
    // Operators read; they are offered no editing.
    let actions = browser
        .client
        .find_all(Locator::XPath("//section[@aria-label='文章操作']"))
        .await
        .expect("find");
    assert!(actions.is_empty());

    // The editor retires it, with a reason.
    sign_out_and_in(&browser, &app, "shift_leader").await;
    browser.goto(article.as_str()).await;
    type_into(&browser, "reason", "政策调整，改由新文章答复").await;
    click(&browser, "//button[normalize-space()='下线']").await;
    browser
        .wait_for("//*[@role='status'][contains(., '文章已下线')]")
        .await;
    assert_eq!(browser.text("//*[@aria-label='状态']").await, "已下线");

    sign_out_and_in(&browser, &app, "operator").await;
    browser
        .goto(&app.url("/kb?q=%E7%94%B5%E5%8A%A8%E8%BD%A6%E6%80%8E%E4%B9%88%E4%B8%8A%E7%89%8C"))
        .await;
    browser.wait_for("//section[@aria-label='检索结果']").await;
    let results = browser.text("//section[@aria-label='检索结果']").await;
    assert!(!results.contains("电动自行车登记上牌须知"), "{results}");
    browser.close().await;
}

#[tokio::test]
async fn editors_see_the_knowledge_gaps_the_intake_recorded() {
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let operator = app.login("operator").await;
    let id = app
        .create(&operator, &immediate_intake("新生儿医保怎么网上办理"))
        .await
        .id;
    app.ok(
        &operator,
        &id,
        "answer",
        &json!({
            "reply": "已登记，医保部门将在一个工作日内回复。",
            "knowledge_gap": { "question": "新生儿医保怎么网上办理" },
        }),
    )
    .await;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "shift_leader", PASSWORD).await;
    click(
        &browser,
        "//nav[@aria-label='主导航']//a[normalize-space()='知识库']",
    )
    .await;
    click(&browser, "//a[normalize-space()='知识库缺口']").await;
    browser
        .wait_for("//h1[normalize-space()='知识库缺口']")
        .await;
    let row = browser
        .text("//table//tr[td[normalize-space()='新生儿医保怎么网上办理']]")
        .await;
    assert!(row.contains(&id) && row.contains("已登记"), "{row}");
    browser.close().await;
}
