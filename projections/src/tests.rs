//! `given(events).then(view)`: command sequences driven through `domain::decide` on the demo
//! city, folded by the [`Projector`] and read back through [`Queries`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use domain::calendar::{CalendarData, DeadlinePolicy, WorkingCalendar};
use domain::case::Overdue;
use domain::identity::may_view_case;
use domain::kinds::{Category, Channel, Kind, Urgency};
use domain::org::{OrgTree, Unit, UnitId};
use domain::roles::Actor;
use domain::{Case, CaseId, Command, Context, Intake, Satisfaction, Status, decide, evolve};
use tempfile::TempDir;

use crate::query::{IdentityRule, ScopePlan, WorkListOwner};
use crate::row::CaseRow;
use crate::*;

pub(crate) struct World {
    pub org: OrgTree,
    pub calendar: WorkingCalendar,
    pub policy: DeadlinePolicy,
    pub users: HashMap<String, Actor>,
}

pub(crate) fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct OrgFile {
            units: Vec<Unit>,
        }
        #[derive(serde::Deserialize)]
        struct UsersFile {
            users: Vec<Actor>,
        }
        let org: OrgFile =
            serde_json::from_str(include_str!("../../fixtures/org.json")).expect("org parses");
        let users: UsersFile =
            serde_json::from_str(include_str!("../../fixtures/users.json")).expect("users parse");
        let calendar: CalendarData =
            serde_json::from_str(include_str!("../../fixtures/calendar.json")).expect("calendar");
        World {
            org: OrgTree::new(org.units).expect("tree"),
            calendar: WorkingCalendar::new(calendar).expect("calendar is valid"),
            policy: serde_json::from_str(include_str!("../../fixtures/deadline-policy.json"))
                .expect("policy parses"),
            users: users
                .users
                .into_iter()
                .map(|u| (u.username.clone(), u))
                .collect(),
        }
    })
}

/// 09:00 on a working Monday in Shanghai, plus `hours`.
pub(crate) fn monday(hours: i64) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(2025, 3, 3).expect("date");
    let local = date.and_hms_opt(9, 0, 0).expect("time");
    chrono::FixedOffset::east_opt(8 * 3600)
        .expect("offset")
        .from_local_datetime(&local)
        .single()
        .expect("unambiguous")
        .with_timezone(&Utc)
        + Duration::hours(hours)
}

/// A local Asia/Shanghai wall-clock time `YYYY-MM-DD HH:MM`.
pub(crate) fn local(text: &str) -> DateTime<Utc> {
    let local = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("time");
    chrono::FixedOffset::east_opt(8 * 3600)
        .expect("offset")
        .from_local_datetime(&local)
        .single()
        .expect("unambiguous")
        .with_timezone(&Utc)
}

/// A store in memory: commands decided against the current case states, events numbered.
#[derive(Default)]
pub(crate) struct Log {
    pub events: Vec<SourcedEvent>,
    pub cases: HashMap<String, Case>,
}

impl Log {
    pub fn run(&mut self, user: &str, case_id: &str, now: DateTime<Utc>, cmd: Command) {
        let w = world();
        let actor = w
            .users
            .get(user)
            .unwrap_or_else(|| panic!("no user {user}"));
        let stream = format!("case-{case_id}");
        let case = self.cases.remove(&stream).unwrap_or_default();
        let ctx = Context {
            now,
            actor,
            org: &w.org,
            calendar: &w.calendar,
            policy: &w.policy,
        };
        let events = decide(&case, &cmd, &ctx)
            .unwrap_or_else(|e| panic!("{user} {} on {case_id}: {e}", cmd.name()));
        let mut case = case;
        for event in events {
            case = evolve(case, &event);
            let position = self.events.len() as u64 * 2 + 1; // Positions need not be dense.
            self.events.push(SourcedEvent {
                position,
                stream: stream.clone(),
                version: case.version(),
                event,
            });
        }
        self.cases.insert(stream, case);
    }

    pub fn create(&mut self, case_id: &str, location: &str, phone: &str, confidential: bool) {
        self.create_at(case_id, location, phone, confidential, monday(0));
    }

    pub fn create_at(
        &mut self,
        case_id: &str,
        location: &str,
        phone: &str,
        confidential: bool,
        now: DateTime<Utc>,
    ) {
        let intake = Intake {
            caller_name: "张三".into(),
            caller_phone: phone.into(),
            channel: Some(Channel::Phone),
            category: Some(Category::Complaint),
            kind: Some(Kind::Escalated),
            urgency: Some(Urgency::Normal),
            title: format!("噪音扰民 {case_id}"),
            content: "晚上十点后仍在装修，影响休息。".into(),
            address: "某小区3号楼".into(),
            location_unit_id: Some(UnitId::new(location)),
            confidential,
        };
        self.accept(case_id, intake, now);
    }

    /// A case of `category` and `urgency` accepted at `now`.
    pub fn create_with(
        &mut self,
        case_id: &str,
        location: &str,
        category: Category,
        urgency: Urgency,
        now: DateTime<Utc>,
    ) {
        let intake = Intake {
            caller_name: "李四".into(),
            caller_phone: "13800000011".into(),
            channel: Some(Channel::Phone),
            category: Some(category),
            kind: Some(Kind::Escalated),
            urgency: Some(urgency),
            title: format!("停水 {case_id}"),
            content: "小区停水两天了。".into(),
            address: "某小区5号楼".into(),
            location_unit_id: Some(UnitId::new(location)),
            confidential: false,
        };
        self.accept(case_id, intake, now);
    }

    fn accept(&mut self, case_id: &str, intake: Intake, now: DateTime<Utc>) {
        self.run(
            "operator",
            case_id,
            now,
            Command::Create {
                case_id: CaseId::parse(case_id).expect("id"),
                intake,
                submit: true,
            },
        );
    }
}

pub(crate) fn transfer(lead: &str, co: &[&str]) -> Command {
    Command::Transfer {
        lead_unit_id: UnitId::new(lead),
        co_unit_ids: co.iter().map(|c| UnitId::new(*c)).collect(),
        note: "请依职责办理".into(),
    }
}

/// A small city: cases in three districts and at a bureau, in every state.
pub(crate) fn city() -> Log {
    let mut log = Log::default();
    let t = monday;
    // C1: 城关 district → street s01, received and in handling.
    log.create("C1", "d.chengguan.s01.c01", "13800000001", false);
    log.run("dispatcher", "C1", t(1), transfer("d.chengguan", &[]));
    log.run("chengguan_dispatcher", "C1", t(1), Command::Receive);
    log.run(
        "chengguan_dispatcher",
        "C1",
        t(2),
        transfer("d.chengguan.s01", &[]),
    );
    log.run("chengguan_s01_handler", "C1", t(2), Command::Receive);
    // C2: 七里河 district, transferred, never received.
    log.create("C2", "d.qilihe.s01.c01", "13800000002", true);
    log.run("dispatcher", "C2", t(1), transfer("d.qilihe", &[]));
    // C3: a bureau, completed and called back; same caller as C1.
    log.create("C3", "d.xigu.s02.c01", "13800000001", false);
    log.run(
        "dispatcher",
        "C3",
        t(1),
        transfer("city.bureau.housing", &[]),
    );
    log.run("housing_handler", "C3", t(2), Command::Receive);
    log.run(
        "housing_handler",
        "C3",
        t(3),
        Command::Complete {
            reply: "已处理。".into(),
        },
    );
    // C4: joint case in 城关, then recalled from the co-handler's district and re-sent.
    log.create("C4", "d.chengguan.s02.c01", "13800000004", false);
    log.run(
        "dispatcher",
        "C4",
        t(1),
        transfer("d.chengguan", &["city.bureau.urban"]),
    );
    log.run(
        "dispatcher",
        "C4",
        t(1),
        Command::Recall {
            reason: "派错单位".into(),
        },
    );
    log.run("dispatcher", "C4", t(1), transfer("d.qilihe", &[]));
    // C5: accepted only (at the centre).
    log.create("C5", "d.anning.s01.c01", "13800000005", false);
    // C6: 城关, completed by the street and called back unsatisfied, called back.
    log.create("C6", "d.chengguan.s03.c01", "13800000006", false);
    log.run("dispatcher", "C6", t(1), transfer("d.chengguan", &[]));
    log.run("chengguan_dispatcher", "C6", t(1), Command::Receive);
    log.run(
        "chengguan_dispatcher",
        "C6",
        t(1),
        transfer("d.chengguan.s03", &[]),
    );
    log.run("chengguan_s03_handler", "C6", t(1), Command::Receive);
    log.run(
        "chengguan_s03_handler",
        "C6",
        t(2),
        Command::Complete {
            reply: "已处理。".into(),
        },
    );
    log.run(
        "operator",
        "C6",
        t(3),
        Command::CallBack {
            satisfaction: Satisfaction::Satisfied,
            resolved: true,
            note: String::new(),
        },
    );
    log
}

pub(crate) fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("read.db");
    (dir, path)
}

/// Applies `events` in batches of `batch` (fetching histories the projector lacks).
pub(crate) fn project(projector: &mut Projector, events: &[SourcedEvent], batch: usize) {
    for chunk in events.chunks(batch.max(1)) {
        let mut history = HashMap::new();
        for stream in projector.missing(chunk) {
            let before: Vec<SourcedEvent> = events
                .iter()
                .filter(|e| e.stream == stream)
                .cloned()
                .collect();
            history.insert(stream, before);
        }
        let last = chunk.last().map_or(0, |e| e.position);
        projector.apply(chunk, &history, last).expect("apply");
    }
}

/// Every table's rows as text, for comparing two databases.
pub(crate) fn dump(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut out = Vec::new();
    for table in crate::schema::TABLES {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .expect("select");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut line = format!("{table}:");
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    line.push_str(&format!(" {v:?}"));
                }
                Ok(line)
            })
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        out.extend(rows);
    }
    out
}

fn everything() -> CaseFilter {
    CaseFilter {
        page: 1,
        per_page: 100,
        ..CaseFilter::default()
    }
}

