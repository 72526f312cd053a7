//! Case events: the stored contract. Changing one needs an upcaster and a golden log in
//! `fixtures/events/` that must still load.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::Deadline;
use crate::case::{CaseId, HandlingRole, Intake, Satisfaction};
use crate::org::UnitId;

/// One thing that happened to a case: who did it, from which unit, when, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened (UTC).
    pub at: DateTime<Utc>,
    /// Username of who did it (`system` for the scheduler and follow-ups).
    pub actor: String,
    /// The unit the actor acted for.
    pub unit_id: UnitId,
    /// What happened.
    pub body: EventBody,
}

/// The schema version every event type is written with today.
pub const SCHEMA_VERSION: u32 = 1;

/// A unit given the case by a transfer (转办), with the deadlines recorded at that moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAssignment {
    /// Number of the assignment within the case.
    pub assignment_id: u32,
    /// The receiving unit.
    pub unit_id: UnitId,
    /// 主办 or 协办.
    pub role: HandlingRole,
    /// 签收时限.
    pub receive_by: Deadline,
    /// 办理时限.
    pub complete_by: Deadline,
}

/// Which deadline of an assignment a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// 签收时限.
    Receive,
    /// 办理时限.
    Complete,
}

impl DeadlineKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::Receive => "receive",
            DeadlineKind::Complete => "complete",
        }
    }
}

/// What happened, with its data. Serialised externally tagged, `{"transferred": {…}}`, with the
/// type name in snake_case: unlike an internal `type` field, this shape decodes in one streaming
/// pass, which roughly halves replay time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventBody {
    /// 草稿 — an operator saved (or re-saved) the intake as a draft.
    DraftSaved {
        /// The case number.
        case_id: CaseId,
        /// The intake as saved.
        intake: Intake,
    },
    /// 受理 — the request is registered and read-only to the post that submitted it.
    Accepted {
        /// The case number.
        case_id: CaseId,
        /// The intake as submitted.
        intake: Intake,
    },
    /// 即办 — answered on the call and closed, citing knowledge-base articles, or recording a
    /// knowledge gap (知识库缺口) when the base had no answer.
    AnsweredOnCall {
        /// The answer given to the citizen.
        reply: String,
        /// The knowledge-base articles cited (empty for a knowledge gap).
        kb_article_ids: Vec<String>,
        /// 知识库缺口: what the caller asked that the base could not answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        knowledge_gap: Option<String>,
    },
    /// 转办 — a unit handed the case to one unit or several (联办件).
    Transferred {
        /// Number of the transfer within the case.
        transfer_id: u32,
        /// The assignment the transferring unit held (`None` for the accepting centre).
        parent_assignment_id: Option<u32>,
        /// The units given the case.
        assignments: Vec<NewAssignment>,
        /// 转办意见.
        note: String,
    },
    /// 追回 — the transferring unit took a transfer (or part of one) back.
    Recalled {
        /// The transfer.
        transfer_id: u32,
        /// The assignments taken back.
        assignment_ids: Vec<u32>,
        /// Why.
        reason: String,
    },
    /// 退回申请 — a receiving unit asked the transferrer to take the case back.
    ReturnRequested {
        /// The assignment of the asking unit.
        assignment_id: u32,
        /// Why it is not theirs.
        reason: String,
    },
    /// The transferrer reviewed a return request: accepted (a recall follows) or overruled.
    ReturnDecided {
        /// The assignment that asked.
        assignment_id: u32,
        /// Whether the return was accepted.
        accepted: bool,
        /// The review opinion.
        note: String,
    },
    /// 接收/签收 — the unit signed for the case.
    Received {
        /// The assignment.
        assignment_id: u32,
    },
    /// 办理 — a handling note (过程记录).
    ProgressRecorded {
        /// The assignment.
        assignment_id: u32,
        /// The note.
        note: String,
    },
    /// 办结 — the unit replied with its result.
    Completed {
        /// The assignment.
        assignment_id: u32,
        /// The reply.
        reply: String,
    },
    /// 延期申请.
    ExtensionRequested {
        /// The assignment.
        assignment_id: u32,
        /// Working days asked for.
        working_days: u32,
        /// Why.
        reason: String,
    },
    /// 延期审批.
    ExtensionDecided {
        /// The assignment.
        assignment_id: u32,
        /// Whether approved.
        approved: bool,
        /// The opinion.
        note: String,
        /// The new handling deadline when approved.
        complete_by: Option<Deadline>,
    },
    /// 回访 — the centre called the citizen back.
    CalledBack {
        /// How satisfied the citizen is.
        satisfaction: Satisfaction,
        /// Whether the problem was solved.
        resolved: bool,
        /// Notes of the call.
        note: String,
    },
    /// 重办 — back to the lead unit after an unsatisfied call-back.
    Reopened {
        /// The lead assignment that handles again.
        assignment_id: u32,
        /// Why.
        reason: String,
        /// The new handling deadline.
        complete_by: Deadline,
    },
    /// 督办 — the efficiency office pressed the holders. Never changes the flow.
    Supervised {
        /// The supervision opinion.
        opinion: String,
        /// The units pressed (the holders at the time).
        unit_ids: Vec<UnitId>,
    },
    /// 到期预警 — the overdue sweep warned that a holder's deadline falls within the warning
    /// window. Never changes the flow; recorded once per assignment, deadline and due time.
    DeadlineWarned {
        /// The assignment whose deadline is near.
        assignment_id: u32,
        /// Which deadline.
        deadline: DeadlineKind,
        /// When it falls due (UTC).
        #[serde(with = "crate::time::utc")]
        due_at: DateTime<Utc>,
    },
    /// 批示 — a leader's instruction. Never changes the flow.
    Annotated {
        /// The instruction.
        text: String,
    },
    /// 归档.
    Archived {
        /// Set when the case was closed because its master closed (并单).
        master_id: Option<CaseId>,
    },
    /// 合并/并单 — this duplicate was folded into a master case.
    Merged {
        /// The master case.
        master_id: CaseId,
        /// Assignments cancelled by the merge.
        cancelled_assignment_ids: Vec<u32>,
    },
    /// 申诉 — the handling unit appealed an unsatisfied rating.
    Appealed {
        /// Why the rating is unreasonable.
        reason: String,
    },
    /// The centre decided an appeal; upheld excludes the rating from the unit's KPIs.
    AppealDecided {
        /// Whether the appeal was upheld.
        upheld: bool,
        /// The decision opinion.
        note: String,
    },
    /// 机构调整移交: the unit was closed; what it held of the case (its assignments, with
    /// their recorded deadlines, and the transfers it made) is its successor's now.
    HandedOver {
        /// The closed unit.
        from_unit_id: UnitId,
        /// Its successor.
        to_unit_id: UnitId,
    },
}

