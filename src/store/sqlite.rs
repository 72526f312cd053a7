//! The embedded event store: one SQLite file in WAL mode.
//!
//! # Layout
//!
//! - [`SqliteStore`]: the handle; appends go to the writer thread, reads to a small pool of
//!   read-only connections on tokio's blocking threads.
//! - `Writer`: a dedicated std thread owning the only write connection. It takes a request,
//!   drains whatever else is queued (up to [`MAX_BATCH`]), runs them in one transaction with a
//!   savepoint each, commits once (one fsync for the batch: group commit), answers every caller
//!   and publishes the new head.
//! - `Readers`: the read-only connection pool.
//! - [`SqliteStore::import`]: a bulk path for loading a store (`minqing generate`): many streams'
//!   appends in one transaction of the same writer, all or nothing.
//!
//! # Invariants
//!
//! - Positions are assigned by the single writer, in commit order, so a reader can never see
//!   position N+1 committed before N: subscribers never skip an event.
//! - `synchronous=FULL` in WAL mode: an acknowledged append has been fsynced and survives
//!   `kill -9` and power loss.
//! - One process per file: the writer caches the last position, so a second writer process
//!   would see its appends fail (never corrupt the log).
//! - `PRAGMA user_version` is the schema version; [`MIGRATIONS`] brings an older file up to date.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Statement, params};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::{
    AppendResult, Cause, EventStore, ExpectedVersion, ImportAppend, NewEvent, Position, ReadAll,
    RecordedEvent, StoreError, Subscription,
};

/// At most this many append requests share one transaction.
const MAX_BATCH: usize = 1000;

/// At most this many idle read connections are kept open.
const MAX_IDLE_READERS: usize = 4;

/// How long a connection waits for a lock held by another connection (checkpoints).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes of the database file each connection maps into memory (1 GiB).
const MMAP_SIZE: i64 = 1 << 30;

/// WAL pages (4 KiB) between automatic checkpoints.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 4000;

/// Page cache of the writer once it imports (1 GiB), in KiB.
const IMPORT_CACHE_KIB: i64 = 1 << 20;

/// WAL pages between automatic checkpoints once the writer imports (256 MiB).
const IMPORT_AUTOCHECKPOINT_PAGES: i64 = 65_536;

/// Schema changes, in order; `PRAGMA user_version` counts those applied. Never edit one that
/// has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: events and streams. `recorded_at` is microseconds since the Unix epoch (UTC);
    // `event_id` is the id's 16 bytes.
    "CREATE TABLE events (
        position       INTEGER PRIMARY KEY,
        stream         TEXT    NOT NULL,
        version        INTEGER NOT NULL,
        event_id       BLOB    NOT NULL UNIQUE,
        event_type     TEXT    NOT NULL,
        schema_version INTEGER NOT NULL,
        data           TEXT    NOT NULL,
        metadata       TEXT    NOT NULL,
        recorded_at    INTEGER NOT NULL,
        UNIQUE (stream, version)
    ) STRICT;
    CREATE INDEX events_by_type ON events (event_type);
    CREATE TABLE streams (
        stream  TEXT    PRIMARY KEY,
        version INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;",
];

const EVENT_COLUMNS: &str = "position, stream, version, event_id, event_type, schema_version, \
                             data, metadata, recorded_at";

/// The embedded SQLite event store.
///
/// Dropping it closes it (see [`SqliteStore::close`]).
pub struct SqliteStore {
    path: PathBuf,
    /// Append requests to the writer thread.
    requests: mpsc::Sender<Message>,
    /// Joined on close.
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    /// The committed head, published by the writer after each commit.
    head: watch::Receiver<Position>,
    readers: Arc<Readers>,
}

