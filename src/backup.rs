//! Backups and moving data (备份与迁移).
//!
//! - `minqing backup --data DIR --to FILE`: a consistent copy of a data directory, taken while
//!   the service runs. The file is an SQLite database: SQLite's online backup of the event
//!   store (`events.db`), plus a table `minqing_backup` with the users (`users.json`) and a
//!   manifest (format, head position, number of events and streams). Read models, indexes,
//!   sessions and reports are left out: they are rebuilt from the events.
//! - `minqing restore --from FILE --data DIR`: into a directory without an event store; the
//!   copy is checked against its manifest before it is moved into place, then the read models
//!   and indexes are rebuilt.
//! - `minqing export --data DIR --to FILE` / `minqing import --from FILE --data DIR`: the whole
//!   event log as JSON lines, one event per line in global order ([`ExportLine`]), the format
//!   other tools and other backends can read. `import` loads an empty directory, all or
//!   nothing.
//!
//! Every copy is written under a temporary name and renamed when complete, so an interrupted
//! run leaves nothing that could be taken for a finished one.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::store::sqlite::{SqliteStore, backup_file, read_snapshot};
use crate::store::{ExpectedVersion, ImportAppend, NewEvent, RecordedEvent, StoreError};

/// The event store's file in a data directory.
pub const EVENTS_FILE: &str = "events.db";
/// The users' file in a data directory.
pub const USERS_FILE: &str = "users.json";
/// The version of the backup file's layout.
const BACKUP_FORMAT: u32 = 1;
/// Events per import transaction.
const IMPORT_BATCH: usize = 5_000;
/// Longest accepted export line (an event's payload is bounded far below this).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// What a backup holds, stored in it and checked on restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`BACKUP_FORMAT`].
    pub format: u32,
    /// When the copy was taken.
    pub taken_at: DateTime<Utc>,
    /// The last event's position.
    pub head: u64,
    /// Events in the copy.
    pub events: u64,
    /// Streams in the copy.
    pub streams: u64,
    /// Whether `users.json` was in the directory (and so is in the copy).
    pub users: bool,
}

/// One line of an export: an event as stored, its payload and metadata as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportLine {
    /// Global position in the source store.
    pub position: u64,
    /// The stream.
    pub stream: String,
    /// The stream's version after the event (the first is 1).
    pub version: u64,
    /// The event's id.
    pub event_id: Uuid,
    /// The type tag.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// When the source store committed it.
    pub recorded_at: DateTime<Utc>,
    /// The payload.
    pub data: Box<RawValue>,
    /// The metadata.
    pub metadata: Box<RawValue>,
}

fn partial(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Prints `what` with the share of `done` in `total` every second or so (on stderr).
struct Progress {
    what: &'static str,
    last: Instant,
}

impl Progress {
    fn new(what: &'static str) -> Self {
        Progress {
            what,
            last: Instant::now(),
        }
    }

    fn tick(&mut self, done: u64, total: u64) {
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            let share = if total == 0 {
                100.0
            } else {
                done as f64 * 100.0 / total as f64
            };
            eprintln!("{}：{done}/{total}（{share:.1}%）", self.what);
        }
    }
}

/// The store of `data_dir`, which must exist, and a check that `to` (a `what`) does not.
fn store_and_new_file(data_dir: &Path, to: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let events = data_dir.join(EVENTS_FILE);
    if !events.is_file() {
        bail!(
            "数据目录 `{}` 中没有事件库 {EVENTS_FILE}",
            data_dir.display()
        );
    }
    if to.exists() {
        bail!("{what} `{}` 已存在，不会覆盖", to.display());
    }
    Ok(events)
}

