//! A demonstration data set: a commissioner, anchors, providers, PCNs and a few hundred
//! referrals at every stage of the pathway, generated the same way for the same seed.

use chrono::{DateTime, Duration, TimeZone, Utc};
use followfund_contracts::{Nation, Role};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin::{self, AdminError};
use crate::store::{Actor, NewEvent, Store, StoreError};

/// Referrals in the demonstration set.
pub const DEMO_REFERRALS: u64 = 300;

/// The organisations of the demonstration set: code, name, role, parent.
const ORGANISATIONS: &[(&str, &str, Role, Option<&str>)] = &[
    (
        "QHM",
        "North East and North Cumbria ICB",
        Role::Commissioner,
        None,
    ),
    (
        "ANC01",
        "Tyneside Community Anchor",
        Role::Anchor,
        Some("QHM"),
    ),
    (
        "ANC02",
        "Wearside Wellbeing Anchor",
        Role::Anchor,
        Some("QHM"),
    ),
    (
        "VCS01",
        "Riverside Walking Group",
        Role::Provider,
        Some("ANC01"),
    ),
    (
        "VCS02",
        "Allotment Growers Collective",
        Role::Provider,
        Some("ANC01"),
    ),
    (
        "VCS03",
        "Citizens Money Advice",
        Role::Provider,
        Some("ANC02"),
    ),
    ("VCS04", "Open Door Arts", Role::Provider, Some("ANC02")),
    ("U12345", "Central Newcastle PCN", Role::Pcn, Some("QHM")),
    ("U23456", "Sunderland East PCN", Role::Pcn, Some("QHM")),
    ("INV01", "Outcomes Investment Fund", Role::Investor, None),
    ("AUD01", "Ledger Audit Office", Role::Auditor, None),
    (
        "VER01",
        "Independent Outcomes Verification",
        Role::Verifier,
        None,
    ),
    ("ADM01", "Followfund Administration", Role::Admin, None),
];

/// The demonstration area's funding terms: a budget for each anchor and an agreement with each
/// provider for the one activity it runs. The amounts are made up: the seeds give no prices.
const DEMO_TERMS: &str = r#"
source = "Demonstration terms for a made-up area, financial year 2026/27"

[[budget]]
allocation_id = "0198c000-0000-7000-8000-000000000001"
commissioner = "QHM"
anchor = "ANC01"
financial_year = "2026/27"
account = "activities"
amount = "60000.00"

[[budget]]
allocation_id = "0198c000-0000-7000-8000-000000000002"
commissioner = "QHM"
anchor = "ANC02"
financial_year = "2026/27"
account = "activities"
amount = "40000.00"

[[agreement]]
agreement_id = "0198c000-0000-7000-8000-000000000011"
anchor = "ANC01"
provider = "VCS01"
valid_from = "2026-04-01"
valid_to = "2027-03-31"
capacity = 200
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
agreement_id = "0198c000-0000-7000-8000-000000000012"
anchor = "ANC01"
provider = "VCS02"
valid_from = "2026-04-01"
valid_to = "2027-03-31"
capacity = 200
response_window_days = 5
activity_types = ["gardening"]
[agreement.tariff]
session_fee = "12.00"
funded_sessions = 12

[[agreement]]
agreement_id = "0198c000-0000-7000-8000-000000000013"
anchor = "ANC02"
provider = "VCS03"
valid_from = "2026-04-01"
valid_to = "2027-03-31"
capacity = 200
response_window_days = 3
activity_types = ["debt_advice"]
[agreement.tariff]
engagement_fee = "40.00"
session_fee = "30.00"
funded_sessions = 4

[[agreement]]
agreement_id = "0198c000-0000-7000-8000-000000000014"
anchor = "ANC02"
provider = "VCS04"
valid_from = "2026-04-01"
valid_to = "2027-03-31"
capacity = 200
response_window_days = 5
activity_types = ["arts"]
[agreement.tariff]
engagement_fee = "20.00"
session_fee = "12.00"
funded_sessions = 8
completion_fee = "30.00"
completion_min_sessions = 6
cap_per_referral = "140.00"
"#;

