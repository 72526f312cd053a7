//! Start-up: open the data directory, wire the application, serve HTTP, shut down gracefully.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use domain::calendar::{CalendarData, DeadlinePolicy, WorkingCalendar};
use tokio::net::TcpListener;

use crate::app::{App, SystemClock};
use crate::config::Settings;
use crate::directory::{Directory, load_org};
use crate::jobs::Jobs;
use crate::projection_runner::ReadSide;
use crate::store::EventStore;
use crate::store::sqlite::SqliteStore;

pub const CALENDAR_JSON: &str = include_str!("../fixtures/calendar.json");
pub const POLICY_JSON: &str = include_str!("../fixtures/deadline-policy.json");

/// The compiled-in working calendar.
///
/// # Errors
/// When the fixture does not parse or validate.
pub fn load_calendar() -> anyhow::Result<WorkingCalendar> {
    let data: CalendarData =
        serde_json::from_str(CALENDAR_JSON).context("failed to parse `fixtures/calendar.json`")?;
    WorkingCalendar::new(data).context("`fixtures/calendar.json` is invalid")
}

/// The compiled-in deadline policy.
///
/// # Errors
/// When the fixture does not parse or validate.
pub fn load_policy() -> anyhow::Result<DeadlinePolicy> {
    let policy: DeadlinePolicy = serde_json::from_str(POLICY_JSON)
        .context("failed to parse `fixtures/deadline-policy.json`")?;
    policy
        .validate()
        .context("`fixtures/deadline-policy.json` is invalid")?;
    Ok(policy)
}

/// A running server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The application (for the bench's direct store access).
    pub app: Arc<App>,
    /// The read models and their queries.
    pub read: Arc<ReadSide>,
    /// The knowledge base (its index follows the store).
    pub kb: Arc<crate::kb::Kb>,
    /// The case-text index (it follows the store).
    pub case_search: Arc<crate::case_search::CaseSearch>,
    /// The login path and the audit of access.
    pub access: Arc<crate::access::Access>,
    /// The scheduled jobs (a test runs `sweep_once` after moving its clock).
    pub jobs: Arc<Jobs>,
    /// The writer of the security events.
    security_writer: tokio::task::JoinHandle<()>,
    follower: tokio::task::JoinHandle<()>,
    scheduler: tokio::task::JoinHandle<()>,
    /// Takes other instances' directory, rules and merges into this one's memory.
    others: tokio::task::JoinHandle<()>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Held until the service has stopped.
    _lock: crate::datadir::DataDirLock,
}

impl Running {
    /// Stops accepting, finishes in-flight requests, waits.
    ///
    /// # Errors
    /// When the server task failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        let res = self.task.await.context("server task panicked")?;
        // What the audit of access still holds (the counts of unknown names) is written.
        self.access.log().flush().await;
        self.security_writer.abort();
        let _ = self.security_writer.await;
        // Those last events are followed by the read model too (it skips them, but its
        // checkpoint passes them), so a rebuild from the store finds it where it left off.
        self.read
            .wait_for(self.app.store.head().0, std::time::Duration::from_secs(5))
            .await;
        // The follower and the jobs hold the store; stop them so the store's writer can finish.
        self.scheduler.abort();
        let _ = self.scheduler.await;
        self.others.abort();
        let _ = self.others.await;
        self.follower.abort();
        self.kb.stop().await;
        self.case_search.stop().await;
        let _ = self.follower.await;
        res
    }
}

/// Opens the data directory and builds the application.
///
/// # Errors
/// IO failures, corrupt data, invalid fixtures.
pub async fn build(settings: &Settings) -> anyhow::Result<Arc<App>> {
    let store = crate::store::open(settings).await?;
    build_on(settings, store, Arc::new(SystemClock)).await
}

/// Creates the data directory if needed and opens its event store, as a first start does.
///
/// # Errors
/// IO failures, a corrupt or newer store.
pub fn open_store(settings: &Settings) -> anyhow::Result<SqliteStore> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "failed to create data directory `{}`",
            settings.data_dir.display()
        )
    })?;
    let store_path = settings.store_path();
    SqliteStore::open(&store_path)
        .with_context(|| format!("failed to open event store `{}`", store_path.display()))
}

