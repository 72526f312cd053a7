//! The PostgreSQL event store (cargo feature `postgres`): one event table on a server that
//! several `minqing serve` instances share.
//!
//! # Layout
//!
//! - [`PostgresStore`]: the handle; every call takes a connection from a small pool
//!   ([`POOL_SIZE`]) that drops broken connections, so the store reconnects by itself once the
//!   server is back.
//! - the horizon watcher (a task): publishes the head, the highest position every reader may
//!   see, after each local commit, each notification from another instance, and once a second.
//! - the listener (a task on its own connection): `LISTEN minqing_events`; a notification only
//!   wakes the watcher, which re-reads the head from the table.
//! - the announcer (a task): after local commits, one `pg_notify` (many commits share one),
//!   sent outside the append's transaction (NOTIFY in a transaction takes a lock held through
//!   its commit, which would serialise every commit: no group commit).
//!
//! # Positions (decision 0017)
//!
//! An event's position is its transaction's id shifted left by [`TX_SHIFT`] bits, plus its
//! index in the transaction: `(pg_current_xact_id() << 12) + i`. Readers see only positions
//! below the transaction-id horizon of their own snapshot, `pg_snapshot_xmin << 12`: every
//! transaction below it has ended, and every later one gets a higher id, so what a reader sees
//! is a prefix of the log that never grows a hole behind it. A subscriber can therefore never
//! skip an event that commits after a later-numbered one. Appends need no shared row, so
//! concurrent commits share one WAL flush (group commit). The cost: a write transaction left
//! open on the server (any database of the cluster) holds every subscriber back until it ends.
//!
//! # Invariants
//!
//! - An append is one transaction: the stream's row is checked and bumped (optimistic
//!   concurrency) and its events inserted, or nothing is. An import's transaction locks all
//!   its streams' rows at once, checks every expected version against them, then writes the
//!   rows and all its events in one statement each, or nothing.
//! - At most [`MAX_EVENTS_PER_TRANSACTION`] events per transaction, so positions of one
//!   transaction never reach the next transaction's.
//! - Credentials never reach a log: only the host, port and database are shown.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls, Row};
use uuid::Uuid;

use super::{
    AppendResult, Cause, EventStore, ExpectedVersion, ImportAppend, Lease, NewEvent, Position,
    ReadAll, ReadAllFuture, RecordedEvent, StoreError, Subscription,
};

/// Bits of a position below the transaction id: an event's index in its transaction.
pub const TX_SHIFT: u32 = 12;

/// At most this many events are written by one transaction (an append, or one transaction of
/// an import).
pub const MAX_EVENTS_PER_TRANSACTION: usize = 1 << TX_SHIFT;

/// Connections in the pool of one store handle.
const POOL_SIZE: usize = 8;

/// How long a call waits for a pooled connection, or for a new one to be made, before the
/// store is reported unavailable.
const CONNECT_PATIENCE: Duration = Duration::from_secs(5);

/// How often the head is re-read when nothing woke the watcher.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How soon the head is re-read while committed events wait below an older open transaction.
const LAGGING_POLL: Duration = Duration::from_millis(5);

/// The advisory-lock key of lease `$1`: advisory locks are the database's, so the key names
/// the store's schema too (two stores in one database do not share leases).
const LEASE_KEY: &str = "hashtextextended(current_schema() || ':' || $1, 0)";

/// The channel of the commit notifications.
const CHANNEL: &str = "minqing_events";

/// Schema changes, in order; `store_schema.version` counts those applied. Never edit one that
/// has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: events and streams; names in byte order (`COLLATE "C"`), so a prefix is a range.
    "CREATE TABLE streams (
        name    text COLLATE \"C\" PRIMARY KEY,
        version bigint NOT NULL
    );
    CREATE TABLE events (
        position       bigint PRIMARY KEY,
        stream         text COLLATE \"C\" NOT NULL,
        version        bigint NOT NULL,
        event_id       uuid NOT NULL UNIQUE,
        event_type     text NOT NULL,
        schema_version integer NOT NULL,
        data           text NOT NULL,
        metadata       text NOT NULL,
        recorded_at    timestamptz NOT NULL,
        UNIQUE (stream, version)
    );
    CREATE INDEX events_by_type ON events (event_type, position);",
    // 2: the store's identity, which data directories following it record.
    "ALTER TABLE store_schema ADD COLUMN store_id uuid NOT NULL DEFAULT gen_random_uuid();",
];

const EVENT_COLUMNS: &str = "position, stream, version, event_id, event_type, schema_version, \
                             data, metadata, recorded_at";

/// The horizon of the statement's snapshot, as a position: everything below it is final.
const HORIZON: &str = "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 12)";

/// Inserts one append's events: `$1` stream, `$2` its version before them, `$3` the index of
/// the first in its transaction, then the columns as arrays.
const INSERT_EVENTS: &str = "INSERT INTO events (position, stream, version, event_id, event_type, \
     schema_version, data, metadata, recorded_at) \
     SELECT (pg_current_xact_id()::text::bigint << 12) + $3 + e.ord - 1, $1, $2 + e.ord, \
            e.id, e.ty, e.sv, e.data, e.meta, $9 \
     FROM unnest($4::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[]) \
          WITH ORDINALITY AS e(id, ty, sv, data, meta, ord) \
     RETURNING position";

/// The PostgreSQL event store.
///
/// Dropping it stops its tasks; subscriptions then end once they have delivered what was
/// committed.
pub struct PostgresStore {
    pool: Pool,
    /// For connections of their own (leases).
    config: tokio_postgres::Config,
    head: watch::Receiver<Position>,
    /// Wakes the horizon watcher and the announcer after a local commit.
    committed: Arc<Wake>,
    tasks: Vec<JoinHandle<()>>,
    /// Where the store is, without credentials, for messages.
    place: String,
    /// Made with the schema: names this store among all.
    store_id: Uuid,
}

/// The two tasks a local commit wakes.
#[derive(Default)]
struct Wake {
    watcher: Notify,
    announcer: Notify,
}

