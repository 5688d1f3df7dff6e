//! What a PCN may claim, month by month, under the rules of DOMAIN.md §5, each figure with the
//! facts and arithmetic behind it.

use chrono::NaiveDate;
use followfund_contracts::terms::{Entitlement, FinancialYear, Wte, YearMonth, share_of_year};
use followfund_contracts::{Money, OdsCode, PcnCode};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Arrs, LinkWorker, Pcn, RulesVersion};

/// One step of the reasoning behind a figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The fact it rests on, if one.
    pub position: Option<u64>,
    /// What the step is: `maximum`, `cost`, `entitlement`, `limit`, `adjustment`…
    pub rule: &'static str,
    /// The amount it comes to, if any.
    pub amount: Option<Money>,
    /// The step in words and figures.
    pub detail: String,
}

/// One link worker's month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerMonth {
    /// The worker.
    pub link_worker_id: Uuid,
    /// The VCSE supplying the worker, if one does.
    pub supplier: Option<OdsCode>,
    /// Days in post in the month while rules were in force.
    pub days_in_post: u32,
    /// Annual maximum × WTE × days ÷ days in the year, to the penny.
    pub maximum: Money,
    /// The supplier contribution, pro rata, to the penny; zero for a PCN's own employee.
    pub supplier_contribution: Money,
    /// What the worker actually cost in the month, as recorded.
    pub actual_cost: Money,
    /// min(actual cost + supplier contribution, maximum).
    pub claimable: Money,
    /// What the maximum cut off.
    pub cut_by_maximum: Money,
    /// How each figure was reached.
    pub explain: Vec<Explanation>,
}

/// A PCN's month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcnMonth {
    /// The month.
    pub month: YearMonth,
    /// M01 (April) to M12 (March).
    pub label: String,
    /// The rules version in force at the month's end, if any.
    pub rules_version: Option<u32>,
    /// The WTE the PCN is entitled to, where rules count WTE.
    pub entitled_wte: Option<u32>,
    /// The most the PCN may claim for the month: the month's share of its WTE entitlement, or
    /// what is left of its combined sum.
    pub limit: Money,
    /// Each link worker's month.
    pub workers: Vec<WorkerMonth>,
    /// The sum of the workers' claimable amounts.
    pub workers_claimable: Money,
    /// What the entitlement cut off.
    pub cut_by_entitlement: Money,
    /// What the PCN may claim for the month.
    pub claimable: Money,
    /// What it has claimed for the month.
    pub claimed: Money,
    /// What has been paid against those claims.
    pub paid: Money,
    /// Claimable less claimed, once anything has been claimed: what the next claim should
    /// settle, as when a backdated revision changed the month.
    pub adjustment: Money,
    /// How the PCN's figures were reached.
    pub explain: Vec<Explanation>,
}

/// A PCN's year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcnYear {
    /// The PCN.
    pub pcn: PcnCode,
    /// The year.
    pub financial_year: FinancialYear,
    /// The latest rules version published for the year.
    pub rules_version: u32,
    /// The combined sum, in years that have one and where it is known.
    pub combined_sum: Option<Money>,
    /// Its twelve months, April first.
    pub months: Vec<PcnMonth>,
    /// The year's totals.
    pub totals: YearTotals,
    /// How the year's entitlement was reached.
    pub explain: Vec<Explanation>,
}

/// A year's figures added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YearTotals {
    /// What could be claimed.
    pub claimable: Money,
    /// What was claimed.
    pub claimed: Money,
    /// What was paid.
    pub paid: Money,
    /// What link workers' maxima cut.
    pub cut_by_maximum: Money,
    /// What the entitlement cut.
    pub cut_by_entitlement: Money,
    /// Entitlement not used by what could be claimed.
    pub unused: Money,
    /// The unused entitlement, once the year has ended: it lapses on 31 March.
    pub lapsed: Money,
}

/// Why a PCN's claims cannot be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArrsError {
    /// The PCN is not registered for ARRS.
    #[error("PCN {0} is not registered for ARRS: record pcn.registered first")]
    UnknownPcn(String),
    /// The year has no rules.
    #[error(
        "no ARRS rules are published for {0}: a year without rules has nothing to claim; publish its rules file (contracts/rules/arrs/) first"
    )]
    NoRules(FinancialYear),
}

/// A stretch of days in a month under one rules version at one WTE.
struct Stretch<'r> {
    rules: &'r RulesVersion,
    wte: Wte,
    days: u32,
}

