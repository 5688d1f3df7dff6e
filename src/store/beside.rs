//! Records kept beside the log, not in it: API tokens (credentials that must stay revocable)
//! and projection snapshots (derived state that can always be rebuilt from the log).

use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Reader, Store, StoreError};

/// A stored API token: who it speaks for, never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's public id, used to revoke it.
    pub token_id: Uuid,
    /// The organisation it acts for.
    pub organisation: String,
    /// The role it acts in.
    pub role: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The most of a snapshot's state one row holds; a larger state is split across rows, since
/// both backends refuse a value over 1 GB. Kept small because SQLite copies a blob twice on its
/// way into pages: with 64 MiB chunks, saving the region year's 202 MiB state took 280 MiB more
/// than encoding it did. With 8 MiB chunks the three streams' encoders, the queue between them
/// and the store, and SQLite's copies held some eight chunks at once: a national save rose 70
/// to 80 MB above the fold's peak, past 2e9 bytes.
pub const SNAPSHOT_CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// How much of each of a snapshot's streams may be fetched and not yet read. Chunks are stored
/// in the order the streams were written, which is not the order they are read in: one stream's
/// reader waits while the store fetches chunks of another for a reader that is behind.
const STREAM_BYTES_AHEAD: usize = 128 * 1024 * 1024;
const STREAM_CHUNKS_AHEAD: usize = STREAM_BYTES_AHEAD / SNAPSHOT_CHUNK_BYTES;

/// A projection snapshot: serialised state including every event up to `position`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The version of the code that folded it.
    pub version: u32,
    /// The last position it includes.
    pub position: u64,
    /// The serialised state.
    pub state: Vec<u8>,
}

impl Store {
    /// Stores a new token under the SHA-256 of its secret.
    pub async fn token_insert(
        &self,
        record: &TokenRecord,
        token_hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.token_insert(record, token_hash).await,
            Reader::Postgres(log) => log.token_insert(record, token_hash).await,
        }
    }

    /// The token whose secret hashes to `token_hash`, revoked or not.
    pub async fn token_find(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.token_find(token_hash).await,
            Reader::Postgres(log) => log.token_find(token_hash).await,
        }
    }

    /// Revokes a token; false when no live token has that id.
    pub async fn token_revoke(
        &self,
        token_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.token_revoke(token_id, at).await,
            Reader::Postgres(log) => log.token_revoke(token_id, at).await,
        }
    }

    /// How many tokens have been revoked. It only grows, since a revoked token stays revoked,
    /// so a change in it tells a server that some token it remembers may no longer be good.
    pub async fn tokens_revoked_count(&self) -> Result<u64, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.tokens_revoked_count().await,
            Reader::Postgres(log) => log.tokens_revoked_count().await,
        }
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.tokens().await,
            Reader::Postgres(log) => log.tokens().await,
        }
    }

    /// Opens the stored snapshot called `name`, if any, to be read chunk by chunk.
    pub async fn snapshot_open(&self, name: &str) -> Result<Option<SnapshotReader>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.snapshot_open(name).await,
            Reader::Postgres(log) => log.snapshot_open(name).await,
        }
    }

    /// The stored snapshot called `name`, if any, read whole.
    pub async fn snapshot_load(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        match self.snapshot_open(name).await? {
            Some(reader) => Ok(Some(reader.read_whole().await?)),
            None => Ok(None),
        }
    }

    /// Replaces the snapshot called `name` with one whose state arrives in `parts`, stored as
    /// each chunk arrives and committed at the end; the size of the state in bytes. If `parts`
    /// closes before its end, nothing changes.
    pub async fn snapshot_save_parts(
        &self,
        name: &str,
        version: u32,
        position: u64,
        parts: mpsc::Receiver<SnapshotPart>,
    ) -> Result<usize, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.snapshot_save(name, version, position, parts).await,
            Reader::Postgres(log) => log.snapshot_save(name, version, position, parts).await,
        }
    }

    /// Replaces the snapshot called `name` with a state held whole.
    pub async fn snapshot_save(&self, name: &str, snapshot: &Snapshot) -> Result<(), StoreError> {
        let (send, parts) = mpsc::channel(1);
        let chunks: Vec<Vec<u8>> = (snapshot.state.chunks(SNAPSHOT_CHUNK_BYTES))
            .map(<[u8]>::to_vec)
            .collect();
        let sending = async move {
            for chunk in chunks {
                send.send(SnapshotPart::Chunk(chunk)).await.ok();
            }
            send.send(SnapshotPart::End).await.ok();
        };
        let saving = self.snapshot_save_parts(name, snapshot.version, snapshot.position, parts);
        let ((), saved) = tokio::join!(sending, saving);
        saved.map(|_| ())
    }
}

