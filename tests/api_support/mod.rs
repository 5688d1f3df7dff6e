//! The harness behind `tests/api.rs`: a real `followfund serve` on a fresh database with one
//! organisation and token per role, a GraphQL client that speaks as any of them, payload
//! builders for the pathway events, and referrals brought to a chosen step through the API.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use followfund::admin;
use followfund::store::{Store, StoreOptions};
use followfund_contracts::{Nation, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestDb;

/// The commissioner, parent of `A1`.
pub const C1: &str = "COM1";
/// An anchor reporting to `C1`: it holds the fixture's referral `R1`.
pub const A1: &str = "ANC1";
/// An anchor with no parent: it holds `R2`.
pub const A2: &str = "ANC2";
/// A provider under `A1`: the fixture's prescription is with it.
pub const P1: &str = "VCS1";
/// A provider with no part in any fixture referral.
pub const P2: &str = "VCS2";
/// A Primary Care Network, a link worker service of its own.
pub const N1: &str = "U12345";
/// An investor.
pub const I1: &str = "INV1";
/// An auditor.
pub const X1: &str = "AUD1";
/// An administrator.
pub const M1: &str = "ADM1";

/// Every organisation, one per role (two anchors, two providers); parents come before children
/// so each registration names an organisation already known.
const ORGANISATIONS: [(&str, Role, Option<&str>); 9] = [
    (C1, Role::Commissioner, None),
    (A1, Role::Anchor, Some(C1)),
    (A2, Role::Anchor, None),
    (P1, Role::Provider, Some(A1)),
    (P2, Role::Provider, None),
    (N1, Role::Pcn, Some(C1)),
    (I1, Role::Investor, None),
    (X1, Role::Auditor, None),
    (M1, Role::Admin, None),
];

/// How long the server may take to answer `/health` after it is started.
const SERVER_START_TIMEOUT_MS: u64 = 30_000;
/// How much of the server's log a failing test prints.
const SERVER_LOG_TAIL_BYTES: usize = 4_000;

/// What a request came to, by `extensions.code` of its first error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No errors.
    Allowed,
    /// FORBIDDEN.
    Forbidden,
    /// CONFLICT.
    Conflict,
    /// BAD_INPUT.
    BadInput,
    /// NOT_FOUND.
    NotFound,
    /// UNAUTHENTICATED.
    Unauthenticated,
    /// Any other code, or an error without one.
    Other(String),
}

/// A running `followfund serve`, killed when dropped, also when the test panics.
pub struct Server {
    child: Child,
    base_url: String,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The server's own account of a failure is the quickest way to its cause.
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(&self.log)
        {
            let tail = &log[log.len().saturating_sub(SERVER_LOG_TAIL_BYTES)..];
            eprintln!("--- followfund serve log (tail) ---\n{tail}");
        }
    }
}

impl Server {
    async fn start(database_url: &str) -> Server {
        let log_dir = tempfile::tempdir().expect("a temporary directory");
        let log = log_dir.path().join("serve.log");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_followfund"))
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .args(["--database-url", database_url, "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("a log file"))
            .spawn()
            .expect("followfund starts");
        let mut server = Server {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
            _log_dir: log_dir,
        };
        server.wait_until_healthy().await;
        server
    }

    async fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(SERVER_START_TIMEOUT_MS);
        let health = format!("{}/health", self.base_url);
        loop {
            if let Some(status) = self.child.try_wait().expect("the server's status") {
                panic!("followfund serve exited before answering: {status}");
            }
            if let Ok(response) = reqwest::get(&health).await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no answer from {health} in {SERVER_START_TIMEOUT_MS} ms"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("the server's status")
            .is_none()
    }
}

/// A port nothing listens on: bind to port 0, note the port, let it go.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a local address").port()
}

/// An HTTP answer: its status and its body, as JSON when it is JSON.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body; a JSON string holding the text when the body is not JSON.
    pub body: Value,
}

impl Reply {
    /// `extensions.code` of the first error.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    /// The first error's message, or the whole body when it is not a GraphQL error.
    pub fn message(&self) -> String {
        match self.body["errors"][0]["message"].as_str() {
            Some(message) => message.to_string(),
            None => self.body.to_string(),
        }
    }

