//! The simulated world: ICBs, anchors, providers with agreements, PCNs with link workers, an
//! outcome contract; the events that set it up, and each PCN's month of ARRS costs and claims.

use chrono::{DateTime, Utc};
use followfund_contracts::events::{
    ActivityType, AgreementSigned, ArrsClaimPaid, ArrsClaimSubmitted, BudgetAccount,
    BudgetAllocated, Employer, LinkWorkerCostPaid, LinkWorkerEmployed, OrganisationRegistered,
    PcnArrsSumNotified, PcnPopulationRecorded, PcnRegistered,
};
use followfund_contracts::terms::{FinancialYear, Tariff, YearMonth, read_terms};
use followfund_contracts::{Event, Money, Nation, OdsCode, PcnCode, Role};
use uuid::Uuid;

use super::{Check, Job, Pending, Random, Simulation, principal, year_start};

/// How big a year to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// A few hundred referrals: seconds, for tests and CI.
    Small,
    /// One region: tens of thousands of referrals.
    Region,
    /// England: about 1,250 PCNs in 42 ICBs, 5,000 providers, 1,000,000 referrals.
    National,
}

/// The counts a scale stands for.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Integrated care boards (commissioners).
    pub icbs: u32,
    /// Primary care networks.
    pub pcns: u32,
    /// Anchor organisations holding referrals and budgets.
    pub anchors: u32,
    /// VCSE providers, each with one agreement.
    pub providers: u32,
    /// Referrals over the year.
    pub referrals: u32,
}

impl Scale {
    /// The counts of the scale. National follows DOMAIN.md §9: about 1,250 PCNs and 42 ICBs, a
    /// million referrals; 300 anchors and 5,000 providers are this generator's choice.
    pub fn shape(self) -> Shape {
        match self {
            Scale::Small => Shape {
                icbs: 2,
                pcns: 6,
                anchors: 3,
                providers: 12,
                referrals: 300,
            },
            Scale::Region => Shape {
                icbs: 4,
                pcns: 100,
                anchors: 24,
                providers: 400,
                referrals: 80_000,
            },
            Scale::National => Shape {
                icbs: 42,
                pcns: 1_250,
                anchors: 300,
                providers: 5_000,
                referrals: 1_000_000,
            },
        }
    }
}

/// One provider and its agreement.
pub(crate) struct Provider {
    pub(crate) code: OdsCode,
    pub(crate) agreement_id: Uuid,
    pub(crate) activity: ActivityType,
}

/// One PCN and its link workers.
pub(crate) struct Pcn {
    pub(crate) code: PcnCode,
    pub(crate) icb: OdsCode,
    pub(crate) workers: Vec<(Uuid, Money)>,
}

/// Everything the year happens between.
pub(crate) struct World {
    pub(crate) shape: Shape,
    pub(crate) icbs: Vec<OdsCode>,
    pub(crate) anchors: Vec<OdsCode>,
    /// Each anchor's providers.
    pub(crate) providers: Vec<Vec<Provider>>,
    pub(crate) pcns: Vec<Pcn>,
    /// The anchor whose referrals the outcome contract covers, and the contract.
    pub(crate) sib: (usize, Uuid),
}

const ACTIVITIES: [ActivityType; 6] = [
    ActivityType::Walking,
    ActivityType::Arts,
    ActivityType::Gardening,
    ActivityType::DebtAdvice,
    ActivityType::PeerSupport,
    ActivityType::Exercise,
];

fn code(prefix: &str, number: u32) -> OdsCode {
    OdsCode::parse(&format!("{prefix}{number:05}")).expect("generated codes are valid")
}

