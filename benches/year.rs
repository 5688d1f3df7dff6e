//! A simulated year end to end: generate it, import it into SQLite (and PostgreSQL when one
//! answers), replay every projection from zero, restart from the snapshot that replay saved, and
//! make a payment run for every anchor, then serve the restarted read models over HTTP and measure
//! GraphQL latency at a fixed request rate. Prints two tables and the machine's yardstick (see
//! `year/yardstick.rs`) and writes `target/bench-year.json`.
//! Run with `cargo bench --bench year -- [--scale small|region|national] [--seed N]
//! [--latency-seconds N] [--from FILE] [--no-postgres]`; the defaults are the region scale and
//! 10 s a latency run. `--from` imports a year written by `followfund simulate -o FILE` instead
//! of generating one. `--database PATH` keeps the SQLite file there, and a second run against it
//! skips generating and importing: it forgets the snapshot and replays the log already imported.
//! `--no-latency` stops after the payment runs.
//! The national year (26.8 million events) runs end to end on a 24 GiB machine: its replay adds
//! about 1.8 GiB resident to this process (a `followfund serve` replaying it peaks at about
//! 1.85 GiB in all) and the snapshot streams to the store in chunks beside it. Its
//! SQLite database (rows and compact blocks) takes about 12.0 GB and its NDJSON 11.7 GB of disk; `--no-postgres` skips the
//! PostgreSQL copy where the disk has no room for a second database of that size.
//! The restart is measured as a service restarts: in a process of its own, started once the
//! replayed models are freed and the write-ahead log the snapshot's save filled is checkpointed.
//! In this process, with the replayed models still being freed beside it, it took a second or
//! more longer.

// A bench's root file finds its modules beside it in benches/, where other benches are found.
#[path = "year/latency.rs"]
mod latency;
#[path = "year/yardstick.rs"]
mod yardstick;

use std::io::BufReader;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use followfund::runner::Runner;
use followfund::simulate::{self, Scale};
use followfund::store::{Actor, SNAPSHOT_CHUNK_BYTES, Store, StoreOptions};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events per atomic import batch: the most one append takes.
const IMPORT_BATCH_EVENTS: usize = followfund::store::APPEND_BATCH_EVENTS_MAX;

/// One measured figure.
struct Row {
    what: String,
    events: u64,
    seconds: f64,
    note: String,
}

fn main() {
    followfund::allocator::purge_promptly();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    // The runner's log says what each start step took as it happens, so that a run the
    // machine cannot finish still shows how far it got.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let scale = match argument("--scale").as_deref() {
        Some("small") => Scale::Small,
        Some("national") => Scale::National,
        _ => Scale::Region,
    };
    let seed = argument("--seed").and_then(|s| s.parse().ok()).unwrap_or(1);
    let latency_seconds = argument("--latency-seconds")
        .and_then(|s| s.parse().ok())
        .filter(|seconds| *seconds > 0)
        .unwrap_or(10);
    let latency_duration = Duration::from_secs(latency_seconds);
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    let database = argument("--database")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("year.db"));
    let sqlite = format!("sqlite://{}", database.display());
    if std::env::args().any(|a| a == RESTART_PROBE) {
        restart_probe(&sqlite).await;
        return;
    }
    if imported(&sqlite).await {
        eprintln!("reusing the year imported into {}", database.display());
    } else {
        import_everywhere(scale, seed, &dir, &sqlite, &mut rows).await;
    }
    forget_snapshots(&sqlite).await;
    let store = Store::open(&sqlite, StoreOptions::default()).await.unwrap();
    let rss_before = rss_kib("VmRSS");
    let faults_before = minor_faults();
    let runner = Runner::start(store.clone()).await.unwrap();
    let started = runner.started();
    rows.push(Row {
        what: "replay every projection from zero".into(),
        events: started.events_folded,
        seconds: started.fold.as_secs_f64(),
        note: format!(
            "resident +{} MiB; process peak {} MiB; {} page faults with the save",
            rss_kib("VmRSS").saturating_sub(rss_before) / 1024,
            rss_kib("VmHWM") / 1024,
            minor_faults() - faults_before
        ),
    });
    rows.push(Row {
        what: format!(
            "save the snapshot (MessagePack, {} MiB chunks)",
            SNAPSHOT_CHUNK_BYTES / (1024 * 1024)
        ),
        events: started.events_folded,
        seconds: started.snapshot_save.as_secs_f64(),
        note: format!("{} MiB", started.snapshot_saved_bytes / (1024 * 1024)),
    });
    let replayed_kib = rss_kib("VmRSS").saturating_sub(rss_before);
    drop(runner);
    settle_memory(replayed_kib / 2).await;
    rows.push(restart_in_a_process_of_its_own(&sqlite, &database).await);
    // The models the rest of the bench reads, started from the same snapshot.
    let restarted = Runner::start(store.clone()).await.unwrap();

    // In a block of its own: the read guard must be gone before the server below awaits.
    {
        let models = restarted.read();
        let through = NaiveDate::from_ymd_opt(2023, 3, 31).unwrap();
        let anchors: Vec<_> = models
            .organisations
            .iter()
            .filter(|o| o.role == followfund_contracts::Role::Anchor)
            .map(|o| o.code.clone())
            .collect();
        let began = Instant::now();
        let mut lines = 0;
        for anchor in &anchors {
            lines += models.ledger.payment_due(anchor, through).len() as u64;
        }
        rows.push(row(
            "payment run for every anchor (lines due, from loaded models)",
            lines,
            began,
            format!("{} anchors", anchors.len()),
        ));
    }

    if std::env::args().any(|a| a == "--no-latency") {
        report(scale, &rows, &[], latency_duration);
        return;
    }
    // As `followfund serve` does once its read models are folded.
    followfund::allocator::purge_lazily();
    let address = latency::serve(store.clone(), restarted.clone()).await;
    let probes = latency::probes(&store, &restarted, address).await;
    let mut latencies = Vec::new();
    for probe in &probes {
        for clients in latency::CLIENT_COUNTS {
            latencies.push(latency::measure(address, probe, clients, latency_duration).await);
        }
    }
    report(scale, &rows, &latencies, latency_duration);
}

