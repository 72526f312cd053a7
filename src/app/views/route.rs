//! The route of a case (流转轨迹): its place in the six-level tree, every hop, its holders, who
//! may receive it next (asked of `decide`) and the dispatch catalogue's suggestion (转办建议),
//! for centre staff; and that suggestion for a request not yet saved.

use std::sync::Arc;

use domain::identity::{Extent, may_view_case, view_extent, visible_prefix};
use domain::kinds::Category;
use domain::org::{Level, UnitId, UnitKind};
use domain::roles::{Actor, Role};
use domain::routing::{RoutingError, Suggestion};
use domain::{Case, CaseId, Command, Context, decide};
use projections::route::{Hop, route};

use crate::app::failure::Failure;
use crate::app::{App, AppError, AppState};

/// Who sees routing suggestions: the operator and the dispatcher (and their shift leader).
pub const SUGGESTION_ROLES: &[Role] = &[Role::Operator, Role::ShiftLeader, Role::Dispatcher];

/// A unit with its name and level (both empty for an id the tree does not know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitLabel {
    /// Its id.
    pub id: UnitId,
    /// Its name.
    pub name: String,
    /// Its level.
    pub level: Option<Level>,
}

/// One hop, with its units named.
#[derive(Debug, Clone)]
pub struct HopDetail {
    /// The hop.
    pub hop: Hop,
    /// Who transferred.
    pub from: UnitLabel,
    /// Who was given the case.
    pub to: UnitLabel,
}

/// The units one sender may transfer to next.
#[derive(Debug, Clone)]
pub struct NextUnits {
    /// The unit that would transfer (a holder, or the accepting centre).
    pub from: UnitLabel,
    /// Units directly below it that the rules let it transfer to now.
    pub candidates: Vec<UnitLabel>,
}

/// A unit the catalogue names, with the transfers that reach it.
#[derive(Debug, Clone)]
pub struct SuggestedUnit {
    /// The responsible unit.
    pub unit: UnitLabel,
    /// Its kind.
    pub kind: Option<UnitKind>,
    /// 转办路径: city centre → (district centre →) unit.
    pub path: Vec<UnitLabel>,
    /// The unit the viewer's centre transfers to on the way, when it is on the path.
    pub transfer_to: Option<UnitLabel>,
}

/// 转办建议, as a viewer sees it.
#[derive(Debug, Clone)]
pub struct SuggestionDetail {
    /// The citizen's place, from 市 down to the location.
    pub place: Vec<UnitLabel>,
    /// The category it was asked for.
    pub category: Category,
    /// The catalogue's answer (matter, words, reason).
    pub found: Suggestion,
    /// Its units, the main one first, named and with their paths.
    pub units: Vec<SuggestedUnit>,
}

/// The route of a case.
#[derive(Debug, Clone)]
pub struct RouteDetail {
    /// The case.
    pub id: CaseId,
    /// The citizen's place, from 市 down to the location.
    pub place: Vec<UnitLabel>,
    /// Every hop, in order.
    pub hops: Vec<HopDetail>,
    /// Who holds the case now.
    pub holders: Vec<UnitLabel>,
    /// Who may receive it next.
    pub next: Vec<NextUnits>,
    /// The catalogue's suggestion, for centre staff, when the case has a location and a
    /// category.
    pub suggestion: Option<SuggestionDetail>,
}

impl App {
    /// `id` named.
    pub fn unit_label(&self, id: &UnitId) -> UnitLabel {
        let org = self.org();
        let unit = org.get(id);
        UnitLabel {
            id: id.clone(),
            name: unit.map(|u| u.name.clone()).unwrap_or_default(),
            level: unit.map(|u| u.level),
        }
    }

    /// From 市 down to `location`.
    fn place(&self, location: &UnitId) -> Vec<UnitLabel> {
        let mut chain: Vec<UnitLabel> = self
            .org()
            .ancestors(location)
            .into_iter()
            .rev()
            .map(|u| self.unit_label(&u.id))
            .collect();
        chain.push(self.unit_label(location));
        chain
    }

    /// The units `from` may transfer `case` to now, by asking `decide` itself.
    fn candidates(&self, case: &Case, from: &UnitId) -> Vec<UnitLabel> {
        let probe = Actor {
            username: "route-probe".into(),
            unit_id: from.clone(),
            roles: vec![Role::Dispatcher, Role::Handler],
            oversees: Vec::new(),
        };
        let (org, calendar, policy) = (self.org(), self.calendar(), self.policy());
        let ctx = Context {
            now: self.now(),
            actor: &probe,
            org: &org,
            calendar: &calendar,
            policy: &policy,
        };
        self.org()
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
            .map(|u| self.unit_label(&u.id))
            .collect()
    }

