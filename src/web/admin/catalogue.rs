//! 派单目录 on `/admin/rules`: the matters of the catalogue in force with their keywords and
//! responsible units, found by name, code or word; a matter's name and words edited, a matter
//! added under another or removed with its children. Every edit makes the whole new catalogue
//! from the one in force and records it through `AppState::change_rules_now`
//! (`RulesCommand::SetCatalogue`), so the domain's rules refuse it in their words.

use std::collections::HashMap;

use domain::org::{OrgTree, UnitId, UnitKind};
use domain::routing::{CatalogueSpec, MatterSpec, Target};
use domain::rules::RulesCommand;

use super::Fields;
use crate::app::AppState;

/// The longest value of a catalogue form's field (a matter's words, characters).
pub const MAX_FIELD: usize = 2_000;
/// The most matters listed at once (the compiled-in catalogue has 267).
const MAX_ROWS: usize = 1_000;
/// The longest search text (characters).
const MAX_QUERY: usize = 50;

/// One matter as listed.
pub struct MatterRow {
    pub code: String,
    /// Full-width spaces that indent it by its level.
    pub indent: String,
    pub name: String,
    /// 关键词, joined with 、.
    pub keywords: String,
    /// The responsible units, its own or (marked) its parent's.
    pub units: String,
    /// Whether `units` are inherited.
    pub inherited: bool,
}

/// The matter being edited, as its form shows it.
pub struct MatterEdit {
    pub code: String,
    pub path: String,
    pub name: String,
    pub keywords: String,
    pub generic: String,
    pub context: String,
    pub units: String,
    pub n_children: usize,
}

/// The catalogue section of the rules page.
pub struct CatalogueView {
    /// The rules' version that recorded the catalogue in force.
    pub set_in: u32,
    pub n_matters: usize,
    pub n_words: usize,
    /// The rules stream's version the page was made from (an edit of another one is refused).
    pub stream_version: u64,
    pub query: String,
    pub rows: Vec<MatterRow>,
    /// Whether the search left matters out.
    pub filtered: bool,
    pub edit: Option<MatterEdit>,
    /// (value, label) of the responsible units a new matter may name; `""` inherits.
    pub choices: Vec<(String, String)>,
}

/// Words typed in one field: separated by 、，,；; or white space.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| "、，,；;".contains(c) || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The district part of a district department's name (城关区住房和城乡建设局 → 住房和城乡建设局).
fn department_name(org: &OrgTree, unit: &UnitId) -> Option<String> {
    let unit = org.get(unit)?;
    let district = org.district_of(&unit.id)?;
    let place = OrgTree::place_name(district);
    Some(
        unit.name
            .strip_prefix(place)
            .unwrap_or(&unit.name)
            .to_owned(),
    )
}

/// A responsible unit for people: 兰州市生态环境局, 各区县城市管理局, 所在街道办/乡镇.
pub fn target_label(org: &OrgTree, target: &Target) -> String {
    let slug = target.slug.as_deref().unwrap_or_default();
    match target.unit_kind {
        UnitKind::Bureau => org
            .get(&UnitId::new(format!("{}.bureau.{slug}", org.root().id)))
            .map_or_else(|| format!("市直部门 {slug}"), |u| u.name.clone()),
        UnitKind::DistrictDepartment => org
            .units()
            .iter()
            .find(|u| {
                u.kind == UnitKind::DistrictDepartment
                    && u.id.as_str().rsplit_once(".dept.").map(|(_, s)| s) == Some(slug)
            })
            .and_then(|u| department_name(org, &u.id))
            .map_or_else(
                || format!("区县属部门 {slug}"),
                |name| format!("各区县{name}"),
            ),
        kind => format!("所在{}", kind.label()),
    }
}

fn targets_label(org: &OrgTree, targets: &[Target]) -> String {
    targets
        .iter()
        .map(|t| target_label(org, t))
        .collect::<Vec<_>>()
        .join("、")
}

/// The value of a target in the choice list.
fn choice_value(target: &Target) -> String {
    match &target.slug {
        Some(slug) => format!("{}:{slug}", target.unit_kind.code()),
        None => target.unit_kind.code().to_owned(),
    }
}

