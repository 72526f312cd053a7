//! 督办 and 分管: the efficiency office's overdue board at `/oversight` (counts by district or
//! bureau and by unit from `AppState::overdue_board`, then the cases of the one chosen from
//! `AppState::overdue_cases`), supervising one case or several selected at once
//! (`POST /oversight/supervise`: one opinion, `Command::Supervise` on each through
//! `AppState::execute` with the version the board showed, each case's result shown); and the
//! leader's list of the cases of the units they oversee at `/oversight/leader`
//! (`AppState::case_list`, scoped to them) with 批示 inline (`POST /oversight/leader/annotate`).

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use domain::{CaseId, Command};
use projections::{CaseFilter, CaseSummary, Page, WorkList};
use serde::Deserialize;

use super::{Layout, Session, csrf_refused, failure_page, render, working_span};
use crate::app::failure::Failure;
use crate::app::views::{CaseQuery, DeadlineState, OverdueBoard};
use crate::app::{AppError, AppState, zh_time};

/// Rows per page.
const PER_PAGE: u32 = 50;

/// `?unit=&page=&min_position=`.
#[derive(Deserialize)]
pub struct BoardQuery {
    /// A district centre, a bureau or a unit: its overdue cases (all without it).
    unit: Option<String>,
    page: Option<u32>,
    min_position: Option<u64>,
}

/// One case row of the board or of the leader's list.
pub struct CaseRow {
    id: String,
    version: u64,
    title: String,
    status_label: &'static str,
    holders: String,
    /// 已超时 3工作小时, or empty.
    overdue: String,
    /// (class, label): 督办, 批示, 联办, 保密.
    flags: Vec<(&'static str, &'static str)>,
}

/// What became of one case of a supervision.
pub struct Outcome {
    id: String,
    /// `ok`, `error` or `notice` (stale).
    class: &'static str,
    text: String,
}

/// 逾期督办台.
#[derive(Template)]
#[template(path = "oversight.html")]
struct BoardPage {
    layout: Layout,
    as_of: String,
    board: OverdueBoard,
    /// The name of the district, bureau or unit chosen, or 全部.
    chosen: String,
    /// The unit chosen (kept by the supervise form), or empty.
    unit: String,
    rows: Vec<CaseRow>,
    total: u64,
    page: u32,
    pages: u32,
    prev: Option<String>,
    next: Option<String>,
    outcomes: Vec<Outcome>,
    opinion: String,
}

fn unit_name(state: &AppState, id: &str) -> String {
    state
        .org()
        .get(&domain::org::UnitId::new(id))
        .map_or_else(|| id.to_owned(), |u| u.name.clone())
}

fn case_row(state: &AppState, row: &CaseSummary, now: chrono::DateTime<chrono::Utc>) -> CaseRow {
    let overdue = state
        .time_left(WorkList::Overdue, row, now)
        .filter(|left| left.state == DeadlineState::Overdue)
        .map(|left| format!("已超时 {}", working_span(left.working_minutes)))
        .unwrap_or_default();
    CaseRow {
        id: row.case_id.clone(),
        version: row.version,
        title: row.title.clone(),
        status_label: row.status_label,
        holders: row
            .holder_unit_ids
            .iter()
            .map(|u| unit_name(state, u))
            .collect::<Vec<_>>()
            .join("、"),
        overdue,
        flags: [
            (row.supervised, "supervised", "督办"),
            (row.annotated, "annotated", "批示"),
            (row.joint, "joint", "联办"),
            (row.confidential, "confidential", "保密"),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, class, label)| (class, label))
        .collect(),
    }
}

fn pages_of(page: &Page) -> u32 {
    u32::try_from(page.total.div_ceil(u64::from(page.per_page.max(1))))
        .unwrap_or(u32::MAX)
        .max(1)
}

