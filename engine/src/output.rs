//! Where output records go: Kafka in production, memory in the in-process benchmark.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::checkpoint::Checkpoint;
use crate::error::EngineError;

/// What to do with an output record the broker refuses for good (too large, not
/// authorized, an unknown topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnOutputError {
    /// Stop the engine, naming the record; no checkpoint passes its input, so a restart
    /// (once the cause is fixed) writes it again.
    #[default]
    Stop,
    /// Send it to `<topic>.dlq`, with the broker's answer in `sluice-error`, and go on.
    /// At-least-once output only: a refused record dooms the whole transaction of
    /// exactly-once output.
    DeadLetter,
}

/// One record to write.
pub struct OutputRecord<'a> {
    /// Destination topic.
    pub topic: &'a str,
    /// Record key.
    pub key: &'a [u8],
    /// Record value.
    pub payload: &'a [u8],
    /// Headers as name and value pairs. Values are bytes: an input record's own headers
    /// travel with it as they were read (to late and dead-letter topics).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The input record it was made from, when there is exactly one.
    pub origin: Option<InputPosition<'a>>,
    /// The checkpoint epoch of the timely time it was made at: which checkpoint's
    /// transaction it belongs to under exactly-once output.
    pub epoch: u64,
}

/// Where an input record was read: topic, partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputPosition<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// How long a wait for the broker's acknowledgements may last, asked again every
/// [`Patience::check_every`] while records are outstanding, with what the wait has come to.
/// A plain [`Duration`] is a time limit.
pub trait Patience {
    /// How often to ask.
    fn check_every(&self) -> Duration {
        Duration::from_secs(1)
    }
    /// Whether to go on waiting, `waited` into the wait with `unacknowledged` records
    /// still outstanding.
    fn keep_waiting(&self, waited: Duration, unacknowledged: u64) -> bool;
}

impl Patience for Duration {
    fn check_every(&self) -> Duration {
        (*self).min(Duration::from_secs(1))
    }

    fn keep_waiting(&self, waited: Duration, _unacknowledged: u64) -> bool {
        waited < *self
    }
}

/// A destination for output, dead-letter and late records.
pub trait OutputSink: Send + Sync {
    /// Queues a record; waits when the destination pushes back.
    fn send(&self, record: &OutputRecord<'_>);
    /// Waits until every record queued before this call is written, or `patience` runs
    /// out. Records queued meanwhile (by workers that went on) need not be: a checkpoint
    /// waits only for the output of the records it takes.
    fn flush(&self, patience: &dyn Patience) -> Result<(), EngineError>;

    /// A checkpoint opened epoch `epoch`: records of that epoch and later belong to the
    /// next checkpoint (`u64::MAX` when the checkpoint in flight takes everything).
    /// Only transactional output cares.
    fn cut(&self, _epoch: u64) {}

    /// Called when every record of the checkpoint in flight has been sent: waits until
    /// they are written and returns the outbox to store with the checkpoint, if this
    /// output keeps one.
    fn prepare(&self, patience: &dyn Patience) -> Result<Option<Vec<u8>>, EngineError> {
        self.flush(patience).map(|()| None)
    }

    /// Called once the checkpoint is written: makes its output visible (commits the
    /// transaction, with the checkpoint's offsets).
    fn commit(&self, _checkpoint: &Checkpoint) -> Result<(), EngineError> {
        Ok(())
    }

    /// Called when the checkpoint in flight cannot be written: drops its output.
    fn abort(&self) {}
}

/// A record kept by [`MemoryOutput`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Record key.
    pub key: Vec<u8>,
    /// Record value.
    pub payload: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Keeps every record in memory, per topic.
#[derive(Debug, Default)]
pub struct MemoryOutput {
    topics: Mutex<BTreeMap<String, Vec<OwnedRecord>>>,
}

impl MemoryOutput {
    /// The records written to `topic`, in the order they were sent.
    pub fn records(&self, topic: &str) -> Vec<OwnedRecord> {
        match self.topics.lock() {
            Ok(topics) => topics.get(topic).cloned().unwrap_or_default(),
            Err(poisoned) => poisoned
                .into_inner()
                .get(topic)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

impl OwnedRecord {
    /// An owned copy of `record`'s key, payload and headers.
    pub fn copy_of(record: &OutputRecord<'_>) -> Self {
        OwnedRecord {
            key: record.key.to_vec(),
            payload: record.payload.to_vec(),
            headers: record
                .headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_vec()))
                .collect(),
        }
    }
}

impl OutputSink for MemoryOutput {
    fn send(&self, record: &OutputRecord<'_>) {
        let owned = OwnedRecord::copy_of(record);
        let mut topics = match self.topics.lock() {
            Ok(topics) => topics,
            Err(poisoned) => poisoned.into_inner(),
        };
        topics
            .entry(record.topic.to_string())
            .or_default()
            .push(owned);
    }

    fn flush(&self, _patience: &dyn Patience) -> Result<(), EngineError> {
        Ok(())
    }
}