impl SqliteStore {
    /// The event with this id, if stored (not part of the port: a backend that reads by
    /// stream only cannot answer it; the crash tests use it to look for acknowledged events).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    pub async fn find_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ?1"
                ))?;
                let rows = statement.query(params![event_id.as_bytes()])?;
                Ok(all_events(rows)?.pop())
            })
            .await
    }

    /// Opens the store at `path`, creating the file and its schema if needed, and starts the
    /// writer thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the file cannot be opened or created, or was written by a
    /// newer schema version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(|err| open_failed(path, err))?;
        configure(&conn).map_err(|err| open_failed(path, err))?;
        // WAL makes readers and the writer independent, FULL fsyncs the WAL on every commit.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|err| open_failed(path, err))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|err| open_failed(path, err))?;
        // Checkpoint every ~16 MiB of WAL rather than the default 4 MiB: random event ids
        // scatter index writes, and fewer checkpoints write each hot page fewer times.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(|err| open_failed(path, err))?;
        migrate(&mut conn, path)?;
        // Fail here rather than on the writer thread if the schema is not what the writer needs.
        drop(Statements::prepare(&conn).map_err(|err| open_failed(path, err))?);
        let last_position = read_last_position(&conn).map_err(|err| open_failed(path, err))?;

        let (head_tx, head) = watch::channel(Position(last_position));
        let (requests, inbox) = mpsc::channel();
        let writer = Writer {
            conn,
            last_position,
            head: head_tx,
        };
        let handle = thread::Builder::new()
            .name("event-store-writer".to_owned())
            .spawn(move || writer.run(inbox))
            .map_err(|err| {
                StoreError::Backend(Cause::with(
                    format!("failed to start the event store writer: {err}"),
                    err,
                ))
            })?;
        tracing::info!(path = %path.display(), head = last_position, "event store opened");
        Ok(SqliteStore {
            path: path.to_owned(),
            requests,
            writer: Mutex::new(Some(handle)),
            head,
            readers: Arc::new(Readers {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Stops the writer after the batch in flight commits, and releases the read connections.
    /// Appends queued behind it, and every later call, fail with [`StoreError::Backend`].
    ///
    /// Blocks the calling thread until the writer has stopped (at most one commit). Calling it
    /// again does nothing.
    pub fn close(&self) {
        let handle = lock(&self.writer).take();
        let Some(handle) = handle else { return };
        self.readers.close();
        // The writer may already be gone if it failed; then there is nothing to stop.
        let _ = self.requests.send(Message::Close);
        if handle.join().is_err() {
            tracing::error!(path = %self.path.display(), "event store writer panicked");
        }
        tracing::info!(path = %self.path.display(), "event store closed");
    }

    /// Appends many streams' events in one transaction, in the order given, all or nothing:
    /// the bulk path for loading a store (`minqing generate`). Positions, stream versions and
    /// unique event ids are kept exactly as [`EventStore::append`] keeps them, through the same
    /// single writer; unlike `append`, a re-sent import is not recognised (its ids clash) and
    /// each append carries the time it is recorded at. Returns the position of the last event.
    ///
    /// # Errors
    ///
    /// [`StoreError::Empty`] for an append without events, [`StoreError::Conflict`] when an
    /// append's expected version does not hold (counting the appends before it in the same
    /// import), [`StoreError::IdMismatch`] when an event id is already stored or repeated,
    /// [`StoreError::Backend`]. Nothing of the import is stored then.
    pub async fn import(&self, appends: Vec<ImportAppend>) -> Result<Position, StoreError> {
        if appends.iter().any(|append| append.events.is_empty()) {
            return Err(StoreError::Empty);
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Message::Import(ImportRequest { appends, reply }))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    fn read_all_fn(&self) -> ReadAll {
        let readers = Arc::clone(&self.readers);
        Arc::new(move |after, limit| {
            let readers = Arc::clone(&readers);
            Box::pin(async move { readers.run(move |conn| read_all(conn, after, limit)).await })
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("head", &*self.head.borrow())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Empty);
        }
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            stream: stream.to_owned(),
            expected,
            events,
            reply,
        };
        self.requests
            .send(Message::Append(request))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream = stream.to_owned();
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE stream = ?1 AND version >= ?2 ORDER BY version"
                ))?;
                let rows = statement.query(params![stream, to_sql_u64(from_version)?])?;
                all_events(rows)
            })
            .await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.readers
            .run(move |conn| read_all(conn, after, limit))
            .await
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        let stream = stream.to_owned();
        self.readers
            .run(move |conn| Ok(current_version(conn, &stream)?))
            .await
    }

    async fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let prefix = prefix.to_owned();
        self.readers
            .run(move |conn| {
                // A range scan on the primary key: no LIKE, so `%` and `_` in names are plain.
                let mut statement = conn.prepare_cached(
                    "SELECT stream, version FROM streams WHERE stream >= ?1 ORDER BY stream",
                )?;
                let mut rows = statement.query(params![prefix])?;
                let mut streams = Vec::new();
                while let Some(row) = rows.next()? {
                    let name: String = row.get(0)?;
                    if !name.starts_with(&prefix) {
                        break;
                    }
                    streams.push((name, from_sql_u64(row.get(1)?)?));
                }
                Ok(streams)
            })
            .await
    }

    async fn events_of_type(&self, event_type: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let event_type = event_type.to_owned();
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE event_type = ?1 ORDER BY position"
                ))?;
                let rows = statement.query(params![event_type])?;
                all_events(rows)
            })
            .await
    }

    fn head(&self) -> Position {
        *self.head.borrow()
    }

    async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        super::head_reaches(&self.head, position, timeout).await
    }

    fn subscribe(&self, after: Position) -> Subscription {
        Subscription::new(after, self.head.clone(), self.read_all_fn())
    }
}

/// What the writer thread receives.
enum Message {
    Append(AppendRequest),
    /// A bulk import, run in a transaction of its own.
    Import(ImportRequest),
    /// Stop after committing what was taken so far; requests queued behind it are dropped,
    /// which their callers see as a closed store.
    Close,
}

