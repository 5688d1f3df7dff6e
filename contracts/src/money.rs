//! Money: exact amounts in pounds, with checked arithmetic and one named rounding rule.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Decimal places in a penny-exact amount of pounds.
const PENNY_DECIMAL_PLACES: u32 = 2;

/// Why an amount could not be produced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The result does not fit in the decimal range (about 7.9 × 10^28 pounds); the inputs are
    /// almost certainly wrong, for example a count entered in the price field.
    #[error("the amount is too large to represent; check the inputs for a misplaced figure")]
    Overflow,
    /// The text is not an amount of pounds.
    #[error(
        "`{input}` is not an amount of pounds: write it as a decimal string such as \"412.50\""
    )]
    Invalid {
        /// The text that was given.
        input: String,
    },
}

/// An exact amount of money in pounds sterling, such as £412.50. Negative amounts are allowed
/// (recoveries and reversals). Amounts are exact decimals, never floating point; they are rounded
/// to the penny only by [`Money::round_to_penny`], where a posting is made.
///
/// In JSON an amount is a string of pounds, such as `"412.50"`, so that no reader parses it as a
/// floating-point number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Money(Decimal);

/// The pence of two amounts both kept to the penny in 64 bits, which is how the ledger's amounts
/// nearly always stand: integer arithmetic on them gives the decimal's own result, exactly, in a
/// tenth of its instructions, and the ledger does such sums for every session it folds.
fn both_pence(a: Decimal, b: Decimal) -> Option<(i64, i64)> {
    let pence = |amount: Decimal| {
        (amount.scale() == PENNY_DECIMAL_PLACES)
            .then(|| i64::try_from(amount.mantissa()).ok())
            .flatten()
    };
    Some((pence(a)?, pence(b)?))
}

impl Ord for Money {
    fn cmp(&self, other: &Money) -> std::cmp::Ordering {
        match both_pence(self.0, other.0) {
            Some((a, b)) => a.cmp(&b),
            None => self.0.cmp(&other.0),
        }
    }
}

impl PartialOrd for Money {
    fn partial_cmp(&self, other: &Money) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Money {
    /// No money: £0.00.
    pub fn zero() -> Money {
        Money(Decimal::new(0, PENNY_DECIMAL_PLACES))
    }

    /// A penny-exact amount from a whole number of pence: `from_pence(41250)` is £412.50.
    pub fn from_pence(pence: i64) -> Money {
        // Built from its parts: `Decimal::new` checks the scale on every call, and the ledger's
        // sums come through here.
        let magnitude = pence.unsigned_abs();
        Money(Decimal::from_parts(
            magnitude as u32,
            (magnitude >> 32) as u32,
            0,
            pence < 0,
            PENNY_DECIMAL_PLACES,
        ))
    }

    /// The amount as a whole number of pence, when it is to the penny and fits in 64 bits:
    /// £412.50 is 41250, £0.005 is none.
    pub fn to_pence(&self) -> Option<i64> {
        if self.0.scale() == PENNY_DECIMAL_PLACES {
            return i64::try_from(self.0.mantissa()).ok();
        }
        let exact = if self.0.scale() <= PENNY_DECIMAL_PLACES {
            self.0
        } else {
            self.0.normalize()
        };
        let places = PENNY_DECIMAL_PLACES.checked_sub(exact.scale())?;
        let pence = exact.mantissa().checked_mul(10i128.pow(places))?;
        i64::try_from(pence).ok()
    }

    /// An amount from a decimal number of pounds, kept exactly as given.
    pub fn from_decimal(pounds: Decimal) -> Money {
        Money(pounds)
    }

    /// The amount as a decimal number of pounds.
    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// Whether the amount is zero (at any scale: £0 and £0.00 are both zero).
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// The same amount with the opposite sign, as for a recovery of an earlier payment.
    pub fn negated(&self) -> Money {
        Money(-self.0)
    }

    /// The amount rounded to the nearest penny, halves away from zero: £0.005 becomes £0.01 and
    /// −£0.005 becomes −£0.01. This is the only place the ledger rounds money.
    pub fn round_to_penny(&self) -> Money {
        if self.0.scale() == PENNY_DECIMAL_PLACES {
            return *self;
        }
        let mut rounded = self
            .0
            .round_dp_with_strategy(PENNY_DECIMAL_PLACES, RoundingStrategy::MidpointAwayFromZero);
        // Keep two places even for whole pounds so that every posted amount prints alike.
        rounded.rescale(PENNY_DECIMAL_PLACES);
        Money(rounded)
    }

    /// The sum of two amounts, exact.
    pub fn checked_add(&self, other: Money) -> Result<Money, MoneyError> {
        if let Some((a, b)) = both_pence(self.0, other.0)
            && let Some(sum) = a.checked_add(b)
        {
            return Ok(Money::from_pence(sum));
        }
        self.0
            .checked_add(other.0)
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }

    /// This amount minus `other`, exact.
    pub fn checked_sub(&self, other: Money) -> Result<Money, MoneyError> {
        if let Some((a, b)) = both_pence(self.0, other.0)
            && let Some(difference) = a.checked_sub(b)
        {
            return Ok(Money::from_pence(difference));
        }
        self.0
            .checked_sub(other.0)
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }

    /// This amount times a plain number (a WTE, a share, a count of days over days in the year),
    /// exact as far as the decimal allows and not rounded: round the result with
    /// [`Money::round_to_penny`] where a posting is made.
    pub fn checked_mul_decimal(&self, factor: Decimal) -> Result<Money, MoneyError> {
        self.0
            .checked_mul(factor)
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }
}

impl fmt::Display for Money {
    /// Pounds with at least two decimal places: `£412.50`, `-£3.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut magnitude = self.0.abs();
        if magnitude.scale() < PENNY_DECIMAL_PLACES {
            magnitude.rescale(PENNY_DECIMAL_PLACES);
        }
        let sign = if self.is_negative() { "-" } else { "" };
        write!(f, "{sign}£{magnitude}")
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// Parses a decimal number of pounds without a currency sign, such as `412.50` or `-3`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        pounds_and_pence(input).map_or_else(|| decimal_pounds(input), Ok)
    }
}

