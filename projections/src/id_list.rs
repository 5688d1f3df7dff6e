//! Ids kept in ascending order in one list, for the indexes that file a referral under its
//! organisation and a prescription under its provider. Ids are time-ordered, so a new one nearly
//! always goes at the end: a push, where a B-tree set walked and split nodes of sixteen-byte keys
//! for every prescription a national year issues, about a microsecond each.

use uuid::Uuid;

/// Distinct ids, ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdList {
    ids: Vec<Uuid>,
}

impl IdList {
    /// The list of `ids`, which must be distinct and ascending.
    pub(crate) fn ascending(ids: Vec<Uuid>) -> IdList {
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "ids distinct and ascending"
        );
        IdList { ids }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    #[should_panic(expected = "ids distinct and ascending")]
    fn a_list_made_whole_must_be_ascending() {
        IdList::ascending(vec![id(2), id(1)]);
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
}
