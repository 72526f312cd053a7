//! 派单目录 in the service: the dispatch catalogue and the words of a request, segmented with
//! the knowledge base's jieba analysis, handed to the pure `domain::routing::suggest`.
//!
//! The catalogue is versioned data (`domain::rules`: version 1 has the compiled-in
//! `fixtures/dispatch-catalogue.json`, an administrator records the next); suggestions use
//! the one in force now. Each catalogue is read by a [`Reader`]: the knowledge base's
//! segmenter (its hotline dictionary and stop words) with the catalogue's own words added to
//! the dictionary, so a keyword the caller says comes out as one word (停水, 没水, 拖欠工资)
//! instead of its characters. [`Dispatch::reader_for`] builds the reader of a new catalogue
//! once (at start-up and when it changes, not per request) and keeps it; a catalogue with the
//! same words as the one kept shares its segmenter. A catalogue word the text only
//! says as a place (天桥 in 天桥底下, 学校 in 学校旁边的包子铺: always followed by a word of
//! position) is handed over as a place, which the catalogue counts as a generic word.
//!
//! The similar-cases model is learned once at start-up, on the base catalogue's reading.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use domain::kinds::Category;
use domain::learned::{Example, Model, Settings};
use domain::org::{OrgTree, UnitId, UnitKind};
use domain::routing::{
    Blend, Catalogue, CatalogueSpec, RoutingError, Similar, Suggestion, Target, suggest_with_model,
    suggest_with_places,
};
use knowledge_base::analysis::Segmenter;
use serde::Deserialize;

const CATALOGUE_JSON: &str = include_str!("../fixtures/dispatch-catalogue.json");

/// The labelled requests the similar-cases model learns from at start-up (decision 0010):
/// the first labelled set and the held-out batches, each a file of JSON lines.
pub const LABELLED: [(&str, &str); 9] = [
    (
        "labelled",
        include_str!("../fixtures/routing-labelled.jsonl"),
    ),
    (
        "held-out 1",
        include_str!("../fixtures/routing-heldout.jsonl"),
    ),
    (
        "held-out 2",
        include_str!("../fixtures/routing-heldout-2.jsonl"),
    ),
    (
        "held-out 3",
        include_str!("../fixtures/routing-heldout-3.jsonl"),
    ),
    (
        "held-out 4",
        include_str!("../fixtures/routing-heldout-4.jsonl"),
    ),
    (
        "held-out 5",
        include_str!("../fixtures/routing-heldout-5.jsonl"),
    ),
    (
        "held-out 6",
        include_str!("../fixtures/routing-heldout-6.jsonl"),
    ),
    (
        "held-out 7",
        include_str!("../fixtures/routing-heldout-7.jsonl"),
    ),
    (
        "held-out 8",
        include_str!("../fixtures/routing-heldout-8.jsonl"),
    ),
];

/// How the model is learned (alpha chosen by leave-one-batch-out, decision 0010).
pub const SETTINGS: Settings = Settings { alpha: 0.3 };

/// How the catalogue and the similar cases are weighed (chosen by leave-one-batch-out,
/// decision 0010).
pub const BLEND: Blend = Blend {
    catalogue_weight: 6.0,
    lead_bonus: 0.0,
};

/// A labelled request of the `LABELLED` files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labelled {
    /// 标题.
    pub title: String,
    /// 内容.
    pub content: String,
    /// The request's category.
    pub category: Category,
    /// Where the citizen is.
    pub location_unit_id: String,
    /// The unit that should get it first.
    pub unit: String,
}

impl Labelled {
    /// The text the suggestion reads: title and content.
    pub fn text(&self) -> String {
        format!("{} {}", self.title, self.content)
    }
}

/// The requests of one `LABELLED` file.
///
/// # Errors
/// When a line is not a labelled request.
pub fn parse_labelled(jsonl: &str) -> anyhow::Result<Vec<Labelled>> {
    jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| {
            serde_json::from_str(l).with_context(|| format!("labelled request on line {}", n + 1))
        })
        .collect()
}

/// What the model learns to say: the kind of the labelled unit and, for a bureau or a
/// district department, which (the catalogue's `Target`), so a request learned in one
/// district teaches every district.
fn target_of(org: &OrgTree, unit: &str) -> Option<Target> {
    let unit = org.get(&UnitId::new(unit))?;
    let slug = match unit.kind {
        UnitKind::Bureau | UnitKind::DistrictDepartment => {
            Some(unit.id.as_str().rsplit('.').next()?.to_owned())
        }
        _ => None,
    };
    Some(Target {
        level: unit.kind.level(),
        unit_kind: unit.kind,
        slug,
    })
}

