//! Social impact bond commands and scope: who may record which fact about an outcome contract,
//! what a claim must match before it is written, and who may see a contract's figures.

use chrono::{DateTime, Utc};
use followfund_contracts::events::SibOutcomeClaimed;
use followfund_contracts::{Event, Money, Role};
use followfund_projections::{OutcomeStatus, ReadModels, Sib, SibContract};
use uuid::Uuid;

use crate::api::auth::Principal;
use crate::commands::Decision;

/// Why a SIB fact was refused. Each reads as a sentence telling the caller what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SibRejection {
    /// Not a SIB fact, or one published another way.
    #[error("`{0}` is not recorded through sibRecord: {1}")]
    NotRecordedHere(&'static str, &'static str),
    /// No contract has this id.
    #[error("no outcome contract {0} is published: publish it with `followfund contracts publish`")]
    UnknownContract(Uuid),
    /// The caller may not record this for the contract.
    #[error("{caller} cannot record `{event_type}` on contract {contract_id}: {who}")]
    NotYours {
        /// Who asked.
        caller: String,
        /// The event type.
        event_type: &'static str,
        /// The contract.
        contract_id: Uuid,
        /// Who may.
        who: &'static str,
    },
    /// The contract has no such outcome.
    #[error("contract {contract_id} has no outcome `{outcome_id}`")]
    UnknownOutcome {
        /// The contract.
        contract_id: Uuid,
        /// The outcome named.
        outcome_id: String,
    },
    /// The claim does not fit the outcome.
    #[error("the claim for `{outcome_id}` cannot be made: {reason}")]
    ClaimDoesNotFit {
        /// The outcome.
        outcome_id: String,
        /// Why.
        reason: String,
    },
    /// No claim has this id.
    #[error("no claim {0} is recorded: claim it first")]
    UnknownClaim(Uuid),
    /// The claim id is taken.
    #[error("claim {0} is already recorded: use a new claim_id")]
    ClaimExists(Uuid),
    /// The claim is already verified or withdrawn.
    #[error("claim {claim_id} is already {state}")]
    ClaimSettled {
        /// The claim.
        claim_id: Uuid,
        /// Verified or withdrawn.
        state: &'static str,
    },
}

/// The roles a payer may be registered in: a commissioner, or an anchor paying from its budget.
const PAYER_ROLES: &[Role] = &[Role::Commissioner, Role::Anchor];

/// The stream every fact about a contract goes to.
pub fn contract_stream(contract_id: Uuid) -> String {
    format!("sib-{contract_id}")
}

