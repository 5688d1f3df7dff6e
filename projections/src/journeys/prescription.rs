//! One prescription: the activity a person was prescribed, where it stands with the provider, and
//! what happened at each of its sessions.

use chrono::{DateTime, Utc};
use followfund_contracts::events::{ActivityType, CancelledBy, PrescriptionIssued};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::compact::{Listed, Packed, put_number, take_byte, take_id, take_number};

use crate::Fact;
use crate::journeys::SessionPlace;
use crate::numbered::Number;
use crate::varint;

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

/// The id, the provider's number, the activity's place, the agreement's number plus one (zero
/// for none), the microseconds of the issue, its position, the status's place, the sessions
/// (their count, then each), and the journey's place.
impl Packed for Prescription {
    fn pack(&self, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(self.prescription_id.as_bytes());
        varint::put(bytes, u64::from(self.provider.index()));
        bytes.push(crate::compact::place(self.activity_type));
        put_number(bytes, self.agreement);
        varint::put(bytes, varint::zigzag(self.issued_at.timestamp_micros()));
        varint::put(bytes, self.issued_position);
        bytes.push(crate::compact::place(self.status));
        crate::compact::packed::pack_all(&self.sessions, bytes);
        varint::put(bytes, u64::from(self.journey_place));
    }

    fn unpack(bytes: &mut &[u8]) -> Option<Prescription> {
        let prescription_id = take_id(bytes)?;
        let provider = Number::at_index(u32::try_from(varint::take(bytes)?).ok()?)?;
        let activity_type = crate::compact::at_place(take_byte(bytes)?)?;
        let agreement = take_number(bytes)?;
        let micros = varint::unzigzag(varint::take(bytes)?);
        let issued_at = DateTime::from_timestamp_micros(micros)?;
        let issued_position = varint::take(bytes)?;
        let status = crate::compact::at_place(take_byte(bytes)?)?;
        let sessions = crate::compact::packed::take_list(bytes)?;
        let journey_place = u32::try_from(varint::take(bytes)?).ok()?;
        Some(Prescription {
            prescription_id,
            provider,
            activity_type,
            agreement,
            issued_at,
            issued_position,
            status,
            sessions,
            journey_place,
        })
    }
}

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

    /// Prefetches a session in every cache line the sessions span, and the last, for a
    /// window's warming: recording a session compares its id with every one recorded
    /// (`place_of`), and with only the last read ahead the first lines missed one after another
    /// in the fold.
    pub(crate) fn prefetch_sessions(&self) {
        const CACHE_LINE_BYTES: usize = 64;
        const PER_LINE: usize = CACHE_LINE_BYTES / std::mem::size_of::<SessionRecord>();
        let every_line = self.sessions.iter().step_by(PER_LINE.max(1));
        every_line
            .chain(self.sessions.last())
            .for_each(crate::prefetch::prefetch);
    }
}

/// A session's index in its prescription's list, as the ledger keeps it.
fn session_place(index: usize) -> SessionPlace {
    SessionPlace::try_from(index).expect("fewer than 2^32 sessions")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a_prescription() -> impl Strategy<Value = Prescription> {
        let session =
            (any::<u128>(), 0..SessionState::ALL.len()).prop_map(|(id, state)| SessionRecord {
                session_id: Uuid::from_u128(id),
                state: SessionState::ALL[state],
            });
        let sessions = proptest::collection::vec(session, 0..20);
        let issued_micros = -62_135_596_800_000_000i64..253_402_300_799_000_000;
        (
            (any::<u128>(), 0..u32::MAX - 1, 0..ActivityType::ALL.len()),
            (
                proptest::option::of(0..u32::MAX - 1),
                issued_micros,
                any::<u64>(),
            ),
            (0..PrescriptionStatus::ALL.len(), sessions, any::<u32>()),
        )
            .prop_map(
                |(
                    (id, provider, activity),
                    (agreement, micros, position),
                    (status, sessions, journey),
                )| {
                    Prescription {
                        prescription_id: Uuid::from_u128(id),
                        provider: Number::at_index(provider).unwrap(),
                        activity_type: ActivityType::ALL[activity],
                        agreement: agreement.map(|index| Number::at_index(index).unwrap()),
                        issued_at: DateTime::from_timestamp_micros(micros).unwrap(),
                        issued_position: position,
                        status: PrescriptionStatus::ALL[status],
                        sessions,
                        journey_place: journey,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn a_prescription_reads_back_through_its_packed_form_and_no_shorter(
            prescription in a_prescription(),
        ) {
            let mut bytes = Vec::new();
            prescription.pack(&mut bytes);
            let mut read = bytes.as_slice();
            prop_assert_eq!(Prescription::unpack(&mut read), Some(prescription));
            prop_assert!(read.is_empty());
            for cut in 0..bytes.len() {
                prop_assert_eq!(Prescription::unpack(&mut &bytes[..cut]), None, "cut to {}", cut);
            }
        }
    }

    #[test]
    fn a_packed_prescription_naming_no_such_activity_status_or_number_is_refused() {
        let prescription = Prescription {
            prescription_id: Uuid::from_u128(1),
            provider: Number::at_index(3).unwrap(),
            activity_type: ActivityType::ALL[0],
            agreement: None,
            issued_at: DateTime::from_timestamp_micros(0).unwrap(),
            issued_position: 9,
            status: PrescriptionStatus::Issued,
            sessions: Vec::new(),
            journey_place: 5,
        };
        let mut bytes = Vec::new();
        prescription.pack(&mut bytes);
        // The id, then the provider, the activity, the agreement, the instant, the position,
        // the status, the count of sessions and the journey, a byte each here.
        assert_eq!(bytes[16..], [3, 0, 0, 0, 9, 1, 0, 5]);
        let changed = |at: usize, byte: u8| {
            let mut changed = bytes.clone();
            changed[at] = byte;
            Prescription::unpack(&mut changed.as_slice())
        };
        assert_eq!(changed(16, 4).map(|p| p.provider), Number::at_index(4));
        assert_eq!(changed(17, 100), None, "no activity at place 100");
        assert_eq!(
            changed(18, 1).map(|p| p.agreement),
            Some(Number::at_index(0))
        );
        assert_eq!(changed(21, 100), None, "no status at place 100");
        assert_eq!(changed(22, 1), None, "a session counted that is not there");
    }
}
