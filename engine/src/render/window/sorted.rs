//! A small map from window or pane starts to state, sorted by start: what one key holds.
//!
//! A key nearly always holds a handful of entries, and there are as many keys as the input
//! has. A `BTreeMap` allocates a node for eleven entries even when it holds one, which
//! doubled the memory of an open window (`window_memory` bench: 1,712 bytes against 841);
//! a sorted vector holds exactly what is in it.

use std::ops::{Bound, RangeBounds};

/// Entries sorted by their start, each start once.
pub(super) struct Sorted<V> {
    entries: Vec<(i64, V)>,
}

impl<V> Default for Sorted<V> {
    fn default() -> Self {
        Sorted {
            entries: Vec::new(),
        }
    }
}

impl<V> Sorted<V> {
    /// Inserts at `index`, growing a few entries at a time: a vector would reserve room
    /// for four at its first insert, most of which a key never uses.
    fn insert_at(&mut self, index: usize, entry: (i64, V)) {
        if self.entries.len() == self.entries.capacity() && self.entries.len() < 4 {
            self.entries.reserve_exact(1);
        }
        self.entries.insert(index, entry);
    }

    fn position(&self, start: i64) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&start, |(key, _)| *key)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn contains_key(&self, start: &i64) -> bool {
        self.position(*start).is_ok()
    }

    pub(super) fn get_mut(&mut self, start: &i64) -> Option<&mut V> {
        self.position(*start)
            .ok()
            .map(|index| &mut self.entries[index].1)
    }

    /// The entry at `start`, made with `make` if there is none.
    pub(super) fn or_insert_with(&mut self, start: i64, make: impl FnOnce() -> V) -> &mut V {
        let index = match self.position(start) {
            Ok(index) => index,
            Err(index) => {
                self.insert_at(index, (start, make()));
                index
            }
        };
        &mut self.entries[index].1
    }

    pub(super) fn insert(&mut self, start: i64, value: V) {
        match self.position(start) {
            Ok(index) => self.entries[index].1 = value,
            Err(index) => self.insert_at(index, (start, value)),
        }
    }

    pub(super) fn remove(&mut self, start: &i64) -> Option<V> {
        self.position(*start)
            .ok()
            .map(|index| self.entries.remove(index).1)
    }

    /// The entries whose starts are in `range`, in order.
    pub(super) fn range(
        &self,
        range: impl RangeBounds<i64>,
    ) -> impl DoubleEndedIterator<Item = (&i64, &V)> {
        let from = match range.start_bound() {
            Bound::Included(start) => self.entries.partition_point(|(key, _)| key < start),
            Bound::Excluded(start) => self.entries.partition_point(|(key, _)| key <= start),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(end) => self.entries.partition_point(|(key, _)| key <= end),
            Bound::Excluded(end) => self.entries.partition_point(|(key, _)| key < end),
            Bound::Unbounded => self.entries.len(),
        };
        self.entries[from..to.max(from)]
            .iter()
            .map(|(key, value)| (key, value))
    }

    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = (&i64, &V)> {
        self.range(..)
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &i64> {
        self.entries.iter().map(|(key, _)| key)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, value)| value)
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, value)| value)
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&i64, &mut V)> {
        self.entries.iter_mut().map(|(key, value)| (&*key, value))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn it_answers_as_a_btree_map_does(
            operations in proptest::collection::vec((0..3_u8, -20..20_i64, any::<u8>()), 0..60),
            bounds in (-25..25_i64, -25..25_i64),
        ) {
            let mut sorted = Sorted::default();
            let mut reference = BTreeMap::new();
            for (operation, start, value) in operations {
                match operation {
                    0 => {
                        sorted.insert(start, value);
                        reference.insert(start, value);
                    }
                    1 => prop_assert_eq!(sorted.remove(&start), reference.remove(&start)),
                    _ => {
                        let kept = sorted.or_insert_with(start, || value);
                        *kept = kept.wrapping_add(1);
                        let kept = reference.entry(start).or_insert(value);
                        *kept = kept.wrapping_add(1);
                    }
                }
            }
            let (low, high) = bounds;
            let got: Vec<(i64, u8)> = sorted.range(low..high).map(|(k, v)| (*k, *v)).collect();
            let want: Vec<(i64, u8)> = reference
                .range(low..high.max(low))
                .map(|(k, v)| (*k, *v))
                .collect();
            prop_assert_eq!(got, want);
            let got: Vec<(i64, u8)> = sorted.range(..=low).rev().map(|(k, v)| (*k, *v)).collect();
            let want: Vec<(i64, u8)> = reference.range(..=low).rev().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(sorted.contains_key(&low), reference.contains_key(&low));
            prop_assert_eq!(sorted.is_empty(), reference.is_empty());
        }
    }
}
