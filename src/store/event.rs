//! The envelope: what the log keeps around every event, before and after it is appended.

use chrono::{DateTime, SubsecRound, Utc};
use followfund_contracts::events::Compact;
use followfund_contracts::{CatalogueError, Event, catalogue, find_nhs_number};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::hash::Hash;

/// The largest canonical payload (`data`) one event may carry.
pub const EVENT_PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// The longest stream name.
pub const STREAM_NAME_BYTES_MAX: usize = 200;
/// The longest actor field (organisation, role or user id).
pub const ACTOR_FIELD_BYTES_MAX: usize = 64;

/// Who caused an event: the organisation, the role it acted in, and optionally a pseudonymous
/// user id within that organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// ODS code or our own id of the organisation.
    pub organisation: String,
    /// The role the organisation acted in (commissioner, anchor, provider, pcn, investor,
    /// auditor, admin).
    pub role: String,
    /// A pseudonymous user id, never a name or an email address.
    #[serde(default)]
    pub user: Option<String>,
}

impl Actor {
    /// The actor the admin command line appends as.
    pub fn admin_cli() -> Actor {
        Actor {
            organisation: "FOLLOWFUND".into(),
            role: "admin".into(),
            user: None,
        }
    }

    /// The actor the service's own sweeps append as.
    pub fn sweep() -> Actor {
        Actor {
            organisation: "FOLLOWFUND".into(),
            role: "admin".into(),
            user: Some("sweep".into()),
        }
    }
}

/// What the writer believes a stream's version to be; a mismatch is a `Conflict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `actual` (0 for none) satisfies this expectation.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(version) => actual == version,
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream (0)"),
            ExpectedVersion::Exact(version) => write!(f, "{version}"),
        }
    }
}

/// Why an event was refused before it reached the log.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    /// The payload does not fit the catalogue.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// The payload is larger than the log accepts.
    #[error("the `{event_type}` payload is {bytes} bytes; the most one event may carry is {max} bytes: split it or store the bulk outside the log", max = EVENT_PAYLOAD_BYTES_MAX)]
    PayloadTooLarge {
        /// The event type.
        event_type: String,
        /// The canonical payload size.
        bytes: usize,
    },
    /// A stream name that is empty, too long, or holds characters other than letters, digits,
    /// `-`, `_`, `.` and `:`.
    #[error("stream name `{stream}` is not valid: use 1 to {max} letters, digits, `-`, `_`, `.` or `:` (for example `referral-<uuid>`)", max = STREAM_NAME_BYTES_MAX)]
    StreamName {
        /// The name given.
        stream: String,
    },
    /// An envelope field (the stream name or an actor field) holds what looks like an NHS
    /// number; the digits are not repeated here so that they reach no log.
    #[error(
        "the {field} looks like it holds an NHS number; the log holds pseudonymous ids only, so use the person's pseudonymous UUID"
    )]
    PersonalData {
        /// Which envelope field.
        field: &'static str,
    },
    /// An actor role the ledger does not know.
    #[error(
        "actor role `{role}` is not one of commissioner, anchor, provider, pcn, investor, auditor, admin"
    )]
    ActorRole {
        /// The role given.
        role: String,
    },
    /// An actor field that is empty or too long.
    #[error("actor {field} must be 1 to {max} characters", max = ACTOR_FIELD_BYTES_MAX)]
    ActorField {
        /// Which field.
        field: &'static str,
    },
}

/// An event on its way into the log: validated against the catalogue, with its payload already
/// in canonical form.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub(crate) event_id: Uuid,
    pub(crate) stream: String,
    pub(crate) event_type: &'static str,
    pub(crate) schema_version: u32,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) recorded_at: Option<DateTime<Utc>>,
    pub(crate) actor: Actor,
    pub(crate) correlation_id: Option<Uuid>,
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) data: String,
    /// The payload as a replay reads it, made here, on the caller's side of the appender.
    pub(crate) compact: Compact,
}

