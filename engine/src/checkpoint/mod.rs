//! Checkpoints: source offsets and operator state, written in one atomic RocksDB batch.
//!
//! - [`record`]: what a checkpoint stores, and the topology fingerprint kept beside it.
//! - [`coordinator`]: starts checkpoints at an interval, gathers every worker's
//!   contributions and commits them together.
//! - [`output_wait`]: how long a commit waits for the broker to acknowledge its output.
//! - [`catch_up`]: opens a checkpoint as soon as the sources catch up after a backlog.
//! - [`restore`]: reads the last checkpoint at start and refuses state written by a
//!   different topology.
//!
//! How a checkpoint runs (see [`crate::epoch`] for the timestamps):
//! 1. The coordinator opens epoch `n`, at each interval, or at once when the sources have
//!    caught up after a backlog ([`catch_up`]).
//! 2. Each source, at its next activation, moves every partition to epoch `n` and hands
//!    in where it stood: the next offset and the partition clock. Records before those
//!    offsets travel in older epochs; records after, in epoch `n` or later.
//! 3. Each stateful operator applies records of older epochs as they come and holds back
//!    records of epoch `n`. When its input frontier has no older epoch left, it hands in
//!    the state it changed since its last contribution, then applies what it held back.
//! 4. The last contribution commits the batch, with the checkpoint record, atomically.
//!
//! When the sources stop (shutdown, or in-memory input that ran out), a final checkpoint
//! takes everything read, so that a clean stop loses and repeats nothing.

pub mod catch_up;
pub mod coordinator;
pub mod output_wait;
pub mod record;
pub mod restore;

pub use coordinator::{Checkpointer, ParticipantId, Request};
pub use record::{Checkpoint, SourcePosition, fingerprint};
