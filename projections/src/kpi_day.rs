//! The KPI figures per unit and Shanghai day (`kpi_day`), kept as the assignments and
//! call-backs of each case change, so a period's KPIs are a sum over its days
//! ([`crate::Queries::kpis`]) instead of a scan of every assignment of the period.
//!
//! Each assignment counts on the day it was given (接收量, signed, signed on time) unless it
//! was recalled or cancelled, and on the day it was completed (办结量, on time, working time
//! from being given to completing, measured on the calendar when the completion is
//! projected); each call-back of a rated unit not excluded by an upheld appeal counts on its
//! day. When a case is written again, what its rows counted before is taken off and what
//! they count now is added ([`Contributions`]); a day of a unit that comes back to all
//! zeros is deleted, so live batches and a rebuild give the same rows.

use std::collections::BTreeMap;

use crate::calendars::Calendars;
use rusqlite::{Transaction, params};

use crate::ProjectionError;
use crate::row::CaseRow;

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;
/// Shanghai is UTC+8 all year (no daylight saving).
const SHANGHAI_US: i64 = 8 * 3_600_000_000;

/// The first instant (microseconds, UTC) of the Shanghai day holding `t`.
pub(crate) fn day_of(t: i64) -> i64 {
    (t + SHANGHAI_US).div_euclid(DAY_US) * DAY_US - SHANGHAI_US
}

/// Whether `t` is a Shanghai midnight (the bounds a sum over days can answer exactly).
pub(crate) fn is_day_start(t: i64) -> bool {
    day_of(t) == t
}

/// What one assignment row holds that the KPIs read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AssignmentFacts {
    unit_id: String,
    state: String,
    transferred_at: i64,
    receive_by: i64,
    received_at: Option<i64>,
    complete_by: i64,
    completed_at: Option<i64>,
}

/// What one call-back row holds that the KPIs read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallBackFacts {
    unit_id: Option<String>,
    at: i64,
    satisfied: bool,
    resolved: bool,
    reopened: bool,
    excluded: bool,
}

/// What a case's rows count in `kpi_day`: its assignments by number, its call-backs by
/// sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Contributions {
    assignments: BTreeMap<u32, AssignmentFacts>,
    callbacks: BTreeMap<u32, CallBackFacts>,
}

/// One unit's figures on one day (or summed over days).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DayFigures {
    pub received: i64,
    pub signed: i64,
    pub signed_on_time: i64,
    pub completed: i64,
    pub completed_on_time: i64,
    /// Working time from given to completed, microseconds (the times are), summed.
    pub handling_us: i64,
    /// Completed assignments whose working time is provisional.
    pub provisional: i64,
    pub called_back: i64,
    pub satisfied: i64,
    pub resolved: i64,
    pub reopened: i64,
}

impl DayFigures {
    fn add(&mut self, other: &DayFigures, sign: i64) {
        self.received += sign * other.received;
        self.signed += sign * other.signed;
        self.signed_on_time += sign * other.signed_on_time;
        self.completed += sign * other.completed;
        self.completed_on_time += sign * other.completed_on_time;
        self.handling_us += sign * other.handling_us;
        self.provisional += sign * other.provisional;
        self.called_back += sign * other.called_back;
        self.satisfied += sign * other.satisfied;
        self.resolved += sign * other.resolved;
        self.reopened += sign * other.reopened;
    }

    fn is_zero(&self) -> bool {
        *self == DayFigures::default()
    }
}

type Deltas = BTreeMap<(i64, String), DayFigures>;

impl AssignmentFacts {
    /// What it counts, added to `deltas` with `sign`.
    fn count(&self, calendar: &dyn Calendars, sign: i64, deltas: &mut Deltas) {
        if self.state != "recalled" && self.state != "cancelled" {
            let d = deltas
                .entry((day_of(self.transferred_at), self.unit_id.clone()))
                .or_default();
            let given = DayFigures {
                received: 1,
                signed: i64::from(self.received_at.is_some()),
                signed_on_time: i64::from(self.received_at.is_some_and(|r| r <= self.receive_by)),
                ..DayFigures::default()
            };
            d.add(&given, sign);
        }
        if self.state == "completed"
            && let Some(completed_at) = self.completed_at
        {
            let (Some(given), Some(completed)) = (
                chrono::DateTime::from_timestamp_micros(self.transferred_at),
                chrono::DateTime::from_timestamp_micros(completed_at),
            ) else {
                return;
            };
            let span = calendar.handling_time(given, completed);
            let done = DayFigures {
                completed: 1,
                completed_on_time: i64::from(completed_at <= self.complete_by),
                handling_us: span.duration.num_microseconds().unwrap_or(i64::MAX),
                provisional: i64::from(span.provisional),
                ..DayFigures::default()
            };
            deltas
                .entry((day_of(completed_at), self.unit_id.clone()))
                .or_default()
                .add(&done, sign);
        }
    }
}

