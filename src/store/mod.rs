//! The event store port and its backends.
//!
//! Every case's history is a stream of events; the store appends to streams with optimistic
//! concurrency and serves them back per stream, in global order, and as a catch-up subscription
//! that projections follow.
//!
//! # Layout
//!
//! - this module: the port ([`EventStore`]), its value types and [`Subscription`], which every
//!   backend reuses
//! - `sqlite`: the embedded default backend ([`sqlite::SqliteStore`])
//! - `postgres` (cargo feature `postgres`): a PostgreSQL server that several instances share
//!   (`postgres::PostgresStore`); [`open`] picks the backend from the settings
//! - `kurrent` (cargo feature `kurrentdb`): a KurrentDB server or cluster that several
//!   instances share (`kurrent::KurrentStore`)
//! - `stream`: stream names ([`stream::StreamName`]): which aggregate a stream holds
//! - `contract` (tests only): the checks every backend must pass, and `contract_tests!`
//!
//! # Invariants
//!
//! - An append is all or nothing; a wrong expected version appends nothing.
//! - Event ids are unique across the store; re-sending an append is idempotent.
//! - Positions only increase, and an event is never visible (to `read_all`, `head` or a
//!   subscription) before every event with a lower position is. Positions need not be dense.
//! - An acknowledged append survives a crash of the process.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

#[cfg(test)]
pub mod contract;
#[cfg(feature = "kurrentdb")]
pub mod kurrent;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod stream;

/// [`EventStore::identity`] of the embedded store of a data directory.
pub const EMBEDDED_IDENTITY: &str = "sqlite events.db";

/// Opens the event store `settings` name: the data directory's SQLite file (created with the
/// directory on a first start) or a PostgreSQL server. The URL is never logged.
///
/// # Errors
/// The store cannot be opened or created, or is newer than this build; a PostgreSQL URL in a
/// build without the `postgres` feature.
pub async fn open(settings: &crate::config::Settings) -> anyhow::Result<Arc<dyn EventStore>> {
    match &settings.store {
        crate::config::StoreLocation::Embedded => {
            Ok(Arc::new(crate::server::open_store(settings)?) as Arc<dyn EventStore>)
        }
        #[cfg(feature = "postgres")]
        crate::config::StoreLocation::Postgres(url) => {
            use anyhow::Context as _;
            let store = postgres::PostgresStore::open(url)
                .await
                .context("failed to open the PostgreSQL event store")?;
            Ok(Arc::new(store) as Arc<dyn EventStore>)
        }
        #[cfg(not(feature = "postgres"))]
        crate::config::StoreLocation::Postgres(_) => anyhow::bail!(
            "`--store postgres://…`: this build has no PostgreSQL backend (build it with \
             `cargo build --release --features postgres`)"
        ),
        #[cfg(feature = "kurrentdb")]
        crate::config::StoreLocation::Kurrent(url) => {
            use anyhow::Context as _;
            let store = kurrent::KurrentStore::open(url)
                .await
                .context("failed to open the KurrentDB event store")?;
            Ok(Arc::new(store) as Arc<dyn EventStore>)
        }
        #[cfg(not(feature = "kurrentdb"))]
        crate::config::StoreLocation::Kurrent(_) => anyhow::bail!(
            "`--store kurrentdb://…`: this build has no KurrentDB backend (build it with \
             `cargo build --release --features kurrentdb`)"
        ),
    }
}

/// Opaque global position; 0 means "before the first event". Only increases; need not be dense.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position(pub u64);

impl Position {
    /// Before the first event: reading or subscribing after it yields everything.
    pub const START: Position = Position(0);
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the writer expects the stream's version (= its number of events) to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version is.
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must be at exactly this version; `Exact(0)` is the same as `NoStream`.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(version) => actual == version,
        }
    }
}

/// An event to append; the store gives it a position, a version and a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique across the store; re-sending the same ids makes an append idempotent.
    pub event_id: Uuid,
    /// The event's type tag, e.g. `CaseDispatched`.
    pub event_type: String,
    /// Version of the event's payload schema, for upcasting on read.
    pub schema_version: u32,
    /// The payload as JSON text; stored as given, not validated.
    pub data: String,
    /// Correlation, causation, actor and the like, as JSON text.
    pub metadata: String,
}

