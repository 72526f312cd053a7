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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use domain::event::EventBody;
use knowledge_base::cases::{CaseIndex, CaseText};
use knowledge_base::projection::ProjectionError;
use tokio::sync::watch;

use crate::store::{EventStore, Position, RecordedEvent};

/// Events read per batch while catching up.
const BATCH: usize = 1024;
/// Commit after skipping at least this many positions of no interest.
const MIN_SKIP: u64 = 10_000;
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
    /// The blocking commit task failed.
    #[error("case index commit task failed")]
    Task,
}

/// The case-text index, following the store.
pub struct CaseSearch {
    index: Arc<CaseIndex>,
    store: Arc<dyn EventStore>,
    /// The last position applied (changes committed).
    applied: watch::Sender<u64>,
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
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
        let dir = index_dir(data_dir);
        let index = open_index(&dir)?;
        if index.checkpoint() > store.head().0 {
            tracing::warn!(path = %dir.display(), "case index is ahead of the event store; rebuilding");
            index.reset().context("failed to reset the case index")?;
        }
        let search = Arc::new(CaseSearch {
            applied: watch::Sender::new(index.checkpoint()),
            index: Arc::new(index),
            store,
            follower: Mutex::new(None),
        });
        let mut cache = TextCache::new();
        search
            .catch_up(&mut cache)
            .await
            .context("failed to bring the case index up to date")?;
        let follower = tokio::spawn(search.clone().follow(cache));
        if let Ok(mut slot) = search.follower.lock() {
            *slot = Some(follower);
        }
        Ok(search)
    }

    /// Stops following the store.
    pub async fn stop(&self) {
        let handle = self.follower.lock().ok().and_then(|mut slot| slot.take());
        if let Some(handle) = handle {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Rebuilds the index of `data_dir` from position 0 (run while the service is stopped);
    /// returns the checkpoint reached.
    ///
    /// # Errors
    /// Store, decode or index failures.
    pub async fn rebuild(data_dir: &Path, store: Arc<dyn EventStore>) -> anyhow::Result<u64> {
        let index = open_index(&index_dir(data_dir))?;
        index.reset()?;
        let mut cache = TextCache::new();
        let mut after = Position::START;
        loop {
            let events = store.read_all(after, BATCH).await?;
            let Some(last) = events.last() else { break };
            after = last.position;
            apply_batch(store.as_ref(), &index, &mut cache, &events).await?;
            index.commit(MIN_SKIP)?;
        }
        index.commit(0)?;
        Ok(index.checkpoint())
    }

    async fn catch_up(&self, cache: &mut TextCache) -> Result<(), CaseSearchError> {
        loop {
            let after = Position(self.index.checkpoint());
            let events = self.store.read_all(after, BATCH).await?;
            if events.is_empty() {
                break;
            }
            apply_batch(self.store.as_ref(), &self.index, cache, &events).await?;
            self.commit(MIN_SKIP).await?;
        }
        self.commit(0).await
    }

    async fn commit(&self, min_skip: u64) -> Result<(), CaseSearchError> {
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || index.commit(min_skip))
            .await
            .map_err(|_| CaseSearchError::Task)??;
        self.applied.send_replace(self.index.checkpoint());
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn follow(self: Arc<Self>, mut cache: TextCache) {
        let mut subscription = self.store.subscribe(Position(self.index.checkpoint()));
        loop {
            let batch = match subscription.next_batch(BATCH).await {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::info!(error = %err, "case index follower stopped");
                    return;
                }
            };
            let res = async {
                apply_batch(self.store.as_ref(), &self.index, &mut cache, &batch).await?;
                // A batch that changed a document is always committed (a search must see a case
                // soon after it is written); one that changed none only moves the checkpoint.
                self.commit(MIN_SKIP).await
            }
            .await;
            if let Err(err) = res {
                tracing::error!(error = %err, "case index failed to apply events; resuming from its checkpoint");
                cache.clear();
                tokio::time::sleep(Duration::from_secs(1)).await;
                subscription = self.store.subscribe(Position(self.index.committed()));
            }
        }
    }

    /// Waits until the index has applied `position` (or `timeout`); whether it did.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= position))
            .await
            .is_ok_and(|res| res.is_ok())
    }

    /// The ids of the cases whose texts match `text`, best first, at most `limit`.
    ///
    /// # Errors
    /// When reading the index fails.
    pub fn search(&self, text: &str, limit: usize) -> anyhow::Result<Vec<String>> {
        let hits = self
            .index
            .search(text, limit)
            .context("failed to search the case index")?;
        Ok(hits.into_iter().map(|(case_id, _)| case_id).collect())
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
