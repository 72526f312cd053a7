//! The event store contract: checks every backend must pass, unchanged.
//!
//! Each check is a `pub async fn` taking a fresh, empty store. A backend's test module runs
//! them all with one line:
//!
//! ```text
//! crate::store::contract::contract_tests!(fresh_store());
//! ```
//!
//! where the expression (evaluated in an async test, so it may `.await`) gives
//! `(store, guard)`: the guard (a temporary directory, a throwaway database) lives until the
//! check has finished and dropped the store. A store several processes share also runs
//! `contract_tests!(shared: [] fresh_pair())`, whose fixture gives `(a, b, guard)`: two handles
//! on one fresh store, as two instances would open it.
//!
//! The checks treat positions as opaque: increasing, not necessarily dense. They never sleep;
//! waits are bounded by [`PATIENCE`] so a broken backend fails instead of hanging.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use uuid::Uuid;

use super::{
    AppendResult, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError,
    Subscription,
};

/// The longest a check waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Expands to one `#[tokio::test]` per contract check, each getting its store from
/// `$fixture`, an expression giving `(store, guard)`.
///
/// `contract_tests!(ids_unique_per_stream: [attributes] fixture)` leaves out the two checks of
/// event ids unique across streams, for a backend that checks ids within a stream only
/// (KurrentDB); `contract_tests!(shared: [attributes] fixture)` runs the checks of two handles
/// on one store. The attributes go on every test (`#[ignore = "…"]` for a backend whose
/// server is not always at hand).
macro_rules! contract_tests {
    (@checks $attrs:tt $fixture:expr; $($check:ident),* $(,)?) => {
        $( $crate::store::contract::contract_tests!(@one $attrs $fixture; $check); )*
    };
    (@one [$(#[$meta:meta])*] $fixture:expr; $check:ident) => {
        $(#[$meta])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (store, _guard) = $fixture;
            $crate::store::contract::$check(store).await;
        }
    };
    (@shared $attrs:tt $fixture:expr; $($check:ident),* $(,)?) => {
        $( $crate::store::contract::contract_tests!(@one_shared $attrs $fixture; $check); )*
    };
    (@one_shared [$(#[$meta:meta])*] $fixture:expr; $check:ident) => {
        $(#[$meta])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (a, b, _guard) = $fixture;
            $crate::store::contract::$check(std::sync::Arc::new(a), std::sync::Arc::new(b))
                .await;
        }
    };
    (@common $attrs:tt $fixture:expr; $($extra:ident),* $(,)?) => {
        $crate::store::contract::contract_tests!(@checks $attrs $fixture;
            an_empty_store_has_nothing,
            append_then_read_stream_round_trips,
            no_stream_expectation_accepts_only_a_new_stream,
            exact_expectation_accepts_only_the_current_version,
            any_expectation_appends_whatever_the_version,
            a_conflicting_append_appends_nothing,
            an_empty_append_is_refused,
            resending_an_append_returns_the_original_result,
            resending_part_of_an_append_is_an_id_mismatch,
            read_all_is_in_global_order_strictly_after_and_limited,
            streams_with_prefix_lists_matching_streams_sorted_by_name,
            events_of_type_returns_that_type_in_global_order,
            a_subscription_from_the_start_catches_up_then_goes_live,
            a_subscription_from_a_middle_position_starts_after_it,
            a_subscription_hands_out_batches_in_order_without_gaps,
            concurrent_exact_appenders_win_once_per_version,
            a_subscriber_never_skips_an_event_under_concurrent_appends,
            wait_for_returns_once_head_reaches_the_position,
            $($extra,)*
        );
    };
    (ids_unique_per_stream: [$(#[$meta:meta])*] $fixture:expr) => {
        $crate::store::contract::contract_tests!(@common [$(#[$meta])*] $fixture;);
    };
    (shared: [$(#[$meta:meta])*] $fixture:expr) => {
        $crate::store::contract::contract_tests!(@shared [$(#[$meta])*] $fixture;
            two_handles_share_one_log_and_one_version_check,
            writers_on_two_handles_race_subscribers_without_a_skip,
            a_lease_has_one_holder_at_a_time,
        );
    };
    ($fixture:expr) => {
        $crate::store::contract::contract_tests!(@common [] $fixture;
            an_id_stored_in_another_stream_is_an_id_mismatch,
            an_append_clashing_on_a_later_id_appends_nothing,
        );
    };
}
pub(crate) use contract_tests;

/// A new event of `event_type` with a fresh id and `n` in its payload.
pub fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        data: format!(r#"{{"n":{n},"text":"市民来电 — 噪音扰民"}}"#),
        metadata: r#"{"actor":"operator-7"}"#.to_owned(),
    }
}

/// `n` new events of type `Noted`.
pub fn events(n: u64) -> Vec<NewEvent> {
    (1..=n).map(|i| event("Noted", i)).collect()
}

/// Every stored event, in global order.
pub async fn everything<S: EventStore + ?Sized>(store: &S) -> Vec<RecordedEvent> {
    store.read_all(Position(0), usize::MAX).await.unwrap()
}

fn ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|event| event.event_id).collect()
}

fn positions(events: &[RecordedEvent]) -> Vec<Position> {
    events.iter().map(|event| event.position).collect()
}

fn assert_increasing(positions: &[Position]) {
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "positions are not strictly increasing: {positions:?}"
    );
}

async fn next_within(subscription: &mut Subscription) -> RecordedEvent {
    tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("the subscription delivered nothing in time")
        .unwrap()
}

/// An empty store: head 0, no events, no streams.
pub async fn an_empty_store_has_nothing<S: EventStore>(store: S) {
    assert_eq!(store.head(), Position(0));
    assert!(everything(&store).await.is_empty());
    assert!(store.read_stream("case-1", 1).await.unwrap().is_empty());
    assert_eq!(store.stream_version("case-1").await.unwrap(), 0);
    assert!(store.streams_with_prefix("").await.unwrap().is_empty());
    assert!(store.events_of_type("Noted").await.unwrap().is_empty());
}

/// Appended events come back from `read_stream` intact, with versions 1..n.
pub async fn append_then_read_stream_round_trips<S: EventStore>(store: S) {
    let first = events(3);
    let second = events(2);
    let res = store
        .append("case-1", ExpectedVersion::NoStream, first.clone())
        .await
        .unwrap();
    assert_eq!(res.version, 3);
    assert_eq!(store.head(), res.position);
    let res = store
        .append("case-1", ExpectedVersion::Exact(3), second.clone())
        .await
        .unwrap();
    assert_eq!(res.version, 5);
    assert_eq!(store.head(), res.position);
    assert_eq!(store.stream_version("case-1").await.unwrap(), 5);

    let stored = store.read_stream("case-1", 1).await.unwrap();
    let sent: Vec<NewEvent> = first.into_iter().chain(second).collect();
    assert_eq!(stored.len(), sent.len());
    for (version, (recorded, new)) in (1..).zip(stored.iter().zip(&sent)) {
        assert_eq!(recorded.version, version);
        assert_eq!(recorded.stream, "case-1");
        assert_eq!(recorded.event_id, new.event_id);
        assert_eq!(recorded.event_type, new.event_type);
        assert_eq!(recorded.schema_version, new.schema_version);
        assert_eq!(recorded.data, new.data);
        assert_eq!(recorded.metadata, new.metadata);
    }
    assert_increasing(&positions(&stored));
    assert_eq!(
        stored.last().map(|event| event.position),
        Some(res.position)
    );

    let tail = store.read_stream("case-1", 4).await.unwrap();
    assert_eq!(ids(&tail), ids(&stored[3..]));
    assert!(store.read_stream("case-1", 6).await.unwrap().is_empty());
    assert_eq!(store.read_stream("case-1", 0).await.unwrap().len(), 5);
}

/// `NoStream` (and `Exact(0)`) succeed on an absent stream only.
pub async fn no_stream_expectation_accepts_only_a_new_stream<S: EventStore>(store: S) {
    store
        .append("case-1", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let err = store
        .append("case-1", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { stream, expected: ExpectedVersion::NoStream, actual: 1 } if stream == "case-1"),
        "{err:?}"
    );
    let res = store
        .append("case-2", ExpectedVersion::Exact(0), events(2))
        .await
        .unwrap();
    assert_eq!(res.version, 2);
}

/// `Exact(v)` succeeds only when the stream is at `v`.
pub async fn exact_expectation_accepts_only_the_current_version<S: EventStore>(store: S) {
    store
        .append("case-1", ExpectedVersion::Exact(0), events(2))
        .await
        .unwrap();
    for wrong in [0, 1, 3, 7] {
        let err = store
            .append("case-1", ExpectedVersion::Exact(wrong), events(1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { expected: ExpectedVersion::Exact(w), actual: 2, .. } if w == wrong),
            "{err:?}"
        );
    }
    let err = store
        .append("case-2", ExpectedVersion::Exact(1), events(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual: 0, .. }),
        "{err:?}"
    );
    let res = store
        .append("case-1", ExpectedVersion::Exact(2), events(1))
        .await
        .unwrap();
    assert_eq!(res.version, 3);
}

/// `Any` appends to an absent or existing stream.
pub async fn any_expectation_appends_whatever_the_version<S: EventStore>(store: S) {
    let res = store
        .append("case-1", ExpectedVersion::Any, events(2))
        .await
        .unwrap();
    assert_eq!(res.version, 2);
    let res = store
        .append("case-1", ExpectedVersion::Any, events(1))
        .await
        .unwrap();
    assert_eq!(res.version, 3);
    assert_eq!(store.read_stream("case-1", 1).await.unwrap().len(), 3);
}

/// A wrong expected version appends nothing: no events, same head, same version.
pub async fn a_conflicting_append_appends_nothing<S: EventStore>(store: S) {
    store
        .append("case-1", ExpectedVersion::Any, events(2))
        .await
        .unwrap();
    store
        .append("case-2", ExpectedVersion::Any, events(1))
        .await
        .unwrap();
    let before = everything(&store).await;
    let head = store.head();

    let rejected = events(3);
    let err = store
        .append("case-1", ExpectedVersion::Exact(1), rejected.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual: 2, .. }),
        "{err:?}"
    );
    let err = store
        .append("case-2", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual: 1, .. }),
        "{err:?}"
    );

    assert_eq!(everything(&store).await, before);
    assert_eq!(store.head(), head);
    assert_eq!(store.stream_version("case-1").await.unwrap(), 2);
    let stored = ids(&everything(&store).await);
    for event in &rejected {
        assert!(!stored.contains(&event.event_id));
    }
    // The rejected ids were not burnt: they can be appended properly.
    let res = store
        .append("case-1", ExpectedVersion::Exact(2), rejected)
        .await
        .unwrap();
    assert_eq!(res.version, 5);
}

/// An append with no events is refused and changes nothing.
pub async fn an_empty_append_is_refused<S: EventStore>(store: S) {
    let err = store
        .append("case-1", ExpectedVersion::Any, Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Empty), "{err:?}");
    assert_eq!(store.stream_version("case-1").await.unwrap(), 0);
    assert_eq!(store.head(), Position(0));
}

/// Re-sending an append (same stream, same ids in order) returns the original result and
/// appends nothing, whatever the expectation.
pub async fn resending_an_append_returns_the_original_result<S: EventStore>(store: S) {
    let first = events(3);
    let original = store
        .append("case-1", ExpectedVersion::NoStream, first.clone())
        .await
        .unwrap();
    let later = store
        .append("case-1", ExpectedVersion::Exact(3), events(2))
        .await
        .unwrap();
    let before = everything(&store).await;

    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(0),
        ExpectedVersion::Exact(3),
        ExpectedVersion::Exact(42),
        ExpectedVersion::Any,
    ] {
        let res = store
            .append("case-1", expected, first.clone())
            .await
            .unwrap();
        assert_eq!(res, original, "re-sent with {expected:?}");
    }
    assert_eq!(everything(&store).await, before);
    assert_eq!(store.head(), later.position);
    assert_eq!(store.stream_version("case-1").await.unwrap(), 5);
}

/// Ids already stored, but not as this exact append, are an `IdMismatch`; nothing is appended.
pub async fn resending_part_of_an_append_is_an_id_mismatch<S: EventStore>(store: S) {
    let stored = events(3);
    store
        .append("case-1", ExpectedVersion::NoStream, stored.clone())
        .await
        .unwrap();
    let before = everything(&store).await;
    let head = store.head();

    let fresh = event("Noted", 9);
    let attempts: Vec<(&str, Vec<NewEvent>)> = vec![
        // The stored ids plus a new one.
        (
            "case-1",
            vec![
                stored[0].clone(),
                stored[1].clone(),
                stored[2].clone(),
                fresh.clone(),
            ],
        ),
        // A new id first, then stored ones.
        ("case-1", vec![fresh.clone(), stored[1].clone()]),
        // Stored ids out of order.
        ("case-1", vec![stored[1].clone(), stored[0].clone()]),
        // One id twice in the same append.
        ("case-3", vec![fresh.clone(), fresh.clone()]),
    ];
    for (stream, attempt) in attempts {
        let err = store
            .append(stream, ExpectedVersion::Any, attempt)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::IdMismatch { stream: s, .. } if s == stream),
            "{err:?}"
        );
    }
    assert_eq!(everything(&store).await, before);
    assert_eq!(store.head(), head);
    assert_eq!(store.stream_version("case-3").await.unwrap(), 0);
    assert!(!ids(&everything(&store).await).contains(&fresh.event_id));

    // A prefix of the stored append, in order, is a faithful re-send.
    let res = store
        .append("case-1", ExpectedVersion::Any, stored[..2].to_vec())
        .await
        .unwrap();
    assert_eq!(res.version, 2);
    assert_eq!(res.position, before[1].position);
}

