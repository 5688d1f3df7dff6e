//! Subscriptions: new events, as they are committed, that the caller may see.

use async_graphql::{Context, Result, Subscription};
use followfund_contracts::Role;
use futures::Stream;

use super::errors::forbidden;
use super::schema::{EventRecord, principal};
use super::scope::can_see_stream;
use crate::runner::{READ_YOUR_WRITES_WAIT_MS, Runner};
use crate::store::Store;

/// Live feeds.
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Events within the caller's scope from `fromPosition` on (by default, from the next
    /// commit), each once and in order.
    async fn events(
        &self,
        ctx: &Context<'_>,
        from_position: Option<u64>,
    ) -> Result<impl Stream<Item = EventRecord>> {
        let caller = principal(ctx)?.clone();
        if caller.role == Role::Investor {
            return Err(forbidden("investors see cohort figures only, never events"));
        }
        let store = ctx.data_unchecked::<Store>().clone();
        let runner = ctx.data_unchecked::<Runner>().clone();
        let from = from_position.unwrap_or_else(|| store.head_position() + 1);
        let subscription = store.subscribe(from);
        Ok(futures::stream::unfold(
            subscription,
            move |mut subscription| {
                let (caller, runner) = (caller.clone(), runner.clone());
                async move {
                    loop {
                        let event = subscription.next().await.ok()?;
                        // Scope is judged on read models that include the event itself.
                        let wait = std::time::Duration::from_millis(READ_YOUR_WRITES_WAIT_MS);
                        runner.wait_for(event.position, wait).await.ok()?;
                        let visible = can_see_stream(&runner.read(), &caller, &event.stream);
                        if visible {
                            return Some((EventRecord::from(event), subscription));
                        }
                    }
                }
            },
        ))
    }
}
