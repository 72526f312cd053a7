//! 工单详情 at `/cases/{id}`: the case as the viewer may see it (`AppState::case_detail_revealing`:
//! scope, mask, audit, labelled timeline, allowed actions) and every action the viewer may
//! take now (`detail.actions`, asked of `decide`), each a small form posted back here with
//! the CSRF token and the version the page showed (`If-Match` of the command). The form's
//! fields become the command in `app::verbs`; a refusal is shown in place, in that form, in
//! Chinese; a stale version shows a notice with a reload link instead of failing.
//!
//! The caller is shown masked until the person asks (`reveal`), and only then is the view
//! recorded (rule 12). The transfer form offers the units `detail.actions` lists, grouped by
//! kind, with a search (`/cases/{id}/targets`, an htmx fragment); the merge form finds the
//! master by number or words through the case list (`/cases/{id}/masters`).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use domain::case::{AssignmentState, HandlingRole, Overdue};
use domain::event::DeadlineKind;
use domain::org::OrgTree;
use domain::{EventBody, Satisfaction};
use projections::{CaseFilter, Sort};
use serde::Deserialize;

use super::{Layout, Session, csrf_refused, failure_page, render};
use crate::app::failure::Failure;
use crate::app::verbs::{self, FORM_VERBS, VerbCommand, VerbError, VerbFields};
use crate::app::views::{CaseDetail, CaseQuery};
use crate::app::{AppError, AppState, zh_time};

/// How a verb's form looks and what it says. Presentation only: which verbs show is
/// `detail.actions`'s to say.
struct Spec {
    verb: &'static str,
    /// `plain` (a button), `text`, `decide` (two buttons), `extension`, `callback`,
    /// `transfer`, `merge`.
    form: &'static str,
    /// The free text's label (empty: none).
    text_label: &'static str,
    /// The free text must be filled in (the rule says so; the browser is told too).
    required: bool,
    /// The submit button (for `decide`: the yes button).
    submit: &'static str,
    /// For `decide`: the no button.
    no: &'static str,
    /// What the notice says once done.
    done: &'static str,
}

const fn spec(
    verb: &'static str,
    form: &'static str,
    text_label: &'static str,
    required: bool,
    submit: &'static str,
    no: &'static str,
    done: &'static str,
) -> Spec {
    Spec {
        verb,
        form,
        text_label,
        required,
        submit,
        no,
        done,
    }
}

const SPECS: &[Spec] = &[
    spec("receive", "plain", "", false, "签收", "", "已签收"),
    spec(
        "transfer",
        "transfer",
        "转办意见（选填）",
        false,
        "确认转办",
        "",
        "已转办",
    ),
    spec("recall", "text", "追回原因", true, "确认追回", "", "已追回"),
    spec(
        "return-request",
        "text",
        "退回理由",
        true,
        "提交退回申请",
        "",
        "已提交退回申请",
    ),
    spec(
        "return-decision",
        "decide",
        "审核意见（驳回时必填）",
        false,
        "同意退回",
        "驳回退回",
        "已审核退回申请",
    ),
    spec(
        "progress",
        "text",
        "办理情况",
        true,
        "保存办理记录",
        "",
        "已记录办理情况",
    ),
    spec(
        "complete",
        "text",
        "办理结果（答复内容）",
        true,
        "确认办结",
        "",
        "已办结",
    ),
    spec(
        "extension",
        "extension",
        "延期理由",
        true,
        "提交延期申请",
        "",
        "已提交延期申请",
    ),
    spec(
        "extension/decide",
        "decide",
        "审批意见（不予批准时必填）",
        false,
        "批准延期",
        "不予批准",
        "已审批延期申请",
    ),
    spec(
        "callback",
        "callback",
        "回访记录（选填）",
        false,
        "保存回访结果",
        "",
        "已回访",
    ),
    spec("reopen", "text", "重办原因", true, "确认重办", "", "已重办"),
    spec(
        "appeal",
        "text",
        "申诉理由",
        true,
        "提交申诉",
        "",
        "已提交申诉",
    ),
    spec(
        "appeal-decision",
        "decide",
        "审核意见",
        true,
        "申诉成立",
        "申诉不成立",
        "已审核申诉",
    ),
    spec(
        "supervise",
        "text",
        "督办意见",
        true,
        "确认督办",
        "",
        "已督办",
    ),
    spec(
        "annotate",
        "text",
        "批示内容",
        true,
        "确认批示",
        "",
        "已批示",
    ),
    spec("merge", "merge", "", false, "确认并单", "", "已并入主工单"),
    spec("archive", "plain", "", false, "归档", "", "已归档"),
];

