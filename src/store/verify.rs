//! Walking the chain: every position present once and in order, every `prev_hash` the hash
//! before it, every hash recomputed from the row as stored.

use serde::Serialize;

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
        let page = match store
            .read_all(expected_position, READ_PAGE_EVENTS_MAX)
            .await
        {
            Ok(page) => page,
            Err(StoreError::Corrupt { position, reason }) => {
                let fault = Fault { position, reason };
                return Ok(report(expected_position, prev_hash, Some(fault)));
            }
            Err(other) => return Err(other),
        };
        if page.is_empty() {
            return Ok(report(expected_position, prev_hash, None));
        }
        for event in &page {
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
            prev_hash = event.hash;
            expected_position += 1;
        }
    }
}

fn report(next_position: u64, head_hash: Hash, first_fault: Option<Fault>) -> VerifyReport {
    VerifyReport {
        events_checked: next_position - 1,
        head_hash,
        first_fault,
    }
}
