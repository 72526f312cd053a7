//! One owner per data directory: `serve`, `rebuild` and `generate` hold an exclusive lock on
//! `DIR/minqing.lock` for as long as they run, so a second one is refused before it opens or
//! replaces anything.
//!
//! The lock is the operating system's (`flock` on Unix), so it goes with the process: a
//! `kill -9` leaves no stale lock behind. The file keeps the holder's pid and command for the
//! refusal's message; its content is never trusted for anything else.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "minqing.lock";

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

/// Why a data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "data directory `{dir}` is in use by another minqing process ({holder}); stop it first"
    )]
    Held {
        /// The directory.
        dir: String,
        /// What the lock file says of its holder (`pid 1234, serve`), or that it says nothing.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("failed to lock data directory `{dir}`")]
    Io {
        /// The directory.
        dir: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl DataDirLock {
    /// Locks `dir` (which must exist) for `purpose` (`serve`, `rebuild`, …).
    ///
    /// # Errors
    /// [`LockError::Held`] when another process holds the lock, [`LockError::Io`] when the
    /// file cannot be opened or locked.
    pub fn acquire(dir: &Path, purpose: &str) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            dir: dir.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Best effort: the holder may be rewriting it right now.
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    dir: dir.display().to_string(),
                    holder: if holder.is_empty() {
                        "it did not say which".into()
                    } else {
                        holder.chars().take(200).collect()
                    },
                });
            }
            Err(TryLockError::Error(err)) => return Err(io(err)),
        }
        let note = format!("pid {}, {purpose}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(note.as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(io)?;
        Ok(Self { file, path })
    }

    /// Creates `dir` if needed, then locks it as [`DataDirLock::acquire`] does.
    ///
    /// # Errors
    /// As [`DataDirLock::acquire`], and when the directory cannot be created.
    pub fn create_and_acquire(dir: &Path, purpose: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create data directory `{}`", dir.display()))?;
        Ok(Self::acquire(dir, purpose)?)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        // Leave the file (another process may already be waiting on it); only unlock.
        let _ = self.file.unlock();
    }
}

/// Moves a damaged projection (`read.db`, `case-index/`) out of the way, to
/// `NAME.damaged-YYYYMMDDTHHMMSSZ` beside it, with the files that belong to it (`companions`,
/// suffixes such as `-wal`, moved with the same suffix), so the service can rebuild it from
/// the event store and an operator can still look at what was found. Returns the new path.
/// Never used on the event store.
///
/// # Errors
/// When a rename fails (the directory is read-only, say).
pub fn move_aside(path: &Path, companions: &[&str]) -> anyhow::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".damaged-{stamp}"));
    let mut aside = PathBuf::from(aside);
    // Two damages within a second keep both.
    let mut n = 1;
    while aside.exists() {
        let mut next = path.as_os_str().to_owned();
        next.push(format!(".damaged-{stamp}-{n}"));
        aside = PathBuf::from(next);
        n += 1;
    }
    std::fs::rename(path, &aside).with_context(|| {
        format!(
            "failed to move `{}` aside to `{}`",
            path.display(),
            aside.display()
        )
    })?;
    for suffix in companions {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let from = PathBuf::from(from);
        if from.exists() {
            let mut to = aside.as_os_str().to_owned();
            to.push(suffix);
            std::fs::rename(&from, PathBuf::from(to))
                .with_context(|| format!("failed to move `{}` aside", from.display()))?;
        }
    }
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("failed to sync `{}`", parent.display()))?;
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_file_is_moved_aside_with_its_companions() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("read.db");
        std::fs::write(&db, b"garbage").expect("db");
        std::fs::write(dir.path().join("read.db-wal"), b"wal").expect("wal");
        let aside = move_aside(&db, &["-wal", "-shm"]).expect("moved");
        assert!(!db.exists());
        assert!(!dir.path().join("read.db-wal").exists());
        let name = aside.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(name.starts_with("read.db.damaged-"), "{name}");
        assert_eq!(std::fs::read(&aside).expect("kept"), b"garbage");
        let mut wal = aside.as_os_str().to_owned();
        wal.push("-wal");
        assert_eq!(std::fs::read(PathBuf::from(wal)).expect("wal kept"), b"wal");
        // A second damage in the same second does not overwrite the first.
        std::fs::write(&db, b"again").expect("db");
        let second = move_aside(&db, &[]).expect("moved again");
        assert_ne!(second, aside);
        assert!(aside.exists() && second.exists());
    }

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().expect("dir");
        let first = DataDirLock::acquire(dir.path(), "serve").expect("first");
        let err = DataDirLock::acquire(dir.path(), "rebuild").expect_err("second");
        let text = err.to_string();
        assert!(matches!(err, LockError::Held { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}, serve", std::process::id())),
            "{text}"
        );
        drop(first);
        DataDirLock::acquire(dir.path(), "rebuild").expect("free again after the holder went");
    }

    #[test]
    fn a_missing_directory_is_an_error_not_created() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("nope");
        assert!(DataDirLock::acquire(&missing, "rebuild").is_err());
        assert!(!missing.exists());
    }
}

/// The file naming the event store a data directory's read models and indexes follow.
pub const STORE_ID_FILE: &str = "store-id";

/// Checks that the data directory's read models and indexes follow the store `identity`
/// ([`crate::store::EventStore::identity`]), and records it on first use. Positions of one
/// store mean nothing in another: read models at one store's checkpoint would take another
/// store's events as if they followed.
///
/// A directory with read models but no record followed the embedded store (older builds
/// wrote none).
///
/// # Errors
/// Another store's directory (the message says what to do); IO failures.
pub fn check_store(dir: &Path, identity: &str) -> anyhow::Result<()> {
    let path = dir.join(STORE_ID_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => dir
            .join("read.db")
            .exists()
            .then(|| crate::store::EMBEDDED_IDENTITY.to_owned()),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read `{}`", path.display()));
        }
    };
    match recorded {
        Some(recorded) if recorded != identity => anyhow::bail!(
            "data directory `{}` holds read models and indexes of another event store ({recorded}, \
             not {identity}): give this store an empty data directory (each instance has its own)",
            dir.display()
        ),
        Some(_) if path.exists() => Ok(()),
        _ => std::fs::write(&path, format!("{identity}\n"))
            .with_context(|| format!("failed to write `{}`", path.display())),
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;

    #[test]
    fn a_data_directory_follows_one_store() {
        let dir = tempfile::tempdir().unwrap();
        check_store(dir.path(), "postgres:1").unwrap();
        check_store(dir.path(), "postgres:1").unwrap();
        let err = check_store(dir.path(), "postgres:2").unwrap_err();
        assert!(err.to_string().contains("another event store"), "{err}");
    }

    #[test]
    fn read_models_without_a_record_followed_the_embedded_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("read.db"), b"").unwrap();
        assert!(check_store(dir.path(), "postgres:1").is_err());
        check_store(dir.path(), crate::store::EMBEDDED_IDENTITY).unwrap();
        assert!(dir.path().join(STORE_ID_FILE).exists());
    }
}
