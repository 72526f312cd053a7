//! 工单 — the `Case` aggregate: its state and how events change it (`evolve`).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::Deadline;
use crate::event::{DeadlineKind, Event, EventBody};
use crate::kinds::{Category, Channel, Kind, Urgency};
use crate::org::{OrgTree, UnitId};

/// 工单编号 — the case number; the event stream is `case-{number}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseId(String);

/// A case number is 1 to 32 ASCII letters, digits or dashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a case number (1 to 32 ASCII letters, digits or dashes)")]
pub struct InvalidCaseId(pub String);

/// The prefix of every case's stream (`case-{工单编号}`).
pub const STREAM_PREFIX: &str = "case-";

impl CaseId {
    /// Validates a case number.
    ///
    /// # Errors
    /// [`InvalidCaseId`] when it is empty, too long or has other characters.
    pub fn parse(s: &str) -> Result<Self, InvalidCaseId> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidCaseId(s.to_owned()))
        }
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The event stream of this case.
    pub fn stream(&self) -> String {
        format!("{STREAM_PREFIX}{}", self.0)
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 受理信息 — what the operator records about the request. Drafts may be incomplete; submit
/// checks completeness.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Intake {
    /// 来电人姓名 (may be empty: anonymous).
    pub caller_name: String,
    /// 来电号码.
    pub caller_phone: String,
    /// 来源渠道.
    pub channel: Option<Channel>,
    /// 诉求类别.
    pub category: Option<Category>,
    /// 件别.
    pub kind: Option<Kind>,
    /// 紧急程度.
    pub urgency: Option<Urgency>,
    /// 标题.
    pub title: String,
    /// 诉求内容.
    pub content: String,
    /// 地址 as the citizen said it.
    pub address: String,
    /// The citizen's place in the six-level tree.
    pub location_unit_id: Option<UnitId>,
    /// 保密 — the caller asked that their name and number stay hidden from handling units.
    #[serde(default)]
    pub confidential: bool,
}

/// 回访满意度.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// 满意
    Satisfied,
    /// 基本满意
    BasicallySatisfied,
    /// 不满意
    Unsatisfied,
}

impl Satisfaction {
    /// The Chinese label shown on screen.
    pub fn label(self) -> &'static str {
        match self {
            Satisfaction::Satisfied => "满意",
            Satisfaction::BasicallySatisfied => "基本满意",
            Satisfaction::Unsatisfied => "不满意",
        }
    }
}

/// 主办 or 协办 in a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandlingRole {
    /// 主办 — answers for the case.
    Lead,
    /// 协办 — helps, replies to the lead.
    Co,
}

/// Where one assignment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentState {
    /// 已转办, 未接收.
    Pending,
    /// 已接收, 正在办理.
    Received,
    /// 已办结.
    Completed,
    /// 已追回 — taken back by the transferrer.
    Recalled,
    /// Cancelled by a merge.
    Cancelled,
}

/// A pending return request (退回申请).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRequest {
    /// Why.
    pub reason: String,
    /// When it was filed.
    pub at: DateTime<Utc>,
}

/// A pending extension request (延期申请).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionRequest {
    /// Working days asked for.
    pub working_days: u32,
    /// Why.
    pub reason: String,
}

/// A request waiting for the transferring unit's decision (待审批).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingRequest {
    /// 退回申请: the receiver asks the transferrer to take the case back.
    Return,
    /// 延期申请: the receiver asks for more time.
    Extension,
}

/// One unit's share of the case, created by a transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// Number within the case.
    pub id: u32,
    /// The transfer that created it.
    pub transfer_id: u32,
    /// The unit that holds it.
    pub unit_id: UnitId,
    /// The unit that transferred it.
    pub from_unit_id: UnitId,
    /// The assignment the transferrer held, if the transferrer was not the accepting centre.
    pub parent_id: Option<u32>,
    /// 主办 or 协办.
    pub role: HandlingRole,
    /// Where it stands.
    pub state: AssignmentState,
    /// When the transfer happened.
    pub transferred_at: DateTime<Utc>,
    /// 签收时限.
    pub receive_by: Deadline,
    /// 办理时限 (moved by extensions and reopens).
    pub complete_by: Deadline,
    /// When it was received.
    pub received_at: Option<DateTime<Utc>>,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was taken back (追回) or cancelled by a merge (并单); `None` while live.
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// Whether handling was recorded (progress notes or a reply).
    pub handled: bool,
    /// The unit's reply.
    pub reply: Option<String>,
    /// A pending return request.
    pub return_request: Option<ReturnRequest>,
    /// A pending extension request.
    pub extension_request: Option<ExtensionRequest>,
    /// Working days granted so far.
    pub extended_days: u32,
    /// 到期预警 recorded so far: which deadline, due when.
    #[serde(default)]
    pub warnings: Vec<(DeadlineKind, DateTime<Utc>)>,
}

