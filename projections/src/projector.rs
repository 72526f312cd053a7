//! The write side: folds batches of events into the read database, one transaction per batch,
//! the checkpoint included.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::calendars::Calendars;
use chrono::{DateTime, Utc};
use domain::org::OrgTree;
use domain::{Case, evolve};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::kpi_day::{self, Contributions};
use crate::overdue_day::{self, OverdueFacts};
use crate::row::{CaseRow, ScopeFacts, stage_code, status_code, touched_units, visibility_keys};
use crate::schema::{CREATE_INDEXES, CREATE_TABLES, SCHEMA_VERSION, TABLES};
use crate::{CASE_LIST, ProjectionError, SourcedEvent};

/// Case states kept between batches; beyond this the cache is emptied and states are rebuilt
/// from their streams on demand (see [`Projector::missing`]).
const CACHE_LIMIT: usize = 300_000;

/// A case state and what of it is already in the tables.
struct Entry {
    case: Case,
    /// Scope and touch rows are only ever added; this many units are already written.
    n_scope_written: usize,
    /// The facts the scope rows hold, when written.
    scope_facts: Option<ScopeFacts>,
    /// Whether holder, transfer or waiting rows may exist (so they must be deleted before a
    /// rewrite).
    may_have_side_rows: bool,
    /// What its rows count in `kpi_day`, when known without reading them back.
    kpi: Option<Contributions>,
    /// What its rows hold for `overdue_day`, likewise.
    overdue: Option<OverdueFacts>,
}

/// Applies events to the read database. One per database file: it owns the write connection
/// and a cache of case states.
pub struct Projector {
    conn: Connection,
    /// The tree rows are written with: the one in force when each batch is applied.
    org: Arc<OrgTree>,
    /// Measures the working time of completed assignments for `kpi_day` (on the calendar in
    /// force when each was completed).
    calendar: Box<dyn Calendars>,
    /// The daily report's rows, for `overdue_day`.
    groups: HashSet<String>,
    cache: HashMap<String, Entry>,
    /// Batches applied since the planner's statistics were last looked at.
    batches_since_optimize: u32,
}

/// Batches between two `PRAGMA optimize` (which re-samples a table's statistics only when it
/// grew or shrank a lot since the last time, so SQLite keeps choosing good query plans).
const OPTIMIZE_EVERY: u32 = 2_000;

/// Samples for the planner's statistics: a few thousand rows per index, not whole tables,
/// so it takes milliseconds at any size.
const OPTIMIZE_SQL: &str = "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;";

/// Microseconds since the epoch, the unit of every time column.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Opens (creating if needed) the read database at `path` in WAL mode. A file written with
/// another schema version is reset, so it rebuilds from position 0.
///
/// # Errors
/// [`ProjectionError::Sqlite`].
pub(crate) fn open_connection(path: &Path) -> Result<Connection, ProjectionError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // The read database can always be rebuilt from the store, so a crash may lose the last
    // commits (they are replayed) but must not corrupt it: WAL with NORMAL sync does that.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

