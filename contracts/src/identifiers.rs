//! Identifiers: pseudonymous persons, organisation codes, and NHS numbers (recognised only so the
//! ledger can refuse them).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

/// The JSON path of a whole event payload, the root every reported path starts from.
pub(crate) const PAYLOAD_PATH_ROOT: &str = "data";

const ODS_CODE_CHARS_MIN: usize = 3;
const ODS_CODE_CHARS_MAX: usize = 10;
const PCN_CODE_DIGITS: usize = 5;
const NHS_NUMBER_DIGITS: usize = 10;

/// Why an identifier was refused. Messages never repeat a rejected NHS number, because an error
/// message may end up in a log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// The text is not an ODS code.
    #[error(
        "`{input}` is not an ODS code: use 3 to 10 uppercase letters or digits, \
         such as `B82005` for a GP practice or `QWO` for an ICB"
    )]
    OdsCodeInvalid {
        /// The text that was given.
        input: String,
    },
    /// The text is not a Primary Care Network code.
    #[error("`{input}` is not a PCN code: use `U` followed by 5 digits, such as `U12345`")]
    PcnCodeInvalid {
        /// The text that was given.
        input: String,
    },
    /// The text does not have the shape of an NHS number.
    #[error(
        "not an NHS number: use 10 digits, optionally grouped 3, 3 and 4 by single spaces \
         (`943 476 5919`)"
    )]
    NhsNumberFormat,
    /// The text has the shape of an NHS number but its last digit is not the modulus-11 check
    /// digit of the first nine.
    #[error(
        "not an NHS number: the check digit does not match; check the number was copied correctly"
    )]
    NhsNumberCheckDigit,
}

/// A pseudonymous person. The ledger never holds who the person is; the mapping from this id to
/// a real person, where kept at all, lives outside the event log so that it can be erased.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct PersonId(pub Uuid);

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An organisation code: an NHS Organisation Data Service (ODS) code such as `B82005` (a GP
/// practice), `U12345` (a PCN) or `QWO` (an ICB), or an id the ledger assigns in the same shape to
/// organisations without one (most VCSE providers). 3 to 10 uppercase letters or digits.
///
/// Ids the ledger assigns should contain a letter: a code of ten digits whose last digit happens
/// to be a valid NHS number check digit is refused by `Event::decode` as personal data.
///
/// The code is held inline, padded with zero bytes, rather than on the heap: read models keep
/// one or two in every posting and journey, and a national year folds tens of millions of them.
/// Zero sorts before every letter and digit, so the derived order is the text's order.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OdsCode {
    bytes: [u8; ODS_CODE_CHARS_MAX],
    chars: u8,
}

impl fmt::Debug for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OdsCode").field(&self.as_str()).finish()
    }
}

impl OdsCode {
    /// Parses an ODS code. Lowercase is refused rather than corrected, so that one organisation
    /// cannot appear under two spellings.
    pub fn parse(input: &str) -> Result<OdsCode, IdentifierError> {
        let length_ok = (ODS_CODE_CHARS_MIN..=ODS_CODE_CHARS_MAX).contains(&input.len());
        let chars_ok = input
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if length_ok && chars_ok {
            Ok(OdsCode::inline(input))
        } else {
            Err(IdentifierError::OdsCodeInvalid {
                input: input.to_owned(),
            })
        }
    }

    /// Holds text already checked to be 3 to 10 uppercase letters or digits.
    fn inline(checked: &str) -> OdsCode {
        let mut bytes = [0; ODS_CODE_CHARS_MAX];
        bytes[..checked.len()].copy_from_slice(checked.as_bytes());
        let chars = u8::try_from(checked.len()).expect("at most 10 characters");
        OdsCode { bytes, chars }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.chars)]).expect("parsed as ASCII")
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OdsCode {
    type Err = IdentifierError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        OdsCode::parse(input)
    }
}