impl NewEvent {
    /// A new event with a fresh time-ordered id. The payload is checked against the catalogue
    /// exactly as an imported one would be, so no path into the log skips validation.
    pub fn new(
        stream: impl Into<String>,
        event: &Event,
        actor: Actor,
        occurred_at: DateTime<Utc>,
    ) -> Result<NewEvent, EventError> {
        NewEvent::from_text(
            Uuid::now_v7(),
            stream.into(),
            event.type_name(),
            event.schema_version(),
            &event.encode(),
            actor,
            occurred_at,
        )
    }

    /// An event from untyped parts (an import line, an API request): decodes the payload,
    /// refusing what the catalogue refuses, and keeps its canonical encoding.
    pub fn from_parts(
        event_id: Uuid,
        stream: String,
        event_type: &str,
        schema_version: u32,
        data: serde_json::Value,
        actor: Actor,
        occurred_at: DateTime<Utc>,
    ) -> Result<NewEvent, EventError> {
        NewEvent::checked(event_id, stream, actor, occurred_at, || {
            Event::decode(event_type, schema_version, data)
        })
    }

    /// As [`NewEvent::from_parts`], with the payload as JSON text (an import line's).
    pub fn from_text(
        event_id: Uuid,
        stream: String,
        event_type: &str,
        schema_version: u32,
        data: &str,
        actor: Actor,
        occurred_at: DateTime<Utc>,
    ) -> Result<NewEvent, EventError> {
        NewEvent::checked(event_id, stream, actor, occurred_at, || {
            Event::decode_text(event_type, schema_version, data)
        })
    }

    /// Checks the envelope, then the payload `decode` gives, and keeps its canonical encoding.
    fn checked(
        event_id: Uuid,
        stream: String,
        actor: Actor,
        occurred_at: DateTime<Utc>,
        decode: impl FnOnce() -> Result<Event, CatalogueError>,
    ) -> Result<NewEvent, EventError> {
        check_stream_name(&stream)?;
        check_actor(&actor)?;
        check_no_personal_data(&stream, &actor)?;
        let event = decode()?;
        let data = event.encode();
        if data.len() > EVENT_PAYLOAD_BYTES_MAX {
            return Err(EventError::PayloadTooLarge {
                event_type: event.type_name().to_string(),
                bytes: data.len(),
            });
        }
        let compact = event.compact();
        Ok(NewEvent {
            event_id,
            stream,
            event_type: event.type_name(),
            schema_version: event.schema_version(),
            occurred_at: to_micros_precision(occurred_at),
            recorded_at: None,
            actor,
            correlation_id: None,
            causation_id: None,
            data,
            compact,
        })
    }

    /// Use this id (the idempotency key) instead of a fresh one.
    pub fn with_id(mut self, event_id: Uuid) -> NewEvent {
        self.event_id = event_id;
        self
    }

    /// Link this event to the request it belongs to and the event that caused it.
    pub fn with_links(
        mut self,
        correlation_id: Option<Uuid>,
        causation_id: Option<Uuid>,
    ) -> NewEvent {
        self.correlation_id = correlation_id;
        self.causation_id = causation_id;
        self
    }

    /// Keep a transaction time from elsewhere (an export being re-imported) instead of the
    /// moment of append.
    pub fn with_recorded_at(mut self, recorded_at: DateTime<Utc>) -> NewEvent {
        self.recorded_at = Some(to_micros_precision(recorded_at));
        self
    }

    /// The event's id.
    pub fn event_id(&self) -> Uuid {
        self.event_id
    }

    /// The stream it will be appended to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Whether `recorded` is this same event (by content, not by position), so that appending
    /// it again may be acknowledged without writing.
    pub(crate) fn same_content(&self, recorded: &RecordedEvent) -> bool {
        self.event_id == recorded.event_id
            && self.stream == recorded.stream
            && self.event_type == recorded.event_type
            && self.schema_version == recorded.schema_version
            && self.occurred_at == recorded.occurred_at
            && self.recorded_at.is_none_or(|at| at == recorded.recorded_at)
            && self.actor == recorded.actor
            && self.correlation_id == recorded.correlation_id
            && self.causation_id == recorded.causation_id
            && self.data == recorded.data
    }
}

