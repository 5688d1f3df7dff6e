//! A simulated year end to end: generate it, import it into SQLite (and PostgreSQL when one
//! answers), replay every projection from zero, restart from the snapshot that replay saved, and
//! make a payment run for every anchor. Prints a table and writes `target/bench-year.json`.
//! Run with `cargo bench --bench year [-- --scale small|region|national] [-- --seed N]`; the
//! default is the region scale.

use std::io::BufReader;
use std::time::Instant;

use chrono::NaiveDate;
use followfund::runner::Runner;
use followfund::simulate::{self, Scale};
use followfund::store::{Actor, Store, StoreOptions};
use serde_json::json;

/// One measured figure.
struct Row {
    what: String,
    events: u64,
    seconds: f64,
    note: String,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let scale = match argument("--scale").as_deref() {
        Some("small") => Scale::Small,
        Some("national") => Scale::National,
        _ => Scale::Region,
    };
    let seed = argument("--seed").and_then(|s| s.parse().ok()).unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("year.ndjson");
    let mut rows = Vec::new();

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

    let sqlite = format!("sqlite://{}", dir.path().join("year.db").display());
    rows.push(import("import into SQLite", &sqlite, &file).await);
    if let Some(postgres) = postgres_url().await {
        rows.push(import("import into PostgreSQL", &postgres, &file).await);
    }

    let store = Store::open(&sqlite, StoreOptions::default()).await.unwrap();
    let rss_before = rss_kib("VmRSS");
    let began = Instant::now();
    let runner = Runner::start(store.clone()).await.unwrap();
    let replayed = row(
        "replay every projection from zero (and save a snapshot)",
        events,
        began,
        String::new(),
    );
    let rss_after = rss_kib("VmRSS");
    rows.push(Row {
        note: format!(
            "resident +{} MiB; process peak {} MiB",
            (rss_after - rss_before) / 1024,
            rss_kib("VmHWM") / 1024
        ),
        ..replayed
    });
    drop(runner);

    let began = Instant::now();
    let restarted = Runner::start(store.clone()).await.unwrap();
    let from = restarted.started_from();
    rows.push(row(
        "restart from the snapshot",
        events - from,
        began,
        format!("snapshot at {from}"),
    ));

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
    drop(models);
    report(scale, &rows);
}

async fn import(what: &str, url: &str, file: &std::path::Path) -> Row {
    let store = Store::open(url, StoreOptions::default()).await.unwrap();
    let input = BufReader::new(std::fs::File::open(file).unwrap());
    let began = Instant::now();
    let summary = followfund::exchange::import(&store, input, 1_000, &Actor::admin_cli(), |_| {})
        .await
        .unwrap();
    row(
        what,
        summary.events_written,
        began,
        "batches of 1,000".into(),
    )
}

fn row(what: &str, events: u64, began: Instant, note: String) -> Row {
    Row {
        what: what.into(),
        events,
        seconds: began.elapsed().as_secs_f64(),
        note,
    }
}

fn report(scale: Scale, rows: &[Row]) {
    println!(
        "| {:<58} | {:>10} | {:>8} | {:>10} | note",
        "step", "events", "seconds", "events/s"
    );
    println!("|{:-<60}|{:-<12}|{:-<10}|{:-<12}|------", "", "", "", "");
    let mut json_rows = Vec::new();
    for row in rows {
        let rate = row.events as f64 / row.seconds.max(f64::EPSILON);
        println!(
            "| {:<58} | {:>10} | {:>8.2} | {:>10.0} | {}",
            row.what, row.events, row.seconds, rate, row.note
        );
        json_rows.push(json!({"step": row.what, "events": row.events, "seconds": row.seconds, "events_per_second": rate, "note": row.note}));
    }
    let report = json!({"scale": format!("{scale:?}").to_lowercase(), "rows": json_rows});
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

fn argument(name: &str) -> Option<String> {
    let arguments: Vec<String> = std::env::args().collect();
    let at = arguments.iter().position(|a| a == name)?;
    arguments.get(at + 1).cloned()
}
