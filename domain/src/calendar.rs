//! Working calendar (工作日历) and deadline policy (时限规则): how much working time a case
//! has, and when that time runs out.
//!
//! Everything here is pure: no IO, no clock. The calendar and the policy are data
//! (`fixtures/calendar.json`, `fixtures/deadline-policy.json`) that the caller loads and
//! hands in; deadlines are computed once and recorded in events, so a later change of the
//! data never rewrites history (DESIGN.md section 3).
//!
//! # Layout
//!
//! - [`CalendarData`] is the shape of `calendar.json`: office hours and, per year, the State
//!   Council holiday notice (国务院办公厅关于YYYY年部分节假日安排的通知) with its holidays
//!   (放假) and make-up working days (调休上班).
//! - [`WorkingCalendar`] is validated [`CalendarData`]; it answers "is this a working day",
//!   "is this inside office hours", adds [`WorkingTime`] to an instant, giving a
//!   [`Deadline`], and measures the working time between two instants, giving a
//!   [`WorkingSpan`] (the inverse of adding).
//! - [`DeadlinePolicy`] is the shape of `deadline-policy.json`: receive (签收) and handling
//!   (办理) limits chosen by first-matching rule on category, kind and urgency, plus the fixed
//!   limits for extension (延期), redo (重办), call-back (回访) and return request (退回申请).
//!
//! # Invariants
//!
//! - Instants are UTC; local time is Asia/Shanghai, a fixed UTC+08:00 (no DST since 1991).
//! - A day is a working day if it is a make-up working day of a notice, or a Monday to Friday
//!   that no notice makes a holiday. In a year whose notice is not in the data the fixed solar
//!   statutory dates (1 January, 1–2 May, 1–3 October) are also off, and every deadline that
//!   spans such a year is marked provisional.
//! - Office hours are the same on every working day; an instant is inside them when it lies
//!   in `[start, end)` of one office period of a working day.
//! - Amounts that would run past 9999-12-31 saturate at 9999-12-31 23:59:59 local time and
//!   are marked provisional, so the functions never panic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use serde::{Deserialize, Serialize};

use crate::kinds::{Category, Kind, Urgency};

/// Asia/Shanghai: UTC+08:00 all year.
const SHANGHAI: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+08:00 is a valid offset"),
};

/// The last date the calendar walks to; later deadlines saturate.
const LAST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(date) => date,
    None => panic!("9999-12-31 is a valid date"),
};

/// The saturated deadline instant, in local time.
const LAST_TIME: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
    Some(time) => time,
    None => panic!("23:59:59 is a valid time"),
};

/// The solar dates fixed by 全国年节及纪念日放假办法 (as amended in 2024), used for years
/// whose notice is missing: 元旦 1 Jan, 劳动节 1–2 May, 国庆节 1–3 Oct. The lunar holidays
/// cannot be placed without the notice.
const FIXED_STATUTORY_DATES: [(u32, u32); 6] = [(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)];

/// A working-time deadline; `provisional` is true when any day it spans lies in a year whose
/// State Council holiday notice is not in the calendar data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// When the working time runs out.
    #[serde(with = "crate::time::utc")]
    pub at: DateTime<Utc>,
    /// The span touches a year without its holiday notice, so `at` may move when the notice
    /// is added.
    pub provisional: bool,
}

/// Working time measured between two instants by [`WorkingCalendar::working_time_between`]:
/// the part of `[from, to)` inside office hours of working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingSpan {
    /// The working time, to the nanosecond; never negative.
    pub duration: Duration,
    /// The span touches a year without its holiday notice, so the measure may change when
    /// the notice is added.
    pub provisional: bool,
}

impl WorkingSpan {
    /// Whole working minutes, rounded down.
    pub fn minutes(self) -> u64 {
        u64::try_from(self.duration.num_minutes()).unwrap_or(0)
    }

    /// Working hours with their fraction (to the millisecond).
    pub fn hours(self) -> f64 {
        self.duration.num_milliseconds() as f64 / 3_600_000.0
    }
}

/// An amount of working time.
///
/// In JSON: `{"minutes": 120}` or `{"days": 5}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkingTime {
    /// Working minutes, counted only inside office hours.
    Minutes(u32),
    /// Working days (工作日), counted as DESIGN.md section 3 says.
    Days(u32),
}

impl WorkingTime {
    /// Whether the amount is zero, which no limit may be.
    pub fn is_zero(self) -> bool {
        matches!(self, WorkingTime::Minutes(0) | WorkingTime::Days(0))
    }
}

/// Why calendar data or a deadline policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A clock time is not `HH:MM` between `00:00` and `24:00`.
    #[error("clock time `{text}` is not `HH:MM` between `00:00` and `24:00`")]
    BadClockTime {
        /// The text as given.
        text: String,
    },
    /// The calendar has no office period, so no working time could ever pass.
    #[error("the calendar has no office hours")]
    NoOfficeHours,
    /// An office period does not end after it starts.
    #[error("office period `{start}`–`{end}` does not end after it starts")]
    EmptyOfficePeriod {
        /// Start of the period.
        start: ClockTime,
        /// End of the period.
        end: ClockTime,
    },
    /// Office periods are not sorted, or overlap or touch (touching periods are one period).
    #[error(
        "office period starting `{next}` does not start after the previous one ends at `{previous_end}`"
    )]
    OfficePeriodsOutOfOrder {
        /// End of the earlier period.
        previous_end: ClockTime,
        /// Start of the period that should come after it.
        next: ClockTime,
    },
    /// Two notices for the same year.
    #[error("year {year} appears twice in the calendar")]
    DuplicateYear {
        /// The repeated year.
        year: i32,
    },
    /// A notice lists a day outside its own year (or the December before it, where a New
    /// Year break may start).
    #[error("the notice for {year} lists `{date}`, outside that year")]
    DateOutsideNoticeYear {
        /// The notice's year.
        year: i32,
        /// The stray date.
        date: NaiveDate,
    },
    /// A holiday range ends before it starts.
    #[error("holiday `{name}` runs backwards from `{from}` to `{to}`")]
    ReversedHolidayRange {
        /// The festival name.
        name: String,
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
    /// Two holiday spans share a day, within one notice or across two (a New Year break
    /// starting in December against the previous year's notice).
    #[error(
        "holiday `{second}` of {second_year} overlaps holiday `{first}` of {first_year} on `{date}`"
    )]
    HolidaysOverlap {
        /// The notice year of the span listed first.
        first_year: i32,
        /// The festival listed first.
        first: String,
        /// The notice year of the span that overlaps it.
        second_year: i32,
        /// The festival that overlaps it.
        second: String,
        /// The first shared day.
        date: NaiveDate,
    },
    /// The same day is listed twice as a make-up working day.
    #[error("`{date}` is listed twice")]
    DayListedTwice {
        /// The repeated day.
        date: NaiveDate,
    },
    /// A day is both a holiday (放假) and a make-up working day (调休上班).
    #[error("`{date}` is both a holiday and a make-up working day")]
    HolidayIsMakeUpDay {
        /// The contradictory day.
        date: NaiveDate,
    },
    /// A make-up working day (调休上班) falls on a Monday to Friday, where it would change
    /// nothing: the transcription is wrong.
    #[error("make-up working day `{date}` is not a Saturday or Sunday")]
    MakeUpDayNotWeekend {
        /// The weekday given.
        date: NaiveDate,
    },
    /// A limit in the deadline policy is zero.
    #[error("deadline limit `{what}` is zero")]
    ZeroLimit {
        /// Which limit, e.g. `handle.rules[2]` or `redo`.
        what: String,
    },
    /// A policy rule lists no value for a condition, so it could never match.
    #[error("rule `{what}` has an empty condition list and can never match")]
    EmptyCondition {
        /// Which rule, e.g. `receive.rules[0]`.
        what: String,
    },
    /// A policy rule without conditions stands before other rules, which can never match.
    #[error("rule `{what}` matches everything, so the rules after it can never match")]
    UnreachableRules {
        /// Which rule, e.g. `handle.rules[1]`.
        what: String,
    },
}

impl CalendarError {
    /// The Chinese text shown to the administrator whose change was refused.
    pub fn message(&self) -> String {
        match self {
            Self::BadClockTime { text } => {
                format!("时间「{text}」须写作 HH:MM，在 00:00 至 24:00 之间")
            }
            Self::NoOfficeHours => "至少要有一个办公时段".into(),
            Self::EmptyOfficePeriod { start, end } => {
                format!("办公时段 {start}–{end} 的结束时间须晚于开始时间")
            }
            Self::OfficePeriodsOutOfOrder { previous_end, next } => format!(
                "办公时段须按先后排列、互不重叠也不相接：{next} 开始的时段须晚于上一时段结束的 {previous_end}"
            ),
            Self::DuplicateYear { year } => format!("{year} 年的节假日安排出现了两次"),
            Self::DateOutsideNoticeYear { year, date } => format!(
                "{year} 年的节假日安排列出了 {date}，不在该年内（只有元旦假期及其调休可从上一年 12 月开始）"
            ),
            Self::ReversedHolidayRange { name, from, to } => {
                format!("节假日「{name}」的结束日期 {to} 早于开始日期 {from}")
            }
            Self::HolidaysOverlap {
                first_year,
                first,
                second_year,
                second,
                date,
            } => {
                if first_year == second_year {
                    format!("{second_year} 年的节假日「{second}」与「{first}」重叠（{date}）")
                } else {
                    format!(
                        "{second_year} 年的节假日「{second}」与 {first_year} 年的「{first}」重叠（{date}）"
                    )
                }
            }
            Self::DayListedTwice { date } => format!("调休上班日 {date} 列出了两次"),
            Self::HolidayIsMakeUpDay { date } => {
                format!("{date} 不能既是放假日又是调休上班日")
            }
            Self::MakeUpDayNotWeekend { date } => {
                format!("调休上班日 {date} 须是星期六或星期日")
            }
            Self::ZeroLimit { what } => format!("{}不能为零", limit_label(what)),
            Self::EmptyCondition { what } => {
                format!("{}的条件列表为空，永远不会匹配", limit_label(what))
            }
            Self::UnreachableRules { what } => format!(
                "{}不设条件、匹配所有工单，其后的规则永远不会生效",
                limit_label(what)
            ),
        }
    }
}

