//! The view layer on its own, without HTTP: scope, masks, the identity-view audit, role checks
//! and the shapes each view gives its renderers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::kinds::{Category, Channel, Kind, Urgency};
use domain::org::UnitId;
use domain::roles::Actor;
use domain::{CaseId, Command, Intake};
use projections::{CaseFilter, Sort, WorkList};
use tempfile::TempDir;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::app::App;
use crate::app::tests::Flaky;
use crate::case_search::CaseSearch;
use crate::directory::{Directory, load_org};
use crate::projection_runner::ReadSide;
use crate::store::EventStore;
use crate::store::sqlite::SqliteStore;

/// Monday 2 March 2026, 10:00 in Shanghai: where the world's clock starts.
fn monday_morning() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00+08:00")
        .expect("time")
        .with_timezone(&Utc)
}

struct World {
    _dir: TempDir,
    state: AppState,
    /// Fails the next appends when told to.
    store: Arc<Flaky>,
    /// A complaint at 城关区 张掖路街道, accepted at the city centre and transferred to the
    /// housing bureau.
    case_id: CaseId,
    /// The application's clock, at [`monday_morning`] until a test moves it.
    clock: Arc<crate::app::ManualClock>,
}

impl World {
    fn user(&self, name: &str) -> Actor {
        self.state
            .directory
            .user(name)
            .unwrap_or_else(|| panic!("demo user `{name}`"))
            .actor()
    }
}

async fn world() -> World {
    let dir = TempDir::new().expect("dir");
    let flaky = Arc::new(Flaky {
        inner: SqliteStore::open(&dir.path().join("events.db")).expect("store"),
        fail: AtomicUsize::new(0),
    });
    let store: Arc<dyn EventStore> = flaky.clone();
    let org = load_org().expect("org");
    let directory = Directory::open(
        dir.path(),
        &crate::directory_log::demo_snapshot().expect("demo"),
        "test-password",
    )
    .expect("users");
    let clock = Arc::new(crate::app::ManualClock::new(monday_morning()));
    let app = Arc::new(App::new(
        store.clone(),
        Arc::new(crate::directory_log::SharedOrg::new(
            crate::directory_log::demo_snapshot().expect("demo"),
        )),
        Arc::new(crate::rules_log::shared_base().expect("rules")),
        directory,
        clock.clone(),
    ));
    let operator = app.directory.user("operator").expect("operator").actor();
    let dispatcher = app
        .directory
        .user("dispatcher")
        .expect("dispatcher")
        .actor();
    let intake = Intake {
        caller_name: "张三".into(),
        caller_phone: "13812345678".into(),
        channel: Some(Channel::Phone),
        category: Some(Category::Complaint),
        kind: Some(Kind::Escalated),
        urgency: Some(Urgency::Normal),
        title: "小区停水".into(),
        content: "小区从早上开始停水，没有通知".into(),
        address: "张掖路1号".into(),
        location_unit_id: Some(UnitId::new("d.chengguan.s01.c01")),
        confidential: false,
    };
    let created = app
        .create(&operator, intake, true, None)
        .await
        .expect("created");
    let transfer = Command::Transfer {
        lead_unit_id: UnitId::new("city.bureau.housing"),
        co_unit_ids: Vec::new(),
        note: String::new(),
    };
    app.execute(&dispatcher, &created.id, transfer, None, None)
        .await
        .expect("transferred");
    let read = ReadSide::open(
        &dir.path().join("read.db"),
        store.clone(),
        org.clone(),
        app.rules.clone(),
    )
    .expect("read side");
    read.catch_up().await.expect("caught up");
    let state = AppState {
        kb: crate::kb::Kb::start(dir.path(), app.clone())
            .await
            .expect("kb"),
        case_search: CaseSearch::start(dir.path(), store.clone(), org).expect("case index"),
        access: Arc::new(crate::access::Access::new(
            app.clone(),
            &crate::access::AccessSettings::default(),
            crate::access::SecurityLog::start(store).0,
        )),
        app,
        read,
        kpi_weights: projections::kpi::KpiWeights::default(),
        deadline_warning_hours: super::DEFAULT_DUE_WITHIN_HOURS,
    };
    World {
        _dir: dir,
        state,
        store: flaky,
        case_id: created.id,
        clock,
    }
}