/// Ids stored in one stream, sent to another, are an `IdMismatch` there; nothing is appended.
/// (Not for a backend whose ids are unique per stream only.)
pub async fn an_id_stored_in_another_stream_is_an_id_mismatch<S: EventStore>(store: S) {
    let stored = events(3);
    store
        .append("case-1", ExpectedVersion::NoStream, stored.clone())
        .await
        .unwrap();
    let before = everything(&store).await;
    let err = store
        .append("case-2", ExpectedVersion::Any, stored)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::IdMismatch { stream, .. } if stream == "case-2"),
        "{err:?}"
    );
    assert_eq!(everything(&store).await, before);
    assert_eq!(store.stream_version("case-2").await.unwrap(), 0);
}

/// An append whose last event clashes with an id stored in another stream appends none of
/// its events. (Not for a backend whose ids are unique per stream only.)
pub async fn an_append_clashing_on_a_later_id_appends_nothing<S: EventStore>(store: S) {
    let other = events(1);
    store
        .append("case-9", ExpectedVersion::Any, other.clone())
        .await
        .unwrap();
    store
        .append("case-1", ExpectedVersion::Any, events(1))
        .await
        .unwrap();
    let before = everything(&store).await;

    let mut attempt = events(4);
    attempt.push(other[0].clone());
    let err = store
        .append("case-1", ExpectedVersion::Exact(1), attempt.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IdMismatch { event_id, .. } if event_id == other[0].event_id),
        "{err:?}"
    );
    assert_eq!(everything(&store).await, before);
    assert_eq!(store.stream_version("case-1").await.unwrap(), 1);
    let stored = ids(&everything(&store).await);
    for event in &attempt[..4] {
        assert!(!stored.contains(&event.event_id));
    }
}

