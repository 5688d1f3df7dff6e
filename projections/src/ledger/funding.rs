//! What one funded prescription has committed, earned and been paid, and the postings that
//! moved its money, kept with it in a compact form: a national year makes tens of millions of
//! them, nearly all about one prescription each.

use chrono::{Datelike, NaiveDate};
use followfund_contracts::Money;
use followfund_contracts::events::PaymentLineKind;
use followfund_contracts::terms::FinancialYear;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::accounts::{Account, AccountId, AccountKind, Accounts, Rule};
use super::agreements::Agreement;
use super::entries::Entries;
use crate::compact::packed::{pack_all, take_list};
use crate::compact::{Packed, put_bytes, put_number, take_byte, take_bytes, take_id, take_number};
use crate::journeys::SessionPlace;
use crate::prefetch::prefetch;
use crate::varint;

/// What one funded prescription has committed and earned. A national year holds over a million
/// of these, so the agreement is kept by its place among the ledger's agreements (which carry
/// its id, anchor and provider; see [`super::Ledger::agreement_of`]) and money in pence: a
/// posting is always to the penny.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funding {
    /// The prescription funded.
    #[serde(with = "crate::compact::id")]
    pub prescription_id: Uuid,
    /// The place of the agreement it was issued under.
    pub(super) agreement: u32,
    /// The year whose budget bears it all: the year it was issued in.
    pub financial_year: FinancialYear,
    /// Commitment not yet turned into payables or released.
    pub(super) committed_pence: i64,
    /// Everything it has earned so far.
    pub(super) earned_pence: i64,
    /// Attended sessions that count (retractions excluded).
    pub attended: u32,
    /// Sessions charged for, attended or missed without notice.
    pub sessions_charged: u32,
    /// False once completed, ended or declined: its commitment has been released.
    pub open: bool,
    /// The sessions charged for, in the order charged, so that a retraction finds what to
    /// reverse.
    #[serde(with = "crate::compact::packed")]
    pub(super) sessions: Vec<ChargedSession>,
    /// What it has earned or must give back and no payment run has settled yet.
    pub(super) accruals: Vec<Accrual>,
    /// Every posting about it, in the order made.
    pub(super) postings: Entries,
    /// The numbers of its earned and committed accounts, once a session's charge has posted
    /// to them: each charge names both, and finding an account by name searches them all.
    pub(super) earned_account_id: Option<AccountId>,
    pub(super) committed_account_id: Option<AccountId>,
}

const _: () = assert!(std::mem::size_of::<Funding>() == 176);

/// A session the ledger charged for (its charges may be nothing, past the funded sessions), in
/// one word: the position of the fact that charged it, the session's place among its
/// prescription's sessions (see [`SessionPlace`]), and two flags. A national year charges some
/// fifteen million sessions; with the session's id beside the word they took 24 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ChargedSession {
    /// The position, shifted up by [`ChargedSession::PLACE_BITS`] and the flags' two bits; the
    /// place; `PAID` and `ATTENDED` in the lowest bits.
    packed: u64,
}

impl ChargedSession {
    /// Attended, as opposed to missed without notice: only an attendance is retracted.
    const ATTENDED: u64 = 1;
    /// A payment run has settled what it earned.
    const PAID: u64 = 1 << 1;
    const FLAGS: u64 = Self::ATTENDED | Self::PAID;
    const FLAG_BITS: u32 = 2;
    /// Bits for the session's place: a prescription's four-millionth session and those after
    /// it are not charged (a course runs to about a dozen).
    const PLACE_BITS: u32 = 22;
    /// Bits for the position: a log of a trillion events.
    const POSITION_BITS: u32 = 64 - Self::PLACE_BITS - Self::FLAG_BITS;

    /// Whether a session at `place` can be charged: its place fits the word.
    pub(super) fn chargeable(place: SessionPlace) -> bool {
        place < 1 << Self::PLACE_BITS
    }

    /// The session at `place`, charged by the fact at `position`, neither attended nor paid yet.
    pub(super) fn charged(place: SessionPlace, position: u64) -> ChargedSession {
        assert!(Self::chargeable(place), "a chargeable session's place");
        assert!(
            position < 1 << Self::POSITION_BITS,
            "positions stay below 2^40"
        );
        let shifted = (position << Self::PLACE_BITS | u64::from(place)) << Self::FLAG_BITS;
        ChargedSession { packed: shifted }
    }

    /// The fact that charged it: its tariff postings and accruals carry this position.
    pub(super) fn position(&self) -> u64 {
        self.packed >> (Self::PLACE_BITS + Self::FLAG_BITS)
    }

