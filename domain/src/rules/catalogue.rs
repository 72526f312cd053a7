//! The rules of a dispatch catalogue (派单目录) an administrator records: what
//! [`Catalogue::new`] checks (code shape, targets that fit their kind, a responsible unit for
//! every leaf), and what makes it safe to record and to use: fixed bounds on its size, clean
//! one-line texts, names and words each said once, targets that name units the tree has.
//!
//! Every refusal names where it is ([`MatterAt`]: the matter's code and name; the field) and
//! has its Chinese text ([`CatalogueRefusal::message`]).

use std::collections::{HashMap, HashSet};

use crate::org::{OrgTree, UnitKind};
use crate::routing::{Catalogue, CatalogueError, CatalogueSpec, MatterSpec, Target};
use crate::text::{self, Lines};

/// The most matters (every level counted) a catalogue may have.
pub const MAX_MATTERS: usize = 1_000;
/// The most levels: 大类 > 中类 > 小类, and one more.
pub const MAX_DEPTH: usize = 4;
/// The most words one list of one matter may hold (`keywords`, `generic`, `context`).
pub const MAX_LIST: usize = 64;
/// The most words of all the matters' lists together.
pub const MAX_WORDS: usize = 10_000;
/// The longest word (characters).
pub const MAX_WORD: usize = 20;
/// The longest name of a matter (characters).
pub const MAX_NAME: usize = 40;
/// The longest comment (characters).
pub const MAX_COMMENT: usize = 4_000;
/// The most targets, and the most fallback targets, of one matter.
pub const MAX_TARGETS: usize = 8;
/// How many characters of a text a client sent a message repeats.
const SHOWN: usize = 20;

/// Which list of a matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `keywords`: 关键词.
    Keywords,
    /// `generic`: 泛指词.
    Generic,
    /// `context`: 辅助词.
    Context,
    /// `targets`: 责任单位.
    Targets,
    /// `fallback`: 兜底单位.
    Fallback,
}

impl Field {
    /// The field's name in the catalogue's JSON.
    pub fn name(self) -> &'static str {
        match self {
            Field::Keywords => "keywords",
            Field::Generic => "generic",
            Field::Context => "context",
            Field::Targets => "targets",
            Field::Fallback => "fallback",
        }
    }

    /// Its Chinese label.
    pub fn label(self) -> &'static str {
        match self {
            Field::Keywords => "关键词",
            Field::Generic => "泛指词",
            Field::Context => "辅助词",
            Field::Targets => "责任单位",
            Field::Fallback => "兜底单位",
        }
    }
}

/// The matter a refusal is about, as the catalogue gave it (cut to [`SHOWN`] characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatterAt {
    /// Its code.
    pub code: String,
    /// Its name.
    pub name: String,
}

impl MatterAt {
    fn of(spec: &MatterSpec) -> MatterAt {
        MatterAt {
            code: shown(&spec.code),
            name: shown(&spec.name),
        }
    }

    /// 事项 0301「供水」, or without what is blank.
    fn label(&self) -> String {
        match (self.code.trim().is_empty(), self.name.trim().is_empty()) {
            (false, false) => format!("事项 {}「{}」", self.code, self.name),
            (false, true) => format!("事项 {}", self.code),
            (true, false) => format!("事项「{}」", self.name),
            (true, true) => "未填代码和名称的事项".to_owned(),
        }
    }
}

impl std::fmt::Display for MatterAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "matter `{}`", self.code)
    }
}

