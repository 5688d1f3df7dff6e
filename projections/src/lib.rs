//! Pure folds from the event log to read models: the organisation directory and referral
//! journeys with their prescriptions, later the double-entry ledger, payment runs, ARRS claims
//! and SIB outcomes. The runner decodes each stored event once into a [`Fact`] and feeds the facts
//! in position order to [`ReadModels::apply`].
//!
//! Never performs I/O, never reads the clock, never draws random numbers: the same events in the
//! same order always give the same state, whether folded from zero or from a snapshot. Folding
//! never rejects: commands validate against this state before they append, so whatever is in the
//! log is folded as it stands.
#![deny(missing_docs)]

mod arrs;
mod compact;
mod event_type;
mod few;
mod fit;
mod id_list;
mod interner;
mod journeys;
mod ledger;
mod listed;
mod numbered;
mod organisations;
mod places;
mod positions;
mod prefetch;
mod records;
mod sib;
mod varint;

#[cfg(test)]
mod fixtures;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use followfund_contracts::Event;
use serde::{Deserialize, Serialize};

use crate::journeys::Located;

pub use few::Few;

pub use arrs::{
    Arrs, ArrsError, Claim, Explanation, LinkWorker, Pcn, PcnMonth, PcnYear, Population,
    RulesVersion, WorkerMonth, YearTotals,
};
pub use journeys::{
    CarePlan, Journey, Journeys, Prescription, PrescriptionStatus, ReferralStatus, SessionRecord,
    SessionState,
};
pub use ledger::{
    Account, AccountId, AccountKind, Accrual, Agreement, AgreementVersion, Agreements,
    BudgetPosition, Cause, Funding, Ledger, PaymentRun, Posting, Rule, RunLines,
};
pub use organisations::{Organisation, Organisations};
pub use sib::{
    Claim as SibClaim, CohortFigures, CohortOutcome, Contract as SibContract, CostFigures, DueLine,
    InvestorPosition, OutcomeStatus, PayerPeriod, Payments, Person, PersonOutcome, Sib,
};

/// One event as projections see it: decoded once by the runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// The event's global position in the log: gap-free, starting at 1.
    pub position: u64,
    /// When it happened (valid time).
    pub occurred_at: DateTime<Utc>,
    /// The typed payload.
    pub event: Event,
}

/// Pages shorter than this are folded on one thread: a thread costs more than they save.
const PAGE_FACTS_FOR_TWO_THREADS: usize = 256;

/// Facts whose records are read into the cache together before they are folded.
const WARM_FACTS: usize = 256;

/// How many units the journeys' fold may run ahead of the ledger's. Which of the two is slower
/// changes over a year; one unit ahead, each waited on the other, and a national replay kept
/// its two cores busy 1.57 times over on average. Eight pages of 5,000 ahead: 1.72 times, for
/// 8 pages more in memory (16 and 32 gained little more); four pages of 10,000 hold as many.
const UNITS_AHEAD: usize = 4;

/// Every read model, folded together so that all of them stand at the same position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct ReadModels {
    /// The position of the last fact folded; 0 before any.
    position: u64,
    /// The organisation directory.
    pub organisations: Organisations,
    /// Referral journeys and prescriptions.
    pub journeys: Journeys,
    /// The double-entry ledger of budgets, commitments and payables.
    pub ledger: Ledger,
    /// ARRS rules, PCNs, link workers and claims.
    pub arrs: Arrs,
    /// Social impact bond contracts, cohorts, claims and payments.
    pub sib: Sib,
}

/// [`ReadModels`] as read back whole: its fields in its order, before the ledger's places
/// are rebuilt (see [`ReadModels::from_parts`]).
#[derive(Deserialize)]
struct Stored {
    position: u64,
    organisations: Organisations,
    journeys: Journeys,
    ledger: Ledger,
    arrs: Arrs,
    sib: Sib,
}

impl From<Stored> for ReadModels {
    fn from(stored: Stored) -> ReadModels {
        let rest = Rest {
            position: stored.position,
            organisations: stored.organisations,
            arrs: stored.arrs,
            sib: stored.sib,
        };
        ReadModels::from_parts(stored.ledger, stored.journeys, rest)
    }
}

