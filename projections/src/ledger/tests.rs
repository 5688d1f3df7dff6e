//! Ledger scenarios with figures worked by hand, in pounds and pence.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use followfund_contracts::terms::FinancialYear;
use followfund_contracts::{Event, Money, OdsCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::fixtures::{History, id};
use crate::{Fact, ReadModels};
use followfund_contracts::events::{PaymentLine, PaymentLineKind};

const AGREEMENT: Uuid = Uuid::from_u128(10);
const SELF_DELIVERY: Uuid = Uuid::from_u128(11);
const REFERRAL: Uuid = Uuid::from_u128(20);
const PRESCRIPTION: Uuid = Uuid::from_u128(30);

fn pounds(text: &str) -> Money {
    text.parse().unwrap()
}

fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).unwrap()
}

fn year() -> FinancialYear {
    FinancialYear::starting(2026)
}

/// Facts on chosen days, folded in order one at a time, and kept.
struct Given {
    models: ReadModels,
    facts: Vec<Fact>,
}

impl Given {
    fn new() -> Given {
        let mut given = Given {
            models: ReadModels::default(),
            facts: Vec::new(),
        };
        given.on(
            day(4, 1),
            "budget.allocated",
            json!({
                "allocation_id": Uuid::from_u128(1), "commissioner": "QHM", "anchor": "ANC01",
                "financial_year": "2026/27", "account": "activities", "amount": "1000.00",
            }),
        );
        given.on(
            day(4, 1),
            "agreement.signed",
            agreement(AGREEMENT, "VCS01", ten_week_tariff()),
        );
        given
    }

    /// The anchor also runs an activity itself, at 12.00 a session for up to 12 sessions.
    fn self_delivering() -> Given {
        let mut given = Given::new();
        let tariff = json!({"session_fee": "12.00", "funded_sessions": 12});
        given.on(
            day(4, 1),
            "agreement.signed",
            agreement(SELF_DELIVERY, "ANC01", tariff),
        );
        given
    }

    fn on(&mut self, on: NaiveDate, event_type: &str, data: Value) -> &mut Given {
        self.event_on(on, Event::decode(event_type, 1, data).unwrap())
    }

    fn event_on(&mut self, on: NaiveDate, event: Event) -> &mut Given {
        let position = self.models.position() + 1;
        let occurred_at = Utc.from_utc_datetime(&on.and_hms_opt(10, 0, 0).unwrap())
            + Duration::seconds(position as i64);
        let event_type = event.type_name();
        let fact = Fact {
            position,
            occurred_at,
            event,
        };
        self.models.apply(&fact);
        assert!(
            self.models.ledger.balances_sum().is_zero(),
            "postings sum to zero after {event_type}"
        );
        self.facts.push(fact);
        self
    }

    fn referred(&mut self, on: NaiveDate) -> &mut Given {
        self.on(on, "referral.received", json!({
            "referral_id": REFERRAL, "person_id": Uuid::from_u128(99), "source": "self_referral", "referrer": null,
            "link_worker_organisation": "ANC01", "reasons": ["loneliness"], "age_band": "65-74", "conditions": [],
        }))
    }

    fn issued(&mut self, on: NaiveDate, agreement_id: Uuid) -> &mut Given {
        self.referred(on);
        self.on(
            on,
            "prescription.issued",
            json!({
                "prescription_id": PRESCRIPTION, "referral_id": REFERRAL, "provider": "VCS01",
                "activity_type": "walking", "agreement_id": agreement_id,
            }),
        )
    }

    fn attended(&mut self, on: NaiveDate, session: u128) -> &mut Given {
        self.on(on, "session.attended", json!({"prescription_id": PRESCRIPTION, "session_id": Uuid::from_u128(1_000 + session)}))
    }

    /// `weeks` sessions attended a week apart from `first`, numbered from 0.
    fn weekly_sessions(&mut self, first: NaiveDate, weeks: u32) -> &mut Given {
        for week in 0..weeks {
            self.attended(first + Duration::weeks(i64::from(week)), u128::from(week));
        }
        self
    }

    /// The facts so far, and enough after them on `on` for a page to be folded on two threads
    /// window by window, folded as a page: checked equal to folding them one at a time.
    fn paged(&mut self, on: NaiveDate) -> ReadModels {
        for organisation in 0..300 {
            let code = format!("ORG{organisation}");
            let registered =
                crate::fixtures::registered(&code, followfund_contracts::Role::Provider);
            self.event_on(on, registered);
        }
        let mut paged = ReadModels::default();
        paged.apply_all(&self.facts);
        assert_eq!(paged.ledger, self.models.ledger);
        paged
    }

