//! Journey queries: a referral's status and every event on it, seen only by those whose work
//! it is.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use followfund_contracts::Role;
use followfund_projections::{Journey, Prescription, ReadModels};
use uuid::Uuid;

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
        Ok(JourneyView::of(&models, journey))
    }

    /// The referrals the caller may see, in id order, `first` at a time after the id `after`.
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
        let models = runner.read();
        let first = first.unwrap_or(50).min(PAGE_SIZE_MAX);
        let page = models
            .journeys
            .journeys()
            .filter(|journey| after.is_none_or(|after| journey.referral_id > after))
            .filter(|journey| can_see(&models, caller, journey))
            .take(first)
            .map(|journey| JourneyView::of(&models, journey))
            .collect();
        Ok(page)
    }
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
    /// Its prescriptions.
    prescriptions: Vec<PrescriptionView>,
}

impl JourneyView {
    fn of(models: &ReadModels, journey: &Journey) -> JourneyView {
        let prescriptions = journey
            .prescriptions
            .iter()
            .filter_map(|id| models.journeys.prescription(*id))
            .map(PrescriptionView::of)
            .collect();
        JourneyView {
            referral_id: journey.referral_id,
            person_id: journey.person_id.0,
            status: crate::wire_name(&journey.status),
            link_worker_organisation: journey.link_worker_organisation.as_str().to_string(),
            received_at: journey.received_at,
            steps: journey
                .steps
                .iter()
                .map(|step| StepView::of(models, step))
                .collect(),
            prescriptions,
        }
    }
}

/// One event on a journey; read the event at `position` for its payload.
#[derive(SimpleObject)]
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
    fn of(models: &ReadModels, step: &followfund_projections::Step) -> StepView {
        StepView {
            position: step.position,
            event_type: step.event_type.to_string(),
            occurred_at: step.occurred_at,
            recorded_at: step.recorded_at,
            actor_organisation: models.journeys.actor(step).to_owned(),
            prescription_id: step.prescription_id,
        }
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
    fn of(prescription: &Prescription) -> PrescriptionView {
        PrescriptionView {
            prescription_id: prescription.prescription_id,
            provider: prescription.provider.as_str().to_string(),
            activity_type: crate::wire_name(&prescription.activity_type),
            status: crate::wire_name(&prescription.status),
            sessions_attended: prescription.attended_count(),
        }
    }
}