fn ids(page: &Page) -> Vec<&str> {
    let mut ids: Vec<&str> = page.items.iter().map(|c| c.case_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn as_user(user: &str) -> (Scope, IdentityRule, WorkListOwner) {
    let w = world();
    let actor = &w.users[user];
    (
        Scope::of(actor, &w.org),
        IdentityRule::of(actor, &w.org),
        WorkListOwner::of(actor, &w.org),
    )
}

fn built(log: &Log) -> (TempDir, PathBuf, Queries) {
    let (dir, path) = temp_db();
    let mut projector =
        Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut projector, &log.events, 4);
    let queries = Queries::open(&path).expect("queries");
    (dir, path, queries)
}

#[test]
fn given_a_city_then_the_case_list_shows_every_case_with_its_status_and_label() {
    let log = city();
    let (_dir, _path, q) = built(&log);
    let (scope, identity, _) = as_user("admin");
    let page = q
        .cases(&everything(), &scope, &identity, monday(2))
        .expect("query");
    assert_eq!(ids(&page), ["C1", "C2", "C3", "C4", "C5", "C6"]);
    assert_eq!(page.position, log.events.last().expect("events").position);
    let c = |id: &str| {
        page.items
            .iter()
            .find(|c| c.case_id == id)
            .expect("listed")
            .clone()
    };
    assert_eq!(c("C1").status, Status::InProgress);
    assert_eq!(c("C1").status_label, "正在办理（已接收）");
    assert_eq!(c("C1").holder_unit_ids, ["d.chengguan.s01"]);
    assert_eq!(c("C1").district_id.as_deref(), Some("d.chengguan"));
    assert_eq!(c("C2").status_label, "已转办（未接收）");
    assert_eq!(c("C3").status, Status::Completed);
    assert_eq!(c("C4").holder_unit_ids, ["d.qilihe"]);
    assert_eq!(c("C5").status_label, "已受理");
    assert_eq!(c("C6").status_label, "已回访");
}

#[test]
fn every_row_label_and_overdue_state_matches_the_domain_at_every_hour() {
    let log = city();
    let w = world();
    for case in log.cases.values() {
        let row = CaseRow::of(case, &w.org).expect("row");
        for hour in 0..24 * 20 {
            let now = monday(hour);
            let overdue = crate::row::overdue_kind(
                row.stage,
                row.receive_due,
                row.complete_due,
                row.completed_late,
                now,
            );
            assert_eq!(overdue, case.overdue_kind(now), "{} at {now}", row.case_id);
            let label = crate::row::status_label(
                row.stage,
                row.status,
                row.merged,
                row.answered_on_call,
                overdue,
            );
            assert_eq!(label, case.status_label(now), "{} at {now}", row.case_id);
        }
    }
}

#[test]
fn overdue_is_judged_at_query_time() {
    let log = city();
    let (_dir, _path, q) = built(&log);
    let (scope, identity, _) = as_user("admin");
    let overdue = |now| {
        let filter = CaseFilter {
            overdue: Some(true),
            ..everything()
        };
        q.cases(&filter, &scope, &identity, now).expect("query")
    };
    assert!(overdue(monday(2)).items.is_empty());
    // C2 was never received: a day later it is 逾期未接收.
    let later = overdue(monday(24));
    assert!(ids(&later).contains(&"C2"));
    let c2 = later.items.iter().find(|c| c.case_id == "C2").expect("C2");
    assert_eq!(c2.overdue, Some(Overdue::NotReceived));
    assert_eq!(c2.status_label, "逾期未接收");
}

#[test]
fn the_same_events_applied_twice_give_the_same_view() {
    let log = city();
    let (_dir, path) = temp_db();
    let mut projector =
        Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut projector, &log.events, 3);
    let once = dump(&path);
    project(&mut projector, &log.events, 5);
    assert_eq!(dump(&path), once);
}

#[test]
fn batches_of_any_size_give_the_same_tables_as_one_rebuild() {
    let log = city();
    let (_a, one_path) = temp_db();
    let mut one =
        Projector::open(&one_path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut one, &log.events, 1);
    let (_b, all_path) = temp_db();
    let mut all =
        Projector::open(&all_path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut all, &log.events, 10_000);
    assert_eq!(dump(&one_path), dump(&all_path));
    all.reset().expect("reset");
    assert_eq!(all.checkpoint().expect("checkpoint"), 0);
    project(&mut all, &log.events, 7);
    assert_eq!(dump(&one_path), dump(&all_path));
}

/// The tables and indexes of a read database, as SQLite records them.
/// Tables and indexes, without the planner's statistics (`sqlite_stat*`, written by ANALYZE).
fn schema_of(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%' \
             ORDER BY 1, 2",
        )
        .expect("select");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows")
}

#[test]
fn a_fresh_file_written_from_final_states_equals_the_tables_built_event_by_event() {
    let log = city();
    let (_a, live_path) = temp_db();
    let mut live =
        Projector::open(&live_path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut live, &log.events, 3);
    let mut states: HashMap<String, (Case, u64)> = HashMap::new();
    for ev in &log.events {
        let (case, position) = states.entry(ev.stream.clone()).or_default();
        *case = evolve(std::mem::take(case), &ev.event);
        *position = ev.position;
    }
    let (_b, fresh_path) = temp_db();
    let head = log.events.last().expect("events").position;
    let mut calls = 0;
    write_fresh(
        &fresh_path,
        &world().org,
        &world().calendar,
        states.into_values().collect(),
        head,
        &mut |_, _| calls += 1,
    )
    .expect("write");
    assert!(calls >= 1);
    assert_eq!(dump(&fresh_path), dump(&live_path));
    assert_eq!(schema_of(&fresh_path), schema_of(&live_path));
    // The service opens it as a finished read database and goes on from its checkpoint.
    let reopened = Projector::open(&fresh_path, world().org.clone(), world().calendar.clone())
        .expect("reopen");
    assert_eq!(reopened.checkpoint().expect("checkpoint"), head);
    assert_eq!(dump(&fresh_path), dump(&live_path));
}

#[test]
fn a_fresh_file_left_unfinished_is_not_taken_for_a_read_database() {
    let (_dir, path) = temp_db();
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(crate::schema::CREATE_TABLES)
            .expect("tables");
        conn.execute(
            "INSERT INTO checkpoint (name, position) VALUES (?1, 99)",
            [CASE_LIST],
        )
        .expect("checkpoint");
    }
    // No schema version: a crash came before the last step, so everything starts over.
    let projector =
        Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("open");
    assert_eq!(projector.checkpoint().expect("checkpoint"), 0);
}

#[test]
fn a_reopened_projector_resumes_from_its_checkpoint() {
    let log = city();
    let (_dir, path) = temp_db();
    let half = log.events.len() / 2;
    {
        let mut projector =
            Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("open");
        project(&mut projector, &log.events[..half], 4);
        assert_eq!(
            projector.checkpoint().expect("checkpoint"),
            log.events[half - 1].position
        );
    }
    // A new process: nothing cached, so the streams under way come from their histories.
    let mut projector =
        Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("reopen");
    project(&mut projector, &log.events, 4);
    let (_ref_dir, ref_path) = temp_db();
    let mut reference =
        Projector::open(&ref_path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut reference, &log.events, 100);
    assert_eq!(dump(&path), dump(&ref_path));
}

#[test]
fn an_event_without_its_history_is_refused_and_nothing_is_written() {
    let log = city();
    let (_dir, path) = temp_db();
    let mut projector =
        Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("open");
    let later = &log.events[3..];
    let err = projector
        .apply(later, &HashMap::new(), later[later.len() - 1].position)
        .expect_err("gap");
    assert!(matches!(err, ProjectionError::Gap { .. }), "{err}");
    assert_eq!(projector.checkpoint().expect("checkpoint"), 0);
}

#[test]
fn the_sql_scope_agrees_with_may_view_case_for_every_demo_user() {
    let log = city();
    let (_dir, _path, mut q) = built(&log);
    let w = world();
    // Every plan: the scope rows and their facts, the case list probed in index order, and
    // the scope's cases looked up one by one.
    for plan in [ScopePlan::ScopeRows, ScopePlan::Probing, ScopePlan::Driving] {
        q.force_plan(Some(plan));
        for actor in w.users.values() {
            let (scope, identity, _) = as_user(&actor.username);
            let page = q
                .cases(&everything(), &scope, &identity, monday(2))
                .expect("query");
            let mut expected: Vec<&str> = log
                .cases
                .values()
                .filter(|c| may_view_case(actor, c, &w.org))
                .filter_map(|c| c.id().map(CaseId::as_str))
                .collect();
            expected.sort_unstable();
            assert_eq!(ids(&page), expected, "{} {plan:?}", actor.username);
            assert_eq!(page.total as usize, expected.len(), "{}", actor.username);
            let newest = CaseFilter {
                sort: Sort::CreatedDesc,
                status: Some(Status::Transferred),
                ..everything()
            };
            let page = q
                .cases(&newest, &scope, &identity, monday(2))
                .expect("query");
            let mut expected: Vec<&Case> = log
                .cases
                .values()
                .filter(|c| may_view_case(actor, c, &w.org))
                .filter(|c| c.status() == Status::Transferred)
                .collect();
            expected.sort_by_key(|c| std::cmp::Reverse((c.created_at(), c.id().cloned())));
            let expected: Vec<&str> = expected
                .iter()
                .filter_map(|c| c.id().map(CaseId::as_str))
                .collect();
            let got: Vec<&str> = page.items.iter().map(|i| i.case_id.as_str()).collect();
            assert_eq!(got, expected, "{} {plan:?}", actor.username);
        }
    }
}

