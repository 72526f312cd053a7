//! Access to the service: the login path with its guards, and the audit of access.
//!
//! A login is checked in this order: the lock-out (`domain::login_guard`, per account and per
//! client address, in memory; on a store several instances share, a known account's failures,
//! successes and unlocks are also `accounts` facts that every instance's guard takes in, so
//! the account's limit holds across them), then a place among the password hashes (at most one per core
//! at once, a short queue, else `503 too_busy`), then argon2 off the async threads
//! (`Directory::verify`, an unknown user against a dummy hash), then, for a failure, the
//! growing delay, slept without holding a hashing place. Every step is recorded in the
//! `security` stream (`events`), never a password.
//!
//! # Layout
//! - `events`: the security events (the stored contract) and the writer that appends them
//!   in the background, aggregating failed logins of unknown names.
//!
//! # Invariants
//! - At most [`Access::hashing_places`] password hashes run at once, whatever the traffic:
//!   memory is bounded by that number times argon2's 19 MiB.
//! - The guards' memory is bounded: known accounts are always tracked, unknown names and
//!   client addresses each up to [`MAX_TRACKED`] keys (idle ones are forgotten first).
//! - Locks live in memory: a restart lifts them (the `security` stream keeps the record).

pub mod events;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::login_guard::{Admission, Attempts, LoginPolicy};
use tokio::sync::Semaphore;

use crate::app::accounts::AccountFact;
use crate::app::{App, Clock};
use crate::directory::{LoginError, User};
pub use events::{LockKind, SecurityEvent, SecurityLog};

/// Unknown names, and client addresses, tracked at most (each), so that a flood of made-up
/// names or addresses cannot fill memory.
pub const MAX_TRACKED: usize = 10_000;

/// Longest username kept as a guard's key: longer names count as their first 64 characters.
const MAX_KEY_CHARS: usize = 64;

/// How long a login waits for a hashing place before it is answered `503 too_busy`.
const HASHING_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Logins waiting for a hashing place, per place, before further ones are answered at once.
const WAITING_PER_PLACE: usize = 8;

/// The guard settings (`--login-max-failures`, `--login-max-failures-per-address`,
/// `--login-lock-minutes`, `--trusted-proxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSettings {
    /// Failed logins of one account within the window that lock it.
    pub max_failures: u32,
    /// Failed logins from one client address within the window that lock it.
    pub max_failures_per_address: u32,
    /// The window and the length of a lock, in minutes.
    pub lock_minutes: u32,
    /// Proxies whose `X-Forwarded-For` names the client; from any other peer the header is
    /// ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Minutes a workbench session may go without the user's activity before it ends.
    pub session_idle_minutes: u32,
    /// Mark the workbench's cookies `Secure` (the service is reached over TLS, through a
    /// proxy): the browser then never sends them over plain HTTP.
    pub secure_cookies: bool,
}

impl Default for AccessSettings {
    fn default() -> Self {
        AccessSettings {
            max_failures: 10,
            max_failures_per_address: 30,
            lock_minutes: 15,
            trusted_proxies: Vec::new(),
            session_idle_minutes: 30,
            secure_cookies: false,
        }
    }
}

/// Why a login was refused before or instead of its password check.
#[derive(Debug)]
pub enum LoginRefusal {
    /// Unknown user or wrong password.
    BadCredentials,
    /// The account or the address is locked: try again after so many seconds.
    Locked {
        /// Seconds until the lock ends.
        retry_after: u64,
    },
    /// As many attempts of that account or address are being checked as it has failures
    /// left: try again in a second.
    TooManyAttempts,
    /// Every hashing place is taken and the queue is full or too slow.
    TooBusy,
    /// The session could not be stored: the disk takes no writes (503 `storage_unavailable`).
    StorageUnavailable,
    /// Hashing or the session store failed.
    Internal(anyhow::Error),
}

impl From<LoginRefusal> for crate::app::failure::Failure {
    fn from(refusal: LoginRefusal) -> Self {
        use crate::app::failure::Failure;
        match refusal {
            LoginRefusal::BadCredentials => Failure::InvalidCredentials,
            LoginRefusal::Locked { retry_after } => Failure::LoginLocked { retry_after },
            LoginRefusal::TooManyAttempts => Failure::TooManyAttempts,
            LoginRefusal::TooBusy => Failure::TooBusy,
            LoginRefusal::Internal(cause) => Failure::Internal(cause),
            LoginRefusal::StorageUnavailable => {
                Failure::StorageUnavailable(anyhow::anyhow!("the session could not be stored"))
            }
        }
    }
}

