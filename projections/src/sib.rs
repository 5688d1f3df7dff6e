//! Social impact bonds: the facts outcome contracts are judged on (contracts, the people referred,
//! their measures, cohort costs, claims, sign-offs, withdrawals and payments), folded as they
//! come; `outcomes` judges each person and cohort, and `payments` splits what is due between
//! payers within their caps, both on request.

mod outcomes;
mod payments;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use followfund_contracts::events::{
    AgeBand, Cohort, Instrument, LongTermCondition, MeasureStage, SibContractPublished,
    WithdrawalReason,
};
use followfund_contracts::terms::{FinancialYear, YearMonth};
use followfund_contracts::{Event, Money, OdsCode};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Fact;
use crate::few::Few;
use crate::numbered::{Number, Numbered};
use crate::records::Records;

pub use outcomes::{CohortFigures, CohortOutcome, CostFigures, OutcomeStatus, PersonOutcome};
pub use payments::{DueLine, InvestorPosition, PayerPeriod, Payments};

/// Everything the ledger knows about social impact bonds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sib {
    contracts: BTreeMap<Uuid, Contract>,
    people: Records<Person>,
    /// The link worker services people are referred to, by the numbers people hold: a
    /// million people a year each kept a copy of a code of a few hundred services.
    services: Numbered<OdsCode>,
    claims: BTreeMap<Uuid, Claim>,
    /// The position of the last fact that changed anything here.
    revision: u64,
}

/// A published contract and what has been recorded against it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// Its terms.
    pub terms: SibContractPublished,
    /// Where they were published.
    pub position: u64,
    /// Cohort costs, in the order recorded.
    pub costs: Vec<CostRecord>,
    /// Its claims, in the order made.
    pub claims: Vec<Uuid>,
    /// Payments made, in the order recorded.
    pub payments: Vec<PaymentRecord>,
}

/// A cohort's cost for a year.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRecord {
    /// The year.
    pub financial_year: FinancialYear,
    /// Which cohort.
    pub cohort: Cohort,
    /// People in it.
    pub people: u32,
    /// Their cost.
    pub cost: Money,
    /// The fact.
    pub position: u64,
}

/// A payment a payer made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// The payer.
    pub payer: OdsCode,
    /// The period paid for.
    pub period: YearMonth,
    /// The amount.
    pub amount: Money,
    /// The fact.
    pub position: u64,
}

/// A person referred, as outcome contracts see them: pseudonymous, by referral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The referral.
    #[serde(with = "crate::compact::id")]
    pub referral_id: Uuid,
    /// The link worker service holding the referral: read it through [`Sib::provider`].
    pub(crate) provider: Number,
    /// Age band at referral.
    #[serde(with = "crate::compact::listed")]
    pub age_band: AgeBand,
    /// Long-term conditions at referral.
    #[serde(with = "crate::few::places")]
    pub conditions: Few<LongTermCondition>,
    /// The day the referral was received.
    #[serde(with = "crate::compact::day")]
    pub received_on: NaiveDate,
    /// Where it was received.
    pub position: u64,
    /// The first assessment, if held: its day and position.
    #[serde(with = "crate::compact::day_and_position_option")]
    pub assessed: Option<(NaiveDate, u64)>,
    /// Measures taken, in the order recorded.
    #[serde(with = "crate::compact::packed")]
    pub measures: Vec<Measure>,
}

/// One completed instrument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    /// The instrument.
    #[serde(with = "crate::compact::listed")]
    pub instrument: Instrument,
    /// Baseline or follow-up.
    #[serde(with = "crate::compact::listed")]
    pub stage: MeasureStage,
    /// The day it was taken.
    #[serde(with = "crate::compact::day")]
    pub on: NaiveDate,
    /// Its score (SWEMWBS converted to the metric score), if the instrument has one.
    pub score: Option<Decimal>,
    /// The fact.
    pub position: u64,
}

/// A score's head byte when there is a score: one more than its scale, with this bit set for
/// a negative one. Zero says there is none.
const SCORE_NEGATIVE: u8 = 0x80;