impl PostgresStore {
    /// Connects to the server at `url` (`postgres://user:password@host:port/database`, with
    /// libpq's parameters such as `options=-csearch_path%3Dminqing`), creates or updates the
    /// schema in the connection's first search-path schema, and starts the store's tasks.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached, [`StoreError::Backend`]
    /// for a malformed URL or a schema written by a newer build.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|err| {
            // The message of a parse error never quotes the URL (so no password in it).
            StoreError::Backend(Cause::with(
                format!("the PostgreSQL URL is malformed: {err}"),
                err,
            ))
        })?;
        config.connect_timeout(CONNECT_PATIENCE);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("minqing");
        }
        let place = describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(CONNECT_PATIENCE))
            .create_timeout(Some(CONNECT_PATIENCE))
            .recycle_timeout(Some(CONNECT_PATIENCE))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|err| {
                StoreError::Backend(Cause::with(format!("PostgreSQL pool: {err}"), err))
            })?;
        let store_id = migrate(&pool, &place).await?;
        let first = read_head(&pool).await?;
        let (head_tx, head) = watch::channel(first.visible);
        let committed = Arc::new(Wake::default());
        let tasks = vec![
            tokio::spawn(watch_horizon(pool.clone(), committed.clone(), head_tx)),
            tokio::spawn(listen(config.clone(), committed.clone())),
            tokio::spawn(announce(pool.clone(), committed.clone())),
        ];
        tracing::info!(store = %place, head = %first.visible, "PostgreSQL event store opened");
        let config = {
            let mut own = config;
            // Which process holds a lease, for whoever looks at pg_stat_activity.
            own.application_name(format!("minqing lease (pid {})", std::process::id()));
            own
        };
        Ok(PostgresStore {
            pool,
            config,
            head,
            committed,
            tasks,
            place,
            store_id,
        })
    }

    /// Where the store is (host, port, database; never the credentials).
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Appends many streams' events (a data directory being moved, `minqing generate`) in
    /// transactions of at most [`MAX_EVENTS_PER_TRANSACTION`] events, each all or nothing,
    /// in the order given; returns the position of the last event.
    ///
    /// An import cut off part-way has stored a prefix of whole transactions; each append's
    /// expected version then refuses what was already stored, so the caller resumes from the
    /// stream versions it finds. Unlike `append`, a re-sent import is not recognised (its ids
    /// clash).
    ///
    /// # Errors
    ///
    /// [`StoreError::Empty`] for an append without events, [`StoreError::Backend`] for one of
    /// more than [`MAX_EVENTS_PER_TRANSACTION`], [`StoreError::Conflict`] when an append's
    /// expected version does not hold (counting the appends before it in the same
    /// transaction), [`StoreError::IdMismatch`] naming the first event whose id is already
    /// stored or repeated, [`StoreError::Unavailable`] and [`StoreError::Backend`]. The
    /// transaction refused stores nothing; the ones before it are committed.
    pub async fn import(&self, appends: Vec<ImportAppend>) -> Result<Position, StoreError> {
        let mut last = self.head();
        let mut batch: Vec<ImportAppend> = Vec::new();
        let mut n_batch = 0;
        for append in appends {
            if append.events.is_empty() {
                return Err(StoreError::Empty);
            }
            if append.events.len() > MAX_EVENTS_PER_TRANSACTION {
                return Err(too_many(append.events.len()));
            }
            if n_batch + append.events.len() > MAX_EVENTS_PER_TRANSACTION {
                last = self.import_batch(std::mem::take(&mut batch)).await?;
                n_batch = 0;
            }
            n_batch += append.events.len();
            batch.push(append);
        }
        if !batch.is_empty() {
            last = self.import_batch(batch).await?;
        }
        Ok(last)
    }

    /// Writes one transaction of an import in a few statements, whatever the number of its
    /// streams: the streams' rows are locked and read at once, every expected version is
    /// checked here (chaining the versions of a stream appended to twice), then the new
    /// streams' rows, the others' versions and all the events are written in one statement
    /// each.
    async fn import_batch(&self, batch: Vec<ImportAppend>) -> Result<Position, StoreError> {
        let plan = BatchPlan::of(&batch);
        let mut client = self.pool.get().await.map_err(pool_error)?;
        // Each retry follows a stream of the batch that another writer created meanwhile;
        // a stream is never removed, so there are at most as many retries as new streams.
        loop {
            let tx = client.transaction().await.map_err(pg_error)?;
            let outcome = write_batch(&tx, &batch, &plan).await;
            match outcome {
                Ok(BatchWritten::Written(last)) => {
                    tx.commit().await.map_err(commit_error)?;
                    drop(client);
                    self.published(last).await;
                    return Ok(last);
                }
                Ok(BatchWritten::Refused(err)) => {
                    tx.rollback().await.map_err(pg_error)?;
                    return Err(err);
                }
                Ok(BatchWritten::StreamCreated) => {
                    tx.rollback().await.map_err(pg_error)?;
                }
                Ok(BatchWritten::IdClash(cause)) => {
                    tx.rollback().await.map_err(pg_error)?;
                    return Err(find_id_clash(&client, &batch)
                        .await?
                        .unwrap_or_else(|| pg_error(cause)));
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// After a commit: wakes the watcher and the announcer, and waits (a bounded time) until
    /// the head has reached `position`, so an acknowledged append is in `read_all` and its
    /// subscriptions, as the port promises. It waits longer only while an older transaction
    /// is still open.
    async fn published(&self, position: Position) {
        self.committed.watcher.notify_one();
        self.committed.announcer.notify_one();
        if !self.wait_for(position, CONNECT_PATIENCE).await {
            tracing::warn!(%position, "a committed append is not visible yet (an open transaction holds the horizon)");
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("place", &self.place)
            .field("head", &*self.head.borrow())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl EventStore for PostgresStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Empty);
        }
        if events.len() > MAX_EVENTS_PER_TRANSACTION {
            return Err(too_many(events.len()));
        }
        let mut seen = HashSet::with_capacity(events.len());
        if let Some(repeated) = events.iter().find(|event| !seen.insert(event.event_id)) {
            return Err(StoreError::IdMismatch {
                stream: stream.to_owned(),
                event_id: repeated.event_id,
            });
        }
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let written = write_append(&tx, stream, expected, &events, 0, Utc::now()).await?;
        let refusal = match written {
            Written::Appended(result) => {
                tx.commit().await.map_err(commit_error)?;
                drop(client);
                self.published(result.position).await;
                return Ok(result);
            }
            Written::Conflict => None,
            Written::IdClash => Some(StoreError::IdMismatch {
                stream: stream.to_owned(),
                event_id: events[0].event_id,
            }),
        };
        tx.rollback().await.map_err(pg_error)?;
        // Refused: a re-send of a stored append gets its original result.
        if let Some(result) = find_resend(&client, stream, &events).await? {
            return Ok(result);
        }
        Err(match refusal {
            Some(err) => err,
            None => StoreError::Conflict {
                stream: stream.to_owned(),
                expected,
                actual: stream_version(&client, stream).await?,
            },
        })
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream = $1 AND version >= $2 \
                 ORDER BY version"
            ))
            .await
            .map_err(pg_error)?;
        let from = i64::try_from(from_version).unwrap_or(i64::MAX);
        let rows = client
            .query(&statement, &[&stream, &from])
            .await
            .map_err(pg_error)?;
        rows.iter().map(recorded).collect()
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_all(&self.pool, after, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        stream_version(&client, stream).await
    }

    async fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let pattern = format!("{}%", escape_like(prefix));
        let rows = client
            .query(
                "SELECT name, version FROM streams WHERE name LIKE $1 ORDER BY name",
                &[&pattern],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| Ok((row.get::<_, String>(0), to_u64(row.get(1))?)))
            .collect()
    }

    async fn events_of_type(&self, event_type: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rows = client
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE event_type = $1 \
                     AND position < {HORIZON} ORDER BY position"
                ),
                &[&event_type],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(recorded).collect()
    }

    fn head(&self) -> Position {
        *self.head.borrow()
    }

    async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        super::head_reaches(&self.head, position, timeout).await
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn identity(&self) -> String {
        format!("postgres {}", self.store_id)
    }

    async fn last_written(&self) -> Result<Position, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let row = client
            .query_one("SELECT coalesce(max(position), 0) FROM events", &[])
            .await
            .map_err(pg_error)?;
        Ok(Position(to_u64(row.get(0))?))
    }

    /// A session advisory lock on a connection of the lease's own: the server releases it
    /// when the connection ends, so a holder killed (or cut off) loses it at once.
    async fn try_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(pg_error)?;
        let (ended_tx, ended) = tokio::sync::oneshot::channel::<()>();
        let driver = tokio::spawn(async move {
            let _ = connection.await;
            let _ = ended_tx.send(());
        });
        let held: bool = client
            .query_one(
                &format!("SELECT pg_try_advisory_lock({LEASE_KEY})"),
                &[&name],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        if !held {
            driver.abort();
            return Ok(None);
        }
        /// Ends the connection (and so the lock) when the lease is dropped.
        struct Held(#[allow(dead_code)] tokio_postgres::Client, JoinHandle<()>);
        impl Drop for Held {
            fn drop(&mut self) {
                self.1.abort();
            }
        }
        Ok(Some(Lease::new(
            async move {
                let _ = ended.await;
            },
            Box::new(Held(client, driver)),
        )))
    }

    fn subscribe(&self, after: Position) -> Subscription {
        let pool = self.pool.clone();
        let read_all: ReadAll = Arc::new(move |after, limit| -> ReadAllFuture {
            let pool = pool.clone();
            Box::pin(async move { read_all(&pool, after, limit).await })
        });
        Subscription::new(after, self.head.clone(), read_all)
    }
}