    fn ledger(&self) -> &Ledger {
        &self.models.ledger
    }

    fn payable(&self) -> Money {
        self.ledger().balance(&Account::between(
            AccountKind::Payable,
            &ods("ANC01"),
            &ods("VCS01"),
            year(),
        ))
    }
}

fn day(month: u32, day: u32) -> NaiveDate {
    let year = if month >= 4 { 2026 } else { 2027 };
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

fn ten_week_tariff() -> Value {
    json!({
        "engagement_fee": "25.00", "session_fee": "15.00", "funded_sessions": 10,
        "completion_fee": "50.00", "completion_min_sessions": 8, "cap_per_referral": "200.00",
    })
}

fn agreement(agreement_id: Uuid, provider: &str, tariff: Value) -> Value {
    json!({
        "agreement_id": agreement_id, "anchor": "ANC01", "provider": provider,
        "valid_from": "2026-04-01", "valid_to": "2027-03-31", "capacity": 12,
        "response_window_days": 5, "activity_types": ["walking"], "tariff": tariff,
    })
}

#[test]
fn an_allocation_funds_the_budget() {
    let given = Given::new();
    let position = given.ledger().budget_position(&ods("ANC01"), year());
    assert_eq!(position.allocated, pounds("1000.00"));
    assert_eq!(position.available, pounds("1000.00"));
    assert_eq!(
        given
            .ledger()
            .balance(&Account::of(AccountKind::Funding, &ods("QHM"), year())),
        pounds("-1000.00")
    );
}

#[test]
fn issuing_commits_the_capped_maximum() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    // 25 + 10 × 15 + 50 = 225, capped at 200.
    let position = given.ledger().budget_position(&ods("ANC01"), year());
    assert_eq!(position.committed, pounds("200.00"));
    assert_eq!(position.available, pounds("800.00"));
}

#[test]
fn a_ten_session_course_with_completion_is_paid_up_to_its_cap() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.weekly_sessions(day(5, 4), 10);
    // First session £25 + £15, then nine at £15: £175.00 payable, £25.00 still committed.
    assert_eq!(given.payable(), pounds("175.00"));
    given.on(
        day(7, 13),
        "prescription.completed",
        json!({"prescription_id": PRESCRIPTION}),
    );
    // The £50 completion fee meets the £200 cap after £25.00.
    assert_eq!(given.payable(), pounds("200.00"));
    let position = given.ledger().budget_position(&ods("ANC01"), year());
    assert_eq!(
        (position.committed, position.accrued, position.available),
        (Money::zero(), pounds("200.00"), pounds("800.00"))
    );
    let completion = given
        .ledger()
        .postings_of(PRESCRIPTION)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|p| p.cause.rule == Rule::Tariff(followfund_contracts::terms::Clause::CompletionFee))
        .unwrap();
    assert_eq!(completion.amount, pounds("25.00"));
    assert_eq!(completion.cause.agreement_version, Some(1));

    // The prescription's own postings: the commitment, ten sessions (the first with its
    // engagement fee as a second posting) and the completion fee.
    let ledger = given.ledger();
    let own: Vec<_> = ledger.postings_of(PRESCRIPTION).collect();
    let scanned: Vec<_> = ledger
        .postings()
        .filter(|p| p.cause.prescription_id == Some(PRESCRIPTION))
        .collect();
    assert_eq!(own, scanned);
    assert_eq!(own.len(), 13);
    assert!(ledger.postings_of(Uuid::from_u128(404)).next().is_none());
}

/// Folded a page at a time, each window of facts is warmed first, and warming finds no funding
/// for a prescription issued inside the window: the facts after the issue must still find it.
#[test]
fn a_funding_issued_inside_a_warmed_window_is_found_by_the_facts_after_it() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.weekly_sessions(day(5, 4), 10);
    given.on(
        day(7, 13),
        "prescription.completed",
        json!({"prescription_id": PRESCRIPTION}),
    );
    let paged = given.paged(day(7, 14));
    let payable = Account::between(AccountKind::Payable, &ods("ANC01"), &ods("VCS01"), year());
    assert_eq!(paged.ledger.balance(&payable), pounds("200.00"));
    assert_eq!(paged.ledger.postings_of(PRESCRIPTION).count(), 13);
}

