//! ARRS commands and reports: who may record which ARRS fact, what must already be known for it,
//! who may see a PCN's figures, and a month's claim as CSV.

use chrono::{DateTime, Utc};
use followfund_contracts::events::ArrsClaimSubmitted;
use followfund_contracts::{Event, PcnCode, Role};
use followfund_projections::{ArrsError, LinkWorker, Pcn, PcnMonth, ReadModels};
use uuid::Uuid;

use crate::api::auth::Principal;
use crate::commands::Decision;

/// Why an ARRS fact was refused. Each reads as a sentence telling the caller what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArrsRejection {
    /// Not an ARRS fact, or one published another way.
    #[error("`{0}` is not recorded through arrsRecord: {1}")]
    NotRecordedHere(&'static str, &'static str),
    /// The caller's role or organisation may not record this.
    #[error("{caller} cannot record `{event_type}` for PCN {pcn}: {who}")]
    NotYours {
        /// Who asked.
        caller: String,
        /// The event type.
        event_type: &'static str,
        /// The PCN concerned.
        pcn: String,
        /// Who may.
        who: &'static str,
    },
    /// The PCN is not registered, or its year has no rules.
    #[error(transparent)]
    Arrs(#[from] ArrsError),
    /// No link worker has this id.
    #[error("no link worker {0} is employed: record link_worker.employed first")]
    UnknownWorker(Uuid),
    /// The link worker id is taken.
    #[error("link worker {0} is already employed: use a new link_worker_id")]
    WorkerExists(Uuid),
    /// The date is before the worker started.
    #[error("{date} is before link worker {link_worker_id} started on {start_date}")]
    BeforeStart {
        /// The worker.
        link_worker_id: Uuid,
        /// The date given.
        date: chrono::NaiveDate,
        /// The start date.
        start_date: chrono::NaiveDate,
    },
    /// No claim has this id.
    #[error("no claim {0} is submitted: submit it first")]
    UnknownClaim(Uuid),
    /// The claim id is taken.
    #[error("claim {0} is already submitted: use a new claim_id")]
    ClaimExists(Uuid),
    /// The month has not ended.
    #[error("{month} has not ended: claim a month once it is over")]
    MonthNotOver {
        /// The month.
        month: String,
    },
    /// A payment beyond what was claimed.
    #[error(
        "claim {claim_id} was for {claimed} and {paid} is paid already: {amount} more would overpay it"
    )]
    Overpaid {
        /// The claim.
        claim_id: Uuid,
        /// Claimed.
        claimed: followfund_contracts::Money,
        /// Paid so far.
        paid: followfund_contracts::Money,
        /// This payment.
        amount: followfund_contracts::Money,
    },
}

/// The stream every fact about a PCN goes to.
pub fn pcn_stream(pcn: &PcnCode) -> String {
    format!("pcn-{pcn}")
}

/// Checks an ARRS fact against the read models and the caller.
pub fn decide(
    models: &ReadModels,
    caller: &Principal,
    now: DateTime<Utc>,
    event: Event,
) -> Result<Decision, ArrsRejection> {
    let arrs = &models.arrs;
    let event_type = event.type_name();
    let (pcn_code, who) = match &event {
        Event::PcnRegistered(e) => {
            commissioner_of(caller, e.icb.as_str(), &e.pcn, event_type)?;
            // Moving a PCN to another ICB is for its present ICB (or an administrator) to do.
            if let Some(known) = arrs.pcn(&e.pcn) {
                commissioner_of(caller, known.icb.as_str(), &e.pcn, event_type)?;
            }
            let (pcn, starts_stream) = (e.pcn.clone(), arrs.pcn(&e.pcn).is_none());
            return Ok(on_pcn(&pcn, starts_stream, event));
        }
        Event::PcnPopulationRecorded(e) => (&e.pcn, Who::Commissioner),
        Event::PcnArrsSumNotified(e) => (&e.pcn, Who::Commissioner),
        Event::LinkWorkerEmployed(e) => {
            if arrs.worker(e.link_worker_id).is_some() {
                return Err(ArrsRejection::WorkerExists(e.link_worker_id));
            }
            (&e.pcn, Who::Pcn)
        }
        Event::LinkWorkerWteChanged(e) => {
            let worker = known_worker(models, e.link_worker_id)?;
            not_before_start(worker, e.effective_from)?;
            (&worker.pcn, Who::Pcn)
        }
        Event::LinkWorkerLeft(e) => {
            let worker = known_worker(models, e.link_worker_id)?;
            not_before_start(worker, e.last_day)?;
            (&worker.pcn, Who::Pcn)
        }
        Event::LinkWorkerCostPaid(e) => {
            let worker = known_worker(models, e.link_worker_id)?;
            not_before_start(worker, e.month.last_day())?;
            (&worker.pcn, Who::Pcn)
        }
        Event::ArrsClaimSubmitted(e) => {
            check_claim(models, now, e)?;
            (&e.pcn, Who::Pcn)
        }
        Event::ArrsClaimPaid(e) => {
            let claim = arrs
                .claim(e.claim_id)
                .ok_or(ArrsRejection::UnknownClaim(e.claim_id))?;
            let after = claim.paid.checked_add(e.amount).expect("small sums");
            if after > claim.amount {
                return Err(ArrsRejection::Overpaid {
                    claim_id: e.claim_id,
                    claimed: claim.amount,
                    paid: claim.paid,
                    amount: e.amount,
                });
            }
            (&claim.pcn, Who::Commissioner)
        }
        Event::ArrsRulesPublished(_) => {
            return Err(ArrsRejection::NotRecordedHere(
                event_type,
                "an administrator publishes rules with `followfund contracts publish contracts/rules/arrs/<year>.toml`",
            ));
        }
        _ => {
            return Err(ArrsRejection::NotRecordedHere(
                event_type,
                "it is not an ARRS fact; pathway events have their own mutations",
            ));
        }
    };
    let pcn = registered(models, pcn_code)?;
    match who {
        Who::Pcn => own_pcn(caller, pcn, event_type)?,
        Who::Commissioner => commissioner_of(caller, pcn.icb.as_str(), &pcn.code, event_type)?,
    }
    let stream_pcn = pcn.code.clone();
    Ok(on_pcn(&stream_pcn, false, event))
}

