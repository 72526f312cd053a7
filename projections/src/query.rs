//! The read side: the case list with combined conditions, citizen history and work lists, each
//! scoped to what the caller may see.

use std::path::Path;

use chrono::{DateTime, Utc};
use domain::case::Overdue;
use domain::kinds::{Category, Kind, Urgency};
use domain::org::{OrgTree, UnitId};
use domain::roles::{Actor, Role};
use domain::{Stage, Status};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::projector::micros;
use crate::row::{
    accepted_by_key, category_code, created_by_key, kind_code, overdue_kind, parse_stage,
    parse_status, status_code, status_label, urgency_code,
};
use crate::{CASE_LIST, ProjectionError};

/// Matches counted at most; a page reports more as [`Page::total_capped`].
pub const COUNT_LIMIT: u64 = 10_000;

/// Largest page.
pub const MAX_PER_PAGE: u32 = 200;

/// Which cases a caller may see, as `domain::identity::may_view_case` decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Admins, the city's efficiency office and the city centre see every case.
    All,
    /// Everyone else: what they created, what their unit accepted, and what their unit (or a
    /// unit below it, or for leaders a unit they oversee) was given or transferred. A leader
    /// and nothing else sees only what went to the units they oversee (accepted by one of
    /// them, or given to or transferred by one of them or a unit below).
    Limited {
        /// The caller's login name (`None` for a leader only).
        username: Option<String>,
        /// The units whose accepted cases the caller sees: their own, and for leaders the
        /// units they oversee.
        accepting_units: Vec<String>,
        /// The caller's unit (unless a leader only) and, for leaders, the units they oversee.
        units: Vec<String>,
    },
}

impl Scope {
    /// The scope of `actor`.
    pub fn of(actor: &Actor, org: &OrgTree) -> Scope {
        if actor.sees_every_case(org) {
            return Scope::All;
        }
        let own = !actor.leads_only();
        let mut units = Vec::new();
        if own {
            units.push(actor.unit_id.to_string());
        }
        if actor.has(Role::Leader) {
            units.extend(actor.oversees.iter().map(ToString::to_string));
        }
        Scope::Limited {
            username: own.then(|| actor.username.clone()),
            accepting_units: units.clone(),
            units,
        }
    }
}

impl Scope {
    /// Whether the rows of `unit` (a KPI or report row) are within this scope: every unit for
    /// [`Scope::All`], else the units within one of the scope's units.
    pub fn covers(&self, org: &OrgTree, unit: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Limited { units, .. } => units
                .iter()
                .any(|u| org.is_within(&UnitId::new(unit), &UnitId::new(u.clone()))),
        }
    }
}

/// Whose full caller identity the SQL may match on (a phone filter must not reveal a masked
/// caller); mirrors `domain::identity::may_see_identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRule {
    /// Admins see every identity.
    pub all: bool,
    /// Centre staff see the identities of the cases their unit accepted.
    pub accepting_unit_id: Option<String>,
    /// Centre staff at a centre see drafts' identities.
    pub drafts: bool,
    /// Handling staff see the identities that are not confidential of the cases this unit
    /// (theirs) holds now.
    pub non_confidential: Option<String>,
}

impl IdentityRule {
    /// The rule of `actor`.
    pub fn of(actor: &Actor, org: &OrgTree) -> IdentityRule {
        let centre_staff = actor.has_any(&[Role::Operator, Role::ShiftLeader, Role::Dispatcher]);
        IdentityRule {
            all: actor.has(Role::Admin),
            accepting_unit_id: centre_staff.then(|| actor.unit_id.to_string()),
            drafts: centre_staff && org.get(&actor.unit_id).is_some_and(|u| u.kind.is_centre()),
            non_confidential: actor
                .has_any(&[Role::Handler, Role::Dispatcher, Role::ShiftLeader])
                .then(|| actor.unit_id.to_string()),
        }
    }
}

/// How to order the case list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Newest first (the default).
    #[default]
    CreatedDesc,
    /// Oldest first.
    CreatedAsc,
    /// Earliest handling deadline first (cases without one last).
    CompleteDueAsc,
    /// Latest handling deadline first.
    CompleteDueDesc,
    /// By case number.
    CaseIdAsc,
    /// Best text match first (the order of [`CaseFilter::text_matches`]); without text
    /// matches, as [`Sort::CreatedDesc`].
    Relevance,
}

impl Sort {
    /// `-created_at`, `created_at`, `complete_due`, `-complete_due`, `case_id`.
    pub fn parse(text: &str) -> Option<Sort> {
        Some(match text {
            "-created_at" => Sort::CreatedDesc,
            "created_at" => Sort::CreatedAsc,
            "complete_due" => Sort::CompleteDueAsc,
            "-complete_due" => Sort::CompleteDueDesc,
            "case_id" => Sort::CaseIdAsc,
            "relevance" => Sort::Relevance,
            _ => return None,
        })
    }

    /// The order of a sort by creation, on unqualified columns (`case_scope` rows are kept in
    /// it within each key).
    fn by_creation(self) -> Option<&'static str> {
        match self {
            Sort::CreatedDesc | Sort::Relevance => Some("created_at DESC, case_id DESC"),
            Sort::CreatedAsc => Some("created_at ASC, case_id ASC"),
            Sort::CaseIdAsc | Sort::CompleteDueAsc | Sort::CompleteDueDesc => None,
        }
    }

    /// The opposite order (a work list read from its other end); a sort by case number or
    /// relevance stays as it is.
    fn reversed(self) -> Sort {
        match self {
            Sort::CreatedDesc => Sort::CreatedAsc,
            Sort::CreatedAsc => Sort::CreatedDesc,
            Sort::CompleteDueAsc => Sort::CompleteDueDesc,
            Sort::CompleteDueDesc => Sort::CompleteDueAsc,
            other @ (Sort::CaseIdAsc | Sort::Relevance) => other,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Sort::CreatedDesc | Sort::Relevance => "c.created_at DESC, c.case_id DESC",
            Sort::CreatedAsc => "c.created_at ASC, c.case_id ASC",
            Sort::CompleteDueAsc => "c.complete_due ASC, c.case_id ASC",
            Sort::CompleteDueDesc => "c.complete_due DESC, c.case_id DESC",
            Sort::CaseIdAsc => "c.case_id ASC",
        }
    }
}

/// Conditions of `GET /api/v1/cases`, all combined with AND.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// The state a user sees, without overdue.
    pub status: Option<Status>,
    /// Overdue (true) or not (false) at the query's `now`.
    pub overdue: Option<bool>,
    /// 诉求类别.
    pub category: Option<Category>,
    /// 件别.
    pub kind: Option<Kind>,
    /// 紧急程度.
    pub urgency: Option<Urgency>,
    /// Cases given to this unit (or, with `subtree`, touched by it or any unit below it).
    pub unit_id: Option<String>,
    /// Whether `unit_id` includes its subtree.
    pub subtree: bool,
    /// The district of the citizen's location.
    pub district_id: Option<String>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    /// Exactly this caller number (citizen history); only matches cases whose identity the
    /// caller may see.
    pub caller_phone: Option<String>,
    /// Substring of title, content or address; ignored when `text_matches` is given.
    pub q: Option<String>,
    /// Only these cases, in this order under [`Sort::Relevance`]. The service fills it with
    /// the page of ids the case index chose for `q`, so the rows are loaded here and the scope
    /// and the other conditions checked again; the substring `q` above is the fallback for
    /// callers without an index.
    pub text_matches: Option<Vec<String>>,
    /// Order.
    pub sort: Sort,
    /// 1-based page.
    pub page: u32,
    /// Rows per page (1 to [`MAX_PER_PAGE`]).
    pub per_page: u32,
}

