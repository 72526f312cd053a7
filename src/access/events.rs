//! The security events (the audit of access) and their writer.
//!
//! Every event goes to the one stream [`STREAM`] (`security`), in the store's envelope as
//! `app::codec` writes case events: a `type`, schema version 1, the body as JSON data, and
//! `{"at": …}` as metadata. Never a password, never the name typed for an unknown user (a
//! password typed into the wrong field would land there).
//!
//! [`SecurityLog::record`] hands an event to a background writer through a bounded queue and
//! returns at once, so a login's answer never waits for the disk (nor tells by its time
//! whether something was written). Failed logins of unknown names are not written one by
//! one: the writer counts them per client address and writes one
//! [`SecurityEvent::UnknownUserLoginsFailed`] per address and minute (at most
//! [`MAX_PENDING_ADDRESSES`] addresses per minute, the rest counted under `*`), so made-up
//! names cannot fill the disk faster than that.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::store::{EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};

/// The stream of the security events.
pub const STREAM: &str = "security";

/// The schema version of the security events.
pub const SCHEMA_VERSION: u32 = 1;

/// Events waiting for the writer; past it new ones are dropped (and counted in the log).
const QUEUE: usize = 4096;

/// Client addresses whose unknown-name failures are counted separately in one minute.
pub const MAX_PENDING_ADDRESSES: usize = 1000;

/// How often the counts of unknown-name failures are written.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What a lock is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// A username.
    Account,
    /// A client address (an IPv6 client by its /64 network).
    Address,
}

/// One security event (the stored contract: a change needs an upcaster and a golden log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SecurityEvent {
    /// A user logged in.
    LoginSucceeded {
        /// Who.
        username: String,
        /// From where.
        address: String,
    },
    /// A wrong password for an existing user.
    LoginFailed {
        /// The account.
        username: String,
        /// From where.
        address: String,
        /// The account's failures within the window, this one included.
        failures: u32,
    },
    /// Failed logins for names that are no user, counted per address.
    UnknownUserLoginsFailed {
        /// From where (`*` for addresses beyond the minute's limit).
        address: String,
        /// How many.
        count: u64,
        /// The first of them.
        #[serde(with = "domain::time::utc")]
        first_at: DateTime<Utc>,
        /// The last of them.
        #[serde(with = "domain::time::utc")]
        last_at: DateTime<Utc>,
    },
    /// Too many failures: an account or an address is locked.
    LoginLocked {
        /// Account or address.
        kind: LockKind,
        /// The username or the address.
        key: String,
        /// Failures within the window.
        failures: u32,
        /// When the lock ends.
        #[serde(with = "domain::time::utc")]
        until: DateTime<Utc>,
    },
    /// An administrator lifted a lock.
    LoginUnlocked {
        /// Account or address.
        kind: LockKind,
        /// The username or the address.
        key: String,
        /// The administrator.
        by: String,
    },
    /// A user logged out.
    LoggedOut {
        /// Who.
        username: String,
    },
    /// A user changed their own password (the workbench's 修改密码).
    PasswordChanged {
        /// Who.
        username: String,
        /// From where.
        address: String,
    },
}

impl SecurityEvent {
    /// The stored type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            SecurityEvent::LoginSucceeded { .. } => "login_succeeded",
            SecurityEvent::LoginFailed { .. } => "login_failed",
            SecurityEvent::UnknownUserLoginsFailed { .. } => "unknown_user_logins_failed",
            SecurityEvent::LoginLocked { .. } => "login_locked",
            SecurityEvent::LoginUnlocked { .. } => "login_unlocked",
            SecurityEvent::LoggedOut { .. } => "logged_out",
            SecurityEvent::PasswordChanged { .. } => "password_changed",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Meta {
    #[serde(with = "domain::time::utc")]
    at: DateTime<Utc>,
}

/// A security event as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSecurityEvent {
    /// Its global position.
    pub position: u64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: SecurityEvent,
}

/// Encodes a security event for the store.
pub fn encode(at: DateTime<Utc>, event: &SecurityEvent) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event.type_name().to_owned(),
        schema_version: SCHEMA_VERSION,
        // Plain data: serialising cannot fail.
        data: serde_json::to_string(event).unwrap_or_default(),
        metadata: serde_json::to_string(&Meta { at }).unwrap_or_default(),
    }
}

