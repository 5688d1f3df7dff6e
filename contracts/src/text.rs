//! Reading values written as text without copying the text first.
//!
//! Serde reads a `Cow<str>` as an owned `String` whatever the input can lend, so every ODS code,
//! amount or year read that way took an allocation of its own: a national snapshot and every
//! replayed event hold millions of them.

use std::fmt;

use serde::Deserializer;
use serde::de::{Error, Visitor};

/// Reads a string from `deserializer` and hands it to `parse` where it lies; `expecting` names
/// what the text should be, for the decoder's error.
pub fn parse_str<'de, D, T, E>(
    deserializer: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    E: fmt::Display,
{
    struct Text<F> {
        expecting: &'static str,
        parse: F,
    }
    impl<'de, T, E: fmt::Display, F: FnOnce(&str) -> Result<T, E>> Visitor<'de> for Text<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<V: Error>(self, text: &str) -> Result<T, V> {
            (self.parse)(text).map_err(V::custom)
        }
        // As serde's own `String` does: some formats hand text over as bytes.
        fn visit_bytes<V: Error>(self, bytes: &[u8]) -> Result<T, V> {
            match std::str::from_utf8(bytes) {
                Ok(text) => self.visit_str(text),
                Err(_) => Err(V::invalid_value(serde::de::Unexpected::Bytes(bytes), &self)),
            }
        }
    }
    deserializer.deserialize_str(Text { expecting, parse })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn year<'de>(deserializer: impl Deserializer<'de>) -> Result<u16, String> {
        parse_str(deserializer, "a year", str::parse::<u16>).map_err(|error| error.to_string())
    }

    #[test]
    fn text_borrowed_or_owned_is_parsed_and_a_refusal_says_why() {
        let borrowed = year(&mut serde_json::Deserializer::from_str("\"2023\""));
        assert_eq!(borrowed, Ok(2023));
        let owned = serde_json::Value::String("2024".to_owned());
        assert_eq!(year(owned), Ok(2024));
        let refused = year(serde_json::Value::String("MMXXIII".to_owned())).unwrap_err();
        assert!(refused.contains("invalid digit"), "{refused}");
        let number = year(serde_json::Value::from(2023)).unwrap_err();
        assert!(number.contains("expected a year"), "{number}");
        let bytes = serde::de::value::BytesDeserializer::<serde::de::value::Error>::new(b"2025");
        assert_eq!(year(bytes), Ok(2025));
    }
}
