//! 职责清单 — the routing suggestion for a new case: from the citizen's place in the six-level
//! tree and the request's category (and, when given, words of its title and content), the
//! units responsible by the responsibility table, each with the path the transfer takes
//! (city centre → district centre → unit).
//!
//! The table is data (`fixtures/responsibility.json`): an ordered list of rules, the first
//! that matches and resolves at the location wins. A rule names its targets by unit kind (which
//! fixes the level) and, for bureaus and district departments, a slug: `hrss` is the city's
//! `city.bureau.hrss`, or the location's district's `d.<district>.dept.hrss`.
//!
//! # Invariants
//! - Every suggested unit is reached by transfers the rules allow (`decide::may_transfer_to`):
//!   the city centre to a bureau or a district centre, the district centre down its subtree.
//!   A target that cannot be reached so is never suggested.
//! - Pure: the table and the tree come in as arguments.

use serde::{Deserialize, Serialize};

use crate::decide::may_transfer_to;
use crate::kinds::Category;
use crate::org::{Level, OrgTree, Unit, UnitId, UnitKind};

/// One unit a rule points to: a kind (and so a level) and, for bureaus and district
/// departments, which one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The level, stated for readers of the table; must agree with `unit_kind`.
    pub level: Level,
    /// What kind of unit.
    pub unit_kind: UnitKind,
    /// For `bureau` and `district_department`: the last part of the unit id (`hrss` →
    /// `city.bureau.hrss` or `d.<district>.dept.hrss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
}

/// One line of the responsibility table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable code, e.g. `street_vending`.
    pub id: String,
    /// 事项 — the Chinese name of the matter, shown as the reason.
    pub label: String,
    /// The categories it covers; empty means every category.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Words of the title or content; empty means the rule matches on category alone.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The responsible units, all suggested (the first is the main one).
    pub targets: Vec<Target>,
    /// Used only when no target resolves at the location (e.g. no district above it).
    #[serde(default)]
    pub fallback: Vec<Target>,
}

/// The responsibility table as stored in `fixtures/responsibility.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsibilityTable {
    /// Free text describing the table's sources.
    #[serde(default)]
    pub comment: String,
    /// The rules, tried in order.
    pub rules: Vec<Rule>,
}

/// The table is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Two rules share an id.
    #[error("rule id `{0}` appears twice")]
    DuplicateRule(String),
    /// A rule has no targets.
    #[error("rule `{0}` has no targets")]
    NoTargets(String),
    /// A target's level does not match its unit kind.
    #[error("rule `{0}` names a target whose level does not match its unit kind")]
    LevelMismatch(String),
    /// A bureau or district department without a slug, or a slug on another kind.
    #[error("rule `{0}` needs a slug exactly for bureau and district department targets")]
    Slug(String),
    /// A target kind that never handles cases (centre, efficiency office, building).
    #[error("rule `{0}` names a unit kind that does not handle cases")]
    NotAHandler(String),
}

/// Why a suggestion could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// The location is not in the tree.
    #[error("unknown unit `{0}`")]
    UnknownLocation(UnitId),
}

/// One suggested unit with the path of transfers that reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestedUnit {
    /// The responsible unit.
    pub unit_id: UnitId,
    /// From the city centre to the unit: `[city, bureau]` or `[city, district, unit]`.
    pub path: Vec<UnitId>,
}

impl SuggestedUnit {
    /// The unit `from` transfers to on the way, if `from` is on the path before the end.
    pub fn next_hop(&self, from: &UnitId) -> Option<&UnitId> {
        let i = self.path.iter().position(|u| u == from)?;
        self.path.get(i + 1)
    }
}

/// What the table says for a location and a category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The rule that matched (`None` when none did).
    pub rule_id: Option<String>,
    /// The reason in Chinese: the rule, what matched, whom it points to.
    pub reason: String,
    /// The units, main one first; empty when no rule resolves at the location.
    pub units: Vec<SuggestedUnit>,
}

