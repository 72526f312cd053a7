//! `minqing migrate --from DATA_DIR --to postgres://…`: moves a deployment's event log from a
//! data directory's embedded store (`events.db`) into a PostgreSQL store (issue 13).
//!
//! Every event keeps its stream, version, id, type, schema version, payload, metadata and
//! recorded time; its position is the target's own, in the same order. The copy is written in
//! source order, in transactions of at most `--batch-events` events, one after the other, so an
//! interrupted run (`kill -9`, a lost connection) has stored a prefix of the log. A rerun finds
//! that prefix from the target's stream versions ([`ResumeScan`]) and carries on after it. At
//! the end both logs are read again and compared ([`LogDigest`]): the number of events and a
//! SHA-256 digest of each stream.
//!
//! # Layout
//! - [`MigrateArgs`], [`run`]: the command line; a build without the `postgres` feature has
//!   the command, which only says that it cannot run.
//! - [`ResumeScan`] (feature `postgres`, as the rest): which prefix of the source the target
//!   holds, or why it holds something else.
//! - [`LogDigest`]: the event count and per-stream digests of a log.
//! - `copy`: source pages into import transactions, with the progress shown on stderr.
//!
//! # Invariants
//! - The data directory's lock is held from start to end: no service writes the source.
//! - A target that holds anything but a prefix of this source's log is refused before
//!   anything is written to it.
//! - No event is copied twice: the copy starts after the prefix found, and each append's
//!   expected version (and the unique event ids) refuses anything already stored.

use std::path::PathBuf;

/// Options of `minqing migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Data directory whose event store (`events.db`) is copied; its service must be stopped.
    #[arg(long)]
    from: PathBuf,
    /// The PostgreSQL store to copy into (`postgres://user:password@host:port/database`, with
    /// `?options=-csearch_path%3DSCHEMA` for a schema of its own): the URL `serve --store`
    /// will be given. Never logged.
    #[arg(
        long,
        env = "MINQING_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    to: String,
    /// Events written per transaction (1 to 4096).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4096,
        value_parser = clap::value_parser!(u64).range(1..=4096)
    )]
    batch_events: u64,
}

/// `minqing migrate`: copies the event log of `--from` into the PostgreSQL store `--to`,
/// resuming an interrupted copy, then verifies both logs agree.
///
/// # Errors
/// Always, in a build without the `postgres` feature.
#[cfg(not(feature = "postgres"))]
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!(
        "`minqing migrate`: this build has no PostgreSQL backend (build it with \
         `cargo build --release --features postgres`)"
    )
}

#[cfg(feature = "postgres")]
pub use with_postgres::{Foreign, LogDigest, Migrated, Mismatch, Resume, ResumeScan, migrate, run};

#[cfg(feature = "postgres")]
mod with_postgres {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use anyhow::{Context as _, bail};
    use sha2::{Digest as _, Sha256};

    use super::MigrateArgs;
    use crate::config::StoreLocation;
    use crate::store::postgres::{MAX_EVENTS_PER_TRANSACTION, PostgresStore};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{
        EventStore, ExpectedVersion, ImportAppend, NewEvent, Position, RecordedEvent, StoreError,
    };

    /// Events read from a store at a time (the verification's pages).
    const PAGE: usize = 4096;

    /// How long a run waits for another run's lease on the target (the connection of one
    /// just killed may take a moment to be closed by the server).
    const LEASE_PATIENCE: Duration = Duration::from_secs(5);

    /// The lease a run holds on the target, so two runs never copy into it at once.
    const LEASE: &str = "migrate";

