//! The ledger's invariants over generated histories of funded prescriptions: postings sum to
//! zero after every fact; an anchor's allocation always equals what is available, committed and
//! accrued; nothing is paid that was not earned; commitments never go negative; and folding
//! from a snapshot equals folding from zero.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use followfund_contracts::terms::FinancialYear;
use followfund_contracts::{Event, Money, OdsCode};
use followfund_projections::{Account, AccountKind, Fact, ReadModels};
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

const PRESCRIPTIONS: u128 = 6;
const SESSIONS: u128 = 5;

#[derive(Clone, Debug)]
enum Step {
    Issue(u128),
    Attend(u128, u128, i64),
    Miss(u128, u128, bool),
    Retract(u128, u128),
    Complete(u128),
    End(u128),
    Amend(u32),
    Pay(i64),
}

fn step() -> impl Strategy<Value = Step> {
    let p = 0..PRESCRIPTIONS;
    let s = 0..SESSIONS;
    prop_oneof![
        2 => p.clone().prop_map(Step::Issue),
        6 => (p.clone(), s.clone(), 0..10i64).prop_map(|(p, s, late)| Step::Attend(p, s, late)),
        1 => (p.clone(), s.clone(), any::<bool>()).prop_map(|(p, s, notice)| Step::Miss(p, s, notice)),
        2 => (p.clone(), s).prop_map(|(p, s)| Step::Retract(p, s)),
        1 => p.clone().prop_map(Step::Complete),
        1 => p.prop_map(Step::End),
        1 => (5..30u32).prop_map(Step::Amend),
        2 => (0..20i64).prop_map(Step::Pay),
    ]
}

fn tariff() -> impl Strategy<Value = Value> {
    (0..40u32, 0..25u32, 1..12u32, 0..60u32, 0..10u32, prop::option::of(50..400u32), prop::option::of(0..10u32)).prop_map(
        |(engagement, session, funded, completion, minimum, cap, missed)| {
            json!({
                "engagement_fee": format!("{engagement}.00"), "session_fee": format!("{session}.50"),
                "funded_sessions": funded, "completion_fee": format!("{completion}.00"),
                "completion_min_sessions": minimum, "cap_per_referral": cap.map(|c| format!("{c}.00")),
                "missed_session_fee": missed.map(|m| format!("{m}.25")),
            })
        },
    )
}

struct History {
    facts: Vec<Fact>,
    amendments: u32,
}

impl History {
    fn push(&mut self, day: NaiveDate, event_type: &str, data: Value) {
        let position = self.facts.len() as u64 + 1;
        let occurred_at = Utc.from_utc_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
            + Duration::seconds(position as i64);
        let event = Event::decode(event_type, 1, data)
            .unwrap_or_else(|error| panic!("{event_type}: {error}"));
        let fact = Fact {
            position,
            occurred_at,
            event,
        };
        self.facts.push(fact);
    }
}

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()
}

fn prescription(p: u128) -> Uuid {
    Uuid::from_u128(1_000 + p)
}