/// Decodes a stored security event.
///
/// # Errors
/// When the JSON matches no known shape, or the version is newer than this build's.
pub fn decode(rec: &RecordedEvent) -> anyhow::Result<RecordedSecurityEvent> {
    anyhow::ensure!(
        rec.schema_version <= SCHEMA_VERSION,
        "security event {} has schema version {}, newer than this build ({SCHEMA_VERSION})",
        rec.position.0,
        rec.schema_version
    );
    let event: SecurityEvent = serde_json::from_str(&rec.data).map_err(|e| {
        anyhow::anyhow!(
            "security event {} (`{}`) does not decode: {e}",
            rec.position.0,
            rec.event_type
        )
    })?;
    let at = serde_json::from_str::<Meta>(&rec.metadata).map_or(rec.recorded_at, |m| m.at);
    Ok(RecordedSecurityEvent {
        position: rec.position.0,
        at,
        event,
    })
}

enum Message {
    Event(DateTime<Utc>, SecurityEvent),
    UnknownUserFailed(DateTime<Utc>, String),
    /// Write what is pending now and answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The sending side of the security log (cheap to clone).
#[derive(Clone)]
pub struct SecurityLog {
    tx: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
    store: Arc<dyn EventStore>,
}

/// Unknown-name failures of one address, waiting to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Count {
    count: u64,
    first_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
}

/// Counts of unknown-name failures per address, bounded.
#[derive(Debug, Default)]
struct Summary {
    by_address: BTreeMap<String, Count>,
}

impl Summary {
    fn add(&mut self, at: DateTime<Utc>, address: String) {
        let address = if self.by_address.len() >= MAX_PENDING_ADDRESSES
            && !self.by_address.contains_key(&address)
        {
            "*".to_owned()
        } else {
            address
        };
        self.by_address
            .entry(address)
            .and_modify(|c| {
                c.count += 1;
                c.last_at = at;
            })
            .or_insert(Count {
                count: 1,
                first_at: at,
                last_at: at,
            });
    }

    /// The events to write, emptying the counts.
    fn take(&mut self) -> Vec<(DateTime<Utc>, SecurityEvent)> {
        std::mem::take(&mut self.by_address)
            .into_iter()
            .map(|(address, c)| {
                (
                    c.last_at,
                    SecurityEvent::UnknownUserLoginsFailed {
                        address,
                        count: c.count,
                        first_at: c.first_at,
                        last_at: c.last_at,
                    },
                )
            })
            .collect()
    }
}

impl SecurityLog {
    /// Starts the writer on `store`.
    pub fn start(store: Arc<dyn EventStore>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write(store.clone(), rx));
        (
            SecurityLog {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                store,
            },
            task,
        )
    }

    fn send(&self, message: Message) {
        if self.tx.try_send(message).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(n_dropped = n, "security log queue full: events dropped");
            }
        }
    }

    /// Records an event (in the background).
    pub fn record(&self, at: DateTime<Utc>, event: SecurityEvent) {
        self.send(Message::Event(at, event));
    }

    /// Counts a failed login of an unknown name from `address`.
    pub fn unknown_user_failed(&self, at: DateTime<Utc>, address: &str) {
        self.send(Message::UnknownUserFailed(at, address.to_owned()));
    }

    /// Waits until everything sent so far is written (the counts of unknown names too).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Message::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// One page of the security events, newest first, and how many there are.
    ///
    /// # Errors
    /// Store failures, an event that does not decode.
    pub async fn page(
        &self,
        page: u64,
        per_page: u64,
    ) -> anyhow::Result<(u64, Vec<RecordedSecurityEvent>)> {
        let total = self.store.stream_version(STREAM).await?;
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        if skip >= total {
            return Ok((total, Vec::new()));
        }
        let last = total - skip;
        let first = last.saturating_sub(per_page) + 1;
        let records = self.store.read_stream(STREAM, first).await?;
        let mut out = records
            .iter()
            .filter(|r| r.version <= last)
            .map(decode)
            .collect::<anyhow::Result<Vec<_>>>()?;
        out.reverse();
        Ok((total, out))
    }
}

async fn append(store: &dyn EventStore, events: &[(DateTime<Utc>, SecurityEvent)]) {
    if events.is_empty() {
        return;
    }
    let new: Vec<NewEvent> = events.iter().map(|(at, e)| encode(*at, e)).collect();
    let res: Result<_, StoreError> = store.append(STREAM, ExpectedVersion::Any, new).await;
    if let Err(err) = res {
        tracing::error!(error = %err, n_events = events.len(), "failed to record security events");
    }
}

