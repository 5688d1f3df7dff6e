//! Records counted in millions (journeys, prescriptions, fundings), kept densely in the order
//! they were first folded and found by id through a hash index. In a B-tree map the records sat
//! inside half-filled nodes and every fact paid for a walk down the tree; here a record takes its
//! own size, and finding one is a hash and a probe.

use std::collections::HashMap;

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::compact::Halves;

/// Records stored this many to a chunk, so that growing never copies more than one chunk and
/// never leaves more than one chunk's worth of room unused.
const CHUNK_RECORDS: usize = 4096;

/// Hashes ids with a seed drawn for each process: ids come from callers, and a fixed seed would
/// let someone choose ids that collide.
type Index = HashMap<Uuid, u32, foldhash::fast::RandomState>;

/// Records by id, in the order first inserted.
#[derive(Clone, Debug)]
pub(crate) struct Records<T> {
    ids: Vec<Uuid>,
    chunks: Vec<Vec<T>>,
    index: Index,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Records {
            ids: Vec::new(),
            chunks: Vec::new(),
            index: Index::default(),
        }
    }
}

impl<T> Records<T> {
    /// How many records there are.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether `id` has a record.
    pub(crate) fn contains(&self, id: &Uuid) -> bool {
        self.index.contains_key(id)
    }

    /// The record of `id`.
    pub(crate) fn get(&self, id: &Uuid) -> Option<&T> {
        let at = *self.index.get(id)?;
        Some(self.at(at))
    }

    /// The record of `id`, to change.
    pub(crate) fn get_mut(&mut self, id: &Uuid) -> Option<&mut T> {
        let at = *self.index.get(id)?;
        Some(self.at_mut(at))
    }

    /// The place of `id`'s record in insertion order.
    pub(crate) fn place(&self, id: &Uuid) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The record at place `at`.
    pub(crate) fn at(&self, at: u32) -> &T {
        let at = at as usize;
        &self.chunks[at / CHUNK_RECORDS][at % CHUNK_RECORDS]
    }

    /// The record at place `at`, to change.
    pub(crate) fn at_mut(&mut self, at: u32) -> &mut T {
        let at = at as usize;
        &mut self.chunks[at / CHUNK_RECORDS][at % CHUNK_RECORDS]
    }

    /// Adds the record of a new id; its place is the number of records before it.
    pub(crate) fn insert(&mut self, id: Uuid, record: T) -> u32 {
        let inserted = self.insert_new(id, record);
        inserted.expect("a record is inserted once")
    }

    /// Adds the record of `id` unless it has one already (then `None`): one probe of the
    /// index, where asking first and inserting after took two, and a snapshot's load asks for
    /// every record.
    fn insert_new(&mut self, id: Uuid, record: T) -> Option<u32> {
        let at = u32::try_from(self.ids.len()).expect("fewer than 2^32 records");
        match self.index.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => return None,
            std::collections::hash_map::Entry::Vacant(vacant) => vacant.insert(at),
        };
        if self
            .chunks
            .last()
            .is_none_or(|chunk| chunk.len() == CHUNK_RECORDS)
        {
            self.chunks.push(Vec::with_capacity(CHUNK_RECORDS));
        }
        self.chunks.last_mut().expect("pushed above").push(record);
        self.ids.push(id);
        debug_assert_eq!(self.index.len(), self.ids.len());
        Some(at)
    }

    /// Every id and record, in the order inserted.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Uuid, &T)> + use<'_, T> {
        self.ids.iter().copied().zip(self.chunks.iter().flatten())
    }

    /// The records after place `at` (every record when `at` is none), in the order inserted.
    pub(crate) fn after(&self, at: Option<u32>) -> impl Iterator<Item = (Uuid, &T)> + use<'_, T> {
        let skip = at.map_or(0, |at| at as usize + 1);
        self.iter().skip(skip)
    }
}

impl<T: PartialEq> PartialEq for Records<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ids == other.ids && self.iter().zip(other.iter()).all(|(a, b)| a.1 == b.1)
    }
}

impl<T: Eq> Eq for Records<T> {}

/// A snapshot holds each id with its record, in order; the index is rebuilt as they are read,
/// one at a time, so that loading never holds the records twice.
impl<T: Serialize> Serialize for Records<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The length goes first: a MessagePack encoder given none holds the whole list in
        // memory to count it, and the chunks' flattened iterator cannot say.
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for (id, record) in self.iter() {
            seq.serialize_element(&(Halves::from(id), record))?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Records<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Records<T>, D::Error> {
        struct Each<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Each<T> {
            type Value = Records<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of ids with their records")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records<T>, A::Error> {
                let mut records = Records::default();
                records.index.reserve(seq.size_hint().unwrap_or(0));
                while let Some((halves, record)) = seq.next_element::<(Halves, T)>()? {
                    let id = Uuid::from(halves);
                    if records.insert_new(id, record).is_none() {
                        return Err(A::Error::custom(format!("id {id} is recorded twice")));
                    }
                }
                Ok(records)
            }
        }
        deserializer.deserialize_seq(Each(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn records_are_found_by_id_and_listed_in_the_order_inserted() {
        let mut records = Records::default();
        let count = CHUNK_RECORDS as u128 * 2 + 3;
        for n in (1..=count).rev() {
            records.insert(id(n), n * 10);
        }
        assert_eq!(records.len(), count as usize);
        assert_eq!(records.get(&id(7)), Some(&70));
        assert_eq!(records.get(&id(count + 1)), None);
        *records.get_mut(&id(7)).unwrap() += 1;
        assert_eq!(records.get(&id(7)), Some(&71));
        let first: Vec<u128> = records.iter().take(2).map(|(_, n)| *n).collect();
        assert_eq!(first, [count * 10, (count - 1) * 10]);
        let place = records.place(&id(3)).unwrap();
        let rest: Vec<Uuid> = records.after(Some(place)).map(|(id, _)| id).collect();
        assert_eq!(rest, [id(2), id(1)]);
        assert_eq!(records.after(None).count(), count as usize);
    }

    #[test]
    #[should_panic(expected = "a record is inserted once")]
    fn an_id_inserted_twice_is_a_bug() {
        let mut records = Records::default();
        records.insert(id(1), 1);
        records.insert(id(1), 2);
    }

    #[test]
    fn a_snapshot_reads_back_equal_and_refuses_an_id_twice() {
        let mut records = Records::default();
        for n in 1..=10 {
            records.insert(id(n), format!("record {n}"));
        }
        let text = serde_json::to_string(&records).unwrap();
        let loaded: Records<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(loaded, records);
        assert_eq!(loaded.get(&id(4)).map(String::as_str), Some("record 4"));
        let twice = text.replace("[[0,2],", "[[0,1],");
        assert_ne!(twice, text);
        assert!(serde_json::from_str::<Records<String>>(&twice).is_err());
    }
}
