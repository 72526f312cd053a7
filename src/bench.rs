//! `minqing bench`: starts the real server on a temporary data directory and measures
//! (1) concurrent accept commands over HTTP, (2) the full workload accept → transfer → receive →
//! complete → call-back over HTTP, and (3) replay speed of the store into case states.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::app::codec::decode;
use crate::config::Settings;
use crate::store::{ExpectedVersion, NewEvent, Position};

pub mod kpi;
pub mod login;

/// Options of `minqing bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Cases to accept in the accept phase.
    #[arg(long, default_value_t = 20_000)]
    accepts: usize,
    /// Cases to walk through the whole flow in the workload phase.
    #[arg(long, default_value_t = 4_000)]
    flows: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Events in the store for the replay phase (topped up with copies of real case streams).
    #[arg(long, default_value_t = 1_000_000)]
    replay_events: usize,
    /// Decoding threads of the pipelined replay (default: one per core).
    #[arg(long)]
    replay_workers: Option<usize>,
    /// The event store: `sqlite` (a temporary data directory's file) or the URL of an empty
    /// PostgreSQL database (a build with the `postgres` feature).
    #[arg(long, default_value = "sqlite", hide_env_values = true)]
    store: String,
    /// Service instances on the store, each with its own data directory, the connections
    /// spread over them in turn (more than one needs a PostgreSQL store).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    instances: u16,
}

