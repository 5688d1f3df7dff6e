//! The SQLite backend: one file in WAL mode, fsynced on every commit; one writer connection
//! for the appender and a small pool of readers.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, Row, SqlitePool};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::beside::{
    SnapshotPart, SnapshotReader, TokenRecord, micros_to_time, snapshot_cut_short,
};
use super::checkpoint::Checkpointer;
use super::event::{Actor, FoldRow, RecordedEvent};
use super::hash::Hash;
use super::heads::StreamHeads;
use super::plan::{self, AppendRequest, Appended, LogState};
use super::sql::{TOKENS_REVOKED_COUNT, corrupt, to_i64, to_u64};
use super::sqlite_fold::FoldReader;
use super::sqlite_streams::{StreamKeys, lock, number_rows};
use super::{Stats, StoreError};

/// Every column `from_row` reads, in its order, from `EVENTS`.
const COLUMNS: &str = "e.position, e.event_id, s.stream, e.stream_version, e.event_type, \
    e.schema_version, e.occurred_at_us, e.recorded_at_us, e.actor_organisation, e.actor_role, \
    e.actor_user, e.correlation_id, e.causation_id, e.data, e.prev_hash, e.hash";
/// The events, each with its stream's name: a row holds only the stream's number.
const EVENTS: &str = "events e JOIN streams s ON s.stream_key = e.stream_key";
/// The columns an append writes, in the order `bind_row` binds them.
const INSERT_COLUMNS: &str = "position, event_id, stream_key, stream_version, event_type, \
    schema_version, occurred_at_us, recorded_at_us, actor_organisation, actor_role, actor_user, \
    correlation_id, causation_id, data, prev_hash, hash";

const READ_CONNECTIONS_MAX: u32 = 4;
const BUSY_TIMEOUT_MS: u64 = 10_000;
/// The writer's page cache (given to SQLite as a negative `cache_size`, which it reads as KiB).
const WRITER_CACHE_KIB: u64 = 64 * 1024;
/// Rows per INSERT statement are powers of two up to this, so a handful of cached statements
/// cover every group size.
const INSERT_ROWS_PER_STATEMENT_MAX: usize = 256;
/// Events committed between WAL checkpoints: a few megabytes of WAL.
const CHECKPOINT_EVERY_EVENTS: u64 = 5_000;
/// Events committed between the writer's rewinds of the WAL to its start: a WAL of a few
/// hundred megabytes at most, where a random-keyed index dirties a page or more for every event.
const REWIND_EVERY_EVENTS: u64 = 50_000;

/// A log in one SQLite file.
#[derive(Clone)]
pub struct SqliteLog {
    writer: SqlitePool,
    readers: SqlitePool,
    heads: Arc<Mutex<StreamHeads>>,
    keys: Arc<Mutex<StreamKeys>>,
    fold: FoldReader,
    checkpoints: Checkpoints,
}

/// When the WAL is copied back into the database file: after a few thousand events, by a thread
/// of its own rather than by the commit that happens to cross SQLite's threshold. While appends
/// keep coming, those copies never reach the WAL's end, and SQLite starts a WAL afresh only
/// after a copy that did: now and then, the writer finishes the copy and rewinds the WAL to its start.
#[derive(Clone)]
struct Checkpoints {
    checkpointer: Checkpointer,
    events_since: Arc<std::sync::atomic::AtomicU64>,
    events_since_rewound: Arc<std::sync::atomic::AtomicU64>,
}

impl Checkpoints {
    /// Counts a commit's events; whether the writer should rewind the WAL now.
    fn committed(&self, events: u64) -> bool {
        use std::sync::atomic::Ordering;
        let since = self.events_since.fetch_add(events, Ordering::Relaxed) + events;
        if since >= CHECKPOINT_EVERY_EVENTS {
            self.events_since.store(0, Ordering::Relaxed);
            self.checkpointer.ask();
        }
        let since = self
            .events_since_rewound
            .fetch_add(events, Ordering::Relaxed)
            + events;
        let rewind = since >= REWIND_EVERY_EVENTS;
        if rewind {
            self.events_since_rewound.store(0, Ordering::Relaxed);
        }
        rewind
    }

    /// Has the next commit try the rewind again.
    fn rewind_soon(&self) {
        use std::sync::atomic::Ordering;
        self.events_since_rewound
            .store(REWIND_EVERY_EVENTS, Ordering::Relaxed);
    }
}

