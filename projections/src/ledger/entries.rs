//! Postings as the ledger keeps them, packed into bytes: a national year makes some thirty
//! million, and as 40-byte records they were the largest part of the read models.

use chrono::{Datelike, NaiveDate};
use followfund_contracts::Money;
use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::accounts::{AccountId, Cause, Posting, Rule};
use crate::compact;
use crate::event_type::TypeId;
use crate::varint;

/// A full list grows by this fraction of its length (or by the entry, if larger): the copies
/// stay linear in the bytes written, and the room unused stays under an eighth.
const ENTRIES_GROWTH_DIVISOR: usize = 8;

/// A posting without the prescription it is kept with, its amount in pence and its event type
/// by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) position: u64,
    pub(super) amount_pence: i64,
    pub(super) debit: AccountId,
    pub(super) credit: AccountId,
    pub(super) on: NaiveDate,
    pub(super) agreement_version: Option<u32>,
    pub(super) event_type: TypeId,
    pub(super) rule: Rule,
}

impl Entry {
    /// The entry for a posting of `amount_pence` from `credit` to `debit`, for `cause`, whose
    /// fact is of `event_type`; its prescription is where the entry is kept.
    pub(super) fn new(
        cause: &Cause,
        event_type: TypeId,
        (debit, credit): (AccountId, AccountId),
        amount_pence: i64,
    ) -> Entry {
        debug_assert_eq!(event_type.name(), cause.event_type);
        Entry {
            position: cause.position,
            amount_pence,
            debit,
            credit,
            on: cause.on,
            agreement_version: cause.agreement_version,
            event_type,
            rule: cause.rule,
        }
    }

    /// The posting this entry keeps, about `prescription_id` if any.
    pub(super) fn posting(&self, prescription_id: Option<Uuid>) -> Posting {
        Posting {
            debit: self.debit,
            credit: self.credit,
            amount: self.amount(),
            cause: Cause {
                position: self.position,
                on: self.on,
                event_type: self.event_type.name(),
                prescription_id,
                agreement_version: self.agreement_version,
                rule: self.rule,
            },
        }
    }

    pub(super) fn amount(&self) -> Money {
        Money::from_pence(self.amount_pence)
    }
}

/// Entries in the order made, positions never falling. Each is written against the entry
/// before it: a head byte saying which of the amount, the accounts, the agreement version, the
/// event type and the rule are as before, then the gap from the last position, the amount in
/// pence, the two account numbers, the change of day (zigzag), the agreement version plus one
/// (zero for none), and the event type's and rule's places in their lists, each but the gap and
/// the day only where it changed. A funding's session postings differ from one another only in
/// position and day, so most take four bytes; written in full they took eleven.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Entries {
    bytes: Vec<u8>,
    last: Last,
}

/// The head's bit for each field that may be as in the entry before.
const SAME_AMOUNT: u8 = 1;
const SAME_ACCOUNTS: u8 = 1 << 1;
const SAME_VERSION: u8 = 1 << 2;
const SAME_TYPE: u8 = 1 << 3;
const SAME_RULE: u8 = 1 << 4;
const SAME_ANY: u8 = SAME_AMOUNT | SAME_ACCOUNTS | SAME_VERSION | SAME_TYPE | SAME_RULE;

/// The most bytes an entry takes: its head, six integers and two places.
const ENTRY_BYTES_MAX: usize = 1 + 6 * varint::BYTES_MAX + 2;

/// What the next entry is written against: the last one, or all zeros before the first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Last {
    position: u64,
    day: i32,
    shape: Shape,
}

/// An entry's fields that a head byte may say are as before, as they are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Shape {
    amount_pence: u64,
    accounts: (u32, u32),
    /// The agreement version plus one, zero for none: four bytes, so that with the last
    /// entry's position and day it fits the 40 bytes each funding keeps.
    version: u32,
    event_type: u8,
    rule: u8,
}

