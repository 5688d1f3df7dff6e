//! Reading a stored snapshot out of an SQLite file: on a blocking thread, one read transaction,
//! each chunk copied by SQLite's incremental blob reads straight from its pages into a buffer
//! that the snapshot's readers hand back when they are done with it. Through sqlx each 8 MiB
//! chunk was copied twice into memory fresh from the kernel, and zeroing those pages took more
//! of a restart than decoding the state.

use rusqlite::{Connection, MAIN_DB, OptionalExtension};

use super::StoreError;
use super::beside::{ChunkSender, SnapshotReader, Spent, chunk_missing};
use super::sql::to_u64;
use super::sqlite_fold::FoldReader;

/// The header of the snapshot called `name` and a reader of its state, fed chunk by chunk by a
/// blocking thread that holds the transaction the header was read in; `None` when there is no
/// such snapshot.
pub async fn open(fold: &FoldReader, name: &str) -> Result<Option<SnapshotReader>, StoreError> {
    let (opened, header) = tokio::sync::oneshot::channel();
    let (fold, name) = (fold.clone(), name.to_owned());
    tokio::task::spawn_blocking(move || {
        let connection = match fold.connection() {
            Ok(connection) => connection,
            Err(error) => return drop(opened.send(Err(error))),
        };
        if read(&connection, &name, opened).is_ok() {
            fold.put_back(connection);
        }
    });
    header
        .await
        .expect("the reading thread answers before it stops")
}

/// A snapshot's header row: version, position, the state when kept whole, and the number of
/// chunks (0 when kept whole).
type Header = (i64, i64, Vec<u8>, i64);

/// Reads the header, answers `opened`, then feeds the chunks; an error leaves the connection
/// in a state not worth keeping.
fn read(
    connection: &Connection,
    name: &str,
    opened: tokio::sync::oneshot::Sender<Result<Option<SnapshotReader>, StoreError>>,
) -> Result<(), StoreError> {
    // A deferred transaction takes its read snapshot at the first SELECT: the header's.
    connection.execute_batch("BEGIN")?;
    let header = connection
        .query_row(
            "SELECT version, position, state, chunks FROM snapshots WHERE name = ?1",
            [name],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional();
    let (version, position, state, chunks): Header = match header {
        Ok(Some(header)) => header,
        Ok(None) => {
            opened.send(Ok(None)).ok();
            return connection.execute_batch("COMMIT").map_err(Into::into);
        }
        Err(error) => {
            let error = StoreError::from(error);
            opened.send(Err(error.clone())).ok();
            return Err(error);
        }
    };
    let (sender, spent, reader) = SnapshotReader::recycling(version, to_u64(position));
    if opened.send(Ok(Some(reader))).is_err() {
        return connection.execute_batch("COMMIT").map_err(Into::into);
    }
    // A snapshot from before chunking holds its state in its own row.
    let fed = match chunks {
        0 => {
            sender.pass_blocking(Ok(state));
            Ok(())
        }
        _ => feed(connection, name, chunks, &sender, &spent),
    };
    if let Err(error) = &fed {
        sender.pass_blocking(Err(error.clone()));
    }
    fed.and_then(|()| connection.execute_batch("COMMIT").map_err(Into::into))
}

/// Passes chunks 0 to `chunks` of snapshot `name` in order, each read into a spent buffer when
/// one has come back; stops early when the readers have gone.
fn feed(
    connection: &Connection,
    name: &str,
    chunks: i64,
    sender: &ChunkSender,
    spent: &Spent,
) -> Result<(), StoreError> {
    let mut statement = connection
        .prepare("SELECT chunk, rowid FROM snapshot_chunks WHERE name = ?1 ORDER BY chunk")?;
    let mut rows = statement.query([name])?;
    for expected in 0..chunks {
        let row = rows.next()?;
        let (chunk, rowid): (i64, i64) = match row {
            Some(row) => (row.get(0)?, row.get(1)?),
            None => (chunks, 0),
        };
        if chunk != expected {
            return Err(chunk_missing(expected, chunks));
        }
        let blob = connection.blob_open(MAIN_DB, c"snapshot_chunks", c"bytes", rowid, true)?;
        let mut bytes = spent.take();
        // A spent buffer held a full chunk, as most are: resizing it to another writes nothing.
        bytes.resize(blob.len(), 0);
        blob.read_at_exact(&mut bytes, 0)?;
        if !sender.pass_blocking(Ok(bytes)) {
            return Ok(());
        }
    }
    Ok(())
}
