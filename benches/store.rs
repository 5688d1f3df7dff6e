//! Store benchmark: durable appends per second (one appender, 32 concurrent appenders, batches
//! of 1,000) and read_all + decode throughput, on SQLite and PostgreSQL, each beside a naive
//! baseline measured in the same run. Every figure is the median of three runs (one with
//! `--quick`); every append run gets a fresh database, so each starts from an empty log.
//!
//! `cargo bench --bench store -- [--backend sqlite|postgres] [--events N] [--quick]`, where N
//! is the event count of the grouped single-event scenario and the other scenarios scale from
//! it. PostgreSQL databases are created on the server at `FOLLOWFUND_TEST_POSTGRES`. Prints a
//! table per backend and writes `target/bench-store.json`.

use std::future::Future;
use std::hint::black_box;
use std::time::Instant;

use followfund::load::referral_received;
use followfund::store::{NewEvent, Store, StoreOptions};
use serde::Serialize;
use sqlx::Connection;
use uuid::Uuid;

/// Tasks appending at once in the contended scenario.
const APPENDERS_CONCURRENT: usize = 32;
/// Events per append in the batch scenario.
const BATCH_EVENTS: usize = 1_000;
/// Events per read_all call when reading in pages (the store's own page limit).
const READ_PAGE_EVENTS: usize = 10_000;
const REPETITIONS: usize = 3;
const REPETITIONS_QUICK: usize = 1;
const EVENTS_GROUPED_DEFAULT: u64 = 20_000;
const EVENTS_GROUPED_QUICK: u64 = 2_000;
const POSTGRES_ADMIN_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const REPORT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-store.json");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Scenario {
    OneAppender,
    ConcurrentAppenders,
    Batches,
    ReadDecode,
    ReadOnly,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::OneAppender => "1 appender, single events",
            Scenario::ConcurrentAppenders => "32 appenders, single events",
            Scenario::Batches => "1 appender, batches of 1,000",
            Scenario::ReadDecode => "read_all + decode, pages of 10,000",
            Scenario::ReadOnly => "read_all alone, pages of 10,000",
        }
    }

    /// The rate the issue asks for on the 2-core reference machine, where it sets one.
    fn target_events_per_s(self, backend: Backend) -> Option<f64> {
        match (backend, self) {
            (Backend::Postgres, Scenario::ConcurrentAppenders) => Some(50_000.0),
            (Backend::Sqlite, Scenario::ConcurrentAppenders) => Some(20_000.0),
            (Backend::Sqlite, Scenario::Batches) => Some(100_000.0),
            (_, Scenario::ReadDecode) => Some(1_000_000.0),
            _ => None,
        }
    }
}

/// Event counts per scenario, all derived from one figure so that `--events` scales the run.
#[derive(Clone, Copy, Debug, Serialize)]
struct Scale {
    /// Single events through group commit, 32 appenders.
    events_grouped: u64,
    /// Every naive append run: one transaction, one fsync, per event, so far slower.
    events_naive: u64,
    /// Events appended in batches of 1,000.
    events_batched: u64,
    /// Events in the log that the paged reads walk.
    events_loaded: u64,
    /// Events read one per call.
    events_read_naive: u64,
    repetitions: usize,
}

impl Scale {
    fn new(events_grouped: u64, repetitions: usize) -> Scale {
        let events_grouped = events_grouped.max(APPENDERS_CONCURRENT as u64);
        Scale {
            events_grouped,
            events_naive: events_grouped / 5,
            events_batched: events_grouped * 10,
            events_loaded: events_grouped * 10,
            events_read_naive: events_grouped / 4,
            repetitions,
        }
    }

    fn events_max(&self) -> u64 {
        self.events_grouped
            .max(self.events_batched)
            .max(self.events_loaded)
    }
}

struct Args {
    backends: Vec<Backend>,
    scale: Scale,
}