/// `read_all` gives global order, strictly after `after`, at most `limit` events.
pub async fn read_all_is_in_global_order_strictly_after_and_limited<S: EventStore>(store: S) {
    let mut sent = Vec::new();
    for round in 0..4 {
        for stream in ["case-a", "case-b", "case-c"] {
            let batch = events(round % 3 + 1);
            sent.extend(batch.iter().map(|event| event.event_id));
            store
                .append(stream, ExpectedVersion::Any, batch)
                .await
                .unwrap();
        }
    }
    let all = everything(&store).await;
    assert_eq!(ids(&all), sent);
    assert_increasing(&positions(&all));
    assert_eq!(store.head(), all.last().unwrap().position);

    for (index, event) in all.iter().enumerate() {
        let after = store.read_all(event.position, usize::MAX).await.unwrap();
        assert_eq!(ids(&after), ids(&all[index + 1..]));
    }
    let first = store.read_all(Position(0), 5).await.unwrap();
    assert_eq!(ids(&first), ids(&all[..5]));
    let next = store.read_all(first[4].position, 5).await.unwrap();
    assert_eq!(ids(&next), ids(&all[5..10]));
    assert!(store.read_all(Position(0), 0).await.unwrap().is_empty());
    assert!(store.read_all(store.head(), 10).await.unwrap().is_empty());
}