/// A measure as a snapshot holds it: the instrument's and the stage's places, the day as a
/// zigzag change from the first day of the common era, the position, then the score's head
/// byte and, if it has a score, its mantissa's magnitude in two numbers (the low 64 bits and
/// the rest). Field by field, a national year's 1.8 million measures went through the
/// decoder's calls for every field and a text parse of every score.
impl crate::compact::Packed for Measure {
    fn pack(&self, bytes: &mut Vec<u8>) {
        bytes.push(crate::compact::place(self.instrument));
        bytes.push(crate::compact::place(self.stage));
        let day = i64::from(self.on.num_days_from_ce());
        crate::varint::put(bytes, crate::varint::zigzag(day));
        crate::varint::put(bytes, self.position);
        let Some(score) = self.score else {
            bytes.push(0);
            return;
        };
        let scale = u8::try_from(score.scale() + 1).expect("a decimal's scale is at most 28");
        let sign = if score.is_sign_negative() {
            SCORE_NEGATIVE
        } else {
            0
        };
        bytes.push(scale | sign);
        let magnitude = score.mantissa().unsigned_abs();
        crate::varint::put(bytes, magnitude as u64);
        crate::varint::put(bytes, (magnitude >> 64) as u64);
    }

    fn unpack(bytes: &mut &[u8]) -> Option<Measure> {
        let instrument = crate::compact::take_byte(bytes)?;
        let stage = crate::compact::take_byte(bytes)?;
        let day = crate::varint::unzigzag(crate::varint::take(bytes)?);
        let on = NaiveDate::from_num_days_from_ce_opt(i32::try_from(day).ok()?)?;
        let position = crate::varint::take(bytes)?;
        let score = match crate::compact::take_byte(bytes)? {
            0 => None,
            head => Some(unpack_score(bytes, head)?),
        };
        Some(Measure {
            instrument: crate::compact::at_place(instrument)?,
            stage: crate::compact::at_place(stage)?,
            on,
            score,
            position,
        })
    }
}

/// The score whose head byte is `head`, read from its two numbers. `rust_decimal` refuses a
/// scale past 28 and a mantissa past 96 bits.
fn unpack_score(bytes: &mut &[u8], head: u8) -> Option<Decimal> {
    let scale = u32::from(head & !SCORE_NEGATIVE).checked_sub(1)?;
    let low = crate::varint::take(bytes)?;
    let high = crate::varint::take(bytes)?;
    let magnitude = i128::try_from(u128::from(high) << 64 | u128::from(low)).ok()?;
    let mantissa = if head & SCORE_NEGATIVE == 0 {
        magnitude
    } else {
        -magnitude
    };
    Decimal::try_from_i128_with_scale(mantissa, scale).ok()
}

/// An outcome claim and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The claim.
    pub claim_id: Uuid,
    /// The contract.
    pub contract_id: Uuid,
    /// The outcome.
    pub outcome_id: String,
    /// The person, for a per-person outcome.
    pub referral_id: Option<Uuid>,
    /// The month claimed for.
    pub period: YearMonth,
    /// The amount claimed.
    pub amount: Money,
    /// Where it was claimed.
    pub position: u64,
    /// Where the verifier signed it off, once it has.
    pub verified: Option<u64>,
    /// The withdrawal, if any: where, the month it falls in, and why.
    pub withdrawn: Option<(u64, YearMonth, WithdrawalReason)>,
}

/// Filed under its referral.
impl crate::records::Keyed for Person {
    fn id(&self) -> Uuid {
        self.referral_id
    }
}

impl Claim {
    /// Whether it still stands: not withdrawn.
    pub fn stands(&self) -> bool {
        self.withdrawn.is_none()
    }
}

