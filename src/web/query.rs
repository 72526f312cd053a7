//! 综合查询 at `/query`: every condition of `GET /api/v1/cases` (read by the same
//! `CaseConditions`) plus fuzzy text, a page of results (scoped and masked by
//! `AppState::case_list`), and the whole result as CSV or `.xlsx`
//! (`/query/export.csv`, `/query/export.xlsx`, `AppState::case_export`).
//!
//! The form sends its fields as they are: empty ones are dropped, and the two dates
//! (`from`, `to`, days in Asia/Shanghai) become `created_from` and `created_to`; everything
//! else is the API's own parameter.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use domain::Status;
use domain::kinds::{Category, Kind, Urgency};
use domain::org::{OrgTree, UnitKind};
use serde::Serialize;

use super::session::{self, Session};
use super::{Layout, failure_page, render};
use crate::app::failure::Failure;
use crate::app::params::query_date;
use crate::app::views::{CaseConditions, CaseQuery, MAX_OFFSET, TextMatch};
use crate::app::{AppState, zh_time};

/// The form's fields: the API's parameters, the dates in place of `created_from`/`created_to`.
const FIELDS: &[&str] = &[
    "q",
    "status",
    "overdue",
    "category",
    "kind",
    "urgency",
    "district",
    "unit_id",
    "subtree",
    "caller_phone",
    "from",
    "to",
    "sort",
    "per_page",
    "min_position",
];

/// One option of a select.
pub struct Opt {
    code: String,
    label: &'static str,
    selected: bool,
}

/// A district of the select (owned label).
pub struct District {
    id: String,
    name: String,
    selected: bool,
}

/// The form as filled in.
#[derive(Default)]
pub struct Form {
    q: String,
    unit_id: String,
    subtree: bool,
    caller_phone: String,
    from: String,
    to: String,
    /// Read your own writes: kept while the form is used again.
    min_position: String,
    /// The unit `unit_id` names, with its places (城关区 / 酒泉路街道), if it names one.
    unit_label: String,
}

/// One row of the results.
pub struct Row {
    id: String,
    title: String,
    status_label: &'static str,
    overdue: bool,
    category: &'static str,
    urgency: &'static str,
    district: String,
    caller: String,
    accepted_at: String,
    flags: Vec<(&'static str, &'static str)>,
}

/// The results under the form.
pub struct Results {
    rows: Vec<Row>,
    total: u64,
    /// More than 10,000 match (counted as 10,000).
    capped: bool,
    page: u32,
    pages: u32,
    prev: Option<String>,
    next: Option<String>,
    /// A note on how the text was matched (the index is being built, a case number).
    note: Option<&'static str>,
    export_csv: String,
    export_xlsx: String,
    /// More match than an export holds: it holds the first 10,000.
    export_capped: bool,
}

/// 综合查询.
#[derive(Template)]
#[template(path = "query.html")]
struct QueryPage {
    layout: Layout,
    form: Form,
    statuses: Vec<Opt>,
    overdue: Vec<Opt>,
    categories: Vec<Opt>,
    kinds: Vec<Opt>,
    urgencies: Vec<Opt>,
    sorts: Vec<Opt>,
    districts: Vec<District>,
    /// A refusal of the conditions, in Chinese.
    error: Option<String>,
    results: Option<Results>,
}

/// The results alone: what htmx swaps in.
#[derive(Template)]
#[template(path = "_query_results.html")]
struct ResultsFragment {
    error: Option<String>,
    results: Option<Results>,
}

/// The wire code of an enum value (`help_request`).
fn code_of<T: Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The conditions the form asks for, and its non-empty fields (without `page`) for the
/// links that keep them.
struct Asked {
    pairs: Vec<(String, String)>,
    page: Option<u32>,
}

