//! Lists of cases: the case query (combined conditions, a case number, the words of the text,
//! a citizen's history) and the work lists (待办) with their counts, scoped to the viewer and
//! with every caller masked.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::calendar::WorkingTime;
use domain::identity::{mask_name, mask_phone};
use domain::org::{OrgTree, UnitId};
use domain::roles::Actor;
use projections::query::{COUNT_LIMIT, IdentityRule, MAX_PER_PAGE, WorkListOwner};
use projections::{CaseFilter, Page, Scope, Sort, WorkList, WorkListCount};

use crate::app::AppState;
use crate::app::failure::Failure;

/// How long a query waits for the case index to reach `min_position`.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(5);
/// How long a search waits for an index still catching up after a start (a restart catches
/// up in moments; a rebuild takes minutes, and a search then gets another answer at once).
pub const INDEX_READY_WAIT: Duration = Duration::from_millis(500);
/// Rows a case list pages through at most (as many as a list without text counts): the case
/// index reserves room for every row before the page, so a page far out is refused.
pub const MAX_OFFSET: u64 = COUNT_LIMIT;
/// The widest `due_soon` window, in working hours (two working weeks).
pub const MAX_DUE_WITHIN_HOURS: u32 = 80;
/// The default of `--deadline-warning-hours`: the `due_soon` window unless asked, in working
/// hours.
pub const DEFAULT_DUE_WITHIN_HOURS: u32 = 4;

/// A case query: its conditions, and the words (or the case number) of the text.
#[derive(Debug, Clone)]
pub struct CaseQuery {
    /// The conditions; its own text fields (`q`, `text_matches`) are set here, not by callers.
    pub filter: CaseFilter,
    /// What the person typed, if anything.
    pub text: Option<String>,
    /// Wait until the read model (and the case index, with text) has applied this position.
    pub min_position: Option<u64>,
}

/// How the text of a case query was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMatch {
    /// The text was a case number: that case, if the viewer may see it.
    CaseId,
    /// The case index: whole words, synonyms, ranked by relevance, `total` exact.
    Segmented,
    /// The case index is being built: the read model matched the text as one substring.
    Substring,
}

impl TextMatch {
    /// Its code (`case_id`, `segmented`, `substring`).
    pub fn code(self) -> &'static str {
        match self {
            TextMatch::CaseId => "case_id",
            TextMatch::Segmented => "segmented",
            TextMatch::Substring => "substring",
        }
    }
}

/// A page of a case list, every caller masked (DESIGN.md rule 12): people browse lists all
/// day, and a page of full identities would both expose them and bury the audit log in views
/// nobody meant to make. The full identity is on the case detail, for those allowed, and
/// recorded there.
#[derive(Debug)]
pub struct CaseListPage {
    /// The page, callers masked.
    pub page: Page,
    /// With text, how it was matched.
    pub text_match: Option<TextMatch>,
}

/// The size of each of a viewer's work lists.
#[derive(Debug)]
pub struct WorkListCounts {
    /// One per list, each at most [`COUNT_LIMIT`].
    pub counts: Vec<WorkListCount>,
    /// The read model's checkpoint when counted.
    pub position: u64,
}

