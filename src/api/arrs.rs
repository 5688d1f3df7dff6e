//! ARRS over GraphQL: a PCN's entitlement and monthly claims for a year with every figure
//! explained, ICB and national summaries for commissioners, and recording ARRS facts.

use async_graphql::{Context, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use followfund_contracts::terms::{FinancialYear, YearMonth};
use followfund_contracts::{Money, PcnCode, Role};
use followfund_projections::{ArrsError, Explanation, PcnMonth, PcnYear, ReadModels, WorkerMonth};
use serde_json::Value;
use uuid::Uuid;

use super::auth::Principal;
use super::errors::{bad_input, forbidden, not_found};
use super::mutations::{Command, Kind, Written, record};
use super::schema::{caught_up, principal};
use crate::arrs::can_see_pcn;

/// ARRS queries, merged into the root query.
#[derive(Default)]
pub struct ArrsQuery;

#[Object]
impl ArrsQuery {
    /// A PCN's ARRS year (such as `2019/20`): its entitlement, each month M01–M12 with every link
    /// worker's line, what the limits cut, claimed, paid and adjustments, and the year's totals.
    /// For the PCN, its ICB, auditors and administrators.
    async fn arrs_year(
        &self,
        ctx: &Context<'_>,
        pcn: String,
        financial_year: String,
        at_least: Option<u64>,
    ) -> Result<ArrsYearView> {
        let caller = principal(ctx)?;
        let (pcn, year) = (pcn_code(&pcn)?, financial_year_of(&financial_year)?);
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        check_pcn_scope(&models, caller, &pcn)?;
        let figures = models
            .arrs
            .year(&pcn, year, Utc::now().date_naive())
            .map_err(refused)?;
        Ok(ArrsYearView::of(&figures))
    }

    /// One month of a PCN's year (`2019-08`), as `arrsYear` shows it, with its CSV.
    async fn arrs_month(
        &self,
        ctx: &Context<'_>,
        pcn: String,
        month: String,
        at_least: Option<u64>,
    ) -> Result<ArrsMonthView> {
        let caller = principal(ctx)?;
        let pcn = pcn_code(&pcn)?;
        let month: YearMonth = month
            .parse()
            .map_err(|e: followfund_contracts::terms::YearMonthError| bad_input(e.to_string()))?;
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        check_pcn_scope(&models, caller, &pcn)?;
        let figures = models.arrs.month(&pcn, month).map_err(refused)?;
        Ok(ArrsMonthView::of(&pcn, &figures))
    }

    /// A year's ARRS totals per PCN, for one ICB or, without `icb`, nationally. An ICB sees its
    /// own PCNs; the national summary is for commissioners, auditors and administrators.
    async fn arrs_summary(
        &self,
        ctx: &Context<'_>,
        financial_year: String,
        icb: Option<String>,
        at_least: Option<u64>,
    ) -> Result<ArrsSummaryView> {
        let caller = principal(ctx)?;
        let year = financial_year_of(&financial_year)?;
        let allowed = match (&icb, caller.role) {
            (_, Role::Admin | Role::Auditor) => true,
            (None, Role::Commissioner) => true,
            (Some(icb), Role::Commissioner) => *icb == caller.organisation,
            _ => false,
        };
        if !allowed {
            return Err(forbidden(
                "ARRS summaries are for commissioners (an ICB's own, or national), auditors and administrators",
            ));
        }
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        summary(&models, year, icb.as_deref())
    }
}

/// Recording ARRS facts.
#[derive(Default)]
pub struct ArrsMutation;

#[Object]
impl ArrsMutation {
    /// Records an ARRS fact: `pcn.registered`, `pcn.population_recorded` and
    /// `pcn.arrs_sum_notified` (the PCN's ICB), `link_worker.*` and `arrs.claim_submitted` (the
    /// PCN), `arrs.claim_paid` (the ICB). Rules are published with `followfund contracts publish`.
    async fn arrs_record(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event type, as listed in contracts/EVENTS.md.")] event_type: String,
        #[graphql(desc = "The event's payload.")] data: Json<Value>,
        #[graphql(desc = "When it happened; now if absent. Never in the future.")]
        occurred_at: Option<DateTime<Utc>>,
        #[graphql(
            desc = "An idempotency key: the same key from the same organisation is recorded once."
        )]
        client_id: Option<Uuid>,
    ) -> Result<Written> {
        let command = Command {
            event_type: &event_type,
            data: data.0,
            occurred_at,
            client_id,
            kind: Kind::Arrs,
        };
        record(ctx, command).await
    }
}

