//! The audit of access and the login locks: `GET /api/v1/security/events`,
//! `GET /api/v1/admin/locks`, `DELETE /api/v1/admin/locks/accounts/{username}`,
//! `DELETE /api/v1/admin/locks/addresses/{address}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::org::Level;
use domain::roles::Role;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::{ApiQuery, Caller};
use super::{AppState, ts};
use crate::access::events::RecordedSecurityEvent;
use crate::access::{LockInfo, LockKind, SecurityEvent};
use crate::directory::User;

/// Security events per page by default, and at most.
const PER_PAGE: u64 = 50;
const MAX_PER_PAGE: u64 = 200;
/// How deep the pages of security events go (the newest 10,000).
const MAX_DEPTH: u64 = 10_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(security_events))
        .routes(routes!(locks))
        .routes(routes!(unlock_account))
        .routes(routes!(unlock_address))
}

fn require_admin(user: &User) -> Result<(), ApiError> {
    if user.roles.contains(&Role::Admin) {
        return Ok(());
    }
    Err(ApiError::role_not_allowed(
        "只有系统管理员可以管理登录锁定",
        "login locks are for `admin` only",
        &[Role::Admin],
    ))
}

/// Paging of the security events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Page, from 1 (default 1); at most the newest 10,000 events can be paged to.
    #[param(minimum = 1)]
    page: Option<u64>,
    /// Events per page (default 50, 1 to 200).
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<u64>,
}

/// A security event: a login, a failed login, a lock, an unlock, a logout.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEventView {
    /// Its position in the event store.
    position: u64,
    /// When (RFC 3339, Asia/Shanghai).
    at: String,
    /// `login_succeeded`, `login_failed` (a wrong password for an existing user),
    /// `unknown_user_logins_failed` (failed logins for names that are no user, counted per
    /// address and minute; the names are not kept), `login_locked`, `login_unlocked`,
    /// `logged_out`, `password_changed`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The user (logins, failures, logouts).
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// The client address (logins and failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    /// Locks: `account` or `address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_kind: Option<&'static str>,
    /// Locks: the username or the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_key: Option<String>,
    /// Failures within the window (failed logins of a user, locks).
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<u32>,
    /// `unknown_user_logins_failed`: how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    /// `unknown_user_logins_failed`: the first and the last of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_at: Option<String>,
    /// `login_locked`: when the lock ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    /// `login_unlocked`: the administrator who lifted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
}

fn lock_code(kind: LockKind) -> &'static str {
    match kind {
        LockKind::Account => "account",
        LockKind::Address => "address",
    }
}

impl From<RecordedSecurityEvent> for SecurityEventView {
    fn from(rec: RecordedSecurityEvent) -> Self {
        let mut view = SecurityEventView {
            position: rec.position,
            at: ts(rec.at),
            kind: rec.event.type_name(),
            username: None,
            address: None,
            lock_kind: None,
            lock_key: None,
            failures: None,
            count: None,
            first_at: None,
            last_at: None,
            until: None,
            by: None,
        };
        match rec.event {
            SecurityEvent::LoginSucceeded { username, address }
            | SecurityEvent::PasswordChanged { username, address } => {
                view.username = Some(username);
                view.address = Some(address);
            }
            SecurityEvent::LoginFailed {
                username,
                address,
                failures,
            } => {
                view.username = Some(username);
                view.address = Some(address);
                view.failures = Some(failures);
            }
            SecurityEvent::UnknownUserLoginsFailed {
                address,
                count,
                first_at,
                last_at,
            } => {
                view.address = Some(address);
                view.count = Some(count);
                view.first_at = Some(ts(first_at));
                view.last_at = Some(ts(last_at));
            }
            SecurityEvent::LoginLocked {
                kind,
                key,
                failures,
                until,
            } => {
                view.lock_kind = Some(lock_code(kind));
                view.lock_key = Some(key);
                view.failures = Some(failures);
                view.until = Some(ts(until));
            }
            SecurityEvent::LoginUnlocked { kind, key, by } => {
                view.lock_kind = Some(lock_code(kind));
                view.lock_key = Some(key);
                view.by = Some(by);
            }
            SecurityEvent::LoggedOut { username } => view.username = Some(username),
        }
        view
    }
}

