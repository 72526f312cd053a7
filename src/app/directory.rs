//! Changes to the directory (机构与人员): decided by `domain::directory` on the snapshot in
//! force, appended to the `directory` stream, then put in force for every reader and the
//! accounts brought in line.

use std::sync::Arc;

use domain::directory::{DirectoryCommand, DirectoryError, DirectoryEvent, decide, evolve};
use domain::org::UnitId;
use domain::roles::Actor;

use super::App;
use crate::directory_log::{self, OrgSnapshot, Recorded, SnapshotError};
use crate::store::stream::DIRECTORY;
use crate::store::{ExpectedVersion, StoreError};

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
        let mut directory = before.directory.clone();
        let mut events: Vec<DirectoryEvent> = Vec::new();
        for (index, command) in commands.iter().enumerate() {
            let decided = decide(&directory, actor, open_cases, command)
                .map_err(|error| DirectoryChangeError::Refused { index, error })?;
            for event in decided {
                directory = evolve(directory, &event);
                events.push(event);
            }
        }
        if events.is_empty() {
            return Err(DirectoryChangeError::Empty);
        }
        let at = self.now();
        let new: Vec<_> = events
            .iter()
            .map(|event| directory_log::encode(event, &actor.username, at))
            .collect();
        self.store
            .append(DIRECTORY, ExpectedVersion::Exact(before.version), new)
            .await?;
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
        self.directory
            .sync(&snapshot.directory, initial_password, &reset)
            .map_err(DirectoryChangeError::Accounts)?;
        Ok(DirectoryChange {
            snapshot,
            events: recorded,
        })
    }
}
