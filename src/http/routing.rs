//! `GET /api/v1/cases/{id}/route`: the case's place in the six-level tree, the path it has
//! travelled (流转轨迹, recalls included), its current holders and who may receive it next.

use axum::Json;
use axum::extract::{Path, State};
use domain::case::HandlingRole;
use domain::identity::may_view_case;
use domain::org::{Level, UnitId};
use domain::roles::{Actor, Role};
use domain::{Case, CaseId, Command, Context, decide};
use projections::route::{HopState, route};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::Caller;
use super::{AppState, ts};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_route))
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
    let place = match &case.intake().location_unit_id {
        Some(location) => {
            let mut chain: Vec<UnitRef> = app
                .org
                .ancestors(location)
                .into_iter()
                .rev()
                .map(|u| unit_ref(&app, u.id.as_str()))
                .collect();
            chain.push(unit_ref(&app, location.as_str()));
            chain
        }
        None => Vec::new(),
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
    }))
}