/// Whether a character is a Chinese one (the bigrams are taken of runs of them).
fn is_han(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// A request as the suggestion reads it: its words, those said only as places, and the
/// model's features.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The distinct words, in the order of the text.
    pub words: Vec<String>,
    /// The catalogue's words said only as places.
    pub places: Vec<String>,
    /// The words, the character bigrams of the text (they catch words the dictionary lacks)
    /// and the category.
    pub features: Vec<String>,
}

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

/// A catalogue and the segmenter that reads requests for it.
pub struct Reader {
    catalogue: Arc<Catalogue>,
    segmenter: Segmenter,
    /// The catalogue's words.
    words: Arc<HashSet<String>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("matters", &self.catalogue.matters().len())
            .field("words", &self.words.len())
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// The knowledge base's segmenter `kb` with the words of `catalogue` jieba would split
    /// added to its dictionary (the others keep the frequencies they have).
    ///
    /// # Errors
    /// When the dictionary does not load.
    pub fn build(kb: &Segmenter, catalogue: Arc<Catalogue>) -> anyhow::Result<Reader> {
        let mut extra: Vec<&str> = catalogue
            .words()
            .filter(|w| w.chars().count() > 1 && kb.query_words(w) != [*w])
            .collect();
        extra.sort_unstable();
        let mut dictionary = knowledge_base::fixtures::USER_DICTIONARY.to_owned();
        dictionary.push('\n');
        for word in extra {
            dictionary.push_str(&format!("{word} {WORD_FREQUENCY}\n"));
        }
        let segmenter = Segmenter::new(&dictionary)
            .context("failed to add the catalogue's words to the dictionary")?;
        let words = Arc::new(catalogue.words().map(str::to_owned).collect());
        Ok(Reader {
            catalogue,
            segmenter,
            words,
        })
    }

    /// A reader of `catalogue` sharing this one's segmenter, when both have the same words
    /// (a change of names, categories or units only).
    fn same_words(&self, catalogue: &Arc<Catalogue>) -> Option<Reader> {
        let mut n_words = 0;
        let same = catalogue.words().all(|w| {
            n_words += 1;
            self.words.contains(w)
        }) && n_words == self.words.len();
        same.then(|| Reader {
            catalogue: Arc::clone(catalogue),
            segmenter: self.segmenter.clone(),
            words: Arc::clone(&self.words),
        })
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Arc<Catalogue> {
        &self.catalogue
    }

    /// How the suggestion reads a request of `category` whose title and content are `text`.
    pub fn read(&self, category: Category, text: &str) -> Reading {
        let words = self.words(text);
        let places = self.places(text, &words);
        let mut features = words.clone();
        let lowered = text.to_lowercase();
        let chars: Vec<char> = lowered.chars().collect();
        for pair in chars.windows(2) {
            if pair.iter().all(|c| is_han(*c)) {
                features.push(pair.iter().collect());
            }
        }
        features.push(format!("类别：{}", category.label()));
        Reading {
            words,
            places,
            features,
        }
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
}

/// The compiled-in catalogue's reader, the similar-cases model, and the reader of the
/// catalogue in force.
pub struct Dispatch {
    /// The compiled-in catalogue's (what the model was learned on, `minqing generate`).
    base: Arc<Reader>,
    /// The knowledge base's segmenter, which tells the words jieba would split.
    kb: Segmenter,
    /// The similar-cases model, learned from every `LABELLED` file.
    model: Model<Target>,
    /// The reader of the catalogue last asked for (the one in force).
    in_force: Mutex<Arc<Reader>>,
    /// Held while a reader is built, so a change builds it once.
    building: Mutex<()>,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("base", &self.base)
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
        let catalogue = Arc::new(base_catalogue()?);
        let kb = knowledge_base::fixtures::segmenter()
            .context("failed to load `fixtures/kb/user-dict.txt`")?;
        let base = Arc::new(Reader::build(&kb, catalogue)?);
        let mut dispatch = Dispatch {
            base: Arc::clone(&base),
            kb,
            model: Model::train(&[], SETTINGS),
            in_force: Mutex::new(base),
            building: Mutex::new(()),
        };
        let org = crate::directory::load_org()?;
        let mut examples = Vec::new();
        for (name, jsonl) in LABELLED {
            let requests =
                parse_labelled(jsonl).with_context(|| format!("failed to read `{name}`"))?;
            examples.extend(dispatch.examples(&org, &requests)?);
        }
        dispatch.model = Model::train(&examples, SETTINGS);
        Ok(dispatch)
    }

    /// The model's examples of `requests`.
    ///
    /// # Errors
    /// When a request's unit is not in the tree.
    pub fn examples(
        &self,
        org: &OrgTree,
        requests: &[Labelled],
    ) -> anyhow::Result<Vec<Example<Target>>> {
        requests
            .iter()
            .map(|r| {
                let label = target_of(org, &r.unit)
                    .with_context(|| format!("labelled unit `{}` is not in the tree", r.unit))?;
                Ok(Example {
                    features: self.read(r.category, &r.text()).features,
                    label,
                })
            })
            .collect()
    }

    /// The similar-cases model learned at start-up.
    pub fn model(&self) -> &Model<Target> {
        &self.model
    }

    /// How the compiled-in catalogue's reader reads a request (see [`Reader::read`]).
    pub fn read(&self, category: Category, text: &str) -> Reading {
        self.base.read(category, text)
    }

    /// The compiled-in catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.base.catalogue
    }