/// What is wrong, and where in the matter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The catalogue lists no matter.
    #[error("the catalogue has no matter")]
    NoMatters,
    /// More than [`MAX_MATTERS`] matters.
    #[error("the catalogue has more than {MAX_MATTERS} matters")]
    TooManyMatters,
    /// More than [`MAX_WORDS`] words in all.
    #[error("the catalogue has more than {MAX_WORDS} words")]
    TooManyWords,
    /// The comment is longer than [`MAX_COMMENT`] or holds a forbidden character.
    #[error("the comment must be at most {MAX_COMMENT} characters without control characters")]
    BadComment,
    /// The matter is below [`MAX_DEPTH`] levels.
    #[error("the catalogue is deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The code is not the parent's code and two digits.
    #[error("the code is not its parent's code followed by two digits")]
    BadCode,
    /// Another matter has the same code.
    #[error("the code appears twice")]
    DuplicateCode,
    /// The name is blank, too long, or not one clean line.
    #[error("the name must be one line of 1 to {MAX_NAME} characters")]
    BadName,
    /// Another matter (`first`, its code) has the same name.
    #[error("the name is also the name of matter `{first}`")]
    DuplicateName {
        /// The code of the matter that has it first.
        first: String,
    },
    /// A category is listed twice.
    #[error("category `{category}` is listed twice")]
    RepeatedCategory {
        /// Its Chinese label.
        category: &'static str,
    },
    /// A list holds more than [`MAX_LIST`] words, or more than [`MAX_TARGETS`] targets.
    #[error("`{}` has too many entries", .field.name())]
    TooLong {
        /// The list.
        field: Field,
    },
    /// A word is blank, too long, or holds a space, a control character or a leading `#`.
    #[error("word {} of `{}` is blank, longer than {MAX_WORD} characters, or holds a space or a control character", .index + 1, .field.name())]
    BadWord {
        /// The list.
        field: Field,
        /// Its place in the list, from 0.
        index: usize,
        /// The word (cut).
        word: String,
    },
    /// A word is said twice in the matter's lists.
    #[error("word `{word}` appears twice in the matter's lists (`{}`)", .field.name())]
    RepeatedWord {
        /// The list it appears in a second time.
        field: Field,
        /// The word (lower case, cut).
        word: String,
    },
    /// A target's level is not its kind's.
    #[error("target {} of `{}` has a level that does not match its unit kind", .index + 1, .field.name())]
    TargetLevel {
        /// `targets` or `fallback`.
        field: Field,
        /// Its place in the list, from 0.
        index: usize,
    },
    /// A bureau or district department without a slug, or a slug on another kind.
    #[error("target {} of `{}` needs a slug exactly for bureaus and district departments", .index + 1, .field.name())]
    TargetSlug {
        /// `targets` or `fallback`.
        field: Field,
        /// Its place in the list, from 0.
        index: usize,
    },
    /// A kind of unit that never handles cases (the centre, the efficiency office, buildings).
    #[error("target {} of `{}` is a `{}`, which does not handle cases", .index + 1, .field.name(), .kind.code())]
    TargetNotAHandler {
        /// `targets` or `fallback`.
        field: Field,
        /// Its place in the list, from 0.
        index: usize,
        /// The kind named.
        kind: UnitKind,
    },
    /// The tree has no unit of the kind named (and slug, for bureaus and departments).
    #[error("target {} of `{}` names no unit of the tree (`{}` `{slug}`)", .index + 1, .field.name(), .kind.code())]
    UnknownUnit {
        /// `targets` or `fallback`.
        field: Field,
        /// Its place in the list, from 0.
        index: usize,
        /// The kind named.
        kind: UnitKind,
        /// The slug named (cut; empty for kinds without one).
        slug: String,
    },
    /// A fallback on a matter without targets of its own.
    #[error("the matter has a fallback but no targets of its own")]
    FallbackWithoutTargets,
    /// A leaf without targets, neither its own nor inherited.
    #[error("the matter has no targets, neither its own nor its parents'")]
    NoTargets,
}

/// Why a catalogue is refused: the problem, and the matter it is in (none for the whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", .matter.as_ref().map(|m| format!("{m}: ")).unwrap_or_default())]
pub struct CatalogueRefusal {
    /// The matter, when the problem is in one.
    pub matter: Option<MatterAt>,
    /// What is wrong.
    pub problem: Problem,
}

impl CatalogueRefusal {
    fn whole(problem: Problem) -> Self {
        CatalogueRefusal {
            matter: None,
            problem,
        }
    }

    fn at(spec: &MatterSpec, problem: Problem) -> Self {
        CatalogueRefusal {
            matter: Some(MatterAt::of(spec)),
            problem,
        }
    }

    /// The Chinese text shown in place: which matter, which field, what to do.
    pub fn message(&self) -> String {
        let at = self
            .matter
            .as_ref()
            .map_or_else(|| "派单目录".to_owned(), MatterAt::label);
        let nth =
            |field: &Field, index: &usize| format!("{at}的第 {} 个{}", index + 1, field.label());
        match &self.problem {
            Problem::NoMatters => "派单目录至少要有一个事项".to_owned(),
            Problem::TooManyMatters => format!("派单目录最多 {MAX_MATTERS} 个事项"),
            Problem::TooManyWords => {
                format!("派单目录的关键词、泛指词和辅助词合计最多 {MAX_WORDS} 个")
            }
            Problem::BadComment => {
                format!("派单目录的说明最多 {MAX_COMMENT} 个字符，且不能含控制字符")
            }
            Problem::TooDeep => format!("{at}层级过深：派单目录最多 {MAX_DEPTH} 级"),
            Problem::BadCode => {
                format!("{at}的分类代码须为上级事项的代码加两位数字（如 03、0301、030101）")
            }
            Problem::DuplicateCode => format!("{at}的分类代码与另一事项重复"),
            Problem::BadName => {
                format!("{at}的名称不能为空，须为一行，不超过 {MAX_NAME} 个字符")
            }
            Problem::DuplicateName { first } => {
                format!("{at}的名称与事项 {first} 相同，事项名称不能重复")
            }
            Problem::RepeatedCategory { category } => {
                format!("{at}的适用类别「{category}」重复")
            }
            Problem::TooLong { field } => {
                let max = match field {
                    Field::Targets | Field::Fallback => MAX_TARGETS,
                    _ => MAX_LIST,
                };
                format!("{at}的{}最多 {max} 个", field.label())
            }
            Problem::BadWord { field, index, word } => {
                if word.trim().is_empty() {
                    format!("{}为空", nth(field, index))
                } else {
                    format!(
                        "{}「{word}」无效：须为 1 至 {MAX_WORD} 个字符，不含空格和控制字符，不以 # 开头",
                        nth(field, index)
                    )
                }
            }
            Problem::RepeatedWord { field, word } => {
                format!(
                    "{at}的{}「{word}」重复（一个词在同一事项中只能出现一次）",
                    field.label()
                )
            }
            Problem::TargetLevel { field, index } => {
                format!("{}的层级与单位类型不符", nth(field, index))
            }
            Problem::TargetSlug { field, index } => format!(
                "{}：市直部门和区县属部门须写部门代码（slug），其他类型的单位不写",
                nth(field, index)
            ),
            Problem::TargetNotAHandler { field, index, kind } => format!(
                "{}是「{}」，这类单位不办理工单",
                nth(field, index),
                kind.label()
            ),
            Problem::UnknownUnit {
                field,
                index,
                kind,
                slug,
            } => match kind {
                UnitKind::Bureau => {
                    format!("{}：没有部门代码为「{slug}」的市直部门", nth(field, index))
                }
                UnitKind::DistrictDepartment => format!(
                    "{}：没有哪个区县有部门代码为「{slug}」的区属部门",
                    nth(field, index)
                ),
                kind => format!(
                    "{}：机构中没有「{}」类单位",
                    nth(field, index),
                    kind.label()
                ),
            },
            Problem::FallbackWithoutTargets => {
                format!("{at}写了兜底单位，却没有自己的责任单位")
            }
            Problem::NoTargets => {
                format!("{at}没有责任单位（自己没有写，上级事项也没有）")
            }
        }
    }
}

