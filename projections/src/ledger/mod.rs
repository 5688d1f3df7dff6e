//! The double-entry ledger of money that follows the patient: budgets allocated to anchors,
//! commitments made when prescriptions are issued, payables accrued as sessions are attended
//! under the tariff in force that day, releases when prescriptions end, and capacity-building
//! grants. Every posting debits one account and credits another by the same amount, so the
//! balances of all accounts always sum to zero.

mod accounts;
mod agreements;
mod entries;
mod funding;
mod run_lines;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use followfund_contracts::events::{
    BudgetAccount, PaymentLine, PaymentLineKind, PaymentRunRecorded, PrescriptionIssued,
};
use followfund_contracts::terms::{Charges, FinancialYear};
use followfund_contracts::{Event, Money, OdsCode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use accounts::{Account, AccountId, AccountKind, Cause, Posting, Rule};

use accounts::Accounts;
pub use agreements::{Agreement, AgreementVersion, Agreements};
pub use funding::{Accrual, Funding};
pub use run_lines::RunLines;

use entries::{Entries, Entry};
use funding::ChargedSession;

use crate::Fact;
use crate::event_type::TypeId;
use crate::journeys::{Located, SessionPlace};
use crate::records::Records;

/// Sessions a prescription whose tariff funds any number is expected to have, for the room
/// made for them when it is issued: a course of social prescribing runs to about a dozen.
const SESSIONS_EXPECTED: u32 = 12;

/// In [`Ledger::by_prescription`], a prescription without a funding.
const NOT_FUNDED: u32 = u32::MAX;

/// The ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Agreements and their versions.
    pub agreements: Agreements,
    /// Postings about no prescription (allocations and grants), in the order made; those about
    /// a prescription are kept with its funding.
    postings: Entries,
    /// Every account posted to, with its balance; debits add, credits subtract.
    accounts: Accounts,
    /// Allocations received, by `anchor:year`.
    allocated: BTreeMap<String, Money>,
    #[serde(with = "crate::records::packed")]
    funding: Records<Funding>,
    runs: BTreeMap<Uuid, PaymentRun>,
    /// Prescriptions waiting for a place, by agreement, first come first.
    waiting: BTreeMap<Uuid, Vec<Uuid>>,
    /// Open funded prescriptions by agreement: what capacity checks count, kept as a count
    /// because a command checks it for every issue.
    open_by_agreement: BTreeMap<Uuid, u32>,
    /// Funded prescriptions by paying anchor, as their places among the fundings, so a payment
    /// run reads only its own.
    by_anchor: BTreeMap<OdsCode, Vec<u32>>,
    /// Each prescription's funding place ([`NOT_FUNDED`] where it has none), by the
    /// prescription's place among the journeys', which the journeys' fold of a fact gives.
    /// Found by the hash of its id, a funding cost the ledger's fold a probe of an index of
    /// eight megabytes for each session: about a seventh of its thread's time, where this list
    /// of some six megabytes is read mostly near its end, where the open prescriptions are.
    /// A snapshot does not hold it: it says nothing the journeys' ids and the fundings do not,
    /// and is rebuilt from them when the read models are put together
    /// ([`Ledger::place_prescriptions`]).
    #[serde(skip)]
    by_prescription: Vec<u32>,
}

/// A payment run as the ledger recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRun {
    /// The run's id.
    pub run_id: Uuid,
    /// The anchor that paid.
    pub anchor: OdsCode,
    /// The last day of work it settled.
    pub through: NaiveDate,
    /// Its lines, from every part.
    pub lines: RunLines,
    /// The position of the run's first part.
    pub position: u64,
    /// How many parts the run was recorded in, and which have been folded.
    pub parts: u32,
    /// The parts folded so far.
    pub parts_recorded: std::collections::BTreeSet<u32>,
}

/// What pricing a fact about a funded prescription reads and changes.
struct Pricing<'a> {
    accounts: &'a mut Accounts,
    funding: &'a mut Funding,
    agreement: &'a Agreement,
    version: &'a AgreementVersion,
}

/// An anchor's budget for a year, as the ledger stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetPosition {
    /// Allocated by commissioners.
    pub allocated: Money,
    /// Set aside for issued prescriptions.
    pub committed: Money,
    /// Earned by providers (paid or not) and spent on self-delivery.
    pub accrued: Money,
    /// Paid out.
    pub paid: Money,
    /// Neither committed nor accrued.
    pub available: Money,
}

