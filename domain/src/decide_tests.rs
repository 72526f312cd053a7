//! One test per rule and per refusal, then property tests over random command sequences.

use proptest::prelude::*;

use super::*;
use crate::calendar::WorkingTime;
use crate::case::{AssignmentState, Intake, Overdue, Status};
use crate::case::{CaseId, evolve};
use crate::command::{ArticleFacts, CitedArticle};
use crate::event::DeadlineKind;
use crate::kinds::{Category, Channel, Kind, Urgency};
use crate::testing::{Scenario, actor, leader, local, world};

fn op() -> Actor {
    actor("operator", "city", Role::Operator)
}
fn op2() -> Actor {
    actor("operator2", "city", Role::Operator)
}
fn shift_leader() -> Actor {
    actor("shift_leader", "city", Role::ShiftLeader)
}
fn disp() -> Actor {
    actor("dispatcher", "city", Role::Dispatcher)
}
fn housing() -> Actor {
    actor("housing_handler", "city.bureau.housing", Role::Handler)
}
fn urban() -> Actor {
    actor("urban_handler", "city.bureau.urban", Role::Handler)
}
fn da() -> Actor {
    actor("a_dispatcher", "d.a", Role::Dispatcher)
}
fn db() -> Actor {
    actor("b_dispatcher", "d.b", Role::Dispatcher)
}
fn s01() -> Actor {
    actor("a_s01_handler", "d.a.s01", Role::Handler)
}
fn c01() -> Actor {
    actor("a_s01_c01_handler", "d.a.s01.c01", Role::Handler)
}
fn sup() -> Actor {
    actor("supervisor", "city.efficiency", Role::Supervisor)
}

fn u(id: &str) -> UnitId {
    UnitId::new(id)
}

/// The refusal of `unit` for a step that `decider` takes.
fn decided_by(unit: &str, decider: &str) -> CaseError {
    CaseError::OtherUnitDecides {
        unit: u(unit),
        decider: u(decider),
        decider_name: world()
            .org
            .get(&u(decider))
            .map(|x| x.name.clone())
            .expect("the decider is in the tree"),
    }
}

fn intake(kind: Kind) -> Intake {
    Intake {
        caller_name: "张三".into(),
        caller_phone: "13812345678".into(),
        channel: Some(Channel::Phone),
        category: Some(Category::Complaint),
        kind: Some(kind),
        urgency: Some(Urgency::Normal),
        title: "楼上装修噪音扰民".into(),
        content: "晚上十点后仍在装修，影响休息。".into(),
        address: "城关区某小区3号楼".into(),
        location_unit_id: Some(u("d.a.s01.c01")),
        confidential: false,
    }
}

fn case_id() -> CaseId {
    CaseId::parse("2025030300001").expect("valid id")
}

/// Monday 3 March 2025, 10:00 in Shanghai: an ordinary working morning.
fn monday() -> chrono::DateTime<chrono::Utc> {
    local(2025, 3, 3, 10, 0)
}

fn accepted(kind: Kind) -> Scenario {
    let mut s = Scenario::new(monday());
    s.ok(
        &op(),
        Command::Create {
            case_id: case_id(),
            intake: intake(kind),
            submit: true,
        },
    );
    s
}

fn transfer(lead: &str, co: &[&str]) -> Command {
    Command::Transfer {
        lead_unit_id: u(lead),
        co_unit_ids: co.iter().map(|c| u(c)).collect(),
        note: "请依职责办理".into(),
    }
}

fn complete() -> Command {
    Command::Complete {
        reply: "已协调物业处理，施工时间已调整。".into(),
    }
}

fn callback(satisfaction: Satisfaction) -> Command {
    Command::CallBack {
        satisfaction,
        resolved: satisfaction != Satisfaction::Unsatisfied,
        note: String::new(),
    }
}

/// Accepted, transferred to the housing bureau and received.
fn at_housing() -> Scenario {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("city.bureau.housing", &[]));
    s.ok(&housing(), Command::Receive);
    s
}

fn completed_at_housing() -> Scenario {
    let mut s = at_housing();
    s.ok(&housing(), complete());
    s
}

// ---- 受理: drafts and submission (rule 1) ----

#[test]
fn a_draft_may_be_incomplete_and_is_submitted_later() {
    let mut s = Scenario::new(monday());
    let draft = Intake {
        caller_phone: "13812345678".into(),
        title: "噪音".into(),
        ..Intake::default()
    };
    s.ok(
        &op(),
        Command::Create {
            case_id: case_id(),
            intake: draft,
            submit: false,
        },
    );
    assert_eq!(s.case.status(), Status::Draft);
    s.refused(&op(), Command::Submit, CaseError::Missing("category"));
    s.ok(
        &op(),
        Command::UpdateDraft {
            intake: intake(Kind::Escalated),
        },
    );
    let events = s.ok(&op(), Command::Submit);
    assert!(matches!(events[0], EventBody::Accepted { .. }));
    assert_eq!(s.case.status(), Status::Accepted);
    assert_eq!(s.case.accepting_unit_id(), Some(&u("city")));
}

#[test]
fn a_submitted_case_is_read_only_to_the_post_that_submitted_it() {
    let mut s = accepted(Kind::Escalated);
    s.refused(
        &op(),
        Command::UpdateDraft {
            intake: intake(Kind::Promised),
        },
        CaseError::NotADraft,
    );
    s.refused(&op(), Command::Submit, CaseError::NotADraft);
}

#[test]
fn only_the_drafting_operator_or_a_shift_leader_edits_a_draft() {
    let mut s = Scenario::new(monday());
    s.ok(
        &op(),
        Command::Create {
            case_id: case_id(),
            intake: intake(Kind::Escalated),
            submit: false,
        },
    );
    s.refused(
        &op2(),
        Command::UpdateDraft {
            intake: intake(Kind::Promised),
        },
        CaseError::NotDraftOwner,
    );
    s.ok(
        &shift_leader(),
        Command::UpdateDraft {
            intake: intake(Kind::Promised),
        },
    );
}

#[test]
fn an_invalid_phone_number_is_refused() {
    let s = Scenario::new(monday());
    let mut bad = intake(Kind::Escalated);
    bad.caller_phone = "12345".into();
    let err = s
        .try_cmd(
            &op(),
            &Command::Create {
                case_id: case_id(),
                intake: bad,
                submit: true,
            },
        )
        .unwrap_err();
    assert_eq!(err, CaseError::InvalidPhone("12345".into()));
}

#[test]
fn a_missing_phone_title_or_content_blocks_submission() {
    for (field, change) in [
        (
            "caller_phone",
            (|i: &mut Intake| i.caller_phone.clear()) as fn(&mut Intake),
        ),
        ("title", |i: &mut Intake| i.title = "  ".into()),
        ("content", |i: &mut Intake| i.content.clear()),
        ("kind", |i: &mut Intake| i.kind = None),
    ] {
        let s = Scenario::new(monday());
        let mut bad = intake(Kind::Escalated);
        change(&mut bad);
        let err = s
            .try_cmd(
                &op(),
                &Command::Create {
                    case_id: case_id(),
                    intake: bad,
                    submit: true,
                },
            )
            .unwrap_err();
        assert_eq!(err, CaseError::Missing(field));
    }
}