impl Arrs {
    /// A PCN's twelve months of `year`, as known now; `as_of` decides whether unused entitlement
    /// has lapsed.
    pub fn year(
        &self,
        pcn: &PcnCode,
        year: FinancialYear,
        as_of: NaiveDate,
    ) -> Result<PcnYear, ArrsError> {
        let registered = self
            .pcn(pcn)
            .ok_or_else(|| ArrsError::UnknownPcn(pcn.to_string()))?;
        let versions = self.rules(year).ok_or(ArrsError::NoRules(year))?;
        let latest = versions
            .values()
            .next_back()
            .expect("rules() is never empty");
        let mut explain = Vec::new();
        let combined_sum = self.combined_sum(registered, year, &mut explain);
        let mut drawn = Money::zero();
        let mut months = Vec::with_capacity(12);
        for month in YearMonth::of_year(year) {
            let pcn_month =
                self.pcn_month(registered, month, combined_sum.map(|sum| sub(sum, drawn)));
            drawn = add(drawn, pcn_month.claimable);
            months.push(pcn_month);
        }
        let totals = totals(&months, combined_sum, year, as_of);
        Ok(PcnYear {
            pcn: pcn.clone(),
            financial_year: year,
            rules_version: latest.rules.version,
            combined_sum,
            months,
            totals,
            explain,
        })
    }

    /// One month of a PCN's year.
    pub fn month(&self, pcn: &PcnCode, month: YearMonth) -> Result<PcnMonth, ArrsError> {
        let year = self.year(pcn, month.financial_year(), month.last_day())?;
        let found = year.months.into_iter().find(|m| m.month == month);
        Ok(found.expect("a year has each of its months"))
    }

    /// The combined sum of a year whose rules have one: the notified sum, or weighted population
    /// × rate, where the population is the latest list dated on or before 1 April, or failing
    /// that the first dated within the year.
    fn combined_sum(
        &self,
        pcn: &Pcn,
        year: FinancialYear,
        explain: &mut Vec<Explanation>,
    ) -> Option<Money> {
        let rules = self.rules_on(year.last_day())?;
        let Entitlement::CombinedSum { .. } = rules.rules.entitlement else {
            return None;
        };
        if let Some((sum, position)) = pcn.notified_sums.get(&year) {
            explain.push(step(
                Some(*position),
                "entitlement",
                Some(*sum),
                format!("combined sum {sum} as notified for {year}"),
            ));
            return Some(*sum);
        }
        let population = pcn
            .populations
            .iter()
            .rev()
            .find(|p| p.on <= year.first_day())
            .or_else(|| pcn.populations.iter().find(|p| year.contains(p.on)));
        let Some(population) = population else {
            explain.push(step(
                None,
                "entitlement",
                None,
                format!("no list size and no notified sum for {year}: the combined sum is £0.00"),
            ));
            return Some(Money::zero());
        };
        let Some(sum) = rules.rules.entitlement.sum_for(population.weighted) else {
            explain.push(step(
                None,
                "entitlement",
                None,
                format!(
                    "{year}'s rules give no rate and no sum was notified: the combined sum is £0.00"
                ),
            ));
            return Some(Money::zero());
        };
        let Entitlement::CombinedSum {
            rate_per_weighted_patient: Some(rate),
        } = rules.rules.entitlement
        else {
            unreachable!("sum_for gives a sum only with a rate");
        };
        explain.push(step(
            Some(population.position),
            "entitlement",
            Some(sum),
            format!(
                "combined sum = {} weighted patients (list of {}) × £{rate} = {sum} (rules {year} v{}, position {})",
                population.weighted, population.on, rules.rules.version, rules.position
            ),
        ));
        Some(sum)
    }

