//! Index directories that know the schema version they were written with: every commit payload
//! records it, and an index of another version (or another tantivy schema) is replaced by an
//! empty one when it is opened, so its projection rebuilds it from position 0.
//!
//! Their files are read into memory the index owns ([`ReadDirectory`]), not memory-mapped: a
//! mapped file that shrinks under the process, or a page the disk fails to read back, is a
//! `SIGBUS` that kills the whole service, where a read into memory fails one open with an
//! error.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tantivy::directory::error::{
    DeleteError, LockError, OpenDirectoryError, OpenReadError, OpenWriteError,
};
use tantivy::directory::{
    DirectoryLock, FileHandle, Lock, MmapDirectory, OwnedBytes, WatchCallback, WatchHandle,
    WritePtr,
};
use tantivy::schema::Schema;
use tantivy::{Directory, Index, IndexSettings, TantivyError};

/// An index directory on disk whose files are read whole into memory, once, when tantivy
/// first opens them (segment files are written once and never change), and then served from
/// there; everything else (writes, atomic files, locks, watching `meta.json`) is tantivy's
/// [`MmapDirectory`]. A file that cannot be read (truncated, an I/O error) fails the open with
/// an error, and one that goes bad later changes nothing already read; with memory maps
/// either raises `SIGBUS` in whatever thread touches the page.
///
/// Memory: the live segment files of the index (about 2 MB per 30,000 cases for the case
/// index); tantivy deletes a merged segment's files through [`Directory::delete`], which
/// drops them here too.
#[derive(Clone, Debug)]
pub struct ReadDirectory {
    root: PathBuf,
    inner: MmapDirectory,
    /// The files read so far, by path relative to `root`.
    files: Arc<RwLock<HashMap<PathBuf, OwnedBytes>>>,
}

impl ReadDirectory {
    /// The directory at `root`, which must exist.
    ///
    /// # Errors
    /// [`OpenDirectoryError`] when `root` does not exist or is not a directory.
    pub fn open(root: &Path) -> Result<Self, OpenDirectoryError> {
        Ok(ReadDirectory {
            root: root.to_owned(),
            inner: MmapDirectory::open(root)?,
            files: Arc::default(),
        })
    }

    fn forget(&self, path: &Path) {
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
    }
}

impl Directory for ReadDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        if let Some(bytes) = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return Ok(Arc::new(bytes.clone()));
        }
        let full_path = self.root.join(path);
        let bytes = std::fs::read(&full_path).map_err(|err| {
            if err.kind() == io::ErrorKind::NotFound {
                OpenReadError::FileDoesNotExist(full_path.clone())
            } else {
                OpenReadError::wrap_io_error(err, full_path.clone())
            }
        })?;
        let bytes = OwnedBytes::new(bytes);
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_owned(), bytes.clone());
        Ok(Arc::new(bytes))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.forget(path);
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.forget(path);
        self.inner.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner.atomic_write(path, data)
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}

use crate::index::IndexError;

/// The version of an index whose payload records none: it was written before versions were
/// recorded.
pub const UNVERSIONED: u32 = 1;

/// Memory budget of the writer opened only to take the index's lock, in bytes (tantivy's
/// least).
const LOCK_PROBE_MEMORY: usize = 15_000_000;

/// What was found in an index directory when it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// No index: a new, empty one.
    Created,
    /// An index of the expected schema version, resumed from its last commit.
    Resumed,
    /// An index written with schema version `found` (or another tantivy schema): its files
    /// were deleted and a new, empty index took its place, to be rebuilt from position 0.
    Replaced {
        /// The version its last commit recorded.
        found: u32,
    },
}

/// The schema version a commit payload (`{"schema_version": N, …}`) records; [`UNVERSIONED`]
/// for no payload or one without a version.
pub fn payload_version(payload: Option<&str>) -> u32 {
    payload
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|value| value.get("schema_version")?.as_u64())
        .and_then(|version| u32::try_from(version).ok())
        .unwrap_or(UNVERSIONED)
}