#[test]
fn control_characters_and_bidi_overrides_are_refused_in_every_text_field() {
    let s = Scenario::new(monday());
    let create = |i: Intake| Command::Create {
        case_id: case_id(),
        intake: i,
        submit: true,
    };
    let forbidden =
        |field: &'static str, code_point: &str, at: usize| CaseError::ForbiddenCharacter {
            field,
            code_point: code_point.into(),
            at,
        };
    let mut bidi = intake(Kind::Escalated);
    bidi.address = "城关区\u{202e}号8路掖张".into();
    assert_eq!(
        s.try_cmd(&op(), &create(bidi)).unwrap_err(),
        forbidden("address", "U+202E", 3)
    );
    let mut nul = intake(Kind::Escalated);
    nul.caller_name = "张\u{0}三".into();
    assert_eq!(
        s.try_cmd(&op(), &create(nul)).unwrap_err(),
        forbidden("caller_name", "U+0000", 1)
    );
    // A title is one line; the content may have several, but no escape sequences.
    let mut two_lines = intake(Kind::Escalated);
    two_lines.title = "第一行\n第二行".into();
    assert_eq!(
        s.try_cmd(&op(), &create(two_lines)).unwrap_err(),
        forbidden("title", "U+000A", 3)
    );
    let mut escape = intake(Kind::Escalated);
    escape.content = "第一行\n\u{1b}[31m第二行".into();
    assert_eq!(
        s.try_cmd(&op(), &create(escape)).unwrap_err(),
        forbidden("content", "U+001B", 4)
    );
    let mut lines = intake(Kind::Escalated);
    lines.content = "第一行\r\n\t第二行".into();
    assert!(s.try_cmd(&op(), &create(lines)).is_ok());
    // Replies, notes and opinions too.
    let mut s = accepted(Kind::Immediate);
    s.refused(
        &op(),
        Command::Answer {
            reply: "请拨打\u{2066}12345\u{2069}".into(),
            source: AnswerSource::KnowledgeGap {
                question: "问题".into(),
            },
        },
        forbidden("reply", "U+2066", 3),
    );
}

#[test]
fn an_overlong_title_and_an_unknown_location_are_refused() {
    let s = Scenario::new(monday());
    let mut bad = intake(Kind::Escalated);
    bad.title = "长".repeat(201);
    let create = |i: Intake| Command::Create {
        case_id: case_id(),
        intake: i,
        submit: true,
    };
    assert_eq!(
        s.try_cmd(&op(), &create(bad)).unwrap_err(),
        CaseError::TooLong {
            field: "title",
            max: 200
        }
    );
    let mut nowhere = intake(Kind::Escalated);
    nowhere.location_unit_id = Some(u("d.z"));
    assert_eq!(
        s.try_cmd(&op(), &create(nowhere)).unwrap_err(),
        CaseError::UnknownUnit(u("d.z"))
    );
}

#[test]
fn only_centre_operators_accept_cases() {
    let s = Scenario::new(monday());
    let create = Command::Create {
        case_id: case_id(),
        intake: intake(Kind::Escalated),
        submit: true,
    };
    assert!(matches!(
        s.try_cmd(&housing(), &create).unwrap_err(),
        CaseError::RoleNotAllowed(_)
    ));
    let street_operator = actor("x", "d.a.s01", Role::Operator);
    assert_eq!(
        s.try_cmd(&street_operator, &create).unwrap_err(),
        CaseError::NotACentre
    );
}

#[test]
fn a_case_cannot_be_created_twice() {
    let mut s = accepted(Kind::Escalated);
    s.refused(
        &op(),
        Command::Create {
            case_id: case_id(),
            intake: intake(Kind::Escalated),
            submit: true,
        },
        CaseError::AlreadyExists,
    );
}

#[test]
fn commands_on_a_case_that_does_not_exist_are_refused() {
    let mut s = Scenario::new(monday());
    s.refused(&housing(), Command::Receive, CaseError::NotCreated);
    s.refused(&op(), Command::Submit, CaseError::NotCreated);
}

// ---- 即办 (rule 2) ----

#[test]
fn an_immediate_case_is_answered_on_the_call_citing_articles() {
    let mut s = accepted(Kind::Immediate);
    s.refused(
        &op(),
        Command::Answer {
            reply: "可到社保大厅补办。".into(),
            source: cites(&[]),
        },
        CaseError::NoArticleCited,
    );
    s.ok(
        &op(),
        Command::Answer {
            reply: "可到社保大厅补办。".into(),
            source: cites(&["kb-001", "kb-001"]),
        },
    );
    assert_eq!(s.case.status(), Status::Completed);
    assert_eq!(s.case.kb_article_ids(), ["kb-001".to_owned()]);
    assert_eq!(s.case.status_label(monday()), "即办办结");
}

/// Articles as the knowledge base has them: published and valid, unless the id says
/// otherwise (`unknown…` does not exist, `draft…` is not published, `expired…` is past its
/// validity, `future…` not yet valid).
fn cites(ids: &[&str]) -> AnswerSource {
    let at = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    };
    AnswerSource::Articles(
        ids.iter()
            .map(|id| CitedArticle {
                id: (*id).to_owned(),
                facts: (!id.starts_with("unknown")).then(|| ArticleFacts {
                    published: !id.starts_with("draft"),
                    valid_from: id.starts_with("future").then(|| at("2030-01-01T00:00:00Z")),
                    valid_until: id
                        .starts_with("expired")
                        .then(|| at("2020-01-01T00:00:00Z")),
                }),
            })
            .collect(),
    )
}

#[test]
fn an_on_call_answer_cites_only_articles_published_and_valid_now() {
    let mut s = accepted(Kind::Immediate);
    let answer = |ids: &[&str]| Command::Answer {
        reply: "可到社保大厅补办。".into(),
        source: cites(ids),
    };
    s.refused(
        &op(),
        answer(&["kb-001", "unknown-9"]),
        CaseError::UnknownArticle("unknown-9".into()),
    );
    s.refused(
        &op(),
        answer(&["draft-1"]),
        CaseError::ArticleNotInForce("draft-1".into()),
    );
    s.refused(
        &op(),
        answer(&["expired-1"]),
        CaseError::ArticleNotInForce("expired-1".into()),
    );
    s.refused(
        &op(),
        answer(&["future-1"]),
        CaseError::ArticleNotInForce("future-1".into()),
    );
    s.refused(&op(), answer(&[" "]), CaseError::NoArticleCited);
    assert_eq!(s.case.status(), Status::Accepted, "nothing was answered");
    s.ok(&op(), answer(&["kb-001"]));
}

