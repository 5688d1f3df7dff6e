//! Payloads for the link worker's first assessment and the person's care and support plan.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::referrals::ReferralReason;

/// The link worker held the initial assessment with the person. This is the "what matters to
/// me" conversation; baseline wellbeing scores are recorded separately as `outcome.measured`
/// with stage `baseline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentHeld {
    /// The referral assessed.
    pub referral_id: Uuid,
    /// How long the assessment took, in minutes.
    pub duration_minutes: u32,
}

/// The person and link worker agreed a care and support plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanAgreed {
    /// The referral the plan belongs to.
    pub referral_id: Uuid,
    /// The plan's id (UUID).
    pub plan_id: Uuid,
    /// The needs the plan addresses.
    pub needs: Vec<ReferralReason>,
}

/// The care and support plan was changed. The needs listed replace the earlier list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanAmended {
    /// The referral the plan belongs to.
    pub referral_id: Uuid,
    /// The plan amended.
    pub plan_id: Uuid,
    /// The needs the plan now addresses, in full.
    pub needs: Vec<ReferralReason>,
}