    /// The session's place among its prescription's sessions.
    pub(super) fn place(&self) -> SessionPlace {
        let place = (self.packed >> Self::FLAG_BITS) & ((1 << Self::PLACE_BITS) - 1);
        SessionPlace::try_from(place).expect("a place of 22 bits")
    }

    pub(super) fn attended(&self) -> bool {
        self.packed & Self::ATTENDED != 0
    }

    pub(super) fn paid(&self) -> bool {
        self.packed & Self::PAID != 0
    }

    pub(super) fn mark_attended(&mut self) {
        self.packed |= Self::ATTENDED;
    }

    pub(super) fn mark_paid(&mut self) {
        self.packed |= Self::PAID;
    }

    /// The flags.
    fn flags(&self) -> u64 {
        self.packed & Self::FLAGS
    }
}

const _: () = assert!(std::mem::size_of::<ChargedSession>() == 8);

/// The number `slot` keeps for `account`, numbering the account and keeping its number if
/// the slot is empty. A kept number stays right: accounts are numbered once, never again.
fn numbered(slot: &mut Option<AccountId>, accounts: &mut Accounts, account: Account) -> AccountId {
    match *slot {
        Some(id) => {
            debug_assert_eq!(*accounts.get(id), account, "a kept account number");
            id
        }
        None => *slot.insert(accounts.id(&account)),
    }
}

/// The id, then each field in order: counts, numbers and positions as varints, amounts and the
/// year zigzagged, the flag as a byte, an account as its number plus one (zero for none), lists
/// as their count then each item, and the postings as their length then their bytes, checked
/// as they are read.
impl Packed for Funding {
    fn pack(&self, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(self.prescription_id.as_bytes());
        varint::put(bytes, u64::from(self.agreement));
        let year = self.financial_year.first_day().year();
        varint::put(bytes, varint::zigzag(i64::from(year)));
        varint::put(bytes, varint::zigzag(self.committed_pence));
        varint::put(bytes, varint::zigzag(self.earned_pence));
        varint::put(bytes, u64::from(self.attended));
        varint::put(bytes, u64::from(self.sessions_charged));
        bytes.push(u8::from(self.open));
        pack_all(&self.sessions, bytes);
        pack_all(&self.accruals, bytes);
        put_bytes(bytes, self.postings.as_bytes());
        for account in [self.earned_account_id, self.committed_account_id] {
            put_number(bytes, account.map(AccountId::as_number));
        }
    }

    fn unpack(bytes: &mut &[u8]) -> Option<Funding> {
        let prescription_id = take_id(bytes)?;
        let agreement = u32::try_from(varint::take(bytes)?).ok()?;
        let year = i32::try_from(varint::unzigzag(varint::take(bytes)?)).ok()?;
        // The years whose every day is a date.
        let dates = NaiveDate::MIN.year()..NaiveDate::MAX.year();
        let financial_year = dates
            .contains(&year)
            .then(|| FinancialYear::starting(year))?;
        let committed_pence = varint::unzigzag(varint::take(bytes)?);
        let earned_pence = varint::unzigzag(varint::take(bytes)?);
        let attended = u32::try_from(varint::take(bytes)?).ok()?;
        let sessions_charged = u32::try_from(varint::take(bytes)?).ok()?;
        let open = match take_byte(bytes)? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let sessions = take_list(bytes)?;
        let accruals = take_list(bytes)?;
        let postings = Entries::from_bytes(take_bytes(bytes)?.to_vec()).ok()?;
        let earned_account_id = take_number(bytes)?.map(AccountId::of_number);
        let committed_account_id = take_number(bytes)?.map(AccountId::of_number);
        Some(Funding {
            prescription_id,
            agreement,
            financial_year,
            committed_pence,
            earned_pence,
            attended,
            sessions_charged,
            open,
            sessions,
            accruals,
            postings,
            earned_account_id,
            committed_account_id,
        })
    }
}

/// The position, the day zigzagged, the kind's place and the amount zigzagged.
impl Packed for Accrual {
    fn pack(&self, bytes: &mut Vec<u8>) {
        varint::put(bytes, self.position);
        varint::put(bytes, varint::zigzag(i64::from(self.on.num_days_from_ce())));
        bytes.push(crate::compact::place(self.kind));
        varint::put(bytes, varint::zigzag(self.amount_pence));
    }

