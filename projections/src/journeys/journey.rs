//! One referral's journey: who it is for and with, where it stands, and every event that touched
//! it, by position, so that an answer can point back to the log.

use chrono::{DateTime, Utc};
use followfund_contracts::events::{
    AgeBand, LongTermCondition, ReferralReason, ReferralReceived, ReferralSource,
};
use followfund_contracts::{OdsCode, PersonId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Fact;
use crate::compact::{self, Packed, put_number, take_byte, take_id, take_number};
use crate::few::Few;
use crate::numbered::{Number, Numbered};
use crate::positions::Positions;
use crate::varint;

/// Where a referral stands. Each status event sets the status it names, whatever came before:
/// commands check that a step makes sense before appending it, so the log's order is the
/// journey's order, and a fold that second-guessed it would hide what was recorded.
///
/// The assessment and the care and support plan do not change the status: they happen while a
/// referral is `Accepted` and are shown by [`Journey::assessed_at`] and [`Journey::plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    /// Received, and not yet accepted, declined or redirected.
    Received,
    /// The link worker service took the referral on; assessment, planning and prescribing happen
    /// in this status.
    Accepted,
    /// The link worker service declined the referral. Closed to further work.
    Declined,
    /// Passed to another link worker service, which now holds it (see
    /// [`Journey::link_worker_organisation`]) and has yet to accept it.
    Redirected,
    /// The person was referred back to a clinician, for example in a crisis. The case stays open:
    /// prescriptions already running carry on, and the service may accept the referral again when
    /// the person returns, or close the case.
    ReferredBack,
    /// The link worker closed the case. Closed to further work.
    Closed,
}

impl ReferralStatus {
    /// Whether work on the referral may still be recorded: every status but `Declined` and
    /// `Closed`.
    pub fn is_open(self) -> bool {
        !matches!(self, ReferralStatus::Declined | ReferralStatus::Closed)
    }
}

/// The person's care and support plan, as last agreed or amended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarePlan {
    /// The plan's id.
    pub plan_id: Uuid,
    /// The needs the plan addresses, in full.
    #[serde(with = "crate::few::places")]
    pub needs: Few<ReferralReason>,
    /// The position of the event that agreed or last amended the plan.
    pub position: u64,
}

/// Room made for a journey's steps when its referral is received. A referral's journey runs
/// to some 27 events, about three bytes each; grown from nothing, its list was moved four times
/// on the way (8, 16, 32, 64 and 128 bytes), a million lists in a national year. It is fitted
/// when the referral closes.
const STEPS_BYTES_EXPECTED: usize = 64;

/// A referral and everything recorded about it since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journey {
    /// The referral's id.
    #[serde(with = "crate::compact::id")]
    pub referral_id: Uuid,
    /// The person referred (pseudonymous).
    pub person_id: PersonId,
    /// The organisation whose link workers hold the referral now; a redirection moves it. Read
    /// it, and the other organisations a journey names, through [`Journeys`](crate::Journeys),
    /// which numbers them.
    pub(crate) link_worker_organisation: Number,
    /// Organisations that held the referral before it was redirected, oldest first. Nearly
    /// every referral has none, and then the list takes a pointer's room and no allocation.
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer keeps the empty list at eight bytes"
    )]
    redirected_from: Option<Box<Vec<Number>>>,
    /// The referring organisation, when it has a code.
    pub(crate) referrer: Option<Number>,
    /// Who referred the person.
    #[serde(with = "crate::compact::listed")]
    pub source: ReferralSource,
    /// Why the person was referred.
    #[serde(with = "crate::few::places")]
    pub reasons: Few<ReferralReason>,
    /// The person's age band when referred.
    #[serde(with = "crate::compact::listed")]
    pub age_band: AgeBand,
    /// Long-term conditions the person lives with.
    #[serde(with = "crate::few::places")]
    pub conditions: Few<LongTermCondition>,
    /// When the referral was received (valid time).
    #[serde(with = "crate::compact::instant")]
    pub received_at: DateTime<Utc>,
    /// Where the referral stands.
    #[serde(with = "crate::compact::listed")]
    pub status: ReferralStatus,
    /// When the initial assessment was held; a later assessment does not move it.
    #[serde(with = "crate::compact::instant_option")]
    pub assessed_at: Option<DateTime<Utc>>,
    /// The care and support plan, once agreed.
    pub plan: Option<CarePlan>,
    /// The clinician's organisation the person was last referred back to, if any.
    pub(crate) referred_back_to: Option<Number>,
    /// The position of every event that touched the referral or its prescriptions, in order:
    /// the log holds what each one says.
    pub steps: Positions,
    /// The places of the referral's prescriptions among the journeys' prescriptions, in the
    /// order they were issued (see [`crate::Journeys::prescriptions_of`]): four bytes each where
    /// an id took sixteen.
    pub(crate) prescriptions: Vec<u32>,
}

