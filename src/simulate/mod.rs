//! A synthetic year of social prescribing, the same for the same seed: organisations and funding
//! terms, referral journeys, payment runs, ARRS claims and outcome contracts, in time order.
//! Every event is decided by the same command layer the API uses before it is kept, against
//! read models folded from everything generated before it, so a history is valid by
//! construction.

mod journey;
mod world;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use followfund_contracts::{Event, Role};
use followfund_projections::{Fact, ReadModels};
use uuid::Uuid;

use crate::api::auth::Principal;
use crate::store::{Actor, NewEvent};

pub use world::Scale;

/// The financial year simulated: 2022/23, the latest year whose ARRS rules are published.
pub const YEAR_START_YEAR: i32 = 2022;

/// A command refused while simulating: a bug in the generator, reported with the event.
#[derive(Debug, thiserror::Error)]
#[error(
    "the simulation produced `{event_type}` at {at}, which the command layer refused: {reason}"
)]
pub struct Refused {
    /// The event type.
    pub event_type: &'static str,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// Something scheduled to happen: a step of a journey, a payment run, a scheme's month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Job {
    /// A referral's next step.
    Journey(u32),
    /// An anchor's monthly payment run, settling through the month before.
    PaymentRun(u32),
    /// A PCN's link-worker costs for the month before.
    ArrsMonth(u32),
    /// A PCN's claim for the month before, once its costs are in, and its payment.
    ArrsClaim(u32),
}

/// The simulation's state: what has been generated so far, folded, and what is scheduled.
pub struct Simulation {
    models: ReadModels,
    schedule: BinaryHeap<Reverse<(DateTime<Utc>, u64, Job)>>,
    sequence: u64,
    pub(crate) random: Random,
    pub(crate) world: world::World,
    pub(crate) journeys: Vec<journey::JourneyState>,
    seed: u64,
    ids: u64,
}

impl Simulation {
    /// A simulation of `scale`, seeded.
    pub fn new(scale: Scale, seed: u64) -> Simulation {
        let mut random = Random(seed ^ 0x5851_f42d_4c95_7f2d);
        let world = world::World::new(scale, &mut random);
        Simulation {
            models: ReadModels::default(),
            schedule: BinaryHeap::new(),
            sequence: 0,
            random,
            world,
            journeys: Vec::new(),
            seed,
            ids: 0,
        }
    }

    /// Generates the whole history, handing each event to `emit` in log order.
    pub fn run(mut self, mut emit: impl FnMut(NewEvent)) -> Result<ReadModels, Refused> {
        for pending in world::setup(&mut self) {
            self.decide_and_keep(pending, &mut emit)?;
        }
        self.schedule_year();
        while let Some(Reverse((at, _, job))) = self.schedule.pop() {
            let events = match job {
                Job::Journey(index) => journey::step(&mut self, index, at),
                Job::PaymentRun(anchor) => self.payment_run(anchor, at),
                Job::ArrsMonth(pcn) => world::arrs_month(&mut self, pcn, at),
                Job::ArrsClaim(pcn) => world::arrs_claim(&mut self, pcn, at),
            };
            for event in events {
                self.decide_and_keep(event, &mut emit)?;
            }
        }
        Ok(self.models)
    }

    /// The read models as generated so far.
    pub(crate) fn models(&self) -> &ReadModels {
        &self.models
    }

    pub(crate) fn at(&mut self, at: DateTime<Utc>, job: Job) {
        self.sequence += 1;
        self.schedule.push(Reverse((at, self.sequence, job)));
    }

    /// A fresh id, the same for the same seed.
    pub(crate) fn id(&mut self) -> Uuid {
        self.ids += 1;
        Uuid::from_u64_pair(self.seed, self.ids)
    }

    fn schedule_year(&mut self) {
        let referrals = self.world.shape.referrals;
        for index in 0..referrals {
            let day = self.random.below(365);
            let minute = self.random.below(8 * 60);
            let at = year_start()
                + chrono::Duration::days(day as i64)
                + chrono::Duration::minutes(minute as i64);
            self.journeys.push(journey::JourneyState::new());
            self.at(at, Job::Journey(index));
        }
        for anchor in 0..self.world.anchors.len() as u32 {
            for month in 1..=12 {
                self.at(
                    month_start(month) + chrono::Duration::days(4),
                    Job::PaymentRun(anchor),
                );
            }
        }
        for pcn in 0..self.world.pcns.len() as u32 {
            for month in 1..=12 {
                self.at(
                    month_start(month) + chrono::Duration::days(9),
                    Job::ArrsMonth(pcn),
                );
            }
        }
    }

    /// A run settling what the anchor owes through the last day of the month before `at`.
    fn payment_run(&mut self, anchor: u32, at: DateTime<Utc>) -> Vec<Pending> {
        let code = self.world.anchors[anchor as usize].clone();
        let through = at
            .date_naive()
            .with_day0(0)
            .expect("a first day")
            .pred_opt()
            .expect("a day before");
        let lines = self.models.ledger.payment_due(&code, through);
        if lines.is_empty() {
            return Vec::new();
        }
        let run_id = crate::payments::run_id(&code, through);
        let parts = followfund_contracts::events::PaymentRunRecorded::in_parts(
            run_id,
            code.clone(),
            through,
            lines,
        );
        let stream = format!("payments-{}", code.as_str());
        let payer = principal(code.as_str(), Role::Anchor);
        parts
            .into_iter()
            .map(|part| {
                let event = Event::PaymentRunRecorded(part);
                Pending::unchecked(event, stream.clone(), payer.clone(), at)
            })
            .collect()
    }

