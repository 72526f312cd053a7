//! Read-model queries: `GET /api/v1/cases` (combined conditions, citizen history) and
//! `GET /api/v1/worklist` (待办) and `GET /api/v1/kpis` (考核指标), answered from the read database and scoped to the caller.

use axum::Json;
use axum::extract::State;
use domain::case::Overdue;
use projections::row::status_code;
use projections::{Page, WorkList};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::{ApiQuery, Caller, paging, query_date};
use super::{AppState, ts};
use crate::app::views::{CaseConditions, DEFAULT_PER_PAGE, KpiTable, MAX_PER_PAGE, Period};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_cases))
        .routes(routes!(work_list))
        .routes(routes!(work_list_counts))
        .routes(routes!(kpis))
}

/// One case in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseListItem {
    id: String,
    version: u64,
    /// draft, accepted, transferred, in_progress, completed, called_back, archived.
    status: String,
    /// The Chinese label now, with the overdue variants.
    status_label: String,
    overdue: bool,
    /// not_received, in_progress, completed.
    overdue_kind: Option<String>,
    category: Option<String>,
    kind: Option<String>,
    urgency: Option<String>,
    title: String,
    address: String,
    location_unit_id: Option<String>,
    district_id: Option<String>,
    accepting_unit_id: Option<String>,
    /// Units holding the case now.
    holder_unit_ids: Vec<String>,
    created_by: String,
    created_at: Option<String>,
    accepted_at: Option<String>,
    completed_at: Option<String>,
    /// Earliest receive-by of a holder not yet received.
    receive_due: Option<String>,
    /// Earliest complete-by of a holder.
    complete_due: Option<String>,
    caller_name: String,
    caller_phone: String,
    /// True when the caller's identity is masked for this viewer.
    identity_masked: bool,
    confidential: bool,
    /// 督办: the efficiency office has pressed on it.
    supervised: bool,
    /// 批示: a leader has written an instruction on it.
    annotated: bool,
    /// 到期预警: a holder was warned of a deadline that still runs.
    warned: bool,
    /// 联办件: out with a lead and co-handlers at once.
    joint: bool,
    /// In `transferred_by_me`: whether the caller's unit may still recall (追回).
    #[serde(skip_serializing_if = "Option::is_none")]
    recallable: Option<bool>,
    /// In `to_decide`: the requests waiting for the caller's unit, `return` (退回申请) and/or
    /// `extension` (延期申请).
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<Vec<String>>,
}

/// A page of cases.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseList {
    items: Vec<CaseListItem>,
    /// Matching cases over all pages: every one with `q`, at most 10,000 without.
    total: u64,
    /// More than 10,000 cases match a query without `q`; `total` is then 10,000.
    total_capped: bool,
    page: u32,
    per_page: u32,
    /// The global position the read model had applied when answering.
    position: u64,
    /// With `q`, how the text was matched: `segmented` (the case index: whole words,
    /// synonyms, ranked by relevance, `total` exact) or, while that index is still being
    /// built after a start, `substring` (the read model: `q` as one substring of the title,
    /// content or address, newest first, `total` capped at 10,000 like any list); `case_id`
    /// when `q` is a case number (that case, if the caller may see it).
    #[serde(skip_serializing_if = "Option::is_none")]
    text_match: Option<&'static str>,
}

/// Turns a page of the view layer (callers masked there, DESIGN.md rule 12) into its wire
/// shape.
fn to_wire(page: Page) -> CaseList {
    let mut items = Vec::with_capacity(page.items.len());
    for c in page.items {
        items.push(CaseListItem {
            status: status_code(c.status).to_owned(),
            status_label: c.status_label.to_owned(),
            overdue: c.overdue.is_some(),
            overdue_kind: c.overdue.map(|o| {
                match o {
                    Overdue::NotReceived => "not_received",
                    Overdue::InProgress => "in_progress",
                    Overdue::Completed => "completed",
                }
                .to_owned()
            }),
            caller_name: c.caller_name,
            caller_phone: c.caller_phone,
            identity_masked: true,
            id: c.case_id,
            version: c.version,
            category: c.category,
            kind: c.kind,
            urgency: c.urgency,
            title: c.title,
            address: c.address,
            location_unit_id: c.location_unit_id,
            district_id: c.district_id,
            accepting_unit_id: c.accepting_unit_id,
            holder_unit_ids: c.holder_unit_ids,
            created_by: c.created_by,
            created_at: c.created_at.map(ts),
            accepted_at: c.accepted_at.map(ts),
            completed_at: c.completed_at.map(ts),
            receive_due: c.receive_due.map(ts),
            complete_due: c.complete_due.map(ts),
            confidential: c.confidential,
            supervised: c.supervised,
            annotated: c.annotated,
            warned: c.warned,
            joint: c.joint,
            recallable: c.recallable,
            requests: c.requests,
        });
    }
    CaseList {
        items,
        total: page.total,
        total_capped: page.total_capped,
        page: page.page,
        per_page: page.per_page,
        position: page.position,
        text_match: None,
    }
}