/// [`build`] on an opened store and a given clock: the directory is seeded exactly as on a
/// first start (the demo city of the fixtures; on a data directory of an older build, with
/// the users of its `users.json`), and `clock` times what the application records
/// (`minqing generate` runs it on its simulated clock and keeps the store for bulk imports).
///
/// # Errors
/// As [`build`].
pub async fn build_on(
    settings: &Settings,
    store: Arc<dyn EventStore>,
    clock: Arc<dyn crate::app::Clock>,
) -> anyhow::Result<Arc<App>> {
    let org = load_org()?;
    crate::dispatch::dispatch()?;
    let data_dir = settings.data_dir.clone();
    let snapshot = crate::directory_log::open(
        &*store,
        org.units(),
        move || match crate::directory::legacy_users(&data_dir)? {
            Some(users) => Ok(users),
            None => crate::directory::fixture_users(),
        },
        clock.now(),
    )
    .await
    .context("failed to open the directory")?;
    let directory = Directory::open(&settings.data_dir, &snapshot, &settings.demo_password)?;
    let store_for_rules = store.clone();
    let app = Arc::new(App::new(
        store,
        Arc::new(crate::directory_log::SharedOrg::new(snapshot)),
        Arc::new(crate::rules_log::SharedRules::new(
            crate::rules_log::load(&*store_for_rules).await?,
        )),
        directory,
        clock,
    ));
    app.start()
        .await
        .context("failed to reconcile merged cases at start-up")?;
    // The reader of the catalogue in force, built before the first request asks for it.
    let catalogue = std::sync::Arc::clone(app.rules.current().rules.current().catalogue());
    tokio::task::spawn_blocking(move || crate::dispatch::dispatch()?.reader_for(&catalogue))
        .await
        .context("failed to build the dispatch catalogue's segmenter")??;
    Ok(app)
}

/// Binds and serves in the background until [`Running::stop`].
///
/// # Errors
/// When the address cannot be bound or the application cannot be built.
pub async fn start(settings: &Settings) -> anyhow::Result<Running> {
    // A bad setting stops the start before anything is opened.
    settings.validate()?;
    // Bind before the data directory is created or seeded: a taken port leaves nothing behind.
    let listener = TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("failed to listen on `{}`", settings.addr))?;
    // One owner per data directory, before anything in it is opened.
    let lock = crate::datadir::DataDirLock::create_and_acquire(&settings.data_dir, "serve")?;
    let store = crate::store::open(settings).await?;
    serve_on(settings, listener, lock, store, Arc::new(SystemClock)).await
}

/// The whole service (API, workbench, read models, indexes, jobs) in this process, on a
/// listener, a store and a clock the caller gives: tests start it on `127.0.0.1:0` with a
/// [`crate::app::ManualClock`] and move time (zero2prod's `spawn_app`). `settings.addr` is
/// not used; the data directory is created, locked and seeded as by `minqing serve`.
///
/// # Errors
/// Invalid settings, a data directory another process owns, and the failures of [`start`].
pub async fn start_on(
    settings: &Settings,
    listener: TcpListener,
    store: Arc<dyn EventStore>,
    clock: Arc<dyn crate::app::Clock>,
) -> anyhow::Result<Running> {
    settings.validate()?;
    let lock = crate::datadir::DataDirLock::create_and_acquire(&settings.data_dir, "serve")?;
    serve_on(settings, listener, lock, store, clock).await
}

