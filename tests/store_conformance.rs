//! The store conformance suite: every backend must pass each of these, on a fresh real database.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{TestDb, event, event_with_id};
use followfund::store::{
    ExpectedVersion, FoldEvent, Hash, SNAPSHOT_CHUNK_BYTES, Snapshot, SnapshotPart, SnapshotWriter,
    StoreError,
};
use uuid::Uuid;

per_backend!(
    append_assigns_positions_and_stream_versions,
    read_stream_returns_one_stream_in_order,
    a_batch_across_streams_is_atomic,
    conflict_names_stream_expected_and_actual,
    no_stream_expectation,
    retry_returns_original_positions_and_writes_nothing,
    same_id_with_other_content_is_refused,
    partly_appended_batch_is_refused,
    sixteen_tasks_append_gap_free_with_an_intact_chain,
    subscriber_from_mid_history_sees_each_event_once_across_the_switch,
    reopening_continues_the_chain,
    verify_names_the_altered_row,
    verify_names_a_missing_row,
    the_database_refuses_update_and_delete,
    decode_gives_back_the_typed_payload,
    two_stores_on_one_database_see_each_others_appends,
    long_pages_are_whole_and_in_order,
    a_page_read_in_pieces_holds_the_whole_page_in_order,
    a_snapshot_larger_than_a_row_is_kept_in_chunks,
    a_snapshot_streams_through_in_chunks_and_a_cut_short_save_keeps_the_last,
    a_snapshot_of_two_streams_reads_back_each_apart,
    a_snapshot_missing_a_chunk_reads_back_as_an_error,
    the_largest_append_is_written_whole_and_one_more_event_is_refused,
);

async fn the_largest_append_is_written_whole_and_one_more_event_is_refused(db: TestDb) {
    use followfund::store::APPEND_BATCH_EVENTS_MAX;
    let store = db.open().await;
    let events = |count: usize| -> Vec<_> {
        (0..count)
            .map(|i| event(&format!("referral-{}", i % 1_000)))
            .collect()
    };
    let error = store
        .append(events(APPEND_BATCH_EVENTS_MAX + 1), vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::BatchTooLarge { events } if events == APPEND_BATCH_EVENTS_MAX + 1),
        "{error:?}"
    );
    assert!(error.to_string().contains("split it"), "{error}");
    assert_eq!(store.stats().await.unwrap().events, 0);

    let largest = store
        .append(events(APPEND_BATCH_EVENTS_MAX), vec![])
        .await
        .unwrap();
    let count = APPEND_BATCH_EVENTS_MAX as u64;
    assert_eq!(largest.positions, (1..=count).collect::<Vec<_>>());
    assert_eq!(store.head_position(), count);
    let last = store.read_stream("referral-999", 1).await.unwrap();
    assert_eq!(last.len(), APPEND_BATCH_EVENTS_MAX / 1_000);
    assert_eq!(last.last().unwrap().position, count);
    let report = store.verify().await.unwrap();
    assert_eq!(
        (report.events_checked, report.first_fault.is_none()),
        (count, true)
    );
}

async fn append_assigns_positions_and_stream_versions(db: TestDb) {
    let store = db.open().await;
    let first = store
        .append(vec![event("referral-a"), event("referral-b")], vec![])
        .await
        .unwrap();
    assert_eq!(first.positions, vec![1, 2]);
    assert!(first.written);
    let second = store
        .append(vec![event("referral-a")], vec![])
        .await
        .unwrap();
    assert_eq!(second.positions, vec![3]);

    let all = store.read_all(1, 100).await.unwrap();
    let shape: Vec<_> = all
        .iter()
        .map(|e| (e.position, e.stream.as_str(), e.stream_version))
        .collect();
    assert_eq!(
        shape,
        vec![
            (1, "referral-a", 1),
            (2, "referral-b", 1),
            (3, "referral-a", 2)
        ]
    );
    assert_eq!(all[0].prev_hash, Hash::GENESIS);
    assert_eq!(all[1].prev_hash, all[0].hash);
    assert_eq!(all[2].prev_hash, all[1].hash);
    assert_eq!(store.read_all(3, 100).await.unwrap().len(), 1);
    assert_eq!(store.read_all(2, 1).await.unwrap()[0].position, 2);
    assert!(store.read_all(4, 100).await.unwrap().is_empty());
    assert_eq!(store.head_position(), 3);
}