/// Generates (or reads with `--from`) the year and imports it into SQLite at `sqlite`, and into
/// PostgreSQL when one answers.
async fn import_everywhere(
    scale: Scale,
    seed: u64,
    dir: &tempfile::TempDir,
    sqlite: &str,
    rows: &mut Vec<Row>,
) {
    // A year already written by `followfund simulate -o FILE` is imported as it is: the national
    // year takes most of its generator's memory, which is better given back before replaying.
    let file = match argument("--from") {
        Some(path) => std::path::PathBuf::from(path),
        None => {
            let file = dir.path().join("year.ndjson");
            let began = Instant::now();
            let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
            let events = simulate::write_ndjson(scale, seed, &mut out, |_| {}).unwrap();
            drop(out);
            rows.push(row(
                "simulate (decided by the command layer)",
                events,
                began,
                String::new(),
            ));
            file
        }
    };

    // As `followfund import` does, then back to folding's setting for the replay.
    followfund::allocator::purge_lazily();
    rows.push(import("import into SQLite", sqlite, &file).await);
    let postgres = match std::env::args().any(|a| a == "--no-postgres") {
        true => None,
        false => postgres_url().await,
    };
    if let Some(postgres) = postgres {
        rows.push(import("import into PostgreSQL", &postgres, &file).await);
        postgres_drop(&postgres).await;
    }
    followfund::allocator::purge_promptly();
}

/// Whether the SQLite file at `url` already holds a log.
async fn imported(url: &str) -> bool {
    match Store::open(url, StoreOptions::default()).await {
        Ok(store) => store.head_position() > 0,
        Err(_) => false,
    }
}

/// Drops every saved snapshot, so that the replay below starts from position 0.
async fn forget_snapshots(url: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
    for table in ["snapshot_chunks", "snapshots"] {
        let sql = format!("DELETE FROM {table}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut connection)
            .await
            .unwrap();
    }
}

async fn import(what: &str, url: &str, file: &std::path::Path) -> Row {
    let store = Store::open(url, StoreOptions::default()).await.unwrap();
    let input = BufReader::new(std::fs::File::open(file).unwrap());
    let began = Instant::now();
    let summary = followfund::exchange::import(
        &store,
        input,
        IMPORT_BATCH_EVENTS,
        &Actor::admin_cli(),
        |_| {},
    )
    .await
    .unwrap();
    row(
        what,
        summary.events_written,
        began,
        format!("batches of {IMPORT_BATCH_EVENTS}"),
    )
}

/// Waits until the models just dropped are freed, as a service that stopped has freed them:
/// until resident memory has fallen by at least `falls_kib` and then stopped falling, for ten
/// seconds at most. Freed beside the restart, they took a core from it, and with both in memory
/// the system reclaimed its page cache as the restart read.
async fn settle_memory(falls_kib: u64) {
    let start = rss_kib("VmRSS");
    let mut resident = start;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = rss_kib("VmRSS");
        let fallen = now + falls_kib <= start;
        if fallen && now + 1024 > resident {
            return;
        }
        resident = now;
    }
}

/// The argument that makes this bench the child [`restart_in_a_process_of_its_own`] starts.
const RESTART_PROBE: &str = "--restart-probe";