/// A minimal HTTP/1.1 keep-alive client over one TCP connection: one request in flight, like
/// a browser tab or wrk's connection. A full client library would spend more CPU than the
/// server on these 2 cores and measure itself rather than Minqing.
struct Conn {
    stream: tokio::io::BufStream<TcpStream>,
    host: String,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: tokio::io::BufStream::new(stream),
            host: addr.to_string(),
        })
    }

    /// Sends a request and returns the status and body.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        self.request_with(method, path, token, &[], body).await
    }

    /// [`Conn::request`] with extra headers.
    async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(token) = token {
            head.push_str("Authorization: Bearer ");
            head.push_str(token);
            head.push_str("\r\n");
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(body).await?;
        self.stream.flush().await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line `{}`", line.trim_end()))?;
        let mut content_length = 0usize;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                bail!("connection closed mid-response");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; content_length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, body))
    }

    async fn post(&mut self, token: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let (status, body) = self
            .request("POST", path, Some(token), body.to_string().as_bytes())
            .await?;
        if !(200..300).contains(&status) {
            bail!(
                "{path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

async fn login(addr: SocketAddr, username: &str) -> anyhow::Result<Arc<str>> {
    let mut conn = Conn::open(addr).await?;
    let body = json!({ "username": username, "password": "bench-password" }).to_string();
    let (status, body) = conn
        .request("POST", "/api/v1/auth/login", None, body.as_bytes())
        .await?;
    if status != 200 {
        bail!("login of `{username}` answered {status}");
    }
    let res: Value = serde_json::from_slice(&body)?;
    Ok(res["token"]
        .as_str()
        .context("login returned no token")?
        .into())
}

fn intake(i: usize) -> Value {
    json!({
        "caller_name": "王芳",
        "caller_phone": format!("139{:08}", i % 100_000_000),
        "channel": "phone",
        "category": "complaint",
        "kind": "escalated",
        "urgency": "normal",
        "title": "小区门口占道经营",
        "content": "每天傍晚小区门口有摊贩占道经营，影响通行，希望处理。",
        "address": "城关区酒泉路街道某小区东门",
        "location_unit_id": "d.chengguan.s01.c01",
    })
}

/// Latency percentiles in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    (at(0.5), at(0.99), at(1.0))
}

/// Runs jobs `0..n` on `concurrency` connections (each a task taking the next job number);
/// returns every command's latency and the wall time.
async fn drive<F, Fut>(
    addrs: &[SocketAddr],
    n: usize,
    concurrency: usize,
    job: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(Conn, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<(Conn, Vec<Duration>)>> + Send + 'static,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let mut conns = Vec::with_capacity(concurrency);
    for k in 0..concurrency {
        conns.push(Conn::open(addrs[k % addrs.len()]).await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for conn in conns {
        let (job, next) = (job.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = conn;
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(latencies);
                }
                let (back, lat) = job(conn, i).await?;
                conn = back;
                latencies.extend(lat);
            }
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok((latencies, started.elapsed()))
}

fn report(name: &str, latencies: Vec<Duration>, wall: Duration, what: &str) {
    let n = latencies.len();
    let (p50, p99, max) = percentiles(latencies);
    println!(
        "{name:<9} {n:>8} commands in {:>6.2} s = {:>7.0} commands/s   p50 {p50:>6.2} ms  p99 {p99:>6.2} ms  max {max:>7.2} ms   {what}",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
    );
}

/// Runs the benchmark and prints a report.
///
/// # Errors
/// Any failed request or store error.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let store = crate::config::StoreLocation::parse(&args.store)?;
    anyhow::ensure!(
        args.instances == 1 || store != crate::config::StoreLocation::Embedded,
        "more than one instance needs a store they can share (--store postgres://…)"
    );
    let mut dirs = Vec::new();
    let mut instances = Vec::new();
    for instance in 0..args.instances {
        let dir = tempfile_dir(instance)?;
        let settings = Settings {
            addr: "127.0.0.1:0".parse()?,
            data_dir: dir.clone(),
            demo_password: "bench-password".into(),
            store: store.clone(),
            ..Settings::default()
        };
        // One after the other: the first seeds the store, the others find it seeded.
        instances.push(crate::server::start(&settings).await?);
        dirs.push(dir);
    }
    let addrs: Vec<SocketAddr> = instances.iter().map(|running| running.addr).collect();
    let addr = addrs[0];
    // Sessions are the store's: a token from one instance works on every one.
    let operator = login(addr, "operator").await?;
    let dispatcher = login(addr, "dispatcher").await?;
    let handler = login(addr, "housing_handler").await?;
    println!(
        "minqing bench — {} cores, {} connections over {} instance(s), store {}, durable commits",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.concurrency,
        args.instances,
        match store {
            crate::config::StoreLocation::Embedded => "SQLite (WAL, synchronous=FULL)",
            crate::config::StoreLocation::Postgres(_) => "PostgreSQL (synchronous_commit=on)",
            crate::config::StoreLocation::Kurrent(_) => "KurrentDB",
        }
    );

    // 1. Accept commands.
    let o = operator.clone();
    let (lat, wall) = drive(
        &addrs,
        args.accepts,
        args.concurrency,
        move |mut conn, i| {
            let o = o.clone();
            async move {
                let t = Instant::now();
                conn.post(&o, "/api/v1/cases", &intake(i)).await?;
                Ok((conn, vec![t.elapsed()]))
            }
        },
    )
    .await?;
    report("accept", lat, wall, "(POST /api/v1/cases)");

    // 2. The whole workload, one pipeline per case.
    let (o, d, h) = (operator.clone(), dispatcher.clone(), handler.clone());
    let (lat, wall) = drive(&addrs, args.flows, args.concurrency, move |mut conn, i| {
        let (o, d, h) = (o.clone(), d.clone(), h.clone());
        async move {
            let mut lat = Vec::with_capacity(5);
            let t = Instant::now();
            let created = conn.post(&o, "/api/v1/cases", &intake(i)).await?;
            lat.push(t.elapsed());
            let id = created["id"].as_str().context("no id")?.to_owned();
            let steps: [(&str, &str, Value); 4] = [
                (
                    &d,
                    "transfer",
                    json!({ "lead_unit_id": "city.bureau.housing", "note": "请办理" }),
                ),
                (&h, "receive", json!({})),
                (
                    &h,
                    "complete",
                    json!({ "reply": "已联合城管清理，设置便民疏导点。" }),
                ),
                (
                    &o,
                    "callback",
                    json!({ "satisfaction": "satisfied", "resolved": true }),
                ),
            ];
            for (token, verb, body) in steps {
                let t = Instant::now();
                conn.post(token, &format!("/api/v1/cases/{id}/{verb}"), &body)
                    .await?;
                lat.push(t.elapsed());
            }
            Ok((conn, lat))
        }
    })
    .await?;
    report(
        "workload",
        lat,
        wall,
        "(accept → transfer → receive → complete → call-back)",
    );

    // 3. Replay: top the store up with copies of the completed case streams, then read every
    // event of the store, decode it, and fold it into case states.
    let store = instances[0].app.store.clone();
    let streams = store.streams_with_prefix("case-").await?;
    let longest = streams
        .iter()
        .max_by_key(|(_, v)| *v)
        .map(|(s, _)| s.clone())
        .context("no cases")?;
    let template = Arc::new(store.read_stream(&longest, 1).await?);
    // Events in the store (a position is no count: PostgreSQL's are not dense).
    let head: usize = store
        .streams_with_prefix("")
        .await?
        .iter()
        .map(|(_, version)| usize::try_from(*version).unwrap_or(usize::MAX))
        .sum();
    if args.replay_events > head {
        let per_stream = template.len().max(1);
        let n_streams = (args.replay_events - head).div_ceil(per_stream);
        let t = Instant::now();
        let gate = Arc::new(Semaphore::new(256));
        let mut tasks = Vec::with_capacity(n_streams);
        for i in 0..n_streams {
            let permit = gate.clone().acquire_owned().await?;
            let (store, template) = (store.clone(), template.clone());
            tasks.push(tokio::spawn(async move {
                let events = template
                    .iter()
                    .map(|e| NewEvent {
                        event_id: uuid::Uuid::new_v4(),
                        event_type: e.event_type.clone(),
                        schema_version: e.schema_version,
                        data: e.data.clone(),
                        metadata: e.metadata.clone(),
                    })
                    .collect();
                let res = store
                    .append(&format!("case-R{i:09}"), ExpectedVersion::NoStream, events)
                    .await;
                drop(permit);
                res
            }));
        }
        for task in tasks {
            task.await??;
        }
        let added = n_streams * per_stream;
        println!(
            "load      {added:>8} events appended in {:>6.2} s = {:>7.0} events/s (straight to the store, {n_streams} streams of {per_stream})",
            t.elapsed().as_secs_f64(),
            added as f64 / t.elapsed().as_secs_f64(),
        );
    }
    for phase in [
        Replay::Read,
        Replay::Decode,
        Replay::Evolve,
        Replay::Parallel,
    ] {
        let t = Instant::now();
        let (n_events, n_cases) = if phase == Replay::Parallel {
            // Measured on 2 cores: one worker per core beats leaving the reader a core of its own.
            let workers = args
                .replay_workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let folded =
                crate::projection_runner::fold_cases(store.clone(), workers, &mut |_, _| {})
                    .await?;
            (folded.events as usize, folded.cases.len())
        } else {
            replay(store.as_ref(), phase).await?
        };
        let wall = t.elapsed();
        println!(
            "replay    {n_events:>8} events in {:>6.2} s = {:>7.0} events/s   {}{}",
            wall.as_secs_f64(),
            n_events as f64 / wall.as_secs_f64(),
            phase.describe(),
            if n_cases > 0 {
                format!(" into {n_cases} case states")
            } else {
                String::new()
            },
        );
    }
    drop(store);
    for running in instances {
        running.stop().await?;
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Replay {
    Read,
    Decode,
    Evolve,
    Parallel,
}

impl Replay {
    fn describe(self) -> &'static str {
        match self {
            Replay::Read => "(read_all only)",
            Replay::Decode => "(read_all + decode)",
            Replay::Evolve => {
                "(read_all + decode + evolve: a full rebuild of every case, one thread)"
            }
            Replay::Parallel => {
                "(the same rebuild, pipelined: one thread reads, the others decode and evolve)"
            }
        }
    }
}

/// Applies `event` to the state of its case in `cases`.
fn evolve_into(cases: &mut HashMap<String, domain::Case>, stream: &str, event: &domain::Event) {
    match cases.get_mut(stream) {
        Some(case) => *case = domain::evolve(std::mem::take(case), event),
        None => {
            cases.insert(
                stream.to_owned(),
                domain::evolve(domain::Case::default(), event),
            );
        }
    }
}

/// Reads the whole store in batches; returns events read and case states built.
async fn replay(
    store: &dyn crate::store::EventStore,
    phase: Replay,
) -> anyhow::Result<(usize, usize)> {
    let mut cases: HashMap<String, domain::Case> = HashMap::new();
    let mut after = Position(0);
    let mut n_events = 0usize;
    loop {
        let batch = store.read_all(after, 10_000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        n_events += batch.len();
        if phase == Replay::Read {
            continue;
        }
        for rec in &batch {
            if !rec.stream.starts_with("case-") {
                continue;
            }
            let event = decode(rec)?;
            if phase == Replay::Evolve {
                evolve_into(&mut cases, &rec.stream, &event);
            }
        }
    }
    Ok((n_events, cases.len()))
}

fn tempfile_dir(instance: u16) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("minqing-bench-{}-{instance}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    Ok(dir)
}