impl Ledger {
    /// Every posting: those about no prescription in the order made, then each funded
    /// prescription's in the order made, prescriptions in the order issued.
    pub fn postings(&self) -> impl Iterator<Item = Posting> + use<'_> {
        let general = self.postings.iter().map(|entry| entry.posting(None));
        let funded = self.funding.iter().flat_map(|(id, funding)| {
            funding
                .postings
                .iter()
                .map(move |entry| entry.posting(Some(id)))
        });
        general.chain(funded)
    }

    /// The postings about one prescription, in the order made.
    pub fn postings_of(&self, prescription_id: Uuid) -> impl Iterator<Item = Posting> + use<'_> {
        let funding = self.funding.get(&prescription_id);
        let entries = funding
            .into_iter()
            .flat_map(|funding| funding.postings.iter());
        entries.map(move |entry| entry.posting(Some(prescription_id)))
    }

    /// Every funded prescription and its funding, in the order issued.
    pub fn fundings(&self) -> impl Iterator<Item = (Uuid, &Funding)> + use<'_> {
        self.funding.iter()
    }

    /// The account a posting names.
    pub fn account(&self, id: AccountId) -> &Account {
        self.accounts.get(id)
    }

    /// The balance of an account (debits less credits).
    pub fn balance(&self, account: &Account) -> Money {
        self.accounts.balance(account)
    }

    /// The sum of every balance: zero, always.
    pub fn balances_sum(&self) -> Money {
        self.accounts.balances_sum()
    }

    /// The funding of a prescription issued under an agreement.
    pub fn funding(&self, prescription_id: Uuid) -> Option<&Funding> {
        self.funding.get(&prescription_id)
    }

    /// The agreement a funding was issued under, which names its anchor and provider.
    pub fn agreement_of(&self, funding: &Funding) -> &Agreement {
        self.agreements.at(funding.agreement)
    }

    /// Checks what a snapshot cannot check by its form: every funding names an agreement the
    /// ledger holds, and is listed once, under that agreement's anchor. Panics if not. The
    /// fundings are read in order: visited in the anchors' lists, each was a cache miss.
    pub fn assert_consistent(&self) {
        const UNLISTED: u32 = u32::MAX;
        let anchors: Vec<&OdsCode> = self.by_anchor.keys().collect();
        let mut listed_under = vec![UNLISTED; self.funding.len()];
        for (anchor, places) in (0u32..).zip(self.by_anchor.values()) {
            for &place in places {
                let under = listed_under.get_mut(place as usize);
                let under = under.expect("an anchor lists a funding the ledger does not hold");
                assert_eq!(*under, UNLISTED, "a funding is listed once");
                *under = anchor;
            }
        }
        let mut placed = vec![false; self.funding.len()];
        for &funding in self.by_prescription.iter().filter(|&&f| f != NOT_FUNDED) {
            let placed = placed.get_mut(funding as usize);
            let placed = placed.expect("a prescription's funding is one the ledger holds");
            assert!(!*placed, "a funding is placed under one prescription");
            *placed = true;
        }
        let agreements = self.agreements.len();
        for ((prescription_id, funding), under) in self.funding.iter().zip(listed_under) {
            assert!(
                (funding.agreement as usize) < agreements,
                "the funding of {prescription_id} names an agreement the ledger does not hold"
            );
            assert_ne!(under, UNLISTED, "every funding is listed");
            let anchor = &self.agreement_of(funding).anchor;
            assert_eq!(
                anchors[under as usize], anchor,
                "a funding is listed under its anchor"
            );
        }
    }

    /// Rebuilds each prescription's funding place from the journeys' prescription ids, in the
    /// order of their places, for a ledger read back from a snapshot.
    pub(crate) fn place_prescriptions(&mut self, prescription_ids: impl Iterator<Item = Uuid>) {
        let places = prescription_ids.map(|id| self.funding.place(&id).unwrap_or(NOT_FUNDED));
        self.by_prescription = places.collect();
    }

    /// Checks that the funding each prescription finds by its place among the journeys' is
    /// the one its id finds, given the journeys' prescription ids in the order of their places.
    /// Panics if not.
    pub(crate) fn assert_placed(&self, prescription_ids: impl ExactSizeIterator<Item = Uuid>) {
        assert!(
            self.by_prescription.len() <= prescription_ids.len(),
            "every prescription placed is one the journeys hold"
        );
        for (place, id) in prescription_ids.enumerate() {
            let by_place = self.by_prescription.get(place).copied();
            let by_id = self.funding.place(&id);
            let by_place = by_place.filter(|&funding| funding != NOT_FUNDED);
            assert_eq!(
                by_place, by_id,
                "prescription {id} finds its own funding by place"
            );
        }
    }

    /// What a payment run for `anchor` through `through` would settle now: every accrual not yet
    /// settled for work on or before that day, a line per provider, prescription and kind.
    pub fn payment_due(&self, anchor: &OdsCode, through: NaiveDate) -> Vec<PaymentLine> {
        let mut lines: BTreeMap<(OdsCode, Uuid, u8), PaymentLine> = BTreeMap::new();
        let own = self.by_anchor.get(anchor).map_or(&[][..], Vec::as_slice);
        for funding in own.iter().map(|&place| self.funding.at(place)) {
            let prescription_id = &funding.prescription_id;
            let provider = &self.agreement_of(funding).provider;
            for accrual in funding.accruals.iter().filter(|a| a.on <= through) {
                let order = match accrual.kind {
                    PaymentLineKind::Payment => 0,
                    PaymentLineKind::Recovery => 1,
                };
                let line = lines
                    .entry((provider.clone(), *prescription_id, order))
                    .or_insert_with(|| PaymentLine {
                        provider: provider.clone(),
                        prescription_id: *prescription_id,
                        kind: accrual.kind,
                        amount: Money::zero(),
                        positions: Vec::new(),
                    });
                line.amount = add(line.amount, accrual.amount());
                if !line.positions.contains(&accrual.position) {
                    line.positions.push(accrual.position);
                }
            }
        }
        lines.into_values().collect()
    }

    /// A recorded payment run.
    pub fn run(&self, run_id: Uuid) -> Option<&PaymentRun> {
        self.runs.get(&run_id)
    }

    /// Every payment run, in id order.
    pub fn runs(&self) -> impl Iterator<Item = &PaymentRun> + use<'_> {
        self.runs.values()
    }

    /// Prescriptions under an agreement that are still open: what counts against its capacity.
    pub fn open_under(&self, agreement_id: Uuid) -> u32 {
        self.open_by_agreement
            .get(&agreement_id)
            .copied()
            .unwrap_or_default()
    }

    /// Prescriptions waiting for a place under an agreement, first in the queue first.
    pub fn waiting_under(&self, agreement_id: Uuid) -> &[Uuid] {
        self.waiting.get(&agreement_id).map_or(&[], Vec::as_slice)
    }

    /// Where an anchor's activities budget for a year stands.
    pub fn budget_position(&self, anchor: &OdsCode, year: FinancialYear) -> BudgetPosition {
        let of = |kind| self.balance(&Account::of(kind, anchor, year));
        let between = |kind| self.accounts.between_any(kind, anchor, year);
        let paid = between(AccountKind::Paid);
        BudgetPosition {
            allocated: self
                .allocated
                .get(&format!("{}:{year}", anchor.as_str()))
                .copied()
                .unwrap_or_default(),
            committed: of(AccountKind::Committed),
            // A recovery is negative until the next run deducts it from what was paid.
            accrued: [
                between(AccountKind::Payable),
                paid,
                between(AccountKind::Recovery),
                of(AccountKind::SelfDelivered),
            ]
            .into_iter()
            .fold(Money::zero(), add),
            paid,
            available: of(AccountKind::Budget),
        }
    }

    /// Reads, without changing anything, what `facts` will change: the funding each names, then
    /// the ends of its lists and the agreement that prices it. Each pass's loads do not wait on
    /// one another, so the processor overlaps their cache misses, where folding meets each
    /// alone. Leaves in `found` each fact's funding place, if it has one yet, for
    /// [`Ledger::apply_warmed`]; returns a value made from what was read, so that the reads are
    /// kept. A fact the journeys located finds its funding by its prescription's place; only
    /// the rest are looked up by id.
    pub(crate) fn warm(
        &self,
        facts: &[Fact],
        located: &[Located],
        found: &mut Vec<Option<u32>>,
    ) -> u64 {
        let mut seen = 0u64;
        let by_place: Vec<Option<Option<u32>>> = (facts.iter().zip(located))
            .map(|(fact, located)| self.funded_by_place(fact, *located))
            .collect();
        let unplaced: Vec<Option<Uuid>> = (facts.iter().zip(&by_place))
            .map(|(fact, by_place)| match by_place {
                Some(_) => None,
                None => crate::Journeys::step_prescription(&fact.event),
            })
            .collect();
        seen ^= self.funding.places(&unplaced, found);
        for (found, by_place) in found.iter_mut().zip(by_place) {
            if let Some(by_place) = by_place {
                *found = by_place;
            }
        }
        let (touched, fundings) = self.touch_fundings(found);
        for funding in fundings {
            seen ^= self.agreements.at(funding.agreement).touch();
        }
        seen ^ touched
    }

    /// Reads the fundings at `places` into the cache, every record, and then prefetches every
    /// record's lists: in one pass, each record's lists waited on the record, and few records'
    /// misses were in flight at once. The lists are prefetched rather than read so that the
    /// fold starts while they are on their way. Returns a value made from what was read, so
    /// that the reads are kept, and the fundings.
    fn touch_fundings(&self, places: &[Option<u32>]) -> (u64, Vec<&Funding>) {
        // Made with room for every place: collected, the list grew from nothing each window,
        // some 700,000 of the 3.9 million reallocations of a national replay's ledger.
        let mut fundings: Vec<&Funding> = Vec::with_capacity(places.len());
        fundings.extend(places.iter().flatten().map(|&place| self.funding.at(place)));
        let records = fundings.iter().map(|funding| funding.touch_record());
        let seen = records.fold(0, |seen, touched| seen ^ touched);
        fundings.iter().for_each(|funding| funding.prefetch_lists());
        (seen, fundings)
    }

    /// Folds one fact. A session event comes with its session's place among its prescription's
    /// sessions, as the journeys' fold of the same fact gave it: a session of a prescription the
    /// journeys do not know (an import that begins mid-journey) has none, and is not charged.
    pub(crate) fn apply(&mut self, fact: &Fact, located: Located) {
        self.apply_warmed(fact, located, None);
    }

    /// As [`Ledger::apply`], with the funding place [`Ledger::warm`] found for the fact. A
    /// funding keeps its place, so only a fact whose funding was not found then (there was none
    /// yet) is looked up again: a session folded looked its funding up twice, a completion four
    /// times.
    pub(crate) fn apply_warmed(&mut self, fact: &Fact, located: Located, warmed: Option<u32>) {
        let prescription_id = crate::Journeys::step_prescription(&fact.event);
        let funding = warmed.or_else(|| match self.funded_by_place(fact, located) {
            Some(by_place) => by_place,
            None => self.funding.place(&prescription_id?),
        });
        if let Some(place) = funding {
            let own = self.funding.at(place).prescription_id;
            assert_eq!(Some(own), prescription_id, "a fact's own funding");
        }
        debug_assert_eq!(
            funding,
            prescription_id.and_then(|id| self.funding.place(&id)),
            "a prescription's place finds the funding its id does"
        );
        let added = self.apply_found(fact, located.session(), funding);
        if let (true, Some(prescription)) = (adds_prescription(fact), located.prescription()) {
            self.place_funding(prescription, funding.or(added));
        }
        debug_assert!(self.balances_sum().is_zero(), "postings sum to zero");
    }

    /// The funding of the prescription a fact names, found by the place the journeys gave that
    /// prescription: `None` where it must be found by id instead, because the journeys do not
    /// know the prescription or the fact may be the first the ledger hears of its place. A
    /// place beyond those recorded is a prescription added by a fact in the window being
    /// warmed, not yet folded here: it has no funding yet.
    fn funded_by_place(&self, fact: &Fact, located: Located) -> Option<Option<u32>> {
        let prescription = located
            .prescription()
            .filter(|_| !adds_prescription(fact))?;
        let funding = self.by_prescription.get(prescription as usize).copied();
        Some(funding.filter(|&funding| funding != NOT_FUNDED))
    }

    /// Records the funding, if any, of the prescription at `prescription` among the journeys'.
    fn place_funding(&mut self, prescription: u32, funding: Option<u32>) {
        let at = prescription as usize;
        if at >= self.by_prescription.len() {
            self.by_prescription.resize(at + 1, NOT_FUNDED);
        }
        self.by_prescription[at] = funding.unwrap_or(NOT_FUNDED);
    }

    /// Folds one fact, given the place of the funding of the prescription it names, if any.
    /// Returns the place of the funding it adds, if it adds one.
    fn apply_found(
        &mut self,
        fact: &Fact,
        session: Option<SessionPlace>,
        funding: Option<u32>,
    ) -> Option<u32> {
        match &fact.event {
            Event::BudgetAllocated(e) => {
                let year = e.financial_year;
                let (kind, rule) = match e.account {
                    BudgetAccount::Activities => (AccountKind::Budget, Rule::Allocation),
                    BudgetAccount::CapacityBuilding => {
                        (AccountKind::CapacityBudget, Rule::Allocation)
                    }
                };
                if e.account == BudgetAccount::Activities {
                    let key = format!("{}:{year}", e.anchor.as_str());
                    let total = add(
                        self.allocated.get(&key).copied().unwrap_or_default(),
                        e.amount,
                    );
                    self.allocated.insert(key, total);
                }
                let debit = Account::of(kind, &e.anchor, year);
                let credit = Account::of(AccountKind::Funding, &e.commissioner, year);
                self.post(None, debit, credit, e.amount, cause(fact, None, None, rule));
            }
            Event::AgreementSigned(e) => self.agreements.sign(fact.position, e),
            Event::AgreementAmended(e) => self.agreements.amend(fact.position, e),
            Event::CapacityGrantAwarded(e) => {
                let debit = Account::between(
                    AccountKind::Granted,
                    &e.anchor,
                    &e.provider,
                    e.financial_year,
                );
                let credit = Account::of(AccountKind::CapacityBudget, &e.anchor, e.financial_year);
                let why = cause(fact, None, None, Rule::Grant);
                self.post(None, debit, credit, e.amount, why);
            }
            Event::PrescriptionIssued(e) => {
                self.leave_queue(e.prescription_id);
                if funding.is_none() {
                    return self.issue(fact, e);
                }
            }
            Event::PrescriptionWaitlisted(e) => {
                let queue = self.waiting.entry(e.agreement_id).or_default();
                if !queue.contains(&e.prescription_id) {
                    queue.push(e.prescription_id);
                }
            }
            Event::SessionAttended(_) => {
                if let (Some(place), Some(funding)) = (session, funding) {
                    self.attend(fact, funding, place)
                }
            }
            Event::SessionMissed(e) => {
                if let (Some(place), Some(funding)) = (session, funding) {
                    self.miss(fact, funding, place, e.notice_given)
                }
            }
            Event::SessionRetracted(_) => {
                if let (Some(place), Some(funding)) = (session, funding) {
                    self.retract(fact, funding, place)
                }
            }
            Event::PrescriptionCompleted(_) => {
                if let Some(funding) = funding {
                    self.complete(fact, funding)
                }
            }
            Event::PrescriptionEnded(e) => {
                self.leave_queue(e.prescription_id);
                if let Some(funding) = funding {
                    self.release(fact, funding)
                }
            }
            Event::PrescriptionDeclined(_) => {
                if let Some(funding) = funding {
                    self.release(fact, funding)
                }
            }
            Event::PaymentRunRecorded(e) => self.pay(fact, e),
            // Pathway steps that move no money, organisations, and ARRS (its own projection).
            Event::OrganisationRegistered(_)
            | Event::ReferralReceived(_)
            | Event::ReferralAccepted(_)
            | Event::ReferralDeclined(_)
            | Event::ReferralRedirected(_)
            | Event::AssessmentHeld(_)
            | Event::PlanAgreed(_)
            | Event::PlanAmended(_)
            | Event::PrescriptionAccepted(_)
            | Event::SessionCancelled(_)
            | Event::OutcomeMeasured(_)
            | Event::ReferralReferredBack(_)
            | Event::CaseClosed(_)
            | Event::ArrsRulesPublished(_)
            | Event::PcnRegistered(_)
            | Event::PcnPopulationRecorded(_)
            | Event::PcnArrsSumNotified(_)
            | Event::LinkWorkerEmployed(_)
            | Event::LinkWorkerWteChanged(_)
            | Event::LinkWorkerLeft(_)
            | Event::LinkWorkerCostPaid(_)
            | Event::ArrsClaimSubmitted(_)
            | Event::ArrsClaimPaid(_)
            | Event::SibContractPublished(_)
            | Event::CohortCostRecorded(_)
            | Event::SibOutcomeClaimed(_)
            | Event::SibOutcomeVerified(_)
            | Event::SibOutcomeWithdrawn(_)
            | Event::SibPaymentMade(_) => {}
        }
        None
    }

    /// Issuing a prescription under an agreement commits its tariff's maximum against the
    /// budget of the year it is issued in. A prescription is funded once: a second issue of
    /// one funded already comes with its funding, and is not folded here. Returns the place of
    /// the funding, if it is funded.
    fn issue(&mut self, fact: &Fact, issue: &PrescriptionIssued) -> Option<u32> {
        let agreement_id = issue.agreement_id?;
        let place = self.agreements.place(agreement_id)?;
        let agreement = self.agreements.at(place);
        let version = agreement.in_force(date(fact))?;
        let year = FinancialYear::containing(date(fact));
        let (anchor, version_number) = (agreement.anchor.clone(), version.version);
        let commitment = Money::from_pence(version.prices.maximum_pence());
        let sessions = version.tariff.funded_sessions.unwrap_or(SESSIONS_EXPECTED);
        let funding = Funding::issued(
            issue.prescription_id,
            place,
            year,
            commitment,
            sessions as usize,
        );
        let funding_place = self.funding.insert(funding);
        *self.open_by_agreement.entry(agreement_id).or_default() += 1;
        self.by_anchor
            .entry(anchor.clone())
            .or_default()
            .push(funding_place);
        let debit = Account::of(AccountKind::Committed, &anchor, year);
        let credit = Account::of(AccountKind::Budget, &anchor, year);
        let why = cause(
            fact,
            Some(issue.prescription_id),
            Some(version_number),
            Rule::Commitment,
        );
        self.post(Some(funding_place), debit, credit, commitment, why);
        Some(funding_place)
    }

    fn attend(&mut self, fact: &Fact, funding: u32, place: SessionPlace) {
        let Some(Pricing {
            accounts,
            funding,
            agreement,
            version,
        }) = self.session_priced(fact, funding, place)
        else {
            return;
        };
        let mut charges = Charges::default();
        version.prices.price_attendance(
            funding.attended,
            funding.sessions_charged,
            funding.earned_pence,
            &mut charges,
        );
        let why = (fact, version.version);
        earn((accounts, agreement), funding, why, Some(place), &charges);
        funding.attended += 1;
        funding.sessions_charged += 1;
        let charged = funding
            .sessions
            .last_mut()
            .expect("earning records the session");
        assert_eq!(charged.place(), place, "the session just charged");
        charged.mark_attended();
    }

    fn miss(&mut self, fact: &Fact, funding: u32, place: SessionPlace, notice_given: bool) {
        if notice_given {
            return;
        }
        let Some(Pricing {
            accounts,
            funding,
            agreement,
            version,
        }) = self.session_priced(fact, funding, place)
        else {
            return;
        };
        let mut charges = Charges::default();
        version.prices.price_missed(
            notice_given,
            funding.sessions_charged,
            funding.earned_pence,
            &mut charges,
        );
        let why = (fact, version.version);
        earn((accounts, agreement), funding, why, Some(place), &charges);
        funding.sessions_charged += 1;
    }

    fn complete(&mut self, fact: &Fact, place: u32) {
        if let Some(Pricing {
            accounts,
            funding,
            agreement,
            version,
        }) = self.priced(fact, place)
            && funding.open
        {
            let mut charges = Charges::default();
            let (attended, paid_pence) = (funding.attended, funding.earned_pence);
            (version.prices).price_completion(attended, paid_pence, &mut charges);
            let why = (fact, version.version);
            earn((accounts, agreement), funding, why, None, &charges);
        }
        self.release(fact, place);
    }

    /// A retraction gives back what the session earned: the commitment (or, once the
    /// prescription has closed, the budget) is restored, and the provider's earnings reduced;
    /// if a run had already paid them, the provider owes them back and the next run recovers
    /// them.
    fn retract(&mut self, fact: &Fact, funding_place: u32, place: SessionPlace) {
        let funding = self.funding.at_mut(funding_place);
        let prescription_id = funding.prescription_id;
        // Only an attendance is retracted; a missed session stands as recorded.
        let Some(index) = funding
            .sessions
            .iter()
            .position(|s| s.place() == place && s.attended())
        else {
            return;
        };
        let session = funding.sessions.remove(index);
        let charges = funding.charges_at(session.position());
        funding.attended = funding.attended.saturating_sub(1);
        funding.sessions_charged = funding.sessions_charged.saturating_sub(1);
        if !session.paid() {
            funding
                .accruals
                .retain(|a| a.position != session.position() || a.kind != PaymentLineKind::Payment);
        }
        let agreement = self.agreements.at(funding.agreement);
        let (anchor, year, open) = (
            agreement.anchor.clone(),
            funding.financial_year,
            funding.open,
        );
        let earned_account = if session.paid() {
            Account::between(AccountKind::Recovery, &anchor, &agreement.provider, year)
        } else {
            funding.earned_account(agreement)
        };
        for amount in charges {
            let amount_pence = funding::to_pence(amount);
            let funding = self.funding.at_mut(funding_place);
            funding.change_earned(-amount_pence);
            if session.paid() {
                funding.accruals.push(Accrual {
                    position: fact.position,
                    on: date(fact),
                    kind: PaymentLineKind::Recovery,
                    amount_pence,
                });
            }
            let restored_to = if open {
                funding.change_committed(amount_pence);
                Account::of(AccountKind::Committed, &anchor, year)
            } else {
                Account::of(AccountKind::Budget, &anchor, year)
            };
            let why = cause(fact, Some(prescription_id), None, Rule::Reversal);
            let from = earned_account.clone();
            self.post(Some(funding_place), restored_to, from, amount, why);
        }
    }

    /// A payment run settles the accruals its lines name: payments move from payable to paid,
    /// recoveries come off what was paid.
    /// Settles one part of a run; a part folded before is the same fact again.
    fn pay(&mut self, fact: &Fact, run: &PaymentRunRecorded) {
        let known = self.runs.get(&run.run_id);
        if known.is_some_and(|r| r.parts_recorded.contains(&run.part)) {
            return;
        }
        // Every line's funding is found, and its lists read into the cache, before any is
        // settled: the lookups do not wait on one another, so their cache misses overlap, where
        // settling and posting between them kept one miss in flight at a time. Found in passes
        // as a window of sessions is: one lookup after another kept only a few in flight.
        let ids: Vec<Option<Uuid>> = (run.lines.iter())
            .map(|line| Some(line.prescription_id))
            .collect();
        let mut places = Vec::with_capacity(ids.len());
        let seen = self.funding.places(&ids, &mut places);
        std::hint::black_box(seen ^ self.touch_fundings(&places).0);
        // A run's lines come provider by provider: the accounts of one line are mostly the
        // last one's, found again only when they change.
        let event_type = TypeId::of_event(&fact.event);
        let mut last_accounts = None;
        let Ledger {
            agreements,
            accounts,
            funding: fundings,
            ..
        } = self;
        for (line, place) in run.lines.iter().zip(places) {
            let Some(place) = place else {
                continue;
            };
            let funding = fundings.at_mut(place);
            funding.settle(line.kind, &line.positions);
            let amount_pence = funding::to_pence(line.amount);
            if amount_pence == 0 {
                continue;
            }
            let anchor = &agreements.at(funding.agreement).anchor;
            let key = (line.kind, anchor, &line.provider, funding.financial_year);
            let moved = match last_accounts {
                Some((last_key, moved)) if last_key == key => moved,
                _ => settled_accounts(accounts, key),
            };
            last_accounts = Some((key, moved));
            let why = cause(fact, Some(line.prescription_id), None, Rule::Payment);
            let postings = &mut funding.postings;
            record_typed(accounts, postings, moved, amount_pence, (why, event_type));
        }
        let recorded = self.runs.entry(run.run_id).or_insert_with(|| PaymentRun {
            run_id: run.run_id,
            anchor: run.anchor.clone(),
            through: run.through,
            lines: RunLines::default(),
            position: fact.position,
            parts: run.parts,
            parts_recorded: std::collections::BTreeSet::new(),
        });
        for line in &run.lines {
            recorded.lines.push(line);
        }
        recorded.lines.fit();
        recorded.parts_recorded.insert(run.part);
    }

    /// Takes a prescription out of whichever queue holds it: it was issued, or gave up waiting.
    fn leave_queue(&mut self, prescription_id: Uuid) {
        self.waiting.retain(|_, queue| {
            queue.retain(|id| *id != prescription_id);
            !queue.is_empty()
        });
    }

    /// Gives back to the budget what an ended prescription had committed and not used.
    fn release(&mut self, fact: &Fact, place: u32) {
        let funding = self.funding.at_mut(place);
        let prescription_id = funding.prescription_id;
        if !funding.open {
            return;
        }
        funding.open = false;
        let agreement = self.agreements.at(funding.agreement);
        let open = self
            .open_by_agreement
            .get_mut(&agreement.agreement_id)
            .expect("an open prescription is counted under its agreement");
        *open -= 1;
        let unused = Money::from_pence(std::mem::take(&mut funding.committed_pence));
        let (anchor, year) = (agreement.anchor.clone(), funding.financial_year);
        if !unused.is_zero() {
            let debit = Account::of(AccountKind::Budget, &anchor, year);
            let credit = Account::of(AccountKind::Committed, &anchor, year);
            let why = cause(fact, Some(prescription_id), None, Rule::Release);
            self.post(Some(place), debit, credit, unused, why);
        }
        self.funding.at_mut(place).fit();
    }

    /// A prescription's funding, to change, and the agreement version that prices what
    /// happens on the fact's date, with the accounts to post to: found once for every session
    /// folded.
    fn priced(&mut self, fact: &Fact, place: u32) -> Option<Pricing<'_>> {
        let Ledger {
            agreements,
            accounts,
            funding,
            ..
        } = self;
        let funding = funding.at_mut(place);
        let agreement = agreements.at(funding.agreement);
        let version = agreement.pricing(date(fact))?;
        Some(Pricing {
            accounts,
            funding,
            agreement,
            version,
        })
    }

    /// As [`Ledger::priced`], for a session not yet charged while its prescription is open:
    /// a session recorded twice is charged once.
    fn session_priced(
        &mut self,
        fact: &Fact,
        funding: u32,
        place: SessionPlace,
    ) -> Option<Pricing<'_>> {
        if !ChargedSession::chargeable(place) {
            return None;
        }
        let pricing = self.priced(fact, funding)?;
        (pricing.funding.open && !pricing.funding.charged(place)).then_some(pricing)
    }

    /// Posts `amount` to `debit` from `credit`, numbering them if they are new, and keeps the
    /// posting with the funding at place `funding`, which is the funding of the prescription the
    /// cause names, or with the postings about no prescription. A zero amount posts nothing and
    /// numbers no account.
    fn post(
        &mut self,
        funding: Option<u32>,
        debit: Account,
        credit: Account,
        amount: Money,
        cause: Cause,
    ) {
        if amount.is_zero() {
            return;
        }
        let (debit, credit) = (self.accounts.id(&debit), self.accounts.id(&credit));
        let entries = match funding {
            None => {
                assert_eq!(cause.prescription_id, None, "kept with no funding");
                &mut self.postings
            }
            Some(place) => {
                let funding = self.funding.at_mut(place);
                let about = Some(funding.prescription_id);
                assert_eq!(cause.prescription_id, about, "kept with its own funding");
                &mut funding.postings
            }
        };
        record(&mut self.accounts, entries, (debit, credit), amount, cause);
    }
}