/// Every responsible unit a matter may name in this tree, as (value, label).
fn choices(org: &OrgTree) -> Vec<(String, String)> {
    let mut targets: Vec<Target> = Vec::new();
    let root_bureau = format!("{}.bureau.", org.root().id);
    let mut departments: Vec<String> = Vec::new();
    for unit in org.units() {
        let slug = match unit.kind {
            UnitKind::Bureau => unit.id.as_str().strip_prefix(&root_bureau),
            UnitKind::DistrictDepartment => unit.id.as_str().rsplit_once(".dept.").map(|(_, s)| s),
            _ => None,
        };
        match (unit.kind, slug) {
            (UnitKind::Bureau, Some(slug)) => targets.push(Target {
                level: unit.kind.level(),
                unit_kind: unit.kind,
                slug: Some(slug.to_owned()),
            }),
            (UnitKind::DistrictDepartment, Some(slug))
                if !departments.iter().any(|d| d == slug) =>
            {
                departments.push(slug.to_owned());
            }
            _ => {}
        }
    }
    targets.extend(departments.into_iter().map(|slug| Target {
        level: UnitKind::DistrictDepartment.level(),
        unit_kind: UnitKind::DistrictDepartment,
        slug: Some(slug),
    }));
    for kind in [
        UnitKind::DistrictCentre,
        UnitKind::StreetOffice,
        UnitKind::CommunityCommittee,
        UnitKind::GridStation,
    ] {
        if org.units().iter().any(|u| u.kind == kind) {
            targets.push(Target {
                level: kind.level(),
                unit_kind: kind,
                slug: None,
            });
        }
    }
    let mut choices = vec![(String::new(), "与上级事项相同".to_owned())];
    choices.extend(
        targets
            .iter()
            .map(|t| (choice_value(t), target_label(org, t))),
    );
    choices
}

/// The target a choice's value names.
fn target_of(value: &str) -> Result<Option<Target>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let (kind, slug) = match value.split_once(':') {
        Some((kind, slug)) => (kind, Some(slug.to_owned())),
        None => (value, None),
    };
    let unit_kind: UnitKind = serde_json::from_value(serde_json::Value::String(kind.to_owned()))
        .map_err(|_| "请从列表中选择责任单位".to_owned())?;
    Ok(Some(Target {
        level: unit_kind.level(),
        unit_kind,
        slug,
    }))
}

/// Every matter with its depth, classes before their children.
fn flatten<'a>(matters: &'a [MatterSpec], depth: usize, out: &mut Vec<(usize, &'a MatterSpec)>) {
    for matter in matters {
        out.push((depth, matter));
        flatten(&matter.children, depth + 1, out);
    }
}

/// The catalogue section, for `state`'s rules in force, with the matters `query` finds and
/// the matter `editing` open in its form (its fields as typed when `typed` is its refused
/// form).
pub fn view(state: &AppState, query: &str, editing: &str, typed: Option<&Fields>) -> CatalogueView {
    let snapshot = state.rules.current();
    let current = snapshot.rules.current();
    let spec = current.catalogue_spec();
    let catalogue = current.catalogue();
    let set_in = snapshot
        .rules
        .versions()
        .find(|v| std::sync::Arc::ptr_eq(v.catalogue(), catalogue))
        .map_or(current.version(), |v| v.version());
    let org = state.org();
    let checked: HashMap<&str, &domain::routing::Matter> = catalogue
        .matters()
        .iter()
        .map(|m| (m.code.as_str(), m))
        .collect();
    let mut all = Vec::new();
    flatten(&spec.matters, 1, &mut all);
    let query: String = query.trim().chars().take(MAX_QUERY).collect();
    let lowered = query.to_lowercase();
    let found = |m: &MatterSpec| {
        lowered.is_empty()
            || m.code.starts_with(&lowered)
            || m.name.to_lowercase().contains(&lowered)
            || m.keywords
                .iter()
                .chain(&m.generic)
                .chain(&m.context)
                .any(|w| w.to_lowercase().contains(&lowered))
    };
    let mut rows = Vec::new();
    for (depth, m) in &all {
        if rows.len() >= MAX_ROWS || !found(m) {
            continue;
        }
        let targets = checked
            .get(m.code.as_str())
            .map_or(&[][..], |c| &c.targets[..]);
        rows.push(MatterRow {
            code: m.code.clone(),
            indent: "\u{3000}".repeat(depth.saturating_sub(1) * 2),
            name: m.name.clone(),
            keywords: m.keywords.join("、"),
            units: targets_label(&org, targets),
            inherited: m.targets.is_empty() && !targets.is_empty(),
        });
    }
    let filtered = rows.len() < all.len();
    let edit = all
        .iter()
        .find(|(_, m)| !editing.is_empty() && m.code == editing)
        .map(|(_, m)| {
            let path = checked
                .get(m.code.as_str())
                .map_or_else(|| m.name.clone(), |c| c.path.join(" > "));
            let targets = checked
                .get(m.code.as_str())
                .map_or(&[][..], |c| &c.targets[..]);
            let joined = |words: &[String]| words.join("、");
            let (name, keywords, generic, context) = match typed {
                Some(fields) => (
                    fields.get("name").to_owned(),
                    fields.get("keywords").to_owned(),
                    fields.get("generic").to_owned(),
                    fields.get("context").to_owned(),
                ),
                None => (
                    m.name.clone(),
                    joined(&m.keywords),
                    joined(&m.generic),
                    joined(&m.context),
                ),
            };
            MatterEdit {
                code: m.code.clone(),
                path,
                name,
                keywords,
                generic,
                context,
                units: targets_label(&org, targets),
                n_children: m.children.len(),
            }
        });
    CatalogueView {
        set_in,
        n_matters: catalogue.matters().len(),
        n_words: catalogue.words().count(),
        stream_version: snapshot.stream_version,
        query,
        rows,
        filtered,
        edit,
        choices: choices(&org),
    }
}