    /// Decides an event with the command layer it belongs to, then keeps it.
    fn decide_and_keep(
        &mut self,
        pending: Pending,
        emit: &mut impl FnMut(NewEvent),
    ) -> Result<(), Refused> {
        let refused = |reason: String| Refused {
            event_type: pending.event.type_name(),
            at: pending.at,
            reason,
        };
        let now = Utc::now();
        let stream = match pending.check {
            Check::Pathway => crate::commands::decide(
                &self.models,
                &pending.principal,
                now,
                pending.at,
                pending.event.clone(),
            )
            .map(|d| d.stream)
            .map_err(|e| refused(e.to_string()))?,
            Check::Arrs => {
                crate::arrs::decide(&self.models, &pending.principal, now, pending.event.clone())
                    .map(|d| d.stream)
                    .map_err(|e| refused(e.to_string()))?
            }
            Check::Sib => {
                crate::sib::decide(&self.models, &pending.principal, now, pending.event.clone())
                    .map(|d| d.stream)
                    .map_err(|e| refused(e.to_string()))?
            }
            Check::Unchecked(stream) => stream,
        };
        let new = self.envelope(&pending.event, stream, &pending.principal, pending.at);
        self.keep(pending.event, new, emit);
        Ok(())
    }

    fn envelope(
        &mut self,
        event: &Event,
        stream: String,
        principal: &Principal,
        at: DateTime<Utc>,
    ) -> NewEvent {
        let actor = Actor {
            organisation: principal.organisation.clone(),
            role: principal.role.as_str().into(),
            user: None,
        };
        let id = self.id();
        NewEvent::new(stream, event, actor, at)
            .expect("generated events are valid")
            .with_id(id)
            .with_recorded_at(at)
    }

    /// Folds an event into the models and hands its envelope on.
    fn keep(&mut self, event: Event, new: NewEvent, emit: &mut impl FnMut(NewEvent)) {
        let fact = Fact {
            position: self.models.position() + 1,
            occurred_at: new.occurred_at,
            event,
        };
        self.models.apply(&fact);
        emit(new);
    }
}

/// How an event is checked before it is kept.
pub(crate) enum Check {
    Pathway,
    Arrs,
    Sib,
    /// Terms and payment runs, built from the read models as the admin and payment code build
    /// them; the stream they go to.
    Unchecked(String),
}

/// An event waiting to be decided.
pub(crate) struct Pending {
    pub(crate) event: Event,
    pub(crate) principal: Principal,
    pub(crate) at: DateTime<Utc>,
    pub(crate) check: Check,
}

impl Pending {
    pub(crate) fn new(
        check: Check,
        event: Event,
        principal: Principal,
        at: DateTime<Utc>,
    ) -> Pending {
        Pending {
            event,
            principal,
            at,
            check,
        }
    }

    fn unchecked(event: Event, stream: String, principal: Principal, at: DateTime<Utc>) -> Pending {
        Pending {
            event,
            principal,
            at,
            check: Check::Unchecked(stream),
        }
    }
}

pub(crate) fn principal(organisation: &str, role: Role) -> Principal {
    Principal {
        organisation: organisation.into(),
        role,
    }
}

/// 1 April of the simulated year, 09:00.
pub(crate) fn year_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(YEAR_START_YEAR, 4, 1, 9, 0, 0)
        .unwrap()
}

/// The first day of the year's `n`th month after April (1 = May … 12 = April after), 09:00.
pub(crate) fn month_start(n: u32) -> DateTime<Utc> {
    let first = NaiveDate::from_ymd_opt(YEAR_START_YEAR, 4, 1).unwrap() + chrono::Months::new(n);
    Utc.from_utc_datetime(&first.and_hms_opt(9, 0, 0).unwrap())
}

/// A small deterministic generator (a 64-bit LCG's high bits): enough for synthetic data, the
/// same on every platform for the same seed.
pub(crate) struct Random(u64);

impl Random {
    /// A number below `bound`.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }

    /// True `percent` times in a hundred.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `options`.
    pub(crate) fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.below(options.len() as u64) as usize]
    }
}

/// Events in a batch appended to a store.
const STORE_BATCH_EVENTS: usize = 1_000;

/// Writes a simulated year as NDJSON; returns how many events, calling `progress` with the
/// count every thousand.
pub fn write_ndjson(
    scale: Scale,
    seed: u64,
    output: &mut impl std::io::Write,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<u64> {
    let mut written = 0u64;
    let mut failure = None;
    Simulation::new(scale, seed).run(|event| {
        if failure.is_some() {
            return;
        }
        if let Err(error) = writeln!(output, "{}", crate::exchange::line(&event)) {
            failure = Some(error);
        }
        written += 1;
        if written.is_multiple_of(1_000) {
            progress(written);
        }
    })?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    Ok(written)
}

/// Appends a simulated year to a store in atomic batches; returns how many events, and the read
/// models the simulation folded as it went. The simulation runs on a blocking thread and hands
/// batches over a channel.
pub async fn into_store(
    store: &crate::store::Store,
    scale: Scale,
    seed: u64,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(u64, ReadModels)> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<NewEvent>>(8);
    let generator = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(STORE_BATCH_EVENTS);
        let outcome = Simulation::new(scale, seed).run(|event| {
            batch.push(event);
            if batch.len() == STORE_BATCH_EVENTS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(STORE_BATCH_EVENTS));
                // A closed channel means the writer failed; its error is reported below.
                let _ = sender.blocking_send(full);
            }
        });
        if !batch.is_empty() {
            let _ = sender.blocking_send(batch);
        }
        outcome
    });
    let mut written = 0u64;
    while let Some(batch) = receiver.recv().await {
        written += batch.len() as u64;
        store.append(batch, vec![]).await?;
        progress(written);
    }
    let models = generator.await??;
    Ok((written, models))
}
