//! `GET /api/v1/reports/daily` (日报): the daily report of the efficiency office, computed from
//! the read database for any day, as JSON or CSV; and the shapes the daily-report job writes to
//! `data/reports/`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::org::UnitId;
use projections::Scope;
use projections::report::{DailyFigures, DailyReport};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::{ApiQuery, Caller};
use super::{AppState, ts};
use crate::app::App;
use crate::projection_runner::ReadSide;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(daily_report))
}

/// Which daily report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DailyReportQuery {
    /// The day, YYYY-MM-DD in Asia/Shanghai (default: the last working day before today, the
    /// day the morning job reports).
    date: Option<String>,
    /// json (default) or csv.
    format: Option<String>,
    /// Wait (up to 5 s) until the read model has applied this global position.
    min_position: Option<u64>,
}

/// One district (区/县, by its centre) or city bureau (局委办), or the total.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyReportRow {
    /// The district centre or the bureau; null for the total.
    unit_id: Option<String>,
    /// Its name; 合计 for the total.
    unit_name: String,
    /// 接收量: cases given (转办) to a unit of the district or bureau that day and not taken
    /// back by its end.
    received: u64,
    /// 办结量: cases a unit of it completed its share of that day.
    completed: u64,
    /// 逾期办结: of those, completed after the complete-by.
    completed_late: u64,
    /// 逾期未接收 at the end of the day: held, not signed for, past the receive-by.
    overdue_not_received: u64,
    /// 逾期正在办理 at the end of the day: held past the complete-by.
    overdue_in_progress: u64,
    /// 回访量: call-backs that day of cases it led (ratings excluded by an upheld appeal not
    /// counted).
    called_back: u64,
    /// 满意量: of those, satisfied or basically satisfied.
    satisfied: u64,
    /// 满意率, 0 to 1; null without call-backs.
    satisfaction_rate: Option<f64>,
}

/// 日报: one day's figures per district and bureau, overdue counted at the day's end (a
/// snapshot: asking again later gives the same figures).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyReportView {
    /// The day, YYYY-MM-DD (Asia/Shanghai).
    date: String,
    /// Whether it is a working day on the calendar.
    working_day: bool,
    /// The day's first instant.
    from: String,
    /// The day's end: what was overdue is counted at this instant.
    as_of: String,
    /// Every district, then every city bureau (those the caller may see), zeros included.
    units: Vec<DailyReportRow>,
    /// The rows together, each case counted once.
    total: DailyReportRow,
}

impl DailyReportView {
    /// The wire shape of a computed report.
    pub fn of(app: &App, report: &DailyReport) -> Self {
        let row = |f: &DailyFigures, unit: Option<String>, name: String| DailyReportRow {
            unit_id: unit,
            unit_name: name,
            received: f.received,
            completed: f.completed,
            completed_late: f.completed_late,
            overdue_not_received: f.overdue_not_received,
            overdue_in_progress: f.overdue_in_progress,
            called_back: f.called_back,
            satisfied: f.satisfied,
            satisfaction_rate: f.satisfaction_rate(),
        };
        DailyReportView {
            date: report.date.format("%Y-%m-%d").to_string(),
            working_day: app.calendar.is_working_day(report.date),
            from: ts(report.from),
            as_of: ts(report.to),
            units: report
                .units
                .iter()
                .map(|f| {
                    let name = app
                        .org
                        .get(&UnitId::new(f.unit_id.clone()))
                        .map(|u| u.name.clone())
                        .unwrap_or_default();
                    row(f, Some(f.unit_id.clone()), name)
                })
                .collect(),
            total: row(&report.total, None, "合计".to_owned()),
        }
    }

    /// The day.
    pub fn date(&self) -> &str {
        &self.date
    }

    /// Pretty JSON with a final newline, as written to `data/reports/daily-YYYY-MM-DD.json`.
    pub fn to_json_file(&self) -> Vec<u8> {
        // A tree of strings, numbers and options always serialises.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// CSV with Chinese headers, UTF-8 with a BOM for spreadsheet programs; the total last.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "\u{feff}日期,单位编号,单位名称,接收量,办结量,逾期办结量,逾期未接收,逾期正在办理,回访量,满意量,满意率\n",
        );
        for row in self.units.iter().chain([&self.total]) {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                self.date,
                super::queries::csv_field(row.unit_id.as_deref().unwrap_or_default()),
                super::queries::csv_field(&row.unit_name),
                row.received,
                row.completed,
                row.completed_late,
                row.overdue_not_received,
                row.overdue_in_progress,
                row.called_back,
                row.satisfied,
                super::queries::pct(row.satisfaction_rate),
            ));
        }
        out
    }
}