impl Asked {
    /// Reads the query string: known fields, empty ones dropped.
    fn read(raw: Option<&str>) -> Result<Asked, String> {
        let all: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|_| "查询条件格式不正确".to_owned())?;
        let mut pairs = Vec::new();
        let mut page = None;
        for (name, value) in all {
            let value = value.trim().to_owned();
            if value.is_empty() {
                continue;
            }
            if name == "page" {
                page = Some(value.parse().map_err(|_| "页码不正确".to_owned())?);
            } else if FIELDS.contains(&name.as_str()) {
                pairs.push((name, value));
            } else {
                return Err(format!("不认识的查询条件「{name}」"));
            }
        }
        Ok(Asked { pairs, page })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The API's conditions: the dates become the start of `from` and the end of `to`
    /// (exclusive: the next day's start), in Asia/Shanghai.
    fn conditions(&self) -> Result<CaseConditions, String> {
        let day = |name: &str, label: &str| -> Result<Option<NaiveDate>, String> {
            query_date(name, self.get(name)).map_err(|_| format!("{label}须为有效日期（年-月-日）"))
        };
        let start = |d: NaiveDate| format!("{}T00:00:00+08:00", d.format("%Y-%m-%d"));
        let mut api: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(n, _)| n != "from" && n != "to")
            .cloned()
            .collect();
        if let Some(from) = day("from", "起始日期")? {
            api.push(("created_from".into(), start(from)));
        }
        if let Some(to) = day("to", "截止日期")? {
            api.push(("created_to".into(), start(to + Duration::days(1))));
        }
        if let Some(page) = self.page {
            api.push(("page".into(), page.to_string()));
        }
        let encoded = serde_urlencoded::to_string(&api).map_err(|_| "查询条件格式不正确")?;
        serde_urlencoded::from_str(&encoded).map_err(|_| "查询条件的取值不正确".to_owned())
    }

    /// `path?` with the kept fields (and `page`, if given).
    fn link(&self, path: &str, page: Option<u32>) -> String {
        let mut pairs = self.pairs.clone();
        if let Some(page) = page {
            pairs.push(("page".into(), page.to_string()));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }
}

fn opts<T: Copy + Serialize>(
    values: &[T],
    label: fn(T) -> &'static str,
    chosen: Option<&str>,
) -> Vec<Opt> {
    values
        .iter()
        .map(|&v| {
            let code = code_of(v);
            Opt {
                selected: chosen == Some(code.as_str()),
                label: label(v),
                code,
            }
        })
        .collect()
}

fn fixed_opts(values: &[(&'static str, &'static str)], chosen: Option<&str>) -> Vec<Opt> {
    values
        .iter()
        .map(|&(code, label)| Opt {
            code: code.to_owned(),
            label,
            selected: chosen == Some(code),
        })
        .collect()
}

fn status_label(status: Status) -> &'static str {
    match status {
        Status::Draft => "草稿",
        Status::Accepted => "已受理",
        Status::Transferred => "已转办（未接收）",
        Status::InProgress => "正在办理（已接收）",
        Status::Completed => "办结",
        Status::CalledBack => "已回访",
        Status::Archived => "已归档",
    }
}

fn page_of(state: &AppState, asked: &Asked, error: Option<String>) -> QueryPage {
    let districts = state
        .org()
        .units()
        .iter()
        .filter(|u| u.kind == UnitKind::DistrictCentre)
        .map(|u| District {
            selected: asked.get("district") == Some(u.id.as_str()),
            id: u.id.to_string(),
            name: OrgTree::place_name(u).to_owned(),
        })
        .collect();
    QueryPage {
        layout: Layout::anonymous("综合查询"),
        form: Form {
            q: asked.get("q").unwrap_or_default().to_owned(),
            unit_id: asked.get("unit_id").unwrap_or_default().to_owned(),
            subtree: asked.get("subtree") == Some("true"),
            caller_phone: asked.get("caller_phone").unwrap_or_default().to_owned(),
            from: asked.get("from").unwrap_or_default().to_owned(),
            to: asked.get("to").unwrap_or_default().to_owned(),
            min_position: asked.get("min_position").unwrap_or_default().to_owned(),
            unit_label: asked
                .get("unit_id")
                .map(domain::org::UnitId::new)
                .filter(|id| state.org().get(id).is_some())
                .map(|id| state.org().path_label(&id))
                .unwrap_or_default(),
        },
        statuses: opts(
            &[
                Status::Draft,
                Status::Accepted,
                Status::Transferred,
                Status::InProgress,
                Status::Completed,
                Status::CalledBack,
                Status::Archived,
            ],
            status_label,
            asked.get("status"),
        ),
        overdue: fixed_opts(
            &[("true", "已逾期"), ("false", "未逾期")],
            asked.get("overdue"),
        ),
        categories: opts(
            &[
                Category::Inquiry,
                Category::HelpRequest,
                Category::Complaint,
                Category::Report,
                Category::Proposal,
                Category::Praise,
            ],
            Category::label,
            asked.get("category"),
        ),
        kinds: opts(
            &[
                Kind::Immediate,
                Kind::Escalated,
                Kind::Promised,
                Kind::Suggestion,
                Kind::Supplementary,
            ],
            Kind::label,
            asked.get("kind"),
        ),
        urgencies: opts(
            &[Urgency::Normal, Urgency::Urgent, Urgency::Critical],
            Urgency::label,
            asked.get("urgency"),
        ),
        sorts: fixed_opts(
            &[
                ("relevance", "相关度"),
                ("-created_at", "受理时间（新→旧）"),
                ("created_at", "受理时间（旧→新）"),
                ("complete_due", "办结时限"),
                ("case_id", "工单编号"),
            ],
            asked.get("sort"),
        ),
        districts,
        error,
        results: None,
    }
}

