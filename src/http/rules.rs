//! The rules as versioned data: `GET /api/v1/rules` (the version in force at any time, with a
//! summary of its dispatch catalogue), `GET /api/v1/rules/catalogue` (that catalogue whole)
//! and the changes (`POST /api/v1/rules/years`, `/office-hours`, `/policy`, `/catalogue`),
//! each an event of the `rules` stream, in force from the moment it is recorded.

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use chrono::{DateTime, Utc};
use domain::calendar::{DeadlinePolicy, OfficePeriod, YearData};
use domain::routing::{CatalogueSpec, MatterSpec};
use domain::rules::{Rules, RulesCommand, Version};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiQuery, Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rules))
        .routes(routes!(set_year))
        .routes(routes!(set_office_hours))
        .routes(routes!(set_policy))
        .routes(routes!(catalogue))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(set_catalogue))
                .layer(DefaultBodyLimit::max(CATALOGUE_BODY_LIMIT)),
        )
}

/// Largest catalogue accepted, in bytes: the whole catalogue in one body (the compiled-in one
/// is about 80 KiB as written in `fixtures/`), more than the API's other bodies may be.
pub const CATALOGUE_BODY_LIMIT: usize = 1024 * 1024;

/// Which version.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RulesQuery {
    /// The version in force at this time (RFC 3339); default now.
    at: Option<String>,
}

/// One version of the rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummary {
    /// 1 is the compiled-in base.
    version: u32,
    /// In force from (RFC 3339, Asia/Shanghai); absent for the base (always).
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_from: Option<String>,
}

/// The rules in force at a time, and every version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulesView {
    /// The version in force at `at`.
    version: u32,
    /// When it came into force (absent for the base).
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_from: Option<String>,
    /// The working calendar: `office_hours` and one entry per year (its holidays and
    /// make-up working days, from its State Council notice).
    #[schema(value_type = Object)]
    calendar: serde_json::Value,
    /// The years the calendar knows; a deadline past them is provisional.
    known_years: Vec<i32>,
    /// The deadline policy.
    #[schema(value_type = Object)]
    policy: serde_json::Value,
    /// The dispatch catalogue in force at `at`, in figures (`GET /api/v1/rules/catalogue`
    /// gives it whole).
    catalogue: CatalogueSummary,
    /// Every version, oldest first.
    versions: Vec<VersionSummary>,
}

/// The dispatch catalogue of a version, in figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueSummary {
    /// The version that recorded it (1: the compiled-in one).
    set_in_version: u32,
    /// Its matters, every level.
    matters: usize,
    /// Those without children.
    leaves: usize,
    /// Its distinct words (keywords, generic and context words).
    words: usize,
}

fn summary(rules: &Rules, version: &Version) -> CatalogueSummary {
    let catalogue = version.catalogue();
    CatalogueSummary {
        set_in_version: set_in(rules, version),
        matters: catalogue.matters().len(),
        leaves: catalogue.matters().iter().filter(|m| m.is_leaf).count(),
        words: catalogue.words().count(),
    }
}

/// The first version with `version`'s catalogue (versions that did not change it share it).
fn set_in(rules: &Rules, version: &Version) -> u32 {
    rules
        .versions()
        .find(|v| Arc::ptr_eq(v.catalogue(), version.catalogue()))
        .map_or(version.version(), Version::version)
}

fn effective(at: DateTime<Utc>) -> Option<String> {
    (at != DateTime::<Utc>::MIN_UTC).then(|| crate::app::rfc3339(at))
}

/// `at`, or now.
fn instant(app: &AppState, at: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    match at {
        None => Ok(app.now()),
        Some(text) if text.len() <= 40 => Ok(DateTime::parse_from_rfc3339(text)
            .map_err(|_| ApiError::bad_request("invalid_time", "`at` must be RFC 3339"))?
            .with_timezone(&Utc)),
        Some(_) => Err(ApiError::bad_request(
            "invalid_time",
            "`at` must be RFC 3339",
        )),
    }
}

/// The rules in force (or in force at `at`), for everyone signed in.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", params(RulesQuery),
    responses((status = 200, body = RulesView), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn rules(
    State(app): State<AppState>,
    Caller(_user): Caller,
    ApiQuery(q): ApiQuery<RulesQuery>,
) -> Result<Json<RulesView>, ApiError> {
    let at = instant(&app, q.at.as_deref())?;
    let snapshot = app.rules.current();
    let version = snapshot.rules.in_force(at);
    Ok(Json(RulesView {
        version: version.version(),
        effective_from: effective(version.effective_from()),
        calendar: serde_json::to_value(version.calendar_data()).unwrap_or_default(),
        known_years: version.calendar().known_years(),
        policy: serde_json::to_value(&**version.policy()).unwrap_or_default(),
        catalogue: summary(&snapshot.rules, version),
        versions: snapshot
            .rules
            .versions()
            .map(|v| VersionSummary {
                version: v.version(),
                effective_from: effective(v.effective_from()),
            })
            .collect(),
    }))
}

/// What a change returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulesChangeResponse {
    /// The rules' version now in force.
    version: u32,
    /// The `rules` stream's version.
    stream_version: u64,
    /// The global position of the change (pass as `min_position` to read your writes).
    position: u64,
}

async fn change(
    app: &AppState,
    user: &crate::directory::User,
    command: RulesCommand,
) -> Result<Json<RulesChangeResponse>, ApiError> {
    let done = app.change_rules_now(&user.actor(), &command).await?;
    Ok(Json(RulesChangeResponse {
        version: done.version,
        stream_version: done.stream_version,
        position: done.position.0,
    }))
}