    /// A PCN's month; `remaining` is what is left of a combined sum before it.
    fn pcn_month(&self, pcn: &Pcn, month: YearMonth, remaining: Option<Money>) -> PcnMonth {
        let workers: Vec<WorkerMonth> = pcn
            .workers
            .iter()
            .filter_map(|id| self.workers.get(id))
            .filter_map(|worker| self.worker_month(worker, month))
            .collect();
        let workers_claimable = workers
            .iter()
            .fold(Money::zero(), |sum, w| add(sum, w.claimable));
        let mut explain = Vec::new();
        let rules_version = self.rules_on(month.last_day()).map(|r| r.rules.version);
        let (limit, entitled_wte) = match remaining {
            Some(left) => {
                let left = if left.is_negative() {
                    Money::zero()
                } else {
                    left
                };
                explain.push(step(
                    None,
                    "limit",
                    Some(left),
                    format!("{left} of the combined sum is left for {month}"),
                ));
                (left, None)
            }
            None => self.wte_limit(pcn, month, &mut explain),
        };
        let claimable = if workers_claimable > limit {
            limit
        } else {
            workers_claimable
        };
        let cut_by_entitlement = sub(workers_claimable, claimable);
        explain.push(step(None, "claimable", Some(claimable), format!(
            "min(link workers {workers_claimable}, limit {limit}) = {claimable}; the entitlement cut {cut_by_entitlement}"
        )));
        let (claimed, paid, claims) = self.claimed(pcn, month);
        let adjustment = if claims.is_empty() {
            Money::zero()
        } else {
            sub(claimable, claimed)
        };
        if !adjustment.is_zero() {
            explain.push(step(claims.last().map(|c| c.1), "adjustment", Some(adjustment), format!(
                "claimed {claimed} under rules version {:?}; the rules now in force (v{}) give {claimable}: {adjustment} to settle in the next claim",
                claims.last().and_then(|c| c.0), rules_version.unwrap_or_default()
            )));
        }
        PcnMonth {
            month,
            label: FinancialYear::month_label(month.first_day()),
            rules_version,
            entitled_wte,
            limit,
            workers,
            workers_claimable,
            cut_by_entitlement,
            claimable,
            claimed,
            paid,
            adjustment,
            explain,
        }
    }

    /// The month's share of a WTE entitlement: annual maximum × entitled WTE × days under the
    /// rules ÷ days in the year, with the WTE from the latest list dated on or before the month's end.
    fn wte_limit(
        &self,
        pcn: &Pcn,
        month: YearMonth,
        explain: &mut Vec<Explanation>,
    ) -> (Money, Option<u32>) {
        let Some(population) = pcn
            .populations
            .iter()
            .rev()
            .find(|p| p.on <= month.last_day())
        else {
            explain.push(step(
                None,
                "entitlement",
                None,
                format!(
                    "no list size dated by {}: entitled to 0 WTE",
                    month.last_day()
                ),
            ));
            return (Money::zero(), Some(0));
        };
        let Some(rules) = self.rules_on(month.last_day()) else {
            explain.push(step(
                None,
                "entitlement",
                None,
                format!("no rules in force in {month}"),
            ));
            return (Money::zero(), None);
        };
        let Some(wte) = rules.rules.entitlement.wte_for(population.raw) else {
            return (Money::zero(), None);
        };
        explain.push(step(
            Some(population.position),
            "entitlement",
            None,
            format!(
                "a list of {} on {} is entitled to {wte} WTE (rules v{}, position {})",
                population.raw, population.on, rules.rules.version, rules.position
            ),
        ));
        let days_in_year = month.financial_year().days();
        let mut limit = Decimal::ZERO;
        for stretch in self.stretches(month, |_| Some(Wte::whole(wte))) {
            let annual = stretch.rules.rules.link_worker_maximum_per_wte;
            limit += share_of_year(annual, stretch.wte, stretch.days, days_in_year);
            explain.push(step(
                Some(stretch.rules.position),
                "limit",
                None,
                format!(
                    "{annual} × {wte} WTE × {} days ÷ {days_in_year}",
                    stretch.days
                ),
            ));
        }
        let limit = Money::from_decimal(limit).round_to_penny();
        explain.push(step(
            None,
            "limit",
            Some(limit),
            format!("the month's limit is {limit}"),
        ));
        (limit, Some(wte))
    }

    /// A worker's month, or none when the worker was not in post under rules in it.
    fn worker_month(&self, worker: &LinkWorker, month: YearMonth) -> Option<WorkerMonth> {
        let stretches: Vec<Stretch<'_>> = self.stretches(month, |day| worker.wte_on(day)).collect();
        let (cost, cost_positions) = worker.costs.get(&month).cloned().unwrap_or_default();
        if stretches.is_empty() && cost.is_zero() {
            return None;
        }
        let supplied = worker.supplier().is_some();
        let days_in_year = month.financial_year().days();
        let mut explain = Vec::new();
        let (mut maximum, mut contribution, mut days_in_post) = (Decimal::ZERO, Decimal::ZERO, 0);
        for stretch in &stretches {
            let rules = &stretch.rules.rules;
            days_in_post += stretch.days;
            maximum += share_of_year(
                rules.link_worker_maximum_per_wte,
                stretch.wte,
                stretch.days,
                days_in_year,
            );
            explain.push(step(
                Some(stretch.rules.position),
                "maximum",
                None,
                format!(
                    "{} × {} WTE × {} days ÷ {days_in_year} (rules {} v{})",
                    rules.link_worker_maximum_per_wte,
                    stretch.wte,
                    stretch.days,
                    rules.financial_year,
                    rules.version
                ),
            ));
            if supplied {
                contribution += share_of_year(
                    rules.supplier_contribution_per_wte,
                    stretch.wte,
                    stretch.days,
                    days_in_year,
                );
                explain.push(step(
                    Some(stretch.rules.position),
                    "supplier_contribution",
                    None,
                    format!(
                        "{} × {} WTE × {} days ÷ {days_in_year}",
                        rules.supplier_contribution_per_wte, stretch.wte, stretch.days
                    ),
                ));
            }
        }
        let maximum = Money::from_decimal(maximum).round_to_penny();
        let supplier_contribution = Money::from_decimal(contribution).round_to_penny();
        explain.push(step(
            cost_positions.last().copied(),
            "cost",
            Some(cost),
            format!(
                "actual cost paid for {month}: {cost} ({} records)",
                cost_positions.len()
            ),
        ));
        let asked = add(cost, supplier_contribution);
        let claimable = if asked > maximum { maximum } else { asked };
        let cut_by_maximum = sub(asked, claimable);
        explain.push(step(
            None,
            "claimable",
            Some(claimable),
            format!("min({cost} + {supplier_contribution}, {maximum}) = {claimable}"),
        ));
        Some(WorkerMonth {
            link_worker_id: worker.link_worker_id,
            supplier: worker.supplier().cloned(),
            days_in_post,
            maximum,
            supplier_contribution,
            actual_cost: cost,
            claimable,
            cut_by_maximum,
            explain,
        })
    }

