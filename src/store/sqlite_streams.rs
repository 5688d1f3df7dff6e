//! Stream numbers on SQLite: events are indexed by their stream's number, given in the order
//! streams first appear, and the writer remembers the numbers it has seen, which never change.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

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

/// The number of each row's stream, in row order, and the streams numbered here for the first
/// time: those are written to `streams` inside `tx`, and are remembered only once it commits.
pub(super) async fn number_rows(
    tx: &mut sqlx::SqliteConnection,
    keys: &Mutex<StreamKeys>,
    rows: &[RecordedEvent],
) -> Result<(Vec<i64>, Vec<(String, i64)>), StoreError> {
    let unknown = unknown_streams(&lock(keys), rows);
    let mut new = Vec::new();
    if !unknown.is_empty() {
        let found = find(tx, &unknown).await?;
        let named: HashSet<&str> = found.iter().map(|(stream, _)| stream.as_str()).collect();
        let absent: Vec<String> = unknown
            .iter()
            .filter(|stream| !named.contains(stream.as_str()))
            .cloned()
            .collect();
        lock(keys).learn(found);
        if !absent.is_empty() {
            new = insert(tx, absent).await?;
        }
    }
    let fresh: HashMap<&str, i64> = new.iter().map(|(s, k)| (s.as_str(), *k)).collect();
    let keys = lock(keys);
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

/// The remembered numbers, to read or add to.
pub(super) fn lock(keys: &Mutex<StreamKeys>) -> std::sync::MutexGuard<'_, StreamKeys> {
    keys.lock()
        .expect("no panic while holding the stream numbers")
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
async fn find(
    tx: &mut sqlx::SqliteConnection,
    streams: &[String],
) -> Result<Vec<(String, i64)>, StoreError> {
    let names = serde_json::to_string(streams).expect("strings serialise");
    let found = sqlx::query_as(
        "SELECT stream, stream_key FROM streams WHERE stream IN (SELECT value FROM json_each(?))",
    )
    .bind(names)
    .fetch_all(&mut *tx)
    .await?;
    Ok(found)
}

/// Gives `streams` the next numbers, in order; the caller holds the write lock, so no other
/// writer can take them first.
async fn insert(
    tx: &mut sqlx::SqliteConnection,
    streams: Vec<String>,
) -> Result<Vec<(String, i64)>, StoreError> {
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(stream_key), 0) FROM streams")
        .fetch_one(&mut *tx)
        .await?;
    let names = serde_json::to_string(&streams).expect("strings serialise");
    // json_each numbers an array's elements from 0 in its `key` column.
    sqlx::query(
        "INSERT INTO streams (stream_key, stream) SELECT ? + 1 + key, value FROM json_each(?)",
    )
    .bind(last)
    .bind(names)
    .execute(&mut *tx)
    .await?;
    Ok(streams.into_iter().zip(last + 1..).collect())
}