/// The work lists (待办) of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkList {
    /// 草稿: the caller's own drafts.
    Drafts,
    /// 待接收: holders not yet received.
    ToReceive,
    /// 办理中: holders received.
    InProgress,
    /// 即将到期: holders whose receive-by or complete-by falls within the warning window.
    DueSoon,
    /// 已逾期: holders past a deadline (for the efficiency office: every overdue case).
    Overdue,
    /// 待回访: completed cases the caller's centre accepted.
    ToCallBack,
    /// 我转办的: open transfers the caller's unit made, with whether it may still recall.
    TransferredByMe,
    /// 待转办: cases waiting at the caller's centre to be sent on (`Case::waiting_for_transfer`:
    /// accepted here and not sent yet, recalled, or returned with the return accepted; for a
    /// district centre, received from the city).
    ToTransfer,
    /// 待审批: return and extension requests waiting for the caller's unit to decide
    /// (`Case::requests_awaiting_decision`).
    ToDecide,
}

impl WorkList {
    /// The wire code.
    pub fn parse(text: &str) -> Option<WorkList> {
        Some(match text {
            "drafts" => WorkList::Drafts,
            "to_receive" => WorkList::ToReceive,
            "in_progress" => WorkList::InProgress,
            "due_soon" => WorkList::DueSoon,
            "overdue" => WorkList::Overdue,
            "to_call_back" => WorkList::ToCallBack,
            "transferred_by_me" => WorkList::TransferredByMe,
            "to_transfer" => WorkList::ToTransfer,
            "to_decide" => WorkList::ToDecide,
            _ => return None,
        })
    }

    /// The Chinese name on the workbench's tab.
    pub fn label(self) -> &'static str {
        match self {
            WorkList::Drafts => "草稿",
            WorkList::ToTransfer => "待转办",
            WorkList::ToReceive => "待签收",
            WorkList::InProgress => "办理中",
            WorkList::DueSoon => "即将到期",
            WorkList::Overdue => "已逾期",
            WorkList::ToDecide => "待审批",
            WorkList::ToCallBack => "待回访",
            WorkList::TransferredByMe => "我转办的",
        }
    }

    /// Every work list, in the order `GET /api/v1/worklist/counts` gives them.
    pub const ALL: [WorkList; 9] = [
        WorkList::Drafts,
        WorkList::ToTransfer,
        WorkList::ToReceive,
        WorkList::InProgress,
        WorkList::DueSoon,
        WorkList::Overdue,
        WorkList::ToDecide,
        WorkList::ToCallBack,
        WorkList::TransferredByMe,
    ];

    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            WorkList::Drafts => "drafts",
            WorkList::ToReceive => "to_receive",
            WorkList::InProgress => "in_progress",
            WorkList::DueSoon => "due_soon",
            WorkList::Overdue => "overdue",
            WorkList::ToCallBack => "to_call_back",
            WorkList::TransferredByMe => "transferred_by_me",
            WorkList::ToTransfer => "to_transfer",
            WorkList::ToDecide => "to_decide",
        }
    }
}

/// The number of cases in one work list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkListCount {
    /// Which list.
    pub list: WorkList,
    /// Its cases, at most [`COUNT_LIMIT`].
    pub count: u64,
    /// More than [`COUNT_LIMIT`] cases.
    pub capped: bool,
}

/// Whose work list: a user, their unit, the units a leader oversees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkListOwner {
    /// Login name (for drafts).
    pub username: String,
    /// The user's unit, whose own lists (待转办, 待审批, 待回访, 我转办的) these are; `None` for a
    /// leader only, who acts for no unit.
    pub unit_id: Option<String>,
    /// The user's unit (unless a leader only) and, for leaders, every unit within those they
    /// oversee; for a
    /// district's efficiency office, every unit of its district (its board of what the
    /// district holds, overdue included).
    pub units: Vec<String>,
    /// The efficiency office sees every overdue case.
    pub every_overdue: bool,
}

impl WorkListOwner {
    /// The owner of `actor`'s work lists.
    pub fn of(actor: &Actor, org: &OrgTree) -> WorkListOwner {
        let own = !actor.leads_only();
        let mut units = Vec::new();
        if own || actor.oversees_unit(org, &actor.unit_id) {
            units.push(actor.unit_id.to_string());
        }
        let district_office = actor.has(Role::Supervisor) && !actor.sees_every_case(org);
        if actor.has(Role::Leader) || district_office {
            units.extend(
                org.units()
                    .iter()
                    .filter(|u| {
                        u.id != actor.unit_id
                            && ((actor.has(Role::Leader) && actor.oversees_unit(org, &u.id))
                                || (district_office && org.is_below(&u.id, &actor.unit_id)))
                    })
                    .map(|u| u.id.to_string()),
            );
        }
        WorkListOwner {
            username: actor.username.clone(),
            unit_id: own.then(|| actor.unit_id.to_string()),
            units,
            // The whole city's overdue cases are the city efficiency office's list; a
            // district's office sees what its scope holds.
            every_overdue: actor.has(Role::Supervisor) && actor.sees_every_case(org),
        }
    }
}

/// One case in a list, with its label and overdue state at the query's `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseSummary {
    /// 工单编号.
    pub case_id: String,
    /// Stream version.
    pub version: u64,
    /// Global position of the last event applied to the row.
    pub position: u64,
    /// The coarse stage.
    pub stage: Stage,
    /// The state a user sees.
    pub status: Status,
    /// The Chinese label with the overdue variants.
    pub status_label: &'static str,
    /// Which overdue variant applies, if any.
    pub overdue: Option<Overdue>,
    /// Category code.
    pub category: Option<String>,
    /// Kind code.
    pub kind: Option<String>,
    /// Urgency code.
    pub urgency: Option<String>,
    /// The citizen's place.
    pub location_unit_id: Option<String>,
    /// Its district.
    pub district_id: Option<String>,
    /// 受理单位.
    pub accepting_unit_id: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When it was accepted.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Earliest receive-by of a holder not yet received.
    pub receive_due: Option<DateTime<Utc>>,
    /// Earliest complete-by of a holder.
    pub complete_due: Option<DateTime<Utc>>,
    /// 来电人姓名, unmasked: the caller of [`Queries`] masks.
    pub caller_name: String,
    /// 来电号码, unmasked likewise.
    pub caller_phone: String,
    /// The caller asked for confidentiality.
    pub confidential: bool,
    /// 标题.
    pub title: String,
    /// 地址.
    pub address: String,
    /// Units holding it now.
    pub holder_unit_ids: Vec<String>,
    /// 督办 received.
    pub supervised: bool,
    /// 批示 received.
    pub annotated: bool,
    /// 到期预警 of a deadline that still runs.
    pub warned: bool,
    /// 联办件.
    pub joint: bool,
    /// For [`WorkList::TransferredByMe`]: whether the unit may still recall.
    pub recallable: Option<bool>,
    /// For [`WorkList::ToDecide`]: the requests waiting (`return`, `extension`).
    pub requests: Option<Vec<String>>,
}