/// Whether `text` is a case number (`YYYYMMDD` and five or more digits).
pub fn is_case_number(text: &str) -> bool {
    (13..=16).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// `page` with every caller masked and, on the rows of cases where the viewer's unit's part is
/// over (`domain::identity::view_extent`: a handling unit none of whose units holds the case
/// now), who holds the case now and its running deadlines left out: the row keeps what the
/// unit touched, not where the case went after it.
pub(super) fn masked(mut page: Page, viewer: &Actor, org: &OrgTree) -> Page {
    // `domain::identity::view_extent` on the row's facts.
    let oversight = domain::identity::reads_whole_cases(viewer, org);
    for row in &mut page.items {
        row.caller_name = mask_name(&row.caller_name);
        row.caller_phone = mask_phone(&row.caller_phone);
        let own = row.created_by == viewer.username
            || row.accepting_unit_id.as_deref() == Some(viewer.unit_id.as_str());
        let holds = row
            .holder_unit_ids
            .iter()
            .any(|u| org.is_within(&UnitId::new(u.clone()), &viewer.unit_id));
        if !(oversight || own || holds) {
            row.holder_unit_ids.clear();
            row.receive_due = None;
            row.complete_due = None;
        }
    }
    page
}

impl AppState {
    /// 工单查询: the cases matching every condition that `viewer` may see. A case number as
    /// the text finds that case; other text is matched by the case index (or, while that is
    /// being built, as a substring by the read model); without text, newest first.
    ///
    /// # Errors
    /// 400 for a page beyond [`MAX_OFFSET`]; 503 behind `min_position`; read-model and index
    /// failures.
    pub async fn case_list(
        &self,
        viewer: &Actor,
        query: CaseQuery,
    ) -> Result<CaseListPage, Failure> {
        let CaseQuery {
            mut filter,
            text,
            min_position,
        } = query;
        let text = text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        // However the number is written (+86, spaces, a dash after the area code).
        filter.caller_phone = filter
            .caller_phone
            .map(|p| domain::identity::normalize_phone(&p).unwrap_or(p));
        filter.q = None;
        filter.text_matches = None;
        let offset =
            u64::from(filter.page.max(1) - 1) * u64::from(filter.per_page.clamp(1, MAX_PER_PAGE));
        if offset >= MAX_OFFSET {
            return Err(Failure::bad_request(
                "invalid_paging",
                format!(
                    "`page` must stay within the first {MAX_OFFSET} cases; narrow the conditions"
                ),
            ));
        }
        self.caught_up(min_position).await?;
        let scope = Scope::of(viewer, &self.org());
        let identity = IdentityRule::of(viewer, &self.org());
        let now = self.now();
        let (page, text_match) = match text {
            None => (self.rows(filter, scope, identity, now).await?, None),
            // A case number finds that case (within the viewer's scope, as every answer).
            Some(number) if is_case_number(&number) => {
                filter.text_matches = Some(vec![number]);
                (
                    self.rows(filter, scope, identity, now).await?,
                    Some(TextMatch::CaseId),
                )
            }
            Some(text) if self.case_search.ready_within(INDEX_READY_WAIT).await => {
                if let Some(pos) = min_position
                    && !self.case_search.wait_for(pos, READ_YOUR_WRITES_WAIT).await
                {
                    return Err(Failure::Unavailable(format!(
                        "case index has not reached position {pos}"
                    )));
                }
                let page = self.text_page(&text, filter, scope, identity, now).await?;
                (page, Some(TextMatch::Segmented))
            }
            Some(text) => {
                // The case index is being built (after an upgrade or a lost index): its
                // answers would miss cases, so the read model answers, complete but by
                // substring.
                filter.q = Some(text);
                (
                    self.rows(filter, scope, identity, now).await?,
                    Some(TextMatch::Substring),
                )
            }
        };
        Ok(CaseListPage {
            page: masked(page, viewer, &self.org()),
            text_match,
        })
    }

    async fn rows(
        &self,
        filter: CaseFilter,
        scope: Scope,
        identity: IdentityRule,
        now: DateTime<Utc>,
    ) -> Result<Page, Failure> {
        self.read
            .query(move |queries| queries.cases(&filter, &scope, &identity, now))
            .await
            .map_err(Failure::Internal)
    }

    /// A page of the cases matching the words `text` and `filter` within `scope`. The case
    /// index applies the scope and the conditions before it ranks, counts every match and
    /// picks the page; the read model loads the page's rows, checking scope and conditions
    /// again.
    async fn text_page(
        &self,
        text: &str,
        mut filter: CaseFilter,
        scope: Scope,
        identity: IdentityRule,
        now: DateTime<Utc>,
    ) -> Result<Page, Failure> {
        let mut query = crate::case_search::query_of(text, &filter, &scope, now);
        if filter.caller_phone.is_some() {
            // The index holds no phone numbers: the read model names the caller's cases the
            // viewer may match on (a citizen's history is short), the index ranks among them.
            let (filter, scope, identity) = (filter.clone(), scope.clone(), identity.clone());
            let ids = self
                .read
                .query(move |queries| queries.case_ids(&filter, &scope, &identity, now))
                .await
                .map_err(Failure::Internal)?;
            query.conditions.case_ids = Some(ids);
        }
        let case_search = self.case_search.clone();
        let hits = tokio::task::spawn_blocking(move || case_search.search(&query))
            .await
            .map_err(|e| Failure::Internal(e.into()))?
            .map_err(Failure::Internal)?;
        let (page, per_page) = (filter.page, filter.per_page);
        filter.text_matches = Some(hits.case_ids);
        filter.sort = Sort::Relevance;
        filter.page = 1;
        filter.per_page = MAX_PER_PAGE;
        let mut rows = self.rows(filter, scope, identity, now).await?;
        rows.total = hits.total;
        rows.total_capped = false;
        rows.page = page.max(1);
        rows.per_page = per_page.clamp(1, MAX_PER_PAGE);
        Ok(rows)
    }

    /// The end of the `due_soon` window: `hours` working hours from now (default 4).
    fn due_soon_until(&self, hours: Option<u32>) -> Result<DateTime<Utc>, Failure> {
        let hours = hours.unwrap_or(self.deadline_warning_hours);
        if !(1..=MAX_DUE_WITHIN_HOURS).contains(&hours) {
            return Err(Failure::bad_request(
                "invalid_query",
                format!("`due_within_hours` must be 1 to {MAX_DUE_WITHIN_HOURS}"),
            ));
        }
        Ok(self
            .calendar()
            .add(self.now(), WorkingTime::Minutes(hours * 60))
            .at)
    }

    /// 待办: one of `viewer`'s work lists (their unit's; for leaders also the units they
    /// oversee; for the efficiency office what is overdue in its reach), ordered by the
    /// deadline that matters for it, callers masked.
    ///
    /// # Errors
    /// 400 for a warning window out of range; 503 behind `min_position`; read-model failures.
    pub async fn work_list(
        &self,
        viewer: &Actor,
        list: WorkList,
        due_within_hours: Option<u32>,
        paging: (u32, u32),
        min_position: Option<u64>,
    ) -> Result<Page, Failure> {
        self.work_list_in(viewer, list, due_within_hours, false, paging, min_position)
            .await
    }

    /// [`work_list`](Self::work_list), or with `reverse` the same list from its other end
    /// (the least urgent first).
    ///
    /// # Errors
    /// As [`AppState::work_list`].
    pub async fn work_list_in(
        &self,
        viewer: &Actor,
        list: WorkList,
        due_within_hours: Option<u32>,
        reverse: bool,
        (page, per_page): (u32, u32),
        min_position: Option<u64>,
    ) -> Result<Page, Failure> {
        let until = self.due_soon_until(due_within_hours)?;
        self.caught_up(min_position).await?;
        let owner = WorkListOwner::of(viewer, &self.org());
        let now = self.now();
        let page = self
            .read
            .query(move |queries| {
                queries.work_list_ordered(list, &owner, now, until, reverse, page, per_page)
            })
            .await
            .map_err(Failure::Internal)?;
        Ok(masked(page, viewer, &self.org()))
    }

    /// 待办数量: how many cases each of `viewer`'s work lists holds, counted as the lists are.
    ///
    /// # Errors
    /// As [`AppState::work_list`].
    pub async fn work_list_counts(
        &self,
        viewer: &Actor,
        due_within_hours: Option<u32>,
        min_position: Option<u64>,
    ) -> Result<WorkListCounts, Failure> {
        let until = self.due_soon_until(due_within_hours)?;
        self.caught_up(min_position).await?;
        let owner = WorkListOwner::of(viewer, &self.org());
        let now = self.now();
        let (counts, position) = self
            .read
            .query(move |queries| {
                let counts = queries.work_list_counts(&owner, now, until)?;
                Ok((counts, queries.checkpoint()?))
            })
            .await
            .map_err(Failure::Internal)?;
        Ok(WorkListCounts { counts, position })
    }
}

/// Where the deadline of a work list's row stands (the red / yellow / green mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineState {
    /// Past it (red).
    Overdue,
    /// Within the warning window (`AppState::deadline_warning_hours`, the sweep's
    /// `--deadline-warning-hours`), or warned of by the sweep (yellow).
    Warning,
    /// In time (green).
    InTime,
}

