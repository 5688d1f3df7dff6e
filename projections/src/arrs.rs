//! ARRS: the facts a PCN's link-worker reimbursement is computed from, folded as they come, and
//! the figures of DOMAIN.md §5 computed from them on request (`claims`), so that a backdated
//! revision of the rules changes every month it reaches at once.

mod claims;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use followfund_contracts::events::{ArrsRulesPublished, Employer, LinkWorkerEmployed};
use followfund_contracts::terms::{FinancialYear, Wte, YearMonth};
use followfund_contracts::{Event, Money, OdsCode, PcnCode};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Fact;

pub use claims::{ArrsError, Explanation, PcnMonth, PcnYear, WorkerMonth, YearTotals};

/// Everything ARRS knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrs {
    /// Each year's rules, by version.
    rules: BTreeMap<FinancialYear, BTreeMap<u32, RulesVersion>>,
    pcns: BTreeMap<PcnCode, Pcn>,
    workers: BTreeMap<Uuid, LinkWorker>,
    claims: BTreeMap<Uuid, Claim>,
}

/// One version of a year's rules and where it was published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesVersion {
    /// The rules.
    pub rules: ArrsRulesPublished,
    /// The position of their publication.
    pub position: u64,
    /// The day they were published: before `effective_from`, or after it when backdated.
    pub published_on: NaiveDate,
}

/// A PCN taking part in ARRS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pcn {
    /// Its code.
    pub code: PcnCode,
    /// Its name.
    pub name: String,
    /// Its ICB.
    pub icb: OdsCode,
    /// Its member practices.
    pub member_practices: Vec<OdsCode>,
    /// Where it was registered.
    pub position: u64,
    /// List sizes in date order.
    pub populations: Vec<Population>,
    /// Combined sums notified, by year.
    pub notified_sums: BTreeMap<FinancialYear, (Money, u64)>,
    /// Its link workers, in the order employed.
    pub workers: Vec<Uuid>,
    /// Its claims, in the order submitted.
    pub claims: Vec<Uuid>,
}

/// A PCN's list size on a date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Population {
    /// The date it was taken at.
    pub on: NaiveDate,
    /// Registered patients.
    pub raw: u32,
    /// Weighted patients.
    pub weighted: Decimal,
    /// The fact that recorded it.
    pub position: u64,
}

/// A link worker, pseudonymous.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkWorker {
    /// The worker's id.
    pub link_worker_id: Uuid,
    /// The PCN claiming.
    pub pcn: PcnCode,
    /// Who employs the worker.
    pub employer: Employer,
    /// The first day in post.
    pub start_date: NaiveDate,
    /// The last day in post, once the worker has left.
    pub last_day: Option<NaiveDate>,
    /// WTE from each date, in date order; the first is from `start_date`.
    pub hours: Vec<(NaiveDate, Wte, u64)>,
    /// Contracted salary a month.
    pub monthly_salary: Money,
    /// Contracted on-costs a month.
    pub monthly_on_costs: Money,
    /// Actual cost paid by month, with the facts that recorded it.
    pub costs: BTreeMap<YearMonth, (Money, Vec<u64>)>,
    /// Where the worker was employed, and where the worker left if so.
    pub positions: Vec<u64>,
}

impl LinkWorker {
    /// The VCSE supplying the worker, if one does: such a worker earns the supplier
    /// contribution.
    pub fn supplier(&self) -> Option<&OdsCode> {
        match &self.employer {
            Employer::VcseSupplier { supplier } => Some(supplier),
            Employer::Pcn => None,
        }
    }

    /// The WTE on a day in post.
    pub fn wte_on(&self, day: NaiveDate) -> Option<Wte> {
        if day < self.start_date || self.last_day.is_some_and(|last| day > last) {
            return None;
        }
        self.hours
            .iter()
            .rev()
            .find(|(from, _, _)| *from <= day)
            .map(|(_, wte, _)| *wte)
    }
}

/// A claim a PCN made for a month, and what was paid against it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The claim.
    pub claim_id: Uuid,
    /// The PCN.
    pub pcn: PcnCode,
    /// The month claimed for.
    pub month: YearMonth,
    /// The amount claimed.
    pub amount: Money,
    /// The rules version of the month's year known when it was claimed.
    pub rules_version: Option<u32>,
    /// Where it was submitted.
    pub position: u64,
    /// Paid so far.
    pub paid: Money,
    /// The facts that paid it.
    pub payments: Vec<u64>,
}

