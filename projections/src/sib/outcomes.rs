//! Judging outcomes: each person's per-person outcomes (met, pending, failed or expired, with the
//! facts behind each), and each cohort outcome's figure and what it has earned.

use chrono::{Months, NaiveDate};
use followfund_contracts::Money;
use followfund_contracts::events::{Cohort, Instrument, MeasureStage};
use followfund_contracts::terms::{OutcomeDefinition, OutcomeKind};
use rust_decimal::Decimal;

use super::{Contract, Measure, Person, Sib};

/// Where a person's outcome stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// Achieved: it may be claimed.
    Met,
    /// Not yet decided: its window is still open, or a baseline is still to come.
    Pending,
    /// Measured in its window and short of the threshold, or not triggered by the person's
    /// circumstances.
    Failed,
    /// Its window closed with no measure in it.
    Expired,
}

/// One person's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonOutcome {
    /// The outcome.
    pub outcome_id: String,
    /// Where it stands.
    pub status: OutcomeStatus,
    /// The facts it was judged on.
    pub evidence: Vec<u64>,
    /// The judgement in words and figures.
    pub detail: String,
}

/// A cohort outcome's figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CohortOutcome {
    /// The outcome.
    pub outcome_id: String,
    /// People whose measures count towards it.
    pub measured: u32,
    /// The figure judged: average improvement in points, or the fraction of cost saved.
    pub result: Option<Decimal>,
    /// The share of the outcome's pot the figure earns, from 0 to 1.
    pub share_earned: Decimal,
    /// What it has earned: pot × the outcome's share × the share earned, to the penny.
    pub earned: Money,
    /// How it was reached.
    pub detail: String,
}

/// Secondary-care costs per person, intervention against control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostFigures {
    /// Intervention cohort cost per person-year.
    pub intervention_per_person: Decimal,
    /// Control cohort cost per person-year.
    pub control_per_person: Decimal,
    /// 1 − intervention ÷ control.
    pub reduction: Decimal,
}

/// A contract's cohort at a date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CohortFigures {
    /// Eligible people referred.
    pub people: u32,
    /// Each cohort outcome.
    pub outcomes: Vec<CohortOutcome>,
    /// Cost figures, once both cohorts have costs recorded.
    pub cost: Option<CostFigures>,
}

impl Sib {
    /// Every per-person outcome of a contract for one person in its cohort, as at `as_of`.
    pub fn person_outcomes(
        &self,
        contract: &Contract,
        person: &Person,
        as_of: NaiveDate,
    ) -> Vec<PersonOutcome> {
        contract
            .terms
            .outcomes
            .iter()
            .filter(|outcome| outcome.is_per_person())
            .map(|outcome| judge(outcome, person, as_of))
            .collect()
    }

    /// The cohort's figures and what each cohort outcome has earned, as at `as_of`.
    pub fn cohort_figures(&self, contract: &Contract, as_of: NaiveDate) -> CohortFigures {
        let cohort: Vec<&Person> = self.cohort(contract).collect();
        let cost = cost_figures(contract);
        let outcomes = contract
            .terms
            .outcomes
            .iter()
            .filter_map(|outcome| cohort_outcome(contract, outcome, &cohort, cost.as_ref(), as_of))
            .collect();
        CohortFigures {
            people: u32::try_from(cohort.len()).expect("far fewer than 2^32 people"),
            outcomes,
            cost,
        }
    }
}

fn judge(outcome: &OutcomeDefinition, person: &Person, as_of: NaiveDate) -> PersonOutcome {
    let outcome_id = outcome.outcome_id.clone();
    let (status, evidence, detail) = match &outcome.kind {
        OutcomeKind::AssessmentCompleted { .. } => match person.assessed {
            Some((on, position)) => (
                OutcomeStatus::Met,
                vec![position],
                format!("assessed on {on}"),
            ),
            None => (
                OutcomeStatus::Pending,
                Vec::new(),
                "no assessment yet".to_string(),
            ),
        },
        OutcomeKind::Complexity {
            conditions_at_least,
            ..
        } => {
            let count = u32::try_from(person.conditions.len()).expect("few conditions");
            let status = if count >= *conditions_at_least {
                OutcomeStatus::Met
            } else {
                OutcomeStatus::Failed
            };
            (
                status,
                vec![person.position],
                format!("{count} long-term conditions at referral; {conditions_at_least} needed"),
            )
        }
        OutcomeKind::Improvement {
            instrument,
            threshold,
            horizon_months,
            window_days,
            ..
        } => improvement(
            person,
            *instrument,
            *threshold,
            (*horizon_months, *window_days),
            as_of,
        ),
        OutcomeKind::CohortImprovement { .. } | OutcomeKind::CostReduction { .. } => {
            unreachable!("cohort outcomes are judged per cohort")
        }
    };
    PersonOutcome {
        outcome_id,
        status,
        evidence,
        detail,
    }
}

/// A person's baseline and the follow-up that counts for a horizon: the first taken within the
/// window around the due date.
pub(crate) struct Paired<'p> {
    pub(crate) baseline: &'p Measure,
    pub(crate) follow_up: Option<&'p Measure>,
    pub(crate) window: (NaiveDate, NaiveDate),
}