/// One lock, as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// An account or a client address.
    pub kind: LockKind,
    /// The username, or the address (an IPv6 client as its /64 network's first address).
    pub key: String,
    /// Failures within the window.
    pub failures: u32,
    /// When it started.
    pub since: Option<DateTime<Utc>>,
    /// When it ends.
    pub until: DateTime<Utc>,
}

/// The guards' state: one [`Attempts`] per key.
#[derive(Default)]
struct Guards {
    accounts: HashMap<String, Attempts>,
    /// How many of `accounts` are not users.
    unknown_accounts: usize,
    addresses: HashMap<String, Attempts>,
}

/// The login path and the audit of access.
pub struct Access {
    app: Arc<App>,
    account_policy: LoginPolicy,
    address_policy: LoginPolicy,
    guards: Mutex<Guards>,
    hashing: Arc<Semaphore>,
    places: usize,
    /// Argon2's working memory, one buffer per hashing place, reused by every check.
    memory: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
    waiting: AtomicUsize,
    trusted_proxies: Vec<IpAddr>,
    session_idle: std::time::Duration,
    secure_cookies: bool,
    log: SecurityLog,
    clock: Arc<dyn Clock>,
    /// Attempts whose name or address found no room among the tracked keys.
    untracked: std::sync::atomic::AtomicU64,
}

/// What a successful login returns.
pub struct LoggedIn {
    /// The bearer token.
    pub token: String,
    /// The user.
    pub user: User,
}

/// The key of a client address: IPv4 as it is, IPv6 by its /64 network (one subscriber's
/// share), an IPv4-mapped IPv6 address as IPv4.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0).to_string()
            }
        },
    }
}