/// An event as the log holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Global, gap-free, commit-ordered position, from 1.
    pub position: u64,
    /// The event's id and idempotency key.
    pub event_id: Uuid,
    /// The stream, e.g. `referral-<uuid>`.
    pub stream: String,
    /// The event's version within its stream, from 1.
    pub stream_version: u64,
    /// The catalogue type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// When it happened (valid time).
    pub occurred_at: DateTime<Utc>,
    /// When the ledger learned it (transaction time).
    pub recorded_at: DateTime<Utc>,
    /// Who caused it.
    pub actor: Actor,
    /// The request this event belongs to.
    pub correlation_id: Option<Uuid>,
    /// The event that caused this one.
    pub causation_id: Option<Uuid>,
    /// The canonical JSON payload, exactly the bytes the hash covers.
    #[serde(with = "raw_json")]
    pub data: String,
    /// The hash of the event before this one (zeros for the first).
    pub prev_hash: Hash,
    /// SHA-256 over `prev_hash` and this event's canonical bytes.
    pub hash: Hash,
}

impl RecordedEvent {
    /// The typed payload.
    pub fn decode(&self) -> Result<Event, CatalogueError> {
        Event::decode_stored(&self.event_type, self.schema_version, &self.data)
    }
}

/// An event as the read models fold it: the parts of its envelope they use and its payload,
/// without ids, stream, actor, transaction time or hashes, so that a replay reads a third of the
/// columns of every row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldEvent {
    /// Its global position.
    pub position: u64,
    /// Its catalogue type name.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The JSON payload.
    pub data: String,
}

/// A stored event as a replay reads it, borrowed from the row or block it was read from: the
/// caller decodes it there, and nothing of it is copied first.
#[derive(Clone, Copy, Debug)]
pub struct FoldRow<'a> {
    /// Its global position.
    pub position: u64,
    /// Its catalogue type name.
    pub event_type: &'a str,
    /// The payload's schema version.
    pub schema_version: u32,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The payload.
    pub data: Payload<'a>,
}

/// A payload as a replay reads it.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// The canonical JSON text.
    Json(&'a str),
    /// The compact form (see [`Compact`]) of the type at `place` in the catalogue.
    MessagePack {
        /// The type's place in the catalogue.
        place: usize,
        /// The payload.
        bytes: &'a [u8],
    },
}

impl Payload<'_> {
    /// Its size as stored, in bytes.
    pub fn len_bytes(self) -> usize {
        match self {
            Payload::Json(text) => text.len(),
            Payload::MessagePack { bytes, .. } => bytes.len(),
        }
    }

    /// The typed payload of the type `type_name` at `schema_version`.
    pub fn decode(self, type_name: &str, schema_version: u32) -> Result<Event, CatalogueError> {
        match self {
            Payload::Json(text) => Event::decode_stored(type_name, schema_version, text),
            Payload::MessagePack { place, bytes } => {
                let entry = catalogue().get(place);
                let versioned = entry.is_some_and(|e| e.schema_version == schema_version);
                if !versioned {
                    return Err(Event::decode_stored(type_name, schema_version, "")
                        .expect_err("a type or version outside the catalogue"));
                }
                Event::from_message_pack(place, bytes)
            }
        }
    }
}

impl FoldRow<'_> {
    /// The row as an owned event, its payload as canonical JSON.
    pub fn to_event(self) -> Result<FoldEvent, CatalogueError> {
        let data = match self.data {
            Payload::Json(text) => text.to_owned(),
            compact => compact
                .decode(self.event_type, self.schema_version)?
                .encode(),
        };
        Ok(FoldEvent {
            position: self.position,
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            data,
        })
    }
}

