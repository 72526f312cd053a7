//! The command verbs by the names `domain::actions` gives them (`receive`, `extension/decide`,
//! …, the API's routes), built from the fields a person filled in on a form. Only the shape is
//! checked here (a choice made, a number that is a number); every rule, an empty reason
//! included, is `decide`'s.

use domain::org::UnitId;
use domain::{CaseId, Command, Satisfaction};

use super::failure::Failure;

/// What a form of a verb carries. Each verb has at most one free text (a reason, a note, a
/// reply, an opinion, an instruction).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerbFields {
    /// The verb's free text.
    pub text: String,
    /// 延期: the working days asked for, as typed.
    pub working_days: String,
    /// A decision (accept a return, approve an extension, uphold an appeal): `Some(true)` yes.
    pub decision: Option<bool>,
    /// 回访: how satisfied the citizen is.
    pub satisfaction: Option<Satisfaction>,
    /// 回访: whether the problem was solved.
    pub resolved: Option<bool>,
    /// 转办: the lead unit.
    pub lead_unit_id: Option<String>,
    /// 转办: the co-handling units.
    pub co_unit_ids: Vec<String>,
    /// 并单: the master case's number.
    pub master_id: String,
}

/// A verb's command, or the merge, which needs the master loaded first (`App::merge`).
#[derive(Debug, Clone, PartialEq)]
pub enum VerbCommand {
    /// Run with `App::execute`.
    Run(Command),
    /// Run with `App::merge`.
    Merge(CaseId),
}

/// A form that does not make a command: a choice not made, a number that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerbError {
    /// No such verb (or not one a form runs).
    Unknown(String),
    /// A field was not filled in as the verb needs.
    Field {
        /// The field.
        field: &'static str,
        /// What to tell the person, in Chinese.
        title: &'static str,
    },
}

impl VerbError {
    /// The Chinese text for the screen.
    pub fn title(&self) -> &'static str {
        match self {
            VerbError::Unknown(_) => "不支持该操作",
            VerbError::Field { title, .. } => title,
        }
    }
}

impl From<VerbError> for Failure {
    fn from(err: VerbError) -> Self {
        match err {
            VerbError::Unknown(verb) => {
                Failure::bad_request("invalid_field", format!("unknown action `{verb}`"))
            }
            VerbError::Field { field, .. } => {
                Failure::bad_request("invalid_field", format!("`{field}` is missing or invalid"))
            }
        }
    }
}

fn field(field: &'static str, title: &'static str) -> VerbError {
    VerbError::Field { field, title }
}

/// The verbs a form may run: every verb of `domain::actions` but the intake's own (`draft`,
/// `submit`, `answer`), which the operator's console runs.
pub const FORM_VERBS: &[&str] = &[
    "receive",
    "transfer",
    "recall",
    "return-request",
    "return-decision",
    "progress",
    "complete",
    "extension",
    "extension/decide",
    "callback",
    "reopen",
    "appeal",
    "appeal-decision",
    "supervise",
    "annotate",
    "merge",
    "archive",
];

