//! Event type names as read models keep them: the catalogue's own `&'static str`, so that
//! folding allocates nothing for them and a snapshot cannot name a type the catalogue lacks.

use followfund_contracts::catalogue;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// A type name as a field holds it. Spelt through an alias because serde's derive treats a
/// field written `&'static str` as borrowed from the input, which a snapshot read from chunks
/// cannot lend.
pub(crate) type Name = &'static str;

/// Reads a type name back from a snapshot as the catalogue's entry for it.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<&'static str, D::Error> {
    let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
    catalogue()
        .iter()
        .find(|entry| entry.name == name)
        .map(|entry| entry.name)
        .ok_or_else(|| D::Error::custom(format!("unknown event type `{name}`")))
}
