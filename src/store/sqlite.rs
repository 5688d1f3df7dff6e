//! The SQLite backend: one file in WAL mode, fsynced on every commit; appends on a thread of
//! their own (`sqlite_append`), a small pool of readers, and one connection for the rest.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::beside::{
    SnapshotPart, SnapshotReader, TokenRecord, micros_to_time, snapshot_cut_short,
};
use super::checkpoint::Checkpointer;
use super::event::{FoldRow, RecordedEvent};
use super::plan::{AppendRequest, Appended};
use super::sql::{TOKENS_REVOKED_COUNT, to_i64, to_u64};
use super::sqlite_append::Appends;
use super::sqlite_fold::FoldReader;
use super::{Stats, StoreError};

/// Every column `sqlite_fold::recorded` reads, in its order, from `EVENTS`.
pub(super) const COLUMNS: &str = "e.position, e.event_id, s.stream, e.stream_version, e.event_type, \
    e.schema_version, e.occurred_at_us, e.recorded_at_us, e.actor_organisation, e.actor_role, \
    e.actor_user, e.correlation_id, e.causation_id, e.data, e.prev_hash, e.hash";
/// The events, each with its stream's name: a row holds only the stream's number.
pub(super) const EVENTS: &str = "events e JOIN streams s ON s.stream_key = e.stream_key";
const READ_CONNECTIONS_MAX: u32 = 4;
const BUSY_TIMEOUT_MS: u64 = 10_000;

/// A log in one SQLite file.
#[derive(Clone)]
pub struct SqliteLog {
    /// Migrations, tokens and snapshots; appends go through `appends`.
    writer: SqlitePool,
    readers: SqlitePool,
    appends: Appends,
    fold: FoldReader,
    checkpointer: Checkpointer,
}

impl SqliteLog {
    pub async fn open(path: &str) -> Result<SqliteLog, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL fsyncs the WAL at every commit: an acknowledged append survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // The checkpoint thread copies the WAL back, not the commit.
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS_MAX)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        let checkpointer = Checkpointer::start(path);
        Ok(SqliteLog {
            writer,
            readers,
            appends: Appends::start(path, checkpointer.clone()).await?,
            fold: FoldReader::new(path),
            checkpointer,
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
        requests: Vec<AppendRequest>,
    ) -> Result<(Vec<Result<Appended, StoreError>>, u64), StoreError> {
        self.appends.commit(requests).await
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
        let range = vec![Value::Integer(to_i64(from)), Value::Integer(to_i64(until))];
        self.fold.events(sql, range).await
    }

    /// The events at `positions`, in position order; a position beyond the head is left out.
    pub async fn read_at(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError> {
        // One statement for any number of positions: a JSON array bound as one parameter.
        let sql = format!(
            "SELECT {COLUMNS} FROM {EVENTS} \
             WHERE e.position IN (SELECT value FROM json_each(?)) ORDER BY e.position"
        );
        let list = serde_json::to_string(positions).expect("numbers encode");
        self.fold.events(sql, vec![Value::Text(list)]).await
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

    /// The replay's reader, for reads in pieces.
    pub fn fold_reader(&self) -> &FoldReader {
        &self.fold
    }

    pub async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM {EVENTS} WHERE e.event_id = ?");
        let id = vec![Value::Text(event_id.to_string())];
        Ok(self.fold.events(sql, id).await?.pop())
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
        let parameters = vec![Value::Text(stream.to_owned()), Value::Integer(to_i64(from))];
        self.fold.events(sql, parameters).await
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
        self.checkpointer.ask_truncate();
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
