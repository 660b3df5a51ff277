//! A table store: the latest value per key.

use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, WriteBatch};

use crate::codec::{decode_key, encode_key};
use crate::envelope::{decode_table_value, encode_table_value};
use crate::error::StateError;

/// A key and its value's JSON, as returned by a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A handle on one table store's column family.
pub struct TableStore<'db> {
    db: &'db DB,
    column_family: &'db ColumnFamily,
}

impl<'db> TableStore<'db> {
    pub(crate) fn new(db: &'db DB, column_family: &'db ColumnFamily) -> Self {
        TableStore { db, column_family }
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
        match self.db.get_pinned_cf(self.column_family, encode_key(key))? {
            Some(bytes) => Ok(Some(decode_table_value(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Calls `visit` with every entry of the store, in key order (restoring state at start).
    pub fn for_each(&self, mut visit: impl FnMut(&[u8], Vec<u8>)) -> Result<(), StateError> {
        for item in self.db.iterator_cf(self.column_family, IteratorMode::Start) {
            let (raw_key, raw_value) = item?;
            let (key, _) = decode_key(&raw_key)?;
            visit(&key, decode_table_value(&raw_value)?);
        }
        Ok(())
    }

    /// Up to `limit` entries with keys after `after` (exclusive), in key order.
    pub fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StateError> {
        let lower = after.map(encode_key).unwrap_or_default();
        let iter = self.db.iterator_cf(
            self.column_family,
            IteratorMode::From(&lower, Direction::Forward),
        );
        let mut found = Vec::new();
        for item in iter {
            let (raw_key, raw_value) = item?;
            if raw_key.as_ref() == lower.as_slice() {
                continue;
            }
            if found.len() == limit {
                break;
            }
            let (key, _) = decode_key(&raw_key)?;
            found.push((key, decode_table_value(&raw_value)?));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use crate::StateDb;

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
        let first = store.scan(None, 2).unwrap();
        assert_eq!(
            first.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            vec![b"x".to_vec(), b"y".to_vec()]
        );
        let rest = store.scan(Some(b"y"), 2).unwrap();
        assert_eq!(rest, vec![(b"z".to_vec(), b"4".to_vec())]);
    }
}
