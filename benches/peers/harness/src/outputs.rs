//! Reading what a peer wrote: its window topics as they grow (the last record of a window
//! is its value), and its inventory events counted once it has stopped.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use serde::Deserialize;

use crate::job::{OrderCounts, Windows};
use crate::preload::PARTITIONS;

#[derive(Deserialize)]
struct CountsRecord {
    window_start: i64,
    orders: u64,
    failed: u64,
}

#[derive(Deserialize)]
struct DemandRecord {
    window_start: i64,
    item_id: String,
    quantity: u64,
}

/// A `read_committed` reader of a peer's window topics, from their beginning.
pub struct WindowReader {
    consumer: BaseConsumer,
    counts_topic: String,
    /// What the peer has written so far.
    pub windows: Windows,
    /// Records that were not windows of the contract's shape.
    pub unreadable: Vec<String>,
}

impl WindowReader {
    /// Reads `<prefix>.order-counts` and `<prefix>.item-demand`.
    pub fn new(brokers: &str, prefix: &str) -> anyhow::Result<WindowReader> {
        let counts_topic = format!("{prefix}.order-counts");
        let demand_topic = format!("{prefix}.item-demand");
        let consumer = reader(brokers)?;
        let mut assignment = TopicPartitionList::new();
        for topic in [&counts_topic, &demand_topic] {
            for partition in 0..PARTITIONS {
                assignment
                    .add_partition_offset(topic, partition, Offset::Beginning)
                    .context("assigning a window topic")?;
            }
        }
        consumer
            .assign(&assignment)
            .context("assigning the window topics")?;
        Ok(WindowReader {
            consumer,
            counts_topic,
            windows: Windows::default(),
            unreadable: Vec::new(),
        })
    }

    /// Takes in what has arrived, waiting up to `wait` for the first record.
    pub fn poll(&mut self, wait: Duration) -> anyhow::Result<()> {
        let WindowReader {
            consumer,
            counts_topic,
            windows,
            unreadable,
        } = self;
        drain(consumer, wait, "a peer's windows", |topic, payload| {
            if topic == counts_topic {
                match serde_json::from_slice::<CountsRecord>(payload) {
                    Ok(record) => {
                        windows.order_counts.insert(
                            record.window_start,
                            OrderCounts {
                                orders: record.orders,
                                failed: record.failed,
                            },
                        );
                    }
                    Err(error) => note_unreadable(unreadable, payload, &error),
                }
            } else {
                match serde_json::from_slice::<DemandRecord>(payload) {
                    Ok(record) => {
                        windows
                            .item_demand
                            .insert((record.window_start, record.item_id), record.quantity);
                    }
                    Err(error) => note_unreadable(unreadable, payload, &error),
                }
            }
        })
    }

    /// The sum of `topic`'s high watermarks: the records written to it, transaction
    /// markers included, so at least the records a `read_committed` reader will see.
    pub fn written(&self, topic: &str) -> anyhow::Result<u64> {
        let mut total = 0;
        for partition in 0..PARTITIONS {
            let (low, high) = self
                .consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .with_context(|| format!("reading the end of {topic}/{partition}"))?;
            total += (high - low).max(0) as u64;
        }
        Ok(total)
    }
}

/// Hands `take` the topic and payload of every record that has arrived, waiting up to
/// `wait` for the first. A topic not made yet reads as empty: Sluice makes its output
/// topics only when it first writes to them.
pub fn drain(
    consumer: &BaseConsumer,
    wait: Duration,
    what: &str,
    mut take: impl FnMut(&str, &[u8]),
) -> anyhow::Result<()> {
    let mut timeout = wait;
    while let Some(message) = consumer.poll(timeout) {
        timeout = Duration::ZERO;
        match message {
            Ok(message) => take(message.topic(), message.payload().unwrap_or_default()),
            Err(KafkaError::PartitionEOF(_))
            | Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err(error) => return Err(error).with_context(|| format!("reading {what}")),
        }
    }
    Ok(())
}

/// Keeps the first few records that were not of the expected shape, for the report.
pub fn note_unreadable(unreadable: &mut Vec<String>, payload: &[u8], error: &serde_json::Error) {
    if unreadable.len() < 5 {
        unreadable.push(format!(
            "{}: {error}",
            String::from_utf8_lossy(&payload[..payload.len().min(200)])
        ));
    }
}

/// A `read_committed` consumer that reports partition ends and commits nothing.
pub fn reader(brokers: &str) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "sluice-peers-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50")
        .create()
        .context("creating a Kafka consumer")
}

/// Counts the committed records of `topic`, reading every partition to its end; gives up
/// at `deadline` with what it counted.
pub fn count_committed(
    brokers: &str,
    topic: &str,
    deadline: Instant,
) -> anyhow::Result<(u64, bool)> {
    let consumer = reader(brokers)?;
    // Sluice makes `inventory-events` itself, so it is missing before the first run.
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let exists = metadata.topics().iter().any(|found| {
        found.name() == topic && found.error().is_none() && !found.partitions().is_empty()
    });
    if !exists {
        return Ok((0, true));
    }
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .context("assigning a partition")?;
    }
    consumer
        .assign(&assignment)
        .context("assigning the topic")?;
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut count = 0;
    while at_end.len() < PARTITIONS as usize && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                count += 1;
                at_end.remove(&message.partition());
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => return Err(error).with_context(|| format!("reading {topic}")),
        }
    }
    Ok((count, at_end.len() == PARTITIONS as usize))
}

/// Each partition's end offset now, for the partitions the topic has; an absent topic
/// ends at 0 on each of the [`PARTITIONS`] partitions a run will create it with.
pub fn ends(brokers: &str, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let consumer = reader(brokers)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let partitions = sluice::kafka::admin::partition_ids(&metadata, topic);
    if partitions.is_empty() {
        return Ok((0..PARTITIONS).map(|partition| (partition, 0)).collect());
    }
    let mut ends = BTreeMap::new();
    for partition in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .with_context(|| format!("reading the end of {topic}/{partition}"))?;
        ends.insert(partition, high);
    }
    Ok(ends)
}