/// Each demonstration provider's activity and agreement.
const PROVIDER_TERMS: &[(&str, &str, &str)] = &[
    ("VCS01", "walking", "0198c000-0000-7000-8000-000000000011"),
    ("VCS02", "gardening", "0198c000-0000-7000-8000-000000000012"),
    (
        "VCS03",
        "debt_advice",
        "0198c000-0000-7000-8000-000000000013",
    ),
    ("VCS04", "arts", "0198c000-0000-7000-8000-000000000014"),
];

/// Loads the set into an empty log; does nothing to a log that already holds events.
pub async fn load(store: &Store, seed: u64) -> Result<bool, AdminError> {
    if store.head_position() > 0 {
        return Ok(false);
    }
    for (code, name, role, parent) in ORGANISATIONS {
        admin::organisation_add(store, code, name, *role, Nation::England, *parent).await?;
    }
    publish(store, DEMO_TERMS).await?;
    let mut random = Lcg(seed);
    for index in 0..DEMO_REFERRALS {
        let events = journey(&mut random, seed, index)?;
        store.append(events, vec![]).await?;
    }
    for rules in ARRS_RULES {
        publish(store, rules).await?;
    }
    store.append(arrs_history(seed), vec![]).await?;
    publish(store, RATE_CARD).await?;
    Ok(true)
}

/// Publishes terms the repository ships, which are valid by construction.
async fn publish(store: &Store, terms: &str) -> Result<(), AdminError> {
    match admin::contracts_publish(store, terms).await {
        Ok(_) => Ok(()),
        Err(admin::PublishError::Admin(error)) => Err(error),
        Err(other) => panic!("the shipped terms are valid: {other}"),
    }
}

/// The rate-card outcome contract over ANC01's referrals, paid by QHM and ANC01.
const RATE_CARD: &str = include_str!("../contracts/rules/sib/rate-card-example.toml");

/// The ARRS rules files the repository ships.
const ARRS_RULES: [&str; 3] = [
    include_str!("../contracts/rules/arrs/2019-20.toml"),
    include_str!("../contracts/rules/arrs/2020-21.toml"),
    include_str!("../contracts/rules/arrs/2022-23.toml"),
];