impl Sib {
    pub(crate) fn apply(&mut self, fact: &Fact) {
        let position = fact.position;
        // Found only for the few facts that keep a date: most facts a year folds are sessions,
        // which SIB state does not follow.
        let on = || fact.occurred_at.naive_utc().date();
        match &fact.event {
            Event::SibContractPublished(terms) => {
                self.contracts
                    .entry(terms.contract_id)
                    .or_insert_with(|| Contract {
                        terms: SibContractPublished::clone(terms),
                        position,
                        costs: Vec::new(),
                        claims: Vec::new(),
                        payments: Vec::new(),
                    });
            }
            Event::ReferralReceived(e) => {
                if !self.people.contains(&e.referral_id) {
                    let person = Person {
                        referral_id: e.referral_id,
                        provider: self.services.number(&e.link_worker_organisation),
                        age_band: e.age_band,
                        conditions: Few::from_slice(&e.conditions),
                        received_on: on(),
                        position,
                        assessed: None,
                        measures: Vec::new(),
                    };
                    self.people.insert(person);
                }
            }
            Event::ReferralRedirected(e) => {
                if let Some(person) = self.people.get_mut(&e.referral_id) {
                    person.provider = self.services.number(&e.to_organisation);
                }
            }
            Event::AssessmentHeld(e) => {
                if let Some(person) = self.people.get_mut(&e.referral_id) {
                    person.assessed.get_or_insert((on(), position));
                }
            }
            Event::OutcomeMeasured(e) => {
                if let Some(person) = self.people.get_mut(&e.referral_id) {
                    // A person has a few measures (a baseline and follow-ups), and a list
                    // grown by doubling starts at room for four.
                    person.measures.reserve_exact(1);
                    person.measures.push(Measure {
                        instrument: e.instrument,
                        stage: e.stage,
                        on: on(),
                        score: e.instrument.score(&e.item_scores),
                        position,
                    });
                }
            }
            Event::CohortCostRecorded(e) => {
                if let Some(contract) = self.contracts.get_mut(&e.contract_id) {
                    contract.costs.push(CostRecord {
                        financial_year: e.financial_year,
                        cohort: e.cohort,
                        people: e.people,
                        cost: e.cost,
                        position,
                    });
                }
            }
            Event::SibOutcomeClaimed(e) => {
                let Some(contract) = self.contracts.get_mut(&e.contract_id) else {
                    return;
                };
                if self.claims.contains_key(&e.claim_id) {
                    return;
                }
                contract.claims.push(e.claim_id);
                let claim = Claim {
                    claim_id: e.claim_id,
                    contract_id: e.contract_id,
                    outcome_id: e.outcome_id.clone(),
                    referral_id: e.referral_id,
                    period: e.period,
                    amount: e.amount,
                    position,
                    verified: None,
                    withdrawn: None,
                };
                self.claims.insert(e.claim_id, claim);
            }
            Event::SibOutcomeVerified(e) => {
                if let Some(claim) = self.claims.get_mut(&e.claim_id) {
                    claim.verified.get_or_insert(position);
                }
            }
            Event::SibOutcomeWithdrawn(e) => {
                if let Some(claim) = self.claims.get_mut(&e.claim_id) {
                    claim
                        .withdrawn
                        .get_or_insert((position, e.period, e.reason));
                }
            }
            Event::SibPaymentMade(e) => {
                if let Some(contract) = self.contracts.get_mut(&e.contract_id) {
                    contract.payments.push(PaymentRecord {
                        payer: e.payer.clone(),
                        period: e.period,
                        amount: e.amount,
                        position,
                    });
                }
            }
            _ => return,
        }
        self.revision = position;
    }

    /// The position of the last fact that changed SIB state: figures worked out from it stand
    /// until this moves.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// A published contract.
    pub fn contract(&self, contract_id: Uuid) -> Option<&Contract> {
        self.contracts.get(&contract_id)
    }

    /// Every published contract, in id order.
    pub fn contracts(&self) -> impl Iterator<Item = &Contract> + use<'_> {
        self.contracts.values()
    }

    /// A person, by referral.
    pub fn person(&self, referral_id: Uuid) -> Option<&Person> {
        self.people.get(&referral_id)
    }

    /// A claim.
    pub fn claim(&self, claim_id: Uuid) -> Option<&Claim> {
        self.claims.get(&claim_id)
    }

    /// A contract's claims, in the order made.
    pub fn claims_of<'a>(&'a self, contract: &'a Contract) -> impl Iterator<Item = &'a Claim> + 'a {
        contract.claims.iter().filter_map(|id| self.claims.get(id))
    }

    /// The link worker service holding a person's referral.
    pub fn provider(&self, person: &Person) -> &OdsCode {
        self.services.get(person.provider)
    }

    /// Whether a person is in a contract's cohort: referred to its provider within its dates,
    /// and eligible at referral.
    pub fn in_cohort(&self, contract: &Contract, person: &Person) -> bool {
        let terms = &contract.terms;
        *self.provider(person) == terms.provider
            && (terms.starts_on..=terms.ends_on).contains(&person.received_on)
            && terms
                .eligibility
                .admits(person.age_band, &person.conditions)
    }

    /// The people in a contract's cohort.
    pub fn cohort<'a>(&'a self, contract: &'a Contract) -> impl Iterator<Item = &'a Person> + 'a {
        self.people
            .iter()
            .map(|(_, person)| person)
            .filter(move |person| self.in_cohort(contract, person))
    }

    /// Every person's service is numbered. The runner calls it after loading a snapshot.
    pub fn assert_consistent(&self) {
        let numbered = |(_, person): (Uuid, &Person)| self.services.holds(person.provider);
        assert!(
            self.people.iter().all(numbered),
            "people name numbered services"
        );
    }
}