/// The read models but the ledger and the journeys, which a snapshot keeps apart so that its
/// three parts encode and decode on threads of their own: borrowed to save, owned when read.
/// With the journeys in this part, a national restart waited on it for 5.1 s of decoding while
/// the ledger's took 2.9.
#[derive(Serialize, Deserialize)]
pub struct Rest<O = Organisations, A = Arrs, S = Sib> {
    position: u64,
    organisations: O,
    arrs: A,
    sib: S,
}

impl ReadModels {
    /// The version of the folding code. Bump it whenever a change to any projection would fold
    /// the same log into a different state: the runner discards snapshots of another version and
    /// rebuilds from position 0.
    pub const VERSION: u32 = 40;

    /// The version a snapshot of these read models is saved under: [`ReadModels::VERSION`] and
    /// the event catalogue's names in order, because records counted in millions name their
    /// event type by its place in the catalogue. It stays below 2^31, which every backend's
    /// integer holds.
    pub fn snapshot_version() -> u32 {
        let mixed = Self::VERSION.wrapping_mul(0x9e37_79b9) ^ event_type::fingerprint();
        mixed & 0x7fff_ffff
    }

    /// The read models of an empty log.
    pub fn new() -> ReadModels {
        ReadModels::default()
    }

    /// The position of the last fact folded; 0 before any.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The ledger, the journeys and the rest, to be saved apart.
    pub fn parts(&self) -> (&Ledger, &Journeys, Rest<&Organisations, &Arrs, &Sib>) {
        let rest = Rest {
            position: self.position,
            organisations: &self.organisations,
            arrs: &self.arrs,
            sib: &self.sib,
        };
        (&self.ledger, &self.journeys, rest)
    }

    /// The read models whose parts were saved apart, with what the ledger finds through the
    /// journeys rebuilt.
    pub fn from_parts(mut ledger: Ledger, journeys: Journeys, rest: Rest) -> ReadModels {
        ledger.place_prescriptions(journeys.prescription_ids());
        ReadModels {
            position: rest.position,
            organisations: rest.organisations,
            journeys,
            ledger,
            arrs: rest.arrs,
            sib: rest.sib,
        }
    }

    /// Folds one fact. Facts must arrive in position order with no gap: anything else is a bug in
    /// the runner, so it panics rather than fold a history that never happened.
    pub fn apply(&mut self, fact: &Fact) {
        assert_eq!(fact.position, self.position + 1, "events fold in order");
        self.organisations.apply(fact);
        let located = self.journeys.apply(fact);
        self.ledger.apply(fact, located);
        self.arrs.apply(fact);
        self.sib.apply(fact);
        self.position = fact.position;
        debug_assert_eq!(self.position, fact.position);
    }

    /// Folds a page of facts, which must follow on from the last fact folded without a gap.
    /// The ledger is folded on this thread, the other models on threads of their own, a
    /// window ahead: the same state as folding one fact at a time, in about half the time on
    /// two cores.
    pub fn apply_all(&mut self, facts: &[Fact]) {
        if facts.len() < PAGE_FACTS_FOR_TWO_THREADS {
            facts.iter().for_each(|fact| self.apply(fact));
            return;
        }
        let (position, ledger, ahead) = self.split();
        fold_ahead(position, ledger, ahead, facts.chunks(WARM_FACTS));
    }

    /// Folds pages of facts as they come, each following on from the one before without a gap,
    /// with the models other than the ledger on two threads for all of them, pages ahead. A
    /// thread for each page came and went thousands of times in a national replay, and every
    /// allocation the journeys made landed in memory of a thread about to end.
    pub fn apply_pages(&mut self, pages: impl IntoIterator<Item = Vec<Fact>>) {
        let (position, ledger, ahead) = self.split();
        let pages = pages.into_iter().map(Arc::new);
        fold_ahead(position, ledger, ahead, pages);
    }

