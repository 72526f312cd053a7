//! 派单目录 in the service: the compiled-in dispatch catalogue
//! (`fixtures/dispatch-catalogue.json`) and the words of a request, segmented with the
//! knowledge base's jieba analysis, handed to the pure `domain::routing::suggest`.
//!
//! The segmenter is the knowledge base's (its hotline dictionary and stop words) with the
//! catalogue's own words added to the dictionary, so a keyword the caller says comes out as
//! one word (停水, 没水, 拖欠工资) instead of its characters. A catalogue word the text only
//! says as a place (天桥 in 天桥底下, 学校 in 学校旁边的包子铺: always followed by a word of
//! position) is handed over as a place, which the catalogue counts as a generic word.

use std::collections::HashSet;
use std::sync::LazyLock;

use anyhow::Context as _;
use domain::kinds::Category;
use domain::org::{OrgTree, UnitId};
use domain::routing::{Catalogue, CatalogueSpec, RoutingError, Suggestion, suggest_with_places};
use knowledge_base::analysis::Segmenter;

const CATALOGUE_JSON: &str = include_str!("../fixtures/dispatch-catalogue.json");

/// How often jieba should think a catalogue word occurs (the hotline dictionary's figure).
const WORD_FREQUENCY: u32 = 20_000;

/// Words of position: a catalogue word always followed by one of them is said as a place
/// (天桥底下, 河滩边上, 医院门口), not as what the request is about.
const POSITIONS: [&str; 15] = [
    "底下", "下面", "下边", "下的", "旁边", "边上", "边的", "门口", "附近", "对面", "周边", "周围",
    "后面", "跟前", "脚下",
];

/// The word a bus route said by its number stands for.
const ROUTE: &str = "路车";

/// The numbers said as bus routes: digits followed by 路, not by a word of a road (路口,
/// 路段, 路灯, 路边, 路上).
fn route_numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i > start {
            let road = chars.get(i + 1).is_some_and(|c| "口段灯边上".contains(*c));
            if chars.get(i) == Some(&'路') && !road {
                found.push(chars[start..i].iter().collect());
            }
        } else {
            i += 1;
        }
    }
    found
}

/// The catalogue and the segmenter that reads requests for it.
pub struct Dispatch {
    catalogue: Catalogue,
    segmenter: Segmenter,
    /// The catalogue's words.
    words: HashSet<String>,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("matters", &self.catalogue.matters().len())
            .finish_non_exhaustive()
    }
}

static DISPATCH: LazyLock<Result<Dispatch, String>> =
    LazyLock::new(|| Dispatch::load().map_err(|err| format!("{err:#}")));

/// The compiled-in catalogue with its segmenter; start-up calls it so a bad fixture stops the
/// server instead of failing requests.
///
/// # Errors
/// When the fixture does not parse or validate, or the dictionary does not load.
pub fn dispatch() -> anyhow::Result<&'static Dispatch> {
    DISPATCH
        .as_ref()
        .map_err(|err| anyhow::anyhow!("{err}"))
        .context("failed to load the dispatch catalogue")
}

