//! Funding over GraphQL: an anchor's budget position, a provider's statement with the facts and
//! clauses behind every amount, payment runs and their remittance lines, and making a run.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::NaiveDate;
use followfund_contracts::events::PaymentLineKind;
use followfund_contracts::terms::FinancialYear;
use followfund_contracts::{OdsCode, Role};
use followfund_projections::{AccountId, Funding, Ledger, PaymentRun, ReadModels};
use uuid::Uuid;

use super::auth::Principal;
use super::errors::{bad_input, forbidden};
use super::explanations::{Explanations, Why};
use super::schema::{PAGE_SIZE_MAX, caught_up, principal};
use super::scope::in_anchor_scope;
use crate::payments::{self, PayError};
use crate::runner::Runner;
use crate::store::Store;

/// Funding queries, merged into the root query.
#[derive(Default)]
pub struct FundingQuery;

#[Object]
impl FundingQuery {
    /// An anchor's activities budget for a financial year (such as `2026/27`): allocated,
    /// committed, accrued, paid and available, now, as of a past log position, or as the ledger
    /// knew it at the end of a past day (`asOfDate`, by when facts were recorded).
    async fn budget(
        &self,
        ctx: &Context<'_>,
        anchor: String,
        financial_year: String,
        as_of_position: Option<u64>,
        as_of_date: Option<NaiveDate>,
        at_least: Option<u64>,
    ) -> Result<BudgetView> {
        let caller = principal(ctx)?;
        let anchor = code(&anchor)?;
        let year: FinancialYear = financial_year.parse().map_err(
            |error: followfund_contracts::terms::FinancialYearError| bad_input(error.to_string()),
        )?;
        let runner = caught_up(ctx, at_least).await?;
        check_anchor_scope(&runner.read(), caller, &anchor)?;
        let store = ctx.data_unchecked::<Store>();
        let as_of_position = match (as_of_position, as_of_date) {
            (Some(_), Some(_)) => return Err(bad_input("give asOfPosition or asOfDate, not both")),
            (None, Some(day)) => Some(last_recorded_by(store, day).await?),
            (position, None) => position,
        };
        let position = match as_of_position {
            None => runner.read().ledger.budget_position(&anchor, year),
            Some(position) => as_of(store, position)
                .await?
                .ledger
                .budget_position(&anchor, year),
        };
        Ok(BudgetView {
            allocated: position.allocated.to_string(),
            committed: position.committed.to_string(),
            accrued: position.accrued.to_string(),
            paid: position.paid.to_string(),
            available: position.available.to_string(),
        })
    }

    /// A provider's statement: a line per funded prescription with what it earned and what was
    /// paid, each amount explained by the facts and tariff clauses behind it. A provider sees
    /// only its own; an anchor or commissioner sees the lines it pays for.
    ///
    /// Lines come in prescription id order, `first` at a time (50 unless asked, at most 500):
    /// a provider's year runs to hundreds of lines and thousands of explanations. Pass the last
    /// `prescriptionId` of one page as `after` to get the next; a page shorter than `first` is
    /// the last.
    async fn provider_statement(
        &self,
        ctx: &Context<'_>,
        provider: String,
        first: Option<usize>,
        after: Option<Uuid>,
        at_least: Option<u64>,
    ) -> Result<Vec<StatementLine>> {
        let caller = principal(ctx)?;
        let provider = code(&provider)?;
        let first = first.unwrap_or(STATEMENT_PAGE_LINES).min(PAGE_SIZE_MAX);
        let sees = match caller.role {
            Role::Admin | Role::Auditor => true,
            Role::Provider => caller.organisation == provider.as_str(),
            _ => false,
        };
        if !sees && !matches!(caller.role, Role::Anchor | Role::Commissioner) {
            return Err(forbidden(format!(
                "{}'s statement is for the provider, its anchors and auditors",
                provider.as_str()
            )));
        }
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        let mut keys = AccountKeys::default();
        let lines = models
            .journeys
            .prescriptions_of_provider(&provider)
            .filter(|p| after.is_none_or(|after| p.prescription_id > after))
            .filter_map(|p| {
                let funding = models.ledger.funding(p.prescription_id)?;
                let anchor = &models.ledger.agreement_of(funding).anchor;
                let visible = sees || in_anchor_scope(&models, caller, anchor);
                visible.then(|| StatementLine::of(&models, p.prescription_id, funding, &mut keys))
            })
            .take(first);
        Ok(lines.collect())
    }

