//! Social impact bonds over GraphQL: a contract's status, cohort figures (counts under five
//! suppressed), payments due and made by payer and period, and the investors' position, for those
//! the contract names; people's outcomes only for its provider and verifier; recording SIB facts.

use async_graphql::{Context, Json, Object, Result, SimpleObject};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use followfund_projections::{CohortFigures, Payments, SibContract};
use serde_json::Value;
use uuid::Uuid;

use super::errors::{forbidden, not_found};
use super::mutations::{Command, Kind, Written, record};
use super::schema::{caught_up, principal};
use crate::sib::{can_see_contract, can_see_people};

/// Cohort counts below this are shown as suppressed, so that no person can be singled out.
pub const SUPPRESS_BELOW: u32 = 5;

/// Contract statuses already worked out. Working one out reads every claim and judges every
/// person in the cohort, so it is kept until a SIB fact is folded or the day changes (cohort
/// outcomes are judged as of today), and every caller allowed to see it shares it.
#[derive(Default)]
pub struct SibStatuses(Mutex<HashMap<Uuid, WorkedOut>>);

struct WorkedOut {
    sib_revision: u64,
    today: NaiveDate,
    view: Arc<SibContractView>,
}

impl SibStatuses {
    fn get_or_work_out(
        &self,
        sib: &followfund_projections::Sib,
        contract: &SibContract,
        today: NaiveDate,
    ) -> Arc<SibContractView> {
        let contract_id = contract.terms.contract_id;
        let fresh = |kept: &WorkedOut| kept.sib_revision == sib.revision() && kept.today == today;
        if let Some(kept) = self.lock().get(&contract_id).filter(|kept| fresh(kept)) {
            return kept.view.clone();
        }
        let figures = sib.cohort_figures(contract, today);
        let payments = sib.payments(contract);
        let view = Arc::new(SibContractView::of(sib, contract, &figures, &payments));
        let kept = WorkedOut {
            sib_revision: sib.revision(),
            today,
            view: view.clone(),
        };
        self.lock().insert(contract_id, kept);
        view
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, WorkedOut>> {
        self.0.lock().expect("no panic while holding the statuses")
    }
}

/// SIB queries, merged into the root query.
#[derive(Default)]
pub struct SibQuery;

#[Object]
impl SibQuery {
    /// A contract's status at today's date: its cohort, each cohort outcome's figure and earnings,
    /// claims by outcome, payments due and made by payer and period, what the caps cut, and the
    /// investors' position. For the contract's provider, verifier, payers and investors.
    async fn sib_contract(
        &self,
        ctx: &Context<'_>,
        contract_id: Uuid,
        at_least: Option<u64>,
    ) -> Result<Arc<SibContractView>> {
        let caller = principal(ctx)?;
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        let contract = models
            .sib
            .contract(contract_id)
            .ok_or_else(|| not_found(format!("no outcome contract {contract_id} is published")))?;
        if !can_see_contract(caller, contract) {
            return Err(forbidden(
                "a contract's figures are for its provider, verifier, payers, investors, auditors and administrators",
            ));
        }
        let today = Utc::now().date_naive();
        let cache = ctx.data_unchecked::<SibStatuses>();
        Ok(cache.get_or_work_out(&models.sib, contract, today))
    }

