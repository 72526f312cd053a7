//! Units and users: the org tree and the accounts, seeded from the fixtures into the data
//! directory on first start, and bearer-token sessions (kept in `sessions.db` so a restart
//! does not log anyone out; only a digest of each token is stored).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use domain::org::{OrgTree, Unit, UnitId};
use domain::roles::{Actor, Role};
use serde::{Deserialize, Serialize};

/// The demo city's units, compiled in so the binary runs from any directory.
const ORG_JSON: &str = include_str!("../fixtures/org.json");
/// The demo users, compiled in likewise.
const USERS_JSON: &str = include_str!("../fixtures/users.json");

/// How long a bearer token stays valid.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Deserialize)]
struct OrgFile {
    units: Vec<Unit>,
}

#[derive(Deserialize)]
struct UsersFile {
    users: Vec<SeedUser>,
}

#[derive(Deserialize)]
struct SeedUser {
    username: String,
    display_name: String,
    roles: Vec<Role>,
    unit_id: UnitId,
    #[serde(default)]
    oversees: Vec<UnitId>,
}

/// A user account as stored in `users.json` of the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Chinese name shown on screen.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// The unit the user works in.
    pub unit_id: UnitId,
    /// For leaders: the units they oversee.
    pub oversees: Vec<UnitId>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The password was handed out (the shared initial one, a reset), not chosen: the
    /// workbench lets the user do nothing before changing it (`domain::password`).
    #[serde(default)]
    pub must_change_password: bool,
    /// A disabled account (停用) cannot sign in; its sessions ended when it was disabled.
    #[serde(default)]
    pub disabled: bool,
}

impl User {
    /// The user as the domain sees an actor.
    pub fn actor(&self) -> Actor {
        Actor {
            username: self.username.clone(),
            unit_id: self.unit_id.clone(),
            roles: self.roles.clone(),
            oversees: self.oversees.clone(),
        }
    }
}

/// Parses the compiled-in org tree.
///
/// # Errors
/// When the fixture does not parse or is not a well-formed tree.
pub fn load_org() -> anyhow::Result<OrgTree> {
    let file: OrgFile =
        serde_json::from_str(ORG_JSON).context("failed to parse `fixtures/org.json`")?;
    OrgTree::new(file.units).context("`fixtures/org.json` is not a well-formed tree")
}

/// The demo users of the fixtures as the domain sees them, without passwords (for tests that
/// act as them without a data directory).
///
/// # Errors
/// When the fixture does not parse.
pub fn fixture_actors() -> anyhow::Result<Vec<Actor>> {
    let file: UsersFile =
        serde_json::from_str(USERS_JSON).context("failed to parse `fixtures/users.json`")?;
    Ok(file
        .users
        .into_iter()
        .map(|u| Actor {
            username: u.username,
            unit_id: u.unit_id,
            roles: u.roles,
            oversees: u.oversees,
        })
        .collect())
}

/// The demo users of `fixtures/users.json`, as the directory seeds them on a first start.
///
/// # Errors
/// When the fixture does not parse.
pub fn fixture_users() -> anyhow::Result<Vec<domain::directory::UserEntry>> {
    let file: UsersFile =
        serde_json::from_str(USERS_JSON).context("failed to parse `fixtures/users.json`")?;
    Ok(file
        .users
        .into_iter()
        .map(|u| domain::directory::UserEntry {
            username: u.username,
            display_name: u.display_name,
            unit_id: u.unit_id,
            roles: u.roles,
            oversees: u.oversees,
            disabled: false,
        })
        .collect())
}

/// The users of `data_dir`'s `users.json` as a build before the recorded directory kept
/// them (who works where, in which role), or `None` when there is no such file: what the
/// first start of this build records as the directory of an existing data directory.
///
/// # Errors
/// IO failures, a corrupt file.
pub fn legacy_users(data_dir: &Path) -> anyhow::Result<Option<Vec<domain::directory::UserEntry>>> {
    let path = data_dir.join("users.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read `{}`", path.display()));
        }
    };
    let users: Vec<User> = serde_json::from_str(&text)
        .with_context(|| format!("failed to parse `{}`", path.display()))?;
    Ok(Some(
        users
            .into_iter()
            .map(|u| domain::directory::UserEntry {
                username: u.username,
                display_name: u.display_name,
                unit_id: u.unit_id,
                roles: u.roles,
                oversees: u.oversees,
                disabled: u.disabled,
            })
            .collect(),
    ))
}

