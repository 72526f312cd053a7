//! One case's year, simulated: the commands the people of the hotline would issue, each run
//! through `domain::decide` at its own simulated time, and the records the overdue sweep would
//! add between them.
//!
//! A case's whole life is worked out when it arrives. The main script (accept, answer or
//! transfer, receive, pass on, handle, complete, call back, reopen, archive) runs in time
//! order; what other people do meanwhile (co-handlers of a joint case, leaders' annotations,
//! manual supervision) waits in a small queue and runs when the script's clock passes it; the
//! overdue sweep's warnings and automatic supervision are worked out from the case's state
//! between any two of those, tick by tick as the service would record them. Nothing happens
//! after the end of the simulated period: a case still open then stays open (and often
//! overdue).
//!
//! A command the rules refuse is a bug of the script: the case stops there, and the refusal is
//! counted (tests require none).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use domain::calendar::{DeadlinePolicy, WorkingCalendar, WorkingTime};
use domain::case::AssignmentState;
use domain::event::DeadlineKind;
use domain::kinds::{Category, Kind, Urgency};
use domain::org::{Level, OrgTree, Unit, UnitId, UnitKind};
use domain::roles::{Actor, Role};
use domain::{
    Case, CaseError, CaseId, Command, Context, Intake, Satisfaction, Stage, decide, evolve,
};
use rand::{Rng as _, SeedableRng as _};
use uuid::Uuid;

use super::mix::{Mix, Rng, Slot, Template, Weighted};
use crate::app::Retry;
use crate::app::pipeline::encode_all;
use crate::dispatch::Dispatch;
use crate::store::{ExpectedVersion, ImportAppend};

/// What does not change while cases are generated: the mix, the fixtures' rules and tree, who
/// acts for each unit, where citizens live, and the overdue sweep's rhythm.
pub struct World<'a> {
    pub(super) mix: &'a Mix,
    org: &'a OrgTree,
    calendar: &'a WorkingCalendar,
    policy: &'a DeadlinePolicy,
    dispatch: &'a Dispatch,
    /// The end of the simulated period: nothing happens after it.
    pub(super) end: DateTime<Utc>,
    /// Operators and shift leaders of the city centre (受理, 即办, 回访, 归档).
    operators: Vec<Actor>,
    /// Who acts for each unit that receives cases (a district centre's dispatcher, a unit's
    /// handlers; the city centre's dispatchers for the root).
    unit_actors: HashMap<UnitId, Vec<Actor>>,
    leaders: Vec<Actor>,
    /// Supervisors: the efficiency office's first, then the districts'.
    supervisors: Vec<Actor>,
    /// District centre → its short name (城关区).
    district_names: HashMap<UnitId, String>,
    /// District centre → units of each level inside it (district, street, community, grid,
    /// building).
    places: HashMap<UnitId, [Vec<UnitId>; 5]>,
    districts: Weighted<UnitId>,
    children: HashMap<UnitId, Vec<UnitId>>,
    bureaus: Vec<UnitId>,
    district_centres: Vec<UnitId>,
    articles: Vec<Article>,
    /// Topics by month (index 0 = January), weighted by their seasons.
    topics_by_month: Vec<Weighted<usize>>,
    /// Articles by month, weighted by the seasons of their categories.
    articles_by_month: Vec<Weighted<usize>>,
    sweep: Sweep,
}

/// A knowledge-base article the operators answer from.
pub struct Article {
    id: String,
    title: String,
    questions: Vec<String>,
    /// The first sentences of the body, read to the caller.
    answer: String,
    /// The article's category (a theme).
    theme: String,
}

impl Article {
    /// From a fixture article.
    pub fn new(id: &str, title: &str, questions: &[String], body: &str, category: &str) -> Self {
        let mut answer = String::new();
        for sentence in body.split_inclusive('。') {
            if !answer.is_empty() && answer.chars().count() + sentence.chars().count() > 160 {
                break;
            }
            answer.push_str(sentence);
        }
        Article {
            id: id.to_owned(),
            title: title.to_owned(),
            questions: questions.to_vec(),
            answer,
            theme: category.to_owned(),
        }
    }
}

/// The overdue sweep's rhythm and what it records as.
struct Sweep {
    actor: Actor,
    /// A tick of the schedule; ticks are `anchor + k × interval`.
    anchor: DateTime<Utc>,
    interval: Duration,
    window: WorkingTime,
}

impl Sweep {
    /// The first tick at or after `t`.
    fn tick_at_or_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if t <= self.anchor {
            return self.anchor;
        }
        let step = self.interval.num_nanoseconds().unwrap_or(1).max(1);
        let since = (t - self.anchor).num_nanoseconds().unwrap_or(i64::MAX);
        let k = (since + step - 1) / step;
        self.anchor + Duration::nanoseconds(k * step)
    }

    /// When the sweep of tick `t` reaches a case: a fixed moment after the tick, as a real
    /// sweep takes a little while after it wakes.
    fn run_at(t: DateTime<Utc>) -> DateTime<Utc> {
        let spread = (t.timestamp() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
        t + Duration::nanoseconds(20_000_000 + (spread % 900_000_000) as i64)
    }
}

fn is_handling_unit(kind: UnitKind) -> bool {
    matches!(
        kind,
        UnitKind::Bureau
            | UnitKind::DistrictCentre
            | UnitKind::DistrictDepartment
            | UnitKind::StreetOffice
            | UnitKind::CommunityCommittee
            | UnitKind::GridStation
    )
}

/// The login name of a unit's worker where the demo users have none (grid stations), in the
/// fixtures' pattern: `d.chengguan.s01.c01.g01` → `chengguan_s01_c01_g01_handler`.
fn synthetic_username(unit: &UnitId) -> String {
    let id = unit.as_str();
    let id = id.strip_prefix("d.").unwrap_or(id);
    let id = id.strip_prefix("city.bureau.").unwrap_or(id);
    format!("{}_handler", id.replace('.', "_"))
}

fn level_index(level: Level) -> usize {
    match level {
        Level::City | Level::District => 0,
        Level::Street => 1,
        Level::Community => 2,
        Level::Grid => 3,
        Level::Building => 4,
    }
}

