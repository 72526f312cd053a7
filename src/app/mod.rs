//! The command service: load a case, `decide`, append, and the follow-ups a decision implies.
//! Shared by the HTTP API, the CLI and (later) the scheduler.

pub mod accounts;
pub mod codec;
pub mod directory;
pub mod envelope;
pub mod failure;
mod follow;
pub mod numbers;
pub mod params;
pub mod pipeline;
pub mod rules;
pub mod shared;
mod state;
pub mod verbs;
pub mod views;

pub use state::AppState;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, FixedOffset, Utc};
use domain::calendar::{DeadlinePolicy, WorkingCalendar};
use domain::org::OrgTree;
use domain::roles::{Actor, Role};
use domain::{
    AnswerSource, ArticleFacts, Case, CaseError, CaseId, CitedArticle, Command, Context, Event,
    Intake, MasterInfo, decide, evolve,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::directory::Directory;
use crate::directory_log::SharedOrg;
use crate::rules_log::SharedRules;
use crate::store::stream::StreamName;
use crate::store::{EventStore, NewEvent, Position, RecordedEvent, StoreError};
use codec::{DecodeError, decode, encode};
pub use pipeline::Retry;
use pipeline::{Aggregate, CommandError, CommandService, KeyLocks, Request};

/// Where time comes from; tests inject a fixed clock.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until it is set or moved: tests start the service on it
/// (`server::start_on`) and move time past a deadline without waiting.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(now))
    }

    /// Shows `now` from here on.
    pub fn set(&self, now: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a successful command returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The case.
    pub id: CaseId,
    /// The stream version after the command.
    pub version: u64,
    /// The global position of its last event (for `min_position`).
    pub position: Position,
}

