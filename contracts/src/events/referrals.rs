//! Payloads along a referral's life: received, accepted, declined or redirected, referred back to
//! a clinician, and closed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identifiers::{OdsCode, PersonId};

/// Who referred the person to the link worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralSource {
    /// A GP or other clinician at a GP practice.
    GpPractice,
    /// A nurse outside a GP practice, such as a district or practice nurse.
    Nurse,
    /// A community pharmacist.
    Pharmacist,
    /// A hospital team, for example at discharge.
    Hospital,
    /// A job centre.
    JobCentre,
    /// A housing association or housing officer.
    Housing,
    /// The fire and rescue service, for example after a safe-and-well visit.
    FireService,
    /// A charity or other voluntary organisation.
    Charity,
    /// A local authority service, such as adult social care.
    LocalAuthority,
    /// The person referred themselves.
    SelfReferral,
    /// Any other source.
    Other,
}

/// Why a person was referred, or a need their plan addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralReason {
    /// Loneliness or social isolation.
    Loneliness,
    /// Low mood, stress or poor mental wellbeing.
    MentalWellbeing,
    /// Living with one or more long-term conditions.
    LongTermCondition,
    /// Wanting to become more physically active.
    PhysicalActivity,
    /// Debt, benefits or other money worries.
    Financial,
    /// Housing problems.
    Housing,
    /// Unemployment or problems at work.
    Employment,
    /// Caring for someone else.
    CarerSupport,
    /// Bereavement.
    Bereavement,
    /// Any other reason.
    Other,
}

/// The person's age band when referred, in years. Bands rather than a date of birth keep the
/// person unidentifiable while still matching outcome contracts' eligibility (40 to 74, say).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum AgeBand {
    /// Under 18.
    #[serde(rename = "under_18")]
    Under18,
    /// 18 to 24.
    #[serde(rename = "18-24")]
    From18To24,
    /// 25 to 39.
    #[serde(rename = "25-39")]
    From25To39,
    /// 40 to 54.
    #[serde(rename = "40-54")]
    From40To54,
    /// 55 to 64.
    #[serde(rename = "55-64")]
    From55To64,
    /// 65 to 74.
    #[serde(rename = "65-74")]
    From65To74,
    /// 75 and over.
    #[serde(rename = "75+")]
    From75,
}

/// A long-term condition the person lives with, as a flag for eligibility and evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LongTermCondition {
    /// Type 1 or type 2 diabetes.
    Diabetes,
    /// Chronic obstructive pulmonary disease.
    Copd,
    /// Coronary heart disease or heart failure.
    HeartDisease,
    /// Asthma.
    Asthma,
    /// Depression.
    Depression,
    /// An anxiety disorder.
    Anxiety,
    /// Chronic pain.
    ChronicPain,
    /// Dementia.
    Dementia,
    /// Obesity.
    Obesity,
    /// Any other long-term condition.
    Other,
}

/// Why the link worker service declined a referral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralDeclineReason {
    /// The person does not meet the service's criteria.
    NotEligible,
    /// The person chose not to take part.
    PersonDeclined,
    /// The service could not reach the person.
    UnableToContact,
    /// Another service would meet the person's needs better.
    BetterServedElsewhere,
    /// Any other reason.
    Other,
}

/// Why a referral was passed to another link worker service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedirectReason {
    /// The person lives or is registered outside the service's area.
    OutOfArea,
    /// The receiving service is better suited to the person's needs.
    BetterServedElsewhere,
    /// The service has no link worker capacity.
    NoCapacity,
    /// Any other reason.
    Other,
}

/// Why a link worker referred the person back to a clinician.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferBackReason {
    /// The person is in crisis.
    Crisis,
    /// The person has a clinical need beyond social prescribing.
    ClinicalNeed,
    /// Any other reason.
    Other,
}

/// Why a case was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseCloseReason {
    /// The goals in the person's plan were met.
    GoalsMet,
    /// The person stopped engaging.
    Disengaged,
    /// The person was referred to another service.
    ReferredElsewhere,
    /// The person moved out of the area.
    MovedAway,
    /// The person died.
    Died,
    /// Any other reason.
    Other,
}

/// A link worker service received a referral for a pseudonymous person. Who the person is stays
/// outside the ledger, if it is kept at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralReceived {
    /// The referral's id, chosen by the recording system (UUID).
    pub referral_id: Uuid,
    /// The person referred (pseudonymous UUID).
    pub person_id: PersonId,
    /// Who referred the person.
    pub source: ReferralSource,
    /// The referring organisation's ODS code (a GP practice, say), when it has one; absent for
    /// self-referrals.
    pub referrer: Option<OdsCode>,
    /// The organisation whose link workers will see the person: an anchor, PCN or VCSE.
    pub link_worker_organisation: OdsCode,
    /// Why the person was referred; several may apply.
    pub reasons: Vec<ReferralReason>,
    /// The person's age band when referred.
    pub age_band: AgeBand,
    /// Long-term conditions the person lives with, if any.
    pub conditions: Vec<LongTermCondition>,
}

/// The link worker service took the referral on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralAccepted {
    /// The referral accepted.
    pub referral_id: Uuid,
}

/// The link worker service declined the referral. Non-uptake is kept as a fact because it matters
/// to evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralDeclined {
    /// The referral declined.
    pub referral_id: Uuid,
    /// Why it was declined.
    pub reason: ReferralDeclineReason,
}

/// The referral was passed to another link worker service. That service continues it under the
/// same referral id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralRedirected {
    /// The referral redirected.
    pub referral_id: Uuid,
    /// The organisation now responsible for the referral.
    pub to_organisation: OdsCode,
    /// Why it was redirected.
    pub reason: RedirectReason,
}

/// The link worker referred the person back to a clinician, for example in a crisis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralReferredBack {
    /// The referral concerned.
    pub referral_id: Uuid,
    /// The clinician's organisation, usually the person's GP practice.
    pub to_organisation: OdsCode,
    /// Why the person was referred back.
    pub reason: ReferBackReason,
}

/// The link worker closed the case. No further events are expected for the referral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseClosed {
    /// The referral closed.
    pub referral_id: Uuid,
    /// Why it was closed.
    pub reason: CaseCloseReason,
}
