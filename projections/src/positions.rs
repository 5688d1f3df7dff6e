//! An ascending list of log positions held in about three bytes each, for the lists that name
//! every event of a journey: a national year has tens of millions of such entries, and eight
//! bytes apiece was the largest single part of the read models.

use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Positions in strictly ascending order, each kept as its distance from the one before in
/// LEB128 (seven bits a byte, the high bit saying another byte follows). How many there are is
/// not kept but counted from the bytes when asked, which is seldom: each position's last byte is
/// the one byte of it with the high bit clear. A count beside the list took eight bytes of every
/// journey, with padding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    bytes: Vec<u8>,
    last: u64,
}

const _: () = assert!(std::mem::size_of::<Positions>() == 32);

impl Positions {
    /// No positions yet, with room for `bytes` of them.
    pub(crate) fn with_capacity(bytes: usize) -> Positions {
        Positions {
            bytes: Vec::with_capacity(bytes),
            last: 0,
        }
    }

    /// Appends `position`, which must come after every position already held.
    pub(crate) fn push(&mut self, position: u64) {
        assert!(position > self.last, "positions ascend");
        crate::varint::put(&mut self.bytes, position - self.last);
        self.last = position;
    }

    /// The last byte written, for a prefetch of the list's end, where the next step goes.
    pub(crate) fn last_byte(&self) -> Option<&u8> {
        self.bytes.last()
    }

    /// Gives back the room the list grew into; it may still grow again.
    pub(crate) fn fit(&mut self) {
        crate::fit::fit(&mut self.bytes);
    }

    /// How many positions are held, counted from the bytes.
    pub fn len(&self) -> usize {
        self.bytes.iter().filter(|byte| **byte & 0x80 == 0).count()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The first position, if any.
    pub fn first(&self) -> Option<u64> {
        self.iter().next()
    }

    /// The last position, if any.
    pub fn last(&self) -> Option<u64> {
        (!self.is_empty()).then_some(self.last)
    }

    /// The gaps between the positions, as written.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The positions, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let mut bytes = self.bytes.as_slice();
        let mut position = 0u64;
        std::iter::from_fn(move || {
            position += crate::varint::take(&mut bytes)?;
            Some(position)
        })
    }

    /// Rebuilds the list from its encoded bytes, refusing any that do not decode to ascending
    /// positions: a snapshot is checked, not trusted.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Result<Positions, &'static str> {
        let mut last = 0u64;
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let gap =
                crate::varint::take(&mut rest).ok_or("a position is cut short or too long")?;
            if gap == 0 {
                return Err("positions must ascend");
            }
            last = last.checked_add(gap).ok_or("a position is beyond 2^64")?;
        }
        Ok(Positions { bytes, last })
    }
}

impl Serialize for Positions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.bytes)
    }
}

impl<'de> Deserialize<'de> for Positions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Positions, D::Error> {
        let bytes = crate::compact::byte_buf(deserializer)?;
        Positions::from_bytes(bytes).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn of(positions: &[u64]) -> Positions {
        let mut list = Positions::default();
        for position in positions {
            list.push(*position);
        }
        list
    }

    #[test]
    fn small_gaps_take_one_byte_and_large_ones_more() {
        let list = of(&[1, 2, 129, 129 + 16_384, u64::MAX]);
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            [1, 2, 129, 16_513, u64::MAX]
        );
        // 1, 1, 127: a byte each; 16,384: three bytes; the rest of 2^64: ten.
        assert_eq!(list.bytes.len(), 1 + 1 + 1 + 3 + 10);
        assert_eq!(
            (list.first(), list.last(), list.len()),
            (Some(1), Some(u64::MAX), 5)
        );
    }

    #[test]
    fn a_list_made_with_room_holds_what_one_made_without_does() {
        let mut roomy = Positions::with_capacity(64);
        for position in [7, 300, 70_000] {
            roomy.push(position);
        }
        assert!(roomy.bytes.capacity() >= 64);
        assert_eq!(roomy, of(&[7, 300, 70_000]));
    }

    #[test]
    fn an_empty_list_has_no_first_or_last() {
        let list = Positions::default();
        assert!(list.is_empty());
        assert_eq!((list.first(), list.last()), (None, None));
    }

    #[test]
    #[should_panic(expected = "positions ascend")]
    fn a_position_out_of_order_is_a_bug() {
        of(&[5, 5]);
    }

    #[test]
    fn bytes_that_do_not_ascend_or_stop_short_are_refused() {
        assert_eq!(
            Positions::from_bytes(vec![1, 0]),
            Err("positions must ascend")
        );
        assert_eq!(
            Positions::from_bytes(vec![1, 0x81]),
            Err("a position is cut short or too long")
        );
        assert!(Positions::from_bytes(vec![0xff; 11].into_iter().chain([1]).collect()).is_err());
    }

    proptest! {
        #[test]
        fn positions_read_back_as_pushed(gaps in prop::collection::vec(1u64..5_000_000, 0..200)) {
            let positions: Vec<u64> = gaps.iter().scan(0u64, |at, gap| { *at += gap; Some(*at) }).collect();
            let list = of(&positions);
            prop_assert_eq!(list.iter().collect::<Vec<_>>(), positions.clone());
            prop_assert_eq!(list.len(), positions.len());
            prop_assert_eq!(list.last(), positions.last().copied());
            let decoded = Positions::from_bytes(list.bytes.clone()).unwrap();
            prop_assert_eq!(decoded, list);
        }
    }
}