/// Two PCNs under QHM from July 2019 to March 2021: Central Newcastle (62,000 people, 1 WTE in
/// 2019/20) with a full-time link worker whose first three months are claimed and paid, and
/// Sunderland East (115,000, 2 WTE) with a full-time worker and a 0.6 WTE worker supplied by a
/// VCSE, costing more than its entitlement allows in some months.
fn arrs_history(seed: u64) -> Vec<NewEvent> {
    let mut events = Vec::new();
    let mut add = |pcn: &str, organisation: &str, event_type: &str, data: Value, at: &str| {
        let actor = Actor {
            organisation: organisation.into(),
            role: if organisation == "QHM" {
                "commissioner"
            } else {
                "pcn"
            }
            .into(),
            user: None,
        };
        let at = format!("{at}T09:00:00Z")
            .parse()
            .expect("demo dates are valid");
        let event = NewEvent::from_parts(
            Uuid::now_v7(),
            format!("pcn-{pcn}"),
            event_type,
            1,
            data,
            actor,
            at,
        )
        .unwrap_or_else(|error| panic!("the demonstration {event_type} is valid: {error}"));
        events.push(event);
    };
    let pcns = [
        ("U12345", 62_000, "58400.5"),
        ("U23456", 115_000, "120310.0"),
    ];
    for (pcn, raw, weighted) in pcns {
        let name = ORGANISATIONS
            .iter()
            .find(|o| o.0 == pcn)
            .map_or(pcn, |o| o.1);
        let registration = json!({"pcn": pcn, "name": name, "icb": "QHM", "member_practices": ["A87001", "A87002", "A87003"], "nation": "england"});
        add(pcn, "QHM", "pcn.registered", registration, "2019-06-01");
        for on in ["2019-04-01", "2020-01-01"] {
            let list =
                json!({"pcn": pcn, "on": on, "raw_list_size": raw, "weighted_list_size": weighted});
            add(pcn, "QHM", "pcn.population_recorded", list, "2019-06-01");
        }
    }
    let last_month: followfund_contracts::terms::YearMonth = "2021-03".parse().expect("a month");
    let workers = [
        (
            "U12345",
            1,
            json!({"kind": "pcn"}),
            "1",
            "2019-07-01",
            "2500.00",
        ),
        (
            "U23456",
            2,
            json!({"kind": "pcn"}),
            "1",
            "2019-09-01",
            "3150.00",
        ),
        (
            "U23456",
            3,
            json!({"kind": "vcse_supplier", "supplier": "VCS01"}),
            "0.6",
            "2019-10-14",
            "1480.00",
        ),
    ];
    for (pcn, slot, employer, wte, start, monthly) in workers {
        let worker = demo_id(seed, u64::MAX, slot);
        let employed = json!({"link_worker_id": worker, "pcn": pcn, "employer": employer, "wte": wte, "start_date": start, "monthly_salary": "2083.33", "monthly_on_costs": "416.67"});
        add(pcn, pcn, "link_worker.employed", employed, start);
        let first: chrono::NaiveDate = start.parse().expect("demo dates are valid");
        let months = std::iter::successors(
            Some(followfund_contracts::terms::YearMonth::containing(first)),
            |m| Some(m.next()),
        );
        for month in months.take_while(|m| *m <= last_month) {
            let cost =
                json!({"link_worker_id": worker, "month": month.to_string(), "amount": monthly});
            add(
                pcn,
                pcn,
                "link_worker.cost_paid",
                cost,
                &month.next().first_day().to_string(),
            );
        }
    }
    // Each month is claimed on the 10th of the next and paid on the 25th.
    for (slot, month, next) in [
        (10, "2019-07", "2019-08"),
        (11, "2019-08", "2019-09"),
        (12, "2019-09", "2019-10"),
    ] {
        let claim_id = demo_id(seed, u64::MAX, slot);
        let claim =
            json!({"claim_id": claim_id, "pcn": "U12345", "month": month, "amount": "2500.00"});
        add(
            "U12345",
            "U12345",
            "arrs.claim_submitted",
            claim,
            &format!("{next}-10"),
        );
        let paid_on = format!("{next}-25");
        let paid =
            json!({"claim_id": claim_id, "pcn": "U12345", "amount": "2500.00", "paid_on": paid_on});
        add("U12345", "QHM", "arrs.claim_paid", paid, &paid_on);
    }
    events
}

/// Issues a fresh token for each organisation of the set.
pub async fn tokens(store: &Store) -> Result<Vec<(String, Role, String)>, AdminError> {
    let mut issued = Vec::new();
    for (code, _, role, _) in ORGANISATIONS {
        let (secret, _) = admin::token_create(store, code, *role).await?;
        issued.push((code.to_string(), *role, secret));
    }
    Ok(issued)
}

