//! Case events to and from the store's JSON envelope, with upcasting of old schema versions.

use chrono::{DateTime, Utc};
use domain::event::{Event, EventBody, SCHEMA_VERSION};
use domain::org::UnitId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{NewEvent, RecordedEvent};

/// Who and when, stored beside the event body.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    #[serde(with = "domain::time::utc")]
    at: DateTime<Utc>,
    actor: String,
    unit_id: UnitId,
    /// Fingerprint of the request, for commands sent with an idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<String>,
}

/// An event could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The JSON does not match any known shape of that event type.
    #[error("event {position} (`{event_type}` v{schema_version}) does not decode")]
    Json {
        /// Where it is.
        position: u64,
        /// Its stored type.
        event_type: String,
        /// Its stored schema version.
        schema_version: u32,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer Minqing than this one.
    #[error(
        "event {position} has schema version {schema_version}, newer than this build ({SCHEMA_VERSION})"
    )]
    TooNew {
        /// Where it is.
        position: u64,
        /// Its stored schema version.
        schema_version: u32,
    },
}

impl DecodeError {
    /// The global position of the event that does not decode.
    pub fn position(&self) -> u64 {
        match self {
            DecodeError::Json { position, .. } | DecodeError::TooNew { position, .. } => *position,
        }
    }
}

/// Encodes a domain event for the store; `request` is the fingerprint of an idempotent
/// request, kept so that a key reused for a different request can be refused.
pub fn encode(event: &Event, event_id: Uuid, request: Option<&str>) -> NewEvent {
    let meta = Meta {
        at: event.at,
        actor: event.actor.clone(),
        unit_id: event.unit_id.clone(),
        request: request.map(str::to_owned),
    };
    NewEvent {
        event_id,
        event_type: event.body.type_name().to_owned(),
        schema_version: SCHEMA_VERSION,
        // Serialising these plain data types cannot fail: no maps with non-string keys, no
        // custom serializers that error.
        data: serde_json::to_string(&event.body).unwrap_or_default(),
        metadata: serde_json::to_string(&meta).unwrap_or_default(),
    }
}

/// Decodes a stored case event, upcasting older schema versions on read (never rewriting them).
///
/// # Errors
/// [`DecodeError`] when the stored JSON matches no known shape.
pub fn decode(rec: &RecordedEvent) -> Result<Event, DecodeError> {
    super::envelope::check_schema(rec, SCHEMA_VERSION)?;
    let json_err = |source| super::envelope::json_error(rec, source);
    // Version 1 is the only version so far; an upcaster for version N goes here, turning the
    // stored JSON of N-1 into N before the typed parse.
    let body: EventBody = serde_json::from_str(&rec.data).map_err(json_err)?;
    let meta: Meta = serde_json::from_str(&rec.metadata).map_err(json_err)?;
    Ok(Event {
        at: meta.at,
        actor: meta.actor,
        unit_id: meta.unit_id,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Position;

    /// The golden log of schema-1 events must load forever: if this fails, write an upcaster.
    #[test]
    fn the_golden_event_log_still_loads() {
        let log = include_str!("../../fixtures/events/case-golden-v1.jsonl");
        let mut n = 0;
        let mut case = domain::Case::default();
        for (i, line) in log.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).expect("golden line is JSON");
            let rec = RecordedEvent {
                position: Position(i as u64 + 1),
                stream: "case-golden".into(),
                version: i as u64 + 1,
                event_id: Uuid::nil(),
                event_type: v["type"].as_str().expect("type").to_owned(),
                schema_version: v["schema_version"].as_u64().expect("schema_version") as u32,
                data: v["data"].to_string(),
                metadata: v["metadata"].to_string(),
                recorded_at: Utc::now(),
            };
            let event = decode(&rec).expect("golden event decodes");
            assert_eq!(event.body.type_name(), rec.event_type);
            case = domain::evolve(case, &event);
            n += 1;
        }
        assert!(n >= 10, "the golden log covers the flow");
        assert_eq!(case.status(), domain::Status::Archived);
    }

    #[test]
    fn an_event_from_a_newer_build_is_refused_not_misread() {
        let rec = RecordedEvent {
            position: Position(7),
            stream: "case-x".into(),
            version: 1,
            event_id: Uuid::nil(),
            event_type: "annotated".into(),
            schema_version: SCHEMA_VERSION + 1,
            data: r#"{"type":"annotated","text":"x"}"#.into(),
            metadata: r#"{"at":"2025-01-01T00:00:00Z","actor":"a","unit_id":"city"}"#.into(),
            recorded_at: Utc::now(),
        };
        assert!(matches!(decode(&rec), Err(DecodeError::TooNew { .. })));
    }
}