    /// The words of `text` for the compiled-in catalogue (see [`Reader::words`]).
    pub fn words(&self, text: &str) -> Vec<String> {
        self.base.words(text)
    }

    /// The compiled-in catalogue's words `text` says only as places (see [`Reader::places`]).
    pub fn places(&self, text: &str, words: &[String]) -> Vec<String> {
        self.base.places(text, words)
    }

    /// The reader of `catalogue`: the one kept when it is that catalogue, else a new one, kept
    /// from now on (sharing the segmenter when the words are the same). Building a segmenter
    /// loads jieba's dictionary (a fraction of a second): callers on the async runtime run
    /// the first call for a new catalogue on a blocking thread (`AppState::change_rules_now`,
    /// start-up), so requests find it built.
    ///
    /// # Errors
    /// When the dictionary does not load.
    pub fn reader_for(&self, catalogue: &Arc<Catalogue>) -> anyhow::Result<Arc<Reader>> {
        let kept = || {
            let kept = self.in_force.lock().unwrap_or_else(|e| e.into_inner());
            Arc::ptr_eq(&kept.catalogue, catalogue).then(|| Arc::clone(&kept))
        };
        if let Some(reader) = kept() {
            return Ok(reader);
        }
        let _one_build = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reader) = kept() {
            return Ok(reader);
        }
        let previous = Arc::clone(&self.in_force.lock().unwrap_or_else(|e| e.into_inner()));
        let reader = match previous
            .same_words(catalogue)
            .or_else(|| self.base.same_words(catalogue))
        {
            Some(reader) => reader,
            None => {
                let started = Instant::now();
                let reader = Reader::build(&self.kb, Arc::clone(catalogue))?;
                tracing::info!(
                    words = reader.words.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "segmenter built for the dispatch catalogue in force"
                );
                reader
            }
        };
        let reader = Arc::new(reader);
        *self.in_force.lock().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&reader);
        Ok(reader)
    }

    /// The compiled-in catalogue's suggestion for a request at `location` of `category` whose
    /// title and content are `text` (`minqing generate`; the service asks [`Dispatch::suggest_in`]
    /// with the catalogue in force).
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
        self.suggest_in(&self.base, org, location, category, text)
    }

    /// The suggestion of `reader`'s catalogue, blended with the similar cases, for a request
    /// at `location` of `category` whose title and content are `text`.
    ///
    /// # Errors
    /// [`RoutingError::UnknownLocation`] when `location` is not in the tree.
    pub fn suggest_in(
        &self,
        reader: &Reader,
        org: &OrgTree,
        location: &UnitId,
        category: Category,
        text: &str,
    ) -> Result<Suggestion, RoutingError> {
        let reading = reader.read(category, text);
        suggest_read(
            &reader.catalogue,
            org,
            location,
            category,
            &reading,
            Some((&self.model, BLEND)),
        )
    }

    /// The suggestion for a request already read, with a model and its blend, or by the
    /// catalogue alone (`None`).
    ///
    /// # Errors
    /// [`RoutingError::UnknownLocation`] when `location` is not in the tree.
    pub fn suggest_reading(
        &self,
        org: &OrgTree,
        location: &UnitId,
        category: Category,
        reading: &Reading,
        similar: Option<(&Model<Target>, Blend)>,
    ) -> Result<Suggestion, RoutingError> {
        suggest_read(
            &self.base.catalogue,
            org,
            location,
            category,
            reading,
            similar,
        )
    }
}

