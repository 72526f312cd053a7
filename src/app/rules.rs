//! Changes to the rules (the working calendar, office hours, the deadline policy): decided by
//! `domain::rules` on the rules in force, appended to the `rules` stream, in force from the
//! moment they are recorded.

use chrono::{DateTime, Utc};
use domain::org::OrgTree;
use domain::roles::Actor;
use domain::rules::{Rules, RulesCommand, RulesError, RulesEvent, decide, evolve};
use uuid::Uuid;

use super::App;
use super::codec::DecodeError;
use super::envelope::{self, Decoded};
use super::pipeline::{Aggregate, Request};
use crate::rules_log::{self, RulesSnapshot, STREAM};
use crate::store::stream::StreamName;
use crate::store::{NewEvent, Position, RecordedEvent, StoreError};

/// Why a change of the rules did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RulesChangeError {
    /// A rule refused it; nothing was appended.
    #[error(transparent)]
    Refused(#[from] RulesError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change made.
#[derive(Debug, Clone, Copy)]
pub struct RulesChange {
    /// The rules' version now in force.
    pub version: u32,
    /// The `rules` stream's version.
    pub stream_version: u64,
    /// The position of the change in the log.
    pub position: Position,
}

/// What a change of the rules is decided with: who asks, the tree (their scope), and when it
/// is recorded (the moment it takes effect).
pub struct RulesContext<'a> {
    /// Who asks.
    pub actor: &'a Actor,
    /// The tree in force.
    pub org: &'a OrgTree,
    /// When it is recorded.
    pub at: DateTime<Utc>,
}

/// The rules (规则) in the command pipeline: the one stream `rules`, decided by
/// `domain::rules`, each event stamped with who recorded it and when (it is in force from
/// then).
impl Aggregate for Rules {
    type Id = ();
    type Command = RulesCommand;
    type Event = Decoded<RulesEvent>;
    type Error = RulesError;
    type Context<'a> = RulesContext<'a>;

    fn stream((): &()) -> StreamName {
        StreamName::Rules
    }

    fn decide(
        &self,
        command: &RulesCommand,
        ctx: &RulesContext<'_>,
    ) -> Result<Vec<Decoded<RulesEvent>>, RulesError> {
        Ok(decide(self, ctx.actor, ctx.org, command)?
            .into_iter()
            .map(|event| Decoded {
                event,
                actor: ctx.actor.username.clone(),
                at: ctx.at,
            })
            .collect())
    }

    fn evolve(self, event: &Decoded<RulesEvent>) -> Self {
        evolve(self, &event.event, event.at)
    }

    fn encode(event: &Decoded<RulesEvent>, event_id: Uuid, request: Option<&str>) -> NewEvent {
        envelope::identified(
            rules_log::encode(&event.event, &event.actor, event.at),
            event_id,
            request,
        )
    }

    fn decode(record: &RecordedEvent) -> Result<Decoded<RulesEvent>, DecodeError> {
        let recorded = rules_log::decode(record)?;
        Ok(Decoded {
            event: recorded.event,
            actor: recorded.actor,
            at: recorded.at,
        })
    }
}

impl App {
    /// Decides `command` by `actor` on the rules in force and records it; the new version is
    /// in force from now on (deadlines computed before keep what they recorded).
    ///
    /// # Errors
    /// [`RulesChangeError::Refused`] with the rule broken; store failures.
    pub async fn change_rules(
        &self,
        actor: &Actor,
        command: &RulesCommand,
    ) -> Result<RulesChange, RulesChangeError> {
        let _one_at_a_time = self.rules_writes.lock().await;
        let org = self.org();
        let ctx = RulesContext {
            actor,
            org: &org,
            at: self.now(),
        };
        let request = Request {
            id: &(),
            command,
            if_match: None,
            retry: None,
        };
        let written = match self.rules_log.run(request, &ctx).await {
            Ok(written) => written,
            Err(err) => return Err(err.refusal_or_store(STREAM)?.into()),
        };
        let rules = (*written.state).clone();
        let version = rules.current().version();
        self.rules.replace(RulesSnapshot {
            stream_version: written.version,
            rules,
        });
        Ok(RulesChange {
            version,
            stream_version: written.version,
            position: written.position,
        })
    }
}
