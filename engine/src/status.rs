//! Live progress of a running engine, shared by the workers and the HTTP API.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::feed::ChangeFeed;
use crate::kafka::missing_offsets::{OffsetReset, OnMissingOffsets};
use crate::readiness::Readiness;
use crate::window_latency::WindowCloseLatency;

/// Progress of one source partition.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PartitionProgress {
    /// The next offset the engine will read.
    pub offset: i64,
    /// The broker's high watermark as last fetched, or -1 before the first fetch.
    pub high_watermark: i64,
    /// Records read from the partition and decoded by this run.
    pub records_in: u64,
    /// Output records this run derived from the partition's records.
    pub emitted: u64,
    /// The partition's records this run sent to the dead-letter topic.
    pub failed: u64,
    /// The partition's watermark (its greatest event time minus the grace), once it has
    /// read a record, in epoch milliseconds.
    pub watermark: Option<u64>,
    /// Silent and caught up for longer than its source's idle timeout.
    pub idle: bool,
}

/// Counters and progress that workers update and readers sample without blocking ingestion.
#[derive(Debug, Default)]
pub struct EngineStatus {
    partitions: Mutex<BTreeMap<(String, i32), PartitionProgress>>,
    /// Records read from sources and decoded.
    pub processed: AtomicU64,
    /// Records that arrived after their window closed.
    pub late: AtomicU64,
    /// Records sent to a dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Records handed to the producer for output topics.
    pub emitted: AtomicU64,
    /// Output records the broker did not acknowledge.
    pub delivery_failures: AtomicU64,
    /// Output records a replay did not write because the previous run had.
    pub suppressed: AtomicU64,
    /// Output transactions committed (exactly-once output only).
    pub transactions_committed: AtomicU64,
    /// Output transactions aborted (exactly-once output only).
    pub transactions_aborted: AtomicU64,
    /// Records written again at start from the outbox of a transaction that had not
    /// committed (exactly-once output only).
    pub outbox_resent: AtomicU64,
    fatal: Mutex<Option<String>>,
    /// What to do with offsets the log no longer holds, and the partitions moved past them.
    missing_offsets: Mutex<(OnMissingOffsets, Vec<OffsetReset>)>,
    /// What holds the running engine back, for `/readyz`.
    pub readiness: Readiness,
    checkpoint: Mutex<Option<Checkpoint>>,
    /// Late records per view, source topic and partition.
    late_by: Mutex<BTreeMap<(String, String, i32), u64>>,
    /// How long committed checkpoints took, in seconds.
    pub checkpoint_seconds: CheckpointDurations,
    /// Wall time from each window's close point to the commit that makes it visible.
    pub window_close: WindowCloseLatency,
    /// View changes, published to live streams as their checkpoint commits.
    pub changes: ChangeFeed,
    /// Records handed to the producer, per output topic.
    records_out: Mutex<BTreeMap<String, u64>>,
    /// Output records the broker acknowledged, per topic, indexed by partition. Keyed by
    /// the topic as `&str` can look it up: the count is taken on every delivery report.
    delivered: Mutex<HashMap<String, Vec<u64>>>,
}

/// The durations of the checkpoints this run committed, for `/metrics`.
#[derive(Debug, Clone)]
pub struct CheckpointDurations(pub Histogram);

impl Default for CheckpointDurations {
    fn default() -> Self {
        // From 1 ms to about 33 s, doubling.
        CheckpointDurations(Histogram::new(exponential_buckets(0.001, 2.0, 16)))
    }
}

impl EngineStatus {
    /// A status with no progress yet.
    pub fn new() -> Self {
        EngineStatus {
            ..Default::default()
        }
    }

    /// Counts a record that was late for `view`, read from `topic` partition `partition`.
    pub fn count_late(&self, view: &str, topic: &str, partition: i32) {
        let mut late = self
            .late_by
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *late
            .entry((view.to_string(), topic.to_string(), partition))
            .or_default() += 1;
    }

