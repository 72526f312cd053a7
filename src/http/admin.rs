//! Administration of the directory (机构与人员): units (create, rename, move, close) and users
//! (create, change, disable, enable, reset the password), each change an event of the
//! `directory` stream decided by `domain::directory`; and the record of those changes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::directory::{DirectoryCommand, UserEntry};
use domain::org::{UnitId, UnitKind};
use domain::roles::Role;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiQuery, Caller};
use crate::directory::User;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_unit))
        .routes(routes!(rename_unit))
        .routes(routes!(move_unit))
        .routes(routes!(close_unit))
        .routes(routes!(create_user))
        .routes(routes!(change_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(reset_password))
        .routes(routes!(directory_events))
}

/// The longest text field of a directory change (bytes); the rules allow far less.
const MAX_FIELD: usize = 200;
/// The most roles or overseen units one user may be given in one request.
const MAX_LIST: usize = 50;

/// What a directory change returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryChangeResponse {
    /// The `directory` stream's version after the change.
    pub version: u64,
    /// The global position of its last event (pass as `min_position` to read your writes).
    pub position: u64,
    /// For a new user or a reset password: the one-time password to hand to the user, who
    /// must change it at the first sign-in. Shown once; it is not stored anywhere readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<String>,
}

/// A new unit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUnitBody {
    /// Its id: 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`.
    #[schema(max_length = 200)]
    id: String,
    /// Its Chinese name.
    #[schema(max_length = 200)]
    name: String,
    /// hotline_centre, efficiency_office, bureau, district_centre, district_department,
    /// street_office, community_committee, grid_station, building.
    #[schema(value_type = String)]
    kind: UnitKind,
    /// The unit above it.
    #[schema(max_length = 200)]
    parent_id: String,
}

/// A new name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameBody {
    #[schema(max_length = 200)]
    name: String,
}

/// A new parent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    #[schema(max_length = 200)]
    parent_id: String,
}

/// Closing a unit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// The unit that takes over its open cases; required when it holds any.
    #[serde(default)]
    #[schema(max_length = 200)]
    successor: Option<String>,
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    #[schema(max_length = 200)]
    username: String,
    #[schema(max_length = 200)]
    display_name: String,
    #[schema(max_length = 200)]
    unit_id: String,
    /// operator, shift_leader, dispatcher, handler, leader, supervisor, admin.
    #[schema(value_type = Vec<String>, max_items = 50)]
    roles: Vec<Role>,
    /// For leaders: the units they oversee.
    #[serde(default)]
    #[schema(max_items = 50)]
    oversees: Vec<String>,
}

/// A user's unit, roles and overseen units, as they are to be.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeUserBody {
    #[schema(max_length = 200)]
    unit_id: String,
    #[schema(value_type = Vec<String>, max_items = 50)]
    roles: Vec<Role>,
    #[serde(default)]
    #[schema(max_items = 50)]
    oversees: Vec<String>,
}

fn bounded(field: &'static str, text: &str) -> Result<(), ApiError> {
    if text.len() > MAX_FIELD {
        return Err(ApiError::bad_request(
            "field_too_long",
            format!("`{field}` must be at most {MAX_FIELD} bytes"),
        ));
    }
    Ok(())
}

fn bounded_list<T>(field: &'static str, list: &[T]) -> Result<(), ApiError> {
    if list.len() > MAX_LIST {
        return Err(ApiError::bad_request(
            "too_many_items",
            format!("`{field}` must have at most {MAX_LIST} items"),
        ));
    }
    Ok(())
}

fn unit_ids(field: &'static str, ids: Vec<String>) -> Result<Vec<UnitId>, ApiError> {
    bounded_list(field, &ids)?;
    ids.into_iter()
        .map(|id| bounded(field, &id).map(|()| UnitId::new(id)))
        .collect()
}

/// Runs one directory command for `user` (a close with a successor hands its open cases
/// over).
async fn change(
    app: &AppState,
    user: &User,
    command: DirectoryCommand,
    initial_password: Option<String>,
) -> Result<DirectoryChangeResponse, ApiError> {
    // A change that creates no account still names a password for one found without any
    // (an accounts file restored from an older copy): random, so unknown, until reset.
    let password = match &initial_password {
        Some(password) => password.clone(),
        None => crate::directory::temporary_password().map_err(ApiError::Internal)?,
    };
    let done = app
        .change_directory_now(&user.actor(), &[command], &password)
        .await?;
    Ok(DirectoryChangeResponse {
        version: done.snapshot.version,
        // After a close, its hand-over's case events too (read-your-writes covers them).
        position: done.snapshot.position.max(app.store.head().0),
        initial_password,
    })
}