struct AppendRequest {
    stream: String,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

struct ImportRequest {
    appends: Vec<ImportAppend>,
    reply: oneshot::Sender<Result<Position, StoreError>>,
}

/// The single writer, with everything it owns on its thread.
struct Writer {
    conn: Connection,
    /// The position of the last committed event.
    last_position: u64,
    head: watch::Sender<Position>,
}

impl Writer {
    fn run(self, inbox: mpsc::Receiver<Message>) {
        let Writer {
            conn,
            last_position,
            head,
        } = self;
        let statements = match Statements::prepare(&conn) {
            Ok(statements) => statements,
            Err(err) => {
                // `open` prepared them once already, so this is not expected; callers see a
                // closed store.
                tracing::error!(error = %err, "event store writer failed to start");
                return;
            }
        };
        let mut batcher = Batcher {
            conn: &conn,
            statements,
            last_position,
            head,
            importing: false,
        };
        let mut batch = Vec::new();
        loop {
            let mut import = None;
            let mut closing = match inbox.recv() {
                Ok(Message::Append(request)) => {
                    batch.push(request);
                    false
                }
                Ok(Message::Import(request)) => {
                    import = Some(request);
                    false
                }
                Ok(Message::Close) | Err(_) => true,
            };
            while !closing && import.is_none() && batch.len() < MAX_BATCH {
                match inbox.try_recv() {
                    Ok(Message::Append(request)) => batch.push(request),
                    // Appends queued before it commit first, in their own transaction.
                    Ok(Message::Import(request)) => import = Some(request),
                    Ok(Message::Close) | Err(mpsc::TryRecvError::Disconnected) => closing = true,
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            if !batch.is_empty() {
                batcher.write_batch(&mut batch);
            }
            if let Some(request) = import {
                let outcome = batcher.write_import(&request.appends);
                // The caller may have given up waiting; the import stands anyway.
                let _ = request.reply.send(outcome);
            }
            if closing {
                break;
            }
        }
        drop(batcher);
        // Fold the WAL back into the database file so a closed store is a single file.
        if let Err(err) = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
            tracing::warn!(error = %err, "event store checkpoint on close failed");
        }
    }
}

/// The writer's statements, prepared once: hashing SQL text on every call to the statement
/// cache shows up at these rates.
struct Statements<'c> {
    begin: Statement<'c>,
    commit: Statement<'c>,
    savepoint: Statement<'c>,
    release: Statement<'c>,
    rollback_to: Statement<'c>,
    find_event: Statement<'c>,
    stream_ids: Statement<'c>,
    stream_version: Statement<'c>,
    insert_event: Statement<'c>,
    upsert_stream: Statement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Statements {
            begin: conn.prepare("BEGIN IMMEDIATE")?,
            commit: conn.prepare("COMMIT")?,
            savepoint: conn.prepare("SAVEPOINT append")?,
            release: conn.prepare("RELEASE append")?,
            rollback_to: conn.prepare("ROLLBACK TO append")?,
            find_event: conn.prepare("SELECT stream, version FROM events WHERE event_id = ?1")?,
            stream_ids: conn.prepare(
                "SELECT version, event_id, position FROM events
                 WHERE stream = ?1 AND version >= ?2 ORDER BY version LIMIT ?3",
            )?,
            stream_version: conn.prepare("SELECT version FROM streams WHERE stream = ?1")?,
            insert_event: conn.prepare(
                "INSERT INTO events (position, stream, version, event_id, event_type, \
                 schema_version, data, metadata, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            upsert_stream: conn.prepare(
                "INSERT INTO streams (stream, version) VALUES (?1, ?2)
                 ON CONFLICT (stream) DO UPDATE SET version = excluded.version",
            )?,
        })
    }
}

/// Runs batches of append requests in group-committed transactions.
struct Batcher<'c> {
    conn: &'c Connection,
    statements: Statements<'c>,
    /// The position of the last event written in the current transaction, or committed.
    last_position: u64,
    head: watch::Sender<Position>,
    /// Whether the connection was set up for bulk imports.
    importing: bool,
}

/// Why an append request failed inside the writer.
enum RequestError {
    /// The request alone fails; what it wrote was rolled back and the batch goes on.
    Rejected(StoreError),
    /// The connection failed; the whole batch is abandoned.
    Fatal(rusqlite::Error),
}

impl From<rusqlite::Error> for RequestError {
    fn from(err: rusqlite::Error) -> Self {
        RequestError::Fatal(err)
    }
}

impl From<rusqlite::types::FromSqlError> for RequestError {
    fn from(err: rusqlite::types::FromSqlError) -> Self {
        RequestError::Rejected(err.into())
    }
}