/// The users and live sessions.
pub struct Directory {
    /// The accounts by username; replaced whole per user when a password changes.
    users: RwLock<HashMap<String, Arc<User>>>,
    /// `users.json`, rewritten (atomically) on every change.
    users_path: PathBuf,
    /// A hash of a random password with the same parameters as the users' ones: an unknown
    /// user is checked against it, so that a login for a name that does not exist costs as
    /// much time as a wrong password and the time does not tell which names exist.
    dummy_hash: String,
    sessions: Mutex<Sessions>,
    /// Where sessions are kept across restarts.
    session_db: Mutex<rusqlite::Connection>,
}

/// Token digest → the session.
type Sessions = HashMap<String, Live>;

/// A live session.
struct Live {
    username: String,
    /// Expiry in Unix seconds (absolute, [`SESSION_TTL`] from sign-in).
    expires: i64,
    /// The last request that counted as the user's activity (Unix seconds); not stored, so a
    /// restart counts as activity.
    last_seen: i64,
}

/// What is stored for a token: a digest, never the token itself (it would be a password).
pub fn digest(token: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, token.as_bytes())
        .simple()
        .to_string()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn open_session_db(path: &Path) -> anyhow::Result<(rusqlite::Connection, Sessions)> {
    let conn = rusqlite::Connection::open(path)
        .with_context(|| format!("failed to open session store `{}`", path.display()))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE IF NOT EXISTS sessions (digest TEXT PRIMARY KEY, username TEXT NOT NULL, expires INTEGER NOT NULL);",
    )
    .with_context(|| format!("failed to prepare session store `{}`", path.display()))?;
    conn.execute("DELETE FROM sessions WHERE expires <= ?1", [unix_now()])
        .context("failed to drop expired sessions")?;
    let mut live = HashMap::new();
    {
        let mut stmt = conn
            .prepare("SELECT digest, username, expires FROM sessions")
            .context("failed to read sessions")?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .context("failed to read sessions")?;
        for row in rows {
            let (digest, username, expires) = row.context("failed to read a session")?;
            live.insert(
                digest,
                Live {
                    username,
                    expires,
                    last_seen: unix_now(),
                },
            );
        }
    }
    Ok((conn, live))
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("unknown user or wrong password")]
    BadCredentials,
    /// Hashing failed.
    #[error("password check failed")]
    Internal,
    /// The session could not be stored: the disk is full, read-only or failing.
    #[error("the session could not be stored")]
    StorageUnavailable,
}