    /// Whether the body carries GraphQL errors.
    pub fn has_errors(&self) -> bool {
        self.body["errors"]
            .as_array()
            .is_some_and(|errors| !errors.is_empty())
    }

    /// What the request came to.
    pub fn outcome(&self) -> Outcome {
        if !self.has_errors() {
            return Outcome::Allowed;
        }
        match self.code() {
            Some("FORBIDDEN") => Outcome::Forbidden,
            Some("CONFLICT") => Outcome::Conflict,
            Some("BAD_INPUT") => Outcome::BadInput,
            Some("NOT_FOUND") => Outcome::NotFound,
            Some("UNAUTHENTICATED") => Outcome::Unauthenticated,
            Some(code) => Outcome::Other(code.to_string()),
            None => Outcome::Other(format!("no code: {}", self.message())),
        }
    }

    /// `data.<field>`, after checking that nothing went wrong.
    pub fn data(&self, field: &str) -> &Value {
        assert!(
            self.status == StatusCode::OK && !self.has_errors(),
            "expected data, got HTTP {} {}",
            self.status,
            self.body
        );
        &self.body["data"][field]
    }
}

/// The optional arguments every mutation takes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Recorded {
    /// `occurredAt`.
    pub at: Option<DateTime<Utc>>,
    /// `clientId`.
    pub client_id: Option<Uuid>,
}

/// What a successful mutation answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The event's position.
    pub position: u64,
    /// The event's id.
    pub event_id: String,
    /// Whether this call wrote it.
    pub written: bool,
}

impl Written {
    /// Reads `data.<op>` of a mutation's reply.
    pub fn of(reply: &Reply, op: &str) -> Written {
        let written = reply.data(op);
        Written {
            position: written["position"].as_u64().expect("a position"),
            event_id: written["eventId"].as_str().expect("an event id").into(),
            written: written["written"].as_bool().expect("written"),
        }
    }
}

/// A server on a fresh database with a token for every organisation.
pub struct Api {
    // Fields drop in order: the server stops before its database is dropped.
    server: Server,
    client: reqwest::Client,
    tokens: BTreeMap<&'static str, String>,
    /// A second token for `A1`, for revoking: its id and secret.
    pub spare_token: (Uuid, String),
    db: TestDb,
}

impl Api {
    /// Registers the organisations and issues the tokens through the library, closes the
    /// store, then starts the binary on the same database.
    pub async fn start(db: TestDb) -> Api {
        let store = Store::open(&db.url, StoreOptions::default())
            .await
            .expect("opening the log");
        let mut tokens = BTreeMap::new();
        for (code, role, parent) in ORGANISATIONS {
            let name = format!("{code} ({role})");
            admin::organisation_add(&store, code, &name, role, Nation::England, parent)
                .await
                .expect("registering an organisation");
            let (secret, _) = admin::token_create(&store, code, role)
                .await
                .expect("issuing a token");
            tokens.insert(code, secret);
        }
        let (spare_secret, spare) = admin::token_create(&store, A1, Role::Anchor)
            .await
            .expect("issuing a spare token");
        drop(store);
        let server = Server::start(&db.url).await;
        Api {
            server,
            client: reqwest::Client::new(),
            tokens,
            spare_token: (spare.token_id, spare_secret),
            db,
        }
    }

