//! Settings: built-in defaults, overridden by the environment (`MINQING_*`) and the command
//! line. Tests build `Settings` in code (`..Settings::default()`).
//!
//! Every value is checked before the service opens anything ([`Settings::validate`]); a bad
//! one stops `minqing serve` with an error that names the setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use projections::kpi::KpiWeights;

use crate::access::AccessSettings;

use crate::jobs::{Schedules, parse_schedule};

/// Default of `--sweep-schedule`: every 10 minutes.
pub const DEFAULT_SWEEP_SCHEDULE: &str = "0 */10 * * * *";

/// Default of `--report-schedule`: 08:30 (on working days only; the job asks the calendar).
pub const DEFAULT_REPORT_SCHEDULE: &str = "0 30 8 * * *";

/// Everything `minqing serve` needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`--addr`, `MINQING_ADDR`; default `127.0.0.1:8080`; port 0 picks a
    /// free port).
    pub addr: SocketAddr,
    /// Data directory holding the event store and the users file (`--data`, `MINQING_DATA`;
    /// default `./data`, created and seeded on first start).
    pub data_dir: PathBuf,
    /// Password of every demo account when the data directory is first seeded
    /// (`MINQING_DEMO_PASSWORD`; default `demo-12345`). Never logged.
    pub demo_password: String,
    /// The overdue sweep's warning window (到期预警), in working hours: a holder whose deadline
    /// falls due within it gets one recorded warning (`--deadline-warning-hours`,
    /// `MINQING_DEADLINE_WARNING_HOURS`; default 4, 1 to 80).
    pub deadline_warning_hours: u32,
    /// When the overdue sweep runs: a cron expression of six or seven fields (seconds first),
    /// weekdays by name, Asia/Shanghai time (`--sweep-schedule`, `MINQING_SWEEP_SCHEDULE`;
    /// default `0 */10 * * * *`, every 10 minutes).
    pub sweep_schedule: String,
    /// When the daily report (日报) runs, same syntax; it only reports on working days
    /// (`--report-schedule`, `MINQING_REPORT_SCHEDULE`; default `0 30 8 * * *`, 08:30).
    pub report_schedule: String,
    /// Weights of the KPI ranking score (`--kpi-weights`, `MINQING_KPI_WEIGHTS`; default
    /// `on_time_receive=0.2,on_time_completion=0.3,satisfaction=0.3,resolution=0.2`; a weight
    /// not named is 0; each a finite number of at least 0, not all 0).
    pub kpi_weights: KpiWeights,
    /// The login guards: failed logins of one account (`--login-max-failures`,
    /// `MINQING_LOGIN_MAX_FAILURES`; default 10, 1 to 1,000) or from one client address
    /// (`--login-max-failures-per-address`, `MINQING_LOGIN_MAX_FAILURES_PER_ADDRESS`; default
    /// 30, 1 to 100,000) within the window lock it for the window's length
    /// (`--login-lock-minutes`, `MINQING_LOGIN_LOCK_MINUTES`; default 15, 1 to 1,440); the
    /// proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`, `MINQING_TRUSTED_PROXY`,
    /// comma-separated; default none: the connection's peer is the client).
    pub access: AccessSettings,
    /// Limits on client connections (slow or idle clients, how many at once).
    pub connections: ConnectionLimits,
    /// Where the event log is (`--store`, `MINQING_STORE`; default: the embedded SQLite file
    /// `events.db` of the data directory).
    pub store: StoreLocation,
}

/// Where the event log is kept.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded SQLite file `events.db` of the data directory (the default).
    #[default]
    Embedded,
    /// A PostgreSQL server (`postgres://user:password@host:port/database`), which several
    /// instances may share; needs a build with the `postgres` feature.
    Postgres(String),
    /// A KurrentDB server or cluster (`kurrentdb://host:2113?tls=false`, or any scheme of the
    /// KurrentDB client: `esdb://`, `kurrentdb+discover://`, …), which several instances may
    /// share; needs a build with the `kurrentdb` feature.
    Kurrent(String),
}

