//! The PostgreSQL backend: appends from every process serialise on one advisory lock, so
//! positions stay gap-free and commit-ordered; commits are announced with NOTIFY.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use foldhash::{HashMap, HashMapExt};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgPool, Row};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::beside::{
    SnapshotPart, SnapshotReader, TokenRecord, micros_to_time, snapshot_cut_short,
};
use super::event::{Actor, ExpectedVersion, FoldRow, Payload, RecordedEvent};
use super::hash::Hash;
use super::plan::{self, AppendRequest, Appended, LogState};
use super::sql::{COLUMNS, FOLD_COLUMNS, TOKENS_REVOKED_COUNT, corrupt, to_i64, to_u64};
use super::{Stats, StoreError};

const CONNECTIONS_MAX: u32 = 8;
const NOTIFY_CHANNEL: &str = "followfund_events";
const LISTEN_RETRY_MS: u64 = 500;

/// A log in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresLog {
    pool: PgPool,
    written: Arc<Mutex<Written>>,
}

/// What this process's appender last wrote: the head and the versions of streams it has seen.
/// Valid only while no other process has appended, which `followfund_append` checks.
#[derive(Default)]
struct Written {
    head: Option<(u64, Hash)>,
    stream_versions: HashMap<String, u64>,
    /// Groups left to commit the slow way after another process was found appending.
    fast_path_pause_groups: u32,
}

/// Bounds the memory kept for stream versions; past it the map starts again, costing one
/// slow commit per stream written again.
const STREAM_VERSIONS_KEPT_MAX: usize = 100_000;
/// Groups committed the slow way after the fast path found another process appending.
const FAST_PATH_PAUSE_GROUPS: u32 = 16;

