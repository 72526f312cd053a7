//! The rules as data (规则版本): the working calendar (工作日历) with its office hours
//! (办公时间), the deadline policy (时限规则) and the dispatch catalogue (派单目录) routing
//! suggestions read, changed by the centre while the service runs.
//!
//! Each change is a [`RulesCommand`] decided by pure rules into one [`RulesEvent`] that
//! carries the whole new part (a year's notice, the office hours, the policy, the catalogue),
//! so replay needs
//! nothing but the base and the events. Folding the events with [`evolve`] gives [`Rules`]:
//! every [`Version`] ever in force, each effective from the moment its event was recorded.
//! The State Council publishes next year's holidays (国务院办公厅关于YYYY年部分节假日安排的通知)
//! each November; once an administrator records them, new deadlines in that year are no longer
//! provisional, without a rebuild.
//!
//! # Invariants
//!
//! - Version 1 is the base (the fixtures' calendar, policy and catalogue), in force from the beginning of
//!   time; each event adds the next version, whose `effective_from` is never before the one
//!   it follows. A recorded version never changes: deadlines already computed stay as their
//!   events recorded them, and [`Rules::in_force`] says which version a computation at a
//!   given instant used.
//! - Every version's calendar is a validated [`WorkingCalendar`], its policy passed
//!   [`DeadlinePolicy::validate`], and its catalogue passed [`catalogue::check`] (bounded in
//!   size; a recorded one also names only units the tree had when it was recorded).
//! - Only an administrator (系统管理员) of the root unit (市热线中心) changes the rules: they
//!   are city-wide, so a district administrator may not. Scope is checked before the rules of
//!   the change, and every refusal carries its Chinese text ([`RulesError::message`]).
//!
//! Pure: the caller passes the rules as they stand, the actor and the org tree; the moment a
//! change takes effect is the recording time it passes to [`evolve`].

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{
    CalendarData, CalendarError, DeadlinePolicy, OfficePeriod, WorkingCalendar, YearData,
};
use crate::org::OrgTree;
use crate::roles::{Actor, Role};
use crate::routing::{Catalogue, CatalogueSpec};
use crate::text::{self, Lines};

pub mod catalogue;

pub use catalogue::CatalogueRefusal;

/// The first year a notice may be recorded for.
pub const FIRST_YEAR: i32 = 2000;
/// The last year a notice may be recorded for.
pub const LAST_YEAR: i32 = 2100;
/// The longest text of a notice: its title, number, address, a festival's name (characters).
pub const MAX_TEXT: usize = 200;

/// The festivals every year's notice arranges (全国年节及纪念日放假办法). A span may name
/// several (`国庆节、中秋节`); a year that lists none of one is incomplete, and recording it
/// would make its deadlines look final while a festival is missing.
pub const FESTIVALS: [&str; 7] = [
    "元旦",
    "春节",
    "清明节",
    "劳动节",
    "端午节",
    "中秋节",
    "国庆节",
];

/// One version of the rules (规则版本): the calendar, the policy and the catalogue in force from
/// `effective_from` until the next version's.
#[derive(Debug, Clone)]
pub struct Version {
    /// 1 for the base, then one more per recorded change.
    version: u32,
    /// The instant the change was recorded; the base's is the beginning of time.
    effective_from: DateTime<Utc>,
    /// The calendar as data, for showing it and for the next change to start from.
    data: Arc<CalendarData>,
    /// The same data, validated.
    calendar: Arc<WorkingCalendar>,
    /// The deadline policy.
    policy: Arc<DeadlinePolicy>,
    /// The dispatch catalogue as data, for showing it and for the next change to start from.
    catalogue_spec: Arc<CatalogueSpec>,
    /// The same catalogue, checked and indexed.
    catalogue: Arc<Catalogue>,
}

impl Version {
    /// The version number: 1 for the base.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// When the version took effect (`DateTime::<Utc>::MIN_UTC` for the base).
    pub fn effective_from(&self) -> DateTime<Utc> {
        self.effective_from
    }

    /// The working calendar (工作日历), shared with the versions that did not change it.
    pub fn calendar(&self) -> &Arc<WorkingCalendar> {
        &self.calendar
    }

    /// The calendar's data: office hours and each year's notice.
    pub fn calendar_data(&self) -> &CalendarData {
        &self.data
    }

    /// The deadline policy (时限规则), shared with the versions that did not change it.
    pub fn policy(&self) -> &Arc<DeadlinePolicy> {
        &self.policy
    }

    /// The dispatch catalogue (派单目录), shared with the versions that did not change it (so
    /// `Arc::ptr_eq` says whether two versions have the same one).
    pub fn catalogue(&self) -> &Arc<Catalogue> {
        &self.catalogue
    }

    /// The catalogue's data, as `fixtures/dispatch-catalogue.json` writes it.
    pub fn catalogue_spec(&self) -> &Arc<CatalogueSpec> {
        &self.catalogue_spec
    }
}

/// Every version of the rules, oldest first: the base, then one per recorded change.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Version 1, in force from the beginning of time.
    base: Version,
    /// The recorded changes' versions, `effective_from` never decreasing.
    later: Vec<Version>,
}

impl Rules {
    /// The base (version 1, in force from the beginning of time): the calendar, the policy and
    /// the catalogue of the fixtures, checked as a change would be (the catalogue without the
    /// tree, which is not known yet).
    ///
    /// # Errors
    ///
    /// - [`RulesError::YearOutOfRange`], [`RulesError::BadText`],
    ///   [`RulesError::NoticePublishedOutsideRange`], [`RulesError::NoHolidays`],
    ///   [`RulesError::MissingFestival`], [`RulesError::MakeUpDayForUnknownHoliday`] for a
    ///   year that would be refused as a change;
    /// - [`RulesError::Calendar`] when [`WorkingCalendar::new`] refuses the data;
    /// - [`RulesError::Policy`] when [`DeadlinePolicy::validate`] refuses the policy;
    /// - [`RulesError::Catalogue`] when [`catalogue::check`] refuses the catalogue.
    pub fn new(
        calendar: CalendarData,
        policy: DeadlinePolicy,
        catalogue: CatalogueSpec,
    ) -> Result<Self, RulesError> {
        for year in &calendar.years {
            check_year(year)?;
        }
        let working = WorkingCalendar::new(calendar.clone()).map_err(RulesError::Calendar)?;
        policy.validate().map_err(RulesError::Policy)?;
        let checked = catalogue::check(&catalogue, None).map_err(RulesError::Catalogue)?;
        Ok(Rules {
            base: Version {
                version: 1,
                effective_from: DateTime::<Utc>::MIN_UTC,
                data: Arc::new(calendar),
                calendar: Arc::new(working),
                policy: Arc::new(policy),
                catalogue_spec: Arc::new(catalogue),
                catalogue: Arc::new(checked),
            },
            later: Vec::new(),
        })
    }

    /// The newest version: the one a computation made now uses.
    pub fn current(&self) -> &Version {
        self.later.last().unwrap_or(&self.base)
    }

    /// The version in force at `at`: the newest whose `effective_from` is not after it (the
    /// base before any change).
    pub fn in_force(&self, at: DateTime<Utc>) -> &Version {
        let n_before = self
            .later
            .partition_point(|version| version.effective_from <= at);
        match n_before.checked_sub(1) {
            Some(index) => &self.later[index],
            None => &self.base,
        }
    }

    /// Version `n`, if recorded.
    pub fn version(&self, n: u32) -> Option<&Version> {
        self.versions().find(|version| version.version == n)
    }