#[test]
fn an_on_call_answer_may_record_a_knowledge_gap_instead_of_citing() {
    let mut s = accepted(Kind::Immediate);
    let gap = |question: &str| Command::Answer {
        reply: "已记录，将由相关部门答复。".into(),
        source: AnswerSource::KnowledgeGap {
            question: question.into(),
        },
    };
    s.refused(
        &op(),
        gap("  "),
        CaseError::Missing("knowledge_gap.question"),
    );
    s.refused(
        &op(),
        gap(&"问".repeat(501)),
        CaseError::TooLong {
            field: "knowledge_gap.question",
            max: 500,
        },
    );
    let events = s.ok(&op(), gap(" 新生儿医保怎么在网上办 "));
    assert!(matches!(
        &events[0],
        EventBody::AnsweredOnCall { kb_article_ids, knowledge_gap: Some(q), .. }
            if kb_article_ids.is_empty() && q == "新生儿医保怎么在网上办"
    ));
    assert_eq!(s.case.status(), Status::Completed);
    assert_eq!(s.case.knowledge_gap(), Some("新生儿医保怎么在网上办"));
}

#[test]
fn an_immediate_case_is_never_transferred() {
    let mut s = accepted(Kind::Immediate);
    s.refused(
        &disp(),
        transfer("city.bureau.housing", &[]),
        CaseError::ImmediateNotTransferable,
    );
}

#[test]
fn only_an_immediate_case_is_answered_on_the_call() {
    let mut s = accepted(Kind::Escalated);
    s.refused(
        &op(),
        Command::Answer {
            reply: "答复".into(),
            source: cites(&["kb-1"]),
        },
        CaseError::NotImmediate,
    );
}

// ---- 转办 (rules 3 and 4) ----

#[test]
fn a_transfer_records_receive_and_handling_deadlines_from_the_policy() {
    let mut s = accepted(Kind::Escalated);
    let events = s.ok(&disp(), transfer("city.bureau.housing", &[]));
    let EventBody::Transferred { assignments, .. } = &events[0] else {
        panic!("expected a transfer: {events:?}");
    };
    let w = world();
    let limits = w
        .policy
        .limits(Category::Complaint, Kind::Escalated, Urgency::Normal);
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].role, HandlingRole::Lead);
    assert_eq!(
        assignments[0].receive_by,
        w.calendar.add(monday(), limits.receive)
    );
    assert_eq!(
        assignments[0].complete_by,
        w.calendar.add(monday(), limits.handle)
    );
    assert_eq!(limits.handle, WorkingTime::Days(5));
    // Monday 10:00 + 5 working days is the next Monday 10:00.
    assert_eq!(assignments[0].complete_by.at, local(2025, 3, 10, 10, 0));
    assert_eq!(s.case.status(), Status::Transferred);
}

#[test]
fn the_city_centre_transfers_to_bureaus_and_district_centres_only() {
    let mut s = accepted(Kind::Escalated);
    s.refused(
        &disp(),
        transfer("d.a.s01", &[]),
        CaseError::TargetNotAllowed(u("d.a.s01")),
    );
    s.refused(
        &disp(),
        transfer("city.efficiency", &[]),
        CaseError::TargetNotAllowed(u("city.efficiency")),
    );
    s.refused(
        &disp(),
        transfer("d.zz", &[]),
        CaseError::UnknownUnit(u("d.zz")),
    );
    s.refused(
        &disp(),
        transfer("d.a", &["d.a"]),
        CaseError::DuplicateTarget(u("d.a")),
    );
    s.ok(&disp(), transfer("d.a", &[]));
}

#[test]
fn a_transfer_needs_the_citizens_location() {
    let mut s = Scenario::new(monday());
    let mut no_place = intake(Kind::Escalated);
    no_place.location_unit_id = None;
    s.ok(
        &op(),
        Command::Create {
            case_id: case_id(),
            intake: no_place,
            submit: true,
        },
    );
    s.refused(
        &disp(),
        transfer("d.a", &[]),
        CaseError::Missing("location_unit_id"),
    );
}

#[test]
fn operators_do_not_transfer() {
    let mut s = accepted(Kind::Escalated);
    assert!(matches!(
        s.try_cmd(&op(), &transfer("d.a", &[])).unwrap_err(),
        CaseError::RoleNotAllowed(_)
    ));
    s.refused(
        &housing(),
        transfer("d.a", &[]),
        CaseError::UnitNotAllowed(u("city.bureau.housing")),
    );
}

#[test]
fn a_district_centre_transfers_down_its_own_subtree_only_after_receiving() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    s.refused(&da(), transfer("d.a.s01", &[]), CaseError::NotReceived);
    s.ok(&da(), Command::Receive);
    s.refused(
        &da(),
        transfer("d.b.s01", &[]),
        CaseError::TargetNotAllowed(u("d.b.s01")),
    );
    s.refused(
        &da(),
        transfer("city.bureau.housing", &[]),
        CaseError::TargetNotAllowed(u("city.bureau.housing")),
    );
    s.refused(
        &db(),
        transfer("d.b.s01", &[]),
        CaseError::UnitNotAllowed(u("d.b")),
    );
    s.ok(&da(), transfer("d.a.s01", &["d.a.dept.urban"]));
    assert_eq!(s.case.status(), Status::Transferred);
    let holders: Vec<_> = s
        .case
        .holders()
        .map(|a| a.unit_id.as_str().to_owned())
        .collect();
    assert_eq!(holders, ["d.a.s01", "d.a.dept.urban"]);
    // The onward transfer keeps the time the case already runs on.
    assert_eq!(
        s.case.assignments()[1].complete_by,
        s.case.assignments()[0].complete_by
    );
    // A street may pass it on to a community below it.
    s.ok(&s01(), Command::Receive);
    s.ok(&s01(), transfer("d.a.s01.c01", &[]));
    s.ok(&c01(), Command::Receive);
    assert_eq!(
        s.case.lead_holder().map(|a| a.unit_id.as_str()),
        Some("d.a.s01.c01")
    );
}

#[test]
fn a_unit_that_transferred_on_cannot_transfer_again_until_it_recalls() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    s.refused(
        &disp(),
        transfer("city.bureau.housing", &[]),
        CaseError::AlreadyTransferred,
    );
}

#[test]
fn a_bureau_has_no_subtree_to_transfer_to() {
    let mut s = at_housing();
    s.refused(
        &housing(),
        transfer("city.bureau.urban", &[]),
        CaseError::TargetNotAllowed(u("city.bureau.urban")),
    );
}

// ---- 联办件 ----

#[test]
fn a_joint_case_has_one_lead_that_completes_only_after_the_co_handlers_reply() {
    let mut s = accepted(Kind::Escalated);
    s.ok(
        &disp(),
        transfer("city.bureau.housing", &["city.bureau.urban", "d.a"]),
    );
    let roles: Vec<_> = s.case.assignments().iter().map(|a| a.role).collect();
    assert_eq!(
        roles,
        [HandlingRole::Lead, HandlingRole::Co, HandlingRole::Co]
    );
    s.ok(&housing(), Command::Receive);
    s.ok(&urban(), Command::Receive);
    s.refused(&housing(), complete(), CaseError::CoHandlersPending);
    s.ok(&urban(), complete());
    assert_eq!(s.case.status(), Status::InProgress);
    s.refused(&housing(), complete(), CaseError::CoHandlersPending);
    s.ok(&da(), Command::Receive);
    // A co-handling district passes its part down; its street's units are co-handlers too.
    s.ok(&da(), transfer("d.a.s01", &[]));
    assert_eq!(s.case.assignments()[3].role, HandlingRole::Co);
    s.ok(&s01(), Command::Receive);
    s.ok(&s01(), complete());
    s.ok(&housing(), complete());
    assert_eq!(s.case.status(), Status::Completed);
    assert_eq!(s.case.holders().count(), 0);
}

