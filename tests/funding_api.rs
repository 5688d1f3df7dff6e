//! Money over GraphQL on both backends: a funded prescription through the API, the anchor's
//! budget position now and as of a past position, a payment run, and a provider's statement
//! with the facts and clauses behind every amount, each seen only by those it concerns.

mod common;

use common::TestDb;
use common::graphql::{Api, register};
use followfund_contracts::Role;
use serde_json::{Value, json};
use uuid::Uuid;

per_backend!(
    money_follows_the_patient_through_the_api,
    a_full_provider_waitlists_and_an_empty_budget_refuses_through_the_api,
);

const TERMS: &str = include_str!("../contracts/rules/examples/walking-group-2026-27.toml");
const AGREEMENT: &str = "0198a000-0000-7000-8000-000000000010";

impl Api {
    async fn record(&self, who: &str, mutation: &str, data: Value, on: &str) -> u64 {
        let query = format!(
            "mutation($d: JSON!, $at: DateTime) {{ {mutation}(data: $d, occurredAt: $at) {{ position }} }}"
        );
        let answer = self.call(who, &query, json!({ "d": data, "at": on })).await;
        answer["data"][mutation]["position"]
            .as_u64()
            .unwrap_or_else(|| panic!("{mutation}: {answer}"))
    }

    /// The budget as of a position, or now: once the read models hold every acknowledged write.
    async fn budget(&self, who: &str, as_of: Option<u64>) -> Value {
        self.settled().await;
        let query = "query($p: Int) { budget(anchor: \"ANC01\", financialYear: \"2026/27\", asOfPosition: $p) { allocated committed accrued paid available } }";
        self.call(who, query, json!({ "p": as_of })).await
    }
}

/// Serves a store with the organisations these tests use and `terms` published; a token each.
async fn serve(db: &TestDb, terms: &str) -> Api {
    let store = db.open().await;
    let tokens = register(
        &store,
        &[
            ("QHM", Role::Commissioner, None),
            ("ANC01", Role::Anchor, Some("QHM")),
            ("VCS01", Role::Provider, Some("ANC01")),
            ("VCS02", Role::Provider, Some("ANC01")),
        ],
    )
    .await;
    followfund::admin::contracts_publish(&store, terms)
        .await
        .unwrap();
    Api::start(store, tokens).await
}