async fn read_stream_returns_one_stream_in_order(db: TestDb) {
    let store = db.open().await;
    for stream in ["referral-a", "referral-b", "referral-a", "referral-a"] {
        store.append(vec![event(stream)], vec![]).await.unwrap();
    }
    let a = store.read_stream("referral-a", 1).await.unwrap();
    assert_eq!(
        a.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        a.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    let tail = store.read_stream("referral-a", 3).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].position, 4);
    assert!(
        store
            .read_stream("referral-none", 1)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_batch_across_streams_is_atomic(db: TestDb) {
    let store = db.open().await;
    store
        .append(vec![event("referral-a")], vec![])
        .await
        .unwrap();
    let batch = vec![
        event("referral-b"),
        event("referral-c"),
        event("referral-a"),
    ];
    let stale = vec![("referral-a".to_string(), ExpectedVersion::Exact(0))];
    let refused = store.append(batch, stale).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.stats().await.unwrap().events,
        1,
        "nothing of the refused batch is written"
    );
    assert!(store.read_stream("referral-b", 1).await.unwrap().is_empty());

    let batch = vec![
        event("referral-b"),
        event("referral-c"),
        event("referral-a"),
    ];
    let fresh = vec![("referral-a".to_string(), ExpectedVersion::Exact(1))];
    let appended = store.append(batch, fresh).await.unwrap();
    assert_eq!(appended.positions, vec![2, 3, 4]);
}

async fn conflict_names_stream_expected_and_actual(db: TestDb) {
    let store = db.open().await;
    store
        .append(vec![event("referral-a"), event("referral-a")], vec![])
        .await
        .unwrap();
    let error = store
        .append(
            vec![event("referral-a")],
            vec![("referral-a".into(), ExpectedVersion::Exact(1))],
        )
        .await
        .unwrap_err();
    match &error {
        StoreError::Conflict {
            stream,
            expected,
            actual,
        } => {
            assert_eq!(stream, "referral-a");
            assert_eq!(*expected, ExpectedVersion::Exact(1));
            assert_eq!(*actual, 2);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("referral-a")
            && message.contains("version 2")
            && message.contains("not 1"),
        "{message}"
    );
    assert_eq!(store.stats().await.unwrap().events, 2);
}

async fn no_stream_expectation(db: TestDb) {
    let store = db.open().await;
    let create = |stream: &str| (stream.to_string(), ExpectedVersion::NoStream);
    store
        .append(vec![event("referral-a")], vec![create("referral-a")])
        .await
        .unwrap();
    let again = store
        .append(vec![event("referral-a")], vec![create("referral-a")])
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { actual: 1, .. })),
        "{again:?}"
    );
}

async fn retry_returns_original_positions_and_writes_nothing(db: TestDb) {
    let store = db.open().await;
    store
        .append(vec![event("referral-x")], vec![])
        .await
        .unwrap();
    let batch = vec![event("referral-a"), event("referral-b")];
    let first = store.append(batch.clone(), vec![]).await.unwrap();
    assert_eq!(first.positions, vec![2, 3]);
    store
        .append(vec![event("referral-c")], vec![])
        .await
        .unwrap();
    // A retry may repeat a stale expectation: the original write satisfied it.
    let stale = vec![("referral-a".to_string(), ExpectedVersion::NoStream)];
    let retry = store.append(batch, stale).await.unwrap();
    assert_eq!(retry.positions, vec![2, 3]);
    assert!(!retry.written);
    assert_eq!(store.stats().await.unwrap().events, 4);
}

async fn same_id_with_other_content_is_refused(db: TestDb) {
    let store = db.open().await;
    let id = Uuid::now_v7();
    store
        .append(vec![event_with_id("referral-a", id)], vec![])
        .await
        .unwrap();
    let error = store
        .append(vec![event_with_id("referral-a", id)], vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::EventIdReused { position: 1, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&id.to_string()));
    assert_eq!(store.stats().await.unwrap().events, 1);
}

async fn partly_appended_batch_is_refused(db: TestDb) {
    let store = db.open().await;
    let known = event("referral-a");
    store.append(vec![known.clone()], vec![]).await.unwrap();
    let error = store
        .append(vec![event("referral-b"), known], vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::PartlyAppended { .. }),
        "{error:?}"
    );
    assert_eq!(store.stats().await.unwrap().events, 1);
}

async fn sixteen_tasks_append_gap_free_with_an_intact_chain(db: TestDb) {
    const TASKS: usize = 16;
    const APPENDS_PER_TASK: usize = 60;
    let store = db.open().await;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for append in 0..APPENDS_PER_TASK {
                // Every third append is a batch of two, so groups mix batch sizes.
                let mut events = vec![event(&format!("referral-{task}"))];
                if append % 3 == 0 {
                    events.push(event(&format!("referral-{task}-extra")));
                }
                let ids: Vec<Uuid> = events.iter().map(|e| e.event_id()).collect();
                let appended = store.append(events, vec![]).await.unwrap();
                acked.extend(ids.into_iter().zip(appended.positions));
            }
            acked
        }));
    }
    let mut acked = HashMap::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    let expected_events = TASKS * (APPENDS_PER_TASK + APPENDS_PER_TASK.div_ceil(3));
    assert_eq!(acked.len(), expected_events);

    let all = store.read_all(1, 10_000).await.unwrap();
    assert_eq!(all.len(), expected_events);
    for (index, stored) in all.iter().enumerate() {
        assert_eq!(stored.position, index as u64 + 1, "positions are gap-free");
        assert_eq!(
            acked[&stored.event_id], stored.position,
            "each event is where it was acknowledged"
        );
    }
    let versions: Vec<_> = all
        .iter()
        .filter(|e| e.stream == "referral-3")
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, (1..=APPENDS_PER_TASK as u64).collect::<Vec<_>>());
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, expected_events as u64);
}

