//! 督办, 分管 and 统计 in a real browser, on the service started in-process with a clock the
//! test moves (`crate::inprocess::spawn_app`): a case past its deadline turns red in its
//! handler's 我的待办 and shows on the efficiency office's board, which supervises it and
//! two more at once; a leader annotates from the list of the units they oversee; the KPI
//! page ranks the units and its CSV has a BOM.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use crate::browser::{
    Browser, ONE_BROWSER, click, sign_out, tab, tab_count, transferred_to_housing, type_into,
};
use crate::helpers::PASSWORD;
use crate::inprocess::{SpawnedApp, spawn_app};

/// Tuesday 10 March 2026, 10:00 in Shanghai: a working day, inside office hours.
fn tuesday_morning() -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .expect("offset")
        .with_ymd_and_hms(2026, 3, 10, 10, 0, 0)
        .single()
        .expect("a time")
        .with_timezone(&Utc)
}

/// The row of case `id` in the page's table.
fn row(id: &str) -> String {
    format!("//table//tr[.//a[normalize-space()='{id}']]")
}

#[tokio::test]
async fn a_case_past_its_deadline_turns_red_and_the_efficiency_office_supervises_it_from_the_board()
{
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app(tuesday_morning()).await;
    let id = transferred_to_housing(&app, "楼道照明损坏无人维修").await;
    let browser = Browser::start().await;

    // In time first: the handler's row is not red.
    browser
        .sign_in(&app.base, "housing_handler", PASSWORD)
        .await;
    browser.wait_for_text(&tab_count("待签收"), "1").await;
    click(&browser, &tab("待签收")).await;
    let left = format!("{}//span[contains(@class, 'time-left')]", row(&id));
    let mark = browser.wait_for(&left).await;
    let class = mark.attr("class").await.expect("class").unwrap_or_default();
    assert!(!class.contains("overdue"), "{class}");

    // A working day later the receive-by (two working hours) is long past.
    app.clock.advance(Duration::days(1));
    browser.goto(&app.url("/?list=to_receive")).await;
    let mark = browser.wait_for(&left).await;
    let class = mark.attr("class").await.expect("class").unwrap_or_default();
    assert!(class.contains("overdue"), "{class}");
    let text = mark.text().await.expect("text");
    assert!(text.starts_with("已超时"), "{text}");
    browser.wait_for_text(&tab_count("已逾期"), "1").await;
    sign_out(&browser).await;

    // The efficiency office sees it on its board, by district or bureau and by unit.
    browser.sign_in(&app.base, "supervisor", PASSWORD).await;
    click(
        &browser,
        "//nav[@aria-label='主导航']//a[normalize-space()='督办']",
    )
    .await;
    browser
        .wait_for("//h1[normalize-space()='逾期督办台']")
        .await;
    browser.wait_for_text("//*[@id='overdue-total']", "1").await;
    click(
        &browser,
        "//table[contains(@class, 'board-counts')]//a[@aria-label='兰州市住房和城乡建设局逾期1件']",
    )
    .await;
    browser
        .wait_for("//h2[contains(., '逾期工单 · 兰州市住房和城乡建设局')]")
        .await;
    assert!(browser.text(&row(&id)).await.contains("已超时"));
    type_into(&browser, "//textarea[@id='opinion']", "请于今日内签收办理").await;
    click(
        &browser,
        &format!("{}//button[normalize-space()='督办此件']", row(&id)),
    )
    .await;
    browser
        .wait_for(&format!(
            "//*[@role='status'][normalize-space()='工单 {id}：已督办']"
        ))
        .await;
    browser
        .wait_for(&format!(
            "{}//span[contains(@class, 'flag')][normalize-space()='督办']",
            row(&id)
        ))
        .await;

    // Two more run late; both are supervised at once with one opinion.
    let second = transferred_to_housing(&app, "小区电梯频繁故障").await;
    let third = transferred_to_housing(&app, "路灯夜间不亮").await;
    app.clock.advance(Duration::days(1));
    app.caught_up().await;
    browser.goto(&app.url("/oversight")).await;
    browser.wait_for_text("//*[@id='overdue-total']", "3").await;
    for case in [&second, &third] {
        click(
            &browser,
            &format!("//input[@type='checkbox'][@aria-label='选择工单 {case}']"),
        )
        .await;
    }
    type_into(
        &browser,
        "//textarea[@id='opinion']",
        "逾期未签收，请立即办理",
    )
    .await;
    browser.screenshot("oversight").await;
    click(&browser, "//button[normalize-space()='督办所选工单']").await;
    for case in [&second, &third] {
        browser
            .wait_for(&format!(
                "//*[@role='status'][normalize-space()='工单 {case}：已督办']"
            ))
            .await;
    }
    // Someone else supervises one of them meanwhile: the board's row is stale, and says so
    // instead of supervising blind.
    let api = app.login("supervisor").await;
    app.ok(
        &api,
        &second,
        "supervise",
        &json!({ "opinion": "电话催办" }),
    )
    .await;
    type_into(&browser, "//textarea[@id='opinion']", "再次督办").await;
    click(
        &browser,
        &format!("{}//button[normalize-space()='督办此件']", row(&second)),
    )
    .await;
    browser
        .wait_for(&format!(
            "//*[@role='status'][contains(., '工单 {second}：工单已被他人更新')]"
        ))
        .await;
    for case in [&id, &second, &third] {
        let detail = app.case(&api, case).await;
        let supervised = detail["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .filter(|e| e["type"] == "supervised")
            .count();
        let want = if case == &second { 2 } else { 1 };
        assert_eq!(supervised, want, "{case}: {detail}");
    }
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_leader_annotates_a_case_from_the_list_of_the_units_they_oversee() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app(tuesday_morning()).await;
    let id = transferred_to_housing(&app, "小区供暖温度不达标").await;
    let browser = Browser::start().await;
    browser
        .sign_in(&app.base, "city_leader_housing", PASSWORD)
        .await;
    click(
        &browser,
        "//nav[@aria-label='主导航']//a[normalize-space()='分管']",
    )
    .await;
    browser
        .wait_for("//h1[normalize-space()='分管单位工单']")
        .await;
    type_into(
        &browser,
        &format!("//input[@aria-label='批示意见 {id}']"),
        "请住建局本周内解决",
    )
    .await;
    click(
        &browser,
        &format!("{}//button[normalize-space()='批示']", row(&id)),
    )
    .await;
    browser
        .wait_for(&format!(
            "//*[@role='status'][normalize-space()='工单 {id}：已批示']"
        ))
        .await;
    browser
        .wait_for(&format!(
            "{}//span[contains(@class, 'flag')][normalize-space()='批示']",
            row(&id)
        ))
        .await;
    // A handler is not a leader: no 分管 or 督办 in the navigation, and the board refuses.
    sign_out(&browser).await;
    browser
        .sign_in(&app.base, "housing_handler", PASSWORD)
        .await;
    let nav = browser.text("//nav[@aria-label='主导航']").await;
    assert!(!nav.contains("分管") && !nav.contains("督办"), "{nav}");
    browser.goto(&app.url("/oversight")).await;
    browser
        .wait_for("//*[@role='alert'][contains(., '只有效能办和管理员可以查看逾期督办台')]")
        .await;
    // The refusal is the page's honest 403, the only entry Chromium logs.
    let logged: Vec<_> = browser
        .log()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(
        logged.iter().all(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("/oversight - ") && m.contains("status of 403"))),
        "{logged:#?}"
    );
    browser.close().await;
    app.stop().await;
}

