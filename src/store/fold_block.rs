//! Blocks of events in their compact form. The SQLite appender writes one beside the rows of
//! each group it commits (ten thousand events at a time during an import), and a replay reads a
//! block where it read as many rows, and decodes MessagePack where it parsed JSON. The rows stay
//! the log: a block says again, in another form, what its rows say, and `verify` checks that it
//! does.
//!
//! A block is a MessagePack stream: the format number, the list of the type names its events
//! use, then for each event the place of its type in that list, its schema version, the
//! microseconds from the event before it (from zero for the first), the form of its payload and
//! the payload.

use followfund_contracts::events::Form;
use followfund_contracts::events::place_of;

use super::StoreError;
use super::event::{FoldRow, NewEvent, Payload};
use super::pack::Pack;
use super::pieces::Pieces;
use super::sql::{corrupt, to_i64};

/// The most events one block holds, so that a read finds every block reaching into its range
/// among those that start at most this far before it.
pub(crate) const BLOCK_EVENTS_MAX: usize = 10_000;
/// The bytes of a block read at once: a block of ordinary events is about half of this, and
/// the largest event a sixteenth.
pub(crate) const WINDOW_BYTES: usize = 1 << 20;
// An event is read from one window, with its header and what is left of the one before it.
const _: () = assert!(WINDOW_BYTES >= 4 * super::event::EVENT_PAYLOAD_BYTES_MAX);
/// The block format this build writes and reads.
const FORMAT: u64 = 1;

/// A block as stored: its first position, how many events follow from it, and its bytes.
pub(crate) struct Block {
    pub(crate) first_position: u64,
    pub(crate) events: usize,
    pub(crate) bytes: Vec<u8>,
}

/// The blocks of `events`, which take consecutive positions from `first_position`.
pub(crate) fn blocks<'a>(
    first_position: u64,
    events: impl IntoIterator<Item = &'a NewEvent>,
) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut writer = Writer::default();
    let mut block_first = first_position;
    for event in events {
        if writer.events == BLOCK_EVENTS_MAX {
            blocks.push(std::mem::take(&mut writer).finish(block_first));
            block_first += BLOCK_EVENTS_MAX as u64;
        }
        writer.push(event);
    }
    if writer.events > 0 {
        blocks.push(writer.finish(block_first));
    }
    blocks
}

#[derive(Default)]
struct Writer {
    types: Vec<&'static str>,
    body: Vec<u8>,
    events: usize,
    last_micros: i64,
}

impl Writer {
    fn push(&mut self, event: &NewEvent) {
        let type_index = match self.types.iter().position(|t| *t == event.event_type) {
            Some(index) => index,
            None => {
                self.types.push(event.event_type);
                self.types.len() - 1
            }
        };
        let micros = event.occurred_at.timestamp_micros();
        let body = &mut self.body;
        written(rmp::encode::write_uint(body, type_index as u64).map(drop));
        written(rmp::encode::write_uint(body, u64::from(event.schema_version)).map(drop));
        written(rmp::encode::write_sint(body, micros - self.last_micros).map(drop));
        written(rmp::encode::write_uint(body, u64::from(event.compact.form.number())).map(drop));
        written(rmp::encode::write_bin(body, &event.compact.bytes));
        self.last_micros = micros;
        self.events += 1;
    }

    fn finish(self, first_position: u64) -> Block {
        let mut bytes = Vec::with_capacity(self.body.len() + 32 * self.types.len());
        written(rmp::encode::write_uint(&mut bytes, FORMAT).map(drop));
        written(rmp::encode::write_array_len(&mut bytes, self.types.len() as u32).map(drop));
        for name in &self.types {
            written(rmp::encode::write_str(&mut bytes, name));
        }
        bytes.extend_from_slice(&self.body);
        Block {
            first_position,
            events: self.events,
            bytes,
        }
    }
}

fn written<E: std::fmt::Debug>(result: Result<(), E>) {
    result.expect("writing to memory does not fail");
}

/// The bytes of a block read a window at a time, so that a large block's first events are
/// handed on before its last are read, into a buffer kept from block to block: read whole, a
/// block of payment runs was twenty megabytes of fresh memory, faulted in page by page.
pub(crate) struct Window<'a> {
    buffer: &'a mut Vec<u8>,
    /// The bytes read and not yet taken: `buffer[start..end]`.
    start: usize,
    end: usize,
    /// How much of the block has been read, and its size.
    fetched: usize,
    len: usize,
    read_at: &'a mut ReadAt<'a>,
}

