//! Referral journeys and their prescriptions, indexed by the keys the API scopes reads by and the
//! command layer validates against: referrals by link worker organisation, prescriptions by
//! provider and by referral.

mod journey;
mod prescription;

use std::collections::BTreeMap;

use followfund_contracts::events::{
    PrescriptionIssued, ReferralReason, ReferralReceived, ReferralRedirected,
};
use followfund_contracts::{Event, OdsCode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Fact;
use crate::few::Few;
use crate::id_list::IdList;
use crate::records::Records;

use crate::numbered::{Number, Numbered};

pub use journey::{CarePlan, Journey, ReferralStatus};
pub use prescription::{Prescription, PrescriptionStatus, SessionRecord, SessionState};

/// The place of a session among its prescription's sessions, in the order first recorded: what
/// the ledger knows a session by, so that each session's id is kept once, here, where it was
/// kept in the ledger as well (sixteen bytes for each of fifteen million sessions a year).
pub(crate) type SessionPlace = u32;

/// Where the journeys' fold of a fact found its prescription and session, which the ledger's
/// fold of the same fact reads: a prescription's place finds its funding without the hash of
/// its id (see `Ledger::warm`).
///
/// One word, made in a register and stored whole. As two `Option<u32>` it was written a field
/// at a time and then copied into the fold's list by one 16-byte load, which the CPU cannot
/// serve from the narrower stores still in its store buffer: it waited for every earlier store
/// to reach the cache, 8% of the fold ahead of the ledger in perf.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Located {
    /// Each place plus one, nought for none: the prescription's in the low half, the session's
    /// in the high.
    packed: u64,
}

impl Located {
    /// `prescription`: the place of the fact's prescription among the journeys' prescriptions,
    /// if it is known (after the fact, for the fact that adds it). `session`: the place of the
    /// fact's session among its prescription's sessions, for a session event.
    pub(crate) fn new(prescription: Option<u32>, session: Option<SessionPlace>) -> Located {
        Located {
            packed: plus_one(prescription) | plus_one(session) << 32,
        }
    }

    pub(crate) fn prescription(self) -> Option<u32> {
        (self.packed as u32).checked_sub(1)
    }

    pub(crate) fn session(self) -> Option<SessionPlace> {
        ((self.packed >> 32) as u32).checked_sub(1)
    }
}

impl std::fmt::Debug for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Located")
            .field("prescription", &self.prescription())
            .field("session", &self.session())
            .finish()
    }
}

/// A place as [`Located`] keeps it.
fn plus_one(place: Option<u32>) -> u64 {
    place.map_or(0, |place| {
        u64::from(place.checked_add(1).expect("places stay below u32::MAX"))
    })
}

/// Every referral journey and prescription, with the indexes queries use.
///
/// A snapshot holds the records but not the indexes, which say nothing the records do not:
/// they are rebuilt from the records when it is read. Stored, 2.5 million ids of a national
/// year were decoded and then each looked up to check it, a tenth of a restart's work; rebuilt,
/// they are one pass over the records and agree with them by construction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct Journeys {
    #[serde(with = "crate::records::packed")]
    journeys: Records<Journey>,
    #[serde(with = "crate::records::packed")]
    prescriptions: Records<Prescription>,
    /// The organisations journeys and prescriptions name, by the numbers they hold.
    organisations: Numbered<OdsCode>,
    /// The agreements prescriptions name, by the numbers they hold.
    agreements: Numbered<Uuid>,
    #[serde(skip)]
    referrals_by_organisation: BTreeMap<OdsCode, IdList>,
    #[serde(skip)]
    prescriptions_by_provider: BTreeMap<OdsCode, IdList>,
    /// Whether the indexes are left behind while a long fold runs, to be rebuilt at its end
    /// (see [`Journeys::pause_indexes`]).
    #[serde(skip)]
    indexes_paused: bool,
    /// Events naming a referral or prescription the log has not introduced. Commands validate
    /// before they append, so these come only from imports of partial histories (a service's
    /// records that begin mid-journey, say). Folding never rejects, so they are left out of
    /// every journey and counted here, where an operator can see them.
    orphans: u64,
}

