//! The daily report's overdue counts (逾期未接收, 逾期正在办理 at a day's end, or now), kept as
//! the assignments of each case change, so a report reads a few thousand summed rows instead
//! of every assignment open at the day's end.
//!
//! How a case stands in a group is a step function of time ([`report::overdue_steps`]): it
//! changes only just after one of its recorded times. Each change is kept as a delta at its
//! instant (`overdue_step`) and summed per Shanghai day (`overdue_day`); the count at `to` is
//! the days before `to`'s day plus the instants of that day before `to`. When a case is
//! written again, the steps of what its rows held before are taken off and those of what they
//! hold now are added; rows that come back to zero are deleted, so live batches and a rebuild
//! give the same rows. The group `""` counts every case once over all groups.

use std::collections::{BTreeMap, HashSet};

use domain::org::OrgTree;
use rusqlite::{Connection, Transaction, params};

use crate::ProjectionError;
use crate::kpi_day::day_of;
use crate::report::{self, AssignmentFacts};
use crate::row::CaseRow;

/// What a case's rows hold that its overdue steps depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OverdueFacts {
    assignments: Vec<AssignmentFacts>,
}

impl OverdueFacts {
    /// What `row` holds.
    pub(crate) fn of(row: &CaseRow) -> Self {
        OverdueFacts {
            assignments: row
                .assignments
                .iter()
                .map(|a| AssignmentFacts {
                    case_id: row.case_id.clone(),
                    assignment_id: a.assignment_id,
                    parent_id: a.parent_id,
                    unit_id: a.unit_id.clone(),
                    transferred_at: a.transferred_at,
                    ended_at: a.ended_at,
                    receive_by: a.receive_by,
                    received_at: a.received_at,
                    complete_by: a.complete_by,
                    completed_at: a.completed_at,
                    case_completed_at: row.completed_at,
                })
                .collect(),
        }
    }

    /// What the stored rows of `case_id` hold, read before they are rewritten.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub(crate) fn stored(tx: &Transaction<'_>, case_id: &str) -> Result<Self, ProjectionError> {
        let assignments = report::load_assignments(
            tx,
            "SELECT a.case_id, a.assignment_id, a.parent_id, a.unit_id, a.transferred_at,
                    a.ended_at, a.receive_by, a.received_at, a.complete_by, a.completed_at,
                    c.completed_at
             FROM case_assignment a JOIN case_list c ON c.case_id = a.case_id
             WHERE a.case_id = ?1
             ORDER BY a.assignment_id",
            [case_id],
        )?;
        Ok(OverdueFacts { assignments })
    }

    /// When the case spans two groups or more: its first transfer and its completion
    /// (`i64::MAX` while open), the span in which it can be overdue in several at once.
    fn joint_span(&self, org: &OrgTree, groups: &HashSet<String>) -> Option<(i64, i64)> {
        let spanned: HashSet<String> = self
            .assignments
            .iter()
            .map(|a| report::report_group(org, &a.unit_id))
            .filter(|g| groups.contains(g))
            .collect();
        if spanned.len() < 2 {
            return None;
        }
        let first = self.assignments.iter().map(|a| a.transferred_at).min()?;
        let last = self.assignments.first()?.case_completed_at;
        Some((
            first.timestamp_micros(),
            last.map_or(i64::MAX, |t| t.timestamp_micros()),
        ))
    }

    fn steps(&self, org: &OrgTree, groups: &HashSet<String>) -> Vec<report::OverdueStep> {
        let shares: Vec<&AssignmentFacts> = self.assignments.iter().collect();
        report::overdue_steps(&shares, &|unit| report::report_group(org, unit), &|group| {
            groups.contains(group)
        })
    }
}

/// The rows of a full report ([`report::report_groups`]), looked up for every case written.
pub(crate) fn groups(org: &OrgTree) -> HashSet<String> {
    report::report_groups(org).into_iter().collect()
}

