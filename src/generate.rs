//! `minqing generate`: a synthetic year of a big city's 12345 hotline, written into a new data
//! directory's event store, for rebuild and query benchmarks on realistic data.
//!
//! The data directory is created and seeded as `minqing serve` seeds it on first start (users,
//! the knowledge-base articles). Then `N` calls arrive over the year with the density of the
//! load mix (`fixtures/load-mix.json`: month, weekday, hour, holidays); each case's life is
//! simulated when it arrives (`sim`): every event comes from `domain::decide` run at a
//! simulated time with the fixtures' tree, working calendar, deadline policy and
//! dispatch catalogue, and is encoded as `App` encodes it (stream `case-{number}`, numbers
//! per day from 00001, random v4 event ids, the overdue sweep's key-derived ids). The events
//! wait in a min-heap by time and are written in time order, all cases interleaved as in a real
//! log, in large transactions through [`SqliteStore::import`]. Memory grows with the cases
//! open at a time, not with `N`.
//!
//! # Layout
//! - this module: the command line, [`run`], and [`Generator`], which interleaves the cases'
//!   events in time order and hands them out in batches.
//! - `mix`: the load mix as typed data, weighted draws, text templates, arrival times.
//! - `sim`: the world (who acts for which unit, where citizens live) and one case's life.
//!
//! # Invariants
//! - A seed, a mix, a case count and a period give the same events, byte for byte.
//! - Nothing happens after the end of the period (the end of the year, or now for the current
//!   year): what is open then stays open.

mod mix;
mod sim;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use domain::roles::Actor;
use rand::SeedableRng as _;

pub use mix::{Mix, MixError, year_start};
pub use sim::{Article, Caller, Callers, World};

use crate::app::{Clock, case_day, case_number};
use crate::config::Settings;
use crate::store::{EventStore, ExpectedVersion, ImportAppend};
use mix::{Arrivals, Rng};
use sim::CaseSim;

/// Options of `minqing generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Data directory to create (its store must hold no cases yet).
    #[arg(long)]
    data: PathBuf,
    /// Cases to generate.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    cases: u64,
    /// Seed of the random choices: the same seed gives the same year.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The year simulated (Asia/Shanghai).
    #[arg(long, default_value_t = 2025)]
    year: i32,
    /// A load mix to use instead of the compiled-in `fixtures/load-mix.json`.
    #[arg(long)]
    mix: Option<PathBuf>,
    /// Events written per transaction.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    batch_events: u64,
    /// Password of the demo accounts, used when the data directory is seeded.
    #[arg(long, env = "MINQING_DEMO_PASSWORD", default_value = "demo-12345")]
    demo_password: String,
}

/// A clock stopped at one instant: the application records the seeding at the start of the
/// simulated year.
struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// One append waiting for its time.
struct Queued {
    at: DateTime<Utc>,
    seq: u64,
    append: ImportAppend,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The year's cases, their events interleaved in time order.
pub struct Generator<'w> {
    world: &'w World<'w>,
    rng: Rng,
    arrivals: Arrivals,
    next_arrival: Option<DateTime<Utc>>,
    callers: Callers,
    /// Appends of the cases simulated so far, waiting for their time.
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    /// The day of the last case number and how many that day had.
    day: String,
    day_count: u32,
    /// Cases started.
    pub n_cases: u64,
    /// Commands the rules refused (a bug of the simulation; tests require none).
    pub n_refused: u64,
    /// The first refusal.
    pub first_refusal: Option<String>,
}

