//! NDJSON import on both backends: every bad line is refused by name and line number with nothing
//! of its batch written, re-imports write nothing, and an export re-imports as the same chain.

mod common;

use common::{TestDb, actor, event};
use followfund::exchange::{self, ImportError, ImportSummary};
use followfund::store::{
    BackendKind, EVENT_PAYLOAD_BYTES_MAX, ExpectedVersion, READ_PAGE_EVENTS_MAX, RecordedEvent,
    Store, StoreError,
};
use serde_json::{Value, json};
use uuid::Uuid;

per_backend!(
    malformed_json_is_refused_by_line,
    unknown_event_type_is_refused_by_line,
    missing_field_is_refused_naming_it,
    mistyped_field_is_refused_naming_it,
    nhs_number_in_a_string_is_refused_without_repeating_it,
    payload_over_the_size_limit_is_refused,
    reused_event_id_with_other_content_is_refused,
    stale_expected_version_writes_nothing,
    batches_before_a_bad_line_are_kept_and_its_own_is_not,
    reimporting_a_file_writes_nothing,
    export_reimports_as_the_same_chain,
);

const OCCURRED_AT: &str = "2024-05-01T09:30:00.123456789Z";

fn referral_data() -> Value {
    json!({
        "referral_id": Uuid::now_v7(),
        "person_id": Uuid::now_v7(),
        "source": "gp_practice",
        "referrer": "A81001",
        "link_worker_organisation": "RX1LW",
        "reasons": ["loneliness"],
        "age_band": "40-54",
        "conditions": [],
    })
}

fn organisation_data(name: &str) -> Value {
    json!({
        "organisation": "P12345",
        "name": name,
        "role": "provider",
        "nation": "england",
        "parent": null,
    })
}

/// One import line for a new event of `event_type` in its own stream.
fn line(event_id: Uuid, event_type: &str, data: Value) -> String {
    json!({
        "event_id": event_id,
        "stream": format!("s-{event_id}"),
        "type": event_type,
        "occurred_at": OCCURRED_AT,
        "data": data,
    })
    .to_string()
}

fn referral_line(event_id: Uuid) -> String {
    line(event_id, "referral.received", referral_data())
}

fn referral_with(field: &str, value: Value) -> String {
    let mut data = referral_data();
    data[field] = value;
    referral_line_from(data)
}

fn referral_without(field: &str) -> String {
    let mut data = referral_data();
    data.as_object_mut().expect("an object").remove(field);
    referral_line_from(data)
}

fn referral_line_from(data: Value) -> String {
    line(Uuid::now_v7(), "referral.received", data)
}

async fn import_text(
    store: &Store,
    text: &str,
    batch_events: usize,
) -> Result<ImportSummary, ImportError> {
    exchange::import(store, text.as_bytes(), batch_events, &actor(), |_| {}).await
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

fn ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|event| event.event_id).collect()
}

/// The log is a gap-free chain from 1 that verifies, and counts agree with it.
async fn assert_sound(store: &Store, events: &[RecordedEvent]) {
    let positions: Vec<u64> = events.iter().map(|event| event.position).collect();
    assert_eq!(
        positions,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "gap-free positions"
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.events, stats.head_position),
        (events.len() as u64, events.len() as u64)
    );
    let report = store.verify().await.expect("verify runs");
    assert!(report.is_intact(), "{:?}", report.first_fault);
    assert_eq!(report.events_checked, events.len() as u64);
}

/// A refusal must leave a store that still takes appends, at the next position.
async fn assert_still_appends(store: &Store) {
    let head = read_log(store).await.len() as u64;
    let appended = store
        .append(vec![event("after-refusal")], Vec::new())
        .await
        .expect("appends");
    assert_eq!(appended.positions, vec![head + 1]);
    assert_sound(store, &read_log(store).await).await;
}

