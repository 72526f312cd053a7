//! Changes to the directory (机构与人员): decided by `domain::directory` on the snapshot in
//! force, appended to the `directory` stream, then put in force for every reader and the
//! accounts brought in line.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::directory::{
    Directory, DirectoryCommand, DirectoryError, DirectoryEvent, decide, evolve,
};
use domain::org::UnitId;
use domain::roles::Actor;
use uuid::Uuid;

use super::App;
use super::codec::DecodeError;
use super::envelope::{self, Decoded};
use super::pipeline::{Aggregate, Request};
use crate::directory_log::{self, OrgSnapshot, Recorded, SnapshotError};
use crate::store::stream::{DIRECTORY, StreamName};
use crate::store::{NewEvent, RecordedEvent, StoreError};

/// Why a directory change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryChangeError {
    /// A rule refused command number `index` (0-based); nothing was appended.
    #[error("command {index}: {error}")]
    Refused {
        /// Which of the commands.
        index: usize,
        /// The rule.
        error: DirectoryError,
        /// Its message with the units named by name.
        title: String,
    },
    /// Nothing to do: no commands, or none that changes anything.
    #[error("no change")]
    Empty,
    /// The store failed, or the recorded directory is unusable.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The accounts could not be written (the events are recorded; the next start brings
    /// the accounts in line).
    #[error("accounts: {0}")]
    Accounts(anyhow::Error),
}

impl From<StoreError> for DirectoryChangeError {
    fn from(err: StoreError) -> Self {
        DirectoryChangeError::Snapshot(SnapshotError::Store(err))
    }
}

/// A change made: the snapshot now in force and the events it recorded.
#[derive(Debug)]
pub struct DirectoryChange {
    /// The directory after the change.
    pub snapshot: Arc<OrgSnapshot>,
    /// What was recorded, in order.
    pub events: Vec<Recorded>,
}

/// What directory changes are decided with.
pub struct DirectoryContext<'a> {
    /// Who asks.
    pub actor: &'a Actor,
    /// The cases a unit holds open (for closing it).
    pub open_cases: &'a (dyn Fn(&UnitId) -> u64 + Sync),
    /// When it is recorded.
    pub at: DateTime<Utc>,
}

/// The directory (机构与人员) in the command pipeline: the one stream `directory`; a command
/// is a batch of changes, each decided by `domain::directory` on the directory as the ones
/// before it left it, recorded in one append (all or none).
impl Aggregate for Directory {
    type Id = ();
    type Command = [DirectoryCommand];
    type Event = Decoded<DirectoryEvent>;
    type Error = DirectoryChangeError;
    type Context<'a> = DirectoryContext<'a>;

    fn stream((): &()) -> StreamName {
        StreamName::Directory
    }

    fn decide(
        &self,
        commands: &[DirectoryCommand],
        ctx: &DirectoryContext<'_>,
    ) -> Result<Vec<Decoded<DirectoryEvent>>, DirectoryChangeError> {
        let mut directory = self.clone();
        let mut events = Vec::new();
        for (index, command) in commands.iter().enumerate() {
            let decided =
                decide(&directory, ctx.actor, ctx.open_cases, command).map_err(|error| {
                    DirectoryChangeError::Refused {
                        index,
                        title: error.message_in(&directory),
                        error,
                    }
                })?;
            for event in decided {
                directory = evolve(directory, &event);
                events.push(Decoded {
                    event,
                    actor: ctx.actor.username.clone(),
                    at: ctx.at,
                });
            }
        }
        if events.is_empty() {
            return Err(DirectoryChangeError::Empty);
        }
        Ok(events)
    }

    fn evolve(self, event: &Decoded<DirectoryEvent>) -> Self {
        evolve(self, &event.event)
    }

    fn encode(event: &Decoded<DirectoryEvent>, event_id: Uuid, request: Option<&str>) -> NewEvent {
        envelope::identified(
            directory_log::encode(&event.event, &event.actor, event.at),
            event_id,
            request,
        )
    }

    fn decode(record: &RecordedEvent) -> Result<Decoded<DirectoryEvent>, DecodeError> {
        let recorded = directory_log::decode(record)?;
        Ok(Decoded {
            event: recorded.event,
            actor: recorded.actor,
            at: recorded.at,
        })
    }
}