/// What [`write_append`] did inside its transaction.
enum Written {
    Appended(AppendResult),
    /// The stream's version is not the expected one; the transaction must be rolled back.
    Conflict,
    /// An event id is already stored; the transaction is aborted.
    IdClash,
}

/// Checks and bumps the stream's version, then inserts the events, in `tx`; `offset` is the
/// index in the transaction of the first event.
async fn write_append(
    tx: &deadpool_postgres::Transaction<'_>,
    stream: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    offset: i64,
    recorded_at: DateTime<Utc>,
) -> Result<Written, StoreError> {
    let n = count(events.len());
    let before: i64 = match expected {
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => {
            let statement = tx
                .prepare_cached(
                    "INSERT INTO streams (name, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .await
                .map_err(pg_error)?;
            if tx
                .execute(&statement, &[&stream, &n])
                .await
                .map_err(pg_error)?
                == 0
            {
                return Ok(Written::Conflict);
            }
            0
        }
        ExpectedVersion::Exact(version) => {
            let version = i64::try_from(version).unwrap_or(i64::MAX);
            let statement = tx
                .prepare_cached(
                    "UPDATE streams SET version = version + $3 WHERE name = $1 AND version = $2",
                )
                .await
                .map_err(pg_error)?;
            if tx
                .execute(&statement, &[&stream, &version, &n])
                .await
                .map_err(pg_error)?
                == 0
            {
                return Ok(Written::Conflict);
            }
            version
        }
        ExpectedVersion::Any => {
            let statement = tx
                .prepare_cached(
                    "INSERT INTO streams (name, version) VALUES ($1, $2) ON CONFLICT (name) \
                     DO UPDATE SET version = streams.version + EXCLUDED.version RETURNING version",
                )
                .await
                .map_err(pg_error)?;
            let row = tx
                .query_one(&statement, &[&stream, &n])
                .await
                .map_err(pg_error)?;
            row.get::<_, i64>(0) - n
        }
    };
    let mut columns = EventColumns::with_capacity(events.len());
    for event in events {
        columns.push(event);
    }
    let statement = tx.prepare_cached(INSERT_EVENTS).await.map_err(pg_error)?;
    let rows = match tx
        .query(
            &statement,
            &[
                &stream,
                &before,
                &offset,
                &columns.ids,
                &columns.types,
                &columns.schema_versions,
                &columns.data,
                &columns.metadata,
                &recorded_at,
            ],
        )
        .await
    {
        Ok(rows) => rows,
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Ok(Written::IdClash);
        }
        Err(err) => return Err(pg_error(err)),
    };
    let last = rows
        .iter()
        .map(|row| row.get::<_, i64>(0))
        .max()
        .unwrap_or_default();
    Ok(Written::Appended(AppendResult {
        version: to_u64(before + n)?,
        position: Position(to_u64(last)?),
    }))
}

/// Inserts an import transaction's events, `$1`…`$8` one array per column, the events in
/// the order given: each event's position is its index in the transaction above the
/// transaction's id, as in [`INSERT_EVENTS`]. Answers the last position.
const INSERT_BATCH: &str = "WITH written AS ( \
     INSERT INTO events (position, stream, version, event_id, event_type, schema_version, \
         data, metadata, recorded_at) \
     SELECT (pg_current_xact_id()::text::bigint << 12) + e.ord - 1, e.stream, e.version, \
            e.id, e.ty, e.sv, e.data, e.meta, e.at \
     FROM unnest($1::text[], $2::int8[], $3::uuid[], $4::text[], $5::int4[], $6::text[], \
                 $7::text[], $8::timestamptz[]) \
          WITH ORDINALITY AS e(stream, version, id, ty, sv, data, meta, at, ord) \
     RETURNING position) \
     SELECT max(position) FROM written";

/// Events as one array per column, as the inserts' `unnest` takes them.
struct EventColumns<'a> {
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    data: Vec<&'a str>,
    metadata: Vec<&'a str>,
}

impl<'a> EventColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        EventColumns {
            ids: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            schema_versions: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, event: &'a NewEvent) {
        self.ids.push(event.event_id);
        self.types.push(event.event_type.as_str());
        self.schema_versions
            .push(i32::try_from(event.schema_version).unwrap_or(i32::MAX));
        self.data.push(event.data.as_str());
        self.metadata.push(event.metadata.as_str());
    }
}

/// An import transaction's streams, each once, in the order they first appear.
struct BatchPlan<'a> {
    names: Vec<&'a str>,
    /// The index in `names` of each append's stream.
    of_append: Vec<usize>,
    /// The index in `names` of each stream.
    index: HashMap<&'a str, usize>,
}

impl<'a> BatchPlan<'a> {
    fn of(batch: &'a [ImportAppend]) -> Self {
        let mut plan = BatchPlan {
            names: Vec::new(),
            of_append: Vec::with_capacity(batch.len()),
            index: HashMap::new(),
        };
        for append in batch {
            let next = plan.names.len();
            let k = *plan.index.entry(append.stream.as_str()).or_insert(next);
            if k == next {
                plan.names.push(append.stream.as_str());
            }
            plan.of_append.push(k);
        }
        plan
    }
}