    /// The position, the ledger and the models folded ahead of it, to be folded on threads of
    /// their own.
    fn split(&mut self) -> (&mut u64, &mut Ledger, Ahead<'_>) {
        let ReadModels {
            position,
            organisations,
            journeys,
            ledger,
            arrs,
            sib,
        } = self;
        let ahead = Ahead {
            journeys,
            beside: Beside {
                sib,
                organisations,
                arrs,
            },
        };
        (position, ledger, ahead)
    }

    /// Checks the invariants that tie the read models' indexes to their records, in time linear in
    /// their size. Tests call it after folding; the runner checks a snapshot's parts as it loads
    /// them, and the journeys' indexes need no check then, being rebuilt from the records.
    pub fn assert_consistent(&self) {
        self.organisations.assert_consistent();
        self.journeys.assert_consistent();
        self.journeys.assert_indexed();
        self.ledger.assert_placed(self.journeys.prescription_ids());
        self.sib.assert_consistent();
    }
}

/// Panics unless `facts` follow on from `position` without a gap: anything else is a bug in the
/// runner.
fn assert_follows(position: u64, facts: &[Fact]) {
    for (offset, fact) in facts.iter().enumerate() {
        assert_eq!(
            fact.position,
            position + 1 + offset as u64,
            "events fold in order"
        );
    }
}

/// The models folded ahead of the ledger: the journeys, which give the ledger each session's
/// place, and the models folded [`Beside`] them.
struct Ahead<'a> {
    journeys: &'a mut Journeys,
    beside: Beside<'a>,
}

/// The SIB people, the directory and ARRS, which need nothing from the journeys or the ledger:
/// folded on a third thread, not after the journeys on theirs. Each fold's work then goes to
/// whichever core is free; on the journeys' thread, a national replay was slower in 11 of 12
/// interleaved pairs (median 10.58 s against 10.26 s).
struct Beside<'a> {
    sib: &'a mut Sib,
    organisations: &'a mut Organisations,
    arrs: &'a mut Arrs,
}

impl Beside<'_> {
    fn apply(&mut self, facts: &[Fact]) {
        for fact in facts {
            self.sib.apply(fact);
            self.organisations.apply(fact);
            self.arrs.apply(fact);
        }
    }
}

/// Folds `units` of facts, each following on from the one before, the models [`Ahead`] on
/// threads of their own up to [`UNITS_AHEAD`] units ahead of the ledger on this one. The ledger
/// knows a session by its place among its prescription's sessions, and finds a funding by its
/// prescription's place among the journeys', both of which the journeys' fold gives, so each
/// unit's ledger fold waits for that unit's journeys.
fn fold_ahead<U, F>(position: &mut u64, ledger: &mut Ledger, ahead: Ahead<'_>, units: U)
where
    U: IntoIterator,
    U::Item: std::ops::Deref<Target = F> + Clone + Send,
    F: AsRef<[Fact]> + ?Sized,
{
    let (to_ahead, for_ahead) = std::sync::mpsc::sync_channel::<U::Item>(UNITS_AHEAD + 1);
    let (to_beside, for_beside) = std::sync::mpsc::sync_channel::<U::Item>(UNITS_AHEAD + 1);
    let (to_ledger, for_ledger) = std::sync::mpsc::channel::<Vec<Located>>();
    let Ahead {
        journeys,
        mut beside,
    } = ahead;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for unit in for_beside {
                beside.apply((*unit).as_ref());
            }
        });
        scope.spawn(move || {
            let mut folded = 0;
            for unit in for_ahead {
                let facts = (*unit).as_ref();
                folded += facts.len();
                if folded > journeys.records() {
                    journeys.pause_indexes();
                }
                let located = fold_before_ledger(journeys, facts);
                if to_ledger.send(located).is_err() {
                    break;
                }
            }
            journeys.resume_indexes();
        });
        let mut fold = |unit: U::Item| {
            let located = for_ledger
                .recv()
                .expect("the fold ahead answers every unit");
            fold_ledger(ledger, (*unit).as_ref(), &located);
        };
        let (mut sent, mut waiting) = (*position, std::collections::VecDeque::new());
        for unit in units {
            let facts = (*unit).as_ref();
            assert_follows(sent, facts);
            let Some(last) = facts.last() else {
                continue;
            };
            sent = last.position;
            to_ahead
                .send(unit.clone())
                .expect("the fold ahead runs until the units end");
            to_beside
                .send(unit.clone())
                .expect("the fold beside runs until the units end");
            waiting.push_back(unit);
            if waiting.len() > UNITS_AHEAD {
                fold(waiting.pop_front().expect("more than none are waiting"));
            }
        }
        drop(to_ahead);
        drop(to_beside);
        for last in waiting {
            fold(last);
        }
        *position = sent;
    });
}