/// `n` cases of `unit` completed by `handler` and called back, `unsatisfied` of them badly.
async fn rated(app: &SpawnedApp, unit: &str, handler: &str, n: usize, unsatisfied: usize) {
    let operator = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let handling = app.login(handler).await;
    for i in 0..n {
        let id = app.accept(&operator, &format!("噪音扰民 {unit} {i}")).await;
        app.ok(
            &dispatcher,
            &id,
            "transfer",
            &json!({ "lead_unit_id": unit }),
        )
        .await;
        app.ok(&handling, &id, "receive", &json!({})).await;
        app.clock.advance(Duration::minutes(30));
        app.ok(&handling, &id, "complete", &json!({ "reply": "已处理" }))
            .await;
        let satisfaction = if i < unsatisfied {
            "unsatisfied"
        } else {
            "satisfied"
        };
        app.ok(
            &operator,
            &id,
            "callback",
            &json!({ "satisfaction": satisfaction, "resolved": i >= unsatisfied }),
        )
        .await;
    }
}

#[tokio::test]
async fn the_kpi_page_ranks_units_and_its_csv_opens_in_excel() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app(tuesday_morning()).await;
    rated(&app, "city.bureau.housing", "housing_handler", 5, 0).await;
    rated(&app, "city.bureau.urban", "urban_handler", 5, 2).await;
    app.caught_up().await;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, "supervisor", PASSWORD).await;
    click(
        &browser,
        "//nav[@aria-label='主导航']//a[normalize-space()='统计']",
    )
    .await;
    browser.wait_for("//h1[normalize-space()='考核指标']").await;
    let unit_row = |name: &str| {
        format!("//table[contains(@class, 'kpi')]//tr[td[normalize-space()='{name}']]")
    };
    let housing = browser.text(&unit_row("兰州市住房和城乡建设局")).await;
    assert!(housing.contains("1 / 2"), "{housing}");
    // The page shows what the API answers (the same view).
    let api = app.login("supervisor").await;
    let kpis: serde_json::Value = app
        .get(Some(&api), "/api/v1/kpis?period=month&date=2026-03-10")
        .await
        .json()
        .await
        .expect("kpis");
    let hours = kpis["units"]
        .as_array()
        .expect("units")
        .iter()
        .find(|u| u["unit_id"] == "city.bureau.housing")
        .and_then(|u| u["avg_handling_hours"].as_f64())
        .expect("housing's hours");
    assert!(hours > 0.0);
    assert!(
        housing.contains(&format!(" {hours:.1} ")),
        "{housing}: {hours}"
    );
    assert!(housing.contains("100.0%"), "{housing}");
    let urban = browser.text(&unit_row("兰州市城市管理委员会")).await;
    assert!(
        urban.contains("2 / 2") && urban.contains("60.0%"),
        "{urban}"
    );
    assert!(
        browser
            .text("//p[contains(@class, 'as-of')]")
            .await
            .contains("2026年3月1日 至 2026年3月31日")
    );
    browser.screenshot("kpi").await;

    let href = browser
        .wait_for("//a[normalize-space()='导出 CSV']")
        .await
        .attr("href")
        .await
        .expect("href")
        .expect("a link");
    let got = browser
        .client
        .execute_async(
            "const [href, done] = arguments;
             fetch(href).then(r => Promise.all([r.headers.get('content-disposition'), r.arrayBuffer()]))
               .then(([d, b]) => done([d, Array.from(new Uint8Array(b).slice(0, 3)), new TextDecoder().decode(b)]));",
            vec![json!(href)],
        )
        .await
        .expect("fetch the CSV");
    let disposition = got[0].as_str().unwrap_or_default();
    assert!(
        disposition.starts_with("attachment") && disposition.contains("kpi-month-2026-03-01.csv"),
        "{disposition}"
    );
    assert_eq!(got[1], json!([0xEF, 0xBB, 0xBF]), "a UTF-8 BOM first");
    let text = got[2].as_str().unwrap_or_default();
    assert!(text.contains("单位名称") && text.contains("兰州市住房和城乡建设局"));

    // The daily report of the day, for the efficiency office (an hour on: today's report
    // is a snapshot of now).
    app.clock.advance(Duration::hours(1));
    browser
        .goto(&app.url("/reports/daily?date=2026-03-10"))
        .await;
    browser
        .wait_for("//h1[normalize-space()='日报 2026-03-10']")
        .await;
    let total = browser
        .text("//table[contains(@class, 'daily')]//tr[contains(@class, 'total')]")
        .await;
    assert!(total.contains("合计") && total.contains("10"), "{total}");
    browser.close().await;
    app.stop().await;
}
