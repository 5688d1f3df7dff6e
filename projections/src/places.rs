//! The index of records counted in millions: an open-addressed table of their places, probed in
//! a line from the slot a hash picks. Each slot is four bytes, the record's place and, in the
//! bits the place does not need, some of its hash's bits, so that a probe passes over most other
//! records without reading them. The table is plain enough that a batch of lookups can read
//! every slot it needs before it compares anything (see [`Places::touch`]): hashbrown's table
//! keeps where a probe starts to itself, and each lookup then met its cache misses alone.

/// A table never grows fuller than this: a miss then probes about eight slots at most on
/// average, most of them in one cache line.
const LOAD_NUMERATOR: usize = 3;
const LOAD_DENOMINATOR: usize = 4;
/// The smallest table, in bits of slot number.
const SLOT_BITS_MIN: u32 = 4;
/// Places stay below 2^31, so that a table of 2^31 slots still has a bit of hash in each.
const PLACES_MAX: usize = 1 << 31;

/// Places of records by the hash of their id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Places {
    /// Empty slots hold 0; a full one holds `tag << slot_bits | (place + 1)`.
    slots: Vec<u32>,
    /// How many places are filed.
    len: usize,
}

impl Places {
    /// How many places are filed.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The place filed under `hash` for which `is` holds, if any. With `is` always true, the
    /// place most likely the one sought, found without reading any record.
    pub(crate) fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let (slot_bits, mask) = (self.slot_bits(), self.mask());
        let tag = tag(hash, slot_bits);
        let mut at = home(hash, mask);
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            if slot >> slot_bits == tag {
                let place = (slot & mask as u32) - 1;
                if is(place) {
                    return Some(place);
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// The slot where a probe for `hash` starts, read and returned, so that a batch of lookups
    /// can read every slot first with nothing waiting on what it holds.
    pub(crate) fn touch(&self, hash: u64) -> u32 {
        if self.slots.is_empty() {
            return 0;
        }
        self.slots[home(hash, self.mask())]
    }

    /// Files `place` under `hash`, unless a place for which `is` holds is filed there already
    /// (that place is returned). `hash_of` gives the hash of any place filed, for growing.
    pub(crate) fn insert_new(
        &mut self,
        hash: u64,
        place: u32,
        is: impl Fn(u32) -> bool,
        hash_of: impl Fn(u32) -> u64,
    ) -> Result<(), u32> {
        if let Some(known) = self.find(hash, is) {
            return Err(known);
        }
        self.reserve(1, hash_of);
        self.file(hash, place);
        Ok(())
    }

    /// Files `place`, which is not filed yet, under `hash`; there must be room for it.
    pub(crate) fn file(&mut self, hash: u64, place: u32) {
        assert!((place as usize) < PLACES_MAX, "fewer than 2^31 records");
        assert!(
            (self.len + 1) * LOAD_DENOMINATOR <= self.slots.len() * LOAD_NUMERATOR,
            "room is made before filing"
        );
        let (slot_bits, mask) = (self.slot_bits(), self.mask());
        let mut at = home(hash, mask);
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = tag(hash, slot_bits) << slot_bits | (place + 1);
        self.len += 1;
    }

    /// Makes room for `more` places, filing those already filed afresh in a larger table. They
    /// are filed in the order of their old slots, which writes the new table front to back in
    /// a sweep for each doubling, without sorting them first.
    pub(crate) fn reserve(&mut self, more: usize, hash_of: impl Fn(u32) -> u64) {
        let wanted = self.len + more;
        if wanted * LOAD_DENOMINATOR <= self.slots.len() * LOAD_NUMERATOR {
            return;
        }
        let mask = self.mask() as u32;
        let old = std::mem::replace(
            self,
            Places {
                slots: vec![0; 1 << slot_bits_for(wanted)],
                len: 0,
            },
        );
        for slot in old.slots.into_iter().filter(|&slot| slot != 0) {
            let place = (slot & mask) - 1;
            self.file(hash_of(place), place);
        }
    }

    /// The table's size in bits of slot number.
    fn slot_bits(&self) -> u32 {
        self.slots.len().trailing_zeros()
    }

    /// The low bits that pick a slot.
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }
}

/// The bits of slot number a table of `count` places needs.
pub(crate) fn slot_bits_for(count: usize) -> u32 {
    let slots = (count * LOAD_DENOMINATOR).div_ceil(LOAD_NUMERATOR);
    let slot_bits = slots
        .next_power_of_two()
        .trailing_zeros()
        .max(SLOT_BITS_MIN);
    assert!(slot_bits <= 31, "fewer than 2^31 records");
    slot_bits
}

/// Orders hashes (with their places) by the slot a probe for each starts at in a table of
/// `slot_bits`, then by hash, so that filing them writes the table front to back and hashes
/// alike lie side by side. One key does for both: the hash turned so that the slot's bits come
/// first. Sorting 1.5 million pairs (a national year's prescriptions) by the pair of slot and
/// hash took 50-56 ms; by this key 36-38 ms; dealt into buckets by the slot's first bits first,
/// 87-103 ms.
pub(crate) fn order_by_slot(hashed: &mut [(u64, u32)], slot_bits: u32) {
    hashed.sort_unstable_by_key(|&(hash, _)| hash.rotate_right(slot_bits));
}

/// Where a probe for `hash` starts: its low bits.
fn home(hash: u64, mask: usize) -> usize {
    hash as usize & mask
}

/// The hash's bits a slot keeps beside the place: its top bits, as many as the place leaves.
fn tag(hash: u64, slot_bits: u32) -> u32 {
    ((hash >> 32) as u32).checked_shr(slot_bits).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn hashes_ordered_by_one_key_end_as_if_sorted_by_slot_and_hash(
            mut hashed in proptest::collection::vec((0..u64::MAX, 0..u32::MAX), 0..5_000),
            slot_bits in 0u32..20,
        ) {
            // Every hash twice over at times, so that alike ones must end side by side.
            let again: Vec<(u64, u32)> = hashed.iter().step_by(7).copied().collect();
            hashed.extend(again);
            let slots_mask = (1u64 << slot_bits) - 1;
            let mut whole = hashed.clone();
            whole.sort_unstable_by_key(|&(hash, _)| (hash & slots_mask, hash));
            order_by_slot(&mut hashed, slot_bits);
            let keys = |pairs: &[(u64, u32)]| -> Vec<(u64, u64)> {
                pairs.iter().map(|&(hash, _)| (hash & slots_mask, hash)).collect()
            };
            proptest::prop_assert_eq!(keys(&hashed), keys(&whole));
            hashed.sort_unstable();
            whole.sort_unstable();
            proptest::prop_assert_eq!(hashed, whole, "the same pairs, moved");
        }
    }