impl World {
    pub(crate) fn new(scale: Scale, random: &mut Random) -> World {
        let shape = scale.shape();
        let icbs: Vec<OdsCode> = (0..shape.icbs)
            .map(|i| OdsCode::parse(&format!("Q{i:02}")).unwrap())
            .collect();
        let anchors: Vec<OdsCode> = (0..shape.anchors).map(|i| code("A", i)).collect();
        let mut providers: Vec<Vec<Provider>> = anchors.iter().map(|_| Vec::new()).collect();
        for i in 0..shape.providers {
            let anchor = (i % shape.anchors) as usize;
            providers[anchor].push(Provider {
                code: code("V", i),
                agreement_id: Uuid::from_u64_pair(0xa9, u64::from(i)),
                activity: random.pick(&ACTIVITIES),
            });
        }
        let pcns = (0..shape.pcns)
            .map(|i| Pcn {
                code: PcnCode::parse(&format!("U{i:05}")).unwrap(),
                icb: icbs[(i % shape.icbs) as usize].clone(),
                workers: Vec::new(),
            })
            .collect();
        World {
            shape,
            icbs,
            anchors,
            providers,
            pcns,
            sib: (0, Uuid::from_u64_pair(0x51b, 1)),
        }
    }

    fn icb_of_anchor(&self, anchor: usize) -> &OdsCode {
        &self.icbs[anchor % self.icbs.len()]
    }
}

/// Everything that must exist before the first referral, in order.
pub(crate) fn setup(sim: &mut Simulation) -> Vec<Pending> {
    let mut pending = Vec::new();
    let at = year_start() - chrono::Duration::days(30);
    let register = |code: &OdsCode, role: Role, parent: Option<&OdsCode>| {
        let event = Event::OrganisationRegistered(OrganisationRegistered {
            organisation: code.clone(),
            name: format!("{code} (synthetic)"),
            role,
            nation: Nation::England,
            parent: parent.cloned(),
        });
        Pending::new(
            Check::Unchecked(format!("organisation-{code}")),
            event,
            principal("FOLLOWFUND", Role::Admin),
            at,
        )
    };
    let world = &sim.world;
    for icb in &world.icbs {
        pending.push(register(icb, Role::Commissioner, None));
    }
    for (index, anchor) in world.anchors.iter().enumerate() {
        pending.push(register(
            anchor,
            Role::Anchor,
            Some(world.icb_of_anchor(index)),
        ));
        for provider in &world.providers[index] {
            pending.push(register(&provider.code, Role::Provider, Some(anchor)));
        }
    }
    for pcn in &world.pcns {
        pending.push(register(&pcn.code.to_ods_code(), Role::Pcn, Some(&pcn.icb)));
    }
    pending.push(register(
        &OdsCode::parse("VER01").unwrap(),
        Role::Verifier,
        None,
    ));
    pending.push(register(
        &OdsCode::parse("INV01").unwrap(),
        Role::Investor,
        None,
    ));
    pending.extend(funding_terms(sim, at));
    pending.extend(published(
        include_str!("../../contracts/rules/arrs/2022-23.toml"),
        at,
    ));
    pending.extend(outcome_contract(sim, at));
    pending.extend(arrs_setup(sim, at));
    pending
}

/// A budget for every anchor and an agreement with every provider, for the year.
fn funding_terms(sim: &mut Simulation, at: DateTime<Utc>) -> Vec<Pending> {
    let year = FinancialYear::starting(super::YEAR_START_YEAR);
    let per_anchor = sim.world.shape.referrals / sim.world.shape.anchors;
    let mut pending = Vec::new();
    for (index, anchor) in sim.world.anchors.clone().into_iter().enumerate() {
        let allocation_id = sim.id();
        // Room for every referral's prescriptions at their most: 2 × £200 each, and then some.
        let amount = Money::from_pence(i64::from(per_anchor + 50) * 2 * 20_000 * 12 / 10);
        let event = Event::BudgetAllocated(BudgetAllocated {
            allocation_id,
            commissioner: sim.world.icb_of_anchor(index).clone(),
            anchor: anchor.clone(),
            financial_year: year,
            account: BudgetAccount::Activities,
            amount,
        });
        pending.push(Pending::new(
            Check::Unchecked(format!("budget-{allocation_id}")),
            event,
            principal("FOLLOWFUND", Role::Admin),
            at,
        ));
        let providers = sim.world.providers[index].len().max(1) as u32;
        // Enough places for the anchor's share of prescriptions open at once, about a quarter
        // of a year's, with headroom.
        let capacity = (per_anchor * 3 / 2 / 4 / providers).max(4) * 3 / 2;
        for provider in &sim.world.providers[index] {
            let tariff: Tariff = serde_json::from_value(serde_json::json!({
                "engagement_fee": "25.00", "session_fee": "15.00", "funded_sessions": 12,
                "completion_fee": "40.00", "completion_min_sessions": 8, "cap_per_referral": "200.00",
            }))
            .expect("a valid tariff");
            let event = Event::AgreementSigned(Box::new(AgreementSigned {
                agreement_id: provider.agreement_id,
                anchor: anchor.clone(),
                provider: provider.code.clone(),
                valid_from: year.first_day(),
                valid_to: year.last_day() + chrono::Months::new(12),
                capacity,
                response_window_days: 5,
                activity_types: vec![provider.activity],
                tariff,
            }));
            pending.push(Pending::new(
                Check::Unchecked(format!("agreement-{}", provider.agreement_id)),
                event,
                principal("FOLLOWFUND", Role::Admin),
                at,
            ));
        }
    }
    pending
}

