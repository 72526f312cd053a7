//! Fuzzy case search (工单全文检索): the texts of every case (title, content, address, replies)
//! in a tantivy index in `data/case-index/`, kept current as a projection of the event log like
//! the knowledge-base index ([`crate::kb`]): one document per case, replaced when an event
//! changes its texts, the checkpoint committed in the index's commit payload.
//!
//! The index only turns the words of `GET /api/v1/cases?q=` into the ids of matching cases,
//! best first; the read model intersects them with the structured filters and the caller's
//! scope in SQL, so the index never decides who sees what.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use domain::event::EventBody;
use knowledge_base::cases::{CaseIndex, CaseText};
use knowledge_base::projection::ProjectionError;

use crate::index_follower::{IndexFollower, IndexProjection};
use crate::store::{EventStore, RecordedEvent};

/// Most case texts kept between events; past it the cache is dropped and a case's stream is
/// read again when one of its texts changes.
const CACHE_LIMIT: usize = 50_000;
/// The stream prefix of cases.
const CASE_PREFIX: &str = "case-";

/// Why the case index failed to follow the store.
#[derive(Debug, thiserror::Error)]
pub enum CaseSearchError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The index failed.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// A stored case event does not decode.
    #[error(transparent)]
    Decode(#[from] crate::app::codec::DecodeError),
}

/// The case-text index, following the store.
pub struct CaseSearch {
    index: Arc<IndexFollower<CaseIndex>>,
}

impl std::fmt::Debug for CaseSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseSearch").finish_non_exhaustive()
    }
}

/// The index directory in a data directory.
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("case-index")
}

fn open_index(dir: &Path) -> anyhow::Result<CaseIndex> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create case index directory `{}`", dir.display()))?;
    let segmenter = knowledge_base::fixtures::segmenter()
        .context("failed to load `fixtures/kb/user-dict.txt`")?;
    let index = CaseIndex::open_or_create(dir, segmenter, knowledge_base::fixtures::synonyms())
        .with_context(|| format!("failed to open case index `{}`", dir.display()))?;
    crate::index_follower::log_replaced(
        "case index",
        dir,
        index.opened(),
        knowledge_base::cases::SCHEMA_VERSION,
    );
    Ok(index)
}

/// Case texts by stream with their stream versions, so consecutive events of a stream need no
/// read.
type TextCache = HashMap<String, (u64, CaseText)>;

impl CaseSearch {
    /// Opens the index in `data_dir/case-index`, catches up with the store, and follows it in
    /// the background until [`CaseSearch::stop`].
    ///
    /// # Errors
    /// IO, store, decode or index failures.
    pub async fn start(data_dir: &Path, store: Arc<dyn EventStore>) -> anyhow::Result<Arc<Self>> {
        let index = open_index(&index_dir(data_dir))?;
        let index = IndexFollower::start(index, store).await?;
        Ok(Arc::new(CaseSearch { index }))
    }

    /// Stops following the store.
    pub async fn stop(&self) {
        self.index.stop().await;
    }

    /// Rebuilds the index of `data_dir` from position 0 (run while the service is stopped);
    /// returns the checkpoint reached.
    ///
    /// # Errors
    /// Store, decode or index failures.
    pub async fn rebuild(data_dir: &Path, store: Arc<dyn EventStore>) -> anyhow::Result<u64> {
        let index = open_index(&index_dir(data_dir))?;
        IndexFollower::rebuild(index, store.as_ref()).await
    }

    /// Waits until the index has applied `position` (or `timeout`); whether it did.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        self.index.wait_for(position, timeout).await
    }

    /// The ids of the cases whose texts match `text`, best first, at most `limit`.
    ///
    /// # Errors
    /// When reading the index fails.
    pub fn search(&self, text: &str, limit: usize) -> anyhow::Result<Vec<String>> {
        let hits = self
            .index
            .projection()
            .search(text, limit)
            .context("failed to search the case index")?;
        Ok(hits.into_iter().map(|(case_id, _)| case_id).collect())
    }
}

#[async_trait::async_trait]
impl IndexProjection for CaseIndex {
    type Cache = TextCache;
    const NAME: &'static str = "case index";

    fn checkpoint(&self) -> u64 {
        CaseIndex::checkpoint(self)
    }

    fn committed(&self) -> u64 {
        CaseIndex::committed(self)
    }

    fn unpublished(&self) -> usize {
        CaseIndex::unpublished(self)
    }

    async fn apply(
        &self,
        store: &dyn EventStore,
        cache: &mut TextCache,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        Ok(apply_batch(store, self, cache, events).await?)
    }

    fn commit(&self, min_skip: u64) -> anyhow::Result<bool> {
        Ok(CaseIndex::commit(self, min_skip)?)
    }

    fn rollback(&self) -> anyhow::Result<()> {
        Ok(CaseIndex::rollback(self)?)
    }

    fn reset(&self) -> anyhow::Result<()> {
        Ok(CaseIndex::reset(self)?)
    }
}

