//! The typed error of the state crate.

use thiserror::Error;

/// What can go wrong reading or writing state.
#[derive(Debug, Error)]
pub enum StateError {
    /// RocksDB itself failed: I/O, a full disk, a permission problem, a lock held by another process.
    #[error("RocksDB error: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// The state directory could not be opened.
    #[error("cannot open the state in {path}: {source}{hint}")]
    Open {
        /// The state directory.
        path: String,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
        /// What to do about it, when the error says.
        hint: &'static str,
    },
    /// Stored bytes that this version cannot read.
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// A store that the state directory was not opened with.
    #[error("unknown store `{0}`")]
    UnknownStore(String),
}

impl StateError {
    /// An open failure of `path`, with advice for the cases users meet.
    pub(crate) fn open(path: &std::path::Path, source: rocksdb::Error) -> Self {
        let message = source.to_string();
        let hint = if message.contains("lock") || message.contains("LOCK") {
            " (is another process using this state directory?)"
        } else if message.contains("Corruption") {
            " (the directory is damaged: move it away to keep it, then rebuild the state \
             from the input with `replay --from-beginning`)"
        } else if message.contains("Permission denied") {
            " (the process may not write this directory)"
        } else if message.contains("No space left") {
            " (the disk is full)"
        } else {
            ""
        };
        StateError::Open {
            path: path.display().to_string(),
            source,
            hint,
        }
    }

    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        StateError::Corrupt(message.into())
    }
}