/// Copies a block's bytes from an offset into a slice, filling it.
pub(crate) type ReadAt<'a> = dyn FnMut(usize, &mut [u8]) -> Result<(), StoreError> + 'a;

impl<'a> Window<'a> {
    /// A block of `len` bytes, whose bytes from an offset `read_at` copies into a slice, read
    /// into `buffer` a window of `window_bytes` at a time: more than the largest event.
    pub(crate) fn new(
        len: usize,
        read_at: &'a mut ReadAt<'a>,
        buffer: &'a mut Vec<u8>,
        window_bytes: usize,
    ) -> Window<'a> {
        // A buffer kept at its size is never written but by the reads.
        buffer.resize(window_bytes, 0);
        Window {
            buffer,
            start: 0,
            end: 0,
            fetched: 0,
            len,
            read_at,
        }
    }

    fn unread(&self) -> &[u8] {
        &self.buffer[self.start..self.end]
    }

    fn take(&mut self, bytes: usize) {
        self.start += bytes;
        debug_assert!(self.start <= self.end);
    }

    /// Reads more of the block behind what is unread; false at its end, or when the window is
    /// full of one event that does not end in it.
    fn fetch(&mut self) -> Result<bool, StoreError> {
        self.buffer.copy_within(self.start..self.end, 0);
        (self.end, self.start) = (self.end - self.start, 0);
        let more = (self.len - self.fetched).min(self.buffer.len() - self.end);
        if more == 0 {
            return Ok(false);
        }
        (self.read_at)(self.fetched, &mut self.buffer[self.end..self.end + more])?;
        (self.end, self.fetched) = (self.end + more, self.fetched + more);
        Ok(true)
    }

    /// Takes what `parse` reads from the unread bytes, reading more of the block while it
    /// reads nothing; none once the block has no more.
    fn next<R>(
        &mut self,
        mut parse: impl FnMut(&mut Pack<'_>) -> Option<R>,
    ) -> Result<Option<R>, StoreError> {
        loop {
            let mut pack = Pack::new(self.unread());
            if let Some(parsed) = parse(&mut pack) {
                let taken = self.unread().len() - pack.remaining();
                self.take(taken);
                return Ok(Some(parsed));
            }
            if !self.fetch()? {
                return Ok(None);
            }
        }
    }
}

/// Passes each event of a block, which holds `events` events from `first_position`, to `read`
/// if its position falls in `from..until`, in position order, until `out` is stopped.
pub(crate) fn read<T>(
    mut block: Window<'_>,
    first_position: u64,
    events: u64,
    (from, until): (u64, u64),
    read: fn(FoldRow<'_>) -> T,
    out: &mut Pieces<'_, T>,
) -> Result<(), StoreError> {
    let bad = |what: &str| corrupt(to_i64(first_position), &format!("the block here {what}"));
    let format: u64 = (block.next(|pack| pack.number())?).ok_or_else(|| bad("has no format"))?;
    if format != FORMAT {
        return Err(bad(&format!(
            "is in format {format}, which this build cannot read"
        )));
    }
    let types = (block.next(type_table)?).ok_or_else(|| bad("has a bad list of types"))?;
    let mut micros = 0i64;
    let mut days = Days::default();
    for position in first_position..first_position + events {
        if position >= until || out.stopped() {
            break;
        }
        // None while the event runs past the bytes read so far; then whether it folded.
        let read_one = |pack: &mut Pack<'_>| {
            let event = next_event(pack, &types)?;
            micros += event.micros_since_last;
            if position < from {
                return Some(Ok(()));
            }
            let Some(occurred_at) = days.time_at(micros) else {
                return Some(Err(corrupt(to_i64(position), "a time is out of range")));
            };
            let row = FoldRow {
                position,
                event_type: event.type_name,
                schema_version: event.schema_version,
                occurred_at,
                data: event.payload,
            };
            out.push(read(row), event.payload.len_bytes());
            Some(Ok(()))
        };
        (block.next(read_one)?).ok_or_else(|| bad("is cut short"))??;
    }
    Ok(())
}

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// 1 January 1970 counted in days from 1 January of year 1, as chrono counts them.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// Times of day from microseconds since 1970, as [`chrono::DateTime::from_timestamp_micros`]
/// makes them, with the date found again only when the day changes: a block's events fall on
/// a few days, and making a date from a day's number cost more than the rest of the time.
#[derive(Default)]
struct Days {
    last: Option<(i64, chrono::NaiveDate)>,
}

