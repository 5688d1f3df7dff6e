//! ARRS figures worked by hand. 2019/20 has 366 days (it holds 29 February 2020) and 2020/21 has
//! 365; amounts round to the penny, halves away from zero.

use chrono::NaiveDate;
use followfund_contracts::events::{
    ArrsClaimPaid, ArrsClaimSubmitted, ArrsRulesPublished, Employer, LinkWorkerCostPaid,
    LinkWorkerEmployed, LinkWorkerWteChanged, PcnPopulationRecorded, PcnRegistered,
};
use followfund_contracts::terms::{Entitlement, FinancialYear, YearMonth};
use followfund_contracts::{Event, Money, Nation, PcnCode};
use uuid::Uuid;

use super::ArrsError;
use crate::fixtures::{History, id, ods};

fn pounds(text: &str) -> Money {
    text.parse().unwrap()
}

fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

fn month(text: &str) -> YearMonth {
    text.parse().unwrap()
}

fn pcn() -> PcnCode {
    PcnCode::parse("U12345").unwrap()
}

/// 2019/20 as published: bands of 30,000 / 100,000 / 50,000, £34,113 a WTE, from 1 July 2019.
fn rules_2019(version: u32, effective_from: NaiveDate, maximum: &str) -> Event {
    Event::ArrsRulesPublished(Box::new(ArrsRulesPublished {
        financial_year: FinancialYear::starting(2019),
        version,
        effective_from,
        source: "test".into(),
        entitlement: Entitlement::WteByPopulation {
            minimum_population: 30_000,
            one_wte_up_to: 100_000,
            population_per_further_wte: 50_000,
        },
        link_worker_maximum_per_wte: pounds(maximum),
        supplier_contribution_per_wte: pounds("2400.00"),
    }))
}

/// 2020/21: a combined sum at £7.131 per weighted patient and `maximum` a WTE.
fn rules_2020(version: u32, maximum: &str) -> Event {
    Event::ArrsRulesPublished(Box::new(ArrsRulesPublished {
        financial_year: FinancialYear::starting(2020),
        version,
        effective_from: day(2020, 4, 1),
        source: "test".into(),
        entitlement: Entitlement::CombinedSum {
            rate_per_weighted_patient: Some("7.131".parse().unwrap()),
        },
        link_worker_maximum_per_wte: pounds(maximum),
        supplier_contribution_per_wte: pounds("2400.00"),
    }))
}

fn registered_pcn() -> Event {
    Event::PcnRegistered(Box::new(PcnRegistered {
        pcn: pcn(),
        name: "Riverside PCN".into(),
        icb: ods("QHM"),
        member_practices: vec![ods("A81001")],
        nation: Nation::England,
    }))
}

fn population(on: NaiveDate, raw: u32, weighted: &str) -> Event {
    Event::PcnPopulationRecorded(PcnPopulationRecorded {
        pcn: pcn(),
        on,
        raw_list_size: raw,
        weighted_list_size: weighted.parse().unwrap(),
    })
}

fn employed(worker: Uuid, employer: Employer, wte: &str, start: NaiveDate) -> Event {
    Event::LinkWorkerEmployed(Box::new(LinkWorkerEmployed {
        link_worker_id: worker,
        pcn: pcn(),
        employer,
        wte: wte.parse().unwrap(),
        start_date: start,
        monthly_salary: pounds("2083.33"),
        monthly_on_costs: pounds("416.67"),
    }))
}

fn cost(worker: Uuid, in_month: &str, amount: &str) -> Event {
    Event::LinkWorkerCostPaid(LinkWorkerCostPaid {
        link_worker_id: worker,
        month: month(in_month),
        amount: pounds(amount),
    })
}

/// A PCN of 50,000 people (1 WTE) under the 2019/20 rules.
fn pcn_2019() -> History {
    let mut history = History::new();
    history.push(rules_2019(1, day(2019, 7, 1), "34113.00"));
    history.push(registered_pcn());
    history.push(population(day(2019, 4, 1), 50_000, "48000"));
    history
}

#[test]
fn a_pcns_population_decides_its_whole_link_workers() {
    let cases = [
        (29_999, 0),
        (30_000, 1),
        (100_000, 1),
        (100_001, 2),
        (149_999, 2),
        (150_000, 3),
        (250_000, 5),
    ];
    for (raw, wte) in cases {
        let mut history = History::new();
        history.push(rules_2019(1, day(2019, 7, 1), "34113.00"));
        history.push(registered_pcn());
        history.push(population(day(2019, 4, 1), raw, "1"));
        let august = history.fold().arrs.month(&pcn(), month("2019-08")).unwrap();
        assert_eq!(august.entitled_wte, Some(wte), "a list of {raw}");
    }
}