/// At most [`SHOWN`] characters of a client's text, for a message.
fn shown(text: &str) -> String {
    let mut cut: String = text.chars().take(SHOWN).collect();
    if text.chars().nth(SHOWN).is_some() {
        cut.push('…');
    }
    cut
}

/// Which units the tree has, for the targets to name.
struct Units {
    kinds: HashSet<UnitKind>,
    bureaus: HashSet<String>,
    departments: HashSet<String>,
}

impl Units {
    fn of(org: &OrgTree) -> Units {
        let bureau_prefix = format!("{}.bureau.", org.root().id);
        let mut units = Units {
            kinds: HashSet::new(),
            bureaus: HashSet::new(),
            departments: HashSet::new(),
        };
        for unit in org.units() {
            units.kinds.insert(unit.kind);
            let id = unit.id.as_str();
            match unit.kind {
                UnitKind::Bureau => {
                    if let Some(slug) = id.strip_prefix(&bureau_prefix) {
                        units.bureaus.insert(slug.to_owned());
                    }
                }
                UnitKind::DistrictDepartment => {
                    // `d.<district>.dept.<slug>`, as `Target::resolve` builds it.
                    if let Some((_, slug)) = id.rsplit_once(".dept.") {
                        units.departments.insert(slug.to_owned());
                    }
                }
                _ => {}
            }
        }
        units
    }

    fn has(&self, target: &Target) -> bool {
        let slug = target.slug.as_deref().unwrap_or_default();
        match target.unit_kind {
            UnitKind::Bureau => self.bureaus.contains(slug),
            UnitKind::DistrictDepartment => self.departments.contains(slug),
            kind => self.kinds.contains(&kind),
        }
    }
}

/// The walk's state: what has been seen so far.
struct Walk<'a> {
    units: Option<Units>,
    codes: HashSet<&'a str>,
    names: HashMap<&'a str, &'a str>,
    n_matters: usize,
    n_words: usize,
}

/// Checks `spec` as a change of the catalogue, its targets against `org` when given (the
/// base is checked without the tree: the fixtures' city need not be the one running), and
/// builds it.
///
/// # Errors
/// The first [`CatalogueRefusal`]: the whole catalogue's bounds first, then matter by matter
/// in the file's order (classes before their children).
pub fn check(spec: &CatalogueSpec, org: Option<&OrgTree>) -> Result<Catalogue, CatalogueRefusal> {
    if spec.matters.is_empty() {
        return Err(CatalogueRefusal::whole(Problem::NoMatters));
    }
    if spec.comment.chars().count() > MAX_COMMENT
        || text::check(&spec.comment, Lines::Many).is_err()
    {
        return Err(CatalogueRefusal::whole(Problem::BadComment));
    }
    let mut walk = Walk {
        units: org.map(Units::of),
        codes: HashSet::new(),
        names: HashMap::new(),
        n_matters: 0,
        n_words: 0,
    };
    for top in &spec.matters {
        walk.matter(top, "", 1)?;
    }
    Catalogue::new(spec.clone()).map_err(|err| refusal_of(spec, &err))
}