async fn subscriber_from_mid_history_sees_each_event_once_across_the_switch(db: TestDb) {
    const BEFORE: u64 = 1_500;
    const AFTER: u64 = 1_500;
    const FROM: u64 = 700;
    let store = db.open().await;
    for _ in 0..BEFORE / 100 {
        store
            .append((0..100).map(|_| event("referral-a")).collect(), vec![])
            .await
            .unwrap();
    }
    let mut subscription = store.subscribe(FROM);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..AFTER {
                store
                    .append(vec![event(&format!("referral-{}", i % 7))], vec![])
                    .await
                    .unwrap();
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < (BEFORE + AFTER - FROM + 1) as usize {
        let next = tokio::time::timeout(Duration::from_secs(20), subscription.next()).await;
        seen.push(next.expect("the subscription keeps up").unwrap().position);
    }
    writer.await.unwrap();
    assert_eq!(seen, (FROM..=BEFORE + AFTER).collect::<Vec<_>>());
    // Nothing more arrives until something more is appended.
    let idle = tokio::time::timeout(Duration::from_millis(300), subscription.next()).await;
    assert!(idle.is_err(), "no event beyond the head");
    let position = store
        .append(vec![event("referral-z")], vec![])
        .await
        .unwrap()
        .positions[0];
    let live = tokio::time::timeout(Duration::from_secs(5), subscription.next()).await;
    assert_eq!(live.unwrap().unwrap().position, position);
}

async fn reopening_continues_the_chain(db: TestDb) {
    let store = db.open().await;
    store
        .append(vec![event("referral-a"), event("referral-b")], vec![])
        .await
        .unwrap();
    drop(store);
    let store = db.open().await;
    assert_eq!(store.head_position(), 2);
    let appended = store
        .append(vec![event("referral-a")], vec![])
        .await
        .unwrap();
    assert_eq!(appended.positions, vec![3]);
    assert_eq!(
        store.read_stream("referral-a", 1).await.unwrap()[1].stream_version,
        2
    );
    assert!(store.verify().await.unwrap().is_intact());
}

async fn verify_names_the_altered_row(db: TestDb) {
    let store = db.open().await;
    for _ in 0..5 {
        store
            .append((0..10).map(|_| event("referral-a")).collect(), vec![])
            .await
            .unwrap();
    }
    assert!(store.verify().await.unwrap().is_intact());
    tamper(
        &db.url,
        &["UPDATE events SET data = replace(data, 'loneliness', 'housing') WHERE position = 17"],
    )
    .await;
    let report = store.verify().await.unwrap();
    let fault = report.first_fault.expect("the altered row is found");
    assert_eq!(fault.position, 17);
    assert!(fault.reason.contains("does not match"), "{}", fault.reason);
    assert_eq!(report.events_checked, 16);
}

async fn verify_names_a_missing_row(db: TestDb) {
    let store = db.open().await;
    store
        .append((0..30).map(|_| event("referral-a")).collect(), vec![])
        .await
        .unwrap();
    tamper(&db.url, &["DELETE FROM events WHERE position = 9"]).await;
    let fault = store
        .verify()
        .await
        .unwrap()
        .first_fault
        .expect("the gap is found");
    assert_eq!(fault.position, 9);
    assert!(fault.reason.contains("missing"), "{}", fault.reason);
}

async fn the_database_refuses_update_and_delete(db: TestDb) {
    let store = db.open().await;
    store
        .append(vec![event("referral-a")], vec![])
        .await
        .unwrap();
    for statement in [
        "UPDATE events SET stream_version = 9 WHERE position = 1",
        "DELETE FROM events WHERE position = 1",
    ] {
        let error = execute(&db.url, statement).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{error}");
    }
    assert!(store.verify().await.unwrap().is_intact());
}

async fn decode_gives_back_the_typed_payload(db: TestDb) {
    let store = db.open().await;
    let sent = event("referral-a");
    store.append(vec![sent], vec![]).await.unwrap();
    let stored = &store.read_all(1, 1).await.unwrap()[0];
    match stored.decode().unwrap() {
        followfund_contracts::Event::ReferralReceived(referral) => {
            assert_eq!(referral.link_worker_organisation.as_str(), "RX1LW");
        }
        other => panic!("expected a referral, got {other:?}"),
    }
    assert_eq!(stored.actor, common::actor());
}

/// Each store keeps what it last wrote to commit quickly; another writer must never make it
/// skip a conflict, reuse a version or break the chain.
async fn two_stores_on_one_database_see_each_others_appends(db: TestDb) {
    let (a, b) = (db.open().await, db.open().await);
    a.append(vec![event("referral-s")], vec![]).await.unwrap();
    b.append(vec![event("referral-t")], vec![]).await.unwrap();
    // `b` has never written referral-s: it must find version 1 there, not assume a new stream.
    let appended = b.append(vec![event("referral-s")], vec![]).await.unwrap();
    assert_eq!(appended.positions, vec![3]);
    assert_eq!(b.read_all(3, 1).await.unwrap()[0].stream_version, 2);
    // `a` last saw referral-s at version 1; expecting that is now stale.
    let stale = a
        .append(
            vec![event("referral-s")],
            vec![("referral-s".into(), ExpectedVersion::Exact(1))],
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { actual: 2, .. })),
        "{stale:?}"
    );
    let fresh = a
        .append(
            vec![event("referral-s")],
            vec![("referral-s".into(), ExpectedVersion::Exact(2))],
        )
        .await
        .unwrap();
    assert_eq!(fresh.positions, vec![4]);
    for round in 0..20 {
        let (store, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        store
            .append(vec![event("referral-s"), event("referral-u")], vec![])
            .await
            .unwrap();
        other
            .append(vec![event("referral-u")], vec![])
            .await
            .unwrap();
    }
    let versions: Vec<u64> = a
        .read_stream("referral-s", 1)
        .await
        .unwrap()
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, (1..=23).collect::<Vec<_>>());
    let report = b.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, 64);
}

