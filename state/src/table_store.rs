//! A table store: the latest value per key.

use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, ReadOptions, WriteBatch};

use crate::codec::{decode_key, encode_key};
use crate::envelope::{decode_table_value, encode_table_value};
use crate::error::StateError;
use crate::key_range::{Admission, KeyRange, Page};
use crate::snapshot::{Snapshot, read_options};

/// A key and its value's JSON, as returned by a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A handle on one table store's column family.
pub struct TableStore<'db> {
    db: &'db DB,
    column_family: &'db ColumnFamily,
    /// Reads see this snapshot, when the handle came from one.
    snapshot: Option<&'db Snapshot<'db>>,
}

impl<'db> TableStore<'db> {
    pub(crate) fn new(
        db: &'db DB,
        column_family: &'db ColumnFamily,
        snapshot: Option<&'db Snapshot<'db>>,
    ) -> Self {
        TableStore {
            db,
            column_family,
            snapshot,
        }
    }

    fn read_options(&self) -> ReadOptions {
        read_options(self.snapshot)
    }

    /// Adds an upsert to `batch`.
    pub fn put_into(&self, batch: &mut WriteBatch, key: &[u8], value_json: &[u8]) {
        batch.put_cf(
            self.column_family,
            encode_key(key),
            encode_table_value(value_json),
        );
    }

    /// Adds a deletion to `batch`.
    pub fn delete_into(&self, batch: &mut WriteBatch, key: &[u8]) {
        batch.delete_cf(self.column_family, encode_key(key));
    }

    /// Writes one value at once.
    pub fn put(&self, key: &[u8], value_json: &[u8]) -> Result<(), StateError> {
        let mut batch = WriteBatch::default();
        self.put_into(&mut batch, key, value_json);
        self.db.write(batch)?;
        Ok(())
    }

    /// The value of `key`, as JSON.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let options = self.read_options();
        match self
            .db
            .get_pinned_cf_opt(self.column_family, encode_key(key), &options)?
        {
            Some(bytes) => Ok(Some(decode_table_value(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Calls `visit` with every entry of the store, in key order (restoring state at start).
    pub fn for_each(&self, mut visit: impl FnMut(&[u8], Vec<u8>)) -> Result<(), StateError> {
        let iter =
            self.db
                .iterator_cf_opt(self.column_family, self.read_options(), IteratorMode::Start);
        for item in iter {
            let (raw_key, raw_value) = item?;
            let (key, _) = decode_key(&raw_key)?;
            visit(&key, decode_table_value(&raw_value)?);
        }
        Ok(())
    }

    /// Up to `limit` entries of `range`, in key order.
    pub fn scan(&self, range: &KeyRange<'_>, limit: usize) -> Result<Page<Entry>, StateError> {
        let seek = range.seek(|after| {
            // The smallest string above an encoded key: no other key has it as a prefix.
            let mut past = encode_key(after);
            past.push(0);
            past
        });
        let iter = self.db.iterator_cf_opt(
            self.column_family,
            self.read_options(),
            IteratorMode::From(&seek, Direction::Forward),
        );
        let mut entries = Vec::new();
        for item in iter {
            let (raw_key, raw_value) = item?;
            let (key, _) = decode_key(&raw_key)?;
            match range.admit(&key) {
                Admission::Skip => continue,
                Admission::Stop => break,
                Admission::Take if entries.len() == limit => {
                    return Ok(Page {
                        entries,
                        more: true,
                    });
                }
                Admission::Take => entries.push((key, decode_table_value(&raw_value)?)),
            }
        }
        Ok(Page {
            entries,
            more: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{KeyRange, StateDb};

    #[test]
    fn upserts_keep_the_latest_value_and_scans_page() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), ["t"]).unwrap();
        let store = db.table_store("t").unwrap();
        store.put(b"x", b"1").unwrap();
        store.put(b"x", b"2").unwrap();
        store.put(b"y", b"3").unwrap();
        store.put(b"z", b"4").unwrap();
        assert_eq!(store.get(b"x").unwrap(), Some(b"2".to_vec()));
        let first = store.scan(&KeyRange::default(), 2).unwrap();
        assert_eq!(
            first
                .entries
                .iter()
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>(),
            vec![b"x".to_vec(), b"y".to_vec()]
        );
        assert!(first.more);
        let after_y = KeyRange {
            after: Some(b"y"),
            ..KeyRange::default()
        };
        let rest = store.scan(&after_y, 2).unwrap();
        assert_eq!(rest.entries, vec![(b"z".to_vec(), b"4".to_vec())]);
        assert!(!rest.more);
    }
}
