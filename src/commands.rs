//! Commands: a request to record a pathway event, checked against the current read models and
//! the caller's scope before anything is written. `decide` holds every rule; what it returns
//! is appended as it is.

use chrono::{DateTime, Utc};
use followfund_contracts::events::{PrescriptionIssued, PrescriptionWaitlisted};
use followfund_contracts::{Event, OdsCode, Role};
use followfund_projections::{
    AgreementVersion, Journey, Prescription, PrescriptionStatus, ReadModels, ReferralStatus,
    SessionState,
};
use uuid::Uuid;

use crate::api::auth::Principal;

/// Why a command was refused. Each reads as a sentence telling the caller what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The caller's role may not record this event at all.
    #[error("a {role} token cannot record `{event_type}`")]
    RoleCannotRecord {
        /// The caller's role.
        role: Role,
        /// The event type.
        event_type: &'static str,
    },
    /// The referral is held by another organisation.
    #[error(
        "referral {referral_id} is held by {holder}, not {caller}: only its link worker service records its steps"
    )]
    NotHolder {
        /// The referral.
        referral_id: Uuid,
        /// Who holds it.
        holder: String,
        /// Who asked.
        caller: String,
    },
    /// Only the prescribed provider records what happens at its sessions.
    #[error(
        "prescription {prescription_id} is with provider {provider}, not {caller}: only the prescribed provider records this"
    )]
    NotPrescribedProvider {
        /// The prescription.
        prescription_id: Uuid,
        /// Its provider.
        provider: String,
        /// Who asked.
        caller: String,
    },
    /// A referral can only be received for the caller's own link worker service.
    #[error(
        "{caller} cannot receive a referral for {link_worker_organisation}: name your own organisation as link_worker_organisation"
    )]
    ReceiveForAnother {
        /// Who asked.
        caller: String,
        /// The organisation named.
        link_worker_organisation: String,
    },
    /// No referral has this id.
    #[error("no referral {0} is recorded: receive it first")]
    UnknownReferral(Uuid),
    /// The referral id is already taken.
    #[error("referral {0} is already recorded: use a new referral_id")]
    ReferralExists(Uuid),
    /// No prescription has this id.
    #[error("no prescription {0} is recorded: issue it first")]
    UnknownPrescription(Uuid),
    /// The prescription id is already taken.
    #[error("prescription {0} is already recorded: use a new prescription_id")]
    PrescriptionExists(Uuid),
    /// The organisation is not registered in the role the event needs.
    #[error("organisation {code} is not a registered {role}: register it first")]
    NotRegistered {
        /// The code named.
        code: String,
        /// The role needed.
        role: Role,
    },
    /// The referral is in a status that does not allow this step.
    #[error("referral {referral_id} is {status}, so `{event_type}` cannot be recorded")]
    ReferralStatusForbids {
        /// The referral.
        referral_id: Uuid,
        /// Its status.
        status: String,
        /// The event type.
        event_type: &'static str,
    },
    /// The prescription is in a status that does not allow this step.
    #[error(
        "prescription {prescription_id} is {status}, so `{event_type}` cannot be recorded (sessions need an accepted prescription)"
    )]
    PrescriptionStatusForbids {
        /// The prescription.
        prescription_id: Uuid,
        /// Its status.
        status: String,
        /// The event type.
        event_type: &'static str,
    },
    /// The session already has a record.
    #[error(
        "session {session_id} is already recorded as {state}: retract an attendance recorded in error first"
    )]
    SessionRecorded {
        /// The session.
        session_id: Uuid,
        /// What is recorded.
        state: String,
    },
    /// Only an attended session can be retracted.
    #[error("session {0} has no attendance to retract")]
    NothingToRetract(Uuid),
    /// The date is in the future.
    #[error("{at} is in the future: record events once they have happened")]
    InTheFuture {
        /// The date given.
        at: DateTime<Utc>,
    },
    /// The date is before the referral was received.
    #[error("{at} is before referral {referral_id} was received ({received_at})")]
    BeforeReferral {
        /// The date given.
        at: DateTime<Utc>,
        /// The referral.
        referral_id: Uuid,
        /// When it was received.
        received_at: DateTime<Utc>,
    },
    /// The provider answered after the agreement's response window closed.
    #[error(
        "the response window for prescription {prescription_id} closed at {closed_at}: a provider that has not answered by then is treated as declining, so record prescription.declined (no_response) and issue again"
    )]
    ResponseWindowClosed {
        /// The prescription.
        prescription_id: Uuid,
        /// When the window closed.
        closed_at: DateTime<Utc>,
    },
    /// The prescription names an agreement that does not exist.
    #[error("no agreement {0} is published: publish it with `followfund contracts publish`")]
    UnknownAgreement(Uuid),
    /// The agreement is between other organisations, or for other activities.
    #[error("agreement {agreement_id} does not cover this: {reason}")]
    AgreementDoesNotCover {
        /// The agreement.
        agreement_id: Uuid,
        /// What differs.
        reason: String,
    },
    /// No version of the agreement is in force on the date.
    #[error(
        "agreement {agreement_id} is not in force on {date}: issue under an agreement valid that day"
    )]
    NoAgreementInForce {
        /// The agreement.
        agreement_id: Uuid,
        /// The date of the prescription.
        date: chrono::NaiveDate,
    },
    /// The provider already holds as many open prescriptions as the agreement allows, counting
    /// those waiting ahead for a place.
    #[error(
        "provider {provider} has {open} open prescriptions and {waiting} waiting ahead under this agreement, against a capacity of {capacity}: ask to be waitlisted (waitlistIfFull), wait for a place, or prescribe elsewhere"
    )]
    ProviderAtCapacity {
        /// The provider.
        provider: String,
        /// Its capacity.
        capacity: u32,
        /// Its open prescriptions under the agreement.
        open: u32,
        /// Prescriptions waiting ahead of this one.
        waiting: u32,
    },
    /// A prescription was to wait for a place, but the provider has one free.
    #[error(
        "provider {provider} has room under this agreement ({open} open of {capacity}, none waiting ahead): issue the prescription instead"
    )]
    RoomToIssue {
        /// The provider.
        provider: String,
        /// Its capacity.
        capacity: u32,
        /// Its open prescriptions under the agreement.
        open: u32,
    },
    /// The anchor's available budget does not cover the prescription's maximum cost.
    #[error(
        "the prescription could cost up to {needed} but {anchor}'s {year} budget has {available} available: it is short by {shortfall}"
    )]
    BudgetWouldBeExceeded {
        /// The anchor.
        anchor: String,
        /// The financial year.
        year: String,
        /// The prescription's maximum cost.
        needed: followfund_contracts::Money,
        /// What the budget has available.
        available: followfund_contracts::Money,
        /// The difference.
        shortfall: followfund_contracts::Money,
    },
    /// Organisations and funding terms are not recorded through pathway commands.
    #[error(
        "organisations and funding terms are recorded by an administrator (`followfund org add`, `followfund contracts publish`), and ARRS facts through `arrsRecord`"
    )]
    NotAPathwayEvent,
}

