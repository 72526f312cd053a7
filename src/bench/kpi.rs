//! `minqing bench-kpi`: times the KPI table on a generated data directory's read database,
//! summed over the `kpi_day` projection as the service answers it, against the scan of every
//! assignment and call-back it replaced (`Queries::kpis_by_scan`), and checks that both give
//! the same table for every month, every fifth week and every tenth day of the year.
//!
//! ```text
//! minqing generate --data /tmp/year --cases 1000000
//! minqing rebuild --data /tmp/year
//! minqing bench-kpi --data /tmp/year
//! ```
//!
//! Run it while no service owns the directory (it only reads `read.db`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{Datelike, NaiveDate};

use crate::app::views::Period;

/// Options of `minqing bench-kpi`.
#[derive(Debug, clap::Args)]
pub struct KpiBenchArgs {
    /// Data directory with a built read database (`minqing rebuild --data DIR`).
    #[arg(long)]
    data: PathBuf,
    /// The year whose periods are timed (Asia/Shanghai).
    #[arg(long, default_value_t = 2025)]
    year: i32,
    /// Timed runs of each month's table summed over days.
    #[arg(long, default_value_t = 20)]
    runs: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the benchmark.
///
/// # Errors
/// A missing or older read database, a query failure, or a table that differs from the scan.
pub fn run(args: KpiBenchArgs) -> anyhow::Result<()> {
    let path = args.data.join("read.db");
    if !path.exists() {
        bail!(
            "no read database at `{}`; run `minqing rebuild --data {}` first",
            path.display(),
            args.data.display()
        );
    }
    let queries = projections::Queries::open(&path)
        .with_context(|| format!("failed to open read database `{}`", path.display()))?;
    let calendar = crate::server::load_calendar()?;
    let org = crate::directory::load_org()?;
    let weights = projections::kpi::KpiWeights::default();
    let mut periods = Vec::new();
    for month in 1..=12 {
        let date = NaiveDate::from_ymd_opt(args.year, month, 1).context("a month")?;
        periods.push((Period::Month, date));
    }
    let first = NaiveDate::from_ymd_opt(args.year, 1, 1).context("a year")?;
    for day in (0..365).step_by(10) {
        let date = first + chrono::Days::new(day);
        if date.year() != args.year {
            break;
        }
        periods.push((Period::Day, date));
        if day % 50 == 0 {
            periods.push((Period::Week, date));
        }
    }
    let (mut summed_times, mut scan_times) = (Vec::new(), Vec::new());
    let mut month_times = Vec::new();
    let mut units = 0;
    for (period, date) in &periods {
        let (from, to) = period.bounds(*date).context("period bounds")?;
        let started = Instant::now();
        let summed = queries
            .kpis(from, to, &weights, &calendar, &org)
            .context("KPIs over days (is the read database built by this version?)")?;
        summed_times.push(started.elapsed());
        let started = Instant::now();
        let scanned = queries.kpis_by_scan(from, to, &weights, &calendar, &org)?;
        scan_times.push(started.elapsed());
        if summed != scanned {
            bail!(
                "the {} of {date}: the table summed over days differs from the scan",
                period.code()
            );
        }
        if *period == Period::Month {
            units = units.max(summed.len());
            for _ in 0..args.runs {
                let started = Instant::now();
                queries.kpis(from, to, &weights, &calendar, &org)?;
                month_times.push(started.elapsed());
            }
        }
    }
    for times in [&mut summed_times, &mut scan_times, &mut month_times] {
        times.sort_unstable();
    }
    let line = |name: &str, times: &[Duration]| {
        println!(
            "{name:<34} n={:<5} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
            times.len(),
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.99)),
            ms(times.last().copied().unwrap_or_default()),
        );
    };
    println!(
        "KPI table on `{}`, {} periods of {} (up to {units} units a month): summed over days = scan for every one",
        path.display(),
        periods.len(),
        args.year
    );
    line("month, summed over kpi_day", &month_times);
    line("every period, summed over kpi_day", &summed_times);
    line("every period, scan (before)", &scan_times);
    Ok(())
}