impl<'a> Walk<'a> {
    fn matter(
        &mut self,
        spec: &'a MatterSpec,
        parent_code: &str,
        depth: usize,
    ) -> Result<(), CatalogueRefusal> {
        let refuse = |problem| Err(CatalogueRefusal::at(spec, problem));
        self.n_matters += 1;
        if self.n_matters > MAX_MATTERS {
            return Err(CatalogueRefusal::whole(Problem::TooManyMatters));
        }
        if depth > MAX_DEPTH {
            return refuse(Problem::TooDeep);
        }
        let code = spec.code.as_str();
        let shape_ok = code.len() == parent_code.len() + 2
            && code.starts_with(parent_code)
            && code.bytes().all(|b| b.is_ascii_digit());
        if !shape_ok {
            return refuse(Problem::BadCode);
        }
        if !self.codes.insert(code) {
            return refuse(Problem::DuplicateCode);
        }
        let name = spec.name.as_str();
        let name_ok = !name.trim().is_empty()
            && name.trim() == name
            && name.chars().count() <= MAX_NAME
            && text::check(name, Lines::One).is_ok();
        if !name_ok {
            return refuse(Problem::BadName);
        }
        if let Some(first) = self.names.insert(name, code) {
            return refuse(Problem::DuplicateName {
                first: first.to_owned(),
            });
        }
        for (i, category) in spec.categories.iter().enumerate() {
            if spec.categories[..i].contains(category) {
                return refuse(Problem::RepeatedCategory {
                    category: category.label(),
                });
            }
        }
        let lists = [
            (Field::Keywords, &spec.keywords),
            (Field::Generic, &spec.generic),
            (Field::Context, &spec.context),
        ];
        let mut said: HashSet<String> = HashSet::new();
        for (field, words) in lists {
            if words.len() > MAX_LIST {
                return refuse(Problem::TooLong { field });
            }
            self.n_words += words.len();
            if self.n_words > MAX_WORDS {
                return Err(CatalogueRefusal::whole(Problem::TooManyWords));
            }
            for (index, word) in words.iter().enumerate() {
                let word_ok = !word.is_empty()
                    && word.chars().count() <= MAX_WORD
                    && !word.starts_with('#')
                    && !word.chars().any(char::is_whitespace)
                    && text::check(word, Lines::One).is_ok();
                if !word_ok {
                    return refuse(Problem::BadWord {
                        field,
                        index,
                        word: shown(word),
                    });
                }
                // The catalogue matches words in lower case: 5G and 5g are one.
                if !said.insert(word.to_lowercase()) {
                    return refuse(Problem::RepeatedWord {
                        field,
                        word: shown(&word.to_lowercase()),
                    });
                }
            }
        }
        for (field, targets) in [
            (Field::Targets, &spec.targets),
            (Field::Fallback, &spec.fallback),
        ] {
            if targets.len() > MAX_TARGETS {
                return refuse(Problem::TooLong { field });
            }
            for (index, target) in targets.iter().enumerate() {
                match target.check(code) {
                    Ok(()) => {}
                    Err(CatalogueError::LevelMismatch(_)) => {
                        return refuse(Problem::TargetLevel { field, index });
                    }
                    Err(CatalogueError::NotAHandler(_)) => {
                        return refuse(Problem::TargetNotAHandler {
                            field,
                            index,
                            kind: target.unit_kind,
                        });
                    }
                    Err(_) => return refuse(Problem::TargetSlug { field, index }),
                }
                if let Some(units) = &self.units
                    && !units.has(target)
                {
                    return refuse(Problem::UnknownUnit {
                        field,
                        index,
                        kind: target.unit_kind,
                        slug: shown(target.slug.as_deref().unwrap_or_default()),
                    });
                }
            }
        }
        if spec.targets.is_empty() && !spec.fallback.is_empty() {
            return refuse(Problem::FallbackWithoutTargets);
        }
        for child in &spec.children {
            self.matter(child, code, depth + 1)?;
        }
        Ok(())
    }
}

