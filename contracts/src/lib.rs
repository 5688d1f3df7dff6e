//! Followfund's shared language between the parties: the typed, versioned event catalogue,
//! money, identifiers (NHS numbers, ODS codes) and the pure funding rules.
//!
//! Never performs I/O, never reads the clock, never depends on sqlx, axum or tokio: callers pass
//! time and ids in.
#![deny(missing_docs)]

pub mod events;
pub mod identifiers;
pub mod money;

pub use events::{CatalogueError, Event};
pub use identifiers::{NhsNumber, OdsCode, PersonId};
pub use money::Money;
