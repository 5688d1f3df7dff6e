//! Subscriptions over WebSocket against a live server: a caller hears of new events within its
//! scope, in order, and of nothing outside it.

mod common;

use std::time::Duration;

use common::TestDb;
use common::graphql::{Api, register};
use followfund::store::Store;
use followfund_contracts::Role;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

per_backend!(
    a_subscriber_hears_its_own_referrals_and_not_others,
    an_investor_cannot_subscribe
);

const WAIT: Duration = Duration::from_secs(10);

/// Serves a store with two anchors and an investor, a token each.
async fn start(store: Store) -> Api {
    let organisations = [
        ("ANC01", Role::Anchor, None),
        ("ANC02", Role::Anchor, None),
        ("INV01", Role::Investor, None),
    ];
    let tokens = register(&store, &organisations).await;
    Api::start(store, tokens).await
}

impl Api {
    async fn receive_referral(&self, code: &str) -> u64 {
        let data = json!({
            "referral_id": Uuid::now_v7(), "person_id": Uuid::now_v7(), "source": "self_referral",
            "referrer": null, "link_worker_organisation": code, "reasons": ["loneliness"],
            "age_band": "55-64", "conditions": [],
        });
        let query = "mutation($d: JSON!) { referralReceive(data: $d) { position } }";
        let answer = self.call(code, query, json!({ "d": data })).await;
        answer["data"]["referralReceive"]["position"]
            .as_u64()
            .unwrap_or_else(|| panic!("{answer}"))
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(server: &Api, code: &str) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", server.address)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", server.token(code)) } });
    socket.send(Message::text(init.to_string())).await.unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "connection_ack");
    let subscribe = json!({
        "id": "1", "type": "subscribe",
        "payload": { "query": "subscription { events { position type stream actorOrganisation } }" },
    });
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    socket
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn a_subscriber_hears_its_own_referrals_and_not_others(db: TestDb) {
    let server = start(db.open().await).await;
    let mut socket = subscribe(&server, "ANC02").await;
    // Give the subscription time to start from the head before anything is written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let others = server.receive_referral("ANC01").await;
    let own = server.receive_referral("ANC02").await;
    assert!(others < own);
    let heard = next_json(&mut socket).await;
    assert_eq!(heard["type"], "next", "{heard}");
    let event = &heard["payload"]["data"]["events"];
    assert_eq!(
        event["position"], own,
        "ANC01's referral at {others} is not heard by ANC02"
    );
    assert_eq!(event["type"], "referral.received");
    assert_eq!(event["actorOrganisation"], "ANC02");
    let second = server.receive_referral("ANC02").await;
    assert_eq!(
        next_json(&mut socket).await["payload"]["data"]["events"]["position"],
        second
    );
}

async fn an_investor_cannot_subscribe(db: TestDb) {
    let server = start(db.open().await).await;
    let mut socket = subscribe(&server, "INV01").await;
    let answer = next_json(&mut socket).await;
    // A refused subscription field comes back as a result carrying the error, not as data.
    assert!(answer["payload"]["data"].is_null(), "{answer}");
    let code = &answer["payload"]["errors"][0]["extensions"]["code"];
    assert_eq!(code, "FORBIDDEN", "{answer}");
}