impl PostgresLog {
    pub async fn open(url: &str) -> Result<PostgresLog, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        // Stated, not assumed: an acknowledged append must have reached disk.
        let options = options.options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS_MAX)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PostgresLog {
            pool,
            written: Arc::default(),
        })
    }

    pub async fn head_position(&self) -> Result<u64, StoreError> {
        let head: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(head.map_or(0, to_u64))
    }

    /// Follows commits made by other processes, raising `head` as they are announced.
    pub async fn listen(&self, head: watch::Sender<u64>) -> Result<(), StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let log = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if let Ok(position) = notification.payload().parse::<u64>() {
                            head.send_if_modified(|known| raise(known, position));
                        }
                    }
                    // The connection dropped and was re-established: commits announced meanwhile
                    // were missed, so read the head.
                    Ok(None) => {
                        if let Ok(position) = log.head_position().await {
                            head.send_if_modified(|known| raise(known, position));
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "listening for new events failed; retrying");
                        tokio::time::sleep(Duration::from_millis(LISTEN_RETRY_MS)).await;
                    }
                }
                if head.is_closed() {
                    break;
                }
            }
        });
        Ok(())
    }

    /// Commits a group in one round trip when this process was the last to append, else under
    /// the lock after reading the log's state.
    pub async fn commit_group(
        &self,
        requests: &[&AppendRequest],
    ) -> Result<(Vec<Result<Appended, StoreError>>, u64), StoreError> {
        if let Some(done) = self.commit_fast(requests).await {
            return Ok(done);
        }
        let (answers, head, state) = self.commit_locked(requests).await?;
        self.written
            .lock()
            .expect("not poisoned")
            .remember(state, head);
        Ok((answers, head))
    }

    /// `None` when the group needs the log's state: the head is unknown or stale, a stream with
    /// an expectation has not been seen, a request is refused, or an id or version is taken.
    async fn commit_fast(
        &self,
        requests: &[&AppendRequest],
    ) -> Option<(Vec<Result<Appended, StoreError>>, u64)> {
        let state = self
            .written
            .lock()
            .expect("not poisoned")
            .state_for(requests)?;
        let expected_head = state.head_position;
        let plan = plan::plan(state, requests, Utc::now());
        let all_written = plan
            .answers
            .iter()
            .all(|answer| matches!(answer, Ok(appended) if appended.written));
        let head = plan.rows.last().filter(|_| all_written)?;
        let head = (head.position, head.hash);
        let query = sqlx::query_scalar(APPEND_FUNCTION).bind(to_i64(expected_head));
        let outcome: Result<bool, sqlx::Error> =
            bind_rows(query, &plan.rows).fetch_one(&self.pool).await;
        let mut written = self.written.lock().expect("not poisoned");
        match outcome {
            Ok(true) => {
                written.record(&plan.rows, head);
                Some((plan.answers, head.0))
            }
            Ok(false) => {
                written.forget();
                written.fast_path_pause_groups = FAST_PATH_PAUSE_GROUPS;
                None
            }
            Err(_) => {
                written.forget();
                None
            }
        }
    }

    async fn commit_locked(
        &self,
        requests: &[&AppendRequest],
    ) -> Result<(Vec<Result<Appended, StoreError>>, u64, LogState), StoreError> {
        // The lock is taken in the same round trip as BEGIN and held until commit: the next
        // appender, in any process, reads the head only after this transaction is visible.
        let mut tx = self.pool.begin_with(BEGIN_AND_LOCK).await?;
        let state = load_state(&mut tx, requests).await?;
        let mut plan = plan::plan(state.clone(), requests, Utc::now());
        let mut head = (state.head_position, state.head_hash);
        if let Some(last) = plan.rows.last() {
            head = (last.position, last.hash);
            insert_and_notify(&mut tx, &plan.rows).await?;
        }
        tx.commit().await?;
        let mut after = state;
        for row in std::mem::take(&mut plan.rows) {
            after.stream_versions.insert(row.stream, row.stream_version);
        }
        after.head_position = head.0;
        after.head_hash = head.1;
        Ok((plan.answers, head.0, after))
    }

    /// The events at positions `from` to `until` (exclusive), in order.
    pub async fn read_range(
        &self,
        from: u64,
        until: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE position >= $1 AND position < $2 ORDER BY position"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(to_i64(from))
            .bind(to_i64(until))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The events at `positions`, in position order; a position beyond the head is left out.
    pub async fn read_at(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE position = ANY($1) ORDER BY position");
        let positions: Vec<i64> = positions.iter().map(|p| to_i64(*p)).collect();
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(positions)
            .fetch_all(&self.pool)
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
        let sql = format!(
            "SELECT {FOLD_COLUMNS} FROM events WHERE position >= $1 AND position < $2 ORDER BY position"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(to_i64(from))
            .bind(to_i64(until))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| fold_row(row).map(read)).collect()
    }

    pub async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE event_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn stream_version_at(&self, stream: &str, position: u64) -> Result<u64, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(stream_version) FROM events WHERE stream = $1 AND position <= $2",
        )
        .bind(stream)
        .bind(to_i64(position))
        .fetch_one(&self.pool)
        .await?;
        Ok(version.map_or(0, to_u64))
    }

    pub async fn read_stream(
        &self,
        stream: &str,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE stream = $1 AND stream_version >= $2 ORDER BY stream_version"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(stream)
            .bind(to_i64(from))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let (events, head, streams): (i64, Option<i64>, i64) =
            sqlx::query_as("SELECT COUNT(*), MAX(position), COUNT(DISTINCT stream) FROM events")
                .fetch_one(&self.pool)
                .await?;
        let by_type: Vec<(String, i64)> = sqlx::query_as(
            "SELECT event_type, COUNT(*) FROM events GROUP BY event_type ORDER BY event_type",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(Stats {
            events: to_u64(events),
            head_position: head.map_or(0, to_u64),
            streams: to_u64(streams),
            events_by_type: by_type.into_iter().map(|(t, n)| (t, to_u64(n))).collect(),
        })
    }
}

