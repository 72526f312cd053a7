//! 派单目录 — the routing suggestion for a new case: from the citizen's place in the six-level
//! tree, the request's category and the words of its title and content, the matter (事项) of
//! the dispatch catalogue the request is about and the units responsible for it, each with the
//! path the transfer takes (city centre → district centre → unit).
//!
//! The catalogue is data (`fixtures/dispatch-catalogue.json`), shaped like GB/T 39666-2020
//! (政府热线服务分类与代码): matters in levels (大类 > 中类 > 小类, two digits of the code
//! per level, `03` > `0301` > `030101`), each with the words callers use for it and the
//! responsible units. A target names a unit kind (which fixes the level) and, for bureaus and
//! district departments, a slug: `hrss` is the city's `city.bureau.hrss`, or the location's
//! district's `d.<district>.dept.hrss`. A matter without targets of its own takes its
//! parent's (targets and fallback together).
//!
//! # Choosing the matter
//! The words come segmented (the binary uses the knowledge base's jieba analysis), in the
//! order of the text; a keyword matches when it is one of the words (a word inside a longer
//! catalogue word of the text, 工资 in 拖欠工资, is part of that phrase and not counted
//! again). A matter is a candidate when one of its own keywords matched, the category is one
//! it covers, and it has targets. Context words (声音 for noise, 司机 for buses) never make a
//! candidate: they add to the specific count of one a keyword made. A keyword the request
//! says only as a place (天桥 in 天桥底下的流浪汉; the caller of [`suggest_with_places`] says
//! which) counts as a generic word, and a generic word said so is dropped. Candidates are
//! ranked by, in order: the weight of the specific words matched along their path (their own
//! and their ancestors', so a 小类 that matched always beats its 中类): two for a keyword, one
//! for a context word or a shared keyword (one that matters of different lines of work list,
//! 不退 for consumer disputes and training schools), then the earliest mention (callers say what it is about first, in the
//! title), the generic words matched (小区, 楼上: words that say little alone, so they never
//! beat a specific one), depth, the length of the longest keyword, then catalogue order; a
//! tie on everything but the order is said in the reason. Matters without keywords answer
//! by category alone, only when no keyword matter applies (属地 complaints, district
//! inquiries).
//! The first candidate whose targets (or fallback) resolve at the location wins.
//!
//! # With similar cases
//! [`suggest_with_model`] also asks a model learned from labelled requests
//! ([`crate::learned`], labels: the first unit as a [`Target`]) and weighs, per unit at the
//! place, the model's log-probability against the points of the catalogue's best candidate
//! for it ([`Blend`]); with the weights in use a keyword more in the catalogue still wins, and
//! the model decides between candidates of equal weight and where no keyword matched. The
//! reason begins 按相似工单判断 when the model decided.
//!
//! # Invariants
//! - Every suggested unit is reached by transfers the rules allow (`decide::may_transfer_to`):
//!   the city centre to a bureau or a district centre, the district centre down its subtree.
//!   A target that cannot be reached so is never suggested.
//! - Pure: the catalogue, the tree and the words come in as arguments.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::decide::may_transfer_to;
use crate::kinds::Category;
use crate::learned::Model;
use crate::org::{Level, OrgTree, Unit, UnitId, UnitKind};

/// One unit a matter points to: a kind (and so a level) and, for bureaus and district
/// departments, which one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The level, stated for readers of the catalogue; must agree with `unit_kind`.
    pub level: Level,
    /// What kind of unit.
    pub unit_kind: UnitKind,
    /// For `bureau` and `district_department`: the last part of the unit id (`hrss` →
    /// `city.bureau.hrss` or `d.<district>.dept.hrss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
}

/// One matter (事项) as written in the catalogue file: a class with its children, or a leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatterSpec {
    /// 分类代码: the parent's code and two digits (`03`, `0301`, `030101`).
    pub code: String,
    /// 名称, e.g. 停水.
    pub name: String,
    /// The categories it covers; empty means the parent's (all at the top).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// Words callers use for it; empty (and no `generic`) on a leaf means it answers by
    /// category alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Words that point to it only weakly (小区): they rank below any specific keyword.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generic: Vec<String>,
    /// Words that add to a match of it (or of a matter below it) but never make one alone
    /// (声音 for noise, 司机 for buses: they say more about a matter already named than about
    /// which matter it is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// The responsible units, all suggested (the first is the main one); empty means the
    /// parent's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// Used only when no target resolves at the location (e.g. no district above it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<Target>,
    /// The matters one level down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<MatterSpec>,
}

/// The catalogue as stored in `fixtures/dispatch-catalogue.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueSpec {
    /// Free text describing the catalogue's sources.
    #[serde(default)]
    pub comment: String,
    /// The top-level classes (大类), in order.
    pub matters: Vec<MatterSpec>,
}

/// The catalogue is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// Two matters share a code.
    #[error("matter code `{0}` appears twice")]
    DuplicateCode(String),
    /// A code that is not its parent's code and two digits.
    #[error("matter code `{0}` is not its parent's code followed by two digits")]
    CodeShape(String),
    /// A leaf without targets, neither its own nor inherited.
    #[error("matter `{0}` has no targets")]
    NoTargets(String),
    /// A fallback on a matter that does not name its own targets.
    #[error("matter `{0}` has a fallback but no targets of its own")]
    FallbackWithoutTargets(String),
    /// A target's level does not match its unit kind.
    #[error("matter `{0}` names a target whose level does not match its unit kind")]
    LevelMismatch(String),
    /// A bureau or district department without a slug, or a slug on another kind.
    #[error("matter `{0}` needs a slug exactly for bureau and district department targets")]
    Slug(String),
    /// A target kind that never handles cases (centre, efficiency office, building).
    #[error("matter `{0}` names a unit kind that does not handle cases")]
    NotAHandler(String),
    /// An empty name or a blank keyword.
    #[error("matter `{0}` has an empty name or a blank keyword")]
    Blank(String),
}

/// Why a suggestion could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// The location is not in the tree.
    #[error("unknown unit `{0}`")]
    UnknownLocation(UnitId),
}

/// One matter of a checked catalogue, with what it inherits already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matter {
    /// 分类代码.
    pub code: String,
    /// 名称.
    pub name: String,
    /// The names from the top class down to this matter.
    pub path: Vec<String>,
    /// The categories it covers (empty: all).
    pub categories: Vec<Category>,
    /// Its own keywords, lower case.
    pub keywords: Vec<String>,
    /// Its own generic words, lower case.
    pub generic: Vec<String>,
    /// Its own context words, lower case.
    pub context: Vec<String>,
    /// Its responsible units, its own or inherited (empty for a class without any).
    pub targets: Vec<Target>,
    /// Its fallback, going with its targets.
    pub fallback: Vec<Target>,
    /// Whether it has no children.
    pub is_leaf: bool,
    parent: Option<usize>,
}

impl Matter {
    /// The level in the catalogue: 1 for a top class.
    pub fn depth(&self) -> usize {
        self.path.len()
    }

    fn covers(&self, category: Category) -> bool {
        self.categories.is_empty() || self.categories.contains(&category)
    }

    fn by_category_only(&self) -> bool {
        self.is_leaf
            && self.keywords.is_empty()
            && self.generic.is_empty()
            && self.context.is_empty()
    }
}