/// Create a unit (admins; a district admin within the district).
#[utoipa::path(post, path = "/api/v1/units", tag = "admin", request_body = CreateUnitBody,
    responses((status = 201, body = DirectoryChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_unit(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiJson(body): ApiJson<CreateUnitBody>,
) -> Result<(StatusCode, Json<DirectoryChangeResponse>), ApiError> {
    for (field, text) in [
        ("id", &body.id),
        ("name", &body.name),
        ("parent_id", &body.parent_id),
    ] {
        bounded(field, text)?;
    }
    let command = DirectoryCommand::CreateUnit {
        id: UnitId::new(body.id),
        name: body.name,
        kind: body.kind,
        parent_id: UnitId::new(body.parent_id),
    };
    let done = change(&app, &user, command, None).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// Rename a unit (更名). Cases keep the name their events were recorded under.
#[utoipa::path(post, path = "/api/v1/units/{id}/rename", tag = "admin", request_body = RenameBody,
    params(("id" = String, Path, description = "单位编号")),
    responses((status = 200, body = DirectoryChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn rename_unit(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenameBody>,
) -> Result<Json<DirectoryChangeResponse>, ApiError> {
    bounded("id", &id)?;
    bounded("name", &body.name)?;
    let command = DirectoryCommand::RenameUnit {
        id: UnitId::new(id),
        name: body.name,
    };
    Ok(Json(change(&app, &user, command, None).await?))
}

/// Move a unit under another parent (调整上级), with everything below it.
#[utoipa::path(post, path = "/api/v1/units/{id}/move", tag = "admin", request_body = MoveBody,
    params(("id" = String, Path, description = "单位编号")),
    responses((status = 200, body = DirectoryChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn move_unit(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MoveBody>,
) -> Result<Json<DirectoryChangeResponse>, ApiError> {
    bounded("id", &id)?;
    bounded("parent_id", &body.parent_id)?;
    let command = DirectoryCommand::MoveUnit {
        id: UnitId::new(id),
        parent_id: UnitId::new(body.parent_id),
    };
    Ok(Json(change(&app, &user, command, None).await?))
}

/// Close a unit (撤销). One holding open cases needs a successor.
#[utoipa::path(post, path = "/api/v1/units/{id}/close", tag = "admin", request_body = CloseBody,
    params(("id" = String, Path, description = "单位编号")),
    responses((status = 200, body = DirectoryChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn close_unit(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CloseBody>,
) -> Result<Json<DirectoryChangeResponse>, ApiError> {
    bounded("id", &id)?;
    if let Some(successor) = &body.successor {
        bounded("successor", successor)?;
    }
    let command = DirectoryCommand::CloseUnit {
        id: UnitId::new(id),
        successor: body.successor.map(UnitId::new),
    };
    Ok(Json(change(&app, &user, command, None).await?))
}

/// Create a user (新增用户). The answer carries a one-time password for the new user.
#[utoipa::path(post, path = "/api/v1/users", tag = "admin", request_body = CreateUserBody,
    responses((status = 201, body = DirectoryChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_user(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiJson(body): ApiJson<CreateUserBody>,
) -> Result<(StatusCode, Json<DirectoryChangeResponse>), ApiError> {
    for (field, text) in [
        ("username", &body.username),
        ("display_name", &body.display_name),
        ("unit_id", &body.unit_id),
    ] {
        bounded(field, text)?;
    }
    bounded_list("roles", &body.roles)?;
    let command = DirectoryCommand::CreateUser {
        user: UserEntry {
            username: body.username,
            display_name: body.display_name,
            unit_id: UnitId::new(body.unit_id),
            roles: body.roles,
            oversees: unit_ids("oversees", body.oversees)?,
            disabled: false,
        },
    };
    let password = crate::directory::temporary_password().map_err(ApiError::Internal)?;
    let done = change(&app, &user, command, Some(password)).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// Change a user's unit, roles and overseen units (调整).
#[utoipa::path(post, path = "/api/v1/users/{username}/change", tag = "admin", request_body = ChangeUserBody,
    params(("username" = String, Path, description = "用户名")),
    responses((status = 200, body = DirectoryChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn change_user(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<ChangeUserBody>,
) -> Result<Json<DirectoryChangeResponse>, ApiError> {
    bounded("username", &username)?;
    bounded("unit_id", &body.unit_id)?;
    bounded_list("roles", &body.roles)?;
    let command = DirectoryCommand::ChangeUser {
        username,
        unit_id: UnitId::new(body.unit_id),
        roles: body.roles,
        oversees: unit_ids("oversees", body.oversees)?,
    };
    Ok(Json(change(&app, &user, command, None).await?))
}

/// Disable a user (停用): they cannot sign in, and their sessions end at once.
#[utoipa::path(post, path = "/api/v1/users/{username}/disable", tag = "admin",
    params(("username" = String, Path, description = "用户名")),
    responses((status = 200, body = DirectoryChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn disable_user(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(username): Path<String>,
) -> Result<Json<DirectoryChangeResponse>, ApiError> {
    bounded("username", &username)?;
    let command = DirectoryCommand::DisableUser { username };
    Ok(Json(change(&app, &user, command, None).await?))
}

/// Enable a disabled user again (启用).
#[utoipa::path(post, path = "/api/v1/users/{username}/enable", tag = "admin",
    params(("username" = String, Path, description = "用户名")),
    responses((status = 200, body = DirectoryChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn enable_user(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(username): Path<String>,
) -> Result<Json<DirectoryChangeResponse>, ApiError> {
    bounded("username", &username)?;
    let command = DirectoryCommand::EnableUser { username };
    Ok(Json(change(&app, &user, command, None).await?))
}

/// Reset a user's password (重置密码): the answer carries a one-time password; the user must
/// change it at the next sign-in, and their sessions end.
#[utoipa::path(post, path = "/api/v1/users/{username}/reset-password", tag = "admin",
    params(("username" = String, Path, description = "用户名")),
    responses((status = 200, body = DirectoryChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn reset_password(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(username): Path<String>,
) -> Result<Json<DirectoryChangeResponse>, ApiError> {
    bounded("username", &username)?;
    let command = DirectoryCommand::ResetPassword { username };
    let password = crate::directory::temporary_password().map_err(ApiError::Internal)?;
    Ok(Json(change(&app, &user, command, Some(password)).await?))
}

/// Paging of the directory's record.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only changes after this stream version (default 0: from the first).
    #[param(minimum = 0)]
    after: Option<u64>,
    /// How many at most (default 100, 1 to 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// One recorded directory change.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryEventView {
    /// The stream version after it.
    version: u64,
    /// Its global position.
    position: u64,
    /// When (RFC 3339, Asia/Shanghai).
    at: String,
    /// Who (`system` for the first start's seed).
    actor: String,
    /// unit_created, unit_renamed, unit_moved, unit_closed, user_created, user_changed,
    /// user_disabled, user_enabled, password_reset.
    #[serde(rename = "type")]
    kind: String,
    /// The change, as recorded.
    #[schema(value_type = Object)]
    change: serde_json::Value,
}

/// The record of directory changes (admins), oldest first.
#[utoipa::path(get, path = "/api/v1/directory/events", tag = "admin", params(EventsQuery),
    responses((status = 200, body = [DirectoryEventView]), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn directory_events(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Vec<DirectoryEventView>>, ApiError> {
    if !user.roles.contains(&Role::Admin) {
        return Err(ApiError::role_not_allowed(
            "只有系统管理员可以查看机构人员变更记录",
            "the directory's record is for `admin` only",
            &[Role::Admin],
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`limit` must be 1 to 500",
        ));
    }
    let after = q.after.unwrap_or(0);
    if after >= app.orgs.current().version {
        return Ok(Json(Vec::new()));
    }
    let records = app
        .store
        .read_stream(
            crate::store::stream::DIRECTORY,
            after.saturating_add(1).max(1),
        )
        .await
        .map_err(crate::app::AppError::from)?;
    let mut out = Vec::with_capacity(limit.min(records.len()));
    for rec in records.iter().take(limit) {
        let decoded =
            crate::directory_log::decode(rec).map_err(|e| ApiError::Internal(e.into()))?;
        out.push(DirectoryEventView {
            version: rec.version,
            position: rec.position.0,
            at: crate::app::rfc3339(decoded.at),
            actor: decoded.actor,
            kind: rec.event_type.clone(),
            change: serde_json::to_value(&decoded.event).unwrap_or_default(),
        });
    }
    Ok(Json(out))
}