    /// Every version, oldest first.
    pub fn versions(&self) -> impl Iterator<Item = &Version> {
        std::iter::once(&self.base).chain(self.later.iter())
    }

    /// The base alone, as before any change was recorded (what a replay of the `rules`
    /// stream starts from).
    #[must_use]
    pub fn base_only(&self) -> Rules {
        Rules {
            base: self.base.clone(),
            later: Vec::new(),
        }
    }
}

/// A change an administrator asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RulesCommand {
    /// 录入或更正一年的节假日安排: add or replace one year's holidays (放假) and make-up
    /// working days (调休上班), with the notice they come from.
    SetYear {
        /// The year to set; `data.year` must say the same.
        year: i32,
        /// The whole year, as the notice arranges it.
        data: YearData,
    },
    /// 修改办公时间: the office periods of every working day.
    SetOfficeHours {
        /// The periods, sorted and disjoint.
        office_hours: Vec<OfficePeriod>,
    },
    /// 修改时限规则: the whole deadline policy.
    SetPolicy {
        /// The new policy.
        policy: DeadlinePolicy,
    },
    /// 修改派单目录: the whole dispatch catalogue.
    SetCatalogue {
        /// The new catalogue.
        catalogue: CatalogueSpec,
    },
}

/// What changed, as recorded (who and when go in the event's metadata; the recording time is
/// when the new version takes effect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RulesEvent {
    /// A year's notice was added, or replaced the year's earlier one.
    YearSet {
        /// The whole year.
        data: YearData,
    },
    /// The office hours were replaced.
    OfficeHoursSet {
        /// The new periods.
        office_hours: Vec<OfficePeriod>,
    },
    /// The deadline policy was replaced.
    PolicySet {
        /// The new policy.
        policy: DeadlinePolicy,
    },
    /// The dispatch catalogue was replaced.
    CatalogueSet {
        /// The new catalogue.
        catalogue: CatalogueSpec,
    },
}

/// Why a change of the rules was refused; nothing happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// Only administrators change the rules.
    #[error("only `admin` changes the calendar, the deadline policy and the dispatch catalogue")]
    NotAdmin,
    /// The rules are city-wide: an administrator below the root unit may not change them.
    #[error("only an administrator of the city hotline centre changes the rules")]
    NotCityAdmin,
    /// The year is not between [`FIRST_YEAR`] and [`LAST_YEAR`].
    #[error("year {year} is not between {FIRST_YEAR} and {LAST_YEAR}")]
    YearOutOfRange {
        /// The year given.
        year: i32,
    },
    /// The command names one year and its data another.
    #[error("the command sets {year} but its data is for {data_year}")]
    YearMismatch {
        /// The year the command sets.
        year: i32,
        /// The year of its data.
        data_year: i32,
    },
    /// A text of the notice is blank (title, number, a festival's name), too long, or not
    /// one clean line.
    #[error("`{field}` of the notice for {year} must be one line of 1 to {MAX_TEXT} characters")]
    BadText {
        /// The notice's year.
        year: i32,
        /// The field: `title`, `number`, `url`, `holidays.name` or `make_up_working_days.name`.
        field: &'static str,
    },
    /// The notice was published neither in its year nor in the year before.
    #[error("the notice for {year} is dated `{published}`")]
    NoticePublishedOutsideRange {
        /// The notice's year.
        year: i32,
        /// Its publication date.
        published: NaiveDate,
    },
    /// The year lists no day off at all.
    #[error("the notice for {year} lists no holiday")]
    NoHolidays {
        /// The notice's year.
        year: i32,
    },
    /// No span of the year names one of the [`FESTIVALS`].
    #[error("the notice for {year} has no holiday for `{festival}`")]
    MissingFestival {
        /// The notice's year.
        year: i32,
        /// The festival missing.
        festival: &'static str,
    },
    /// A make-up working day pays for a festival the notice does not list.
    #[error("make-up working day `{date}` of {year} is for `{name}`, not a holiday of that notice")]
    MakeUpDayForUnknownHoliday {
        /// The notice's year.
        year: i32,
        /// The make-up day.
        date: NaiveDate,
        /// The festival it names.
        name: String,
    },
    /// The calendar the change would give is not valid.
    #[error("invalid calendar: {0}")]
    Calendar(CalendarError),
    /// The policy is not valid.
    #[error("invalid deadline policy: {0}")]
    Policy(CalendarError),
    /// The catalogue is not valid; the refusal says which matter and field.
    #[error("invalid dispatch catalogue: {0}")]
    Catalogue(CatalogueRefusal),
    /// The change is what is in force already (a repeated submission): nothing to record.
    #[error("the change is what is in force already")]
    Unchanged,
}

impl RulesError {
    /// The Chinese text shown in place.
    pub fn message(&self) -> String {
        match self {
            Self::NotAdmin => "只有系统管理员可以修改工作日历、时限规则和派单目录".into(),
            Self::NotCityAdmin => {
                "工作日历、时限规则和派单目录全市统一，只有市热线中心的系统管理员可以修改".into()
            }
            Self::YearOutOfRange { year } => {
                format!("年份 {year} 不在 {FIRST_YEAR} 至 {LAST_YEAR} 之间")
            }
            Self::YearMismatch { year, data_year } => {
                format!("要修改的是 {year} 年，提交的却是 {data_year} 年的节假日安排")
            }
            Self::BadText { year, field } => match *field {
                "url" => format!("{year} 年通知的网址须为一行，不超过 {MAX_TEXT} 个字符"),
                field => format!(
                    "{year} 年的{}不能为空，须为一行，不超过 {MAX_TEXT} 个字符",
                    field_label(field)
                ),
            },
            Self::NoticePublishedOutsideRange { year, published } => format!(
                "{year} 年通知的发布日期 {published} 须在 {} 年或 {year} 年内",
                year - 1
            ),
            Self::NoHolidays { year } => format!("{year} 年的节假日安排没有列出任何放假日"),
            Self::MissingFestival { year, festival } => {
                format!("{year} 年的节假日安排缺少「{festival}」")
            }
            Self::MakeUpDayForUnknownHoliday { year, date, name } => format!(
                "{year} 年的调休上班日 {date} 注明为「{name}」调休，但该年没有名为「{name}」的节假日"
            ),
            Self::Calendar(err) | Self::Policy(err) => err.message(),
            Self::Catalogue(refusal) => refusal.message(),
            Self::Unchanged => "与现行规则相同，无需修改".into(),
        }
    }
}

fn field_label(field: &str) -> &str {
    match field {
        "title" => "通知标题",
        "number" => "通知文号",
        "holidays.name" => "节假日名称",
        "make_up_working_days.name" => "调休上班日所属节假日",
        other => other,
    }
}

/// Checks a text of a notice: one clean line of at most [`MAX_TEXT`] characters, not blank
/// unless `may_be_empty`.
fn check_text(
    value: &str,
    year: i32,
    field: &'static str,
    may_be_empty: bool,
) -> Result<(), RulesError> {
    let blank = value.trim().is_empty();
    let ok = (may_be_empty && value.is_empty())
        || (!blank
            && value.trim() == value
            && value.chars().count() <= MAX_TEXT
            && text::check(value, Lines::One).is_ok());
    if ok {
        Ok(())
    } else {
        Err(RulesError::BadText { year, field })
    }
}

