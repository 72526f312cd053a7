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
    CaseIndex::open_or_create(dir, segmenter, knowledge_base::fixtures::synonyms())
        .with_context(|| format!("failed to open case index `{}`", dir.display()))
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
