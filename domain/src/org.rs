//! 六级联动 — the six-level tree of places and units: 市 → 区/县 → 街道/乡镇 → 社区/村 → 网格 → 楼院.
//!
//! Every unit hangs in one tree whose root is the city hotline centre. A district centre stands for
//! its district: the district's departments and streets hang below it, and so on down to buildings.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifier of a unit (and of the place it stands for), e.g. `d.chengguan.s01`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnitId(pub String);

impl UnitId {
    /// Wraps a unit id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 层级 — the six levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 市
    City,
    /// 区/县
    District,
    /// 街道/乡镇
    Street,
    /// 社区/村
    Community,
    /// 网格
    Grid,
    /// 楼院
    Building,
}

impl Level {
    /// Its code on the wire (`city`, `district`, …), as serde writes it.
    pub fn code(self) -> &'static str {
        match self {
            Level::City => "city",
            Level::District => "district",
            Level::Street => "street",
            Level::Community => "community",
            Level::Grid => "grid",
            Level::Building => "building",
        }
    }

    /// 市, 区/县, 街道/乡镇, 社区/村, 网格, 楼院.
    pub fn label(self) -> &'static str {
        match self {
            Level::City => "市",
            Level::District => "区/县",
            Level::Street => "街道/乡镇",
            Level::Community => "社区/村",
            Level::Grid => "网格",
            Level::Building => "楼院",
        }
    }
}

/// What kind of body a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// 市热线中心 — the city hotline centre, root of the tree.
    HotlineCentre,
    /// 效能办 — the efficiency office.
    EfficiencyOffice,
    /// 局委办 — a city bureau.
    Bureau,
    /// 区中心 — a district (or county) hotline centre; stands for the district.
    DistrictCentre,
    /// 区属部门 — a district department.
    DistrictDepartment,
    /// 街道办/乡镇 — a street office or town.
    StreetOffice,
    /// 社区/村委会 — a community or village committee.
    CommunityCommittee,
    /// 网格站 — a grid station.
    GridStation,
    /// 楼院 — a building or courtyard.
    Building,
}

impl UnitKind {
    /// Whether the unit is a hotline centre (city or district) that accepts, transfers and calls back.
    pub fn is_centre(self) -> bool {
        matches!(self, UnitKind::HotlineCentre | UnitKind::DistrictCentre)
    }

    /// The level units of this kind sit at.
    pub fn level(self) -> Level {
        match self {
            UnitKind::HotlineCentre | UnitKind::EfficiencyOffice | UnitKind::Bureau => Level::City,
            UnitKind::DistrictCentre | UnitKind::DistrictDepartment => Level::District,
            UnitKind::StreetOffice => Level::Street,
            UnitKind::CommunityCommittee => Level::Community,
            UnitKind::GridStation => Level::Grid,
            UnitKind::Building => Level::Building,
        }
    }

    /// Its code on the wire (`hotline_centre`, `bureau`, …), as serde writes it.
    pub fn code(self) -> &'static str {
        match self {
            UnitKind::HotlineCentre => "hotline_centre",
            UnitKind::EfficiencyOffice => "efficiency_office",
            UnitKind::Bureau => "bureau",
            UnitKind::DistrictCentre => "district_centre",
            UnitKind::DistrictDepartment => "district_department",
            UnitKind::StreetOffice => "street_office",
            UnitKind::CommunityCommittee => "community_committee",
            UnitKind::GridStation => "grid_station",
            UnitKind::Building => "building",
        }
    }

    /// The Chinese label shown on screen.
    pub fn label(self) -> &'static str {
        match self {
            UnitKind::HotlineCentre => "市热线中心",
            UnitKind::EfficiencyOffice => "效能办",
            UnitKind::Bureau => "市直部门（局委办）",
            UnitKind::DistrictCentre => "区/县热线分中心",
            UnitKind::DistrictDepartment => "区/县属部门",
            UnitKind::StreetOffice => "街道办/乡镇",
            UnitKind::CommunityCommittee => "社区/村委会",
            UnitKind::GridStation => "网格站",
            UnitKind::Building => "楼院",
        }
    }
}

/// One unit of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Stable id.
    pub id: UnitId,
    /// Chinese name shown on screen.
    pub name: String,
    /// Its level in the six-level tree.
    pub level: Level,
    /// What kind of body it is.
    pub kind: UnitKind,
    /// The unit above it; `None` only for the root.
    pub parent_id: Option<UnitId>,
}

/// The tree is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    /// Two units share an id.
    #[error("unit id `{0}` appears twice")]
    DuplicateId(UnitId),
    /// A unit names a parent that does not come before it.
    #[error("unit `{0}` names parent `{1}`, which is not defined before it")]
    UnknownParent(UnitId, UnitId),
    /// There is not exactly one root.
    #[error("the tree must have exactly one root, found {0}")]
    RootCount(usize),
    /// A unit sits at a higher level than its parent.
    #[error("unit `{0}` is at a higher level than its parent")]
    LevelAboveParent(UnitId),
}