/// 工单查询: cases matching every condition given, that the caller may see, newest first.
/// `caller_phone` alone gives the citizen's history.
#[utoipa::path(get, path = "/api/v1/cases", tag = "cases", params(CaseConditions),
    responses((status = 200, body = CaseList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 503, body = Problem)))]
async fn list_cases(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(conditions): ApiQuery<CaseConditions>,
) -> Result<Json<CaseList>, ApiError> {
    let query = conditions.into_query()?;
    let found = app.case_list(&user.actor(), query).await?;
    let mut list = to_wire(found.page);
    list.text_match = found.text_match.map(|m| m.code());
    Ok(Json(list))
}

/// Which work list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorkListQuery {
    /// drafts, to_transfer, to_receive, in_progress, due_soon, overdue, to_decide,
    /// to_call_back, transferred_by_me.
    list: String,
    /// For due_soon: the warning window in working hours (default 4).
    due_within_hours: Option<u32>,
    /// The list from its other end: the least urgent first (default false).
    reverse: Option<bool>,
    /// 1-based page, 1 to 10000 (default 1).
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
    /// Rows per page, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<u32>,
    /// Wait (up to 5 s) until the read model has applied this global position.
    min_position: Option<u64>,
}

/// 待办: the caller's work list (their unit's; for leaders also the units they oversee; for
/// the efficiency office every overdue case), most urgent first: to_receive by receive-by,
/// in_progress, due_soon, overdue and transferred_by_me by complete-by, to_call_back by
/// completion, to_decide by the requesting unit's complete-by, to_transfer (待转办: waiting at
/// the caller's centre to be sent on) longest waiting first, drafts newest first.
#[utoipa::path(get, path = "/api/v1/worklist", tag = "cases", params(WorkListQuery),
    responses((status = 200, body = CaseList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 503, body = Problem)))]
async fn work_list(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<WorkListQuery>,
) -> Result<Json<CaseList>, ApiError> {
    let list = WorkList::parse(&q.list).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            format!(
                "`list` must be drafts, to_transfer, to_receive, in_progress, due_soon, overdue, \
                 to_decide, to_call_back or transferred_by_me, got `{}`",
                q.list
            ),
        )
    })?;
    let paging = paging(q.page, q.per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    let page = app
        .work_list_in(
            &user.actor(),
            list,
            q.due_within_hours,
            q.reverse.unwrap_or(false),
            paging,
            q.min_position,
        )
        .await?;
    Ok(Json(to_wire(page)))
}

/// The work list counts' options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorkListCountsQuery {
    /// For due_soon: the warning window in working hours (default 4).
    due_within_hours: Option<u32>,
    /// Wait (up to 5 s) until the read model has applied this global position.
    min_position: Option<u64>,
}

/// The number of cases in each of the caller's work lists, each at most 10,000.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkListCounts {
    /// 草稿.
    drafts: u64,
    /// 待转办.
    to_transfer: u64,
    /// 待接收.
    to_receive: u64,
    /// 办理中.
    in_progress: u64,
    /// 即将到期.
    due_soon: u64,
    /// 已逾期.
    overdue: u64,
    /// 待审批.
    to_decide: u64,
    /// 待回访.
    to_call_back: u64,
    /// 我转办的.
    transferred_by_me: u64,
    /// The lists with more than 10,000 cases (counted as 10,000).
    capped: Vec<&'static str>,
    /// The global position the read model had applied when answering.
    position: u64,
}

/// 待办数量: how many cases each of the caller's work lists holds (the lists of
/// `GET /api/v1/worklist`, counted the same way), in one call cheap enough to poll.
#[utoipa::path(get, path = "/api/v1/worklist/counts", tag = "cases", params(WorkListCountsQuery),
    responses((status = 200, body = WorkListCounts), (status = 400, body = Problem), (status = 401, body = Problem), (status = 503, body = Problem)))]
async fn work_list_counts(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<WorkListCountsQuery>,
) -> Result<Json<WorkListCounts>, ApiError> {
    let found = app
        .work_list_counts(&user.actor(), q.due_within_hours, q.min_position)
        .await?;
    let mut out = WorkListCounts {
        drafts: 0,
        to_transfer: 0,
        to_receive: 0,
        in_progress: 0,
        due_soon: 0,
        overdue: 0,
        to_decide: 0,
        to_call_back: 0,
        transferred_by_me: 0,
        capped: Vec::new(),
        position: found.position,
    };
    for c in found.counts {
        let field = match c.list {
            WorkList::Drafts => &mut out.drafts,
            WorkList::ToTransfer => &mut out.to_transfer,
            WorkList::ToReceive => &mut out.to_receive,
            WorkList::InProgress => &mut out.in_progress,
            WorkList::DueSoon => &mut out.due_soon,
            WorkList::Overdue => &mut out.overdue,
            WorkList::ToDecide => &mut out.to_decide,
            WorkList::ToCallBack => &mut out.to_call_back,
            WorkList::TransferredByMe => &mut out.transferred_by_me,
        };
        *field = c.count;
        if c.capped {
            out.capped.push(c.list.code());
        }
    }
    Ok(Json(out))
}