#[test]
fn a_prescription_waitlisted_before_it_is_issued_finds_its_funding_by_its_place() {
    // The journeys add the prescription when it is waitlisted, the ledger funds it when it is
    // issued: the ledger's fold on its own thread must still find the funding by the place.
    let mut given = Given::new();
    given.referred(day(5, 1));
    let prescription = json!({
        "prescription_id": PRESCRIPTION, "referral_id": REFERRAL, "provider": "VCS01",
        "activity_type": "walking", "agreement_id": AGREEMENT,
    });
    given.on(day(5, 1), "prescription.waitlisted", prescription.clone());
    given.on(day(5, 2), "prescription.issued", prescription);
    given.attended(day(5, 4), 0).attended(day(5, 11), 1);
    given.paged(day(5, 12)).assert_consistent();
    // The engagement fee of 25.00 and 15.00 for each session, as when issued at once.
    assert_eq!(given.payable(), pounds("55.00"));
}

#[test]
fn ending_early_releases_what_was_not_used() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.attended(day(5, 4), 0).attended(day(5, 11), 1);
    given.on(
        day(5, 20),
        "prescription.ended",
        json!({"prescription_id": PRESCRIPTION, "reason": "person_withdrew"}),
    );
    // Earned 25 + 15 + 15 = 55; the other 145 of the 200 committed goes back.
    let position = given.ledger().budget_position(&ods("ANC01"), year());
    assert_eq!(
        (position.accrued, position.committed, position.available),
        (pounds("55.00"), Money::zero(), pounds("945.00"))
    );
}

#[test]
fn a_retraction_reverses_what_the_session_earned() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.attended(day(5, 4), 0).attended(day(5, 11), 1);
    given.on(day(5, 12), "session.retracted", json!({"prescription_id": PRESCRIPTION, "session_id": Uuid::from_u128(1_001), "reason": "recorded_in_error"}));
    assert_eq!(given.payable(), pounds("40.00"));
    assert_eq!(
        given.ledger().funding(PRESCRIPTION).unwrap().committed(),
        pounds("160.00")
    );
    // Retracting the first session takes the engagement fee back too; the next attendance earns it again.
    given.on(day(5, 13), "session.retracted", json!({"prescription_id": PRESCRIPTION, "session_id": Uuid::from_u128(1_000), "reason": "recorded_in_error"}));
    assert_eq!(given.payable(), Money::zero());
    given.attended(day(5, 18), 2);
    assert_eq!(given.payable(), pounds("40.00"));
}

/// The ledger knows a session by its place among its prescription's sessions, which the
/// journeys give: a retracted session recorded again is charged again at the same place, and a
/// session of a prescription whose referral the log never received has no place and is not
/// charged (an import that begins mid-journey; the journeys count it as an orphan).
#[test]
fn sessions_are_charged_by_the_place_the_journeys_give_them() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.attended(day(5, 4), 0).attended(day(5, 11), 1);
    given.attended(day(5, 11), 1);
    assert_eq!(
        given.payable(),
        pounds("55.00"),
        "a session recorded twice is charged once"
    );
    given.on(day(5, 12), "session.retracted", json!({"prescription_id": PRESCRIPTION, "session_id": Uuid::from_u128(1_001), "reason": "recorded_in_error"}));
    assert_eq!(given.payable(), pounds("40.00"));
    given.attended(day(5, 13), 1);
    assert_eq!(
        given.payable(),
        pounds("55.00"),
        "recorded again after its retraction"
    );
    let funding = given.ledger().funding(PRESCRIPTION).unwrap();
    assert_eq!((funding.attended, funding.sessions_charged), (2, 2));

    let unknown_referral = Uuid::from_u128(0xdead);
    let orphan = Uuid::from_u128(0xbeef);
    given.on(
        day(5, 14),
        "prescription.issued",
        json!({
            "prescription_id": orphan, "referral_id": unknown_referral, "provider": "VCS01",
            "activity_type": "walking", "agreement_id": AGREEMENT,
        }),
    );
    given.on(
        day(5, 15),
        "session.attended",
        json!({"prescription_id": orphan, "session_id": Uuid::from_u128(2_000)}),
    );
    let funding = given.ledger().funding(orphan).unwrap();
    assert_eq!((funding.attended, funding.earned()), (0, Money::zero()));
    assert_eq!(given.payable(), pounds("55.00"));
    assert_eq!(given.models.journeys.orphans(), 2);
}

