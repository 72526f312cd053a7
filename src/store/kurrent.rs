//! The KurrentDB event store (cargo feature `kurrentdb`): a KurrentDB server or cluster, through
//! the maintainers' gRPC client (`kurrentdb`, continued from `eventstore`), that several
//! instances share. `--store kurrentdb://host:2113?tls=false` (or `esdb://…`, any scheme the
//! client takes) selects it.
//!
//! # How the port maps onto KurrentDB
//!
//! - **Streams.** A deployment's streams live under a scope, a stream-name prefix (`minqing:`),
//!   so `$all` is read with a server-side filter on it: system events (`$`-streams) and
//!   anything else on the server are never seen. The store's own bookkeeping (its identity,
//!   leases) lives beside the scope, not in it (`minqing-store`, `minqing-lease:…`).
//! - **Versions.** The port's version counts events (the first is 1); KurrentDB's revision
//!   numbers them from 0. [`stream_state`] and [`version_after`] translate.
//! - **Positions.** KurrentDB's `$all` position is a commit/prepare pair. The two differ only
//!   for events written in an explicit transaction, which the gRPC API cannot write; for every
//!   other event they are equal. [`to_position`] checks both halves and keeps the commit
//!   position, plus one (so [`Position::START`] stays before every event); an event whose
//!   halves differ is refused with a backend error rather than given a position that could
//!   collide. [`from_position`] is the inverse, for reading and subscribing after a position.
//! - **Idempotency.** KurrentDB recognises a re-sent append only on a best-effort cache, and
//!   event ids are not unique across streams. So the backend always sends an expected
//!   revision (never "any"): an `Any` append reads the stream first, and a refused append reads
//!   the stream to find whether its ids are already there, in order (the original result) or
//!   out of it ([`StoreError::IdMismatch`]). An id stored in another stream is not seen: the
//!   contract's cross-stream id checks do not hold here, and the contract suite leaves them
//!   out for this backend, saying so.
//! - **Schema versions and metadata** travel in the event's custom metadata, as
//!   [`Envelope`]; the payload is the event's data as given.
//! - **Head and subscriptions.** A `$all` catch-up subscription (filtered to the scope,
//!   exclusive start) follows every writer's commits into the head watch; [`Subscription`]s
//!   and `wait_for` follow that watch and read with `read_all`, as on every backend.
//! - **Leases** are a stream per lease appended with the expected revision: taken when the
//!   last holder's term ran out or it let go, renewed well within the term, and lost the
//!   moment a renewal fails for longer than half a term. Holders' clocks must agree to within
//!   a few seconds.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, ReadAllOptions,
    ReadStreamOptions, StreamPosition, StreamState, SubscribeToAllOptions, SubscriptionFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{
    AppendResult, Cause, EventStore, ExpectedVersion, Lease, NewEvent, Position, ReadAll,
    ReadAllFuture, RecordedEvent, StoreError, Subscription,
};

/// The scope of a deployment's streams on the server.
const DEFAULT_BASE: &str = "minqing";

/// The longest a read or an append may take before it counts as failed (an append's outcome
/// is then unknown: re-send it).
const CALL_PATIENCE: Duration = Duration::from_secs(10);

/// How long a lease lasts without renewal.
const LEASE_TERM: Duration = Duration::from_secs(15);

/// How often a holder renews its lease.
const LEASE_RENEWAL: Duration = Duration::from_secs(4);

/// Events in one lease stream kept by the server (older ones are scavenged).
const LEASE_HISTORY: u64 = 16;

/// The KurrentDB event store.
///
/// Dropping it stops its head follower; subscriptions then end once they have delivered what
/// was committed.
pub struct KurrentStore {
    client: Client,
    names: Names,
    head: watch::Receiver<Position>,
    follower: JoinHandle<()>,
    /// The hosts, without credentials, for messages.
    place: String,
    /// Made with the store: names it among all.
    store_id: Uuid,
}

/// Where a deployment's streams and its bookkeeping live on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Names {
    /// The prefix of every stream of the log, e.g. `minqing:`.
    scope: String,
    /// The stream holding the store's identity.
    identity: String,
    /// The prefix of lease streams.
    leases: String,
}

impl Names {
    fn new(base: &str) -> Self {
        Names {
            scope: format!("{base}:"),
            identity: format!("{base}-store"),
            leases: format!("{base}-lease:"),
        }
    }

    /// The server's name of the log's stream `stream`.
    fn stream(&self, stream: &str) -> String {
        format!("{}{stream}", self.scope)
    }

    /// The log's name of the server's stream `name`, if it belongs to the log.
    fn unscoped<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(&self.scope)
    }

    /// A filter on `$all` keeping the log's streams whose name starts with `prefix`.
    fn filter(&self, prefix: &str) -> SubscriptionFilter {
        SubscriptionFilter::on_stream_name().add_prefix(self.stream(prefix))
    }
}

/// What an event's custom metadata carries: the payload's schema version and the port's
/// metadata, kept as given (inline when it is JSON, as text otherwise).
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<'a> {
    /// [`NewEvent::schema_version`].
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// [`NewEvent::metadata`], when it is JSON.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a RawValue>,
    /// [`NewEvent::metadata`], when it is not.
    #[serde(
        rename = "metadataText",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata_text: Option<String>,
}

/// The custom metadata of `event`.
pub fn envelope(event: &NewEvent) -> Vec<u8> {
    let inline: Option<&RawValue> = serde_json::from_str(&event.metadata).ok();
    let envelope = Envelope {
        schema_version: event.schema_version,
        metadata: inline,
        metadata_text: inline.is_none().then(|| event.metadata.clone()),
    };
    serde_json::to_vec(&envelope).unwrap_or_else(|_| unreachable!("an envelope serialises"))
}