/// The suggestion of `catalogue` for a request already read.
fn suggest_read(
    catalogue: &Catalogue,
    org: &OrgTree,
    location: &UnitId,
    category: Category,
    reading: &Reading,
    similar: Option<(&Model<Target>, Blend)>,
) -> Result<Suggestion, RoutingError> {
    let (words, places) = (&reading.words, &reading.places);
    match similar {
        None => suggest_with_places(catalogue, org, location, category, words, places),
        Some((model, blend)) => suggest_with_model(
            catalogue,
            org,
            location,
            category,
            words,
            places,
            Similar {
                model,
                features: &reading.features,
                blend,
            },
        ),
    }
}

/// The compiled-in catalogue (`fixtures/dispatch-catalogue.json`), as data.
///
/// # Errors
/// When the fixture does not parse.
pub fn base_catalogue_spec() -> anyhow::Result<CatalogueSpec> {
    serde_json::from_str(CATALOGUE_JSON)
        .context("failed to parse `fixtures/dispatch-catalogue.json`")
}

fn base_catalogue() -> anyhow::Result<Catalogue> {
    Catalogue::new(base_catalogue_spec()?).context("`fixtures/dispatch-catalogue.json` is invalid")
}

#[cfg(test)]
mod tests {
    use domain::decide::may_transfer_to;

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

    fn city_admin() -> domain::roles::Actor {
        domain::roles::Actor {
            username: "admin".into(),
            unit_id: UnitId::new("city"),
            roles: vec![domain::roles::Role::Admin],
            oversees: Vec::new(),
        }
    }

    /// The compiled-in catalogue with `word` added to the keywords of matter `code`.
    fn with_keyword(code: &str, word: &str) -> CatalogueSpec {
        fn add(matters: &mut [domain::routing::MatterSpec], code: &str, word: &str) {
            for matter in matters {
                if matter.code == code {
                    matter.keywords.push(word.to_owned());
                }
                add(&mut matter.children, code, word);
            }
        }
        let mut spec = base_catalogue_spec().expect("fixture");
        add(&mut spec.matters, code, word);
        spec
    }

