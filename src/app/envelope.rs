//! The store's envelope of the small aggregates (the directory, the rules): the event's JSON
//! as `data`, who and when as `metadata`, a schema version checked on read. Cases keep their
//! own codec (`super::codec`: the acting unit and the request fingerprint in the metadata,
//! upcasting), sharing the schema check and the error.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::DecodeError;
use crate::store::{NewEvent, RecordedEvent};

/// Who and when, beside the event.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    #[serde(with = "domain::time::utc")]
    at: DateTime<Utc>,
    actor: String,
}

/// Encodes `event` of type `event_type` by `actor` at `at`.
pub fn encode<E: Serialize>(
    event: &E,
    event_type: &str,
    schema_version: u32,
    actor: &str,
    at: DateTime<Utc>,
) -> NewEvent {
    let meta = Meta {
        at,
        actor: actor.to_owned(),
    };
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned(),
        schema_version,
        // Plain data with string keys: serialising cannot fail.
        data: serde_json::to_string(event).unwrap_or_default(),
        metadata: serde_json::to_string(&meta).unwrap_or_default(),
    }
}

/// `new` with the id the pipeline gives it and, for a command sent with an idempotency key,
/// the request's fingerprint in its metadata (`request`, as every codec keeps it).
pub fn identified(mut new: NewEvent, event_id: Uuid, request: Option<&str>) -> NewEvent {
    new.event_id = event_id;
    if let Some(request) = request
        && let Ok(mut meta) = serde_json::from_str::<serde_json::Value>(&new.metadata)
    {
        meta["request"] = serde_json::Value::from(request);
        new.metadata = meta.to_string();
    }
    new
}

/// A stored event read back with who and when; also an event decided by an aggregate of this
/// envelope, with who and when it is recorded as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<E> {
    /// The event.
    pub event: E,
    /// Who recorded it.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Refuses an event written by a build newer than `schema_version`.
///
/// # Errors
/// [`DecodeError::TooNew`].
pub fn check_schema(rec: &RecordedEvent, schema_version: u32) -> Result<(), DecodeError> {
    if rec.schema_version > schema_version {
        return Err(DecodeError::TooNew {
            position: rec.position.0,
            schema_version: rec.schema_version,
        });
    }
    Ok(())
}

/// The error of `rec`'s JSON not matching its type.
pub fn json_error(rec: &RecordedEvent, source: serde_json::Error) -> DecodeError {
    DecodeError::Json {
        position: rec.position.0,
        event_type: rec.event_type.clone(),
        schema_version: rec.schema_version,
        source,
    }
}

/// Decodes a stored event of this envelope.
///
/// # Errors
/// [`DecodeError`] when the JSON matches no known shape or is newer than `schema_version`.
pub fn decode<E: DeserializeOwned>(
    rec: &RecordedEvent,
    schema_version: u32,
) -> Result<Decoded<E>, DecodeError> {
    check_schema(rec, schema_version)?;
    let event: E = serde_json::from_str(&rec.data).map_err(|e| json_error(rec, e))?;
    let meta: Meta = serde_json::from_str(&rec.metadata).map_err(|e| json_error(rec, e))?;
    Ok(Decoded {
        event,
        actor: meta.actor,
        at: meta.at,
    })
}
