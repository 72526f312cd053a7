//! The knowledge-base service: article commands through the event store (stream `kb-{id}`),
//! the tantivy index in `data/kb-index/` kept current as a projection of the event log, the
//! fixture articles seeded on first start, and queries scoped to what is valid now.
//!
//! The index commits its checkpoint (the last global position applied) and the answer counts
//! in its commit payload, so a crash between two commits only replays events already in the
//! store; nothing is applied twice and nothing is skipped. [`crate::index_follower`] keeps it
//! current; this module says how events change it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use domain::roles::Role;
use knowledge_base::article::{
    self, Article, ArticleCommand, ArticleContent, ArticleError, ArticleEvent,
};
use knowledge_base::index::{IndexError, KbIndex, SearchPage, SearchRequest};
use knowledge_base::projection::{self, Projection, ProjectionError};
use serde::Serialize;
use uuid::Uuid;

use crate::app::App;
use crate::app::codec::DecodeError;
use crate::app::pipeline::{Aggregate, CommandError, Request};
use crate::directory::User;
use crate::index_follower::{IndexFollower, IndexProjection};
use crate::store::stream::StreamName;
use crate::store::{EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};

/// How long a command waits for the index to show its own change.
const WRITE_VISIBLE_TIMEOUT: Duration = Duration::from_secs(5);
const SEED_NAMESPACE: Uuid = Uuid::from_u128(0x6d69_6e71_696e_672d_6b62_2d73_6565_6401);

/// Why a knowledge-base operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// The caller may not change this article.
    #[error("only shift leaders, admins and handlers of the owning unit may edit articles")]
    Forbidden,
    /// The owning unit is not in the org tree.
    #[error("unit `{0}` does not exist")]
    UnknownUnit(String),
    /// A rule of the article life cycle.
    #[error(transparent)]
    Article(#[from] ArticleError),
    /// A text field holds a control character or a bidirectional override
    /// (`domain::text::allowed`).
    #[error("`{field}` holds {code_point} at character {at}, which no text may hold")]
    ForbiddenCharacter {
        /// The field.
        field: &'static str,
        /// The character as `U+XXXX`.
        code_point: String,
        /// Its position, in characters from 0.
        at: usize,
    },
    /// An idempotency key already used for a different request.
    #[error("the idempotency key was already used for a different request")]
    KeyReused,
    /// The article changed since the version the client saw.
    #[error("article `{id}` is at version {actual}, expected {expected}")]
    Conflict {
        /// The article.
        id: String,
        /// The stream version the client sent.
        expected: u64,
        /// The stream's version.
        actual: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The projection failed.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The fixture articles do not parse.
    #[error("`fixtures/kb/articles.jsonl` does not parse")]
    Fixtures(#[source] serde_json::Error),
    /// A stored article event does not decode.
    #[error("article event at position {0} does not decode")]
    Decode(u64),
}

/// The domain's input hygiene (`domain::text`) on every text of an article command: the
/// body and a retirement's reason may have several lines, the rest are one line each.
fn check_texts(command: &ArticleCommand) -> Result<(), KbError> {
    use domain::text::{Lines, check};
    let checked = |field: &'static str, value: &str, lines: Lines| {
        check(value, lines).map_err(|bad| KbError::ForbiddenCharacter {
            field,
            code_point: bad.code_point(),
            at: bad.at,
        })
    };
    match command {
        ArticleCommand::Draft { content, .. } | ArticleCommand::Edit { content } => {
            checked("title", &content.title, Lines::One)?;
            checked("body", &content.body, Lines::Many)?;
            checked("category", &content.category, Lines::One)?;
            checked("unit_id", &content.unit_id, Lines::One)?;
            for question in &content.similar_questions {
                checked("similar_questions", question, Lines::One)?;
            }
            for tag in &content.tags {
                checked("tags", tag, Lines::One)?;
            }
            if let Some(source) = &content.source {
                checked("source", source, Lines::One)?;
            }
        }
        ArticleCommand::Retire { reason } => checked("reason", reason, Lines::Many)?,
        ArticleCommand::Publish => {}
    }
    Ok(())
}

/// An article's state from its stream as the store has it now (`None` when there is none, or
/// the id cannot be one) and the stream's version.
///
/// # Errors
/// Store failures, [`KbError::Decode`].
pub async fn load_article(app: &App, id: &str) -> Result<(Option<Article>, u64), KbError> {
    if !article::is_valid_id(id) {
        return Ok((None, 0));
    }
    let id = id.to_owned();
    let loaded = app
        .articles
        .read(&id)
        .await
        .map_err(|err| article_error(err, &id))?;
    Ok((loaded.state.0.clone(), loaded.version))
}

/// An article pipeline's failure as the knowledge base's.
fn article_error(err: CommandError<KbError>, id: &str) -> KbError {
    match err {
        CommandError::Refused(err) => err,
        CommandError::NotFound => KbError::Article(ArticleError::NotFound),
        CommandError::Conflict { expected, actual } => KbError::Conflict {
            id: id.to_owned(),
            expected,
            actual,
        },
        CommandError::KeyReused => KbError::KeyReused,
        CommandError::Store(err) => KbError::Store(err),
        CommandError::Decode(err) => KbError::Decode(err.position()),
    }
}

/// A knowledge-base article (知识库条目) in the command pipeline (stream `kb-{id}`): `None`
/// before it is drafted.
#[derive(Debug, Clone, Default)]
pub struct ArticleState(pub Option<Article>);

/// What the article rules read besides the article: when, who edits, which units exist.
pub struct ArticleContext<'a> {
    /// The time of the command.
    pub now: chrono::DateTime<chrono::Utc>,
    /// The caller as the rules see an editor.
    pub editor: article::Editor<'a>,
    /// Whether a unit is in the tree in force.
    pub unit_exists: &'a (dyn Fn(&str) -> bool + Sync),
}