/// Reads the few options this bench takes; anything else (cargo passes `--bench`) is ignored.
fn args_parse(mut args: impl Iterator<Item = String>) -> Args {
    let mut backends = vec![Backend::Sqlite, Backend::Postgres];
    let (mut events, mut quick) = (None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--backend" => {
                backends = match args.next().as_deref() {
                    Some("sqlite") => vec![Backend::Sqlite],
                    Some("postgres") => vec![Backend::Postgres],
                    other => usage_exit(&format!(
                        "--backend takes sqlite or postgres, not {other:?}"
                    )),
                }
            }
            "--events" => {
                let value = args
                    .next()
                    .and_then(|text| text.replace('_', "").parse().ok());
                events = Some(value.unwrap_or_else(|| usage_exit("--events takes a whole number")));
            }
            "--quick" => quick = true,
            _ => {}
        }
    }
    let default = if quick {
        EVENTS_GROUPED_QUICK
    } else {
        EVENTS_GROUPED_DEFAULT
    };
    let repetitions = if quick {
        REPETITIONS_QUICK
    } else {
        REPETITIONS
    };
    Args {
        backends,
        scale: Scale::new(events.unwrap_or(default), repetitions),
    }
}

fn usage_exit(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: cargo bench --bench store -- [--backend sqlite|postgres] [--events N] [--quick]"
    );
    std::process::exit(2)
}

/// A database that lives for one measurement.
enum FreshDb {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        admin_url: String,
        name: String,
    },
}

impl FreshDb {
    async fn create(backend: Backend, admin_url: &str) -> FreshDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("log.db").display());
                FreshDb::Sqlite { url, _dir: dir }
            }
            Backend::Postgres => {
                let name = format!("followfund_bench_{}", Uuid::now_v7().simple());
                postgres_execute(admin_url, &format!("CREATE DATABASE {name}")).await;
                let url = database_url(admin_url, &name);
                FreshDb::Postgres {
                    url,
                    admin_url: admin_url.to_string(),
                    name,
                }
            }
        }
    }

    fn url(&self) -> &str {
        match self {
            FreshDb::Sqlite { url, .. } | FreshDb::Postgres { url, .. } => url,
        }
    }

    async fn open(&self, group_commit: bool) -> Store {
        Store::open(self.url(), StoreOptions { group_commit })
            .await
            .expect("opening a fresh store")
    }

    /// Call once every store on it is dropped. FORCE, because a dropped store's pool and
    /// listener let go of their connections in their own time.
    async fn remove(self) {
        if let FreshDb::Postgres {
            admin_url, name, ..
        } = self
        {
            postgres_execute(
                &admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
}

/// The admin URL with its database swapped for `name`, keeping any query string.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let (server, _) = base
        .rsplit_once('/')
        .expect("a PostgreSQL URL ends in /DATABASE");
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

async fn postgres_execute(admin_url: &str, sql: &str) {
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connecting to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|error| panic!("`{sql}` failed: {error}"));
    let _ = admin.close().await;
}

/// One timed run.
#[derive(Clone, Copy, Debug)]
struct Run {
    events: u64,
    seconds: f64,
}

/// The median of repeated runs of the same work, and every run's time so the spread shows.
#[derive(Clone, Debug, Serialize)]
struct Measured {
    events: u64,
    seconds: f64,
    events_per_s: f64,
    seconds_each_run: Vec<f64>,
}

async fn median_of<F, Fut>(repetitions: usize, mut run: F) -> Measured
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Run>,
{
    let mut runs = Vec::with_capacity(repetitions);
    for _ in 0..repetitions.max(1) {
        runs.push(run().await);
    }
    assert!(
        runs.iter().all(|r| r.events == runs[0].events),
        "every repetition does the same work"
    );
    let seconds_each_run: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let median = runs[runs.len() / 2];
    Measured {
        events: median.events,
        seconds: median.seconds,
        events_per_s: median.events as f64 / median.seconds,
        seconds_each_run,
    }
}

/// How appends reach the store: how many tasks, how many events per append, grouped or not.
#[derive(Clone, Copy, Debug)]
struct Shape {
    appenders: usize,
    batch_events: usize,
    group_commit: bool,
}

const NAIVE: Shape = Shape {
    appenders: 1,
    batch_events: 1,
    group_commit: false,
};

/// Deals the events out as appends, round robin over the appenders, before any clock starts.
fn lanes(events: &[NewEvent], shape: Shape) -> Vec<Vec<Vec<NewEvent>>> {
    let mut lanes = vec![Vec::new(); shape.appenders];
    for (index, batch) in events.chunks(shape.batch_events).enumerate() {
        lanes[index % shape.appenders].push(batch.to_vec());
    }
    lanes
}

/// Each lane appends in order, awaiting each acknowledgement (the events are then durable)
/// before its next append; returns the events written.
async fn lanes_append(store: &Store, lanes: Vec<Vec<Vec<NewEvent>>>) -> u64 {
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|lane| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut written = 0;
                for batch in lane {
                    let events = batch.len();
                    let appended = store
                        .append(batch, Vec::new())
                        .await
                        .expect("a benchmark append");
                    assert!(appended.written && appended.positions.len() == events);
                    written += events as u64;
                }
                written
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        written += task.await.expect("an appender task");
    }
    written
}

