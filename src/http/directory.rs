//! `/api/v1/auth/login`, `/api/v1/me`, `/api/v1/units`, `/api/v1/users`.

use axum::Json;
use axum::extract::State;
use domain::org::{Level, UnitId};
use domain::roles::Role;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiQuery, BearerToken, Caller, ClientAddress};
use crate::app::views::UnitSearch;
use crate::directory::{Directory, User};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(units))
        .routes(routes!(users))
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

/// A user as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    username: String,
    display_name: String,
    /// operator, shift_leader, dispatcher, handler, leader, supervisor, admin.
    #[schema(value_type = Vec<String>)]
    roles: Vec<Role>,
    unit_id: String,
    /// For leaders: the unit ids they oversee (with their subtrees).
    oversees: Vec<String>,
    /// The password was handed out (or breaks the policy): every call but `GET /api/v1/me`
    /// and `POST /api/v1/auth/logout` answers 403 `password_change_required` until it is
    /// changed in the workbench (`/account/password`).
    must_change_password: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            roles: u.roles.clone(),
            unit_id: u.unit_id.to_string(),
            oversees: u.oversees.iter().map(|o| o.to_string()).collect(),
            must_change_password: u.must_change_password,
        }
    }
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
    user: UserView,
}

/// Log in with username and password; returns a bearer token.
///
/// Guarded against guessing: the last failures before a lock are answered later and later
/// (up to 2 s), and (by default) 10 failures of one account, or 30 from one client address, within 15
/// minutes lock it for 15 minutes (`429 login_locked`, `Retry-After` in seconds; an
/// administrator may lift it). At most one password check per core runs at once; when they
/// are all busy and the short queue is full, `503 too_busy` with `Retry-After`.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, body = LoginResponse),
        (status = 400, body = Problem),
        (status = 401, body = Problem, description = "unknown user or wrong password (`invalid_credentials`)"),
        (status = 429, body = Problem, description = "too many failed logins: the account or the address is locked (`login_locked`), or as many of its logins are being checked as it has failures left (`too_many_attempts`)",
            headers(("Retry-After" = u64, description = "seconds until a login may succeed"))),
        (status = 503, body = Problem, description = "every password check is busy (`too_busy`)",
            headers(("Retry-After" = u64, description = "seconds to wait")))))]
async fn login(
    State(app): State<AppState>,
    ClientAddress(client): ClientAddress,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<LoginResponse>, ApiError> {
    let logged_in = app
        .access
        .login(body.username, body.password, client)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(LoginResponse {
        token: logged_in.token,
        token_type: "Bearer",
        expires_in: Directory::session_ttl().as_secs(),
        user: UserView::from(&logged_in.user),
    }))
}

/// Log out: the bearer token stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
) -> Result<axum::http::StatusCode, ApiError> {
    match app.directory.logout(&token) {
        Some(username) => {
            app.app.share_logout(&token).await;
            app.access.logged_out(username);
            Ok(axum::http::StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::Unauthorized),
    }
}

/// The caller.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = UserView), (status = 401, body = Problem)))]
async fn me(Caller(user): Caller) -> Json<UserView> {
    Json(UserView::from(&user))
}

/// A unit of the six-level tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitView {
    id: String,
    name: String,
    /// city, district, street, community, grid, building.
    #[schema(value_type = String)]
    level: Level,
    /// hotline_centre, efficiency_office, bureau, district_centre, district_department,
    /// street_office, community_committee, grid_station, building.
    #[schema(value_type = String)]
    kind: domain::org::UnitKind,
    parent_id: Option<String>,
    /// The unit with its places below the city, e.g. `城关区 / 张掖路街道 / 龙源社区`.
    path: String,
}

/// Filters for the unit list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitQuery {
    /// Only the children of this unit.
    parent_id: Option<String>,
    /// Only units at this level.
    #[param(value_type = Option<String>)]
    level: Option<Level>,
    /// Units whose name (or path) contains this text, e.g. `张掖路`; the best matches first
    /// (the name itself, then names that start with it, higher levels first). At most 100
    /// characters.
    q: Option<String>,
    /// With `q`: how many units at most (default 20, 1 to 200).
    limit: Option<usize>,
}

/// The units of the six-level tree, parents first; with `q`, the units found by name, best
/// first, so a picker never downloads the whole tree.
#[utoipa::path(get, path = "/api/v1/units", tag = "directory", params(UnitQuery),
    responses((status = 200, body = [UnitView]), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn units(
    State(app): State<AppState>,
    Caller(_user): Caller,
    ApiQuery(q): ApiQuery<UnitQuery>,
) -> Result<Json<Vec<UnitView>>, ApiError> {
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > 100) {
        return Err(ApiError::bad_request(
            "query_too_long",
            "`q` must be at most 100 characters",
        ));
    }
    let limit = q.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`limit` must be 1 to 200",
        ));
    }
    let search = UnitSearch {
        parent_id: q.parent_id.map(UnitId::new),
        level: q.level,
        text: text.map(str::to_owned),
        places_only: false,
        limit,
    };
    Ok(Json(
        app.find_units(&search)
            .into_iter()
            .map(|(unit, path)| UnitView {
                id: unit.id.to_string(),
                name: unit.name,
                level: unit.level,
                kind: unit.kind,
                parent_id: unit.parent_id.as_ref().map(|p| p.to_string()),
                path,
            })
            .collect(),
    ))
}

/// All users (admins only).
#[utoipa::path(get, path = "/api/v1/users", tag = "directory",
    responses((status = 200, body = [UserView]), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn users(
    State(app): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    if !user.roles.contains(&Role::Admin) {
        return Err(ApiError::role_not_allowed(
            "只有系统管理员可以查看用户列表",
            "the user list is for `admin` only",
            &[Role::Admin],
        ));
    }
    Ok(Json(
        app.directory
            .users()
            .into_iter()
            .map(|u| UserView::from(&*u))
            .collect(),
    ))
}