impl EventBody {
    /// The Chinese label of the step, as a timeline shows it (受理, 转办, 签收 …).
    pub fn label_zh(&self) -> &'static str {
        match self {
            EventBody::DraftSaved { .. } => "保存草稿",
            EventBody::Accepted { .. } => "受理",
            EventBody::AnsweredOnCall { .. } => "即办答复",
            EventBody::Transferred { .. } => "转办",
            EventBody::Recalled { .. } => "追回",
            EventBody::ReturnRequested { .. } => "申请退回",
            EventBody::ReturnDecided { .. } => "退回审核",
            EventBody::Received { .. } => "签收",
            EventBody::ProgressRecorded { .. } => "办理",
            EventBody::Completed { .. } => "办结",
            EventBody::ExtensionRequested { .. } => "申请延期",
            EventBody::ExtensionDecided { .. } => "延期审批",
            EventBody::CalledBack { .. } => "回访",
            EventBody::Reopened { .. } => "重办",
            EventBody::Supervised { .. } => "督办",
            EventBody::DeadlineWarned { .. } => "到期预警",
            EventBody::Annotated { .. } => "批示",
            EventBody::Archived { .. } => "归档",
            EventBody::Merged { .. } => "并单",
            EventBody::Appealed { .. } => "申诉",
            EventBody::AppealDecided { .. } => "申诉审核",
            EventBody::HandedOver { .. } => "机构调整移交",
        }
    }

    /// The stored type name (the serde tag).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::DraftSaved { .. } => "draft_saved",
            EventBody::Accepted { .. } => "accepted",
            EventBody::AnsweredOnCall { .. } => "answered_on_call",
            EventBody::Transferred { .. } => "transferred",
            EventBody::Recalled { .. } => "recalled",
            EventBody::ReturnRequested { .. } => "return_requested",
            EventBody::ReturnDecided { .. } => "return_decided",
            EventBody::Received { .. } => "received",
            EventBody::ProgressRecorded { .. } => "progress_recorded",
            EventBody::Completed { .. } => "completed",
            EventBody::ExtensionRequested { .. } => "extension_requested",
            EventBody::ExtensionDecided { .. } => "extension_decided",
            EventBody::CalledBack { .. } => "called_back",
            EventBody::Reopened { .. } => "reopened",
            EventBody::Supervised { .. } => "supervised",
            EventBody::DeadlineWarned { .. } => "deadline_warned",
            EventBody::Annotated { .. } => "annotated",
            EventBody::Archived { .. } => "archived",
            EventBody::Merged { .. } => "merged",
            EventBody::Appealed { .. } => "appealed",
            EventBody::AppealDecided { .. } => "appeal_decided",
            EventBody::HandedOver { .. } => "handed_over",
        }
    }
}
