//! Changes to the rules (the working calendar, office hours, the deadline policy): decided by
//! `domain::rules` on the rules in force, appended to the `rules` stream, in force from the
//! moment they are recorded.

use domain::roles::Actor;
use domain::rules::{RulesCommand, RulesError, decide, evolve};

use super::App;
use crate::rules_log::{self, RulesSnapshot, STREAM};
use crate::store::{ExpectedVersion, Position, StoreError};

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
        let before = self.rules.current();
        let events = decide(&before.rules, actor, &self.org(), command)?;
        let at = self.now();
        let new = events
            .iter()
            .map(|event| rules_log::encode(event, &actor.username, at))
            .collect();
        let appended = self
            .store
            .append(STREAM, ExpectedVersion::Exact(before.stream_version), new)
            .await?;
        let mut rules = before.rules.clone();
        for event in &events {
            rules = evolve(rules, event, at);
        }
        let version = rules.current().version();
        self.rules.replace(RulesSnapshot {
            stream_version: appended.version,
            rules,
        });
        Ok(RulesChange {
            version,
            stream_version: appended.version,
            position: appended.position,
        })
    }
}
