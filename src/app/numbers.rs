//! Case numbers on a store several instances share (取号): a counter stream per day.
//!
//! Every number taken is an event in the day's counter stream `numbers-YYYYMMDD`, appended
//! with the counter's expected version, so no two instances ever take the same number and
//! none is skipped: an instance that loses a race re-reads the counter (one short stream,
//! cheap on every backend) and takes the next ones. Intakes waiting at once are served by one
//! append (one event per number), so the counter costs one extra write per batch, not per
//! intake.
//!
//! A number whose case was not stored (the append failed) goes back to this process's free
//! numbers and is taken first; only a process that dies in between leaves a gap, and the
//! counter says the number was taken then. On a day whose counter is still empty but whose
//! cases were numbered before (by a build without the counter), counting starts after the
//! highest stored case number.
//!
//! A store one process owns (the embedded SQLite file) numbers from memory instead
//! (`App::take_case_number`): nobody else writes there.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::store::stream::StreamName;
use crate::store::{EventStore, ExpectedVersion, NewEvent, StoreError};

/// The event type of a number taken.
pub const NUMBER_TAKEN: &str = "case_number_taken";

/// Rounds of losing the counter to other instances before an intake gives up (503).
const COUNTER_ATTEMPTS: u32 = 32;

/// At most this many numbers are taken in one append.
const MAX_BATCH: usize = 256;

/// The counter stream of `day` (`YYYYMMDD`).
pub fn counter_stream(day: &str) -> String {
    format!("{}{day}", crate::store::stream::NUMBERS_PREFIX)
}

/// A number taken, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberTaken {
    /// The sequence number within the day (the case number's last five digits).
    pub number: u32,
}

/// The events that take the numbers after `last`, `count` of them.
pub fn taken_events(last: u32, count: u32) -> Vec<NewEvent> {
    (1..=count)
        .map(|i| NewEvent {
            event_id: Uuid::new_v4(),
            event_type: NUMBER_TAKEN.to_owned(),
            schema_version: 1,
            data: serde_json::to_string(&NumberTaken { number: last + i })
                .unwrap_or_else(|_| unreachable!("a number serialises")),
            metadata: "{}".to_owned(),
        })
        .collect()
}

/// The number a counter event took.
///
/// # Errors
/// The event is not a number taken.
pub fn number_of(data: &str) -> Result<u32, StoreError> {
    serde_json::from_str::<NumberTaken>(data)
        .map(|taken| taken.number)
        .map_err(|err| {
            StoreError::Backend(crate::store::Cause::with(
                "a case-number counter event is unreadable",
                err,
            ))
        })
}

/// The counter of one day, as this process last saw it.
#[derive(Debug, Default)]
struct Day {
    /// The counter stream's version and the last number it took, when known.
    known: Option<(u64, u32)>,
}

/// What one waiting intake asked for.
struct Ask {
    day: String,
    answer: oneshot::Sender<Result<u32, StoreError>>,
}

/// The counters of a store several instances share.
#[derive(Default)]
pub struct SharedNumbers {
    inner: std::sync::Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Intakes waiting for a number.
    waiting: std::sync::Mutex<Vec<Ask>>,
    /// Held by the one task writing to a counter; the days it knows.
    writer: tokio::sync::Mutex<HashMap<String, Day>>,
    /// Numbers of each day taken here whose case was not stored: handed out first.
    free: std::sync::Mutex<HashMap<String, BTreeSet<u32>>>,
}

impl SharedNumbers {
    /// A number of `day` no other intake, here or on another instance, has taken.
    ///
    /// The counter is written by a task of its own, which serves every intake waiting when
    /// it starts: an intake that stops waiting (its client went away) cancels nothing, and
    /// the number it would have had goes back to the free ones.
    ///
    /// # Errors
    /// Store failures; [`StoreError::Unavailable`] when other instances won the counter
    /// [`COUNTER_ATTEMPTS`] times in a row.
    pub async fn take(
        &self,
        store: std::sync::Arc<dyn EventStore>,
        day: &str,
    ) -> Result<u32, StoreError> {
        let (answer, asked) = oneshot::channel();
        lock(&self.inner.waiting).push(Ask {
            day: day.to_owned(),
            answer,
        });
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut days = inner.writer.lock().await;
            // Every ask waiting now, this one among them unless a task before took it.
            let batch = std::mem::take(&mut *lock(&inner.waiting));
            if !batch.is_empty() {
                serve(&inner, &mut days, &*store, batch).await;
            }
        });
        let mut waiting = Waiting {
            asked,
            inner: &self.inner,
            day,
        };
        (&mut waiting.asked).await.unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "the case-number counter's task stopped".into(),
            ))
        })
    }

    /// Gives back `number` of `day`, taken here and not stored: the next intake takes it.
    pub fn give_back(&self, day: &str, number: u32) {
        self.inner.give_back(day, number);
    }
}