fn filter() -> CaseFilter {
    CaseFilter {
        status: None,
        overdue: None,
        category: None,
        kind: None,
        urgency: None,
        unit_id: None,
        subtree: false,
        district_id: None,
        created_from: None,
        created_to: None,
        caller_phone: None,
        q: None,
        text_matches: None,
        sort: Sort::default(),
        page: 1,
        per_page: 20,
    }
}

fn query(text: Option<&str>) -> CaseQuery {
    CaseQuery {
        filter: filter(),
        text: text.map(str::to_owned),
        min_position: None,
    }
}

#[tokio::test]
async fn a_case_detail_that_does_not_ask_shows_the_caller_masked_and_records_nothing() {
    let w = world().await;
    let handler = w.user("housing_handler");
    let detail = w
        .state
        .case_detail_revealing(&handler, &w.case_id, false)
        .await
        .expect("detail");
    assert!(!detail.full_identity);
    assert!(detail.may_reveal);
    assert_eq!(detail.caller_phone(), "138****5678");
    assert!(
        w.state
            .identity_views(&w.case_id)
            .await
            .expect("views")
            .is_empty()
    );
    let shown = w
        .state
        .case_detail_revealing(&handler, &w.case_id, true)
        .await
        .expect("detail");
    assert!(shown.full_identity && !shown.may_reveal);
    let views = w.state.identity_views(&w.case_id).await.expect("views");
    assert_eq!(views.len(), 1, "{views:?}");
    // Someone who may not see the caller is offered nothing to reveal.
    let leader = w.user("city_leader_housing");
    let masked = w
        .state
        .case_detail_revealing(&leader, &w.case_id, true)
        .await
        .expect("detail");
    assert!(!masked.full_identity && !masked.may_reveal);
}

#[tokio::test]
async fn the_case_detail_is_scoped_masked_and_audits_a_full_view() {
    let w = world().await;
    let elsewhere = w.user("qilihe_dispatcher");
    let outside = w.state.case_detail(&elsewhere, &w.case_id).await;
    assert!(
        matches!(outside, Err(crate::app::AppError::NotFound(_))),
        "{outside:?}"
    );
    // The housing bureau holds it: its handler sees the caller in full, and that is recorded.
    let handler = w.user("housing_handler");
    let detail = w
        .state
        .case_detail(&handler, &w.case_id)
        .await
        .expect("detail");
    assert!(detail.full_identity);
    assert_eq!(detail.caller_phone(), "13812345678");
    let views = w.state.identity_views(&w.case_id).await.expect("views");
    assert!(
        views.iter().any(|v| v.username == "housing_handler"),
        "{views:?}"
    );
    assert_eq!(detail.timeline[0].label, "受理");
    assert_eq!(detail.timeline[0].actor_name, "冯一鸣");
    assert!(
        detail.actions.iter().any(|a| a.verb == "receive"),
        "{:?}",
        detail.actions
    );
    // A leader of the district sees it only if the case went to a unit they oversee: it did
    // not, so the district leader does not see it at all.
    let leader = w.user("chengguan_leader");
    assert!(w.state.case_detail(&leader, &w.case_id).await.is_err());
}

