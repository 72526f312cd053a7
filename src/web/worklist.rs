//! 我的待办 at `/`: the caller's work lists as tabs with their counts, the selected list's
//! rows with the deadline that matters as working time left and a red / yellow / green mark,
//! paged and sortable both ways. htmx polls both parts (as polls, which do not hold the
//! session open): the tabs every 15 s, the rows every 20 s, so new work appears and the time
//! left counts down without a reload.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use projections::WorkList;
use serde::Deserialize;

use super::session::{self, Session};
use super::{Layout, failure_page, render, working_span};
use crate::app::views::{DeadlineState, WorkListCounts};
use crate::app::{AppState, zh_time};

/// Rows per page.
const PER_PAGE: u32 = 20;

/// `?list=&page=&min_position=`.
#[derive(Deserialize)]
pub struct ListQuery {
    list: Option<String>,
    page: Option<u32>,
    /// The list from its other end (least urgent first).
    reverse: Option<bool>,
    /// Read your own writes (a page after a command links here with its position).
    min_position: Option<u64>,
}

/// One tab.
pub struct Tab {
    code: &'static str,
    label: &'static str,
    count: u64,
    capped: bool,
    current: bool,
}

/// The tab bar.
struct Tabs {
    current: &'static str,
    items: Vec<Tab>,
}

/// The tab bar alone: the fragment htmx polls.
#[derive(Template)]
#[template(path = "_tabs.html")]
struct TabsFragment {
    tabs: Tabs,
}

/// One row of a list.
pub struct Row {
    id: String,
    title: String,
    status_label: &'static str,
    /// `overdue`, `warning`, `in_time`, or empty without a deadline.
    mark: &'static str,
    /// 剩余 3工作小时 / 已超时 1工作小时.
    time_left: String,
    /// 时限 2026年12月8日 18:00.
    due: String,
    /// (class, label): 督办, 批示, 联办, 保密.
    flags: Vec<(&'static str, &'static str)>,
    accepted_at: String,
}

/// The list's rows and paging: the part of the page the rows' poll replaces.
struct Rows {
    /// This very page of the list (what the poll asks for again).
    link: String,
    list_label: &'static str,
    /// The same list in the other order.
    order_link: String,
    /// The order shown, on the deadline column's header.
    order_label: &'static str,
    rows: Vec<Row>,
    total: u64,
    page: u32,
    pages: u32,
    prev: Option<String>,
    next: Option<String>,
}

/// 我的待办.
#[derive(Template)]
#[template(path = "worklist.html")]
struct WorkListPage {
    layout: Layout,
    tabs: Tabs,
    rows: Rows,
}

/// The rows alone: the fragment htmx polls.
#[derive(Template)]
#[template(path = "_rows.html")]
struct RowsFragment {
    rows: Rows,
}

/// The element a request of htmx will replace (`HX-Target`).
fn htmx_target(headers: &HeaderMap) -> Option<&str> {
    session::is_htmx(headers)
        .then(|| headers.get("hx-target").and_then(|v| v.to_str().ok()))
        .flatten()
}

fn tabs(counts: &WorkListCounts, current: WorkList) -> Tabs {
    Tabs {
        current: current.code(),
        items: counts
            .counts
            .iter()
            .map(|c| Tab {
                code: c.list.code(),
                label: c.list.label(),
                count: c.count,
                capped: c.capped,
                current: c.list == current,
            })
            .collect(),
    }
}

/// `GET /`: the page; for htmx (the poll), only the tabs.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let actor = session.user.actor();
    let rows_only = htmx_target(&headers) == Some("rows");
    let asked = query.list.as_deref().and_then(WorkList::parse);
    // The rows' poll names its list and shows no tabs: it needs no counts.
    let counts = if rows_only && asked.is_some() {
        None
    } else {
        match state
            .work_list_counts(&actor, None, query.min_position)
            .await
        {
            Ok(counts) => Some(counts),
            Err(failure) => {
                return failure_page(Layout::new(&state, &session, "我的待办"), failure);
            }
        }
    };
    // The list asked for, else the first that holds work, else 待签收.
    let list = asked
        .or_else(|| {
            counts
                .as_ref()
                .and_then(|counts| counts.counts.iter().find(|c| c.count > 0))
                .map(|c| c.list)
        })
        .unwrap_or(WorkList::ToReceive);
    if session::is_htmx(&headers)
        && !rows_only
        && let Some(counts) = &counts
    {
        let tabs = tabs(counts, list);
        return render(StatusCode::OK, &TabsFragment { tabs });
    }
    let page_no = query.page.unwrap_or(1).clamp(1, 500);
    let reverse = query.reverse.unwrap_or(false);
    let rows = match state
        .work_list_in(&actor, list, None, reverse, (page_no, PER_PAGE), None)
        .await
    {
        Ok(rows) => rows,
        Err(failure) => return failure_page(Layout::new(&state, &session, "我的待办"), failure),
    };
    let now = state.now();
    let pages = u32::try_from(rows.total.div_ceil(u64::from(PER_PAGE)))
        .unwrap_or(u32::MAX)
        .max(1);
    let link = |p: u32| format!("/?list={}&page={p}&reverse={reverse}", list.code());
    let items = rows
        .items
        .iter()
        .map(|row| {
            let left = state.time_left(list, row, now);
            let (mark, time_left, due) = match left {
                None => ("", String::new(), String::new()),
                Some(left) => {
                    let span = working_span(left.working_minutes);
                    let (mark, text) = match left.state {
                        DeadlineState::Overdue => ("overdue", format!("已超时 {span}")),
                        DeadlineState::Warning => ("warning", format!("剩余 {span}")),
                        DeadlineState::InTime => ("in_time", format!("剩余 {span}")),
                    };
                    (mark, text, format!("时限 {}", zh_time(left.due)))
                }
            };
            let flags = [
                (row.supervised, "supervised", "督办"),
                (row.annotated, "annotated", "批示"),
                (row.joint, "joint", "联办"),
                (row.confidential, "confidential", "保密"),
            ]
            .into_iter()
            .filter(|(on, _, _)| *on)
            .map(|(_, class, label)| (class, label))
            .collect();
            Row {
                id: row.case_id.clone(),
                title: row.title.clone(),
                status_label: row.status_label,
                mark,
                time_left,
                due,
                flags,
                accepted_at: row.accepted_at.map(zh_time).unwrap_or_default(),
            }
        })
        .collect();
    let rows = Rows {
        link: link(page_no),
        list_label: list.label(),
        order_link: format!("/?list={}&reverse={}", list.code(), !reverse),
        order_label: if reverse {
            "时限 ↓（最宽松在前）"
        } else {
            "时限 ↑（最紧急在前）"
        },
        rows: items,
        total: rows.total,
        page: page_no,
        pages,
        prev: (page_no > 1).then(|| link(page_no - 1)),
        next: (page_no < pages).then(|| link(page_no + 1)),
    };
    match counts {
        Some(counts) if !rows_only => render(
            StatusCode::OK,
            &WorkListPage {
                layout: Layout::new(&state, &session, format!("我的待办 · {}", list.label())),
                tabs: tabs(&counts, list),
                rows,
            },
        ),
        _ => render(StatusCode::OK, &RowsFragment { rows }),
    }
}