pub(super) fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The error of a save whose writer stopped before the end.
pub(super) fn snapshot_cut_short() -> StoreError {
    StoreError::Corrupt {
        position: 0,
        reason: "the snapshot's writer stopped before its end: nothing was saved".into(),
    }
}

/// One part of a snapshot on its way to the store: a chunk of its state, or the end. A save
/// commits only when the end arrives, so a writer that fails half way stores nothing.
#[derive(Debug)]
pub enum SnapshotPart {
    /// The next chunk, at most [`SNAPSHOT_CHUNK_BYTES`].
    Chunk(Vec<u8>),
    /// Every chunk has been sent.
    End,
}

/// Cuts a snapshot's state into chunks as it is written and sends each to the store, so that
/// encoding a state of many gigabytes never holds a second copy of it. Written from a blocking
/// thread; a store that gave up shows as a broken pipe.
pub struct SnapshotWriter {
    chunk: Vec<u8>,
    /// The stream every chunk starts with, when the snapshot carries several.
    stream: Option<u8>,
    parts: mpsc::Sender<SnapshotPart>,
}

impl SnapshotWriter {
    /// A writer sending to `parts`.
    pub fn new(parts: mpsc::Sender<SnapshotPart>) -> SnapshotWriter {
        SnapshotWriter::starting(parts, None)
    }

    /// A writer of stream `stream` of a snapshot that carries several, each written on a thread
    /// of its own and read back on a thread of its own by [`SnapshotReader::into_streams`]: each
    /// chunk starts with the stream's number. Finish each stream with
    /// [`SnapshotWriter::finish_stream`], then send one [`SnapshotPart::End`].
    pub fn stream(parts: mpsc::Sender<SnapshotPart>, stream: u8) -> SnapshotWriter {
        SnapshotWriter::starting(parts, Some(stream))
    }

    fn starting(parts: mpsc::Sender<SnapshotPart>, stream: Option<u8>) -> SnapshotWriter {
        SnapshotWriter {
            chunk: empty_chunk(stream),
            stream,
            parts,
        }
    }

    /// Sends what is left and the end: the state is whole.
    pub fn finish(mut self) -> std::io::Result<()> {
        assert!(self.stream.is_none(), "a stream ends with finish_stream");
        self.send_chunk()?;
        self.send(SnapshotPart::End)
    }

    /// Sends what is left of this stream; the snapshot ends when every stream has finished.
    pub fn finish_stream(mut self) -> std::io::Result<()> {
        assert!(self.stream.is_some(), "a whole snapshot ends with finish");
        self.send_chunk()
    }

    fn send_chunk(&mut self) -> std::io::Result<()> {
        let full = std::mem::replace(&mut self.chunk, empty_chunk(self.stream));
        if full.len() == usize::from(self.stream.is_some()) {
            return Ok(());
        }
        assert!(full.len() <= SNAPSHOT_CHUNK_BYTES, "a chunk fits a row");
        self.send(SnapshotPart::Chunk(full))
    }

