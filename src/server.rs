//! Running the HTTP service.

use crate::api::{AppState, build_schema, router};
use crate::store::Store;

/// Serves until the process is stopped.
pub async fn serve(store: Store, listen: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving: GraphiQL at http://{address}/");
    let state = AppState {
        store,
        schema: build_schema(),
    };
    axum::serve(listener, router(state)).await
}