#[test]
fn every_plan_of_a_scoped_list_gives_the_unscoped_answer_cut_to_what_the_caller_may_see() {
    let log = city();
    let (_dir, _path, mut q) = built(&log);
    let w = world();
    let all = IdentityRule::of(&w.users["admin"], &w.org);
    let filters = |now: DateTime<Utc>| {
        let base = everything();
        vec![
            CaseFilter {
                overdue: Some(true),
                ..base.clone()
            },
            CaseFilter {
                overdue: Some(false),
                sort: Sort::CompleteDueAsc,
                ..base.clone()
            },
            CaseFilter {
                status: Some(Status::InProgress),
                category: Some(Category::Complaint),
                ..base.clone()
            },
            CaseFilter {
                kind: Some(Kind::Escalated),
                urgency: Some(Urgency::Normal),
                sort: Sort::CreatedAsc,
                ..base.clone()
            },
            CaseFilter {
                district_id: Some("d.chengguan".into()),
                created_from: Some(now - Duration::hours(200)),
                created_to: Some(now),
                sort: Sort::CaseIdAsc,
                ..base.clone()
            },
            CaseFilter {
                unit_id: Some("d.chengguan".into()),
                subtree: true,
                overdue: Some(true),
                ..base.clone()
            },
            CaseFilter {
                per_page: 2,
                page: 2,
                ..base
            },
        ]
    };
    let mut checked = 0;
    for now in [monday(2), monday(30), monday(200), monday(2000)] {
        for filter in filters(now) {
            q.force_plan(None);
            let full = CaseFilter {
                page: 1,
                per_page: 100,
                ..filter.clone()
            };
            let every = q.cases(&full, &Scope::All, &all, now).expect("query");
            for actor in w.users.values() {
                let (scope, identity, _) = as_user(&actor.username);
                let visible: Vec<&str> = every
                    .items
                    .iter()
                    .map(|c| c.case_id.as_str())
                    .filter(|id| {
                        log.cases.values().any(|c| {
                            c.id().map(CaseId::as_str) == Some(id)
                                && may_view_case(actor, c, &w.org)
                        })
                    })
                    .collect();
                let start = ((filter.page.max(1) - 1) * filter.per_page) as usize;
                let expected: Vec<&str> = visible
                    .iter()
                    .skip(start)
                    .take(filter.per_page as usize)
                    .copied()
                    .collect();
                // The plan chosen, each plan forced, and a first walk of the newest cases
                // that falls short (1 case) or suffices (1,000).
                for plan in [
                    "auto",
                    "scope rows",
                    "probing",
                    "driving",
                    "walk 1",
                    "walk 1000",
                ] {
                    match plan {
                        "scope rows" => q.force_plan(Some(ScopePlan::ScopeRows)),
                        "probing" => q.force_plan(Some(ScopePlan::Probing)),
                        "driving" => q.force_plan(Some(ScopePlan::Driving)),
                        "walk 1" => q.force_walk(1),
                        "walk 1000" => q.force_walk(1000),
                        _ => q.force_plan(None),
                    }
                    let page = q.cases(&filter, &scope, &identity, now).expect("query");
                    let got: Vec<&str> = page.items.iter().map(|c| c.case_id.as_str()).collect();
                    assert_eq!(got, expected, "{} {plan:?} {filter:?}", actor.username);
                    assert_eq!(
                        page.total as usize,
                        visible.len(),
                        "{} {plan:?}",
                        actor.username
                    );
                    checked += usize::from(!expected.is_empty());
                }
            }
        }
    }
    assert!(checked > 100, "too few non-empty pages: {checked}");
}

#[test]
fn a_district_never_sees_another_districts_cases() {
    let log = city();
    let (_dir, _path, q) = built(&log);
    let (scope, identity, _) = as_user("chengguan_dispatcher");
    let page = q
        .cases(&everything(), &scope, &identity, monday(2))
        .expect("query");
    assert_eq!(ids(&page), ["C1", "C4", "C6"]);
    for case in &page.items {
        assert_ne!(case.district_id.as_deref(), Some("d.qilihe"));
    }
    // Asking for the other district by name changes nothing.
    let filter = CaseFilter {
        district_id: Some("d.qilihe".into()),
        ..everything()
    };
    assert!(
        q.cases(&filter, &scope, &identity, monday(2))
            .expect("query")
            .items
            .is_empty()
    );
    let (scope, identity, _) = as_user("qilihe_leader");
    let page = q
        .cases(&everything(), &scope, &identity, monday(2))
        .expect("query");
    assert_eq!(ids(&page), ["C2", "C4"]);
}

#[test]
fn text_matches_keep_their_rank_and_never_widen_the_scope() {
    let log = city();
    let (_dir, _path, q) = built(&log);
    let (scope, identity, _) = as_user("chengguan_dispatcher");
    let ranked = |sort: Sort, status: Option<Status>, per_page: u32, page: u32| {
        let filter = CaseFilter {
            text_matches: Some(["C6", "C2", "C1", "C5", "C4"].map(String::from).to_vec()),
            sort,
            status,
            per_page,
            page,
            ..everything()
        };
        let page = q
            .cases(&filter, &scope, &identity, monday(2))
            .expect("query");
        let ids: Vec<String> = page.items.iter().map(|c| c.case_id.clone()).collect();
        (ids, page.total)
    };
    // C2 and C5 are another district's: matching words do not make them visible.
    assert_eq!(
        ranked(Sort::Relevance, None, 100, 1),
        (vec!["C6".into(), "C1".into(), "C4".into()], 3)
    );
    assert_eq!(ranked(Sort::Relevance, None, 2, 2), (vec!["C4".into()], 3));
    assert_eq!(
        ranked(Sort::CaseIdAsc, None, 100, 1),
        (vec!["C1".into(), "C4".into(), "C6".into()], 3)
    );
    assert_eq!(
        ranked(Sort::Relevance, Some(Status::Transferred), 100, 1),
        (vec!["C4".into()], 1)
    );
    let none = CaseFilter {
        text_matches: Some(Vec::new()),
        sort: Sort::Relevance,
        ..everything()
    };
    assert_eq!(
        q.cases(&none, &scope, &identity, monday(2))
            .expect("query")
            .total,
        0
    );
}