    /// 转办建议: the responsible unit(s) by the dispatch catalogue for a request at
    /// `location` of `category` with `text`, with the transfers from `viewer`'s unit.
    ///
    /// # Errors
    /// 403 for other roles than [`SUGGESTION_ROLES`]; 400 for an unknown location or a text
    /// longer than a title and a content.
    pub fn suggestion(
        &self,
        viewer: &Actor,
        location: &UnitId,
        category: Category,
        text: &str,
    ) -> Result<SuggestionDetail, Failure> {
        if !SUGGESTION_ROLES.iter().any(|r| viewer.roles.contains(r)) {
            return Err(Failure::role_not_allowed(
                "只有接线员、值班长和转办人员可以查看转办建议",
                "routing suggestions are for `operator`, `shift_leader` and `dispatcher`",
                SUGGESTION_ROLES,
            ));
        }
        if location.as_str().is_empty() {
            return Err(Failure::bad_request(
                "invalid_query",
                "`location_unit_id` must not be empty",
            ));
        }
        if text.chars().count() > domain::command::limits::CONTENT + domain::command::limits::TITLE
        {
            return Err(Failure::bad_request("invalid_query", "`text` is too long"));
        }
        self.suggest_for(viewer, location, category, text)
    }

    /// The suggestion, the viewer's role and the text's length checked by the caller.
    fn suggest_for(
        &self,
        viewer: &Actor,
        location: &UnitId,
        category: Category,
        text: &str,
    ) -> Result<SuggestionDetail, Failure> {
        let dispatch = crate::dispatch::dispatch().map_err(Failure::Internal)?;
        // The catalogue in force now; its reader was built when it came into force.
        let catalogue = Arc::clone(self.rules.current().rules.in_force(self.now()).catalogue());
        let reader = dispatch.reader_for(&catalogue).map_err(Failure::Internal)?;
        let found = dispatch
            .suggest_in(&reader, &self.org(), location, category, text)
            .map_err(|err| match err {
                RoutingError::UnknownLocation(_) => {
                    Failure::bad_request("unknown_unit", err.to_string())
                }
            })?;
        let units = found
            .units
            .iter()
            .map(|u| SuggestedUnit {
                unit: self.unit_label(&u.unit_id),
                kind: self.org().get(&u.unit_id).map(|x| x.kind),
                path: u.path.iter().map(|p| self.unit_label(p)).collect(),
                transfer_to: u.next_hop(&viewer.unit_id).map(|p| self.unit_label(p)),
            })
            .collect();
        Ok(SuggestionDetail {
            place: self.place(location),
            category,
            found,
            units,
        })
    }
}

impl AppState {
    /// 流转轨迹 of `case_id` as `viewer` may see it: outside their scope it does not exist.
    ///
    /// # Errors
    /// 404 for an unknown case or one outside the scope; store failures.
    pub async fn route(&self, viewer: &Actor, case_id: &CaseId) -> Result<RouteDetail, Failure> {
        let (case, history) = self.history(case_id).await?;
        if !may_view_case(viewer, &case, &self.org()) {
            return Err(AppError::NotFound(case_id.to_string()).into());
        }
        let mut events: Vec<domain::Event> = history.into_iter().map(|(_, e)| e).collect();
        // A unit whose part is over sees the route as it was when its part ended.
        let former = matches!(view_extent(viewer, &case, &self.org()), Extent::Until(_));
        let case = if former {
            events.truncate(visible_prefix(viewer, &events, &self.org()));
            events.iter().fold(Case::default(), domain::evolve)
        } else {
            case
        };
        let intake = case.intake();
        let place = intake
            .location_unit_id
            .as_ref()
            .map(|location| self.place(location))
            .unwrap_or_default();
        let centre_staff = SUGGESTION_ROLES.iter().any(|r| viewer.roles.contains(r));
        let suggestion = match (&intake.location_unit_id, intake.category) {
            (Some(location), Some(category))
                if centre_staff && self.org().get(location).is_some() =>
            {
                let text = format!("{} {}", intake.title, intake.content);
                // A saved case's title and content are within bounds: no length check.
                Some(self.suggest_for(viewer, location, category, &text)?)
            }
            _ => None,
        };
        let hops = route(&events)
            .into_iter()
            .map(|hop| HopDetail {
                from: self.unit_label(&UnitId::new(hop.from_unit_id.clone())),
                to: self.unit_label(&UnitId::new(hop.to_unit_id.clone())),
                hop,
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
            .filter(|_| !former)
            .map(|from| NextUnits {
                from: self.unit_label(from),
                candidates: self.candidates(&case, from),
            })
            .collect();
        Ok(RouteDetail {
            id: case_id.clone(),
            place,
            hops,
            holders: holders.iter().map(|u| self.unit_label(u)).collect(),
            next,
            suggestion,
        })
    }
}