pub(crate) fn paired(
    person: &Person,
    instrument: Instrument,
    (horizon_months, window_days): (u32, u32),
) -> Option<Paired<'_>> {
    let of = |stage| {
        person
            .measures
            .iter()
            .filter(move |m| m.instrument == instrument && m.stage == stage && m.score.is_some())
    };
    let baseline = of(MeasureStage::Baseline).min_by_key(|m| (m.on, m.position))?;
    let due = baseline.on + Months::new(horizon_months);
    let slack = chrono::Days::new(u64::from(window_days));
    let window = (due - slack, due + slack);
    let follow_up = of(MeasureStage::FollowUp)
        .filter(|m| (window.0..=window.1).contains(&m.on))
        .min_by_key(|m| (m.on, m.position));
    Some(Paired {
        baseline,
        follow_up,
        window,
    })
}

fn improvement(
    person: &Person,
    instrument: Instrument,
    threshold: Decimal,
    horizon: (u32, u32),
    as_of: NaiveDate,
) -> (OutcomeStatus, Vec<u64>, String) {
    let Some(pair) = paired(person, instrument, horizon) else {
        return (
            OutcomeStatus::Pending,
            Vec::new(),
            format!("no {} baseline yet", instrument.as_str()),
        );
    };
    let base = pair.baseline.score.expect("paired measures have scores");
    let (from, to) = pair.window;
    let Some(follow_up) = pair.follow_up else {
        let status = if as_of > to {
            OutcomeStatus::Expired
        } else {
            OutcomeStatus::Pending
        };
        let detail = format!(
            "baseline {base} on {}; no follow-up between {from} and {to}",
            pair.baseline.on
        );
        return (status, vec![pair.baseline.position], detail);
    };
    let score = follow_up.score.expect("paired measures have scores");
    let gain = instrument.improvement(base, score);
    let status = if gain >= threshold {
        OutcomeStatus::Met
    } else {
        OutcomeStatus::Failed
    };
    let detail = format!(
        "baseline {base} on {}, follow-up {score} on {} (window {from} to {to}): improvement {gain} against {threshold}",
        pair.baseline.on, follow_up.on
    );
    (
        status,
        vec![pair.baseline.position, follow_up.position],
        detail,
    )
}

fn cohort_outcome(
    contract: &Contract,
    outcome: &OutcomeDefinition,
    cohort: &[&Person],
    cost: Option<&CostFigures>,
    as_of: NaiveDate,
) -> Option<CohortOutcome> {
    let pot = contract.terms.outcome_pot.unwrap_or_default();
    let (measured, result, scale, share_of_pot, detail) = match &outcome.kind {
        OutcomeKind::CohortImprovement {
            instrument,
            horizon_months,
            window_days,
            scale,
            share_of_pot,
        } => {
            let gains: Vec<Decimal> = cohort
                .iter()
                .filter_map(|person| paired(person, *instrument, (*horizon_months, *window_days)))
                .filter_map(|pair| {
                    let follow_up = pair.follow_up?.score?;
                    Some(instrument.improvement(pair.baseline.score?, follow_up))
                })
                .collect();
            let measured = u32::try_from(gains.len()).expect("few people");
            let average = (!gains.is_empty())
                .then(|| gains.iter().sum::<Decimal>() / Decimal::from(measured));
            let detail = match average {
                Some(average) => format!(
                    "average improvement {} over {measured} people measured at {horizon_months} months",
                    average.round_dp(4)
                ),
                None => format!("nobody measured at {horizon_months} months yet"),
            };
            (measured, average, scale, share_of_pot, detail)
        }
        OutcomeKind::CostReduction {
            first_after_months,
            scale,
            share_of_pot,
        } => {
            let opens = contract.terms.starts_on + Months::new(*first_after_months);
            let result = cost.filter(|_| as_of >= opens).map(|c| c.reduction);
            let detail = match (cost, as_of >= opens) {
                (_, false) => {
                    format!("first measured after {first_after_months} months, from {opens}")
                }
                (None, true) => "costs for both cohorts not yet recorded".to_string(),
                (Some(c), true) => format!(
                    "intervention {} a person against control {}: {} saved",
                    c.intervention_per_person.round_dp(2),
                    c.control_per_person.round_dp(2),
                    c.reduction.round_dp(4)
                ),
            };
            (0, result, scale, share_of_pot, detail)
        }
        _ => return None,
    };
    let share_earned = result.map_or(Decimal::ZERO, |r| scale.share_for(r));
    let earned =
        Money::from_decimal(pot.as_decimal() * share_of_pot * share_earned).round_to_penny();
    let detail = format!(
        "{detail}; scale {} to {} earns {share_earned} of {pot} × {share_of_pot} = {earned}",
        scale.zero_below, scale.full_at
    );
    Some(CohortOutcome {
        outcome_id: outcome.outcome_id.clone(),
        measured,
        result,
        share_earned,
        earned,
        detail,
    })
}

/// Costs per person over every year recorded, once both cohorts have some.
fn cost_figures(contract: &Contract) -> Option<CostFigures> {
    let per_person = |cohort: Cohort| {
        let (people, cost) = contract
            .costs
            .iter()
            .filter(|record| record.cohort == cohort)
            .fold((0u64, Decimal::ZERO), |(people, cost), r| {
                (people + u64::from(r.people), cost + r.cost.as_decimal())
            });
        (people > 0).then(|| cost / Decimal::from(people))
    };
    let intervention = per_person(Cohort::Intervention)?;
    let control = per_person(Cohort::Control).filter(|c| !c.is_zero())?;
    Some(CostFigures {
        intervention_per_person: intervention,
        control_per_person: control,
        reduction: Decimal::ONE - intervention / control,
    })
}