/// The URL schemes the KurrentDB client takes.
pub const KURRENTDB_SCHEMES: [&str; 8] = [
    "kurrentdb",
    "kurrentdb+discover",
    "kurrent",
    "kurrent+discover",
    "kdb",
    "kdb+discover",
    "esdb",
    "esdb+discover",
];

impl StoreLocation {
    /// Reads `--store`: `sqlite` (or nothing) for the embedded store, a `postgres://` or
    /// `postgresql://` URL for a PostgreSQL server, a `kurrentdb://` (or `esdb://`, …) URL for
    /// a KurrentDB one.
    ///
    /// # Errors
    /// Anything else; the message never repeats the value (it may hold a password).
    pub fn parse(value: &str) -> Result<Self, SettingError> {
        let value = value.trim();
        if value.is_empty() || value == "sqlite" {
            return Ok(StoreLocation::Embedded);
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(value.to_owned()));
        }
        if let Some((scheme, _)) = value.split_once("://")
            && KURRENTDB_SCHEMES.contains(&scheme)
        {
            return Ok(StoreLocation::Kurrent(value.to_owned()));
        }
        Err(SettingError {
            flag: "store",
            env: "MINQING_STORE",
            reason: "must be `sqlite`, a `postgres://` URL or a `kurrentdb://` URL".into(),
        })
    }
}

impl std::fmt::Debug for StoreLocation {
    // Never the URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Embedded => f.write_str("Embedded"),
            StoreLocation::Postgres(_) => f.write_str("Postgres(..)"),
            StoreLocation::Kurrent(_) => f.write_str("Kurrent(..)"),
        }
    }
}

/// Limits on client connections, so slow or idle clients cannot hold the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a client has to send a whole request head once its first byte arrived, and the
    /// longest pause while its body arrives; later, it gets `408` and the connection is
    /// closed (`--header-read-timeout`,
    /// `MINQING_HEADER_READ_TIMEOUT`, in seconds; default 10, 1 to 300).
    pub header_read_timeout: Duration,
    /// Time a connection may wait for a request (after it opened, or after its last answer)
    /// before it is closed without an answer (`--idle-timeout`, `MINQING_IDLE_TIMEOUT`, in
    /// seconds; default 60, 1 to 3600).
    pub idle_timeout: Duration,
    /// Connections open at once; beyond, a new one gets `503` with `Retry-After` and is closed
    /// (`--max-connections`, `MINQING_MAX_CONNECTIONS`; default 1024, 1 to 100,000; the
    /// process needs file descriptors for them and its files).
    pub max_connections: usize,
}

/// Default of `--header-read-timeout`, in seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default of `--idle-timeout`, in seconds.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default of `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ConnectionLimits {
    /// Checks the ranges.
    ///
    /// # Errors
    /// A [`SettingError`] naming the setting.
    pub fn validate(&self) -> Result<(), SettingError> {
        let seconds = |flag: &'static str, env: &'static str, value: Duration, max: u64| {
            if value < Duration::from_secs(1) || value > Duration::from_secs(max) {
                Err(SettingError {
                    flag,
                    env,
                    reason: format!("must be 1 to {max} seconds, got {}", value.as_secs_f64()),
                })
            } else {
                Ok(())
            }
        };
        seconds(
            "header-read-timeout",
            "MINQING_HEADER_READ_TIMEOUT",
            self.header_read_timeout,
            300,
        )?;
        seconds(
            "idle-timeout",
            "MINQING_IDLE_TIMEOUT",
            self.idle_timeout,
            3600,
        )?;
        if !(1..=100_000).contains(&self.max_connections) {
            return Err(SettingError {
                flag: "max-connections",
                env: "MINQING_MAX_CONNECTIONS",
                reason: format!("must be 1 to 100000, got {}", self.max_connections),
            });
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            demo_password: "demo-12345".into(),
            deadline_warning_hours: 4,
            sweep_schedule: DEFAULT_SWEEP_SCHEDULE.into(),
            report_schedule: DEFAULT_REPORT_SCHEDULE.into(),
            kpi_weights: KpiWeights::default(),
            access: AccessSettings::default(),
            connections: ConnectionLimits::default(),
            store: StoreLocation::Embedded,
        }
    }
}

