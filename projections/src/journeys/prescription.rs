//! One prescription: the activity a person was prescribed, where it stands with the provider, and
//! what happened at each of its sessions.

use chrono::{DateTime, Utc};
use followfund_contracts::events::{ActivityType, CancelledBy, PrescriptionIssued};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::compact::{Listed, Packed};

use crate::Fact;
use crate::journeys::SessionPlace;
use crate::numbered::Number;

/// Where a prescription stands. As for referrals, each status event sets the status it names:
/// commands keep the order meaningful, and the fold shows what the log holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrescriptionStatus {
    /// Waiting for a place under its agreement; not yet issued to the provider.
    Waitlisted,
    /// Issued; the provider has not answered yet.
    Issued,
    /// The provider accepted it and will offer the person a place.
    Accepted,
    /// The provider declined it or did not answer in time.
    Declined,
    /// The person completed the activity.
    Completed,
    /// It ended before completion.
    Ended,
}

impl PrescriptionStatus {
    /// Whether the prescription holds a place at the provider, which is what a provider's
    /// capacity counts: issued or accepted, not yet declined, completed or ended.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            PrescriptionStatus::Issued | PrescriptionStatus::Accepted
        )
    }
}

/// What happened at a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// The person attended.
    Attended,
    /// The person missed it.
    Missed {
        /// Whether the person gave the notice the agreement asks for.
        notice_given: bool,
    },
    /// It was cancelled before it took place.
    Cancelled {
        /// Who cancelled it.
        by: CancelledBy,
    },
    /// An attendance was recorded in error and withdrawn.
    Retracted,
}

impl Listed for SessionState {
    const ALL: &'static [SessionState] = &[
        SessionState::Attended,
        SessionState::Missed {
            notice_given: false,
        },
        SessionState::Missed { notice_given: true },
        SessionState::Cancelled {
            by: CancelledBy::Provider,
        },
        SessionState::Cancelled {
            by: CancelledBy::Person,
        },
        SessionState::Retracted,
    ];
}

/// A session of a prescription, as first recorded. When and by which event it was recorded is
/// in the log, at one of the journey's steps; a national year holds tens of millions of these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session's id.
    pub session_id: Uuid,
    /// What happened at it.
    #[serde(with = "crate::compact::listed")]
    pub state: SessionState,
}

/// The session's id, then the place of its state.
impl Packed for SessionRecord {
    fn pack(&self, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(self.session_id.as_bytes());
        bytes.push(crate::compact::place(self.state));
    }

    fn unpack(bytes: &mut &[u8]) -> Option<SessionRecord> {
        let (id, rest) = bytes.split_first_chunk::<16>()?;
        let (&place, rest) = rest.split_first()?;
        *bytes = rest;
        Some(SessionRecord {
            session_id: Uuid::from_bytes(*id),
            state: crate::compact::at_place(place)?,
        })
    }
}

/// Sessions a prescription is expected to have, for the room made for them when it is issued
/// (a course of social prescribing runs to about a dozen); it is given back once it closes.
const SESSIONS_EXPECTED: usize = 12;

/// A prescription of an activity run by a provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prescription {
    /// The prescription's id.
    #[serde(with = "crate::compact::id")]
    pub prescription_id: Uuid,
    /// The organisation running the activity, read through [`Journeys`](crate::Journeys),
    /// which numbers it.
    pub(crate) provider: Number,
    /// The kind of activity.
    #[serde(with = "crate::compact::listed")]
    pub activity_type: ActivityType,
    /// The agreement that prices its sessions; none when the activity is unfunded. Its id is
    /// read through [`Journeys`](crate::Journeys), which numbers it.
    pub(crate) agreement: Option<Number>,
    /// When it was issued (valid time), which decides the financial year it counts against;
    /// while it waits for a place, when it joined the queue.
    #[serde(with = "crate::compact::instant")]
    pub issued_at: DateTime<Utc>,
    /// The position of the event that issued it.
    pub issued_position: u64,
    /// Where it stands.
    #[serde(with = "crate::compact::listed")]
    pub status: PrescriptionStatus,
    /// Its sessions, in the order first recorded: a dozen or so, where a list is smaller and
    /// faster to search than a map.
    #[serde(with = "crate::compact::packed")]
    sessions: Vec<SessionRecord>,
    /// The place of its referral's journey among the journeys, so that each of its facts
    /// reaches the journey without looking the referral up, and the journey names the referral.
    pub(crate) journey_place: u32,
}