/// Imports two good lines, `bad` as line 3 and a good line 4, two lines per batch. Checks that
/// lines 1 and 2 alone were added and returns the refusal's message.
async fn refused_as_line_3(store: &Store, bad: &str) -> String {
    let before = read_log(store).await;
    let good = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    let text = format!(
        "{}\n{}\n{bad}\n{}\n",
        referral_line(good[0]),
        referral_line(good[1]),
        referral_line(good[2])
    );
    let error = import_text(store, &text, 2)
        .await
        .expect_err("line 3 is refused");
    let message = error.to_string();
    match error {
        ImportError::Line {
            line,
            batch_first_line,
            events_written,
            ..
        } => {
            assert_eq!(
                (line, batch_first_line, events_written),
                (3, 3, 2),
                "{message}"
            );
        }
        other => panic!("expected a refusal of line 3, got {other}"),
    }
    assert!(message.starts_with("line 3: "), "{message}");
    assert!(
        message.contains("nothing from line 3 on was imported (2 events before it were)"),
        "{message}"
    );
    let after = read_log(store).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "earlier events are untouched"
    );
    assert_eq!(
        ids(&after[before.len()..]),
        good[..2],
        "lines 1 and 2 alone were added"
    );
    assert_sound(store, &after).await;
    message
}

async fn malformed_json_is_refused_by_line(db: TestDb) {
    let store = db.open().await;
    let truncated = referral_line(Uuid::now_v7());
    let truncated = &truncated[..truncated.len() / 2];
    let message = refused_as_line_3(&store, truncated).await;
    assert!(message.contains("not a valid event line"), "{message}");
    assert!(message.contains("EOF"), "{message}");

    let message = refused_as_line_3(&store, "[1, 2, 3]").await;
    assert!(message.contains("not a valid event line"), "{message}");

    let mut unknown_key: Value =
        serde_json::from_str(&referral_line(Uuid::now_v7())).expect("json");
    unknown_key["position_hint"] = json!(7);
    let message = refused_as_line_3(&store, &unknown_key.to_string()).await;
    assert!(
        message.contains("unknown field `position_hint`"),
        "{message}"
    );
    assert_still_appends(&store).await;
}

async fn unknown_event_type_is_refused_by_line(db: TestDb) {
    let store = db.open().await;
    let bad = line(Uuid::now_v7(), "referral.teleported", referral_data());
    let message = refused_as_line_3(&store, &bad).await;
    assert!(
        message.contains("unknown event type `referral.teleported`"),
        "{message}"
    );

    let mut old_version: Value =
        serde_json::from_str(&referral_line(Uuid::now_v7())).expect("json");
    old_version["schema_version"] = json!(9);
    let message = refused_as_line_3(&store, &old_version.to_string()).await;
    assert!(
        message.contains("`referral.received` has no schema version 9"),
        "{message}"
    );
    assert_still_appends(&store).await;
}

async fn missing_field_is_refused_naming_it(db: TestDb) {
    let store = db.open().await;
    let message = refused_as_line_3(&store, &referral_without("referral_id")).await;
    assert!(message.contains("data.referral_id"), "{message}");
    assert!(message.contains("missing field `referral_id`"), "{message}");

    let message = refused_as_line_3(&store, &referral_without("age_band")).await;
    assert!(message.contains("missing field `age_band`"), "{message}");

    let mut no_envelope_time: Value =
        serde_json::from_str(&referral_line(Uuid::now_v7())).expect("json");
    no_envelope_time
        .as_object_mut()
        .expect("an object")
        .remove("occurred_at");
    let message = refused_as_line_3(&store, &no_envelope_time.to_string()).await;
    assert!(message.contains("missing field `occurred_at`"), "{message}");
    assert_still_appends(&store).await;
}