    fn send(&self, part: SnapshotPart) -> std::io::Result<()> {
        self.parts
            .blocking_send(part)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for SnapshotWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = SNAPSHOT_CHUNK_BYTES - self.chunk.len();
        let taken = bytes.len().min(room);
        self.chunk.extend_from_slice(&bytes[..taken]);
        if self.chunk.len() == SNAPSHOT_CHUNK_BYTES {
            self.send_chunk()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A chunk with nothing in it yet but its stream's number, if it has one.
fn empty_chunk(stream: Option<u8>) -> Vec<u8> {
    let mut chunk = Vec::with_capacity(SNAPSHOT_CHUNK_BYTES);
    chunk.extend(stream);
    chunk
}

/// A stored snapshot being read: its header at once, its state chunk by chunk from a task that
/// holds one read transaction, so that a save in between cannot mix two snapshots' chunks.
/// Read it from a blocking thread through [`Read`].
pub struct SnapshotReader {
    /// The version of the code that folded it.
    pub version: u32,
    /// The last position it includes.
    pub position: u64,
    chunks: mpsc::Receiver<Result<Vec<u8>, StoreError>>,
    chunk: Vec<u8>,
    read: usize,
    /// Bytes at the start of each chunk that are not state: 1 where they name a stream.
    skip: usize,
    /// Where a chunk read to its end goes back to, to be filled again, when its backend reuses
    /// buffers.
    spent: Option<std::sync::mpsc::Sender<Vec<u8>>>,
}

/// The buffers a snapshot's readers have finished with, for its backend to fill again: each
/// chunk of a national state in memory fresh from the kernel cost more to fault in and zero
/// than to decode.
pub(super) struct Spent(std::sync::mpsc::Receiver<Vec<u8>>);

impl Spent {
    /// A buffer to read the next chunk into: a spent one if any has come back.
    pub(super) fn take(&self) -> Vec<u8> {
        self.0.try_recv().unwrap_or_default()
    }
}

impl SnapshotReader {
    /// A reader of the snapshot described by a header row, and the sender its chunks go to.
    pub(super) fn open(version: i64, position: u64) -> (ChunkSender, SnapshotReader) {
        let (send, chunks) = mpsc::channel(1);
        let reader = SnapshotReader {
            version: u32::try_from(version).unwrap_or(0),
            position,
            chunks,
            chunk: Vec::new(),
            read: 0,
            skip: 0,
            spent: None,
        };
        (ChunkSender(send), reader)
    }

    /// As [`SnapshotReader::open`], and the buffers the reader (or the readers of its streams)
    /// hand back once read.
    pub(super) fn recycling(version: i64, position: u64) -> (ChunkSender, Spent, SnapshotReader) {
        let (sender, mut reader) = SnapshotReader::open(version, position);
        let (spent, back) = std::sync::mpsc::channel();
        reader.spent = Some(spent);
        (sender, Spent(back), reader)
    }

    /// The readers of a snapshot written as `count` streams (see [`SnapshotWriter::stream`]),
    /// in stream order, fed by a task that hands each chunk to its stream's reader as fetched.
    /// A chunk of no such stream, or a failed fetch, is an error for every reader. Call from
    /// within the runtime; read each from a blocking thread of its own.
    pub fn into_streams(mut self, count: u8) -> Vec<SnapshotReader> {
        let (senders, readers): (Vec<_>, Vec<_>) = (0..count)
            .map(|_| {
                let (send, chunks) = mpsc::channel(STREAM_CHUNKS_AHEAD);
                let reader = SnapshotReader {
                    version: self.version,
                    position: self.position,
                    chunks,
                    chunk: Vec::new(),
                    read: 0,
                    skip: 1,
                    spent: self.spent.clone(),
                };
                (send, reader)
            })
            .collect();
        tokio::spawn(async move {
            while let Some(fetched) = self.chunks.recv().await {
                let reason = match fetched {
                    Ok(chunk) => match chunk.first().and_then(|&s| senders.get(usize::from(s))) {
                        // A reader that stopped has failed, and the snapshot with it.
                        Some(sender) if sender.send(Ok(chunk)).await.is_err() => return,
                        Some(_) => continue,
                        None => format!("a snapshot chunk names no stream of the {count}"),
                    },
                    Err(error) => error.to_string(),
                };
                for sender in &senders {
                    let corrupt = StoreError::Corrupt {
                        position: 0,
                        reason: reason.clone(),
                    };
                    sender.send(Err(corrupt)).await.ok();
                }
                return;
            }
        });
        readers
    }

    /// Reads every chunk into one buffer.
    pub async fn read_whole(mut self) -> Result<Snapshot, StoreError> {
        let mut state = Vec::new();
        while let Some(chunk) = self.chunks.recv().await {
            state.extend_from_slice(&chunk?);
        }
        Ok(Snapshot {
            version: self.version,
            position: self.position,
            state,
        })
    }
}

impl SnapshotReader {
    /// Moves to the next chunk once this one is read; false at the end of the state.
    fn next_chunk(&mut self) -> std::io::Result<bool> {
        while self.read >= self.chunk.len() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => {
                    let read = std::mem::replace(&mut self.chunk, chunk);
                    self.read = self.skip;
                    // A backend that has stopped feeding chunks no longer wants it back.
                    if let Some(spent) = self.spent.as_ref().filter(|_| read.capacity() > 0) {
                        spent.send(read).ok();
                    }
                }
                Some(Err(error)) => return Err(std::io::Error::other(error)),
                None => return Ok(false),
            }
        }
        Ok(true)
    }
}

impl Read for SnapshotReader {
    #[inline]
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if !self.next_chunk()? {
            return Ok(0);
        }
        let taken = buffer.len().min(self.chunk.len() - self.read);
        buffer[..taken].copy_from_slice(&self.chunk[self.read..self.read + taken]);
        self.read += taken;
        Ok(taken)
    }

