//! Stream numbers on SQLite: events are indexed by their stream's number, given in the order
//! streams first appear, and the writer remembers the numbers it has seen, which never change.

use foldhash::{HashMap, HashSet, HashSetExt};

use rusqlite::Transaction;

use super::StoreError;

/// Numbers remembered at most; past this the memory starts again.
const STREAMS_MAX: usize = 1_000_000;

/// The numbers of streams already committed.
#[derive(Debug, Default)]
pub(super) struct StreamKeys {
    keys: HashMap<String, i64>,
}

impl StreamKeys {
    /// Remembers committed numbers (never those of a group that has yet to commit).
    pub(super) fn learn(&mut self, committed: Vec<(String, i64)>) {
        if self.keys.len() + committed.len() > STREAMS_MAX {
            self.keys.clear();
        }
        self.keys.extend(committed);
    }
}

/// Each stream's number, in the order asked, and the numbers to remember once the transaction
/// commits: those found in the file and those given here for the first time.
pub(super) type Numbered = (Vec<i64>, Vec<(String, i64)>);

/// Numbers the streams of a group's rows, in row order. Streams the file lacks are given the
/// next numbers inside `tx`. Nothing is remembered here: remembering can start the memory
/// afresh, and a stream already counted as remembered would then have no number.
pub(super) fn number_rows(
    tx: &Transaction<'_>,
    keys: &StreamKeys,
    streams: &[&str],
) -> Result<Numbered, StoreError> {
    let unknown = unknown_streams(keys, streams);
    let mut learned = Vec::new();
    if !unknown.is_empty() {
        learned = find(tx, &unknown)?;
        let named: HashSet<&str> = learned.iter().map(|(stream, _)| stream.as_str()).collect();
        let absent: Vec<String> = unknown
            .iter()
            .filter(|stream| !named.contains(stream.as_str()))
            .cloned()
            .collect();
        if !absent.is_empty() {
            learned.extend(insert(tx, absent)?);
        }
    }
    let fresh: HashMap<&str, i64> = learned.iter().map(|(s, k)| (s.as_str(), *k)).collect();
    let numbered = streams
        .iter()
        .map(|stream| {
            let key = keys.keys.get(*stream).copied();
            key.or_else(|| fresh.get(stream).copied())
                .expect("every stream of the group was found or numbered above")
        })
        .collect();
    Ok((numbered, learned))
}

/// The streams with no remembered number, each once, in order of first appearance.
fn unknown_streams(keys: &StreamKeys, streams: &[&str]) -> Vec<String> {
    let mut seen = HashSet::new();
    streams
        .iter()
        .filter(|stream| !keys.keys.contains_key(**stream) && seen.insert(**stream))
        .map(|stream| (*stream).to_owned())
        .collect()
}

/// The numbers `streams` already have in the file.
fn find(tx: &Transaction<'_>, streams: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
    let names = serde_json::to_string(streams).expect("strings serialise");
    let mut find = tx.prepare_cached(
        "SELECT stream, stream_key FROM streams WHERE stream IN (SELECT value FROM json_each(?1))",
    )?;
    let found = find.query_map([names], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(found.collect::<Result<_, _>>()?)
}

/// Gives `streams` the next numbers, in order; the caller holds the write lock, so no other
/// writer can take them first.
fn insert(tx: &Transaction<'_>, streams: Vec<String>) -> Result<Vec<(String, i64)>, StoreError> {
    let last: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(stream_key), 0) FROM streams")?
        .query_row([], |row| row.get(0))?;
    let names = serde_json::to_string(&streams).expect("strings serialise");
    // json_each numbers an array's elements from 0 in its `key` column.
    tx.prepare_cached(
        "INSERT INTO streams (stream_key, stream) SELECT ?1 + 1 + key, value FROM json_each(?2)",
    )?
    .execute((last, names))?;
    Ok(streams.into_iter().zip(last + 1..).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn streams_are_numbered_from_the_file_or_afresh_and_remembered_only_after() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE streams (stream_key INTEGER PRIMARY KEY, stream TEXT NOT NULL UNIQUE); \
                 INSERT INTO streams VALUES (1, 'referral-a'), (2, 'referral-b');",
            )
            .unwrap();
        let mut keys = StreamKeys::default();
        keys.learn(vec![("referral-a".to_owned(), 1)]);
        let tx = connection.transaction().unwrap();
        let streams = [
            "referral-a",
            "referral-b",
            "referral-c",
            "referral-c",
            "referral-a",
        ];
        let (numbers, learned) = number_rows(&tx, &keys, &streams).unwrap();
        assert_eq!(numbers, [1, 2, 3, 3, 1]);
        assert_eq!(
            learned,
            [("referral-b".to_owned(), 2), ("referral-c".to_owned(), 3)],
            "the number found in the file, then the one given"
        );
        assert_eq!(
            keys.keys.len(),
            1,
            "nothing is remembered before the commit"
        );
        keys.learn(learned);
        let (numbers, learned) = number_rows(&tx, &keys, &["referral-c", "referral-d"]).unwrap();
        assert_eq!(numbers, [3, 4]);
        assert_eq!(learned, [("referral-d".to_owned(), 4)]);
    }
}
