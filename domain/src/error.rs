//! Why a command was refused. Each variant names the broken rule.

use crate::org::UnitId;
use crate::roles::Role;

/// A command broke a rule; nothing happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// The actor's role may not issue this command.
    #[error("role not allowed: needs one of {}", role_list(.0))]
    RoleNotAllowed(Vec<Role>),
    /// The actor's unit has no part in this step (not the holder, transferrer or centre).
    #[error("unit `{0}` may not do this on this case")]
    UnitNotAllowed(UnitId),
    /// Another unit decides this step: the transferring unit recalls and decides return and
    /// extension requests (rules 5, 10), the accepting centre decides appeals (rule 13).
    #[error(
        "unit `{unit}` may not do this on this case; unit `{decider}` ({decider_name}) decides"
    )]
    OtherUnitDecides {
        /// The actor's unit.
        unit: UnitId,
        /// The unit that decides.
        decider: UnitId,
        /// Its Chinese name.
        decider_name: String,
    },
    /// Only city and district leaders may annotate, and only cases given to units they oversee.
    #[error("leader does not oversee any unit this case was transferred to")]
    NotOverseen,
    /// The case already exists.
    #[error("the case already exists")]
    AlreadyExists,
    /// The case does not exist yet.
    #[error("the case does not exist")]
    NotCreated,
    /// Only drafts can be edited or submitted.
    #[error("the case is not a draft")]
    NotADraft,
    /// Only the operator who saved a draft (or a shift leader of that centre) may change it.
    #[error("the draft belongs to another operator")]
    NotDraftOwner,
    /// A required field is missing or empty.
    #[error("`{0}` is required")]
    Missing(&'static str),
    /// A text field is too long.
    #[error("`{field}` is longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
    /// A text field holds a control character or a bidirectional override
    /// ([`crate::text::allowed`]).
    #[error("`{field}` holds {code_point} at character {at}, which no text may hold")]
    ForbiddenCharacter {
        /// The field.
        field: &'static str,
        /// The character as `U+XXXX`.
        code_point: String,
        /// Its position, in characters from 0.
        at: usize,
    },
    /// The caller's phone number is not one the centre can call back.
    #[error("`{0}` is not a valid phone number")]
    InvalidPhone(String),
    /// A unit id is not in the tree.
    #[error("unknown unit `{0}`")]
    UnknownUnit(UnitId),
    /// Rule 2: an immediate case is answered on the call, never transferred.
    #[error("an immediate case is answered on the call and never transferred")]
    ImmediateNotTransferable,
    /// Rule 2: only an immediate case is answered on the call.
    #[error("only an immediate case can be answered on the call")]
    NotImmediate,
    /// Rules 2 and 15: the on-call answer cites the knowledge-base articles it used, or
    /// records a knowledge gap.
    #[error(
        "an on-call answer must cite at least one knowledge-base article or record a knowledge gap"
    )]
    NoArticleCited,
    /// Rule 15: a cited article does not exist.
    #[error("knowledge-base article `{0}` does not exist")]
    UnknownArticle(String),
    /// Rule 15: a cited article is not published, or not valid at the moment of the answer.
    #[error("knowledge-base article `{0}` is not published and valid now")]
    ArticleNotInForce(String),
    /// The case is not open for handling (completed, called back or archived).
    #[error("the case is closed for handling")]
    NotOpen,
    /// Rules 3 and 4: the target is not one this unit may transfer to.
    #[error("unit `{0}` is not a unit this unit may transfer to")]
    TargetNotAllowed(UnitId),
    /// The same unit appears twice in one transfer.
    #[error("unit `{0}` appears twice in the transfer")]
    DuplicateTarget(UnitId),
    /// The unit already transferred the case on; recall that transfer first.
    #[error("the case was already transferred on by this unit")]
    AlreadyTransferred,
    /// The unit has not received the case yet.
    #[error("the case has not been received yet")]
    NotReceived,
    /// The unit already received the case.
    #[error("the case was already received")]
    AlreadyReceived,
    /// Rule 5: nothing of this unit's to recall.
    #[error("this unit has no transfer of this case to recall")]
    NothingToRecall,
    /// Rule 5: the next node already transferred on or recorded handling.
    #[error("the next unit already transferred the case on or recorded handling")]
    TooLateToRecall,
    /// Rule 10: a return request must come within its limit after receipt.
    #[error("the time to ask for a return has passed")]
    ReturnWindowClosed,
    /// A return request is already pending.
    #[error("a return request is already pending")]
    ReturnPending,
    /// No return request waits for a decision from this unit.
    #[error("no return request is pending")]
    NoReturnRequest,
    /// The lead cannot complete while a co-handler has not replied.
    #[error("co-handling units have not replied yet")]
    CoHandlersPending,
    /// An extension request is already pending.
    #[error("an extension request is already pending")]
    ExtensionPending,
    /// No extension request waits for a decision from this unit.
    #[error("no extension request is pending")]
    NoExtensionRequest,
    /// More working days than the policy allows in total.
    #[error("extensions may add at most {0} working days in total")]
    ExtensionTooLong(u32),
    /// Call-back needs a completed case.
    #[error("the case is not completed")]
    NotCompleted,
    /// Reopen and appeal need an unsatisfied call-back.
    #[error("the last call-back was not unsatisfied")]
    NotUnsatisfied,
    /// An appeal was already filed for this rating.
    #[error("an appeal was already filed for this rating")]
    AlreadyAppealed,
    /// No appeal waits for a decision.
    #[error("no appeal is pending")]
    NoAppeal,
    /// Archive needs a called-back case (or one answered on the call).
    #[error("the case cannot be archived before it is called back")]
    NotArchivable,
    /// An archived case accepts nothing but annotations and supervision.
    #[error("the case is archived")]
    Archived,
    /// A case cannot be merged into itself.
    #[error("a case cannot be merged into itself")]
    MergeIntoSelf,
    /// The master case is not one a duplicate can be merged into.
    #[error("case `{0}` cannot be a master case")]
    InvalidMaster(String),
    /// The case was merged into a master; it follows the master now.
    #[error("the case was merged into another case")]
    Merged,
    /// A deadline warning for a deadline that is not within the warning window (or already
    /// past, or belongs to no open holder).
    #[error("the deadline is not due within the warning window")]
    NotDueSoon,
    /// This deadline was already warned about.
    #[error("this deadline was already warned about")]
    AlreadyWarned,
    /// Only a draft of the centre may be submitted by the centre; submitting needs a centre.
    #[error("only a hotline centre can accept cases")]
    NotACentre,
}