impl Days {
    /// The time `micros` after 1970 began, if chrono can hold it.
    fn time_at(&mut self, micros: i64) -> Option<chrono::DateTime<chrono::Utc>> {
        let (day, since_midnight) = (
            micros.div_euclid(MICROS_PER_DAY),
            micros.rem_euclid(MICROS_PER_DAY),
        );
        let date = match self.last {
            Some((last_day, date)) if last_day == day => date,
            _ => {
                let days_from_ce = i32::try_from(day.checked_add(EPOCH_DAYS_FROM_CE)?).ok()?;
                let date = chrono::NaiveDate::from_num_days_from_ce_opt(days_from_ce)?;
                self.last = Some((day, date));
                date
            }
        };
        let seconds = u32::try_from(since_midnight / 1_000_000).expect("under a day");
        let nanos = u32::try_from(since_midnight % 1_000_000 * 1_000).expect("under a second");
        let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos)?;
        Some(date.and_time(time).and_utc())
    }
}

/// The type names a block lists, each with its place in the catalogue (none for a name this
/// build does not know: its events then fail to decode, naming it).
fn type_table(pack: &mut Pack<'_>) -> Option<Vec<(Box<str>, Option<usize>)>> {
    let count = pack.list()?;
    (0..count)
        .map(|_| {
            let name = pack.str()?;
            Some((name.into(), place_of(name)))
        })
        .collect()
}

struct BlockEvent<'a, 't> {
    type_name: &'t str,
    schema_version: u32,
    micros_since_last: i64,
    payload: Payload<'a>,
}