/// Restarts from the saved snapshot in a child process, as a service restart does, once the
/// write-ahead log the save filled is checkpointed: a restart comes long after the save, and
/// read through a gigabyte of log its pages took longer to find.
async fn restart_in_a_process_of_its_own(url: &str, database: &std::path::Path) -> Row {
    use sqlx::Connection;
    let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
    // Busy while the store's own checkpoint runs: asked again until it has emptied the log.
    loop {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(connection);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child.args([RESTART_PROBE, "--database"]).arg(database);
    let output = tokio::task::spawn_blocking(move || child.output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "the restart probe failed");
    let probe: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let what = "restart from the snapshot (a process of its own)";
    let (events, seconds) = (
        probe["events_folded"].as_u64().unwrap(),
        probe["seconds"].as_f64().unwrap(),
    );
    let note = format!(
        "snapshot at {}, loaded in {:.2} s; process peak {} MiB; {} page faults",
        probe["snapshot_position"],
        probe["snapshot_load_seconds"].as_f64().unwrap(),
        probe["peak_kib"].as_u64().unwrap() / 1024,
        probe["faults"]
    );
    measured(what, events, seconds, note)
}

/// The child's side of [`restart_in_a_process_of_its_own`]: opens the store and starts the
/// read models as `followfund serve` does, then prints what it took as one line of JSON.
async fn restart_probe(url: &str) {
    let began = Instant::now();
    let store = Store::open(url, StoreOptions::default()).await.unwrap();
    let runner = Runner::start(store).await.unwrap();
    let seconds = began.elapsed().as_secs_f64();
    let started = runner.started();
    let probe = json!({
        "seconds": seconds,
        "events_folded": started.events_folded,
        "snapshot_position": started.snapshot_position,
        "snapshot_load_seconds": started.snapshot_load.as_secs_f64(),
        "peak_kib": rss_kib("VmHWM"),
        "faults": minor_faults(),
    });
    println!("{probe}");
}

fn row(what: &str, events: u64, began: Instant, note: String) -> Row {
    measured(what, events, began.elapsed().as_secs_f64(), note)
}

fn measured(what: &str, events: u64, seconds: f64, note: String) -> Row {
    eprintln!("{what}: {events} events in {seconds:.2} s {note}");
    Row {
        what: what.into(),
        events,
        seconds,
        note,
    }
}

/// Prints the tables and writes them as JSON, with the machine's yardstick measured last, so
/// that the memory it takes is not in the figures' peaks.
fn report(scale: Scale, rows: &[Row], latencies: &[latency::Latency], latency_duration: Duration) {
    let yardstick = yardstick::measure();
    println!(
        "| {:<60} | {:>10} | {:>8} | {:>10} | note",
        "step", "events", "seconds", "events/s"
    );
    println!("|{:-<62}|{:-<12}|{:-<10}|{:-<12}|------", "", "", "", "");
    let mut json_rows = Vec::new();
    for row in rows {
        let rate = row.events as f64 / row.seconds.max(f64::EPSILON);
        println!(
            "| {:<60} | {:>10} | {:>8.2} | {:>10.0} | {}",
            row.what, row.events, row.seconds, rate, row.note
        );
        json_rows.push(json!({"step": row.what, "events": row.events, "seconds": row.seconds, "events_per_second": rate, "note": row.note}));
    }
    latency::print(latencies, latency_duration);
    println!(
        "machine yardstick: SHA-256 {:.0} MiB/s; a read missing every cache {:.0} ns",
        yardstick.hash_mib_per_second, yardstick.miss_ns
    );
    let report = json!({
        "scale": format!("{scale:?}").to_lowercase(),
        "machine": {
            "sha256_mib_per_second": yardstick.hash_mib_per_second,
            "cache_miss_ns": yardstick.miss_ns,
        },
        "rows": json_rows,
        "latency_seconds": latency_duration.as_secs(),
        "latency": latency::json_rows(latencies),
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-year.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("written to {}", path.display());
}

/// A fresh database on the local PostgreSQL server, if one answers.
async fn postgres_url() -> Option<String> {
    use sqlx::Connection;
    let admin = std::env::var("FOLLOWFUND_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut connection = sqlx::PgConnection::connect(&admin).await.ok()?;
    let name = format!("bench_year_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .ok()?;
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    Some(format!("{base}/{name}"))
}

/// Drops the database `postgres_url` made: a national year is tens of gigabytes.
async fn postgres_drop(url: &str) {
    use sqlx::Connection;
    let admin = std::env::var("FOLLOWFUND_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = url.rsplit_once('/').map_or(url, |(_, name)| name);
    let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap();
    let sql = format!("DROP DATABASE {name} WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut connection)
        .await
        .unwrap();
}

/// A line of /proc/self/status in KiB (Linux), or 0.
fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Page faults the process has taken without reading from disk (Linux), or 0. On a host where
/// a first write to a page costs microseconds, they are a large part of some steps' time.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's name, which is in parentheses and may hold spaces:
    // `minflt` is the tenth field of the line, the eighth after the name.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    (after_name.split_whitespace().nth(7))
        .and_then(|faults| faults.parse().ok())
        .unwrap_or(0)
}

fn argument(name: &str) -> Option<String> {
    let arguments: Vec<String> = std::env::args().collect();
    let at = arguments.iter().position(|a| a == name)?;
    arguments.get(at + 1).cloned()
}
