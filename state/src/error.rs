//! The typed error of the state crate.

use thiserror::Error;

/// What can go wrong reading or writing state.
#[derive(Debug, Error)]
pub enum StateError {
    /// RocksDB itself failed: I/O, a full disk, a permission problem, a lock held by another process.
    #[error("RocksDB error: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Stored bytes that this version cannot read.
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// A store that the state directory was not opened with.
    #[error("unknown store `{0}`")]
    UnknownStore(String),
}

impl StateError {
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        StateError::Corrupt(message.into())
    }
}