impl Assignment {
    /// The deadline of this kind as it stands now, if it still runs: receive-by while
    /// pending, complete-by while pending or received.
    pub fn running_deadline(&self, deadline: DeadlineKind) -> Option<DateTime<Utc>> {
        match (deadline, self.state) {
            (DeadlineKind::Receive, AssignmentState::Pending) => Some(self.receive_by.at),
            (DeadlineKind::Complete, AssignmentState::Pending | AssignmentState::Received) => {
                Some(self.complete_by.at)
            }
            _ => None,
        }
    }

    /// Whether a warning was recorded for a deadline that still runs, as it stands now.
    pub fn warned(&self) -> bool {
        self.warnings
            .iter()
            .any(|(kind, due_at)| self.running_deadline(*kind) == Some(*due_at))
    }

    /// Whether a deadline was met (`Some(true)`), missed (`Some(false)`), or not reached yet
    /// (`None`: not yet signed for, or not yet completed): the same comparison as
    /// [`Assignment::overdue_kind`], on what was done.
    pub fn deadline_met(&self, deadline: DeadlineKind) -> Option<bool> {
        match deadline {
            DeadlineKind::Receive => self.received_at.map(|t| t <= self.receive_by.at),
            DeadlineKind::Complete => self.completed_at.map(|t| t <= self.complete_by.at),
        }
    }

    /// Pending, received or completed: not taken back nor cancelled.
    pub fn is_live(&self) -> bool {
        matches!(
            self.state,
            AssignmentState::Pending | AssignmentState::Received | AssignmentState::Completed
        )
    }

    /// Pending or received: someone still owes work on it.
    pub fn is_open(&self) -> bool {
        matches!(
            self.state,
            AssignmentState::Pending | AssignmentState::Received
        )
    }

    /// Rule 8 for one assignment at `now`: not signed for by its receive-by (逾期未接收), not
    /// completed by its complete-by (逾期正在办理), or completed after it (逾期办结).
    pub fn overdue_kind(&self, now: DateTime<Utc>) -> Option<Overdue> {
        match self.state {
            AssignmentState::Pending if now > self.receive_by.at => Some(Overdue::NotReceived),
            AssignmentState::Pending | AssignmentState::Received if now > self.complete_by.at => {
                Some(Overdue::InProgress)
            }
            AssignmentState::Completed
                if self.completed_at.is_some_and(|t| t > self.complete_by.at) =>
            {
                Some(Overdue::Completed)
            }
            _ => None,
        }
    }
}

/// What rule 8 needs to judge a case overdue at any instant, from its recorded deadlines: a
/// read model keeps these and judges at query time with [`RunningDeadlines::overdue_kind`],
/// which gives the same answer as [`Case::overdue_kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunningDeadlines {
    /// The earliest receive-by of the holders not yet signed for.
    pub receive_due: Option<DateTime<Utc>>,
    /// The earliest complete-by of the holders.
    pub complete_due: Option<DateTime<Utc>>,
    /// The case is closed and some assignment was completed after its complete-by.
    pub completed_late: bool,
}

impl RunningDeadlines {
    /// From when a case at `stage` is overdue: it is overdue at `now` exactly when this is
    /// `Some(t)` with `t < now` ([`DateTime::MIN_UTC`] for a case completed late, overdue at
    /// every instant); `None` when it is not overdue at any time.
    pub fn overdue_from(&self, stage: Stage) -> Option<DateTime<Utc>> {
        match stage {
            Stage::Open => match (self.receive_due, self.complete_due) {
                (Some(r), Some(c)) => Some(r.min(c)),
                (r, c) => r.or(c),
            },
            Stage::Completed | Stage::CalledBack | Stage::Archived if self.completed_late => {
                Some(DateTime::<Utc>::MIN_UTC)
            }
            _ => None,
        }
    }

    /// Which overdue variant applies at `now` to a case at `stage`.
    pub fn overdue_kind(&self, stage: Stage, now: DateTime<Utc>) -> Option<Overdue> {
        match stage {
            Stage::Open => {
                if self.receive_due.is_some_and(|d| now > d) {
                    Some(Overdue::NotReceived)
                } else if self.complete_due.is_some_and(|d| now > d) {
                    Some(Overdue::InProgress)
                } else {
                    None
                }
            }
            Stage::Completed | Stage::CalledBack | Stage::Archived => {
                self.completed_late.then_some(Overdue::Completed)
            }
            Stage::New | Stage::Draft => None,
        }
    }
}