async fn serve_on(
    settings: &Settings,
    listener: TcpListener,
    lock: crate::datadir::DataDirLock,
    store: Arc<dyn EventStore>,
    clock: Arc<dyn crate::app::Clock>,
) -> anyhow::Result<Running> {
    // The read models and indexes of this directory follow this store and no other.
    crate::datadir::check_store(&settings.data_dir, &store.identity())?;
    // Other instances' changes after the snapshots are loaded reach this one's memory.
    let loaded_from = store.head();
    let app = build_on(settings, store, clock).await?;
    let others = if app.store.is_shared() {
        app.clone().follow_other_writers(loaded_from)
    } else {
        tokio::spawn(async {})
    };
    let read_path = settings.data_dir.join("read.db");
    let read = ReadSide::open(
        &read_path,
        app.store.clone(),
        app.orgs.clone(),
        app.rules.clone(),
    )?;
    let jobs = Arc::new(
        Jobs::new(
            app.clone(),
            read.clone(),
            &settings.schedules(),
            settings.reports_dir(),
        )
        .context("invalid job schedule")?,
    );
    let addr = listener
        .local_addr()
        .context("failed to read the bound address")?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let follower = read.spawn_follower();
    let scheduler = jobs.clone().spawn();
    let kb = crate::kb::Kb::start(&settings.data_dir, app.clone()).await?;
    let case_search = crate::case_search::CaseSearch::start(
        &settings.data_dir,
        app.store.clone(),
        app.orgs.clone(),
    )?;
    let (security_log, security_writer) = crate::access::SecurityLog::start(app.store.clone());
    let access = Arc::new(crate::access::Access::new(
        app.clone(),
        &settings.access,
        security_log,
    ));
    // On a shared store, sign-in failures on other instances count here too.
    app.follow_logins_with(&access);
    let state = crate::http::AppState {
        access: access.clone(),
        app: app.clone(),
        read: read.clone(),
        kb: kb.clone(),
        case_search: case_search.clone(),
        kpi_weights: settings.kpi_weights,
        deadline_warning_hours: settings.deadline_warning_hours,
    };
    // A close whose hand-over was cut short (a crash) is finished once the read models
    // have caught up; it does nothing when no closed unit holds a case.
    let reconciling = state.clone();
    tokio::spawn(async move {
        let handed = reconciling.reconcile_closed_units().await;
        if handed > 0 {
            tracing::info!(
                cases = handed,
                "handed closed units' open cases to their successors"
            );
        }
    });
    let router = crate::http::router(state);
    let limits = settings.connections;
    let task = tokio::spawn(async move {
        crate::connections::serve(listener, router, limits, async move {
            let _ = rx.await;
        })
        .await;
        Ok(())
    });
    Ok(Running {
        addr,
        app,
        read,
        kb,
        case_search,
        access,
        jobs,
        security_writer,
        follower,
        scheduler,
        others,
        shutdown: tx,
        task,
        _lock: lock,
    })
}

/// `minqing rebuild`, after the read models: rebuilds the knowledge-base index and the
/// case index of `data_dir` from position 0 (run while the service is stopped); returns
/// the checkpoints reached.
///
/// # Errors
/// IO, store, decode or index failures.
pub async fn rebuild_search_indexes(data_dir: &Path) -> anyhow::Result<(u64, u64)> {
    let store_path = data_dir.join("events.db");
    let store = SqliteStore::open(&store_path)
        .with_context(|| format!("failed to open event store `{}`", store_path.display()))?;
    let store: Arc<dyn EventStore> = Arc::new(store);
    let kb = crate::kb::Kb::rebuild(data_dir, store.clone())
        .await
        .context("failed to rebuild the knowledge-base index")?;
    let org = crate::directory_log::recorded_tree(&*store).await?;
    let cases = crate::case_search::CaseSearch::rebuild(data_dir, store, org)
        .await
        .context("failed to rebuild the case index")?;
    Ok((kb, cases))
}

/// `minqing serve`: runs until Ctrl-C or SIGTERM, then finishes in-flight requests.
///
/// # Errors
/// Start-up failures.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let running = start(&settings).await?;
    tracing::info!(addr = %running.addr, data = %settings.data_dir.display(), "minqing is listening");
    // The URL is the program's output, for people and for scripts that started it on port 0.
    println!("minqing listening on http://{}", running.addr);
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.stop().await?;
    // Dropping the last handle on the application stops the store's writer after its last
    // commit.
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// `minqing deadline`: prints `from` plus working time on the compiled-in calendar.
///
/// # Errors
/// A malformed `--from`.
pub fn print_deadline(
    from: &str,
    working_days: Option<u32>,
    working_hours: Option<u32>,
) -> anyhow::Result<()> {
    let calendar = load_calendar()?;
    let from = chrono::DateTime::parse_from_rfc3339(from)
        .with_context(|| {
            format!("`{from}` is not an RFC 3339 time such as 2026-09-30T16:00:00+08:00")
        })?
        .with_timezone(&chrono::Utc);
    let deadline = match (working_days, working_hours) {
        (Some(days), _) => calendar.add_working_days(from, days),
        (None, Some(hours)) => calendar.add_working_minutes(from, hours.saturating_mul(60)),
        (None, None) => anyhow::bail!("give --working-days or --working-hours"),
    };
    let mut line = crate::app::rfc3339(deadline.at);
    if deadline.provisional {
        line.push_str(
            " (provisional: the holiday notice for that year is not in the calendar yet)",
        );
    }
    println!("{line}");
    Ok(())
}
