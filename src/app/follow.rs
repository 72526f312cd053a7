//! What other writers change under this instance: several instances sharing one store each
//! hold the directory, the rules and the merge index in memory, and each follows the log for
//! the changes the others record.
//!
//! - a change of the `directory` stream: the snapshot folds the new events, and the accounts
//!   take their names, roles, units and disabling (a disabled or reset account's sessions here
//!   end). An account created or reset on another instance first gets a password here no one
//!   knows; the hash set there follows as an `accounts` fact.
//! - a change of the `rules` stream: the rules are read again and put in force, and the new
//!   catalogue's segmenter is built before a request needs it.
//! - a `merged` event: the duplicate is indexed under its master, so archiving the master on
//!   this instance closes it.
//! - an `accounts` fact (`app::accounts`): a password set, a session opened or ended
//!   elsewhere is taken here.
//!
//! Each step is idempotent (by stream version, by the index's set), so what this instance
//! wrote itself, and has applied already, passes through unchanged.

use std::sync::Arc;
use std::time::Duration;

use crate::directory_log::{self, Recorded};
use crate::rules_log;
use crate::store::stream::{ACCOUNTS, DIRECTORY, StreamName};
use crate::store::{Position, RecordedEvent, Subscription};

use super::App;
use super::accounts::AccountFact;
use super::codec::decode;

/// Events taken from the subscription at once.
const BATCH: usize = 512;

/// How long a failed read waits before the next try.
const RETRY: Duration = Duration::from_secs(1);

impl App {
    /// Follows the log from `after` (the head when the snapshots were loaded) in a task of its
    /// own, until it is aborted.
    pub fn follow_other_writers(self: Arc<Self>, after: Position) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut subscription: Subscription = self.store.subscribe(after);
            loop {
                match subscription.next_batch(BATCH).await {
                    Ok(batch) => self.apply_others(&batch).await,
                    Err(err) => {
                        tracing::warn!(error = %err, "could not follow the log for other instances' changes");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        })
    }

    async fn apply_others(&self, batch: &[RecordedEvent]) {
        // In the log's order: an account's password comes after the directory change that
        // made the account.
        for rec in batch {
            if rec.stream == DIRECTORY {
                if rec.version > self.orgs.current().version
                    && let Err(err) = self.catch_up_directory().await
                {
                    tracing::warn!(error = %format!("{err:#}"), "could not take another instance's directory change");
                }
            } else if rec.stream == rules_log::STREAM {
                if rec.version > self.rules.current().stream_version
                    && let Err(err) = self.catch_up_rules().await
                {
                    tracing::warn!(error = %format!("{err:#}"), "could not take another instance's rules change");
                }
            } else if rec.stream == ACCOUNTS {
                match AccountFact::decode(rec) {
                    Ok(fact) => self.adopt(fact),
                    Err(err) => {
                        tracing::warn!(error = %err, "an account fact in the log cannot be read")
                    }
                }
            } else if rec.event_type == "merged"
                && let Some(dup) = StreamName::case_id(&rec.stream)
            {
                match decode(rec) {
                    Ok(event) => {
                        if let domain::EventBody::Merged { master_id, .. } = event.body {
                            self.index_duplicate(master_id, dup);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, stream = %rec.stream, "a merge in the log cannot be read")
                    }
                }
            }
        }
        if let Some(last) = batch.last() {
            self.followed.send_if_modified(|at| {
                let moved = last.position > *at;
                if moved {
                    *at = last.position;
                }
                moved
            });
        }
    }

    /// Folds what the `directory` stream holds past the snapshot in force.
    async fn catch_up_directory(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.directory_writes.lock().await;
        let before = self.orgs.current();
        let recorded: Vec<Recorded> = self
            .store
            .read_stream(DIRECTORY, before.version + 1)
            .await?
            .iter()
            .map(directory_log::decode)
            .collect::<Result<_, _>>()?;
        if recorded.is_empty() {
            return Ok(());
        }
        let after = before.and(&recorded)?;
        let reset: Vec<String> = recorded
            .iter()
            .filter_map(|r| match &r.event {
                domain::directory::DirectoryEvent::PasswordReset { username } => {
                    Some(username.clone())
                }
                _ => None,
            })
            .collect();
        self.orgs.replace(after);
        let snapshot = self.orgs.current();
        // The one-time password was handed out where the account was made or reset.
        let unknown = crate::directory::temporary_password()?;
        self.directory.sync(&snapshot.directory, &unknown, &reset)?;
        tracing::info!(
            from = before.version,
            to = snapshot.version,
            "took another instance's directory change"
        );
        Ok(())
    }

    /// Reads the rules again and puts them in force when they moved on.
    async fn catch_up_rules(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.rules_writes.lock().await;
        let snapshot = rules_log::load(&*self.store).await?;
        if snapshot.stream_version <= self.rules.current().stream_version {
            return Ok(());
        }
        let to = snapshot.stream_version;
        let catalogue = Arc::clone(snapshot.rules.current().catalogue());
        self.rules.replace(snapshot);
        tokio::task::spawn_blocking(move || crate::dispatch::dispatch()?.reader_for(&catalogue))
            .await??;
        tracing::info!(to, "took another instance's rules change");
        Ok(())
    }
}
