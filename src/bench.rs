//! `minqing bench`: starts the real server on a temporary data directory and measures
//! (1) concurrent accept commands over HTTP, (2) the full workload accept → transfer → receive →
//! complete → call-back over HTTP, and (3) replay speed of the store into case states.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::app::codec::decode;
use crate::config::Settings;
use crate::store::{ExpectedVersion, NewEvent, Position};

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
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn login(&self, username: &str) -> anyhow::Result<String> {
        let res: Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({ "username": username, "password": "bench-password" }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        res["token"]
            .as_str()
            .map(str::to_owned)
            .context("login returned no token")
    }

    async fn post(&self, token: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await?;
        if !status.is_success() {
            bail!("{path} answered {status}: {body}");
        }
        Ok(body)
    }
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

/// Runs `n` jobs with at most `concurrency` in flight; returns each job's latencies and the
/// wall time.
async fn drive<F, Fut>(
    n: usize,
    concurrency: usize,
    job: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Vec<Duration>>> + Send + 'static,
{
    let job = Arc::new(job);
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = gate.clone().acquire_owned().await?;
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            let res = job(i).await;
            drop(permit);
            res
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok((latencies, started.elapsed()))
}

/// Runs the benchmark and prints a report.
///
/// # Errors
/// Any failed request or store error.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let settings = Settings {
        addr: "127.0.0.1:0".parse()?,
        data_dir: dir.clone(),
        demo_password: "bench-password".into(),
    };
    let running = crate::server::start(&settings).await?;
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .build()?,
        base: format!("http://{}", running.addr),
    });
    let operator = Arc::new(client.login("operator").await?);
    let dispatcher = Arc::new(client.login("dispatcher").await?);
    let handler = Arc::new(client.login("housing_handler").await?);
    println!(
        "minqing bench — {} cores, concurrency {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.concurrency
    );

    // 1. Accept commands.
    let (c, o) = (client.clone(), operator.clone());
    let (lat, wall) = drive(args.accepts, args.concurrency, move |i| {
        let (c, o) = (c.clone(), o.clone());
        async move {
            let t = Instant::now();
            c.post(&o, "/api/v1/cases", &intake(i)).await?;
            Ok(vec![t.elapsed()])
        }
    })
    .await?;
    let (p50, p99, max) = percentiles(lat);
    println!(
        "accept:   {:>7} commands in {:>6.2} s = {:>8.0} commands/s   p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        args.accepts,
        wall.as_secs_f64(),
        args.accepts as f64 / wall.as_secs_f64(),
        p50,
        p99,
        max
    );

    // 2. The whole workload, one pipeline per case.
    let (c, o, d, h) = (
        client.clone(),
        operator.clone(),
        dispatcher.clone(),
        handler.clone(),
    );
    let (lat, wall) = drive(args.flows, args.concurrency, move |i| {
        let (c, o, d, h) = (c.clone(), o.clone(), d.clone(), h.clone());
        async move {
            let mut lat = Vec::with_capacity(5);
            let t = Instant::now();
            let created = c.post(&o, "/api/v1/cases", &intake(i)).await?;
            lat.push(t.elapsed());
            let id = created["id"].as_str().context("no id")?.to_owned();
            let steps: [(&str, &str, Value); 4] = [
                (
                    d.as_str(),
                    "transfer",
                    json!({ "lead_unit_id": "city.bureau.housing", "note": "请办理" }),
                ),
                (h.as_str(), "receive", json!({})),
                (
                    h.as_str(),
                    "complete",
                    json!({ "reply": "已联合城管清理，设置便民疏导点。" }),
                ),
                (
                    o.as_str(),
                    "callback",
                    json!({ "satisfaction": "satisfied", "resolved": true }),
                ),
            ];
            for (token, verb, body) in steps {
                let t = Instant::now();
                c.post(token, &format!("/api/v1/cases/{id}/{verb}"), &body)
                    .await?;
                lat.push(t.elapsed());
            }
            Ok(lat)
        }
    })
    .await?;
    let n_commands = lat.len();
    let (p50, p99, max) = percentiles(lat);
    println!(
        "workload: {:>7} commands in {:>6.2} s = {:>8.0} commands/s   p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms   (accept→transfer→receive→complete→call-back)",
        n_commands,
        wall.as_secs_f64(),
        n_commands as f64 / wall.as_secs_f64(),
        p50,
        p99,
        max
    );

    // 3. Replay: top the store up with copies of the completed case streams, then fold every
    // event of the store into case states.
    let store = running.app.store.clone();
    let streams = store.streams_with_prefix("case-").await?;
    let longest = streams
        .iter()
        .max_by_key(|(_, v)| *v)
        .map(|(s, _)| s.clone())
        .context("no cases")?;
    let template = store.read_stream(&longest, 1).await?;
    let head = store.head().0 as usize;
    if args.replay_events > head {
        let per_stream = template.len().max(1);
        let n_streams = (args.replay_events - head).div_ceil(per_stream);
        let t = Instant::now();
        let gate = Arc::new(Semaphore::new(256));
        let template = Arc::new(template);
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
            "load:     {:>7} events appended in {:>6.2} s = {:>8.0} events/s (direct to the store, {} streams)",
            added,
            t.elapsed().as_secs_f64(),
            added as f64 / t.elapsed().as_secs_f64(),
            n_streams
        );
    }
    let t = Instant::now();
    let mut cases: std::collections::HashMap<String, domain::Case> =
        std::collections::HashMap::new();
    let mut after = Position(0);
    let mut n_events = 0usize;
    loop {
        let batch = store.read_all(after, 10_000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for rec in &batch {
            if !rec.stream.starts_with("case-") {
                continue;
            }
            let event = decode(rec)?;
            match cases.get_mut(&rec.stream) {
                Some(case) => *case = domain::evolve(std::mem::take(case), &event),
                None => {
                    cases.insert(
                        rec.stream.clone(),
                        domain::evolve(domain::Case::default(), &event),
                    );
                }
            }
        }
        n_events += batch.len();
    }
    let wall = t.elapsed();
    println!(
        "replay:   {:>7} events in {:>6.2} s = {:>8.0} events/s into {} case states (read, decode, evolve)",
        n_events,
        wall.as_secs_f64(),
        n_events as f64 / wall.as_secs_f64(),
        cases.len()
    );
    running.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("minqing-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    Ok(dir)
}
