//! Offsets the state needs that the log no longer holds: a partition whose next offset is
//! below its log start (retention or `kafka-delete-records` removed records the engine had
//! not read) or above its log end (the topic was deleted and made again, or truncated).
//!
//! Reading on from wherever the log now begins would give views that silently miss
//! records, against state that remembers everything before. So by default the engine
//! refuses, at start and while running, naming the partition, the offsets and the replay
//! that rebuilds the state from what the topic holds. `--on-missing-offsets earliest`
//! (or `latest`) accepts the gap instead and moves the partition to its log start (or
//! end), as a Kafka consumer's `auto.offset.reset` would, but says so in the log and in
//! `/status`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use tracing::warn;
use utoipa::ToSchema;

use super::KafkaSettings;
use crate::error::EngineError;
use crate::status::EngineStatus;

/// What to do with a partition whose next offset is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingOffsets {
    /// Stop, naming the partition and the replay that rebuilds the state.
    #[default]
    Fail,
    /// Read on from the log's first offset, accepting the records lost.
    Earliest,
    /// Read on from the log's end, skipping everything there is.
    Latest,
}

/// A partition whose next offset is outside its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetGap {
    pub topic: String,
    pub partition: i32,
    /// The offset the state reads next.
    pub needed: i64,
    /// The log's first offset.
    pub log_start: i64,
    /// The log's end (the next offset it will write).
    pub log_end: i64,
}

impl OffsetGap {
    /// The gap, if `needed` is outside `[log_start, log_end]`.
    pub fn of(
        topic: &str,
        partition: i32,
        needed: i64,
        (log_start, log_end): (i64, i64),
    ) -> Option<Self> {
        (needed < log_start || needed > log_end).then(|| OffsetGap {
            topic: topic.to_string(),
            partition,
            needed,
            log_start,
            log_end,
        })
    }

    /// What happened to the log, as far as the offsets tell.
    pub fn cause(&self) -> String {
        if self.needed < self.log_start {
            format!(
                "records {}..{} were deleted (by retention or by hand) before they were read",
                self.needed, self.log_start
            )
        } else {
            format!(
                "the log ends at {}, so the topic was recreated or truncated",
                self.log_end
            )
        }
    }

    /// Where `policy` moves the partition; `None` when it refuses.
    pub fn moved_to(&self, policy: OnMissingOffsets) -> Option<i64> {
        match policy {
            OnMissingOffsets::Fail => None,
            OnMissingOffsets::Earliest => Some(self.log_start),
            OnMissingOffsets::Latest => Some(self.log_end),
        }
    }

    /// The refusal, with the ways on.
    pub fn refusal(&self, program: &str) -> String {
        format!(
            "source partition {}/{} is to be read from offset {}, which its log no longer \
             holds: {}. The views would miss those records. Rebuild the state from what the \
             topic holds with `{program} replay --from-beginning`, or accept the gap with \
             --on-missing-offsets earliest (read from {}) or latest (read from {})",
            self.topic,
            self.partition,
            self.needed,
            self.cause(),
            self.log_start,
            self.log_end
        )
    }
}

/// A partition moved past a gap, for `/status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OffsetReset {
    pub topic: String,
    pub partition: i32,
    /// The offset the state needed.
    pub needed: i64,
    pub log_start: i64,
    pub log_end: i64,
    /// Where the partition was read from instead.
    pub moved_to: i64,
    /// `start` or `running`.
    pub found: String,
    /// When, RFC 3339.
    pub at: String,
}

impl OffsetReset {
    pub fn of(gap: &OffsetGap, moved_to: i64, found: &str) -> Self {
        OffsetReset {
            topic: gap.topic.clone(),
            partition: gap.partition,
            needed: gap.needed,
            log_start: gap.log_start,
            log_end: gap.log_end,
            moved_to,
            found: found.to_string(),
            at: crate::time::format_millis(chrono::Utc::now().timestamp_millis()),
        }
    }
}

/// Whether a consumer error says a partition's next offset is not in its log: librdkafka's
/// answer under `auto.offset.reset=error`, which the engine's consumers set.
pub fn is_offset_gone(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
    )
}

/// How long to wait for the broker while moving a partition past a gap.
const WHILE_RUNNING_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times to ask for a partition's bounds before giving up on it.
const WHILE_RUNNING_ATTEMPTS: usize = 3;