impl Aggregate for ArticleState {
    type Id = String;
    type Command = ArticleCommand;
    type Event = ArticleEvent;
    type Error = KbError;
    type Context<'a> = ArticleContext<'a>;

    fn stream(id: &String) -> StreamName {
        StreamName::Article(id.clone())
    }

    fn decide(
        &self,
        command: &ArticleCommand,
        ctx: &ArticleContext<'_>,
    ) -> Result<Vec<ArticleEvent>, KbError> {
        article::decide(
            self.0.as_ref(),
            command,
            ctx.now,
            &ctx.editor,
            ctx.unit_exists,
        )
        .map_err(|err| match err {
            ArticleError::NotEditor => KbError::Forbidden,
            ArticleError::UnknownUnit(unit) => KbError::UnknownUnit(unit),
            other => KbError::Article(other),
        })
    }

    fn evolve(self, event: &ArticleEvent) -> Self {
        ArticleState(article::evolve(self.0, event))
    }

    fn encode(event: &ArticleEvent, event_id: Uuid, request: Option<&str>) -> NewEvent {
        encode(event, event_id, request)
    }

    fn decode(record: &RecordedEvent) -> Result<ArticleEvent, DecodeError> {
        projection::decode_article_event(&record.data)
            .map_err(|e| crate::app::envelope::json_error(record, e))
    }
}

/// An article with what the projection knows of it.
#[derive(Debug, Clone, Serialize)]
pub struct ArticleView {
    /// The article.
    #[serde(flatten)]
    pub article: Article,
    /// Stream version (send it as `If-Match`).
    pub stream_version: u64,
    /// How many calls it answered.
    pub answer_count: u64,
}

/// What a command returns.
#[derive(Debug, Clone)]
pub struct Written {
    /// The article after the command.
    pub article: Article,
    /// The stream version after the command.
    pub stream_version: u64,
    /// The global position of the last event.
    pub position: u64,
}

/// The knowledge-base service.
pub struct Kb {
    app: Arc<App>,
    index: Arc<IndexFollower<Projection>>,
}

impl std::fmt::Debug for Kb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kb").finish_non_exhaustive()
    }
}

/// The index directory in a data directory.
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("kb-index")
}

fn open_projection(dir: &Path) -> anyhow::Result<Projection> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "failed to create search index directory `{}`",
            dir.display()
        )
    })?;
    let segmenter = knowledge_base::fixtures::segmenter()
        .context("failed to load `fixtures/kb/user-dict.txt`")?;
    let index = KbIndex::open_or_create(dir, segmenter, knowledge_base::fixtures::synonyms())
        .with_context(|| format!("failed to open search index `{}`", dir.display()))?;
    crate::index_follower::log_replaced(
        "knowledge-base index",
        dir,
        index.opened(),
        knowledge_base::index::SCHEMA_VERSION,
    );
    Projection::open(index)
        .with_context(|| format!("failed to read the checkpoint of `{}`", dir.display()))
}