#[test]
fn the_version_in_force_on_the_session_date_prices_it() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.attended(day(9, 28), 0);
    let mut raised = ten_week_tariff();
    raised["session_fee"] = json!("17.50");
    raised["cap_per_referral"] = json!("260.00");
    given.on(day(9, 29), "agreement.amended", json!({
        "agreement_id": AGREEMENT, "version": 2, "effective_from": "2026-10-01", "capacity": 15, "tariff": raised,
    }));
    given.attended(day(9, 30), 1).attended(day(10, 1), 2);
    // 25 + 15 (version 1), 15 on 30 September (still version 1), 17.50 on 1 October (version 2).
    assert_eq!(given.payable(), pounds("72.50"));
    let last = given.ledger().postings_of(PRESCRIPTION).last().unwrap();
    assert_eq!(
        (last.amount, last.cause.agreement_version),
        (pounds("17.50"), Some(2))
    );
}

#[test]
fn a_later_version_paying_more_commits_the_difference_first() {
    let mut given = Given::new();
    let small = json!({"session_fee": "10.00", "funded_sessions": 2});
    given.on(
        day(4, 1),
        "agreement.signed",
        agreement(SELF_DELIVERY, "VCS01", small),
    );
    given.issued(day(5, 1), SELF_DELIVERY);
    assert_eq!(
        given.ledger().funding(PRESCRIPTION).unwrap().committed(),
        pounds("20.00")
    );
    given.on(day(5, 2), "agreement.amended", json!({
        "agreement_id": SELF_DELIVERY, "version": 2, "effective_from": "2026-05-02", "capacity": 12,
        "tariff": {"session_fee": "30.00", "funded_sessions": 2},
    }));
    given.attended(day(5, 3), 0).attended(day(5, 10), 1);
    assert_eq!(given.payable(), pounds("60.00"));
    let top_ups: Vec<Money> = given
        .ledger()
        .postings()
        .filter(|p| p.cause.rule == Rule::CommitmentTopUp)
        .map(|p| p.amount)
        .collect();
    assert_eq!(top_ups, vec![pounds("10.00"), pounds("30.00")]);
    assert_eq!(
        given
            .ledger()
            .budget_position(&ods("ANC01"), year())
            .available,
        pounds("940.00")
    );
}

#[test]
fn self_delivery_costs_the_budget_with_no_payable() {
    let mut given = Given::self_delivering();
    given.issued(day(5, 1), SELF_DELIVERY);
    given.attended(day(5, 4), 0);
    assert_eq!(given.payable(), Money::zero());
    let spent = given.ledger().balance(&Account::of(
        AccountKind::SelfDelivered,
        &ods("ANC01"),
        year(),
    ));
    assert_eq!(spent, pounds("12.00"));
    assert_eq!(
        given
            .ledger()
            .budget_position(&ods("ANC01"), year())
            .accrued,
        pounds("12.00")
    );
}

/// The numbers a funding keeps for the accounts its sessions post to, as the ledger numbers
/// those accounts by name.
fn kept_numbers(
    given: &Given,
) -> (
    Option<AccountId>,
    Option<AccountId>,
    Option<AccountId>,
    Option<AccountId>,
) {
    let ledger = given.ledger();
    let funding = ledger.funding.get(&PRESCRIPTION).expect("funded");
    let number = |account: &Account| ledger.accounts.number(account);
    let committed = Account::of(AccountKind::Committed, &ods("ANC01"), year());
    (
        funding.earned_account_id,
        number(&funding.earned_account(ledger.agreement_of(funding))),
        funding.committed_account_id,
        number(&committed),
    )
}

#[test]
fn a_funding_keeps_the_numbers_of_the_accounts_its_sessions_post_to() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    assert_eq!(kept_numbers(&given).0, None, "nothing earned, nothing kept");
    given.attended(day(5, 4), 0).attended(day(5, 11), 1);
    let (earned, earned_by_name, committed, committed_by_name) = kept_numbers(&given);
    assert!(earned.is_some() && committed.is_some());
    assert_eq!((earned, committed), (earned_by_name, committed_by_name));
    assert_ne!(earned, committed);
    assert_eq!(
        given.payable(),
        pounds("55.00"),
        "25.00 to engage and 15.00 a session"
    );
}