/// `streams_with_prefix` matches the prefix exactly (no wildcards), sorted by name.
pub async fn streams_with_prefix_lists_matching_streams_sorted_by_name<S: EventStore>(store: S) {
    for (stream, n) in [
        ("case-2", 2),
        ("case-10", 1),
        ("cas", 1),
        ("casefile-1", 1),
        ("user-1", 3),
        ("case-1", 4),
        ("ca%e-1", 1),
        ("ca_e-1", 1),
        ("case-工单", 1),
    ] {
        store
            .append(stream, ExpectedVersion::Any, events(n))
            .await
            .unwrap();
    }
    let listed = store.streams_with_prefix("case-").await.unwrap();
    let expected = vec![
        ("case-1".to_owned(), 4),
        ("case-10".to_owned(), 1),
        ("case-2".to_owned(), 2),
        ("case-工单".to_owned(), 1),
    ];
    assert_eq!(listed, expected);
    assert_eq!(
        store.streams_with_prefix("ca%").await.unwrap(),
        vec![("ca%e-1".to_owned(), 1)]
    );
    assert_eq!(
        store.streams_with_prefix("ca_").await.unwrap(),
        vec![("ca_e-1".to_owned(), 1)]
    );
    assert!(store.streams_with_prefix("zzz").await.unwrap().is_empty());
    let all = store.streams_with_prefix("").await.unwrap();
    assert_eq!(all.len(), 9);
    assert!(all.windows(2).all(|pair| pair[0].0 < pair[1].0));
}

