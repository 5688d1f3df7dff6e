//! The SQLite log's appends: one thread owns the writer connection and commits each group
//! through rusqlite, binding the events' fields where they lie. Through sqlx, every field was
//! copied into an argument list and every statement passed from a runtime thread to sqlx's
//! connection thread and back, a serial chain of about 15 µs per imported event.

use std::sync::mpsc;

use chrono::Utc;
use foldhash::HashMap;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::StoreError;
use super::checkpoint::{self, Checkpointer};
use super::event::RecordedEvent;
use super::fold_block;
use super::hash::Hash;
use super::heads::StreamHeads;
use super::plan::{self, AppendRequest, Appended, GroupPlan, LogState};
use super::sql::{corrupt, to_i64, to_u64};
use super::sqlite::{COLUMNS, EVENTS};
use super::sqlite_fold::recorded_rows;
use super::sqlite_streams::{StreamKeys, number_rows};

/// The writer's page cache (given to SQLite as a negative `cache_size`, which it reads as KiB).
/// Its unique indexes take random keys (event ids, stream names): with SQLite's default 2 MiB,
/// each insert read index pages back from the file.
const WRITER_CACHE_KIB: u64 = 64 * 1024;
/// Rows per INSERT statement are powers of two up to this, so a handful of cached statements
/// cover every group size.
const INSERT_ROWS_PER_STATEMENT_MAX: usize = 256;
/// Statements the connection keeps prepared: every INSERT size and the lookups.
const STATEMENTS_CACHED: usize = 32;
/// Events committed between WAL checkpoints: a few megabytes of WAL.
const CHECKPOINT_EVERY_EVENTS: u64 = 5_000;
/// Events committed between the writer's rewinds of the WAL to its start: a WAL of a few
/// hundred megabytes at most, where a random-keyed index dirties a page or more for every event.
const REWIND_EVERY_EVENTS: u64 = 50_000;

/// The columns an append writes, in the order `bind_row` binds them.
const INSERT_COLUMNS: &str = "position, event_id, stream_key, stream_version, event_type, \
    schema_version, occurred_at_us, recorded_at_us, actor_organisation, actor_role, actor_user, \
    correlation_id, causation_id, data, prev_hash, hash";
const INSERT_COLUMNS_COUNT: usize = 16;

/// One answer per request, and the head after the group.
pub(super) type Committed = (Vec<Result<Appended, StoreError>>, u64);

/// The way to the append thread of one SQLite file. The thread stops once every `Appends` for
/// it is dropped, after the group it is committing.
#[derive(Clone)]
pub(super) struct Appends {
    groups: mpsc::Sender<Group>,
}

struct Group {
    requests: Vec<AppendRequest>,
    reply: oneshot::Sender<Result<Committed, StoreError>>,
}

impl Appends {
    /// Opens the writer connection to the file at `path` (whose schema is up to date) and
    /// starts its thread, which asks `checkpointer` to copy the WAL back as it grows.
    pub(super) async fn start(
        path: &str,
        checkpointer: Checkpointer,
    ) -> Result<Appends, StoreError> {
        let opening = path.to_owned();
        let opened = tokio::task::spawn_blocking(move || open(&opening));
        let connection = opened.await.expect("opening does not panic")?;
        let mut writer = Writer {
            connection,
            heads: StreamHeads::default(),
            keys: StreamKeys::default(),
            checkpoints: Checkpoints {
                checkpointer,
                events_since: 0,
                events_since_rewound: 0,
            },
        };
        let (groups, queued) = mpsc::channel::<Group>();
        std::thread::Builder::new()
            .name("sqlite-append".into())
            .spawn(move || {
                while let Ok(group) = queued.recv() {
                    let requests: Vec<&AppendRequest> = group.requests.iter().collect();
                    let _ = group.reply.send(writer.commit_group(&requests));
                }
            })
            .expect("a thread starts");
        Ok(Appends { groups })
    }

