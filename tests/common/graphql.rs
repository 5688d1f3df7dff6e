//! The API served on a free local port, with a bearer token per organisation, for tests that
//! speak GraphQL over HTTP.

use followfund::api::AppState;
use followfund::store::Store;
use followfund_contracts::{Nation, Role};
use serde_json::{Value, json};

/// A served API and the tokens of the organisations registered for it.
pub struct Api {
    /// The GraphQL endpoint.
    pub endpoint: String,
    /// The address served on.
    pub address: std::net::SocketAddr,
    tokens: Vec<(String, String)>,
    /// The served state, whose read models `settled` waits on.
    state: AppState,
}

/// Registers English organisations (code, role, parent) and issues a token to each.
pub async fn register(
    store: &Store,
    organisations: &[(&str, Role, Option<&str>)],
) -> Vec<(String, String)> {
    let mut tokens = Vec::new();
    for (code, role, parent) in organisations {
        followfund::admin::organisation_add(store, code, code, *role, Nation::England, *parent)
            .await
            .unwrap();
        let (secret, _) = followfund::admin::token_create(store, code, *role)
            .await
            .unwrap();
        tokens.push((code.to_string(), secret));
    }
    tokens
}

impl Api {
    /// Serves `store` with its read models folded.
    pub async fn start(store: Store, tokens: Vec<(String, String)>) -> Api {
        let state = AppState::start(store).await.unwrap();
        let address = followfund::server::serve_on_free_port(state.clone())
            .await
            .unwrap();
        Api {
            endpoint: format!("http://{address}/graphql"),
            address,
            tokens,
            state,
        }
    }

    /// The token of a registered organisation.
    pub fn token(&self, who: &str) -> &str {
        let found = self.tokens.iter().find(|(code, _)| code == who);
        &found.unwrap_or_else(|| panic!("no token for {who}")).1
    }

    /// Posts a query as `who`; the JSON answer, errors included.
    pub async fn call(&self, who: &str, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables });
        reqwest::Client::new()
            .post(&self.endpoint)
            .bearer_auth(self.token(who))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the read models hold every event in the log, so that a query without
    /// `atLeast` sees every write acknowledged before it: the wait `atLeast` itself uses.
    pub async fn settled(&self) {
        let head = self.state.store.head_position();
        self.state
            .runner
            .wait_for(head, std::time::Duration::from_secs(10))
            .await
            .unwrap_or_else(|error| {
                panic!("the read models did not reach position {head}: {error}")
            });
    }
}
