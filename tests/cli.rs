//! The `followfund` binary end to end: help, load, verify (intact and tampered), stats, export
//! and import, and what survives `kill -9` or two processes appending to one database.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Output, Stdio};

use common::{TestDb, event};
use followfund::store::{READ_PAGE_EVENTS_MAX, RecordedEvent, Store};
use serde_json::json;
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

per_backend!(
    load_then_verify_and_stats_agree,
    verify_names_the_altered_position,
    verify_names_a_removed_position,
    export_and_import_round_trip,
    import_stops_at_a_bad_line_and_names_it,
    acknowledged_appends_survive_kill_9,
);

/// The binary with a clean environment: no inherited database, quiet logs.
fn followfund() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_followfund"));
    command
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    command
}

async fn run(url: &str, args: &[&str]) -> Output {
    followfund()
        .arg("--database-url")
        .arg(url)
        .args(args)
        .output()
        .await
        .expect("followfund starts")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `ack <event_id> <position>` lines, each checked for shape.
fn parse_acks(text: &str) -> Vec<(Uuid, u64)> {
    text.lines().map(parse_ack).collect()
}

fn parse_ack(line: &str) -> (Uuid, u64) {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["ack", id, position] => (
            id.parse()
                .unwrap_or_else(|_| panic!("an event id in {line:?}")),
            position
                .parse()
                .unwrap_or_else(|_| panic!("a position in {line:?}")),
        ),
        _ => panic!("not an ack line: {line:?}"),
    }
}

async fn read_log(store: &Store) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = events.last().map_or(1, |event| event.position + 1);
        let page = store
            .read_all(from, READ_PAGE_EVENTS_MAX)
            .await
            .expect("the log reads");
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// Every acknowledged event is stored at its acknowledged position, positions run 1..=head with
/// no gap, and the chain verifies. Returns the number of events stored.
async fn assert_acks_hold(store: &Store, acks: &[(Uuid, u64)]) -> u64 {
    let log = read_log(store).await;
    let positions: Vec<u64> = log.iter().map(|event| event.position).collect();
    assert_eq!(
        positions,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "gap-free positions"
    );
    let stored: BTreeMap<Uuid, u64> = log
        .iter()
        .map(|event| (event.event_id, event.position))
        .collect();
    assert_eq!(stored.len(), log.len(), "every event id once");
    for (id, position) in acks {
        assert_eq!(
            stored.get(id),
            Some(position),
            "acknowledged event {id} at {position}"
        );
    }
    let ack_positions: BTreeSet<u64> = acks.iter().map(|(_, position)| *position).collect();
    assert_eq!(
        ack_positions.len(),
        acks.len(),
        "no position acknowledged twice"
    );
    let report = store.verify().await.expect("verify runs");
    assert!(report.is_intact(), "{:?}", report.first_fault);
    assert_eq!(report.events_checked, log.len() as u64);
    log.len() as u64
}

/// A fresh database on the same server kind as `db`.
async fn fresh_like(db: &TestDb) -> TestDb {
    if db.url.starts_with("postgres") {
        TestDb::postgres().await
    } else {
        TestDb::sqlite()
    }
}

/// Runs `sql` on its own connection, as a client other than the service would.
async fn execute(url: &str, sql: &'static str) -> Result<u64, sqlx::Error> {
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
    }
}

/// What an attacker with database access runs first: removing the append-only triggers.
async fn drop_append_only_triggers(url: &str) {
    if url.starts_with("postgres") {
        execute(url, "DROP TRIGGER events_refuse_update ON events")
            .await
            .expect("drops the trigger");
    } else {
        execute(url, "DROP TRIGGER events_refuse_update")
            .await
            .expect("drops the trigger");
        execute(url, "DROP TRIGGER events_refuse_delete")
            .await
            .expect("drops the trigger");
    }
}

async fn append_events(store: &Store, count: usize) {
    let events = (0..count)
        .map(|i| event(&format!("referral-{}", i % 7)))
        .collect();
    let appended = store.append(events, Vec::new()).await.expect("appends");
    assert_eq!(appended.positions.len(), count);
}

