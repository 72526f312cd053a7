//! Scheduled jobs on the `cron` crate, driven by tokio in Asia/Shanghai time: the overdue sweep
//! (automatic 督办 of holders past a deadline, 到期预警 of deadlines falling due within the
//! warning window) and the daily report (日报, written to `data/reports/`).
//!
//! Schedules have six or seven fields (seconds first) and name their weekdays (`Mon-Fri`):
//! the crate numbers weekdays from Sunday = 1, so digits there are refused at start-up. Cron
//! cannot know 调休, so the daily report asks the working calendar whether today is a working
//! day. A job's failure is logged and retried at its next tick; it never stops the server.
//! Tests call [`Jobs::sweep_once`] and [`Jobs::report_once`] directly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use domain::calendar::WorkingTime;
use domain::event::DeadlineKind;
use domain::org::{OrgTree, UnitId};
use domain::roles::{Actor, Role};
use domain::{CaseId, Command};

use crate::app::views::DailyReportView;
use crate::app::{App, AppError};
use crate::projection_runner::ReadSide;

/// The store lease of the instance that runs the scheduled jobs.
pub const JOBS_LEASE: &str = "scheduled-jobs";

/// How often an instance without the jobs' lease asks for it again.
const LEASE_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// When each job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedules {
    /// The overdue sweep (default every 10 minutes: `0 */10 * * * *`).
    pub overdue_sweep: String,
    /// The daily report, on working days only (default 08:30: `0 30 8 * * *`).
    pub daily_report: String,
    /// The overdue sweep warns of deadlines falling due within this much working time
    /// (default 4 working hours).
    pub warning_window: WorkingTime,
}

impl Default for Schedules {
    fn default() -> Self {
        Schedules {
            overdue_sweep: crate::config::DEFAULT_SWEEP_SCHEDULE.into(),
            daily_report: crate::config::DEFAULT_REPORT_SCHEDULE.into(),
            warning_window: WorkingTime::Minutes(4 * 60),
        }
    }
}

/// A schedule that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Not a cron expression the crate accepts.
    #[error(
        "schedule `{expr}` of job `{job}` is not a cron expression (six or seven fields, seconds first)"
    )]
    Invalid {
        /// The job.
        job: &'static str,
        /// The expression.
        expr: String,
        /// The parse error.
        #[source]
        source: cron::error::Error,
    },
    /// A weekday written as a number.
    #[error("schedule `{expr}` of job `{job}` numbers its weekdays; write them by name (Mon-Fri)")]
    NumberedWeekday {
        /// The job.
        job: &'static str,
        /// The expression.
        expr: String,
    },
}

/// Parses and checks a schedule.
///
/// # Errors
/// [`ScheduleError::Invalid`], [`ScheduleError::NumberedWeekday`].
pub fn parse_schedule(job: &'static str, expr: &str) -> Result<cron::Schedule, ScheduleError> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields
        .get(5)
        .is_some_and(|weekday| weekday.bytes().any(|b| b.is_ascii_digit()))
    {
        return Err(ScheduleError::NumberedWeekday {
            job,
            expr: expr.to_owned(),
        });
    }
    cron::Schedule::from_str(expr).map_err(|source| ScheduleError::Invalid {
        job,
        expr: expr.to_owned(),
        source,
    })
}

/// The actor of the overdue sweep: `system` at the efficiency office (效能办).
pub fn sweep_actor(org: &OrgTree) -> Actor {
    let office = org
        .units()
        .iter()
        .find(|u| u.kind == domain::org::UnitKind::EfficiencyOffice)
        .map_or_else(|| org.root().id.clone(), |u| u.id.clone());
    Actor {
        username: "system".into(),
        unit_id: office,
        roles: vec![Role::Supervisor],
        oversees: Vec::new(),
    }
}

