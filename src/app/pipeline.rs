//! The one command pipeline (命令管道): load → decide → encode → append, the same for every
//! aggregate (cases, knowledge-base articles, identity views, the directory, the rules).
//!
//! An aggregate says what is its own ([`Aggregate`]: its command, event and codec, state,
//! refusal, stream name and the pure `decide`/`evolve`); a [`CommandService`] does the rest
//! once: the cache of states, the idempotency keys (one copy of a retried command at a time,
//! the events' ids derived from the key, a key reused for another request refused), `If-Match`,
//! the expected version of the append, and what a conflict or a failed append leaves in the
//! cache. Follow-ups of a decision (closing a master's duplicates, putting a new directory in
//! force) are the facades', on the events a [`Written`] returns.
//!
//! Order of the checks, for every aggregate: the key's earlier answer, then scope
//! ([`Aggregate::visible`]: outside it a stream answers as an unknown one, rule 14), then
//! `If-Match`, then the rules (`decide`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::codec::DecodeError;
use crate::store::stream::StreamName;
use crate::store::{EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError};

/// One aggregate: what the pipeline needs to load, decide and record it.
pub trait Aggregate: Clone + Send + Sync + 'static {
    /// What names one instance (a case number, an article id; `()` for the one directory).
    type Id: Clone + Eq + Hash + Send + Sync;
    /// What a caller asks.
    type Command: ?Sized + Sync;
    /// What is recorded.
    type Event: Send + Sync;
    /// Why a rule refused a command.
    type Error: Send;
    /// What `decide` reads besides the state: who asks, when, the tree, the rules in force.
    type Context<'a>: Sync;

    /// Streams every command adds to without reading them first (identity views): no state,
    /// appended at any version.
    const APPEND_ONLY: bool = false;

    /// The stream of `id`.
    fn stream(id: &Self::Id) -> StreamName;

    /// Whether `command` starts its stream (an intake under a number never used): decided on
    /// the initial state without reading the stream, appended only if it does not exist yet
    /// (a stream that does is a [`CommandError::Conflict`]).
    fn starts_stream(_command: &Self::Command) -> bool {
        false
    }

    /// Whether the caller of `ctx` may know this instance exists (scope, rule 14); checked
    /// before `If-Match` and the rules. `version` is 0 for a stream never written.
    fn visible(&self, _version: u64, _command: &Self::Command, _ctx: &Self::Context<'_>) -> bool {
        true
    }

    /// The rules: the events `command` records on this state, or why not.
    ///
    /// # Errors
    /// The aggregate's refusal.
    fn decide(
        &self,
        command: &Self::Command,
        ctx: &Self::Context<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// The state after `event`.
    #[must_use]
    fn evolve(self, event: &Self::Event) -> Self;

    /// The event for the store, with its id and the request's fingerprint (for a command sent
    /// with an idempotency key).
    fn encode(event: &Self::Event, event_id: Uuid, request: Option<&str>) -> NewEvent;

    /// A stored event read back.
    ///
    /// # Errors
    /// [`DecodeError`] when it matches no known shape.
    fn decode(record: &RecordedEvent) -> Result<Self::Event, DecodeError>;
}

/// Why a command did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// A rule refused it; nothing was appended.
    #[error("refused")]
    Refused(E),
    /// No such instance, or none the caller may see.
    #[error("not found")]
    NotFound,
    /// `If-Match` or a concurrent writer: the stream moved on.
    #[error("at version {actual}, expected {expected}")]
    Conflict {
        /// The version the command was decided on (or the client sent).
        expected: u64,
        /// The stream's version.
        actual: u64,
    },
    /// An idempotency key already used for a different request.
    #[error("the idempotency key was already used for a different request")]
    KeyReused,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl<E> CommandError<E> {
    /// For an aggregate without scope, `If-Match` or keys (the directory, the rules): the
    /// refusal, or else the failure as the store's (a concurrent writer is a conflict on
    /// `stream`).
    ///
    /// # Errors
    /// Every failure but a refusal.
    pub fn refusal_or_store(self, stream: &str) -> Result<E, StoreError> {
        Err(match self {
            CommandError::Refused(err) => return Ok(err),
            CommandError::Conflict { expected, actual } => StoreError::Conflict {
                stream: stream.to_owned(),
                expected: ExpectedVersion::Exact(expected),
                actual,
            },
            CommandError::Store(err) => err,
            CommandError::Decode(err) => StoreError::Backend(err.to_string().into()),
            CommandError::NotFound | CommandError::KeyReused => {
                StoreError::Backend(format!("`{stream}`: {self}").into())
            }
        })
    }
}