/// Appends `events` shaped as asked to a fresh, empty log and times it to the last ack.
async fn appends_run(admin_url: &str, backend: Backend, events: &[NewEvent], shape: Shape) -> Run {
    let db = FreshDb::create(backend, admin_url).await;
    let store = db.open(shape.group_commit).await;
    let lanes = lanes(events, shape);
    let started = Instant::now();
    let written = lanes_append(&store, lanes).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        store.head_position(),
        written,
        "every acknowledged event is in the log"
    );
    drop(store);
    db.remove().await;
    Run {
        events: written,
        seconds,
    }
}

/// One scenario's result beside its baseline.
#[derive(Debug, Serialize)]
struct Row {
    scenario: Scenario,
    label: &'static str,
    measured: Measured,
    baseline: Measured,
    baseline_is: &'static str,
    ratio: f64,
    target_events_per_s: Option<f64>,
    target_met: Option<bool>,
}

impl Row {
    fn new(
        backend: Backend,
        scenario: Scenario,
        measured: Measured,
        baseline: Measured,
        baseline_is: &'static str,
    ) -> Row {
        let target = scenario.target_events_per_s(backend);
        Row {
            scenario,
            label: scenario.label(),
            ratio: measured.events_per_s / baseline.events_per_s,
            target_met: target.map(|rate| measured.events_per_s >= rate),
            target_events_per_s: target,
            measured,
            baseline,
            baseline_is,
        }
    }
}

const BASELINE_APPENDS: &str = "the same appends, one transaction per event (group_commit off)";
const BASELINE_NAIVE_ONE: &str = "one appender, one event per append, one transaction per event";
const BASELINE_READS: &str = "one event per read_all call";

struct Bench<'a> {
    admin_url: &'a str,
    backend: Backend,
    scale: Scale,
    events: &'a [NewEvent],
}

