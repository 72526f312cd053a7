//! Case numbers without holes (issue 9 item 2): a refused intake and a failed append use no
//! number; a number taken in the store by another writer is skipped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use domain::kinds::{Category, Channel, Kind, Urgency};
use domain::org::UnitId;
use tempfile::TempDir;

use super::*;
use crate::directory::Directory;
use crate::store::ExpectedVersion;
use crate::store::sqlite::SqliteStore;
use crate::store::{AppendResult, Subscription};

/// Monday 2 March 2026, 10:00 in Shanghai.
struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T10:00:00+08:00")
            .expect("time")
            .with_timezone(&Utc)
    }
}

/// A store whose next `fail` appends fail as a full disk would, after which it behaves.
pub(crate) struct Flaky {
    pub(crate) inner: SqliteStore,
    pub(crate) fail: AtomicUsize,
}

#[async_trait::async_trait]
impl EventStore for Flaky {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Unavailable(
                "sqlite: database or disk is full".into(),
            ));
        }
        self.inner.append(stream, expected, events).await
    }
    async fn read_stream(&self, s: &str, v: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(s, v).await
    }
    async fn read_all(&self, a: Position, l: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(a, l).await
    }
    async fn stream_version(&self, s: &str) -> Result<u64, StoreError> {
        self.inner.stream_version(s).await
    }
    async fn streams_with_prefix(&self, p: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.streams_with_prefix(p).await
    }
    async fn events_of_type(&self, t: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.events_of_type(t).await
    }
    fn head(&self) -> Position {
        self.inner.head()
    }
    async fn wait_for(&self, p: Position, t: Duration) -> bool {
        self.inner.wait_for(p, t).await
    }
    fn subscribe(&self, after: Position) -> Subscription {
        self.inner.subscribe(after)
    }
}

struct World {
    _dir: TempDir,
    store: Arc<Flaky>,
    app: App,
}

fn world() -> World {
    let dir = TempDir::new().expect("dir");
    let store = Arc::new(Flaky {
        inner: SqliteStore::open(&dir.path().join("events.db")).expect("store"),
        fail: AtomicUsize::new(0),
    });
    let directory = Directory::open(
        dir.path(),
        &crate::directory_log::demo_snapshot().expect("demo"),
        "test-password",
    )
    .expect("users");
    let app = App::new(
        store.clone(),
        Arc::new(crate::directory_log::SharedOrg::new(
            crate::directory_log::demo_snapshot().expect("demo"),
        )),
        Arc::new(crate::rules_log::shared_base().expect("rules")),
        directory,
        Arc::new(FixedClock),
    );
    World {
        _dir: dir,
        store,
        app,
    }
}

fn operator() -> Actor {
    Actor {
        username: "operator".into(),
        unit_id: UnitId::new("city"),
        roles: vec![Role::Operator],
        oversees: Vec::new(),
    }
}

fn intake(title: &str) -> Intake {
    Intake {
        caller_name: "张三".into(),
        caller_phone: "13812345678".into(),
        channel: Some(Channel::Phone),
        category: Some(Category::Complaint),
        kind: Some(Kind::Escalated),
        urgency: Some(Urgency::Normal),
        title: title.into(),
        content: "夜间施工".into(),
        address: "某小区".into(),
        location_unit_id: Some(UnitId::new("d.chengguan.s01")),
        confidential: false,
    }
}

async fn create(app: &App, intake: Intake) -> Result<String, AppError> {
    app.create(&operator(), intake, true, None)
        .await
        .map(|o| o.id.to_string())
}

#[tokio::test]
async fn a_refused_intake_uses_no_case_number() {
    let w = world();
    assert_eq!(
        create(&w.app, intake("噪音")).await.expect("1"),
        "2026030200001"
    );
    let mut bad = intake("噪音");
    bad.caller_phone = "12".into();
    assert!(matches!(
        create(&w.app, bad).await,
        Err(AppError::Domain(_))
    ));
    assert_eq!(
        create(&w.app, intake("噪音")).await.expect("2"),
        "2026030200002"
    );
}

#[tokio::test]
async fn a_failed_append_gives_its_number_to_the_next_intake() {
    let w = world();
    assert_eq!(
        create(&w.app, intake("一")).await.expect("1"),
        "2026030200001"
    );
    w.store.fail.store(2, Ordering::SeqCst);
    for _ in 0..2 {
        // A full disk: the caller is told to retry later, not that the service broke.
        let err = create(&w.app, intake("二")).await.expect_err("disk full");
        let failure = crate::app::failure::Failure::from(err).describe();
        assert_eq!((failure.status, failure.code), (503, "storage_unavailable"));
    }
    assert_eq!(
        create(&w.app, intake("二")).await.expect("2"),
        "2026030200002"
    );
    assert_eq!(
        create(&w.app, intake("三")).await.expect("3"),
        "2026030200003"
    );
}

#[tokio::test]
async fn a_number_another_writer_took_is_skipped_without_a_hole() {
    let w = world();
    assert_eq!(
        create(&w.app, intake("一")).await.expect("1"),
        "2026030200001"
    );
    // Another instance on the same store takes the next number behind this one's back.
    let other = world_on(&w);
    assert_eq!(
        create(&other, intake("二")).await.expect("2"),
        "2026030200002"
    );
    assert_eq!(
        create(&w.app, intake("三")).await.expect("3"),
        "2026030200003"
    );
    assert_eq!(
        create(&other, intake("四")).await.expect("4"),
        "2026030200004"
    );
}

