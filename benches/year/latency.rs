//! GraphQL latency on the simulated year: three queries, each asked by an organisation allowed
//! to, sent over HTTP to a live server at a fixed total rate from many clients.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use followfund::api::AppState;
use followfund::runner::Runner;
use followfund::store::Store;
use followfund_contracts::Role;
use followfund_contracts::terms::FinancialYear;
use serde_json::{Value, json};
use tokio::time::Instant;

/// The rate the latency target is set at (p99 under 10 ms at 500 requests/s), over all clients.
pub const RATE_PER_SECOND: u32 = 500;
/// The numbers of clients that rate is spread over, one run each.
// Each client holds its own connection, and both ends of it are in this process: 500 clients
// take about 1,000 file descriptors. `ulimit -n` is 20,000 on the benchmark machine;
// under a soft limit near 1,024 the 500-client runs fail to connect.
pub const CLIENT_COUNTS: [usize; 2] = [50, 500];
/// How long after the last request was due the answers still missing are waited for.
const DRAIN_SECONDS: u64 = 5;
/// Requests asked one at a time to find a query's service time.
const ALONE_REQUESTS: usize = 21;
/// A `/health` answer within this is taken as the server having nothing else to do.
const SETTLED_HEALTH_MS: u64 = 2;
/// The longest a run waits for the server to settle after the one before.
const SETTLE_SECONDS_MAX: u64 = 60;
/// How long after the clients are connected the first request is due.
const FIRST_DUE_MS: u64 = 100;
/// The latency target: answers slower than this are listed by when they were due.
const SLOW_MS: f64 = 10.0;
/// Slow answers due within this of each other are reported as one stall.
const STALL_GAP_MS: f64 = 250.0;

/// A query and the organisation that asks it.
pub struct Probe {
    /// The query's name, as the table shows it.
    pub query: String,
    /// Who asks, and what there is to answer.
    pub note: String,
    /// The median latency asked alone, one request at a time: the server's work for one
    /// answer, which bounds the rate two cores can sustain.
    pub alone_ms: f64,
    token: String,
    /// The request body, encoded once.
    body: Bytes,
}

/// One run of one query at one number of clients.
pub struct Latency {
    /// The query.
    pub query: String,
    /// The clients the rate was spread over.
    pub clients: usize,
    /// Requests answered.
    pub requests: u64,
    /// Requests the schedule held but that were still unanswered at the end of the drain.
    pub unanswered: u64,
    /// Answers per second, from the first scheduled send to the last answer.
    pub requests_per_second: f64,
    /// Latency percentiles and maximum, from each request's scheduled send to its whole answer.
    pub p50_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
    /// The slowest.
    pub max_ms: f64,
    /// The median asked alone.
    pub alone_ms: f64,
    /// Whether the server was still busy with the run before when this one began, so that
    /// its figures are partly the last run's.
    pub started_busy: bool,
    /// Who asked and what there was to answer.
    pub note: String,
    /// When the run's first request was due, in seconds since the Unix epoch, to match the
    /// run against a record of the machine kept beside it.
    pub began_unix_s: f64,
    /// The answers slower than [`SLOW_MS`], grouped into stalls.
    pub stalls: Vec<Stall>,
    /// The share of the machine's processor time during the run that its hypervisor gave to
    /// other machines (steal in `/proc/stat`): answers queue behind it as behind a stall.
    pub steal_share: f64,
}

/// Slow answers whose due times lie close together: one stall of the server or the machine.
pub struct Stall {
    /// When the first slow answer was due, in seconds from the run's start.
    pub from_s: f64,
    /// When the last one was due.
    pub until_s: f64,
    /// How many answers were slower than [`SLOW_MS`].
    pub answers: usize,
    /// The slowest of them.
    pub worst_ms: f64,
}

/// Serves the API over `store` from `runner`'s read models, on a free local port.
pub async fn serve(store: Store, runner: Runner) -> SocketAddr {
    let state = AppState::with_runner(store, runner);
    followfund::server::serve_on_free_port(state)
        .await
        .expect("a local port")
}