/// [`Journeys`] as a snapshot holds them: its fields in its order, less the indexes.
#[derive(Deserialize)]
struct Stored {
    #[serde(with = "crate::records::packed")]
    journeys: Records<Journey>,
    #[serde(with = "crate::records::packed")]
    prescriptions: Records<Prescription>,
    organisations: Numbered<OdsCode>,
    agreements: Numbered<Uuid>,
    orphans: u64,
}

impl From<Stored> for Journeys {
    fn from(stored: Stored) -> Journeys {
        let mut journeys = Journeys {
            journeys: stored.journeys,
            prescriptions: stored.prescriptions,
            organisations: stored.organisations,
            agreements: stored.agreements,
            referrals_by_organisation: BTreeMap::new(),
            prescriptions_by_provider: BTreeMap::new(),
            indexes_paused: false,
            orphans: stored.orphans,
        };
        // Checked as read, not trusted. The check and each index have a thread: a restart
        // waits on them last, when the ledger's decoding has usually ended and left a core idle.
        let indexes = std::thread::scope(|scope| {
            let checked = scope.spawn(|| journeys.assert_consistent());
            let indexes = journeys.indexes();
            joined(checked);
            indexes
        });
        (
            journeys.referrals_by_organisation,
            journeys.prescriptions_by_provider,
        ) = indexes;
        journeys
    }
}

impl Journeys {
    /// Folds one fact, and returns where it found the fact's prescription and session, if the
    /// prescription is known. Every event type is named so that adding one to the catalogue
    /// forces a decision here.
    pub(crate) fn apply(&mut self, fact: &Fact) -> Located {
        self.apply_warmed(fact, None)
    }

    /// As [`Journeys::apply`], with the place [`Journeys::warm`] found for the fact's
    /// prescription. A prescription keeps its place, so only a fact whose prescription was not
    /// found then (there was none yet) is looked up again.
    pub(crate) fn apply_warmed(&mut self, fact: &Fact, warmed: Option<u32>) -> Located {
        let prescription_id = Journeys::step_prescription(&fact.event);
        let found = self.prescriptions.found(warmed, prescription_id);
        let session = match &fact.event {
            Event::SessionAttended(e) => {
                self.record_session(fact, found, e.session_id, SessionState::Attended)
            }
            Event::SessionMissed(e) => {
                let state = SessionState::Missed {
                    notice_given: e.notice_given,
                };
                self.record_session(fact, found, e.session_id, state)
            }
            Event::SessionCancelled(e) => {
                let state = SessionState::Cancelled { by: e.cancelled_by };
                self.record_session(fact, found, e.session_id, state)
            }
            Event::SessionRetracted(e) => {
                let session_id = e.session_id;
                self.update_prescription(fact, found, |prescription| {
                    prescription.retract(session_id)
                })
                .flatten()
            }
            _ => None,
        };
        let added = self.apply_other(fact, found);
        Located::new(found.or(added), session)
    }

