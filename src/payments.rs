//! Payment runs and remittance advice: settling what an anchor owes its providers through a
//! date, once per anchor and date, and telling each provider what the money is for.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use followfund_contracts::events::{PaymentLineKind, PaymentRunRecorded};
use followfund_contracts::{Event, Money, OdsCode, Role};
use followfund_projections::{PaymentRun, ReadModels};
use uuid::Uuid;

use crate::runner::{READ_YOUR_WRITES_WAIT_MS, Runner};
use crate::store::{Actor, ExpectedVersion, NewEvent, Store, StoreError};

/// Run ids are derived from the anchor and the date, so one anchor pays one period once.
const RUN_ID_NAMESPACE: Uuid = Uuid::from_u128(0x8b3f_1c62_5e0a_4d97_b2c8_0e6f_a4d1_9c35);
/// Times a run is decided again after another writer paid first.
const PAY_ATTEMPTS_MAX: u32 = 4;

/// Why a payment run was not made.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// The anchor is not a registered anchor.
    #[error("{0} is not a registered anchor")]
    NotAnAnchor(String),
    /// The date is after today.
    #[error(
        "a run through {through} would settle work that has not happened: run it through today ({today}) or earlier"
    )]
    ThroughInTheFuture {
        /// The date asked for.
        through: NaiveDate,
        /// Today.
        today: NaiveDate,
    },
    /// The read models did not catch up.
    #[error(transparent)]
    NotYetFolded(#[from] crate::runner::NotYetFolded),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another writer kept paying first.
    #[error("the anchor's payments kept changing while the run was made: run it again")]
    Contended,
}

/// The run for an anchor and date, and whether this call made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// The run.
    pub run: PaymentRun,
    /// False when the run for this anchor and date already existed.
    pub written: bool,
}

/// The id of `anchor`'s run through `through`.
pub fn run_id(anchor: &OdsCode, through: NaiveDate) -> Uuid {
    Uuid::new_v5(
        &RUN_ID_NAMESPACE,
        format!("{}/{through}", anchor.as_str()).as_bytes(),
    )
}

/// Settles everything `anchor` owes for work dated on or before `through`, as known now.
pub async fn pay(
    store: &Store,
    runner: &Runner,
    anchor: &OdsCode,
    through: NaiveDate,
) -> Result<RunOutcome, PayError> {
    let today = Utc::now().date_naive();
    if through > today {
        return Err(PayError::ThroughInTheFuture { through, today });
    }
    let run_id = run_id(anchor, through);
    let stream = format!("payments-{}", anchor.as_str());
    for _ in 0..PAY_ATTEMPTS_MAX {
        runner
            .wait_for(
                store.head_position(),
                Duration::from_millis(READ_YOUR_WRITES_WAIT_MS),
            )
            .await?;
        let (run, position) = {
            let models = runner.read();
            if let Some(run) = models.ledger.run(run_id) {
                return Ok(RunOutcome {
                    run: run.clone(),
                    written: false,
                });
            }
            check_anchor(&models, anchor)?;
            let lines = models.ledger.payment_due(anchor, through);
            let parts = PaymentRunRecorded::in_parts(run_id, anchor.clone(), through, lines);
            (parts, models.position())
        };
        let expected = ExpectedVersion::Exact(store.stream_version_at(&stream, position).await?);
        let actor = Actor {
            organisation: anchor.as_str().into(),
            role: Role::Anchor.as_str().into(),
            user: None,
        };
        let at = Utc::now();
        let events = run
            .iter()
            .map(|part| {
                NewEvent::new(
                    stream.clone(),
                    &Event::PaymentRunRecorded(part.clone()),
                    actor.clone(),
                    at,
                )
                .expect("a run from the ledger is a valid event")
                .with_id(part_id(run_id, part.part))
            })
            .collect();
        match store.append(events, vec![(stream.clone(), expected)]).await {
            Ok(appended) => {
                let recorded = PaymentRun {
                    run_id,
                    anchor: anchor.clone(),
                    through,
                    parts: run[0].parts,
                    parts_recorded: run.iter().map(|part| part.part).collect(),
                    lines: run.into_iter().flat_map(|part| part.lines).collect(),
                    position: appended.positions[0],
                };
                return Ok(RunOutcome {
                    run: recorded,
                    written: appended.written,
                });
            }
            Err(StoreError::Conflict { .. } | StoreError::EventIdReused { .. }) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(PayError::Contended)
}

/// The event id of a run's part: the run's own id for the first, so a run of one part keeps the
/// id it always had.
fn part_id(run_id: Uuid, part: u32) -> Uuid {
    if part == 1 {
        return run_id;
    }
    Uuid::new_v5(&RUN_ID_NAMESPACE, format!("{run_id}/{part}").as_bytes())
}

fn check_anchor(models: &ReadModels, anchor: &OdsCode) -> Result<(), PayError> {
    match models.organisations.get(anchor) {
        Some(organisation) if organisation.role == Role::Anchor => Ok(()),
        _ => Err(PayError::NotAnAnchor(anchor.as_str().to_string())),
    }
}

/// A provider's remittance advice for a run, as CSV: a line per prescription, then the total.
pub fn remittance_csv(models: &ReadModels, run: &PaymentRun, provider: &OdsCode) -> String {
    let mut csv = String::from(
        "run_id,anchor,provider,through,prescription_id,referral_id,kind,amount,positions\n",
    );
    let mut total = Money::zero();
    for line in run.lines.of_provider(provider) {
        let referral = models
            .journeys
            .referral_of(line.prescription_id)
            .map(|referral_id| referral_id.to_string())
            .unwrap_or_default();
        let (kind, signed) = match line.kind {
            PaymentLineKind::Payment => ("payment", line.amount),
            PaymentLineKind::Recovery => ("recovery", line.amount.negated()),
        };
        total = total
            .checked_add(signed)
            .expect("run totals stay far below the limit");
        let positions: Vec<String> = line.positions.iter().map(u64::to_string).collect();
        csv.push_str(&format!(
            "{},{},{},{},{},{referral},{kind},{},{}\n",
            run.run_id,
            run.anchor.as_str(),
            provider.as_str(),
            run.through,
            line.prescription_id,
            signed.as_decimal(),
            positions.join(" ")
        ));
    }
    csv.push_str(&format!(
        "{},{},{},{},,,total,{},\n",
        run.run_id,
        run.anchor.as_str(),
        provider.as_str(),
        run.through,
        total.as_decimal()
    ));
    csv
}
