//! The simulated year as a correctness smoke test on both backends: the small scale goes into a
//! real store through atomic batches, the chain verifies, folding the stored log from zero gives
//! exactly the read models the simulation folded as it decided each event, the ledger's postings
//! sum to zero, and the same seed gives the same history.

mod common;

use common::TestDb;
use followfund::runner::Runner;
use followfund::simulate::{self, Scale};
use followfund_contracts::Money;

per_backend!(a_small_year_replays_to_the_models_it_was_decided_against);

async fn a_small_year_replays_to_the_models_it_was_decided_against(db: TestDb) {
    let store = db.open().await;
    let (written, incremental) = simulate::into_store(&store, Scale::Small, 7, |_| {})
        .await
        .unwrap();
    assert!(
        written > 8_000,
        "a small year is some thousands of events: {written}"
    );
    assert_eq!(store.head_position(), written);
    let verified = store.verify().await.unwrap();
    assert!(verified.is_intact());
    assert_eq!(verified.events_checked, written);

    let runner = Runner::start(store.clone()).await.unwrap();
    {
        let replayed = runner.read();
        assert_eq!(replayed.position(), written);
        assert!(
            *replayed == incremental,
            "replay from zero differs from the incremental fold"
        );
        assert_eq!(replayed.ledger.balances_sum(), Money::zero());
        assert!(replayed.ledger.runs().count() > 0, "payment runs were made");
        assert!(replayed.arrs.pcns().count() > 0);
        assert!(replayed.sib.contracts().count() == 1);
    }

    let restarted = Runner::start(store.clone()).await.unwrap();
    assert_eq!(
        restarted.started_from(),
        written,
        "the restart starts from the snapshot the replay saved"
    );
    assert!(
        *restarted.read() == incremental,
        "the snapshot reads back as exactly the models it saved"
    );
}

#[test]
fn the_same_seed_gives_the_same_year_and_another_seed_another() {
    let year = |seed| {
        let mut out = Vec::new();
        simulate::write_ndjson(Scale::Small, seed, &mut out, |_| {}).unwrap();
        out
    };
    let first = year(3);
    assert_eq!(first, year(3));
    assert_ne!(first, year(4));
}