// A national year holds about a million journeys.
const _: () = assert!(std::mem::size_of::<Journey>() == 208);

/// The ids, then each field in order: numbers as varints (an optional one plus one, zero for
/// none), places as bytes, instants as zigzagged microseconds (an optional one behind a byte
/// saying whether there is one), lists as their count then each item, and the steps as their
/// length then their bytes.
impl Packed for Journey {
    fn pack(&self, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(self.referral_id.as_bytes());
        bytes.extend_from_slice(self.person_id.0.as_bytes());
        put_number(bytes, Some(self.link_worker_organisation));
        match &self.redirected_from {
            None => varint::put(bytes, 0),
            Some(from) => {
                varint::put(bytes, from.len() as u64 + 1);
                from.iter()
                    .for_each(|number| put_number(bytes, Some(*number)));
            }
        }
        put_number(bytes, self.referrer);
        bytes.push(compact::place(self.source));
        self.reasons.pack(bytes);
        bytes.push(compact::place(self.age_band));
        self.conditions.pack(bytes);
        put_instant(bytes, Some(self.received_at));
        bytes.push(compact::place(self.status));
        put_instant(bytes, self.assessed_at);
        match &self.plan {
            None => bytes.push(0),
            Some(plan) => {
                bytes.push(1);
                bytes.extend_from_slice(plan.plan_id.as_bytes());
                plan.needs.pack(bytes);
                varint::put(bytes, plan.position);
            }
        }
        put_number(bytes, self.referred_back_to);
        compact::put_bytes(bytes, self.steps.as_bytes());
        varint::put(bytes, self.prescriptions.len() as u64);
        for place in &self.prescriptions {
            varint::put(bytes, u64::from(*place));
        }
    }

    fn unpack(bytes: &mut &[u8]) -> Option<Journey> {
        let referral_id = take_id(bytes)?;
        let person_id = PersonId(take_id(bytes)?);
        let link_worker_organisation = take_number(bytes)??;
        let redirected_from = match take_count(bytes)? {
            0 => None,
            count => {
                let from = (1..count).map(|_| take_number(bytes)?);
                Some(Box::new(from.collect::<Option<Vec<Number>>>()?))
            }
        };
        let referrer = take_number(bytes)?;
        let source = compact::at_place(take_byte(bytes)?)?;
        let reasons = Few::unpack(bytes)?;
        let age_band = compact::at_place(take_byte(bytes)?)?;
        let conditions = Few::unpack(bytes)?;
        let received_at = take_instant(bytes)??;
        let status = compact::at_place(take_byte(bytes)?)?;
        let assessed_at = take_instant(bytes)?;
        let plan = match take_byte(bytes)? {
            0 => None,
            1 => Some(CarePlan {
                plan_id: take_id(bytes)?,
                needs: Few::unpack(bytes)?,
                position: varint::take(bytes)?,
            }),
            _ => return None,
        };
        let referred_back_to = take_number(bytes)?;
        let steps = Positions::from_bytes(compact::take_bytes(bytes)?.to_vec()).ok()?;
        let count = take_count(bytes)?;
        let mut prescriptions = Vec::with_capacity(count.min(bytes.len()));
        for _ in 0..count {
            prescriptions.push(u32::try_from(varint::take(bytes)?).ok()?);
        }
        Some(Journey {
            referral_id,
            person_id,
            link_worker_organisation,
            redirected_from,
            referrer,
            source,
            reasons,
            age_band,
            conditions,
            received_at,
            status,
            assessed_at,
            plan,
            referred_back_to,
            steps,
            prescriptions,
        })
    }
}