/// The client of a request: its peer, or, when the peer is one of the `trusted` proxies, the
/// last address of `X-Forwarded-For` that is not itself a trusted proxy (the addresses
/// before it were written by the client and prove nothing).
pub fn client_address(trusted: &[IpAddr], peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    forwarded_for
        .into_iter()
        .flat_map(|h| h.rsplit(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

fn account_key(username: &str) -> String {
    username.chars().take(MAX_KEY_CHARS).collect()
}

/// Admits an attempt for `key` in `map`, tracking a new key only while there is room
/// (`room`); `None` when the key is not tracked.
fn admit(
    map: &mut HashMap<String, Attempts>,
    key: &str,
    policy: &LoginPolicy,
    now: DateTime<Utc>,
    room: bool,
) -> Option<Admission> {
    if !map.contains_key(key) {
        if !room {
            return None;
        }
        map.insert(key.to_owned(), Attempts::default());
    }
    map.get_mut(key).map(|a| policy.admit(a, now))
}

impl Access {
    /// The login path of `app`'s directory, recording into `log`.
    pub fn new(app: Arc<App>, settings: &AccessSettings, log: SecurityLog) -> Self {
        let places = std::thread::available_parallelism().map_or(1, |n| n.get());
        let clock = app.clock();
        Access {
            account_policy: LoginPolicy::new(settings.max_failures, settings.lock_minutes),
            address_policy: LoginPolicy::new(
                settings.max_failures_per_address,
                settings.lock_minutes,
            ),
            app,
            guards: Mutex::new(Guards::default()),
            hashing: Arc::new(Semaphore::new(places)),
            places,
            memory: Arc::new(Mutex::new(vec![Vec::new(); places])),
            waiting: AtomicUsize::new(0),
            trusted_proxies: settings.trusted_proxies.clone(),
            session_idle: std::time::Duration::from_secs(
                u64::from(settings.session_idle_minutes.max(1)) * 60,
            ),
            secure_cookies: settings.secure_cookies,
            log,
            clock,
            untracked: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many password hashes may run at once (one per core).
    pub fn hashing_places(&self) -> usize {
        self.places
    }

    /// How long a workbench session may go without the user's activity.
    pub fn session_idle(&self) -> std::time::Duration {
        self.session_idle
    }

    /// Whether the workbench's cookies are `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    /// The security log.
    pub fn log(&self) -> &SecurityLog {
        &self.log
    }

    /// The client of a request ([`client_address`] with `--trusted-proxy`).
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        client_address(&self.trusted_proxies, peer, forwarded_for)
    }

    /// Checks a login from `client`.
    ///
    /// # Errors
    /// A [`LoginRefusal`].
    pub async fn login(
        &self,
        username: String,
        password: String,
        client: IpAddr,
    ) -> Result<LoggedIn, LoginRefusal> {
        let address = address_key(client);
        let logged_in = self
            .guarded(username, password, client, |app, user, password| {
                let token = app.directory.open_session(&user).map_err(|err| match err {
                    LoginError::StorageUnavailable => LoginRefusal::StorageUnavailable,
                    _ => LoginRefusal::Internal(anyhow::anyhow!("failed to open a session")),
                })?;
                // A handed-out password (the shared 666666) is changed before anything else.
                if domain::password::must_change(&password, &user.username)
                    && let Err(err) = app.directory.require_password_change(&user.username)
                {
                    tracing::error!(error = %format!("{err:#}"), "failed to record a required password change");
                }
                let user = app.directory.user(&user.username).unwrap_or(user);
                Ok(LoggedIn {
                    token,
                    user: User::clone(&user),
                })
            })
            .await?;
        // On a store several instances share, they all learn the session (and a password
        // change now required); if the store cannot take it, the sign-in did not happen.
        let mut facts: Vec<_> = self
            .app
            .session_fact(&logged_in.token)
            .into_iter()
            .collect();
        if logged_in.user.must_change_password {
            facts.extend(self.app.password_fact(&logged_in.user.username));
        }
        if let Err(err) = self.app.share(facts).await {
            self.app.directory.logout(&logged_in.token);
            tracing::error!(error = %err, "could not record a session for the other instances");
            return Err(if err.is_storage_unavailable() {
                LoginRefusal::StorageUnavailable
            } else {
                LoginRefusal::Internal(anyhow::anyhow!("failed to share a session"))
            });
        }
        self.log.record(
            self.clock.now(),
            SecurityEvent::LoginSucceeded {
                username: logged_in.user.username.clone(),
                address,
            },
        );
        Ok(logged_in)
    }

    /// 修改密码: `username` changes their password from `current` to `new` (already checked
    /// against `domain::password::check_new` by the caller). The current password is checked
    /// as a login is (the lock-out counts a wrong one: a session left open does not let
    /// anyone guess the password), every other session of the user ends (`keep_token`'s
    /// stays), and the change is in the security log.
    ///
    /// # Errors
    /// A [`LoginRefusal`]; [`LoginRefusal::BadCredentials`] for a wrong current password.
    pub async fn change_password(
        &self,
        username: String,
        current: String,
        new: String,
        keep_token: String,
        client: IpAddr,
    ) -> Result<(), LoginRefusal> {
        let address = address_key(client);
        let who = username.clone();
        let kept = crate::directory::digest(&keep_token);
        self.guarded(username, current, client, move |app, user, _| {
            app.directory
                .set_password(&user.username, &new, false, Some(&keep_token))
                .map_err(LoginRefusal::Internal)
        })
        .await?;
        // The other instances take the new password and end the user's other sessions too.
        let mut facts: Vec<_> = self.app.password_fact(&who).into_iter().collect();
        facts.push(crate::app::accounts::AccountFact::SessionsEnded {
            username: who.clone(),
            keep: Some(kept),
        });
        if let Err(err) = self.app.share(facts).await {
            tracing::error!(error = %err, "could not tell the other instances of a password change");
        }
        self.log.record(
            self.clock.now(),
            SecurityEvent::PasswordChanged {
                username: who,
                address,
            },
        );
        Ok(())
    }

    /// A password check under the lock-out: admitted, checked (bounded hashing, off the
    /// async threads), counted; on success `then` runs with the user and the password, still
    /// off the async threads and holding the hashing place (it may hash again).
    async fn guarded<T: Send + 'static>(
        &self,
        username: String,
        password: String,
        client: IpAddr,
        then: impl FnOnce(&App, Arc<User>, String) -> Result<T, LoginRefusal> + Send + 'static,
    ) -> Result<T, LoginRefusal> {
        let account = account_key(&username);
        let address = address_key(client);
        let known = self.app.directory.user(&username).is_some();
        self.admit(&account, known, &address)?;
        let res = self.check(username.clone(), password, then).await;
        let now = self.clock.now();
        match res {
            Ok(done) => {
                let had_failures = self.account_failures(&account, now) > 0;
                // The account's failures are forgiven; the address's are not, or one
                // valid account would let its address guess others' passwords for ever.
                self.settle(
                    &account,
                    &address,
                    |policy, a| policy.succeeded(a),
                    |policy, a| policy.abandoned(a),
                );
                if had_failures {
                    self.share_login(AccountFact::LoginSucceeded {
                        username: account.clone(),
                        instance: self.app.instance,
                    })
                    .await;
                }
                Ok(done)
            }
            Err(LoginRefusal::BadCredentials) => {
                if known {
                    self.share_login(AccountFact::LoginFailed {
                        username: account.clone(),
                        at: now.timestamp_micros(),
                        instance: self.app.instance,
                    })
                    .await;
                }
                let delay = self.failed(&account, known, &address, now);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Err(LoginRefusal::BadCredentials)
            }
            Err(other) => {
                let abandoned = |policy: &LoginPolicy, a: &mut Attempts| policy.abandoned(a);
                self.settle(&account, &address, abandoned, abandoned);
                Err(other)
            }
        }
    }

    /// The lock-out's verdict before the password is checked; an admitted attempt is in
    /// flight on both keys.
    fn admit(&self, account: &str, known: bool, address: &str) -> Result<(), LoginRefusal> {
        let now = self.clock.now();
        let mut guards = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        let guards = &mut *guards;
        if !known
            && !guards.accounts.contains_key(account)
            && guards.unknown_accounts >= MAX_TRACKED
        {
            let (policy, users) = (&self.account_policy, &self.app.directory);
            guards
                .accounts
                .retain(|k, a| users.user(k).is_some() || !a.is_idle(policy, now));
            guards.unknown_accounts = guards
                .accounts
                .keys()
                .filter(|k| users.user(k).is_none())
                .count();
        }
        if !guards.addresses.contains_key(address) && guards.addresses.len() >= MAX_TRACKED {
            let policy = &self.address_policy;
            guards.addresses.retain(|_, a| !a.is_idle(policy, now));
        }
        let room = known || guards.unknown_accounts < MAX_TRACKED;
        let was_tracked = guards.accounts.contains_key(account);
        let by_account = admit(
            &mut guards.accounts,
            account,
            &self.account_policy,
            now,
            room,
        );
        if !known && !was_tracked && by_account.is_some() {
            guards.unknown_accounts += 1;
        }
        let room = guards.addresses.len() < MAX_TRACKED;
        let by_address = admit(
            &mut guards.addresses,
            address,
            &self.address_policy,
            now,
            room,
        );
        if by_account.is_none() || by_address.is_none() {
            let n = self.untracked.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    n_untracked = n,
                    max_tracked = MAX_TRACKED,
                    "login guards full: an unknown name or an address is not tracked"
                );
            }
        }
        let refusal = |admission: Option<Admission>| match admission {
            Some(Admission::Locked { until }) => Some(LoginRefusal::Locked {
                retry_after: (until - now).num_seconds().max(1) as u64,
            }),
            Some(Admission::Busy) => Some(LoginRefusal::TooManyAttempts),
            Some(Admission::Admitted) | None => None,
        };
        let refused = match (refusal(by_account), refusal(by_address)) {
            (
                Some(LoginRefusal::Locked { retry_after: a }),
                Some(LoginRefusal::Locked { retry_after: b }),
            ) => Some(LoginRefusal::Locked {
                retry_after: a.max(b),
            }),
            (Some(locked @ LoginRefusal::Locked { .. }), _)
            | (_, Some(locked @ LoginRefusal::Locked { .. })) => Some(locked),
            (Some(other), _) | (None, Some(other)) => Some(other),
            (None, None) => None,
        };
        let Some(refused) = refused else {
            return Ok(());
        };
        // The key that admitted the attempt gets its place back.
        if by_account == Some(Admission::Admitted)
            && let Some(a) = guards.accounts.get_mut(account)
        {
            self.account_policy.abandoned(a);
        }
        if by_address == Some(Admission::Admitted)
            && let Some(a) = guards.addresses.get_mut(address)
        {
            self.address_policy.abandoned(a);
        }
        Err(refused)
    }

    /// Reports the outcome of an admitted attempt to each key.
    fn settle(
        &self,
        account: &str,
        address: &str,
        on_account: impl Fn(&LoginPolicy, &mut Attempts),
        on_address: impl Fn(&LoginPolicy, &mut Attempts),
    ) {
        let mut guards = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = guards.accounts.get_mut(account) {
            on_account(&self.account_policy, a);
        }
        if let Some(a) = guards.addresses.get_mut(address) {
            on_address(&self.address_policy, a);
        }
    }

    /// Records a failed attempt on both keys and in the log; returns the delay of its answer.
    fn failed(&self, account: &str, known: bool, address: &str, now: DateTime<Utc>) -> Duration {
        let mut guards = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        let by_account = guards
            .accounts
            .get_mut(account)
            .map(|a| self.account_policy.failed(a, now));
        let by_address = guards
            .addresses
            .get_mut(address)
            .map(|a| self.address_policy.failed(a, now));
        drop(guards);
        if known {
            self.log.record(
                now,
                SecurityEvent::LoginFailed {
                    username: account.to_owned(),
                    address: address.to_owned(),
                    failures: by_account.map_or(0, |f| f.failures),
                },
            );
        } else {
            // Never the name itself: a mistyped password often lands in the username field.
            self.log.unknown_user_failed(now, address);
        }
        let lock = |kind, key: &str, failure: Option<domain::login_guard::Failure>| {
            if let Some(f) = failure
                && let Some(until) = f.locked_until
            {
                tracing::info!(
                    kind = kind_code(kind),
                    failures = f.failures,
                    "login locked"
                );
                self.log.record(
                    now,
                    SecurityEvent::LoginLocked {
                        kind,
                        key: key.to_owned(),
                        failures: f.failures,
                        until,
                    },
                );
            }
        };
        lock(LockKind::Account, account, by_account);
        lock(LockKind::Address, address, by_address);
        let delay = by_account
            .map(|f| f.delay)
            .into_iter()
            .chain(by_address.map(|f| f.delay))
            .max()
            .unwrap_or_default();
        delay.to_std().unwrap_or_default()
    }

    /// Waits for a hashing place (bounded), then checks the password off the async threads.
    async fn check<T: Send + 'static>(
        &self,
        username: String,
        password: String,
        then: impl FnOnce(&App, Arc<User>, String) -> Result<T, LoginRefusal> + Send + 'static,
    ) -> Result<T, LoginRefusal> {
        let permit = match self.hashing.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.places * WAITING_PER_PLACE {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(LoginRefusal::TooBusy);
                }
                let waited =
                    tokio::time::timeout(HASHING_QUEUE_WAIT, self.hashing.clone().acquire_owned())
                        .await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                match waited {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) | Err(_) => return Err(LoginRefusal::TooBusy),
                }
            }
        };
        let (app, pool) = (self.app.clone(), self.memory.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // The permit guarantees a buffer: at most `places` checks run at once.
            let mut memory = pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .unwrap_or_default();
            let checked = app.directory.verify(&username, &password, &mut memory);
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(memory);
            let user = checked.map_err(|err| match err {
                LoginError::BadCredentials => LoginRefusal::BadCredentials,
                LoginError::StorageUnavailable => LoginRefusal::StorageUnavailable,
                LoginError::Internal => {
                    LoginRefusal::Internal(anyhow::anyhow!("password check failed"))
                }
            })?;
            then(&app, user, password)
        })
        .await
        .map_err(|e| LoginRefusal::Internal(e.into()))?
    }

    /// Every lock in force, the latest to end first.
    pub fn locks(&self) -> Vec<LockInfo> {
        let now = self.clock.now();
        let guards = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<LockInfo> = Vec::new();
        for (kind, map, policy) in [
            (LockKind::Account, &guards.accounts, &self.account_policy),
            (LockKind::Address, &guards.addresses, &self.address_policy),
        ] {
            for (key, attempts) in map {
                if let Some(until) = attempts.locked_until(now) {
                    out.push(LockInfo {
                        kind,
                        key: key.clone(),
                        failures: attempts.failures(policy, now),
                        since: attempts.locked_since(),
                        until,
                    });
                }
            }
        }
        out.sort_by(|a, b| b.until.cmp(&a.until).then_with(|| a.key.cmp(&b.key)));
        out
    }

    /// An administrator lifts a lock (an address given in any form, e.g. a full IPv6
    /// address, is read as its key); returns whether there was one. Recorded.
    pub fn unlock(&self, kind: LockKind, key: &str, by: &str) -> bool {
        let now = self.clock.now();
        let key = match kind {
            LockKind::Account => account_key(key),
            LockKind::Address => match key.parse::<IpAddr>() {
                Ok(ip) => address_key(ip),
                Err(_) => return false,
            },
        };
        let mut guards = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        let (map, policy) = match kind {
            LockKind::Account => (&mut guards.accounts, &self.account_policy),
            LockKind::Address => (&mut guards.addresses, &self.address_policy),
        };
        let lifted = map.get_mut(&key).is_some_and(|a| policy.unlock(a, now));
        drop(guards);
        if kind == LockKind::Account && self.app.directory.user(&key).is_some() {
            // Lifted on every instance sharing the store (the facts are asynchronous; an
            // administrator's unlock is rare, so it is sent in the background).
            let (app, username) = (self.app.clone(), key.clone());
            tokio::spawn(async move {
                let fact = AccountFact::LoginUnlocked {
                    username,
                    instance: app.instance,
                };
                if let Err(err) = app.share(vec![fact]).await {
                    tracing::warn!(error = %err, "could not tell the other instances of an unlock");
                }
            });
        }
        if lifted {
            tracing::info!(kind = kind_code(kind), by, "login lock lifted");
            self.log.record(
                now,
                SecurityEvent::LoginUnlocked {
                    kind,
                    key,
                    by: by.to_owned(),
                },
            );
        }
        lifted
    }

    /// The account's failures within the window at `now`.
    fn account_failures(&self, account: &str, now: DateTime<Utc>) -> u32 {
        let guards = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        guards
            .accounts
            .get(account)
            .map_or(0, |a| a.failures(&self.account_policy, now))
    }

    /// Tells the other instances sharing the store of a sign-in's outcome (nothing on a
    /// store this process owns). A failure to record it is logged: the lock-out here holds
    /// regardless.
    async fn share_login(&self, fact: AccountFact) {
        if let Err(err) = self.app.share(vec![fact]).await {
            tracing::warn!(error = %err, "could not tell the other instances of a sign-in");
        }
    }

    /// Takes another instance's sign-in fact into the account's guard: a failure counts
    /// here (and may lock the account here too), a success or an unlock forgives.
    pub fn take_fact(&self, fact: &AccountFact) {
        let now = self.clock.now();
        let policy = &self.account_policy;
        let mut guards = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        match fact {
            AccountFact::LoginFailed { username, at, .. } => {
                let Some(at) = DateTime::from_timestamp_micros(*at) else {
                    return;
                };
                let key = account_key(username);
                // Only accounts of the directory are shared, so this keeps the map bounded.
                if self.app.directory.user(&key).is_none() {
                    return;
                }
                let attempts = guards.accounts.entry(key).or_default();
                if let Some(until) = policy.failed_elsewhere(attempts, at, now) {
                    // The instance where the lock-starting failure happened records it in
                    // the audit; here it is only said.
                    tracing::info!(kind = "account", until = %until, "login locked after failures on another instance");
                }
            }
            AccountFact::LoginSucceeded { username, .. } => {
                if let Some(a) = guards.accounts.get_mut(&account_key(username)) {
                    policy.succeeded_elsewhere(a);
                }
            }
            AccountFact::LoginUnlocked { username, .. } => {
                if let Some(a) = guards.accounts.get_mut(&account_key(username)) {
                    policy.unlock(a, now);
                }
            }
            _ => {}
        }
    }

    /// Records a logout.
    pub fn logged_out(&self, username: String) {
        self.log
            .record(self.clock.now(), SecurityEvent::LoggedOut { username });
    }
}

