//! The compact form of a payload, which the log keeps beside the canonical JSON so that a replay
//! decodes each event without parsing text: MessagePack with structs as lists of their fields.
//! Every payload is checked to read back equal from it as it is written; one that did not would
//! keep its JSON text instead. The JSON stays the canonical form: it is what the hash chain
//! covers.

use uuid::Uuid;

use std::str::FromStr;

use chrono::NaiveDate;

use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, Error as ValueError};

use super::{
    AssessmentHeld, CaseClosed, CatalogueError, Event, FROM_MESSAGE_PACK, OutcomeMeasured,
    PaymentLine, PaymentLineKind, PaymentRunRecorded, Place, PlanAgreed, PrescriptionAccepted,
    PrescriptionCompleted, PrescriptionEnded, PrescriptionIssued, ReferralAccepted,
    ReferralDeclined, ReferralReceived, SessionAttended, SessionMissed, catalogue,
};
use crate::{Money, OdsCode, PersonId};

/// How a compact payload is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The canonical JSON text.
    Json,
    /// MessagePack, structs as lists of their fields in declaration order.
    MessagePack,
}

impl Form {
    /// The form's number in a stored block.
    pub fn number(self) -> u8 {
        match self {
            Form::Json => 0,
            Form::MessagePack => 1,
        }
    }

    /// The form numbered `number`, if there is one.
    pub fn numbered(number: u8) -> Option<Form> {
        match number {
            0 => Some(Form::Json),
            1 => Some(Form::MessagePack),
            _ => None,
        }
    }
}

/// A payload in its compact form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compact {
    /// How `bytes` are written.
    pub form: Form,
    /// The payload.
    pub bytes: Vec<u8>,
}

impl Event {
    /// The payload's compact form: MessagePack when that reads back as this very event, the
    /// canonical JSON text otherwise. Checked here, where an event is written, so that a replay
    /// never meets a compact payload that says something else.
    pub fn compact(&self) -> Compact {
        if let Ok(bytes) = self.to_message_pack()
            && Event::from_message_pack(self.place(), &bytes).is_ok_and(|read| read == *self)
        {
            return Compact {
                form: Form::MessagePack,
                bytes,
            };
        }
        Compact {
            form: Form::Json,
            bytes: self.encode().into_bytes(),
        }
    }

    /// Reads a MessagePack payload of the type at `place` in the catalogue.
    pub fn from_message_pack(place: usize, bytes: &[u8]) -> Result<Event, CatalogueError> {
        if let Some(session) = session_from_message_pack(place, bytes) {
            return Ok(session);
        }
        if let Some(step) = step_from_message_pack(place, bytes) {
            return Ok(step);
        }
        if place == PAYMENT_RUN
            && let Some(run) = payment_run_from_message_pack(bytes)
        {
            return Ok(Event::PaymentRunRecorded(run));
        }
        let Some(read) = FROM_MESSAGE_PACK.get(place) else {
            return Err(CatalogueError::UnknownType {
                type_name: format!("#{place}"),
            });
        };
        read(bytes).map_err(|error| CatalogueError::InvalidData {
            type_name: catalogue()[place].name.to_owned(),
            path: "data".to_owned(),
            message: format!("the compact payload does not read back: {error}"),
        })
    }
}

const ATTENDED: usize = Place::SessionAttended as usize;
const MISSED: usize = Place::SessionMissed as usize;

/// A session attended or missed, read straight from its bytes: sessions are three in five of a
/// year's events, and serde's general reader spent several hundred instructions on each. Any
/// other shape gives none, and the general reader then reads it or says what is wrong.
fn session_from_message_pack(place: usize, bytes: &[u8]) -> Option<Event> {
    if place != ATTENDED && place != MISSED {
        return None;
    }
    let mut read = Cursor(bytes);
    let list = read.byte()?;
    let prescription_id = read.id()?;
    let session_id = read.id()?;
    match (place, list, read.0) {
        // A list of two fields.
        (ATTENDED, 0x92, []) => Some(Event::SessionAttended(SessionAttended {
            prescription_id,
            session_id,
        })),
        // A list of three, the last `false` or `true`.
        (MISSED, 0x93, [notice @ (0xc2 | 0xc3)]) => Some(Event::SessionMissed(SessionMissed {
            prescription_id,
            session_id,
            notice_given: *notice == 0xc3,
        })),
        _ => None,
    }
}