/// The whole tree, indexed for lookups.
#[derive(Debug, Clone)]
pub struct OrgTree {
    units: Vec<Unit>,
    index: HashMap<UnitId, usize>,
    parents: Vec<Option<usize>>,
}

impl OrgTree {
    /// Builds the tree from units listed parents first.
    ///
    /// # Errors
    /// [`OrgError::DuplicateId`], [`OrgError::UnknownParent`], [`OrgError::RootCount`],
    /// [`OrgError::LevelAboveParent`].
    pub fn new(units: Vec<Unit>) -> Result<Self, OrgError> {
        let mut index = HashMap::with_capacity(units.len());
        let mut parents = Vec::with_capacity(units.len());
        let mut n_roots = 0;
        for (i, unit) in units.iter().enumerate() {
            let parent = match &unit.parent_id {
                None => {
                    n_roots += 1;
                    None
                }
                Some(parent_id) => {
                    let p = *index.get(parent_id).ok_or_else(|| {
                        OrgError::UnknownParent(unit.id.clone(), parent_id.clone())
                    })?;
                    let parent_unit: &Unit = &units[p];
                    if unit.level < parent_unit.level {
                        return Err(OrgError::LevelAboveParent(unit.id.clone()));
                    }
                    Some(p)
                }
            };
            if index.insert(unit.id.clone(), i).is_some() {
                return Err(OrgError::DuplicateId(unit.id.clone()));
            }
            parents.push(parent);
        }
        if n_roots != 1 {
            return Err(OrgError::RootCount(n_roots));
        }
        Ok(Self {
            units,
            index,
            parents,
        })
    }

    /// All units, parents first.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The unit with this id.
    pub fn get(&self, id: &UnitId) -> Option<&Unit> {
        self.index.get(id).map(|&i| &self.units[i])
    }

    /// The root unit (the city hotline centre).
    pub fn root(&self) -> &Unit {
        // `new` guarantees exactly one root, and parents come first, so it is the first unit.
        &self.units[0]
    }

    /// The units above `id`, nearest first (not including `id`).
    pub fn ancestors(&self, id: &UnitId) -> Vec<&Unit> {
        let mut out = Vec::new();
        let mut cur = self.index.get(id).and_then(|&i| self.parents[i]);
        while let Some(i) = cur {
            out.push(&self.units[i]);
            cur = self.parents[i];
        }
        out
    }

    /// Whether `id` lies strictly below `ancestor`.
    pub fn is_below(&self, id: &UnitId, ancestor: &UnitId) -> bool {
        let Some(&target) = self.index.get(ancestor) else {
            return false;
        };
        let mut cur = self.index.get(id).and_then(|&i| self.parents[i]);
        while let Some(i) = cur {
            if i == target {
                return true;
            }
            cur = self.parents[i];
        }
        false
    }

    /// Whether `id` is `ancestor` itself or lies below it.
    pub fn is_within(&self, id: &UnitId, ancestor: &UnitId) -> bool {
        id == ancestor || self.is_below(id, ancestor)
    }

    /// The name of the place a unit stands for: a district centre (`城关区12345热线分中心`)
    /// names its district (`城关区`); every other unit its own name.
    pub fn place_name(unit: &Unit) -> &str {
        match unit.kind {
            UnitKind::DistrictCentre => unit
                .name
                .split("12345")
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or(&unit.name),
            _ => &unit.name,
        }
    }

    /// A unit named with its parents below the city, top down (`城关区 / 酒泉路街道 / 龙源社区 /
    /// 第一网格`), so units of the same name in different places are told apart; the city's
    /// own units are named alone. Unknown ids are returned as they are.
    pub fn path_label(&self, id: &UnitId) -> String {
        let Some(unit) = self.get(id) else {
            return id.to_string();
        };
        let mut parts: Vec<&str> = self
            .ancestors(id)
            .into_iter()
            .filter(|u| u.parent_id.is_some())
            .map(Self::place_name)
            .collect();
        parts.reverse();
        parts.push(Self::place_name(unit));
        parts.join(" / ")
    }