async fn long_pages_are_whole_and_in_order(db: TestDb) {
    let store = db.open().await;
    for batch in 0..12 {
        let events = (0..1_000)
            .map(|i| event(&format!("referral-{}", (batch * 7 + i) % 50)))
            .collect();
        store.append(events, vec![]).await.unwrap();
    }
    let positions = |page: Vec<followfund::store::RecordedEvent>| {
        page.iter().map(|e| e.position).collect::<Vec<_>>()
    };
    assert_eq!(
        positions(store.read_all(1, 10_000).await.unwrap()),
        (1..=10_000).collect::<Vec<_>>()
    );
    assert_eq!(
        positions(store.read_all(7_001, 10_000).await.unwrap()),
        (7_001..=12_000).collect::<Vec<_>>()
    );
    assert_eq!(
        positions(store.read_all(11_999, 10_000).await.unwrap()),
        vec![11_999, 12_000]
    );
    assert_eq!(
        store.read_all(1, 50_000).await.unwrap().len(),
        10_000,
        "a page is capped"
    );
    // A replay's narrow read holds the same events as the full one, field for field.
    let full: Vec<FoldEvent> = store
        .read_all(7_001, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(FoldEvent::from)
        .collect();
    let narrow: Vec<FoldEvent> = store
        .read_fold(7_001, 10_000, |row| row.to_event().unwrap())
        .await
        .unwrap();
    assert_eq!(narrow.len(), 5_000);
    assert!(narrow == full, "the fold read matches the full read");
    assert_eq!(narrow[0].event_type, "referral.received");
    assert!(
        store
            .read_fold(12_001, 10, |row| row.to_event().unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    // Events named by position, as a journey names its steps: in order, whatever order they
    // were asked in, across more than a page, and without those beyond the head.
    let wanted: Vec<u64> = (1..=12_000).rev().chain([12_001, 99_999]).collect();
    let at = store.read_at(&wanted).await.unwrap();
    assert_eq!(positions(at), (1..=12_000).collect::<Vec<_>>());
    let some = store.read_at(&[9_000, 3, 11_999]).await.unwrap();
    assert_eq!(positions(some.clone()), vec![3, 9_000, 11_999]);
    let full_3 = store.read_all(3, 1).await.unwrap();
    assert!(
        some[0] == full_3[0],
        "an event read by position is read whole"
    );
    assert!(store.read_at(&[]).await.unwrap().is_empty());
}

/// Alters the log as someone with direct database access would: first removing the triggers
/// that guard it, then running `statements`.
/// A part of a payment run with `lines` lines, the largest payload the simulated year writes.
fn payment_run_part(lines: usize) -> followfund::store::NewEvent {
    let lines: Vec<_> = (0..lines)
        .map(|line| {
            serde_json::json!({
                "provider": "VCS01", "prescription_id": Uuid::from_u128(line as u128 + 1),
                "kind": "payment", "amount": "15.00", "positions": [line + 1, line + 2],
            })
        })
        .collect();
    let data = serde_json::json!({
        "run_id": Uuid::now_v7(), "anchor": "ANC01", "through": "2026-06-30",
        "part": 1, "parts": 1, "lines": lines,
    });
    let (id, at) = (Uuid::now_v7(), chrono::Utc::now());
    let actor = followfund::store::Actor::admin_cli();
    let event = followfund::store::NewEvent::from_parts(
        id,
        "payment-run".into(),
        "payment_run.recorded",
        1,
        data,
        actor,
        at,
    );
    event.expect("a valid payment run")
}

async fn a_page_read_in_pieces_holds_the_whole_page_in_order(db: TestDb) {
    use followfund_contracts::events::PAYMENT_RUN_PART_LINES_MAX;
    let store = db.open().await;
    // Ordinary events, then runs enough to fill several pieces, then ordinary events again.
    let mut events: Vec<_> = (0..500).map(|i| event(&format!("referral-{i}"))).collect();
    events.extend((0..400).map(|_| payment_run_part(PAYMENT_RUN_PART_LINES_MAX)));
    events.extend((0..500).map(|i| event(&format!("referral-{i}"))));
    store.append(events, vec![]).await.unwrap();
    let whole: Vec<FoldEvent> = store
        .read_fold(1, 10_000, |row| row.to_event().unwrap())
        .await
        .unwrap();
    assert_eq!(whole.len(), 1_400);

    let (hand_on, mut pieces) = tokio::sync::mpsc::channel(2);
    let reading = tokio::spawn({
        let store = store.clone();
        async move {
            let read = |row: followfund::store::FoldRow<'_>| row.to_event().unwrap();
            store.read_fold_pieces(1, 10_000, read, hand_on).await
        }
    });
    let mut read = Vec::new();
    let mut sizes = Vec::new();
    while let Some(piece) = pieces.recv().await {
        sizes.push(piece.len());
        read.extend(piece);
    }
    reading.await.unwrap().unwrap();
    assert!(
        read == whole,
        "the pieces hold the page, in order: {sizes:?}"
    );
    assert!(
        sizes.iter().all(|&size| size > 0),
        "no piece is empty: {sizes:?}"
    );
    // SQLite reads the page from a block, and cuts it where the runs' payloads pass a
    // megabyte; PostgreSQL hands on the page whole.
    let cut = db.url.starts_with("sqlite");
    assert_eq!(sizes.len() > 1, cut, "{sizes:?}");

    // A reader that stops taking pieces ends the reading without an error.
    let (hand_on, pieces) = tokio::sync::mpsc::channel(1);
    drop(pieces);
    let read = |row: followfund::store::FoldRow<'_>| row.position;
    store
        .read_fold_pieces(1, 10_000, read, hand_on)
        .await
        .unwrap();
}

async fn tamper(url: &str, statements: &[&str]) {
    let drop_guards: &[&str] = if url.starts_with("postgres") {
        &["DROP TRIGGER events_refuse_update ON events"]
    } else {
        &[
            "DROP TRIGGER events_refuse_update",
            "DROP TRIGGER events_refuse_delete",
        ]
    };
    for statement in drop_guards.iter().chain(statements) {
        execute(url, statement).await.unwrap();
    }
}

async fn execute(url: &str, statement: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(statement.to_string());
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query(sql).execute(&mut conn).await?;
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        sqlx::query(sql).execute(&mut conn).await?;
    }
    Ok(())
}

#[test]
fn hashes_are_distinct_per_event() {
    // Guards the suite's own helper: two sample events must differ, or tests above could pass
    // on identical rows.
    let (a, b) = (event("referral-a"), event("referral-a"));
    assert_ne!(a.event_id(), b.event_id());
    let ids: HashSet<_> = (0..100).map(|_| event("s").event_id()).collect();
    assert_eq!(ids.len(), 100);
}

/// A state of `len` bytes counting up modulo `modulus`, an odd number, so that no chunk (a power
/// of two long) repeats another and bytes read from the wrong place show.
fn patterned(len: usize, modulus: usize) -> Vec<u8> {
    (0..len).map(|i| (i % modulus) as u8).collect()
}

async fn a_snapshot_larger_than_a_row_is_kept_in_chunks(db: TestDb) {
    let store = db.open().await;
    let state = patterned(2 * SNAPSHOT_CHUNK_BYTES + 5, 251);
    let large = Snapshot {
        version: 3,
        position: 9,
        state,
    };
    store.snapshot_save("models", &large).await.unwrap();
    let loaded = store.snapshot_load("models").await.unwrap().unwrap();
    assert!(loaded == large, "three chunks read back as the state saved");

    let small = Snapshot {
        version: 3,
        position: 10,
        state: b"small".to_vec(),
    };
    store.snapshot_save("models", &small).await.unwrap();
    assert_eq!(
        store.snapshot_load("models").await.unwrap(),
        Some(small),
        "a later, smaller snapshot leaves none of the earlier one's chunks behind"
    );
    assert_eq!(store.snapshot_load("other").await.unwrap(), None);
}

async fn a_snapshot_streams_through_in_chunks_and_a_cut_short_save_keeps_the_last(db: TestDb) {
    use std::io::{Read, Write};
    let store = db.open().await;
    let state = patterned(2 * SNAPSHOT_CHUNK_BYTES + 7, 253);
    // Written in uneven pieces from a blocking thread, as the runner encodes.
    let (send, parts) = tokio::sync::mpsc::channel(1);
    let written = state.clone();
    let writing = tokio::task::spawn_blocking(move || {
        let mut writer = SnapshotWriter::new(send);
        for piece in written.chunks(1_000_003) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap();
    });
    let saved = store.snapshot_save_parts("models", 4, 11, parts).await;
    writing.await.unwrap();
    assert_eq!(saved.unwrap(), state.len(), "the saved size is the state's");

    let reader = store.snapshot_open("models").await.unwrap().unwrap();
    assert_eq!((reader.version, reader.position), (4, 11));
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut read = Vec::new();
        reader.read_to_end(&mut read).unwrap();
        read
    });
    assert!(
        read.await.unwrap() == state,
        "three chunks stream back as written"
    );

    // A writer that stops before its end saves nothing: the last snapshot stands.
    let (send, parts) = tokio::sync::mpsc::channel(1);
    let cut_short = async move {
        send.send(SnapshotPart::Chunk(b"half".to_vec()))
            .await
            .unwrap();
    };
    let (_, refused) = tokio::join!(cut_short, store.snapshot_save_parts("models", 5, 12, parts));
    assert!(
        matches!(refused, Err(StoreError::Corrupt { ref reason, .. }) if reason.contains("nothing was saved")),
        "{refused:?}"
    );
    let kept = store.snapshot_load("models").await.unwrap().unwrap();
    assert_eq!((kept.version, kept.position), (4, 11));
    assert!(kept.state == state);
}

