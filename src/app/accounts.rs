//! What instances sharing a store tell each other of accounts: each keeps passwords and
//! sessions in its data directory (`users.json`, `sessions.db`), and on a shared store it also
//! records, in the `accounts` stream, the passwords it sets and the sessions it opens and
//! ends, so a user signed in on one instance is signed in on all, and a password set on one
//! works on all. A store one process owns gets none of these events.
//!
//! Only digests of tokens and argon2id hashes of passwords are recorded, as on disk.
//!
//! The lock-out against password guessing (`access`) also counts across instances: a failed
//! sign-in of a known account, a successful one after failures and an administrator's unlock
//! are facts here, which every other instance's guard takes in (an instance skips its own).
//! Unknown names and client addresses stay per instance: recording them would let anyone
//! fill the log with made-up names.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::stream::ACCOUNTS;
use crate::store::{ExpectedVersion, NewEvent, RecordedEvent, StoreError};

use super::App;

/// One fact of the `accounts` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccountFact {
    /// A password was set (changed, handed out, reset): its hash.
    PasswordSet {
        /// Whose.
        username: String,
        /// Argon2id PHC string.
        password_hash: String,
        /// Must be changed at the next sign-in.
        must_change: bool,
    },
    /// A session was opened.
    SessionOpened {
        /// The token's digest.
        digest: String,
        /// Whose.
        username: String,
        /// Expiry, Unix seconds.
        expires: i64,
    },
    /// A session was signed out.
    SessionEnded {
        /// The token's digest.
        digest: String,
    },
    /// Every session of a user but one ended (a password change).
    SessionsEnded {
        /// Whose.
        username: String,
        /// The digest of the session kept.
        keep: Option<String>,
    },
    /// A sign-in of a known account failed (wrong password).
    LoginFailed {
        /// Whose.
        username: String,
        /// When, Unix microseconds.
        at: i64,
        /// The instance it failed on ([`App::instance`]).
        instance: Uuid,
    },
    /// A sign-in with the right password after failures: they are forgiven.
    LoginSucceeded {
        /// Whose.
        username: String,
        /// The instance ([`App::instance`]).
        instance: Uuid,
    },
    /// An administrator lifted the account's lock.
    LoginUnlocked {
        /// Whose.
        username: String,
        /// The instance ([`App::instance`]).
        instance: Uuid,
    },
}

impl AccountFact {
    fn type_name(&self) -> &'static str {
        match self {
            AccountFact::PasswordSet { .. } => "password_set",
            AccountFact::SessionOpened { .. } => "session_opened",
            AccountFact::SessionEnded { .. } => "session_ended",
            AccountFact::SessionsEnded { .. } => "sessions_ended",
            AccountFact::LoginFailed { .. } => "login_failed",
            AccountFact::LoginSucceeded { .. } => "login_succeeded",
            AccountFact::LoginUnlocked { .. } => "login_unlocked",
        }
    }

    fn encode(&self) -> Result<NewEvent, StoreError> {
        Ok(NewEvent {
            event_id: Uuid::new_v4(),
            event_type: self.type_name().to_owned(),
            schema_version: 1,
            data: serde_json::to_string(self)
                .map_err(|err| StoreError::Backend(format!("an account fact: {err}").into()))?,
            metadata: "{}".to_owned(),
        })
    }

    /// The fact a recorded event of the `accounts` stream holds.
    ///
    /// # Errors
    /// Data that is no account fact.
    pub fn decode(rec: &RecordedEvent) -> Result<Self, serde_json::Error> {
        serde_json::from_str(&rec.data)
    }
}

impl App {
    /// Records `facts` for the other instances, when the store is shared.
    ///
    /// # Errors
    /// The store failed (the caller undoes what it did here, or reports it).
    pub async fn share(&self, facts: Vec<AccountFact>) -> Result<(), StoreError> {
        if facts.is_empty() || !self.store.is_shared() {
            return Ok(());
        }
        let events = facts
            .iter()
            .map(AccountFact::encode)
            .collect::<Result<Vec<_>, _>>()?;
        self.store
            .append(ACCOUNTS, ExpectedVersion::Any, events)
            .await?;
        Ok(())
    }