const _: () = assert!(std::mem::size_of::<Last>() == 40);

impl Shape {
    fn of(entry: &Entry) -> Shape {
        Shape {
            amount_pence: entry.amount_pence.unsigned_abs(),
            accounts: (entry.debit.number(), entry.credit.number()),
            version: entry.agreement_version.map_or(0, |v| {
                v.checked_add(1)
                    .expect("agreement versions are numbered one by one from 1")
            }),
            event_type: entry.event_type.place(),
            rule: compact::place(entry.rule),
        }
    }

    /// The head byte of an entry of this shape written after one of `last`.
    fn head(&self, last: &Shape) -> u8 {
        let same = |is: bool, bit: u8| u8::from(is) * bit;
        same(self.amount_pence == last.amount_pence, SAME_AMOUNT)
            | same(self.accounts == last.accounts, SAME_ACCOUNTS)
            | same(self.version == last.version, SAME_VERSION)
            | same(self.event_type == last.event_type, SAME_TYPE)
            | same(self.rule == last.rule, SAME_RULE)
    }
}

/// One entry's bytes, written whole and then copied into the list once: byte by byte, each
/// push checked the list's room.
struct Encoded {
    bytes: [u8; ENTRY_BYTES_MAX],
    len: usize,
}

impl Encoded {
    fn new(head: u8) -> Encoded {
        let mut bytes = [0; ENTRY_BYTES_MAX];
        bytes[0] = head;
        Encoded { bytes, len: 1 }
    }

    fn number(&mut self, value: u64) {
        self.len += varint::write(&mut self.bytes[self.len..], value);
    }

    fn byte(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Entries {
    /// No entries yet, with room for `bytes` of them.
    pub(super) fn with_capacity(bytes: usize) -> Entries {
        Entries {
            bytes: Vec::with_capacity(bytes),
            ..Entries::default()
        }
    }

    /// Appends `entry`, whose position must not come before the last one's.
    pub(super) fn push(&mut self, entry: &Entry) {
        assert!(
            entry.position >= self.last.position,
            "entries are made in log order"
        );
        assert!(entry.amount_pence >= 0, "postings move positive amounts");
        let (shape, day) = (Shape::of(entry), entry.on.num_days_from_ce());
        let head = shape.head(&self.last.shape);
        // Each field but the gap and the day is written only where it changed: a run of
        // `Option`s flattened cost more than the writing, for every posting of a replay.
        let changed = |bit: u8| head & bit == 0;
        let mut encoded = Encoded::new(head);
        encoded.number(entry.position - self.last.position);
        if changed(SAME_AMOUNT) {
            encoded.number(shape.amount_pence);
        }
        if changed(SAME_ACCOUNTS) {
            encoded.number(u64::from(shape.accounts.0));
            encoded.number(u64::from(shape.accounts.1));
        }
        encoded.number(varint::zigzag(i64::from(day) - i64::from(self.last.day)));
        if changed(SAME_VERSION) {
            encoded.number(u64::from(shape.version));
        }
        if changed(SAME_TYPE) {
            encoded.byte(shape.event_type);
        }
        if changed(SAME_RULE) {
            encoded.byte(shape.rule);
        }
        self.make_room(encoded.len);
        self.bytes.extend_from_slice(encoded.as_bytes());
        self.last = Last {
            position: entry.position,
            day,
            shape,
        };
    }

    /// Makes room for `needed` more bytes, growing a full list by an eighth rather than doubling
    /// it: a funding's list is made the size its sessions need and fitted when it closes, and a
    /// payment run's settlement that then added one posting to a closed funding doubled its
    /// list, leaving some 150 MB of a national year's postings unused.
    fn make_room(&mut self, needed: usize) {
        let spare = self.bytes.capacity() - self.bytes.len();
        if spare < needed {
            let growth = needed.max(self.bytes.len() / ENTRIES_GROWTH_DIVISOR);
            self.bytes.reserve_exact(growth);
        }
    }

    /// Gives back the room the list grew into; it may still grow again.
    pub(super) fn fit(&mut self) {
        crate::fit::fit(&mut self.bytes);
    }

    /// The entries as written.
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The last byte written, for a prefetch of the list's end, where the next entry goes.
    pub(super) fn last_byte(&self) -> Option<&u8> {
        self.bytes.last()
    }

    /// The entries, in the order made.
    pub(super) fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        Reader::new(&self.bytes).map(|entry| entry.expect("entries were checked when made or read"))
    }

    /// Rebuilds the list from its bytes, refusing any that do not decode to entries: a
    /// snapshot is checked, not trusted.
    pub(super) fn from_bytes(bytes: Vec<u8>) -> Result<Entries, &'static str> {
        // Days are checked against the dates' range rather than made into dates: making them
        // was a fifth of the check.
        let days = NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce();
        let mut reader = Reader::new(&bytes);
        while !reader.rest.is_empty() {
            reader.advance()?;
            if !days.contains(&reader.last.day) {
                return Err("a day is not a date");
            }
        }
        let last = reader.last;
        Ok(Entries { bytes, last })
    }
}