async fn a_snapshot_of_two_streams_reads_back_each_apart(db: TestDb) {
    use std::io::{Read, Write};
    let store = db.open().await;
    // Streams of different lengths, written at once from two threads, so that their chunks
    // arrive at the store interleaved.
    let streams: Vec<Vec<u8>> = [2 * SNAPSHOT_CHUNK_BYTES + 5, SNAPSHOT_CHUNK_BYTES / 3]
        .iter()
        .enumerate()
        .map(|(stream, &len)| (0..len).map(|i| ((i + stream * 7) % 251) as u8).collect())
        .collect();
    let (send, parts) = tokio::sync::mpsc::channel(1);
    let written = streams.clone();
    let writing = tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            for (stream, bytes) in written.iter().enumerate() {
                let mut writer = SnapshotWriter::stream(send.clone(), stream as u8);
                scope.spawn(move || {
                    for piece in bytes.chunks(999_983) {
                        writer.write_all(piece).unwrap();
                    }
                    writer.finish_stream().unwrap();
                });
            }
        });
        send.blocking_send(SnapshotPart::End).unwrap();
    });
    let saved = store.snapshot_save_parts("models", 6, 13, parts).await;
    writing.await.unwrap();
    let tags = 4; // three chunks of the first stream, one of the second
    assert_eq!(saved.unwrap(), streams[0].len() + streams[1].len() + tags);

    let reader = store.snapshot_open("models").await.unwrap().unwrap();
    let readers = reader.into_streams(2);
    let reading = readers.into_iter().map(|mut reader| {
        tokio::task::spawn_blocking(move || {
            assert_eq!((reader.version, reader.position), (6, 13));
            let mut read = Vec::new();
            reader.read_to_end(&mut read).map(|_| read)
        })
    });
    for (stream, read) in reading.enumerate() {
        let read = read.await.unwrap().unwrap();
        assert!(
            read == streams[stream],
            "stream {stream} reads back as written"
        );
    }

    // Read as one stream, the chunks of stream 1 name a stream the readers lack: an error, never
    // two streams' bytes run together.
    let reader = store.snapshot_open("models").await.unwrap().unwrap();
    let [mut only] = <[_; 1]>::try_from(reader.into_streams(1)).ok().unwrap();
    let refused = tokio::task::spawn_blocking(move || only.read_to_end(&mut Vec::new()));
    let refused = refused.await.unwrap().unwrap_err();
    assert!(
        refused.to_string().contains("names no stream of the 1"),
        "{refused}"
    );
}

