//! The event catalogue: every fact the ledger records, as a typed, versioned payload.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A fact the ledger records (placeholder until the catalogue lands).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// An organisation joined the ledger.
    OrganisationRegistered(OrganisationRegistered),
}

/// An organisation joined the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationRegistered {
    /// ODS code or our own id.
    pub organisation: String,
    /// Display name.
    pub name: String,
}

/// Why a payload was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CatalogueError {
    /// No such event type.
    #[error("unknown event type `{type_name}`")]
    UnknownType {
        /// The type given.
        type_name: String,
    },
    /// Bad data.
    #[error("`{type_name}` at `{path}`: {message}")]
    InvalidData {
        /// The type.
        type_name: String,
        /// JSON path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Event {
    /// The stable type name stored in the envelope.
    pub fn type_name(&self) -> &'static str {
        "organisation.registered"
    }
    /// The schema version of this payload.
    pub fn schema_version(&self) -> u32 {
        1
    }
    /// Decode a payload, refusing unknown types, bad fields and personal data.
    pub fn decode(type_name: &str, schema_version: u32, data: Value) -> Result<Event, CatalogueError> {
        let _ = schema_version;
        match type_name {
            "organisation.registered" => serde_json::from_value(data)
                .map(Event::OrganisationRegistered)
                .map_err(|e| CatalogueError::InvalidData {
                    type_name: type_name.into(),
                    path: ".".into(),
                    message: e.to_string(),
                }),
            _ => Err(CatalogueError::UnknownType { type_name: type_name.into() }),
        }
    }
    /// The canonical JSON text of the payload.
    pub fn encode(&self) -> String {
        match self {
            Event::OrganisationRegistered(e) => serde_json::to_string(e).expect("payloads serialise"),
        }
    }
}