fn spec_of(verb: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.verb == verb)
}

/// One holder or past assignment (承办单位) with its deadlines, met or missed.
pub struct Holder {
    unit: String,
    role: &'static str,
    state: &'static str,
    receive_by: String,
    /// 按时签收 / 超时签收 / empty.
    received: Deadline,
    complete_by: String,
    completed: Deadline,
}

/// Whether a deadline was met: its text and class (`met`, `missed`; empty while it runs).
pub struct Deadline {
    text: &'static str,
    class: &'static str,
}

fn deadline(met: Option<bool>, kind: DeadlineKind) -> Deadline {
    let (text, class) = match (met, kind) {
        (Some(true), DeadlineKind::Receive) => ("按时签收", "met"),
        (Some(false), DeadlineKind::Receive) => ("超时签收", "missed"),
        (Some(true), DeadlineKind::Complete) => ("按时办结", "met"),
        (Some(false), DeadlineKind::Complete) => ("超时办结", "missed"),
        (None, _) => ("", ""),
    };
    Deadline { text, class }
}

/// One entry of the timeline.
pub struct Entry {
    label: &'static str,
    who: String,
    unit: String,
    when: String,
    /// `annotated`, `supervised` and `recalled` stand out; empty otherwise.
    class: &'static str,
    /// What the step said: the note, the reason, the units given the case …
    detail: String,
    /// For a receipt or a completion: the deadline it met or missed.
    deadline: Deadline,
}

/// A notice above the case: a stale page, a refusal, a success.
pub struct Notice {
    /// `notice`, `error` or `ok`.
    class: &'static str,
    text: String,
    /// Offer a reload link.
    reload: bool,
}

/// One action's form.
pub struct Action {
    verb: &'static str,
    label: &'static str,
    /// The `id` of its block (`act-extension-decide`).
    anchor: String,
    form: &'static str,
    text_label: &'static str,
    required: bool,
    submit: &'static str,
    no: &'static str,
    /// After a refusal of this form: the message, shown in it.
    error: Option<String>,
    /// What was typed, kept after a refusal.
    typed: String,
}

/// A unit a transfer may go to.
pub struct Target {
    id: String,
    path: String,
    lead: bool,
    co: bool,
}

/// The targets of one kind of unit (市直部门, 街道办/乡镇 …).
pub struct TargetGroup {
    kind: &'static str,
    units: Vec<Target>,
}

/// The transfer picker's list: the fragment htmx replaces as the person searches.
#[derive(Template)]
#[template(path = "_case_targets.html")]
struct TargetsPart {
    targets: Vec<TargetGroup>,
}

/// A possible master case for a merge.
pub struct Master {
    id: String,
    title: String,
    status_label: &'static str,
}

/// The merge form's search results.
#[derive(Template)]
#[template(path = "_case_masters.html")]
struct MastersPart {
    searched: bool,
    masters: Vec<Master>,
}

/// 工单详情.
#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    layout: Layout,
    id: String,
    version: u64,
    title: String,
    status_label: &'static str,
    fields: Vec<(&'static str, String)>,
    /// The caller is masked, and the viewer may ask to see them (recorded).
    may_reveal: bool,
    holders: Vec<Holder>,
    timeline: Vec<Entry>,
    actions: Vec<Action>,
    /// The transfer picker's units, all of them (the search narrows them).
    targets: Vec<TargetGroup>,
    /// Other verbs the viewer may take now, run elsewhere (the intake's): their labels.
    elsewhere: Vec<&'static str>,
    /// The viewer may edit or submit this draft: the intake page opens it.
    draft_link: bool,
    notice: Option<Notice>,
    /// The work lists, reading at least this position (after a command).
    back: String,
}

/// A refused form: which, why, what was typed.
struct Refused {
    verb: String,
    message: String,
    typed: String,
}

