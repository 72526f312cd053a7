//! What one case looks like in the case list, built from its state by pure functions.

use chrono::{DateTime, Utc};
use domain::case::{AssignmentState, HandlingRole, Overdue, PendingRequest};
use domain::kinds::{Category, Kind, Urgency};
use domain::org::{OrgTree, UnitId};
use domain::{Case, Satisfaction, Stage, Status};

/// A holder (当前办理单位) with its recorded deadlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderRow {
    /// The assignment within the case.
    pub assignment_id: u32,
    /// The holding unit.
    pub unit_id: String,
    /// `lead` or `co`.
    pub role: &'static str,
    /// `pending` or `received`.
    pub state: &'static str,
    /// 签收时限.
    pub receive_by: DateTime<Utc>,
    /// 办理时限.
    pub complete_by: DateTime<Utc>,
}

/// The latest open transfer a unit made, and whether it may still recall it (rule 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRow {
    /// The transferring unit.
    pub from_unit_id: String,
    /// The transfer within the case.
    pub transfer_id: u32,
    /// Whether 追回 is still allowed: no receiver has handled, completed or transferred on.
    pub recallable: bool,
}

/// A unit the case waits at: a centre to send it on (待转办) or a transferring unit to decide a
/// request (待审批).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingRow {
    /// `to_transfer` or `to_decide` (the work list).
    pub list: &'static str,
    /// `transfer`, `return` or `extension`.
    pub request: &'static str,
    /// The assignment the request or the holding centre has; 0 for the accepting centre.
    pub assignment_id: u32,
    /// The unit that must act.
    pub unit_id: String,
    /// What the list is ordered by: for `to_transfer` when the case was accepted (no
    /// transfer deadline is recorded, so the case waiting longest comes first); for
    /// `to_decide` the requesting assignment's complete-by, which the decision is about.
    pub due: Option<DateTime<Utc>>,
}

/// One assignment (a unit's share of the case), for the KPIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRow {
    /// Number within the case.
    pub assignment_id: u32,
    /// The assignment the transferring unit held (`None` when the accepting centre
    /// transferred): a unit that transferred on is no longer a holder.
    pub parent_id: Option<u32>,
    /// The unit given the case.
    pub unit_id: String,
    /// `lead` or `co`.
    pub role: &'static str,
    /// `pending`, `received`, `completed`, `recalled` or `cancelled`.
    pub state: &'static str,
    /// When the transfer happened.
    pub transferred_at: DateTime<Utc>,
    /// 签收时限.
    pub receive_by: DateTime<Utc>,
    /// When it was received.
    pub received_at: Option<DateTime<Utc>>,
    /// 办理时限.
    pub complete_by: DateTime<Utc>,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was recalled or cancelled.
    pub ended_at: Option<DateTime<Utc>>,
}