/// £25,000 a year is £2,083.33 a month; with £416.67 on-costs the worker costs £2,500.00. From
/// 1 July 2019 the maximum for a 31-day month is £34,113 × 1 × 31 ÷ 366 = £2,889.35, so the
/// whole cost is claimable; June, before the scheme began, has nothing.
#[test]
fn a_full_time_worker_from_the_schemes_start_is_reimbursed_the_cost() {
    let worker = id(1);
    let mut history = pcn_2019();
    history.push(employed(worker, Employer::Pcn, "1", day(2019, 7, 1)));
    history.push(cost(worker, "2019-07", "2500.00"));
    let year = history
        .fold()
        .arrs
        .year(&pcn(), FinancialYear::starting(2019), day(2019, 8, 1))
        .unwrap();
    let july = &year.months[3];
    assert_eq!((july.label.as_str(), july.month), ("M04", month("2019-07")));
    let line = &july.workers[0];
    assert_eq!(line.maximum, pounds("2889.35"));
    assert_eq!(line.days_in_post, 31);
    assert_eq!(line.claimable, pounds("2500.00"));
    assert_eq!(line.cut_by_maximum, Money::zero());
    assert_eq!(july.limit, pounds("2889.35"));
    assert_eq!(july.claimable, pounds("2500.00"));
    assert!(
        year.months[2].workers.is_empty(),
        "June 2019 is before the scheme"
    );
    assert_eq!(year.months[2].limit, Money::zero());
    let rules: Vec<&str> = line.explain.iter().map(|e| e.rule).collect();
    assert_eq!(rules, ["maximum", "cost", "claimable"]);
    assert_eq!(
        line.explain[0].detail,
        "£34113.00 × 1 WTE × 31 days ÷ 366 (rules 2019/20 v1)"
    );
}

/// 0.6 WTE supplied by a VCSE from 16 August: 16 days in post. Maximum £34,113 × 0.6 × 16 ÷ 366
/// = £894.77; the supplier contribution £2,400 × 0.6 × 16 ÷ 366 = £62.95; with £700.00 paid,
/// £762.95 is claimable.
#[test]
fn a_part_time_supplied_worker_starting_mid_month_is_pro_rata() {
    let worker = id(2);
    let supplier = Employer::VcseSupplier {
        supplier: ods("VCS01"),
    };
    let mut history = pcn_2019();
    history.push(employed(worker, supplier, "0.6", day(2019, 8, 16)));
    history.push(cost(worker, "2019-08", "700.00"));
    let august = history.fold().arrs.month(&pcn(), month("2019-08")).unwrap();
    let line = &august.workers[0];
    assert_eq!(line.days_in_post, 16);
    assert_eq!(line.maximum, pounds("894.77"));
    assert_eq!(line.supplier_contribution, pounds("62.95"));
    assert_eq!(line.claimable, pounds("762.95"));
    assert_eq!(line.supplier, Some(ods("VCS01")));
}

/// £3,200.00 in September against a maximum of £34,113 × 30 ÷ 366 = £2,796.15: £403.85 is cut.
#[test]
fn a_worker_costing_more_than_the_maximum_is_capped_and_the_cut_shown() {
    let worker = id(3);
    let mut history = pcn_2019();
    history.push(employed(worker, Employer::Pcn, "1", day(2019, 7, 1)));
    history.push(cost(worker, "2019-09", "3200.00"));
    let september = history.fold().arrs.month(&pcn(), month("2019-09")).unwrap();
    assert_eq!(september.workers[0].claimable, pounds("2796.15"));
    assert_eq!(september.workers[0].cut_by_maximum, pounds("403.85"));
}

/// Two full-time workers at £2,500.00 each in August, and an entitlement of 1 WTE: the month's
/// limit is £2,889.35, so £5,000.00 becomes £2,889.35 and £2,110.65 is cut.
#[test]
fn more_link_workers_than_the_entitlement_are_limited_to_it() {
    let mut history = pcn_2019();
    for worker in [id(4), id(5)] {
        history.push(employed(worker, Employer::Pcn, "1", day(2019, 7, 1)));
        history.push(cost(worker, "2019-08", "2500.00"));
    }
    let august = history.fold().arrs.month(&pcn(), month("2019-08")).unwrap();
    assert_eq!(august.workers_claimable, pounds("5000.00"));
    assert_eq!(august.limit, pounds("2889.35"));
    assert_eq!(august.claimable, pounds("2889.35"));
    assert_eq!(august.cut_by_entitlement, pounds("2110.65"));
}

/// Hours fall from 1 WTE to 0.5 on 16 September: 15 days at 1 and 15 at 0.5, so the maximum is
/// £34,113 × (15 + 7.5) ÷ 366 = £2,097.11, rounded once.
#[test]
fn a_change_of_hours_mid_month_prices_each_stretch() {
    let worker = id(6);
    let mut history = pcn_2019();
    history.push(employed(worker, Employer::Pcn, "1", day(2019, 7, 1)));
    history.push(Event::LinkWorkerWteChanged(LinkWorkerWteChanged {
        link_worker_id: worker,
        wte: "0.5".parse().unwrap(),
        effective_from: day(2019, 9, 16),
    }));
    history.push(cost(worker, "2019-09", "5000.00"));
    let september = history.fold().arrs.month(&pcn(), month("2019-09")).unwrap();
    assert_eq!(september.workers[0].maximum, pounds("2097.11"));
}

