//! Social impact bonds end to end on both backends: the rate-card contract published from its
//! file, a person's outcomes claimed by the provider and signed off by the verifier, the payers'
//! split, a payment and the investors' position; and an investor reaching no person-level data by
//! any query.

mod common;

use common::TestDb;
use common::graphql::{Api, register};
use followfund_contracts::Role;
use serde_json::{Value, json};
use uuid::Uuid;

per_backend!(outcomes_are_claimed_verified_split_and_paid_and_investors_see_no_person);

const RATE_CARD: &str = include_str!("../contracts/rules/sib/rate-card-example.toml");
const CONTRACT: &str = "0198c000-0000-7000-8000-000000000002";

async fn serve(db: &TestDb) -> Api {
    let store = db.open().await;
    let tokens = register(
        &store,
        &[
            ("QHM", Role::Commissioner, None),
            ("ANC01", Role::Anchor, Some("QHM")),
            ("VER01", Role::Verifier, None),
            ("INV01", Role::Investor, None),
            ("INV02", Role::Investor, None),
        ],
    )
    .await;
    followfund::admin::contracts_publish(&store, RATE_CARD)
        .await
        .unwrap();
    Api::start(store, tokens).await
}

/// Records a pathway event through its mutation; its position.
async fn pathway(api: &Api, mutation: &str, data: Value, on: &str) -> u64 {
    let query = format!(
        "mutation($d: JSON!, $at: DateTime) {{ {mutation}(data: $d, occurredAt: $at) {{ position }} }}"
    );
    let answer = api
        .call("ANC01", &query, json!({ "d": data, "at": on }))
        .await;
    answer["data"][mutation]["position"]
        .as_u64()
        .unwrap_or_else(|| panic!("{mutation}: {answer}"))
}

/// Records a SIB fact; the whole answer.
async fn sib(api: &Api, who: &str, event_type: &str, data: Value) -> Value {
    let query =
        "mutation($t: String!, $d: JSON!) { sibRecord(eventType: $t, data: $d) { position } }";
    api.call(who, query, json!({ "t": event_type, "d": data }))
        .await
}

fn code_of(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a refusal: {answer}"))
}

fn accepted(answer: &Value) {
    assert!(answer["data"]["sibRecord"]["position"].is_u64(), "{answer}");
}

/// A person referred on 1 May 2026 at 40-54 with two conditions, assessed, WEMWBS 40 at baseline
/// on 2 May and 46 on 2 November (inside 6 months ± 30 days).
async fn a_person_with_outcomes(api: &Api, age_band: &str) -> Uuid {
    let referral = Uuid::now_v7();
    let received = json!({
        "referral_id": referral, "person_id": Uuid::now_v7(), "source": "gp_practice", "referrer": null,
        "link_worker_organisation": "ANC01", "reasons": ["loneliness"], "age_band": age_band,
        "conditions": ["diabetes", "copd"],
    });
    pathway(api, "referralReceive", received, "2026-05-01T09:00:00Z").await;
    let id = json!({"referral_id": referral});
    pathway(api, "referralAccept", id.clone(), "2026-05-01T10:00:00Z").await;
    let assessed = json!({"referral_id": referral, "duration_minutes": 45});
    pathway(api, "assessmentHold", assessed, "2026-05-02T09:00:00Z").await;
    for (stage, items, on) in [
        (
            "baseline",
            vec![3u8, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2],
            "2026-05-02T10:00:00Z",
        ),
        (
            "follow_up",
            vec![4u8, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 2, 2],
            "2026-11-02T10:00:00Z",
        ),
    ] {
        let measure = json!({"referral_id": referral, "instrument": "wemwbs", "stage": stage, "item_scores": items});
        pathway(api, "outcomeMeasure", measure, on).await;
    }
    referral
}

fn claim(claim_id: Uuid, outcome: &str, referral: Uuid, amount: &str) -> Value {
    json!({
        "claim_id": claim_id, "contract_id": CONTRACT, "outcome_id": outcome,
        "referral_id": referral, "period": "2026-11", "amount": amount,
    })
}