/// The checks of one year that [`WorkingCalendar::new`] does not make: a plausible year, the
/// notice's texts and date, every festival present, make-up days tied to a listed holiday.
fn check_year(data: &YearData) -> Result<(), RulesError> {
    let year = data.year;
    if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
        return Err(RulesError::YearOutOfRange { year });
    }
    check_text(&data.notice.title, year, "title", false)?;
    check_text(&data.notice.number, year, "number", false)?;
    check_text(&data.notice.url, year, "url", true)?;
    let published = data.notice.published.year();
    if published != year && published + 1 != year {
        return Err(RulesError::NoticePublishedOutsideRange {
            year,
            published: data.notice.published,
        });
    }
    for span in &data.holidays {
        check_text(&span.name, year, "holidays.name", false)?;
    }
    for make_up in &data.make_up_working_days {
        check_text(&make_up.name, year, "make_up_working_days.name", false)?;
    }
    if data.holidays.is_empty() {
        return Err(RulesError::NoHolidays { year });
    }
    if let Some(festival) = FESTIVALS.into_iter().find(|festival| {
        !data
            .holidays
            .iter()
            .any(|span| span.name.contains(festival))
    }) {
        return Err(RulesError::MissingFestival { year, festival });
    }
    for make_up in &data.make_up_working_days {
        if !data.holidays.iter().any(|span| span.name == make_up.name) {
            return Err(RulesError::MakeUpDayForUnknownHoliday {
                year,
                date: make_up.date,
                name: make_up.name.clone(),
            });
        }
    }
    Ok(())
}

/// The parts of the version an event gives, after `current`: what decide validates is what
/// evolve records.
struct Next {
    data: Arc<CalendarData>,
    calendar: Arc<WorkingCalendar>,
    policy: Arc<DeadlinePolicy>,
    catalogue_spec: Arc<CatalogueSpec>,
    catalogue: Arc<Catalogue>,
}

fn next_parts(current: &Version, event: &RulesEvent) -> Result<Next, RulesError> {
    let with_calendar = |data: CalendarData| -> Result<Next, RulesError> {
        let calendar = WorkingCalendar::new(data.clone()).map_err(RulesError::Calendar)?;
        Ok(Next {
            data: Arc::new(data),
            calendar: Arc::new(calendar),
            policy: Arc::clone(&current.policy),
            catalogue_spec: Arc::clone(&current.catalogue_spec),
            catalogue: Arc::clone(&current.catalogue),
        })
    };
    match event {
        RulesEvent::YearSet { data: year } => {
            let mut data = current.calendar_data().clone();
            // A known year is replaced where it is; a new one goes before the first later
            // year, so sorted data stays sorted (the base need not be).
            match data.years.iter().position(|known| known.year == year.year) {
                Some(index) => data.years[index] = year.clone(),
                None => {
                    let index = data
                        .years
                        .iter()
                        .position(|known| known.year > year.year)
                        .unwrap_or(data.years.len());
                    data.years.insert(index, year.clone());
                }
            }
            with_calendar(data)
        }
        RulesEvent::OfficeHoursSet { office_hours } => {
            let mut data = current.calendar_data().clone();
            data.office_hours = office_hours.clone();
            with_calendar(data)
        }
        RulesEvent::PolicySet { policy } => {
            policy.validate().map_err(RulesError::Policy)?;
            Ok(Next {
                data: Arc::clone(&current.data),
                calendar: Arc::clone(&current.calendar),
                policy: Arc::new(policy.clone()),
                catalogue_spec: Arc::clone(&current.catalogue_spec),
                catalogue: Arc::clone(&current.catalogue),
            })
        }
        RulesEvent::CatalogueSet { catalogue: spec } => {
            // The tree was checked by `decide`; replay has only the catalogue's own rules.
            let checked = catalogue::check(spec, None).map_err(RulesError::Catalogue)?;
            Ok(Next {
                data: Arc::clone(&current.data),
                calendar: Arc::clone(&current.calendar),
                policy: Arc::clone(&current.policy),
                catalogue_spec: Arc::new(spec.clone()),
                catalogue: Arc::new(checked),
            })
        }
    }
}

/// Decides `command` by `actor` on `rules`, against the version in force now (the current
/// one: a change takes effect when it is recorded, never later).
///
/// # Errors
///
/// The [`RulesError`] of the first rule broken, scope first: [`RulesError::NotAdmin`],
/// [`RulesError::NotCityAdmin`]; then [`RulesError::Unchanged`] for a change identical to the
/// one in force; then for a year [`RulesError::YearOutOfRange`],
/// [`RulesError::YearMismatch`], [`RulesError::BadText`],
/// [`RulesError::NoticePublishedOutsideRange`], [`RulesError::NoHolidays`],
/// [`RulesError::MissingFestival`], [`RulesError::MakeUpDayForUnknownHoliday`]; for a year
/// or office hours [`RulesError::Calendar`] (what [`WorkingCalendar::new`] refuses in the
/// resulting calendar); for a policy [`RulesError::Policy`]; for a catalogue
/// [`RulesError::Catalogue`] (what [`catalogue::check`] refuses, its targets checked against
/// `org`).
pub fn decide(
    rules: &Rules,
    actor: &Actor,
    org: &OrgTree,
    command: &RulesCommand,
) -> Result<Vec<RulesEvent>, RulesError> {
    if !actor.has(Role::Admin) {
        return Err(RulesError::NotAdmin);
    }
    if actor.unit_id != org.root().id {
        return Err(RulesError::NotCityAdmin);
    }
    let current = rules.current();
    let event = match command {
        RulesCommand::SetYear { year, data } => {
            let known = current
                .calendar_data()
                .years
                .iter()
                .find(|known| known.year == *year);
            if known == Some(data) {
                return Err(RulesError::Unchanged);
            }
            if !(FIRST_YEAR..=LAST_YEAR).contains(year) {
                return Err(RulesError::YearOutOfRange { year: *year });
            }
            if data.year != *year {
                return Err(RulesError::YearMismatch {
                    year: *year,
                    data_year: data.year,
                });
            }
            check_year(data)?;
            RulesEvent::YearSet { data: data.clone() }
        }
        RulesCommand::SetOfficeHours { office_hours } => {
            if &current.calendar_data().office_hours == office_hours {
                return Err(RulesError::Unchanged);
            }
            RulesEvent::OfficeHoursSet {
                office_hours: office_hours.clone(),
            }
        }
        RulesCommand::SetPolicy { policy } => {
            if current.policy.as_ref() == policy {
                return Err(RulesError::Unchanged);
            }
            RulesEvent::PolicySet {
                policy: policy.clone(),
            }
        }
        RulesCommand::SetCatalogue { catalogue: spec } => {
            if current.catalogue_spec.as_ref() == spec {
                return Err(RulesError::Unchanged);
            }
            catalogue::check(spec, Some(org)).map_err(RulesError::Catalogue)?;
            RulesEvent::CatalogueSet {
                catalogue: spec.clone(),
            }
        }
    };
    next_parts(current, &event)?;
    Ok(vec![event])
}