/// Checks a SIB fact against the read models and the caller.
pub fn decide(
    models: &ReadModels,
    caller: &Principal,
    now: DateTime<Utc>,
    event: Event,
) -> Result<Decision, SibRejection> {
    let sib = &models.sib;
    let event_type = event.type_name();
    let contract_id = match &event {
        Event::CohortCostRecorded(e) => {
            let contract = known(sib, e.contract_id)?;
            let payer = contract
                .terms
                .payers
                .iter()
                .any(|p| p.payer.as_str() == caller.organisation);
            allow(
                caller,
                contract,
                event_type,
                PAYER_ROLES,
                payer,
                "only the contract's payers record cohort costs",
            )?;
            e.contract_id
        }
        Event::SibOutcomeClaimed(e) => {
            let contract = known(sib, e.contract_id)?;
            let provider = contract.terms.provider.as_str() == caller.organisation;
            allow(
                caller,
                contract,
                event_type,
                &[Role::Anchor, Role::Pcn],
                provider,
                "only the contract's provider claims outcomes",
            )?;
            check_claim(sib, contract, e, now)?;
            e.contract_id
        }
        Event::SibOutcomeVerified(e) => {
            let (contract, claim) = claim_of(sib, e.claim_id)?;
            let verifier = contract.terms.verifier.as_str() == caller.organisation;
            allow(
                caller,
                contract,
                event_type,
                &[Role::Verifier],
                verifier,
                "only the contract's verifier signs off",
            )?;
            if claim.verified.is_some() || claim.withdrawn.is_some() {
                let state = if claim.withdrawn.is_some() {
                    "withdrawn"
                } else {
                    "verified"
                };
                return Err(SibRejection::ClaimSettled {
                    claim_id: e.claim_id,
                    state,
                });
            }
            contract.terms.contract_id
        }
        Event::SibOutcomeWithdrawn(e) => {
            let (contract, claim) = claim_of(sib, e.claim_id)?;
            let verifier = contract.terms.verifier.as_str() == caller.organisation;
            allow(
                caller,
                contract,
                event_type,
                &[Role::Verifier],
                verifier,
                "only the contract's verifier withdraws outcomes",
            )?;
            if claim.withdrawn.is_some() {
                return Err(SibRejection::ClaimSettled {
                    claim_id: e.claim_id,
                    state: "withdrawn",
                });
            }
            contract.terms.contract_id
        }
        Event::SibPaymentMade(e) => {
            let contract = known(sib, e.contract_id)?;
            let payer = e.payer.as_str() == caller.organisation
                && contract.terms.payers.iter().any(|p| p.payer == e.payer);
            allow(
                caller,
                contract,
                event_type,
                PAYER_ROLES,
                payer,
                "only a payer records its own payments",
            )?;
            e.contract_id
        }
        Event::SibContractPublished(_) => {
            return Err(SibRejection::NotRecordedHere(
                event_type,
                "an administrator publishes contracts with `followfund contracts publish contracts/rules/sib/<file>.toml`",
            ));
        }
        _ => {
            return Err(SibRejection::NotRecordedHere(
                event_type,
                "it is not a social impact bond fact",
            ));
        }
    };
    Ok(Decision {
        stream: contract_stream(contract_id),
        starts_stream: false,
        event,
    })
}

fn known(sib: &Sib, contract_id: Uuid) -> Result<&SibContract, SibRejection> {
    sib.contract(contract_id)
        .ok_or(SibRejection::UnknownContract(contract_id))
}

fn claim_of(
    sib: &Sib,
    claim_id: Uuid,
) -> Result<(&SibContract, &followfund_projections::SibClaim), SibRejection> {
    let claim = sib
        .claim(claim_id)
        .ok_or(SibRejection::UnknownClaim(claim_id))?;
    Ok((known(sib, claim.contract_id)?, claim))
}

fn allow(
    caller: &Principal,
    contract: &SibContract,
    event_type: &'static str,
    roles: &[Role],
    named: bool,
    who: &'static str,
) -> Result<(), SibRejection> {
    if caller.role == Role::Admin || (roles.contains(&caller.role) && named) {
        return Ok(());
    }
    Err(SibRejection::NotYours {
        caller: format!("a {} token for {}", caller.role, caller.organisation),
        event_type,
        contract_id: contract.terms.contract_id,
        who,
    })
}

