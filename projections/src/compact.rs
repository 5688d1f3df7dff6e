//! Serde forms for fields of records kept by the million, so that a snapshot holds numbers
//! where the derived forms hold text to parse back: dates as day numbers, instants as
//! microseconds, small enums as their place in a list of every value, ids as two numbers.

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
        date(i32::deserialize(deserializer)?)
    }

    /// The date of day number `days`.
    pub(super) fn date<E: serde::de::Error>(days: i32) -> Result<NaiveDate, E> {
        NaiveDate::from_num_days_from_ce_opt(days)
            .ok_or_else(|| E::custom(format!("day number {days} is not a date")))
    }
}

/// An optional date with a position, the date as its [`day`] number: as text, each took a
/// date parser's run to read back.
pub(crate) mod day_and_position_option {
    use chrono::{Datelike, NaiveDate};
    use serde::Serialize;

    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<(NaiveDate, u64)>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let numbered = value.map(|(on, position)| (on.num_days_from_ce(), position));
        numbered.serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<(NaiveDate, u64)>, D::Error> {
        match Option::<(i32, u64)>::deserialize(deserializer)? {
            Some((days, position)) => Ok(Some((day::date(days)?, position))),
            None => Ok(None),
        }
    }
}

/// An id as its two 64-bit halves, high first. MessagePack holds 16 bytes as a byte string,
/// which its decoder reads through a growing buffer; two numbers it reads in place, and a
/// national state holds some forty million ids.
#[derive(Clone, Copy, serde::Serialize, Deserialize)]
pub(crate) struct Halves(u64, u64);

impl From<uuid::Uuid> for Halves {
    fn from(id: uuid::Uuid) -> Halves {
        let (high, low) = id.as_u64_pair();
        Halves(high, low)
    }
}

impl From<Halves> for uuid::Uuid {
    fn from(Halves(high, low): Halves) -> uuid::Uuid {
        uuid::Uuid::from_u64_pair(high, low)
    }
}

/// An id as its [`Halves`].
pub(crate) mod id {
    use serde::Serialize;
    use uuid::Uuid;

    use super::*;