/// An optional instant, as a byte saying whether there is one, then its microseconds zigzagged.
fn put_instant(bytes: &mut Vec<u8>, instant: Option<DateTime<Utc>>) {
    let Some(instant) = instant else {
        bytes.push(0);
        return;
    };
    bytes.push(1);
    varint::put(bytes, varint::zigzag(instant.timestamp_micros()));
}

/// What [`put_instant`] wrote: none when the bytes do not hold one, `Some(None)` for none.
fn take_instant(bytes: &mut &[u8]) -> Option<Option<DateTime<Utc>>> {
    match take_byte(bytes)? {
        0 => Some(None),
        1 => {
            let micros = varint::unzigzag(varint::take(bytes)?);
            DateTime::from_timestamp_micros(micros).map(Some)
        }
        _ => None,
    }
}

/// A count of items or bytes that follow, none when it cannot be one.
fn take_count(bytes: &mut &[u8]) -> Option<usize> {
    usize::try_from(varint::take(bytes)?).ok()
}

/// Filed under its referral.
impl crate::records::Keyed for Journey {
    fn id(&self) -> Uuid {
        self.referral_id
    }
}

impl Journey {
    /// A journey as its `referral.received` starts it, its organisations numbered among
    /// `organisations`.
    pub(crate) fn received(
        fact: &Fact,
        referral: &ReferralReceived,
        organisations: &mut Numbered<OdsCode>,
    ) -> Journey {
        let mut steps = Positions::with_capacity(STEPS_BYTES_EXPECTED);
        steps.push(fact.position);
        Journey {
            referral_id: referral.referral_id,
            person_id: referral.person_id,
            link_worker_organisation: organisations.number(&referral.link_worker_organisation),
            redirected_from: None,
            referrer: referral
                .referrer
                .as_ref()
                .map(|code| organisations.number(code)),
            source: referral.source,
            reasons: Few::from_slice(&referral.reasons),
            age_band: referral.age_band,
            conditions: Few::from_slice(&referral.conditions),
            received_at: fact.occurred_at,
            status: ReferralStatus::Received,
            assessed_at: None,
            plan: None,
            referred_back_to: None,
            steps,
            prescriptions: Vec::new(),
        }
    }

    /// Records the fact at `position` as a step, which must come after every step already
    /// recorded.
    pub(crate) fn record(&mut self, position: u64) {
        self.steps.push(position);
    }

