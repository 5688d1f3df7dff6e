//! A replay's reads of an SQLite log: each page is read on a blocking thread through rusqlite,
//! and every row is handed to the caller borrowed from SQLite's own memory. Through sqlx, each
//! column of each row was copied, and each row crossed from its connection's thread to the
//! reading task on its own; a national replay spent more time on that than on folding.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::event::FoldRow;
use super::sql::{FOLD_COLUMNS, corrupt, to_i64, to_u64};

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
        let reader = self.clone();
        let page = tokio::task::spawn_blocking(move || {
            let connection = reader.connection()?;
            let page = read_page(&connection, from, until, read);
            // A connection that failed may be in any state: it is dropped, not kept.
            if page.is_ok() {
                reader.put_back(connection);
            }
            page
        });
        page.await.expect("reading a page does not panic")
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

fn read_page<T>(
    connection: &Connection,
    from: u64,
    until: u64,
    read: fn(FoldRow<'_>) -> T,
) -> Result<Vec<T>, StoreError> {
    let sql = format!(
        "SELECT {FOLD_COLUMNS} FROM events WHERE position >= ?1 AND position < ?2 ORDER BY position"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let mut rows = statement.query((to_i64(from), to_i64(until)))?;
    let capacity = usize::try_from(until.saturating_sub(from)).unwrap_or(0);
    let mut page = Vec::with_capacity(capacity);
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
        page.push(read(FoldRow {
            position: to_u64(position),
            event_type: text(1)?,
            schema_version,
            occurred_at,
            data: text(4)?,
        }));
    }
    Ok(page)
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(Arc::new(error))
    }
}
