//! A window store: for each key, its windows ordered by start.

use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, WriteBatch};

use crate::codec::{decode_window_key, encode_key, encode_window_key};
use crate::envelope::{WindowEntry, decode_window_value, encode_window_value};
use crate::error::StateError;
use crate::key_range::{Admission, KeyRange, Page};
use crate::snapshot::{Snapshot, read_options};

/// One key's windows, as returned by a scan.
pub type KeyWindows = (Vec<u8>, Vec<WindowEntry>);

/// A handle on one window store's column family.
pub struct WindowStore<'db> {
    db: &'db DB,
    column_family: &'db ColumnFamily,
    /// Reads see this snapshot, when the handle came from one.
    snapshot: Option<&'db Snapshot<'db>>,
}

impl<'db> WindowStore<'db> {
    pub(crate) fn new(
        db: &'db DB,
        column_family: &'db ColumnFamily,
        snapshot: Option<&'db Snapshot<'db>>,
    ) -> Self {
        WindowStore {
            db,
            column_family,
            snapshot,
        }
    }

    /// Adds a window's new value to `batch`, to be written atomically with other stores.
    pub fn put_into(&self, batch: &mut WriteBatch, key: &[u8], entry: &WindowEntry) {
        batch.put_cf(
            self.column_family,
            encode_window_key(key, entry.start),
            encode_window_value(entry.end, entry.is_final, &entry.value_json),
        );
    }

    /// Adds the removal of a window to `batch`.
    pub fn delete_into(&self, batch: &mut WriteBatch, key: &[u8], start: i64) {
        batch.delete_cf(self.column_family, encode_window_key(key, start));
    }

    /// Calls `visit` with every window of the store, in `(key, start)` order. For restoring
    /// state at start, which reads what retention keeps, not the whole history.
    pub fn for_each(&self, mut visit: impl FnMut(&[u8], WindowEntry)) -> Result<(), StateError> {
        let options = read_options(self.snapshot);
        let iter = self
            .db
            .iterator_cf_opt(self.column_family, options, IteratorMode::Start);
        for item in iter {
            let (raw_key, raw_value) = item?;
            let (key, start) = decode_window_key(&raw_key)?;
            visit(&key, decode_window_value(start, &raw_value)?);
        }
        Ok(())
    }

    /// Writes one window at once (tests and tools; the engine batches through [`Self::put_into`]).
    pub fn put(&self, key: &[u8], entry: &WindowEntry) -> Result<(), StateError> {
        let mut batch = WriteBatch::default();
        self.put_into(&mut batch, key, entry);
        self.db.write(batch)?;
        Ok(())
    }

    /// The windows of `key` that overlap `[from, to)`, ordered by start.
    pub fn windows(&self, key: &[u8], from: i64, to: i64) -> Result<Vec<WindowEntry>, StateError> {
        let mut options = read_options(self.snapshot);
        options.set_iterate_upper_bound(key_upper_bound(key));
        // A window that overlaps `from` may start up to its size earlier; sizes differ per
        // view, so scan from the key's first window and skip the ones that end too early.
        let lower = encode_window_key(key, i64::MIN);
        let mut found = Vec::new();
        let iter = self.db.iterator_cf_opt(
            self.column_family,
            options,
            IteratorMode::From(&lower, Direction::Forward),
        );
        for item in iter {
            let (raw_key, raw_value) = item?;
            let (_, start) = decode_window_key(&raw_key)?;
            if start >= to {
                break;
            }
            let entry = decode_window_value(start, &raw_value)?;
            if entry.end > from {
                found.push(entry);
            }
        }
        Ok(found)
    }