/// The three queries, each from the organisation of the simulated year with the most to
/// answer, with a token of its own; each is asked once here, so that a refused query stops the
/// benchmark before any timing.
pub async fn probes(store: &Store, runner: &Runner, address: SocketAddr) -> Vec<Probe> {
    let endpoint = &format!("http://{address}/graphql");
    let year = FinancialYear::starting(followfund::simulate::YEAR_START_YEAR);
    let (provider, lines, pcn, claims, contract, viewer, sib_claims) = {
        let models = runner.read();
        let funded = |code| {
            models
                .journeys
                .prescriptions_of_provider(code)
                .filter(|p| models.ledger.funding(p.prescription_id).is_some())
                .count()
        };
        let (provider, lines) = models
            .organisations
            .iter()
            .filter(|o| o.role == Role::Provider)
            .map(|o| (o.code.clone(), funded(&o.code)))
            .max_by_key(|(_, lines)| *lines)
            .expect("the simulated year has providers");
        let pcn = models
            .arrs
            .pcns()
            .max_by_key(|p| (p.claims.len(), p.workers.len()))
            .expect("the simulated year has PCNs");
        let contract = models
            .sib
            .contracts()
            .max_by_key(|c| c.claims.len())
            .expect("the simulated year has an outcome contract");
        // An investor named in the contract may see its status; failing one, a commissioner
        // that pays it. Both must be registered in that role for a token to be issued.
        let registered_as = |code: &followfund_contracts::OdsCode, role| {
            models
                .organisations
                .get(code)
                .is_some_and(|o| o.role == role)
        };
        let terms = &contract.terms;
        let investor = terms
            .investors
            .iter()
            .map(|i| (i.investor.clone(), Role::Investor))
            .find(|(code, role)| registered_as(code, *role));
        let payer = terms
            .payers
            .iter()
            .map(|p| (p.payer.clone(), Role::Commissioner))
            .find(|(code, role)| registered_as(code, *role));
        let viewer = investor
            .or(payer)
            .expect("the contract names an investor or a commissioner that pays");
        (
            provider,
            lines,
            pcn.code.clone(),
            pcn.claims.len(),
            terms.contract_id,
            viewer,
            contract.claims.len(),
        )
    };
    // The first page of the statement, as a provider's screen (10 lines) or the default page
    // (50) asks: the cost grows with the lines and their explanations.
    let statement = "query($provider: String!, $first: Int!) { providerStatement(provider: $provider, first: $first) { \
        prescriptionId referralId anchor agreementId earned committed \
        explain { position eventType rule agreementVersion amount debit credit } } }";
    let arrs = "query($pcn: String!, $year: String!) { arrsYear(pcn: $pcn, financialYear: $year) { \
        pcn financialYear rulesVersion combinedSum explain { position rule amount detail } \
        months { month label limit claimable claimed paid adjustment cutByEntitlement \
        linkWorkers { linkWorkerId supplier daysInPost maximum actualCost claimable cutByMaximum \
        explain { position rule amount detail } } explain { position rule amount detail } csv } \
        totals { claimable claimed paid cutByEntitlement cutByMaximum unused lapsed } } }";
    let sib = "query($contract: UUID!) { sibContract(contractId: $contract) { \
        contractId name startsOn endsOn cohortPeople \
        cohortOutcomes { outcomeId measured result shareEarned earned explain } \
        claims { outcomeId claimed verified withdrawn } due paid capped \
        byPayerPeriod { payer period due paid capped } \
        investors { investor capital received } } }";
    let mut probes = Vec::new();
    for first in [10, 50] {
        probes.push(Probe {
            query: format!("providerStatement first {first}"),
            note: format!("provider {provider}, first {first} of {lines} statement lines"),
            alone_ms: f64::NAN,
            token: token(store, provider.as_str(), Role::Provider).await,
            body: encoded(json!({
                "query": statement,
                "variables": { "provider": provider.as_str(), "first": first },
            })),
        });
    }
    probes.extend([
        Probe {
            query: format!("arrsYear {year}"),
            note: format!("pcn {pcn}, {claims} claims"),
            alone_ms: f64::NAN,
            token: token(store, pcn.as_str(), Role::Pcn).await,
            body: encoded(
                json!({ "query": arrs, "variables": { "pcn": pcn.as_str(), "year": year.to_string() } }),
            ),
        },
        Probe {
            query: "sibContract".into(),
            note: format!(
                "{} {}, {sib_claims} claims",
                viewer.1.as_str(),
                viewer.0.as_str()
            ),
            alone_ms: f64::NAN,
            token: token(store, viewer.0.as_str(), viewer.1).await,
            body: encoded(json!({ "query": sib, "variables": { "contract": contract } })),
        },
    ]);
    let http = reqwest::Client::new();
    for probe in &mut probes {
        let body = probe.body.clone();
        let answer = ask(&http, endpoint, &probe.token, body.clone())
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", probe.query));
        checked(&probe.query, &answer);
        probe.note += &format!("; answer {:.1} KiB", answer.len() as f64 / 1024.0);
        let mut alone = Vec::new();
        for _ in 0..ALONE_REQUESTS {
            let began = Instant::now();
            let answer = ask(&http, endpoint, &probe.token, body.clone()).await;
            alone.push(began.elapsed());
            answered(&probe.query, &answer.expect("an answer"));
        }
        alone.sort();
        probe.alone_ms = alone[alone.len() / 2].as_secs_f64() * 1e3;
    }
    probes
}