/// Seeds the fixture articles into a store that has none, as a first start does, timed by the
/// application's clock; does nothing when articles exist.
///
/// # Errors
/// Store failures, invalid fixtures.
/// The seeding of the fixtures' articles on a first start.
const SYSTEM: article::Editor<'static> = article::Editor {
    username: "system",
    any_unit: true,
    own_unit: None,
};

pub async fn seed_articles(app: &App) -> Result<(), KbError> {
    let store = &app.store;
    if !store
        .streams_with_prefix(article::STREAM_PREFIX)
        .await?
        .is_empty()
    {
        return Ok(());
    }
    let seeds = knowledge_base::fixtures::articles().map_err(KbError::Fixtures)?;
    let now = app.now();
    // Concurrent appends share the store's group commits.
    let mut appends = tokio::task::JoinSet::new();
    for seed in seeds {
        let draft = ArticleCommand::Draft {
            id: seed.id.clone(),
            content: seed.content,
        };
        let mut events = article::decide(None, &draft, now, &SYSTEM, &|_| true)?;
        let drafted = article::replay(&events);
        events.extend(article::decide(
            drafted.as_ref(),
            &ArticleCommand::Publish,
            now,
            &SYSTEM,
            &|_| true,
        )?);
        let new_events: Vec<NewEvent> = events
            .iter()
            .enumerate()
            .map(|(n, event)| {
                let key = format!("kb-seed/{}/{n}", seed.id);
                encode(event, Uuid::new_v5(&SEED_NAMESPACE, key.as_bytes()), None)
            })
            .collect();
        let store = store.clone();
        appends.spawn(async move {
            store
                .append(
                    &article::stream_name(&seed.id),
                    ExpectedVersion::NoStream,
                    new_events,
                )
                .await
        });
    }
    while let Some(res) = appends.join_next().await {
        match res {
            // Another start seeded it first (or a retry after a crash).
            Ok(Ok(_) | Err(StoreError::Conflict { .. })) => {}
            Ok(Err(err)) => return Err(err.into()),
            Err(_) => return Err(StoreError::Backend("seeding task failed".into()).into()),
        }
    }
    tracing::info!("seeded the knowledge base with the fixture articles");
    Ok(())
}

impl Kb {
    /// Opens the index in `data_dir/kb-index`, seeds the fixture articles into an empty store,
    /// and, in the background until [`Kb::stop`], catches up with the store and follows it
    /// ([`Kb::ready_within`] says when it has caught up).
    ///
    /// # Errors
    /// IO, store or index failures, invalid fixtures.
    pub async fn start(data_dir: &Path, app: Arc<App>) -> anyhow::Result<Arc<Kb>> {
        let projection = crate::index_follower::open_or_move_aside(
            "knowledge-base index",
            &index_dir(data_dir),
            open_projection,
        )?;
        // Before seeding, which moves the store's head.
        crate::index_follower::reset_if_ahead(&projection, app.store.as_ref())?;
        seed_articles(&app)
            .await
            .context("failed to seed the knowledge base")?;
        let index = IndexFollower::start(projection, app.store.clone())?;
        Ok(Arc::new(Kb { app, index }))
    }

    /// Stops following the store.
    pub async fn stop(&self) {
        self.index.stop().await;
    }

    /// Rebuilds the index of `data_dir` from position 0 (run while the service is stopped);
    /// returns the checkpoint reached.
    ///
    /// # Errors
    /// Store or index failures.
    pub async fn rebuild(data_dir: &Path, store: Arc<dyn EventStore>) -> anyhow::Result<u64> {
        let projection = crate::index_follower::open_or_move_aside(
            "knowledge-base index",
            &index_dir(data_dir),
            open_projection,
        )?;
        IndexFollower::rebuild(projection, store).await
    }