impl Bench<'_> {
    async fn appends(&self, events: u64, shape: Shape) -> Measured {
        let (admin_url, backend) = (self.admin_url, self.backend);
        let events = &self.events[..events as usize];
        let measured = median_of(self.scale.repetitions, move || {
            appends_run(admin_url, backend, events, shape)
        })
        .await;
        eprintln!(
            "  {} x{} batch {} group_commit {}: {:.0} events/s",
            backend.label(),
            shape.appenders,
            shape.batch_events,
            shape.group_commit,
            measured.events_per_s
        );
        measured
    }

    async fn append_rows(&self) -> Vec<Row> {
        let s = self.scale;
        let single = |appenders, group_commit| Shape {
            appenders,
            batch_events: 1,
            group_commit,
        };
        // One appender never finds company in the queue, so group commit cannot help it: both
        // sides pay one fsync per event, and the naive count keeps the run short.
        let one = self.appends(s.events_naive, single(1, true)).await;
        let one_naive = self.appends(s.events_naive, NAIVE).await;
        let many = self
            .appends(s.events_grouped, single(APPENDERS_CONCURRENT, true))
            .await;
        let many_naive = self
            .appends(s.events_naive, single(APPENDERS_CONCURRENT, false))
            .await;
        let batches = Shape {
            appenders: 1,
            batch_events: BATCH_EVENTS,
            group_commit: true,
        };
        let batched = self.appends(s.events_batched, batches).await;
        let (b, one_naive_copy) = (self.backend, one_naive.clone());
        vec![
            Row::new(b, Scenario::OneAppender, one, one_naive, BASELINE_APPENDS),
            Row::new(
                b,
                Scenario::ConcurrentAppenders,
                many,
                many_naive,
                BASELINE_APPENDS,
            ),
            // The naive way to append a batch is the first scenario's baseline: no need to pay
            // for it twice.
            Row::new(
                b,
                Scenario::Batches,
                batched,
                one_naive_copy,
                BASELINE_NAIVE_ONE,
            ),
        ]
    }

    /// Loads one log, then times walking it in pages and one event at a time, with and
    /// without decoding. Reads do not change the log, so its runs can share it.
    async fn read_rows(&self) -> Vec<Row> {
        let s = self.scale;
        let db = FreshDb::create(self.backend, self.admin_url).await;
        let store = db.open(true).await;
        let load = Shape {
            appenders: 1,
            batch_events: BATCH_EVENTS,
            group_commit: true,
        };
        lanes_append(
            &store,
            lanes(&self.events[..s.events_loaded as usize], load),
        )
        .await;
        let reader = &store;
        let timed = |page_events, events_max, decode| {
            median_of(s.repetitions, move || {
                reads_run(reader, page_events, events_max, decode)
            })
        };
        let paged_decode = timed(READ_PAGE_EVENTS, s.events_loaded, true).await;
        let paged = timed(READ_PAGE_EVENTS, s.events_loaded, false).await;
        let naive_decode = timed(1, s.events_read_naive, true).await;
        let naive = timed(1, s.events_read_naive, false).await;
        assert_eq!(
            paged_decode.events, s.events_loaded,
            "the paged read walks the whole log"
        );
        eprintln!(
            "  {} reads: {:.0} events/s decoded",
            self.backend.label(),
            paged_decode.events_per_s
        );
        drop(store);
        db.remove().await;
        let b = self.backend;
        vec![
            Row::new(
                b,
                Scenario::ReadDecode,
                paged_decode,
                naive_decode,
                BASELINE_READS,
            ),
            Row::new(b, Scenario::ReadOnly, paged, naive, BASELINE_READS),
        ]
    }
}

