//! Running the HTTP service.

use crate::api::{AppState, router};
use crate::store::Store;

/// Serves until the process is stopped.
pub async fn serve(store: Store, listen: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving: GraphiQL at http://{address}/");
    let state = AppState::start(store)
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(crate::responses::sweep_forever(
        state.store.clone(),
        state.runner.clone(),
    ));
    axum::serve(listener, router(state)).await
}
