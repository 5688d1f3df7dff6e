//! Records counted in millions (journeys, prescriptions, fundings), kept densely in the order
//! they were first folded and found by id through a hash index. In a B-tree map the records sat
//! inside half-filled nodes and every fact paid for a walk down the tree; here a record takes its
//! own size, and finding one is a hash and a probe.

use std::hash::BuildHasher;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::compact;
use crate::places::{Places, order_by_slot, slot_bits_for};

/// Records stored this many to a chunk, so that growing never copies more than one chunk and
/// never leaves more than one chunk's worth of room unused.
const CHUNK_RECORDS: usize = 4096;

/// A record that carries its own id, which is how the index finds it.
pub(crate) trait Keyed {
    /// The id the record is filed under.
    fn id(&self) -> Uuid;
}

/// Records by id, in the order first inserted.
///
/// The index holds only each record's place, and a probe compares the id the record carries:
/// an index of ids with places took 21 bytes a slot at half full, where places take four, and
/// the probe reads the record it was going to read anyway. Ids are hashed with a seed drawn for
/// each process: they come from callers, and a fixed seed would let someone choose ids that
/// collide.
#[derive(Clone, Debug)]
pub(crate) struct Records<T> {
    chunks: Vec<Vec<T>>,
    index: Places,
    hasher: foldhash::fast::RandomState,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Records {
            chunks: Vec::new(),
            index: Places::default(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl<T: Keyed> Records<T> {
    /// How many records there are.
    pub(crate) fn len(&self) -> usize {
        match self.chunks.last() {
            None => 0,
            Some(last) => (self.chunks.len() - 1) * CHUNK_RECORDS + last.len(),
        }
    }

    /// Whether `id` has a record.
    pub(crate) fn contains(&self, id: &Uuid) -> bool {
        self.place(id).is_some()
    }

    /// The record of `id`.
    pub(crate) fn get(&self, id: &Uuid) -> Option<&T> {
        let at = self.place(id)?;
        Some(self.at(at))
    }

    /// The record of `id`, to change.
    pub(crate) fn get_mut(&mut self, id: &Uuid) -> Option<&mut T> {
        let at = self.place(id)?;
        Some(self.at_mut(at))
    }

    /// The place of `id`'s record in insertion order.
    pub(crate) fn place(&self, id: &Uuid) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.index.find(hash, |at| self.at(at).id() == *id)
    }

    /// The places of the records of `ids`, into `found`, as [`Records::place`] finds each. The
    /// index's slots are all read first, then the records they most likely name, then each is
    /// checked: no load in the first two passes waits on another's value, so their cache misses
    /// overlap, where a lookup alone meets its two misses one after the other. Returns a value
    /// made from what was read, so that the reads are kept.
    pub(crate) fn places(&self, ids: &[Option<Uuid>], found: &mut Vec<Option<u32>>) -> u64 {
        let hashes: Vec<Option<u64>> = ids
            .iter()
            .map(|id| id.map(|id| self.hasher.hash_one(id)))
            .collect();
        let mut seen = 0u64;
        for &hash in hashes.iter().flatten() {
            seen ^= u64::from(self.index.touch(hash));
        }
        found.clear();
        found.extend(
            hashes
                .iter()
                .map(|hash| self.index.find((*hash)?, |_| true)),
        );
        for &at in found.iter().flatten() {
            seen ^= self.at(at).id().as_u64_pair().0;
        }
        // A likely place names another record only when hashes share a slot's bits.
        for ((place, id), hash) in found.iter_mut().zip(ids).zip(&hashes) {
            if let (Some(at), Some(id), Some(hash)) = (*place, id, hash)
                && self.at(at).id() != *id
            {
                *place = self.index.find(*hash, |at| self.at(at).id() == *id);
            }
        }
        seen
    }

    /// The place of `id`'s record: `warmed`, where warming a window found it (a record keeps
    /// its place), or else looked up. Panics if `warmed` holds another id's record.
    pub(crate) fn found(&self, warmed: Option<u32>, id: Option<Uuid>) -> Option<u32> {
        let place = warmed.or_else(|| self.place(&id?))?;
        assert_eq!(Some(self.at(place).id()), id, "a fact's own record");
        Some(place)
    }

    /// The record at place `at`.
    pub(crate) fn at(&self, at: u32) -> &T {
        chunked(&self.chunks, at)
    }

    /// The record at place `at`, to change. Its id must stay as it is: the index files it there.
    pub(crate) fn at_mut(&mut self, at: u32) -> &mut T {
        let (chunk, within) = chunk_and_offset(at);
        &mut self.chunks[chunk][within]
    }

    /// Adds the record of a new id; its place is the number of records before it.
    pub(crate) fn insert(&mut self, record: T) -> u32 {
        let inserted = self.insert_new(record);
        inserted.expect("a record is inserted once")
    }

    /// Adds the record unless its id has one already (then `None`): one probe of the index,
    /// where asking first and inserting after took two.
    fn insert_new(&mut self, record: T) -> Option<u32> {
        let at = u32::try_from(self.len()).expect("fewer than 2^32 records");
        let id = record.id();
        let Records {
            chunks,
            index,
            hasher,
        } = self;
        let hash = hasher.hash_one(id);
        let filed = index.insert_new(
            hash,
            at,
            |known| chunked(chunks, known).id() == id,
            rehash(hasher, chunks),
        );
        filed.ok()?;
        self.push_unindexed(record);
        debug_assert_eq!(self.index.len(), self.len());
        Some(at)
    }

    /// Appends a record without filing it in the index: a load files them all at once (see
    /// [`Records::index_all`]).
    fn push_unindexed(&mut self, record: T) {
        let chunks = &mut self.chunks;
        if chunks
            .last()
            .is_none_or(|chunk| chunk.len() == CHUNK_RECORDS)
        {
            chunks.push(Vec::with_capacity(CHUNK_RECORDS));
        }
        chunks.last_mut().expect("pushed above").push(record);
    }

    /// Files every record in the empty index, or names an id recorded twice. The records are
    /// filed in the order of the slots where their probes start, so the table is written front
    /// to back: filed in the order read, each insert was a cache miss, and a fifth of a
    /// national restart's work.
    fn index_all(&mut self) -> Result<(), Uuid> {
        assert_eq!(self.index.len(), 0, "records are indexed once");
        let count = self.len();
        let count_u32 = u32::try_from(count).expect("fewer than 2^32 records");
        self.reserve(count);
        let Records {
            chunks,
            index,
            hasher,
        } = self;
        let ids = chunks.iter().flatten().map(|record| record.id());
        let mut hashed: Vec<(u64, u32)> = ids
            .zip(0..count_u32)
            .map(|(id, at)| (hasher.hash_one(id), at))
            .collect();
        order_by_slot(&mut hashed, slot_bits_for(count));
        // Records of one id hash alike, so they lie side by side.
        for alike in hashed
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|run| run.len() > 1)
        {
            for (n, &(_, at)) in alike.iter().enumerate() {
                let id = chunked(chunks, at).id();
                if alike[n + 1..]
                    .iter()
                    .any(|&(_, other)| chunked(chunks, other).id() == id)
                {
                    return Err(id);
                }
            }
        }
        for (hash, at) in hashed {
            index.file(hash, at);
        }
        Ok(())
    }

    /// Makes room in the index for `more` records, so that a load never grows it a step at a
    /// time: each step hashes every record's id again, reading every record.
    fn reserve(&mut self, more: usize) {
        let Records {
            chunks,
            index,
            hasher,
        } = self;
        index.reserve(more, rehash(hasher, chunks));
    }

    /// Every id and record, in the order inserted.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Uuid, &T)> + use<'_, T> {
        self.chunks
            .iter()
            .flatten()
            .map(|record| (record.id(), record))
    }