/// One case as the case list keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    /// 工单编号.
    pub case_id: String,
    /// Stream version.
    pub version: u64,
    /// The coarse stage.
    pub stage: Stage,
    /// The state a user sees, without overdue.
    pub status: Status,
    /// Merged into a master case and not archived yet (已并单).
    pub merged: bool,
    /// Answered on the call (即办).
    pub answered_on_call: bool,
    /// Earliest receive-by among holders not yet received, while the case is open.
    pub receive_due: Option<DateTime<Utc>>,
    /// Earliest complete-by among holders, while the case is open.
    pub complete_due: Option<DateTime<Utc>>,
    /// Completed after a complete-by (逾期办结), once completed.
    pub completed_late: bool,
    /// Category code (`complaint`…).
    pub category: Option<&'static str>,
    /// Kind code (`escalated`…).
    pub kind: Option<&'static str>,
    /// Urgency code (`normal`…).
    pub urgency: Option<&'static str>,
    /// The citizen's place in the tree.
    pub location_unit_id: Option<String>,
    /// The district of that place (`OrgTree::district_of`).
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
    /// 来电人姓名 (masked on the way out where the viewer may not see it).
    pub caller_name: String,
    /// 来电号码 (likewise).
    pub caller_phone: String,
    /// The caller asked for confidentiality.
    pub confidential: bool,
    /// 标题.
    pub title: String,
    /// 诉求内容.
    pub content: String,
    /// 地址.
    pub address: String,
    /// Who holds it now.
    pub holders: Vec<HolderRow>,
    /// Open transfers, one per transferring unit.
    pub transfers: Vec<TransferRow>,
    /// Every assignment ever made.
    pub assignments: Vec<AssignmentRow>,
    /// The lead unit that completed the case (whose rating the call-back is).
    pub lead_unit_id: Option<String>,
    /// The latest call-back: satisfaction code, resolved, when.
    pub callback: Option<(&'static str, bool, DateTime<Utc>)>,
    /// How often the case was reopened (重办).
    pub n_reopened: u32,
    /// An upheld appeal (申诉) excludes the rating from the KPIs.
    pub rating_excluded: bool,
    /// Every call-back (回访) ever made, oldest first: each rating counts for the unit it
    /// rated, a reopen does not take it back (rule 13).
    pub callbacks: Vec<CallBackRow>,
    /// 督办 received.
    pub supervised: bool,
    /// 批示 received.
    pub annotated: bool,
    /// 到期预警 of a deadline that still runs.
    pub warned: bool,
    /// 联办件.
    pub joint: bool,
    /// Where it waits for a transfer or a decision.
    pub waiting: Vec<WaitingRow>,
}

/// One call-back of a case (`case_callback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallBackRow {
    /// 1 for the first call-back of the case.
    pub seq: u32,
    /// The unit rated (the lead that had completed the case).
    pub unit_id: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// `satisfied`, `basically_satisfied` or `unsatisfied`.
    pub satisfaction: &'static str,
    /// Whether resolved.
    pub resolved: bool,
    /// The case was reopened after it.
    pub reopened: bool,
    /// An upheld appeal excludes it from the KPIs.
    pub excluded: bool,
}

/// The wire code of a satisfaction.
fn satisfaction_code(satisfaction: Satisfaction) -> &'static str {
    match satisfaction {
        Satisfaction::Satisfied => "satisfied",
        Satisfaction::BasicallySatisfied => "basically_satisfied",
        Satisfaction::Unsatisfied => "unsatisfied",
    }
}