    /// Commits a group in one transaction.
    pub(super) async fn commit(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Committed, StoreError> {
        let (reply, answer) = oneshot::channel();
        let group = Group { requests, reply };
        self.groups.send(group).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn open(path: &str) -> Result<Connection, StoreError> {
    let connection = checkpoint::open(path)?;
    connection.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
    connection.execute_batch(&format!(
        // FULL fsyncs the WAL at every commit: an acknowledged append survives power loss.
        "PRAGMA synchronous = FULL; \
         PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -{WRITER_CACHE_KIB}; \
         PRAGMA temp_store = MEMORY; \
         PRAGMA wal_autocheckpoint = 0;"
    ))?;
    // A multi-row INSERT keeps a statement journal so that a refused row undoes the rows before
    // it; `temp_store` keeps it in memory, where past 64 KiB SQLite spilled it to a file. The
    // checkpoint thread copies the WAL back, not the commit (`wal_autocheckpoint`).
    let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    assert_eq!(
        mode, "wal",
        "the schema's connection put the file in WAL mode"
    );
    Ok(connection)
}

/// The append thread's connection and what it remembers between groups.
struct Writer {
    connection: Connection,
    heads: StreamHeads,
    keys: StreamKeys,
    checkpoints: Checkpoints,
}

/// A group as written: its plan, the head before it, the stream versions it read from the file
/// and the stream numbers to remember.
type WrittenGroup = (GroupPlan, u64, Vec<(String, u64)>, Vec<(String, i64)>);

/// Whether a group's event ids are taken to be new or looked up before planning.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    AssumedNew,
    LookedUp,
}

impl Writer {
    fn commit_group(&mut self, requests: &[&AppendRequest]) -> Result<Committed, StoreError> {
        // Most groups bring only new ids, and the unique index on event ids checks that anyway
        // as the rows go in: looking every id up first took about a tenth of an import. A group
        // that meets a stored id, or refuses a request, is rolled back and planned again
        // knowing what is stored.
        let mut written = self.write_group(requests, Ids::AssumedNew);
        if matches!(written, Ok(None)) {
            written = self.write_group(requests, Ids::LookedUp);
        }
        let written =
            written.map(|group| group.expect("a group planned knowing its ids is written"));
        let (plan, head_before, looked_up, numbered) = match written {
            Ok(written) => written,
            Err(error) => {
                self.heads.forget();
                return Err(error);
            }
        };
        let head = plan.rows.last().map_or(head_before, |row| row.position);
        self.heads.remember(looked_up, &plan.rows, head);
        self.keys.learn(numbered);
        if self.checkpoints.committed(plan.rows.len() as u64) {
            self.rewind();
        }
        Ok((plan.answers, head))
    }

    /// Plans and writes a group in one transaction, which commits only if every row went in.
    /// `None` when ids assumed new may not be: the group must be planned again, looking them up.
    fn write_group(
        &mut self,
        requests: &[&AppendRequest],
        ids: Ids,
    ) -> Result<Option<WrittenGroup>, StoreError> {
        // IMMEDIATE takes the write lock now, so what is read below cannot change before commit.
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (state, looked_up) = load_state(&tx, requests, &mut self.heads, ids)?;
        let head_before = state.head_position;
        let plan = plan::plan(state, requests, Utc::now());
        let assumed = ids == Ids::AssumedNew;
        // A refused request may be the retry of one whose first write satisfied it.
        if assumed && plan.answers.iter().any(Result::is_err) {
            return Ok(None);
        }
        let streams: Vec<&str> = plan.rows.iter().map(|row| row.stream.as_str()).collect();
        let (keys, numbered) = number_rows(&tx, &self.keys, &streams)?;
        match insert_rows(&tx, &plan.rows, &keys) {
            Err(error) if assumed && is_event_id_taken(&error) => return Ok(None),
            inserted => inserted?,
        }
        insert_blocks(&tx, requests, &plan)?;
        tx.commit()?;
        Ok(Some((plan, head_before, looked_up, numbered)))
    }

    /// Rewinds the WAL to its start. Holds up only the appends queued behind this one; the
    /// group's answer is final. RESTART, not TRUNCATE: the next commits overwrite the file from
    /// its start, where a WAL grown again from empty had the kernel allocate and zero every page
    /// anew (importing the region year took 44.8 s so, 31.7 to 36.2 s this way).
    fn rewind(&mut self) {
        let rewound = self
            .connection
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
                row.get::<_, i64>(0)
            });
        match rewound {
            Ok(0) => {}
            // Busy: the checkpoint thread is copying, or a reader holds the WAL's start.
            Ok(_) => self.checkpoints.rewind_soon(),
            Err(error) => {
                tracing::warn!(%error, "rewinding the WAL failed; the next commit tries again");
                self.checkpoints.rewind_soon();
            }
        }
    }
}