fn find_mut<'a>(matters: &'a mut [MatterSpec], code: &str) -> Option<&'a mut MatterSpec> {
    for matter in matters {
        if matter.code == code {
            return Some(matter);
        }
        if let Some(found) = find_mut(&mut matter.children, code) {
            return Some(found);
        }
    }
    None
}

fn remove(matters: &mut Vec<MatterSpec>, code: &str) -> bool {
    if let Some(i) = matters.iter().position(|m| m.code == code) {
        matters.remove(i);
        return true;
    }
    matters.iter_mut().any(|m| remove(&mut m.children, code))
}

/// The next free code below `parent` (`""` for a top class): its code and two digits.
fn next_code(siblings: &[MatterSpec], parent: &str) -> Result<String, String> {
    let last = siblings
        .iter()
        .filter_map(|m| m.code.strip_prefix(parent)?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    if last >= 99 {
        return Err("该级事项已有 99 个，无法自动编号，请填写分类代码".to_owned());
    }
    Ok(format!("{parent}{:02}", last + 1))
}

/// The command a catalogue form asks for (`catalogue_matter`: a matter's name and words;
/// `catalogue_add`: a new matter; `catalogue_remove`: a matter and its children), made on the
/// catalogue in force; what a rule refuses is left to the rules. Returns the code of the
/// matter to show next.
///
/// # Errors
/// The Chinese text of what the form itself cannot say: the rules changed since the page was
/// shown, a matter not in the catalogue, a unit not in the list.
pub fn command(
    state: &AppState,
    action: &str,
    fields: &Fields,
) -> Result<(RulesCommand, String), String> {
    let snapshot = state.rules.current();
    if fields.get("rules_version") != snapshot.stream_version.to_string() {
        return Err("规则已被他人修改，请刷新后重试".to_owned());
    }
    let mut spec: CatalogueSpec = snapshot.rules.current().catalogue_spec().as_ref().clone();
    let code = fields.get("code").to_owned();
    let shown = match action {
        "catalogue_matter" => {
            let matter = find_mut(&mut spec.matters, &code)
                .ok_or_else(|| format!("派单目录中没有代码为 {code} 的事项"))?;
            matter.name = fields.get("name").to_owned();
            matter.keywords = words_of(fields.get("keywords"));
            matter.generic = words_of(fields.get("generic"));
            matter.context = words_of(fields.get("context"));
            code
        }
        "catalogue_remove" => {
            if !remove(&mut spec.matters, &code) {
                return Err(format!("派单目录中没有代码为 {code} 的事项"));
            }
            String::new()
        }
        "catalogue_add" => {
            let parent = fields.get("parent").to_owned();
            let siblings = if parent.is_empty() {
                &mut spec.matters
            } else {
                &mut find_mut(&mut spec.matters, &parent)
                    .ok_or_else(|| format!("派单目录中没有代码为 {parent} 的上级事项"))?
                    .children
            };
            let code = if code.is_empty() {
                next_code(siblings, &parent)?
            } else {
                code
            };
            let targets = target_of(fields.get("unit"))?.into_iter().collect();
            siblings.push(MatterSpec {
                code: code.clone(),
                name: fields.get("name").to_owned(),
                categories: Vec::new(),
                keywords: words_of(fields.get("keywords")),
                generic: Vec::new(),
                context: Vec::new(),
                targets,
                fallback: Vec::new(),
                children: Vec::new(),
            });
            code
        }
        _ => return Err("未知的操作".to_owned()),
    };
    Ok((RulesCommand::SetCatalogue { catalogue: spec }, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_words_split_on_chinese_and_latin_separators() {
        assert_eq!(
            words_of("停水、没水，断水, 水压低；自来水 \n 无水"),
            ["停水", "没水", "断水", "水压低", "自来水", "无水"]
        );
        assert!(words_of(" 、， ").is_empty());
    }

    #[test]
    fn the_next_code_follows_the_last_sibling() {
        let leaf = |code: &str| MatterSpec {
            code: code.into(),
            name: code.into(),
            categories: Vec::new(),
            keywords: Vec::new(),
            generic: Vec::new(),
            context: Vec::new(),
            targets: Vec::new(),
            fallback: Vec::new(),
            children: Vec::new(),
        };
        assert_eq!(
            next_code(&[leaf("0301"), leaf("0307")], "03"),
            Ok("0308".into())
        );
        assert_eq!(next_code(&[], "03"), Ok("0301".into()));
        assert_eq!(next_code(&[leaf("15")], ""), Ok("16".into()));
        assert!(next_code(&[leaf("0399")], "03").is_err());
    }

    #[test]
    fn a_choice_names_its_target() {
        let target = target_of("district_department:urban")
            .expect("valid")
            .expect("a target");
        assert_eq!(target.unit_kind, UnitKind::DistrictDepartment);
        assert_eq!(target.slug.as_deref(), Some("urban"));
        assert_eq!(choice_value(&target), "district_department:urban");
        assert_eq!(target_of("").expect("inherit"), None);
        assert!(target_of("nonsense").is_err());
    }
}