/// The Chinese name of a limit of the deadline policy as [`DeadlinePolicy::validate`] names
/// it: `handle.rules[2]` is 办理时限第 3 条规则, `receive.default` 签收时限的默认值.
fn limit_label(what: &str) -> String {
    let table = |name: &str| match name {
        "receive" => "签收时限",
        "handle" => "办理时限",
        _ => "时限",
    };
    if let Some((name, rest)) = what.split_once('.') {
        if rest == "default" {
            return format!("{}的默认值", table(name));
        }
        let index = rest
            .strip_prefix("rules[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|index| index.parse::<usize>().ok());
        if let Some(index) = index {
            return format!("{}第 {} 条规则", table(name), index + 1);
        }
    }
    match what {
        "extension_max_days" => "延期上限".into(),
        "redo" => "重办时限".into(),
        "callback" => "回访时限".into(),
        "return_request" => "退回申请时限".into(),
        other => format!("时限「{other}」"),
    }
}

/// A wall-clock time of day in minutes, written `HH:MM` (`24:00` allowed as an end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClockTime(u16);

impl ClockTime {
    /// A clock time from hour and minute.
    ///
    /// # Errors
    ///
    /// [`CalendarError::BadClockTime`] unless `hour:minute` lies between `00:00` and `24:00`.
    pub fn new(hour: u16, minute: u16) -> Result<Self, CalendarError> {
        if minute < 60 && (hour < 24 || (hour == 24 && minute == 0)) {
            Ok(ClockTime(hour * 60 + minute))
        } else {
            Err(CalendarError::BadClockTime {
                text: format!("{hour:02}:{minute:02}"),
            })
        }
    }

    /// Parses `HH:MM`.
    ///
    /// # Errors
    ///
    /// [`CalendarError::BadClockTime`] if the text is not `HH:MM` between `00:00` and `24:00`.
    pub fn parse(text: &str) -> Result<Self, CalendarError> {
        let bad = || CalendarError::BadClockTime {
            text: text.to_owned(),
        };
        let (hour, minute) = text.split_once(':').ok_or_else(bad)?;
        let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(hour) || !two_digits(minute) {
            return Err(bad());
        }
        let hour: u16 = hour.parse().map_err(|_| bad())?;
        let minute: u16 = minute.parse().map_err(|_| bad())?;
        ClockTime::new(hour, minute).map_err(|_| bad())
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }

    /// Seconds since midnight.
    fn seconds(self) -> i64 {
        i64::from(self.0) * 60
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl TryFrom<String> for ClockTime {
    type Error = CalendarError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        ClockTime::parse(&text)
    }
}

impl From<ClockTime> for String {
    fn from(time: ClockTime) -> Self {
        time.to_string()
    }
}

/// One office period (办公时段) of a working day, `[start, end)` in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficePeriod {
    /// Opening, e.g. `"08:30"`.
    pub start: ClockTime,
    /// Closing, e.g. `"12:00"`; the instant itself is outside.
    pub end: ClockTime,
}

/// The shape of `fixtures/calendar.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarData {
    /// Free text: where the data comes from and how it was checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Office periods of every working day, sorted and disjoint.
    pub office_hours: Vec<OfficePeriod>,
    /// One entry per year whose State Council notice has been transcribed.
    pub years: Vec<YearData>,
}

/// One year's holiday arrangement, from its State Council notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearData {
    /// The year the notice arranges.
    pub year: i32,
    /// The notice the dates were transcribed from.
    pub notice: Notice,
    /// Days off (放假), as the notice lists them.
    pub holidays: Vec<HolidaySpan>,
    /// Weekend days worked (调休上班).
    #[serde(default)]
    pub make_up_working_days: Vec<MakeUpDay>,
}

/// A State Council notice (国务院办公厅关于YYYY年部分节假日安排的通知).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// The notice's title.
    pub title: String,
    /// Its document number (文号), e.g. `国办发明电〔2025〕7号`.
    pub number: String,
    /// The day it was published.
    pub published: NaiveDate,
    /// Where it was read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// A festival's days off: one date, or an inclusive range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidaySpan {
    /// The festival (元旦, 春节, 清明节, 劳动节, 端午节, 中秋节, 国庆节).
    pub name: String,
    /// First day off.
    pub from: NaiveDate,
    /// Last day off, inclusive; absent for a single day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
}

/// A make-up working day (调休上班): a Saturday or Sunday worked for a festival's break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeUpDay {
    /// The day worked.
    pub date: NaiveDate,
    /// The festival whose break it pays for.
    pub name: String,
}

/// What a notice says about one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOverride {
    Holiday,
    MakeUp,
}

/// Where an instant lies relative to office hours.
#[derive(Debug, Clone, Copy)]
enum Position {
    /// Inside period `period` of working day `date`.
    Inside { date: NaiveDate, period: usize },
    /// Outside; the clock starts at period `period` of working day `date`.
    Outside { date: NaiveDate, period: usize },
}

/// 工作日历 — validated [`CalendarData`]: which days are working days, office hours, and
/// working-time arithmetic.
#[derive(Debug, Clone)]
pub struct WorkingCalendar {
    /// Office periods in seconds since local midnight, sorted and disjoint.
    periods: Vec<(i64, i64)>,
    /// Days a notice makes off or on.
    overrides: BTreeMap<NaiveDate, DayOverride>,
    /// Years whose notice is in the data.
    years: BTreeSet<i32>,
}

impl WorkingCalendar {
    /// Validates calendar data.
    ///
    /// # Errors
    ///
    /// - [`CalendarError::NoOfficeHours`], [`CalendarError::EmptyOfficePeriod`],
    ///   [`CalendarError::OfficePeriodsOutOfOrder`] for bad office hours;
    /// - [`CalendarError::DuplicateYear`], [`CalendarError::DateOutsideNoticeYear`],
    ///   [`CalendarError::ReversedHolidayRange`], [`CalendarError::HolidaysOverlap`],
    ///   [`CalendarError::DayListedTwice`], [`CalendarError::HolidayIsMakeUpDay`],
    ///   [`CalendarError::MakeUpDayNotWeekend`] for bad notices.
    pub fn new(data: CalendarData) -> Result<Self, CalendarError> {
        if data.office_hours.is_empty() {
            return Err(CalendarError::NoOfficeHours);
        }
        let mut previous_end: Option<ClockTime> = None;
        for period in &data.office_hours {
            if period.start >= period.end {
                return Err(CalendarError::EmptyOfficePeriod {
                    start: period.start,
                    end: period.end,
                });
            }
            if let Some(previous_end) = previous_end.filter(|end| period.start <= *end) {
                return Err(CalendarError::OfficePeriodsOutOfOrder {
                    previous_end,
                    next: period.start,
                });
            }
            previous_end = Some(period.end);
        }

        let mut years = BTreeSet::new();
        let mut overrides = BTreeMap::new();
        // The span each holiday comes from (notice year, festival), to name both of an overlap.
        let mut holiday_of: BTreeMap<NaiveDate, (i32, &str)> = BTreeMap::new();
        for year in &data.years {
            if !years.insert(year.year) {
                return Err(CalendarError::DuplicateYear { year: year.year });
            }
            // A notice may start the New Year break (or a make-up day for it) in the December
            // before its year, and nowhere else outside it.
            let in_notice_year = |date: NaiveDate| {
                date.year() == year.year || (date.year() + 1 == year.year && date.month() == 12)
            };
            for span in &year.holidays {
                let to = span.to.unwrap_or(span.from);
                if to < span.from {
                    return Err(CalendarError::ReversedHolidayRange {
                        name: span.name.clone(),
                        from: span.from,
                        to,
                    });
                }
                for date in span.from.iter_days().take_while(|date| *date <= to) {
                    if !in_notice_year(date) {
                        return Err(CalendarError::DateOutsideNoticeYear {
                            year: year.year,
                            date,
                        });
                    }
                    if let Some((first_year, first)) =
                        holiday_of.insert(date, (year.year, &span.name))
                    {
                        return Err(CalendarError::HolidaysOverlap {
                            first_year,
                            first: first.to_owned(),
                            second_year: year.year,
                            second: span.name.clone(),
                            date,
                        });
                    }
                    // A make-up day of an earlier notice (a December day the next New Year
                    // break now covers) cannot silently become a holiday.
                    if overrides.insert(date, DayOverride::Holiday).is_some() {
                        return Err(CalendarError::HolidayIsMakeUpDay { date });
                    }
                }
            }
            for make_up in &year.make_up_working_days {
                let date = make_up.date;
                if !in_notice_year(date) {
                    return Err(CalendarError::DateOutsideNoticeYear {
                        year: year.year,
                        date,
                    });
                }
                if !is_weekend(date) {
                    return Err(CalendarError::MakeUpDayNotWeekend { date });
                }
                match overrides.insert(date, DayOverride::MakeUp) {
                    None => {}
                    Some(DayOverride::Holiday) => {
                        return Err(CalendarError::HolidayIsMakeUpDay { date });
                    }
                    Some(DayOverride::MakeUp) => {
                        return Err(CalendarError::DayListedTwice { date });
                    }
                }
            }
        }

        let periods = data
            .office_hours
            .iter()
            .map(|period| (period.start.seconds(), period.end.seconds()))
            .collect();
        Ok(WorkingCalendar {
            periods,
            overrides,
            years,
        })
    }

