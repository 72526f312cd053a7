//! Fuzzy case search (工单全文检索): every case in a tantivy index in `data/case-index/`, its
//! texts (title, content, address, replies) with copies of the columns the case list filters,
//! scopes and sorts by, kept current as a projection of the event log by
//! [`crate::index_follower`]: one document per case, replaced when an event changes it, the
//! checkpoint committed in the index's commit payload.
//!
//! `GET /api/v1/cases?q=` is answered by the index in full: the caller's scope and the
//! conditions first, then the ranking or the requested order, an exact count, one page of ids.
//! The read model then loads that page's rows and applies the scope and the conditions again,
//! so its SQL still decides what a caller sees. The documents are built from the same
//! `domain::Case` and the same `projections::row` functions as the read model's rows; a test
//! checks that both agree for every demo user.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use domain::Case;
use domain::event::EventBody;
use domain::org::OrgTree;

use crate::directory_log::OrgSource;
use knowledge_base::cases::{
    CaseConditions, CaseDoc, CaseFacets, CaseHits, CaseIndex, CaseOrder, CaseQuery, CaseText,
    Visibility,
};
use knowledge_base::projection::ProjectionError;
use projections::query::MAX_PER_PAGE;
use projections::row::{
    CaseRow, category_code, kind_code, scope_units, stage_code, status_code, touched_units,
    urgency_code,
};
use projections::{CaseFilter, Scope, Sort};

use crate::index_follower::{IndexFollower, IndexProjection};
use crate::store::{EventStore, RecordedEvent};

/// Most cases kept folded between batches; past it the cache is dropped and a case's stream
/// is read again at its next event.
const CACHE_LIMIT: usize = 100_000;
use crate::store::stream::CASE_PREFIX;
/// Events read per batch when filling an empty index.
const LOAD_BATCH: usize = 8192;
/// Documents written between two yields when filling an empty index.
const LOAD_CHUNK: usize = 1000;

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

/// The case index and the org tree its documents' districts and scope units come from.
pub struct CaseProjection {
    index: CaseIndex,
    /// The tree of the directory in force when a batch is written.
    org: OrgSource,
}

/// The case index, following the store.
pub struct CaseSearch {
    index: Arc<IndexFollower<CaseProjection>>,
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

impl CaseSearch {
    /// Opens the index in `data_dir/case-index` and, in the background until
    /// [`CaseSearch::stop`], catches up with the store and follows it. Until it has caught up
    /// ([`CaseSearch::ready_within`]) searches see its last commit, which may be far behind.
    ///
    /// # Errors
    /// IO or index failures.
    pub fn start(
        data_dir: &Path,
        store: Arc<dyn EventStore>,
        org: impl Into<OrgSource>,
    ) -> anyhow::Result<Arc<Self>> {
        let org = org.into();
        let index = crate::index_follower::open_or_move_aside(
            "case index",
            &index_dir(data_dir),
            open_index,
        )?;
        let index = IndexFollower::start(CaseProjection { index, org }, store)?;
        Ok(Arc::new(CaseSearch { index }))
    }

    /// Stops following the store, after committing what was applied.
    pub async fn stop(&self) {
        self.index.stop().await;
    }

    /// Rebuilds the index of `data_dir` from position 0 (run while the service is stopped);
    /// returns the checkpoint reached.
    ///
    /// # Errors
    /// Store, decode or index failures.
    pub async fn rebuild(
        data_dir: &Path,
        store: Arc<dyn EventStore>,
        org: impl Into<OrgSource>,
    ) -> anyhow::Result<u64> {
        let org = org.into();
        let index = crate::index_follower::open_or_move_aside(
            "case index",
            &index_dir(data_dir),
            open_index,
        )?;
        IndexFollower::rebuild(CaseProjection { index, org }, store).await
    }

    /// Waits until searches see every change up to `position` (or `timeout`); whether they do.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        self.index.wait_for(position, timeout).await
    }

    /// Waits until the index has caught up with what the store held at start (or `timeout`);
    /// whether it has.
    pub async fn ready_within(&self, timeout: Duration) -> bool {
        self.index.ready_within(timeout).await
    }

    /// Where the index stands.
    pub fn status(&self) -> crate::index_follower::IndexStatus {
        self.index.status()
    }