fn encoded(body: Value) -> Bytes {
    Bytes::from(serde_json::to_vec(&body).expect("JSON encodes"))
}

async fn token(store: &Store, code: &str, role: Role) -> String {
    let (secret, _) = followfund::admin::token_create(store, code, role)
        .await
        .unwrap_or_else(|error| panic!("a token for {code} as {role:?}: {error}"));
    secret
}

/// Runs `probe` at [`RATE_PER_SECOND`] in all from `clients` clients for `duration`.
///
/// An open loop: request k of the run is due at k / rate seconds from the start and is sent by
/// client k mod `clients`, each client sending its own in turn over its own connection. Latency
/// is counted from when a request was due, not from when it went out, so that when the server
/// stalls the requests queued behind the stall count their wait (no coordinated omission).
pub async fn measure(
    address: SocketAddr,
    probe: &Probe,
    clients: usize,
    duration: Duration,
) -> Latency {
    let started_busy = !settle(address).await;
    let (endpoint, token) = (format!("http://{address}/graphql"), probe.token.clone());
    let query = probe.query.clone();
    let body = probe.body.clone();
    // The clients run on a thread and runtime of their own, so that a resolver computing on one
    // of the server's workers cannot hold back a client's send or its clock. With two cores
    // they still share the processor with the server, as any client on the same machine would.
    let steal_before = CpuTimes::now();
    let clients_thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the clients")
            .block_on(drive(endpoint, token, query, body, clients, duration))
    });
    let (latencies, scheduled, seconds, began_unix_s) =
        tokio::task::spawn_blocking(move || clients_thread.join())
            .await
            .expect("the clients' thread")
            .expect("the clients ran");
    let mut latency = summary(probe, clients, &latencies, scheduled, seconds, started_busy);
    latency.steal_share = CpuTimes::now().steal_share_since(&steal_before);
    latency.began_unix_s = began_unix_s;
    latency
}