const PRESCRIPTION_ACCEPTED: usize = Place::PrescriptionAccepted as usize;
const PRESCRIPTION_COMPLETED: usize = Place::PrescriptionCompleted as usize;
const REFERRAL_ACCEPTED: usize = Place::ReferralAccepted as usize;
const ASSESSMENT_HELD: usize = Place::AssessmentHeld as usize;
const REFERRAL_RECEIVED: usize = Place::ReferralReceived as usize;
const REFERRAL_DECLINED: usize = Place::ReferralDeclined as usize;
const PLAN_AGREED: usize = Place::PlanAgreed as usize;
const PRESCRIPTION_ISSUED: usize = Place::PrescriptionIssued as usize;
const PRESCRIPTION_ENDED: usize = Place::PrescriptionEnded as usize;
const OUTCOME_MEASURED: usize = Place::OutcomeMeasured as usize;
const CASE_CLOSED: usize = Place::CaseClosed as usize;

/// The steps of a journey that a year holds by the million, read straight from their bytes:
/// those that name only a referral or prescription (and an assessment, its minutes too), a
/// fifth of a year's events, on which serde's general reader spent some 850 instructions each;
/// and a referral, its plan, issues, measures and closing, a quarter, at some 1,250 each. Kinds
/// and reasons are read by their own names through the same `Deserialize`. Any other shape
/// gives none, and the general reader then reads it or says what is wrong.
fn step_from_message_pack(place: usize, bytes: &[u8]) -> Option<Event> {
    let mut read = Cursor(bytes);
    let fields = read.array()?;
    let event = match (place, fields) {
        (PRESCRIPTION_ACCEPTED, 1) => Event::PrescriptionAccepted(PrescriptionAccepted {
            prescription_id: read.id()?,
        }),
        (PRESCRIPTION_COMPLETED, 1) => Event::PrescriptionCompleted(PrescriptionCompleted {
            prescription_id: read.id()?,
        }),
        (REFERRAL_ACCEPTED, 1) => Event::ReferralAccepted(ReferralAccepted {
            referral_id: read.id()?,
        }),
        (ASSESSMENT_HELD, 2) => Event::AssessmentHeld(AssessmentHeld {
            referral_id: read.id()?,
            duration_minutes: u32::try_from(read.number()?).ok()?,
        }),
        (REFERRAL_RECEIVED, 8) => Event::ReferralReceived(Box::new(ReferralReceived {
            referral_id: read.id()?,
            person_id: PersonId(read.id()?),
            source: read.named()?,
            referrer: read.optional(Cursor::ods)?,
            link_worker_organisation: read.ods()?,
            reasons: read.list(Cursor::named)?,
            age_band: read.named()?,
            conditions: read.list(Cursor::named)?,
        })),
        (REFERRAL_DECLINED, 2) => Event::ReferralDeclined(ReferralDeclined {
            referral_id: read.id()?,
            reason: read.named()?,
        }),
        (PLAN_AGREED, 3) => Event::PlanAgreed(PlanAgreed {
            referral_id: read.id()?,
            plan_id: read.id()?,
            needs: read.list(Cursor::named)?,
        }),
        (PRESCRIPTION_ISSUED, 5) => Event::PrescriptionIssued(PrescriptionIssued {
            prescription_id: read.id()?,
            referral_id: read.id()?,
            provider: read.ods()?,
            activity_type: read.named()?,
            agreement_id: read.optional(Cursor::id)?,
        }),
        (PRESCRIPTION_ENDED, 2) => Event::PrescriptionEnded(PrescriptionEnded {
            prescription_id: read.id()?,
            reason: read.named()?,
        }),
        (OUTCOME_MEASURED, 4) => Event::OutcomeMeasured(OutcomeMeasured {
            referral_id: read.id()?,
            instrument: read.named()?,
            stage: read.named()?,
            item_scores: read.list(Cursor::small)?,
        }),
        (CASE_CLOSED, 2) => Event::CaseClosed(CaseClosed {
            referral_id: read.id()?,
            reason: read.named()?,
        }),
        _ => return None,
    };
    read.0.is_empty().then_some(event)
}

