//! Reads of whole events from an SQLite log, on blocking threads through rusqlite. A replay's
//! pages hand every row to the caller borrowed from SQLite's own memory. Through sqlx, each
//! column of each row was copied, and each row crossed from its connection's thread to the
//! reading task on its own; a national replay spent more time on that than on folding.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::StoreError;
use super::event::{Actor, FoldRow, Payload, RecordedEvent};
use super::fold_block::{self, BLOCK_EVENTS_MAX, WINDOW_BYTES, Window};
use super::hash::Hash;
use super::pieces::Pieces;
use super::sql::{FOLD_COLUMNS, corrupt, to_i64, to_u64};
use uuid::Uuid;

/// Connections kept open between pages; more are opened while more pages are read at once.
const FOLD_CONNECTIONS_KEPT: usize = 4;
const BUSY_TIMEOUT_MS: u64 = 10_000;

/// Read-only connections to one SQLite file, for replay pages.
#[derive(Clone)]
pub struct FoldReader {
    path: Arc<str>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl FoldReader {
    pub fn new(path: &str) -> FoldReader {
        FoldReader {
            path: path.into(),
            idle: Arc::default(),
        }
    }

    /// The events at positions `from` to `until` (exclusive), each passed to `read` as it is
    /// read, in position order.
    pub async fn read<T: Send + 'static>(
        &self,
        from: u64,
        until: u64,
        read: fn(FoldRow<'_>) -> T,
    ) -> Result<Vec<T>, StoreError> {
        self.on_connection(move |connection| {
            let mut page = Pieces::whole(page_events(from, until));
            read_page(connection, from, until, read, &mut page)?;
            Ok(page.finish())
        })
        .await
    }

    /// As [`FoldReader::read`], handing the events to `pieces` a piece at a time (see
    /// [`Pieces`]); stops early if the receiver is gone.
    pub async fn read_pieces<T: Send + 'static>(
        &self,
        from: u64,
        until: u64,
        read: fn(FoldRow<'_>) -> T,
        pieces: tokio::sync::mpsc::Sender<Vec<T>>,
    ) -> Result<(), StoreError> {
        self.on_connection(move |connection| {
            let mut hand_on = |piece| pieces.blocking_send(piece).is_ok();
            let mut page = Pieces::handed_on(page_events(from, until), &mut hand_on);
            read_page(connection, from, until, read, &mut page)?;
            page.finish();
            Ok(())
        })
        .await
    }

    /// The events `sql` selects (its columns `sqlite::COLUMNS`) with `parameters`, in its order.
    pub(super) async fn events(
        &self,
        sql: String,
        parameters: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.on_connection(move |connection| {
            recorded_rows(connection, &sql, rusqlite::params_from_iter(parameters))
        })
        .await
    }

    /// Runs `read` on a blocking thread with one of the connections.
    async fn on_connection<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.clone();
        let read = tokio::task::spawn_blocking(move || {
            let connection = reader.connection()?;
            let read = read(&connection);
            // A connection that failed may be in any state: it is dropped, not kept.
            if read.is_ok() {
                reader.put_back(connection);
            }
            read
        });
        read.await.expect("reading does not panic")
    }

    pub(super) fn connection(&self) -> Result<Connection, StoreError> {
        if let Some(connection) = self.idle.lock().expect("not poisoned").pop() {
            return Ok(connection);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(&*self.path, flags)?;
        connection.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
        Ok(connection)
    }

    pub(super) fn put_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().expect("not poisoned");
        if idle.len() < FOLD_CONNECTIONS_KEPT {
            idle.push(connection);
        }
    }
}

/// How many events the positions `from` to `until` (exclusive) hold, to make room for.
fn page_events(from: u64, until: u64) -> usize {
    usize::try_from(until.saturating_sub(from)).unwrap_or(0)
}

