//! The process's one RocksDB instance, with one column family per store.

use std::path::Path;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Options, WriteBatch};

use crate::error::StateError;
use crate::table_store::TableStore;
use crate::window_store::WindowStore;

/// An open state directory.
pub struct StateDb {
    db: DB,
}

impl StateDb {
    /// Opens (creating if needed) the state directory with a column family for each store.
    pub fn open<'a>(
        path: &Path,
        stores: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, StateError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // Window stores are written in small batches on every update; lz4 keeps the
        // compaction cost low while still shrinking the repetitive JSON values.
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let descriptors: Vec<ColumnFamilyDescriptor> = stores
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, column_family_options()))
            .collect();
        let db = DB::open_cf_descriptors(&options, path, descriptors)?;
        Ok(StateDb { db })
    }

    /// Deletes a state directory and everything in it. A missing directory is not an error.
    pub fn destroy(path: &Path) -> Result<(), StateError> {
        if !path.exists() {
            return Ok(());
        }
        DB::destroy(&Options::default(), path)?;
        Ok(())
    }

    /// The window store of the given name.
    pub fn window_store(&self, name: &str) -> Result<WindowStore<'_>, StateError> {
        Ok(WindowStore::new(&self.db, self.column_family(name)?))
    }

    /// The table store of the given name.
    pub fn table_store(&self, name: &str) -> Result<TableStore<'_>, StateError> {
        Ok(TableStore::new(&self.db, self.column_family(name)?))
    }

    pub(crate) fn column_family(&self, name: &str) -> Result<&ColumnFamily, StateError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StateError::UnknownStore(name.to_string()))
    }

    /// Applies a batch atomically.
    pub fn write(&self, batch: WriteBatch) -> Result<(), StateError> {
        self.db.write(batch)?;
        Ok(())
    }
}

fn column_family_options() -> Options {
    let mut options = Options::default();
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_stores_are_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), ["a"]).unwrap();
        assert!(matches!(
            db.table_store("b"),
            Err(StateError::UnknownStore(_))
        ));
    }

    #[test]
    fn destroy_removes_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        {
            let db = StateDb::open(&path, ["t"]).unwrap();
            db.table_store("t").unwrap().put(b"k", b"1").unwrap();
        }
        StateDb::destroy(&path).unwrap();
        let db = StateDb::open(&path, ["t"]).unwrap();
        assert_eq!(db.table_store("t").unwrap().get(b"k").unwrap(), None);
    }
}