/// The label of a code of the domain's enums (`help_request` → 求助).
fn label_of<T: serde::de::DeserializeOwned>(
    code: Option<&str>,
    label: fn(T) -> &'static str,
) -> &'static str {
    code.and_then(|c| serde_json::from_value::<T>(serde_json::Value::String(c.to_owned())).ok())
        .map_or("—", label)
}

async fn results(
    state: &AppState,
    session: &Session,
    asked: &Asked,
    query: CaseQuery,
) -> Result<Results, Failure> {
    let per_page = query.filter.per_page.max(1);
    let found = state.case_list(&session.user.actor(), query).await?;
    let page = found.page;
    let most_pages = u32::try_from(MAX_OFFSET.div_ceil(u64::from(per_page))).unwrap_or(u32::MAX);
    let pages = u32::try_from(page.total.div_ceil(u64::from(per_page)))
        .unwrap_or(u32::MAX)
        .clamp(1, most_pages);
    let org = state.org();
    let rows = page
        .items
        .iter()
        .map(|row| Row {
            id: row.case_id.clone(),
            title: row.title.clone(),
            status_label: row.status_label,
            overdue: row.overdue.is_some(),
            category: label_of::<Category>(row.category.as_deref(), Category::label),
            urgency: label_of::<Urgency>(row.urgency.as_deref(), Urgency::label),
            district: row
                .district_id
                .as_deref()
                .and_then(|d| {
                    org.get(&domain::org::UnitId::new(d))
                        .map(|u| OrgTree::place_name(u).to_owned())
                })
                .unwrap_or_else(|| "—".to_owned()),
            caller: if row.caller_name.is_empty() && row.caller_phone.is_empty() {
                "—".to_owned()
            } else {
                format!("{} {}", row.caller_name, row.caller_phone)
            },
            accepted_at: row.accepted_at.map(zh_time).unwrap_or_default(),
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
        })
        .collect();
    let page_no = page.page;
    Ok(Results {
        rows,
        total: page.total,
        capped: page.total_capped,
        page: page_no,
        pages,
        prev: (page_no > 1).then(|| asked.link("/query", Some(page_no - 1))),
        next: (page_no < pages).then(|| asked.link("/query", Some(page_no + 1))),
        note: match found.text_match {
            Some(TextMatch::Substring) => Some("全文索引正在建立，暂按原文逐字匹配"),
            Some(TextMatch::CaseId) => Some("按工单编号查找"),
            _ => None,
        },
        export_capped: page.total_capped || page.total > MAX_OFFSET,
        export_csv: asked.link("/query/export.csv", None),
        export_xlsx: asked.link("/query/export.xlsx", None),
    })
}