    #[test]
    fn the_compiled_in_catalogue_edited_passes_the_rules_against_the_demo_city() {
        // What the administration page submits: the catalogue in force with one keyword more.
        let rules = crate::rules_log::base().expect("base");
        let org = load_org().expect("org");
        let command = domain::rules::RulesCommand::SetCatalogue {
            catalogue: with_keyword("030101", "水龙头不出水"),
        };
        let events = domain::rules::decide(&rules, &city_admin(), &org, &command)
            .expect("the edited fixture is accepted");
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn a_new_catalogue_s_words_are_recognised_by_the_reader_built_for_it() {
        let dispatch = dispatch().expect("fixture");
        let text = "邻居在楼顶养鸽，羽毛满天飞";
        let new_word = "楼顶养鸽";
        assert!(!dispatch.words(text).iter().any(|w| w == new_word));
        let spec = with_keyword("030101", new_word);
        let catalogue = Arc::new(Catalogue::new(spec).expect("valid"));
        let kb = knowledge_base::fixtures::segmenter().expect("dictionary");
        let started = Instant::now();
        let reader = Reader::build(&kb, Arc::clone(&catalogue)).expect("reader");
        // The measure the report quotes (a debug build is slower than a release one).
        eprintln!("segmenter rebuilt in {} ms", started.elapsed().as_millis());
        assert!(
            reader.words(text).iter().any(|w| w == new_word),
            "{:?}",
            reader.words(text)
        );
        // Kept: asked again for the same catalogue, the reader is the one built.
        let first = dispatch.reader_for(&catalogue).expect("reader");
        let again = dispatch.reader_for(&catalogue).expect("reader");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(first.words(text).iter().any(|w| w == new_word));
        // A catalogue with the same words (a name changed) shares the segmenter's words.
        let mut renamed = with_keyword("030101", new_word);
        renamed.matters[0].name.push_str("事项");
        let renamed = Arc::new(Catalogue::new(renamed).expect("valid"));
        let shared = dispatch.reader_for(&renamed).expect("reader");
        assert!(Arc::ptr_eq(&shared.words, &first.words));
        assert!(Arc::ptr_eq(shared.catalogue(), &renamed));
        // The compiled-in catalogue again: its words, without the new one.
        let base = Arc::new(base_catalogue().expect("fixture"));
        let back = dispatch.reader_for(&base).expect("reader");
        assert!(Arc::ptr_eq(&back.words, &dispatch.base.words));
        assert!(!back.words(text).iter().any(|w| w == new_word));
    }

    /// One `LABELLED` file, read once for all the tests that measure.
    struct Batch {
        name: &'static str,
        requests: Vec<Labelled>,
        readings: Vec<Reading>,
        examples: Vec<Example<Target>>,
    }

    static BATCHES: LazyLock<Vec<Batch>> = LazyLock::new(|| {
        let dispatch = dispatch().expect("fixture");
        let org = load_org().expect("org");
        LABELLED
            .iter()
            .map(|(name, jsonl)| {
                let requests = parse_labelled(jsonl).expect("labelled requests");
                let readings = requests
                    .iter()
                    .map(|r| dispatch.read(r.category, &r.text()))
                    .collect();
                let examples = dispatch.examples(&org, &requests).expect("known units");
                Batch {
                    name,
                    requests,
                    readings,
                    examples,
                }
            })
            .collect()
    });

    /// The batches of the leave-one-batch-out estimate: every file but the eighth batch,
    /// which was kept for one last measurement of the chosen method.
    const N_CROSS: usize = 8;

    /// The misses of `batch`, by the catalogue alone or with a model and its blend.
    fn misses(batch: &Batch, similar: Option<(&Model<Target>, Blend)>) -> Vec<String> {
        let dispatch = dispatch().expect("fixture");
        let org = load_org().expect("org");
        let mut misses = Vec::new();
        for (r, reading) in batch.requests.iter().zip(&batch.readings) {
            let s = dispatch
                .suggest_reading(
                    &org,
                    &UnitId::new(r.location_unit_id.as_str()),
                    r.category,
                    reading,
                    similar,
                )
                .expect("known location");
            let first = s.units.first().map(|u| u.unit_id.as_str()).unwrap_or("-");
            if first != r.unit {
                misses.push(format!(
                    "{}｜{first} ≠ {}｜{}｜{:?}",
                    r.title, r.unit, s.reason, reading.words
                ));
            }
        }
        misses
    }

    /// The share of `batch` whose first suggested unit is the labelled one, printed with
    /// the misses (`cargo test -p minqing --lib dispatch -- --nocapture`).
    fn hit_rate(
        name: &str,
        batch: &Batch,
        similar: Option<(&Model<Target>, Blend)>,
    ) -> (f64, Vec<String>) {
        let misses = misses(batch, similar);
        let n = batch.requests.len();
        let hits = n - misses.len();
        let rate = hits as f64 / n as f64;
        // Printed on purpose: the hit rate is reported.
        #[allow(clippy::print_stdout)]
        {
            println!(
                "routing hit rate ({name}, {}): {hits}/{n} = {:.1}%",
                batch.name,
                rate * 100.0
            );
            for miss in &misses {
                println!("  miss: {miss}");
            }
        }
        (rate, misses)
    }

    /// The model learned from every batch of `batches` but `held_out`.
    fn model_without(batches: &[Batch], held_out: usize, settings: Settings) -> Model<Target> {
        let examples: Vec<Example<Target>> = batches
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != held_out)
            .flat_map(|(_, b)| b.examples.iter().cloned())
            .collect();
        Model::train(&examples, settings)
    }

    /// Leave-one-batch-out: each of the first `N_CROSS` batches predicted by the model
    /// learned from the other seven; the hits per batch.
    fn leave_one_batch_out(settings: Settings, blend: Option<Blend>) -> Vec<usize> {
        let batches = &BATCHES[..N_CROSS];
        (0..batches.len())
            .map(|i| {
                let model = model_without(batches, i, settings);
                let similar = blend.map(|b| (&model, b));
                batches[i].requests.len() - misses(&batches[i], similar).len()
            })
            .collect()
    }