/// A holder past a deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueHolder {
    /// 工单编号.
    pub case_id: String,
    /// The assignment within the case.
    pub assignment_id: u32,
    /// The holding unit.
    pub unit_id: String,
    /// `not_received` or `not_completed`.
    pub kind: &'static str,
    /// The deadline passed.
    pub deadline: DateTime<Utc>,
}

/// A holder with a deadline falling due soon (到期预警).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSoonHolder {
    /// 工单编号.
    pub case_id: String,
    /// The assignment within the case.
    pub assignment_id: u32,
    /// The holding unit.
    pub unit_id: String,
    /// Which deadline.
    pub deadline: domain::event::DeadlineKind,
    /// When it falls due.
    pub due_at: DateTime<Utc>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The rows.
    pub items: Vec<CaseSummary>,
    /// Rows matching, over all pages, at most [`COUNT_LIMIT`].
    pub total: u64,
    /// More than [`COUNT_LIMIT`] rows match.
    pub total_capped: bool,
    /// The page returned (1-based).
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// The read model's checkpoint when the query ran.
    pub position: u64,
}

/// Read-only queries on the read database.
pub struct Queries {
    conn: Connection,
    /// The plan of every scoped page, forced by tests to take each plan on small data.
    forced_plan: Option<ScopePlan>,
    /// [`DENSE_SCOPE`], lowered by tests.
    dense_scope: i64,
    /// [`PROBE_WALK`], changed by tests.
    probe_walk: i64,
}

const COLUMNS: &str = "c.case_id, c.version, c.position, c.stage, c.status, c.merged,
    c.answered_on_call, c.receive_due, c.complete_due, c.completed_late, c.category, c.kind,
    c.urgency, c.location_unit_id, c.district_id, c.accepting_unit_id, c.created_by,
    c.created_at, c.accepted_at, c.completed_at, c.caller_name, c.caller_phone, c.confidential,
    c.title, c.address, c.holder_unit_ids, c.supervised, c.annotated, c.warned, c.joint";

/// What a list that adds no column of its own selects after [`COLUMNS`].
const NO_EXTRA: &str = "NULL, NULL";

/// A WHERE clause under construction.
#[derive(Default)]
struct Conditions {
    /// Every condition, on the case list `c`.
    sql: Vec<String>,
    params: Vec<Value>,
    /// The conditions the facts of `case_scope` answer, on its rows `s`.
    fact_sql: Vec<String>,
    fact_params: Vec<Value>,
    /// Some condition needs the case list itself.
    needs_case_list: bool,
    /// The caller's `case_scope` keys; empty when the caller sees every case.
    scope_keys: Vec<Value>,
    /// The index a page of every case (no scope) walks, when SQLite would choose worse.
    page_index: Option<&'static str>,
    /// The index such a count reads, when SQLite would choose worse.
    count_index: Option<&'static str>,
}

/// How a page of a caller who sees only some cases is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopePlan {
    /// The caller's `case_scope` rows and their facts alone, whenever the conditions are
    /// facts: sorted by creation, each key's rows are walked in order and stop after the
    /// page; other sorts read the keys' matching rows and sort them. Only the page's cases
    /// are read from the case list.
    ScopeRows,
    /// The case list in its sort's index order, each case's scope probed, stopping after the
    /// page: for conditions only the case list answers, when the caller sees many cases.
    Probing,
    /// The caller's cases by key, each looked up in the case list: for conditions only the
    /// case list answers (a caller number, a unit's subtree, text), when the caller sees few.
    Driving,
}

/// A [`ScopePlan::Probing`] page first walks at most this many cases (past the earlier
/// pages); when they do not fill the page, [`ScopePlan::Driving`] finds it. Lists are mostly
/// of recent cases, so the walk mostly suffices.
const PROBE_WALK: i64 = 5_000;

/// How a probe finds a case's scope row from its case list row `c`; `case_scope` keeps no
/// creation time as NULL (see `row::ScopeFacts::created_at`).
const PROBE_ROW: &str =
    "s.created_at = coalesce(c.created_at, -9223372036854775808) AND s.case_id = c.case_id";

/// How the scope condition is written, which steers SQLite's plan.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ScopeForm {
    /// `case_id IN (keys' rows)`: driven from the scope index, best when the caller sees few
    /// cases (a street office among a million).
    Driving,
    /// `EXISTS (a key's row)` per case: the case list is walked in the sort's index order and
    /// the page stops early, best for a page when the caller sees many cases (a district).
    Probing,
}

/// How a work list is read.
enum ListPlan {
    /// From a side table's index, in its deadline order.
    Side(SideList),
    /// From the case list, like `GET /api/v1/cases`.
    Cases(Conditions, Sort),
}

/// A work list read from a side table (see [`Queries::side_page`]).
struct SideList {
    /// The table and its alias, `case_holder h`.
    from: &'static str,
    /// The alias.
    alias: &'static str,
    /// The table's column the list is ordered by (the deadline that matters for it), on
    /// its rows and so for each case (the earliest of its rows).
    deadline: &'static str,
    /// Which of its rows, on the alias.
    where_sql: String,
    params: Vec<Value>,
    /// The columns added to each row of the page (`recallable`, `requests`), on the case
    /// list `c`, with their parameters.
    extra: Option<(String, Vec<Value>)>,
    /// Read from the other end: the latest deadline first (each case at its latest row).
    reverse: bool,
}

/// Above this many `case_scope` rows for a caller's keys, a page whose conditions need the
/// case list walks it in index order ([`ScopePlan::Probing`]) instead of looking up every
/// visible case.
const DENSE_SCOPE: i64 = 20_000;

impl Conditions {
    /// A condition only the case list answers.
    fn push(&mut self, sql: impl Into<String>, params: impl IntoIterator<Item = Value>) {
        self.sql.push(sql.into());
        self.params.extend(params);
        self.needs_case_list = true;
    }

    /// The conditions on the scope rows' facts, each as ` AND …`.
    fn facts_sql(&self) -> String {
        self.fact_sql.iter().map(|f| format!(" AND {f}")).collect()
    }

    /// A condition on a column `case_scope` repeats, written on the case list and on the
    /// scope rows.
    fn push_fact(&mut self, column_sql: &str, params: &[Value]) {
        self.sql.push(column_sql.replace("{t}", "c"));
        self.params.extend(params.iter().cloned());
        self.fact_sql.push(column_sql.replace("{t}", "s"));
        self.fact_params.extend(params.iter().cloned());
    }

    fn text(v: &str) -> Value {
        Value::Text(v.to_owned())
    }

    fn placeholders(n: usize) -> String {
        vec!["?"; n].join(", ")
    }