    pub(crate) fn serialize<S: Serializer>(id: &Uuid, serializer: S) -> Result<S::Ok, S::Error> {
        Halves::from(*id).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Uuid, D::Error> {
        Halves::deserialize(deserializer).map(Uuid::from)
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

/// A record kept by the ten million in lists of a dozen (a prescription's sessions, a funding's
/// charged sessions), which a snapshot holds as one byte string a list. Field by field, the
/// decoder took a marker and a call for every number of every record, and those lists were
/// most of a national restart's work.
pub(crate) trait Packed: Sized {
    /// Appends the record's bytes.
    fn pack(&self, bytes: &mut Vec<u8>);
    /// Reads a record from the start of `bytes` and moves past it: `None` when the bytes end
    /// inside it or do not make one.
    fn unpack(bytes: &mut &[u8]) -> Option<Self>;
}

/// The first of `bytes`, taken.
pub(crate) fn take_byte(bytes: &mut &[u8]) -> Option<u8> {
    let (&byte, rest) = bytes.split_first()?;
    *bytes = rest;
    Some(byte)
}

/// An id's sixteen bytes, taken from the front of `bytes`.
pub(crate) fn take_id(bytes: &mut &[u8]) -> Option<uuid::Uuid> {
    let (id, rest) = bytes.split_first_chunk::<16>()?;
    *bytes = rest;
    Some(uuid::Uuid::from_bytes(*id))
}

/// `written`, behind its length.
pub(crate) fn put_bytes(bytes: &mut Vec<u8>, written: &[u8]) {
    crate::varint::put(bytes, written.len() as u64);
    bytes.extend_from_slice(written);
}

/// What [`put_bytes`] wrote, taken from the front of `bytes`.
pub(crate) fn take_bytes<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let length = usize::try_from(crate::varint::take(bytes)?).ok()?;
    let (taken, rest) = bytes.split_at_checked(length)?;
    *bytes = rest;
    Some(taken)
}

/// An optional number, as its index plus one or zero for none.
pub(crate) fn put_number(bytes: &mut Vec<u8>, number: Option<crate::numbered::Number>) {
    crate::varint::put(
        bytes,
        number.map_or(0, |number| u64::from(number.index()) + 1),
    );
}

/// What [`put_number`] wrote: none when the bytes do not hold a number, `Some(None)` for none.
pub(crate) fn take_number(bytes: &mut &[u8]) -> Option<Option<crate::numbered::Number>> {
    match u32::try_from(crate::varint::take(bytes)?).ok()? {
        0 => Some(None),
        number => crate::numbered::Number::at_index(number - 1).map(Some),
    }
}

/// The `with` form of a list of [`Packed`] records: the count, then each record's bytes.
pub(crate) mod packed {
    use super::*;
    use crate::varint;

    pub(crate) fn serialize<T: Packed, S: Serializer>(
        records: &[T],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(1 + records.len() * 24);
        pack_all(records, &mut bytes);
        serializer.serialize_bytes(&bytes)
    }

    pub(crate) fn deserialize<'de, T: Packed, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        with_bytes(deserializer, |mut bytes| {
            let count = count(&mut bytes)?;
            let mut records = Vec::with_capacity(count);
            unpack_each(bytes, count, |record| records.push(record))?;
            Ok(records)
        })
    }

    /// Appends the count of `records`, then each record's bytes.
    pub(crate) fn pack_all<T: Packed>(records: &[T], bytes: &mut Vec<u8>) {
        varint::put(bytes, records.len() as u64);
        records.iter().for_each(|record| record.pack(bytes));
    }

    /// Takes the count [`pack_all`] wrote first from the front of `bytes`.
    pub(crate) fn count(bytes: &mut &[u8]) -> Result<usize, String> {
        let count = varint::take(bytes).ok_or("no count of records")?;
        // Every record takes at least a byte: a larger count is not to be allocated for.
        usize::try_from(count)
            .ok()
            .filter(|count| *count <= bytes.len())
            .ok_or_else(|| format!("{count} records cannot fit in {} bytes", bytes.len()))
    }

    /// A list [`pack_all`] wrote, taken from the front of `bytes`, which may hold more after it.
    pub(crate) fn take_list<T: Packed>(bytes: &mut &[u8]) -> Option<Vec<T>> {
        let count = count(bytes).ok()?;
        let mut list = Vec::with_capacity(count);
        for _ in 0..count {
            list.push(T::unpack(bytes)?);
        }
        Some(list)
    }

    /// Reads the `count` records that fill `bytes`, handing each to `each`.
    pub(crate) fn unpack_each<T: Packed>(
        mut bytes: &[u8],
        count: usize,
        mut each: impl FnMut(T),
    ) -> Result<(), String> {
        for at in 0..count {
            let record = T::unpack(&mut bytes).ok_or_else(|| {
                format!("packed record {at} of {count} is cut short or malformed")
            })?;
            each(record);
        }
        match bytes.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "{} bytes follow the last packed record",
                bytes.len()
            )),
        }
    }
}

/// Reads bytes written with `serialize_bytes`, or, from a self-describing form such as JSON, as
/// a list of numbers: for the packed lists that save themselves as their bytes.
pub(crate) fn byte_buf<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    with_bytes(deserializer, |bytes| Ok(bytes.to_vec()))
}

/// Reads bytes as [`byte_buf`] does and hands them to `parse` where they lie, whose refusal
/// becomes the decoder's error.
pub(crate) fn with_bytes<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct Parse<F>(F);
    impl<'de, T, F: FnOnce(&[u8]) -> Result<T, String>> serde::de::Visitor<'de> for Parse<F> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<T, E> {
            (self.0)(bytes).map_err(E::custom)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            let mut bytes = Vec::new();
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            (self.0)(&bytes).map_err(A::Error::custom)
        }
    }
    deserializer.deserialize_bytes(Parse(parse))
}

#[cfg(test)]
mod tests {

