//! 工单详情 at `/cases/{id}`: the case as the viewer may see it (`AppState::case_detail`:
//! scope, mask, audit, labelled timeline, allowed actions) and its actions, each a form
//! posted back here with the CSRF token and the version the page showed (`If-Match` of the
//! command). A stale version shows a notice with a reload link instead of failing.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use domain::case::{AssignmentState, HandlingRole};
use domain::{CaseId, Command, EventBody};
use serde::Deserialize;

use super::{Layout, Session, csrf_refused, failure_page, render};
use crate::app::failure::Failure;
use crate::app::views::CaseDetail;
use crate::app::{AppError, AppState, zh_time};

/// The verbs this page runs itself; the others are listed, to come.
const ON_PAGE: &[&str] = &["receive"];

/// One holder (承办单位) with its deadlines.
pub struct Holder {
    unit: String,
    role: &'static str,
    state: &'static str,
    receive_by: String,
    complete_by: String,
}

/// One entry of the timeline.
pub struct Entry {
    label: &'static str,
    who: String,
    unit: String,
    when: String,
    /// 批示 and 督办 stand out.
    highlight: bool,
}

/// A notice above the case: a stale page, a refusal, a success.
pub struct Notice {
    /// `notice`, `error` or `ok`.
    class: &'static str,
    text: String,
    /// Offer a reload link.
    reload: bool,
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
    holders: Vec<Holder>,
    timeline: Vec<Entry>,
    /// The verbs with a form on this page (签收 …), with their labels.
    actions: Vec<(&'static str, &'static str)>,
    /// The other verbs the viewer may take now (labels), not yet on the workbench.
    later: Vec<&'static str>,
    notice: Option<Notice>,
    /// The work lists, reading at least this position (after a command).
    back: String,
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

fn unit_name(state: &AppState, id: &domain::org::UnitId) -> String {
    state
        .org
        .get(id)
        .map_or_else(|| id.to_string(), |u| u.name.clone())
}

fn case_page(
    state: &AppState,
    session: &Session,
    detail: CaseDetail,
    notice: Option<Notice>,
    position: Option<u64>,
) -> CasePage {
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
                .map_or_else(|| "—".to_owned(), |id| state.org.path_label(id)),
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
    let holders = case
        .assignments()
        .iter()
        .map(|a| Holder {
            unit: unit_name(state, &a.unit_id),
            role: match a.role {
                HandlingRole::Lead => "主办",
                HandlingRole::Co => "协办",
            },
            state: state_label(a.state),
            receive_by: zh_time(a.receive_by.at),
            complete_by: zh_time(a.complete_by.at),
        })
        .collect();
    let timeline = detail
        .timeline
        .iter()
        .map(|item| Entry {
            label: item.label,
            who: item.actor_name.clone(),
            unit: item.unit_name.clone(),
            when: zh_time(item.event.at),
            highlight: matches!(
                item.event.body,
                EventBody::Supervised { .. } | EventBody::Annotated { .. }
            ),
        })
        .collect();
    let (actions, later) = detail
        .actions
        .iter()
        .partition::<Vec<_>, _>(|a| ON_PAGE.contains(&a.verb));
    CasePage {
        layout: Layout::new(state, session, format!("工单 {}", detail.id)),
        id: detail.id.to_string(),
        version: case.version(),
        title: intake.title.clone(),
        status_label: case.status_label(detail.now),
        fields,
        holders,
        timeline,
        actions: actions.iter().map(|a| (a.verb, a.label)).collect(),
        later: later.iter().map(|a| a.label).collect(),
        notice,
        back: position.map_or_else(|| "/".to_owned(), |p| format!("/?min_position={p}")),
    }
}

/// `?pos=`: the position of the command just done (links to the lists read it).
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
    axum::extract::Query(query): axum::extract::Query<PageQuery>,
) -> Response {
    let notice = query.done.as_deref().and_then(|verb| {
        (verb == "receive").then(|| Notice {
            class: "ok",
            text: "已签收".to_owned(),
            reload: false,
        })
    });
    show(&state, &session, &id, StatusCode::OK, notice, query.pos).await
}

async fn show(
    state: &AppState,
    session: &Session,
    id: &str,
    status: StatusCode,
    notice: Option<Notice>,
    position: Option<u64>,
) -> Response {
    let layout = || Layout::new(state, session, "工单详情");
    let Ok(case_id) = CaseId::parse(id) else {
        return failure_page(layout(), Failure::NotFound(format!("no case `{id}`")));
    };
    match state.case_detail(&session.user.actor(), &case_id).await {
        Ok(detail) => render(status, &case_page(state, session, detail, notice, position)),
        Err(err) => failure_page(layout(), err.into()),
    }
}

/// An action's form.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    action: String,
    /// The version the page showed: the command's `If-Match`.
    version: u64,
}

/// `POST /cases/{id}`: runs the action with `If-Match: version`; on success back to the
/// page (a redirect, so a reload does not resend it); a stale version shows the case as it
/// is now with a notice; a refusal shows its Chinese title in place.
pub async fn act(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !session.csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    let layout = || Layout::new(&state, &session, "工单详情");
    let Ok(case_id) = CaseId::parse(&id) else {
        return failure_page(layout(), Failure::NotFound(format!("no case `{id}`")));
    };
    let command = match form.action.as_str() {
        "receive" => Command::Receive,
        other => {
            return failure_page(
                layout(),
                Failure::bad_request("invalid_field", format!("unknown action `{other}`")),
            );
        }
    };
    let actor = session.user.actor();
    match state
        .execute(&actor, &case_id, command, Some(form.version), None)
        .await
    {
        Ok(outcome) => Redirect::to(&format!(
            "/cases/{}?done={}&pos={}",
            outcome.id, form.action, outcome.position.0
        ))
        .into_response(),
        Err(AppError::Conflict { .. }) => {
            let notice = Notice {
                class: "notice",
                text: "工单已被他人更新，以下是最新内容，请确认后再操作。".to_owned(),
                reload: true,
            };
            show(
                &state,
                &session,
                &id,
                StatusCode::CONFLICT,
                Some(notice),
                None,
            )
            .await
        }
        Err(err @ (AppError::Domain(_) | AppError::KeyReused)) => {
            let described = Failure::from(err).describe();
            let status =
                StatusCode::from_u16(described.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let notice = Notice {
                class: "error",
                text: described.title.into_owned(),
                reload: false,
            };
            show(&state, &session, &id, status, Some(notice), None).await
        }
        Err(err) => failure_page(layout(), err.into()),
    }
}