fn state_label(state: AssignmentState) -> &'static str {
    match state {
        AssignmentState::Pending => "待签收",
        AssignmentState::Received => "办理中",
        AssignmentState::Completed => "已办结",
        AssignmentState::Recalled => "已追回",
        AssignmentState::Cancelled => "已撤销",
    }
}

fn role_label(role: HandlingRole) -> &'static str {
    match role {
        HandlingRole::Lead => "主办",
        HandlingRole::Co => "协办",
    }
}

/// What a step of the timeline said, for people.
fn entry_detail(org: &OrgTree, detail: &CaseDetail, body: &EventBody) -> (String, Deadline) {
    let none = || deadline(None, DeadlineKind::Receive);
    let met = |assignment_id: &u32, kind| {
        deadline(
            detail
                .case
                .assignment(*assignment_id)
                .and_then(|a| a.deadline_met(kind)),
            kind,
        )
    };
    let with_note = |head: String, note: &str| {
        if note.trim().is_empty() {
            head
        } else if head.is_empty() {
            note.to_owned()
        } else {
            format!("{head}：{note}")
        }
    };
    match body {
        EventBody::Transferred {
            assignments, note, ..
        } => {
            let units = assignments
                .iter()
                .map(|a| {
                    format!(
                        "{}（{}，签收时限 {}，办理时限 {}）",
                        org.path_label(&a.unit_id),
                        role_label(a.role),
                        zh_time(a.receive_by.at),
                        zh_time(a.complete_by.at)
                    )
                })
                .collect::<Vec<_>>()
                .join("；");
            (with_note(format!("转至 {units}"), note), none())
        }
        EventBody::Recalled { reason, .. } => (with_note("追回原因".into(), reason), none()),
        EventBody::ReturnRequested { reason, .. } => (with_note("退回理由".into(), reason), none()),
        EventBody::ReturnDecided { accepted, note, .. } => (
            with_note(
                if *accepted {
                    "同意退回"
                } else {
                    "驳回退回"
                }
                .into(),
                note,
            ),
            none(),
        ),
        EventBody::Received { assignment_id } => {
            (String::new(), met(assignment_id, DeadlineKind::Receive))
        }
        EventBody::ProgressRecorded { note, .. } => (note.clone(), none()),
        EventBody::Completed {
            assignment_id,
            reply,
        } => (reply.clone(), met(assignment_id, DeadlineKind::Complete)),
        EventBody::ExtensionRequested {
            working_days,
            reason,
            ..
        } => (
            with_note(format!("申请延期 {working_days} 个工作日"), reason),
            none(),
        ),
        EventBody::ExtensionDecided {
            approved,
            note,
            complete_by,
            ..
        } => {
            let head = match (approved, complete_by) {
                (true, Some(by)) => format!("批准，办理时限延至 {}", zh_time(by.at)),
                (true, None) => "批准".to_owned(),
                (false, _) => "不予批准".to_owned(),
            };
            (with_note(head, note), none())
        }
        EventBody::CalledBack {
            satisfaction,
            resolved,
            note,
        } => (
            with_note(
                format!(
                    "{}，{}",
                    satisfaction.label(),
                    if *resolved { "已解决" } else { "未解决" }
                ),
                note,
            ),
            none(),
        ),
        EventBody::Reopened {
            reason,
            complete_by,
            ..
        } => (
            with_note(format!("办理时限 {}", zh_time(complete_by.at)), reason),
            none(),
        ),
        EventBody::Supervised { opinion, .. } => (opinion.clone(), none()),
        EventBody::Annotated { text } => (text.clone(), none()),
        EventBody::DeadlineWarned { due_at, .. } => {
            (format!("时限 {} 即将到期", zh_time(*due_at)), none())
        }
        EventBody::AnsweredOnCall { reply, .. } => (reply.clone(), none()),
        EventBody::Merged { master_id, .. } => (format!("并入主工单 {master_id}"), none()),
        EventBody::Archived {
            master_id: Some(master),
        } => (format!("随主工单 {master} 归档"), none()),
        EventBody::HandedOver { to_unit_id, .. } => (
            format!("原办理单位撤销，移交 {}", org.path_label(to_unit_id)),
            none(),
        ),
        EventBody::Appealed { reason } => (reason.clone(), none()),
        EventBody::AppealDecided { upheld, note } => (
            with_note(
                if *upheld {
                    "申诉成立"
                } else {
                    "申诉不成立"
                }
                .into(),
                note,
            ),
            none(),
        ),
        EventBody::DraftSaved { .. } | EventBody::Accepted { .. } | EventBody::Archived { .. } => {
            (String::new(), none())
        }
    }
}