/// An event's header (its type's place in the block's list, schema version, microseconds since
/// the event before, payload form) and its payload.
fn next_event<'a, 't>(
    pack: &mut Pack<'a>,
    types: &'t [(Box<str>, Option<usize>)],
) -> Option<BlockEvent<'a, 't>> {
    let (type_name, place) = types.get(pack.number::<usize>()?)?;
    let (type_name, place) = (&**type_name, *place);
    let schema_version = pack.number()?;
    let micros_since_last = pack.int()?;
    let form = Form::numbered(pack.number()?)?;
    let bytes = pack.bin()?;
    let payload = match form {
        Form::Json => Payload::Json(std::str::from_utf8(bytes).ok()?),
        Form::MessagePack => Payload::MessagePack {
            place: place.unwrap_or(usize::MAX),
            bytes,
        },
    };
    Some(BlockEvent {
        type_name,
        schema_version,
        micros_since_last,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};
    use followfund_contracts::Event;
    use followfund_contracts::events::ReferralAccepted;
    use uuid::Uuid;

    use super::*;
    use crate::store::event::{Actor, FoldEvent};

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-04-01T09:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// `count` acceptances, a minute apart but for one that goes back in time.
    fn accepted(count: usize) -> Vec<NewEvent> {
        (0..count)
            .map(|n| {
                let event = Event::ReferralAccepted(ReferralAccepted {
                    referral_id: Uuid::from_u128(n as u128),
                });
                let minutes = if n == 3 { -5 } else { n as i64 };
                let at = start() + Duration::minutes(minutes);
                NewEvent::new("referral-x", &event, Actor::admin_cli(), at).unwrap()
            })
            .collect()
    }

    /// Reads `bytes` as a block of `events` from `first` a window of `window_bytes` at a time.
    fn read_in<T>(
        bytes: &[u8],
        (first, events): (u64, u64),
        range: (u64, u64),
        window_bytes: usize,
        read: fn(FoldRow<'_>) -> T,
        out: &mut Pieces<'_, T>,
    ) -> Result<(), StoreError> {
        let mut read_at = |offset: usize, into: &mut [u8]| {
            into.copy_from_slice(&bytes[offset..offset + into.len()]);
            Ok(())
        };
        let mut buffer = Vec::new();
        let block = Window::new(bytes.len(), &mut read_at, &mut buffer, window_bytes);
        super::read(block, first, events, range, read, out)
    }

    fn read_all(blocks: &[Block], from: u64, until: u64) -> Vec<FoldEvent> {
        read_all_in(blocks, from, until, WINDOW_BYTES)
    }

    fn read_all_in(blocks: &[Block], from: u64, until: u64, window: usize) -> Vec<FoldEvent> {
        let mut read = Pieces::whole(0);
        for block in blocks {
            let events = block.events as u64;
            let owned = |row: FoldRow<'_>| row.to_event().unwrap();
            let block_at = (block.first_position, events);
            read_in(
                &block.bytes,
                block_at,
                (from, until),
                window,
                owned,
                &mut read,
            )
            .unwrap_or_else(|error| panic!("{error}"));
        }
        read.finish()
    }

    #[test]
    fn a_group_larger_than_a_block_is_split_at_ten_thousand_events() {
        let events = accepted(BLOCK_EVENTS_MAX * 2 + 5);
        let blocks = blocks(101, &events);
        let shape: Vec<(u64, usize)> = blocks
            .iter()
            .map(|b| (b.first_position, b.events))
            .collect();
        assert_eq!(shape, [(101, 10_000), (10_101, 10_000), (20_101, 5)]);
        let read = read_all(&blocks, 101, 20_106);
        assert_eq!(read.len(), events.len());
        for (position, (read, written)) in (101..).zip(read.iter().zip(&events)) {
            assert_eq!(read.position, position);
            assert_eq!(read.event_type, written.event_type);
            assert_eq!(read.occurred_at, written.occurred_at, "{position}");
            assert_eq!(read.data, written.data);
        }
    }

    #[test]
    fn a_read_takes_only_the_positions_asked_for() {
        let blocks = blocks(1, &accepted(10));
        let read = read_all(&blocks, 3, 6);
        let positions: Vec<u64> = read.iter().map(|e| e.position).collect();
        assert_eq!(positions, [3, 4, 5]);
        assert_eq!(read[1].occurred_at, start() - Duration::minutes(5));
        assert!(read_all(&blocks, 11, 20).is_empty());
    }

    #[test]
    fn a_block_read_in_small_windows_reads_as_it_does_whole() {
        let blocks = blocks(1, &accepted(300));
        let whole = read_all(&blocks, 1, 301);
        assert_eq!(whole.len(), 300);
        // The list of types and each event must fit in a window; every other size cuts events
        // at other places.
        for window in [64, 65, 100, 127, 1_000, blocks[0].bytes.len()] {
            let windowed = read_all_in(&blocks, 1, 301, window);
            assert!(windowed == whole, "a window of {window} bytes");
        }
        // A window that the list of types (20 bytes here) or an event (about 30) does not fit in
        // reads nothing, and says which part of the block it could not read.
        let (bytes, at) = (&blocks[0].bytes, (1, 300));
        for (window, says) in [(8, "bad list of types"), (24, "cut short")] {
            let mut out = Pieces::whole(0);
            let read = read_in(bytes, at, (1, 301), window, |row| row.position, &mut out);
            let error = read.unwrap_err();
            assert!(error.to_string().contains(says), "{window}: {error}");
            assert!(out.finish().is_empty());
        }
    }

    #[test]
    fn a_block_cut_short_or_of_another_format_is_refused_naming_its_position() {
        let block = blocks(41, &accepted(3)).pop().unwrap();
        let mut out = Pieces::whole(0);
        let cut = &block.bytes[..block.bytes.len() - 4];
        let at = |bytes: &[u8], out: &mut Pieces<'_, u64>| {
            read_in(
                bytes,
                (41, 3),
                (41, 44),
                WINDOW_BYTES,
                |row| row.position,
                out,
            )
        };
        let error = at(cut, &mut out).unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { position: 41, reason } if reason.contains("cut short")),
            "{error}"
        );
        let mut later = block.bytes.clone();
        later[0] = 2;
        let error = at(&later, &mut out).unwrap_err();
        assert!(error.to_string().contains("format 2"), "{error}");
    }

    proptest::proptest! {
        /// A block's times are chrono's own, on the same day as the one before or not, and out
        /// of its range alike.
        #[test]
        fn times_are_chronos_own(
            start in 1_600_000_000_000_000i64..1_900_000_000_000_000,
            steps in proptest::collection::vec(-40_000_000_000i64..40_000_000_000, 1..30),
            any in proptest::num::i64::ANY,
        ) {
            let mut days = Days::default();
            let mut micros = start;
            for step in steps {
                micros += step;
                let expected = DateTime::from_timestamp_micros(micros);
                proptest::prop_assert_eq!(days.time_at(micros), expected);
            }
            proptest::prop_assert_eq!(days.time_at(any), DateTime::from_timestamp_micros(any));
        }
    }

    #[test]
    fn times_at_the_edges_of_a_day_and_of_chronos_range_are_chronos_own() {
        let mut days = Days::default();
        let midnight = start().timestamp_micros() - 9 * 3_600_000_000;
        for micros in [
            midnight - 1,
            midnight,
            midnight + MICROS_PER_DAY - 1,
            midnight + MICROS_PER_DAY,
            -1,
            0,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(
                days.time_at(micros),
                DateTime::from_timestamp_micros(micros),
                "{micros}"
            );
        }
    }
}