/// What to append: the event and its stream. The stream must still be as the decision saw it:
/// new, or at the version it had at the read models' position.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The stream, `referral-<uuid>` for everything on a referral's pathway.
    pub stream: String,
    /// Whether the event starts its stream.
    pub starts_stream: bool,
    /// The event.
    pub event: Event,
}

/// The stream a referral's whole pathway is recorded in.
pub fn referral_stream(referral_id: Uuid) -> String {
    format!("referral-{referral_id}")
}

/// Checks `event`, to have happened at `occurred_at`, against the read models and the caller.
pub fn decide(
    models: &ReadModels,
    caller: &Principal,
    now: DateTime<Utc>,
    occurred_at: DateTime<Utc>,
    event: Event,
) -> Result<Decision, Rejection> {
    if occurred_at > now {
        return Err(Rejection::InTheFuture { at: occurred_at });
    }
    let event_type = event.type_name();
    let referral_id = match target(&event) {
        Target::NotPathway => return Err(Rejection::NotAPathwayEvent),
        Target::NewReferral(referral_id, holder) => {
            return decide_received(models, caller, referral_id, &holder, event);
        }
        Target::Prescription(id, expect) => {
            return provider_step(models, caller, id, occurred_at, event, expect);
        }
        Target::Session(id, session_id) => {
            return session_step(models, caller, id, session_id, occurred_at, event);
        }
        Target::Retraction(id, session_id) => {
            return retraction(models, caller, id, session_id, occurred_at, event);
        }
        Target::Ending(id) => return ending(models, caller, id, occurred_at, event),
        Target::Referral(referral_id) => referral_id,
    };
    let journey = held_by_caller(models, caller, referral_id, event_type)?;
    check_after_receipt(journey, occurred_at)?;
    check_referral_status(journey, event_type)?;
    match &event {
        Event::PrescriptionIssued(issue) => check_issue(models, journey, issue, occurred_at)?,
        Event::PrescriptionWaitlisted(waiting) => {
            check_waitlist(models, journey, waiting, occurred_at)?
        }
        Event::ReferralRedirected(redirect) => {
            registered_link_worker_service(models, &redirect.to_organisation)?
        }
        _ => {}
    }
    Ok(on_journey(journey, event))
}

/// As [`decide`], except that a new prescription refused only because its provider is full is
/// put on the agreement's waitlist instead: what a link worker asks for with `waitlistIfFull`.
pub fn decide_or_waitlist(
    models: &ReadModels,
    caller: &Principal,
    now: DateTime<Utc>,
    occurred_at: DateTime<Utc>,
    event: Event,
) -> Result<Decision, Rejection> {
    let refused = match decide(models, caller, now, occurred_at, event.clone()) {
        Err(refused @ Rejection::ProviderAtCapacity { .. }) => refused,
        decided => return decided,
    };
    match waitlisted(&event) {
        Some(waiting)
            if models
                .journeys
                .prescription(waiting.prescription_id)
                .is_none() =>
        {
            decide(
                models,
                caller,
                now,
                occurred_at,
                Event::PrescriptionWaitlisted(waiting),
            )
        }
        // Already waiting: it keeps its place in the queue.
        _ => Err(refused),
    }
}

/// The waitlist entry a funded issue becomes when its provider is full.
pub fn waitlisted(event: &Event) -> Option<PrescriptionWaitlisted> {
    match event {
        Event::PrescriptionIssued(issue) => Some(PrescriptionWaitlisted {
            prescription_id: issue.prescription_id,
            referral_id: issue.referral_id,
            provider: issue.provider.clone(),
            activity_type: issue.activity_type,
            agreement_id: issue.agreement_id?,
        }),
        _ => None,
    }
}

/// What an event acts on, read from it before it is moved into a decision.
enum Target {
    NotPathway,
    NewReferral(Uuid, OdsCode),
    Referral(Uuid),
    Prescription(Uuid, Expect),
    Session(Uuid, Uuid),
    Retraction(Uuid, Uuid),
    Ending(Uuid),
}

