//! Payloads for sessions of a prescribed activity: attended, missed, cancelled, and attendance
//! retracted. The session's date is the event's `occurred_at`, which decides the tariff in force.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who cancelled a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    /// The provider cancelled the session.
    Provider,
    /// The person cancelled their place at the session.
    Person,
}

/// Why an attendance was retracted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetractionReason {
    /// The attendance was recorded by mistake: the person was not there.
    RecordedInError,
    /// The same attendance was recorded twice.
    Duplicate,
    /// Any other reason.
    Other,
}

/// The person attended a session of the prescribed activity. Attendance turns commitment into a payable to the provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionAttended {
    /// The prescription the session belongs to.
    pub prescription_id: Uuid,
    /// The session's id (UUID), unique within the prescription.
    pub session_id: Uuid,
}

/// The person missed a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionMissed {
    /// The prescription the session belongs to.
    pub prescription_id: Uuid,
    /// The session missed.
    pub session_id: Uuid,
    /// Whether the person gave the notice the agreement asks for; a missed session without notice
    /// may carry a fee under the tariff.
    pub notice_given: bool,
}

/// A session was cancelled by the provider or the person before it took place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionCancelled {
    /// The prescription the session belongs to.
    pub prescription_id: Uuid,
    /// The session cancelled.
    pub session_id: Uuid,
    /// Who cancelled it.
    pub cancelled_by: CancelledBy,
}

/// An attendance recorded in error was withdrawn. The original event stays in the log; if the
/// session was already paid for, the next payment run recovers the amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRetracted {
    /// The prescription the session belongs to.
    pub prescription_id: Uuid,
    /// The session whose attendance is withdrawn.
    pub session_id: Uuid,
    /// Why it is withdrawn.
    pub reason: RetractionReason,
}
