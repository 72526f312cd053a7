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
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Whether the catch-up at start has applied everything the store held then.
    caught_up: watch::Sender<bool>,
    /// The store's head when the follower started: the catch-up's goal.
    start_head: u64,
    /// While the index fills itself from final states ([`IndexProjection::load_all`]), which
    /// cannot stop half way and commits nothing until it is done.
    loading_all: AtomicBool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Where an index stands, for `GET /api/v1/status` and for people waiting on a rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStatus {
    /// The position up to which searches see every change.
    pub visible: u64,
    /// The last position applied, committed or not.
    pub applied: u64,
    /// The store's head when the follower started.
    pub start_head: u64,
    /// Whether the catch-up at start is over (the index then follows the store live).
    pub caught_up: bool,
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
    /// Follows `store` with `projection` in the background until [`IndexFollower::stop`]:
    /// first catches up with what the store holds (resetting the index first if it is ahead
    /// of the store, which was then replaced), then follows its subscription. Returns at once:
    /// the service listens while an index catches up, and [`IndexFollower::status`] says how
    /// far it is. A failure while catching up is logged and retried from the last commit.
    ///
    /// # Errors
    /// When an index ahead of the store cannot be reset.
    pub fn start(projection: P, store: Arc<dyn EventStore>) -> anyhow::Result<Arc<Self>> {
        Self::start_with(projection, store, CommitPolicy::default())
    }

    /// [`IndexFollower::start`] with another commit policy.
    ///
    /// # Errors
    /// As [`IndexFollower::start`].
    pub fn start_with(
        projection: P,
        store: Arc<dyn EventStore>,
        policy: CommitPolicy,
    ) -> anyhow::Result<Arc<Self>> {
        reset_if_ahead(&projection, store.as_ref())?;
        let follower = Arc::new(Self::new(projection, store, policy));
        let task = tokio::spawn(follower.clone().run());
        if let Ok(mut slot) = follower.task.lock() {
            *slot = Some(task);
        }
        Ok(follower)
    }

    fn new(projection: P, store: Arc<dyn EventStore>, policy: CommitPolicy) -> Self {
        IndexFollower {
            visible: watch::Sender::new(projection.committed()),
            wanted: watch::Sender::new(0),
            stopping: watch::Sender::new(false),
            caught_up: watch::Sender::new(false),
            start_head: store.head().0,
            loading_all: AtomicBool::new(false),
            projection: Arc::new(projection),
            store,
            policy,
            task: Mutex::new(None),
        }
    }

    /// Rebuilds `projection` from position 0 (run while the service is stopped); returns the
    /// checkpoint reached.
    ///
    /// # Errors
    /// Store, decode or index failures.
    pub async fn rebuild(projection: P, store: Arc<dyn EventStore>) -> anyhow::Result<u64> {
        projection
            .reset()
            .with_context(|| format!("failed to reset the {}", P::NAME))?;
        let follower = Self::new(projection, store, CommitPolicy::default());
        let mut cache = P::Cache::default();
        follower.catch_up(&mut cache).await?;
        Ok(follower.projection.checkpoint())
    }

    /// Where the index stands.
    pub fn status(&self) -> IndexStatus {
        IndexStatus {
            visible: *self.visible.borrow(),
            applied: self.projection.checkpoint(),
            start_head: self.start_head,
            caught_up: *self.caught_up.borrow(),
        }
    }

    /// Waits until the catch-up at start is over (or `timeout`); whether it is. Searches
    /// before then see the index as it was committed last, which may be far behind the store
    /// (or empty, while it is rebuilt).
    pub async fn ready_within(&self, timeout: Duration) -> bool {
        let mut rx = self.caught_up.subscribe();
        if *rx.borrow_and_update() {
            return true;
        }
        tokio::time::timeout(timeout, rx.wait_for(|ready| *ready))
            .await
            .is_ok_and(|res| res.is_ok())
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
            if self.loading_all.load(Ordering::Acquire) {
                // Nothing of it is committed yet: the next start begins it again.
                tracing::info!(
                    index = P::NAME,
                    "stopped while filling the index from final states; the next start fills it again"
                );
                task.abort();
                let _ = task.await;
                return;
            }
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
        raise_to(&self.wanted, position);
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
            raise_to(&self.visible, projection.checkpoint());
        }
        Ok(())
    }

    /// Raises what searches see to the last commit.
    fn publish_committed(&self) {
        raise_to(&self.visible, self.projection.committed());
    }

    /// Catches up (retrying after failures, from the last commit), then follows the store.
    #[tracing::instrument(skip_all, fields(index = P::NAME))]
    async fn run(self: Arc<Self>) {
        let started = std::time::Instant::now();
        let mut stopping = self.stopping.subscribe();
        let mut cache = P::Cache::default();
        let mut failures = 0u32;
        loop {
            match self.catch_up(&mut cache).await {
                Ok(true) => break,
                Ok(false) => {
                    self.commit_at_stop().await;
                    return;
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::error!(error = %format!("{err:#}"), failures, "index failed to catch up; resuming from its last commit");
                    cache = P::Cache::default();
                    if let Err(err) = self.projection.rollback() {
                        tracing::error!(error = %format!("{err:#}"), "index failed to roll back");
                    }
                    // 1 s, 2 s, 4 s … at most 32 s between attempts.
                    let pause = RETRY_AFTER.saturating_mul(1 << failures.min(6)) / 2;
                    tokio::select! {
                        _ = stopping.changed() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
        self.caught_up.send_replace(true);
        tracing::info!(
            position = self.projection.checkpoint(),
            seconds = started.elapsed().as_secs_f64(),
            "index caught up with the store"
        );
        self.follow(cache).await;
    }

    /// Applies everything the store holds after the checkpoint, committed; `false` when asked
    /// to stop first. Searches see only commits, so they are made for progress that survives a
    /// crash (every ten times [`CommitPolicy::max_unpublished`] documents, or ten times the
    /// policy's interval) and for a reader waiting on a position already applied. An empty
    /// index is filled by [`IndexProjection::load_all`] when it can.
    async fn catch_up(&self, cache: &mut P::Cache) -> anyhow::Result<bool> {
        let projection = &self.projection;
        let store = self.store.as_ref();
        if projection.checkpoint() == 0 && store.head().0 > 0 {
            self.loading_all.store(true, Ordering::Release);
            let loaded = projection.load_all(store).await;
            self.loading_all.store(false, Ordering::Release);
            if loaded.with_context(|| format!("failed to fill the {}", P::NAME))? {
                commit(projection, 0).await?;
                self.publish_committed();
            }
        }
        let mut last_commit = Instant::now();
        loop {
            if *self.stopping.borrow() {
                return Ok(false);
            }
            let after = Position(projection.checkpoint());
            let events = store.read_all(after, BATCH).await?;
            if events.is_empty() {
                break;
            }
            projection.apply(store, cache, &events).await?;
            let wanted = *self.wanted.borrow();
            let reader_waits = wanted > *self.visible.borrow() && projection.checkpoint() >= wanted;
            if reader_waits
                || projection.unpublished() >= self.policy.max_unpublished.saturating_mul(10)
                || last_commit.elapsed() >= self.policy.interval.saturating_mul(10)
            {
                let min_skip = if reader_waits { 0 } else { MIN_SKIP };
                if commit(projection, min_skip).await? {
                    self.publish_committed();
                }
                last_commit = Instant::now();
            }
        }
        commit(projection, 0).await?;
        self.publish_committed();
        Ok(true)
    }

    /// Whatever was applied becomes durable and searchable before the follower ends.
    async fn commit_at_stop(&self) {
        match commit(&self.projection, 0).await {
            Ok(_) => {
                self.visible.send_replace(self.projection.checkpoint());
            }
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "index failed to commit when stopping");
            }
        }
    }

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
        self.commit_at_stop().await;
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

/// Opens the index in `dir` with `open`; when its files do not read as an index (a damaged
/// segment, metadata or payload), moves the directory aside (`case-index.damaged-…`, kept
/// for a look) and opens an empty one in its place, which its follower rebuilds from
/// position 0. An index locked by another process, or a disk that refuses access or space,
/// is not damage and fails the open as before.
///
/// # Errors
/// `open`'s error when it is not damage, when the directory cannot be moved aside, or when the
/// empty index cannot be opened either.
pub fn open_or_move_aside<T>(
    name: &str,
    dir: &Path,
    open: impl Fn(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match open(dir) {
        Err(err) if is_damaged(&err) => {
            let aside = crate::datadir::move_aside(dir, &[])?;
            tracing::error!(
                index = name,
                path = %dir.display(),
                moved_to = %aside.display(),
                error = %format!("{err:#}"),
                "index is damaged: moved it aside; rebuilding it from the event store in the background"
            );
            open(dir)
        }
        res => res,
    }
}

/// Whether opening an index failed because its files are damaged (see
/// `knowledge_base::stored::is_damage`).
fn is_damaged(err: &anyhow::Error) -> bool {
    let cause: &(dyn std::error::Error + 'static) = err.as_ref();
    knowledge_base::stored::is_damage(cause)
}

/// Raises a position `tx` publishes to `position`, never lowers it; receivers wake only when
/// it rose.
fn raise_to(tx: &watch::Sender<u64>, position: u64) {
    tx.send_if_modified(|current| {
        let raise = position > *current;
        if raise {
            *current = position;
        }
        raise
    });
}

/// Commits `projection` on the blocking pool.
async fn commit<P: IndexProjection>(projection: &Arc<P>, min_skip: u64) -> anyhow::Result<bool> {
    let projection = projection.clone();
    tokio::task::spawn_blocking(move || projection.commit(min_skip))
        .await
        .with_context(|| format!("{} commit task failed", P::NAME))?
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::store::ExpectedVersion;
    use crate::store::contract::events;
    use crate::store::sqlite::SqliteStore;

    /// An index in memory whose every batch waits for a permit of `gate`, so a test decides
    /// how far the catch-up gets.
    struct Gated {
        gate: Arc<Semaphore>,
        state: Mutex<GatedState>,
    }

    impl Default for Gated {
        fn default() -> Self {
            Gated {
                gate: Arc::new(Semaphore::new(0)),
                state: Mutex::default(),
            }
        }
    }

    #[derive(Default)]
    struct GatedState {
        checkpoint: u64,
        committed: u64,
        unpublished: usize,
        docs: u64,
        committed_docs: u64,
    }

    impl Gated {
        fn state(&self) -> std::sync::MutexGuard<'_, GatedState> {
            self.state.lock().expect("state")
        }
    }

    #[async_trait::async_trait]
    impl IndexProjection for Gated {
        type Cache = ();
        const NAME: &'static str = "gated index";

        fn checkpoint(&self) -> u64 {
            self.state().checkpoint
        }

        fn committed(&self) -> u64 {
            self.state().committed
        }

        fn unpublished(&self) -> usize {
            self.state().unpublished
        }

        async fn apply(
            &self,
            _store: &dyn EventStore,
            _cache: &mut (),
            events: &[RecordedEvent],
        ) -> anyhow::Result<()> {
            self.gate.acquire().await?.forget();
            let mut state = self.state();
            for event in events {
                if event.position.0 > state.checkpoint {
                    state.checkpoint = event.position.0;
                    state.docs += 1;
                    state.unpublished += 1;
                }
            }
            Ok(())
        }

        fn commit(&self, min_skip: u64) -> anyhow::Result<bool> {
            let mut state = self.state();
            if state.unpublished == 0 && state.checkpoint < state.committed + min_skip.max(1) {
                return Ok(false);
            }
            state.committed = state.checkpoint;
            state.committed_docs = state.docs;
            state.unpublished = 0;
            Ok(true)
        }

        fn rollback(&self) -> anyhow::Result<()> {
            let mut state = self.state();
            state.checkpoint = state.committed;
            state.docs = state.committed_docs;
            state.unpublished = 0;
            Ok(())
        }

        fn reset(&self) -> anyhow::Result<()> {
            *self.state() = GatedState::default();
            Ok(())
        }
    }

    /// A store holding `batches` full batches of events.
    async fn store_of(dir: &Path, batches: usize) -> Arc<dyn EventStore> {
        let store = SqliteStore::open(&dir.join("events.db")).expect("store");
        for i in 0..batches {
            store
                .append(
                    &format!("s-{i}"),
                    ExpectedVersion::NoStream,
                    events(BATCH as u64),
                )
                .await
                .expect("append");
        }
        Arc::new(store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_returns_at_once_and_the_index_says_it_catches_up_until_it_has() {
        let dir = tempfile::tempdir().expect("dir");
        let store = store_of(dir.path(), 3).await;
        let head = store.head().0;
        let gated = Gated::default();
        let gate = gated.gate.clone();
        let follower = IndexFollower::start(gated, store.clone()).expect("start");
        // Nothing applied: the catch-up waits for the gate, start did not.
        assert_eq!(
            follower.status(),
            IndexStatus {
                visible: 0,
                applied: 0,
                start_head: head,
                caught_up: false,
            }
        );
        assert!(!follower.ready_within(Duration::from_millis(50)).await);
        let first = BATCH as u64;
        assert!(
            !follower.wait_for(first, Duration::from_millis(50)).await,
            "a reader waits while the index catches up"
        );
        // One batch: applied, and committed at once for the reader waiting on its position.
        gate.add_permits(1);
        assert!(follower.wait_for(first, Duration::from_secs(5)).await);
        assert!(!follower.status().caught_up);
        gate.add_permits(2);
        assert!(follower.ready_within(Duration::from_secs(5)).await);
        let status = follower.status();
        assert!(status.caught_up);
        assert_eq!((status.visible, status.applied), (head, head));
        // Then it follows live.
        gate.add_permits(100);
        let res = store
            .append("s-new", ExpectedVersion::NoStream, events(1))
            .await
            .expect("append");
        assert!(
            follower
                .wait_for(res.position.0, Duration::from_secs(5))
                .await
        );
        follower.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_during_the_catch_up_commits_what_was_applied() {
        let dir = tempfile::tempdir().expect("dir");
        let store = store_of(dir.path(), 3).await;
        let gated = Gated::default();
        let gate = gated.gate.clone();
        let follower = IndexFollower::start(gated, store).expect("start");
        gate.add_permits(1);
        while follower.status().applied < BATCH as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The next batch is held at the gate: release it only once the stop is asked for.
        let stopping = {
            let follower = follower.clone();
            tokio::spawn(async move { follower.stop().await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.add_permits(1);
        stopping.await.expect("stop");
        let projection = follower.projection();
        assert_eq!(projection.committed(), 2 * BATCH as u64);
        assert_eq!(projection.state().committed_docs, 2 * BATCH as u64);
        assert!(!follower.status().caught_up);
    }
}