async fn board_page(
    state: &AppState,
    session: &Session,
    query: &BoardQuery,
    outcomes: Vec<Outcome>,
    opinion: String,
) -> Response {
    let layout = || Layout::new(state, session, "逾期督办");
    let actor = session.user.actor();
    let board = match state.overdue_board(&actor, query.min_position).await {
        Ok(board) => board,
        Err(failure) => return failure_page(layout(), failure),
    };
    let unit = query.unit.as_deref().filter(|u| !u.is_empty());
    let page_no = query.page.unwrap_or(1).clamp(1, 10_000);
    let rows = match state
        .overdue_cases(&actor, unit, (page_no, PER_PAGE), None)
        .await
    {
        Ok(rows) => rows,
        Err(failure) => return failure_page(layout(), failure),
    };
    let now = board.as_of;
    let pages = pages_of(&rows);
    let link = |p: u32| match unit {
        Some(u) => format!("/oversight?unit={u}&page={p}"),
        None => format!("/oversight?page={p}"),
    };
    render(
        StatusCode::OK,
        &BoardPage {
            layout: layout(),
            as_of: zh_time(now),
            chosen: unit.map_or_else(|| "全部".to_owned(), |u| unit_name(state, u)),
            rows: rows.items.iter().map(|r| case_row(state, r, now)).collect(),
            total: rows.total,
            page: page_no,
            pages,
            prev: (page_no > 1).then(|| link(page_no - 1)),
            next: (page_no < pages).then(|| link(page_no + 1)),
            unit: unit.unwrap_or_default().to_owned(),
            board,
            outcomes,
            opinion,
        },
    )
}

/// `GET /oversight`.
pub async fn board(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<BoardQuery>,
) -> Response {
    board_page(&state, &session, &query, Vec::new(), String::new()).await
}

/// `POST /oversight/supervise`: `csrf`, `opinion`, `unit` (the board shown), and for each
/// case its version as `v.{id}`; the cases are those ticked (`pick.{id}`), or the one whose
/// own button was pressed (`only`).
pub async fn supervise(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !session.csrf_ok(&headers, form.get("csrf").map(String::as_str)) {
        return csrf_refused(&state, &session);
    }
    let opinion = form.get("opinion").map(|o| o.trim()).unwrap_or_default();
    let mut chosen: Vec<&str> = match form.get("only") {
        Some(only) => vec![only.as_str()],
        None => form
            .keys()
            .filter_map(|k| k.strip_prefix("pick."))
            .collect(),
    };
    chosen.sort_unstable();
    let query = BoardQuery {
        unit: form.get("unit").cloned(),
        page: None,
        min_position: None,
    };
    let mut outcomes = Vec::new();
    if chosen.is_empty() {
        outcomes.push(Outcome {
            id: String::new(),
            class: "error",
            text: "请先勾选要督办的工单".to_owned(),
        });
    }
    let actor = session.user.actor();
    let mut last_position = None;
    for id in chosen {
        let version = form.get(&format!("v.{id}")).and_then(|v| v.parse().ok());
        let outcome = match CaseId::parse(id) {
            Err(_) => Outcome {
                id: id.to_owned(),
                class: "error",
                text: "没有这件工单".to_owned(),
            },
            Ok(case_id) => {
                let command = Command::Supervise {
                    opinion: opinion.to_owned(),
                };
                match state
                    .execute(&actor, &case_id, command, version, None)
                    .await
                {
                    Ok(done) => {
                        last_position = Some(done.position.0);
                        Outcome {
                            id: id.to_owned(),
                            class: "ok",
                            text: "已督办".to_owned(),
                        }
                    }
                    Err(AppError::Conflict { .. }) => Outcome {
                        id: id.to_owned(),
                        class: "notice",
                        text: "工单已被他人更新，未督办；请刷新后确认再督办".to_owned(),
                    },
                    Err(err) => {
                        let described = Failure::from(err).describe();
                        if let Some(cause) = &described.cause {
                            tracing::error!(error = %format!("{cause:#}"), "supervision failed");
                        }
                        Outcome {
                            id: id.to_owned(),
                            class: "error",
                            text: described.title.into_owned(),
                        }
                    }
                }
            }
        };
        outcomes.push(outcome);
    }
    // The board as it is after the supervisions (their flags shown).
    let query = BoardQuery {
        min_position: last_position,
        ..query
    };
    let keep = if outcomes.iter().all(|o| o.class == "ok") {
        String::new()
    } else {
        opinion.to_owned()
    };
    board_page(&state, &session, &query, outcomes, keep).await
}