/// `events_of_type` gives only that type, in global order.
pub async fn events_of_type_returns_that_type_in_global_order<S: EventStore>(store: S) {
    let mut expected = Vec::new();
    for n in 0..6 {
        let created = event("CaseReceived", n);
        expected.push(created.event_id);
        store
            .append(
                &format!("case-{}", n % 2),
                ExpectedVersion::Any,
                vec![created, event("Noted", n)],
            )
            .await
            .unwrap();
    }
    let found = store.events_of_type("CaseReceived").await.unwrap();
    assert_eq!(ids(&found), expected);
    assert!(found.iter().all(|event| event.event_type == "CaseReceived"));
    assert_increasing(&positions(&found));
    assert_eq!(store.events_of_type("Noted").await.unwrap().len(), 6);
    assert!(store.events_of_type("Closed").await.unwrap().is_empty());
}

/// A subscription from the start delivers what is stored, then what commits later.
pub async fn a_subscription_from_the_start_catches_up_then_goes_live<S: EventStore>(store: S) {
    // More than one read batch of history.
    let n_history = Subscription::DEFAULT_BATCH_SIZE as u64 + 10;
    store
        .append("case-1", ExpectedVersion::Any, events(n_history))
        .await
        .unwrap();
    let mut subscription = store.subscribe(Position(0));
    let mut seen = Vec::new();
    for _ in 0..n_history {
        seen.push(next_within(&mut subscription).await);
    }
    assert_eq!(ids(&seen), ids(&everything(&store).await));
    assert_eq!(subscription.position(), store.head());

    let live = events(1);
    let (received, res) = tokio::join!(next_within(&mut subscription), async {
        tokio::task::yield_now().await;
        store
            .append("case-2", ExpectedVersion::Any, live.clone())
            .await
            .unwrap()
    });
    assert_eq!(received.event_id, live[0].event_id);
    assert_eq!(received.position, res.position);
    assert_eq!(received.stream, "case-2");
}

/// A subscription from a stored position starts strictly after it, then goes live.
pub async fn a_subscription_from_a_middle_position_starts_after_it<S: EventStore>(store: S) {
    store
        .append("case-1", ExpectedVersion::Any, events(5))
        .await
        .unwrap();
    let all = everything(&store).await;
    let mut subscription = store.subscribe(all[1].position);
    for expected in &all[2..] {
        assert_eq!(
            next_within(&mut subscription).await.event_id,
            expected.event_id
        );
    }
    let live = events(2);
    store
        .append("case-1", ExpectedVersion::Exact(5), live.clone())
        .await
        .unwrap();
    for expected in &live {
        let received = next_within(&mut subscription).await;
        assert_eq!(received.event_id, expected.event_id);
    }
    // Nothing else is pending.
    let extra = tokio::time::timeout(Duration::from_millis(50), subscription.next()).await;
    assert!(extra.is_err(), "unexpected event: {extra:?}");
}