/// Why a command or query failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A rule of the flow refused it.
    #[error(transparent)]
    Domain(#[from] CaseError),
    /// No such case.
    #[error("no case `{0}`")]
    NotFound(String),
    /// `If-Match` or a concurrent writer: the case moved on.
    #[error("case is at version {actual}, expected {expected}")]
    Conflict {
        /// The version the client expected.
        expected: u64,
        /// The version it is at.
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

/// A recorded view of a caller's full identity (DESIGN.md rule 12).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentityView {
    /// The case.
    pub case_id: CaseId,
    /// Who looked.
    pub username: String,
    /// From which unit.
    pub unit_id: domain::org::UnitId,
    /// When (filled from the store on read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// The application: reference data, the store, and a cache of case states.
pub struct App {
    /// The event store.
    pub store: Arc<dyn EventStore>,
    /// The directory (units and users) in force, replaced when it changes; its tree is
    /// [`App::org`].
    pub orgs: Arc<SharedOrg>,
    /// One directory change at a time: each is decided on the newest snapshot.
    directory_writes: tokio::sync::Mutex<()>,
    /// The working calendar, office hours and deadline policy, every version of them
    /// ([`App::calendar`] and [`App::policy`] are the ones in force now).
    pub rules: Arc<SharedRules>,
    /// One change of the rules at a time.
    rules_writes: tokio::sync::Mutex<()>,
    /// Users and sessions.
    pub directory: Directory,
    /// How far this instance has taken in other instances' changes ([`follow`]).
    followed: tokio::sync::watch::Sender<Position>,
    clock: Arc<dyn Clock>,
    /// The idempotency keys in flight, shared by every pipeline.
    keys: Arc<KeyLocks>,
    /// The command pipeline of cases, with their cache.
    cases: CommandService<Case>,
    /// The pipeline of identity views (appended, never read before).
    views: CommandService<IdentityViews>,
    /// The pipeline of knowledge-base articles.
    pub(crate) articles: CommandService<crate::kb::ArticleState>,
    /// The pipeline of the directory's one stream.
    pub(crate) directory_log: CommandService<domain::directory::Directory>,
    /// The pipeline of the rules' one stream.
    pub(crate) rules_log: CommandService<domain::rules::Rules>,
    /// Master case → its merged duplicates (并单), for closing them with the master.
    duplicates: Mutex<HashMap<CaseId, Vec<CaseId>>>,
    /// The day's case numbers: the next one and those given back by failed appends (a store
    /// this process owns).
    next_number: tokio::sync::Mutex<Option<CaseNumbers>>,
    /// The days' counters of a store several instances share.
    shared_numbers: numbers::SharedNumbers,
    /// When each (user, case) identity view was last recorded: a view is recorded once per
    /// [`IDENTITY_VIEW_WINDOW`], not once per read.
    recorded_views: Mutex<HashMap<(String, CaseId), DateTime<Utc>>>,
    /// Names this process among the instances sharing a store (its sign-in facts are
    /// skipped when they come back through the log).
    pub instance: uuid::Uuid,
    /// The login path's guard, which takes other instances' sign-in facts (set once the
    /// service has built it).
    login_guard: std::sync::OnceLock<std::sync::Weak<crate::access::Access>>,
}

/// A caller's full identity seen again by the same user within this time is not recorded
/// again: the audit says who saw it and when they began to, and one user re-reading a case
/// all afternoon writes a handful of events, not thousands.
pub const IDENTITY_VIEW_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

/// The most (user, case) pairs remembered for [`IDENTITY_VIEW_WINDOW`]; beyond it the oldest
/// are forgotten, which only records a view again.
const RECORDED_VIEWS_LIMIT: usize = 100_000;

/// Case numbers of one day (`YYYYMMDD` + sequence), handed out without holes.
struct CaseNumbers {
    /// The day, from [`case_day`].
    day: String,
    /// The next sequence number never handed out.
    next: u32,
    /// Numbers handed out whose append did not happen (or may not have): taken first.
    free: std::collections::BTreeSet<u32>,
    /// Another writer took a number (an append whose outcome was unknown did happen): count
    /// from the store before the next one.
    recount: bool,
}

/// Case numbers an intake tries before it gives up (each one found taken by another writer:
/// an older build's instance on the same store, or an append whose outcome was unknown).
const NUMBER_ATTEMPTS: u32 = 32;

/// Cases held in the cache before it is emptied (a crude bound on memory).
const CACHE_LIMIT: usize = 200_000;

/// Articles held in the cache before it is emptied.
const ARTICLE_CACHE_LIMIT: usize = 10_000;

/// China Standard Time; no daylight saving since 1991.
pub fn shanghai() -> FixedOffset {
    // 8 hours is within the valid range of a fixed offset.
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!())
}

/// A time as every edge writes it for machines: RFC 3339 in Asia/Shanghai, to the second
/// (`2026-12-08T18:00:00+08:00`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// A time as Chinese text writes it for people, in Asia/Shanghai (`2026年12月8日 18:00`):
/// sentences never embed an RFC 3339 stamp.
pub fn zh_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai())
        .format("%Y年%-m月%-d日 %H:%M")
        .to_string()
}

impl<'a> Retry<'a> {
    /// A `create` (受理) sent by `username` with `key`.
    pub fn create(key: &'a str, username: &'a str, intake: &Intake, submit: bool) -> Self {
        Retry::new(
            key,
            username,
            "create".into(),
            &format!("{intake:?}{submit}"),
        )
    }

    /// A command on case `case_id` sent by `username` with `key` (and `If-Match`, if any).
    pub fn command(
        key: &'a str,
        username: &'a str,
        case_id: &CaseId,
        cmd: &Command,
        if_match: Option<u64>,
    ) -> Self {
        Retry::new(
            key,
            username,
            format!("{}\n{}", case_id, cmd.name()),
            &format!("{}{if_match:?}", request_text(cmd)),
        )
    }

    /// A command on knowledge-base article `article_id` sent by `username` with `key` (and
    /// `If-Match`, if any); `verb` names the command (`draft`, `edit`, `publish`, `retire`).
    pub fn article(
        key: &'a str,
        username: &'a str,
        article_id: &str,
        verb: &str,
        request: &str,
        if_match: Option<u64>,
    ) -> Self {
        Retry::new(
            key,
            username,
            format!("kb\n{article_id}\n{verb}"),
            &format!("{request}{if_match:?}"),
        )
    }
}