    fn scope(&mut self, scope: &Scope) {
        if let Scope::Limited {
            username,
            accepting_units,
            units,
        } = scope
        {
            // The caller's keys in `case_scope` (see `row::visibility_keys`).
            self.scope_keys = units.iter().map(|u| Self::text(u)).collect();
            if let Some(username) = username {
                self.scope_keys.push(Value::Text(created_by_key(username)));
            }
            self.scope_keys.extend(
                accepting_units
                    .iter()
                    .map(|u| Value::Text(accepted_by_key(u))),
            );
            if self.scope_keys.is_empty() {
                // A leader overseeing nothing sees nothing; no key matches this one.
                self.scope_keys.push(Value::Text(String::new()));
            }
        }
    }

    fn identity(&mut self, rule: &IdentityRule) {
        if rule.all {
            return;
        }
        let mut alternatives = Vec::new();
        let mut params = Vec::new();
        if let Some(unit) = &rule.accepting_unit_id {
            alternatives.push("c.accepting_unit_id = ?");
            params.push(Self::text(unit));
        }
        if rule.drafts {
            alternatives.push("c.accepting_unit_id IS NULL");
        }
        if let Some(unit) = &rule.non_confidential {
            alternatives.push(
                "(c.confidential = 0 AND EXISTS (SELECT 1 FROM case_holder h \
                 WHERE h.case_id = c.case_id AND h.unit_id = ?))",
            );
            params.push(Self::text(unit));
        }
        if alternatives.is_empty() {
            alternatives.push("0");
        }
        self.push(format!("({})", alternatives.join(" OR ")), params);
    }

    /// The WHERE clause with the scope written in `form`, and its parameters in order.
    fn clause(&self, form: ScopeForm) -> (String, Vec<Value>) {
        let mut sql = Vec::with_capacity(self.sql.len() + 1);
        let mut params = Vec::with_capacity(self.params.len() + self.scope_keys.len());
        if !self.scope_keys.is_empty() {
            let keys = Self::placeholders(self.scope_keys.len());
            sql.push(match form {
                ScopeForm::Driving => {
                    // The facts narrow the keys' rows before any case is looked up.
                    let facts = self.facts_sql();
                    params.extend(self.scope_keys.iter().cloned());
                    params.extend(self.fact_params.iter().cloned());
                    format!(
                        "c.case_id IN (SELECT s.case_id FROM case_scope s WHERE s.unit_id IN \
                         ({keys}){facts})"
                    )
                }
                ScopeForm::Probing => {
                    params.extend(self.scope_keys.iter().cloned());
                    // The whole key of the scope row: (key, created_at, case).
                    format!(
                        "EXISTS (SELECT 1 FROM case_scope s WHERE s.unit_id IN ({keys}) AND \
                         {PROBE_ROW})"
                    )
                }
            });
        }
        sql.extend(self.sql.iter().cloned());
        params.extend(self.params.iter().cloned());
        if sql.is_empty() {
            (String::new(), params)
        } else {
            (format!("WHERE {}", sql.join(" AND ")), params)
        }
    }
}

