//! Short lists of values from a small enum (a referral's reasons, a person's long-term
//! conditions, a plan's needs), kept inside the record that holds them: a national year has
//! millions of such lists of one to three values, and as vectors each took 24 bytes and an
//! allocation of its own.

use std::convert::Infallible;
use std::fmt;
use std::ops::Deref;

use serde::{Deserializer, Serializer};

use crate::compact::{self, Listed};

/// Values held inline: with a one-byte enum, the count and the values fill sixteen bytes.
const INLINE: usize = 14;

/// Values in the order given, inline when there are at most [`INLINE`] of them. Nothing limits
/// how many a referral may list, so a longer list is kept on the heap.
#[derive(Clone)]
pub struct Few<T: Copy + 'static>(Repr<T>);

#[derive(Clone)]
enum Repr<T> {
    /// The first `count` values are the list; the rest fill the array.
    Inline { count: u8, values: [T; INLINE] },
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer keeps the list at sixteen bytes"
    )]
    Spilled(Box<Vec<T>>),
}

impl<T: Copy + 'static> Few<T> {
    /// The list of `values`.
    pub(crate) fn from_slice(values: &[T]) -> Few<T>
    where
        T: Listed,
    {
        let each = values.iter().map(|value| Ok::<T, Infallible>(*value));
        let Ok(few) = Few::collect(values.len(), each);
        few
    }

    /// The list of `count` values read from `values`; the first that fails fails the list.
    fn collect<E>(count: usize, values: impl Iterator<Item = Result<T, E>>) -> Result<Few<T>, E>
    where
        T: Listed,
    {
        if count > INLINE {
            let values = values.collect::<Result<Vec<T>, E>>()?;
            return Ok(Few(Repr::Spilled(Box::new(values))));
        }
        let mut inline = [T::ALL[0]; INLINE];
        let mut taken = 0;
        for (slot, value) in inline.iter_mut().zip(values) {
            *slot = value?;
            taken += 1;
        }
        assert_eq!(taken, count, "as many values as counted");
        let count = u8::try_from(count).expect("at most INLINE values");
        Ok(Few(Repr::Inline {
            count,
            values: inline,
        }))
    }
}

/// The count, then each value's place.
impl<T: Listed> compact::Packed for Few<T> {
    /// The places written as [`compact::put_bytes`] writes bytes, without gathering them first.
    fn pack(&self, bytes: &mut Vec<u8>) {
        crate::varint::put(bytes, self.len() as u64);
        bytes.extend(self.iter().map(|value| compact::place(*value)));
    }

    fn unpack(bytes: &mut &[u8]) -> Option<Few<T>> {
        let places = compact::take_bytes(bytes)?;
        let count = places.len();
        let values = places
            .iter()
            .map(|place| compact::at_place(*place).ok_or(()));
        Few::collect(count, values).ok()
    }
}

impl<T: Copy + 'static> Deref for Few<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.0 {
            Repr::Inline { count, values } => &values[..usize::from(*count)],
            Repr::Spilled(values) => values,
        }
    }
}

impl<T: Copy + PartialEq + 'static> PartialEq for Few<T> {
    fn eq(&self, other: &Few<T>) -> bool {
        **self == **other
    }
}

impl<T: Copy + Eq + 'static> Eq for Few<T> {}

impl<T: Copy + fmt::Debug + 'static> fmt::Debug for Few<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The `with` form of a [`Few`]: one byte string of the values' places, as for a list.
pub(crate) mod places {
    use super::*;

    pub(crate) fn serialize<T: Listed, S: Serializer>(
        values: &Few<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let places: Vec<u8> = values.iter().map(|value| compact::place(*value)).collect();
        serializer.serialize_bytes(&places)
    }

    pub(crate) fn deserialize<'de, T: Listed, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Few<T>, D::Error> {
        compact::with_bytes(deserializer, |places| {
            let values = places
                .iter()
                .map(|place| compact::at_place(*place).ok_or(*place));
            let few = Few::collect(places.len(), values);
            few.map_err(|place| format!("no value is listed at {place}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use followfund_contracts::events::{LongTermCondition, ReferralReason};
    use serde::{Deserialize, Serialize};

    use super::*;

    const _: () = assert!(std::mem::size_of::<Few<ReferralReason>>() == 16);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Held(#[serde(with = "places")] Few<LongTermCondition>);

    #[test]
    fn lists_short_and_long_keep_their_values_in_order() {
        let all = LongTermCondition::ALL;
        let long: Vec<LongTermCondition> = all.iter().chain(all).copied().collect();
        assert!(long.len() > INLINE, "a list longer than is kept inline");
        let lists = [Vec::new(), vec![all[3], all[0], all[3]], long];
        for list in lists {
            let few = Few::from_slice(&list);
            assert_eq!(*few, *list);
            let bytes = rmp_serde::to_vec(&Held(few.clone())).unwrap();
            assert_eq!(
                rmp_serde::from_slice::<Held>(&bytes).unwrap(),
                Held(few.clone())
            );
            let text = serde_json::to_string(&Held(few.clone())).unwrap();
            assert_eq!(serde_json::from_str::<Held>(&text).unwrap(), Held(few));
        }
    }

    #[test]
    fn a_place_with_no_value_is_refused() {
        let mut bytes =
            rmp_serde::to_vec(&Held(Few::from_slice(&[LongTermCondition::Copd]))).unwrap();
        *bytes.last_mut().unwrap() = 200;
        let error = rmp_serde::from_slice::<Held>(&bytes)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no value is listed at 200"), "{error}");
    }
}
