//! Replaying a topology's input into fresh state, without doubling its output.
//!
//! A replay wipes the state, rewinds every source partition (to offset zero, or to the
//! first record at or after a timestamp) and reprocesses. Its output is one of:
//! - [`ReplayOutput::SkipUntilCaughtUp`]: nothing is written for input records that the
//!   previous run had already checkpointed; output that no single input record explains
//!   (window changes sent to a topic) is held back until every partition has caught up;
//! - [`ReplayOutput::Versioned`]: everything is written, to `<topic>.<version>` topics, for
//!   consumers that choose to switch over.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_state::StateDb;

use crate::checkpoint::Checkpoint;
use crate::checkpoint::restore::last_checkpoint;
use crate::error::EngineError;
use crate::output::{OutputRecord, OutputSink, Patience};
use crate::status::EngineStatus;

/// Where a replay starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Offset zero of every partition.
    Beginning,
    /// The first record of each partition with a timestamp at or after this (epoch ms).
    Timestamp(i64),
}

/// What a replay writes to output topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutput {
    /// Write only what the previous run had not written.
    SkipUntilCaughtUp,
    /// Write everything to `<topic>.<version>`.
    Versioned(String),
}

/// How to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Where to start.
    pub from: ReplayFrom,
    /// What to write.
    pub output: ReplayOutput,
}

/// The last checkpoint of a state directory, whatever topology wrote it: where the previous
/// run had got to. `None` when there is no state or no checkpoint.
pub fn previous_checkpoint(state_dir: &Path) -> Result<Option<Checkpoint>, EngineError> {
    if !state_dir.join("CURRENT").exists() {
        return Ok(None);
    }
    last_checkpoint(&StateDb::open(state_dir, std::iter::empty())?)
}

/// Whether the state in `state_dir` holds the outbox of an exactly-once transaction that
/// may not have committed: a replay must not wipe it, or that output is lost.
pub fn has_pending_outbox(state_dir: &Path) -> Result<bool, EngineError> {
    if !state_dir.join("CURRENT").exists() {
        return Ok(false);
    }
    let db = StateDb::open(state_dir, std::iter::empty())?;
    Ok(db.meta()?.get(crate::kafka::outbox::OUTBOX_KEY)?.is_some())
}

/// The name a versioned replay writes `topic` under.
pub fn versioned_topic(topic: &str, version: &str) -> String {
    format!("{topic}.{version}")
}

/// An output sink that applies a replay's output choice in front of the real one.
pub(crate) struct ReplaySink {
    inner: Arc<dyn OutputSink>,
    mode: Mode,
    status: Arc<EngineStatus>,
}

enum Mode {
    SkipBefore {
        previous: BTreeMap<(String, i32), i64>,
        caught_up: AtomicBool,
    },
    Rename(String),
}

impl ReplaySink {
    /// Wraps `inner` for a replay with `output`, after a previous run that reached
    /// `previous` (nothing is skipped without one).
    pub(crate) fn new(
        inner: Arc<dyn OutputSink>,
        output: &ReplayOutput,
        previous: Option<&Checkpoint>,
        status: Arc<EngineStatus>,
    ) -> Self {
        let mode = match output {
            ReplayOutput::Versioned(version) => Mode::Rename(version.clone()),
            ReplayOutput::SkipUntilCaughtUp => {
                let previous: BTreeMap<(String, i32), i64> = previous
                    .map(|checkpoint| {
                        checkpoint
                            .positions
                            .iter()
                            .map(|p| ((p.topic.clone(), p.partition), p.offset))
                            .collect()
                    })
                    .unwrap_or_default();
                Mode::SkipBefore {
                    caught_up: AtomicBool::new(previous.values().all(|offset| *offset == 0)),
                    previous,
                }
            }
        };
        ReplaySink {
            inner,
            mode,
            status,
        }
    }

    /// Whether every partition has been read past where the previous run had got to.
    fn has_caught_up(&self, previous: &BTreeMap<(String, i32), i64>, flag: &AtomicBool) -> bool {
        if flag.load(Ordering::Relaxed) {
            return true;
        }
        let progress: BTreeMap<(String, i32), i64> = self
            .status
            .partitions()
            .into_iter()
            .map(|(topic, partition, progress)| ((topic, partition), progress.offset))
            .collect();
        let caught_up = previous
            .iter()
            .all(|(key, offset)| progress.get(key).is_some_and(|read| read >= offset));
        if caught_up {
            flag.store(true, Ordering::Relaxed);
        }
        caught_up
    }
}

