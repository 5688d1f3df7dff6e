//! The GraphQL schema: queries over the read models and the log, each confined to what the
//! caller's organisation and role may see.

use std::time::Duration;

use async_graphql::connection::{Connection, Edge, EmptyFields, query};
use async_graphql::{Context, Enum, Json, MergedObject, Object, Result, Schema, SimpleObject};
use chrono::{DateTime, Utc};
use followfund_contracts::{OdsCode, Role};

use super::arrs::{ArrsMutation, ArrsQuery};
use super::auth::Principal;
use super::errors::{bad_input, forbidden, not_found, unauthenticated};
use super::funding::{FundingMutation, FundingQuery};
use super::journeys::JourneyQuery;
use super::mutations::{PathwayMutation, PrescribingMutation};
use super::scope::can_see_stream;
use super::sib::{SibMutation, SibQuery};
use super::subscriptions::SubscriptionRoot;
use crate::runner::{READ_YOUR_WRITES_WAIT_MS, Runner};
use crate::store::{RecordedEvent, Store};

/// The schema type served at `/graphql`.
pub type ApiSchema = Schema<Query, Mutation, SubscriptionRoot>;

/// Every query, merged from the modules that answer them.
#[derive(MergedObject, Default)]
pub struct Query(LogQuery, JourneyQuery, FundingQuery, ArrsQuery, SibQuery);

/// Every mutation, merged from the modules that make them.
#[derive(MergedObject, Default)]
pub struct Mutation(
    PathwayMutation,
    PrescribingMutation,
    FundingMutation,
    ArrsMutation,
    SibMutation,
);

/// The most items one page of a list returns.
pub const PAGE_SIZE_MAX: usize = 500;
/// How deep a query may nest.
pub const QUERY_DEPTH_MAX: usize = 12;
/// How many fields a query may select in all, counting list items once.
pub const QUERY_COMPLEXITY_MAX: usize = 2_000;

/// Builds the schema over the log and its read models.
pub fn build_schema(store: Store, runner: Runner) -> ApiSchema {
    Schema::build(Query::default(), Mutation::default(), SubscriptionRoot)
        .data(store)
        .data(runner)
        .data(super::sib::SibStatuses::default())
        .limit_depth(QUERY_DEPTH_MAX)
        .limit_complexity(QUERY_COMPLEXITY_MAX)
        .finish()
}

/// A role an organisation acts in.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "followfund_contracts::Role", name = "Role")]
pub enum RoleName {
    /// Funds anchors and schemes, pays outcomes, audits spend.
    Commissioner,
    /// Holds an area's budget and pays providers.
    Anchor,
    /// A voluntary or community organisation that runs activities.
    Provider,
    /// A Primary Care Network.
    Pcn,
    /// Puts capital into a social impact bond.
    Investor,
    /// Reads everything, changes nothing.
    Auditor,
    /// Signs off or withdraws social impact bond outcomes.
    Verifier,
    /// Runs the service.
    Admin,
}

/// Queries over organisations and the log itself.
#[derive(Default)]
pub struct LogQuery;

#[Object]
impl LogQuery {
    /// Who the bearer token speaks for.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me> {
        let principal = principal(ctx)?;
        Ok(Me {
            organisation: principal.organisation.clone(),
            role: principal.role.into(),
        })
    }

    /// The last log position the read models include.
    async fn position(&self, ctx: &Context<'_>) -> Result<u64> {
        principal(ctx)?;
        Ok(ctx.data_unchecked::<Runner>().position())
    }

    /// Registered organisations, in code order, optionally of one role.
    async fn organisations(
        &self,
        ctx: &Context<'_>,
        role: Option<RoleName>,
        at_least: Option<u64>,
    ) -> Result<Vec<Organisation>> {
        principal(ctx)?;
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        let list: Vec<Organisation> = match role {
            Some(role) => models
                .organisations
                .by_role(role.into())
                .map(Organisation::from)
                .collect(),
            None => models
                .organisations
                .iter()
                .map(Organisation::from)
                .collect(),
        };
        Ok(list)
    }

    /// One organisation by its code.
    async fn organisation(
        &self,
        ctx: &Context<'_>,
        code: String,
        at_least: Option<u64>,
    ) -> Result<Organisation> {
        principal(ctx)?;
        let code = OdsCode::parse(&code).map_err(|error| bad_input(error.to_string()))?;
        let runner = caught_up(ctx, at_least).await?;
        let models = runner.read();
        let found = models.organisations.get(&code).map(Organisation::from);
        found.ok_or_else(|| {
            not_found(format!(
                "no organisation is registered as `{}`",
                code.as_str()
            ))
        })
    }

    /// Every event in position order, a page at a time (auditors and administrators).
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<Connection<u64, EventRecord, EmptyFields, EmptyFields>> {
        require(ctx, &[Role::Auditor, Role::Admin])?;
        let store = ctx.data_unchecked::<Store>().clone();
        query(
            after,
            None,
            first,
            None,
            |after: Option<u64>, _: Option<u64>, first, _| async move {
                let from = after.map_or(1, |position| position + 1);
                let limit = first.unwrap_or(100).min(PAGE_SIZE_MAX);
                let page = store.read_all(from, limit + 1).await?;
                let mut connection = Connection::new(from > 1, page.len() > limit);
                let edges = page
                    .into_iter()
                    .take(limit)
                    .map(|event| Edge::new(event.position, EventRecord::from(event)));
                connection.edges.extend(edges);
                Ok::<_, async_graphql::Error>(connection)
            },
        )
        .await
    }

    /// A stream's events with their positions and hashes: the trail behind any figure
    /// (auditors, administrators and commissioners).
    async fn stream(&self, ctx: &Context<'_>, name: String) -> Result<Vec<EventRecord>> {
        let caller = require(ctx, &[Role::Auditor, Role::Admin, Role::Commissioner])?;
        let runner = caught_up(ctx, None).await?;
        if !can_see_stream(&runner.read(), caller, &name) {
            return Err(forbidden(format!(
                "stream `{name}` is outside what {} may see",
                caller.organisation
            )));
        }
        let events = ctx.data_unchecked::<Store>().read_stream(&name, 1).await?;
        if events.is_empty() {
            return Err(not_found(format!("stream `{name}` holds no events")));
        }
        Ok(events.into_iter().map(EventRecord::from).collect())
    }

    /// Walks the whole hash chain (auditors, administrators and commissioners).
    async fn verify(&self, ctx: &Context<'_>) -> Result<VerifyResult> {
        require(ctx, &[Role::Auditor, Role::Admin, Role::Commissioner])?;
        let report = ctx.data_unchecked::<Store>().verify().await?;
        Ok(VerifyResult {
            intact: report.is_intact(),
            events_checked: report.events_checked,
            head_hash: report.head_hash.to_string(),
            first_fault_position: report.first_fault.as_ref().map(|fault| fault.position),
            first_fault_reason: report.first_fault.map(|fault| fault.reason),
        })
    }
}