/// When the WAL is copied back into the database file: after a few thousand events, by a thread
/// of its own rather than by the commit that happens to cross SQLite's threshold. While appends
/// keep coming, those copies never reach the WAL's end, and SQLite starts a WAL afresh only
/// after a copy that did: now and then, the writer finishes the copy and rewinds the WAL to its start.
struct Checkpoints {
    checkpointer: Checkpointer,
    events_since: u64,
    events_since_rewound: u64,
}

impl Checkpoints {
    /// Counts a commit's events; whether the writer should rewind the WAL now.
    fn committed(&mut self, events: u64) -> bool {
        self.events_since += events;
        if self.events_since >= CHECKPOINT_EVERY_EVENTS {
            self.events_since = 0;
            self.checkpointer.ask();
        }
        self.events_since_rewound += events;
        let rewind = self.events_since_rewound >= REWIND_EVERY_EVENTS;
        if rewind {
            self.events_since_rewound = 0;
        }
        rewind
    }

    /// Has the next commit try the rewind again.
    fn rewind_soon(&mut self) {
        self.events_since_rewound = REWIND_EVERY_EVENTS;
    }
}

/// An insert refused because an event id is already in the log.
fn is_event_id_taken(error: &StoreError) -> bool {
    let StoreError::Sqlite(error) = error else {
        return false;
    };
    let rusqlite::Error::SqliteFailure(failure, Some(message)) = error.as_ref() else {
        return false;
    };
    failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        && message.contains("events.event_id")
}

/// What the planner needs under the write lock, and the versions read from the file rather
/// than remembered (0 for a stream the file does not hold).
fn load_state(
    tx: &Transaction<'_>,
    requests: &[&AppendRequest],
    heads: &mut StreamHeads,
    ids: Ids,
) -> Result<(LogState, Vec<(String, u64)>), StoreError> {
    let mut state = LogState::default();
    let mut head =
        tx.prepare_cached("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")?;
    let mut rows = head.query([])?;
    if let Some(row) = rows.next()? {
        let position: i64 = row.get(0)?;
        state.head_position = to_u64(position);
        let hash: Vec<u8> = row.get(1)?;
        state.head_hash =
            Hash::from_slice(&hash).ok_or_else(|| corrupt(position, "hash is not 32 bytes"))?;
    }
    let (streams, event_ids) = plan::keys(requests);
    let (known, unknown) = heads.recall(state.head_position, streams);
    state.stream_versions = known;
    let mut looked_up = Vec::with_capacity(unknown.len());
    if !unknown.is_empty() {
        let found = stream_versions(tx, &unknown)?;
        for stream in unknown {
            let version = found.get(&stream).copied().unwrap_or(0);
            looked_up.push((stream, version));
        }
        state.stream_versions.extend(found);
    }
    if ids == Ids::LookedUp {
        state.existing = stored_events(tx, &event_ids)?;
    }
    Ok((state, looked_up))
}