    /// A hash that gives ids only `spread` values between them (times three).
    fn weak_hash(id: u32, spread: u32) -> u64 {
        u64::from(id % spread).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(id % 3)
    }

    /// Ids filed as places in a list, under a hash that `spread` decides: every id its own hash,
    /// or only a few hashes, so that probes run long and tags collide.
    fn filed(ids: &[u32], spread: u32) -> (Places, Vec<u32>, Vec<Option<u32>>) {
        let hash = |id: u32| weak_hash(id, spread);
        let (mut places, mut list, mut refused) = (Places::default(), Vec::new(), Vec::new());
        for &id in ids {
            let place = list.len() as u32;
            let listed = list.clone();
            let filed = places.insert_new(
                hash(id),
                place,
                |at| listed[at as usize] == id,
                |at| hash(listed[at as usize]),
            );
            match filed {
                Ok(()) => {
                    list.push(id);
                    refused.push(None);
                }
                Err(known) => refused.push(Some(known)),
            }
        }
        (places, list, refused)
    }

    proptest::proptest! {
        #[test]
        fn places_are_found_as_a_list_finds_them(
            ids in proptest::collection::vec(0u32..3_000, 0..2_000),
            spread in proptest::sample::select(vec![1u32, 7, 1_000_000]),
        ) {
            let hash = |id: u32| weak_hash(id, spread);
            let (places, list, refused) = filed(&ids, spread);
            proptest::prop_assert_eq!(places.len(), list.len());
            for (&id, refused) in ids.iter().zip(refused) {
                let first = list.iter().position(|&listed| listed == id).map(|at| at as u32);
                if let Some(known) = refused {
                    proptest::prop_assert_eq!(Some(known), first, "refused for the id filed first");
                }
            }
            for id in 0..3_000u32 {
                let expected = list.iter().position(|&listed| listed == id).map(|at| at as u32);
                let found = places.find(hash(id), |at| list[at as usize] == id);
                proptest::prop_assert_eq!(found, expected, "id {}", id);
                if expected.is_some() {
                    let likely = places.find(hash(id), |_| true);
                    proptest::prop_assert!(likely.is_some(), "a filed id has a likely place");
                }
            }
        }
    }

    #[test]
    fn a_table_grows_to_keep_a_quarter_of_its_slots_free() {
        let (places, list, _) = filed(&(0..1_000).collect::<Vec<u32>>(), 1_000_000);
        assert_eq!(places.len(), 1_000);
        assert_eq!(list.len(), 1_000);
        // 1,000 places need 1,334 slots at three quarters full: the next power of two.
        assert_eq!(places.slots.len(), 2_048);
        assert_eq!(slot_bits_for(1_000), 11);
        assert_eq!(slot_bits_for(768), 10, "exactly three quarters of 1,024");
        assert_eq!(slot_bits_for(769), 11);
        assert_eq!(slot_bits_for(0), SLOT_BITS_MIN);
        assert_eq!(Places::default().find(7, |_| true), None);
    }

    #[test]
    fn a_slot_keeps_the_top_bits_of_the_hash_the_place_leaves() {
        assert_eq!(tag(u64::MAX, 21), (1 << 11) - 1);
        assert_eq!(tag(1 << 63, 4), 1 << 27);
        assert_eq!(tag(u64::MAX >> 1, 31), 0);
        assert_eq!(home(0x1234_5678, 0xff), 0x78);
    }
}