#[test]
fn conditions_combine() {
    let log = city();
    let (_dir, _path, q) = built(&log);
    let (scope, identity, _) = as_user("admin");
    let run = |filter: CaseFilter| {
        ids(&q
            .cases(&filter, &scope, &identity, monday(2))
            .expect("query"))
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    assert_eq!(
        run(CaseFilter {
            unit_id: Some("d.chengguan".into()),
            subtree: true,
            ..everything()
        }),
        ["C1", "C4", "C6"]
    );
    assert_eq!(
        run(CaseFilter {
            unit_id: Some("d.chengguan.s03".into()),
            ..everything()
        }),
        ["C6"]
    );
    assert!(
        run(CaseFilter {
            unit_id: Some("city".into()),
            ..everything()
        })
        .is_empty()
    );
    assert_eq!(
        run(CaseFilter {
            unit_id: Some("city".into()),
            subtree: true,
            ..everything()
        }),
        ["C1", "C2", "C3", "C4", "C6"]
    );
    assert_eq!(
        run(CaseFilter {
            status: Some(Status::Transferred),
            district_id: Some("d.chengguan".into()),
            ..everything()
        }),
        ["C4"]
    );
    assert_eq!(
        run(CaseFilter {
            q: Some("C5".into()),
            category: Some(Category::Complaint),
            ..everything()
        }),
        ["C5"]
    );
    assert_eq!(
        run(CaseFilter {
            caller_phone: Some("13800000001".into()),
            ..everything()
        }),
        ["C1", "C3"]
    );
    assert!(
        run(CaseFilter {
            created_from: Some(monday(1)),
            ..everything()
        })
        .is_empty()
    );
    let page = q
        .cases(
            &CaseFilter {
                per_page: 4,
                page: 2,
                sort: Sort::CaseIdAsc,
                ..everything()
            },
            &scope,
            &identity,
            monday(2),
        )
        .expect("query");
    assert_eq!(page.total, 6);
    assert_eq!(ids(&page), ["C5", "C6"]);
}

#[test]
fn a_phone_search_does_not_reveal_a_confidential_caller_to_a_handling_unit() {
    let log = city();
    let (_dir, _path, q) = built(&log);
    let filter = CaseFilter {
        caller_phone: Some("13800000002".into()),
        ..everything()
    };
    let (scope, identity, _) = as_user("qilihe_dispatcher");
    assert!(
        q.cases(&filter, &scope, &identity, monday(2))
            .expect("query")
            .items
            .is_empty()
    );
    let (scope, identity, _) = as_user("operator");
    assert_eq!(
        ids(&q
            .cases(&filter, &scope, &identity, monday(2))
            .expect("query")),
        ["C2"]
    );
}

#[test]
fn work_lists_show_what_a_unit_must_do() {
    let log = city();
    let (_dir, _path, q) = built(&log);
    let list = |user: &str, list: WorkList, now: DateTime<Utc>| {
        let (_, _, owner) = as_user(user);
        let page = q
            .work_list(list, &owner, now, now + Duration::hours(4), 1, 50)
            .expect("work list");
        ids(&page)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list("qilihe_dispatcher", WorkList::ToReceive, monday(2)),
        ["C2", "C4"]
    );
    assert_eq!(
        list("chengguan_s01_handler", WorkList::InProgress, monday(2)),
        ["C1"]
    );
    assert!(list("chengguan_s01_handler", WorkList::ToReceive, monday(2)).is_empty());
    assert_eq!(
        list("qilihe_leader", WorkList::ToReceive, monday(2)),
        ["C2", "C4"]
    );
    assert_eq!(list("operator", WorkList::ToCallBack, monday(4)), ["C3"]);
    // The receive limit is two working hours: due soon at 10:00, overdue by the afternoon.
    assert_eq!(
        list("qilihe_dispatcher", WorkList::DueSoon, monday(1)),
        ["C2", "C4"]
    );
    assert!(list("qilihe_dispatcher", WorkList::Overdue, monday(1)).is_empty());
    assert_eq!(
        list("qilihe_dispatcher", WorkList::Overdue, monday(6)),
        ["C2", "C4"]
    );
    assert_eq!(
        list("supervisor", WorkList::Overdue, monday(6)),
        ["C2", "C4"]
    );
    assert!(list("chengguan_dispatcher", WorkList::Overdue, monday(6)).is_empty());
    // The city centre's open transfers, and whether it may still recall.
    let (_, _, owner) = as_user("dispatcher");
    let page = q
        .work_list(
            WorkList::TransferredByMe,
            &owner,
            monday(2),
            monday(6),
            1,
            50,
        )
        .expect("work list");
    let recall: Vec<(&str, Option<bool>)> = {
        let mut v: Vec<_> = page
            .items
            .iter()
            .map(|c| (c.case_id.as_str(), c.recallable))
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(
        recall,
        [("C1", Some(false)), ("C2", Some(true)), ("C4", Some(true))]
    );
    assert_eq!(page.total, 3);
    // Most urgent first, a page at a time, as the case list's own deadlines order them.
    let mut expected: Vec<(i64, &str)> = page
        .items
        .iter()
        .map(|c| {
            (
                c.complete_due.map_or(i64::MAX, |t| t.timestamp_micros()),
                c.case_id.as_str(),
            )
        })
        .collect();
    expected.sort_unstable();
    let mut paged = Vec::new();
    for n in 1..=4 {
        let one = q
            .work_list(
                WorkList::TransferredByMe,
                &owner,
                monday(2),
                monday(6),
                n,
                1,
            )
            .expect("work list");
        assert_eq!(one.total, 3);
        paged.extend(one.items.into_iter().map(|c| c.case_id));
    }
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id.to_owned()).collect();
    assert_eq!(paged, expected);
}

/// The ids of `user`'s work list at `now`, in the list's own order.
fn ordered(q: &Queries, user: &str, list: WorkList, now: DateTime<Utc>) -> Vec<String> {
    let (_, _, owner) = as_user(user);
    let page = q
        .work_list(list, &owner, now, now + Duration::hours(4), 1, 50)
        .expect("work list");
    let all: Vec<String> = page.items.into_iter().map(|c| c.case_id).collect();
    // A page at a time gives the same order.
    let mut paged = Vec::new();
    for n in 1..=all.len() as u32 {
        let one = q
            .work_list(list, &owner, now, now + Duration::hours(4), n, 1)
            .expect("work list");
        paged.extend(one.items.into_iter().map(|c| c.case_id));
    }
    assert_eq!(paged, all, "{user} {list:?} a page at a time");
    // Reversed, the same list from its other end.
    let reversed: Vec<String> = q
        .work_list_ordered(list, &owner, now, now + Duration::hours(4), true, 1, 50)
        .expect("work list")
        .items
        .into_iter()
        .map(|c| c.case_id)
        .collect();
    let mut back = all.clone();
    back.reverse();
    assert_eq!(reversed, back, "{user} {list:?} reversed");
    all
}

#[test]
fn to_receive_lists_the_earliest_receive_by_first() {
    let mut log = Log::default();
    // An inquiry (handled in a day) due for receipt at 10:30, and an urgent complaint (five
    // days) due for receipt at 09:30: the urgent one is received first, though the inquiry's
    // handling deadline comes sooner.
    let at = local("2025-03-03 08:30");
    log.create_with(
        "R1",
        "d.qilihe.s01.c01",
        Category::Inquiry,
        Urgency::Normal,
        at,
    );
    log.create_with(
        "R2",
        "d.qilihe.s01.c02",
        Category::Complaint,
        Urgency::Urgent,
        at,
    );
    for id in ["R1", "R2"] {
        log.run("dispatcher", id, at, transfer("d.qilihe", &[]));
    }
    let receive_by = |id: &str| {
        log.cases[&format!("case-{id}")].assignments()[0]
            .receive_by
            .at
    };
    assert_eq!(receive_by("R1"), local("2025-03-03 10:30"));
    assert_eq!(receive_by("R2"), local("2025-03-03 09:30"));
    let (_dir, _path, q) = built(&log);
    assert_eq!(
        ordered(&q, "qilihe_dispatcher", WorkList::ToReceive, at),
        ["R2", "R1"]
    );
}

#[test]
fn in_progress_lists_the_earliest_complete_by_of_the_unit_first() {
    let mut log = Log::default();
    let at = local("2025-03-03 09:00");
    // J: a joint case; the co-handler (the urban bureau) got three more days, the lead did
    // not, so the case's own earliest deadline is the lead's.
    log.create_with(
        "J",
        "d.qilihe.s01.c01",
        Category::Complaint,
        Urgency::Normal,
        at,
    );
    log.run(
        "dispatcher",
        "J",
        at,
        transfer("city.bureau.housing", &["city.bureau.urban"]),
    );
    log.run("housing_handler", "J", at, Command::Receive);
    log.run("urban_handler", "J", at, Command::Receive);
    log.run(
        "urban_handler",
        "J",
        at,
        Command::RequestExtension {
            working_days: 3,
            reason: "需现场勘查".into(),
        },
    );
    log.run(
        "dispatcher",
        "J",
        at,
        Command::DecideExtension {
            approve: true,
            note: String::new(),
        },
    );
    // K: the urban bureau's alone, given a day later.
    let later = local("2025-03-04 09:00");
    log.create_with(
        "K",
        "d.qilihe.s01.c02",
        Category::Complaint,
        Urgency::Normal,
        later,
    );
    log.run("dispatcher", "K", later, transfer("city.bureau.urban", &[]));
    log.run("urban_handler", "K", later, Command::Receive);
    let (_dir, _path, q) = built(&log);
    // The urban bureau's own deadlines: K on 11 March, J on 13 March.
    assert_eq!(
        ordered(&q, "urban_handler", WorkList::InProgress, later),
        ["K", "J"]
    );
    assert_eq!(
        ordered(&q, "housing_handler", WorkList::InProgress, later),
        ["J"]
    );
}

#[test]
fn to_call_back_lists_the_earliest_completed_first() {
    let mut log = Log::default();
    let at = local("2025-03-03 09:00");
    // P is older but completed later than Q: Q's call-back falls due first (the call-back
    // limit is one working time after completion for every case).
    for id in ["P", "Q"] {
        log.create_with(
            id,
            "d.qilihe.s01.c01",
            Category::Complaint,
            Urgency::Normal,
            at,
        );
        log.run("dispatcher", id, at, transfer("city.bureau.housing", &[]));
        log.run("housing_handler", id, at, Command::Receive);
    }
    for (id, hour) in [("Q", 1), ("P", 2)] {
        log.run(
            "housing_handler",
            id,
            at + Duration::hours(hour),
            Command::Complete {
                reply: "已处理。".into(),
            },
        );
    }
    let (_dir, _path, q) = built(&log);
    assert_eq!(
        ordered(
            &q,
            "operator",
            WorkList::ToCallBack,
            at + Duration::hours(3)
        ),
        ["Q", "P"]
    );
}

/// The city with cases waiting at a centre or for a decision: W1 received by 七里河 (to send
/// on), W2 with 七里河's return request and W3 with the housing bureau's extension request
/// (both for the city centre to decide), W4 recalled back to the city centre.
fn waiting_city() -> Log {
    let mut log = city();
    let t = monday;
    for id in ["W1", "W2"] {
        log.create_at(id, "d.qilihe.s02.c01", "13800000021", false, t(0));
        log.run("dispatcher", id, t(1), transfer("d.qilihe", &[]));
        log.run("qilihe_dispatcher", id, t(1), Command::Receive);
    }
    log.run(
        "qilihe_dispatcher",
        "W2",
        t(2),
        Command::RequestReturn {
            reason: "不属于本区".into(),
        },
    );
    // W3 is given before W2, so its handling deadline comes first.
    log.create_at("W3", "d.xigu.s01.c01", "13800000023", false, t(0));
    log.run(
        "dispatcher",
        "W3",
        t(0),
        transfer("city.bureau.housing", &[]),
    );
    log.run("housing_handler", "W3", t(1), Command::Receive);
    log.run(
        "housing_handler",
        "W3",
        t(2),
        Command::RequestExtension {
            working_days: 2,
            reason: "需现场勘查".into(),
        },
    );
    // W4 was accepted before C5 and recalled: it has waited longest.
    log.create_at("W4", "d.anning.s02.c01", "13800000024", false, t(-1));
    log.run("dispatcher", "W4", t(0), transfer("d.anning", &[]));
    log.run(
        "dispatcher",
        "W4",
        t(1),
        Command::Recall {
            reason: "派错单位".into(),
        },
    );
    log
}

#[test]
fn to_transfer_and_to_decide_list_what_waits_for_the_unit() {
    let log = waiting_city();
    let (_dir, _path, q) = built(&log);
    let at = monday(3);
    assert_eq!(
        ordered(&q, "dispatcher", WorkList::ToTransfer, at),
        ["W4", "C5"]
    );
    assert_eq!(
        ordered(&q, "qilihe_dispatcher", WorkList::ToTransfer, at),
        ["W1"]
    );
    // A street holds its case to handle it, not to send it on.
    assert!(ordered(&q, "chengguan_s01_handler", WorkList::ToTransfer, at).is_empty());
    assert_eq!(
        ordered(&q, "dispatcher", WorkList::ToDecide, at),
        ["W3", "W2"]
    );
    assert!(ordered(&q, "qilihe_dispatcher", WorkList::ToDecide, at).is_empty());
    let (_, _, owner) = as_user("dispatcher");
    let page = q
        .work_list(WorkList::ToDecide, &owner, at, at, 1, 50)
        .expect("work list");
    let requests: Vec<(&str, Option<Vec<String>>)> = page
        .items
        .iter()
        .map(|c| (c.case_id.as_str(), c.requests.clone()))
        .collect();
    assert_eq!(
        requests,
        [
            ("W3", Some(vec!["extension".to_owned()])),
            ("W2", Some(vec!["return".to_owned()]))
        ]
    );
    // Decided: gone from the list; the accepted return brings W2 back to the city centre.
    let mut log = log;
    log.run(
        "dispatcher",
        "W2",
        monday(4),
        Command::DecideReturn {
            accept: true,
            note: String::new(),
        },
    );
    log.run(
        "dispatcher",
        "W3",
        monday(4),
        Command::DecideExtension {
            approve: true,
            note: String::new(),
        },
    );
    let (_dir, _path, q) = built(&log);
    assert!(ordered(&q, "dispatcher", WorkList::ToDecide, monday(5)).is_empty());
    assert_eq!(
        ordered(&q, "dispatcher", WorkList::ToTransfer, monday(5)),
        ["W4", "C5", "W2"]
    );
}

#[test]
fn every_work_list_is_what_the_domain_says_within_what_its_owner_may_view() {
    let log = waiting_city();
    let (_dir, _path, q) = built(&log);
    let w = world();
    let at = monday(3);
    for actor in w.users.values() {
        let (_, _, owner) = as_user(&actor.username);
        let counts = q
            .work_list_counts(&owner, at, at + Duration::hours(4))
            .expect("counts");
        assert_eq!(counts.len(), WorkList::ALL.len());
        for (list, count) in WorkList::ALL.into_iter().zip(&counts) {
            assert_eq!(count.list, list);
            let page = q
                .work_list(list, &owner, at, at + Duration::hours(4), 1, 200)
                .expect("work list");
            assert_eq!(count.count, page.total, "{} {list:?}", actor.username);
            assert_eq!(page.items.len() as u64, page.total, "{}", actor.username);
            for row in &page.items {
                let case = &log.cases[&format!("case-{}", row.case_id)];
                assert!(
                    may_view_case(actor, case, &w.org),
                    "{} {list:?} {}",
                    actor.username,
                    row.case_id
                );
            }
            let unit = &actor.unit_id;
            let expected: Option<Vec<&str>> = match list {
                // A leader acts for no unit: their own-unit lists are empty.
                WorkList::ToTransfer | WorkList::ToDecide if actor.leads_only() => Some(Vec::new()),
                WorkList::ToTransfer => Some(
                    log.cases
                        .values()
                        .filter(|c| {
                            c.waiting_for_transfer(&w.org)
                                .iter()
                                .any(|(u, _)| *u == unit)
                        })
                        .filter_map(|c| c.id().map(CaseId::as_str))
                        .collect(),
                ),
                WorkList::ToDecide => Some(
                    log.cases
                        .values()
                        .filter(|c| {
                            c.requests_awaiting_decision()
                                .iter()
                                .any(|(a, _)| &a.from_unit_id == unit)
                        })
                        .filter_map(|c| c.id().map(CaseId::as_str))
                        .collect(),
                ),
                _ => None,
            };
            if let Some(mut expected) = expected {
                expected.sort_unstable();
                assert_eq!(ids(&page), expected, "{} {list:?}", actor.username);
            }
        }
    }
}

#[test]
fn list_rows_carry_the_flags_a_worker_scans_for() {
    let mut log = waiting_city();
    log.run(
        "supervisor",
        "C1",
        monday(2),
        Command::Supervise {
            opinion: "请加快办理".into(),
        },
    );
    log.run(
        "city_leader",
        "C1",
        monday(2),
        Command::Annotate {
            text: "请尽快解决群众诉求".into(),
        },
    );
    log.run(
        "supervisor",
        "C2",
        monday(1),
        Command::WarnDeadline {
            assignment_id: 1,
            deadline: domain::event::DeadlineKind::Receive,
            within: domain::calendar::WorkingTime::Days(1),
        },
    );
    log.create("J1", "d.chengguan.s01.c01", "13800000031", false);
    log.run(
        "dispatcher",
        "J1",
        monday(1),
        transfer("d.chengguan", &["city.bureau.housing"]),
    );
    let (_dir, _path, q) = built(&log);
    let (scope, identity, _) = as_user("admin");
    let page = q
        .cases(&everything(), &scope, &identity, monday(2))
        .expect("cases");
    let flags = |id: &str| {
        let c = page.items.iter().find(|c| c.case_id == id).expect("row");
        (c.supervised, c.annotated, c.warned, c.joint, c.confidential)
    };
    assert_eq!(flags("C1"), (true, true, false, false, false));
    assert_eq!(flags("C2"), (false, false, true, false, true));
    assert_eq!(flags("J1"), (false, false, false, true, false));
    assert_eq!(flags("C5"), (false, false, false, false, false));
    // Every row's flags are the domain's, on the work lists too.
    for row in &page.items {
        let case = &log.cases[&format!("case-{}", row.case_id)];
        assert_eq!(
            (row.supervised, row.annotated, row.warned, row.joint),
            (
                case.n_supervised() > 0,
                case.n_annotated() > 0,
                case.deadline_warned(),
                case.is_joint()
            ),
            "{}",
            row.case_id
        );
    }
    let (_, _, owner) = as_user("qilihe_dispatcher");
    let to_receive = q
        .work_list(WorkList::ToReceive, &owner, monday(2), monday(3), 1, 50)
        .expect("work list");
    let c2 = to_receive
        .items
        .iter()
        .find(|c| c.case_id == "C2")
        .expect("C2");
    assert!(c2.warned && c2.confidential);
}

#[test]
fn drafts_are_their_operators_own() {
    let mut log = city();
    log.run(
        "operator2",
        "D1",
        monday(0),
        Command::Create {
            case_id: CaseId::parse("D1").expect("id"),
            intake: Intake {
                caller_phone: "13800000009".into(),
                ..Intake::default()
            },
            submit: false,
        },
    );
    let (_dir, _path, q) = built(&log);
    let drafts = |user: &str| {
        let (_, _, owner) = as_user(user);
        ids(&q
            .work_list(WorkList::Drafts, &owner, monday(1), monday(2), 1, 50)
            .expect("work list"))
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    assert_eq!(drafts("operator2"), ["D1"]);
    assert!(drafts("operator").is_empty());
}

#[test]
fn kpis_of_a_small_hand_computed_week() {
    let mut log = Log::default();
    let t = monday;
    let complete = || Command::Complete {
        reply: "已处理。".into(),
    };
    let callback = |satisfaction, resolved| Command::CallBack {
        satisfaction,
        resolved,
        note: String::new(),
    };
    for id in ["K1", "K2", "K3"] {
        log.create(id, "d.chengguan.s01.c01", "13800000001", false);
        log.run("dispatcher", id, t(1), transfer("city.bureau.housing", &[]));
    }
    // K1: signed within the two working hours, completed, satisfied.
    log.run("housing_handler", "K1", t(2), Command::Receive);
    log.run("housing_handler", "K1", t(3), complete());
    log.run(
        "operator",
        "K1",
        t(4),
        callback(Satisfaction::Satisfied, true),
    );
    // K2: signed a day late, completed in time, unsatisfied and unresolved.
    log.run("housing_handler", "K2", t(30), Command::Receive);
    log.run("housing_handler", "K2", t(31), complete());
    log.run(
        "operator",
        "K2",
        t(32),
        callback(Satisfaction::Unsatisfied, false),
    );
    // K3: never signed for. A recalled transfer to the urban bureau does not count.
    log.create("K4", "d.chengguan.s01.c01", "13800000001", false);
    log.run("dispatcher", "K4", t(1), transfer("city.bureau.urban", &[]));
    log.run(
        "dispatcher",
        "K4",
        t(1),
        Command::Recall {
            reason: "派错".into(),
        },
    );
    let (_dir, _path, q) = built(&log);
    let week = q
        .kpis(
            monday(-9),
            monday(7 * 24 - 9),
            &crate::kpi::KpiWeights::default(),
            &world().calendar,
            &world().org,
        )
        .expect("kpis");
    assert_eq!(week.len(), 1, "{week:?}");
    let housing = &week[0];
    assert_eq!(housing.unit_id, "city.bureau.housing");
    assert_eq!(housing.received, 3);
    assert_eq!(housing.on_time_receive_rate(), Some(0.5));
    assert_eq!(housing.completed, 2);
    assert_eq!(housing.on_time_completion_rate(), Some(1.0));
    assert_eq!(housing.satisfaction_rate(), Some(0.5));
    assert_eq!(housing.resolution_rate(), Some(0.5));
    assert_eq!(housing.reopen_rate(), Some(0.0));
    // K1 took Monday 10:00–12:00 (2 working hours); K2 Monday 10:00 to Tuesday 16:00, that is
    // 2 + 3.5 on Monday and 3.5 + 1.5 on Tuesday (10.5): 6.25 on average.
    assert_eq!(housing.avg_handling_hours(), Some(6.25));
    assert!(!housing.handling_provisional);
    // (0.2 × 0.5 + 0.3 × 1 + 0.3 × 0.5 + 0.2 × 0.5) / 1.0
    let score = housing.score.expect("score");
    assert!((score - 0.65).abs() < 1e-9, "{score}");
    // Two ratings are too few to be ranked.
    assert_eq!(housing.rank, None);
    assert_eq!(
        housing.peer_group.as_ref().map(|g| g.key.as_str()),
        Some("bureaus")
    );
    // The week before has nothing.
    let before = q
        .kpis(
            monday(-7 * 24 - 9),
            monday(-9),
            &crate::kpi::KpiWeights::default(),
            &world().calendar,
            &world().org,
        )
        .expect("kpis");
    assert!(before.is_empty());
}

#[test]
fn a_reopened_case_keeps_its_unsatisfied_rating_and_only_an_upheld_appeal_takes_one_out() {
    let mut log = Log::default();
    let t = monday;
    let complete = || Command::Complete {
        reply: "已处理。".into(),
    };
    let callback = |satisfaction| Command::CallBack {
        satisfaction,
        resolved: satisfaction != Satisfaction::Unsatisfied,
        note: String::new(),
    };
    for id in ["R1", "R2"] {
        log.create(id, "d.chengguan.s01.c01", "13800000001", false);
        log.run("dispatcher", id, t(1), transfer("city.bureau.housing", &[]));
        log.run("housing_handler", id, t(2), Command::Receive);
        log.run("housing_handler", id, t(3), complete());
        log.run("operator", id, t(4), callback(Satisfaction::Unsatisfied));
    }
    // R1: reopened, redone, and this time the caller is satisfied: both ratings count.
    log.run(
        "operator",
        "R1",
        t(5),
        Command::Reopen {
            reason: "未解决".into(),
        },
    );
    log.run("housing_handler", "R1", t(6), complete());
    log.run("operator", "R1", t(7), callback(Satisfaction::Satisfied));
    // R2: the unit appeals and the centre upholds it: that rating no longer counts.
    log.run(
        "housing_handler",
        "R2",
        t(5),
        Command::Appeal {
            reason: "来电人诉求超出职责".into(),
        },
    );
    log.run(
        "shift_leader",
        "R2",
        t(6),
        Command::DecideAppeal {
            upheld: true,
            note: "申诉成立".into(),
        },
    );
    let (_dir, _path, q) = built(&log);
    let week = q
        .kpis(
            monday(-9),
            monday(7 * 24 - 9),
            &crate::kpi::KpiWeights::default(),
            &world().calendar,
            &world().org,
        )
        .expect("kpis");
    let housing = &week[0];
    assert_eq!(housing.unit_id, "city.bureau.housing");
    assert_eq!(
        housing.called_back, 2,
        "R1's two call-backs; R2's is excluded"
    );
    assert_eq!(housing.satisfied, 1);
    assert_eq!(housing.reopen_rate(), Some(0.5));
    // The daily report counts the same call-backs.
    let report = q
        .daily_report(
            chrono::NaiveDate::from_ymd_opt(2025, 3, 3).expect("date"),
            &world().org,
            &|_| true,
            DateTime::<Utc>::MAX_UTC,
        )
        .expect("report");
    let total = report.total;
    assert_eq!((total.called_back, total.satisfied), (2, 1), "{total:?}");
}

#[test]
fn todays_daily_report_is_a_snapshot_of_now_not_of_the_coming_midnight() {
    let mut log = Log::default();
    // Given at 10:00, to be signed for within two working hours (by 12:00).
    log.create("T1", "d.chengguan.s01.c01", "13800000001", false);
    log.run(
        "dispatcher",
        "T1",
        monday(1),
        transfer("city.bureau.housing", &[]),
    );
    let (_dir, _path, q) = built(&log);
    let day = chrono::NaiveDate::from_ymd_opt(2025, 3, 3).expect("date");
    let at = |now| {
        q.daily_report(day, &world().org, &|_| true, now)
            .expect("report")
    };
    let at_eleven = at(monday(2));
    assert_eq!(at_eleven.to, monday(2), "as of now");
    assert_eq!(at_eleven.total.received, 1);
    assert_eq!(
        at_eleven.total.overdue_not_received, 0,
        "not due before noon"
    );
    let at_day_end = at(monday(20));
    assert_eq!(at_day_end.total.overdue_not_received, 1);
    // A day not yet begun is empty.
    let tomorrow = q
        .daily_report(
            day.succ_opt().expect("date"),
            &world().org,
            &|_| true,
            monday(2),
        )
        .expect("report");
    assert_eq!(tomorrow.total.received, 0);
}

#[test]
fn average_handling_time_counts_working_hours_from_transfer_to_completion() {
    let mut log = Log::default();
    let complete = || Command::Complete {
        reply: "已处理。".into(),
    };
    let given = |log: &mut Log, id: &str, unit: &str, at: &str, done: &str| {
        let t = local(at);
        log.create_at(
            id,
            "d.chengguan.s01.c01",
            "13800000001",
            false,
            t - Duration::minutes(30),
        );
        log.run("dispatcher", id, t, transfer(unit, &[]));
        let handler = if unit == "city.bureau.urban" {
            "urban_handler"
        } else {
            "housing_handler"
        };
        log.run(handler, id, t + Duration::minutes(20), Command::Receive);
        log.run(handler, id, local(done), complete());
    };
    // H1: given Friday 17:00, completed Monday 09:30: Friday 17:00–18:00 and Monday
    // 08:30–09:30, 2 working hours.
    given(
        &mut log,
        "H1",
        "city.bureau.urban",
        "2025-03-07 17:00",
        "2025-03-10 09:30",
    );
    // H2: given Tuesday 30 September 17:00, completed Thursday 9 October 11:00 after the
    // eight days of National Day and Mid-Autumn: 1 + 2.5 = 3.5 working hours.
    given(
        &mut log,
        "H2",
        "city.bureau.urban",
        "2025-09-30 17:00",
        "2025-10-09 11:00",
    );
    // H3: given Monday 10 March 09:00, completed Tuesday 10:00: 3 + 3.5 + 1.5 = 8 hours.
    given(
        &mut log,
        "H3",
        "city.bureau.housing",
        "2025-03-10 09:00",
        "2025-03-11 10:00",
    );
    let (_dir, _path, q) = built(&log);
    let kpis = q
        .kpis(
            local("2025-03-01 00:00"),
            local("2025-11-01 00:00"),
            &crate::kpi::KpiWeights::default(),
            &world().calendar,
            &world().org,
        )
        .expect("kpis");
    type Row<'a> = (&'a str, Option<f64>, Option<f64>, Option<u32>);
    let units: Vec<Row<'_>> = kpis
        .iter()
        .map(|k| (k.unit_id.as_str(), k.avg_handling_hours(), k.score, k.rank))
        .collect();
    // Both score 1 (every case signed and completed in time); none was called back, so
    // neither is ranked, and the faster unit is listed first although its id sorts after the
    // other's.
    assert_eq!(
        units,
        [
            ("city.bureau.urban", Some(2.75), Some(1.0), None),
            ("city.bureau.housing", Some(8.0), Some(1.0), None),
        ]
    );
    // Only March: H1 alone for the urban bureau.
    let march = q
        .kpis(
            local("2025-03-01 00:00"),
            local("2025-04-01 00:00"),
            &crate::kpi::KpiWeights::default(),
            &world().calendar,
            &world().org,
        )
        .expect("kpis");
    let urban = march
        .iter()
        .find(|k| k.unit_id == "city.bureau.urban")
        .expect("urban bureau");
    assert_eq!(urban.avg_handling_hours(), Some(2.0));
    // A unit that completed nothing has no average.
    let given_only = q
        .kpis(
            local("2025-09-29 00:00"),
            local("2025-10-06 00:00"),
            &crate::kpi::KpiWeights::default(),
            &world().calendar,
            &world().org,
        )
        .expect("kpis");
    assert_eq!(given_only.len(), 1, "{given_only:?}");
    assert_eq!(given_only[0].received, 1);
    assert_eq!(given_only[0].avg_handling_hours(), None);
}

#[test]
fn the_daily_report_reads_the_day_back_from_the_read_database() {
    let mut log = Log::default();
    let t = monday;
    // D1: 城关 and on to its street, completed and called back satisfied on Monday.
    log.create("D1", "d.chengguan.s01.c01", "13800000001", false);
    log.run("dispatcher", "D1", t(1), transfer("d.chengguan", &[]));
    log.run("chengguan_dispatcher", "D1", t(1), Command::Receive);
    log.run(
        "chengguan_dispatcher",
        "D1",
        t(2),
        transfer("d.chengguan.s01", &[]),
    );
    log.run("chengguan_s01_handler", "D1", t(2), Command::Receive);
    log.run(
        "chengguan_s01_handler",
        "D1",
        t(3),
        Command::Complete {
            reply: "已处理。".into(),
        },
    );
    log.run(
        "operator",
        "D1",
        t(4),
        Command::CallBack {
            satisfaction: Satisfaction::BasicallySatisfied,
            resolved: true,
            note: String::new(),
        },
    );
    // D2: the housing bureau never signs (its two working hours end at 12:00).
    log.create("D2", "d.chengguan.s01.c01", "13800000002", false);
    log.run(
        "dispatcher",
        "D2",
        t(1),
        transfer("city.bureau.housing", &[]),
    );
    // D3: sent to 七里河 by mistake, recalled, sent to the urban bureau, which signs on
    // Tuesday: on Monday's end it was unsigned past its receive-by.
    log.create("D3", "d.qilihe.s01.c01", "13800000003", false);
    log.run("dispatcher", "D3", t(1), transfer("d.qilihe", &[]));
    log.run(
        "dispatcher",
        "D3",
        t(1),
        Command::Recall {
            reason: "派错".into(),
        },
    );
    log.run("dispatcher", "D3", t(1), transfer("city.bureau.urban", &[]));
    log.run("urban_handler", "D3", t(24), Command::Receive);
    let (_dir, _path, q) = built(&log);
    let w = world();
    let monday_date = NaiveDate::from_ymd_opt(2025, 3, 3).expect("date");
    let report = q
        .daily_report(monday_date, &w.org, &|_| true, DateTime::<Utc>::MAX_UTC)
        .expect("report");
    assert_eq!(report.from, local("2025-03-03 00:00"));
    assert_eq!(report.to, local("2025-03-04 00:00"));
    assert_eq!(report.units.len(), 9 + 15, "every district and bureau");
    assert_eq!(report.units[0].unit_id, "d.chengguan", "districts first");
    let row = |unit: &str| {
        let f = report
            .units
            .iter()
            .find(|f| f.unit_id == unit)
            .unwrap_or_else(|| panic!("no row {unit}"));
        [
            f.received,
            f.completed,
            f.completed_late,
            f.overdue_not_received,
            f.overdue_in_progress,
            f.called_back,
            f.satisfied,
        ]
    };
    assert_eq!(row("d.chengguan"), [1, 1, 0, 0, 0, 1, 1]);
    assert_eq!(row("d.qilihe"), [0; 7]);
    assert_eq!(row("city.bureau.housing"), [1, 0, 0, 1, 0, 0, 0]);
    assert_eq!(row("city.bureau.urban"), [1, 0, 0, 1, 0, 0, 0]);
    let total = &report.total;
    assert_eq!(
        [
            total.received,
            total.completed,
            total.overdue_not_received,
            total.called_back
        ],
        [3, 1, 2, 1]
    );
    // Tuesday: the urban bureau signed late but holds it in time; housing still unsigned.
    let tuesday = q
        .daily_report(
            monday_date.succ_opt().expect("date"),
            &w.org,
            &|_| true,
            DateTime::<Utc>::MAX_UTC,
        )
        .expect("report");
    assert_eq!(tuesday.total.received, 0);
    assert_eq!(tuesday.total.overdue_not_received, 1);
    // A district leader's view: their own row, and a total of it alone.
    let chengguan = q
        .daily_report(
            monday_date,
            &w.org,
            &|unit| unit == "d.chengguan",
            DateTime::<Utc>::MAX_UTC,
        )
        .expect("report");
    assert_eq!(chengguan.units.len(), 1);
    assert_eq!(chengguan.total.received, 1);
    assert_eq!(chengguan.total.overdue_not_received, 0);
}

#[test]
fn the_route_of_a_multi_hop_case_shows_the_recall_and_the_resend() {
    use crate::route::{HopState, route};
    let mut log = city();
    log.run("qilihe_dispatcher", "C4", monday(2), Command::Receive);
    log.run(
        "qilihe_dispatcher",
        "C4",
        monday(2),
        transfer("d.qilihe.s01", &[]),
    );
    let events: Vec<domain::Event> = log
        .events
        .iter()
        .filter(|e| e.stream == "case-C4")
        .map(|e| e.event.clone())
        .collect();
    let hops: Vec<(String, String, HopState)> = route(&events)
        .into_iter()
        .map(|h| (h.from_unit_id, h.to_unit_id, h.state))
        .collect();
    let hop = |from: &str, to: &str, state| (from.to_owned(), to.to_owned(), state);
    assert_eq!(
        hops,
        [
            hop("city", "d.chengguan", HopState::Recalled),
            hop("city", "city.bureau.urban", HopState::Recalled),
            hop("city", "d.qilihe", HopState::Received),
            hop("d.qilihe", "d.qilihe.s01", HopState::Pending),
        ]
    );
}

#[test]
fn a_read_database_of_another_schema_is_reset_and_rebuilt() {
    let log = city();
    let (_dir, path) = temp_db();
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
             INSERT INTO meta VALUES ('schema_version', 0);
             CREATE TABLE case_list (case_id TEXT PRIMARY KEY);
             CREATE TABLE checkpoint (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
             INSERT INTO checkpoint VALUES ('case_list', 99);",
        )
        .expect("old schema");
    }
    let mut projector =
        Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("open");
    assert_eq!(projector.checkpoint().expect("checkpoint"), 0);
    project(&mut projector, &log.events, 8);
    let (_ref_dir, ref_path) = temp_db();
    let mut reference =
        Projector::open(&ref_path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut reference, &log.events, 8);
    assert_eq!(dump(&path), dump(&ref_path));
}

