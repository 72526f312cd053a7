//! Whole cases through the API: every step, and the refused steps along the way.

use serde_json::json;

use crate::helpers::{TestApp, holder_units, immediate_intake, time, timeline_types};

#[tokio::test]
async fn an_immediate_case_is_answered_on_the_call_and_archived() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let id = app
        .create(&op, &immediate_intake("咨询公积金提取材料"))
        .await
        .id;

    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "accepted");
    assert_eq!(case["status_label"], "已受理");
    assert_eq!(case["kind"], "immediate");

    // Rule 2: the answer cites the knowledge base, and an immediate case is never transferred.
    app.refused(
        &op,
        &id,
        "answer",
        &json!({ "reply": "请携带身份证和公积金卡到窗口办理。" }),
        422,
        "no_article_cited",
    )
    .await;
    app.refused(
        &op,
        &id,
        "answer",
        &json!({ "reply": "请携带身份证。", "kb_article_ids": ["", "  "] }),
        422,
        "no_article_cited",
    )
    .await;
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.fund" }),
        422,
        "immediate_not_transferable",
    )
    .await;
    // Archiving needs the answer first.
    app.refused(&op, &id, "archive", &json!({}), 422, "not_archivable")
        .await;

    app.ok(
        &op,
        &id,
        "answer",
        &json!({ "reply": "请携带身份证和公积金卡到窗口办理。", "kb_article_ids": ["fund-001", "fund-002"] }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "completed");
    assert_eq!(case["status_label"], "即办办结");
    assert_eq!(case["answered_on_call"], true);
    assert_eq!(case["kb_article_ids"], json!(["fund-001", "fund-002"]));
    assert!(case["holders"].as_array().unwrap().is_empty());

    // Answered once; a second answer is refused.
    app.refused(
        &op,
        &id,
        "answer",
        &json!({ "reply": "再答一次", "kb_article_ids": ["fund-001"] }),
        422,
        "not_open",
    )
    .await;

    app.ok(&op, &id, "archive", &json!({})).await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "archived");
    assert_eq!(case["status_label"], "已归档");
    assert!(case["archived_at"].is_string());
    assert_eq!(
        timeline_types(&case),
        ["accepted", "answered_on_call", "archived"]
    );
    app.refused(&op, &id, "archive", &json!({}), 422, "archived")
        .await;
    // An archived case still takes supervision (and changes nothing else).
    let supervisor = app.login("supervisor").await;
    app.ok(
        &supervisor,
        &id,
        "supervise",
        &json!({ "opinion": "抽查即办件质量" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "archived");
    assert_eq!(timeline_types(&case).last().unwrap(), "supervised");
}

#[tokio::test]
async fn a_complaint_goes_to_a_city_bureau_is_handled_called_back_and_archived() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let urban = app.login("urban_handler").await;

    let created = app.create(&op, &crate::helpers::intake("物业不作为")).await;
    assert_eq!(created.version, 1);
    let id = created.id;
    let case = app.case(&op, &id).await;
    assert_eq!(case["id"], id.as_str());
    assert_eq!(case["status"], "accepted");
    assert_eq!(case["status_label"], "已受理");
    assert_eq!(case["accepting_unit_id"], "city");
    assert_eq!(case["created_by"], "operator");
    assert_eq!(case["channel"], "phone");
    assert_eq!(case["category"], "complaint");
    assert!(case["holders"].as_array().unwrap().is_empty());

    // Not at the bureau yet: the bureau does not see it (receiving it is in bad_input.rs).
    assert_eq!(app.get_case(&housing, &id).await.status(), 404);

    let transferred = app
        .ok(
            &dispatcher,
            &id,
            "transfer",
            &json!({ "lead_unit_id": "city.bureau.housing", "note": "请市住建局核实处理" }),
        )
        .await;
    assert_eq!(transferred.version, 2);
    // Read-your-writes with the position the command returned.
    let res = app
        .get(
            Some(&housing),
            &format!("/api/v1/cases/{id}?min_position={}", transferred.position),
        )
        .await;
    assert_eq!(res.status(), 200);
    let case: serde_json::Value = res.json().await.unwrap();
    assert_eq!(case["status"], "transferred");
    assert_eq!(case["status_label"], "已转办（未接收）");
    let holders = case["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 1);
    let holder = &holders[0];
    assert_eq!(holder["unit_id"], "city.bureau.housing");
    assert_eq!(holder["unit_name"], "兰州市住房和城乡建设局");
    assert_eq!(holder["role"], "lead");
    assert_eq!(holder["state"], "pending");
    assert_eq!(holder["from_unit_id"], "city");
    assert_eq!(holder["overdue"], false);
    let transferred_at = time(&holder["transferred_at"]);
    let receive_by = time(&holder["receive_by"]);
    let complete_by = time(&holder["complete_by"]);
    assert_eq!(
        receive_by.offset().local_minus_utc(),
        8 * 3600,
        "times are shown in Shanghai"
    );
    assert!(
        transferred_at < receive_by,
        "{transferred_at} < {receive_by}"
    );
    assert!(receive_by < complete_by, "{receive_by} < {complete_by}");
    // Another bureau still sees nothing.
    assert_eq!(app.get_case(&urban, &id).await.status(), 404);

    // Handling before receiving is refused.
    app.refused(
        &housing,
        &id,
        "progress",
        &json!({ "note": "已联系物业" }),
        422,
        "not_received",
    )
    .await;
    app.refused(
        &housing,
        &id,
        "complete",
        &json!({ "reply": "已处理" }),
        422,
        "not_received",
    )
    .await;

    app.ok(&housing, &id, "receive", &json!({})).await;
    app.refused(
        &housing,
        &id,
        "receive",
        &json!({}),
        422,
        "already_received",
    )
    .await;
    let case = app.case(&housing, &id).await;
    assert_eq!(case["status"], "in_progress");
    assert_eq!(case["status_label"], "正在办理（已接收）");
    assert_eq!(case["holders"][0]["state"], "received");
    assert!(case["holders"][0]["received_at"].is_string());
    assert_eq!(time(&case["holders"][0]["receive_by"]), receive_by);
    assert_eq!(time(&case["holders"][0]["complete_by"]), complete_by);

    // Call-back before completion is refused.
    app.refused(
        &op,
        &id,
        "callback",
        &json!({ "satisfaction": "satisfied", "resolved": true }),
        422,
        "not_completed",
    )
    .await;

    app.ok(
        &housing,
        &id,
        "progress",
        &json!({ "note": "已约谈物业公司" }),
    )
    .await;
    assert_eq!(app.case(&housing, &id).await["status"], "in_progress");
    app.ok(
        &housing,
        &id,
        "complete",
        &json!({ "reply": "物业已整改，门口秩序恢复。" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "completed");
    assert_eq!(case["status_label"], "办结");
    assert!(case["holders"].as_array().unwrap().is_empty());
    assert_eq!(case["assignments"][0]["state"], "completed");
    assert_eq!(
        case["assignments"][0]["reply"],
        "物业已整改，门口秩序恢复。"
    );
    assert!(case["completed_at"].is_string());

    // Archive needs the call-back; the bureau cannot call back (not centre staff).
    app.refused(&op, &id, "archive", &json!({}), 422, "not_archivable")
        .await;
    app.refused(
        &housing,
        &id,
        "callback",
        &json!({ "satisfaction": "satisfied", "resolved": true }),
        403,
        "role_not_allowed",
    )
    .await;
    app.ok(
        &op,
        &id,
        "callback",
        &json!({ "satisfaction": "satisfied", "resolved": true, "note": "市民表示满意" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "called_back");
    assert_eq!(case["status_label"], "已回访");

    app.ok(&op, &id, "archive", &json!({})).await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "archived");
    assert_eq!(case["status_label"], "已归档");
    assert_eq!(case["version"], 7);
    assert_eq!(
        timeline_types(&case),
        [
            "accepted",
            "transferred",
            "received",
            "progress_recorded",
            "completed",
            "called_back",
            "archived"
        ]
    );
    let timeline = case["timeline"].as_array().unwrap();
    let actors: Vec<&str> = timeline
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        [
            "operator",
            "dispatcher",
            "housing_handler",
            "housing_handler",
            "housing_handler",
            "operator",
            "operator"
        ]
    );
    for (i, e) in timeline.iter().enumerate() {
        assert_eq!(e["version"], i as u64 + 1);
        time(&e["time"]);
    }
    let positions: Vec<u64> = timeline
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(timeline[1]["unit_id"], "city");
    assert_eq!(timeline[1]["data"]["note"], "请市住建局核实处理");
    assert_eq!(timeline[2]["unit_id"], "city.bureau.housing");

    // Archived cases take no more handling.
    app.refused(
        &housing,
        &id,
        "progress",
        &json!({ "note": "补充" }),
        422,
        "archived",
    )
    .await;
}

#[tokio::test]
async fn a_joint_case_cannot_be_completed_by_the_lead_before_the_co_handler_replies() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let urban = app.login("urban_handler").await;
    let id = app.accept(&op, "老旧小区改造占道").await;

    // A unit twice in one transfer is refused.
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing", "co_unit_ids": ["city.bureau.housing"] }),
        422,
        "duplicate_target",
    )
    .await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing", "co_unit_ids": ["city.bureau.urban"], "note": "住建局主办，城管局协办" }),
    )
    .await;
    let case = app.case(&dispatcher, &id).await;
    assert_eq!(case["status"], "transferred");
    let holders = case["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 2);
    assert_eq!(holders[0]["unit_id"], "city.bureau.housing");
    assert_eq!(holders[0]["role"], "lead");
    assert_eq!(holders[1]["unit_id"], "city.bureau.urban");
    assert_eq!(holders[1]["role"], "co");
    // Both units see the case.
    assert_eq!(app.get_case(&urban, &id).await.status(), 200);

    app.ok(&housing, &id, "receive", &json!({})).await;
    app.ok(&urban, &id, "receive", &json!({})).await;
    app.refused(
        &housing,
        &id,
        "complete",
        &json!({ "reply": "已处理完毕" }),
        422,
        "co_handlers_pending",
    )
    .await;

    app.ok(
        &urban,
        &id,
        "complete",
        &json!({ "reply": "城管局已清理占道" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(
        case["status"], "in_progress",
        "the co-handler's reply does not complete the case"
    );
    assert_eq!(holder_units(&case), ["city.bureau.housing"]);

    app.ok(
        &housing,
        &id,
        "complete",
        &json!({ "reply": "改造方案已公示" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "completed");
    assert_eq!(
        timeline_types(&case),
        [
            "accepted",
            "transferred",
            "received",
            "received",
            "completed",
            "completed"
        ]
    );
}

#[tokio::test]
async fn a_district_centre_transfers_down_to_a_street() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let district = app.login("chengguan_dispatcher").await;
    let street = app.login("chengguan_s01_handler").await;
    let other_street = app.login("qilihe_s01_handler").await;
    let id = app.accept(&op, "酒泉路路灯不亮").await;

    // The city centre gives to bureaus and district centres, not straight to a street.
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.s01" }),
        422,
        "target_not_allowed",
    )
    .await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan" }),
    )
    .await;
    assert_eq!(
        holder_units(&app.case(&district, &id).await),
        ["d.chengguan"]
    );

    // The district must receive before it transfers on.
    app.refused(
        &district,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.s01" }),
        422,
        "not_received",
    )
    .await;
    app.ok(&district, &id, "receive", &json!({})).await;

    // Rule 4: only down its own subtree.
    for (target, code) in [
        ("d.qilihe.s01", "target_not_allowed"),
        ("city.bureau.housing", "target_not_allowed"),
        ("d.qilihe", "target_not_allowed"),
        ("d.chengguan.s99", "unknown_unit"),
    ] {
        app.refused(
            &district,
            &id,
            "transfer",
            &json!({ "lead_unit_id": target }),
            422,
            code,
        )
        .await;
    }
    app.ok(
        &district,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.s01", "note": "请酒泉路街道处理" }),
    )
    .await;
    let case = app.case(&street, &id).await;
    assert_eq!(case["status"], "transferred");
    assert_eq!(holder_units(&case), ["d.chengguan.s01"]);
    assert_eq!(case["holders"][0]["from_unit_id"], "d.chengguan");
    assert_eq!(case["assignments"].as_array().unwrap().len(), 2);
    // An onward transfer keeps the deadline the case already runs on.
    assert_eq!(
        time(&case["assignments"][1]["complete_by"]),
        time(&case["assignments"][0]["complete_by"])
    );
    // Another district's street sees nothing and may do nothing.
    assert_eq!(app.get_case(&other_street, &id).await.status(), 404);
    app.refused(&other_street, &id, "receive", &json!({}), 404, "not_found")
        .await;

    // Rule 5: once the district transferred on, the city can no longer recall.
    app.refused(
        &dispatcher,
        &id,
        "recall",
        &json!({ "reason": "转错了" }),
        422,
        "too_late_to_recall",
    )
    .await;

    app.ok(&street, &id, "receive", &json!({})).await;
    assert_eq!(app.case(&op, &id).await["status"], "in_progress");
    // The street cannot send it back up.
    app.refused(
        &street,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan.dept.urban" }),
        422,
        "target_not_allowed",
    )
    .await;
    app.ok(&street, &id, "complete", &json!({ "reply": "路灯已修复" }))
        .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "completed");
    assert_eq!(
        timeline_types(&case),
        [
            "accepted",
            "transferred",
            "received",
            "transferred",
            "received",
            "completed"
        ]
    );
}

#[tokio::test]
async fn the_transferring_unit_recalls_until_the_receiver_records_handling() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let urban = app.login("urban_handler").await;
    let id = app.accept(&op, "转错单位的工单").await;

    app.refused(
        &dispatcher,
        &id,
        "recall",
        &json!({ "reason": "无" }),
        422,
        "nothing_to_recall",
    )
    .await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.urban" }),
    )
    .await;
    // Only the unit that made the transfer may recall it: for a unit never given the case it
    // does not exist; the receiver is told which unit decides.
    app.refused(
        &housing,
        &id,
        "recall",
        &json!({ "reason": "不是我转的" }),
        404,
        "not_found",
    )
    .await;
    let problem = app
        .refused(
            &urban,
            &id,
            "recall",
            &json!({ "reason": "我是接收方" }),
            403,
            "unit_not_allowed",
        )
        .await;
    assert_eq!(problem["decided_by"]["unit_id"], "city", "{problem}");
    assert_eq!(
        problem["decided_by"]["unit_name"], "兰州市12345政务服务便民热线中心",
        "{problem}"
    );
    app.refused(
        &op,
        &id,
        "recall",
        &json!({ "reason": "接线员" }),
        403,
        "role_not_allowed",
    )
    .await;
    // A recall needs its reason.
    app.refused(
        &dispatcher,
        &id,
        "recall",
        &json!({ "reason": "  " }),
        422,
        "missing_field",
    )
    .await;

    app.ok(
        &dispatcher,
        &id,
        "recall",
        &json!({ "reason": "应由住建局办理" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "accepted");
    assert!(case["holders"].as_array().unwrap().is_empty());
    assert_eq!(case["assignments"][0]["state"], "recalled");
    // The recalled unit no longer holds it.
    app.refused(&urban, &id, "receive", &json!({}), 403, "unit_not_allowed")
        .await;

    // Transferred again; received (no handling yet) can still be recalled…
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &id, "receive", &json!({})).await;
    app.ok(
        &dispatcher,
        &id,
        "recall",
        &json!({ "reason": "补充材料后再转" }),
    )
    .await;
    // …but not once the receiver recorded handling.
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &id, "receive", &json!({})).await;
    app.ok(
        &housing,
        &id,
        "progress",
        &json!({ "note": "已派人现场查看" }),
    )
    .await;
    app.refused(
        &dispatcher,
        &id,
        "recall",
        &json!({ "reason": "想追回" }),
        422,
        "too_late_to_recall",
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "in_progress");
    assert_eq!(holder_units(&case), ["city.bureau.housing"]);
    let states: Vec<&str> = case["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["recalled", "recalled", "received"]);
}

#[tokio::test]
async fn a_receiver_asks_for_a_return_and_the_transferrer_decides() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&op, "不属于住建局职责").await;

    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &id, "receive", &json!({})).await;
    app.refused(
        &dispatcher,
        &id,
        "return-decision",
        &json!({ "accept": true }),
        422,
        "no_return_request",
    )
    .await;
    app.refused(
        &housing,
        &id,
        "return-request",
        &json!({ "reason": "" }),
        422,
        "missing_field",
    )
    .await;
    app.ok(
        &housing,
        &id,
        "return-request",
        &json!({ "reason": "该事项属城管职责" }),
    )
    .await;
    let case = app.case(&dispatcher, &id).await;
    assert_eq!(case["holders"][0]["return_request"], "该事项属城管职责");
    app.refused(
        &housing,
        &id,
        "return-request",
        &json!({ "reason": "再申请" }),
        422,
        "return_pending",
    )
    .await;
    // The receiver cannot return on its own, nor decide its own request: the transferrer does.
    let problem = app
        .refused(
            &housing,
            &id,
            "return-decision",
            &json!({ "accept": true }),
            403,
            "unit_not_allowed",
        )
        .await;
    assert_eq!(problem["decided_by"]["unit_id"], "city", "{problem}");
    // Overruling needs reasons.
    app.refused(
        &dispatcher,
        &id,
        "return-decision",
        &json!({ "accept": false }),
        422,
        "missing_field",
    )
    .await;

    // Overruled first: the case stays with the bureau.
    app.ok(
        &dispatcher,
        &id,
        "return-decision",
        &json!({ "accept": false, "note": "住建局负责物业监管，请继续办理" }),
    )
    .await;
    let case = app.case(&dispatcher, &id).await;
    assert_eq!(case["status"], "in_progress");
    assert!(case["holders"][0]["return_request"].is_null());

    // Asked again and accepted: the transfer is recalled.
    app.ok(
        &housing,
        &id,
        "return-request",
        &json!({ "reason": "已与城管局确认属其职责" }),
    )
    .await;
    app.ok(
        &dispatcher,
        &id,
        "return-decision",
        &json!({ "accept": true, "note": "同意退回" }),
    )
    .await;
    let case = app.case(&dispatcher, &id).await;
    assert_eq!(case["status"], "accepted");
    assert!(case["holders"].as_array().unwrap().is_empty());
    assert_eq!(case["assignments"][0]["state"], "recalled");
    assert_eq!(
        timeline_types(&case),
        [
            "accepted",
            "transferred",
            "received",
            "return_requested",
            "return_decided",
            "return_requested",
            "return_decided",
            "recalled"
        ]
    );
    // The centre transfers it to the right unit.
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.urban" }),
    )
    .await;
    assert_eq!(
        holder_units(&app.case(&op, &id).await),
        ["city.bureau.urban"]
    );
}

