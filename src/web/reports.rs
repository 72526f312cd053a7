//! 统计: the KPI table (考核指标) at `/reports/kpi?period=&date=&unit=` with its ranking and
//! its CSV (`/reports/kpi.csv`, UTF-8 with a BOM), and the daily report (日报) at
//! `/reports/daily?date=` with its CSV: `AppState::kpi_table` and `AppState::daily_report`
//! rendered (they check the role and the scope; the KPI table sums the `kpi_day` projection).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use super::{Layout, Session, failure_page, render};
use crate::app::failure::Failure;
use crate::app::views::{DailyReportView, KpiTable, Period, pct};
use crate::app::{AppState, shanghai};

/// `?period=&date=&unit=`.
#[derive(Deserialize)]
pub struct KpiQuery {
    /// `day`, `week` or `month` (default).
    period: Option<String>,
    /// A day in the period, YYYY-MM-DD (default today).
    date: Option<String>,
    /// One unit only.
    unit: Option<String>,
}

/// One row of the table, as shown.
pub struct KpiLine {
    group: String,
    rank: String,
    unit: String,
    path: String,
    received: u64,
    on_time_receive: String,
    completed: u64,
    on_time_completion: String,
    called_back: u64,
    satisfaction: String,
    resolution: String,
    reopen: String,
    hours: String,
    score: String,
}

/// 考核指标.
#[derive(Template)]
#[template(path = "kpi.html")]
struct KpiPage {
    layout: Layout,
    /// (code, label, chosen).
    periods: Vec<(&'static str, &'static str, bool)>,
    date: String,
    unit: String,
    span: String,
    lines: Vec<KpiLine>,
    csv: String,
}

fn bad_date(text: &str) -> Failure {
    Failure::bad_request(
        "invalid_query",
        format!("`date` must be YYYY-MM-DD, got `{text}`"),
    )
}

/// The period and day asked for.
fn period_and_date(query: &KpiQuery) -> Result<(Period, Option<NaiveDate>), Failure> {
    let period = match query.period.as_deref().filter(|p| !p.is_empty()) {
        None => Period::Month,
        Some(p) => Period::parse(p).ok_or_else(|| {
            Failure::bad_request(
                "invalid_query",
                format!("`period` must be day, week or month, got `{p}`"),
            )
        })?,
    };
    let date = match query.date.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| bad_date(d))?),
    };
    Ok((period, date))
}

async fn table(state: &AppState, session: &Session, query: &KpiQuery) -> Result<KpiTable, Failure> {
    let (period, date) = period_and_date(query)?;
    let unit = query.unit.as_deref().filter(|u| !u.is_empty());
    state
        .kpi_table(&session.user.actor(), period, date, unit, None)
        .await
}

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&shanghai())
        .format("%Y年%-m月%-d日")
        .to_string()
}

/// `GET /reports/kpi`.
pub async fn kpi(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<KpiQuery>,
) -> Response {
    let layout = || Layout::new(&state, &session, "考核指标");
    let table = match table(&state, &session, &query).await {
        Ok(table) => table,
        Err(failure) => return failure_page(layout(), failure),
    };
    let date = table.from.with_timezone(&shanghai()).date_naive();
    let last = (table.to - chrono::Duration::days(1)).with_timezone(&shanghai());
    let unit = query.unit.clone().unwrap_or_default();
    let csv = format!(
        "/reports/kpi.csv?period={}&date={date}{}",
        table.period.code(),
        if unit.is_empty() {
            String::new()
        } else {
            format!("&unit={unit}")
        }
    );
    let lines = table
        .units
        .iter()
        .map(|row| {
            let k = &row.kpi;
            KpiLine {
                group: k
                    .peer_group
                    .as_ref()
                    .map(|g| g.label.clone())
                    .unwrap_or_default(),
                rank: k
                    .rank
                    .map(|r| format!("{r} / {}", k.ranked_among))
                    .unwrap_or_else(|| "—".to_owned()),
                unit: row.unit_name.clone(),
                path: row.unit_path.clone(),
                received: k.received,
                on_time_receive: pct(k.on_time_receive_rate()),
                completed: k.completed,
                on_time_completion: pct(k.on_time_completion_rate()),
                called_back: k.called_back,
                satisfaction: pct(k.satisfaction_rate()),
                resolution: pct(k.resolution_rate()),
                reopen: pct(k.reopen_rate()),
                hours: k
                    .avg_handling_hours()
                    .map(|h| {
                        format!(
                            "{h:.1}{}",
                            if k.handling_provisional {
                                "（暂估）"
                            } else {
                                ""
                            }
                        )
                    })
                    .unwrap_or_default(),
                score: k
                    .score
                    .map(|s| format!("{:.1}", s * 100.0))
                    .unwrap_or_default(),
            }
        })
        .collect();
    render(
        StatusCode::OK,
        &KpiPage {
            layout: layout(),
            periods: [
                (Period::Day, "日"),
                (Period::Week, "周"),
                (Period::Month, "月"),
            ]
            .into_iter()
            .map(|(p, label)| (p.code(), label, p == table.period))
            .collect(),
            date: date.format("%Y-%m-%d").to_string(),
            span: format!(
                "{} 至 {}",
                day(table.from),
                day(last.with_timezone(&chrono::Utc))
            ),
            unit,
            lines,
            csv,
        },
    )
}