/// Moves `overdue_step` and `overdue_day` from the steps of `before` to those of `after`.
///
/// # Errors
/// [`ProjectionError::Sqlite`].
pub(crate) fn apply(
    tx: &Transaction<'_>,
    org: &OrgTree,
    groups: &HashSet<String>,
    before: &OverdueFacts,
    after: &OverdueFacts,
) -> Result<(), ProjectionError> {
    if before == after {
        return Ok(());
    }
    if let Some(case_id) = after.assignments.first().map(|a| &a.case_id) {
        match after.joint_span(org, groups) {
            Some((first, last)) => tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO report_joint (case_id, first_at, last_at)
                     VALUES (?1, ?2, ?3)",
                )?
                .execute(params![case_id, first, last])?,
            None => tx
                .prepare_cached("DELETE FROM report_joint WHERE case_id = ?1")?
                .execute([case_id])?,
        };
    }
    let mut deltas: BTreeMap<(i64, String), (i64, i64)> = BTreeMap::new();
    for (facts, sign) in [(before, -1), (after, 1)] {
        for step in facts.steps(org, groups) {
            let d = deltas.entry((step.at, step.group)).or_default();
            d.0 += sign * step.not_received;
            d.1 += sign * step.in_progress;
        }
    }
    deltas.retain(|_, d| *d != (0, 0));
    if deltas.is_empty() {
        return Ok(());
    }
    let mut days: BTreeMap<(i64, &str), (i64, i64)> = BTreeMap::new();
    for ((at, group), d) in &deltas {
        let day = days.entry((day_of(*at), group.as_str())).or_default();
        day.0 += d.0;
        day.1 += d.1;
    }
    for (table, key, rows) in [
        (
            "overdue_step",
            "at",
            deltas
                .iter()
                .map(|((at, g), d)| (*at, g.as_str(), *d))
                .collect::<Vec<_>>(),
        ),
        (
            "overdue_day",
            "day",
            days.iter()
                .filter(|(_, d)| **d != (0, 0))
                .map(|((day, g), d)| (*day, *g, *d))
                .collect(),
        ),
    ] {
        let mut upsert = tx.prepare_cached(&format!(
            "INSERT INTO {table} ({key}, grp, not_received, in_progress) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT ({key}, grp) DO UPDATE SET
                not_received = not_received + excluded.not_received,
                in_progress = in_progress + excluded.in_progress"
        ))?;
        let mut emptied = tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE {key} = ?1 AND grp = ?2
                AND not_received = 0 AND in_progress = 0"
        ))?;
        for (k, group, (nr, ip)) in rows {
            upsert.execute(params![k, group, nr, ip])?;
            emptied.execute(params![k, group])?;
        }
    }
    Ok(())
}

/// The 逾期未接收 and 逾期正在办理 counts of every group (and `""`, all together) at `to`
/// (microseconds): the days before its Shanghai day, then the instants of that day before it.
/// Groups with nothing overdue are left out.
///
/// # Errors
/// [`ProjectionError::Sqlite`].
pub(crate) fn at(
    conn: &Connection,
    to: i64,
) -> Result<BTreeMap<String, (u64, u64)>, ProjectionError> {
    let day = day_of(to);
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for sql in [
        "SELECT grp, sum(not_received), sum(in_progress) FROM overdue_day
         WHERE day < ?1 GROUP BY grp",
        "SELECT grp, sum(not_received), sum(in_progress) FROM overdue_step
         WHERE at >= ?1 AND at < ?2 GROUP BY grp",
    ] {
        let mut stmt = conn.prepare_cached(sql)?;
        let bind: &[&dyn rusqlite::ToSql] = if sql.contains("?2") {
            &[&day, &to]
        } else {
            &[&day]
        };
        let rows = stmt.query_map(bind, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (group, nr, ip) = row?;
            let sum = out.entry(group).or_default();
            sum.0 += nr;
            sum.1 += ip;
        }
    }
    Ok(out
        .into_iter()
        .filter(|(_, d)| *d != (0, 0))
        .map(|(g, (nr, ip))| (g, (nr.max(0) as u64, ip.max(0) as u64)))
        .collect())
}

/// The cases spanning two groups or more that may be open at `to`, with all their
/// assignments: the only ones a total over some groups could count twice.
///
/// # Errors
/// [`ProjectionError::Sqlite`].
pub(crate) fn joint_at(
    conn: &Connection,
    to: i64,
) -> Result<Vec<AssignmentFacts>, ProjectionError> {
    report::load_assignments(
        conn,
        "SELECT a.case_id, a.assignment_id, a.parent_id, a.unit_id, a.transferred_at,
                a.ended_at, a.receive_by, a.received_at, a.complete_by, a.completed_at,
                c.completed_at
         FROM report_joint j
         JOIN case_assignment a ON a.case_id = j.case_id
         JOIN case_list c ON c.case_id = j.case_id
         WHERE j.first_at < ?1 AND j.last_at >= ?1
         ORDER BY a.case_id, a.assignment_id",
        [to],
    )
}