    /// Waits until the index has applied `position` (or `timeout`); whether it did.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        self.index.wait_for(position, timeout).await
    }

    /// Waits until the index has caught up with what the store held at start (or `timeout`);
    /// whether it has. Before then it may lack articles, or answer with ones since retired.
    pub async fn ready_within(&self, timeout: Duration) -> bool {
        self.index.ready_within(timeout).await
    }

    /// Where the index stands.
    pub fn status(&self) -> crate::index_follower::IndexStatus {
        self.index.status()
    }

    /// Articles answering `request` now.
    ///
    /// # Errors
    /// [`KbError::Index`].
    pub fn search(&self, request: &SearchRequest) -> Result<SearchPage, KbError> {
        Ok(self
            .index
            .projection()
            .index()
            .search(request, self.app.now())?)
    }

    /// Suggestions for text being typed.
    ///
    /// # Errors
    /// [`KbError::Index`].
    pub fn suggest(&self, text: &str, limit: usize) -> Result<SearchPage, KbError> {
        Ok(self
            .index
            .projection()
            .index()
            .suggest(text, limit, self.app.now())?)
    }

    /// Every article in any state (draft, published, retired), newest change first, read
    /// from the event store (one stream per article, so it stays right while the index
    /// catches up).
    ///
    /// # Errors
    /// Store failures, [`KbError::Decode`].
    pub async fn articles(&self) -> Result<Vec<ArticleView>, KbError> {
        let streams = self
            .app
            .store
            .streams_with_prefix(article::STREAM_PREFIX)
            .await?;
        let mut out = Vec::with_capacity(streams.len());
        for (stream, _) in streams {
            let Some(id) = stream.strip_prefix(article::STREAM_PREFIX) else {
                continue;
            };
            if let (Some(article), stream_version) = self.load(id).await? {
                out.push(ArticleView {
                    answer_count: self.answer_count(&article.id),
                    article,
                    stream_version,
                });
            }
        }
        out.sort_by(|a, b| {
            b.article
                .updated_at
                .cmp(&a.article.updated_at)
                .then_with(|| a.article.id.cmp(&b.article.id))
        });
        Ok(out)
    }

    /// Every knowledge gap (知识库缺口) recorded by on-call answers, the most often met first.
    pub fn gaps(&self) -> Vec<knowledge_base::projection::Gap> {
        self.index.projection().gaps()
    }

    /// How many calls the article answered.
    pub fn answer_count(&self, id: &str) -> u64 {
        self.index.projection().answers(id)
    }

    async fn load(&self, id: &str) -> Result<(Option<Article>, u64), KbError> {
        load_article(&self.app, id).await
    }

    /// The article, whatever its status.
    ///
    /// # Errors
    /// [`ArticleError::NotFound`], store failures.
    pub async fn article(&self, id: &str) -> Result<ArticleView, KbError> {
        let (article, stream_version) = self.load(id).await?;
        let article = article.ok_or(ArticleError::NotFound)?;
        Ok(ArticleView {
            answer_count: self.answer_count(&article.id),
            article,
            stream_version,
        })
    }

    /// `caller` as the article rules see an editor: shift leaders and admins edit any
    /// article, handlers their own unit's (`article::decide` applies it).
    pub fn editor(caller: &User) -> article::Editor<'_> {
        article::Editor {
            username: &caller.username,
            any_unit: caller
                .roles
                .iter()
                .any(|r| matches!(r, Role::ShiftLeader | Role::Admin)),
            own_unit: caller
                .roles
                .contains(&Role::Handler)
                .then(|| caller.unit_id.as_str()),
        }
    }

    /// Whether `caller` may change an article of `unit_id` (for what pages offer).
    pub fn may_edit(caller: &User, unit_id: &str) -> bool {
        Self::editor(caller).may_edit(unit_id)
    }

    /// Runs an article command for `caller`: rights, rules, one atomic append, then waits
    /// until the index shows it. With an `idempotency_key`, the events' ids derive from the
    /// key, so a retry of a command that was recorded answers what it answered then (the
    /// article as it is now, at the version the command wrote) instead of running again; the
    /// key used for another request is refused.
    ///
    /// # Errors
    /// [`KbError::Forbidden`], [`KbError::UnknownUnit`], [`KbError::Article`],
    /// [`KbError::Conflict`], [`KbError::KeyReused`], store failures.
    #[tracing::instrument(skip_all, fields(article_id = %id))]
    pub async fn execute(
        &self,
        caller: &User,
        id: &str,
        command: ArticleCommand,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
    ) -> Result<Written, KbError> {
        check_texts(&command)?;
        let retry = idempotency_key.map(|key| {
            crate::app::Retry::article(
                key,
                &caller.username,
                id,
                command_verb(&command),
                &format!("{command:?}"),
                if_match,
            )
        });
        // Rights first (over the article as it is and the unit an edit gives it), then the
        // rules: both in `article::decide`.
        let org = self.app.org();
        let unit_exists = |unit: &str| org.get(&domain::org::UnitId::new(unit)).is_some();
        let ctx = ArticleContext {
            now: self.app.now(),
            editor: Self::editor(caller),
            unit_exists: &unit_exists,
        };
        let id = id.to_owned();
        let request = Request {
            id: &id,
            command: &command,
            if_match,
            retry: retry.as_ref(),
        };
        let written = self
            .app
            .articles
            .run(request, &ctx)
            .await
            .map_err(|err| article_error(err, &id))?;
        if !written.replayed
            && !self
                .wait_for(written.position.0, WRITE_VISIBLE_TIMEOUT)
                .await
        {
            tracing::warn!(
                position = written.position.0,
                "search index is behind the store"
            );
        }
        Ok(Written {
            article: written.state.0.clone().ok_or(ArticleError::NotFound)?,
            stream_version: written.version,
            position: written.position.0,
        })
    }

    /// A fresh article id.
    pub fn new_id() -> String {
        Self::id_of(Uuid::new_v4())
    }

    /// The article id a create without one takes from its idempotency key, so a retry names
    /// the same article.
    pub fn id_for_key(key: &str, username: &str) -> String {
        Self::id_of(crate::app::Retry::derived_id(key, username))
    }

    fn id_of(uuid: Uuid) -> String {
        let id = uuid.simple().to_string();
        format!("kb-{}", &id[..12])
    }

    /// Drafts a new article.
    ///
    /// # Errors
    /// As [`Kb::execute`].
    pub async fn create(
        &self,
        caller: &User,
        id: String,
        content: ArticleContent,
        idempotency_key: Option<&str>,
    ) -> Result<Written, KbError> {
        let command = ArticleCommand::Draft {
            id: id.clone(),
            content,
        };
        self.execute(caller, &id, command, None, idempotency_key)
            .await
    }
}

