//! Ids kept in ascending order in one list, for the indexes that file a referral under its
//! organisation and a prescription under its provider. Ids are time-ordered, so a new one nearly
//! always goes at the end: a push, where a B-tree set walked and split nodes of sixteen-byte keys
//! for every prescription a national year issues, about a microsecond each.

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::compact::Halves;

/// Distinct ids, ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdList {
    ids: Vec<Uuid>,
}

impl IdList {
    /// Adds `id`; false if it was listed already.
    pub(crate) fn insert(&mut self, id: Uuid) -> bool {
        if self.ids.last().is_none_or(|last| *last < id) {
            self.ids.push(id);
            return true;
        }
        match self.ids.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                self.ids.insert(at, id);
                true
            }
        }
    }

    /// Takes `id` out; false if it was not listed.
    pub(crate) fn remove(&mut self, id: Uuid) -> bool {
        match self.ids.binary_search(&id) {
            Ok(at) => {
                self.ids.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether no id is listed.
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl<'a> IntoIterator for &'a IdList {
    type Item = &'a Uuid;
    type IntoIter = std::slice::Iter<'a, Uuid>;

    fn into_iter(self) -> Self::IntoIter {
        self.ids.iter()
    }
}

/// A snapshot holds the ids as their halves, ascending.
impl Serialize for IdList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.ids.iter().copied().map(Halves::from))
    }
}

/// Read back checked, not trusted: ids out of order or twice are refused.
impl<'de> Deserialize<'de> for IdList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<IdList, D::Error> {
        struct Ascending;
        impl<'de> Visitor<'de> for Ascending {
            type Value = IdList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of distinct ids, ascending")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdList, A::Error> {
                let mut ids: Vec<Uuid> = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(halves) = seq.next_element::<Halves>()? {
                    let id = Uuid::from(halves);
                    if ids.last().is_some_and(|last| *last >= id) {
                        return Err(A::Error::custom(format!("id {id} is out of order")));
                    }
                    ids.push(id);
                }
                Ok(IdList { ids })
            }
        }
        deserializer.deserialize_seq(Ascending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn ids_stay_ascending_and_distinct_whatever_order_they_come_in() {
        let mut list = IdList::default();
        for n in [5, 9, 2, 9, 7, 1, 12] {
            list.insert(id(n));
        }
        assert!(!list.insert(id(7)), "listed already");
        let listed: Vec<Uuid> = (&list).into_iter().copied().collect();
        assert_eq!(listed, [1, 2, 5, 7, 9, 12].map(id));
        assert!(list.remove(id(5)));
        assert!(!list.remove(id(5)));
        assert_eq!((&list).into_iter().next_back(), Some(&id(12)));
    }

    #[test]
    fn a_snapshot_reads_back_equal_and_refuses_ids_out_of_order() {
        let mut list = IdList::default();
        for n in [3, 1, 2] {
            list.insert(id(n));
        }
        let text = serde_json::to_string(&list).unwrap();
        assert_eq!(text, "[[0,1],[0,2],[0,3]]");
        assert_eq!(serde_json::from_str::<IdList>(&text).unwrap(), list);
        assert!(serde_json::from_str::<IdList>("[[0,2],[0,1]]").is_err());
        assert!(serde_json::from_str::<IdList>("[[0,2],[0,2]]").is_err());
    }
}
