//! Payloads for money that follows the patient: budgets allocated to anchors, agreements between
//! an anchor and a provider with their tariffs, and capacity-building grants.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::prescriptions::ActivityType;
use crate::identifiers::OdsCode;
use crate::money::Money;
use crate::terms::{FinancialYear, Tariff};

/// Which of an anchor's budgets an allocation funds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetAccount {
    /// The budget prescriptions are paid from.
    Activities,
    /// The separate budget for grants that build providers' capacity.
    CapacityBuilding,
}

/// A commissioner allocated a budget to an anchor for a financial year.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetAllocated {
    /// The allocation's id.
    pub allocation_id: Uuid,
    /// The commissioner that funds it.
    pub commissioner: OdsCode,
    /// The anchor that holds it.
    pub anchor: OdsCode,
    /// The financial year it is for.
    pub financial_year: FinancialYear,
    /// Which budget it adds to.
    pub account: BudgetAccount,
    /// How much, in pounds (positive, to the penny).
    pub amount: Money,
}

/// An anchor and a provider signed an agreement with its capacity and tariff.
///
/// It says what the provider will deliver, how many people it takes at once, and what it is
/// paid. When the provider is the anchor itself the agreement records self-delivery: costs
/// count against the budget but no money moves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementSigned {
    /// The agreement's id.
    pub agreement_id: Uuid,
    /// The anchor that pays.
    pub anchor: OdsCode,
    /// The provider that delivers (the anchor itself for self-delivery).
    pub provider: OdsCode,
    /// The first day it is in force.
    pub valid_from: NaiveDate,
    /// The last day it is in force.
    pub valid_to: NaiveDate,
    /// Open prescriptions the provider takes at once.
    pub capacity: u32,
    /// Days the provider has to accept a prescription; silence after that counts as declining.
    pub response_window_days: u32,
    /// The activities it covers.
    pub activity_types: Vec<ActivityType>,
    /// The price list, version 1.
    pub tariff: Tariff,
}

/// An agreement's tariff and capacity changed from a date.
///
/// The amendment is a new version of the agreement; the version in force on a session's date
/// prices that session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementAmended {
    /// The agreement.
    pub agreement_id: Uuid,
    /// The new version's number, from 2.
    pub version: u32,
    /// The first day the new version prices sessions.
    pub effective_from: NaiveDate,
    /// Open prescriptions the provider takes at once under the new version.
    pub capacity: u32,
    /// The new version's price list, whole.
    pub tariff: Tariff,
}

/// An anchor granted a provider money from its capacity-building budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityGrantAwarded {
    /// The grant's id.
    pub grant_id: Uuid,
    /// The anchor that grants it.
    pub anchor: OdsCode,
    /// The provider that receives it.
    pub provider: OdsCode,
    /// The financial year whose capacity-building budget pays it.
    pub financial_year: FinancialYear,
    /// How much, in pounds (positive, to the penny).
    pub amount: Money,
}

/// A positive amount to the penny, or why not.
pub(crate) fn check_positive_pence(amount: Money) -> Result<(), String> {
    if amount.is_negative() || amount.is_zero() {
        return Err(format!("{amount} is not a positive amount"));
    }
    if amount.round_to_penny() != amount {
        return Err(format!(
            "{amount} has more than two decimal places: give pounds and pence"
        ));
    }
    Ok(())
}

/// What a payment run line settles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentLineKind {
    /// Work earned and not yet paid.
    Payment,
    /// Work retracted after it was paid: deducted from this run.
    Recovery,
}

/// One line of a payment run: what one prescription earned (or gives back) in the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentLine {
    /// The provider paid.
    pub provider: OdsCode,
    /// The prescription the line is for.
    pub prescription_id: Uuid,
    /// A payment or a recovery.
    pub kind: PaymentLineKind,
    /// The amount, positive; a recovery is deducted.
    pub amount: Money,
    /// The positions of the facts whose earnings the line settles.
    pub positions: Vec<u64>,
}

/// An anchor paid providers what they had earned through a date.
///
/// The run settles every payable known at that moment for work dated on or before `through`,
/// a line per provider and prescription; later facts come in the next run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRunRecorded {
    /// The run's id.
    pub run_id: Uuid,
    /// The anchor that pays.
    pub anchor: OdsCode,
    /// The last day of work the run settles.
    pub through: NaiveDate,
    /// Which part of the run this is, from 1: a run with more lines than one event holds is
    /// recorded as several parts, appended together.
    #[serde(default = "first_part")]
    pub part: u32,
    /// How many parts the run has.
    #[serde(default = "first_part")]
    pub parts: u32,
    /// The lines, in provider then prescription order.
    pub lines: Vec<PaymentLine>,
}

/// Most lines one part of a payment run holds, well within the log's payload limit.
pub const PAYMENT_RUN_PART_LINES_MAX: usize = 200;

fn first_part() -> u32 {
    1
}

impl PaymentRunRecorded {
    /// A run's lines split into as many parts as they need, each numbered.
    pub fn in_parts(
        run_id: Uuid,
        anchor: OdsCode,
        through: NaiveDate,
        lines: Vec<PaymentLine>,
    ) -> Vec<PaymentRunRecorded> {
        let chunks: Vec<Vec<PaymentLine>> = if lines.is_empty() {
            vec![Vec::new()]
        } else {
            lines
                .chunks(PAYMENT_RUN_PART_LINES_MAX)
                .map(<[PaymentLine]>::to_vec)
                .collect()
        };
        let parts = u32::try_from(chunks.len()).expect("far fewer than 2^32 parts");
        chunks
            .into_iter()
            .zip(1..)
            .map(|(lines, part)| PaymentRunRecorded {
                run_id,
                anchor: anchor.clone(),
                through,
                part,
                parts,
                lines,
            })
            .collect()
    }
}