    /// The cases matching `query`: how many, and the requested page of ids.
    ///
    /// # Errors
    /// When reading the index fails.
    pub fn search(&self, query: &CaseQuery) -> anyhow::Result<CaseHits> {
        self.index
            .projection()
            .index
            .search(query)
            .context("failed to search the case index")
    }
}

/// The index query for the words `text` and the case list's `filter` within `scope`, overdue
/// judged at `now`: the same conditions, order and page as the read model's. A caller number
/// is not among them (the index holds none): the read model picks those cases and passes them
/// as [`CaseConditions::case_ids`].
pub fn query_of(text: &str, filter: &CaseFilter, scope: &Scope, now: DateTime<Utc>) -> CaseQuery {
    let page = filter.page.max(1) as usize;
    let per_page = filter.per_page.clamp(1, MAX_PER_PAGE) as usize;
    CaseQuery {
        text: text.to_owned(),
        conditions: CaseConditions {
            status: filter.status.map(|s| status_code(s).to_owned()),
            overdue: filter.overdue.map(|o| (o, now.timestamp_micros())),
            category: filter.category.map(|c| category_code(c).to_owned()),
            kind: filter.kind.map(|k| kind_code(k).to_owned()),
            urgency: filter.urgency.map(|u| urgency_code(u).to_owned()),
            unit: filter.unit_id.clone().map(|u| (u, filter.subtree)),
            district_id: filter.district_id.clone(),
            created_from: filter.created_from.map(|t| t.timestamp_micros()),
            created_to: filter.created_to.map(|t| t.timestamp_micros()),
            case_ids: None,
            visible_to: match scope {
                Scope::All => None,
                Scope::Limited {
                    username,
                    accepting_units,
                    units,
                } => Some(Visibility {
                    username: username.clone(),
                    accepting_units: accepting_units.clone(),
                    units: units.clone(),
                }),
            },
        },
        order: match filter.sort {
            Sort::Relevance => CaseOrder::Relevance,
            Sort::CreatedDesc => CaseOrder::CreatedDesc,
            Sort::CreatedAsc => CaseOrder::CreatedAsc,
            Sort::CompleteDueAsc => CaseOrder::CompleteDueAsc,
            Sort::CompleteDueDesc => CaseOrder::CompleteDueDesc,
            Sort::CaseIdAsc => CaseOrder::CaseIdAsc,
        },
        offset: (page - 1).saturating_mul(per_page),
        limit: per_page,
    }
}

/// The document of `case`, with the replies given so far; `None` for a case without an id.
fn document(case: &Case, replies: &[String], org: &OrgTree) -> Option<(String, CaseDoc)> {
    let row = CaseRow::of(case, org)?;
    let micros = |t: Option<DateTime<Utc>>, none: i64| t.map_or(none, |t| t.timestamp_micros());
    let facets = CaseFacets {
        status: status_code(row.status).to_owned(),
        stage: stage_code(row.stage).to_owned(),
        category: row.category.map(str::to_owned),
        kind: row.kind.map(str::to_owned),
        urgency: row.urgency.map(str::to_owned),
        district_id: row.district_id,
        created_by: row.created_by,
        accepting_unit_id: row.accepting_unit_id,
        scope_units: scope_units(case, org),
        touched_units: touched_units(case),
        created_at: micros(row.created_at, i64::MIN),
        receive_due: micros(row.receive_due, i64::MAX),
        complete_due: micros(row.complete_due, i64::MAX),
        completed_late: row.completed_late,
    };
    let text = CaseText {
        title: row.title,
        content: row.content,
        address: row.address,
        replies: replies.to_vec(),
    };
    Some((row.case_id, CaseDoc { text, facets }))
}

/// A case as the follower last saw it.
#[derive(Debug, Default)]
pub struct Folded {
    case: Case,
    /// Replies given (on the call, on completion), oldest first; `Case` keeps only the last
    /// reply of each assignment.
    replies: Vec<String>,
    /// A digest of the document last written, so an event that changes nothing searched or
    /// filtered (a progress note, a supervision) writes nothing.
    written: Option<u64>,
}

impl Folded {
    fn evolve(&mut self, event: &domain::event::Event) {
        if let EventBody::AnsweredOnCall { reply, .. } | EventBody::Completed { reply, .. } =
            &event.body
            && !reply.is_empty()
        {
            self.replies.push(reply.clone());
        }
        self.case = domain::evolve(std::mem::take(&mut self.case), event);
    }
}

/// Cases by stream, so consecutive events of a stream need no read.
pub type CaseCache = HashMap<String, Folded>;

