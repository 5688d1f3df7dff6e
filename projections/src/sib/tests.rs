//! SIB figures worked by hand: cohort improvement on the sliding scale, a person's window, the
//! payers' split and caps, reversals, and sign-off before anything is due.

use chrono::NaiveDate;
use followfund_contracts::events::{
    AgeBand, Instrument, LongTermCondition, MeasureStage, OutcomeMeasured, ReferralReason,
    ReferralReceived, ReferralSource, SibContractPublished, SibOutcomeClaimed, SibOutcomeVerified,
    SibOutcomeWithdrawn, SibPaymentMade, WithdrawalReason,
};
use followfund_contracts::terms::read_terms;
use followfund_contracts::{Event, Money, PersonId};
use uuid::Uuid;

use super::OutcomeStatus;
use crate::fixtures::{History, id, ods, redirected};

fn pounds(text: &str) -> Money {
    text.parse().unwrap()
}

fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

fn contract(file: &str) -> SibContractPublished {
    let terms = read_terms(file).unwrap();
    match terms.publications.into_iter().next().unwrap().event {
        Event::SibContractPublished(contract) => *contract,
        other => panic!("{other:?}"),
    }
}

fn ways_to_wellness() -> SibContractPublished {
    contract(include_str!(
        "../../../contracts/rules/sib/ways-to-wellness.toml"
    ))
}

/// A history that opens with Ways to Wellness published on 1 April 2015, and the contract's id.
fn ways_to_wellness_published() -> (History, Uuid) {
    let mut history = History::new();
    let terms = ways_to_wellness();
    let contract_id = terms.contract_id;
    history.push_on(
        Event::SibContractPublished(Box::new(terms)),
        day(2015, 4, 1),
    );
    (history, contract_id)
}

fn rate_card() -> SibContractPublished {
    contract(include_str!(
        "../../../contracts/rules/sib/rate-card-example.toml"
    ))
}

fn referred(referral: Uuid, provider: &str, age_band: AgeBand) -> Event {
    Event::ReferralReceived(Box::new(ReferralReceived {
        referral_id: referral,
        person_id: PersonId(Uuid::from_u128(referral.as_u128() + 1_000)),
        source: ReferralSource::GpPractice,
        referrer: None,
        link_worker_organisation: ods(provider),
        reasons: vec![ReferralReason::Loneliness],
        age_band,
        conditions: vec![LongTermCondition::Diabetes],
    }))
}

fn measured(referral: Uuid, instrument: Instrument, stage: MeasureStage, items: Vec<u8>) -> Event {
    Event::OutcomeMeasured(OutcomeMeasured {
        referral_id: referral,
        instrument,
        stage,
        item_scores: items,
    })
}

/// Star domains all at 4, then `gain_eighths` of them one higher: a mean gain of n ÷ 8.
fn star_pair(history: &mut History, referral: Uuid, gain_eighths: usize, on: NaiveDate) {
    history.push_on(
        measured(
            referral,
            Instrument::WellbeingStar,
            MeasureStage::Baseline,
            vec![4; 8],
        ),
        on,
    );
    let mut later = vec![4u8; 8];
    for item in later.iter_mut().take(gain_eighths) {
        *item = 5;
    }
    let follow_up = on + chrono::Months::new(12);
    history.push_on(
        measured(
            referral,
            Instrument::WellbeingStar,
            MeasureStage::FollowUp,
            later,
        ),
        follow_up,
    );
}