impl Arrs {
    pub(crate) fn apply(&mut self, fact: &Fact) {
        let position = fact.position;
        match &fact.event {
            Event::ArrsRulesPublished(rules) => {
                let version = RulesVersion {
                    rules: (**rules).clone(),
                    position,
                    published_on: fact.occurred_at.date_naive(),
                };
                let versions = self.rules.entry(rules.financial_year).or_default();
                versions.entry(rules.version).or_insert(version);
            }
            Event::PcnRegistered(e) => {
                let pcn = self.pcns.entry(e.pcn.clone()).or_insert_with(|| Pcn {
                    code: e.pcn.clone(),
                    name: String::new(),
                    icb: e.icb.clone(),
                    member_practices: Vec::new(),
                    position,
                    populations: Vec::new(),
                    notified_sums: BTreeMap::new(),
                    workers: Vec::new(),
                    claims: Vec::new(),
                });
                // Registering again updates the description; what was recorded against it stays.
                pcn.name = e.name.clone();
                pcn.icb = e.icb.clone();
                pcn.member_practices = e.member_practices.clone();
                pcn.position = position;
            }
            Event::PcnPopulationRecorded(e) => {
                if let Some(pcn) = self.pcns.get_mut(&e.pcn) {
                    let population = Population {
                        on: e.on,
                        raw: e.raw_list_size,
                        weighted: e.weighted_list_size,
                        position,
                    };
                    let at = pcn.populations.partition_point(|p| p.on <= e.on);
                    pcn.populations.insert(at, population);
                }
            }
            Event::PcnArrsSumNotified(e) => {
                if let Some(pcn) = self.pcns.get_mut(&e.pcn) {
                    pcn.notified_sums
                        .insert(e.financial_year, (e.amount, position));
                }
            }
            Event::LinkWorkerEmployed(e) => self.employ(position, e),
            Event::LinkWorkerWteChanged(e) => {
                if let Some(worker) = self.workers.get_mut(&e.link_worker_id) {
                    let at = worker
                        .hours
                        .partition_point(|(from, _, _)| *from <= e.effective_from);
                    worker.hours.insert(at, (e.effective_from, e.wte, position));
                    worker.positions.push(position);
                }
            }
            Event::LinkWorkerLeft(e) => {
                if let Some(worker) = self.workers.get_mut(&e.link_worker_id) {
                    worker.last_day = Some(e.last_day);
                    worker.positions.push(position);
                }
            }
            Event::LinkWorkerCostPaid(e) => {
                if let Some(worker) = self.workers.get_mut(&e.link_worker_id) {
                    let (total, positions) = worker.costs.entry(e.month).or_default();
                    *total = total
                        .checked_add(e.amount)
                        .expect("costs far below the limit");
                    positions.push(position);
                }
            }
            Event::ArrsClaimSubmitted(e) => {
                let rules_version = self
                    .rules
                    .get(&e.month.financial_year())
                    .and_then(|versions| versions.keys().next_back().copied());
                let Some(pcn) = self.pcns.get_mut(&e.pcn) else {
                    return;
                };
                if self.claims.contains_key(&e.claim_id) {
                    return;
                }
                pcn.claims.push(e.claim_id);
                let claim = Claim {
                    claim_id: e.claim_id,
                    pcn: e.pcn.clone(),
                    month: e.month,
                    amount: e.amount,
                    rules_version,
                    position,
                    paid: Money::zero(),
                    payments: Vec::new(),
                };
                self.claims.insert(e.claim_id, claim);
            }
            Event::ArrsClaimPaid(e) => {
                if let Some(claim) = self.claims.get_mut(&e.claim_id) {
                    claim.paid = claim
                        .paid
                        .checked_add(e.amount)
                        .expect("far below the limit");
                    claim.payments.push(position);
                }
            }
            _ => {}
        }
    }

    fn employ(&mut self, position: u64, e: &LinkWorkerEmployed) {
        if self.workers.contains_key(&e.link_worker_id) {
            return;
        }
        let Some(pcn) = self.pcns.get_mut(&e.pcn) else {
            return;
        };
        pcn.workers.push(e.link_worker_id);
        let worker = LinkWorker {
            link_worker_id: e.link_worker_id,
            pcn: e.pcn.clone(),
            employer: e.employer.clone(),
            start_date: e.start_date,
            last_day: None,
            hours: vec![(e.start_date, e.wte, position)],
            monthly_salary: e.monthly_salary,
            monthly_on_costs: e.monthly_on_costs,
            costs: BTreeMap::new(),
            positions: vec![position],
        };
        self.workers.insert(e.link_worker_id, worker);
    }

    /// A registered PCN.
    pub fn pcn(&self, code: &PcnCode) -> Option<&Pcn> {
        self.pcns.get(code)
    }

    /// Every registered PCN, in code order.
    pub fn pcns(&self) -> impl Iterator<Item = &Pcn> + use<'_> {
        self.pcns.values()
    }

    /// A link worker.
    pub fn worker(&self, link_worker_id: Uuid) -> Option<&LinkWorker> {
        self.workers.get(&link_worker_id)
    }

    /// A claim.
    pub fn claim(&self, claim_id: Uuid) -> Option<&Claim> {
        self.claims.get(&claim_id)
    }

    /// A year's rules, by version; empty when none are published.
    pub fn rules(&self, year: FinancialYear) -> Option<&BTreeMap<u32, RulesVersion>> {
        self.rules
            .get(&year)
            .filter(|versions| !versions.is_empty())
    }

    /// The version of a year's rules in force on a day: the highest version whose
    /// `effective_from` is on or before it.
    pub fn rules_on(&self, day: NaiveDate) -> Option<&RulesVersion> {
        self.rules
            .get(&FinancialYear::containing(day))?
            .values()
            .filter(|version| version.rules.effective_from <= day)
            .max_by_key(|version| version.rules.version)
    }
}