/// Claims of £120.00 (assessment) and £250.00 (WEMWBS +6 at six months) split 75/25: QHM owes
/// £90.00 + £187.50 = £277.50 and ANC01 £30.00 + £62.50 = £92.50.
async fn outcomes_are_claimed_verified_split_and_paid_and_investors_see_no_person(db: TestDb) {
    let api = serve(&db).await;
    let person = a_person_with_outcomes(&api, "40-54").await;
    let child = a_person_with_outcomes(&api, "under_18").await;

    let (assessment, wemwbs) = (Uuid::now_v7(), Uuid::now_v7());
    let not_provider = sib(
        &api,
        "QHM",
        "sib_outcome.claimed",
        claim(assessment, "initial_assessment", person, "120.00"),
    )
    .await;
    assert_eq!(code_of(&not_provider), "FORBIDDEN", "{not_provider}");
    let wrong_price = sib(
        &api,
        "ANC01",
        "sib_outcome.claimed",
        claim(wemwbs, "wemwbs_6_months", person, "300.00"),
    )
    .await;
    assert_eq!(code_of(&wrong_price), "BAD_INPUT");
    assert!(
        wrong_price["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("its price is £250.00"),
        "{wrong_price}"
    );
    let ineligible = sib(
        &api,
        "ANC01",
        "sib_outcome.claimed",
        claim(Uuid::now_v7(), "initial_assessment", child, "120.00"),
    )
    .await;
    assert!(
        ineligible["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not in the contract's cohort"),
        "{ineligible}"
    );
    let not_yet = sib(
        &api,
        "ANC01",
        "sib_outcome.claimed",
        claim(Uuid::now_v7(), "wemwbs_12_months", person, "250.00"),
    )
    .await;
    assert!(
        not_yet["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("pending"),
        "{not_yet}"
    );
    accepted(
        &sib(
            &api,
            "ANC01",
            "sib_outcome.claimed",
            claim(assessment, "initial_assessment", person, "120.00"),
        )
        .await,
    );
    accepted(
        &sib(
            &api,
            "ANC01",
            "sib_outcome.claimed",
            claim(wemwbs, "wemwbs_6_months", person, "250.00"),
        )
        .await,
    );
    let twice = sib(
        &api,
        "ANC01",
        "sib_outcome.claimed",
        claim(Uuid::now_v7(), "wemwbs_6_months", person, "250.00"),
    )
    .await;
    assert!(
        twice["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already claimed"),
        "{twice}"
    );

    let status = "query($c: UUID!) { sibContract(contractId: $c) { cohortPeople due paid claims { outcomeId claimed } byPayerPeriod { payer period due paid } investors { investor capital received } } }";
    let contract = json!({"c": CONTRACT});
    api.settled().await;
    let before = api.call("INV01", status, contract.clone()).await;
    assert_eq!(
        before["data"]["sibContract"]["due"], "£0.00",
        "nothing is due before sign-off: {before}"
    );
    let by_investor = sib(
        &api,
        "INV01",
        "sib_outcome.verified",
        json!({"claim_id": assessment, "contract_id": CONTRACT}),
    )
    .await;
    assert_eq!(code_of(&by_investor), "FORBIDDEN");
    for claim_id in [assessment, wemwbs] {
        accepted(
            &sib(
                &api,
                "VER01",
                "sib_outcome.verified",
                json!({"claim_id": claim_id, "contract_id": CONTRACT}),
            )
            .await,
        );
    }
    let again = sib(
        &api,
        "VER01",
        "sib_outcome.verified",
        json!({"claim_id": wemwbs, "contract_id": CONTRACT}),
    )
    .await;
    assert_eq!(code_of(&again), "CONFLICT");
    let payment =
        json!({"contract_id": CONTRACT, "payer": "QHM", "period": "2026-11", "amount": "277.50"});
    accepted(&sib(&api, "QHM", "sib_payment.made", payment).await);

    api.settled().await;
    let after = api.call("INV01", status, contract.clone()).await;
    let view = &after["data"]["sibContract"];
    assert_eq!(
        (view["due"].as_str(), view["paid"].as_str()),
        (Some("£370.00"), Some("£277.50")),
        "{after}"
    );
    assert_eq!(
        view["byPayerPeriod"],
        json!([
            {"payer": "ANC01", "period": "2026-11", "due": "£92.50", "paid": "£0.00"},
            {"payer": "QHM", "period": "2026-11", "due": "£277.50", "paid": "£277.50"},
        ])
    );
    assert_eq!(
        view["investors"],
        json!([{"investor": "INV01", "capital": "£30000.00", "received": "£277.50"}])
    );
    // One eligible person and one claim of each: counts under five are suppressed.
    assert_eq!(view["cohortPeople"], Value::Null);
    assert_eq!(
        view["claims"][0],
        json!({"outcomeId": "initial_assessment", "claimed": null})
    );

    let stranger = api.call("INV02", status, contract.clone()).await;
    assert_eq!(code_of(&stranger), "FORBIDDEN");
    let people = "query($c: UUID!) { sibPeople(contractId: $c) { referralId outcomes { outcomeId status } } }";
    let verifier = api.call("VER01", people, contract.clone()).await;
    let statuses = &verifier["data"]["sibPeople"][0];
    assert_eq!(statuses["referralId"], person.to_string(), "{verifier}");
    assert_eq!(
        statuses["outcomes"][0],
        json!({"outcomeId": "initial_assessment", "status": "met"})
    );
    assert_eq!(
        verifier["data"]["sibPeople"].as_array().unwrap().len(),
        1,
        "the under-18 is not in the cohort"
    );

    // An investor reaches no person by any query.
    let person_level = [
        (
            "query($c: UUID!) { sibPeople(contractId: $c) { referralId } }",
            contract.clone(),
        ),
        (
            "query($id: UUID!) { referral(id: $id) { status } }",
            json!({"id": person}),
        ),
        ("{ referrals { referralId } }", json!({})),
        (
            "{ events(first: 10) { edges { node { position } } } }",
            json!({}),
        ),
        (
            "query($s: String!) { stream(name: $s) { position } }",
            json!({"s": format!("referral-{person}")}),
        ),
        (
            "query($s: String!) { stream(name: $s) { position } }",
            json!({"s": format!("sib-{CONTRACT}")}),
        ),
    ];
    for (query, variables) in person_level {
        let answer = api.call("INV01", query, variables).await;
        assert_eq!(code_of(&answer), "FORBIDDEN", "{query}: {answer}");
        assert_eq!(answer["data"], Value::Null, "{query}: {answer}");
    }
}