/// The automatic 督办 the overdue sweep records for a holder past a deadline, with its
/// idempotency key (one per case, assignment, kind and deadline). `kind` is `not_received`
/// (the receive-by passed) or `not_completed`.
pub fn overdue_supervision(
    org: &OrgTree,
    case_id: &str,
    assignment_id: u32,
    unit_id: &str,
    kind: &str,
    deadline: DateTime<Utc>,
) -> (Command, String) {
    let unit = org
        .get(&UnitId::new(unit_id))
        .map_or(unit_id, |u| u.name.as_str());
    let what = if kind == "not_received" {
        "逾期未接收（签收时限"
    } else {
        "逾期未办结（办理时限"
    };
    let opinion = format!(
        "系统自动督办：{unit}{what} {}），请尽快办理。",
        crate::app::zh_time(deadline)
    );
    let key = format!(
        "overdue-sweep:{case_id}:{assignment_id}:{kind}:{}",
        deadline.timestamp()
    );
    (Command::Supervise { opinion }, key)
}

/// The 到期预警 the overdue sweep records for a deadline falling due within `window`, with its
/// idempotency key (one per case, assignment, deadline and due time).
pub fn deadline_warning(
    case_id: &str,
    assignment_id: u32,
    deadline: DeadlineKind,
    due_at: DateTime<Utc>,
    window: WorkingTime,
) -> (Command, String) {
    let key = format!(
        "deadline-warning:{case_id}:{assignment_id}:{}:{}",
        deadline.as_str(),
        due_at.timestamp()
    );
    let cmd = Command::WarnDeadline {
        assignment_id,
        deadline,
        within: window,
    };
    (cmd, key)
}

/// The jobs with their validated schedules.
pub struct Jobs {
    app: Arc<App>,
    read: Arc<ReadSide>,
    sweep: cron::Schedule,
    report: cron::Schedule,
    warning_window: WorkingTime,
    /// Where the daily reports are written (`data/reports/`).
    reports_dir: PathBuf,
}

/// What one overdue sweep recorded (or found recorded by an earlier run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    /// Automatic supervisions of holders past a deadline.
    pub supervised: usize,
    /// Warnings of deadlines falling due within the warning window.
    pub warned: usize,
}

impl Jobs {
    /// Validates every schedule; daily reports go to `reports_dir`.
    ///
    /// # Errors
    /// The first [`ScheduleError`].
    pub fn new(
        app: Arc<App>,
        read: Arc<ReadSide>,
        schedules: &Schedules,
        reports_dir: PathBuf,
    ) -> Result<Self, ScheduleError> {
        Ok(Jobs {
            sweep: parse_schedule("overdue_sweep", &schedules.overdue_sweep)?,
            report: parse_schedule("daily_report", &schedules.daily_report)?,
            warning_window: schedules.warning_window,
            reports_dir,
            app,
            read,
        })
    }

    /// One overdue sweep: every holder past a deadline gets one automatic supervision per
    /// deadline, and every deadline falling due within the warning window one warning
    /// (`deadline_warned`). The idempotency keys name the case, assignment and deadline (and
    /// `decide` refuses a second warning of the same deadline), so a sweep that runs twice, or
    /// again after downtime, records each once. Returns what was recorded or found recorded.
    ///
    /// # Errors
    /// Read-model failures; the last command failure (the others are logged).
    #[tracing::instrument(skip_all, name = "overdue_sweep")]
    pub async fn sweep_once(&self) -> anyhow::Result<SweepReport> {
        self.read.catch_up().await?;
        let now = self.app.now();
        let overdue = self.read.query(move |q| q.overdue_holders(now)).await?;
        let actor = sweep_actor(&self.app.org());
        let mut n = 0;
        let mut failure = None;
        for holder in overdue {
            let projections::query::OverdueHolder {
                case_id,
                assignment_id,
                unit_id,
                kind,
                deadline,
            } = holder;
            let Ok(id) = CaseId::parse(&case_id) else {
                continue;
            };
            let (cmd, key) = overdue_supervision(
                &self.app.org(),
                &case_id,
                assignment_id,
                &unit_id,
                kind,
                deadline,
            );
            match self.app.execute(&actor, &id, cmd, None, Some(&key)).await {
                Ok(_) => n += 1,
                Err(AppError::Domain(err)) => {
                    tracing::info!(case_id = %id, error = %err, "overdue case not supervised");
                }
                Err(err) => {
                    tracing::warn!(case_id = %id, error = %err, "automatic supervision failed");
                    failure = Some(err);
                }
            }
        }
        let window = self.warning_window;
        let until = self.app.calendar().add(now, window).at;
        let due_soon = self
            .read
            .query(move |q| q.due_soon_holders(now, until))
            .await?;
        let mut n_warned = 0;
        for holder in due_soon {
            let Ok(id) = CaseId::parse(&holder.case_id) else {
                continue;
            };
            let (cmd, key) = deadline_warning(
                &holder.case_id,
                holder.assignment_id,
                holder.deadline,
                holder.due_at,
                window,
            );
            match self.app.execute(&actor, &id, cmd, None, Some(&key)).await {
                // A key reused with another window still names this very deadline: it was
                // warned by an earlier run configured differently.
                Ok(_) | Err(AppError::KeyReused) => n_warned += 1,
                Err(AppError::Domain(err)) => {
                    tracing::info!(case_id = %id, error = %err, "deadline not warned");
                }
                Err(err) => {
                    tracing::warn!(case_id = %id, error = %err, "deadline warning failed");
                    failure = Some(err);
                }
            }
        }
        match failure {
            Some(err) => Err(err).context("the overdue sweep will retry at its next tick"),
            None => Ok(SweepReport {
                supervised: n,
                warned: n_warned,
            }),
        }
    }