#[test]
fn help_describes_every_command() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let help = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_followfund"))
            .args(args)
            .env_remove("DATABASE_URL")
            .current_dir(dir.path())
            .output()
            .expect("followfund starts");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let top = help(&["--help"]);
    assert!(
        top.contains("event-sourced funding ledger for social prescribing"),
        "{top}"
    );
    for command in [
        "serve",
        "import",
        "export",
        "verify",
        "stats",
        "load",
        "--database-url",
    ] {
        assert!(
            top.contains(command),
            "top-level help lacks {command}:\n{top}"
        );
    }
    let expected: [(&str, &[&str]); 6] = [
        ("serve", &["Run the HTTP service", "--listen"]),
        (
            "import",
            &[
                "Append events from an NDJSON file",
                "atomic batches",
                "--batch-events",
                "<FILE>",
            ],
        ),
        ("export", &["Write the log as NDJSON", "--output", "--from"]),
        (
            "verify",
            &[
                "Walk the hash chain",
                "exit 0 when intact, 1 naming the first bad position",
            ],
        ),
        ("stats", &["Count events, streams and types"]),
        (
            "load",
            &[
                "synthetic referral events",
                "ack <event_id> <position>",
                "--events",
                "--appenders",
            ],
        ),
    ];
    for (command, phrases) in expected {
        let text = help(&[command, "--help"]);
        for phrase in phrases {
            assert!(
                text.contains(phrase),
                "`{command} --help` lacks {phrase:?}:\n{text}"
            );
        }
        assert!(
            text.contains("--database-url"),
            "the global option is listed for {command}"
        );
    }
    assert!(help(&["--version"]).starts_with("followfund 0.1.0"));
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_followfund"))
        .arg("destroy")
        .current_dir(dir.path())
        .output()
        .expect("followfund starts");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unrecognized subcommand 'destroy'"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("lists").collect();
    assert!(left.is_empty(), "asking for help created files: {left:?}");
}

async fn load_then_verify_and_stats_agree(db: TestDb) {
    let load = run(&db.url, &["load", "--events", "500", "--appenders", "8"]).await;
    assert_exit(&load, 0);
    let acks = parse_acks(&stdout(&load));
    assert_eq!(acks.len(), 500);
    let positions: BTreeSet<u64> = acks.iter().map(|(_, position)| *position).collect();
    assert_eq!(positions, (1..=500).collect());

    let verify = run(&db.url, &["verify"]).await;
    assert_exit(&verify, 0);
    let verified = stdout(&verify);
    assert!(
        verified.starts_with("intact: 500 events, head hash "),
        "{verified}"
    );
    let store = db.open().await;
    let report = store.verify().await.expect("verify runs");
    assert_eq!(
        verified.trim_end(),
        format!("intact: 500 events, head hash {}", report.head_hash)
    );
    assert_eq!(assert_acks_hold(&store, &acks).await, 500);

    // The database may also come from the environment.
    let stats = followfund()
        .arg("stats")
        .env("DATABASE_URL", &db.url)
        .output()
        .await
        .expect("starts");
    assert_exit(&stats, 0);
    let text = stdout(&stats);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["events", "500"], "{text}");
    assert_eq!(lines[1], ["head", "position", "500"], "{text}");
    assert_eq!(lines[2], ["streams", "500"], "{text}");
    assert_eq!(lines[3], ["referral.received", "500"], "{text}");
    assert_eq!(lines.len(), 4, "{text}");
}

async fn verify_names_the_altered_position(db: TestDb) {
    let store = db.open().await;
    append_events(&store, 30).await;
    drop(store);
    assert_exit(&run(&db.url, &["verify"]).await, 0);

    let alter =
        "UPDATE events SET data = replace(data, 'loneliness', 'bereavement') WHERE position = 17";
    let refused = execute(&db.url, alter)
        .await
        .expect_err("the log is append-only");
    assert!(
        refused.to_string().contains("the event log is append-only"),
        "{refused}"
    );
    let refused = execute(&db.url, "DELETE FROM events WHERE position = 17")
        .await
        .expect_err("append-only");
    assert!(
        refused.to_string().contains("the event log is append-only"),
        "{refused}"
    );
    let verify = run(&db.url, &["verify"]).await;
    assert_exit(&verify, 0);
    assert!(
        stdout(&verify).starts_with("intact: 30 events"),
        "{}",
        stdout(&verify)
    );

    drop_append_only_triggers(&db.url).await;
    assert_eq!(
        execute(&db.url, alter).await.expect("the trigger is gone"),
        1
    );
    let verify = run(&db.url, &["verify"]).await;
    assert_exit(&verify, 1);
    let text = stdout(&verify);
    assert!(
        text.starts_with("broken at position 17: stored hash "),
        "{text}"
    );
    assert!(text.contains("does not match its content"), "{text}");
    assert!(text.contains("16 events before it are intact"), "{text}");

    let report = db.open().await.verify().await.expect("verify runs");
    let fault = report.first_fault.expect("a fault");
    assert_eq!((fault.position, report.events_checked), (17, 16));
}