/// The schema version and metadata text that [`envelope`] put in `bytes`.
///
/// # Errors
/// The bytes are not an envelope (an event written by something else).
pub fn open_envelope(bytes: &[u8]) -> Result<(u32, String), StoreError> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(|err| {
        StoreError::Backend(Cause::with(
            "an event's custom metadata is not Minqing's envelope",
            err,
        ))
    })?;
    let metadata = match (envelope.metadata, envelope.metadata_text) {
        (Some(raw), _) => raw.get().to_owned(),
        (None, Some(text)) => text,
        (None, None) => String::new(),
    };
    Ok((envelope.schema_version, metadata))
}

/// The stream state KurrentDB checks for a port expectation. `Any` has no exact state; the
/// caller reads the stream's version first and passes `Exact`.
pub fn stream_state(expected: ExpectedVersion) -> StreamState {
    match expected {
        ExpectedVersion::Any => StreamState::Any,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => StreamState::NoStream,
        ExpectedVersion::Exact(version) => StreamState::StreamRevision(version - 1),
    }
}

/// The port's version of a stream whose last event has KurrentDB revision `revision`.
pub fn version_after(revision: u64) -> u64 {
    revision.saturating_add(1)
}

/// The port's version of a stream in KurrentDB's `current` state.
pub fn version_of(current: CurrentRevision) -> u64 {
    match current {
        CurrentRevision::NoStream => 0,
        CurrentRevision::Current(revision) => version_after(revision),
    }
}

/// The port's position of the event at `position` in `$all`.
///
/// # Errors
/// The commit and prepare halves differ (an explicit transaction's event, which one number
/// cannot name without risking a collision), or the server sent no position (a stream read
/// from a server older than 22.6, or the client's "no position" marker).
pub fn to_position(position: kurrentdb::Position) -> Result<Position, StoreError> {
    if position.commit == u64::MAX || position.prepare == u64::MAX {
        return Err(StoreError::Backend(Cause::new(
            "KurrentDB gave an event without its $all position (servers before 22.6 leave it \
             out of stream reads)",
        )));
    }
    if position.commit != position.prepare {
        return Err(StoreError::Backend(Cause::new(format!(
            "the event at KurrentDB position {position} was written in an explicit \
             transaction (commit and prepare differ); this backend does not read such events"
        ))));
    }
    Ok(Position(position.commit + 1))
}

/// Where to start reading `$all` for the events after `after` (the event at the returned
/// position itself may come back and must be skipped).
pub fn from_position(after: Position) -> StreamPosition<kurrentdb::Position> {
    match after.0 {
        0 => StreamPosition::Start,
        token => StreamPosition::Position(kurrentdb::Position {
            commit: token - 1,
            prepare: token - 1,
        }),
    }
}

/// The port's error for a failed KurrentDB call (not a wrong expected version, which the
/// append handles). `outcome_unknown` for an append: a failure in flight may have appended.
pub fn store_error(err: kurrentdb::Error, what: &str, outcome_unknown: bool) -> StoreError {
    use kurrentdb::Error as K;
    let message = format!("KurrentDB {what}: {err}");
    match err {
        K::ConnectionClosed
        | K::GrpcConnectionError(_)
        | K::NotLeaderException(_)
        | K::Grpc {
            code: tonic::Code::Unavailable,
            ..
        } if !outcome_unknown => StoreError::Unavailable(Cause::with(message, err).transient()),
        K::ConnectionClosed
        | K::GrpcConnectionError(_)
        | K::NotLeaderException(_)
        | K::DeadlineExceeded
        | K::Grpc { .. } => StoreError::Backend(Cause::with(message, err).transient()),
        _ => StoreError::Backend(Cause::with(message, err)),
    }
}

/// A call that took longer than [`CALL_PATIENCE`].
fn timed_out(what: &str) -> StoreError {
    StoreError::Backend(
        Cause::new(format!(
            "KurrentDB {what}: no answer within {} s",
            CALL_PATIENCE.as_secs()
        ))
        .transient(),
    )
}

/// `err`, saying which server it came from.
fn located(err: StoreError, place: &str) -> StoreError {
    match err {
        StoreError::Backend(mut cause) => {
            cause.message = format!("{place}: {}", cause.message);
            StoreError::Backend(cause)
        }
        StoreError::Unavailable(mut cause) => {
            cause.message = format!("{place}: {}", cause.message);
            StoreError::Unavailable(cause)
        }
        other => other,
    }
}

/// The hosts of `url`, without credentials or parameters.
fn describe(settings: &ClientSettings) -> String {
    let hosts: Vec<String> = settings
        .hosts()
        .iter()
        .map(|host| format!("{}:{}", host.host, host.port))
        .collect();
    hosts.join(",")
}