impl SqliteLog {
    pub async fn open(path: &str) -> Result<SqliteLog, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL fsyncs the WAL at every commit: an acknowledged append survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS));
        // The writer's unique indexes take random keys (event ids, stream names): with SQLite's
        // default 2 MiB page cache, each insert read index pages back from the file.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
                    // A multi-row INSERT keeps a statement journal so that a refused row undoes
                    // the rows before it; past 64 KiB SQLite spills it to a temporary file.
                    .pragma("temp_store", "memory")
                    // The checkpoint thread copies the WAL back, not the commit.
                    .pragma("wal_autocheckpoint", "0"),
            )
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS_MAX)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteLog {
            writer,
            readers,
            heads: Arc::default(),
            keys: Arc::default(),
            fold: FoldReader::new(path),
            checkpoints: Checkpoints {
                checkpointer: Checkpointer::start(path),
                events_since: Arc::default(),
                events_since_rewound: Arc::default(),
            },
        })
    }

    pub async fn head_position(&self) -> Result<u64, StoreError> {
        let head: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
            .fetch_one(&self.readers)
            .await?;
        Ok(head.map_or(0, to_u64))
    }

    pub async fn commit_group(
        &self,
        requests: &[&AppendRequest],
    ) -> Result<(Vec<Result<Appended, StoreError>>, u64), StoreError> {
        let mut conn = self.writer.acquire().await?;
        // Most groups bring only new ids, and the unique index on event ids checks that anyway
        // as the rows go in: looking every id up first took about a tenth of an import. A group
        // that meets a stored id, or refuses a request, is rolled back and planned again
        // knowing what is stored.
        let mut written = self.write_group(&mut conn, requests, Ids::AssumedNew).await;
        if matches!(written, Ok(None)) {
            written = self.write_group(&mut conn, requests, Ids::LookedUp).await;
        }
        let written =
            written.map(|group| group.expect("a group planned knowing its ids is written"));
        let (plan, head_before, looked_up, numbered) = match written {
            Ok(written) => written,
            Err(error) => {
                self.heads().forget();
                return Err(error);
            }
        };
        let head = plan.rows.last().map_or(head_before, |row| row.position);
        self.heads().remember(looked_up, &plan.rows, head);
        lock(&self.keys).learn(numbered);
        if self.checkpoints.committed(plan.rows.len() as u64) {
            // Holds up only the appends queued behind this one; the answer above is final.
            // RESTART, not TRUNCATE: the next commits overwrite the file from its start, where
            // a WAL grown again from empty had the kernel allocate and zero every page anew
            // (importing the region year took 44.8 s so, 31.7 to 36.2 s this way).
            let rewound: Result<(i64, i64, i64), _> =
                sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
                    .fetch_one(&mut *conn)
                    .await;
            match rewound {
                Ok((0, _, _)) => {}
                // Busy: the checkpoint thread is copying, or a reader holds the WAL's start.
                Ok(_) => self.checkpoints.rewind_soon(),
                Err(error) => {
                    tracing::warn!(%error, "rewinding the WAL failed; the next commit tries again");
                    self.checkpoints.rewind_soon();
                }
            }
        }
        Ok((plan.answers, head))
    }

    /// Plans and writes a group in one transaction, which commits only if every row went in.
    /// `None` when ids assumed new may not be: the group must be planned again, looking them up.
    async fn write_group(
        &self,
        conn: &mut sqlx::SqliteConnection,
        requests: &[&AppendRequest],
        ids: Ids,
    ) -> Result<Option<WrittenGroup>, StoreError> {
        // IMMEDIATE takes the write lock now, so what is read below cannot change before commit.
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let (state, looked_up) = load_state(&mut tx, requests, &self.heads, ids).await?;
        let head_before = state.head_position;
        let plan = plan::plan(state, requests, Utc::now());
        let assumed = ids == Ids::AssumedNew;
        // A refused request may be the retry of one whose first write satisfied it.
        if assumed && plan.answers.iter().any(Result::is_err) {
            return Ok(None);
        }
        let (keys, numbered) = number_rows(&mut tx, &self.keys, &plan.rows).await?;
        match insert_rows(&mut tx, &plan.rows, &keys).await {
            Err(error) if assumed && is_event_id_taken(&error) => return Ok(None),
            inserted => inserted?,
        }
        tx.commit().await?;
        Ok(Some((plan, head_before, looked_up, numbered)))
    }

    fn heads(&self) -> std::sync::MutexGuard<'_, StreamHeads> {
        self.heads
            .lock()
            .expect("no panic while holding the stream heads")
    }

    /// The events at positions `from` to `until` (exclusive), in order.
    pub async fn read_range(
        &self,
        from: u64,
        until: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {EVENTS} \
             WHERE e.position >= ? AND e.position < ? ORDER BY e.position"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(to_i64(from))
            .bind(to_i64(until))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The events at `positions`, in position order; a position beyond the head is left out.
    pub async fn read_at(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError> {
        // One statement for any number of positions: a JSON array bound as one parameter.
        let sql = format!(
            "SELECT {COLUMNS} FROM {EVENTS} \
             WHERE e.position IN (SELECT value FROM json_each(?)) ORDER BY e.position"
        );
        let list = serde_json::to_string(positions).expect("numbers encode");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(list)
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The events at positions `from` to `until` (exclusive) as a replay folds them.
    pub async fn read_fold_range<T: Send + 'static>(
        &self,
        from: u64,
        until: u64,
        read: fn(FoldRow<'_>) -> T,
    ) -> Result<Vec<T>, StoreError> {
        self.fold.read(from, until, read).await
    }

    pub async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM {EVENTS} WHERE e.event_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(event_id.to_string())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn stream_version_at(&self, stream: &str, position: u64) -> Result<u64, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(stream_version) FROM events \
             WHERE stream_key = (SELECT stream_key FROM streams WHERE stream = ?) AND position <= ?",
        )
        .bind(stream)
        .bind(to_i64(position))
        .fetch_one(&self.readers)
        .await?;
        Ok(version.map_or(0, to_u64))
    }

    pub async fn read_stream(
        &self,
        stream: &str,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {EVENTS} \
             WHERE e.stream_key = (SELECT stream_key FROM streams WHERE stream = ?) \
                 AND e.stream_version >= ? \
             ORDER BY e.stream_version"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(stream)
            .bind(to_i64(from))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let (events, head, streams): (i64, Option<i64>, i64) = sqlx::query_as(
            "SELECT COUNT(*), MAX(position), (SELECT COUNT(*) FROM streams) FROM events",
        )
        .fetch_one(&self.readers)
        .await?;
        let by_type: Vec<(String, i64)> = sqlx::query_as(
            "SELECT event_type, COUNT(*) FROM events GROUP BY event_type ORDER BY event_type",
        )
        .fetch_all(&self.readers)
        .await?;
        Ok(Stats {
            events: to_u64(events),
            head_position: head.map_or(0, to_u64),
            streams: to_u64(streams),
            events_by_type: by_type.into_iter().map(|(t, n)| (t, to_u64(n))).collect(),
        })
    }
}

