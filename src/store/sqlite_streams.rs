//! Stream numbers on SQLite: events are indexed by their stream's number, given in the order
//! streams first appear, and the writer remembers the numbers it has seen, which never change.

use std::collections::{HashMap, HashSet};

use rusqlite::Transaction;

use super::StoreError;
use super::event::RecordedEvent;

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

/// Each row's stream number, in row order, and the streams numbered for the first time.
pub(super) type Numbered = (Vec<i64>, Vec<(String, i64)>);

/// Numbers the rows' streams. Streams numbered here for the first time are written to
/// `streams` inside `tx`, and are remembered only once it commits.
pub(super) fn number_rows(
    tx: &Transaction<'_>,
    keys: &mut StreamKeys,
    rows: &[RecordedEvent],
) -> Result<Numbered, StoreError> {
    let unknown = unknown_streams(keys, rows);
    let mut new = Vec::new();
    if !unknown.is_empty() {
        let found = find(tx, &unknown)?;
        let named: HashSet<&str> = found.iter().map(|(stream, _)| stream.as_str()).collect();
        let absent: Vec<String> = unknown
            .iter()
            .filter(|stream| !named.contains(stream.as_str()))
            .cloned()
            .collect();
        keys.learn(found);
        if !absent.is_empty() {
            new = insert(tx, absent)?;
        }
    }
    let fresh: HashMap<&str, i64> = new.iter().map(|(s, k)| (s.as_str(), *k)).collect();
    let numbered = rows
        .iter()
        .map(|row| {
            let key = keys.keys.get(&row.stream).copied();
            key.or_else(|| fresh.get(row.stream.as_str()).copied())
                .expect("every stream of the group was found or numbered above")
        })
        .collect();
    Ok((numbered, new))
}

/// The rows' streams with no remembered number, each once, in order of first appearance.
fn unknown_streams(keys: &StreamKeys, rows: &[RecordedEvent]) -> Vec<String> {
    let mut seen = HashSet::new();
    rows.iter()
        .map(|row| row.stream.as_str())
        .filter(|stream| !keys.keys.contains_key(*stream) && seen.insert(*stream))
        .map(str::to_owned)
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