impl<'w> Generator<'w> {
    /// `n_cases` cases arriving between `start` and the world's end, drawn from `seed`.
    pub fn new(world: &'w World<'w>, n_cases: u64, seed: u64, start: DateTime<Utc>) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let mut arrivals = Arrivals::new(
            &world.mix.arrivals,
            world.calendar(),
            start,
            world.end,
            n_cases,
        );
        let next_arrival = arrivals.next(&mut rng);
        Generator {
            world,
            callers: Callers::new(world.mix, n_cases, seed),
            rng,
            arrivals,
            next_arrival,
            queue: BinaryHeap::new(),
            seq: 0,
            day: String::new(),
            day_count: 0,
            n_cases: 0,
            n_refused: 0,
            first_refusal: None,
        }
    }

    /// The next appends in time order, about `max_events` events; `None` when the year is
    /// written.
    pub fn next_batch(&mut self, max_events: usize) -> Option<Vec<ImportAppend>> {
        let mut batch = Vec::new();
        let mut n_events = 0;
        while n_events < max_events {
            let due = match (self.queue.peek(), self.next_arrival) {
                (Some(Reverse(q)), Some(arrival)) => q.at <= arrival,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if due {
                let Some(Reverse(q)) = self.queue.pop() else {
                    break;
                };
                n_events += q.append.events.len();
                batch.push(q.append);
            } else if let Some(arrival) = self.next_arrival {
                self.start_case(arrival);
                self.next_arrival = self.arrivals.next(&mut self.rng);
            }
        }
        (!batch.is_empty()).then_some(batch)
    }

    /// Numbers a new case as the service does and simulates its whole life.
    fn start_case(&mut self, arrival: DateTime<Utc>) {
        let day = case_day(arrival);
        if day != self.day {
            self.day = day;
            self.day_count = 0;
        }
        self.day_count += 1;
        let Ok(id) = case_number(&self.day, self.day_count) else {
            self.n_refused += 1;
            return;
        };
        self.n_cases += 1;
        let caller = self.callers.draw(self.world, &mut self.rng);
        let mut sim = CaseSim::new(self.world, &mut self.rng, id, arrival);
        sim.run(&caller, arrival);
        self.n_refused += u64::from(sim.n_refused);
        if self.first_refusal.is_none() {
            self.first_refusal = sim.refused.take();
        }
        for append in sim.out {
            self.seq += 1;
            self.queue.push(Reverse(Queued {
                at: append.recorded_at,
                seq: self.seq,
                append,
            }));
        }
    }
}

/// The knowledge base's fixture articles, as the operators answer from them.
///
/// # Errors
/// When the fixture does not parse.
pub fn fixture_articles() -> anyhow::Result<Vec<Article>> {
    let seeds =
        knowledge_base::fixtures::articles().context("failed to read the fixture articles")?;
    Ok(seeds
        .iter()
        .map(|s| {
            Article::new(
                &s.id,
                &s.content.title,
                &s.content.similar_questions,
                &s.content.body,
                &s.content.category,
            )
        })
        .collect())
}