async fn money_follows_the_patient_through_the_api(db: TestDb) {
    let api = serve(&db, TERMS).await;

    let (referral, prescription) = (Uuid::now_v7(), Uuid::now_v7());
    let received = json!({
        "referral_id": referral, "person_id": Uuid::now_v7(), "source": "gp_practice", "referrer": null,
        "link_worker_organisation": "ANC01", "reasons": ["loneliness"], "age_band": "65-74", "conditions": [],
    });
    api.record("ANC01", "referralReceive", received, "2026-05-01T09:00:00Z")
        .await;
    api.record(
        "ANC01",
        "referralAccept",
        json!({"referral_id": referral}),
        "2026-05-01T10:00:00Z",
    )
    .await;
    let issue = json!({
        "prescription_id": prescription, "referral_id": referral, "provider": "VCS01",
        "activity_type": "walking", "agreement_id": AGREEMENT,
    });
    let issued_at = api
        .record("ANC01", "prescriptionIssue", issue, "2026-05-01T11:00:00Z")
        .await;
    api.record(
        "VCS01",
        "prescriptionAccept",
        json!({"prescription_id": prescription}),
        "2026-05-02T09:00:00Z",
    )
    .await;
    for day in ["2026-05-04T10:00:00Z", "2026-05-11T10:00:00Z"] {
        let session = json!({"prescription_id": prescription, "session_id": Uuid::now_v7()});
        api.record("VCS01", "sessionAttend", session, day).await;
    }

    // Committed 200 at issue (the capped maximum); 25 + 15 + 15 earned since.
    let now = api.budget("ANC01", None).await;
    let expected = json!({"allocated": "£120000.00", "committed": "£145.00", "accrued": "£55.00", "paid": "£0.00", "available": "£119800.00"});
    assert_eq!(now["data"]["budget"], expected, "{now}");
    let then = api.budget("ANC01", Some(issued_at)).await;
    assert_eq!(then["data"]["budget"]["committed"], "£200.00", "{then}");
    assert_eq!(then["data"]["budget"]["accrued"], "£0.00", "{then}");
    assert_eq!(
        api.budget("QHM", None).await["data"]["budget"]["accrued"],
        "£55.00",
        "the commissioner above the anchor sees it"
    );
    let refused = api.budget("VCS02", None).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );

    let run = api
        .call("ANC01", "mutation { paymentRunCreate(anchor: \"ANC01\", through: \"2026-05-31\") { runId lines { provider kind amount positions } } }", json!({}))
        .await;
    let lines = &run["data"]["paymentRunCreate"]["lines"];
    assert_eq!(lines.as_array().unwrap().len(), 1, "{run}");
    assert_eq!(
        (lines[0]["provider"].as_str(), lines[0]["amount"].as_str()),
        (Some("VCS01"), Some("£55.00"))
    );
    let not_theirs = api
        .call(
            "VCS01",
            "mutation { paymentRunCreate(anchor: \"ANC01\", through: \"2026-05-31\") { runId } }",
            json!({}),
        )
        .await;
    assert_eq!(
        not_theirs["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{not_theirs}"
    );
    assert_eq!(
        api.budget("ANC01", None).await["data"]["budget"]["paid"],
        "£55.00"
    );

    api.settled().await;
    let statement = api.call("VCS01", "{ providerStatement(provider: \"VCS01\") { earned explain { position rule amount agreementVersion } } }", json!({})).await;
    let line = &statement["data"]["providerStatement"][0];
    assert_eq!(line["earned"], "£55.00", "{statement}");
    let rules: Vec<&str> = line["explain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "commitment",
            "tariff:engagement_fee",
            "tariff:session_fee",
            "tariff:session_fee",
            "payment"
        ],
        "{statement}"
    );
    assert_eq!(line["explain"][1]["agreementVersion"], 1);

    // Explanations asked as plain fields are answered in one pass; with fragments or
    // directives, by the general executor. Both must say the same.
    let explain = |selection: String, fragments: &str| {
        let query = format!(
            "{{ providerStatement(provider: \"VCS01\") {{ explain {{ {selection} }} }} }} {fragments}"
        );
        let api = &api;
        async move {
            let answer = api.call("VCS01", &query, json!({})).await;
            answer["data"]["providerStatement"][0]["explain"].clone()
        }
    };
    let fields = "position eventType rule agreementVersion amount debit credit";
    let plain = explain(fields.into(), "").await;
    assert_eq!(plain.as_array().map(Vec::len), Some(5), "{plain}");
    assert_eq!(plain[1]["amount"], "£25.00", "{plain}");
    assert_eq!(plain[1]["debit"], "payable:ANC01:VCS01:2026/27", "{plain}");
    assert_eq!(plain[4]["agreementVersion"], Value::Null, "{plain}");
    let inline = explain(format!("... on Explanation {{ {fields} }}"), "").await;
    assert_eq!(inline, plain);
    let named = format!("fragment Why on Explanation {{ {fields} }}");
    assert_eq!(explain("...Why".into(), &named).await, plain);
    let included = explain(format!("{fields} debit @include(if: true)"), "").await;
    assert_eq!(included, plain);
    let renamed = explain("at: position position kind: __typename rule".into(), "").await;
    let expected = json!({"at": plain[1]["position"], "position": plain[1]["position"], "kind": "Explanation", "rule": "tariff:engagement_fee"});
    assert_eq!(renamed[1], expected, "{renamed}");
    let skipped = explain("position rule @skip(if: true)".into(), "").await;
    assert_eq!(
        skipped[0],
        json!({"position": plain[0]["position"]}),
        "{skipped}"
    );
    let snooping = api
        .call(
            "VCS02",
            "{ providerStatement(provider: \"VCS01\") { earned } }",
            json!({}),
        )
        .await;
    assert_eq!(
        snooping["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{snooping}"
    );
}