/// Folds `event`, recorded at `recorded_at`, into `rules`: the next version, in force from
/// `recorded_at` (or from the previous version's start, should the clock have gone back, so
/// versions stay in order).
///
/// Events come from [`decide`], so they fit. One that does not (a log edited by hand, or a
/// rule tightened since it was recorded without an upcaster) adds no version and changes
/// nothing; the caller sees it as an unchanged [`Rules::current`] version number.
pub fn evolve(mut rules: Rules, event: &RulesEvent, recorded_at: DateTime<Utc>) -> Rules {
    let current = rules.current();
    let Ok(next) = next_parts(current, event) else {
        return rules;
    };
    let version = Version {
        version: current.version.saturating_add(1),
        effective_from: recorded_at.max(current.effective_from),
        data: next.data,
        calendar: next.calendar,
        policy: next.policy,
        catalogue_spec: next.catalogue_spec,
        catalogue: next.catalogue,
    };
    rules.later.push(version);
    rules
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::calendar::{ClockTime, HolidaySpan, MakeUpDay, Notice, WorkingTime};
    use crate::testing::{actor, local};

    const CALENDAR_JSON: &str = include_str!("../../fixtures/calendar.json");
    const POLICY_JSON: &str = include_str!("../../fixtures/deadline-policy.json");
    const CATALOGUE_JSON: &str = include_str!("../../fixtures/dispatch-catalogue.json");

    fn base_data() -> CalendarData {
        serde_json::from_str(CALENDAR_JSON).expect("calendar.json parses")
    }

    fn base_policy() -> DeadlinePolicy {
        serde_json::from_str(POLICY_JSON).expect("deadline-policy.json parses")
    }

    fn base_catalogue() -> CatalogueSpec {
        serde_json::from_str(CATALOGUE_JSON).expect("dispatch-catalogue.json parses")
    }

    fn base() -> Rules {
        Rules::new(base_data(), base_policy(), base_catalogue())
            .expect("the fixtures are a valid base")
    }

    fn org() -> OrgTree {
        crate::org::tests::small_city()
    }

    fn city_admin() -> Actor {
        actor("admin", "city", Role::Admin)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
    }

    fn span(name: &str, from: &str, to: Option<&str>) -> HolidaySpan {
        HolidaySpan {
            name: name.into(),
            from: date(from),
            to: to.map(date),
        }
    }

    fn make_up(day: &str, name: &str) -> MakeUpDay {
        MakeUpDay {
            date: date(day),
            name: name.into(),
        }
    }

    /// A 2027 arrangement invented for the tests (dates on the right weekdays, festivals on
    /// their 2027 dates); it is not the State Council's notice.
    fn year_2027() -> YearData {
        YearData {
            year: 2027,
            notice: Notice {
                title: "国务院办公厅关于2027年部分节假日安排的通知".into(),
                number: "测试用文号〔2026〕1号".into(),
                published: date("2026-11-20"),
                url: String::new(),
            },
            holidays: vec![
                span("元旦", "2027-01-01", Some("2027-01-03")),
                span("春节", "2027-02-06", Some("2027-02-13")),
                span("清明节", "2027-04-03", Some("2027-04-05")),
                span("劳动节", "2027-05-01", Some("2027-05-05")),
                span("端午节", "2027-06-09", None),
                span("中秋节", "2027-09-15", None),
                span("国庆节", "2027-10-01", Some("2027-10-07")),
            ],
            make_up_working_days: vec![
                make_up("2027-01-31", "春节"),
                make_up("2027-02-20", "春节"),
                make_up("2027-05-08", "劳动节"),
                make_up("2027-09-26", "国庆节"),
                make_up("2027-10-09", "国庆节"),
            ],
        }
    }

    fn set_year(data: YearData) -> RulesCommand {
        RulesCommand::SetYear {
            year: data.year,
            data,
        }
    }

    fn office_hours(periods: &[(&str, &str)]) -> Vec<OfficePeriod> {
        periods
            .iter()
            .map(|(start, end)| OfficePeriod {
                start: ClockTime::parse(start).expect("test clock time"),
                end: ClockTime::parse(end).expect("test clock time"),
            })
            .collect()
    }

    /// Decides `command` by the city administrator and records it at `at`.
    fn apply(rules: Rules, command: RulesCommand, at: DateTime<Utc>) -> Result<Rules, RulesError> {
        let events = decide(&rules, &city_admin(), &org(), &command)?;
        Ok(events
            .iter()
            .fold(rules, |rules, event| evolve(rules, event, at)))
    }

    fn refused(command: RulesCommand) -> RulesError {
        decide(&base(), &city_admin(), &org(), &command).expect_err("the change is refused")
    }

    fn refused_year(edit: impl FnOnce(&mut YearData)) -> RulesError {
        let mut data = year_2027();
        edit(&mut data);
        refused(set_year(data))
    }

    // The base and the versions.

    #[test]
    fn the_base_is_version_one_in_force_from_the_beginning_of_time() {
        let rules = base();
        assert_eq!(rules.current().version(), 1);
        assert_eq!(rules.current().effective_from(), DateTime::<Utc>::MIN_UTC);
        assert_eq!(rules.in_force(DateTime::<Utc>::MIN_UTC).version(), 1);
        assert_eq!(rules.in_force(local(2026, 12, 3, 10, 0)).version(), 1);
        assert_eq!(rules.versions().count(), 1);
        assert_eq!(rules.current().calendar_data(), &base_data());
        assert_eq!(rules.current().policy().as_ref(), &base_policy());
    }

    #[test]
    fn a_base_that_would_be_refused_as_a_change_is_refused() {
        let mut data = base_data();
        data.years[0].make_up_working_days[0].date = date("2024-02-05");
        assert_eq!(
            Rules::new(data, base_policy(), base_catalogue()).map(|_| ()),
            Err(RulesError::Calendar(CalendarError::MakeUpDayNotWeekend {
                date: date("2024-02-05")
            }))
        );
        let mut policy = base_policy();
        policy.redo = WorkingTime::Days(0);
        assert!(matches!(
            Rules::new(base_data(), policy, base_catalogue()),
            Err(RulesError::Policy(CalendarError::ZeroLimit { .. }))
        ));
        let mut data = base_data();
        data.years[0].holidays.retain(|span| span.name != "端午节");
        assert_eq!(
            Rules::new(data, base_policy(), base_catalogue()).map(|_| ()),
            Err(RulesError::MissingFestival {
                year: 2024,
                festival: "端午节"
            })
        );
    }

    #[test]
    fn adding_2027_ends_its_provisional_deadlines_in_the_new_version_only() {
        let recorded = local(2026, 11, 25, 9, 0);
        let rules = apply(base(), set_year(year_2027()), recorded).expect("2027 recorded");
        let old = rules.version(1).expect("the base");
        let new = rules.current();
        assert_eq!(new.version(), 2);
        assert_eq!(new.effective_from(), recorded);
        let spring = date("2027-02-08");
        assert!(old.calendar().is_provisional(spring));
        assert!(!new.calendar().is_provisional(spring));
        assert!(old.calendar().is_working_day(spring), "a guess: a Monday");
        assert!(!new.calendar().is_working_day(spring), "春节");
        assert_eq!(new.calendar().known_years(), vec![2024, 2025, 2026, 2027]);
        // A deadline across New Year: provisional by the old version, final by the new one.
        let from = local(2026, 12, 31, 15, 0);
        let before = old.calendar().add_working_days(from, 3);
        let after = new.calendar().add_working_days(from, 3);
        assert!(before.provisional);
        assert!(!after.provisional);
        assert_eq!(after.at, local(2027, 1, 6, 15, 0));
        // The policy did not change, so it is the same one, not a copy.
        assert!(Arc::ptr_eq(old.policy(), new.policy()));
    }

    #[test]
    fn in_force_answers_the_old_version_just_before_a_change_and_the_new_one_from_it() {
        let first = local(2026, 11, 25, 9, 0);
        let second = local(2026, 12, 1, 14, 30);
        let rules = apply(base(), set_year(year_2027()), first).expect("2027 recorded");
        let rules = apply(
            rules,
            RulesCommand::SetOfficeHours {
                office_hours: office_hours(&[("09:00", "12:00"), ("13:30", "17:30")]),
            },
            second,
        )
        .expect("office hours recorded");
        let in_force = |at: DateTime<Utc>| rules.in_force(at).version();
        assert_eq!(in_force(first - Duration::nanoseconds(1)), 1);
        assert_eq!(in_force(first), 2);
        assert_eq!(in_force(first + Duration::days(1)), 2);
        assert_eq!(in_force(second - Duration::nanoseconds(1)), 2);
        assert_eq!(in_force(second), 3);
        assert_eq!(in_force(DateTime::<Utc>::MAX_UTC), 3);
        assert_eq!(rules.current().version(), 3);
        assert_eq!(
            rules.versions().map(Version::version).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(rules.version(4).is_none());
    }

    #[test]
    fn a_recorded_version_keeps_its_calendar_and_its_deadlines() {
        let from = local(2026, 12, 30, 10, 0);
        let rules = base();
        let recorded = rules.current().calendar().add_working_days(from, 5);
        let rules = apply(
            rules,
            RulesCommand::SetOfficeHours {
                office_hours: office_hours(&[("09:00", "17:00")]),
            },
            local(2026, 12, 30, 12, 0),
        )
        .expect("office hours recorded");
        let old = rules.version(1).expect("the base");
        assert_eq!(old.calendar().add_working_days(from, 5), recorded);
        assert_eq!(old.calendar_data().office_hours, base_data().office_hours);
        assert!(
            !rules
                .current()
                .calendar()
                .is_within_office_hours(local(2026, 12, 31, 8, 45))
        );
        assert!(
            old.calendar()
                .is_within_office_hours(local(2026, 12, 31, 8, 45))
        );
    }

    #[test]
    fn a_change_recorded_with_a_clock_gone_back_takes_effect_after_the_previous_one() {
        let later = local(2026, 12, 1, 10, 0);
        let rules = apply(base(), set_year(year_2027()), later).expect("2027 recorded");
        let rules = apply(
            rules,
            RulesCommand::SetOfficeHours {
                office_hours: office_hours(&[("09:00", "17:00")]),
            },
            later - Duration::hours(1),
        )
        .expect("office hours recorded");
        assert_eq!(rules.current().effective_from(), later);
        assert_eq!(rules.in_force(later).version(), 3);
        assert_eq!(rules.in_force(later - Duration::hours(1)).version(), 1);
    }

    #[test]
    fn an_event_that_does_not_fit_adds_no_version() {
        let event = RulesEvent::OfficeHoursSet {
            office_hours: Vec::new(),
        };
        let rules = evolve(base(), &event, local(2026, 12, 1, 10, 0));
        assert_eq!(rules.current().version(), 1);
    }

    // Years.

    #[test]
    fn setting_a_known_year_replaces_it_where_it_was() {
        let mut corrected = base_data().years[2].clone();
        corrected.notice.url = "https://www.gov.cn/zhengce/content/202511/test.htm".into();
        let rules = apply(base(), set_year(corrected.clone()), local(2026, 1, 5, 9, 0))
            .expect("2026 corrected");
        let years = &rules.current().calendar_data().years;
        assert_eq!(
            years.iter().map(|y| y.year).collect::<Vec<_>>(),
            vec![2024, 2025, 2026]
        );
        assert_eq!(years[2], corrected);
        assert_ne!(
            rules.version(1).expect("base").calendar_data().years[2],
            corrected
        );
    }

    #[test]
    fn an_earlier_year_goes_before_the_known_ones() {
        let mut data = year_2027();
        data.year = 2023;
        data.notice.published = date("2022-12-08");
        data.holidays = vec![
            span("元旦", "2022-12-31", Some("2023-01-02")),
            span("春节", "2023-01-21", Some("2023-01-27")),
            span("清明节", "2023-04-05", None),
            span("劳动节", "2023-04-29", Some("2023-05-03")),
            span("端午节", "2023-06-22", Some("2023-06-24")),
            span("中秋节、国庆节", "2023-09-29", Some("2023-10-06")),
        ];
        data.make_up_working_days = vec![
            make_up("2023-01-28", "春节"),
            make_up("2023-01-29", "春节"),
            make_up("2023-04-23", "劳动节"),
            make_up("2023-05-06", "劳动节"),
            make_up("2023-06-25", "端午节"),
            make_up("2023-10-07", "中秋节、国庆节"),
            make_up("2023-10-08", "中秋节、国庆节"),
        ];
        let rules = apply(base(), set_year(data), local(2026, 12, 1, 9, 0)).expect("2023 added");
        assert_eq!(
            rules.current().calendar().known_years(),
            vec![2023, 2024, 2025, 2026]
        );
        assert!(
            !rules
                .current()
                .calendar()
                .is_working_day(date("2022-12-31"))
        );
    }

    #[test]
    fn a_new_year_break_starting_in_december_is_accepted() {
        let mut data = year_2027();
        data.holidays[0] = span("元旦", "2026-12-31", Some("2027-01-03"));
        let rules = apply(base(), set_year(data), local(2026, 12, 1, 9, 0)).expect("accepted");
        let calendar = rules.current().calendar();
        assert!(!calendar.is_working_day(date("2026-12-31")));
        assert!(
            rules
                .version(1)
                .expect("base")
                .calendar()
                .is_working_day(date("2026-12-31"))
        );
    }

    #[test]
    fn a_year_set_twice_is_refused_as_unchanged() {
        let rules = apply(base(), set_year(year_2027()), local(2026, 12, 1, 9, 0))
            .expect("first submission");
        let again = decide(&rules, &city_admin(), &org(), &set_year(year_2027()));
        assert_eq!(again, Err(RulesError::Unchanged));
        assert_eq!(
            refused(set_year(base_data().years[0].clone())),
            RulesError::Unchanged
        );
    }

    #[test]
    fn an_absurd_year_is_refused() {
        for year in [1999, 2101, -5] {
            assert_eq!(
                refused_year(|data| data.year = year),
                RulesError::YearOutOfRange { year }
            );
        }
        let mut data = year_2027();
        data.year = 1999;
        assert_eq!(
            refused(RulesCommand::SetYear { year: 1999, data }),
            RulesError::YearOutOfRange { year: 1999 }
        );
    }

    #[test]
    fn a_command_for_one_year_with_data_for_another_is_refused() {
        assert_eq!(
            refused(RulesCommand::SetYear {
                year: 2028,
                data: year_2027()
            }),
            RulesError::YearMismatch {
                year: 2028,
                data_year: 2027
            }
        );
    }

    #[test]
    fn a_date_outside_the_year_is_refused() {
        assert_eq!(
            refused_year(|data| data.holidays[6] = span("国庆节", "2028-01-01", None)),
            RulesError::Calendar(CalendarError::DateOutsideNoticeYear {
                year: 2027,
                date: date("2028-01-01")
            })
        );
        assert_eq!(
            refused_year(|data| data.make_up_working_days[0].date = date("2026-11-29")),
            RulesError::Calendar(CalendarError::DateOutsideNoticeYear {
                year: 2027,
                date: date("2026-11-29")
            })
        );
    }

    #[test]
    fn overlapping_holidays_are_refused_with_both_names() {
        let err = refused_year(|data| data.holidays[1].from = date("2027-01-03"));
        assert_eq!(
            err,
            RulesError::Calendar(CalendarError::HolidaysOverlap {
                first_year: 2027,
                first: "元旦".into(),
                second_year: 2027,
                second: "春节".into(),
                date: date("2027-01-03")
            })
        );
        assert_eq!(
            err.message(),
            "2027 年的节假日「春节」与「元旦」重叠（2027-01-03）"
        );
    }

    #[test]
    fn a_holiday_running_backwards_is_refused() {
        assert!(matches!(
            refused_year(|data| data.holidays[2].to = Some(date("2027-04-02"))),
            RulesError::Calendar(CalendarError::ReversedHolidayRange { .. })
        ));
    }

    #[test]
    fn a_make_up_day_on_a_weekday_or_inside_a_holiday_is_refused() {
        assert_eq!(
            refused_year(|data| data.make_up_working_days[2].date = date("2027-05-07")),
            RulesError::Calendar(CalendarError::MakeUpDayNotWeekend {
                date: date("2027-05-07")
            })
        );
        assert_eq!(
            refused_year(|data| data.make_up_working_days[0].date = date("2027-02-07")),
            RulesError::Calendar(CalendarError::HolidayIsMakeUpDay {
                date: date("2027-02-07")
            })
        );
        assert_eq!(
            refused_year(|data| data.make_up_working_days[1].date = date("2027-01-31")),
            RulesError::Calendar(CalendarError::DayListedTwice {
                date: date("2027-01-31")
            })
        );
    }

    #[test]
    fn a_make_up_day_for_a_festival_the_notice_does_not_list_is_refused() {
        assert_eq!(
            refused_year(|data| data.make_up_working_days[3].name = "国庆".into()),
            RulesError::MakeUpDayForUnknownHoliday {
                year: 2027,
                date: date("2027-09-26"),
                name: "国庆".into()
            }
        );
    }

    #[test]
    fn a_year_without_holidays_or_missing_a_festival_is_refused() {
        assert_eq!(
            refused_year(|data| {
                data.holidays.clear();
                data.make_up_working_days.clear();
            }),
            RulesError::NoHolidays { year: 2027 }
        );
        assert_eq!(
            refused_year(|data| {
                data.holidays.remove(4);
            }),
            RulesError::MissingFestival {
                year: 2027,
                festival: "端午节"
            }
        );
        // A span may name two festivals, as 2025's 国庆节、中秋节 did.
        let mut merged = year_2027();
        merged.holidays.remove(5);
        merged.holidays[5].name = "国庆节、中秋节".into();
        for make_up in &mut merged.make_up_working_days[3..] {
            make_up.name = "国庆节、中秋节".into();
        }
        assert!(decide(&base(), &city_admin(), &org(), &set_year(merged)).is_ok());
    }

    #[test]
    fn a_notice_with_a_blank_or_broken_text_is_refused() {
        assert_eq!(
            refused_year(|data| data.notice.title = "  ".into()),
            RulesError::BadText {
                year: 2027,
                field: "title"
            }
        );
        assert_eq!(
            refused_year(|data| data.notice.number = String::new()),
            RulesError::BadText {
                year: 2027,
                field: "number"
            }
        );
        assert_eq!(
            refused_year(|data| data.notice.url = "https://www.gov.cn/\n".into()),
            RulesError::BadText {
                year: 2027,
                field: "url"
            }
        );
        assert_eq!(
            refused_year(|data| data.holidays[0].name = "元\u{202e}旦".into()),
            RulesError::BadText {
                year: 2027,
                field: "holidays.name"
            }
        );
        assert_eq!(
            refused_year(|data| data.make_up_working_days[0].name = String::new()),
            RulesError::BadText {
                year: 2027,
                field: "make_up_working_days.name"
            }
        );
        assert_eq!(
            refused_year(|data| data.notice.title = "通".repeat(MAX_TEXT + 1)),
            RulesError::BadText {
                year: 2027,
                field: "title"
            }
        );
    }

    #[test]
    fn a_notice_published_outside_its_year_and_the_year_before_is_refused() {
        assert_eq!(
            refused_year(|data| data.notice.published = date("2025-11-20")),
            RulesError::NoticePublishedOutsideRange {
                year: 2027,
                published: date("2025-11-20")
            }
        );
        let mut late = year_2027();
        late.notice.published = date("2027-01-10");
        assert!(decide(&base(), &city_admin(), &org(), &set_year(late)).is_ok());
    }

    // Office hours.

    #[test]
    fn new_office_hours_apply_in_the_new_version() {
        let rules = apply(
            base(),
            RulesCommand::SetOfficeHours {
                office_hours: office_hours(&[("09:00", "12:00"), ("13:30", "17:30")]),
            },
            local(2026, 12, 1, 9, 0),
        )
        .expect("recorded");
        let calendar = rules.current().calendar();
        assert!(calendar.is_within_office_hours(local(2026, 12, 2, 13, 45)));
        assert!(!calendar.is_within_office_hours(local(2026, 12, 2, 17, 45)));
        assert_eq!(
            rules.current().calendar_data().years,
            base_data().years,
            "the years are kept"
        );
        assert!(Arc::ptr_eq(
            rules.current().policy(),
            rules.version(1).expect("base").policy()
        ));
    }

    #[test]
    fn bad_office_hours_are_refused() {
        let set = |periods: &[(&str, &str)]| RulesCommand::SetOfficeHours {
            office_hours: office_hours(periods),
        };
        assert_eq!(
            refused(set(&[])),
            RulesError::Calendar(CalendarError::NoOfficeHours)
        );
        assert!(matches!(
            refused(set(&[("12:00", "08:30")])),
            RulesError::Calendar(CalendarError::EmptyOfficePeriod { .. })
        ));
        assert!(matches!(
            refused(set(&[("08:30", "12:00"), ("11:00", "18:00")])),
            RulesError::Calendar(CalendarError::OfficePeriodsOutOfOrder { .. })
        ));
        assert!(matches!(
            refused(set(&[("14:30", "18:00"), ("08:30", "12:00")])),
            RulesError::Calendar(CalendarError::OfficePeriodsOutOfOrder { .. })
        ));
        assert_eq!(
            refused(set(&[("08:30", "12:00"), ("14:30", "18:00")])),
            RulesError::Unchanged
        );
    }

    #[test]
    fn office_hours_past_midnight_do_not_parse() {
        let json =
            r#"{"type":"set_office_hours","office_hours":[{"start":"20:00","end":"24:30"}]}"#;
        assert!(serde_json::from_str::<RulesCommand>(json).is_err());
        let json =
            r#"{"type":"set_office_hours","office_hours":[{"start":"20:00","end":"24:00"}]}"#;
        assert!(serde_json::from_str::<RulesCommand>(json).is_ok());
    }

    // Policy.

    #[test]
    fn a_new_policy_applies_in_the_new_version_and_keeps_the_calendar() {
        let mut policy = base_policy();
        policy.redo = WorkingTime::Days(5);
        let rules = apply(
            base(),
            RulesCommand::SetPolicy {
                policy: policy.clone(),
            },
            local(2026, 12, 1, 9, 0),
        )
        .expect("recorded");
        let old = rules.version(1).expect("base");
        assert_eq!(rules.current().policy().redo(), WorkingTime::Days(5));
        assert_eq!(old.policy().redo(), WorkingTime::Days(3));
        assert!(Arc::ptr_eq(rules.current().calendar(), old.calendar()));
    }

    #[test]
    fn an_invalid_or_unchanged_policy_is_refused() {
        let mut policy = base_policy();
        policy.handle.rules[1].limit = WorkingTime::Days(0);
        let err = refused(RulesCommand::SetPolicy { policy });
        assert_eq!(
            err,
            RulesError::Policy(CalendarError::ZeroLimit {
                what: "handle.rules[1]".into()
            })
        );
        assert_eq!(err.message(), "办理时限第 2 条规则不能为零");
        assert_eq!(
            refused(RulesCommand::SetPolicy {
                policy: base_policy()
            }),
            RulesError::Unchanged
        );
    }

    // Scope.

    #[test]
    fn only_an_administrator_of_the_city_centre_changes_the_rules() {
        let command = set_year(year_2027());
        let by = |actor: Actor| decide(&base(), &actor, &org(), &command);
        assert_eq!(
            by(actor("operator", "city", Role::Operator)),
            Err(RulesError::NotAdmin)
        );
        assert_eq!(
            by(actor("a_admin", "d.a", Role::Admin)),
            Err(RulesError::NotCityAdmin)
        );
        assert_eq!(
            by(actor("bureau_admin", "city.bureau.housing", Role::Admin)),
            Err(RulesError::NotCityAdmin)
        );
        assert!(by(city_admin()).is_ok());
    }

    #[test]
    fn scope_is_checked_before_the_rules_of_the_change() {
        let invalid = RulesCommand::SetOfficeHours {
            office_hours: Vec::new(),
        };
        let unchanged = RulesCommand::SetPolicy {
            policy: base_policy(),
        };
        for command in [invalid, unchanged] {
            assert_eq!(
                decide(
                    &base(),
                    &actor("a_admin", "d.a", Role::Admin),
                    &org(),
                    &command
                ),
                Err(RulesError::NotCityAdmin)
            );
            assert_eq!(
                decide(
                    &base(),
                    &actor("shift", "city", Role::ShiftLeader),
                    &org(),
                    &command
                ),
                Err(RulesError::NotAdmin)
            );
        }
    }

    // JSON.

    #[test]
    fn events_round_trip_through_json_with_their_type_tag() {
        let events = [
            RulesEvent::YearSet { data: year_2027() },
            RulesEvent::OfficeHoursSet {
                office_hours: office_hours(&[("09:00", "17:00")]),
            },
            RulesEvent::PolicySet {
                policy: base_policy(),
            },
        ];
        for (event, tag) in events
            .iter()
            .zip(["year_set", "office_hours_set", "policy_set"])
        {
            let json = serde_json::to_value(event).expect("serialises");
            assert_eq!(json["type"], serde_json::json!(tag));
            let back: RulesEvent = serde_json::from_value(json).expect("parses");
            assert_eq!(&back, event);
        }
    }

    #[test]
    fn stored_events_keep_their_shape() {
        // The stored contract: these lines must keep loading.
        let office: RulesEvent = serde_json::from_str(
            r#"{"type":"office_hours_set","office_hours":[{"start":"09:00","end":"12:00"},{"start":"13:30","end":"17:30"}]}"#,
        )
        .expect("office hours event");
        assert_eq!(
            office,
            RulesEvent::OfficeHoursSet {
                office_hours: office_hours(&[("09:00", "12:00"), ("13:30", "17:30")])
            }
        );
        let year: RulesEvent = serde_json::from_str(
            r#"{"type":"year_set","data":{"year":2027,"notice":{"title":"国务院办公厅关于2027年部分节假日安排的通知","number":"测试用文号〔2026〕1号","published":"2026-11-20"},"holidays":[{"name":"元旦","from":"2027-01-01","to":"2027-01-03"}],"make_up_working_days":[{"date":"2027-01-31","name":"春节"}]}}"#,
        )
        .expect("year event");
        let RulesEvent::YearSet { data } = year else {
            panic!("a year event: {year:?}");
        };
        assert_eq!(
            data.holidays[0],
            span("元旦", "2027-01-01", Some("2027-01-03"))
        );
        let policy: RulesEvent = serde_json::from_str(&format!(
            r#"{{"type":"policy_set","policy":{POLICY_JSON}}}"#
        ))
        .expect("policy event");
        assert_eq!(
            policy,
            RulesEvent::PolicySet {
                policy: base_policy()
            }
        );
    }

    #[test]
    fn commands_round_trip_through_json() {
        let commands = [
            set_year(year_2027()),
            RulesCommand::SetOfficeHours {
                office_hours: office_hours(&[("09:00", "17:00")]),
            },
            RulesCommand::SetPolicy {
                policy: base_policy(),
            },
        ];
        for (command, tag) in commands
            .iter()
            .zip(["set_year", "set_office_hours", "set_policy"])
        {
            let json = serde_json::to_value(command).expect("serialises");
            assert_eq!(json["type"], serde_json::json!(tag));
            let back: RulesCommand = serde_json::from_value(json).expect("parses");
            assert_eq!(&back, command);
        }
    }

    #[test]
    fn replaying_the_events_gives_the_same_versions() {
        let first = local(2026, 11, 25, 9, 0);
        let second = local(2026, 12, 1, 9, 0);
        let rules = apply(base(), set_year(year_2027()), first).expect("2027");
        let mut policy = base_policy();
        policy.callback = WorkingTime::Days(2);
        let rules = apply(rules, RulesCommand::SetPolicy { policy }, second).expect("policy");
        let log: Vec<(String, DateTime<Utc>)> = [
            (RulesEvent::YearSet { data: year_2027() }, first),
            (
                RulesEvent::PolicySet {
                    policy: rules.current().policy().as_ref().clone(),
                },
                second,
            ),
        ]
        .iter()
        .map(|(event, at)| (serde_json::to_string(event).expect("serialises"), *at))
        .collect();
        let replayed = log.iter().fold(base(), |rules, (json, at)| {
            let event: RulesEvent = serde_json::from_str(json).expect("parses");
            evolve(rules, &event, *at)
        });
        for (a, b) in replayed.versions().zip(rules.versions()) {
            assert_eq!(a.version(), b.version());
            assert_eq!(a.effective_from(), b.effective_from());
            assert_eq!(a.calendar_data(), b.calendar_data());
            assert_eq!(a.policy(), b.policy());
        }
        assert_eq!(replayed.versions().count(), 3);
    }

    // The dispatch catalogue.

    fn set_catalogue(catalogue: CatalogueSpec) -> RulesCommand {
        RulesCommand::SetCatalogue { catalogue }
    }

    #[test]
    fn the_base_carries_the_fixture_catalogue() {
        let rules = base();
        assert_eq!(rules.current().catalogue_spec().as_ref(), &base_catalogue());
        assert!(rules.current().catalogue().matter("0101").is_some());
    }

    #[test]
    fn a_new_catalogue_is_in_force_in_the_new_version_only() {
        let at = local(2026, 12, 3, 10, 0);
        let rules = base();
        let catalogue = catalogue::tests::small();
        let rules = apply(rules, set_catalogue(catalogue.clone()), at).expect("accepted");
        let (old, new) = (
            rules.in_force(at - Duration::seconds(1)),
            rules.in_force(at),
        );
        assert_eq!((old.version(), new.version()), (1, 2));
        assert_eq!(old.catalogue_spec().as_ref(), &base_catalogue());
        assert_eq!(new.catalogue_spec().as_ref(), &catalogue);
        assert_eq!(new.catalogue().matters().len(), 4);
        assert!(old.catalogue().matter("030101").is_some());
        // The calendar and the policy are the same as before, shared.
        assert!(Arc::ptr_eq(old.calendar(), new.calendar()));
        assert!(Arc::ptr_eq(old.policy(), new.policy()));
    }

    #[test]
    fn other_changes_keep_the_catalogue_shared() {
        let rules = apply(base(), set_year(year_2027()), local(2026, 11, 25, 9, 0)).expect("2027");
        let versions: Vec<&Version> = rules.versions().collect();
        assert!(Arc::ptr_eq(
            versions[0].catalogue(),
            versions[1].catalogue()
        ));
        assert!(Arc::ptr_eq(
            versions[0].catalogue_spec(),
            versions[1].catalogue_spec()
        ));
    }

    #[test]
    fn the_catalogue_in_force_again_is_refused_as_unchanged() {
        assert_eq!(
            refused(set_catalogue(base_catalogue())),
            RulesError::Unchanged
        );
        let at = local(2026, 12, 3, 10, 0);
        let rules = apply(base(), set_catalogue(catalogue::tests::small()), at).expect("accepted");
        assert_eq!(
            decide(
                &rules,
                &city_admin(),
                &org(),
                &set_catalogue(catalogue::tests::small())
            ),
            Err(RulesError::Unchanged)
        );
    }

    #[test]
    fn a_catalogue_refused_by_its_rules_or_the_tree_says_where() {
        let mut spec = catalogue::tests::small();
        spec.matters[0].children[0].keywords.push(" ".into());
        let Err(RulesError::Catalogue(refusal)) =
            decide(&base(), &city_admin(), &org(), &set_catalogue(spec))
        else {
            panic!("a blank keyword is refused");
        };
        assert_eq!(refusal.message(), "事项 0101「停水」的第 3 个关键词为空");
        // The fixture names bureaus the small city does not have.
        let err = refused(set_catalogue({
            let mut spec = base_catalogue();
            spec.comment.push_str("（修订）");
            spec
        }));
        assert!(
            matches!(&err, RulesError::Catalogue(r) if matches!(r.problem, catalogue::Problem::UnknownUnit { .. })),
            "{err:?}"
        );
        assert!(err.message().contains("没有"), "{}", err.message());
    }

    #[test]
    fn only_an_administrator_of_the_city_centre_changes_the_catalogue_before_any_rule_of_it() {
        let mut broken = catalogue::tests::small();
        broken.matters.clear();
        for command in [
            set_catalogue(catalogue::tests::small()),
            set_catalogue(broken),
        ] {
            let operator = actor("operator", "city", Role::Operator);
            assert_eq!(
                decide(&base(), &operator, &org(), &command),
                Err(RulesError::NotAdmin)
            );
            let district = actor("d_admin", "d.a", Role::Admin);
            assert_eq!(
                decide(&base(), &district, &org(), &command),
                Err(RulesError::NotCityAdmin)
            );
        }
    }

    #[test]
    fn a_base_with_a_catalogue_that_would_be_refused_is_refused() {
        let mut spec = base_catalogue();
        spec.matters[0].name = "表扬与感谢".into();
        assert!(matches!(
            Rules::new(base_data(), base_policy(), spec),
            Err(RulesError::Catalogue(CatalogueRefusal {
                problem: catalogue::Problem::DuplicateName { .. },
                ..
            }))
        ));
    }

    #[test]
    fn a_catalogue_event_that_does_not_fit_adds_no_version() {
        let mut spec = catalogue::tests::small();
        spec.matters.clear();
        let rules = evolve(
            base(),
            &RulesEvent::CatalogueSet { catalogue: spec },
            local(2026, 12, 3, 10, 0),
        );
        assert_eq!(rules.current().version(), 1);
    }

    #[test]
    fn a_catalogue_event_keeps_its_shape_and_replays_to_the_same_catalogue() {
        let at = local(2026, 12, 3, 10, 0);
        let rules = apply(base(), set_catalogue(catalogue::tests::small()), at).expect("accepted");
        let json = serde_json::to_value(RulesEvent::CatalogueSet {
            catalogue: catalogue::tests::small(),
        })
        .expect("serialises");
        assert_eq!(json["type"], "catalogue_set");
        assert_eq!(
            json["catalogue"]["matters"][0]["children"][0]["keywords"],
            serde_json::json!(["停水", "没水"])
        );
        // The stored contract: this line must keep loading.
        let stored: RulesEvent = serde_json::from_str(
            r#"{"type":"catalogue_set","catalogue":{"comment":"测试用派单目录","matters":[{"code":"01","name":"城乡建设","targets":[{"level":"district","unit_kind":"district_department","slug":"urban"}],"fallback":[{"level":"city","unit_kind":"bureau","slug":"urban"}],"children":[{"code":"0101","name":"停水","keywords":["停水","没水"],"context":["水压"]},{"code":"0102","name":"物业服务","keywords":["物业"],"generic":["小区"],"targets":[{"level":"city","unit_kind":"bureau","slug":"housing"}]}]},{"code":"02","name":"属地管理","categories":["complaint","report"],"targets":[{"level":"street","unit_kind":"street_office"}]}]}}"#,
        )
        .expect("catalogue event");
        let replayed = evolve(base(), &stored, at);
        assert_eq!(replayed.current().version(), 2);
        assert_eq!(
            replayed.current().catalogue_spec(),
            rules.current().catalogue_spec()
        );
        let command: RulesCommand = serde_json::from_value(serde_json::json!({
            "type": "set_catalogue",
            "catalogue": serde_json::to_value(catalogue::tests::small()).expect("spec"),
        }))
        .expect("command");
        assert_eq!(command, set_catalogue(catalogue::tests::small()));
    }

    // Messages.

    #[test]
    fn every_refusal_has_a_chinese_message() {
        let day = date("2027-01-01");
        let clock = ClockTime::parse("08:30").expect("clock");
        let calendar_errors = [
            CalendarError::BadClockTime {
                text: "25:00".into(),
            },
            CalendarError::NoOfficeHours,
            CalendarError::EmptyOfficePeriod {
                start: clock,
                end: clock,
            },
            CalendarError::OfficePeriodsOutOfOrder {
                previous_end: clock,
                next: clock,
            },
            CalendarError::DuplicateYear { year: 2027 },
            CalendarError::DateOutsideNoticeYear {
                year: 2027,
                date: day,
            },
            CalendarError::ReversedHolidayRange {
                name: "春节".into(),
                from: day,
                to: day,
            },
            CalendarError::HolidaysOverlap {
                first_year: 2026,
                first: "元旦".into(),
                second_year: 2027,
                second: "元旦".into(),
                date: day,
            },
            CalendarError::DayListedTwice { date: day },
            CalendarError::HolidayIsMakeUpDay { date: day },
            CalendarError::MakeUpDayNotWeekend { date: day },
            CalendarError::ZeroLimit {
                what: "redo".into(),
            },
            CalendarError::EmptyCondition {
                what: "receive.rules[0]".into(),
            },
            CalendarError::UnreachableRules {
                what: "handle.rules[1]".into(),
            },
        ];
        let mut errors = vec![
            RulesError::NotAdmin,
            RulesError::NotCityAdmin,
            RulesError::YearOutOfRange { year: 1999 },
            RulesError::YearMismatch {
                year: 2027,
                data_year: 2028,
            },
            RulesError::BadText {
                year: 2027,
                field: "title",
            },
            RulesError::BadText {
                year: 2027,
                field: "url",
            },
            RulesError::NoticePublishedOutsideRange {
                year: 2027,
                published: day,
            },
            RulesError::NoHolidays { year: 2027 },
            RulesError::MissingFestival {
                year: 2027,
                festival: "春节",
            },
            RulesError::MakeUpDayForUnknownHoliday {
                year: 2027,
                date: day,
                name: "国庆".into(),
            },
            RulesError::Unchanged,
        ];
        errors.extend(calendar_errors.iter().cloned().map(RulesError::Calendar));
        errors.push(RulesError::Policy(CalendarError::ZeroLimit {
            what: "callback".into(),
        }));
        errors.push(RulesError::Catalogue(CatalogueRefusal {
            matter: None,
            problem: catalogue::Problem::NoMatters,
        }));
        for err in errors {
            let message = err.message();
            assert!(
                message
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{err:?}: {message}"
            );
            assert!(!message.contains('`'), "{message}");
        }
    }
}
