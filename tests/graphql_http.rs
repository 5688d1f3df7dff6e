//! `followfund serve` against the GraphQL-over-HTTP specification, end to end: a few status
//! codes and media types checked here so a failure reads in Rust, then the public audit suite of
//! the npm package `graphql-http` (`tests/audit`), which must pass every MUST and SHOULD.
//!
//! Needs Node.js and npm on the PATH; without them the audit test fails rather than skips.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{ALLOW, CONTENT_TYPE};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// How long the server may take to answer `/health` after starting.
const SERVER_START_TIMEOUT_MS: u64 = 30_000;
const MEDIA_JSON: &str = "application/json; charset=utf-8";
const MEDIA_GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";

/// A running `followfund serve` on a fresh SQLite database, killed when dropped (also when the
/// test panics).
struct Server {
    child: Child,
    base_url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_followfund"))
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.path().join("x.db").display()))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()
            .expect("followfund starts");
        let mut server = Server {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        server.wait_until_healthy().await;
        server
    }

    fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base_url)
    }

    async fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(SERVER_START_TIMEOUT_MS);
        let health = format!("{}/health", self.base_url);
        loop {
            if let Some(status) = self.child.try_wait().expect("the server's status") {
                panic!("followfund serve exited before answering: {status}");
            }
            if let Ok(response) = reqwest::get(&health).await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no answer from {health} in {SERVER_START_TIMEOUT_MS} ms"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A port nothing listens on: bind to port 0, note the port, let it go.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a local address").port()
}

/// The status, Content-Type and JSON body of a response.
async fn send(request: RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON body, got {text:?}"));
    (status, headers, body)
}

fn content_type(headers: &reqwest::header::HeaderMap) -> &str {
    headers[CONTENT_TYPE]
        .to_str()
        .expect("an ASCII Content-Type")
}

/// A GraphQL-over-HTTP POST of `body` accepting `accept`.
fn post(server: &Server, accept: &str, body: &str) -> RequestBuilder {
    reqwest::Client::new()
        .post(server.graphql_url())
        .header(CONTENT_TYPE, "application/json")
        .header("accept", accept)
        .body(body.to_owned())
}

#[tokio::test]
async fn get_queries_answer_json_by_default() {
    let server = Server::start().await;
    let url = format!("{}?query=%7B%20__typename%20%7D", server.graphql_url());
    let (status, headers, body) = send(reqwest::Client::new().get(url)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type(&headers), MEDIA_JSON);
    assert_eq!(body, json!({ "data": { "__typename": "Query" } }));
}

#[tokio::test]
async fn post_answers_in_the_accepted_media_type() {
    let server = Server::start().await;
    let query = r#"{"query":"{ __typename }"}"#;
    let (status, headers, body) =
        send(post(&server, "application/graphql-response+json", query)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type(&headers), MEDIA_GRAPHQL_RESPONSE_JSON);
    let (status, headers, _) = send(post(&server, "application/json", query)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type(&headers), MEDIA_JSON);
}

#[tokio::test]
async fn invalid_documents_are_400_only_in_graphql_response_json() {
    let server = Server::start().await;
    let unknown_field = r#"{"query":"{ noSuchField }"}"#;
    let (status, _, body) = send(post(
        &server,
        "application/graphql-response+json",
        unknown_field,
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.get("data").is_none(),
        "no data before execution: {body}"
    );
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    let (status, _, body) = send(post(&server, "application/json", unknown_field)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["errors"][0]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn malformed_requests_are_rejected_with_graphql_errors() {
    let server = Server::start().await;
    let (status, _, body) = send(post(&server, "application/json", r#"{ "not a JSON"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["errors"][0]["message"].is_string(), "{body}");

    let (status, _, body) = send(post(&server, "text/html", r#"{"query":"{ __typename }"}"#)).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");

    let plain_text = reqwest::Client::new()
        .post(server.graphql_url())
        .header(CONTENT_TYPE, "text/plain")
        .body("{ __typename }");
    let (status, _, body) = send(plain_text).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
}

#[tokio::test]
async fn mutations_over_get_are_405_allowing_post() {
    let server = Server::start().await;
    let url = format!(
        "{}?query=mutation%20%7B%20__typename%20%7D",
        server.graphql_url()
    );
    let (status, headers, body) = send(reqwest::Client::new().get(url)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(headers[ALLOW], "POST");
    assert!(body["errors"][0]["message"].is_string(), "{body}");
}

/// The audit's directory, with its dependencies installed from the lockfile when missing.
fn audit_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/audit");
    if !dir.join("node_modules/graphql-http").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .expect("npm runs: the GraphQL-over-HTTP audit needs Node.js and npm on the PATH");
        assert!(
            status.success(),
            "npm ci --prefix tests/audit failed: {status}"
        );
    }
    dir
}

#[tokio::test]
async fn graphql_http_audit_passes_every_must_and_should() {
    let dir = audit_dir();
    let server = Server::start().await;
    let output = tokio::process::Command::new("node")
        .arg(dir.join("audit.mjs"))
        .arg(server.graphql_url())
        .output()
        .await
        .expect("node runs: the GraphQL-over-HTTP audit needs Node.js on the PATH");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the graphql-http audit failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