/// The transfer targets of `detail`, grouped by kind of unit, narrowed to those whose name
/// holds `query` (the chosen ones always kept).
fn targets(
    org: &OrgTree,
    detail: &CaseDetail,
    query: &str,
    lead: Option<&str>,
    co: &[String],
) -> Vec<TargetGroup> {
    let query = query.trim();
    let mut groups: Vec<TargetGroup> = Vec::new();
    let units = detail
        .actions
        .iter()
        .filter(|a| a.verb == "transfer")
        .flat_map(|a| a.transfer_targets.iter());
    for id in units {
        let Some(unit) = org.get(id) else { continue };
        let path = org.path_label(id);
        let (is_lead, is_co) = (
            lead == Some(id.as_str()),
            co.iter().any(|c| c == id.as_str()),
        );
        if !(query.is_empty() || path.contains(query) || is_lead || is_co) {
            continue;
        }
        let kind = unit.kind.label();
        let target = Target {
            id: id.to_string(),
            path,
            lead: is_lead,
            co: is_co,
        };
        match groups.iter_mut().find(|g| g.kind == kind) {
            Some(group) => group.units.push(target),
            None => groups.push(TargetGroup {
                kind,
                units: vec![target],
            }),
        }
    }
    groups
}

fn anchor(verb: &str) -> String {
    format!("act-{}", verb.replace('/', "-"))
}

fn case_page(
    state: &AppState,
    session: &Session,
    detail: CaseDetail,
    notice: Option<Notice>,
    refused: Option<Refused>,
    position: Option<u64>,
) -> CasePage {
    let org = &state.org();
    let case = &detail.case;
    let intake = case.intake();
    let label = |v: Option<&'static str>| v.unwrap_or("—").to_owned();
    let mut fields = vec![
        ("来电人", detail.caller_name()),
        ("来电号码", detail.caller_phone()),
        ("诉求类别", label(intake.category.map(|c| c.label()))),
        ("件别", label(intake.kind.map(|k| k.label()))),
        ("紧急程度", label(intake.urgency.map(|u| u.label()))),
        (
            "所在地",
            intake
                .location_unit_id
                .as_ref()
                .map_or_else(|| "—".to_owned(), |id| org.path_label(id)),
        ),
        ("地址", intake.address.clone()),
        ("诉求内容", intake.content.clone()),
        (
            "受理时间",
            case.accepted_at()
                .map(zh_time)
                .unwrap_or_else(|| "—".into()),
        ),
    ];
    if intake.confidential {
        fields.push(("保密", "来电人要求保密".to_owned()));
    }
    if let Some(master) = case.merged_into() {
        fields.push(("主工单", master.to_string()));
    }
    if let Some(until) = detail.until {
        fields.push(("查看范围", format!("本单位经办部分，至 {}", zh_time(until))));
    }
    let holders = case
        .assignments()
        .iter()
        .map(|a| {
            // A deadline still running and already passed (rule 8, the domain's).
            let late = |overdue: Overdue, text: &'static str| {
                (a.overdue_kind(detail.now) == Some(overdue)).then_some(Deadline {
                    text,
                    class: "missed",
                })
            };
            Holder {
                unit: org.path_label(&a.unit_id),
                role: role_label(a.role),
                state: state_label(a.state),
                receive_by: zh_time(a.receive_by.at),
                received: late(Overdue::NotReceived, "逾期未签收").unwrap_or_else(|| {
                    deadline(a.deadline_met(DeadlineKind::Receive), DeadlineKind::Receive)
                }),
                complete_by: zh_time(a.complete_by.at),
                completed: late(Overdue::InProgress, "逾期未办结").unwrap_or_else(|| {
                    deadline(
                        a.deadline_met(DeadlineKind::Complete),
                        DeadlineKind::Complete,
                    )
                }),
            }
        })
        .collect();
    let timeline = detail
        .timeline
        .iter()
        .map(|item| {
            let (text, deadline) = entry_detail(org, &detail, &item.event.body);
            Entry {
                label: item.label,
                who: item.actor_name.clone(),
                unit: item.unit_name.clone(),
                when: zh_time(item.event.at),
                class: match item.event.body {
                    EventBody::Annotated { .. } => "annotated",
                    EventBody::Supervised { .. } => "supervised",
                    EventBody::Recalled { .. } => "recalled",
                    _ => "",
                },
                detail: text,
                deadline,
            }
        })
        .collect();
    let mut actions = Vec::new();
    let mut elsewhere = Vec::new();
    for allowed in &detail.actions {
        let Some(spec) = spec_of(allowed.verb).filter(|s| FORM_VERBS.contains(&s.verb)) else {
            elsewhere.push(allowed.label);
            continue;
        };
        let (error, typed) = match &refused {
            Some(r) if r.verb == spec.verb => (Some(r.message.clone()), r.typed.clone()),
            _ => (None, String::new()),
        };
        actions.push(Action {
            verb: spec.verb,
            label: allowed.label,
            anchor: anchor(spec.verb),
            form: spec.form,
            text_label: spec.text_label,
            required: spec.required,
            submit: spec.submit,
            no: spec.no,
            error,
            typed,
        });
    }
    // A refused form whose verb is no longer offered still says why, above the case.
    let notice = notice.or_else(|| {
        refused
            .filter(|r| !actions.iter().any(|a| a.verb == r.verb))
            .map(|r| Notice {
                class: "error",
                text: r.message,
                reload: false,
            })
    });
    CasePage {
        layout: Layout::new(state, session, format!("工单 {}", detail.id)),
        id: detail.id.to_string(),
        version: detail.current_version,
        title: intake.title.clone(),
        status_label: case.status_label(detail.now),
        fields,
        may_reveal: detail.may_reveal,
        holders,
        timeline,
        targets: targets(org, &detail, "", None, &[]),
        actions,
        elsewhere,
        draft_link: detail
            .actions
            .iter()
            .any(|a| a.verb == "draft" || a.verb == "submit"),
        notice,
        back: position.map_or_else(|| "/".to_owned(), |p| format!("/?min_position={p}")),
    }
}