/// One transfer (转办), possibly to several units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// Number within the case.
    pub id: u32,
    /// The transferring unit.
    pub from_unit_id: UnitId,
    /// The assignment it held, if any.
    pub parent_assignment_id: Option<u32>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A call-back (回访) record. Every one counts in the KPIs of the unit it rated (rule 13);
/// only an upheld appeal takes it out, and the record stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallBack {
    /// How satisfied.
    pub satisfaction: Satisfaction,
    /// Whether resolved.
    pub resolved: bool,
    /// When.
    pub at: DateTime<Utc>,
    /// The unit rated: the lead that had completed the case when the centre called back.
    #[serde(default)]
    pub unit_id: Option<UnitId>,
    /// The case was reopened (重办) after this call-back.
    #[serde(default)]
    pub reopened: bool,
    /// An upheld appeal (申诉) excludes this rating from the KPIs.
    #[serde(default)]
    pub excluded: bool,
}

/// An appeal (申诉) against a rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appeal {
    /// The appealing unit.
    pub unit_id: UnitId,
    /// Why.
    pub reason: String,
    /// `None` while pending; `Some(upheld)` once decided.
    pub upheld: Option<bool>,
}

/// The coarse stage of a case; finer states are derived from its assignments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// No event yet.
    New,
    /// 草稿.
    Draft,
    /// Submitted and open: accepted, transferred or in handling.
    Open,
    /// 办结 (or answered on the call).
    Completed,
    /// 已回访.
    CalledBack,
    /// 已归档.
    Archived,
}

/// The state a user sees (DESIGN.md rule 8), without the overdue variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 草稿
    Draft,
    /// 已受理
    Accepted,
    /// 已转办 (未接收)
    Transferred,
    /// 正在办理 (已接收)
    InProgress,
    /// 办结
    Completed,
    /// 已回访
    CalledBack,
    /// 已归档
    Archived,
}

/// 工单 — a citizen's request, tracked from intake to closure.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub(crate) id: Option<CaseId>,
    pub(crate) version: u64,
    pub(crate) stage: Stage,
    pub(crate) intake: Intake,
    pub(crate) created_by: String,
    pub(crate) created_at: Option<DateTime<Utc>>,
    pub(crate) accepting_unit_id: Option<UnitId>,
    pub(crate) accepted_at: Option<DateTime<Utc>>,
    pub(crate) answered_on_call: bool,
    pub(crate) kb_article_ids: Vec<String>,
    /// 知识库缺口 recorded by the on-call answer: what was asked.
    pub(crate) knowledge_gap: Option<String>,
    pub(crate) transfers: Vec<Transfer>,
    pub(crate) assignments: Vec<Assignment>,
    pub(crate) completed_at: Option<DateTime<Utc>>,
    pub(crate) callbacks: Vec<CallBack>,
    pub(crate) n_reopened: u32,
    pub(crate) appeal: Option<Appeal>,
    pub(crate) merged_into: Option<CaseId>,
    pub(crate) archived_at: Option<DateTime<Utc>>,
    pub(crate) n_supervised: u32,
    pub(crate) n_annotated: u32,
}

impl Default for Case {
    fn default() -> Self {
        Self {
            id: None,
            version: 0,
            stage: Stage::New,
            intake: Intake::default(),
            created_by: String::new(),
            created_at: None,
            accepting_unit_id: None,
            accepted_at: None,
            answered_on_call: false,
            kb_article_ids: Vec::new(),
            knowledge_gap: None,
            transfers: Vec::new(),
            assignments: Vec::new(),
            completed_at: None,
            callbacks: Vec::new(),
            n_reopened: 0,
            appeal: None,
            merged_into: None,
            archived_at: None,
            n_supervised: 0,
            n_annotated: 0,
        }
    }
}

impl Case {
    /// The case number, once created.
    pub fn id(&self) -> Option<&CaseId> {
        self.id.as_ref()
    }
    /// Number of events applied (the stream version).
    pub fn version(&self) -> u64 {
        self.version
    }
    /// The coarse stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }
    /// The intake.
    pub fn intake(&self) -> &Intake {
        &self.intake
    }
    /// Who created it.
    pub fn created_by(&self) -> &str {
        &self.created_by
    }
    /// When it was created.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }
    /// The centre that accepted it (受理单位).
    pub fn accepting_unit_id(&self) -> Option<&UnitId> {
        self.accepting_unit_id.as_ref()
    }
    /// When it was accepted.
    pub fn accepted_at(&self) -> Option<DateTime<Utc>> {
        self.accepted_at
    }
    /// Whether it was answered on the call (即办).
    pub fn answered_on_call(&self) -> bool {
        self.answered_on_call
    }
    /// Knowledge-base articles cited by the on-call answer.
    pub fn kb_article_ids(&self) -> &[String] {
        &self.kb_article_ids
    }