impl CaseRow {
    /// The row of `case`; `None` for a case without an id (no event yet).
    pub fn of(case: &Case, org: &OrgTree) -> Option<CaseRow> {
        let case_id = case.id()?.to_string();
        let intake = case.intake();
        let open = case.stage() == Stage::Open;
        let holders: Vec<HolderRow> = if open {
            case.holders()
                .map(|a| HolderRow {
                    assignment_id: a.id,
                    unit_id: a.unit_id.to_string(),
                    role: match a.role {
                        HandlingRole::Lead => "lead",
                        HandlingRole::Co => "co",
                    },
                    state: if a.state == AssignmentState::Pending {
                        "pending"
                    } else {
                        "received"
                    },
                    receive_by: a.receive_by.at,
                    complete_by: a.complete_by.at,
                })
                .collect()
        } else {
            Vec::new()
        };
        // Rule 8's inputs, as the domain computes them; the read model judges overdue from
        // them at query time (`overdue_kind` below).
        let domain::case::RunningDeadlines {
            receive_due,
            complete_due,
            completed_late,
        } = case.running_deadlines();
        Some(CaseRow {
            case_id,
            version: case.version(),
            stage: case.stage(),
            status: case.status(),
            merged: case.merged_into().is_some() && case.stage() != Stage::Archived,
            answered_on_call: case.answered_on_call(),
            receive_due,
            complete_due,
            completed_late,
            category: intake.category.map(category_code),
            kind: intake.kind.map(kind_code),
            urgency: intake.urgency.map(urgency_code),
            location_unit_id: intake.location_unit_id.as_ref().map(ToString::to_string),
            district_id: intake
                .location_unit_id
                .as_ref()
                .and_then(|u| org.district_of(u))
                .map(|u| u.id.to_string()),
            accepting_unit_id: case.accepting_unit_id().map(ToString::to_string),
            created_by: case.created_by().to_owned(),
            created_at: case.created_at(),
            accepted_at: case.accepted_at(),
            completed_at: case.completed_at(),
            caller_name: intake.caller_name.clone(),
            // Cases filed before numbers were normalized at intake are listed by the same
            // form, so a caller's history finds them too.
            caller_phone: domain::identity::normalize_phone(&intake.caller_phone)
                .unwrap_or_else(|| intake.caller_phone.clone()),
            confidential: intake.confidential,
            title: intake.title.clone(),
            content: intake.content.clone(),
            address: intake.address.clone(),
            holders,
            transfers: if open {
                open_transfers(case)
            } else {
                Vec::new()
            },
            assignments: case
                .assignments()
                .iter()
                .map(|a| AssignmentRow {
                    assignment_id: a.id,
                    parent_id: a.parent_id,
                    unit_id: a.unit_id.to_string(),
                    role: match a.role {
                        HandlingRole::Lead => "lead",
                        HandlingRole::Co => "co",
                    },
                    state: match a.state {
                        AssignmentState::Pending => "pending",
                        AssignmentState::Received => "received",
                        AssignmentState::Completed => "completed",
                        AssignmentState::Recalled => "recalled",
                        AssignmentState::Cancelled => "cancelled",
                    },
                    transferred_at: a.transferred_at,
                    receive_by: a.receive_by.at,
                    received_at: a.received_at,
                    complete_by: a.complete_by.at,
                    completed_at: a.completed_at,
                    ended_at: a.ended_at,
                })
                .collect(),
            lead_unit_id: case.completing_lead().map(|a| a.unit_id.to_string()),
            callback: case
                .last_callback()
                .map(|c| (satisfaction_code(c.satisfaction), c.resolved, c.at)),
            n_reopened: case.n_reopened(),
            rating_excluded: case.appeal().is_some_and(|a| a.upheld == Some(true)),
            callbacks: case
                .callbacks()
                .iter()
                .zip(1..)
                .map(|(c, seq)| CallBackRow {
                    seq,
                    unit_id: c.unit_id.as_ref().map(ToString::to_string),
                    at: c.at,
                    satisfaction: satisfaction_code(c.satisfaction),
                    resolved: c.resolved,
                    reopened: c.reopened,
                    excluded: c.excluded,
                })
                .collect(),
            supervised: case.n_supervised() > 0,
            annotated: case.n_annotated() > 0,
            warned: case.deadline_warned(),
            joint: case.is_joint(),
            waiting: waiting_rows(case, org),
        })
    }
}

/// The units the case waits at, from `Case::waiting_for_transfer` and
/// `Case::requests_awaiting_decision`.
fn waiting_rows(case: &Case, org: &OrgTree) -> Vec<WaitingRow> {
    let mut out: Vec<WaitingRow> = case
        .waiting_for_transfer(org)
        .into_iter()
        .map(|(unit, assignment)| WaitingRow {
            list: "to_transfer",
            request: "transfer",
            assignment_id: assignment.unwrap_or(0),
            unit_id: unit.to_string(),
            due: case.accepted_at(),
        })
        .collect();
    out.extend(
        case.requests_awaiting_decision()
            .into_iter()
            .map(|(a, request)| WaitingRow {
                list: "to_decide",
                request: match request {
                    PendingRequest::Return => "return",
                    PendingRequest::Extension => "extension",
                },
                assignment_id: a.id,
                unit_id: a.from_unit_id.to_string(),
                due: Some(a.complete_by.at),
            }),
    );
    out
}

/// For each unit with a transfer whose assignments are still open, its latest such transfer and
/// whether `decide` would let it recall.
fn open_transfers(case: &Case) -> Vec<TransferRow> {
    let mut out: Vec<TransferRow> = Vec::new();
    for t in case.transfers().iter().rev() {
        if out
            .iter()
            .any(|r| r.from_unit_id == t.from_unit_id.as_str())
        {
            continue;
        }
        let mine = || case.assignments().iter().filter(|a| a.transfer_id == t.id);
        if !mine().any(|a| a.is_open()) {
            continue;
        }
        let recallable = mine().filter(|a| a.is_live()).all(|a| {
            !a.handled && a.state != AssignmentState::Completed && !case.transferred_on(a.id)
        });
        out.push(TransferRow {
            from_unit_id: t.from_unit_id.to_string(),
            transfer_id: t.id,
            recallable,
        });
    }
    out.sort_by(|a, b| a.from_unit_id.cmp(&b.from_unit_id));
    out
}

