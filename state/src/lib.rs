//! `sluice-state`: the RocksDB state behind Sluice's materialized views.
//!
//! A tour of the modules:
//! - [`codec`] encodes keys so that RocksDB's byte order is the logical `(key, window_start)`
//!   order, and so that no encoded key is a prefix of another.
//! - [`envelope`] wraps every stored value with a format version, so that a future layout
//!   change is detected instead of misread.
//! - [`db`] opens the one RocksDB instance of a process, with one column family per store.
//! - [`window_store`] and [`table_store`] are the two kinds of store the engine materializes
//!   views into: windows per key, and the latest value per key.
//! - [`key_range`] says which keys a scan visits (a range, a prefix, a cursor) and shapes
//!   its page.
//! - [`snapshot`] gives consistent reads: a [`ReadView`] sees every store as of one instant.
//! - [`error`] is the crate's typed error.

// Input and I/O reach nearly every path: a failure is a typed error, never a panic (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)
)]

pub mod codec;
pub mod db;
pub mod envelope;
pub mod error;
pub mod key_range;
pub mod snapshot;
pub mod table_store;
pub mod window_store;

pub use db::StateDb;
pub use envelope::WindowEntry;
pub use error::StateError;
pub use key_range::{KeyRange, Page};
/// A batch of writes applied atomically by [`StateDb::write`].
pub use rocksdb::WriteBatch;
pub use snapshot::ReadView;
pub use table_store::TableStore;
pub use window_store::WindowStore;
