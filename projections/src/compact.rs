//! Serde forms for fields of records kept by the million, so that a snapshot holds numbers
//! where the derived forms hold text to parse back: dates as day numbers, instants as
//! microseconds, small enums as their place in a list of every value.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// A date as its day number counted from 1 January of year 1 (day 1).
pub(crate) mod day {
    use chrono::{Datelike, NaiveDate};

    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        date: &NaiveDate,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(date.num_days_from_ce())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<NaiveDate, D::Error> {
        let days = i32::deserialize(deserializer)?;
        NaiveDate::from_num_days_from_ce_opt(days)
            .ok_or_else(|| D::Error::custom(format!("day number {days} is not a date")))
    }
}

/// An instant as whole microseconds since the Unix epoch: the log's own precision.
pub(crate) use chrono::serde::ts_microseconds as instant;
/// An optional instant as whole microseconds since the Unix epoch.
pub(crate) use chrono::serde::ts_microseconds_option as instant_option;

/// A value of an enum with a handful of values, stored as its place in `T::ALL`.
pub(crate) trait Listed: Copy + PartialEq + 'static {
    /// Every value, in a fixed order: appending keeps old snapshots readable, reordering does not
    /// (bump the read models' version).
    const ALL: &'static [Self];
}

/// The place of `value` in `T::ALL`.
pub(crate) fn place<T: Listed>(value: T) -> u8 {
    let place = T::ALL.iter().position(|listed| *listed == value);
    let place = place.expect("ALL lists every value");
    u8::try_from(place).expect("a handful of values")
}

/// The value at `place` in `T::ALL`, if there is one.
pub(crate) fn at_place<T: Listed>(place: u8) -> Option<T> {
    T::ALL.get(usize::from(place)).copied()
}

/// The `with` form of a [`Listed`] enum.
pub(crate) mod listed {
    use super::*;

    pub(crate) fn serialize<T: Listed, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(place(*value))
    }

    pub(crate) fn deserialize<'de, T: Listed, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let place = u8::deserialize(deserializer)?;
        at_place(place).ok_or_else(|| D::Error::custom(format!("no value is listed at {place}")))
    }
}

/// Reads bytes written with `serialize_bytes`, or, from a self-describing form such as JSON, as
/// a list of numbers: for the packed lists that save themselves as their bytes.
pub(crate) fn byte_buf<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Bytes;
    impl<'de> serde::de::Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut bytes = Vec::new();
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(bytes)
        }
    }
    deserializer.deserialize_bytes(Bytes)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate, Utc};
    use followfund_contracts::Money;
    use serde::{Deserialize, Serialize};

    use super::Listed;
    use crate::{Rule, SessionState};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Fields {
        #[serde(with = "super::day")]
        on: NaiveDate,
        #[serde(with = "super::instant")]
        at: DateTime<Utc>,
        #[serde(with = "super::listed")]
        rule: Rule,
        #[serde(with = "super::listed")]
        state: SessionState,
        #[serde(with = "followfund_contracts::money::exact_bytes")]
        amount: Money,
    }

    #[test]
    fn each_form_reads_back_what_it_wrote() {
        for (rule, state) in Rule::ALL.iter().zip(SessionState::ALL.iter().cycle()) {
            let fields = Fields {
                on: NaiveDate::from_ymd_opt(2023, 3, 31).unwrap(),
                at: DateTime::from_timestamp_micros(1_680_000_000_123_456).unwrap(),
                rule: *rule,
                state: *state,
                amount: "-412.505".parse().unwrap(),
            };
            let bytes = rmp_serde::to_vec(&fields).unwrap();
            let back = rmp_serde::from_slice::<Fields>(&bytes).unwrap();
            assert_eq!(back, fields);
            assert_eq!(
                back.amount.as_decimal().to_string(),
                "-412.505",
                "the scale is kept"
            );
        }
    }

    #[test]
    fn a_place_past_the_list_is_refused() {
        let amount = Bin(Money::zero().as_decimal().serialize().to_vec());
        let bytes = rmp_serde::to_vec(&(739_000_i32, 0_i64, 200_u8, 0_u8, amount)).unwrap();
        let refused = rmp_serde::from_slice::<Fields>(&bytes).unwrap_err();
        assert!(
            refused.to_string().contains("no value is listed at 200"),
            "{refused}"
        );
    }

    /// Bytes that serialise as MessagePack's bin, as `exact_bytes` writes an amount.
    struct Bin(Vec<u8>);

    impl Serialize for Bin {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(&self.0)
        }
    }
}
