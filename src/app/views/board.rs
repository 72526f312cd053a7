//! 逾期督办台: the efficiency office's board of what is overdue now, counted by district (or
//! city bureau) and by unit, and the overdue cases of one of them. Overdue is the read model's
//! `overdue_holders` at the application's clock (the same facts the overdue sweep supervises
//! from), within the viewer's scope.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use domain::org::UnitId;
use domain::roles::{Actor, Role};
use projections::query::{IdentityRule, MAX_PER_PAGE, OverdueHolder};
use projections::report::report_group;
use projections::{CaseFilter, Page, Scope, Sort};

use super::lists::masked;
use crate::app::AppState;
use crate::app::failure::Failure;

/// Who reads the overdue board: the efficiency office (效能办) and admins.
pub const BOARD_READERS: [Role; 2] = [Role::Supervisor, Role::Admin];

/// One unit's overdue cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardUnit {
    /// The unit.
    pub unit_id: String,
    /// Its name.
    pub name: String,
    /// Overdue cases it holds.
    pub count: u64,
}

/// One district (by its centre) or city bureau, with its units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardGroup {
    /// The district centre or the bureau.
    pub group_id: String,
    /// Its name.
    pub name: String,
    /// Overdue cases held within it, each case once.
    pub count: u64,
    /// Its units holding overdue cases, most first.
    pub units: Vec<BoardUnit>,
}

/// The board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueBoard {
    /// When overdue was judged.
    pub as_of: DateTime<Utc>,
    /// Districts and bureaus with overdue cases, most first.
    pub groups: Vec<BoardGroup>,
    /// Overdue cases in all, each once.
    pub total: u64,
}

/// A group's overdue cases, and those of each of its units.
type GroupTally<'a> = (BTreeSet<&'a str>, BTreeMap<&'a str, BTreeSet<&'a str>>);

/// Whether `viewer` may read the board ([`BOARD_READERS`]).
pub fn may_read_board(viewer: &Actor) -> bool {
    viewer.has_any(&BOARD_READERS)
}

impl AppState {
    fn board_refused() -> Failure {
        Failure::role_not_allowed(
            "只有效能办和管理员可以查看逾期督办台",
            "the overdue board is for `supervisor` and `admin`",
            &BOARD_READERS,
        )
    }

    /// The overdue holders at the application's clock within `viewer`'s scope.
    async fn overdue_in_scope(
        &self,
        viewer: &Actor,
        min_position: Option<u64>,
    ) -> Result<(DateTime<Utc>, Vec<OverdueHolder>), Failure> {
        if !may_read_board(viewer) {
            return Err(Self::board_refused());
        }
        self.caught_up(min_position).await?;
        let now = self.now();
        let holders = self
            .read
            .query(move |q| q.overdue_holders(now))
            .await
            .map_err(Failure::Internal)?;
        let scope = Scope::of(viewer, &self.org());
        Ok((
            now,
            holders
                .into_iter()
                .filter(|h| scope.covers(&self.org(), &h.unit_id))
                .collect(),
        ))
    }

    /// 逾期督办台: overdue cases counted by district or bureau and by unit.
    ///
    /// # Errors
    /// 403 for roles other than [`BOARD_READERS`]; 503 behind `min_position`; read-model
    /// failures.
    pub async fn overdue_board(
        &self,
        viewer: &Actor,
        min_position: Option<u64>,
    ) -> Result<OverdueBoard, Failure> {
        let (as_of, holders) = self.overdue_in_scope(viewer, min_position).await?;
        let name = |id: &str| {
            self.org()
                .get(&UnitId::new(id))
                .map_or_else(|| id.to_owned(), |u| u.name.clone())
        };
        let mut groups: BTreeMap<String, GroupTally<'_>> = BTreeMap::new();
        let mut all = BTreeSet::new();
        for h in &holders {
            let (cases, units) = groups
                .entry(report_group(&self.org(), &h.unit_id))
                .or_default();
            cases.insert(h.case_id.as_str());
            units
                .entry(h.unit_id.as_str())
                .or_default()
                .insert(h.case_id.as_str());
            all.insert(h.case_id.as_str());
        }
        let mut groups: Vec<BoardGroup> = groups
            .into_iter()
            .map(|(group_id, (cases, units))| {
                let mut units: Vec<BoardUnit> = units
                    .into_iter()
                    .map(|(unit_id, cases)| BoardUnit {
                        name: name(unit_id),
                        unit_id: unit_id.to_owned(),
                        count: cases.len() as u64,
                    })
                    .collect();
                units.sort_by(|a, b| b.count.cmp(&a.count).then(a.unit_id.cmp(&b.unit_id)));
                BoardGroup {
                    name: name(&group_id),
                    group_id,
                    count: cases.len() as u64,
                    units,
                }
            })
            .collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.group_id.cmp(&b.group_id)));
        Ok(OverdueBoard {
            as_of,
            groups,
            total: all.len() as u64,
        })
    }

    /// The overdue cases held within `unit_id` (a unit, a district centre's district or a
    /// bureau; every one without it), the longest overdue first, one page, callers masked.
    ///
    /// # Errors
    /// As [`AppState::overdue_board`].
    pub async fn overdue_cases(
        &self,
        viewer: &Actor,
        unit_id: Option<&str>,
        (page, per_page): (u32, u32),
        min_position: Option<u64>,
    ) -> Result<Page, Failure> {
        let (now, holders) = self.overdue_in_scope(viewer, min_position).await?;
        let mut seen = BTreeSet::new();
        let ids: Vec<String> = holders
            .into_iter()
            .filter(|h| {
                unit_id.is_none_or(|u| {
                    self.org()
                        .is_within(&UnitId::new(h.unit_id.clone()), &UnitId::new(u))
                        || report_group(&self.org(), &h.unit_id) == u
                })
            })
            .filter(|h| seen.insert(h.case_id.clone()))
            .map(|h| h.case_id)
            .collect();
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let page = page.max(1);
        let start = (page as usize - 1).saturating_mul(per_page as usize);
        let total = ids.len() as u64;
        let chosen: Vec<String> = ids
            .into_iter()
            .skip(start)
            .take(per_page as usize)
            .collect();
        let filter = CaseFilter {
            text_matches: Some(chosen),
            sort: Sort::Relevance,
            page: 1,
            per_page: MAX_PER_PAGE,
            ..CaseFilter::default()
        };
        let scope = Scope::of(viewer, &self.org());
        let identity = IdentityRule::of(viewer, &self.org());
        let mut rows = self
            .read
            .query(move |q| q.cases(&filter, &scope, &identity, now))
            .await
            .map_err(Failure::Internal)?;
        rows.total = total;
        rows.total_capped = false;
        rows.page = page;
        rows.per_page = per_page;
        Ok(masked(rows, viewer, &self.org()))
    }
}