impl FoldEvent {
    /// The event as a replay reads a row.
    pub fn row(&self) -> FoldRow<'_> {
        FoldRow {
            position: self.position,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            data: Payload::Json(&self.data),
        }
    }

    /// Whether it says what the stored `row` says.
    pub(crate) fn says_what(&self, row: &RecordedEvent) -> bool {
        self.position == row.position
            && self.event_type == row.event_type
            && self.schema_version == row.schema_version
            && self.occurred_at == row.occurred_at
            && self.data == row.data
    }
}

impl From<RecordedEvent> for FoldEvent {
    fn from(event: RecordedEvent) -> FoldEvent {
        FoldEvent {
            position: event.position,
            event_type: event.event_type,
            schema_version: event.schema_version,
            occurred_at: event.occurred_at,
            data: event.data,
        }
    }
}

/// Timestamps are kept to the microsecond, the finest both backends store exactly.
pub(crate) fn to_micros_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

fn check_stream_name(stream: &str) -> Result<(), EventError> {
    let valid = !stream.is_empty()
        && stream.len() <= STREAM_NAME_BYTES_MAX
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(EventError::StreamName {
            stream: stream.chars().take(80).collect(),
        })
    }
}

/// The payload is scanned by the catalogue; these are the envelope's own free-text fields.
fn check_no_personal_data(stream: &str, actor: &Actor) -> Result<(), EventError> {
    let fields = [
        ("stream name", Some(stream)),
        ("actor organisation", Some(actor.organisation.as_str())),
        ("actor user", actor.user.as_deref()),
    ];
    for (field, text) in fields {
        let holds = text
            .is_some_and(|text| find_nhs_number(&serde_json::Value::String(text.into())).is_some());
        if holds {
            return Err(EventError::PersonalData { field });
        }
    }
    Ok(())
}

fn check_actor(actor: &Actor) -> Result<(), EventError> {
    let fits = |value: &str| !value.is_empty() && value.len() <= ACTOR_FIELD_BYTES_MAX;
    if !fits(&actor.organisation) {
        return Err(EventError::ActorField {
            field: "organisation",
        });
    }
    if actor.role.parse::<followfund_contracts::Role>().is_err() {
        return Err(EventError::ActorRole {
            role: actor.role.chars().take(40).collect(),
        });
    }
    if actor.user.as_deref().is_some_and(|user| !fits(user)) {
        return Err(EventError::ActorField { field: "user" });
    }
    Ok(())
}

/// Writes the stored payload text as embedded JSON, byte for byte, and reads it back the same.
mod raw_json {
    use super::RawValue;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(data: &str, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(data).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(raw.get().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_version_admits() {
        assert!(ExpectedVersion::Any.admits(7));
        assert!(ExpectedVersion::NoStream.admits(0));
        assert!(!ExpectedVersion::NoStream.admits(1));
        assert!(ExpectedVersion::Exact(3).admits(3));
        assert!(!ExpectedVersion::Exact(3).admits(4));
    }

    #[test]
    fn nhs_numbers_in_the_envelope_are_refused() {
        let mut actor = Actor::admin_cli();
        assert_eq!(
            check_no_personal_data("referral-9434765919", &actor),
            Err(EventError::PersonalData {
                field: "stream name"
            })
        );
        actor.user = Some("943 476 5919".into());
        assert_eq!(
            check_no_personal_data("referral-1", &actor),
            Err(EventError::PersonalData {
                field: "actor user"
            })
        );
        actor.user = Some("9434765918".into());
        assert_eq!(check_no_personal_data("referral-1", &actor), Ok(()));
    }

    #[test]
    fn stream_names() {
        assert!(check_stream_name("referral-0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").is_ok());
        assert!(check_stream_name("pcn-U12345").is_ok());
        assert!(check_stream_name("").is_err());
        assert!(check_stream_name("has space").is_err());
        assert!(check_stream_name(&"x".repeat(STREAM_NAME_BYTES_MAX + 1)).is_err());
    }
}