impl PostgresLog {
    pub async fn token_insert(
        &self,
        record: &TokenRecord,
        token_hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (token_id, token_hash, organisation, role, created_at_us) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(record.token_id)
        .bind(token_hash.to_vec())
        .bind(&record.organisation)
        .bind(&record.role)
        .bind(record.created_at.timestamp_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn token_find(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT token_id, organisation, role, created_at_us, revoked_at_us FROM api_tokens WHERE token_hash = $1",
        )
        .bind(token_hash.to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.map(token_record).transpose()
    }

    pub async fn token_revoke(
        &self,
        token_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at_us = $1 WHERE token_id = $2 AND revoked_at_us IS NULL")
            .bind(at.timestamp_micros())
            .bind(token_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn tokens_revoked_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(TOKENS_REVOKED_COUNT)
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(count))
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT token_id, organisation, role, created_at_us, revoked_at_us FROM api_tokens ORDER BY created_at_us DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(token_record).collect()
    }

    pub async fn snapshot_open(&self, name: &str) -> Result<Option<SnapshotReader>, StoreError> {
        // One REPEATABLE READ transaction, held by the task that fetches the chunks.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
        let row: Option<(i64, i64, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT version::BIGINT, position, state, chunks::BIGINT FROM snapshots WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((version, position, state, chunks)) = row else {
            return Ok(None);
        };
        let (sender, reader) = SnapshotReader::open(version, to_u64(position));
        let name = name.to_owned();
        tokio::spawn(async move {
            // A snapshot from before chunking holds its state in its own row.
            if chunks == 0 {
                sender.pass(Ok(Some(state)), 0, 1).await;
                return;
            }
            for chunk in 0..chunks {
                let fetched = sqlx::query_scalar(
                    "SELECT bytes FROM snapshot_chunks WHERE name = $1 AND chunk = $2",
                )
                .bind(&name)
                .bind(chunk as i32)
                .fetch_optional(&mut *tx)
                .await;
                if !sender.pass(fetched, chunk, chunks).await {
                    return;
                }
            }
        });
        Ok(Some(reader))
    }

    pub async fn snapshot_save(
        &self,
        name: &str,
        version: u32,
        position: u64,
        mut parts: mpsc::Receiver<SnapshotPart>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM snapshot_chunks WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let (mut chunks, mut bytes) = (0_i64, 0_usize);
        loop {
            match parts.recv().await {
                Some(SnapshotPart::Chunk(chunk)) => {
                    bytes += chunk.len();
                    sqlx::query(
                        "INSERT INTO snapshot_chunks (name, chunk, bytes) VALUES ($1, $2, $3)",
                    )
                    .bind(name)
                    .bind(chunks as i32)
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
            "INSERT INTO snapshots (name, version, position, state, taken_at_us, chunks) VALUES ($1, $2, $3, '', $4, $5) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = excluded.position, \
             state = excluded.state, taken_at_us = excluded.taken_at_us, chunks = excluded.chunks",
        )
        .bind(name)
        .bind(i64::from(version))
        .bind(to_i64(position))
        .bind(Utc::now().timestamp_micros())
        .bind(chunks as i32)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(bytes)
    }
}

type TokenRow = (Uuid, String, String, i64, Option<i64>);

fn token_record(
    (token_id, organisation, role, created, revoked): TokenRow,
) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        token_id,
        organisation,
        role,
        created_at: micros_to_time(created),
        revoked_at: revoked.map(micros_to_time),
    })
}

fn raise(known: &mut u64, position: u64) -> bool {
    let advanced = position > *known;
    *known = (*known).max(position);
    advanced
}

/// Reads, in one statement, the head, the versions of the group's streams and the positions of
/// any of its ids already stored; only in the rare case of a retry are those rows fetched whole.
async fn load_state(
    tx: &mut sqlx::PgConnection,
    requests: &[&AppendRequest],
) -> Result<LogState, StoreError> {
    let (streams, ids) = plan::keys(requests);
    let row = sqlx::query(LOAD_STATE)
        .bind(&streams)
        .bind(&ids)
        .fetch_one(&mut *tx)
        .await?;
    let head_position: Option<i64> = row.try_get(0)?;
    let head_hash: Option<Vec<u8>> = row.try_get(1)?;
    let known_streams: Option<Vec<String>> = row.try_get(2)?;
    let known_versions: Option<Vec<i64>> = row.try_get(3)?;
    let existing_positions: Vec<i64> = row.try_get(4)?;

    let mut state = LogState::default();
    if let (Some(position), Some(hash)) = (head_position, head_hash) {
        state.head_position = to_u64(position);
        state.head_hash =
            Hash::from_slice(&hash).ok_or_else(|| corrupt(position, "hash is not 32 bytes"))?;
    }
    let versions = known_streams
        .unwrap_or_default()
        .into_iter()
        .zip(known_versions.unwrap_or_default());
    state.stream_versions = versions
        .map(|(stream, version)| (stream, to_u64(version)))
        .collect();
    if !existing_positions.is_empty() {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE position = ANY($1)");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(&existing_positions)
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let event = from_row(row)?;
            state.existing.insert(event.event_id, event);
        }
    }
    Ok(state)
}

/// The advisory lock key is arbitrary; what matters is that every appender of every process
/// takes the same one. Sequential scans are ruled out for the appender's statements because
/// their plans are cached per connection: one planned while the table was nearly empty would
/// otherwise scan the whole table on every commit until the next ANALYZE.
const BEGIN_AND_LOCK: &str =
    "BEGIN; SET LOCAL enable_seqscan = off; SELECT pg_advisory_xact_lock(4628496016746583)";

const LOAD_STATE: &str = "\
    WITH head AS (SELECT position, hash FROM events ORDER BY position DESC LIMIT 1), \
         versions AS (SELECT stream, MAX(stream_version) AS version FROM events \
                      WHERE stream = ANY($1) GROUP BY stream) \
    SELECT (SELECT position FROM head), (SELECT hash FROM head), \
           (SELECT array_agg(stream ORDER BY stream) FROM versions), \
           (SELECT array_agg(version ORDER BY stream) FROM versions), \
           ARRAY(SELECT position FROM events WHERE event_id = ANY($2))";

/// One statement for the whole group: each column travels as an array and UNNEST zips them; the
/// notice is sent in the same round trip and delivered at commit.
async fn insert_and_notify(
    tx: &mut sqlx::PgConnection,
    rows: &[RecordedEvent],
) -> Result<(), StoreError> {
    let head = rows.last().expect("a group with rows").position;
    let sql = format!(
        "WITH inserted AS (INSERT INTO events ({COLUMNS}) SELECT * FROM UNNEST(\
         $1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::bigint[], \
         $8::bigint[], $9::text[], $10::text[], $11::text[], $12::uuid[], $13::uuid[], $14::text[], \
         $15::bytea[], $16::bytea[])) SELECT pg_notify($17, $18)"
    );
    bind_rows(sqlx::query(AssertSqlSafe(sql)), rows)
        .bind(NOTIFY_CHANNEL)
        .bind(head.to_string())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

const APPEND_FUNCTION: &str = "SELECT followfund_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
    $11, $12, $13, $14, $15, $16, $17)";

/// Binds the rows column by column, as arrays, in `COLUMNS` order.
fn bind_rows<'q, Q: BindArrays<'q>>(query: Q, rows: &[RecordedEvent]) -> Q {
    let numbers = |f: fn(&RecordedEvent) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let texts = |f: fn(&RecordedEvent) -> &str| {
        rows.iter()
            .map(|r| f(r).to_owned())
            .collect::<Vec<String>>()
    };
    let ids =
        |f: fn(&RecordedEvent) -> Option<Uuid>| rows.iter().map(f).collect::<Vec<Option<Uuid>>>();
    let hashes = |f: fn(&RecordedEvent) -> Hash| {
        rows.iter()
            .map(|r| f(r).0.to_vec())
            .collect::<Vec<Vec<u8>>>()
    };
    query
        .bind_array(numbers(|r| to_i64(r.position)))
        .bind_array(rows.iter().map(|r| r.event_id).collect::<Vec<Uuid>>())
        .bind_array(texts(|r| &r.stream))
        .bind_array(numbers(|r| to_i64(r.stream_version)))
        .bind_array(texts(|r| &r.event_type))
        .bind_array(
            rows.iter()
                .map(|r| r.schema_version as i32)
                .collect::<Vec<i32>>(),
        )
        .bind_array(numbers(|r| r.occurred_at.timestamp_micros()))
        .bind_array(numbers(|r| r.recorded_at.timestamp_micros()))
        .bind_array(texts(|r| &r.actor.organisation))
        .bind_array(texts(|r| &r.actor.role))
        .bind_array(
            rows.iter()
                .map(|r| r.actor.user.clone())
                .collect::<Vec<Option<String>>>(),
        )
        .bind_array(ids(|r| r.correlation_id))
        .bind_array(ids(|r| r.causation_id))
        .bind_array(texts(|r| &r.data))
        .bind_array(hashes(|r| r.prev_hash))
        .bind_array(hashes(|r| r.hash))
}

/// The two query shapes rows are bound to: a statement and a scalar function call.
trait BindArrays<'q>: Sized {
    fn bind_array<T>(self, values: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send;
}

impl<'q> BindArrays<'q> for sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    fn bind_array<T>(self, values: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        self.bind(values)
    }
}