#[test]
fn a_self_delivered_funding_keeps_the_number_of_its_cost_account() {
    let mut given = Given::self_delivering();
    given
        .issued(day(5, 1), SELF_DELIVERY)
        .attended(day(5, 4), 0);
    let (earned, earned_by_name, _, _) = kept_numbers(&given);
    let self_delivered = Account::of(AccountKind::SelfDelivered, &ods("ANC01"), year());
    let self_delivered = given.ledger().accounts.number(&self_delivered);
    assert_eq!(earned, earned_by_name);
    assert_eq!(earned, self_delivered);
    assert!(earned.is_some());
}

#[test]
fn a_prescription_belongs_to_the_year_it_was_issued_in() {
    let mut given = Given::new();
    given.issued(day(3, 30), AGREEMENT);
    given.attended(day(4, 2) + Duration::days(365), 0);
    // Issued on 30 March 2027 (2026/27); attended in April 2027: still 2026/27's budget.
    assert_eq!(given.payable(), pounds("40.00"));
}

#[test]
fn capacity_grants_come_from_their_own_budget() {
    let mut given = Given::new();
    given.on(
        day(4, 1),
        "budget.allocated",
        json!({
            "allocation_id": Uuid::from_u128(2), "commissioner": "QHM", "anchor": "ANC01",
            "financial_year": "2026/27", "account": "capacity_building", "amount": "10000.00",
        }),
    );
    given.on(day(6, 1), "capacity_grant.awarded", json!({
        "grant_id": Uuid::from_u128(3), "anchor": "ANC01", "provider": "VCS01", "financial_year": "2026/27", "amount": "2000.00",
    }));
    let left = given.ledger().balance(&Account::of(
        AccountKind::CapacityBudget,
        &ods("ANC01"),
        year(),
    ));
    assert_eq!(left, pounds("8000.00"));
    assert_eq!(
        given
            .ledger()
            .budget_position(&ods("ANC01"), year())
            .available,
        pounds("1000.00"),
        "the activities budget is untouched"
    );
}

impl Given {
    /// Runs a payment for ANC01 through `through`, as the command would: what is due now.
    fn run(&mut self, on: NaiveDate, run: u128, through: NaiveDate) -> Vec<PaymentLine> {
        let lines = self.ledger().payment_due(&ods("ANC01"), through);
        let data = json!({
            "run_id": Uuid::from_u128(5_000 + run), "anchor": "ANC01", "through": through, "lines": lines,
        });
        self.on(on, "payment_run.recorded", data);
        lines
    }

    fn paid(&self) -> Money {
        self.ledger().balance(&Account::between(
            AccountKind::Paid,
            &ods("ANC01"),
            &ods("VCS01"),
            year(),
        ))
    }
}

fn amounts(lines: &[PaymentLine]) -> Vec<(PaymentLineKind, Money)> {
    lines.iter().map(|line| (line.kind, line.amount)).collect()
}

#[test]
fn a_run_pays_what_was_earned_through_its_date_once() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given
        .attended(day(5, 4), 0)
        .attended(day(5, 11), 1)
        .attended(day(6, 1), 2);
    let lines = given.run(day(6, 2), 1, day(5, 31));
    // May's two sessions: 25 + 15 + 15; June's session waits for the next run.
    assert_eq!(
        amounts(&lines),
        vec![(PaymentLineKind::Payment, pounds("55.00"))]
    );
    assert_eq!(
        (given.paid(), given.payable()),
        (pounds("55.00"), pounds("15.00"))
    );
    assert!(
        given
            .ledger()
            .payment_due(&ods("ANC01"), day(5, 31))
            .is_empty(),
        "nothing is paid twice"
    );
    let position = given.ledger().budget_position(&ods("ANC01"), year());
    assert_eq!(
        (position.paid, position.accrued),
        (pounds("55.00"), pounds("70.00"))
    );
}

#[test]
fn attendance_recorded_after_its_run_is_paid_in_the_next() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.attended(day(5, 4), 0);
    given.run(day(6, 2), 1, day(5, 31));
    // A session on 25 May, recorded in June after the May run.
    given.attended(day(5, 25), 1);
    let next = given.run(day(7, 1), 2, day(6, 30));
    assert_eq!(
        amounts(&next),
        vec![(PaymentLineKind::Payment, pounds("15.00"))]
    );
    assert_eq!(given.paid(), pounds("55.00"));
}

