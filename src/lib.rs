//! Followfund: an event-sourced funding ledger for social prescribing. This crate is the
//! service: the append-only log and its backends (`store`), the NDJSON exchange format, and the
//! HTTP server.
#![deny(missing_docs)]

pub mod store;
