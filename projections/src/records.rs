//! Records counted in millions (journeys, prescriptions, fundings), kept densely in the order
//! they were first folded and found by id through a hash index. In a B-tree map the records sat
//! inside half-filled nodes and every fact paid for a walk down the tree; here a record takes its
//! own size, and finding one is a hash and a probe.

use std::collections::HashMap;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::compact::{self, Halves};

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

/// A snapshot holds the count of records, then the records in blocks of [`CHUNK_RECORDS`], each
/// block one byte string holding a MessagePack list of ids with their records. The index is
/// rebuilt as each block is read, so loading never holds the records twice. Read from a stream,
/// every string and number of every record went through the stream's reader a call at a time,
/// and strings through a growing buffer; a block is read whole and decoded where it lies.
impl<T: Serialize> Serialize for Records<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(1 + self.chunks.len()))?;
        seq.serialize_element(&(self.len() as u64))?;
        let mut block = Vec::new();
        for (ids, records) in self.ids.chunks(CHUNK_RECORDS).zip(&self.chunks) {
            debug_assert_eq!(ids.len(), records.len());
            block.clear();
            let pairs = Pairs(ids, records);
            rmp_serde::encode::write(&mut block, &pairs).map_err(S::Error::custom)?;
            seq.serialize_element(&Bytes(&block))?;
        }
        seq.end()
    }
}

/// A block's ids with their records, as one list of pairs.
struct Pairs<'a, T>(&'a [Uuid], &'a [T]);

impl<T: Serialize> Serialize for Pairs<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Pairs(ids, records) = self;
        let pairs = ids.iter().zip(*records);
        serializer.collect_seq(pairs.map(|(id, record)| (Halves::from(*id), record)))
    }
}

/// Bytes written as one byte string.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Records<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Records<T>, D::Error> {
        struct Blocks<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for Blocks<T> {
            type Value = Records<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a count of records, then blocks of ids with their records")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records<T>, A::Error> {
                let count: u64 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("no count of records"))?;
                let mut records = Records::default();
                // A count no block could hold is not reserved for.
                let reserve = usize::try_from(count).unwrap_or(usize::MAX);
                records.index.reserve(reserve.min(RESERVE_RECORDS_MAX));
                while seq.next_element_seed(Block(&mut records))?.is_some() {}
                match records.len() as u64 == count {
                    true => Ok(records),
                    false => Err(A::Error::custom(format!(
                        "{} records where the count says {count}",
                        records.len()
                    ))),
                }
            }
        }
        deserializer.deserialize_seq(Blocks(std::marker::PhantomData))
    }
}

/// The most records a snapshot's count reserves room for before they are read.
const RESERVE_RECORDS_MAX: usize = 1 << 26;

/// Reads one block into the records.
struct Block<'r, T>(&'r mut Records<T>);

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Block<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        compact::with_bytes(deserializer, |bytes| {
            let mut decoder = rmp_serde::Deserializer::from_read_ref(bytes);
            Each(self.0)
                .deserialize(&mut decoder)
                .map_err(|error| error.to_string())
        })
    }
}

/// Reads a block's pairs, adding each record under its id.
struct Each<'r, T>(&'r mut Records<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Each<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Each<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of ids with their records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((halves, record)) = seq.next_element::<(Halves, T)>()? {
            let id = Uuid::from(halves);
            if self.0.insert_new(id, record).is_none() {
                return Err(A::Error::custom(format!("id {id} is recorded twice")));
            }
        }
        Ok(())
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
    fn a_snapshot_reads_back_equal_in_blocks() {
        let mut records = Records::default();
        let count = CHUNK_RECORDS as u128 * 2 + 3;
        for n in 1..=count {
            records.insert(id(n), format!("record {n}"));
        }
        let bytes = rmp_serde::to_vec(&records).unwrap();
        let loaded: Records<String> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(loaded, records);
        assert_eq!(
            loaded.get(&id(4_100)).map(String::as_str),
            Some("record 4100")
        );
        let text = serde_json::to_string(&records).unwrap();
        let loaded: Records<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(loaded, records, "a self-describing form reads back too");
        let empty = rmp_serde::to_vec(&Records::<String>::default()).unwrap();
        let empty: Records<String> = rmp_serde::from_slice(&empty).unwrap();
        assert_eq!(empty.len(), 0);
    }

    /// A snapshot's form written by hand: the count, then each block's pairs.
    fn written(count: u64, blocks: &[&[(u128, &str)]]) -> Vec<u8> {
        let blocks: Vec<Vec<u8>> = blocks
            .iter()
            .map(|pairs| {
                let pairs: Vec<(Halves, &str)> = pairs
                    .iter()
                    .map(|(n, text)| (Halves::from(id(*n)), *text))
                    .collect();
                rmp_serde::to_vec(&pairs).unwrap()
            })
            .collect();
        // A short array, a small count and short byte strings, in MessagePack's markers.
        let mut bytes = vec![0x90 + 1 + blocks.len() as u8, u8::try_from(count).unwrap()];
        for block in &blocks {
            bytes.extend([0xc4, u8::try_from(block.len()).unwrap()]);
            bytes.extend(block);
        }
        bytes
    }

    #[test]
    fn a_snapshot_refuses_an_id_twice_and_a_count_that_disagrees() {
        let read = |bytes: Vec<u8>| rmp_serde::from_slice::<Records<String>>(&bytes);
        let good = read(written(3, &[&[(1, "a"), (2, "b")], &[(3, "c")]])).unwrap();
        assert_eq!(good.get(&id(3)).map(String::as_str), Some("c"));

        let twice = read(written(3, &[&[(1, "a"), (2, "b")], &[(1, "c")]]));
        let error = twice.unwrap_err().to_string();
        assert!(error.contains("is recorded twice"), "{error}");

        let short = read(written(4, &[&[(1, "a"), (2, "b")], &[(3, "c")]]));
        let error = short.unwrap_err().to_string();
        assert!(
            error.contains("3 records where the count says 4"),
            "{error}"
        );

        let mut not_pairs = written(1, &[]);
        not_pairs[0] += 1;
        not_pairs.extend([0xc4, 1, 0xc1]);
        let error = read(not_pairs).unwrap_err().to_string();
        assert!(
            !error.contains("count says"),
            "a block that is not MessagePack: {error}"
        );
    }
}
