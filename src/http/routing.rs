//! `GET /api/v1/cases/{id}/route`: the case's place in the six-level tree, the path it has
//! travelled (流转轨迹, recalls included), its current holders, who may receive it next and the
//! routing suggestion of the dispatch catalogue (派单目录, `crate::dispatch`).
//! `GET /api/v1/routing/suggest`: that suggestion for a new case, from its location, category
//! and text.

use axum::Json;
use axum::extract::{Path, State};
use domain::case::HandlingRole;
use domain::identity::may_view_case;
use domain::kinds::Category;
use domain::org::{Level, UnitId};
use domain::roles::{Actor, Role};
use domain::routing::RoutingError;
use domain::{Case, CaseId, Command, Context, decide};
use projections::route::{HopState, route};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::{ApiQuery, Caller};
use super::{AppState, ts};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_route))
        .routes(routes!(get_suggestion))
}

/// Who sees routing suggestions: the operator and the dispatcher (and their shift leader).
const SUGGESTION_ROLES: &[Role] = &[Role::Operator, Role::ShiftLeader, Role::Dispatcher];

/// A unit with its name and level.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitRef {
    unit_id: String,
    name: String,
    /// city, district, street, community, grid, building.
    level: String,
    /// 市, 区/县, 街道/乡镇, 社区/村, 网格, 楼院.
    level_label: String,
}

/// One hop of the route.
#[derive(Debug, Serialize, ToSchema)]
pub struct HopView {
    transfer_id: u32,
    assignment_id: u32,
    from: UnitRef,
    to: UnitRef,
    /// lead or co.
    role: String,
    /// When it was transferred.
    at: String,
    /// pending, received, completed, recalled, cancelled.
    state: String,
    received_at: Option<String>,
    completed_at: Option<String>,
    recalled_at: Option<String>,
}

/// Units one holder may transfer to next.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextUnits {
    /// The unit that would transfer (a holder, or the accepting centre).
    from: UnitRef,
    /// Units directly below it (or, for the city centre, its bureaus and district centres)
    /// that the rules let it transfer to now.
    candidates: Vec<UnitRef>,
}

/// The route of a case.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteView {
    id: String,
    /// The citizen's place, from 市 down to the location.
    place: Vec<UnitRef>,
    /// Every hop, in order.
    route: Vec<HopView>,
    /// Who holds the case now.
    holders: Vec<UnitRef>,
    /// Who may receive it next.
    next: Vec<NextUnits>,
    /// The dispatch catalogue's suggestion for the case's location, category and text (`null`
    /// when either is missing, or for callers other than operators, shift leaders and
    /// dispatchers).
    suggestion: Option<SuggestionView>,
}

/// A unit suggested by the dispatch catalogue, with the transfers that reach it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestedUnitView {
    /// The responsible unit.
    unit: UnitRef,
    /// Its kind: bureau, district_centre, district_department, street_office,
    /// community_committee, grid_station.
    kind: String,
    /// 市直部门（局委办）, 区/县属部门, 街道办/乡镇, ….
    kind_label: String,
    /// 转办路径: city centre → (district centre →) unit.
    path: Vec<UnitRef>,
    /// The unit the caller's centre transfers to on the way (`null` when the caller is not on
    /// the path).
    transfer_to: Option<UnitRef>,
}

/// The matter (事项) of the dispatch catalogue a suggestion chose.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatterView {
    /// 分类代码, two digits per level (`010101`).
    code: String,
    /// 名称, e.g. 停水.
    name: String,
    /// The names from the top class down to the matter: `["城乡建设", "供水", "停水"]`.
    path: Vec<String>,
}

/// 转办建议 — who the dispatch catalogue says is responsible, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionView {
    /// The citizen's place, from 市 down to the location.
    place: Vec<UnitRef>,
    /// inquiry, help_request, complaint, report, proposal, praise.
    category: String,
    /// 咨询, 求助, 投诉, 举报, 建议, 表扬.
    category_label: String,
    /// The chosen matter's code, as `matter.code` (`null` when none applies); kept for
    /// clients of the former responsibility table.
    rule_id: Option<String>,
    /// The matter chosen (`null` when none applies at the location).
    matter: Option<MatterView>,
    /// The catalogue's words found in the text that chose it.
    matched: Vec<String>,
    /// Why, in Chinese: the matter, what matched, ties, which units it names.
    reason: String,
    /// The units, the main one first; empty when no rule applies at the location.
    units: Vec<SuggestedUnitView>,
}