/// The refusal of what [`Catalogue::new`] refused, at the matter its error names (the walk
/// refuses all of it but [`Problem::NoTargets`] first, so the rest is a fallback).
fn refusal_of(spec: &CatalogueSpec, err: &CatalogueError) -> CatalogueRefusal {
    let code = match err {
        CatalogueError::DuplicateCode(code)
        | CatalogueError::CodeShape(code)
        | CatalogueError::NoTargets(code)
        | CatalogueError::FallbackWithoutTargets(code)
        | CatalogueError::LevelMismatch(code)
        | CatalogueError::Slug(code)
        | CatalogueError::NotAHandler(code)
        | CatalogueError::Blank(code) => code,
    };
    let mut stack: Vec<&MatterSpec> = spec.matters.iter().collect();
    let mut found = None;
    while let Some(m) = stack.pop() {
        if &m.code == code {
            found = Some(m);
            break;
        }
        stack.extend(&m.children);
    }
    // The first target that fails, for the errors about one.
    let failing = found.and_then(|m| {
        let listed = (m
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| (Field::Targets, i, t)))
        .chain(
            m.fallback
                .iter()
                .enumerate()
                .map(|(i, t)| (Field::Fallback, i, t)),
        );
        listed
            .filter(|(_, _, t)| t.check(code).is_err())
            .map(|(field, index, t)| (field, index, t.unit_kind))
            .next()
    });
    let (field, index, kind) = failing.unwrap_or((Field::Targets, 0, UnitKind::Building));
    let problem = match err {
        CatalogueError::DuplicateCode(_) => Problem::DuplicateCode,
        CatalogueError::CodeShape(_) => Problem::BadCode,
        CatalogueError::NoTargets(_) => Problem::NoTargets,
        CatalogueError::FallbackWithoutTargets(_) => Problem::FallbackWithoutTargets,
        CatalogueError::LevelMismatch(_) => Problem::TargetLevel { field, index },
        CatalogueError::Slug(_) => Problem::TargetSlug { field, index },
        CatalogueError::NotAHandler(_) => Problem::TargetNotAHandler { field, index, kind },
        CatalogueError::Blank(_) => Problem::BadName,
    };
    CatalogueRefusal {
        matter: Some(MatterAt {
            code: shown(code),
            name: found.map(|m| shown(&m.name)).unwrap_or_default(),
        }),
        problem,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::org::{Level, UnitKind};

    const FIXTURE: &str = include_str!("../../../fixtures/dispatch-catalogue.json");

    fn org() -> OrgTree {
        crate::org::tests::small_city()
    }

    /// A catalogue that fits the small city: district departments, a bureau, streets.
    pub(crate) fn small() -> CatalogueSpec {
        serde_json::from_value(json!({
            "comment": "测试用派单目录",
            "matters": [
                {
                    "code": "01",
                    "name": "城乡建设",
                    "targets": [{ "level": "district", "unit_kind": "district_department", "slug": "urban" }],
                    "fallback": [{ "level": "city", "unit_kind": "bureau", "slug": "urban" }],
                    "children": [
                        { "code": "0101", "name": "停水", "keywords": ["停水", "没水"], "context": ["水压"] },
                        {
                            "code": "0102",
                            "name": "物业服务",
                            "keywords": ["物业"],
                            "generic": ["小区"],
                            "targets": [{ "level": "city", "unit_kind": "bureau", "slug": "housing" }]
                        }
                    ]
                },
                {
                    "code": "02",
                    "name": "属地管理",
                    "categories": ["complaint", "report"],
                    "targets": [{ "level": "street", "unit_kind": "street_office" }]
                }
            ]
        }))
        .expect("the test catalogue parses")
    }

    fn refused(edit: impl FnOnce(&mut CatalogueSpec)) -> CatalogueRefusal {
        let mut spec = small();
        edit(&mut spec);
        check(&spec, Some(&org())).expect_err("the catalogue is refused")
    }

    fn water(spec: &mut CatalogueSpec) -> &mut MatterSpec {
        &mut spec.matters[0].children[0]
    }

    fn at(code: &str, name: &str) -> Option<MatterAt> {
        Some(MatterAt {
            code: code.into(),
            name: name.into(),
        })
    }

    fn leaf(code: &str, name: &str) -> MatterSpec {
        MatterSpec {
            code: code.into(),
            name: name.into(),
            categories: Vec::new(),
            keywords: vec![format!("词{code}")],
            generic: Vec::new(),
            context: Vec::new(),
            targets: vec![Target {
                level: Level::Street,
                unit_kind: UnitKind::StreetOffice,
                slug: None,
            }],
            fallback: Vec::new(),
            children: Vec::new(),
        }
    }

    #[test]
    fn a_catalogue_that_fits_the_tree_is_built() {
        let catalogue = check(&small(), Some(&org())).expect("accepted");
        assert_eq!(catalogue.matters().len(), 4);
        assert_eq!(catalogue.comment(), "测试用派单目录");
        let words: std::collections::BTreeSet<&str> = catalogue.words().collect();
        assert_eq!(
            words,
            ["停水", "没水", "水压", "物业", "小区"]
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn the_fixture_catalogue_is_within_the_bounds() {
        let spec: CatalogueSpec = serde_json::from_str(FIXTURE).expect("the fixture parses");
        let catalogue = check(&spec, None).expect("the fixture is a valid base");
        assert!(catalogue.matters().len() > 200);
    }

    #[test]
    fn an_empty_catalogue_is_refused() {
        let refusal = refused(|spec| spec.matters.clear());
        assert_eq!(refusal, CatalogueRefusal::whole(Problem::NoMatters));
    }

    #[test]
    fn a_catalogue_of_more_than_the_bound_of_matters_is_refused() {
        let refusal = refused(|spec| {
            spec.matters = (1..=11)
                .map(|top| {
                    let code = format!("{top:02}");
                    MatterSpec {
                        children: (1..=99)
                            .map(|child| {
                                leaf(
                                    &format!("{code}{child:02}"),
                                    &format!("事项{code}{child:02}"),
                                )
                            })
                            .collect(),
                        ..leaf(&code, &format!("大类{code}"))
                    }
                })
                .collect();
        });
        assert_eq!(refusal, CatalogueRefusal::whole(Problem::TooManyMatters));
    }

    #[test]
    fn a_catalogue_of_more_than_the_bound_of_words_is_refused() {
        let refusal = refused(|spec| {
            spec.matters = (1..=60)
                .map(|top| {
                    let code = format!("{top:02}");
                    let words =
                        |kind: &str| (0..MAX_LIST).map(|i| format!("{kind}{code}_{i}")).collect();
                    MatterSpec {
                        keywords: words("k"),
                        generic: words("g"),
                        context: words("c"),
                        ..leaf(&code, &format!("大类{code}"))
                    }
                })
                .collect();
        });
        assert_eq!(refusal, CatalogueRefusal::whole(Problem::TooManyWords));
    }

    #[test]
    fn a_long_comment_or_one_with_control_characters_is_refused() {
        let long = refused(|spec| spec.comment = "说明".repeat(MAX_COMMENT));
        assert_eq!(long, CatalogueRefusal::whole(Problem::BadComment));
        let control = refused(|spec| spec.comment = "说明\u{1b}[31m".into());
        assert_eq!(control.problem, Problem::BadComment);
        // Lines are fine in a comment.
        let mut spec = small();
        spec.comment = "第一行\n第二行".into();
        assert!(check(&spec, Some(&org())).is_ok());
    }

    #[test]
    fn a_catalogue_deeper_than_the_bound_is_refused() {
        let refusal = refused(|spec| {
            let mut deepest = leaf("0101010101", "第五级");
            for code in ["01010101", "010101"] {
                deepest = MatterSpec {
                    children: vec![deepest],
                    ..leaf(code, &format!("第{}级", code.len() / 2))
                };
            }
            water(spec).children = vec![deepest];
        });
        assert_eq!(refusal.matter, at("0101010101", "第五级"));
        assert_eq!(refusal.problem, Problem::TooDeep);
    }

    #[test]
    fn a_code_that_is_not_its_parent_s_and_two_digits_is_refused() {
        for code in ["1", "001", "0a", "", "0201"] {
            let refusal = refused(|spec| water(spec).code = code.into());
            assert_eq!(refusal.problem, Problem::BadCode, "{code}");
            assert_eq!(refusal.matter, at(code, "停水"));
        }
        let top = refused(|spec| spec.matters[1].code = "0102".into());
        assert_eq!(top.problem, Problem::BadCode);
    }

    #[test]
    fn a_code_given_twice_is_refused() {
        let refusal = refused(|spec| spec.matters[0].children[1].code = "0101".into());
        assert_eq!(refusal.matter, at("0101", "物业服务"));
        assert_eq!(refusal.problem, Problem::DuplicateCode);
    }

    #[test]
    fn a_blank_long_or_broken_name_is_refused() {
        for name in ["", "  ", " 停水", "停水\n停电", &"水".repeat(MAX_NAME + 1)] {
            let refusal = refused(|spec| water(spec).name = name.into());
            assert_eq!(refusal.problem, Problem::BadName, "{name:?}");
            assert_eq!(
                refusal.matter.as_ref().map(|m| m.code.as_str()),
                Some("0101")
            );
        }
        // The message repeats at most a short part of what was sent.
        let refusal = refused(|spec| water(spec).name = "水".repeat(500));
        assert!(
            refusal.message().chars().count() < 120,
            "{}",
            refusal.message()
        );
    }

    #[test]
    fn a_name_given_twice_is_refused_with_the_first_matter_s_code() {
        let refusal = refused(|spec| spec.matters[1].name = "停水".into());
        assert_eq!(refusal.matter, at("02", "停水"));
        assert_eq!(
            refusal.problem,
            Problem::DuplicateName {
                first: "0101".into()
            }
        );
        assert!(refusal.message().contains("0101"), "{}", refusal.message());
    }

    #[test]
    fn a_category_listed_twice_is_refused() {
        let refusal = refused(|spec| {
            spec.matters[1].categories =
                serde_json::from_value(json!(["complaint", "complaint"])).expect("categories");
        });
        assert_eq!(
            refusal.problem,
            Problem::RepeatedCategory { category: "投诉" }
        );
    }

    #[test]
    fn lists_longer_than_their_bound_are_refused() {
        let words = |n: usize| (0..n).map(|i| format!("词{i}")).collect::<Vec<_>>();
        type List = fn(&mut MatterSpec) -> &mut Vec<String>;
        let fields: [(Field, List); 3] = [
            (Field::Keywords, |m| &mut m.keywords),
            (Field::Generic, |m| &mut m.generic),
            (Field::Context, |m| &mut m.context),
        ];
        for (field, list) in fields {
            let refusal = refused(|spec| *list(water(spec)) = words(MAX_LIST + 1));
            assert_eq!(refusal.problem, Problem::TooLong { field });
            // The bound itself is fine.
            let mut spec = small();
            *list(water(&mut spec)) = words(MAX_LIST);
            assert!(check(&spec, Some(&org())).is_ok(), "{field:?}");
        }
        let street = || Target {
            level: Level::Street,
            unit_kind: UnitKind::StreetOffice,
            slug: None,
        };
        let refusal = refused(|spec| water(spec).targets = vec![street(); MAX_TARGETS + 1]);
        assert_eq!(
            refusal.problem,
            Problem::TooLong {
                field: Field::Targets
            }
        );
        let refusal = refused(|spec| spec.matters[0].fallback = vec![street(); MAX_TARGETS + 1]);
        assert_eq!(
            refusal.problem,
            Problem::TooLong {
                field: Field::Fallback
            }
        );
        assert!(
            refusal
                .message()
                .contains(&format!("兜底单位最多 {MAX_TARGETS} 个")),
            "{}",
            refusal.message()
        );
    }

    #[test]
    fn a_blank_long_or_unclean_word_is_refused_with_its_place() {
        let long = "水".repeat(MAX_WORD + 1);
        for word in [
            "",
            " ",
            "停 水",
            "停水\t",
            "停\u{202e}水",
            "#停水",
            long.as_str(),
        ] {
            let refusal = refused(|spec| water(spec).keywords.push(word.into()));
            assert_eq!(refusal.matter, at("0101", "停水"));
            assert_eq!(
                refusal.problem,
                Problem::BadWord {
                    field: Field::Keywords,
                    index: 2,
                    word: shown(word)
                },
                "{word:?}"
            );
            assert!(
                refusal.message().contains("第 3 个关键词"),
                "{}",
                refusal.message()
            );
        }
        let refusal = refused(|spec| water(spec).context = vec![String::new()]);
        assert_eq!(refusal.message(), "事项 0101「停水」的第 1 个辅助词为空");
        let refusal = refused(|spec| spec.matters[0].children[1].generic.push("小 区".into()));
        assert!(matches!(
            refusal.problem,
            Problem::BadWord {
                field: Field::Generic,
                index: 1,
                ..
            }
        ));
        // Digits, Latin letters and signs are fine.
        let mut spec = small();
        water(&mut spec)
            .keywords
            .extend(["5G".to_owned(), "n+1".to_owned(), "12345".to_owned()]);
        assert!(check(&spec, Some(&org())).is_ok());
    }

    #[test]
    fn a_word_said_twice_in_one_matter_is_refused() {
        let twice = refused(|spec| water(spec).keywords.push("停水".into()));
        assert_eq!(
            twice.problem,
            Problem::RepeatedWord {
                field: Field::Keywords,
                word: "停水".into()
            }
        );
        let across = refused(|spec| water(spec).context.push("没水".into()));
        assert_eq!(
            across.problem,
            Problem::RepeatedWord {
                field: Field::Context,
                word: "没水".into()
            }
        );
        let case = refused(|spec| {
            water(spec)
                .keywords
                .extend(["WiFi".to_owned(), "wifi".to_owned()])
        });
        assert_eq!(
            case.problem,
            Problem::RepeatedWord {
                field: Field::Keywords,
                word: "wifi".into()
            }
        );
        // Two matters may share a word (it then counts half).
        let mut spec = small();
        spec.matters[0].children[1].keywords.push("停水".into());
        assert!(check(&spec, Some(&org())).is_ok());
    }

    #[test]
    fn a_target_that_does_not_fit_its_kind_is_refused_with_its_place() {
        let target =
            |value: serde_json::Value| -> Target { serde_json::from_value(value).expect("target") };
        let level = refused(|spec| {
            water(spec).targets = vec![
                target(json!({ "level": "street", "unit_kind": "street_office" })),
                target(json!({ "level": "city", "unit_kind": "street_office" })),
            ];
        });
        assert_eq!(
            level.problem,
            Problem::TargetLevel {
                field: Field::Targets,
                index: 1
            }
        );
        assert!(
            level.message().contains("第 2 个责任单位"),
            "{}",
            level.message()
        );
        let no_slug = refused(|spec| {
            water(spec).targets = vec![target(json!({ "level": "city", "unit_kind": "bureau" }))];
        });
        assert_eq!(
            no_slug.problem,
            Problem::TargetSlug {
                field: Field::Targets,
                index: 0
            }
        );
        let blank_slug = refused(|spec| {
            water(spec).targets = vec![target(
                json!({ "level": "city", "unit_kind": "bureau", "slug": " " }),
            )];
        });
        assert_eq!(
            blank_slug.problem,
            Problem::TargetSlug {
                field: Field::Targets,
                index: 0
            }
        );
        let extra_slug = refused(|spec| {
            spec.matters[0].fallback = vec![target(
                json!({ "level": "street", "unit_kind": "street_office", "slug": "s01" }),
            )];
        });
        assert_eq!(extra_slug.matter, at("01", "城乡建设"));
        assert_eq!(
            extra_slug.problem,
            Problem::TargetSlug {
                field: Field::Fallback,
                index: 0
            }
        );
        let centre = refused(|spec| {
            water(spec).targets = vec![target(
                json!({ "level": "city", "unit_kind": "hotline_centre" }),
            )];
        });
        assert_eq!(
            centre.problem,
            Problem::TargetNotAHandler {
                field: Field::Targets,
                index: 0,
                kind: UnitKind::HotlineCentre
            }
        );
        assert!(
            centre.message().contains("不办理工单"),
            "{}",
            centre.message()
        );
    }

    #[test]
    fn a_target_naming_no_unit_of_the_tree_is_refused() {
        let target =
            |value: serde_json::Value| -> Target { serde_json::from_value(value).expect("target") };
        let bureau = refused(|spec| {
            water(spec).targets = vec![target(
                json!({ "level": "city", "unit_kind": "bureau", "slug": "nosuch" }),
            )];
        });
        assert_eq!(
            bureau.problem,
            Problem::UnknownUnit {
                field: Field::Targets,
                index: 0,
                kind: UnitKind::Bureau,
                slug: "nosuch".into()
            }
        );
        assert_eq!(
            bureau.message(),
            "事项 0101「停水」的第 1 个责任单位：没有部门代码为「nosuch」的市直部门"
        );
        // The city has a housing bureau but no district has a housing department.
        let department = refused(|spec| {
            water(spec).targets = vec![target(
                json!({ "level": "district", "unit_kind": "district_department", "slug": "housing" }),
            )];
        });
        assert!(matches!(
            department.problem,
            Problem::UnknownUnit {
                kind: UnitKind::DistrictDepartment,
                ..
            }
        ));
        assert!(
            department.message().contains("区属部门"),
            "{}",
            department.message()
        );
        // A city without grid stations.
        let units: Vec<_> = org()
            .units()
            .iter()
            .filter(|u| !matches!(u.kind, UnitKind::GridStation | UnitKind::Building))
            .cloned()
            .collect();
        let without_grids = OrgTree::new(units).expect("a tree");
        let mut spec = small();
        water(&mut spec).targets = vec![target(
            json!({ "level": "grid", "unit_kind": "grid_station" }),
        )];
        assert!(check(&spec, Some(&org())).is_ok());
        let grid = check(&spec, Some(&without_grids)).expect_err("no grid station");
        assert!(
            grid.message().contains("机构中没有「网格站」类单位")
                || grid.message().contains("机构中没有"),
            "{}",
            grid.message()
        );
        // Without a tree (the base), only the catalogue's own rules.
        assert!(check(&spec, None).is_ok());
    }

    #[test]
    fn a_fallback_without_targets_of_its_own_is_refused() {
        let refusal = refused(|spec| {
            water(spec).fallback = vec![Target {
                level: Level::City,
                unit_kind: UnitKind::Bureau,
                slug: Some("urban".into()),
            }];
        });
        assert_eq!(refusal.matter, at("0101", "停水"));
        assert_eq!(refusal.problem, Problem::FallbackWithoutTargets);
    }

    #[test]
    fn a_leaf_without_targets_of_its_own_or_inherited_is_refused() {
        let refusal = refused(|spec| spec.matters[1].targets.clear());
        assert_eq!(refusal.matter, at("02", "属地管理"));
        assert_eq!(refusal.problem, Problem::NoTargets);
        assert_eq!(
            refusal.message(),
            "事项 02「属地管理」没有责任单位（自己没有写，上级事项也没有）"
        );
    }

    #[test]
    fn every_refusal_says_where_in_chinese() {
        let all = [
            Problem::NoMatters,
            Problem::TooManyMatters,
            Problem::TooManyWords,
            Problem::BadComment,
            Problem::TooDeep,
            Problem::BadCode,
            Problem::DuplicateCode,
            Problem::BadName,
            Problem::DuplicateName {
                first: "0101".into(),
            },
            Problem::RepeatedCategory { category: "投诉" },
            Problem::TooLong {
                field: Field::Keywords,
            },
            Problem::BadWord {
                field: Field::Generic,
                index: 0,
                word: "a b".into(),
            },
            Problem::RepeatedWord {
                field: Field::Context,
                word: "水压".into(),
            },
            Problem::TargetLevel {
                field: Field::Targets,
                index: 0,
            },
            Problem::TargetSlug {
                field: Field::Fallback,
                index: 0,
            },
            Problem::TargetNotAHandler {
                field: Field::Targets,
                index: 0,
                kind: UnitKind::Building,
            },
            Problem::UnknownUnit {
                field: Field::Targets,
                index: 0,
                kind: UnitKind::GridStation,
                slug: String::new(),
            },
            Problem::FallbackWithoutTargets,
            Problem::NoTargets,
        ];
        let whole = [
            Problem::NoMatters,
            Problem::TooManyMatters,
            Problem::TooManyWords,
            Problem::BadComment,
        ];
        for problem in all {
            let matter = (!whole.contains(&problem)).then(|| MatterAt {
                code: "0101".into(),
                name: "停水".into(),
            });
            let refusal = CatalogueRefusal { matter, problem };
            let message = refusal.message();
            assert!(
                message.contains("派单目录") || message.contains("事项 0101「停水」"),
                "{message}"
            );
            assert!(!message.contains('`'), "{message}");
            assert!(!refusal.to_string().is_empty());
        }
    }

    #[test]
    fn what_catalogue_new_refuses_is_placed_at_its_matter() {
        let mut spec = small();
        spec.matters[1].targets.clear();
        let err = Catalogue::new(spec.clone()).expect_err("no targets");
        assert_eq!(
            refusal_of(&spec, &err),
            CatalogueRefusal {
                matter: at("02", "属地管理"),
                problem: Problem::NoTargets
            }
        );
        let mut spec = small();
        water(&mut spec).targets = vec![Target {
            level: Level::City,
            unit_kind: UnitKind::Building,
            slug: None,
        }];
        let err = CatalogueError::LevelMismatch("0101".into());
        assert_eq!(
            refusal_of(&spec, &err).problem,
            Problem::TargetLevel {
                field: Field::Targets,
                index: 0
            }
        );
    }
}