/// 2020/21, weighted list 1,000 → a combined sum of £7,131.00; one worker costing £3,000.00 a
/// month. April: maximum £35,389 × 30 ÷ 365 = £2,908.68. May: maximum £3,005.64, so the
/// £3,000.00 cost. £1,222.32 is left for June, whose £2,908.68 is cut to it; July gets nothing.
#[test]
fn claims_stop_at_the_combined_sum_and_what_is_unused_lapses() {
    let worker = id(7);
    let mut history = History::new();
    history.push(rules_2020(1, "35389.00"));
    history.push(registered_pcn());
    history.push(population(day(2020, 1, 1), 1_200, "1000"));
    history.push(employed(worker, Employer::Pcn, "1", day(2020, 4, 1)));
    for in_month in ["2020-04", "2020-05", "2020-06", "2020-07"] {
        history.push(cost(worker, in_month, "3000.00"));
    }
    let arrs = history.fold().arrs;
    let year = arrs
        .year(&pcn(), FinancialYear::starting(2020), day(2021, 4, 1))
        .unwrap();
    assert_eq!(year.combined_sum, Some(pounds("7131.00")));
    let claimable: Vec<Money> = year.months[..4].iter().map(|m| m.claimable).collect();
    let expected = ["2908.68", "3000.00", "1222.32", "0.00"].map(pounds);
    assert_eq!(claimable, expected);
    assert_eq!(year.months[2].cut_by_entitlement, pounds("1686.36"));
    assert_eq!(year.totals.claimable, pounds("7131.00"));
    assert_eq!(year.totals.unused, Money::zero());
    // A PCN that claims nothing lets the whole sum lapse at 31 March.
    let mut idle = History::new();
    idle.push(rules_2020(1, "35389.00"));
    idle.push(registered_pcn());
    idle.push(population(day(2020, 1, 1), 1_200, "1000"));
    let arrs = idle.fold().arrs;
    let during = arrs
        .year(&pcn(), FinancialYear::starting(2020), day(2021, 3, 31))
        .unwrap();
    assert_eq!(
        (during.totals.unused, during.totals.lapsed),
        (pounds("7131.00"), Money::zero())
    );
    let after = arrs
        .year(&pcn(), FinancialYear::starting(2020), day(2021, 4, 1))
        .unwrap();
    assert_eq!(after.totals.lapsed, pounds("7131.00"));
}

/// April 2020 was claimed and paid at £2,908.68 under v1 (£35,389). A revision backdated to
/// 1 April raises the maximum to £36,000 (a figure made up for this test): April's maximum is
/// now £36,000 × 30 ÷ 365 = £2,958.90, and the £50.22 difference is an adjustment.
#[test]
fn a_backdated_revision_turns_claimed_months_into_adjustments() {
    let worker = id(8);
    let claim = id(9);
    let mut history = History::new();
    history.push(rules_2020(1, "35389.00"));
    history.push(registered_pcn());
    history.push(population(day(2020, 1, 1), 52_000, "50000"));
    history.push(employed(worker, Employer::Pcn, "1", day(2020, 4, 1)));
    history.push(cost(worker, "2020-04", "3000.00"));
    history.push(Event::ArrsClaimSubmitted(ArrsClaimSubmitted {
        claim_id: claim,
        pcn: pcn(),
        month: month("2020-04"),
        amount: pounds("2908.68"),
    }));
    history.push(Event::ArrsClaimPaid(ArrsClaimPaid {
        claim_id: claim,
        pcn: pcn(),
        amount: pounds("2908.68"),
        paid_on: day(2020, 5, 20),
    }));
    let before = history.fold().arrs.month(&pcn(), month("2020-04")).unwrap();
    assert_eq!(
        (before.claimed, before.paid, before.adjustment),
        (pounds("2908.68"), pounds("2908.68"), Money::zero())
    );
    let revision = history.push(rules_2020(2, "36000.00"));
    let after = history.fold().arrs.month(&pcn(), month("2020-04")).unwrap();
    assert_eq!(after.rules_version, Some(2));
    assert_eq!(after.claimable, pounds("2958.90"));
    assert_eq!(after.adjustment, pounds("50.22"));
    let adjustment = after
        .explain
        .iter()
        .find(|e| e.rule == "adjustment")
        .unwrap();
    assert!(
        adjustment.detail.contains("Some(1)") && adjustment.detail.contains("(v2)"),
        "{}",
        adjustment.detail
    );
    assert_eq!(after.workers[0].explain[0].position, Some(revision));
}

#[test]
fn a_year_without_rules_has_nothing_to_claim() {
    let arrs = pcn_2019().fold().arrs;
    let refused = arrs.year(&pcn(), FinancialYear::starting(2021), day(2021, 9, 1));
    assert_eq!(
        refused,
        Err(ArrsError::NoRules(FinancialYear::starting(2021)))
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("no ARRS rules are published for 2021/22")
    );
    let unknown = arrs.month(&PcnCode::parse("U99999").unwrap(), month("2019-08"));
    assert!(matches!(unknown, Err(ArrsError::UnknownPcn(_))));
}