/// The day part of case numbers: the date of `at` in Asia/Shanghai, `YYYYMMDD`.
pub fn case_day(at: DateTime<Utc>) -> String {
    at.with_timezone(&shanghai()).format("%Y%m%d").to_string()
}

/// The `n`th case number of `day` (from [`case_day`]): the day and `n` in at least five digits,
/// `2025031400042`.
///
/// # Errors
/// When `day` is not a case number's day part.
pub fn case_number(day: &str, n: u32) -> Result<CaseId, domain::case::InvalidCaseId> {
    CaseId::parse(&format!("{day}{n:05}"))
}

/// What a command's fingerprint is made of: what the client sent (for an answer, the ids it
/// cited, not what the knowledge base said of them, which may change between retries).
fn request_text(cmd: &Command) -> String {
    match cmd {
        Command::Answer {
            reply,
            source: AnswerSource::Articles(cited),
        } => {
            let ids: Vec<&str> = cited.iter().map(|c| c.id.as_str()).collect();
            format!("Answer {reply:?} {ids:?}")
        }
        _ => format!("{cmd:?}"),
    }
}

impl App {
    /// Wires the application.
    pub fn new(
        store: Arc<dyn EventStore>,
        orgs: Arc<SharedOrg>,
        rules: Arc<SharedRules>,
        directory: Directory,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let keys = Arc::new(KeyLocks::default());
        let (s, k) = (&store, &keys);
        let cases = CommandService::new(s.clone(), k.clone(), Case::default(), CACHE_LIMIT);
        let views = CommandService::new(s.clone(), k.clone(), IdentityViews, 0);
        let articles = CommandService::new(
            s.clone(),
            k.clone(),
            crate::kb::ArticleState::default(),
            ARTICLE_CACHE_LIMIT,
        );
        let directory_log = CommandService::new(
            s.clone(),
            k.clone(),
            domain::directory::Directory::default(),
            1,
        );
        let rules_log =
            CommandService::new(s.clone(), k.clone(), rules.current().rules.base_only(), 1);
        let followed = tokio::sync::watch::Sender::new(store.head());
        Self {
            store,
            orgs,
            followed,
            directory_writes: tokio::sync::Mutex::new(()),
            rules,
            rules_writes: tokio::sync::Mutex::new(()),
            directory,
            clock,
            keys,
            cases,
            views,
            articles,
            directory_log,
            rules_log,
            duplicates: Mutex::new(HashMap::new()),
            next_number: tokio::sync::Mutex::new(None),
            shared_numbers: numbers::SharedNumbers::default(),
            recorded_views: Mutex::new(HashMap::new()),
            instance: uuid::Uuid::new_v4(),
            login_guard: std::sync::OnceLock::new(),
        }
    }

    /// Hands other instances' sign-in facts to `access` from now on.
    pub fn follow_logins_with(&self, access: &Arc<crate::access::Access>) {
        let _ = self.login_guard.set(Arc::downgrade(access));
    }

    /// The six-level tree in force (of the open units).
    pub fn org(&self) -> Arc<OrgTree> {
        self.orgs.tree()
    }

    /// The working calendar in force now (the rules' version recorded last before now).
    pub fn calendar(&self) -> Arc<WorkingCalendar> {
        self.rules
            .current()
            .rules
            .in_force(self.now())
            .calendar()
            .clone()
    }

    /// The deadline policy in force now.
    pub fn policy(&self) -> Arc<DeadlinePolicy> {
        self.rules
            .current()
            .rules
            .in_force(self.now())
            .policy()
            .clone()
    }

    /// The clock the application records with.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The current time of the application's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The actor follow-ups run as.
    pub fn system_actor(&self) -> Actor {
        Actor {
            username: "system".into(),
            unit_id: self.org().root().id.clone(),
            roles: vec![Role::Admin],
            oversees: Vec::new(),
        }
    }