async fn verify_names_a_removed_position(db: TestDb) {
    let store = db.open().await;
    append_events(&store, 12).await;
    drop(store);
    drop_append_only_triggers(&db.url).await;
    assert_eq!(
        execute(&db.url, "DELETE FROM events WHERE position = 9")
            .await
            .expect("deletes"),
        1
    );
    let verify = run(&db.url, &["verify"]).await;
    assert_exit(&verify, 1);
    let text = stdout(&verify);
    assert!(
        text.starts_with("broken at position 9: position 9 is missing (next stored is 10)"),
        "{text}"
    );
    assert!(text.contains("8 events before it are intact"), "{text}");
}

async fn export_and_import_round_trip(db: TestDb) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = |name: &str| {
        dir.path()
            .join(name)
            .to_str()
            .expect("a utf-8 path")
            .to_string()
    };
    let load = run(
        &db.url,
        &[
            "load",
            "--events",
            "300",
            "--appenders",
            "4",
            "--batch-events",
            "7",
        ],
    )
    .await;
    assert_exit(&load, 0);
    let export = run(&db.url, &["export", "-o", &path("a.ndjson")]).await;
    assert_exit(&export, 0);
    assert!(
        stderr(&export).contains("exported 300 events"),
        "{}",
        stderr(&export)
    );
    let exported = std::fs::read(path("a.ndjson")).expect("the export");
    assert_eq!(exported.iter().filter(|b| **b == b'\n').count(), 300);
    let to_stdout = run(&db.url, &["export"]).await;
    assert_exit(&to_stdout, 0);
    assert!(
        to_stdout.stdout == exported,
        "export to stdout and to a file differ"
    );

    let copy = fresh_like(&db).await;
    let import = run(
        &copy.url,
        &["import", &path("a.ndjson"), "--batch-events", "50"],
    )
    .await;
    assert_exit(&import, 0);
    assert_eq!(
        stdout(&import),
        "imported 300 lines: 300 events written, 0 already present\n"
    );
    assert_exit(
        &run(&copy.url, &["export", "--output", &path("b.ndjson")]).await,
        0,
    );
    assert!(
        std::fs::read(path("b.ndjson")).expect("the export") == exported,
        "the re-export differs"
    );

    let again = run(&copy.url, &["import", &path("a.ndjson")]).await;
    assert_exit(&again, 0);
    assert_eq!(
        stdout(&again),
        "imported 300 lines: 0 events written, 300 already present\n"
    );

    let tail = run(&copy.url, &["export", "--from", "291"]).await;
    assert_exit(&tail, 0);
    let text = String::from_utf8(exported.clone()).expect("utf-8");
    assert_eq!(
        stdout(&tail),
        text.lines()
            .skip(290)
            .map(|line| format!("{line}\n"))
            .collect::<String>()
    );

    let piped = fresh_like(&db).await;
    let from_stdin = import_from_stdin(&piped.url, &exported).await;
    assert_exit(&from_stdin, 0);
    assert_exit(
        &run(&piped.url, &["export", "-o", &path("c.ndjson")]).await,
        0,
    );
    assert!(
        std::fs::read(path("c.ndjson")).expect("the export") == exported,
        "import from stdin differs"
    );
}

async fn import_from_stdin(url: &str, input: &[u8]) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = followfund()
        .args(["--database-url", url, "import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("followfund starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).await.expect("writes stdin");
    drop(stdin);
    child.wait_with_output().await.expect("followfund ends")
}

fn referral_line(event_type: &str) -> String {
    let id = Uuid::now_v7();
    json!({
        "event_id": id,
        "stream": format!("referral-{id}"),
        "type": event_type,
        "occurred_at": "2024-06-01T12:00:00Z",
        "data": {
            "referral_id": Uuid::now_v7(),
            "person_id": Uuid::now_v7(),
            "source": "pharmacist",
            "referrer": null,
            "link_worker_organisation": "RX1LW",
            "reasons": ["financial"],
            "age_band": "25-39",
            "conditions": [],
        },
    })
    .to_string()
}