impl Dispatch {
    fn load() -> anyhow::Result<Dispatch> {
        let spec: CatalogueSpec = serde_json::from_str(CATALOGUE_JSON)
            .context("failed to parse `fixtures/dispatch-catalogue.json`")?;
        let catalogue =
            Catalogue::new(spec).context("`fixtures/dispatch-catalogue.json` is invalid")?;
        let base = knowledge_base::fixtures::segmenter()
            .context("failed to load `fixtures/kb/user-dict.txt`")?;
        // Only words jieba would split: the others keep the frequencies they have.
        let mut extra: Vec<&str> = catalogue
            .words()
            .filter(|w| w.chars().count() > 1 && base.query_words(w) != [*w])
            .collect();
        extra.sort_unstable();
        let mut dictionary = knowledge_base::fixtures::USER_DICTIONARY.to_owned();
        dictionary.push('\n');
        for word in extra {
            dictionary.push_str(&format!("{word} {WORD_FREQUENCY}\n"));
        }
        let segmenter = Segmenter::new(&dictionary)
            .context("failed to add the catalogue's words to the dictionary")?;
        let words = catalogue.words().map(str::to_owned).collect();
        Ok(Dispatch {
            catalogue,
            segmenter,
            words,
        })
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The distinct words of `text`, as the catalogue is matched on.
    ///
    /// A bus route said by its number (68路, 105路车) is split by jieba (68, 路早): the word
    /// 路车 is added after the number, as the catalogue's word for a bus route.
    pub fn words(&self, text: &str) -> Vec<String> {
        let mut words = self.segmenter.query_words(text);
        for number in route_numbers(text) {
            let said = words.iter().any(|w| w == ROUTE);
            if let Some(i) = words.iter().position(|w| *w == number)
                && !said
            {
                words.insert(i + 1, ROUTE.to_owned());
            }
        }
        words
    }

    /// The catalogue's words of `words` that `text` only says as places: every time it says
    /// one, a word of position follows.
    pub fn places(&self, text: &str, words: &[String]) -> Vec<String> {
        let text = text.to_lowercase();
        words
            .iter()
            .filter(|w| self.words.contains(w.as_str()))
            .filter(|w| {
                let mut at = text.match_indices(w.as_str()).peekable();
                at.peek().is_some()
                    && at.all(|(i, _)| {
                        let after = &text[i + w.len()..];
                        POSITIONS.iter().any(|p| after.starts_with(p))
                    })
            })
            .cloned()
            .collect()
    }

    /// The catalogue's suggestion for a request at `location` of `category` whose title and
    /// content are `text`.
    ///
    /// # Errors
    /// [`RoutingError::UnknownLocation`] when `location` is not in the tree.
    pub fn suggest(
        &self,
        org: &OrgTree,
        location: &UnitId,
        category: Category,
        text: &str,
    ) -> Result<Suggestion, RoutingError> {
        let words = self.words(text);
        let places = self.places(text, &words);
        suggest_with_places(&self.catalogue, org, location, category, &words, &places)
    }
}

#[cfg(test)]
mod tests {
    use domain::decide::may_transfer_to;
    use domain::org::UnitKind;
    use serde::Deserialize;

    use super::*;
    use crate::directory::load_org;

    const CATEGORIES: [Category; 6] = [
        Category::Inquiry,
        Category::HelpRequest,
        Category::Complaint,
        Category::Report,
        Category::Proposal,
        Category::Praise,
    ];

    /// A request of `fixtures/routing-labelled.jsonl` or `fixtures/routing-heldout.jsonl`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Labelled {
        title: String,
        content: String,
        category: Category,
        location_unit_id: String,
        /// The unit that should get it first.
        unit: String,
    }