/// One stream's share of a bulk import (`SqliteStore::import`): what one `append` would
/// have carried, and when it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportAppend {
    /// The stream appended to.
    pub stream: String,
    /// What the stream's version must be before these events (counting the import's earlier
    /// appends to the same stream).
    pub expected: ExpectedVersion,
    /// The events, at least one.
    pub events: Vec<NewEvent>,
    /// The time the store records for them (`RecordedEvent::recorded_at`): the time the
    /// append happened in the log being loaded.
    pub recorded_at: DateTime<Utc>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Global position, the checkpoint of readers of all streams.
    pub position: Position,
    /// The stream the event belongs to.
    pub stream: String,
    /// Version of the stream after this event: the first event of a stream is 1.
    pub version: u64,
    /// The id the writer gave.
    pub event_id: Uuid,
    /// The event's type tag.
    pub event_type: String,
    /// Version of the payload schema.
    pub schema_version: u32,
    /// The payload as JSON text.
    pub data: String,
    /// The metadata as JSON text.
    pub metadata: String,
    /// When the store committed the event.
    pub recorded_at: DateTime<Utc>,
}

/// The outcome of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append.
    pub version: u64,
    /// The position of the last event appended; pass it as `min_position` to read your writes.
    pub position: Position,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream's version is not the expected one; nothing was appended.
    #[error("stream `{stream}` is at version {actual}, expected {expected:?}")]
    Conflict {
        /// The stream appended to.
        stream: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version when the append was checked.
        actual: u64,
    },
    /// Some of the event ids are already stored (or repeated in the append), but not as this
    /// exact append (same stream, same ids in order); nothing was appended.
    #[error("event `{event_id}` is already stored, but not as this append to stream `{stream}`")]
    IdMismatch {
        /// The stream appended to.
        stream: String,
        /// The first id found to clash.
        event_id: Uuid,
    },
    /// An append with no events.
    #[error("an append must carry at least one event")]
    Empty,
    /// The backend failed (IO, corruption, closed, a commit whose outcome is unknown); the
    /// append may not have happened, and re-sending it with the same ids is safe.
    #[error("event store backend failed: {0}")]
    Backend(Cause),
    /// The storage under the backend cannot take the operation now: the disk is full,
    /// read-only or failing (SQLite's `SQLITE_FULL`, `SQLITE_READONLY`, `SQLITE_IOERR`,
    /// `SQLITE_CANTOPEN`), or the database server cannot be reached. Nothing was appended;
    /// the same call succeeds once the storage does, without a restart, and re-sending it
    /// with the same ids is safe.
    #[error("event store storage unavailable: {0}")]
    Unavailable(Cause),
}

/// What a caller may do about a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Read the stream again and decide anew: another writer came first.
    Decide,
    /// The same call, later: the storage is away or full and will be back.
    Later,
    /// Nothing: a refusal of what was sent, or a failure a retry does not mend.
    No,
}

/// Why a backend call failed: what the store says (no credentials, no personal data), and
/// the driver's own error when there was one, for a caller that looks closer (e.g. a
/// `tokio_postgres::Error` or a `rusqlite::Error`, by downcasting).
#[derive(Debug)]
pub struct Cause {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// The call may well succeed if made again (a connection that broke at a commit).
    transient: bool,
}

impl Cause {
    /// A cause the store itself found (a malformed row, a schema too new).
    pub fn new(message: impl Into<String>) -> Self {
        Cause {
            message: message.into(),
            source: None,
            transient: false,
        }
    }

    /// A driver's error, with what the store says of it (which already quotes the error's
    /// text where that is safe to show).
    pub fn with(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Cause {
            message: message.into(),
            source: Some(Box::new(source)),
            transient: false,
        }
    }

    /// The same cause, of a failure that the same call may well not meet again (the
    /// connection broke while a commit was under way: its outcome is unknown, and re-sending
    /// the append with the same ids tells).
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    /// The driver's error, if there was one.
    pub fn driver_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause::new(message)
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Cause::new(message)
    }
}

impl StoreError {
    /// Whether the failure is the storage's (full, read-only, failing disk, server away)
    /// rather than a bug or a refusal: the caller may say "try again later".
    pub fn is_storage_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Whether, and how, the call is worth making again.
    pub fn retry(&self) -> Retry {
        match self {
            StoreError::Conflict { .. } => Retry::Decide,
            StoreError::Unavailable(_) => Retry::Later,
            StoreError::Backend(cause) if cause.transient => Retry::Later,
            StoreError::IdMismatch { .. } | StoreError::Empty | StoreError::Backend(_) => Retry::No,
        }
    }

    /// The driver's error under a backend or storage failure, if there was one.
    pub fn driver_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            StoreError::Backend(cause) | StoreError::Unavailable(cause) => cause.driver_error(),
            _ => None,
        }
    }
}