async fn a_snapshot_missing_a_chunk_reads_back_as_an_error(db: TestDb) {
    use std::io::Read;
    let store = db.open().await;
    let state = patterned(3 * SNAPSHOT_CHUNK_BYTES + 11, 241);
    let snapshot = Snapshot {
        version: 7,
        position: 21,
        state: state.clone(),
    };
    store.snapshot_save("models", &snapshot).await.unwrap();
    // Read twice over, so that the chunk buffers handed back are filled again as they come.
    for _ in 0..2 {
        let reader = store.snapshot_open("models").await.unwrap().unwrap();
        let read = tokio::task::spawn_blocking(move || {
            let (mut reader, mut read) = (reader, Vec::new());
            reader.read_to_end(&mut read).map(|_| read)
        });
        assert!(
            read.await.unwrap().unwrap() == state,
            "four chunks read back"
        );
    }

    execute(&db.url, "DELETE FROM snapshot_chunks WHERE chunk = 2")
        .await
        .unwrap();
    let reader = store.snapshot_open("models").await.unwrap().unwrap();
    assert_eq!((reader.version, reader.position), (7, 21));
    let refused = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        reader.read_to_end(&mut Vec::new())
    });
    let refused = refused.await.unwrap().unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("snapshot chunk 2 of 4 is missing"),
        "{refused}"
    );
}