/// Whether a fact may add its prescription to the journeys: its first issue or waitlisting.
fn adds_prescription(fact: &Fact) -> bool {
    matches!(
        fact.event,
        Event::PrescriptionIssued(_) | Event::PrescriptionWaitlisted(_)
    )
}

/// Turns commitment into what the provider has earned, committing more first if a later
/// version of the tariff pays more than was set aside, and records the session charged, if
/// any. `why` is the fact and the agreement version that priced it.
fn earn(
    (accounts, agreement): (&mut Accounts, &Agreement),
    funding: &mut Funding,
    why: (&Fact, u32),
    session: Option<SessionPlace>,
    charges: &Charges,
) {
    let (fact, version) = why;
    let prescription_id = funding.prescription_id;
    let event_type = TypeId::of_event(&fact.event);
    let cause = |rule| {
        let cause = cause(fact, Some(prescription_id), Some(version), rule);
        (cause, event_type)
    };
    for charge in charges.iter() {
        let amount_pence = charge.amount_pence;
        if amount_pence == 0 {
            continue;
        }
        if funding.committed_pence < amount_pence {
            let top_up_pence = amount_pence - funding.committed_pence;
            let committed = funding.committed_account_id(agreement, accounts);
            let budget = Account::of(
                AccountKind::Budget,
                &agreement.anchor,
                funding.financial_year,
            );
            let budget = accounts.id(&budget);
            let why = cause(Rule::CommitmentTopUp);
            let accounts_moved = (committed, budget);
            let postings = &mut funding.postings;
            record_typed(accounts, postings, accounts_moved, top_up_pence, why);
            funding.change_committed(top_up_pence);
        }
        let earned = funding.earned_account_id(agreement, accounts);
        let committed = funding.committed_account_id(agreement, accounts);
        let why = cause(Rule::Tariff(charge.clause));
        let accounts_moved = (earned, committed);
        record_typed(
            accounts,
            &mut funding.postings,
            accounts_moved,
            amount_pence,
            why,
        );
        funding.change_committed(-amount_pence);
        funding.change_earned(amount_pence);
        if !agreement.is_self_delivery() {
            funding.accruals.push(Accrual {
                position: fact.position,
                on: date(fact),
                kind: PaymentLineKind::Payment,
                amount_pence,
            });
        }
    }
    if let Some(place) = session {
        funding
            .sessions
            .push(ChargedSession::charged(place, fact.position));
    }
}