    /// The `/graphql` address.
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.server.base_url)
    }

    /// The bearer token of organisation `code`.
    pub fn token(&self, code: &str) -> &str {
        &self.tokens[code]
    }

    /// Posts a GraphQL request with `authorization` as the whole header value, or none.
    pub async fn post(&self, authorization: Option<&str>, query: &str, variables: Value) -> Reply {
        let mut request = self
            .client
            .post(self.graphql_url())
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        reply(request).await
    }

    /// A request as organisation `who`.
    pub async fn gql(&self, who: &str, query: &str, variables: Value) -> Reply {
        let bearer = format!("Bearer {}", self.token(who));
        self.post(Some(&bearer), query, variables).await
    }

    /// A request with a body of our own making, `application/json`, as the auditor.
    pub async fn post_raw(&self, body: Vec<u8>) -> Reply {
        let request = self
            .client
            .post(self.graphql_url())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .bearer_auth(self.token(X1))
            .body(body);
        reply(request).await
    }

    /// Posts a body larger than the server accepts. The server answers 413 as soon as it has
    /// read past its limit and closes the connection, so a client still writing may see the
    /// connection closed instead of the answer; either is a refusal.
    pub async fn post_oversized(&self, body: Vec<u8>) -> Option<Reply> {
        let request = self
            .client
            .post(self.graphql_url())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .bearer_auth(self.token(X1))
            .body(body);
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                Some(Reply { status, body })
            }
            Err(error) if error.is_request() => None,
            Err(error) => panic!("the server failed on an oversized body: {error}"),
        }
    }

    /// Mutation `op` as `who`, with `data` and the optional arguments.
    pub async fn mutate_with(&self, who: &str, op: &str, data: Value, options: Recorded) -> Reply {
        let variables = json!({ "data": data, "at": options.at, "key": options.client_id });
        self.gql(who, &mutation_text(op), variables).await
    }

    /// Mutation `op` as `who` with only `data`.
    pub async fn mutate(&self, who: &str, op: &str, data: Value) -> Reply {
        self.mutate_with(who, op, data, Recorded::default()).await
    }

    /// Mutation `op`, which must succeed; its position.
    pub async fn write(&self, who: &str, op: &str, data: Value) -> u64 {
        self.write_with(who, op, data, Recorded::default()).await
    }

    /// Mutation `op` with options, which must succeed and write; its position.
    pub async fn write_with(&self, who: &str, op: &str, data: Value, options: Recorded) -> u64 {
        let reply = self.mutate_with(who, op, data, options).await;
        let written = Written::of(&reply, op);
        assert!(
            written.written,
            "{op} by {who} wrote nothing new: {reply:?}"
        );
        written.position
    }

    /// The log's head position, as `/health` reports it.
    pub async fn head(&self) -> u64 {
        let health: Value = self
            .client
            .get(format!("{}/health", self.server.base_url))
            .send()
            .await
            .expect("/health answers")
            .json()
            .await
            .expect("/health is JSON");
        health["head_position"].as_u64().expect("a head position")
    }

    /// Whether the server still runs and `/health` answers 200.
    pub async fn healthy(&mut self) -> bool {
        let url = format!("{}/health", self.server.base_url);
        let answered = match self.client.get(&url).send().await {
            Ok(response) => response.status() == StatusCode::OK,
            // A pooled connection the server closed after refusing a request (an oversized
            // body, say) fails once without the server being down: ask again on a new one.
            Err(_) => match reqwest::Client::new().get(&url).send().await {
                Ok(response) => response.status() == StatusCode::OK,
                Err(_) => false,
            },
        };
        answered && self.server.running()
    }

    /// How many events the auditor counts after position `after` (at most a page).
    pub async fn events_after(&self, after: u64) -> usize {
        // The log's connection is keyed by position, so a position is its own cursor.
        let query = "query($after: String) { events(after: $after, first: 500) { edges { node { position } } } }";
        let after = (after > 0).then(|| after.to_string());
        let reply = self.gql(X1, query, json!({ "after": after })).await;
        reply.data("events")["edges"]
            .as_array()
            .expect("edges")
            .len()
    }

    /// The referral as the auditor sees it once the read models reach `at_least`; `None` when
    /// no such referral is recorded.
    pub async fn journey(&self, referral: Uuid, at_least: u64) -> Option<Value> {
        let query = "query($id: UUID!, $at: Int) { referral(id: $id, atLeast: $at) { \
                     status steps { position type actorOrganisation prescriptionId } \
                     prescriptions { prescriptionId status sessionsAttended } } }";
        let reply = self
            .gql(X1, query, json!({ "id": referral, "at": at_least }))
            .await;
        match reply.outcome() {
            Outcome::NotFound => None,
            _ => Some(reply.data("referral").clone()),
        }
    }

    /// How many steps the auditor sees on a referral once everything written so far is folded.
    pub async fn steps(&self, referral: Uuid) -> Option<usize> {
        let head = self.head().await;
        let journey = self.journey(referral, head).await?;
        Some(journey["steps"].as_array().expect("steps").len())
    }

    /// Revokes a token with `followfund token revoke`, as an operator would, while the server
    /// runs.
    pub async fn revoke(&self, token_id: Uuid) {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_followfund"))
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .args(["--database-url", &self.db.url, "token", "revoke"])
            .arg(token_id.to_string())
            .output()
            .await
            .expect("followfund token revoke runs");
        assert!(
            output.status.success(),
            "token revoke failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Brings a new referral held by `holder` to `stage`, writing each step through the API
    /// as the organisation whose step it is.
    pub async fn prepare(&self, stage: Stage, holder: &str, provider: &str) -> Target {
        let mut target = Target {
            referral: Uuid::new_v4(),
            prescription: Uuid::new_v4(),
            session: Uuid::new_v4(),
            steps: 0,
            position: 0,
        };
        let steps: [(&str, &str, Value); 5] = [
            (holder, "referralReceive", received(target.referral, holder)),
            (holder, "referralAccept", referral_only(target.referral)),
            (
                holder,
                "prescriptionIssue",
                issued(target.referral, target.prescription, provider),
            ),
            (
                provider,
                "prescriptionAccept",
                prescription_only(target.prescription),
            ),
            (
                provider,
                "sessionAttend",
                session(target.prescription, target.session),
            ),
        ];
        for (who, op, data) in steps.into_iter().take(stage as usize) {
            target.position = self.write(who, op, data).await;
            target.steps += 1;
        }
        target
    }
}

/// The document for mutation `op`, taking `$data`, `$at` and `$key`.
pub fn mutation_text(op: &str) -> String {
    format!(
        "mutation($data: JSON!, $at: DateTime, $key: UUID) {{ \
         {op}(data: $data, occurredAt: $at, clientId: $key) {{ position eventId written }} }}"
    )
}

/// Sends a request and reads its answer.
async fn reply(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body }
}

