//! Payment runs and remittance advice end to end on both backends: published terms, a funded
//! prescription, sessions, a run, a late attendance in the next run, and the CSV a provider gets.

mod common;

use chrono::{NaiveDate, TimeZone, Utc};
use common::TestDb;
use followfund::runner::Runner;
use followfund::store::{Actor, NewEvent, Store};
use followfund_contracts::{Nation, OdsCode, Role};
use serde_json::{Value, json};
use uuid::Uuid;

per_backend!(
    a_run_settles_its_period_once_and_late_work_comes_next,
    an_unanswered_prescription_is_declined_once_when_its_window_closes,
);

const TERMS: &str = include_str!("../contracts/rules/examples/walking-group-2026-27.toml");
const AGREEMENT: &str = "0198a000-0000-7000-8000-000000000010";
const REFERRAL: Uuid = Uuid::from_u128(0x0198_b000_0000_7000_8000_0000_0000_0001);
const PRESCRIPTION: Uuid = Uuid::from_u128(0x0198_b000_0000_7000_8000_0000_0000_0002);

async fn record(store: &Store, on: (u32, u32), event_type: &str, data: Value) {
    let occurred_at = Utc.with_ymd_and_hms(2026, on.0, on.1, 10, 0, 0).unwrap();
    let actor = Actor {
        organisation: "ANC01".into(),
        role: "anchor".into(),
        user: None,
    };
    let event = NewEvent::from_parts(
        Uuid::now_v7(),
        format!("referral-{REFERRAL}"),
        event_type,
        1,
        data,
        actor,
        occurred_at,
    )
    .unwrap();
    store.append(vec![event], vec![]).await.unwrap();
}

async fn attended(store: &Store, on: (u32, u32), session: u128) {
    record(
        store,
        on,
        "session.attended",
        json!({"prescription_id": PRESCRIPTION, "session_id": Uuid::from_u128(session)}),
    )
    .await;
}

/// The organisations, the example terms, and a referral received on 1 May 2026.
async fn terms_and_a_referral(store: &Store) {
    for (code, role) in [
        ("QHM", Role::Commissioner),
        ("ANC01", Role::Anchor),
        ("VCS01", Role::Provider),
    ] {
        followfund::admin::organisation_add(store, code, code, role, Nation::England, None)
            .await
            .unwrap();
    }
    followfund::admin::contracts_publish(store, TERMS)
        .await
        .unwrap();
    record(store, (5, 1), "referral.received", json!({
        "referral_id": REFERRAL, "person_id": Uuid::from_u128(9), "source": "gp_practice", "referrer": null,
        "link_worker_organisation": "ANC01", "reasons": ["loneliness"], "age_band": "65-74", "conditions": [],
    })).await;
}

async fn a_run_settles_its_period_once_and_late_work_comes_next(db: TestDb) {
    let store = db.open().await;
    terms_and_a_referral(&store).await;
    record(
        &store,
        (5, 1),
        "prescription.issued",
        json!({
            "prescription_id": PRESCRIPTION, "referral_id": REFERRAL, "provider": "VCS01",
            "activity_type": "walking", "agreement_id": AGREEMENT,
        }),
    )
    .await;
    attended(&store, (5, 4), 1).await;
    attended(&store, (5, 11), 2).await;
    attended(&store, (6, 1), 3).await;

    let runner = Runner::start(store.clone()).await.unwrap();
    let anchor = OdsCode::parse("ANC01").unwrap();
    let may = NaiveDate::from_ymd_opt(2026, 5, 31).unwrap();
    let first = followfund::payments::pay(&store, &runner, &anchor, may)
        .await
        .unwrap();
    assert!(first.written);
    let amounts: Vec<String> = first
        .run
        .lines
        .iter()
        .map(|line| line.amount.to_string())
        .collect();
    // £25.00 engagement and two £15.00 sessions in May; June's session waits.
    assert_eq!(amounts, vec!["£55.00"]);
    let again = followfund::payments::pay(&store, &runner, &anchor, may)
        .await
        .unwrap();
    assert!(!again.written, "one run per anchor and date");
    assert_eq!(again.run.run_id, first.run.run_id);

    // A May session recorded after the May run is paid in June's run, beside June's own.
    attended(&store, (5, 25), 4).await;
    let june = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let second = followfund::payments::pay(&store, &runner, &anchor, june)
        .await
        .unwrap();
    let lines: Vec<_> = second.run.lines.iter().collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].amount.to_string(), "£30.00");
    assert_eq!(lines[0].positions.len(), 2);

    runner
        .wait_for(second.run.position, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let models = runner.read();
    let position = models.ledger.budget_position(
        &anchor,
        followfund_contracts::terms::FinancialYear::starting(2026),
    );
    assert_eq!(
        (position.allocated.to_string(), position.paid.to_string()),
        ("£120000.00".to_string(), "£85.00".to_string())
    );
    let csv = followfund::payments::remittance_csv(
        &models,
        &second.run,
        &OdsCode::parse("VCS01").unwrap(),
    );
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(
        rows[1].contains(&PRESCRIPTION.to_string()) && rows[1].contains(&REFERRAL.to_string()),
        "{csv}"
    );
    assert!(
        rows[1].contains(",payment,15.00,") || rows[1].contains(",payment,30.00,"),
        "{csv}"
    );
    assert!(rows[2].ends_with(",total,30.00,"), "{csv}");
}