#[test]
fn a_retraction_after_payment_is_recovered_in_the_next_run() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.attended(day(5, 4), 0).attended(day(5, 11), 1);
    given.run(day(6, 2), 1, day(5, 31));
    assert_eq!(given.paid(), pounds("55.00"));
    given.on(day(6, 5), "session.retracted", json!({"prescription_id": PRESCRIPTION, "session_id": Uuid::from_u128(1_001), "reason": "recorded_in_error"}));
    given.attended(day(6, 8), 2);
    let next = given.run(day(7, 1), 2, day(6, 30));
    // June's session earns £15.00; the retracted May session's £15.00 is recovered.
    assert_eq!(
        amounts(&next),
        vec![
            (PaymentLineKind::Payment, pounds("15.00")),
            (PaymentLineKind::Recovery, pounds("15.00"))
        ]
    );
    assert_eq!(
        given.paid(),
        pounds("55.00"),
        "paid 55, then 15 more less 15 recovered"
    );
    let recovery = given.ledger().balance(&Account::between(
        AccountKind::Recovery,
        &ods("ANC01"),
        &ods("VCS01"),
        year(),
    ));
    assert_eq!(recovery, Money::zero(), "the recovery is settled");
    assert_eq!(
        given.ledger().funding(PRESCRIPTION).unwrap().earned(),
        pounds("55.00")
    );
}

/// A run's lines need not come provider by provider: each line is posted between its own
/// provider's accounts, whatever the line before it paid.
#[test]
fn a_run_whose_lines_alternate_between_providers_pays_each_its_own() {
    const SECOND_AGREEMENT: Uuid = Uuid::from_u128(12);
    let mut given = Given::new();
    given.on(
        day(4, 1),
        "agreement.signed",
        agreement(SECOND_AGREEMENT, "VCS02", ten_week_tariff()),
    );
    // Prescriptions 30 and 32 with VCS01, 31 with VCS02, one session attended in each.
    for (n, provider, agreement_id) in [
        (0u128, "VCS01", AGREEMENT),
        (1, "VCS02", SECOND_AGREEMENT),
        (2, "VCS01", AGREEMENT),
    ] {
        given.on(day(5, 1), "referral.received", json!({
            "referral_id": Uuid::from_u128(20 + n), "person_id": Uuid::from_u128(90 + n), "source": "self_referral", "referrer": null,
            "link_worker_organisation": "ANC01", "reasons": ["loneliness"], "age_band": "65-74", "conditions": [],
        }));
        given.on(day(5, 1), "prescription.issued", json!({
            "prescription_id": Uuid::from_u128(30 + n), "referral_id": Uuid::from_u128(20 + n), "provider": provider,
            "activity_type": "walking", "agreement_id": agreement_id,
        }));
        given.on(day(5, 4), "session.attended", json!({"prescription_id": Uuid::from_u128(30 + n), "session_id": Uuid::from_u128(1_000 + n)}));
    }
    let mut lines = given.ledger().payment_due(&ods("ANC01"), day(5, 31));
    lines.sort_by_key(|line| line.prescription_id);
    let providers: Vec<&str> = lines.iter().map(|line| line.provider.as_str()).collect();
    assert_eq!(providers, ["VCS01", "VCS02", "VCS01"]);
    let data = json!({
        "run_id": Uuid::from_u128(5_001), "anchor": "ANC01", "through": day(5, 31), "lines": lines,
    });
    given.on(day(6, 2), "payment_run.recorded", data);
    let balance = |kind, provider| {
        let account = Account::between(kind, &ods("ANC01"), &ods(provider), year());
        given.ledger().balance(&account)
    };
    // Each session earned 25.00 to engage and 15.00 for the session.
    assert_eq!(balance(AccountKind::Paid, "VCS01"), pounds("80.00"));
    assert_eq!(balance(AccountKind::Paid, "VCS02"), pounds("40.00"));
    assert_eq!(balance(AccountKind::Payable, "VCS01"), Money::zero());
    assert_eq!(balance(AccountKind::Payable, "VCS02"), Money::zero());
}

#[test]
fn self_delivery_is_never_in_a_run() {
    let mut given = Given::self_delivering();
    given.issued(day(5, 1), SELF_DELIVERY);
    given.attended(day(5, 4), 0);
    assert!(
        given
            .ledger()
            .payment_due(&ods("ANC01"), day(5, 31))
            .is_empty()
    );
}

#[test]
fn the_same_attendance_submitted_twice_pays_once() {
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.attended(day(5, 4), 0).attended(day(5, 4), 0);
    assert_eq!(given.payable(), pounds("40.00"));
    assert_eq!(given.ledger().funding(PRESCRIPTION).unwrap().attended, 1);
}

