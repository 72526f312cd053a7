//! Drafts (rule 1): saved, replaced (`PUT /api/v1/cases/{id}/draft`) by their operator only,
//! then submitted (`POST /api/v1/cases/{id}/submit`) and read-only.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, intake, timeline_types};

/// The intake of `intake(title)` without `submit` (the draft body has no such field).
fn draft_body(title: &str) -> Value {
    intake(title)
}

#[tokio::test]
async fn a_draft_is_saved_edited_by_its_operator_and_submitted() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let op2 = app.login("operator2").await;
    let dispatcher = app.login("dispatcher").await;
    let housing = app.login("housing_handler").await;

    let created = app
        .create(
            &op,
            &json!({ "title": "草稿：夜间施工噪音", "submit": false }),
        )
        .await;
    assert_eq!(created.version, 1);
    let id = created.id;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "draft");
    assert_eq!(case["status_label"], "草稿");
    assert!(case["accepted_at"].is_null());
    assert_eq!(timeline_types(&case), ["draft_saved"]);
    // Only the centre keeps drafts.
    assert_eq!(app.get_case(&housing, &id).await.status(), 404);

    // A draft is no case to handle yet, and is incomplete.
    app.refused(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
        422,
        "not_created",
    )
    .await;
    app.refused(&op, &id, "submit", &json!({}), 422, "missing_field")
        .await;
    // What a draft has must be well formed.
    let mut bad = draft_body("草稿：夜间施工噪音");
    bad["caller_phone"] = json!("12345");
    app.refused_request(
        &id,
        app.draft_request(&op, &id).json(&bad),
        422,
        "invalid_phone",
    )
    .await;
    // `submit` belongs to create, not to the draft body.
    let mut with_submit = draft_body("草稿：夜间施工噪音");
    with_submit["submit"] = json!(true);
    app.refused_request(
        &id,
        app.draft_request(&op, &id).json(&with_submit),
        400,
        "invalid_field",
    )
    .await;
    // Another operator's draft is not mine to edit or submit.
    app.refused_request(
        &id,
        app.draft_request(&op2, &id).json(&draft_body("别人的草稿")),
        403,
        "not_draft_owner",
    )
    .await;
    app.refused(&op2, &id, "submit", &json!({}), 403, "not_draft_owner")
        .await;

    let updated = app
        .put_draft(&op, &id, &draft_body("夜间施工噪音扰民"))
        .await;
    assert_eq!(updated.version, 2);
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "draft");
    assert_eq!(case["title"], "夜间施工噪音扰民");
    assert_eq!(case["caller_phone"], "13912345678");

    app.ok(&op, &id, "submit", &json!({})).await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "accepted");
    assert_eq!(case["status_label"], "已受理");
    assert!(case["accepted_at"].is_string());
    assert_eq!(case["urgency"], "normal");
    assert_eq!(
        timeline_types(&case),
        ["draft_saved", "draft_saved", "accepted"]
    );

    // Submitted: read-only to the post that submitted it.
    app.refused_request(
        &id,
        app.draft_request(&op, &id).json(&draft_body("改标题")),
        422,
        "not_a_draft",
    )
    .await;
    app.refused(&op, &id, "submit", &json!({}), 422, "not_a_draft")
        .await;
    app.ok(
        &dispatcher,
        &id,
        "transfer",
        &json!({ "lead_unit_id": "city.bureau.housing" }),
    )
    .await;
}

#[tokio::test]
async fn a_shift_leader_completes_and_submits_an_operators_draft() {
    let app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let shift_leader = app.login("shift_leader").await;
    let id = app
        .create(&op, &json!({ "title": "交接班草稿", "submit": false }))
        .await
        .id;
    app.put_draft(&shift_leader, &id, &draft_body("值班长补全的工单"))
        .await;
    app.ok(&shift_leader, &id, "submit", &json!({})).await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["status"], "accepted");
    assert_eq!(case["created_by"], "operator");
    // A handler cannot create cases at all.
    let housing = app.login("housing_handler").await;
    assert_problem(
        app.create_case(&housing, &intake("处室自建工单")).await,
        403,
        "role_not_allowed",
    )
    .await;
}