/// `` `operator`, `shift_leader` ``: roles in the API's own words.
fn role_list(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| format!("`{}`", r.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl CaseError {
    /// Whether the refusal is about who is asking (403) rather than the case (422).
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            CaseError::RoleNotAllowed(_)
                | CaseError::UnitNotAllowed(_)
                | CaseError::OtherUnitDecides { .. }
                | CaseError::NotOverseen
                | CaseError::NotDraftOwner
                | CaseError::NotACentre
        )
    }

    /// A stable snake_case code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            CaseError::RoleNotAllowed(_) => "role_not_allowed",
            CaseError::UnitNotAllowed(_) | CaseError::OtherUnitDecides { .. } => "unit_not_allowed",
            CaseError::NotOverseen => "not_overseen",
            CaseError::AlreadyExists => "already_exists",
            CaseError::NotCreated => "not_created",
            CaseError::NotADraft => "not_a_draft",
            CaseError::NotDraftOwner => "not_draft_owner",
            CaseError::Missing(_) => "missing_field",
            CaseError::TooLong { .. } => "too_long",
            CaseError::ForbiddenCharacter { .. } => "forbidden_character",
            CaseError::InvalidPhone(_) => "invalid_phone",
            CaseError::UnknownUnit(_) => "unknown_unit",
            CaseError::ImmediateNotTransferable => "immediate_not_transferable",
            CaseError::NotImmediate => "not_immediate",
            CaseError::NoArticleCited => "no_article_cited",
            CaseError::UnknownArticle(_) => "unknown_article",
            CaseError::ArticleNotInForce(_) => "article_not_in_force",
            CaseError::NotOpen => "not_open",
            CaseError::TargetNotAllowed(_) => "target_not_allowed",
            CaseError::DuplicateTarget(_) => "duplicate_target",
            CaseError::AlreadyTransferred => "already_transferred",
            CaseError::NotReceived => "not_received",
            CaseError::AlreadyReceived => "already_received",
            CaseError::NothingToRecall => "nothing_to_recall",
            CaseError::TooLateToRecall => "too_late_to_recall",
            CaseError::ReturnWindowClosed => "return_window_closed",
            CaseError::ReturnPending => "return_pending",
            CaseError::NoReturnRequest => "no_return_request",
            CaseError::CoHandlersPending => "co_handlers_pending",
            CaseError::ExtensionPending => "extension_pending",
            CaseError::NoExtensionRequest => "no_extension_request",
            CaseError::ExtensionTooLong(_) => "extension_too_long",
            CaseError::NotCompleted => "not_completed",
            CaseError::NotUnsatisfied => "not_unsatisfied",
            CaseError::AlreadyAppealed => "already_appealed",
            CaseError::NoAppeal => "no_appeal",
            CaseError::NotArchivable => "not_archivable",
            CaseError::Archived => "archived",
            CaseError::MergeIntoSelf => "merge_into_self",
            CaseError::InvalidMaster(_) => "invalid_master",
            CaseError::Merged => "merged",
            CaseError::NotACentre => "not_a_centre",
            CaseError::NotDueSoon => "not_due_soon",
            CaseError::AlreadyWarned => "already_warned",
        }
    }

    /// The Chinese title shown on screen, naming the roles allowed or the unit that decides
    /// where there is one.
    pub fn title(&self) -> String {
        match self {
            CaseError::RoleNotAllowed(roles) => format!(
                "当前角色无权执行此操作，需要：{}",
                roles
                    .iter()
                    .map(|r| r.label())
                    .collect::<Vec<_>>()
                    .join("、")
            ),
            CaseError::OtherUnitDecides { decider_name, .. } => {
                format!("该操作应由{decider_name}办理")
            }
            _ => self.title_zh().to_owned(),
        }
    }

    /// The fixed Chinese title of the refusal (without the roles or the unit of [`title`]).
    ///
    /// [`title`]: CaseError::title
    pub fn title_zh(&self) -> &'static str {
        match self {
            CaseError::RoleNotAllowed(_) => "当前角色无权执行此操作",
            CaseError::UnitNotAllowed(_) => "本单位无权对该工单执行此操作",
            CaseError::OtherUnitDecides { .. } => "该操作应由其他单位办理",
            CaseError::NotOverseen => "只能批示转办至所分管单位的工单",
            CaseError::AlreadyExists => "工单已存在",
            CaseError::NotCreated => "工单不存在",
            CaseError::NotADraft => "工单已提交，不能再修改",
            CaseError::NotDraftOwner => "只能修改本人保存的草稿",
            CaseError::Missing(_) => "必填项未填写",
            CaseError::TooLong { .. } => "内容超过长度限制",
            CaseError::ForbiddenCharacter { .. } => "内容含有不允许的控制字符",
            CaseError::InvalidPhone(_) => "电话号码格式不正确",
            CaseError::UnknownUnit(_) => "单位不存在",
            CaseError::ImmediateNotTransferable => "即办件不能转办",
            CaseError::NotImmediate => "只有即办件可以直接答复",
            CaseError::NoArticleCited => "直接答复须引用知识库条目，或登记知识库缺口",
            CaseError::UnknownArticle(_) => "引用的知识库条目不存在",
            CaseError::ArticleNotInForce(_) => "引用的知识库条目未发布或不在有效期内",
            CaseError::NotOpen => "工单已办结，不能再办理",
            CaseError::TargetNotAllowed(_) => "不能转办给该单位",
            CaseError::DuplicateTarget(_) => "转办单位重复",
            CaseError::AlreadyTransferred => "工单已转办下级，请先追回",
            CaseError::NotReceived => "工单尚未接收",
            CaseError::AlreadyReceived => "工单已接收",
            CaseError::NothingToRecall => "本单位没有可追回的转办",
            CaseError::TooLateToRecall => "下级已转办或已办理，不能追回",
            CaseError::ReturnWindowClosed => "已超过退回申请时限",
            CaseError::ReturnPending => "已有待审核的退回申请",
            CaseError::NoReturnRequest => "没有待审核的退回申请",
            CaseError::CoHandlersPending => "协办单位尚未全部答复，主办单位不能办结",
            CaseError::ExtensionPending => "已有待审批的延期申请",
            CaseError::NoExtensionRequest => "没有待审批的延期申请",
            CaseError::ExtensionTooLong(_) => "延期天数超过上限",
            CaseError::NotCompleted => "工单尚未办结",
            CaseError::NotUnsatisfied => "只有回访不满意的工单才能重办或申诉",
            CaseError::AlreadyAppealed => "该评价已申诉",
            CaseError::NoAppeal => "没有待审核的申诉",
            CaseError::NotArchivable => "工单回访后才能归档",
            CaseError::Archived => "工单已归档",
            CaseError::MergeIntoSelf => "工单不能与自身合并",
            CaseError::InvalidMaster(_) => "主工单不可用于合并",
            CaseError::Merged => "工单已并入其他工单",
            CaseError::NotACentre => "只有热线中心可以受理工单",
            CaseError::NotDueSoon => "该时限不在预警范围内",
            CaseError::AlreadyWarned => "该时限已预警",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_role_names_the_allowed_roles_in_the_api_s_words() {
        let err = CaseError::RoleNotAllowed(vec![Role::Operator, Role::ShiftLeader]);
        assert_eq!(
            err.to_string(),
            "role not allowed: needs one of `operator`, `shift_leader`"
        );
        assert_eq!(
            err.title(),
            "当前角色无权执行此操作，需要：座席接线员、值班长"
        );
    }

    #[test]
    fn a_step_another_unit_decides_names_that_unit() {
        let err = CaseError::OtherUnitDecides {
            unit: UnitId::new("city.bureau.housing"),
            decider: UnitId::new("city.centre"),
            decider_name: "市12345热线中心".into(),
        };
        assert!(err.is_permission());
        assert_eq!(err.code(), "unit_not_allowed");
        assert_eq!(
            err.to_string(),
            "unit `city.bureau.housing` may not do this on this case; unit `city.centre` \
             (市12345热线中心) decides"
        );
        assert_eq!(err.title(), "该操作应由市12345热线中心办理");
    }

    #[test]
    fn every_role_s_code_is_its_serde_name() {
        for role in [
            Role::Operator,
            Role::ShiftLeader,
            Role::Dispatcher,
            Role::Handler,
            Role::Leader,
            Role::Supervisor,
            Role::Admin,
        ] {
            assert_eq!(
                serde_json::to_value(role).ok(),
                Some(serde_json::Value::String(role.code().to_owned()))
            );
        }
    }
}