fn target(event: &Event) -> Target {
    match event {
        Event::OrganisationRegistered(_)
        | Event::BudgetAllocated(_)
        | Event::AgreementSigned(_)
        | Event::AgreementAmended(_)
        | Event::CapacityGrantAwarded(_)
        | Event::PaymentRunRecorded(_)
        | Event::ArrsRulesPublished(_)
        | Event::PcnRegistered(_)
        | Event::PcnPopulationRecorded(_)
        | Event::PcnArrsSumNotified(_)
        | Event::LinkWorkerEmployed(_)
        | Event::LinkWorkerWteChanged(_)
        | Event::LinkWorkerLeft(_)
        | Event::LinkWorkerCostPaid(_)
        | Event::ArrsClaimSubmitted(_)
        | Event::ArrsClaimPaid(_)
        | Event::SibContractPublished(_)
        | Event::CohortCostRecorded(_)
        | Event::SibOutcomeClaimed(_)
        | Event::SibOutcomeVerified(_)
        | Event::SibOutcomeWithdrawn(_)
        | Event::SibPaymentMade(_) => Target::NotPathway,
        Event::ReferralReceived(e) => {
            Target::NewReferral(e.referral_id, e.link_worker_organisation.clone())
        }
        Event::PrescriptionAccepted(e) => Target::Prescription(e.prescription_id, Expect::Issued),
        Event::PrescriptionDeclined(e) => Target::Prescription(e.prescription_id, Expect::Issued),
        Event::PrescriptionCompleted(e) => {
            Target::Prescription(e.prescription_id, Expect::Accepted)
        }
        Event::PrescriptionEnded(e) => Target::Ending(e.prescription_id),
        Event::SessionAttended(e) => Target::Session(e.prescription_id, e.session_id),
        Event::SessionMissed(e) => Target::Session(e.prescription_id, e.session_id),
        Event::SessionCancelled(e) => Target::Session(e.prescription_id, e.session_id),
        Event::SessionRetracted(e) => Target::Retraction(e.prescription_id, e.session_id),
        Event::ReferralAccepted(e) => Target::Referral(e.referral_id),
        Event::ReferralDeclined(e) => Target::Referral(e.referral_id),
        Event::ReferralRedirected(e) => Target::Referral(e.referral_id),
        Event::AssessmentHeld(e) => Target::Referral(e.referral_id),
        Event::PlanAgreed(e) => Target::Referral(e.referral_id),
        Event::PlanAmended(e) => Target::Referral(e.referral_id),
        Event::PrescriptionIssued(e) => Target::Referral(e.referral_id),
        Event::PrescriptionWaitlisted(e) => Target::Referral(e.referral_id),
        Event::OutcomeMeasured(e) => Target::Referral(e.referral_id),
        Event::ReferralReferredBack(e) => Target::Referral(e.referral_id),
        Event::CaseClosed(e) => Target::Referral(e.referral_id),
    }
}

/// Which prescription status a provider's step needs.
#[derive(Clone, Copy)]
enum Expect {
    Issued,
    Accepted,
}

fn decide_received(
    models: &ReadModels,
    caller: &Principal,
    referral_id: Uuid,
    link_worker_organisation: &OdsCode,
    event: Event,
) -> Result<Decision, Rejection> {
    link_worker_role(caller, event.type_name())?;
    if caller.role != Role::Admin && caller.organisation != link_worker_organisation.as_str() {
        return Err(Rejection::ReceiveForAnother {
            caller: caller.organisation.clone(),
            link_worker_organisation: link_worker_organisation.as_str().to_string(),
        });
    }
    if models.journeys.journey(referral_id).is_some() {
        return Err(Rejection::ReferralExists(referral_id));
    }
    registered_link_worker_service(models, link_worker_organisation)?;
    Ok(Decision {
        stream: referral_stream(referral_id),
        starts_stream: true,
        event,
    })
}

/// A new prescription, or a waiting one issued now that its turn has come. A funded one needs
/// the holder's agreement with the provider for the activity, in force on the day, with room
/// under its capacity and the budget to cover its maximum cost.
fn check_issue(
    models: &ReadModels,
    journey: &Journey,
    issue: &PrescriptionIssued,
    occurred_at: DateTime<Utc>,
) -> Result<(), Rejection> {
    if let Some(known) = models.journeys.prescription(issue.prescription_id) {
        let from_waitlist = known.status == PrescriptionStatus::Waitlisted
            && models.journeys.journey_of(known).referral_id == issue.referral_id
            && *models.journeys.provider(known) == issue.provider
            && known.activity_type == issue.activity_type
            && models.journeys.agreement_id(known) == issue.agreement_id;
        if !from_waitlist {
            return Err(Rejection::PrescriptionExists(issue.prescription_id));
        }
    }
    if issue.provider != *models.journeys.link_worker_organisation(journey) {
        registered(models, &issue.provider, Role::Provider)?;
    }
    let Some(agreement_id) = issue.agreement_id else {
        return Ok(());
    };
    let terms = Offer::of(issue);
    let version = check_agreement(models, journey, &terms, agreement_id, occurred_at)?;
    let place = Place::under(models, agreement_id, issue.prescription_id);
    if place.open + place.ahead >= version.capacity {
        return Err(Rejection::ProviderAtCapacity {
            provider: issue.provider.as_str().to_string(),
            capacity: version.capacity,
            open: place.open,
            waiting: place.ahead,
        });
    }
    check_budget(models, journey, version, occurred_at)
}

/// A prescription may wait for a place only when its provider is full under the agreement.
fn check_waitlist(
    models: &ReadModels,
    journey: &Journey,
    waiting: &PrescriptionWaitlisted,
    occurred_at: DateTime<Utc>,
) -> Result<(), Rejection> {
    if models
        .journeys
        .prescription(waiting.prescription_id)
        .is_some()
    {
        return Err(Rejection::PrescriptionExists(waiting.prescription_id));
    }
    registered(models, &waiting.provider, Role::Provider)?;
    let issue = waiting.issue();
    let terms = Offer::of(&issue);
    let version = check_agreement(models, journey, &terms, waiting.agreement_id, occurred_at)?;
    let place = Place::under(models, waiting.agreement_id, waiting.prescription_id);
    if place.open + place.ahead < version.capacity {
        return Err(Rejection::RoomToIssue {
            provider: waiting.provider.as_str().to_string(),
            capacity: version.capacity,
            open: place.open,
        });
    }
    Ok(())
}

/// Who is offered a place, and for what.
struct Offer<'a> {
    provider: &'a OdsCode,
    activity_type: followfund_contracts::events::ActivityType,
}