impl App {
    /// Decides `commands` by `actor` one after the other (each on the directory as the ones
    /// before it left it) and records them in one append: all or none. `open_cases(unit)`
    /// counts the cases a unit holds open (for closing it). `initial_password` is what new
    /// users (and users whose password is reset) sign in with once.
    ///
    /// # Errors
    /// [`DirectoryChangeError::Refused`] with the first rule broken; store failures.
    pub async fn change_directory(
        &self,
        actor: &Actor,
        commands: &[DirectoryCommand],
        open_cases: &(dyn Fn(&UnitId) -> u64 + Sync),
        initial_password: &str,
    ) -> Result<DirectoryChange, DirectoryChangeError> {
        let _one_at_a_time = self.directory_writes.lock().await;
        let before = self.orgs.current();
        let ctx = DirectoryContext {
            actor,
            open_cases,
            at: self.now(),
        };
        let request = Request {
            id: &(),
            command: commands,
            if_match: None,
            retry: None,
        };
        let written = match self.directory_log.run(request, &ctx).await {
            Ok(written) => written,
            Err(err) => return Err(err.refusal_or_store(DIRECTORY)?),
        };
        let first = written.version + 1 - written.events.len() as u64;
        if first != before.version + 1 {
            // Another writer's changes came between: fold everything from the snapshot on.
            tracing::info!(
                from = before.version,
                to = written.version,
                "the directory moved on behind this process"
            );
        }
        // Read back what was appended: the positions are the store's to give.
        let recorded: Vec<Recorded> = self
            .store
            .read_stream(DIRECTORY, before.version + 1)
            .await?
            .iter()
            .map(|rec| directory_log::decode(rec).map_err(SnapshotError::from))
            .collect::<Result<_, _>>()?;
        let after = before.and(&recorded)?;
        let reset: Vec<String> = recorded
            .iter()
            .filter_map(|r| match &r.event {
                DirectoryEvent::PasswordReset { username } => Some(username.clone()),
                _ => None,
            })
            .collect();
        self.orgs.replace(after);
        let snapshot = self.orgs.current();
        let hashes_before: std::collections::HashMap<String, String> = self
            .directory
            .users()
            .iter()
            .map(|user| (user.username.clone(), user.password_hash.clone()))
            .collect();
        self.directory
            .sync(&snapshot.directory, initial_password, &reset)
            .map_err(DirectoryChangeError::Accounts)?;
        // The one-time passwords handed out here work on the other instances too.
        let handed_out: Vec<_> = self
            .directory
            .users()
            .iter()
            .filter(|user| hashes_before.get(&user.username) != Some(&user.password_hash))
            .filter_map(|user| self.password_fact(&user.username))
            .collect();
        if let Err(err) = self.share(handed_out).await {
            tracing::error!(error = %err, "could not tell the other instances of the passwords handed out");
        }
        Ok(DirectoryChange {
            snapshot,
            events: recorded,
        })
    }
}

impl super::AppState {
    /// [`App::change_directory`] as the edges ask for it: the open cases of a unit being
    /// closed come from the read models (caught up with the log first), and a unit closed
    /// with a successor hands its open cases over to it at once ([`Self::hand_over_cases`]).
    ///
    /// # Errors
    /// As [`App::change_directory`]; 503 when the read models lag.
    pub async fn change_directory_now(
        &self,
        actor: &Actor,
        commands: &[DirectoryCommand],
        initial_password: &str,
    ) -> Result<DirectoryChange, super::failure::Failure> {
        let mut held = std::collections::HashMap::new();
        for command in commands {
            if let DirectoryCommand::CloseUnit { id, .. } = command {
                held.insert(id.clone(), self.case_ids_held(id).await?.len() as u64);
            }
        }
        let open_cases = |unit: &UnitId| held.get(unit).copied().unwrap_or(0);
        let done = self
            .change_directory(actor, commands, &open_cases, initial_password)
            .await?;
        // The read models take the new tree now (a move re-scopes the cases below the moved
        // unit), so what the caller reads next is in line with the change.
        if let Err(err) = self.read.follow_tree().await {
            tracing::warn!(error = %format!("{err:#}"), "the read models did not take the new tree yet; the next batch does");
        }
        for recorded in &done.events {
            if let DirectoryEvent::UnitClosed {
                id,
                successor: Some(successor),
            } = &recorded.event
            {
                self.hand_over_cases(id, successor).await;
            }
        }
        Ok(done)
    }

    /// The cases `unit` has an open part in, on read models caught up with the log.
    async fn case_ids_held(&self, unit: &UnitId) -> Result<Vec<String>, super::failure::Failure> {
        let head = self.store.head().0;
        if !self
            .read
            .wait_for(head, std::time::Duration::from_secs(5))
            .await
        {
            return Err(super::failure::Failure::Unavailable(format!(
                "the read models have not reached position {head} yet"
            )));
        }
        let unit = unit.to_string();
        self.read
            .query(move |q| q.case_ids_held(&unit))
            .await
            .map_err(super::failure::Failure::Internal)
    }

    /// 机构调整移交: hands every open case of the closed unit `from` to `to`, as the system.
    /// A case that fails (a crash, a conflict) is left for the next start, which hands over
    /// what closed units still hold ([`Self::reconcile_closed_units`]). Returns how many
    /// were handed over.
    pub async fn hand_over_cases(&self, from: &UnitId, to: &UnitId) -> usize {
        let ids = match self.case_ids_held(from).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!(unit = %from, error = ?err, "could not list a closed unit's cases; the next start hands them over");
                return 0;
            }
        };
        let system = self.system_actor();
        let mut handed = 0;
        for id in ids {
            let Ok(case_id) = domain::CaseId::parse(&id) else {
                continue;
            };
            let command = domain::Command::HandOver {
                from_unit_id: from.clone(),
                to_unit_id: to.clone(),
            };
            match self.execute(&system, &case_id, command, None, None).await {
                Ok(_) => handed += 1,
                Err(err) => {
                    tracing::warn!(case = %case_id, unit = %from, error = %err, "could not hand a closed unit's case over; the next start retries");
                }
            }
        }
        handed
    }

    /// At start-up: hands over what units closed with a successor still hold (a close whose
    /// follow-up was cut short). Returns how many cases were handed over.
    pub async fn reconcile_closed_units(&self) -> usize {
        let snapshot = self.orgs.current();
        let mut handed = 0;
        for unit in snapshot.directory.units() {
            if let Some(Some(successor)) = snapshot.directory.closed(&unit.id) {
                // A successor closed later hands over to its own successor in turn.
                handed += self.hand_over_cases(&unit.id, successor).await;
            }
        }
        handed
    }
}