#[test]
fn the_cli_pays_and_prints_remittance() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_followfund"))
            .arg("--database-url")
            .arg(&url)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    run(&[
        "org", "add", "--ods", "ANC01", "--name", "Anchor", "--role", "anchor",
    ]);
    let paid = run(&["pay", "--anchor", "ANC01", "--through", "2026-05-31"]);
    assert!(paid.contains("recorded at position 2: 0 lines"), "{paid}");
    let again = run(&["pay", "--anchor", "ANC01", "--through", "2026-05-31"]);
    assert!(again.contains("already recorded at position 2"), "{again}");
    let run_id = paid.split_whitespace().nth(1).unwrap();
    let csv = run(&["remittance", "--run", run_id, "--provider", "VCS01"]);
    assert!(csv.starts_with("run_id,anchor,provider,through,"), "{csv}");
    assert!(csv.trim_end().ends_with(",total,0.00,"), "{csv}");
}

/// The walking agreement gives VCS01 five days to answer. P1, issued 1 May at 10:00, is never
/// answered and is declined as of 6 May 10:00; P2 was accepted in time and keeps its place.
async fn an_unanswered_prescription_is_declined_once_when_its_window_closes(db: TestDb) {
    let store = db.open().await;
    terms_and_a_referral(&store).await;
    let answered = Uuid::from_u128(0x0198_b000_0000_7000_8000_0000_0000_0003);
    for prescription in [PRESCRIPTION, answered] {
        let issue = json!({
            "prescription_id": prescription, "referral_id": REFERRAL, "provider": "VCS01",
            "activity_type": "walking", "agreement_id": AGREEMENT,
        });
        record(&store, (5, 1), "prescription.issued", issue).await;
    }
    let accept = json!({"prescription_id": answered});
    record(&store, (5, 3), "prescription.accepted", accept).await;
    let runner = Runner::start(store.clone()).await.unwrap();
    let closes = Utc.with_ymd_and_hms(2026, 5, 6, 10, 0, 0).unwrap();
    let sweep = |now| followfund::responses::decline_unanswered(&store, &runner, now);

    assert_eq!(
        sweep(closes).await.unwrap(),
        Vec::<u64>::new(),
        "still open to an answer"
    );
    let after = closes + chrono::Duration::seconds(1);
    let (one, other) = tokio::join!(sweep(after), sweep(after));
    let mut declined = one.unwrap();
    declined.extend(other.unwrap());
    assert_eq!(
        declined.len(),
        1,
        "two sweeps at once decline it once: {declined:?}"
    );
    let recorded = store.read_all(declined[0], 1).await.unwrap().remove(0);
    assert_eq!(recorded.event_type, "prescription.declined");
    assert!(
        recorded.data.contains("\"no_response\""),
        "{}",
        recorded.data
    );
    assert_eq!(recorded.occurred_at, closes);

    runner
        .wait_for(declined[0], std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert!(sweep(after).await.unwrap().is_empty());
    let models = runner.read();
    let anchor = OdsCode::parse("ANC01").unwrap();
    let year = followfund_contracts::terms::FinancialYear::containing(closes.date_naive());
    let budget = models.ledger.budget_position(&anchor, year);
    // P1's £200.00 commitment is released; P2's stays.
    assert_eq!(budget.committed.to_string(), "£200.00");
    assert_eq!(budget.available.to_string(), "£119800.00");
    let agreement = Uuid::parse_str(AGREEMENT).unwrap();
    assert_eq!(models.ledger.open_under(agreement), 1);
}