/// Applies `body` to the texts of a case; whether they changed.
fn evolve(text: &mut CaseText, body: &EventBody) -> bool {
    match body {
        EventBody::DraftSaved { intake, .. } | EventBody::Accepted { intake, .. } => {
            let changed = text.title != intake.title
                || text.content != intake.content
                || text.address != intake.address;
            text.title.clone_from(&intake.title);
            text.content.clone_from(&intake.content);
            text.address.clone_from(&intake.address);
            changed
        }
        EventBody::AnsweredOnCall { reply, .. } | EventBody::Completed { reply, .. } => {
            if reply.is_empty() {
                return false;
            }
            text.replies.push(reply.clone());
            true
        }
        _ => false,
    }
}

/// Whether an event of this type may change a case's texts (checked before decoding, so the
/// many events that cannot are skipped cheaply).
fn may_change_text(event_type: &str) -> bool {
    matches!(
        event_type,
        "draft_saved" | "accepted" | "answered_on_call" | "completed"
    )
}

/// Applies stored events to the index (not yet committed).
async fn apply_batch(
    store: &dyn EventStore,
    index: &CaseIndex,
    cache: &mut TextCache,
    events: &[RecordedEvent],
) -> Result<(), CaseSearchError> {
    if cache.len() > CACHE_LIMIT {
        cache.clear();
    }
    for record in events {
        let position = record.position.0;
        if position <= index.checkpoint() {
            continue;
        }
        let Some(case_id) = record.stream.strip_prefix(CASE_PREFIX) else {
            index.passed(position)?;
            continue;
        };
        if !may_change_text(&record.event_type) {
            // Keep the cached texts in step with the stream's version.
            if let Some(entry) = cache.get_mut(&record.stream)
                && entry.0 + 1 == record.version
            {
                entry.0 = record.version;
            }
            index.passed(position)?;
            continue;
        }
        let event = crate::app::codec::decode(record)?;
        let mut text = match cache.remove(&record.stream) {
            Some((version, text)) if version + 1 == record.version => text,
            _ => {
                // Not cached: fold the stream's texts up to the event before this one.
                let mut text = CaseText::default();
                for earlier in store.read_stream(&record.stream, 1).await? {
                    if earlier.version >= record.version {
                        break;
                    }
                    if may_change_text(&earlier.event_type) {
                        evolve(&mut text, &crate::app::codec::decode(&earlier)?.body);
                    }
                }
                text
            }
        };
        if evolve(&mut text, &event.body) {
            index.case_changed(position, case_id, &text)?;
        } else {
            index.passed(position)?;
        }
        cache.insert(record.stream.clone(), (record.version, text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::{DateTime, TimeZone, Utc};
    use domain::Case;
    use domain::calendar::{DeadlinePolicy, WorkingCalendar};
    use domain::kinds::{Category, Channel, Kind, Urgency};
    use domain::org::{OrgTree, UnitId};
    use domain::roles::Actor;
    use domain::{CaseId, Command, Context, Intake};

    use super::*;
    use crate::app::codec::encode;
    use crate::index_follower::CommitPolicy;
    use crate::store::ExpectedVersion;
    use crate::store::sqlite::SqliteStore;

    /// The demo city: commands decided by `domain::decide` as its users, appended to a store.
    pub(crate) struct City {
        pub store: Arc<SqliteStore>,
        pub org: OrgTree,
        pub users: HashMap<String, Actor>,
        calendar: WorkingCalendar,
        policy: DeadlinePolicy,
        cases: HashMap<String, Case>,
    }

    /// 09:00 on a working Monday in Shanghai, plus `hours`.
    pub(crate) fn monday(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 1, 0, 0)
            .single()
            .expect("time")
            + chrono::Duration::hours(hours)
    }

    impl City {
        pub fn new(dir: &Path) -> City {
            #[derive(serde::Deserialize)]
            struct UsersFile {
                users: Vec<Actor>,
            }
            let users: UsersFile =
                serde_json::from_str(include_str!("../fixtures/users.json")).expect("users");
            City {
                store: Arc::new(SqliteStore::open(&dir.join("events.db")).expect("store")),
                org: crate::directory::load_org().expect("org"),
                users: users
                    .users
                    .into_iter()
                    .map(|u| (u.username.clone(), u))
                    .collect(),
                calendar: crate::server::load_calendar().expect("calendar"),
                policy: crate::server::load_policy().expect("policy"),
                cases: HashMap::new(),
            }
        }

        /// Decides `cmd` as `user` on the case at `monday(hours)` and appends the events;
        /// returns the position of the last one.
        pub async fn run(&mut self, user: &str, case_id: &str, hours: i64, cmd: Command) -> u64 {
            let actor = &self.users[user];
            let stream = format!("case-{case_id}");
            let case = self.cases.remove(&stream).unwrap_or_default();
            let ctx = Context {
                now: monday(hours),
                actor,
                org: &self.org,
                calendar: &self.calendar,
                policy: &self.policy,
            };
            let events = domain::decide(&case, &cmd, &ctx)
                .unwrap_or_else(|e| panic!("{user} {} on {case_id}: {e}", cmd.name()));
            let new = events
                .iter()
                .map(|e| encode(e, uuid::Uuid::new_v4(), None))
                .collect();
            let res = self
                .store
                .append(&stream, ExpectedVersion::Exact(case.version()), new)
                .await
                .expect("appended");
            let case = events.iter().fold(case, domain::evolve);
            self.cases.insert(stream, case);
            res.position.0
        }

        /// An operator accepts a complaint at `location`.
        pub async fn create(&mut self, case_id: &str, location: &str, title: &str) -> u64 {
            let intake = Intake {
                caller_name: "张三".into(),
                caller_phone: "13800000001".into(),
                channel: Some(Channel::Phone),
                category: Some(Category::Complaint),
                kind: Some(Kind::Escalated),
                urgency: Some(Urgency::Normal),
                title: title.into(),
                content: format!("{title}，请尽快处理。"),
                address: "城关区酒泉路街道阳光花园小区".into(),
                location_unit_id: Some(UnitId::new(location)),
                confidential: false,
            };
            let create = Command::Create {
                case_id: CaseId::parse(case_id).expect("id"),
                intake,
                submit: true,
            };
            self.run("operator", case_id, 0, create).await
        }
    }

    fn open(dir: &Path) -> CaseIndex {
        open_index(&index_dir(dir)).expect("index")
    }

    /// Commits only when a reader waits or the follower stops.
    const NEVER: CommitPolicy = CommitPolicy {
        interval: Duration::from_secs(3600),
        max_unpublished: usize::MAX,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_waiting_for_its_write_gets_a_commit_without_waiting_for_the_timer() {
        let dir = tempfile::tempdir().expect("dir");
        let mut city = City::new(dir.path());
        city.create("C1", "d.chengguan.s01", "小区门口占道经营")
            .await;
        let store: Arc<dyn EventStore> = city.store.clone();
        let follower = IndexFollower::start_with(open(dir.path()), store, NEVER)
            .await
            .expect("start");
        let search = CaseSearch { index: follower };
        let position = city.create("C2", "d.chengguan.s02", "楼上装修噪音").await;
        assert!(
            search.wait_for(position, Duration::from_secs(5)).await,
            "the follower commits for a waiting reader"
        );
        assert_eq!(search.search("装修太吵了", 10).expect("search"), ["C2"]);
        search.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_index_of_an_older_schema_version_is_rebuilt_from_position_0_at_start() {
        let dir = tempfile::tempdir().expect("dir");
        let mut city = City::new(dir.path());
        let head = city
            .create("C1", "d.chengguan.s01", "小区门口占道经营")
            .await;
        // An index at the store's head, holding a case the store never had, committed by a
        // build of an older schema version.
        let index = open(dir.path());
        let ghost = CaseText {
            title: "占道经营".into(),
            ..CaseText::default()
        };
        index.case_changed(head, "GHOST", &ghost).expect("write");
        index.commit(0).expect("commit");
        drop(index);
        let meta_path = index_dir(dir.path()).join("meta.json");
        let mut meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&meta_path).expect("meta"))
                .expect("json");
        let older = knowledge_base::cases::SCHEMA_VERSION - 1;
        meta["payload"] = format!(r#"{{"checkpoint":{head},"schema_version":{older}}}"#).into();
        std::fs::write(&meta_path, meta.to_string()).expect("write meta");

        let store: Arc<dyn EventStore> = city.store.clone();
        let search = CaseSearch::start(dir.path(), store).await.expect("start");
        assert_eq!(search.search("摆摊", 10).expect("search"), ["C1"]);
        assert_eq!(search.index.projection().committed(), head);
        search.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_commits_what_was_applied_and_a_restart_resumes_from_it() {
        let dir = tempfile::tempdir().expect("dir");
        let mut city = City::new(dir.path());
        let store: Arc<dyn EventStore> = city.store.clone();
        let follower = IndexFollower::start_with(open(dir.path()), store.clone(), NEVER)
            .await
            .expect("start");
        let position = city
            .create("C1", "d.chengguan.s01", "小区门口占道经营")
            .await;
        // Applied, not committed: the timer never fires and nobody waits.
        while follower.projection().checkpoint() < position {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(follower.projection().committed(), 0);
        assert!(
            follower
                .projection()
                .search("摆摊", 10)
                .expect("search")
                .is_empty()
        );
        follower.stop().await;
        drop(follower);
        let index = open(dir.path());
        assert_eq!(index.committed(), position, "committed when stopping");
        assert_eq!(index.search("摆摊", 10).expect("search").len(), 1);
        drop(index);
        let search = CaseSearch::start(dir.path(), store).await.expect("restart");
        assert_eq!(search.search("摆摊", 10).expect("search"), ["C1"]);
        search.stop().await;
    }
}