/// 派单目录 — the checked catalogue, indexed by keyword.
#[derive(Debug, Clone)]
pub struct Catalogue {
    comment: String,
    matters: Vec<Matter>,
    /// Keyword → the matters that list it, and how.
    by_word: HashMap<String, Vec<(usize, WordKind)>>,
    /// The keywords matters of different responsible units list (不退: consumer disputes
    /// and training schools): they count half.
    shared: HashSet<String>,
}

/// How a matter lists a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordKind {
    Keyword,
    Generic,
    Context,
}

/// The matter a suggestion chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatterRef {
    /// 分类代码.
    pub code: String,
    /// 名称.
    pub name: String,
    /// The names from the top class down to it.
    pub path: Vec<String>,
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

/// What the catalogue says for a location, a category and the request's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The matter chosen (`None` when none applies at the location).
    pub matter: Option<MatterRef>,
    /// The keywords that matched along the chosen matter's path, in catalogue order.
    pub matched: Vec<String>,
    /// The reason in Chinese: the matter, what matched, ties, whom it points to.
    pub reason: String,
    /// The units, main one first; empty when no matter resolves at the location.
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

    /// Checks the target on its own, for matter `code`: its level is its kind's, its kind
    /// handles cases, a slug exactly for bureaus and district departments.
    ///
    /// # Errors
    /// [`CatalogueError::LevelMismatch`], [`CatalogueError::NotAHandler`],
    /// [`CatalogueError::Slug`], each with `code`.
    pub fn check(&self, code: &str) -> Result<(), CatalogueError> {
        if self.unit_kind.level() != self.level {
            return Err(CatalogueError::LevelMismatch(code.to_owned()));
        }
        if !self.handles_cases() {
            return Err(CatalogueError::NotAHandler(code.to_owned()));
        }
        let needs_slug = matches!(
            self.unit_kind,
            UnitKind::Bureau | UnitKind::DistrictDepartment
        );
        let slug_ok = self.slug.as_deref().is_some_and(|s| !s.trim().is_empty());
        if needs_slug != slug_ok {
            return Err(CatalogueError::Slug(code.to_owned()));
        }
        Ok(())
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

impl Catalogue {
    /// Checks the catalogue's shape (not the tree: a slug may name a unit some districts
    /// lack) and indexes it.
    ///
    /// # Errors
    /// [`CatalogueError::DuplicateCode`], [`CatalogueError::CodeShape`],
    /// [`CatalogueError::NoTargets`], [`CatalogueError::FallbackWithoutTargets`],
    /// [`CatalogueError::LevelMismatch`], [`CatalogueError::Slug`],
    /// [`CatalogueError::NotAHandler`], [`CatalogueError::Blank`].
    pub fn new(spec: CatalogueSpec) -> Result<Catalogue, CatalogueError> {
        let mut catalogue = Catalogue {
            comment: spec.comment,
            matters: Vec::new(),
            by_word: HashMap::new(),
            shared: HashSet::new(),
        };
        let mut codes = HashSet::new();
        for top in &spec.matters {
            catalogue.add(top, None, &mut codes)?;
        }
        for (i, matter) in catalogue.matters.iter().enumerate() {
            let lists = [
                (&matter.keywords, WordKind::Keyword),
                (&matter.generic, WordKind::Generic),
                (&matter.context, WordKind::Context),
            ];
            for (words, kind) in lists {
                for word in words {
                    catalogue
                        .by_word
                        .entry(word.clone())
                        .or_default()
                        .push((i, kind));
                }
            }
        }
        for (word, listed) in &catalogue.by_word {
            // The line of work, not the level: the city's and the districts' 人社 are one.
            let units: HashSet<&str> = listed
                .iter()
                .filter(|(_, kind)| *kind == WordKind::Keyword)
                .filter_map(|(i, _)| catalogue.matters[*i].targets.first())
                .map(|t| t.slug.as_deref().unwrap_or(t.unit_kind.label()))
                .collect();
            if units.len() > 1 {
                catalogue.shared.insert(word.clone());
            }
        }
        Ok(catalogue)
    }

    fn add(
        &mut self,
        spec: &MatterSpec,
        parent: Option<usize>,
        codes: &mut HashSet<String>,
    ) -> Result<(), CatalogueError> {
        let code = spec.code.as_str();
        let parent_matter = parent.map(|p| &self.matters[p]);
        let prefix = parent_matter.map_or("", |p| p.code.as_str());
        let shape_ok = code.len() == prefix.len() + 2
            && code.starts_with(prefix)
            && code.bytes().all(|b| b.is_ascii_digit());
        if !shape_ok {
            return Err(CatalogueError::CodeShape(code.to_owned()));
        }
        if !codes.insert(code.to_owned()) {
            return Err(CatalogueError::DuplicateCode(code.to_owned()));
        }
        let blank = |w: &String| w.trim().is_empty();
        let mut words = spec
            .keywords
            .iter()
            .chain(&spec.generic)
            .chain(&spec.context);
        if spec.name.trim().is_empty() || words.any(blank) {
            return Err(CatalogueError::Blank(code.to_owned()));
        }
        if spec.targets.is_empty() && !spec.fallback.is_empty() {
            return Err(CatalogueError::FallbackWithoutTargets(code.to_owned()));
        }
        for target in spec.targets.iter().chain(&spec.fallback) {
            target.check(code)?;
        }
        let (targets, fallback) = if spec.targets.is_empty() {
            parent_matter.map_or((Vec::new(), Vec::new()), |p| {
                (p.targets.clone(), p.fallback.clone())
            })
        } else {
            (spec.targets.clone(), spec.fallback.clone())
        };
        if spec.children.is_empty() && targets.is_empty() {
            return Err(CatalogueError::NoTargets(code.to_owned()));
        }
        let categories = match parent_matter {
            Some(p) if spec.categories.is_empty() => p.categories.clone(),
            _ => spec.categories.clone(),
        };
        let mut path = parent_matter.map_or(Vec::new(), |p| p.path.clone());
        path.push(spec.name.clone());
        let lower = |words: &[String]| -> Vec<String> {
            words.iter().map(|w| w.trim().to_lowercase()).collect()
        };
        self.matters.push(Matter {
            code: code.to_owned(),
            name: spec.name.clone(),
            path,
            categories,
            keywords: lower(&spec.keywords),
            generic: lower(&spec.generic),
            context: lower(&spec.context),
            targets,
            fallback,
            is_leaf: spec.children.is_empty(),
            parent,
        });
        let me = self.matters.len() - 1;
        for child in &spec.children {
            self.add(child, Some(me), codes)?;
        }
        Ok(())
    }

    /// Free text describing the catalogue's sources.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// Every matter, classes before their children, in catalogue order.
    pub fn matters(&self) -> &[Matter] {
        &self.matters
    }

    /// The matter with `code`.
    pub fn matter(&self, code: &str) -> Option<&Matter> {
        self.matters.iter().find(|m| m.code == code)
    }

    /// Every keyword, generic and context word of the catalogue, each once (e.g. to keep them whole
    /// when segmenting).
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.by_word.keys().map(String::as_str)
    }

    fn ancestors_and_self(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(i), |&j| self.matters[j].parent)
    }
}

/// How well a candidate matter matches; compared field by field, greater is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    /// Two for each keyword matched along the path, one for a shared keyword or a context
    /// word.
    specific: usize,
    /// Where its first counted word appears: callers say what it is about first (the title).
    earliest: std::cmp::Reverse<usize>,
    generic: usize,
    depth: usize,
    longest: usize,
}

struct Candidate {
    matter: usize,
    score: Score,
    /// Specific keywords (and context words) matched along the path, then generic ones.
    matched: Vec<String>,
    generic: Vec<String>,
    /// The keywords said only as a place, counted with the generic ones.
    places: Vec<String>,
    /// The matched keywords other matters' units list too, and the context words: half.
    halves: Vec<String>,
}