    /// Whether a local (Asia/Shanghai) date is a working day (工作日).
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.overrides.get(&date) {
            Some(DayOverride::Holiday) => false,
            Some(DayOverride::MakeUp) => true,
            None => self.is_working_day_by_rule(date),
        }
    }

    /// Whether a date is a working day unless a notice lists it: a Monday to Friday, and in
    /// a year without its notice not a fixed statutory date.
    fn is_working_day_by_rule(&self, date: NaiveDate) -> bool {
        let statutory = self.is_provisional(date)
            && FIXED_STATUTORY_DATES.contains(&(date.month(), date.day()));
        !(is_weekend(date) || statutory)
    }

    /// The last working day before `date` (Friday for a Monday; the last day before a
    /// holiday break for the first day after it). `None` only before the first date there is.
    pub fn previous_working_day(&self, date: NaiveDate) -> Option<NaiveDate> {
        let mut day = date.pred_opt()?;
        while !self.is_working_day(day) {
            day = day.pred_opt()?;
        }
        Some(day)
    }

    /// Whether the date's year has no holiday notice in the data, so its working days are a
    /// guess (weekends plus the fixed statutory dates).
    pub fn is_provisional(&self, date: NaiveDate) -> bool {
        !self.years.contains(&date.year())
    }

    /// The years whose notice is in the data, ascending.
    pub fn known_years(&self) -> Vec<i32> {
        self.years.iter().copied().collect()
    }

    /// Whether an instant lies inside office hours of a working day.
    pub fn is_within_office_hours(&self, at: DateTime<Utc>) -> bool {
        let local = to_local(at);
        let date = local.date();
        let second = seconds_into_day(local);
        self.is_working_day(date)
            && self
                .periods
                .iter()
                .any(|(start, end)| *start <= second && second < *end)
    }

    /// Adds an amount of working time; see [`WorkingCalendar::add_working_days`] and
    /// [`WorkingCalendar::add_working_minutes`].
    pub fn add(&self, from: DateTime<Utc>, amount: WorkingTime) -> Deadline {
        match amount {
            WorkingTime::Minutes(minutes) => self.add_working_minutes(from, minutes),
            WorkingTime::Days(days) => self.add_working_days(from, days),
        }
    }

    /// Adds `n` working days.
    ///
    /// From an instant inside office hours the deadline is the same office-clock time on the
    /// `n`th following working day. From outside office hours the clock starts at the next
    /// opening: if that is a day's first opening (or the instant is exactly at it), the
    /// deadline is the close of the `n`th working day counting that day as the first; if it
    /// is a later period of the same day (after lunch), the inside rule applies from that
    /// opening. `n = 0` gives the start, moved to the next opening when outside.
    pub fn add_working_days(&self, from: DateTime<Utc>, n: u32) -> Deadline {
        let local = to_local(from);
        let Some(position) = self.locate(local) else {
            return saturated();
        };
        // The instant the clock starts: the instant itself inside office hours, else the
        // next opening.
        let (date, period, start) = match position {
            Position::Inside { date, period } => (date, period, local),
            Position::Outside { date, period } => {
                (date, period, at_seconds(date, self.periods[period].0))
            }
        };
        let at_first_opening = period == 0 && start == at_seconds(date, self.periods[0].0);
        if n == 0 {
            return self.deadline(local.date(), start);
        }
        if at_first_opening {
            // The opening day counts as the first of the n days; the deadline is its close.
            let Some(last) = self.nth_working_day_after(date, n - 1) else {
                return saturated();
            };
            let close = self.periods[self.periods.len() - 1].1;
            return self.deadline(local.date(), at_seconds(last, close));
        }
        let Some(last) = self.nth_working_day_after(date, n) else {
            return saturated();
        };
        // Keep the sub-minute part of the instant: the same office-clock time, to the
        // nanosecond, on the last day.
        let time_of_day = start - at_seconds(date, 0);
        self.deadline(local.date(), at_seconds(last, 0) + time_of_day)
    }

    /// Adds working minutes, walking the office periods of working days. From outside
    /// office hours the clock starts at the next opening; time that runs out exactly at a
    /// period's end gives that end, not the next opening.
    pub fn add_working_minutes(&self, from: DateTime<Utc>, minutes: u32) -> Deadline {
        let local = to_local(from);
        let Some(position) = self.locate(local) else {
            return saturated();
        };
        let (mut date, mut period, mut cursor) = match position {
            Position::Inside { date, period } => (date, period, local),
            Position::Outside { date, period } => {
                (date, period, at_seconds(date, self.periods[period].0))
            }
        };
        let mut remaining = Duration::minutes(i64::from(minutes));
        let day_length: i64 = self.periods.iter().map(|(start, end)| end - start).sum();
        loop {
            // Whole working days are skipped at once, so large amounts stay cheap.
            if period == 0 && cursor == at_seconds(date, self.periods[0].0) {
                while remaining > Duration::seconds(day_length) {
                    let Some(next) = self.nth_working_day_after(date, 1) else {
                        return saturated();
                    };
                    remaining -= Duration::seconds(day_length);
                    date = next;
                }
                cursor = at_seconds(date, self.periods[0].0);
            }
            let end = at_seconds(date, self.periods[period].1);
            let available = end - cursor;
            if remaining <= available {
                return self.deadline(local.date(), cursor + remaining);
            }
            remaining -= available;
            if period + 1 < self.periods.len() {
                period += 1;
            } else {
                let Some(next) = self.nth_working_day_after(date, 1) else {
                    return saturated();
                };
                date = next;
                period = 0;
            }
            cursor = at_seconds(date, self.periods[period].0);
        }
    }

    /// The working time between two instants: how much of `[from, to)` lies inside office
    /// hours of working days. The inverse of [`WorkingCalendar::add_working_minutes`]: for
    /// every instant `t` and every `m`, the span from `t` to `add_working_minutes(t, m)` is
    /// exactly `m` minutes, whether `t` is inside office hours or not (time before the next
    /// opening counts nothing). Nights, lunch breaks, weekends and holidays count nothing;
    /// make-up working days (调休上班) count like any working day.
    ///
    /// `to` before `from` (or equal) gives zero, not an error: the interval is empty. That
    /// keeps the measure monotone (never smaller for a later `to` or an earlier `from`) and
    /// additive (`from..mid` plus `mid..to` is `from..to`), and a reversed pair of stored
    /// instants cannot make a total negative. Instants past 9999-12-31 23:59:59 local time
    /// count as that instant, and the span is then provisional.
    pub fn working_time_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> WorkingSpan {
        let limit = saturated().at;
        let saturates = to > limit;
        let (from, to) = (from.min(limit), to.min(limit));
        if to <= from {
            return WorkingSpan {
                duration: Duration::zero(),
                provisional: saturates,
            };
        }
        let (start, end) = (to_local(from), to_local(to));
        let (first, last) = (start.date(), end.date());
        let mut duration = self.office_time_on(first, start, end);
        if last > first {
            duration += self.office_time_on(last, start, end);
            // The days strictly between are whole working days or nothing.
            if let Some(next) = first.succ_opt() {
                let day_length: i64 = self.periods.iter().map(|(start, end)| end - start).sum();
                let n_days = self.count_working_days(next, last);
                duration += Duration::seconds(day_length.saturating_mul(n_days));
            }
        }
        // A span ending exactly at midnight touches only the days before it.
        let last_year = if end.time() == NaiveTime::MIN && last > first {
            last.pred_opt().unwrap_or(last).year()
        } else {
            last.year()
        };
        let provisional =
            saturates || (first.year()..=last_year).any(|year| !self.years.contains(&year));
        WorkingSpan {
            duration,
            provisional,
        }
    }

    /// Whole working minutes between two instants (rounded down); see
    /// [`WorkingCalendar::working_time_between`] for the rules, `to < from` included (zero).
    pub fn working_minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
        self.working_time_between(from, to).minutes()
    }

    /// The office time of `date` inside the local interval `[start, end)`.
    fn office_time_on(
        &self,
        date: NaiveDate,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Duration {
        if !self.is_working_day(date) {
            return Duration::zero();
        }
        self.periods
            .iter()
            .map(|(open, close)| {
                let lo = at_seconds(date, *open).max(start);
                let hi = at_seconds(date, *close).min(end);
                if hi > lo { hi - lo } else { Duration::zero() }
            })
            .fold(Duration::zero(), |sum, part| sum + part)
    }

    /// How many working days lie in `[from, to)`: the same answer as counting
    /// [`WorkingCalendar::is_working_day`] day by day, without walking the days, so that
    /// long spans stay cheap.
    fn count_working_days(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        if to <= from {
            return 0;
        }
        // Mondays to Fridays: five per whole week, then the days left over at the end.
        let n_days = (to - from).num_days();
        let mut count = n_days / 7 * 5;
        let mut day = to;
        for _ in 0..n_days % 7 {
            day = day.pred_opt().unwrap_or(day);
            if !is_weekend(day) {
                count += 1;
            }
        }
        // The fixed statutory dates of years without a notice, on a Monday to Friday.
        let last_year = to.pred_opt().unwrap_or(to).year();
        for year in from.year()..=last_year {
            if self.years.contains(&year) {
                continue;
            }
            for (month, day_of_month) in FIXED_STATUTORY_DATES {
                if let Some(date) = NaiveDate::from_ymd_opt(year, month, day_of_month)
                    && from <= date
                    && date < to
                    && !is_weekend(date)
                {
                    count -= 1;
                }
            }
        }
        // A day a notice lists replaces the rule above.
        for (date, day_override) in self.overrides.range(from..to) {
            let listed = *day_override == DayOverride::MakeUp;
            count += i64::from(listed) - i64::from(self.is_working_day_by_rule(*date));
        }
        count
    }

    /// Where a local instant lies: inside a period of a working day, or outside with the
    /// next opening. `None` past [`LAST_DATE`].
    fn locate(&self, local: NaiveDateTime) -> Option<Position> {
        let date = local.date();
        if self.is_working_day(date) {
            let second = seconds_into_day(local);
            for (index, (start, end)) in self.periods.iter().enumerate() {
                if second < *start {
                    return Some(Position::Outside {
                        date,
                        period: index,
                    });
                }
                if second < *end {
                    return Some(Position::Inside {
                        date,
                        period: index,
                    });
                }
            }
        }
        let next = self.nth_working_day_after(date, 1)?;
        Some(Position::Outside {
            date: next,
            period: 0,
        })
    }

    /// The `n`th working day after `date` (`date` itself for `n = 0`). `None` past
    /// [`LAST_DATE`].
    fn nth_working_day_after(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        let mut date = date;
        for _ in 0..n {
            loop {
                date = date.succ_opt().filter(|next| *next <= LAST_DATE)?;
                if self.is_working_day(date) {
                    break;
                }
            }
        }
        Some(date)
    }

    /// A deadline at a local instant, provisional if any day from `first_day` to it lies in
    /// a year without its notice.
    fn deadline(&self, first_day: NaiveDate, at: NaiveDateTime) -> Deadline {
        let last_day = at.date();
        // A deadline exactly at midnight (an office period ending 24:00) spans only the day
        // before.
        let last_year = if at.time() == NaiveTime::MIN && last_day > first_day {
            last_day.pred_opt().unwrap_or(last_day).year()
        } else {
            last_day.year()
        };
        let provisional = (first_day.year()..=last_year).any(|year| !self.years.contains(&year));
        Deadline {
            at: to_utc(at),
            provisional,
        }
    }
}

