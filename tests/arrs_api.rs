//! ARRS end to end on both backends: the 2019/20 rules published from their file, a PCN and its
//! link workers recorded through GraphQL by the organisations allowed to, a month's figures
//! worked by hand, a claim and its payment, summaries for the ICB, the CSV from the command line,
//! and the refusals: a Welsh PCN, an unpublished year, another ICB, another PCN.

mod common;

use common::TestDb;
use common::graphql::{Api, register};
use followfund_contracts::Role;
use serde_json::{Value, json};
use uuid::Uuid;

per_backend!(a_pcn_claims_its_link_workers_under_the_2019_rules);

const RULES_2019: &str = include_str!("../contracts/rules/arrs/2019-20.toml");

/// Records an ARRS fact; the whole answer, refusals included.
async fn record(api: &Api, who: &str, event_type: &str, data: Value) -> Value {
    let query =
        "mutation($t: String!, $d: JSON!) { arrsRecord(eventType: $t, data: $d) { position } }";
    api.call(who, query, json!({ "t": event_type, "d": data }))
        .await
}

/// Records an ARRS fact that must be accepted.
async fn recorded(api: &Api, who: &str, event_type: &str, data: Value) {
    let answer = record(api, who, event_type, data).await;
    assert!(
        answer["data"]["arrsRecord"]["position"].is_u64(),
        "{event_type}: {answer}"
    );
}

fn code_of(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a refusal: {answer}"))
}

fn message_of(answer: &Value) -> &str {
    answer["errors"][0]["message"].as_str().unwrap()
}

fn registration(pcn: &str, icb: &str, nation: &str) -> Value {
    json!({
        "pcn": pcn, "name": format!("{pcn} network"), "icb": icb,
        "member_practices": ["A81001", "A81002"], "nation": nation,
    })
}

async fn serve(db: &TestDb) -> Api {
    let store = db.open().await;
    let tokens = register(
        &store,
        &[
            ("QHM", Role::Commissioner, None),
            ("QWE", Role::Commissioner, None),
            ("U12345", Role::Pcn, None),
            ("U99999", Role::Pcn, None),
            ("INV01", Role::Investor, None),
        ],
    )
    .await;
    followfund::admin::contracts_publish(&store, RULES_2019)
        .await
        .unwrap();
    Api::start(store, tokens).await
}

