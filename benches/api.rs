//! GraphQL read latency and throughput: many concurrent clients asking for referral journeys
//! over HTTP from a live server on the demonstration data set. Run with
//! `cargo bench --bench api [-- --clients N --seconds S]`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use followfund::api::AppState;
use followfund::store::{Store, StoreOptions};
use followfund_contracts::Role;
use serde_json::{Value, json};

const CLIENTS_DEFAULT: usize = 50;
const SECONDS_DEFAULT: u64 = 10;

fn main() {
    let clients = argument("--clients").unwrap_or(CLIENTS_DEFAULT as u64) as usize;
    let seconds = argument("--seconds").unwrap_or(SECONDS_DEFAULT);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(clients, Duration::from_secs(seconds)));
}

fn argument(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    let index = args.iter().position(|arg| arg == name)?;
    args.get(index + 1)?.parse().ok()
}

async fn run(clients: usize, duration: Duration) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::open(&url, StoreOptions::default())
        .await
        .expect("a store");
    followfund::demo::load(&store, 3)
        .await
        .expect("the demonstration set");
    let (token, _) = followfund::admin::token_create(&store, "AUD01", Role::Auditor)
        .await
        .expect("a token");
    let address = serve(store.clone()).await;
    let endpoint = format!("http://{address}/graphql");
    let referrals = referral_ids(&endpoint, &token).await;
    println!(
        "{} referrals, {clients} clients, {} s",
        referrals.len(),
        duration.as_secs()
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (endpoint, token, referrals) = (endpoint.clone(), token.clone(), referrals.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut index = client;
            while started.elapsed() < duration {
                let id = &referrals[index % referrals.len()];
                index += clients;
                let began = Instant::now();
                let answer = journey(&http, &endpoint, &token, id).await;
                latencies.push(began.elapsed());
                assert!(answer["errors"].is_null(), "{answer}");
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a client"));
    }
    report(&mut latencies, started.elapsed());
}

async fn serve(store: Store) -> SocketAddr {
    let state = AppState::start(store).await.expect("read models");
    followfund::server::serve_on_free_port(state)
        .await
        .expect("a local port")
}

async fn referral_ids(endpoint: &str, token: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let query = json!({ "query": "{ referrals(first: 500) { referralId } }" });
    let answer: Value = http
        .post(endpoint)
        .bearer_auth(token)
        .json(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = answer["data"]["referrals"].as_array().expect("referrals");
    list.iter()
        .map(|r| r["referralId"].as_str().unwrap().to_string())
        .collect()
}

async fn journey(http: &reqwest::Client, endpoint: &str, token: &str, id: &str) -> Value {
    let query = "query($id: UUID!) { referral(id: $id) { status linkWorkerOrganisation \
        steps { position type occurredAt actorOrganisation } prescriptions { provider status sessionsAttended } } }";
    let body = json!({ "query": query, "variables": { "id": id } });
    http.post(endpoint)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn report(latencies: &mut [Duration], elapsed: Duration) {
    latencies.sort();
    let at = |fraction: f64| {
        latencies[((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1)]
    };
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    println!("requests   {}", latencies.len());
    println!("throughput {per_second:.0} requests/s");
    println!("p50        {:.2} ms", at(0.50).as_secs_f64() * 1e3);
    println!("p99        {:.2} ms", at(0.99).as_secs_f64() * 1e3);
    println!("max        {:.2} ms", at(1.0).as_secs_f64() * 1e3);
}