impl Target {
    fn handles_cases(&self) -> bool {
        matches!(
            self.unit_kind,
            UnitKind::Bureau
                | UnitKind::DistrictCentre
                | UnitKind::DistrictDepartment
                | UnitKind::StreetOffice
                | UnitKind::CommunityCommittee
                | UnitKind::GridStation
        )
    }

    /// The unit this target means for a case located at `location`.
    fn resolve<'a>(&self, org: &'a OrgTree, location: &Unit) -> Option<&'a Unit> {
        let found = match self.unit_kind {
            UnitKind::Bureau => {
                let slug = self.slug.as_deref()?;
                org.get(&UnitId::new(format!("{}.bureau.{slug}", org.root().id)))
            }
            UnitKind::DistrictDepartment => {
                let slug = self.slug.as_deref()?;
                let district = org.district_of(&location.id)?;
                org.get(&UnitId::new(format!("{}.dept.{slug}", district.id)))
            }
            UnitKind::DistrictCentre => org.district_of(&location.id),
            kind => std::iter::once(org.get(&location.id)?)
                .chain(org.ancestors(&location.id))
                .find(|u| u.kind == kind),
        }?;
        (found.kind == self.unit_kind).then_some(found)
    }
}

impl Rule {
    /// The keyword that matched, `Some("")` for a rule without keywords, `None` when the rule
    /// does not apply.
    fn matches(&self, category: Category, text: &str) -> Option<&str> {
        if !self.categories.is_empty() && !self.categories.contains(&category) {
            return None;
        }
        if self.keywords.is_empty() {
            return Some("");
        }
        self.keywords
            .iter()
            .find(|k| text.contains(k.as_str()))
            .map(String::as_str)
    }
}

impl ResponsibilityTable {
    /// Checks the table's shape (not the tree: a slug may name a unit some districts lack).
    ///
    /// # Errors
    /// [`TableError::DuplicateRule`], [`TableError::NoTargets`], [`TableError::LevelMismatch`],
    /// [`TableError::Slug`], [`TableError::NotAHandler`].
    pub fn validate(&self) -> Result<(), TableError> {
        let mut seen = std::collections::HashSet::new();
        for rule in &self.rules {
            if !seen.insert(rule.id.as_str()) {
                return Err(TableError::DuplicateRule(rule.id.clone()));
            }
            if rule.targets.is_empty() {
                return Err(TableError::NoTargets(rule.id.clone()));
            }
            for target in rule.targets.iter().chain(&rule.fallback) {
                if target.unit_kind.level() != target.level {
                    return Err(TableError::LevelMismatch(rule.id.clone()));
                }
                if !target.handles_cases() {
                    return Err(TableError::NotAHandler(rule.id.clone()));
                }
                let needs_slug = matches!(
                    target.unit_kind,
                    UnitKind::Bureau | UnitKind::DistrictDepartment
                );
                let slug_ok = target.slug.as_deref().is_some_and(|s| !s.trim().is_empty());
                if needs_slug != slug_ok {
                    return Err(TableError::Slug(rule.id.clone()));
                }
            }
        }
        Ok(())
    }
}

/// The path of transfers from the city centre to `unit`, if the rules allow every hop.
fn path_to(org: &OrgTree, unit: &Unit) -> Option<Vec<UnitId>> {
    let root = &org.root().id;
    let mut path = vec![root.clone()];
    if unit.parent_id.as_ref() != Some(root) {
        path.push(org.district_of(&unit.id)?.id.clone());
    }
    path.push(unit.id.clone());
    let allowed = path
        .windows(2)
        .all(|hop| may_transfer_to(org, &hop[0], &hop[1]).is_ok());
    allowed.then_some(path)
}

fn resolve_all(org: &OrgTree, location: &Unit, targets: &[Target]) -> Vec<SuggestedUnit> {
    let mut out: Vec<SuggestedUnit> = Vec::new();
    for target in targets {
        let Some(unit) = target.resolve(org, location) else {
            continue;
        };
        if out.iter().any(|s| s.unit_id == unit.id) {
            continue;
        }
        if let Some(path) = path_to(org, unit) {
            out.push(SuggestedUnit {
                unit_id: unit.id.clone(),
                path,
            });
        }
    }
    out
}