impl Queries {
    /// Opens the read database at `path` read-only (the [`crate::Projector`] must have
    /// created it).
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn open(path: &Path) -> Result<Self, ProjectionError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Reads through a memory map instead of a system call per page: a scoped count at a
        // million cases touches tens of thousands of pages.
        conn.pragma_update(None, "mmap_size", 1_i64 << 32)?;
        Ok(Queries {
            conn,
            forced_plan: None,
            dense_scope: DENSE_SCOPE,
            probe_walk: PROBE_WALK,
        })
    }

    /// Makes every scoped page take `plan` (where its conditions allow), so tests on small
    /// data take each plan.
    #[cfg(test)]
    pub(crate) fn force_plan(&mut self, plan: Option<ScopePlan>) {
        self.forced_plan = plan;
    }

    /// Makes every scope dense and the first walk of a page `walk` cases long, so tests on
    /// small data take the walk and its fallback.
    #[cfg(test)]
    pub(crate) fn force_walk(&mut self, walk: i64) {
        self.forced_plan = None;
        self.dense_scope = -1;
        self.probe_walk = walk;
    }

    /// The connection, for the other query modules.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The last global position the case list applied.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn checkpoint(&self) -> Result<u64, ProjectionError> {
        let position: Option<i64> = self
            .conn
            .query_row(
                "SELECT position FROM checkpoint WHERE name = ?1",
                [CASE_LIST],
                |r| r.get(0),
            )
            .optional()?;
        Ok(position.unwrap_or(0).max(0) as u64)
    }

    /// How many cases `unit_id` has an open part in: it holds them now (当前办理单位), or
    /// transferred them on and is still answerable for them. A unit with any is closed only
    /// with a successor for them.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn cases_held(&self, unit_id: &str) -> Result<u64, ProjectionError> {
        Ok(self.case_ids_held(unit_id)?.len() as u64)
    }

    /// The cases of [`Queries::cases_held`], by number.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn case_ids_held(&self, unit_id: &str) -> Result<Vec<String>, ProjectionError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT case_id FROM case_holder WHERE unit_id = ?1 \
             UNION SELECT case_id FROM case_transfer WHERE from_unit_id = ?1 ORDER BY 1",
        )?;
        let ids = stmt
            .query_map([unit_id], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// The case list: `filter` within `scope`, overdue judged at `now`.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn cases(
        &self,
        filter: &CaseFilter,
        scope: &Scope,
        identity: &IdentityRule,
        now: DateTime<Utc>,
    ) -> Result<Page, ProjectionError> {
        let cond = Self::conditions(filter, scope, identity, now);
        if let Some(matches) = &filter.text_matches
            && filter.sort == Sort::Relevance
        {
            return self.page_by_rank(&cond, matches, filter.page, filter.per_page, now);
        }
        self.page(&cond, filter.sort, filter.page, filter.per_page, now)
    }

    /// The ids of every case `filter` matches within `scope` (no page, no limit): for
    /// conditions another index combines with its own, such as one caller's history, which
    /// is short. Sorted by case id.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn case_ids(
        &self,
        filter: &CaseFilter,
        scope: &Scope,
        identity: &IdentityRule,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, ProjectionError> {
        let cond = Self::conditions(filter, scope, identity, now);
        // The other conditions pick few cases (one caller's): probe the scope of each.
        let (clause, params) = cond.clause(ScopeForm::Probing);
        let mut stmt = self.conn.prepare(&format!(
            "SELECT c.case_id FROM case_list c {clause} ORDER BY c.case_id"
        ))?;
        let ids = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    fn conditions(
        filter: &CaseFilter,
        scope: &Scope,
        identity: &IdentityRule,
        now: DateTime<Utc>,
    ) -> Conditions {
        let mut cond = Conditions::default();
        cond.scope(scope);
        let now_us = Value::Integer(micros(now));
        if let Some(status) = filter.status {
            cond.push_fact("{t}.status = ?", &[Conditions::text(status_code(status))]);
        }
        if let Some(overdue) = filter.overdue {
            // `overdue_at` (see `row::ScopeFacts`): the deadlines and lateness in one column.
            let sql = if overdue {
                "{t}.overdue_at < ?"
            } else {
                "{t}.overdue_at >= ?"
            };
            cond.push_fact(sql, std::slice::from_ref(&now_us));
        }
        if let Some(c) = filter.category {
            cond.push_fact("{t}.category = ?", &[Conditions::text(category_code(c))]);
        }
        if let Some(k) = filter.kind {
            cond.push_fact("{t}.kind = ?", &[Conditions::text(kind_code(k))]);
        }
        if let Some(u) = filter.urgency {
            cond.push_fact("{t}.urgency = ?", &[Conditions::text(urgency_code(u))]);
        }
        if let Some(unit) = &filter.unit_id {
            let table = if filter.subtree {
                "case_scope"
            } else {
                "case_touch"
            };
            cond.push(
                format!("c.case_id IN (SELECT t.case_id FROM {table} t WHERE t.unit_id = ?)"),
                [Conditions::text(unit)],
            );
        }
        if let Some(d) = &filter.district_id {
            cond.push_fact("{t}.district_id = ?", &[Conditions::text(d)]);
        }
        if let Some(t) = filter.created_from {
            cond.push_fact("{t}.created_at >= ?", &[Value::Integer(micros(t))]);
        }
        if let Some(t) = filter.created_to {
            cond.push_fact("{t}.created_at < ?", &[Value::Integer(micros(t))]);
        }
        if let Some(phone) = &filter.caller_phone {
            cond.push("c.caller_phone = ?", [Conditions::text(phone)]);
            cond.identity(identity);
        }
        if let Some(matches) = &filter.text_matches {
            if matches.is_empty() {
                cond.push("0", []);
            } else {
                cond.push(
                    format!("c.case_id IN ({})", Conditions::placeholders(matches.len())),
                    matches.iter().map(|id| Conditions::text(id)),
                );
            }
        } else if let Some(q) = filter.q.as_deref().filter(|q| !q.is_empty()) {
            cond.push(
                "(instr(c.title, ?) > 0 OR instr(c.content, ?) > 0 OR instr(c.address, ?) > 0)",
                [
                    Conditions::text(q),
                    Conditions::text(q),
                    Conditions::text(q),
                ],
            );
        }
        cond
    }

    /// Every holder past a deadline at `now`, oldest deadline first.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn overdue_holders(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<OverdueHolder>, ProjectionError> {
        let now = micros(now);
        let mut stmt = self.conn.prepare_cached(
            "SELECT case_id, assignment_id, unit_id, state, receive_by, complete_by
             FROM case_holder
             WHERE (state = 'pending' AND receive_by < ?1) OR complete_by < ?1
             ORDER BY min(CASE WHEN state = 'pending' THEN receive_by ELSE complete_by END,
                          complete_by), case_id",
        )?;
        let rows = stmt.query_map([now], |r| {
            let state: String = r.get(3)?;
            let receive_by: i64 = r.get(4)?;
            let complete_by: i64 = r.get(5)?;
            let (kind, deadline) = if state == "pending" && receive_by < now {
                ("not_received", receive_by)
            } else {
                ("not_completed", complete_by)
            };
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
                kind,
                deadline,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (case_id, assignment_id, unit_id, kind, deadline) = row?;
            if let Some(deadline) = DateTime::from_timestamp_micros(deadline) {
                out.push(OverdueHolder {
                    case_id,
                    assignment_id,
                    unit_id,
                    kind,
                    deadline,
                });
            }
        }
        Ok(out)
    }

    /// Every running deadline of a holder that falls due between `now` and `until`: the
    /// receive-by of pending holders and the complete-by of all holders, soonest first.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn due_soon_holders(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DueSoonHolder>, ProjectionError> {
        use domain::event::DeadlineKind;
        let mut stmt = self.conn.prepare_cached(
            "SELECT case_id, assignment_id, unit_id, 'receive', receive_by FROM case_holder
             WHERE state = 'pending' AND receive_by >= ?1 AND receive_by <= ?2
             UNION ALL
             SELECT case_id, assignment_id, unit_id, 'complete', complete_by FROM case_holder
             WHERE complete_by >= ?1 AND complete_by <= ?2
             ORDER BY 5, 1, 2",
        )?;
        let rows = stmt.query_map([micros(now), micros(until)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (case_id, assignment_id, unit_id, kind, due_at) = row?;
            let deadline = if kind == "receive" {
                DeadlineKind::Receive
            } else {
                DeadlineKind::Complete
            };
            if let Some(due_at) = DateTime::from_timestamp_micros(due_at) {
                out.push(DueSoonHolder {
                    case_id,
                    assignment_id,
                    unit_id,
                    deadline,
                    due_at,
                });
            }
        }
        Ok(out)
    }

    /// A work list of `owner`, overdue judged at `now`, "due soon" meaning a deadline between
    /// `now` and `due_soon_until`. Each list is ordered by the deadline that matters for it:
    /// `to_receive` by the owner's receive-by, `in_progress`, `due_soon`, `overdue` and
    /// `transferred_by_me` by complete-by, `to_call_back` by completion (the call-back limit
    /// runs from it, the same for every case), `to_decide` by the requesting unit's
    /// complete-by, `to_transfer` by acceptance (the longest waiting first), drafts newest
    /// first.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn work_list(
        &self,
        list: WorkList,
        owner: &WorkListOwner,
        now: DateTime<Utc>,
        due_soon_until: DateTime<Utc>,
        page: u32,
        per_page: u32,
    ) -> Result<Page, ProjectionError> {
        self.work_list_ordered(list, owner, now, due_soon_until, false, page, per_page)
    }

    /// [`work_list`](Self::work_list), or with `reverse` the same list from its other end
    /// (the least urgent first), read from the same index backwards.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    #[allow(clippy::too_many_arguments)]
    pub fn work_list_ordered(
        &self,
        list: WorkList,
        owner: &WorkListOwner,
        now: DateTime<Utc>,
        due_soon_until: DateTime<Utc>,
        reverse: bool,
        page: u32,
        per_page: u32,
    ) -> Result<Page, ProjectionError> {
        match Self::work_list_plan(list, owner, now, due_soon_until) {
            ListPlan::Side(side) => {
                self.side_page(SideList { reverse, ..side }, page, per_page, now)
            }
            ListPlan::Cases(cond, sort) if reverse => {
                self.page(&cond, sort.reversed(), page, per_page, now)
            }
            ListPlan::Cases(cond, sort) => self.page(&cond, sort, page, per_page, now),
        }
    }

    /// The number of cases in every work list of `owner` ([`WorkList::ALL`], in that order),
    /// each counted as its page counts its total: from the index the list is read by, at most
    /// [`COUNT_LIMIT`] rows.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn work_list_counts(
        &self,
        owner: &WorkListOwner,
        now: DateTime<Utc>,
        due_soon_until: DateTime<Utc>,
    ) -> Result<Vec<WorkListCount>, ProjectionError> {
        let mut out = Vec::with_capacity(WorkList::ALL.len());
        for list in WorkList::ALL {
            let n = match Self::work_list_plan(list, owner, now, due_soon_until) {
                ListPlan::Side(side) => self.side_count(&side)?,
                ListPlan::Cases(cond, _) => self.count(&cond)?,
            }
            .max(0) as u64;
            out.push(WorkListCount {
                list,
                count: n.min(COUNT_LIMIT),
                capped: n > COUNT_LIMIT,
            });
        }
        Ok(out)
    }

    /// How a work list is read: its rows and the order.
    fn work_list_plan(
        list: WorkList,
        owner: &WorkListOwner,
        now: DateTime<Utc>,
        due_soon_until: DateTime<Utc>,
    ) -> ListPlan {
        let mut cond = Conditions::default();
        let now_us = Value::Integer(micros(now));
        let units_in = format!(
            "h.unit_id IN ({})",
            Conditions::placeholders(owner.units.len())
        );
        let units: Vec<Value> = owner.units.iter().map(|u| Conditions::text(u)).collect();
        // Holder lists are driven by the holder table's (unit, state, deadline) indexes, most
        // urgent first, so a page does not sort every holder of a busy unit.
        let holder = |deadline: &'static str, extra: &str, mut params: Vec<Value>| {
            let mut all = units.clone();
            all.append(&mut params);
            ListPlan::Side(SideList {
                from: "case_holder h",
                alias: "h",
                deadline,
                where_sql: format!("{units_in} AND {extra}"),
                params: all,
                extra: None,
                reverse: false,
            })
        };
        // The owner's unit for its own lists; NULL (equal to nothing) for a leader only.
        let own_unit = || {
            owner
                .unit_id
                .as_deref()
                .map_or(Value::Null, Conditions::text)
        };
        // The lists of the waiting table, for the owner's own unit (only it may act).
        let waiting = |list: &str, extra: Option<(String, Vec<Value>)>| {
            ListPlan::Side(SideList {
                from: "case_waiting w",
                alias: "w",
                deadline: "due",
                where_sql: "w.unit_id = ? AND w.list = ?".to_owned(),
                params: vec![own_unit(), Conditions::text(list)],
                extra,
                reverse: false,
            })
        };
        match list {
            WorkList::Drafts => {
                cond.push(
                    "c.stage = 'draft' AND c.created_by = ?",
                    [Conditions::text(&owner.username)],
                );
                ListPlan::Cases(cond, Sort::CreatedDesc)
            }
            WorkList::ToReceive => holder("receive_by", "h.state = 'pending'", vec![]),
            WorkList::InProgress => holder("complete_by", "h.state = 'received'", vec![]),
            WorkList::DueSoon => {
                let until = Value::Integer(micros(due_soon_until));
                holder(
                    "complete_by",
                    "h.complete_by >= ? AND NOT (h.state = 'pending' AND h.receive_by < ?) AND \
                     ((h.state = 'pending' AND h.receive_by <= ?) OR h.complete_by <= ?)",
                    vec![now_us.clone(), now_us.clone(), until.clone(), until],
                )
            }
            WorkList::Overdue if owner.every_overdue => {
                // Open cases past a deadline (those completed late have `i64::MIN`): counted
                // from the overdue index, the page read most urgent first from the deadline
                // index, which stops after the page instead of sorting every overdue case.
                cond.push(
                    "c.overdue_at > ? AND c.overdue_at < ? AND c.stage = 'open'",
                    [Value::Integer(i64::MIN), now_us.clone()],
                );
                cond.page_index = Some("INDEXED BY case_list_complete_due");
                cond.count_index = Some("INDEXED BY case_list_overdue");
                ListPlan::Cases(cond, Sort::CompleteDueAsc)
            }
            WorkList::Overdue => holder(
                "complete_by",
                "((h.state = 'pending' AND h.receive_by < ?) OR h.complete_by < ?)",
                vec![now_us.clone(), now_us.clone()],
            ),
            // The centre's completed cases from its (accepting unit, stage, completed at)
            // index, in order of completion: the call-back limit is one working time after
            // completion for every case, so the earliest completed is the earliest due.
            WorkList::ToCallBack => ListPlan::Side(SideList {
                from: "case_list k",
                alias: "k",
                deadline: "completed_at",
                where_sql: "k.accepting_unit_id = ? AND k.stage = 'completed' AND k.merged = 0"
                    .to_owned(),
                params: vec![own_unit()],
                extra: None,
                reverse: false,
            }),
            // The transfer table's (from unit, complete-by) index, most urgent first; the
            // complete-by there is the case list's, written with it.
            WorkList::TransferredByMe => ListPlan::Side(SideList {
                from: "case_transfer t",
                alias: "t",
                deadline: "complete_due",
                where_sql: "t.from_unit_id = ?".to_owned(),
                params: vec![own_unit()],
                extra: Some((
                    "(SELECT t.recallable FROM case_transfer t WHERE t.case_id = c.case_id \
                     AND t.from_unit_id = ?), NULL"
                        .to_owned(),
                    vec![own_unit()],
                )),
                reverse: false,
            }),
            WorkList::ToTransfer => waiting("to_transfer", None),
            WorkList::ToDecide => waiting(
                "to_decide",
                Some((
                    "NULL, (SELECT group_concat(request, ',') FROM (SELECT DISTINCT w.request \
                     FROM case_waiting w WHERE w.case_id = c.case_id AND w.list = 'to_decide' \
                     AND w.unit_id = ? ORDER BY w.request))"
                        .to_owned(),
                    vec![own_unit()],
                )),
            ),
        }
    }

    /// The cases of a side list, at most [`COUNT_LIMIT`] + 1 rows read.
    fn side_count(&self, side: &SideList) -> Result<i64, ProjectionError> {
        let SideList {
            from,
            alias: a,
            where_sql,
            params,
            ..
        } = side;
        Ok(self.conn.query_row(
            &format!(
                "SELECT count(DISTINCT case_id) FROM (SELECT {a}.case_id FROM {from} \
                 WHERE {where_sql} LIMIT {})",
                COUNT_LIMIT + 1
            ),
            rusqlite::params_from_iter(params.iter()),
            |r| r.get(0),
        )?)
    }

    /// A work list kept in a side table with one row per case and holder (or transferring
    /// unit, or waiting unit): counted there (distinct cases), and the page read there in its
    /// deadline's index order, most urgent first; only the page's cases are read from the case
    /// list, in that same order (a case's earliest row).
    fn side_page(
        &self,
        side: SideList,
        page: u32,
        per_page: u32,
        now: DateTime<Utc>,
    ) -> Result<Page, ProjectionError> {
        let page = page.max(1);
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let total = self.side_count(&side)?;
        let SideList {
            from,
            alias: a,
            deadline,
            where_sql,
            params,
            extra,
            reverse,
        } = side;
        let mut item_params = params;
        item_params.push(Value::Integer(i64::from(per_page)));
        item_params.push(Value::Integer(
            i64::from(page - 1).saturating_mul(i64::from(per_page)),
        ));
        let extra_sql = match extra {
            Some((sql, params)) => {
                item_params.extend(params);
                sql
            }
            None => NO_EXTRA.to_owned(),
        };
        // NULL deadlines (none occur in the lists) would sort first; the page keeps the side
        // table's order, a case at its earliest row.
        let (dir, pick) = if reverse {
            ("DESC", "max")
        } else {
            ("ASC", "min")
        };
        let sql = format!(
            "WITH p (case_id, due) AS (SELECT {a}.case_id, {a}.{deadline} FROM {from} \
             WHERE {where_sql} ORDER BY {a}.{deadline} {dir}, {a}.case_id {dir} LIMIT ? OFFSET ?) \
             SELECT {COLUMNS}, {extra_sql} FROM (SELECT case_id, {pick}(due) AS due FROM p \
             GROUP BY case_id) q CROSS JOIN case_list c ON c.case_id = q.case_id \
             ORDER BY q.due {dir}, c.case_id {dir}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let items = stmt
            .query_map(rusqlite::params_from_iter(item_params.iter()), |r| {
                summary(r, now)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        self.finish(items, total, page, per_page)
    }

    /// A page with its total, capped at [`COUNT_LIMIT`], and the read model's position.
    fn finish(
        &self,
        items: Vec<CaseSummary>,
        total: i64,
        page: u32,
        per_page: u32,
    ) -> Result<Page, ProjectionError> {
        let total = total.max(0) as u64;
        Ok(Page {
            items,
            total: total.min(COUNT_LIMIT),
            total_capped: total > COUNT_LIMIT,
            page,
            per_page,
            position: self.checkpoint()?,
        })
    }

    /// A page of the cases matching `cond`, in the order of `ranked` (every match is in it).
    fn page_by_rank(
        &self,
        cond: &Conditions,
        ranked: &[String],
        page: u32,
        per_page: u32,
        now: DateTime<Utc>,
    ) -> Result<Page, ProjectionError> {
        let page = page.max(1);
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        // The matches are few (a page the case index chose): each is looked up by its key and
        // checked against the conditions and the scope (probed, never listed whole). The join
        // order is forced, or SQLite may walk a condition's index (every case of a district)
        // instead. Their ids are ordered by rank here, and only the page's rows fetched.
        let visible: std::collections::HashSet<String> = if ranked.is_empty() {
            std::collections::HashSet::new()
        } else {
            let (clause, cond_params) = cond.clause(ScopeForm::Probing);
            let mut params: Vec<Value> = ranked.iter().map(|id| Conditions::text(id)).collect();
            params.extend(cond_params);
            let mut stmt = self.conn.prepare(&format!(
                "WITH ranked (case_id) AS (VALUES {}) SELECT c.case_id FROM ranked r CROSS JOIN \
                 case_list c ON c.case_id = r.case_id {clause}",
                vec!["(?)"; ranked.len()].join(", ")
            ))?;
            stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let ordered: Vec<&String> = ranked.iter().filter(|id| visible.contains(*id)).collect();
        let start = (page as usize - 1).saturating_mul(per_page as usize);
        let ids: Vec<&String> = ordered
            .iter()
            .skip(start)
            .take(per_page as usize)
            .copied()
            .collect();
        let mut items = Vec::with_capacity(ids.len());
        if !ids.is_empty() {
            let sql = format!(
                "SELECT {COLUMNS}, {NO_EXTRA} FROM case_list c WHERE c.case_id IN ({})",
                Conditions::placeholders(ids.len())
            );
            let mut stmt = self.conn.prepare(&sql)?;
            let mut rows: std::collections::HashMap<String, CaseSummary> = stmt
                .query_map(rusqlite::params_from_iter(ids.iter()), |r| summary(r, now))?
                .map(|row| row.map(|s| (s.case_id.clone(), s)))
                .collect::<Result<_, _>>()?;
            items.extend(ids.iter().filter_map(|id| rows.remove(*id)));
        }
        self.finish(items, ordered.len() as i64, page, per_page)
    }

    /// Whether the caller's scope keys list more than [`DENSE_SCOPE`] cases.
    fn scope_is_dense(&self, cond: &Conditions) -> Result<bool, ProjectionError> {
        if cond.scope_keys.is_empty() {
            return Ok(false);
        }
        let n: i64 = self.conn.query_row(
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM case_scope s WHERE s.unit_id IN ({}) \
                 LIMIT {})",
                Conditions::placeholders(cond.scope_keys.len()),
                self.dense_scope + 1
            ),
            rusqlite::params_from_iter(cond.scope_keys.iter()),
            |r| r.get(0),
        )?;
        Ok(n > self.dense_scope)
    }

    /// The plan for a page of a caller who sees only some cases, and for
    /// [`ScopePlan::Probing`] how many cases it may walk (`None`: as many as it takes).
    fn scope_plan(
        &self,
        cond: &Conditions,
        sort: Sort,
    ) -> Result<(ScopePlan, Option<i64>), ProjectionError> {
        let index_ordered = matches!(
            sort,
            Sort::CreatedDesc | Sort::CreatedAsc | Sort::CaseIdAsc | Sort::Relevance
        );
        if let Some(plan) = self.forced_plan {
            return Ok(match plan {
                ScopePlan::ScopeRows if cond.needs_case_list => (ScopePlan::Driving, None),
                ScopePlan::Probing if !index_ordered => (ScopePlan::Driving, None),
                plan => (plan, None),
            });
        }
        if !cond.needs_case_list {
            return Ok((ScopePlan::ScopeRows, None));
        }
        Ok(if index_ordered && self.scope_is_dense(cond)? {
            (ScopePlan::Probing, Some(self.probe_walk))
        } else {
            (ScopePlan::Driving, None)
        })
    }

    /// The cases matching `cond`, at most [`COUNT_LIMIT`] + 1 counted.
    fn count(&self, cond: &Conditions) -> Result<i64, ProjectionError> {
        let scoped = !cond.scope_keys.is_empty();
        let keys = Conditions::placeholders(cond.scope_keys.len());
        let facts = cond.facts_sql();
        // Counting every match of a broad condition costs more than the page itself; past
        // COUNT_LIMIT the total is reported as capped.
        Ok(if scoped && !cond.needs_case_list {
            // The keys' rows and their facts answer it: no lookup in the case list.
            self.conn.query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT DISTINCT s.case_id FROM case_scope s \
                     WHERE s.unit_id IN ({keys}){facts} LIMIT {})",
                    COUNT_LIMIT + 1
                ),
                rusqlite::params_from_iter(cond.scope_keys.iter().chain(&cond.fact_params)),
                |r| r.get(0),
            )?
        } else {
            let (clause, params) = cond.clause(ScopeForm::Driving);
            let index = if scoped {
                ""
            } else {
                cond.count_index.unwrap_or_default()
            };
            self.conn.query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM case_list c {index} {clause} LIMIT {})",
                    COUNT_LIMIT + 1
                ),
                rusqlite::params_from_iter(params.iter()),
                |r| r.get(0),
            )?
        })
    }

    fn page(
        &self,
        cond: &Conditions,
        sort: Sort,
        page: u32,
        per_page: u32,
        now: DateTime<Utc>,
    ) -> Result<Page, ProjectionError> {
        let page = page.max(1);
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let scoped = !cond.scope_keys.is_empty();
        let total = self.count(cond)?;
        let offset = i64::from(page - 1).saturating_mul(i64::from(per_page));
        let (plan, walk) = if scoped {
            self.scope_plan(cond, sort)?
        } else {
            (ScopePlan::Driving, None)
        };
        let mut items = self.page_rows(cond, sort, plan, walk, per_page, offset, now)?;
        // A walk that did not fill the page (nor reach the last match) read too few cases:
        // the caller's cases looked up one by one find the page.
        let expected = (total - offset).clamp(0, i64::from(per_page));
        if walk.is_some() && (items.len() as i64) < expected {
            items = self.page_rows(cond, sort, ScopePlan::Driving, None, per_page, offset, now)?;
        }
        self.finish(items, total, page, per_page)
    }

    /// One page of `cond` by `plan`; a [`ScopePlan::Probing`] with `walk` reads only that
    /// many cases in the sort's order (after `offset`), so its page may come out short.
    #[allow(clippy::too_many_arguments)]
    fn page_rows(
        &self,
        cond: &Conditions,
        sort: Sort,
        plan: ScopePlan,
        walk: Option<i64>,
        per_page: u32,
        offset: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<CaseSummary>, ProjectionError> {
        let keys = Conditions::placeholders(cond.scope_keys.len());
        let facts = cond.facts_sql();
        let mut params = Vec::new();
        let sql = if plan == ScopePlan::ScopeRows {
            if let Some(order) = sort.by_creation() {
                // Each key's rows are in creation order: the first `offset + per_page`
                // matches of every key hold the page (a case has the same facts under each
                // of its keys, and UNION drops its repeats).
                let n = offset.saturating_add(i64::from(per_page));
                let mut walks = Vec::with_capacity(cond.scope_keys.len());
                for key in &cond.scope_keys {
                    walks.push(format!(
                        "SELECT * FROM (SELECT s.case_id, s.created_at FROM case_scope s \
                         WHERE s.unit_id = ?{facts} ORDER BY {order} LIMIT {n})"
                    ));
                    params.push(key.clone());
                    params.extend(cond.fact_params.iter().cloned());
                }
                format!(
                    "SELECT {COLUMNS}, {NO_EXTRA} FROM case_list c WHERE c.case_id IN \
                     (SELECT case_id FROM ({}) ORDER BY {order} LIMIT ? OFFSET ?) ORDER BY {}",
                    walks.join(" UNION "),
                    sort.sql()
                )
            } else {
                // One row per case (a case is under several keys with the same facts), the
                // page chosen on the scope rows; only its cases are read from the case list.
                params.extend(cond.scope_keys.iter().cloned());
                params.extend(cond.fact_params.iter().cloned());
                format!(
                    "SELECT {COLUMNS}, {NO_EXTRA} FROM case_list c WHERE c.case_id IN \
                     (SELECT s.case_id FROM case_scope s WHERE s.unit_id IN ({keys}){facts} \
                     GROUP BY s.case_id ORDER BY {} LIMIT ? OFFSET ?) ORDER BY {}",
                    sort.sql().replace("c.", "s."),
                    sort.sql()
                )
            }
        } else {
            let form = if plan == ScopePlan::Probing {
                ScopeForm::Probing
            } else {
                ScopeForm::Driving
            };
            // Probing walks the sort's own index: SQLite would rather start from a
            // condition's index (every overdue case in the city) and sort them all.
            let index = match (plan, sort) {
                (ScopePlan::Probing, Sort::CaseIdAsc) => "NOT INDEXED",
                (ScopePlan::Probing, _) => "INDEXED BY case_list_created",
                _ if cond.scope_keys.is_empty() => cond.page_index.unwrap_or_default(),
                _ => "",
            };
            let (clause, cond_params) = cond.clause(form);
            params.extend(cond_params);
            let (from, clause) = match walk {
                // The first cases in the sort's order (past the earlier pages' share) from the
                // sort's index alone; each one's scope probed before its row is read.
                Some(walk) => {
                    let n = walk
                        .saturating_add(offset)
                        .saturating_add(i64::from(per_page));
                    (
                        format!(
                            "(SELECT case_id AS walk_id, coalesce(created_at, \
                             -9223372036854775808) AS walk_at FROM case_list {index} ORDER BY \
                             {} LIMIT {n}) w CROSS JOIN case_list c ON c.case_id = w.walk_id",
                            sort.sql().replace("c.", "")
                        ),
                        clause.replace(
                            PROBE_ROW,
                            "s.created_at = w.walk_at AND s.case_id = w.walk_id",
                        ),
                    )
                }
                None => (format!("case_list c {index}"), clause),
            };
            format!(
                "SELECT {COLUMNS}, {NO_EXTRA} FROM {from} {clause} ORDER BY {} LIMIT ? \
                 OFFSET ?",
                sort.sql()
            )
        };
        params.push(Value::Integer(i64::from(per_page)));
        params.push(Value::Integer(offset));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let items = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                summary(r, now)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(items)
    }
}