    /// The knowledge gap (知识库缺口) the on-call answer recorded: what the caller asked.
    pub fn knowledge_gap(&self) -> Option<&str> {
        self.knowledge_gap.as_deref()
    }
    /// All transfers, in order.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }
    /// All assignments, in order.
    pub fn assignments(&self) -> &[Assignment] {
        &self.assignments
    }
    /// When the case was completed.
    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.completed_at
    }
    /// Call-backs, in order.
    pub fn callbacks(&self) -> &[CallBack] {
        &self.callbacks
    }
    /// How often it was reopened.
    pub fn n_reopened(&self) -> u32 {
        self.n_reopened
    }
    /// The appeal, if any.
    pub fn appeal(&self) -> Option<&Appeal> {
        self.appeal.as_ref()
    }
    /// The master case, if this one was merged into it.
    pub fn merged_into(&self) -> Option<&CaseId> {
        self.merged_into.as_ref()
    }
    /// When it was archived.
    pub fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.archived_at
    }

    /// The assignment with this number.
    pub fn assignment(&self, id: u32) -> Option<&Assignment> {
        self.assignments.iter().find(|a| a.id == id)
    }

    fn assignment_mut(&mut self, id: u32) -> Option<&mut Assignment> {
        self.assignments.iter_mut().find(|a| a.id == id)
    }

    /// Whether a live assignment was transferred on from assignment `id`.
    pub fn transferred_on(&self, id: u32) -> bool {
        self.assignments
            .iter()
            .any(|a| a.parent_id == Some(id) && a.is_live())
    }

    /// Live assignments at the root level (transferred by the accepting centre).
    pub fn has_live_root_transfer(&self) -> bool {
        self.assignments
            .iter()
            .any(|a| a.parent_id.is_none() && a.is_live())
    }

    /// 当前办理单位 — open assignments not transferred on: who holds the case now.
    pub fn holders(&self) -> impl Iterator<Item = &Assignment> {
        self.assignments
            .iter()
            .filter(|a| a.is_open() && !self.transferred_on(a.id))
    }

    /// The lead assignment at the end of the lead chain, if the case is out with units.
    pub fn lead_holder(&self) -> Option<&Assignment> {
        self.holders().find(|a| a.role == HandlingRole::Lead)
    }

    /// The open assignment of `unit` not transferred on, if any.
    pub fn holding_assignment_of(&self, unit: &UnitId) -> Option<&Assignment> {
        self.holders().find(|a| &a.unit_id == unit)
    }

    /// The lead assignment that completed the case (the one a reopen returns to).
    pub fn completing_lead(&self) -> Option<&Assignment> {
        self.assignments
            .iter()
            .rev()
            .find(|a| a.role == HandlingRole::Lead && a.state == AssignmentState::Completed)
    }

    /// The latest call-back.
    pub fn last_callback(&self) -> Option<&CallBack> {
        self.callbacks.last()
    }

    /// How often the efficiency office pressed a unit on it (督办).
    pub fn n_supervised(&self) -> u32 {
        self.n_supervised
    }

    /// How many instructions leaders wrote on it (批示).
    pub fn n_annotated(&self) -> u32 {
        self.n_annotated
    }

    /// 联办件 — whether the case is out with several units at once: a live co-handler (协办)
    /// beside its lead. A recalled joint transfer leaves no joint case behind.
    pub fn is_joint(&self) -> bool {
        self.assignments
            .iter()
            .any(|a| a.role == HandlingRole::Co && a.is_live())
    }

    /// 到期预警 — whether a holder was warned of a deadline that still runs
    /// ([`Assignment::warned`]).
    pub fn deadline_warned(&self) -> bool {
        self.stage == Stage::Open && self.holders().any(Assignment::warned)
    }

    /// 待转办 — the centres at which the case waits for a transfer, with the assignment each
    /// holds (`None` for the accepting centre): the accepting centre while nothing it
    /// transferred is live (never transferred, recalled, or a return it accepted), and a
    /// centre holding the case received with no return request of its own pending (a
    /// district centre given it, or given it back when its own transfer was recalled). These
    /// are the places `decide` starts a transfer from; the handling units below the centres
    /// hold their cases to handle them, not to pass them on. Immediate (即办) and merged cases
    /// never wait for a transfer.
    pub fn waiting_for_transfer(&self, org: &OrgTree) -> Vec<(&UnitId, Option<u32>)> {
        let open = self.stage == Stage::Open
            && self.merged_into.is_none()
            && self.intake.kind != Some(Kind::Immediate);
        if !open {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(centre) = &self.accepting_unit_id
            && !self.has_live_root_transfer()
        {
            out.push((centre, None));
        }
        let is_centre = |unit: &UnitId| org.get(unit).is_some_and(|u| u.kind.is_centre());
        for a in self.holders() {
            if a.state == AssignmentState::Received
                && a.return_request.is_none()
                && is_centre(&a.unit_id)
            {
                out.push((&a.unit_id, Some(a.id)));
            }
        }
        out
    }

    /// 待审批 — the requests waiting for a decision: each open assignment's pending return
    /// request (退回申请) and extension request (延期申请), to be decided by the unit that
    /// transferred it ([`Assignment::from_unit_id`]), as `decide` finds them for
    /// `DecideReturn` and `DecideExtension`. None once the case is closed or merged.
    pub fn requests_awaiting_decision(&self) -> Vec<(&Assignment, PendingRequest)> {
        if self.stage != Stage::Open || self.merged_into.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for a in self.assignments.iter().filter(|a| a.is_open()) {
            if a.return_request.is_some() {
                out.push((a, PendingRequest::Return));
            }
            if a.extension_request.is_some() {
                out.push((a, PendingRequest::Extension));
            }
        }
        out
    }

    /// The state a user sees, without overdue.
    pub fn status(&self) -> Status {
        match self.stage {
            Stage::New | Stage::Draft => Status::Draft,
            Stage::Completed => Status::Completed,
            Stage::CalledBack => Status::CalledBack,
            Stage::Archived => Status::Archived,
            Stage::Open => match self.lead_holder().map(|a| a.state) {
                Some(AssignmentState::Pending) => Status::Transferred,
                Some(AssignmentState::Received) => Status::InProgress,
                _ => Status::Accepted,
            },
        }
    }

    /// Whether any deadline the case now runs on has passed at `now`: a holder not received by
    /// its receive-by, not completed by its complete-by, or the case completed late.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.overdue_kind(now).is_some()
    }

    /// The deadlines rule 8 judges the case by ([`RunningDeadlines`]).
    pub fn running_deadlines(&self) -> RunningDeadlines {
        let open = self.stage == Stage::Open;
        let holders = || self.holders().filter(move |_| open);
        RunningDeadlines {
            receive_due: holders()
                .filter(|a| a.state == AssignmentState::Pending)
                .map(|a| a.receive_by.at)
                .min(),
            complete_due: holders().map(|a| a.complete_by.at).min(),
            completed_late: matches!(
                self.stage,
                Stage::Completed | Stage::CalledBack | Stage::Archived
            ) && self
                .assignments
                .iter()
                .any(|a| a.overdue_kind(DateTime::<Utc>::MIN_UTC) == Some(Overdue::Completed)),
        }
    }

    /// Which overdue variant applies at `now`, if any (rule 8): the one rule, also used by
    /// the read models through [`Case::running_deadlines`].
    pub fn overdue_kind(&self, now: DateTime<Utc>) -> Option<Overdue> {
        self.running_deadlines().overdue_kind(self.stage, now)
    }

    /// The Chinese label of the state a user sees, with the overdue variants.
    pub fn status_label(&self, now: DateTime<Utc>) -> &'static str {
        if self.merged_into.is_some() && self.stage != Stage::Archived {
            return "已并单";
        }
        if self.answered_on_call && self.stage == Stage::Completed {
            return "即办办结";
        }
        match (self.status(), self.overdue_kind(now)) {
            (Status::Draft, _) => "草稿",
            (Status::Accepted, _) => "已受理",
            (Status::Transferred, Some(Overdue::NotReceived)) => "逾期未接收",
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
}