impl CommandError<std::convert::Infallible> {
    /// The same failure of a pipeline whose rules never refuse, as one of any other.
    pub fn refused_never<E>(self) -> CommandError<E> {
        match self {
            CommandError::Refused(never) => match never {},
            CommandError::NotFound => CommandError::NotFound,
            CommandError::Conflict { expected, actual } => {
                CommandError::Conflict { expected, actual }
            }
            CommandError::KeyReused => CommandError::KeyReused,
            CommandError::Store(err) => CommandError::Store(err),
            CommandError::Decode(err) => CommandError::Decode(err),
        }
    }
}

/// What identifies a command sent with an `Idempotency-Key`: its events get ids derived from
/// the key, so a retry finds them, and carry a fingerprint of the request, so a key reused for
/// another request is refused.
#[derive(Debug, Clone)]
pub struct Retry<'a> {
    /// The client's key.
    key: &'a str,
    /// The stream and the verb (`create` for an intake, whose number is not known yet).
    scope: String,
    /// Who sent it (keys are per user).
    username: &'a str,
    /// A fingerprint of the request itself.
    request: String,
}

impl<'a> Retry<'a> {
    /// A command of `username` with `key`, in `scope` (what it acts on and the verb), whose
    /// content is `request` (what the client sent, `If-Match` included).
    pub fn new(key: &'a str, username: &'a str, scope: String, request: &str) -> Self {
        Retry {
            key,
            scope,
            username,
            request: fingerprint(request),
        }
    }

    /// The fingerprint of the request, stored with its events.
    pub fn request(&self) -> &str {
        &self.request
    }

    /// An id derived from the key alone (for a resource the client did not name).
    pub fn derived_id(key: &str, username: &str) -> Uuid {
        Uuid::new_v5(&ID_NAMESPACE, format!("{username}\n{key}\nid").as_bytes())
    }

    /// The stream that records which stream this key claimed, for a command that starts its
    /// stream (an intake, whose number is taken before it is appended).
    pub fn key_stream(&self) -> StreamName {
        let id = Uuid::new_v5(
            &ID_NAMESPACE,
            format!("{}\n{}\n{}\nkey", self.username, self.key, self.scope).as_bytes(),
        );
        StreamName::Key(id.simple().to_string())
    }

    /// The id of the command's `i`th event.
    pub fn event_id(&self, i: usize) -> Uuid {
        Uuid::new_v5(
            &ID_NAMESPACE,
            format!("{}\n{}\n{}\n{i}", self.username, self.key, self.scope).as_bytes(),
        )
    }
}

/// A stable fingerprint of a request's content.
fn fingerprint(text: &str) -> String {
    Uuid::new_v5(&ID_NAMESPACE, text.as_bytes())
        .simple()
        .to_string()
}

const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d69_6e71_696e_6731_3233_3435_0000_0001);

/// Races lost to other writers before a command gives up with a conflict.
const LOST_RACES: u32 = 8;

/// After the n-th lost race a command waits up to n times this (a random share of it) before
/// deciding again, so writers that collided do not collide again in step.
const RACE_BACKOFF_MICROS: u32 = 2_000;

/// Waits a random share of `lost` times [`RACE_BACKOFF_MICROS`] after the `lost`-th race
/// lost to another writer, so writers that collided do not collide again in step.
pub(crate) async fn race_pause(lost: u32) {
    // The clock's microseconds are random enough to spread writers apart, and need no
    // generator.
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.subsec_micros());
    let window = RACE_BACKOFF_MICROS.saturating_mul(lost).max(1);
    tokio::time::sleep(std::time::Duration::from_micros(u64::from(jitter % window))).await;
}

/// The most events one command records that a retry looks for.
const MAX_EVENTS_PER_COMMAND: usize = 16;

/// The request fingerprint stored in an event's metadata (`request`), if it was written by an
/// idempotent request; every codec keeps it under that name.
pub fn request_of(record: &RecordedEvent) -> Option<String> {
    let meta: serde_json::Value = serde_json::from_str(&record.metadata).ok()?;
    meta.get("request")?.as_str().map(str::to_owned)
}