impl SqliteLog {
    pub async fn token_insert(
        &self,
        record: &TokenRecord,
        token_hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (token_id, token_hash, organisation, role, created_at_us) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(record.token_id.to_string())
        .bind(token_hash.to_vec())
        .bind(&record.organisation)
        .bind(&record.role)
        .bind(record.created_at.timestamp_micros())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn token_find(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT token_id, organisation, role, created_at_us, revoked_at_us FROM api_tokens WHERE token_hash = ?",
        )
        .bind(token_hash.to_vec())
        .fetch_optional(&self.readers)
        .await?;
        row.map(token_record).transpose()
    }

    pub async fn token_revoke(
        &self,
        token_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at_us = ? WHERE token_id = ? AND revoked_at_us IS NULL",
        )
        .bind(at.timestamp_micros())
        .bind(token_id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn tokens_revoked_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(TOKENS_REVOKED_COUNT)
            .fetch_one(&self.readers)
            .await?;
        Ok(to_u64(count))
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT token_id, organisation, role, created_at_us, revoked_at_us FROM api_tokens ORDER BY created_at_us DESC",
        )
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(token_record).collect()
    }

    pub async fn snapshot_open(&self, name: &str) -> Result<Option<SnapshotReader>, StoreError> {
        super::sqlite_snapshot::open(&self.fold, name).await
    }

    pub async fn snapshot_save(
        &self,
        name: &str,
        version: u32,
        position: u64,
        mut parts: mpsc::Receiver<SnapshotPart>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM snapshot_chunks WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let (mut chunks, mut bytes) = (0_i64, 0_usize);
        loop {
            match parts.recv().await {
                Some(SnapshotPart::Chunk(chunk)) => {
                    bytes += chunk.len();
                    sqlx::query(
                        "INSERT INTO snapshot_chunks (name, chunk, bytes) VALUES (?, ?, ?)",
                    )
                    .bind(name)
                    .bind(chunks)
                    .bind(chunk)
                    .execute(&mut *tx)
                    .await?;
                    chunks += 1;
                }
                Some(SnapshotPart::End) => break,
                None => return Err(snapshot_cut_short()),
            }
        }
        sqlx::query(
            "INSERT INTO snapshots (name, version, position, state, taken_at_us, chunks) VALUES (?, ?, ?, x'', ?, ?) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = excluded.position, \
             state = excluded.state, taken_at_us = excluded.taken_at_us, chunks = excluded.chunks",
        )
        .bind(name)
        .bind(i64::from(version))
        .bind(to_i64(position))
        .bind(Utc::now().timestamp_micros())
        .bind(chunks)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(bytes)
    }
}