    /// Folds a fact that names no session, given the place of the prescription it names, if
    /// that prescription is known. Returns the place of the prescription it adds, if it adds one.
    fn apply_other(&mut self, fact: &Fact, found: Option<u32>) -> Option<u32> {
        match &fact.event {
            // Organisations, funding terms and ARRS touch no journey.
            Event::OrganisationRegistered(_)
            | Event::BudgetAllocated(_)
            | Event::AgreementSigned(_)
            | Event::AgreementAmended(_)
            | Event::CapacityGrantAwarded(_)
            | Event::PaymentRunRecorded(_)
            | Event::ArrsRulesPublished(_)
            | Event::PcnRegistered(_)
            | Event::PcnPopulationRecorded(_)
            | Event::PcnArrsSumNotified(_)
            | Event::LinkWorkerEmployed(_)
            | Event::LinkWorkerWteChanged(_)
            | Event::LinkWorkerLeft(_)
            | Event::LinkWorkerCostPaid(_)
            | Event::ArrsClaimSubmitted(_)
            | Event::ArrsClaimPaid(_)
            | Event::SibContractPublished(_)
            | Event::CohortCostRecorded(_)
            | Event::SibOutcomeClaimed(_)
            | Event::SibOutcomeVerified(_)
            | Event::SibOutcomeWithdrawn(_)
            | Event::SibPaymentMade(_) => {}
            Event::ReferralReceived(referral) => self.receive(fact, referral),
            Event::ReferralAccepted(e) => {
                self.set_status(fact, e.referral_id, ReferralStatus::Accepted)
            }
            Event::ReferralDeclined(e) => {
                self.set_status(fact, e.referral_id, ReferralStatus::Declined)
            }
            Event::ReferralRedirected(redirection) => self.redirect(fact, redirection),
            Event::AssessmentHeld(e) => self.update(fact, e.referral_id, |journey| {
                journey.assessed_at.get_or_insert(fact.occurred_at);
            }),
            Event::PlanAgreed(e) => self.set_plan(fact, e.referral_id, e.plan_id, &e.needs),
            Event::PlanAmended(e) => self.set_plan(fact, e.referral_id, e.plan_id, &e.needs),
            Event::OutcomeMeasured(e) => self.update(fact, e.referral_id, |_| {}),
            Event::ReferralReferredBack(e) => {
                self.update_with(fact, e.referral_id, |journey, organisations| {
                    journey.status = ReferralStatus::ReferredBack;
                    journey.referred_back_to = Some(organisations.number(&e.to_organisation));
                });
            }
            Event::CaseClosed(e) => self.set_status(fact, e.referral_id, ReferralStatus::Closed),
            Event::PrescriptionIssued(issue) => return self.issue(fact, issue, found),
            Event::PrescriptionWaitlisted(waiting) => {
                let status = PrescriptionStatus::Waitlisted;
                return self.add_prescription(fact, &waiting.issue(), status, found);
            }
            Event::PrescriptionAccepted(_) => {
                self.set_prescription_status(fact, found, PrescriptionStatus::Accepted)
            }
            Event::PrescriptionDeclined(_) => {
                self.set_prescription_status(fact, found, PrescriptionStatus::Declined)
            }
            Event::PrescriptionCompleted(_) => {
                self.set_prescription_status(fact, found, PrescriptionStatus::Completed)
            }
            Event::PrescriptionEnded(_) => {
                self.set_prescription_status(fact, found, PrescriptionStatus::Ended)
            }
            // Folded by `apply`.
            Event::SessionAttended(_)
            | Event::SessionMissed(_)
            | Event::SessionCancelled(_)
            | Event::SessionRetracted(_) => {}
        }
        None
    }

