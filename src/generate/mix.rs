//! The load mix (`fixtures/load-mix.json`) as typed, checked data, and the sampling it drives:
//! weighted choices, ranges, text templates and the arrival times of a year's calls.
//!
//! Every draw takes the generator's seeded [`Rng`], so one seed gives one load. Weight maps are
//! read in key order (a `BTreeMap`), never in hash order, for the same reason.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc, Weekday};
use domain::Satisfaction;
use domain::calendar::WorkingCalendar;
use domain::kinds::{Category, Channel, Kind, Urgency};
use domain::org::Level;
use rand::Rng as _;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

/// The compiled-in mix.
pub const MIX_JSON: &str = include_str!("../../fixtures/load-mix.json");

/// The generator's random source: ChaCha8, a named algorithm, so a seed gives the same load
/// on every machine and with every version of `rand`.
pub type Rng = rand_chacha::ChaCha8Rng;

/// The whole mix. Field meanings are documented in the file's own `comment`s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// When calls arrive.
    pub arrivals: ArrivalShape,
    /// Seasonal factors by month (January first), by theme.
    pub themes: BTreeMap<String, [f64; 12]>,
    /// 来源渠道 shares.
    pub channels: Weighted<Channel>,
    /// 紧急程度 shares.
    pub urgencies: Weighted<Urgency>,
    /// Who calls.
    pub callers: Callers,
    /// Where the citizen is.
    pub locations: Locations,
    /// 即办.
    pub answered_on_call: OnCall,
    /// 转办.
    pub transfers: Transfers,
    /// Receipt, notes, extensions, completion.
    pub handling: Handling,
    /// 回访, 重办, 申诉.
    pub call_backs: CallBacks,
    /// 批示, 督办.
    pub oversight: Oversight,
    /// Words the texts are built from.
    pub vocabulary: Vocabulary,
    /// What staff write.
    pub phrases: Phrases,
    /// What transferred cases are about.
    pub topics: Vec<Topic>,
}

/// When calls arrive: relative weights by month, day and hour of day (local time).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalShape {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// January first.
    pub month: [f64; 12],
    /// Monday first; Saturday and Sunday are used on weekends.
    pub weekday: [f64; 7],
    /// A public holiday (a run of days off that includes a weekday).
    pub holiday: f64,
    /// A weekend day worked under 调休.
    pub makeup_working_day: f64,
    /// Hours 0 to 23.
    pub hour: [f64; 24],
}

/// Who calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callers {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// Cases from the pool of frequent callers.
    pub repeat_share: Share,
    /// Numbers in that pool per thousand cases.
    pub pool_per_1000_cases: f64,
    /// 0931 landlines among numbers.
    pub landline_share: Share,
    /// Callers who give no name.
    pub anonymous_share: Share,
    /// Callers who ask for confidentiality (保密).
    pub confidential_share: Share,
    /// Cases saved as a draft first.
    pub draft_share: Share,
    /// Minutes from the draft to its submission.
    pub draft_minutes: Span,
    /// One surname per character.
    pub surnames: String,
    /// Given names.
    pub given_names: Vec<String>,
}

/// Where the citizen is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locations {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// District centre id → share.
    pub districts: BTreeMap<String, f64>,
    /// Level of the place inside the district.
    pub levels: Weighted<Level>,
}

/// 即办: answered on the call from the knowledge base.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCall {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// Share of all cases.
    pub share: Share,
    /// Their categories.
    pub categories: Weighted<Category>,
    /// Minutes from acceptance to the answer.
    pub answer_minutes: Span,
    /// Share called back.
    pub call_back_share: Share,
    /// Hours from the answer (or call-back) to archiving.
    pub archive_hours: Span,
}