    fn unpack(bytes: &mut &[u8]) -> Option<Accrual> {
        let position = varint::take(bytes)?;
        let day = i32::try_from(varint::unzigzag(varint::take(bytes)?)).ok()?;
        Some(Accrual {
            position,
            on: NaiveDate::from_num_days_from_ce_opt(day)?,
            kind: crate::compact::at_place(take_byte(bytes)?)?,
            amount_pence: varint::unzigzag(varint::take(bytes)?),
        })
    }
}

/// The position with the flags below it, then the place, each a varint: a snapshot writes
/// small numbers in few bytes, and the word's place bits would make every position large.
impl Packed for ChargedSession {
    fn pack(&self, bytes: &mut Vec<u8>) {
        let position = self.position() << Self::FLAG_BITS | self.flags();
        crate::varint::put(bytes, position);
        crate::varint::put(bytes, u64::from(self.place()));
    }

    fn unpack(bytes: &mut &[u8]) -> Option<ChargedSession> {
        let position = crate::varint::take(bytes)?;
        let place = SessionPlace::try_from(crate::varint::take(bytes)?).ok()?;
        let flags = position & Self::FLAGS;
        let position = position >> Self::FLAG_BITS;
        if !Self::chargeable(place) || position >= 1 << Self::POSITION_BITS {
            return None;
        }
        let mut session = ChargedSession::charged(place, position);
        session.packed |= flags;
        Some(session)
    }
}

/// One amount a prescription earned (or, retracted after payment, owes back), waiting for a
/// payment run. A run settles it and it leaves the list: the run's postings and lines say what
/// was paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accrual {
    /// The fact that caused it.
    pub position: u64,
    /// The day of the work (or of the retraction, for a recovery).
    #[serde(with = "crate::compact::day")]
    pub on: NaiveDate,
    /// A payment or a recovery.
    #[serde(with = "crate::compact::listed")]
    pub kind: PaymentLineKind,
    /// The amount in pence, positive.
    pub amount_pence: i64,
}

impl Accrual {
    /// The amount, positive.
    pub fn amount(&self) -> Money {
        Money::from_pence(self.amount_pence)
    }
}

/// Bytes a funding's postings take in [`Entries`] for each of its sessions, about: four for a
/// session's after another's, eleven for one after a payment or a fee, and as many again for the
/// payment. Room is made for them when a prescription is issued; too little, and the list
/// regrows and moves several times.
const ENTRY_BYTES: usize = 9;
/// Postings beyond one a session: the commitment, an engagement fee, a completion fee and the
/// release.
const POSTINGS_BESIDE_SESSIONS: usize = 4;
/// Accruals a funding holds at once, about: a month's sessions, until a payment run settles them.
const ACCRUALS_AT_ONCE: usize = 4;

/// Filed under the prescription it funds.
impl crate::records::Keyed for Funding {
    fn id(&self) -> Uuid {
        self.prescription_id
    }
}

impl Funding {
    /// A prescription just issued under the agreement at place `agreement`, with its
    /// commitment and nothing earned, and room for the `sessions` its tariff funds: its lists
    /// grow with every session, and growing them a step at a time moved each list several times
    /// over.
    pub(super) fn issued(
        prescription_id: Uuid,
        agreement: u32,
        financial_year: FinancialYear,
        committed: Money,
        sessions: usize,
    ) -> Funding {
        Funding {
            prescription_id,
            agreement,
            financial_year,
            committed_pence: to_pence(committed),
            earned_pence: 0,
            attended: 0,
            sessions_charged: 0,
            open: true,
            sessions: Vec::with_capacity(sessions),
            accruals: Vec::with_capacity(ACCRUALS_AT_ONCE),
            postings: Entries::with_capacity(ENTRY_BYTES * (sessions + POSTINGS_BESIDE_SESSIONS)),
            earned_account_id: None,
            committed_account_id: None,
        }
    }

    /// Commitment not yet turned into payables or released.
    pub fn committed(&self) -> Money {
        Money::from_pence(self.committed_pence)
    }

    /// Everything it has earned so far.
    pub fn earned(&self) -> Money {
        Money::from_pence(self.earned_pence)
    }

    /// Adds `amount_pence` (which may be negative) to what is committed.
    pub(super) fn change_committed(&mut self, amount_pence: i64) {
        self.committed_pence = pence_sum(self.committed_pence, amount_pence);
    }

    /// Adds `amount_pence` (which may be negative) to what is earned.
    pub(super) fn change_earned(&mut self, amount_pence: i64) {
        self.earned_pence = pence_sum(self.earned_pence, amount_pence);
    }

