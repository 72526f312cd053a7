//! The directory as managed data (issue 12): units and users changed through the API, each
//! change recorded with who and when, history kept true (a renamed unit's earlier steps keep
//! the name they had), and a data directory of an older build (its users in `users.json`, no
//! recorded directory) still working.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, time};

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn json_ok(res: reqwest::Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let body = res.text().await.expect("body");
    assert_eq!(got, status, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

#[tokio::test]
async fn renaming_a_unit_holding_an_open_case_keeps_its_history_and_deadlines() {
    let app = TestApp::spawn().await;
    let admin = app.login("admin").await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&op, "楼道灯坏了").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing", "note": "请核实" }),
    )
    .await;
    let received = app.ok(&housing, &id, "receive", &json!({})).await;
    let before = app.case(&housing, &id).await;
    let deadline = before["holders"][0]["complete_by"].clone();

    let renamed = json_ok(
        post(
            &app,
            &admin,
            "/api/v1/units/city.bureau.housing/rename",
            &json!({ "name": "兰州市住房保障和房产管理局" }),
        )
        .await,
        200,
    )
    .await;
    assert!(renamed["position"].as_u64().expect("position") > received.position);

    // The unit list shows the new name; the case's holder is the unit by its new name, and
    // the step it recorded before keeps the old one; the deadline is the one recorded.
    let units = json_ok(app.get(Some(&op), "/api/v1/units?q=房产管理局").await, 200).await;
    assert_eq!(units[0]["id"], "city.bureau.housing");
    let after = app.case(&housing, &id).await;
    assert_eq!(
        after["holders"][0]["unit_name"],
        "兰州市住房保障和房产管理局"
    );
    assert_eq!(after["holders"][0]["complete_by"], deadline);
    let receive_step = after["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["type"] == "received")
        .expect("the receive step")
        .clone();
    assert_eq!(receive_step["unit_name"], "兰州市住房和城乡建设局");
    assert_eq!(
        before["timeline"].as_array().map(Vec::len),
        after["timeline"].as_array().map(Vec::len),
        "a rename appends nothing to the case"
    );

    // A rule refused says so in Chinese and records nothing; only admins change the directory.
    let moved = post(
        &app,
        &admin,
        "/api/v1/units/city/move",
        &json!({ "parent_id": "city.bureau.housing" }),
    )
    .await;
    let problem = assert_problem(moved, 422, "root_unit").await;
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_ascii()));
    let not_admin = post(
        &app,
        &op,
        "/api/v1/units/city.bureau.housing/rename",
        &json!({ "name": "某局" }),
    )
    .await;
    assert_problem(not_admin, 403, "role_not_allowed").await;
    let closing = post(
        &app,
        &admin,
        "/api/v1/units/city.bureau.housing/close",
        &json!({}),
    )
    .await;
    let problem = assert_problem(closing, 422, "unit_has_users").await;
    assert!(problem["title"].as_str().is_some());

    // The record says who changed what, when; the seed came first, from `system`.
    let record = json_ok(
        app.get(Some(&admin), "/api/v1/directory/events?limit=500")
            .await,
        200,
    )
    .await;
    assert_eq!(record[0]["actor"], "system");
    let version = renamed["version"].as_u64().expect("version");
    let page = json_ok(
        app.get(
            Some(&admin),
            &format!("/api/v1/directory/events?after={}", version - 1),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    assert_eq!(page[0]["type"], "unit_renamed");
    assert_eq!(page[0]["actor"], "admin");
    assert_eq!(page[0]["change"]["name"], "兰州市住房保障和房产管理局");
    time(&page[0]["at"]);
    assert_problem(
        app.get(Some(&op), "/api/v1/directory/events").await,
        403,
        "role_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn a_new_user_signs_in_once_with_the_handed_out_password_and_a_disabled_one_not_at_all() {
    let mut app = TestApp::spawn().await;
    let admin = app.login("admin").await;
    let created = json_ok(
        post(
            &app,
            &admin,
            "/api/v1/users",
            &json!({
                "username": "housing_clerk",
                "display_name": "马晓燕",
                "unit_id": "city.bureau.housing",
                "roles": ["handler"],
            }),
        )
        .await,
        201,
    )
    .await;
    let initial = created["initial_password"]
        .as_str()
        .expect("a one-time password");
    let res = app.login_with("housing_clerk", initial).await;
    let body = json_ok(res, 200).await;
    assert_eq!(body["user"]["must_change_password"], true);
    assert_eq!(body["user"]["unit_id"], "city.bureau.housing");
    let clerk = body["token"].as_str().expect("token").to_owned();
    // Until the password is changed, the API answers nothing else.
    assert_problem(
        app.get(Some(&clerk), "/api/v1/cases").await,
        403,
        "password_change_required",
    )
    .await;
    // The same name again is refused.
    let again = post(
        &app,
        &admin,
        "/api/v1/users",
        &json!({ "username": "housing_clerk", "display_name": "马晓燕",
                 "unit_id": "city.bureau.housing", "roles": ["handler"] }),
    )
    .await;
    assert_problem(again, 409, "user_exists").await;

    // Disabling ends the sessions at once and refuses the next sign-in.
    let handler = app.login("housing_handler").await;
    json_ok(
        post(
            &app,
            &admin,
            "/api/v1/users/housing_handler/disable",
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(app.get(Some(&handler), "/api/v1/me").await.status(), 401);
    assert_eq!(
        app.login_with("housing_handler", PASSWORD).await.status(),
        401
    );
    // And it lasts across a restart; enabling lets the user in again.
    app.terminate();
    assert!(app.wait_exit().success());
    app.restart().await;
    let admin = app.login("admin").await;
    assert_eq!(
        app.login_with("housing_handler", PASSWORD).await.status(),
        401
    );
    json_ok(
        post(
            &app,
            &admin,
            "/api/v1/users/housing_handler/enable",
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        app.login_with("housing_handler", PASSWORD).await.status(),
        200
    );

    // A reset hands out a new one-time password; the old one stops working.
    let reset = json_ok(
        post(
            &app,
            &admin,
            "/api/v1/users/housing_handler/reset-password",
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    let one_time = reset["initial_password"].as_str().expect("password");
    assert_eq!(
        app.login_with("housing_handler", PASSWORD).await.status(),
        401
    );
    let body = json_ok(app.login_with("housing_handler", one_time).await, 200).await;
    assert_eq!(body["user"]["must_change_password"], true);

    // The last administrator cannot be disabled.
    let last = post(&app, &admin, "/api/v1/users/admin/disable", &json!({})).await;
    assert_problem(last, 422, "last_admin").await;
}

#[tokio::test]
async fn a_data_directory_of_an_older_build_keeps_its_users_and_cases() {
    // An older build's data directory: its users (one changed by hand, one added) in
    // `users.json`, cases in the store, and no recorded directory.
    let mut app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let id = app.accept(&op, "路灯不亮").await;
    app.terminate();
    assert!(app.wait_exit().success());
    let store = rusqlite::Connection::open(app.data_dir().join("events.db")).expect("store");
    store
        .execute_batch(
            "DELETE FROM events WHERE stream = 'directory';
             DELETE FROM streams WHERE stream = 'directory';",
        )
        .expect("forget the recorded directory");
    drop(store);
    let path = app.data_dir().join("users.json");
    let mut users: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("users")).expect("JSON");
    let mut extra = users
        .iter()
        .find(|u| u["username"] == "operator")
        .expect("operator")
        .clone();
    extra["username"] = json!("operator_legacy");
    extra["display_name"] = json!("旧版用户");
    users.push(extra);
    std::fs::write(&path, serde_json::to_string(&users).expect("JSON")).expect("write users");

    app.restart().await;
    let admin = app.login("admin").await;
    let legacy = app.login("operator_legacy").await;
    let case = app.case(&legacy, &id).await;
    assert_eq!(case["id"], id.as_str());
    let mut record = Vec::new();
    loop {
        let page = json_ok(
            app.get(
                Some(&admin),
                &format!("/api/v1/directory/events?limit=500&after={}", record.len()),
            )
            .await,
            200,
        )
        .await;
        let page = page.as_array().expect("record").clone();
        if page.is_empty() {
            break;
        }
        record.extend(page);
    }
    assert!(
        record
            .iter()
            .any(|e| e["type"] == "user_created"
                && e["change"]["user"]["username"] == "operator_legacy"),
        "the older build's users are the recorded directory's first users"
    );
    // Recorded after the cases the older build wrote.
    let case_position = app.case(&admin, &id).await["timeline"][0]["position"].clone();
    assert!(record[0]["position"].as_u64() > case_position.as_u64());
}

#[tokio::test]
async fn closing_a_unit_hands_its_open_case_to_the_successor_with_its_deadlines() {
    let app = TestApp::spawn().await;
    let admin = app.login("admin").await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let urban = app.login("urban_handler").await;
    let id = app.accept(&op, "小区供暖不热").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing", "note": "请核实" }),
    )
    .await;
    app.ok(&housing, &id, "receive", &json!({})).await;
    let deadline = app.case(&housing, &id).await["holders"][0]["complete_by"].clone();

    // Its staff leave first; then it holds an open case, so it needs a successor.
    let close = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move { post(app, admin, "/api/v1/units/city.bureau.housing/close", &body).await }
    };
    let refused = close(json!({})).await;
    assert_problem(refused, 422, "unit_has_users").await;
    json_ok(
        post(
            &app,
            &admin,
            "/api/v1/users/housing_handler/disable",
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    // The leader who oversaw it oversees the successor only.
    let leader = app.login("city_leader_housing").await;
    let me = json_ok(app.get(Some(&leader), "/api/v1/me").await, 200).await;
    json_ok(
        post(
            &app,
            &admin,
            "/api/v1/users/city_leader_housing/change",
            &json!({ "unit_id": me["unit_id"], "roles": me["roles"], "oversees": ["city.bureau.urban"] }),
        )
        .await,
        200,
    )
    .await;
    let refused = close(json!({})).await;
    let problem = assert_problem(refused, 422, "successor_required").await;
    assert!(
        problem["title"].as_str().is_some_and(|t| t.contains('1')),
        "{problem}"
    );
    let closed = json_ok(
        close(json!({ "successor": "city.bureau.urban" })).await,
        200,
    )
    .await;

    // The successor holds it now, with the deadline recorded, and carries on.
    let case = json_ok(
        app.get(
            Some(&urban),
            &format!("/api/v1/cases/{id}?min_position={}", closed["position"]),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(case["holders"][0]["unit_id"], "city.bureau.urban");
    assert_eq!(case["holders"][0]["complete_by"], deadline);
    assert!(
        crate::helpers::timeline_types(&case).contains(&"handed_over".to_owned()),
        "{case}"
    );
    app.ok(
        &urban,
        &id,
        "complete",
        &json!({ "reply": "已协调供热公司处理" }),
    )
    .await;
    // The closed unit is gone from the tree.
    let units = json_ok(
        app.get(Some(&op), "/api/v1/units?q=住房和城乡建设局").await,
        200,
    )
    .await;
    assert!(
        units
            .as_array()
            .expect("units")
            .iter()
            .all(|u| u["id"] != "city.bureau.housing"),
        "{units}"
    );
}

async fn listed(app: &TestApp, token: &str, id: &str, position: u64) -> bool {
    let list = json_ok(
        app.get(
            Some(token),
            &format!("/api/v1/cases?per_page=100&min_position={position}"),
        )
        .await,
        200,
    )
    .await;
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|i| i["id"] == id)
}

#[tokio::test]
async fn a_street_moved_to_another_district_takes_its_cases_out_of_the_old_district_s_lists() {
    let app = TestApp::spawn().await;
    let admin = app.login("admin").await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let chengguan = app.login("chengguan_dispatcher").await;
    let qilihe = app.login("qilihe_dispatcher").await;
    let id = app.accept(&op, "路面塌陷").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan", "note": "请处理" }),
    )
    .await;
    app.ok(&chengguan, &id, "receive", &json!({})).await;
    let sent = app
        .ok(
            &chengguan,
            &id,
            "transfer",
            &json!({ "lead_unit_id": "d.chengguan.s01", "note": "请街道处理" }),
        )
        .await;
    assert!(listed(&app, &chengguan, &id, sent.position).await);
    assert!(!listed(&app, &qilihe, &id, sent.position).await);

    let moved = json_ok(
        post(
            &app,
            &admin,
            "/api/v1/units/d.chengguan.s01/move",
            &json!({ "parent_id": "d.qilihe" }),
        )
        .await,
        200,
    )
    .await;
    // The read models follow the move before the next batch: the new district finds the
    // street's case, and the old one keeps only what it handled itself (its own transfer).
    let position = moved["position"].as_u64().expect("position");
    assert!(listed(&app, &qilihe, &id, position).await);
    assert!(listed(&app, &chengguan, &id, position).await);
    let case = app.case(&qilihe, &id).await;
    assert_eq!(case["holders"][0]["unit_id"], "d.chengguan.s01");
}