impl<'a> World<'a> {
    /// Checks the mix against the tree and gathers what generating needs. `actors` are the
    /// users of the data directory; `end` the end of the simulated period.
    ///
    /// # Errors
    /// A mix that names units the tree lacks, roles nobody has, or a sweep schedule without a
    /// fixed period.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mix: &'a Mix,
        org: &'a OrgTree,
        calendar: &'a WorkingCalendar,
        policy: &'a DeadlinePolicy,
        dispatch: &'a Dispatch,
        actors: &[Actor],
        articles: Vec<Article>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> anyhow::Result<World<'a>> {
        let root = org.root().id.clone();
        let at_root = |a: &&Actor| a.unit_id == root;
        let operators: Vec<Actor> = actors
            .iter()
            .filter(at_root)
            .filter(|a| a.has_any(&[Role::Operator, Role::ShiftLeader]))
            .cloned()
            .collect();
        anyhow::ensure!(
            !operators.is_empty(),
            "no operator or shift leader at the city centre"
        );
        let mut unit_actors: HashMap<UnitId, Vec<Actor>> = HashMap::new();
        let dispatchers: Vec<Actor> = actors
            .iter()
            .filter(at_root)
            .filter(|a| a.has(Role::Dispatcher))
            .cloned()
            .collect();
        anyhow::ensure!(!dispatchers.is_empty(), "no dispatcher at the city centre");
        unit_actors.insert(root.clone(), dispatchers);
        let mut children: HashMap<UnitId, Vec<UnitId>> = HashMap::new();
        let mut bureaus = Vec::new();
        let mut district_centres = Vec::new();
        let mut district_names = HashMap::new();
        let mut places: HashMap<UnitId, [Vec<UnitId>; 5]> = HashMap::new();
        for unit in org.units() {
            if let Some(parent) = &unit.parent_id {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(unit.id.clone());
            }
            match unit.kind {
                UnitKind::Bureau => bureaus.push(unit.id.clone()),
                UnitKind::DistrictCentre => {
                    district_centres.push(unit.id.clone());
                    let short = unit
                        .name
                        .split("12345")
                        .next()
                        .unwrap_or(&unit.name)
                        .to_owned();
                    district_names.insert(unit.id.clone(), short);
                }
                _ => {}
            }
            if let Some(district) = org.district_of(&unit.id)
                && (unit.kind == UnitKind::DistrictCentre || unit.level > Level::District)
            {
                places.entry(district.id.clone()).or_default()[level_index(unit.level)]
                    .push(unit.id.clone());
            }
            if !is_handling_unit(unit.kind) {
                continue;
            }
            let role = if unit.kind == UnitKind::DistrictCentre {
                Role::Dispatcher
            } else {
                Role::Handler
            };
            let mut list: Vec<Actor> = actors
                .iter()
                .filter(|a| a.unit_id == unit.id && a.has(role))
                .cloned()
                .collect();
            if list.is_empty() {
                anyhow::ensure!(
                    unit.kind != UnitKind::DistrictCentre,
                    "district centre `{}` has no dispatcher",
                    unit.id
                );
                list.push(Actor {
                    username: synthetic_username(&unit.id),
                    unit_id: unit.id.clone(),
                    roles: vec![Role::Handler],
                    oversees: Vec::new(),
                });
            }
            unit_actors.insert(unit.id.clone(), list);
        }
        let mut districts = Vec::new();
        for (id, share) in &mix.locations.districts {
            let id = UnitId::new(id.clone());
            anyhow::ensure!(
                org.get(&id)
                    .is_some_and(|u| u.kind == UnitKind::DistrictCentre),
                "the load mix names `{id}` in `locations.districts`, which is not a district centre of the tree"
            );
            districts.push((id, *share));
        }
        let districts = Weighted::new(districts).map_err(anyhow::Error::msg)?;
        for topic in &mix.topics {
            for slug in &topic.joint_with {
                anyhow::ensure!(
                    slug == "district"
                        || org
                            .get(&UnitId::new(format!("{root}.bureau.{slug}")))
                            .is_some(),
                    "topic `{}` of the load mix names `{slug}` in `joint_with`, which is neither `district` nor a bureau of the tree",
                    topic.id
                );
            }
        }
        let leaders: Vec<Actor> = actors
            .iter()
            .filter(|a| {
                a.has(Role::Leader)
                    && org
                        .get(&a.unit_id)
                        .is_some_and(|u| matches!(u.level, Level::City | Level::District))
            })
            .cloned()
            .collect();
        let mut supervisors: Vec<Actor> = actors
            .iter()
            .filter(|a| a.has(Role::Supervisor))
            .cloned()
            .collect();
        // The efficiency office's first.
        supervisors.sort_by_key(|a| {
            org.get(&a.unit_id)
                .is_none_or(|u| u.kind != UnitKind::EfficiencyOffice)
        });
        anyhow::ensure!(!supervisors.is_empty(), "no supervisor among the users");
        let topics_by_month = (1..=12)
            .map(|month| {
                Weighted::new(
                    mix.topics
                        .iter()
                        .enumerate()
                        .map(|(i, t)| (i, t.weight * mix.season(&t.theme, month))),
                )
                .map_err(anyhow::Error::msg)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            !articles.is_empty(),
            "no knowledge-base articles to answer from"
        );
        let articles_by_month = (1..=12)
            .map(|month| {
                Weighted::new(
                    articles
                        .iter()
                        .enumerate()
                        .map(|(i, a)| (i, mix.season(&a.theme, month))),
                )
                .map_err(anyhow::Error::msg)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let schedules = crate::jobs::Schedules::default();
        let schedule = crate::jobs::parse_schedule("overdue_sweep", &schedules.overdue_sweep)?;
        let local_start = start.with_timezone(&crate::app::shanghai());
        let ticks: Vec<DateTime<Utc>> = schedule
            .after(&local_start)
            .take(4)
            .map(|t| t.with_timezone(&Utc))
            .collect();
        anyhow::ensure!(ticks.len() == 4, "the overdue sweep's schedule never runs");
        let interval = ticks[1] - ticks[0];
        anyhow::ensure!(
            ticks.windows(2).all(|w| w[1] - w[0] == interval),
            "the generator needs an overdue sweep schedule with a fixed period"
        );
        Ok(World {
            mix,
            org,
            calendar,
            policy,
            dispatch,
            end,
            operators,
            unit_actors,
            leaders,
            supervisors,
            district_names,
            places,
            districts,
            children,
            bureaus,
            district_centres,
            articles,
            topics_by_month,
            articles_by_month,
            sweep: Sweep {
                actor: crate::jobs::sweep_actor(org),
                anchor: ticks[0],
                interval,
                window: schedules.warning_window,
            },
        })
    }

    /// The working calendar.
    pub fn calendar(&self) -> &'a WorkingCalendar {
        self.calendar
    }

    /// A citizen's place: a district by its share, then a unit of a level inside it.
    pub fn draw_location(&self, rng: &mut Rng) -> UnitId {
        let district = self.districts.pick(rng);
        let levels = &self.places[district];
        for _ in 0..8 {
            let level = *self.mix.locations.levels.pick(rng);
            let list = &levels[level_index(level)];
            if !list.is_empty() {
                return list[rng.random_range(0..list.len())].clone();
            }
        }
        district.clone()
    }

    fn unit(&self, id: &UnitId) -> Option<&'a Unit> {
        self.org.get(id)
    }

    /// Someone who acts for `unit`.
    fn actor_for(&self, unit: &UnitId, rng: &mut Rng) -> Actor {
        match self.unit_actors.get(unit) {
            Some(list) => list[rng.random_range(0..list.len())].clone(),
            None => Actor {
                username: synthetic_username(unit),
                unit_id: unit.clone(),
                roles: vec![Role::Handler],
                oversees: Vec::new(),
            },
        }
    }

    fn operator(&self, rng: &mut Rng) -> Actor {
        self.operators[rng.random_range(0..self.operators.len())].clone()
    }

    fn unit_name(&self, id: &UnitId) -> String {
        self.unit(id)
            .map_or_else(|| id.to_string(), |u| u.name.clone())
    }

    /// The minutes of working time an amount stands for (a working day as seven hours, which
    /// only scales draws).
    fn minutes(amount: WorkingTime) -> f64 {
        match amount {
            WorkingTime::Minutes(m) => f64::from(m),
            WorkingTime::Days(d) => f64::from(d) * 420.0,
        }
    }

    /// `minutes` of working time after `t`, plus a few seconds: people act inside office
    /// hours.
    fn work(&self, t: DateTime<Utc>, minutes: f64, rng: &mut Rng) -> DateTime<Utc> {
        let at = self
            .calendar
            .add_working_minutes(t, minutes.max(0.0).round() as u32)
            .at;
        at + jitter(rng)
    }
}

/// Up to a minute of seconds and nanoseconds, so times look like those the service records.
fn jitter(rng: &mut Rng) -> Duration {
    Duration::nanoseconds(rng.random_range(0..60_000_000_000))
}

fn pick<'t, T>(list: &'t [T], rng: &mut Rng) -> &'t T {
    &list[rng.random_range(0..list.len())]
}

/// A caller: who, reachable where, living where.
#[derive(Debug, Clone)]
pub struct Caller {
    /// 来电人姓名 (empty: anonymous).
    pub name: String,
    /// 来电号码.
    pub phone: String,
    /// Where they usually are.
    pub home: UnitId,
}

/// A mobile number (or a 0931 landline) from 64 random bits.
fn phone_from(bits: u64, landline: bool) -> String {
    if landline {
        format!("0931-{}", 8_000_000 + bits % 1_000_000)
    } else {
        const PREFIXES: [&str; 8] = ["139", "138", "137", "159", "158", "186", "177", "189"];
        format!(
            "{}{:08}",
            PREFIXES[(bits >> 56) as usize % PREFIXES.len()],
            bits % 100_000_000
        )
    }
}

/// Callers: new numbers, and a pool of frequent callers who keep their number, name and place.
pub struct Callers {
    pool: u64,
    seed: u64,
}

