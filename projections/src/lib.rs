//! Minqing read models: the event stream folded into SQLite tables that queries and work lists
//! read (DESIGN.md section 4).
//!
//! The command side keeps the truth in event streams; this crate keeps a read database (by
//! default `data/read.db`) with one row per case and a few side tables, rebuilt from the
//! stream at any time.
//!
//! # Layout
//!
//! - [`row`]: the pure part: what one case looks like in the case list ([`row::CaseRow`]),
//!   built from a `domain::Case`, and the status label computed from it at a given time.
//! - [`projector`]: the write side: [`Projector`] applies batches of events in one
//!   transaction each, with the checkpoint in the same transaction.
//! - [`query`]: the read side: [`Queries`] answers the case list, citizen history and work
//!   lists, scoped exactly like `domain::identity::may_view_case`.
//! - [`route`]: the path a case has travelled (流转轨迹), from its events.
//! - [`kpi`]: KPIs per unit and period and the weighted ranking, summed over the days of
//!   `kpi_day` (figures per unit and Shanghai day, kept as cases change), `overdue_step` and
//!   `overdue_day` (the daily report's overdue counts as changes in time).
//! - [`report`]: the daily report (日报) per district and bureau, a snapshot at the day's end.
//! - `schema`: the SQL tables.
//!
//! The runner that feeds a [`Projector`] from the event store lives in the binary
//! (`src/projection_runner.rs`), because only it knows the store and the event codec; this
//! crate sees events already decoded ([`SourcedEvent`]).
//!
//! # Invariants
//!
//! - A batch's rows and the checkpoint (the last global position applied) commit in one
//!   transaction, so a restart resumes exactly where the last commit stopped.
//! - Applying the same events, live in many batches or in one rebuild, gives the same tables.
//! - Case states come from `domain::evolve`; no rule of the flow is repeated here. Overdue is
//!   derived at query time from the recorded deadlines and the caller's clock.

pub mod calendars;
pub mod kpi;
mod kpi_day;
mod overdue_day;
pub mod projector;
pub mod query;
pub mod report;
pub mod route;
pub mod row;
mod schema;
#[cfg(test)]
mod tests;

use domain::Event;

pub use calendars::Calendars;
pub use projector::{Projector, write_fresh};
pub use query::{CaseFilter, CaseSummary, Page, Queries, Scope, Sort, WorkList, WorkListCount};

/// Name of the case-list projection in the checkpoint table.
pub const CASE_LIST: &str = "case_list";

/// One decoded case event with where it sits in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedEvent {
    /// Global position (the checkpoint).
    pub position: u64,
    /// The stream, `case-{number}`.
    pub stream: String,
    /// Version of the stream after this event (the first event is 1).
    pub version: u64,
    /// The event.
    pub event: Event,
}

/// Why the read database could not be updated or read.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// SQLite failed (IO, corruption, a locked file).
    #[error("read database failed")]
    Sqlite(#[from] rusqlite::Error),
    /// Writing or syncing a read database file failed.
    #[error("read database file could not be written")]
    Io(#[from] std::io::Error),
    /// An event arrived without the earlier events of its stream: the runner must pass the
    /// stream's history for the streams [`Projector::missing`] names.
    #[error(
        "event {position} is version {version} of `{stream}`, but the read model holds version {held}"
    )]
    Gap {
        /// The stream.
        stream: String,
        /// The event's global position.
        position: u64,
        /// The event's stream version.
        version: u64,
        /// The version the projector holds.
        held: u64,
    },
}
