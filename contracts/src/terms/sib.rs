//! Social impact bond outcome contracts as data (DOMAIN.md §6): who is eligible, which outcomes
//! pay and how, who pays in what shares up to what caps, who invested, and who verifies; with the
//! pure arithmetic the contracts need (the sliding scale, shares of a pot).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Money;
use crate::events::{AgeBand, Instrument, LongTermCondition};
use crate::identifiers::OdsCode;

/// Who a contract is for, judged at referral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    /// The age bands that qualify.
    pub age_bands: Vec<AgeBand>,
    /// Long-term conditions of which the person must have at least one; empty when none is
    /// needed.
    #[serde(default)]
    pub conditions_any: Vec<LongTermCondition>,
}

impl Eligibility {
    /// Whether a person referred in `age_band` with `conditions` qualifies.
    pub fn admits(&self, age_band: AgeBand, conditions: &[LongTermCondition]) -> bool {
        self.age_bands.contains(&age_band)
            && (self.conditions_any.is_empty()
                || conditions.iter().any(|c| self.conditions_any.contains(c)))
    }
}

/// Payment rising in a straight line from nothing at `zero_below` to all of it at `full_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlidingScale {
    /// At or below this, nothing is paid.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String")]
    pub zero_below: Decimal,
    /// At or above this, everything is paid.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String")]
    pub full_at: Decimal,
}

impl SlidingScale {
    /// The share of the payment a result earns, from 0 to 1.
    pub fn share_for(&self, result: Decimal) -> Decimal {
        if result <= self.zero_below {
            return Decimal::ZERO;
        }
        if result >= self.full_at {
            return Decimal::ONE;
        }
        (result - self.zero_below) / (self.full_at - self.zero_below)
    }
}

/// How an outcome is triggered and priced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutcomeKind {
    /// Per person: the initial assessment was held.
    AssessmentCompleted {
        /// The price per person.
        price: Money,
    },
    /// Per person: referred with at least this many long-term conditions.
    Complexity {
        /// The fewest conditions that trigger it.
        conditions_at_least: u32,
        /// The price per person.
        price: Money,
    },
    /// Per person: a follow-up, measured within `window_days` either side of `horizon_months`
    /// after the baseline, improved on the baseline by at least `threshold`.
    Improvement {
        /// The instrument.
        instrument: Instrument,
        /// The least improvement that counts, in the instrument's score.
        #[serde(with = "rust_decimal::serde::str")]
        #[schemars(with = "String")]
        threshold: Decimal,
        /// Months after the baseline the follow-up is due.
        horizon_months: u32,
        /// Days either side of the due date a follow-up still counts.
        window_days: u32,
        /// The price per person.
        price: Money,
    },
    /// Per cohort: the average improvement of eligible people measured at the horizon, paid on
    /// a sliding scale as a share of the outcome pot.
    CohortImprovement {
        /// The instrument.
        instrument: Instrument,
        /// Months after the baseline the follow-up is due.
        horizon_months: u32,
        /// Days either side of the due date a follow-up still counts.
        window_days: u32,
        /// From nothing to the full share, by average improvement.
        scale: SlidingScale,
        /// This outcome's share of the pot, such as 0.3.
        #[serde(with = "rust_decimal::serde::str")]
        #[schemars(with = "String")]
        share_of_pot: Decimal,
    },
    /// Per cohort: secondary-care cost per person of the intervention cohort below the control
    /// cohort's, paid on a sliding scale by the fraction saved, first after some months.
    CostReduction {
        /// Months after the contract starts before it can first be claimed.
        first_after_months: u32,
        /// From nothing to the full share, by fraction of cost saved (0.11 is 11%).
        scale: SlidingScale,
        /// This outcome's share of the pot.
        #[serde(with = "rust_decimal::serde::str")]
        #[schemars(with = "String")]
        share_of_pot: Decimal,
    },
}

/// One outcome a contract pays for. (Its kind's fields sit beside `outcome_id`, so unknown
/// fields are refused by the kind.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutcomeDefinition {
    /// The outcome's name within the contract, such as `star_improvement`.
    pub outcome_id: String,
    /// How it is triggered and priced.
    #[serde(flatten)]
    pub kind: OutcomeKind,
}

impl OutcomeDefinition {
    /// Whether the outcome is judged per person (as opposed to per cohort).
    pub fn is_per_person(&self) -> bool {
        matches!(
            self.kind,
            OutcomeKind::AssessmentCompleted { .. }
                | OutcomeKind::Complexity { .. }
                | OutcomeKind::Improvement { .. }
        )
    }
}