impl Directory {
    /// Opens the accounts of the users of `snapshot`: their sign-in secrets are kept in
    /// `users.json` of `data_dir` (the directory itself, who works where in which role, is
    /// the event stream). A user without one yet gets `initial_password`, to be changed at
    /// the first sign-in (except in the demo city a first start seeds: the demo signs in
    /// with it as it is).
    ///
    /// # Errors
    /// IO failures, a corrupt users file.
    pub fn open(
        data_dir: &Path,
        snapshot: &crate::directory_log::OrgSnapshot,
        initial_password: &str,
    ) -> anyhow::Result<Self> {
        let path = data_dir.join("users.json");
        let stored: Vec<User> = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("failed to parse `{}`", path.display()))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => {
                return Err(err).with_context(|| format!("failed to read `{}`", path.display()));
            }
        };
        let (session_db, live) = open_session_db(&data_dir.join("sessions.db"))?;
        let dummy_hash = hash_password(&random_token()?)?;
        let accounts = Self {
            users: RwLock::new(
                stored
                    .into_iter()
                    .map(|u| (u.username.clone(), Arc::new(u)))
                    .collect(),
            ),
            users_path: path,
            dummy_hash,
            sessions: Mutex::new(live),
            session_db: Mutex::new(session_db),
        };
        accounts.sync_accounts(&snapshot.directory, initial_password, &[], snapshot.demo)?;
        Ok(accounts)
    }

    /// Takes `directory`'s users as they now are: the unit, roles and status of each, and an
    /// account with `initial_password` (to be changed at the first sign-in) for each new
    /// one. `reset` lists users whose password was just reset to `initial_password`. The
    /// sessions of disabled users and of reset ones end. Writes `users.json` when an
    /// account changed.
    ///
    /// # Errors
    /// Hashing or writing the file failed (nothing changed then).
    pub fn sync(
        &self,
        directory: &domain::directory::Directory,
        initial_password: &str,
        reset: &[String],
    ) -> anyhow::Result<()> {
        self.sync_accounts(directory, initial_password, reset, false)
    }

    /// [`Directory::sync`]; with `demo`, new accounts keep the password as it is.
    fn sync_accounts(
        &self,
        directory: &domain::directory::Directory,
        initial_password: &str,
        reset: &[String],
        demo: bool,
    ) -> anyhow::Result<()> {
        let mut ended = Vec::new();
        {
            let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
            let mut initial_hash = None;
            let mut next = HashMap::with_capacity(users.len());
            let mut changed = false;
            for entry in directory.users() {
                let old = users.get(&entry.username);
                let renew = old.is_none() || reset.contains(&entry.username);
                let (password_hash, must_change_password) = match old {
                    Some(old) if !renew => (old.password_hash.clone(), old.must_change_password),
                    _ => {
                        // One hash for every account given the same password at once: hashing
                        // hundreds of accounts one by one costs seconds.
                        if initial_hash.is_none() {
                            initial_hash = Some(hash_password(initial_password)?);
                        }
                        let hash = initial_hash.clone().unwrap_or_default();
                        (hash, !(demo && old.is_none()))
                    }
                };
                let user = User {
                    username: entry.username.clone(),
                    display_name: entry.display_name.clone(),
                    roles: entry.roles.clone(),
                    unit_id: entry.unit_id.clone(),
                    oversees: entry.oversees.clone(),
                    password_hash,
                    must_change_password,
                    disabled: entry.disabled,
                };
                if entry.disabled || reset.contains(&entry.username) {
                    ended.push(entry.username.clone());
                }
                if old.is_none_or(|old| **old != user) {
                    changed = true;
                }
                next.insert(user.username.clone(), Arc::new(user));
            }
            if changed || next.len() != users.len() {
                let mut all: Vec<&User> = next.values().map(|u| &**u).collect();
                all.sort_by(|a, b| a.username.cmp(&b.username));
                write_users(&self.users_path, &all)?;
                *users = next;
            }
        }
        for username in ended {
            self.end_sessions(&username, None);
        }
        Ok(())
    }

    /// All users, sorted by username.
    pub fn users(&self) -> Vec<Arc<User>> {
        let mut v: Vec<Arc<User>> = self.read_users().values().cloned().collect();
        v.sort_by(|a, b| a.username.cmp(&b.username));
        v
    }

    /// The user with this name.
    pub fn user(&self, username: &str) -> Option<Arc<User>> {
        self.read_users().get(username).cloned()
    }

    /// The user with this name, unless disabled: whom a session may act as.
    fn active_user(&self, username: &str) -> Option<Arc<User>> {
        self.user(username).filter(|u| !u.disabled)
    }

    fn read_users(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<User>>> {
        self.users.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a password and opens a session ([`Directory::verify`], then
    /// [`Directory::open_session`]). Argon2 takes tens of milliseconds and 19 MiB: callers on
    /// the async threads run it through `access::Access`, which bounds how many run at once.
    ///
    /// # Errors
    /// [`LoginError::BadCredentials`] for an unknown user or a wrong password.
    pub fn login(&self, username: &str, password: &str) -> Result<(String, Arc<User>), LoginError> {
        let user = self.verify(username, password, &mut Vec::new())?;
        Ok((self.open_session(&user)?, user))
    }

    /// Checks a password. An unknown user is checked against a dummy hash, so that it costs
    /// the same time as a wrong password. Argon2 works in `memory` (grown to the hash's
    /// `m` KiB if smaller), so that a caller reusing a few buffers allocates nothing per
    /// check: with the allocator's per-thread arenas, 19 MiB allocated and freed on many
    /// threads stayed resident, gigabytes of it under a flood of logins.
    ///
    /// # Errors
    /// [`LoginError::BadCredentials`] for an unknown user or a wrong password.
    pub fn verify(
        &self,
        username: &str,
        password: &str,
        memory: &mut Vec<argon2::Block>,
    ) -> Result<Arc<User>, LoginError> {
        let user = self.user(username);
        let stored = user
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let right = check_password(stored, password.as_bytes(), memory)?;
        match user {
            Some(user) if right && !user.disabled => Ok(user),
            _ => Err(LoginError::BadCredentials),
        }
    }

    /// Opens a session for a user whose password was checked; returns its bearer token.
    ///
    /// # Errors
    /// [`LoginError::Internal`] when no random token could be made or the session not stored.
    pub fn open_session(&self, user: &User) -> Result<String, LoginError> {
        let token = random_token().map_err(|_| LoginError::Internal)?;
        let key = digest(&token);
        let now = unix_now();
        let expires = now + SESSION_TTL.as_secs() as i64;
        {
            let db = self.session_db.lock().unwrap_or_else(|e| e.into_inner());
            db.execute(
                "INSERT INTO sessions (digest, username, expires) VALUES (?1, ?2, ?3)",
                rusqlite::params![key, user.username, expires],
            )
            .map_err(|err| {
                tracing::error!(error = %err, "failed to store a session");
                if crate::store::sqlite::is_storage_failure(&err) {
                    LoginError::StorageUnavailable
                } else {
                    LoginError::Internal
                }
            })?;
        }
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, live| live.expires > now);
        sessions.insert(
            key,
            Live {
                username: user.username.clone(),
                expires,
                last_seen: now,
            },
        );
        Ok(token)
    }

    /// Ends a session; returns whether it existed.
    pub fn logout(&self, token: &str) -> Option<String> {
        let key = digest(token);
        let db = self.session_db.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(err) = db.execute("DELETE FROM sessions WHERE digest = ?1", [&key]) {
            tracing::error!(error = %err, "failed to delete a session");
        }
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&key).map(|live| live.username)
    }

    /// The user a bearer token belongs to, if the session is live.
    pub fn authenticate(&self, token: &str) -> Option<Arc<User>> {
        let username = {
            let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let live = sessions.get(&digest(token))?;
            if live.expires <= unix_now() {
                return None;
            }
            live.username.clone()
        };
        self.active_user(&username)
    }

    /// As [`authenticate`](Self::authenticate), for a session that also ends after `idle`
    /// without activity (the workbench's cookie sessions). `activity` says whether this
    /// request is the user's (a page, a form, a search typed) rather than a page's own poll,
    /// and so restarts the idle time. A session idle too long is ended here.
    pub fn authenticate_active(
        &self,
        token: &str,
        idle: Duration,
        activity: bool,
    ) -> Option<Arc<User>> {
        self.authenticate_active_at(token, idle, activity, unix_now())
    }

    /// [`authenticate_active`](Self::authenticate_active) at `now` (Unix seconds).
    fn authenticate_active_at(
        &self,
        token: &str,
        idle: Duration,
        activity: bool,
        now: i64,
    ) -> Option<Arc<User>> {
        let key = digest(token);
        let username = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let live = sessions.get_mut(&key)?;
            let idle_until = live.last_seen.saturating_add(idle.as_secs() as i64);
            if live.expires <= now || idle_until <= now {
                drop(sessions);
                self.logout(token);
                return None;
            }
            if activity {
                live.last_seen = now;
            }
            live.username.clone()
        };
        self.active_user(&username)
    }

    /// Sets `username`'s password to `new_password` (hashed here, argon2id) and whether it
    /// must be changed at the next sign-in, writes `users.json`, and ends every other session
    /// of the user (`keep`, the one that asked, stays open). The policy is the caller's
    /// (`domain::password::check_new`), checked before.
    ///
    /// # Errors
    /// An unknown user; hashing or writing the file failed (nothing changed then).
    pub fn set_password(
        &self,
        username: &str,
        new_password: &str,
        must_change: bool,
        keep: Option<&str>,
    ) -> anyhow::Result<()> {
        let hash = hash_password(new_password)?;
        self.update_user(username, |user| {
            user.password_hash = hash;
            user.must_change_password = must_change;
        })?;
        self.end_sessions(username, keep);
        Ok(())
    }

    /// The live session whose token has this digest: its user and expiry (Unix seconds).
    pub fn session_by_digest(&self, key: &str) -> Option<(String, i64)> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(key)
            .map(|live| (live.username.clone(), live.expires))
    }

    /// Takes a session another instance opened (`key`, the token's digest); nothing when it
    /// is known already or has expired.
    ///
    /// # Errors
    /// The session could not be stored.
    pub fn adopt_session(&self, key: &str, username: &str, expires: i64) -> anyhow::Result<()> {
        let now = unix_now();
        if expires <= now || self.session_by_digest(key).is_some() {
            return Ok(());
        }
        {
            let db = self.session_db.lock().unwrap_or_else(|e| e.into_inner());
            db.execute(
                "INSERT OR IGNORE INTO sessions (digest, username, expires) VALUES (?1, ?2, ?3)",
                rusqlite::params![key, username, expires],
            )
            .context("failed to store a session of another instance")?;
        }
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.insert(
            key.to_owned(),
            Live {
                username: username.to_owned(),
                expires,
                last_seen: now,
            },
        );
        Ok(())
    }

    /// Ends the session whose token has this digest (signed out on another instance).
    pub fn drop_session(&self, key: &str) {
        let removed = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.remove(key).is_some()
        };
        if removed {
            let db = self.session_db.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(err) = db.execute("DELETE FROM sessions WHERE digest = ?1", [key]) {
                tracing::error!(error = %err, "failed to delete a session");
            }
        }
    }

    /// Ends every session of `username` but the one whose token has digest `keep`.
    pub fn end_sessions_but(&self, username: &str, keep: Option<&str>) {
        self.end_sessions_by_digest(username, keep.map(str::to_owned));
    }

    /// Takes a password hash another instance set (idempotent).
    ///
    /// # Errors
    /// An unknown user; writing `users.json` failed.
    pub fn adopt_password(
        &self,
        username: &str,
        password_hash: &str,
        must_change: bool,
    ) -> anyhow::Result<()> {
        if self.user(username).is_some_and(|u| {
            u.password_hash == password_hash && u.must_change_password == must_change
        }) {
            return Ok(());
        }
        self.update_user(username, |user| {
            user.password_hash = password_hash.to_owned();
            user.must_change_password = must_change;
        })
    }

    /// Ends every session of `username` but `keep`'s.
    fn end_sessions(&self, username: &str, keep: Option<&str>) {
        self.end_sessions_by_digest(username, keep.map(digest));
    }

    fn end_sessions_by_digest(&self, username: &str, kept: Option<String>) {
        let ended: Vec<String> = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let ended: Vec<String> = sessions
                .iter()
                .filter(|(key, live)| live.username == username && Some(*key) != kept.as_ref())
                .map(|(key, _)| key.clone())
                .collect();
            for key in &ended {
                sessions.remove(key);
            }
            ended
        };
        let db = self.session_db.lock().unwrap_or_else(|e| e.into_inner());
        for key in ended {
            if let Err(err) = db.execute("DELETE FROM sessions WHERE digest = ?1", [&key]) {
                tracing::error!(error = %err, "failed to delete a session");
            }
        }
    }

    /// Records that `username` must change the password at the next page (a sign-in with a
    /// handed-out password). Does nothing when already recorded.
    ///
    /// # Errors
    /// An unknown user; writing the file failed.
    pub fn require_password_change(&self, username: &str) -> anyhow::Result<()> {
        if self.user(username).is_some_and(|u| u.must_change_password) {
            return Ok(());
        }
        self.update_user(username, |user| user.must_change_password = true)
    }

    /// Changes one user and rewrites `users.json` under the write lock, so two changes at
    /// once cannot lose one; the map changes only once the file is in place.
    fn update_user(&self, username: &str, change: impl FnOnce(&mut User)) -> anyhow::Result<()> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let mut user = users
            .get(username)
            .map(|u| User::clone(u))
            .with_context(|| format!("no user `{username}`"))?;
        change(&mut user);
        let mut all: Vec<&User> = users
            .values()
            .filter(|u| u.username != username)
            .map(|u| &**u)
            .chain(std::iter::once(&user))
            .collect();
        all.sort_by(|a, b| a.username.cmp(&b.username));
        write_users(&self.users_path, &all)?;
        users.insert(username.to_owned(), Arc::new(user));
        Ok(())
    }

    /// Seconds a new session lasts.
    pub fn session_ttl() -> Duration {
        SESSION_TTL
    }
}