/// The versions of those of `streams` the file holds.
fn stream_versions(
    tx: &Transaction<'_>,
    streams: &[String],
) -> Result<HashMap<String, u64>, StoreError> {
    let mut found = tx.prepare_cached(
        "SELECT s.stream, \
             COALESCE((SELECT MAX(e.stream_version) FROM events e WHERE e.stream_key = s.stream_key), 0) \
         FROM streams s WHERE s.stream IN (SELECT value FROM json_each(?1))",
    )?;
    let streams = serde_json::to_string(streams).expect("strings serialise");
    let rows = found.query_map([streams], |row| {
        Ok((row.get::<_, String>(0)?, to_u64(row.get(1)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The stored events with any of `event_ids`.
fn stored_events(
    tx: &Transaction<'_>,
    event_ids: &[Uuid],
) -> Result<HashMap<Uuid, RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {EVENTS} WHERE e.event_id IN (SELECT value FROM json_each(?1))"
    );
    let ids = serde_json::to_string(event_ids).expect("uuids serialise");
    let stored = recorded_rows(tx, &sql, [ids])?;
    Ok(stored
        .into_iter()
        .map(|event| (event.event_id, event))
        .collect())
}

/// Inserts `rows` (with their streams' numbers) in statements of a power of two rows each.
fn insert_rows(
    tx: &Transaction<'_>,
    mut rows: &[RecordedEvent],
    mut keys: &[i64],
) -> Result<(), StoreError> {
    assert_eq!(rows.len(), keys.len(), "one stream number per row");
    while !rows.is_empty() {
        let take = chunk_len(rows.len());
        let mut insert = tx.prepare_cached(insert_sql(take))?;
        for (index, (row, key)) in rows[..take].iter().zip(&keys[..take]).enumerate() {
            bind_row(&mut insert, index * INSERT_COLUMNS_COUNT, row, *key)?;
        }
        let inserted = insert.raw_execute()?;
        assert_eq!(inserted, take, "every row of the statement went in");
        (rows, keys) = (&rows[take..], &keys[take..]);
    }
    Ok(())
}

/// Inserts the blocks of the events the group writes, in the same transaction as their rows.
fn insert_blocks(
    tx: &Transaction<'_>,
    requests: &[&AppendRequest],
    plan: &GroupPlan,
) -> Result<(), StoreError> {
    let Some(first) = plan.rows.first() else {
        return Ok(());
    };
    let events = plan::written_events(requests, plan);
    let mut insert = tx.prepare_cached(
        "INSERT INTO fold_blocks (first_position, events, bytes) VALUES (?1, ?2, ?3)",
    )?;
    for block in fold_block::blocks(first.position, events) {
        let events = i64::try_from(block.events).expect("a block holds at most ten thousand");
        insert.execute((to_i64(block.first_position), events, &block.bytes))?;
    }
    Ok(())
}

/// The largest power of two no greater than `remaining` or the statement limit.
fn chunk_len(remaining: usize) -> usize {
    let fit = remaining.min(INSERT_ROWS_PER_STATEMENT_MAX);
    1 << fit.ilog2()
}

fn insert_sql(rows: usize) -> &'static str {
    static SQL: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        (0..=INSERT_ROWS_PER_STATEMENT_MAX.ilog2())
            .map(|power| {
                let tuple = format!("({})", vec!["?"; INSERT_COLUMNS_COUNT].join(", "));
                let tuples = vec![tuple; 1 << power].join(", ");
                format!("INSERT INTO events ({INSERT_COLUMNS}) VALUES {tuples}")
            })
            .collect()
    });
    assert!(rows.is_power_of_two() && rows <= INSERT_ROWS_PER_STATEMENT_MAX);
    &SQL[rows.ilog2() as usize]
}

/// Binds one row's columns after the first `before` parameters. SQLite copies each value as it
/// is bound, so ids are spelled into one buffer on the stack.
fn bind_row(
    insert: &mut rusqlite::CachedStatement<'_>,
    before: usize,
    row: &RecordedEvent,
    stream_key: i64,
) -> Result<(), StoreError> {
    let mut id = Uuid::encode_buffer();
    let mut bind = |column: usize, value: &dyn rusqlite::ToSql| {
        insert.raw_bind_parameter(before + column, value)
    };
    bind(1, &to_i64(row.position))?;
    bind(2, &&*row.event_id.hyphenated().encode_lower(&mut id))?;
    bind(3, &stream_key)?;
    bind(4, &to_i64(row.stream_version))?;
    bind(5, &row.event_type)?;
    bind(6, &i64::from(row.schema_version))?;
    bind(7, &row.occurred_at.timestamp_micros())?;
    bind(8, &row.recorded_at.timestamp_micros())?;
    bind(9, &row.actor.organisation)?;
    bind(10, &row.actor.role)?;
    bind(11, &row.actor.user)?;
    let link = |id: Option<Uuid>| id.map(|id| id.hyphenated().to_string());
    bind(12, &link(row.correlation_id))?;
    bind(13, &link(row.causation_id))?;
    bind(14, &row.data)?;
    bind(15, &&row.prev_hash.0[..])?;
    bind(16, &&row.hash.0[..])?;
    Ok(())
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