fn time(us: Option<i64>) -> Option<DateTime<Utc>> {
    us.filter(|&us| us != i64::MAX)
        .and_then(DateTime::from_timestamp_micros)
}

fn summary(r: &rusqlite::Row<'_>, now: DateTime<Utc>) -> rusqlite::Result<CaseSummary> {
    let stage = parse_stage(&r.get::<_, String>(3)?).unwrap_or(Stage::New);
    let status = parse_status(&r.get::<_, String>(4)?).unwrap_or(Status::Draft);
    let merged: bool = r.get(5)?;
    let answered_on_call: bool = r.get(6)?;
    let receive_due = time(r.get(7)?);
    let complete_due = time(r.get(8)?);
    let completed_late: bool = r.get(9)?;
    let overdue = overdue_kind(stage, receive_due, complete_due, completed_late, now);
    let holders: String = r.get(25)?;
    Ok(CaseSummary {
        case_id: r.get(0)?,
        version: r.get::<_, i64>(1)?.max(0) as u64,
        position: r.get::<_, i64>(2)?.max(0) as u64,
        stage,
        status,
        status_label: status_label(stage, status, merged, answered_on_call, overdue),
        overdue,
        category: r.get(10)?,
        kind: r.get(11)?,
        urgency: r.get(12)?,
        location_unit_id: r.get(13)?,
        district_id: r.get(14)?,
        accepting_unit_id: r.get(15)?,
        created_by: r.get(16)?,
        created_at: time(r.get(17)?),
        accepted_at: time(r.get(18)?),
        completed_at: time(r.get(19)?),
        receive_due,
        complete_due,
        caller_name: r.get(20)?,
        caller_phone: r.get(21)?,
        confidential: r.get(22)?,
        title: r.get(23)?,
        address: r.get(24)?,
        holder_unit_ids: if holders.is_empty() {
            Vec::new()
        } else {
            holders.split(',').map(str::to_owned).collect()
        },
        supervised: r.get(26)?,
        annotated: r.get(27)?,
        warned: r.get(28)?,
        joint: r.get(29)?,
        recallable: r.get(30)?,
        requests: r
            .get::<_, Option<String>>(31)?
            .map(|list| list.split(',').map(str::to_owned).collect()),
    })
}
