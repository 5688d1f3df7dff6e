//! Giving back the room a finished record's lists grew into.

/// Moves `items` into an allocation of exactly its length. A list grown by doubling holds up to
/// half again as much room as it uses, and `Vec::shrink_to_fit` does not give it back here: the
/// allocator keeps a block in place when asked to shrink it by less than half, which is always
/// the case after doubling. A national year's finished prescriptions hold millions of such lists.
pub(crate) fn fit<T>(items: &mut Vec<T>) {
    if items.capacity() == items.len() {
        return;
    }
    let mut exact = Vec::with_capacity(items.len());
    exact.append(items);
    *items = exact;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fitted_list_keeps_its_items_in_order_and_no_spare_room() {
        let mut items: Vec<u64> = (1..=12).collect();
        items.reserve(20);
        assert!(items.capacity() >= 32);
        fit(&mut items);
        assert_eq!(items, (1..=12).collect::<Vec<u64>>());
        assert_eq!(items.capacity(), 12);

        let mut empty: Vec<u64> = Vec::with_capacity(16);
        fit(&mut empty);
        assert_eq!(empty.capacity(), 0);
    }
}