fn summary(models: &ReadModels, year: FinancialYear, icb: Option<&str>) -> Result<ArrsSummaryView> {
    if models.arrs.rules(year).is_none() {
        return Err(refused(ArrsError::NoRules(year)));
    }
    let today = Utc::now().date_naive();
    let mut pcns = Vec::new();
    let mut total = [Money::zero(); 5];
    for pcn in models
        .arrs
        .pcns()
        .filter(|p| icb.is_none_or(|icb| p.icb.as_str() == icb))
    {
        let figures = models.arrs.year(&pcn.code, year, today).map_err(refused)?;
        let t = &figures.totals;
        let row = [
            t.claimable,
            t.claimed,
            t.paid,
            t.cut_by_entitlement,
            t.lapsed,
        ];
        for (sum, figure) in total.iter_mut().zip(row) {
            *sum = sum.checked_add(figure).expect("national sums fit");
        }
        pcns.push(ArrsTotalsView::of(
            Some(pcn.code.to_string()),
            Some(pcn.icb.to_string()),
            row,
        ));
    }
    Ok(ArrsSummaryView {
        financial_year: year.to_string(),
        icb: icb.map(str::to_string),
        totals: ArrsTotalsView::of(None, icb.map(str::to_string), total),
        pcns,
    })
}

fn check_pcn_scope(models: &ReadModels, caller: &Principal, pcn: &PcnCode) -> Result<()> {
    let registered = models
        .arrs
        .pcn(pcn)
        .ok_or_else(|| not_found(ArrsError::UnknownPcn(pcn.to_string()).to_string()))?;
    if can_see_pcn(caller, registered) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "PCN {pcn}'s ARRS figures are for the PCN, its ICB, auditors and administrators"
        )))
    }
}

fn refused(error: ArrsError) -> async_graphql::Error {
    match error {
        ArrsError::UnknownPcn(_) => not_found(error.to_string()),
        ArrsError::NoRules(_) => bad_input(error.to_string()),
    }
}

fn pcn_code(text: &str) -> Result<PcnCode> {
    PcnCode::parse(text).map_err(|error| bad_input(error.to_string()))
}

fn financial_year_of(text: &str) -> Result<FinancialYear> {
    text.parse()
        .map_err(|error: followfund_contracts::terms::FinancialYearError| {
            bad_input(error.to_string())
        })
}

/// One step behind a figure.
#[derive(SimpleObject)]
pub struct ExplanationView {
    /// The log position of the fact it rests on, if one.
    position: Option<u64>,
    /// What the step is: maximum, supplier_contribution, cost, claimable, entitlement, limit,
    /// adjustment.
    rule: String,
    /// The amount it comes to, if any.
    amount: Option<String>,
    /// The step in words and figures.
    detail: String,
}

fn explained(steps: &[Explanation]) -> Vec<ExplanationView> {
    steps
        .iter()
        .map(|step| ExplanationView {
            position: step.position,
            rule: step.rule.to_string(),
            amount: step.amount.map(|amount| amount.to_string()),
            detail: step.detail.clone(),
        })
        .collect()
}

/// A PCN's year.
#[derive(SimpleObject)]
pub struct ArrsYearView {
    /// The PCN.
    pcn: String,
    /// The year.
    financial_year: String,
    /// The latest rules version published for it.
    rules_version: u32,
    /// The combined sum, in years that have one.
    combined_sum: Option<String>,
    /// How the entitlement was reached.
    explain: Vec<ExplanationView>,
    /// April (M01) to March (M12).
    months: Vec<ArrsMonthView>,
    /// The year's totals.
    totals: ArrsTotalsView,
}

impl ArrsYearView {
    fn of(year: &PcnYear) -> ArrsYearView {
        let t = &year.totals;
        let mut totals = ArrsTotalsView::of(
            None,
            None,
            [
                t.claimable,
                t.claimed,
                t.paid,
                t.cut_by_entitlement,
                t.lapsed,
            ],
        );
        totals.cut_by_maximum = t.cut_by_maximum.to_string();
        totals.unused = t.unused.to_string();
        ArrsYearView {
            pcn: year.pcn.to_string(),
            financial_year: year.financial_year.to_string(),
            rules_version: year.rules_version,
            combined_sum: year.combined_sum.map(|sum| sum.to_string()),
            explain: explained(&year.explain),
            months: year
                .months
                .iter()
                .map(|m| ArrsMonthView::of(&year.pcn, m))
                .collect(),
            totals,
        }
    }
}