type TokenRow = (String, String, String, i64, Option<i64>);

fn token_record(
    (token_id, organisation, role, created, revoked): TokenRow,
) -> Result<TokenRecord, StoreError> {
    let token_id = Uuid::parse_str(&token_id).map_err(|_| StoreError::Corrupt {
        position: 0,
        reason: format!("api token id `{token_id}` is not a UUID"),
    })?;
    Ok(TokenRecord {
        token_id,
        organisation,
        role,
        created_at: micros_to_time(created),
        revoked_at: revoked.map(micros_to_time),
    })
}

/// A written group: its plan, the head before it, the stream versions it read from the file
/// and the streams it numbered.
type WrittenGroup = (plan::GroupPlan, u64, Vec<(String, u64)>, Vec<(String, i64)>);

/// Whether a group's event ids are looked up in the log before it is planned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// Planned as if none is stored: a stored one makes the insert fail.
    AssumedNew,
    LookedUp,
}

/// An insert refused because an event id is already in the log.
fn is_event_id_taken(error: &StoreError) -> bool {
    let StoreError::Database(error) = error else {
        return false;
    };
    let Some(error) = error.as_database_error() else {
        return false;
    };
    error.is_unique_violation() && error.message().contains("events.event_id")
}

/// What the planner needs under the write lock, and the versions read from the file rather
/// than remembered (0 for a stream the file does not hold).
async fn load_state(
    tx: &mut sqlx::SqliteConnection,
    requests: &[&AppendRequest],
    heads: &Mutex<StreamHeads>,
    ids: Ids,
) -> Result<(LogState, Vec<(String, u64)>), StoreError> {
    let mut state = LogState::default();
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((position, hash)) = head {
        state.head_position = to_u64(position);
        state.head_hash =
            Hash::from_slice(&hash).ok_or_else(|| corrupt(position, "hash is not 32 bytes"))?;
    }
    let (streams, event_ids) = plan::keys(requests);
    let (known, unknown) = heads
        .lock()
        .expect("no panic while holding the stream heads")
        .recall(state.head_position, streams);
    state.stream_versions = known;
    let mut looked_up = Vec::with_capacity(unknown.len());
    if !unknown.is_empty() {
        let streams = serde_json::to_string(&unknown).expect("strings serialise");
        let found: Vec<(String, i64)> = sqlx::query_as(
            "SELECT s.stream, \
                 COALESCE((SELECT MAX(e.stream_version) FROM events e WHERE e.stream_key = s.stream_key), 0) \
             FROM streams s WHERE s.stream IN (SELECT value FROM json_each(?))",
        )
        .bind(streams)
        .fetch_all(&mut *tx)
        .await?;
        let found: HashMap<String, u64> = found.into_iter().map(|(s, v)| (s, to_u64(v))).collect();
        for stream in unknown {
            let version = found.get(&stream).copied().unwrap_or(0);
            looked_up.push((stream, version));
        }
        state.stream_versions.extend(found);
    }
    if ids == Ids::AssumedNew {
        return Ok((state, looked_up));
    }
    let ids = serde_json::to_string(&event_ids).expect("uuids serialise");
    let sql = format!(
        "SELECT {COLUMNS} FROM {EVENTS} WHERE e.event_id IN (SELECT value FROM json_each(?))"
    );
    let existing = sqlx::query(AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
    for row in &existing {
        let event = from_row(row)?;
        state.existing.insert(event.event_id, event);
    }
    Ok((state, looked_up))
}

/// Inserts `rows` (with their streams' numbers) in statements of a power of two rows each.
async fn insert_rows(
    tx: &mut sqlx::SqliteConnection,
    mut rows: &[RecordedEvent],
    mut keys: &[i64],
) -> Result<(), StoreError> {
    assert_eq!(rows.len(), keys.len(), "one stream number per row");
    while !rows.is_empty() {
        let take = chunk_len(rows.len());
        let mut query = sqlx::query(AssertSqlSafe(insert_sql(take)));
        for (row, key) in rows[..take].iter().zip(&keys[..take]) {
            query = bind_row(query, row, *key);
        }
        query.execute(&mut *tx).await?;
        (rows, keys) = (&rows[take..], &keys[take..]);
    }
    Ok(())
}

/// The largest power of two no greater than `remaining` or the statement limit.
fn chunk_len(remaining: usize) -> usize {
    let fit = remaining.min(INSERT_ROWS_PER_STATEMENT_MAX);
    1 << fit.ilog2()
}

fn insert_sql(rows: usize) -> &'static str {
    static SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
        (0..=INSERT_ROWS_PER_STATEMENT_MAX.ilog2())
            .map(|power| {
                let tuple = format!("({})", vec!["?"; 16].join(", "));
                let tuples = vec![tuple; 1 << power].join(", ");
                format!("INSERT INTO events ({INSERT_COLUMNS}) VALUES {tuples}")
            })
            .collect()
    });
    assert!(rows.is_power_of_two() && rows <= INSERT_ROWS_PER_STATEMENT_MAX);
    &SQL[rows.ilog2() as usize]
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_row<'q>(query: SqliteQuery<'q>, row: &RecordedEvent, stream_key: i64) -> SqliteQuery<'q> {
    query
        .bind(to_i64(row.position))
        .bind(row.event_id.to_string())
        .bind(stream_key)
        .bind(to_i64(row.stream_version))
        .bind(row.event_type.clone())
        .bind(i64::from(row.schema_version))
        .bind(row.occurred_at.timestamp_micros())
        .bind(row.recorded_at.timestamp_micros())
        .bind(row.actor.organisation.clone())
        .bind(row.actor.role.clone())
        .bind(row.actor.user.clone())
        .bind(row.correlation_id.map(|id| id.to_string()))
        .bind(row.causation_id.map(|id| id.to_string()))
        .bind(row.data.clone())
        .bind(row.prev_hash.0.to_vec())
        .bind(row.hash.0.to_vec())
}