/// What [`write_batch`] did inside its transaction.
enum BatchWritten {
    /// Everything is written, up to this position.
    Written(Position),
    /// An expected version does not hold; the transaction must be rolled back.
    Refused(StoreError),
    /// Another writer created one of the batch's new streams after its rows were read; the
    /// transaction must be rolled back and tried again (the stream is then read and locked).
    StreamCreated,
    /// An event id is already stored, or repeated in the batch; the transaction is aborted.
    IdClash(tokio_postgres::Error),
}

/// Writes an import transaction's appends in `tx` in four statements: the streams' rows are
/// locked and read, every expected version is checked against them (a stream appended to
/// twice counting its earlier appends), then the new streams' rows are inserted, the others'
/// versions set and all the events inserted.
async fn write_batch(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &[ImportAppend],
    plan: &BatchPlan<'_>,
) -> Result<BatchWritten, StoreError> {
    // In name order, so that two writers locking some of the same rows take them in one order.
    let statement = tx
        .prepare_cached(
            "SELECT name, version FROM streams WHERE name = ANY($1) ORDER BY name FOR UPDATE",
        )
        .await
        .map_err(pg_error)?;
    let rows = tx
        .query(&statement, &[&plan.names])
        .await
        .map_err(pg_error)?;
    let mut stored: Vec<Option<u64>> = vec![None; plan.names.len()];
    for row in &rows {
        let name: &str = row.get(0);
        if let Some(&k) = plan.index.get(name) {
            stored[k] = Some(to_u64(row.get(1))?);
        }
    }

    let n_events: usize = batch.iter().map(|append| append.events.len()).sum();
    let mut streams: Vec<&str> = Vec::with_capacity(n_events);
    let mut versions: Vec<i64> = Vec::with_capacity(n_events);
    let mut columns = EventColumns::with_capacity(n_events);
    let mut recorded_at: Vec<DateTime<Utc>> = Vec::with_capacity(n_events);
    let mut current: Vec<u64> = stored.iter().map(|v| v.unwrap_or(0)).collect();
    for (append, &k) in batch.iter().zip(&plan.of_append) {
        let actual = current[k];
        if !append.expected.accepts(actual) {
            return Ok(BatchWritten::Refused(StoreError::Conflict {
                stream: append.stream.clone(),
                expected: append.expected,
                actual,
            }));
        }
        for event in &append.events {
            current[k] += 1;
            streams.push(append.stream.as_str());
            versions.push(i64::try_from(current[k]).unwrap_or(i64::MAX));
            columns.push(event);
            recorded_at.push(append.recorded_at);
        }
    }

    let (mut new_names, mut new_versions) = (Vec::new(), Vec::new());
    let (mut old_names, mut old_versions) = (Vec::new(), Vec::new());
    for (k, name) in plan.names.iter().enumerate() {
        let version = i64::try_from(current[k]).unwrap_or(i64::MAX);
        if stored[k].is_some() {
            old_names.push(*name);
            old_versions.push(version);
        } else {
            new_names.push(*name);
            new_versions.push(version);
        }
    }
    if !new_names.is_empty() {
        let statement = tx
            .prepare_cached(
                "INSERT INTO streams (name, version) \
                 SELECT * FROM unnest($1::text[], $2::int8[]) ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(pg_error)?;
        let inserted = tx
            .execute(&statement, &[&new_names, &new_versions])
            .await
            .map_err(pg_error)?;
        if usize::try_from(inserted).ok() != Some(new_names.len()) {
            return Ok(BatchWritten::StreamCreated);
        }
    }
    if !old_names.is_empty() {
        // The rows are locked since they were read: each is there to be set.
        let statement = tx
            .prepare_cached(
                "UPDATE streams SET version = u.version \
                 FROM unnest($1::text[], $2::int8[]) AS u(name, version) \
                 WHERE streams.name = u.name",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(&statement, &[&old_names, &old_versions])
            .await
            .map_err(pg_error)?;
    }

    let statement = tx.prepare_cached(INSERT_BATCH).await.map_err(pg_error)?;
    let row = match tx
        .query_one(
            &statement,
            &[
                &streams,
                &versions,
                &columns.ids,
                &columns.types,
                &columns.schema_versions,
                &columns.data,
                &columns.metadata,
                &recorded_at,
            ],
        )
        .await
    {
        Ok(row) => row,
        // The stream versions are checked above, so an event id clashes.
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Ok(BatchWritten::IdClash(err));
        }
        Err(err) => return Err(pg_error(err)),
    };
    let last: Option<i64> = row.get(0);
    let last = last.ok_or_else(|| StoreError::Backend("an import wrote no event".into()))?;
    Ok(BatchWritten::Written(Position(to_u64(last)?)))
}

/// After [`BatchWritten::IdClash`]: the refusal naming the first event of `batch` whose id
/// is stored or came earlier in the batch, and its stream; `None` if none is (so something
/// else clashed).
async fn find_id_clash(
    client: &deadpool_postgres::Client,
    batch: &[ImportAppend],
) -> Result<Option<StoreError>, StoreError> {
    let ids: Vec<Uuid> = batch
        .iter()
        .flat_map(|append| append.events.iter().map(|event| event.event_id))
        .collect();
    let rows = client
        .query(
            "SELECT event_id FROM events WHERE event_id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(pg_error)?;
    let stored: HashSet<Uuid> = rows.iter().map(|row| row.get(0)).collect();
    let mut seen = HashSet::with_capacity(ids.len());
    for append in batch {
        for event in &append.events {
            if stored.contains(&event.event_id) || !seen.insert(event.event_id) {
                return Ok(Some(StoreError::IdMismatch {
                    stream: append.stream.clone(),
                    event_id: event.event_id,
                }));
            }
        }
    }
    Ok(None)
}

/// If `events` were all stored, in order, as one append to `stream`: that append's result.
/// `None` when the first id is not stored; an [`StoreError::IdMismatch`] when some are, but
/// not so.
async fn find_resend(
    client: &deadpool_postgres::Client,
    stream: &str,
    events: &[NewEvent],
) -> Result<Option<AppendResult>, StoreError> {
    let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    let rows = client
        .query(
            "SELECT event_id, stream, version, position FROM events WHERE event_id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(pg_error)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let stored: std::collections::HashMap<Uuid, (String, i64, i64)> = rows
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3))))
        .collect();
    let mismatch = |event_id| StoreError::IdMismatch {
        stream: stream.to_owned(),
        event_id,
    };
    if !stored.contains_key(&events[0].event_id) {
        // Not a re-send: a later id clashes with one stored elsewhere.
        let clash = events
            .iter()
            .find(|event| stored.contains_key(&event.event_id))
            .map_or(events[0].event_id, |event| event.event_id);
        return Err(mismatch(clash));
    }
    let mut previous: Option<i64> = None;
    let mut result = None;
    for event in events {
        let Some((in_stream, version, position)) = stored.get(&event.event_id) else {
            return Err(mismatch(event.event_id));
        };
        if in_stream != stream || previous.is_some_and(|p| p + 1 != *version) {
            return Err(mismatch(event.event_id));
        }
        previous = Some(*version);
        result = Some(AppendResult {
            version: to_u64(*version)?,
            position: Position(to_u64(*position)?),
        });
    }
    Ok(result)
}