fn score(
    catalogue: &Catalogue,
    i: usize,
    words: &HashMap<&str, usize>,
    phrases: &[&str],
    places: &HashSet<String>,
) -> Candidate {
    let mut path: Vec<usize> = catalogue.ancestors_and_self(i).collect();
    path.reverse();
    let mut matched = Vec::new();
    let mut generic = Vec::new();
    let mut context = Vec::new();
    let found =
        |word: &String, seen: &[String]| words.contains_key(word.as_str()) && !seen.contains(word);
    for &j in &path {
        let m = &catalogue.matters[j];
        for word in &m.keywords {
            if found(word, &matched) {
                matched.push(word.clone());
            }
        }
        for word in &m.generic {
            if found(word, &generic) {
                generic.push(word.clone());
            }
        }
        for word in &m.context {
            if found(word, &context) {
                context.push(word.clone());
            }
        }
    }
    // A keyword said only as where it happens (天桥底下的流浪汉) tells the place, not the
    // matter: it counts as a generic word.
    let places_here: Vec<String> = matched
        .iter()
        .filter(|w| places.contains(*w))
        .cloned()
        .collect();
    matched.retain(|w| !places.contains(w));
    // A generic word said as a place says nothing (小区 in 小区旁边建个菜市场).
    generic.retain(|w| !places.contains(w));
    for word in &places_here {
        if !generic.contains(word) {
            generic.push(word.clone());
        }
    }
    // Search-mode segmentation gives a phrase and its parts (拖欠工资, 工资; 狂犬疫苗, 狂犬):
    // a word inside a longer catalogue word of the text is part of that phrase and not
    // counted again.
    let inside = |w: &String| {
        phrases
            .iter()
            .any(|v| v.len() > w.len() && v.contains(w.as_str()))
    };
    matched.retain(|w| !inside(w));
    generic.retain(|w| !inside(w));
    context.retain(|w| !inside(w) && !matched.contains(w));
    // Where the matter is first mentioned: its words, or the parts of them said before.
    let earliest = matched
        .iter()
        .chain(&generic)
        .flat_map(|w| {
            phrases
                .iter()
                .filter(|v| w.contains(**v))
                .filter_map(|v| words.get(v).copied())
        })
        .min()
        .unwrap_or(usize::MAX);
    let longest = matched
        .iter()
        .chain(&generic)
        .map(|w| w.chars().count())
        .max()
        .unwrap_or(0);
    // Context words add to a match that a keyword made, never make one (nor move its first
    // mention).
    let mut halves: Vec<String> = matched
        .iter()
        .filter(|w| catalogue.shared.contains(*w))
        .cloned()
        .collect();
    if !matched.is_empty() {
        halves.extend(context.iter().cloned());
        matched.extend(context);
    }
    let specific = 2 * matched.len() - halves.len();

    Candidate {
        matter: i,
        score: Score {
            specific,
            generic: generic.len(),
            earliest: std::cmp::Reverse(earliest),
            depth: catalogue.matters[i].depth(),
            longest,
        },
        matched,
        generic,
        places: places_here,
        halves,
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

fn resolve_matter(org: &OrgTree, place: &Unit, matter: &Matter) -> Vec<SuggestedUnit> {
    match resolve_all(org, place, &matter.targets) {
        units if !units.is_empty() => units,
        _ => resolve_all(org, place, &matter.fallback),
    }
}

fn quoted(words: &[String]) -> String {
    words.iter().map(|w| format!("「{w}」")).collect()
}

fn title(matter: &Matter) -> String {
    format!("{}「{}」", matter.code, matter.path.join(" > "))
}

/// The responsible units for a case at `location` of `category`, `words` being the segmented
/// title and content (may be empty; compared in lower case). The best-ranked matter that
/// resolves at the location wins (see the module's documentation).
///
/// # Errors
/// [`RoutingError::UnknownLocation`] when `location` is not in the tree.
pub fn suggest<S: AsRef<str>>(
    catalogue: &Catalogue,
    org: &OrgTree,
    location: &UnitId,
    category: Category,
    words: &[S],
) -> Result<Suggestion, RoutingError> {
    suggest_with_places(catalogue, org, location, category, words, &[] as &[&str])
}

/// [`suggest`], `places` being the words of `words` the request uses only to say where
/// (天桥 in 天桥底下有个流浪汉): a keyword among them counts as a generic word.
///
/// # Errors
/// [`RoutingError::UnknownLocation`] when `location` is not in the tree.
pub fn suggest_with_places<S: AsRef<str>, P: AsRef<str>>(
    catalogue: &Catalogue,
    org: &OrgTree,
    location: &UnitId,
    category: Category,
    words: &[S],
    places: &[P],
) -> Result<Suggestion, RoutingError> {
    let (place, candidates) = ranked(catalogue, org, location, category, words, places)?;
    for (n, candidate) in candidates.iter().enumerate() {
        let units = resolve_matter(org, place, &catalogue.matters[candidate.matter]);
        if !units.is_empty() {
            return Ok(from_candidate(
                catalogue,
                org,
                category,
                &candidates,
                n,
                units,
            ));
        }
    }
    Ok(by_category(catalogue, org, place, category))
}

/// The request's place and the catalogue's candidate matters, best first.
fn ranked<'o, S: AsRef<str>, P: AsRef<str>>(
    catalogue: &Catalogue,
    org: &'o OrgTree,
    location: &UnitId,
    category: Category,
    words: &[S],
    places: &[P],
) -> Result<(&'o Unit, Vec<Candidate>), RoutingError> {
    let places: HashSet<String> = places.iter().map(|w| w.as_ref().to_lowercase()).collect();
    let place = org
        .get(location)
        .ok_or_else(|| RoutingError::UnknownLocation(location.clone()))?;
    let lowered: Vec<String> = words.iter().map(|w| w.as_ref().to_lowercase()).collect();
    // Each word with where it first appears.
    let mut words: HashMap<&str, usize> = HashMap::new();
    for (n, word) in lowered.iter().enumerate() {
        words.entry(word.as_str()).or_insert(n);
    }

    // The catalogue's words in the text.
    let phrases: Vec<&str> = words
        .keys()
        .copied()
        .filter(|w| catalogue.by_word.contains_key(*w))
        .collect();
    let mut hit: Vec<usize> = phrases
        .iter()
        .filter_map(|w| catalogue.by_word.get(*w))
        .flatten()
        .filter(|(_, kind)| *kind != WordKind::Context)
        .map(|&(i, _)| i)
        .collect();
    hit.sort_unstable();
    hit.dedup();
    let mut candidates: Vec<Candidate> = hit
        .into_iter()
        .filter(|&i| {
            let m = &catalogue.matters[i];
            m.covers(category) && !m.targets.is_empty()
        })
        .map(|i| score(catalogue, i, &words, &phrases, &places))
        .filter(|c| !c.matched.is_empty() || !c.generic.is_empty())
        .collect();
    // Best first; catalogue order breaks ties (the sort is stable and `hit` was sorted).
    candidates.sort_by_key(|c| std::cmp::Reverse(c.score));
    Ok((place, candidates))
}

fn whom(org: &OrgTree, units: &[SuggestedUnit]) -> String {
    let names: Vec<String> = units
        .iter()
        .filter_map(|u| org.get(&u.unit_id))
        .map(|u| format!("{}（{}）", u.name, u.kind.label()))
        .collect();
    names.join("、")
}

fn unit_name(org: &OrgTree, unit: &UnitId) -> String {
    org.get(unit)
        .map_or_else(|| unit.to_string(), |u| u.name.clone())
}

/// The suggestion of the `n`th candidate, whose units are `units`.
fn from_candidate(
    catalogue: &Catalogue,
    org: &OrgTree,
    category: Category,
    candidates: &[Candidate],
    n: usize,
    units: Vec<SuggestedUnit>,
) -> Suggestion {
    let candidate = &candidates[n];
    let matter = &catalogue.matters[candidate.matter];
    let mut reason = format!("派单目录 {}：诉求含", title(matter));
    match (candidate.matched.is_empty(), candidate.generic.is_empty()) {
        (_, true) => reason.push_str(&quoted(&candidate.matched)),
        (true, false) => {
            reason.push_str(&quoted(&candidate.generic));
            reason.push_str("（泛指词，没有更具体的事项词）");
        }
        (false, false) => {
            reason.push_str(&quoted(&candidate.matched));
            reason.push_str("及泛指词");
            reason.push_str(&quoted(&candidate.generic));
        }
    }
    let shared: Vec<String> = candidate
        .halves
        .iter()
        .filter(|w| catalogue.shared.contains(*w))
        .cloned()
        .collect();
    if !shared.is_empty() {
        reason.push_str(&format!(
            "（{}也是别的单位事项的词，算半个）",
            quoted(&shared)
        ));
    }
    if !candidate.places.is_empty() {
        reason.push_str(&format!(
            "（{}只说地点，按泛指词计）",
            quoted(&candidate.places)
        ));
    }
    reason.push_str(&format!(
        "（类别为「{}」），由{}负责",
        category.label(),
        whom(org, &units)
    ));
    let tied: Vec<&Candidate> = candidates[n + 1..]
        .iter()
        .filter(|c| c.score == candidate.score)
        .collect();
    if !tied.is_empty() {
        let others: Vec<String> = tied
            .iter()
            .map(|c| {
                let m = &catalogue.matters[c.matter];
                let words: Vec<String> = c.matched.iter().chain(&c.generic).cloned().collect();
                format!("{}（含{}）", title(m), quoted(&words))
            })
            .collect();
        reason.push_str(&format!(
            "；与{}匹配程度相同（事项词一样多、最先提到的词相同、层级相同），按目录顺序取在前的事项",
            others.join("、")
        ));
    }
    let mut matched = candidate.matched.clone();
    matched.extend(candidate.generic.iter().cloned());
    Suggestion {
        matter: Some(matter_ref(matter)),
        matched,
        reason,
        units,
    }
}

/// The suggestion when no keyword matter applies at `place`: the matters that answer by
/// category alone.
fn by_category(
    catalogue: &Catalogue,
    org: &OrgTree,
    place: &Unit,
    category: Category,
) -> Suggestion {
    for matter in catalogue.matters.iter().filter(|m| m.by_category_only()) {
        if !matter.covers(category) {
            continue;
        }
        let units = resolve_matter(org, place, matter);
        if units.is_empty() {
            continue;
        }
        let reason = format!(
            "派单目录 {}：诉求中没有目录的事项词，按类别「{}」由{}负责",
            title(matter),
            category.label(),
            whom(org, &units)
        );
        return Suggestion {
            matter: Some(matter_ref(matter)),
            matched: Vec::new(),
            reason,
            units,
        };
    }
    Suggestion {
        matter: None,
        matched: Vec::new(),
        reason: format!(
            "派单目录中没有适用于该地点的「{}」类事项，请人工判断",
            category.label()
        ),
        units: Vec::new(),
    }
}

/// How [`suggest_with_model`] weighs the catalogue against the similar cases. Each unit the
/// catalogue or the model names at the place scores `ln P(unit)` (the model's probability,
/// at least 10⁻⁹) plus `catalogue_weight` per point of the catalogue's best matter for it
/// (two per keyword, one per context word or shared keyword, half for generic words) plus
/// `lead_bonus` for the unit of the catalogue's first-ranked matter; the highest wins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blend {
    /// Log-probability per point of the catalogue's match.
    pub catalogue_weight: f64,
    /// Log-probability added to the catalogue's own first choice.
    pub lead_bonus: f64,
}

