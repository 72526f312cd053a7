//! The view layer: what a person may see, already scoped, masked, audited, labelled and
//! carrying the actions they may take now: the case detail, the case list and the work lists,
//! the KPI table, the daily report, the efficiency office's overdue board and the route with
//! its suggestion; for the operator's console, who may take calls, the unit search and the
//! knowledge base's suggestions. The JSON API renders
//! these views (`src/http/`); the workbench will render the same views as HTML, so no page can
//! skip a scope check, a mask or the identity-view audit, and no handler holds a rule. No wire
//! shapes here (the daily report's document, which the job writes to files as well, aside):
//! times stay `DateTime`, labels are the domain's, failures are [`super::failure::Failure`].

mod board;
mod case;
mod conditions;
mod export;
mod intake;
mod kb;
mod kpis;
mod lists;
mod report;
mod route;
mod rules;
#[cfg(test)]
mod tests;

pub use board::{BOARD_READERS, BoardGroup, BoardUnit, OverdueBoard, may_read_board};
pub use case::{CaseDetail, IdentityViewPage, MAX_IDENTITY_VIEWS_PER_PAGE, TimelineItem};
pub use conditions::{CaseConditions, DEFAULT_PER_PAGE, MAX_PER_PAGE};
pub use export::{CaseExport, HEADERS as EXPORT_HEADERS, neutralised};
pub use intake::{FoundUnit, UnitSearch};
pub use kb::{
    ArticleDetail, KB_EDITORS, KB_MAX_QUERY_CHARS, KB_MAX_RESULTS, KbSearch, check_kb_query,
    is_kb_editor, kb_failure, kb_index_ready,
};
pub use kpis::{KpiRow, KpiTable, Period};
pub use lists::{
    CaseListPage, CaseQuery, DEFAULT_DUE_WITHIN_HOURS, DeadlineState, INDEX_READY_WAIT,
    MAX_DUE_WITHIN_HOURS, MAX_OFFSET, TextMatch, TimeLeft, WorkListCounts, is_case_number,
};
pub use report::{DailyReportRow, DailyReportView};
pub use route::{HopDetail, NextUnits, RouteDetail, SuggestedUnit, SuggestionDetail, UnitLabel};

use std::time::Duration;

use super::AppState;
use super::failure::Failure;

/// How long a query waits for `min_position`.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(5);

impl AppState {
    /// Waits until the read model has applied `min_position` (read your writes).
    ///
    /// # Errors
    /// [`Failure::Unavailable`] when it has not within 5 seconds.
    pub async fn caught_up(&self, min_position: Option<u64>) -> Result<(), Failure> {
        if let Some(pos) = min_position
            && !self.read.wait_for(pos, READ_YOUR_WRITES_WAIT).await
        {
            return Err(Failure::Unavailable(format!(
                "read model has not reached position {pos}"
            )));
        }
        Ok(())
    }
}

/// A CSV field, quoted when it must be.
pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A rate as a percentage with one decimal (`50.0%`), empty without one.
pub(crate) fn pct(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_default()
}