impl Batcher<'_> {
    /// Runs `batch` in one transaction, answers every request and empties `batch`.
    fn write_batch(&mut self, batch: &mut Vec<AppendRequest>) {
        let committed = self.last_position;
        let mut outcomes = Vec::with_capacity(batch.len());
        match self.transact(batch, &mut outcomes) {
            Ok(()) => {
                if self.last_position != committed {
                    self.head.send_replace(Position(self.last_position));
                }
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    // The caller may have given up waiting; the append stands anyway.
                    let _ = request.reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, n_requests = batch.len(), "event store batch failed");
                if !self.conn.is_autocommit()
                    && let Err(err) = self.conn.execute_batch("ROLLBACK")
                {
                    tracing::error!(error = %err, "event store rollback failed");
                }
                // Nothing of the batch is durable, whatever each request's own outcome was.
                self.last_position = committed;
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(backend(&err)));
                }
            }
        }
    }

    fn transact(
        &mut self,
        batch: &[AppendRequest],
        outcomes: &mut Vec<Result<AppendResult, StoreError>>,
    ) -> rusqlite::Result<()> {
        self.statements.begin.execute([])?;
        let recorded_at = Utc::now().timestamp_micros();
        for request in batch {
            // A single-event request writes with one INSERT, which SQLite undoes by itself when
            // it fails, so only longer ones need a savepoint.
            let savepoint = request.events.len() > 1;
            if savepoint {
                self.statements.savepoint.execute([])?;
            }
            let last_position = self.last_position;
            match self.apply(request, recorded_at) {
                Ok(result) => {
                    if savepoint {
                        self.statements.release.execute([])?;
                    }
                    outcomes.push(Ok(result));
                }
                Err(RequestError::Rejected(err)) => {
                    self.last_position = last_position;
                    if savepoint {
                        self.statements.rollback_to.execute([])?;
                        self.statements.release.execute([])?;
                    }
                    outcomes.push(Err(err));
                }
                Err(RequestError::Fatal(err)) => return Err(err),
            }
            // Some errors (disk full, IO) make SQLite roll the whole transaction back; carrying
            // on would commit the rest of the batch piecemeal.
            if self.conn.is_autocommit() {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some("the transaction was rolled back".to_owned()),
                ));
            }
        }
        self.statements.commit.execute([])?;
        Ok(())
    }

    /// Runs an import in one transaction; on failure rolls it back and reports why.
    fn write_import(&mut self, appends: &[ImportAppend]) -> Result<Position, StoreError> {
        if !self.importing {
            // A store that imports is being loaded in bulk: random event ids scatter index
            // writes over the whole file, so keep the indexes in memory and fold the WAL back
            // less often. Durability is unchanged (every commit is still fsynced).
            self.importing = true;
            let tuned = self
                .conn
                .pragma_update(None, "cache_size", -IMPORT_CACHE_KIB)
                .and_then(|()| {
                    self.conn
                        .pragma_update(None, "wal_autocheckpoint", IMPORT_AUTOCHECKPOINT_PAGES)
                });
            if let Err(err) = tuned {
                tracing::warn!(error = %err, "event store could not be tuned for imports");
            }
        }
        let committed = self.last_position;
        match self.transact_import(appends) {
            Ok(()) => {
                if self.last_position != committed {
                    self.head.send_replace(Position(self.last_position));
                }
                Ok(Position(self.last_position))
            }
            Err(err) => {
                if !self.conn.is_autocommit()
                    && let Err(err) = self.conn.execute_batch("ROLLBACK")
                {
                    tracing::error!(error = %err, "event store rollback failed");
                }
                self.last_position = committed;
                Err(match err {
                    RequestError::Rejected(err) => err,
                    RequestError::Fatal(err) => {
                        tracing::error!(error = %err, "event store import failed");
                        backend_owned(err)
                    }
                })
            }
        }
    }

    fn transact_import(&mut self, appends: &[ImportAppend]) -> Result<(), RequestError> {
        self.statements.begin.execute([])?;
        // Stream versions as this import leaves them; written to `streams` once at the end.
        let mut versions: HashMap<&str, u64> = HashMap::new();
        for append in appends {
            let stream = append.stream.as_str();
            let actual = match versions.get(stream) {
                Some(version) => *version,
                None => self
                    .statements
                    .stream_version
                    .query_row(params![stream], |row| row.get::<_, i64>(0))
                    .optional()?
                    .map_or(Ok(0), from_sql_u64)
                    .map_err(RequestError::Rejected)?,
            };
            if !append.expected.accepts(actual) {
                return Err(RequestError::Rejected(StoreError::Conflict {
                    stream: stream.to_owned(),
                    expected: append.expected,
                    actual,
                }));
            }
            let recorded_at = append.recorded_at.timestamp_micros();
            let mut version = actual;
            for event in &append.events {
                version += 1;
                let position = self.last_position + 1;
                let res = self.statements.insert_event.execute(params![
                    to_sql_u64(position).map_err(RequestError::Rejected)?,
                    stream,
                    to_sql_u64(version).map_err(RequestError::Rejected)?,
                    event.event_id.as_bytes(),
                    event.event_type,
                    event.schema_version,
                    event.data,
                    event.metadata,
                    recorded_at,
                ]);
                match res {
                    Ok(_) => self.last_position = position,
                    // Versions are tracked above, so only an event id can clash.
                    Err(err) if is_unique_violation(&err) => {
                        return Err(RequestError::Rejected(StoreError::IdMismatch {
                            stream: stream.to_owned(),
                            event_id: event.event_id,
                        }));
                    }
                    Err(err) => return Err(RequestError::Fatal(err)),
                }
            }
            versions.insert(stream, version);
        }
        for (stream, version) in versions {
            self.statements.upsert_stream.execute(params![
                stream,
                to_sql_u64(version).map_err(RequestError::Rejected)?
            ])?;
        }
        self.statements.commit.execute([])?;
        Ok(())
    }

    /// Checks and writes one request.
    fn apply(
        &mut self,
        request: &AppendRequest,
        recorded_at: i64,
    ) -> Result<AppendResult, RequestError> {
        let stream = request.stream.as_str();
        if let Some(result) = self.find_resend(request)? {
            return Ok(result);
        }
        let actual = self
            .statements
            .stream_version
            .query_row(params![stream], |row| row.get::<_, i64>(0))
            .optional()?
            .map_or(Ok(0), from_sql_u64)
            .map_err(RequestError::Rejected)?;
        if !request.expected.accepts(actual) {
            return Err(RequestError::Rejected(StoreError::Conflict {
                stream: stream.to_owned(),
                expected: request.expected,
                actual,
            }));
        }
        let mut version = actual;
        for event in &request.events {
            version += 1;
            let position = self.last_position + 1;
            let res = self.statements.insert_event.execute(params![
                to_sql_u64(position).map_err(RequestError::Rejected)?,
                stream,
                to_sql_u64(version).map_err(RequestError::Rejected)?,
                event.event_id.as_bytes(),
                event.event_type,
                event.schema_version,
                event.data,
                event.metadata,
                recorded_at,
            ]);
            match res {
                Ok(_) => self.last_position = position,
                Err(err) if is_unique_violation(&err) && self.id_exists(event.event_id)? => {
                    return Err(RequestError::Rejected(StoreError::IdMismatch {
                        stream: stream.to_owned(),
                        event_id: event.event_id,
                    }));
                }
                Err(err) => return Err(RequestError::Fatal(err)),
            }
        }
        self.statements.upsert_stream.execute(params![
            stream,
            to_sql_u64(version).map_err(RequestError::Rejected)?
        ])?;
        Ok(AppendResult {
            version,
            position: Position(self.last_position),
        })
    }

    /// If the request's first id is stored, the request must be a re-send of a stored append:
    /// its result, or an [`StoreError::IdMismatch`]. Later ids clashing are caught on insert.
    fn find_resend(
        &mut self,
        request: &AppendRequest,
    ) -> Result<Option<AppendResult>, RequestError> {
        let Some(first) = request.events.first() else {
            return Err(RequestError::Rejected(StoreError::Empty));
        };
        let found = self
            .statements
            .find_event
            .query_row(params![first.event_id.as_bytes()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .optional()?;
        let Some((stream, first_version)) = found else {
            return Ok(None);
        };
        let mismatch = |event_id| {
            RequestError::Rejected(StoreError::IdMismatch {
                stream: request.stream.clone(),
                event_id,
            })
        };
        if stream != request.stream {
            return Err(mismatch(first.event_id));
        }
        let n_events = i64::try_from(request.events.len()).unwrap_or(i64::MAX);
        let mut rows =
            self.statements
                .stream_ids
                .query(params![stream, first_version, n_events])?;
        let mut result = None;
        for event in &request.events {
            let Some(row) = rows.next()? else {
                return Err(mismatch(event.event_id));
            };
            let stored_id = row.get_ref(1)?.as_blob()?;
            if stored_id != event.event_id.as_bytes() {
                return Err(mismatch(event.event_id));
            }
            result = Some(AppendResult {
                version: from_sql_u64(row.get(0)?).map_err(RequestError::Rejected)?,
                position: Position(from_sql_u64(row.get(2)?).map_err(RequestError::Rejected)?),
            });
        }
        Ok(result)
    }

    fn id_exists(&mut self, event_id: Uuid) -> rusqlite::Result<bool> {
        self.statements
            .find_event
            .query_row(params![event_id.as_bytes()], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
    }
}

/// Read-only connections, opened on demand and kept idle up to [`MAX_IDLE_READERS`].
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Readers {
    /// Runs `read` on a pooled connection on tokio's blocking threads.
    async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || readers.with_connection(read))
            .await
            .map_err(|err| {
                StoreError::Backend(Cause::with(
                    format!("event store read task failed: {err}"),
                    err,
                ))
            })?
    }

    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let pooled = lock(&self.idle).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.connect().map_err(backend_owned)?,
        };
        let res = read(&conn);
        if !self.closed.load(Ordering::Acquire) {
            let mut idle = lock(&self.idle);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        res
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        configure(&conn)?;
        Ok(conn)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.idle).clear();
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(32);
    // 16 MiB of page cache per connection.
    conn.pragma_update(None, "cache_size", -16_384)?;
    // Map the file rather than copying pages through read(2): scans of the log run about
    // twice as fast. Address space only; the OS page cache holds the data either way.
    conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
    Ok(())
}