/// Five eligible people gain 7, 8, 7, 8 and 8 eighths of a Star point: 0.95 on average, half way
/// between 0.5 and 1.4, so the Star outcome earns half of its 30% of the £8.2m pot: £1,230,000.00.
/// A sixth person aged 39 gains 8 points and counts for nothing.
#[test]
fn the_cohorts_average_star_gain_earns_its_share_of_the_pot_on_the_sliding_scale() {
    let (mut history, contract_id) = ways_to_wellness_published();
    for (n, gain) in [7, 8, 7, 8, 8].into_iter().enumerate() {
        let referral = id(100 + n as u128);
        history.push_on(
            referred(referral, "WTW01", AgeBand::From55To64),
            day(2016, 1, 4),
        );
        star_pair(&mut history, referral, gain, day(2016, 1, 11));
    }
    let aged_39 = id(200);
    history.push_on(
        referred(aged_39, "WTW01", AgeBand::From25To39),
        day(2016, 1, 4),
    );
    history.push_on(
        measured(
            aged_39,
            Instrument::WellbeingStar,
            MeasureStage::Baseline,
            vec![1; 8],
        ),
        day(2016, 1, 11),
    );
    history.push_on(
        measured(
            aged_39,
            Instrument::WellbeingStar,
            MeasureStage::FollowUp,
            vec![9; 8],
        ),
        day(2017, 1, 11),
    );
    let sib = history.fold().sib;
    let contract = sib.contract(contract_id).unwrap();
    let figures = sib.cohort_figures(contract, day(2017, 6, 1));
    assert_eq!(figures.people, 5);
    let star = &figures.outcomes[0];
    assert_eq!(star.measured, 5);
    assert_eq!(star.result, Some("0.95".parse().unwrap()));
    assert_eq!(star.share_earned, "0.5".parse().unwrap());
    assert_eq!(star.earned, pounds("1230000.00"));
    // No costs yet, and the cost outcome opens only after 24 months.
    assert_eq!(figures.outcomes[1].earned, Money::zero());
}

#[test]
fn a_persons_measures_take_the_room_they_use() {
    let mut history = History::new();
    let referral = id(300);
    history.push_on(
        referred(referral, "WTW01", AgeBand::From55To64),
        day(2016, 1, 4),
    );
    for (stage, score) in [(MeasureStage::Baseline, 1), (MeasureStage::FollowUp, 9)] {
        let items = vec![score; 8];
        history.push_on(
            measured(referral, Instrument::WellbeingStar, stage, items),
            day(2016, 2, 1),
        );
    }
    let sib = history.fold().sib;
    let measures = &sib.person(referral).unwrap().measures;
    assert_eq!(measures.len(), 2);
    // Grown by doubling, the list would hold room for four.
    assert_eq!(measures.capacity(), 2);
}

#[test]
fn a_person_redirected_to_another_service_leaves_the_cohort_and_reads_back_so() {
    let (mut history, contract_id) = ways_to_wellness_published();
    for n in 0..3 {
        history.push_on(
            referred(id(400 + n), "WTW01", AgeBand::From55To64),
            day(2016, 1, 4),
        );
    }
    history.push_on(redirected(id(401), "OTHER1"), day(2016, 1, 5));
    let sib = history.fold().sib;

    let text = serde_json::to_string(&sib).unwrap();
    let loaded: super::Sib = serde_json::from_str(&text).unwrap();
    assert_eq!(loaded, sib);
    loaded.assert_consistent();
    let moved = loaded.person(id(401)).unwrap();
    assert_eq!(*loaded.provider(moved), ods("OTHER1"));
    let contract = loaded.contract(contract_id).unwrap();
    let cohort: Vec<Uuid> = (loaded.cohort(contract))
        .map(|person| person.referral_id)
        .collect();
    assert_eq!(cohort, [id(400), id(402)]);
}