/// 日报: per district (区/县) and city bureau (局委办), for one day: cases given, completed,
/// completed late, overdue at the day's end (逾期未接收, 逾期正在办理) and call-back
/// satisfaction; computed from the read database, so any day can be asked for. JSON, or CSV
/// with Chinese headers (`format=csv`). For the efficiency office, leaders, shift leaders and
/// admins; rows outside the caller's scope are left out.
#[utoipa::path(get, path = "/api/v1/reports/daily", tag = "reports", params(DailyReportQuery),
    responses((status = 200, description = "the report: JSON, or CSV with `format=csv` (an attachment `daily-YYYY-MM-DD.csv`)",
            content((DailyReportView = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)))]
async fn daily_report(
    State(app): State<AppState>,
    State(read): State<Arc<ReadSide>>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<DailyReportQuery>,
) -> Result<Response, ApiError> {
    let actor = user.actor();
    if !actor.may_read_daily_report() {
        return Err(ApiError::role_not_allowed(
            "只有效能办、领导、值班长和管理员可以查看日报",
            "the daily report is for `supervisor`, `leader`, `shift_leader` and `admin`",
            &domain::roles::REPORT_READERS,
        ));
    }
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
    let date = match q.date.as_deref() {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("`date` must be YYYY-MM-DD, got `{d}`"),
            )
        })?,
        None => {
            let today = app
                .now()
                .with_timezone(&crate::app::shanghai())
                .date_naive();
            app.calendar.previous_working_day(today).unwrap_or(today)
        }
    };
    super::queries::caught_up(&read, q.min_position).await?;
    let scope = Scope::of(&actor, &app.org);
    let org = app.org.clone();
    let now = app.now();
    let report = read
        .query(move |queries| {
            let visible = |group: &str| match &scope {
                Scope::All => true,
                Scope::Limited { units, .. } => units
                    .iter()
                    .any(|u| org.is_within(&UnitId::new(group), &UnitId::new(u.clone()))),
            };
            queries.daily_report(date, &org, &visible, now)
        })
        .await
        .map_err(ApiError::Internal)?;
    let view = DailyReportView::of(&app, &report);
    if csv {
        let disposition = format!("attachment; filename=\"daily-{}.csv\"", view.date);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            view.to_csv(),
        )
            .into_response());
    }
    Ok(Json(view).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> DailyReportView {
        let row = |unit: Option<&str>, name: &str, n: u64| DailyReportRow {
            unit_id: unit.map(str::to_owned),
            unit_name: name.into(),
            received: n,
            completed: n,
            completed_late: 0,
            overdue_not_received: 1,
            overdue_in_progress: 0,
            called_back: 2,
            satisfied: 1,
            satisfaction_rate: Some(0.5),
        };
        DailyReportView {
            date: "2025-03-10".into(),
            working_day: true,
            from: "2025-03-10T00:00:00+08:00".into(),
            as_of: "2025-03-11T00:00:00+08:00".into(),
            units: vec![row(Some("d.chengguan"), "城关区12345热线分中心", 2)],
            total: row(None, "合计", 2),
        }
    }

    #[test]
    fn the_csv_has_chinese_headers_one_line_per_row_and_the_total_last() {
        let csv = view().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines,
            [
                "\u{feff}日期,单位编号,单位名称,接收量,办结量,逾期办结量,逾期未接收,逾期正在办理,回访量,满意量,满意率",
                "2025-03-10,d.chengguan,城关区12345热线分中心,2,2,0,1,0,2,1,50.0%",
                "2025-03-10,,合计,2,2,0,1,0,2,1,50.0%",
            ]
        );
    }

    #[test]
    fn the_json_file_is_pretty_and_ends_with_a_newline() {
        let bytes = view().to_json_file();
        assert_eq!(bytes.last(), Some(&b'\n'));
        let back: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(back["total"]["unit_id"], serde_json::Value::Null);
        assert_eq!(back["units"][0]["overdue_not_received"], 1);
    }
}