    fn percent(hits: usize, n: usize) -> String {
        format!("{hits}/{n} = {:.1}%", hits as f64 * 100.0 / n as f64)
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

    /// The labelled requests: the first suggested unit must be the right one for 90% of them
    /// (the model learned from them too: a training figure).
    #[test]
    fn the_first_suggested_unit_is_right_for_nine_in_ten_labelled_requests() {
        let batch = &BATCHES[0];
        assert!(batch.requests.len() >= 120, "{}", batch.requests.len());
        hit_rate("catalogue alone", batch, None);
        let dispatch = dispatch().expect("fixture");
        let (rate, misses) = hit_rate("service", batch, Some((dispatch.model(), BLEND)));
        assert!(rate >= 0.9, "hit rate {rate:.3}: {misses:#?}");
    }

    /// The held-out batches (`fixtures/routing-heldout*.jsonl`), each written before the
    /// catalogue was fixed on it and measured first as unseen requests (the figures are in
    /// `docs/decisions/0008-routing-suggestions-that-generalise.md`); the rounds of fixes then
    /// tuned on batches 1 to 6, and the service's model learns from all of them. Together
    /// they must stay at nine in ten (a training figure; the unseen one is the next test's).
    #[test]
    fn the_first_suggested_unit_is_right_for_nine_in_ten_held_out_requests() {
        let dispatch = dispatch().expect("fixture");
        let (mut total, mut missed) = (0, Vec::new());
        for batch in &BATCHES[1..] {
            assert!(
                batch.requests.len() >= 100,
                "{}: {}",
                batch.name,
                batch.requests.len()
            );
            let (_, misses) = hit_rate("service", batch, Some((dispatch.model(), BLEND)));
            total += batch.requests.len();
            missed.extend(misses);
        }
        let rate = (total - missed.len()) as f64 / total as f64;
        #[allow(clippy::print_stdout)]
        {
            println!(
                "routing hit rate (held-out, all batches): {}",
                percent(total - missed.len(), total)
            );
        }
        assert!(rate >= 0.9, "hit rate {rate:.3}: {missed:#?}");
    }

    /// The honest estimate (decision 0010): leave one batch out, learn from the other seven,
    /// predict it. Prints the catalogue alone (tuned on batches 1 to 6 and the labelled set,
    /// so optimistic) and the service's blend per batch, and a few other settings it was
    /// chosen among; the blend must not fall below the figure it reached, less a margin.
    #[test]
    fn leave_one_batch_out_the_blend_stays_where_it_was_measured() {
        let batches = &BATCHES[..N_CROSS];
        let sizes: Vec<usize> = batches.iter().map(|b| b.requests.len()).collect();
        let n: usize = sizes.iter().sum();
        let catalogue = leave_one_batch_out(SETTINGS, None);
        let service = leave_one_batch_out(SETTINGS, Some(BLEND));
        #[allow(clippy::print_stdout)]
        {
            println!("leave-one-batch-out, first unit: batch | catalogue alone | service");
            for (i, b) in batches.iter().enumerate() {
                println!(
                    "  {} | {} | {}",
                    b.name,
                    percent(catalogue[i], sizes[i]),
                    percent(service[i], sizes[i])
                );
            }
            let total = |hits: &[usize]| hits.iter().sum::<usize>();
            println!(
                "  overall | {} | {}",
                percent(total(&catalogue), n),
                percent(total(&service), n)
            );
            let grid = [
                (0.3, 0.0, 0.0),
                (0.3, 1.0, 1.0),
                (0.3, 2.0, 2.0),
                (0.3, 3.0, 0.0),
                (0.3, 3.0, 2.0),
                (0.3, 4.0, 0.0),
                (0.3, 4.0, 2.0),
                (0.3, 6.0, 0.0),
                (0.3, 6.0, 3.0),
                (0.3, 8.0, 0.0),
                (0.3, 16.0, 0.0),
                (0.1, 4.0, 0.0),
                (1.0, 4.0, 0.0),
                (0.1, 6.0, 0.0),
                (1.0, 6.0, 0.0),
            ];
            for (alpha, weight, bonus) in grid {
                let hits = leave_one_batch_out(
                    Settings { alpha },
                    Some(Blend {
                        catalogue_weight: weight,
                        lead_bonus: bonus,
                    }),
                );
                println!(
                    "  alpha {alpha}, catalogue weight {weight}, lead bonus {bonus}: {} {hits:?}",
                    percent(total(&hits), n)
                );
            }
        }
        let rate = service.iter().sum::<usize>() as f64 / n as f64;
        // Reached: 1145/1204 = 95.1%.
        assert!(rate >= 0.94, "leave-one-batch-out {rate:.3}");
    }

    /// The cleanest unseen figure (decision 0010): the eighth batch, written before anything
    /// ran on it and measured once with the method chosen by leave-one-batch-out, the model
    /// learned from the eight other files (the catalogue never saw it either).
    #[test]
    fn the_eighth_batch_measured_once_with_the_chosen_blend() {
        let batch = &BATCHES[N_CROSS];
        assert!(batch.requests.len() >= 100, "{}", batch.requests.len());
        let model = model_without(&BATCHES[..=N_CROSS], N_CROSS, SETTINGS);
        let n = batch.requests.len();
        let hits = |similar| n - misses(batch, similar).len();
        let catalogue = hits(None);
        let alone = hits(Some((
            &model,
            Blend {
                catalogue_weight: 0.0,
                lead_bonus: 0.0,
            },
        )));
        let (rate, misses) = hit_rate("service, model without it", batch, Some((&model, BLEND)));
        #[allow(clippy::print_stdout)]
        {
            println!(
                "held-out 8: catalogue alone {}, model alone {}, service {}",
                percent(catalogue, n),
                percent(alone, n),
                percent(n - misses.len(), n)
            );
        }
        // Measured once: 103/108 = 95.4%.
        assert!(rate >= 0.93, "held-out 8: {rate:.3}");
    }

    /// What the model costs: learning it at start-up and answering one request (printed;
    /// bounded loosely so a slip to seconds fails even in a debug build).
    #[test]
    fn the_model_learns_at_start_up_and_answers_fast() {
        let dispatch = dispatch().expect("fixture");
        let org = load_org().expect("org");
        let started = std::time::Instant::now();
        let loaded = Dispatch::load().expect("fixture");
        let load = started.elapsed();
        assert_eq!(
            loaded.model().labels().len(),
            dispatch.model().labels().len()
        );
        let started = std::time::Instant::now();
        let reread: Vec<Example<Target>> = BATCHES[..2]
            .iter()
            .flat_map(|b| dispatch.examples(&org, &b.requests).expect("known"))
            .collect();
        let per_read = started.elapsed() / reread.len() as u32;
        let examples: Vec<Example<Target>> = BATCHES
            .iter()
            .flat_map(|b| b.examples.iter().cloned())
            .collect();
        let started = std::time::Instant::now();
        let model = Model::train(&examples, SETTINGS);
        let learning = started.elapsed();
        let batch = &BATCHES[1];
        let started = std::time::Instant::now();
        for (r, reading) in batch.requests.iter().zip(&batch.readings) {
            let location = UnitId::new(r.location_unit_id.as_str());
            let s = dispatch.suggest_reading(
                &org,
                &location,
                r.category,
                reading,
                Some((&model, BLEND)),
            );
            assert!(s.is_ok());
        }
        let per_suggestion = started.elapsed() / batch.requests.len() as u32;
        let started = std::time::Instant::now();
        for (r, reading) in batch.requests.iter().zip(&batch.readings) {
            let location = UnitId::new(r.location_unit_id.as_str());
            let s = dispatch.suggest_reading(&org, &location, r.category, reading, None);
            assert!(s.is_ok());
        }
        let per_catalogue = started.elapsed() / batch.requests.len() as u32;
        #[allow(clippy::print_stdout)]
        {
            println!(
                "model cost: start-up (dictionary, catalogue, reading and learning) {load:?}, \
                 reading a labelled request {per_read:?}, learning {} examples {learning:?}, \
                 a suggestion with the model {per_suggestion:?} (catalogue alone {per_catalogue:?})",
                examples.len()
            );
        }
        assert!(load < std::time::Duration::from_secs(5), "{load:?}");
        assert!(learning < std::time::Duration::from_secs(2), "{learning:?}");
        assert!(
            per_suggestion < std::time::Duration::from_millis(20),
            "{per_suggestion:?}"
        );
    }
}