    /// Spend in a financial year: what providers earned (and self-delivery cost), net of
    /// reversals, by anchor, provider, activity type and month (M01 is April). A commissioner
    /// sees the anchors it is parent of; auditors and administrators see all.
    async fn spend(
        &self,
        ctx: &Context<'_>,
        financial_year: String,
        at_least: Option<u64>,
    ) -> Result<Vec<SpendLine>> {
        let caller = principal(ctx)?;
        if !matches!(
            caller.role,
            Role::Commissioner | Role::Auditor | Role::Admin
        ) {
            return Err(forbidden(
                "spend across anchors is for commissioners, auditors and administrators",
            ));
        }
        let year: FinancialYear = financial_year.parse().map_err(
            |error: followfund_contracts::terms::FinancialYearError| bad_input(error.to_string()),
        )?;
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        Ok(spend_lines(&models, caller, year))
    }

    /// A provider's remittance advice for one run: its lines, the total, and the same as CSV.
    /// The provider, the paying anchor, its commissioner, auditors and administrators see it.
    async fn remittance(
        &self,
        ctx: &Context<'_>,
        run_id: Uuid,
        provider: String,
        at_least: Option<u64>,
    ) -> Result<Remittance> {
        let caller = principal(ctx)?;
        let provider = code(&provider)?;
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        let run = models.ledger.run(run_id).ok_or_else(|| {
            super::errors::not_found(format!("no payment run {run_id} is recorded"))
        })?;
        let own = caller.role == Role::Provider && caller.organisation == provider.as_str();
        if !own && !in_anchor_scope(&models, caller, &run.anchor) {
            return Err(forbidden(format!(
                "{}'s remittance is for it, its anchor and auditors",
                provider.as_str()
            )));
        }
        let view = PaymentRunView::of(
            &models,
            run,
            &Principal {
                organisation: provider.as_str().into(),
                role: Role::Provider,
            },
        );
        let total = run
            .lines
            .of_provider(&provider)
            .map(|line| match line.kind {
                PaymentLineKind::Payment => line.amount,
                PaymentLineKind::Recovery => line.amount.negated(),
            })
            .fold(followfund_contracts::Money::zero(), |sum, amount| {
                sum.checked_add(amount)
                    .expect("run totals stay far below the limit")
            });
        Ok(Remittance {
            lines: view.lines,
            total: total.to_string(),
            csv: payments::remittance_csv(&models, run, &provider),
        })
    }

    /// An anchor's payment runs, oldest first; a provider sees only its own lines in them.
    async fn payment_runs(
        &self,
        ctx: &Context<'_>,
        anchor: String,
        at_least: Option<u64>,
    ) -> Result<Vec<PaymentRunView>> {
        let caller = principal(ctx)?;
        let anchor = code(&anchor)?;
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        if caller.role != Role::Provider {
            check_anchor_scope(&models, caller, &anchor)?;
        }
        let mut runs: Vec<&PaymentRun> = models
            .ledger
            .runs()
            .filter(|run| run.anchor == anchor)
            .collect();
        runs.sort_by_key(|run| run.position);
        Ok(runs
            .into_iter()
            .map(|run| PaymentRunView::of(&models, run, caller))
            .collect())
    }
}

/// Sums earned amounts, net of reversals, by anchor, provider, activity and month.
fn spend_lines(models: &ReadModels, caller: &Principal, year: FinancialYear) -> Vec<SpendLine> {
    use std::collections::BTreeMap;
    let mut totals: BTreeMap<(String, String, String, String), followfund_contracts::Money> =
        BTreeMap::new();
    let fundings = models
        .ledger
        .fundings()
        .filter(|(_, funding)| funding.financial_year == year)
        .filter(|(_, funding)| {
            let anchor = &models.ledger.agreement_of(funding).anchor;
            in_anchor_scope(models, caller, anchor)
        });
    for (prescription_id, funding) in fundings {
        let activity = models
            .journeys
            .prescription(prescription_id)
            .map(|p| crate::wire_name(&p.activity_type))
            .unwrap_or_default();
        for posting in models.ledger.postings_of(prescription_id) {
            let amount = match posting.cause.rule {
                followfund_projections::Rule::Tariff(_) => posting.amount,
                followfund_projections::Rule::Reversal => posting.amount.negated(),
                _ => continue,
            };
            let agreement = models.ledger.agreement_of(funding);
            let key = (
                agreement.anchor.as_str().to_string(),
                agreement.provider.as_str().to_string(),
                activity.clone(),
                FinancialYear::month_label(posting.cause.on),
            );
            let total = totals.entry(key).or_default();
            *total = total
                .checked_add(amount)
                .expect("spend totals stay far below the limit");
        }
    }
    totals
        .into_iter()
        .map(
            |((anchor, provider, activity_type, month), amount)| SpendLine {
                anchor,
                provider,
                activity_type,
                month,
                amount: amount.to_string(),
            },
        )
        .collect()
}