impl<'a> Offer<'a> {
    fn of(issue: &'a PrescriptionIssued) -> Offer<'a> {
        Offer {
            provider: &issue.provider,
            activity_type: issue.activity_type,
        }
    }
}

/// A prescription's standing against its agreement's capacity: the places taken, and those
/// waiting ahead of it (everyone waiting, for a prescription not in the queue).
struct Place {
    open: u32,
    ahead: u32,
}

impl Place {
    fn under(models: &ReadModels, agreement_id: Uuid, prescription_id: Uuid) -> Place {
        let queue = models.ledger.waiting_under(agreement_id);
        let ahead = queue
            .iter()
            .position(|id| *id == prescription_id)
            .unwrap_or(queue.len());
        Place {
            open: models.ledger.open_under(agreement_id),
            ahead: u32::try_from(ahead).expect("far fewer than 2^32 waiting"),
        }
    }
}

/// The holder's agreement with the provider for the activity, and its version in force on the day.
fn check_agreement<'m>(
    models: &'m ReadModels,
    journey: &Journey,
    issue: &Offer<'_>,
    agreement_id: Uuid,
    occurred_at: DateTime<Utc>,
) -> Result<&'m AgreementVersion, Rejection> {
    let agreement = models
        .ledger
        .agreements
        .get(agreement_id)
        .ok_or(Rejection::UnknownAgreement(agreement_id))?;
    let covers = |reason: String| Rejection::AgreementDoesNotCover {
        agreement_id,
        reason,
    };
    let holder = models.journeys.link_worker_organisation(journey);
    if agreement.anchor != *holder {
        return Err(covers(format!(
            "it is {}'s agreement, and the referral is held by {}",
            agreement.anchor.as_str(),
            holder.as_str()
        )));
    }
    if &agreement.provider != issue.provider {
        return Err(covers(format!(
            "it is with {}, not {}",
            agreement.provider.as_str(),
            issue.provider.as_str()
        )));
    }
    if !agreement.activity_types.contains(&issue.activity_type) {
        return Err(covers("the activity is not one it lists".into()));
    }
    let date = occurred_at.date_naive();
    agreement
        .in_force(date)
        .ok_or(Rejection::NoAgreementInForce { agreement_id, date })
}

/// The holder's budget for the year must cover the prescription's maximum cost.
fn check_budget(
    models: &ReadModels,
    journey: &Journey,
    version: &AgreementVersion,
    occurred_at: DateTime<Utc>,
) -> Result<(), Rejection> {
    let anchor = models.journeys.link_worker_organisation(journey);
    let year = followfund_contracts::terms::FinancialYear::containing(occurred_at.date_naive());
    let available = models.ledger.budget_position(anchor, year).available;
    let needed = version.tariff.maximum_cost();
    if available < needed {
        let shortfall = needed.checked_sub(available).expect("small sums");
        return Err(Rejection::BudgetWouldBeExceeded {
            anchor: anchor.as_str().to_string(),
            year: year.to_string(),
            needed,
            available,
            shortfall,
        });
    }
    Ok(())
}

/// The referral, when the caller is its link worker service (or an administrator).
fn held_by_caller<'m>(
    models: &'m ReadModels,
    caller: &Principal,
    referral_id: Uuid,
    event_type: &'static str,
) -> Result<&'m Journey, Rejection> {
    link_worker_role(caller, event_type)?;
    let journey = models
        .journeys
        .journey(referral_id)
        .ok_or(Rejection::UnknownReferral(referral_id))?;
    let holder = models.journeys.link_worker_organisation(journey).as_str();
    if caller.role != Role::Admin && caller.organisation != holder {
        return Err(Rejection::NotHolder {
            referral_id,
            holder: holder.to_string(),
            caller: caller.organisation.clone(),
        });
    }
    Ok(journey)
}

fn link_worker_role(caller: &Principal, event_type: &'static str) -> Result<(), Rejection> {
    match caller.role {
        Role::Anchor | Role::Pcn | Role::Provider | Role::Admin => Ok(()),
        role => Err(Rejection::RoleCannotRecord { role, event_type }),
    }
}

fn check_referral_status(journey: &Journey, event_type: &'static str) -> Result<(), Rejection> {
    let allowed = match event_type {
        "referral.accepted" | "referral.declined" | "referral.redirected" => matches!(
            journey.status,
            ReferralStatus::Received | ReferralStatus::Redirected | ReferralStatus::ReferredBack
        ),
        "prescription.issued" | "assessment.held" | "plan.agreed" | "plan.amended" => {
            journey.status == ReferralStatus::Accepted
        }
        _ => journey.status.is_open(),
    };
    if allowed {
        Ok(())
    } else {
        Err(Rejection::ReferralStatusForbids {
            referral_id: journey.referral_id,
            status: crate::wire_name(&journey.status),
            event_type,
        })
    }
}

fn check_after_receipt(journey: &Journey, at: DateTime<Utc>) -> Result<(), Rejection> {
    if at < journey.received_at {
        return Err(Rejection::BeforeReferral {
            at,
            referral_id: journey.referral_id,
            received_at: journey.received_at,
        });
    }
    Ok(())
}

fn registered(models: &ReadModels, code: &OdsCode, role: Role) -> Result<(), Rejection> {
    match models.organisations.get(code) {
        Some(organisation) if organisation.role == role => Ok(()),
        _ => Err(Rejection::NotRegistered {
            code: code.as_str().to_string(),
            role,
        }),
    }
}

fn registered_link_worker_service(models: &ReadModels, code: &OdsCode) -> Result<(), Rejection> {
    match models
        .organisations
        .get(code)
        .map(|organisation| organisation.role)
    {
        Some(Role::Anchor | Role::Pcn | Role::Provider) => Ok(()),
        _ => Err(Rejection::NotRegistered {
            code: code.as_str().to_string(),
            role: Role::Anchor,
        }),
    }
}

/// A step on the prescription's own status, recorded by its provider.
fn provider_step(
    models: &ReadModels,
    caller: &Principal,
    prescription_id: Uuid,
    occurred_at: DateTime<Utc>,
    event: Event,
    expect: Expect,
) -> Result<Decision, Rejection> {
    let (journey, prescription) =
        prescribed_to_caller(models, caller, prescription_id, event.type_name())?;
    check_after_receipt(journey, occurred_at)?;
    let wanted = match expect {
        Expect::Issued => PrescriptionStatus::Issued,
        Expect::Accepted => PrescriptionStatus::Accepted,
    };
    if prescription.status != wanted {
        return Err(prescription_forbids(prescription, event.type_name()));
    }
    if let Event::PrescriptionAccepted(_) = event {
        check_response_window(models, prescription, occurred_at)?;
    }
    Ok(on_journey(journey, event))
}