    /// Every id, in the order inserted.
    pub(crate) fn ids(&self) -> impl ExactSizeIterator<Item = Uuid> + use<'_, T> {
        (0..self.len()).map(|at| self.at(at as u32).id())
    }

    /// The records after place `at` (every record when `at` is none), in the order inserted.
    pub(crate) fn after(&self, at: Option<u32>) -> impl Iterator<Item = (Uuid, &T)> + use<'_, T> {
        let skip = at.map_or(0, |at| at as usize + 1);
        self.iter().skip(skip)
    }
}

/// The hash of the record at a place in `chunks`, for the index to move it when it grows.
fn rehash<'a, T: Keyed>(
    hasher: &'a foldhash::fast::RandomState,
    chunks: &'a [Vec<T>],
) -> impl Fn(u32) -> u64 + 'a {
    move |at| hasher.hash_one(chunked(chunks, at).id())
}

/// The record at place `at` of `chunks`.
fn chunked<T>(chunks: &[Vec<T>], at: u32) -> &T {
    let (chunk, within) = chunk_and_offset(at);
    &chunks[chunk][within]
}

/// The chunk that holds place `at`, and the place within it.
fn chunk_and_offset(at: u32) -> (usize, usize) {
    let at = at as usize;
    (at / CHUNK_RECORDS, at % CHUNK_RECORDS)
}

