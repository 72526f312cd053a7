//! `minqing bench-login`: the login probe of issue 10. Starts `minqing serve` as a child
//! process on a temporary data directory, then measures (1) how long a failed login takes for
//! a known user with a wrong password and for an unknown user, and (2) the child's resident
//! memory (`VmRSS`, `VmHWM` from `/proc/PID/status`, Linux only) before, during and after a
//! flood of wrong passwords from many connections, without any account.
//!
//! With `--spoof-addresses` every request carries its own `X-Forwarded-For` address and the
//! child trusts the probe as a proxy (`--trusted-proxy 127.0.0.1`): the flood then comes from
//! as many addresses as requests, as a botnet's would, so the per-address lock-out does not
//! stop it and what is measured is the bound on password hashing itself.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;

use super::Conn;

/// Options of `minqing bench-login`.
#[derive(Debug, clap::Args)]
pub struct LoginProbeArgs {
    /// Connections sending wrong passwords at once during the flood.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long the flood lasts, in seconds.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// How long to wait after the flood before the last memory reading, in seconds.
    #[arg(long, default_value_t = 10)]
    settle_seconds: u64,
    /// Failed logins timed per kind (known user, unknown user).
    #[arg(long, default_value_t = 20)]
    timing_samples: usize,
    /// The `minqing` binary to probe (default: this one), e.g. an older build to compare.
    #[arg(long, value_name = "PATH")]
    server: Option<std::path::PathBuf>,
    /// Whose names the flood sends: `known` (the demo accounts in turn) or `unknown` (a new
    /// made-up name each time).
    #[arg(long, value_enum, default_value_t = FloodUsers::Known)]
    flood_users: FloodUsers,
    /// Send each request from its own `X-Forwarded-For` address, with the child trusting the
    /// probe as a proxy (see the module docs).
    #[arg(long)]
    spoof_addresses: bool,
}

/// Whose names the flood sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FloodUsers {
    /// The demo accounts, in turn.
    Known,
    /// A new made-up name for each request.
    Unknown,
}

/// The demo password of the probe's data directory.
const PASSWORD: &str = "probe-password";

/// A `minqing serve` child, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Its temporary data directory, removed with it.
    data: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn start_server(exe: Option<&std::path::Path>, spoof: bool) -> anyhow::Result<Server> {
    let data = std::env::temp_dir().join(format!("minqing-bench-login-{}", std::process::id()));
    std::fs::create_dir_all(&data)
        .with_context(|| format!("failed to create `{}`", data.display()))?;
    let exe = match exe {
        Some(exe) => exe.to_owned(),
        None => std::env::current_exe().context("failed to find the minqing binary")?,
    };
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("MINQING_DEMO_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if spoof {
        cmd.args(["--trusted-proxy", "127.0.0.1"]);
    }
    let mut child = cmd.spawn().context("failed to start `minqing serve`")?;
    let stdout = child.stdout.take().context("no stdout of the child")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("failed to read the child's address")?;
    let addr = line
        .trim()
        .strip_prefix("minqing listening on http://")
        .with_context(|| format!("unexpected first line of `serve`: `{}`", line.trim()))?
        .parse()
        .context("bad address printed by `serve`")?;
    Ok(Server { child, addr, data })
}

