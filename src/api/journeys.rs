//! Journey queries: a referral's status and every event on it, seen only by those whose work
//! it is. The read models hold where a journey stands and the positions of its events; the
//! events themselves are read from the log.

use std::collections::HashMap;

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use followfund_contracts::Role;
use followfund_projections::{Journey, Journeys, Prescription, ReadModels};
use uuid::Uuid;

use crate::store::{RecordedEvent, Store};

use super::errors::{forbidden, not_found};
use super::schema::{PAGE_SIZE_MAX, caught_up, principal};
use super::scope::can_see;

/// Journey queries, merged into the root query.
#[derive(Default)]
pub struct JourneyQuery;

#[Object]
impl JourneyQuery {
    /// A referral's journey: where it stands and every event on it.
    async fn referral(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        at_least: Option<u64>,
    ) -> Result<JourneyView> {
        let caller = principal(ctx)?;
        let runner = caught_up(ctx, at_least).await?;
        let mut view = {
            let models = runner.read();
            let journey = models
                .journeys
                .journey(id)
                .ok_or_else(|| not_found(format!("no referral {id} is recorded")))?;
            if !can_see(&models, caller, journey) {
                return Err(forbidden(format!(
                    "referral {id} is outside what {} may see",
                    caller.organisation
                )));
            }
            JourneyView::of(&models, journey)
        };
        steps_read(ctx, std::slice::from_mut(&mut view)).await?;
        Ok(view)
    }

    /// The referrals the caller may see, in the order received, `first` at a time after the
    /// referral `after`.
    async fn referrals(
        &self,
        ctx: &Context<'_>,
        after: Option<Uuid>,
        first: Option<usize>,
        at_least: Option<u64>,
    ) -> Result<Vec<JourneyView>> {
        let caller = principal(ctx)?;
        if caller.role == Role::Investor {
            return Err(forbidden(
                "investors see cohort figures only, never a referral",
            ));
        }
        let runner = caught_up(ctx, at_least).await?;
        let first = first.unwrap_or(50).min(PAGE_SIZE_MAX);
        let mut page: Vec<JourneyView> = {
            let models = runner.read();
            models
                .journeys
                .journeys_after(after)
                .filter(|journey| can_see(&models, caller, journey))
                .take(first)
                .map(|journey| JourneyView::of(&models, journey))
                .collect()
        };
        steps_read(ctx, &mut page).await?;
        Ok(page)
    }
}

/// Reads the events the journeys' steps name from the log, in one query for the page, after
/// the read models' lock is let go: the read models keep only each step's position.
async fn steps_read(ctx: &Context<'_>, views: &mut [JourneyView]) -> Result<()> {
    let positions: Vec<u64> = views
        .iter()
        .flat_map(|view| view.step_positions.iter().copied())
        .collect();
    let events = ctx.data_unchecked::<Store>().read_at(&positions).await?;
    let mut steps: HashMap<u64, StepView> = HashMap::with_capacity(events.len());
    for event in events {
        steps.insert(event.position, StepView::of(event)?);
    }
    for view in views {
        view.steps = view
            .step_positions
            .iter()
            .map(|position| {
                steps.get(position).cloned().ok_or_else(|| {
                    async_graphql::Error::new(format!("the log has no event at step {position}"))
                })
            })
            .collect::<Result<_>>()?;
    }
    Ok(())
}

/// A referral's journey.
#[derive(SimpleObject)]
pub struct JourneyView {
    /// The referral's id.
    referral_id: Uuid,
    /// The person (a pseudonymous id).
    person_id: Uuid,
    /// Where it stands: received, accepted, declined, redirected, referred_back or closed.
    status: String,
    /// The link worker service holding it.
    link_worker_organisation: String,
    /// When it was received.
    received_at: DateTime<Utc>,
    /// Every event on it, in position order.
    steps: Vec<StepView>,
    #[graphql(skip)]
    step_positions: Vec<u64>,
    /// Its prescriptions.
    prescriptions: Vec<PrescriptionView>,
}

impl JourneyView {
    fn of(models: &ReadModels, journey: &Journey) -> JourneyView {
        let prescriptions = (models.journeys.prescriptions_of(journey))
            .map(|prescription| PrescriptionView::of(models, prescription))
            .collect();
        let holder = models.journeys.link_worker_organisation(journey);
        JourneyView {
            referral_id: journey.referral_id,
            person_id: journey.person_id.0,
            status: crate::wire_name(&journey.status),
            link_worker_organisation: holder.as_str().to_string(),
            received_at: journey.received_at,
            steps: Vec::new(),
            step_positions: journey.steps.iter().collect(),
            prescriptions,
        }
    }
}

/// One event on a journey; read the event at `position` for its payload.
#[derive(Clone, SimpleObject)]
pub struct StepView {
    /// The event's position in the log.
    position: u64,
    /// Its type.
    #[graphql(name = "type")]
    event_type: String,
    /// When it happened.
    occurred_at: DateTime<Utc>,
    /// When the ledger learned it.
    recorded_at: DateTime<Utc>,
    /// The organisation that recorded it.
    actor_organisation: String,
    /// The prescription it concerns, if any.
    prescription_id: Option<Uuid>,
}

impl StepView {
    fn of(event: RecordedEvent) -> Result<StepView> {
        let decoded = event.decode()?;
        Ok(StepView {
            position: event.position,
            prescription_id: Journeys::step_prescription(&decoded),
            event_type: event.event_type,
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
            actor_organisation: event.actor.organisation,
        })
    }
}

/// A prescription on a journey.
#[derive(SimpleObject)]
pub struct PrescriptionView {
    /// Its id.
    prescription_id: Uuid,
    /// The provider it was prescribed to.
    provider: String,
    /// The activity.
    activity_type: String,
    /// issued, accepted, declined, completed or ended.
    status: String,
    /// Sessions attended (retracted attendances excluded).
    sessions_attended: usize,
}

impl PrescriptionView {
    fn of(models: &ReadModels, prescription: &Prescription) -> PrescriptionView {
        PrescriptionView {
            prescription_id: prescription.prescription_id,
            provider: models.journeys.provider(prescription).as_str().to_string(),
            activity_type: crate::wire_name(&prescription.activity_type),
            status: crate::wire_name(&prescription.status),
            sessions_attended: prescription.attended_count(),
        }
    }
}