/// A setting that cannot be used; the message names it as the command line and the
/// environment spell it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `--{flag}` (`{env}`): {reason}")]
pub struct SettingError {
    /// The flag, without `--`.
    pub flag: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// What is wrong, in English.
    pub reason: String,
}

impl Settings {
    /// The event store file inside the data directory.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("events.db")
    }

    /// Where the daily reports are written (`data/reports/`).
    pub fn reports_dir(&self) -> PathBuf {
        self.data_dir.join("reports")
    }

    /// The job schedules and the warning window.
    pub fn schedules(&self) -> Schedules {
        Schedules {
            overdue_sweep: self.sweep_schedule.clone(),
            daily_report: self.report_schedule.clone(),
            warning_window: domain::calendar::WorkingTime::Minutes(
                self.deadline_warning_hours.saturating_mul(60),
            ),
        }
    }

    /// Checks every value that can be wrong.
    ///
    /// # Errors
    /// The first [`SettingError`].
    pub fn validate(&self) -> Result<(), SettingError> {
        if !(1..=80).contains(&self.deadline_warning_hours) {
            return Err(SettingError {
                flag: "deadline-warning-hours",
                env: "MINQING_DEADLINE_WARNING_HOURS",
                reason: format!("must be 1 to 80, got {}", self.deadline_warning_hours),
            });
        }
        let range = |flag, env, value: u32, max: u32| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(SettingError {
                    flag,
                    env,
                    reason: format!("must be 1 to {max}, got {value}"),
                })
            }
        };
        range(
            "login-max-failures",
            "MINQING_LOGIN_MAX_FAILURES",
            self.access.max_failures,
            1000,
        )?;
        range(
            "login-max-failures-per-address",
            "MINQING_LOGIN_MAX_FAILURES_PER_ADDRESS",
            self.access.max_failures_per_address,
            100_000,
        )?;
        range(
            "login-lock-minutes",
            "MINQING_LOGIN_LOCK_MINUTES",
            self.access.lock_minutes,
            1440,
        )?;
        range(
            "session-idle-minutes",
            "MINQING_SESSION_IDLE_MINUTES",
            self.access.session_idle_minutes,
            720,
        )?;
        self.connections.validate()?;
        check_sweep_schedule(&self.sweep_schedule)?;
        check_report_schedule(&self.report_schedule)?;
        self.kpi_weights.validate().map_err(|err| SettingError {
            flag: "kpi-weights",
            env: "MINQING_KPI_WEIGHTS",
            reason: err.to_string(),
        })
    }
}

/// Checks `--sweep-schedule`.
///
/// # Errors
/// A [`SettingError`] naming the setting.
pub fn check_sweep_schedule(expr: &str) -> Result<(), SettingError> {
    parse_schedule("overdue_sweep", expr)
        .map(drop)
        .map_err(|err| SettingError {
            flag: "sweep-schedule",
            env: "MINQING_SWEEP_SCHEDULE",
            reason: err.to_string(),
        })
}

/// Checks `--report-schedule`.
///
/// # Errors
/// A [`SettingError`] naming the setting.
pub fn check_report_schedule(expr: &str) -> Result<(), SettingError> {
    parse_schedule("daily_report", expr)
        .map(drop)
        .map_err(|err| SettingError {
            flag: "report-schedule",
            env: "MINQING_REPORT_SCHEDULE",
            reason: err.to_string(),
        })
}