impl KurrentStore {
    /// Connects to the server at `url` (`kurrentdb://host:2113?tls=false`, with the client's
    /// parameters), records the store's identity on a first start, and follows the log's head.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for a malformed URL, [`StoreError::Unavailable`] when the
    /// server cannot be reached.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_in(url, DEFAULT_BASE).await
    }

    /// [`KurrentStore::open`], with the log under the scope `base:` (tests give each store a
    /// scope of its own, so each starts empty on a shared server).
    pub async fn open_in(url: &str, base: &str) -> Result<Self, StoreError> {
        let settings: ClientSettings =
            url.parse()
                .map_err(|err: kurrentdb::ClientSettingsParseError| {
                    // The client's message quotes the URL (and so its password): only the
                    // kind of fault is told, and the error is not kept.
                    let why = err.error().map_or_else(
                        || "not a KurrentDB connection string".to_owned(),
                        ToString::to_string,
                    );
                    StoreError::Backend(Cause::new(format!(
                        "the KurrentDB URL is malformed: {why}"
                    )))
                })?;
        let place = describe(&settings);
        let client = Client::new(settings)
            .map_err(|err| StoreError::Backend(Cause::new(format!("KurrentDB client: {err}"))))?;
        let names = Names::new(base);
        let at = |err| located(err, &place);
        let store_id = identify(&client, &names).await.map_err(at)?;
        let first = last_position(&client, &names).await.map_err(at)?;
        let (head_tx, head) = watch::channel(first);
        let follower = tokio::spawn(follow_head(client.clone(), names.clone(), head_tx));
        tracing::info!(store = %place, head = %first, "KurrentDB event store opened");
        Ok(KurrentStore {
            client,
            names,
            head,
            follower,
            place,
            store_id,
        })
    }

    /// Every event of the log that `filter` (applied by the server) and then `keep` keep, in
    /// global order: a scan of `$all`, page by page.
    async fn scan(
        &self,
        filter: SubscriptionFilter,
        mut keep: impl FnMut(&RecordedEvent) -> bool,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut kept = Vec::new();
        let mut from: StreamPosition<kurrentdb::Position> = StreamPosition::Start;
        let mut last_seen: Option<kurrentdb::Position> = None;
        loop {
            let count = Subscription::DEFAULT_BATCH_SIZE;
            let options = ReadAllOptions::default()
                .forwards()
                .position(from)
                .filter(filter.clone())
                .max_count(count);
            let page = read_page(&self.client, &options).await?;
            let n_read = page.len();
            for resolved in &page {
                let event = resolved.get_original_event();
                // A page starts at the last event of the one before.
                if last_seen.is_some_and(|seen| event.position <= seen) {
                    continue;
                }
                last_seen = Some(event.position);
                if let Some(event) = recorded(&self.names, event)?
                    && keep(&event)
                {
                    kept.push(event);
                }
            }
            match last_seen {
                Some(seen) if n_read == count => from = StreamPosition::Position(seen),
                _ => return Ok(kept),
            }
        }
    }

    /// Waits until the head follower has seen `position`, so a read after an append sees it.
    async fn published(&self, position: Position) {
        if !self.wait_for(position, CALL_PATIENCE).await {
            tracing::warn!(%position, "a committed append has not reached the $all subscription yet");
        }
    }
}

impl Drop for KurrentStore {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl fmt::Debug for KurrentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KurrentStore")
            .field("place", &self.place)
            .field("scope", &self.names.scope)
            .field("head", &*self.head.borrow())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl EventStore for KurrentStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Empty);
        }
        if let Some(id) = repeated_id(&events) {
            return Err(StoreError::IdMismatch {
                stream: stream.to_owned(),
                event_id: id,
            });
        }
        let name = self.names.stream(stream);
        loop {
            let state = match expected {
                ExpectedVersion::Any => {
                    // Never "any" on the wire: a re-send would be appended again.
                    let stored =
                        read_stream(&self.client, &self.names, &name, 1, usize::MAX).await?;
                    if let Some(found) = find_resend(stream, &stored, &events)? {
                        return Ok(found);
                    }
                    stream_state(ExpectedVersion::Exact(
                        stored.last().map_or(0, |event| event.version),
                    ))
                }
                other => stream_state(other),
            };
            let data = events
                .iter()
                .map(event_data)
                .collect::<Result<Vec<_>, _>>()?;
            let options = AppendToStreamOptions::default().stream_state(state);
            let sent = tokio::time::timeout(
                CALL_PATIENCE,
                self.client.append_to_stream(name.as_str(), &options, data),
            )
            .await
            .map_err(|_| timed_out("append"))?;
            match sent {
                // The server took the events for a re-send it still remembers and answered
                // with no position (the client's start): the original result is in the stream.
                Ok(written) if written.position == kurrentdb::Position::start() => {
                    let stored =
                        read_stream(&self.client, &self.names, &name, 1, usize::MAX).await?;
                    return match find_resend(stream, &stored, &events)? {
                        Some(found) => Ok(found),
                        None => Err(StoreError::Backend(
                            Cause::new(
                                "KurrentDB acknowledged an append without a position, and its \
                                 events are not in the stream",
                            )
                            .transient(),
                        )),
                    };
                }
                Ok(written) => {
                    // The position an append answers with is the write's, which is not
                    // documented to be its last event's in `$all`: the event itself says.
                    let version = version_after(written.next_expected_version);
                    let last = read_stream(&self.client, &self.names, &name, version, 1).await?;
                    let Some(last) = last
                        .first()
                        .filter(|e| e.event_id == events[events.len() - 1].event_id)
                    else {
                        return Err(StoreError::Backend(Cause::new(format!(
                            "KurrentDB acknowledged an append to `{stream}` at version \
                             {version}, but that event is not the append's last"
                        ))));
                    };
                    let result = AppendResult {
                        version,
                        position: last.position,
                    };
                    self.published(result.position).await;
                    return Ok(result);
                }
                // Another writer came between the read and the append: the read at the top
                // looks for a re-send again.
                Err(kurrentdb::Error::WrongExpectedVersion { .. })
                    if expected == ExpectedVersion::Any => {}
                Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
                    let stored =
                        read_stream(&self.client, &self.names, &name, 1, usize::MAX).await?;
                    if let Some(found) = find_resend(stream, &stored, &events)? {
                        return Ok(found);
                    }
                    return Err(StoreError::Conflict {
                        stream: stream.to_owned(),
                        expected,
                        actual: version_of(current),
                    });
                }
                Err(err) => return Err(store_error(err, "append", true)),
            }
        }
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_stream(
            &self.client,
            &self.names,
            &self.names.stream(stream),
            from_version,
            usize::MAX,
        )
        .await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_all_scoped(&self.client, &self.names, after, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        let last = last_of(&self.client, &self.names.stream(stream)).await?;
        Ok(last.map_or(0, |event| {
            version_after(event.get_original_event().revision)
        }))
    }

    /// A scan of `$all`, filtered on the server by the stream-name prefix.
    async fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut versions = BTreeMap::new();
        self.scan(self.names.filter(prefix), |event| {
            versions.insert(event.stream.clone(), event.version);
            false
        })
        .await?;
        Ok(versions.into_iter().collect())
    }

    /// A scan of `$all`, filtered on the server by event type.
    async fn events_of_type(&self, event_type: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let filter =
            SubscriptionFilter::on_event_type().regex(format!("^{}$", escape_regex(event_type)));
        self.scan(filter, |event| event.event_type == event_type)
            .await
    }

    fn head(&self) -> Position {
        *self.head.borrow()
    }

    async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        super::head_reaches(&self.head, position, timeout).await
    }

    fn subscribe(&self, after: Position) -> Subscription {
        let (client, names) = (self.client.clone(), self.names.clone());
        let read_all: ReadAll = Arc::new(move |after, limit| -> ReadAllFuture {
            let (client, names) = (client.clone(), names.clone());
            Box::pin(async move { read_all_scoped(&client, &names, after, limit).await })
        });
        Subscription::new(after, self.head.clone(), read_all)
    }

    fn identity(&self) -> String {
        format!("kurrentdb {} {}", self.store_id, self.names.scope)
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn last_written(&self) -> Result<Position, StoreError> {
        last_position(&self.client, &self.names).await
    }

    async fn try_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        take_lease(&self.client, format!("{}{name}", self.names.leases)).await
    }
}