/// `?done=&pos=`: the verb just done and its position (links to the lists read it).
#[derive(Deserialize)]
pub struct PageQuery {
    pos: Option<u64>,
    done: Option<String>,
}

/// `GET /cases/{id}`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let notice = query.done.as_deref().and_then(spec_of).map(|spec| Notice {
        class: "ok",
        text: spec.done.to_owned(),
        reload: false,
    });
    let view = View {
        status: StatusCode::OK,
        notice,
        refused: None,
        reveal: false,
        position: query.pos,
    };
    show(&state, &session, &id, view).await
}

/// How to show the page.
struct View {
    status: StatusCode,
    notice: Option<Notice>,
    refused: Option<Refused>,
    /// Show the caller in full (and record it), if the viewer may.
    reveal: bool,
    position: Option<u64>,
}

async fn show(state: &AppState, session: &Session, id: &str, view: View) -> Response {
    let layout = || Layout::new(state, session, "工单详情");
    let case_id = match Failure::case_id(id) {
        Ok(case_id) => case_id,
        Err(failure) => return failure_page(layout(), failure),
    };
    match state
        .case_detail_revealing(&session.user.actor(), &case_id, view.reveal)
        .await
    {
        Ok(detail) => render(
            view.status,
            &case_page(
                state,
                session,
                detail,
                view.notice,
                view.refused,
                view.position,
            ),
        ),
        Err(err) => failure_page(layout(), err.into()),
    }
}

/// An action's form, as the pairs it sent (`co_unit_ids` comes once per unit chosen).
struct ActionForm {
    csrf: Option<String>,
    action: String,
    /// The version the page showed: the command's `If-Match`.
    version: Option<u64>,
    fields: VerbFields,
    /// 并单: what was typed in the search (a case number works without a pick).
    master_q: String,
}

