//! The GraphQL schema: queries, mutations and subscriptions over the projections.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

/// The schema type served at `/graphql`.
pub type ApiSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the schema.
pub fn build_schema() -> ApiSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription).finish()
}

/// Read access to the ledger.
pub struct Query;

#[Object]
impl Query {
    /// The service's version.
    async fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
}