impl<T: PartialEq + Keyed> PartialEq for Records<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a.1 == b.1)
    }
}

impl<T: Eq + Keyed> Eq for Records<T> {}

/// A snapshot holds the count of records, then the records in blocks of [`CHUNK_RECORDS`], each
/// block one byte string holding a MessagePack list of records, each carrying its id. Each block
/// is decoded into place, so loading never holds the records twice, and the index is built once
/// they are all read. Read from a stream, every string and number of every record went through
/// the stream's reader a call at a time, and strings through a growing buffer; a block is read
/// whole and decoded where it lies.
impl<T: Serialize + Keyed> Serialize for Records<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_blocks(self, serializer, |records, block| {
            rmp_serde::encode::write(block, records).map_err(|error| error.to_string())
        })
    }
}

impl<'de, T: DeserializeOwned + Keyed> Deserialize<'de> for Records<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Records<T>, D::Error> {
        deserialize_blocks(deserializer, |bytes, records| {
            let mut decoder = rmp_serde::Deserializer::from_read_ref(bytes);
            Each(records)
                .deserialize(&mut decoder)
                .map_err(|error| error.to_string())
        })
    }
}

/// The `with` form of records that are [`Packed`]: each block holds the count of its records,
/// then their bytes. A national year's prescriptions decoded through serde's general reader,
/// a marker and a call for every field, took a sixth of a restart.
pub(crate) mod packed {
    use super::*;
    use crate::compact::Packed;

    pub(crate) fn serialize<T: Packed + Keyed, S: Serializer>(
        records: &Records<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serialize_blocks(records, serializer, |records, block| {
            crate::compact::packed::pack_all(records, block);
            Ok(())
        })
    }

    pub(crate) fn deserialize<'de, T: Packed + Keyed, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Records<T>, D::Error> {
        deserialize_blocks(deserializer, |mut bytes, records| {
            let count = crate::compact::packed::count(&mut bytes)?;
            crate::compact::packed::unpack_each(bytes, count, |record| {
                records.push_unindexed(record);
            })
        })
    }
}

/// Writes the count, then each chunk as one byte string that `write` fills.
fn serialize_blocks<T: Keyed, S: Serializer>(
    records: &Records<T>,
    serializer: S,
    write: impl Fn(&[T], &mut Vec<u8>) -> Result<(), String>,
) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(1 + records.chunks.len()))?;
    seq.serialize_element(&(records.len() as u64))?;
    let mut block = Vec::new();
    for chunk in &records.chunks {
        block.clear();
        write(chunk, &mut block).map_err(S::Error::custom)?;
        seq.serialize_element(&Bytes(&block))?;
    }
    seq.end()
}

/// Bytes written as one byte string.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// How a block's bytes become records, added in order without filing them.
type ReadBlock<T> = fn(&[u8], &mut Records<T>) -> Result<(), String>;

/// Reads the count, then the blocks, each by `read`, then files every record in the index.
fn deserialize_blocks<'de, T: Keyed, D: Deserializer<'de>>(
    deserializer: D,
    read: ReadBlock<T>,
) -> Result<Records<T>, D::Error> {
    struct Blocks<T>(ReadBlock<T>);
    impl<'de, T: Keyed> Visitor<'de> for Blocks<T> {
        type Value = Records<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a count of records, then blocks of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records<T>, A::Error> {
            let count: u64 = seq
                .next_element()?
                .ok_or_else(|| A::Error::custom("no count of records"))?;
            let mut records = Records::default();
            while seq
                .next_element_seed(Block(&mut records, self.0))?
                .is_some()
            {}
            if records.len() as u64 != count {
                return Err(A::Error::custom(format!(
                    "{} records where the count says {count}",
                    records.len()
                )));
            }
            match records.index_all() {
                Ok(()) => Ok(records),
                Err(id) => Err(A::Error::custom(format!("id {id} is recorded twice"))),
            }
        }
    }
    deserializer.deserialize_seq(Blocks(read))
}

