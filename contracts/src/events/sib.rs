//! Payloads for social impact bonds: the outcome contract, cohort cost data, outcome claims and
//! their verification or withdrawal, and payers' payments.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Money;
use crate::identifiers::OdsCode;
use crate::terms::{
    Eligibility, FinancialYear, Investor, OutcomeDefinition, Payer, Phase, YearMonth,
};

/// An outcome contract was published: eligibility, outcomes, payers and their shares and caps,
/// investors and the verifier. People referred to its provider within its dates who are
/// eligible make up its cohort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SibContractPublished {
    /// The contract's id (UUID).
    pub contract_id: Uuid,
    /// Its name.
    pub name: String,
    /// Where its terms come from.
    pub source: String,
    /// The link worker service whose referrals make up the cohort and which claims outcomes.
    pub provider: OdsCode,
    /// The organisation that signs off evidence before anything is paid.
    pub verifier: OdsCode,
    /// The first day a referral counts.
    pub starts_on: NaiveDate,
    /// The last day a referral counts.
    pub ends_on: NaiveDate,
    /// Who is eligible.
    pub eligibility: Eligibility,
    /// The pot cohort outcomes take their shares of, if any are.
    pub outcome_pot: Option<Money>,
    /// The outcomes it pays for.
    pub outcomes: Vec<OutcomeDefinition>,
    /// Who pays, each up to its cap.
    pub payers: Vec<Payer>,
    /// The payers' shares by phase, earliest first.
    pub phases: Vec<Phase>,
    /// The most paid in all.
    pub total_cap: Money,
    /// Who invested, and how much.
    pub investors: Vec<Investor>,
}

/// Which cohort a cost belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    /// The contract's own cohort.
    Intervention,
    /// The comparison cohort.
    Control,
}

/// Secondary-care cost of a whole cohort for a year, aggregated: never a person's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CohortCostRecorded {
    /// The contract.
    pub contract_id: Uuid,
    /// The year the cost was incurred in.
    pub financial_year: FinancialYear,
    /// Which cohort.
    pub cohort: Cohort,
    /// People in the cohort that year.
    pub people: u32,
    /// Their secondary-care cost in all.
    pub cost: Money,
}

/// The provider claimed an outcome: for a person (`referral_id`) or for the cohort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SibOutcomeClaimed {
    /// The claim's id (UUID).
    pub claim_id: Uuid,
    /// The contract.
    pub contract_id: Uuid,
    /// The outcome, as the contract names it.
    pub outcome_id: String,
    /// The person's referral, for a per-person outcome; absent for a cohort outcome.
    pub referral_id: Option<Uuid>,
    /// The month the claim is made for, which decides the payers' phase.
    pub period: YearMonth,
    /// The amount claimed.
    pub amount: Money,
}

/// The verifier signed off a claim's evidence: it is now due from the payers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SibOutcomeVerified {
    /// The claim.
    pub claim_id: Uuid,
    /// The contract.
    pub contract_id: Uuid,
}

/// Why an outcome was withdrawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalReason {
    /// The evidence did not stand up to audit.
    EvidenceInvalid,
    /// The person was not eligible after all.
    Ineligible,
    /// The outcome was claimed twice.
    Duplicate,
    /// Any other reason.
    Other,
}

/// The verifier withdrew an outcome after audit: what was due for it is reversed in the period
/// of the withdrawal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SibOutcomeWithdrawn {
    /// The claim.
    pub claim_id: Uuid,
    /// The contract.
    pub contract_id: Uuid,
    /// Why.
    pub reason: WithdrawalReason,
    /// The month the reversal falls in.
    pub period: YearMonth,
}

/// A payer paid outcome payments for a period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SibPaymentMade {
    /// The contract.
    pub contract_id: Uuid,
    /// The payer.
    pub payer: OdsCode,
    /// The period paid for.
    pub period: YearMonth,
    /// The amount.
    pub amount: Money,
}
