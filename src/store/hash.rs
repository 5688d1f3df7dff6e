//! The hash chain: canonical bytes of an event and `hash = SHA-256(prev_hash || bytes)`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::event::RecordedEvent;

/// A SHA-256 digest, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The `prev_hash` of the first event.
    pub const GENESIS: Hash = Hash([0; 32]);

    /// From stored bytes; `None` unless exactly 32.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        bytes.try_into().ok().map(Hash)
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        followfund_contracts::text::parse_str(deserializer, "a hash in hex", |text| {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(text.as_bytes(), &mut bytes)
                .map_err(|_| "a hash is 64 hex digits")?;
            Ok::<_, &str>(Hash(bytes))
        })
    }
}

/// Version tag of the canonical encoding, hashed first so that a future encoding can never
/// collide with this one.
const CANONICAL_ENCODING_V1: u8 = 1;

/// The chain hash of `event` given the hash before it. Every envelope field except the hashes
/// themselves is covered, each written as fixed-width big-endian integers or length-prefixed
/// bytes, so no two different events share an encoding.
pub fn chain_hash(prev_hash: &Hash, event: &RecordedEvent) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.0);
    hasher.update([CANONICAL_ENCODING_V1]);
    hasher.update(event.position.to_be_bytes());
    hasher.update(event.event_id.as_bytes());
    put_str(&mut hasher, &event.stream);
    hasher.update(event.stream_version.to_be_bytes());
    put_str(&mut hasher, &event.event_type);
    hasher.update(event.schema_version.to_be_bytes());
    hasher.update(event.occurred_at.timestamp_micros().to_be_bytes());
    hasher.update(event.recorded_at.timestamp_micros().to_be_bytes());
    put_str(&mut hasher, &event.actor.organisation);
    put_str(&mut hasher, &event.actor.role);
    put_optional(&mut hasher, event.actor.user.as_deref().map(str::as_bytes));
    put_optional(
        &mut hasher,
        event
            .correlation_id
            .as_ref()
            .map(|id| id.as_bytes().as_slice()),
    );
    put_optional(
        &mut hasher,
        event
            .causation_id
            .as_ref()
            .map(|id| id.as_bytes().as_slice()),
    );
    put_str(&mut hasher, &event.data);
    Hash(hasher.finalize().into())
}

fn put_str(hasher: &mut Sha256, text: &str) {
    put_bytes(hasher, text.as_bytes());
}

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("fields are far below 4 GiB");
    hasher.update(len.to_be_bytes());
    hasher.update(bytes);
}

fn put_optional(hasher: &mut Sha256, bytes: Option<&[u8]>) {
    match bytes {
        None => hasher.update([0]),
        Some(bytes) => {
            hasher.update([1]);
            put_bytes(hasher, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::Actor;
    use chrono::TimeZone;

    fn sample() -> RecordedEvent {
        RecordedEvent {
            position: 1,
            event_id: uuid::Uuid::from_u128(7),
            stream: "organisation-X".into(),
            stream_version: 1,
            event_type: "organisation.registered".into(),
            schema_version: 1,
            occurred_at: chrono::Utc.timestamp_micros(1_700_000_000_000_000).unwrap(),
            recorded_at: chrono::Utc.timestamp_micros(1_700_000_000_000_001).unwrap(),
            actor: Actor::admin_cli(),
            correlation_id: None,
            causation_id: None,
            data: r#"{"a":1}"#.into(),
            prev_hash: Hash::GENESIS,
            hash: Hash::GENESIS,
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = chain_hash(&Hash::GENESIS, &sample());
        let mut changed = Vec::new();
        let mut e = sample();
        e.position = 2;
        changed.push(e);
        let mut e = sample();
        e.stream_version = 2;
        changed.push(e);
        let mut e = sample();
        e.data = r#"{"a":2}"#.into();
        changed.push(e);
        let mut e = sample();
        e.actor.user = Some(String::new());
        changed.push(e);
        let mut e = sample();
        e.correlation_id = Some(uuid::Uuid::nil());
        changed.push(e);
        let mut e = sample();
        e.recorded_at = e.occurred_at;
        changed.push(e);
        for event in changed {
            assert_ne!(chain_hash(&Hash::GENESIS, &event), base, "{event:?}");
        }
        assert_ne!(chain_hash(&Hash([1; 32]), &sample()), base);
        assert_eq!(chain_hash(&Hash::GENESIS, &sample()), base);
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        let mut a = sample();
        a.stream = "ab".into();
        a.event_type = "c".into();
        let mut b = sample();
        b.stream = "a".into();
        b.event_type = "bc".into();
        assert_ne!(
            chain_hash(&Hash::GENESIS, &a),
            chain_hash(&Hash::GENESIS, &b)
        );
    }

    #[test]
    fn hex_round_trip() {
        let hash = Hash([0xab; 32]);
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json.len(), 66);
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), hash);
        assert!(serde_json::from_str::<Hash>("\"00\"").is_err());
    }
}