// ---- 追回 (rule 5) ----

#[test]
fn only_the_transferring_unit_recalls() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    s.refused(
        &da(),
        Command::Recall { reason: "x".into() },
        decided_by("d.a", "city"),
    );
    s.ok(
        &disp(),
        Command::Recall {
            reason: "派错单位".into(),
        },
    );
    assert_eq!(s.case.status(), Status::Accepted);
    assert_eq!(s.case.assignments()[0].state, AssignmentState::Recalled);
    // The centre holds it again and may transfer anew.
    s.ok(&disp(), transfer("city.bureau.housing", &[]));
}

#[test]
fn a_received_case_may_still_be_recalled_before_handling() {
    let mut s = at_housing();
    s.ok(
        &disp(),
        Command::Recall {
            reason: "改派".into(),
        },
    );
    s.refused(
        &housing(),
        Command::RecordProgress { note: "x".into() },
        CaseError::UnitNotAllowed(u("city.bureau.housing")),
    );
}

#[test]
fn recall_is_refused_once_the_next_node_handled_or_transferred_on() {
    let mut s = at_housing();
    s.ok(
        &housing(),
        Command::RecordProgress {
            note: "已联系物业".into(),
        },
    );
    s.refused(
        &disp(),
        Command::Recall {
            reason: "改派".into(),
        },
        CaseError::TooLateToRecall,
    );

    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    s.ok(&da(), Command::Receive);
    s.ok(&da(), transfer("d.a.s01", &[]));
    s.refused(
        &disp(),
        Command::Recall {
            reason: "改派".into(),
        },
        CaseError::TooLateToRecall,
    );
    // The district may still recall its own transfer to the street.
    s.ok(
        &da(),
        Command::Recall {
            reason: "改派".into(),
        },
    );
    s.ok(
        &disp(),
        Command::Recall {
            reason: "改派".into(),
        },
    );
}

#[test]
fn a_recall_needs_a_reason() {
    let mut s = at_housing();
    s.refused(
        &disp(),
        Command::Recall { reason: " ".into() },
        CaseError::Missing("reason"),
    );
}

// ---- 退回申请 (rules 5 and 10) ----

#[test]
fn a_receiver_asks_for_a_return_and_the_transferrer_recalls() {
    let mut s = at_housing();
    s.refused(
        &housing(),
        Command::RequestReturn {
            reason: String::new(),
        },
        CaseError::Missing("reason"),
    );
    s.ok(
        &housing(),
        Command::RequestReturn {
            reason: "不属于本单位职责".into(),
        },
    );
    s.refused(
        &housing(),
        Command::RequestReturn {
            reason: "again".into(),
        },
        CaseError::ReturnPending,
    );
    // The receiver still holds it: a return request returns nothing by itself.
    assert_eq!(
        s.case.lead_holder().map(|a| a.unit_id.as_str()),
        Some("city.bureau.housing")
    );
    s.refused(
        &da(),
        Command::DecideReturn {
            accept: true,
            note: String::new(),
        },
        decided_by("d.a", "city"),
    );
    let events = s.ok(
        &disp(),
        Command::DecideReturn {
            accept: true,
            note: "同意".into(),
        },
    );
    assert!(matches!(events[1], EventBody::Recalled { .. }));
    assert_eq!(s.case.status(), Status::Accepted);
}

#[test]
fn the_transferrer_may_overrule_a_return_request_with_reasons() {
    let mut s = at_housing();
    s.ok(
        &housing(),
        Command::RequestReturn {
            reason: "不属于本单位职责".into(),
        },
    );
    s.refused(
        &disp(),
        Command::DecideReturn {
            accept: false,
            note: String::new(),
        },
        CaseError::Missing("note"),
    );
    s.ok(
        &disp(),
        Command::DecideReturn {
            accept: false,
            note: "依据职责清单属住建部门".into(),
        },
    );
    assert_eq!(s.case.status(), Status::InProgress);
    assert!(s.case.assignments()[0].return_request.is_none());
}

#[test]
fn a_return_request_after_two_working_days_from_receipt_is_refused() {
    let mut s = at_housing();
    // Received Monday 10:00; the window closes Wednesday 10:00.
    s.advance_to(local(2025, 3, 5, 10, 0));
    assert!(
        s.try_cmd(&housing(), &Command::RequestReturn { reason: "x".into() })
            .is_ok()
    );
    s.advance_to(local(2025, 3, 5, 10, 1));
    s.refused(
        &housing(),
        Command::RequestReturn { reason: "x".into() },
        CaseError::ReturnWindowClosed,
    );
}

#[test]
fn a_unit_with_a_pending_return_request_cannot_transfer_on() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    s.ok(&da(), Command::Receive);
    s.ok(
        &da(),
        Command::RequestReturn {
            reason: "应由市级部门办理".into(),
        },
    );
    s.refused(&da(), transfer("d.a.s01", &[]), CaseError::ReturnPending);
}

// ---- 接收, 办理, 办结 ----

#[test]
fn receiving_twice_or_by_another_unit_is_refused() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("city.bureau.housing", &[]));
    s.refused(
        &urban(),
        Command::Receive,
        CaseError::UnitNotAllowed(u("city.bureau.urban")),
    );
    s.refused(
        &housing(),
        Command::RecordProgress { note: "x".into() },
        CaseError::NotReceived,
    );
    s.refused(&housing(), complete(), CaseError::NotReceived);
    s.ok(&housing(), Command::Receive);
    s.refused(&housing(), Command::Receive, CaseError::AlreadyReceived);
    assert_eq!(s.case.status(), Status::InProgress);
}

#[test]
fn a_completion_needs_a_reply_and_closes_handling() {
    let mut s = at_housing();
    s.refused(
        &housing(),
        Command::Complete { reply: "".into() },
        CaseError::Missing("reply"),
    );
    s.ok(&housing(), complete());
    assert_eq!(s.case.status(), Status::Completed);
    s.refused(
        &housing(),
        Command::RecordProgress { note: "x".into() },
        CaseError::NotOpen,
    );
}

// ---- 延期 ----

#[test]
fn an_approved_extension_moves_the_handling_deadline_by_working_days() {
    let mut s = at_housing();
    let before = s.case.assignments()[0].complete_by;
    s.refused(
        &housing(),
        Command::RequestExtension {
            working_days: 11,
            reason: "需现场勘查".into(),
        },
        CaseError::ExtensionTooLong(10),
    );
    s.refused(
        &housing(),
        Command::RequestExtension {
            working_days: 0,
            reason: "需现场勘查".into(),
        },
        CaseError::Missing("working_days"),
    );
    s.ok(
        &housing(),
        Command::RequestExtension {
            working_days: 3,
            reason: "需现场勘查".into(),
        },
    );
    s.refused(
        &housing(),
        Command::RequestExtension {
            working_days: 1,
            reason: "x".into(),
        },
        CaseError::ExtensionPending,
    );
    s.refused(
        &urban(),
        Command::DecideExtension {
            approve: true,
            note: String::new(),
        },
        decided_by("city.bureau.urban", "city"),
    );
    s.ok(
        &disp(),
        Command::DecideExtension {
            approve: true,
            note: "同意".into(),
        },
    );
    let after = s.case.assignments()[0].complete_by;
    assert_eq!(after, world().calendar.add_working_days(before.at, 3));
    assert_eq!(s.case.assignments()[0].extended_days, 3);
    // Extensions add up to the policy's limit at most.
    s.refused(
        &housing(),
        Command::RequestExtension {
            working_days: 8,
            reason: "x".into(),
        },
        CaseError::ExtensionTooLong(10),
    );
}