#[test]
fn a_missed_session_is_not_retracted() {
    let mut given = Given::new();
    let strict =
        json!({"session_fee": "15.00", "funded_sessions": 10, "missed_session_fee": "5.00"});
    given.on(
        day(4, 1),
        "agreement.signed",
        agreement(SELF_DELIVERY, "VCS01", strict),
    );
    given.issued(day(5, 1), SELF_DELIVERY);
    given.on(day(5, 4), "session.missed", json!({"prescription_id": PRESCRIPTION, "session_id": Uuid::from_u128(1_000), "notice_given": false}));
    assert_eq!(given.payable(), pounds("5.00"));
    given.on(day(5, 5), "session.retracted", json!({"prescription_id": PRESCRIPTION, "session_id": Uuid::from_u128(1_000), "reason": "recorded_in_error"}));
    assert_eq!(
        given.payable(),
        pounds("5.00"),
        "only an attendance is retracted"
    );
}

/// A run too long for one event is recorded in parts of at most 200 lines: 450 lines make three
/// parts (200, 200, 50), folded into one run; a part folded twice is the same fact again.
#[test]
fn a_long_run_is_recorded_in_parts_and_folded_into_one() {
    let lines: Vec<PaymentLine> = (0..450u128)
        .map(|n| PaymentLine {
            provider: ods("VCS01"),
            prescription_id: id(10_000 + n),
            kind: PaymentLineKind::Payment,
            amount: pounds("15.00"),
            positions: vec![1],
        })
        .collect();
    let through = day(5, 31);
    let parts = PaymentRunRecorded::in_parts(id(77), ods("ANC01"), through, lines);
    let sizes: Vec<(u32, u32, usize)> = parts
        .iter()
        .map(|p| (p.part, p.parts, p.lines.len()))
        .collect();
    assert_eq!(sizes, [(1, 3, 200), (2, 3, 200), (3, 3, 50)]);
    let mut history = History::new();
    for part in &parts {
        history.push(Event::PaymentRunRecorded(part.clone()));
    }
    history.push(Event::PaymentRunRecorded(parts[1].clone()));
    let models = history.fold();
    let run = models.ledger.run(id(77)).unwrap();
    assert_eq!(run.lines.len(), 450);
    let recorded: Vec<PaymentLine> = parts.iter().flat_map(|p| p.lines.clone()).collect();
    assert_eq!(run.lines.iter().collect::<Vec<_>>(), recorded);
    assert_eq!(run.parts, 3);
    assert_eq!(run.parts_recorded.len(), 3);
}

/// A charged session's position, place and flags share one word: setting either flag leaves
/// the rest as it was, up to the largest position and place a session may carry, and a snapshot
/// reads back what it wrote.
#[test]
fn a_charged_sessions_flags_leave_its_position_and_place_alone() {
    use crate::compact::Packed;
    for (position, place) in [(1, 0), (26_847_341, 11), ((1 << 40) - 1, (1 << 22) - 1)] {
        let mut session = ChargedSession::charged(place, position);
        assert!(!session.attended() && !session.paid());
        session.mark_paid();
        assert!(session.paid() && !session.attended());
        session.mark_attended();
        assert!(session.paid() && session.attended());
        assert_eq!((session.position(), session.place()), (position, place));
        let mut bytes = Vec::new();
        session.pack(&mut bytes);
        assert_eq!(ChargedSession::unpack(&mut bytes.as_slice()), Some(session));
    }
    assert!(
        !ChargedSession::chargeable(1 << 22),
        "past the place's bits"
    );
}

#[test]
#[should_panic(expected = "positions stay below 2^40")]
fn a_charged_session_refuses_a_position_its_place_would_overwrite() {
    ChargedSession::charged(5, 1 << 40);
}

/// Every rule has its own label, and a tariff rule's label names its clause as terms files do.
#[test]
fn each_rule_has_its_own_label() {
    use crate::compact::Listed;
    use followfund_contracts::terms::Clause;
    let labels: std::collections::BTreeSet<&str> = Rule::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(labels.len(), Rule::ALL.len());
    assert_eq!(
        Rule::Tariff(Clause::MissedSessionFee).label(),
        "tariff:missed_session_fee"
    );
    for rule in Rule::ALL {
        if let Rule::Tariff(clause) = rule {
            let named = serde_json::to_value(clause).unwrap();
            assert_eq!(rule.label(), format!("tariff:{}", named.as_str().unwrap()));
        }
    }
}