const PAYMENT_RUN: usize = Place::PaymentRunRecorded as usize;

/// A payment run, read straight from its bytes: a year's runs hold millions of lines, and
/// serde's general reader spent about 2,000 instructions on each, a tenth of a replay's work.
/// Any shape other than the one `to_message_pack` writes, or a field that does not parse,
/// gives none, and the general reader then reads it or says what is wrong.
fn payment_run_from_message_pack(bytes: &[u8]) -> Option<PaymentRunRecorded> {
    let mut read = Cursor(bytes);
    if read.array()? != 6 {
        return None;
    }
    let run_id = read.id()?;
    let anchor = read.ods()?;
    let through = NaiveDate::from_str(read.text()?).ok()?;
    let part = u32::try_from(read.number()?).ok()?;
    let parts = u32::try_from(read.number()?).ok()?;
    // A run's lines come provider by provider: each provider's code is parsed once.
    let mut provider = None;
    let lines = read.list(|read| read.payment_line(&mut provider))?;
    read.0.is_empty().then_some(PaymentRunRecorded {
        run_id,
        anchor,
        through,
        part,
        parts,
        lines,
    })
}

/// Reads the MessagePack forms `to_message_pack` writes for the payloads read straight; each
/// read gives none at any other form.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&byte, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(byte)
    }

    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(count)?;
        self.0 = rest;
        Some(taken)
    }

    /// An unsigned number of up to eight bytes, big-endian, as MessagePack writes it.
    fn be(&mut self, count: usize) -> Option<u64> {
        let taken = self.take(count)?;
        Some(taken.iter().fold(0, |n, &b| n << 8 | u64::from(b)))
    }

    /// A list's length.
    fn array(&mut self) -> Option<usize> {
        let length = match self.byte()? {
            marker @ 0x90..=0x9f => u64::from(marker & 0x0f),
            0xdc => self.be(2)?,
            0xdd => self.be(4)?,
            _ => return None,
        };
        usize::try_from(length).ok()
    }

    /// A number that is not negative.
    fn number(&mut self) -> Option<u64> {
        match self.byte()? {
            small @ 0x00..=0x7f => Some(u64::from(small)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    /// A string.
    fn text(&mut self) -> Option<&'a str> {
        let length = match self.byte()? {
            marker @ 0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => usize::from(self.byte()?),
            _ => return None,
        };
        std::str::from_utf8(self.take(length)?).ok()
    }

    /// An id as MessagePack writes a UUID: 16 bytes behind the header of a short byte string.
    fn id(&mut self) -> Option<Uuid> {
        let [0xc4, 16, rest @ ..] = self.0 else {
            return None;
        };
        let (id, rest) = rest.split_first_chunk::<16>()?;
        self.0 = rest;
        Some(Uuid::from_bytes(*id))
    }

    /// A value written as its name, such as a kind or a reason, read by that name as its own
    /// `Deserialize` reads it.
    fn named<T: Deserialize<'a>>(&mut self) -> Option<T> {
        let name = self.text()?;
        T::deserialize(BorrowedStrDeserializer::<ValueError>::new(name)).ok()
    }

    fn ods(&mut self) -> Option<OdsCode> {
        OdsCode::parse(self.text()?).ok()
    }

    /// A number below 256, as a score is.
    fn small(&mut self) -> Option<u8> {
        u8::try_from(self.number()?).ok()
    }

    /// A value read by `read`, or none where MessagePack's nil stands.
    fn optional<T>(&mut self, read: fn(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if let [0xc0, rest @ ..] = self.0 {
            self.0 = rest;
            return Some(None);
        }
        read(self).map(Some)
    }

    /// A list of values each read by `read`.
    fn list<T>(&mut self, mut read: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let count = self.array()?;
        // No more items than bytes: a count cannot make room for more than the payload holds.
        let mut items = Vec::with_capacity(count.min(self.0.len()));
        for _ in 0..count {
            items.push(read(self)?);
        }
        Some(items)
    }

    /// A payment line, whose provider is `last`'s when its code is written the same.
    fn payment_line(&mut self, last: &mut Option<(&'a str, OdsCode)>) -> Option<PaymentLine> {
        if self.array()? != 5 {
            return None;
        }
        let code = self.text()?;
        let provider = match last {
            Some((last_code, provider)) if *last_code == code => provider.clone(),
            _ => {
                let provider = OdsCode::parse(code).ok()?;
                *last = Some((code, provider.clone()));
                provider
            }
        };
        let prescription_id = self.id()?;
        let kind = match self.text()? {
            "payment" => PaymentLineKind::Payment,
            "recovery" => PaymentLineKind::Recovery,
            _ => return None,
        };
        let amount = Money::from_str(self.text()?).ok()?;
        let positions = self.list(Cursor::number)?;
        Some(PaymentLine {
            provider,
            prescription_id,
            kind,
            amount,
            positions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::tests::samples;

    #[test]
    fn every_sample_reads_back_equal_from_its_compact_form() {
        let mut forms = std::collections::BTreeMap::new();
        for event in samples() {
            let compact = event.compact();
            let read = match compact.form {
                Form::MessagePack => Event::from_message_pack(event.place(), &compact.bytes),
                Form::Json => Event::decode_stored(
                    event.type_name(),
                    event.schema_version(),
                    std::str::from_utf8(&compact.bytes).unwrap(),
                ),
            };
            assert_eq!(read.as_ref(), Ok(&event), "{}", event.type_name());
            forms.insert(event.type_name(), compact.form);
        }
        assert_eq!(forms["session.attended"], Form::MessagePack);
        assert_eq!(forms["payment_run.recorded"], Form::MessagePack);
        // Tagged and flattened parts read back too, MessagePack being self-describing.
        assert_eq!(forms["sib_contract.published"], Form::MessagePack);
        assert_eq!(forms["arrs_rules.published"], Form::MessagePack);
        assert_eq!(
            forms.len(),
            catalogue().len(),
            "a sample of every type in the catalogue"
        );
    }

    #[test]
    fn a_session_takes_a_third_of_its_json() {
        let event = samples()
            .into_iter()
            .find(|event| event.type_name() == "session.attended")
            .unwrap();
        let compact = event.compact();
        assert_eq!(compact.form, Form::MessagePack);
        // A list marker, then two ids of 16 bytes, each behind a two-byte header.
        assert_eq!(compact.bytes.len(), 1 + 2 * (2 + 16));
        assert!(compact.bytes.len() * 2 < event.encode().len());
    }

    proptest::proptest! {
        #[test]
        fn a_session_read_straight_equals_what_the_general_reader_reads(
            prescription: u128,
            session: u128,
            notice_given: bool,
        ) {
            let (prescription_id, session_id) = (Uuid::from_u128(prescription), Uuid::from_u128(session));
            let attended = Event::SessionAttended(SessionAttended { prescription_id, session_id });
            let missed = Event::SessionMissed(SessionMissed { prescription_id, session_id, notice_given });
            for event in [attended, missed] {
                let bytes = event.to_message_pack().unwrap();
                let general = FROM_MESSAGE_PACK[event.place()](&bytes).unwrap();
                proptest::prop_assert_eq!(&general, &event);
                proptest::prop_assert_eq!(session_from_message_pack(event.place(), &bytes), Some(general));
            }
        }
    }

    #[test]
    fn a_session_of_another_shape_is_left_to_the_general_reader() {
        let (prescription_id, session_id) = (Uuid::from_u128(7), Uuid::from_u128(8));
        let attended = Event::SessionAttended(SessionAttended {
            prescription_id,
            session_id,
        })
        .to_message_pack()
        .unwrap();
        let missed = Event::SessionMissed(SessionMissed {
            prescription_id,
            session_id,
            notice_given: true,
        })
        .to_message_pack()
        .unwrap();
        assert!(session_from_message_pack(ATTENDED, &attended).is_some());
        let mut wrong_count = missed.clone();
        wrong_count[0] = 0x92;
        let mut not_a_flag = missed.clone();
        *not_a_flag.last_mut().unwrap() = 0x01;
        let mut short_id = attended.clone();
        short_id[2] = 15;
        let shapes = [
            (MISSED, attended.clone()),
            (ATTENDED, missed.clone()),
            (MISSED, wrong_count),
            (MISSED, not_a_flag),
            (ATTENDED, short_id),
            (ATTENDED, attended[..attended.len() - 1].to_vec()),
            (ATTENDED + 2, attended.clone()),
        ];
        for (place, bytes) in shapes {
            assert_eq!(
                session_from_message_pack(place, &bytes),
                None,
                "{bytes:02x?}"
            );
            assert!(
                Event::from_message_pack(place, &bytes).is_err(),
                "{bytes:02x?}"
            );
        }
    }

    /// The steps read straight, naming `id` and, for an assessment, `minutes`.
    fn steps(id: u128, minutes: u32) -> [Event; 4] {
        let id = Uuid::from_u128(id);
        [
            Event::PrescriptionAccepted(PrescriptionAccepted {
                prescription_id: id,
            }),
            Event::PrescriptionCompleted(PrescriptionCompleted {
                prescription_id: id,
            }),
            Event::ReferralAccepted(ReferralAccepted { referral_id: id }),
            Event::AssessmentHeld(AssessmentHeld {
                referral_id: id,
                duration_minutes: minutes,
            }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn a_step_read_straight_equals_what_the_general_reader_reads(
            id: u128,
            minutes in proptest::prop_oneof![0u32..128, 0u32..70_000, proptest::arbitrary::any::<u32>()],
        ) {
            for event in steps(id, minutes) {
                let bytes = event.to_message_pack().unwrap();
                let general = FROM_MESSAGE_PACK[event.place()](&bytes).unwrap();
                proptest::prop_assert_eq!(&general, &event);
                let straight = step_from_message_pack(event.place(), &bytes);
                proptest::prop_assert_eq!(straight, Some(general));
            }
        }

        #[test]
        fn a_step_read_straight_from_any_bytes_says_nothing_the_general_reader_would_not(
            id: u128,
            minutes: u32,
            at in proptest::arbitrary::any::<proptest::sample::Index>(),
            byte in proptest::arbitrary::any::<u8>(),
        ) {
            for event in steps(id, minutes) {
                let mut bytes = event.to_message_pack().unwrap();
                let at = at.index(bytes.len());
                bytes[at] = byte;
                for cut in [bytes.len(), at] {
                    let bytes = &bytes[..cut];
                    if let Some(straight) = step_from_message_pack(event.place(), bytes) {
                        let general = FROM_MESSAGE_PACK[event.place()](bytes).ok();
                        proptest::prop_assert_eq!(general, Some(straight));
                    }
                }
            }
        }
    }

    #[test]
    fn a_step_of_another_shape_is_left_to_the_general_reader() {
        let [accepted, _, _, assessed] = steps(7, 45).map(|event| event.to_message_pack().unwrap());
        let mut trailing = accepted.clone();
        trailing.push(0xc0);
        let mut negative_minutes = assessed.clone();
        *negative_minutes.last_mut().unwrap() = 0xff;
        let mut minutes_too_many = assessed[..assessed.len() - 1].to_vec();
        minutes_too_many.extend([0xcf, 1, 0, 0, 0, 0, 0, 0, 0]);
        let shapes = [
            (PRESCRIPTION_ACCEPTED, trailing.clone()),
            (PRESCRIPTION_ACCEPTED, assessed.clone()),
            (ASSESSMENT_HELD, accepted.clone()),
            (ASSESSMENT_HELD, negative_minutes),
            (ASSESSMENT_HELD, minutes_too_many),
            (ASSESSMENT_HELD, assessed[..assessed.len() - 1].to_vec()),
            (ATTENDED, accepted.clone()),
        ];
        for (place, bytes) in shapes {
            assert_eq!(step_from_message_pack(place, &bytes), None, "{bytes:02x?}");
        }
        // The general reader reads a step and ignores what follows it, as it does a run.
        assert_eq!(
            Event::from_message_pack(PRESCRIPTION_ACCEPTED, &trailing),
            Ok(steps(7, 45)[0].clone())
        );
        let error = Event::from_message_pack(ASSESSMENT_HELD, &accepted).unwrap_err();
        assert!(
            matches!(&error, CatalogueError::InvalidData { type_name, .. } if type_name == "assessment.held"),
            "{error}"
        );
    }

    /// Every name a kind or reason of type `T` is written as, read from its schema.
    fn names_of<T: schemars::JsonSchema>() -> Vec<String> {
        fn collect(value: &serde_json::Value, names: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(fields) => {
                    for (key, field) in fields {
                        match (key.as_str(), field) {
                            ("const", serde_json::Value::String(name)) => names.push(name.clone()),
                            ("enum", serde_json::Value::Array(listed)) => names.extend(
                                listed.iter().filter_map(|n| n.as_str().map(str::to_owned)),
                            ),
                            _ => collect(field, names),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| collect(i, names)),
                _ => {}
            }
        }
        let mut names = Vec::new();
        collect(schemars::schema_for!(T).as_value(), &mut names);
        names
    }

    /// The value of `T` named at `pick` (in turn) among its names.
    fn named<T: schemars::JsonSchema + serde::de::DeserializeOwned>(pick: usize) -> T {
        let names = names_of::<T>();
        serde_json::from_value(serde_json::json!(names[pick % names.len()])).unwrap()
    }

    /// The values of `T` named at each of `picks`.
    fn few<T: schemars::JsonSchema + serde::de::DeserializeOwned>(picks: &[usize]) -> Vec<T> {
        picks.iter().map(|pick| named(*pick)).collect()
    }

    #[test]
    fn every_kind_read_straight_is_named_in_its_schema() {
        use crate::events::{Instrument, ReferralReason};
        let reasons = names_of::<ReferralReason>();
        assert!(reasons.len() >= 5, "{reasons:?}");
        for name in &reasons {
            let json: ReferralReason = serde_json::from_value(serde_json::json!(name)).unwrap();
            let straight: Option<ReferralReason> =
                ReferralReason::deserialize(BorrowedStrDeserializer::<ValueError>::new(name)).ok();
            assert_eq!(straight, Some(json));
        }
        assert!(names_of::<Instrument>().contains(&"swemwbs".to_owned()));
    }

    /// The journey steps read straight, from ids, picks among each kind's names, lists of
    /// picks, scores and whether the optional fields are there.
    fn journeys(
        (id, other): (u128, u128),
        picks: [usize; 8],
        listed: Vec<usize>,
        item_scores: Vec<u8>,
        (referred, agreed): (bool, bool),
    ) -> Vec<Event> {
        let (id, other) = (Uuid::from_u128(id), Uuid::from_u128(other));
        let ods = |pick: usize| {
            let codes = ["B82005", "ANCHOR1", "VCSE042", "Y01234"];
            OdsCode::parse(codes[pick % codes.len()]).unwrap()
        };
        vec![
            Event::ReferralReceived(Box::new(ReferralReceived {
                referral_id: id,
                person_id: PersonId(other),
                source: named(picks[0]),
                referrer: referred.then(|| ods(picks[1])),
                link_worker_organisation: ods(picks[2]),
                reasons: few(&listed),
                age_band: named(picks[3]),
                conditions: few(&listed),
            })),
            Event::ReferralDeclined(ReferralDeclined {
                referral_id: id,
                reason: named(picks[4]),
            }),
            Event::PlanAgreed(PlanAgreed {
                referral_id: id,
                plan_id: other,
                needs: few(&listed),
            }),
            Event::PrescriptionIssued(PrescriptionIssued {
                prescription_id: other,
                referral_id: id,
                provider: ods(picks[5]),
                activity_type: named(picks[6]),
                agreement_id: agreed.then_some(id),
            }),
            Event::PrescriptionEnded(PrescriptionEnded {
                prescription_id: other,
                reason: named(picks[7]),
            }),
            Event::OutcomeMeasured(OutcomeMeasured {
                referral_id: id,
                instrument: named(picks[0]),
                stage: named(picks[1]),
                item_scores,
            }),
            Event::CaseClosed(CaseClosed {
                referral_id: id,
                reason: named(picks[2]),
            }),
        ]
    }

    fn a_journey() -> impl proptest::strategy::Strategy<Value = Vec<Event>> {
        use proptest::prelude::*;
        (
            any::<(u128, u128)>(),
            any::<[usize; 8]>(),
            proptest::collection::vec(any::<usize>(), 0..20),
            proptest::collection::vec(any::<u8>(), 0..20),
            any::<(bool, bool)>(),
        )
            .prop_map(|(ids, picks, listed, scores, optional)| {
                journeys(ids, picks, listed, scores, optional)
            })
    }

    proptest::proptest! {
        #[test]
        fn a_journey_step_read_straight_equals_what_the_general_reader_reads(
            events in a_journey(),
        ) {
            for event in events {
                let bytes = event.to_message_pack().unwrap();
                let general = FROM_MESSAGE_PACK[event.place()](&bytes).unwrap();
                proptest::prop_assert_eq!(&general, &event);
                let straight = step_from_message_pack(event.place(), &bytes);
                proptest::prop_assert_eq!(straight, Some(general));
            }
        }

        #[test]
        fn a_journey_step_read_straight_from_any_bytes_says_nothing_the_general_reader_would_not(
            events in a_journey(),
            at in proptest::arbitrary::any::<proptest::sample::Index>(),
            byte in proptest::arbitrary::any::<u8>(),
        ) {
            for event in events {
                let mut bytes = event.to_message_pack().unwrap();
                let at = at.index(bytes.len());
                bytes[at] = byte;
                for cut in [bytes.len(), at] {
                    let bytes = &bytes[..cut];
                    if let Some(straight) = step_from_message_pack(event.place(), bytes) {
                        let general = FROM_MESSAGE_PACK[event.place()](bytes).ok();
                        proptest::prop_assert_eq!(general, Some(straight));
                    }
                }
            }
        }
    }

    #[test]
    fn a_journey_step_of_another_shape_is_left_to_the_general_reader() {
        let events = journeys((1, 2), [0; 8], vec![0], vec![3], (true, true));
        let measured = events[5].to_message_pack().unwrap();
        let closed = events[6].to_message_pack().unwrap();
        let mut trailing = closed.clone();
        trailing.push(0xc0);
        let mut unknown_reason = closed.clone();
        *unknown_reason.last_mut().unwrap() = b'?';
        let mut score_too_large = measured[..measured.len() - 1].to_vec();
        score_too_large.extend([0xcd, 1, 0]);
        let mut score_as_text = measured[..measured.len() - 1].to_vec();
        score_as_text.extend([0xa1, b'3']);
        let shapes = [
            (CASE_CLOSED, trailing.clone()),
            (CASE_CLOSED, unknown_reason),
            (CASE_CLOSED, measured.clone()),
            (OUTCOME_MEASURED, closed.clone()),
            (OUTCOME_MEASURED, score_too_large),
            (OUTCOME_MEASURED, score_as_text),
            (OUTCOME_MEASURED, measured[..measured.len() - 1].to_vec()),
            (PAYMENT_RUN, closed.clone()),
        ];
        for (place, bytes) in shapes {
            assert_eq!(step_from_message_pack(place, &bytes), None, "{bytes:02x?}");
        }
        assert_eq!(
            Event::from_message_pack(CASE_CLOSED, &trailing),
            Ok(events[6].clone()),
            "the general reader ignores what follows, as it does a step's"
        );
    }

    /// A payment run of `lines`, each `(provider, prescription, recovery, pence, positions)`.
    fn run(part: u32, lines: Vec<(u8, u128, bool, i64, Vec<u64>)>) -> PaymentRunRecorded {
        let lines =
            lines
                .into_iter()
                .map(
                    |(provider, prescription, recovery, pence, positions)| PaymentLine {
                        provider: OdsCode::parse(&format!("V{provider:05}")).unwrap(),
                        prescription_id: Uuid::from_u128(prescription),
                        kind: if recovery {
                            PaymentLineKind::Recovery
                        } else {
                            PaymentLineKind::Payment
                        },
                        amount: Money::from_str(&format!("{}.{:02}", pence / 100, pence % 100))
                            .unwrap(),
                        positions,
                    },
                );
        PaymentRunRecorded {
            run_id: Uuid::from_u128(u128::from(part) << 64 | 7),
            anchor: OdsCode::parse("A00001").unwrap(),
            through: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
            part,
            parts: part.max(1),
            lines: lines.collect(),
        }
    }

    /// What the general reader reads from `bytes` as a payment run.
    fn general_run(bytes: &[u8]) -> Option<Event> {
        FROM_MESSAGE_PACK[PAYMENT_RUN](bytes).ok()
    }

    fn a_line() -> impl proptest::strategy::Strategy<Value = (u8, u128, bool, i64, Vec<u64>)> {
        use proptest::prelude::*;
        let positions =
            proptest::collection::vec(prop_oneof![0u64..128, 0u64..70_000, any::<u64>()], 0..20);
        // Few providers, so that runs of lines share one, as a run's lines do.
        (
            prop_oneof![0u8..3, any::<u8>()],
            any::<u128>(),
            any::<bool>(),
            0i64..10_000_000,
            positions,
        )
    }

    proptest::proptest! {
        #[test]
        fn a_payment_run_read_straight_equals_what_the_general_reader_reads(
            part in proptest::prop_oneof![0u32..128, 0u32..70_000, proptest::arbitrary::any::<u32>()],
            lines in proptest::collection::vec(a_line(), 0..40),
        ) {
            let event = Event::PaymentRunRecorded(run(part, lines));
            let bytes = event.to_message_pack().unwrap();
            let general = general_run(&bytes);
            proptest::prop_assert_eq!(general.as_ref(), Some(&event));
            let straight = payment_run_from_message_pack(&bytes).map(Event::PaymentRunRecorded);
            proptest::prop_assert_eq!(straight.as_ref(), Some(&event));
        }

        #[test]
        fn a_payment_run_read_straight_from_any_bytes_says_nothing_the_general_reader_would_not(
            lines in proptest::collection::vec(a_line(), 0..4),
            at in proptest::arbitrary::any::<proptest::sample::Index>(),
            byte in proptest::arbitrary::any::<u8>(),
        ) {
            let mut bytes = Event::PaymentRunRecorded(run(1, lines)).to_message_pack().unwrap();
            let at = at.index(bytes.len());
            bytes[at] = byte;
            for cut in [bytes.len(), at] {
                let bytes = &bytes[..cut];
                if let Some(straight) = payment_run_from_message_pack(bytes) {
                    proptest::prop_assert_eq!(
                        general_run(bytes),
                        Some(Event::PaymentRunRecorded(straight)),
                    );
                }
            }
        }
    }

    #[test]
    fn a_payment_run_of_many_lines_or_another_shape_is_read_all_the_same() {
        let many = run(
            1,
            (0..200)
                .map(|n| (1, n, n % 9 == 0, 5_500, vec![n as u64 * 70_001]))
                .collect(),
        );
        let bytes = Event::PaymentRunRecorded(many.clone())
            .to_message_pack()
            .unwrap();
        assert_eq!(payment_run_from_message_pack(&bytes), Some(many.clone()));
        // A list of lines longer than fifteen takes a longer header, which is read.
        assert!(bytes.windows(3).any(|w| w == [0xdc, 0, 200]));
        let mut trailing = bytes.clone();
        trailing.push(0xc0);
        assert_eq!(payment_run_from_message_pack(&trailing), None);
        // Left to the general reader, which reads the run and ignores what follows.
        assert_eq!(
            Event::from_message_pack(PAYMENT_RUN, &trailing),
            Ok(Event::PaymentRunRecorded(many))
        );
        let mut unknown_kind = Event::PaymentRunRecorded(run(1, vec![(1, 2, false, 100, vec![])]))
            .to_message_pack()
            .unwrap();
        let kind = unknown_kind
            .windows(7)
            .position(|w| w == b"payment")
            .unwrap();
        unknown_kind[kind] = b'q';
        assert_eq!(payment_run_from_message_pack(&unknown_kind), None);
        let error = Event::from_message_pack(PAYMENT_RUN, &unknown_kind).unwrap_err();
        assert!(
            matches!(&error, CatalogueError::InvalidData { type_name, .. } if type_name == "payment_run.recorded"),
            "{error}"
        );
    }

    #[test]
    fn a_compact_payload_that_does_not_fit_its_type_is_refused_with_the_type_named() {
        let attended = crate::events::place_of("session.attended").unwrap();
        let error = Event::from_message_pack(attended, &[0x91, 0xc0]).unwrap_err();
        assert!(
            matches!(&error, CatalogueError::InvalidData { type_name, .. } if type_name == "session.attended"),
            "{error}"
        );
        assert!(matches!(
            Event::from_message_pack(catalogue().len(), &[]),
            Err(CatalogueError::UnknownType { .. })
        ));
    }
}
