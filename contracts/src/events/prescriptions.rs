//! Payloads for prescriptions: a link worker's referral of a person to a provider's activity, and
//! how it ends.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identifiers::OdsCode;

/// The kind of activity prescribed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityType {
    /// A walking group.
    Walking,
    /// Arts, crafts, music or other creative activity.
    Arts,
    /// Gardening or a green space project.
    Gardening,
    /// Debt or benefits advice.
    DebtAdvice,
    /// Housing advice.
    HousingAdvice,
    /// A lunch club or other shared meal.
    LunchClub,
    /// Exercise classes, sport or other physical activity.
    Exercise,
    /// Courses and learning.
    Learning,
    /// Volunteering.
    Volunteering,
    /// A peer support group.
    PeerSupport,
    /// Any other activity.
    Other,
}

/// Why a provider declined a prescription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrescriptionDeclineReason {
    /// The provider has no room for another person.
    AtCapacity,
    /// The activity does not suit the person.
    NotSuitable,
    /// The provider did not answer within the agreement's response window, so the ledger treats
    /// the prescription as declined.
    NoResponse,
    /// Any other reason.
    Other,
}

/// Why a prescription ended before completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrescriptionEndReason {
    /// The person chose to stop.
    PersonWithdrew,
    /// The person stopped attending.
    DidNotAttend,
    /// The person moved out of the area.
    MovedAway,
    /// The provider stopped running the activity or withdrew the place.
    ProviderWithdrew,
    /// Any other reason.
    Other,
}

/// A link worker prescribed an activity run by a provider. Issuing commits the prescription's
/// maximum cost against the anchor's budget for the financial year of issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionIssued {
    /// The prescription's id (UUID).
    pub prescription_id: Uuid,
    /// The referral it belongs to.
    pub referral_id: Uuid,
    /// The organisation running the activity.
    pub provider: OdsCode,
    /// The kind of activity.
    pub activity_type: ActivityType,
    /// The funding agreement between anchor and provider that prices the sessions; absent when
    /// the activity is unfunded (free to the person and to the ledger).
    pub agreement_id: Option<Uuid>,
}

/// The provider was full, so the prescription waits for a place under the agreement. Nothing is
/// committed while it waits; issuing it later, when a place is free and it is first in the queue,
/// commits its maximum cost as any issue does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionWaitlisted {
    /// The prescription's id (UUID); the later `prescription.issued` uses it again.
    pub prescription_id: Uuid,
    /// The referral it belongs to.
    pub referral_id: Uuid,
    /// The organisation running the activity.
    pub provider: OdsCode,
    /// The kind of activity.
    pub activity_type: ActivityType,
    /// The funding agreement whose capacity it waits for.
    pub agreement_id: Uuid,
}

impl PrescriptionWaitlisted {
    /// The issue this waiting prescription becomes when a place is free.
    pub fn issue(&self) -> PrescriptionIssued {
        PrescriptionIssued {
            prescription_id: self.prescription_id,
            referral_id: self.referral_id,
            provider: self.provider.clone(),
            activity_type: self.activity_type,
            agreement_id: Some(self.agreement_id),
        }
    }
}

/// The provider accepted the prescription and will offer the person a place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionAccepted {
    /// The prescription accepted.
    pub prescription_id: Uuid,
}

/// The provider declined the prescription or did not answer in time. The commitment against the
/// anchor's budget is released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionDeclined {
    /// The prescription declined.
    pub prescription_id: Uuid,
    /// Why it was declined.
    pub reason: PrescriptionDeclineReason,
}

/// The person completed the prescribed activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionCompleted {
    /// The prescription completed.
    pub prescription_id: Uuid,
}

/// The prescription ended before completion. Drop-out is kept as a fact because it matters to evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionEnded {
    /// The prescription ended.
    pub prescription_id: Uuid,
    /// Why it ended.
    pub reason: PrescriptionEndReason,
}
