//! NDJSON exchange: one event per line, in the shape `export` writes and `import` reads, so an
//! exported log imports into an empty store as an identical chain.

use std::io::{BufRead, Read, Write};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::store::{
    Actor, EVENT_PAYLOAD_BYTES_MAX, Hash, NewEvent, READ_PAGE_EVENTS_MAX, Store, StoreError,
};

/// The longest line `import` reads; longer ones are refused before being parsed.
pub const IMPORT_LINE_BYTES_MAX: usize = 2 * EVENT_PAYLOAD_BYTES_MAX;
/// Lines appended per atomic batch unless told otherwise.
pub const IMPORT_BATCH_EVENTS_DEFAULT: usize = 1_000;

/// One line of an import file. `position`, `stream_version`, `prev_hash` and `hash` are what
/// `export` wrote; the store assigns them afresh, so they are accepted and not used.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    event_id: Uuid,
    stream: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default = "schema_version_default")]
    schema_version: u32,
    occurred_at: DateTime<Utc>,
    #[serde(default)]
    recorded_at: Option<DateTime<Utc>>,
    #[serde(default)]
    actor: Option<Actor>,
    #[serde(default)]
    correlation_id: Option<Uuid>,
    #[serde(default)]
    causation_id: Option<Uuid>,
    data: Box<RawValue>,
    #[serde(default, rename = "position")]
    _position: Option<u64>,
    #[serde(default, rename = "stream_version")]
    _stream_version: Option<u64>,
    #[serde(default, rename = "prev_hash")]
    _prev_hash: Option<Hash>,
    #[serde(default, rename = "hash")]
    _hash: Option<Hash>,
}

fn schema_version_default() -> u32 {
    1
}

/// Why an import stopped. Batches before the failing one are written; nothing of the failing
/// batch is.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A line could not be read as an event.
    #[error(
        "line {line}: {problem}; nothing from line {batch_first_line} on was imported ({events_written} events before it were)"
    )]
    Line {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
        /// The first line of the batch that was not written.
        batch_first_line: usize,
        /// Events written by earlier batches.
        events_written: u64,
    },
    /// The store refused or failed a batch.
    #[error(
        "lines {batch_first_line} to {batch_last_line}: {error}; that batch was not imported ({events_written} events before it were)"
    )]
    Batch {
        /// The batch's first line.
        batch_first_line: usize,
        /// The batch's last line.
        batch_last_line: usize,
        /// The store's answer.
        error: StoreError,
        /// Events written by earlier batches.
        events_written: u64,
    },
    /// The file could not be read.
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Lines read (blank lines excluded).
    pub lines: u64,
    /// Events newly written.
    pub events_written: u64,
    /// Events that were already in the log with the same content.
    pub events_already_present: u64,
}

/// Reads `input` line by line and appends it in atomic batches of `batch_events`, calling
/// `progress` with the bytes read so far after each batch. The next batch is parsed while the
/// store writes the one before, and batches are written strictly in file order.
pub async fn import(
    store: &Store,
    input: impl BufRead,
    batch_events: usize,
    default_actor: &Actor,
    progress: impl FnMut(u64),
) -> Result<ImportSummary, ImportError> {
    let batch_events = batch_events.clamp(1, crate::store::APPEND_BATCH_EVENTS_MAX);
    let (batches_tx, batches) = tokio::sync::mpsc::channel(IMPORT_BATCHES_AHEAD);
    let appender = tokio::spawn(append_batches(store.clone(), batches));
    let parsed = parse_batches(input, batch_events, default_actor, batches_tx, progress).await;
    // Every batch before a bad line is written before the bad line is reported, so the count
    // in its error is exact; a store error concerns an earlier batch and is reported first.
    let mut summary = appender.await.expect("appending batches does not panic")?;
    match parsed {
        Ok(lines) => {
            summary.lines = lines;
            Ok(summary)
        }
        Err(Stop::Io(error)) => Err(ImportError::Io(error)),
        Err(Stop::Line {
            line,
            problem,
            batch_first_line,
        }) => Err(ImportError::Line {
            line,
            problem,
            batch_first_line,
            events_written: summary.events_written,
        }),
    }
}

/// Parsed batches waiting for the store, beyond the one it is writing.
const IMPORT_BATCHES_AHEAD: usize = 1;

/// Lines to be appended together, and where in the file they came from.
struct Batch {
    events: Vec<NewEvent>,
    first_line: usize,
    last_line: usize,
}

/// Why parsing stopped before the end of the file.
enum Stop {
    Io(std::io::Error),
    Line {
        line: usize,
        problem: String,
        batch_first_line: usize,
    },
}

