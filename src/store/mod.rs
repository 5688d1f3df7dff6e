//! The append-only, tamper-evident event log, on SQLite (embedded default) or PostgreSQL.
//!
//! Appends from every task go through one appender that commits them in groups; positions are
//! gap-free and commit-ordered, each event is chained to the one before by SHA-256, and an
//! acknowledged append has been fsynced. No code path updates or deletes an event.

mod appender;
mod beside;
mod checkpoint;
mod event;
mod fold_block;
mod hash;
mod heads;
mod pack;
mod pieces;
mod plan;
mod postgres;
mod sql;
mod sqlite;
mod sqlite_append;
mod sqlite_fold;
mod sqlite_snapshot;
mod sqlite_streams;
mod subscription;
mod verify;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

pub use beside::{
    SNAPSHOT_CHUNK_BYTES, Snapshot, SnapshotPart, SnapshotReader, SnapshotWriter, TokenRecord,
};
pub use event::{
    ACTOR_FIELD_BYTES_MAX, Actor, EVENT_PAYLOAD_BYTES_MAX, EventError, ExpectedVersion, FoldEvent,
    FoldRow, NewEvent, Payload, RecordedEvent, STREAM_NAME_BYTES_MAX,
};
pub use hash::{Hash, chain_hash};
pub use plan::{AppendRequest, Appended};
pub use subscription::Subscription;
pub use verify::{Fault, VerifyReport};

/// The most events one append may carry.
pub const APPEND_BATCH_EVENTS_MAX: usize = 10_000;
/// The most events the appender commits in one transaction (requests are never split).
pub const GROUP_EVENTS_MAX: usize = 10_000;
/// The most events one read returns.
pub const READ_PAGE_EVENTS_MAX: usize = 10_000;
/// Pages at least this long are read as two halves at once.
const SPLIT_READ_EVENTS_MIN: u64 = 2_000;
/// Appends waiting for the appender before callers are made to wait.
const APPEND_QUEUE_REQUESTS_MAX: usize = 4_096;

/// Why the store could not do what was asked.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// A stream was not at the version the writer expected; nothing was written.
    #[error(
        "stream `{stream}` is at version {actual}, not {expected} as expected: read it again and retry the command"
    )]
    Conflict {
        /// The stream.
        stream: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// What the log holds.
        actual: u64,
    },
    /// An event id already in the log was sent with different content.
    #[error(
        "event id {event_id} is already in the log at position {position} with different content: an event id is an idempotency key, so give a new event a new id"
    )]
    EventIdReused {
        /// The id.
        event_id: Uuid,
        /// Where the stored event is.
        position: u64,
    },
    /// Some, but not all, events of a batch are already in the log.
    #[error(
        "event {event_id} is already in the log but other events of this batch are not: resend the original batch unchanged, or give new events new ids"
    )]
    PartlyAppended {
        /// The first event found stored.
        event_id: Uuid,
    },
    /// The same id appears twice in one batch.
    #[error("event id {event_id} appears twice in one batch: every event needs its own id")]
    DuplicateInBatch {
        /// The id.
        event_id: Uuid,
    },
    /// An append with no events.
    #[error("an append needs at least one event")]
    EmptyBatch,
    /// An append with too many events.
    #[error("an append may carry at most {max} events, this one has {events}: split it", max = APPEND_BATCH_EVENTS_MAX)]
    BatchTooLarge {
        /// How many were sent.
        events: usize,
    },
    /// A call into the SQLite file (an append, a replay's read) failed; whether a failed
    /// append was written is unknown, so retry it with the same event ids.
    #[error("the SQLite file failed: {0}")]
    Sqlite(Arc<rusqlite::Error>),
    /// The database could not be reached or failed; whether a failed append was written is
    /// unknown, so retry it with the same event ids.
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
    /// The schema could not be brought up to date.
    #[error("migrating the database failed: {0}")]
    Migrate(Arc<sqlx::migrate::MigrateError>),
    /// A stored row could not be read back (a damaged or altered database).
    #[error(
        "the event at position {position} could not be read: {reason}; run `followfund verify`"
    )]
    Corrupt {
        /// Where.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The database URL is not one this build understands.
    #[error("unsupported database URL `{0}`: use sqlite://PATH (or a file path) or postgres://…")]
    UnsupportedUrl(String),
    /// The appender has stopped (the store is shutting down).
    #[error("the store is shut down")]
    Closed,
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> StoreError {
        StoreError::Migrate(Arc::new(error))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        StoreError::Database(Arc::new(error))
    }
}