/// The accounts a payment line of `kind` moves money to and from, numbered: a payment from
/// payable to paid, a recovery off what was paid.
fn settled_accounts(
    accounts: &mut Accounts,
    (kind, anchor, provider, year): (PaymentLineKind, &OdsCode, &OdsCode, FinancialYear),
) -> (AccountId, AccountId) {
    let paid = Account::between(AccountKind::Paid, anchor, provider, year);
    let (debit, credit) = match kind {
        PaymentLineKind::Payment => (
            paid,
            Account::between(AccountKind::Payable, anchor, provider, year),
        ),
        PaymentLineKind::Recovery => (
            Account::between(AccountKind::Recovery, anchor, provider, year),
            paid,
        ),
    };
    (accounts.id(&debit), accounts.id(&credit))
}

/// Moves `amount` to the account numbered `debit` from `credit` and keeps the posting in
/// `entries`.
fn record(
    accounts: &mut Accounts,
    entries: &mut Entries,
    (debit, credit): (AccountId, AccountId),
    amount: Money,
    cause: Cause,
) {
    let event_type = TypeId::of(cause.event_type);
    let amount_pence = funding::to_pence(amount);
    record_typed(
        accounts,
        entries,
        (debit, credit),
        amount_pence,
        (cause, event_type),
    );
}