/// Saturday or Sunday.
fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The local wall-clock time of an instant.
fn to_local(at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&SHANGHAI).naive_local()
}

/// The instant of a local wall-clock time; saturates at the end of the range.
fn to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    SHANGHAI
        .from_local_datetime(&local)
        .single()
        .map_or(saturated().at, |at| at.with_timezone(&Utc))
}

/// Seconds since local midnight, ignoring the sub-second part.
fn seconds_into_day(local: NaiveDateTime) -> i64 {
    (local - local.date().and_time(NaiveTime::MIN)).num_seconds()
}

/// A local instant `seconds` after midnight of `date` (86 400 gives the next midnight).
fn at_seconds(date: NaiveDate, seconds: i64) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN) + Duration::seconds(seconds)
}

/// The deadline given for amounts that run past [`LAST_DATE`].
fn saturated() -> Deadline {
    let local = LAST_DATE.and_time(LAST_TIME);
    Deadline {
        at: SHANGHAI
            .from_local_datetime(&local)
            .single()
            .map_or(DateTime::<Utc>::MAX_UTC, |at| at.with_timezone(&Utc)),
        provisional: true,
    }
}

/// 时限规则 — the shape of `fixtures/deadline-policy.json`: how long a unit has to receive
/// (签收) and to handle (办理) a case, and the fixed limits of the flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlinePolicy {
    /// Free text: where the limits come from and the choices made.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Receive (签收) limit, from transfer to receipt.
    pub receive: RuleTable,
    /// Handling (办理) limit, from receipt to completion.
    pub handle: RuleTable,
    /// Longest extension (延期) a transferrer may grant, in working days.
    pub extension_max_days: u32,
    /// Redo (重办) limit after an unsatisfied call-back.
    pub redo: WorkingTime,
    /// Call-back (回访) limit after completion.
    pub callback: WorkingTime,
    /// Return request (退回申请) limit after receipt.
    pub return_request: WorkingTime,
}

/// Rules tried in order; the first whose conditions all match gives the limit, else the
/// default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTable {
    /// The rules, first match wins.
    pub rules: Vec<LimitRule>,
    /// The limit when no rule matches.
    pub default: WorkingTime,
}

/// One rule: a limit for the cases matching every listed condition. An absent condition
/// matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    /// Request categories (诉求类别) this rule applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<Category>>,
    /// Case kinds (件别) this rule applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<Kind>>,
    /// Urgencies (紧急程度) this rule applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgencies: Option<Vec<Urgency>>,
    /// The limit for matching cases.
    pub limit: WorkingTime,
}

impl LimitRule {
    fn matches(&self, category: Category, kind: Kind, urgency: Urgency) -> bool {
        fn allows<T: PartialEq>(values: &Option<Vec<T>>, value: T) -> bool {
            values.as_ref().is_none_or(|values| values.contains(&value))
        }
        allows(&self.categories, category)
            && allows(&self.kinds, kind)
            && allows(&self.urgencies, urgency)
    }

    fn matches_everything(&self) -> bool {
        self.categories.is_none() && self.kinds.is_none() && self.urgencies.is_none()
    }

    fn has_empty_condition(&self) -> bool {
        self.categories.as_ref().is_some_and(Vec::is_empty)
            || self.kinds.as_ref().is_some_and(Vec::is_empty)
            || self.urgencies.as_ref().is_some_and(Vec::is_empty)
    }
}

impl RuleTable {
    fn pick(&self, category: Category, kind: Kind, urgency: Urgency) -> WorkingTime {
        self.rules
            .iter()
            .find(|rule| rule.matches(category, kind, urgency))
            .map_or(self.default, |rule| rule.limit)
    }

    fn validate(&self, table: &str) -> Result<(), CalendarError> {
        if self.default.is_zero() {
            return Err(CalendarError::ZeroLimit {
                what: format!("{table}.default"),
            });
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let what = format!("{table}.rules[{index}]");
            if rule.limit.is_zero() {
                return Err(CalendarError::ZeroLimit { what });
            }
            if rule.has_empty_condition() {
                return Err(CalendarError::EmptyCondition { what });
            }
            if rule.matches_everything() && index + 1 < self.rules.len() {
                return Err(CalendarError::UnreachableRules { what });
            }
        }
        Ok(())
    }
}

/// The receive and handling limits of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Receive (签收) limit, from transfer.
    pub receive: WorkingTime,
    /// Handling (办理) limit, from receipt.
    pub handle: WorkingTime,
}