/// How the store commits appends.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// Commit queued appends together in one transaction (on by default). Off, every append is
    /// its own transaction: the naive baseline the benchmark compares against.
    pub group_commit: bool,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { group_commit: true }
    }
}

/// Which database holds the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// One SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// Counts and bounds of the log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// How many events.
    pub events: u64,
    /// The last position.
    pub head_position: u64,
    /// How many streams.
    pub streams: u64,
    /// Events per type, by type name.
    pub events_by_type: Vec<(String, u64)>,
}

/// A handle on the log; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    reader: Reader,
    jobs: mpsc::Sender<appender::Job>,
    head: watch::Receiver<u64>,
}

#[derive(Clone)]
enum Reader {
    Sqlite(sqlite::SqliteLog),
    Postgres(postgres::PostgresLog),
}

impl Store {
    /// Opens (creating and migrating if needed) the log at `url`: `postgres://…`, `sqlite://PATH`
    /// or a plain file path.
    pub async fn open(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let (reader, writer) = if url.starts_with("postgres://") || url.starts_with("postgresql://")
        {
            let log = postgres::PostgresLog::open(url).await?;
            (
                Reader::Postgres(log.clone()),
                appender::Writer::Postgres(log),
            )
        } else if let Some(path) = sqlite_path(url) {
            let log = sqlite::SqliteLog::open(path).await?;
            (Reader::Sqlite(log.clone()), appender::Writer::Sqlite(log))
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let head_position = match &reader {
            Reader::Sqlite(log) => log.head_position().await?,
            Reader::Postgres(log) => log.head_position().await?,
        };
        let (head_tx, head_rx) = watch::channel(head_position);
        if let Reader::Postgres(log) = &reader {
            log.listen(head_tx.clone()).await?;
        }
        let (jobs_tx, jobs_rx) = mpsc::channel(APPEND_QUEUE_REQUESTS_MAX);
        tokio::spawn(appender::run(writer, jobs_rx, head_tx, options));
        Ok(Store {
            inner: Arc::new(Inner {
                reader,
                jobs: jobs_tx,
                head: head_rx,
            }),
        })
    }

    /// Which database this store writes to.
    pub fn backend(&self) -> BackendKind {
        match self.inner.reader {
            Reader::Sqlite(_) => BackendKind::Sqlite,
            Reader::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Appends `events` atomically, after checking each stream in `expected` is at that
    /// version. Returns the position of each event; a retry of an append already made returns
    /// the original positions and writes nothing. Returns once the events are durable.
    pub async fn append(
        &self,
        events: Vec<NewEvent>,
        expected: Vec<(String, ExpectedVersion)>,
    ) -> Result<Appended, StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyBatch);
        }
        if events.len() > APPEND_BATCH_EVENTS_MAX {
            return Err(StoreError::BatchTooLarge {
                events: events.len(),
            });
        }
        let (reply, answer) = oneshot::channel();
        let job = appender::Job {
            request: AppendRequest { events, expected },
            reply,
        };
        self.inner
            .jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Up to `limit` events from position `from` on, in position order. On PostgreSQL a large
    /// page is read as two halves at once, on two connections, so that two server processes
    /// produce rows in parallel (measured: 270,000 to 440,000 events/s read and decoded); on
    /// SQLite the halves only contend, and reading them apart was slower.
    pub async fn read_all(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from = from.max(1);
        let limit = limit.min(READ_PAGE_EVENTS_MAX) as u64;
        if limit < SPLIT_READ_EVENTS_MIN || self.backend() == BackendKind::Sqlite {
            return self.read_range(from, from + limit).await;
        }
        let middle = from + limit / 2;
        let (first, second) = tokio::join!(
            self.read_range(from, middle),
            self.read_range(middle, from + limit)
        );
        let mut first = first?;
        // Positions are gap-free and become visible in order, so a short first half means the
        // head was inside it when it was read; a second half read a moment later may hold later
        // commits, and would leave a gap.
        if first.len() as u64 == middle - from {
            first.extend(second?);
        }
        Ok(first)
    }

    /// The events from position `from` on, at most `limit`, as a replay folds them: each is
    /// passed to `read` borrowed from the row it was read from, and the page holds what `read`
    /// made of it. Positions become visible in order, so the page has no gap.
    pub async fn read_fold<T: Send + 'static>(
        &self,
        from: u64,
        limit: usize,
        read: fn(FoldRow<'_>) -> T,
    ) -> Result<Vec<T>, StoreError> {
        let (from, until) = fold_range(from, limit);
        match &self.inner.reader {
            Reader::Sqlite(log) => log.read_fold_range(from, until, read).await,
            Reader::Postgres(log) => log.read_fold_range(from, until, read).await,
        }
    }

    /// As [`Store::read_fold`], handing the events to `pieces` as they are read, in position
    /// order: in pieces where SQLite's blocks hold large payloads (see [`pieces`]), in one
    /// from PostgreSQL. Stops early if the receiver is gone.
    pub async fn read_fold_pieces<T: Send + 'static>(
        &self,
        from: u64,
        limit: usize,
        read: fn(FoldRow<'_>) -> T,
        pieces: tokio::sync::mpsc::Sender<Vec<T>>,
    ) -> Result<(), StoreError> {
        let (from, until) = fold_range(from, limit);
        match &self.inner.reader {
            Reader::Sqlite(log) => {
                let reader = log.fold_reader();
                reader.read_pieces(from, until, read, pieces).await
            }
            Reader::Postgres(log) => {
                let page = log.read_fold_range(from, until, read).await?;
                // A receiver gone stopped the replay, which says why.
                pieces.send(page).await.ok();
                Ok(())
            }
        }
    }

    /// The events at `positions`, in position order, read a page at a time; a position beyond
    /// the head is left out. A journey names its steps by position and reads them here when
    /// asked.
    pub async fn read_at(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError> {
        let head = self.head_position();
        let known: Vec<u64> = positions.iter().copied().filter(|p| *p <= head).collect();
        let mut events = Vec::with_capacity(known.len());
        for page in known.chunks(READ_PAGE_EVENTS_MAX) {
            let read = match &self.inner.reader {
                Reader::Sqlite(log) => log.read_at(page).await?,
                Reader::Postgres(log) => log.read_at(page).await?,
            };
            events.extend(read);
        }
        // Each page is in order; pages given out of order are put in order here.
        events.sort_by_key(|event| event.position);
        Ok(events)
    }

    async fn read_range(&self, from: u64, until: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.read_range(from, until).await,
            Reader::Postgres(log) => log.read_range(from, until).await,
        }
    }

    /// The events of one stream from version `from` on, in version order.
    pub async fn read_stream(
        &self,
        stream: &str,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.read_stream(stream, from).await,
            Reader::Postgres(log) => log.read_stream(stream, from).await,
        }
    }

