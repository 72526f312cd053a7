//! Keeps the read database current: feeds [`projections::Projector`] from the event store's
//! catch-up subscription, in batches, and lets queries wait for a position (read-your-writes).
//!
//! `projections` sees only decoded events; this module is the glue that knows the store and
//! the codec. One [`ReadSide`] per read database: it owns the projector (behind a lock, so a
//! test's [`ReadSide::catch_up`] and the follower never apply the same batch twice) and a
//! read-only connection for queries.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::app::shared::Shared;
use crate::directory_log::OrgSource;
use crate::rules_log::{InForce, SharedRules};
use anyhow::Context as _;
use projections::{Projector, Queries, SourcedEvent};
use tokio::sync::watch;

use crate::app::codec::decode;
use crate::store::stream::StreamName;
use crate::store::{EventStore, Position, RecordedEvent};

/// Events read from the store per batch, and at most applied per transaction.
const BATCH: usize = 8192;

/// Read connections: a slow query (a substring search over a million cases while the case
/// index is rebuilt, a report) does not hold up the others' work lists.
const READ_CONNECTIONS: usize = 4;

/// The read database and what feeds it.
pub struct ReadSide {
    store: Arc<dyn EventStore>,
    /// `None` only while a batch is being applied on a blocking thread.
    projector: tokio::sync::Mutex<Option<Projector>>,
    /// The tree each batch is written with.
    org: OrgSource,
    /// Read connections, each used by one query at a time.
    queries: Vec<Mutex<Queries>>,
    /// Where the next query that finds every connection busy waits.
    next_queries: std::sync::atomic::AtomicUsize,
    /// The checkpoint after the last committed batch.
    applied: watch::Sender<u64>,
    path: PathBuf,
}

/// Progress of a rebuild or catch-up: events applied so far and the store's head.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

impl ReadSide {
    /// Opens (creating if needed) the read database at `path`. A read database ahead of the
    /// store (the store was replaced) is reset. A damaged one (not a database, or corrupt) is
    /// a projection, so it is moved aside (`read.db.damaged-…`, kept for a look) and a new
    /// one is built from the event store as the service follows it.
    ///
    /// # Errors
    /// When the file cannot be opened or created, or a damaged one cannot be moved aside.
    pub fn open(
        path: &Path,
        store: Arc<dyn EventStore>,
        org: impl Into<OrgSource>,
        rules: Arc<SharedRules>,
    ) -> anyhow::Result<Arc<ReadSide>> {
        let org = org.into();
        match Self::open_file(path, store.clone(), org.clone(), rules.clone()) {
            Err(err) if is_damaged(&err) => {
                let aside = crate::datadir::move_aside(path, &["-wal", "-shm"])?;
                tracing::error!(
                    path = %path.display(),
                    moved_to = %aside.display(),
                    error = %format!("{err:#}"),
                    "read database is damaged: moved it aside; rebuilding it from the event store in the background"
                );
                Self::open_file(path, store, org, rules)
            }
            res => res,
        }
    }