/// The events a shipped terms file publishes.
fn published(text: &str, at: DateTime<Utc>) -> Vec<Pending> {
    let terms = read_terms(text).expect("shipped terms are valid");
    terms
        .publications
        .into_iter()
        .map(|p| {
            Pending::new(
                Check::Unchecked(p.stream),
                p.event,
                principal("FOLLOWFUND", Role::Admin),
                at,
            )
        })
        .collect()
}

/// The example rate card, moved onto the first anchor's referrals for the simulated year and
/// paid by its ICB.
fn outcome_contract(sim: &mut Simulation, at: DateTime<Utc>) -> Vec<Pending> {
    let mut pending = published(
        include_str!("../../contracts/rules/sib/rate-card-example.toml"),
        at,
    );
    let Event::SibContractPublished(contract) = &mut pending[0].event else {
        unreachable!("the rate card publishes one contract");
    };
    let year = FinancialYear::starting(super::YEAR_START_YEAR);
    let (anchor, contract_id) = sim.world.sib;
    contract.contract_id = contract_id;
    contract.provider = sim.world.anchors[anchor].clone();
    contract.starts_on = year.first_day();
    contract.ends_on = year.last_day();
    contract.payers.truncate(1);
    contract.payers[0].payer = sim.world.icb_of_anchor(anchor).clone();
    contract.payers[0].cap = Money::from_pence(500_000_000);
    contract.total_cap = Money::from_pence(500_000_000);
    contract.phases.truncate(1);
    contract.phases[0].from = year.first_day();
    contract.phases[0].shares = vec![followfund_contracts::terms::PayerShare {
        payer: contract.payers[0].payer.clone(),
        share: "1".parse().expect("one"),
    }];
    pending[0].check = Check::Unchecked(format!("sib-{contract_id}"));
    pending
}