impl ActionForm {
    fn read(pairs: Vec<(String, String)>) -> Self {
        let mut form = ActionForm {
            csrf: None,
            action: String::new(),
            version: None,
            fields: VerbFields::default(),
            master_q: String::new(),
        };
        for (name, value) in pairs {
            let f = &mut form.fields;
            match name.as_str() {
                "csrf" => form.csrf = Some(value),
                "action" => form.action = value,
                "version" => form.version = value.parse().ok(),
                "text" => f.text = value,
                "working_days" => f.working_days = value,
                "decision" => f.decision = yes_no(&value),
                "resolved" => f.resolved = yes_no(&value),
                // The API's own names (`basically_satisfied` …), read by the same serde.
                "satisfaction" => {
                    f.satisfaction =
                        serde_json::from_value::<Satisfaction>(serde_json::Value::String(value))
                            .ok();
                }
                "lead_unit_id" => f.lead_unit_id = Some(value),
                "co_unit_ids" => f.co_unit_ids.push(value),
                "master_id" => f.master_id = value,
                "master_q" => form.master_q = value,
                _ => {}
            }
        }
        if form.fields.master_id.is_empty() {
            form.fields.master_id = form.master_q.trim().to_owned();
        }
        form
    }
}

fn yes_no(value: &str) -> Option<bool> {
    match value {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// `POST /cases/{id}`: runs the action with `If-Match: version`; on success back to the
/// page (a redirect, so a reload does not resend it); a stale version shows the case as it
/// is now with a notice; a refusal shows its Chinese title in the form. `reveal` shows the
/// caller in full, recorded.
pub async fn act(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = ActionForm::read(pairs);
    if !session.csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    let layout = || Layout::new(&state, &session, "工单详情");
    let case_id = match Failure::case_id(&id) {
        Ok(case_id) => case_id,
        Err(failure) => return failure_page(layout(), failure),
    };
    if form.action == "reveal" {
        let view = View {
            status: StatusCode::OK,
            notice: Some(Notice {
                class: "notice",
                text: "已显示来电人完整信息，本次查看已记录（查看人、时间、工单）。".to_owned(),
                reload: false,
            }),
            refused: None,
            reveal: true,
            position: None,
        };
        return show(&state, &session, &id, view).await;
    }
    let typed = form.fields.text.clone();
    let refuse = |status: StatusCode, message: String| View {
        status,
        notice: None,
        refused: Some(Refused {
            verb: form.action.clone(),
            message,
            typed: typed.clone(),
        }),
        reveal: false,
        position: None,
    };
    let command = match verbs::command(&form.action, form.fields.clone()) {
        Ok(command) => command,
        Err(err @ VerbError::Unknown(_)) => return failure_page(layout(), err.into()),
        Err(err) => {
            let view = refuse(StatusCode::UNPROCESSABLE_ENTITY, err.title().to_owned());
            return show(&state, &session, &id, view).await;
        }
    };
    let Some(version) = form.version else {
        return failure_page(
            layout(),
            Failure::bad_request("invalid_field", "the form did not carry `version`"),
        );
    };
    let actor = session.user.actor();
    let res = match command {
        VerbCommand::Run(cmd) => {
            state
                .execute(&actor, &case_id, cmd, Some(version), None)
                .await
        }
        VerbCommand::Merge(master) => {
            state
                .merge(&actor, &case_id, &master, Some(version), None)
                .await
        }
    };
    match res {
        Ok(outcome) => Redirect::to(&format!(
            "/cases/{}?done={}&pos={}",
            outcome.id,
            urlencoded(&form.action),
            outcome.position.0
        ))
        .into_response(),
        Err(AppError::Conflict { .. }) => {
            let view = View {
                status: StatusCode::CONFLICT,
                notice: Some(Notice {
                    class: "notice",
                    text: "工单已被他人更新，以下是最新内容，请确认后再操作。".to_owned(),
                    reload: true,
                }),
                refused: None,
                reveal: false,
                position: None,
            };
            show(&state, &session, &id, view).await
        }
        Err(err @ (AppError::Domain(_) | AppError::KeyReused)) => {
            let described = Failure::from(err).describe();
            let status =
                StatusCode::from_u16(described.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let view = refuse(status, described.title.into_owned());
            show(&state, &session, &id, view).await
        }
        Err(err) => failure_page(layout(), err.into()),
    }
}

/// A verb in a query string (`extension/decide`).
fn urlencoded(verb: &str) -> String {
    verb.replace('/', "%2F")
}

/// `GET /cases/{id}/targets?unit_q=&lead_unit_id=&co_unit_ids=…`: the transfer picker's
/// list narrowed to the units whose name holds `unit_q`, the chosen ones kept.
pub async fn target_list(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let layout = || Layout::new(&state, &session, "工单详情");
    let case_id = match Failure::case_id(&id) {
        Ok(case_id) => case_id,
        Err(failure) => return failure_page(layout(), failure),
    };
    let (mut query, mut lead, mut co) = (String::new(), None, Vec::new());
    for (name, value) in pairs {
        match name.as_str() {
            "unit_q" => query = value,
            "lead_unit_id" => lead = Some(value),
            "co_unit_ids" => co.push(value),
            _ => {}
        }
    }
    match state
        .case_detail_revealing(&session.user.actor(), &case_id, false)
        .await
    {
        Ok(detail) => render(
            StatusCode::OK,
            &TargetsPart {
                targets: targets(&state.org(), &detail, &query, lead.as_deref(), &co),
            },
        ),
        Err(err) => failure_page(layout(), err.into()),
    }
}

/// `?master_q=`: a case number or words of the master case.
#[derive(Deserialize)]
pub struct MasterQuery {
    master_q: Option<String>,
}

/// Candidates shown at most.
const MASTERS: u32 = 8;

/// `GET /cases/{id}/masters?master_q=`: cases the viewer may see matching a number or words
/// (the case list's own search), this case left out.
pub async fn master_list(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<MasterQuery>,
) -> Response {
    let layout = || Layout::new(&state, &session, "工单详情");
    let text = query.master_q.unwrap_or_default().trim().to_owned();
    if text.is_empty() {
        return render(
            StatusCode::OK,
            &MastersPart {
                searched: false,
                masters: Vec::new(),
            },
        );
    }
    let filter = CaseFilter {
        sort: Sort::Relevance,
        page: 1,
        per_page: MASTERS + 1,
        ..CaseFilter::default()
    };
    let found = state
        .case_list(
            &session.user.actor(),
            CaseQuery {
                filter,
                text: Some(text),
                min_position: None,
            },
        )
        .await;
    match found {
        Ok(found) => render(
            StatusCode::OK,
            &MastersPart {
                searched: true,
                masters: found
                    .page
                    .items
                    .into_iter()
                    .filter(|row| row.case_id != id)
                    .take(MASTERS as usize)
                    .map(|row| Master {
                        id: row.case_id,
                        title: row.title,
                        status_label: row.status_label,
                    })
                    .collect(),
            },
        ),
        Err(err) => failure_page(layout(), err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_a_form_runs_has_its_form_and_every_form_a_verb() {
        for verb in FORM_VERBS {
            assert!(spec_of(verb).is_some(), "{verb} has no form");
        }
        for spec in SPECS {
            assert!(FORM_VERBS.contains(&spec.verb), "{} is no verb", spec.verb);
            assert!(!spec.done.is_empty());
        }
    }

    #[test]
    fn a_form_reads_repeated_units_the_api_s_satisfaction_and_a_typed_master_number() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect::<Vec<_>>()
        };
        let form = ActionForm::read(pairs(&[
            ("action", "transfer"),
            ("version", "4"),
            ("lead_unit_id", "d.chengguan"),
            ("co_unit_ids", "d.qilihe"),
            ("co_unit_ids", "city.bureau.housing"),
            ("satisfaction", "basically_satisfied"),
            ("resolved", "no"),
            ("master_q", " 2026030200001 "),
        ]));
        assert_eq!(form.version, Some(4));
        assert_eq!(form.fields.co_unit_ids, ["d.qilihe", "city.bureau.housing"]);
        assert_eq!(
            form.fields.satisfaction,
            Some(Satisfaction::BasicallySatisfied)
        );
        assert_eq!(form.fields.resolved, Some(false));
        assert_eq!(form.fields.master_id, "2026030200001");
        let picked = ActionForm::read(pairs(&[
            ("master_id", "2026030200002"),
            ("master_q", "停水"),
        ]));
        assert_eq!(picked.fields.master_id, "2026030200002");
    }
}
