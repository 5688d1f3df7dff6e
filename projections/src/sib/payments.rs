//! What payers owe: each verified claim split between the payers by the shares of its period's
//! phase, stopping at each payer's cap and at the total cap (the capped remainder shown), a
//! withdrawal reversing exactly what its claim made due, and what payers have paid.

use std::collections::BTreeMap;

use followfund_contracts::terms::{Phase, YearMonth};
use followfund_contracts::{Money, OdsCode};
use uuid::Uuid;

use super::{Claim, Contract, Sib};

/// One payer's part of a claim, or of its reversal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueLine {
    /// The month it falls in: the claim's, or the withdrawal's for a reversal.
    pub period: YearMonth,
    /// The payer.
    pub payer: OdsCode,
    /// The claim.
    pub claim_id: Uuid,
    /// Due: positive, or negative for a reversal.
    pub amount: Money,
    /// What the payer's share would have been beyond its cap or the total cap.
    pub capped: Money,
    /// The sign-off or withdrawal that made it.
    pub position: u64,
    /// The share and phase behind it, in words.
    pub detail: String,
}

/// A payer's month: due, paid and outstanding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayerPeriod {
    /// The payer.
    pub payer: OdsCode,
    /// The month.
    pub period: YearMonth,
    /// Due for it.
    pub due: Money,
    /// Paid for it.
    pub paid: Money,
    /// Capped away.
    pub capped: Money,
}

/// What the investors have had back against what they put in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvestorPosition {
    /// The investor.
    pub investor: OdsCode,
    /// Its capital.
    pub capital: Money,
    /// Its share of outcome payments made, by capital.
    pub received: Money,
}

/// A contract's payments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payments {
    /// Every line, in the order the sign-offs and withdrawals were recorded.
    pub lines: Vec<DueLine>,
    /// By payer and month.
    pub by_payer_period: Vec<PayerPeriod>,
    /// Due in all.
    pub due: Money,
    /// Paid in all.
    pub paid: Money,
    /// Capped away in all.
    pub capped: Money,
    /// The investors' position.
    pub investors: Vec<InvestorPosition>,
}

impl Sib {
    /// A contract's payments as the facts stand.
    pub fn payments(&self, contract: &Contract) -> Payments {
        let mut split = Split::new(contract);
        for (position, step) in steps(self.claims_of(contract)) {
            match step {
                Step::Verified(claim) => split.verify(claim, position),
                Step::Withdrawn(claim, period) => split.reverse(claim, period, position),
            }
        }
        let lines = split.lines;
        let paid = contract
            .payments
            .iter()
            .fold(Money::zero(), |sum, p| add(sum, p.amount));
        Payments {
            by_payer_period: by_payer_period(&lines, contract),
            due: lines
                .iter()
                .fold(Money::zero(), |sum, l| add(sum, l.amount)),
            capped: lines
                .iter()
                .fold(Money::zero(), |sum, l| add(sum, l.capped)),
            investors: investors(contract, paid),
            paid,
            lines,
        }
    }
}

enum Step<'c> {
    Verified(&'c Claim),
    Withdrawn(&'c Claim, YearMonth),
}

/// Sign-offs and withdrawals of verified claims, in log order. A claim withdrawn before it was
/// signed off never fell due.
fn steps<'c>(claims: impl Iterator<Item = &'c Claim>) -> Vec<(u64, Step<'c>)> {
    let mut steps = Vec::new();
    for claim in claims {
        let Some(verified) = claim.verified else {
            continue;
        };
        match claim.withdrawn {
            Some((withdrawn, _, _)) if withdrawn < verified => continue,
            Some((withdrawn, period, _)) => {
                steps.push((verified, Step::Verified(claim)));
                steps.push((withdrawn, Step::Withdrawn(claim, period)));
            }
            None => steps.push((verified, Step::Verified(claim))),
        }
    }
    steps.sort_by_key(|(position, _)| *position);
    steps
}

/// The running split: what each payer and all payers owe so far against their caps.
struct Split<'c> {
    contract: &'c Contract,
    owed: BTreeMap<OdsCode, Money>,
    total: Money,
    lines: Vec<DueLine>,
}