async fn import_stops_at_a_bad_line_and_names_it(db: TestDb) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("bad.ndjson");
    let lines: Vec<String> = (1..=6)
        .map(|n| {
            referral_line(if n == 4 {
                "referral.misfiled"
            } else {
                "referral.received"
            })
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("writes the file");
    let file = file.to_str().expect("a utf-8 path");

    let import = run(&db.url, &["import", file, "--batch-events", "2"]).await;
    assert_exit(&import, 1);
    let text = stderr(&import);
    assert!(
        text.contains("import stopped: line 4: unknown event type `referral.misfiled`"),
        "{text}"
    );
    assert!(
        text.contains("nothing from line 3 on was imported (2 events before it were)"),
        "{text}"
    );
    let stats = run(&db.url, &["stats"]).await;
    assert_exit(&stats, 0);
    assert!(
        stdout(&stats).starts_with("events          2\nhead position   2\n"),
        "{}",
        stdout(&stats)
    );

    let missing = run(&db.url, &["import", "/nonexistent/followfund.ndjson"]).await;
    assert_exit(&missing, 2);
    assert!(
        stderr(&missing).contains("opening /nonexistent/followfund.ndjson"),
        "{}",
        stderr(&missing)
    );
    let wrong_url = run("mysql://localhost/ledger", &["stats"]).await;
    assert_exit(&wrong_url, 2);
    assert!(
        stderr(&wrong_url).contains("unsupported database URL"),
        "{}",
        stderr(&wrong_url)
    );
}

async fn acknowledged_appends_survive_kill_9(db: TestDb) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = followfund()
        .args([
            "--database-url",
            &db.url,
            "load",
            "--events",
            "200000",
            "--appenders",
            "16",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("followfund starts");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut acks = Vec::new();
    let mut killed = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .await
            .expect("reads stdout");
        // A line cut short by the kill was never fully acknowledged.
        if read == 0 || line.last() != Some(&b'\n') {
            break;
        }
        acks.push(parse_ack(
            std::str::from_utf8(&line).expect("utf-8").trim_end(),
        ));
        if !killed && acks.len() >= 2_000 {
            child.start_kill().expect("sends SIGKILL");
            killed = true;
        }
    }
    let status = child.wait().await.expect("the child ends");
    assert!(
        killed,
        "load ended after {} acks, before it could be killed",
        acks.len()
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "load was killed, not finished: {status}"
    );
    assert!(
        acks.len() >= 2_000 && acks.len() < 200_000,
        "{} acks",
        acks.len()
    );

    let store = db.open().await;
    let stored = assert_acks_hold(&store, &acks).await;
    assert!(
        stored >= acks.len() as u64 && stored < 200_000,
        "{stored} stored, {} acked",
        acks.len()
    );
    let appended = store
        .append(vec![event("after-the-crash")], Vec::new())
        .await
        .expect("appends");
    assert_eq!(appended.positions, vec![stored + 1]);
    assert_eq!(assert_acks_hold(&store, &acks).await, stored + 1);
}

/// Two processes, each with its own appender, share one PostgreSQL log: the advisory lock must
/// keep positions gap-free and unique across them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_append_to_one_postgres_log() {
    let db = TestDb::postgres().await;
    let load = || run(&db.url, &["load", "--events", "3000", "--appenders", "16"]);
    let (first, second) = tokio::join!(load(), load());
    assert_exit(&first, 0);
    assert_exit(&second, 0);
    let (first, second) = (parse_acks(&stdout(&first)), parse_acks(&stdout(&second)));
    assert_eq!((first.len(), second.len()), (3_000, 3_000));
    let acks: Vec<(Uuid, u64)> = first.into_iter().chain(second).collect();
    let ids: BTreeSet<Uuid> = acks.iter().map(|(id, _)| *id).collect();
    let positions: BTreeSet<u64> = acks.iter().map(|(_, position)| *position).collect();
    assert_eq!(ids.len(), 6_000);
    assert_eq!(positions, (1..=6_000).collect());

    let store = db.open().await;
    assert_eq!(assert_acks_hold(&store, &acks).await, 6_000);
    let stored: BTreeMap<Uuid, u64> = read_log(&store)
        .await
        .iter()
        .map(|event| (event.event_id, event.position))
        .collect();
    assert_eq!(stored, acks.into_iter().collect::<BTreeMap<_, _>>());
}