/// Each PCN registered by its ICB with a list size and notified sum, and one or two link workers.
fn arrs_setup(sim: &mut Simulation, at: DateTime<Utc>) -> Vec<Pending> {
    let year = FinancialYear::starting(super::YEAR_START_YEAR);
    let mut pending = Vec::new();
    for index in 0..sim.world.pcns.len() {
        let (code, icb) = (
            sim.world.pcns[index].code.clone(),
            sim.world.pcns[index].icb.clone(),
        );
        let commissioner = principal(icb.as_str(), Role::Commissioner);
        let own = principal(code.as_str(), Role::Pcn);
        let registered = Event::PcnRegistered(Box::new(PcnRegistered {
            pcn: code.clone(),
            name: format!("{code} (synthetic)"),
            icb: icb.clone(),
            member_practices: vec![code.to_ods_code()],
            nation: Nation::England,
        }));
        pending.push(Pending::new(
            Check::Arrs,
            registered,
            commissioner.clone(),
            at,
        ));
        let raw = 30_000 + sim.random.below(90_000) as u32;
        let population = Event::PcnPopulationRecorded(PcnPopulationRecorded {
            pcn: code.clone(),
            on: year.first_day() - chrono::Months::new(3),
            raw_list_size: raw,
            weighted_list_size: raw.into(),
        });
        pending.push(Pending::new(
            Check::Arrs,
            population,
            commissioner.clone(),
            at,
        ));
        // Synthetic: our sources give no 2022/23 rate, so the generator notifies £20 a patient.
        let sum = Event::PcnArrsSumNotified(Box::new(PcnArrsSumNotified {
            pcn: code.clone(),
            financial_year: year,
            amount: Money::from_pence(i64::from(raw) * 2_000),
            source: "synthetic".into(),
        }));
        pending.push(Pending::new(Check::Arrs, sum, commissioner, at));
        let workers = 1 + sim.random.below(2);
        for _ in 0..workers {
            let worker = sim.id();
            let supplied = sim.random.chance(30);
            let employer = if supplied {
                let anchor = sim.random.below(sim.world.anchors.len() as u64) as usize;
                Employer::VcseSupplier {
                    supplier: sim.world.providers[anchor][0].code.clone(),
                }
            } else {
                Employer::Pcn
            };
            let monthly = Money::from_pence(255_000);
            let employed = Event::LinkWorkerEmployed(Box::new(LinkWorkerEmployed {
                link_worker_id: worker,
                pcn: code.clone(),
                employer,
                wte: "1".parse().unwrap(),
                start_date: year.first_day(),
                monthly_salary: Money::from_pence(210_000),
                monthly_on_costs: Money::from_pence(45_000),
            }));
            pending.push(Pending::new(Check::Arrs, employed, own.clone(), at));
            sim.world.pcns[index].workers.push((worker, monthly));
        }
    }
    pending
}

/// A PCN's link-worker costs for the month before `at`; its claim follows once they are folded.
pub(crate) fn arrs_month(sim: &mut Simulation, pcn: u32, at: DateTime<Utc>) -> Vec<Pending> {
    let month = YearMonth::containing(at.date_naive() - chrono::Months::new(1));
    let (code, workers) = {
        let pcn = &sim.world.pcns[pcn as usize];
        (pcn.code.clone(), pcn.workers.clone())
    };
    let own = principal(code.as_str(), Role::Pcn);
    let pending: Vec<Pending> = workers
        .iter()
        .map(|(worker, monthly)| {
            let cost = Event::LinkWorkerCostPaid(LinkWorkerCostPaid {
                link_worker_id: *worker,
                month,
                amount: *monthly,
            });
            Pending::new(Check::Arrs, cost, own.clone(), at)
        })
        .collect();
    sim.at(at + chrono::Duration::days(5), Job::ArrsClaim(pcn));
    pending
}

/// The claim for the month before last's end, as the read models price it, and its payment.
pub(crate) fn arrs_claim(sim: &mut Simulation, pcn: u32, at: DateTime<Utc>) -> Vec<Pending> {
    let month = YearMonth::containing(at.date_naive() - chrono::Months::new(1));
    let (code, icb) = {
        let pcn = &sim.world.pcns[pcn as usize];
        (pcn.code.clone(), pcn.icb.clone())
    };
    let Ok(figures) = sim.models().arrs.month(&code, month) else {
        return Vec::new();
    };
    if figures.claimable.is_zero() {
        return Vec::new();
    }
    let claim_id = sim.id();
    let claim = Event::ArrsClaimSubmitted(ArrsClaimSubmitted {
        claim_id,
        pcn: code.clone(),
        month,
        amount: figures.claimable,
    });
    let paid = Event::ArrsClaimPaid(ArrsClaimPaid {
        claim_id,
        pcn: code.clone(),
        amount: figures.claimable,
        paid_on: (at + chrono::Duration::days(10)).date_naive(),
    });
    vec![
        Pending::new(Check::Arrs, claim, principal(code.as_str(), Role::Pcn), at),
        Pending::new(
            Check::Arrs,
            paid,
            principal(icb.as_str(), Role::Commissioner),
            at + chrono::Duration::days(10),
        ),
    ]
}