async fn mistyped_field_is_refused_naming_it(db: TestDb) {
    let store = db.open().await;
    let message = refused_as_line_3(&store, &referral_with("age_band", json!(70))).await;
    assert!(message.contains("invalid at data.age_band"), "{message}");
    assert!(message.contains("invalid type"), "{message}");

    let message = refused_as_line_3(&store, &referral_with("reasons", json!("loneliness"))).await;
    assert!(message.contains("invalid at data.reasons"), "{message}");

    let message = refused_as_line_3(
        &store,
        &referral_with("reasons", json!(["loneliness", "boredom"])),
    )
    .await;
    assert!(message.contains("invalid at data.reasons[1]"), "{message}");

    let message = refused_as_line_3(&store, &referral_with("person_id", json!("not-a-uuid"))).await;
    assert!(message.contains("invalid at data.person_id"), "{message}");

    let message = refused_as_line_3(&store, &referral_with("referrer", json!("a81001"))).await;
    assert!(message.contains("not an ODS code"), "{message}");
    assert_still_appends(&store).await;
}

async fn nhs_number_in_a_string_is_refused_without_repeating_it(db: TestDb) {
    let store = db.open().await;
    let cases = [
        (
            referral_with("referrer", json!("9434765919")),
            "data.referrer",
        ),
        (
            referral_with("referrer", json!("943 476 5919")),
            "data.referrer",
        ),
        (
            referral_with("reasons", json!(["loneliness", "9434765919"])),
            "data.reasons[1]",
        ),
        (
            line(
                Uuid::now_v7(),
                "organisation.registered",
                organisation_data("Patient 943 476 5919 group"),
            ),
            "data.name",
        ),
    ];
    for (bad, path) in cases {
        let message = refused_as_line_3(&store, &bad).await;
        assert!(
            message.contains(&format!("a string at {path} looks like an NHS number")),
            "{message}"
        );
        for digits in ["9434765919", "943 476 5919", "4765919"] {
            assert!(
                !message.contains(digits),
                "the message repeats the number: {message}"
            );
        }
    }

    // Ten digits whose check digit fails are not an NHS number, so a name may hold them.
    let near_miss = line(
        Uuid::now_v7(),
        "organisation.registered",
        organisation_data("Unit 9434765918"),
    );
    let summary = import_text(&store, &near_miss, 10)
        .await
        .expect("not an NHS number");
    assert_eq!(summary.events_written, 1);
    assert_still_appends(&store).await;
}

async fn payload_over_the_size_limit_is_refused(db: TestDb) {
    let store = db.open().await;
    assert_eq!(EVENT_PAYLOAD_BYTES_MAX, 65_536);

    let many_reasons = referral_with("reasons", json!(vec!["loneliness"; 6_000]));
    let message = refused_as_line_3(&store, &many_reasons).await;
    assert!(
        message.contains("`referral.received` payload is 78"),
        "{message}"
    );
    assert!(
        message.contains("the most one event may carry is 65536 bytes"),
        "{message}"
    );

    let long_name = line(
        Uuid::now_v7(),
        "organisation.registered",
        organisation_data(&"A".repeat(70_000)),
    );
    let message = refused_as_line_3(&store, &long_name).await;
    assert!(
        message.contains("`organisation.registered` payload is 70"),
        "{message}"
    );
    assert!(message.contains("65536 bytes"), "{message}");

    let huge_line = line(
        Uuid::now_v7(),
        "organisation.registered",
        organisation_data(&"A".repeat(140_000)),
    );
    let message = refused_as_line_3(&store, &huge_line).await;
    assert!(
        message.contains("longer than the 131072 bytes accepted"),
        "{message}"
    );

    // The limit is inclusive: a payload of exactly 65536 canonical bytes is kept, one more is not.
    let overhead = organisation_data("").to_string().len();
    let at_limit = organisation_data(&"A".repeat(EVENT_PAYLOAD_BYTES_MAX - overhead));
    let at_limit_id = Uuid::now_v7();
    let summary = import_text(
        &store,
        &line(at_limit_id, "organisation.registered", at_limit),
        10,
    )
    .await
    .expect("a payload at the limit is accepted");
    assert_eq!(summary.events_written, 1);
    let stored = read_log(&store)
        .await
        .into_iter()
        .find(|e| e.event_id == at_limit_id)
        .expect("stored");
    assert_eq!(stored.data.len(), EVENT_PAYLOAD_BYTES_MAX);
    let over = line(
        Uuid::now_v7(),
        "organisation.registered",
        organisation_data(&"A".repeat(EVENT_PAYLOAD_BYTES_MAX - overhead + 1)),
    );
    let message = refused_as_line_3(&store, &over).await;
    assert!(message.contains("payload is 65537 bytes"), "{message}");
    assert_still_appends(&store).await;
}