/// Builds a history from the steps, folding as it goes so that payment runs settle what the
/// ledger says is due, as the command would.
fn build(tariff: Value, steps: &[Step], mut check: impl FnMut(&ReadModels)) -> Vec<Fact> {
    let mut history = History {
        facts: Vec::new(),
        amendments: 1,
    };
    let mut models = ReadModels::default();
    let fold = |history: &History, models: &mut ReadModels, check: &mut dyn FnMut(&ReadModels)| {
        let fact = history.facts.last().unwrap();
        models.apply(fact);
        check(models);
    };
    history.push(start(), "budget.allocated", json!({"allocation_id": Uuid::from_u128(1), "commissioner": "QHM", "anchor": "ANC01", "financial_year": "2026/27", "account": "activities", "amount": "100000.00"}));
    fold(&history, &mut models, &mut check);
    history.push(start(), "agreement.signed", json!({"agreement_id": Uuid::from_u128(2), "anchor": "ANC01", "provider": "VCS01", "valid_from": "2026-04-01", "valid_to": "2027-03-31", "capacity": 50, "response_window_days": 5, "activity_types": ["walking"], "tariff": tariff.clone()}));
    fold(&history, &mut models, &mut check);
    for (index, step) in steps.iter().enumerate() {
        let day = start() + Duration::days(10 + index as i64);
        let (event_type, data, on) = match step {
            Step::Issue(p) => (
                "prescription.issued",
                json!({"prescription_id": prescription(*p), "referral_id": Uuid::from_u128(3), "provider": "VCS01", "activity_type": "walking", "agreement_id": Uuid::from_u128(2)}),
                day,
            ),
            Step::Attend(p, s, late) => (
                "session.attended",
                json!({"prescription_id": prescription(*p), "session_id": Uuid::from_u128(10 * p + s)}),
                day - Duration::days(*late),
            ),
            Step::Miss(p, s, notice) => (
                "session.missed",
                json!({"prescription_id": prescription(*p), "session_id": Uuid::from_u128(10 * p + s), "notice_given": notice}),
                day,
            ),
            Step::Retract(p, s) => (
                "session.retracted",
                json!({"prescription_id": prescription(*p), "session_id": Uuid::from_u128(10 * p + s), "reason": "recorded_in_error"}),
                day,
            ),
            Step::Complete(p) => (
                "prescription.completed",
                json!({"prescription_id": prescription(*p)}),
                day,
            ),
            Step::End(p) => (
                "prescription.ended",
                json!({"prescription_id": prescription(*p), "reason": "moved_away"}),
                day,
            ),
            Step::Amend(fee) => {
                history.amendments += 1;
                let mut amended = tariff.clone();
                amended["session_fee"] = json!(format!("{fee}.00"));
                (
                    ("agreement.amended"),
                    json!({"agreement_id": Uuid::from_u128(2), "version": history.amendments, "effective_from": day, "capacity": 50, "tariff": amended}),
                    day,
                )
            }
            Step::Pay(back) => {
                let through = day - Duration::days(*back);
                let lines = models
                    .ledger
                    .payment_due(&OdsCode::parse("ANC01").unwrap(), through);
                (
                    "payment_run.recorded",
                    json!({"run_id": Uuid::from_u128(5_000 + index as u128), "anchor": "ANC01", "through": through, "lines": lines}),
                    day,
                )
            }
        };
        history.push(on, event_type, data);
        fold(&history, &mut models, &mut check);
    }
    history.facts
}

fn invariants(models: &ReadModels) {
    let ledger = &models.ledger;
    assert!(ledger.balances_sum().is_zero(), "postings sum to zero");
    let position = ledger.budget_position(
        &OdsCode::parse("ANC01").unwrap(),
        FinancialYear::starting(2026),
    );
    let parts = position
        .available
        .checked_add(position.committed)
        .unwrap()
        .checked_add(position.accrued)
        .unwrap();
    assert_eq!(
        parts, position.allocated,
        "allocated = available + committed + accrued: {position:?}"
    );
    let anchor = OdsCode::parse("ANC01").unwrap();
    let provider = OdsCode::parse("VCS01").unwrap();
    let year = FinancialYear::starting(2026);
    let recovery = ledger.balance(&Account::between(
        AccountKind::Recovery,
        &anchor,
        &provider,
        year,
    ));
    let payable = ledger.balance(&Account::between(
        AccountKind::Payable,
        &anchor,
        &provider,
        year,
    ));
    assert!(
        !payable.is_negative(),
        "runs pay only what was earned: {payable}"
    );
    assert!(
        !recovery.is_negative() || !position.paid.is_zero(),
        "only what was paid can be owed back"
    );
    // Between a retraction after payment and the run that recovers it, the provider holds
    // more than it earned; net of what it owes back, never.
    let kept = position.paid.checked_add(recovery).unwrap();
    assert!(
        kept <= position.accrued,
        "nothing is kept that was not earned: {position:?}"
    );
    for p in 0..PRESCRIPTIONS {
        if let Some(funding) = ledger.funding(prescription(p)) {
            assert!(
                !funding.committed().is_negative(),
                "commitments never go negative"
            );
            assert!(
                !funding.earned().is_negative(),
                "earnings never go negative"
            );
            if !funding.open {
                assert_eq!(
                    funding.committed(),
                    Money::zero(),
                    "a closed prescription keeps nothing committed"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_ledger_holds_its_invariants(tariff in tariff(), steps in prop::collection::vec(step(), 1..120)) {
        build(tariff, &steps, invariants);
    }

    #[test]
    fn folding_from_a_snapshot_equals_folding_from_zero(tariff in tariff(), steps in prop::collection::vec(step(), 1..80), cut in any::<prop::sample::Index>()) {
        let facts = build(tariff, &steps, |_| {});
        let mut whole = ReadModels::default();
        for fact in &facts {
            whole.apply(fact);
        }
        let cut = cut.index(facts.len());
        let mut prefix = ReadModels::default();
        for fact in &facts[..cut] {
            prefix.apply(fact);
        }
        let mut resumed: ReadModels = serde_json::from_str(&serde_json::to_string(&prefix).unwrap()).unwrap();
        for fact in &facts[cut..] {
            resumed.apply(fact);
        }
        prop_assert_eq!(resumed, whole);
    }
}