impl CallBackFacts {
    fn count(&self, sign: i64, deltas: &mut Deltas) {
        let Some(unit) = &self.unit_id else {
            return;
        };
        if self.excluded {
            return;
        }
        let rated = DayFigures {
            called_back: 1,
            satisfied: i64::from(self.satisfied),
            resolved: i64::from(self.resolved),
            reopened: i64::from(self.reopened),
            ..DayFigures::default()
        };
        deltas
            .entry((day_of(self.at), unit.clone()))
            .or_default()
            .add(&rated, sign);
    }
}

impl Contributions {
    /// What `row`'s assignments and call-backs count.
    pub(crate) fn of(row: &CaseRow) -> Self {
        let micros = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
        Contributions {
            assignments: row
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.assignment_id,
                        AssignmentFacts {
                            unit_id: a.unit_id.clone(),
                            state: a.state.to_owned(),
                            transferred_at: micros(a.transferred_at),
                            receive_by: micros(a.receive_by),
                            received_at: a.received_at.map(micros),
                            complete_by: micros(a.complete_by),
                            completed_at: a.completed_at.map(micros),
                        },
                    )
                })
                .collect(),
            callbacks: row
                .callbacks
                .iter()
                .map(|c| {
                    (
                        c.seq,
                        CallBackFacts {
                            unit_id: c.unit_id.clone(),
                            at: micros(c.at),
                            satisfied: matches!(
                                c.satisfaction,
                                "satisfied" | "basically_satisfied"
                            ),
                            resolved: c.resolved,
                            reopened: c.reopened,
                            excluded: c.excluded,
                        },
                    )
                })
                .collect(),
        }
    }

    /// What the stored rows of `case_id` count (before they are rewritten), for a case whose
    /// earlier write the projector no longer remembers.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub(crate) fn stored(tx: &Transaction<'_>, case_id: &str) -> Result<Self, ProjectionError> {
        let mut out = Contributions::default();
        let mut stmt = tx.prepare_cached(
            "SELECT assignment_id, unit_id, state, transferred_at, receive_by, received_at,
                    complete_by, completed_at
             FROM case_assignment WHERE case_id = ?1",
        )?;
        for row in stmt.query_map([case_id], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                AssignmentFacts {
                    unit_id: r.get(1)?,
                    state: r.get(2)?,
                    transferred_at: r.get(3)?,
                    receive_by: r.get(4)?,
                    received_at: r.get(5)?,
                    complete_by: r.get(6)?,
                    completed_at: r.get(7)?,
                },
            ))
        })? {
            let (id, facts) = row?;
            out.assignments.insert(id, facts);
        }
        let mut stmt = tx.prepare_cached(
            "SELECT seq, unit_id, called_back_at,
                    satisfaction IN ('satisfied', 'basically_satisfied'), resolved, reopened,
                    excluded
             FROM case_callback WHERE case_id = ?1",
        )?;
        for row in stmt.query_map([case_id], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                CallBackFacts {
                    unit_id: r.get(1)?,
                    at: r.get(2)?,
                    satisfied: r.get(3)?,
                    resolved: r.get(4)?,
                    reopened: r.get(5)?,
                    excluded: r.get(6)?,
                },
            ))
        })? {
            let (seq, facts) = row?;
            out.callbacks.insert(seq, facts);
        }
        Ok(out)
    }
}