    fn parse(jsonl: &str) -> Vec<Labelled> {
        jsonl
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("labelled request"))
            .collect()
    }

    /// The share of `requests` whose first suggested unit is the labelled one, printed with
    /// the misses (`cargo test -p minqing --lib dispatch -- --nocapture`).
    fn hit_rate(name: &str, requests: &[Labelled]) -> (f64, Vec<String>) {
        let dispatch = dispatch().expect("fixture");
        let org = load_org().expect("org");
        let mut misses = Vec::new();
        for r in requests {
            let text = format!("{} {}", r.title, r.content);
            let s = dispatch
                .suggest(
                    &org,
                    &UnitId::new(r.location_unit_id.as_str()),
                    r.category,
                    &text,
                )
                .expect("known location");
            let first = s.units.first().map(|u| u.unit_id.as_str()).unwrap_or("-");
            if first != r.unit {
                misses.push(format!(
                    "{}｜{first} ≠ {}｜{}｜{:?}",
                    r.title,
                    r.unit,
                    s.reason,
                    dispatch.words(&text)
                ));
            }
        }
        let hits = requests.len() - misses.len();
        let rate = hits as f64 / requests.len() as f64;
        // Printed on purpose: the hit rate is reported.
        #[allow(clippy::print_stdout)]
        {
            println!(
                "routing hit rate ({name}): {hits}/{} = {:.1}%",
                requests.len(),
                rate * 100.0
            );
            for miss in &misses {
                println!("  miss: {miss}");
            }
        }
        (rate, misses)
    }

    #[test]
    fn the_catalogue_names_units_of_every_district() {
        let catalogue = dispatch().expect("fixture").catalogue();
        let org = load_org().expect("org");
        let districts: Vec<&domain::org::Unit> = org
            .units()
            .iter()
            .filter(|u| u.kind == UnitKind::DistrictCentre)
            .collect();
        for matter in catalogue.matters() {
            for target in matter.targets.iter().chain(&matter.fallback) {
                let Some(slug) = &target.slug else { continue };
                let ids: Vec<String> = match target.unit_kind {
                    UnitKind::Bureau => vec![format!("city.bureau.{slug}")],
                    _ => districts
                        .iter()
                        .map(|d| format!("{}.dept.{slug}", d.id))
                        .collect(),
                };
                for id in ids {
                    let unit = org.get(&UnitId::new(id.clone()));
                    assert_eq!(
                        unit.map(|u| u.kind),
                        Some(target.unit_kind),
                        "matter `{}`: `{id}`",
                        matter.code
                    );
                }
            }
        }
    }

    #[test]
    fn every_keyword_of_the_catalogue_is_one_word_when_said_alone() {
        let dispatch = dispatch().expect("fixture");
        let mut split = Vec::new();
        for word in dispatch.catalogue().words() {
            if !dispatch.words(word).iter().any(|w| w == word) {
                split.push(word.to_owned());
            }
        }
        assert!(split.is_empty(), "{split:?}");
    }

    #[test]
    fn every_place_and_matter_of_the_fixture_gives_a_transferable_suggestion() {
        let dispatch = dispatch().expect("fixture");
        let org = load_org().expect("org");
        let mut texts: Vec<String> = dispatch
            .catalogue()
            .matters()
            .iter()
            .filter_map(|m| m.keywords.first().cloned())
            .collect();
        texts.push(String::new());
        let places = org
            .units()
            .iter()
            .filter(|u| u.kind != UnitKind::EfficiencyOffice)
            .step_by(7);
        for place in places {
            let district = org.district_of(&place.id).map(|d| d.id.clone());
            for category in CATEGORIES {
                for text in &texts {
                    let s = dispatch
                        .suggest(&org, &place.id, category, text)
                        .expect("known");
                    // Inside a district a matter always applies (the district default).
                    if district.is_some() {
                        assert!(!s.units.is_empty(), "{} {category:?} {text}", place.id);
                    }
                    for unit in &s.units {
                        for hop in unit.path.windows(2) {
                            assert!(may_transfer_to(&org, &hop[0], &hop[1]).is_ok(), "{hop:?}");
                        }
                        let from = &unit.path[unit.path.len() - 2];
                        assert!(
                            from == &org.root().id || Some(from) == district.as_ref(),
                            "{} → {}",
                            place.id,
                            unit.unit_id
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_catalogue_word_always_followed_by_a_position_is_a_place() {
        let dispatch = dispatch().expect("fixture");
        let places = |text: &str| dispatch.places(text, &dispatch.words(text));
        assert_eq!(places("天桥底下睡着个流浪汉"), ["天桥"]);
        // Said once as the topic, it is not only a place.
        assert!(places("天桥护栏坏了，天桥底下也很脏").is_empty());
        assert!(places("天桥的护栏坏了").is_empty());
    }

    #[test]
    fn a_number_followed_by_lu_is_a_bus_route() {
        assert_eq!(
            route_numbers("68路早高峰等了一小时，105路也不来"),
            ["68", "105"]
        );
        assert!(route_numbers("3路口的红绿灯，12路段施工").is_empty());
        let dispatch = dispatch().expect("fixture");
        let words = dispatch.words("68路早高峰等了一小时");
        let at = words.iter().position(|w| w == "68").expect("number");
        assert_eq!(words.get(at + 1).map(String::as_str), Some(ROUTE));
    }

    #[test]
    fn the_fixture_routes_the_usual_requests_to_the_usual_units() {
        let dispatch = dispatch().expect("fixture");
        let org = load_org().expect("org");
        let first = |location: &str, category, text: &str| {
            let s = dispatch
                .suggest(&org, &UnitId::new(location), category, text)
                .expect("known");
            let code = s.matter.map(|m| m.code).unwrap_or_default();
            let unit = s.units.first().map(|u| u.unit_id.to_string());
            (code, unit.unwrap_or_default())
        };
        let building = "d.chengguan.s01.c01.g01.b01";
        // 小区 says little; 停水 says the water company.
        let (code, unit) = first(building, Category::Complaint, "小区停水");
        assert_eq!(unit, "city.bureau.water");
        assert_eq!(
            dispatch
                .catalogue()
                .matter(&code)
                .map(|m| m.path.join(" > ")),
            Some("城乡建设 > 供水 > 停水".to_owned())
        );
        assert_eq!(
            first(building, Category::Complaint, "小区门口有流动摊贩占道经营").1,
            "d.chengguan.dept.urban"
        );
        assert_eq!(
            first(building, Category::Complaint, "物业不维修电梯").1,
            "d.chengguan.dept.housing"
        );
        assert_eq!(
            first(building, Category::Inquiry, "社保卡怎么补办").1,
            "city.bureau.hrss"
        );
        assert_eq!(
            first("city", Category::Complaint, "物业乱收费").1,
            "city.bureau.housing"
        );
        assert_eq!(
            first(building, Category::Complaint, "工地半夜施工太吵").1,
            "d.chengguan.dept.urban"
        );
        assert_eq!(
            first(building, Category::Complaint, "楼上邻居半夜太吵").1,
            "d.chengguan.s01"
        );
        assert_eq!(
            first("d.chengguan", Category::Complaint, "").1,
            "d.chengguan"
        );
        assert_eq!(first(building, Category::Praise, "").1, "d.chengguan");
    }

    /// The labelled requests: the first suggested unit must be the right one for 90% of them.
    #[test]
    fn the_first_suggested_unit_is_right_for_nine_in_ten_labelled_requests() {
        let requests = parse(include_str!("../fixtures/routing-labelled.jsonl"));
        assert!(requests.len() >= 120, "{}", requests.len());
        let (rate, misses) = hit_rate("labelled", &requests);
        assert!(rate >= 0.9, "hit rate {rate:.3}: {misses:#?}");
    }

    /// The held-out batches (`fixtures/routing-heldout*.jsonl`), each written before the
    /// catalogue was fixed on it and measured first as unseen requests (the figures are in
    /// `docs/decisions/0008-routing-suggestions-that-generalise.md`); the rounds of fixes then
    /// tuned on batches 1 to 6, not on 7. Together they must stay at nine in ten.
    #[test]
    fn the_first_suggested_unit_is_right_for_nine_in_ten_held_out_requests() {
        let batches = [
            (
                "held-out, batch 1",
                include_str!("../fixtures/routing-heldout.jsonl"),
            ),
            (
                "held-out, batch 2",
                include_str!("../fixtures/routing-heldout-2.jsonl"),
            ),
            (
                "held-out, batch 3",
                include_str!("../fixtures/routing-heldout-3.jsonl"),
            ),
            (
                "held-out, batch 4",
                include_str!("../fixtures/routing-heldout-4.jsonl"),
            ),
            (
                "held-out, batch 5",
                include_str!("../fixtures/routing-heldout-5.jsonl"),
            ),
            (
                "held-out, batch 6",
                include_str!("../fixtures/routing-heldout-6.jsonl"),
            ),
            (
                "held-out, batch 7",
                include_str!("../fixtures/routing-heldout-7.jsonl"),
            ),
        ];
        let (mut total, mut missed) = (0, Vec::new());
        for (name, jsonl) in batches {
            let requests = parse(jsonl);
            assert!(requests.len() >= 100, "{name}: {}", requests.len());
            let (_, misses) = hit_rate(name, &requests);
            total += requests.len();
            missed.extend(misses);
        }
        let rate = (total - missed.len()) as f64 / total as f64;
        #[allow(clippy::print_stdout)]
        {
            println!(
                "routing hit rate (held-out, all batches): {}/{total} = {:.1}%",
                total - missed.len(),
                rate * 100.0
            );
        }
        assert!(rate >= 0.9, "hit rate {rate:.3}: {missed:#?}");
    }
}
