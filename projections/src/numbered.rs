//! Values that records name by the million, among a few thousand (the organisations' codes and
//! the agreements' ids journeys and prescriptions name, the accounts postings name), numbered so
//! that each record holds four bytes where a code took eleven or, optional, twelve, and an
//! optional agreement's id seventeen.

use std::hash::Hash;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::interner::Interner;

/// A value's number among its [`Numbered`] values. Numbers count from one, so that a value that
/// may be absent takes no more room than one that may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Number(NonZeroU32);

const _: () = assert!(std::mem::size_of::<Option<Number>>() == 4);

impl Number {
    /// The number of the value at `index` (counting from zero), unless it is the one index a
    /// number cannot hold.
    pub(crate) fn at_index(index: u32) -> Option<Number> {
        index.checked_add(1).and_then(NonZeroU32::new).map(Number)
    }

    /// The index (counting from zero) of the value it numbers.
    pub(crate) fn index(self) -> u32 {
        self.0.get() - 1
    }
}

/// Values numbered in the order first named. A snapshot holds the values in that order, and
/// the numbers records hold are checked against them when it is loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    transparent,
    bound(deserialize = "T: Deserialize<'de> + Ord + Hash + Clone")
)]
pub(crate) struct Numbered<T>(Interner<T>);

impl<T> Default for Numbered<T> {
    fn default() -> Self {
        Numbered(Interner::default())
    }
}

impl<T: Ord + Hash + Clone> Numbered<T> {
    /// The number of `value`, numbering it if it is new.
    pub(crate) fn number(&mut self, value: &T) -> Number {
        Number::at_index(self.0.id(value)).expect("fewer than 2^32 - 1 values")
    }

    /// The value numbered `number`.
    pub(crate) fn get(&self, number: Number) -> &T {
        self.0.get(number.index())
    }

    /// How many values are numbered.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `number` numbers a value.
    pub(crate) fn holds(&self, number: Number) -> bool {
        number.0.get() as usize <= self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_keeps_its_number_and_numbers_past_the_values_are_not_held() {
        let mut codes = Numbered::<String>::default();
        let anchor = codes.number(&"ANC01".to_string());
        let provider = codes.number(&"VCS01".to_string());
        assert_eq!(codes.number(&"ANC01".to_string()), anchor);
        assert_eq!(
            (codes.get(anchor).as_str(), codes.get(provider).as_str()),
            ("ANC01", "VCS01")
        );
        assert!(codes.holds(provider));
        let text = serde_json::to_string(&(&codes, provider)).unwrap();
        assert_eq!(text, r#"[["ANC01","VCS01"],2]"#);
        let past: Number = serde_json::from_str("3").unwrap();
        assert!(!codes.holds(past));
        assert!(
            serde_json::from_str::<Number>("0").is_err(),
            "numbers count from one"
        );
    }
}