/// `minqing generate`.
///
/// # Errors
/// A bad mix or year, a data directory that holds cases, IO and store failures.
pub async fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let mix = match &args.mix {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read the load mix `{}`", path.display()))?;
            Mix::parse(&text).with_context(|| format!("in `{}`", path.display()))?
        }
        None => Mix::fixture()?,
    };
    let start = year_start(args.year).context("the year is out of range")?;
    let year_end = year_start(args.year + 1).context("the year is out of range")?;
    let end = year_end.min(Utc::now());
    anyhow::ensure!(end > start, "the year {} has not begun yet", args.year);
    let settings = Settings {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: args.data.clone(),
        demo_password: args.demo_password.clone(),
        ..Settings::default()
    };
    let _lock = crate::datadir::DataDirLock::create_and_acquire(&args.data, "generate")?;
    let store = Arc::new(crate::server::open_store(&settings)?);
    let existing = store
        .streams_with_prefix(crate::store::stream::CASE_PREFIX)
        .await
        .context("failed to read the event store")?;
    anyhow::ensure!(
        existing.is_empty(),
        "the event store of `{}` already holds {} cases; generate into a new data directory",
        args.data.display(),
        existing.len()
    );
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let app = crate::server::build_on(&settings, dyn_store, Arc::new(FixedClock(start))).await?;
    crate::kb::seed_articles(&app)
        .await
        .context("failed to seed the knowledge base")?;
    let actors: Vec<Actor> = app.directory.users().iter().map(|u| u.actor()).collect();
    let articles = fixture_articles()?;
    let dispatch = crate::dispatch::dispatch()?;
    let (n_cases, seed) = (args.cases, args.seed);
    let batch_events = usize::try_from(args.batch_events).unwrap_or(usize::MAX);

    // The simulation runs on a blocking thread while the store's writer commits the batch
    // before: two batches in flight at most.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ImportAppend>>(1);
    let producer_app = app.clone();
    let producer = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, Option<String>)> {
        let app = producer_app;
        let (org, calendar, policy) = (app.org(), app.calendar(), app.policy());
        let world = World::new(
            &mix, &org, &calendar, &policy, dispatch, &actors, articles, start, end,
        )?;
        let mut generator = Generator::new(&world, n_cases, seed, start);
        while let Some(batch) = generator.next_batch(batch_events) {
            if tx.blocking_send(batch).is_err() {
                // The writer stopped; it reports why.
                break;
            }
        }
        Ok((generator.n_refused, generator.first_refusal))
    });

    let started = Instant::now();
    let mut last_print = Instant::now();
    let (mut cases_written, mut events_written) = (0u64, 0u64);
    let mut last_at = start;
    while let Some(batch) = rx.recv().await {
        cases_written += batch
            .iter()
            .filter(|a| a.expected == ExpectedVersion::NoStream)
            .count() as u64;
        events_written += batch.iter().map(|a| a.events.len() as u64).sum::<u64>();
        last_at = batch.last().map_or(last_at, |a| a.recorded_at);
        store
            .import(batch)
            .await
            .context("failed to write events; delete the data directory and start again")?;
        if last_print.elapsed() >= StdDuration::from_secs(1) {
            last_print = Instant::now();
            let rate = events_written as f64 / started.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "生成工单 {cases_written}/{n_cases} ({:5.1}%)  事件 {events_written}  {rate:.0} 事件/秒  模拟时间 {}",
                cases_written as f64 * 100.0 / n_cases as f64,
                crate::app::rfc3339(last_at)
            );
        }
    }
    let (n_refused, first_refusal) = producer.await.context("the generator panicked")??;
    let secs = started.elapsed().as_secs_f64();
    let rate = events_written as f64 / secs.max(1e-9);
    eprintln!(
        "完成：工单 {cases_written} 件，事件 {events_written} 条，{secs:.1} 秒，{rate:.0} 事件/秒"
    );
    if n_refused > 0 {
        tracing::warn!(
            n_refused,
            first = first_refusal.as_deref().unwrap_or(""),
            "the rules refused some generated commands; those cases stop there"
        );
    }
    println!(
        "generated {cases_written} cases, {events_written} events in {secs:.1} s = {rate:.0} events/s \
         (up to {}); build the read models with `minqing rebuild --data {}`",
        crate::app::rfc3339(end),
        args.data.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use domain::kinds::Kind;
    use domain::{Case, evolve};

    use super::*;
    use crate::app::codec::decode;
    use crate::store::{Position, RecordedEvent};

    struct Fixtures {
        mix: Mix,
        org: domain::org::OrgTree,
        calendar: domain::calendar::WorkingCalendar,
        policy: domain::calendar::DeadlinePolicy,
        actors: Vec<Actor>,
    }

    fn fixtures() -> Fixtures {
        Fixtures {
            mix: Mix::fixture().unwrap(),
            org: crate::directory::load_org().unwrap(),
            calendar: crate::server::load_calendar().unwrap(),
            policy: crate::server::load_policy().unwrap(),
            actors: crate::directory::fixture_actors().unwrap(),
        }
    }

    /// Every append of `n` cases of 2025 drawn from `seed`, in the order they would be written.
    fn generate(f: &Fixtures, n: u64, seed: u64) -> (Vec<ImportAppend>, u64, Option<String>) {
        let start = year_start(2025).unwrap();
        let end = year_start(2026).unwrap();
        let dispatch = crate::dispatch::dispatch().unwrap();
        let world = World::new(
            &f.mix,
            &f.org,
            &f.calendar,
            &f.policy,
            dispatch,
            &f.actors,
            fixture_articles().unwrap(),
            start,
            end,
        )
        .unwrap();
        let mut generator = Generator::new(&world, n, seed, start);
        let mut out = Vec::new();
        while let Some(batch) = generator.next_batch(1000) {
            out.extend(batch);
        }
        (out, generator.n_refused, generator.first_refusal)
    }

    fn recorded(append: &ImportAppend, version: u64, i: usize) -> RecordedEvent {
        let e = &append.events[i];
        RecordedEvent {
            position: Position(1),
            stream: append.stream.clone(),
            version,
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            data: e.data.clone(),
            metadata: e.metadata.clone(),
            recorded_at: append.recorded_at,
        }
    }

    /// The service's own overdue sweep, run where a generated period ends, finds the records
    /// the generator made for it: on a case nobody touched since the last tick, it only adds
    /// what that tick could not have seen (a deadline passed since, a deadline entering the
    /// warning window since).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_services_sweep_finds_the_generated_sweep_records_already_made() {
        use crate::jobs::{Jobs, Schedules};
        use crate::store::sqlite::SqliteStore;

        let f = fixtures();
        let dir = tempfile::tempdir().unwrap();
        let start = year_start(2025).unwrap();
        // 2025-03-10 10:05 in Shanghai: five minutes after a tick of the sweep.
        let last_tick = start + chrono::Duration::days(68) + chrono::Duration::hours(10);
        let end = last_tick + chrono::Duration::minutes(5);
        let dispatch = crate::dispatch::dispatch().unwrap();
        let world = World::new(
            &f.mix,
            &f.org,
            &f.calendar,
            &f.policy,
            dispatch,
            &f.actors,
            fixture_articles().unwrap(),
            start,
            end,
        )
        .unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("events.db")).unwrap());
        let mut generator = Generator::new(&world, 3000, 3, start);
        let mut last_event: HashMap<String, DateTime<Utc>> = HashMap::new();
        while let Some(batch) = generator.next_batch(5000) {
            for a in &batch {
                last_event.insert(a.stream.clone(), a.recorded_at);
            }
            store.import(batch).await.unwrap();
        }
        assert_eq!(generator.n_refused, 0, "{:?}", generator.first_refusal);

        let dyn_store: Arc<dyn EventStore> = store.clone();
        let directory = crate::directory::Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            "pw",
        )
        .unwrap();
        let app = Arc::new(crate::app::App::new(
            dyn_store.clone(),
            Arc::new(crate::directory_log::SharedOrg::new(
                crate::directory_log::demo_snapshot().expect("demo"),
            )),
            Arc::new(crate::rules_log::shared_base().expect("rules")),
            directory,
            Arc::new(FixedClock(end)),
        ));
        let read = crate::projection_runner::ReadSide::open(
            &dir.path().join("read.db"),
            dyn_store,
            f.org.clone(),
            Arc::new(crate::rules_log::shared_base().unwrap()),
        )
        .unwrap();
        let schedules = Schedules::default();
        let jobs = Jobs::new(app, read, &schedules, dir.path().join("reports")).unwrap();
        let before = store.head();
        let first = jobs.sweep_once().await.unwrap();
        let added = store.read_all(before, usize::MAX).await.unwrap();
        let window_then = f.calendar.add(last_tick, schedules.warning_window).at;
        for rec in &added {
            if last_event.get(&rec.stream).is_none_or(|t| *t > last_tick) {
                continue;
            }
            match decode(rec).unwrap().body {
                domain::EventBody::DeadlineWarned { due_at, .. } => {
                    assert!(
                        due_at > window_then,
                        "{} warned again: {due_at}",
                        rec.stream
                    );
                }
                domain::EventBody::Supervised { opinion, .. } => {
                    let at = opinion
                        .split("时限 ")
                        .nth(1)
                        .and_then(|rest| rest.split('）').next())
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .expect("the opinion names the deadline");
                    assert!(
                        at >= last_tick,
                        "{} supervised again: {opinion}",
                        rec.stream
                    );
                }
                other => panic!("the sweep recorded {other:?}"),
            }
        }
        // It found many holders to supervise or warn, and most it found already done.
        let found = first.supervised + first.warned;
        assert!(found >= 20, "{first:?}");
        assert!(
            added.len() * 2 < found,
            "{} added of {first:?}",
            added.len()
        );
        // And a second run adds nothing.
        jobs.sweep_once().await.unwrap();
        assert_eq!(store.head().0, before.0 + added.len() as u64);
    }

    #[test]
    fn a_seed_gives_the_same_year_and_another_seed_another() {
        let f = fixtures();
        let (first, _, _) = generate(&f, 150, 5);
        let (again, _, _) = generate(&f, 150, 5);
        assert_eq!(first, again);
        let (other, _, _) = generate(&f, 150, 6);
        assert_ne!(first, other);
    }

    #[test]
    fn a_generated_year_follows_the_rules_the_mix_and_the_clock() {
        let f = fixtures();
        let n = 4000;
        let (appends, n_refused, first) = generate(&f, n, 11);
        assert_eq!(n_refused, 0, "{first:?}");

        // Written in time order, streams in order of their versions, events as App encodes
        // them (they decode, and replay into cases).
        let mut versions: HashMap<&str, u64> = HashMap::new();
        let mut cases: HashMap<&str, Case> = HashMap::new();
        let mut ids = HashSet::new();
        let mut types: HashMap<String, u64> = HashMap::new();
        let mut last = DateTime::<Utc>::MIN_UTC;
        for append in &appends {
            assert!(append.recorded_at >= last, "out of time order");
            last = append.recorded_at;
            let version = versions.entry(append.stream.as_str()).or_default();
            assert!(append.expected.accepts(*version), "{}", append.stream);
            let case = cases.entry(append.stream.as_str()).or_default();
            for i in 0..append.events.len() {
                *version += 1;
                assert!(ids.insert(append.events[i].event_id));
                let event = decode(&recorded(append, *version, i)).expect("decodes");
                assert_eq!(event.at, append.recorded_at);
                *types
                    .entry(append.events[i].event_type.clone())
                    .or_default() += 1;
                *case = evolve(std::mem::take(case), &event);
            }
        }
        assert_eq!(cases.len() as u64, n);
        // Case numbers as the service gives them: the day of acceptance and 00001 on.
        let mut by_day: HashMap<&str, Vec<u32>> = HashMap::new();
        for stream in cases.keys() {
            let number = stream.strip_prefix("case-").unwrap();
            assert_eq!(number.len(), 13);
            by_day
                .entry(&number[..8])
                .or_default()
                .push(number[8..].parse().unwrap());
        }
        for numbers in by_day.values_mut() {
            numbers.sort_unstable();
            assert_eq!(*numbers, (1..=numbers.len() as u32).collect::<Vec<_>>());
        }

        // The mix: about half answered on the call, joint cases and recalls among the others.
        let on_call = cases.values().filter(|c| c.answered_on_call()).count() as f64 / n as f64;
        assert!((0.45..0.55).contains(&on_call), "{on_call}");
        let transferred: Vec<&Case> = cases
            .values()
            .filter(|c| !c.transfers().is_empty())
            .collect();
        let share = |f: &dyn Fn(&Case) -> bool| {
            transferred.iter().filter(|c| f(c)).count() as f64 / transferred.len() as f64
        };
        let joint = share(&|c| {
            c.transfers().iter().any(|t| {
                c.assignments()
                    .iter()
                    .filter(|a| a.transfer_id == t.id)
                    .count()
                    > 1
            })
        });
        assert!((0.03..0.08).contains(&joint), "joint {joint}");
        let recalled = share(&|c| {
            c.assignments()
                .iter()
                .any(|a| a.state == domain::case::AssignmentState::Recalled)
        });
        assert!((0.025..0.08).contains(&recalled), "recalled {recalled}");
        let immediate_kind = cases
            .values()
            .filter(|c| c.intake().kind == Some(Kind::Immediate))
            .count();
        assert_eq!(
            immediate_kind,
            cases.values().filter(|c| c.answered_on_call()).count()
        );

        // Every part of the flow shows up.
        for t in [
            "draft_saved",
            "accepted",
            "answered_on_call",
            "transferred",
            "recalled",
            "return_requested",
            "return_decided",
            "received",
            "progress_recorded",
            "completed",
            "extension_requested",
            "extension_decided",
            "called_back",
            "reopened",
            "supervised",
            "deadline_warned",
            "annotated",
            "archived",
            "appealed",
            "appeal_decided",
        ] {
            assert!(
                types.get(t).copied().unwrap_or(0) > 0,
                "no `{t}` in {types:?}"
            );
        }
        let per_case = appends.iter().map(|a| a.events.len()).sum::<usize>() as f64 / n as f64;
        assert!((4.0..9.0).contains(&per_case), "{per_case} events per case");

        // Places all over the city, repeat callers, hops down to grids.
        let districts: HashSet<String> = cases
            .values()
            .filter_map(|c| c.intake().location_unit_id.as_ref())
            .filter_map(|u| f.org.district_of(u).map(|d| d.id.to_string()))
            .collect();
        assert_eq!(districts.len(), 9, "{districts:?}");
        let mut calls: HashMap<&str, u32> = HashMap::new();
        for c in cases.values() {
            *calls.entry(c.intake().caller_phone.as_str()).or_default() += 1;
        }
        assert!(calls.values().any(|n| *n >= 5), "no frequent caller");
        assert!(
            calls.len() as f64 > 0.7 * n as f64,
            "too few distinct callers"
        );
        let grid = cases.values().any(|c| {
            c.assignments().iter().any(|a| {
                f.org.get(&a.unit_id).map(|u| u.kind) == Some(domain::org::UnitKind::GridStation)
            })
        });
        assert!(grid, "no case reached a grid station");

        // Some completed late, some still open and overdue at the end of the year, most
        // archived; nothing happens after the end.
        let end = year_start(2026).unwrap();
        assert!(last < end);
        let overdue_open = cases
            .values()
            .filter(|c| c.stage() == domain::Stage::Open && c.overdue(end))
            .count();
        assert!(overdue_open > 0);
        let completed_late = cases
            .values()
            .filter(|c| c.stage() != domain::Stage::Open && c.overdue(end))
            .count();
        assert!(completed_late > 0);
        let archived = cases
            .values()
            .filter(|c| c.stage() == domain::Stage::Archived)
            .count() as f64
            / n as f64;
        assert!(archived > 0.85, "{archived}");
        // Texts vary.
        let titles: HashSet<&str> = cases.values().map(|c| c.intake().title.as_str()).collect();
        assert!(titles.len() > 150, "{} titles", titles.len());
    }
}