    /// The units a unit is ranked against (like with like): the city's bureaus together, the
    /// district centres together, a district's departments and street offices among
    /// themselves, a street's communities among themselves and its grids among themselves.
    /// Centres, the efficiency office and buildings are not ranked (`None`).
    pub fn peer_group(&self, id: &UnitId) -> Option<PeerGroup> {
        let unit = self.get(id)?;
        let street = || {
            std::iter::once(unit)
                .chain(self.ancestors(id))
                .find(|u| u.kind == UnitKind::StreetOffice)
        };
        let (key, label) = match unit.kind {
            UnitKind::Bureau => ("bureaus".to_owned(), "市局委办".to_owned()),
            UnitKind::DistrictCentre => {
                ("district_centres".to_owned(), "区/县热线分中心".to_owned())
            }
            UnitKind::DistrictDepartment | UnitKind::StreetOffice => {
                let district = self.district_of(id)?;
                (
                    format!("district:{}", district.id),
                    format!("{} 区属部门和街道", Self::place_name(district)),
                )
            }
            UnitKind::CommunityCommittee => {
                let street = street()?;
                (
                    format!("communities:{}", street.id),
                    format!("{} 社区", self.path_label(&street.id)),
                )
            }
            UnitKind::GridStation => {
                let street = street()?;
                (
                    format!("grids:{}", street.id),
                    format!("{} 网格", self.path_label(&street.id)),
                )
            }
            UnitKind::HotlineCentre | UnitKind::EfficiencyOffice | UnitKind::Building => {
                return None;
            }
        };
        Some(PeerGroup { key, label })
    }

    /// The district-level unit `id` belongs to (itself if it is one), if any.
    pub fn district_of(&self, id: &UnitId) -> Option<&Unit> {
        let unit = self.get(id)?;
        if unit.kind == UnitKind::DistrictCentre {
            return Some(unit);
        }
        self.ancestors(id)
            .into_iter()
            .find(|u| u.kind == UnitKind::DistrictCentre)
    }
}

