//! `GET /api/v1/cases/{id}/route`: the case's place in the six-level tree, the path it has
//! travelled (流转轨迹, recalls included), its current holders, who may receive it next and the
//! routing suggestion of the dispatch catalogue (派单目录, `crate::dispatch`).
//! `GET /api/v1/routing/suggest`: that suggestion for a new case, from its location, category
//! and text.

use axum::Json;
use axum::extract::{Path, State};
use domain::kinds::Category;
use domain::org::UnitId;
use projections::route::HopState;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::{ApiQuery, Caller};
use super::{AppState, ts};
use crate::app::views::{RouteDetail, SuggestionDetail, UnitLabel};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_route))
        .routes(routes!(get_suggestion))
}

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

fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn unit_ref(unit: &UnitLabel) -> UnitRef {
    UnitRef {
        unit_id: unit.id.to_string(),
        name: unit.name.clone(),
        level: unit.level.map(|l| l.code()).unwrap_or_default().to_owned(),
        level_label: unit.level.map(|l| l.label()).unwrap_or_default().to_owned(),
    }
}

fn units(units: &[UnitLabel]) -> Vec<UnitRef> {
    units.iter().map(unit_ref).collect()
}

impl From<SuggestionDetail> for SuggestionView {
    fn from(s: SuggestionDetail) -> Self {
        SuggestionView {
            place: units(&s.place),
            category: wire_name(&s.category),
            category_label: s.category.label().to_owned(),
            rule_id: s.found.matter.as_ref().map(|m| m.code.clone()),
            units: s
                .units
                .iter()
                .map(|u| SuggestedUnitView {
                    unit: unit_ref(&u.unit),
                    kind: u.kind.map(|k| wire_name(&k)).unwrap_or_default(),
                    kind_label: u.kind.map(|k| k.label().to_owned()).unwrap_or_default(),
                    path: units(&u.path),
                    transfer_to: u.transfer_to.as_ref().map(unit_ref),
                })
                .collect(),
            matter: s.found.matter.map(|m| MatterView {
                code: m.code,
                name: m.name,
                path: m.path,
            }),
            matched: s.found.matched,
            reason: s.found.reason,
        }
    }
}

impl From<RouteDetail> for RouteView {
    fn from(r: RouteDetail) -> Self {
        RouteView {
            id: r.id.to_string(),
            place: units(&r.place),
            route: r
                .hops
                .into_iter()
                .map(|d| {
                    let h = d.hop;
                    HopView {
                        transfer_id: h.transfer_id,
                        assignment_id: h.assignment_id,
                        from: unit_ref(&d.from),
                        to: unit_ref(&d.to),
                        role: wire_name(&h.role),
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
                    }
                })
                .collect(),
            holders: units(&r.holders),
            next: r
                .next
                .iter()
                .map(|n| NextUnits {
                    from: unit_ref(&n.from),
                    candidates: units(&n.candidates),
                })
                .collect(),
            suggestion: r.suggestion.map(SuggestionView::from),
        }
    }
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
    let case_id = ApiError::case_id(&id)?;
    Ok(Json(app.route(&user.actor(), &case_id).await?.into()))
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
    let location = UnitId::new(q.location_unit_id.trim());
    let text = q.text.unwrap_or_default();
    Ok(Json(
        app.suggestion(&user.actor(), &location, q.category, &text)?
            .into(),
    ))
}