/// Decodes entries one at a time, carrying the entry each is written against.
struct Reader<'a> {
    rest: &'a [u8],
    last: Last,
}

impl Iterator for Reader<'_> {
    type Item = Result<Entry, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        (!self.rest.is_empty()).then(|| self.entry())
    }
}

impl<'a> Reader<'a> {
    /// A reader of entries, the first written against all zeros.
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            rest: bytes,
            last: Last::default(),
        }
    }

    fn entry(&mut self) -> Result<Entry, &'static str> {
        self.advance()?;
        let Last {
            position,
            day,
            shape,
        } = self.last;
        Ok(Entry {
            position,
            amount_pence: shape.amount_pence as i64,
            debit: AccountId::numbered(shape.accounts.0),
            credit: AccountId::numbered(shape.accounts.1),
            on: NaiveDate::from_num_days_from_ce_opt(day).ok_or("a day is not a date")?,
            agreement_version: shape.version.checked_sub(1),
            event_type: TypeId::at_place(shape.event_type).expect("checked when read"),
            rule: compact::at_place::<Rule>(shape.rule).expect("checked when read"),
        })
    }

    /// Reads the next entry into the last, checking each field where it is written: most
    /// entries write only a gap and a change of day, and checking every field of each entry
    /// was most of a restart's check of thirty million postings.
    fn advance(&mut self) -> Result<(), &'static str> {
        let head = self.byte()?;
        if head & !SAME_ANY != 0 {
            return Err("an entry's head has bits that mean nothing");
        }
        let changed = |bit: u8| head & bit == 0;
        let mut shape = self.last.shape;
        let gap = self.number()?;
        if changed(SAME_AMOUNT) {
            let amount_pence = self.number()?;
            i64::try_from(amount_pence).map_err(|_| "an amount is too large")?;
            shape.amount_pence = amount_pence;
        }
        if changed(SAME_ACCOUNTS) {
            shape.accounts = (self.account()?, self.account()?);
        }
        let day_change = varint::unzigzag(self.number()?);
        if changed(SAME_VERSION) {
            shape.version =
                u32::try_from(self.number()?).map_err(|_| "an agreement version is too large")?;
        }
        if changed(SAME_TYPE) {
            shape.event_type = self.byte()?;
            TypeId::at_place(shape.event_type).ok_or("no event type at that place")?;
        }
        if changed(SAME_RULE) {
            shape.rule = self.byte()?;
            compact::at_place::<Rule>(shape.rule).ok_or("no rule at that place")?;
        }
        let position = self
            .last
            .position
            .checked_add(gap)
            .ok_or("a position is beyond 2^64")?;
        let day = i64::from(self.last.day)
            .checked_add(day_change)
            .and_then(|day| i32::try_from(day).ok())
            .ok_or("a day is out of range")?;
        self.last = Last {
            position,
            day,
            shape,
        };
        Ok(())
    }

    fn number(&mut self) -> Result<u64, &'static str> {
        varint::take(&mut self.rest).ok_or("an entry is cut short or a number too long")
    }

    fn account(&mut self) -> Result<u32, &'static str> {
        let number = u32::try_from(self.number()?).ok();
        number
            .filter(|&number| AccountId::try_numbered(number).is_some())
            .ok_or("an account number is too large")
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        let (&byte, rest) = self.rest.split_first().ok_or("an entry is cut short")?;
        self.rest = rest;
        Ok(byte)
    }
}

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.bytes)
    }
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entries, D::Error> {
        let bytes = compact::byte_buf(deserializer)?;
        Entries::from_bytes(bytes).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use followfund_contracts::terms::Clause;
    use proptest::prelude::*;

    use super::*;
    use crate::compact::Listed;

    fn entry(position: u64, amount_pence: i64, on: NaiveDate, version: Option<u32>) -> Entry {
        Entry {
            position,
            amount_pence,
            debit: AccountId::numbered(1_204),
            credit: AccountId::numbered(7),
            on,
            agreement_version: version,
            event_type: TypeId::of("session.attended"),
            rule: Rule::Tariff(Clause::SessionFee),
        }
    }

    fn day(days: i32) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(days).unwrap()
    }

    #[test]
    fn a_sessions_posting_after_another_takes_four_bytes() {
        let mut entries = Entries::default();
        // The first entry is written in full, with its whole day number; the next, as the
        // first but for a gap of 4,321 positions and a change of one day.
        entries.push(&entry(18_000_000, 2_500, day(739_000), Some(1)));
        let first = entries.bytes.len();
        entries.push(&entry(18_004_321, 2_500, day(739_001), Some(1)));
        assert_eq!(first, 1 + 4 + 2 + 2 + 1 + 3 + 1 + 1 + 1);
        assert_eq!(entries.bytes.len() - first, 1 + 2 + 1);
        // A change of amount writes the amount again, and only that.
        entries.push(&entry(18_004_322, 30_000, day(739_001), Some(1)));
        assert_eq!(entries.bytes.len() - first, 4 + 1 + 1 + 3 + 1);
        let read: Vec<Entry> = entries.iter().collect();
        assert_eq!(read[1], entry(18_004_321, 2_500, day(739_001), Some(1)));
        assert_eq!(read[2], entry(18_004_322, 30_000, day(739_001), Some(1)));
    }

    #[test]
    fn a_fitted_list_grows_by_an_eighth_not_by_doubling() {
        let mut entries = Entries::default();
        for session in 0..16 {
            entries.push(&entry(1_000 + session, 2_500, day(739_000), Some(1)));
        }
        // As a fit leaves a list that had room to give back.
        entries.bytes.shrink_to_fit();
        let fitted_bytes = entries.bytes.len();
        assert_eq!(entries.bytes.capacity(), fitted_bytes);
        // A payment run settles the closed funding: one more posting.
        entries.push(&entry(2_000, 30_000, day(739_030), None));
        let unused_bytes = entries.bytes.capacity() - entries.bytes.len();
        assert!(entries.bytes.len() > fitted_bytes);
        assert!(
            unused_bytes <= fitted_bytes / ENTRIES_GROWTH_DIVISOR,
            "{unused_bytes} bytes unused after {fitted_bytes}"
        );
    }

    #[test]
    #[should_panic(expected = "entries are made in log order")]
    fn an_entry_before_the_last_is_a_bug() {
        let mut entries = Entries::default();
        entries.push(&entry(10, 1, day(739_000), None));
        entries.push(&entry(9, 1, day(739_000), None));
    }

    #[test]
    fn bytes_that_do_not_decode_to_entries_are_refused() {
        let mut entries = Entries::default();
        entries.push(&entry(10, 1, day(739_000), None));
        let bytes = entries.bytes.clone();
        let cut = bytes[..bytes.len() - 1].to_vec();
        assert_eq!(
            Entries::from_bytes(cut).unwrap_err(),
            "an entry is cut short"
        );
        let mut bad_rule = bytes.clone();
        *bad_rule.last_mut().unwrap() = 200;
        assert_eq!(
            Entries::from_bytes(bad_rule).unwrap_err(),
            "no rule at that place"
        );
        let mut bad_type = bytes.clone();
        let at = bad_type.len() - 2;
        bad_type[at] = 250;
        assert_eq!(
            Entries::from_bytes(bad_type).unwrap_err(),
            "no event type at that place"
        );
        let mut bad_head = bytes.clone();
        bad_head[0] = 1 << 5;
        assert_eq!(
            Entries::from_bytes(bad_head).unwrap_err(),
            "an entry's head has bits that mean nothing"
        );
        // A day past the last date there is, its event type and rule as the entry's.
        let mut past_dates = vec![0];
        let beyond = i64::from(NaiveDate::MAX.num_days_from_ce()) + 1;
        for number in [1, 1, 1_204, 7, varint::zigzag(beyond), 0] {
            varint::put(&mut past_dates, number);
        }
        past_dates.extend_from_slice(&bytes[bytes.len() - 2..]);
        assert_eq!(
            Entries::from_bytes(past_dates).unwrap_err(),
            "a day is not a date"
        );
        // An account number no account id holds, and a version past any agreement's.
        let written = |numbers: [u64; 6]| {
            let mut written = vec![0];
            for number in numbers {
                varint::put(&mut written, number);
            }
            written.extend_from_slice(&bytes[bytes.len() - 2..]);
            Entries::from_bytes(written).unwrap_err()
        };
        let today = varint::zigzag(739_000);
        let last_account = u64::from(u32::MAX);
        assert_eq!(
            written([1, 1, last_account, 7, today, 0]),
            "an account number is too large"
        );
        assert_eq!(
            written([1, 1, 1_204, 7, today, 1 << 32]),
            "an agreement version is too large"
        );
        assert_eq!(Entries::from_bytes(bytes).unwrap(), entries);
    }

    #[test]
    #[should_panic(expected = "agreement versions are numbered one by one from 1")]
    fn an_agreement_version_past_the_last_number_is_a_bug() {
        let mut entries = Entries::default();
        entries.push(&entry(10, 1, day(739_000), Some(u32::MAX)));
    }

    proptest! {
        #[test]
        fn entries_read_back_as_pushed(
            steps in prop::collection::vec(
                (
                    0u64..100_000,
                    prop_oneof![Just(2_500i64), 0i64..i64::MAX],
                    0..3usize,
                    -400i32..400,
                    prop::option::of(prop_oneof![Just(1u32), 0..u32::MAX]),
                    0..Rule::ALL.len(),
                ),
                0..40,
            ),
        ) {
            let (mut position, mut days) = (0u64, 739_000i32);
            let mut pushed = Vec::new();
            let mut entries = Entries::default();
            for (gap, amount_pence, debit, day_change, version, rule) in steps {
                position += gap;
                days += day_change;
                let made = Entry {
                    debit: AccountId::numbered([0, 7, 1_204][debit]),
                    rule: Rule::ALL[rule],
                    ..entry(position, amount_pence, day(days), version)
                };
                entries.push(&made);
                pushed.push(made);
            }
            prop_assert_eq!(entries.iter().collect::<Vec<_>>(), pushed);
            let snapshot = rmp_serde::to_vec(&entries).unwrap();
            prop_assert_eq!(rmp_serde::from_slice::<Entries>(&snapshot).unwrap(), entries);
        }
    }
}