/// The first id that appears twice in `events`.
fn repeated_id(events: &[NewEvent]) -> Option<Uuid> {
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    events
        .iter()
        .find(|event| !seen.insert(event.event_id))
        .map(|event| event.event_id)
}

/// Whether `events` are already in `stored` (the stream's events, in order): `Some` with the
/// original result when they are, all of them in order; `None` when none of them is.
///
/// # Errors
/// [`StoreError::IdMismatch`] when some are stored, but not as this append.
pub fn find_resend(
    stream: &str,
    stored: &[RecordedEvent],
    events: &[NewEvent],
) -> Result<Option<AppendResult>, StoreError> {
    let Some(first) = events.first() else {
        return Ok(None);
    };
    let mismatch = |event_id| StoreError::IdMismatch {
        stream: stream.to_owned(),
        event_id,
    };
    match stored.iter().position(|s| s.event_id == first.event_id) {
        Some(start) => {
            for (i, event) in events.iter().enumerate() {
                match stored.get(start + i) {
                    Some(s) if s.event_id == event.event_id => {}
                    _ => return Err(mismatch(event.event_id)),
                }
            }
            let last = &stored[start + events.len() - 1];
            Ok(Some(AppendResult {
                version: last.version,
                position: last.position,
            }))
        }
        None => match events
            .iter()
            .find(|event| stored.iter().any(|s| s.event_id == event.event_id))
        {
            Some(clash) => Err(mismatch(clash.event_id)),
            None => Ok(None),
        },
    }
}

/// The event KurrentDB stores for `event`: its data as given (marked JSON when it is), the
/// envelope as custom metadata.
fn event_data(event: &NewEvent) -> Result<EventData, StoreError> {
    let data = match serde_json::from_str::<&RawValue>(&event.data) {
        Ok(raw) => EventData::json(event.event_type.as_str(), &raw).map_err(|err| {
            StoreError::Backend(Cause::with("an event's data did not serialise", err))
        })?,
        Err(_) => EventData::binary(
            event.event_type.as_str(),
            bytes_of(event.data.as_bytes().to_vec()),
        ),
    };
    Ok(data.id(event.event_id).metadata(bytes_of(envelope(event))))
}

fn bytes_of(bytes: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from(bytes)
}

/// The port's event for what the server recorded, if it belongs to the log.
fn recorded(
    names: &Names,
    event: &kurrentdb::RecordedEvent,
) -> Result<Option<RecordedEvent>, StoreError> {
    let Some(stream) = names.unscoped(event.stream_id()) else {
        return Ok(None);
    };
    let (schema_version, metadata) = open_envelope(&event.custom_metadata)?;
    let data = String::from_utf8(event.data.to_vec())
        .map_err(|err| StoreError::Backend(Cause::with("an event's data is not UTF-8", err)))?;
    Ok(Some(RecordedEvent {
        position: to_position(event.position)?,
        stream: stream.to_owned(),
        version: version_after(event.revision),
        event_id: event.id,
        event_type: event.event_type.clone(),
        schema_version,
        data,
        metadata,
        recorded_at: event.created,
    }))
}

/// At most `limit` events of the server's stream `name` from version `from_version` on.
async fn read_stream(
    client: &Client,
    names: &Names,
    name: &str,
    from_version: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let options = ReadStreamOptions::default()
        .forwards()
        .position(StreamPosition::Position(from_version.saturating_sub(1)))
        .max_count(limit);
    match drain(client.read_stream(name, &options)).await? {
        Ok(resolved) => resolved
            .iter()
            .filter_map(|r| recorded(names, r.get_original_event()).transpose())
            .collect(),
        Err(kurrentdb::Error::ResourceNotFound) => Ok(Vec::new()),
        Err(err) => Err(store_error(err, "read", false)),
    }
}