/// Parses `input` into batches and hands each to the appender; the count of lines read. Stops
/// quietly when the appender has stopped (it holds the reason).
async fn parse_batches(
    mut input: impl BufRead,
    batch_events: usize,
    default_actor: &Actor,
    batches: tokio::sync::mpsc::Sender<Batch>,
    mut progress: impl FnMut(u64),
) -> Result<u64, Stop> {
    let mut batch = Batch {
        events: Vec::with_capacity(batch_events),
        first_line: 1,
        last_line: 0,
    };
    let (mut lines, mut bytes_read) = (0u64, 0u64);
    let mut buffer = Vec::new();
    for line_number in 1.. {
        let bytes = read_line(&mut input, &mut buffer).map_err(Stop::Io)?;
        if bytes == 0 {
            break;
        }
        bytes_read += bytes as u64;
        let line_error = |problem| Stop::Line {
            line: line_number,
            problem,
            batch_first_line: if batch.events.is_empty() {
                line_number
            } else {
                batch.first_line
            },
        };
        let text = line_text(&buffer).map_err(line_error)?;
        if text.trim().is_empty() {
            continue;
        }
        let event = parse_line(text, default_actor).map_err(line_error)?;
        if batch.events.is_empty() {
            batch.first_line = line_number;
        }
        batch.events.push(event);
        batch.last_line = line_number;
        lines += 1;
        if batch.events.len() == batch_events {
            let full = Batch {
                events: std::mem::replace(&mut batch.events, Vec::with_capacity(batch_events)),
                ..batch
            };
            if batches.send(full).await.is_err() {
                return Ok(lines);
            }
            progress(bytes_read);
        }
    }
    if !batch.events.is_empty() {
        let _ = batches.send(batch).await;
    }
    progress(bytes_read);
    Ok(lines)
}

/// Appends batches in the order they arrive until the channel closes or the store refuses one.
async fn append_batches(
    store: Store,
    mut batches: tokio::sync::mpsc::Receiver<Batch>,
) -> Result<ImportSummary, ImportError> {
    let mut summary = ImportSummary::default();
    while let Some(batch) = batches.recv().await {
        append_batch(&store, batch, &mut summary).await?;
    }
    Ok(summary)
}

/// Reads one line into `buffer`, never more than the line limit plus its ending, so a file
/// without newlines cannot fill memory (an over-long line then fails `line_text`, which stops
/// the import). Returns the bytes consumed (0 at the end).
fn read_line(input: &mut impl BufRead, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    buffer.clear();
    let limit = IMPORT_LINE_BYTES_MAX as u64 + 2;
    let bytes = input.by_ref().take(limit).read_until(b'\n', buffer)?;
    Ok(bytes)
}

/// The line's text without its ending, or why it cannot be one.
fn line_text(buffer: &[u8]) -> Result<&str, String> {
    let text = buffer.strip_suffix(b"\n").unwrap_or(buffer);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.len() > IMPORT_LINE_BYTES_MAX {
        return Err(format!(
            "the line is longer than the {IMPORT_LINE_BYTES_MAX} bytes accepted"
        ));
    }
    std::str::from_utf8(text).map_err(|_| "the line is not valid UTF-8".to_string())
}

async fn append_batch(
    store: &Store,
    batch: Batch,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let count = batch.events.len() as u64;
    match store.append(batch.events, Vec::new()).await {
        Ok(appended) if appended.written => summary.events_written += count,
        Ok(_) => summary.events_already_present += count,
        Err(error) => {
            return Err(ImportError::Batch {
                batch_first_line: batch.first_line,
                batch_last_line: batch.last_line,
                error,
                events_written: summary.events_written,
            });
        }
    }
    Ok(())
}

/// One line to an event, or a sentence saying what is wrong with it.
fn parse_line(text: &str, default_actor: &Actor) -> Result<NewEvent, String> {
    let line: Line =
        serde_json::from_str(text).map_err(|error| format!("not a valid event line: {error}"))?;
    let actor = line.actor.unwrap_or_else(|| default_actor.clone());
    let event = NewEvent::from_text(
        line.event_id,
        line.stream,
        &line.event_type,
        line.schema_version,
        line.data.get(),
        actor,
        line.occurred_at,
    )
    .map_err(|error| error.to_string())?
    .with_links(line.correlation_id, line.causation_id);
    Ok(match line.recorded_at {
        Some(at) => event.with_recorded_at(at),
        None => event,
    })
}

/// A new event as an import line, without a position: what `import` reads back.
pub fn line(event: &NewEvent) -> String {
    let data: &RawValue =
        serde_json::from_str(&event.data).expect("an event's payload is JSON it encoded");
    let line = serde_json::json!({
        "event_id": event.event_id,
        "stream": event.stream,
        "type": event.event_type,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "actor": event.actor,
        "data": data,
    });
    line.to_string()
}

/// Writes every event from position `from` on as NDJSON; returns how many.
pub async fn export(store: &Store, from: u64, output: &mut impl Write) -> Result<u64, ExportError> {
    let mut next = from.max(1);
    let mut written = 0;
    loop {
        let page = store.read_all(next, READ_PAGE_EVENTS_MAX).await?;
        let Some(last) = page.last() else { break };
        next = last.position + 1;
        for event in &page {
            serde_json::to_writer(&mut *output, event).map_err(std::io::Error::from)?;
            output.write_all(b"\n")?;
        }
        written += page.len() as u64;
    }
    output.flush()?;
    Ok(written)
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}