    fn open_file(
        path: &Path,
        store: Arc<dyn EventStore>,
        org: OrgSource,
        rules: Arc<SharedRules>,
    ) -> anyhow::Result<Arc<ReadSide>> {
        // The KPI days measure each handling time on the calendar in force when it was
        // completed.
        let mut projector = Projector::open(path, org.tree(), InForce(rules))
            .with_context(|| format!("failed to open read database `{}`", path.display()))?;
        if projector.checkpoint()? > store.head().0 {
            tracing::warn!(path = %path.display(), "read database is ahead of the event store; rebuilding");
            projector.reset()?;
        }
        let checkpoint = projector.checkpoint()?;
        let queries = (0..READ_CONNECTIONS)
            .map(|_| Queries::open(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("failed to open read database `{}`", path.display()))?;
        Ok(Arc::new(ReadSide {
            store,
            projector: tokio::sync::Mutex::new(Some(projector)),
            org,
            queries,
            next_queries: std::sync::atomic::AtomicUsize::new(0),
            applied: watch::Sender::new(checkpoint),
            path: path.to_owned(),
        }))
    }

    /// The read database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last position applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the read models have applied `position` or `timeout` passes; returns
    /// whether they have.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position)).await,
            Ok(Ok(_))
        )
    }

    /// Runs a query on a blocking thread, on a free read connection (or, when all are busy,
    /// waiting for one in turn).
    ///
    /// # Errors
    /// The query's failure, or a panicked query thread.
    pub async fn query<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Queries) -> Result<T, projections::ProjectionError> + Send + 'static,
    ) -> anyhow::Result<T> {
        let side = self.clone();
        tokio::task::spawn_blocking(move || {
            let free = side.queries.iter().find_map(|q| match q.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            });
            let queries = match free {
                Some(guard) => guard,
                None => {
                    let n = side
                        .next_queries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    side.queries[n % side.queries.len()]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                }
            };
            f(&queries)
        })
        .await
        .context("query thread panicked")?
        .context("read database query failed")
    }

    /// Applies everything the store holds now; returns the checkpoint reached.
    ///
    /// # Errors
    /// Store, decode and read-database failures.
    pub async fn catch_up(&self) -> anyhow::Result<u64> {
        self.catch_up_with(&mut |_, _| {}).await
    }

    /// [`ReadSide::catch_up`], reporting progress after every batch.
    ///
    /// # Errors
    /// As [`ReadSide::catch_up`].
    pub async fn catch_up_with(&self, progress: Progress<'_>) -> anyhow::Result<u64> {
        let head = self.store.head().0;
        let after = self.applied();
        if after >= head {
            return Ok(after);
        }
        // Reading and decoding the next batch overlaps with writing the current one.
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<anyhow::Result<(Vec<SourcedEvent>, u64)>>(2);
        let store = self.store.clone();
        let reader = tokio::spawn(async move {
            let mut after = after;
            while after < head {
                let batch = match store.read_all(Position(after), BATCH).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                let Some(last) = batch.last() else { return };
                after = last.position.0;
                let decoded = tokio::task::spawn_blocking(move || sourced(batch.iter()))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r);
                if tx
                    .send(decoded.map(|events| (events, after)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        let res = async {
            while let Some(batch) = rx.recv().await {
                let (events, up_to) = batch?;
                let reached = self.apply_sourced(events, up_to).await?;
                progress(reached, head);
            }
            anyhow::Ok(())
        }
        .await;
        reader.abort();
        res?;
        Ok(self.applied())
    }

    /// Applies `records` (those after the checkpoint), fetching the histories of streams the
    /// projector lacks; returns the new checkpoint.
    async fn apply(&self, records: Vec<RecordedEvent>) -> anyhow::Result<u64> {
        let Some(up_to) = records.last().map(|r| r.position.0) else {
            return Ok(self.applied());
        };
        let checkpoint = self.applied();
        let events = sourced(records.iter().filter(|r| r.position.0 > checkpoint))?;
        self.apply_sourced(events, up_to).await
    }

    /// Writes the next rows with the tree in force; when a unit moved under another parent
    /// since the last batch, the cases with a part below it are scoped anew first.
    async fn adopt_tree(
        &self,
        mut projector: Projector,
    ) -> Result<Projector, (Option<Projector>, anyhow::Error)> {
        let tree = self.org.tree();
        if Arc::ptr_eq(projector.org(), &tree) {
            return Ok(projector);
        }
        let moved = moved_units(projector.org(), &tree);
        if !moved.is_empty() {
            projector = self.rescope(projector, tree.clone(), &moved).await?;
        }
        projector.set_org(tree);
        Ok(projector)
    }

    /// Takes the directory's tree in force now (after a change the App recorded), so a read
    /// that follows the change sees its cases scoped by it.
    ///
    /// # Errors
    /// Store, decode and read-database failures (the next batch tries again).
    pub async fn follow_tree(&self) -> anyhow::Result<()> {
        let mut guard = self.projector.lock().await;
        let projector = guard.take().context("projector lost by a panicked batch")?;
        match self.adopt_tree(projector).await {
            Ok(projector) => {
                *guard = Some(projector);
                Ok(())
            }
            Err((projector, err)) => {
                *guard = projector;
                Err(err)
            }
        }
    }

    /// [`Projector::rescope`] of the cases with a part at `moved`, their histories read
    /// from the store. On failure the projector is given back (or lost, if its thread
    /// panicked) with the error.
    async fn rescope(
        &self,
        projector: Projector,
        tree: Arc<domain::org::OrgTree>,
        moved: &[String],
    ) -> Result<Projector, (Option<Projector>, anyhow::Error)> {
        let streams = match projector.streams_touching(moved) {
            Ok(streams) => streams,
            Err(err) => return Err((Some(projector), err.into())),
        };
        let mut history = HashMap::new();
        for stream in &streams {
            let stored = match self.store.read_stream(stream, 1).await {
                Ok(stored) => stored,
                Err(err) => return Err((Some(projector), err.into())),
            };
            match sourced(stored.iter()) {
                Ok(events) => {
                    history.insert(stream.clone(), events);
                }
                Err(err) => return Err((Some(projector), err)),
            }
        }
        let n = streams.len();
        let done = tokio::task::spawn_blocking(move || {
            let mut projector = projector;
            let res = projector.rescope(tree, &streams, &history);
            (projector, res)
        })
        .await;
        match done {
            Ok((projector, Ok(()))) => {
                tracing::info!(cases = n, "re-scoped the cases of moved units");
                Ok(projector)
            }
            Ok((projector, Err(err))) => Err((Some(projector), err.into())),
            Err(err) => Err((
                None,
                anyhow::Error::from(err).context("re-scope thread panicked"),
            )),
        }
    }

    /// Applies the decoded `events` after the checkpoint and moves it to `up_to`.
    async fn apply_sourced(
        &self,
        mut events: Vec<SourcedEvent>,
        up_to: u64,
    ) -> anyhow::Result<u64> {
        let mut guard = self.projector.lock().await;
        let mut projector = guard.take().context("projector lost by a panicked batch")?;
        let checkpoint = match projector.checkpoint() {
            Ok(c) => c,
            Err(e) => {
                *guard = Some(projector);
                return Err(e.into());
            }
        };
        if up_to <= checkpoint {
            *guard = Some(projector);
            return Ok(checkpoint);
        }
        events.retain(|e| e.position > checkpoint);
        let missing = projector.missing(&events);
        let prepared = async {
            let mut history = HashMap::new();
            for stream in missing {
                let stored = self.store.read_stream(&stream, 1).await?;
                history.insert(stream, sourced(stored.iter())?);
            }
            anyhow::Ok(history)
        }
        .await;
        let history = match prepared {
            Ok(p) => p,
            Err(e) => {
                *guard = Some(projector);
                return Err(e);
            }
        };
        projector = match self.adopt_tree(projector).await {
            Ok(p) => p,
            Err((p, err)) => {
                *guard = p;
                return Err(err);
            }
        };
        let (projector, res) = tokio::task::spawn_blocking(move || {
            let res = projector.apply(&events, &history, up_to);
            (projector, res)
        })
        .await
        .context("projection thread panicked")?;
        *guard = Some(projector);
        let position = res.context("failed to apply events to the read database")?;
        self.applied.send_replace(position);
        Ok(position)
    }

    /// Follows the store from the checkpoint until the task is aborted: catch-up subscription,
    /// many events per transaction. Failures are logged and retried from the checkpoint.
    pub fn spawn_follower(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let side = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match side.follow().await {
                    Ok(()) => return,
                    Err(err) => {
                        tracing::error!(error = %format!("{err:#}"), "read model update failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        })
    }

    #[tracing::instrument(skip_all, name = "projection")]
    async fn follow(&self) -> anyhow::Result<()> {
        let mut subscription = self.store.subscribe(Position(self.applied()));
        loop {
            let batch = subscription.next_batch(BATCH).await?;
            self.apply(batch).await?;
        }
    }
}

/// Decodes the case events among `records`; other streams (identity-view audits) are skipped.
fn sourced<'a>(
    records: impl Iterator<Item = &'a RecordedEvent>,
) -> anyhow::Result<Vec<SourcedEvent>> {
    records
        .filter(|r| StreamName::is_case(&r.stream))
        .map(|r| {
            Ok(SourcedEvent {
                position: r.position.0,
                stream: r.stream.clone(),
                version: r.version,
                event: decode(r)?,
            })
        })
        .collect()
}

/// Every case's final state, replayed from the whole store.
pub struct Folded {
    /// Records read (case events and the others).
    pub events: u64,
    /// The position of the last record read: the checkpoint of a read model built from this.
    pub head: u64,
    /// Each case with the position of its last event.
    pub cases: Vec<(domain::Case, u64)>,
}

/// Replays the whole store into case states, with the reading pipelined against decoding and
/// evolving, which are split by stream over `workers` threads (a case's events stay in order on
/// one thread). `progress(read, head)` is called after every batch read.
///
/// # Errors
/// Store and decode failures.
pub async fn fold_cases(
    store: Arc<dyn EventStore>,
    workers: usize,
    progress: Progress<'_>,
) -> anyhow::Result<Folded> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    type States = HashMap<String, (domain::Case, u64)>;
    let n_workers = workers.max(1);
    let target = store.head().0;
    let mut senders = Vec::with_capacity(n_workers);
    let mut threads = Vec::with_capacity(n_workers);
    for _ in 0..n_workers {
        // A small bound keeps memory flat while letting the reader run ahead a little.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<RecordedEvent>>(4);
        senders.push(tx);
        threads.push(std::thread::spawn(move || -> anyhow::Result<States> {
            let mut cases = States::new();
            for batch in rx {
                for rec in batch {
                    let event = decode(&rec)?;
                    match cases.get_mut(&rec.stream) {
                        Some((case, position)) => {
                            *case = domain::evolve(std::mem::take(case), &event);
                            *position = rec.position.0;
                        }
                        None => {
                            let case = domain::evolve(domain::Case::default(), &event);
                            cases.insert(rec.stream, (case, rec.position.0));
                        }
                    }
                }
            }
            Ok(cases)
        }));
    }
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    let mut after = Position(0);
    let mut n_events = 0u64;
    let read = async {
        loop {
            let batch = store.read_all(after, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.position;
            n_events += batch.len() as u64;
            let mut shares: Vec<Vec<RecordedEvent>> = (0..n_workers)
                .map(|_| Vec::with_capacity(batch.len() / n_workers + 1))
                .collect();
            for rec in batch {
                if StreamName::is_case(&rec.stream) {
                    let k = hasher.hash_one(&rec.stream) as usize % n_workers;
                    shares[k].push(rec);
                }
            }
            for (tx, share) in senders.iter().zip(shares) {
                // A worker that stopped failed: its error is reported below.
                if tx.send(share).is_err() {
                    return anyhow::Ok(());
                }
            }
            progress(after.0, target.max(after.0));
        }
        anyhow::Ok(())
    }
    .await;
    drop(senders);
    let mut cases = Vec::new();
    for thread in threads {
        let states = tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("a replay worker panicked"))??;
        cases.extend(states.into_values());
    }
    read?;
    Ok(Folded {
        events: n_events,
        head: after.0,
        cases,
    })
}

/// `minqing rebuild`: replays the store and writes a new read database beside the old one
/// (`read.db.rebuild`), then moves it into place; progress goes to stderr. A crash leaves
/// the old database or none (the service then rebuilds it as it follows the store), never a
/// half-written one. Returns (the checkpoint reached, seconds).
///
/// # Errors
/// IO, store, decode and read-database failures.
pub async fn rebuild(data_dir: &Path) -> anyhow::Result<(u64, f64)> {
    let store_path = data_dir.join("events.db");
    let store = crate::store::sqlite::SqliteStore::open(&store_path)
        .with_context(|| format!("failed to open event store `{}`", store_path.display()))?;
    let store: Arc<dyn EventStore> = Arc::new(store);
    let org = crate::directory_log::recorded_tree(&*store).await?;
    // Handling times on the calendar in force when each was completed, as live.
    let calendars = InForce(Arc::new(Shared::new(
        crate::rules_log::load(&*store).await?,
    )));
    let path = data_dir.join("read.db");
    let fresh = data_dir.join("read.db.rebuild");
    remove_if_present(&fresh)?;
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut report = |done: u64, head: u64| {
        if last_print.elapsed() >= Duration::from_secs(1) || done >= head {
            last_print = Instant::now();
            let pct = if head == 0 {
                100.0
            } else {
                done as f64 * 100.0 / head as f64
            };
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
            eprintln!("重建读模型：回放 {done}/{head} ({pct:5.1}%)  {rate:.0} 事件/秒");
        }
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let folded = fold_cases(store, workers, &mut report).await?;
    let replayed = started.elapsed();
    eprintln!(
        "重建读模型：{} 个事件、{} 件工单，回放用时 {:.2} 秒；写入读库…",
        folded.events,
        folded.cases.len(),
        replayed.as_secs_f64()
    );
    let head = folded.head;
    let target = fresh.clone();
    tokio::task::spawn_blocking(move || {
        let mut last_print = Instant::now();
        projections::write_fresh(
            &target,
            &org,
            &calendars,
            folded.cases,
            head,
            &mut |done, total| {
                if last_print.elapsed() >= Duration::from_secs(1) || done >= total {
                    last_print = Instant::now();
                    eprintln!("重建读模型：写入 {done}/{total} 件工单");
                }
            },
        )
    })
    .await
    .context("read database writer panicked")?
    .with_context(|| format!("failed to write `{}`", fresh.display()))?;
    // The old file's write-ahead log must go with it, or SQLite would apply it to the new one.
    for old in [
        path.clone(),
        wal_path(&path, "-wal"),
        wal_path(&path, "-shm"),
    ] {
        remove_if_present(&old)?;
    }
    std::fs::rename(&fresh, &path)
        .with_context(|| format!("failed to move `{}` into place", fresh.display()))?;
    std::fs::File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("failed to sync `{}`", data_dir.display()))?;
    eprintln!(
        "重建读模型：完成，位置 {head}，共 {:.2} 秒（写入 {:.2} 秒）",
        started.elapsed().as_secs_f64(),
        (started.elapsed() - replayed).as_secs_f64()
    );
    Ok((head, started.elapsed().as_secs_f64()))
}

/// Whether opening the read database failed because its file is damaged (not a database, or
/// corrupt), rather than for want of access or space.
fn is_damaged(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let sqlite = match cause.downcast_ref::<projections::ProjectionError>() {
            Some(projections::ProjectionError::Sqlite(e)) => Some(e),
            _ => cause.downcast_ref::<rusqlite::Error>(),
        };
        matches!(
            sqlite.and_then(rusqlite::Error::sqlite_error_code),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        )
    })
}

/// `read.db` + `suffix` (`read.db-wal`).
fn wal_path(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

/// The units whose place in the tree differs between `old` and `new` (moved under another
/// parent, or below one that was), by id.
fn moved_units(old: &domain::org::OrgTree, new: &domain::org::OrgTree) -> Vec<String> {
    let parent_changed: HashSet<&domain::org::UnitId> = new
        .units()
        .iter()
        .filter(|u| {
            old.get(&u.id)
                .is_some_and(|before| before.parent_id != u.parent_id)
        })
        .map(|u| &u.id)
        .collect();
    if parent_changed.is_empty() {
        return Vec::new();
    }
    new.units()
        .iter()
        .filter(|u| {
            parent_changed.contains(&u.id)
                || new
                    .ancestors(&u.id)
                    .iter()
                    .any(|a| parent_changed.contains(&a.id))
        })
        .map(|u| u.id.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use domain::kinds::{Category, Channel, Kind, Urgency};
    use domain::org::UnitId;
    use domain::roles::{Actor, Role};
    use domain::{Case, CaseId, Command, Context, Intake, Status};
    use projections::query::IdentityRule;
    use projections::{CaseFilter, Scope};
    use tempfile::TempDir;

    use super::*;

    fn base_rules() -> Arc<SharedRules> {
        Arc::new(crate::rules_log::shared_base().expect("rules"))
    }
    use crate::app::codec::encode;
    use crate::store::ExpectedVersion;
    use crate::store::sqlite::SqliteStore;

    fn actor(username: &str, unit: &str, role: Role) -> Actor {
        Actor {
            username: username.into(),
            unit_id: UnitId::new(unit),
            roles: vec![role],
            oversees: Vec::new(),
        }
    }

    /// Decides `cmd` on the stored case and appends the events.
    async fn run(store: &SqliteStore, case: &mut Case, who: &Actor, cmd: Command) -> u64 {
        let org = crate::directory::load_org().expect("org");
        let calendar = crate::server::load_calendar().expect("calendar");
        let policy = crate::server::load_policy().expect("policy");
        let now = chrono::Utc
            .with_ymd_and_hms(2025, 3, 3, 2, 0, 0)
            .single()
            .expect("time");
        let ctx = Context {
            now,
            actor: who,
            org: &org,
            calendar: &calendar,
            policy: &policy,
        };
        let events = domain::decide(case, &cmd, &ctx).expect("decided");
        let new = events
            .iter()
            .map(|e| encode(e, uuid::Uuid::new_v4(), None))
            .collect();
        let res = store
            .append("case-C1", ExpectedVersion::Exact(case.version()), new)
            .await
            .expect("appended");
        for e in &events {
            *case = domain::evolve(std::mem::take(case), e);
        }
        res.position.0
    }

    fn everything() -> CaseFilter {
        CaseFilter {
            page: 1,
            per_page: 10,
            ..CaseFilter::default()
        }
    }

    async fn status(side: &Arc<ReadSide>) -> Vec<Status> {
        let admin = actor("admin", "city", Role::Admin);
        let org = crate::directory::load_org().expect("org");
        let (scope, identity) = (Scope::of(&admin, &org), IdentityRule::of(&admin, &org));
        let page = side
            .query(move |q| q.cases(&everything(), &scope, &identity, chrono::Utc::now()))
            .await
            .expect("query");
        page.items.iter().map(|c| c.status).collect()
    }

    #[tokio::test]
    async fn catch_up_applies_the_store_and_a_reopened_read_side_resumes_from_its_checkpoint() {
        let dir = TempDir::new().expect("dir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("events.db")).expect("store"));
        let org = crate::directory::load_org().expect("org");
        let operator = actor("operator", "city", Role::Operator);
        let dispatcher = actor("dispatcher", "city", Role::Dispatcher);
        let housing = actor("housing_handler", "city.bureau.housing", Role::Handler);
        let mut case = Case::default();
        let intake = Intake {
            caller_name: "张三".into(),
            caller_phone: "13812345678".into(),
            channel: Some(Channel::Phone),
            category: Some(Category::Complaint),
            kind: Some(Kind::Escalated),
            urgency: Some(Urgency::Normal),
            title: "噪音".into(),
            content: "夜间施工".into(),
            address: "某小区".into(),
            location_unit_id: Some(UnitId::new("d.chengguan.s01")),
            confidential: false,
        };
        let create = Command::Create {
            case_id: CaseId::parse("C1").expect("id"),
            intake,
            submit: true,
        };
        run(&store, &mut case, &operator, create).await;
        let transfer = Command::Transfer {
            lead_unit_id: UnitId::new("city.bureau.housing"),
            co_unit_ids: Vec::new(),
            note: String::new(),
        };
        let first = run(&store, &mut case, &dispatcher, transfer).await;
        let path = dir.path().join("read.db");
        let dyn_store: Arc<dyn EventStore> = store.clone();
        {
            let side =
                ReadSide::open(&path, dyn_store.clone(), org.clone(), base_rules()).expect("open");
            assert_eq!(side.catch_up().await.expect("catch up"), first);
            assert!(side.wait_for(first, Duration::ZERO).await);
            assert!(!side.wait_for(first + 1, Duration::from_millis(10)).await);
            assert_eq!(status(&side).await, [Status::Transferred]);
        }
        let second = run(&store, &mut case, &housing, Command::Receive).await;
        // A new read side knows nothing of the case but its checkpoint: the stream's history
        // comes from the store.
        let side = ReadSide::open(&path, dyn_store, org, base_rules()).expect("reopen");
        assert_eq!(side.applied(), first);
        let follower = side.spawn_follower();
        assert!(side.wait_for(second, Duration::from_secs(5)).await);
        assert_eq!(status(&side).await, [Status::InProgress]);
        follower.abort();
    }
}

#[cfg(test)]
mod pool_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::ReadSide;
    use crate::store::EventStore;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_query_does_not_hold_up_the_others() {
        let dir = tempfile::tempdir().expect("dir");
        let store: Arc<dyn EventStore> =
            Arc::new(SqliteStore::open(&dir.path().join("events.db")).expect("store"));
        let org = crate::directory::load_org().expect("org");
        let read = ReadSide::open(
            &dir.path().join("read.db"),
            store,
            org,
            Arc::new(crate::rules_log::shared_base().expect("rules")),
        )
        .expect("read side");
        // Three queries hold their connections until released.
        let (release, held) = tokio::sync::watch::channel(false);
        let mut slow = Vec::new();
        for _ in 0..3 {
            let mut held = held.clone();
            slow.push(tokio::spawn({
                let read = read.clone();
                async move {
                    read.query(move |q| {
                        let _ = q.checkpoint()?;
                        // A blocking thread: wait as a long query would.
                        let _ = tokio::runtime::Handle::current().block_on(held.wait_for(|go| *go));
                        Ok(())
                    })
                    .await
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let quick =
            tokio::time::timeout(Duration::from_secs(5), read.query(|q| q.checkpoint())).await;
        release.send_replace(true);
        for task in slow {
            task.await.expect("task").expect("slow query");
        }
        assert_eq!(
            quick
                .expect("a free connection answers while three are busy")
                .expect("query"),
            0
        );
    }
}
