//! The response-window sweep: a provider that has not answered a funded prescription within its
//! agreement's window has declined it, and recording that releases the commitment and the place.

use std::time::Duration;

use chrono::{DateTime, Utc};
use followfund_contracts::Event;
use followfund_contracts::events::{PrescriptionDeclineReason, PrescriptionDeclined};
use followfund_projections::{PrescriptionStatus, ReadModels};
use uuid::Uuid;

use crate::commands::referral_stream;
use crate::runner::{READ_YOUR_WRITES_WAIT_MS, Runner};
use crate::store::{Actor, ExpectedVersion, NewEvent, Store, StoreError};

/// Declines are keyed by prescription, so two sweepers at once record each decline once.
const DECLINE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2d7e_90b4_61c3_4f58_a0e9_3b1d_c6f2_8e47);

/// How often a running service sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// A prescription whose window has closed unanswered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unanswered {
    /// The prescription.
    pub prescription_id: Uuid,
    /// Its referral, whose stream records the decline.
    pub referral_id: Uuid,
    /// When the window closed: the decline's valid time.
    pub closed_at: DateTime<Utc>,
}

/// Every funded prescription still waiting for its provider's answer after its window closed.
pub fn unanswered(models: &ReadModels, now: DateTime<Utc>) -> Vec<Unanswered> {
    models
        .journeys
        .prescriptions()
        .filter(|p| p.status == PrescriptionStatus::Issued)
        .filter_map(|p| {
            let agreement_id = models.journeys.agreement_id(p)?;
            let agreement = models.ledger.agreements.get(agreement_id)?;
            let window = chrono::Duration::days(i64::from(agreement.response_window_days));
            let closed_at = p.issued_at + window;
            (closed_at < now).then_some(Unanswered {
                prescription_id: p.prescription_id,
                referral_id: models.journeys.journey_of(p).referral_id,
                closed_at,
            })
        })
        .collect()
}

/// Records a `no_response` decline for every prescription unanswered at `now`; returns the
/// positions written. A referral that changed meanwhile is left to the next sweep.
pub async fn decline_unanswered(
    store: &Store,
    runner: &Runner,
    now: DateTime<Utc>,
) -> Result<Vec<u64>, StoreError> {
    let wait = Duration::from_millis(READ_YOUR_WRITES_WAIT_MS);
    if runner.wait_for(store.head_position(), wait).await.is_err() {
        return Ok(Vec::new());
    }
    let (due, position) = {
        let models = runner.read();
        (unanswered(&models, now), models.position())
    };
    let mut written = Vec::new();
    for prescription in due {
        let stream = referral_stream(prescription.referral_id);
        let version = store.stream_version_at(&stream, position).await?;
        let decline = Event::PrescriptionDeclined(PrescriptionDeclined {
            prescription_id: prescription.prescription_id,
            reason: PrescriptionDeclineReason::NoResponse,
        });
        let event_id = Uuid::new_v5(
            &DECLINE_ID_NAMESPACE,
            prescription.prescription_id.as_bytes(),
        );
        let event = NewEvent::new(
            stream.clone(),
            &decline,
            Actor::sweep(),
            prescription.closed_at,
        )
        .expect("a decline is a valid event")
        .with_id(event_id);
        let expected = ExpectedVersion::Exact(version);
        match store.append(vec![event], vec![(stream, expected)]).await {
            Ok(appended) if appended.written => written.extend(appended.positions),
            Ok(_) | Err(StoreError::Conflict { .. } | StoreError::EventIdReused { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}

/// Sweeps every [`SWEEP_INTERVAL`] until the process stops; a failed sweep is logged and tried
/// again at the next tick.
pub async fn sweep_forever(store: Store, runner: Runner) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        match decline_unanswered(&store, &runner, Utc::now()).await {
            Ok(positions) if !positions.is_empty() => {
                tracing::info!(
                    declined = positions.len(),
                    "unanswered prescriptions declined"
                )
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "response-window sweep failed"),
        }
    }
}