/// 32 random bytes from the OS, hex-encoded.
fn random_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A one-time password for a new user or a reset one (handed over once, changed at the first
/// sign-in): 4 groups of 4 letters and digits from the OS's random bytes, without the ones
/// easily misread (0/O, 1/l/I), e.g. `k7Qm-x3Tp-9bWe-Rz4h`, about 90 bits.
///
/// # Errors
/// When the OS gives no random bytes.
pub fn temporary_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
    let mut out = String::with_capacity(19);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
    }
    // Letters and digits both, so it passes the password rules like any chosen one.
    if !out.chars().any(|c| c.is_ascii_digit()) {
        out.replace_range(0..1, "7");
    }
    Ok(out)
}

/// Whether `password` matches the PHC string `stored`, computed in `memory` and compared in
/// constant time (what `PasswordVerifier::verify_password` does, without its allocation).
fn check_password(
    stored: &str,
    password: &[u8],
    memory: &mut Vec<argon2::Block>,
) -> Result<bool, LoginError> {
    let internal = |_| LoginError::Internal;
    let hash = PasswordHash::new(stored).map_err(|_| LoginError::Internal)?;
    let algorithm =
        argon2::Algorithm::try_from(hash.algorithm).map_err(|_| LoginError::Internal)?;
    let version = match hash.version {
        Some(v) => argon2::Version::try_from(v).map_err(|_| LoginError::Internal)?,
        None => argon2::Version::default(),
    };
    let params = argon2::Params::try_from(&hash).map_err(|_| LoginError::Internal)?;
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return Err(LoginError::Internal);
    };
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(internal)?;
    let mut out = [0u8; 64];
    let out = out.get_mut(..expected.len()).ok_or(LoginError::Internal)?;
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), argon2::Block::default());
    }
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut memory[..])
        .map_err(|_| LoginError::Internal)?;
    let computed = argon2::password_hash::Output::new(out).map_err(internal)?;
    Ok(computed == expected)
}