/// Opens the index in `dir` written with `schema` at schema `version`: creates it when absent,
/// and replaces it with an empty one when its last commit records another version or its
/// schema differs.
///
/// # Errors
/// [`IndexError::Directory`] when `dir` cannot be opened, [`IndexError::Tantivy`] when the
/// index is corrupt or locked by another process, [`IndexError::Io`] when an outdated index
/// cannot be deleted.
pub(crate) fn open_versioned(
    dir: &Path,
    schema: Schema,
    version: u32,
) -> Result<(Index, Opened), IndexError> {
    let directory = ReadDirectory::open(dir)?;
    if !Index::exists(&directory).map_err(TantivyError::from)? {
        let index = Index::create(directory, schema, IndexSettings::default())?;
        return Ok((index, Opened::Created));
    }
    let existing = Index::open(directory)?;
    let found = payload_version(existing.load_metas()?.payload.as_deref());
    if found == version && existing.schema() == schema {
        return Ok((existing, Opened::Resumed));
    }
    // Taking the writer's lock proves no other process uses the index before it is deleted.
    drop(existing.writer_with_num_threads::<tantivy::TantivyDocument>(1, LOCK_PROBE_MEMORY)?);
    drop(existing);
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    let index = Index::create(ReadDirectory::open(dir)?, schema, IndexSettings::default())?;
    Ok((index, Opened::Replaced { found }))
}

/// Whether `err` (or an error in its chain of sources) says an index's files are damaged:
/// tantivy, or the payload's JSON, refused what it read. A lock held by another process, or a
/// disk that refuses access or space, is not damage: moving the index aside would not help.
pub fn is_damage(err: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let storage = |e: &std::io::Error| {
        matches!(
            e.kind(),
            ErrorKind::PermissionDenied
                | ErrorKind::ReadOnlyFilesystem
                | ErrorKind::StorageFull
                | ErrorKind::QuotaExceeded
                | ErrorKind::ResourceBusy
                | ErrorKind::OutOfMemory
        )
    };
    let mut damaged = false;
    let mut next = Some(err);
    while let Some(cause) = next {
        if let Some(e) = cause.downcast_ref::<TantivyError>() {
            match e {
                TantivyError::LockFailure(..) => return false,
                TantivyError::IoError(io) if storage(io) => return false,
                _ => damaged = true,
            }
        } else if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if storage(io) {
                return false;
            }
        } else if cause.is::<serde_json::Error>() {
            damaged = true;
        }
        next = cause.source();
    }
    damaged
}

#[cfg(test)]
mod tests {
    use tantivy::schema::{STORED, STRING};
    use tantivy::{TantivyDocument, doc};

    use super::*;

    fn commit(index: &Index, title: &str, payload: &str) {
        let field = index.schema().get_field("title").unwrap();
        let mut writer = index
            .writer_with_num_threads::<TantivyDocument>(1, LOCK_PROBE_MEMORY)
            .unwrap();
        writer.add_document(doc!(field => title)).unwrap();
        let mut prepared = writer.prepare_commit().unwrap();
        prepared.set_payload(payload);
        prepared.commit().unwrap();
    }

    fn num_docs(index: &Index) -> u64 {
        index.reader().unwrap().searcher().num_docs()
    }

    fn schema() -> Schema {
        let mut builder = Schema::builder();
        builder.add_text_field("title", STRING | STORED);
        builder.add_text_field("district_id", STRING);
        builder.build()
    }

