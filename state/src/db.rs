//! The process's one RocksDB instance, with one column family per store.

use std::collections::BTreeSet;
use std::path::Path;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Options, WriteBatch};

use crate::error::StateError;
use crate::snapshot::ReadView;
use crate::table_store::TableStore;
use crate::window_store::WindowStore;

/// The column family of [`StateDb::meta`].
pub const META_STORE: &str = "sluice.meta";

/// An open state directory.
pub struct StateDb {
    pub(crate) db: DB,
}

impl StateDb {
    /// Opens (creating if needed) the state directory with a column family for each store,
    /// plus the metadata store and any store an earlier run left there.
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
        let mut names: BTreeSet<String> = stores.into_iter().map(str::to_string).collect();
        names.insert(META_STORE.to_string());
        // RocksDB refuses to open a directory without naming all its column families; a
        // store of a previous topology stays, untouched, until the state is wiped.
        if path.exists() {
            names.extend(DB::list_cf(&options, path).unwrap_or_default());
        }
        names.remove(rocksdb::DEFAULT_COLUMN_FAMILY_NAME);
        let descriptors: Vec<ColumnFamilyDescriptor> = names
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, column_family_options()))
            .collect();
        let db = DB::open_cf_descriptors(&options, path, descriptors)
            .map_err(|error| StateError::open(path, error))?;
        Ok(StateDb { db })
    }

    /// The store of small records about the state itself: checkpoints, the topology's
    /// fingerprint.
    pub fn meta(&self) -> Result<TableStore<'_>, StateError> {
        self.table_store(META_STORE)
    }

    /// The size of a store on disk and in memory tables, in bytes (RocksDB's estimate).
    pub fn store_size(&self, name: &str) -> Result<u64, StateError> {
        let column_family = self.column_family(name)?;
        let mut total = 0;
        for property in [
            "rocksdb.total-sst-files-size",
            "rocksdb.cur-size-all-mem-tables",
        ] {
            total += self
                .db
                .property_int_value_cf(column_family, property)?
                .unwrap_or(0);
        }
        Ok(total)
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
        Ok(WindowStore::new(&self.db, self.column_family(name)?, None))
    }

    /// The table store of the given name.
    pub fn table_store(&self, name: &str) -> Result<TableStore<'_>, StateError> {
        Ok(TableStore::new(&self.db, self.column_family(name)?, None))
    }

    /// Every store as of this instant, consistent however many batches land meanwhile.
    pub fn read_view(&self) -> ReadView<'_> {
        ReadView::new(self)
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

    /// Applies a batch atomically and waits until it is on disk (the write-ahead log is
    /// synced), so that neither a crash nor a power loss can take it back.
    pub fn write_durably(&self, batch: WriteBatch) -> Result<(), StateError> {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options)?;
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
    fn stores_of_an_earlier_run_are_reopened() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = StateDb::open(dir.path(), ["old"]).unwrap();
            db.table_store("old").unwrap().put(b"k", b"1").unwrap();
        }
        let db = StateDb::open(dir.path(), ["new"]).unwrap();
        assert_eq!(
            db.table_store("old").unwrap().get(b"k").unwrap(),
            Some(b"1".to_vec())
        );
        assert!(db.table_store("new").is_ok());
        assert!(db.meta().is_ok());
        assert!(db.store_size("old").is_ok());
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