/// A per-person claim needs a person in the cohort whose outcome is met, at the outcome's price,
/// claimed once; a cohort claim asks for what the cohort has earned beyond what was claimed.
fn check_claim(
    sib: &Sib,
    contract: &SibContract,
    claim: &SibOutcomeClaimed,
    now: DateTime<Utc>,
) -> Result<(), SibRejection> {
    if sib.claim(claim.claim_id).is_some() {
        return Err(SibRejection::ClaimExists(claim.claim_id));
    }
    let outcome = contract
        .terms
        .outcomes
        .iter()
        .find(|o| o.outcome_id == claim.outcome_id)
        .ok_or_else(|| SibRejection::UnknownOutcome {
            contract_id: contract.terms.contract_id,
            outcome_id: claim.outcome_id.clone(),
        })?;
    let refuse = |reason: String| {
        Err(SibRejection::ClaimDoesNotFit {
            outcome_id: claim.outcome_id.clone(),
            reason,
        })
    };
    let standing: Vec<_> = sib
        .claims_of(contract)
        .filter(|c| c.outcome_id == claim.outcome_id && c.stands())
        .collect();
    let today = now.date_naive();
    if outcome.is_per_person() {
        let Some(referral_id) = claim.referral_id else {
            return refuse("a per-person outcome names the person's referral_id".into());
        };
        let Some(person) = sib
            .person(referral_id)
            .filter(|p| sib.in_cohort(contract, p))
        else {
            return refuse(format!(
                "referral {referral_id} is not in the contract's cohort (its provider, dates and eligibility)"
            ));
        };
        let judged = sib
            .person_outcomes(contract, person, today)
            .into_iter()
            .find(|o| o.outcome_id == claim.outcome_id);
        let judged = judged.expect("a per-person outcome is judged for every person");
        if judged.status != OutcomeStatus::Met {
            return refuse(
                format!("it is {:?}, not met: {}", judged.status, judged.detail).to_lowercase(),
            );
        }
        if standing.iter().any(|c| c.referral_id == Some(referral_id)) {
            return refuse(format!("it is already claimed for referral {referral_id}"));
        }
        let price = price_of(&outcome.kind).expect("per-person outcomes have a price");
        if claim.amount != price {
            return refuse(format!("its price is {price}, not {}", claim.amount));
        }
        return Ok(());
    }
    if claim.referral_id.is_some() {
        return refuse("a cohort outcome is claimed for the cohort: leave out referral_id".into());
    }
    let figures = sib.cohort_figures(contract, today);
    let earned = figures
        .outcomes
        .iter()
        .find(|o| o.outcome_id == claim.outcome_id)
        .map_or(Money::zero(), |o| o.earned);
    let claimed = standing.iter().fold(Money::zero(), |sum, c| {
        sum.checked_add(c.amount).expect("small sums")
    });
    let due = earned.checked_sub(claimed).expect("small sums");
    if claim.amount != due {
        return refuse(format!(
            "the cohort has earned {earned} and {claimed} is claimed already, so {due} may be claimed, not {}",
            claim.amount
        ));
    }
    Ok(())
}

fn price_of(kind: &followfund_contracts::terms::OutcomeKind) -> Option<Money> {
    use followfund_contracts::terms::OutcomeKind;
    match kind {
        OutcomeKind::AssessmentCompleted { price }
        | OutcomeKind::Complexity { price, .. }
        | OutcomeKind::Improvement { price, .. } => Some(*price),
        _ => None,
    }
}

/// Who may see a contract's cohort-level figures: its provider, verifier, payers and investors,
/// auditors and administrators.
pub fn can_see_contract(caller: &Principal, contract: &SibContract) -> bool {
    let terms = &contract.terms;
    let org = caller.organisation.as_str();
    match caller.role {
        Role::Admin | Role::Auditor => true,
        Role::Investor => terms.investors.iter().any(|i| i.investor.as_str() == org),
        Role::Commissioner => terms.payers.iter().any(|p| p.payer.as_str() == org),
        Role::Anchor => terms.provider.as_str() == org,
        Role::Verifier => terms.verifier.as_str() == org,
        Role::Provider | Role::Pcn => false,
    }
}