    /// Every organisation the journey names, by number.
    pub(crate) fn organisations(&self) -> impl Iterator<Item = Number> + use<'_> {
        let named = [self.referrer, self.referred_back_to].into_iter().flatten();
        let named = named.chain([self.link_worker_organisation]);
        named.chain(self.redirected_from().iter().copied())
    }

    /// The organisations that held the referral before it was redirected, oldest first.
    pub(crate) fn redirected_from(&self) -> &[Number] {
        self.redirected_from.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Notes that `from` held the referral until it was redirected.
    pub(crate) fn redirected(&mut self, from: Number) {
        self.redirected_from.get_or_insert_default().push(from);
    }

    /// Gives back the room its lists grew into, once the referral is closed or declined.
    pub(crate) fn fit(&mut self) {
        self.steps.fit();
        crate::fit::fit(&mut self.prescriptions);
    }

    /// The position of the event that received the referral.
    pub fn received_position(&self) -> u64 {
        self.steps
            .first()
            .expect("a journey starts with its receipt")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::Listed;
    use proptest::prelude::*;

    fn listed<T: Listed + std::fmt::Debug>() -> impl Strategy<Value = T> {
        (0..T::ALL.len()).prop_map(|place| T::ALL[place])
    }

    fn few<T: Listed + std::fmt::Debug>() -> impl Strategy<Value = Few<T>> {
        proptest::collection::vec(listed::<T>(), 0..20).prop_map(|values| Few::from_slice(&values))
    }

    fn number() -> impl Strategy<Value = Number> {
        (0..u32::MAX - 1).prop_map(|index| Number::at_index(index).unwrap())
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        (-62_135_596_800_000_000i64..253_402_300_799_000_000)
            .prop_map(|micros| DateTime::from_timestamp_micros(micros).unwrap())
    }

    fn a_journey() -> impl Strategy<Value = Journey> {
        let plan =
            (any::<u128>(), few(), any::<u64>()).prop_map(|(id, needs, position)| CarePlan {
                plan_id: Uuid::from_u128(id),
                needs,
                position,
            });
        let steps = proptest::collection::btree_set(1..u64::MAX, 0..30).prop_map(|positions| {
            let mut steps = Positions::default();
            positions
                .into_iter()
                .for_each(|position| steps.push(position));
            steps
        });
        (
            (
                any::<(u128, u128)>(),
                number(),
                proptest::option::of(proptest::collection::vec(number(), 0..4)),
            ),
            (
                proptest::option::of(number()),
                listed(),
                few(),
                listed(),
                few(),
            ),
            (
                instant(),
                listed(),
                proptest::option::of(instant()),
                proptest::option::of(plan),
            ),
            (
                proptest::option::of(number()),
                steps,
                proptest::collection::vec(any::<u32>(), 0..10),
            ),
        )
            .prop_map(|(ids, referral, times, rest)| {
                let ((referral_id, person), link_worker_organisation, redirected_from) = ids;
                let (referrer, source, reasons, age_band, conditions) = referral;
                let (received_at, status, assessed_at, plan) = times;
                let (referred_back_to, steps, prescriptions) = rest;
                Journey {
                    referral_id: Uuid::from_u128(referral_id),
                    person_id: PersonId(Uuid::from_u128(person)),
                    link_worker_organisation,
                    redirected_from: redirected_from.map(Box::new),
                    referrer,
                    source,
                    reasons,
                    age_band,
                    conditions,
                    received_at,
                    status,
                    assessed_at,
                    plan,
                    referred_back_to,
                    steps,
                    prescriptions,
                }
            })
    }

    proptest! {
        #[test]
        fn a_journey_reads_back_through_its_packed_form_and_no_shorter(journey in a_journey()) {
            let mut bytes = Vec::new();
            journey.pack(&mut bytes);
            let mut read = bytes.as_slice();
            prop_assert_eq!(Journey::unpack(&mut read), Some(journey));
            prop_assert!(read.is_empty());
            for cut in 0..bytes.len() {
                prop_assert_eq!(Journey::unpack(&mut &bytes[..cut]), None, "cut to {}", cut);
            }
        }
    }

    #[test]
    fn a_packed_journey_naming_no_such_place_or_with_steps_out_of_order_is_refused() {
        let mut steps = Positions::default();
        steps.push(4);
        let journey = Journey {
            referral_id: Uuid::from_u128(1),
            person_id: PersonId(Uuid::from_u128(2)),
            link_worker_organisation: Number::at_index(0).unwrap(),
            redirected_from: None,
            referrer: None,
            source: ReferralSource::ALL[0],
            reasons: Few::from_slice(&[]),
            age_band: AgeBand::ALL[0],
            conditions: Few::from_slice(&[]),
            received_at: DateTime::from_timestamp_micros(0).unwrap(),
            status: ReferralStatus::ALL[0],
            assessed_at: None,
            plan: None,
            referred_back_to: None,
            steps,
            prescriptions: Vec::new(),
        };
        let mut bytes = Vec::new();
        journey.pack(&mut bytes);
        // After the ids: the organisation, no redirections, no referrer, the source, no
        // reasons, the age band, no conditions, the instant behind its flag, the status, no
        // assessment, no plan, no referral back, one byte of steps, no prescriptions.
        assert_eq!(
            bytes[32..],
            [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 4, 0]
        );
        let changed = |at: usize, byte: u8| {
            let mut changed = bytes.clone();
            changed[at] = byte;
            Journey::unpack(&mut changed.as_slice())
        };
        assert_eq!(changed(32, 0), None, "a journey is held by an organisation");
        assert_eq!(changed(35, 100), None, "no source at place 100");
        assert_eq!(changed(37, 100), None, "no age band at place 100");
        assert_eq!(changed(39, 2), None, "an instant's flag is 0 or 1");
        assert_eq!(changed(41, 100), None, "no status at place 100");
        assert_eq!(changed(43, 2), None, "a plan's flag is 0 or 1");
        assert_eq!(changed(46, 0), None, "a step repeats the one before");
        assert_eq!(changed(33, 1).map(|j| j.redirected_from().len()), Some(0));
    }
}