/// What the similar cases bring to [`suggest_with_model`]: the model learned from labelled
/// requests (labels: the first responsible unit as a [`Target`], resolved at the place like
/// the catalogue's) and the request's features as the model was trained on.
#[derive(Debug, Clone, Copy)]
pub struct Similar<'a, F: AsRef<str>> {
    /// The model.
    pub model: &'a Model<Target>,
    /// The request's features.
    pub features: &'a [F],
    /// How it is weighed against the catalogue.
    pub blend: Blend,
}

/// One unit the catalogue or the model names at the place.
struct Choice<'m> {
    unit: UnitId,
    /// The catalogue's best candidate for it, by index, with its units.
    candidate: Option<(usize, Vec<SuggestedUnit>)>,
    /// That candidate's first target, as the catalogue writes it.
    target: Option<&'m Target>,
    points: f64,
    lead: bool,
    probability: f64,
    label: Option<&'m Target>,
}

/// The least probability a unit scores, so that a catalogue match the model never saw still
/// counts.
const FLOOR: f64 = 1e-9;

/// [`suggest_with_places`] with the similar cases: the catalogue's candidates and the model's
/// guesses are weighed per unit by `similar.blend`, and the reason says which decided. The
/// suggestion still names a matter of the catalogue: the best-ranked candidate for the unit
/// chosen, or, when the catalogue matched nothing for it, the first matter (in catalogue
/// order) covering the category whose first unit at the place is that unit. A request none of
/// whose words the model saw is the catalogue's alone.
///
/// # Errors
/// [`RoutingError::UnknownLocation`] when `location` is not in the tree.
pub fn suggest_with_model<S: AsRef<str>, P: AsRef<str>, F: AsRef<str>>(
    catalogue: &Catalogue,
    org: &OrgTree,
    location: &UnitId,
    category: Category,
    words: &[S],
    places: &[P],
    similar: Similar<'_, F>,
) -> Result<Suggestion, RoutingError> {
    // A request none of whose words the model saw would get its prior: the catalogue's
    // category default says more.
    if similar.model.knows(words) == 0 {
        return suggest_with_places(catalogue, org, location, category, words, places);
    }
    let (place, candidates) = ranked(catalogue, org, location, category, words, places)?;
    let mut choices: Vec<Choice<'_>> = Vec::new();
    for (n, candidate) in candidates.iter().enumerate() {
        let units = resolve_matter(org, place, &catalogue.matters[candidate.matter]);
        let Some(first) = units.first() else { continue };
        if choices.iter().any(|c| c.unit == first.unit_id) {
            continue;
        }
        let score = candidate.score;
        choices.push(Choice {
            unit: first.unit_id.clone(),
            lead: choices.is_empty(),
            points: score.specific as f64 + 0.5 * score.generic as f64,
            candidate: Some((n, units)),
            target: catalogue.matters[candidate.matter].targets.first(),
            probability: 0.0,
            label: None,
        });
    }
    let fallback = by_category(catalogue, org, place, category);
    if choices.is_empty()
        && let Some(first) = fallback.units.first()
    {
        choices.push(Choice {
            unit: first.unit_id.clone(),
            candidate: None,
            target: None,
            points: 0.0,
            lead: true,
            probability: 0.0,
            label: None,
        });
    }
    let guesses = similar.model.guesses(similar.features);
    for guess in &guesses {
        let unit = guess
            .label
            .resolve(org, place)
            .filter(|u| path_to(org, u).is_some());
        let found = match unit {
            Some(unit) => choices.iter_mut().find(|c| c.unit == unit.id),
            // A label with no unit here (a district department, asked at the city) speaks
            // for the matter that names it, whose fallback answered.
            None => choices
                .iter_mut()
                .find(|c| c.target.is_some_and(|t| t == guess.label)),
        };
        match (found, unit) {
            (Some(choice), _) => {
                choice.probability += guess.probability;
                choice.label.get_or_insert(guess.label);
            }
            (None, Some(unit)) => choices.push(Choice {
                unit: unit.id.clone(),
                candidate: None,
                target: None,
                points: 0.0,
                lead: false,
                probability: guess.probability,
                label: Some(guess.label),
            }),
            (None, None) => {}
        }
    }
    let blend = similar.blend;
    let total = |c: &Choice<'_>| {
        c.probability.max(FLOOR).ln()
            + blend.catalogue_weight * c.points
            + if c.lead { blend.lead_bonus } else { 0.0 }
    };
    // Best first; the catalogue's order, then the model's, breaks ties (the sort is stable).
    let mut order: Vec<usize> = (0..choices.len()).collect();
    order.sort_by(|&a, &b| total(&choices[b]).total_cmp(&total(&choices[a])));
    let lead = choices.iter().find(|c| c.lead);
    let model_first = choices
        .iter()
        .filter(|c| c.label.is_some())
        .max_by(|a, b| a.probability.total_cmp(&b.probability));
    for &i in &order {
        let choice = &choices[i];
        let decided_by_model = lead.is_none_or(|l| l.unit != choice.unit);
        let evidence = || -> String {
            let against = lead.and_then(|l| l.label).filter(|_| decided_by_model);
            let shown: Vec<String> = choice
                .label
                .map(|label| similar.model.evidence(similar.features, label, against, 30))
                .unwrap_or_default()
                .into_iter()
                .filter(|f| words.iter().any(|w| w.as_ref() == *f))
                .take(4)
                .map(str::to_owned)
                .collect();
            quoted(&shown)
        };
        let percent = (choice.probability * 100.0).round();
        if !decided_by_model {
            // The catalogue's own choice.
            let mut s = match &choice.candidate {
                Some((n, units)) => {
                    from_candidate(catalogue, org, category, &candidates, *n, units.clone())
                }
                None => fallback.clone(),
            };
            match model_first {
                Some(m) if m.unit == choice.unit => s.reason.push_str(&format!(
                    "；相似工单也多由{}办理（{}，约{percent}%）",
                    unit_name(org, &choice.unit),
                    evidence()
                )),
                Some(m) => s.reason.push_str(&format!(
                    "；相似工单更像{}办理的（约{:.0}%），但目录的匹配更明确",
                    unit_name(org, &m.unit),
                    m.probability * 100.0
                )),
                None => {}
            }
            return Ok(s);
        }
        let mut s = match &choice.candidate {
            Some((n, units)) => {
                from_candidate(catalogue, org, category, &candidates, *n, units.clone())
            }
            None => {
                let Some(matter) = catalogue.matters.iter().find(|m| {
                    m.covers(category)
                        && resolve_matter(org, place, m)
                            .first()
                            .is_some_and(|u| u.unit_id == choice.unit)
                }) else {
                    continue;
                };
                let units = resolve_matter(org, place, matter);
                Suggestion {
                    matter: Some(matter_ref(matter)),
                    matched: Vec::new(),
                    reason: format!(
                        "归入派单目录 {}（诉求中没有该事项的目录词），由{}负责",
                        title(matter),
                        whom(org, &units)
                    ),
                    units,
                }
            }
        };
        let mut reason = format!(
            "按相似工单判断：诉求与{}办理过的工单最像（{}，约{percent}%）",
            unit_name(org, &choice.unit),
            evidence()
        );
        if let Some(l) = lead {
            let said = l
                .candidate
                .as_ref()
                .map(|(n, _)| {
                    let c = &candidates[*n];
                    quoted(
                        &c.matched
                            .iter()
                            .chain(&c.generic)
                            .cloned()
                            .collect::<Vec<_>>(),
                    )
                })
                .unwrap_or_else(|| "类别".to_owned());
            reason.push_str(&format!("，目录按{said}会先给{}", unit_name(org, &l.unit)));
        }
        reason.push('；');
        reason.push_str(&s.reason);
        s.reason = reason;
        return Ok(s);
    }
    Ok(fallback)
}