/// The writer: appends what arrives in batches, and the unknown-name counts every minute.
async fn write(store: Arc<dyn EventStore>, mut rx: mpsc::Receiver<Message>) {
    let mut summary = Summary::default();
    let mut tick = tokio::time::interval(SUMMARY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut messages = Vec::with_capacity(256);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut messages, 256) => {
                if n == 0 {
                    // Every sender is gone: write what is left and stop.
                    append(store.as_ref(), &summary.take()).await;
                    return;
                }
                let mut batch = Vec::with_capacity(n);
                let mut flushed = Vec::new();
                for message in messages.drain(..) {
                    match message {
                        Message::Event(at, event) => {
                            if matches!(event, SecurityEvent::LoginLocked { kind: LockKind::Address, .. }) {
                                // The failures that led to an address's lock come first.
                                batch.extend(summary.take());
                            }
                            batch.push((at, event));
                        }
                        Message::UnknownUserFailed(at, address) => summary.add(at, address),
                        Message::Flush(done) => {
                            batch.extend(summary.take());
                            flushed.push(done);
                        }
                    }
                }
                append(store.as_ref(), &batch).await;
                for done in flushed {
                    let _ = done.send(());
                }
            }
            _ = tick.tick() => append(store.as_ref(), &summary.take()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Position;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + seconds, 0).expect("valid time")
    }

    #[test]
    fn unknown_names_are_counted_per_address_within_a_bound() {
        let mut summary = Summary::default();
        for i in 0..5 {
            summary.add(at(i), "10.0.0.1".into());
        }
        for i in 0..(MAX_PENDING_ADDRESSES as i64 + 50) {
            summary.add(at(10), format!("10.1.{}.{}", i / 256, i % 256));
        }
        let events = summary.take();
        assert_eq!(
            events.len(),
            MAX_PENDING_ADDRESSES + 1,
            "the rest under `*`"
        );
        assert!(events.contains(&(
            at(4),
            SecurityEvent::UnknownUserLoginsFailed {
                address: "10.0.0.1".into(),
                count: 5,
                first_at: at(0),
                last_at: at(4),
            }
        )));
        let rest = events
            .iter()
            .find_map(|(_, e)| match e {
                SecurityEvent::UnknownUserLoginsFailed { address, count, .. } if address == "*" => {
                    Some(*count)
                }
                _ => None,
            })
            .expect("a `*` count");
        assert_eq!(rest, 51);
        assert!(summary.take().is_empty());
    }

    /// The golden log of schema-1 security events must load forever.
    #[test]
    fn the_golden_security_log_still_loads() {
        let log = include_str!("../../fixtures/events/security-golden-v1.jsonl");
        let mut types = Vec::new();
        for (i, line) in log.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).expect("golden line is JSON");
            let rec = RecordedEvent {
                position: Position(i as u64 + 1),
                stream: STREAM.into(),
                version: i as u64 + 1,
                event_id: Uuid::nil(),
                event_type: v["type"].as_str().expect("type").to_owned(),
                schema_version: v["schema_version"].as_u64().expect("schema_version") as u32,
                data: v["data"].to_string(),
                metadata: v["metadata"].to_string(),
                recorded_at: Utc::now(),
            };
            let decoded = decode(&rec).expect("golden event decodes");
            assert_eq!(decoded.event.type_name(), rec.event_type);
            // What this build writes reads back the same.
            let again = encode(decoded.at, &decoded.event);
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&again.data).expect("JSON"),
                v["data"]
            );
            types.push(rec.event_type);
        }
        for t in [
            "login_succeeded",
            "login_failed",
            "unknown_user_logins_failed",
            "login_locked",
            "login_unlocked",
            "logged_out",
        ] {
            assert!(types.iter().any(|x| x == t), "the golden log has `{t}`");
        }
    }

    #[tokio::test]
    async fn the_writer_pages_newest_first_and_writes_no_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn EventStore> = Arc::new(
            crate::store::sqlite::SqliteStore::open(&dir.path().join("events.db")).expect("store"),
        );
        let (log, _task) = SecurityLog::start(store.clone());
        for i in 0..5 {
            log.record(
                at(i),
                SecurityEvent::LoginFailed {
                    username: "operator".into(),
                    address: "10.0.0.1".into(),
                    failures: i as u32 + 1,
                },
            );
        }
        log.unknown_user_failed(at(6), "10.0.0.2");
        log.unknown_user_failed(at(7), "10.0.0.2");
        log.flush().await;
        let (total, page) = log.page(1, 2).await.expect("page");
        assert_eq!(total, 6);
        assert!(matches!(
            page[0].event,
            SecurityEvent::UnknownUserLoginsFailed { count: 2, .. }
        ));
        assert!(matches!(
            page[1].event,
            SecurityEvent::LoginFailed { failures: 5, .. }
        ));
        let (_, last) = log.page(3, 2).await.expect("page");
        assert_eq!(last.len(), 2);
        assert!(matches!(
            last[1].event,
            SecurityEvent::LoginFailed { failures: 1, .. }
        ));
        assert!(log.page(4, 2).await.expect("page").1.is_empty());
    }
}