/// The caller, or UNAUTHENTICATED.
pub fn principal<'c>(ctx: &Context<'c>) -> Result<&'c Principal> {
    ctx.data_opt::<Principal>().ok_or_else(unauthenticated)
}

/// The caller when its role is one of `roles`, or FORBIDDEN.
pub fn require<'c>(ctx: &Context<'c>, roles: &[Role]) -> Result<&'c Principal> {
    let principal = principal(ctx)?;
    if roles.contains(&principal.role) {
        Ok(principal)
    } else {
        let allowed: Vec<&str> = roles.iter().map(Role::as_str).collect();
        Err(forbidden(format!(
            "a {} token cannot do this; it needs one of: {}",
            principal.role,
            allowed.join(", ")
        )))
    }
}

/// The runner, once it has folded `at_least` (if asked), or an error saying how far it got.
pub async fn caught_up<'c>(ctx: &Context<'c>, at_least: Option<u64>) -> Result<&'c Runner> {
    let runner = ctx.data_unchecked::<Runner>();
    if let Some(position) = at_least {
        runner
            .wait_for(position, Duration::from_millis(READ_YOUR_WRITES_WAIT_MS))
            .await
            .map_err(|error| super::errors::not_yet(error.to_string()))?;
    }
    Ok(runner)
}

/// The caller's identity.
#[derive(SimpleObject)]
pub struct Me {
    /// The organisation's code.
    organisation: String,
    /// The role it acts in.
    role: RoleName,
}

/// A registered organisation.
#[derive(SimpleObject)]
pub struct Organisation {
    /// ODS code or our own id.
    code: String,
    /// Its name.
    name: String,
    /// The part it plays.
    role: RoleName,
    /// The nation whose rules apply (`england`, `scotland`, `wales`, `northern_ireland`).
    nation: String,
    /// The organisation it reports to.
    parent: Option<String>,
}

impl From<&followfund_projections::Organisation> for Organisation {
    fn from(organisation: &followfund_projections::Organisation) -> Organisation {
        let nation = serde_json::to_value(organisation.nation)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        Organisation {
            code: organisation.code.as_str().to_string(),
            name: organisation.name.clone(),
            role: organisation.role.into(),
            nation: nation.unwrap_or_default(),
            parent: organisation
                .parent
                .as_ref()
                .map(|code| code.as_str().to_string()),
        }
    }
}

/// An event as the log holds it.
#[derive(SimpleObject)]
pub struct EventRecord {
    /// Global position.
    position: u64,
    /// The event's id.
    event_id: String,
    /// Its stream.
    stream: String,
    /// Its version within the stream.
    stream_version: u64,
    /// The catalogue type.
    #[graphql(name = "type")]
    event_type: String,
    /// The payload's schema version.
    schema_version: u32,
    /// When it happened.
    occurred_at: DateTime<Utc>,
    /// When the ledger learned it.
    recorded_at: DateTime<Utc>,
    /// The organisation that recorded it.
    actor_organisation: String,
    /// The role it acted in.
    actor_role: String,
    /// The payload.
    data: Json<serde_json::Value>,
    /// The hash of the event before it.
    prev_hash: String,
    /// SHA-256 over `prevHash` and this event's canonical bytes.
    hash: String,
}

impl From<RecordedEvent> for EventRecord {
    fn from(event: RecordedEvent) -> EventRecord {
        EventRecord {
            position: event.position,
            event_id: event.event_id.to_string(),
            stream: event.stream,
            stream_version: event.stream_version,
            event_type: event.event_type,
            schema_version: event.schema_version,
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
            actor_organisation: event.actor.organisation,
            actor_role: event.actor.role,
            data: Json(serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null)),
            prev_hash: event.prev_hash.to_string(),
            hash: event.hash.to_string(),
        }
    }
}

/// What walking the chain found.
#[derive(SimpleObject)]
pub struct VerifyResult {
    /// Whether every position holds.
    intact: bool,
    /// Events checked before the first fault, or all of them.
    events_checked: u64,
    /// The hash of the last event checked.
    head_hash: String,
    /// The first position that does not hold.
    first_fault_position: Option<u64>,
    /// What does not match there.
    first_fault_reason: Option<String>,
}