    /// A decoder asks for a marker byte or a number's few bytes at a time, tens of millions of
    /// times in a national state: those within the chunk are copied without a loop.
    #[inline]
    fn read_exact(&mut self, buffer: &mut [u8]) -> std::io::Result<()> {
        let end = self.read + buffer.len();
        if let Some(bytes) = self.chunk.get(self.read..end) {
            buffer.copy_from_slice(bytes);
            self.read = end;
            return Ok(());
        }
        let mut rest = buffer;
        while !rest.is_empty() {
            match self.read(rest)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                taken => rest = &mut rest[taken..],
            }
        }
        Ok(())
    }
}

/// The error of a snapshot whose chunk `chunk` of `chunks` is not stored: its rows were altered.
pub(super) fn chunk_missing(chunk: i64, chunks: i64) -> StoreError {
    StoreError::Corrupt {
        position: 0,
        reason: format!("snapshot chunk {chunk} of {chunks} is missing"),
    }
}

/// Where a backend sends a snapshot's chunks as it fetches them.
pub(super) struct ChunkSender(mpsc::Sender<Result<Vec<u8>, StoreError>>);

impl ChunkSender {
    /// Passes on chunk `chunk` of `chunks` as fetched; false when reading should stop because it
    /// failed, the chunk is missing (the rows were altered), or the reader is gone.
    pub(super) async fn pass(
        &self,
        fetched: Result<Option<Vec<u8>>, sqlx::Error>,
        chunk: i64,
        chunks: i64,
    ) -> bool {
        let item = match fetched {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(chunk_missing(chunk, chunks)),
            Err(error) => Err(error.into()),
        };
        let failed = item.is_err();
        self.0.send(item).await.is_ok() && !failed
    }

    /// Passes on a chunk, or why there is none, from a blocking thread; false when the reader
    /// is gone.
    pub(super) fn pass_blocking(&self, item: Result<Vec<u8>, StoreError>) -> bool {
        self.0.blocking_send(item).is_ok()
    }
}