/// Reads `--kpi-weights`.
///
/// # Errors
/// A [`SettingError`] naming the setting.
pub fn parse_kpi_weights(text: &str) -> Result<KpiWeights, SettingError> {
    KpiWeights::parse(text).map_err(|err| SettingError {
        flag: "kpi-weights",
        env: "MINQING_KPI_WEIGHTS",
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert!(Settings::default().validate().is_ok());
        assert_eq!(
            parse_kpi_weights(&KpiWeights::default().to_string()).ok(),
            Some(KpiWeights::default())
        );
    }

    #[test]
    fn the_store_is_named_by_its_url_and_a_bad_one_is_refused_without_echoing_it() {
        assert_eq!(StoreLocation::parse(" ").unwrap(), StoreLocation::Embedded);
        assert_eq!(
            StoreLocation::parse("sqlite").unwrap(),
            StoreLocation::Embedded
        );
        for url in ["postgres://u:p@h/db", "postgresql://h/db"] {
            assert_eq!(
                StoreLocation::parse(url).unwrap(),
                StoreLocation::Postgres(url.into())
            );
        }
        for url in [
            "kurrentdb://admin:changeit@h:2113?tls=false",
            "esdb://h1:2113,h2:2113",
            "kurrentdb+discover://cluster.example:2113",
        ] {
            let parsed = StoreLocation::parse(url).unwrap();
            assert_eq!(parsed, StoreLocation::Kurrent(url.into()));
            assert_eq!(format!("{parsed:?}"), "Kurrent(..)");
        }
        for bad in [
            "mysql://u:secret@h/db",
            "kurrentdb:/h",
            "file:///data",
            "http://secret@h",
        ] {
            let message = StoreLocation::parse(bad).unwrap_err().to_string();
            assert!(message.contains("`--store`"), "{message}");
            assert!(
                !message.contains("secret") && !message.contains("data"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_bad_value_is_refused_with_the_name_of_its_setting() {
        let refused = |settings: Settings| settings.validate().expect_err("refused").to_string();
        let message = refused(Settings {
            report_schedule: "0 30 8 * * 2-6".into(),
            ..Settings::default()
        });
        assert!(
            message.starts_with("invalid setting `--report-schedule` (`MINQING_REPORT_SCHEDULE`)"),
            "{message}"
        );
        assert!(message.contains("Mon-Fri"), "{message}");
        let message = refused(Settings {
            sweep_schedule: "every ten minutes".into(),
            ..Settings::default()
        });
        assert!(message.contains("`--sweep-schedule`"), "{message}");
        let message = refused(Settings {
            deadline_warning_hours: 0,
            ..Settings::default()
        });
        assert!(message.contains("`--deadline-warning-hours`"), "{message}");
        let message = refused(Settings {
            access: AccessSettings {
                lock_minutes: 0,
                ..AccessSettings::default()
            },
            ..Settings::default()
        });
        assert!(message.contains("`--login-lock-minutes`"), "{message}");
        let message = refused(Settings {
            kpi_weights: KpiWeights {
                on_time_receive: 0.0,
                on_time_completion: 0.0,
                satisfaction: 0.0,
                resolution: 0.0,
            },
            ..Settings::default()
        });
        assert!(message.contains("`--kpi-weights`"), "{message}");
        let message = refused(Settings {
            connections: ConnectionLimits {
                header_read_timeout: Duration::ZERO,
                ..ConnectionLimits::default()
            },
            ..Settings::default()
        });
        assert!(message.contains("`--header-read-timeout`"), "{message}");
        let message = refused(Settings {
            connections: ConnectionLimits {
                max_connections: 0,
                ..ConnectionLimits::default()
            },
            ..Settings::default()
        });
        assert!(message.contains("`--max-connections`"), "{message}");
        let message = parse_kpi_weights("speed=1")
            .expect_err("refused")
            .to_string();
        assert!(
            message.contains("`--kpi-weights` (`MINQING_KPI_WEIGHTS`): unknown KPI weight `speed`"),
            "{message}"
        );
    }
}