thread_local! {
    /// A reading thread's window onto blocks, kept from page to page.
    static WINDOW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The events at positions `from` to `until` (exclusive): from the blocks that cover them, and
/// from their rows where no block does (events appended before blocks were kept).
fn read_page<T>(
    connection: &Connection,
    from: u64,
    until: u64,
    read: fn(FoldRow<'_>) -> T,
    page: &mut Pieces<'_, T>,
) -> Result<(), StoreError> {
    // A block's size and type are read from its row's header; its bytes through a blob handle.
    let mut blocks = connection.prepare_cached(
        "SELECT first_position, events, length(bytes), typeof(bytes) = 'blob' FROM fold_blocks \
         WHERE first_position > ?1 AND first_position < ?2 ORDER BY first_position",
    )?;
    let earliest = from.saturating_sub(BLOCK_EVENTS_MAX as u64);
    let mut rows = blocks.query((to_i64(earliest), to_i64(until)))?;
    let mut next = from;
    while let Some(row) = rows.next()?
        && next < until
        && !page.stopped()
    {
        let (first, events) = (to_u64(row.get(0)?), to_u64(row.get(1)?));
        if first + events <= next {
            continue;
        }
        if first > next {
            read_rows(connection, next, first, read, page)?;
        }
        if !row.get::<_, bool>(3)? {
            return Err(corrupt(
                to_i64(first),
                "a block holds something other than bytes",
            ));
        }
        let (len, rowid) = (
            usize::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
            to_i64(first),
        );
        let blob = connection.blob_open(MAIN_DB, c"fold_blocks", c"bytes", rowid, true)?;
        let mut read_at = |offset, into: &mut [u8]| Ok(blob.read_at_exact(into, offset)?);
        WINDOW.with_borrow_mut(|buffer| {
            let block = Window::new(len, &mut read_at, buffer, WINDOW_BYTES);
            fold_block::read(block, first, events, (next, until), read, page)
        })?;
        next = (first + events).min(until);
    }
    if next < until {
        read_rows(connection, next, until, read, page)?;
    }
    Ok(())
}

/// The events at positions `from` to `until` (exclusive) from their rows.
fn read_rows<T>(
    connection: &Connection,
    from: u64,
    until: u64,
    read: fn(FoldRow<'_>) -> T,
    page: &mut Pieces<'_, T>,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT {FOLD_COLUMNS} FROM events WHERE position >= ?1 AND position < ?2 ORDER BY position"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let mut rows = statement.query((to_i64(from), to_i64(until)))?;
    while let Some(row) = rows.next()? {
        let position: i64 = row.get(0)?;
        let text = |index: usize| -> Result<&str, StoreError> {
            let value = row.get_ref(index)?;
            value
                .as_str()
                .map_err(|_| corrupt(position, "a text column holds something else"))
        };
        let schema_version = u32::try_from(row.get::<_, i64>(2)?)
            .map_err(|_| corrupt(position, "bad schema version"))?;
        let occurred_at = chrono::DateTime::from_timestamp_micros(row.get(3)?)
            .ok_or_else(|| corrupt(position, "a time is out of range"))?;
        let data = Payload::Json(text(4)?);
        let row = FoldRow {
            position: to_u64(position),
            event_type: text(1)?,
            schema_version,
            occurred_at,
            data,
        };
        page.push(read(row), data.len_bytes());
        if page.stopped() {
            break;
        }
    }
    Ok(())
}

/// The events `sql` selects on `connection` (its columns `sqlite::COLUMNS`), in its order.
pub(super) fn recorded_rows(
    connection: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(parameters)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(recorded(row)?);
    }
    Ok(events)
}

/// A stored event, from a row of `sqlite::COLUMNS`.
fn recorded(row: &rusqlite::Row<'_>) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.get(0)?;
    let uuid = |index: usize| -> Result<Option<Uuid>, StoreError> {
        let text: Option<String> = row.get(index)?;
        text.map(|text| {
            Uuid::parse_str(&text).map_err(|_| corrupt(position, "an id is not a UUID"))
        })
        .transpose()
    };
    let hash = |index: usize| -> Result<Hash, StoreError> {
        let bytes: Vec<u8> = row.get(index)?;
        Hash::from_slice(&bytes).ok_or_else(|| corrupt(position, "a hash is not 32 bytes"))
    };
    let time = |index: usize| -> Result<_, StoreError> {
        chrono::DateTime::from_timestamp_micros(row.get(index)?)
            .ok_or_else(|| corrupt(position, "a time is out of range"))
    };
    Ok(RecordedEvent {
        position: to_u64(position),
        event_id: uuid(1)?.ok_or_else(|| corrupt(position, "event_id is missing"))?,
        stream: row.get(2)?,
        stream_version: to_u64(row.get(3)?),
        event_type: row.get(4)?,
        schema_version: u32::try_from(row.get::<_, i64>(5)?)
            .map_err(|_| corrupt(position, "bad schema version"))?,
        occurred_at: time(6)?,
        recorded_at: time(7)?,
        actor: Actor {
            organisation: row.get(8)?,
            role: row.get(9)?,
            user: row.get(10)?,
        },
        correlation_id: uuid(11)?,
        causation_id: uuid(12)?,
        data: row.get(13)?,
        prev_hash: hash(14)?,
        hash: hash(15)?,
    })
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(Arc::new(error))
    }
}
