//! Supervision, annotation, merging duplicates and appeals: steps around the flow.

use serde_json::{Value, json};

use crate::helpers::{TestApp, holder_units, intake, timeline_types};

/// What supervision and annotation must leave alone.
fn flow_state(case: &Value) -> (Value, Value, Value) {
    (
        case["status"].clone(),
        case["holders"].clone(),
        case["assignments"].clone(),
    )
}

#[tokio::test]
async fn supervision_and_annotation_change_neither_status_nor_holders() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let district = app.login("chengguan_dispatcher").await;
    let supervisor = app.login("supervisor").await;
    let city_leader = app.login("city_leader").await;
    let chengguan_leader = app.login("chengguan_leader").await;
    let qilihe_leader = app.login("qilihe_leader").await;
    let housing_leader = app.login("city_leader_housing").await;
    let id = app.accept(&op, "违章搭建久拖不办").await;

    // Rule 6: annotation only once the case went to a unit the leader oversees.
    app.refused(
        &city_leader,
        &id,
        "annotate",
        &json!({ "text": "请尽快办理" }),
        403,
        "not_overseen",
    )
    .await;

    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "d.chengguan" }),
    )
    .await;
    app.ok(&district, &id, "receive", &json!({})).await;
    let before = app.case(&op, &id).await;

    // 督办 by the efficiency office.
    app.ok(
        &supervisor,
        &id,
        "supervise",
        &json!({ "opinion": "请城关区三日内办结" }),
    )
    .await;
    // Neither other roles nor an empty opinion.
    app.refused(
        &op,
        &id,
        "supervise",
        &json!({ "opinion": "督办" }),
        403,
        "role_not_allowed",
    )
    .await;
    app.refused(
        &city_leader,
        &id,
        "supervise",
        &json!({ "opinion": "督办" }),
        403,
        "role_not_allowed",
    )
    .await;
    app.refused(
        &supervisor,
        &id,
        "supervise",
        &json!({ "opinion": " " }),
        422,
        "missing_field",
    )
    .await;

    // 批示 by the city leader and the district's own leader.
    app.ok(
        &city_leader,
        &id,
        "annotate",
        &json!({ "text": "请城关区高度重视" }),
    )
    .await;
    app.ok(
        &chengguan_leader,
        &id,
        "annotate",
        &json!({ "text": "区住建、城管联合处置" }),
    )
    .await;
    // A district leader of another district, and a city leader over other units, may not:
    // a case that went to no unit a leader oversees does not exist for them (rule 14).
    app.refused(
        &qilihe_leader,
        &id,
        "annotate",
        &json!({ "text": "越权批示" }),
        404,
        "not_found",
    )
    .await;
    app.refused(
        &housing_leader,
        &id,
        "annotate",
        &json!({ "text": "越权批示" }),
        404,
        "not_found",
    )
    .await;
    // Only leaders annotate.
    app.refused(
        &supervisor,
        &id,
        "annotate",
        &json!({ "text": "批示" }),
        403,
        "role_not_allowed",
    )
    .await;

    let after = app.case(&op, &id).await;
    assert_eq!(flow_state(&after), flow_state(&before));
    assert_eq!(after["status"], "in_progress");
    assert_eq!(holder_units(&after), ["d.chengguan"]);
    assert_eq!(
        timeline_types(&after),
        [
            "accepted",
            "transferred",
            "received",
            "supervised",
            "annotated",
            "annotated"
        ]
    );
    let timeline = after["timeline"].as_array().unwrap();
    assert_eq!(timeline[3]["actor"], "supervisor");
    assert_eq!(timeline[3]["unit_id"], "city.efficiency");
    assert_eq!(timeline[3]["data"]["opinion"], "请城关区三日内办结");
    assert_eq!(timeline[3]["data"]["unit_ids"], json!(["d.chengguan"]));
    assert_eq!(timeline[4]["actor"], "city_leader");
    assert_eq!(timeline[4]["data"]["text"], "请城关区高度重视");
    assert_eq!(timeline[5]["actor"], "chengguan_leader");

    // Leaders see the cases of the units they oversee.
    assert_eq!(app.get_case(&chengguan_leader, &id).await.status(), 200);
    assert_eq!(app.get_case(&qilihe_leader, &id).await.status(), 404);
}