/// As [`record`], for an amount in pence and a cause whose event type is known by its place.
fn record_typed(
    accounts: &mut Accounts,
    entries: &mut Entries,
    (debit, credit): (AccountId, AccountId),
    amount_pence: i64,
    (cause, event_type): (Cause, TypeId),
) {
    assert!(
        amount_pence > 0,
        "a posting moves a positive amount of money"
    );
    accounts.change(debit, amount_pence);
    accounts.change(credit, -amount_pence);
    let entry = Entry::new(&cause, event_type, (debit, credit), amount_pence);
    entries.push(&entry);
}

fn cause(
    fact: &Fact,
    prescription_id: Option<Uuid>,
    agreement_version: Option<u32>,
    rule: Rule,
) -> Cause {
    Cause {
        position: fact.position,
        on: date(fact),
        event_type: fact.event.type_name(),
        prescription_id,
        agreement_version,
        rule,
    }
}

/// The day of the fact, in UTC: read from the stored date and time rather than through
/// `date_naive`, which adds a zero offset first, for every posting made.
fn date(fact: &Fact) -> NaiveDate {
    fact.occurred_at.naive_utc().date()
}

fn add(a: Money, b: Money) -> Money {
    a.checked_add(b)
        .expect("ledger sums stay far below the limit")
}

#[cfg(test)]
mod tests;