/// The event store port: streams with optimistic concurrency, plus global order.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if its version is the `expected` one, all or nothing.
    ///
    /// Re-sending an append whose event ids are all already stored, in order, in that stream
    /// returns the original [`AppendResult`] (idempotent) whatever `expected` says. If the
    /// returned future is dropped the append may or may not happen; re-send it to find out.
    ///
    /// # Errors
    ///
    /// [`StoreError::Empty`] for no events, [`StoreError::Conflict`] for a wrong version,
    /// [`StoreError::IdMismatch`] for ids stored otherwise, [`StoreError::Backend`].
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// The events of `stream` from version `from_version` (inclusive, 1-based) to its end;
    /// empty for an absent stream.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// At most `limit` events in global order, strictly after `after`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The stream's version (its number of events), 0 if absent.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError>;

    /// Names and versions of the streams whose name starts with `prefix`, sorted by name
    /// (byte order).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    async fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError>;

    /// Every event of this type in global order (used to rebuild small indexes at start-up).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    async fn events_of_type(&self, event_type: &str) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the last committed event (`Position(0)` when empty).
    fn head(&self) -> Position;

    /// Waits until `head() >= position` (read-your-writes `min_position`) or `timeout`
    /// elapses; returns whether the position was reached.
    async fn wait_for(&self, position: Position, timeout: Duration) -> bool;

    /// A catch-up subscription: every event after `after`, in global order, each exactly once,
    /// then live ones as they commit.
    fn subscribe(&self, after: Position) -> Subscription;

    /// What names this store among all stores, so a data directory's read models are never
    /// laid over another store's log (`datadir::check_store`). The default is for the
    /// embedded store, which lives in its data directory.
    fn identity(&self) -> String {
        EMBEDDED_IDENTITY.to_owned()
    }

    /// Whether other processes may write to this store too (several instances on one
    /// server), so what this process holds in memory must follow their changes. The default
    /// is for a store one process owns.
    fn is_shared(&self) -> bool {
        false
    }

    /// The highest position any writer has committed, seen or not yet by this handle's
    /// [`EventStore::head`] (another instance's append lands here first). A `min_position`
    /// beyond it names a position nobody wrote.
    ///
    /// The default is for a store only one process writes: its head.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn last_written(&self) -> Result<Position, StoreError> {
        Ok(self.head())
    }

    /// Takes the lease `name` if no other process sharing the store holds it: `None` when one
    /// does. The lease is held until it is dropped or [`Lease::lost`] (its holder's link to the
    /// store broke), and a process that dies loses it, so another takes it over.
    ///
    /// The default is for a store only one process opens (the data directory's lock): every
    /// lease is granted and never lost.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn try_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let _ = name;
        Ok(Some(Lease::never_lost()))
    }
}

/// A lease from [`EventStore::try_lease`]: held while this value lives.
pub struct Lease {
    lost: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Whatever keeps the lease (a connection), released on drop.
    _held: Box<dyn Send + Sync>,
}

impl Lease {
    /// A lease that ends when `lost` resolves (or the lease is dropped, releasing `held`).
    pub fn new(
        lost: impl Future<Output = ()> + Send + 'static,
        held: Box<dyn Send + Sync>,
    ) -> Self {
        Lease {
            lost: Box::pin(lost),
            _held: held,
        }
    }

    /// A lease nothing can take away (a store one process owns).
    pub fn never_lost() -> Self {
        Lease::new(std::future::pending(), Box::new(()))
    }

    /// Resolves once the lease is lost: stop what it guards, another process may now hold it.
    pub async fn lost(&mut self) {
        (&mut self.lost).await;
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease").finish_non_exhaustive()
    }
}

/// Waits until a backend's `head` watch reaches `position` or `timeout` passes: every
/// backend's [`EventStore::wait_for`].
pub(crate) async fn head_reaches(
    head: &watch::Receiver<Position>,
    position: Position,
    timeout: Duration,
) -> bool {
    let mut head = head.clone();
    tokio::time::timeout(timeout, head.wait_for(|head| *head >= position))
        .await
        .is_ok_and(|reached| reached.is_ok())
}

/// What [`ReadAll`] returns.
pub type ReadAllFuture =
    Pin<Box<dyn Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send + 'static>>;

/// A backend's `read_all(after, limit)`, owned, so a [`Subscription`] can outlive a borrow of
/// the store.
pub type ReadAll = Arc<dyn Fn(Position, usize) -> ReadAllFuture + Send + Sync + 'static>;