impl Inner {
    fn give_back(&self, day: &str, number: u32) {
        lock(&self.free)
            .entry(day.to_owned())
            .or_default()
            .insert(number);
    }
}

/// An intake waiting for its number: if it stops waiting after the number was sent, the
/// number goes back to the free ones.
struct Waiting<'a> {
    asked: oneshot::Receiver<Result<u32, StoreError>>,
    inner: &'a Inner,
    day: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(Ok(number)) = self.asked.try_recv() {
            self.inner.give_back(self.day, number);
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers every ask of `batch`, a day at a time.
async fn serve(
    inner: &Inner,
    days: &mut HashMap<String, Day>,
    store: &dyn EventStore,
    batch: Vec<Ask>,
) {
    let mut by_day: HashMap<String, Vec<oneshot::Sender<Result<u32, StoreError>>>> = HashMap::new();
    for ask in batch {
        by_day.entry(ask.day).or_default().push(ask.answer);
    }
    // Only the days asked for now are worth remembering (yesterday's counter is done).
    days.retain(|day, _| by_day.contains_key(day));
    lock(&inner.free).retain(|day, _| by_day.contains_key(day));
    for (day, mut answers) in by_day {
        let state = days.entry(day.clone()).or_default();
        // Numbers given back first.
        while !answers.is_empty() {
            let Some(number) = lock(&inner.free)
                .get_mut(&day)
                .and_then(BTreeSet::pop_first)
            else {
                break;
            };
            hand_out(inner, &day, answers.remove(0), number);
        }
        while !answers.is_empty() {
            let chunk: Vec<_> = answers.drain(..answers.len().min(MAX_BATCH)).collect();
            let Ok(count) = u32::try_from(chunk.len()) else {
                unreachable!("a chunk is at most MAX_BATCH long")
            };
            match take_numbers(state, store, &day, count).await {
                Ok(first) => {
                    for (number, answer) in (first..).zip(chunk) {
                        hand_out(inner, &day, answer, number);
                    }
                }
                Err(err) => {
                    for answer in chunk {
                        let _ = answer.send(Err(same_failure(&err)));
                    }
                }
            }
        }
    }
}

/// Sends `number` to the intake waiting on `answer`; one that stopped waiting gives it back.
fn hand_out(
    inner: &Inner,
    day: &str,
    answer: oneshot::Sender<Result<u32, StoreError>>,
    number: u32,
) {
    if answer.send(Ok(number)).is_err() {
        inner.give_back(day, number);
    }
}

/// A failure like `err`, for each intake of a batch that met it (an error is not `Clone`).
fn same_failure(err: &StoreError) -> StoreError {
    let message = err.to_string();
    match err.retry() {
        crate::store::Retry::Later | crate::store::Retry::Decide => {
            StoreError::Unavailable(message.into())
        }
        crate::store::Retry::No => StoreError::Backend(message.into()),
    }
}

/// Takes `count` numbers of `day` in the store's counter; returns the first.
async fn take_numbers(
    state: &mut Day,
    store: &dyn EventStore,
    day: &str,
    count: u32,
) -> Result<u32, StoreError> {
    let stream = counter_stream(day);
    for _ in 0..COUNTER_ATTEMPTS {
        let (version, last) = match state.known {
            Some(known) => known,
            None => read_counter(store, day, &stream).await?,
        };
        let events = taken_events(last, count);
        match store
            .append(&stream, ExpectedVersion::Exact(version), events)
            .await
        {
            Ok(written) => {
                state.known = Some((written.version, last + count));
                return Ok(last + 1);
            }
            // Another instance took numbers meanwhile: read where the counter is.
            Err(StoreError::Conflict { .. }) => state.known = None,
            Err(err) => {
                // The append may have happened: read the counter again next time.
                state.known = None;
                return Err(err);
            }
        }
    }
    Err(StoreError::Unavailable(
        format!("other instances took the case-number counter {COUNTER_ATTEMPTS} times in a row")
            .into(),
    ))
}

/// The counter's version and the last number it took; for an empty counter, the highest case
/// number of the day already stored (numbered before the counter), 0 when none is.
async fn read_counter(
    store: &dyn EventStore,
    day: &str,
    stream: &str,
) -> Result<(u64, u32), StoreError> {
    let version = store.stream_version(stream).await?;
    if version > 0 {
        let last = store.read_stream(stream, version).await?;
        let Some(event) = last.last() else {
            return Err(StoreError::Backend(
                "the case-number counter lost its last event".into(),
            ));
        };
        return Ok((event.version, number_of(&event.data)?));
    }
    // No counter yet. Cases numbered without it start at 1, densely: if the first is absent
    // there are none, and nothing need be listed.
    let first = crate::app::case_number(day, 1)
        .map_err(|err| StoreError::Backend(err.to_string().into()))?;
    if store.stream_version(&first.stream()).await? == 0 {
        return Ok((0, 0));
    }
    let highest = stored_numbers(store, day).await?.into_iter().max();
    Ok((0, highest.unwrap_or(0)))
}

/// The sequence numbers of `day`'s cases in the store.
///
/// # Errors
/// Store failures.
pub async fn stored_numbers(
    store: &dyn EventStore,
    day: &str,
) -> Result<std::collections::HashSet<u32>, StoreError> {
    let prefix = StreamName::cases_of_day(day);
    Ok(store
        .streams_with_prefix(&prefix)
        .await?
        .iter()
        .filter_map(|(s, _)| s.strip_prefix(&prefix)?.parse::<u32>().ok())
        .collect())
}

/// The sequence number of `case_id` within `day` (`None` for a case of another day).
pub fn number_in_day(case_id: &domain::CaseId, day: &str) -> Option<u32> {
    case_id.as_str().strip_prefix(day)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;
    use std::sync::Arc;

    use super::*;
    use crate::store::contract::events;
    use crate::store::sqlite::SqliteStore;

    const DAY: &str = "20261204";

    fn store() -> (Arc<dyn EventStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("events.db")).unwrap();
        (Arc::new(store), dir)
    }

    #[test]
    fn a_counter_event_reads_back_as_its_number() {
        let taken = taken_events(41, 3);
        let numbers: Vec<u32> = taken.iter().map(|e| number_of(&e.data).unwrap()).collect();
        assert_eq!(numbers, [42, 43, 44]);
        assert!(taken.iter().all(|e| e.event_type == NUMBER_TAKEN));
        assert!(number_of(r#"{"n":1}"#).is_err());
        assert_eq!(counter_stream(DAY), "numbers-20261204");
        assert_eq!(
            StreamName::parse(&counter_stream(DAY)),
            None,
            "not a case stream"
        );
        assert!(!StreamName::is_case(&counter_stream(DAY)));
    }

    /// Two instances' counters on one store, many intakes at once on each: every number
    /// once, none skipped, and the counter holds one event per number.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_counters_on_one_store_take_every_number_once_without_gaps() {
        const EACH: u32 = 150;
        let (store, _dir) = store();
        let counters = [
            Arc::new(SharedNumbers::default()),
            Arc::new(SharedNumbers::default()),
        ];
        let tasks: Vec<_> = (0..EACH * 2)
            .map(|i| {
                let counter = counters[(i % 2) as usize].clone();
                let store = store.clone();
                tokio::spawn(async move { counter.take(store, DAY).await.unwrap() })
            })
            .collect();
        let mut numbers = Vec::new();
        for task in tasks {
            numbers.push(task.await.unwrap());
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=EACH * 2).collect::<Vec<_>>());
        assert_eq!(
            store.stream_version(&counter_stream(DAY)).await.unwrap(),
            u64::from(EACH * 2)
        );
    }

    #[tokio::test]
    async fn a_number_given_back_or_left_by_an_intake_that_stopped_waiting_is_taken_next() {
        let (store, _dir) = store();
        let counter = SharedNumbers::default();
        assert_eq!(counter.take(store.clone(), DAY).await.unwrap(), 1);
        assert_eq!(counter.take(store.clone(), DAY).await.unwrap(), 2);
        counter.give_back(DAY, 1);
        assert_eq!(counter.take(store.clone(), DAY).await.unwrap(), 1);
        assert_eq!(counter.take(store.clone(), DAY).await.unwrap(), 3);
        // Another day counts from 1, and its counter is its own.
        assert_eq!(counter.take(store.clone(), "20261205").await.unwrap(), 1);
        // An intake whose future is dropped before its number arrives leaves it to the next.
        let mut abandoned = Box::pin(counter.take(store.clone(), DAY));
        std::future::poll_fn(|cx| {
            assert!(
                abandoned.as_mut().poll(cx).is_pending(),
                "polled once: waiting"
            );
            std::task::Poll::Ready(())
        })
        .await;
        drop(abandoned);
        let next = counter.take(store.clone(), DAY).await.unwrap();
        let after = counter.take(store.clone(), DAY).await.unwrap();
        let mut both = [next, after];
        both.sort_unstable();
        assert_eq!(
            both,
            [4, 5],
            "the abandoned intake's number was handed out: {next} {after}"
        );
        assert_eq!(
            store.stream_version(&counter_stream(DAY)).await.unwrap(),
            5,
            "no number beyond"
        );
    }

    #[tokio::test]
    async fn a_day_numbered_before_the_counter_counts_on_from_its_highest_case() {
        let (store, _dir) = store();
        for n in [1, 2, 3, 7] {
            let id = crate::app::case_number(DAY, n).unwrap();
            store
                .append(&id.stream(), ExpectedVersion::NoStream, events(1))
                .await
                .unwrap();
        }
        let counter = SharedNumbers::default();
        assert_eq!(counter.take(store.clone(), DAY).await.unwrap(), 8);
        // A fresh process reads the counter, not the cases.
        let other = SharedNumbers::default();
        assert_eq!(other.take(store.clone(), DAY).await.unwrap(), 9);
    }
}
