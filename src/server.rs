//! The HTTP server: for now a health endpoint reporting the log's head.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::store::{BackendKind, Store};

/// The service's routes over `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(store)
}

/// Serves until the process is stopped.
pub async fn serve(store: Store, listen: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "serving");
    axum::serve(listener, router(store)).await
}

async fn health(State(store): State<Store>) -> Json<Value> {
    let backend = match store.backend() {
        BackendKind::Sqlite => "sqlite",
        BackendKind::Postgres => "postgres",
    };
    Json(json!({ "status": "ok", "backend": backend, "head_position": store.head_position() }))
}