impl From<PcnCode> for OdsCode {
    fn from(pcn: PcnCode) -> Self {
        pcn.to_ods_code()
    }
}

impl Serialize for OdsCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OdsCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::parse_str(deserializer, "an ODS code", OdsCode::parse)
    }
}

impl JsonSchema for OdsCode {
    fn schema_name() -> Cow<'static, str> {
        "OdsCode".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "ods-code",
            "pattern": "^[A-Z0-9]{3,10}$",
        })
    }
}

/// A Primary Care Network's ODS code: `U` followed by 5 digits, such as `U12345`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PcnCode(String);

impl PcnCode {
    /// Parses a PCN code.
    pub fn parse(input: &str) -> Result<PcnCode, IdentifierError> {
        let valid = input.len() == 1 + PCN_CODE_DIGITS
            && input.starts_with('U')
            && input[1..].bytes().all(|b| b.is_ascii_digit());
        if valid {
            Ok(PcnCode(input.to_owned()))
        } else {
            Err(IdentifierError::PcnCodeInvalid {
                input: input.to_owned(),
            })
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same code as a general organisation code, for payloads that name any organisation.
    pub fn to_ods_code(&self) -> OdsCode {
        OdsCode::inline(&self.0)
    }
}

impl fmt::Display for PcnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PcnCode {
    type Err = IdentifierError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        PcnCode::parse(input)
    }
}

impl Serialize for PcnCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PcnCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::parse_str(deserializer, "a PCN code", PcnCode::parse)
    }
}

impl JsonSchema for PcnCode {
    fn schema_name() -> Cow<'static, str> {
        "PcnCode".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "pcn-code",
            "pattern": "^U[0-9]{5}$",
        })
    }
}

/// An NHS number, held as its 10 digits without spaces. The ledger has no field for one: this
/// type exists so that the catalogue can recognise NHS numbers and refuse them. It deliberately
/// does not implement `Serialize`, and its `Debug` output hides the digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

impl NhsNumber {
    /// Parses an NHS number: 10 digits, or 3, 3 and 4 digits separated by single spaces
    /// (`943 476 5919`), whose last digit is the modulus-11 check digit of the first nine.
    pub fn parse(input: &str) -> Result<NhsNumber, IdentifierError> {
        let digits = nhs_number_digits(input).ok_or(IdentifierError::NhsNumberFormat)?;
        if check_digit_matches(&digits) {
            Ok(NhsNumber(
                digits.iter().map(|d| char::from(b'0' + d)).collect(),
            ))
        } else {
            Err(IdentifierError::NhsNumberCheckDigit)
        }
    }

    /// The 10 digits, without spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(<redacted>)")
    }
}

/// The digit values of `input` if it has one of the two accepted shapes, else `None`.
fn nhs_number_digits(input: &str) -> Option<[u8; NHS_NUMBER_DIGITS]> {
    let bytes = input.as_bytes();
    let compact: Vec<u8> = match bytes.len() {
        10 => bytes.to_vec(),
        12 if bytes[3] == b' ' && bytes[7] == b' ' => bytes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 7)
            .map(|(_, b)| *b)
            .collect(),
        _ => return None,
    };
    let mut digits = [0u8; NHS_NUMBER_DIGITS];
    for (slot, byte) in digits.iter_mut().zip(&compact) {
        if !byte.is_ascii_digit() {
            return None;
        }
        *slot = byte - b'0';
    }
    Some(digits)
}

/// Modulus 11: weights 10 down to 2 over the first nine digits; the check digit is 11 minus the
/// remainder, where 11 stands for 0 and 10 means no valid NHS number has these nine digits.
fn check_digit_matches(digits: &[u8; NHS_NUMBER_DIGITS]) -> bool {
    let sum: u32 = digits[..9]
        .iter()
        .zip((2..=10u32).rev())
        .map(|(digit, weight)| u32::from(*digit) * weight)
        .sum();
    match 11 - sum % 11 {
        11 => digits[9] == 0,
        10 => false,
        check => u32::from(digits[9]) == check,
    }
}