    /// Up to `limit` keys of `range` that have windows overlapping `[from, to)`, each with
    /// those windows. Keys without such windows are passed over.
    pub fn scan(
        &self,
        range: &KeyRange<'_>,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Page<KeyWindows>, StateError> {
        let seek = range.seek(key_upper_bound);
        let iter = self.db.iterator_cf_opt(
            self.column_family,
            read_options(self.snapshot),
            IteratorMode::From(&seek, Direction::Forward),
        );
        let mut entries: Vec<KeyWindows> = Vec::new();
        for item in iter {
            let (raw_key, raw_value) = item?;
            let (key, start) = decode_window_key(&raw_key)?;
            if start >= to {
                continue;
            }
            let same_key = entries.last().is_some_and(|(last, _)| *last == key);
            if !same_key {
                match range.admit(&key) {
                    Admission::Skip => continue,
                    Admission::Stop => break,
                    Admission::Take => {}
                }
            }
            let entry = decode_window_value(start, &raw_value)?;
            if entry.end <= from {
                continue;
            }
            if same_key {
                if let Some((_, windows)) = entries.last_mut() {
                    windows.push(entry);
                }
            } else if entries.len() == limit {
                return Ok(Page {
                    entries,
                    more: true,
                });
            } else {
                entries.push((key, vec![entry]));
            }
        }
        Ok(Page {
            entries,
            more: false,
        })
    }
}

/// The smallest encoded key above every window of `key`.
fn key_upper_bound(key: &[u8]) -> Vec<u8> {
    let mut bound = encode_key(key);
    bound.extend_from_slice(&[0xFF; 9]);
    bound
}

#[cfg(test)]
mod tests {
    use crate::envelope::WindowEntry;
    use crate::{KeyRange, StateDb};

    fn entry(start: i64, value: &str) -> WindowEntry {
        WindowEntry {
            start,
            end: start + 60,
            is_final: false,
            value_json: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn range_reads_return_overlapping_windows_of_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), ["w"]).unwrap();
        let store = db.window_store("w").unwrap();
        for start in [0, 60, 120, 180] {
            store.put(b"a", &entry(start, "1")).unwrap();
        }
        store.put(b"a\0", &entry(60, "2")).unwrap();
        store.put(b"b", &entry(60, "3")).unwrap();
        let starts: Vec<i64> = store
            .windows(b"a", 61, 180)
            .unwrap()
            .iter()
            .map(|w| w.start)
            .collect();
        assert_eq!(starts, vec![60, 120]);
        assert_eq!(store.windows(b"a", i64::MIN, i64::MAX).unwrap().len(), 4);
    }

    #[test]
    fn scans_page_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), ["w"]).unwrap();
        let store = db.window_store("w").unwrap();
        for key in ["c", "a", "b"] {
            store.put(key.as_bytes(), &entry(0, "1")).unwrap();
            store.put(key.as_bytes(), &entry(60, "1")).unwrap();
        }
        let page = store
            .scan(&KeyRange::default(), i64::MIN, i64::MAX, 2)
            .unwrap();
        assert_eq!(
            page.entries
                .iter()
                .map(|(k, w)| (k.clone(), w.len()))
                .collect::<Vec<_>>(),
            vec![(b"a".to_vec(), 2), (b"b".to_vec(), 2)]
        );
        assert!(page.more);
        let after_b = KeyRange {
            after: Some(b"b"),
            ..KeyRange::default()
        };
        let next = store.scan(&after_b, i64::MIN, i64::MAX, 2).unwrap();
        assert_eq!(next.entries.len(), 1);
        assert_eq!(next.entries[0].0, b"c".to_vec());
        assert!(!next.more);
    }

    #[test]
    fn scans_across_keys_keep_the_windows_of_a_time_range() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), ["w"]).unwrap();
        let store = db.window_store("w").unwrap();
        store.put(b"a", &entry(0, "1")).unwrap();
        store.put(b"b", &entry(60, "2")).unwrap();
        store.put(b"b", &entry(120, "3")).unwrap();
        store.put(b"c", &entry(240, "4")).unwrap();
        store.put(b"ca", &entry(60, "5")).unwrap();
        // [61, 180) overlaps the windows starting at 60 and 120; `a` and `c` have none.
        let page = store.scan(&KeyRange::default(), 61, 180, 10).unwrap();
        let found: Vec<(Vec<u8>, Vec<i64>)> = page
            .entries
            .iter()
            .map(|(key, windows)| (key.clone(), windows.iter().map(|w| w.start).collect()))
            .collect();
        assert_eq!(
            found,
            vec![(b"b".to_vec(), vec![60, 120]), (b"ca".to_vec(), vec![60])]
        );
        let prefixed = KeyRange {
            prefix: Some(b"c"),
            ..KeyRange::default()
        };
        let page = store.scan(&prefixed, i64::MIN, i64::MAX, 1).unwrap();
        assert_eq!(page.entries[0].0, b"c".to_vec());
        assert!(page.more);
    }
}