    /// Each person in a contract's cohort, by pseudonymous referral id, with every per-person
    /// outcome's status and the facts behind it. For the contract's provider and verifier,
    /// auditors and administrators: never investors or payers.
    async fn sib_people(
        &self,
        ctx: &Context<'_>,
        contract_id: Uuid,
        at_least: Option<u64>,
    ) -> Result<Vec<SibPersonView>> {
        let caller = principal(ctx)?;
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        let contract = models
            .sib
            .contract(contract_id)
            .ok_or_else(|| not_found(format!("no outcome contract {contract_id} is published")))?;
        if !can_see_people(caller, contract) {
            return Err(forbidden(
                "people's outcomes are for the contract's provider and verifier, auditors and administrators",
            ));
        }
        let today = Utc::now().date_naive();
        let people = models.sib.cohort(contract).map(|person| SibPersonView {
            referral_id: person.referral_id,
            outcomes: models
                .sib
                .person_outcomes(contract, person, today)
                .into_iter()
                .map(|o| SibPersonOutcomeView {
                    outcome_id: o.outcome_id,
                    status: crate::wire_name(&o.status),
                    evidence: o.evidence,
                    detail: o.detail,
                })
                .collect(),
        });
        Ok(people.collect())
    }
}

/// Recording SIB facts.
#[derive(Default)]
pub struct SibMutation;

#[Object]
impl SibMutation {
    /// Records a SIB fact: `cohort_cost.recorded` (a payer), `sib_outcome.claimed` (the provider),
    /// `sib_outcome.verified` and `sib_outcome.withdrawn` (the verifier), `sib_payment.made` (the
    /// payer). Contracts are published with `followfund contracts publish`.
    async fn sib_record(
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
            kind: Kind::Sib,
        };
        record(ctx, command).await
    }
}

/// A count, or nothing when it is from one to four: none at all singles nobody out.
fn suppressed(count: u32) -> Option<u32> {
    (count == 0 || count >= SUPPRESS_BELOW).then_some(count)
}

/// A contract's status.
#[derive(SimpleObject)]
pub struct SibContractView {
    /// The contract.
    contract_id: Uuid,
    /// Its name.
    name: String,
    /// Its first and last referral days.
    starts_on: String,
    /// The last day a referral counts.
    ends_on: String,
    /// Eligible people referred; null when fewer than five.
    cohort_people: Option<u32>,
    /// Each cohort outcome.
    cohort_outcomes: Vec<CohortOutcomeView>,
    /// Claims, by outcome: counts suppressed under five.
    claims: Vec<ClaimsByOutcomeView>,
    /// Due from payers in all.
    due: String,
    /// Paid by payers in all.
    paid: String,
    /// Cut by the caps in all.
    capped: String,
    /// Due, paid and capped by payer and month.
    by_payer_period: Vec<PayerPeriodView>,
    /// Every due line, with the share and phase behind it.
    lines: Vec<DueLineView>,
    /// The investors' position.
    investors: Vec<InvestorView>,
}

impl SibContractView {
    fn of(
        sib: &followfund_projections::Sib,
        contract: &SibContract,
        figures: &CohortFigures,
        payments: &Payments,
    ) -> SibContractView {
        let terms = &contract.terms;
        let claims = terms
            .outcomes
            .iter()
            .map(|outcome| {
                let of_outcome: Vec<_> = sib
                    .claims_of(contract)
                    .filter(|c| c.outcome_id == outcome.outcome_id)
                    .collect();
                let count = |keep: &dyn Fn(&&followfund_projections::SibClaim) -> bool| {
                    u32::try_from(of_outcome.iter().filter(|c| keep(c)).count())
                        .expect("few claims")
                };
                ClaimsByOutcomeView {
                    outcome_id: outcome.outcome_id.clone(),
                    claimed: suppressed(count(&|_| true)),
                    verified: suppressed(count(&|c| c.verified.is_some() && c.stands())),
                    withdrawn: suppressed(count(&|c| !c.stands())),
                }
            })
            .collect();
        SibContractView {
            contract_id: terms.contract_id,
            name: terms.name.clone(),
            starts_on: terms.starts_on.to_string(),
            ends_on: terms.ends_on.to_string(),
            cohort_people: suppressed(figures.people),
            cohort_outcomes: figures
                .outcomes
                .iter()
                .map(|o| CohortOutcomeView {
                    outcome_id: o.outcome_id.clone(),
                    measured: suppressed(o.measured),
                    // A cost outcome counts no people; an average over one to four is hidden.
                    result: o
                        .result
                        .filter(|_| suppressed(o.measured).is_some())
                        .map(|r| r.round_dp(4).to_string()),
                    share_earned: o.share_earned.round_dp(4).to_string(),
                    earned: o.earned.to_string(),
                    explain: o.detail.clone(),
                })
                .collect(),
            claims,
            due: payments.due.to_string(),
            paid: payments.paid.to_string(),
            capped: payments.capped.to_string(),
            by_payer_period: payments
                .by_payer_period
                .iter()
                .map(|row| PayerPeriodView {
                    payer: row.payer.as_str().to_string(),
                    period: row.period.to_string(),
                    due: row.due.to_string(),
                    paid: row.paid.to_string(),
                    capped: row.capped.to_string(),
                })
                .collect(),
            lines: payments
                .lines
                .iter()
                .map(|line| DueLineView {
                    period: line.period.to_string(),
                    payer: line.payer.as_str().to_string(),
                    claim_id: line.claim_id,
                    amount: line.amount.to_string(),
                    capped: line.capped.to_string(),
                    position: line.position,
                    explain: line.detail.clone(),
                })
                .collect(),
            investors: payments
                .investors
                .iter()
                .map(|i| InvestorView {
                    investor: i.investor.as_str().to_string(),
                    capital: i.capital.to_string(),
                    received: i.received.to_string(),
                })
                .collect(),
        }
    }
}