impl Projector {
    /// Opens the read database at `path`, creating its tables; resets it when it was written
    /// by another schema version.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn open(
        path: &Path,
        org: impl Into<Arc<OrgTree>>,
        calendar: impl Calendars + 'static,
    ) -> Result<Self, ProjectionError> {
        let org = org.into();
        let conn = open_connection(path)?;
        let mut projector = Projector {
            conn,
            groups: overdue_day::groups(&org),
            org,
            calendar: Box::new(calendar),
            cache: HashMap::new(),
            batches_since_optimize: 0,
        };
        projector.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) \
             WITHOUT ROWID;",
        )?;
        let found: Option<i64> = projector
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if found == Some(SCHEMA_VERSION) {
            projector.conn.execute_batch(CREATE_TABLES)?;
            projector.conn.execute_batch(CREATE_INDEXES)?;
            projector.conn.execute_batch(OPTIMIZE_SQL)?;
        } else {
            // Another schema (or a new file): the tables are rebuilt from position 0.
            projector.reset()?;
        }
        Ok(projector)
    }

    /// Writes the rows of the next batches with `org` (the directory changed). Rows already
    /// written keep the tree they were written with until their case changes again.
    pub fn set_org(&mut self, org: Arc<OrgTree>) {
        if !Arc::ptr_eq(&self.org, &org) {
            self.groups = overdue_day::groups(&org);
            self.org = org;
        }
    }

    /// The tree rows are written with now.
    pub fn org(&self) -> &Arc<OrgTree> {
        &self.org
    }

    /// The cases with a part at any of `units` (an assignment there, ever), by stream: those
    /// whose scope a move of the units changes.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn streams_touching(&self, units: &[String]) -> Result<Vec<String>, ProjectionError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT case_id FROM case_touch WHERE unit_id = ?1")?;
        let mut out = HashSet::new();
        for unit in units {
            for id in stmt.query_map([unit], |r| r.get::<_, String>(0))? {
                out.insert(format!("{}{}", domain::case::STREAM_PREFIX, id?));
            }
        }
        let mut out: Vec<String> = out.into_iter().collect();
        out.sort();
        Ok(out)
    }

    /// Puts `org` in force and writes the scope of `streams` (the cases a move touched) again
    /// under it: the keys the old tree gave them are deleted first, so a district a street
    /// left no longer sees its cases and the district it joined does. `history` holds the
    /// events of the streams not in the cache.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn rescope(
        &mut self,
        org: Arc<OrgTree>,
        streams: &[String],
        history: &HashMap<String, Vec<SourcedEvent>>,
    ) -> Result<(), ProjectionError> {
        let old = self.org.clone();
        self.set_org(org);
        let res = self.rescope_inner(&old, streams, history);
        if res.is_err() {
            self.cache.clear();
        }
        res
    }

    fn rescope_inner(
        &mut self,
        old: &OrgTree,
        streams: &[String],
        history: &HashMap<String, Vec<SourcedEvent>>,
    ) -> Result<(), ProjectionError> {
        let tx = self.conn.transaction()?;
        for stream in streams {
            if !self.cache.contains_key(stream) {
                let Some(events) = history.get(stream) else {
                    continue;
                };
                let case = events
                    .iter()
                    .fold(Case::default(), |case, ev| evolve(case, &ev.event));
                self.cache.insert(
                    stream.clone(),
                    Entry {
                        case,
                        n_scope_written: 0,
                        scope_facts: None,
                        may_have_side_rows: true,
                        kpi: None,
                        overdue: None,
                    },
                );
            }
            let Some(entry) = self.cache.get_mut(stream) else {
                continue;
            };
            let Some(row) = CaseRow::of(&entry.case, old) else {
                continue;
            };
            let created_at = row.scope_facts().created_at;
            {
                let mut delete = tx.prepare_cached(
                    "DELETE FROM case_scope WHERE unit_id = ?1 AND created_at = ?2 AND case_id = ?3",
                )?;
                for key in visibility_keys(&entry.case, old) {
                    delete.execute(params![key, created_at, row.case_id])?;
                }
            }
            let position: i64 = tx.query_row(
                "SELECT position FROM case_list WHERE case_id = ?1",
                [&row.case_id],
                |r| r.get(0),
            )?;
            entry.n_scope_written = 0;
            entry.scope_facts = None;
            entry.may_have_side_rows = true;
            write_case(
                &tx,
                &self.org,
                &self.groups,
                self.calendar.as_ref(),
                entry,
                position.max(0) as u64,
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops every read model and its checkpoint: the next batches rebuild from position 0.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn reset(&mut self) -> Result<(), ProjectionError> {
        self.cache.clear();
        let tx = self.conn.transaction()?;
        for table in TABLES {
            tx.execute_batch(&format!("DROP TABLE IF EXISTS {table}"))?;
        }
        tx.execute_batch(CREATE_TABLES)?;
        tx.execute_batch(CREATE_INDEXES)?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
            [SCHEMA_VERSION],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The last global position applied (0 for none).
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn checkpoint(&self) -> Result<u64, ProjectionError> {
        read_checkpoint(&self.conn)
    }

    /// The streams of `batch` whose state the projector lacks: their first event in the batch
    /// is not the stream's first, and the state is not cached. The runner passes their
    /// histories to [`Projector::apply`].
    pub fn missing(&self, batch: &[SourcedEvent]) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for ev in batch {
            if !seen.insert(ev.stream.as_str()) {
                continue;
            }
            let held = self.cache.get(&ev.stream).map(|e| e.case.version());
            let ok = match held {
                Some(v) => v + 1 >= ev.version,
                None => ev.version == 1,
            };
            if !ok {
                out.push(ev.stream.clone());
            }
        }
        out
    }

    /// Applies the events of `batch` after the checkpoint and moves the checkpoint to `up_to`
    /// (at least the batch's last position; higher when the batch skipped events of other
    /// streams), all in one transaction.
    ///
    /// `history` holds, for the streams [`Projector::missing`] named, their stored events (any
    /// superset of those before the batch; later ones are ignored).
    ///
    /// # Errors
    /// [`ProjectionError::Gap`] when a stream's earlier events are neither cached nor in
    /// `history`; [`ProjectionError::Sqlite`]. Nothing is written then.
    pub fn apply(
        &mut self,
        batch: &[SourcedEvent],
        history: &HashMap<String, Vec<SourcedEvent>>,
        up_to: u64,
    ) -> Result<u64, ProjectionError> {
        let res = self.apply_inner(batch, history, up_to);
        if res.is_err() {
            // The cache may be ahead of what was committed.
            self.cache.clear();
        }
        self.batches_since_optimize += 1;
        if res.is_ok() && self.batches_since_optimize >= OPTIMIZE_EVERY {
            self.batches_since_optimize = 0;
            self.conn.execute_batch(OPTIMIZE_SQL)?;
        }
        res
    }

    fn apply_inner(
        &mut self,
        batch: &[SourcedEvent],
        history: &HashMap<String, Vec<SourcedEvent>>,
        up_to: u64,
    ) -> Result<u64, ProjectionError> {
        if self.cache.len() > CACHE_LIMIT {
            self.cache.clear();
        }
        let checkpoint = read_checkpoint(&self.conn)?;
        let mut dirty: Vec<(String, u64)> = Vec::new();
        let mut dirty_set: HashSet<String> = HashSet::new();
        for ev in batch.iter().filter(|ev| ev.position > checkpoint) {
            if !self.cache.contains_key(&ev.stream) {
                let mut case = Case::default();
                if let Some(events) = history.get(&ev.stream) {
                    for old in events.iter().filter(|old| old.version < ev.version) {
                        case = evolve(case, &old.event);
                    }
                }
                let known = case.version() > 0;
                self.cache.insert(
                    ev.stream.clone(),
                    Entry {
                        case,
                        n_scope_written: 0,
                        scope_facts: None,
                        may_have_side_rows: known,
                        // A new case has no rows yet; a known one's are read back.
                        kpi: (!known).then(Contributions::default),
                        overdue: (!known).then(OverdueFacts::default),
                    },
                );
            }
            let Some(entry) = self.cache.get_mut(&ev.stream) else {
                continue;
            };
            if entry.case.version() + 1 != ev.version {
                return Err(ProjectionError::Gap {
                    stream: ev.stream.clone(),
                    position: ev.position,
                    version: ev.version,
                    held: entry.case.version(),
                });
            }
            entry.case = evolve(std::mem::take(&mut entry.case), &ev.event);
            // A hand-over (机构调整移交) gives a case's assignments to another unit: its scope
            // and touch rows are written again for the units it now has (the closed unit's
            // stay; nobody works there any more).
            if matches!(ev.event.body, domain::EventBody::HandedOver { .. }) {
                entry.n_scope_written = 0;
                entry.scope_facts = None;
            }
            if dirty_set.insert(ev.stream.clone()) {
                dirty.push((ev.stream.clone(), ev.position));
            } else if let Some(d) = dirty.iter_mut().find(|d| d.0 == ev.stream) {
                d.1 = ev.position;
            }
        }
        let last = batch.last().map_or(0, |ev| ev.position);
        let new_checkpoint = checkpoint.max(up_to).max(last);
        let tx = self.conn.transaction()?;
        for (stream, position) in &dirty {
            if let Some(entry) = self.cache.get_mut(stream) {
                write_case(
                    &tx,
                    &self.org,
                    &self.groups,
                    self.calendar.as_ref(),
                    entry,
                    *position,
                )?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO checkpoint (name, position) VALUES (?1, ?2)",
            params![CASE_LIST, new_checkpoint as i64],
        )?;
        tx.commit()?;
        Ok(new_checkpoint)
    }
}

/// Writes a whole read database at `path`, a new file no one else has open, from the final
/// state of every case and the position of its last event (`minqing rebuild`).
///
/// The tables get the same rows as applying every event in batches through a [`Projector`]
/// (a test compares them), but much faster: each case is written once, in key order, into a
/// file without a journal, and the secondary indexes are built after the rows. The checkpoint
/// and the schema version are written last, so a file left by a crash is never taken for a
/// finished one; the caller deletes it and moves a finished file into place.
/// `progress(written, total)` is called every few thousand cases.
///
/// # Errors
/// [`ProjectionError::Sqlite`], or IO while syncing the file.
pub fn write_fresh(
    path: &Path,
    org: &OrgTree,
    calendar: &dyn Calendars,
    mut cases: Vec<(Case, u64)>,
    checkpoint: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(), ProjectionError> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    // Up to 512 MiB of page cache: the scope table is keyed by unit, so its inserts land all
    // over the tree.
    conn.pragma_update(None, "cache_size", -524_288)?;
    conn.execute_batch(CREATE_TABLES)?;
    cases.sort_unstable_by(|a, b| a.0.id().cmp(&b.0.id()));
    let total = cases.len();
    let groups = overdue_day::groups(org);
    let tx = conn.transaction()?;
    for (i, (case, position)) in cases.into_iter().enumerate() {
        let mut entry = Entry {
            case,
            n_scope_written: 0,
            scope_facts: None,
            may_have_side_rows: false,
            kpi: Some(Contributions::default()),
            overdue: Some(OverdueFacts::default()),
        };
        write_case(&tx, org, &groups, calendar, &mut entry, position)?;
        if i % 8192 == 0 {
            progress(i, total);
        }
    }
    progress(total, total);
    tx.execute_batch(CREATE_INDEXES)?;
    // Statistics for the planner: without them SQLite may drive a scoped count from a
    // condition's index over the whole city instead of from the caller's few cases.
    tx.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE;")?;
    tx.execute(
        "INSERT OR REPLACE INTO checkpoint (name, position) VALUES (?1, ?2)",
        params![CASE_LIST, checkpoint as i64],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
        [SCHEMA_VERSION],
    )?;
    tx.commit()?;
    // The file the service opens is in WAL mode, like one [`Projector::open`] created.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.close().map_err(|(_, e)| e)?;
    std::fs::File::open(path)?.sync_all()?;
    Ok(())
}

fn read_checkpoint(conn: &Connection) -> Result<u64, ProjectionError> {
    let position: Option<i64> = conn
        .query_row(
            "SELECT position FROM checkpoint WHERE name = ?1",
            [CASE_LIST],
            |r| r.get(0),
        )
        .optional()?;
    Ok(position.unwrap_or(0).max(0) as u64)
}

fn write_case(
    tx: &Transaction<'_>,
    org: &OrgTree,
    groups: &HashSet<String>,
    calendar: &dyn Calendars,
    entry: &mut Entry,
    position: u64,
) -> Result<(), ProjectionError> {
    let Some(row) = CaseRow::of(&entry.case, org) else {
        return Ok(());
    };
    let facts = row.scope_facts();
    let holder_units = {
        let mut units: Vec<&str> = row.holders.iter().map(|h| h.unit_id.as_str()).collect();
        units.dedup();
        units.join(",")
    };
    // What the rows held for the overdue counts, read before `case_list` is replaced.
    let overdue_before = match entry.overdue.take() {
        Some(known) => known,
        None => OverdueFacts::stored(tx, &row.case_id)?,
    };
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO case_list (case_id, version, position, stage, status, merged,
            answered_on_call, receive_due, complete_due, completed_late, category, kind, urgency,
            location_unit_id, district_id, accepting_unit_id, created_by, created_at,
            accepted_at, completed_at, caller_name, caller_phone, confidential, title, content,
            address, holder_unit_ids, lead_unit_id, satisfaction, resolved, called_back_at,
            n_reopened, rating_excluded, overdue_at, supervised, annotated, warned, joint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35,
            ?36, ?37, ?38)",
    )?;
    stmt.execute(params![
        row.case_id,
        row.version as i64,
        position as i64,
        stage_code(row.stage),
        status_code(row.status),
        row.merged,
        row.answered_on_call,
        row.receive_due.map_or(i64::MAX, micros),
        row.complete_due.map_or(i64::MAX, micros),
        row.completed_late,
        row.category,
        row.kind,
        row.urgency,
        row.location_unit_id,
        row.district_id,
        row.accepting_unit_id,
        row.created_by,
        row.created_at.map(micros),
        row.accepted_at.map(micros),
        row.completed_at.map(micros),
        row.caller_name,
        row.caller_phone,
        row.confidential,
        row.title,
        row.content,
        row.address,
        holder_units,
        row.lead_unit_id,
        row.callback.map(|c| c.0),
        row.callback.map(|c| c.1),
        row.callback.map(|c| micros(c.2)),
        row.n_reopened,
        row.rating_excluded,
        facts.overdue_at,
        row.supervised,
        row.annotated,
        row.warned,
        row.joint,
    ])?;
    // What the rows counted before they are replaced, then what they count now.
    let before = match entry.kpi.take() {
        Some(known) => known,
        None => Contributions::stored(tx, &row.case_id)?,
    };
    let after = Contributions::of(&row);
    kpi_day::apply(tx, calendar, &before, &after)?;
    entry.kpi = Some(after);
    let overdue_after = OverdueFacts::of(&row);
    overdue_day::apply(tx, org, groups, &overdue_before, &overdue_after)?;
    entry.overdue = Some(overdue_after);
    let mut assignment = tx.prepare_cached(
        "INSERT OR REPLACE INTO case_assignment (case_id, assignment_id, parent_id, unit_id,
            role, state, transferred_at, receive_by, received_at, complete_by, completed_at,
            ended_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for a in &row.assignments {
        assignment.execute(params![
            row.case_id,
            a.assignment_id,
            a.parent_id,
            a.unit_id,
            a.role,
            a.state,
            micros(a.transferred_at),
            micros(a.receive_by),
            a.received_at.map(micros),
            micros(a.complete_by),
            a.completed_at.map(micros),
            a.ended_at.map(micros),
        ])?;
    }
    // Call-backs are only ever added, but their reopened and excluded marks change.
    let mut callback = tx.prepare_cached(
        "INSERT OR REPLACE INTO case_callback (case_id, seq, unit_id, called_back_at,
            satisfaction, resolved, reopened, excluded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for c in &row.callbacks {
        callback.execute(params![
            row.case_id,
            c.seq,
            c.unit_id,
            micros(c.at),
            c.satisfaction,
            c.resolved,
            c.reopened,
            c.excluded,
        ])?;
    }
    if entry.may_have_side_rows {
        tx.prepare_cached("DELETE FROM case_holder WHERE case_id = ?1")?
            .execute([&row.case_id])?;
        tx.prepare_cached("DELETE FROM case_transfer WHERE case_id = ?1")?
            .execute([&row.case_id])?;
        tx.prepare_cached("DELETE FROM case_waiting WHERE case_id = ?1")?
            .execute([&row.case_id])?;
    }
    let mut waiting = tx.prepare_cached(
        "INSERT INTO case_waiting (case_id, list, assignment_id, request, unit_id, due)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for w in &row.waiting {
        waiting.execute(params![
            row.case_id,
            w.list,
            w.assignment_id,
            w.request,
            w.unit_id,
            w.due.map_or(i64::MAX, micros),
        ])?;
    }
    let mut holder = tx.prepare_cached(
        "INSERT INTO case_holder (case_id, assignment_id, unit_id, role, state, receive_by,
            complete_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for h in &row.holders {
        holder.execute(params![
            row.case_id,
            h.assignment_id,
            h.unit_id,
            h.role,
            h.state,
            micros(h.receive_by),
            micros(h.complete_by),
        ])?;
    }
    let mut transfer = tx.prepare_cached(
        "INSERT INTO case_transfer (case_id, from_unit_id, transfer_id, recallable, complete_due)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for t in &row.transfers {
        transfer.execute(params![
            row.case_id,
            t.from_unit_id,
            t.transfer_id,
            t.recallable,
            facts.complete_due,
        ])?;
    }
    entry.may_have_side_rows =
        !row.holders.is_empty() || !row.transfers.is_empty() || !row.waiting.is_empty();
    // Assignments and transfers are only ever added and a case is accepted once, so this count
    // says whether the keys grew; it is at least 1, so a case's first write adds its creator.
    let n_scope = 1
        + entry.case.assignments().len()
        + entry.case.transfers().len()
        + usize::from(entry.case.accepting_unit_id().is_some());
    if n_scope != entry.n_scope_written || entry.scope_facts.as_ref() != Some(&facts) {
        let mut scope = tx.prepare_cached(
            "INSERT OR REPLACE INTO case_scope (unit_id, created_at, case_id, status, category,
                kind, urgency, district_id, complete_due, overdue_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        // A case's creation time never changes, so its rows keep their keys.
        for key in visibility_keys(&entry.case, org) {
            scope.execute(params![
                key,
                facts.created_at,
                row.case_id,
                facts.status,
                facts.category,
                facts.kind,
                facts.urgency,
                facts.district_id,
                facts.complete_due,
                facts.overdue_at,
            ])?;
        }
        entry.scope_facts = Some(facts);
    }
    if n_scope != entry.n_scope_written {
        let mut touch = tx.prepare_cached(
            "INSERT OR IGNORE INTO case_touch (unit_id, case_id) VALUES (?1, ?2)",
        )?;
        for unit in touched_units(&entry.case) {
            touch.execute(params![unit, row.case_id])?;
        }
        entry.n_scope_written = n_scope;
    }
    Ok(())
}