#[test]
fn a_refused_extension_keeps_the_deadline() {
    let mut s = at_housing();
    let before = s.case.assignments()[0].complete_by;
    s.ok(
        &housing(),
        Command::RequestExtension {
            working_days: 3,
            reason: "需现场勘查".into(),
        },
    );
    s.ok(
        &disp(),
        Command::DecideExtension {
            approve: false,
            note: "时限内可办结".into(),
        },
    );
    assert_eq!(s.case.assignments()[0].complete_by, before);
    assert!(s.case.assignments()[0].extension_request.is_none());
}

// ---- 回访, 重办, 申诉 (rule 13) ----

#[test]
fn a_call_back_needs_a_completed_case_and_centre_staff() {
    let mut s = at_housing();
    s.refused(
        &op(),
        callback(Satisfaction::Satisfied),
        CaseError::NotCompleted,
    );
    s.ok(&housing(), complete());
    assert!(matches!(
        s.try_cmd(&housing(), &callback(Satisfaction::Satisfied))
            .unwrap_err(),
        CaseError::RoleNotAllowed(_)
    ));
    s.refused(
        &actor("d", "d.a", Role::Dispatcher),
        callback(Satisfaction::Satisfied),
        decided_by("d.a", "city"),
    );
    s.ok(&op(), callback(Satisfaction::Satisfied));
    assert_eq!(s.case.status(), Status::CalledBack);
}

#[test]
fn an_unsatisfied_call_back_reopens_the_case_to_the_lead_with_the_redo_limit() {
    let mut s = completed_at_housing();
    s.ok(&op(), callback(Satisfaction::Unsatisfied));
    let events = s.ok(
        &shift_leader(),
        Command::Reopen {
            reason: "群众反映问题未解决".into(),
        },
    );
    let EventBody::Reopened { complete_by, .. } = &events[0] else {
        panic!("expected a reopen");
    };
    assert_eq!(
        *complete_by,
        world().calendar.add(monday(), world().policy.redo())
    );
    assert_eq!(s.case.status(), Status::InProgress);
    assert_eq!(s.case.n_reopened(), 1);
    s.ok(&housing(), complete());
    s.ok(&op(), callback(Satisfaction::Satisfied));
    s.refused(
        &op(),
        Command::Reopen { reason: "x".into() },
        CaseError::NotUnsatisfied,
    );
}

#[test]
fn a_satisfied_case_is_not_reopened() {
    let mut s = completed_at_housing();
    s.ok(&op(), callback(Satisfaction::BasicallySatisfied));
    s.refused(
        &op(),
        Command::Reopen { reason: "x".into() },
        CaseError::NotUnsatisfied,
    );
}

#[test]
fn the_handling_unit_appeals_an_unsatisfied_rating_and_the_centre_decides() {
    let mut s = completed_at_housing();
    s.refused(
        &housing(),
        Command::Appeal { reason: "x".into() },
        CaseError::NotUnsatisfied,
    );
    s.ok(&op(), callback(Satisfaction::Unsatisfied));
    s.refused(
        &urban(),
        Command::Appeal { reason: "x".into() },
        CaseError::UnitNotAllowed(u("city.bureau.urban")),
    );
    s.ok(
        &housing(),
        Command::Appeal {
            reason: "诉求超出政策范围，已充分解释".into(),
        },
    );
    s.refused(
        &housing(),
        Command::Appeal { reason: "x".into() },
        CaseError::AlreadyAppealed,
    );
    s.refused(&op(), Command::Archive, CaseError::NotArchivable);
    assert!(matches!(
        s.try_cmd(
            &op(),
            &Command::DecideAppeal {
                upheld: true,
                note: "x".into()
            }
        )
        .unwrap_err(),
        CaseError::RoleNotAllowed(_)
    ));
    s.ok(
        &shift_leader(),
        Command::DecideAppeal {
            upheld: true,
            note: "申诉成立".into(),
        },
    );
    assert_eq!(s.case.appeal().and_then(|a| a.upheld), Some(true));
    s.refused(
        &shift_leader(),
        Command::DecideAppeal {
            upheld: false,
            note: "x".into(),
        },
        CaseError::NoAppeal,
    );
    s.ok(&op(), Command::Archive);
}

// ---- 督办, 批示 (rules 6 and 7) ----

#[test]
fn supervision_and_annotation_never_change_the_flow() {
    let mut s = at_housing();
    let status = s.case.status();
    let holders: Vec<_> = s.case.holders().cloned().collect();
    let events = s.ok(
        &sup(),
        Command::Supervise {
            opinion: "请加快办理".into(),
        },
    );
    assert_eq!(
        events[0],
        EventBody::Supervised {
            opinion: "请加快办理".into(),
            unit_ids: vec![u("city.bureau.housing")],
        }
    );
    s.ok(
        &leader("city_leader", "city", &["city"]),
        Command::Annotate {
            text: "请尽快解决".into(),
        },
    );
    assert_eq!(s.case.status(), status);
    assert_eq!(s.case.holders().cloned().collect::<Vec<_>>(), holders);
}

#[test]
fn only_the_efficiency_office_supervises_and_not_drafts() {
    let s = at_housing();
    assert!(matches!(
        s.try_cmd(
            &op(),
            &Command::Supervise {
                opinion: "x".into()
            }
        )
        .unwrap_err(),
        CaseError::RoleNotAllowed(_)
    ));
    let mut draft = Scenario::new(monday());
    draft.ok(
        &op(),
        Command::Create {
            case_id: case_id(),
            intake: intake(Kind::Escalated),
            submit: false,
        },
    );
    draft.refused(
        &sup(),
        Command::Supervise {
            opinion: "x".into(),
        },
        CaseError::NotCreated,
    );
}

#[test]
fn a_leader_annotates_only_cases_transferred_to_units_they_oversee() {
    let mut s = accepted(Kind::Escalated);
    let city_leader = leader("city_leader", "city", &["city"]);
    // Not yet transferred to anyone.
    s.refused(
        &city_leader,
        Command::Annotate { text: "x".into() },
        CaseError::NotOverseen,
    );
    s.ok(&disp(), transfer("d.a", &[]));
    s.refused(
        &leader("b_leader", "d.b", &["d.b"]),
        Command::Annotate { text: "x".into() },
        CaseError::NotOverseen,
    );
    s.ok(
        &leader("a_leader", "d.a", &["d.a"]),
        Command::Annotate {
            text: "请街道配合".into(),
        },
    );
    s.ok(
        &city_leader,
        Command::Annotate {
            text: "关注".into(),
        },
    );
    // Street leaders do not annotate (rule 6: city and district leaders only).
    s.refused(
        &leader("s_leader", "d.a.s01", &["d.a.s01"]),
        Command::Annotate { text: "x".into() },
        CaseError::UnitNotAllowed(u("d.a.s01")),
    );
    s.refused(
        &leader("a_leader", "d.a", &["d.a"]),
        Command::Annotate { text: " ".into() },
        CaseError::Missing("text"),
    );
}

