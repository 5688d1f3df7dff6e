//! The HTTP API: GraphQL at `/graphql` (GraphiQL at `/`), subscriptions over WebSocket, and a
//! health endpoint.

pub mod auth;
mod errors;
pub mod http;
mod journeys;
mod mutations;
mod schema;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::runner::Runner;
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

impl AppState {
    /// The state over `store`, with its read models folded and following.
    pub async fn start(store: Store) -> Result<AppState, crate::runner::RunnerError> {
        let runner = Runner::start(store.clone()).await?;
        Ok(AppState {
            schema: build_schema(store.clone(), runner),
            store,
        })
    }
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
    let request = match auth::authenticate(&state.store, &headers).await {
        Ok(Some(principal)) => request.data(principal),
        Ok(None) => request,
        Err(error) => return unauthorised(&error, format),
    };
    let response = state.schema.execute(request).await;
    http::render(response, format)
}

/// An unknown, revoked or malformed token is refused before anything runs.
fn unauthorised(error: &auth::AuthError, format: http::Format) -> Response {
    let error = async_graphql::ServerError::new(error.to_string(), None);
    let mut error = error;
    error.extensions = Some({
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", "UNAUTHENTICATED");
        extensions
    });
    let mut response = http::render(async_graphql::Response::from_errors(vec![error]), format);
    *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
    response
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