#[tokio::test]
async fn a_duplicate_merged_into_a_master_is_archived_with_the_master() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;
    let master = app.accept(&op, "小区停水（首次来电）").await;
    let duplicate = app.accept(&op, "小区停水（重复来电）").await;

    // The duplicate was already transferred: merging cancels that assignment.
    app.ok(
        &dispatcher,
        &duplicate,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.refused(
        &op,
        &duplicate,
        "merge",
        &json!({ "master_id": duplicate }),
        422,
        "merge_into_self",
    )
    .await;
    app.refused(
        &op,
        &duplicate,
        "merge",
        &json!({ "master_id": "2000010199999" }),
        422,
        "invalid_master",
    )
    .await;
    app.refused(
        &op,
        &duplicate,
        "merge",
        &json!({ "master_id": "第一单" }),
        400,
        "invalid_field",
    )
    .await;
    app.refused(
        &housing,
        &duplicate,
        "merge",
        &json!({ "master_id": master }),
        403,
        "role_not_allowed",
    )
    .await;

    app.ok(&op, &duplicate, "merge", &json!({ "master_id": master }))
        .await;
    let dup = app.case(&op, &duplicate).await;
    assert_eq!(dup["merged_into"], master.as_str());
    assert_eq!(dup["status_label"], "已并单");
    assert!(dup["holders"].as_array().unwrap().is_empty());
    assert_eq!(dup["assignments"][0]["state"], "cancelled");
    let m = app.case(&op, &master).await;
    assert_eq!(m["duplicates"], json!([duplicate]));
    // A merged duplicate follows its master: no handling of its own, no second merge.
    app.refused(&housing, &duplicate, "receive", &json!({}), 422, "merged")
        .await;
    app.refused(
        &op,
        &duplicate,
        "merge",
        &json!({ "master_id": master }),
        422,
        "merged",
    )
    .await;
    // A merged case is no master.
    let third = app.accept(&op, "小区停水（第三次来电）").await;
    app.refused(
        &op,
        &third,
        "merge",
        &json!({ "master_id": duplicate }),
        422,
        "invalid_master",
    )
    .await;

    app.ok(
        &dispatcher,
        &master,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
    app.ok(&housing, &master, "receive", &json!({})).await;
    app.ok(
        &housing,
        &master,
        "complete",
        &json!({ "reply": "管道已抢修，恢复供水" }),
    )
    .await;
    app.ok(
        &op,
        &master,
        "callback",
        &json!({ "satisfaction": "satisfied", "resolved": true }),
    )
    .await;
    assert_eq!(
        app.case(&op, &duplicate).await["status"],
        "accepted",
        "open while the master is"
    );
    app.ok(&op, &master, "archive", &json!({})).await;

    assert_eq!(app.case(&op, &master).await["status"], "archived");
    let dup = app.case(&op, &duplicate).await;
    assert_eq!(dup["status"], "archived");
    assert_eq!(dup["status_label"], "已归档");
    assert_eq!(
        timeline_types(&dup),
        ["accepted", "transferred", "merged", "archived"]
    );
    let archived = dup["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(archived["data"]["master_id"], master.as_str());
}

#[tokio::test]
async fn the_handling_unit_appeals_an_unsatisfied_rating_and_the_shift_leader_decides() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let shift_leader = app.login("shift_leader").await;
    let housing = app.login("housing_handler").await;
    let urban = app.login("urban_handler").await;
    let id = app.accept(&op, "要求物业减免物业费").await;

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
        &json!({ "reply": "物业费标准合规，已向市民解释" }),
    )
    .await;
    // Nothing to appeal before an unsatisfied call-back.
    app.refused(
        &housing,
        &id,
        "appeal",
        &json!({ "reason": "无理差评" }),
        422,
        "not_unsatisfied",
    )
    .await;
    app.ok(
        &op,
        &id,
        "callback",
        &json!({ "satisfaction": "unsatisfied", "resolved": false, "note": "诉求不合理，未获支持" }),
    )
    .await;
    app.refused(
        &shift_leader,
        &id,
        "appeal-decision",
        &json!({ "upheld": true, "note": "无" }),
        422,
        "no_appeal",
    )
    .await;
    // Only the unit that handled it appeals; for a unit that never had it, it does not exist.
    app.refused(
        &urban,
        &id,
        "appeal",
        &json!({ "reason": "不是我办的" }),
        404,
        "not_found",
    )
    .await;
    app.refused(
        &op,
        &id,
        "appeal",
        &json!({ "reason": "接线员申诉" }),
        403,
        "role_not_allowed",
    )
    .await;

    app.ok(
        &housing,
        &id,
        "appeal",
        &json!({ "reason": "市民诉求超出政策范围，属不合理差评" }),
    )
    .await;
    app.refused(
        &housing,
        &id,
        "appeal",
        &json!({ "reason": "再申诉" }),
        422,
        "already_appealed",
    )
    .await;
    // Not archived while the appeal waits.
    app.refused(&op, &id, "archive", &json!({}), 422, "not_archivable")
        .await;
    // The centre decides, with reasons; a handler may not.
    app.refused(
        &housing,
        &id,
        "appeal-decision",
        &json!({ "upheld": true, "note": "自审" }),
        403,
        "role_not_allowed",
    )
    .await;
    app.refused(
        &shift_leader,
        &id,
        "appeal-decision",
        &json!({ "upheld": true }),
        422,
        "missing_field",
    )
    .await;

    app.ok(
        &shift_leader,
        &id,
        "appeal-decision",
        &json!({ "upheld": true, "note": "经核实属不合理差评，不计入考核" }),
    )
    .await;
    app.refused(
        &shift_leader,
        &id,
        "appeal-decision",
        &json!({ "upheld": false, "note": "改判" }),
        422,
        "no_appeal",
    )
    .await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "called_back");
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
            "appealed",
            "appeal_decided",
            "archived"
        ]
    );
    let decided = &case["timeline"][6];
    assert_eq!(decided["actor"], "shift_leader");
    assert_eq!(decided["data"]["upheld"], true);
}