/// Moves `kpi_day` from what `before` counted to what `after` counts: only the assignments
/// and call-backs that changed are measured again.
///
/// # Errors
/// [`ProjectionError::Sqlite`].
pub(crate) fn apply(
    tx: &Transaction<'_>,
    calendar: &dyn Calendars,
    before: &Contributions,
    after: &Contributions,
) -> Result<(), ProjectionError> {
    let mut deltas = Deltas::new();
    for (id, old) in &before.assignments {
        if after.assignments.get(id) != Some(old) {
            old.count(calendar, -1, &mut deltas);
        }
    }
    for (id, new) in &after.assignments {
        if before.assignments.get(id) != Some(new) {
            new.count(calendar, 1, &mut deltas);
        }
    }
    for (seq, old) in &before.callbacks {
        if after.callbacks.get(seq) != Some(old) {
            old.count(-1, &mut deltas);
        }
    }
    for (seq, new) in &after.callbacks {
        if before.callbacks.get(seq) != Some(new) {
            new.count(1, &mut deltas);
        }
    }
    if deltas.values().all(DayFigures::is_zero) {
        return Ok(());
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO kpi_day (day, unit_id, received, signed, signed_on_time, completed,
            completed_on_time, handling_us, provisional, called_back, satisfied, resolved,
            reopened)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (day, unit_id) DO UPDATE SET
            received = received + excluded.received,
            signed = signed + excluded.signed,
            signed_on_time = signed_on_time + excluded.signed_on_time,
            completed = completed + excluded.completed,
            completed_on_time = completed_on_time + excluded.completed_on_time,
            handling_us = handling_us + excluded.handling_us,
            provisional = provisional + excluded.provisional,
            called_back = called_back + excluded.called_back,
            satisfied = satisfied + excluded.satisfied,
            resolved = resolved + excluded.resolved,
            reopened = reopened + excluded.reopened",
    )?;
    let mut emptied = tx.prepare_cached(
        "DELETE FROM kpi_day WHERE day = ?1 AND unit_id = ?2
            AND received = 0 AND signed = 0 AND signed_on_time = 0 AND completed = 0
            AND completed_on_time = 0 AND handling_us = 0 AND provisional = 0
            AND called_back = 0 AND satisfied = 0 AND resolved = 0 AND reopened = 0",
    )?;
    for ((day, unit), d) in deltas.iter().filter(|(_, d)| !d.is_zero()) {
        upsert.execute(params![
            day,
            unit,
            d.received,
            d.signed,
            d.signed_on_time,
            d.completed,
            d.completed_on_time,
            d.handling_us,
            d.provisional,
            d.called_back,
            d.satisfied,
            d.resolved,
            d.reopened,
        ])?;
        emptied.execute(params![day, unit])?;
    }
    Ok(())
}

/// The figures of every unit summed over the days in `[from, to)` (both Shanghai
/// midnights), only units with something given, completed or rated.
///
/// # Errors
/// [`ProjectionError::Sqlite`].
pub(crate) fn sum(
    conn: &rusqlite::Connection,
    from: i64,
    to: i64,
) -> Result<Vec<(String, DayFigures)>, ProjectionError> {
    let mut stmt = conn.prepare_cached(
        "SELECT unit_id, sum(received), sum(signed), sum(signed_on_time), sum(completed),
                sum(completed_on_time), sum(handling_us), sum(provisional), sum(called_back),
                sum(satisfied), sum(resolved), sum(reopened)
         FROM kpi_day WHERE day >= ?1 AND day < ?2
         GROUP BY unit_id
         HAVING sum(received) > 0 OR sum(completed) > 0 OR sum(called_back) > 0",
    )?;
    let rows = stmt.query_map([from, to], |r| {
        Ok((
            r.get::<_, String>(0)?,
            DayFigures {
                received: r.get(1)?,
                signed: r.get(2)?,
                signed_on_time: r.get(3)?,
                completed: r.get(4)?,
                completed_on_time: r.get(5)?,
                handling_us: r.get(6)?,
                provisional: r.get(7)?,
                called_back: r.get(8)?,
                satisfied: r.get(9)?,
                resolved: r.get(10)?,
                reopened: r.get(11)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_shanghai_midnight() {
        // 2025-03-03T00:00+08:00 is 2025-03-02T16:00Z.
        let midnight = 1_740_931_200_000_000;
        assert!(is_day_start(midnight));
        assert_eq!(day_of(midnight + DAY_US - 1), midnight);
        assert_eq!(day_of(midnight - 1), midnight - DAY_US);
        assert!(!is_day_start(midnight + 1));
    }
}