/// SQLite's WAL is copied into the database file by the store's own thread, not left to grow and
/// not copied by whichever commit crosses SQLite's threshold (which the writer turns off).
#[tokio::test]
async fn sqlite_copies_its_wal_into_the_database_file_in_the_background() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    let empty_bytes = std::fs::metadata(&path).unwrap().len();
    for batch in 0..3 {
        let events = (0..5_000)
            .map(|i| event(&format!("referral-{batch}-{i}")))
            .collect();
        store.append(events, vec![]).await.unwrap();
    }
    let mut grown_bytes = empty_bytes;
    for _ in 0..100 {
        grown_bytes = std::fs::metadata(&path).unwrap().len();
        if grown_bytes > empty_bytes + 1_000_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        grown_bytes > empty_bytes + 1_000_000,
        "15,000 events reached the database file: {empty_bytes} -> {grown_bytes} bytes"
    );
    assert_eq!(store.read_all(1, 10_000).await.unwrap().len(), 10_000);
    let report = store.verify().await.unwrap();
    assert_eq!(
        (report.events_checked, report.first_fault.is_none()),
        (15_000, true)
    );
}

/// A snapshot writes megabytes into the WAL at once; left there, the next process to open the
/// file reads all of it to rebuild the WAL's index, and every read looks its pages up there.
#[tokio::test]
async fn sqlite_empties_its_wal_after_saving_a_snapshot() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let wal = format!("{}-wal", db.url.trim_start_matches("sqlite://"));
    let snapshot = Snapshot {
        version: 1,
        position: 0,
        state: patterned(2 * SNAPSHOT_CHUNK_BYTES + 5, 251),
    };
    store.snapshot_save("models", &snapshot).await.unwrap();
    let mut wal_bytes = u64::MAX;
    for _ in 0..200 {
        wal_bytes = std::fs::metadata(&wal).map_or(0, |wal| wal.len());
        if wal_bytes == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(wal_bytes, 0, "the snapshot's pages left the WAL");
    let loaded = store.snapshot_load("models").await.unwrap();
    assert!(
        loaded == Some(snapshot),
        "the snapshot reads back from the file"
    );
}

/// A reader that holds the WAL when the snapshot is saved makes the TRUNCATE busy; the store
/// tries it again once the reader is gone, with no further commit to ask it.
#[tokio::test]
async fn sqlite_empties_its_wal_once_a_reader_that_held_it_has_gone() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    let wal = format!("{path}-wal");
    store
        .append(vec![event("referral-1")], vec![])
        .await
        .unwrap();
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let events: i64 = reader
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(events, 1, "the reader holds a read of the WAL");
    let snapshot = Snapshot {
        version: 1,
        position: 1,
        state: patterned(2 * SNAPSHOT_CHUNK_BYTES + 5, 251),
    };
    store.snapshot_save("models", &snapshot).await.unwrap();
    // Long enough for the TRUNCATE to give up at least once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held_bytes = std::fs::metadata(&wal).map_or(0, |wal| wal.len());
    assert!(held_bytes > 0, "the WAL is kept while the reader holds it");
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    let mut wal_bytes = held_bytes;
    for _ in 0..100 {
        wal_bytes = std::fs::metadata(&wal).map_or(0, |wal| wal.len());
        if wal_bytes == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        wal_bytes, 0,
        "{held_bytes} bytes of WAL left once the reader had gone"
    );
}

#[tokio::test]
async fn sqlite_keeps_every_event_across_rewinds_of_its_wal() {
    // The writer rewinds the WAL to its start every 50,000 events; 60,000 cross that once,
    // and the events written both before and after must be read back after a reopen.
    let db = TestDb::sqlite();
    let store = db.open().await;
    for batch in 0..6 {
        let events = (0..10_000)
            .map(|i| event(&format!("referral-{}", i % 2_000 + batch)))
            .collect();
        store.append(events, vec![]).await.unwrap();
    }
    drop(store);
    let store = db.open().await;
    assert_eq!(store.head_position(), 60_000);
    let last = store.read_all(59_991, 100).await.unwrap();
    assert_eq!(last.len(), 10);
    assert_eq!(last[9].position, 60_000);
    let report = store.verify().await.unwrap();
    assert_eq!(
        (report.events_checked, report.first_fault.is_none()),
        (60_000, true)
    );
}

#[tokio::test]
async fn sqlite_refuses_renaming_a_stream_or_filing_an_event_under_no_stream() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let events = vec![event("referral-a"), event("referral-b")];
    store.append(events, vec![]).await.unwrap();
    // An event names its stream by number: renaming or removing the number moves the event.
    for statement in [
        "UPDATE streams SET stream = 'referral-z' WHERE stream_key = 1",
        "DELETE FROM streams WHERE stream_key = 2",
    ] {
        let error = execute(&db.url, statement).await.unwrap_err();
        assert!(error.to_string().contains("keeps its number"), "{error}");
    }
    let unnumbered = "INSERT INTO events (position, event_id, stream_key, stream_version, \
        event_type, schema_version, occurred_at_us, recorded_at_us, actor_organisation, \
        actor_role, data, prev_hash, hash) \
        SELECT 3, 'copied', 3, 1, event_type, schema_version, occurred_at_us, recorded_at_us, \
        actor_organisation, actor_role, data, hash, hash FROM events WHERE position = 2";
    let error = execute(&db.url, unnumbered).await.unwrap_err();
    assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.events, stats.streams), (2, 2));
    assert_eq!(store.read_stream("referral-b", 1).await.unwrap().len(), 1);
    assert!(store.verify().await.unwrap().is_intact());
}