impl<'q, O> BindArrays<'q>
    for sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
{
    fn bind_array<T>(self, values: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        self.bind(values)
    }
}

impl Written {
    /// The log's state as this process last left it, or `None` if that is not enough.
    fn state_for(&mut self, requests: &[&AppendRequest]) -> Option<LogState> {
        if self.fast_path_pause_groups > 0 {
            self.fast_path_pause_groups -= 1;
            return None;
        }
        let (head_position, head_hash) = self.head?;
        let (streams, _) = plan::keys(requests);
        let expectations_known =
            requests
                .iter()
                .flat_map(|request| &request.expected)
                .all(|(stream, expected)| {
                    *expected == ExpectedVersion::Any || self.stream_versions.contains_key(stream)
                });
        if !expectations_known {
            return None;
        }
        // A stream not seen here is taken to be new; if it is not, its version is taken and
        // the unique index refuses the insert.
        let stream_versions = streams
            .into_iter()
            .filter_map(|stream| self.stream_versions.get(&stream).map(|v| (stream, *v)))
            .collect();
        Some(LogState {
            head_position,
            head_hash,
            stream_versions,
            existing: HashMap::new(),
        })
    }

    fn record(&mut self, rows: &[RecordedEvent], head: (u64, Hash)) {
        self.make_room(rows.len());
        for row in rows {
            self.stream_versions
                .insert(row.stream.clone(), row.stream_version);
        }
        self.head = Some(head);
    }

