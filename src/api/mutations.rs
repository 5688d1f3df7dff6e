//! Mutations: one per pathway event. Each checks the command against the read models at the
//! log's head and appends with the stream version it decided against, so two callers racing on
//! one referral cannot both act on the same state.

use async_graphql::{Context, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use followfund_contracts::Event;
use serde_json::Value;
use uuid::Uuid;

use super::auth::Principal;
use super::errors::{bad_input, conflict, forbidden};
use super::schema::{caught_up, principal};
use crate::commands::{self, Decision, Rejection};
use crate::runner::Runner;
use crate::store::{Actor, ExpectedVersion, NewEvent, RecordedEvent, Store, StoreError};

/// Times a command is decided again after another writer changed its referral first.
const COMMAND_ATTEMPTS_MAX: u32 = 4;

/// Client ids become event ids under this namespace, per organisation, so one organisation's
/// key can never collide with another's.
const CLIENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f3c_2a1e_8d4b_4c7a_9e21_5b0f_d3a8_7c64);

/// What a mutation wrote.
#[derive(SimpleObject)]
pub struct Written {
    /// The position of the event: pass it as `atLeast` to read your own write.
    position: u64,
    /// Every position the command wrote, in order (one event per pathway command).
    positions: Vec<u64>,
    /// The event's id.
    event_id: String,
    /// What was recorded: the mutation's own event type, or `prescription.waitlisted` when a
    /// prescription asked to wait for a place found its provider full.
    event_type: String,
    /// False when this client id had already been recorded: nothing new was written.
    written: bool,
}

/// Recording the referral pathway.
#[derive(Default)]
pub struct PathwayMutation;

macro_rules! pathway_mutations {
    ($( $(#[$doc:meta])* $name:ident => $event_type:literal; )+) => {
        #[Object]
        impl PathwayMutation {
            $(
                $(#[$doc])*
                async fn $name(
                    &self,
                    ctx: &Context<'_>,
                    #[graphql(desc = "The event's payload, as listed in contracts/EVENTS.md.")] data: Json<Value>,
                    #[graphql(desc = "When it happened; now if absent. Never in the future.")] occurred_at: Option<DateTime<Utc>>,
                    #[graphql(desc = "An idempotency key: the same key from the same organisation is recorded once.")] client_id: Option<Uuid>,
                ) -> Result<Written> {
                    let command = Command { event_type: $event_type, data: data.0, occurred_at, client_id, kind: Kind::Pathway { waitlist_if_full: false } };
                    record(ctx, command).await
                }
            )+
        }
    };
}

pathway_mutations! {
    /// A link worker service received a referral.
    referral_receive => "referral.received";
    /// The link worker service took the referral on.
    referral_accept => "referral.accepted";
    /// The link worker service declined the referral.
    referral_decline => "referral.declined";
    /// The referral was passed to another link worker service.
    referral_redirect => "referral.redirected";
    /// The initial assessment was held.
    assessment_hold => "assessment.held";
    /// A care and support plan was agreed.
    plan_agree => "plan.agreed";
    /// The care and support plan was changed.
    plan_amend => "plan.amended";
    /// The provider accepted the prescription.
    prescription_accept => "prescription.accepted";
    /// The provider declined the prescription.
    prescription_decline => "prescription.declined";
    /// The person attended a session (the prescribed provider only).
    session_attend => "session.attended";
    /// The person missed a session.
    session_miss => "session.missed";
    /// A session was cancelled.
    session_cancel => "session.cancelled";
    /// An attendance recorded in error is withdrawn.
    session_retract => "session.retracted";
    /// The person completed the activity.
    prescription_complete => "prescription.completed";
    /// The prescription ended early.
    prescription_end => "prescription.ended";
    /// A wellbeing instrument was completed.
    outcome_measure => "outcome.measured";
    /// The person was referred back to a clinician.
    referral_refer_back => "referral.referred_back";
    /// The case was closed.
    case_close => "case.closed";
}

/// Prescribing, which may wait for a place.
#[derive(Default)]
pub struct PrescribingMutation;

#[Object]
impl PrescribingMutation {
    /// An activity was prescribed to a provider. Under an agreement whose provider is full, it is
    /// refused, or with `waitlistIfFull` recorded as `prescription.waitlisted`: issue it again
    /// with the same prescription id once a place is free and it is first in the queue.
    async fn prescription_issue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event's payload, as listed in contracts/EVENTS.md.")] data: Json<
            Value,
        >,
        #[graphql(desc = "When it happened; now if absent. Never in the future.")]
        occurred_at: Option<DateTime<Utc>>,
        #[graphql(
            desc = "An idempotency key: the same key from the same organisation is recorded once."
        )]
        client_id: Option<Uuid>,
        #[graphql(
            desc = "Wait for a place when the provider is full, instead of being refused.",
            default = false
        )]
        waitlist_if_full: bool,
    ) -> Result<Written> {
        let command = Command {
            event_type: "prescription.issued",
            data: data.0,
            occurred_at,
            client_id,
            kind: Kind::Pathway { waitlist_if_full },
        };
        record(ctx, command).await
    }
}