async fn reused_event_id_with_other_content_is_refused(db: TestDb) {
    let store = db.open().await;
    let reused = Uuid::now_v7();
    let original = referral_line(reused);
    assert_eq!(
        import_text(&store, &original, 10)
            .await
            .expect("first import")
            .events_written,
        1
    );
    let original_event = read_log(&store).await.remove(0);

    let fresh = Uuid::now_v7();
    let text = format!("{}\n{}\n", referral_line(fresh), referral_line(reused));
    let error = import_text(&store, &text, 1)
        .await
        .expect_err("the id is taken");
    let message = error.to_string();
    match &error {
        ImportError::Batch {
            batch_first_line,
            batch_last_line,
            error,
            events_written,
        } => {
            assert_eq!(
                (*batch_first_line, *batch_last_line, *events_written),
                (2, 2, 1),
                "{message}"
            );
            match error {
                StoreError::EventIdReused { event_id, position } => {
                    assert_eq!((*event_id, *position), (reused, 1))
                }
                other => panic!("expected EventIdReused, got {other:?}"),
            }
        }
        other => panic!("expected a refused batch, got {other}"),
    }
    assert!(message.starts_with("lines 2 to 2: "), "{message}");
    assert!(
        message.contains(&format!(
            "event id {reused} is already in the log at position 1"
        )),
        "{message}"
    );

    let log = read_log(&store).await;
    assert_eq!(ids(&log), vec![reused, fresh]);
    assert_eq!(log[0], original_event, "the stored event is untouched");
    assert_sound(&store, &log).await;
    assert_still_appends(&store).await;
}