    /// `minqing migrate`: copies the event log of `--from` into the PostgreSQL store `--to`,
    /// resuming an interrupted copy, then verifies both logs agree. The summary goes to
    /// stdout, progress to stderr.
    ///
    /// # Errors
    /// A data directory without a store or owned by a running service, a target that is no
    /// PostgreSQL URL or cannot be reached, and the failures of [`migrate`].
    pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
        let Ok(StoreLocation::Postgres(url)) = StoreLocation::parse(&args.to) else {
            // Never the value: it may hold a password.
            bail!("`--to` must be a `postgres://` URL (the embedded store is the source)");
        };
        let data = &args.from;
        let events_file = data.join(crate::backup::EVENTS_FILE);
        if !events_file.is_file() {
            bail!(
                "data directory `{}` has no event store `{}`",
                data.display(),
                crate::backup::EVENTS_FILE
            );
        }
        // Offline, as `rebuild` and `import`: a running service would keep writing the log.
        let _lock = crate::datadir::DataDirLock::acquire(data, "migrate")?;
        let (total, _, _) = crate::backup::summary(&events_file)?;
        let source =
            Arc::new(SqliteStore::open(&events_file).with_context(|| {
                format!("failed to open event store `{}`", events_file.display())
            })?);
        let target = PostgresStore::open(&url)
            .await
            .context("failed to open the PostgreSQL event store")?;
        let batch_events = usize::try_from(args.batch_events).unwrap_or(MAX_EVENTS_PER_TRANSACTION);
        let done = migrate(source.clone(), &target, total, batch_events).await?;
        let verified = format!(
            "verified: {} events, and the SHA-256 of each of the {} streams, agree",
            done.digest.events,
            done.digest.streams.len()
        );
        if done.copied == 0 {
            println!(
                "the target {} already holds all {} events of `{}`; nothing copied; {verified}",
                target.place(),
                done.digest.events,
                data.display()
            );
        } else {
            println!(
                "migrated {} events of `{}` to {} in {:.1} s = {:.0} events/s{}; {verified}",
                done.copied,
                data.display(),
                target.place(),
                done.secs,
                done.copied as f64 / done.secs.max(1e-9),
                if done.already > 0 {
                    format!(" (resumed after the {} already there)", done.already)
                } else {
                    String::new()
                }
            );
        }
        source.close();
        Ok(())
    }

    /// What [`migrate`] did.
    #[derive(Debug)]
    pub struct Migrated {
        /// Events the target held already (a prefix of the source's).
        pub already: u64,
        /// Events this run copied.
        pub copied: u64,
        /// Seconds the copy took (without the checks before and the verification after).
        pub secs: f64,
        /// The log both stores hold.
        pub digest: LogDigest,
    }

    /// Copies `source`'s log into `target` after the prefix the target already holds, in
    /// transactions of `batch_events` (at most [`MAX_EVENTS_PER_TRANSACTION`]), showing the
    /// progress against `total` (the source's events) on stderr, then reads both logs back
    /// and compares them.
    ///
    /// # Errors
    /// Another run holding the target's lease, a target holding events not from this source
    /// ([`Foreign`], or a last event that differs), a failed read or write, and a
    /// verification that finds the logs differ ([`Mismatch`], naming a stream).
    pub async fn migrate(
        source: Arc<SqliteStore>,
        target: &PostgresStore,
        total: u64,
        batch_events: usize,
    ) -> anyhow::Result<Migrated> {
        let place = target.place().to_owned();
        let _lease = take_lease(target, &place).await?;
        let resume = find_resume(&*source, target)
            .await
            .with_context(|| format!("the target {place} cannot take this data directory"))?;
        let started = Instant::now();
        let copied = if resume.copied >= total {
            0
        } else {
            if resume.copied > 0 {
                eprintln!(
                    "migrate: the target already holds the first {} of {total} events; \
                     resuming after them",
                    resume.copied
                );
            }
            let batch_events = batch_events.clamp(1, MAX_EVENTS_PER_TRANSACTION);
            copy(
                source.clone(),
                target,
                &resume,
                total,
                batch_events,
                started,
            )
            .await?
        };
        let secs = started.elapsed().as_secs_f64();
        let (from_source, from_target) =
            tokio::try_join!(LogDigest::read(&*source), LogDigest::read(target))
                .context("failed to read the logs back to verify them")?;
        from_source
            .compare(&from_target)
            .with_context(|| format!("verification of {place} failed"))?;
        Ok(Migrated {
            already: resume.copied,
            copied,
            secs,
            digest: from_target,
        })
    }

    async fn take_lease(
        target: &PostgresStore,
        place: &str,
    ) -> anyhow::Result<crate::store::Lease> {
        let deadline = Instant::now() + LEASE_PATIENCE;
        loop {
            if let Some(lease) = target
                .try_lease(LEASE)
                .await
                .context("failed to take the migration's lease on the target")?
            {
                return Ok(lease);
            }
            if Instant::now() >= deadline {
                bail!("another `minqing migrate` is copying into {place}; wait for it to end");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where a copy starts: after the prefix of the source the target already holds.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Resume {
        /// The source position of the last event the target holds (`START` for none).
        pub after: Position,
        /// Events the target holds, all of them the source's first.
        pub copied: u64,
        /// The last of them, to check it is the target's own.
        pub last: Option<RecordedEvent>,
    }

    /// The target holds events that are not a prefix of the source's log.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error(
        "the target holds events not from this data directory (stream `{stream}`: {in_target} \
         events there, {in_prefix} in the source's first {prefix_events}); copy into an empty \
         database or schema"
    )]
    pub struct Foreign {
        /// The first stream (by name) found to differ.
        pub stream: String,
        /// Its version in the target.
        pub in_target: u64,
        /// Its version in the source's prefix.
        pub in_prefix: u64,
        /// Events in the prefix.
        pub prefix_events: u64,
    }

    /// Which prefix of the source log the target holds, found from the target's stream
    /// versions while the source is fed in global order.
    ///
    /// A run copies in source order and commits one transaction after the other, so what it
    /// stored is a prefix of the source. The prefix ends before the first source event that
    /// the target's version of its stream does not cover. It is the target's whole content
    /// exactly when the target's versions add up to the prefix's length: every version counted
    /// is then one of the prefix's (each stream's prefix events are its first versions, never
    /// more than the target has), so each stream of the target is at its prefix version.
    #[derive(Debug)]
    pub struct ResumeScan {
        /// Per stream of the target: its version there, and its version in the prefix.
        versions: HashMap<String, (u64, u64)>,
        /// The sum of the target's versions: the events it holds.
        target_events: u64,
        /// Events of the prefix fed so far.
        prefix_events: u64,
        last: Option<RecordedEvent>,
        ended: bool,
    }

    impl ResumeScan {
        /// A scan against the target's streams and versions.
        pub fn new(target: impl IntoIterator<Item = (String, u64)>) -> Self {
            let versions: HashMap<String, (u64, u64)> = target
                .into_iter()
                .filter(|(_, version)| *version > 0)
                .map(|(stream, version)| (stream, (version, 0)))
                .collect();
            let target_events = versions.values().map(|(version, _)| version).sum();
            ResumeScan {
                versions,
                target_events,
                prefix_events: 0,
                last: None,
                ended: false,
            }
        }

        /// Feeds the next source events, in global order; returns whether more may belong
        /// to the prefix (`false`: the rest of the source need not be fed).
        pub fn feed(&mut self, events: &[RecordedEvent]) -> bool {
            if self.ended {
                return false;
            }
            let mut last_in = None;
            for (i, event) in events.iter().enumerate() {
                match self.versions.get_mut(&event.stream) {
                    Some((in_target, in_prefix)) if event.version <= *in_target => {
                        *in_prefix = event.version;
                        self.prefix_events += 1;
                        last_in = Some(i);
                    }
                    _ => {
                        self.ended = true;
                        break;
                    }
                }
            }
            if let Some(i) = last_in {
                self.last = Some(events[i].clone());
            }
            // Nothing can follow once the prefix has every event the target holds.
            if self.prefix_events == self.target_events {
                self.ended = true;
            }
            !self.ended
        }

        /// Where to resume, once the source has been fed (to its end or until `feed` said
        /// the prefix ended).
        ///
        /// # Errors
        /// [`Foreign`] when the target holds anything but the prefix.
        pub fn finish(self) -> Result<Resume, Foreign> {
            if self.prefix_events == self.target_events {
                return Ok(Resume {
                    after: self.last.as_ref().map_or(Position::START, |e| e.position),
                    copied: self.prefix_events,
                    last: self.last,
                });
            }
            let (stream, (in_target, in_prefix)) = self
                .versions
                .iter()
                .filter(|(_, (in_target, in_prefix))| in_target != in_prefix)
                .min_by(|a, b| a.0.cmp(b.0))
                .map(|(stream, versions)| (stream.clone(), *versions))
                .unwrap_or_default();
            Err(Foreign {
                stream,
                in_target,
                in_prefix,
                prefix_events: self.prefix_events,
            })
        }
    }

    /// Finds the prefix of `source` that `target` holds, and checks the target's copy of its
    /// last event is that event.
    async fn find_resume(
        source: &dyn EventStore,
        target: &dyn EventStore,
    ) -> anyhow::Result<Resume> {
        // The stream table, not `read_all`: it is read without waiting for the target's
        // horizon (another transaction on the server may hold it back).
        let versions = target
            .streams_with_prefix("")
            .await
            .context("failed to read the target's streams")?;
        if versions.is_empty() {
            return Ok(Resume {
                after: Position::START,
                copied: 0,
                last: None,
            });
        }
        let mut scan = ResumeScan::new(versions);
        let mut after = Position::START;
        loop {
            let page = source
                .read_all(after, PAGE)
                .await
                .context("failed to read the source")?;
            let Some(last) = page.last() else { break };
            after = last.position;
            if !scan.feed(&page) {
                break;
            }
        }
        let resume = scan.finish()?;
        if let Some(last) = &resume.last {
            let held = target
                .read_stream(&last.stream, last.version)
                .await
                .context("failed to read the target")?;
            match held.first() {
                Some(copy) if same_event(copy, last) => {}
                _ => bail!(
                    "the target holds events not from this data directory: its event {} of \
                     stream `{}` is not the source's (event id {}); copy into an empty \
                     database or schema",
                    last.version,
                    last.stream,
                    last.event_id
                ),
            }
        }
        Ok(resume)
    }

    /// Whether two stored events are the same but for their positions.
    fn same_event(a: &RecordedEvent, b: &RecordedEvent) -> bool {
        a.stream == b.stream
            && a.version == b.version
            && a.event_id == b.event_id
            && a.event_type == b.event_type
            && a.schema_version == b.schema_version
            && a.data == b.data
            && a.metadata == b.metadata
            && a.recorded_at == b.recorded_at
    }

    /// The source's events after `resume`, into `target`, in transactions of `batch_events`;
    /// returns the number copied.
    async fn copy(
        source: Arc<SqliteStore>,
        target: &PostgresStore,
        resume: &Resume,
        total: u64,
        batch_events: usize,
        started: Instant,
    ) -> anyhow::Result<u64> {
        // The next page is read (and grouped) while the last one is written.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ImportAppend>>(2);
        let after = resume.after;
        let reader = tokio::spawn(async move {
            let mut after = after;
            loop {
                let page = source.read_all(after, batch_events).await?;
                let Some(last) = page.last() else { break };
                after = last.position;
                if tx.send(appends_of(page, batch_events)).await.is_err() {
                    // The writer stopped; it reports why.
                    break;
                }
            }
            Ok::<(), StoreError>(())
        });
        let mut copied = 0u64;
        let mut last_print = Instant::now();
        while let Some(appends) = rx.recv().await {
            let n: usize = appends.iter().map(|append| append.events.len()).sum();
            target.import(appends).await.map_err(|err| match err {
                StoreError::Conflict { .. } | StoreError::IdMismatch { .. } => {
                    anyhow::Error::new(err).context(
                        "the target changed while copying (is a service or another tool \
                         writing to it?); rerun to resume",
                    )
                }
                err => anyhow::Error::new(err)
                    .context("failed to write to the target; rerun to resume"),
            })?;
            copied += n as u64;
            if last_print.elapsed() >= Duration::from_secs(1) {
                last_print = Instant::now();
                let done = resume.copied + copied;
                eprintln!(
                    "migrate: {done}/{total} events ({:.1}%), {:.0} events/s",
                    done as f64 * 100.0 / total.max(1) as f64,
                    copied as f64 / started.elapsed().as_secs_f64().max(1e-9)
                );
            }
        }
        reader
            .await
            .context("the source's reader panicked")?
            .context("failed to read the source")?;
        Ok(copied)
    }

    /// A page of source events (in global order) as appends: consecutive events of one
    /// stream recorded at one time were one append, and stay one (split at `max` events).
    pub(super) fn appends_of(events: Vec<RecordedEvent>, max: usize) -> Vec<ImportAppend> {
        let mut appends: Vec<ImportAppend> = Vec::new();
        for event in events {
            let new = NewEvent {
                event_id: event.event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                data: event.data,
                metadata: event.metadata,
            };
            match appends.last_mut() {
                Some(last)
                    if last.stream == event.stream
                        && last.recorded_at == event.recorded_at
                        && last.events.len() < max =>
                {
                    last.events.push(new);
                }
                _ => appends.push(ImportAppend {
                    stream: event.stream,
                    expected: ExpectedVersion::Exact(event.version - 1),
                    events: vec![new],
                    recorded_at: event.recorded_at,
                }),
            }
        }
        appends
    }

    /// A log's event count and, per stream, its number of events and the SHA-256 of its
    /// events in version order: for each, its id (16 bytes), version (u64), type, schema
    /// version (u32), payload, metadata (each text as its length, u64, and its UTF-8 bytes)
    /// and recorded time (microseconds since the Unix epoch, i64), integers little-endian.
    /// Positions are left out: the target gives its own.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LogDigest {
        /// Events in the log.
        pub events: u64,
        /// Per stream: its events and their digest.
        pub streams: BTreeMap<String, (u64, [u8; 32])>,
    }

    /// How two logs differ.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum Mismatch {
        /// Not the same number of events.
        #[error("the source holds {in_source} events, the target {in_target}")]
        Count {
            /// Events in the source.
            in_source: u64,
            /// Events in the target.
            in_target: u64,
        },
        /// A stream differs (missing, extra, or other events).
        #[error(
            "stream `{stream}` differs: {in_source} events in the source, {in_target} in the \
             target{}; {n_streams} streams differ in all",
            if in_source == in_target { ", with other content" } else { "" }
        )]
        Stream {
            /// The first stream (by name) that differs.
            stream: String,
            /// Its events in the source.
            in_source: u64,
            /// Its events in the target.
            in_target: u64,
            /// How many streams differ.
            n_streams: usize,
        },
    }

    impl LogDigest {
        /// Reads `store`'s whole log in global order.
        ///
        /// # Errors
        /// [`StoreError`]s of the reads.
        pub async fn read(store: &dyn EventStore) -> Result<Self, StoreError> {
            let mut events = 0u64;
            let mut hashers: BTreeMap<String, (u64, Sha256)> = BTreeMap::new();
            let mut after = Position::START;
            loop {
                let page = store.read_all(after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.position;
                for event in &page {
                    events += 1;
                    if !hashers.contains_key(&event.stream) {
                        hashers.insert(event.stream.clone(), (0, Sha256::new()));
                    }
                    if let Some((n, hasher)) = hashers.get_mut(&event.stream) {
                        *n += 1;
                        digest_event(hasher, event);
                    }
                }
            }
            Ok(LogDigest {
                events,
                streams: hashers
                    .into_iter()
                    .map(|(stream, (n, hasher))| (stream, (n, hasher.finalize().into())))
                    .collect(),
            })
        }

        /// Checks `target` holds the same log.
        ///
        /// # Errors
        /// The first [`Mismatch`] found: a stream before the count, since it says more.
        pub fn compare(&self, target: &LogDigest) -> Result<(), Mismatch> {
            let mut differing = self
                .streams
                .iter()
                .filter(|(stream, digest)| target.streams.get(*stream) != Some(digest))
                .map(|(stream, _)| stream)
                .chain(
                    target
                        .streams
                        .keys()
                        .filter(|stream| !self.streams.contains_key(*stream)),
                )
                .collect::<Vec<_>>();
            differing.sort();
            if let Some(stream) = differing.first() {
                let n_of = |log: &LogDigest| log.streams.get(*stream).map_or(0, |(n, _)| *n);
                return Err(Mismatch::Stream {
                    stream: (*stream).clone(),
                    in_source: n_of(self),
                    in_target: n_of(target),
                    n_streams: differing.len(),
                });
            }
            if self.events != target.events {
                return Err(Mismatch::Count {
                    in_source: self.events,
                    in_target: target.events,
                });
            }
            Ok(())
        }
    }

    fn digest_event(hasher: &mut Sha256, event: &RecordedEvent) {
        let text = |hasher: &mut Sha256, text: &str| {
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        };
        hasher.update(event.event_id.as_bytes());
        hasher.update(event.version.to_le_bytes());
        text(hasher, &event.event_type);
        hasher.update(event.schema_version.to_le_bytes());
        text(hasher, &event.data);
        text(hasher, &event.metadata);
        hasher.update(event.recorded_at.timestamp_micros().to_le_bytes());
    }

    #[cfg(test)]
    mod tests {
        use chrono::{DateTime, TimeDelta, Utc};
        use uuid::Uuid;

        use super::*;
        use crate::store::postgres::tests::fresh_schema;

        /// Who appends how many events, in order: streams interleaved, some appends of
        /// several events, as a real log is.
        const APPENDS: &[(&str, usize)] = &[
            ("directory", 3),
            ("case-1", 1),
            ("case-2", 2),
            ("case-1", 1),
            ("kb-1", 1),
            ("case-3", 3),
            ("case-2", 1),
            ("case-1", 2),
            ("directory", 1),
            ("case-4", 1),
            ("case-3", 1),
            ("case-2", 2),
            ("case-4", 2),
            ("case-1", 1),
            ("kb-1", 1),
        ];

        fn t0() -> DateTime<Utc> {
            // Microseconds that are not whole milliseconds: they must survive the copy.
            DateTime::from_timestamp_micros(1_735_689_600_123_457).expect("a time")
        }

        /// The log of [`APPENDS`] as imports, each append recorded at its own time.
        fn appends() -> Vec<ImportAppend> {
            let mut versions: HashMap<&str, u64> = HashMap::new();
            APPENDS
                .iter()
                .enumerate()
                .map(|(i, (stream, n))| {
                    let version = versions.entry(stream).or_default();
                    let expected = ExpectedVersion::Exact(*version);
                    *version += *n as u64;
                    ImportAppend {
                        stream: (*stream).to_owned(),
                        expected,
                        events: (0..*n)
                            .map(|j| NewEvent {
                                event_id: Uuid::new_v4(),
                                event_type: format!("Noted{j}"),
                                schema_version: 1 + (i % 2) as u32,
                                data: format!(r#"{{"n":{i},"text":"第{j}条 ü"}}"#),
                                metadata: format!(r#"{{"actor":"user-{i}"}}"#),
                            })
                            .collect(),
                        recorded_at: t0() + TimeDelta::microseconds(1_001 * i as i64),
                    }
                })
                .collect()
        }

        /// A data directory's store holding [`APPENDS`], and its events in global order.
        async fn source() -> (Arc<SqliteStore>, Vec<RecordedEvent>, tempfile::TempDir) {
            let dir = tempfile::tempdir().expect("dir");
            let store = SqliteStore::open(&dir.path().join("events.db")).expect("store");
            store.import(appends()).await.expect("import");
            let events = store
                .read_all(Position::START, usize::MAX)
                .await
                .expect("read");
            (Arc::new(store), events, dir)
        }

        /// The log as [`source`] stores it, without a store: positions 3, 6, 9, … (a log's
        /// positions need not be dense).
        fn log() -> Vec<RecordedEvent> {
            let mut position = 0;
            appends()
                .into_iter()
                .flat_map(|append| {
                    let ExpectedVersion::Exact(before) = append.expected else {
                        unreachable!("every append has an exact expectation")
                    };
                    let (stream, recorded_at) = (append.stream, append.recorded_at);
                    append
                        .events
                        .into_iter()
                        .enumerate()
                        .map(move |(i, event)| {
                            (stream.clone(), before + 1 + i as u64, recorded_at, event)
                        })
                })
                .map(|(stream, version, recorded_at, event)| {
                    position += 3;
                    RecordedEvent {
                        position: Position(position),
                        stream,
                        version,
                        event_id: event.event_id,
                        event_type: event.event_type,
                        schema_version: event.schema_version,
                        data: event.data,
                        metadata: event.metadata,
                        recorded_at,
                    }
                })
                .collect()
        }

        /// The stream versions of a store holding the first `n` events of `log`.
        fn versions_of(log: &[RecordedEvent], n: usize) -> Vec<(String, u64)> {
            let mut versions: BTreeMap<String, u64> = BTreeMap::new();
            for event in &log[..n] {
                versions.insert(event.stream.clone(), event.version);
            }
            versions.into_iter().collect()
        }

        fn scan(target: Vec<(String, u64)>, log: &[RecordedEvent]) -> Result<Resume, Foreign> {
            let mut scan = ResumeScan::new(target);
            for page in log.chunks(4) {
                if !scan.feed(page) {
                    break;
                }
            }
            scan.finish()
        }

        #[test]
        fn every_prefix_of_the_log_is_found_and_the_copy_resumes_after_its_last_event() {
            let log = log();
            assert!(log.len() > 20);
            for n in 0..=log.len() {
                let resume = scan(versions_of(&log, n), &log).expect("a prefix");
                assert_eq!(resume.copied, n as u64, "prefix of {n}");
                let last = n.checked_sub(1).map(|i| &log[i]);
                assert_eq!(resume.after, last.map_or(Position::START, |e| e.position));
                assert_eq!(resume.last.as_ref(), last);
            }
        }

        #[test]
        fn the_scan_reads_no_further_once_the_prefix_holds_every_event_of_the_target() {
            let log = log();
            let mut scan = ResumeScan::new(versions_of(&log, 8));
            assert!(scan.feed(&log[..5]), "more may follow");
            assert!(!scan.feed(&log[5..8]), "the prefix is complete");
            assert!(!scan.feed(&log[8..]), "and stays so");
            assert_eq!(scan.finish().expect("a prefix").copied, 8);
        }

        #[test]
        fn a_target_with_a_stream_the_source_lacks_is_foreign() {
            let log = log();
            let mut target = versions_of(&log, 10);
            target.push(("case-9".to_owned(), 2));
            let foreign = scan(target, &log).expect_err("foreign");
            assert_eq!(
                (
                    foreign.stream.as_str(),
                    foreign.in_target,
                    foreign.in_prefix
                ),
                ("case-9", 2, 0)
            );
            assert_eq!(foreign.prefix_events, 10);
        }

        #[test]
        fn a_target_holding_a_later_event_without_the_ones_before_it_is_foreign() {
            let log = log();
            // Event 10 of the log, and not the one just after it: no prefix holds both.
            let later = &log[13];
            assert_ne!(later.stream, log[10].stream);
            let mut target = versions_of(&log, 10);
            let known = target
                .iter_mut()
                .find(|(stream, _)| *stream == later.stream);
            match known {
                Some((_, version)) => *version = later.version,
                None => target.push((later.stream.clone(), later.version)),
            }
            let foreign = scan(target, &log).expect_err("foreign");
            assert_eq!(foreign.stream, later.stream);
            assert_eq!(foreign.in_target, later.version);
            assert_eq!(foreign.prefix_events, 10);
            // The same versions of another log (every stream longer) are foreign too.
            let longer: Vec<(String, u64)> = versions_of(&log, log.len())
                .into_iter()
                .map(|(stream, version)| (stream, version + 1))
                .collect();
            let foreign = scan(longer, &log).expect_err("foreign");
            assert_eq!(foreign.prefix_events, log.len() as u64);
        }

        #[test]
        fn appends_group_one_streams_events_of_one_time_and_split_at_the_batch() {
            let log = log();
            let grouped = appends_of(log.clone(), MAX_EVENTS_PER_TRANSACTION);
            let shapes: Vec<(&str, usize)> = grouped
                .iter()
                .map(|append| (append.stream.as_str(), append.events.len()))
                .collect();
            assert_eq!(shapes, APPENDS);
            let split = appends_of(log.clone(), 2);
            assert!(split.iter().all(|append| append.events.len() <= 2));
            let first_of_three = &split[0..2];
            assert_eq!(first_of_three[0].expected, ExpectedVersion::Exact(0));
            assert_eq!(first_of_three[1].expected, ExpectedVersion::Exact(2));
            assert_eq!(first_of_three[1].stream, "directory");
            let n: usize = split.iter().map(|append| append.events.len()).sum();
            assert_eq!(n, log.len());
        }

        #[tokio::test]
        async fn a_digest_names_the_first_stream_whose_events_differ() {
            let (a, events, _dir) = source().await;
            let same = LogDigest::read(&*a).await.expect("digest");
            assert_eq!(same.events, events.len() as u64);
            assert_eq!(same.streams.len(), 6);
            assert_eq!(same.compare(&same), Ok(()));
            // Another store with the same log but one event's metadata changed.
            let dir = tempfile::tempdir().expect("dir");
            let b = SqliteStore::open(&dir.path().join("events.db")).expect("store");
            let mut changed = appends_of(events.clone(), MAX_EVENTS_PER_TRANSACTION);
            let case_3 = changed
                .iter_mut()
                .find(|append| append.stream == "case-3")
                .expect("case-3");
            case_3.events[1].metadata = r#"{"actor":"someone else"}"#.to_owned();
            b.import(changed).await.expect("import");
            let other = LogDigest::read(&b).await.expect("digest");
            assert_eq!(
                same.compare(&other),
                Err(Mismatch::Stream {
                    stream: "case-3".to_owned(),
                    in_source: 4,
                    in_target: 4,
                    n_streams: 1,
                })
            );
            let text = same.compare(&other).unwrap_err().to_string();
            assert!(text.contains("`case-3`"), "{text}");
        }

        #[tokio::test]
        async fn a_target_whose_last_event_is_not_the_sources_is_refused() {
            let (source, events, _dir) = source().await;
            // A store with the source's stream versions up to event 9, but its own ids.
            let dir = tempfile::tempdir().expect("dir");
            let target = SqliteStore::open(&dir.path().join("events.db")).expect("store");
            let mut lookalike = appends_of(events[..9].to_vec(), MAX_EVENTS_PER_TRANSACTION);
            for append in &mut lookalike {
                for event in &mut append.events {
                    event.event_id = Uuid::new_v4();
                }
            }
            target.import(lookalike).await.expect("import");
            let err = find_resume(&*source, &target).await.expect_err("refused");
            let text = format!("{err:#}");
            assert!(text.contains("not from this data directory"), "{text}");
            assert!(
                text.contains(&format!("stream `{}`", events[8].stream)),
                "{text}"
            );
            // With the source's own events it is the prefix to resume after.
            let dir = tempfile::tempdir().expect("dir");
            let target = SqliteStore::open(&dir.path().join("events.db")).expect("store");
            target
                .import(appends_of(events[..9].to_vec(), MAX_EVENTS_PER_TRANSACTION))
                .await
                .expect("import");
            let resume = find_resume(&*source, &target).await.expect("a prefix");
            assert_eq!((resume.after, resume.copied), (events[8].position, 9));
        }

        /// Every event of the target is the source's, in the same order, but for positions.
        async fn assert_same_log(source: &[RecordedEvent], target: &PostgresStore) {
            let copied = target
                .read_all(Position::START, usize::MAX)
                .await
                .expect("read");
            assert_eq!(copied.len(), source.len());
            for (copy, event) in copied.iter().zip(source) {
                assert!(same_event(copy, event), "{copy:?} is not {event:?}");
            }
            assert!(copied.windows(2).all(|w| w[0].position < w[1].position));
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_interrupted_copy_resumes_after_its_prefix_and_copies_nothing_twice() {
            let (source, events, _dir) = source().await;
            let total = events.len() as u64;
            let schema = fresh_schema().await;
            let target = PostgresStore::open(&schema.url()).await.expect("target");
            // A run cut off after 13 events (mid-append: an interruption between two of its
            // transactions splits nothing, but the scan must not care).
            target
                .import(appends_of(events[..13].to_vec(), 4))
                .await
                .expect("the prefix");
            let done = migrate(source.clone(), &target, total, 5)
                .await
                .expect("migrated");
            assert_eq!((done.already, done.copied), (13, total - 13));
            assert_eq!(done.digest.events, total);
            assert_same_log(&events, &target).await;

            // A rerun finds everything there: it copies nothing and verifies.
            let again = migrate(source.clone(), &target, total, 4096)
                .await
                .expect("verified");
            assert_eq!((again.already, again.copied), (total, 0));
            assert_same_log(&events, &target).await;
            // So does another handle, as a new process would.
            let other = PostgresStore::open(&schema.url()).await.expect("target");
            let third = migrate(source, &other, total, 4096)
                .await
                .expect("verified");
            assert_eq!(third.copied, 0);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_target_holding_another_log_is_refused_before_anything_is_written() {
            let (source, events, _dir) = source().await;
            let schema = fresh_schema().await;
            let target = PostgresStore::open(&schema.url()).await.expect("target");
            target
                .append(
                    "directory",
                    ExpectedVersion::NoStream,
                    crate::store::contract::events(2),
                )
                .await
                .expect("another log");
            let err = migrate(source, &target, events.len() as u64, 4096)
                .await
                .expect_err("refused");
            let text = format!("{err:#}");
            assert!(text.contains("not from this data directory"), "{text}");
            assert!(text.contains("stream `directory`"), "{text}");
            let held = target
                .read_all(Position::START, usize::MAX)
                .await
                .expect("read");
            assert_eq!(held.len(), 2, "nothing was written");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_event_changed_in_the_target_fails_the_verification_naming_its_stream() {
            let (source, events, _dir) = source().await;
            let total = events.len() as u64;
            let schema = fresh_schema().await;
            let target = PostgresStore::open(&schema.url()).await.expect("target");
            migrate(source.clone(), &target, total, 4096)
                .await
                .expect("migrated");
            let (client, connection) =
                tokio_postgres::connect(&schema.url(), tokio_postgres::NoTls)
                    .await
                    .expect("connect");
            tokio::spawn(connection);
            let changed = client
                .execute(
                    "UPDATE events SET data = '{\"n\":0}' WHERE stream = 'case-2' AND version = 2",
                    &[],
                )
                .await
                .expect("update");
            assert_eq!(changed, 1);
            let err = migrate(source, &target, total, 4096)
                .await
                .expect_err("a mismatch");
            let text = format!("{err:#}");
            assert!(text.contains("verification"), "{text}");
            assert!(text.contains("stream `case-2` differs"), "{text}");
        }
    }
}
