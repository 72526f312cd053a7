//! The rules as versioned data: the working calendar per year, office hours and the deadline
//! policy (`domain::rules`), changed at run time as events of the one stream `rules` and put
//! in force from the moment each is recorded. Version 1 is the compiled-in base of
//! `fixtures/calendar.json`, `fixtures/deadline-policy.json` and
//! `fixtures/dispatch-catalogue.json`.

use crate::app::codec::DecodeError;
use crate::app::envelope;
use crate::app::shared::{Shared, Versioned};
use crate::store::{EventStore, NewEvent, RecordedEvent, StoreError};
use chrono::{DateTime, Utc};
use domain::rules::{Rules, RulesEvent};

/// The one stream of the rules.
pub const STREAM: &str = "rules";
/// The schema of the rules events' JSON.
pub const SCHEMA_VERSION: u32 = 1;

/// The base: the compiled-in calendar, policy and dispatch catalogue, as version 1.
///
/// # Errors
/// When the fixtures do not parse or validate.
pub fn base() -> anyhow::Result<Rules> {
    let calendar: domain::calendar::CalendarData =
        serde_json::from_str(crate::server::CALENDAR_JSON)
            .map_err(|e| anyhow::anyhow!("failed to parse `fixtures/calendar.json`: {e}"))?;
    let policy: domain::calendar::DeadlinePolicy = serde_json::from_str(crate::server::POLICY_JSON)
        .map_err(|e| anyhow::anyhow!("failed to parse `fixtures/deadline-policy.json`: {e}"))?;
    let catalogue = crate::dispatch::base_catalogue_spec()?;
    Rules::new(calendar, policy, catalogue).map_err(|e| anyhow::anyhow!("{}", e.message()))
}

/// The store's type tag of `event`.
pub fn type_name(event: &RulesEvent) -> &'static str {
    match event {
        RulesEvent::YearSet { .. } => "year_set",
        RulesEvent::OfficeHoursSet { .. } => "office_hours_set",
        RulesEvent::PolicySet { .. } => "policy_set",
        RulesEvent::CatalogueSet { .. } => "catalogue_set",
    }
}

/// Encodes a rules event for the store.
pub fn encode(event: &RulesEvent, actor: &str, at: DateTime<Utc>) -> NewEvent {
    envelope::encode(event, type_name(event), SCHEMA_VERSION, actor, at)
}

/// A rules event as recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// What changed.
    pub event: RulesEvent,
    /// Who.
    pub actor: String,
    /// When: the moment it is in force from.
    pub at: DateTime<Utc>,
}

/// Decodes a stored rules event.
///
/// # Errors
/// [`DecodeError`] when the JSON matches no known shape or is newer than this build.
pub fn decode(rec: &RecordedEvent) -> Result<Recorded, DecodeError> {
    let decoded = envelope::decode(rec, SCHEMA_VERSION)?;
    Ok(Recorded {
        event: decoded.event,
        actor: decoded.actor,
        at: decoded.at,
    })
}

/// The rules with the stream's version they were folded to.
#[derive(Debug, Clone)]
pub struct RulesSnapshot {
    /// Events folded in (the stream's version).
    pub stream_version: u64,
    /// Every version of the rules.
    pub rules: Rules,
}

impl RulesSnapshot {
    /// The base with `events` folded in, each in force from when it was recorded.
    pub fn fold(base: Rules, events: &[Recorded]) -> Self {
        let mut rules = base;
        for rec in events {
            rules = domain::rules::evolve(rules, &rec.event, rec.at);
        }
        RulesSnapshot {
            stream_version: events.len() as u64,
            rules,
        }
    }
}

/// The rules every part of the service reads, replaced whole after each change.
pub type SharedRules = Shared<RulesSnapshot>;

impl Versioned for RulesSnapshot {
    fn stream_version(&self) -> u64 {
        self.stream_version
    }
}

/// The recorded rules as the read models measure handling times (办理用时): each on the
/// calendar in force when the assignment was completed, so a rebuild measures as the live
/// projection did.
pub struct InForce(pub std::sync::Arc<SharedRules>);

impl projections::Calendars for InForce {
    fn handling_time(
        &self,
        given: DateTime<Utc>,
        completed: DateTime<Utc>,
    ) -> domain::calendar::WorkingSpan {
        self.0
            .current()
            .rules
            .in_force(completed)
            .calendar()
            .working_time_between(given, completed)
    }
}

/// Only the base (tests, tools working without a store's rules).
///
/// # Errors
/// As [`base`].
pub fn shared_base() -> anyhow::Result<SharedRules> {
    Ok(Shared::new(RulesSnapshot::fold(base()?, &[])))
}

/// The recorded rules of `store` on the base.
///
/// # Errors
/// Store and decode failures; invalid fixtures.
pub async fn load(store: &dyn EventStore) -> anyhow::Result<RulesSnapshot> {
    let records = store
        .read_stream(STREAM, 1)
        .await
        .map_err(|e: StoreError| anyhow::anyhow!(e))?;
    let events = records.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    Ok(RulesSnapshot::fold(base()?, &events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_the_fixtures_as_version_one() {
        let rules = base().expect("base");
        assert_eq!(rules.current().version(), 1);
        assert!(!rules.current().calendar().known_years().is_empty());
    }

    #[test]
    fn a_recorded_event_reads_back_with_who_and_when() {
        let rules = base().expect("base");
        let event = RulesEvent::OfficeHoursSet {
            office_hours: rules.current().calendar_data().office_hours.clone(),
        };
        let at: DateTime<Utc> = "2026-12-03T02:00:00Z".parse().expect("time");
        let new = encode(&event, "admin", at);
        assert_eq!(new.event_type, "office_hours_set");
        let rec = RecordedEvent {
            position: crate::store::Position(3),
            stream: STREAM.into(),
            version: 1,
            event_id: new.event_id,
            event_type: new.event_type,
            schema_version: new.schema_version,
            data: new.data,
            metadata: new.metadata,
            recorded_at: Utc::now(),
        };
        let back = decode(&rec).expect("decode");
        assert_eq!(back.event, event);
        assert_eq!((back.actor.as_str(), back.at), ("admin", at));
    }
}