async fn stale_expected_version_writes_nothing(db: TestDb) {
    let store = db.open().await;
    let stream = "referral-stale";
    let first = store
        .append(vec![event(stream), event(stream)], Vec::new())
        .await
        .expect("appends");
    assert_eq!(first.positions, vec![1, 2]);
    let before = read_log(&store).await;

    let expectations = [
        (ExpectedVersion::Exact(1), "not 1 as expected"),
        (ExpectedVersion::NoStream, "not no stream (0)"),
    ];
    for (expected, wording) in expectations {
        let batch = vec![event("referral-bystander"), event(stream)];
        let error = store
            .append(batch, vec![(stream.to_string(), expected)])
            .await
            .expect_err("stale");
        let message = error.to_string();
        match error {
            StoreError::Conflict {
                stream: named,
                expected: said,
                actual,
            } => {
                assert_eq!((named.as_str(), said, actual), (stream, expected, 2));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(
            message.contains("stream `referral-stale` is at version 2"),
            "{message}"
        );
        assert!(message.contains(wording), "{message}");
        assert_eq!(
            read_log(&store).await,
            before,
            "nothing of the batch is written"
        );
        assert!(
            store
                .read_stream("referral-bystander", 1)
                .await
                .expect("reads")
                .is_empty()
        );
    }

    let current = store
        .append(
            vec![event(stream)],
            vec![(stream.to_string(), ExpectedVersion::Exact(2))],
        )
        .await
        .expect("the current version is accepted");
    assert_eq!(current.positions, vec![3]);
    let versions: Vec<u64> = store
        .read_stream(stream, 1)
        .await
        .expect("reads")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
    assert_sound(&store, &read_log(&store).await).await;
}

async fn batches_before_a_bad_line_are_kept_and_its_own_is_not(db: TestDb) {
    let store = db.open().await;
    let good: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    let mut lines: Vec<String> = good.iter().map(|id| referral_line(*id)).collect();
    let fixed_line_5 = lines[4].clone();
    lines[4] = referral_without("referral_id");
    let text = lines.join("\n");

    let error = import_text(&store, &text, 2)
        .await
        .expect_err("line 5 is bad");
    assert!(
        matches!(
            error,
            ImportError::Line {
                line: 5,
                batch_first_line: 5,
                events_written: 4,
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.starts_with("line 5: "), "{message}");
    assert!(message.contains("data.referral_id"), "{message}");
    let log = read_log(&store).await;
    assert_eq!(
        ids(&log),
        good[..4],
        "the two batches before line 5 are kept"
    );
    assert_sound(&store, &log).await;

    // Mended, the same file imports the rest: the batches already written line up and are skipped.
    lines[4] = fixed_line_5;
    let summary = import_text(&store, &lines.join("\n"), 2)
        .await
        .expect("imports");
    assert_eq!(
        summary,
        ImportSummary {
            lines: 6,
            events_written: 2,
            events_already_present: 4
        }
    );
    let log = read_log(&store).await;
    assert_eq!(ids(&log), good);

    // A bad line in the middle of a batch takes the good lines before it in that batch with it.
    let more: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    let mut lines: Vec<String> = more.iter().map(|id| referral_line(*id)).collect();
    lines[4] = "{\"event_id\": ".to_string();
    let error = import_text(&store, &lines.join("\n"), 3)
        .await
        .expect_err("line 5 is bad");
    assert!(
        matches!(
            error,
            ImportError::Line {
                line: 5,
                batch_first_line: 4,
                events_written: 3,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("nothing from line 4 on was imported (3 events before it were)"),
        "{error}"
    );
    let log = read_log(&store).await;
    assert_eq!(ids(&log[6..]), more[..3]);
    assert_sound(&store, &log).await;

    // A batch the store refuses is not written either, even its lines that are fine on their own.
    let last: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    let mut lines: Vec<String> = last.iter().map(|id| referral_line(*id)).collect();
    lines[4] = referral_line(last[3]);
    let error = import_text(&store, &lines.join("\n"), 3)
        .await
        .expect_err("one id twice");
    match &error {
        ImportError::Batch {
            batch_first_line: 4,
            batch_last_line: 6,
            error: StoreError::DuplicateInBatch { event_id },
            events_written: 3,
        } => {
            assert_eq!(*event_id, last[3]);
        }
        other => panic!("expected the batch of lines 4 to 6 refused, got {other}"),
    }
    let log = read_log(&store).await;
    assert_eq!(ids(&log[9..]), last[..3]);
    assert_sound(&store, &log).await;
    assert_still_appends(&store).await;
}

async fn reimporting_a_file_writes_nothing(db: TestDb) {
    let store = db.open().await;
    let lines: Vec<String> = (0..5).map(|_| referral_line(Uuid::now_v7())).collect();
    let text = format!("{}\n\n", lines.join("\n"));
    let mut bytes_seen = 0;
    let summary = exchange::import(&store, text.as_bytes(), 2, &actor(), |bytes| {
        bytes_seen = bytes
    })
    .await
    .expect("imports");
    assert_eq!(
        summary,
        ImportSummary {
            lines: 5,
            events_written: 5,
            events_already_present: 0
        }
    );
    assert_eq!(bytes_seen, text.len() as u64);
    let first = read_log(&store).await;
    assert_eq!(first.len(), 5);
    // Stored times are cut to the microsecond, so the re-import must compare them the same way.
    assert_eq!(
        first[0].occurred_at.to_rfc3339(),
        "2024-05-01T09:30:00.123456+00:00"
    );

    for batch_events in [2, 5, 1] {
        let again = import_text(&store, &text, batch_events)
            .await
            .expect("a re-import is accepted");
        assert_eq!(
            again,
            ImportSummary {
                lines: 5,
                events_written: 0,
                events_already_present: 5
            }
        );
        assert_eq!(
            read_log(&store).await,
            first,
            "positions and hashes are unchanged"
        );
    }
    assert_sound(&store, &first).await;
}

/// A store of the same backend as `store`, empty.
async fn fresh_like(store: &Store) -> TestDb {
    match store.backend() {
        BackendKind::Sqlite => TestDb::sqlite(),
        BackendKind::Postgres => TestDb::postgres().await,
    }
}

/// A log with several streams, actors, links and an imported event, to give the export work.
async fn varied_log(store: &Store) {
    for round in 0..4 {
        let stream = format!("referral-{round}");
        let cause = Uuid::now_v7();
        let linked = event(&stream).with_links(Some(Uuid::now_v7()), Some(cause));
        store
            .append(vec![event(&stream), linked, event("shared")], Vec::new())
            .await
            .expect("appends");
    }
    let other_actor = json!({"organisation": "QWO", "role": "commissioner", "user": null});
    let mut imported: Value = serde_json::from_str(&line(
        Uuid::now_v7(),
        "organisation.registered",
        organisation_data("Walk \"&\" Talk \u{e9}"),
    ))
    .expect("json");
    imported["actor"] = other_actor;
    imported["recorded_at"] = json!("2023-01-02T03:04:05.678901Z");
    import_text(store, &imported.to_string(), 10)
        .await
        .expect("imports");
}

async fn export_bytes(store: &Store, from: u64) -> (u64, Vec<u8>) {
    let mut out = Vec::new();
    let count = exchange::export(store, from, &mut out)
        .await
        .expect("exports");
    (count, out)
}

async fn export_reimports_as_the_same_chain(db: TestDb) {
    let store = db.open().await;
    varied_log(&store).await;
    let original = read_log(&store).await;
    assert_eq!(original.len(), 13);
    let (count, exported) = export_bytes(&store, 1).await;
    assert_eq!(count, 13);
    assert_eq!(exported.iter().filter(|b| **b == b'\n').count(), 13);

    let copy_db = fresh_like(&store).await;
    let copy = copy_db.open().await;
    let summary = exchange::import(&copy, exported.as_slice(), 4, &actor(), |_| {})
        .await
        .expect("imports");
    assert_eq!(
        summary,
        ImportSummary {
            lines: 13,
            events_written: 13,
            events_already_present: 0
        }
    );
    assert_eq!(
        read_log(&copy).await,
        original,
        "same positions, contents and hashes"
    );
    let (_, reexported) = export_bytes(&copy, 1).await;
    assert_eq!(
        String::from_utf8(reexported).expect("utf-8"),
        String::from_utf8(exported.clone()).expect("utf-8")
    );
    assert_sound(&copy, &original).await;

    let (tail_count, tail) = export_bytes(&store, 11).await;
    assert_eq!(tail_count, 3);
    let full = String::from_utf8(exported).expect("utf-8");
    let tail_lines: Vec<&str> = full.lines().skip(10).collect();
    assert_eq!(
        String::from_utf8(tail).expect("utf-8"),
        format!("{}\n", tail_lines.join("\n"))
    );
}

/// The export format does not depend on the backend: SQLite to PostgreSQL and back is lossless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_moves_between_backends_unchanged() {
    let sqlite_db = TestDb::sqlite();
    let sqlite = sqlite_db.open().await;
    varied_log(&sqlite).await;
    let (_, from_sqlite) = export_bytes(&sqlite, 1).await;

    let postgres_db = TestDb::postgres().await;
    let postgres = postgres_db.open().await;
    exchange::import(&postgres, from_sqlite.as_slice(), 5, &actor(), |_| {})
        .await
        .expect("imports");
    let (_, from_postgres) = export_bytes(&postgres, 1).await;
    assert_eq!(
        String::from_utf8_lossy(&from_postgres),
        String::from_utf8_lossy(&from_sqlite)
    );

    let back_db = TestDb::sqlite();
    let back = back_db.open().await;
    exchange::import(&back, from_postgres.as_slice(), 1_000, &actor(), |_| {})
        .await
        .expect("imports");
    assert_eq!(export_bytes(&back, 1).await.1, from_sqlite);
    assert_sound(&back, &read_log(&back).await).await;
}