/// A command as the API received it.
pub(super) struct Command<'a> {
    pub(super) event_type: &'a str,
    pub(super) data: Value,
    pub(super) occurred_at: Option<DateTime<Utc>>,
    pub(super) client_id: Option<Uuid>,
    pub(super) kind: Kind,
}

/// Which rules decide a command.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// The referral pathway, which may put a full provider's prescription on its waitlist.
    Pathway { waitlist_if_full: bool },
    /// ARRS facts about a PCN.
    Arrs,
    /// Social impact bond facts about a contract.
    Sib,
}

/// Decides a command against the read models at the log's head and appends it with the stream
/// version it was decided against; the same client id from the same organisation records once.
pub(super) async fn record(ctx: &Context<'_>, command: Command<'_>) -> Result<Written> {
    let Command {
        event_type,
        data,
        occurred_at,
        client_id,
        kind,
    } = command;
    let caller = principal(ctx)?.clone();
    let store = ctx.data_unchecked::<Store>();
    let now = Utc::now();
    let occurred_at = occurred_at.unwrap_or(now);
    let event = Event::decode(event_type, 1, data).map_err(|error| bad_input(error.to_string()))?;
    let event_id = client_id.map_or_else(Uuid::now_v7, |key| client_event_id(&caller, key));
    for _ in 0..COMMAND_ATTEMPTS_MAX {
        if let Some(stored) = store.read_event(event_id).await? {
            return already_recorded(&stored, &event);
        }
        let head = store.head_position();
        let runner = caught_up(ctx, Some(head)).await?;
        let decided = decide(runner, &caller, (now, occurred_at), event.clone(), kind);
        let (decision, position) = match decided {
            Ok(decided) => decided,
            // The same key sent at once from elsewhere may have been folded since it was looked
            // up, and now looks like a duplicate: answer from it rather than refuse.
            Err(refused) => match store.read_event(event_id).await? {
                Some(stored) if client_id.is_some() => return already_recorded(&stored, &event),
                _ => return Err(refused),
            },
        };
        let expected = if decision.starts_stream {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(store.stream_version_at(&decision.stream, position).await?)
        };
        let actor = Actor {
            organisation: caller.organisation.clone(),
            role: caller.role.as_str().into(),
            user: None,
        };
        let new = NewEvent::new(decision.stream.clone(), &decision.event, actor, occurred_at)
            .map_err(|error| bad_input(error.to_string()))?
            .with_id(event_id);
        match store
            .append(vec![new], vec![(decision.stream, expected)])
            .await
        {
            Ok(appended) => {
                let position = appended.positions[0];
                return Ok(Written {
                    position,
                    positions: appended.positions,
                    event_id: event_id.to_string(),
                    event_type: decision.event.type_name().to_string(),
                    written: appended.written,
                });
            }
            // Another writer moved the referral on, or sent this client id first: look again.
            Err(StoreError::Conflict { .. } | StoreError::EventIdReused { .. }) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(conflict(
        "the referral kept changing while this was recorded: read it again and retry",
    ))
}

/// Decides against the read models as they are now; returns the position decided at.
fn decide(
    runner: &Runner,
    caller: &Principal,
    (now, occurred_at): (DateTime<Utc>, DateTime<Utc>),
    event: Event,
    kind: Kind,
) -> Result<(Decision, u64)> {
    let models = runner.read();
    let decision = match kind {
        Kind::Pathway {
            waitlist_if_full: true,
        } => commands::decide_or_waitlist(&models, caller, now, occurred_at, event),
        Kind::Pathway {
            waitlist_if_full: false,
        } => commands::decide(&models, caller, now, occurred_at, event),
        Kind::Arrs => {
            let decided = crate::arrs::decide(&models, caller, now, event);
            return Ok((decided.map_err(arrs_rejected)?, models.position()));
        }
        Kind::Sib => {
            let decided = crate::sib::decide(&models, caller, now, event);
            return Ok((decided.map_err(sib_rejected)?, models.position()));
        }
    }
    .map_err(rejected)?;
    Ok((decision, models.position()))
}

fn rejected(rejection: Rejection) -> async_graphql::Error {
    match rejection {
        Rejection::RoleCannotRecord { .. }
        | Rejection::NotHolder { .. }
        | Rejection::NotPrescribedProvider { .. }
        | Rejection::ReceiveForAnother { .. }
        | Rejection::NotAPathwayEvent => forbidden(rejection.to_string()),
        Rejection::ReferralExists(_)
        | Rejection::PrescriptionExists(_)
        | Rejection::SessionRecorded { .. }
        | Rejection::ReferralStatusForbids { .. }
        | Rejection::PrescriptionStatusForbids { .. }
        | Rejection::ProviderAtCapacity { .. }
        | Rejection::RoomToIssue { .. }
        | Rejection::ResponseWindowClosed { .. }
        | Rejection::BudgetWouldBeExceeded { .. } => conflict(rejection.to_string()),
        _ => bad_input(rejection.to_string()),
    }
}

fn sib_rejected(rejection: crate::sib::SibRejection) -> async_graphql::Error {
    use crate::sib::SibRejection;
    match rejection {
        SibRejection::NotYours { .. } => forbidden(rejection.to_string()),
        SibRejection::ClaimExists(_) | SibRejection::ClaimSettled { .. } => {
            conflict(rejection.to_string())
        }
        _ => bad_input(rejection.to_string()),
    }
}

fn arrs_rejected(rejection: crate::arrs::ArrsRejection) -> async_graphql::Error {
    use crate::arrs::ArrsRejection;
    match rejection {
        ArrsRejection::NotYours { .. } => forbidden(rejection.to_string()),
        ArrsRejection::WorkerExists(_)
        | ArrsRejection::ClaimExists(_)
        | ArrsRejection::Overpaid { .. } => conflict(rejection.to_string()),
        _ => bad_input(rejection.to_string()),
    }
}

/// A client id already recorded: the same command again is answered with its position (an
/// issue that was waitlisted is the same command); a different command under the same key is
/// refused.
fn already_recorded(stored: &RecordedEvent, event: &Event) -> Result<Written> {
    let same =
        |event: &Event| stored.event_type == event.type_name() && stored.data == event.encode();
    let waitlisted = commands::waitlisted(event).map(Event::PrescriptionWaitlisted);
    if same(event) || waitlisted.as_ref().is_some_and(same) {
        Ok(Written {
            position: stored.position,
            positions: vec![stored.position],
            event_id: stored.event_id.to_string(),
            event_type: stored.event_type.clone(),
            written: false,
        })
    } else {
        Err(conflict(format!(
            "this client id was already used at position {} for a different `{}`: use a new client id",
            stored.position, stored.event_type
        )))
    }
}

fn client_event_id(caller: &Principal, client_id: Uuid) -> Uuid {
    let key = format!("{}/{}", caller.organisation, client_id);
    Uuid::new_v5(&CLIENT_ID_NAMESPACE, key.as_bytes())
}