/// Units that may see the case through the tree: every unit given it or transferring it, and
/// all units above those (sorted, without repeats).
pub fn scope_units(case: &Case, org: &OrgTree) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |unit: &UnitId| {
        out.push(unit.to_string());
        out.extend(org.ancestors(unit).into_iter().map(|u| u.id.to_string()));
    };
    for a in case.assignments() {
        add(&a.unit_id);
    }
    for t in case.transfers() {
        add(&t.from_unit_id);
    }
    out.sort();
    out.dedup();
    out
}

/// The keys under which `case_scope` lists a case, so that one index lookup decides whether a
/// caller may see it (mirroring `domain::identity::may_view_case`): the [`scope_units`], the
/// creator as `by:{username}` and the accepting unit as `acc:{unit}` (sorted, without repeats).
pub fn visibility_keys(case: &Case, org: &OrgTree) -> Vec<String> {
    let mut out = scope_units(case, org);
    out.push(created_by_key(case.created_by()));
    if let Some(unit) = case.accepting_unit_id() {
        out.push(accepted_by_key(unit.as_str()));
    }
    out.sort();
    out.dedup();
    out
}

/// What `case_scope` repeats beside each of a case's keys: the columns a list filters and
/// sorts by, as `case_list` holds them (times in microseconds, no deadline as `i64::MAX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeFacts {
    /// `case_list.created_at` (a case has it from its first event; `i64::MIN` never occurs).
    pub created_at: i64,
    /// `case_list.status`.
    pub status: &'static str,
    /// `case_list.category`.
    pub category: Option<&'static str>,
    /// `case_list.kind`.
    pub kind: Option<&'static str>,
    /// `case_list.urgency`.
    pub urgency: Option<&'static str>,
    /// `case_list.district_id`.
    pub district_id: Option<String>,
    /// `case_list.complete_due`.
    pub complete_due: i64,
    /// The case is overdue at `now` exactly when this is before `now`: for an open case its
    /// earlier deadline (receive or complete), for one completed late (逾期办结) `i64::MIN`,
    /// else `i64::MAX` — the same as the case list's overdue condition.
    pub overdue_at: i64,
}

impl CaseRow {
    /// The row's [`ScopeFacts`].
    pub fn scope_facts(&self) -> ScopeFacts {
        let micros = |t: Option<DateTime<Utc>>| t.map_or(i64::MAX, |t| t.timestamp_micros());
        let complete_due = micros(self.complete_due);
        let deadlines = domain::case::RunningDeadlines {
            receive_due: self.receive_due,
            complete_due: self.complete_due,
            completed_late: self.completed_late,
        };
        // The domain's rule as one column: overdue at `now` iff `overdue_at < now`.
        let overdue_at = match deadlines.overdue_from(self.stage) {
            None => i64::MAX,
            Some(t) if t == DateTime::<Utc>::MIN_UTC => i64::MIN,
            Some(t) => t.timestamp_micros(),
        };
        ScopeFacts {
            created_at: self.created_at.map_or(i64::MIN, |t| t.timestamp_micros()),
            status: status_code(self.status),
            category: self.category,
            kind: self.kind,
            urgency: self.urgency,
            district_id: self.district_id.clone(),
            complete_due,
            overdue_at,
        }
    }
}

/// The `case_scope` key of the cases `username` created.
pub fn created_by_key(username: &str) -> String {
    format!("by:{username}")
}

/// The `case_scope` key of the cases `unit` accepted.
pub fn accepted_by_key(unit: &str) -> String {
    format!("acc:{unit}")
}