/// A year's holidays and make-up working days, from its State Council notice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct YearBody {
    /// The year, 2000 to 2100.
    year: i32,
    /// As in `GET /api/v1/rules`'s `calendar.years[]`: `year`, `notice` (`title`, `number`,
    /// `published`), `holidays` (`name`, `from`, `to`), `make_up_working_days` (`date`, `name`).
    #[schema(value_type = Object)]
    data: YearData,
}

/// Add or replace a year of the working calendar (city administrators). Deadlines computed
/// from now on use it; those recorded before keep theirs.
#[utoipa::path(post, path = "/api/v1/rules/years", tag = "rules", request_body = YearBody,
    responses((status = 200, body = RulesChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_year(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiJson(body): ApiJson<YearBody>,
) -> Result<Json<RulesChangeResponse>, ApiError> {
    change(
        &app,
        &user,
        RulesCommand::SetYear {
            year: body.year,
            data: body.data,
        },
    )
    .await
}

/// New office hours.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfficeHoursBody {
    /// Periods of a working day, e.g. `[{"start": "09:00", "end": "12:00"}, …]`.
    #[schema(value_type = Vec<Object>, max_items = 12)]
    office_hours: Vec<OfficePeriod>,
}

/// Replace the office hours (city administrators).
#[utoipa::path(post, path = "/api/v1/rules/office-hours", tag = "rules", request_body = OfficeHoursBody,
    responses((status = 200, body = RulesChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_office_hours(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiJson(body): ApiJson<OfficeHoursBody>,
) -> Result<Json<RulesChangeResponse>, ApiError> {
    if body.office_hours.len() > 12 {
        return Err(ApiError::bad_request(
            "too_many_items",
            "`office_hours` must have at most 12 periods",
        ));
    }
    change(
        &app,
        &user,
        RulesCommand::SetOfficeHours {
            office_hours: body.office_hours,
        },
    )
    .await
}

/// A new deadline policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// As in `GET /api/v1/rules`'s `policy`.
    #[schema(value_type = Object)]
    policy: DeadlinePolicy,
}

/// Replace the deadline policy (city administrators).
#[utoipa::path(post, path = "/api/v1/rules/policy", tag = "rules", request_body = PolicyBody,
    responses((status = 200, body = RulesChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_policy(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Json<RulesChangeResponse>, ApiError> {
    change(
        &app,
        &user,
        RulesCommand::SetPolicy {
            policy: body.policy,
        },
    )
    .await
}

/// The dispatch catalogue of one version.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueView {
    /// The rules' version in force at `at`.
    version: u32,
    /// When it came into force (absent for the base).
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_from: Option<String>,
    /// The version that recorded this catalogue (1: the compiled-in one).
    set_in_version: u32,
    /// The whole catalogue, in the shape of `fixtures/dispatch-catalogue.json` (what
    /// `POST /api/v1/rules/catalogue` takes): `comment`, `matters` (each `code`, `name`,
    /// `categories`, `keywords`, `generic`, `context`, `targets`, `fallback`, `children`).
    #[schema(value_type = Object)]
    catalogue: serde_json::Value,
}

/// 派单目录: the dispatch catalogue routing suggestions use now (or used at `at`), whole, for
/// everyone signed in.
#[utoipa::path(get, path = "/api/v1/rules/catalogue", tag = "rules", params(RulesQuery),
    responses((status = 200, body = CatalogueView), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn catalogue(
    State(app): State<AppState>,
    Caller(_user): Caller,
    ApiQuery(q): ApiQuery<RulesQuery>,
) -> Result<Json<CatalogueView>, ApiError> {
    let at = instant(&app, q.at.as_deref())?;
    let snapshot = app.rules.current();
    let version = snapshot.rules.in_force(at);
    Ok(Json(CatalogueView {
        version: version.version(),
        effective_from: effective(version.effective_from()),
        set_in_version: set_in(&snapshot.rules, version),
        catalogue: serde_json::to_value(&**version.catalogue_spec()).unwrap_or_default(),
    }))
}

/// A whole dispatch catalogue, as `fixtures/dispatch-catalogue.json` writes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogueBody {
    /// Free text on the catalogue's sources.
    #[serde(default)]
    comment: String,
    /// The top-level classes (大类), in order, each with `code` (two digits per level),
    /// `name`, and optionally `categories`, `keywords`, `generic`, `context`, `targets`
    /// (`level`, `unit_kind`, `slug` for bureaus and district departments), `fallback` and
    /// `children`; as in `GET /api/v1/rules/catalogue`'s `catalogue.matters`.
    #[schema(value_type = Vec<Object>, max_items = 99)]
    matters: Vec<MatterSpec>,
}

/// Replace the dispatch catalogue (派单目录) routing suggestions use (city administrators):
/// the whole catalogue, checked (bounded sizes, codes, unique names, clean words, targets the
/// tree has) and refused in Chinese with the matter and field at fault. Suggestions made from
/// now on use it; `GET /api/v1/rules/catalogue?at=` still shows the earlier one.
#[utoipa::path(post, path = "/api/v1/rules/catalogue", tag = "rules", request_body = CatalogueBody,
    responses((status = 200, body = RulesChangeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 413, body = Problem, description = "the body is over 1 MiB (`body_too_large`)"), (status = 422, body = Problem)))]
async fn set_catalogue(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiJson(body): ApiJson<CatalogueBody>,
) -> Result<Json<RulesChangeResponse>, ApiError> {
    change(
        &app,
        &user,
        RulesCommand::SetCatalogue {
            catalogue: CatalogueSpec {
                comment: body.comment,
                matters: body.matters,
            },
        },
    )
    .await
}