    /// Late records per view, source topic and partition.
    pub fn late_by(&self) -> Vec<((String, String, i32), u64)> {
        let late = self
            .late_by
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        late.iter()
            .map(|(key, count)| (key.clone(), *count))
            .collect()
    }

    /// Registers a partition before it is read, so that it shows (with lag) from the start.
    pub fn register_partition(&self, topic: &str, partition: i32) {
        self.with_partitions(|partitions| {
            partitions
                .entry((topic.to_string(), partition))
                .or_insert(PartitionProgress {
                    high_watermark: -1,
                    ..PartitionProgress::default()
                });
        });
    }

    /// Records the next offset to read on a partition.
    pub fn set_offset(&self, topic: &str, partition: i32, offset: i64) {
        self.with_partitions(|partitions| {
            if let Some(progress) = partitions.get_mut(&(topic.to_string(), partition)) {
                progress.offset = offset;
            }
        });
    }

    /// Counts `records` read from `topic` partition `partition` and decoded.
    pub fn count_in(&self, topic: &str, partition: i32, records: u64) {
        self.with_partitions(|partitions| {
            if let Some(progress) = partitions.get_mut(&(topic.to_string(), partition)) {
                progress.records_in += records;
            }
        });
    }

    /// Counts `records` output records derived from records of `topic`/`partition`.
    pub fn count_emitted_from(&self, topic: &str, partition: i32, records: u64) {
        self.with_partitions(|partitions| {
            if let Some(progress) = partitions.get_mut(&(topic.to_string(), partition)) {
                progress.emitted += records;
            }
        });
    }

    /// Counts a record of `topic`/`partition` that went to the dead-letter topic.
    pub fn count_failed(&self, topic: &str, partition: i32) {
        self.with_partitions(|partitions| {
            if let Some(progress) = partitions.get_mut(&(topic.to_string(), partition)) {
                progress.failed += 1;
            }
        });
    }

    /// Counts `records` handed to the producer for `topic`.
    pub fn count_out(&self, topic: &str, records: u64) {
        let mut out = self
            .records_out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *out.entry(topic.to_string()).or_default() += records;
    }

    /// Counts an output record the broker acknowledged on `topic`/`partition`.
    pub fn count_delivered(&self, topic: &str, partition: i32) {
        let Ok(index) = usize::try_from(partition) else {
            return;
        };
        let mut delivered = self
            .delivered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let counts = match delivered.get_mut(topic) {
            Some(counts) => counts,
            None => delivered.entry(topic.to_string()).or_default(),
        };
        if counts.len() <= index {
            counts.resize(index + 1, 0);
        }
        counts[index] += 1;
    }