    /// Where its earnings go under `agreement`, its own: a payable to the provider, or
    /// self-delivered cost when the anchor runs the activity itself.
    pub(super) fn earned_account(&self, agreement: &Agreement) -> Account {
        let (anchor, year) = (&agreement.anchor, self.financial_year);
        if agreement.is_self_delivery() {
            Account::of(AccountKind::SelfDelivered, anchor, year)
        } else {
            Account::between(AccountKind::Payable, anchor, &agreement.provider, year)
        }
    }

    /// The number of its earned account, numbering the account if it is new.
    pub(super) fn earned_account_id(
        &mut self,
        agreement: &Agreement,
        accounts: &mut Accounts,
    ) -> AccountId {
        let account = self.earned_account(agreement);
        numbered(&mut self.earned_account_id, accounts, account)
    }

    /// The number of the account its commitment is held in, numbering it if it is new.
    pub(super) fn committed_account_id(
        &mut self,
        agreement: &Agreement,
        accounts: &mut Accounts,
    ) -> AccountId {
        let account = Account::of(
            AccountKind::Committed,
            &agreement.anchor,
            self.financial_year,
        );
        numbered(&mut self.committed_account_id, accounts, account)
    }

    /// Reads the record itself, where its lists are and how long: the first of the two reads
    /// [`Ledger::warm`] makes of each funding, so that every record of a window is on its way
    /// into the cache before any of their lists is read.
    ///
    /// [`Ledger::warm`]: super::Ledger::warm
    pub(super) fn touch_record(&self) -> u64 {
        let lengths = self.sessions.len() ^ self.accruals.len() ^ self.postings.as_bytes().len();
        // The record spans three or four cache lines; the fold reads its id and whether it is open
        // even where it reads no list.
        let (id_high, _) = self.prescription_id.as_u64_pair();
        let fields = u64::from(self.sessions_charged ^ self.agreement) ^ u64::from(self.open);
        fields ^ id_high ^ lengths as u64
    }

    /// Prefetches the ends of its lists, which folding it next will write (and a payment run
    /// reads its accruals from the first): the second of [`Ledger::warm`]'s passes, which does
    /// not wait for them.
    ///
    /// [`Ledger::warm`]: super::Ledger::warm
    pub(super) fn prefetch_lists(&self) {
        let ends = [self.sessions.first(), self.sessions.last()];
        ends.into_iter().flatten().for_each(prefetch);
        let ends = [self.accruals.first(), self.accruals.last()];
        ends.into_iter().flatten().for_each(prefetch);
        self.postings.last_byte().into_iter().for_each(prefetch);
    }

    /// Gives back the room its lists grew into, once it is closed: a closed funding gains a
    /// posting or an accrual only when a session is retracted.
    pub(super) fn fit(&mut self) {
        crate::fit::fit(&mut self.sessions);
        crate::fit::fit(&mut self.accruals);
        self.postings.fit();
    }

    /// Whether the ledger has charged for the session at `place` (and not since reversed it).
    pub(super) fn charged(&self, place: SessionPlace) -> bool {
        self.sessions.iter().any(|s| s.place() == place)
    }

    /// What it has earned or owes back that no run has settled yet.
    pub fn accruals(&self) -> &[Accrual] {
        &self.accruals
    }

    /// Settles the accruals of `kind` that a run's line names by position, marking the sessions
    /// they were for as paid.
    pub(super) fn settle(&mut self, kind: PaymentLineKind, positions: &[u64]) {
        let settled = |a: &Accrual| a.kind == kind && positions.contains(&a.position);
        for accrual in self.accruals.iter().filter(|a| settled(a)) {
            if kind == PaymentLineKind::Payment {
                for session in &mut self.sessions {
                    if session.position() == accrual.position {
                        session.mark_paid();
                    }
                }
            }
        }
        self.accruals.retain(|a| !settled(a));
        if !self.open {
            crate::fit::fit(&mut self.accruals);
        }
    }

    /// The amounts a session's charge posted, in the order posted.
    pub(super) fn charges_at(&self, position: u64) -> Vec<Money> {
        self.postings
            .iter()
            .filter(|e| e.position == position && matches!(e.rule, Rule::Tariff(_)))
            .map(|e| e.amount())
            .collect()
    }
}

/// An amount in pence; the ledger posts and keeps money to the penny.
pub(super) fn to_pence(amount: Money) -> i64 {
    amount
        .to_pence()
        .expect("ledger amounts are to the penny and far below 2^63 pence")
}

/// The sum of two amounts in pence.
fn pence_sum(a_pence: i64, b_pence: i64) -> i64 {
    a_pence
        .checked_add(b_pence)
        .expect("ledger sums stay far below the limit")
}