/// A PCN's month.
#[derive(SimpleObject)]
pub struct ArrsMonthView {
    /// The month, `2019-08`.
    month: String,
    /// M01 (April) to M12 (March).
    label: String,
    /// The rules version in force at the month's end.
    rules_version: Option<u32>,
    /// WTE entitled to, where the year's rules count WTE.
    entitled_wte: Option<u32>,
    /// The most the PCN may claim for the month.
    limit: String,
    /// Each link worker's line.
    link_workers: Vec<ArrsWorkerView>,
    /// The link workers' claimable amounts added up.
    link_workers_claimable: String,
    /// What the entitlement cut.
    cut_by_entitlement: String,
    /// What the PCN may claim.
    claimable: String,
    /// What it has claimed.
    claimed: String,
    /// What has been paid.
    paid: String,
    /// Claimable less claimed, once claimed: to settle in the next claim.
    adjustment: String,
    /// How the PCN's figures were reached.
    explain: Vec<ExplanationView>,
    /// The month as CSV, as `followfund arrs claim` prints it.
    csv: String,
}

impl ArrsMonthView {
    fn of(pcn: &PcnCode, month: &PcnMonth) -> ArrsMonthView {
        ArrsMonthView {
            month: month.month.to_string(),
            label: month.label.clone(),
            rules_version: month.rules_version,
            entitled_wte: month.entitled_wte,
            limit: month.limit.to_string(),
            link_workers: month.workers.iter().map(ArrsWorkerView::of).collect(),
            link_workers_claimable: month.workers_claimable.to_string(),
            cut_by_entitlement: month.cut_by_entitlement.to_string(),
            claimable: month.claimable.to_string(),
            claimed: month.claimed.to_string(),
            paid: month.paid.to_string(),
            adjustment: month.adjustment.to_string(),
            explain: explained(&month.explain),
            csv: crate::arrs::claim_csv(pcn, month),
        }
    }
}

/// A link worker's month.
#[derive(SimpleObject)]
pub struct ArrsWorkerView {
    /// The worker's pseudonymous id.
    link_worker_id: String,
    /// The VCSE supplying the worker, if one does.
    supplier: Option<String>,
    /// Days in post under rules in the month.
    days_in_post: u32,
    /// The pro-rata maximum.
    maximum: String,
    /// The pro-rata supplier contribution.
    supplier_contribution: String,
    /// The actual cost recorded.
    actual_cost: String,
    /// What may be claimed for the worker.
    claimable: String,
    /// What the maximum cut.
    cut_by_maximum: String,
    /// How each figure was reached.
    explain: Vec<ExplanationView>,
}

impl ArrsWorkerView {
    fn of(worker: &WorkerMonth) -> ArrsWorkerView {
        ArrsWorkerView {
            link_worker_id: worker.link_worker_id.to_string(),
            supplier: worker.supplier.as_ref().map(|s| s.as_str().to_string()),
            days_in_post: worker.days_in_post,
            maximum: worker.maximum.to_string(),
            supplier_contribution: worker.supplier_contribution.to_string(),
            actual_cost: worker.actual_cost.to_string(),
            claimable: worker.claimable.to_string(),
            cut_by_maximum: worker.cut_by_maximum.to_string(),
            explain: explained(&worker.explain),
        }
    }
}

/// A year's totals, for one PCN or added up over many.
#[derive(SimpleObject)]
pub struct ArrsTotalsView {
    /// The PCN, on a PCN's row.
    pcn: Option<String>,
    /// The ICB.
    icb: Option<String>,
    /// What could be claimed.
    claimable: String,
    /// What was claimed.
    claimed: String,
    /// What was paid.
    paid: String,
    /// What entitlements cut.
    cut_by_entitlement: String,
    /// What link workers' maxima cut (on a PCN's year).
    cut_by_maximum: String,
    /// Entitlement not drawn (on a PCN's year).
    unused: String,
    /// Unused entitlement lapsed at 31 March.
    lapsed: String,
}

/// A year's ARRS totals for an ICB or the nation.
#[derive(SimpleObject)]
pub struct ArrsSummaryView {
    /// The year.
    financial_year: String,
    /// The ICB, or none for the national summary.
    icb: Option<String>,
    /// Every PCN's totals added up.
    totals: ArrsTotalsView,
    /// Each PCN's totals, in code order.
    pcns: Vec<ArrsTotalsView>,
}

impl ArrsTotalsView {
    fn of(pcn: Option<String>, icb: Option<String>, figures: [Money; 5]) -> ArrsTotalsView {
        let [claimable, claimed, paid, cut_by_entitlement, lapsed] = figures.map(|m| m.to_string());
        ArrsTotalsView {
            pcn,
            icb,
            claimable,
            claimed,
            paid,
            cut_by_entitlement,
            cut_by_maximum: String::new(),
            unused: String::new(),
            lapsed,
        }
    }
}