/// Walks every string in a JSON value and returns the JSON path (such as `data.note` or
/// `data.items[2]`) of the first one that contains an NHS number: a token of exactly 10 digits, or
/// of 3, 3 and 4 digits separated by single spaces, bounded by the start or end of the string or
/// by a character that is not a letter or digit, whose check digit is valid.
///
/// JSON numbers are not scanned: they carry money and counts, and a person's number written by
/// mistake arrives as text. Object keys are not scanned either; payloads refuse unknown keys.
pub fn find_nhs_number(value: &Value) -> Option<String> {
    let mut path = String::from(PAYLOAD_PATH_ROOT);
    find_in(value, &mut path).then_some(path)
}

/// Depth-first search that leaves `path` pointing at the hit when it returns true.
fn find_in(value: &Value, path: &mut String) -> bool {
    let path_len = path.len();
    let found = match value {
        Value::String(text) => contains_nhs_number(text),
        Value::Array(items) => items.iter().enumerate().any(|(index, item)| {
            path.truncate(path_len);
            path.push_str(&format!("[{index}]"));
            find_in(item, path)
        }),
        Value::Object(fields) => fields.iter().any(|(key, item)| {
            path.truncate(path_len);
            path.push('.');
            path.push_str(key);
            find_in(item, path)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    };
    if !found {
        path.truncate(path_len);
    }
    found
}

/// Whether `text` holds an NHS-number token anywhere, per [`find_nhs_number`]. Reads the text
/// in place: it runs on every string of every payload submitted.
fn contains_nhs_number(text: &str) -> bool {
    if !has_digit_run(text.as_bytes()) {
        return false;
    }
    let mut previous: Option<char> = None;
    text.char_indices().any(|(start, c)| {
        let after_boundary = previous.is_none_or(|p| !p.is_alphanumeric());
        previous = Some(c);
        if !c.is_ascii_digit() || !after_boundary {
            return false;
        }
        let rest = &text[start..];
        // Both shapes are ASCII, so a candidate is as many bytes as characters.
        [10, 12].into_iter().any(|len| {
            let Some(candidate) = rest.get(..len) else {
                return false;
            };
            let before_boundary = rest[len..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
            before_boundary && NhsNumber::parse(candidate).is_ok()
        })
    })
}

/// Whether `bytes` hold ten digits in a row, or three followed by a space: every NHS-number
/// token starts so. Most strings (ids, dates, amounts) hold neither, and one pass over their
/// bytes settles them.
fn has_digit_run(bytes: &[u8]) -> bool {
    let mut digits = 0;
    bytes.iter().any(|byte| {
        if byte.is_ascii_digit() {
            digits += 1;
            return digits == 10;
        }
        let spaced = *byte == b' ' && digits >= 3;
        digits = 0;
        spaced
    })
}

/// Whether the JSON text `json` might hold an NHS number in one of its strings; `false` only
/// when none of its string literals does. Text with an escape is always suspect, as an escape
/// can spell a digit; keys are scanned with the values, which errs the same way.
pub fn text_may_hold_nhs_number(json: &str) -> bool {
    // Without escapes, quotes delimit strings exactly: every other piece is a string's body.
    if json.contains('\\') {
        return true;
    }
    has_digit_run(json.as_bytes()) && json.split('"').skip(1).step_by(2).any(contains_nhs_number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ods_codes_sort_as_their_text_does() {
        let texts = [
            "QWO",
            "QWO1",
            "B82005",
            "Z9",
            "ZZZZZZZZZZ",
            "A0000",
            "ANC01",
            "ANC1",
        ];
        let mut codes: Vec<OdsCode> = texts
            .iter()
            .filter_map(|text| OdsCode::parse(text).ok())
            .collect();
        assert_eq!(codes.len(), texts.len() - 1, "`Z9` is too short");
        codes.sort();
        let mut sorted: Vec<&str> = texts.iter().copied().filter(|t| t.len() >= 3).collect();
        sorted.sort();
        let round_trip: Vec<&str> = codes.iter().map(OdsCode::as_str).collect();
        assert_eq!(round_trip, sorted);
        assert_eq!(format!("{:?}", codes[0]), "OdsCode(\"A0000\")");
        assert!(
            size_of::<OdsCode>() <= 11,
            "held inline, without a heap pointer"
        );
    }

    #[test]
    fn nhs_number_with_valid_check_digit_parses_with_or_without_spaces() {
        assert_eq!(
            NhsNumber::parse("9434765919").unwrap().as_str(),
            "9434765919"
        );
        assert_eq!(
            NhsNumber::parse("943 476 5919").unwrap().as_str(),
            "9434765919"
        );
    }

    #[test]
    fn nhs_number_with_wrong_check_digit_is_refused() {
        assert_eq!(
            NhsNumber::parse("9434765918"),
            Err(IdentifierError::NhsNumberCheckDigit)
        );
    }

    #[test]
    fn nhs_number_whose_check_would_be_ten_is_refused() {
        // Nine digits 000000006 weigh 6 * 2 = 12; 12 mod 11 = 1 and 11 - 1 = 10.
        for last in 0..=9 {
            let input = format!("000000006{last}");
            assert_eq!(
                NhsNumber::parse(&input),
                Err(IdentifierError::NhsNumberCheckDigit),
                "{input}"
            );
        }
    }

    #[test]
    fn nhs_number_whose_check_would_be_eleven_ends_in_zero() {
        // Remainder 0 gives 11, which stands for 0.
        assert!(NhsNumber::parse("0000000000").is_ok());
        assert!(NhsNumber::parse("0000000001").is_err());
    }

    #[test]
    fn nhs_number_in_other_shapes_is_refused_as_format() {
        for input in [
            "",
            "943476591",
            "94347659190",
            "943-476-5919",
            "943  476 5919",
            "9434 76 5919",
            "94347659a9",
            " 9434765919",
        ] {
            assert_eq!(
                NhsNumber::parse(input),
                Err(IdentifierError::NhsNumberFormat),
                "{input:?}"
            );
        }
    }

    #[test]
    fn nhs_number_debug_and_errors_do_not_repeat_the_digits() {
        let number = NhsNumber::parse("9434765919").unwrap();
        assert!(!format!("{number:?}").contains("943"));
        let message = IdentifierError::NhsNumberCheckDigit.to_string();
        assert!(!message.contains("9434765918"));
    }

    #[test]
    fn find_nhs_number_reports_the_path_of_the_first_string_holding_one() {
        let value = json!({
            "referral_id": "0190a8e2-7b1c-7000-8000-000000000001",
            "items": ["fine", "call 943 476 5919 first"],
        });
        assert_eq!(find_nhs_number(&value).as_deref(), Some("data.items[1]"));
        let value = json!({ "note": "9434765919" });
        assert_eq!(find_nhs_number(&value).as_deref(), Some("data.note"));
        let value = json!({ "outer": { "inner": "nhs:9434765919." } });
        assert_eq!(find_nhs_number(&value).as_deref(), Some("data.outer.inner"));
        assert_eq!(
            find_nhs_number(&json!("9434765919")).as_deref(),
            Some("data")
        );
    }

    #[test]
    fn find_nhs_number_ignores_invalid_check_digits_numbers_and_longer_runs() {
        for value in [
            json!({ "id": "9434765918" }),
            json!({ "count": 9434765919u64 }),
            json!({ "phone": "09434765919" }),
            json!({ "ref": "94347659190" }),
            json!({ "ref": "a9434765919" }),
            json!({ "ref": "9434765919b" }),
            json!({ "ref": "943 476 59190" }),
        ] {
            assert_eq!(find_nhs_number(&value), None, "{value}");
        }
    }

    #[test]
    fn every_nhs_number_shape_starts_a_digit_run() {
        for text in [
            "9434765919",
            "943 476 5919",
            "x 943 476 5919 y",
            "call 9434765919.",
        ] {
            assert!(has_digit_run(text.as_bytes()), "{text}");
        }
        for text in [
            "2026-04-01",
            "12345678-9434-7659-1900-a434765b1900",
            "94 34 765919",
            "123456789",
            "£1,234.56",
        ] {
            assert!(!has_digit_run(text.as_bytes()), "{text}");
            assert!(!contains_nhs_number(text), "{text}");
        }
    }

    #[test]
    fn payload_text_is_suspect_only_for_a_string_that_could_be_an_nhs_number() {
        for clean in [
            r#"{"count":9434765919}"#,
            r#"{"id":"9434765918","ref":"94347659190"}"#,
            r#"{"referral_id":"12345678-9434-7659-1900-943476591900"}"#,
            r#"{"items":["fine",""]}"#,
        ] {
            assert!(!text_may_hold_nhs_number(clean), "{clean}");
        }
        for suspect in [
            r#"{"note":"9434765919"}"#,
            r#"{"items":["fine","call 943 476 5919 first"]}"#,
            r#"{"9434765919":1}"#,
            r#"{"note":"say \"hi\""}"#,
        ] {
            assert!(text_may_hold_nhs_number(suspect), "{suspect}");
        }
    }

    #[test]
    fn find_nhs_number_does_not_flag_uuids_or_hex_with_digit_runs() {
        let value = json!({
            "referral_id": "12345678-9434-7659-1900-943476591900",
            "hash": "deadbeef9434765919cafe0000943476591900",
            "uuid": Uuid::from_u128(0x9434765919_9434765919_u128).to_string(),
        });
        assert_eq!(find_nhs_number(&value), None);
    }

    #[test]
    fn ods_code_accepts_three_to_ten_uppercase_alphanumerics() {
        for input in ["QWO", "B82005", "U12345", "ABCDE12345"] {
            assert_eq!(OdsCode::parse(input).unwrap().as_str(), input);
        }
    }

    #[test]
    fn ods_code_refuses_wrong_length_lowercase_and_punctuation() {
        for input in [
            "",
            "AB",
            "ABCDE123456",
            "b82005",
            "B82-05",
            "B82 05",
            "B8200É",
        ] {
            let error = OdsCode::parse(input).unwrap_err();
            assert_eq!(
                error,
                IdentifierError::OdsCodeInvalid {
                    input: input.to_owned()
                }
            );
            assert!(error.to_string().contains("3 to 10 uppercase"), "{error}");
        }
    }

    #[test]
    fn ods_code_is_validated_when_deserialised() {
        let code: OdsCode = serde_json::from_value(json!("B82005")).unwrap();
        assert_eq!(serde_json::to_value(&code).unwrap(), json!("B82005"));
        let error = serde_json::from_value::<OdsCode>(json!("b82005")).unwrap_err();
        assert!(error.to_string().contains("is not an ODS code"), "{error}");
    }

    #[test]
    fn pcn_code_is_u_and_five_digits() {
        assert_eq!(PcnCode::parse("U12345").unwrap().as_str(), "U12345");
        for input in [
            "", "U1234", "U123456", "u12345", "X12345", "U1234A", "UU2345",
        ] {
            assert_eq!(
                PcnCode::parse(input),
                Err(IdentifierError::PcnCodeInvalid {
                    input: input.to_owned()
                }),
                "{input:?}"
            );
        }
        let ods: OdsCode = PcnCode::parse("U00001").unwrap().into();
        assert_eq!(ods.as_str(), "U00001");
        assert!(serde_json::from_value::<PcnCode>(json!("U1")).is_err());
    }

    #[test]
    fn person_id_serialises_as_a_bare_uuid() {
        let id = PersonId(Uuid::from_u128(1));
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            json!("00000000-0000-0000-0000-000000000001")
        );
    }
}