#[tokio::test]
async fn an_unsatisfied_call_back_reopens_the_case_for_the_same_unit() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&op, "楼道漏水").await;

    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &id, "receive", &json!({})).await;
    app.ok(
        &housing,
        &id,
        "complete",
        &json!({ "reply": "已通知物业维修" }),
    )
    .await;
    // Reopen needs an unsatisfied call-back.
    app.refused(
        &op,
        &id,
        "reopen",
        &json!({ "reason": "未回访" }),
        422,
        "not_unsatisfied",
    )
    .await;
    app.ok(
        &op,
        &id,
        "callback",
        &json!({ "satisfaction": "unsatisfied", "resolved": false, "note": "仍在漏水" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "called_back");
    // Only the centre reopens, and with a reason.
    app.refused(
        &housing,
        &id,
        "reopen",
        &json!({ "reason": "自己重办" }),
        403,
        "role_not_allowed",
    )
    .await;
    app.refused(
        &op,
        &id,
        "reopen",
        &json!({ "reason": "" }),
        422,
        "missing_field",
    )
    .await;

    app.ok(
        &op,
        &id,
        "reopen",
        &json!({ "reason": "市民反映仍在漏水，请重办" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "in_progress");
    assert_eq!(case["status_label"], "正在办理（已接收）");
    assert_eq!(case["n_reopened"], 1);
    assert!(case["completed_at"].is_null());
    assert_eq!(holder_units(&case), ["city.bureau.housing"]);
    assert_eq!(case["holders"][0]["state"], "received");
    assert!(time(&case["holders"][0]["complete_by"]) > time(&case["holders"][0]["transferred_at"]));

    app.ok(
        &housing,
        &id,
        "progress",
        &json!({ "note": "更换了楼顶防水层" }),
    )
    .await;
    app.ok(
        &housing,
        &id,
        "complete",
        &json!({ "reply": "防水层已更换，漏水已解决" }),
    )
    .await;
    assert_eq!(app.case(&op, &id).await["status"], "completed");
    app.ok(
        &op,
        &id,
        "callback",
        &json!({ "satisfaction": "satisfied", "resolved": true }),
    )
    .await;
    app.ok(&op, &id, "archive", &json!({})).await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "archived");
    assert_eq!(
        timeline_types(&case),
        [
            "accepted",
            "transferred",
            "received",
            "completed",
            "called_back",
            "reopened",
            "progress_recorded",
            "completed",
            "called_back",
            "archived"
        ]
    );
}

#[tokio::test]
async fn an_approved_extension_moves_the_deadline_and_a_refused_one_does_not() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let id = app.accept(&op, "需要协调多部门的工单").await;

    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.refused(
        &housing,
        &id,
        "extension",
        &json!({ "working_days": 3, "reason": "需要调查" }),
        422,
        "not_received",
    )
    .await;
    app.ok(&housing, &id, "receive", &json!({})).await;
    let before = time(&app.case(&op, &id).await["holders"][0]["complete_by"]);

    app.refused(
        &housing,
        &id,
        "extension",
        &json!({ "working_days": 11, "reason": "需要很久" }),
        422,
        "extension_too_long",
    )
    .await;
    app.refused(
        &housing,
        &id,
        "extension",
        &json!({ "working_days": 0, "reason": "零天" }),
        422,
        "missing_field",
    )
    .await;
    app.refused(
        &dispatcher,
        &id,
        "extension/decide",
        &json!({ "approve": true }),
        422,
        "no_extension_request",
    )
    .await;

    app.ok(
        &housing,
        &id,
        "extension",
        &json!({ "working_days": 3, "reason": "需要住建、城管联合调查" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["holders"][0]["extension_request_days"], 3);
    assert_eq!(
        time(&case["holders"][0]["complete_by"]),
        before,
        "a request alone moves nothing"
    );
    app.refused(
        &housing,
        &id,
        "extension",
        &json!({ "working_days": 2, "reason": "再来一次" }),
        422,
        "extension_pending",
    )
    .await;
    // The bureau cannot approve its own request: the transferring centre decides.
    app.refused(
        &housing,
        &id,
        "extension/decide",
        &json!({ "approve": true }),
        403,
        "unit_not_allowed",
    )
    .await;

    app.ok(
        &dispatcher,
        &id,
        "extension/decide",
        &json!({ "approve": true, "note": "同意延期3个工作日" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    let after = time(&case["holders"][0]["complete_by"]);
    assert!(case["holders"][0]["extension_request_days"].is_null());
    // Three working days are at least three calendar days later.
    assert!(
        after - before >= chrono::Duration::days(3),
        "complete_by moved from {before} to {after}"
    );
    assert_eq!(case["status"], "in_progress");

    // A second request, refused: the deadline stays.
    app.ok(
        &housing,
        &id,
        "extension",
        &json!({ "working_days": 7, "reason": "还需要时间" }),
    )
    .await;
    app.ok(
        &dispatcher,
        &id,
        "extension/decide",
        &json!({ "approve": false, "note": "不同意，请按期办结" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(time(&case["holders"][0]["complete_by"]), after);
    assert!(case["holders"][0]["extension_request_days"].is_null());
    // 3 approved + 8 more would pass the 10-day ceiling.
    app.refused(
        &housing,
        &id,
        "extension",
        &json!({ "working_days": 8, "reason": "超过上限" }),
        422,
        "extension_too_long",
    )
    .await;
    assert_eq!(
        timeline_types(&case),
        [
            "accepted",
            "transferred",
            "received",
            "extension_requested",
            "extension_decided",
            "extension_requested",
            "extension_decided"
        ]
    );
}

#[tokio::test]
async fn the_timeline_speaks_chinese_with_names_and_shanghai_times_to_the_second() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let id = app.accept(&op, "时间线").await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    let case = app.case(&op, &id).await;
    let timeline = case["timeline"].as_array().expect("timeline");
    let labels: Vec<&str> = timeline
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["受理", "转办"]);
    assert_eq!(timeline[1]["unit_name"], "兰州市12345政务服务便民热线中心");
    assert_ne!(
        timeline[1]["actor_name"], "dispatcher",
        "a person's name, not the login"
    );
    assert!(!timeline[1]["actor_name"].as_str().unwrap().is_empty());
    // Every time in the event data, deadlines included, as the wire writes times.
    let text = timeline[1]["data"].to_string();
    let stamps: Vec<&str> = text
        .split('"')
        .filter(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
        .collect();
    assert!(!stamps.is_empty(), "{text}");
    for stamp in stamps {
        assert!(
            stamp.ends_with("+08:00") && !stamp.contains('.'),
            "{stamp} in {text}"
        );
    }
}

fn verbs(case: &serde_json::Value) -> Vec<String> {
    case["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["verb"].as_str().expect("verb").to_owned())
        .collect()
}

#[tokio::test]
async fn the_case_lists_what_this_user_may_do_now_and_it_is_accepted() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let chengguan = app.login("chengguan_dispatcher").await;
    let supervisor = app.login("supervisor").await;
    let id = app.accept(&op, "可做之事").await;

    assert_eq!(verbs(&app.case(&op, &id).await), ["merge"]);
    assert_eq!(verbs(&app.case(&supervisor, &id).await), ["supervise"]);
    let case = app.case(&dispatcher, &id).await;
    assert_eq!(verbs(&case), ["transfer", "merge"]);
    let targets = case["actions"][0]["transfer_targets"]
        .as_array()
        .expect("targets");
    let ids: Vec<&str> = targets
        .iter()
        .map(|t| t["unit_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"d.chengguan") && ids.contains(&"city.bureau.housing"));
    assert!(
        !ids.contains(&"d.chengguan.s01"),
        "not past the district centre"
    );
    let chengguan_target = targets
        .iter()
        .find(|t| t["unit_id"] == "d.chengguan")
        .expect("城关");
    assert_eq!(chengguan_target["path"], "城关区");
    // What is offered is accepted.
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan" }),
    )
    .await;
    assert_eq!(
        verbs(&app.case(&dispatcher, &id).await),
        ["recall", "merge"]
    );
    assert_eq!(
        verbs(&app.case(&chengguan, &id).await),
        ["receive", "return-request"]
    );
    app.ok(&chengguan, &id, "receive", &json!({})).await;
    let case = app.case(&chengguan, &id).await;
    let offered = verbs(&case);
    assert!(offered.contains(&"transfer".to_owned()), "{offered:?}");
    assert!(!offered.contains(&"receive".to_owned()), "{offered:?}");
    // What is not offered is refused.
    app.refused(
        &chengguan,
        &id,
        "receive",
        &json!({}),
        422,
        "already_received",
    )
    .await;
}