// A national year holds about 1.35 million prescriptions.
const _: () = assert!(std::mem::size_of::<Prescription>() == 80);

/// Filed under its id.
impl crate::records::Keyed for Prescription {
    fn id(&self) -> Uuid {
        self.prescription_id
    }
}

impl Prescription {
    /// A prescription as `prescription.issued` creates it, or in the status `Waitlisted` as
    /// `prescription.waitlisted` does, to be issued later from the queue; on the journey at
    /// `journey_place`, with its provider and agreement numbered `provider` and `agreement`.
    pub(crate) fn new(
        fact: &Fact,
        issue: &PrescriptionIssued,
        status: PrescriptionStatus,
        journey_place: u32,
        provider: Number,
        agreement: Option<Number>,
    ) -> Prescription {
        Prescription {
            prescription_id: issue.prescription_id,
            provider,
            activity_type: issue.activity_type,
            agreement,
            issued_at: fact.occurred_at,
            issued_position: fact.position,
            status,
            sessions: Vec::with_capacity(SESSIONS_EXPECTED),
            journey_place,
        }
    }

    /// Gives back the room its sessions grew into, once it is completed, ended or declined.
    pub(crate) fn fit(&mut self) {
        crate::fit::fit(&mut self.sessions);
    }

    /// How many sessions the person attended, not counting attendances since retracted.
    pub fn attended_count(&self) -> usize {
        self.sessions
            .iter()
            .filter(|session| session.state == SessionState::Attended)
            .count()
    }

    /// A session, if recorded.
    pub fn session(&self, session_id: Uuid) -> Option<&SessionRecord> {
        self.sessions.iter().find(|s| s.session_id == session_id)
    }

    /// Every session recorded, in the order first recorded.
    pub fn sessions(&self) -> &[SessionRecord] {
        &self.sessions
    }

    /// Records what happened at a session. The first record of a session stands: a repeated
    /// attendance is the same fact sent twice, and a conflicting record (missed after attended,
    /// say) is refused by commands, so an import is the only way one reaches the log and the
    /// first word is kept. A retracted session is free to be recorded again, because the
    /// retraction withdrew the only record it had.
    /// Returns the session's place among the sessions, which a record again keeps.
    pub(crate) fn record_session(&mut self, session_id: Uuid, state: SessionState) -> SessionPlace {
        debug_assert_ne!(state, SessionState::Retracted, "retract through `retract`");
        let record = SessionRecord { session_id, state };
        let Some(place) = self.place_of(session_id) else {
            self.sessions.push(record);
            return session_place(self.sessions.len() - 1);
        };
        let known = &mut self.sessions[place];
        if known.state == SessionState::Retracted {
            *known = record;
        }
        session_place(place)
    }

    /// Withdraws an attendance. Only an attendance can be retracted: retracting a session that
    /// was missed, cancelled, already retracted or never recorded changes nothing. Returns the
    /// session's place, if it was recorded.
    pub(crate) fn retract(&mut self, session_id: Uuid) -> Option<SessionPlace> {
        let place = self.place_of(session_id)?;
        let session = &mut self.sessions[place];
        if session.state == SessionState::Attended {
            session.state = SessionState::Retracted;
        }
        Some(session_place(place))
    }

    fn place_of(&self, session_id: Uuid) -> Option<usize> {
        self.sessions
            .iter()
            .position(|s| s.session_id == session_id)
    }
}

/// A session's index in its prescription's list, as the ledger keeps it.
fn session_place(index: usize) -> SessionPlace {
    SessionPlace::try_from(index).expect("fewer than 2^32 sessions")
}