/// A set of comparable units for a ranking ([`OrgTree::peer_group`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerGroup {
    /// Stable key, e.g. `district:d.chengguan`.
    pub key: String,
    /// Its Chinese label, e.g. `城关区 区属部门和街道`.
    pub label: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn unit(id: &str, level: Level, kind: UnitKind, parent: Option<&str>) -> Unit {
        Unit {
            id: UnitId::new(id),
            name: id.to_owned(),
            level,
            kind,
            parent_id: parent.map(UnitId::new),
        }
    }

    #[test]
    fn a_level_s_code_is_its_serde_name() {
        use Level::*;
        for level in [City, District, Street, Community, Grid, Building] {
            assert_eq!(
                serde_json::to_value(level).expect("level"),
                serde_json::Value::String(level.code().to_owned())
            );
            assert!(!level.label().is_ascii());
        }
    }

    #[test]
    fn a_kind_s_code_is_its_serde_name() {
        use UnitKind::*;
        for kind in [
            HotlineCentre,
            EfficiencyOffice,
            Bureau,
            DistrictCentre,
            DistrictDepartment,
            StreetOffice,
            CommunityCommittee,
            GridStation,
            Building,
        ] {
            assert_eq!(
                serde_json::to_value(kind).expect("kind"),
                serde_json::Value::String(kind.code().to_owned())
            );
            assert!(!kind.label().is_ascii());
        }
    }

    /// A small city: the centre, a bureau, the efficiency office, two districts with a
    /// department, a street, a community, a grid and a building.
    pub(crate) fn small_city() -> OrgTree {
        use Level::*;
        use UnitKind::*;
        OrgTree::new(vec![
            unit("city", City, HotlineCentre, None),
            unit("city.efficiency", City, EfficiencyOffice, Some("city")),
            unit("city.bureau.housing", City, Bureau, Some("city")),
            unit("city.bureau.urban", City, Bureau, Some("city")),
            unit("d.a", District, DistrictCentre, Some("city")),
            unit("d.a.dept.urban", District, DistrictDepartment, Some("d.a")),
            unit("d.a.s01", Street, StreetOffice, Some("d.a")),
            unit("d.a.s02", Street, StreetOffice, Some("d.a")),
            unit(
                "d.a.s01.c01",
                Community,
                CommunityCommittee,
                Some("d.a.s01"),
            ),
            unit("d.a.s01.c01.g01", Grid, GridStation, Some("d.a.s01.c01")),
            unit(
                "d.a.s01.c01.g01.b01",
                Level::Building,
                UnitKind::Building,
                Some("d.a.s01.c01.g01"),
            ),
            unit("d.b", District, DistrictCentre, Some("city")),
            unit("d.b.s01", Street, StreetOffice, Some("d.b")),
        ])
        .expect("the test city is well formed")
    }

    #[test]
    fn a_unit_is_below_its_ancestors_only() {
        let org = small_city();
        let grid = UnitId::new("d.a.s01.c01.g01");
        assert!(org.is_below(&grid, &UnitId::new("d.a.s01")));
        assert!(org.is_below(&grid, &UnitId::new("city")));
        assert!(!org.is_below(&grid, &UnitId::new("d.b")));
        assert!(!org.is_below(&grid, &grid));
        assert!(org.is_within(&grid, &grid));
        assert_eq!(org.district_of(&grid).map(|u| u.id.as_str()), Some("d.a"));
        assert_eq!(org.root().id.as_str(), "city");
    }

    fn named(id: &str, name: &str, level: Level, kind: UnitKind, parent: Option<&str>) -> Unit {
        Unit {
            name: name.to_owned(),
            ..unit(id, level, kind, parent)
        }
    }

    fn named_city() -> OrgTree {
        use Level::*;
        use UnitKind::*;
        OrgTree::new(vec![
            named("city", "兰州市热线中心", City, HotlineCentre, None),
            named(
                "city.bureau.housing",
                "市住建局",
                City,
                Bureau,
                Some("city"),
            ),
            named(
                "d.a",
                "城关区12345热线分中心",
                District,
                DistrictCentre,
                Some("city"),
            ),
            named(
                "d.a.dept.urban",
                "城关区城管局",
                District,
                DistrictDepartment,
                Some("d.a"),
            ),
            named("d.a.s01", "张掖路街道", Street, StreetOffice, Some("d.a")),
            named(
                "d.a.s01.c01",
                "龙源社区",
                Community,
                CommunityCommittee,
                Some("d.a.s01"),
            ),
            named(
                "d.a.s01.c01.g01",
                "第一网格",
                Grid,
                GridStation,
                Some("d.a.s01.c01"),
            ),
            named(
                "d.b",
                "七里河区12345热线分中心",
                District,
                DistrictCentre,
                Some("city"),
            ),
            named("d.b.s01", "西园街道", Street, StreetOffice, Some("d.b")),
        ])
        .expect("well formed")
    }

    #[test]
    fn a_unit_is_named_with_its_places_below_the_city() {
        let org = named_city();
        let label = |id: &str| org.path_label(&UnitId::new(id));
        assert_eq!(
            label("d.a.s01.c01.g01"),
            "城关区 / 张掖路街道 / 龙源社区 / 第一网格"
        );
        assert_eq!(label("d.a"), "城关区");
        assert_eq!(label("city.bureau.housing"), "市住建局");
        assert_eq!(label("city"), "兰州市热线中心");
        assert_eq!(label("nowhere"), "nowhere");
    }

    #[test]
    fn units_are_ranked_like_with_like() {
        let org = named_city();
        let group = |id: &str| org.peer_group(&UnitId::new(id)).map(|g| (g.key, g.label));
        assert_eq!(
            group("city.bureau.housing"),
            Some(("bureaus".into(), "市局委办".into()))
        );
        assert_eq!(group("d.a.dept.urban"), group("d.a.s01"));
        assert_eq!(
            group("d.a.s01").map(|g| g.1),
            Some("城关区 区属部门和街道".into())
        );
        assert_ne!(group("d.a.s01"), group("d.b.s01"), "another district");
        assert_eq!(
            group("d.a.s01.c01.g01"),
            Some(("grids:d.a.s01".into(), "城关区 / 张掖路街道 网格".into()))
        );
        assert_ne!(group("d.a.s01.c01"), group("d.a.s01.c01.g01"));
        assert_eq!(group("city"), None);
    }

    #[test]
    fn a_tree_with_an_unknown_parent_is_refused() {
        let err = OrgTree::new(vec![
            unit("city", Level::City, UnitKind::HotlineCentre, None),
            unit(
                "x",
                Level::District,
                UnitKind::DistrictCentre,
                Some("nowhere"),
            ),
        ])
        .unwrap_err();
        assert!(matches!(err, OrgError::UnknownParent(..)));
    }

    #[test]
    fn a_tree_with_two_roots_or_duplicate_ids_is_refused() {
        let two_roots = OrgTree::new(vec![
            unit("a", Level::City, UnitKind::HotlineCentre, None),
            unit("b", Level::City, UnitKind::HotlineCentre, None),
        ]);
        assert_eq!(two_roots.unwrap_err(), OrgError::RootCount(2));
        let dup = OrgTree::new(vec![
            unit("a", Level::City, UnitKind::HotlineCentre, None),
            unit("a", Level::City, UnitKind::Bureau, Some("a")),
        ]);
        assert!(matches!(dup.unwrap_err(), OrgError::DuplicateId(_)));
    }

    #[test]
    fn a_unit_above_its_parent_level_is_refused() {
        let err = OrgTree::new(vec![
            unit("city", Level::City, UnitKind::HotlineCentre, None),
            unit("s", Level::Street, UnitKind::StreetOffice, Some("city")),
            unit("d", Level::District, UnitKind::DistrictCentre, Some("s")),
        ])
        .unwrap_err();
        assert_eq!(err, OrgError::LevelAboveParent(UnitId::new("d")));
    }
}
