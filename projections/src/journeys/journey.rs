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
use crate::few::Few;
use crate::numbered::{Number, Numbered};
use crate::positions::Positions;

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
        let mut steps = Positions::default();
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