#[tokio::test]
async fn a_case_list_is_scoped_and_every_caller_masked() {
    let w = world().await;
    let operator = w.user("operator");
    let all = w
        .state
        .case_list(&operator, query(None))
        .await
        .expect("list");
    assert_eq!(all.page.total, 1);
    assert_eq!(all.text_match, None);
    let row = &all.page.items[0];
    assert_eq!(row.caller_phone, "138****5678");
    assert_ne!(row.caller_name, "张三");
    // A case number finds that case, for those who may see it, and nobody else.
    let number = w.case_id.to_string();
    let found = w
        .state
        .case_list(&operator, query(Some(&number)))
        .await
        .expect("by number");
    assert_eq!(found.text_match, Some(TextMatch::CaseId));
    assert_eq!(found.page.items.len(), 1);
    let elsewhere = w.user("qilihe_dispatcher");
    let hidden = w
        .state
        .case_list(&elsewhere, query(Some(&number)))
        .await
        .expect("by number elsewhere");
    assert_eq!(hidden.page.total, 0);
    // No page far out: the index would reserve room for every row before it.
    let mut far = query(None);
    far.filter.page = 1_000_000;
    let refused = w.state.case_list(&operator, far).await;
    assert!(
        matches!(
            &refused,
            Err(Failure::BadRequest {
                code: "invalid_paging",
                ..
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn work_lists_and_their_counts_agree_and_mask_callers() {
    let w = world().await;
    let handler = w.user("housing_handler");
    let counts = w
        .state
        .work_list_counts(&handler, None, None)
        .await
        .expect("counts");
    let to_receive = counts
        .counts
        .iter()
        .find(|c| c.list == WorkList::ToReceive)
        .expect("to_receive counted");
    assert_eq!(to_receive.count, 1);
    let page = w
        .state
        .work_list(&handler, WorkList::ToReceive, None, (1, 20), None)
        .await
        .expect("to_receive");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].caller_phone, "138****5678");
    for hours in [0, MAX_DUE_WITHIN_HOURS + 1] {
        let refused = w.state.work_list_counts(&handler, Some(hours), None).await;
        assert!(
            matches!(refused, Err(Failure::BadRequest { .. })),
            "{hours}"
        );
    }
}

#[tokio::test]
async fn a_work_list_row_is_red_yellow_or_green_by_the_working_time_left() {
    use crate::app::views::DeadlineState;
    use domain::calendar::WorkingTime;
    let w = world().await;
    let handler = w.user("housing_handler");
    let page = w
        .state
        .work_list(&handler, WorkList::ToReceive, None, (1, 20), None)
        .await
        .expect("to_receive");
    let mut row = page.items[0].clone();
    let due = row.receive_due.expect("a receive-by");
    let late = w
        .state
        .time_left(WorkList::ToReceive, &row, due + chrono::Duration::hours(1))
        .expect("a deadline");
    assert_eq!(late.state, DeadlineState::Overdue);
    assert_eq!(late.due, due);
    let close = w
        .state
        .time_left(
            WorkList::ToReceive,
            &row,
            due - chrono::Duration::minutes(1),
        )
        .expect("a deadline");
    assert_eq!(close.state, DeadlineState::Warning);
    assert!(close.working_minutes <= 1, "{close:?}");
    let now = w.state.now();
    row.receive_due = Some(
        w.state
            .calendar()
            .add(now, WorkingTime::Minutes(10 * 60))
            .at,
    );
    row.warned = false;
    let far = w
        .state
        .time_left(WorkList::ToReceive, &row, now)
        .expect("a deadline");
    assert_eq!(
        (far.state, far.working_minutes),
        (DeadlineState::InTime, 600)
    );
    row.warned = true;
    let warned = w
        .state
        .time_left(WorkList::ToReceive, &row, now)
        .expect("a deadline");
    assert_eq!(warned.state, DeadlineState::Warning);
    assert_eq!(w.state.time_left(WorkList::ToCallBack, &row, now), None);
    // The window is the service's `--deadline-warning-hours`: at 16, ten hours left is yellow.
    row.warned = false;
    let mut wide = w.state.clone();
    wide.deadline_warning_hours = 16;
    let within = wide
        .time_left(WorkList::ToReceive, &row, now)
        .expect("a deadline");
    assert_eq!(within.state, DeadlineState::Warning);
}

#[tokio::test]
async fn the_kpi_table_holds_a_district_s_office_to_its_district() {
    let w = world().await;
    let district = w
        .state
        .kpi_table(
            &w.user("chengguan_supervisor"),
            Period::Month,
            None,
            None,
            None,
        )
        .await
        .expect("district KPIs");
    assert!(
        district
            .units
            .iter()
            .all(|r| r.kpi.unit_id.starts_with("d.chengguan")),
        "{:?}",
        district
            .units
            .iter()
            .map(|r| &r.kpi.unit_id)
            .collect::<Vec<_>>()
    );
    let city = w
        .state
        .kpi_table(&w.user("supervisor"), Period::Month, None, None, None)
        .await
        .expect("city KPIs");
    let housing = city
        .units
        .iter()
        .find(|r| r.kpi.unit_id == "city.bureau.housing")
        .expect("the housing bureau");
    assert_eq!(housing.kpi.received, 1);
    assert!(!housing.unit_name.is_empty());
    assert!(city.to_csv().starts_with("\u{feff}比较组,排名"));
}

#[tokio::test]
async fn the_route_is_scoped_and_the_suggestion_is_for_centre_staff() {
    let w = world().await;
    let outside = w
        .state
        .route(&w.user("qilihe_dispatcher"), &w.case_id)
        .await;
    assert!(matches!(outside, Err(Failure::NotFound(_))), "{outside:?}");
    let handler = w
        .state
        .route(&w.user("housing_handler"), &w.case_id)
        .await
        .expect("route for the holder");
    assert!(handler.suggestion.is_none());
    assert_eq!(handler.hops.len(), 1);
    assert_eq!(handler.hops[0].to.id.as_str(), "city.bureau.housing");
    assert!(!handler.hops[0].to.name.is_empty());
    let dispatcher = w
        .state
        .route(&w.user("dispatcher"), &w.case_id)
        .await
        .expect("route for the dispatcher");
    let suggestion = dispatcher.suggestion.expect("a suggestion");
    assert_eq!(
        suggestion.units[0].unit.id.as_str(),
        "city.bureau.water",
        "{}",
        suggestion.found.reason
    );
    assert_eq!(
        suggestion.place.last().map(|u| u.id.as_str()),
        Some("d.chengguan.s01.c01")
    );
    let refused = w.state.suggestion(
        &w.user("housing_handler"),
        &UnitId::new("d.chengguan.s01"),
        Category::Complaint,
        "停水",
    );
    let refused = refused.expect_err("handlers get no suggestions").describe();
    assert_eq!((refused.status, refused.code), (403, "role_not_allowed"));
}

#[tokio::test]
async fn the_daily_report_is_for_its_readers() {
    let w = world().await;
    let refused = w
        .state
        .daily_report(&w.user("housing_handler"), None, None)
        .await
        .expect_err("handlers read no reports");
    assert_eq!(refused.status(), 403);
    let report = w
        .state
        .daily_report(&w.user("chengguan_supervisor"), None, None)
        .await
        .expect("a district's report");
    assert!(!report.units.is_empty());
    assert!(
        report
            .units
            .iter()
            .all(|u| u.unit_id.as_deref() == Some("d.chengguan")),
        "{:?}",
        report.units
    );
}

#[tokio::test]
async fn a_full_view_is_recorded_once_in_a_window_and_never_shown_unrecorded() {
    let w = world().await;
    let handler = w.user("housing_handler");
    for _ in 0..5 {
        let detail = w
            .state
            .case_detail(&handler, &w.case_id)
            .await
            .expect("detail");
        assert!(detail.full_identity);
    }
    let views = w.state.identity_views(&w.case_id).await.expect("views");
    assert_eq!(views.len(), 1, "{views:?}");
    // The audit cannot be written (a full disk): the case is still read, the caller masked.
    w.store.fail.store(1, Ordering::SeqCst);
    let dispatcher = w.user("dispatcher");
    let detail = w
        .state
        .case_detail(&dispatcher, &w.case_id)
        .await
        .expect("the case is still read");
    assert!(!detail.full_identity);
    assert_eq!(detail.caller_phone(), "138****5678");
    let page = w
        .state
        .identity_view_page(&w.user("shift_leader"), &w.case_id, (1, 50))
        .await
        .expect("page");
    assert_eq!(page.total, 1, "the failed view was not recorded");
    let refused = w
        .state
        .identity_view_page(&w.user("shift_leader"), &w.case_id, (1, 0))
        .await;
    assert!(
        matches!(refused, Err(Failure::BadRequest { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_recalled_unit_reads_the_case_as_it_was_at_the_recall() {
    let w = world().await;
    let dispatcher = w.user("dispatcher");
    w.state
        .execute(
            &dispatcher,
            &w.case_id,
            Command::Recall {
                reason: "派错单位".into(),
            },
            None,
            None,
        )
        .await
        .expect("recalled");
    w.state
        .execute(
            &dispatcher,
            &w.case_id,
            Command::Transfer {
                lead_unit_id: UnitId::new("city.bureau.water"),
                co_unit_ids: Vec::new(),
                note: String::new(),
            },
            None,
            None,
        )
        .await
        .expect("transferred again");
    let detail = w
        .state
        .case_detail(&w.user("housing_handler"), &w.case_id)
        .await
        .expect("still found");
    assert!(detail.until.is_some());
    assert!(!detail.full_identity);
    assert_eq!(detail.timeline.last().map(|e| e.label), Some("追回"));
    // A command it may still take acts on the case now, not on the part it saw.
    assert_eq!(detail.case.version(), 3);
    assert_eq!(detail.current_version, 4);
    assert_eq!(
        detail.case.holders().count(),
        0,
        "the water bureau is not shown"
    );
    assert!(detail.actions.is_empty(), "{:?}", detail.actions);
}

#[tokio::test]
async fn the_overdue_board_counts_by_bureau_and_unit_once_the_clock_passes_the_receive_by() {
    let w = world().await;
    let office = w.user("supervisor");
    let board = w.state.overdue_board(&office, None).await.expect("board");
    assert_eq!(board.total, 0, "{board:?}");
    assert!(board.groups.is_empty());
    // The receive-by is two working hours after the transfer: by the afternoon it is past.
    w.clock.advance(chrono::Duration::hours(5));
    let board = w.state.overdue_board(&office, None).await.expect("board");
    assert_eq!(board.as_of, monday_morning() + chrono::Duration::hours(5));
    assert_eq!(board.total, 1);
    assert_eq!(
        board.groups,
        [BoardGroup {
            group_id: "city.bureau.housing".into(),
            name: "兰州市住房和城乡建设局".into(),
            count: 1,
            units: vec![BoardUnit {
                unit_id: "city.bureau.housing".into(),
                name: "兰州市住房和城乡建设局".into(),
                count: 1,
            }],
        }]
    );
    let cases = w
        .state
        .overdue_cases(&office, Some("city.bureau.housing"), (1, 20), None)
        .await
        .expect("cases");
    assert_eq!(cases.total, 1);
    assert_eq!(cases.items[0].case_id, w.case_id.to_string());
    assert_eq!(cases.items[0].status_label, "逾期未接收");
    // Every caller masked on the board, as on every list.
    assert_ne!(cases.items[0].caller_phone, "13812345678");
    let elsewhere = w
        .state
        .overdue_cases(&office, Some("d.qilihe"), (1, 20), None)
        .await
        .expect("cases");
    assert_eq!(elsewhere.total, 0);
    assert!(elsewhere.items.is_empty());
}

#[tokio::test]
async fn the_overdue_board_is_the_efficiency_offices_within_its_scope() {
    let w = world().await;
    w.clock.advance(chrono::Duration::days(1));
    // A district's office sees its district only: the bureau's case is not on its board.
    let district = w.user("chengguan_supervisor");
    let board = w.state.overdue_board(&district, None).await.expect("board");
    assert_eq!(board.total, 0, "{board:?}");
    assert_eq!(
        w.state
            .overdue_board(&w.user("admin"), None)
            .await
            .expect("board")
            .total,
        1
    );
    for name in ["housing_handler", "operator", "city_leader"] {
        let refused = w
            .state
            .overdue_board(&w.user(name), None)
            .await
            .expect_err(name);
        assert_eq!(refused.describe().status, 403, "{name}");
        assert!(
            w.state
                .overdue_cases(&w.user(name), None, (1, 20), None)
                .await
                .is_err(),
            "{name}"
        );
    }
}
