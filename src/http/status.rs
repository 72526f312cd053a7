//! `GET /api/v1/status`: how far the read database and the search indexes have followed the
//! event store, so an administrator (or a script) can see a rebuild's progress after a start.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::Caller;
use crate::case_search::CaseSearch;
use crate::index_follower::IndexStatus;
use crate::kb::Kb;
use crate::projection_runner::ReadSide;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

/// Where each projection stands. Positions are the store's global positions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceStatus {
    /// The last position the event store has written.
    head: u64,
    /// The read database (lists, work lists, KPIs, reports).
    read_model: ReadModelStatus,
    /// The knowledge-base index (`/api/v1/kb/search`, `/suggest`).
    kb_index: IndexState,
    /// The case-text index (`/api/v1/cases?q=`).
    case_index: IndexState,
}

/// The read database's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadModelStatus {
    /// The last position applied (and committed with its checkpoint).
    applied: u64,
}

/// A search index's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexState {
    /// `catching_up` (after a start, until it has applied what the store held then; searches
    /// meanwhile answer 503, or the case list matches `q` by substring) or `following`.
    state: &'static str,
    /// Searches see every change up to this position.
    visible: u64,
    /// The last position applied, committed or not.
    applied: u64,
    /// The store's head when the service started: where the catch-up ends.
    start_head: u64,
}

impl From<IndexStatus> for IndexState {
    fn from(s: IndexStatus) -> Self {
        IndexState {
            state: if s.caught_up {
                "following"
            } else {
                "catching_up"
            },
            visible: s.visible,
            applied: s.applied,
            start_head: s.start_head,
        }
    }
}

/// 同步状态: how far the read database and the search indexes have followed the event store.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, body = ServiceStatus), (status = 401, body = Problem)))]
async fn status(
    State(app): State<AppState>,
    State(read): State<Arc<ReadSide>>,
    State(kb): State<Arc<Kb>>,
    State(case_search): State<Arc<CaseSearch>>,
    Caller(_user): Caller,
) -> Result<Json<ServiceStatus>, ApiError> {
    Ok(Json(ServiceStatus {
        head: app.store.head().0,
        read_model: ReadModelStatus {
            applied: read.applied(),
        },
        kb_index: kb.status().into(),
        case_index: case_search.status().into(),
    }))
}