fn count_of(conn: &Connection, sql: &str) -> anyhow::Result<u64> {
    let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// `minqing backup`: copies `data_dir`'s event store and users to `to` (which must not
/// exist), while a service may be running on it.
///
/// # Errors
/// A missing store, an existing `to`, IO or SQLite failures; nothing is left at `to` then.
pub fn backup(data_dir: &Path, to: &Path) -> anyhow::Result<Manifest> {
    let events = store_and_new_file(data_dir, to, "备份文件")?;
    let tmp = partial(to);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        // The copy grows page by page in one step: watch it for the progress shown.
        let total = std::fs::metadata(&events)?.len();
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (done, tmp) = (Arc::clone(&done), tmp.clone());
            std::thread::spawn(move || {
                let mut progress = Progress::new("备份事件库（字节）");
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let copied = std::fs::metadata(&tmp).map_or(0, |m| m.len());
                    progress.tick(copied.min(total), total);
                }
            })
        };
        let copied = backup_file(&events, &tmp);
        done.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        copied.context("在线备份事件库失败")?;
        // users.json is replaced by a rename on every change, so a read sees one whole file.
        let users = match std::fs::read(data_dir.join(USERS_FILE)) {
            Ok(bytes) => Some(bytes),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).context("读取 users.json 失败"),
        };
        let conn = Connection::open(&tmp)?;
        let manifest = Manifest {
            format: BACKUP_FORMAT,
            taken_at: Utc::now(),
            head: count_of(&conn, "SELECT coalesce(max(position), 0) FROM events")?,
            events: count_of(&conn, "SELECT count(*) FROM events")?,
            streams: count_of(&conn, "SELECT count(*) FROM streams")?,
            users: users.is_some(),
        };
        conn.execute_batch(
            "CREATE TABLE minqing_backup (name TEXT PRIMARY KEY, content BLOB NOT NULL) STRICT;",
        )?;
        conn.execute(
            "INSERT INTO minqing_backup (name, content) VALUES ('manifest', ?1)",
            [serde_json::to_vec(&manifest)?],
        )?;
        if let Some(users) = &users {
            conn.execute(
                "INSERT INTO minqing_backup (name, content) VALUES ('users.json', ?1)",
                [users],
            )?;
        }
        // One self-contained file: no WAL beside it.
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        conn.close().map_err(|(_, err)| err)?;
        File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, to)?;
        Ok(manifest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Refuses a directory that already has an event store; creates it when missing.
fn fresh_dir(data_dir: &Path) -> anyhow::Result<()> {
    if data_dir.join(EVENTS_FILE).exists() {
        bail!(
            "数据目录 `{}` 已有事件库 {EVENTS_FILE}：请换一个空目录",
            data_dir.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("无法创建数据目录 `{}`", data_dir.display()))
}

/// `minqing restore`: puts the backup `from` into `data_dir` (without an event store), checked
/// against its manifest. The caller rebuilds the read models and indexes afterwards.
///
/// # Errors
/// A directory with a store, a file that is no backup or does not match its manifest, IO or
/// SQLite failures; nothing is left in `data_dir` then.
pub fn restore(from: &Path, data_dir: &Path) -> anyhow::Result<Manifest> {
    fresh_dir(data_dir)?;
    let _lock = crate::datadir::DataDirLock::acquire(data_dir, "restore")?;
    let events = data_dir.join(EVENTS_FILE);
    let tmp = partial(&events);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        std::fs::copy(from, &tmp)
            .with_context(|| format!("无法读取备份文件 `{}`", from.display()))?;
        let conn = Connection::open(&tmp)?;
        let content = |name: &str| -> anyhow::Result<Option<Vec<u8>>> {
            Ok(conn
                .query_row(
                    "SELECT content FROM minqing_backup WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?)
        };
        let manifest = content("manifest")
            .ok()
            .flatten()
            .with_context(|| format!("`{}` 不是民情的备份文件", from.display()))?;
        let manifest: Manifest =
            serde_json::from_slice(&manifest).context("备份文件的清单无法读取")?;
        if manifest.format != BACKUP_FORMAT {
            bail!(
                "备份格式 {} 不受支持（本版本为 {BACKUP_FORMAT}）",
                manifest.format
            );
        }
        let users = content(USERS_FILE)?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            bail!("备份文件已损坏：{check}");
        }
        let found = (
            count_of(&conn, "SELECT coalesce(max(position), 0) FROM events")?,
            count_of(&conn, "SELECT count(*) FROM events")?,
            count_of(&conn, "SELECT count(*) FROM streams")?,
        );
        if found != (manifest.head, manifest.events, manifest.streams) {
            bail!(
                "备份文件与其清单不符：清单为位置 {}、{} 个事件、{} 个流，文件中为 {:?}",
                manifest.head,
                manifest.events,
                manifest.streams,
                found
            );
        }
        conn.execute_batch("DROP TABLE minqing_backup;")?;
        conn.close().map_err(|(_, err)| err)?;
        File::open(&tmp)?.sync_all()?;
        if let Some(users) = users {
            let users_tmp = partial(&data_dir.join(USERS_FILE));
            std::fs::write(&users_tmp, users)?;
            File::open(&users_tmp)?.sync_all()?;
            std::fs::rename(&users_tmp, data_dir.join(USERS_FILE))?;
        }
        // The store last: a directory with `events.db` is a restored one.
        std::fs::rename(&tmp, &events)?;
        Ok(manifest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `minqing export`: writes every event of `data_dir`'s store to `to` (which must not exist)
/// as JSON lines, a consistent snapshot while a service may be running. Returns the number of
/// events.
///
/// # Errors
/// A missing store, an existing `to`, IO or store failures; nothing is left at `to` then.
pub fn export(data_dir: &Path, to: &Path) -> anyhow::Result<u64> {
    let events = store_and_new_file(data_dir, to, "导出文件")?;
    let total = {
        let conn =
            Connection::open_with_flags(&events, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        count_of(&conn, "SELECT coalesce(max(position), 0) FROM events")?
    };
    let tmp = partial(to);
    let result = (|| {
        let mut out = BufWriter::new(File::create(&tmp)?);
        let mut progress = Progress::new("导出事件（位置）");
        let n = read_snapshot::<anyhow::Error>(&events, &mut |page| {
            for event in page {
                write_line(&mut out, &event)?;
                progress.tick(event.position.0, total);
            }
            Ok(())
        })?;
        let file = out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&tmp, to)?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_line(out: &mut impl Write, event: &RecordedEvent) -> anyhow::Result<()> {
    let raw = |text: &str, what: &str| {
        RawValue::from_string(text.to_owned())
            .with_context(|| format!("事件 {} 的{what}不是 JSON，无法导出", event.position.0))
    };
    let line = ExportLine {
        position: event.position.0,
        stream: event.stream.clone(),
        version: event.version,
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        recorded_at: event.recorded_at,
        data: raw(&event.data, "内容")?,
        metadata: raw(&event.metadata, "元数据")?,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `minqing import`: loads the JSON lines `from` (as [`export`] writes them) into `data_dir`
/// (without an event store), all or nothing. Positions are given anew in the order of the
/// lines, so a log without gaps keeps its positions. Returns the number of events.
///
/// # Errors
/// A directory with a store, a line that is not an event (with its number), an event out of
/// order for its stream, IO or store failures; nothing is left in `data_dir` then.
pub async fn import(from: &Path, data_dir: &Path) -> anyhow::Result<u64> {
    fresh_dir(data_dir)?;
    let _lock = crate::datadir::DataDirLock::acquire(data_dir, "import")?;
    let work = data_dir.join("import.partial");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = import_into(from, &work.join(EVENTS_FILE)).await;
    let result = result.and_then(|n| {
        // The store is closed and its WAL folded in: the file alone is the store.
        let path = work.join(EVENTS_FILE);
        let conn = Connection::open(&path)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        conn.close().map_err(|(_, err)| err)?;
        File::open(&path)?.sync_all()?;
        std::fs::rename(&path, data_dir.join(EVENTS_FILE))?;
        Ok(n)
    });
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn import_into(from: &Path, path: &Path) -> anyhow::Result<u64> {
    let file = File::open(from).with_context(|| format!("无法读取 `{}`", from.display()))?;
    let total = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let store = SqliteStore::open(path)?;
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let mut batch: Vec<ImportAppend> = Vec::new();
    let mut in_batch = 0;
    let (mut n, mut read, mut last_position) = (0u64, 0u64, 0u64);
    let mut progress = Progress::new("导入事件（字节）");
    let mut line = String::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        let got = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .with_context(|| format!("第 {} 行无法读取", line_no + 1))?;
        if got == 0 {
            break;
        }
        line_no += 1;
        read += got as u64;
        if got > MAX_LINE {
            bail!("第 {line_no} 行超过 {MAX_LINE} 字节");
        }
        if line.trim().is_empty() {
            continue;
        }
        let event: ExportLine = serde_json::from_str(&line)
            .with_context(|| format!("第 {line_no} 行不是导出的事件"))?;
        if event.position <= last_position {
            bail!(
                "第 {line_no} 行：位置 {} 不在上一行的位置 {last_position} 之后",
                event.position
            );
        }
        last_position = event.position;
        let version = versions.entry(event.stream.clone()).or_default();
        if event.version != *version + 1 {
            bail!(
                "第 {line_no} 行：流 {} 的版本 {} 应为 {}",
                event.stream,
                event.version,
                *version + 1
            );
        }
        *version = event.version;
        let new = NewEvent {
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            data: event.data.get().to_owned(),
            metadata: event.metadata.get().to_owned(),
        };
        // Consecutive events of one stream committed at one time were one append.
        match batch.last_mut() {
            Some(last) if last.stream == event.stream && last.recorded_at == event.recorded_at => {
                last.events.push(new);
            }
            _ => batch.push(ImportAppend {
                stream: event.stream,
                expected: ExpectedVersion::Exact(event.version - 1),
                events: vec![new],
                recorded_at: event.recorded_at,
            }),
        }
        in_batch += 1;
        n += 1;
        if in_batch >= IMPORT_BATCH {
            store
                .import(std::mem::take(&mut batch))
                .await
                .with_context(|| format!("第 {line_no} 行之前的事件无法写入"))?;
            in_batch = 0;
            progress.tick(read, total);
        }
    }
    if !batch.is_empty() {
        store.import(batch).await.context("最后一批事件无法写入")?;
    }
    store.close();
    Ok(n)
}

/// Every stream of the store at `path` with its events (position, version, id, type, schema,
/// payload, metadata, time), for comparing two stores event by event.
///
/// # Errors
/// The store cannot be read.
pub fn streams_of(path: &Path) -> Result<BTreeMap<String, Vec<RecordedEvent>>, StoreError> {
    let mut out: BTreeMap<String, Vec<RecordedEvent>> = BTreeMap::new();
    read_snapshot::<StoreError>(path, &mut |page| {
        for event in page {
            out.entry(event.stream.clone()).or_default().push(event);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Counts of `path`'s store for a summary: events, streams, head.
///
/// # Errors
/// The file cannot be read.
pub fn summary(path: &Path) -> anyhow::Result<(u64, u64, u64)> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok((
        count_of(&conn, "SELECT count(*) FROM events")?,
        count_of(&conn, "SELECT count(*) FROM streams")?,
        count_of(&conn, "SELECT coalesce(max(position), 0) FROM events")?,
    ))
}
