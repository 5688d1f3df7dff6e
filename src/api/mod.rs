//! The HTTP API: GraphQL at `/graphql` (GraphiQL at `/`), subscriptions over WebSocket, and a
//! health endpoint.

mod arrs;
pub mod auth;
mod errors;
mod explanations;
mod funding;
pub mod http;
mod journeys;
mod mutations;
mod schema;
mod scope;
mod sib;
mod subscriptions;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::time::Duration;

use crate::runner::Runner;
use crate::store::{BackendKind, Store};

pub use schema::{ApiSchema, build_schema};

/// The largest request body accepted; larger ones are answered 413.
pub const REQUEST_BODY_BYTES_MAX: usize = 1024 * 1024;
/// How long one GraphQL request may run.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The log.
    pub store: Store,
    /// The GraphQL schema.
    pub schema: ApiSchema,
    /// The read models the schema answers from.
    pub runner: Runner,
    /// The tokens requests carry.
    pub tokens: auth::Tokens,
}

impl AppState {
    /// The state over `store`, with its read models folded and following.
    pub async fn start(store: Store) -> Result<AppState, crate::runner::RunnerError> {
        let runner = Runner::start(store.clone()).await?;
        Ok(AppState::with_runner(store, runner))
    }

    /// The state over `store` answering from a runner already started on it, so that a caller
    /// holding folded read models (a benchmark, say) serves them without replaying again.
    pub fn with_runner(store: Store, runner: Runner) -> AppState {
        AppState {
            schema: build_schema(store.clone(), runner.clone()),
            runner,
            tokens: auth::Tokens::start(store.clone()),
            store,
        }
    }
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql).post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
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
    let request = match state.tokens.authenticate(&headers).await {
        Ok(Some(principal)) => request.data(principal),
        Ok(None) => request,
        Err(error) => return unauthorised(&error, format),
    };
    let limit = Duration::from_millis(REQUEST_TIMEOUT_MS);
    match tokio::time::timeout(limit, state.schema.execute(request)).await {
        Ok(response) => http::render(response, format),
        Err(_) => {
            let message = format!(
                "the request took longer than {REQUEST_TIMEOUT_MS} ms and was stopped: ask for less at once"
            );
            http::error_response(StatusCode::SERVICE_UNAVAILABLE, format, "TIMEOUT", &message)
        }
    }
}

/// An unknown, revoked or malformed token is refused before anything runs.
fn unauthorised(error: &auth::AuthError, format: http::Format) -> Response {
    http::error_response(
        StatusCode::UNAUTHORIZED,
        format,
        "UNAUTHENTICATED",
        &error.to_string(),
    )
}

/// Subscriptions over WebSocket (graphql-transport-ws or graphql-ws). The token comes in the
/// upgrade request's `Authorization` header or the connection_init payload's `Authorization`.
async fn graphql_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = state.tokens.authenticate(&headers).await;
    let from_header = match from_header {
        Ok(principal) => principal,
        Err(error) => return unauthorised(&error, http::Format::Json),
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let tokens = state.tokens.clone();
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| connection_data(tokens, from_header, payload))
                .serve()
        })
}

async fn connection_data(
    tokens: auth::Tokens,
    from_header: Option<auth::Principal>,
    payload: Value,
) -> async_graphql::Result<async_graphql::Data> {
    let mut data = async_graphql::Data::default();
    let token = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(Value::as_str);
    let principal = match token {
        Some(value) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                axum::http::header::AUTHORIZATION,
                value.parse().map_err(|_| "malformed Authorization")?,
            );
            tokens
                .authenticate(&headers)
                .await
                .map_err(|error| error.to_string())?
        }
        None => from_header,
    };
    if let Some(principal) = principal {
        data.insert(principal);
    }
    Ok(data)
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