    /// The daily report (日报): on a working day, the report of the previous working day (and
    /// of the days off since, so that weekends and holidays are kept too), each written to
    /// `data/reports/daily-YYYY-MM-DD.json` and `.csv`. Returns the days written, none on a
    /// day off. Rerunning rewrites the same files with the same content.
    ///
    /// # Errors
    /// Read-model and file-system failures.
    #[tracing::instrument(skip_all, name = "daily_report")]
    pub async fn report_once(&self) -> anyhow::Result<Vec<NaiveDate>> {
        let today = self
            .app
            .now()
            .with_timezone(&crate::app::shanghai())
            .date_naive();
        if !self.app.calendar().is_working_day(today) {
            return Ok(Vec::new());
        }
        let Some(first) = self.app.calendar().previous_working_day(today) else {
            return Ok(Vec::new());
        };
        self.read.catch_up().await?;
        let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d < today).collect();
        for day in &days {
            self.write_report(*day).await?;
        }
        Ok(days)
    }

    /// Computes the full report of `date` and writes it atomically (a temporary file, then a
    /// rename) as `daily-YYYY-MM-DD.json` and `.csv` in the reports directory; returns the two
    /// paths.
    ///
    /// # Errors
    /// Read-model and file-system failures.
    pub async fn write_report(&self, date: NaiveDate) -> anyhow::Result<[PathBuf; 2]> {
        let org = self.app.org().clone();
        let now = self.app.now();
        let report = self
            .read
            .query(move |q| q.daily_report(date, &org, &|_| true, now))
            .await?;
        let view = DailyReportView::of(&self.app, &report);
        let total = &report.total;
        let dir = self.reports_dir.clone();
        let name = format!("daily-{}", view.date());
        let paths = [
            dir.join(format!("{name}.json")),
            dir.join(format!("{name}.csv")),
        ];
        let contents = [view.to_json_file(), view.to_csv().into_bytes()];
        let written = paths.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("failed to create reports directory `{}`", dir.display())
            })?;
            for (path, bytes) in written.iter().zip(contents) {
                write_atomically(path, &bytes)?;
            }
            Ok(())
        })
        .await
        .context("report writer panicked")??;
        tracing::info!(
            %date,
            received = total.received,
            completed = total.completed,
            completed_late = total.completed_late,
            overdue_not_received = total.overdue_not_received,
            overdue_in_progress = total.overdue_in_progress,
            "daily report written"
        );
        Ok(paths)
    }

    /// Runs both jobs on their schedules until the task is aborted.
    ///
    /// Instances sharing a store run the jobs one at a time: each waits for the store's
    /// [`JOBS_LEASE`], and the one that holds it runs them until it stops or loses the lease
    /// (its link to the store broke; then another instance takes over). A job cut off then is
    /// safe to run again: each 督办 and 预警 is keyed by its deadline.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut waiting_said = false;
            loop {
                match self.app.store.try_lease(JOBS_LEASE).await {
                    Ok(Some(mut lease)) => {
                        tracing::info!("this instance runs the scheduled jobs");
                        waiting_said = false;
                        let sweep = self.clone().run(Job::Sweep);
                        let report = self.clone().run(Job::Report);
                        tokio::select! {
                            _ = async { tokio::join!(sweep, report) } => return,
                            () = lease.lost() => tracing::warn!(
                                "lost the scheduled jobs' lease (the store went away); \
                                 another instance may take them over"
                            ),
                        }
                    }
                    Ok(None) => {
                        if !waiting_said {
                            tracing::info!(
                                "another instance runs the scheduled jobs; this one takes \
                                 over if it stops"
                            );
                            waiting_said = true;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not ask for the scheduled jobs' lease");
                    }
                }
                tokio::time::sleep(LEASE_RETRY).await;
            }
        })
    }

    async fn run(self: Arc<Self>, job: Job) {
        loop {
            let schedule = match job {
                Job::Sweep => &self.sweep,
                Job::Report => &self.report,
            };
            let now = self.app.now().with_timezone(&crate::app::shanghai());
            let Some(next) = schedule.after(&now).next() else {
                return;
            };
            let wait = (next.with_timezone(&Utc) - now.with_timezone(&Utc))
                .to_std()
                .unwrap_or_default();
            tokio::time::sleep(wait).await;
            let res = match job {
                Job::Sweep => self.sweep_once().await.map(|_| ()),
                Job::Report => self.report_once().await.map(|_| ()),
            };
            if let Err(err) = res {
                tracing::error!(job = job.name(), error = %format!("{err:#}"), "job failed");
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Job {
    Sweep,
    Report,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Sweep => "overdue_sweep",
            Job::Report => "daily_report",
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and renames it over
/// `path`, so a reader (or a crash) sees the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = std::fs::File::create(&tmp)
        .with_context(|| format!("failed to create `{}`", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        format!(
            "failed to rename `{}` to `{}`",
            tmp.display(),
            path.display()
        )
    })?;
    // The rename itself must reach the disk too.
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// When the schedule fires next after `now` (for `minqing` start-up logs and tests).
pub fn next_after(schedule: &cron::Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .after(&now.with_timezone(&crate::app::shanghai()))
        .next()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::TimeZone;
    use domain::kinds::{Category, Channel, Kind, Urgency};
    use domain::{EventBody, Intake};
    use tempfile::TempDir;

    use super::*;
    use crate::app::Clock;
    use crate::directory::{Directory, load_org};
    use crate::store::EventStore;
    use crate::store::sqlite::SqliteStore;

    struct TestClock(Mutex<DateTime<Utc>>);

    impl Clock for TestClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().expect("clock")
        }
    }

    fn shanghai(d: u32, h: u32) -> DateTime<Utc> {
        crate::app::shanghai()
            .with_ymd_and_hms(2025, 3, d, h, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn weekdays_must_be_named_and_schedules_are_validated() {
        assert!(parse_schedule("x", "0 30 8 * * Mon-Fri").is_ok());
        assert!(matches!(
            parse_schedule("x", "0 30 8 * * 2-6"),
            Err(ScheduleError::NumberedWeekday { .. })
        ));
        assert!(matches!(
            parse_schedule("x", "30 8 * *"),
            Err(ScheduleError::Invalid { .. })
        ));
        // Runs at 08:30 in Shanghai: 00:30 UTC, the next Monday after a Saturday.
        let schedule = parse_schedule("x", "0 30 8 * * Mon-Fri").expect("valid");
        assert_eq!(
            next_after(&schedule, shanghai(1, 12)),
            Some(shanghai(3, 8) + chrono::Duration::minutes(30))
        );
    }

    struct World {
        dir: TempDir,
        app: Arc<App>,
        read: Arc<ReadSide>,
        clock: Arc<TestClock>,
        case_id: CaseId,
    }

    /// An application on a temporary directory at Monday 3 March 2025 10:00, with one
    /// complaint transferred to the housing bureau at that moment.
    async fn world() -> World {
        let dir = TempDir::new().expect("dir");
        let store: Arc<dyn EventStore> =
            Arc::new(SqliteStore::open(&dir.path().join("events.db")).expect("store"));
        let org = load_org().expect("org");
        let directory = Directory::open(
            dir.path(),
            &crate::directory_log::demo_snapshot().expect("demo"),
            "test-password",
        )
        .expect("users");
        let clock = Arc::new(TestClock(Mutex::new(shanghai(3, 10))));
        let app = Arc::new(App::new(
            store.clone(),
            Arc::new(crate::directory_log::SharedOrg::new(
                crate::directory_log::demo_snapshot().expect("demo"),
            )),
            Arc::new(crate::rules_log::shared_base().expect("rules")),
            directory,
            clock.clone(),
        ));
        let user = |name: &str, unit: &str, role| Actor {
            username: name.into(),
            unit_id: UnitId::new(unit),
            roles: vec![role],
            oversees: Vec::new(),
        };
        let intake = Intake {
            caller_name: "张三".into(),
            caller_phone: "13812345678".into(),
            channel: Some(Channel::Phone),
            category: Some(Category::Complaint),
            kind: Some(Kind::Escalated),
            urgency: Some(Urgency::Normal),
            title: "噪音".into(),
            content: "夜间施工".into(),
            address: "某小区".into(),
            location_unit_id: Some(UnitId::new("d.chengguan.s01")),
            confidential: false,
        };
        let created = app
            .create(
                &user("operator", "city", Role::Operator),
                intake,
                true,
                None,
            )
            .await
            .expect("created");
        let transfer = Command::Transfer {
            lead_unit_id: UnitId::new("city.bureau.housing"),
            co_unit_ids: Vec::new(),
            note: String::new(),
        };
        app.execute(
            &user("dispatcher", "city", Role::Dispatcher),
            &created.id,
            transfer,
            None,
            None,
        )
        .await
        .expect("transferred");
        let read = ReadSide::open(
            &dir.path().join("read.db"),
            store.clone(),
            org,
            app.rules.clone(),
        )
        .expect("read");
        World {
            dir,
            app,
            read,
            clock,
            case_id: created.id,
        }
    }

    #[tokio::test]
    async fn the_overdue_sweep_warns_and_supervises_each_deadline_once() {
        let World {
            dir,
            app,
            read,
            clock,
            case_id: created_id,
        } = world().await;
        let reports = dir.path().join("reports");
        let jobs = Jobs::new(
            app.clone(),
            read.clone(),
            &Schedules::default(),
            reports.clone(),
        )
        .expect("jobs");
        // Within the receive limit nothing is overdue, but the receive deadline (12:00) falls
        // within the four-hour window: one warning, however often the sweep runs.
        let warned_once = SweepReport {
            supervised: 0,
            warned: 1,
        };
        assert_eq!(jobs.sweep_once().await.expect("sweep"), warned_once);
        assert_eq!(jobs.sweep_once().await.expect("sweep"), warned_once);
        // After downtime, a restarted scheduler with a wider window finds it recorded.
        *clock.0.lock().expect("clock") = shanghai(3, 11);
        let wider = Schedules {
            warning_window: WorkingTime::Minutes(8 * 60),
            ..Schedules::default()
        };
        let restarted = Jobs::new(app.clone(), read.clone(), &wider, reports).expect("jobs");
        assert_eq!(restarted.sweep_once().await.expect("sweep"), warned_once);
        // The case shows the warning: a `warned` holder and a `deadline_warned` entry.
        let operator = app.directory.user("operator").expect("operator").actor();
        let detail = app
            .case_detail(&operator, &created_id)
            .await
            .expect("case detail");
        assert!(
            detail.case.holders().next().expect("holder").warned(),
            "{:?}",
            detail.case.holders().next()
        );
        assert_eq!(
            detail
                .timeline
                .iter()
                .filter(|e| e.event_type == "deadline_warned")
                .count(),
            1
        );
        // A day later the housing bureau has not signed: one supervision, however often the
        // sweep runs; the passed deadline is not warned again.
        let supervised_once = SweepReport {
            supervised: 1,
            warned: 0,
        };
        *clock.0.lock().expect("clock") = shanghai(4, 10);
        assert_eq!(jobs.sweep_once().await.expect("sweep"), supervised_once);
        assert_eq!(jobs.sweep_once().await.expect("sweep"), supervised_once);
        *clock.0.lock().expect("clock") = shanghai(4, 11);
        assert_eq!(jobs.sweep_once().await.expect("sweep"), supervised_once);
        let (case, history) = app.history(&created_id).await.expect("history");
        let supervised: Vec<String> = history
            .iter()
            .filter_map(|(_, e)| match &e.body {
                EventBody::Supervised { opinion, .. } => Some(opinion.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(supervised.len(), 1, "{supervised:?}");
        assert!(supervised[0].contains("逾期未接收"), "{}", supervised[0]);
        let warnings: Vec<&EventBody> = history
            .iter()
            .map(|(_, e)| &e.body)
            .filter(|b| matches!(b, EventBody::DeadlineWarned { .. }))
            .collect();
        assert_eq!(
            warnings,
            [&EventBody::DeadlineWarned {
                assignment_id: 1,
                deadline: domain::event::DeadlineKind::Receive,
                due_at: shanghai(3, 12),
            }]
        );
        // The warning is recorded on the holder; the flow did not change.
        assert_eq!(case.holders().count(), 1);
        assert!(case.assignments()[0].warnings.len() == 1);
    }

    #[tokio::test]
    async fn the_daily_report_is_written_on_working_days_and_rewritten_the_same() {
        let World {
            dir,
            app,
            read,
            clock,
            ..
        } = world().await;
        let reports = dir.path().join("reports");
        let jobs = Jobs::new(app, read, &Schedules::default(), reports.clone()).expect("jobs");
        // Tuesday morning: Monday's report. The housing bureau was given the case at 10:00
        // and had not signed for it by the end of the day (its limit ran out at 12:00).
        *clock.0.lock().expect("clock") = shanghai(4, 8) + chrono::Duration::minutes(30);
        let monday = NaiveDate::from_ymd_opt(2025, 3, 3).expect("date");
        assert_eq!(jobs.report_once().await.expect("report"), [monday]);
        let json_path = reports.join("daily-2025-03-03.json");
        let csv_path = reports.join("daily-2025-03-03.csv");
        let json = std::fs::read(&json_path).expect("JSON written");
        let csv = std::fs::read_to_string(&csv_path).expect("CSV written");
        let report: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(report["date"], "2025-03-03");
        assert_eq!(report["as_of"], "2025-03-04T00:00:00+08:00");
        let housing = report["units"]
            .as_array()
            .expect("units")
            .iter()
            .find(|u| u["unit_id"] == "city.bureau.housing")
            .expect("a housing row");
        assert_eq!(housing["received"], 1, "{housing}");
        assert_eq!(housing["overdue_not_received"], 1, "{housing}");
        assert_eq!(report["total"]["received"], 1);
        assert!(
            csv.starts_with("\u{feff}日期,单位编号,单位名称,接收量"),
            "{csv}"
        );
        assert!(
            csv.contains("2025-03-03,city.bureau.housing,兰州市住房和城乡建设局,1,0,0,1,0,0,0,\n"),
            "{csv}"
        );
        assert!(csv.ends_with("2025-03-03,,合计,1,0,0,1,0,0,0,\n"), "{csv}");
        // Later the same day, a rerun rewrites the same bytes, and leaves no temporary file.
        *clock.0.lock().expect("clock") = shanghai(4, 17);
        assert_eq!(jobs.report_once().await.expect("report"), [monday]);
        assert_eq!(std::fs::read(&json_path).expect("JSON"), json);
        assert_eq!(std::fs::read_to_string(&csv_path).expect("CSV"), csv);
        let mut names: Vec<String> = std::fs::read_dir(&reports)
            .expect("reports")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["daily-2025-03-03.csv", "daily-2025-03-03.json"]);
        // Saturday is no working day: nothing is written.
        *clock.0.lock().expect("clock") = shanghai(8, 9);
        assert!(jobs.report_once().await.expect("report").is_empty());
        // Monday reports Friday, and the weekend with it.
        *clock.0.lock().expect("clock") = shanghai(10, 9);
        let days: Vec<String> = jobs
            .report_once()
            .await
            .expect("report")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(days, ["2025-03-07", "2025-03-08", "2025-03-09"]);
        assert!(reports.join("daily-2025-03-09.csv").exists());
    }
}