/// Every event `read` gives, within [`CALL_PATIENCE`] from the call that opened it.
async fn drain(
    opened: impl std::future::Future<Output = kurrentdb::Result<kurrentdb::ReadStream>>,
) -> Result<kurrentdb::Result<Vec<kurrentdb::ResolvedEvent>>, StoreError> {
    tokio::time::timeout(CALL_PATIENCE, async {
        let mut read = opened.await?;
        let mut events = Vec::new();
        while let Some(resolved) = read.next().await? {
            events.push(resolved);
        }
        Ok(events)
    })
    .await
    .map_err(|_| timed_out("read"))
}

/// The last event of the server's stream `name` (`None` for an absent stream).
async fn last_of(
    client: &Client,
    name: &str,
) -> Result<Option<kurrentdb::ResolvedEvent>, StoreError> {
    let options = ReadStreamOptions::default()
        .backwards()
        .position(StreamPosition::End)
        .max_count(1);
    match drain(client.read_stream(name, &options)).await? {
        Ok(mut events) => Ok(events.pop()),
        Err(kurrentdb::Error::ResourceNotFound) => Ok(None),
        Err(err) => Err(store_error(err, "read", false)),
    }
}

/// The events one read of `$all` gives (at most `options`' count of those its filter keeps).
async fn read_page(
    client: &Client,
    options: &ReadAllOptions,
) -> Result<Vec<kurrentdb::ResolvedEvent>, StoreError> {
    drain(client.read_all(options))
        .await?
        .map_err(|err| store_error(err, "read", false))
}

/// At most `limit` events of the log after `after`, in global order.
async fn read_all_scoped(
    client: &Client,
    names: &Names,
    after: Position,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // The read may start with the event at `after` itself: one more, then skip it.
    let options = ReadAllOptions::default()
        .forwards()
        .position(from_position(after))
        .filter(names.filter(""))
        .max_count(limit.saturating_add(1));
    let resolved = read_page(client, &options).await?;
    let mut events = Vec::with_capacity(resolved.len().min(limit));
    for r in &resolved {
        if let Some(event) = recorded(names, r.get_original_event())?
            && event.position > after
            && events.len() < limit
        {
            events.push(event);
        }
    }
    Ok(events)
}

/// The position of the log's last event ([`Position::START`] when it has none).
async fn last_position(client: &Client, names: &Names) -> Result<Position, StoreError> {
    let options = ReadAllOptions::default()
        .backwards()
        .position(StreamPosition::End)
        .filter(names.filter(""))
        .max_count(1);
    match read_page(client, &options).await?.first() {
        Some(resolved) => to_position(resolved.get_original_event().position),
        None => Ok(Position::START),
    }
}

/// Follows every writer's commits to the log into `head`, until the store is dropped.
async fn follow_head(client: Client, names: Names, head: watch::Sender<Position>) {
    loop {
        let from = *head.borrow();
        let options = SubscribeToAllOptions::default()
            .position(from_position(from))
            .filter(names.filter(""));
        let mut subscription = client.subscribe_to_all(&options).await;
        loop {
            match subscription.next().await {
                Ok(resolved) => match to_position(resolved.get_original_event().position) {
                    Ok(position) => {
                        head.send_if_modified(|head| {
                            let later = position > *head;
                            if later {
                                *head = position;
                            }
                            later
                        });
                    }
                    // Reads stop at this event too, with the same error, where it is seen.
                    Err(err) => {
                        tracing::error!(error = %err, "an event of the log has no usable position")
                    }
                },
                Err(err) => {
                    tracing::warn!(error = %err, "KurrentDB subscription to $all dropped; resubscribing");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Catch up on what was written while the subscription was down.
        if let Ok(last) = last_position(&client, &names).await {
            head.send_if_modified(|head| {
                let later = last > *head;
                if later {
                    *head = last;
                }
                later
            });
        }
    }
}

/// The store's identity, recorded by the first instance to open it.
async fn identify(client: &Client, names: &Names) -> Result<Uuid, StoreError> {
    #[derive(Serialize, Deserialize)]
    struct Created {
        store_id: Uuid,
    }
    for _ in 0..3 {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Start)
            .max_count(1);
        let first = drain(client.read_stream(names.identity.as_str(), &options))
            .await?
            .map(|mut events| events.pop());
        match first {
            Ok(Some(resolved)) => {
                let created: Created = resolved.get_original_event().as_json().map_err(|err| {
                    StoreError::Backend(Cause::with("the store's identity is unreadable", err))
                })?;
                return Ok(created.store_id);
            }
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => {}
            Err(err) => return Err(store_error(err, "read", false)),
        }
        let created = Created {
            store_id: Uuid::new_v4(),
        };
        let event = EventData::json("store_created", &created)
            .map_err(|err| StoreError::Backend(Cause::with("identity event", err)))?;
        let options = AppendToStreamOptions::default().stream_state(StreamState::NoStream);
        match tokio::time::timeout(
            CALL_PATIENCE,
            client.append_to_stream(names.identity.as_str(), &options, event),
        )
        .await
        .map_err(|_| timed_out("append"))?
        {
            Ok(_) => return Ok(created.store_id),
            // Another instance recorded it first: read theirs.
            Err(kurrentdb::Error::WrongExpectedVersion { .. }) => {}
            Err(err) => return Err(store_error(err, "append", false)),
        }
    }
    Err(StoreError::Backend(Cause::new(
        "the store's identity could not be read or recorded",
    )))
}

/// A lease stream's event: who holds it, until when (`until` in the past: let go).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTerm {
    /// Names the holding process.
    pub holder: Uuid,
    /// When the lease runs out unless renewed.
    pub until: DateTime<Utc>,
}

/// Whether a lease whose last event is `last` may be taken at `now`.
pub fn lease_free(last: Option<&LeaseTerm>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|term| term.until <= now)
}

