//! Values numbered in the order first seen, so that records counted in millions can name one of
//! a few thousand values by a four-byte number instead of each holding a copy.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::ops::RangeBounds;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The values, numbered from 0. A snapshot holds the list; the index is rebuilt as it is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Interner<T> {
    values: Vec<T>,
    ids: BTreeMap<T, u32>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            values: Vec::new(),
            ids: BTreeMap::new(),
        }
    }
}

impl<T: Ord + Clone> Interner<T> {
    /// The number of `value`, numbering it if it is new.
    pub(crate) fn id<Q>(&mut self, value: &Q) -> u32
    where
        T: Borrow<Q>,
        Q: Ord + ToOwned<Owned = T> + ?Sized,
    {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 values");
        self.values.push(value.to_owned());
        self.ids.insert(value.to_owned(), id);
        debug_assert_eq!(self.values.len(), self.ids.len());
        id
    }

    /// The number of `value`, if it has one.
    pub(crate) fn find<Q>(&self, value: &Q) -> Option<u32>
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.ids.get(value).copied()
    }

    /// The value numbered `id`.
    pub(crate) fn get(&self, id: u32) -> &T {
        &self.values[id as usize]
    }

    /// How many values are numbered.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The values in `range` of their order, with their numbers.
    pub(crate) fn range(&self, range: impl RangeBounds<T>) -> impl Iterator<Item = (&T, u32)> {
        self.ids.range(range).map(|(value, id)| (value, *id))
    }
}

impl<T: Serialize> Serialize for Interner<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.values.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de> + Ord + Clone> Deserialize<'de> for Interner<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Interner<T>, D::Error> {
        let values = Vec::<T>::deserialize(deserializer)?;
        let ids: BTreeMap<T, u32> = values
            .iter()
            .enumerate()
            .map(|(index, value)| (value.clone(), index as u32))
            .collect();
        if ids.len() != values.len() {
            return Err(D::Error::custom("a value is numbered twice"));
        }
        Ok(Interner { values, ids })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_the_number_they_were_first_given_through_a_snapshot() {
        let mut names = Interner::<String>::default();
        assert_eq!(names.id("ANC01"), 0);
        assert_eq!(names.id("VCS01"), 1);
        assert_eq!(names.id("ANC01"), 0);
        assert_eq!(names.find("VCS01"), Some(1));
        assert_eq!(names.find("VCS02"), None);
        let text = serde_json::to_string(&names).unwrap();
        assert_eq!(text, r#"["ANC01","VCS01"]"#);
        let read: Interner<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(read, names);
        assert_eq!(read.get(1), "VCS01");
        assert!(serde_json::from_str::<Interner<String>>(r#"["A","A"]"#).is_err());
    }
}