/// Deals with a partition of `topic` whose next offset, `needed`, left the log while the
/// engine ran (retention overtook a lagging engine, or the topic was recreated): moves it
/// as `policy` says, recorded in the status, or returns the refusal that stops the engine.
pub fn move_while_running<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    topic: &str,
    partition: i32,
    needed: i64,
    policy: OnMissingOffsets,
    status: &EngineStatus,
) -> Result<(), String> {
    // A broker that does not answer once is asked again: under `earliest|latest` the user
    // accepted the gap, and one lost answer must not turn it into a stop.
    let mut last_error = None;
    let mut bounds = None;
    for _ in 0..WHILE_RUNNING_ATTEMPTS {
        match consumer.fetch_watermarks(topic, partition, WHILE_RUNNING_TIMEOUT) {
            Ok(found) => {
                bounds = Some(found);
                break;
            }
            Err(error) => last_error = Some(error),
        }
    }
    let Some(bounds) = bounds else {
        let error = last_error
            .map(|error| error.to_string())
            .unwrap_or_default();
        return Err(format!(
            "source partition {topic}/{partition} is to be read from offset {needed}, which \
             its log no longer holds, and the broker did not say where the log is now: {error}"
        ));
    };
    // The broker said the offset is gone; if the log holds it again a moment later (an
    // answer from a broker that was behind), the partition reads on from it, moving nowhere.
    let gap = OffsetGap::of(topic, partition, needed, bounds);
    let to = match &gap {
        Some(gap) => gap
            .moved_to(policy)
            .ok_or_else(|| gap.refusal(&crate::checkpoint::restore::program_name()))?,
        None => needed,
    };
    // librdkafka stopped fetching the partition when it reported the gap, and a stopped
    // partition cannot seek; assigned again, it fetches from `to`. Its queue stays split
    // off, so its records still come to this source.
    let move_to = |offset: Offset| -> Result<TopicPartitionList, String> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, offset)
            .map_err(|error| format!("cannot name {topic}/{partition}: {error}"))?;
        Ok(list)
    };
    let (stop, start) = (move_to(Offset::Invalid)?, move_to(Offset::Offset(to))?);
    consumer
        .incremental_unassign(&stop)
        .and_then(|()| consumer.incremental_assign(&start))
        .map_err(|error| format!("cannot move {topic}/{partition} to offset {to}: {error}"))?;
    match gap {
        Some(gap) => {
            warn!(
                topic,
                partition,
                needed,
                moved_to = to,
                "{}; reading on from {to} as --on-missing-offsets says",
                gap.cause()
            );
            status.record_offset_reset(OffsetReset::of(&gap, to, "running"));
        }
        None => warn!(
            topic,
            partition,
            needed,
            "the broker said this offset was out of range, and its log holds it now; reading on from it"
        ),
    }
    Ok(())
}

/// The partitions among `needed` (each with the offset the state reads next) whose offset
/// the log no longer holds, asking the brokers for each log's bounds.
pub fn gaps_at_start(
    settings: &KafkaSettings,
    needed: &BTreeMap<(String, i32), i64>,
    deadline: Duration,
) -> Result<Vec<OffsetGap>, EngineError> {
    if needed.is_empty() {
        return Ok(Vec::new());
    }
    let consumer: BaseConsumer = settings
        .base_config()
        .create()
        .map_err(|error| EngineError::kafka("creating the offsets client", error))?;
    let started = Instant::now();
    let mut gaps = Vec::new();
    for ((topic, partition), &offset) in needed {
        let remaining = deadline
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let bounds = consumer
            .fetch_watermarks(topic, *partition, remaining)
            .map_err(|error| {
                EngineError::kafka(format!("reading where {topic}/{partition} begins"), error)
            })?;
        gaps.extend(OffsetGap::of(topic, *partition, offset, bounds));
    }
    Ok(gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_an_offset_outside_the_log() {
        assert_eq!(OffsetGap::of("t", 0, 5, (5, 9)), None);
        assert_eq!(
            OffsetGap::of("t", 0, 9, (5, 9)),
            None,
            "the end is where it writes next"
        );
        let deleted = OffsetGap::of("t", 1, 3, (5, 9)).expect("below the start");
        assert!(deleted.cause().contains("records 3..5 were deleted"));
        assert_eq!(deleted.moved_to(OnMissingOffsets::Earliest), Some(5));
        assert_eq!(deleted.moved_to(OnMissingOffsets::Latest), Some(9));
        assert_eq!(deleted.moved_to(OnMissingOffsets::Fail), None);
        let recreated = OffsetGap::of("t", 2, 40, (0, 7)).expect("above the end");
        assert!(
            recreated.cause().contains("recreated"),
            "{}",
            recreated.cause()
        );
        let refusal = recreated.refusal("shop");
        for needle in [
            "t/2",
            "offset 40",
            "shop replay --from-beginning",
            "earliest (read from 0)",
        ] {
            assert!(refusal.contains(needle), "{needle}: {refusal}");
        }
    }
}
