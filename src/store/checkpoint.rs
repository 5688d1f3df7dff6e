//! Moves the SQLite log's write-ahead log into the database file on a thread of its own. Left to
//! SQLite, the commit that pushes the WAL past a thousand pages copies it back itself, so an
//! append waited for pages of earlier appends to be written out: during a large import that was
//! more than half of every commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

const BUSY_TIMEOUT_MS: u64 = 10_000;

/// How long a TRUNCATE waits for readers. It holds the writer's lock while it waits, so appends
/// wait too; a TRUNCATE still busy after it is tried again.
const TRUNCATE_WAIT: Duration = Duration::from_millis(500);

/// How long a TRUNCATE that found the WAL busy waits before it is tried again unasked: after a
/// snapshot's save no commit may come for hours, and until the WAL is emptied every process that
/// opens the file first reads all of it.
const TRUNCATE_RETRY: Duration = Duration::from_secs(1);

/// Asks the checkpoint thread to run once the current commit is done; asks made while it runs
/// are folded into the next run.
#[derive(Clone)]
pub struct Checkpointer {
    ask: mpsc::SyncSender<()>,
    /// Whether the next run also empties the WAL file.
    truncate: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts the thread for the file at `path`. It stops once every `Checkpointer` for it is
    /// dropped.
    pub fn start(path: &str) -> Checkpointer {
        let (ask, asked) = mpsc::sync_channel(1);
        let truncate = Arc::new(AtomicBool::new(false));
        let (path, asked_truncate) = (path.to_owned(), truncate.clone());
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&path, asked, &asked_truncate))
            .expect("a thread starts");
        Checkpointer { ask, truncate }
    }

    /// Asks for a checkpoint after a commit.
    pub fn ask(&self) {
        // Full means one is already asked for, which covers this commit too.
        let _ = self.ask.try_send(());
    }

    /// Asks for a checkpoint that also empties the WAL file, after a commit that wrote far more
    /// than appends do (a snapshot). The next process to open the file rebuilds its index of
    /// the WAL by reading the whole file, and until a checkpoint reaches the WAL's end every read
    /// looks its pages up there: after a national snapshot, 1.5 GB of WAL made a restart's load
    /// of that snapshot 4.35 s where 3.8 to 4.0 s without.
    pub fn ask_truncate(&self) {
        // Set before asking: a run already asked for reads it when it starts.
        self.truncate.store(true, Ordering::Release);
        self.ask();
    }
}

fn run(path: &str, asked: mpsc::Receiver<()>, truncate: &AtomicBool) {
    let mut connection = None;
    // Only a TRUNCATE that found readers is tried again unasked: a failure waits for the next
    // commit, rather than warning every second while the file cannot be opened.
    let mut truncate_busy = false;
    while next_run(&asked, truncate_busy) {
        truncate_busy = false;
        if connection.is_none() {
            connection = open(path)
                .and_then(|open| open.busy_timeout(TRUNCATE_WAIT).map(|()| open))
                .inspect_err(|error| tracing::warn!(%error, "the checkpoint connection failed"))
                .ok();
        }
        let Some(open) = &connection else {
            continue;
        };
        // PASSIVE copies what it can without waiting for readers or holding up the writer;
        // what it leaves is copied next time.
        let mut checkpoint = open.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        // TRUNCATE waits for the writer and the readers, but after PASSIVE has copied the
        // bulk, only for what came since. Still busy after the wait, it is tried again.
        if checkpoint.is_ok() && truncate.swap(false, Ordering::AcqRel) {
            let busy = open.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            });
            if busy.as_ref().is_ok_and(|busy| *busy != 0) {
                truncate.store(true, Ordering::Release);
                truncate_busy = true;
            }
            checkpoint = busy.map(drop);
        }
        if let Err(error) = checkpoint {
            tracing::warn!(%error, "a WAL checkpoint failed; the next commit asks again");
            connection = None;
        }
    }
}

/// Waits for an ask, or after a busy TRUNCATE for at most [`TRUNCATE_RETRY`]. False once every
/// `Checkpointer` is dropped.
fn next_run(asked: &mpsc::Receiver<()>, truncate_busy: bool) -> bool {
    if !truncate_busy {
        return asked.recv().is_ok();
    }
    match asked.recv_timeout(TRUNCATE_RETRY) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => true,
        Err(mpsc::RecvTimeoutError::Disconnected) => false,
    }
}

/// A read-write connection to the file at `path` that waits out other writers.
pub(super) fn open(path: &str) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    Ok(connection)
}