/// A cohort outcome's figure.
#[derive(SimpleObject)]
pub struct CohortOutcomeView {
    /// The outcome.
    outcome_id: String,
    /// People measured; null when one to four.
    measured: Option<u32>,
    /// The figure (average points, or fraction of cost saved); null when suppressed or unknown.
    result: Option<String>,
    /// The share of the outcome's pot earned, 0 to 1.
    share_earned: String,
    /// What it has earned.
    earned: String,
    /// How it was reached.
    explain: String,
}

/// Claims of one outcome.
#[derive(SimpleObject)]
pub struct ClaimsByOutcomeView {
    /// The outcome.
    outcome_id: String,
    /// Claims made; null when one to four.
    claimed: Option<u32>,
    /// Claims signed off and standing; null when one to four.
    verified: Option<u32>,
    /// Claims withdrawn; null when one to four.
    withdrawn: Option<u32>,
}

/// A payer's month.
#[derive(SimpleObject)]
pub struct PayerPeriodView {
    /// The payer.
    payer: String,
    /// The month.
    period: String,
    /// Due.
    due: String,
    /// Paid.
    paid: String,
    /// Cut by caps.
    capped: String,
}

/// A payer's part of a claim or of its reversal.
#[derive(SimpleObject)]
pub struct DueLineView {
    /// The month.
    period: String,
    /// The payer.
    payer: String,
    /// The claim.
    claim_id: Uuid,
    /// Due (negative for a reversal).
    amount: String,
    /// Cut by caps.
    capped: String,
    /// The sign-off or withdrawal behind it.
    position: u64,
    /// The share and phase, in words.
    explain: String,
}

/// An investor's position.
#[derive(SimpleObject)]
pub struct InvestorView {
    /// The investor.
    investor: String,
    /// Capital invested.
    capital: String,
    /// Its share of outcome payments made.
    received: String,
}

/// A person in a cohort, pseudonymous.
#[derive(SimpleObject)]
pub struct SibPersonView {
    /// The referral.
    referral_id: Uuid,
    /// Each per-person outcome.
    outcomes: Vec<SibPersonOutcomeView>,
}

/// One person's outcome.
#[derive(SimpleObject)]
pub struct SibPersonOutcomeView {
    /// The outcome.
    outcome_id: String,
    /// met, pending, failed or expired.
    status: String,
    /// The facts it was judged on.
    evidence: Vec<u64>,
    /// The judgement in words and figures.
    detail: String,
}
