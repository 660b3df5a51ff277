//! Consistent reads: a RocksDB snapshot through which every store shows one instant.
//!
//! The engine writes each checkpoint (views, operator state and the checkpoint record) in
//! one atomic batch, so everything read through one [`ReadView`] belongs to the same
//! checkpoint, however many batches land while the reader scans. Writers never wait for
//! readers: a snapshot only keeps old versions alive until it is dropped.

use rocksdb::{DB, ReadOptions};

use crate::StateDb;
use crate::error::StateError;
use crate::table_store::TableStore;
use crate::window_store::WindowStore;

/// A RocksDB snapshot of the state.
pub type Snapshot<'db> = rocksdb::SnapshotWithThreadMode<'db, DB>;

/// Read options that see `snapshot`, or the latest state without one.
pub(crate) fn read_options(snapshot: Option<&Snapshot<'_>>) -> ReadOptions {
    let mut options = ReadOptions::default();
    if let Some(snapshot) = snapshot {
        options.set_snapshot(snapshot);
    }
    options
}

/// The whole state as of one instant.
pub struct ReadView<'db> {
    state: &'db StateDb,
    snapshot: Snapshot<'db>,
}

impl<'db> ReadView<'db> {
    pub(crate) fn new(state: &'db StateDb) -> Self {
        ReadView {
            state,
            snapshot: state.db.snapshot(),
        }
    }

    /// The window store of the given name, as of the snapshot.
    pub fn window_store(&self, name: &str) -> Result<WindowStore<'_>, StateError> {
        let column_family = self.state.column_family(name)?;
        Ok(WindowStore::new(
            &self.state.db,
            column_family,
            Some(&self.snapshot),
        ))
    }

    /// The table store of the given name, as of the snapshot.
    pub fn table_store(&self, name: &str) -> Result<TableStore<'_>, StateError> {
        let column_family = self.state.column_family(name)?;
        Ok(TableStore::new(
            &self.state.db,
            column_family,
            Some(&self.snapshot),
        ))
    }

    /// The metadata store, as of the snapshot.
    pub fn meta(&self) -> Result<TableStore<'_>, StateError> {
        self.table_store(crate::db::META_STORE)
    }
}

#[cfg(test)]
mod tests {
    use crate::{KeyRange, StateDb, WriteBatch};

    #[test]
    fn a_view_keeps_seeing_the_state_of_its_instant() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), ["t"]).unwrap();
        let store = db.table_store("t").unwrap();
        store.put(b"a", b"1").unwrap();
        let view = db.read_view();
        let mut batch = WriteBatch::default();
        store.put_into(&mut batch, b"a", b"2");
        store.put_into(&mut batch, b"b", b"3");
        db.meta().unwrap().put_into(&mut batch, b"checkpoint", b"7");
        db.write(batch).unwrap();

        let seen = view.table_store("t").unwrap();
        assert_eq!(seen.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            seen.scan(&KeyRange::default(), 10).unwrap().entries.len(),
            1
        );
        assert_eq!(view.meta().unwrap().get(b"checkpoint").unwrap(), None);
        let now = db.read_view();
        assert_eq!(
            now.table_store("t").unwrap().get(b"a").unwrap(),
            Some(b"2".to_vec())
        );
        assert_eq!(
            now.meta().unwrap().get(b"checkpoint").unwrap(),
            Some(b"7".to_vec())
        );
    }
}
