//! The compact form of a payload, which the log keeps beside the canonical JSON so that a replay
//! decodes each event without parsing text: MessagePack with structs as lists of their fields.
//! Every payload is checked to read back equal from it as it is written; one that did not would
//! keep its JSON text instead. The JSON stays the canonical form: it is what the hash chain
//! covers.

use super::{CatalogueError, Event, FROM_MESSAGE_PACK, catalogue};

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