fn level(level: Level) -> (&'static str, &'static str) {
    match level {
        Level::City => ("city", "市"),
        Level::District => ("district", "区/县"),
        Level::Street => ("street", "街道/乡镇"),
        Level::Community => ("community", "社区/村"),
        Level::Grid => ("grid", "网格"),
        Level::Building => ("building", "楼院"),
    }
}

fn place(app: &AppState, location: &UnitId) -> Vec<UnitRef> {
    let mut chain: Vec<UnitRef> = app
        .org
        .ancestors(location)
        .into_iter()
        .rev()
        .map(|u| unit_ref(app, u.id.as_str()))
        .collect();
    chain.push(unit_ref(app, location.as_str()));
    chain
}

fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The catalogue's suggestion for a case at `location` of `category`, as the caller sees it.
fn suggestion(
    app: &AppState,
    caller_unit: &UnitId,
    location: &UnitId,
    category: Category,
    text: &str,
) -> Result<SuggestionView, ApiError> {
    let dispatch = crate::dispatch::dispatch().map_err(ApiError::Internal)?;
    let found = dispatch
        .suggest(&app.org, location, category, text)
        .map_err(|err| match err {
            RoutingError::UnknownLocation(_) => {
                ApiError::bad_request("unknown_unit", err.to_string())
            }
        })?;
    let units = found
        .units
        .iter()
        .map(|u| {
            let kind = app.org.get(&u.unit_id).map(|x| x.kind);
            SuggestedUnitView {
                unit: unit_ref(app, u.unit_id.as_str()),
                kind: kind.map(|k| wire_name(&k)).unwrap_or_default(),
                kind_label: kind.map(|k| k.label().to_owned()).unwrap_or_default(),
                path: u.path.iter().map(|p| unit_ref(app, p.as_str())).collect(),
                transfer_to: u.next_hop(caller_unit).map(|p| unit_ref(app, p.as_str())),
            }
        })
        .collect();
    Ok(SuggestionView {
        place: place(app, location),
        category: wire_name(&category),
        category_label: category.label().to_owned(),
        rule_id: found.matter.as_ref().map(|m| m.code.clone()),
        matter: found.matter.map(|m| MatterView {
            code: m.code,
            name: m.name,
            path: m.path,
        }),
        matched: found.matched,
        reason: found.reason,
        units,
    })
}

fn unit_ref(app: &AppState, id: &str) -> UnitRef {
    let unit = app.org.get(&UnitId::new(id));
    let (code, label) = unit.map_or(("", ""), |u| level(u.level));
    UnitRef {
        unit_id: id.to_owned(),
        name: unit.map(|u| u.name.clone()).unwrap_or_default(),
        level: code.to_owned(),
        level_label: label.to_owned(),
    }
}

/// The units `from` may transfer `case` to now, by asking `decide` itself.
fn candidates(app: &AppState, case: &Case, from: &UnitId) -> Vec<UnitRef> {
    let probe = Actor {
        username: "route-probe".into(),
        unit_id: from.clone(),
        roles: vec![Role::Dispatcher, Role::Handler],
        oversees: Vec::new(),
    };
    let ctx = Context {
        now: app.now(),
        actor: &probe,
        org: &app.org,
        calendar: &app.calendar,
        policy: &app.policy,
    };
    app.org
        .units()
        .iter()
        .filter(|u| u.parent_id.as_ref() == Some(from))
        .filter(|u| {
            let cmd = Command::Transfer {
                lead_unit_id: u.id.clone(),
                co_unit_ids: Vec::new(),
                note: "probe".into(),
            };
            decide(case, &cmd, &ctx).is_ok()
        })
        .map(|u| unit_ref(app, u.id.as_str()))
        .collect()
}

