//! Payment runs at national scale: 5,000 providers, 100,000 funded prescriptions and 1,000,000
//! attendances folded into the ledger, then a payment run for the anchor that pays them all.
//! Run with `cargo bench --bench ledger [-- --attendances N]`.

use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use followfund_contracts::events::{
    ActivityType, AgreementSigned, BudgetAccount, BudgetAllocated, PaymentRunRecorded,
    PrescriptionIssued, SessionAttended,
};
use followfund_contracts::terms::{FinancialYear, Tariff};
use followfund_contracts::{Event, OdsCode};
use followfund_projections::{Fact, ReadModels};
use uuid::Uuid;

const PROVIDERS: u32 = 5_000;
const SESSIONS_PER_PRESCRIPTION: u64 = 10;

fn main() {
    let attendances = argument("--attendances").unwrap_or(1_000_000);
    let prescriptions = attendances / SESSIONS_PER_PRESCRIPTION;
    let anchor = OdsCode::parse("ANC01").unwrap();
    let mut models = ReadModels::default();
    let mut position = 0;
    let mut fold = |models: &mut ReadModels, day: NaiveDate, event: Event| {
        position += 1;
        let occurred_at = Utc.from_utc_datetime(&day.and_hms_opt(9, 0, 0).unwrap());
        let fact = Fact {
            position,
            occurred_at,
            event,
        };
        models.apply(&fact);
    };
    let start = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
    let began = Instant::now();
    fold(&mut models, start, budget(&anchor));
    for provider in 0..PROVIDERS {
        fold(&mut models, start, agreement(&anchor, provider));
    }
    for prescription in 0..prescriptions {
        let agreement_id = Uuid::from_u128(u128::from(prescription % u64::from(PROVIDERS)));
        let issue = PrescriptionIssued {
            prescription_id: Uuid::from_u128(1_000_000 + u128::from(prescription)),
            referral_id: Uuid::from_u128(1),
            provider: provider_code(u32::try_from(prescription % u64::from(PROVIDERS)).unwrap()),
            activity_type: ActivityType::Walking,
            agreement_id: Some(agreement_id),
        };
        fold(
            &mut models,
            start + Duration::days(1),
            Event::PrescriptionIssued(issue),
        );
    }
    let issued = began.elapsed();
    let began = Instant::now();
    for session in 0..SESSIONS_PER_PRESCRIPTION {
        for prescription in 0..prescriptions {
            let attended = SessionAttended {
                prescription_id: Uuid::from_u128(1_000_000 + u128::from(prescription)),
                session_id: Uuid::from_u128(u128::from(prescription) << 8 | u128::from(session)),
            };
            fold(
                &mut models,
                start + Duration::days(2 + session as i64),
                Event::SessionAttended(attended),
            );
        }
    }
    let folded = began.elapsed();
    let through = start + Duration::days(60);
    let began = Instant::now();
    let lines = models.ledger.payment_due(&anchor, through);
    let computed = began.elapsed();
    let line_count = lines.len();
    let parts = PaymentRunRecorded::in_parts(Uuid::from_u128(9), anchor.clone(), through, lines);
    let began = Instant::now();
    for part in parts {
        fold(&mut models, through, Event::PaymentRunRecorded(part));
    }
    let recorded = began.elapsed();
    let paid = models
        .ledger
        .budget_position(&anchor, FinancialYear::starting(2026))
        .paid;
    println!("providers              {PROVIDERS}");
    println!(
        "prescriptions          {prescriptions} (issued and committed in {:.2} s)",
        issued.as_secs_f64()
    );
    println!(
        "attendances            {attendances} (folded in {:.2} s, {:.0} events/s)",
        folded.as_secs_f64(),
        attendances as f64 / folded.as_secs_f64()
    );
    println!("payment run: lines     {line_count}, paid {paid}");
    println!(
        "payment run: compute   {:.1} ms",
        computed.as_secs_f64() * 1e3
    );
    println!(
        "payment run: fold      {:.1} ms",
        recorded.as_secs_f64() * 1e3
    );
    println!(
        "payment run: total     {:.1} ms",
        (computed + recorded).as_secs_f64() * 1e3
    );
}

fn argument(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    let index = args.iter().position(|arg| arg == name)?;
    args.get(index + 1)?.parse().ok()
}

fn provider_code(provider: u32) -> OdsCode {
    OdsCode::parse(&format!("P{provider:05}")).unwrap()
}

fn budget(anchor: &OdsCode) -> Event {
    Event::BudgetAllocated(BudgetAllocated {
        allocation_id: Uuid::from_u128(7),
        commissioner: OdsCode::parse("QHM").unwrap(),
        anchor: anchor.clone(),
        financial_year: FinancialYear::starting(2026),
        account: BudgetAccount::Activities,
        amount: "100000000.00".parse().unwrap(),
    })
}

fn agreement(anchor: &OdsCode, provider: u32) -> Event {
    Event::AgreementSigned(Box::new(AgreementSigned {
        agreement_id: Uuid::from_u128(u128::from(provider)),
        anchor: anchor.clone(),
        provider: provider_code(provider),
        valid_from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
        valid_to: NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
        capacity: 1_000,
        response_window_days: 5,
        activity_types: vec![ActivityType::Walking],
        tariff: Tariff {
            engagement_fee: Some("25.00".parse().unwrap()),
            session_fee: Some("15.00".parse().unwrap()),
            funded_sessions: Some(10),
            completion_fee: Some("50.00".parse().unwrap()),
            completion_min_sessions: Some(8),
            cap_per_referral: Some("200.00".parse().unwrap()),
            missed_session_fee: None,
        },
    }))
}