fn kind_code(kind: LockKind) -> &'static str {
    match kind {
        LockKind::Account => "account",
        LockKind::Address => "address",
    }
}

/// The client's address as the login guards count it, for the API and the pages alike: the
/// connection's peer, or what a trusted proxy's `X-Forwarded-For` says (`--trusted-proxy`;
/// from any other peer the header is ignored).
pub struct ClientAddress(pub IpAddr);

impl axum::extract::FromRequestParts<crate::app::AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::app::AppState,
    ) -> Result<Self, Self::Rejection> {
        // Served without connection info (a router tested alone): an unspecified address.
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let forwarded = (!forwarded.is_empty()).then_some(forwarded.as_str());
        Ok(ClientAddress(state.access.client_address(peer, forwarded)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    struct Now;

    impl Clock for Now {
        fn now(&self) -> DateTime<Utc> {
            Utc::now()
        }
    }

    /// An `Access` over a fresh data directory whose demo accounts share `password`.
    async fn access_with(password: &str) -> (Access, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("dir");
        let store: Arc<dyn crate::store::EventStore> = Arc::new(
            crate::store::sqlite::SqliteStore::open(&dir.path().join("events.db")).expect("store"),
        );
        let directory = crate::directory::Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            password,
        )
        .expect("users");
        let app = Arc::new(App::new(
            store.clone(),
            Arc::new(crate::directory_log::SharedOrg::new(
                crate::directory_log::demo_snapshot().expect("demo"),
            )),
            Arc::new(crate::rules_log::shared_base().expect("rules")),
            directory,
            Arc::new(Now),
        ));
        let log = SecurityLog::start(store).0;
        (Access::new(app, &AccessSettings::default(), log), dir)
    }

    #[tokio::test]
    async fn a_sign_in_with_the_shared_initial_password_must_change_it_first() {
        let local = IpAddr::from([127, 0, 0, 1]);
        let (access, _dir) = access_with("666666").await;
        let signed_in = access
            .login("operator".into(), "666666".into(), local)
            .await
            .expect("signed in");
        assert!(signed_in.user.must_change_password);
        access
            .change_password(
                "operator".into(),
                "666666".into(),
                "Hotline-2026".into(),
                signed_in.token.clone(),
                local,
            )
            .await
            .expect("changed");
        let again = access
            .login("operator".into(), "Hotline-2026".into(), local)
            .await
            .expect("signed in");
        assert!(!again.user.must_change_password);
        assert!(matches!(
            access
                .change_password(
                    "operator".into(),
                    "wrong-1".into(),
                    "Hotline-2027".into(),
                    again.token,
                    local,
                )
                .await,
            Err(LoginRefusal::BadCredentials)
        ));
        let (chosen, _dir) = access_with("e2e-secret-12345").await;
        let signed_in = chosen
            .login("operator".into(), "e2e-secret-12345".into(), local)
            .await
            .expect("signed in");
        assert!(
            !signed_in.user.must_change_password,
            "a chosen password stays"
        );
    }

    #[test]
    fn an_ipv6_client_counts_by_its_network_and_a_mapped_ipv4_as_ipv4() {
        let v6: IpAddr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().expect("ip");
        assert_eq!(address_key(v6), "2001:db8:1:2::");
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
        assert_eq!(address_key(mapped), "10.1.2.3");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let proxy = [ip("10.0.0.1")];
        let spoofed = Some("1.1.1.1, 2.2.2.2");
        assert_eq!(client_address(&[], ip("9.9.9.9"), spoofed), ip("9.9.9.9"));
        assert_eq!(
            client_address(&proxy, ip("9.9.9.9"), spoofed),
            ip("9.9.9.9")
        );
        assert_eq!(
            client_address(&proxy, ip("10.0.0.1"), spoofed),
            ip("2.2.2.2")
        );
        assert_eq!(
            client_address(&proxy, ip("10.0.0.1"), Some("3.3.3.3, 10.0.0.1")),
            ip("3.3.3.3"),
            "the proxy's own hop is skipped"
        );
        assert_eq!(
            client_address(&proxy, ip("10.0.0.1"), Some("junk")),
            ip("10.0.0.1")
        );
        assert_eq!(client_address(&proxy, ip("10.0.0.1"), None), ip("10.0.0.1"));
    }

    #[test]
    fn a_long_username_is_kept_as_its_first_characters() {
        assert_eq!(
            account_key(&"名".repeat(500)).chars().count(),
            MAX_KEY_CHARS
        );
    }
}