async fn stream_version(
    client: &deadpool_postgres::Client,
    stream: &str,
) -> Result<u64, StoreError> {
    let statement = client
        .prepare_cached("SELECT version FROM streams WHERE name = $1")
        .await
        .map_err(pg_error)?;
    let row = client
        .query_opt(&statement, &[&stream])
        .await
        .map_err(pg_error)?;
    row.map_or(Ok(0), |row| to_u64(row.get(0)))
}

async fn read_all(
    pool: &Pool,
    after: Position,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let client = pool.get().await.map_err(pool_error)?;
    let statement = client
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 AND position < {HORIZON} \
             ORDER BY position LIMIT $2"
        ))
        .await
        .map_err(pg_error)?;
    let after = i64::try_from(after.0).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(&statement, &[&after, &limit])
        .await
        .map_err(pg_error)?;
    rows.iter().map(recorded).collect()
}

/// The head as one snapshot sees it.
struct Head {
    /// The highest position below the horizon.
    visible: Position,
    /// Whether committed events wait above it (below an older transaction still open).
    lagging: bool,
}

async fn read_head(pool: &Pool) -> Result<Head, StoreError> {
    let client = pool.get().await.map_err(pool_error)?;
    let statement = client
        .prepare_cached(&format!(
            "SELECT coalesce((SELECT max(position) FROM events WHERE position < {HORIZON}), 0), \
                    coalesce((SELECT max(position) FROM events), 0)"
        ))
        .await
        .map_err(pg_error)?;
    let row = client.query_one(&statement, &[]).await.map_err(pg_error)?;
    let visible: i64 = row.get(0);
    let highest: i64 = row.get(1);
    Ok(Head {
        visible: Position(to_u64(visible)?),
        lagging: highest > visible,
    })
}

/// Publishes the head whenever something may have moved it (see the module's layout).
async fn watch_horizon(pool: Pool, wake: Arc<Wake>, head: watch::Sender<Position>) {
    let mut lagging = false;
    loop {
        let pause = if lagging { LAGGING_POLL } else { IDLE_POLL };
        let _ = tokio::time::timeout(pause, wake.watcher.notified()).await;
        match read_head(&pool).await {
            Ok(now) => {
                lagging = now.lagging;
                head.send_if_modified(|head| {
                    let moved = now.visible > *head;
                    if moved {
                        *head = now.visible;
                    }
                    moved
                });
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not read the event store's head");
                lagging = false;
            }
        }
    }
}

/// Keeps a connection listening to [`CHANNEL`], reconnecting when it drops; each notification
/// wakes the horizon watcher.
async fn listen(config: tokio_postgres::Config, wake: Arc<Wake>) {
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
            let notified = wake.clone();
            let driver = tokio::spawn(async move {
                while let Some(message) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    match message {
                        Ok(AsyncMessage::Notification(_)) => notified.watcher.notify_one(),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .is_ok()
            {
                // What committed while no one listened.
                wake.watcher.notify_one();
                let _ = driver.await;
            } else {
                driver.abort();
            }
        }
        tokio::time::sleep(IDLE_POLL).await;
    }
}

/// Tells the other instances that something committed: one notification for all the commits
/// made since the last one was sent.
async fn announce(pool: Pool, wake: Arc<Wake>) {
    loop {
        wake.announcer.notified().await;
        if let Ok(client) = pool.get().await {
            let _ = client
                .execute("SELECT pg_notify($1, '')", &[&CHANNEL])
                .await;
        }
    }
}

/// Brings the schema up to date, one instance at a time; returns the store's id.
async fn migrate(pool: &Pool, place: &str) -> Result<Uuid, StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    // Any fixed key: instances opening the same store at once take turns here.
    tx.execute("SELECT pg_advisory_xact_lock(7336151012345)", &[])
        .await
        .map_err(pg_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS store_schema (version integer NOT NULL)")
        .await
        .map_err(pg_error)?;
    let applied: i64 = match tx
        .query_opt("SELECT version FROM store_schema", &[])
        .await
        .map_err(pg_error)?
    {
        Some(row) => i64::from(row.get::<_, i32>(0)),
        None => {
            tx.execute("INSERT INTO store_schema (version) VALUES (0)", &[])
                .await
                .map_err(pg_error)?;
            0
        }
    };
    let known = count(MIGRATIONS.len());
    if applied > known {
        return Err(StoreError::Backend(Cause::new(format!(
            "the event store at {place} has schema version {applied}, newer than this build's \
             {known}: run a newer minqing"
        ))));
    }
    for (n, migration) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(applied).unwrap_or(0))
    {
        tx.batch_execute(migration).await.map_err(pg_error)?;
        let version = i32::try_from(n + 1).unwrap_or(i32::MAX);
        tx.execute("UPDATE store_schema SET version = $1", &[&version])
            .await
            .map_err(pg_error)?;
    }
    let store_id: Uuid = tx
        .query_one("SELECT store_id FROM store_schema", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    tx.commit().await.map_err(pg_error)?;
    Ok(store_id)
}

fn recorded(row: &Row) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        position: Position(to_u64(row.get(0))?),
        stream: row.get(1),
        version: to_u64(row.get(2))?,
        event_id: row.get(3),
        event_type: row.get(4),
        schema_version: u32::try_from(row.get::<_, i32>(5))
            .map_err(|_| StoreError::Backend("a negative schema version is stored".into()))?,
        data: row.get(6),
        metadata: row.get(7),
        recorded_at: row.get(8),
    })
}

fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("a negative number is stored: {value}").into()))
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn too_many(n: usize) -> StoreError {
    StoreError::Backend(Cause::new(format!(
        "an append carries {n} events; the PostgreSQL store takes at most \
         {MAX_EVENTS_PER_TRANSACTION} in one transaction"
    )))
}

/// `prefix` with LIKE's wildcards and escape character taken literally.
fn escape_like(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Host, port and database of `config`, for messages: never the user's password.
fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("(the user's database)");
    format!("postgres://{host}:{port}/{database}")
}

/// Whether an error of the server or the connection is worth trying again later: the server
/// is away, starting, shutting down, out of space or connections, or the connection broke.
fn is_unavailable(err: &tokio_postgres::Error) -> bool {
    let Some(code) = err.code() else {
        // No SQLSTATE: the connection itself failed (refused, reset, closed).
        return true;
    };
    let class = &code.code()[..2];
    matches!(class, "08" | "53" | "57" | "58")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
}

fn pg_error(err: tokio_postgres::Error) -> StoreError {
    let message = format!("PostgreSQL: {}", explain(&err));
    if is_unavailable(&err) {
        StoreError::Unavailable(Cause::with(message, err))
    } else {
        StoreError::Backend(Cause::with(message, err))
    }
}