#[async_trait::async_trait]
impl IndexProjection for Projection {
    type Cache = ArticleCache;
    const NAME: &'static str = "knowledge-base index";

    fn checkpoint(&self) -> u64 {
        Projection::checkpoint(self)
    }

    fn committed(&self) -> u64 {
        Projection::committed(self)
    }

    fn unpublished(&self) -> usize {
        Projection::unpublished(self)
    }

    async fn apply(
        &self,
        store: &dyn EventStore,
        cache: &mut ArticleCache,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        Ok(apply_batch(store, self, cache, events).await?)
    }

    fn commit(&self, min_skip: u64) -> anyhow::Result<bool> {
        Ok(Projection::commit(self, min_skip)?)
    }

    fn rollback(&self) -> anyhow::Result<()> {
        Ok(Projection::rollback(self)?)
    }

    fn reset(&self) -> anyhow::Result<()> {
        Ok(Projection::reset(self)?)
    }
}

/// Article states by id with their stream versions, so applying consecutive events of a stream
/// needs no read.
type ArticleCache = HashMap<String, (u64, Option<Article>)>;

/// Applies stored events to the projection (not yet committed).
async fn apply_batch(
    store: &dyn EventStore,
    projection: &Projection,
    cache: &mut ArticleCache,
    events: &[RecordedEvent],
) -> Result<(), KbError> {
    for record in events {
        let position = record.position.0;
        if position <= projection.checkpoint() {
            continue;
        }
        if let Some(id) = record.stream.strip_prefix(article::STREAM_PREFIX)
            && record.event_type.starts_with("kb_article_")
        {
            let event = projection::decode_article_event(&record.data)
                .map_err(|_| KbError::Decode(position))?;
            let state = match cache.remove(id) {
                Some((version, state)) if version + 1 == record.version => {
                    article::evolve(state, &event)
                }
                _ => {
                    // Not cached: fold the stream up to this event.
                    let mut state = None;
                    for earlier in store.read_stream(&record.stream, 1).await? {
                        if earlier.version > record.version {
                            break;
                        }
                        let event = projection::decode_article_event(&earlier.data)
                            .map_err(|_| KbError::Decode(earlier.position.0))?;
                        state = article::evolve(state, &event);
                    }
                    state
                }
            };
            if let Some(article) = &state {
                projection.article_changed(position, article)?;
            } else {
                projection.passed(position)?;
            }
            cache.insert(id.to_owned(), (record.version, state));
        } else if let Some(answer) = projection::read_answer(&record.event_type, &record.data) {
            match &answer.knowledge_gap {
                Some(question) => projection.gap_met(
                    position,
                    question,
                    &answer.reply,
                    record
                        .stream
                        .strip_prefix(crate::store::stream::CASE_PREFIX)
                        .unwrap_or(&record.stream),
                    record.recorded_at,
                )?,
                None => projection.answered(position, &answer.article_ids)?,
            }
        } else {
            projection.passed(position)?;
        }
    }
    Ok(())
}