/// `next_batch` gives at most `max` events, in order, and the next batch goes on where the last
/// one stopped, also for events that commit later.
pub async fn a_subscription_hands_out_batches_in_order_without_gaps<S: EventStore>(store: S) {
    store
        .append("case-1", ExpectedVersion::Any, events(5))
        .await
        .unwrap();
    let all = everything(&store).await;
    let mut subscription = store.subscribe(Position(0));
    let mut seen = Vec::new();
    while seen.len() < all.len() {
        let batch = tokio::time::timeout(PATIENCE, subscription.next_batch(2))
            .await
            .expect("the subscription delivered nothing in time")
            .unwrap();
        assert!((1..=2).contains(&batch.len()), "batch of {}", batch.len());
        seen.extend(batch.into_iter().map(|e| e.event_id));
    }
    let ids = |events: &[RecordedEvent]| events.iter().map(|e| e.event_id).collect::<Vec<_>>();
    assert_eq!(seen, ids(&all));
    assert_eq!(subscription.position(), all[4].position);
    let live = events(3);
    store
        .append("case-1", ExpectedVersion::Exact(5), live.clone())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < live.len() {
        let batch = tokio::time::timeout(PATIENCE, subscription.next_batch(10))
            .await
            .expect("the subscription delivered nothing in time")
            .unwrap();
        seen.extend(batch.into_iter().map(|e| e.event_id));
    }
    assert_eq!(seen, live.iter().map(|e| e.event_id).collect::<Vec<_>>());
}

/// Appenders racing on the same version with `Exact`: exactly one wins each version.
pub async fn concurrent_exact_appenders_win_once_per_version<S: EventStore>(store: S) {
    const N_APPENDERS: usize = 8;
    const N_ROUNDS: u64 = 20;
    let store = Arc::new(store);
    for round in 0..N_ROUNDS {
        let barrier = Arc::new(Barrier::new(N_APPENDERS));
        let tasks: Vec<_> = (0..N_APPENDERS)
            .map(|_| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .append("case-1", ExpectedVersion::Exact(round), events(1))
                        .await
                })
            })
            .collect();
        let mut n_won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(res) => {
                    n_won += 1;
                    assert_eq!(res.version, round + 1);
                }
                Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, round + 1),
                Err(err) => panic!("unexpected error: {err:?}"),
            }
        }
        assert_eq!(n_won, 1, "round {round}");
    }
    let stored = store.read_stream("case-1", 1).await.unwrap();
    assert_eq!(stored.len() as u64, N_ROUNDS);
    assert_eq!(store.stream_version("case-1").await.unwrap(), N_ROUNDS);
}

