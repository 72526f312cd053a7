//! Who may do what, for this case, now: the verbs [`decide`] would accept from the actor at
//! this moment, found by asking `decide` itself with each verb (and, for a transfer, each unit
//! it could go to), never by a copy of its rules. Pages and clients show only these.
//!
//! Free text a verb needs (a reason, a reply) is not what the rules judge here: each verb is
//! asked with a placeholder text, so what comes back is what the case's state, the actor's
//! role and unit allow; a form may still be refused for what the user then types (an empty
//! reason, too long a text).

use crate::case::{Case, CaseId, Intake, Satisfaction, Stage};
use crate::command::{AnswerSource, Command, MasterInfo};
use crate::decide::{Context, decide};
use crate::error::CaseError;
use crate::org::UnitId;

/// One verb the actor may perform now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedAction {
    /// The verb as the API names it (`POST /api/v1/cases/{id}/{verb}`): `receive`,
    /// `extension/decide`, … (`draft` is `PUT`).
    pub verb: &'static str,
    /// What the button says.
    pub label: &'static str,
    /// For `transfer`: every unit the case may be transferred to now (lead or co-handler).
    pub transfer_targets: Vec<UnitId>,
}

/// A placeholder for the free text a verb needs.
const TEXT: &str = "-";

/// The verbs `ctx.actor` may perform on `case` now, in the order a page shows them.
pub fn allowed_actions(case: &Case, ctx: &Context<'_>) -> Vec<AllowedAction> {
    let accepts = |cmd: &Command| decide(case, cmd, ctx).is_ok();
    let mut out = Vec::new();
    let mut offer = |verb: &'static str, label: &'static str, cmd: Command| {
        if accepts(&cmd) {
            out.push(AllowedAction {
                verb,
                label,
                transfer_targets: Vec::new(),
            });
        }
    };
    offer(
        "draft",
        "修改草稿",
        Command::UpdateDraft {
            intake: case.intake().clone(),
        },
    );
    offer("submit", "提交受理", Command::Submit);
    // The gap and the citations of an answer pass the same rules but for the articles.
    offer(
        "answer",
        "直接答复",
        Command::Answer {
            reply: TEXT.into(),
            source: AnswerSource::KnowledgeGap {
                question: TEXT.into(),
            },
        },
    );
    offer("receive", "签收", Command::Receive);
    offer(
        "progress",
        "办理记录",
        Command::RecordProgress { note: TEXT.into() },
    );
    offer("complete", "办结", Command::Complete { reply: TEXT.into() });
    offer(
        "return-request",
        "申请退回",
        Command::RequestReturn {
            reason: TEXT.into(),
        },
    );
    offer(
        "return-decision",
        "审核退回",
        Command::DecideReturn {
            accept: false,
            note: TEXT.into(),
        },
    );
    offer(
        "recall",
        "追回",
        Command::Recall {
            reason: TEXT.into(),
        },
    );
    offer(
        "extension",
        "申请延期",
        Command::RequestExtension {
            working_days: 1,
            reason: TEXT.into(),
        },
    );
    offer(
        "extension/decide",
        "审批延期",
        Command::DecideExtension {
            approve: false,
            note: TEXT.into(),
        },
    );
    offer(
        "callback",
        "回访",
        Command::CallBack {
            satisfaction: Satisfaction::Satisfied,
            resolved: true,
            note: String::new(),
        },
    );
    offer(
        "reopen",
        "重办",
        Command::Reopen {
            reason: TEXT.into(),
        },
    );
    offer(
        "appeal",
        "申诉",
        Command::Appeal {
            reason: TEXT.into(),
        },
    );
    offer(
        "appeal-decision",
        "审核申诉",
        Command::DecideAppeal {
            upheld: false,
            note: TEXT.into(),
        },
    );
    offer(
        "supervise",
        "督办",
        Command::Supervise {
            opinion: TEXT.into(),
        },
    );
    offer("annotate", "批示", Command::Annotate { text: TEXT.into() });
    if let Some(id) = case.id() {
        // Any other open case would do as the master; the rule then judges this case.
        let other = CaseId::parse(&format!("{id}0")).unwrap_or_else(|_| id.clone());
        offer(
            "merge",
            "并单",
            Command::Merge {
                master: MasterInfo {
                    id: other,
                    stage: Stage::Open,
                    merged: false,
                },
            },
        );
    }
    offer("archive", "归档", Command::Archive);
    let targets: Vec<UnitId> = ctx
        .org
        .units()
        .iter()
        .filter(|u| crate::decide::may_transfer_to(ctx.org, &ctx.actor.unit_id, &u.id).is_ok())
        .filter(|u| {
            accepts(&Command::Transfer {
                lead_unit_id: u.id.clone(),
                co_unit_ids: Vec::new(),
                note: String::new(),
            })
        })
        .map(|u| u.id.clone())
        .collect();
    if !targets.is_empty() {
        // After the case's own first steps (receive), before the rest: a dispatcher's main
        // action.
        let at = out
            .iter()
            .position(|a| a.verb != "draft" && a.verb != "submit" && a.verb != "receive")
            .unwrap_or(out.len());
        out.insert(
            at,
            AllowedAction {
                verb: "transfer",
                label: "转办",
                transfer_targets: targets,
            },
        );
    }
    out
}

