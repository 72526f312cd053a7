//! Knowledge-base benchmark, run by hand (no test harness):
//!
//! ```text
//! cargo run -p minqing-knowledge-base --example bench -- [N_SYNTHETIC]
//! ```
//!
//! Builds the fixture index and a synthetic index of `N_SYNTHETIC` articles (default 100000)
//! in RAM, reports build time, then search latency over the relevance questions and suggest
//! latency over every prefix of them (as typed), p50/p99.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use minqing_knowledge_base::article::{Article, Status};
use minqing_knowledge_base::fixtures;
use minqing_knowledge_base::index::{KbIndex, SearchRequest};

/// Rounds of queries, so percentiles rest on enough samples.
const ROUNDS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n_synthetic: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100_000,
    };
    let now: DateTime<Utc> = "2026-03-02T02:00:00Z".parse()?;
    let seeds = fixtures::articles()?;
    let questions = fixtures::questions()?;
    let texts: Vec<String> = questions.iter().map(|q| q.q.clone()).collect();

    let articles: Vec<Article> = seeds
        .iter()
        .map(|seed| Article {
            id: seed.id.clone(),
            content: seed.content.clone(),
            status: Status::Published,
            version: 1,
            updated_at: now,
        })
        .collect();
    println!(
        "profile: {}",
        if cfg!(debug_assertions) {
            "dev (unoptimised)"
        } else {
            "optimised"
        }
    );
    let index = build(&articles)?;
    report(
        &format!("fixtures ({} articles)", articles.len()),
        &index,
        &texts,
        now,
    )?;

    let synthetic = synthesise(&articles, n_synthetic);
    let index = build(&synthetic)?;
    report(
        &format!("synthetic ({n_synthetic} articles)"),
        &index,
        &texts,
        now,
    )?;
    Ok(())
}

fn build(articles: &[Article]) -> Result<KbIndex, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let index = KbIndex::create_in_ram(fixtures::segmenter()?, fixtures::synonyms())?;
    for article in articles {
        index.upsert(article)?;
    }
    index.commit("")?;
    let took = started.elapsed();
    println!(
        "build: {} articles in {:.2} s ({:.0} articles/s)",
        articles.len(),
        took.as_secs_f64(),
        articles.len() as f64 / took.as_secs_f64()
    );
    Ok(index)
}

/// Variations of the fixture articles: district, street and a shuffled extra sentence taken
/// from other articles, so the vocabulary and lengths stay realistic.
fn synthesise(articles: &[Article], n: usize) -> Vec<Article> {
    const DISTRICTS: &[&str] = &[
        "城关区",
        "七里河区",
        "西固区",
        "安宁区",
        "红古区",
        "永登县",
        "皋兰县",
        "榆中县",
        "兰州新区",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        // xorshift64*: deterministic, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..n)
        .map(|i| {
            let base = &articles[i % articles.len()];
            let other = &articles[(next() as usize) % articles.len()];
            let district = DISTRICTS[(next() as usize) % DISTRICTS.len()];
            let mut article = base.clone();
            article.id = format!("syn-{i}");
            article.content.title = format!("{district}{}（第{}号）", base.content.title, i);
            let extra: String = other.content.body.chars().take(60).collect();
            article.content.body = format!("{district}：{}{extra}", base.content.body);
            article
        })
        .collect()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[rank]
}

fn report(
    name: &str,
    index: &KbIndex,
    texts: &[String],
    now: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut search = Vec::new();
    let mut suggest = Vec::new();
    for _ in 0..ROUNDS {
        for text in texts {
            let request = SearchRequest {
                text: text.clone(),
                limit: 10,
                ..SearchRequest::default()
            };
            let started = Instant::now();
            index.search(&request, now)?;
            search.push(started.elapsed());
            let chars: Vec<char> = text.chars().collect();
            for end in 1..=chars.len() {
                let typed: String = chars[..end].iter().collect();
                let started = Instant::now();
                index.suggest(&typed, 5, now)?;
                suggest.push(started.elapsed());
            }
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: search p50 {:.2} ms p99 {:.2} ms ({} queries); suggest p50 {:.2} ms p99 {:.2} ms ({} keystrokes)",
        ms(percentile(&mut search, 0.5)),
        ms(percentile(&mut search, 0.99)),
        search.len(),
        ms(percentile(&mut suggest, 0.5)),
        ms(percentile(&mut suggest, 0.99)),
        suggest.len(),
    );
    Ok(())
}