impl DeadlinePolicy {
    /// Checks the policy can be used.
    ///
    /// # Errors
    ///
    /// - [`CalendarError::ZeroLimit`] if any limit, default or `extension_max_days` is zero;
    /// - [`CalendarError::EmptyCondition`] if a rule lists no value for a condition;
    /// - [`CalendarError::UnreachableRules`] if a rule matching everything hides later ones.
    pub fn validate(&self) -> Result<(), CalendarError> {
        self.receive.validate("receive")?;
        self.handle.validate("handle")?;
        let fixed = [
            (
                "extension_max_days",
                WorkingTime::Days(self.extension_max_days),
            ),
            ("redo", self.redo),
            ("callback", self.callback),
            ("return_request", self.return_request),
        ];
        for (what, limit) in fixed {
            if limit.is_zero() {
                return Err(CalendarError::ZeroLimit {
                    what: what.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The receive and handling limits for a case, by first matching rule of each table.
    pub fn limits(&self, category: Category, kind: Kind, urgency: Urgency) -> Limits {
        Limits {
            receive: self.receive.pick(category, kind, urgency),
            handle: self.handle.pick(category, kind, urgency),
        }
    }

    /// Longest extension (延期) a transferrer may grant, in working days.
    pub fn extension_max_days(&self) -> u32 {
        self.extension_max_days
    }

    /// Redo (重办) limit after an unsatisfied call-back.
    pub fn redo(&self) -> WorkingTime {
        self.redo
    }

    /// Call-back (回访) limit after completion.
    pub fn callback(&self) -> WorkingTime {
        self.callback
    }

    /// Return request (退回申请) limit after receipt.
    pub fn return_request_limit(&self) -> WorkingTime {
        self.return_request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALENDAR_JSON: &str = include_str!("../../fixtures/calendar.json");
    const POLICY_JSON: &str = include_str!("../../fixtures/deadline-policy.json");

    fn data() -> CalendarData {
        serde_json::from_str(CALENDAR_JSON).expect("calendar.json parses")
    }

    fn calendar() -> WorkingCalendar {
        WorkingCalendar::new(data()).expect("calendar.json validates")
    }

    fn policy() -> DeadlinePolicy {
        serde_json::from_str(POLICY_JSON).expect("deadline-policy.json parses")
    }

    /// A local Asia/Shanghai wall-clock time `YYYY-MM-DD HH:MM` as a UTC instant.
    fn at(text: &str) -> DateTime<Utc> {
        let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("test time");
        SHANGHAI
            .from_local_datetime(&local)
            .single()
            .expect("fixed offset")
            .with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
    }

    /// A deadline as local wall-clock time.
    fn shown(deadline: Deadline) -> String {
        deadline
            .at
            .with_timezone(&SHANGHAI)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    fn days(from: &str, n: u32) -> String {
        let deadline = calendar().add_working_days(at(from), n);
        assert!(
            !deadline.provisional,
            "{from} + {n} days is not provisional"
        );
        shown(deadline)
    }

    fn minutes(from: &str, n: u32) -> String {
        let deadline = calendar().add_working_minutes(at(from), n);
        assert!(
            !deadline.provisional,
            "{from} + {n} minutes is not provisional"
        );
        shown(deadline)
    }

    fn with_office_hours(periods: &[(&str, &str)]) -> CalendarData {
        let mut data = data();
        data.office_hours = periods
            .iter()
            .map(|(start, end)| OfficePeriod {
                start: ClockTime::parse(start).expect("test clock time"),
                end: ClockTime::parse(end).expect("test clock time"),
            })
            .collect();
        data
    }

    fn refused(data: CalendarData) -> CalendarError {
        WorkingCalendar::new(data).expect_err("the data is refused")
    }

    // Fixtures.

    #[test]
    fn calendar_fixture_parses_and_validates() {
        let calendar = calendar();
        assert_eq!(calendar.known_years(), vec![2024, 2025, 2026]);
        let data = data();
        assert!(!data.comment.is_empty(), "the source is recorded");
        for year in &data.years {
            assert!(
                year.notice.number.starts_with("国办发明电"),
                "{}",
                year.year
            );
            assert!(year.notice.title.contains(&year.year.to_string()));
        }
    }

    #[test]
    fn calendar_fixture_round_trips_through_json() {
        let data = data();
        let json = serde_json::to_string(&data).expect("serialises");
        let back: CalendarData = serde_json::from_str(&json).expect("parses again");
        assert_eq!(back, data);
    }

    #[test]
    fn calendar_fixture_counts_match_the_notices() {
        // Days off per notice (1+8+3+5+1+3+7, 1+8+3+5+3+8, 3+9+3+5+3+3+7) and make-up days.
        let data = data();
        for (year, days_off, make_ups) in [(2024, 28, 8), (2025, 28, 5), (2026, 33, 6)] {
            let year_data = data
                .years
                .iter()
                .find(|y| y.year == year)
                .expect("year present");
            let counted: i64 = year_data
                .holidays
                .iter()
                .map(|span| (span.to.unwrap_or(span.from) - span.from).num_days() + 1)
                .sum();
            assert_eq!(counted, days_off, "days off in {year}");
            assert_eq!(
                year_data.make_up_working_days.len(),
                make_ups,
                "make-up days in {year}"
            );
        }
    }

    #[test]
    fn policy_fixture_parses_and_validates() {
        let policy = policy();
        assert_eq!(policy.validate(), Ok(()));
        assert!(!policy.comment.is_empty(), "the choices are documented");
    }

    // Working days.

    #[test]
    fn weekdays_are_working_days_and_weekends_are_not() {
        let calendar = calendar();
        assert!(calendar.is_working_day(date("2025-03-07")));
        assert!(!calendar.is_working_day(date("2025-03-08")));
        assert!(!calendar.is_working_day(date("2025-03-09")));
        assert!(calendar.is_working_day(date("2025-03-10")));
    }

    #[test]
    fn spring_festival_2025_is_off_and_its_make_up_days_are_worked() {
        let calendar = calendar();
        assert!(
            calendar.is_working_day(date("2025-01-26")),
            "Sunday worked (调休上班)"
        );
        assert!(calendar.is_working_day(date("2025-01-27")));
        for day in date("2025-01-28").iter_days().take(8) {
            assert!(!calendar.is_working_day(day), "{day} is 春节");
        }
        assert!(calendar.is_working_day(date("2025-02-05")));
        assert!(
            calendar.is_working_day(date("2025-02-08")),
            "Saturday worked (调休上班)"
        );
        assert!(!calendar.is_working_day(date("2025-02-09")));
    }

    #[test]
    fn spring_festival_2025_deadlines_jump_the_break_and_use_the_make_up_sunday() {
        assert_eq!(days("2025-01-24 10:00", 1), "2025-01-26 10:00");
        assert_eq!(days("2025-01-24 10:00", 2), "2025-01-27 10:00");
        assert_eq!(days("2025-01-24 10:00", 3), "2025-02-05 10:00");
        assert_eq!(days("2025-01-27 10:00", 4), "2025-02-08 10:00");
    }

    #[test]
    fn spring_festival_2026_spans_nine_days_with_two_make_up_saturdays() {
        let calendar = calendar();
        assert!(
            calendar.is_working_day(date("2026-02-14")),
            "Saturday worked (调休上班)"
        );
        for day in date("2026-02-15").iter_days().take(9) {
            assert!(!calendar.is_working_day(day), "{day} is 春节");
        }
        assert!(calendar.is_working_day(date("2026-02-24")));
        assert!(
            calendar.is_working_day(date("2026-02-28")),
            "Saturday worked (调休上班)"
        );
        assert_eq!(days("2026-02-13 10:00", 1), "2026-02-14 10:00");
        assert_eq!(days("2026-02-13 10:00", 2), "2026-02-24 10:00");
        assert_eq!(days("2026-02-14 07:00", 1), "2026-02-14 18:00");
        assert_eq!(days("2026-02-17 10:00", 1), "2026-02-24 18:00");
    }

    #[test]
    fn national_day_2025_runs_eight_days_with_make_up_days() {
        let calendar = calendar();
        assert!(
            calendar.is_working_day(date("2025-09-28")),
            "Sunday worked (调休上班)"
        );
        for day in date("2025-10-01").iter_days().take(8) {
            assert!(!calendar.is_working_day(day), "{day} is 国庆节、中秋节");
        }
        assert!(calendar.is_working_day(date("2025-10-09")));
        assert!(
            calendar.is_working_day(date("2025-10-11")),
            "Saturday worked (调休上班)"
        );
        assert_eq!(days("2025-09-30 10:00", 1), "2025-10-09 10:00");
        assert_eq!(days("2025-09-26 10:00", 5), "2025-10-10 10:00");
        assert_eq!(days("2025-10-09 10:00", 2), "2025-10-11 10:00");
    }

    #[test]
    fn provisional_years_keep_weekends_and_the_fixed_statutory_dates() {
        let calendar = calendar();
        assert!(calendar.is_provisional(date("2027-05-03")));
        assert!(!calendar.is_provisional(date("2026-12-31")));
        assert!(calendar.is_provisional(date("2023-12-29")));
        assert!(!calendar.is_working_day(date("2027-01-01")));
        assert!(calendar.is_working_day(date("2027-01-04")));
        assert!(
            !calendar.is_working_day(date("2027-10-01")),
            "国庆节 on a Friday"
        );
        assert!(
            !calendar.is_working_day(date("2028-05-01")),
            "劳动节 on a Monday"
        );
        assert!(
            !calendar.is_working_day(date("2028-05-02")),
            "劳动节 on a Tuesday"
        );
        assert!(
            calendar.is_working_day(date("2027-05-03")),
            "3 May is not a fixed date"
        );
        assert!(
            !calendar.is_working_day(date("2027-01-02")),
            "weekends stay off"
        );
    }

    // N working days.

    #[test]
    fn friday_ten_plus_five_working_days_is_next_friday_ten() {
        assert_eq!(days("2025-03-07 10:00", 5), "2025-03-14 10:00");
    }

    #[test]
    fn saturday_plus_one_working_day_is_monday_close() {
        assert_eq!(days("2025-03-08 10:00", 1), "2025-03-10 18:00");
    }

    #[test]
    fn before_opening_counts_that_day_as_the_first() {
        assert_eq!(days("2025-03-10 07:00", 1), "2025-03-10 18:00");
        assert_eq!(days("2025-03-10 07:00", 2), "2025-03-11 18:00");
    }

    #[test]
    fn exactly_at_opening_is_treated_like_before_opening() {
        assert_eq!(days("2025-03-10 08:30", 1), "2025-03-10 18:00");
        assert_eq!(days("2025-03-10 08:30", 5), "2025-03-14 18:00");
        assert_eq!(days("2025-03-10 08:30", 0), "2025-03-10 08:30");
    }

    #[test]
    fn lunch_break_starts_the_clock_at_the_afternoon_opening() {
        assert_eq!(days("2025-03-10 12:00", 1), "2025-03-11 14:30");
        assert_eq!(days("2025-03-10 13:00", 1), "2025-03-11 14:30");
        assert_eq!(days("2025-03-10 14:30", 1), "2025-03-11 14:30");
        assert_eq!(days("2025-03-07 13:00", 1), "2025-03-10 14:30");
    }

    #[test]
    fn after_close_starts_the_clock_at_the_next_mornings_opening() {
        assert_eq!(days("2025-03-10 19:00", 1), "2025-03-11 18:00");
        assert_eq!(days("2025-03-07 19:00", 1), "2025-03-10 18:00");
    }

    #[test]
    fn exactly_at_close_is_after_close() {
        let calendar = calendar();
        assert!(!calendar.is_within_office_hours(at("2025-03-10 18:00")));
        assert!(calendar.is_within_office_hours(at("2025-03-10 17:59")));
        assert_eq!(days("2025-03-10 18:00", 1), "2025-03-11 18:00");
        assert_eq!(days("2025-03-10 17:59", 1), "2025-03-11 17:59");
    }

    #[test]
    fn zero_working_days_normalises_the_start() {
        assert_eq!(days("2025-03-08 10:00", 0), "2025-03-10 08:30");
        assert_eq!(days("2025-03-10 10:00", 0), "2025-03-10 10:00");
        assert_eq!(days("2025-03-10 13:00", 0), "2025-03-10 14:30");
        assert_eq!(days("2025-03-10 18:00", 0), "2025-03-11 08:30");
    }

    #[test]
    fn add_dispatches_on_the_unit() {
        let calendar = calendar();
        let from = at("2025-03-07 10:00");
        assert_eq!(
            calendar.add(from, WorkingTime::Days(5)),
            calendar.add_working_days(from, 5)
        );
        assert_eq!(
            calendar.add(from, WorkingTime::Minutes(90)),
            calendar.add_working_minutes(from, 90)
        );
    }

    #[test]
    fn seconds_of_the_start_are_kept() {
        let from = at("2025-03-07 10:00") + Duration::seconds(17);
        let deadline = calendar().add_working_days(from, 5);
        assert_eq!(deadline.at, at("2025-03-14 10:00") + Duration::seconds(17));
    }

    // Working minutes.

    #[test]
    fn working_minutes_cross_the_lunch_break() {
        assert_eq!(minutes("2025-03-10 11:30", 60), "2025-03-10 15:00");
    }

    #[test]
    fn working_minutes_running_out_at_a_period_end_give_that_end() {
        assert_eq!(minutes("2025-03-10 11:00", 60), "2025-03-10 12:00");
        assert_eq!(minutes("2025-03-10 17:00", 60), "2025-03-10 18:00");
    }

    #[test]
    fn working_minutes_cross_a_weekend() {
        assert_eq!(minutes("2025-03-07 17:00", 120), "2025-03-10 09:30");
    }

    #[test]
    fn working_minutes_from_outside_office_hours_start_at_the_next_opening() {
        assert_eq!(minutes("2025-03-08 10:00", 30), "2025-03-10 09:00");
        assert_eq!(minutes("2025-03-10 13:00", 30), "2025-03-10 15:00");
        assert_eq!(minutes("2025-03-10 18:00", 30), "2025-03-11 09:00");
        assert_eq!(minutes("2025-03-10 13:00", 0), "2025-03-10 14:30");
    }

    #[test]
    fn working_minutes_count_whole_days_of_seven_hours() {
        assert_eq!(minutes("2025-03-10 08:30", 3 * 420), "2025-03-12 18:00");
        assert_eq!(minutes("2025-03-10 10:00", 420), "2025-03-11 10:00");
        assert_eq!(minutes("2025-03-10 07:00", 420 + 1), "2025-03-11 08:31");
    }

    #[test]
    fn working_minutes_skip_a_holiday() {
        // 2 working hours before the 2025 Spring Festival break.
        assert_eq!(minutes("2025-01-27 17:00", 120), "2025-02-05 09:30");
    }

    #[test]
    fn working_days_agree_with_whole_days_of_working_minutes_over_the_known_years() {
        // Each working day has 420 office minutes, so from an opening or from inside office
        // hours n working days and n × 420 working minutes must land on the same instant.
        // (From the lunch break they differ only in name: the minutes end at 12:00, the
        // days at 14:30, the same point of working time.)
        let calendar = calendar();
        for day in date("2024-01-01")
            .iter_days()
            .take_while(|d| *d <= date("2026-12-20"))
        {
            for time in ["07:00", "08:30", "10:00", "15:45", "18:00"] {
                let from = at(&format!("{day} {time}"));
                for n in 1..=3 {
                    let by_days = calendar.add_working_days(from, n);
                    let by_minutes = calendar.add_working_minutes(from, n * 420);
                    assert_eq!(by_days, by_minutes, "{day} {time} + {n}");
                }
            }
        }
    }

    // Working time between two instants.

    /// Whole working minutes from `from` to `to` (local times), checked not provisional.
    fn between(from: &str, to: &str) -> u64 {
        let span = calendar().working_time_between(at(from), at(to));
        assert!(!span.provisional, "{from} to {to} is not provisional");
        span.minutes()
    }

    #[test]
    fn working_time_inside_one_office_period_is_the_clock_time() {
        assert_eq!(between("2025-03-10 10:00", "2025-03-10 11:00"), 60);
        assert_eq!(between("2025-03-10 08:30", "2025-03-10 12:00"), 210);
    }

    #[test]
    fn the_lunch_break_counts_nothing() {
        assert_eq!(between("2025-03-10 11:30", "2025-03-10 15:00"), 60);
        assert_eq!(between("2025-03-10 12:00", "2025-03-10 14:30"), 0);
    }

    #[test]
    fn a_whole_working_day_is_seven_hours_whatever_the_clock_says() {
        assert_eq!(between("2025-03-10 08:30", "2025-03-10 18:00"), 420);
        assert_eq!(between("2025-03-10 00:00", "2025-03-11 00:00"), 420);
        assert_eq!(between("2025-03-10 10:00", "2025-03-11 10:00"), 420);
        assert_eq!(between("2025-03-10 08:30", "2025-03-14 18:00"), 5 * 420);
    }

    #[test]
    fn nights_count_nothing() {
        assert_eq!(between("2025-03-10 18:00", "2025-03-11 08:30"), 0);
        assert_eq!(between("2025-03-10 17:00", "2025-03-11 09:00"), 90);
    }

    #[test]
    fn friday_afternoon_to_monday_morning_skips_the_weekend() {
        // Friday 17:00–18:00 and Monday 08:30–09:30: two working hours.
        assert_eq!(between("2025-03-07 17:00", "2025-03-10 09:30"), 120);
        let span = calendar().working_time_between(at("2025-03-07 17:00"), at("2025-03-10 09:30"));
        assert!((span.hours() - 2.0).abs() < 1e-12, "{}", span.hours());
        assert_eq!(between("2025-03-08 00:00", "2025-03-10 00:00"), 0);
    }

    #[test]
    fn a_holiday_break_counts_nothing() {
        // The 2025 Spring Festival break, 28 January to 4 February.
        assert_eq!(between("2025-01-27 17:00", "2025-02-05 09:30"), 120);
        // National Day and Mid-Autumn 2025, 1 to 8 October.
        assert_eq!(between("2025-09-30 17:00", "2025-10-09 09:30"), 120);
    }

    #[test]
    fn make_up_working_days_count_like_working_days() {
        // Friday, Saturday off, Sunday 26 January worked (调休上班), Monday.
        assert_eq!(
            between("2025-01-24 17:00", "2025-01-27 09:30"),
            60 + 420 + 60
        );
        // Friday, Saturday 14 February 2026 worked, nine days of Spring Festival, Tuesday.
        assert_eq!(
            between("2026-02-13 17:00", "2026-02-24 09:30"),
            60 + 420 + 60
        );
        assert_eq!(between("2026-02-14 00:00", "2026-02-15 00:00"), 420);
    }

    #[test]
    fn a_year_end_with_its_new_year_break_is_counted_from_both_notices() {
        // 31 December 2025 (Wednesday), 1–3 January 2026 off, Sunday 4 January worked.
        assert_eq!(
            between("2025-12-31 17:00", "2026-01-05 09:30"),
            60 + 420 + 60
        );
    }

    #[test]
    fn a_span_into_a_year_without_its_notice_is_provisional() {
        let calendar = calendar();
        // 1 January 2027 is a fixed statutory date, then a weekend.
        let span = calendar.working_time_between(at("2026-12-31 17:00"), at("2027-01-04 09:30"));
        assert_eq!(span.minutes(), 120);
        assert!(span.provisional);
        let from_before =
            calendar.working_time_between(at("2023-12-29 17:00"), at("2024-01-02 09:30"));
        assert_eq!(from_before.minutes(), 120, "1 January 2024 is off");
        assert!(from_before.provisional);
    }

    #[test]
    fn a_start_outside_office_hours_counts_from_the_next_opening() {
        assert_eq!(
            between("2025-03-08 10:00", "2025-03-10 09:00"),
            30,
            "Saturday"
        );
        assert_eq!(
            between("2025-03-10 07:00", "2025-03-10 09:00"),
            30,
            "before opening"
        );
        assert_eq!(between("2025-03-10 13:00", "2025-03-10 15:00"), 30, "lunch");
        assert_eq!(
            between("2025-03-07 19:00", "2025-03-10 09:00"),
            30,
            "Friday night"
        );
    }

    #[test]
    fn an_end_outside_office_hours_counts_to_the_last_close() {
        assert_eq!(
            between("2025-03-10 10:00", "2025-03-10 13:00"),
            120,
            "lunch"
        );
        assert_eq!(
            between("2025-03-10 10:00", "2025-03-10 20:00"),
            120 + 210,
            "evening"
        );
        assert_eq!(
            between("2025-03-07 17:00", "2025-03-08 10:00"),
            60,
            "Saturday"
        );
        assert_eq!(
            between("2025-01-27 17:00", "2025-01-30 10:00"),
            60,
            "holiday"
        );
    }

    #[test]
    fn a_reversed_or_empty_interval_is_zero() {
        assert_eq!(between("2025-03-10 11:00", "2025-03-10 10:00"), 0);
        assert_eq!(between("2025-03-14 10:00", "2025-03-10 10:00"), 0);
        assert_eq!(between("2025-03-10 10:00", "2025-03-10 10:00"), 0);
        let span = calendar().working_time_between(at("2025-03-10 11:00"), at("2025-03-10 10:00"));
        assert_eq!(span.duration, Duration::zero());
    }

    #[test]
    fn seconds_count_and_minutes_round_down() {
        let from = at("2025-03-10 10:00");
        let span = calendar().working_time_between(from, from + Duration::seconds(59));
        assert_eq!(span.duration, Duration::seconds(59));
        assert_eq!(span.minutes(), 0);
        let nanos = Duration::nanoseconds(1_500);
        let span = calendar().working_time_between(from + nanos, at("2025-03-10 11:00"));
        assert_eq!(span.duration, Duration::minutes(60) - nanos);
    }

    #[test]
    fn office_hours_ending_at_midnight_are_measured() {
        let calendar =
            WorkingCalendar::new(with_office_hours(&[("20:00", "24:00")])).expect("valid");
        let span = calendar.working_time_between(at("2025-03-10 23:00"), at("2025-03-11 20:30"));
        assert_eq!(span.minutes(), 90);
        // Ending at midnight the span touches only 2026, which has its notice.
        let span = calendar.working_time_between(at("2026-12-31 20:00"), at("2027-01-01 00:00"));
        assert_eq!(span.minutes(), 240);
        assert!(!span.provisional);
    }

    #[test]
    fn extreme_instants_neither_panic_nor_walk_forever() {
        let calendar = calendar();
        let to_the_end =
            calendar.working_time_between(at("2025-03-10 10:00"), DateTime::<Utc>::MAX_UTC);
        assert!(to_the_end.provisional);
        // About 250 working days of 7 hours a year for almost 8000 years.
        assert!(to_the_end.duration > Duration::hours(7 * 240 * 7_900));
        let from_the_start =
            calendar.working_time_between(DateTime::<Utc>::MIN_UTC, at("2025-03-10 10:00"));
        assert!(from_the_start.provisional);
        assert!(from_the_start.duration > Duration::zero());
        let past_the_end = calendar.working_time_between(
            DateTime::<Utc>::MAX_UTC - Duration::days(1),
            DateTime::<Utc>::MAX_UTC,
        );
        assert_eq!(past_the_end.duration, Duration::zero());
        assert!(past_the_end.provisional);
    }

    #[test]
    fn counting_working_days_agrees_with_asking_day_by_day() {
        // Also with a notice reaching into the December of a year without one.
        let mut reaching = data();
        reaching.years[0].holidays[0].from = date("2023-12-29");
        for calendar in [calendar(), WorkingCalendar::new(reaching).expect("valid")] {
            let days: Vec<NaiveDate> = date("2022-12-01")
                .iter_days()
                .take_while(|d| *d <= date("2028-01-31"))
                .collect();
            // Prefix sums of the day-by-day answer, compared on many ranges.
            let mut prefix = vec![0i64];
            for day in &days {
                let last = prefix[prefix.len() - 1];
                prefix.push(last + i64::from(calendar.is_working_day(*day)));
            }
            for (i, from) in days.iter().enumerate().step_by(13) {
                for (j, to) in days.iter().enumerate().skip(i).step_by(29) {
                    assert_eq!(
                        calendar.count_working_days(*from, *to),
                        prefix[j] - prefix[i],
                        "{from}..{to}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]

        /// Adding `m` working minutes to any instant of 2024–2026 and measuring back gives `m`.
        #[test]
        fn measuring_undoes_adding_working_minutes(
            offset in 0i64..3 * 366 * 86_400,
            nanos in 0i64..1_000_000_000,
            m in 0u32..30_000,
        ) {
            let calendar = calendar();
            let t = at("2024-01-01 00:00") + Duration::seconds(offset) + Duration::nanoseconds(nanos);
            let deadline = calendar.add_working_minutes(t, m);
            let span = calendar.working_time_between(t, deadline.at);
            proptest::prop_assert_eq!(span.duration, Duration::minutes(i64::from(m)));
            proptest::prop_assert_eq!(calendar.working_minutes_between(t, deadline.at), u64::from(m));
            proptest::prop_assert_eq!(span.provisional, deadline.provisional);
        }

        /// The measure is monotone in both ends and additive over a split.
        #[test]
        fn measuring_is_monotone_and_additive(
            mut offsets in proptest::collection::vec(0i64..3 * 366 * 86_400, 3),
        ) {
            let calendar = calendar();
            offsets.sort_unstable();
            let [a, b, c] = [0, 1, 2].map(|i| at("2024-01-01 00:00") + Duration::seconds(offsets[i]));
            let between = |x, y| calendar.working_time_between(x, y).duration;
            proptest::prop_assert!(between(a, b) <= between(a, c));
            proptest::prop_assert!(between(b, c) <= between(a, c));
            proptest::prop_assert_eq!(between(a, b) + between(b, c), between(a, c));
            proptest::prop_assert_eq!(between(c, a), Duration::zero());
        }
    }

    proptest::proptest! {
        // Each case walks up to four days minute by minute.
        #![proptest_config(proptest::test_runner::Config::with_cases(128))]

        /// On whole minutes the measure is the number of minutes inside office hours.
        #[test]
        fn measuring_counts_the_minutes_inside_office_hours(
            start in 0i64..3 * 366 * 24 * 60,
            length in 0i64..4 * 24 * 60,
        ) {
            let calendar = calendar();
            let from = at("2024-01-01 00:00") + Duration::minutes(start);
            let inside = (0..length)
                .filter(|i| calendar.is_within_office_hours(from + Duration::minutes(*i)))
                .count();
            proptest::prop_assert_eq!(
                calendar.working_minutes_between(from, from + Duration::minutes(length)),
                inside as u64
            );
        }
    }

    // Office hours.

    #[test]
    fn office_hours_hold_on_make_up_days_and_not_on_holidays() {
        let calendar = calendar();
        assert!(calendar.is_within_office_hours(at("2026-02-28 10:00")));
        assert!(!calendar.is_within_office_hours(at("2026-02-21 10:00")));
        assert!(!calendar.is_within_office_hours(at("2025-03-10 13:00")));
        assert!(calendar.is_within_office_hours(at("2025-03-10 08:30")));
        assert!(!calendar.is_within_office_hours(at("2025-03-10 08:29")));
    }

    #[test]
    fn the_previous_working_day_skips_weekends_and_breaks_and_counts_make_up_days() {
        let calendar = calendar();
        let previous = |day: &str| {
            calendar
                .previous_working_day(date(day))
                .map(|d| d.to_string())
        };
        assert_eq!(previous("2025-03-11").as_deref(), Some("2025-03-10"));
        assert_eq!(
            previous("2025-03-10").as_deref(),
            Some("2025-03-07"),
            "Monday"
        );
        assert_eq!(
            previous("2025-03-09").as_deref(),
            Some("2025-03-07"),
            "Sunday"
        );
        assert_eq!(
            previous("2025-02-05").as_deref(),
            Some("2025-01-27"),
            "after the Spring Festival break"
        );
        assert_eq!(
            previous("2025-01-27").as_deref(),
            Some("2025-01-26"),
            "a make-up Sunday (调休上班)"
        );
        assert_eq!(calendar.previous_working_day(NaiveDate::MIN), None);
    }

    // Provisional years.

    #[test]
    fn year_end_into_a_provisional_year_is_flagged() {
        let calendar = calendar();
        let deadline = calendar.add_working_days(at("2026-12-31 15:00"), 3);
        assert_eq!(
            shown(deadline),
            "2027-01-06 15:00",
            "1 January 2027 is off, then a weekend"
        );
        assert!(deadline.provisional);
        let inside = calendar.add_working_days(at("2026-12-30 15:00"), 1);
        assert_eq!(shown(inside), "2026-12-31 15:00");
        assert!(!inside.provisional);
        let minutes = calendar.add_working_minutes(at("2026-12-31 17:00"), 120);
        assert_eq!(shown(minutes), "2027-01-04 09:30");
        assert!(minutes.provisional);
    }

    #[test]
    fn a_start_in_a_provisional_year_is_flagged() {
        let deadline = calendar().add_working_days(at("2023-12-29 10:00"), 1);
        assert_eq!(shown(deadline), "2024-01-02 10:00", "1 January 2024 is off");
        assert!(deadline.provisional);
    }

    #[test]
    fn amounts_past_year_9999_saturate_as_provisional() {
        let deadline = calendar().add_working_days(at("2025-03-10 10:00"), u32::MAX);
        assert!(deadline.provisional);
        assert_eq!(shown(deadline), "9999-12-31 23:59");
    }

    // Validation.

    #[test]
    fn make_up_day_that_is_also_a_holiday_is_refused() {
        let mut data = data();
        data.years[0].make_up_working_days.push(MakeUpDay {
            date: date("2024-02-10"),
            name: "春节".to_owned(),
        });
        assert_eq!(
            refused(data),
            CalendarError::HolidayIsMakeUpDay {
                date: date("2024-02-10")
            }
        );
    }

    #[test]
    fn overlapping_holidays_are_refused_with_both_names() {
        let mut data = data();
        data.years[1].holidays.push(HolidaySpan {
            name: "元宵节".to_owned(),
            from: date("2025-02-04"),
            to: Some(date("2025-02-06")),
        });
        let err = refused(data);
        assert_eq!(
            err,
            CalendarError::HolidaysOverlap {
                first_year: 2025,
                first: "春节".to_owned(),
                second_year: 2025,
                second: "元宵节".to_owned(),
                date: date("2025-02-04")
            }
        );
        assert_eq!(
            err.message(),
            "2025 年的节假日「元宵节」与「春节」重叠（2025-02-04）"
        );
    }

    #[test]
    fn a_new_year_break_overlapping_the_previous_notice_is_refused() {
        let mut data = data();
        data.years[0].holidays.push(HolidaySpan {
            name: "跨年".to_owned(),
            from: date("2024-12-31"),
            to: None,
        });
        data.years[1].holidays[0].from = date("2024-12-31");
        data.years[1].holidays[0].to = Some(date("2025-01-01"));
        let err = refused(data);
        assert_eq!(
            err,
            CalendarError::HolidaysOverlap {
                first_year: 2024,
                first: "跨年".to_owned(),
                second_year: 2025,
                second: "元旦".to_owned(),
                date: date("2024-12-31")
            }
        );
        assert_eq!(
            err.message(),
            "2025 年的节假日「元旦」与 2024 年的「跨年」重叠（2024-12-31）"
        );
    }

    #[test]
    fn a_new_year_break_over_the_previous_notices_make_up_day_is_refused() {
        let mut data = data();
        data.years[0].make_up_working_days.push(MakeUpDay {
            date: date("2024-12-29"),
            name: "元旦".to_owned(),
        });
        data.years[1].holidays[0].from = date("2024-12-29");
        data.years[1].holidays[0].to = Some(date("2025-01-01"));
        assert_eq!(
            refused(data),
            CalendarError::HolidayIsMakeUpDay {
                date: date("2024-12-29")
            }
        );
    }

    #[test]
    fn a_make_up_day_listed_twice_is_refused() {
        let mut data = data();
        let again = data.years[1].make_up_working_days[0].clone();
        data.years[1].make_up_working_days.push(again);
        assert_eq!(
            refused(data),
            CalendarError::DayListedTwice {
                date: date("2025-01-26")
            }
        );
    }

    #[test]
    fn reversed_holiday_range_is_refused() {
        let mut data = data();
        data.years[1].holidays[0].to = Some(date("2024-12-31"));
        assert!(matches!(
            refused(data),
            CalendarError::ReversedHolidayRange { .. }
        ));
    }

    #[test]
    fn make_up_day_on_a_weekday_is_refused() {
        let mut data = data();
        data.years[2].make_up_working_days[0].date = date("2026-01-05");
        assert_eq!(
            refused(data),
            CalendarError::MakeUpDayNotWeekend {
                date: date("2026-01-05")
            }
        );
    }

    #[test]
    fn duplicate_year_is_refused() {
        let mut data = data();
        let copy = data.years[2].clone();
        data.years.push(copy);
        assert_eq!(refused(data), CalendarError::DuplicateYear { year: 2026 });
    }

    #[test]
    fn date_outside_the_notice_year_is_refused() {
        let mut data = data();
        data.years[0].holidays.push(HolidaySpan {
            name: "国庆节".to_owned(),
            from: date("2025-10-01"),
            to: None,
        });
        assert_eq!(
            refused(data),
            CalendarError::DateOutsideNoticeYear {
                year: 2024,
                date: date("2025-10-01")
            }
        );
    }

    #[test]
    fn a_date_of_the_previous_year_before_december_is_refused() {
        let mut data = data();
        data.years[1].holidays.push(HolidaySpan {
            name: "国庆节".to_owned(),
            from: date("2024-11-30"),
            to: None,
        });
        assert_eq!(
            refused(data),
            CalendarError::DateOutsideNoticeYear {
                year: 2025,
                date: date("2024-11-30")
            }
        );
    }

    #[test]
    fn new_year_break_starting_in_the_previous_december_is_accepted() {
        let mut data = data();
        data.years[0].holidays[0].from = date("2023-12-30");
        data.years[0].holidays[0].to = Some(date("2024-01-01"));
        let calendar = WorkingCalendar::new(data).expect("valid");
        assert!(!calendar.is_working_day(date("2024-01-01")));
    }

    #[test]
    fn unsorted_office_periods_are_refused() {
        let data = with_office_hours(&[("14:30", "18:00"), ("08:30", "12:00")]);
        assert!(matches!(
            refused(data),
            CalendarError::OfficePeriodsOutOfOrder { .. }
        ));
    }

    #[test]
    fn overlapping_office_periods_are_refused() {
        let data = with_office_hours(&[("08:30", "12:00"), ("11:30", "18:00")]);
        assert!(matches!(
            refused(data),
            CalendarError::OfficePeriodsOutOfOrder { .. }
        ));
    }

    #[test]
    fn empty_office_period_is_refused() {
        let data = with_office_hours(&[("12:00", "12:00")]);
        assert!(matches!(
            refused(data),
            CalendarError::EmptyOfficePeriod { .. }
        ));
    }

    #[test]
    fn calendar_without_office_hours_is_refused() {
        assert_eq!(
            refused(with_office_hours(&[])),
            CalendarError::NoOfficeHours
        );
    }

    #[test]
    fn malformed_clock_times_are_refused() {
        for text in ["8:30", "24:01", "12:60", "noon", "12-00", "+1:30"] {
            assert!(ClockTime::parse(text).is_err(), "{text}");
        }
        assert_eq!(ClockTime::parse("24:00").map(ClockTime::minutes), Ok(1440));
        let json = r#"{"office_hours":[{"start":"8:30","end":"12:00"}],"years":[]}"#;
        assert!(serde_json::from_str::<CalendarData>(json).is_err());
    }

    #[test]
    fn unknown_fields_in_calendar_data_are_refused() {
        let json = r#"{"office_hours":[],"years":[],"holiday":[]}"#;
        assert!(serde_json::from_str::<CalendarData>(json).is_err());
    }

    #[test]
    fn office_hours_ending_at_midnight_work() {
        let calendar =
            WorkingCalendar::new(with_office_hours(&[("20:00", "24:00")])).expect("valid");
        let deadline = calendar.add_working_days(at("2025-03-10 07:00"), 1);
        assert_eq!(shown(deadline), "2025-03-11 00:00");
        assert!(!deadline.provisional);
        assert_eq!(
            shown(calendar.add_working_minutes(at("2025-03-10 23:00"), 90)),
            "2025-03-11 20:30"
        );
    }

    #[test]
    fn policy_refusals_name_the_limit_in_chinese() {
        let message = |what: &str| CalendarError::ZeroLimit { what: what.into() }.message();
        assert_eq!(message("handle.rules[2]"), "办理时限第 3 条规则不能为零");
        assert_eq!(message("receive.default"), "签收时限的默认值不能为零");
        assert_eq!(message("extension_max_days"), "延期上限不能为零");
        assert_eq!(message("return_request"), "退回申请时限不能为零");
    }

    // Deadline policy.

    #[test]
    fn receive_limits_follow_urgency() {
        let policy = policy();
        let receive = |urgency| {
            policy
                .limits(Category::Complaint, Kind::Escalated, urgency)
                .receive
        };
        assert_eq!(receive(Urgency::Normal), WorkingTime::Minutes(120));
        assert_eq!(receive(Urgency::Urgent), WorkingTime::Minutes(60));
        assert_eq!(receive(Urgency::Critical), WorkingTime::Minutes(30));
    }

    #[test]
    fn handling_limits_follow_category_kind_and_urgency() {
        let policy = policy();
        let handle = |category, kind, urgency| policy.limits(category, kind, urgency).handle;
        let normal = Urgency::Normal;
        assert_eq!(
            handle(Category::Inquiry, Kind::Escalated, normal),
            WorkingTime::Days(1)
        );
        assert_eq!(
            handle(Category::HelpRequest, Kind::Escalated, normal),
            WorkingTime::Days(5)
        );
        assert_eq!(
            handle(Category::Complaint, Kind::Promised, normal),
            WorkingTime::Days(5)
        );
        assert_eq!(
            handle(Category::Report, Kind::Escalated, normal),
            WorkingTime::Days(5)
        );
        assert_eq!(
            handle(Category::Proposal, Kind::Escalated, normal),
            WorkingTime::Days(10)
        );
        assert_eq!(
            handle(Category::Praise, Kind::Escalated, normal),
            WorkingTime::Days(1)
        );
        assert_eq!(
            handle(Category::Complaint, Kind::Suggestion, normal),
            WorkingTime::Days(10)
        );
        let critical = Urgency::Critical;
        assert_eq!(
            handle(Category::Complaint, Kind::Escalated, critical),
            WorkingTime::Days(1)
        );
        assert_eq!(
            handle(Category::Proposal, Kind::Escalated, critical),
            WorkingTime::Days(10)
        );
        assert_eq!(
            handle(Category::Complaint, Kind::Escalated, Urgency::Urgent),
            WorkingTime::Days(5)
        );
    }

    #[test]
    fn fixed_limits_follow_the_design() {
        let policy = policy();
        assert_eq!(policy.extension_max_days(), 10);
        assert_eq!(policy.redo(), WorkingTime::Days(3));
        assert_eq!(policy.callback(), WorkingTime::Days(1));
        assert_eq!(policy.return_request_limit(), WorkingTime::Days(2));
    }

    #[test]
    fn first_matching_rule_wins_and_the_default_catches_the_rest() {
        let policy = DeadlinePolicy {
            comment: String::new(),
            receive: RuleTable {
                rules: vec![],
                default: WorkingTime::Minutes(45),
            },
            handle: RuleTable {
                rules: vec![
                    LimitRule {
                        categories: Some(vec![Category::Inquiry]),
                        kinds: None,
                        urgencies: None,
                        limit: WorkingTime::Days(2),
                    },
                    LimitRule {
                        categories: Some(vec![Category::Inquiry, Category::Complaint]),
                        kinds: None,
                        urgencies: None,
                        limit: WorkingTime::Days(7),
                    },
                ],
                default: WorkingTime::Days(4),
            },
            extension_max_days: 5,
            redo: WorkingTime::Days(1),
            callback: WorkingTime::Days(1),
            return_request: WorkingTime::Days(1),
        };
        assert_eq!(policy.validate(), Ok(()));
        let limits = |category| policy.limits(category, Kind::Escalated, Urgency::Normal);
        assert_eq!(limits(Category::Inquiry).handle, WorkingTime::Days(2));
        assert_eq!(limits(Category::Complaint).handle, WorkingTime::Days(7));
        assert_eq!(limits(Category::Report).handle, WorkingTime::Days(4));
        assert_eq!(limits(Category::Report).receive, WorkingTime::Minutes(45));
    }

    #[test]
    fn zero_limits_are_refused() {
        let mut zero_rule = policy();
        zero_rule.handle.rules[1].limit = WorkingTime::Days(0);
        assert_eq!(
            zero_rule.validate(),
            Err(CalendarError::ZeroLimit {
                what: "handle.rules[1]".to_owned()
            })
        );
        let mut zero_default = policy();
        zero_default.receive.default = WorkingTime::Minutes(0);
        assert_eq!(
            zero_default.validate(),
            Err(CalendarError::ZeroLimit {
                what: "receive.default".to_owned()
            })
        );
        let mut zero_extension = policy();
        zero_extension.extension_max_days = 0;
        assert_eq!(
            zero_extension.validate(),
            Err(CalendarError::ZeroLimit {
                what: "extension_max_days".to_owned()
            })
        );
        let mut zero_redo = policy();
        zero_redo.redo = WorkingTime::Days(0);
        assert!(zero_redo.validate().is_err());
    }

    #[test]
    fn rules_that_can_never_match_are_refused() {
        let mut empty = policy();
        empty.handle.rules[0].kinds = Some(vec![]);
        assert_eq!(
            empty.validate(),
            Err(CalendarError::EmptyCondition {
                what: "handle.rules[0]".to_owned()
            })
        );
        let mut shadowing = policy();
        shadowing.receive.rules[0].urgencies = None;
        assert_eq!(
            shadowing.validate(),
            Err(CalendarError::UnreachableRules {
                what: "receive.rules[0]".to_owned()
            })
        );
    }

    // JSON shapes.

    #[test]
    fn working_time_is_written_as_a_one_key_object() {
        assert_eq!(
            serde_json::to_value(WorkingTime::Minutes(120)).expect("serialises"),
            serde_json::json!({"minutes": 120})
        );
        assert_eq!(
            serde_json::from_value::<WorkingTime>(serde_json::json!({"days": 5})).expect("parses"),
            WorkingTime::Days(5)
        );
    }

    #[test]
    fn deadline_round_trips_through_json() {
        let deadline = calendar().add_working_days(at("2026-12-31 15:00"), 3);
        let json = serde_json::to_value(deadline).expect("serialises");
        assert_eq!(json["provisional"], serde_json::json!(true));
        let back: Deadline = serde_json::from_value(json).expect("parses");
        assert_eq!(back, deadline);
    }
}