    /// The month's days with rules in force and a WTE, in runs of the same rules and WTE.
    fn stretches<'a>(
        &'a self,
        month: YearMonth,
        wte_on: impl Fn(NaiveDate) -> Option<Wte> + 'a,
    ) -> impl Iterator<Item = Stretch<'a>> + 'a {
        let days = month
            .first_day()
            .iter_days()
            .take_while(move |d| *d <= month.last_day());
        let mut stretches: Vec<Stretch<'a>> = Vec::new();
        for day in days {
            let (Some(wte), Some(rules)) = (wte_on(day), self.rules_on(day)) else {
                continue;
            };
            match stretches.last_mut() {
                Some(last) if last.wte == wte && std::ptr::eq(last.rules, rules) => last.days += 1,
                _ => stretches.push(Stretch {
                    rules,
                    wte,
                    days: 1,
                }),
            }
        }
        stretches.into_iter()
    }

    /// What a PCN claimed and was paid for a month, and each claim's rules version and position.
    fn claimed(&self, pcn: &Pcn, month: YearMonth) -> (Money, Money, Vec<(Option<u32>, u64)>) {
        let claims: Vec<_> = pcn
            .claims
            .iter()
            .filter_map(|id| self.claims.get(id))
            .filter(|claim| claim.month == month)
            .collect();
        let claimed = claims
            .iter()
            .fold(Money::zero(), |sum, c| add(sum, c.amount));
        let paid = claims.iter().fold(Money::zero(), |sum, c| add(sum, c.paid));
        (
            claimed,
            paid,
            claims
                .iter()
                .map(|c| (c.rules_version, c.position))
                .collect(),
        )
    }
}

fn totals(
    months: &[PcnMonth],
    combined_sum: Option<Money>,
    year: FinancialYear,
    as_of: NaiveDate,
) -> YearTotals {
    let total = |figure: fn(&PcnMonth) -> Money| {
        months
            .iter()
            .fold(Money::zero(), |sum, m| add(sum, figure(m)))
    };
    let claimable = total(|m| m.claimable);
    let entitled = match combined_sum {
        Some(sum) => sum,
        None => total(|m| m.limit),
    };
    let unused = sub(entitled, claimable);
    let unused = if unused.is_negative() {
        Money::zero()
    } else {
        unused
    };
    YearTotals {
        claimable,
        claimed: total(|m| m.claimed),
        paid: total(|m| m.paid),
        cut_by_maximum: months
            .iter()
            .flat_map(|m| &m.workers)
            .fold(Money::zero(), |sum, w| add(sum, w.cut_by_maximum)),
        cut_by_entitlement: total(|m| m.cut_by_entitlement),
        unused,
        lapsed: if as_of > year.last_day() {
            unused
        } else {
            Money::zero()
        },
    }
}

fn step(
    position: Option<u64>,
    rule: &'static str,
    amount: Option<Money>,
    detail: String,
) -> Explanation {
    Explanation {
        position,
        rule,
        amount,
        detail,
    }
}

fn add(a: Money, b: Money) -> Money {
    a.checked_add(b).expect("ARRS sums are far below the limit")
}

fn sub(a: Money, b: Money) -> Money {
    a.checked_sub(b).expect("ARRS sums are far below the limit")
}
