//! Event type names as read models keep them: the catalogue's own `&'static str`, or, in records
//! counted in millions, the type's one-byte place in the catalogue, so that folding allocates
//! nothing for them and a snapshot cannot name a type the catalogue lacks.

use followfund_contracts::catalogue;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// A type name as a field holds it. Spelt through an alias because serde's derive treats a
/// field written `&'static str` as borrowed from the input, which a snapshot read from chunks
/// cannot lend.
pub(crate) type Name = &'static str;

/// Reads a type name back from a snapshot as the catalogue's entry for it.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<&'static str, D::Error> {
    followfund_contracts::text::parse_str(deserializer, "an event type", |name| {
        catalogue()
            .iter()
            .find(|entry| entry.name == name)
            .map(|entry| entry.name)
            .ok_or_else(|| format!("unknown event type `{name}`"))
    })
}

/// An event type by its place in the catalogue. A snapshot holding these is only read back by
/// a build with the same catalogue: [`fingerprint`] is part of the snapshot's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct TypeId(u8);

impl TypeId {
    /// The place of `name`, which must be in the catalogue: names come from decoded events.
    /// They are the catalogue's own strings, found by address before any is compared by text.
    pub(crate) fn of(name: Name) -> TypeId {
        let catalogue = catalogue();
        let index = (catalogue
            .iter()
            .position(|entry| std::ptr::eq(entry.name, name)))
        .or_else(|| catalogue.iter().position(|entry| entry.name == name))
        .expect("an event's type is in the catalogue");
        TypeId(u8::try_from(index).expect("fewer than 256 event types"))
    }

    /// The type of `event`, found from its variant: the ledger asks this for every posting.
    pub(crate) fn of_event(event: &followfund_contracts::Event) -> TypeId {
        TypeId(u8::try_from(event.place()).expect("fewer than 256 event types"))
    }

    /// The type's name.
    pub(crate) fn name(self) -> Name {
        catalogue()[usize::from(self.0)].name
    }

    /// The type's place in the catalogue.
    pub(crate) fn place(self) -> u8 {
        self.0
    }

    /// The type at `place`, if the catalogue has one there.
    pub(crate) fn at_place(place: u8) -> Option<TypeId> {
        (usize::from(place) < catalogue().len()).then_some(TypeId(place))
    }
}

impl<'de> Deserialize<'de> for TypeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TypeId, D::Error> {
        let index = u8::deserialize(deserializer)?;
        TypeId::at_place(index).ok_or_else(|| D::Error::custom(format!("no event type at {index}")))
    }
}

/// A number that changes whenever the catalogue's names or their order change (FNV-1a over
/// them), so that a snapshot naming types by place is not read by a build that numbers them
/// otherwise.
pub(crate) fn fingerprint() -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for entry in catalogue() {
        for byte in entry.name.bytes().chain([0]) {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_place() {
        for entry in catalogue() {
            assert_eq!(TypeId::of(entry.name).name(), entry.name);
        }
        let event = followfund_contracts::Event::ReferralAccepted(
            followfund_contracts::events::ReferralAccepted {
                referral_id: uuid::Uuid::nil(),
            },
        );
        assert_eq!(TypeId::of_event(&event), TypeId::of("referral.accepted"));
        assert!(serde_json::from_str::<TypeId>("250").is_err());
        assert_eq!(fingerprint(), fingerprint());
    }
}