    /// Output records the broker acknowledged, per topic and partition, in order.
    pub fn records_delivered(&self) -> Vec<(String, i32, u64)> {
        let delivered = self
            .delivered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut all: Vec<(String, i32, u64)> = delivered
            .iter()
            .flat_map(|(topic, counts)| {
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, count)| **count > 0)
                    .map(|(partition, count)| (topic.clone(), partition as i32, *count))
            })
            .collect();
        all.sort();
        all
    }

    /// Records handed to the producer, per output topic.
    pub fn records_out(&self) -> Vec<(String, u64)> {
        self.records_out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(topic, count)| (topic.clone(), *count))
            .collect()
    }

    /// Records a partition's high watermark as fetched from the broker.
    pub fn set_high_watermark(&self, topic: &str, partition: i32, high_watermark: i64) {
        self.with_partitions(|partitions| {
            if let Some(progress) = partitions.get_mut(&(topic.to_string(), partition)) {
                progress.high_watermark = high_watermark;
            }
        });
    }

    /// A partition's high watermark as last fetched, if known.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let mut found = None;
        self.with_partitions(|partitions| {
            found = partitions
                .get(&(topic.to_string(), partition))
                .map(|progress| progress.high_watermark)
                .filter(|high| *high >= 0);
        });
        found
    }

    /// A snapshot of every partition's progress.
    pub fn partitions(&self) -> Vec<(String, i32, PartitionProgress)> {
        let mut snapshot = Vec::new();
        self.with_partitions(|partitions| {
            snapshot = partitions
                .iter()
                .map(|((topic, partition), progress)| (topic.clone(), *partition, progress.clone()))
                .collect();
        });
        snapshot
    }

    /// Records where a partition's watermark stands (`None` until it has read a record),
    /// and whether the partition is idle.
    pub fn set_partition_watermark(
        &self,
        topic: &str,
        partition: i32,
        watermark: Option<u64>,
        idle: bool,
    ) {
        self.with_partitions(|partitions| {
            if let Some(progress) = partitions.get_mut(&(topic.to_string(), partition)) {
                progress.watermark = watermark;
                progress.idle = idle;
            }
        });
    }

    /// The least watermark over the partitions that have read a record and are not idle,
    /// as Flink leaves idle inputs out: a quiet topic (a catalog updated once an hour) does
    /// not hold it back. When every partition is idle, the least over all of them. `None`
    /// before any partition has read a record.
    pub fn watermark(&self) -> Option<i64> {
        let mut least = None;
        self.with_partitions(|partitions| {
            let with_data = || partitions.values().filter(|p| p.watermark.is_some());
            let active = with_data()
                .filter(|p| !p.idle)
                .filter_map(|p| p.watermark)
                .min();
            least = active.or_else(|| with_data().filter_map(|p| p.watermark).min());
        });
        least.map(|watermark| i64::try_from(watermark).unwrap_or(i64::MAX))
    }

    /// Records a checkpoint this run committed, and how long it took.
    pub fn checkpoint_committed(&self, checkpoint: Checkpoint) {
        self.window_close
            .committed(&checkpoint, std::time::Instant::now());
        self.changes.publish(&checkpoint);
        self.checkpoint_seconds
            .0
            .observe(checkpoint.duration_ms as f64 / 1_000.0);
        self.set_checkpoint(checkpoint);
    }

    /// Records the last committed (or restored) checkpoint.
    pub fn set_checkpoint(&self, checkpoint: Checkpoint) {
        let mut guard = self
            .checkpoint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = Some(checkpoint);
    }

    /// The last committed checkpoint: what the views reflect.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.checkpoint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Sets what the engine does with offsets the log no longer holds, for `/status`.
    pub fn set_missing_offsets_policy(&self, policy: OnMissingOffsets) {
        self.lock_missing_offsets().0 = policy;
    }

    /// Records a partition moved past offsets the log no longer holds.
    pub fn record_offset_reset(&self, reset: OffsetReset) {
        self.lock_missing_offsets().1.push(reset);
    }

    /// The policy for offsets the log no longer holds, and every partition it moved.
    pub fn missing_offsets(&self) -> (OnMissingOffsets, Vec<OffsetReset>) {
        self.lock_missing_offsets().clone()
    }

    fn lock_missing_offsets(
        &self,
    ) -> std::sync::MutexGuard<'_, (OnMissingOffsets, Vec<OffsetReset>)> {
        self.missing_offsets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records an error that must stop the engine; the first one wins.
    pub fn set_fatal(&self, message: impl Into<String>) {
        if let Ok(mut fatal) = self.fatal.lock() {
            fatal.get_or_insert_with(|| message.into());
        }
    }

    /// The error that stopped the engine, if any.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|fatal| fatal.clone())
    }

    /// Reads a counter.
    pub fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    fn with_partitions(
        &self,
        action: impl FnOnce(&mut BTreeMap<(String, i32), PartitionProgress>),
    ) {
        // A worker that panicked while holding the lock leaves the map usable: progress
        // figures are monotone counters, so the poisoned value is still meaningful.
        let mut guard = match self.partitions.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        action(&mut guard);
    }
}