/// If the command of `retry` is among `records` (one stream, whole), where its last event is;
/// a key whose first event holds another request's fingerprint is refused.
fn replay_of<E>(
    retry: &Retry<'_>,
    records: &[RecordedEvent],
) -> Result<Option<Replay>, CommandError<E>> {
    let first_id = retry.event_id(0);
    let Some(start) = records.iter().position(|r| r.event_id == first_id) else {
        return Ok(None);
    };
    if request_of(&records[start]).as_deref() != Some(retry.request()) {
        return Err(CommandError::KeyReused);
    }
    // Its last event: a command's events are appended together, in order.
    let mut last = &records[start];
    for (i, record) in records[start..]
        .iter()
        .enumerate()
        .take(MAX_EVENTS_PER_COMMAND)
        .skip(1)
    {
        if record.event_id != retry.event_id(i) {
            break;
        }
        last = record;
    }
    Ok(Some(Replay {
        stream: last.stream.clone(),
        version: last.version,
        position: last.position,
    }))
}

/// One command's events for the store: ids derived from the idempotency key when it carries
/// one (with the request's fingerprint in the metadata), else drawn from `random_id`
/// (`Uuid::new_v4` in the service; `minqing generate` draws them from its seed).
pub fn encode_all<A: Aggregate>(
    events: &[A::Event],
    retry: Option<&Retry<'_>>,
    mut random_id: impl FnMut() -> Uuid,
) -> Vec<NewEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let event_id = retry.map_or_else(&mut random_id, |r| r.event_id(i));
            A::encode(event, event_id, retry.map(Retry::request))
        })
        .collect()
}

/// What the key stream of an intake's idempotency key records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Claim {
    /// The stream claimed.
    stream: String,
    /// The fingerprint of the request that claimed it.
    request: String,
}

/// One lock per (user, idempotency key) in flight, shared by every service: copies of a
/// retried command run one after the other, so the later ones find the first one's events.
#[derive(Debug, Default)]
pub struct KeyLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl KeyLocks {
    /// Holds `retry`'s key until the guard drops; `None` without a key.
    pub async fn lock(
        &self,
        retry: Option<&Retry<'_>>,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let retry = retry?;
        let lock = {
            let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if keys.len() > 10_000 {
                // Forget the keys nobody holds.
                keys.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            keys.entry(format!("{}\n{}", retry.username, retry.key))
                .or_default()
                .clone()
        };
        Some(lock.lock_owned().await)
    }
}

/// A state with the version of the stream it was folded to.
#[derive(Debug)]
pub struct Loaded<A> {
    /// The state.
    pub state: Arc<A>,
    /// The stream's version (0: never written).
    pub version: u64,
}

impl<A> Clone for Loaded<A> {
    fn clone(&self) -> Self {
        Loaded {
            state: self.state.clone(),
            version: self.version,
        }
    }
}

/// A command that was recorded (or, `replayed`, had been, with the same idempotency key).
#[derive(Debug)]
pub struct Written<A: Aggregate> {
    /// The state after it (for a replay: as it is now).
    pub state: Arc<A>,
    /// The stream's version after the command.
    pub version: u64,
    /// The global position of its last event.
    pub position: Position,
    /// What it recorded (empty for a replay).
    pub events: Vec<A::Event>,
    /// It had run before with this key; this answer is that run's.
    pub replayed: bool,
}

/// An earlier run of a command with the same idempotency key: where its last event is.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Its stream.
    pub stream: String,
    /// The stream's version after it.
    pub version: u64,
    /// The global position of its last event.
    pub position: Position,
}

/// One command to run.
pub struct Request<'r, A: Aggregate> {
    /// On what.
    pub id: &'r A::Id,
    /// What.
    pub command: &'r A::Command,
    /// The version the client saw (`If-Match`).
    pub if_match: Option<u64>,
    /// The idempotency key, when the client sent one.
    pub retry: Option<&'r Retry<'r>>,
}

/// The pipeline for one aggregate: its store, its cache of states, the shared key locks.
pub struct CommandService<A: Aggregate> {
    store: Arc<dyn EventStore>,
    keys: Arc<KeyLocks>,
    /// The state of a stream never written.
    initial: Arc<A>,
    /// States by id. After a successful append the cache holds the newest state; a conflict or
    /// an append of unknown outcome forgets it, so the next command reads the stream.
    cache: Mutex<HashMap<A::Id, Loaded<A>>>,
    /// States held before the cache is emptied (a crude bound on memory).
    cache_limit: usize,
}