/// The overdue variants of DESIGN.md rule 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overdue {
    /// 逾期未接收
    NotReceived,
    /// 逾期正在办理
    InProgress,
    /// 逾期办结
    Completed,
}

/// Applies one event. Never fails and checks no rule: events are facts.
pub fn evolve(mut case: Case, event: &Event) -> Case {
    case.version += 1;
    let at = event.at;
    match &event.body {
        EventBody::DraftSaved { case_id, intake } => {
            if case.stage == Stage::New {
                case.id = Some(case_id.clone());
                case.created_by = event.actor.clone();
                case.created_at = Some(at);
            }
            case.stage = Stage::Draft;
            case.intake = intake.clone();
        }
        EventBody::Accepted { case_id, intake } => {
            if case.stage == Stage::New {
                case.id = Some(case_id.clone());
                case.created_by = event.actor.clone();
                case.created_at = Some(at);
            }
            case.stage = Stage::Open;
            case.intake = intake.clone();
            case.accepting_unit_id = Some(event.unit_id.clone());
            case.accepted_at = Some(at);
        }
        EventBody::AnsweredOnCall {
            kb_article_ids,
            knowledge_gap,
            ..
        } => {
            case.answered_on_call = true;
            case.kb_article_ids = kb_article_ids.clone();
            case.knowledge_gap = knowledge_gap.clone();
            case.stage = Stage::Completed;
            case.completed_at = Some(at);
        }
        EventBody::Transferred {
            transfer_id,
            parent_assignment_id,
            assignments,
            ..
        } => {
            case.transfers.push(Transfer {
                id: *transfer_id,
                from_unit_id: event.unit_id.clone(),
                parent_assignment_id: *parent_assignment_id,
                at,
            });
            for new in assignments {
                case.assignments.push(Assignment {
                    id: new.assignment_id,
                    transfer_id: *transfer_id,
                    unit_id: new.unit_id.clone(),
                    from_unit_id: event.unit_id.clone(),
                    parent_id: *parent_assignment_id,
                    role: new.role,
                    state: AssignmentState::Pending,
                    transferred_at: at,
                    receive_by: new.receive_by,
                    complete_by: new.complete_by,
                    received_at: None,
                    completed_at: None,
                    ended_at: None,
                    handled: false,
                    reply: None,
                    return_request: None,
                    extension_request: None,
                    extended_days: 0,
                    warnings: Vec::new(),
                });
            }
        }
        EventBody::Recalled { assignment_ids, .. } => {
            for id in assignment_ids {
                if let Some(a) = case.assignment_mut(*id) {
                    a.state = AssignmentState::Recalled;
                    a.ended_at = Some(at);
                    a.return_request = None;
                    a.extension_request = None;
                }
            }
        }
        EventBody::ReturnRequested {
            assignment_id,
            reason,
        } => {
            if let Some(a) = case.assignment_mut(*assignment_id) {
                a.return_request = Some(ReturnRequest {
                    reason: reason.clone(),
                    at,
                });
            }
        }
        EventBody::ReturnDecided { assignment_id, .. } => {
            if let Some(a) = case.assignment_mut(*assignment_id) {
                a.return_request = None;
            }
        }
        EventBody::Received { assignment_id } => {
            if let Some(a) = case.assignment_mut(*assignment_id) {
                a.state = AssignmentState::Received;
                a.received_at = Some(at);
            }
        }
        EventBody::ProgressRecorded { assignment_id, .. } => {
            if let Some(a) = case.assignment_mut(*assignment_id) {
                a.handled = true;
            }
        }
        EventBody::Completed {
            assignment_id,
            reply,
        } => {
            let mut lead = false;
            if let Some(a) = case.assignment_mut(*assignment_id) {
                a.state = AssignmentState::Completed;
                a.completed_at = Some(at);
                a.handled = true;
                a.reply = Some(reply.clone());
                a.extension_request = None;
                lead = a.role == HandlingRole::Lead;
            }
            if lead {
                case.stage = Stage::Completed;
                case.completed_at = Some(at);
            }
        }
        EventBody::ExtensionRequested {
            assignment_id,
            working_days,
            reason,
        } => {
            if let Some(a) = case.assignment_mut(*assignment_id) {
                a.extension_request = Some(ExtensionRequest {
                    working_days: *working_days,
                    reason: reason.clone(),
                });
            }
        }
        EventBody::ExtensionDecided {
            assignment_id,
            complete_by,
            ..
        } => {
            if let Some(a) = case.assignment_mut(*assignment_id) {
                if let (Some(deadline), Some(req)) = (complete_by, a.extension_request.take()) {
                    a.extended_days += req.working_days;
                    a.complete_by = *deadline;
                }
                a.extension_request = None;
            }
        }
        EventBody::CalledBack {
            satisfaction,
            resolved,
            ..
        } => {
            let unit_id = case.completing_lead().map(|a| a.unit_id.clone());
            case.callbacks.push(CallBack {
                satisfaction: *satisfaction,
                resolved: *resolved,
                at,
                unit_id,
                reopened: false,
                excluded: false,
            });
            case.appeal = None;
            case.stage = Stage::CalledBack;
        }
        EventBody::Reopened {
            assignment_id,
            complete_by,
            ..
        } => {
            if let Some(a) = case.assignment_mut(*assignment_id) {
                a.state = AssignmentState::Received;
                a.completed_at = None;
                a.complete_by = *complete_by;
            }
            case.n_reopened += 1;
            if let Some(last) = case.callbacks.last_mut() {
                last.reopened = true;
            }
            case.completed_at = None;
            case.stage = Stage::Open;
        }
        EventBody::Supervised { .. } => case.n_supervised += 1,
        EventBody::DeadlineWarned {
            assignment_id,
            deadline,
            due_at,
        } => {
            if let Some(a) = case.assignment_mut(*assignment_id) {
                a.warnings.push((*deadline, *due_at));
            }
        }
        EventBody::Annotated { .. } => case.n_annotated += 1,
        EventBody::Archived { .. } => {
            case.stage = Stage::Archived;
            case.archived_at = Some(at);
        }
        EventBody::Merged {
            master_id,
            cancelled_assignment_ids,
        } => {
            case.merged_into = Some(master_id.clone());
            for id in cancelled_assignment_ids {
                if let Some(a) = case.assignment_mut(*id) {
                    a.state = AssignmentState::Cancelled;
                    a.ended_at = Some(at);
                }
            }
        }
        EventBody::Appealed { reason } => {
            case.appeal = Some(Appeal {
                unit_id: event.unit_id.clone(),
                reason: reason.clone(),
                upheld: None,
            });
        }
        EventBody::AppealDecided { upheld, .. } => {
            if let Some(appeal) = case.appeal.as_mut() {
                appeal.upheld = Some(*upheld);
                // The appeal is against the latest rating.
                if *upheld && let Some(last) = case.callbacks.last_mut() {
                    last.excluded = true;
                }
            }
        }
        EventBody::HandedOver {
            from_unit_id,
            to_unit_id,
        } => {
            for a in &mut case.assignments {
                if a.is_live() && &a.unit_id == from_unit_id {
                    a.unit_id = to_unit_id.clone();
                }
                if &a.from_unit_id == from_unit_id {
                    a.from_unit_id = to_unit_id.clone();
                }
            }
        }
    }
    case
}