/// Who may see people's outcomes: the provider that holds their referrals, the verifier that
/// checks them, auditors and administrators. Never an investor or a payer.
pub fn can_see_people(caller: &Principal, contract: &SibContract) -> bool {
    let terms = &contract.terms;
    let org = caller.organisation.as_str();
    match caller.role {
        Role::Admin | Role::Auditor => true,
        Role::Anchor => terms.provider.as_str() == org,
        Role::Verifier => terms.verifier.as_str() == org,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use followfund_projections::Fact;
    use serde_json::{Value, json};

    const CONTRACT: &str = "0198c000-0000-7000-8000-000000000001";

    fn event(event_type: &str, data: Value) -> Event {
        Event::decode(event_type, 1, data).unwrap()
    }

    /// Folds `events`, each on its date.
    fn given(events: Vec<(NaiveDate, Event)>) -> ReadModels {
        let mut models = ReadModels::default();
        for (index, (on, event)) in events.into_iter().enumerate() {
            let at = Utc.from_utc_datetime(&on.and_hms_opt(9, 0, 0).unwrap());
            models.apply(&Fact {
                position: index as u64 + 1,
                occurred_at: at,
                event,
            });
        }
        models
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Ways to Wellness with five eligible people who each gain a whole Star point in a year:
    /// an average of 1.0, so 0.5 ÷ 0.9 of the way up the scale: £8.2m × 0.3 × 5/9 = £1,366,666.67.
    fn cohort_of_five() -> Vec<(NaiveDate, Event)> {
        let terms = followfund_contracts::terms::read_terms(include_str!(
            "../contracts/rules/sib/ways-to-wellness.toml"
        ))
        .unwrap();
        let contract = terms.publications.into_iter().next().unwrap().event;
        let mut events = vec![(day(2015, 4, 1), contract)];
        for n in 0..5u128 {
            let referral = Uuid::from_u128(100 + n);
            let received = json!({
                "referral_id": referral, "person_id": Uuid::from_u128(900 + n), "source": "gp_practice",
                "referrer": null, "link_worker_organisation": "WTW01", "reasons": ["loneliness"],
                "age_band": "55-64", "conditions": ["copd"],
            });
            events.push((day(2016, 1, 4), event("referral.received", received)));
            for (stage, score, on) in [
                ("baseline", 4, day(2016, 1, 11)),
                ("follow_up", 5, day(2017, 1, 11)),
            ] {
                let measure = json!({"referral_id": referral, "instrument": "wellbeing_star", "stage": stage, "item_scores": vec![score; 8]});
                events.push((on, event("outcome.measured", measure)));
            }
        }
        events
    }

    fn claim(amount: &str, referral: Option<Uuid>) -> Event {
        event(
            "sib_outcome.claimed",
            json!({
                "claim_id": Uuid::now_v7(), "contract_id": CONTRACT, "outcome_id": "star_improvement",
                "referral_id": referral, "period": "2017-03", "amount": amount,
            }),
        )
    }

    fn provider() -> Principal {
        Principal {
            organisation: "WTW01".into(),
            role: Role::Anchor,
        }
    }

    #[test]
    fn a_cohort_claim_asks_for_what_the_cohort_earned_beyond_earlier_claims() {
        let now = Utc.with_ymd_and_hms(2017, 4, 1, 9, 0, 0).unwrap();
        let mut history = cohort_of_five();
        let models = given(history.clone());
        let refused = decide(&models, &provider(), now, claim("1000000.00", None));
        let Err(SibRejection::ClaimDoesNotFit { reason, .. }) = refused else {
            panic!("{refused:?}");
        };
        assert!(reason.contains("£1366666.67 may be claimed"), "{reason}");
        let with_person = decide(
            &models,
            &provider(),
            now,
            claim("1366666.67", Some(Uuid::from_u128(100))),
        );
        assert!(
            matches!(with_person, Err(SibRejection::ClaimDoesNotFit { .. })),
            "{with_person:?}"
        );
        let first = decide(&models, &provider(), now, claim("1366666.67", None)).unwrap();
        assert_eq!(first.stream, format!("sib-{CONTRACT}"));
        history.push((day(2017, 4, 1), first.event));
        let models = given(history);
        let again = decide(&models, &provider(), now, claim("0.01", None));
        assert!(
            matches!(again, Err(SibRejection::ClaimDoesNotFit { ref reason, .. }) if reason.contains("£0.00 may be claimed")),
            "{again:?}"
        );
        let stranger = Principal {
            organisation: "ANC09".into(),
            role: Role::Anchor,
        };
        assert!(matches!(
            decide(&models, &stranger, now, claim("1.00", None)),
            Err(SibRejection::NotYours { .. })
        ));
    }
}