/// 转办.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfers {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// Kinds of transferred cases (proposals aside).
    pub kinds: Weighted<Kind>,
    /// Proposals that are suggestion cases (建议件).
    pub suggestion_kind_share: Share,
    /// Minutes from acceptance to the city centre's transfer.
    pub dispatch_minutes: Span,
    /// Factor on those minutes at night (22:00 to 08:00).
    pub night_factor: f64,
    /// Joint cases (联办) among transferred ones.
    pub joint_share: Share,
    /// Cases first sent to a wrong unit and recalled (追回).
    pub recall_share: Share,
    /// Minutes from the wrong transfer to the recall.
    pub recall_minutes: Span,
    /// Receipts followed by a return request (退回申请).
    pub return_request_share: Share,
    /// Working hours from receipt to the return request.
    pub return_hours: Span,
    /// Return requests accepted.
    pub return_accepted_share: Share,
    /// Working minutes from a district centre's receipt to its transfer on.
    pub district_dispatch_minutes: Span,
    /// Street offices' cases passed on to a community.
    pub street_to_community: Share,
    /// Communities' cases passed on to a grid station.
    pub community_to_grid: Share,
    /// Working minutes from receipt to a transfer down a street or community.
    pub hop_minutes: Span,
}

/// Receipt, notes, extensions and completion.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handling {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// Fraction of the receive limit used by a timely receipt.
    pub receive_fraction: Span,
    /// Receipts after the receive limit.
    pub receive_late_share: Share,
    /// A late receipt takes up to this many receive limits.
    pub receive_late_factor: f64,
    /// Weights of 0, 1, 2, 3… handling notes.
    pub progress_notes: Vec<f64>,
    /// Holders asking for an extension.
    pub extension_share: Share,
    /// Working days asked for.
    pub extension_days: Span,
    /// Extensions approved.
    pub extension_approved_share: Share,
    /// Fraction of the time to the deadline used by a timely completion.
    pub complete_fraction: Span,
    /// Completions after the deadline.
    pub late_share: Share,
    /// Working hours past the deadline of a late completion.
    pub late_working_hours: Span,
    /// Completions far past the deadline.
    pub stuck_share: Share,
    /// Working days past the deadline of those.
    pub stuck_working_days: Span,
}

/// 回访, 重办, 申诉, 归档.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallBacks {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// Working hours from completion to the call-back.
    pub call_back_hours: Span,
    /// Satisfaction at the first call-back.
    pub satisfaction: Weighted<Satisfaction>,
    /// Satisfied callers who still say it is not solved.
    pub unresolved_share: Share,
    /// Unsatisfied or unresolved cases reopened (重办).
    pub reopen_share: Share,
    /// Satisfaction at a call-back after a reopen.
    pub second_satisfaction: Weighted<Satisfaction>,
    /// Unsatisfied ratings the unit appeals (申诉) when not reopened.
    pub appeal_share: Share,
    /// Appeals upheld.
    pub appeal_upheld_share: Share,
    /// Hours from the last call-back to archiving.
    pub archive_hours: Span,
}

/// 批示 and 督办.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oversight {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// Transferred cases annotated by a leader.
    pub annotation_share: Share,
    /// Factor for urgent and critical cases.
    pub annotation_urgent_factor: f64,
    /// Factor for complaints and reports.
    pub annotation_complaint_factor: f64,
    /// Hours from the transfer to the annotation.
    pub annotation_hours: Span,
    /// Transferred cases supervised by hand.
    pub supervision_share: Share,
    /// Late cases supervised by hand.
    pub late_supervision_share: Share,
    /// Hours from the deadline (or transfer) to the supervision.
    pub supervision_hours: Span,
}

/// Words the texts are built from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    /// Housing estates (no words of the dispatch catalogue's keywords, so they do not steer
    /// routing).
    pub estates: Vec<String>,
    /// Roads.
    pub roads: Vec<String>,
    /// Shops.
    pub shops: Vec<String>,
    /// Companies.
    pub companies: Vec<String>,
    /// Times of day.
    pub times: Vec<String>,
}

