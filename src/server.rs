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
    // The replay, whose peak wanted memory back promptly, is over.
    crate::allocator::purge_lazily();
    tokio::spawn(crate::responses::sweep_forever(
        state.store.clone(),
        state.runner.clone(),
    ));
    axum::serve(listener, router(state)).await
}

/// Serves `state` in the background on a free port of 127.0.0.1; the address it listens on.
/// For benchmarks and tests that speak HTTP to a live server.
pub async fn serve_on_free_port(state: AppState) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Ok(address)
}
