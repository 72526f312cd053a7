//! One follower for every search index kept as a projection of the event log (the
//! knowledge-base index, the case-text index): catch up at start, follow the store's
//! subscription, commit on the blocking pool, retry from the last commit after a failure,
//! answer "has position N become searchable yet", stop, and rebuild from position 0.
//!
//! What differs between the indexes is behind [`IndexProjection`]: how a batch of events
//! changes the index, and how a commit writes the checkpoint into the index's own commit
//! payload. The checkpoint and the documents are committed together, so after a crash an index
//! is never ahead of the store nor out of step with it: it resumes after its last commit and
//! applies again whatever came later.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::store::{EventStore, Position, RecordedEvent};

/// Events read per batch.
const BATCH: usize = 1024;
/// Commit after skipping at least this many positions of no interest to the index.
const MIN_SKIP: u64 = 10_000;
/// Pause before applying again after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A search index that follows the event log: the part of the follower that differs from one
/// index to the other.
#[async_trait::async_trait]
pub trait IndexProjection: Send + Sync + 'static {
    /// What the follower keeps between batches (for example the states of the streams seen
    /// last), so consecutive events of a stream need no read; dropped after a failure.
    type Cache: Default + Send + 'static;

    /// The index's name in logs and errors.
    const NAME: &'static str;

    /// The last position applied, committed or not.
    fn checkpoint(&self) -> u64;

    /// The checkpoint of the last commit.
    fn committed(&self) -> u64;

    /// Applies the events of `events` after [`IndexProjection::checkpoint`] (those at or before
    /// it are skipped) and moves the checkpoint to the last one; nothing is committed.
    ///
    /// # Errors
    /// Store, decode or index failures; some events may have been applied then, and the
    /// follower rolls back to the last commit.
    async fn apply(
        &self,
        store: &dyn EventStore,
        cache: &mut Self::Cache,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()>;

    /// Commits what was applied, with the checkpoint in the commit payload, and makes it
    /// searchable, if a document changed or the checkpoint moved by at least `min_skip`
    /// positions; returns whether it committed. Blocks (the follower calls it on the
    /// blocking pool).
    ///
    /// # Errors
    /// When the commit fails; then nothing of it is visible after a restart.
    fn commit(&self, min_skip: u64) -> anyhow::Result<bool>;

    /// Drops what was applied since the last commit: the checkpoint goes back to
    /// [`IndexProjection::committed`].
    ///
    /// # Errors
    /// When the index cannot be rolled back.
    fn rollback(&self) -> anyhow::Result<()>;

    /// Empties the index and its checkpoint, committed (then replay everything to rebuild).
    ///
    /// # Errors
    /// When the index fails.
    fn reset(&self) -> anyhow::Result<()>;
}

/// An [`IndexProjection`] kept current from the store in the background.
pub struct IndexFollower<P: IndexProjection> {
    projection: Arc<P>,
    store: Arc<dyn EventStore>,
    /// The position up to which searches see every change.
    visible: watch::Sender<u64>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl<P: IndexProjection> std::fmt::Debug for IndexFollower<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexFollower")
            .field("index", &P::NAME)
            .field("visible", &*self.visible.borrow())
            .finish_non_exhaustive()
    }
}

impl<P: IndexProjection> IndexFollower<P> {
    /// Brings `projection` up to date with `store` (resetting it first if it is ahead of the
    /// store, which was then replaced), and follows the store in the background until
    /// [`IndexFollower::stop`].
    ///
    /// # Errors
    /// Store, decode or index failures while catching up.
    pub async fn start(projection: P, store: Arc<dyn EventStore>) -> anyhow::Result<Arc<Self>> {
        reset_if_ahead(&projection, store.as_ref())?;
        let projection = Arc::new(projection);
        let mut cache = P::Cache::default();
        catch_up(&projection, store.as_ref(), &mut cache)
            .await
            .with_context(|| format!("failed to bring the {} up to date", P::NAME))?;
        let follower = Arc::new(IndexFollower {
            visible: watch::Sender::new(projection.checkpoint()),
            projection,
            store,
            task: Mutex::new(None),
        });
        let task = tokio::spawn(follower.clone().follow(cache));
        if let Ok(mut slot) = follower.task.lock() {
            *slot = Some(task);
        }
        Ok(follower)
    }

