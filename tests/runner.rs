//! The projection runner on real stores: restart from a snapshot, rebuild on a version change,
//! and rebuilding from zero equal to following live.

mod common;

use std::time::Duration;

use common::TestDb;
use followfund::demo;
use followfund::runner::Runner;
use followfund::store::Snapshot;

per_backend!(
    a_restart_replays_only_the_tail,
    a_snapshot_of_another_version_is_rebuilt,
    an_unreadable_snapshot_is_rebuilt,
    following_live_equals_folding_from_zero,
    following_live_snapshots_every_fifty_thousand_events,
);

const WAIT: Duration = Duration::from_secs(10);

async fn a_restart_replays_only_the_tail(db: TestDb) {
    let store = db.open().await;
    demo::load(&store, 7).await.unwrap();
    let head = store.head_position();
    let first = Runner::start(store.clone()).await.unwrap();
    assert_eq!(first.started_from(), 0);
    assert_eq!(first.position(), head);
    drop(first);

    followfund::admin::organisation_add(
        &store,
        "VCS99",
        "Late Arrivals Choir",
        followfund_contracts::Role::Provider,
        followfund_contracts::Nation::England,
        None,
    )
    .await
    .unwrap();
    let second = Runner::start(store.clone()).await.unwrap();
    assert_eq!(
        second.started_from(),
        head,
        "the snapshot taken at start-up is used"
    );
    assert_eq!(second.position(), head + 1);
    let code = followfund_contracts::OdsCode::parse("VCS99").unwrap();
    assert_eq!(
        second.read().organisations.get(&code).unwrap().name,
        "Late Arrivals Choir"
    );
}

async fn a_snapshot_of_another_version_is_rebuilt(db: TestDb) {
    let store = db.open().await;
    demo::load(&store, 8).await.unwrap();
    let reference = Runner::start(store.clone()).await.unwrap();
    let stale = Snapshot {
        version: 999,
        position: store.head_position(),
        state: b"{}".to_vec(),
    };
    store.snapshot_save("read-models", &stale).await.unwrap();
    let rebuilt = Runner::start(store.clone()).await.unwrap();
    assert_eq!(rebuilt.started_from(), 0);
    assert_eq!(*rebuilt.read(), *reference.read());
}

async fn an_unreadable_snapshot_is_rebuilt(db: TestDb) {
    let store = db.open().await;
    demo::load(&store, 9).await.unwrap();
    let reference = Runner::start(store.clone()).await.unwrap();
    let version = followfund_projections::ReadModels::snapshot_version();
    let broken = Snapshot {
        version,
        position: store.head_position(),
        state: b"not json".to_vec(),
    };
    store.snapshot_save("read-models", &broken).await.unwrap();
    let rebuilt = Runner::start(store.clone()).await.unwrap();
    assert_eq!(rebuilt.started_from(), 0);
    assert_eq!(*rebuilt.read(), *reference.read());
}

async fn following_live_equals_folding_from_zero(db: TestDb) {
    let store = db.open().await;
    let live = Runner::start(store.clone()).await.unwrap();
    demo::load(&store, 10).await.unwrap();
    let head = store.head_position();
    assert!(
        head > 3_000,
        "the demonstration set is a real history ({head} events)"
    );
    live.wait_for(head, WAIT).await.unwrap();
    let from_zero = Runner::start(store.clone()).await.unwrap();
    assert_eq!(from_zero.position(), head);
    assert_eq!(
        *live.read(),
        *from_zero.read(),
        "rebuilding from zero gives the state folding live gave"
    );
    let journeys = live.read().journeys.journeys().count();
    assert_eq!(journeys as u64, demo::DEMO_REFERRALS);
}

async fn following_live_snapshots_every_fifty_thousand_events(db: TestDb) {
    use followfund::runner::SNAPSHOT_EVERY_EVENTS;
    let store = db.open().await;
    let runner = Runner::start(store.clone()).await.unwrap();
    assert_eq!(runner.started_from(), 0);
    let batch = followfund::store::APPEND_BATCH_EVENTS_MAX as u64;
    let batches = SNAPSHOT_EVERY_EVENTS.div_ceil(batch);
    for round in 0..batches {
        let events = (0..batch)
            .map(|i| common::event(&format!("referral-{round}-{i}")))
            .collect();
        store.append(events, vec![]).await.unwrap();
    }
    let head = store.head_position();
    assert!(head >= SNAPSHOT_EVERY_EVENTS);
    runner
        .wait_for(head, Duration::from_secs(60))
        .await
        .unwrap();
    // The follower saves after the batch that crosses the threshold, while queries go on.
    let mut saved = 0;
    for _ in 0..600 {
        saved = store
            .snapshot_open("read-models")
            .await
            .unwrap()
            .map_or(0, |reader| reader.position);
        if saved >= SNAPSHOT_EVERY_EVENTS {
            break;
        }
        assert_eq!(
            runner.read().position(),
            head,
            "reads go on while a snapshot is taken"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saved >= SNAPSHOT_EVERY_EVENTS, "a snapshot at {saved}");
    drop(runner);
    let restarted = Runner::start(store.clone()).await.unwrap();
    assert_eq!(restarted.started_from(), saved);
    assert_eq!(restarted.position(), head);
    assert_eq!(restarted.read().journeys.journeys().count() as u64, head);
}