/// `GET /query`: the form and a page of results; for htmx (the form, the paging links) the
/// results alone.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let fragment =
        session::is_htmx(&headers) && headers.get("hx-history-restore-request").is_none();
    let asked = Asked::read(raw.as_deref());
    let (asked, mut error) = match asked {
        Ok(asked) => (asked, None),
        Err(text) => (
            Asked {
                pairs: Vec::new(),
                page: None,
            },
            Some(text),
        ),
    };
    let mut found = None;
    let mut status = StatusCode::OK;
    if error.is_none() {
        let query = asked
            .conditions()
            .and_then(|c| c.into_query().map_err(|f| f.describe().title.into_owned()));
        match query {
            Err(text) => error = Some(text),
            Ok(query) => match results(&state, &session, &asked, query).await {
                Ok(r) => found = Some(r),
                Err(Failure::BadRequest { .. }) => {
                    error = Some("查询条件不正确：页码超出范围，请缩小查询条件".to_owned());
                }
                Err(failure) => {
                    return failure_page(Layout::new(&state, &session, "综合查询"), failure);
                }
            },
        }
    }
    if error.is_some() {
        status = StatusCode::BAD_REQUEST;
    }
    if fragment {
        return render(
            status,
            &ResultsFragment {
                error,
                results: found,
            },
        );
    }
    let mut page = page_of(&state, &asked, error);
    page.layout = Layout::new(&state, &session, "综合查询");
    page.results = found;
    render(status, &page)
}

/// Which file an export writes.
#[derive(Clone, Copy)]
enum Format {
    Csv,
    Xlsx,
}

/// `GET /query/export.csv`: the whole result as CSV for Excel.
pub async fn export_csv(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Response {
    export(state, session, raw, Format::Csv).await
}

/// `GET /query/export.xlsx`: the whole result as an Excel workbook.
pub async fn export_xlsx(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Response {
    export(state, session, raw, Format::Xlsx).await
}

async fn export(
    state: AppState,
    session: Session,
    raw: Option<String>,
    format: Format,
) -> Response {
    let layout = || Layout::new(&state, &session, "导出");
    let query = Asked::read(raw.as_deref())
        .and_then(|asked| asked.conditions())
        .map_err(|text| Failure::bad_request("invalid_query", text))
        .and_then(|c| c.into_query());
    let query = match query {
        Ok(query) => query,
        Err(failure) => return failure_page(layout(), failure),
    };
    let export = match state.case_export(&session.user.actor(), query).await {
        Ok(export) => export,
        Err(failure) => return failure_page(layout(), failure),
    };
    let stamp = state
        .now()
        .with_timezone(&crate::app::shanghai())
        .format("%Y%m%d-%H%M");
    let (content_type, extension, body) = match format {
        Format::Csv => (
            "text/csv; charset=utf-8",
            "csv",
            export.to_csv().into_bytes(),
        ),
        Format::Xlsx => match export.to_xlsx() {
            Ok(bytes) => (
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx",
                bytes,
            ),
            Err(failure) => return failure_page(layout(), failure),
        },
    };
    // An ASCII name for every client, the Chinese one (RFC 6266 `filename*`) for those that
    // read it.
    let disposition = format!(
        "attachment; filename=\"cases-{stamp}.{extension}\"; filename*=UTF-8''%E5%B7%A5%E5%8D%95%E6%9F%A5%E8%AF%A2-{stamp}.{extension}"
    );
    let mut res = (StatusCode::OK, body).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&export.rows.len().to_string()) {
        headers.insert("x-export-rows", value);
    }
    if export.truncated {
        headers.insert("x-export-truncated", HeaderValue::from_static("true"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_dropped_and_dates_become_the_apis_times() {
        let asked = Asked::read(Some(
            "q=%E5%99%AA%E9%9F%B3&status=&from=2026-12-01&to=2026-12-01&page=2",
        ))
        .unwrap();
        assert_eq!(asked.get("status"), None);
        let query = asked.conditions().unwrap().into_query().unwrap();
        assert_eq!(query.text.as_deref(), Some("噪音"));
        assert_eq!(query.filter.page, 2);
        let from = query.filter.created_from.unwrap();
        let to = query.filter.created_to.unwrap();
        assert_eq!(to - from, Duration::days(1));
        assert_eq!(
            asked.link("/query", Some(3)),
            "/query?q=%E5%99%AA%E9%9F%B3&from=2026-12-01&to=2026-12-01&page=3"
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_in_chinese() {
        assert!(Asked::read(Some("colour=red")).is_err());
        let asked = Asked::read(Some("status=lost")).unwrap();
        assert!(asked.conditions().is_err());
        let asked = Asked::read(Some("from=yesterday")).unwrap();
        assert_eq!(
            asked.conditions().err().as_deref(),
            Some("起始日期须为有效日期（年-月-日）")
        );
    }
}