fn digest(doc: &CaseDoc) -> u64 {
    let mut hasher = DefaultHasher::new();
    doc.hash(&mut hasher);
    hasher.finish()
}

#[async_trait::async_trait]
impl IndexProjection for CaseProjection {
    type Cache = CaseCache;
    const NAME: &'static str = "case index";

    fn checkpoint(&self) -> u64 {
        self.index.checkpoint()
    }

    fn committed(&self) -> u64 {
        self.index.committed()
    }

    fn unpublished(&self) -> usize {
        self.index.unpublished()
    }

    async fn apply(
        &self,
        store: &dyn EventStore,
        cache: &mut CaseCache,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        Ok(apply_batch(store, self, cache, events).await?)
    }

    fn commit(&self, min_skip: u64) -> anyhow::Result<bool> {
        Ok(self.index.commit(min_skip)?)
    }

    fn rollback(&self) -> anyhow::Result<()> {
        Ok(self.index.rollback()?)
    }

    fn reset(&self) -> anyhow::Result<()> {
        Ok(self.index.reset()?)
    }

    async fn load_all(&self, store: &dyn EventStore) -> anyhow::Result<bool> {
        Ok(load_all(store, self).await.map(|()| true)?)
    }
}

/// Fills the empty index from final states: every case of the store folded in memory, then
/// one document per case.
async fn load_all(
    store: &dyn EventStore,
    projection: &CaseProjection,
) -> Result<(), CaseSearchError> {
    let mut cases: HashMap<String, Folded> = HashMap::new();
    let mut after = crate::store::Position::START;
    loop {
        let batch = store.read_all(after, LOAD_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for record in batch.iter().filter(|r| r.stream.starts_with(CASE_PREFIX)) {
            let event = crate::app::codec::decode(record)?;
            cases
                .entry(record.stream.clone())
                .or_default()
                .evolve(&event);
        }
    }
    if after.0 == 0 {
        return Ok(());
    }
    let mut docs: Vec<(String, CaseDoc)> = Vec::with_capacity(LOAD_CHUNK);
    let org = projection.org.tree();
    for folded in cases.into_values() {
        if let Some(doc) = document(&folded.case, &folded.replies, &org) {
            docs.push(doc);
        }
        if docs.len() == LOAD_CHUNK {
            projection
                .index
                .add_cases(docs.iter().map(|(id, doc)| (id.as_str(), doc)))?;
            docs.clear();
            // Other tasks of the runtime get their turn between chunks.
            tokio::task::yield_now().await;
        }
    }
    projection
        .index
        .add_cases(docs.iter().map(|(id, doc)| (id.as_str(), doc)))?;
    projection.index.passed(after.0)?;
    Ok(())
}

/// Applies stored events to the index (not yet committed): every case event is folded into
/// its case, and each case the batch changed gets its document written once, as of the
/// batch's end.
async fn apply_batch(
    store: &dyn EventStore,
    projection: &CaseProjection,
    cache: &mut CaseCache,
    events: &[RecordedEvent],
) -> Result<(), CaseSearchError> {
    let index = &projection.index;
    if cache.len() > CACHE_LIMIT {
        cache.clear();
    }
    let checkpoint = index.checkpoint();
    let Some(last) = events
        .last()
        .map(|r| r.position.0)
        .filter(|&p| p > checkpoint)
    else {
        return Ok(());
    };
    let mut changed: HashSet<&str> = HashSet::new();
    for record in events.iter().filter(|r| r.position.0 > checkpoint) {
        if !record.stream.starts_with(CASE_PREFIX) {
            continue;
        }
        let event = crate::app::codec::decode(record)?;
        let folded = match cache.get_mut(&record.stream) {
            Some(folded) if folded.case.version() + 1 == record.version => folded,
            _ => {
                // Not cached: fold the stream up to the event before this one.
                let mut folded = Folded::default();
                for earlier in store.read_stream(&record.stream, 1).await? {
                    if earlier.version >= record.version {
                        break;
                    }
                    folded.evolve(&crate::app::codec::decode(&earlier)?);
                }
                cache
                    .entry(record.stream.clone())
                    .insert_entry(folded)
                    .into_mut()
            }
        };
        folded.evolve(&event);
        changed.insert(&record.stream);
    }
    let mut docs = Vec::with_capacity(changed.len());
    let org = projection.org.tree();
    for stream in changed {
        let Some(folded) = cache.get_mut(stream) else {
            continue;
        };
        let Some((case_id, doc)) = document(&folded.case, &folded.replies, &org) else {
            continue;
        };
        let digest = digest(&doc);
        if folded.written != Some(digest) {
            folded.written = Some(digest);
            docs.push((case_id, doc));
        }
    }
    // Also moves the checkpoint when no document changed.
    index.cases_changed(last, docs.iter().map(|(id, doc)| (id.as_str(), doc)))?;
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
        dir: PathBuf,
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
        pub fn dir(&self) -> &Path {
            &self.dir
        }

        pub fn new(dir: &Path) -> City {
            #[derive(serde::Deserialize)]
            struct UsersFile {
                users: Vec<Actor>,
            }
            let users: UsersFile =
                serde_json::from_str(include_str!("../fixtures/users.json")).expect("users");
            City {
                dir: dir.to_owned(),
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
            let intake = intake(location, title);
            self.create_with(case_id, intake, 0, true).await
        }

        /// An operator records `intake` at `monday(hours)`, submitted or as a draft.
        pub async fn create_with(
            &mut self,
            case_id: &str,
            intake: Intake,
            hours: i64,
            submit: bool,
        ) -> u64 {
            let create = Command::Create {
                case_id: CaseId::parse(case_id).expect("id"),
                intake,
                submit,
            };
            self.run("operator", case_id, hours, create).await
        }
    }

    /// A complaint at `location` whose texts say `title` and 小区.
    pub(crate) fn intake(location: &str, title: &str) -> Intake {
        Intake {
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
        }
    }

    fn transfer(lead: &str, co: &[&str]) -> Command {
        Command::Transfer {
            lead_unit_id: UnitId::new(lead),
            co_unit_ids: co.iter().map(|c| UnitId::new(*c)).collect(),
            note: "请依职责办理".into(),
        }
    }

    fn complete() -> Command {
        Command::Complete {
            reply: "已处理。".into(),
        }
    }

    /// Cases in three districts and at bureaus, in every state, created over two days.
    async fn city_cases(city: &mut City) {
        use domain::Satisfaction;
        // C1: 城关 → street s01, received.
        city.create_with("C1", intake("d.chengguan.s01.c01", "小区噪音"), 0, true)
            .await;
        city.run("dispatcher", "C1", 1, transfer("d.chengguan", &[]))
            .await;
        city.run("chengguan_dispatcher", "C1", 1, Command::Receive)
            .await;
        city.run(
            "chengguan_dispatcher",
            "C1",
            2,
            transfer("d.chengguan.s01", &[]),
        )
        .await;
        city.run("chengguan_s01_handler", "C1", 2, Command::Receive)
            .await;
        // C2: 七里河, transferred, never received; confidential, urgent, a report.
        let mut c2 = intake("d.qilihe.s01.c01", "小区违建");
        c2.confidential = true;
        c2.urgency = Some(Urgency::Urgent);
        c2.category = Some(Category::Report);
        city.create_with("C2", c2, 3, true).await;
        city.run("dispatcher", "C2", 4, transfer("d.qilihe", &[]))
            .await;
        // C3: a bureau, completed late-ish, then called back.
        let mut c3 = intake("d.xigu.s02.c01", "小区物业");
        c3.category = Some(Category::HelpRequest);
        city.create_with("C3", c3, 5, true).await;
        city.run("dispatcher", "C3", 5, transfer("city.bureau.housing", &[]))
            .await;
        city.run("housing_handler", "C3", 6, Command::Receive).await;
        city.run("housing_handler", "C3", 300, complete()).await;
        let callback = Command::CallBack {
            satisfaction: Satisfaction::Satisfied,
            resolved: true,
            note: String::new(),
        };
        city.run("operator", "C3", 301, callback).await;
        // C4: joint case in 城关 recalled and sent to 七里河.
        city.create_with("C4", intake("d.chengguan.s02.c01", "小区停水"), 24, true)
            .await;
        city.run(
            "dispatcher",
            "C4",
            24,
            transfer("d.chengguan", &["city.bureau.urban"]),
        )
        .await;
        let recall = Command::Recall {
            reason: "派错单位".into(),
        };
        city.run("dispatcher", "C4", 24, recall).await;
        city.run("dispatcher", "C4", 25, transfer("d.qilihe", &[]))
            .await;
        // C5: accepted only; an inquiry.
        let mut c5 = intake("d.anning.s01.c01", "小区供暖");
        c5.category = Some(Category::Inquiry);
        city.create_with("C5", c5, 26, true).await;
        // C6: 城关 street s03, completed and called back.
        city.create_with("C6", intake("d.chengguan.s03.c01", "小区路灯"), 27, true)
            .await;
        city.run("dispatcher", "C6", 27, transfer("d.chengguan", &[]))
            .await;
        city.run("chengguan_dispatcher", "C6", 27, Command::Receive)
            .await;
        city.run(
            "chengguan_dispatcher",
            "C6",
            27,
            transfer("d.chengguan.s03", &[]),
        )
        .await;
        city.run("chengguan_s03_handler", "C6", 27, Command::Receive)
            .await;
        city.run("chengguan_s03_handler", "C6", 28, complete())
            .await;
        // C7: answered on the call (即办).
        let mut c7 = intake("d.chengguan.s01.c02", "小区公积金");
        c7.kind = Some(Kind::Immediate);
        c7.category = Some(Category::Inquiry);
        city.create_with("C7", c7, 29, true).await;
        let answer = Command::Answer {
            reply: "可通过公积金中心网站提取。".into(),
            source: domain::AnswerSource::Articles(vec![domain::CitedArticle {
                id: "fund-001".into(),
                facts: Some(domain::ArticleFacts {
                    published: true,
                    valid_from: None,
                    valid_until: None,
                }),
            }]),
        };
        city.run("operator", "C7", 29, answer).await;
        // C8: a draft.
        city.create_with("C8", intake("d.qilihe.s02.c01", "小区垃圾"), 30, false)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_index_matches_what_the_read_model_lists_for_every_demo_user_and_condition() {
        use domain::Status;
        use domain::kinds::Category;
        use projections::query::IdentityRule;

        use crate::projection_runner::ReadSide;

        let dir = tempfile::tempdir().expect("dir");
        let mut city = City::new(dir.path());
        let store: Arc<dyn EventStore> = city.store.clone();
        // The follower applies the cases event by event as they are written.
        let search =
            CaseSearch::start(dir.path(), store.clone(), city.org.clone()).expect("case index");
        city_cases(&mut city).await;
        assert!(
            search
                .wait_for(store.head().0, Duration::from_secs(10))
                .await
        );
        let read = ReadSide::open(
            &dir.path().join("read.db"),
            store.clone(),
            city.org.clone(),
            Arc::new(crate::rules_log::shared_base().expect("rules")),
        )
        .expect("read side");
        read.catch_up().await.expect("catch up");
        let all = || CaseFilter {
            sort: Sort::CaseIdAsc,
            page: 1,
            per_page: 100,
            ..CaseFilter::default()
        };
        let at = |hours: i64| Some(monday(0) + chrono::Duration::hours(hours));
        let filters = [
            all(),
            CaseFilter {
                status: Some(Status::Transferred),
                ..all()
            },
            CaseFilter {
                status: Some(Status::InProgress),
                ..all()
            },
            CaseFilter {
                status: Some(Status::Draft),
                ..all()
            },
            CaseFilter {
                overdue: Some(true),
                ..all()
            },
            CaseFilter {
                overdue: Some(false),
                ..all()
            },
            CaseFilter {
                category: Some(Category::Inquiry),
                ..all()
            },
            CaseFilter {
                kind: Some(Kind::Immediate),
                ..all()
            },
            CaseFilter {
                urgency: Some(Urgency::Urgent),
                ..all()
            },
            CaseFilter {
                unit_id: Some("d.chengguan".into()),
                ..all()
            },
            CaseFilter {
                unit_id: Some("d.chengguan".into()),
                subtree: true,
                ..all()
            },
            CaseFilter {
                district_id: Some("d.qilihe".into()),
                ..all()
            },
            CaseFilter {
                created_from: at(24),
                created_to: at(29),
                ..all()
            },
            CaseFilter {
                sort: Sort::CreatedDesc,
                ..all()
            },
            CaseFilter {
                sort: Sort::CompleteDueAsc,
                ..all()
            },
            CaseFilter {
                sort: Sort::CreatedAsc,
                page: 2,
                per_page: 3,
                ..all()
            },
        ];
        let mut users: Vec<&Actor> = city.users.values().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        let compare = async |search: &CaseSearch, stride: usize| {
            let mut n_found = 0;
            for actor in users.iter().step_by(stride) {
                let scope = Scope::of(actor, &city.org);
                let identity = IdentityRule::of(actor, &city.org);
                for filter in &filters {
                    // Before any deadline, and a month later when every open case is overdue.
                    for now in [monday(2), monday(24 * 30)] {
                        let (f, s, i) = (filter.clone(), scope.clone(), identity.clone());
                        let listed = read
                            .query(move |q| q.cases(&f, &s, &i, now))
                            .await
                            .expect("list");
                        let listed_ids: Vec<String> =
                            listed.items.iter().map(|c| c.case_id.clone()).collect();
                        let hits = search
                            .search(&query_of("小区", filter, &scope, now))
                            .expect("search");
                        assert_eq!(
                            (hits.total, &hits.case_ids),
                            (listed.total, &listed_ids),
                            "{} {filter:?} at {now}",
                            actor.username
                        );
                        n_found += hits.case_ids.len();
                    }
                }
            }
            n_found
        };
        let n_found = compare(&search, 1).await;
        assert!(n_found > 1_000, "the cases are seen by many: {n_found}");
        search.stop().await;
        drop(search);
        // Rebuilt, each document is written once from the final states.
        CaseSearch::rebuild(dir.path(), store.clone(), city.org.clone())
            .await
            .expect("rebuild");
        let search = CaseSearch::start(dir.path(), store, city.org.clone()).expect("case index");
        assert!(search.ready_within(Duration::from_secs(10)).await);
        assert!(compare(&search, 5).await > 200);
        search.stop().await;
    }

    fn open(dir: &Path) -> CaseIndex {
        open_index(&index_dir(dir)).expect("index")
    }

    fn projection(city: &City) -> CaseProjection {
        CaseProjection {
            index: open_index(&index_dir(city.dir())).expect("index"),
            org: city.org.clone().into(),
        }
    }

    /// The ids of the cases matching `text`, best first (at most 10).
    fn words(index: &CaseIndex, text: &str) -> Vec<String> {
        let query = CaseQuery {
            text: text.into(),
            limit: 10,
            ..CaseQuery::default()
        };
        index.search(&query).expect("search").case_ids
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
        let follower = IndexFollower::start_with(projection(&city), store, NEVER).expect("start");
        let position = city.create("C2", "d.chengguan.s02", "楼上装修噪音").await;
        assert!(
            follower.wait_for(position, Duration::from_secs(5)).await,
            "the follower commits for a waiting reader"
        );
        assert_eq!(words(&follower.projection().index, "装修太吵了"), ["C2"]);
        follower.stop().await;
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
        let ghost = CaseDoc {
            text: CaseText {
                title: "占道经营".into(),
                ..CaseText::default()
            },
            facets: CaseFacets::default(),
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
        let search = CaseSearch::start(dir.path(), store, city.org.clone()).expect("start");
        assert!(search.ready_within(Duration::from_secs(10)).await);
        let index = &search.index.projection().index;
        assert_eq!(words(index, "摆摊"), ["C1"]);
        assert_eq!(index.committed(), head);
        search.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_commits_what_was_applied_and_a_restart_resumes_from_it() {
        let dir = tempfile::tempdir().expect("dir");
        let mut city = City::new(dir.path());
        let store: Arc<dyn EventStore> = city.store.clone();
        let follower =
            IndexFollower::start_with(projection(&city), store.clone(), NEVER).expect("start");
        // The catch-up of the empty store is over before the case is written (else the
        // catch-up could apply it and commit at its end, on a loaded machine).
        assert!(follower.ready_within(Duration::from_secs(10)).await);
        let position = city
            .create("C1", "d.chengguan.s01", "小区门口占道经营")
            .await;
        // Applied, not committed: the timer never fires and nobody waits.
        while follower.projection().checkpoint() < position {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(follower.projection().committed(), 0);
        assert!(words(&follower.projection().index, "摆摊").is_empty());
        follower.stop().await;
        drop(follower);
        let index = open(dir.path());
        assert_eq!(index.committed(), position, "committed when stopping");
        assert_eq!(words(&index, "摆摊"), ["C1"]);
        drop(index);
        let search = CaseSearch::start(dir.path(), store, city.org.clone()).expect("restart");
        assert!(search.ready_within(Duration::from_secs(10)).await);
        assert_eq!(words(&search.index.projection().index, "摆摊"), ["C1"]);
        search.stop().await;
    }
}