    fn remember(&mut self, state: LogState, head: u64) {
        assert_eq!(
            state.head_position, head,
            "the state after a commit ends at its head"
        );
        self.make_room(state.stream_versions.len());
        self.stream_versions.extend(state.stream_versions);
        self.head = Some((state.head_position, state.head_hash));
    }

    fn forget(&mut self) {
        self.head = None;
        self.stream_versions.clear();
    }

    fn make_room(&mut self, adding: usize) {
        if self.stream_versions.len() + adding > STREAM_VERSIONS_KEPT_MAX {
            self.stream_versions.clear();
        }
    }
}

fn fold_row(row: &PgRow) -> Result<FoldRow<'_>, StoreError> {
    let position: i64 = row.try_get(0)?;
    let time = |index: usize| -> Result<_, StoreError> {
        let micros: i64 = row.try_get(index)?;
        chrono::DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| corrupt(position, "a time is out of range"))
    };
    Ok(FoldRow {
        position: to_u64(position),
        event_type: row.try_get(1)?,
        schema_version: row
            .try_get::<i32, _>(2)?
            .try_into()
            .map_err(|_| corrupt(position, "bad schema version"))?,
        occurred_at: time(3)?,
        data: Payload::Json(row.try_get(4)?),
    })
}

fn from_row(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get(0)?;
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
        event_id: row.try_get(1)?,
        stream: row.try_get(2)?,
        stream_version: to_u64(row.try_get(3)?),
        event_type: row.try_get(4)?,
        schema_version: row
            .try_get::<i32, _>(5)?
            .try_into()
            .map_err(|_| corrupt(position, "bad schema version"))?,
        occurred_at: time(6)?,
        recorded_at: time(7)?,
        actor: Actor {
            organisation: row.try_get(8)?,
            role: row.try_get(9)?,
            user: row.try_get(10)?,
        },
        correlation_id: row.try_get(11)?,
        causation_id: row.try_get(12)?,
        data: row.try_get(13)?,
        prev_hash: hash(14)?,
        hash: hash(15)?,
    })
}