// ---- 归档 ----

#[test]
fn an_archived_case_accepts_only_annotations_and_supervision() {
    let mut s = completed_at_housing();
    s.refused(&op(), Command::Archive, CaseError::NotArchivable);
    s.ok(&op(), callback(Satisfaction::Satisfied));
    s.ok(&op(), Command::Archive);
    assert_eq!(s.case.status(), Status::Archived);
    s.refused(&op(), Command::Archive, CaseError::Archived);
    s.refused(
        &op(),
        callback(Satisfaction::Satisfied),
        CaseError::Archived,
    );
    s.refused(
        &housing(),
        Command::RecordProgress { note: "x".into() },
        CaseError::Archived,
    );
    s.refused(
        &disp(),
        Command::Recall { reason: "x".into() },
        CaseError::Archived,
    );
    s.ok(
        &sup(),
        Command::Supervise {
            opinion: "复核".into(),
        },
    );
    s.ok(
        &leader("l", "city", &["city"]),
        Command::Annotate { text: "好".into() },
    );
}

#[test]
fn an_immediate_case_is_archived_without_a_call_back() {
    let mut s = accepted(Kind::Immediate);
    s.ok(
        &op(),
        Command::Answer {
            reply: "答复".into(),
            source: cites(&["kb-1"]),
        },
    );
    s.ok(&op(), Command::Archive);
}

// ---- 并单 (rule 11) ----

#[test]
fn a_duplicate_is_merged_into_its_master_and_closes_with_it() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    let master = CaseId::parse("2025030300002").expect("valid");
    let open_master = MasterInfo {
        id: master.clone(),
        stage: Stage::Open,
        merged: false,
    };
    s.refused(
        &op(),
        Command::Merge {
            master: MasterInfo {
                id: case_id(),
                ..open_master.clone()
            },
        },
        CaseError::MergeIntoSelf,
    );
    s.refused(
        &op(),
        Command::Merge {
            master: MasterInfo {
                stage: Stage::Archived,
                ..open_master.clone()
            },
        },
        CaseError::InvalidMaster(master.to_string()),
    );
    s.refused(
        &op(),
        Command::Merge {
            master: MasterInfo {
                merged: true,
                ..open_master.clone()
            },
        },
        CaseError::InvalidMaster(master.to_string()),
    );
    s.ok(
        &op(),
        Command::Merge {
            master: open_master,
        },
    );
    assert_eq!(s.case.merged_into(), Some(&master));
    assert_eq!(s.case.holders().count(), 0);
    assert_eq!(s.case.status_label(monday()), "已并单");
    s.refused(&da(), Command::Receive, CaseError::Merged);
    s.refused(
        &op(),
        Command::ArchiveWithMaster {
            master_id: case_id(),
        },
        CaseError::InvalidMaster(case_id().to_string()),
    );
    s.ok(&op(), Command::ArchiveWithMaster { master_id: master });
    assert_eq!(s.case.status(), Status::Archived);
}

// ---- status and overdue (rule 8) ----

#[test]
fn overdue_states_follow_the_recorded_deadlines() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("city.bureau.housing", &[]));
    let a = s.case.assignments()[0].clone();
    assert_eq!(s.case.status_label(monday()), "已转办（未接收）");
    let late = a.receive_by.at + chrono::Duration::minutes(1);
    assert_eq!(s.case.overdue_kind(late), Some(Overdue::NotReceived));
    assert_eq!(s.case.status_label(late), "逾期未接收");
    s.ok(&housing(), Command::Receive);
    assert_eq!(s.case.status_label(late), "正在办理（已接收）");
    let very_late = a.complete_by.at + chrono::Duration::minutes(1);
    assert_eq!(s.case.status_label(very_late), "逾期正在办理");
    s.advance_to(very_late);
    s.ok(&housing(), complete());
    assert_eq!(s.case.status_label(very_late), "逾期办结");
    assert!(s.case.overdue(very_late));
}

// ---- properties ----

fn actors() -> Vec<Actor> {
    vec![
        op(),
        shift_leader(),
        disp(),
        housing(),
        urban(),
        da(),
        s01(),
        c01(),
        sup(),
        leader("city_leader", "city", &["city"]),
    ]
}