/// How far `Api::prepare` takes a referral: each stage adds one step to the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Nothing recorded: the referral id is new.
    Fresh = 0,
    /// Received by its holder.
    Received = 1,
    /// Accepted by its holder.
    Accepted = 2,
    /// A prescription issued to the provider.
    Issued = 3,
    /// The provider accepted the prescription.
    Taken = 4,
    /// One session attended.
    Attended = 5,
}

/// The ids of a prepared referral, and how far it got.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The referral.
    pub referral: Uuid,
    /// Its prescription (not yet issued below `Stage::Issued`).
    pub prescription: Uuid,
    /// The attended session (not yet recorded below `Stage::Attended`).
    pub session: Uuid,
    /// Steps written.
    pub steps: usize,
    /// The position of the last of them.
    pub position: u64,
}

/// A `referral.received` payload for a new person, received by `holder`.
pub fn received(referral: Uuid, holder: &str) -> Value {
    json!({
        "referral_id": referral,
        "person_id": Uuid::new_v4(),
        "source": "gp_practice",
        "referrer": "A81001",
        "link_worker_organisation": holder,
        "reasons": ["loneliness"],
        "age_band": "65-74",
        "conditions": [],
    })
}

/// A payload naming only the referral (`referral.accepted`).
pub fn referral_only(referral: Uuid) -> Value {
    json!({ "referral_id": referral })
}

/// A `prescription.issued` payload for an unfunded walking group.
pub fn issued(referral: Uuid, prescription: Uuid, provider: &str) -> Value {
    json!({
        "prescription_id": prescription,
        "referral_id": referral,
        "provider": provider,
        "activity_type": "walking",
        "agreement_id": null,
    })
}

/// A payload naming only the prescription (`prescription.accepted`, `.completed`).
pub fn prescription_only(prescription: Uuid) -> Value {
    json!({ "prescription_id": prescription })
}

/// A `session.attended` payload.
pub fn session(prescription: Uuid, session: Uuid) -> Value {
    json!({ "prescription_id": prescription, "session_id": session })
}

/// A `session.retracted` payload.
pub fn retracted(prescription: Uuid, session: Uuid) -> Value {
    json!({ "prescription_id": prescription, "session_id": session, "reason": "recorded_in_error" })
}