/// Reads one block into the records.
struct Block<'r, T>(&'r mut Records<T>, ReadBlock<T>);

impl<'de, T: Keyed> DeserializeSeed<'de> for Block<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let Block(records, read) = self;
        compact::with_bytes(deserializer, |bytes| read(bytes, records))
    }
}

/// Reads a block's records, adding each under its id.
struct Each<'r, T>(&'r mut Records<T>);

impl<'de, T: Deserialize<'de> + Keyed> DeserializeSeed<'de> for Each<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de> + Keyed> Visitor<'de> for Each<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<T>()? {
            self.0.push_unindexed(record);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record in tests: an id with a number.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Tally(#[serde(with = "crate::compact::id")] Uuid, u128);

    impl Keyed for Tally {
        fn id(&self) -> Uuid {
            self.0
        }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn tally(n: u128) -> Tally {
        Tally(id(n), n * 10)
    }

    #[test]
    fn records_are_found_by_id_and_listed_in_the_order_inserted() {
        let mut records = Records::default();
        let count = CHUNK_RECORDS as u128 * 2 + 3;
        for n in (1..=count).rev() {
            records.insert(tally(n));
        }
        assert_eq!(records.len(), count as usize);
        assert_eq!(records.get(&id(7)), Some(&tally(7)));
        assert_eq!(records.get(&id(count + 1)), None);
        records.get_mut(&id(7)).unwrap().1 += 1;
        assert_eq!(records.get(&id(7)).map(|t| t.1), Some(71));
        let first: Vec<u128> = records.iter().take(2).map(|(_, t)| t.1).collect();
        assert_eq!(first, [count * 10, (count - 1) * 10]);
        let place = records.place(&id(3)).unwrap();
        let rest: Vec<Uuid> = records.after(Some(place)).map(|(id, _)| id).collect();
        assert_eq!(rest, [id(2), id(1)]);
        assert_eq!(records.after(None).count(), count as usize);
    }

    #[test]
    fn a_batch_of_lookups_finds_what_one_at_a_time_finds() {
        // Enough records that a slot keeps only 13 bits of hash: dozens of the absent ids below
        // share them with a record on their probe, and must still be found absent.
        let mut records = Records::default();
        let count = 200_000;
        for n in 0..count {
            records.insert(tally(n * 2));
        }
        let ids: Vec<Option<Uuid>> = (0..count * 2)
            .map(|n| (n % 7 != 0).then_some(id(n)))
            .collect();
        let mut found = Vec::new();
        for batch in ids.chunks(256) {
            records.places(batch, &mut found);
            let one_by_one: Vec<Option<u32>> =
                batch.iter().map(|id| records.place(&(*id)?)).collect();
            assert_eq!(found, one_by_one);
        }
        let present = ids.iter().flatten().filter(|id| records.contains(id));
        assert_eq!(
            present.count(),
            (0..count * 2).filter(|n| n % 2 == 0 && n % 7 != 0).count()
        );
    }

    #[test]
    #[should_panic(expected = "a record is inserted once")]
    fn an_id_inserted_twice_is_a_bug() {
        let mut records = Records::default();
        records.insert(tally(1));
        records.insert(Tally(id(1), 2));
    }

    #[test]
    fn a_snapshot_reads_back_equal_in_blocks() {
        let mut records = Records::default();
        let count = CHUNK_RECORDS as u128 * 2 + 3;
        for n in 1..=count {
            records.insert(tally(n));
        }
        let bytes = rmp_serde::to_vec(&records).unwrap();
        let loaded: Records<Tally> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(loaded, records);
        assert_eq!(loaded.get(&id(4_100)), Some(&tally(4_100)));
        let found = (1..=count).filter(|n| loaded.get(&id(*n)) == Some(&tally(*n)));
        assert_eq!(
            found.count(),
            count as usize,
            "every record is found by its id"
        );
        let text = serde_json::to_string(&records).unwrap();
        let loaded: Records<Tally> = serde_json::from_str(&text).unwrap();
        assert_eq!(loaded, records, "a self-describing form reads back too");
        let empty = rmp_serde::to_vec(&Records::<Tally>::default()).unwrap();
        let empty: Records<Tally> = rmp_serde::from_slice(&empty).unwrap();
        assert_eq!(empty.len(), 0);
    }

    impl crate::compact::Packed for Tally {
        fn pack(&self, bytes: &mut Vec<u8>) {
            bytes.extend_from_slice(self.0.as_bytes());
            bytes.extend_from_slice(&self.1.to_le_bytes());
        }

        fn unpack(bytes: &mut &[u8]) -> Option<Tally> {
            let (id, rest) = bytes.split_first_chunk::<16>()?;
            let (n, rest) = rest.split_first_chunk::<16>()?;
            *bytes = rest;
            Some(Tally(Uuid::from_bytes(*id), u128::from_le_bytes(*n)))
        }
    }

    /// Records in their packed form.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct PackedTallies(#[serde(with = "packed")] Records<Tally>);

    #[test]
    fn packed_records_read_back_equal_and_refuse_a_block_that_says_otherwise() {
        let mut records = Records::default();
        let count = CHUNK_RECORDS as u128 * 2 + 3;
        for n in 1..=count {
            records.insert(tally(n));
        }
        let tallies = PackedTallies(records);
        let bytes = rmp_serde::to_vec(&tallies).unwrap();
        let loaded: PackedTallies = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(loaded, tallies);
        assert_eq!(loaded.0.get(&id(4_100)), Some(&tally(4_100)));
        let text = serde_json::to_string(&tallies).unwrap();
        assert_eq!(
            serde_json::from_str::<PackedTallies>(&text).unwrap(),
            tallies
        );

        // One record, counted in its block, then a byte too many or one too few.
        let mut one = PackedTallies(Records::default());
        one.0.insert(tally(1));
        let bytes = rmp_serde::to_vec(&one).unwrap();
        let block_at = bytes.len() - 33;
        assert_eq!(bytes[block_at - 2..block_at + 1], [0xc4, 33, 1]);
        let mut longer = bytes.clone();
        longer[block_at - 1] = 34;
        longer.push(0);
        let error = rmp_serde::from_slice::<PackedTallies>(&longer).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("1 bytes follow the last packed record"),
            "{error}"
        );
        let mut shorter = bytes.clone();
        shorter[block_at - 1] = 32;
        shorter.pop();
        let error = rmp_serde::from_slice::<PackedTallies>(&shorter).unwrap_err();
        assert!(
            error.to_string().contains("cannot fit") || error.to_string().contains("cut short"),
            "{error}"
        );
    }

    /// A snapshot's form written by hand: the count, then each block's records.
    fn written(count: u64, blocks: &[&[u128]]) -> Vec<u8> {
        let blocks: Vec<Vec<u8>> = blocks
            .iter()
            .map(|ns| rmp_serde::to_vec(&ns.iter().map(|n| tally(*n)).collect::<Vec<_>>()).unwrap())
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
        let read = |bytes: Vec<u8>| rmp_serde::from_slice::<Records<Tally>>(&bytes);
        let good = read(written(3, &[&[1, 2], &[3]])).unwrap();
        assert_eq!(good.get(&id(3)), Some(&tally(3)));

        let twice = read(written(3, &[&[1, 2], &[1]]));
        let error = twice.unwrap_err().to_string();
        assert!(error.contains("is recorded twice"), "{error}");

        let short = read(written(4, &[&[1, 2], &[3]]));
        let error = short.unwrap_err().to_string();
        assert!(
            error.contains("3 records where the count says 4"),
            "{error}"
        );

        let mut not_records = written(1, &[]);
        not_records[0] += 1;
        not_records.extend([0xc4, 1, 0xc1]);
        let error = read(not_records).unwrap_err().to_string();
        assert!(
            !error.contains("count says"),
            "a block that is not MessagePack: {error}"
        );
    }
}