/// A catch-up subscription to all streams, built on a backend's `read_all` and a watch of its
/// head, so every backend shares the same delivery logic.
///
/// It delivers events strictly in position order, each once, and never skips one, provided the
/// backend keeps the port's invariant that an event becomes visible only after every lower
/// position has (the head watch only wakes it up; `read_all` decides what comes next).
pub struct Subscription {
    /// Position of the last event handed out.
    last: Position,
    /// Events read but not yet handed out, in order.
    buffered: VecDeque<RecordedEvent>,
    /// The backend's committed head; a change means there may be more to read.
    head: watch::Receiver<Position>,
    read_all: ReadAll,
    batch_size: usize,
}

impl Subscription {
    /// How many events one read fetches.
    pub const DEFAULT_BATCH_SIZE: usize = 512;

    /// A subscription delivering events after `after`, reading with `read_all` and waking up on
    /// changes of `head` (the backend drops the sender when it closes).
    pub fn new(after: Position, head: watch::Receiver<Position>, read_all: ReadAll) -> Self {
        Subscription {
            last: after,
            buffered: VecDeque::new(),
            head,
            read_all,
            batch_size: Self::DEFAULT_BATCH_SIZE,
        }
    }

    /// The position of the last event delivered (or the starting one): the checkpoint to resume
    /// from.
    pub fn position(&self) -> Position {
        self.last
    }

    /// The next event, waiting for one to commit if the subscription has caught up.
    ///
    /// Cancel safe: if the future is dropped, no event is lost or delivered twice.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when a read fails (the next call retries from the same place)
    /// or, once everything committed has been delivered, when the store has closed.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                self.last = event.position;
                return Ok(event);
            }
            // Mark the current head as seen before reading, so a commit that lands after the
            // read still wakes us up below.
            self.head.borrow_and_update();
            let events = (self.read_all)(self.last, self.batch_size).await?;
            if events.is_empty() {
                if self.head.changed().await.is_err() {
                    // The sender is gone, but a last commit may have slipped in after the read.
                    let events = (self.read_all)(self.last, self.batch_size).await?;
                    if events.is_empty() {
                        return Err(StoreError::Backend("event store is closed".into()));
                    }
                    self.buffer(events);
                }
            } else {
                self.buffer(events);
            }
        }
    }

    /// The next event (waiting like [`Subscription::next`]) followed by those already read and
    /// waiting here, `max` at most: a follower applies what has piled up in one go without
    /// starting a read it would not wait for.
    ///
    /// Cancel safe, like [`Subscription::next`].
    ///
    /// # Errors
    ///
    /// As [`Subscription::next`].
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let first = self.next().await?;
        let n_more = self.buffered.len().min(max.saturating_sub(1));
        let mut batch = Vec::with_capacity(1 + n_more);
        batch.push(first);
        batch.extend(self.buffered.drain(..n_more));
        if let Some(last) = batch.last() {
            self.last = last.position;
        }
        Ok(batch)
    }

    fn buffer(&mut self, events: Vec<RecordedEvent>) {
        // Guard against a backend handing back what was already delivered.
        let last = self.last;
        self.buffered
            .extend(events.into_iter().filter(|event| event.position > last));
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("last", &self.last)
            .field("buffered", &self.buffered.len())
            .field("head", &*self.head.borrow())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_says_whether_to_decide_again_wait_or_give_up() {
        let conflict = StoreError::Conflict {
            stream: "case-1".into(),
            expected: ExpectedVersion::Exact(1),
            actual: 2,
        };
        assert_eq!(conflict.retry(), Retry::Decide);
        assert_eq!(
            StoreError::Unavailable("disk full".into()).retry(),
            Retry::Later
        );
        assert_eq!(StoreError::Backend("corrupt row".into()).retry(), Retry::No);
        assert_eq!(
            StoreError::Backend(Cause::new("commit, outcome unknown").transient()).retry(),
            Retry::Later
        );
        let clash = StoreError::IdMismatch {
            stream: "case-1".into(),
            event_id: Uuid::nil(),
        };
        assert_eq!(clash.retry(), Retry::No);
        assert_eq!(StoreError::Empty.retry(), Retry::No);
    }

    #[test]
    fn a_cause_keeps_the_drivers_error_and_shows_the_stores_words() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe");
        let err = StoreError::Unavailable(Cause::with("server gone: pipe", io));
        assert_eq!(
            err.to_string(),
            "event store storage unavailable: server gone: pipe"
        );
        let kept = err
            .driver_error()
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .expect("the io error");
        assert_eq!(kept.kind(), std::io::ErrorKind::BrokenPipe);
        assert!(
            StoreError::Backend("no driver".into())
                .driver_error()
                .is_none()
        );
        assert!(StoreError::Empty.driver_error().is_none());
    }
}