/// `GET /reports/kpi.csv`: the same table as CSV (UTF-8 with a BOM, Chinese headers).
pub async fn kpi_csv(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<KpiQuery>,
) -> Response {
    match table(&state, &session, &query).await {
        Ok(table) => {
            let name = format!(
                "attachment; filename=\"kpi-{}-{}.csv\"",
                table.period.code(),
                table.from.with_timezone(&shanghai()).format("%Y-%m-%d")
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, name),
                ],
                table.to_csv(),
            )
                .into_response()
        }
        Err(failure) => failure_page(Layout::new(&state, &session, "考核指标"), failure),
    }
}

/// `?date=`.
#[derive(Deserialize)]
pub struct DailyQuery {
    /// The day, YYYY-MM-DD (default: the last working day before today).
    date: Option<String>,
}

/// One row of the daily report, as shown.
pub struct DailyLine {
    name: String,
    received: u64,
    completed: u64,
    completed_late: u64,
    overdue_not_received: u64,
    overdue_in_progress: u64,
    called_back: u64,
    satisfied: u64,
    rate: String,
    total: bool,
}

/// 日报.
#[derive(Template)]
#[template(path = "report_daily.html")]
struct DailyPage {
    layout: Layout,
    date: String,
    working_day: bool,
    lines: Vec<DailyLine>,
}

async fn daily_view(
    state: &AppState,
    session: &Session,
    query: &DailyQuery,
) -> Result<DailyReportView, Failure> {
    let date = match query.date.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| bad_date(d))?),
    };
    state.daily_report(&session.user.actor(), date, None).await
}

/// `GET /reports/daily`.
pub async fn daily(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<DailyQuery>,
) -> Response {
    match daily_view(&state, &session, &query).await {
        Ok(report) => {
            let line = |r: &crate::app::views::DailyReportRow, total| DailyLine {
                name: r.unit_name.clone(),
                received: r.received,
                completed: r.completed,
                completed_late: r.completed_late,
                overdue_not_received: r.overdue_not_received,
                overdue_in_progress: r.overdue_in_progress,
                called_back: r.called_back,
                satisfied: r.satisfied,
                rate: pct(r.satisfaction_rate),
                total,
            };
            let mut lines: Vec<DailyLine> = report.units.iter().map(|r| line(r, false)).collect();
            lines.push(line(&report.total, true));
            render(
                StatusCode::OK,
                &DailyPage {
                    layout: Layout::new(&state, &session, format!("日报 {}", report.date())),
                    date: report.date().to_owned(),
                    working_day: report.working_day,
                    lines,
                },
            )
        }
        Err(failure) => failure_page(Layout::new(&state, &session, "日报"), failure),
    }
}

/// `GET /reports/daily.csv`.
pub async fn daily_csv(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<DailyQuery>,
) -> Response {
    match daily_view(&state, &session, &query).await {
        Ok(report) => {
            let name = format!("attachment; filename=\"daily-{}.csv\"", report.date());
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, name),
                ],
                report.to_csv(),
            )
                .into_response()
        }
        Err(failure) => failure_page(Layout::new(&state, &session, "日报"), failure),
    }
}