fn mix64(mut z: u64) -> u64 {
    // SplitMix64's finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Callers {
    /// The callers of `n_cases` cases.
    pub fn new(mix: &Mix, n_cases: u64, seed: u64) -> Callers {
        let pool = (n_cases as f64 * mix.callers.pool_per_1000_cases / 1000.0).ceil() as u64;
        Callers {
            pool: pool.max(1),
            seed,
        }
    }

    fn name(mix: &Mix, rng: &mut Rng) -> String {
        let surnames: Vec<char> = mix.callers.surnames.chars().collect();
        let mut name = String::new();
        name.push(*pick(&surnames, rng));
        let given: &String = pick(&mix.callers.given_names, rng);
        name.push_str(given);
        name
    }

    /// The caller of the next case.
    pub fn draw(&self, world: &World<'_>, rng: &mut Rng) -> Caller {
        let mix = world.mix;
        if mix.callers.repeat_share.draw(rng) {
            // The busiest numbers call far more often than the rest: index = pool × u^1.5.
            let u: f64 = rng.random();
            let k = ((self.pool as f64) * u.powf(1.5)) as u64;
            let mut own = Rng::seed_from_u64(mix64(self.seed ^ mix64(k + 1)));
            let landline = mix.callers.landline_share.draw(&mut own);
            let phone = phone_from(own.random(), landline);
            let name = if mix.callers.anonymous_share.draw(&mut own) {
                String::new()
            } else {
                Self::name(mix, &mut own)
            };
            let home = world.draw_location(&mut own);
            Caller { name, phone, home }
        } else {
            let landline = mix.callers.landline_share.draw(rng);
            let phone = phone_from(rng.random(), landline);
            let name = if mix.callers.anonymous_share.draw(rng) {
                String::new()
            } else {
                Self::name(mix, rng)
            };
            let home = world.draw_location(rng);
            Caller { name, phone, home }
        }
    }
}

/// Why a script stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The simulated period ended.
    End,
    /// The rules refused a command (a bug of the script).
    Refused,
}

/// Something someone else does to the case at a given time.
struct Side {
    at: DateTime<Utc>,
    seq: u32,
    actor: Actor,
    cmd: Command,
}

impl PartialEq for Side {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Side {}
impl PartialOrd for Side {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Side {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The words of one case, drawn once so its title, content and replies agree.
struct Texture {
    place: String,
    district: String,
    street: String,
    community: String,
    estate: String,
    building: String,
    road: String,
    shop: String,
    company: String,
    time: String,
    n: u32,
    temp: u32,
    days: u32,
    floor: u32,
}

impl Texture {
    fn draw(world: &World<'_>, location: &UnitId, rng: &mut Rng) -> Texture {
        let v = &world.mix.vocabulary;
        let mut district = String::new();
        let mut street = String::new();
        let mut community = String::new();
        let mut building = String::new();
        let mut chain: Vec<&Unit> = world.org.ancestors(location);
        chain.reverse();
        if let Some(here) = world.unit(location) {
            chain.push(here);
        }
        for unit in chain {
            match unit.kind {
                UnitKind::DistrictCentre => {
                    district = world
                        .district_names
                        .get(&unit.id)
                        .cloned()
                        .unwrap_or_default();
                }
                UnitKind::StreetOffice => street = unit.name.clone(),
                UnitKind::CommunityCommittee => community = unit.name.clone(),
                UnitKind::Building => building = unit.name.replace("楼院", "号楼"),
                _ => {}
            }
        }
        if building.is_empty() {
            building = format!("{}号楼", rng.random_range(1..=32));
        }
        building.push_str(&format!("{}单元", rng.random_range(1..=6)));
        if street.is_empty() {
            street = district.clone();
        }
        if community.is_empty() {
            community = street.clone();
        }
        let mut place = district.clone();
        if street != district {
            place.push_str(&street);
        }
        if community != street {
            place.push_str(&community);
        }
        Texture {
            place,
            district,
            street,
            community,
            estate: pick(&v.estates, rng).clone(),
            building,
            road: pick(&v.roads, rng).clone(),
            shop: pick(&v.shops, rng).clone(),
            company: pick(&v.companies, rng).clone(),
            time: pick(&v.times, rng).clone(),
            n: rng.random_range(2..=9),
            temp: rng.random_range(8..=16),
            days: rng.random_range(2..=15),
            floor: rng.random_range(7..=30),
        }
    }

    fn fill(&self, slot: Slot, unit: &str, out: &mut String) {
        match slot {
            Slot::Place => out.push_str(&self.place),
            Slot::District => out.push_str(&self.district),
            Slot::Street => out.push_str(&self.street),
            Slot::Community => out.push_str(&self.community),
            Slot::Estate => out.push_str(&self.estate),
            Slot::Building => out.push_str(&self.building),
            Slot::Road => out.push_str(&self.road),
            Slot::Shop => out.push_str(&self.shop),
            Slot::Company => out.push_str(&self.company),
            Slot::Time => out.push_str(&self.time),
            Slot::N => out.push_str(&self.n.to_string()),
            Slot::Temp => out.push_str(&self.temp.to_string()),
            Slot::Days => out.push_str(&self.days.to_string()),
            Slot::Floor => out.push_str(&self.floor.to_string()),
            Slot::Unit => out.push_str(unit),
        }
    }

    fn render(&self, template: &Template, unit: &str) -> String {
        let mut out = String::new();
        template.render_into(&mut out, |slot, out| self.fill(slot, unit, out));
        out
    }

    /// [`Texture::render`] with `{days}` standing for `days`.
    fn render_days(&self, template: &Template, days: u32) -> String {
        let mut out = String::new();
        template.render_into(&mut out, |slot, out| match slot {
            Slot::Days => out.push_str(&days.to_string()),
            _ => self.fill(slot, "", out),
        });
        out
    }

    fn address(&self, location_level: Option<Level>) -> String {
        match location_level {
            Some(Level::District) | None => {
                format!("{}{}{}号", self.district, self.road, self.n * 17)
            }
            _ => format!("{}{}{}", self.place, self.estate, self.building),
        }
    }
}

/// How a transferred case runs, decided when it arrives.
struct Plan {
    topic: usize,
    texture: Texture,
    location: UnitId,
    /// The dispatch catalogue's path from the city centre: `[city, bureau]` or
    /// `[city, district, unit]`.
    path: Vec<UnitId>,
    /// Other units the catalogue names inside the district (co-handlers of a district-level joint
    /// case).
    district_others: Vec<UnitId>,
    joint: bool,
    /// Recall (追回) at the city centre (1), the district centre (2), or none (0).
    recall_level: u8,
    /// A return request was already filed (one per case at most).
    returned: bool,
    /// When the last co-handler completes: the lead completes after it.
    co_done: Option<DateTime<Utc>>,
    /// Whether the lead's completion ran late (for manual supervision).
    late: bool,
}

/// What the overdue sweep records about one holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SweepKind {
    /// Automatic 督办: the receive-by passed while pending (checked first at a tick).
    NotReceived,
    /// Automatic 督办: the complete-by passed.
    NotCompleted,
    /// 到期预警 of the receive-by.
    ReceiveWarning,
    /// 到期预警 of the complete-by.
    CompleteWarning,
}

/// A record the sweep makes at a tick.
struct SweepRecord {
    tick: DateTime<Utc>,
    which: SweepKind,
    assignment_id: u32,
    due: DateTime<Utc>,
    unit_id: UnitId,
}

impl SweepRecord {
    /// What makes it once-only.
    fn mark(&self) -> (u32, SweepKind, DateTime<Utc>) {
        (self.assignment_id, self.which, self.due)
    }

    /// The order the sweep makes records in.
    fn order(&self) -> (DateTime<Utc>, SweepKind) {
        (self.tick, self.which)
    }
}

/// One case's simulation.
pub struct CaseSim<'w, 'r> {
    w: &'w World<'w>,
    rng: &'r mut Rng,
    id: CaseId,
    case: Case,
    /// The appends, in time order.
    pub out: Vec<ImportAppend>,
    side: BinaryHeap<Reverse<Side>>,
    seq: u32,
    /// Time of the last command.
    now: DateTime<Utc>,
    /// The sweep has looked at every tick before this.
    tick_floor: DateTime<Utc>,
    /// Sweep records tried: assignment, kind, deadline.
    swept: Vec<(u32, SweepKind, DateTime<Utc>)>,
    ended: bool,
    /// The first refusal, if any: the command and why.
    pub refused: Option<String>,
    /// Refused commands.
    pub n_refused: u32,
}

impl<'w, 'r> CaseSim<'w, 'r> {
    /// A case with this number arriving at `arrival`.
    pub fn new(w: &'w World<'w>, rng: &'r mut Rng, id: CaseId, arrival: DateTime<Utc>) -> Self {
        CaseSim {
            w,
            rng,
            id,
            case: Case::default(),
            out: Vec::new(),
            side: BinaryHeap::new(),
            seq: 0,
            now: arrival,
            tick_floor: arrival,
            swept: Vec::new(),
            ended: false,
            refused: None,
            n_refused: 0,
        }
    }

    /// Runs the case's whole life (up to the end of the period) for `caller`.
    pub fn run(&mut self, caller: &Caller, arrival: DateTime<Utc>) {
        let w = self.w;
        let on_call = w.mix.answered_on_call.share.draw(self.rng);
        // A script that stopped early (the period ended, or a refusal) is finished below.
        let _stopped = if on_call {
            self.answered_on_call(caller, arrival)
        } else {
            self.transferred(caller, arrival)
        };
        if !self.ended {
            self.flush(w.end);
        }
    }

