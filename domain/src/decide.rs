//! `decide`: the rules of the flow (DESIGN.md section 2). Pure: everything it needs arrives in
//! the command or the [`Context`].

use chrono::{DateTime, Utc};

use crate::calendar::{DeadlinePolicy, WorkingCalendar, WorkingTime};
use crate::case::{AssignmentState, Case, HandlingRole, Intake, Satisfaction, Stage};
use crate::command::{AnswerSource, CitedArticle, Command, MasterInfo, limits};
use crate::error::CaseError;
use crate::event::{DeadlineKind, Event, EventBody, NewAssignment};
use crate::identity::normalize_phone;
use crate::kinds::{Channel, Kind, Urgency};
use crate::org::{Level, OrgTree, UnitId, UnitKind};
use crate::roles::{Actor, Role};
use crate::text::Lines;

/// What a decision may consult besides the case: the time, who acts, the tree, the calendar and
/// the deadline policy.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The time of the command.
    pub now: DateTime<Utc>,
    /// Who acts.
    pub actor: &'a Actor,
    /// The six-level tree.
    pub org: &'a OrgTree,
    /// The working calendar.
    pub calendar: &'a WorkingCalendar,
    /// The deadline policy.
    pub policy: &'a DeadlinePolicy,
}

const CENTRE_STAFF: &[Role] = &[Role::Operator, Role::ShiftLeader, Role::Dispatcher];
const TRANSFERRERS: &[Role] = &[Role::Dispatcher, Role::ShiftLeader, Role::Handler];
const HANDLERS: &[Role] = &[Role::Handler, Role::Dispatcher, Role::ShiftLeader];

/// Decides what happens when `cmd` meets `case`.
///
/// # Errors
/// The [`CaseError`] naming the broken rule; nothing happens then.
pub fn decide(case: &Case, cmd: &Command, ctx: &Context<'_>) -> Result<Vec<Event>, CaseError> {
    let d = Decider { case, ctx };
    d.decide(cmd)
}

/// Rules 3 and 4: whether `from` may transfer a case to `target`. The city centre transfers to
/// its bureaus and district centres; every other unit transfers down its own subtree, never to a
/// centre or the efficiency office.
///
/// # Errors
/// [`CaseError::UnknownUnit`] when `target` is not in the tree, [`CaseError::TargetNotAllowed`]
/// when the rules forbid the transfer.
pub fn may_transfer_to(org: &OrgTree, from: &UnitId, target: &UnitId) -> Result<(), CaseError> {
    let unit = org
        .get(target)
        .ok_or_else(|| CaseError::UnknownUnit(target.clone()))?;
    let from_kind = org.get(from).map(|u| u.kind);
    let allowed = if from_kind == Some(UnitKind::HotlineCentre) {
        // The city centre transfers to city bureaus and district centres.
        unit.parent_id.as_ref() == Some(from)
            && matches!(unit.kind, UnitKind::Bureau | UnitKind::DistrictCentre)
    } else {
        // Everyone else transfers down their own subtree only, to units that handle cases (a
        // building is a place, not a unit with staff).
        org.is_below(target, from)
            && !matches!(
                unit.kind,
                UnitKind::HotlineCentre
                    | UnitKind::EfficiencyOffice
                    | UnitKind::DistrictCentre
                    | UnitKind::Building
            )
    };
    if allowed {
        Ok(())
    } else {
        Err(CaseError::TargetNotAllowed(target.clone()))
    }
}

struct Decider<'a> {
    case: &'a Case,
    ctx: &'a Context<'a>,
}

/// A required text of several lines (content, replies, notes, opinions).
fn text(field: &'static str, value: &str, max: usize) -> Result<String, CaseError> {
    required(field, value, max, Lines::Many)
}

/// A text of several lines that may be empty.
fn optional_text(field: &'static str, value: &str, max: usize) -> Result<String, CaseError> {
    checked(field, value, max, Lines::Many)
}

/// A required one-line text (a title).
fn line(field: &'static str, value: &str, max: usize) -> Result<String, CaseError> {
    required(field, value, max, Lines::One)
}

/// A one-line text that may be empty (a name, an address, a draft's title).
fn optional_line(field: &'static str, value: &str, max: usize) -> Result<String, CaseError> {
    checked(field, value, max, Lines::One)
}

fn required(
    field: &'static str,
    value: &str,
    max: usize,
    lines: Lines,
) -> Result<String, CaseError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CaseError::Missing(field));
    }
    checked(field, value, max, lines)
}