/// Which KPIs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KpiQuery {
    /// day, week (Monday to Sunday) or month (default month).
    period: Option<String>,
    /// A date in the period, YYYY-MM-DD in Asia/Shanghai, in the years 2000 to 2100 (default
    /// today).
    date: Option<String>,
    /// Only this unit.
    unit_id: Option<String>,
    /// json (default) or csv.
    format: Option<String>,
    /// Wait (up to 5 s) until the read model has applied this global position.
    min_position: Option<u64>,
}

/// One unit's KPIs; rates are 0 to 1, null without data.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitKpiView {
    /// Place among the ranked units of its peer group (like with like: the city's bureaus,
    /// a district's departments and streets, a street's communities, a street's grids); null
    /// when not ranked (fewer than 5 rated cases in the period, no score, or a centre).
    rank: Option<u32>,
    /// How many units of its peer group are ranked.
    ranked_among: u32,
    /// The peer group, e.g. `城关区 区属部门和街道`; null for units never ranked.
    peer_group: Option<String>,
    unit_id: String,
    unit_name: String,
    /// The unit with its places below the city, e.g. `城关区 / 酒泉路街道 / 龙源社区 / 第一网格`.
    unit_path: String,
    /// 接收量: assignments given in the period.
    received: u64,
    /// 按时签收率.
    on_time_receive_rate: Option<f64>,
    /// 办结量.
    completed: u64,
    /// 按时办结率.
    on_time_completion_rate: Option<f64>,
    /// 回访量 (ratings excluded by upheld appeals not counted).
    called_back: u64,
    /// 满意率 (satisfied or basically satisfied).
    satisfaction_rate: Option<f64>,
    /// 解决率.
    resolution_rate: Option<f64>,
    /// 重办率.
    reopen_rate: Option<f64>,
    /// 平均办理时长: mean working hours from being given a case (转办) to completing it, over
    /// the assignments completed in the period; null without any.
    avg_handling_hours: Option<f64>,
    /// Some handling time runs through a year whose holiday notice is not in the calendar
    /// yet, so the average may change when it is added.
    avg_handling_hours_provisional: bool,
    /// Weighted score of the rates (`--kpi-weights`; by default receive 0.2, completion 0.3,
    /// satisfaction 0.3, resolution 0.2). The average handling time is not in the score; it
    /// breaks ties (faster first).
    score: Option<f64>,
}

/// KPIs of a period, ranked.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiReport {
    period: String,
    from: String,
    to: String,
    units: Vec<UnitKpiView>,
    /// The global position the read model had applied when answering.
    position: u64,
}

impl From<KpiTable> for KpiReport {
    fn from(table: KpiTable) -> Self {
        KpiReport {
            period: table.period.code().to_owned(),
            from: ts(table.from),
            to: ts(table.to),
            units: table
                .units
                .into_iter()
                .map(|row| {
                    let k = row.kpi;
                    UnitKpiView {
                        rank: k.rank,
                        ranked_among: k.ranked_among,
                        peer_group: k.peer_group.as_ref().map(|g| g.label.clone()),
                        unit_path: row.unit_path,
                        unit_name: row.unit_name,
                        received: k.received,
                        on_time_receive_rate: k.on_time_receive_rate(),
                        completed: k.completed,
                        on_time_completion_rate: k.on_time_completion_rate(),
                        called_back: k.called_back,
                        satisfaction_rate: k.satisfaction_rate(),
                        resolution_rate: k.resolution_rate(),
                        reopen_rate: k.reopen_rate(),
                        avg_handling_hours: k.avg_handling_hours(),
                        avg_handling_hours_provisional: k.handling_provisional,
                        score: k.score,
                        unit_id: k.unit_id,
                    }
                })
                .collect(),
            position: table.position,
        }
    }
}

/// 考核指标: KPIs per unit for a day, week or month, ranked by a weighted score; as JSON or
/// as CSV (`format=csv`, UTF-8 with BOM for spreadsheet programs). Units outside the caller's
/// scope are left out.
#[utoipa::path(get, path = "/api/v1/kpis", tag = "cases", params(KpiQuery),
    responses((status = 200, description = "the KPIs: JSON, or CSV with `format=csv`",
            content((KpiReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 503, body = Problem)))]
async fn kpis(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let period = match q.period.as_deref() {
        None => Period::Month,
        Some(p) => Period::parse(p).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("`period` must be day, week or month, got `{p}`"),
            )
        })?,
    };
    let date = query_date("date", q.date.as_deref())?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("`format` must be json or csv, got `{f}`"),
            ));
        }
    };
    let table = app
        .kpi_table(
            &user.actor(),
            period,
            date,
            q.unit_id.as_deref(),
            q.min_position,
        )
        .await?;
    if csv {
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            table.to_csv(),
        )
            .into_response());
    }
    Ok(Json(KpiReport::from(table)).into_response())
}
