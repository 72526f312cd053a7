//! Everything the edges (the JSON API, the workbench, the jobs) serve from: the command
//! service, the read models, the knowledge base, the case index and the KPI weights, built
//! once at start-up. The view layer (`super::views`) answers from it.

use std::sync::Arc;

use super::App;
use crate::case_search::CaseSearch;
use crate::kb::Kb;
use crate::projection_runner::ReadSide;

/// The application's parts. It dereferences to the [`App`].
#[derive(Clone)]
pub struct AppState {
    /// The command service.
    pub app: Arc<App>,
    /// The read models.
    pub read: Arc<ReadSide>,
    /// The knowledge base.
    pub kb: Arc<Kb>,
    /// The case-text index.
    pub case_search: Arc<CaseSearch>,
    /// The KPI ranking weights (`--kpi-weights`).
    pub kpi_weights: projections::kpi::KpiWeights,
    /// The warning window in working hours (`--deadline-warning-hours`): what 即将到期 and the
    /// yellow mark mean, the window the sweep warns in.
    pub deadline_warning_hours: u32,
    /// The login path and the audit of access.
    pub access: Arc<crate::access::Access>,
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}