/// What staff write; one is drawn each time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phrases {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// 转办意见.
    pub transfer_notes: Vec<Template>,
    /// 转办意见 of joint cases.
    pub joint_notes: Vec<Template>,
    /// 追回 reasons.
    pub recall_reasons: Vec<Template>,
    /// 退回申请 reasons.
    pub return_reasons: Vec<Template>,
    /// Opinions accepting a return.
    pub return_accepted_notes: Vec<Template>,
    /// Opinions overruling a return.
    pub return_overruled_notes: Vec<Template>,
    /// 延期 reasons.
    pub extension_reasons: Vec<Template>,
    /// Opinions approving an extension.
    pub extension_approved_notes: Vec<Template>,
    /// Opinions refusing an extension.
    pub extension_refused_notes: Vec<Template>,
    /// 回访 notes: the first ones for satisfied callers, the last two for the others.
    pub call_back_notes: Vec<Template>,
    /// 重办 reasons.
    pub reopen_reasons: Vec<Template>,
    /// 申诉 reasons.
    pub appeal_reasons: Vec<Template>,
    /// Appeal decisions: upheld first, refused second.
    pub appeal_notes: Vec<Template>,
    /// 批示.
    pub annotations: Vec<Template>,
    /// 督办 opinions.
    pub supervisions: Vec<Template>,
    /// Before the knowledge-base answer read to the caller.
    pub answer_prefixes: Vec<Template>,
}

/// What a transferred case is about.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// Stable code.
    pub id: String,
    /// The seasonal theme (a key of `themes`, else flat).
    pub theme: String,
    /// Relative frequency.
    pub weight: f64,
    /// 诉求类别 shares.
    pub categories: Weighted<Category>,
    /// 标题 templates.
    pub titles: Vec<Template>,
    /// 诉求内容 templates.
    pub contents: Vec<Template>,
    /// 办结 replies.
    pub replies: Vec<Template>,
    /// 办理 notes.
    pub notes: Vec<Template>,
    /// City-level co-handlers of a joint case: bureau slugs, or `district`.
    pub joint_with: Vec<String>,
}

/// A probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(pub f64);

impl Share {
    /// A draw: true with this probability.
    pub fn draw(self, rng: &mut Rng) -> bool {
        rng.random::<f64>() < self.0
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&p) {
            Ok(Share(p))
        } else {
            Err(D::Error::custom(format!(
                "a share must lie in 0..=1, not {p}"
            )))
        }
    }
}

/// A range `[low, high]` of non-negative numbers, drawn uniformly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span(pub f64, pub f64);

impl Span {
    /// A uniform draw in the range.
    pub fn draw(self, rng: &mut Rng) -> f64 {
        self.0 + (self.1 - self.0) * rng.random::<f64>()
    }

    /// A uniform whole number in the range (both ends included).
    pub fn draw_u32(self, rng: &mut Rng) -> u32 {
        let (low, high) = (self.0.round() as u32, self.1.round() as u32);
        rng.random_range(low..=high.max(low))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let [low, high] = <[f64; 2]>::deserialize(d)?;
        if low.is_finite() && high.is_finite() && 0.0 <= low && low <= high {
            Ok(Span(low, high))
        } else {
            Err(D::Error::custom(format!(
                "a range must be [low, high] with 0 <= low <= high, not [{low}, {high}]"
            )))
        }
    }
}

/// Items drawn in proportion to their weights.
#[derive(Debug, Clone)]
pub struct Weighted<T> {
    items: Vec<T>,
    cumulative: Vec<f64>,
}

impl<T> Weighted<T> {
    /// Items with non-negative finite weights, at least one positive.
    ///
    /// # Errors
    /// A text saying what is wrong.
    pub fn new(pairs: impl IntoIterator<Item = (T, f64)>) -> Result<Self, String> {
        let mut items = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for (item, weight) in pairs {
            if !weight.is_finite() || weight < 0.0 {
                return Err(format!("weight {weight} is not a non-negative number"));
            }
            total += weight;
            items.push(item);
            cumulative.push(total);
        }
        if total <= 0.0 {
            return Err("weights must not all be zero".into());
        }
        Ok(Weighted { items, cumulative })
    }