/// Brings the schema up to [`MIGRATIONS`]`.len()`.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let failed = |err: rusqlite::Error| {
        StoreError::Backend(Cause::with(
            format!("failed to migrate event store `{}`: {err}", path.display()),
            err,
        ))
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .map_err(failed)?;
    let applied: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(failed)?;
    let known = MIGRATIONS.len();
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > known {
        return Err(StoreError::Backend(Cause::new(format!(
            "event store `{}` has schema version {applied}, newer than the {known} this build knows",
            path.display()
        ))));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(migration).map_err(failed)?;
        tx.pragma_update(None, "user_version", index + 1)
            .map_err(failed)?;
        tracing::info!(path = %path.display(), schema_version = index + 1, "event store migrated");
    }
    tx.commit().map_err(failed)
}

fn read_last_position(conn: &Connection) -> rusqlite::Result<u64> {
    let last: i64 = conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |row| {
        row.get(0)
    })?;
    // Positions are written from u64 values that fit in i64.
    Ok(u64::try_from(last).unwrap_or(0))
}

fn read_all(
    conn: &Connection,
    after: Position,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // A position beyond i64 cannot be stored, so nothing is after it.
    let Ok(after) = i64::try_from(after.0) else {
        return Ok(Vec::new());
    };
    let rows = statement.query(params![after, limit])?;
    let mut events = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(4096));
    collect_events(rows, &mut events)?;
    Ok(events)
}

/// Reads every event of the store file at `path` in global order inside one read transaction,
/// so the events are a consistent snapshot even while a service appends (WAL: the reader does
/// not hold up the writer), handing them to `each` a page at a time. The file is opened
/// read-only and is never migrated.
///
/// # Errors
/// [`StoreError::Backend`] when the file cannot be opened or read, or what `each` returns.
pub fn read_snapshot<E: From<StoreError>>(
    path: &Path,
    each: &mut dyn FnMut(Vec<RecordedEvent>) -> Result<(), E>,
) -> Result<u64, E> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| open_failed(path, err))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(StoreError::from)?;
    conn.execute_batch("BEGIN").map_err(StoreError::from)?;
    let mut after = Position(0);
    let mut n = 0;
    loop {
        let page = read_all(&conn, after, 4096)?;
        let Some(last) = page.last() else { break };
        after = last.position;
        n += page.len() as u64;
        each(page)?;
    }
    conn.execute_batch("COMMIT").map_err(StoreError::from)?;
    Ok(n)
}