    /// Start-up work: index merged duplicates and close those whose master was archived while
    /// the process was down (or crashed between the two appends).
    ///
    /// # Errors
    /// Store and decode failures.
    pub async fn start(&self) -> Result<(), AppError> {
        let merged = self.store.events_of_type("merged").await?;
        for rec in &merged {
            let Some(dup) = StreamName::case_id(&rec.stream) else {
                continue;
            };
            if let domain::EventBody::Merged { master_id, .. } = decode(rec)?.body {
                self.index_duplicate(master_id, dup);
            }
        }
        let masters: Vec<CaseId> = self.lock_duplicates().keys().cloned().collect();
        for master in masters {
            let case = self.case(&master).await?;
            if case.stage() == domain::Stage::Archived {
                self.close_duplicates(&master).await;
            }
        }
        Ok(())
    }

    fn lock_duplicates(&self) -> std::sync::MutexGuard<'_, HashMap<CaseId, Vec<CaseId>>> {
        self.duplicates.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn index_duplicate(&self, master: CaseId, dup: CaseId) {
        let mut map = self.lock_duplicates();
        let list = map.entry(master).or_default();
        if !list.contains(&dup) {
            list.push(dup);
        }
    }

    /// The merged duplicates of a master case.
    pub fn duplicates_of(&self, master: &CaseId) -> Vec<CaseId> {
        self.lock_duplicates()
            .get(master)
            .cloned()
            .unwrap_or_default()
    }

    /// The current state of a case (from the cache, else replayed from its stream).
    ///
    /// # Errors
    /// Store and decode failures; a missing case is `Case::default()` (stage `New`).
    pub async fn case(&self, id: &CaseId) -> Result<Arc<Case>, AppError> {
        Ok(self
            .cases
            .load(id)
            .await
            .map_err(|e| case_error(e, id.as_str()))?
            .state)
    }

    /// A case with its full history, for display.
    ///
    /// # Errors
    /// [`AppError::NotFound`] when there is no such case.
    pub async fn history(
        &self,
        id: &CaseId,
    ) -> Result<(Case, Vec<(RecordedEvent, Event)>), AppError> {
        let records = self.store.read_stream(&id.stream(), 1).await?;
        if records.is_empty() {
            return Err(AppError::NotFound(id.to_string()));
        }
        let mut case = Case::default();
        let mut out = Vec::with_capacity(records.len());
        for rec in records {
            let event = decode(&rec)?;
            case = evolve(case, &event);
            out.push((rec, event));
        }
        Ok((case, out))
    }

