//! One follower for every search index kept as a projection of the event log (the
//! knowledge-base index, the case-text index): catch up at start, follow the store's
//! subscription, commit on the blocking pool, retry from the last commit after a failure,
//! answer "has position N become searchable yet", stop, and rebuild from position 0.
//!
//! A tantivy commit writes and syncs files and reopens the searcher, so the follower does not
//! commit per batch: it commits when [`CommitPolicy::interval`] has passed since the last commit
//! or [`CommitPolicy::max_unpublished`] documents wait, and when it stops. A reader that must
//! see a position (`min_position`, a command waiting for its own change) does not wait for the
//! timer: [`IndexFollower::wait_for`] asks the follower to commit as soon as it has applied
//! that position.
//!
//! What differs between the indexes is behind [`IndexProjection`]: how a batch of events
//! changes the index, and how a commit writes the checkpoint into the index's own commit
//! payload. The checkpoint and the documents are committed together, so after a crash an index
//! is never ahead of the store nor out of step with it: it resumes after its last commit and
//! applies again whatever came later.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::Context as _;
use knowledge_base::stored::Opened;
use tokio::sync::watch;

use crate::store::{EventStore, Position, RecordedEvent};

/// Events read per batch.
const BATCH: usize = 1024;
/// Commit after skipping at least this many positions of no interest to the index.
const MIN_SKIP: u64 = 10_000;
/// Pause before applying again after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long [`IndexFollower::stop`] waits for the last commit before giving up on it.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// When the follower commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPolicy {
    /// Longest time between two commits while changes wait (default 1 s): how stale a search
    /// without `min_position` may be.
    pub interval: Duration,
    /// Commit at once when this many documents changed since the last commit (default 10,000),
    /// and while catching up or rebuilding when ten times as many did.
    pub max_unpublished: usize,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy {
            interval: Duration::from_secs(1),
            max_unpublished: 10_000,
        }
    }
}

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

    /// How many document changes were applied since the last commit: searches see them only
    /// after the next one. Changes outside the documents (counts kept in the payload, the
    /// checkpoint) are not counted: they are read from memory.
    fn unpublished(&self) -> usize;

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

    /// Fills the index while its checkpoint is 0, from everything the store holds, and moves
    /// the checkpoint to the last position read (nothing committed); returns `false` when the
    /// index has no such way, and the follower replays the store batch by batch instead (the
    /// default). An index whose documents change with many events writes each document once
    /// this way, from final states, instead of once per batch.
    ///
    /// # Errors
    /// Store, decode or index failures.
    async fn load_all(&self, store: &dyn EventStore) -> anyhow::Result<bool> {
        let _ = store;
        Ok(false)
    }
}

