//! The dedupe helper: reads a topic to its end and keeps the first record of every
//! `sluice-id`, so that at-least-once output reads as exactly once.
//!
//! Every output record carries the deterministic id of the input record it came from
//! ([`super::producer::RECORD_ID_HEADER`]). After a crash the engine writes again what it
//! had written since its last checkpoint, with the same ids: a consumer that drops the ids
//! it has seen sees every output exactly once. This is that consumer, as a library for
//! tests and tools and as `shop dedupe` for people.
//!
//! It reads with `isolation.level=read_committed`, so that with `--exactly-once` output it
//! sees only committed transactions, and stops once every partition reported its end.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::producer::RECORD_ID_HEADER;
use super::settings::KafkaSettings;
use crate::error::EngineError;

/// A record as the helper hands it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptRecord {
    /// Its `sluice-id`, if it has one.
    pub id: Option<String>,
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Its key, as text.
    pub key: String,
    /// Its value, as text.
    pub value: String,
}

/// What a pass over a topic found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DedupeReport {
    /// The topic read.
    pub topic: String,
    /// Records read.
    pub records: u64,
    /// Records kept: the first of each id, and every record without one.
    pub kept: u64,
    /// Records dropped because their id had been seen.
    pub duplicates: u64,
    /// Records that carry no id (not written by Sluice); kept, and counted here.
    pub without_id: u64,
}

/// Reads `topic` from the beginning to its end and hands every record that is not a
/// duplicate to `keep`. Fails if the topic does not exist or its end is not reached within
/// `timeout`.
pub fn read_deduplicated(
    settings: &KafkaSettings,
    topic: &str,
    timeout: Duration,
    mut keep: impl FnMut(KeptRecord),
) -> Result<DedupeReport, EngineError> {
    let consumer: BaseConsumer = settings
        .consumer_config("sluice-dedupe")
        // Only committed transactions: what an exactly-once consumer would see.
        .set("isolation.level", "read_committed")
        // The end of each partition is what tells this reader it is done.
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|error| EngineError::kafka("creating the dedupe consumer", error))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|error| EngineError::kafka(format!("reading metadata of {topic}"), error))?;
    let partitions = super::admin::partition_ids(&metadata, topic);
    if partitions.is_empty() {
        return Err(EngineError::Topology(format!(
            "topic {topic} does not exist or has no partitions"
        )));
    }
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|error| EngineError::kafka(format!("assigning {topic}"), error))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|error| EngineError::kafka(format!("assigning {topic}"), error))?;

    let mut report = DedupeReport {
        topic: topic.to_string(),
        ..DedupeReport::default()
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut open: BTreeSet<i32> = partitions.into_iter().collect();
    let deadline = Instant::now() + timeout;
    while !open.is_empty() {
        if Instant::now() >= deadline {
            return Err(EngineError::Dataflow(format!(
                "read {} records of {topic} but partitions {open:?} did not reach their end within {timeout:?}",
                report.records
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(error)) => {
                tracing::warn!(%error, topic, "consumer error while deduplicating; retrying");
            }
            Some(Ok(message)) => {
                report.records += 1;
                let id = message.headers().and_then(|headers| {
                    headers
                        .iter()
                        .find(|header| header.key == RECORD_ID_HEADER)
                        .and_then(|header| header.value)
                        .map(|value| String::from_utf8_lossy(value).into_owned())
                });
                match &id {
                    Some(id) if !seen.insert(id.clone()) => {
                        report.duplicates += 1;
                        continue;
                    }
                    Some(_) => {}
                    None => report.without_id += 1,
                }
                report.kept += 1;
                keep(KeptRecord {
                    id,
                    partition: message.partition(),
                    offset: message.offset(),
                    key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    value: String::from_utf8_lossy(message.payload().unwrap_or_default())
                        .into_owned(),
                });
            }
        }
    }
    Ok(report)
}