fn from_row(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get(0)?;
    let uuid = |index: usize| -> Result<Option<Uuid>, StoreError> {
        let text: Option<&str> = row.try_get(index)?;
        text.map(|text| Uuid::parse_str(text).map_err(|_| corrupt(position, "an id is not a UUID")))
            .transpose()
    };
    let hash = |index: usize| -> Result<Hash, StoreError> {
        let bytes: &[u8] = row.try_get(index)?;
        Hash::from_slice(bytes).ok_or_else(|| corrupt(position, "a hash is not 32 bytes"))
    };
    let time = |index: usize| -> Result<_, StoreError> {
        let micros: i64 = row.try_get(index)?;
        chrono::DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| corrupt(position, "a time is out of range"))
    };
    Ok(RecordedEvent {
        position: to_u64(position),
        event_id: uuid(1)?.ok_or_else(|| corrupt(position, "event_id is missing"))?,
        stream: row.try_get(2)?,
        stream_version: to_u64(row.try_get(3)?),
        event_type: row.try_get(4)?,
        schema_version: row
            .try_get::<i64, _>(5)?
            .try_into()
            .map_err(|_| corrupt(position, "bad schema version"))?,
        occurred_at: time(6)?,
        recorded_at: time(7)?,
        actor: Actor {
            organisation: row.try_get(8)?,
            role: row.try_get(9)?,
            user: row.try_get(10)?,
        },
        correlation_id: uuid(11)?,
        causation_id: uuid(12)?,
        data: row.try_get(13)?,
        prev_hash: hash(14)?,
        hash: hash(15)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_that_cover_the_rows() {
        for total in [1usize, 2, 3, 31, 32, 33, 255, 256, 257, 1000, 10_000] {
            let mut left = total;
            let mut statements = 0;
            while left > 0 {
                let take = chunk_len(left);
                assert!(take.is_power_of_two() && take <= left);
                left -= take;
                statements += 1;
            }
            assert!(
                statements <= total.div_ceil(INSERT_ROWS_PER_STATEMENT_MAX) + 8,
                "{total}"
            );
        }
        assert!(insert_sql(4).matches("(?, ").count() == 4);
    }
}
