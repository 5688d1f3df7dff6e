//! The projection runner: folds the log into the read models held in memory, follows new
//! commits, snapshots the state so that a restart replays only the tail, and lets a request
//! wait until the position it wrote has been folded (read-your-writes).

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use followfund_contracts::CatalogueError;
use followfund_projections::{Fact, Journeys, Ledger, ReadModels, Rest};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::{
    FoldEvent, FoldRow, SnapshotPart, SnapshotReader, SnapshotWriter, Store, StoreError,
};

/// The name the read models' snapshot is stored under.
const SNAPSHOT_NAME: &str = "read-models";
/// The streams of a snapshot: the ledger, the journeys, and the rest of the read models.
const SNAPSHOT_STREAMS: usize = 3;
/// Events folded between snapshots.
pub const SNAPSHOT_EVERY_EVENTS: u64 = 50_000;
/// Events read per page while catching up: as many as an import writes in one fold block, so
/// that a page begins where a block does. Pages of 5,000 began inside every other block, and
/// read the headers of the 5,000 events before them to step over them.
const CATCH_UP_PAGE_EVENTS: usize = 10_000;
// The store returns at most a read's worth of events a page: a longer catch-up page would step
// over the events between, and the fold would panic at the gap.
const _: () = assert!(CATCH_UP_PAGE_EVENTS <= crate::store::READ_PAGE_EVENTS_MAX);
/// Pages read at once while catching up, each on its own connection. Two pages of 10,000 keep
/// the fold fed on two cores, and hold as many decoded events as four of 5,000 did; eight of
/// 5,000 held some 15 MB more at a national replay's peak.
const CATCH_UP_READS_AT_ONCE: usize = 2;
/// Pieces of a page decoded ahead of the fold (see `store::pieces`): a page of payment runs
/// comes in about twenty.
const PIECES_AHEAD: usize = 4;
/// A page's pieces as they are decoded.
type PagePieces = tokio::sync::mpsc::Receiver<Vec<Result<Fact, RunnerError>>>;
/// Events folded under one write lock.
const FOLD_BATCH_EVENTS: usize = 1_000;
/// How long a query may wait for the read models to reach a position it asks for.
pub const READ_YOUR_WRITES_WAIT_MS: u64 = 5_000;

/// Why the read models could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not decode: the log holds a type this build does not know, or was
    /// altered.
    #[error("the event at position {position} cannot be folded: {error}; run `followfund verify`")]
    Undecodable {
        /// Where.
        position: u64,
        /// Why.
        error: CatalogueError,
    },
}

/// The read models shared by every request, and how far they have folded.
#[derive(Clone)]
pub struct Runner {
    models: Arc<RwLock<ReadModels>>,
    folded: watch::Receiver<u64>,
    started: Started,
}

/// How the runner started: where it began and how long each step took.
#[derive(Clone, Copy, Debug, Default)]
pub struct Started {
    /// The position of the snapshot loaded (0 when folding from zero).
    pub snapshot_position: u64,
    /// Reading and decoding that snapshot.
    pub snapshot_load: Duration,
    /// Events folded after it.
    pub events_folded: u64,
    /// Folding them.
    pub fold: Duration,
    /// The size of the snapshot saved after folding (0 when none was saved).
    pub snapshot_saved_bytes: usize,
    /// Saving it.
    pub snapshot_save: Duration,
}

/// The read models are not yet at the position a request waited for.
#[derive(Debug, thiserror::Error)]
#[error(
    "the read models are at position {folded}, not yet at {wanted}, after waiting {waited_ms} ms: retry shortly"
)]
pub struct NotYetFolded {
    /// How far they are.
    pub folded: u64,
    /// What was asked for.
    pub wanted: u64,
    /// How long the request waited.
    pub waited_ms: u64,
}

impl Runner {
    /// Loads the latest snapshot (unless it was folded by another version of the code), folds
    /// the log's tail up to its head, then follows new commits in the background.
    pub async fn start(store: Store) -> Result<Runner, RunnerError> {
        let mut started = Started::default();
        let began = Instant::now();
        let mut models = snapshot_load(&store).await?;
        (started.snapshot_position, started.snapshot_load) = (models.position(), began.elapsed());
        let began = Instant::now();
        catch_up(&store, &mut models, store.head_position()).await?;
        started.events_folded = models.position() - started.snapshot_position;
        started.fold = began.elapsed();
        let subscription = store.subscribe(models.position() + 1);
        tracing::info!(?started, "read models are up to date");
        let models = Arc::new(RwLock::new(models));
        // A snapshot only shortens the next restart: failing to save one (a state too large
        // for the backend's blobs, say) is reported and the service starts all the same.
        if started.events_folded > 0 {
            let began = Instant::now();
            match snapshot_save(&store, models.clone()).await {
                Ok(bytes) => started.snapshot_saved_bytes = bytes,
                Err(error) => tracing::warn!(
                    %error,
                    "saving a snapshot failed; the next restart replays from further back"
                ),
            }
            started.snapshot_save = began.elapsed();
            tracing::info!(
                bytes = started.snapshot_saved_bytes,
                save = ?started.snapshot_save,
                "snapshot saved"
            );
        }
        let position = models.read().expect("not poisoned").position();
        let (folded_tx, folded) = watch::channel(position);
        tokio::spawn(follow(store, subscription, models.clone(), folded_tx));
        Ok(Runner {
            models,
            folded,
            started,
        })
    }