/// Reads any decimal number of pounds [`Money::from_str`] takes.
fn decimal_pounds(input: &str) -> Result<Money, MoneyError> {
    let well_formed = {
        let unsigned = input.strip_prefix('-').unwrap_or(input);
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        all_digits(whole) && all_digits(fraction)
    };
    let invalid = || MoneyError::Invalid {
        input: input.to_owned(),
    };
    if !well_formed {
        return Err(invalid());
    }
    Decimal::from_str_exact(input)
        .map(Money)
        .map_err(|_| invalid())
}

/// Digits of pounds at most in [`pounds_and_pence`], so that the pence fit an `i64`.
const POUNDS_DIGITS_MAX: usize = 15;

/// Pounds and pence written as a stored amount always is, digits, a point and two more, read
/// as pence: the same money as the general decimal reader gives, scale included, in a tenth of
/// its instructions, for the millions of lines a year's payment runs hold. None for any other
/// form, which the general reader then reads.
fn pounds_and_pence(input: &str) -> Option<Money> {
    let (pounds, pence) = input.split_once('.')?;
    if pounds.is_empty() || pounds.len() > POUNDS_DIGITS_MAX || pence.len() != 2 {
        return None;
    }
    let number = |digits: &str| {
        digits.bytes().try_fold(0i64, |number, digit| {
            digit
                .is_ascii_digit()
                .then(|| number * 10 + i64::from(digit - b'0'))
        })
    };
    Some(Money::from_pence(number(pounds)? * 100 + number(pence)?))
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::parse_str(deserializer, "an amount in pounds", str::parse)
    }
}

/// Serde's `with` form of an amount as the 16 bytes of its decimal: exact, scale included, like
/// the text form, and read back without parsing. For snapshots of records counted in millions;
/// JSON keeps the text.
pub mod exact_bytes {
    use super::*;

    /// Writes the decimal's 16 bytes.
    pub fn serialize<S: Serializer>(money: &Money, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&money.0.serialize())
    }

    /// Reads 16 bytes written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        deserializer.deserialize_bytes(ExactBytes)
    }

    struct ExactBytes;

    impl<'de> serde::de::Visitor<'de> for ExactBytes {
        type Value = Money;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("the 16 bytes of a decimal amount")
        }

        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Money, E> {
            let bytes: [u8; 16] = bytes
                .try_into()
                .map_err(|_| E::invalid_length(bytes.len(), &self))?;
            Ok(Money(Decimal::deserialize(bytes)))
        }

        // Formats without a bytes type, such as JSON, write the bytes as a list of numbers.
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut list: A) -> Result<Money, A::Error> {
            let mut bytes = [0_u8; 16];
            for (read, byte) in bytes.iter_mut().enumerate() {
                *byte = list
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(read, &self))?;
            }
            if list.next_element::<u8>()?.is_some() {
                return Err(serde::de::Error::invalid_length(17, &self));
            }
            Ok(Money(Decimal::deserialize(bytes)))
        }
    }
}