/// Folds a history into a case.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Case {
    events.into_iter().fold(Case::default(), evolve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::WorkingTime;
    use crate::command::Command;
    use crate::event::DeadlineKind;
    use crate::roles::{Actor, Role};
    use crate::testing::{Scenario, actor, local, world};

    fn op() -> Actor {
        actor("operator", "city", Role::Operator)
    }
    fn disp() -> Actor {
        actor("dispatcher", "city", Role::Dispatcher)
    }
    fn da() -> Actor {
        actor("a_dispatcher", "d.a", Role::Dispatcher)
    }
    fn s01() -> Actor {
        actor("a_s01_handler", "d.a.s01", Role::Handler)
    }
    fn housing() -> Actor {
        actor("housing_handler", "city.bureau.housing", Role::Handler)
    }
    fn sup() -> Actor {
        actor("supervisor", "city.efficiency", Role::Supervisor)
    }

    fn accepted() -> Scenario {
        let mut s = Scenario::new(local(2025, 3, 3, 10, 0));
        s.ok(
            &op(),
            Command::Create {
                case_id: CaseId::parse("2025030300001").expect("valid id"),
                intake: Intake {
                    caller_name: "张三".into(),
                    caller_phone: "13812345678".into(),
                    channel: Some(Channel::Phone),
                    category: Some(Category::Complaint),
                    kind: Some(Kind::Escalated),
                    urgency: Some(Urgency::Normal),
                    title: "楼上装修噪音扰民".into(),
                    content: "晚上十点后仍在装修，影响休息。".into(),
                    address: "某小区3号楼".into(),
                    location_unit_id: Some(UnitId::new("d.a.s01.c01")),
                    confidential: false,
                },
                submit: true,
            },
        );
        s
    }

    fn transfer(lead: &str, co: &[&str]) -> Command {
        Command::Transfer {
            lead_unit_id: UnitId::new(lead),
            co_unit_ids: co.iter().map(|c| UnitId::new(*c)).collect(),
            note: "请依职责办理".into(),
        }
    }

    fn recall() -> Command {
        Command::Recall {
            reason: "派错单位".into(),
        }
    }

    /// The units the case waits at, each checked against `decide`: a dispatcher there may
    /// start a transfer (to a unit it may reach), and none elsewhere may.
    fn waiting(s: &Scenario) -> Vec<(String, Option<u32>)> {
        let out: Vec<(String, Option<u32>)> = s
            .case
            .waiting_for_transfer(&world().org)
            .into_iter()
            .map(|(u, a)| (u.to_string(), a))
            .collect();
        for (unit, target) in [("city", "d.b"), ("d.a", "d.a.s02")] {
            let dispatcher = actor("d", unit, Role::Dispatcher);
            let res = s.try_cmd(&dispatcher, &transfer(target, &[]));
            let listed = out.iter().any(|(u, _)| u == unit);
            assert_eq!(res.is_ok(), listed, "{unit}: {res:?}");
        }
        out
    }

    #[test]
    fn a_deadline_is_met_or_missed_once_its_step_is_done() {
        let mut s = accepted();
        s.ok(&disp(), transfer("city.bureau.housing", &[]));
        let met = |s: &Scenario, kind| s.case.assignments()[0].deadline_met(kind);
        assert_eq!(met(&s, DeadlineKind::Receive), None);
        s.ok(&housing(), Command::Receive);
        assert_eq!(met(&s, DeadlineKind::Receive), Some(true));
        assert_eq!(met(&s, DeadlineKind::Complete), None);
        // Three weeks later: past any handling limit.
        s.advance_to(local(2025, 3, 24, 10, 0));
        s.ok(
            &housing(),
            Command::Complete {
                reply: "已处理".into(),
            },
        );
        assert_eq!(met(&s, DeadlineKind::Complete), Some(false));
    }

    #[test]
    fn a_case_waits_for_transfer_at_its_centre_until_sent_and_again_once_recalled() {
        let mut s = accepted();
        assert_eq!(waiting(&s), [("city".to_owned(), None)]);
        s.ok(&disp(), transfer("d.a", &[]));
        // Given to the district centre, not yet received: it waits to be received, not sent.
        assert!(waiting(&s).is_empty());
        s.ok(&da(), Command::Receive);
        assert_eq!(waiting(&s), [("d.a".to_owned(), Some(1))]);
        s.ok(&da(), transfer("d.a.s01", &[]));
        assert!(waiting(&s).is_empty());
        // A street holds its case to handle it, not to pass it on.
        s.ok(&s01(), Command::Receive);
        assert!(waiting(&s).is_empty());
        // Recalled from the street: back at the district centre; then the city takes it back.
        s.ok(&da(), recall());
        assert_eq!(waiting(&s), [("d.a".to_owned(), Some(1))]);
        s.ok(&disp(), recall());
        assert_eq!(waiting(&s), [("city".to_owned(), None)]);
    }

    #[test]
    fn a_return_request_waits_for_the_transferrer_and_an_accepted_one_brings_the_case_back() {
        let mut s = accepted();
        s.ok(&disp(), transfer("d.a", &[]));
        s.ok(&da(), Command::Receive);
        assert!(s.case.requests_awaiting_decision().is_empty());
        s.ok(
            &da(),
            Command::RequestReturn {
                reason: "不属于本区".into(),
            },
        );
        // While its own return request is pending, the district centre cannot send it on.
        assert!(waiting(&s).is_empty());
        let pending: Vec<(u32, &str, PendingRequest)> = s
            .case
            .requests_awaiting_decision()
            .into_iter()
            .map(|(a, r)| (a.id, a.from_unit_id.as_str(), r))
            .collect();
        assert_eq!(pending, [(1, "city", PendingRequest::Return)]);
        s.ok(
            &disp(),
            Command::DecideReturn {
                accept: true,
                note: String::new(),
            },
        );
        assert!(s.case.requests_awaiting_decision().is_empty());
        assert_eq!(waiting(&s), [("city".to_owned(), None)]);
    }

    #[test]
    fn an_extension_request_waits_for_the_transferrer_until_decided() {
        let mut s = accepted();
        s.ok(&disp(), transfer("city.bureau.housing", &[]));
        s.ok(&housing(), Command::Receive);
        s.ok(
            &housing(),
            Command::RequestExtension {
                working_days: 3,
                reason: "需现场勘查".into(),
            },
        );
        let pending: Vec<(&str, PendingRequest)> = s
            .case
            .requests_awaiting_decision()
            .into_iter()
            .map(|(a, r)| (a.from_unit_id.as_str(), r))
            .collect();
        assert_eq!(pending, [("city", PendingRequest::Extension)]);
        // The unit `requests_awaiting_decision` names is the one `decide` lets decide.
        let decision = Command::DecideExtension {
            approve: false,
            note: "请按期办结".into(),
        };
        assert!(s.try_cmd(&da(), &decision).is_err());
        s.ok(&disp(), decision);
        assert!(s.case.requests_awaiting_decision().is_empty());
    }

    #[test]
    fn a_joint_transfer_makes_a_joint_case_until_it_is_recalled() {
        let mut s = accepted();
        assert!(!s.case.is_joint());
        s.ok(&disp(), transfer("d.a", &["city.bureau.housing"]));
        assert!(s.case.is_joint());
        s.ok(&disp(), recall());
        assert!(!s.case.is_joint());
        s.ok(&disp(), transfer("d.a", &[]));
        assert!(!s.case.is_joint());
    }

    #[test]
    fn a_deadline_warning_shows_while_its_deadline_still_runs() {
        let mut s = accepted();
        s.ok(&disp(), transfer("city.bureau.housing", &[]));
        assert!(!s.case.deadline_warned());
        s.ok(
            &sup(),
            Command::WarnDeadline {
                assignment_id: 1,
                deadline: DeadlineKind::Receive,
                within: WorkingTime::Days(1),
            },
        );
        assert!(s.case.deadline_warned());
        // Received: the receive-by it was warned of no longer runs.
        s.ok(&housing(), Command::Receive);
        assert!(!s.case.deadline_warned());
    }
}