/// `VmRSS` and `VmHWM` of a process, in MB.
fn memory(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("failed to read `/proc/{pid}/status` (Linux only)"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// A spoofed client address for request `i` (10.x.y.z, never the same twice in 16 M).
fn address(i: u64) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
}

async fn attempt(
    conn: &mut Conn,
    username: &str,
    password: &str,
    from: Option<&str>,
) -> anyhow::Result<u16> {
    let body = json!({ "username": username, "password": password }).to_string();
    let headers: Vec<(&str, &str)> = from.map(|a| ("X-Forwarded-For", a)).into_iter().collect();
    let (status, _) = conn
        .request_with(
            "POST",
            "/api/v1/auth/login",
            None,
            &headers,
            body.as_bytes(),
        )
        .await?;
    Ok(status)
}

/// Median and 90th percentile of failed logins, in ms.
async fn time_failures(
    addr: SocketAddr,
    username: impl Fn(usize) -> String,
    samples: usize,
    spoof: bool,
    counter: &AtomicU64,
) -> anyhow::Result<(f64, f64)> {
    let mut conn = Conn::open(addr).await?;
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let from = spoof.then(|| address(counter.fetch_add(1, Ordering::Relaxed)));
        let started = Instant::now();
        let status = attempt(&mut conn, &username(i), "wrong-password", from.as_deref()).await?;
        times.push(started.elapsed());
        if status != 401 {
            bail!("a failed login answered {status}, not 401 (locked out? try --spoof-addresses)");
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    Ok((at(0.5), at(0.9)))
}

/// Runs the probe and prints its figures.
///
/// # Errors
/// When the child cannot be started or answers unexpectedly.
pub async fn run(args: LoginProbeArgs) -> anyhow::Result<()> {
    let server = start_server(args.server.as_deref(), args.spoof_addresses)?;
    let (addr, pid) = (server.addr, server.child.id());
    let counter = Arc::new(AtomicU64::new(1));
    println!(
        "minqing bench-login — {} cores, {} connections for {} s, {} users{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.connections,
        args.seconds,
        match args.flood_users {
            FloodUsers::Known => "known",
            FloodUsers::Unknown => "unknown",
        },
        if args.spoof_addresses {
            ", one X-Forwarded-For address per request"
        } else {
            ", all from 127.0.0.1"
        }
    );
    // One right password first, so the baseline has hashed once.
    let mut conn = Conn::open(addr).await?;
    let from = args
        .spoof_addresses
        .then(|| address(counter.fetch_add(1, Ordering::Relaxed)));
    let status = attempt(&mut conn, "operator", PASSWORD, from.as_deref()).await?;
    if status != 200 {
        bail!("the right password answered {status}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (base_rss, _) = memory(pid)?;
    println!("baseline          RSS {base_rss:>8.1} MB");

    // Known users (each once, so no account's lock-out starts) against unknown ones.
    let users: Arc<Vec<String>> = Arc::new(
        crate::directory::fixture_actors()?
            .into_iter()
            .map(|a| a.username)
            .collect(),
    );
    let known = |i: usize| users[(i * 7) % users.len()].clone();
    let (known_p50, known_p90) = time_failures(
        addr,
        known,
        args.timing_samples,
        args.spoof_addresses,
        &counter,
    )
    .await?;
    let (unknown_p50, unknown_p90) = time_failures(
        addr,
        |i| format!("nobody-{i}"),
        args.timing_samples,
        args.spoof_addresses,
        &counter,
    )
    .await?;
    println!(
        "failed login      known user, wrong password: p50 {known_p50:.1} ms, p90 {known_p90:.1} ms; \
         unknown user: p50 {unknown_p50:.1} ms, p90 {unknown_p90:.1} ms"
    );

    // The flood.
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::with_capacity(args.connections);
    for c in 0..args.connections {
        let (counter, spoof, users) = (counter.clone(), args.spoof_addresses, users.clone());
        let flood_users = args.flood_users;
        tasks.push(tokio::spawn(async move {
            let mut statuses: std::collections::BTreeMap<u16, u64> = Default::default();
            let mut conn = Conn::open(addr).await?;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let from = spoof.then(|| address(counter.fetch_add(1, Ordering::Relaxed)));
                let user = match flood_users {
                    FloodUsers::Known => users[(c + i as usize * 64) % users.len()].clone(),
                    FloodUsers::Unknown => format!("flood-{c}-{i}"),
                };
                let status =
                    match attempt(&mut conn, &user, "wrong-password", from.as_deref()).await {
                        Ok(status) => status,
                        // The server may close a connection (or time it out); open another.
                        Err(_) => {
                            conn = Conn::open(addr).await?;
                            0
                        }
                    };
                *statuses.entry(status).or_default() += 1;
                i += 1;
            }
            anyhow::Ok(statuses)
        }));
    }
    let mut peak_rss: f64 = 0.0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(memory(pid)?.0);
    }
    let mut statuses: std::collections::BTreeMap<u16, u64> = Default::default();
    for task in tasks {
        for (status, n) in task.await.context("flood task panicked")?? {
            *statuses.entry(status).or_default() += n;
        }
    }
    let (end_rss, hwm) = memory(pid)?;
    let answered: Vec<String> = statuses
        .iter()
        .map(|(status, n)| {
            if *status == 0 {
                format!("{n} without answer")
            } else {
                format!("{n} × {status}")
            }
        })
        .collect();
    println!(
        "during the flood  RSS peak {peak_rss:>8.1} MB (sampled every 250 ms), {end_rss:.1} MB at its end, \
         high-water mark {hwm:.1} MB; answers: {}",
        answered.join(", ")
    );
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let (after_rss, _) = memory(pid)?;
    println!(
        "{} s after       RSS {after_rss:>8.1} MB",
        args.settle_seconds
    );
    Ok(())
}