/// A second application on the store of `w`, as a second service instance would be.
fn world_on(w: &World) -> App {
    let dir = TempDir::new().expect("dir");
    let directory = Directory::open(
        dir.path(),
        &crate::directory_log::demo_snapshot().expect("demo"),
        "test-password",
    )
    .expect("users");
    App::new(
        w.store.clone(),
        Arc::new(crate::directory_log::SharedOrg::new(
            crate::directory_log::demo_snapshot().expect("demo"),
        )),
        Arc::new(crate::rules_log::shared_base().expect("rules")),
        directory,
        Arc::new(FixedClock),
    )
}

fn someone(name: &str, unit: &str, role: Role) -> Actor {
    Actor {
        username: name.into(),
        unit_id: UnitId::new(unit),
        roles: vec![role],
        oversees: Vec::new(),
    }
}

#[tokio::test]
async fn the_case_detail_is_scoped_masked_audited_labelled_and_carries_the_actions() {
    let w = world();
    let mut secret = intake("噪音");
    secret.confidential = true;
    let id = CaseId::parse(&create(&w.app, secret).await.expect("created")).expect("id");
    let dispatcher = someone("dispatcher", "city", Role::Dispatcher);
    w.app
        .execute(
            &dispatcher,
            &id,
            Command::Transfer {
                lead_unit_id: UnitId::new("city.bureau.housing"),
                co_unit_ids: Vec::new(),
                note: String::new(),
            },
            None,
            None,
        )
        .await
        .expect("transferred");

    // The bureau handler: masked everywhere, no audit, may receive.
    let handler = someone("housing_handler", "city.bureau.housing", Role::Handler);
    let seen = w.app.case_detail(&handler, &id).await.expect("in scope");
    assert!(!seen.full_identity);
    assert_eq!(seen.caller_phone(), "138****5678");
    assert_eq!(seen.caller_name(), "张*");
    let accepted = &seen.timeline[0];
    assert_eq!(accepted.label, "受理");
    let domain::EventBody::Accepted { intake, .. } = &accepted.event.body else {
        panic!("the first event is the intake");
    };
    assert_eq!(
        intake.caller_phone, "138****5678",
        "masked in the timeline too"
    );
    assert_eq!(seen.timeline[1].label, "转办");
    let verbs: Vec<&str> = seen.actions.iter().map(|a| a.verb).collect();
    assert!(verbs.contains(&"receive"), "{verbs:?}");
    assert!(w.app.identity_views(&id).await.expect("audit").is_empty());

    // The centre's dispatcher sees the caller in full, and that view is recorded.
    let full = w.app.case_detail(&dispatcher, &id).await.expect("in scope");
    assert!(full.full_identity);
    assert_eq!(full.caller_phone(), "13812345678");
    let views = w.app.identity_views(&id).await.expect("audit");
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].username, "dispatcher");

    // Another unit: the case does not exist.
    let other = someone("urban_handler", "city.bureau.urban", Role::Handler);
    assert!(matches!(
        w.app.case_detail(&other, &id).await,
        Err(AppError::NotFound(_))
    ));
}

#[test]
fn times_read_in_shanghai_for_machines_and_people() {
    let t = DateTime::parse_from_rfc3339("2026-12-08T10:00:00.123456Z")
        .expect("time")
        .with_timezone(&Utc);
    assert_eq!(rfc3339(t), "2026-12-08T18:00:00+08:00");
    assert_eq!(zh_time(t), "2026年12月8日 18:00");
    let morning = DateTime::parse_from_rfc3339("2026-01-04T01:05:00Z")
        .expect("time")
        .with_timezone(&Utc);
    assert_eq!(zh_time(morning), "2026年1月4日 09:05");
}

#[tokio::test]
async fn a_keyed_intake_cut_off_after_claiming_its_number_is_created_under_it_on_retry() {
    let w = world();
    let key = "intake-1";
    let first = intake("夜间施工扰民");
    let retry = Retry::create(key, "operator", &first, true);
    // The first run claimed number 1 and was cut off before its intake was appended.
    w.app
        .cases
        .claim(&retry, 0, "case-2026030200001")
        .await
        .expect("claim");
    let done = w
        .app
        .create(&operator(), first.clone(), true, Some(key))
        .await
        .expect("retry");
    assert_eq!(done.id.as_str(), "2026030200001");
    // Again: the same answer, nothing more recorded.
    let again = w
        .app
        .create(&operator(), first.clone(), true, Some(key))
        .await
        .expect("again");
    assert_eq!((again.id, again.version), (done.id, done.version));
    // The key with another request is refused.
    let other = w
        .app
        .create(&operator(), intake("另一件事"), true, Some(key))
        .await;
    assert!(matches!(other, Err(AppError::KeyReused)), "{other:?}");
}

#[tokio::test]
async fn a_claimed_number_another_intake_took_meanwhile_is_claimed_anew() {
    let w = world();
    let key = "intake-2";
    let first = intake("夜间施工扰民");
    let retry = Retry::create(key, "operator", &first, true);
    w.app
        .cases
        .claim(&retry, 0, "case-2026030200001")
        .await
        .expect("claim");
    // After a restart, an intake without a key counts the store and takes number 1.
    assert_eq!(
        create(&w.app, intake("路灯不亮")).await.expect("other"),
        "2026030200001"
    );
    let done = w
        .app
        .create(&operator(), first.clone(), true, Some(key))
        .await
        .expect("retry");
    assert_eq!(done.id.as_str(), "2026030200002");
    let again = w
        .app
        .create(&operator(), first, true, Some(key))
        .await
        .expect("again");
    assert_eq!(again.id.as_str(), "2026030200002");
    let claims = w
        .store
        .read_stream(&retry.key_stream().to_string(), 1)
        .await
        .expect("claims");
    assert_eq!(claims.len(), 2, "the key claimed number 1, then number 2");
}