    /// The fact of the session `token` opened here.
    pub fn session_fact(&self, token: &str) -> Option<AccountFact> {
        let digest = crate::directory::digest(token);
        let (username, expires) = self.directory.session_by_digest(&digest)?;
        Some(AccountFact::SessionOpened {
            digest,
            username,
            expires,
        })
    }

    /// The fact of `username`'s password as this instance holds it.
    pub fn password_fact(&self, username: &str) -> Option<AccountFact> {
        let user = self.directory.user(username)?;
        Some(AccountFact::PasswordSet {
            username: user.username.clone(),
            password_hash: user.password_hash.clone(),
            must_change: user.must_change_password,
        })
    }

    /// Shares that `token` was signed out here (a failure is logged: the session has ended
    /// here, and ends elsewhere at its expiry).
    pub async fn share_logout(&self, token: &str) {
        let fact = AccountFact::SessionEnded {
            digest: crate::directory::digest(token),
        };
        if let Err(err) = self.share(vec![fact]).await {
            tracing::warn!(error = %err, "could not tell the other instances of a sign-out");
        }
    }

    /// Takes a fact another instance (or this one) recorded; idempotent (a sign-in's fact
    /// recorded here is skipped: the guard here counted it already).
    pub(super) fn adopt(&self, fact: AccountFact) {
        if let AccountFact::LoginFailed { instance, .. }
        | AccountFact::LoginSucceeded { instance, .. }
        | AccountFact::LoginUnlocked { instance, .. } = &fact
        {
            if *instance != self.instance
                && let Some(guard) = self.login_guard.get().and_then(std::sync::Weak::upgrade)
            {
                guard.take_fact(&fact);
            }
            return;
        }
        let res = match fact {
            AccountFact::PasswordSet {
                username,
                password_hash,
                must_change,
            } => self
                .directory
                .adopt_password(&username, &password_hash, must_change),
            AccountFact::SessionOpened {
                digest,
                username,
                expires,
            } => self.directory.adopt_session(&digest, &username, expires),
            AccountFact::SessionEnded { digest } => {
                self.directory.drop_session(&digest);
                Ok(())
            }
            AccountFact::SessionsEnded { username, keep } => {
                self.directory.end_sessions_but(&username, keep.as_deref());
                Ok(())
            }
            // Taken above.
            AccountFact::LoginFailed { .. }
            | AccountFact::LoginSucceeded { .. }
            | AccountFact::LoginUnlocked { .. } => Ok(()),
        };
        if let Err(err) = res {
            tracing::warn!(error = %format!("{err:#}"), "could not take an account fact of another instance");
        }
    }

    /// Waits (a bounded time) until this instance has taken in everything written to the
    /// store so far: a token unknown here may be a session just opened on another instance.
    /// Returns at once on a store one process owns.
    pub async fn caught_up_with_others(&self) {
        if !self.store.is_shared() {
            return;
        }
        let Ok(written) = self.store.last_written().await else {
            return;
        };
        let mut followed = self.followed.subscribe();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            followed.wait_for(|at| *at >= written),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_read_back_as_written() {
        for fact in [
            AccountFact::PasswordSet {
                username: "operator".into(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                must_change: true,
            },
            AccountFact::SessionOpened {
                digest: "0f3a".into(),
                username: "operator".into(),
                expires: 1_800_000_000,
            },
            AccountFact::SessionEnded {
                digest: "0f3a".into(),
            },
            AccountFact::SessionsEnded {
                username: "operator".into(),
                keep: Some("0f3a".into()),
            },
            AccountFact::LoginFailed {
                username: "operator".into(),
                at: 1_800_000_000_000_000,
                instance: Uuid::new_v4(),
            },
            AccountFact::LoginSucceeded {
                username: "operator".into(),
                instance: Uuid::new_v4(),
            },
            AccountFact::LoginUnlocked {
                username: "operator".into(),
                instance: Uuid::new_v4(),
            },
        ] {
            let new = fact.encode().unwrap();
            assert_eq!(new.event_type, fact.type_name());
            let rec = RecordedEvent {
                position: crate::store::Position(1),
                stream: ACCOUNTS.into(),
                version: 1,
                event_id: new.event_id,
                event_type: new.event_type,
                schema_version: 1,
                data: new.data,
                metadata: new.metadata,
                recorded_at: chrono::Utc::now(),
            };
            assert_eq!(AccountFact::decode(&rec).unwrap(), fact);
        }
    }
}