/// A payer and the most it will pay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Payer {
    /// The paying organisation.
    pub payer: OdsCode,
    /// The most it pays over the contract.
    pub cap: Money,
}

/// One payer's share in a phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayerShare {
    /// The payer.
    pub payer: OdsCode,
    /// Its share of each outcome payment, such as 0.5.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String")]
    pub share: Decimal,
}

/// The payers' shares from a date until the next phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// The phase's first day.
    pub from: NaiveDate,
    /// The shares, adding up to 1.
    pub shares: Vec<PayerShare>,
}

/// An investor and the capital it put in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Investor {
    /// The investor.
    pub investor: OdsCode,
    /// The capital invested.
    pub capital: Money,
}

/// Checks on a contract that its shapes cannot express; each error names the field.
pub fn check_contract(
    outcomes: &[OutcomeDefinition],
    payers: &[Payer],
    phases: &[Phase],
    pot: Option<Money>,
) -> Result<(), (String, String)> {
    if outcomes.is_empty() {
        return Err((
            "outcomes".into(),
            "a contract pays for at least one outcome".into(),
        ));
    }
    for (index, outcome) in outcomes.iter().enumerate() {
        let field = format!("outcomes[{index}]");
        match &outcome.kind {
            OutcomeKind::Improvement { instrument, .. }
            | OutcomeKind::CohortImprovement { instrument, .. }
                if *instrument == Instrument::Ons4 =>
            {
                return Err((
                    field,
                    "ONS4's four items are kept separate and have no single score to improve"
                        .into(),
                ));
            }
            OutcomeKind::CohortImprovement { scale, .. }
            | OutcomeKind::CostReduction { scale, .. }
                if scale.full_at <= scale.zero_below =>
            {
                return Err((
                    field,
                    "a sliding scale's full_at must be above its zero_below".into(),
                ));
            }
            OutcomeKind::CohortImprovement { .. } | OutcomeKind::CostReduction { .. }
                if pot.is_none() =>
            {
                return Err((
                    field,
                    "a cohort outcome is a share of the outcome pot: give outcome_pot".into(),
                ));
            }
            _ => {}
        }
    }
    if phases.is_empty() {
        return Err((
            "phases".into(),
            "give at least one phase of payer shares".into(),
        ));
    }
    for (index, phase) in phases.iter().enumerate() {
        let total: Decimal = phase.shares.iter().map(|s| s.share).sum();
        if total != Decimal::ONE {
            return Err((
                format!("phases[{index}].shares"),
                format!("shares add up to {total}, not 1"),
            ));
        }
        if let Some(stranger) = phase
            .shares
            .iter()
            .find(|s| !payers.iter().any(|p| p.payer == s.payer))
        {
            return Err((
                format!("phases[{index}].shares"),
                format!("{} has a share but is not among the payers", stranger.payer),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    /// Ways to Wellness's Star payment: nothing below 0.5 points, all of it from 1.4, linear
    /// between (DOMAIN.md §6).
    #[test]
    fn the_sliding_scale_pays_nothing_below_half_a_point_and_all_from_one_point_four() {
        let scale = SlidingScale {
            zero_below: points("0.5"),
            full_at: points("1.4"),
        };
        let cases = [
            ("0.4", "0"),
            ("0.5", "0"),
            ("0.95", "0.5"),
            ("1.4", "1"),
            ("3.3", "1"),
        ];
        for (result, share) in cases {
            assert_eq!(
                scale.share_for(points(result)),
                points(share),
                "{result} points"
            );
        }
    }

    #[test]
    fn eligibility_needs_the_age_band_and_one_listed_condition() {
        let eligibility = Eligibility {
            age_bands: vec![
                AgeBand::From40To54,
                AgeBand::From55To64,
                AgeBand::From65To74,
            ],
            conditions_any: vec![LongTermCondition::Diabetes, LongTermCondition::Copd],
        };
        assert!(eligibility.admits(AgeBand::From40To54, &[LongTermCondition::Copd]));
        assert!(
            !eligibility.admits(AgeBand::From25To39, &[LongTermCondition::Copd]),
            "aged 39"
        );
        assert!(!eligibility.admits(AgeBand::From55To64, &[LongTermCondition::Asthma]));
    }
}