/// £300 for the year; VCS01 takes one person at a time, VCS02 five; both courses cost at most
/// £200 a referral.
const TIGHT_TERMS: &str = r#"
source = "Test terms: a small budget and a provider with one place"

[[budget]]
allocation_id = "0198a000-0000-7000-8000-0000000000a1"
commissioner = "QHM"
anchor = "ANC01"
financial_year = "2026/27"
account = "activities"
amount = "300.00"

[[agreement]]
agreement_id = "0198a000-0000-7000-8000-0000000000b1"
anchor = "ANC01"
provider = "VCS01"
valid_from = "2026-04-01"
valid_to = "2027-03-31"
capacity = 1
response_window_days = 5
activity_types = ["walking"]

[agreement.tariff]
engagement_fee = "25.00"
session_fee = "15.00"
funded_sessions = 10
completion_fee = "50.00"
completion_min_sessions = 8
cap_per_referral = "200.00"

[[agreement]]
agreement_id = "0198a000-0000-7000-8000-0000000000b2"
anchor = "ANC01"
provider = "VCS02"
valid_from = "2026-04-01"
valid_to = "2027-03-31"
capacity = 5
response_window_days = 5
activity_types = ["arts"]

[agreement.tariff]
session_fee = "20.00"
funded_sessions = 10
"#;

impl Api {
    /// Receives and accepts a referral for ANC01 on 1 May 2026.
    async fn accepted_referral(&self) -> Uuid {
        let referral = Uuid::now_v7();
        let received = json!({
            "referral_id": referral, "person_id": Uuid::now_v7(), "source": "gp_practice", "referrer": null,
            "link_worker_organisation": "ANC01", "reasons": ["loneliness"], "age_band": "65-74", "conditions": [],
        });
        self.record("ANC01", "referralReceive", received, "2026-05-01T09:00:00Z")
            .await;
        let accept = json!({"referral_id": referral});
        self.record("ANC01", "referralAccept", accept, "2026-05-01T10:00:00Z")
            .await;
        referral
    }

    /// Asks to issue a prescription; the whole answer, refusals included.
    async fn issue(&self, issue: &Value, waitlist: bool, client_id: Uuid) -> Value {
        let query = "mutation($d: JSON!, $w: Boolean!, $k: UUID) { prescriptionIssue(data: $d, occurredAt: \"2026-05-02T09:00:00Z\", clientId: $k, waitlistIfFull: $w) { position eventType written } }";
        let variables = json!({ "d": issue, "w": waitlist, "k": client_id });
        self.call("ANC01", query, variables).await
    }

    /// The log's head, once the read models have folded it.
    async fn head(&self) -> u64 {
        self.settled().await;
        let answer = self.call("ANC01", "{ position }", json!({})).await;
        answer["data"]["position"]
            .as_u64()
            .unwrap_or_else(|| panic!("{answer}"))
    }
}

fn prescription(referral: Uuid, provider: &str, activity: &str, agreement: &str) -> Value {
    json!({
        "prescription_id": Uuid::now_v7(), "referral_id": referral, "provider": provider,
        "activity_type": activity, "agreement_id": agreement,
    })
}