impl OutputSink for ReplaySink {
    fn send(&self, record: &OutputRecord<'_>) {
        match &self.mode {
            Mode::Rename(version) => {
                let topic = versioned_topic(record.topic, version);
                self.inner.send(&OutputRecord {
                    topic: &topic,
                    ..*record
                });
            }
            Mode::SkipBefore {
                previous,
                caught_up,
            } => {
                let already_written = match &record.origin {
                    Some(origin) => previous
                        .get(&(origin.topic.to_string(), origin.partition))
                        .is_some_and(|offset| origin.offset < *offset),
                    None => !self.has_caught_up(previous, caught_up),
                };
                if already_written {
                    EngineStatus::add(&self.status.suppressed, 1);
                } else {
                    self.inner.send(record);
                }
            }
        }
    }

    fn flush(&self, patience: &dyn Patience) -> Result<(), EngineError> {
        self.inner.flush(patience)
    }

    fn cut(&self, epoch: u64) {
        self.inner.cut(epoch);
    }

    fn prepare(&self, patience: &dyn Patience) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.prepare(patience)
    }

    fn commit(&self, checkpoint: &Checkpoint) -> Result<(), EngineError> {
        self.inner.commit(checkpoint)
    }

    fn abort(&self) {
        self.inner.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::SourcePosition;
    use crate::output::{InputPosition, MemoryOutput};

    fn previous() -> Checkpoint {
        Checkpoint {
            id: 1,
            epoch: 1,
            is_final: true,
            positions: vec![SourcePosition {
                topic: "in".into(),
                partition: 0,
                offset: 10,
                max_event_time: None,
                watermark: 0,
                unread: false,
            }],
            watermark: 0,
            committed_at: 0,
            duration_ms: 0,
            fingerprint: "f".into(),
        }
    }

    fn send_from(sink: &ReplaySink, offset: i64) {
        sink.send(&OutputRecord {
            topic: "out",
            key: b"k",
            payload: b"{}",
            headers: &[],
            origin: Some(InputPosition {
                topic: "in",
                partition: 0,
                offset,
            }),
            epoch: 0,
        });
    }

    #[test]
    fn a_pending_outbox_is_seen_so_that_a_replay_does_not_wipe_it() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(!has_pending_outbox(dir.path()).expect("no state yet"));
        let db = StateDb::open(dir.path(), std::iter::empty()).expect("opens");
        drop(db);
        assert!(!has_pending_outbox(dir.path()).expect("a state without an outbox"));
        let db = StateDb::open(dir.path(), std::iter::empty()).expect("opens");
        db.meta()
            .expect("meta")
            .put(crate::kafka::outbox::OUTBOX_KEY, b"records")
            .expect("written");
        drop(db);
        assert!(has_pending_outbox(dir.path()).expect("readable"));
    }

    #[test]
    fn output_of_records_the_previous_run_checkpointed_is_skipped() {
        let memory = Arc::new(MemoryOutput::default());
        let status = Arc::new(EngineStatus::new());
        let sink = ReplaySink::new(
            memory.clone(),
            &ReplayOutput::SkipUntilCaughtUp,
            Some(&previous()),
            Arc::clone(&status),
        );
        for offset in 0..15 {
            send_from(&sink, offset);
        }
        assert_eq!(memory.records("out").len(), 5);
        assert_eq!(EngineStatus::count(&status.suppressed), 10);
    }

    #[test]
    fn a_versioned_replay_writes_everything_elsewhere() {
        let memory = Arc::new(MemoryOutput::default());
        let sink = ReplaySink::new(
            memory.clone(),
            &ReplayOutput::Versioned("v2".into()),
            Some(&previous()),
            Arc::new(EngineStatus::new()),
        );
        for offset in 0..15 {
            send_from(&sink, offset);
        }
        assert_eq!(memory.records("out").len(), 0);
        assert_eq!(memory.records("out.v2").len(), 15);
    }
}
