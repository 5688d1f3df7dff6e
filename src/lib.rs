//! Followfund: an event-sourced funding ledger for social prescribing. This crate is the
//! service: the append-only log and its backends (`store`), NDJSON import and export
//! (`exchange`), the HTTP server (`server`) and synthetic load (`load`).
#![deny(missing_docs)]

pub mod admin;
pub mod allocator;
pub mod api;
pub mod arrs;
pub mod commands;
pub mod demo;
pub mod exchange;
pub mod load;
pub mod payments;
pub mod responses;
pub mod runner;
pub mod server;
pub mod sib;
pub mod simulate;
pub mod store;

/// The name a coded value (a status, an activity type) has in the log and on the wire, such as
/// `referred_back`: its serde name.
pub(crate) fn wire_name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
