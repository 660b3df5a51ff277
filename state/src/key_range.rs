//! Which keys a scan visits (a key range, a prefix, a cursor), and the page it returns.

use crate::codec::encode_key;

/// The keys of a scan, in byte order. Every bound is optional; together they are the
/// intersection of `[from, to)`, the keys that start with `prefix`, and the keys after the
/// cursor `after`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyRange<'a> {
    /// The first key, inclusive.
    pub from: Option<&'a [u8]>,
    /// The end key, exclusive.
    pub to: Option<&'a [u8]>,
    /// Only keys that start with these bytes.
    pub prefix: Option<&'a [u8]>,
    /// The cursor: only keys after this one, exclusive.
    pub after: Option<&'a [u8]>,
}

/// What a scan does with a key it meets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Take,
    Skip,
    /// The key and every later one are outside the range.
    Stop,
}

impl KeyRange<'_> {
    /// The encoded key to seek to: the greatest of the lower bounds. `past` encodes the
    /// smallest stored key after every entry of a key, which differs between stores.
    pub(crate) fn seek(&self, past: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let mut seek = Vec::new();
        if let Some(from) = self.from {
            seek = seek.max(encode_key(from));
        }
        if let Some(prefix) = self.prefix {
            // The escaped prefix without its terminator sorts at or below every key that
            // extends it.
            let mut escaped = encode_key(prefix);
            escaped.truncate(escaped.len() - 2);
            seek = seek.max(escaped);
        }
        if let Some(after) = self.after {
            seek = seek.max(past(after));
        }
        seek
    }

    /// Whether a decoded key, met in byte order from [`Self::seek`], belongs to the range.
    pub(crate) fn admit(&self, key: &[u8]) -> Admission {
        if self.to.is_some_and(|to| key >= to) {
            return Admission::Stop;
        }
        if let Some(prefix) = self.prefix
            && !key.starts_with(prefix)
        {
            return if key < prefix {
                Admission::Skip
            } else {
                Admission::Stop
            };
        }
        let before_from = self.from.is_some_and(|from| key < from);
        let not_after = self.after.is_some_and(|after| key <= after);
        if before_from || not_after {
            return Admission::Skip;
        }
        Admission::Take
    }
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// Up to the page size of entries, in key order.
    pub entries: Vec<T>,
    /// Whether the range holds more entries after the last one.
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn admitted(range: &KeyRange<'_>, keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let seek = range.seek(|key| {
            let mut past = encode_key(key);
            past.push(0);
            past
        });
        let mut sorted: Vec<&Vec<u8>> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut found = Vec::new();
        for key in sorted {
            if encode_key(key) < seek {
                continue;
            }
            match range.admit(key) {
                Admission::Take => found.push(key.clone()),
                Admission::Skip => {}
                Admission::Stop => break,
            }
        }
        found
    }

    fn short_key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(0u8), Just(b'a'), Just(b'b')], 0..4)
    }

    proptest! {
        #[test]
        fn seeking_and_admitting_keeps_exactly_the_keys_in_every_bound(
            keys in proptest::collection::vec(short_key(), 0..20),
            from in proptest::option::of(short_key()),
            to in proptest::option::of(short_key()),
            prefix in proptest::option::of(short_key()),
            after in proptest::option::of(short_key()),
        ) {
            let range = KeyRange {
                from: from.as_deref(),
                to: to.as_deref(),
                prefix: prefix.as_deref(),
                after: after.as_deref(),
            };
            let mut expected: Vec<Vec<u8>> = keys
                .iter()
                .filter(|key| from.as_ref().is_none_or(|from| *key >= from))
                .filter(|key| to.as_ref().is_none_or(|to| *key < to))
                .filter(|key| prefix.as_ref().is_none_or(|prefix| key.starts_with(prefix)))
                .filter(|key| after.as_ref().is_none_or(|after| *key > after))
                .cloned()
                .collect();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(admitted(&range, &keys), expected);
        }
    }
}
