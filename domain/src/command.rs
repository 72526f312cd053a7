//! Commands: what users ask the case to do. Imperative names; `decide` checks the rules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::WorkingTime;
use crate::case::{CaseId, Intake, Satisfaction, Stage};
use crate::event::DeadlineKind;
use crate::org::UnitId;

/// What the command handler knows of the master case when merging (并单): `decide` stays pure,
/// so the caller loads the master and passes this in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterInfo {
    /// The master case.
    pub id: CaseId,
    /// Its stage.
    pub stage: Stage,
    /// Whether the master is itself merged into another case.
    pub merged: bool,
}

/// An article an on-call answer cites, as the knowledge base has it at the moment of the
/// answer: `decide` stays pure, so the caller loads the articles and passes this in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitedArticle {
    /// The article id as the operator gave it.
    pub id: String,
    /// What the knowledge base knows of it; `None` when there is no such article.
    pub facts: Option<ArticleFacts>,
}

/// What rule 15 looks at in a cited article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleFacts {
    /// 已发布 (not a draft, not retired).
    pub published: bool,
    /// From when the answer holds (none: since ever).
    pub valid_from: Option<DateTime<Utc>>,
    /// Until when it holds, exclusive (none: until retired).
    pub valid_until: Option<DateTime<Utc>>,
}

/// What an on-call answer (即办) rests on: articles of the knowledge base, or, when the base
/// has no answer, a knowledge gap (知识库缺口) recording what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerSource {
    /// The articles cited, at least one.
    Articles(Vec<CitedArticle>),
    /// 知识库缺口: the base had no answer to `question`.
    KnowledgeGap {
        /// What the caller asked.
        question: String,
    },
}

/// A request to change a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// 受理: save a draft (`submit = false`) or register the request at once.
    Create {
        /// The number given to the new case.
        case_id: CaseId,
        /// What the operator recorded.
        intake: Intake,
        /// Submit now (受理) instead of saving a draft.
        submit: bool,
    },
    /// Replace a draft's intake.
    UpdateDraft {
        /// The new intake.
        intake: Intake,
    },
    /// Submit a draft (受理).
    Submit,
    /// 即办: answer on the call from the knowledge base (or record a knowledge gap) and close.
    Answer {
        /// The answer.
        reply: String,
        /// The articles cited, or the gap.
        source: AnswerSource,
    },
    /// 转办 to one unit, or to several (联办件: one lead, co-handlers).
    Transfer {
        /// 主办单位.
        lead_unit_id: UnitId,
        /// 协办单位.
        co_unit_ids: Vec<UnitId>,
        /// 转办意见.
        note: String,
    },
    /// 追回 this unit's transfer.
    Recall {
        /// Why.
        reason: String,
    },
    /// 退回申请: ask the transferrer to take the case back.
    RequestReturn {
        /// Why.
        reason: String,
    },
    /// Review a return request: accept (recall) or overrule.
    DecideReturn {
        /// Accept the return.
        accept: bool,
        /// Opinion.
        note: String,
    },
    /// 接收/签收.
    Receive,
    /// 办理: record a handling note.
    RecordProgress {
        /// The note.
        note: String,
    },
    /// 办结: reply with the result.
    Complete {
        /// The reply.
        reply: String,
    },
    /// 延期申请.
    RequestExtension {
        /// Working days asked for.
        working_days: u32,
        /// Why.
        reason: String,
    },
    /// 延期审批.
    DecideExtension {
        /// Approve it.
        approve: bool,
        /// Opinion.
        note: String,
    },
    /// 回访.
    CallBack {
        /// How satisfied the citizen is.
        satisfaction: Satisfaction,
        /// Whether it was solved.
        resolved: bool,
        /// Notes.
        note: String,
    },
    /// 重办 after an unsatisfied call-back.
    Reopen {
        /// Why.
        reason: String,
    },
    /// 督办.
    Supervise {
        /// Opinion.
        opinion: String,
    },
    /// 到期预警: warn that a holder's deadline is near (issued by the scheduler as `system`).
    WarnDeadline {
        /// The holder's assignment.
        assignment_id: u32,
        /// Which deadline.
        deadline: DeadlineKind,
        /// The warning window: warn when the deadline falls within this much working time.
        within: WorkingTime,
    },
    /// 批示.
    Annotate {
        /// The instruction.
        text: String,
    },
    /// 归档.
    Archive,
    /// Close a merged duplicate because its master was archived (a follow-up, not a user verb).
    ArchiveWithMaster {
        /// The master that was archived.
        master_id: CaseId,
    },
    /// 并单: fold this duplicate into a master case.
    Merge {
        /// The master case as loaded by the caller.
        master: MasterInfo,
    },
    /// 申诉 an unsatisfied rating.
    Appeal {
        /// Why the rating is unreasonable.
        reason: String,
    },
    /// Decide an appeal.
    DecideAppeal {
        /// Uphold it (exclude the rating from KPIs).
        upheld: bool,
        /// Opinion.
        note: String,
    },
    /// 机构调整移交: a closed unit's part of the case goes to its successor (a follow-up of
    /// closing a unit, run by the system, not a user verb).
    HandOver {
        /// The closed unit.
        from_unit_id: UnitId,
        /// Its successor.
        to_unit_id: UnitId,
    },
}

/// Limits on free text, in characters.
pub mod limits {
    /// 标题.
    pub const TITLE: usize = 200;
    /// 诉求内容.
    pub const CONTENT: usize = 5000;
    /// 地址.
    pub const ADDRESS: usize = 500;
    /// 来电人姓名.
    pub const NAME: usize = 50;
    /// Notes, reasons, replies, opinions.
    pub const NOTE: usize = 5000;
    /// Articles cited by one answer.
    pub const ARTICLES: usize = 20;
    /// The question of a knowledge gap (知识库缺口).
    pub const QUESTION: usize = 500;
    /// Co-handling units in one transfer.
    pub const CO_UNITS: usize = 20;
}

impl Command {
    /// The verb, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Create { .. } => "create",
            Command::UpdateDraft { .. } => "update_draft",
            Command::Submit => "submit",
            Command::Answer { .. } => "answer",
            Command::Transfer { .. } => "transfer",
            Command::Recall { .. } => "recall",
            Command::RequestReturn { .. } => "return_request",
            Command::DecideReturn { .. } => "return_decision",
            Command::Receive => "receive",
            Command::RecordProgress { .. } => "progress",
            Command::Complete { .. } => "complete",
            Command::RequestExtension { .. } => "extension",
            Command::DecideExtension { .. } => "extension_decide",
            Command::CallBack { .. } => "callback",
            Command::Reopen { .. } => "reopen",
            Command::Supervise { .. } => "supervise",
            Command::WarnDeadline { .. } => "warn_deadline",
            Command::Annotate { .. } => "annotate",
            Command::Archive => "archive",
            Command::ArchiveWithMaster { .. } => "archive_with_master",
            Command::Merge { .. } => "merge",
            Command::Appeal { .. } => "appeal",
            Command::DecideAppeal { .. } => "appeal_decision",
            Command::HandOver { .. } => "hand_over",
        }
    }
}