/// A log written before streams were numbered: its rows are copied into the schema of the first
/// three migrations, and opening it numbers its streams.
#[tokio::test]
async fn sqlite_numbers_the_streams_of_a_log_written_before_numbers() {
    use sqlx::Connection;
    let written = TestDb::sqlite();
    let store = written.open().await;
    for round in 0..3 {
        let events = ["referral-b", "referral-a", "referral-c"]
            .iter()
            .take(3 - round)
            .map(|stream| event(stream))
            .collect();
        store.append(events, vec![]).await.unwrap();
    }
    drop(store);

    let earlier = tempfile::tempdir().unwrap();
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for name in [
        "0001_events.sql",
        "0002_tokens_snapshots.sql",
        "0003_snapshot_chunks.sql",
    ] {
        std::fs::copy(migrations.join(name), earlier.path().join(name)).unwrap();
    }
    let old = TestDb::sqlite();
    let options = old
        .url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
        .await
        .unwrap();
    let migrator = sqlx::migrate::Migrator::new(earlier.path()).await.unwrap();
    migrator.run(&mut conn).await.unwrap();
    let path = written.url.trim_start_matches("sqlite://");
    for statement in [
        format!("ATTACH '{path}' AS written"),
        format!(
            "INSERT INTO events SELECT {} FROM written.events e \
             JOIN written.streams s ON s.stream_key = e.stream_key",
            first_schema_columns()
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();

    let store = old.open().await;
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.events, stats.streams), (6, 3));
    let versions = |events: Vec<followfund::store::RecordedEvent>| -> Vec<(u64, u64)> {
        events
            .iter()
            .map(|e| (e.position, e.stream_version))
            .collect()
    };
    assert_eq!(
        versions(store.read_stream("referral-a", 1).await.unwrap()),
        [(2, 1), (5, 2)]
    );
    assert_eq!(store.stream_version_at("referral-b", 3).await.unwrap(), 1);
    let appended = store
        .append(
            vec![event("referral-a"), event("referral-d")],
            vec![("referral-a".into(), ExpectedVersion::Exact(2))],
        )
        .await
        .unwrap();
    assert_eq!(appended.positions, [7, 8]);
    assert_eq!(
        versions(store.read_stream("referral-a", 3).await.unwrap()),
        [(7, 3)]
    );
    assert_eq!(store.stats().await.unwrap().streams, 4);
    assert!(store.verify().await.unwrap().is_intact());
    // The six copied events have no compact block, the two appended since have one: a replay
    // reads both kinds alike.
    let full: Vec<FoldEvent> = (store.read_all(1, 100).await.unwrap().into_iter())
        .map(FoldEvent::from)
        .collect();
    let replayed = store
        .read_fold(1, 100, |row| row.to_event().unwrap())
        .await
        .unwrap();
    assert_eq!(replayed.len(), 8);
    assert!(replayed == full, "a replay reads rows and blocks alike");
}

/// A block altered to say what another event says, or cut short, is named by `verify`, and a
/// replay refuses the cut one.
#[tokio::test]
async fn sqlite_verify_names_a_block_that_says_otherwise_than_its_rows() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    for stream in ["referral-a", "referral-b", "referral-c"] {
        store.append(vec![event(stream)], vec![]).await.unwrap();
    }
    assert!(store.verify().await.unwrap().is_intact());
    let unguard = [
        "DROP TRIGGER fold_blocks_refuse_update",
        "DROP TRIGGER fold_blocks_refuse_delete",
    ];
    for statement in unguard {
        execute(&db.url, statement).await.unwrap();
    }
    execute(
        &db.url,
        "UPDATE fold_blocks SET bytes = (SELECT bytes FROM fold_blocks WHERE first_position = 3) \
         WHERE first_position = 2",
    )
    .await
    .unwrap();
    let fault = store.verify().await.unwrap().first_fault.unwrap();
    assert_eq!(fault.position, 2);
    assert!(fault.reason.contains("otherwise than its row"), "{fault:?}");

    execute(
        &db.url,
        "UPDATE fold_blocks SET bytes = substr(bytes, 1, length(bytes) - 5) WHERE first_position = 2",
    )
    .await
    .unwrap();
    let fault = store.verify().await.unwrap().first_fault.unwrap();
    assert_eq!(fault.position, 2);
    assert!(fault.reason.contains("cut short"), "{fault:?}");
    let refused = store.read_fold(1, 10, |row| row.position).await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt { position: 2, .. })),
        "{refused:?}"
    );
}

/// The columns of the first schema's `events`, in its order, from a log that numbers streams.
fn first_schema_columns() -> &'static str {
    "e.position, e.event_id, s.stream, e.stream_version, e.event_type, e.schema_version, \
     e.occurred_at_us, e.recorded_at_us, e.actor_organisation, e.actor_role, e.actor_user, \
     e.correlation_id, e.causation_id, e.data, e.prev_hash, e.hash"
}