#[test]
#[should_panic(expected = "people name numbered services")]
fn a_snapshot_whose_person_names_an_unnumbered_service_is_refused() {
    let mut history = History::new();
    history.push(referred(id(500), "WTW01", AgeBand::From55To64));
    let sib = history.fold().sib;
    let text = serde_json::to_string(&sib).unwrap();
    assert!(text.contains(r#""services":["WTW01"]"#), "{text}");
    let unnumbered = text.replace(r#""services":["WTW01"]"#, r#""services":[]"#);
    let loaded: super::Sib = serde_json::from_str(&unnumbered).unwrap();
    loaded.assert_consistent();
}

/// WEMWBS +3 at 6 months, with 30 days either side: baseline 40 on 1 May 2026, so the window runs
/// from 2 October to 1 December. A follow-up of 50 on 15 December is outside it: expired, not
/// met. One of 50 on 10 November is met; one of 42 then falls short.
#[test]
fn a_wemwbs_gain_measured_outside_its_window_is_not_met() {
    let cases = [
        (day(2026, 12, 15), 50, OutcomeStatus::Expired),
        (day(2026, 11, 10), 50, OutcomeStatus::Met),
        (day(2026, 11, 10), 42, OutcomeStatus::Failed),
    ];
    for (follow_up_on, total, expected) in cases {
        let mut history = History::new();
        let terms = rate_card();
        let contract_id = terms.contract_id;
        history.push_on(
            Event::SibContractPublished(Box::new(terms)),
            day(2026, 4, 1),
        );
        let referral = id(1);
        history.push_on(
            referred(referral, "ANC01", AgeBand::From40To54),
            day(2026, 4, 20),
        );
        let items = |total: u8| {
            let mut items = vec![2u8; 14];
            let mut left = total - 28;
            for item in &mut items {
                let add = left.min(3);
                *item += add;
                left -= add;
            }
            items
        };
        history.push_on(
            measured(
                referral,
                Instrument::Wemwbs,
                MeasureStage::Baseline,
                items(40),
            ),
            day(2026, 5, 1),
        );
        history.push_on(
            measured(
                referral,
                Instrument::Wemwbs,
                MeasureStage::FollowUp,
                items(total),
            ),
            follow_up_on,
        );
        let sib = history.fold().sib;
        let contract = sib.contract(contract_id).unwrap();
        let person = sib.person(referral).unwrap();
        let outcomes = sib.person_outcomes(contract, person, day(2027, 1, 1));
        let six_months = outcomes
            .iter()
            .find(|o| o.outcome_id == "wemwbs_6_months")
            .unwrap();
        assert_eq!(six_months.status, expected, "{}", six_months.detail);
    }
}

fn claim(contract_id: Uuid, claim_id: Uuid, period: &str, amount: &str) -> Event {
    Event::SibOutcomeClaimed(Box::new(SibOutcomeClaimed {
        claim_id,
        contract_id,
        outcome_id: "wemwbs_6_months".into(),
        referral_id: Some(id(1)),
        period: period.parse().unwrap(),
        amount: pounds(amount),
    }))
}

fn verified(contract_id: Uuid, claim_id: Uuid) -> Event {
    Event::SibOutcomeVerified(SibOutcomeVerified {
        claim_id,
        contract_id,
    })
}

/// The rate card splits 75% to QHM and 25% to ANC01. With QHM's cap lowered to £300.00, a first
/// £250.00 claim puts £187.50 on QHM and £62.50 on ANC01; a second in the same month wants
/// £187.50 more from QHM but only £112.50 is left under its cap, so £75.00 is capped away.
#[test]
fn a_payer_stops_at_its_cap_and_the_remainder_is_shown() {
    let mut terms = rate_card();
    terms.payers[0].cap = pounds("300.00");
    let contract_id = terms.contract_id;
    let mut history = History::new();
    history.push(Event::SibContractPublished(Box::new(terms)));
    for n in [1, 2] {
        history.push(claim(contract_id, id(n), "2026-11", "250.00"));
        history.push(verified(contract_id, id(n)));
    }
    let sib = history.fold().sib;
    let payments = sib.payments(sib.contract(contract_id).unwrap());
    let lines: Vec<(&str, Money, Money)> = payments
        .lines
        .iter()
        .map(|l| (l.payer.as_str(), l.amount, l.capped))
        .collect();
    assert_eq!(
        lines,
        [
            ("QHM", pounds("187.50"), Money::zero()),
            ("ANC01", pounds("62.50"), Money::zero()),
            ("QHM", pounds("112.50"), pounds("75.00")),
            ("ANC01", pounds("62.50"), Money::zero()),
        ]
    );
    assert_eq!(
        (payments.due, payments.capped),
        (pounds("425.00"), pounds("75.00"))
    );
    let qhm = payments
        .by_payer_period
        .iter()
        .find(|r| r.payer.as_str() == "QHM")
        .unwrap();
    assert_eq!((qhm.due, qhm.capped), (pounds("300.00"), pounds("75.00")));
}

/// A £250.00 outcome, paid by QHM (£187.50) in November, is withdrawn after audit in January:
/// January carries −£187.50 for QHM and −£62.50 for ANC01, and nothing stays due.
#[test]
fn a_withdrawal_after_payment_reverses_in_the_next_period() {
    let terms = rate_card();
    let contract_id = terms.contract_id;
    let mut history = History::new();
    history.push(Event::SibContractPublished(Box::new(terms)));
    history.push(claim(contract_id, id(1), "2026-11", "250.00"));
    history.push(verified(contract_id, id(1)));
    history.push(Event::SibPaymentMade(SibPaymentMade {
        contract_id,
        payer: ods("QHM"),
        period: "2026-11".parse().unwrap(),
        amount: pounds("187.50"),
    }));
    history.push(Event::SibOutcomeWithdrawn(SibOutcomeWithdrawn {
        claim_id: id(1),
        contract_id,
        reason: WithdrawalReason::EvidenceInvalid,
        period: "2027-01".parse().unwrap(),
    }));
    let sib = history.fold().sib;
    let payments = sib.payments(sib.contract(contract_id).unwrap());
    let january: Vec<(&str, Money)> = payments
        .lines
        .iter()
        .filter(|l| l.period.to_string() == "2027-01")
        .map(|l| (l.payer.as_str(), l.amount))
        .collect();
    assert_eq!(
        january,
        [("QHM", pounds("-187.50")), ("ANC01", pounds("-62.50"))]
    );
    assert_eq!(payments.due, Money::zero());
    assert_eq!(payments.paid, pounds("187.50"));
    // The investor's position counts what payers actually paid.
    assert_eq!(payments.investors[0].received, pounds("187.50"));
    assert_eq!(payments.investors[0].capital, pounds("30000.00"));
}

#[test]
fn nothing_is_due_before_the_verifier_signs_off() {
    let terms = rate_card();
    let contract_id = terms.contract_id;
    let mut history = History::new();
    history.push(Event::SibContractPublished(Box::new(terms)));
    history.push(claim(contract_id, id(1), "2026-11", "250.00"));
    let sib = history.fold().sib;
    let payments = sib.payments(sib.contract(contract_id).unwrap());
    assert!(payments.lines.is_empty());
    assert_eq!(payments.due, Money::zero());
}

fn cost(
    contract_id: Uuid,
    cohort: followfund_contracts::events::Cohort,
    people: u32,
    amount: &str,
) -> Event {
    Event::CohortCostRecorded(followfund_contracts::events::CohortCostRecorded {
        contract_id,
        financial_year: followfund_contracts::terms::FinancialYear::starting(2017),
        cohort,
        people,
        cost: pounds(amount),
    })
}

/// 1,200 people cost £1,602,000.00 (£1,335 each) against a control cohort of 800 costing
/// £1,200,000.00 (£1,500 each): 11% saved, which the illustrative scale (nothing at 0, all at
/// 20%) turns into 0.55 of the cost outcome's 70% of £8.2m: £3,157,000.00, but only from 24
/// months after the contract began (1 April 2017).
#[test]
fn secondary_care_savings_against_the_control_cohort_earn_their_share_after_24_months() {
    use followfund_contracts::events::Cohort;
    let terms = ways_to_wellness();
    let contract_id = terms.contract_id;
    let mut history = History::new();
    history.push(Event::SibContractPublished(Box::new(terms)));
    history.push(cost(contract_id, Cohort::Intervention, 1_200, "1602000.00"));
    history.push(cost(contract_id, Cohort::Control, 800, "1200000.00"));
    let sib = history.fold().sib;
    let contract = sib.contract(contract_id).unwrap();
    let early = sib.cohort_figures(contract, day(2017, 3, 31));
    assert_eq!(
        early.outcomes[1].earned,
        Money::zero(),
        "{}",
        early.outcomes[1].detail
    );
    let figures = sib.cohort_figures(contract, day(2017, 4, 1));
    let saved = figures.cost.as_ref().unwrap();
    assert_eq!(saved.reduction, "0.11".parse().unwrap());
    assert_eq!(figures.outcomes[1].share_earned, "0.55".parse().unwrap());
    assert_eq!(figures.outcomes[1].earned, pounds("3157000.00"));
}

/// Ways to Wellness splits 50/30/20 until March 2019 and puts everything on the CCG (13T) from
/// April 2019. A £1,000.00 cohort claim for March 2019 splits £500.00 / £300.00 / £200.00; the
/// same for April 2019 is all the CCG's.
#[test]
fn the_phase_of_a_claims_month_decides_the_payers_shares() {
    let terms = ways_to_wellness();
    let contract_id = terms.contract_id;
    let mut history = History::new();
    history.push(Event::SibContractPublished(Box::new(terms)));
    for (n, period) in [(1, "2019-03"), (2, "2019-04")] {
        history.push(Event::SibOutcomeClaimed(Box::new(SibOutcomeClaimed {
            claim_id: id(n),
            contract_id,
            outcome_id: "star_improvement".into(),
            referral_id: None,
            period: period.parse().unwrap(),
            amount: pounds("1000.00"),
        })));
        history.push(verified(contract_id, id(n)));
    }
    let sib = history.fold().sib;
    let payments = sib.payments(sib.contract(contract_id).unwrap());
    let lines: Vec<(String, &str, Money)> = payments
        .lines
        .iter()
        .map(|l| (l.period.to_string(), l.payer.as_str(), l.amount))
        .collect();
    let expected = [
        ("2019-03", "13T", "500.00"),
        ("2019-03", "CBO01", "300.00"),
        ("2019-03", "SOF01", "200.00"),
        ("2019-04", "13T", "1000.00"),
    ]
    .map(|(period, payer, amount)| (period.to_string(), payer, pounds(amount)));
    assert_eq!(lines, expected);
}

/// With a total cap of £400.00 and roomy payer caps, a second £250.00 claim finds only £150.00
/// left in all: QHM gets £150.00 of its £187.50 and ANC01 nothing of its £62.50.
#[test]
fn the_total_cap_stops_every_payer() {
    let mut terms = rate_card();
    terms.total_cap = pounds("400.00");
    let contract_id = terms.contract_id;
    let mut history = History::new();
    history.push(Event::SibContractPublished(Box::new(terms)));
    for n in [1, 2] {
        history.push(claim(contract_id, id(n), "2026-12", "250.00"));
        history.push(verified(contract_id, id(n)));
    }
    let sib = history.fold().sib;
    let payments = sib.payments(sib.contract(contract_id).unwrap());
    let second: Vec<(Money, Money)> = payments.lines[2..]
        .iter()
        .map(|l| (l.amount, l.capped))
        .collect();
    assert_eq!(
        second,
        [
            (pounds("150.00"), pounds("37.50")),
            (Money::zero(), pounds("62.50"))
        ]
    );
    assert_eq!(payments.due, pounds("400.00"));
}

fn packed_measure(score: Option<&str>) -> super::Measure {
    super::Measure {
        instrument: Instrument::Wemwbs,
        stage: MeasureStage::FollowUp,
        on: day(2026, 5, 1),
        score: score.map(|score| score.parse().unwrap()),
        position: 1_234_567,
    }
}

#[test]
fn a_measure_reads_back_through_its_packed_form_and_no_shorter() {
    use crate::compact::Packed;
    let scores = [
        None,
        Some("0"),
        Some("23.4"),
        Some("-1.25"),
        Some("79228162514264337593543950335"),
        Some("-0.0000000000000000000000000001"),
    ];
    for score in scores {
        let mut bytes = Vec::new();
        packed_measure(score).pack(&mut bytes);
        let mut read = bytes.as_slice();
        assert_eq!(
            super::Measure::unpack(&mut read),
            Some(packed_measure(score))
        );
        assert!(read.is_empty(), "{score:?} read to its end");
        for cut in 0..bytes.len() {
            let short = super::Measure::unpack(&mut &bytes[..cut]);
            assert_eq!(short, None, "{score:?} cut to {cut} bytes");
        }
    }
}

#[test]
fn a_packed_measure_with_no_such_instrument_or_scale_is_refused() {
    use crate::compact::Packed;
    let mut bytes = Vec::new();
    packed_measure(Some("1.5")).pack(&mut bytes);
    // Places, a day of three bytes, a position of three, then the score's head: scale 1.
    let head = 2 + 3 + 3;
    assert_eq!(bytes[head], 2);
    let changed = |at: usize, byte: u8| {
        let mut changed = bytes.clone();
        changed[at] = byte;
        super::Measure::unpack(&mut changed.as_slice())
    };
    assert!(changed(head, 2).is_some());
    assert_eq!(changed(0, 200), None, "no instrument at place 200");
    assert_eq!(changed(1, 200), None, "no stage at place 200");
    assert_eq!(changed(head, 30), None, "a scale of 29");
    assert_eq!(
        changed(head, 29).unwrap().score,
        Some("0.0000000000000000000000000015".parse().unwrap())
    );
}