    // ---- running commands ----

    fn exec(
        &mut self,
        at: DateTime<Utc>,
        actor: &Actor,
        cmd: &Command,
        key: Option<&str>,
    ) -> Result<(), CaseError> {
        let w = self.w;
        let ctx = Context {
            now: at,
            actor,
            org: w.org,
            calendar: w.calendar,
            policy: w.policy,
        };
        let events = decide(&self.case, cmd, &ctx)?;
        let retry = key.map(|k| Retry::command(k, &actor.username, &self.id, cmd, None));
        let rng = &mut *self.rng;
        let new = encode_all::<domain::Case>(&events, retry.as_ref(), || random_id(rng));
        let expected = match self.case.version() {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        };
        for event in &events {
            self.case = evolve(std::mem::take(&mut self.case), event);
        }
        self.out.push(ImportAppend {
            stream: self.id.stream(),
            expected,
            events: new,
            recorded_at: at,
        });
        self.now = at;
        Ok(())
    }

    fn refuse(&mut self, cmd: &Command, err: &CaseError) {
        self.n_refused += 1;
        if self.refused.is_none() {
            self.refused = Some(format!(
                "case {} at {}: `{}` refused: {err}",
                self.id,
                self.now,
                cmd.name()
            ));
        }
    }

    /// The script expected something the case does not have (a bug): stop, counted as a
    /// refusal.
    fn missing(&mut self, what: &str) -> Stop {
        self.n_refused += 1;
        if self.refused.is_none() {
            self.refused = Some(format!("case {} at {}: no {what}", self.id, self.now));
        }
        Stop::Refused
    }

    /// A step of the main script: runs what others do before `at`, then `cmd`.
    fn act(&mut self, at: DateTime<Utc>, actor: &Actor, cmd: Command) -> Result<(), Stop> {
        if self.ended {
            return Err(Stop::End);
        }
        if at > self.w.end {
            self.flush(self.w.end);
            self.ended = true;
            return Err(Stop::End);
        }
        let at = at.max(self.now);
        self.flush(at);
        if let Err(err) = self.exec(at, actor, &cmd, None) {
            self.refuse(&cmd, &err);
            return Err(Stop::Refused);
        }
        self.tick_floor = at;
        Ok(())
    }

    /// Schedules what someone else does at `at`.
    fn later(&mut self, at: DateTime<Utc>, actor: Actor, cmd: Command) {
        self.seq += 1;
        self.side.push(Reverse(Side {
            at,
            seq: self.seq,
            actor,
            cmd,
        }));
    }

    /// Runs, in time order, what others do and what the sweep records before `until`.
    fn flush(&mut self, until: DateTime<Utc>) {
        loop {
            let next_side = self
                .side
                .peek()
                .map(|Reverse(s)| s.at)
                .filter(|at| *at < until);
            let bound = next_side.unwrap_or(until);
            if let Some(record) = self.next_sweep(bound) {
                self.swept.push(record.mark());
                let (cmd, key) = self.sweep_command(&record);
                let at = Sweep::run_at(record.tick).max(self.now);
                let actor = self.w.sweep.actor.clone();
                // The sweep's refusals are routine (a deadline just passed): it skips them.
                let _ = self.exec(at, &actor, &cmd, Some(&key));
                continue;
            }
            if next_side.is_none() {
                break;
            }
            let Some(Reverse(side)) = self.side.pop() else {
                break;
            };
            let at = side.at.max(self.now);
            if let Err(err) = self.exec(at, &side.actor, &side.cmd, None) {
                self.refuse(&side.cmd, &err);
            }
            self.tick_floor = at;
        }
    }

    /// The sweep's earliest record before `bound`, from the case as it stands: a warning of a
    /// deadline falling due within the window, or an automatic supervision of a deadline
    /// passed, each once (the service's idempotency keys and the rules make them so).
    fn next_sweep(&self, bound: DateTime<Utc>) -> Option<SweepRecord> {
        if self.case.stage() != Stage::Open {
            return None;
        }
        let sweep = &self.w.sweep;
        let mut best: Option<SweepRecord> = None;
        let mut consider = |record: SweepRecord| {
            if self.swept.contains(&record.mark()) {
                return;
            }
            // The record must land before the next action (and the end of the period); at one
            // tick the sweep supervises before it warns.
            if Sweep::run_at(record.tick) < bound
                && best.as_ref().is_none_or(|b| record.order() < b.order())
            {
                best = Some(record);
            }
        };
        for h in self.case.holders() {
            let pending = h.state == AssignmentState::Pending;
            let receive_by = h.receive_by.at;
            let complete_by = h.complete_by.at;
            let record = |which, tick, due| SweepRecord {
                tick,
                which,
                assignment_id: h.id,
                due,
                unit_id: h.unit_id.clone(),
            };
            if pending {
                if !h.warnings.contains(&(DeadlineKind::Receive, receive_by))
                    && let Some(t) = self.warn_tick(receive_by, bound)
                {
                    consider(record(SweepKind::ReceiveWarning, t, receive_by));
                }
                let t = sweep
                    .tick_at_or_after(self.tick_floor.max(receive_by + Duration::nanoseconds(1)));
                consider(record(SweepKind::NotReceived, t, receive_by));
            }
            if !h.warnings.contains(&(DeadlineKind::Complete, complete_by))
                && let Some(t) = self.warn_tick(complete_by, bound)
            {
                consider(record(SweepKind::CompleteWarning, t, complete_by));
            }
            let t =
                sweep.tick_at_or_after(self.tick_floor.max(complete_by + Duration::nanoseconds(1)));
            // While a holder is pending past its receive-by, the sweep reports that instead.
            if !(pending && receive_by < t) {
                consider(record(SweepKind::NotCompleted, t, complete_by));
            }
        }
        best
    }

    /// The command and idempotency key the sweep sends for `record`.
    fn sweep_command(&self, record: &SweepRecord) -> (Command, String) {
        let w = self.w;
        let case_id = self.id.as_str();
        let (id, due) = (record.assignment_id, record.due);
        match record.which {
            SweepKind::ReceiveWarning => crate::jobs::deadline_warning(
                case_id,
                id,
                DeadlineKind::Receive,
                due,
                w.sweep.window,
            ),
            SweepKind::CompleteWarning => crate::jobs::deadline_warning(
                case_id,
                id,
                DeadlineKind::Complete,
                due,
                w.sweep.window,
            ),
            SweepKind::NotReceived => crate::jobs::overdue_supervision(
                w.org,
                case_id,
                id,
                record.unit_id.as_str(),
                "not_received",
                due,
            ),
            SweepKind::NotCompleted => crate::jobs::overdue_supervision(
                w.org,
                case_id,
                id,
                record.unit_id.as_str(),
                "not_completed",
                due,
            ),
        }
    }

    /// The first sweep tick at or after the floor, before `bound`, at which `due` lies within
    /// the warning window.
    fn warn_tick(&self, due: DateTime<Utc>, bound: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let sweep = &self.w.sweep;
        let calendar = self.w.calendar;
        let fits = |t: DateTime<Utc>| calendar.add(t, sweep.window).at >= due;
        let first = sweep.tick_at_or_after(self.tick_floor);
        let limit = due.min(bound - Duration::nanoseconds(1));
        if first > limit {
            return None;
        }
        if fits(first) {
            return Some(first);
        }
        let step = sweep.interval.num_nanoseconds()?;
        let k_max = (limit - first).num_nanoseconds()? / step;
        let at = |k: i64| first + Duration::nanoseconds(k * step);
        if k_max == 0 || !fits(at(k_max)) {
            return None;
        }
        // `fits` only turns true as time goes on: the first tick where it does.
        let (mut lo, mut hi) = (0, k_max);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if fits(at(mid)) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(at(hi))
    }

    // ---- helpers of the scripts ----

    fn phrase(&mut self, list: &[Template], texture: Option<&Texture>, unit: &str) -> String {
        let template = pick(list, self.rng);
        match texture {
            Some(t) => t.render(template, unit),
            None => {
                let mut out = String::new();
                template.render_into(&mut out, |slot, out| {
                    if slot == Slot::Unit {
                        out.push_str(unit);
                    }
                });
                out
            }
        }
    }