/// `?page=&done=&min_position=`.
#[derive(Deserialize)]
pub struct LeaderQuery {
    page: Option<u32>,
    /// The case just annotated.
    done: Option<String>,
    min_position: Option<u64>,
}

/// 分管单位工单.
#[derive(Template)]
#[template(path = "oversight_leader.html")]
struct LeaderPage {
    layout: Layout,
    rows: Vec<CaseRow>,
    total: u64,
    page: u32,
    pages: u32,
    prev: Option<String>,
    next: Option<String>,
    outcome: Option<Outcome>,
}

async fn leader_page(
    state: &AppState,
    session: &Session,
    page_no: u32,
    min_position: Option<u64>,
    outcome: Option<Outcome>,
    status: StatusCode,
) -> Response {
    let layout = || Layout::new(state, session, "分管单位工单");
    let actor = session.user.actor();
    let query = CaseQuery {
        filter: CaseFilter {
            page: page_no,
            per_page: PER_PAGE,
            ..CaseFilter::default()
        },
        text: None,
        min_position,
    };
    let list = match state.case_list(&actor, query).await {
        Ok(list) => list.page,
        Err(failure) => return failure_page(layout(), failure),
    };
    let now = state.now();
    let pages = pages_of(&list);
    let link = |p: u32| format!("/oversight/leader?page={p}");
    render(
        status,
        &LeaderPage {
            layout: layout(),
            rows: list.items.iter().map(|r| case_row(state, r, now)).collect(),
            total: list.total,
            page: page_no,
            pages,
            prev: (page_no > 1).then(|| link(page_no - 1)),
            next: (page_no < pages).then(|| link(page_no + 1)),
            outcome,
        },
    )
}

/// `GET /oversight/leader`.
pub async fn leader(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<LeaderQuery>,
) -> Response {
    let outcome = query.done.map(|id| Outcome {
        id,
        class: "ok",
        text: "已批示".to_owned(),
    });
    let page = query.page.unwrap_or(1).clamp(1, 10_000);
    leader_page(
        &state,
        &session,
        page,
        query.min_position,
        outcome,
        StatusCode::OK,
    )
    .await
}

/// The annotate form of a row.
#[derive(Deserialize)]
pub struct AnnotateForm {
    csrf: Option<String>,
    case: String,
    version: u64,
    text: String,
    page: Option<u32>,
}

/// `POST /oversight/leader/annotate`: 批示 with the version the list showed; back to the list
/// on success, the refusal or the stale notice in place otherwise.
pub async fn annotate(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<AnnotateForm>,
) -> Response {
    if !session.csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&state, &session);
    }
    let page = form.page.unwrap_or(1).clamp(1, 10_000);
    let case_id = match Failure::case_id(&form.case) {
        Ok(case_id) => case_id,
        Err(failure) => {
            return failure_page(Layout::new(&state, &session, "分管单位工单"), failure);
        }
    };
    let command = Command::Annotate {
        text: form.text.trim().to_owned(),
    };
    let actor = session.user.actor();
    let refused = |class, text: String, status| {
        let outcome = Outcome {
            id: form.case.clone(),
            class,
            text,
        };
        (Some(outcome), status)
    };
    let (outcome, status) = match state
        .execute(&actor, &case_id, command, Some(form.version), None)
        .await
    {
        Ok(done) => {
            return Redirect::to(&format!(
                "/oversight/leader?page={page}&done={}&min_position={}",
                done.id, done.position.0
            ))
            .into_response();
        }
        Err(AppError::Conflict { .. }) => refused(
            "notice",
            "工单已被他人更新，未批示；以下是最新内容，请确认后再批示".to_owned(),
            StatusCode::CONFLICT,
        ),
        Err(err) => {
            let described = Failure::from(err).describe();
            if let Some(cause) = &described.cause {
                tracing::error!(error = %format!("{cause:#}"), "annotation failed");
            }
            let status =
                StatusCode::from_u16(described.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            refused("error", described.title.into_owned(), status)
        }
    };
    leader_page(&state, &session, page, None, outcome, status).await
}