#[test]
fn due_soon_holders_agree_with_the_running_deadlines_of_the_domain() {
    use domain::event::DeadlineKind;
    let log = city();
    let (_dir, _path, q) = built(&log);
    let mut n_found = 0;
    for (from, to) in [(0, 2), (1, 6), (2, 30), (24, 200)] {
        let (now, until) = (monday(from), monday(to));
        let mut got: Vec<(String, u32, DeadlineKind, DateTime<Utc>)> = q
            .due_soon_holders(now, until)
            .expect("query")
            .into_iter()
            .map(|h| (h.case_id, h.assignment_id, h.deadline, h.due_at))
            .collect();
        let mut expected = Vec::new();
        for (stream, case) in &log.cases {
            for a in case.holders() {
                for kind in [DeadlineKind::Receive, DeadlineKind::Complete] {
                    if let Some(due) = a.running_deadline(kind)
                        && due >= now
                        && due <= until
                    {
                        let id = stream.trim_start_matches("case-").to_owned();
                        expected.push((id, a.id, kind, due));
                    }
                }
            }
        }
        got.sort_by_key(|x| (x.0.clone(), x.1, x.2.as_str()));
        expected.sort_by_key(|x| (x.0.clone(), x.1, x.2.as_str()));
        assert_eq!(got, expected, "{from}..{to}");
        n_found += got.len();
    }
    assert!(n_found > 0, "the windows catch some deadlines");
}