#[tokio::test]
async fn a_case_with_an_unknown_location_is_refused_and_one_without_cannot_be_transferred() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let mut body = intake("无位置的工单");
    body.as_object_mut().unwrap().remove("location_unit_id");
    let id = app.create(&op, &body).await.id;
    // Rule 3: a transfer needs the citizen's place in the tree.
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
        422,
        "missing_field",
    )
    .await;
}

#[tokio::test]
async fn a_merge_made_before_a_crash_still_closes_the_duplicate_with_its_master() {
    let mut app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let master = app.accept(&op, "路面塌陷（首次来电）").await;
    let duplicate = app.accept(&op, "路面塌陷（重复来电）").await;
    app.ok(&op, &duplicate, "merge", &json!({ "master_id": master }))
        .await;

    app.kill_hard();
    app.restart().await;
    let op = app.login("operator").await;
    let dispatcher = app.login("dispatcher").await;
    let urban = app.login("urban_handler").await;
    assert_eq!(
        app.case(&op, &master).await["duplicates"],
        json!([duplicate])
    );
    assert_eq!(
        app.case(&op, &duplicate).await["merged_into"],
        master.as_str()
    );

    app.ok(
        &dispatcher,
        &master,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.urban" }),
    )
    .await;
    app.ok(&urban, &master, "receive", &json!({})).await;
    app.ok(
        &urban,
        &master,
        "complete",
        &json!({ "reply": "已修复路面" }),
    )
    .await;
    app.ok(
        &op,
        &master,
        "callback",
        &json!({ "satisfaction": "satisfied", "resolved": true }),
    )
    .await;
    app.ok(&op, &master, "archive", &json!({})).await;
    assert_eq!(app.case(&op, &duplicate).await["status"], "archived");
}