/// Whether `ctx.actor` may register cases (受理: take calls), asked of [`decide`] with an
/// empty draft on a new case: the operator's console is offered to exactly those.
///
/// # Errors
/// The refusal (the roles allowed, or that the actor's unit is not a centre), to show.
pub fn may_create(ctx: &Context<'_>) -> Result<(), CaseError> {
    let probe = Command::Create {
        case_id: CaseId::parse("probe").map_err(|_| CaseError::NotCreated)?,
        intake: Intake::default(),
        submit: false,
    };
    decide(&Case::default(), &probe, ctx).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Intake;
    use crate::kinds::{Category, Kind};
    use crate::roles::Role;
    use crate::testing::{Scenario, actor, local, world};

    fn accepted(kind: Kind) -> Scenario {
        let mut s = Scenario::new(local(2025, 3, 3, 10, 0));
        s.ok(
            &actor("op", "city", Role::Operator),
            Command::Create {
                case_id: CaseId::parse("2025030300001").expect("id"),
                intake: Intake {
                    caller_phone: "13812345678".into(),
                    category: Some(Category::Complaint),
                    kind: Some(kind),
                    title: "噪音".into(),
                    content: "夜间施工".into(),
                    location_unit_id: Some(UnitId::new("d.a.s01.c01")),
                    ..Intake::default()
                },
                submit: true,
            },
        );
        s
    }

    fn transfer(lead: &str) -> Command {
        Command::Transfer {
            lead_unit_id: UnitId::new(lead),
            co_unit_ids: Vec::new(),
            note: String::new(),
        }
    }

    fn actions(s: &Scenario, who: &crate::roles::Actor) -> Vec<AllowedAction> {
        let w = world();
        let ctx = Context {
            now: s.now,
            actor: who,
            org: &w.org,
            calendar: &w.calendar,
            policy: &w.policy,
        };
        allowed_actions(&s.case, &ctx)
    }

    fn verbs(s: &Scenario, who: &crate::roles::Actor) -> Vec<&'static str> {
        actions(s, who).into_iter().map(|a| a.verb).collect()
    }

    fn targets(s: &Scenario, who: &crate::roles::Actor) -> Vec<String> {
        actions(s, who)
            .into_iter()
            .find(|a| a.verb == "transfer")
            .map(|a| a.transfer_targets.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn each_step_offers_exactly_what_the_rules_accept_from_each_actor() {
        let op = actor("op", "city", Role::Operator);
        let disp = actor("disp", "city", Role::Dispatcher);
        let a_disp = actor("a_disp", "d.a", Role::Dispatcher);
        let street = actor("s01", "d.a.s01", Role::Handler);
        let office = actor("supervisor", "city.efficiency", Role::Supervisor);
        let mut s = accepted(Kind::Escalated);
        assert_eq!(verbs(&s, &op), ["merge"]);
        assert_eq!(verbs(&s, &disp), ["transfer", "merge"]);
        // The city centre gives cases to its bureaus and district centres only.
        assert_eq!(
            targets(&s, &disp),
            ["city.bureau.housing", "city.bureau.urban", "d.a", "d.b"]
        );
        assert_eq!(verbs(&s, &office), ["supervise"]);
        assert!(verbs(&s, &street).is_empty());

        s.ok(&disp, transfer("d.a"));
        assert_eq!(verbs(&s, &disp), ["recall", "merge"]);
        assert_eq!(verbs(&s, &a_disp), ["receive", "return-request"]);
        s.ok(&a_disp, Command::Receive);
        assert_eq!(
            targets(&s, &a_disp),
            // Down its subtree, not to a building (a place, not a unit with staff).
            [
                "d.a.dept.urban",
                "d.a.s01",
                "d.a.s02",
                "d.a.s01.c01",
                "d.a.s01.c01.g01"
            ]
        );
        assert!(verbs(&s, &a_disp).contains(&"transfer"));
        assert!(verbs(&s, &a_disp).contains(&"complete"));
        assert!(!verbs(&s, &a_disp).contains(&"receive"));
    }

    #[test]
    fn only_centre_operators_and_shift_leaders_may_take_calls() {
        let w = world();
        let now = local(2025, 3, 3, 10, 0);
        let may = |who: &crate::roles::Actor| {
            may_create(&Context {
                now,
                actor: who,
                org: &w.org,
                calendar: &w.calendar,
                policy: &w.policy,
            })
        };
        assert!(may(&actor("op", "city", Role::Operator)).is_ok());
        assert!(may(&actor("lead", "city", Role::ShiftLeader)).is_ok());
        assert!(matches!(
            may(&actor("disp", "city", Role::Dispatcher)),
            Err(CaseError::RoleNotAllowed(_))
        ));
        assert!(may(&actor("s01", "d.a.s01", Role::Handler)).is_err());
    }

    #[test]
    fn an_immediate_case_is_answered_not_transferred() {
        let op = actor("op", "city", Role::Operator);
        let disp = actor("disp", "city", Role::Dispatcher);
        let s = accepted(Kind::Immediate);
        assert!(verbs(&s, &op).contains(&"answer"));
        assert!(targets(&s, &disp).is_empty());
    }
}