    /// One item, drawn in proportion to its weight.
    pub fn pick(&self, rng: &mut Rng) -> &T {
        &self.items[self.pick_index(rng)]
    }

    /// The index of one item, drawn in proportion to its weight.
    pub fn pick_index(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.random::<f64>() * total;
        // Zero-weight items have an empty interval and are never chosen.
        self.cumulative
            .partition_point(|c| *c <= x)
            .min(self.items.len() - 1)
    }

    /// The items, in order.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// The share of item `i`.
    pub fn share(&self, i: usize) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let before = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (self.cumulative[i] - before) / total
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Weighted<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, f64>::deserialize(d)?;
        let mut pairs = Vec::with_capacity(map.len());
        for (key, weight) in map {
            let item = serde_json::from_value(serde_json::Value::String(key.clone()))
                .map_err(|_| D::Error::custom(format!("unknown value `{key}`")))?;
            pairs.push((item, weight));
        }
        Weighted::new(pairs).map_err(D::Error::custom)
    }
}

/// A slot of a text template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The place: district, street and community names.
    Place,
    /// The district's name.
    District,
    /// The street's (or town's) name.
    Street,
    /// The community's (or village's) name.
    Community,
    /// A housing estate.
    Estate,
    /// A building and entrance.
    Building,
    /// A road.
    Road,
    /// A shop.
    Shop,
    /// A company.
    Company,
    /// A time of day.
    Time,
    /// A small number, 2 to 9.
    N,
    /// A room temperature, 8 to 16.
    Temp,
    /// Days, 2 to 15 (or the working days of an extension).
    Days,
    /// A floor, 7 to 30.
    Floor,
    /// The unit concerned.
    Unit,
}

impl Slot {
    fn parse(name: &str) -> Option<Slot> {
        Some(match name {
            "place" => Slot::Place,
            "district" => Slot::District,
            "street" => Slot::Street,
            "community" => Slot::Community,
            "estate" => Slot::Estate,
            "building" => Slot::Building,
            "road" => Slot::Road,
            "shop" => Slot::Shop,
            "company" => Slot::Company,
            "time" => Slot::Time,
            "n" => Slot::N,
            "temp" => Slot::Temp,
            "days" => Slot::Days,
            "floor" => Slot::Floor,
            "unit" => Slot::Unit,
            _ => return None,
        })
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text as written.
    Text(String),
    /// A slot filled when rendering.
    Slot(Slot),
}

/// A text with `{slot}`s, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

impl Template {
    /// Parses `text`.
    ///
    /// # Errors
    /// An unknown or unclosed slot.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed slot in `{text}`"))?;
            let name = &after[..close];
            let slot = Slot::parse(name)
                .ok_or_else(|| format!("unknown slot `{{{name}}}` in `{text}`"))?;
            pieces.push(Piece::Slot(slot));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template(pieces))
    }

    /// Fills the slots with `fill` and appends the text to `out`.
    pub fn render_into(&self, out: &mut String, mut fill: impl FnMut(Slot, &mut String)) {
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Slot(slot) => fill(*slot, out),
            }
        }
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Template::parse(&text).map_err(D::Error::custom)
    }
}