/// 流转轨迹: where the case sits in the tree, every hop (recalls included), its holders and who
/// may receive it next.
#[utoipa::path(get, path = "/api/v1/cases/{id}/route", tag = "cases",
    params(("id" = String, Path, description = "工单编号")),
    responses((status = 200, body = RouteView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_route(
    State(app): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<Json<RouteView>, ApiError> {
    let case_id = CaseId::parse(&id).map_err(|_| ApiError::NotFound(format!("no case `{id}`")))?;
    let (case, history) = app.history(&case_id).await?;
    if !may_view_case(&user.actor(), &case, &app.org) {
        return Err(ApiError::NotFound(format!("no case `{case_id}`")));
    }
    let events: Vec<domain::Event> = history.into_iter().map(|(_, e)| e).collect();
    let intake = case.intake();
    let place = match &intake.location_unit_id {
        Some(location) => place(&app, location),
        None => Vec::new(),
    };
    let centre_staff = SUGGESTION_ROLES.iter().any(|r| user.roles.contains(r));
    let suggestion = match (&intake.location_unit_id, intake.category) {
        (Some(location), Some(category)) if centre_staff && app.org.get(location).is_some() => {
            let text = format!("{} {}", intake.title, intake.content);
            Some(suggestion(&app, &user.unit_id, location, category, &text)?)
        }
        _ => None,
    };
    let hops = route(&events)
        .into_iter()
        .map(|h| HopView {
            transfer_id: h.transfer_id,
            assignment_id: h.assignment_id,
            from: unit_ref(&app, &h.from_unit_id),
            to: unit_ref(&app, &h.to_unit_id),
            role: match h.role {
                HandlingRole::Lead => "lead",
                HandlingRole::Co => "co",
            }
            .to_owned(),
            at: ts(h.at),
            state: match h.state {
                HopState::Pending => "pending",
                HopState::Received => "received",
                HopState::Completed => "completed",
                HopState::Recalled => "recalled",
                HopState::Cancelled => "cancelled",
            }
            .to_owned(),
            received_at: h.received_at.map(ts),
            completed_at: h.completed_at.map(ts),
            recalled_at: h.recalled_at.map(ts),
        })
        .collect();
    let holders: Vec<UnitId> = case.holders().map(|a| a.unit_id.clone()).collect();
    let mut senders = holders.clone();
    if !case.has_live_root_transfer()
        && let Some(centre) = case.accepting_unit_id()
    {
        senders.push(centre.clone());
    }
    let next = senders
        .iter()
        .map(|from| NextUnits {
            from: unit_ref(&app, from.as_str()),
            candidates: candidates(&app, &case, from),
        })
        .collect();
    Ok(Json(RouteView {
        id: case_id.to_string(),
        place,
        route: hops,
        holders: holders.iter().map(|u| unit_ref(&app, u.as_str())).collect(),
        next,
        suggestion,
    }))
}

/// Where to look for the responsible unit of a new case.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SuggestQuery {
    /// The citizen's place in the six-level tree (a unit id, e.g. `d.chengguan.s01.c01`).
    location_unit_id: String,
    /// inquiry, help_request, complaint, report, proposal, praise.
    #[param(value_type = String)]
    category: Category,
    /// Title and content of the request (optional): segmented into words, which the
    /// catalogue's keywords match.
    text: Option<String>,
}

/// 转办建议: the responsible unit(s) for a new case by the dispatch catalogue (派单目录), with
/// the transfer path (市中心 → 区中心 → 单位), the matter chosen (code, name, path) and why.
/// The text is segmented and the most specific matter wins. For operators, shift leaders and
/// dispatchers.
#[utoipa::path(get, path = "/api/v1/routing/suggest", tag = "cases", params(SuggestQuery),
    responses((status = 200, body = SuggestionView), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn get_suggestion(
    State(app): State<AppState>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<SuggestQuery>,
) -> Result<Json<SuggestionView>, ApiError> {
    if !SUGGESTION_ROLES.iter().any(|r| user.roles.contains(r)) {
        return Err(ApiError::role_not_allowed(
            "只有接线员、值班长和转办人员可以查看转办建议",
            "routing suggestions are for `operator`, `shift_leader` and `dispatcher`",
            SUGGESTION_ROLES,
        ));
    }
    let location = UnitId::new(q.location_unit_id.trim());
    if location.as_str().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`location_unit_id` must not be empty",
        ));
    }
    let text = q.text.unwrap_or_default();
    if text.chars().count() > domain::command::limits::CONTENT + domain::command::limits::TITLE {
        return Err(ApiError::bad_request("invalid_query", "`text` is too long"));
    }
    Ok(Json(suggestion(
        &app,
        &user.unit_id,
        &location,
        q.category,
        &text,
    )?))
}