/// Spend for one anchor, provider, activity and month.
#[derive(SimpleObject)]
pub struct SpendLine {
    /// The anchor that pays.
    anchor: String,
    /// The provider (the anchor itself for self-delivery).
    provider: String,
    /// The activity.
    activity_type: String,
    /// The month, M01 (April) to M12 (March).
    month: String,
    /// Earned net of reversals.
    amount: String,
}

/// Making payment runs.
#[derive(Default)]
pub struct FundingMutation;

#[Object]
impl FundingMutation {
    /// Settles what the anchor owes for work dated on or before `through` (YYYY-MM-DD), as
    /// known now. One run per anchor and date: asking again returns the same run.
    async fn payment_run_create(
        &self,
        ctx: &Context<'_>,
        anchor: String,
        through: NaiveDate,
    ) -> Result<PaymentRunView> {
        let caller = principal(ctx)?.clone();
        let anchor = code(&anchor)?;
        let allowed = caller.role == Role::Admin
            || (caller.role == Role::Anchor && caller.organisation == anchor.as_str());
        if !allowed {
            return Err(forbidden(format!(
                "only {} (or an administrator) pays its providers",
                anchor.as_str()
            )));
        }
        let (store, runner) = (
            ctx.data_unchecked::<Store>(),
            ctx.data_unchecked::<Runner>(),
        );
        let outcome = payments::pay(store, runner, &anchor, through)
            .await
            .map_err(|error| match error {
                PayError::Store(_) | PayError::NotYetFolded(_) | PayError::Contended => {
                    async_graphql::Error::new(error.to_string())
                }
                other => bad_input(other.to_string()),
            })?;
        runner
            .wait_for(
                outcome.run.position,
                std::time::Duration::from_millis(crate::runner::READ_YOUR_WRITES_WAIT_MS),
            )
            .await?;
        Ok(PaymentRunView::of(&runner.read(), &outcome.run, &caller))
    }
}

/// The read models as they stood at `position`, folded from the log on demand.
async fn as_of(store: &Store, position: u64) -> Result<ReadModels> {
    if position > store.head_position() {
        return Err(bad_input(format!(
            "position {position} is beyond the log's head ({})",
            store.head_position()
        )));
    }
    let mut models = ReadModels::default();
    while models.position() < position {
        let limit = usize::try_from(position - models.position())
            .unwrap_or(usize::MAX)
            .min(crate::store::READ_PAGE_EVENTS_MAX);
        for event in store.read_all(models.position() + 1, limit).await? {
            models.apply(&crate::runner::fact(event.into())?);
        }
    }
    Ok(models)
}

/// The last position recorded by the end of `day` (UTC): positions are given in commit order,
/// so the ledger as known that evening is the log up to it.
async fn last_recorded_by(store: &Store, day: NaiveDate) -> Result<u64> {
    let end = day
        .succ_opt()
        .unwrap_or(day)
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let mut last = 0;
    loop {
        let page = store
            .read_all(last + 1, crate::store::READ_PAGE_EVENTS_MAX)
            .await?;
        let Some(first_after) = page.iter().position(|event| event.recorded_at >= end) else {
            let Some(tail) = page.last() else {
                return Ok(last);
            };
            last = tail.position;
            continue;
        };
        return Ok(if first_after == 0 {
            last
        } else {
            page[first_after - 1].position
        });
    }
}

fn code(text: &str) -> Result<OdsCode> {
    OdsCode::parse(text).map_err(|error| bad_input(error.to_string()))
}

fn check_anchor_scope(models: &ReadModels, caller: &Principal, anchor: &OdsCode) -> Result<()> {
    if in_anchor_scope(models, caller, anchor) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "{}'s budget and payments are outside what {} may see",
            anchor.as_str(),
            caller.organisation
        )))
    }
}

/// The lines of a statement page when the caller does not say.
const STATEMENT_PAGE_LINES: usize = 50;

/// An anchor's budget for a year, in pounds.
#[derive(SimpleObject)]
pub struct BudgetView {
    /// Allocated by commissioners.
    allocated: String,
    /// Set aside for issued prescriptions.
    committed: String,
    /// Earned by providers (paid or not) or spent on self-delivery.
    accrued: String,
    /// Paid out.
    paid: String,
    /// Neither committed nor accrued.
    available: String,
}

/// One funded prescription on a provider's statement.
#[derive(SimpleObject)]
pub struct StatementLine {
    /// The prescription.
    prescription_id: Uuid,
    /// Its referral.
    referral_id: Option<Uuid>,
    /// The anchor that pays.
    anchor: String,
    /// The agreement it was issued under.
    agreement_id: Uuid,
    /// Everything it has earned.
    earned: String,
    /// Commitment still set aside for it.
    committed: String,
    /// Each amount earned or owed back, with why.
    explain: Explanations,
}