/// The command's name in an idempotency key's scope.
fn command_verb(command: &ArticleCommand) -> &'static str {
    match command {
        ArticleCommand::Draft { .. } => "draft",
        ArticleCommand::Edit { .. } => "edit",
        ArticleCommand::Publish => "publish",
        ArticleCommand::Retire { .. } => "retire",
    }
}

fn encode(event: &ArticleEvent, event_id: Uuid, request: Option<&str>) -> NewEvent {
    let mut at = match event {
        ArticleEvent::Drafted { at, by, .. }
        | ArticleEvent::Edited { at, by, .. }
        | ArticleEvent::Published { at, by }
        | ArticleEvent::Retired { at, by, .. } => serde_json::json!({"at": at, "actor": by}),
    };
    if let Some(request) = request {
        at["request"] = serde_json::Value::from(request);
    }
    NewEvent {
        event_id,
        event_type: event.type_name().to_owned(),
        schema_version: ArticleEvent::SCHEMA_VERSION,
        // Plain data with string keys: serialising cannot fail.
        data: serde_json::to_string(event).unwrap_or_default(),
        metadata: at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    async fn search_ids(kb: &Kb, text: &str) -> Vec<String> {
        let request = SearchRequest {
            text: text.into(),
            limit: 10,
            ..SearchRequest::default()
        };
        kb.search(&request)
            .unwrap()
            .hits
            .into_iter()
            .map(|hit| hit.id)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rebuilding_the_index_from_the_store_gives_the_same_answers_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().into(),
            demo_password: "test-password".into(),
            ..Settings::default()
        };
        let app = crate::server::build(&settings).await.unwrap();
        let kb = Kb::start(dir.path(), app.clone()).await.unwrap();
        let leader = app.directory.user("shift_leader").unwrap().clone();
        let retire = ArticleCommand::Retire {
            reason: "政策调整".into(),
        };
        kb.execute(&leader, "hrss-001", retire, None, None)
            .await
            .unwrap();
        // A case answered on the call, citing two articles.
        let answered = NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "answered_on_call".into(),
            schema_version: 1,
            data: r#"{"answered_on_call":{"reply":"已答复","kb_article_ids":["fund-001","hrss-002"]}}"#
                .into(),
            metadata: "{}".into(),
        };
        let res = app
            .store
            .append("case-test-1", ExpectedVersion::Any, vec![answered])
            .await
            .unwrap();
        assert!(kb.wait_for(res.position.0, Duration::from_secs(5)).await);
        let questions = ["社保卡丢了怎么办", "公积金怎么取", "楼上装修太吵了"];
        let mut before = Vec::new();
        for q in questions {
            before.push(search_ids(&kb, q).await);
        }
        assert!(!before[0].contains(&"hrss-001".to_owned()), "retired");
        assert_eq!(kb.answer_count("fund-001"), 1);
        kb.stop().await;
        drop(kb);

        let checkpoint = Kb::rebuild(dir.path(), app.store.clone()).await.unwrap();
        assert_eq!(checkpoint, app.store.head().0);
        let kb = Kb::start(dir.path(), app.clone()).await.unwrap();
        assert!(kb.ready_within(Duration::from_secs(10)).await);
        let mut after = Vec::new();
        for q in questions {
            after.push(search_ids(&kb, q).await);
        }
        assert_eq!(before, after);
        assert_eq!(kb.answer_count("fund-001"), 1);
        assert_eq!(kb.answer_count("hrss-002"), 1);
        kb.stop().await;
    }
}