impl JsonSchema for Money {
    fn schema_name() -> Cow<'static, str> {
        "Money".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "pounds",
            "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn pounds_and_pence_read_as_the_general_reader_reads_them(
            pence in 0u64..100_000_000_000_000_000,
            zeros in 0usize..3,
            cut in 0usize..4,
        ) {
            let text = format!("{}{}.{:02}", "0".repeat(zeros), pence / 100, pence % 100);
            let text = &text[..text.len() - cut.min(2)];
            let general = decimal_pounds(text).map(|money| money.0.serialize());
            let read = text.parse::<Money>().map(|money| money.0.serialize());
            proptest::prop_assert_eq!(read, general, "{}", text);
        }
    }

    #[test]
    fn only_pounds_and_two_decimals_are_read_as_pence() {
        assert_eq!(pounds_and_pence("412.50"), Some(Money::from_pence(41_250)));
        assert_eq!(pounds_and_pence("0.07"), Some(Money::from_pence(7)));
        let others = [
            "412.5",
            "412",
            "-3.00",
            ".50",
            "1.2.3",
            "4x.00",
            "1234567890123456.00",
        ];
        for other in others {
            assert_eq!(pounds_and_pence(other), None, "{other}");
        }
        for other in ["-3.00", "1234567890123456.00"] {
            assert_eq!(pounds(other), decimal_pounds(other).unwrap(), "{other}");
        }
    }

    fn pounds(text: &str) -> Money {
        text.parse().unwrap()
    }

    #[test]
    fn pence_are_whole_pennies_only() {
        assert_eq!(pounds("412.50").to_pence(), Some(41_250));
        assert_eq!(pounds("412.5").to_pence(), Some(41_250));
        assert_eq!(pounds("-3").to_pence(), Some(-300));
        assert_eq!(
            pounds("7.1000").to_pence(),
            Some(710),
            "trailing zeros are no fraction"
        );
        assert_eq!(pounds("0.005").to_pence(), None);
        assert_eq!(
            pounds("100000000000000000000").to_pence(),
            None,
            "beyond 64 bits"
        );
        assert_eq!(Money::from_pence(i64::MIN).to_pence(), Some(i64::MIN));
        for pence in [0, 1, -1, 99, 100, 123_456_789] {
            assert_eq!(Money::from_pence(pence).to_pence(), Some(pence));
        }
    }

    #[test]
    fn round_to_penny_takes_halves_away_from_zero() {
        assert_eq!(pounds("0.005").round_to_penny(), pounds("0.01"));
        assert_eq!(pounds("-0.005").round_to_penny(), pounds("-0.01"));
        assert_eq!(pounds("2.675").round_to_penny(), pounds("2.68"));
        assert_eq!(pounds("2.665").round_to_penny(), pounds("2.67"));
        assert_eq!(pounds("0.0049999").round_to_penny(), Money::zero());
        assert_eq!(pounds("-0.0049").round_to_penny(), Money::zero());
        assert_eq!(pounds("412.5").round_to_penny().to_string(), "£412.50");
        assert_eq!(pounds("7").round_to_penny().to_string(), "£7.00");
    }

    #[test]
    fn from_pence_is_penny_exact() {
        assert_eq!(Money::from_pence(41250), pounds("412.50"));
        assert_eq!(Money::from_pence(-1).to_string(), "-£0.01");
        assert_eq!(Money::from_pence(0), Money::zero());
        assert!(Money::from_pence(0).is_zero());
    }

    #[test]
    fn display_shows_pounds_and_at_least_two_places() {
        assert_eq!(pounds("412.50").to_string(), "£412.50");
        assert_eq!(pounds("3").to_string(), "£3.00");
        assert_eq!(pounds("-3.1").to_string(), "-£3.10");
        assert_eq!(pounds("0.125").to_string(), "£0.125");
        assert_eq!(Money::zero().to_string(), "£0.00");
    }

    #[test]
    fn checked_arithmetic_is_exact_and_reports_overflow() {
        let a = pounds("0.10");
        let b = pounds("0.20");
        assert_eq!(a.checked_add(b).unwrap(), pounds("0.30"));
        assert_eq!(a.checked_sub(b).unwrap(), pounds("-0.10"));
        let share = Decimal::new(5, 1);
        assert_eq!(
            pounds("0.01").checked_mul_decimal(share).unwrap(),
            pounds("0.005")
        );
        let max = Money::from_decimal(Decimal::MAX);
        assert_eq!(max.checked_add(pounds("1")), Err(MoneyError::Overflow));
        assert_eq!(
            max.negated().checked_sub(pounds("1")),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            max.checked_mul_decimal(Decimal::TWO),
            Err(MoneyError::Overflow)
        );
    }

    /// Amounts at every scale the ledger meets, including pence beyond 64 bits.
    fn amount() -> impl proptest::strategy::Strategy<Value = Money> {
        use proptest::prelude::*;
        (any::<i64>(), 0u32..=4, any::<bool>()).prop_map(|(mantissa, scale, wide)| {
            let mantissa = if wide {
                i128::from(mantissa) * 1_000_000
            } else {
                i128::from(mantissa)
            };
            Money(Decimal::from_i128_with_scale(mantissa, scale))
        })
    }

    proptest::proptest! {
        #[test]
        fn sums_in_pence_are_the_decimal_sums(a in amount(), b in amount()) {
            let decimal = |result: Option<Decimal>| result.map(Money).ok_or(MoneyError::Overflow);
            let sum = a.checked_add(b);
            proptest::prop_assert_eq!(&sum, &decimal(a.0.checked_add(b.0)));
            proptest::prop_assert_eq!(sum.map(|m| m.to_string()), decimal(a.0.checked_add(b.0)).map(|m| m.to_string()));
            let difference = a.checked_sub(b);
            proptest::prop_assert_eq!(&difference, &decimal(a.0.checked_sub(b.0)));
            proptest::prop_assert_eq!(difference.map(|m| m.to_string()), decimal(a.0.checked_sub(b.0)).map(|m| m.to_string()));
            proptest::prop_assert_eq!(a.cmp(&b), a.0.cmp(&b.0));
            proptest::prop_assert_eq!(a.round_to_penny().to_string(), {
                let mut rounded = a.0.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
                rounded.rescale(2);
                Money(rounded).to_string()
            });
        }
    }

    #[test]
    fn sums_that_reach_zero_or_the_edge_of_64_bits_match_the_decimal() {
        let edge = Money::from_pence(i64::MAX);
        for (a, b) in [
            (pounds("1.00"), pounds("-1.00")),
            (pounds("-1.00"), pounds("1.00")),
            (pounds("-0.00"), pounds("0.00")),
            (edge, pounds("0.01")),
            (edge.negated(), pounds("0.01")),
            (edge, edge),
        ] {
            let sum = a.checked_add(b).unwrap();
            assert_eq!(sum.as_decimal(), a.0 + b.0);
            assert_eq!(sum.to_string(), Money(a.0 + b.0).to_string());
            let difference = a.checked_sub(b).unwrap();
            assert_eq!(difference.as_decimal(), a.0 - b.0);
            assert_eq!(difference.to_string(), Money(a.0 - b.0).to_string());
        }
        assert_eq!(
            pounds("1.00")
                .checked_sub(pounds("1.00"))
                .unwrap()
                .to_string(),
            "£0.00"
        );
    }

    #[test]
    fn serialises_as_a_string_of_pounds() {
        let amount = pounds("412.50");
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"412.50\"");
        let back: Money = serde_json::from_str("\"412.50\"").unwrap();
        assert_eq!(back, amount);
        assert_eq!(back.as_decimal().scale(), 2);
    }

    #[test]
    fn refuses_numbers_currency_signs_and_exponents() {
        assert!(serde_json::from_str::<Money>("412.5").is_err());
        for input in [
            "", "£4", "1e3", "4.", ".5", "+4", "4,000", " 4", "--4", "NaN",
        ] {
            assert_eq!(
                input.parse::<Money>(),
                Err(MoneyError::Invalid {
                    input: input.to_owned()
                }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn sign_queries() {
        assert!(pounds("-0.01").is_negative());
        assert!(!pounds("-0").is_negative());
        assert!(!Money::zero().is_negative());
        assert_eq!(pounds("2").negated(), pounds("-2"));
    }
}