/// The responsible units for a case at `location` of `category`, `text` being its title and
/// content (may be empty). The first rule that matches and resolves at the location wins.
///
/// # Errors
/// [`RoutingError::UnknownLocation`] when `location` is not in the tree.
pub fn suggest(
    table: &ResponsibilityTable,
    org: &OrgTree,
    location: &UnitId,
    category: Category,
    text: &str,
) -> Result<Suggestion, RoutingError> {
    let place = org
        .get(location)
        .ok_or_else(|| RoutingError::UnknownLocation(location.clone()))?;
    for rule in &table.rules {
        let Some(keyword) = rule.matches(category, text) else {
            continue;
        };
        let units = match resolve_all(org, place, &rule.targets) {
            units if !units.is_empty() => units,
            _ => resolve_all(org, place, &rule.fallback),
        };
        if units.is_empty() {
            continue;
        }
        let matched = if keyword.is_empty() {
            format!("类别为「{}」", category.label())
        } else {
            format!("类别为「{}」且诉求含「{keyword}」", category.label())
        };
        let whom: Vec<String> = units
            .iter()
            .filter_map(|u| org.get(&u.unit_id))
            .map(|u| format!("{}（{}）", u.name, u.kind.label()))
            .collect();
        return Ok(Suggestion {
            rule_id: Some(rule.id.clone()),
            reason: format!(
                "职责清单「{}」：{matched}，由{}负责",
                rule.label,
                whom.join("、")
            ),
            units,
        });
    }
    Ok(Suggestion {
        rule_id: None,
        reason: format!(
            "职责清单中没有适用于该地点的「{}」类规则，请人工判断",
            category.label()
        ),
        units: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::tests::small_city;

    fn target(level: Level, unit_kind: UnitKind, slug: Option<&str>) -> Target {
        Target {
            level,
            unit_kind,
            slug: slug.map(str::to_owned),
        }
    }

    fn rule(id: &str, categories: &[Category], keywords: &[&str], targets: Vec<Target>) -> Rule {
        Rule {
            id: id.into(),
            label: id.into(),
            categories: categories.to_vec(),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            targets,
            fallback: Vec::new(),
        }
    }

    /// A table shaped like the fixture, on the small test city.
    fn table() -> ResponsibilityTable {
        use Category::*;
        let mut vending = rule(
            "street_vending",
            &[Complaint, Report],
            &["摊贩", "占道"],
            vec![
                target(Level::District, UnitKind::DistrictDepartment, Some("urban")),
                target(Level::Street, UnitKind::StreetOffice, None),
            ],
        );
        vending.fallback = vec![target(Level::City, UnitKind::Bureau, Some("urban"))];
        let mut housing = rule(
            "housing",
            &[],
            &["物业"],
            vec![target(
                Level::District,
                UnitKind::DistrictDepartment,
                Some("housing"),
            )],
        );
        housing.fallback = vec![target(Level::City, UnitKind::Bureau, Some("housing"))];
        ResponsibilityTable {
            comment: String::new(),
            rules: vec![
                vending,
                housing,
                rule(
                    "grid_help",
                    &[HelpRequest],
                    &["独居老人"],
                    vec![target(Level::Grid, UnitKind::GridStation, None)],
                ),
                rule(
                    "local",
                    &[Complaint, Report, HelpRequest],
                    &[],
                    vec![target(Level::Street, UnitKind::StreetOffice, None)],
                ),
                rule(
                    "district",
                    &[],
                    &[],
                    vec![target(Level::District, UnitKind::DistrictCentre, None)],
                ),
            ],
        }
    }

    fn ids(s: &Suggestion) -> Vec<&str> {
        s.units.iter().map(|u| u.unit_id.as_str()).collect()
    }

    fn run(location: &str, category: Category, text: &str) -> Suggestion {
        suggest(
            &table(),
            &small_city(),
            &UnitId::new(location),
            category,
            text,
        )
        .expect("known location")
    }

    /// Every suggestion is reached by allowed transfers: the last hop comes from the city
    /// centre or from the location's district centre.
    fn assert_transferable(s: &Suggestion, location: &str) {
        let org = small_city();
        for unit in &s.units {
            assert_eq!(unit.path.first().map(UnitId::as_str), Some("city"));
            assert_eq!(unit.path.last(), Some(&unit.unit_id));
            for hop in unit.path.windows(2) {
                assert!(may_transfer_to(&org, &hop[0], &hop[1]).is_ok(), "{hop:?}");
            }
            let from = &unit.path[unit.path.len() - 2];
            let district = org.district_of(&UnitId::new(location)).map(|u| &u.id);
            assert!(from.as_str() == "city" || Some(from) == district, "{from}");
        }
    }

    #[test]
    fn street_vending_goes_to_the_district_urban_department_and_the_street() {
        let s = run(
            "d.a.s01.c01.g01.b01",
            Category::Complaint,
            "楼下有流动摊贩占道",
        );
        assert_eq!(s.rule_id.as_deref(), Some("street_vending"));
        assert_eq!(ids(&s), ["d.a.dept.urban", "d.a.s01"]);
        assert_eq!(
            s.units[0].path,
            [
                UnitId::new("city"),
                UnitId::new("d.a"),
                UnitId::new("d.a.dept.urban")
            ]
        );
        assert!(
            s.reason.contains("投诉") && s.reason.contains("摊贩"),
            "{}",
            s.reason
        );
        // The small test city names its units by their ids.
        assert!(
            s.reason.contains("d.a.dept.urban（区/县属部门）"),
            "{}",
            s.reason
        );
        assert_transferable(&s, "d.a.s01.c01.g01.b01");
    }

    #[test]
    fn a_rule_skips_targets_the_location_lacks() {
        // District b has no urban department in the test city: only its street is suggested.
        let s = run("d.b.s01", Category::Report, "摊贩");
        assert_eq!(ids(&s), ["d.b.s01"]);
        assert_transferable(&s, "d.b.s01");
    }

    #[test]
    fn a_rule_falls_back_when_no_target_resolves() {
        // At city level there is no district: the city bureau takes vending and housing.
        let s = run("city", Category::Complaint, "摊贩");
        assert_eq!(ids(&s), ["city.bureau.urban"]);
        assert_eq!(
            s.units[0].path,
            [UnitId::new("city"), UnitId::new("city.bureau.urban")]
        );
        let s = run("city", Category::Inquiry, "物业费");
        assert_eq!(ids(&s), ["city.bureau.housing"]);
        assert_transferable(&s, "city");
    }

    #[test]
    fn a_keyword_rule_needs_its_category_and_a_keyword() {
        // Praise of a vendor is not a vending complaint: the category-wide rule answers.
        let s = run("d.a.s01", Category::Praise, "摊贩");
        assert_eq!(s.rule_id.as_deref(), Some("district"));
        assert_eq!(ids(&s), ["d.a"]);
        // A complaint without a keyword goes to the street (属地).
        let s = run("d.a.s01.c01", Category::Complaint, "噪音扰民");
        assert_eq!(s.rule_id.as_deref(), Some("local"));
        assert_eq!(ids(&s), ["d.a.s01"]);
        assert!(s.reason.contains("类别为「投诉」"), "{}", s.reason);
    }

    #[test]
    fn a_rule_with_no_categories_covers_every_category() {
        let s = run("d.a.s02", Category::Proposal, "物业管理");
        assert_eq!(s.rule_id.as_deref(), Some("housing"));
        // District a has no housing department in the test city: the fallback bureau.
        assert_eq!(ids(&s), ["city.bureau.housing"]);
        assert_transferable(&s, "d.a.s02");
    }

    #[test]
    fn a_grid_rule_needs_a_location_at_grid_level_or_below() {
        let s = run(
            "d.a.s01.c01.g01.b01",
            Category::HelpRequest,
            "独居老人需要帮助",
        );
        assert_eq!(ids(&s), ["d.a.s01.c01.g01"]);
        assert_eq!(
            s.units[0].path,
            [
                UnitId::new("city"),
                UnitId::new("d.a"),
                UnitId::new("d.a.s01.c01.g01")
            ]
        );
        assert_transferable(&s, "d.a.s01.c01.g01.b01");
        // From a street the grid is unknown: the next rule (the street) answers.
        let s = run("d.a.s01", Category::HelpRequest, "独居老人需要帮助");
        assert_eq!(s.rule_id.as_deref(), Some("local"));
        assert_eq!(ids(&s), ["d.a.s01"]);
    }

    #[test]
    fn every_level_of_the_tree_gets_a_transferable_suggestion() {
        let cases = [
            ("city", None),
            ("d.a", Some("d.a")),
            ("d.a.dept.urban", Some("d.a")),
            ("d.a.s01", Some("d.a.s01")),
            ("d.a.s01.c01", Some("d.a.s01")),
            ("d.a.s01.c01.g01", Some("d.a.s01")),
            ("d.a.s01.c01.g01.b01", Some("d.a.s01")),
        ];
        for (location, expected) in cases {
            let s = run(location, Category::Complaint, "");
            assert_eq!(ids(&s).first().copied(), expected, "{location}");
            assert_transferable(&s, location);
            let s = run(location, Category::Inquiry, "");
            assert_transferable(&s, location);
        }
        // Inside a district the district centre answers an inquiry.
        assert_eq!(
            ids(&run("d.a.s01.c01.g01.b01", Category::Inquiry, "")),
            ["d.a"]
        );
    }

    #[test]
    fn no_rule_at_the_city_level_gives_no_units_and_says_so() {
        let s = run("city", Category::Complaint, "");
        assert_eq!(s.rule_id, None);
        assert!(s.units.is_empty());
        assert!(s.reason.contains("人工"), "{}", s.reason);
    }

    #[test]
    fn an_unknown_location_is_refused() {
        let err = suggest(
            &table(),
            &small_city(),
            &UnitId::new("nowhere"),
            Category::Inquiry,
            "",
        )
        .unwrap_err();
        assert_eq!(err, RoutingError::UnknownLocation(UnitId::new("nowhere")));
    }

    #[test]
    fn the_next_hop_depends_on_who_transfers() {
        let s = run("d.a.s01", Category::Complaint, "摊贩");
        let main = &s.units[0];
        assert_eq!(
            main.next_hop(&UnitId::new("city")),
            Some(&UnitId::new("d.a"))
        );
        assert_eq!(
            main.next_hop(&UnitId::new("d.a")),
            Some(&UnitId::new("d.a.dept.urban"))
        );
        assert_eq!(main.next_hop(&UnitId::new("d.b")), None);
    }

    #[test]
    fn malformed_tables_are_refused() {
        let mut t = table();
        t.rules.push(t.rules[0].clone());
        assert!(matches!(t.validate(), Err(TableError::DuplicateRule(_))));
        let mut t = table();
        t.rules[0].targets[0].level = Level::City;
        assert!(matches!(t.validate(), Err(TableError::LevelMismatch(_))));
        let mut t = table();
        t.rules[0].targets[0].slug = None;
        assert!(matches!(t.validate(), Err(TableError::Slug(_))));
        let mut t = table();
        t.rules[0].targets = vec![target(Level::City, UnitKind::HotlineCentre, None)];
        assert!(matches!(t.validate(), Err(TableError::NotAHandler(_))));
        let mut t = table();
        t.rules[0].targets.clear();
        assert!(matches!(t.validate(), Err(TableError::NoTargets(_))));
        assert_eq!(table().validate(), Ok(()));
    }
}