impl StatementLine {
    fn of(
        models: &ReadModels,
        prescription_id: Uuid,
        funding: &Funding,
        keys: &mut AccountKeys,
    ) -> StatementLine {
        let explain = models
            .ledger
            .postings_of(prescription_id)
            .map(|posting| Why {
                position: posting.cause.position,
                event_type: posting.cause.event_type,
                rule: posting.cause.rule,
                agreement_version: posting.cause.agreement_version,
                amount: posting.amount,
                debit: keys.of(&models.ledger, posting.debit),
                credit: keys.of(&models.ledger, posting.credit),
            })
            .collect();
        let agreement = models.ledger.agreement_of(funding);
        StatementLine {
            prescription_id,
            referral_id: models.journeys.referral_of(prescription_id),
            anchor: agreement.anchor.as_str().to_string(),
            agreement_id: agreement.agreement_id,
            earned: funding.earned().to_string(),
            committed: funding.committed().to_string(),
            explain: Explanations(explain),
        }
    }
}

/// The account keys one answer has written so far: a page of statement lines names the same
/// few accounts hundreds of times, and formatting each anew took a tenth of the page's time.
#[derive(Default)]
struct AccountKeys(HashMap<AccountId, Arc<str>>);

impl AccountKeys {
    fn of(&mut self, ledger: &Ledger, account: AccountId) -> Arc<str> {
        let key = self.0.entry(account);
        let key = key.or_insert_with(|| ledger.account(account).key().into());
        Arc::clone(key)
    }
}

/// A payment run.
#[derive(SimpleObject)]
pub struct PaymentRunView {
    /// Its id.
    run_id: Uuid,
    /// The anchor that paid.
    anchor: String,
    /// The last day of work it settled.
    through: NaiveDate,
    /// The position of its event.
    position: u64,
    /// Its lines (a provider sees only its own).
    lines: Vec<PaymentLineView>,
}

impl PaymentRunView {
    fn of(models: &ReadModels, run: &PaymentRun, caller: &Principal) -> PaymentRunView {
        let own_only = caller.role == Role::Provider;
        let lines = run
            .lines
            .iter()
            .filter(|line| !own_only || line.provider.as_str() == caller.organisation)
            .map(|line| PaymentLineView {
                provider: line.provider.as_str().to_string(),
                prescription_id: line.prescription_id,
                referral_id: models.journeys.referral_of(line.prescription_id),
                kind: match line.kind {
                    PaymentLineKind::Payment => "payment".into(),
                    PaymentLineKind::Recovery => "recovery".into(),
                },
                amount: line.amount.to_string(),
                positions: line.positions.clone(),
            })
            .collect();
        PaymentRunView {
            run_id: run.run_id,
            anchor: run.anchor.as_str().to_string(),
            through: run.through,
            position: run.position,
            lines,
        }
    }
}

/// A provider's remittance advice for a run.
#[derive(SimpleObject)]
pub struct Remittance {
    /// A line per prescription.
    lines: Vec<PaymentLineView>,
    /// Payments less recoveries.
    total: String,
    /// The same, as CSV.
    csv: String,
}

/// One line of a run: remittance for one prescription.
#[derive(SimpleObject)]
pub struct PaymentLineView {
    /// The provider paid.
    provider: String,
    /// The prescription.
    prescription_id: Uuid,
    /// Its referral.
    referral_id: Option<Uuid>,
    /// payment or recovery.
    kind: String,
    /// The amount (a recovery is deducted).
    amount: String,
    /// The facts it settles.
    positions: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_sees_only_its_own_lines() {
        let caller = Principal {
            organisation: "VCS01".into(),
            role: Role::Provider,
        };
        let run = PaymentRun {
            run_id: Uuid::nil(),
            anchor: OdsCode::parse("ANC01").unwrap(),
            through: NaiveDate::from_ymd_opt(2026, 5, 31).unwrap(),
            lines: ["VCS01", "VCS02"]
                .iter()
                .map(|provider| followfund_contracts::events::PaymentLine {
                    provider: OdsCode::parse(provider).unwrap(),
                    prescription_id: Uuid::nil(),
                    kind: PaymentLineKind::Payment,
                    amount: "10.00".parse().unwrap(),
                    positions: vec![1],
                })
                .collect(),
            position: 9,
            parts: 1,
            parts_recorded: [1].into(),
        };
        let view = PaymentRunView::of(&ReadModels::default(), &run, &caller);
        assert_eq!(view.lines.len(), 1);
        assert_eq!(view.lines[0].provider, "VCS01");
    }
}