/// An [`IndexProjection`] kept current from the store in the background.
pub struct IndexFollower<P: IndexProjection> {
    projection: Arc<P>,
    store: Arc<dyn EventStore>,
    policy: CommitPolicy,
    /// The position up to which searches see every change.
    visible: watch::Sender<u64>,
    /// The highest position a reader waits to see: the follower commits as soon as it has
    /// applied it.
    wanted: watch::Sender<u64>,
    /// Set to stop: the follower commits what it applied and returns.
    stopping: watch::Sender<bool>,
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
        Self::start_with(projection, store, CommitPolicy::default()).await
    }

    /// [`IndexFollower::start`] with another commit policy.
    ///
    /// # Errors
    /// As [`IndexFollower::start`].
    pub async fn start_with(
        projection: P,
        store: Arc<dyn EventStore>,
        policy: CommitPolicy,
    ) -> anyhow::Result<Arc<Self>> {
        reset_if_ahead(&projection, store.as_ref())?;
        let projection = Arc::new(projection);
        let mut cache = P::Cache::default();
        catch_up(&projection, store.as_ref(), &mut cache, policy)
            .await
            .with_context(|| format!("failed to bring the {} up to date", P::NAME))?;
        let follower = Arc::new(IndexFollower {
            visible: watch::Sender::new(projection.checkpoint()),
            wanted: watch::Sender::new(0),
            stopping: watch::Sender::new(false),
            projection,
            store,
            policy,
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
        catch_up(&projection, store, &mut cache, CommitPolicy::default()).await?;
        Ok(projection.checkpoint())
    }

    /// The index, for queries.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// Stops following the store, after committing what was applied.
    pub async fn stop(&self) {
        let task = self.task.lock().ok().and_then(|mut slot| slot.take());
        if let Some(mut task) = task {
            self.stopping.send_replace(true);
            if tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err() {
                tracing::error!(
                    index = P::NAME,
                    "index follower did not stop in time; changes since its last commit are \
                     applied again at the next start"
                );
                task.abort();
                let _ = task.await;
            }
        }
    }

    /// Waits until searches see every change up to `position` (or `timeout`); whether they do.
    /// The follower commits as soon as it has applied `position`, without waiting for its
    /// timer.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.visible.subscribe();
        if *rx.borrow_and_update() >= position {
            return true;
        }
        self.wanted.send_if_modified(|wanted| {
            let raise = position > *wanted;
            if raise {
                *wanted = position;
            }
            raise
        });
        tokio::time::timeout(timeout, rx.wait_for(|visible| *visible >= position))
            .await
            .is_ok_and(|res| res.is_ok())
    }

    /// Commits if the policy or a waiting reader says so, then publishes what searches see.
    async fn settle(&self, last_commit: &mut Instant) -> anyhow::Result<()> {
        let projection = &self.projection;
        let checkpoint = projection.checkpoint();
        let unpublished = projection.unpublished();
        let wanted = *self.wanted.borrow();
        let reader_waits =
            unpublished > 0 && wanted > *self.visible.borrow() && checkpoint >= wanted;
        let due = last_commit.elapsed() >= self.policy.interval;
        if reader_waits
            || unpublished >= self.policy.max_unpublished
            || (due && checkpoint > projection.committed())
        {
            // Documents are committed whatever their number; a checkpoint that only moved
            // past events of no interest waits until it moved far.
            let min_skip = if unpublished > 0 { 0 } else { MIN_SKIP };
            commit(projection, min_skip).await?;
            *last_commit = Instant::now();
        }
        if projection.unpublished() == 0 {
            let checkpoint = projection.checkpoint();
            self.visible.send_if_modified(|visible| {
                let raise = checkpoint > *visible;
                if raise {
                    *visible = checkpoint;
                }
                raise
            });
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(index = P::NAME))]
    async fn follow(self: Arc<Self>, mut cache: P::Cache) {
        let mut stopping = self.stopping.subscribe();
        let mut wanted = self.wanted.subscribe();
        let mut subscription = self.store.subscribe(Position(self.projection.checkpoint()));
        let mut last_commit = Instant::now();
        loop {
            if *stopping.borrow_and_update() {
                break;
            }
            let uncommitted = self.projection.checkpoint() > self.projection.committed();
            let res = tokio::select! {
                biased;
                _ = stopping.changed() => break,
                _ = wanted.changed() => Ok(()),
                () = tokio::time::sleep_until(last_commit + self.policy.interval), if uncommitted => Ok(()),
                // Cancel safe: a batch is either delivered whole or left for the next call.
                batch = subscription.next_batch(BATCH) => match batch {
                    Ok(batch) => {
                        self.projection
                            .apply(self.store.as_ref(), &mut cache, &batch)
                            .await
                    }
                    Err(err) => {
                        tracing::info!(error = %err, "index follower stopped");
                        break;
                    }
                },
            };
            let res = match res {
                Ok(()) => self.settle(&mut last_commit).await,
                Err(err) => Err(err),
            };
            if let Err(err) = res {
                tracing::error!(error = %format!("{err:#}"), "index failed to apply events; resuming from its last commit");
                cache = P::Cache::default();
                if let Err(err) = self.projection.rollback() {
                    tracing::error!(error = %format!("{err:#}"), "index failed to roll back");
                }
                tokio::select! {
                    _ = stopping.changed() => break,
                    () = tokio::time::sleep(RETRY_AFTER) => {}
                }
                subscription = self.store.subscribe(Position(self.projection.checkpoint()));
            }
        }
        // Whatever was applied becomes durable and searchable before the follower ends.
        match commit(&self.projection, 0).await {
            Ok(_) => {
                self.visible.send_replace(self.projection.checkpoint());
            }
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "index failed to commit when stopping");
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

/// Says so when an index was written by a build of another schema version and was replaced
/// by an empty one, which the follower rebuilds from position 0.
pub fn log_replaced(name: &str, dir: &Path, opened: Opened, version: u32) {
    if let Opened::Replaced { found } = opened {
        tracing::warn!(
            index = name,
            path = %dir.display(),
            found,
            expected = version,
            "index was written with another schema version; rebuilding it from position 0"
        );
    }
}

/// Commits `projection` on the blocking pool.
async fn commit<P: IndexProjection>(projection: &Arc<P>, min_skip: u64) -> anyhow::Result<bool> {
    let projection = projection.clone();
    tokio::task::spawn_blocking(move || projection.commit(min_skip))
        .await
        .with_context(|| format!("{} commit task failed", P::NAME))?
}

/// Applies everything the store holds after the checkpoint, committed. Nobody searches yet,
/// so commits are only for progress that survives a crash: every ten times
/// [`CommitPolicy::max_unpublished`] documents, or as often as the policy's interval allows.
/// An empty index is filled by [`IndexProjection::load_all`] when it can.
async fn catch_up<P: IndexProjection>(
    projection: &Arc<P>,
    store: &dyn EventStore,
    cache: &mut P::Cache,
    policy: CommitPolicy,
) -> anyhow::Result<()> {
    if projection.checkpoint() == 0 && store.head().0 > 0 && projection.load_all(store).await? {
        commit(projection, 0).await?;
    }
    let mut last_commit = Instant::now();
    loop {
        let after = Position(projection.checkpoint());
        let events = store.read_all(after, BATCH).await?;
        if events.is_empty() {
            break;
        }
        projection.apply(store, cache, &events).await?;
        let unpublished = projection.unpublished();
        if unpublished >= policy.max_unpublished.saturating_mul(10)
            || last_commit.elapsed() >= policy.interval.saturating_mul(10)
        {
            commit(projection, MIN_SKIP).await?;
            last_commit = Instant::now();
        }
    }
    commit(projection, 0).await?;
    Ok(())
}