    /// Rebuilds `projection` from position 0 (run while the service is stopped); returns the
    /// checkpoint reached.
    ///
    /// # Errors
    /// Store, decode or index failures.
    pub async fn rebuild(projection: P, store: &dyn EventStore) -> anyhow::Result<u64> {
        projection
            .reset()
            .with_context(|| format!("failed to reset the {}", P::NAME))?;
        let projection = Arc::new(projection);
        let mut cache = P::Cache::default();
        catch_up(&projection, store, &mut cache).await?;
        Ok(projection.checkpoint())
    }

    /// The index, for queries.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// Stops following the store.
    pub async fn stop(&self) {
        let task = self.task.lock().ok().and_then(|mut slot| slot.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Waits until searches see every change up to `position` (or `timeout`); whether they do.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.visible.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|visible| *visible >= position))
            .await
            .is_ok_and(|res| res.is_ok())
    }

    #[tracing::instrument(skip_all, fields(index = P::NAME))]
    async fn follow(self: Arc<Self>, mut cache: P::Cache) {
        let mut subscription = self.store.subscribe(Position(self.projection.checkpoint()));
        loop {
            let batch = match subscription.next_batch(BATCH).await {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::info!(error = %err, "index follower stopped");
                    return;
                }
            };
            let res = async {
                self.projection
                    .apply(self.store.as_ref(), &mut cache, &batch)
                    .await?;
                commit(&self.projection, MIN_SKIP).await?;
                anyhow::Ok(())
            }
            .await;
            match res {
                Ok(()) => {
                    self.visible.send_replace(self.projection.checkpoint());
                }
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "index failed to apply events; resuming from its last commit");
                    cache = P::Cache::default();
                    if let Err(err) = self.projection.rollback() {
                        tracing::error!(error = %format!("{err:#}"), "index failed to roll back");
                    }
                    tokio::time::sleep(RETRY_AFTER).await;
                    subscription = self.store.subscribe(Position(self.projection.checkpoint()));
                }
            }
        }
    }
}

/// Resets `projection` if it is ahead of `store` (the store was replaced): it then rebuilds
/// from position 0.
///
/// # Errors
/// When the index cannot be reset.
pub fn reset_if_ahead<P: IndexProjection>(
    projection: &P,
    store: &dyn EventStore,
) -> anyhow::Result<()> {
    if projection.checkpoint() > store.head().0 {
        tracing::warn!(
            index = P::NAME,
            "index is ahead of the event store; rebuilding"
        );
        projection
            .reset()
            .with_context(|| format!("failed to reset the {}", P::NAME))?;
    }
    Ok(())
}

/// Commits `projection` on the blocking pool.
async fn commit<P: IndexProjection>(projection: &Arc<P>, min_skip: u64) -> anyhow::Result<bool> {
    let projection = projection.clone();
    tokio::task::spawn_blocking(move || projection.commit(min_skip))
        .await
        .with_context(|| format!("{} commit task failed", P::NAME))?
}

/// Applies everything the store holds after the checkpoint, committed.
async fn catch_up<P: IndexProjection>(
    projection: &Arc<P>,
    store: &dyn EventStore,
    cache: &mut P::Cache,
) -> anyhow::Result<()> {
    loop {
        let after = Position(projection.checkpoint());
        let events = store.read_all(after, BATCH).await?;
        if events.is_empty() {
            break;
        }
        projection.apply(store, cache, &events).await?;
        commit(projection, MIN_SKIP).await?;
    }
    commit(projection, 0).await?;
    Ok(())
}