/// Trimmed, at most `max` characters, none that [`crate::text::allowed`] refuses.
fn checked(
    field: &'static str,
    value: &str,
    max: usize,
    lines: Lines,
) -> Result<String, CaseError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(CaseError::TooLong { field, max });
    }
    crate::text::check(value, lines).map_err(|bad| CaseError::ForbiddenCharacter {
        field,
        code_point: bad.code_point(),
        at: bad.at,
    })?;
    Ok(value.to_owned())
}

impl Decider<'_> {
    fn actor(&self) -> &Actor {
        self.ctx.actor
    }

    fn event(&self, body: EventBody) -> Event {
        Event {
            at: self.ctx.now,
            actor: self.ctx.actor.username.clone(),
            unit_id: self.ctx.actor.unit_id.clone(),
            body,
        }
    }

    fn require_role(&self, roles: &[Role]) -> Result<(), CaseError> {
        if self.actor().has_any(roles) {
            Ok(())
        } else {
            Err(CaseError::RoleNotAllowed(roles.to_vec()))
        }
    }

    /// The case exists, is submitted, not archived and not merged.
    fn require_live(&self) -> Result<(), CaseError> {
        match self.case.stage() {
            Stage::New => return Err(CaseError::NotCreated),
            Stage::Draft => return Err(CaseError::NotCreated),
            Stage::Archived => return Err(CaseError::Archived),
            _ => {}
        }
        if self.case.merged_into().is_some() {
            return Err(CaseError::Merged);
        }
        Ok(())
    }

    /// Live and open for handling.
    fn require_open(&self) -> Result<(), CaseError> {
        self.require_live()?;
        if self.case.stage() != Stage::Open {
            return Err(CaseError::NotOpen);
        }
        Ok(())
    }

    fn at_accepting_centre(&self) -> Result<(), CaseError> {
        match self.case.accepting_unit_id() {
            Some(centre) if centre == &self.actor().unit_id => Ok(()),
            Some(centre) => Err(self.other_unit_decides(centre)),
            None => Err(CaseError::UnitNotAllowed(self.actor().unit_id.clone())),
        }
    }

    /// The refusal of a step that `decider` takes, not the actor's unit.
    fn other_unit_decides(&self, decider: &UnitId) -> CaseError {
        CaseError::OtherUnitDecides {
            unit: self.actor().unit_id.clone(),
            decider: decider.clone(),
            decider_name: self
                .ctx
                .org
                .get(decider)
                .map(|u| u.name.clone())
                .unwrap_or_default(),
        }
    }

    /// The unit that transferred the open assignment the actor's unit holds, or else the
    /// unit of the latest open transfer: who recalls and decides requests when the actor's
    /// unit may not.
    fn transferrer_for_actor(&self) -> Option<&UnitId> {
        let me = &self.actor().unit_id;
        let assignments = self.case.assignments();
        assignments
            .iter()
            .rev()
            .find(|a| &a.unit_id == me && a.is_open())
            .or_else(|| assignments.iter().rev().find(|a| a.is_open()))
            .map(|a| &a.from_unit_id)
            .filter(|from| *from != me)
    }

    fn decide(&self, cmd: &Command) -> Result<Vec<Event>, CaseError> {
        match cmd {
            Command::Create {
                case_id,
                intake,
                submit,
            } => {
                self.require_role(&[Role::Operator, Role::ShiftLeader])?;
                self.require_centre()?;
                if self.case.stage() != Stage::New {
                    return Err(CaseError::AlreadyExists);
                }
                let body = if *submit {
                    EventBody::Accepted {
                        case_id: case_id.clone(),
                        intake: self.complete_intake(intake)?,
                    }
                } else {
                    EventBody::DraftSaved {
                        case_id: case_id.clone(),
                        intake: self.draft_intake(intake)?,
                    }
                };
                Ok(vec![self.event(body)])
            }
            Command::UpdateDraft { intake } => {
                self.require_role(&[Role::Operator, Role::ShiftLeader])?;
                self.require_draft_owner()?;
                let id = self.case.id().cloned().ok_or(CaseError::NotCreated)?;
                Ok(vec![self.event(EventBody::DraftSaved {
                    case_id: id,
                    intake: self.draft_intake(intake)?,
                })])
            }
            Command::Submit => {
                self.require_role(&[Role::Operator, Role::ShiftLeader])?;
                self.require_draft_owner()?;
                self.require_centre()?;
                let id = self.case.id().cloned().ok_or(CaseError::NotCreated)?;
                Ok(vec![self.event(EventBody::Accepted {
                    case_id: id,
                    intake: self.complete_intake(self.case.intake())?,
                })])
            }
            Command::Answer { reply, source } => self.answer(reply, source),
            Command::Transfer {
                lead_unit_id,
                co_unit_ids,
                note,
            } => self.transfer(lead_unit_id, co_unit_ids, note),
            Command::Recall { reason } => self.recall(reason),
            Command::RequestReturn { reason } => self.request_return(reason),
            Command::DecideReturn { accept, note } => self.decide_return(*accept, note),
            Command::Receive => {
                self.require_role(HANDLERS)?;
                self.require_open()?;
                let a = self.own_assignment()?;
                if a.state != AssignmentState::Pending {
                    return Err(CaseError::AlreadyReceived);
                }
                Ok(vec![self.event(EventBody::Received {
                    assignment_id: a.id,
                })])
            }
            Command::RecordProgress { note } => {
                self.require_role(HANDLERS)?;
                self.require_open()?;
                let a = self.own_received_assignment()?;
                Ok(vec![self.event(EventBody::ProgressRecorded {
                    assignment_id: a.id,
                    note: text("note", note, limits::NOTE)?,
                })])
            }
            Command::Complete { reply } => self.complete(reply),
            Command::RequestExtension {
                working_days,
                reason,
            } => self.request_extension(*working_days, reason),
            Command::DecideExtension { approve, note } => self.decide_extension(*approve, note),
            Command::CallBack {
                satisfaction,
                resolved,
                note,
            } => {
                self.require_role(CENTRE_STAFF)?;
                self.require_live()?;
                self.at_accepting_centre()?;
                if self.case.stage() != Stage::Completed {
                    return Err(CaseError::NotCompleted);
                }
                Ok(vec![self.event(EventBody::CalledBack {
                    satisfaction: *satisfaction,
                    resolved: *resolved,
                    note: optional_text("note", note, limits::NOTE)?,
                })])
            }
            Command::Reopen { reason } => self.reopen(reason),
            Command::Supervise { opinion } => {
                self.require_role(&[Role::Supervisor])?;
                self.require_submitted()?;
                let unit_ids = self.case.holders().map(|a| a.unit_id.clone()).collect();
                Ok(vec![self.event(EventBody::Supervised {
                    opinion: text("opinion", opinion, limits::NOTE)?,
                    unit_ids,
                })])
            }
            Command::WarnDeadline {
                assignment_id,
                deadline,
                within,
            } => self.warn_deadline(*assignment_id, *deadline, *within),
            Command::Annotate { text: body } => self.annotate(body),
            Command::Archive => {
                self.require_role(CENTRE_STAFF)?;
                self.require_live()?;
                self.at_accepting_centre()?;
                let closable = self.case.stage() == Stage::CalledBack
                    || (self.case.stage() == Stage::Completed && self.case.answered_on_call());
                if !closable || self.case.appeal().is_some_and(|a| a.upheld.is_none()) {
                    return Err(CaseError::NotArchivable);
                }
                Ok(vec![self.event(EventBody::Archived { master_id: None })])
            }
            Command::ArchiveWithMaster { master_id } => {
                if self.case.stage() == Stage::Archived {
                    return Err(CaseError::Archived);
                }
                if self.case.merged_into() != Some(master_id) {
                    return Err(CaseError::InvalidMaster(master_id.to_string()));
                }
                Ok(vec![self.event(EventBody::Archived {
                    master_id: Some(master_id.clone()),
                })])
            }
            Command::Merge { master } => self.merge(master),
            Command::HandOver {
                from_unit_id,
                to_unit_id,
            } => self.hand_over(from_unit_id, to_unit_id),
            Command::Appeal { reason } => {
                self.require_role(HANDLERS)?;
                self.require_live()?;
                if self.case.stage() != Stage::CalledBack {
                    return Err(CaseError::NotUnsatisfied);
                }
                let lead = self
                    .case
                    .completing_lead()
                    .ok_or(CaseError::NotUnsatisfied)?;
                if lead.unit_id != self.actor().unit_id {
                    return Err(CaseError::UnitNotAllowed(self.actor().unit_id.clone()));
                }
                if !self.last_callback_unsatisfied() {
                    return Err(CaseError::NotUnsatisfied);
                }
                if self.case.appeal().is_some() {
                    return Err(CaseError::AlreadyAppealed);
                }
                Ok(vec![self.event(EventBody::Appealed {
                    reason: text("reason", reason, limits::NOTE)?,
                })])
            }
            Command::DecideAppeal { upheld, note } => {
                self.require_role(&[Role::ShiftLeader, Role::Dispatcher])?;
                self.require_live()?;
                self.at_accepting_centre()?;
                if self.case.appeal().is_none_or(|a| a.upheld.is_some()) {
                    return Err(CaseError::NoAppeal);
                }
                Ok(vec![self.event(EventBody::AppealDecided {
                    upheld: *upheld,
                    note: text("note", note, limits::NOTE)?,
                })])
            }
        }
    }

    fn require_centre(&self) -> Result<(), CaseError> {
        match self.ctx.org.get(&self.actor().unit_id) {
            Some(unit) if unit.kind.is_centre() => Ok(()),
            _ => Err(CaseError::NotACentre),
        }
    }

    fn require_submitted(&self) -> Result<(), CaseError> {
        match self.case.stage() {
            Stage::New | Stage::Draft => Err(CaseError::NotCreated),
            _ => Ok(()),
        }
    }

    fn require_draft_owner(&self) -> Result<(), CaseError> {
        match self.case.stage() {
            Stage::New => return Err(CaseError::NotCreated),
            Stage::Draft => {}
            _ => return Err(CaseError::NotADraft),
        }
        if self.case.created_by() != self.actor().username && !self.actor().has(Role::ShiftLeader) {
            return Err(CaseError::NotDraftOwner);
        }
        Ok(())
    }

    fn check_location(&self, location: Option<&UnitId>) -> Result<(), CaseError> {
        if let Some(unit) = location
            && self.ctx.org.get(unit).is_none()
        {
            return Err(CaseError::UnknownUnit(unit.clone()));
        }
        Ok(())
    }

    /// A draft may be incomplete, but what it has must be well formed.
    fn draft_intake(&self, intake: &Intake) -> Result<Intake, CaseError> {
        let mut out = intake.clone();
        out.caller_name = optional_line("caller_name", &intake.caller_name, limits::NAME)?;
        let phone = intake.caller_phone.trim();
        // Filed in one form (normalize_phone), so a caller's history finds every call.
        out.caller_phone = if phone.is_empty() {
            String::new()
        } else {
            normalize_phone(phone).ok_or_else(|| CaseError::InvalidPhone(phone.to_owned()))?
        };
        out.title = optional_line("title", &intake.title, limits::TITLE)?;
        out.content = optional_text("content", &intake.content, limits::CONTENT)?;
        out.address = optional_line("address", &intake.address, limits::ADDRESS)?;
        self.check_location(intake.location_unit_id.as_ref())?;
        Ok(out)
    }

    /// Submitting needs the caller's number, category, kind, title and content (rule 3 adds
    /// the location for a transfer).
    fn complete_intake(&self, intake: &Intake) -> Result<Intake, CaseError> {
        let mut out = self.draft_intake(intake)?;
        if out.caller_phone.is_empty() {
            return Err(CaseError::Missing("caller_phone"));
        }
        if out.category.is_none() {
            return Err(CaseError::Missing("category"));
        }
        if out.kind.is_none() {
            return Err(CaseError::Missing("kind"));
        }
        out.title = line("title", &out.title, limits::TITLE)?;
        out.content = text("content", &out.content, limits::CONTENT)?;
        out.urgency.get_or_insert(Urgency::Normal);
        out.channel.get_or_insert(Channel::Phone);
        Ok(out)
    }

    /// Rules 2 and 15: an immediate case answered on the call, citing articles that are
    /// published and valid now, or recording a knowledge gap when the base has no answer.
    fn answer(&self, reply: &str, source: &AnswerSource) -> Result<Vec<Event>, CaseError> {
        self.require_role(&[Role::Operator, Role::ShiftLeader])?;
        self.require_open()?;
        self.at_accepting_centre()?;
        if self.case.intake().kind != Some(Kind::Immediate) {
            return Err(CaseError::NotImmediate);
        }
        if self.case.has_live_root_transfer() {
            return Err(CaseError::AlreadyTransferred);
        }
        let reply = text("reply", reply, limits::NOTE)?;
        let (kb_article_ids, knowledge_gap) = match source {
            AnswerSource::Articles(cited) => (self.citations(cited)?, None),
            AnswerSource::KnowledgeGap { question } => {
                let question = line("knowledge_gap.question", question, limits::QUESTION)?;
                (Vec::new(), Some(question))
            }
        };
        Ok(vec![self.event(EventBody::AnsweredOnCall {
            reply,
            kb_article_ids,
            knowledge_gap,
        })])
    }

    /// Rule 15: the ids of the cited articles, once each, every one published and valid now.
    fn citations(&self, cited: &[CitedArticle]) -> Result<Vec<String>, CaseError> {
        let mut ids: Vec<String> = Vec::new();
        for article in cited {
            let id = article.id.trim();
            if id.is_empty() || ids.iter().any(|x| x == id) {
                continue;
            }
            if ids.len() == limits::ARTICLES {
                return Err(CaseError::TooLong {
                    field: "kb_article_ids",
                    max: limits::ARTICLES,
                });
            }
            let facts = article
                .facts
                .as_ref()
                .ok_or_else(|| CaseError::UnknownArticle(id.to_owned()))?;
            let now = self.ctx.now;
            let in_force = facts.published
                && facts.valid_from.is_none_or(|from| from <= now)
                && facts.valid_until.is_none_or(|until| now < until);
            if !in_force {
                return Err(CaseError::ArticleNotInForce(id.to_owned()));
            }
            ids.push(id.to_owned());
        }
        if ids.is_empty() {
            return Err(CaseError::NoArticleCited);
        }
        Ok(ids)
    }

    /// Rules 3 and 4: whom `from` may transfer to.
    fn may_transfer_to(&self, from: &UnitId, target: &UnitId) -> Result<(), CaseError> {
        may_transfer_to(self.ctx.org, from, target)
    }

    fn transfer(
        &self,
        lead_unit_id: &UnitId,
        co_unit_ids: &[UnitId],
        note: &str,
    ) -> Result<Vec<Event>, CaseError> {
        self.require_role(TRANSFERRERS)?;
        self.require_open()?;
        let case = self.case;
        let me = &self.actor().unit_id;
        // Who is transferring: the accepting centre with nothing out, or a holder that received it.
        let parent = if case.accepting_unit_id() == Some(me) && !case.has_live_root_transfer() {
            None
        } else if let Some(a) = case.holding_assignment_of(me) {
            if a.state != AssignmentState::Received {
                return Err(CaseError::NotReceived);
            }
            if a.return_request.is_some() {
                return Err(CaseError::ReturnPending);
            }
            Some(a)
        } else if case.accepting_unit_id() == Some(me)
            || case
                .assignments()
                .iter()
                .any(|a| &a.unit_id == me && a.is_open())
        {
            return Err(CaseError::AlreadyTransferred);
        } else {
            return Err(CaseError::UnitNotAllowed(me.clone()));
        };
        let intake = case.intake();
        if intake.kind == Some(Kind::Immediate) {
            return Err(CaseError::ImmediateNotTransferable);
        }
        if intake.location_unit_id.is_none() {
            return Err(CaseError::Missing("location_unit_id"));
        }
        if co_unit_ids.len() > limits::CO_UNITS {
            return Err(CaseError::TooLong {
                field: "co_unit_ids",
                max: limits::CO_UNITS,
            });
        }
        let mut targets: Vec<&UnitId> = Vec::with_capacity(1 + co_unit_ids.len());
        for target in std::iter::once(lead_unit_id).chain(co_unit_ids) {
            if targets.contains(&target) {
                return Err(CaseError::DuplicateTarget(target.clone()));
            }
            self.may_transfer_to(me, target)?;
            targets.push(target);
        }
        let note = optional_text("note", note, limits::NOTE)?;

        let (category, kind, urgency) = match (intake.category, intake.kind) {
            (Some(c), Some(k)) => (c, k, intake.urgency.unwrap_or(Urgency::Normal)),
            _ => return Err(CaseError::Missing("category")),
        };
        let limits = self.ctx.policy.limits(category, kind, urgency);
        let now = self.ctx.now;
        let receive_by = self.ctx.calendar.add(now, limits.receive);
        // An onward transfer keeps the time the case already runs on.
        let complete_by = match parent {
            Some(p) => p.complete_by,
            None => self.ctx.calendar.add(now, limits.handle),
        };
        let parent_role = parent.map_or(HandlingRole::Lead, |p| p.role);
        let first_id = case.assignments().len() as u32 + 1;
        let assignments = targets
            .iter()
            .enumerate()
            .map(|(i, unit)| NewAssignment {
                assignment_id: first_id + i as u32,
                unit_id: (*unit).clone(),
                role: if i == 0 && parent_role == HandlingRole::Lead {
                    HandlingRole::Lead
                } else {
                    HandlingRole::Co
                },
                receive_by,
                complete_by,
            })
            .collect();
        Ok(vec![self.event(EventBody::Transferred {
            transfer_id: case.transfers().len() as u32 + 1,
            parent_assignment_id: parent.map(|p| p.id),
            assignments,
            note,
        })])
    }

    /// Live assignments below `id` (transferred on from it, at any depth).
    fn live_descendants(&self, id: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut frontier = vec![id];
        while let Some(parent) = frontier.pop() {
            for a in self.case.assignments() {
                if a.parent_id == Some(parent) && a.is_live() {
                    out.push(a.id);
                    frontier.push(a.id);
                }
            }
        }
        out
    }

    fn recall(&self, reason: &str) -> Result<Vec<Event>, CaseError> {
        self.require_role(TRANSFERRERS)?;
        self.require_open()?;
        let me = &self.actor().unit_id;
        let transfer = self
            .case
            .transfers()
            .iter()
            .rev()
            .find(|t| {
                &t.from_unit_id == me
                    && self
                        .case
                        .assignments()
                        .iter()
                        .any(|a| a.transfer_id == t.id && a.is_open())
            })
            .ok_or_else(|| match self.transferrer_for_actor() {
                // Rule 5: only the unit that made a transfer recalls it.
                Some(from) => self.other_unit_decides(from),
                None => CaseError::NothingToRecall,
            })?;
        let mut ids = Vec::new();
        for a in self.case.assignments() {
            if a.transfer_id != transfer.id || !a.is_live() {
                continue;
            }
            // Rule 5: only while the next node has neither transferred on nor handled.
            if a.handled || a.state == AssignmentState::Completed || self.case.transferred_on(a.id)
            {
                return Err(CaseError::TooLateToRecall);
            }
            ids.push(a.id);
        }
        Ok(vec![self.event(EventBody::Recalled {
            transfer_id: transfer.id,
            assignment_ids: ids,
            reason: text("reason", reason, limits::NOTE)?,
        })])
    }

    fn request_return(&self, reason: &str) -> Result<Vec<Event>, CaseError> {
        self.require_role(HANDLERS)?;
        self.require_open()?;
        let a = self.own_assignment()?;
        if a.return_request.is_some() {
            return Err(CaseError::ReturnPending);
        }
        if let Some(received_at) = a.received_at {
            // Rule 10: within the limit after receipt (Shandong: 2 working days).
            let limit = self
                .ctx
                .calendar
                .add(received_at, self.ctx.policy.return_request_limit());
            if self.ctx.now > limit.at {
                return Err(CaseError::ReturnWindowClosed);
            }
        }
        Ok(vec![self.event(EventBody::ReturnRequested {
            assignment_id: a.id,
            reason: text("reason", reason, limits::NOTE)?,
        })])
    }

    fn decide_return(&self, accept: bool, note: &str) -> Result<Vec<Event>, CaseError> {
        self.require_role(TRANSFERRERS)?;
        self.require_open()?;
        let me = &self.actor().unit_id;
        let a =
            self.case
                .assignments()
                .iter()
                .find(|a| &a.from_unit_id == me && a.is_open() && a.return_request.is_some())
                .ok_or_else(|| {
                    // Rule 5: the transferrer decides; name it when a request waits for it.
                    let waiting = self.case.assignments().iter().rev().find(|a| {
                        &a.from_unit_id != me && a.is_open() && a.return_request.is_some()
                    });
                    match waiting {
                        Some(a) => self.other_unit_decides(&a.from_unit_id),
                        None => CaseError::NoReturnRequest,
                    }
                })?;
        let note = if accept {
            optional_text("note", note, limits::NOTE)?
        } else {
            // Overruling an objection needs its reasons.
            text("note", note, limits::NOTE)?
        };
        let mut events = vec![self.event(EventBody::ReturnDecided {
            assignment_id: a.id,
            accepted: accept,
            note: note.clone(),
        })];
        if accept {
            // A lead's return takes the whole transfer back: a joint case never lacks its lead.
            let roots: Vec<u32> = if a.role == HandlingRole::Lead {
                self.case
                    .assignments()
                    .iter()
                    .filter(|x| x.transfer_id == a.transfer_id && x.is_open())
                    .map(|x| x.id)
                    .collect()
            } else {
                vec![a.id]
            };
            let mut ids = Vec::new();
            for id in roots {
                ids.push(id);
                ids.extend(self.live_descendants(id));
            }
            events.push(self.event(EventBody::Recalled {
                transfer_id: a.transfer_id,
                assignment_ids: ids,
                reason: format!(
                    "退回申请已同意：{}",
                    a.return_request.as_ref().map_or("", |r| r.reason.as_str())
                ),
            }));
        }
        Ok(events)
    }

    /// The open assignment the actor's unit holds now.
    fn own_assignment(&self) -> Result<&crate::case::Assignment, CaseError> {
        let me = &self.actor().unit_id;
        if let Some(a) = self.case.holding_assignment_of(me) {
            return Ok(a);
        }
        if self
            .case
            .assignments()
            .iter()
            .any(|a| &a.unit_id == me && a.is_open())
        {
            return Err(CaseError::AlreadyTransferred);
        }
        Err(CaseError::UnitNotAllowed(me.clone()))
    }

    fn own_received_assignment(&self) -> Result<&crate::case::Assignment, CaseError> {
        let a = self.own_assignment()?;
        if a.state != AssignmentState::Received {
            return Err(CaseError::NotReceived);
        }
        Ok(a)
    }

    fn complete(&self, reply: &str) -> Result<Vec<Event>, CaseError> {
        self.require_role(HANDLERS)?;
        self.require_open()?;
        let a = self.own_received_assignment()?;
        if a.role == HandlingRole::Lead
            && self
                .case
                .holders()
                .any(|other| other.role == HandlingRole::Co && other.id != a.id)
        {
            return Err(CaseError::CoHandlersPending);
        }
        Ok(vec![self.event(EventBody::Completed {
            assignment_id: a.id,
            reply: text("reply", reply, limits::NOTE)?,
        })])
    }

    fn request_extension(&self, working_days: u32, reason: &str) -> Result<Vec<Event>, CaseError> {
        self.require_role(HANDLERS)?;
        self.require_open()?;
        let a = self.own_received_assignment()?;
        if a.extension_request.is_some() {
            return Err(CaseError::ExtensionPending);
        }
        let max = self.ctx.policy.extension_max_days();
        if working_days == 0 {
            return Err(CaseError::Missing("working_days"));
        }
        if a.extended_days.saturating_add(working_days) > max {
            return Err(CaseError::ExtensionTooLong(max));
        }
        Ok(vec![self.event(EventBody::ExtensionRequested {
            assignment_id: a.id,
            working_days,
            reason: text("reason", reason, limits::NOTE)?,
        })])
    }

    fn decide_extension(&self, approve: bool, note: &str) -> Result<Vec<Event>, CaseError> {
        self.require_role(TRANSFERRERS)?;
        self.require_open()?;
        let me = &self.actor().unit_id;
        let a = self
            .case
            .assignments()
            .iter()
            .find(|a| &a.from_unit_id == me && a.is_open() && a.extension_request.is_some())
            .ok_or_else(|| {
                // The transferrer decides; name it when a request waits for it.
                let waiting = self.case.assignments().iter().rev().find(|a| {
                    &a.from_unit_id != me && a.is_open() && a.extension_request.is_some()
                });
                match waiting {
                    Some(a) => self.other_unit_decides(&a.from_unit_id),
                    None => CaseError::NoExtensionRequest,
                }
            })?;
        let complete_by = match (&a.extension_request, approve) {
            (Some(req), true) => {
                let mut deadline = self
                    .ctx
                    .calendar
                    .add_working_days(a.complete_by.at, req.working_days);
                deadline.provisional |= a.complete_by.provisional;
                Some(deadline)
            }
            _ => None,
        };
        Ok(vec![self.event(EventBody::ExtensionDecided {
            assignment_id: a.id,
            approved: approve,
            note: optional_text("note", note, limits::NOTE)?,
            complete_by,
        })])
    }

    fn last_callback_unsatisfied(&self) -> bool {
        self.case
            .last_callback()
            .is_some_and(|c| c.satisfaction == Satisfaction::Unsatisfied || !c.resolved)
    }

    fn reopen(&self, reason: &str) -> Result<Vec<Event>, CaseError> {
        self.require_role(CENTRE_STAFF)?;
        self.require_live()?;
        self.at_accepting_centre()?;
        if self.case.stage() != Stage::CalledBack || !self.last_callback_unsatisfied() {
            return Err(CaseError::NotUnsatisfied);
        }
        let lead = self.case.completing_lead().ok_or(CaseError::NotOpen)?;
        let complete_by = self.ctx.calendar.add(self.ctx.now, self.ctx.policy.redo());
        Ok(vec![self.event(EventBody::Reopened {
            assignment_id: lead.id,
            reason: text("reason", reason, limits::NOTE)?,
            complete_by,
        })])
    }

    /// 到期预警: the efficiency office's system actor warns once per deadline that falls due
    /// within the window; the flow does not change.
    fn warn_deadline(
        &self,
        assignment_id: u32,
        deadline: DeadlineKind,
        within: WorkingTime,
    ) -> Result<Vec<Event>, CaseError> {
        self.require_role(&[Role::Supervisor])?;
        self.require_open()?;
        let a = self
            .case
            .assignment(assignment_id)
            .filter(|a| a.is_open())
            .ok_or(CaseError::NotDueSoon)?;
        let due_at = a.running_deadline(deadline).ok_or(CaseError::NotDueSoon)?;
        let now = self.ctx.now;
        let window_end = self.ctx.calendar.add(now, within).at;
        if due_at < now || due_at > window_end {
            return Err(CaseError::NotDueSoon);
        }
        if a.warnings.contains(&(deadline, due_at)) {
            return Err(CaseError::AlreadyWarned);
        }
        Ok(vec![self.event(EventBody::DeadlineWarned {
            assignment_id,
            deadline,
            due_at,
        })])
    }

    /// 机构调整移交: only an administrator of the city centre (the system closing a unit)
    /// hands a closed unit's open part of a case to its successor, an open unit that does
    /// not hold the case already.
    fn hand_over(&self, from: &UnitId, to: &UnitId) -> Result<Vec<Event>, CaseError> {
        self.require_role(&[Role::Admin])?;
        if !self.actor().at_city_centre(self.ctx.org) {
            return Err(CaseError::UnitNotAllowed(self.actor().unit_id.clone()));
        }
        self.require_live()?;
        if self.ctx.org.get(to).is_none() {
            return Err(CaseError::UnknownUnit(to.clone()));
        }
        // What it holds: an open assignment (handled there or transferred on from there).
        let part = self
            .case
            .assignments()
            .iter()
            .any(|a| a.is_open() && (&a.unit_id == from || &a.from_unit_id == from));
        if !part {
            return Err(CaseError::NotOpen);
        }
        if self.case.holders().any(|a| &a.unit_id == to) {
            return Err(CaseError::DuplicateTarget(to.clone()));
        }
        Ok(vec![self.event(EventBody::HandedOver {
            from_unit_id: from.clone(),
            to_unit_id: to.clone(),
        })])
    }

    fn annotate(&self, body: &str) -> Result<Vec<Event>, CaseError> {
        self.require_role(&[Role::Leader])?;
        self.require_submitted()?;
        // Rule 6: only city and district leaders.
        let level = self.ctx.org.get(&self.actor().unit_id).map(|u| u.level);
        if !matches!(level, Some(Level::City | Level::District)) {
            return Err(CaseError::UnitNotAllowed(self.actor().unit_id.clone()));
        }
        let overseen = self
            .case
            .assignments()
            .iter()
            .any(|a| self.actor().oversees_unit(self.ctx.org, &a.unit_id));
        if !overseen {
            return Err(CaseError::NotOverseen);
        }
        Ok(vec![self.event(EventBody::Annotated {
            text: text("text", body, limits::NOTE)?,
        })])
    }

    fn merge(&self, master: &MasterInfo) -> Result<Vec<Event>, CaseError> {
        self.require_role(CENTRE_STAFF)?;
        self.require_open()?;
        self.at_accepting_centre()?;
        if self.case.id() == Some(&master.id) {
            return Err(CaseError::MergeIntoSelf);
        }
        let master_ok = matches!(
            master.stage,
            Stage::Open | Stage::Completed | Stage::CalledBack
        ) && !master.merged;
        if !master_ok {
            return Err(CaseError::InvalidMaster(master.id.to_string()));
        }
        let cancelled = self
            .case
            .assignments()
            .iter()
            .filter(|a| a.is_open())
            .map(|a| a.id)
            .collect();
        Ok(vec![self.event(EventBody::Merged {
            master_id: master.id.clone(),
            cancelled_assignment_ids: cancelled,
        })])
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