/// Waits until the server answers `/health` promptly a few times running; false when it was
/// still busy after [`SETTLE_SECONDS_MAX`]. A run whose clients gave up at the deadline leaves
/// the server answering their last requests for a while; at a rate near its capacity it would
/// take most of the next run to catch up, and that run's figures would be the last one's.
async fn settle(address: SocketAddr) -> bool {
    let http = reqwest::Client::new();
    let url = format!("http://{address}/health");
    let gave_up = Instant::now() + Duration::from_secs(SETTLE_SECONDS_MAX);
    let mut prompt = 0;
    while prompt < 3 {
        if Instant::now() > gave_up {
            return false;
        }
        let began = Instant::now();
        let answer = http
            .get(&url)
            .send()
            .await
            .and_then(|a| a.error_for_status());
        answer.expect("the server answers /health");
        prompt = if began.elapsed() <= Duration::from_millis(SETTLED_HEALTH_MS) {
            prompt + 1
        } else {
            0
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

/// Every answered request's latency, how many were scheduled, and the seconds from the first
/// scheduled send to the last answer.
async fn drive(
    endpoint: String,
    token: String,
    query: String,
    body: Bytes,
    clients: usize,
    duration: Duration,
) -> (Vec<(Duration, Duration)>, u64, f64, f64) {
    let https: Vec<reqwest::Client> = (0..clients).map(|_| reqwest::Client::new()).collect();
    // Each client connects before the clock starts: the target is about answering, and a
    // connection opened once serves every request a client sends.
    let me = encoded(json!({ "query": "{ me { organisation } }" }));
    let warm_up = https.iter().map(|http| {
        let (endpoint, token, me) = (&endpoint, &token, me.clone());
        async move {
            let answer = ask(http, endpoint, token, me).await.expect("warm-up");
            checked("me", &answer);
        }
    });
    futures::future::join_all(warm_up).await;

    let scheduled = (duration.as_secs_f64() * f64::from(RATE_PER_SECOND)) as u64;
    let first_due = Duration::from_millis(FIRST_DUE_MS);
    let start = Instant::now() + first_due;
    let began_unix_s = (std::time::SystemTime::now() + first_due)
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    // A server that cannot keep up ends the run here rather than stretching it without bound;
    // what is still unanswered is reported as such.
    let deadline = start + duration + Duration::from_secs(DRAIN_SECONDS);
    let (endpoint, token, query) = (
        std::sync::Arc::new(endpoint),
        std::sync::Arc::new(token),
        std::sync::Arc::new(query),
    );
    let mut tasks = Vec::new();
    for (client, http) in https.into_iter().enumerate() {
        let (body, endpoint, token, query) =
            (body.clone(), endpoint.clone(), token.clone(), query.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut last_answer = start;
            for k in (client as u64..scheduled).step_by(clients) {
                let due = start + Duration::from_secs_f64(k as f64 / f64::from(RATE_PER_SECOND));
                tokio::time::sleep_until(due).await;
                let asked = ask(&http, &endpoint, &token, body.clone());
                let Ok(answer) = tokio::time::timeout_at(deadline, asked).await else {
                    break;
                };
                last_answer = Instant::now();
                latencies.push((due - start, last_answer - due));
                answered(&query, &answer.expect("an answer"));
            }
            (latencies, last_answer)
        }));
    }
    let mut latencies = Vec::new();
    let mut last_answer = start;
    for task in tasks {
        let (client_latencies, client_last) = task.await.expect("a client");
        latencies.extend(client_latencies);
        last_answer = last_answer.max(client_last);
    }
    let seconds = (last_answer - start).as_secs_f64();
    (latencies, scheduled, seconds, began_unix_s)
}

async fn ask(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    body: Bytes,
) -> Result<Bytes, reqwest::Error> {
    http.post(endpoint)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await
}

/// An answer's top level, read without building it: the clients share the two cores with the
/// server, and a tree of every answer would take time from it.
#[derive(serde::Deserialize)]
struct Answer {
    data: Option<serde::de::IgnoredAny>,
    errors: Option<serde::de::IgnoredAny>,
}

/// Stops the benchmark on a timed answer that is not data or carries errors, looking only for
/// the keys: an answer was read whole once by [`checked`] before timing, and reading a 160 KiB
/// statement whole on every answer took a tenth of the time the server spent making it.
fn answered(query: &str, answer: &[u8]) {
    // async-graphql writes `data` first and `errors`, when there are any, at the top level
    // after it; a string holding those characters would have its quotes escaped.
    let errors = memchr::memmem::find(answer, br#""errors":"#).is_some();
    if errors || !answer.starts_with(br#"{"data":{"#) {
        checked(query, answer);
        panic!("{query}: the answer is not data without errors");
    }
}

/// Stops the benchmark on an answer with errors: the latency of a refusal means nothing.
fn checked(query: &str, answer: &[u8]) {
    let top: Answer = serde_json::from_slice(answer)
        .unwrap_or_else(|error| panic!("{query}: the answer is not JSON: {error}"));
    if top.errors.is_some() || top.data.is_none() {
        let text = String::from_utf8_lossy(answer);
        panic!(
            "{query} answered with errors: {}",
            &text[..text.floor_char_boundary(1_000)]
        );
    }
}

fn summary(
    probe: &Probe,
    clients: usize,
    answers: &[(Duration, Duration)],
    scheduled: u64,
    seconds: f64,
    started_busy: bool,
) -> Latency {
    let mut latencies: Vec<Duration> = answers.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();
    let requests = latencies.len() as u64;
    // Nearest rank: the smallest latency at least `fraction` of the answers are within.
    let at = |fraction: f64| {
        let rank = ((latencies.len() as f64 * fraction).ceil() as usize).max(1);
        latencies
            .get(rank - 1)
            .map_or(f64::NAN, |l| l.as_secs_f64() * 1e3)
    };
    Latency {
        query: probe.query.clone(),
        clients,
        requests,
        unanswered: scheduled - requests,
        requests_per_second: requests as f64 / seconds.max(f64::EPSILON),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        alone_ms: probe.alone_ms,
        started_busy,
        note: probe.note.clone(),
        began_unix_s: f64::NAN,
        stalls: stalls(answers),
        steal_share: f64::NAN,
    }
}

/// The machine's processor time so far, in clock ticks summed over its processors.
struct CpuTimes {
    total: u64,
    steal: u64,
}

impl CpuTimes {
    /// From the `cpu` line of `/proc/stat`: user, nice, system, idle, iowait, irq, softirq,
    /// steal, then guest times that user already counts. Zeros where there is no such file.
    fn now() -> CpuTimes {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|field| field.parse().ok())
            .collect();
        CpuTimes {
            total: ticks.iter().sum(),
            steal: ticks.get(7).copied().unwrap_or(0),
        }
    }

    /// The share of the ticks since `before` that were stolen; NaN when none were counted.
    fn steal_share_since(&self, before: &CpuTimes) -> f64 {
        let total = self.total.saturating_sub(before.total);
        let steal = self.steal.saturating_sub(before.steal);
        if total == 0 {
            return f64::NAN;
        }
        steal as f64 / total as f64
    }
}

/// The answers slower than [`SLOW_MS`], by when they were due, grouped where they lie within
/// [`STALL_GAP_MS`] of each other.
fn stalls(answers: &[(Duration, Duration)]) -> Vec<Stall> {
    let mut slow: Vec<(f64, f64)> = answers
        .iter()
        .map(|(due, latency)| (due.as_secs_f64(), latency.as_secs_f64() * 1e3))
        .filter(|(_, latency_ms)| *latency_ms > SLOW_MS)
        .collect();
    slow.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut stalls: Vec<Stall> = Vec::new();
    for (due_s, latency_ms) in slow {
        match stalls.last_mut() {
            Some(stall) if (due_s - stall.until_s) * 1e3 <= STALL_GAP_MS => {
                stall.until_s = due_s;
                stall.answers += 1;
                stall.worst_ms = stall.worst_ms.max(latency_ms);
            }
            _ => stalls.push(Stall {
                from_s: due_s,
                until_s: due_s,
                answers: 1,
                worst_ms: latency_ms,
            }),
        }
    }
    stalls
}

/// The latency table, after the steps' table.
pub fn print(rows: &[Latency], duration: Duration) {
    println!();
    println!(
        "GraphQL latency: an open loop at {RATE_PER_SECOND} requests/s in all, {} s a run; \
         from when each request was due to its whole answer (alone: one request at a time; \
         steal: the share of processor time the hypervisor gave to other machines)",
        duration.as_secs()
    );
    println!(
        "| {:<18} | {:>7} | {:>8} | {:>10} | {:>8} | {:>8} | {:>8} | {:>8} | {:>7} | note",
        "query",
        "clients",
        "requests",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "alone ms",
        "steal %"
    );
    println!(
        "|{:-<20}|{:-<9}|{:-<10}|{:-<12}|{:-<10}|{:-<10}|{:-<10}|{:-<10}|{:-<9}|------",
        "", "", "", "", "", "", "", "", ""
    );
    for row in rows {
        let mut note = row.note.clone();
        if row.unanswered > 0 {
            note += &format!("; {} unanswered by the deadline", row.unanswered);
        }
        if row.started_busy {
            note += &format!(
                "; began with the server still busy {SETTLE_SECONDS_MAX} s after the run before"
            );
        }
        println!(
            "| {:<18} | {:>7} | {:>8} | {:>10.0} | {:>8.2} | {:>8.2} | {:>8.2} | {:>8.2} | {:>7.1} | {note}",
            row.query,
            row.clients,
            row.requests,
            row.requests_per_second,
            row.p50_ms,
            row.p99_ms,
            row.max_ms,
            row.alone_ms,
            row.steal_share * 100.0,
        );
    }
    for row in rows.iter().filter(|row| !row.stalls.is_empty()) {
        let stalls: Vec<String> = row
            .stalls
            .iter()
            .map(|stall| {
                format!(
                    "{:.2}-{:.2} s: {} over {SLOW_MS} ms, worst {:.1}",
                    stall.from_s, stall.until_s, stall.answers, stall.worst_ms
                )
            })
            .collect();
        println!(
            "stalls in {} at {} clients (run began at {:.1} s Unix time): {}",
            row.query,
            row.clients,
            row.began_unix_s,
            stalls.join("; ")
        );
    }
}

/// The rows as written to `target/bench-year.json`.
pub fn json_rows(rows: &[Latency]) -> Vec<Value> {
    rows.iter()
        .map(|row| {
            json!({
                "query": row.query,
                "clients": row.clients,
                "requests": row.requests,
                "unanswered": row.unanswered,
                "requests_per_second": row.requests_per_second,
                "target_requests_per_second": RATE_PER_SECOND,
                "p50_ms": row.p50_ms,
                "p99_ms": row.p99_ms,
                "max_ms": row.max_ms,
                "alone_ms": row.alone_ms,
                "started_busy": row.started_busy,
                "note": row.note,
                "began_unix_s": row.began_unix_s,
                "steal_share": row.steal_share,
                "stalls": row.stalls.iter().map(|stall| json!({
                    "from_s": stall.from_s,
                    "until_s": stall.until_s,
                    "answers": stall.answers,
                    "worst_ms": stall.worst_ms,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}
