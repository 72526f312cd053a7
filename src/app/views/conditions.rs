//! The conditions of a case query as a person or a client writes them (`?status=&q=&page=…`):
//! one struct and one reading of it, for `GET /api/v1/cases`, the query page (综合查询) and its
//! exports, so a condition the API accepts is the same condition on the page, bounded alike.

use domain::Status;
use domain::kinds::{Category, Kind, Urgency};
use projections::{CaseFilter, Sort};
use serde::Deserialize;
use utoipa::IntoParams;

use super::CaseQuery;
use crate::app::failure::Failure;
use crate::app::params::{paging, query_time};

/// Rows per page unless asked.
pub const DEFAULT_PER_PAGE: u32 = 20;
/// Most rows per page.
pub const MAX_PER_PAGE: u32 = projections::query::MAX_PER_PAGE;

/// Conditions of the case list, combined with AND.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CaseConditions {
    /// draft, accepted, transferred, in_progress, completed, called_back, archived.
    #[param(value_type = Option<String>)]
    pub status: Option<Status>,
    /// Overdue now (true) or not (false).
    pub overdue: Option<bool>,
    /// inquiry, help_request, complaint, report, proposal, praise.
    #[param(value_type = Option<String>)]
    pub category: Option<Category>,
    /// immediate, escalated, promised, suggestion, supplementary.
    #[param(value_type = Option<String>)]
    pub kind: Option<Kind>,
    /// normal, urgent, critical.
    #[param(value_type = Option<String>)]
    pub urgency: Option<Urgency>,
    /// Cases given to this unit; with `subtree=true`, touched by it or any unit below it.
    pub unit_id: Option<String>,
    /// Include the subtree of `unit_id` (default false).
    pub subtree: Option<bool>,
    /// District (区/县 unit id) of the citizen's location.
    pub district: Option<String>,
    /// Created at or after (RFC 3339, in the years 2000 to 2100).
    pub created_from: Option<String>,
    /// Created before (RFC 3339, in the years 2000 to 2100).
    pub created_to: Option<String>,
    /// Citizen history: every case of this caller number (only cases whose caller the viewer
    /// may see in full).
    pub caller_phone: Option<String>,
    /// Words of the title, content, address or replies, as said (segmented, with synonyms:
    /// 摆摊 finds 占道经营); only cases matching at least half of the words, all of them
    /// counted in `total`.
    pub q: Option<String>,
    /// relevance (default with `q`), -created_at (default without), created_at, complete_due,
    /// -complete_due, case_id.
    pub sort: Option<String>,
    /// 1-based page, 1 to 10000 (default 1), its first row within the first 10,000 cases.
    #[param(minimum = 1, maximum = 10000)]
    pub page: Option<u32>,
    /// Rows per page, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<u32>,
    /// Wait (up to 5 s) until the read model has applied this global position.
    pub min_position: Option<u64>,
}

impl CaseConditions {
    /// The query these conditions ask for.
    ///
    /// # Errors
    /// `400 invalid_paging` for paging out of bounds; `400 invalid_query` for a sort or a
    /// time that is not one.
    pub fn into_query(self) -> Result<CaseQuery, Failure> {
        let (page, per_page) = paging(self.page, self.per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
        let has_text = self.q.as_deref().is_some_and(|t| !t.trim().is_empty());
        let sort = match self.sort.as_deref() {
            None if has_text => Sort::Relevance,
            None => Sort::default(),
            Some(s) => Sort::parse(s).ok_or_else(|| {
                Failure::bad_request(
                    "invalid_query",
                    format!(
                        "`sort` must be relevance, -created_at, created_at, complete_due, -complete_due or case_id, got `{s}`"
                    ),
                )
            })?,
        };
        let filter = CaseFilter {
            status: self.status,
            overdue: self.overdue,
            category: self.category,
            kind: self.kind,
            urgency: self.urgency,
            unit_id: self.unit_id,
            subtree: self.subtree.unwrap_or(false),
            district_id: self.district,
            created_from: query_time("created_from", self.created_from.as_deref())?,
            created_to: query_time("created_to", self.created_to.as_deref())?,
            caller_phone: self.caller_phone,
            q: None,
            text_matches: None,
            sort,
            page,
            per_page,
        };
        Ok(CaseQuery {
            filter,
            text: self.q,
            min_position: self.min_position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_sorts_by_relevance_unless_told_and_bad_input_is_refused() {
        let with_text = CaseConditions {
            q: Some("噪音".into()),
            ..CaseConditions::default()
        };
        assert_eq!(with_text.into_query().unwrap().filter.sort, Sort::Relevance);
        assert_eq!(
            CaseConditions::default().into_query().unwrap().filter.sort,
            Sort::default()
        );
        let bad_sort = CaseConditions {
            sort: Some("title".into()),
            ..CaseConditions::default()
        };
        assert_eq!(bad_sort.into_query().unwrap_err().status(), 400);
        let bad_page = CaseConditions {
            per_page: Some(201),
            ..CaseConditions::default()
        };
        assert_eq!(bad_page.into_query().unwrap_err().status(), 400);
        let bad_time = CaseConditions {
            created_from: Some("yesterday".into()),
            ..CaseConditions::default()
        };
        assert_eq!(bad_time.into_query().unwrap_err().status(), 400);
    }
}
