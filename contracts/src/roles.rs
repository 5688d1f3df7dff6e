//! The parts an organisation plays in the ledger, and the UK nations whose rules differ.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The part an organisation plays, which decides what it may record and read.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Funds anchors and schemes, pays social impact bond outcomes, audits spend: an ICB, local
    /// authority, public health team or national fund.
    Commissioner,
    /// Holds an area's budget, employs link workers, and pays providers per person referred.
    Anchor,
    /// A voluntary, community or social enterprise (VCSE) organisation that runs activities,
    /// accepts or declines prescriptions, records attendance and is paid.
    Provider,
    /// A Primary Care Network, which employs or subcontracts link workers and claims ARRS
    /// reimbursement (England only).
    Pcn,
    /// Invests in a social impact bond; sees cohort-level figures only.
    Investor,
    /// Reads everything and changes nothing.
    Auditor,
    /// Checks the evidence for social impact bond outcomes, and signs off or withdraws them.
    Verifier,
    /// Operates the ledger itself: registers organisations and grants access.
    Admin,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 8] = [
        Role::Commissioner,
        Role::Anchor,
        Role::Provider,
        Role::Pcn,
        Role::Investor,
        Role::Auditor,
        Role::Verifier,
        Role::Admin,
    ];

    /// The role's stable name, as written in JSON and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Commissioner => "commissioner",
            Role::Anchor => "anchor",
            Role::Provider => "provider",
            Role::Pcn => "pcn",
            Role::Investor => "investor",
            Role::Auditor => "auditor",
            Role::Verifier => "verifier",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not the name of a role.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a role: use one of commissioner, anchor, provider, pcn, investor, \
     auditor, admin"
)]
pub struct RoleParseError {
    /// The text that was given.
    pub input: String,
}

impl FromStr for Role {
    type Err = RoleParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == input)
            .ok_or_else(|| RoleParseError {
                input: input.to_owned(),
            })
    }
}

/// A UK nation. Funding rules differ by nation: ARRS reimbursement, for one, applies in England
/// only.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Nation {
    /// England.
    England,
    /// Scotland.
    Scotland,
    /// Wales.
    Wales,
    /// Northern Ireland.
    NorthernIreland,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_through_text_and_json() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::Value::from(role.as_str())
            );
        }
    }

    #[test]
    fn unknown_role_is_refused_with_the_valid_names() {
        let error = "Provider".parse::<Role>().unwrap_err();
        assert!(
            error.to_string().contains("commissioner, anchor"),
            "{error}"
        );
    }

    #[test]
    fn nation_is_snake_case_in_json() {
        assert_eq!(
            serde_json::to_string(&Nation::NorthernIreland).unwrap(),
            "\"northern_ireland\""
        );
    }
}