    /// Every prescription's id, in the order of their places.
    pub(crate) fn prescription_ids(&self) -> impl ExactSizeIterator<Item = Uuid> + use<'_> {
        self.prescriptions.ids()
    }

    /// Reads, without changing anything, what `facts` will change: each prescription and
    /// journey they name, then the prescriptions' sessions, then the journeys' steps. Each
    /// pass's loads do not wait on one another, so their cache misses overlap: a pass that finds
    /// a record and reads its lists in one step holds fewer facts' misses in flight at once.
    /// Returns a value made from what was read, so that the reads are kept. Leaves in `found`
    /// the place of each fact's prescription, if it has one yet, for
    /// [`Journeys::apply_warmed`].
    pub(crate) fn warm(&self, facts: &[Fact], found: &mut Vec<Option<u32>>) -> u64 {
        let mut seen = 0u64;
        let prescriptions: Vec<Option<Uuid>> = facts
            .iter()
            .map(|fact| Journeys::step_prescription(&fact.event))
            .collect();
        seen ^= self.prescriptions.places(&prescriptions, found);
        // Lists made with room for the window: collected through a filter, each grew from
        // nothing a window at a time. The journeys the referrals name come first, then those of
        // the prescriptions found.
        let mut referrals: Vec<Option<Uuid>> = Vec::with_capacity(facts.len());
        referrals.extend(
            (facts.iter()).filter_map(|fact| Journeys::step_referral(&fact.event).map(Some)),
        );
        let mut journeys = Vec::with_capacity(2 * facts.len());
        seen ^= self.journeys.places(&referrals, &mut journeys);
        for prescription in found
            .iter()
            .flatten()
            .map(|&place| self.prescriptions.at(place))
        {
            seen ^= u64::from(prescription.status as u8);
            prescription.prefetch_sessions();
            journeys.push(Some(prescription.journey_place));
        }
        for &place in journeys.iter().flatten() {
            let steps = &self.journeys.at(place).steps;
            steps
                .last_byte()
                .into_iter()
                .for_each(crate::prefetch::prefetch);
        }
        seen
    }

    /// The referral a step of a journey names, for the steps that find their journey by it: the
    /// referral's own events and the issue of a prescription.
    fn step_referral(event: &Event) -> Option<Uuid> {
        match event {
            Event::ReferralReceived(e) => Some(e.referral_id),
            Event::ReferralAccepted(e) => Some(e.referral_id),
            Event::ReferralDeclined(e) => Some(e.referral_id),
            Event::ReferralRedirected(e) => Some(e.referral_id),
            Event::AssessmentHeld(e) => Some(e.referral_id),
            Event::PlanAgreed(e) => Some(e.referral_id),
            Event::PlanAmended(e) => Some(e.referral_id),
            Event::OutcomeMeasured(e) => Some(e.referral_id),
            Event::ReferralReferredBack(e) => Some(e.referral_id),
            Event::CaseClosed(e) => Some(e.referral_id),
            Event::PrescriptionIssued(e) => Some(e.referral_id),
            Event::PrescriptionWaitlisted(e) => Some(e.referral_id),
            _ => None,
        }
    }

    /// The prescription a step of a journey concerns: the one a prescription or session event
    /// names, none for the referral's own events.
    pub fn step_prescription(event: &Event) -> Option<Uuid> {
        match event {
            Event::PrescriptionIssued(e) => Some(e.prescription_id),
            Event::PrescriptionWaitlisted(e) => Some(e.prescription_id),
            Event::PrescriptionAccepted(e) => Some(e.prescription_id),
            Event::PrescriptionDeclined(e) => Some(e.prescription_id),
            Event::PrescriptionCompleted(e) => Some(e.prescription_id),
            Event::PrescriptionEnded(e) => Some(e.prescription_id),
            Event::SessionAttended(e) => Some(e.prescription_id),
            Event::SessionMissed(e) => Some(e.prescription_id),
            Event::SessionCancelled(e) => Some(e.prescription_id),
            Event::SessionRetracted(e) => Some(e.prescription_id),
            _ => None,
        }
    }

    /// Starts a journey. A second receipt of a known referral keeps the first one's details, as
    /// the journey's other events were recorded against them, and is shown as a step.
    fn receive(&mut self, fact: &Fact, referral: &ReferralReceived) {
        if self.journeys.contains(&referral.referral_id) {
            self.update(fact, referral.referral_id, |_| {});
            return;
        }
        let journey = Journey::received(fact, referral, &mut self.organisations);
        self.index_referral(&referral.link_worker_organisation, journey.referral_id);
        self.journeys.insert(journey);
    }

    /// Moves a referral to the service it was passed to. Scope follows the referral: the
    /// service that passed it on no longer finds it among its referrals.
    fn redirect(&mut self, fact: &Fact, redirection: &ReferralRedirected) {
        let id = redirection.referral_id;
        let moved = self.update_with(fact, id, |journey, organisations| {
            journey.status = ReferralStatus::Redirected;
            let to = organisations.number(&redirection.to_organisation);
            if journey.link_worker_organisation == to {
                return None;
            }
            let from = std::mem::replace(&mut journey.link_worker_organisation, to);
            journey.redirected(from);
            Some(organisations.get(from).clone())
        });
        if let Some(from) = moved.flatten() {
            self.unindex_referral(&from, id);
            self.index_referral(&redirection.to_organisation, id);
        }
    }

    /// Issues a prescription on a known referral, or from the waitlist. A second issue of a
    /// known prescription keeps the first, for the same reason as a second receipt. `found` is
    /// the prescription's place, if it is known. Returns the place of the prescription, if this
    /// issue adds it.
    fn issue(
        &mut self,
        fact: &Fact,
        issue: &PrescriptionIssued,
        found: Option<u32>,
    ) -> Option<u32> {
        let waiting = found.is_some_and(|place| {
            self.prescriptions.at(place).status == PrescriptionStatus::Waitlisted
        });
        if waiting {
            self.update_prescription(fact, found, |prescription| {
                prescription.status = PrescriptionStatus::Issued;
                prescription.issued_at = fact.occurred_at;
                prescription.issued_position = fact.position;
            });
            return None;
        }
        self.add_prescription(fact, issue, PrescriptionStatus::Issued, found)
    }

    /// Adds a prescription issued, or waitlisted, on a known referral, unless it is known
    /// already (`found` is its place). Returns its place if it adds it.
    fn add_prescription(
        &mut self,
        fact: &Fact,
        issue: &PrescriptionIssued,
        status: PrescriptionStatus,
        found: Option<u32>,
    ) -> Option<u32> {
        let Some(journey_place) = self.journeys.place(&issue.referral_id) else {
            self.orphans += 1;
            return None;
        };
        let prescription_id = issue.prescription_id;
        let journey = self.journeys.at_mut(journey_place);
        journey.record(fact.position);
        if found.is_some() {
            return None;
        }
        self.index_prescription(&issue.provider, prescription_id);
        let provider = self.organisations.number(&issue.provider);
        let agreement = issue.agreement_id.map(|id| self.agreements.number(&id));
        let prescription =
            Prescription::new(fact, issue, status, journey_place, provider, agreement);
        let place = self.prescriptions.insert(prescription);
        self.journeys
            .at_mut(journey_place)
            .prescriptions
            .push(place);
        Some(place)
    }

    fn set_status(&mut self, fact: &Fact, referral_id: Uuid, status: ReferralStatus) {
        self.update(fact, referral_id, |journey| {
            journey.status = status;
            if !status.is_open() {
                journey.fit();
            }
        });
    }

    /// The latest plan agreed or amended is the plan: an amendment lists the needs in full.
    fn set_plan(
        &mut self,
        fact: &Fact,
        referral_id: Uuid,
        plan_id: Uuid,
        needs: &[ReferralReason],
    ) {
        self.update(fact, referral_id, |journey| {
            journey.plan = Some(CarePlan {
                plan_id,
                needs: Few::from_slice(needs),
                position: fact.position,
            });
        });
    }

    fn set_prescription_status(
        &mut self,
        fact: &Fact,
        found: Option<u32>,
        status: PrescriptionStatus,
    ) {
        self.update_prescription(fact, found, |prescription| {
            prescription.status = status;
            if !status.is_open() {
                prescription.fit();
            }
        });
    }

    fn record_session(
        &mut self,
        fact: &Fact,
        found: Option<u32>,
        session_id: Uuid,
        state: SessionState,
    ) -> Option<SessionPlace> {
        self.update_prescription(fact, found, |prescription| {
            prescription.record_session(session_id, state)
        })
    }

    /// Records the fact as a step of a known referral and changes it; counts an orphan otherwise.
    fn update(&mut self, fact: &Fact, referral_id: Uuid, change: impl FnOnce(&mut Journey)) {
        self.update_with(fact, referral_id, |journey, _| change(journey));
    }

    /// As [`Journeys::update`], for a change that names an organisation, with the organisations'
    /// numbers: an organisation is numbered only when a known referral names it.
    fn update_with<T>(
        &mut self,
        fact: &Fact,
        referral_id: Uuid,
        change: impl FnOnce(&mut Journey, &mut Numbered<OdsCode>) -> T,
    ) -> Option<T> {
        let Some(journey) = self.journeys.get_mut(&referral_id) else {
            self.orphans += 1;
            return None;
        };
        journey.record(fact.position);
        Some(change(journey, &mut self.organisations))
    }

    /// Changes a known prescription (`found` is its place) and records the fact as a step of
    /// its referral; counts an orphan otherwise.
    fn update_prescription<T>(
        &mut self,
        fact: &Fact,
        found: Option<u32>,
        change: impl FnOnce(&mut Prescription) -> T,
    ) -> Option<T> {
        let Some(place) = found else {
            self.orphans += 1;
            return None;
        };
        let prescription = self.prescriptions.at_mut(place);
        let changed = change(prescription);
        let journey = self.journeys.at_mut(prescription.journey_place);
        journey.record(fact.position);
        Some(changed)
    }

    fn index_referral(&mut self, organisation: &OdsCode, referral_id: Uuid) {
        if !self.indexes_paused {
            index(
                &mut self.referrals_by_organisation,
                organisation,
                referral_id,
            );
        }
    }

    fn unindex_referral(&mut self, organisation: &OdsCode, referral_id: Uuid) {
        if !self.indexes_paused {
            unindex(
                &mut self.referrals_by_organisation,
                organisation,
                referral_id,
            );
        }
    }

    fn index_prescription(&mut self, provider: &OdsCode, prescription_id: Uuid) {
        if !self.indexes_paused {
            index(
                &mut self.prescriptions_by_provider,
                provider,
                prescription_id,
            );
        }
    }

    /// A referral's journey.
    pub fn journey(&self, referral_id: Uuid) -> Option<&Journey> {
        self.journeys.get(&referral_id)
    }

    /// A prescription.
    pub fn prescription(&self, prescription_id: Uuid) -> Option<&Prescription> {
        self.prescriptions.get(&prescription_id)
    }

    /// The journey of the referral a prescription belongs to.
    pub fn journey_of(&self, prescription: &Prescription) -> &Journey {
        self.journeys.at(prescription.journey_place)
    }

    /// The referral a prescription belongs to, if the prescription is known.
    pub fn referral_of(&self, prescription_id: Uuid) -> Option<Uuid> {
        let prescription = self.prescriptions.get(&prescription_id)?;
        Some(self.journey_of(prescription).referral_id)
    }

    /// The organisation whose link workers hold a referral now.
    pub fn link_worker_organisation(&self, journey: &Journey) -> &OdsCode {
        self.organisations.get(journey.link_worker_organisation)
    }

    /// The organisations that held a referral before it was redirected, oldest first.
    pub fn redirected_from<'a>(
        &'a self,
        journey: &'a Journey,
    ) -> impl Iterator<Item = &'a OdsCode> + use<'a> {
        let from = journey.redirected_from().iter();
        from.map(|organisation| self.organisations.get(*organisation))
    }

    /// The organisation that referred the person, when it has a code.
    pub fn referrer(&self, journey: &Journey) -> Option<&OdsCode> {
        let referrer = journey.referrer?;
        Some(self.organisations.get(referrer))
    }

    /// The clinician's organisation a referral was last referred back to, if any.
    pub fn referred_back_to(&self, journey: &Journey) -> Option<&OdsCode> {
        let to = journey.referred_back_to?;
        Some(self.organisations.get(to))
    }

    /// The organisation running a prescription's activity.
    pub fn provider(&self, prescription: &Prescription) -> &OdsCode {
        self.organisations.get(prescription.provider)
    }

    /// The agreement that prices a prescription's sessions; none when the activity is unfunded.
    pub fn agreement_id(&self, prescription: &Prescription) -> Option<Uuid> {
        let agreement = prescription.agreement?;
        Some(*self.agreements.get(agreement))
    }

    /// The referrals an organisation's link workers hold now, in referral id order (which is
    /// the order of receipt for time-ordered UUIDv7 ids).
    pub fn referrals_of<'a>(
        &'a self,
        organisation: &OdsCode,
    ) -> impl Iterator<Item = &'a Journey> + use<'a> {
        assert!(!self.indexes_paused, "indexes are read once rebuilt");
        let ids = self.referrals_by_organisation.get(organisation);
        ids.into_iter()
            .flatten()
            .map(|referral_id| self.journey_known(referral_id))
    }

    /// The prescriptions a provider was issued, in prescription id order.
    pub fn prescriptions_of_provider<'a>(
        &'a self,
        provider: &OdsCode,
    ) -> impl Iterator<Item = &'a Prescription> + use<'a> {
        assert!(!self.indexes_paused, "indexes are read once rebuilt");
        let ids = self.prescriptions_by_provider.get(provider);
        ids.into_iter()
            .flatten()
            .map(|prescription_id| self.prescription_known(prescription_id))
    }

    /// How many of a provider's prescriptions hold a place now: what its capacity limits.
    pub fn open_prescriptions_of_provider(&self, provider: &OdsCode) -> usize {
        self.prescriptions_of_provider(provider)
            .filter(|prescription| prescription.status.is_open())
            .count()
    }

    /// A referral's prescriptions, in the order they were issued; none for an unknown referral.
    pub fn prescriptions_of_referral(
        &self,
        referral_id: Uuid,
    ) -> impl Iterator<Item = &Prescription> + use<'_> {
        let journey = self.journeys.get(&referral_id);
        journey
            .into_iter()
            .flat_map(|journey| self.prescriptions_of(journey))
    }

    /// A journey's prescriptions, in the order they were issued.
    pub fn prescriptions_of<'a>(
        &'a self,
        journey: &'a Journey,
    ) -> impl Iterator<Item = &'a Prescription> + use<'a> {
        let places = journey.prescriptions.iter();
        places.map(|&place| self.prescriptions.at(place))
    }

    /// Every journey, in the order received.
    pub fn journeys(&self) -> impl Iterator<Item = &Journey> + use<'_> {
        self.journeys.iter().map(|(_, journey)| journey)
    }

    /// The journeys received after the referral `after` (all of them when it is none), in the
    /// order received; none after a referral the log does not hold.
    pub fn journeys_after(&self, after: Option<Uuid>) -> impl Iterator<Item = &Journey> + use<'_> {
        let (place, known) = match after {
            None => (None, true),
            Some(id) => (self.journeys.place(&id), self.journeys.contains(&id)),
        };
        let journeys = known.then(|| self.journeys.after(place).map(|(_, journey)| journey));
        journeys.into_iter().flatten()
    }

    /// Every prescription, in the order first issued or waitlisted.
    pub fn prescriptions(&self) -> impl Iterator<Item = &Prescription> + use<'_> {
        self.prescriptions
            .iter()
            .map(|(_, prescription)| prescription)
    }

    fn journey_known(&self, referral_id: &Uuid) -> &Journey {
        self.journeys
            .get(referral_id)
            .expect("indexes name known referrals")
    }

    fn prescription_known(&self, prescription_id: &Uuid) -> &Prescription {
        self.prescriptions
            .get(prescription_id)
            .expect("indexes name known prescriptions")
    }

    /// How many events named a referral or prescription the log had not introduced.
    pub fn orphans(&self) -> u64 {
        self.orphans
    }

    /// Every prescription is listed by its journey, and every number a record holds names an
    /// organisation or agreement; in time linear in their size. Reading journeys from a
    /// snapshot checks them so, and rebuilds the indexes from the records.
    pub fn assert_consistent(&self) {
        self.assert_numbered();
        self.assert_prescriptions_listed();
    }

    /// Stops keeping the indexes up to date fact by fact, for a fold of more facts than there
    /// are records: one pass over the records at its end is then cheaper than finding and
    /// filing under its organisation every referral and prescription folded (a tenth of the
    /// journeys' fold of a national year). Nothing reads the indexes until
    /// [`Journeys::resume_indexes`] rebuilds them.
    pub(crate) fn pause_indexes(&mut self) {
        if !self.indexes_paused {
            self.referrals_by_organisation.clear();
            self.prescriptions_by_provider.clear();
            self.indexes_paused = true;
        }
    }

    /// Rebuilds the indexes, if they were paused.
    pub(crate) fn resume_indexes(&mut self) {
        if self.indexes_paused {
            (
                self.referrals_by_organisation,
                self.prescriptions_by_provider,
            ) = self.indexes();
            self.indexes_paused = false;
        }
    }

    /// How many journeys and prescriptions there are.
    pub(crate) fn records(&self) -> usize {
        self.journeys.len() + self.prescriptions.len()
    }

    /// The indexes, as the fold keeps them up to date, hold what the records say: every
    /// referral under the organisation that holds it, every prescription under its provider,
    /// once each, and no organisation with nothing under it. Tests call it after folding.
    pub fn assert_indexed(&self) {
        let (referrals, prescriptions) = self.indexes();
        assert!(
            self.referrals_by_organisation == referrals,
            "referrals indexed once, under the organisation that holds them"
        );
        assert!(
            self.prescriptions_by_provider == prescriptions,
            "prescriptions indexed once, under their providers"
        );
    }

    /// The indexes the records call for: referrals by the organisation that holds them, and
    /// prescriptions by provider, each built on a thread of its own.
    fn indexes(&self) -> (BTreeMap<OdsCode, IdList>, BTreeMap<OdsCode, IdList>) {
        std::thread::scope(|scope| {
            let referrals = scope.spawn(|| {
                let held = self.journeys.iter();
                self.grouped(held.map(|(id, journey)| (journey.link_worker_organisation, id)))
            });
            let issued = self.prescriptions.iter();
            let prescriptions = self.grouped(issued.map(|(id, issue)| (issue.provider, id)));
            (joined(referrals), prescriptions)
        })
    }

    /// Ids grouped under the organisations they come with, ascending in each group. Grouped by
    /// the organisation's number first, so that each id costs a push rather than a search of
    /// the codes.
    fn grouped(&self, named: impl Iterator<Item = (Number, Uuid)>) -> BTreeMap<OdsCode, IdList> {
        let mut groups: Vec<Vec<Uuid>> = vec![Vec::new(); self.organisations.len()];
        for (organisation, id) in named {
            let group = groups.get_mut(organisation.index() as usize);
            group
                .expect("records are indexed under numbered organisations")
                .push(id);
        }
        let numbers = (0..).map(|index| Number::at_index(index).expect("fewer than 2^32 - 1"));
        let grouped = numbers.zip(groups).filter(|(_, ids)| !ids.is_empty());
        let indexed = grouped.map(|(organisation, mut ids)| {
            // Time-ordered ids come nearly in order already, which the sort finds quickly.
            ids.sort_unstable();
            (
                self.organisations.get(organisation).clone(),
                IdList::ascending(ids),
            )
        });
        indexed.collect()
    }

    /// Every organisation and agreement a journey or prescription names by number is numbered.
    fn assert_numbered(&self) {
        let mut named = self.journeys().flat_map(Journey::organisations);
        assert!(
            named.all(|organisation| self.organisations.holds(organisation)),
            "journeys name numbered organisations"
        );
        for prescription in self.prescriptions() {
            assert!(
                self.organisations.holds(prescription.provider),
                "prescriptions name numbered providers"
            );
            let agreement = prescription.agreement;
            assert!(
                agreement.is_none_or(|agreement| self.agreements.holds(agreement)),
                "prescriptions name numbered agreements"
            );
        }
    }

    /// Every prescription is listed once, by the journey at its place: the journey is how a
    /// prescription names its referral.
    fn assert_prescriptions_listed(&self) {
        let mut listed = vec![false; self.prescriptions.len()];
        for (place, (_, journey)) in self.journeys.iter().enumerate() {
            for &at in &journey.prescriptions {
                let seen = listed.get_mut(at as usize);
                let seen = seen.expect("journeys list known prescriptions");
                assert!(!*seen, "prescriptions listed once");
                *seen = true;
                let prescription = self.prescriptions.at(at);
                assert_eq!(
                    prescription.journey_place as usize, place,
                    "a prescription names the journey that lists it"
                );
            }
        }
        assert!(listed.iter().all(|seen| *seen), "prescriptions listed");
    }
}

/// What a scoped thread returned, or its panic, carried on with its own message.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Files an id under an organisation.
fn index(index: &mut BTreeMap<OdsCode, IdList>, organisation: &OdsCode, id: Uuid) {
    index.entry(organisation.clone()).or_default().insert(id);
}

/// Removes a referral from an organisation's index entry, dropping the entry once empty so that
/// the index holds only organisations with referrals.
fn unindex(index: &mut BTreeMap<OdsCode, IdList>, organisation: &OdsCode, id: Uuid) {
    if let Some(ids) = index.get_mut(organisation) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(organisation);
        }
    }
}

#[cfg(test)]
mod tests;