/// A page of security events.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEventsPage {
    /// Every security event recorded.
    total: u64,
    /// This page, newest first.
    events: Vec<SecurityEventView>,
}

/// The audit of access (logins, failed logins, locks, unlocks, logouts), newest first; for
/// administrators and the city's efficiency office (`supervisor` at a city-level unit).
/// Failed logins of names that are no user are counted per address and minute, without the
/// names. Events reach the list a moment after they happen (they are written in the
/// background).
#[utoipa::path(get, path = "/api/v1/security/events", tag = "security", params(EventsQuery),
    responses((status = 200, body = SecurityEventsPage), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn security_events(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<SecurityEventsPage>, ApiError> {
    let city_supervisor = user.roles.contains(&Role::Supervisor)
        && app.org().get(&user.unit_id).map(|u| u.level) == Some(Level::City);
    if !user.roles.contains(&Role::Admin) && !city_supervisor {
        return Err(ApiError::role_not_allowed(
            "只有系统管理员和市效能办可以查看安全审计记录",
            "the security events are for `admin` and the city's `supervisor` only",
            &[Role::Admin, Role::Supervisor],
        ));
    }
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`per_page` must be 1 to {MAX_PER_PAGE}"),
        ));
    }
    if page < 1 || (page - 1).saturating_mul(per_page) >= MAX_DEPTH {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "`page` must be at least 1 and reach no deeper than the newest {MAX_DEPTH} events"
            ),
        ));
    }
    let (total, events) = app
        .access
        .log()
        .page(page, per_page)
        .await
        .map_err(ApiError::Internal)?;
    Ok(Json(SecurityEventsPage {
        total,
        events: events.into_iter().map(SecurityEventView::from).collect(),
    }))
}

/// A login lock in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockView {
    /// `account` or `address`.
    kind: &'static str,
    /// The username, or the client address (an IPv6 client as its /64 network's first
    /// address, e.g. `2001:db8:1:2::`).
    key: String,
    /// Failures within the window.
    failures: u32,
    /// When it started.
    since: Option<String>,
    /// When it ends.
    until: String,
}

impl From<LockInfo> for LockView {
    fn from(lock: LockInfo) -> Self {
        LockView {
            kind: lock_code(lock.kind),
            key: lock.key,
            failures: lock.failures,
            since: lock.since.map(ts),
            until: ts(lock.until),
        }
    }
}

/// The login locks in force (accounts and client addresses), the latest to end first;
/// administrators only. Locks live in memory: a restart lifts them.
#[utoipa::path(get, path = "/api/v1/admin/locks", tag = "security",
    responses((status = 200, body = [LockView]), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn locks(
    State(app): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<Vec<LockView>>, ApiError> {
    require_admin(&user)?;
    Ok(Json(
        app.access.locks().into_iter().map(LockView::from).collect(),
    ))
}

/// Lift the lock of an account (administrators only); recorded as `login_unlocked`.
#[utoipa::path(delete, path = "/api/v1/admin/locks/accounts/{username}", tag = "security",
    params(("username" = String, Path, description = "the locked username")),
    responses((status = 204, description = "lifted"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "no lock on that account (`not_found`)")))]
async fn unlock_account(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&user)?;
    if app
        .access
        .unlock(LockKind::Account, &username, &user.username)
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no lock on account `{username}`"
        )))
    }
}

/// Lift the lock of a client address (administrators only; an IPv6 address lifts its /64
/// network's lock); recorded as `login_unlocked`.
#[utoipa::path(delete, path = "/api/v1/admin/locks/addresses/{address}", tag = "security",
    params(("address" = String, Path, description = "the locked address, e.g. `10.1.2.3` or `2001:db8:1:2::`")),
    responses((status = 204, description = "lifted"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "no lock on that address (`not_found`)")))]
async fn unlock_address(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&user)?;
    if app
        .access
        .unlock(LockKind::Address, &address, &user.username)
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no lock on address `{address}`"
        )))
    }
}