#[test]
fn a_funding_finds_its_agreement_by_place() {
    let mut given = Given::self_delivering();
    given.issued(day(4, 2), SELF_DELIVERY);
    let ledger = given.ledger();
    let funding = ledger.funding(PRESCRIPTION).expect("funded");
    let agreement = ledger.agreement_of(funding);
    assert_eq!(funding.agreement, 1, "the second agreement signed");
    assert_eq!(agreement.agreement_id, SELF_DELIVERY);
    assert_eq!(
        (&agreement.anchor, &agreement.provider),
        (&ods("ANC01"), &ods("ANC01"))
    );
    ledger.assert_consistent();
}

#[test]
#[should_panic(expected = "names an agreement the ledger does not hold")]
fn a_snapshot_whose_funding_names_no_agreement_is_refused() {
    let mut ledger = one_funding();
    let place = ledger.funding.place(&PRESCRIPTION).expect("funded");
    ledger.funding.at_mut(place).agreement = 2;
    ledger.assert_consistent();
}

#[test]
fn an_account_id_is_written_as_its_number_and_the_last_number_is_refused() {
    let id = AccountId::numbered(1_204);
    let written = rmp_serde::to_vec(&id).unwrap();
    assert_eq!(written, rmp_serde::to_vec(&1_204u32).unwrap());
    assert_eq!(rmp_serde::from_slice::<AccountId>(&written).unwrap(), id);
    let last = rmp_serde::to_vec(&u32::MAX).unwrap();
    let refused = rmp_serde::from_slice::<AccountId>(&last).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("an account number is too large")
    );
}

#[test]
#[should_panic(expected = "a funding is listed once")]
fn a_snapshot_that_lists_a_funding_twice_is_refused() {
    let mut ledger = one_funding();
    ledger.by_anchor.get_mut(&ods("ANC01")).unwrap().push(0);
    ledger.assert_consistent();
}

/// A ledger holding one funded prescription, to spoil as a bad snapshot would.
fn one_funding() -> Ledger {
    let mut given = Given::new();
    given.issued(day(4, 2), AGREEMENT);
    given.ledger().clone()
}

#[test]
#[should_panic(expected = "every funding is listed")]
fn a_snapshot_that_lists_a_funding_under_no_anchor_is_refused() {
    let mut ledger = one_funding();
    ledger.by_anchor.clear();
    ledger.assert_consistent();
}

/// A funding with sessions charged and paid, one retracted after payment, an accrual waiting
/// and accounts numbered reads back from its packed form, and from no shorter one.
#[test]
fn a_funding_reads_back_through_its_packed_form_and_no_shorter() {
    use crate::compact::Packed;
    let mut given = Given::new();
    given.issued(day(5, 1), AGREEMENT);
    given.attended(day(5, 4), 0).attended(day(5, 11), 1);
    given.run(day(6, 2), 1, day(5, 31));
    given.on(day(6, 5), "session.retracted", json!({"prescription_id": PRESCRIPTION, "session_id": Uuid::from_u128(1_001), "reason": "recorded_in_error"}));
    given.attended(day(6, 8), 2);
    let funding = given.ledger().funding(PRESCRIPTION).unwrap().clone();
    assert!(!funding.sessions.is_empty() && !funding.accruals.is_empty());
    assert!(funding.earned_account_id.is_some() && funding.committed_account_id.is_some());
    let mut bytes = Vec::new();
    funding.pack(&mut bytes);
    let mut read = bytes.as_slice();
    assert_eq!(Funding::unpack(&mut read).as_ref(), Some(&funding));
    assert!(read.is_empty());
    for cut in 0..bytes.len() {
        assert_eq!(Funding::unpack(&mut &bytes[..cut]), None, "cut to {cut}");
    }
    // The id, the agreement's place and the year 2026 (a byte and two), then the two amounts
    // and two counts, then the flag.
    assert_eq!(bytes[16..19], [0, 0xd4, 0x1f]);
    let mut rest = &bytes[19..];
    for _ in 0..4 {
        crate::varint::take(&mut rest).unwrap();
    }
    let open = bytes.len() - rest.len();
    assert_eq!(bytes[open], 1, "the funding is open");
    let mut changed = bytes.clone();
    changed[open] = 2;
    assert_eq!(
        Funding::unpack(&mut changed.as_slice()),
        None,
        "a flag of 2"
    );
}