#[test]
fn a_district_efficiency_office_sees_its_districts_overdue_cases_and_no_others() {
    let mut log = Log::default();
    for (id, place, centre) in [
        ("O1", "d.chengguan.s01.c01", "d.chengguan"),
        ("O2", "d.qilihe.s01", "d.qilihe"),
    ] {
        log.create(id, place, "13800000001", false);
        log.run("dispatcher", id, monday(1), transfer(centre, &[]));
    }
    // O1 goes on to a street office of 城关区, which does not sign for it.
    log.run("chengguan_dispatcher", "O1", monday(1), Command::Receive);
    log.run(
        "chengguan_dispatcher",
        "O1",
        monday(1),
        transfer("d.chengguan.s01", &[]),
    );
    let (_dir, _path, q) = built(&log);
    // The next day: both are past their receive-by.
    let now = monday(24);
    let overdue = |user: &str| {
        let (_, _, owner) = as_user(user);
        let page = q
            .work_list(WorkList::Overdue, &owner, now, now, 1, 50)
            .expect("list");
        page.items
            .iter()
            .map(|i| i.case_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(overdue("chengguan_supervisor"), ["O1"]);
    assert_eq!(overdue("qilihe_supervisor"), ["O2"]);
    let mut all = overdue("supervisor");
    all.sort();
    assert_eq!(all, ["O1", "O2"], "the city's office sees the whole city");
}

/// A small deterministic random source (xorshift64) for generated histories.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

impl Log {
    /// [`Log::run`], skipping a command the rules refuse (a generated history tries
    /// anything).
    fn try_run(&mut self, user: &str, case_id: &str, now: DateTime<Utc>, cmd: Command) -> bool {
        let w = world();
        let stream = format!("case-{case_id}");
        let Some(case) = self.cases.get(&stream) else {
            return false;
        };
        let ctx = Context {
            now,
            actor: &w.users[user],
            org: &w.org,
            calendar: &w.calendar,
            policy: &w.policy,
        };
        if decide(case, &cmd, &ctx).is_err() {
            return false;
        }
        self.run(user, case_id, now, cmd);
        true
    }
}

/// Cases given to bureaus and streets at random times over five weeks (nights and weekends
/// included), signed for late or in time or never, recalled and sent again, completed,
/// called back with every rating, reopened, appealed.
fn generated_city(seed: u64, n_cases: u32) -> Log {
    let mut log = Log::default();
    let mut rng = Rng(seed);
    let bureaus = [
        ("city.bureau.housing", "housing_handler"),
        ("city.bureau.urban", "urban_handler"),
        ("city.bureau.hrss", "hrss_handler"),
        ("city.bureau.transport", "transport_handler"),
    ];
    for i in 0..n_cases {
        let id = format!("G{i:03}");
        let mut t = monday(rng.below(24 * 35) as i64 - 24);
        log.create_at(&id, "d.chengguan.s01.c01", "13800000021", false, t);
        let step = |rng: &mut Rng, t: &mut DateTime<Utc>| {
            *t += Duration::minutes(rng.below(60 * 40) as i64 + 1);
            *t
        };
        let district = rng.chance(25);
        let (unit, handler) = if district {
            ("d.chengguan.s01", "chengguan_s01_handler")
        } else {
            bureaus[rng.below(bureaus.len() as u64) as usize]
        };
        if district {
            let at = step(&mut rng, &mut t);
            log.try_run("dispatcher", &id, at, transfer("d.chengguan", &[]));
            let at = step(&mut rng, &mut t);
            log.try_run("chengguan_dispatcher", &id, at, Command::Receive);
            let at = step(&mut rng, &mut t);
            log.try_run("chengguan_dispatcher", &id, at, transfer(unit, &[]));
        } else {
            let at = step(&mut rng, &mut t);
            // Now and then a joint case (联办) whose co-handler is the district or another
            // bureau: open in two groups of the daily report at once.
            let co = match rng.below(10) {
                0 => vec!["d.chengguan"],
                1 => vec![bureaus[(rng.below(3) + 1) as usize].0],
                _ => vec![],
            };
            let co: Vec<&str> = co.into_iter().filter(|c| *c != unit).collect();
            log.try_run("dispatcher", &id, at, transfer(unit, &co));
            if rng.chance(15) {
                let at = step(&mut rng, &mut t);
                log.try_run(
                    "dispatcher",
                    &id,
                    at,
                    Command::Recall {
                        reason: "派错".into(),
                    },
                );
                let (unit, _) = bureaus[rng.below(bureaus.len() as u64) as usize];
                let at = step(&mut rng, &mut t);
                log.try_run("dispatcher", &id, at, transfer(unit, &[]));
            }
        }
        // Whoever holds it now (a resend may have gone elsewhere).
        let holder = |log: &Log| {
            let case = &log.cases[&format!("case-{id}")];
            case.assignments()
                .iter()
                .rev()
                .find(|a| a.is_open())
                .map(|a| a.unit_id.to_string())
        };
        let handler_of = |unit: &str| {
            if unit == "d.chengguan.s01" {
                "chengguan_s01_handler"
            } else {
                bureaus
                    .iter()
                    .find(|(u, _)| *u == unit)
                    .map_or(handler, |(_, h)| *h)
            }
        };
        let Some(now_unit) = holder(&log) else {
            continue;
        };
        let handler = handler_of(&now_unit);
        if rng.chance(15) {
            continue; // Never signed for.
        }
        let at = step(&mut rng, &mut t);
        log.try_run(handler, &id, at, Command::Receive);
        if rng.chance(15) {
            continue; // Still at work.
        }
        for round in 0..2 {
            let at = step(&mut rng, &mut t);
            log.try_run(
                handler,
                &id,
                at,
                Command::Complete {
                    reply: "已处理。".into(),
                },
            );
            if district {
                let at = step(&mut rng, &mut t);
                log.try_run(
                    "chengguan_dispatcher",
                    &id,
                    at,
                    Command::Complete {
                        reply: "已办结。".into(),
                    },
                );
            }
            if rng.chance(10) {
                break; // Not called back yet.
            }
            let satisfaction = match rng.below(3) {
                0 => Satisfaction::Satisfied,
                1 => Satisfaction::BasicallySatisfied,
                _ => Satisfaction::Unsatisfied,
            };
            let at = step(&mut rng, &mut t);
            log.try_run(
                "operator",
                &id,
                at,
                Command::CallBack {
                    satisfaction,
                    resolved: rng.chance(60),
                    note: String::new(),
                },
            );
            if satisfaction == Satisfaction::Unsatisfied && rng.chance(40) {
                let at = step(&mut rng, &mut t);
                log.try_run(
                    handler,
                    &id,
                    at,
                    Command::Appeal {
                        reason: "诉求超出职责".into(),
                    },
                );
                let at = step(&mut rng, &mut t);
                log.try_run(
                    "shift_leader",
                    &id,
                    at,
                    Command::DecideAppeal {
                        upheld: rng.chance(50),
                        note: "已审".into(),
                    },
                );
            }
            if round == 0 && satisfaction == Satisfaction::Unsatisfied && rng.chance(60) {
                let at = step(&mut rng, &mut t);
                log.try_run(
                    "operator",
                    &id,
                    at,
                    Command::Reopen {
                        reason: "未解决".into(),
                    },
                );
                let at = step(&mut rng, &mut t);
                log.try_run(handler, &id, at, Command::Receive);
            } else {
                break;
            }
        }
    }
    log
}

/// `log` projected in two halves of small batches, the second by a projector that remembers
/// nothing (it reads back what the rows counted and held): the read side the oracles of the
/// kept tables (`kpi_day`, `overdue_day`) are compared on.
fn projected_in_two_halves(log: &Log) -> (TempDir, Queries) {
    let (dir, path) = temp_db();
    let half = log.events.len() / 2;
    {
        let mut projector =
            Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("open");
        project(&mut projector, &log.events[..half], 5);
    }
    let mut projector =
        Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("reopen");
    project(&mut projector, &log.events, 3);
    (dir, Queries::open(&path).expect("queries"))
}

/// The periods the KPI table asks for (every day, every Monday-to-Sunday week, every month
/// around the generated weeks) and some spans of several days.
fn periods() -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let first = local("2025-02-24 00:00");
    let day = Duration::days(1);
    let mut out = Vec::new();
    for d in 0..49 {
        out.push((first + day * d, first + day * (d + 1)));
    }
    for w in 0..7 {
        out.push((first + day * (7 * w), first + day * (7 * w + 7)));
    }
    for (a, b) in [
        ("2025-02-01 00:00", "2025-03-01 00:00"),
        ("2025-03-01 00:00", "2025-04-01 00:00"),
        ("2025-04-01 00:00", "2025-05-01 00:00"),
        ("2025-03-05 00:00", "2025-03-19 00:00"),
        ("2025-01-01 00:00", "2026-01-01 00:00"),
    ] {
        out.push((local(a), local(b)));
    }
    out
}

#[test]
fn the_kpis_summed_over_days_are_the_kpis_of_the_scan_for_every_period() {
    for seed in [0x9E37_79B9_7F4A_7C15_u64, 42, 2026] {
        let log = generated_city(seed, 120);
        // The history holds what moves the figures: recalls, late and missing signatures,
        // reopened cases and excluded ratings.
        let cases: Vec<&Case> = log.cases.values().collect();
        let some = |what: &str, n: usize| assert!(n > 0, "seed {seed}: no {what}");
        some(
            "recall",
            cases
                .iter()
                .flat_map(|c| c.assignments())
                .filter(|a| a.state == domain::case::AssignmentState::Recalled)
                .count(),
        );
        some(
            "reopened rating",
            cases
                .iter()
                .flat_map(|c| c.callbacks())
                .filter(|c| c.reopened)
                .count(),
        );
        some(
            "excluded rating",
            cases
                .iter()
                .flat_map(|c| c.callbacks())
                .filter(|c| c.excluded)
                .count(),
        );
        some(
            "second rating",
            cases.iter().filter(|c| c.callbacks().len() > 1).count(),
        );
        let (_dir, q) = projected_in_two_halves(&log);
        let weights = crate::kpi::KpiWeights::default();
        let (calendar, org) = (&world().calendar, &world().org);
        let mut active = 0;
        for (from, to) in periods() {
            let summed = q.kpis(from, to, &weights, calendar, org).expect("kpis");
            let scanned = q
                .kpis_by_scan(from, to, &weights, calendar, org)
                .expect("scan");
            assert_eq!(summed, scanned, "seed {seed}, {from} to {to}");
            active += usize::from(!summed.is_empty());
        }
        assert!(active > 30, "the generated weeks have activity: {active}");
        // And a period that is not whole days is answered by the scan itself.
        let odd = (local("2025-03-03 09:30"), local("2025-03-05 17:00"));
        assert_eq!(
            q.kpis(odd.0, odd.1, &weights, calendar, org).expect("kpis"),
            q.kpis_by_scan(odd.0, odd.1, &weights, calendar, org)
                .expect("scan")
        );
    }
}

#[test]
fn the_kpi_days_of_a_generated_city_are_the_same_live_and_rebuilt() {
    let log = generated_city(7, 80);
    let (_a, live_path) = temp_db();
    let mut live =
        Projector::open(&live_path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut live, &log.events, 2);
    let mut states: HashMap<String, (Case, u64)> = HashMap::new();
    for ev in &log.events {
        let (case, position) = states.entry(ev.stream.clone()).or_default();
        *case = evolve(std::mem::take(case), &ev.event);
        *position = ev.position;
    }
    let (_b, fresh_path) = temp_db();
    let head = log.events.last().expect("events").position;
    write_fresh(
        &fresh_path,
        &world().org,
        &world().calendar,
        states.into_values().collect(),
        head,
        &mut |_, _| {},
    )
    .expect("write");
    let kpi_rows = |path: &std::path::Path| -> Vec<String> {
        dump(path)
            .into_iter()
            .filter(|l| {
                ["kpi_day:", "overdue_step:", "overdue_day:"]
                    .iter()
                    .any(|t| l.starts_with(t))
            })
            .collect()
    };
    assert!(!kpi_rows(&live_path).is_empty());
    assert_eq!(kpi_rows(&live_path), kpi_rows(&fresh_path));
}

#[test]
fn the_kept_overdue_counts_are_the_daily_reports_of_the_scan_at_every_day_end_and_hour() {
    for seed in [0x9E37_79B9_7F4A_7C15_u64, 42, 2026] {
        let log = generated_city(seed, 120);
        let joint = log
            .cases
            .values()
            .filter(|c| {
                c.assignments()
                    .iter()
                    .any(|a| a.parent_id.is_none() && a.role == domain::case::HandlingRole::Co)
            })
            .count();
        assert!(joint > 0, "seed {seed}: no joint case");
        let (_dir, q) = projected_in_two_halves(&log);
        let org = &world().org;
        // Every group, a district's own, a bureau's own, a district and two bureaus (where
        // the joint cases are).
        let views: [&[&str]; 4] = [
            &[],
            &["d.chengguan"],
            &["city.bureau.housing"],
            &["d.chengguan", "city.bureau.housing", "city.bureau.urban"],
        ];
        let mut overdue = 0;
        let first = NaiveDate::from_ymd_opt(2025, 2, 23).expect("date");
        for d in 0..50 {
            let date = first + Duration::days(d);
            let (from, _) = crate::report::shanghai_day(date).expect("day");
            // The day's end, and moments of the day as "now" (today's report).
            let nows = [
                DateTime::<Utc>::MAX_UTC,
                from + Duration::minutes(9 * 60 + 17),
                from + Duration::minutes(16 * 60 + 45),
            ];
            for now in nows {
                for only in views {
                    let visible = |g: &str| only.is_empty() || only.contains(&g);
                    let kept = q.daily_report(date, org, &visible, now).expect("kept");
                    let scanned = q
                        .daily_report_by_scan(date, org, &visible, now)
                        .expect("scan");
                    assert_eq!(kept, scanned, "seed {seed}, {date}, now {now}, {only:?}");
                    overdue += kept.total.overdue_not_received + kept.total.overdue_in_progress;
                }
            }
        }
        assert!(
            overdue > 100,
            "seed {seed}: the days have overdue cases: {overdue}"
        );
    }
}

#[test]
fn a_case_handed_over_to_a_successor_is_in_the_successor_s_lists() {
    let mut log = Log::default();
    log.create("C1", "d.xigu.s02.c01", "13800000001", false);
    log.run(
        "dispatcher",
        "C1",
        monday(1),
        transfer("city.bureau.housing", &[]),
    );
    log.run("housing_handler", "C1", monday(2), Command::Receive);
    log.run(
        "admin",
        "C1",
        monday(3),
        Command::HandOver {
            from_unit_id: UnitId::new("city.bureau.housing"),
            to_unit_id: UnitId::new("city.bureau.urban"),
        },
    );
    // One event per batch: the case is cached when its hand-over comes.
    let (_dir, path) = temp_db();
    let mut projector =
        Projector::open(&path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut projector, &log.events, 1);
    let q = Queries::open(&path).expect("queries");
    let (scope, identity, _) = as_user("urban_handler");
    let page = q
        .cases(&everything(), &scope, &identity, monday(4))
        .expect("query");
    assert_eq!(ids(&page), ["C1"]);
}

/// Office hours changed on 2025-03-10 (say, a longer afternoon): spans completed from then on
/// are measured with the new hours, those before keep theirs, and the figures summed over the
/// days are still the scan's, live and rebuilt.
struct ChangedOn {
    at: DateTime<Utc>,
    before: WorkingCalendar,
    after: WorkingCalendar,
}

impl crate::Calendars for ChangedOn {
    fn handling_time(
        &self,
        given: DateTime<Utc>,
        completed: DateTime<Utc>,
    ) -> domain::calendar::WorkingSpan {
        let calendar = if completed < self.at {
            &self.before
        } else {
            &self.after
        };
        calendar.working_time_between(given, completed)
    }
}

fn changed_on() -> ChangedOn {
    let mut data: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/calendar.json")).expect("calendar");
    data["office_hours"] = serde_json::json!([
        {"start": "08:30", "end": "12:00"},
        {"start": "13:30", "end": "20:00"}
    ]);
    let data: CalendarData = serde_json::from_value(data).expect("calendar data");
    ChangedOn {
        at: local("2025-03-10 00:00"),
        before: world().calendar.clone(),
        after: WorkingCalendar::new(data).expect("calendar is valid"),
    }
}

#[test]
fn handling_times_are_measured_on_the_calendar_in_force_when_each_was_completed() {
    let log = generated_city(2026, 120);
    let (_dir, path) = temp_db();
    let mut projector = Projector::open(&path, world().org.clone(), changed_on()).expect("open");
    project(&mut projector, &log.events, 4);
    let q = Queries::open(&path).expect("queries");
    let (_fixed_dir, fixed_path) = temp_db();
    let mut fixed =
        Projector::open(&fixed_path, world().org.clone(), world().calendar.clone()).expect("open");
    project(&mut fixed, &log.events, 4);
    let fixed_q = Queries::open(&fixed_path).expect("queries");
    let weights = crate::kpi::KpiWeights::default();
    let org = &world().org;
    let calendars = changed_on();
    let week = |day: &str| {
        let from = local(day);
        (from, from + Duration::days(7))
    };
    // The week before the change is measured as the fixed calendar measures it; the week
    // after it is not (the afternoons are longer), and both agree with the scan.
    let (before, after) = (week("2025-03-03 00:00"), week("2025-03-10 00:00"));
    let kpis =
        |q: &Queries, (from, to): (DateTime<Utc>, DateTime<Utc>), c: &dyn crate::Calendars| {
            q.kpis(from, to, &weights, c, org).expect("kpis")
        };
    assert_eq!(
        kpis(&q, before, &calendars),
        kpis(&fixed_q, before, &world().calendar)
    );
    let (changed, unchanged) = (
        kpis(&q, after, &calendars),
        kpis(&fixed_q, after, &world().calendar),
    );
    assert!(!changed.is_empty());
    assert_ne!(
        changed, unchanged,
        "the new office hours measure the week after"
    );
    for period in [before, after] {
        assert_eq!(
            kpis(&q, period, &calendars),
            q.kpis_by_scan(period.0, period.1, &weights, &calendars, org)
                .expect("scan")
        );
    }
}
