//! The KPI table (考核指标): each unit the viewer may see, with its name, its path and its
//! ranking among its peers, for a day, a week or a month.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use domain::org::UnitId;
use domain::roles::Actor;
use projections::Scope;
use projections::kpi::UnitKpi;

use super::{csv_field, pct};
use crate::app::failure::Failure;
use crate::app::{AppState, shanghai};

/// A KPI period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// One day.
    Day,
    /// Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl Period {
    /// `day`, `week` or `month`.
    pub fn parse(text: &str) -> Option<Period> {
        match text {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            _ => None,
        }
    }

    /// Its code.
    pub fn code(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The period `[from, to)` containing `date` (Shanghai days); `None` at the ends of the
    /// calendar.
    pub fn bounds(self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (start, end) = match self {
            Period::Day => (date, date.checked_add_days(Days::new(1))?),
            Period::Week => {
                let monday = date.checked_sub_days(Days::new(u64::from(
                    date.weekday().num_days_from_monday(),
                )))?;
                (monday, monday.checked_add_days(Days::new(7))?)
            }
            Period::Month => {
                let first = NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?;
                (first, first.checked_add_months(Months::new(1))?)
            }
        };
        let at = |d: NaiveDate| {
            shanghai()
                .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                .single()
                .map(|t| t.with_timezone(&Utc))
        };
        Some((at(start)?, at(end)?))
    }
}

/// One unit's row.
#[derive(Debug, Clone)]
pub struct KpiRow {
    /// Its figures and ranking.
    pub kpi: UnitKpi,
    /// Its name.
    pub unit_name: String,
    /// Its places below the city, e.g. `城关区 / 酒泉路街道 / 龙源社区 / 第一网格`.
    pub unit_path: String,
}

/// The KPIs of a period, ranked within peer groups.
#[derive(Debug, Clone)]
pub struct KpiTable {
    /// The period.
    pub period: Period,
    /// Its first instant.
    pub from: DateTime<Utc>,
    /// The instant after it.
    pub to: DateTime<Utc>,
    /// The units the viewer may see.
    pub units: Vec<KpiRow>,
    /// The read model's checkpoint when computed.
    pub position: u64,
}

impl KpiTable {
    /// CSV with Chinese headers, UTF-8 with a BOM for spreadsheet programs.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "\u{feff}比较组,排名,单位编号,单位名称,单位全称,接收量,按时签收率,办结量,按时办结率,回访量,满意率,解决率,重办率,平均办理时长(工作小时),综合得分\n",
        );
        for row in &self.units {
            let k = &row.kpi;
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(k.peer_group.as_ref().map_or("", |g| g.label.as_str())),
                k.rank.map(|r| r.to_string()).unwrap_or_default(),
                csv_field(&k.unit_id),
                csv_field(&row.unit_name),
                csv_field(&row.unit_path),
                k.received,
                pct(k.on_time_receive_rate()),
                k.completed,
                pct(k.on_time_completion_rate()),
                k.called_back,
                pct(k.satisfaction_rate()),
                pct(k.resolution_rate()),
                pct(k.reopen_rate()),
                k.avg_handling_hours()
                    .map(|h| format!("{h:.2}"))
                    .unwrap_or_default(),
                k.score
                    .map(|s| format!("{:.1}", s * 100.0))
                    .unwrap_or_default(),
            ));
        }
        out
    }
}

impl AppState {
    /// 考核指标: the KPIs of the `period` containing `date` (default today), of every unit
    /// within `viewer`'s scope (or only `unit_id`), ranked like with like.
    ///
    /// # Errors
    /// 400 for a date at the ends of the calendar; 503 behind `min_position`; read-model
    /// failures.
    pub async fn kpi_table(
        &self,
        viewer: &Actor,
        period: Period,
        date: Option<NaiveDate>,
        unit_id: Option<&str>,
        min_position: Option<u64>,
    ) -> Result<KpiTable, Failure> {
        let date = date.unwrap_or_else(|| self.now().with_timezone(&shanghai()).date_naive());
        let (from, to) = period.bounds(date).ok_or_else(|| {
            Failure::bad_request(
                "invalid_query",
                format!("no {} around `{date}`", period.code()),
            )
        })?;
        self.caught_up(min_position).await?;
        let scope = Scope::of(viewer, &self.org());
        let (calendars, org, weights) = (
            crate::rules_log::InForce(self.rules.clone()),
            self.org().clone(),
            self.kpi_weights,
        );
        let (rows, position) = self
            .read
            .query(move |queries| {
                let rows = queries.kpis(from, to, &weights, &calendars, &org)?;
                Ok((rows, queries.checkpoint()?))
            })
            .await
            .map_err(Failure::Internal)?;
        let units = rows
            .into_iter()
            .filter(|k| scope.covers(&self.org(), &k.unit_id))
            .filter(|k| unit_id.is_none_or(|u| u == k.unit_id))
            .map(|kpi| {
                let id = UnitId::new(kpi.unit_id.clone());
                KpiRow {
                    unit_name: self
                        .org()
                        .get(&id)
                        .map(|u| u.name.clone())
                        .unwrap_or_default(),
                    unit_path: self.org().path_label(&id),
                    kpi,
                }
            })
            .collect();
        Ok(KpiTable {
            period,
            from,
            to,
            units,
            position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::rfc3339;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn a_period_runs_from_a_shanghai_midnight_to_the_next() {
        let (from, to) = Period::Week.bounds(day("2026-12-02")).expect("week");
        assert_eq!(rfc3339(from), "2026-11-30T00:00:00+08:00");
        assert_eq!(rfc3339(to), "2026-12-07T00:00:00+08:00");
        let (from, to) = Period::Month.bounds(day("2026-12-31")).expect("month");
        assert_eq!(rfc3339(from), "2026-12-01T00:00:00+08:00");
        assert_eq!(rfc3339(to), "2027-01-01T00:00:00+08:00");
        let (from, to) = Period::Day.bounds(day("2026-12-02")).expect("day");
        assert_eq!((to - from).num_hours(), 24);
        assert_eq!(Period::parse("year"), None);
        assert_eq!(Period::Day.bounds(NaiveDate::MAX), None);
    }
}
