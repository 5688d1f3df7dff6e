//! Identifiers: pseudonymous persons, ODS codes, and NHS numbers (recognised only to refuse them).

use serde::{Deserialize, Serialize};

/// A pseudonymous person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersonId(pub uuid::Uuid);

/// An ODS code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OdsCode(pub String);

/// An NHS number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NhsNumber(pub String);
