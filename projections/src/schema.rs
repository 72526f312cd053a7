//! The read database's tables. Only this crate knows them; the file can be deleted at any time
//! and is rebuilt from the event store.

/// Bumped whenever a table changes; a file with another version is dropped and rebuilt.
pub(crate) const SCHEMA_VERSION: i64 = 11;

/// Tables this crate owns, dropped by a reset.
pub(crate) const TABLES: &[&str] = &[
    "checkpoint",
    "case_list",
    "case_scope",
    "case_touch",
    "case_holder",
    "case_transfer",
    "case_assignment",
    "case_callback",
    "case_waiting",
    "kpi_day",
    "overdue_step",
    "overdue_day",
    "report_joint",
];

/// The tables, without their secondary indexes ([`CREATE_INDEXES`]).
///
/// Times are microseconds since the Unix epoch (UTC); "no deadline" is `i64::MAX`, so that
/// comparisons with the clock never meet NULL.
pub(crate) const CREATE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;

-- Last global position each projection applied; written with its data.
CREATE TABLE IF NOT EXISTS checkpoint (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per case.
CREATE TABLE IF NOT EXISTS case_list (
    case_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    merged INTEGER NOT NULL,
    answered_on_call INTEGER NOT NULL,
    receive_due INTEGER NOT NULL,
    complete_due INTEGER NOT NULL,
    completed_late INTEGER NOT NULL,
    category TEXT,
    kind TEXT,
    urgency TEXT,
    location_unit_id TEXT,
    district_id TEXT,
    accepting_unit_id TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER,
    accepted_at INTEGER,
    completed_at INTEGER,
    caller_name TEXT NOT NULL,
    caller_phone TEXT NOT NULL,
    confidential INTEGER NOT NULL,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    address TEXT NOT NULL,
    holder_unit_ids TEXT NOT NULL,
    lead_unit_id TEXT,
    satisfaction TEXT,
    resolved INTEGER,
    called_back_at INTEGER,
    n_reopened INTEGER NOT NULL,
    rating_excluded INTEGER NOT NULL,
    -- Overdue at `now` exactly when `overdue_at < now` (see `row::ScopeFacts::overdue_at`).
    overdue_at INTEGER NOT NULL,
    -- The flags a list row shows: 督办 and 批示 received, 到期预警 of a running deadline, 联办件.
    supervised INTEGER NOT NULL,
    annotated INTEGER NOT NULL,
    warned INTEGER NOT NULL,
    joint INTEGER NOT NULL
) WITHOUT ROWID;

-- Who may see each case (domain::identity::may_view_case), one row per key: every unit a case
-- touched (given it, or transferred it) with all the units above it, `by:{username}` of its
-- creator and `acc:{unit}` of the unit that accepted it. A caller may see the case when one of
-- their keys (their unit, for leaders the units they oversee, their name, their unit as the
-- accepting one) is here with it.
-- Each row repeats the case's columns that lists filter and sort by (`row::ScopeFacts`), so a
-- caller's list is counted and paged from their keys' rows alone, read in order, without a
-- lookup in case_list per visible case. `overdue_at`: overdue when it is before `now`
-- (the earlier deadline of an open case; the smallest integer once completed late; the
-- largest otherwise).
-- Keyed by creation time within each key, so a caller's newest (or oldest) cases are a walk
-- of their keys' rows in order.
CREATE TABLE IF NOT EXISTS case_scope (
    unit_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    case_id TEXT NOT NULL,
    status TEXT NOT NULL,
    category TEXT,
    kind TEXT,
    urgency TEXT,
    district_id TEXT,
    complete_due INTEGER NOT NULL,
    overdue_at INTEGER NOT NULL,
    PRIMARY KEY (unit_id, created_at, case_id)
) WITHOUT ROWID;

-- Every unit a case was given (an assignment, live or not).
CREATE TABLE IF NOT EXISTS case_touch (
    unit_id TEXT NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (unit_id, case_id)
) WITHOUT ROWID;

-- Who holds each case now (当前办理单位), with the recorded deadlines.
CREATE TABLE IF NOT EXISTS case_holder (
    case_id TEXT NOT NULL,
    assignment_id INTEGER NOT NULL,
    unit_id TEXT NOT NULL,
    role TEXT NOT NULL,
    state TEXT NOT NULL,
    receive_by INTEGER NOT NULL,
    complete_by INTEGER NOT NULL,
    PRIMARY KEY (case_id, assignment_id)
) WITHOUT ROWID;

-- Open transfers per transferring unit, and whether it may still recall (rule 5).
CREATE TABLE IF NOT EXISTS case_transfer (
    case_id TEXT NOT NULL,
    from_unit_id TEXT NOT NULL,
    transfer_id INTEGER NOT NULL,
    recallable INTEGER NOT NULL,
    -- `case_list.complete_due`, so a unit's transfers are listed most urgent first by index.
    complete_due INTEGER NOT NULL,
    PRIMARY KEY (case_id, from_unit_id)
) WITHOUT ROWID;

-- Where a case waits at a unit (`row::WaitingRow`): `to_transfer` (待转办), a centre to send it
-- on (`Case::waiting_for_transfer`; assignment 0 for the accepting centre), or `to_decide`
-- (待审批), the transferring unit to decide a `return` or `extension` request
-- (`Case::requests_awaiting_decision`). `due` orders each list (see `row::WaitingRow::due`).
CREATE TABLE IF NOT EXISTS case_waiting (
    case_id TEXT NOT NULL,
    list TEXT NOT NULL,
    assignment_id INTEGER NOT NULL,
    request TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    due INTEGER NOT NULL,
    PRIMARY KEY (case_id, list, assignment_id, request)
) WITHOUT ROWID;

-- Every assignment ever made, for the KPIs and the daily report (which rebuilds who held
-- what at the end of a past day from these times: parent_id tells a unit that transferred on,
-- ended_at when an assignment was recalled or cancelled).
CREATE TABLE IF NOT EXISTS case_assignment (
    case_id TEXT NOT NULL,
    assignment_id INTEGER NOT NULL,
    parent_id INTEGER,
    unit_id TEXT NOT NULL,
    role TEXT NOT NULL,
    state TEXT NOT NULL,
    transferred_at INTEGER NOT NULL,
    receive_by INTEGER NOT NULL,
    received_at INTEGER,
    complete_by INTEGER NOT NULL,
    completed_at INTEGER,
    ended_at INTEGER,
    PRIMARY KEY (case_id, assignment_id)
) WITHOUT ROWID;

-- Every call-back (回访) ever made, for the KPIs and the daily report: a reopen keeps the
-- rating it followed; an upheld appeal marks it excluded, the row stays.
CREATE TABLE IF NOT EXISTS case_callback (
    case_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    unit_id TEXT,
    called_back_at INTEGER NOT NULL,
    satisfaction TEXT NOT NULL,
    resolved INTEGER NOT NULL,
    reopened INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    PRIMARY KEY (case_id, seq)
) WITHOUT ROWID;

-- KPI figures per Shanghai day (`day`: its first instant) and unit, kept by `kpi_day`: a
-- period's KPIs sum its days. `handling_us`: working time from given to completed, summed, in
-- microseconds (a month of a large bureau stays far below the integer's limit).
CREATE TABLE IF NOT EXISTS kpi_day (
    day INTEGER NOT NULL,
    unit_id TEXT NOT NULL,
    received INTEGER NOT NULL,
    signed INTEGER NOT NULL,
    signed_on_time INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    completed_on_time INTEGER NOT NULL,
    handling_us INTEGER NOT NULL,
    provisional INTEGER NOT NULL,
    called_back INTEGER NOT NULL,
    satisfied INTEGER NOT NULL,
    resolved INTEGER NOT NULL,
    reopened INTEGER NOT NULL,
    PRIMARY KEY (day, unit_id)
) WITHOUT ROWID;

-- The daily report's overdue counts per group (a district centre or a city bureau; `''`:
-- all of them, each case once), kept by `overdue_day` as changes: from just after `at`
-- (microseconds) the counts move by the row's figures. `overdue_day` sums a Shanghai day's
-- changes (`day`: its first instant), so the counts at an instant are the days before it and
-- the changes of its own day before it.
CREATE TABLE IF NOT EXISTS overdue_step (
    at INTEGER NOT NULL,
    grp TEXT NOT NULL,
    not_received INTEGER NOT NULL,
    in_progress INTEGER NOT NULL,
    PRIMARY KEY (at, grp)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS overdue_day (
    day INTEGER NOT NULL,
    grp TEXT NOT NULL,
    not_received INTEGER NOT NULL,
    in_progress INTEGER NOT NULL,
    PRIMARY KEY (day, grp)
) WITHOUT ROWID;
-- Cases whose assignments span two groups or more, from their first transfer to their
-- completion (`last_at`, i64::MAX while open): a total over some groups but not all counts
-- each case once by judging these few again.
CREATE TABLE IF NOT EXISTS report_joint (
    case_id TEXT PRIMARY KEY,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The secondary indexes; a bulk load creates them after the rows.
pub(crate) const CREATE_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS case_list_called_back ON case_list (called_back_at);
-- Overdue at query time: `overdue_at < now`; the most urgent open cases first.
CREATE INDEX IF NOT EXISTS case_list_overdue ON case_list (overdue_at, stage);
CREATE INDEX IF NOT EXISTS case_list_complete_due ON case_list (stage, complete_due);
CREATE INDEX IF NOT EXISTS case_list_created ON case_list (created_at);
CREATE INDEX IF NOT EXISTS case_list_district ON case_list (district_id, created_at);
CREATE INDEX IF NOT EXISTS case_list_phone ON case_list (caller_phone, created_at);
CREATE INDEX IF NOT EXISTS case_list_status ON case_list (status, created_at);
CREATE INDEX IF NOT EXISTS case_list_creator ON case_list (created_by, stage);
-- The centre's cases by stage; completed ones not merged in order of completion (待回访).
CREATE INDEX IF NOT EXISTS case_list_accepting ON case_list (accepting_unit_id, stage, merged, completed_at);
-- A scoped list's commonest conditions, counted within the caller's keys.
CREATE INDEX IF NOT EXISTS case_scope_overdue ON case_scope (unit_id, overdue_at);
CREATE INDEX IF NOT EXISTS case_scope_status ON case_scope (unit_id, status, category);
CREATE INDEX IF NOT EXISTS case_holder_due ON case_holder (unit_id, state, complete_by);
CREATE INDEX IF NOT EXISTS case_holder_receive ON case_holder (unit_id, state, receive_by);
CREATE INDEX IF NOT EXISTS case_waiting_due ON case_waiting (unit_id, list, due);
CREATE INDEX IF NOT EXISTS case_transfer_from ON case_transfer (from_unit_id, complete_due);
CREATE INDEX IF NOT EXISTS case_assignment_given ON case_assignment (transferred_at);
CREATE INDEX IF NOT EXISTS case_assignment_completed ON case_assignment (completed_at);
CREATE INDEX IF NOT EXISTS case_assignment_ended ON case_assignment (ended_at);
CREATE INDEX IF NOT EXISTS case_assignment_open ON case_assignment (state, transferred_at);
CREATE INDEX IF NOT EXISTS case_callback_at ON case_callback (called_back_at);
CREATE INDEX IF NOT EXISTS report_joint_span ON report_joint (last_at, first_at);
";