/// The command of `verb` from what the form carried.
///
/// # Errors
/// [`VerbError::Unknown`] for a verb not in [`FORM_VERBS`]; [`VerbError::Field`] for a
/// decision, a satisfaction, a lead unit or a master not chosen, or working days that are
/// not a whole number.
pub fn command(verb: &str, fields: VerbFields) -> Result<VerbCommand, VerbError> {
    let VerbFields {
        text,
        working_days,
        decision,
        satisfaction,
        resolved,
        lead_unit_id,
        co_unit_ids,
        master_id,
    } = fields;
    let decided = || decision.ok_or_else(|| field("decision", "请选择审核结果"));
    let cmd = match verb {
        "receive" => Command::Receive,
        "transfer" => Command::Transfer {
            lead_unit_id: UnitId::new(
                lead_unit_id
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| field("lead_unit_id", "请选择主办单位"))?,
            ),
            co_unit_ids: co_unit_ids.into_iter().map(UnitId::new).collect(),
            note: text,
        },
        "recall" => Command::Recall { reason: text },
        "return-request" => Command::RequestReturn { reason: text },
        "return-decision" => Command::DecideReturn {
            accept: decided()?,
            note: text,
        },
        "progress" => Command::RecordProgress { note: text },
        "complete" => Command::Complete { reply: text },
        "extension" => Command::RequestExtension {
            working_days: working_days
                .trim()
                .parse()
                .map_err(|_| field("working_days", "延期天数须填写整数（工作日）"))?,
            reason: text,
        },
        "extension/decide" => Command::DecideExtension {
            approve: decided()?,
            note: text,
        },
        "callback" => Command::CallBack {
            satisfaction: satisfaction.ok_or_else(|| field("satisfaction", "请选择满意程度"))?,
            resolved: resolved.ok_or_else(|| field("resolved", "请选择问题是否解决"))?,
            note: text,
        },
        "reopen" => Command::Reopen { reason: text },
        "appeal" => Command::Appeal { reason: text },
        "appeal-decision" => Command::DecideAppeal {
            upheld: decided()?,
            note: text,
        },
        "supervise" => Command::Supervise { opinion: text },
        "annotate" => Command::Annotate { text },
        "archive" => Command::Archive,
        "merge" => {
            let master = CaseId::parse(master_id.trim())
                .map_err(|_| field("master_id", "请选择或填写主工单编号"))?;
            return Ok(VerbCommand::Merge(master));
        }
        other => return Err(VerbError::Unknown(other.to_owned())),
    };
    Ok(VerbCommand::Run(cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(verb: &str, fields: VerbFields) -> Result<Command, VerbError> {
        match command(verb, fields)? {
            VerbCommand::Run(cmd) => Ok(cmd),
            VerbCommand::Merge(_) => panic!("not a merge"),
        }
    }

    #[test]
    fn every_form_verb_is_one_domain_actions_offers_and_makes_its_command() {
        let full = VerbFields {
            text: "理由".into(),
            working_days: "3".into(),
            decision: Some(true),
            satisfaction: Some(Satisfaction::Unsatisfied),
            resolved: Some(false),
            lead_unit_id: Some("d.chengguan".into()),
            co_unit_ids: vec!["d.qilihe".into()],
            master_id: "2026030200001".into(),
        };
        for verb in FORM_VERBS {
            let made = command(verb, full.clone()).unwrap_or_else(|e| panic!("{verb}: {e:?}"));
            if let VerbCommand::Run(cmd) = made {
                // The API's name of the command is the verb, dashes and slashes aside.
                let api = verb.replace(['/', '-'], "_");
                assert_eq!(api, cmd.name(), "{verb}");
            }
        }
        assert_eq!(
            run("extension", full.clone()),
            Ok(Command::RequestExtension {
                working_days: 3,
                reason: "理由".into()
            })
        );
        assert_eq!(
            run("transfer", full.clone()),
            Ok(Command::Transfer {
                lead_unit_id: UnitId::new("d.chengguan"),
                co_unit_ids: vec![UnitId::new("d.qilihe")],
                note: "理由".into()
            })
        );
    }

    #[test]
    fn a_choice_not_made_or_a_number_that_is_not_one_is_said_in_chinese() {
        let none = VerbFields::default();
        for (verb, want) in [
            ("transfer", "请选择主办单位"),
            ("return-decision", "请选择审核结果"),
            ("callback", "请选择满意程度"),
            ("extension", "延期天数须填写整数（工作日）"),
            ("merge", "请选择或填写主工单编号"),
        ] {
            let err = command(verb, none.clone()).expect_err(verb);
            assert_eq!(err.title(), want, "{verb}");
        }
        assert!(matches!(
            command("draft", none.clone()),
            Err(VerbError::Unknown(_))
        ));
        // An empty reason is the rule's to refuse, not the form's.
        assert_eq!(
            run("recall", none),
            Ok(Command::Recall {
                reason: String::new()
            })
        );
    }
}