/// Folds facts into the journeys, a window at a time with the window's journeys read into the
/// cache first. Returns where each fact's prescription and session were found (see
/// [`Journeys::apply`]).
fn fold_before_ledger(journeys: &mut Journeys, facts: &[Fact]) -> Vec<Located> {
    let mut located = Vec::with_capacity(facts.len());
    let mut found = Vec::with_capacity(WARM_FACTS);
    for window in facts.chunks(WARM_FACTS) {
        std::hint::black_box(journeys.warm(window, &mut found));
        for (fact, prescription) in window.iter().zip(&found) {
            located.push(journeys.apply_warmed(fact, *prescription));
        }
    }
    located
}

/// Folds facts into the ledger, as [`fold_before_ledger`] does, each with where the journeys'
/// fold found its prescription and session.
fn fold_ledger(ledger: &mut Ledger, facts: &[Fact], located: &[Located]) {
    assert_eq!(facts.len(), located.len(), "located, every fact");
    let mut found = Vec::with_capacity(WARM_FACTS);
    for (window, located) in facts.chunks(WARM_FACTS).zip(located.chunks(WARM_FACTS)) {
        std::hint::black_box(ledger.warm(window, located, &mut found));
        for ((fact, located), funding) in window.iter().zip(located).zip(&found) {
            ledger.apply_warmed(fact, *located, *funding);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{History, ods, registered};
    use followfund_contracts::Role;

    #[test]
    fn folding_advances_the_position_one_fact_at_a_time() {
        let mut history = History::new();
        history.push(registered("ANCHOR1", Role::Anchor));
        history.push(registered("PROV1", Role::Provider));
        let models = history.fold();
        assert_eq!(models.position(), 2);
        assert_eq!(models.organisations.len(), 2);
        assert!(models.organisations.get(&ods("PROV1")).is_some());
    }

    #[test]
    #[should_panic(expected = "events fold in order")]
    fn a_gap_in_positions_is_a_bug() {
        let mut history = History::new();
        history.push(registered("ANCHOR1", Role::Anchor));
        history.push(registered("PROV1", Role::Provider));
        let mut models = ReadModels::new();
        models.apply(&history.facts()[1]);
    }

    #[test]
    #[should_panic(expected = "events fold in order")]
    fn a_gap_inside_a_page_is_a_bug() {
        let mut history = History::new();
        for index in 0..PAGE_FACTS_FOR_TWO_THREADS + 1 {
            history.push(registered(&format!("ORG{index}"), Role::Provider));
        }
        let mut facts = history.facts().to_vec();
        facts.remove(PAGE_FACTS_FOR_TWO_THREADS / 2);
        ReadModels::new().apply_all(&facts);
    }

    #[test]
    #[should_panic(expected = "events fold in order")]
    fn a_gap_between_pages_is_a_bug() {
        let mut history = History::new();
        for index in 0..4 {
            history.push(registered(&format!("ORG{index}"), Role::Provider));
        }
        let facts = history.facts();
        let pages = [facts[..2].to_vec(), facts[3..].to_vec()];
        ReadModels::new().apply_pages(pages);
    }

    #[test]
    #[should_panic(expected = "events fold in order")]
    fn a_fact_folded_twice_is_a_bug() {
        let mut history = History::new();
        history.push(registered("ANCHOR1", Role::Anchor));
        let mut models = ReadModels::new();
        models.apply(&history.facts()[0]);
        models.apply(&history.facts()[0]);
    }
}
