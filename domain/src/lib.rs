//! Minqing domain: the rules of a 12345 hotline's case flow, as pure functions.
//!
//! A citizen's request is a [`Case`] (工单) whose history is a list of [`Event`]s.
//! [`decide`] checks a [`Command`] against the case and the [`Context`] (time, actor, org tree,
//! working calendar, deadline policy) and returns new events or the [`CaseError`] naming the
//! broken rule; [`evolve`] applies an event and never fails.
//!
//! # Layout
//! - [`kinds`]: category (诉求类别), kind (五件制), urgency, channel.
//! - [`org`]: the six-level tree (六级联动) of places and units.
//! - [`roles`]: roles and the acting user.
//! - [`calendar`]: the working calendar (holidays, 调休, office hours) and deadline policy.
//! - [`rules`]: the calendar and the policy as versioned data (规则版本), changed by
//!   commands and events while the service runs.
//! - [`case`]: the aggregate's state, statuses and `evolve`.
//! - [`command`], [`event`], [`error`]: what is asked, what happened, why it was refused.
//! - [`decide`](mod@decide): the rules.
//! - [`actions`]: the verbs an actor may perform on a case now, asked of `decide`.
//! - [`routing`]: the routing suggestion from the dispatch catalogue (派单目录), alone or
//!   weighed with the similar cases of [`learned`].
//! - [`learned`]: 相似工单, a naive Bayes model learned from labelled requests.
//! - [`identity`]: phone validation, masking and who may see a caller's identity.
//! - [`time`]: fast reading of the timestamps the store writes.
//! - [`login_guard`]: the rules against password guessing (failures, delays, locks).
//! - [`text`]: the characters no text field may hold (controls, bidi overrides).
//!
//! # Invariants
//! - No IO, no async, no clock reads, no randomness: everything arrives in the command or
//!   the context, so every rule is a plain function with a test.
//! - Deadlines are computed when a command happens and recorded in its event.
//! - A case never has two lead holders; an archived case accepts nothing but annotations and
//!   supervision.
//!
//! # Glossary
//! 工单 `Case` · 受理 `Accepted` · 即办 `AnsweredOnCall` · 转办 `Transferred` · 联办 joint
//! case (主办 `Lead`, 协办 `Co`) · 追回 `Recalled` · 退回申请 `ReturnRequested` · 接收
//! `Received` · 办理 `ProgressRecorded` · 办结 `Completed` · 延期 `ExtensionRequested` /
//! `ExtensionDecided` · 回访 `CalledBack` · 重办 `Reopened` · 督办 `Supervised` · 批示
//! `Annotated` · 归档 `Archived` · 并单 `Merged` · 申诉 `Appealed` · 到期预警 `DeadlineWarned`.
#![warn(missing_docs)]

pub mod actions;
pub mod calendar;
pub mod case;
pub mod command;
pub mod decide;
pub mod directory;
pub mod error;
pub mod event;
pub mod identity;
pub mod kinds;
pub mod learned;
pub mod login_guard;
pub mod org;
pub mod password;
pub mod roles;
pub mod routing;
pub mod rules;
pub mod text;
pub mod time;

#[cfg(test)]
pub(crate) mod testing;

pub use case::{Case, CaseId, Intake, Satisfaction, Stage, Status, evolve, replay};
pub use command::{AnswerSource, ArticleFacts, CitedArticle, Command, MasterInfo};
pub use decide::{Context, decide};
pub use error::CaseError;
pub use event::{Event, EventBody};
