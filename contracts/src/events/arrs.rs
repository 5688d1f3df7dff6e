//! Payloads for ARRS, the scheme that reimburses English PCNs for their link workers: the
//! year's rules, PCNs and their populations, link workers' employment and cost, and claims.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Money;
use crate::identifiers::{OdsCode, PcnCode};
use crate::roles::Nation;
use crate::terms::{Entitlement, FinancialYear, Wte, YearMonth};

/// A version of a financial year's ARRS rules, in force from a date. A later version replaces
/// the earlier from its own date; one dated before its publication is backdated, and claims
/// already made for the months it reaches are adjusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrsRulesPublished {
    /// The financial year the rules are for.
    pub financial_year: FinancialYear,
    /// 1 for the year's first rules, then 2, 3… for each revision.
    pub version: u32,
    /// The first day the version applies to. For version 1 it is the scheme's start in that
    /// year: no day before it can be claimed.
    pub effective_from: NaiveDate,
    /// Where the figures were published.
    pub source: String,
    /// How a PCN's population becomes its entitlement.
    pub entitlement: Entitlement,
    /// The most that can be reimbursed for one WTE link worker for a whole year.
    pub link_worker_maximum_per_wte: Money,
    /// What a PCN may claim a year per WTE towards a VCSE supplier's costs, within the maximum.
    pub supplier_contribution_per_wte: Money,
}

/// A Primary Care Network joined ARRS with its member practices. ARRS is English: a PCN in
/// another nation is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PcnRegistered {
    /// The PCN's ODS code, `U` and five digits.
    pub pcn: PcnCode,
    /// Its name, for display.
    pub name: String,
    /// The ICB it belongs to, which sees its claims in the ICB's summary.
    pub icb: OdsCode,
    /// Its member GP practices' ODS codes.
    pub member_practices: Vec<OdsCode>,
    /// Its nation: England, or the PCN is refused.
    pub nation: Nation,
}

/// A PCN's registered list size on a date, raw and weighted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PcnPopulationRecorded {
    /// The PCN.
    pub pcn: PcnCode,
    /// The date the list sizes are taken at.
    pub on: NaiveDate,
    /// Patients registered with its member practices.
    pub raw_list_size: u32,
    /// The same list weighted by need, which sizes the combined sum from 2020/21.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String")]
    pub weighted_list_size: Decimal,
}

/// NHS England notified a PCN of its combined ARRS sum for a year. It is how a year whose rate
/// per weighted patient is not in our sources gets its sums, and it takes precedence over a rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PcnArrsSumNotified {
    /// The PCN.
    pub pcn: PcnCode,
    /// The year.
    pub financial_year: FinancialYear,
    /// The sum.
    pub amount: Money,
    /// Where it was notified.
    pub source: String,
}

/// Who employs a link worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Employer {
    /// The PCN (or one of its practices) employs the worker.
    Pcn,
    /// A VCSE organisation supplies the worker; the PCN may add a contribution to its costs.
    VcseSupplier {
        /// The supplier's code.
        supplier: OdsCode,
    },
}

/// A PCN took on a link worker, identified by a pseudonymous id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkWorkerEmployed {
    /// The worker's pseudonymous id (UUID).
    pub link_worker_id: Uuid,
    /// The PCN claiming for the worker.
    pub pcn: PcnCode,
    /// Who employs the worker.
    pub employer: Employer,
    /// Whole-time equivalent, more than 0 and at most 1.
    pub wte: Wte,
    /// The first day in post.
    pub start_date: NaiveDate,
    /// Gross salary a month, as contracted.
    pub monthly_salary: Money,
    /// Employer on-costs a month (National Insurance, pension), as contracted.
    pub monthly_on_costs: Money,
}

/// A link worker's hours changed from a date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkWorkerWteChanged {
    /// The worker.
    pub link_worker_id: Uuid,
    /// The new whole-time equivalent.
    pub wte: Wte,
    /// The first day at the new hours.
    pub effective_from: NaiveDate,
}

/// A link worker left the post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkWorkerLeft {
    /// The worker.
    pub link_worker_id: Uuid,
    /// The last day in post.
    pub last_day: NaiveDate,
}

/// What a link worker actually cost for a month: salary and employer on-costs paid, or what the
/// PCN paid the VCSE supplier for the worker. Several records for one month add up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkWorkerCostPaid {
    /// The worker.
    pub link_worker_id: Uuid,
    /// The month the cost is for.
    pub month: YearMonth,
    /// The amount paid.
    pub amount: Money,
}

/// A PCN claimed reimbursement for a month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrsClaimSubmitted {
    /// The claim's id (UUID).
    pub claim_id: Uuid,
    /// The PCN claiming.
    pub pcn: PcnCode,
    /// The month claimed for.
    pub month: YearMonth,
    /// The amount claimed; negative when an adjustment hands money back.
    pub amount: Money,
}

/// A claim was paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrsClaimPaid {
    /// The claim paid.
    pub claim_id: Uuid,
    /// The PCN paid.
    pub pcn: PcnCode,
    /// The amount paid.
    pub amount: Money,
    /// The day it was paid.
    pub paid_on: NaiveDate,
}

/// Checks that apply to ARRS payloads beyond their shapes: each returns the field at fault.
pub(crate) fn check_pennies(amount: Money) -> Result<(), String> {
    if amount.round_to_penny() != amount {
        return Err(format!(
            "{amount} has more than two decimal places: give pounds and pence"
        ));
    }
    Ok(())
}

/// Money that cannot be negative.
pub(crate) fn check_not_negative(amount: Money) -> Result<(), String> {
    if amount.is_negative() {
        return Err(format!("{amount} is negative"));
    }
    check_pennies(amount)
}