    /// The event with this id, if it is in the log.
    pub async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.read_event(event_id).await,
            Reader::Postgres(log) => log.read_event(event_id).await,
        }
    }

    /// The version `stream` had once the log reached `position` (0 if it did not exist then):
    /// what a command decided against the read models at that position must expect.
    pub async fn stream_version_at(&self, stream: &str, position: u64) -> Result<u64, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.stream_version_at(stream, position).await,
            Reader::Postgres(log) => log.stream_version_at(stream, position).await,
        }
    }

    /// Every event from position `from` on: first those already stored, then each new one as it
    /// is committed, each exactly once.
    pub fn subscribe(&self, from: u64) -> Subscription {
        Subscription::new(self.clone(), from, self.inner.head.clone())
    }

    /// The last committed position this process knows of (0 for an empty log).
    pub fn head_position(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// Counts of events, streams and types.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.stats().await,
            Reader::Postgres(log) => log.stats().await,
        }
    }

    /// Walks the whole chain and reports the first position that does not hold.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        verify::verify(self).await
    }
}

/// The file path in a SQLite URL or plain path; `None` for another scheme.
fn sqlite_path(url: &str) -> Option<&str> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return Some(path);
    }
    (!url.contains("://")).then_some(url)
}

/// The positions a replay's page from `from`, of at most `limit` events, covers: `from` to
/// `until`, exclusive, with no page longer than [`READ_PAGE_EVENTS_MAX`].
fn fold_range(from: u64, limit: usize) -> (u64, u64) {
    let from = from.max(1);
    (from, from + limit.min(READ_PAGE_EVENTS_MAX) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(sqlite_path("sqlite://followfund.db"), Some("followfund.db"));
        assert_eq!(sqlite_path("sqlite:/tmp/x.db"), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("./followfund.db"), Some("./followfund.db"));
        assert_eq!(sqlite_path("mysql://x"), None);
    }
}