/// Many tasks append at once while a subscriber follows: it sees every event exactly once, in
/// increasing position order, exactly as `read_all` lists them afterwards.
pub async fn a_subscriber_never_skips_an_event_under_concurrent_appends<S: EventStore>(store: S) {
    const N_TASKS: u64 = 16;
    const N_EACH: u64 = 60;
    let store = Arc::new(store);
    // Some history first, so the subscriber is catching up when the storm starts.
    store
        .append("case-history", ExpectedVersion::Any, events(20))
        .await
        .unwrap();
    let n_total = 20 + N_TASKS * N_EACH + N_TASKS * N_EACH / 2 * 3;

    let mut subscription = store.subscribe(Position(0));
    let subscriber = tokio::spawn(async move {
        let mut seen = Vec::new();
        while (seen.len() as u64) < n_total {
            seen.push(next_within(&mut subscription).await);
        }
        seen
    });
    let appenders: Vec<_> = (0..N_TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in 0..N_EACH {
                    // Own streams with Exact, a shared one with Any, and multi-event appends.
                    let own = format!("case-{task}");
                    store
                        .append(&own, ExpectedVersion::Exact(n + n / 2 * 2), events(1))
                        .await
                        .unwrap();
                    if n % 2 == 1 {
                        store
                            .append(&own, ExpectedVersion::Any, events(2))
                            .await
                            .unwrap();
                        store
                            .append("case-shared", ExpectedVersion::Any, events(1))
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for appender in appenders {
        appender.await.unwrap();
    }
    let seen = subscriber.await.unwrap();
    let all = everything(&*store).await;
    assert_eq!(all.len() as u64, n_total);
    assert_increasing(&positions(&seen));
    let unique: HashSet<Uuid> = seen.iter().map(|event| event.event_id).collect();
    assert_eq!(unique.len(), seen.len(), "an event was delivered twice");
    assert_eq!(positions(&seen), positions(&all));
    assert_eq!(ids(&seen), ids(&all));
}

/// `wait_for` returns true at once for a reached position, true when a later commit reaches
/// it, and false on timeout.
pub async fn wait_for_returns_once_head_reaches_the_position<S: EventStore>(store: S) {
    assert!(store.wait_for(Position(0), Duration::ZERO).await);
    let AppendResult { position, .. } = store
        .append("case-1", ExpectedVersion::Any, events(2))
        .await
        .unwrap();
    assert!(store.wait_for(position, Duration::ZERO).await);
    let next = Position(position.0 + 1);
    assert!(!store.wait_for(next, Duration::from_millis(20)).await);

    let (reached, res) = tokio::join!(store.wait_for(next, PATIENCE), async {
        tokio::task::yield_now().await;
        store
            .append("case-1", ExpectedVersion::Any, events(1))
            .await
            .unwrap()
    });
    assert!(reached);
    assert!(res.position >= next);
    assert_eq!(store.head(), res.position);
}

/// Many writers on two handles (two instances) race a subscriber on each: every event reaches
/// both, once, in one order, and no acknowledged one is missing.
pub async fn writers_on_two_handles_race_subscribers_without_a_skip<S: EventStore>(
    a: Arc<S>,
    b: Arc<S>,
) {
    const WRITERS: u64 = 24;
    const APPENDS: u64 = 40;
    let subscribers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            let mut subscription = store.subscribe(Position::START);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while seen.len() < usize::try_from(WRITERS * APPENDS * 2).unwrap() {
                    let event = next_within(&mut subscription).await;
                    seen.push((event.position, event.event_id));
                }
                seen
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = if writer % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for n in 0..APPENDS {
                    let batch = events(2);
                    acknowledged.extend(batch.iter().map(|event| event.event_id));
                    store
                        .append(
                            &format!("case-{writer}"),
                            ExpectedVersion::Exact(n * 2),
                            batch,
                        )
                        .await
                        .unwrap();
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = HashSet::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    let stored: Vec<(Position, Uuid)> = everything(&*a)
        .await
        .iter()
        .map(|event| (event.position, event.event_id))
        .collect();
    assert_eq!(stored.len(), acknowledged.len());
    assert!(stored.iter().all(|(_, id)| acknowledged.contains(id)));
    for subscriber in subscribers {
        let seen = subscriber.await.unwrap();
        assert_eq!(
            seen, stored,
            "a subscriber skipped, repeated or reordered an event"
        );
    }
}

/// Two handles on one store: each sees the other's appends (head, reads, a wait for a
/// position), and a stream's version check holds across them.
pub async fn two_handles_share_one_log_and_one_version_check<S: EventStore>(a: Arc<S>, b: Arc<S>) {
    assert!(a.is_shared() && b.is_shared());
    assert_eq!(a.identity(), b.identity());
    let written = a
        .append("case-1", ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    assert!(
        b.wait_for(written.position, PATIENCE).await,
        "b never saw a's append"
    );
    assert_eq!(b.last_written().await.unwrap(), written.position);
    assert_eq!(b.stream_version("case-1").await.unwrap(), 2);
    assert_eq!(b.read_stream("case-1", 1).await.unwrap().len(), 2);

    let races: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            tokio::spawn(async move {
                store
                    .append("case-1", ExpectedVersion::Exact(2), events(1))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for race in races {
        match race.await.unwrap() {
            Ok(result) => {
                won += 1;
                assert_eq!(result.version, 3);
            }
            Err(StoreError::Conflict { actual: 3, .. }) => {}
            Err(err) => panic!("{err:?}"),
        }
    }
    assert_eq!(won, 1);
    // A re-send through the other handle is answered with the original result.
    let batch = events(1);
    let first = a
        .append("case-2", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let again = b
        .append("case-2", ExpectedVersion::NoStream, batch)
        .await
        .unwrap();
    assert_eq!(first, again);
}

/// A lease has one holder at a time across handles, leases are by name, and one let go is
/// taken by the other handle.
pub async fn a_lease_has_one_holder_at_a_time<S: EventStore>(a: Arc<S>, b: Arc<S>) {
    let held = a.try_lease("jobs").await.unwrap().expect("a free lease");
    assert!(b.try_lease("jobs").await.unwrap().is_none(), "two holders");
    assert!(a.try_lease("jobs").await.unwrap().is_none(), "two holders");
    let other = b.try_lease("other").await.unwrap();
    assert!(other.is_some(), "leases are by name");

    drop(held);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let by_b = loop {
        if let Some(lease) = b.try_lease("jobs").await.unwrap() {
            break lease;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease let go was never free again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(a.try_lease("jobs").await.unwrap().is_none(), "two holders");
    drop(by_b);
}
