//! Scope: what each organisation, in its role, may see of the ledger.

use followfund_contracts::{OdsCode, Role};
use followfund_projections::{Journey, ReadModels};
use uuid::Uuid;

use super::auth::Principal;

/// Who may see a referral: its link worker service, providers it was prescribed to, the
/// commissioner above its service, auditors and administrators. Never an investor.
pub fn can_see(models: &ReadModels, caller: &Principal, journey: &Journey) -> bool {
    let journeys = &models.journeys;
    let holder = journeys.link_worker_organisation(journey);
    match caller.role {
        Role::Admin | Role::Auditor => true,
        Role::Investor | Role::Verifier => false,
        Role::Commissioner => reports_to(models, holder, &caller.organisation),
        Role::Anchor | Role::Pcn | Role::Provider => {
            holder.as_str() == caller.organisation
                || (journeys.prescriptions_of(journey))
                    .any(|p| journeys.provider(p).as_str() == caller.organisation)
        }
    }
}

/// Whether the caller may see an event of `stream`: organisation registrations are a public
/// directory; a referral's events follow the referral; anything else is for auditors and
/// administrators.
pub fn can_see_stream(models: &ReadModels, caller: &Principal, stream: &str) -> bool {
    if matches!(caller.role, Role::Admin | Role::Auditor) || stream.starts_with("organisation-") {
        return true;
    }
    let referral = stream
        .strip_prefix("referral-")
        .and_then(|id| Uuid::parse_str(id).ok());
    let journey = referral.and_then(|id| models.journeys.journey(id));
    journey.is_some_and(|journey| can_see(models, caller, journey))
}

/// An anchor's own figures are for it, the commissioner it reports to, auditors and admins.
pub fn in_anchor_scope(models: &ReadModels, caller: &Principal, anchor: &OdsCode) -> bool {
    match caller.role {
        Role::Admin | Role::Auditor => true,
        Role::Anchor => caller.organisation == anchor.as_str(),
        Role::Commissioner => reports_to(models, anchor, &caller.organisation),
        _ => false,
    }
}

/// Whether `organisation` is registered with `parent` as the organisation it reports to.
fn reports_to(models: &ReadModels, organisation: &OdsCode, parent: &str) -> bool {
    let registered = models.organisations.get(organisation);
    registered
        .and_then(|o| o.parent.as_ref())
        .is_some_and(|p| p.as_str() == parent)
}
