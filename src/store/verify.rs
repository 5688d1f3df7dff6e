//! Walking the chain: every position present once and in order, every `prev_hash` the hash
//! before it, every hash recomputed from the row as stored, and every event as a replay reads
//! it (from a compact block, on SQLite) the same as its row.

use followfund_contracts::CatalogueError;
use serde::Serialize;

use super::event::{FoldEvent, RecordedEvent};
use super::hash::{Hash, chain_hash};
use super::{READ_PAGE_EVENTS_MAX, Store, StoreError};

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events checked before the first fault, or all of them.
    pub events_checked: u64,
    /// The hash of the last event checked: publish it to let others check the log later.
    pub head_hash: Hash,
    /// The first position that does not hold, if any.
    pub first_fault: Option<Fault>,
}

impl VerifyReport {
    /// Whether the whole chain holds.
    pub fn is_intact(&self) -> bool {
        self.first_fault.is_none()
    }
}

/// The first break in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// The position where the chain breaks.
    pub position: u64,
    /// What does not match.
    pub reason: String,
}

pub async fn verify(store: &Store) -> Result<VerifyReport, StoreError> {
    let mut expected_position = 1;
    let mut prev_hash = Hash::GENESIS;
    loop {
        let read = store
            .read_all(expected_position, READ_PAGE_EVENTS_MAX)
            .await;
        let page = match read {
            Ok(page) => page,
            Err(error) => return Ok(report(expected_position, prev_hash, Some(fault_of(error)?))),
        };
        if page.is_empty() {
            return Ok(report(expected_position, prev_hash, None));
        }
        let read = (store.read_fold(expected_position, page.len(), |row| row.to_event())).await;
        let replayed = match read {
            Ok(replayed) => replayed,
            Err(error) => return Ok(report(expected_position, prev_hash, Some(fault_of(error)?))),
        };
        for (index, event) in page.iter().enumerate() {
            let fault = |reason: String| {
                Some(Fault {
                    position: expected_position,
                    reason,
                })
            };
            if event.position != expected_position {
                let reason = format!(
                    "position {expected_position} is missing (next stored is {})",
                    event.position
                );
                return Ok(report(expected_position, prev_hash, fault(reason)));
            }
            if event.prev_hash != prev_hash {
                let reason = format!(
                    "prev_hash {} is not the hash before it, {}",
                    event.prev_hash, prev_hash
                );
                return Ok(report(expected_position, prev_hash, fault(reason)));
            }
            let recomputed = chain_hash(&prev_hash, event);
            if event.hash != recomputed {
                let reason = format!(
                    "stored hash {} does not match its content (recomputed {recomputed})",
                    event.hash
                );
                return Ok(report(expected_position, prev_hash, fault(reason)));
            }
            if let Some(reason) = replayed_differently(event, replayed.get(index)) {
                return Ok(report(expected_position, prev_hash, fault(reason)));
            }
            prev_hash = event.hash;
            expected_position += 1;
        }
    }
}

/// The fault a read found in what is stored; any other error is the caller's.
fn fault_of(error: StoreError) -> Result<Fault, StoreError> {
    match error {
        StoreError::Corrupt { position, reason } => Ok(Fault { position, reason }),
        other => Err(other),
    }
}

/// How the event a replay reads differs from the row, if it does.
fn replayed_differently(
    row: &RecordedEvent,
    replayed: Option<&Result<FoldEvent, CatalogueError>>,
) -> Option<String> {
    match replayed {
        None => Some("a replay does not read this event".into()),
        Some(Err(error)) => Some(format!("a replay cannot read this event: {error}")),
        Some(Ok(replayed)) if !replayed.says_what(row) => {
            Some("a replay reads this event otherwise than its row says".into())
        }
        Some(Ok(_)) => None,
    }
}

fn report(next_position: u64, head_hash: Hash, first_fault: Option<Fault>) -> VerifyReport {
    VerifyReport {
        events_checked: next_position - 1,
        head_hash,
        first_fault,
    }
}
