//! `minqing`: the 12345 hotline case-management service.
//!
//! `main` only parses the command line, installs logging and hands over to the library's
//! `server`, `bench` or `generate`.

use minqing::{bench, config, generate, server};
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "minqing",
    version,
    about = "民情 — case management for a 12345 government service hotline"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the service (creates and seeds the data directory on first start).
    Serve {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, env = "MINQING_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Data directory (event store, users).
        #[arg(long, env = "MINQING_DATA", default_value = "./data")]
        data: PathBuf,
        /// Where the event log is: `sqlite` (the file `events.db` of the data directory), a
        /// PostgreSQL URL (`postgres://user:password@host:port/database`) or a KurrentDB URL
        /// (`kurrentdb://host:2113?tls=false`) that several instances, each with its own data
        /// directory, share. Never logged.
        #[arg(
            long,
            env = "MINQING_STORE",
            value_name = "STORE",
            default_value = "sqlite",
            hide_env_values = true
        )]
        store: String,
        /// Password of the demo accounts, used when the data directory is first seeded.
        #[arg(
            long,
            env = "MINQING_DEMO_PASSWORD",
            default_value = "demo-12345",
            hide_default_value = false
        )]
        demo_password: String,
        /// Warn of deadlines falling due within this many working hours (1 to 80).
        #[arg(
            long,
            env = "MINQING_DEADLINE_WARNING_HOURS",
            default_value_t = 4,
            value_parser = clap::value_parser!(u32).range(1..=80)
        )]
        deadline_warning_hours: u32,
        /// When the overdue sweep runs: cron with seconds first, weekdays by name (Mon-Fri),
        /// Asia/Shanghai time.
        #[arg(long, env = "MINQING_SWEEP_SCHEDULE", value_name = "CRON", default_value = config::DEFAULT_SWEEP_SCHEDULE)]
        sweep_schedule: String,
        /// When the daily report runs (it reports only on working days); same syntax.
        #[arg(long, env = "MINQING_REPORT_SCHEDULE", value_name = "CRON", default_value = config::DEFAULT_REPORT_SCHEDULE)]
        report_schedule: String,
        /// Weights of the KPI ranking score, `name=number,...` (names not given weigh 0).
        #[arg(
            long,
            env = "MINQING_KPI_WEIGHTS",
            value_name = "WEIGHTS",
            default_value = "on_time_receive=0.2,on_time_completion=0.3,satisfaction=0.3,resolution=0.2"
        )]
        kpi_weights: String,
        /// Failed logins of one account within the lock window that lock it.
        #[arg(
            long,
            env = "MINQING_LOGIN_MAX_FAILURES",
            value_name = "N",
            default_value_t = 10
        )]
        login_max_failures: u32,
        /// Failed logins from one client address (an IPv6 client: its /64 network) within
        /// the lock window that lock it.
        #[arg(
            long,
            env = "MINQING_LOGIN_MAX_FAILURES_PER_ADDRESS",
            value_name = "N",
            default_value_t = 30
        )]
        login_max_failures_per_address: u32,
        /// The window in which failed logins count, and how long a lock lasts, in minutes.
        #[arg(
            long,
            env = "MINQING_LOGIN_LOCK_MINUTES",
            value_name = "MINUTES",
            default_value_t = 15
        )]
        login_lock_minutes: u32,
        /// A reverse proxy whose `X-Forwarded-For` names the client (repeat, or separate by
        /// commas); without it the connection's peer is the client and the header is ignored.
        #[arg(
            long,
            env = "MINQING_TRUSTED_PROXY",
            value_name = "IP",
            value_delimiter = ','
        )]
        trusted_proxy: Vec<std::net::IpAddr>,
        /// Minutes a workbench session may go without the user's activity before it ends
        /// (1 to 720; a page's own polling does not count).
        #[arg(
            long,
            env = "MINQING_SESSION_IDLE_MINUTES",
            value_name = "MINUTES",
            default_value_t = 30
        )]
        session_idle_minutes: u32,
        /// Mark the workbench's cookies `Secure`: set it when users reach the service over
        /// TLS (through a proxy), so browsers never send the session over plain HTTP.
        #[arg(long, env = "MINQING_SECURE_COOKIES")]
        secure_cookies: bool,
        /// Seconds a client has to send a whole request head once it began, and the longest
        /// pause in its body (then 408), 1 to 300.
        #[arg(
            long,
            env = "MINQING_HEADER_READ_TIMEOUT",
            value_name = "SECONDS",
            default_value_t = config::DEFAULT_HEADER_READ_TIMEOUT_SECS,
            value_parser = clap::value_parser!(u64).range(1..=300)
        )]
        header_read_timeout: u64,
        /// Seconds a connection may wait for a request before it is closed, 1 to 3600.
        #[arg(
            long,
            env = "MINQING_IDLE_TIMEOUT",
            value_name = "SECONDS",
            default_value_t = config::DEFAULT_IDLE_TIMEOUT_SECS,
            value_parser = clap::value_parser!(u64).range(1..=3600)
        )]
        idle_timeout: u64,
        /// Connections open at once (beyond: 503 with Retry-After), 1 to 100000.
        #[arg(
            long,
            env = "MINQING_MAX_CONNECTIONS",
            default_value_t = config::DEFAULT_MAX_CONNECTIONS as u64,
            value_parser = clap::value_parser!(u64).range(1..=100_000)
        )]
        max_connections: u64,
        /// Log as JSON lines.
        #[arg(long)]
        log_json: bool,
    },
    /// Measure command throughput over HTTP and replay speed, on a fresh temporary data directory.
    Bench(bench::BenchArgs),
    /// Probe the login: the time of a failed login for a known and an unknown user, and the
    /// memory of a `serve` child before, during and after a flood of wrong passwords.
    BenchLogin(bench::login::LoginProbeArgs),
    /// Time the KPI table of a generated year's read database, summed over the days of the
    /// `kpi_day` projection, against the scan it replaced, checking both agree.
    BenchKpi(bench::kpi::KpiBenchArgs),
    /// Generate a year of synthetic hotline cases into a new data directory.
    ///
    /// The directory is created and seeded as `serve` does on first start (demo users,
    /// knowledge-base articles); a store that already holds cases is refused. Every event comes
    /// from the real rules, in time order, all cases interleaved, written in transactions of
    /// `--batch-events`. If the command stops half-way (Ctrl-C, a full disk) the store is
    /// consistent but holds part of a year: delete the directory and start again.
    ///
    /// For the current year the simulation stops at the present moment. Then build the read
    /// models and search indexes with `minqing rebuild --data DIR` (or let `serve` catch up).
    Generate(generate::GenerateArgs),
    /// Copy a data directory's event log into a PostgreSQL store (`serve --store URL`),
    /// resuming an interrupted copy, then verify both logs agree (builds with the `postgres`
    /// feature). Run it while the service is stopped; progress goes to stderr.
    Migrate(minqing::migrate::MigrateArgs),
    /// Drop the read models (data/read.db) and the search indexes (data/kb-index,
    /// data/case-index) and replay every event from position 0.
    ///
    /// Run it while the service is stopped; progress goes to stderr.
    Rebuild {
        /// Data directory (event store, read database).
        #[arg(long, env = "MINQING_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// Copy a data directory's event store and users to FILE, while the service may run
    /// (SQLite's online backup; read models and indexes are rebuilt on restore).
    Backup {
        /// Data directory to copy.
        #[arg(long, env = "MINQING_DATA", default_value = "./data")]
        data: PathBuf,
        /// The backup file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into a data directory without an event store, then rebuild the read
    /// models and search indexes.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// Data directory to restore into (created if missing).
        #[arg(long, env = "MINQING_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// Write every event as JSON lines (one event per line, in global order), while the
    /// service may run.
    Export {
        /// Data directory to read.
        #[arg(long, env = "MINQING_DATA", default_value = "./data")]
        data: PathBuf,
        /// The file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Load an export (JSON lines) into a data directory without an event store, all or
    /// nothing, then rebuild the read models and search indexes.
    Import {
        /// The JSON lines file.
        #[arg(long)]
        from: PathBuf,
        /// Data directory to load (created if missing).
        #[arg(long, env = "MINQING_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// Import a city's units list and/or staff list (CSV or .xlsx, columns by their Chinese
    /// headers: 名称, 上级单位, 层级, 类型, 编码; 用户名, 姓名, 单位, 角色, 分管单位) into the
    /// recorded directory, all or nothing. Every error names its file, row and column. Run
    /// it while the service is stopped (on an empty data directory for a new city).
    ImportOrg {
        /// Data directory (created if missing).
        #[arg(long, env = "MINQING_DATA", default_value = "./data")]
        data: PathBuf,
        /// The units list (.csv or .xlsx).
        #[arg(long)]
        units: Option<PathBuf>,
        /// The staff list (.csv or .xlsx).
        #[arg(long)]
        users: Option<PathBuf>,
        /// Show what would change; record nothing.
        #[arg(long)]
        dry_run: bool,
        /// The password new users sign in with once (they must change it then).
        #[arg(long, env = "MINQING_INITIAL_PASSWORD", hide_env_values = true)]
        initial_password: Option<String>,
    },
    /// Write the recorded directory's units and/or staff lists in the shape `import-org`
    /// reads (.csv or .xlsx by the file's extension; the files must not exist).
    ExportOrg {
        /// Data directory to read.
        #[arg(long, env = "MINQING_DATA", default_value = "./data")]
        data: PathBuf,
        /// Where to write the units list.
        #[arg(long)]
        units: Option<PathBuf>,
        /// Where to write the staff list.
        #[arg(long)]
        users: Option<PathBuf>,
    },
    /// Print a deadline: an instant plus working days or hours on the working calendar.
    Deadline {
        /// The start, RFC 3339 (e.g. 2026-09-30T16:00:00+08:00).
        #[arg(long)]
        from: String,
        /// Working days to add.
        #[arg(
            long,
            conflicts_with = "working_hours",
            required_unless_present = "working_hours"
        )]
        working_days: Option<u32>,
        /// Working hours to add.
        #[arg(long)]
        working_hours: Option<u32>,
    },
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("minqing=info,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `minqing rebuild`, and the end of `restore` and `import`: the read models, then the search
/// indexes, from position 0.
fn rebuild_all(data: &std::path::Path) -> anyhow::Result<()> {
    // Refused up front while a service (or another rebuild) owns the directory.
    let _lock = minqing::datadir::DataDirLock::acquire(data, "rebuild")?;
    let rt = tokio::runtime::Runtime::new()?;
    let (events, secs) = rt.block_on(minqing::projection_runner::rebuild(data))?;
    println!(
        "rebuilt the read models to position {events} in {secs:.2} s = {:.0} events/s",
        events as f64 / secs.max(1e-9)
    );
    let (kb, cases) = rt.block_on(server::rebuild_search_indexes(data))?;
    println!(
        "rebuilt the knowledge-base index to position {kb} and the case index to position {cases}"
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve {
            addr,
            data,
            store,
            demo_password,
            deadline_warning_hours,
            sweep_schedule,
            report_schedule,
            kpi_weights,
            login_max_failures,
            login_max_failures_per_address,
            login_lock_minutes,
            trusted_proxy,
            session_idle_minutes,
            secure_cookies,
            header_read_timeout,
            idle_timeout,
            max_connections,
            log_json,
        } => {
            init_logging(log_json);
            // Every value is checked again, with the others, before anything is opened.
            let settings = config::Settings {
                addr,
                data_dir: data,
                demo_password,
                deadline_warning_hours,
                sweep_schedule,
                report_schedule,
                kpi_weights: config::parse_kpi_weights(&kpi_weights)?,
                access: minqing::access::AccessSettings {
                    max_failures: login_max_failures,
                    max_failures_per_address: login_max_failures_per_address,
                    lock_minutes: login_lock_minutes,
                    trusted_proxies: trusted_proxy,
                    session_idle_minutes,
                    secure_cookies,
                },
                connections: config::ConnectionLimits {
                    header_read_timeout: std::time::Duration::from_secs(header_read_timeout),
                    idle_timeout: std::time::Duration::from_secs(idle_timeout),
                    max_connections: usize::try_from(max_connections)?,
                },
                store: config::StoreLocation::parse(&store)?,
            };
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(server::serve(settings))
        }
        Cmd::Bench(args) => {
            init_logging(false);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(bench::run(args))
        }
        Cmd::BenchLogin(args) => {
            init_logging(false);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(bench::login::run(args))
        }
        Cmd::BenchKpi(args) => {
            init_logging(false);
            bench::kpi::run(args)
        }
        Cmd::Generate(args) => {
            init_logging(false);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(generate::run(args))
        }
        Cmd::Migrate(args) => {
            init_logging(false);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(minqing::migrate::run(args))
        }
        Cmd::Rebuild { data } => {
            init_logging(false);
            rebuild_all(&data)
        }
        Cmd::Backup { data, to } => {
            init_logging(false);
            let m = minqing::backup::backup(&data, &to)?;
            println!(
                "备份完成：{}（位置 {}，{} 个事件，{} 个流{}）",
                to.display(),
                m.head,
                m.events,
                m.streams,
                if m.users { "，含用户" } else { "" }
            );
            Ok(())
        }
        Cmd::Restore { from, data } => {
            init_logging(false);
            let m = minqing::backup::restore(&from, &data)?;
            println!(
                "已恢复：位置 {}，{} 个事件，{} 个流（备份于 {}）",
                m.head,
                m.events,
                m.streams,
                minqing::app::rfc3339(m.taken_at)
            );
            rebuild_all(&data)
        }
        Cmd::Export { data, to } => {
            init_logging(false);
            let n = minqing::backup::export(&data, &to)?;
            println!("已导出 {n} 个事件到 {}", to.display());
            Ok(())
        }
        Cmd::Import { from, data } => {
            init_logging(false);
            let rt = tokio::runtime::Runtime::new()?;
            let n = rt.block_on(minqing::backup::import(&from, &data))?;
            let (events, streams, head) =
                minqing::backup::summary(&data.join(minqing::backup::EVENTS_FILE))?;
            println!("已导入 {n} 个事件（库中 {events} 个事件，{streams} 个流，位置 {head}）");
            drop(rt);
            rebuild_all(&data)
        }
        Cmd::ImportOrg {
            data,
            units,
            users,
            dry_run,
            initial_password,
        } => {
            init_logging(false);
            let rt = tokio::runtime::Runtime::new()?;
            let outcome = rt.block_on(minqing::org_import::import_org(
                &minqing::org_import::ImportOrg {
                    data,
                    units,
                    users,
                    dry_run,
                    initial_password,
                },
            ))?;
            match outcome {
                minqing::org_import::Outcome::Refused(errors) => {
                    for error in &errors {
                        eprintln!("{error}");
                    }
                    anyhow::bail!("导入未执行：共 {} 处错误，没有写入任何变更", errors.len())
                }
                minqing::org_import::Outcome::Planned { plan, recorded } => {
                    println!("{}", plan.summary());
                    if recorded {
                        println!("已导入。");
                    } else if dry_run {
                        println!("（预演：没有写入任何变更）");
                    }
                    Ok(())
                }
            }
        }
        Cmd::ExportOrg { data, units, users } => {
            init_logging(false);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(minqing::org_import::export_org(
                &data,
                units.as_deref(),
                users.as_deref(),
            ))?;
            println!("已写出。");
            Ok(())
        }
        Cmd::Deadline {
            from,
            working_days,
            working_hours,
        } => server::print_deadline(&from, working_days, working_hours),
    }
}
