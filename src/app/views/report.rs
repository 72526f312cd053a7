//! The daily report (日报) as a document: the shape the API answers and the morning job writes
//! to `data/reports/` (JSON and CSV), and its computation for a viewer.

use chrono::NaiveDate;
use domain::org::UnitId;
use domain::roles::{Actor, REPORT_READERS};
use projections::Scope;
use projections::report::{DailyFigures, DailyReport};
use serde::Serialize;
use utoipa::ToSchema;

use super::{csv_field, pct};
use crate::app::failure::Failure;
use crate::app::{App, AppState, rfc3339, shanghai};

/// One district (区/县, by its centre) or city bureau (局委办), or the total.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyReportRow {
    /// The district centre or the bureau; null for the total.
    pub unit_id: Option<String>,
    /// Its name; 合计 for the total.
    pub unit_name: String,
    /// 接收量: cases given (转办) to a unit of the district or bureau that day and not taken
    /// back by its end.
    pub received: u64,
    /// 办结量: cases a unit of it completed its share of that day.
    pub completed: u64,
    /// 逾期办结: of those, completed after the complete-by.
    pub completed_late: u64,
    /// 逾期未接收 at the end of the day: held, not signed for, past the receive-by.
    pub overdue_not_received: u64,
    /// 逾期正在办理 at the end of the day: held past the complete-by.
    pub overdue_in_progress: u64,
    /// 回访量: call-backs that day of cases it led (ratings excluded by an upheld appeal not
    /// counted).
    pub called_back: u64,
    /// 满意量: of those, satisfied or basically satisfied.
    pub satisfied: u64,
    /// 满意率, 0 to 1; null without call-backs.
    pub satisfaction_rate: Option<f64>,
}

/// 日报: one day's figures per district and bureau, overdue counted at the day's end (a
/// snapshot: asking again later gives the same figures).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyReportView {
    /// The day, YYYY-MM-DD (Asia/Shanghai).
    pub date: String,
    /// Whether it is a working day on the calendar.
    pub working_day: bool,
    /// The day's first instant.
    pub from: String,
    /// The day's end: what was overdue is counted at this instant.
    pub as_of: String,
    /// Every district, then every city bureau (those the caller may see), zeros included.
    pub units: Vec<DailyReportRow>,
    /// The rows together, each case counted once.
    pub total: DailyReportRow,
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
            working_day: app.calendar().is_working_day(report.date),
            from: rfc3339(report.from),
            as_of: rfc3339(report.to),
            units: report
                .units
                .iter()
                .map(|f| {
                    let name = app
                        .org()
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
                csv_field(row.unit_id.as_deref().unwrap_or_default()),
                csv_field(&row.unit_name),
                row.received,
                row.completed,
                row.completed_late,
                row.overdue_not_received,
                row.overdue_in_progress,
                row.called_back,
                row.satisfied,
                pct(row.satisfaction_rate),
            ));
        }
        out
    }
}

impl AppState {
    /// The daily report of `date` (default: the last working day before today, the day the
    /// morning job reports) with the rows `viewer` may see, overdue counted at the day's end.
    ///
    /// # Errors
    /// 403 for roles that do not read reports; 503 behind `min_position`; read-model failures.
    pub async fn daily_report(
        &self,
        viewer: &Actor,
        date: Option<NaiveDate>,
        min_position: Option<u64>,
    ) -> Result<DailyReportView, Failure> {
        if !viewer.may_read_daily_report() {
            return Err(Failure::role_not_allowed(
                "只有效能办、领导、值班长和管理员可以查看日报",
                "the daily report is for `supervisor`, `leader`, `shift_leader` and `admin`",
                &REPORT_READERS,
            ));
        }
        let date = date.unwrap_or_else(|| {
            let today = self.now().with_timezone(&shanghai()).date_naive();
            self.calendar().previous_working_day(today).unwrap_or(today)
        });
        self.caught_up(min_position).await?;
        let scope = Scope::of(viewer, &self.org());
        let org = self.org().clone();
        let now = self.now();
        let report = self
            .read
            .query(move |queries| {
                queries.daily_report(date, &org, &|group| scope.covers(&org, group), now)
            })
            .await
            .map_err(Failure::Internal)?;
        Ok(DailyReportView::of(&self.app, &report))
    }
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