    fn context<'a>(
        &'a self,
        actor: &'a Actor,
        org: &'a OrgTree,
        rules: &'a domain::rules::Version,
        now: DateTime<Utc>,
    ) -> Context<'a> {
        Context {
            now,
            actor,
            org,
            calendar: rules.calendar(),
            policy: rules.policy(),
        }
    }

    /// 受理: creates a case (draft or submitted) under a new case number.
    ///
    /// # Errors
    /// Domain refusals, store failures.
    #[tracing::instrument(skip_all, fields(actor = %actor.username))]
    pub async fn create(
        &self,
        actor: &Actor,
        intake: Intake,
        submit: bool,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome, AppError> {
        let retry = idempotency_key.map(|key| Retry::create(key, &actor.username, &intake, submit));
        let _key = self.keys.lock(retry.as_ref()).await;
        let fail = |e| case_error(e, "create");
        // What the key claimed: a number taken before its intake was appended. The intake
        // there is this key's answer; a claim without one (cut off in between) is this
        // key's number to use.
        let (mut claims, mut claimed) = (0, None);
        if let Some(retry) = &retry {
            let (version, last) = self.cases.claimed(retry).await.map_err(fail)?;
            claims = version;
            if let Some(stream) = last {
                if let Some(done) = self
                    .cases
                    .replayed_in(Some(retry), &stream)
                    .await
                    .map_err(fail)?
                {
                    let Some(id) = StreamName::case_id(&done.stream) else {
                        return Err(AppError::KeyReused);
                    };
                    return Ok(Outcome {
                        id,
                        version: done.version,
                        position: done.position,
                    });
                }
                claimed = StreamName::case_id(&stream);
            }
        }
        let now = self.now();
        let org = self.org();
        let rules = self.rules.current();
        let ctx = self.context(actor, &org, rules.rules.in_force(now), now);
        let command = |case_id: &CaseId| Command::Create {
            case_id: case_id.clone(),
            intake: intake.clone(),
            submit,
        };
        // Validate before numbering: the rules do not look at the number, so a refused intake
        // uses none up (an auditor reads a gap in a day's numbers as a deleted case).
        let day = case_day(now);
        decide(
            &Case::default(),
            &command(&case_number(&day, 0).map_err(|e| StoreError::Backend(e.to_string().into()))?),
            &ctx,
        )?;
        for attempt in 1..=NUMBER_ATTEMPTS {
            let case_id = match claimed.take().filter(|id| id.as_str().starts_with(&day)) {
                Some(id) => id,
                None => {
                    let id = self.take_case_number(&day).await?;
                    if let Some(retry) = &retry {
                        match self.cases.claim(retry, claims, &id.stream()).await {
                            Ok(version) => claims = version,
                            Err(err) => {
                                self.give_back_case_number(&day, &id).await;
                                return Err(fail(err));
                            }
                        }
                    }
                    id
                }
            };
            let cmd = command(&case_id);
            let request = Request {
                id: &case_id,
                command: &cmd,
                if_match: None,
                retry: retry.as_ref(),
            };
            match self.cases.decide_and_append(request, &ctx).await {
                // The number is taken in the store (another instance, or an append whose
                // outcome was unknown did happen): count again from the store.
                // (On a shared store the counter gave the number, so only a writer without
                // the counter, an older build, can have taken it: the next one is taken.)
                Err(CommandError::Conflict { .. }) if self.store.is_shared() => {}
                Err(CommandError::Conflict { .. }) => {
                    self.recount_case_numbers().await;
                    // Instances numbering at once count the same numbers from the store: a
                    // random pause gets them out of step.
                    pipeline::race_pause(attempt).await;
                }
                // The append did not happen or may not have: offer the number again; the
                // store's own check refuses it if it was stored after all.
                Err(err) => {
                    self.give_back_case_number(&day, &case_id).await;
                    return Err(case_error(err, case_id.as_str()));
                }
                Ok(written) => {
                    return Ok(Outcome {
                        id: case_id,
                        version: written.version,
                        position: written.position,
                    });
                }
            }
        }
        // Other writers took every number tried: busy, not broken (503, try again).
        Err(AppError::Store(StoreError::Unavailable(
            format!("{NUMBER_ATTEMPTS} case numbers in a row were taken by other writers").into(),
        )))
    }

    /// The next case number of `day`. On a store several instances share, the day's counter
    /// stream gives it ([`numbers::SharedNumbers`]); on one this process owns, the smallest
    /// one given back, else one past the highest this process has handed out or the store
    /// holds.
    async fn take_case_number(&self, day: &str) -> Result<CaseId, AppError> {
        if self.store.is_shared() {
            let n = self.shared_numbers.take(self.store.clone(), day).await?;
            return case_number(day, n)
                .map_err(|e| AppError::Store(StoreError::Backend(e.to_string().into())));
        }
        let mut numbers = self.next_number.lock().await;
        let fresh = numbers.as_ref().is_none_or(|n| n.day != day);
        if fresh || numbers.as_ref().is_some_and(|n| n.recount) {
            let stored = numbers::stored_numbers(&*self.store, day).await?;
            let past_stored = stored.iter().max().map_or(1, |m| m + 1);
            match numbers.as_mut() {
                Some(n) if !fresh => {
                    n.next = n.next.max(past_stored);
                    n.free.retain(|f| !stored.contains(f));
                    n.recount = false;
                }
                _ => {
                    *numbers = Some(CaseNumbers {
                        day: day.to_owned(),
                        next: past_stored,
                        free: std::collections::BTreeSet::new(),
                        recount: false,
                    });
                }
            }
        }
        let Some(numbers) = numbers.as_mut() else {
            unreachable!("set above")
        };
        let n = match numbers.free.pop_first() {
            Some(n) => n,
            None => {
                numbers.next += 1;
                numbers.next - 1
            }
        };
        case_number(day, n).map_err(|e| AppError::Store(StoreError::Backend(e.to_string().into())))
    }

    /// Returns a number whose case was not stored, so the next intake of the day takes it.
    async fn give_back_case_number(&self, day: &str, case_id: &CaseId) {
        let Some(n) = numbers::number_in_day(case_id, day) else {
            return;
        };
        if self.store.is_shared() {
            self.shared_numbers.give_back(day, n);
            return;
        }
        let mut numbers = self.next_number.lock().await;
        if let Some(numbers) = numbers.as_mut()
            && numbers.day == day
        {
            numbers.free.insert(n);
        }
    }

    /// Marks the counter stale, so the next number is counted from the store again (the
    /// numbers given back and not stored meanwhile are kept).
    async fn recount_case_numbers(&self) {
        if let Some(numbers) = self.next_number.lock().await.as_mut() {
            numbers.recount = true;
        }
    }

    /// Runs a command on an existing case.
    ///
    /// # Errors
    /// [`AppError::NotFound`], [`AppError::Conflict`] (stale `If-Match` or a concurrent writer),
    /// domain refusals, store failures.
    #[tracing::instrument(skip_all, fields(case_id = %case_id, verb = cmd.name(), actor = %actor.username))]
    pub async fn execute(
        &self,
        actor: &Actor,
        case_id: &CaseId,
        cmd: Command,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome, AppError> {
        let retry = idempotency_key
            .map(|key| Retry::command(key, &actor.username, case_id, &cmd, if_match));
        let (org, rules, now) = (self.org(), self.rules.current(), self.now());
        let ctx = self.context(actor, &org, rules.rules.in_force(now), now);
        let request = Request {
            id: case_id,
            command: &cmd,
            if_match,
            retry: retry.as_ref(),
        };
        let written = self
            .cases
            .run(request, &ctx)
            .await
            .map_err(|e| case_error(e, case_id.as_str()))?;
        self.after(case_id, &written.events).await;
        Ok(Outcome {
            id: case_id.clone(),
            version: written.version,
            position: written.position,
        })
    }

    /// Follow-ups: index a merge; close a master's duplicates when it is archived.
    async fn after(&self, case_id: &CaseId, events: &[Event]) {
        for e in events {
            match &e.body {
                domain::EventBody::Merged { master_id, .. } => {
                    self.index_duplicate(master_id.clone(), case_id.clone());
                }
                domain::EventBody::Archived { master_id: None } => {
                    self.close_duplicates(case_id).await;
                }
                _ => {}
            }
        }
    }

    async fn close_duplicates(&self, master: &CaseId) {
        let system = self.system_actor();
        for dup in self.duplicates_of(master) {
            let Ok(case) = self.case(&dup).await else {
                continue;
            };
            if case.stage() == domain::Stage::Archived {
                continue;
            }
            let cmd = Command::ArchiveWithMaster {
                master_id: master.clone(),
            };
            // Boxed: `execute` calls back into this function through `after`.
            if let Err(err) = Box::pin(self.execute(&system, &dup, cmd, None, None)).await {
                // Start-up reconciliation retries it.
                tracing::warn!(duplicate = %dup, error = %err, "failed to close a merged duplicate");
            }
        }
    }

    /// 并单: loads the master so the rule can check it, then merges.
    ///
    /// # Errors
    /// As [`App::execute`]; an unknown master is [`CaseError::InvalidMaster`].
    pub async fn merge(
        &self,
        actor: &Actor,
        case_id: &CaseId,
        master_id: &CaseId,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome, AppError> {
        let master = self.case(master_id).await?;
        // A master outside the caller's scope is as unknown as one that does not exist: the
        // rule sees a case that was never created, after checking who asks. (`execute` checks
        // the duplicate's own scope first, so nothing of the master leaks to a caller outside.)
        let info = if domain::identity::may_view_case(actor, &master, &self.org()) {
            MasterInfo {
                id: master_id.clone(),
                stage: master.stage(),
                merged: master.merged_into().is_some(),
            }
        } else {
            MasterInfo {
                id: master_id.clone(),
                stage: domain::Stage::New,
                merged: false,
            }
        };
        self.execute(
            actor,
            case_id,
            Command::Merge { master: info },
            if_match,
            idempotency_key,
        )
        .await
    }

    /// 即办: loads the cited articles so the rule (15) can check they are published and valid
    /// now, then answers; with `knowledge_gap` the answer records the gap instead.
    ///
    /// # Errors
    /// As [`App::execute`]; an article that does not decode is a store failure.
    #[allow(clippy::too_many_arguments)]
    pub async fn answer(
        &self,
        actor: &Actor,
        case_id: &CaseId,
        reply: String,
        kb_article_ids: Vec<String>,
        knowledge_gap: Option<String>,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome, AppError> {
        let source = match knowledge_gap {
            Some(question) => AnswerSource::KnowledgeGap { question },
            None => {
                let mut cited = Vec::new();
                // One past the limit is enough for the rule to refuse too many; no more
                // streams are read for a long list.
                for id in kb_article_ids
                    .iter()
                    .take(domain::command::limits::ARTICLES + 1)
                {
                    let (article, _) =
                        crate::kb::load_article(self, id.trim())
                            .await
                            .map_err(|e| {
                                AppError::Store(StoreError::Backend(format!("{e:#}").into()))
                            })?;
                    cited.push(CitedArticle {
                        id: id.clone(),
                        facts: article.map(|a| ArticleFacts {
                            published: a.status == knowledge_base::article::Status::Published,
                            valid_from: a.content.valid_from,
                            valid_until: a.content.valid_until,
                        }),
                    });
                }
                AnswerSource::Articles(cited)
            }
        };
        self.execute(
            actor,
            case_id,
            Command::Answer { reply, source },
            if_match,
            idempotency_key,
        )
        .await
    }

    /// Records that `actor` saw the caller's full identity on `case_id`, unless they were
    /// recorded seeing it within [`IDENTITY_VIEW_WINDOW`].
    ///
    /// # Errors
    /// Store failures: the view is then not shown.
    pub async fn record_identity_view(
        &self,
        actor: &Actor,
        case_id: &CaseId,
    ) -> Result<(), AppError> {
        let now = self.now();
        let key = (actor.username.clone(), case_id.clone());
        {
            let recorded = self
                .recorded_views
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if recorded
                .get(&key)
                .is_some_and(|at| now - *at < IDENTITY_VIEW_WINDOW && *at <= now)
            {
                return Ok(());
            }
        }
        let view = IdentityView {
            case_id: case_id.clone(),
            username: actor.username.clone(),
            unit_id: actor.unit_id.clone(),
            at: Some(now),
        };
        let request = Request {
            id: case_id,
            command: &view,
            if_match: None,
            retry: None,
        };
        self.views
            .run(request, &())
            .await
            .map_err(|e| case_error(e.refused_never(), case_id.as_str()))?;
        let mut recorded = self
            .recorded_views
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if recorded.len() >= RECORDED_VIEWS_LIMIT {
            recorded.retain(|_, at| now - *at < IDENTITY_VIEW_WINDOW);
            if recorded.len() >= RECORDED_VIEWS_LIMIT {
                recorded.clear();
            }
        }
        recorded.insert(key, now);
        Ok(())
    }

    /// Every recorded view of a case's caller identity, oldest first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn identity_views(&self, case_id: &CaseId) -> Result<Vec<IdentityView>, AppError> {
        let records = self
            .store
            .read_stream(&StreamName::IdentityViews(case_id.clone()).to_string(), 1)
            .await?;
        let mut out = Vec::with_capacity(records.len());
        for record in &records {
            let mut view = IdentityViews::decode(record)?;
            view.at = view.at.or(Some(record.recorded_at));
            out.push(view);
        }
        Ok(out)
    }
}

/// A case pipeline's failure as the application's (`id` names the case of a `NotFound`).
fn case_error(err: CommandError<CaseError>, id: &str) -> AppError {
    match err {
        CommandError::Refused(err) => AppError::Domain(err),
        CommandError::NotFound => AppError::NotFound(id.to_owned()),
        CommandError::Conflict { expected, actual } => AppError::Conflict { expected, actual },
        CommandError::KeyReused => AppError::KeyReused,
        CommandError::Store(err) => AppError::Store(err),
        CommandError::Decode(err) => AppError::Decode(err),
    }
}

/// 工单 (a case) in the command pipeline: its stream `case-{工单编号}`, the flow's rules
/// (`domain::decide`), and scope before them (rule 14).
impl Aggregate for Case {
    type Id = CaseId;
    type Command = Command;
    type Event = Event;
    type Error = CaseError;
    type Context<'a> = Context<'a>;

    fn stream(id: &CaseId) -> StreamName {
        StreamName::Case(id.clone())
    }

    /// An intake (受理) is for a number never used: it is decided without reading, and a
    /// number another writer took is a conflict of the append.
    fn starts_stream(command: &Command) -> bool {
        matches!(command, Command::Create { .. })
    }

    /// Outside the caller's scope a case answers as an unknown one, so the verbs tell nobody
    /// which cases exist or where they stand.
    fn visible(&self, version: u64, command: &Command, ctx: &Context<'_>) -> bool {
        Self::starts_stream(command)
            || (version > 0 && domain::identity::may_view_case(ctx.actor, self, ctx.org))
    }

    fn decide(&self, command: &Command, ctx: &Context<'_>) -> Result<Vec<Event>, CaseError> {
        decide(self, command, ctx)
    }

    fn evolve(self, event: &Event) -> Self {
        evolve(self, event)
    }

    fn encode(event: &Event, event_id: Uuid, request: Option<&str>) -> NewEvent {
        encode(event, event_id, request)
    }

    fn decode(record: &RecordedEvent) -> Result<Event, DecodeError> {
        decode(record)
    }
}

/// The recorded full views of a case's caller (rule 12): stream `identity-views-{工单编号}`,
/// every view appended as it happens, nothing decided.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityViews;

impl Aggregate for IdentityViews {
    type Id = CaseId;
    type Command = IdentityView;
    type Event = IdentityView;
    type Error = std::convert::Infallible;
    type Context<'a> = ();

    const APPEND_ONLY: bool = true;

    fn stream(id: &CaseId) -> StreamName {
        StreamName::IdentityViews(id.clone())
    }

    fn decide(&self, view: &IdentityView, _ctx: &()) -> Result<Vec<IdentityView>, Self::Error> {
        Ok(vec![view.clone()])
    }

    fn evolve(self, _view: &IdentityView) -> Self {
        self
    }

    /// The view as data, its time as metadata (`at`).
    fn encode(view: &IdentityView, event_id: Uuid, _request: Option<&str>) -> NewEvent {
        let at = view.at;
        let data = IdentityView {
            at: None,
            ..view.clone()
        };
        NewEvent {
            event_id,
            event_type: "identity_viewed".into(),
            schema_version: 1,
            // Plain data with string keys: serialising cannot fail.
            data: serde_json::to_string(&data).unwrap_or_default(),
            metadata: serde_json::json!({ "at": at }).to_string(),
        }
    }

    fn decode(record: &RecordedEvent) -> Result<IdentityView, DecodeError> {
        let mut view: IdentityView =
            serde_json::from_str(&record.data).map_err(|e| envelope::json_error(record, e))?;
        let meta: serde_json::Value = serde_json::from_str(&record.metadata).unwrap_or_default();
        view.at = meta
            .get("at")
            .and_then(|v| v.as_str())
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(view)
    }
}

#[cfg(test)]
pub(crate) mod tests;
