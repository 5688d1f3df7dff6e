//! Followfund's shared language between the parties: the typed, versioned event catalogue,
//! money, identifiers (NHS numbers, ODS codes) and the pure funding rules.
//!
//! Never performs I/O, never reads the clock, never depends on sqlx, axum or tokio: callers pass
//! time and ids in.
#![deny(missing_docs)]

pub mod events;
pub mod identifiers;
pub mod money;
pub mod roles;
pub mod terms;
pub mod text;

pub use events::{CatalogueError, Event, EventType, catalogue, catalogue_markdown};
pub use identifiers::{IdentifierError, NhsNumber, OdsCode, PcnCode, PersonId, find_nhs_number};
pub use money::{Money, MoneyError};
pub use roles::{Nation, Role};