async fn a_full_provider_waitlists_and_an_empty_budget_refuses_through_the_api(db: TestDb) {
    let api = serve(&db, TIGHT_TERMS).await;
    let walking = "0198a000-0000-7000-8000-0000000000b1";
    let arts = "0198a000-0000-7000-8000-0000000000b2";
    let first = prescription(api.accepted_referral().await, "VCS01", "walking", walking);
    let issued = api.issue(&first, false, Uuid::now_v7()).await;
    assert_eq!(
        issued["data"]["prescriptionIssue"]["eventType"], "prescription.issued",
        "{issued}"
    );

    // VCS01's one place is taken: refused, and nothing is written.
    let second = prescription(api.accepted_referral().await, "VCS01", "walking", walking);
    let before = api.head().await;
    let refused = api.issue(&second, false, Uuid::now_v7()).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "CONFLICT",
        "{refused}"
    );
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "1 open prescriptions and 0 waiting ahead under this agreement, against a capacity of 1"
        ),
        "{message}"
    );
    assert_eq!(api.head().await, before);

    // Asked to wait, it joins the queue; the same request again is the same fact.
    let key = Uuid::now_v7();
    let waiting = api.issue(&second, true, key).await;
    assert_eq!(
        waiting["data"]["prescriptionIssue"]["eventType"], "prescription.waitlisted",
        "{waiting}"
    );
    let again = api.issue(&second, true, key).await;
    assert_eq!(
        again["data"]["prescriptionIssue"]["written"], false,
        "{again}"
    );
    assert_eq!(
        again["data"]["prescriptionIssue"]["position"],
        waiting["data"]["prescriptionIssue"]["position"]
    );
    // Waiting commits nothing: £300 less the first course's £200 maximum.
    assert_eq!(
        api.budget("ANC01", None).await["data"]["budget"]["available"],
        "£100.00"
    );

    // The first place is declined, so the waiting prescription is issued into it.
    let decline = json!({"prescription_id": first["prescription_id"], "reason": "not_suitable"});
    api.record(
        "VCS01",
        "prescriptionDecline",
        decline,
        "2026-05-02T10:00:00Z",
    )
    .await;
    let from_queue = api.issue(&second, false, Uuid::now_v7()).await;
    assert_eq!(
        from_queue["data"]["prescriptionIssue"]["eventType"], "prescription.issued",
        "{from_queue}"
    );

    // The arts course could cost £200 (ten £20 sessions) and £100 is left: short by £100.00.
    let third = prescription(api.accepted_referral().await, "VCS02", "arts", arts);
    let before = api.head().await;
    let short = api.issue(&third, true, Uuid::now_v7()).await;
    let message = short["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{short}"));
    assert!(
        message.contains("could cost up to £200.00") && message.contains("short by £100.00"),
        "{message}"
    );
    assert_eq!(api.head().await, before);
    let budget = api.budget("ANC01", None).await;
    let expected = json!({"allocated": "£300.00", "committed": "£200.00", "accrued": "£0.00", "paid": "£0.00", "available": "£100.00"});
    assert_eq!(budget["data"]["budget"], expected, "{budget}");

    // VCS01's statement has a line for each prescription issued to it, first declined or
    // not; paged one line at a time, it gives the same lines in the same order.
    let statement = |first: Option<u32>, after: Option<String>| {
        let query = "query($f: Int, $a: UUID) { providerStatement(provider: \"VCS01\", first: $f, after: $a) { prescriptionId } }";
        let api = &api;
        async move {
            let answer = api
                .call("VCS01", query, json!({"f": first, "a": after}))
                .await;
            answer["data"]["providerStatement"]
                .as_array()
                .unwrap_or_else(|| panic!("{answer}"))
                .iter()
                .map(|line| line["prescriptionId"].as_str().unwrap().to_owned())
                .collect::<Vec<String>>()
        }
    };
    let whole = statement(None, None).await;
    let mut issued = [
        first["prescription_id"].as_str(),
        second["prescription_id"].as_str(),
    ]
    .map(|id| id.unwrap().to_owned());
    issued.sort();
    assert_eq!(whole, issued);
    let page_one = statement(Some(1), None).await;
    assert_eq!(page_one, whole[..1]);
    let page_two = statement(Some(1), Some(page_one[0].clone())).await;
    assert_eq!(page_two, whole[1..]);
    assert!(
        statement(Some(1), Some(page_two[0].clone()))
            .await
            .is_empty()
    );
}