/// Who records a fact about a PCN: the PCN itself, or the commissioner (ICB) above it.
enum Who {
    Pcn,
    Commissioner,
}

fn on_pcn(pcn: &PcnCode, starts_stream: bool, event: Event) -> Decision {
    Decision {
        stream: pcn_stream(pcn),
        starts_stream,
        event,
    }
}

fn registered<'m>(models: &'m ReadModels, pcn: &PcnCode) -> Result<&'m Pcn, ArrsRejection> {
    models
        .arrs
        .pcn(pcn)
        .ok_or_else(|| ArrsError::UnknownPcn(pcn.to_string()).into())
}

fn known_worker(models: &ReadModels, id: Uuid) -> Result<&LinkWorker, ArrsRejection> {
    models
        .arrs
        .worker(id)
        .ok_or(ArrsRejection::UnknownWorker(id))
}

fn not_before_start(worker: &LinkWorker, date: chrono::NaiveDate) -> Result<(), ArrsRejection> {
    if date < worker.start_date {
        return Err(ArrsRejection::BeforeStart {
            link_worker_id: worker.link_worker_id,
            date,
            start_date: worker.start_date,
        });
    }
    Ok(())
}

/// A claim needs a new id, a month that is over, and published rules for its year.
fn check_claim(
    models: &ReadModels,
    now: DateTime<Utc>,
    claim: &ArrsClaimSubmitted,
) -> Result<(), ArrsRejection> {
    if models.arrs.claim(claim.claim_id).is_some() {
        return Err(ArrsRejection::ClaimExists(claim.claim_id));
    }
    if claim.month.last_day() >= now.date_naive() {
        return Err(ArrsRejection::MonthNotOver {
            month: claim.month.to_string(),
        });
    }
    let year = claim.month.financial_year();
    if models.arrs.rules(year).is_none() {
        return Err(ArrsError::NoRules(year).into());
    }
    Ok(())
}

fn own_pcn(caller: &Principal, pcn: &Pcn, event_type: &'static str) -> Result<(), ArrsRejection> {
    let allowed = caller.role == Role::Admin
        || (caller.role == Role::Pcn && caller.organisation == pcn.code.as_str());
    if allowed {
        return Ok(());
    }
    Err(ArrsRejection::NotYours {
        caller: format!("a {} token for {}", caller.role, caller.organisation),
        event_type,
        pcn: pcn.code.to_string(),
        who: "only the PCN itself records its link workers and claims",
    })
}

fn commissioner_of(
    caller: &Principal,
    icb: &str,
    pcn: &PcnCode,
    event_type: &'static str,
) -> Result<(), ArrsRejection> {
    let allowed = caller.role == Role::Admin
        || (caller.role == Role::Commissioner && caller.organisation == icb);
    if allowed {
        return Ok(());
    }
    Err(ArrsRejection::NotYours {
        caller: format!("a {} token for {}", caller.role, caller.organisation),
        event_type,
        pcn: pcn.to_string(),
        who: "only the PCN's ICB (as commissioner) or an administrator records this",
    })
}

/// Who may see a PCN's figures: the PCN, its ICB, auditors and administrators.
pub fn can_see_pcn(caller: &Principal, pcn: &Pcn) -> bool {
    match caller.role {
        Role::Admin | Role::Auditor => true,
        Role::Pcn => caller.organisation == pcn.code.as_str(),
        Role::Commissioner => caller.organisation == pcn.icb.as_str(),
        _ => false,
    }
}

/// A PCN's month as CSV: a row per link worker, then the PCN's limit, cut and claimable.
pub fn claim_csv(pcn: &PcnCode, month: &PcnMonth) -> String {
    let mut csv = String::from(
        "pcn,month,label,line,link_worker_id,supplier,days_in_post,maximum,supplier_contribution,actual_cost,claimable,cut\n",
    );
    let amount = |money: followfund_contracts::Money| money.as_decimal().to_string();
    for worker in &month.workers {
        let supplier = worker.supplier.as_ref().map_or("", |s| s.as_str());
        csv.push_str(&format!(
            "{pcn},{},{},link_worker,{},{supplier},{},{},{},{},{},{}\n",
            month.month,
            month.label,
            worker.link_worker_id,
            worker.days_in_post,
            amount(worker.maximum),
            amount(worker.supplier_contribution),
            amount(worker.actual_cost),
            amount(worker.claimable),
            amount(worker.cut_by_maximum),
        ));
    }
    csv.push_str(&format!(
        "{pcn},{},{},limit,,,,{},,,,\n",
        month.month,
        month.label,
        amount(month.limit)
    ));
    csv.push_str(&format!(
        "{pcn},{},{},total,,,,,,,{},{}\n",
        month.month,
        month.label,
        amount(month.claimable),
        amount(month.cut_by_entitlement)
    ));
    csv
}