impl<A: Aggregate> CommandService<A> {
    /// The pipeline of `A` on `store`, starting streams from `initial`.
    pub fn new(
        store: Arc<dyn EventStore>,
        keys: Arc<KeyLocks>,
        initial: A,
        cache_limit: usize,
    ) -> Self {
        CommandService {
            store,
            keys,
            initial: Arc::new(initial),
            cache: Mutex::new(HashMap::new()),
            cache_limit,
        }
    }

    fn cached(&self, id: &A::Id) -> Option<Loaded<A>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn remember(&self, id: &A::Id, loaded: Loaded<A>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.cache_limit {
            cache.clear();
        }
        match cache.get(id) {
            Some(old) if old.version >= loaded.version => {}
            _ => {
                cache.insert(id.clone(), loaded);
            }
        }
    }

    /// Drops `id`'s cached state: the next command reads its stream.
    pub fn forget(&self, id: &A::Id) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// The current state of `id` (from the cache, else folded from its stream).
    ///
    /// # Errors
    /// Store and decode failures; a stream never written is the initial state at version 0.
    pub async fn load(&self, id: &A::Id) -> Result<Loaded<A>, CommandError<A::Error>> {
        if let Some(loaded) = self.cached(id) {
            return Ok(loaded);
        }
        self.read(id).await
    }

    /// The state of `id` folded from its stream as the store has it now (not from the cache;
    /// the cache is brought up to it).
    ///
    /// # Errors
    /// Store and decode failures.
    pub async fn read(&self, id: &A::Id) -> Result<Loaded<A>, CommandError<A::Error>> {
        let records = self
            .store
            .read_stream(&A::stream(id).to_string(), 1)
            .await?;
        self.fold(id, &records)
    }

    /// The state of `records` (the whole stream of `id`), remembered in the cache.
    fn fold(
        &self,
        id: &A::Id,
        records: &[RecordedEvent],
    ) -> Result<Loaded<A>, CommandError<A::Error>> {
        let mut state = (*self.initial).clone();
        for record in records {
            state = state.evolve(&A::decode(record)?);
        }
        let loaded = Loaded {
            state: Arc::new(state),
            version: records.last().map_or(0, |r| r.version),
        };
        if loaded.version > 0 {
            self.remember(id, loaded.clone());
        }
        Ok(loaded)
    }

    /// If the command with this idempotency key was recorded in `stream`, where its last event
    /// is; a key whose events hold another request's fingerprint is refused. The stream is
    /// read (not the whole store searched by id): every backend can answer that.
    ///
    /// # Errors
    /// [`CommandError::KeyReused`], store failures.
    pub async fn replayed_in(
        &self,
        retry: Option<&Retry<'_>>,
        stream: &str,
    ) -> Result<Option<Replay>, CommandError<A::Error>> {
        let Some(retry) = retry else { return Ok(None) };
        let records = self.store.read_stream(stream, 1).await?;
        replay_of(retry, &records)
    }

    /// What `retry`'s key claimed so far, for a command that starts its stream: the key
    /// stream's version and the stream claimed last (`None` before any claim). A claim made
    /// by another request under the same key is refused.
    ///
    /// # Errors
    /// [`CommandError::KeyReused`], store and decode failures.
    pub async fn claimed(
        &self,
        retry: &Retry<'_>,
    ) -> Result<(u64, Option<String>), CommandError<A::Error>> {
        let records = self
            .store
            .read_stream(&retry.key_stream().to_string(), 1)
            .await?;
        let Some(last) = records.last() else {
            return Ok((0, None));
        };
        let claim: Claim =
            serde_json::from_str(&last.data).map_err(|e| super::envelope::json_error(last, e))?;
        if claim.request != retry.request() {
            return Err(CommandError::KeyReused);
        }
        Ok((last.version, Some(claim.stream)))
    }