/// August 2019 (31 days of 366) for a PCN of 50,000 people, entitled to 1 WTE:
/// - a full-time PCN employee costing £2,500.00: maximum £34,113 × 31 ÷ 366 = £2,889.35, so
///   £2,500.00 is claimable;
/// - 0.6 WTE supplied by VCS01 from 16 August, £700.00 paid: maximum £34,113 × 0.6 × 16 ÷ 366 =
///   £894.77, contribution £2,400 × 0.6 × 16 ÷ 366 = £62.95, so £762.95;
/// - together £3,262.95 against the month's limit of £2,889.35: £373.60 is cut.
async fn a_pcn_claims_its_link_workers_under_the_2019_rules(db: TestDb) {
    let api = serve(&db).await;
    let welsh = record(
        &api,
        "QHM",
        "pcn.registered",
        registration("U22222", "QHM", "wales"),
    )
    .await;
    assert_eq!(code_of(&welsh), "BAD_INPUT");
    assert!(message_of(&welsh).contains("ARRS is English"), "{welsh}");
    let not_its_icb = record(
        &api,
        "QWE",
        "pcn.registered",
        registration("U12345", "QHM", "england"),
    )
    .await;
    assert_eq!(code_of(&not_its_icb), "FORBIDDEN", "{not_its_icb}");
    recorded(
        &api,
        "QHM",
        "pcn.registered",
        registration("U12345", "QHM", "england"),
    )
    .await;
    recorded(
        &api,
        "QWE",
        "pcn.registered",
        registration("U99999", "QWE", "england"),
    )
    .await;
    let population = json!({"pcn": "U12345", "on": "2019-04-01", "raw_list_size": 50000, "weighted_list_size": "48120.5"});
    recorded(&api, "QHM", "pcn.population_recorded", population).await;

    let (employee, supplied) = (Uuid::now_v7(), Uuid::now_v7());
    recorded(
        &api,
        "U12345",
        "link_worker.employed",
        json!({
            "link_worker_id": employee, "pcn": "U12345", "employer": {"kind": "pcn"}, "wte": "1",
            "start_date": "2019-07-01", "monthly_salary": "2083.33", "monthly_on_costs": "416.67",
        }),
    )
    .await;
    let theirs = record(
        &api,
        "U99999",
        "link_worker.cost_paid",
        json!({
            "link_worker_id": employee, "month": "2019-08", "amount": "1.00",
        }),
    )
    .await;
    assert_eq!(code_of(&theirs), "FORBIDDEN", "{theirs}");
    recorded(&api, "U12345", "link_worker.employed", json!({
        "link_worker_id": supplied, "pcn": "U12345", "employer": {"kind": "vcse_supplier", "supplier": "VCS01"},
        "wte": "0.6", "start_date": "2019-08-16", "monthly_salary": "1250.00", "monthly_on_costs": "0.00",
    })).await;
    for (worker, amount) in [(employee, "2500.00"), (supplied, "700.00")] {
        let cost = json!({"link_worker_id": worker, "month": "2019-08", "amount": amount});
        recorded(&api, "U12345", "link_worker.cost_paid", cost).await;
    }

    // The supplied worker leaves at the end of August, so no later month earns a contribution.
    let left = json!({"link_worker_id": supplied, "last_day": "2019-08-31"});
    recorded(&api, "U12345", "link_worker.left", left).await;

    let query = "query($p: String!, $m: String!) { arrsMonth(pcn: $p, month: $m) { label entitledWte limit linkWorkersClaimable cutByEntitlement claimable claimed paid csv linkWorkers { linkWorkerId supplier daysInPost maximum supplierContribution actualCost claimable explain { rule detail } } } }";
    api.settled().await;
    let august = api
        .call("U12345", query, json!({"p": "U12345", "m": "2019-08"}))
        .await;
    let month = &august["data"]["arrsMonth"];
    assert_eq!(month["label"], "M05", "{august}");
    assert_eq!(month["entitledWte"], 1);
    assert_eq!(
        [
            &month["limit"],
            &month["linkWorkersClaimable"],
            &month["cutByEntitlement"],
            &month["claimable"]
        ],
        ["£2889.35", "£3262.95", "£373.60", "£2889.35"]
    );
    let lines = month["linkWorkers"].as_array().unwrap();
    assert_eq!(lines[0]["claimable"], "£2500.00");
    assert_eq!(lines[0]["maximum"], "£2889.35");
    assert_eq!(lines[1]["daysInPost"], 16);
    assert_eq!(
        [
            &lines[1]["maximum"],
            &lines[1]["supplierContribution"],
            &lines[1]["claimable"]
        ],
        ["£894.77", "£62.95", "£762.95"]
    );
    assert_eq!(lines[1]["supplier"], "VCS01");
    assert!(
        month["csv"]
            .as_str()
            .unwrap()
            .contains("U12345,2019-08,M05,total,,,,,,,2889.35,373.60"),
        "{}",
        month["csv"]
    );

    let snooping = api
        .call("U99999", query, json!({"p": "U12345", "m": "2019-08"}))
        .await;
    assert_eq!(code_of(&snooping), "FORBIDDEN");

    let claim = Uuid::now_v7();
    let unpublished = record(
        &api,
        "U12345",
        "arrs.claim_submitted",
        json!({
            "claim_id": claim, "pcn": "U12345", "month": "2021-05", "amount": "100.00",
        }),
    )
    .await;
    assert_eq!(code_of(&unpublished), "BAD_INPUT");
    assert!(
        message_of(&unpublished).contains("no ARRS rules are published for 2021/22"),
        "{unpublished}"
    );
    recorded(
        &api,
        "U12345",
        "arrs.claim_submitted",
        json!({
            "claim_id": claim, "pcn": "U12345", "month": "2019-08", "amount": "2889.35",
        }),
    )
    .await;
    let overpaid = record(
        &api,
        "QHM",
        "arrs.claim_paid",
        json!({
            "claim_id": claim, "pcn": "U12345", "amount": "3000.00", "paid_on": "2019-09-30",
        }),
    )
    .await;
    assert_eq!(code_of(&overpaid), "CONFLICT", "{overpaid}");
    recorded(
        &api,
        "QHM",
        "arrs.claim_paid",
        json!({
            "claim_id": claim, "pcn": "U12345", "amount": "2889.35", "paid_on": "2019-09-30",
        }),
    )
    .await;

    let summary = "query($i: String) { arrsSummary(financialYear: \"2019/20\", icb: $i) { totals { claimable claimed paid cutByEntitlement lapsed } pcns { pcn } } }";
    api.settled().await;
    let icb = api.call("QHM", summary, json!({"i": "QHM"})).await;
    let totals = &icb["data"]["arrsSummary"]["totals"];
    // The year ended on 31 March 2020: what the 1 WTE entitlement left undrawn has lapsed.
    // The monthly limits from July, each £34,113 × days ÷ 366 rounded, add to £25,631.34 (one
    // sum over the 275 days would give £25,631.35); £2,889.35 was drawn.
    assert_eq!(
        [
            &totals["claimable"],
            &totals["claimed"],
            &totals["paid"],
            &totals["cutByEntitlement"],
            &totals["lapsed"]
        ],
        ["£2889.35", "£2889.35", "£2889.35", "£373.60", "£22741.99"],
        "{icb}"
    );
    assert_eq!(
        icb["data"]["arrsSummary"]["pcns"],
        json!([{"pcn": "U12345"}])
    );
    let national = api.call("QWE", summary, json!({"i": null})).await;
    assert_eq!(
        national["data"]["arrsSummary"]["pcns"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{national}"
    );
    let other_icb = api.call("QWE", summary, json!({"i": "QHM"})).await;
    assert_eq!(code_of(&other_icb), "FORBIDDEN");
    let investor = api.call("INV01", summary, json!({"i": null})).await;
    assert_eq!(code_of(&investor), "FORBIDDEN");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_followfund"))
        .args([
            "--database-url",
            &db.url,
            "arrs",
            "claim",
            "--pcn",
            "U12345",
            "--month",
            "2019-08",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let csv = String::from_utf8(output.stdout).unwrap();
    let expected_rows = [
        "pcn,month,label,line,link_worker_id,supplier,days_in_post,maximum,supplier_contribution,actual_cost,claimable,cut".to_string(),
        format!("U12345,2019-08,M05,link_worker,{employee},,31,2889.35,0.00,2500.00,2500.00,0.00"),
        format!("U12345,2019-08,M05,link_worker,{supplied},VCS01,16,894.77,62.95,700.00,762.95,0.00"),
        "U12345,2019-08,M05,limit,,,,2889.35,,,,".to_string(),
        "U12345,2019-08,M05,total,,,,,,,2889.35,373.60".to_string(),
    ];
    assert_eq!(csv.lines().collect::<Vec<_>>(), expected_rows);
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_followfund"))
        .args([
            "--database-url",
            &db.url,
            "arrs",
            "claim",
            "--pcn",
            "U12345",
            "--month",
            "2021-05",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("no ARRS rules are published for 2021/22")
    );
}