impl<'c> Split<'c> {
    fn new(contract: &'c Contract) -> Split<'c> {
        Split {
            contract,
            owed: BTreeMap::new(),
            total: Money::zero(),
            lines: Vec::new(),
        }
    }

    /// Splits a claim by its phase's shares; the last payer takes the pennies rounding leaves.
    fn verify(&mut self, claim: &Claim, position: u64) {
        let phase = phase_for(&self.contract.terms.phases, claim.period);
        let mut left = claim.amount;
        for (index, share) in phase.shares.iter().enumerate() {
            let wanted = if index + 1 == phase.shares.len() {
                left
            } else {
                Money::from_decimal(claim.amount.as_decimal() * share.share).round_to_penny()
            };
            left = sub(left, wanted);
            let room = self.room_for(&share.payer);
            let amount = if wanted > room { room } else { wanted };
            let capped = sub(wanted, amount);
            *self.owed.entry(share.payer.clone()).or_default() =
                add(self.owed_by(&share.payer), amount);
            self.total = add(self.total, amount);
            let detail = format!(
                "{} of {} for {} (phase from {}){}",
                share.share,
                claim.amount,
                claim.outcome_id,
                phase.from,
                if capped.is_zero() {
                    String::new()
                } else {
                    format!("; {capped} beyond the cap")
                }
            );
            self.lines.push(DueLine {
                period: claim.period,
                payer: share.payer.clone(),
                claim_id: claim.claim_id,
                amount,
                capped,
                position,
                detail,
            });
        }
    }

    /// Reverses what a claim made due, payer by payer, in the withdrawal's month.
    fn reverse(&mut self, claim: &Claim, period: YearMonth, position: u64) {
        let made: Vec<(OdsCode, Money)> = self
            .lines
            .iter()
            .filter(|line| line.claim_id == claim.claim_id && !line.amount.is_negative())
            .map(|line| (line.payer.clone(), line.amount))
            .collect();
        for (payer, amount) in made {
            *self.owed.entry(payer.clone()).or_default() = sub(self.owed_by(&payer), amount);
            self.total = sub(self.total, amount);
            let detail = format!("{} withdrawn: reverses {amount} due", claim.outcome_id);
            self.lines.push(DueLine {
                period,
                payer,
                claim_id: claim.claim_id,
                amount: amount.negated(),
                capped: Money::zero(),
                position,
                detail,
            });
        }
    }

    fn owed_by(&self, payer: &OdsCode) -> Money {
        self.owed.get(payer).copied().unwrap_or_default()
    }

    /// What a payer can still be asked for: the lesser of its own and the total cap's room.
    fn room_for(&self, payer: &OdsCode) -> Money {
        let terms = &self.contract.terms;
        let cap = terms
            .payers
            .iter()
            .find(|p| &p.payer == payer)
            .map_or(Money::zero(), |p| p.cap);
        let own = sub(cap, self.owed_by(payer));
        let overall = sub(terms.total_cap, self.total);
        let room = if own < overall { own } else { overall };
        if room.is_negative() {
            Money::zero()
        } else {
            room
        }
    }
}

/// The phase in force for a month: the latest starting on or before its first day, or the
/// first phase for a month before any.
fn phase_for(phases: &[Phase], period: YearMonth) -> &Phase {
    phases
        .iter()
        .filter(|phase| phase.from <= period.first_day())
        .max_by_key(|phase| phase.from)
        .unwrap_or(&phases[0])
}

fn by_payer_period(lines: &[DueLine], contract: &Contract) -> Vec<PayerPeriod> {
    let mut rows: BTreeMap<(OdsCode, YearMonth), PayerPeriod> = BTreeMap::new();
    for line in lines {
        let row = row(&mut rows, &line.payer, line.period);
        row.due = add(row.due, line.amount);
        row.capped = add(row.capped, line.capped);
    }
    for payment in &contract.payments {
        let row = row(&mut rows, &payment.payer, payment.period);
        row.paid = add(row.paid, payment.amount);
    }
    rows.into_values().collect()
}

fn row<'r>(
    rows: &'r mut BTreeMap<(OdsCode, YearMonth), PayerPeriod>,
    payer: &OdsCode,
    period: YearMonth,
) -> &'r mut PayerPeriod {
    rows.entry((payer.clone(), period))
        .or_insert_with(|| PayerPeriod {
            payer: payer.clone(),
            period,
            due: Money::zero(),
            paid: Money::zero(),
            capped: Money::zero(),
        })
}

/// Each investor's share of what payers have paid, by capital; the last takes the rounding.
fn investors(contract: &Contract, paid: Money) -> Vec<InvestorPosition> {
    let investors = &contract.terms.investors;
    let capital = investors
        .iter()
        .fold(Money::zero(), |sum, i| add(sum, i.capital));
    let mut left = paid;
    investors
        .iter()
        .enumerate()
        .map(|(index, investor)| {
            let received = if index + 1 == investors.len() || capital.is_zero() {
                left
            } else {
                Money::from_decimal(
                    paid.as_decimal() * investor.capital.as_decimal() / capital.as_decimal(),
                )
                .round_to_penny()
            };
            left = sub(left, received);
            InvestorPosition {
                investor: investor.investor.clone(),
                capital: investor.capital,
                received,
            }
        })
        .collect()
}

fn add(a: Money, b: Money) -> Money {
    a.checked_add(b)
        .expect("outcome payments are far below the limit")
}

fn sub(a: Money, b: Money) -> Money {
    a.checked_sub(b)
        .expect("outcome payments are far below the limit")
}