/// A provider that has not answered within its agreement's response window is treated as
/// having declined: a late acceptance is refused, and the prescription should be issued again.
fn check_response_window(
    models: &ReadModels,
    prescription: &Prescription,
    at: DateTime<Utc>,
) -> Result<(), Rejection> {
    let Some(agreement_id) = models.journeys.agreement_id(prescription) else {
        return Ok(());
    };
    let Some(agreement) = models.ledger.agreements.get(agreement_id) else {
        return Ok(());
    };
    let closed_at =
        prescription.issued_at + chrono::Duration::days(i64::from(agreement.response_window_days));
    if at > closed_at {
        return Err(Rejection::ResponseWindowClosed {
            prescription_id: prescription.prescription_id,
            closed_at,
        });
    }
    Ok(())
}

/// Ending early may come from the provider or from the referral's link worker service.
fn ending(
    models: &ReadModels,
    caller: &Principal,
    prescription_id: Uuid,
    occurred_at: DateTime<Utc>,
    event: Event,
) -> Result<Decision, Rejection> {
    let prescription = models
        .journeys
        .prescription(prescription_id)
        .ok_or(Rejection::UnknownPrescription(prescription_id))?;
    let journey = models.journeys.journey_of(prescription);
    let holder = models.journeys.link_worker_organisation(journey);
    let is_holder = holder.as_str() == caller.organisation;
    if !is_holder {
        prescribed_to_caller(models, caller, prescription_id, event.type_name())?;
    }
    check_after_receipt(journey, occurred_at)?;
    // A waiting prescription ends when the person no longer wants the place.
    if !prescription.status.is_open() && prescription.status != PrescriptionStatus::Waitlisted {
        return Err(prescription_forbids(prescription, event.type_name()));
    }
    Ok(on_journey(journey, event))
}

fn session_step(
    models: &ReadModels,
    caller: &Principal,
    prescription_id: Uuid,
    session_id: Uuid,
    occurred_at: DateTime<Utc>,
    event: Event,
) -> Result<Decision, Rejection> {
    let (journey, prescription) =
        prescribed_to_caller(models, caller, prescription_id, event.type_name())?;
    check_after_receipt(journey, occurred_at)?;
    if prescription.status != PrescriptionStatus::Accepted {
        return Err(prescription_forbids(prescription, event.type_name()));
    }
    if let Some(session) = prescription
        .session(session_id)
        .filter(|s| s.state != SessionState::Retracted)
    {
        return Err(Rejection::SessionRecorded {
            session_id,
            state: format!("{:?}", session.state).to_lowercase(),
        });
    }
    Ok(on_journey(journey, event))
}

fn retraction(
    models: &ReadModels,
    caller: &Principal,
    prescription_id: Uuid,
    session_id: Uuid,
    occurred_at: DateTime<Utc>,
    event: Event,
) -> Result<Decision, Rejection> {
    let (journey, prescription) =
        prescribed_to_caller(models, caller, prescription_id, event.type_name())?;
    check_after_receipt(journey, occurred_at)?;
    match prescription.session(session_id) {
        Some(session) if session.state == SessionState::Attended => Ok(on_journey(journey, event)),
        _ => Err(Rejection::NothingToRetract(session_id)),
    }
}

fn prescribed_to_caller<'m>(
    models: &'m ReadModels,
    caller: &Principal,
    prescription_id: Uuid,
    event_type: &'static str,
) -> Result<(&'m Journey, &'m Prescription), Rejection> {
    if !matches!(caller.role, Role::Provider | Role::Anchor | Role::Admin) {
        return Err(Rejection::RoleCannotRecord {
            role: caller.role,
            event_type,
        });
    }
    let prescription = models
        .journeys
        .prescription(prescription_id)
        .ok_or(Rejection::UnknownPrescription(prescription_id))?;
    let provider = models.journeys.provider(prescription);
    if caller.role != Role::Admin && provider.as_str() != caller.organisation {
        return Err(Rejection::NotPrescribedProvider {
            prescription_id,
            provider: provider.as_str().to_string(),
            caller: caller.organisation.clone(),
        });
    }
    let journey = models.journeys.journey_of(prescription);
    Ok((journey, prescription))
}

fn prescription_forbids(prescription: &Prescription, event_type: &'static str) -> Rejection {
    Rejection::PrescriptionStatusForbids {
        prescription_id: prescription.prescription_id,
        status: format!("{:?}", prescription.status).to_lowercase(),
        event_type,
    }
}