fn commands() -> Vec<Command> {
    let master = MasterInfo {
        id: CaseId::parse("M1").expect("valid"),
        stage: Stage::Open,
        merged: false,
    };
    vec![
        transfer("city.bureau.housing", &[]),
        transfer("d.a", &["city.bureau.urban"]),
        transfer("city.bureau.urban", &["city.bureau.housing"]),
        transfer("d.a.s01", &[]),
        transfer("d.a.s01.c01", &[]),
        transfer("d.a.s01", &["d.a.dept.urban"]),
        Command::Recall {
            reason: "改派".into(),
        },
        Command::RequestReturn {
            reason: "非本单位职责".into(),
        },
        Command::DecideReturn {
            accept: true,
            note: "同意".into(),
        },
        Command::DecideReturn {
            accept: false,
            note: "驳回".into(),
        },
        Command::Receive,
        Command::Receive,
        Command::RecordProgress {
            note: "办理中".into(),
        },
        complete(),
        complete(),
        Command::RequestExtension {
            working_days: 2,
            reason: "需勘查".into(),
        },
        Command::DecideExtension {
            approve: true,
            note: "同意".into(),
        },
        callback(Satisfaction::Unsatisfied),
        callback(Satisfaction::Satisfied),
        Command::Reopen {
            reason: "未解决".into(),
        },
        Command::Supervise {
            opinion: "加快".into(),
        },
        Command::Annotate {
            text: "关注".into(),
        },
        Command::Archive,
        Command::Appeal {
            reason: "不合理".into(),
        },
        Command::DecideAppeal {
            upheld: true,
            note: "成立".into(),
        },
        Command::Merge { master },
        Command::Answer {
            reply: "答复".into(),
            source: cites(&["kb-1"]),
        },
        Command::WarnDeadline {
            assignment_id: 1,
            deadline: DeadlineKind::Complete,
            within: WorkingTime::Days(10),
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_sequence_of_commands_breaks_the_invariants(
        kind in prop_oneof![Just(Kind::Escalated), Just(Kind::Immediate), Just(Kind::Promised)],
        steps in proptest::collection::vec((0usize..10, 0usize..28, 0i64..3000), 1..60),
    ) {
        let actors = actors();
        let commands = commands();
        let mut s = accepted(kind);
        for (a, c, minutes) in steps {
            s.now += chrono::Duration::minutes(minutes);
            let archived = s.case.stage() == Stage::Archived;
            let before = s.case.clone();
            match s.try_cmd(&actors[a], &commands[c]) {
                Ok(events) => {
                    if archived {
                        prop_assert!(matches!(commands[c], Command::Annotate { .. } | Command::Supervise { .. }),
                            "archived case accepted {}", commands[c].name());
                    }
                    for e in &events {
                        s.case = evolve(std::mem::take(&mut s.case), e);
                    }
                    s.history.extend(events);
                    if matches!(commands[c], Command::Annotate { .. } | Command::Supervise { .. }) {
                        prop_assert_eq!(s.case.status(), before.status());
                        prop_assert_eq!(s.case.assignments(), before.assignments());
                    }
                    // A deadline warning never changes the flow either.
                    if matches!(commands[c], Command::WarnDeadline { .. }) {
                        prop_assert_eq!(s.case.status(), before.status());
                        let flow = |c: &Case| c.assignments().iter().map(|a| (a.state, a.receive_by, a.complete_by)).collect::<Vec<_>>();
                        prop_assert_eq!(flow(&s.case), flow(&before));
                    }
                }
                Err(_) => prop_assert_eq!(&s.case, &before),
            }
            // A case never has two lead holders.
            prop_assert!(s.case.holders().filter(|a| a.role == HandlingRole::Lead).count() <= 1);
            // Nobody holds a case that is closed for handling.
            if matches!(s.case.stage(), Stage::Completed | Stage::CalledBack | Stage::Archived) {
                prop_assert_eq!(s.case.holders().count(), 0);
            }
            // An immediate case is never transferred.
            if kind == Kind::Immediate {
                prop_assert!(s.case.assignments().is_empty());
            }
            // Co-handlers exist only beside a live lead (or after the lead completed).
            if s.case.stage() == Stage::Open && s.case.merged_into().is_none() && s.case.holders().count() > 0 {
                prop_assert!(s.case.assignments().iter().any(|a| a.role == HandlingRole::Lead && a.is_live()));
            }
            // The state is a pure fold of the history.
            prop_assert_eq!(crate::case::replay(&s.history), s.case.clone());
            prop_assert_eq!(s.case.version() as usize, s.history.len());
        }
    }
}

// ---- 到期预警 (deadline warnings, issued by the overdue sweep) ----

fn system() -> Actor {
    actor("system", "city.efficiency", Role::Supervisor)
}

fn warn(assignment_id: u32, deadline: DeadlineKind) -> Command {
    Command::WarnDeadline {
        assignment_id,
        deadline,
        within: WorkingTime::Minutes(4 * 60),
    }
}

#[test]
fn a_deadline_due_within_the_window_is_warned_once_and_the_flow_does_not_change() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("city.bureau.housing", &[]));
    let status = s.case.status();
    let holders = s.case.holders().count();
    let receive_by = s.case.assignments()[0].receive_by.at;
    let events = s.ok(&system(), warn(1, DeadlineKind::Receive));
    assert_eq!(
        events,
        [EventBody::DeadlineWarned {
            assignment_id: 1,
            deadline: DeadlineKind::Receive,
            due_at: receive_by,
        }]
    );
    assert_eq!(s.case.status(), status);
    assert_eq!(s.case.holders().count(), holders);
    assert!(s.case.assignments()[0].warned());
    s.refused(
        &system(),
        warn(1, DeadlineKind::Receive),
        CaseError::AlreadyWarned,
    );
}

#[test]
fn a_deadline_not_due_soon_is_not_warned() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("city.bureau.housing", &[]));
    // Handling runs five working days: far outside a four-hour window.
    s.refused(
        &system(),
        warn(1, DeadlineKind::Complete),
        CaseError::NotDueSoon,
    );
    // Once received, the receive deadline no longer runs.
    s.ok(&housing(), Command::Receive);
    s.refused(
        &system(),
        warn(1, DeadlineKind::Receive),
        CaseError::NotDueSoon,
    );
    // An unknown assignment has no deadline.
    s.refused(
        &system(),
        warn(9, DeadlineKind::Complete),
        CaseError::NotDueSoon,
    );
    // Past the deadline it is overdue (supervision), not a warning.
    let mut late = accepted(Kind::Escalated);
    late.ok(&disp(), transfer("city.bureau.housing", &[]));
    late.advance_to(local(2025, 3, 4, 10, 0));
    late.refused(
        &system(),
        warn(1, DeadlineKind::Receive),
        CaseError::NotDueSoon,
    );
}

#[test]
fn a_moved_deadline_is_warned_again() {
    let mut s = at_housing();
    // Monday 10 March, 8:00: the complete-by of 10:00 that morning is within the window.
    s.advance_to(local(2025, 3, 10, 8, 0));
    s.ok(&system(), warn(1, DeadlineKind::Complete));
    s.ok(
        &housing(),
        Command::RequestExtension {
            working_days: 1,
            reason: "需勘查".into(),
        },
    );
    s.ok(
        &disp(),
        Command::DecideExtension {
            approve: true,
            note: "同意".into(),
        },
    );
    assert!(!s.case.assignments()[0].warned());
    s.advance_to(local(2025, 3, 11, 8, 0));
    s.ok(&system(), warn(1, DeadlineKind::Complete));
    assert!(s.case.assignments()[0].warned());
}

#[test]
fn deadline_warnings_are_refused_on_closed_cases_and_for_other_roles() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("city.bureau.housing", &[]));
    assert!(matches!(
        s.try_cmd(&op(), &warn(1, DeadlineKind::Receive))
            .unwrap_err(),
        CaseError::RoleNotAllowed(_)
    ));
    let mut done = completed_at_housing();
    done.refused(
        &system(),
        warn(1, DeadlineKind::Complete),
        CaseError::NotOpen,
    );
}

// ---- scope (rule 14) ----

#[test]
fn a_district_efficiency_office_sees_its_district_only_and_the_city_office_everything() {
    use crate::identity::may_view_case;
    let w = world();
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    let city_office = actor("supervisor", "city.efficiency", Role::Supervisor);
    let a_office = actor("a_supervisor", "d.a", Role::Supervisor);
    let b_office = actor("b_supervisor", "d.b", Role::Supervisor);
    assert!(city_office.sees_every_case(&w.org));
    assert!(!a_office.sees_every_case(&w.org));
    assert!(may_view_case(&city_office, &s.case, &w.org));
    assert!(may_view_case(&a_office, &s.case, &w.org));
    assert!(
        !may_view_case(&b_office, &s.case, &w.org),
        "another district's efficiency office"
    );
}