/// Units the case was given (sorted, without repeats).
pub fn touched_units(case: &Case) -> Vec<String> {
    let mut out: Vec<String> = case
        .assignments()
        .iter()
        .map(|a| a.unit_id.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Which overdue variant applies at `now`, from the row's recorded deadlines: the domain's own
/// rule (`RunningDeadlines::overdue_kind`), so the same answer as `Case::overdue_kind`.
pub fn overdue_kind(
    stage: Stage,
    receive_due: Option<DateTime<Utc>>,
    complete_due: Option<DateTime<Utc>>,
    completed_late: bool,
    now: DateTime<Utc>,
) -> Option<Overdue> {
    domain::case::RunningDeadlines {
        receive_due,
        complete_due,
        completed_late,
    }
    .overdue_kind(stage, now)
}

/// The Chinese label at `now`; the same answer as `Case::status_label`.
pub fn status_label(
    stage: Stage,
    status: Status,
    merged: bool,
    answered_on_call: bool,
    overdue: Option<Overdue>,
) -> &'static str {
    if merged {
        return "已并单";
    }
    if answered_on_call && stage == Stage::Completed {
        return "即办办结";
    }
    match (status, overdue) {
        (Status::Draft, _) => "草稿",
        (Status::Accepted, _) => "已受理",
        (Status::Transferred, Some(_)) => "逾期未接收",
        (Status::Transferred, None) => "已转办（未接收）",
        (Status::InProgress, Some(Overdue::NotReceived)) => "逾期未接收",
        (Status::InProgress, Some(_)) => "逾期正在办理",
        (Status::InProgress, None) => "正在办理（已接收）",
        (Status::Completed, Some(_)) => "逾期办结",
        (Status::Completed, None) => "办结",
        (Status::CalledBack, _) => "已回访",
        (Status::Archived, _) => "已归档",
    }
}

/// The wire code of a stage.
pub fn stage_code(stage: Stage) -> &'static str {
    match stage {
        Stage::New => "new",
        Stage::Draft => "draft",
        Stage::Open => "open",
        Stage::Completed => "completed",
        Stage::CalledBack => "called_back",
        Stage::Archived => "archived",
    }
}

/// The stage of a wire code.
pub fn parse_stage(code: &str) -> Option<Stage> {
    [
        Stage::New,
        Stage::Draft,
        Stage::Open,
        Stage::Completed,
        Stage::CalledBack,
        Stage::Archived,
    ]
    .into_iter()
    .find(|s| stage_code(*s) == code)
}

/// The wire code of a status (`in_progress`…).
pub fn status_code(status: Status) -> &'static str {
    match status {
        Status::Draft => "draft",
        Status::Accepted => "accepted",
        Status::Transferred => "transferred",
        Status::InProgress => "in_progress",
        Status::Completed => "completed",
        Status::CalledBack => "called_back",
        Status::Archived => "archived",
    }
}

/// The status of a wire code.
pub fn parse_status(code: &str) -> Option<Status> {
    [
        Status::Draft,
        Status::Accepted,
        Status::Transferred,
        Status::InProgress,
        Status::Completed,
        Status::CalledBack,
        Status::Archived,
    ]
    .into_iter()
    .find(|s| status_code(*s) == code)
}

/// The wire code of a category.
pub fn category_code(c: Category) -> &'static str {
    match c {
        Category::Inquiry => "inquiry",
        Category::HelpRequest => "help_request",
        Category::Complaint => "complaint",
        Category::Report => "report",
        Category::Proposal => "proposal",
        Category::Praise => "praise",
    }
}

/// The wire code of a kind.
pub fn kind_code(k: Kind) -> &'static str {
    match k {
        Kind::Immediate => "immediate",
        Kind::Escalated => "escalated",
        Kind::Promised => "promised",
        Kind::Suggestion => "suggestion",
        Kind::Supplementary => "supplementary",
    }
}

/// The wire code of an urgency.
pub fn urgency_code(u: Urgency) -> &'static str {
    match u {
        Urgency::Normal => "normal",
        Urgency::Urgent => "urgent",
        Urgency::Critical => "critical",
    }
}