    #[test]
    fn an_index_without_a_version_or_of_another_schema_is_replaced_by_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        // Written by an older build: another tantivy schema, no version in the payload.
        let mut old = Schema::builder();
        old.add_text_field("title", STRING | STORED);
        let index = Index::create_in_dir(dir.path(), old.build()).unwrap();
        commit(&index, "old", r#"{"checkpoint":42}"#);
        drop(index);
        let (index, opened) = open_versioned(dir.path(), schema(), 2).unwrap();
        assert_eq!(opened, Opened::Replaced { found: UNVERSIONED });
        assert_eq!(num_docs(&index), 0);
        assert_eq!(index.load_metas().unwrap().payload, None);
        assert_eq!(index.schema(), schema());
    }

    #[test]
    fn an_index_is_resumed_by_its_own_version_and_replaced_by_another() {
        let dir = tempfile::tempdir().unwrap();
        let (index, opened) = open_versioned(dir.path(), schema(), 2).unwrap();
        assert_eq!(opened, Opened::Created);
        commit(&index, "kept", r#"{"checkpoint":7,"schema_version":2}"#);
        drop(index);
        let (index, opened) = open_versioned(dir.path(), schema(), 2).unwrap();
        assert_eq!(opened, Opened::Resumed);
        assert_eq!(num_docs(&index), 1);
        drop(index);
        // Same tantivy schema, but documents that mean something else to version 3.
        let (index, opened) = open_versioned(dir.path(), schema(), 3).unwrap();
        assert_eq!(opened, Opened::Replaced { found: 2 });
        assert_eq!(num_docs(&index), 0);
    }

    #[test]
    fn an_index_in_use_by_a_writer_is_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = open_versioned(dir.path(), schema(), 1).unwrap();
        commit(&index, "busy", r#"{"checkpoint":1,"schema_version":1}"#);
        let writer = index
            .writer_with_num_threads::<TantivyDocument>(1, LOCK_PROBE_MEMORY)
            .unwrap();
        assert!(open_versioned(dir.path(), schema(), 2).is_err());
        drop(writer);
        assert_eq!(num_docs(&index), 1);
    }

    #[test]
    fn a_file_that_shrinks_under_the_index_neither_kills_the_process_nor_changes_its_answers() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = open_versioned(dir.path(), schema(), 1).unwrap();
        let field = index.schema().get_field("title").unwrap();
        let mut writer = index
            .writer_with_num_threads::<TantivyDocument>(1, LOCK_PROBE_MEMORY)
            .unwrap();
        for n in 0..500 {
            writer
                .add_document(doc!(field => format!("title {n}")))
                .unwrap();
        }
        writer.commit().unwrap();
        let reader = index.reader().unwrap();
        let searcher = reader.searcher();
        // What a truncation (or a disk that fails to read a page back) does to the files:
        // with memory maps, the next read of those pages is a SIGBUS.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let segment_file = ["store", "idx", "term", "fast"]
                .iter()
                .any(|e| path.extension().is_some_and(|x| x == *e));
            if segment_file {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
        }
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(0).unwrap();
            for doc in 0..segment.max_doc() {
                let found: TantivyDocument = store.get(doc).unwrap();
                assert!(found.get_first(field).is_some());
            }
        }
        let query = tantivy::query::TermQuery::new(
            tantivy::Term::from_field_text(field, "title 7"),
            tantivy::schema::IndexRecordOption::Basic,
        );
        let count = searcher.search(&query, &tantivy::collector::Count).unwrap();
        assert_eq!(count, 1);
        // A new start reads the damaged files and says so with an error.
        drop((searcher, reader, writer, index));
        let (index, _) = open_versioned(dir.path(), schema(), 1).unwrap();
        assert!(index.reader().is_err());
    }

    #[test]
    fn the_version_is_read_from_the_payload() {
        assert_eq!(payload_version(None), UNVERSIONED);
        assert_eq!(payload_version(Some(r#"{"checkpoint":3}"#)), UNVERSIONED);
        assert_eq!(
            payload_version(Some(r#"{"checkpoint":3,"schema_version":4}"#)),
            4
        );
        assert_eq!(payload_version(Some("not json")), UNVERSIONED);
    }
}
