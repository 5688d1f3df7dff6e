//! Catch-up subscriptions: read what is stored from a position, then follow new commits.
//!
//! Every event is read from the log by position, before and after the switch to live, so the
//! switch can neither lose nor repeat one; commit notices only say when to read again.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::watch;

use super::{RecordedEvent, Store, StoreError};

/// Events read per round trip while catching up.
const SUBSCRIPTION_PAGE_EVENTS: usize = 1_000;
/// How long to wait for a commit notice before reading anyway; covers writers that announce
/// nothing (another process on the same SQLite file) and notices lost while reconnecting.
const SUBSCRIPTION_POLL_MS: u64 = 1_000;

/// A position-ordered feed of events; see [`Store::subscribe`].
pub struct Subscription {
    store: Store,
    next_position: u64,
    buffer: VecDeque<RecordedEvent>,
    head: watch::Receiver<u64>,
}

impl Subscription {
    pub(super) fn new(store: Store, from: u64, head: watch::Receiver<u64>) -> Subscription {
        Subscription {
            store,
            next_position: from.max(1),
            buffer: VecDeque::new(),
            head,
        }
    }

    /// The next event, waiting for one to be committed if the subscriber has caught up.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                assert_eq!(
                    event.position, self.next_position,
                    "a subscription sees every position once, in order"
                );
                self.next_position += 1;
                return Ok(event);
            }
            // Marked seen before reading, so a commit during the read still wakes the wait.
            self.head.borrow_and_update();
            let page = self
                .store
                .read_all(self.next_position, SUBSCRIPTION_PAGE_EVENTS)
                .await?;
            if page.is_empty() {
                let notice = self.head.changed();
                if let Ok(Err(_)) =
                    tokio::time::timeout(Duration::from_millis(SUBSCRIPTION_POLL_MS), notice).await
                {
                    return Err(StoreError::Closed);
                }
            }
            self.buffer.extend(page);
        }
    }

    /// The next events, up to `max`: at least one, waiting for it if need be, and then as many
    /// as are already read, so a consumer can fold a page under one lock.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut batch = vec![self.next().await?];
        while batch.len() < max {
            let Some(event) = self.buffer.pop_front() else {
                break;
            };
            assert_eq!(
                event.position, self.next_position,
                "a subscription sees every position once, in order"
            );
            self.next_position += 1;
            batch.push(event);
        }
        Ok(batch)
    }

    /// The position the next event will have.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }
}