    /// The city centre acts around the clock, slower at night.
    fn centre_time(&mut self, t: DateTime<Utc>, minutes: f64) -> DateTime<Utc> {
        let hour = t.with_timezone(&crate::app::shanghai()).hour();
        let factor = if !(8..22).contains(&hour) {
            self.w.mix.transfers.night_factor
        } else {
            1.0
        };
        t + Duration::milliseconds((minutes * factor * 60_000.0) as i64) + jitter(self.rng)
    }

    fn create(&mut self, t0: DateTime<Utc>, intake: Intake) -> Result<Actor, Stop> {
        let operator = self.w.operator(self.rng);
        let mix = self.w.mix;
        if mix.callers.draft_share.draw(self.rng) {
            self.act(
                t0,
                &operator,
                Command::Create {
                    case_id: self.id.clone(),
                    intake,
                    submit: false,
                },
            )?;
            let at = t0
                + Duration::seconds((mix.callers.draft_minutes.draw(self.rng) * 60.0) as i64)
                + jitter(self.rng);
            self.act(at, &operator, Command::Submit)?;
        } else {
            self.act(
                t0,
                &operator,
                Command::Create {
                    case_id: self.id.clone(),
                    intake,
                    submit: true,
                },
            )?;
        }
        Ok(operator)
    }

    fn intake_base(&mut self, caller: &Caller) -> Intake {
        let mix = self.w.mix;
        Intake {
            caller_name: caller.name.clone(),
            caller_phone: caller.phone.clone(),
            channel: Some(*mix.channels.pick(self.rng)),
            urgency: Some(*mix.urgencies.pick(self.rng)),
            confidential: mix.callers.confidential_share.draw(self.rng),
            ..Intake::default()
        }
    }

    /// A call-back's satisfaction and whether it was solved.
    fn satisfaction(&mut self, first: bool) -> (Satisfaction, bool) {
        let cb = &self.w.mix.call_backs;
        let s = if first {
            *cb.satisfaction.pick(self.rng)
        } else {
            *cb.second_satisfaction.pick(self.rng)
        };
        let resolved = if s == Satisfaction::Unsatisfied {
            self.rng.random_bool(0.3)
        } else {
            !cb.unresolved_share.draw(self.rng)
        };
        (s, resolved)
    }

    fn call_back_note(&mut self, happy: bool) -> String {
        let notes = &self.w.mix.phrases.call_back_notes;
        let split = notes.len() - 2;
        let list = if happy {
            &notes[..split]
        } else {
            &notes[split..]
        };
        self.phrase(list, None, "")
    }

    // ---- 即办 ----

    fn answered_on_call(&mut self, caller: &Caller, t0: DateTime<Utc>) -> Result<(), Stop> {
        let w = self.w;
        let mix = w.mix;
        let month = t0.with_timezone(&crate::app::shanghai()).month() as usize;
        let article = &w.articles[*w.articles_by_month[month - 1].pick(self.rng)];
        let question = if article.questions.is_empty() || self.rng.random_bool(0.25) {
            article.title.clone()
        } else {
            pick(&article.questions, self.rng).clone()
        };
        let location = caller.home.clone();
        let texture = Texture::draw(w, &location, self.rng);
        let mut intake = self.intake_base(caller);
        intake.category = Some(*mix.answered_on_call.categories.pick(self.rng));
        intake.kind = Some(Kind::Immediate);
        intake.urgency = Some(Urgency::Normal);
        intake.title = question.trim_end_matches(['？', '?']).to_owned();
        intake.content = format!("来电人咨询：{question}（来电人在{}）", texture.place);
        intake.address = texture.address(w.unit(&location).map(|u| u.level));
        intake.location_unit_id = Some(location);
        let operator = self.create(t0, intake)?;
        let minutes = mix.answered_on_call.answer_minutes.draw(self.rng);
        let at = self.centre_time(self.now, minutes);
        let prefix = self.phrase(&mix.phrases.answer_prefixes, None, "");
        self.act(
            at,
            &operator,
            Command::Answer {
                reply: format!("{prefix}{}", article.answer),
                // The fixture articles, seeded published and without a validity period.
                source: domain::AnswerSource::Articles(vec![domain::CitedArticle {
                    id: article.id.clone(),
                    facts: Some(domain::ArticleFacts {
                        published: true,
                        valid_from: None,
                        valid_until: None,
                    }),
                }]),
            },
        )?;
        let mut last = self.now;
        if mix.answered_on_call.call_back_share.draw(self.rng) {
            let at = w.work(
                last,
                mix.call_backs.call_back_hours.draw(self.rng) * 60.0,
                self.rng,
            );
            let (satisfaction, resolved) = self.satisfaction(true);
            let happy = satisfaction != Satisfaction::Unsatisfied && resolved;
            let note = self.call_back_note(happy);
            let operator = w.operator(self.rng);
            self.act(
                at,
                &operator,
                Command::CallBack {
                    satisfaction,
                    resolved,
                    note,
                },
            )?;
            last = self.now;
        }
        let at = last + hours(mix.answered_on_call.archive_hours.draw(self.rng)) + jitter(self.rng);
        let operator = w.operator(self.rng);
        self.act(at, &operator, Command::Archive)
    }

    // ---- 转办 ----

