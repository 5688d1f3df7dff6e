//! Values numbered in the order first seen, so that records counted in millions can name one of
//! a few thousand values by a four-byte number instead of each holding a copy.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::ops::RangeBounds;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Finds a value's number by hash: the ledger asks for an account's number at most postings,
/// and walking an ordered map compared accounts field by field some ten times a lookup.
type Index<T> = HashMap<T, u32, foldhash::fast::RandomState>;

/// The values, numbered from 0. A snapshot holds the list; the indexes are rebuilt as it is read.
#[derive(Clone, Debug)]
pub(crate) struct Interner<T> {
    values: Vec<T>,
    ids: Index<T>,
    /// The same numbers in the values' order, for ranges of them.
    ordered: BTreeMap<T, u32>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            values: Vec::new(),
            ids: Index::default(),
            ordered: BTreeMap::new(),
        }
    }
}

impl<T: PartialEq> PartialEq for Interner<T> {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl<T: Eq> Eq for Interner<T> {}

impl<T: Ord + Hash + Clone> Interner<T> {
    /// The number of `value`, numbering it if it is new.
    pub(crate) fn id<Q>(&mut self, value: &Q) -> u32
    where
        T: Borrow<Q>,
        Q: Ord + Hash + Eq + ToOwned<Owned = T> + ?Sized,
    {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 values");
        self.values.push(value.to_owned());
        self.ids.insert(value.to_owned(), id);
        self.ordered.insert(value.to_owned(), id);
        assert_eq!(self.values.len(), self.ids.len());
        debug_assert_eq!(self.values.len(), self.ordered.len());
        id
    }

    /// The number of `value`, if it has one.
    pub(crate) fn find<Q>(&self, value: &Q) -> Option<u32>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
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
        self.ordered.range(range).map(|(value, id)| (value, *id))
    }
}

impl<T: Serialize> Serialize for Interner<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.values.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de> + Ord + Hash + Clone> Deserialize<'de> for Interner<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Interner<T>, D::Error> {
        let values = Vec::<T>::deserialize(deserializer)?;
        let ordered: BTreeMap<T, u32> = values
            .iter()
            .enumerate()
            .map(|(index, value)| (value.clone(), index as u32))
            .collect();
        if ordered.len() != values.len() {
            return Err(D::Error::custom("a value is numbered twice"));
        }
        let ids = ordered
            .iter()
            .map(|(value, id)| (value.clone(), *id))
            .collect();
        Ok(Interner {
            values,
            ids,
            ordered,
        })
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