fn matter_ref(matter: &Matter) -> MatterRef {
    MatterRef {
        code: matter.code.clone(),
        name: matter.name.clone(),
        path: matter.path.clone(),
    }
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

    fn bureau(slug: &str) -> Target {
        target(Level::City, UnitKind::Bureau, Some(slug))
    }

    fn dept(slug: &str) -> Target {
        target(Level::District, UnitKind::DistrictDepartment, Some(slug))
    }

    fn matter(code: &str, name: &str, keywords: &[&str], targets: Vec<Target>) -> MatterSpec {
        MatterSpec {
            code: code.into(),
            name: name.into(),
            categories: Vec::new(),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            generic: Vec::new(),
            context: Vec::new(),
            targets,
            fallback: Vec::new(),
            children: Vec::new(),
        }
    }

    fn class(code: &str, name: &str, keywords: &[&str], children: Vec<MatterSpec>) -> MatterSpec {
        MatterSpec {
            children,
            ..matter(code, name, keywords, Vec::new())
        }
    }

    /// The small test city with a water bureau.
    fn city() -> OrgTree {
        let mut units = small_city().units().to_vec();
        units.push(Unit {
            id: UnitId::new("city.bureau.water"),
            name: "city.bureau.water".into(),
            level: Level::City,
            kind: UnitKind::Bureau,
            parent_id: Some(UnitId::new("city")),
        });
        OrgTree::new(units).expect("well formed")
    }

    /// A catalogue shaped like the fixture.
    fn spec() -> CatalogueSpec {
        use Category::*;
        let mut water = class("0101", "供水", &["自来水", "供水"], Vec::new());
        water.targets = vec![bureau("water")];
        water.children = vec![
            matter("010101", "停水", &["停水", "没水"], Vec::new()),
            matter("010102", "水质", &["水质", "发黄"], Vec::new()),
        ];
        let mut property = class(
            "0102",
            "物业管理",
            &["物业"],
            vec![matter("010201", "电梯", &["电梯"], Vec::new())],
        );
        property.generic = vec!["小区".into()];
        property.targets = vec![dept("housing")];
        property.fallback = vec![bureau("housing")];
        let mut vending = matter(
            "010301",
            "占道经营",
            &["摊贩", "占道"],
            vec![
                dept("urban"),
                target(Level::Street, UnitKind::StreetOffice, None),
            ],
        );
        vending.categories = vec![Complaint, Report];
        vending.fallback = vec![bureau("urban")];
        let noise = class(
            "0104",
            "噪声",
            &["噪音"],
            vec![
                matter("010401", "施工噪声", &["工地"], vec![dept("urban")]),
                matter(
                    "010402",
                    "生活噪声",
                    &["邻居"],
                    vec![target(Level::Street, UnitKind::StreetOffice, None)],
                ),
            ],
        );
        let lonely = matter(
            "010501",
            "独居老人",
            &["独居老人"],
            vec![target(Level::Grid, UnitKind::GridStation, None)],
        );
        let mut local = matter(
            "990101",
            "属地事项",
            &[],
            vec![target(Level::Street, UnitKind::StreetOffice, None)],
        );
        local.categories = vec![Complaint, Report, HelpRequest];
        let district = matter(
            "990102",
            "区县受理",
            &[],
            vec![target(Level::District, UnitKind::DistrictCentre, None)],
        );
        CatalogueSpec {
            comment: String::new(),
            matters: vec![
                class(
                    "01",
                    "城乡建设",
                    &[],
                    vec![
                        water,
                        property,
                        class("0103", "市容", &[], vec![vending]),
                        noise,
                        class("0105", "民政", &[], vec![lonely]),
                    ],
                ),
                class(
                    "99",
                    "其他",
                    &[],
                    vec![class("9901", "默认", &[], vec![local, district])],
                ),
            ],
        }
    }

    fn catalogue() -> Catalogue {
        Catalogue::new(spec()).expect("well formed")
    }

    fn ids(s: &Suggestion) -> Vec<&str> {
        s.units.iter().map(|u| u.unit_id.as_str()).collect()
    }

    fn code(s: &Suggestion) -> Option<&str> {
        s.matter.as_ref().map(|m| m.code.as_str())
    }

    fn run(location: &str, category: Category, words: &[&str]) -> Suggestion {
        let s = suggest(
            &catalogue(),
            &city(),
            &UnitId::new(location),
            category,
            words,
        )
        .expect("known location");
        assert_transferable(&s, location);
        s
    }

    /// Every suggestion is reached by allowed transfers: the last hop comes from the city
    /// centre or from the location's district centre.
    fn assert_transferable(s: &Suggestion, location: &str) {
        let org = city();
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
    fn a_water_outage_in_an_estate_goes_to_the_water_bureau_not_to_housing() {
        let s = run(
            "d.a.s01.c01.g01.b01",
            Category::Complaint,
            &["小区", "停水"],
        );
        assert_eq!(code(&s), Some("010101"));
        let matter = s.matter.as_ref().expect("matter");
        assert_eq!(matter.name, "停水");
        assert_eq!(matter.path, ["城乡建设", "供水", "停水"]);
        assert_eq!(ids(&s), ["city.bureau.water"]);
        assert_eq!(
            s.units[0].path,
            [UnitId::new("city"), UnitId::new("city.bureau.water")]
        );
        assert!(
            s.reason.contains("010101「城乡建设 > 供水 > 停水」") && s.reason.contains("「停水」"),
            "{}",
            s.reason
        );
        // The generic word alone still points to property management.
        let s = run("d.a.s01", Category::Complaint, &["小区", "门口"]);
        assert_eq!(code(&s), Some("0102"));
        assert!(s.reason.contains("泛指词"), "{}", s.reason);
    }

    #[test]
    fn a_leaf_beats_its_class_and_more_keywords_beat_fewer() {
        // 自来水 alone: the class; with 发黄 the leaf below it.
        let s = run("d.a.s01", Category::Complaint, &["自来水"]);
        assert_eq!(code(&s), Some("0101"));
        let s = run("d.a.s01", Category::Complaint, &["自来水", "发黄"]);
        assert_eq!(code(&s), Some("010102"));
        assert_eq!(s.matched, ["自来水", "发黄"]);
        // 工地 and 噪音 (施工噪声, two words along its path) beat 物业 (one).
        let s = run("d.a.s01", Category::Complaint, &["物业", "工地", "噪音"]);
        assert_eq!(code(&s), Some("010401"));
        assert_eq!(ids(&s), ["d.a.dept.urban"]);
    }

    #[test]
    fn a_phrase_and_its_parts_count_once() {
        // 停水 and 停水通知 from one phrase are one word for 停水; 电梯 and 电梯坏 are two
        // separate words for 电梯, so the elevator wins.
        let mut spec = spec();
        spec.matters[0].children[0].children[0]
            .keywords
            .push("停水通知".into());
        spec.matters[0].children[1].children[0]
            .keywords
            .push("困人".into());
        let catalogue = Catalogue::new(spec).expect("well formed");
        let s = suggest(
            &catalogue,
            &city(),
            &UnitId::new("d.a.s01"),
            Category::Complaint,
            &["停水", "停水通知", "电梯", "困人"],
        )
        .expect("known");
        assert_eq!(code(&s), Some("010201"), "{}", s.reason);
        let s = suggest(
            &catalogue,
            &city(),
            &UnitId::new("d.a.s01"),
            Category::Complaint,
            &["停水", "停水通知"],
        )
        .expect("known");
        assert_eq!(s.matched, ["停水通知"]);
    }

    #[test]
    fn a_tie_takes_the_first_matter_and_says_which_others_tied() {
        // 跑水 is a word of 停水 and of 电梯 alike: both 小类, nothing else to tell them apart.
        let mut spec = spec();
        spec.matters[0].children[0].children[0]
            .keywords
            .push("跑水".into());
        spec.matters[0].children[1].children[0]
            .keywords
            .push("跑水".into());
        let catalogue = Catalogue::new(spec).expect("well formed");
        let s = suggest(
            &catalogue,
            &city(),
            &UnitId::new("d.a.s01"),
            Category::Complaint,
            &["跑水"],
        )
        .expect("known");
        assert_eq!(code(&s), Some("010101"));
        assert!(
            s.reason
                .contains("010201「城乡建设 > 物业管理 > 电梯」（含「跑水」）")
                && s.reason.contains("匹配程度相同")
                && s.reason.contains("按目录顺序"),
            "{}",
            s.reason
        );
        // No tie, no such note.
        let s = run("d.a.s01", Category::Complaint, &["停水"]);
        assert!(!s.reason.contains("匹配程度相同"), "{}", s.reason);
    }

    #[test]
    fn between_equal_matches_the_one_mentioned_first_wins() {
        // 停水 and 电梯: one word each, both 小类; the caller's first words say the topic.
        let s = run("d.a.s01", Category::Complaint, &["电梯", "坏了", "停水"]);
        assert_eq!(code(&s), Some("010201"));
        assert!(!s.reason.contains("匹配程度相同"), "{}", s.reason);
        let s = run("d.a.s01", Category::Complaint, &["停水", "电梯"]);
        assert_eq!(code(&s), Some("010101"));
        // More words still beat an earlier mention.
        let s = run("d.a.s01", Category::Complaint, &["电梯", "自来水", "停水"]);
        assert_eq!(code(&s), Some("010101"));
    }

    #[test]
    fn a_context_word_adds_to_a_match_but_never_makes_one() {
        // 声音 says a noise complaint is about noise, not which noise nor that it is one.
        let mut spec = spec();
        spec.matters[0].children[3].context = vec!["声音".into()];
        let catalogue = Catalogue::new(spec).expect("well formed");
        let run = |words: &[&str]| {
            suggest(
                &catalogue,
                &city(),
                &UnitId::new("d.a.s01"),
                Category::Complaint,
                words,
            )
            .expect("known")
        };
        // 物业 and 工地 one keyword each, 物业 first: property management.
        assert_eq!(code(&run(&["物业", "工地"])), Some("0102"));
        // With 声音 the construction noise has two words along its path.
        let s = run(&["物业", "工地", "声音"]);
        assert_eq!(code(&s), Some("010401"), "{}", s.reason);
        assert_eq!(s.matched, ["工地", "声音"]);
        // Alone it makes no match: the generic word answers, or the category.
        assert_eq!(code(&run(&["小区", "声音"])), Some("0102"));
        assert_eq!(code(&run(&["声音"])), Some("990101"));
    }

    #[test]
    fn a_leaf_with_only_context_words_does_not_answer_by_category() {
        // 010102 keeps its words as context: it is no category default, so a complaint
        // without words still goes to the street.
        let mut spec = spec();
        let quality = &mut spec.matters[0].children[0].children[1];
        quality.context = std::mem::take(&mut quality.keywords);
        let catalogue = Catalogue::new(spec).expect("well formed");
        let s = suggest(
            &catalogue,
            &city(),
            &UnitId::new("d.a.s01"),
            Category::Complaint,
            &[] as &[&str],
        )
        .expect("known");
        assert_eq!(code(&s), Some("990101"), "{}", s.reason);
    }

    #[test]
    fn a_keyword_said_only_as_a_place_counts_as_a_generic_word() {
        let run = |words: &[&str], places: &[&str]| {
            suggest_with_places(
                &catalogue(),
                &city(),
                &UnitId::new("d.a.s01"),
                Category::Complaint,
                words,
                places,
            )
            .expect("known")
        };
        // 电梯口有摊贩: the elevator is where, the vendor what.
        let s = run(&["电梯", "摊贩"], &["电梯"]);
        assert_eq!(code(&s), Some("010301"), "{}", s.reason);
        assert!(!s.reason.contains("只说地点"), "{}", s.reason);
        // Said as the topic, the first mention wins as before.
        assert_eq!(code(&run(&["电梯", "摊贩"], &[])), Some("010201"));
        // A place alone still points to its matter, as a generic word does.
        let s = run(&["电梯"], &["电梯"]);
        assert_eq!(code(&s), Some("010201"));
        assert!(s.reason.contains("「电梯」只说地点"), "{}", s.reason);
        // A generic word said as a place says nothing: the category answers.
        assert_eq!(code(&run(&["小区"], &[])), Some("0102"));
        assert_eq!(code(&run(&["小区"], &["小区"])), Some("990101"));
    }

    #[test]
    fn a_keyword_matters_of_other_units_list_too_counts_half() {
        // 跑水 is a word of 停水 (water) and of 电梯 (housing): it says less than 摊贩.
        let mut spec = spec();
        spec.matters[0].children[0].children[0]
            .keywords
            .push("跑水".into());
        spec.matters[0].children[1].children[0]
            .keywords
            .push("跑水".into());
        let catalogue = Catalogue::new(spec).expect("well formed");
        let run = |words: &[&str]| {
            suggest(
                &catalogue,
                &city(),
                &UnitId::new("d.a.s01"),
                Category::Complaint,
                words,
            )
            .expect("known")
        };
        let s = run(&["跑水", "摊贩"]);
        assert_eq!(code(&s), Some("010301"), "{}", s.reason);
        // With 自来水 (its class's keyword) 停水 has three halves against 摊贩's two.
        let s = run(&["摊贩", "跑水", "自来水"]);
        assert_eq!(code(&s), Some("010101"), "{}", s.reason);
        assert_eq!(s.matched, ["自来水", "跑水"]);
        let s = run(&["跑水"]);
        assert_eq!(code(&s), Some("010101"));
        assert!(
            s.reason.contains("「跑水」也是别的单位事项的词，算半个"),
            "{}",
            s.reason
        );
    }

    #[test]
    fn a_matter_applies_only_to_its_categories() {
        let s = run("d.a.s01", Category::Complaint, &["摊贩"]);
        assert_eq!(code(&s), Some("010301"));
        assert_eq!(ids(&s), ["d.a.dept.urban", "d.a.s01"]);
        assert!(
            s.reason.contains("城乡建设 > 市容 > 占道经营"),
            "{}",
            s.reason
        );
        // Praise of a vendor is not a vending complaint: the category default answers.
        let s = run("d.a.s01", Category::Praise, &["摊贩"]);
        assert_eq!(code(&s), Some("990102"));
        assert_eq!(ids(&s), ["d.a"]);
        // A complaint without a keyword goes to the street (属地).
        let s = run("d.a.s01.c01", Category::Complaint, &["扰民"]);
        assert_eq!(code(&s), Some("990101"));
        assert_eq!(ids(&s), ["d.a.s01"]);
        assert!(s.reason.contains("按类别「投诉」"), "{}", s.reason);
    }

    #[test]
    fn a_matter_falls_back_and_skips_targets_the_location_lacks() {
        // District b has no urban department in the test city: only its street.
        let s = run("d.b.s01", Category::Report, &["占道"]);
        assert_eq!(ids(&s), ["d.b.s01"]);
        // At city level there is no district: the city bureaus.
        let s = run("city", Category::Complaint, &["摊贩"]);
        assert_eq!(ids(&s), ["city.bureau.urban"]);
        assert_eq!(
            s.units[0].path,
            [UnitId::new("city"), UnitId::new("city.bureau.urban")]
        );
        // The leaf inherits its class's targets and fallback.
        let s = run("city", Category::Inquiry, &["电梯"]);
        assert_eq!(code(&s), Some("010201"));
        assert_eq!(ids(&s), ["city.bureau.housing"]);
        // District a has no housing department: the fallback bureau too.
        let s = run("d.a.s02", Category::Proposal, &["物业"]);
        assert_eq!(ids(&s), ["city.bureau.housing"]);
    }

    #[test]
    fn a_matter_that_does_not_resolve_gives_way_to_the_next() {
        let s = run("d.a.s01.c01.g01.b01", Category::HelpRequest, &["独居老人"]);
        assert_eq!(ids(&s), ["d.a.s01.c01.g01"]);
        assert_eq!(
            s.units[0].path,
            [
                UnitId::new("city"),
                UnitId::new("d.a"),
                UnitId::new("d.a.s01.c01.g01")
            ]
        );
        // From a street the grid is unknown: the street answers by category.
        let s = run("d.a.s01", Category::HelpRequest, &["独居老人"]);
        assert_eq!(code(&s), Some("990101"));
        assert_eq!(ids(&s), ["d.a.s01"]);
    }

    #[test]
    fn words_are_compared_in_lower_case() {
        let mut spec = spec();
        spec.matters[0].children[3].children[1]
            .keywords
            .push("KTV".into());
        let catalogue = Catalogue::new(spec).expect("well formed");
        let s = suggest(
            &catalogue,
            &city(),
            &UnitId::new("d.a.s01"),
            Category::Complaint,
            &["Ktv"],
        )
        .expect("known");
        assert_eq!(code(&s), Some("010402"));
    }

    #[test]
    fn every_level_of_the_tree_gets_a_transferable_suggestion() {
        let places = [
            ("city", None),
            ("d.a", Some("d.a")),
            ("d.a.dept.urban", Some("d.a")),
            ("d.a.s01", Some("d.a.s01")),
            ("d.a.s01.c01", Some("d.a.s01")),
            ("d.a.s01.c01.g01", Some("d.a.s01")),
            ("d.a.s01.c01.g01.b01", Some("d.a.s01")),
        ];
        let catalogue = catalogue();
        let every_word: Vec<&str> = catalogue.words().collect();
        for (location, expected) in places {
            let s = run(location, Category::Complaint, &[] as &[&str]);
            assert_eq!(ids(&s).first().copied(), expected, "{location}");
            for word in &every_word {
                for category in [Category::Inquiry, Category::Complaint, Category::Praise] {
                    run(location, category, &[*word]);
                }
            }
        }
    }

    #[test]
    fn no_matter_at_the_city_level_gives_no_units_and_says_so() {
        let s = run("city", Category::Complaint, &[] as &[&str]);
        assert_eq!(s.matter, None);
        assert!(s.units.is_empty());
        assert!(s.reason.contains("人工"), "{}", s.reason);
    }

    #[test]
    fn an_unknown_location_is_refused() {
        let err = suggest(
            &catalogue(),
            &city(),
            &UnitId::new("nowhere"),
            Category::Inquiry,
            &[] as &[&str],
        )
        .unwrap_err();
        assert_eq!(err, RoutingError::UnknownLocation(UnitId::new("nowhere")));
    }

    #[test]
    fn the_next_hop_depends_on_who_transfers() {
        let s = run("d.a.s01", Category::Complaint, &["摊贩"]);
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
    fn malformed_catalogues_are_refused() {
        use CatalogueError::*;
        let refused = |change: &dyn Fn(&mut CatalogueSpec)| {
            let mut spec = spec();
            change(&mut spec);
            Catalogue::new(spec).unwrap_err()
        };
        assert_eq!(
            refused(&|s| {
                let copy = s.matters[0].children[0].children[0].clone();
                s.matters[0].children[0].children.push(copy);
            }),
            DuplicateCode("010101".into())
        );
        assert_eq!(
            refused(&|s| s.matters[0].children[0].children[0].code = "020101".into()),
            CodeShape("020101".into())
        );
        assert_eq!(
            refused(&|s| s.matters[0].children[0].children[0].code = "01011".into()),
            CodeShape("01011".into())
        );
        // A leaf whose class has no targets either.
        assert_eq!(
            refused(&|s| {
                let vending = &mut s.matters[0].children[2].children[0];
                vending.targets.clear();
                vending.fallback.clear();
            }),
            NoTargets("010301".into())
        );
        assert_eq!(
            refused(&|s| s.matters[0].children[0].children[0].fallback = vec![bureau("urban")]),
            FallbackWithoutTargets("010101".into())
        );
        assert_eq!(
            refused(&|s| s.matters[0].children[0].targets[0].level = Level::District),
            LevelMismatch("0101".into())
        );
        assert_eq!(
            refused(&|s| s.matters[0].children[0].targets[0].slug = None),
            Slug("0101".into())
        );
        assert_eq!(
            refused(&|s| {
                s.matters[0].children[0].targets =
                    vec![target(Level::City, UnitKind::HotlineCentre, None)];
            }),
            NotAHandler("0101".into())
        );
        assert_eq!(
            refused(&|s| s.matters[0].children[0].keywords.push(" ".into())),
            Blank("0101".into())
        );
        assert_eq!(
            refused(&|s| s.matters[0].children[0].context.push("".into())),
            Blank("0101".into())
        );
        assert!(Catalogue::new(spec()).is_ok());
    }

    fn street() -> Target {
        target(Level::Street, UnitKind::StreetOffice, None)
    }

    /// Similar cases: requests about foam in the tap water went to the water bureau, about
    /// neighbours and building sites to the street, about property to the housing
    /// department.
    fn similar_cases() -> Model<Target> {
        use crate::learned::{Example, Settings};
        let example = |words: &str, label: Target| Example {
            features: words.split(' ').map(str::to_owned).collect(),
            label,
        };
        let examples = vec![
            example("水龙头 白沫 喝", bureau("water")),
            example("水龙头 白沫 颜色", bureau("water")),
            example("邻居 工地 楼上 吵", street()),
            example("邻居 工地 装修 吵", street()),
            example("楼上 邻居 吵", street()),
            example("物业 电费 公摊", dept("housing")),
            example("物业 收费 公摊", dept("housing")),
            example("摊贩 占道", dept("urban")),
        ];
        Model::train(&examples, Settings::default())
    }

    const BLEND: Blend = Blend {
        catalogue_weight: 6.0,
        lead_bonus: 0.0,
    };

    fn run_with_model(location: &str, category: Category, words: &[&str]) -> Suggestion {
        let model = similar_cases();
        let s = suggest_with_model(
            &catalogue(),
            &city(),
            &UnitId::new(location),
            category,
            words,
            &[] as &[&str],
            Similar {
                model: &model,
                features: words,
                blend: BLEND,
            },
        )
        .expect("known location");
        assert_transferable(&s, location);
        s
    }

    #[test]
    fn a_request_without_catalogue_words_goes_where_similar_cases_went() {
        let building = "d.a.s01.c01.g01.b01";
        let words = ["水龙头", "出来", "白沫"];
        // The catalogue alone can only answer by category.
        assert_eq!(
            ids(&run(building, Category::Complaint, &words)),
            ["d.a.s01"]
        );
        let s = run_with_model(building, Category::Complaint, &words);
        assert_eq!(ids(&s), ["city.bureau.water"]);
        // It still names a matter of the catalogue: the first one of that unit.
        assert_eq!(code(&s), Some("0101"));
        assert!(
            s.reason.starts_with("按相似工单判断：") && s.reason.contains("「白沫」"),
            "{}",
            s.reason
        );
        assert!(
            s.reason.contains("归入派单目录 0101「城乡建设 > 供水」"),
            "{}",
            s.reason
        );
    }

    #[test]
    fn a_clear_catalogue_match_is_kept_when_similar_cases_lean_elsewhere() {
        // 物业 leans to housing in the similar cases; the catalogue has two keywords of an
        // outage against one of property.
        let words = ["停水", "没水", "物业"];
        let s = run_with_model("d.a.s01.c01.g01.b01", Category::Complaint, &words);
        assert_eq!(ids(&s)[0], "city.bureau.water");
        assert!(s.reason.starts_with("派单目录 010101"), "{}", s.reason);
    }

    #[test]
    fn similar_cases_break_a_tie_of_the_catalogue() {
        // 工地 (construction noise, the district department) and 邻居 (the street) weigh the
        // same; the catalogue takes the first said, the similar cases know better.
        let words = ["工地", "邻居", "吵"];
        let alone = run("d.a.s01.c01.g01.b01", Category::Complaint, &words);
        assert_eq!(ids(&alone), ["d.a.dept.urban"]);
        let s = run_with_model("d.a.s01.c01.g01.b01", Category::Complaint, &words);
        assert_eq!(ids(&s), ["d.a.s01"]);
        assert_eq!(code(&s), Some("010402"));
        assert!(
            s.reason.starts_with("按相似工单判断：") && s.reason.contains("目录按「工地」"),
            "{}",
            s.reason
        );
    }

    #[test]
    fn a_request_the_model_has_no_word_of_is_the_catalogues_alone() {
        let words = ["停水", "今天"];
        let s = run_with_model("d.a.s01.c01.g01.b01", Category::Complaint, &words);
        assert_eq!(s, run("d.a.s01.c01.g01.b01", Category::Complaint, &words));
        let s = run_with_model("d.a", Category::Complaint, &[]);
        assert_eq!(s, run("d.a", Category::Complaint, &[]));
    }

    #[test]
    fn a_department_learned_in_the_districts_speaks_for_its_fallback_at_the_city() {
        // At the city there is no housing department: the property matter's fallback, the
        // city's housing bureau, answers, and the similar cases' housing department counts
        // for it.
        let words = ["摊贩", "物业", "公摊"];
        let alone = run("city", Category::Complaint, &words);
        assert_eq!(ids(&alone), ["city.bureau.urban"]);
        let s = run_with_model("city", Category::Complaint, &words);
        assert_eq!(ids(&s), ["city.bureau.housing"]);
    }
}