/// Copies the store file at `path` to a new file `to` with SQLite's online backup, in one
/// step under a read transaction: a consistent copy of a store a running service keeps
/// appending to (a stepwise copy would start again at every commit). `progress(pages)` is
/// not called by SQLite during a single step; the caller watches `to` grow instead.
/// Returns the number of pages copied.
///
/// # Errors
/// [`StoreError::Backend`] when either file cannot be opened or the copy fails.
pub fn backup_file(path: &Path, to: &Path) -> Result<u64, StoreError> {
    let source = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| open_failed(path, err))?;
    source.busy_timeout(Duration::from_secs(10))?;
    let mut target = Connection::open(to).map_err(|err| open_failed(to, err))?;
    let backup = rusqlite::backup::Backup::new(&source, &mut target)?;
    backup.step(-1)?;
    let pages = backup.progress().pagecount;
    drop(backup);
    Ok(u64::try_from(pages).unwrap_or(0))
}

fn current_version(conn: &Connection, stream: &str) -> rusqlite::Result<u64> {
    let version: Option<i64> = conn
        .prepare_cached("SELECT version FROM streams WHERE stream = ?1")?
        .query_row(params![stream], |row| row.get(0))
        .optional()?;
    Ok(version
        .and_then(|version| u64::try_from(version).ok())
        .unwrap_or(0))
}

fn collect_events(
    mut rows: rusqlite::Rows<'_>,
    events: &mut Vec<RecordedEvent>,
) -> Result<(), StoreError> {
    while let Some(row) = rows.next()? {
        events.push(to_event(row)?);
    }
    Ok(())
}

fn all_events(rows: rusqlite::Rows<'_>) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::new();
    collect_events(rows, &mut events)?;
    Ok(events)
}

fn to_event(row: &rusqlite::Row<'_>) -> Result<RecordedEvent, StoreError> {
    // Borrowed column values, copied once: the owned `get::<String>` path costs more per row.
    // UTF-8 is checked with SIMD: std's check was over a quarter of a replay's reading time,
    // the event texts being mostly Chinese.
    let text = |index| -> Result<String, StoreError> {
        let bytes = row.get_ref(index)?.as_bytes()?;
        simdutf8::basic::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| {
                StoreError::Backend(Cause::new(format!(
                    "stored text in column {index} is not UTF-8"
                )))
            })
    };
    let integer = |index| -> Result<i64, StoreError> { Ok(row.get_ref(index)?.as_i64()?) };
    let event_id = Uuid::from_slice(row.get_ref(3)?.as_blob()?).map_err(|err| {
        StoreError::Backend(Cause::with(
            format!("stored event id is malformed: {err}"),
            err,
        ))
    })?;
    let recorded_at = integer(8)?;
    let recorded_at = DateTime::<Utc>::from_timestamp_micros(recorded_at).ok_or_else(|| {
        StoreError::Backend(Cause::new(format!(
            "stored time {recorded_at} is out of range"
        )))
    })?;
    let schema_version = integer(5)?;
    Ok(RecordedEvent {
        position: Position(from_sql_u64(integer(0)?)?),
        stream: text(1)?,
        version: from_sql_u64(integer(2)?)?,
        event_id,
        event_type: text(4)?,
        schema_version: u32::try_from(schema_version).map_err(|_| {
            StoreError::Backend(Cause::new(format!(
                "stored schema version {schema_version} is out of range"
            )))
        })?,
        data: text(6)?,
        metadata: text(7)?,
        recorded_at,
    })
}

fn to_sql_u64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::Backend(Cause::new(format!(
            "{value} does not fit in an SQLite integer"
        )))
    })
}

fn from_sql_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Backend(Cause::new(format!("stored value {value} is negative"))))
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        backend_owned(err)
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(err: rusqlite::types::FromSqlError) -> Self {
        StoreError::Backend(Cause::with(
            format!("stored value is malformed: {err}"),
            err,
        ))
    }
}

/// The failure of one SQLite error that several callers share (a batch's commit): its text.
fn backend(err: &rusqlite::Error) -> StoreError {
    classified(is_storage_failure(err), format!("sqlite: {err}").into())
}

/// The failure of an SQLite error, which it keeps.
fn backend_owned(err: rusqlite::Error) -> StoreError {
    classified(
        is_storage_failure(&err),
        Cause::with(format!("sqlite: {err}"), err),
    )
}

/// The storage's failure ([`is_storage_failure`]) or the backend's.
fn classified(storage: bool, cause: Cause) -> StoreError {
    if storage {
        StoreError::Unavailable(cause)
    } else {
        StoreError::Backend(cause)
    }
}

/// Whether an SQLite error is the storage's: the disk is full (`SQLITE_FULL`), read-only
/// (`SQLITE_READONLY`), failing (`SQLITE_IOERR`) or the file cannot be opened
/// (`SQLITE_CANTOPEN`), rather than a bug or a constraint. Such a failure passes when the disk
/// does; SQLite has rolled the statement back.
pub fn is_storage_failure(err: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        err.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
        )
    )
}