/// The server's message (and SQLSTATE) of an error, or its chain of causes: the client's own
/// `Display` says only "db error".
fn explain(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A failed commit: whether it happened is unknown, so it is never reported as "nothing was
/// appended" ([`StoreError::Unavailable`]) but as a backend failure worth re-sending
/// ([`Cause::transient`]): the same ids return the first result if the commit happened.
fn commit_error(err: tokio_postgres::Error) -> StoreError {
    let message = format!("PostgreSQL commit, outcome unknown: {}", explain(&err));
    StoreError::Backend(Cause::with(message, err).transient())
}

fn pool_error(err: deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    match err {
        PoolError::Backend(err) => pg_error(err),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("PostgreSQL: no connection within 5 s".into())
        }
        other => StoreError::Unavailable(Cause::with(format!("PostgreSQL: {other}"), other)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A throwaway schema on the test server; dropped (with its tables) on drop.
    pub struct Schema {
        admin_url: String,
        name: String,
    }

    impl Schema {
        /// The URL of a store in this schema.
        pub fn url(&self) -> String {
            with_search_path(&self.admin_url, &self.name)
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            let url = self.admin_url.clone();
            let name = self.name.clone();
            // A runtime of its own: the test's may be shutting down.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await {
                        tokio::spawn(connection);
                        let _ = client
                            .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                            .await;
                    }
                });
            })
            .join();
        }
    }

    /// The test server's URL: `MINQING_TEST_POSTGRES_URL`, which `scripts/test` sets after
    /// starting a throwaway server. A build with the `postgres` feature fails its tests
    /// without one rather than skip them.
    pub fn server_url() -> String {
        std::env::var("MINQING_TEST_POSTGRES_URL").expect(
            "MINQING_TEST_POSTGRES_URL is not set: the postgres tests need a server \
             (scripts/test starts one)",
        )
    }

    /// A new empty schema on the test server.
    pub async fn fresh_schema() -> Schema {
        let admin_url = server_url();
        let name = format!("t_{}", Uuid::new_v4().simple());
        let (client, connection) = tokio_postgres::connect(&admin_url, NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create a schema");
        Schema { admin_url, name }
    }

    /// `url` with its search path set to `schema` (libpq's `options`).
    pub fn with_search_path(url: &str, schema: &str) -> String {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-csearch_path%3D{schema}")
    }

    async fn fresh_store() -> (PostgresStore, Schema) {
        let schema = fresh_schema().await;
        let store = PostgresStore::open(&schema.url())
            .await
            .expect("open the store");
        (store, schema)
    }

    crate::store::contract::contract_tests!(fresh_store().await);

    /// Two handles on one fresh schema, as two instances open it.
    async fn fresh_pair() -> (PostgresStore, PostgresStore, Schema) {
        let schema = fresh_schema().await;
        let a = PostgresStore::open(&schema.url()).await.expect("open a");
        let b = PostgresStore::open(&schema.url()).await.expect("open b");
        (a, b, schema)
    }

    crate::store::contract::contract_tests!(shared: [] fresh_pair().await);

    /// The famous bug of SQL event stores, set up on purpose: a transaction takes a position,
    /// stays open while a later one commits a higher position, then commits. A subscriber
    /// that followed the highest committed number would have passed the first for good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_committing_after_a_later_numbered_one_is_not_skipped() {
        use crate::store::contract::{PATIENCE, events};
        let (store, _schema) = fresh_store().await;
        let store = Arc::new(store);
        let mut subscription = store.subscribe(Position::START);

        let mut slow_client = store.pool.get().await.unwrap();
        let slow = slow_client.transaction().await.unwrap();
        let slow_events = events(1);
        let Written::Appended(first) = write_append(
            &slow,
            "case-slow",
            ExpectedVersion::NoStream,
            &slow_events,
            0,
            Utc::now(),
        )
        .await
        .unwrap() else {
            panic!("the slow append was refused")
        };
        let fast = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append("case-fast", ExpectedVersion::NoStream, events(1))
                    .await
                    .unwrap()
            })
        };
        // The later transaction commits; its event must wait behind the open one.
        let waiting = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await;
        assert!(
            waiting.is_err(),
            "delivered past an open transaction: {waiting:?}"
        );
        let committed: i64 = store
            .pool
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT count(*) FROM events WHERE stream = 'case-fast'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(committed, 1, "the later append has committed meanwhile");

        slow.commit().await.unwrap();
        let second = tokio::time::timeout(PATIENCE, fast).await.unwrap().unwrap();
        assert!(first.position < second.position);
        let delivered: Vec<Position> = [
            tokio::time::timeout(PATIENCE, subscription.next())
                .await
                .unwrap()
                .unwrap(),
            tokio::time::timeout(PATIENCE, subscription.next())
                .await
                .unwrap()
                .unwrap(),
        ]
        .iter()
        .map(|event| event.position)
        .collect();
        assert_eq!(delivered, vec![first.position, second.position]);
    }

    /// One holder at a time; a holder whose connection dies (a process killed) loses the
    /// lease, and another takes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_has_one_holder_and_passes_on_when_it_dies() {
        use crate::store::contract::PATIENCE;
        let schema = fresh_schema().await;
        let a = PostgresStore::open(&schema.url()).await.unwrap();
        let b = PostgresStore::open(&schema.url()).await.unwrap();
        let mut held = a.try_lease("jobs").await.unwrap().expect("a free lease");
        assert!(b.try_lease("jobs").await.unwrap().is_none(), "two holders");
        assert!(
            b.try_lease("other").await.unwrap().is_some(),
            "leases are by name"
        );

        // Dropped: released at once.
        drop(held);
        let mut taken = None;
        for _ in 0..100 {
            taken = b.try_lease("jobs").await.unwrap();
            if taken.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut by_b = taken.expect("b took the released lease");
        assert!(a.try_lease("jobs").await.unwrap().is_none());

        // The holder's connection is killed (as when its process dies): it learns it lost
        // the lease, and a takes it over.
        let admin = a.pool.get().await.unwrap();
        let killed = admin
            .execute(
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks \
                     WHERE locktype = 'advisory' AND granted \
                     AND ((classid::bigint << 32) | objid::bigint) = {LEASE_KEY}"
                ),
                &[&"jobs"],
            )
            .await
            .unwrap();
        assert_eq!(killed, 1, "the lease's one connection");
        tokio::time::timeout(PATIENCE, by_b.lost())
            .await
            .expect("the holder never learnt it lost the lease");
        held = loop {
            if let Some(lease) = a.try_lease("jobs").await.unwrap() {
                break lease;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        drop(held);
    }

    /// An import append of `n` events unlike each other in every field (type, schema
    /// version, data, metadata), recorded at `at_micros` after a fixed instant.
    fn import_append(
        stream: &str,
        expected: ExpectedVersion,
        n: usize,
        at_micros: i64,
    ) -> ImportAppend {
        let events = (0..n)
            .map(|i| NewEvent {
                event_id: Uuid::new_v4(),
                event_type: format!("Noted{}", i % 3),
                schema_version: u32::try_from(i % 4 + 1).unwrap(),
                data: format!(r#"{{"stream":"{stream}","i":{i},"text":"市民来电 — \"噪音\""}}"#),
                metadata: format!(r#"{{"actor":"operator-{i}"}}"#),
            })
            .collect();
        ImportAppend {
            stream: stream.to_owned(),
            expected,
            events,
            recorded_at: DateTime::from_timestamp_micros(1_735_689_600_123_456 + at_micros)
                .unwrap(),
        }
    }

    /// The events `appends` should leave in a store that held `before` (stream → version)
    /// before them, in order, without their positions.
    fn expected_log(appends: &[ImportAppend], before: &[(&str, u64)]) -> Vec<RecordedEvent> {
        let mut versions: HashMap<String, u64> = before
            .iter()
            .map(|(stream, version)| ((*stream).to_owned(), *version))
            .collect();
        let mut log = Vec::new();
        for append in appends {
            let version = versions.entry(append.stream.clone()).or_default();
            for event in &append.events {
                *version += 1;
                log.push(RecordedEvent {
                    position: Position::START,
                    stream: append.stream.clone(),
                    version: *version,
                    event_id: event.event_id,
                    event_type: event.event_type.clone(),
                    schema_version: event.schema_version,
                    data: event.data.clone(),
                    metadata: event.metadata.clone(),
                    recorded_at: append.recorded_at,
                });
            }
        }
        log
    }

    fn without_positions(events: &[RecordedEvent]) -> Vec<RecordedEvent> {
        events
            .iter()
            .map(|event| RecordedEvent {
                position: Position::START,
                ..event.clone()
            })
            .collect()
    }

    /// Many streams in one transaction, new and existing, one of them appended to twice:
    /// every event is stored as given, field by field, with consecutive positions of one
    /// transaction, and appends carry on after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_import_writes_many_streams_in_one_transaction_as_given() {
        use crate::store::contract::{events, everything};
        let (store, _schema) = fresh_store().await;
        let first = store
            .append("case-0", ExpectedVersion::NoStream, events(2))
            .await
            .unwrap();
        let mut batch = vec![
            import_append("case-1", ExpectedVersion::NoStream, 3, 0),
            import_append("case-0", ExpectedVersion::Exact(2), 1, 1),
        ];
        for n in 2..60_usize {
            let expected = if n % 2 == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(0)
            };
            let at = i64::try_from(n).unwrap();
            batch.push(import_append(&format!("case-{n}"), expected, n % 5 + 1, at));
            if n == 30 {
                // The same stream again, after others: its versions go on from the first.
                batch.push(import_append("case-1", ExpectedVersion::Exact(3), 2, 100));
            }
        }
        batch.push(import_append("case-1", ExpectedVersion::Any, 1, 101));
        let expected = expected_log(&batch, &[("case-0", 2)]);

        let last = store.import(batch).await.unwrap();

        let all = everything(&store).await;
        assert_eq!(all.len(), 2 + expected.len());
        let imported = &all[2..];
        assert_eq!(without_positions(imported), expected);
        // One transaction: one id above the shift, indexes 0, 1, 2, … below it.
        let transaction = imported[0].position.0 >> TX_SHIFT;
        assert!(transaction > first.position.0 >> TX_SHIFT);
        for (i, event) in imported.iter().enumerate() {
            assert_eq!(
                event.position.0,
                (transaction << TX_SHIFT) + u64::try_from(i).unwrap()
            );
        }
        assert_eq!(last, imported.last().unwrap().position);
        assert!(store.head() >= last);

        let case_1 = store.read_stream("case-1", 1).await.unwrap();
        let in_log: Vec<RecordedEvent> = imported
            .iter()
            .filter(|event| event.stream == "case-1")
            .cloned()
            .collect();
        assert_eq!(case_1, in_log);
        assert_eq!(
            case_1.iter().map(|event| event.version).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        assert_eq!(store.read_stream("case-0", 3).await.unwrap().len(), 1);
        assert_eq!(store.stream_version("case-0").await.unwrap(), 3);
        assert_eq!(store.stream_version("case-1").await.unwrap(), 6);
        assert_eq!(store.stream_version("case-59").await.unwrap(), 5);
        let written = store
            .append("case-1", ExpectedVersion::Exact(6), events(1))
            .await
            .unwrap();
        assert_eq!(written.version, 7);
        assert!(written.position > last);
    }

    /// An import larger than one transaction is cut between appends; each transaction has
    /// positions of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_import_larger_than_a_transaction_takes_several() {
        use crate::store::contract::everything;
        let (store, _schema) = fresh_store().await;
        let batch = vec![
            import_append("case-1", ExpectedVersion::NoStream, 2000, 0),
            import_append("case-2", ExpectedVersion::NoStream, 2000, 1),
            import_append("case-1", ExpectedVersion::Exact(2000), 2000, 2),
        ];
        let expected = expected_log(&batch, &[]);
        let last = store.import(batch).await.unwrap();
        let all = everything(&store).await;
        assert_eq!(without_positions(&all), expected);
        assert_eq!(last, all.last().unwrap().position);
        let transactions: Vec<u64> = all.iter().map(|e| e.position.0 >> TX_SHIFT).collect();
        assert_eq!(transactions[0], transactions[3999]);
        assert!(transactions[4000] > transactions[3999]);
        assert_eq!(transactions[4000], transactions[5999]);
        assert_eq!(store.stream_version("case-1").await.unwrap(), 4000);
    }

    /// A wrong expected version anywhere in a transaction refuses it whole, naming the
    /// stream and the version it is at (counting the transaction's earlier appends to it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflicting_import_is_refused_with_nothing_written() {
        use crate::store::contract::{events, everything};
        let (store, _schema) = fresh_store().await;
        store
            .append("case-1", ExpectedVersion::NoStream, events(1))
            .await
            .unwrap();
        let before = everything(&store).await;
        let refusals = [
            (
                vec![
                    import_append("case-new", ExpectedVersion::NoStream, 2, 0),
                    import_append("case-1", ExpectedVersion::Exact(1), 1, 1),
                    import_append("case-1", ExpectedVersion::NoStream, 1, 2),
                ],
                ("case-1", ExpectedVersion::NoStream, 2),
            ),
            (
                vec![
                    import_append("case-new", ExpectedVersion::NoStream, 2, 0),
                    import_append("case-1", ExpectedVersion::Exact(5), 1, 1),
                ],
                ("case-1", ExpectedVersion::Exact(5), 1),
            ),
            (
                vec![
                    import_append("case-new", ExpectedVersion::NoStream, 2, 0),
                    import_append("case-other", ExpectedVersion::NoStream, 1, 1),
                    import_append("case-new", ExpectedVersion::Exact(1), 1, 2),
                ],
                ("case-new", ExpectedVersion::Exact(1), 2),
            ),
        ];
        for (batch, (stream, expected, actual)) in refusals {
            match store.import(batch).await {
                Err(StoreError::Conflict {
                    stream: s,
                    expected: e,
                    actual: a,
                }) => assert_eq!((s.as_str(), e, a), (stream, expected, actual)),
                other => panic!("{other:?}"),
            }
            assert_eq!(everything(&store).await, before);
            assert_eq!(store.stream_version("case-new").await.unwrap(), 0);
            assert_eq!(store.stream_version("case-other").await.unwrap(), 0);
            assert_eq!(store.stream_version("case-1").await.unwrap(), 1);
        }
        // The rows are not left locked: the same streams take appends and imports.
        store
            .append("case-1", ExpectedVersion::Exact(1), events(1))
            .await
            .unwrap();
        store
            .import(vec![import_append(
                "case-new",
                ExpectedVersion::NoStream,
                1,
                0,
            )])
            .await
            .unwrap();
        assert_eq!(store.stream_version("case-new").await.unwrap(), 1);
    }

    /// An event id already stored, or repeated in the transaction, refuses it whole, naming
    /// the event and its stream.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_import_with_a_clashing_event_id_is_refused_with_nothing_written() {
        use crate::store::contract::{events, everything};
        let (store, _schema) = fresh_store().await;
        let stored = store
            .append("case-1", ExpectedVersion::NoStream, events(1))
            .await
            .unwrap();
        let before = everything(&store).await;
        let stored_id = before[0].event_id;

        let mut clash = vec![
            import_append("case-3", ExpectedVersion::NoStream, 2, 0),
            import_append("case-1", ExpectedVersion::Exact(1), 1, 1),
            import_append("case-4", ExpectedVersion::NoStream, 3, 2),
        ];
        clash[2].events[1].event_id = stored_id;
        let err = store.import(clash).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::IdMismatch { stream, event_id }
                if stream == "case-4" && *event_id == stored_id),
            "{err:?}"
        );

        let mut repeated = vec![
            import_append("case-5", ExpectedVersion::NoStream, 2, 0),
            import_append("case-6", ExpectedVersion::NoStream, 2, 1),
        ];
        let twice = repeated[0].events[1].event_id;
        repeated[1].events[0].event_id = twice;
        let err = store.import(repeated).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::IdMismatch { stream, event_id }
                if stream == "case-6" && *event_id == twice),
            "{err:?}"
        );

        assert_eq!(everything(&store).await, before);
        for stream in ["case-3", "case-4", "case-5", "case-6"] {
            assert_eq!(store.stream_version(stream).await.unwrap(), 0, "{stream}");
        }
        assert_eq!(store.stream_version("case-1").await.unwrap(), 1);
        let next = store
            .append("case-1", ExpectedVersion::Exact(1), events(1))
            .await
            .unwrap();
        assert!(next.position > stored.position);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_or_oversized_append_in_an_import_is_refused() {
        use crate::store::contract::everything;
        let (store, _schema) = fresh_store().await;
        let mut empty = vec![import_append("case-1", ExpectedVersion::NoStream, 1, 0)];
        empty.push(ImportAppend {
            events: Vec::new(),
            ..import_append("case-2", ExpectedVersion::NoStream, 1, 1)
        });
        assert!(matches!(store.import(empty).await, Err(StoreError::Empty)));
        let oversized = vec![import_append(
            "case-3",
            ExpectedVersion::NoStream,
            MAX_EVENTS_PER_TRANSACTION + 1,
            0,
        )];
        let err = store.import(oversized).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend(cause) if cause.to_string().contains("at most 4096")),
            "{err:?}"
        );
        assert!(everything(&store).await.is_empty());
    }

    /// Another writer creates one of an import's new streams while the import waits to
    /// insert it: the import is tried again on the stream as it now is (a conflict for an
    /// exact expectation, a later version for `Any`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_created_while_an_import_waits_is_checked_again() {
        use crate::store::contract::{PATIENCE, events, everything};
        let (store, _schema) = fresh_store().await;
        let store = Arc::new(store);
        for (expected, outcome) in [
            (ExpectedVersion::NoStream, None),
            (ExpectedVersion::Any, Some(2)),
        ] {
            let stream = format!("case-race-{}", Uuid::new_v4().simple());
            let mut other_client = store.pool.get().await.unwrap();
            let other = other_client.transaction().await.unwrap();
            let other_xid: String = other
                .query_one("SELECT pg_current_xact_id()::text", &[])
                .await
                .unwrap()
                .get(0);
            let Written::Appended(_) = write_append(
                &other,
                &stream,
                ExpectedVersion::NoStream,
                &events(1),
                0,
                Utc::now(),
            )
            .await
            .unwrap() else {
                panic!("the other append was refused")
            };
            let import = {
                let store = store.clone();
                let batch = vec![
                    import_append("case-bystander", ExpectedVersion::Any, 1, 0),
                    import_append(&stream, expected, 1, 1),
                ];
                tokio::spawn(async move { store.import(batch).await })
            };
            // The import waits on the other's uncommitted row.
            let watcher = store.pool.get().await.unwrap();
            let deadline = std::time::Instant::now() + PATIENCE;
            loop {
                let waiting: i64 = watcher
                    .query_one(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted \
                         AND locktype = 'transactionid' AND transactionid::text = $1",
                        &[&other_xid],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if waiting > 0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the import never waited"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other.commit().await.unwrap();
            let res = tokio::time::timeout(PATIENCE, import)
                .await
                .unwrap()
                .unwrap();
            match (outcome, res) {
                (
                    None,
                    Err(StoreError::Conflict {
                        stream: s, actual, ..
                    }),
                ) => {
                    assert_eq!((s, actual), (stream.clone(), 1));
                }
                (Some(version), Ok(_)) => {
                    assert_eq!(store.stream_version(&stream).await.unwrap(), version);
                    let events = store.read_stream(&stream, 1).await.unwrap();
                    assert_eq!(
                        events.iter().map(|e| e.version).collect::<Vec<_>>(),
                        vec![1, 2]
                    );
                }
                (outcome, res) => panic!("{outcome:?}: {res:?}"),
            }
        }
        // The refused import left nothing: the bystander has only the second one's event.
        assert_eq!(store.stream_version("case-bystander").await.unwrap(), 1);
        assert_eq!(everything(&*store).await.len(), 4);
    }

    #[test]
    fn like_wildcards_in_a_prefix_are_taken_literally() {
        assert_eq!(escape_like("case-2026_1%\\"), "case-2026\\_1\\%\\\\");
        assert_eq!(escape_like("案件-"), "案件-");
    }

    #[test]
    fn the_place_of_a_store_never_shows_its_password() {
        let config =
            tokio_postgres::Config::from_str("postgres://minqing:s3cret@db.example:6543/hotline")
                .unwrap();
        let place = describe(&config);
        assert_eq!(place, "postgres://db.example:6543/hotline");
        assert!(!place.contains("s3cret"));
    }

    #[test]
    fn a_malformed_url_is_refused_without_echoing_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(PostgresStore::open(
                "postgres://minqing:s3cret@db:notaport/x",
            ))
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        // The parser's own error is kept for a caller that looks closer.
        assert!(
            err.driver_error()
                .and_then(|e| e.downcast_ref::<tokio_postgres::Error>())
                .is_some(),
            "{err:?}"
        );
        assert_eq!(err.retry(), crate::store::Retry::No);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_server_is_unavailable_not_a_failure() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = PostgresStore::open(&format!("postgres://minqing@127.0.0.1:{port}/x"))
            .await
            .unwrap_err();
        assert!(err.is_storage_unavailable(), "{err:?}");
    }
}
