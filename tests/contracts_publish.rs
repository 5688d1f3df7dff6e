//! Publishing funding terms from TOML on both backends: all of a file or none of it, refusals
//! naming the line and field, and the same file published twice written once.

mod common;

use common::TestDb;
use followfund::admin::{self, PublishError};
use followfund::store::Store;
use followfund_contracts::{Event, Nation, Role};

per_backend!(
    a_terms_file_is_published_whole_and_once,
    an_unregistered_party_is_refused_by_line_and_field,
    amendments_follow_published_versions,
    published_terms_are_not_rewritten,
    an_arrs_revision_follows_its_year_and_may_be_backdated,
);

const EXAMPLE: &str = include_str!("../contracts/rules/examples/walking-group-2026-27.toml");

async fn registered(db: &TestDb) -> Store {
    let store = db.open().await;
    for (code, role) in [
        ("QHM", Role::Commissioner),
        ("ANC01", Role::Anchor),
        ("VCS01", Role::Provider),
    ] {
        admin::organisation_add(&store, code, code, role, Nation::England, None)
            .await
            .unwrap();
    }
    store
}

async fn a_terms_file_is_published_whole_and_once(db: TestDb) {
    let store = registered(&db).await;
    let first = admin::contracts_publish(&store, EXAMPLE).await.unwrap();
    assert_eq!(first.positions, vec![4, 5, 6, 7, 8, 9]);
    assert!(first.written);
    let again = admin::contracts_publish(&store, EXAMPLE).await.unwrap();
    assert_eq!(again.positions, first.positions);
    assert!(!again.written);
    assert_eq!(store.stats().await.unwrap().events, 9);
    let agreement = store
        .read_stream("agreement-0198a000-0000-7000-8000-000000000010", 1)
        .await
        .unwrap();
    let versions: Vec<_> = agreement
        .iter()
        .map(|e| (e.stream_version, e.event_type.as_str()))
        .collect();
    assert_eq!(
        versions,
        vec![(1, "agreement.signed"), (2, "agreement.amended")]
    );
    match agreement[1].decode().unwrap() {
        Event::AgreementAmended(amendment) => {
            assert_eq!(amendment.tariff.session_fee.unwrap().to_string(), "£17.50")
        }
        other => panic!("expected the amendment, got {other:?}"),
    }
    // Valid time is when the term takes effect: the amendment from 1 October 2026.
    assert_eq!(
        agreement[1].occurred_at.to_rfc3339(),
        "2026-10-01T00:00:00+00:00"
    );
}