    /// The read models as of now; hold the guard briefly and never across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, ReadModels> {
        self.models
            .read()
            .expect("a fold never panics while holding the lock")
    }

    /// The position of the snapshot the runner started from (0 when it folded from zero).
    pub fn started_from(&self) -> u64 {
        self.started.snapshot_position
    }

    /// How the start went, step by step.
    pub fn started(&self) -> Started {
        self.started
    }

    /// The last position folded.
    pub fn position(&self) -> u64 {
        *self.folded.borrow()
    }

    /// Waits until `position` is folded, for at most `wait`.
    pub async fn wait_for(&self, position: u64, wait: Duration) -> Result<(), NotYetFolded> {
        let mut folded = self.folded.clone();
        let reached = tokio::time::timeout(wait, folded.wait_for(|at| *at >= position)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(NotYetFolded {
                folded: self.position(),
                wanted: position,
                waited_ms: wait.as_millis() as u64,
            }),
        }
    }
}

async fn follow(
    store: Store,
    mut subscription: crate::store::Subscription,
    models: Arc<RwLock<ReadModels>>,
    folded: watch::Sender<u64>,
) {
    let mut snapshot_position = *folded.borrow();
    loop {
        let batch = tokio::select! {
            batch = subscription.next_batch(FOLD_BATCH_EVENTS) => batch,
            // Every handle to these models is gone: stop, and let their memory go.
            () = folded.closed() => return,
        };
        let result = async {
            let batch = batch?;
            let facts = decode(batch.into_iter().map(FoldEvent::from))?;
            let mut models = models
                .write()
                .expect("a fold never panics while holding the lock");
            models.apply_all(&facts);
            Ok::<u64, RunnerError>(models.position())
        }
        .await;
        match result {
            Ok(position) => {
                folded.send_replace(position);
                if position - snapshot_position >= SNAPSHOT_EVERY_EVENTS {
                    if let Err(error) = snapshot_save(&store, models.clone()).await {
                        tracing::warn!(%error, "saving a snapshot failed; the next restart replays further");
                    }
                    snapshot_position = position;
                }
            }
            Err(error) => {
                tracing::error!(%error, "the read models stopped following the log");
                return;
            }
        }
    }
}

/// Folds the log up to `head`. Pages are read and decoded by their own tasks, several at once
/// on separate connections, while this one folds them in order: one reader alone left a
/// two-core machine half idle, waiting on its database thread. A page of large payloads comes
/// in pieces, each folded while the next is decoded.
async fn catch_up(store: &Store, models: &mut ReadModels, head: u64) -> Result<(), RunnerError> {
    let mut page_starts = (models.position() + 1..=head).step_by(CATCH_UP_PAGE_EVENTS);
    let mut reading = std::collections::VecDeque::new();
    // The fold runs on a thread of its own for the whole catch-up, fed piece by piece.
    let (send, mut read) = tokio::sync::mpsc::channel::<Vec<Fact>>(1);
    let mut folding = std::mem::take(models);
    let folded = tokio::task::spawn_blocking(move || {
        folding.apply_pages(std::iter::from_fn(|| read.blocking_recv()));
        folding
    });
    let outcome: Result<(), RunnerError> = async {
        loop {
            // The page folded next, and as many more being read while it is.
            while reading.len() <= CATCH_UP_READS_AT_ONCE
                && let Some(from) = page_starts.next()
            {
                reading.push_back(read_page(store, from));
            }
            let Some((mut pieces, page)) = reading.pop_front() else {
                return Ok(());
            };
            while let Some(piece) = pieces.recv().await {
                let facts = piece.into_iter().collect::<Result<Vec<Fact>, _>>()?;
                // Refused only when the fold stopped, whose panic shows when it is joined below.
                if send.send(facts).await.is_err() {
                    return Ok(());
                }
            }
            page.await.expect("reading a page does not panic")?;
        }
    }
    .await;
    drop(send);
    *models = folded.await.expect("folding does not panic");
    outcome?;
    assert!(models.position() >= head, "catching up reaches the head");
    Ok(())
}

/// Starts reading the page from position `from` on a task of its own: its pieces as they are
/// decoded, and how the reading ended.
fn read_page(store: &Store, from: u64) -> (PagePieces, JoinHandle<Result<(), StoreError>>) {
    let (hand_on, pieces) = tokio::sync::mpsc::channel(PIECES_AHEAD);
    let reader = store.clone();
    let page = tokio::spawn(async move {
        reader
            .read_fold_pieces(from, CATCH_UP_PAGE_EVENTS, fact_of, hand_on)
            .await
    });
    (pieces, page)
}

fn decode(batch: impl IntoIterator<Item = FoldEvent>) -> Result<Vec<Fact>, RunnerError> {
    batch.into_iter().map(fact).collect()
}