    use chrono::{DateTime, NaiveDate, Utc};
    use followfund_contracts::Money;
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

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
        #[serde(with = "super::id")]
        id: Uuid,
        #[serde(with = "super::day_and_position_option")]
        assessed: Option<(NaiveDate, u64)>,
        #[serde(with = "super::day_and_position_option")]
        not_assessed: Option<(NaiveDate, u64)>,
    }

    #[test]
    fn each_form_reads_back_what_it_wrote() {
        let id = Uuid::from_u128(0x0193_5f2a_7c1e_7b3d_9a4f_12c8_e6b0_d517);
        for (rule, state) in Rule::ALL.iter().zip(SessionState::ALL.iter().cycle()) {
            let fields = Fields {
                on: NaiveDate::from_ymd_opt(2023, 3, 31).unwrap(),
                at: DateTime::from_timestamp_micros(1_680_000_000_123_456).unwrap(),
                rule: *rule,
                state: *state,
                amount: "-412.505".parse().unwrap(),
                id,
                assessed: Some((NaiveDate::from_ymd_opt(2022, 5, 3).unwrap(), 41)),
                not_assessed: None,
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
        let no_id = (0_u64, 0_u64);
        let fields = (739_000_i32, 0_i64, 200_u8, 0_u8, amount, no_id);
        let bytes = rmp_serde::to_vec(&fields).unwrap();
        let refused = rmp_serde::from_slice::<Fields>(&bytes).unwrap_err();
        assert!(
            refused.to_string().contains("no value is listed at 200"),
            "{refused}"
        );
    }

    #[test]
    fn a_day_number_past_the_dates_is_refused() {
        let bytes = rmp_serde::to_vec(&Some((i32::MAX, 7_u64))).unwrap();
        let mut decoder = rmp_serde::Deserializer::from_read_ref(&bytes);
        let refused = super::day_and_position_option::deserialize(&mut decoder).unwrap_err();
        assert!(refused.to_string().contains("is not a date"), "{refused}");
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sessions(#[serde(with = "super::packed")] Vec<crate::SessionRecord>);

    fn sessions(count: u128) -> Sessions {
        let states = SessionState::ALL.iter().cycle();
        let records = (0..count)
            .zip(states)
            .map(|(n, state)| crate::SessionRecord {
                session_id: Uuid::from_u128(u128::MAX - n),
                state: *state,
            });
        Sessions(records.collect())
    }

    #[test]
    fn packed_records_read_back_in_order_through_either_form() {
        for count in [0, 1, 13] {
            let written = sessions(count);
            let bytes = rmp_serde::to_vec(&written).unwrap();
            assert_eq!(rmp_serde::from_slice::<Sessions>(&bytes).unwrap(), written);
            let text = serde_json::to_string(&written).unwrap();
            assert_eq!(serde_json::from_str::<Sessions>(&text).unwrap(), written);
        }
    }

    #[test]
    fn packed_records_cut_short_padded_or_miscounted_are_refused() {
        // A one-field struct is written as its field: here, one bin.
        let packed = |bytes: Vec<u8>| rmp_serde::to_vec(&Bin(bytes)).unwrap();
        let written = rmp_serde::to_vec(&sessions(2)).unwrap();
        let whole = rmp_serde::from_slice::<Bytes>(&written).unwrap().0;
        assert_eq!(
            whole.len(),
            1 + 2 * 17,
            "a count, then 16 id bytes and a state a record"
        );
        let mut bad_state = whole.clone();
        bad_state[17] = 200;
        let cases = [
            (
                whole[..whole.len() - 1].to_vec(),
                "record 1 of 2 is cut short",
            ),
            ([whole.clone(), vec![0]].concat(), "1 bytes follow the last"),
            (
                [vec![100], whole[1..].to_vec()].concat(),
                "100 records cannot fit in 34 bytes",
            ),
            (bad_state, "record 0 of 2 is cut short or malformed"),
            (Vec::new(), "no count of records"),
        ];
        for (bytes, reason) in cases {
            let refused = rmp_serde::from_slice::<Sessions>(&packed(bytes)).unwrap_err();
            assert!(
                refused.to_string().contains(reason),
                "{refused} lacks {reason}"
            );
        }
    }

    /// A MessagePack bin read back as its bytes.
    struct Bytes(Vec<u8>);

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
            super::byte_buf(deserializer).map(Bytes)
        }
    }

    /// Bytes that serialise as MessagePack's bin, as `exact_bytes` writes an amount.
    struct Bin(Vec<u8>);

    impl Serialize for Bin {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(&self.0)
        }
    }
}