#[test]
fn a_leader_sees_what_went_to_the_units_they_oversee_wherever_they_sit() {
    use crate::identity::may_view_case;
    let w = world();
    let mut to_housing = accepted(Kind::Escalated);
    to_housing.ok(&disp(), transfer("city.bureau.housing", &[]));
    let mut to_district = accepted(Kind::Escalated);
    to_district.ok(&disp(), transfer("d.a", &[]));
    let not_sent = accepted(Kind::Escalated);
    let mut housing_leader = actor("city_leader_housing", "city", Role::Leader);
    housing_leader.oversees = vec![u("city.bureau.housing")];
    assert!(
        !housing_leader.sees_every_case(&w.org),
        "sitting at the centre"
    );
    assert!(may_view_case(&housing_leader, &to_housing.case, &w.org));
    assert!(!may_view_case(&housing_leader, &to_district.case, &w.org));
    assert!(
        !may_view_case(&housing_leader, &not_sent.case, &w.org),
        "accepted at the centre the leader sits in, sent nowhere they oversee"
    );
    let mut city_leader = actor("city_leader", "city", Role::Leader);
    city_leader.oversees = vec![u("city")];
    assert!(may_view_case(&city_leader, &to_district.case, &w.org));
    assert!(
        may_view_case(&city_leader, &not_sent.case, &w.org),
        "accepted by the centre they oversee"
    );
    // The centre's own staff still see every case.
    assert!(disp().sees_every_case(&w.org));
}

#[test]
fn a_unit_whose_part_is_over_keeps_the_case_up_to_then_with_the_caller_masked() {
    use crate::identity::{Extent, may_see_identity, may_view_case, view_extent};
    let w = world();
    let mut s = at_housing();
    assert!(
        may_see_identity(&housing(), &s.case, &w.org),
        "while it holds the case"
    );
    assert_eq!(view_extent(&housing(), &s.case, &w.org), Extent::Whole);
    s.advance_to(local(2025, 3, 4, 9, 0));
    let recalled_at = s.now;
    s.ok(
        &disp(),
        Command::Recall {
            reason: "改派".into(),
        },
    );
    let at_recall = s.history.len();
    // The next transfer at the very same instant still falls after the housing bureau's part.
    s.ok(&disp(), transfer("city.bureau.urban", &[]));
    assert_eq!(
        crate::identity::visible_prefix(&housing(), &s.history, &w.org),
        at_recall
    );
    s.advance_to(local(2025, 3, 4, 10, 0));
    s.ok(&urban(), Command::Receive);
    // The housing bureau still finds the case it touched, but not the caller, nor what
    // came after its part.
    assert!(may_view_case(&housing(), &s.case, &w.org));
    assert!(!may_see_identity(&housing(), &s.case, &w.org));
    assert_eq!(
        view_extent(&housing(), &s.case, &w.org),
        Extent::Until(recalled_at)
    );
    // The new holder reads the whole case; the accepting centre and the efficiency office
    // always do.
    assert!(may_see_identity(&urban(), &s.case, &w.org));
    for whole in [urban(), disp(), sup()] {
        assert_eq!(
            view_extent(&whole, &s.case, &w.org),
            Extent::Whole,
            "{}",
            whole.username
        );
    }
}

#[test]
fn a_unit_above_the_holder_reads_the_whole_case_and_a_finished_one_up_to_its_completion() {
    use crate::identity::{Extent, may_see_identity, view_extent};
    let w = world();
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    s.ok(&da(), Command::Receive);
    s.ok(&da(), transfer("d.a.s01", &[]));
    s.ok(&s01(), Command::Receive);
    // The district passed it on: it oversees the street's work but does not call the citizen.
    assert_eq!(view_extent(&da(), &s.case, &w.org), Extent::Whole);
    assert!(!may_see_identity(&da(), &s.case, &w.org));
    assert!(may_see_identity(&s01(), &s.case, &w.org));
    s.ok(
        &s01(),
        Command::Complete {
            reply: "已处理".into(),
        },
    );
    let street_done = s.case.assignments()[1].completed_at.expect("completed");
    assert_eq!(
        view_extent(&s01(), &s.case, &w.org),
        Extent::Until(street_done)
    );
    assert!(!may_see_identity(&s01(), &s.case, &w.org));
}

#[test]
fn a_case_is_never_transferred_to_a_building() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    let a = actor("a_dispatcher", "d.a", Role::Dispatcher);
    s.ok(&a, Command::Receive);
    s.refused(
        &a,
        transfer("d.a.s01.c01.g01.b01", &[]),
        CaseError::TargetNotAllowed(u("d.a.s01.c01.g01.b01")),
    );
}

#[test]
fn overdue_from_and_overdue_kind_are_one_rule_at_every_hour() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    for hours in 0..24 * 14 {
        let now = monday() + chrono::Duration::hours(hours);
        let deadlines = s.case.running_deadlines();
        let from = deadlines.overdue_from(s.case.stage());
        assert_eq!(
            from.is_some_and(|t| t < now),
            s.case.overdue_kind(now).is_some(),
            "at {now}"
        );
    }
}

// ---- 机构调整移交: a closed unit's part goes to its successor ----

fn city_admin() -> Actor {
    actor("system", "city", Role::Admin)
}

fn hand_over(from: &str, to: &str) -> Command {
    Command::HandOver {
        from_unit_id: u(from),
        to_unit_id: u(to),
    }
}

#[test]
fn a_closed_unit_s_open_assignment_goes_to_its_successor_with_its_deadlines() {
    let mut s = at_housing();
    let before = s.case.holders().next().cloned().expect("housing holds it");
    s.ok(
        &city_admin(),
        hand_over("city.bureau.housing", "city.bureau.urban"),
    );
    let after = s.case.holders().next().cloned().expect("a holder");
    assert_eq!(after.unit_id, u("city.bureau.urban"));
    assert_eq!(after.state, before.state);
    assert_eq!(after.complete_by, before.complete_by);
    assert_eq!(after.receive_by, before.receive_by);
    // The successor carries on where the closed unit stood.
    s.ok(&urban(), complete());
}

#[test]
fn a_transfer_the_closed_unit_made_is_the_successor_s_to_recall() {
    let mut s = accepted(Kind::Escalated);
    s.ok(&disp(), transfer("d.a", &[]));
    s.ok(&da(), Command::Receive);
    s.ok(&da(), transfer("d.a.s01", &[]));
    s.ok(&city_admin(), hand_over("d.a", "d.b"));
    let street = s
        .case
        .holders()
        .next()
        .cloned()
        .expect("the street holds it");
    assert_eq!(street.unit_id, u("d.a.s01"));
    assert_eq!(street.from_unit_id, u("d.b"));
}

#[test]
fn only_the_city_centre_s_administrator_hands_over_and_only_what_the_unit_holds() {
    let mut s = at_housing();
    s.refused(
        &housing(),
        hand_over("city.bureau.housing", "city.bureau.urban"),
        CaseError::RoleNotAllowed(vec![Role::Admin]),
    );
    s.refused(
        &actor("d_admin", "d.a", Role::Admin),
        hand_over("city.bureau.housing", "city.bureau.urban"),
        CaseError::UnitNotAllowed(u("d.a")),
    );
    s.refused(
        &city_admin(),
        hand_over("city.bureau.urban", "city.bureau.housing"),
        CaseError::NotOpen,
    );
    s.refused(
        &city_admin(),
        hand_over("city.bureau.housing", "nowhere"),
        CaseError::UnknownUnit(u("nowhere")),
    );
    s.refused(
        &city_admin(),
        hand_over("city.bureau.housing", "city.bureau.housing"),
        CaseError::DuplicateTarget(u("city.bureau.housing")),
    );
}