/// An event as the projections see it, decoded once.
pub fn fact(event: FoldEvent) -> Result<Fact, RunnerError> {
    fact_of(event.row())
}

/// A stored row as the projections see it, decoded where it was read.
fn fact_of(row: FoldRow<'_>) -> Result<Fact, RunnerError> {
    let decoded = row.data.decode(row.event_type, row.schema_version);
    let decoded = decoded.map_err(|error| RunnerError::Undecodable {
        position: row.position,
        error,
    })?;
    Ok(Fact {
        position: row.position,
        occurred_at: row.occurred_at,
        event: decoded,
    })
}

async fn snapshot_load(store: &Store) -> Result<ReadModels, RunnerError> {
    let reader = match store.snapshot_open(SNAPSHOT_NAME).await {
        Ok(Some(reader)) => reader,
        Ok(None) => return Ok(ReadModels::default()),
        Err(error) => return Err(error.into()),
    };
    if reader.version != ReadModels::snapshot_version() {
        tracing::info!(
            stored = reader.version,
            current = ReadModels::snapshot_version(),
            "snapshot from another version: rebuilding"
        );
        return Ok(ReadModels::default());
    }
    let position = reader.position;
    // Decoded as the chunks arrive, so the state is never held twice, and on threads of their own.
    let [ledger, journeys, rest]: [SnapshotReader; SNAPSHOT_STREAMS] =
        (reader.into_streams(SNAPSHOT_STREAMS as u8).try_into())
            .unwrap_or_else(|_| unreachable!("three streams asked for"));
    let ledger = tokio::task::spawn_blocking(move || {
        let ledger = rmp_serde::from_read::<_, Ledger>(ledger)?;
        ledger.assert_consistent();
        Ok::<_, rmp_serde::decode::Error>(ledger)
    });
    // Journeys are checked, and their indexes rebuilt, as they are read.
    let journeys =
        tokio::task::spawn_blocking(move || rmp_serde::from_read::<_, Journeys>(journeys));
    let rest = tokio::task::spawn_blocking(move || rmp_serde::from_read::<_, Rest>(rest));
    let (ledger, journeys, rest) = (ledger.await, journeys.await, rest.await);
    let decoded = (|| {
        let ledger = ledger.expect("decoding does not panic")?;
        let journeys = journeys.expect("decoding does not panic")?;
        let rest = rest.expect("decoding does not panic")?;
        Ok::<_, rmp_serde::decode::Error>(ReadModels::from_parts(ledger, journeys, rest))
    })();
    match decoded {
        Ok(models) if models.position() == position => {
            models.organisations.assert_consistent();
            Ok(models)
        }
        Ok(_) => {
            tracing::warn!(
                "the stored snapshot's header and state disagree: rebuilding from the log"
            );
            Ok(ReadModels::default())
        }
        Err(error) => {
            tracing::warn!(%error, "the stored snapshot does not read back: rebuilding from the log");
            Ok(ReadModels::default())
        }
    }
}

/// Encodes one of a snapshot's streams; false when the store gave up on it.
fn encode_stream(value: &impl serde::Serialize, mut writer: SnapshotWriter) -> bool {
    rmp_serde::encode::write(&mut writer, value).is_ok() && writer.finish_stream().is_ok()
}

/// Saves the read models, encoding them chunk by chunk on a blocking thread while the store
/// writes the chunks before; the size of the saved state in bytes. Encoding holds a read lock
/// rather than a copy, so a national state is never held twice: queries go on reading, and only
/// the fold, which is the caller, waits.
async fn snapshot_save(
    store: &Store,
    models: Arc<RwLock<ReadModels>>,
) -> Result<usize, StoreError> {
    let (send, parts) = tokio::sync::mpsc::channel(1);
    let position = models.read().expect("not poisoned").position();
    let encoding = tokio::task::spawn_blocking(move || {
        let models = models
            .read()
            .expect("a fold never panics while holding the lock");
        assert_eq!(
            models.position(),
            position,
            "nothing folds while a snapshot is taken"
        );
        let (ledger, journeys, rest) = models.parts();
        let encoded = std::thread::scope(|scope| {
            let ledger =
                scope.spawn(|| encode_stream(ledger, SnapshotWriter::stream(send.clone(), 0)));
            let journeys =
                scope.spawn(|| encode_stream(journeys, SnapshotWriter::stream(send.clone(), 1)));
            let rest = encode_stream(&rest, SnapshotWriter::stream(send.clone(), 2));
            let ledger = ledger.join().expect("encoding does not panic");
            journeys.join().expect("encoding does not panic") && ledger && rest
        });
        // A failed write means the store gave up, and says why; a snapshot without its end
        // saves nothing.
        if encoded {
            send.blocking_send(SnapshotPart::End).ok();
        }
    });
    let saved = store
        .snapshot_save_parts(
            SNAPSHOT_NAME,
            ReadModels::snapshot_version(),
            position,
            parts,
        )
        .await;
    encoding.await.expect("encoding does not panic");
    saved
}