fn term_from(now: DateTime<Utc>, holder: Uuid) -> LeaseTerm {
    LeaseTerm {
        holder,
        until: now + chrono::Duration::from_std(LEASE_TERM).unwrap_or(chrono::Duration::zero()),
    }
}

/// The last term of the lease stream `name` and its revision (`None`: a lease never taken).
async fn last_term(client: &Client, name: &str) -> Result<Option<(u64, LeaseTerm)>, StoreError> {
    let Some(resolved) = last_of(client, name).await? else {
        return Ok(None);
    };
    let event = resolved.get_original_event();
    let term: LeaseTerm = event
        .as_json()
        .map_err(|err| StoreError::Backend(Cause::with("a lease event is unreadable", err)))?;
    Ok(Some((event.revision, term)))
}

/// Appends `term` to the lease stream `name` if its last revision is `after` (`None`: the
/// stream is new); returns the new revision, or `None` when another writer came first.
async fn write_term(
    client: &Client,
    name: &str,
    after: Option<u64>,
    term: &LeaseTerm,
) -> Result<Option<u64>, StoreError> {
    let state = after.map_or(StreamState::NoStream, StreamState::StreamRevision);
    let event = EventData::json("lease_term", term)
        .map_err(|err| StoreError::Backend(Cause::with("lease event", err)))?;
    let options = AppendToStreamOptions::default().stream_state(state);
    match tokio::time::timeout(
        CALL_PATIENCE,
        client.append_to_stream(name, &options, event),
    )
    .await
    .map_err(|_| timed_out("append"))?
    {
        Ok(written) => Ok(Some(written.next_expected_version)),
        Err(kurrentdb::Error::WrongExpectedVersion { .. }) => Ok(None),
        Err(err) => Err(store_error(err, "append", false)),
    }
}

/// Takes the lease stream `name` if it is free (see [`lease_free`]), then renews it until the
/// lease is dropped or a renewal fails for half a term.
async fn take_lease(client: &Client, name: String) -> Result<Option<Lease>, StoreError> {
    let (revision, term) = match last_term(client, &name).await? {
        Some((revision, term)) => (Some(revision), Some(term)),
        None => (None, None),
    };
    if !lease_free(term.as_ref(), Utc::now()) {
        return Ok(None);
    }
    let holder = Uuid::new_v4();
    let Some(mut revision) =
        write_term(client, &name, revision, &term_from(Utc::now(), holder)).await?
    else {
        return Ok(None);
    };
    if revision == 0 {
        // A new lease stream: keep only its last few terms.
        let metadata = kurrentdb::StreamMetadata::builder()
            .max_count(LEASE_HISTORY)
            .build();
        let _ = client
            .set_stream_metadata(name.as_str(), &AppendToStreamOptions::default(), &metadata)
            .await;
    }
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let renewer = {
        let client = client.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let mut last_renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(LEASE_RENEWAL).await;
                match write_term(
                    &client,
                    &name,
                    Some(revision),
                    &term_from(Utc::now(), holder),
                )
                .await
                {
                    Ok(Some(next)) => {
                        revision = next;
                        last_renewed = tokio::time::Instant::now();
                    }
                    // Someone else wrote the lease: it is theirs now.
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "renewing a KurrentDB lease failed");
                        if last_renewed.elapsed() >= LEASE_TERM / 2 {
                            break;
                        }
                    }
                }
            }
            let _ = lost_tx.send(());
        })
    };
    /// Stops renewing, and lets the lease go, when the lease is dropped.
    struct Held {
        renewer: JoinHandle<()>,
        client: Client,
        name: String,
        holder: Uuid,
    }
    impl Drop for Held {
        fn drop(&mut self) {
            self.renewer.abort();
            let (client, name, holder) = (self.client.clone(), self.name.clone(), self.holder);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = release_lease(&client, &name, holder).await;
                });
            }
        }
    }
    Ok(Some(Lease::new(
        async move {
            let _ = lost_rx.await;
        },
        Box::new(Held {
            renewer,
            client: client.clone(),
            name,
            holder,
        }),
    )))
}

/// Lets the lease `name` go, if `holder` still holds it.
async fn release_lease(client: &Client, name: &str, holder: Uuid) -> Result<(), StoreError> {
    let Some((revision, term)) = last_term(client, name).await? else {
        return Ok(());
    };
    if term.holder == holder {
        let released = LeaseTerm {
            holder,
            until: DateTime::<Utc>::UNIX_EPOCH,
        };
        write_term(client, name, Some(revision), &released).await?;
    }
    Ok(())
}