async fn an_unregistered_party_is_refused_by_line_and_field(db: TestDb) {
    let store = db.open().await;
    admin::organisation_add(
        &store,
        "QHM",
        "QHM",
        Role::Commissioner,
        Nation::England,
        None,
    )
    .await
    .unwrap();
    admin::organisation_add(
        &store,
        "ANC01",
        "ANC01",
        Role::Anchor,
        Nation::England,
        None,
    )
    .await
    .unwrap();
    let error = admin::contracts_publish(&store, EXAMPLE).await.unwrap_err();
    let PublishError::Organisation {
        line,
        field,
        message,
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(*line, line_of(EXAMPLE, "[[agreement]]"));
    assert_eq!(*field, "provider");
    assert!(message.contains("VCS01 is not registered"), "{message}");
    assert_eq!(
        store.stats().await.unwrap().events,
        2,
        "nothing of the file is written"
    );
}

async fn amendments_follow_published_versions(db: TestDb) {
    let store = registered(&db).await;
    let (agreements_only, amendment) = EXAMPLE.split_at(EXAMPLE.find("# From October").unwrap());
    let (amendment, _grant) = amendment.split_at(amendment.find("# A small grant").unwrap());
    admin::contracts_publish(&store, agreements_only)
        .await
        .unwrap();
    let skipping = format!(
        "source = \"a later decision\"\n{}",
        amendment.replacen("version = 2", "version = 3", 1)
    );
    let error = admin::contracts_publish(&store, &skipping)
        .await
        .unwrap_err();
    let PublishError::Sequence { line, message } = &error else {
        panic!("{error}")
    };
    assert_eq!(
        *line, 3,
        "the amendment's [[amendment]] header, after the source and a comment"
    );
    assert!(message.contains("version 1"), "{message}");
    assert_eq!(
        store.stats().await.unwrap().events,
        7,
        "nothing of the file is written"
    );
    let next = format!("source = \"a later decision\"\n{amendment}");
    assert_eq!(
        admin::contracts_publish(&store, &next)
            .await
            .unwrap()
            .positions,
        vec![8]
    );
}

async fn published_terms_are_not_rewritten(db: TestDb) {
    let store = registered(&db).await;
    admin::contracts_publish(&store, EXAMPLE).await.unwrap();
    let changed = EXAMPLE.replacen("session_fee = \"17.50\"", "session_fee = \"19.00\"", 1);
    let error = admin::contracts_publish(&store, &changed)
        .await
        .unwrap_err();
    let PublishError::Sequence { line, message } = &error else {
        panic!("{error}")
    };
    assert_eq!(*line, line_of(EXAMPLE, "[[amendment]]"));
    assert!(
        message.contains("publish an amendment instead"),
        "{message}"
    );
    // A grown file appends only what is new.
    let grown = format!(
        "{EXAMPLE}\n[[amendment]]\nagreement_id = \"0198a000-0000-7000-8000-000000000010\"\nversion = 3\n\
         effective_from = \"2027-01-01\"\ncapacity = 16\n\n[amendment.tariff]\nsession_fee = \"18.00\"\nfunded_sessions = 10\n"
    );
    let published = admin::contracts_publish(&store, &grown).await.unwrap();
    assert_eq!(published.positions, vec![4, 5, 6, 7, 8, 10, 9]);
    assert_eq!(store.stats().await.unwrap().events, 10);
}

fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

#[test]
fn the_cli_publishes_and_refuses_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_followfund"))
            .arg("--database-url")
            .arg(&url)
            .args(args)
            .output()
            .unwrap()
    };
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contracts/rules/examples/walking-group-2026-27.toml"
    );
    let refused = run(&["contracts", "publish", example]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 7: commissioner: QHM is not registered"),
        "{stderr}"
    );
    for (code, role) in [
        ("QHM", "commissioner"),
        ("ANC01", "anchor"),
        ("VCS01", "provider"),
    ] {
        assert!(
            run(&["org", "add", "--ods", code, "--name", code, "--role", role])
                .status
                .success()
        );
    }
    let published = run(&["contracts", "publish", example]);
    assert!(published.status.success());
    assert!(String::from_utf8_lossy(&published.stdout).contains("published 6 events"));
}

/// A revision of 2020/21's rules in the shape an administrator would write it; £36,000 is a
/// figure made up for the test.
fn revision(version: u32, effective_from: &str) -> String {
    format!(
        r#"source = "test revision"

[[arrs_rules]]
financial_year = "2020/21"
version = {version}
effective_from = "{effective_from}"
source = "test revision"
link_worker_maximum_per_wte = "36000.00"
supplier_contribution_per_wte = "2400.00"

[arrs_rules.entitlement]
kind = "combined_sum"
rate_per_weighted_patient = "7.131"
"#
    )
}

async fn an_arrs_revision_follows_its_year_and_may_be_backdated(db: TestDb) {
    let store = registered(&db).await;
    let year = include_str!("../contracts/rules/arrs/2020-21.toml");
    admin::contracts_publish(&store, year).await.unwrap();
    let skipped = admin::contracts_publish(&store, &revision(3, "2020-10-01")).await;
    assert!(
        matches!(&skipped, Err(PublishError::Sequence { line: 3, message }) if message.contains("arrs-rules-2020-21 is at version 1")),
        "{skipped:?}"
    );
    let outside = admin::contracts_publish(&store, &revision(2, "2021-04-01")).await;
    let Err(PublishError::Terms(refused)) = outside else {
        panic!("expected a refusal by field, got {outside:?}");
    };
    assert_eq!(
        (refused.line, refused.field.as_str()),
        (3, "effective_from")
    );
    // Backdated to the year's first day and published today.
    let published = admin::contracts_publish(&store, &revision(2, "2020-04-01"))
        .await
        .unwrap();
    assert!(published.written);
    let versions = store.read_stream("arrs-rules-2020-21", 1).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].stream_version, 2);
    assert!(
        versions[1].occurred_at.date_naive() > chrono::NaiveDate::from_ymd_opt(2020, 4, 1).unwrap()
    );
}