/// Why a mix was refused.
#[derive(Debug, thiserror::Error)]
pub enum MixError {
    /// Not JSON of the mix's shape (the message names the line and column).
    #[error("the load mix does not parse")]
    Json(#[from] serde_json::Error),
    /// A value out of bounds.
    #[error("the load mix is invalid: `{field}` {problem}")]
    Invalid {
        /// Where.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> MixError {
    MixError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

fn check_weights(field: &str, weights: &[f64]) -> Result<(), MixError> {
    if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        return Err(invalid(
            field,
            "has a weight that is not a non-negative number",
        ));
    }
    if weights.iter().sum::<f64>() <= 0.0 {
        return Err(invalid(field, "has only zero weights"));
    }
    Ok(())
}

fn check_list<T>(field: &str, list: &[T]) -> Result<(), MixError> {
    if list.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    Ok(())
}

impl Mix {
    /// Parses and checks a mix (the checks that need the org tree come with the generator's
    /// world).
    ///
    /// # Errors
    /// [`MixError`].
    pub fn parse(text: &str) -> Result<Mix, MixError> {
        let mix: Mix = serde_json::from_str(text)?;
        mix.validate()?;
        Ok(mix)
    }

    /// The compiled-in mix.
    ///
    /// # Errors
    /// [`MixError`] when the fixture is broken.
    pub fn fixture() -> Result<Mix, MixError> {
        Mix::parse(MIX_JSON)
    }

    fn validate(&self) -> Result<(), MixError> {
        let a = &self.arrivals;
        check_weights("arrivals.month", &a.month)?;
        check_weights("arrivals.weekday", &a.weekday)?;
        check_weights("arrivals.hour", &a.hour)?;
        check_weights(
            "arrivals.holiday, arrivals.makeup_working_day",
            &[a.holiday, a.makeup_working_day, 1.0],
        )?;
        for (theme, factors) in &self.themes {
            check_weights(&format!("themes.{theme}"), factors)?;
        }
        let c = &self.callers;
        if c.surnames.is_empty() {
            return Err(invalid("callers.surnames", "is empty"));
        }
        check_list("callers.given_names", &c.given_names)?;
        if !(c.pool_per_1000_cases.is_finite() && c.pool_per_1000_cases > 0.0) {
            return Err(invalid("callers.pool_per_1000_cases", "must be positive"));
        }
        check_weights(
            "locations.districts",
            &self
                .locations
                .districts
                .values()
                .copied()
                .collect::<Vec<_>>(),
        )?;
        check_weights("handling.progress_notes", &self.handling.progress_notes)?;
        for (field, factor) in [
            ("transfers.night_factor", self.transfers.night_factor),
            (
                "handling.receive_late_factor",
                self.handling.receive_late_factor,
            ),
            (
                "oversight.annotation_urgent_factor",
                self.oversight.annotation_urgent_factor,
            ),
            (
                "oversight.annotation_complaint_factor",
                self.oversight.annotation_complaint_factor,
            ),
        ] {
            if !(factor.is_finite() && factor >= 1.0) {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        if self.handling.extension_days.0 < 1.0 {
            return Err(invalid(
                "handling.extension_days",
                "must start at 1 or more",
            ));
        }
        let v = &self.vocabulary;
        check_list("vocabulary.estates", &v.estates)?;
        check_list("vocabulary.roads", &v.roads)?;
        check_list("vocabulary.shops", &v.shops)?;
        check_list("vocabulary.companies", &v.companies)?;
        check_list("vocabulary.times", &v.times)?;
        let p = &self.phrases;
        for (field, list) in [
            ("transfer_notes", &p.transfer_notes),
            ("joint_notes", &p.joint_notes),
            ("recall_reasons", &p.recall_reasons),
            ("return_reasons", &p.return_reasons),
            ("return_accepted_notes", &p.return_accepted_notes),
            ("return_overruled_notes", &p.return_overruled_notes),
            ("extension_reasons", &p.extension_reasons),
            ("extension_approved_notes", &p.extension_approved_notes),
            ("extension_refused_notes", &p.extension_refused_notes),
            ("reopen_reasons", &p.reopen_reasons),
            ("appeal_reasons", &p.appeal_reasons),
            ("annotations", &p.annotations),
            ("supervisions", &p.supervisions),
            ("answer_prefixes", &p.answer_prefixes),
        ] {
            check_list(&format!("phrases.{field}"), list)?;
        }
        if p.call_back_notes.len() < 3 {
            return Err(invalid(
                "phrases.call_back_notes",
                "needs at least one satisfied note and two others",
            ));
        }
        if p.appeal_notes.len() != 2 {
            return Err(invalid("phrases.appeal_notes", "must be [upheld, refused]"));
        }
        check_list("topics", &self.topics)?;
        check_weights(
            "topics[].weight",
            &self.topics.iter().map(|t| t.weight).collect::<Vec<_>>(),
        )?;
        for topic in &self.topics {
            let field = |name: &str| format!("topics[{}].{name}", topic.id);
            check_list(&field("titles"), &topic.titles)?;
            check_list(&field("contents"), &topic.contents)?;
            check_list(&field("replies"), &topic.replies)?;
            check_list(&field("notes"), &topic.notes)?;
            check_list(&field("joint_with"), &topic.joint_with)?;
        }
        Ok(())
    }

    /// The seasonal factor of `theme` in `month` (1 to 12); 1 for a theme without factors.
    pub fn season(&self, theme: &str, month: u32) -> f64 {
        self.themes
            .get(theme)
            .map_or(1.0, |factors| factors[(month as usize + 11) % 12])
    }
}

/// China Standard Time, the hotline's local time.
fn local(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    t.with_timezone(&crate::app::shanghai()).naive_local()
}

/// Midnight, 1 January of `year`, Asia/Shanghai.
pub fn year_start(year: i32) -> Option<DateTime<Utc>> {
    let midnight = NaiveDate::from_ymd_opt(year, 1, 1)?.and_hms_opt(0, 0, 0)?;
    Some(midnight.and_utc() - Duration::hours(8))
}

/// What kind of day a date is, for the arrival weights.
fn day_weight(shape: &ArrivalShape, calendar: &WorkingCalendar, date: NaiveDate) -> f64 {
    let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
    let day = date.weekday().num_days_from_monday() as usize;
    if calendar.is_working_day(date) {
        if weekend {
            shape.makeup_working_day
        } else {
            shape.weekday[day]
        }
    } else if in_holiday(calendar, date) {
        shape.holiday
    } else {
        shape.weekday[day]
    }
}

/// Whether a day off belongs to a run of days off that includes a weekday (a public holiday,
/// its weekend included), as opposed to a plain weekend.
fn in_holiday(calendar: &WorkingCalendar, date: NaiveDate) -> bool {
    let is_weekday_off = |d: NaiveDate| {
        !calendar.is_working_day(d) && !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    };
    let off = |d: NaiveDate| !calendar.is_working_day(d);
    let mut d = date;
    while off(d) {
        if is_weekday_off(d) {
            return true;
        }
        match d.pred_opt() {
            Some(p) => d = p,
            None => break,
        }
    }
    let mut d = date;
    while off(d) {
        if is_weekday_off(d) {
            return true;
        }
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    false
}

/// The arrival times of `n` calls in `[start, end)`, in increasing order, with the density of
/// the arrival shape (month × day × hour). Drawn one at a time as sorted uniform order
/// statistics, so memory stays at one entry per hour of the period whatever `n` is.
#[derive(Debug)]
pub struct Arrivals {
    /// Start of each slot (an hour, or less at the end of the period).
    starts: Vec<DateTime<Utc>>,
    /// Length of each slot in nanoseconds.
    lengths: Vec<i64>,
    /// Cumulative weight at the end of each slot.
    cumulative: Vec<f64>,
    n: u64,
    drawn: u64,
    /// The last order statistic drawn, in 0..1.
    u: f64,
    slot: usize,
}

impl Arrivals {
    /// The arrivals of `n` calls between `start` and `end`.
    pub fn new(
        shape: &ArrivalShape,
        calendar: &WorkingCalendar,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        n: u64,
    ) -> Arrivals {
        let mut starts = Vec::new();
        let mut lengths = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        let mut t = start;
        while t < end {
            let l = local(t);
            let next_hour = t - Duration::nanoseconds(
                i64::from(l.minute()) * 60_000_000_000
                    + i64::from(l.second()) * 1_000_000_000
                    + i64::from(l.nanosecond()),
            ) + Duration::hours(1);
            let slot_end = next_hour.min(end);
            let length = (slot_end - t).num_nanoseconds().unwrap_or(0);
            let weight = shape.month[l.month0() as usize]
                * day_weight(shape, calendar, l.date())
                * shape.hour[l.hour() as usize]
                * length as f64
                / 3.6e12;
            total += weight;
            starts.push(t);
            lengths.push(length);
            cumulative.push(total);
            t = slot_end;
        }
        Arrivals {
            starts,
            lengths,
            cumulative,
            n: if total > 0.0 { n } else { 0 },
            drawn: 0,
            u: 0.0,
            slot: 0,
        }
    }

    /// The next arrival, or `None` after the `n`th.
    pub fn next(&mut self, rng: &mut Rng) -> Option<DateTime<Utc>> {
        if self.drawn >= self.n {
            return None;
        }
        // The minimum of the k uniforms left in (u, 1): u + (1 - u)(1 - V^(1/k)).
        let k = (self.n - self.drawn) as f64;
        let v: f64 = 1.0 - rng.random::<f64>();
        self.u += (1.0 - self.u) * -(v.ln() / k).exp_m1();
        self.drawn += 1;
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = self.u * total;
        while self.slot + 1 < self.cumulative.len() && self.cumulative[self.slot] <= x {
            self.slot += 1;
        }
        let before = if self.slot == 0 {
            0.0
        } else {
            self.cumulative[self.slot - 1]
        };
        let weight = self.cumulative[self.slot] - before;
        let fraction = if weight > 0.0 {
            ((x - before) / weight).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let offset = (fraction * self.lengths[self.slot] as f64) as i64;
        Some(
            self.starts[self.slot] + Duration::nanoseconds(offset.min(self.lengths[self.slot] - 1)),
        )
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    fn calendar() -> WorkingCalendar {
        crate::server::load_calendar().expect("calendar")
    }

    #[test]
    fn the_fixture_mix_parses_and_checks() {
        let mix = Mix::fixture().expect("fixtures/load-mix.json is valid");
        assert!(mix.topics.len() >= 20);
        assert!((0.4..=0.6).contains(&mix.answered_on_call.share.0));
        assert_eq!(mix.season("供暖", 12), 3.4);
        assert_eq!(mix.season("no such theme", 5), 1.0);
    }

    #[test]
    fn a_mix_with_a_bad_share_or_slot_is_refused_with_its_place() {
        let bad_share = MIX_JSON.replace("\"recall_share\": 0.03", "\"recall_share\": 1.5");
        let err = Mix::parse(&bad_share).unwrap_err();
        let text = format!("{:#}", anyhow::Error::from(err));
        assert!(text.contains("0..=1"), "{text}");
        let bad_slot = MIX_JSON.replace("{estate}暖气不热室温低", "{estat}暖气不热室温低");
        let text = format!(
            "{:#}",
            anyhow::Error::from(Mix::parse(&bad_slot).unwrap_err())
        );
        assert!(text.contains("unknown slot `{estat}`"), "{text}");
        let bad_category = MIX_JSON.replace("\"praise\": 0.02}", "\"applause\": 0.02}");
        assert!(Mix::parse(&bad_category).is_err());
    }

    #[test]
    fn weighted_draws_follow_the_weights_and_repeat_with_the_seed() {
        let w = Weighted::new([("a", 1.0), ("b", 0.0), ("c", 3.0)]).unwrap();
        let draw = |seed| {
            let mut rng = Rng::seed_from_u64(seed);
            (0..40_000).map(|_| *w.pick(&mut rng)).collect::<Vec<_>>()
        };
        let first = draw(7);
        assert_eq!(first, draw(7));
        assert_ne!(first, draw(8));
        let share_c = first.iter().filter(|x| **x == "c").count() as f64 / 40_000.0;
        assert!((share_c - 0.75).abs() < 0.01, "{share_c}");
        assert!(!first.contains(&"b"));
        assert!((w.share(2) - 0.75).abs() < 1e-12);
        assert!(Weighted::new([("a", 0.0)]).is_err());
        assert!(Weighted::new([("a", -1.0), ("b", 2.0)]).is_err());
    }

    #[test]
    fn templates_fill_their_slots() {
        let t = Template::parse("{district}{estate}暖气不热，室温{temp}度").unwrap();
        let mut out = String::new();
        t.render_into(&mut out, |slot, out| {
            out.push_str(match slot {
                Slot::District => "城关区",
                Slot::Estate => "阳光花园",
                Slot::Temp => "12",
                _ => "?",
            })
        });
        assert_eq!(out, "城关区阳光花园暖气不热，室温12度");
        assert!(Template::parse("{nope}").is_err());
        assert!(Template::parse("open {district").is_err());
    }

    #[test]
    fn arrivals_are_sorted_in_the_year_and_follow_hours_weekdays_months_and_holidays() {
        let mix = Mix::fixture().unwrap();
        let calendar = calendar();
        let start = year_start(2025).unwrap();
        let end = year_start(2026).unwrap();
        let n = 200_000;
        let draw = |seed| {
            let mut rng = Rng::seed_from_u64(seed);
            let mut arrivals = Arrivals::new(&mix.arrivals, &calendar, start, end, n);
            std::iter::from_fn(|| arrivals.next(&mut rng)).collect::<Vec<_>>()
        };
        let times = draw(1);
        assert_eq!(times, draw(1));
        assert_eq!(times.len() as u64, n);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times[0] >= start && *times.last().unwrap() < end);
        let count = |f: &dyn Fn(chrono::NaiveDateTime) -> bool| {
            times.iter().filter(|t| f(local(**t))).count() as f64
        };
        // Ten in the morning against three at night.
        let ten = count(&|t| t.hour() == 10);
        let three = count(&|t| t.hour() == 3);
        assert!(ten > 20.0 * three, "{ten} {three}");
        // Mondays against Sundays (52 of each in 2025, a few of them holidays).
        let mondays = count(&|t| t.weekday() == Weekday::Mon);
        let sundays = count(&|t| t.weekday() == Weekday::Sun);
        assert!(mondays > 1.8 * sundays, "{mondays} {sundays}");
        // December against October, both 31 days (October has the National Day week).
        let december = count(&|t| t.month() == 12);
        let october = count(&|t| t.month() == 10);
        assert!(december > 1.2 * october, "{december} {october}");
        // 2025-10-02 (国庆, a Thursday off) against 2025-10-16 (a Thursday at work).
        let day = |d: u32| count(&|t| t.month() == 10 && t.day() == d);
        assert!(day(2) < 0.6 * day(16), "{} {}", day(2), day(16));
        // 2025-09-28 is a Sunday worked under 调休: busier than the Sunday before.
        assert!(
            day_weight(
                &mix.arrivals,
                &calendar,
                NaiveDate::from_ymd_opt(2025, 9, 28).unwrap()
            ) > day_weight(
                &mix.arrivals,
                &calendar,
                NaiveDate::from_ymd_opt(2025, 9, 21).unwrap()
            )
        );
    }

    #[test]
    fn arrivals_stop_at_the_end_of_a_cut_period() {
        let mix = Mix::fixture().unwrap();
        let calendar = calendar();
        let start = year_start(2025).unwrap();
        let end = start + Duration::minutes(90);
        let mut rng = Rng::seed_from_u64(3);
        let mut arrivals = Arrivals::new(&mix.arrivals, &calendar, start, end, 500);
        let times: Vec<_> = std::iter::from_fn(|| arrivals.next(&mut rng)).collect();
        assert_eq!(times.len(), 500);
        assert!(times.iter().all(|t| *t >= start && *t < end));
        let mut none = Arrivals::new(&mix.arrivals, &calendar, start, start, 10);
        assert_eq!(none.next(&mut rng), None);
    }
}