/// Every event of a referral's pathway goes to its stream, at the version the decision saw.
fn on_journey(journey: &Journey, event: Event) -> Decision {
    Decision {
        stream: referral_stream(journey.referral_id),
        starts_stream: false,
        event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use followfund_projections::Fact;
    use serde_json::{Value, json};

    const R1: Uuid = Uuid::from_u128(1);
    const P1: Uuid = Uuid::from_u128(2);
    const S1: Uuid = Uuid::from_u128(3);

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap()
    }

    fn event(event_type: &str, data: Value) -> Event {
        Event::decode(event_type, 1, data).unwrap()
    }

    fn caller(organisation: &str, role: Role) -> Principal {
        Principal {
            organisation: organisation.into(),
            role,
        }
    }

    /// Folds `events`, one an hour from `start()`.
    fn given(events: Vec<Event>) -> ReadModels {
        let mut models = ReadModels::default();
        let mut all = vec![
            registered("ANC01", "anchor"),
            registered("ANC02", "anchor"),
            registered("VCS01", "provider"),
            registered("VCS02", "provider"),
        ];
        all.extend(events);
        for (index, event) in all.into_iter().enumerate() {
            let position = index as u64 + 1;
            let occurred_at = start() + Duration::hours(position as i64);
            let fact = Fact {
                position,
                occurred_at,
                event,
            };
            models.apply(&fact);
        }
        models
    }

    fn registered(code: &str, role: &str) -> Event {
        event(
            "organisation.registered",
            json!({"organisation": code, "name": code, "role": role, "nation": "england", "parent": null}),
        )
    }

    fn received(referral_id: Uuid, holder: &str) -> Event {
        event(
            "referral.received",
            json!({
                "referral_id": referral_id, "person_id": Uuid::from_u128(99), "source": "self_referral", "referrer": null,
                "link_worker_organisation": holder, "reasons": ["loneliness"], "age_band": "65-74", "conditions": [],
            }),
        )
    }

    fn on_referral(event_type: &str, referral_id: Uuid) -> Event {
        event(event_type, json!({"referral_id": referral_id}))
    }

    fn issued(provider: &str) -> Event {
        event(
            "prescription.issued",
            json!({"prescription_id": P1, "referral_id": R1, "provider": provider, "activity_type": "walking", "agreement_id": null}),
        )
    }

    fn on_prescription(event_type: &str) -> Event {
        event(event_type, json!({"prescription_id": P1}))
    }

    fn attended(session_id: Uuid) -> Event {
        event(
            "session.attended",
            json!({"prescription_id": P1, "session_id": session_id}),
        )
    }

    fn retracted(session_id: Uuid) -> Event {
        event(
            "session.retracted",
            json!({"prescription_id": P1, "session_id": session_id, "reason": "recorded_in_error"}),
        )
    }

    /// A referral held by ANC01, accepted, with a prescription to VCS01 that VCS01 accepted.
    fn running() -> Vec<Event> {
        vec![
            received(R1, "ANC01"),
            on_referral("referral.accepted", R1),
            issued("VCS01"),
            on_prescription("prescription.accepted"),
        ]
    }

    fn when(models: &ReadModels, who: &Principal, command: Event) -> Result<Decision, Rejection> {
        let now = start() + Duration::days(30);
        decide(models, who, now, now - Duration::days(1), command)
    }

    #[test]
    fn the_holder_accepts_a_referral_on_its_stream() {
        let models = given(vec![received(R1, "ANC01")]);
        let decision = when(
            &models,
            &caller("ANC01", Role::Anchor),
            on_referral("referral.accepted", R1),
        )
        .unwrap();
        assert_eq!(decision.stream, referral_stream(R1));
        assert!(!decision.starts_stream);
    }

    #[test]
    fn a_new_referral_starts_its_stream() {
        let decision = when(
            &given(vec![]),
            &caller("ANC01", Role::Anchor),
            received(R1, "ANC01"),
        )
        .unwrap();
        assert!(decision.starts_stream);
    }

    #[test]
    fn an_auditor_records_nothing() {
        let refused = when(
            &given(vec![]),
            &caller("AUD01", Role::Auditor),
            received(R1, "ANC01"),
        );
        assert_eq!(
            refused,
            Err(Rejection::RoleCannotRecord {
                role: Role::Auditor,
                event_type: "referral.received"
            })
        );
    }

    #[test]
    fn only_the_holder_records_a_referrals_steps() {
        let models = given(vec![received(R1, "ANC01")]);
        let refused = when(
            &models,
            &caller("ANC02", Role::Anchor),
            on_referral("referral.accepted", R1),
        );
        assert!(
            matches!(refused, Err(Rejection::NotHolder { ref holder, .. }) if holder == "ANC01"),
            "{refused:?}"
        );
    }

    #[test]
    fn a_referral_is_received_for_ones_own_service() {
        let refused = when(
            &given(vec![]),
            &caller("ANC02", Role::Anchor),
            received(R1, "ANC01"),
        );
        assert!(
            matches!(refused, Err(Rejection::ReceiveForAnother { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn referral_and_prescription_ids_are_not_reused() {
        let models = given(running());
        assert_eq!(
            when(
                &models,
                &caller("ANC01", Role::Anchor),
                received(R1, "ANC01")
            ),
            Err(Rejection::ReferralExists(R1))
        );
        assert_eq!(
            when(&models, &caller("ANC01", Role::Anchor), issued("VCS01")),
            Err(Rejection::PrescriptionExists(P1))
        );
    }

    #[test]
    fn unknown_referrals_and_prescriptions_are_named() {
        let models = given(vec![]);
        assert_eq!(
            when(
                &models,
                &caller("ANC01", Role::Anchor),
                on_referral("referral.accepted", R1)
            ),
            Err(Rejection::UnknownReferral(R1))
        );
        assert_eq!(
            when(&models, &caller("VCS01", Role::Provider), attended(S1)),
            Err(Rejection::UnknownPrescription(P1))
        );
    }

    #[test]
    fn a_prescription_goes_to_a_registered_provider() {
        let models = given(vec![
            received(R1, "ANC01"),
            on_referral("referral.accepted", R1),
        ]);
        let refused = when(&models, &caller("ANC01", Role::Anchor), issued("ANC02"));
        assert_eq!(
            refused,
            Err(Rejection::NotRegistered {
                code: "ANC02".into(),
                role: Role::Provider
            })
        );
    }

    #[test]
    fn a_declined_referral_takes_no_prescription() {
        let declined = event(
            "referral.declined",
            json!({"referral_id": R1, "reason": "not_eligible"}),
        );
        let models = given(vec![received(R1, "ANC01"), declined]);
        let refused = when(&models, &caller("ANC01", Role::Anchor), issued("VCS01"));
        assert!(
            matches!(refused, Err(Rejection::ReferralStatusForbids { ref status, .. }) if status == "declined"),
            "{refused:?}"
        );
    }

    #[test]
    fn a_session_needs_an_accepted_prescription() {
        let models = given(vec![
            received(R1, "ANC01"),
            on_referral("referral.accepted", R1),
            issued("VCS01"),
        ]);
        let refused = when(&models, &caller("VCS01", Role::Provider), attended(S1));
        assert!(
            matches!(refused, Err(Rejection::PrescriptionStatusForbids { ref status, .. }) if status == "issued"),
            "{refused:?}"
        );
    }

    #[test]
    fn only_the_prescribed_provider_records_attendance() {
        let models = given(running());
        let refused = when(&models, &caller("VCS02", Role::Provider), attended(S1));
        assert!(
            matches!(refused, Err(Rejection::NotPrescribedProvider { ref provider, .. }) if provider == "VCS01"),
            "{refused:?}"
        );
        assert!(when(&models, &caller("VCS01", Role::Provider), attended(S1)).is_ok());
    }

    #[test]
    fn a_session_is_recorded_once_until_retracted() {
        let mut history = running();
        history.push(attended(S1));
        let models = given(history.clone());
        let refused = when(&models, &caller("VCS01", Role::Provider), attended(S1));
        assert!(
            matches!(refused, Err(Rejection::SessionRecorded { .. })),
            "{refused:?}"
        );
        history.push(retracted(S1));
        assert!(
            when(
                &given(history),
                &caller("VCS01", Role::Provider),
                attended(S1)
            )
            .is_ok()
        );
    }

    #[test]
    fn only_an_attendance_can_be_retracted() {
        let models = given(running());
        assert_eq!(
            when(&models, &caller("VCS01", Role::Provider), retracted(S1)),
            Err(Rejection::NothingToRetract(S1))
        );
    }

    #[test]
    fn dates_are_neither_in_the_future_nor_before_the_referral() {
        let models = given(running());
        let now = start() + Duration::days(30);
        let who = caller("VCS01", Role::Provider);
        let future = decide(&models, &who, now, now + Duration::seconds(1), attended(S1));
        assert!(
            matches!(future, Err(Rejection::InTheFuture { .. })),
            "{future:?}"
        );
        let early = decide(&models, &who, now, start(), attended(S1));
        assert!(
            matches!(early, Err(Rejection::BeforeReferral { .. })),
            "{early:?}"
        );
    }

    const AGREEMENT: Uuid = Uuid::from_u128(40);
    const R2: Uuid = Uuid::from_u128(5);

    fn budget(amount: &str) -> Event {
        event(
            "budget.allocated",
            json!({
                "allocation_id": Uuid::from_u128(50), "commissioner": "ANC02", "anchor": "ANC01",
                "financial_year": "2026/27", "account": "activities", "amount": amount,
            }),
        )
    }

    fn agreement(capacity: u32, valid_from: &str) -> Event {
        event(
            "agreement.signed",
            json!({
                "agreement_id": AGREEMENT, "anchor": "ANC01", "provider": "VCS01", "valid_from": valid_from,
                "valid_to": "2027-03-31", "capacity": capacity, "response_window_days": 5, "activity_types": ["walking"],
                "tariff": {"engagement_fee": "25.00", "session_fee": "15.00", "funded_sessions": 10,
                           "completion_fee": "50.00", "completion_min_sessions": 8, "cap_per_referral": "200.00"},
            }),
        )
    }

    fn funded(prescription_id: Uuid, referral_id: Uuid) -> Event {
        event(
            "prescription.issued",
            json!({
                "prescription_id": prescription_id, "referral_id": referral_id, "provider": "VCS01",
                "activity_type": "walking", "agreement_id": AGREEMENT,
            }),
        )
    }

    fn accepted_referrals() -> Vec<Event> {
        vec![
            received(R1, "ANC01"),
            on_referral("referral.accepted", R1),
            received(R2, "ANC01"),
            on_referral("referral.accepted", R2),
        ]
    }

    #[test]
    fn a_funded_prescription_needs_an_agreement_budget_and_room() {
        let mut history = vec![budget("1000.00"), agreement(1, "2026-04-01")];
        history.extend(accepted_referrals());
        let models = given(history.clone());
        let anchor = caller("ANC01", Role::Anchor);
        assert!(when(&models, &anchor, funded(P1, R1)).is_ok());
        history.push(funded(P1, R1));
        let refused = when(&given(history), &anchor, funded(Uuid::from_u128(6), R2));
        assert_eq!(
            refused,
            Err(Rejection::ProviderAtCapacity {
                provider: "VCS01".into(),
                capacity: 1,
                open: 1,
                waiting: 0,
            })
        );
    }

    fn decided_or_waitlisted(models: &ReadModels, command: Event) -> Result<Event, Rejection> {
        let now = start() + Duration::days(30);
        let anchor = caller("ANC01", Role::Anchor);
        decide_or_waitlist(models, &anchor, now, now - Duration::days(1), command).map(|d| d.event)
    }

    /// Capacity 1: P1 holds the place, P2 and P3 queue behind it in that order, and once P1 ends
    /// only P2, first in the queue, may take the place; a newcomer queues behind P3.
    #[test]
    fn a_full_provider_waitlists_on_request_and_frees_places_first_come_first_served() {
        let (p2, p3, p4) = (
            Uuid::from_u128(62),
            Uuid::from_u128(63),
            Uuid::from_u128(64),
        );
        let (r3, r4) = (Uuid::from_u128(73), Uuid::from_u128(74));
        let mut history = vec![budget("1000.00"), agreement(1, "2026-04-01")];
        history.extend(accepted_referrals());
        for referral in [r3, r4] {
            history.extend([
                received(referral, "ANC01"),
                on_referral("referral.accepted", referral),
            ]);
        }
        history.push(funded(P1, R1));
        let waiting = decided_or_waitlisted(&given(history.clone()), funded(p2, R2)).unwrap();
        assert_eq!(waiting.type_name(), "prescription.waitlisted");
        history.push(waiting);
        history.push(decided_or_waitlisted(&given(history.clone()), funded(p3, r3)).unwrap());
        let models = given(history.clone());
        assert_eq!(models.ledger.waiting_under(AGREEMENT), [p2, p3]);
        assert_eq!(models.ledger.open_under(AGREEMENT), 1);
        let status = models.journeys.prescription(p2).unwrap().status;
        assert_eq!(status, PrescriptionStatus::Waitlisted);
        // Waiting commits nothing: only P1's £200.00 maximum is set aside.
        let year = followfund_contracts::terms::FinancialYear::containing(start().date_naive());
        let anchor_code = OdsCode::parse("ANC01").unwrap();
        let position = models.ledger.budget_position(&anchor_code, year);
        assert_eq!(position.committed.to_string(), "£200.00");
        // Still full: P3 cannot jump the queue, and keeps its place rather than queueing twice.
        let anchor = caller("ANC01", Role::Anchor);
        assert!(matches!(
            decided_or_waitlisted(&models, funded(p3, r3)),
            Err(Rejection::ProviderAtCapacity {
                open: 1,
                waiting: 1,
                ..
            })
        ));
        history.push(event(
            "prescription.ended",
            json!({"prescription_id": P1, "reason": "person_withdrew"}),
        ));
        let models = given(history.clone());
        assert!(matches!(
            when(&models, &anchor, funded(p3, r3)),
            Err(Rejection::ProviderAtCapacity {
                open: 0,
                waiting: 1,
                ..
            })
        ));
        assert!(matches!(
            when(&models, &anchor, funded(p4, r4)),
            Err(Rejection::ProviderAtCapacity {
                open: 0,
                waiting: 2,
                ..
            })
        ));
        let issued = when(&models, &anchor, funded(p2, R2)).unwrap().event;
        history.push(issued);
        let models = given(history);
        assert_eq!(models.ledger.waiting_under(AGREEMENT), [p3]);
        assert_eq!(
            models.journeys.prescription(p2).unwrap().status,
            PrescriptionStatus::Issued
        );
        let position = models.ledger.budget_position(&anchor_code, year);
        assert_eq!(position.committed.to_string(), "£200.00");
        assert_eq!(position.available.to_string(), "£800.00");
    }

    #[test]
    fn a_prescription_waits_only_when_the_provider_is_full_and_may_leave_the_queue() {
        let mut history = vec![budget("1000.00"), agreement(1, "2026-04-01")];
        history.extend(accepted_referrals());
        let anchor = caller("ANC01", Role::Anchor);
        let wait = commands_waitlisted(funded(P1, R1));
        let room = when(&given(history.clone()), &anchor, wait.clone());
        assert!(
            matches!(
                room,
                Err(Rejection::RoomToIssue {
                    open: 0,
                    capacity: 1,
                    ..
                })
            ),
            "{room:?}"
        );
        // With room, asking to wait if full simply issues.
        let first = decided_or_waitlisted(&given(history.clone()), funded(P1, R1)).unwrap();
        assert_eq!(first.type_name(), "prescription.issued");
        history.push(first);
        let p2 = Uuid::from_u128(62);
        history.push(commands_waitlisted(funded(p2, R2)));
        let models = given(history.clone());
        assert_eq!(models.ledger.waiting_under(AGREEMENT), [p2]);
        let withdraw = event(
            "prescription.ended",
            json!({"prescription_id": p2, "reason": "person_withdrew"}),
        );
        let provider = caller("VCS02", Role::Provider);
        assert!(matches!(
            when(&models, &provider, withdraw.clone()),
            Err(Rejection::NotPrescribedProvider { .. })
        ));
        history.push(when(&models, &anchor, withdraw).unwrap().event);
        let models = given(history);
        assert!(models.ledger.waiting_under(AGREEMENT).is_empty());
        assert_eq!(
            models.journeys.prescription(p2).unwrap().status,
            PrescriptionStatus::Ended
        );
        // An unfunded issue has no queue to join.
        assert_eq!(waitlisted(&issued("VCS01")), None);
    }

    fn commands_waitlisted(issue: Event) -> Event {
        Event::PrescriptionWaitlisted(waitlisted(&issue).expect("a funded issue"))
    }

    #[test]
    fn a_provider_silent_past_the_response_window_has_declined() {
        let mut history = vec![budget("1000.00"), agreement(5, "2026-04-01")];
        history.extend(accepted_referrals());
        history.push(funded(P1, R1));
        let models = given(history);
        let issued_at = models.journeys.prescription(P1).unwrap().issued_at;
        let provider = caller("VCS01", Role::Provider);
        let accept = || on_prescription("prescription.accepted");
        let now = issued_at + Duration::days(30);
        let in_time = decide(
            &models,
            &provider,
            now,
            issued_at + Duration::days(5),
            accept(),
        );
        assert!(in_time.is_ok(), "{in_time:?}");
        let late = decide(
            &models,
            &provider,
            now,
            issued_at + Duration::days(5) + Duration::seconds(1),
            accept(),
        );
        assert!(
            matches!(late, Err(Rejection::ResponseWindowClosed { .. })),
            "{late:?}"
        );
    }

    #[test]
    fn a_budget_short_of_the_maximum_cost_is_refused_with_the_shortfall() {
        let mut history = vec![budget("150.00"), agreement(5, "2026-04-01")];
        history.extend(accepted_referrals());
        let refused = when(
            &given(history),
            &caller("ANC01", Role::Anchor),
            funded(P1, R1),
        );
        let Err(Rejection::BudgetWouldBeExceeded {
            shortfall, needed, ..
        }) = &refused
        else {
            panic!("{refused:?}")
        };
        assert_eq!(
            (needed.to_string(), shortfall.to_string()),
            ("£200.00".to_string(), "£50.00".to_string())
        );
        assert!(refused.unwrap_err().to_string().contains("short by £50.00"));
    }

    #[test]
    fn an_agreement_must_be_in_force_and_cover_the_prescription() {
        let mut history = vec![budget("1000.00"), agreement(5, "2026-06-01")];
        history.extend(accepted_referrals());
        let models = given(history);
        let anchor = caller("ANC01", Role::Anchor);
        let refused = when(&models, &anchor, funded(P1, R1));
        assert!(
            matches!(refused, Err(Rejection::NoAgreementInForce { .. })),
            "{refused:?}"
        );
        let unknown = event(
            "prescription.issued",
            json!({
                "prescription_id": P1, "referral_id": R1, "provider": "VCS01", "activity_type": "walking", "agreement_id": Uuid::from_u128(77),
            }),
        );
        assert_eq!(
            when(&models, &anchor, unknown),
            Err(Rejection::UnknownAgreement(Uuid::from_u128(77)))
        );
        let other_provider = event(
            "prescription.issued",
            json!({
                "prescription_id": P1, "referral_id": R1, "provider": "VCS02", "activity_type": "walking", "agreement_id": AGREEMENT,
            }),
        );
        assert!(matches!(
            when(&models, &anchor, other_provider),
            Err(Rejection::AgreementDoesNotCover { .. })
        ));
    }

    #[test]
    fn organisations_are_not_registered_through_commands() {
        let refused = when(
            &given(vec![]),
            &caller("ADM01", Role::Admin),
            registered("VCS09", "provider"),
        );
        assert_eq!(refused, Err(Rejection::NotAPathwayEvent));
    }
}
