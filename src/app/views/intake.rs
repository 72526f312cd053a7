//! What the operator's console (座席受理) asks besides the case views: whether the viewer may
//! take calls at all, the places and units found by name (the unit search the API's
//! `GET /api/v1/units?q=` answers too), and the knowledge base's suggestions while a request
//! is typed, refused while its index is still catching up.

use domain::org::{Level, OrgTree, Unit, UnitId, UnitKind};
use domain::roles::Actor;
use knowledge_base::index::SearchPage;

use crate::app::failure::Failure;
use crate::app::{App, AppError, AppState};

/// A unit search: by parent, level and text (the name, else the path, contains it).
#[derive(Debug, Clone, Default)]
pub struct UnitSearch {
    /// Only the children of this unit.
    pub parent_id: Option<UnitId>,
    /// Only units at this level.
    pub level: Option<Level>,
    /// Units whose name (or path) contains this text, best matches first; without it, every
    /// unit, parents first.
    pub text: Option<String>,
    /// Only places of the six-level tree (the city, districts, streets, communities, grids,
    /// buildings): where a citizen can be, not bureaus, departments or offices.
    pub places_only: bool,
    /// With `text`: how many units at most.
    pub limit: usize,
}

/// A unit found, with its path (`城关区 / 张掖路街道 / 西沙社区`).
#[derive(Debug, Clone)]
pub struct FoundUnit<'a> {
    /// The unit.
    pub unit: &'a Unit,
    /// Its places below the city, top down.
    pub path: String,
}

/// Whether units of `kind` stand for a place a citizen can be in.
fn is_place(kind: UnitKind) -> bool {
    !matches!(
        kind,
        UnitKind::EfficiencyOffice | UnitKind::Bureau | UnitKind::DistrictDepartment
    )
}

/// City first, buildings last.
fn level_rank(level: Level) -> u8 {
    match level {
        Level::City => 0,
        Level::District => 1,
        Level::Street => 2,
        Level::Community => 3,
        Level::Grid => 4,
        Level::Building => 5,
    }
}

impl App {
    /// Whether `actor` may register cases (受理), asked of the rules
    /// (`domain::actions::may_create`).
    ///
    /// # Errors
    /// The refusal as a failure to show (403, naming the roles that may).
    pub fn may_take_calls(&self, actor: &Actor) -> Result<(), Failure> {
        let (org, rules, now) = (self.org(), self.rules.current(), self.now());
        domain::actions::may_create(&self.context(actor, &org, rules.rules.in_force(now), now))
            .map_err(|err| AppError::Domain(err).into())
    }

    /// The units matching `search` ([`find_units`]) in the tree in force, each with its
    /// path.
    pub fn find_units(&self, search: &UnitSearch) -> Vec<(Unit, String)> {
        find_units(&self.org(), search)
            .into_iter()
            .map(|found| (found.unit.clone(), found.path))
            .collect()
    }
}

/// The units of `org` matching `search`: with text, the name itself first, then names that
/// start with it, names that contain it, paths that contain it (higher levels first within
/// each), at most `limit`; without text, every unit matching the other conditions, in the
/// tree's order.
pub fn find_units<'a>(org: &'a OrgTree, search: &UnitSearch) -> Vec<FoundUnit<'a>> {
    let candidates = org
        .units()
        .iter()
        .filter(|u| search.parent_id.is_none() || u.parent_id == search.parent_id)
        .filter(|u| search.level.is_none_or(|l| u.level == l))
        .filter(|u| !search.places_only || is_place(u.kind));
    let text = search
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(text) = text else {
        return candidates
            .map(|unit| FoundUnit {
                unit,
                path: org.path_label(&unit.id),
            })
            .collect();
    };
    let mut found: Vec<(u8, FoundUnit<'a>)> = candidates
        .filter_map(|unit| {
            let path = org.path_label(&unit.id);
            let closeness = if unit.name == text {
                0
            } else if unit.name.starts_with(text) {
                1
            } else if unit.name.contains(text) {
                2
            } else if path.contains(text) {
                3
            } else {
                return None;
            };
            Some((closeness, FoundUnit { unit, path }))
        })
        .collect();
    found.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| level_rank(a.1.unit.level).cmp(&level_rank(b.1.unit.level)))
            .then_with(|| a.1.path.cmp(&b.1.path))
    });
    found
        .into_iter()
        .take(search.limit)
        .map(|(_, unit)| unit)
        .collect()
}

impl AppState {
    /// 知识库推荐: the published, valid articles for `text` as it is typed, the best `limit`.
    ///
    /// # Errors
    /// 503 while the index catches up; index failures.
    pub async fn kb_suggestions(&self, text: &str, limit: usize) -> Result<SearchPage, Failure> {
        super::kb_index_ready(&self.kb).await?;
        self.kb
            .suggest(text, limit)
            .map_err(|e| Failure::Internal(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(found: &[FoundUnit<'_>]) -> Vec<String> {
        found.iter().map(|f| f.unit.id.to_string()).collect()
    }

    #[test]
    fn a_name_finds_the_place_itself_first_and_then_what_lies_in_it() {
        let org = crate::directory::load_org().expect("the demo tree");
        let found = find_units(
            &org,
            &UnitSearch {
                text: Some("张掖路".into()),
                places_only: true,
                limit: 5,
                ..UnitSearch::default()
            },
        );
        assert_eq!(found[0].unit.id.as_str(), "d.chengguan.s02");
        assert_eq!(found[0].path, "城关区 / 张掖路街道");
        // Then the places below it, found by their path, higher levels first.
        assert_eq!(found[1].unit.level, Level::Community);
        assert!(found[1].path.starts_with("城关区 / 张掖路街道 / "));
        assert!(found.len() <= 5);
    }

    #[test]
    fn places_leave_out_bureaus_departments_and_the_efficiency_office() {
        let org = crate::directory::load_org().expect("the demo tree");
        let places = ids(&find_units(
            &org,
            &UnitSearch {
                parent_id: Some(UnitId::new("city")),
                places_only: true,
                ..UnitSearch::default()
            },
        ));
        assert!(places.iter().all(|id| id.starts_with("d.")), "{places:?}");
        let units = ids(&find_units(
            &org,
            &UnitSearch {
                parent_id: Some(UnitId::new("city")),
                ..UnitSearch::default()
            },
        ));
        assert!(units.iter().any(|id| id == "city.bureau.housing"));
        assert!(units.len() > places.len());
    }
}