    fn transferred(&mut self, caller: &Caller, t0: DateTime<Utc>) -> Result<(), Stop> {
        let w = self.w;
        let mix = w.mix;
        let month = t0.with_timezone(&crate::app::shanghai()).month() as usize;
        let topic_index = *w.topics_by_month[month - 1].pick(self.rng);
        let topic = &mix.topics[topic_index];
        // Most callers call about where they live.
        let location = if self.rng.random_bool(0.85) {
            caller.home.clone()
        } else {
            w.draw_location(self.rng)
        };
        let texture = Texture::draw(w, &location, self.rng);
        let category = *topic.categories.pick(self.rng);
        let kind = if category == Category::Proposal
            && mix.transfers.suggestion_kind_share.draw(self.rng)
        {
            Kind::Suggestion
        } else {
            *mix.transfers.kinds.pick(self.rng)
        };
        let title = texture.render(pick(&topic.titles, self.rng), "");
        let content = texture.render(pick(&topic.contents, self.rng), "");
        let text = format!("{title} {content}");
        let suggestion = w.dispatch.suggest(w.org, &location, category, &text).ok();
        let root = w.org.root().id.clone();
        let district = w.org.district_of(&location).map(|d| d.id.clone());
        let (path, district_others) = match suggestion.as_ref().and_then(|s| s.units.first()) {
            Some(first) => {
                let others = suggestion
                    .as_ref()
                    .map(|s| {
                        s.units[1..]
                            .iter()
                            .filter(|u| u.path.len() == 3 && u.path.get(1) == first.path.get(1))
                            .map(|u| u.unit_id.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                (first.path.clone(), others)
            }
            None => (
                vec![
                    root.clone(),
                    district.clone().unwrap_or_else(|| w.bureaus[0].clone()),
                ],
                Vec::new(),
            ),
        };
        let mut intake = self.intake_base(caller);
        intake.category = Some(category);
        intake.kind = Some(kind);
        intake.title = title;
        intake.content = content;
        intake.address = texture.address(w.unit(&location).map(|u| u.level));
        intake.location_unit_id = Some(location.clone());
        let recall_level = if mix.transfers.recall_share.draw(self.rng) {
            if path.len() == 3 && self.rng.random_bool(0.4) {
                2
            } else {
                1
            }
        } else {
            0
        };
        let mut plan = Plan {
            topic: topic_index,
            texture,
            location,
            path,
            district_others,
            joint: mix.transfers.joint_share.draw(self.rng),
            recall_level,
            returned: false,
            co_done: None,
            late: false,
        };
        self.create(t0, intake)?;
        let dispatcher = w.actor_for(&root, self.rng);
        let minutes = mix.transfers.dispatch_minutes.draw(self.rng);
        let mut t = self.centre_time(self.now, minutes);
        if plan.recall_level == 1 {
            let right = plan.path[1].clone();
            let wrong = self.wrong_target(&root, &right);
            t = self.mistaken_transfer(&dispatcher, &wrong, &right, t, &plan)?;
        }
        let lead = plan.path[1].clone();
        // A joint case at city level when the catalogue does not name several units in the
        // district.
        let district_joint = plan.path.len() == 3 && !plan.district_others.is_empty();
        let co: Vec<UnitId> = if plan.joint && !district_joint {
            self.city_co_handlers(&plan, &lead)
        } else {
            Vec::new()
        };
        let note = if co.is_empty() {
            self.phrase(&mix.phrases.transfer_notes, None, "")
        } else {
            self.phrase(&mix.phrases.joint_notes, None, "")
        };
        self.act(
            t,
            &dispatcher,
            Command::Transfer {
                lead_unit_id: lead.clone(),
                co_unit_ids: co.clone(),
                note,
            },
        )?;
        let transferred_at = self.now;
        self.schedule_oversight(&plan, &lead, &co, transferred_at);
        for unit in &co {
            self.co_branch(&mut plan, unit);
        }
        let Some(assignment) = self.live_assignment_of(&lead) else {
            return Err(self.missing("lead assignment"));
        };
        let next = plan.path.get(2).cloned();
        self.hop(&mut plan, lead, assignment, dispatcher, next)?;
        self.after_completion(&plan)
    }

    /// The open assignment a unit holds, the latest one.
    fn live_assignment_of(&self, unit: &UnitId) -> Option<u32> {
        self.case
            .assignments()
            .iter()
            .rev()
            .find(|a| &a.unit_id == unit && a.is_open())
            .map(|a| a.id)
    }

    /// A unit `from` may transfer to by mistake instead of `right`: another district or a
    /// bureau from the city centre, a sibling from a district centre.
    fn wrong_target(&mut self, from: &UnitId, right: &UnitId) -> UnitId {
        let w = self.w;
        let candidates: Vec<&UnitId> = if from == &w.org.root().id {
            if self.rng.random_bool(0.6) {
                w.district_centres.iter().filter(|u| *u != right).collect()
            } else {
                w.bureaus.iter().filter(|u| *u != right).collect()
            }
        } else {
            w.children
                .get(from)
                .map(|list| {
                    list.iter()
                        .filter(|u| {
                            *u != right
                                && w.unit(u).is_some_and(|x| {
                                    matches!(
                                        x.kind,
                                        UnitKind::StreetOffice
                                            | UnitKind::DistrictDepartment
                                            | UnitKind::CommunityCommittee
                                            | UnitKind::GridStation
                                    )
                                })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        if candidates.is_empty() {
            return right.clone();
        }
        candidates[self.rng.random_range(0..candidates.len())].clone()
    }

    /// 派错: a transfer to `wrong`, perhaps received there, then recalled; returns when the
    /// right transfer can follow.
    fn mistaken_transfer(
        &mut self,
        transferrer: &Actor,
        wrong: &UnitId,
        right: &UnitId,
        t: DateTime<Utc>,
        plan: &Plan,
    ) -> Result<DateTime<Utc>, Stop> {
        let w = self.w;
        let mix = w.mix;
        let note = self.phrase(&mix.phrases.transfer_notes, None, "");
        self.act(
            t,
            transferrer,
            Command::Transfer {
                lead_unit_id: wrong.clone(),
                co_unit_ids: Vec::new(),
                note,
            },
        )?;
        let sent = self.now;
        let minutes = mix.transfers.recall_minutes.draw(self.rng);
        let recall_at = self.centre_time(sent, minutes);
        // Sometimes the wrong unit signs for it before the recall.
        if self.rng.random_bool(0.4) {
            let receive_at = w.work(sent, self.rng.random_range(1.0..30.0), self.rng);
            if receive_at < recall_at {
                let actor = w.actor_for(wrong, self.rng);
                self.act(receive_at, &actor, Command::Receive)?;
            }
        }
        let right = w.unit_name(right);
        let reason = self.phrase(&mix.phrases.recall_reasons, Some(&plan.texture), &right);
        self.act(recall_at, transferrer, Command::Recall { reason })?;
        let minutes = self.rng.random_range(1.0..15.0);
        Ok(self.centre_time(self.now, minutes))
    }

    fn city_co_handlers(&mut self, plan: &Plan, lead: &UnitId) -> Vec<UnitId> {
        let w = self.w;
        let root = &w.org.root().id;
        let topic = &w.mix.topics[plan.topic];
        let mut co = Vec::new();
        for slug in &topic.joint_with {
            let unit = if slug == "district" {
                w.org.district_of(&plan.location).map(|d| d.id.clone())
            } else {
                Some(UnitId::new(format!("{root}.bureau.{slug}")))
            };
            if let Some(unit) = unit
                && &unit != lead
                && !co.contains(&unit)
            {
                co.push(unit);
            }
        }
        // One or two co-handlers.
        let keep = if co.len() > 1 && self.rng.random_bool(0.7) {
            1
        } else {
            co.len().min(2)
        };
        co.truncate(keep);
        co
    }

    /// The co-handler's share (协办): receive, maybe a note, complete before the lead; run
    /// alongside the lead as someone else's actions.
    fn co_branch(&mut self, plan: &mut Plan, unit: &UnitId) {
        let w = self.w;
        let Some(a) = self
            .case
            .assignments()
            .iter()
            .rev()
            .find(|a| &a.unit_id == unit && a.is_open())
            .cloned()
        else {
            return;
        };
        let actor = w.actor_for(unit, self.rng);
        let received = self.receive_time(&a);
        let deadline = a.complete_by.at;
        let done = if received < deadline && !w.mix.handling.late_share.draw(self.rng) {
            let f = w.mix.handling.complete_fraction.draw(self.rng) * 0.9;
            snap(w, received + scale(deadline - received, f), self.rng).min(deadline)
        } else {
            w.work(
                received.max(deadline),
                w.mix.handling.late_working_hours.draw(self.rng) * 60.0,
                self.rng,
            )
        }
        .max(received + Duration::minutes(5));
        self.later(received, actor.clone(), Command::Receive);
        if self.rng.random_bool(0.5) {
            let at = received + scale(done - received, 0.5);
            let topic = &w.mix.topics[plan.topic];
            let note = plan.texture.render(pick(&topic.notes, self.rng), "");
            self.later(at, actor.clone(), Command::RecordProgress { note });
        }
        let lead_name = w.unit_name(&plan.path[1]);
        let reply = format!("已配合主办单位{lead_name}核实处理，情况已反馈主办单位。");
        self.later(done, actor, Command::Complete { reply });
        plan.co_done = Some(plan.co_done.map_or(done, |d| d.max(done)));
    }

    /// 批示 and 督办 by hand, decided when the case is first transferred.
    fn schedule_oversight(&mut self, plan: &Plan, lead: &UnitId, co: &[UnitId], at: DateTime<Utc>) {
        let w = self.w;
        let o = &w.mix.oversight;
        let category = self.case.intake().category;
        let urgency = self.case.intake().urgency;
        let mut p = o.annotation_share.0;
        if matches!(urgency, Some(Urgency::Urgent | Urgency::Critical)) {
            p *= o.annotation_urgent_factor;
        }
        if matches!(category, Some(Category::Complaint | Category::Report)) {
            p *= o.annotation_complaint_factor;
        }
        if self.rng.random_bool(p.min(1.0)) {
            let units: Vec<&UnitId> = std::iter::once(lead).chain(co).collect();
            let eligible: Vec<&Actor> = w
                .leaders
                .iter()
                .filter(|l| units.iter().any(|u| l.oversees_unit(w.org, u)))
                .collect();
            // The leaders closest to the unit annotate most: those overseeing it alone.
            let specific: Vec<&Actor> = eligible
                .iter()
                .copied()
                .filter(|l| !l.oversees.contains(&w.org.root().id))
                .collect();
            let chosen = if !specific.is_empty() && self.rng.random_bool(0.7) {
                Some(specific[self.rng.random_range(0..specific.len())])
            } else if !eligible.is_empty() {
                Some(eligible[self.rng.random_range(0..eligible.len())])
            } else {
                None
            };
            if let Some(leader) = chosen.cloned() {
                let when = at + hours(o.annotation_hours.draw(self.rng)) + jitter(self.rng);
                let text = self.phrase(
                    &w.mix.phrases.annotations,
                    Some(&plan.texture),
                    &w.unit_name(lead),
                );
                self.later(when, leader, Command::Annotate { text });
            }
        }
        if o.supervision_share.draw(self.rng) {
            let when = at + hours(o.supervision_hours.draw(self.rng)) + jitter(self.rng);
            let supervisor = self.supervisor_for(&plan.location);
            let opinion = self.phrase(
                &w.mix.phrases.supervisions,
                Some(&plan.texture),
                &w.unit_name(lead),
            );
            self.later(when, supervisor, Command::Supervise { opinion });
        }
    }

    /// The efficiency office, or the supervisor of the case's district.
    fn supervisor_for(&mut self, location: &UnitId) -> Actor {
        let w = self.w;
        let district = w.org.district_of(location).map(|d| d.id.clone());
        let local: Vec<&Actor> = w
            .supervisors
            .iter()
            .filter(|s| Some(&s.unit_id) == district.as_ref())
            .collect();
        if !local.is_empty() && self.rng.random_bool(0.5) {
            local[self.rng.random_range(0..local.len())].clone()
        } else {
            w.supervisors[0].clone()
        }
    }

    /// When a unit signs for assignment `a`: within its receive limit mostly, sometimes late.
    fn receive_time(&mut self, a: &domain::case::Assignment) -> DateTime<Utc> {
        let w = self.w;
        let h = &w.mix.handling;
        let intake = self.case.intake();
        let limits = w.policy.limits(
            intake.category.unwrap_or(Category::Complaint),
            intake.kind.unwrap_or(Kind::Escalated),
            intake.urgency.unwrap_or(Urgency::Normal),
        );
        let limit = World::minutes(limits.receive);
        let minutes = if h.receive_late_share.draw(self.rng) {
            limit * self.rng.random_range(1.05..h.receive_late_factor.max(1.06))
        } else {
            limit * h.receive_fraction.draw(self.rng)
        };
        w.work(a.transferred_at, minutes, self.rng)
    }

    /// One hop of the lead chain: `unit` holds assignment `assignment` given by `transferrer`;
    /// it receives, may ask to return it, passes it on (to `next`, or down its subtree) or
    /// handles and completes it.
    fn hop(
        &mut self,
        plan: &mut Plan,
        unit: UnitId,
        assignment: u32,
        transferrer: Actor,
        next: Option<UnitId>,
    ) -> Result<(), Stop> {
        let w = self.w;
        let mix = w.mix;
        let actor = w.actor_for(&unit, self.rng);
        let Some(a) = self.case.assignment(assignment).cloned() else {
            return Err(self.missing("assignment"));
        };
        let received = self.receive_time(&a);
        self.act(received, &actor, Command::Receive)?;
        let received = self.now;
        // 退回申请, once per case, never on a joint case (its lead's return recalls everyone).
        if !plan.returned && !plan.joint && mix.transfers.return_request_share.draw(self.rng) {
            plan.returned = true;
            let at = w.work(
                received,
                mix.transfers.return_hours.draw(self.rng) * 60.0,
                self.rng,
            );
            let alternative = self.alternative(&transferrer.unit_id, &unit, plan);
            let reason = self.phrase(
                &mix.phrases.return_reasons,
                Some(&plan.texture),
                &w.unit_name(&alternative),
            );
            self.act(at, &actor, Command::RequestReturn { reason })?;
            let at = w.work(self.now, self.rng.random_range(20.0..240.0), self.rng);
            if mix.transfers.return_accepted_share.draw(self.rng) && alternative != unit {
                let note = self.phrase(&mix.phrases.return_accepted_notes, None, "");
                self.act(
                    at,
                    &transferrer,
                    Command::DecideReturn { accept: true, note },
                )?;
                let at = w.work(self.now, self.rng.random_range(2.0..40.0), self.rng);
                let note = self.phrase(&mix.phrases.transfer_notes, None, "");
                self.act(
                    at,
                    &transferrer,
                    Command::Transfer {
                        lead_unit_id: alternative.clone(),
                        co_unit_ids: Vec::new(),
                        note,
                    },
                )?;
                let Some(assignment) = self.live_assignment_of(&alternative) else {
                    return Err(self.missing("assignment after a return"));
                };
                let next = self.onward_from(plan, &alternative);
                return self.hop(plan, alternative, assignment, transferrer, next);
            }
            let note = self.phrase(&mix.phrases.return_overruled_notes, None, "");
            self.act(
                at,
                &transferrer,
                Command::DecideReturn {
                    accept: false,
                    note,
                },
            )?;
        }
        let kind = w.unit(&unit).map(|u| u.kind);
        let onward = match kind {
            Some(UnitKind::DistrictCentre) => next,
            Some(UnitKind::StreetOffice) if mix.transfers.street_to_community.draw(self.rng) => {
                self.below(&unit, &plan.location, UnitKind::CommunityCommittee)
            }
            Some(UnitKind::CommunityCommittee)
                if mix.transfers.community_to_grid.draw(self.rng) =>
            {
                self.below(&unit, &plan.location, UnitKind::GridStation)
            }
            _ => None,
        };
        if let Some(target) = onward {
            let minutes = if kind == Some(UnitKind::DistrictCentre) {
                mix.transfers.district_dispatch_minutes.draw(self.rng)
            } else {
                mix.transfers.hop_minutes.draw(self.rng)
            };
            let mut at = w.work(received, minutes, self.rng);
            if kind == Some(UnitKind::DistrictCentre) && plan.recall_level == 2 {
                plan.recall_level = 0;
                let wrong = self.wrong_target(&unit, &target);
                if wrong != target {
                    at = self.mistaken_transfer(&actor, &wrong, &target, at, plan)?;
                }
            }
            let co: Vec<UnitId> = if kind == Some(UnitKind::DistrictCentre) && plan.joint {
                plan.district_others
                    .iter()
                    .filter(|u| **u != target)
                    .take(2)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let note = if co.is_empty() {
                self.phrase(&mix.phrases.transfer_notes, None, "")
            } else {
                self.phrase(&mix.phrases.joint_notes, None, "")
            };
            self.act(
                at,
                &actor,
                Command::Transfer {
                    lead_unit_id: target.clone(),
                    co_unit_ids: co.clone(),
                    note,
                },
            )?;
            for unit in &co {
                self.co_branch(plan, unit);
            }
            let Some(assignment) = self.live_assignment_of(&target) else {
                return Err(self.missing("onward assignment"));
            };
            return self.hop(plan, target, assignment, actor, None);
        }
        self.handle(plan, assignment, &actor, &transferrer)
    }

    /// Where a unit given the case after a return passes it on: a district centre to the
    /// catalogue's unit in its district (or keeps it), others keep it.
    fn onward_from(&self, plan: &Plan, unit: &UnitId) -> Option<UnitId> {
        if plan.path.len() == 3 && plan.path.get(1) == Some(unit) {
            return plan.path.get(2).cloned();
        }
        None
    }

    /// The unit of `kind` below `unit` on the way to the case's place, else one of its
    /// children of that kind.
    fn below(&mut self, unit: &UnitId, location: &UnitId, kind: UnitKind) -> Option<UnitId> {
        let w = self.w;
        if let Some(on_the_way) = std::iter::once(location)
            .chain(w.org.ancestors(location).into_iter().map(|u| &u.id))
            .find(|u| w.unit(u).is_some_and(|x| x.kind == kind) && w.org.is_below(u, unit))
        {
            return Some(on_the_way.clone());
        }
        let list: Vec<&UnitId> = w
            .children
            .get(unit)?
            .iter()
            .filter(|u| w.unit(u).is_some_and(|x| x.kind == kind))
            .collect();
        (!list.is_empty()).then(|| list[self.rng.random_range(0..list.len())].clone())
    }

    /// Where a transferrer sends a case it takes back after a return request.
    fn alternative(&mut self, transferrer: &UnitId, returned: &UnitId, plan: &Plan) -> UnitId {
        let w = self.w;
        let root = &w.org.root().id;
        let district = w.org.district_of(&plan.location).map(|d| d.id.clone());
        if transferrer == root {
            let topic = &w.mix.topics[plan.topic];
            let mut options: Vec<UnitId> = topic
                .joint_with
                .iter()
                .filter(|s| *s != "district")
                .map(|s| UnitId::new(format!("{root}.bureau.{s}")))
                .collect();
            options.extend(district);
            options.retain(|u| u != returned && w.unit(u).is_some());
            if options.is_empty() {
                return returned.clone();
            }
            return options[self.rng.random_range(0..options.len())].clone();
        }
        let wrong = self.wrong_target(transferrer, returned);
        if wrong == *returned {
            returned.clone()
        } else {
            wrong
        }
    }

    /// The holder of the lead: notes, maybe an extension, completion (on time, late or very
    /// late), then the call-back loop.
    fn handle(
        &mut self,
        plan: &mut Plan,
        assignment: u32,
        actor: &Actor,
        transferrer: &Actor,
    ) -> Result<(), Stop> {
        let w = self.w;
        let h = &w.mix.handling;
        let Some(a) = self.case.assignment(assignment).cloned() else {
            return Err(self.missing("assignment to handle"));
        };
        let received = a.received_at.unwrap_or(self.now);
        let mut deadline = a.complete_by.at;
        let mut steps: Vec<(DateTime<Utc>, bool, Command)> = Vec::new();
        let mut floor = received;
        if h.extension_share.draw(self.rng) && deadline > received {
            let max = w
                .policy
                .extension_max_days()
                .saturating_sub(a.extended_days);
            if max > 0 {
                let days = h.extension_days.draw_u32(self.rng).clamp(1, max);
                let asked = snap(
                    w,
                    received + scale(deadline - received, self.rng.random_range(0.3..0.9)),
                    self.rng,
                );
                let template = pick(&w.mix.phrases.extension_reasons, self.rng);
                let reason = plan.texture.render_days(template, days);
                steps.push((
                    asked,
                    true,
                    Command::RequestExtension {
                        working_days: days,
                        reason,
                    },
                ));
                let decided = w.work(asked, self.rng.random_range(30.0..480.0), self.rng);
                let approve = h.extension_approved_share.draw(self.rng);
                let note = if approve {
                    deadline = w.calendar.add_working_days(deadline, days).at;
                    self.phrase(&w.mix.phrases.extension_approved_notes, None, "")
                } else {
                    self.phrase(&w.mix.phrases.extension_refused_notes, None, "")
                };
                steps.push((decided, false, Command::DecideExtension { approve, note }));
                floor = decided;
            }
        }
        let done = self.completion_time(received, deadline, plan);
        let done = done.max(w.work(floor, self.rng.random_range(10.0..120.0), self.rng));
        let done = match plan.co_done {
            Some(co) => done.max(w.work(co, self.rng.random_range(10.0..90.0), self.rng)),
            None => done,
        };
        if plan.late && w.mix.oversight.late_supervision_share.draw(self.rng) {
            let when = deadline
                + hours(w.mix.oversight.supervision_hours.draw(self.rng))
                + jitter(self.rng);
            if when < done {
                let supervisor = self.supervisor_for(&plan.location);
                let opinion = self.phrase(
                    &w.mix.phrases.supervisions,
                    Some(&plan.texture),
                    &w.unit_name(&a.unit_id),
                );
                self.later(when, supervisor, Command::Supervise { opinion });
            }
        }
        let n_notes = {
            let weights = Weighted::new(h.progress_notes.iter().copied().enumerate())
                .unwrap_or_else(|_| unreachable!("checked when the mix was read"));
            *weights.pick(self.rng)
        };
        let topic = &w.mix.topics[plan.topic];
        for _ in 0..n_notes {
            let at = received + scale(done - received, self.rng.random_range(0.05..0.95));
            let note = plan.texture.render(pick(&topic.notes, self.rng), "");
            steps.push((at, true, Command::RecordProgress { note }));
        }
        steps.sort_by_key(|s| s.0);
        for (at, own, cmd) in steps {
            let who = if own { actor } else { transferrer };
            self.act(at, who, cmd)?;
        }
        let reply = plan.texture.render(pick(&topic.replies, self.rng), "");
        self.act(done, actor, Command::Complete { reply })
    }

    /// When the lead completes: a fraction of the time to its deadline, late, or very late.
    fn completion_time(
        &mut self,
        received: DateTime<Utc>,
        deadline: DateTime<Utc>,
        plan: &mut Plan,
    ) -> DateTime<Utc> {
        let w = self.w;
        let h = &w.mix.handling;
        let r: f64 = self.rng.random();
        if r < h.stuck_share.0 {
            plan.late = true;
            let days = h.stuck_working_days.draw_u32(self.rng);
            w.calendar.add_working_days(deadline.max(received), days).at + jitter(self.rng)
        } else if r < h.stuck_share.0 + h.late_share.0 || deadline <= received {
            plan.late = true;
            w.work(
                deadline.max(received),
                h.late_working_hours.draw(self.rng) * 60.0,
                self.rng,
            )
        } else {
            let f = h.complete_fraction.draw(self.rng);
            snap(w, received + scale(deadline - received, f), self.rng)
                .min(deadline - Duration::seconds(1))
                .max(received + Duration::minutes(1))
        }
    }

    /// 回访, and what follows it: 重办 and handling again, or 申诉, then 归档.
    fn after_completion(&mut self, plan: &Plan) -> Result<(), Stop> {
        let w = self.w;
        let cb = &w.mix.call_backs;
        let mut first = true;
        loop {
            let at = w.work(self.now, cb.call_back_hours.draw(self.rng) * 60.0, self.rng);
            let (satisfaction, resolved) = self.satisfaction(first);
            first = false;
            let happy = satisfaction != Satisfaction::Unsatisfied && resolved;
            let note = self.call_back_note(happy);
            let operator = w.operator(self.rng);
            self.act(
                at,
                &operator,
                Command::CallBack {
                    satisfaction,
                    resolved,
                    note,
                },
            )?;
            if happy {
                break;
            }
            if self.case.n_reopened() < 2 && cb.reopen_share.draw(self.rng) {
                let Some(lead_id) = self.case.completing_lead().map(|a| a.id) else {
                    return Err(self.missing("completing lead"));
                };
                let minutes = self.rng.random_range(10.0..120.0);
                let at = self.centre_time(self.now, minutes);
                let reason = self.phrase(&w.mix.phrases.reopen_reasons, None, "");
                self.act(at, &operator, Command::Reopen { reason })?;
                let Some(lead) = self.case.assignment(lead_id).cloned() else {
                    return Err(self.missing("reopened lead"));
                };
                let actor = w.actor_for(&lead.unit_id, self.rng);
                let reopened = self.now;
                let deadline = lead.complete_by.at;
                let topic = &w.mix.topics[plan.topic];
                let mut redo = plan_redo(w, reopened, deadline, self.rng);
                if self.rng.random_bool(0.7) {
                    let at = reopened + scale(redo - reopened, 0.4);
                    let note = plan.texture.render(pick(&topic.notes, self.rng), "");
                    self.act(at, &actor, Command::RecordProgress { note })?;
                    redo = redo.max(self.now + Duration::minutes(1));
                }
                let reply = plan.texture.render(pick(&topic.replies, self.rng), "");
                self.act(redo, &actor, Command::Complete { reply })?;
                continue;
            }
            if cb.appeal_share.draw(self.rng)
                && let Some(lead) = self.case.completing_lead().cloned()
            {
                let actor = w.actor_for(&lead.unit_id, self.rng);
                let at = w.work(self.now, self.rng.random_range(60.0..840.0), self.rng);
                let reason = self.phrase(&w.mix.phrases.appeal_reasons, None, "");
                self.act(at, &actor, Command::Appeal { reason })?;
                let upheld = cb.appeal_upheld_share.draw(self.rng);
                let note = w.mix.phrases.appeal_notes[usize::from(!upheld)].clone();
                let note = plan.texture.render(&note, "");
                let dispatcher = w.actor_for(&w.org.root().id, self.rng);
                let at = w.work(self.now, self.rng.random_range(60.0..960.0), self.rng);
                self.act(at, &dispatcher, Command::DecideAppeal { upheld, note })?;
            }
            break;
        }
        let at = self.now + hours(cb.archive_hours.draw(self.rng)) + jitter(self.rng);
        let operator = w.operator(self.rng);
        self.act(at, &operator, Command::Archive)
    }
}

/// A redo's completion: inside the redo limit mostly, late now and then.
fn plan_redo(
    w: &World<'_>,
    reopened: DateTime<Utc>,
    deadline: DateTime<Utc>,
    rng: &mut Rng,
) -> DateTime<Utc> {
    if deadline > reopened && rng.random::<f64>() >= w.mix.handling.late_share.0 {
        let f = w.mix.handling.complete_fraction.draw(rng);
        snap(w, reopened + scale(deadline - reopened, f), rng)
            .min(deadline - Duration::seconds(1))
            .max(reopened + Duration::minutes(1))
    } else {
        w.work(
            deadline.max(reopened),
            w.mix.handling.late_working_hours.draw(rng) * 60.0,
            rng,
        )
    }
}

/// `d × f`.
fn scale(d: Duration, f: f64) -> Duration {
    Duration::nanoseconds((d.num_nanoseconds().unwrap_or(0) as f64 * f) as i64)
}

fn hours(h: f64) -> Duration {
    Duration::seconds((h * 3600.0) as i64)
}

/// The next moment inside office hours from `t` (itself if inside), plus a few seconds.
fn snap(w: &World<'_>, t: DateTime<Utc>, rng: &mut Rng) -> DateTime<Utc> {
    if w.calendar.is_within_office_hours(t) {
        t
    } else {
        w.calendar.add_working_minutes(t, 0).at + jitter(rng)
    }
}

/// A random id like the service's `Uuid::new_v4`, from the seeded source.
pub fn random_id(rng: &mut Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}