/// Reads from position 1 in pages of `page_events` until `events_max` events or the head.
/// Each event is decoded (or at least touched) through `black_box`, so none is skipped.
async fn reads_run(store: &Store, page_events: usize, events_max: u64, decode: bool) -> Run {
    let started = Instant::now();
    let (mut from, mut events) = (1, 0);
    while events < events_max {
        let page = store
            .read_all(from, page_events)
            .await
            .expect("a benchmark read");
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for event in &page {
            if decode {
                black_box(event.decode().expect("a stored referral decodes"));
            } else {
                black_box(event);
            }
        }
        events += page.len() as u64;
    }
    Run {
        events,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// What one backend measured, or why it was not measured.
#[derive(Debug, Serialize)]
struct BackendReport {
    backend: Backend,
    rows: Vec<Row>,
    skipped: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    statistic: &'static str,
    scale: Scale,
    seconds_total: f64,
    backends: Vec<BackendReport>,
}

async fn backend_bench(
    backend: Backend,
    admin_url: &str,
    scale: Scale,
    events: &[NewEvent],
) -> BackendReport {
    if backend == Backend::Postgres
        && let Err(error) = sqlx::PgConnection::connect(admin_url).await
    {
        let skipped = format!("no PostgreSQL server answered at {admin_url}: {error}");
        eprintln!(
            "\n*** {skipped}\n*** PostgreSQL NOT benchmarked; set FOLLOWFUND_TEST_POSTGRES to a server.\n"
        );
        return BackendReport {
            backend,
            rows: Vec::new(),
            skipped: Some(skipped),
        };
    }
    eprintln!("{}: measuring", backend.label());
    let bench = Bench {
        admin_url,
        backend,
        scale,
        events,
    };
    let mut rows = bench.append_rows().await;
    rows.extend(bench.read_rows().await);
    BackendReport {
        backend,
        rows,
        skipped: None,
    }
}

/// 1234567.8 as "1,234,568".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn table_print(report: &BackendReport, scale: &Scale) {
    println!(
        "\n{}: median of {} run(s) per figure; every append run on a fresh database",
        report.backend.label(),
        scale.repetitions
    );
    if let Some(skipped) = &report.skipped {
        println!("NOT MEASURED: {skipped}");
        return;
    }
    println!(
        "{:<36} {:>9} {:>8} {:>11} {:>18} {:>8}",
        "scenario", "events", "seconds", "events/s", "baseline events/s", "ratio"
    );
    for row in &report.rows {
        let m = &row.measured;
        println!(
            "{:<36} {:>9} {:>8.3} {:>11} {:>18} {:>8.1}",
            row.label,
            thousands(m.events as f64),
            m.seconds,
            thousands(m.events_per_s),
            thousands(row.baseline.events_per_s),
            row.ratio
        );
    }
    let mut baselines: Vec<(&str, u64)> = report
        .rows
        .iter()
        .map(|row| (row.baseline_is, row.baseline.events))
        .collect();
    baselines.dedup();
    for (baseline_is, events) in baselines {
        println!(
            "baseline: {baseline_is}, {} events",
            thousands(events as f64)
        );
    }
    for row in &report.rows {
        let Some(target) = row.target_events_per_s else {
            continue;
        };
        let verdict = if row.target_met == Some(true) {
            "met"
        } else {
            "MISSED"
        };
        let rate = thousands(row.measured.events_per_s);
        println!(
            "target: {} >= {} events/s: {verdict} ({rate})",
            row.label,
            thousands(target)
        );
    }
}

fn report_write(report: &Report) {
    let path = std::path::Path::new(REPORT_PATH);
    std::fs::create_dir_all(path.parent().expect("the report has a directory"))
        .expect("creating target/");
    let json = serde_json::to_string_pretty(report).expect("the report serialises");
    std::fs::write(path, json).expect("writing the report");
    println!("\nwrote {}", path.display());
}

async fn bench(args: Args) -> Report {
    let started = Instant::now();
    let admin_url = std::env::var("FOLLOWFUND_TEST_POSTGRES")
        .unwrap_or_else(|_| POSTGRES_ADMIN_URL_DEFAULT.into());
    // Built before any clock starts, and shared: each run's log is fresh, so ids never clash.
    let events: Vec<NewEvent> = (0..args.scale.events_max())
        .map(referral_received)
        .collect();
    let mut backends = Vec::new();
    for backend in args.backends {
        let report = backend_bench(backend, &admin_url, args.scale, &events).await;
        table_print(&report, &args.scale);
        backends.push(report);
    }
    let seconds_total = started.elapsed().as_secs_f64();
    println!("\ntotal {seconds_total:.0} s");
    Report {
        statistic: "median",
        scale: args.scale,
        seconds_total,
        backends,
    }
}

fn main() {
    let args = args_parse(std::env::args().skip(1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(bench(args));
    report_write(&report);
}
