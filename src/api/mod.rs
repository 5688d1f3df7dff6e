//! The HTTP API: GraphQL at `/graphql` (GraphiQL at `/`), subscriptions over WebSocket, and a
//! health endpoint.

pub mod http;
mod schema;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::store::{BackendKind, Store};

pub use schema::{ApiSchema, build_schema};

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The log.
    pub store: Store,
    /// The GraphQL schema.
    pub schema: ApiSchema,
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql).post(graphql))
        .route("/health", get(health))
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .finish(),
    )
}

async fn graphql(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (request, format) = match http::parse(&method, &headers, query.as_deref(), body) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let response = state.schema.execute(request).await;
    http::render(response, format)
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let backend = match state.store.backend() {
        BackendKind::Sqlite => "sqlite",
        BackendKind::Postgres => "postgres",
    };
    let body: Value =
        json!({ "status": "ok", "backend": backend, "head_position": state.store.head_position() });
    Json(body)
}