/// One referral's events, as far along the pathway as chance takes it.
fn journey(random: &mut Lcg, seed: u64, index: u64) -> Result<Vec<NewEvent>, StoreError> {
    let referral_id = demo_id(seed, index, 0);
    let anchor = if random.below(2) == 0 {
        "ANC01"
    } else {
        "ANC02"
    };
    let providers: &[&str] = if anchor == "ANC01" {
        &["VCS01", "VCS02"]
    } else {
        &["VCS03", "VCS04"]
    };
    // Referrals from April to early August 2026, so that every session falls before today and
    // within the demonstration agreements.
    let start = Utc.with_ymd_and_hms(2026, 4, 6, 9, 0, 0).unwrap()
        + Duration::days(random.below(120) as i64);
    let mut pathway = Pathway {
        events: Vec::new(),
        stream: format!("referral-{referral_id}"),
        anchor,
        at: start,
    };
    pathway.add("referral.received", json!({
        "referral_id": referral_id, "person_id": demo_id(seed, index, 1),
        "source": random.pick(&["gp_practice", "self_referral", "housing", "pharmacist"]),
        "referrer": "A81001", "link_worker_organisation": anchor,
        "reasons": [random.pick(&["loneliness", "mental_wellbeing", "financial", "physical_activity"])],
        "age_band": random.pick(&["25-39", "40-54", "55-64", "65-74", "75+"]),
        "conditions": if random.below(3) == 0 { json!(["diabetes"]) } else { json!([]) },
    }))?;
    if random.below(10) == 0 {
        pathway.add(
            "referral.declined",
            json!({ "referral_id": referral_id, "reason": "unable_to_contact" }),
        )?;
        return Ok(pathway.events);
    }
    pathway.add("referral.accepted", json!({ "referral_id": referral_id }))?;
    pathway.add(
        "assessment.held",
        json!({ "referral_id": referral_id, "duration_minutes": 60 + 15 * random.below(5) }),
    )?;
    pathway.add("plan.agreed", json!({ "referral_id": referral_id, "plan_id": demo_id(seed, index, 2), "needs": ["loneliness"] }))?;
    let provider = providers[random.below(2) as usize];
    let (_, activity, agreement) = PROVIDER_TERMS
        .iter()
        .find(|(code, _, _)| *code == provider)
        .expect("every provider has terms");
    let prescription_id = demo_id(seed, index, 3);
    pathway.add(
        "prescription.issued",
        json!({
            "prescription_id": prescription_id, "referral_id": referral_id, "provider": provider,
            "activity_type": activity, "agreement_id": agreement,
        }),
    )?;
    pathway.add(
        "prescription.accepted",
        json!({ "prescription_id": prescription_id }),
    )?;
    let sessions = random.below(11);
    for session in 0..sessions {
        let session_id = demo_id(seed, index, 10 + session);
        pathway.at += Duration::days(7);
        if random.below(8) == 0 {
            pathway.add("session.missed", json!({ "prescription_id": prescription_id, "session_id": session_id, "notice_given": false }))?;
        } else {
            pathway.add(
                "session.attended",
                json!({ "prescription_id": prescription_id, "session_id": session_id }),
            )?;
        }
    }
    let ending = if sessions >= 8 {
        (
            "prescription.completed",
            json!({ "prescription_id": prescription_id }),
        )
    } else {
        (
            "prescription.ended",
            json!({ "prescription_id": prescription_id, "reason": "did_not_attend" }),
        )
    };
    if sessions >= 3 {
        pathway.add(ending.0, ending.1)?;
        pathway.add(
            "case.closed",
            json!({ "referral_id": referral_id, "reason": "goals_met" }),
        )?;
    }
    Ok(pathway.events)
}

struct Pathway {
    events: Vec<NewEvent>,
    stream: String,
    anchor: &'static str,
    at: DateTime<Utc>,
}

impl Pathway {
    fn add(&mut self, event_type: &str, data: Value) -> Result<(), StoreError> {
        self.at += Duration::hours(26);
        let actor = Actor {
            organisation: self.anchor.to_string(),
            role: "anchor".into(),
            user: None,
        };
        let event = NewEvent::from_parts(
            Uuid::now_v7(),
            self.stream.clone(),
            event_type,
            1,
            data,
            actor,
            self.at,
        )
        .unwrap_or_else(|error| panic!("the demonstration {event_type} is valid: {error}"));
        self.events.push(event);
        Ok(())
    }
}

/// Ids that are the same for the same seed, referral and slot.
fn demo_id(seed: u64, referral: u64, slot: u64) -> Uuid {
    Uuid::from_u128((u128::from(seed) << 96) | (u128::from(referral) << 32) | u128::from(slot))
}

/// A small linear congruential generator: the demonstration needs repeatable variety, not
/// statistical quality.
struct Lcg(u64);

impl Lcg {
    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len() as u64) as usize]
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}