/// The OS gave no random bytes.
#[derive(Debug, thiserror::Error)]
#[error("the operating system gave no random bytes")]
struct RandomError;

/// Argon2id with the argon2 crate's defaults (`Argon2::default()`: version 0x13, m = 19,456
/// KiB, t = 2, p = 1, the OWASP minimum for argon2id): about 19 MiB and, in a release build,
/// some 20 ms of one core per hash. The parameters are stored in each PHC string, so a
/// stronger setting later still checks the old hashes.
fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("failed to get random salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| anyhow::anyhow!("bad salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("failed to hash password: {e}"))?
        .to_string())
}

/// Writes `users.json` whole: a temporary file, synced, renamed over the old one, the folder
/// synced, so a crash leaves the old file or the new one, never half of either.
fn write_users(path: &Path, users: &[&User]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(users).context("failed to encode users")?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut file = std::fs::File::create(&tmp)
            .with_context(|| format!("failed to write `{}`", tmp.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("failed to write `{}`", tmp.display()))?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("failed to move `{}` into place", tmp.display()))?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_tree_and_users_load_and_a_demo_user_logs_in() {
        let org = load_org().expect("org loads");
        assert!(org.units().len() > 1000);
        let dir = tempfile::tempdir().expect("tempdir");
        let directory = Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            "pw-1",
        )
        .expect("directory opens");
        for role in [
            Role::Operator,
            Role::ShiftLeader,
            Role::Dispatcher,
            Role::Handler,
            Role::Leader,
            Role::Supervisor,
            Role::Admin,
        ] {
            assert!(
                directory.users().iter().any(|u| u.roles.contains(&role)),
                "{role:?}"
            );
        }
        let (token, user) = directory.login("operator", "pw-1").expect("login");
        assert_eq!(user.username, "operator");
        assert_eq!(
            directory
                .authenticate(&token)
                .map(|u| u.username.clone())
                .as_deref(),
            Some("operator")
        );
        assert!(matches!(
            directory.login("operator", "wrong"),
            Err(LoginError::BadCredentials)
        ));
        assert!(matches!(
            directory.login("nobody", "pw-1"),
            Err(LoginError::BadCredentials)
        ));
        assert!(directory.authenticate("forged").is_none());
        // A second open reads the seeded file rather than re-seeding, and keeps the sessions.
        drop(directory);
        let again = Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            "other",
        )
        .expect("reopens");
        assert!(again.login("operator", "pw-1").is_ok());
        assert_eq!(
            again
                .authenticate(&token)
                .map(|u| u.username.clone())
                .as_deref(),
            Some("operator")
        );
        assert_eq!(again.logout(&token).as_deref(), Some("operator"));
        assert!(again.authenticate(&token).is_none());
        drop(again);
        let third = Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            "other",
        )
        .expect("reopens");
        assert!(
            third.authenticate(&token).is_none(),
            "a logout survives a restart too"
        );
    }

    #[test]
    fn a_new_password_is_kept_across_restarts_and_ends_the_user_s_other_sessions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let directory = Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            "pw-1",
        )
        .expect("directory opens");
        let (here, _) = directory.login("operator", "pw-1").expect("login");
        let (elsewhere, _) = directory.login("operator", "pw-1").expect("login");
        let (other_user, _) = directory.login("admin", "pw-1").expect("login");
        directory
            .require_password_change("operator")
            .expect("recorded");
        assert!(
            directory
                .user("operator")
                .expect("user")
                .must_change_password
        );
        directory
            .set_password("operator", "Hotline-2026", false, Some(&here))
            .expect("changed");
        assert!(
            !directory
                .user("operator")
                .expect("user")
                .must_change_password
        );
        assert!(
            directory.authenticate(&here).is_some(),
            "the asking session stays"
        );
        assert!(directory.authenticate(&elsewhere).is_none(), "others end");
        assert!(
            directory.authenticate(&other_user).is_some(),
            "other users' stay"
        );
        assert!(directory.login("operator", "pw-1").is_err());
        drop(directory);
        let again = Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            "pw-1",
        )
        .expect("reopens");
        assert!(again.login("operator", "Hotline-2026").is_ok());
        assert!(
            again.authenticate(&elsewhere).is_none(),
            "ended in the store too"
        );
        assert!(
            again
                .set_password("nobody", "Hotline-2026", false, None)
                .is_err()
        );
    }

    #[test]
    fn an_idle_session_ends_and_a_poll_does_not_keep_it_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let directory = Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            "pw-1",
        )
        .expect("directory opens");
        let (token, _) = directory.login("operator", "pw-1").expect("login");
        let idle = Duration::from_secs(600);
        let t0 = unix_now();
        assert!(
            directory
                .authenticate_active_at(&token, idle, true, t0)
                .is_some()
        );
        assert!(
            directory
                .authenticate_active_at(&token, idle, false, t0 + 400)
                .is_some(),
            "a poll within the idle time is let through"
        );
        assert!(
            directory
                .authenticate_active_at(&token, idle, true, t0 + 700)
                .is_none(),
            "the poll did not count as activity: the session has ended"
        );
        let (busy, _) = directory.login("operator", "pw-1").expect("login");
        let t0 = unix_now();
        for at in [t0 + 400, t0 + 800, t0 + 1200] {
            assert!(
                directory
                    .authenticate_active_at(&busy, idle, true, at)
                    .is_some(),
                "activity restarts the idle time"
            );
        }
        assert!(
            directory.authenticate(&token).is_none(),
            "ended for the API too"
        );
    }

    #[test]
    fn an_unknown_user_is_checked_against_a_hash_as_costly_as_a_real_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let directory = Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            "pw-1",
        )
        .expect("directory opens");
        let users = directory.users();
        let real = PasswordHash::new(&users[0].password_hash).expect("PHC");
        let dummy = PasswordHash::new(&directory.dummy_hash).expect("PHC");
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        // Not even the dummy's own password would let an unknown user in.
        assert!(matches!(
            directory.verify("nobody", "pw-1", &mut Vec::new()),
            Err(LoginError::BadCredentials)
        ));
    }

    #[test]
    fn the_allocation_free_check_agrees_with_argon2s_own() {
        use argon2::password_hash::PasswordVerifier;
        let stored = hash_password("secret-1").expect("hash");
        let hash = PasswordHash::new(&stored).expect("PHC");
        let mut memory = Vec::new();
        for (password, right) in [("secret-1", true), ("secret-2", false), ("", false)] {
            assert_eq!(
                check_password(&stored, password.as_bytes(), &mut memory).expect("checked"),
                right
            );
            assert_eq!(
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok(),
                right
            );
        }
        assert_eq!(memory.len(), 19 * 1024, "19 MiB of 1 KiB blocks, reused");
    }
}