/// The deadline that matters for a row of a work list, and how much working time is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLeft {
    /// The deadline.
    pub due: DateTime<Utc>,
    /// Overdue, warning or in time.
    pub state: DeadlineState,
    /// Working minutes left until it, or (when overdue) past it, on the working calendar.
    pub working_minutes: u64,
}

impl AppState {
    /// The deadline that matters for `row` in `list` at `now`: the receive-by while the case
    /// waits to be received (待签收), else the earlier of the running ones; none for lists
    /// that wait on no deadline of the viewer's (drafts, 待转办, 待回访).
    pub fn time_left(
        &self,
        list: WorkList,
        row: &projections::CaseSummary,
        now: DateTime<Utc>,
    ) -> Option<TimeLeft> {
        let due = match list {
            WorkList::Drafts | WorkList::ToTransfer | WorkList::ToCallBack => return None,
            WorkList::ToReceive => row.receive_due.or(row.complete_due),
            _ => match (row.receive_due, row.complete_due) {
                (Some(r), Some(c)) => Some(r.min(c)),
                (r, c) => r.or(c),
            },
        }?;
        let (state, working_minutes) = if row.overdue.is_some() || due <= now {
            (
                DeadlineState::Overdue,
                self.calendar().working_minutes_between(due, now.max(due)),
            )
        } else {
            let left = self.calendar().working_minutes_between(now, due);
            let warning = row.warned || left <= u64::from(self.deadline_warning_hours) * 60;
            let state = if warning {
                DeadlineState::Warning
            } else {
                DeadlineState::InTime
            };
            (state, left)
        };
        Some(TimeLeft {
            due,
            state,
            working_minutes,
        })
    }
}