fn open_failed(path: &Path, err: rusqlite::Error) -> StoreError {
    let message = format!("failed to open event store `{}`: {err}", path.display());
    classified(is_storage_failure(&err), Cause::with(message, err))
}

fn closed() -> StoreError {
    StoreError::Backend("event store is closed".into())
}

/// Locks `mutex`, ignoring poisoning: the guarded values (a pool, a join handle) stay valid
/// whatever panicked while holding them.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::Instant;

    use tempfile::TempDir;

    use super::*;
    use crate::store::contract::{self, events, everything};

    /// A fresh store in a temporary directory, removed after the test.
    fn fresh_store() -> (SqliteStore, TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("events.db")).unwrap();
        (store, dir)
    }

    crate::store::contract::contract_tests!(fresh_store());

    /// Appends `n_each` single-event appends from each of `n_tasks` tasks, each to its own
    /// stream; returns appends per second.
    pub async fn measure_appends(store: Arc<SqliteStore>, n_tasks: u64, n_each: u64) -> f64 {
        let started = Instant::now();
        let tasks: Vec<_> = (0..n_tasks)
            .map(|task| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let stream = format!("case-{task}-{}", Uuid::new_v4());
                    for n in 0..n_each {
                        store
                            .append(&stream, ExpectedVersion::Exact(n), events(1))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        (n_tasks * n_each) as f64 / started.elapsed().as_secs_f64()
    }

    /// Reads the whole store with `read_all` in pages of `page`; returns events per second.
    pub async fn measure_read_all(store: &SqliteStore, page: usize) -> f64 {
        let started = Instant::now();
        let mut after = Position(0);
        let mut n_events = 0;
        loop {
            let events = store.read_all(after, page).await.unwrap();
            let Some(last) = events.last() else { break };
            after = last.position;
            n_events += events.len();
        }
        n_events as f64 / started.elapsed().as_secs_f64()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn throughput_can_be_measured() {
        let (store, _dir) = fresh_store();
        let store = Arc::new(store);
        assert!(measure_appends(Arc::clone(&store), 20, 50).await > 0.0);
        assert!(measure_read_all(&store, 256).await > 0.0);
        assert_eq!(store.head(), Position(1000));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reopened_store_has_every_event_and_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let store = SqliteStore::open(&path).unwrap();
        let first = events(3);
        let original = store
            .append("case-1", ExpectedVersion::NoStream, first.clone())
            .await
            .unwrap();
        store
            .append("case-2", ExpectedVersion::NoStream, events(2))
            .await
            .unwrap();
        let before = everything(&store).await;
        let head = store.head();
        store.close();
        store.close();
        drop(store);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(everything(&store).await, before);
        assert_eq!(store.head(), head);
        assert_eq!(store.stream_version("case-1").await.unwrap(), 3);
        assert_eq!(
            store.streams_with_prefix("case-").await.unwrap(),
            vec![("case-1".to_owned(), 3), ("case-2".to_owned(), 2)]
        );
        // Idempotency and versions survive too, and positions keep increasing.
        let res = store
            .append("case-1", ExpectedVersion::Any, first)
            .await
            .unwrap();
        assert_eq!(res, original);
        let res = store
            .append("case-1", ExpectedVersion::Exact(3), events(1))
            .await
            .unwrap();
        assert_eq!(res.version, 4);
        assert!(res.position > head);
        // Dropping without `close` closes too.
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.stream_version("case-1").await.unwrap(), 4);
    }

    #[test]
    fn an_sqlite_error_is_kept_and_a_full_disk_is_worth_waiting_for() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let err = StoreError::from(full);
        assert_eq!(err.retry(), super::super::Retry::Later);
        assert!(
            err.driver_error()
                .and_then(|e| e.downcast_ref::<rusqlite::Error>())
                .is_some_and(|e| e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)),
            "{err:?}"
        );
        let bug = StoreError::from(rusqlite::Error::InvalidQuery);
        assert_eq!(bug.retry(), super::super::Retry::No);
        assert!(bug.driver_error().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_store_refuses_work_and_ends_subscriptions() {
        let (store, _dir) = fresh_store();
        store
            .append("case-1", ExpectedVersion::Any, events(1))
            .await
            .unwrap();
        let mut subscription = store.subscribe(Position(0));
        subscription.next().await.unwrap();
        store.close();
        let err = store
            .append("case-1", ExpectedVersion::Any, events(1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert_eq!(err.retry(), super::super::Retry::No);
        assert!(store.read_all(Position(0), 10).await.is_err());
        assert!(subscription.next().await.is_err());
        assert!(!store.wait_for(Position(2), contract::PATIENCE).await);
    }

    #[tokio::test]
    async fn a_file_with_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[tokio::test]
    async fn a_new_file_is_at_the_latest_schema_in_wal_mode() {
        let (store, _dir) = fresh_store();
        let conn = Connection::open(&store.path).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    fn import_append(stream: &str, expected: ExpectedVersion, n: u64) -> ImportAppend {
        ImportAppend {
            stream: stream.to_owned(),
            expected,
            events: events(n),
            recorded_at: DateTime::from_timestamp(1_735_689_600, 0).unwrap(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_import_interleaves_streams_in_order_and_appends_carry_on_after_it() {
        let (store, _dir) = fresh_store();
        store
            .append("case-0", ExpectedVersion::NoStream, events(1))
            .await
            .unwrap();
        let batch = vec![
            import_append("case-1", ExpectedVersion::NoStream, 2),
            import_append("case-2", ExpectedVersion::NoStream, 1),
            import_append("case-1", ExpectedVersion::Exact(2), 1),
            import_append("case-0", ExpectedVersion::Exact(1), 1),
        ];
        let sent: Vec<Uuid> = batch
            .iter()
            .flat_map(|a| a.events.iter().map(|e| e.event_id))
            .collect();
        let last = store.import(batch).await.unwrap();
        assert_eq!(last, Position(6));
        assert_eq!(store.head(), Position(6));
        let all = everything(&store).await;
        let got: Vec<(u64, &str, u64)> = all
            .iter()
            .map(|e| (e.position.0, e.stream.as_str(), e.version))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "case-0", 1),
                (2, "case-1", 1),
                (3, "case-1", 2),
                (4, "case-2", 1),
                (5, "case-1", 3),
                (6, "case-0", 2),
            ]
        );
        assert_eq!(
            all[1..].iter().map(|e| e.event_id).collect::<Vec<_>>(),
            sent
        );
        assert_eq!(all[1].recorded_at.timestamp(), 1_735_689_600);
        assert_eq!(store.stream_version("case-1").await.unwrap(), 3);
        let res = store
            .append("case-1", ExpectedVersion::Exact(3), events(1))
            .await
            .unwrap();
        assert_eq!((res.version, res.position), (4, Position(7)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_import_stores_nothing() {
        let (store, _dir) = fresh_store();
        store
            .append("case-1", ExpectedVersion::NoStream, events(1))
            .await
            .unwrap();
        let before = everything(&store).await;
        let conflict = vec![
            import_append("case-2", ExpectedVersion::NoStream, 2),
            import_append("case-1", ExpectedVersion::NoStream, 1),
        ];
        let err = store.import(conflict).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { actual: 1, .. }),
            "{err:?}"
        );
        let mut clash = vec![import_append("case-3", ExpectedVersion::NoStream, 1)];
        clash.push(ImportAppend {
            events: vec![before[0].clone()]
                .into_iter()
                .map(|e| NewEvent {
                    event_id: e.event_id,
                    event_type: e.event_type,
                    schema_version: e.schema_version,
                    data: e.data,
                    metadata: e.metadata,
                })
                .collect(),
            ..import_append("case-4", ExpectedVersion::NoStream, 1)
        });
        let err = store.import(clash).await.unwrap_err();
        assert!(matches!(err, StoreError::IdMismatch { .. }), "{err:?}");
        let empty = vec![ImportAppend {
            events: Vec::new(),
            ..import_append("case-5", ExpectedVersion::Any, 1)
        }];
        assert!(matches!(store.import(empty).await, Err(StoreError::Empty)));
        assert_eq!(everything(&store).await, before);
        assert_eq!(store.head(), Position(1));
        assert_eq!(store.stream_version("case-2").await.unwrap(), 0);
        // The writer carries on from the last committed position.
        let res = store
            .append("case-2", ExpectedVersion::NoStream, events(1))
            .await
            .unwrap();
        assert_eq!(res.position, Position(2));
    }

    /// Set in the child process of [`an_acknowledged_append_survives_kill_9`] to the store path.
    const CHILD_ENV: &str = "MINQING_STORE_KILL_TEST_PATH";

    /// Kills the child when the test ends, whatever happens.
    struct KillOnDrop(Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_acknowledged_append_survives_kill_9() {
        if let Ok(path) = std::env::var(CHILD_ENV) {
            return append_and_report(Path::new(&path)).await;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        // This very test, in a child process, appends and reports each acknowledged id.
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let test = format!("{module}::an_acknowledged_append_survives_kill_9");
        let mut child = KillOnDrop(
            Command::new(std::env::current_exe().unwrap())
                .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &path)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let acknowledged = tokio::task::spawn_blocking(move || {
            let mut acknowledged = Vec::new();
            for line in BufReader::new(stdout).lines() {
                if let Ok(event_id) = Uuid::parse_str(line.unwrap().trim()) {
                    acknowledged.push(event_id);
                    if acknowledged.len() == 2000 {
                        break;
                    }
                }
            }
            acknowledged
        });
        let acknowledged = tokio::time::timeout(Duration::from_secs(60), acknowledged)
            .await
            .unwrap()
            .unwrap();
        // SIGKILL, mid-stream: appends are still in flight.
        drop(child);
        assert_eq!(acknowledged.len(), 2000);

        let store = SqliteStore::open(&path).unwrap();
        for event_id in acknowledged {
            assert!(
                store.find_event(event_id).await.unwrap().is_some(),
                "lost {event_id}"
            );
        }
        let all = everything(&store).await;
        assert_eq!(store.head(), all.last().unwrap().position);
    }

    /// The child's side: append from many tasks until killed (or a minute passes), printing
    /// each acknowledged event id.
    async fn append_and_report(path: &Path) {
        let store = Arc::new(SqliteStore::open(path).unwrap());
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let store = Arc::clone(&store);
                let out = Arc::clone(&out);
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let new = events(1);
                        let event_id = new[0].event_id;
                        store
                            .append(&format!("case-{task}"), ExpectedVersion::Any, new)
                            .await
                            .unwrap();
                        let mut out = lock(&out);
                        writeln!(out, "{event_id}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
}
