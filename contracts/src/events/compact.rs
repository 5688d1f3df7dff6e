//! The compact form of a payload, which the log keeps beside the canonical JSON so that a replay
//! decodes each event without parsing text: MessagePack with structs as lists of their fields.
//! Every payload is checked to read back equal from it as it is written; one that did not would
//! keep its JSON text instead. The JSON stays the canonical form: it is what the hash chain
//! covers.

use uuid::Uuid;

use super::{
    CatalogueError, Event, FROM_MESSAGE_PACK, Place, SessionAttended, SessionMissed, catalogue,
};

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
    let (&list, rest) = bytes.split_first()?;
    let (prescription_id, rest) = id(rest)?;
    let (session_id, rest) = id(rest)?;
    match (place, list, rest) {
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

/// An id as MessagePack writes a UUID: 16 bytes behind the header of a short byte string.
fn id(bytes: &[u8]) -> Option<(Uuid, &[u8])> {
    let [0xc4, 16, rest @ ..] = bytes else {
        return None;
    };
    let (id, rest) = rest.split_first_chunk::<16>()?;
    Some((Uuid::from_bytes(*id), rest))
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