    /// Records that `retry`'s key claims `stream` (taken before the stream is appended, so a
    /// retry after a crash in between finds the number its first run took). `claims` is the
    /// key stream's version from [`Self::claimed`] (or the last claim).
    ///
    /// # Errors
    /// [`CommandError::Conflict`] when another instance claimed for the same key meanwhile;
    /// store failures.
    pub async fn claim(
        &self,
        retry: &Retry<'_>,
        claims: u64,
        stream: &str,
    ) -> Result<u64, CommandError<A::Error>> {
        let claim = Claim {
            stream: stream.to_owned(),
            request: retry.request().to_owned(),
        };
        let event = NewEvent {
            event_id: Uuid::new_v5(
                &ID_NAMESPACE,
                format!("{}\nclaim\n{claims}", retry.key_stream()).as_bytes(),
            ),
            event_type: "key_claimed".into(),
            schema_version: 1,
            // Two strings: serialising cannot fail.
            data: serde_json::to_string(&claim).unwrap_or_default(),
            metadata: serde_json::json!({ "request": retry.request() }).to_string(),
        };
        let expected = if claims == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(claims)
        };
        match self
            .store
            .append(&retry.key_stream().to_string(), expected, vec![event])
            .await
        {
            Ok(appended) => Ok(appended.version),
            Err(StoreError::Conflict { actual, .. }) => Err(CommandError::Conflict {
                expected: claims,
                actual,
            }),
            Err(err) => Err(err.into()),
        }
    }

    /// Runs `request`: with its key held, answers an earlier run with the same key, else
    /// decides and appends ([`Self::decide_and_append`]).
    ///
    /// # Errors
    /// As [`Self::decide_and_append`]; [`CommandError::KeyReused`] for a key used before
    /// for another request.
    pub async fn run(
        &self,
        request: Request<'_, A>,
        ctx: &A::Context<'_>,
    ) -> Result<Written<A>, CommandError<A::Error>> {
        let _key = self.keys.lock(request.retry).await;
        if let Some(retry) = request.retry {
            // One read answers both: whether the key ran before, and the state now (which the
            // decision below then takes from the cache).
            let records = self
                .store
                .read_stream(&A::stream(request.id).to_string(), 1)
                .await?;
            let now = self.fold(request.id, &records)?;
            if let Some(done) = replay_of::<A::Error>(retry, &records)? {
                return Ok(Written {
                    state: now.state,
                    version: done.version,
                    position: done.position,
                    events: Vec::new(),
                    replayed: true,
                });
            }
        }
        self.decide_and_append(request, ctx).await
    }

    /// Loads the state, checks scope and `If-Match`, decides and appends at the version
    /// decided on, without looking at the key's earlier answer (the caller holds the key and
    /// asked [`Self::claimed`] and [`Self::replayed_in`] itself, as an intake does before it
    /// takes a number).
    ///
    /// # Errors
    /// [`CommandError::NotFound`] out of scope; [`CommandError::Conflict`] for a stale
    /// `If-Match` or a concurrent writer; [`CommandError::Refused`]; store failures.
    pub async fn decide_and_append(
        &self,
        request: Request<'_, A>,
        ctx: &A::Context<'_>,
    ) -> Result<Written<A>, CommandError<A::Error>> {
        let Request {
            id,
            command,
            if_match,
            retry,
        } = request;
        let mut lost = 0;
        loop {
            match self.decide_once(id, command, if_match, retry, ctx).await? {
                Ok(written) => return Ok(written),
                // Another writer (another instance) appended after the state this was decided
                // on: decide again on the stream as it is now. The client's own `If-Match`,
                // now stale, is refused by the check on the reloaded state; a stream that was
                // to be started is the caller's to number again.
                Err((expected, actual)) => {
                    lost += 1;
                    if A::starts_stream(command) || lost >= LOST_RACES {
                        return Err(CommandError::Conflict { expected, actual });
                    }
                    tracing::debug!(
                        expected,
                        actual,
                        "lost a race to another writer; deciding again"
                    );
                    race_pause(lost).await;
                }
            }
        }
    }

    /// One attempt of [`Self::decide_and_append`]: `Ok(Err((expected, actual)))` when the
    /// append lost to another writer (the cached state is then forgotten).
    async fn decide_once(
        &self,
        id: &A::Id,
        command: &A::Command,
        if_match: Option<u64>,
        retry: Option<&Retry<'_>>,
        ctx: &A::Context<'_>,
    ) -> Result<Result<Written<A>, (u64, u64)>, CommandError<A::Error>> {
        let loaded = if A::APPEND_ONLY || A::starts_stream(command) {
            Loaded {
                state: self.initial.clone(),
                version: 0,
            }
        } else {
            self.load(id).await?
        };
        // A negative answer is given on the stream as it is: a state from the cache may be
        // behind another instance's writes, so its version is checked first (a cheap read,
        // made only before refusing).
        let decided_on_newest = || async {
            if A::APPEND_ONLY || A::starts_stream(command) {
                return Ok(None);
            }
            let actual = self
                .store
                .stream_version(&A::stream(id).to_string())
                .await?;
            if actual == loaded.version {
                return Ok(None);
            }
            self.forget(id);
            Ok::<_, CommandError<A::Error>>(Some((loaded.version, actual)))
        };
        if !loaded.state.visible(loaded.version, command, ctx) {
            if let Some(behind) = decided_on_newest().await? {
                return Ok(Err(behind));
            }
            return Err(CommandError::NotFound);
        }
        if let Some(expected) = if_match
            && expected != loaded.version
        {
            if let Some(behind) = decided_on_newest().await? {
                return Ok(Err(behind));
            }
            return Err(CommandError::Conflict {
                expected,
                actual: loaded.version,
            });
        }
        let events = match loaded.state.decide(command, ctx) {
            Ok(events) => events,
            Err(refusal) => {
                if let Some(behind) = decided_on_newest().await? {
                    return Ok(Err(behind));
                }
                return Err(CommandError::Refused(refusal));
            }
        };
        if events.is_empty() {
            return Ok(Ok(Written {
                state: loaded.state,
                version: loaded.version,
                position: Position(0),
                events,
                replayed: false,
            }));
        }
        let new = encode_all::<A>(&events, retry, Uuid::new_v4);
        let expected = if A::APPEND_ONLY {
            ExpectedVersion::Any
        } else if loaded.version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(loaded.version)
        };
        let appended = match self
            .store
            .append(&A::stream(id).to_string(), expected, new)
            .await
        {
            Ok(appended) => appended,
            Err(StoreError::Conflict { actual, .. }) => {
                self.forget(id);
                return Ok(Err((loaded.version, actual)));
            }
            Err(StoreError::IdMismatch { .. }) => return Err(CommandError::KeyReused),
            Err(err) => {
                // It may have happened: read the stream next time.
                self.forget(id);
                return Err(err.into());
            }
        };
        let state = Arc::new(
            events
                .iter()
                .fold((*loaded.state).clone(), |state, event| state.evolve(event)),
        );
        // An idempotent replay by the store returns the original result: the state then is
        // what the store has, not what this decision made.
        if !A::APPEND_ONLY {
            if appended.version == loaded.version + events.len() as u64 {
                self.remember(
                    id,
                    Loaded {
                        state: state.clone(),
                        version: appended.version,
                    },
                );
            } else {
                self.forget(id);
            }
        }
        Ok(Ok(Written {
            state,
            version: appended.version,
            position: appended.position,
            events,
            replayed: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// A counter that refuses to go past a limit: the smallest aggregate that exercises every
    /// step of the pipeline.
    #[derive(Debug, Clone, Default, PartialEq)]
    struct Counter(u32);

    #[derive(Debug, PartialEq)]
    struct TooMany;

    impl Aggregate for Counter {
        type Id = String;
        type Command = u32;
        type Event = u32;
        type Error = TooMany;
        type Context<'a> = u32;

        fn stream(id: &String) -> StreamName {
            StreamName::Article(id.clone())
        }

        fn visible(&self, _version: u64, _add: &u32, limit: &u32) -> bool {
            *limit > 0
        }

        fn decide(&self, add: &u32, limit: &u32) -> Result<Vec<u32>, TooMany> {
            if self.0 + add > *limit {
                return Err(TooMany);
            }
            Ok((0..*add).map(|_| 1).collect())
        }

        fn evolve(self, event: &u32) -> Self {
            Counter(self.0 + event)
        }

        fn encode(event: &u32, event_id: Uuid, request: Option<&str>) -> NewEvent {
            NewEvent {
                event_id,
                event_type: "added".into(),
                schema_version: 1,
                data: event.to_string(),
                metadata: serde_json::json!({ "request": request }).to_string(),
            }
        }

        fn decode(record: &RecordedEvent) -> Result<u32, DecodeError> {
            serde_json::from_str(&record.data)
                .map_err(|e| super::super::envelope::json_error(record, e))
        }
    }

    fn service() -> (
        tempfile::TempDir,
        Arc<dyn EventStore>,
        CommandService<Counter>,
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let store: Arc<dyn EventStore> =
            Arc::new(SqliteStore::open(&dir.path().join("events.db")).expect("store"));
        let service = CommandService::new(store.clone(), Arc::default(), Counter(0), 10);
        (dir, store, service)
    }

    fn run<'r>(id: &'r String, add: &'r u32, retry: Option<&'r Retry<'r>>) -> Request<'r, Counter> {
        Request {
            id,
            command: add,
            if_match: None,
            retry,
        }
    }

    #[tokio::test]
    async fn a_command_is_decided_on_the_newest_state_and_appended_at_its_version() {
        let (_dir, store, service) = service();
        let id = "c".to_owned();
        let first = service.run(run(&id, &2, None), &5).await.expect("first");
        assert_eq!((first.version, first.state.0), (2, 2));
        let second = service.run(run(&id, &3, None), &5).await.expect("second");
        assert_eq!((second.version, second.state.0), (5, 5));
        // The rule sees the state: one more is refused, and nothing is appended.
        let refused = service.run(run(&id, &1, None), &5).await;
        assert!(matches!(refused, Err(CommandError::Refused(TooMany))));
        assert_eq!(store.read_stream("kb-c", 1).await.expect("read").len(), 5);
    }

    #[tokio::test]
    async fn scope_is_checked_before_if_match_and_the_rules() {
        let (_dir, _store, service) = service();
        let id = "c".to_owned();
        let hidden = service
            .run(
                Request {
                    if_match: Some(9),
                    ..run(&id, &99, None)
                },
                &0,
            )
            .await;
        assert!(matches!(hidden, Err(CommandError::NotFound)));
        let stale = service
            .run(
                Request {
                    if_match: Some(9),
                    ..run(&id, &99, None)
                },
                &5,
            )
            .await;
        assert!(matches!(
            stale,
            Err(CommandError::Conflict {
                expected: 9,
                actual: 0
            })
        ));
    }

    #[tokio::test]
    async fn a_retry_answers_what_the_first_run_did_and_a_reused_key_is_refused() {
        let (_dir, store, service) = service();
        let id = "c".to_owned();
        let retry = Retry::new("k1", "alice", "c\nadd".into(), "add 2");
        let first = service
            .run(run(&id, &2, Some(&retry)), &5)
            .await
            .expect("first");
        let again = service
            .run(run(&id, &2, Some(&retry)), &5)
            .await
            .expect("again");
        assert!(again.replayed && !first.replayed);
        assert_eq!(
            (again.version, again.position),
            (first.version, first.position)
        );
        assert_eq!(store.read_stream("kb-c", 1).await.expect("read").len(), 2);
        let other = Retry::new("k1", "alice", "c\nadd".into(), "add 3");
        assert!(matches!(
            service.run(run(&id, &3, Some(&other)), &5).await,
            Err(CommandError::KeyReused)
        ));
        // The same key of another user is another key.
        let bob = Retry::new("k1", "bob", "c\nadd".into(), "add 3");
        assert_eq!(
            service
                .run(run(&id, &3, Some(&bob)), &5)
                .await
                .expect("bob")
                .version,
            5
        );
    }

    #[tokio::test]
    async fn a_writer_the_cache_did_not_see_is_met_by_deciding_again_on_its_stream() {
        let (_dir, store, service) = service();
        let id = "c".to_owned();
        service.run(run(&id, &1, None), &5).await.expect("first");
        // Another instance appends behind this one's cache.
        let behind = |version| {
            store.append(
                "kb-c",
                ExpectedVersion::Exact(version),
                vec![Counter::encode(&1, Uuid::new_v4(), None)],
            )
        };
        behind(1).await.expect("other writer");
        // Decided again on the stream as it is: the rule sees both writers' events.
        let next = service
            .run(run(&id, &1, None), &5)
            .await
            .expect("decided again");
        assert_eq!((next.version, next.state.0), (3, 3));
        behind(3).await.expect("other writer");
        // The cache says 3 (3 + 2 fits), the stream 4: refused on the stream as it is.
        let refused = service.run(run(&id, &2, None), &5).await;
        assert!(
            matches!(refused, Err(CommandError::Refused(TooMany))),
            "4 + 2 > 5"
        );
        // A client's If-Match of the version it saw, now stale, is still a conflict, with the
        // stream's version.
        behind(4).await.expect("other writer");
        let stale = service
            .run(
                Request {
                    if_match: Some(4),
                    ..run(&id, &1, None)
                },
                &9,
            )
            .await;
        assert!(matches!(
            stale,
            Err(CommandError::Conflict {
                expected: 4,
                actual: 5
            })
        ));
    }
}
