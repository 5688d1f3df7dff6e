//! Payloads about the organisations taking part: commissioners, anchors, providers, PCNs and the
//! rest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::identifiers::OdsCode;
use crate::roles::{Nation, Role};

/// An organisation joined the ledger with a role and a nation. Organisations are not persons, so
/// their names are held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationRegistered {
    /// The organisation's ODS code, or the id the ledger assigned it in the same shape when it
    /// has none (most VCSE providers).
    pub organisation: OdsCode,
    /// The organisation's name as it trades, for display.
    pub name: String,
    /// The part the organisation plays in the ledger.
    pub role: Role,
    /// The nation whose rules apply to the organisation.
    pub nation: Nation,
    /// The organisation it reports to, if any: the ICB of a PCN, the anchor of a provider.
    pub parent: Option<OdsCode>,
}