/// `text` with the regular-expression metacharacters escaped.
fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::event;

    /// Why the server checks are not run: no KurrentDB server can be installed on the
    /// machines this project is built on.
    const NEEDS_SERVER: &str = "needs a KurrentDB server: set MINQING_KURRENTDB_URL \
                                (e.g. kurrentdb://127.0.0.1:2113?tls=false) and run with \
                                --ignored";

    /// The test server's URL: `MINQING_KURRENTDB_URL`.
    fn server_url() -> String {
        std::env::var("MINQING_KURRENTDB_URL").unwrap_or_else(|_| panic!("{NEEDS_SERVER}"))
    }

    /// A store under a scope of its own on the test server: it starts empty.
    async fn fresh_store() -> (KurrentStore, ()) {
        let base = format!("t{}", Uuid::new_v4().simple());
        let store = KurrentStore::open_in(&server_url(), &base)
            .await
            .expect("open the store");
        (store, ())
    }

    /// Two handles on one fresh scope, as two instances open it.
    async fn fresh_pair() -> (KurrentStore, KurrentStore, ()) {
        let base = format!("t{}", Uuid::new_v4().simple());
        let a = KurrentStore::open_in(&server_url(), &base)
            .await
            .expect("open a");
        let b = KurrentStore::open_in(&server_url(), &base)
            .await
            .expect("open b");
        (a, b, ())
    }

    // Event ids are checked within their stream only (see the module's documentation), so the
    // two checks of ids unique across streams are left out.
    crate::store::contract::contract_tests!(
        ids_unique_per_stream: [#[ignore = "needs a KurrentDB server (MINQING_KURRENTDB_URL)"]]
        fresh_store().await
    );
    crate::store::contract::contract_tests!(
        shared: [#[ignore = "needs a KurrentDB server (MINQING_KURRENTDB_URL)"]]
        fresh_pair().await
    );

    #[test]
    fn expectations_become_the_stream_states_kurrentdb_checks() {
        assert_eq!(
            stream_state(ExpectedVersion::NoStream),
            StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(0)),
            StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(1)),
            StreamState::StreamRevision(0)
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(42)),
            StreamState::StreamRevision(41)
        );
        assert_eq!(stream_state(ExpectedVersion::Any), StreamState::Any);
        // And back: the version a stream is at, from what KurrentDB reports.
        assert_eq!(version_of(CurrentRevision::NoStream), 0);
        assert_eq!(version_of(CurrentRevision::Current(0)), 1);
        assert_eq!(version_of(CurrentRevision::Current(41)), 42);
        for version in [1, 2, 42, 1 << 40] {
            let StreamState::StreamRevision(revision) =
                stream_state(ExpectedVersion::Exact(version))
            else {
                panic!("an exact version is a revision");
            };
            assert_eq!(version_after(revision), version);
        }
    }

    #[test]
    fn a_position_keeps_both_halves_or_is_refused() {
        let at = |commit, prepare| kurrentdb::Position { commit, prepare };
        // The first event of a log can sit at 0: it is still after the start.
        assert_eq!(to_position(at(0, 0)).unwrap(), Position(1));
        assert!(to_position(at(0, 0)).unwrap() > Position::START);
        for commit in [0, 1, 4_096, 1 << 40, u64::MAX - 1] {
            let position = to_position(at(commit, commit)).unwrap();
            assert_eq!(
                from_position(position),
                StreamPosition::Position(at(commit, commit)),
                "reading after {position} starts at the same event"
            );
        }
        assert_eq!(from_position(Position::START), StreamPosition::Start);
        // Order is kept.
        let positions: Vec<Position> = [5, 9, 4_000, 1 << 33]
            .into_iter()
            .map(|c| to_position(at(c, c)).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        // An explicit transaction's event (halves differ) is refused, not truncated.
        let err = to_position(at(700, 650)).unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert!(err.to_string().contains("C:700/P:650"), "{err}");
        // No position at all (an old server's stream read).
        let err = to_position(at(u64::MAX, u64::MAX)).unwrap_err();
        assert!(err.to_string().contains("22.6"), "{err}");
    }

    #[test]
    fn failures_say_whether_to_retry() {
        use crate::store::Retry;
        let away = store_error(kurrentdb::Error::ConnectionClosed, "read", false);
        assert!(away.is_storage_unavailable(), "{away:?}");
        assert_eq!(away.retry(), Retry::Later);
        let grpc_away = kurrentdb::Error::Grpc {
            code: tonic::Code::Unavailable,
            message: "connection refused".into(),
        };
        assert!(store_error(grpc_away, "read", false).is_storage_unavailable());
        // An append cut off in flight may have happened: a backend failure worth re-sending.
        let in_flight = store_error(kurrentdb::Error::ConnectionClosed, "append", true);
        assert!(matches!(in_flight, StoreError::Backend(_)), "{in_flight:?}");
        assert_eq!(in_flight.retry(), Retry::Later);
        let deadline = store_error(kurrentdb::Error::DeadlineExceeded, "append", true);
        assert_eq!(deadline.retry(), Retry::Later);
        // Refusals that a retry does not mend.
        for err in [
            kurrentdb::Error::AccessDenied,
            kurrentdb::Error::ResourceDeleted,
            kurrentdb::Error::ServerError("bad request".into()),
        ] {
            let mapped = store_error(err, "read", false);
            assert_eq!(mapped.retry(), Retry::No, "{mapped:?}");
            assert!(
                mapped.driver_error().is_some(),
                "the client's error is kept"
            );
        }
        assert!(timed_out("append").to_string().contains("10 s"));
        assert_eq!(timed_out("append").retry(), Retry::Later);
    }

    #[test]
    fn the_envelope_round_trips_schema_version_and_metadata_exactly() {
        for metadata in [
            r#"{"actor":"operator-7","correlation":"a b"}"#,
            r#"{ "spaced" :  [1, 2] }"#,
            "",
            "not json — 纯文本",
        ] {
            let mut e = event("Noted", 1);
            e.schema_version = 3;
            e.metadata = metadata.to_owned();
            let bytes = envelope(&e);
            assert!(
                serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                "the envelope is JSON"
            );
            assert_eq!(open_envelope(&bytes).unwrap(), (3, metadata.to_owned()));
        }
        let err = open_envelope(b"{\"foreign\":true}").unwrap_err();
        assert!(err.to_string().contains("envelope"), "{err}");
        assert!(open_envelope(b"\xff").is_err());
    }

    fn stored(events: &[NewEvent]) -> Vec<RecordedEvent> {
        events
            .iter()
            .enumerate()
            .map(|(i, e)| RecordedEvent {
                position: Position(100 + i as u64 * 10),
                stream: "case-1".into(),
                version: i as u64 + 1,
                event_id: e.event_id,
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                data: e.data.clone(),
                metadata: e.metadata.clone(),
                recorded_at: DateTime::<Utc>::UNIX_EPOCH,
            })
            .collect()
    }

    #[test]
    fn a_resend_is_found_in_its_stream_and_a_partial_one_is_a_mismatch() {
        let sent: Vec<NewEvent> = (1..=4).map(|n| event("Noted", n)).collect();
        let log = stored(&sent);
        let fresh = event("Noted", 9);
        // The whole append, or a run of it in order: the original result of that run.
        assert_eq!(
            find_resend("case-1", &log, &sent).unwrap(),
            Some(AppendResult {
                version: 4,
                position: Position(130)
            })
        );
        assert_eq!(
            find_resend("case-1", &log, &sent[1..3]).unwrap(),
            Some(AppendResult {
                version: 3,
                position: Position(120)
            })
        );
        // None of them stored: a new append.
        assert_eq!(
            find_resend("case-1", &log, std::slice::from_ref(&fresh)).unwrap(),
            None
        );
        assert_eq!(find_resend("case-1", &[], &sent).unwrap(), None);
        // Stored ones plus a new one, a new one then stored ones, stored ones out of order:
        // each names the first id that does not fit.
        let mismatch = |events: Vec<NewEvent>| match find_resend("case-1", &log, &events) {
            Err(StoreError::IdMismatch { stream, event_id }) => {
                assert_eq!(stream, "case-1");
                event_id
            }
            other => panic!("{other:?}"),
        };
        let mut longer = sent.clone();
        longer.push(fresh.clone());
        assert_eq!(mismatch(longer), fresh.event_id);
        assert_eq!(
            mismatch(vec![fresh.clone(), sent[1].clone()]),
            sent[1].event_id
        );
        assert_eq!(
            mismatch(vec![sent[1].clone(), sent[0].clone()]),
            sent[0].event_id
        );
        // One id twice in an append is refused before anything is sent.
        assert_eq!(
            repeated_id(&[fresh.clone(), sent[0].clone(), fresh.clone()]),
            Some(fresh.event_id)
        );
        assert_eq!(repeated_id(&sent), None);
    }

    #[test]
    fn the_log_lives_under_its_scope_and_bookkeeping_beside_it() {
        let names = Names::new("minqing");
        assert_eq!(
            names.stream("case-20261204-00001"),
            "minqing:case-20261204-00001"
        );
        assert_eq!(
            names.unscoped("minqing:case-20261204-00001"),
            Some("case-20261204-00001")
        );
        // System streams, another deployment's, and the store's own are not the log's.
        for other in [
            "$stats-127.0.0.1:2113",
            "$$minqing:case-1",
            "other:case-1",
            "minqing-store",
            "minqing-lease:jobs",
        ] {
            assert_eq!(names.unscoped(other), None, "{other}");
        }
        assert!(!names.identity.starts_with(&names.scope));
        assert!(!names.leases.starts_with(&names.scope));
    }

    #[test]
    fn a_lease_is_free_once_its_term_ran_out_or_it_was_let_go() {
        let now = Utc::now();
        let holder = Uuid::new_v4();
        assert!(lease_free(None, now));
        let term = term_from(now, holder);
        assert!(!lease_free(Some(&term), now));
        assert!(!lease_free(
            Some(&term),
            now + chrono::Duration::seconds(14)
        ));
        assert!(lease_free(Some(&term), now + chrono::Duration::seconds(15)));
        let let_go = LeaseTerm {
            holder,
            until: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert!(lease_free(Some(&let_go), now));
        // A holder renews well within its term, and gives up before another may take over.
        assert!(LEASE_RENEWAL * 3 < LEASE_TERM);
    }

    #[test]
    fn regex_metacharacters_in_an_event_type_are_taken_literally() {
        assert_eq!(escape_regex("merged"), "merged");
        assert_eq!(escape_regex("a.b*c$"), "a\\.b\\*c\\$");
    }

    #[tokio::test]
    async fn a_malformed_url_is_refused_without_echoing_it() {
        let err = KurrentStore::open("kurrentdb://admin:s3cret@[::1")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("malformed"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[tokio::test]
    async fn the_place_of_a_store_never_shows_its_password() {
        let settings: ClientSettings = "kurrentdb://admin:s3cret@db1:2113,db2:2114?tls=false"
            .parse()
            .unwrap();
        let place = describe(&settings);
        assert_eq!(place, "db1:2113,db2:2114");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_not_a_failure() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("kurrentdb://127.0.0.1:{port}?tls=false&maxDiscoverAttempts=1");
        let err = KurrentStore::open(&url).await.unwrap_err();
        assert!(
            err.is_storage_unavailable() || err.retry() == crate::store::Retry::Later,
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains(&format!("127.0.0.1:{port}: KurrentDB")),
            "says which server: {err}"
        );
    }
}
