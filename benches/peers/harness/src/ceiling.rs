//! The ceiling: a hand-written consumer that reads the orders, parses them and counts the
//! job's windows in plain hash maps, one thread per core, then writes the windows once.
//! No state store, no watermarks, no inventory events, no checkpoints: what one process
//! can do with this broker at best.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Deserialize;
use sluice::dsl::EventTime;

use crate::job::{OrderCounts, Windows, window_start};

#[derive(Deserialize)]
struct Order<'a> {
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    items: Option<Vec<Line<'a>>>,
    timestamp: EventTime,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    item_id: Cow<'a, str>,
    quantity: u32,
}

/// One thread's counts; item windows keyed by start, then item, so that a lookup by
/// `&str` allocates nothing.
#[derive(Default)]
struct Counts {
    orders: HashMap<i64, OrderCounts>,
    items: HashMap<i64, HashMap<String, u64>>,
    unreadable: u64,
}

impl Counts {
    fn add(&mut self, payload: &[u8]) {
        let Ok(order) = serde_json::from_slice::<Order<'_>>(payload) else {
            self.unreadable += 1;
            return;
        };
        let Some(items) = order.items.filter(|_| order.event_type == "OrderPlaced") else {
            return;
        };
        let start = window_start(order.timestamp.millis());
        let counts = self.orders.entry(start).or_default();
        counts.orders += 1;
        if order.status.as_deref() == Some("failed") {
            counts.failed += 1;
            return;
        }
        let window = self.items.entry(start).or_default();
        for line in items {
            match window.get_mut(line.item_id.as_ref()) {
                Some(quantity) => *quantity += u64::from(line.quantity),
                None => {
                    window.insert(line.item_id.into_owned(), u64::from(line.quantity));
                }
            }
        }
    }

    fn merge_into(self, windows: &mut Windows) {
        for (start, counts) in self.orders {
            let total = windows.order_counts.entry(start).or_default();
            total.orders += counts.orders;
            total.failed += counts.failed;
        }
        for (start, items) in self.items {
            for (item, quantity) in items {
                *windows.item_demand.entry((start, item)).or_default() += quantity;
            }
        }
    }
}

/// Reads `input` to the end it had at start, counts, and writes the windows under `prefix`.
pub fn run(brokers: &str, input: &str, prefix: &str, group: &str) -> anyhow::Result<()> {
    let ends = partition_ends(brokers, input, group)?;
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .min(ends.len().max(1));
    let mut shares: Vec<Vec<(i32, i64)>> = vec![Vec::new(); threads];
    for (index, end) in ends.into_iter().enumerate() {
        shares[index % threads].push(end);
    }
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let (brokers, input, group) =
                (brokers.to_string(), input.to_string(), group.to_string());
            std::thread::spawn(move || count_share(&brokers, &input, &group, &share))
        })
        .collect();
    let mut windows = Windows::default();
    let mut unreadable = 0;
    for handle in handles {
        let counts = match handle.join() {
            Ok(result) => result?,
            Err(_) => bail!("a counting thread panicked"),
        };
        unreadable += counts.unreadable;
        counts.merge_into(&mut windows);
    }
    if unreadable > 0 {
        eprintln!("ceiling: skipped {unreadable} records that are not orders");
    }
    write_windows(brokers, prefix, &windows)
}

/// Each partition of `topic` with its high watermark now.
fn partition_ends(brokers: &str, topic: &str, group: &str) -> anyhow::Result<Vec<(i32, i64)>> {
    let consumer = consumer(brokers, group)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let mut ends = Vec::new();
    for found in metadata
        .topics()
        .iter()
        .filter(|found| found.name() == topic)
    {
        for partition in found.partitions() {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition.id(), Duration::from_secs(30))
                .with_context(|| format!("reading the end of {topic}/{}", partition.id()))?;
            ends.push((partition.id(), high));
        }
    }
    if ends.is_empty() {
        bail!("topic {topic} has no partitions");
    }
    Ok(ends)
}

fn consumer(brokers: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .set("queued.min.messages", "200000")
        .create()
        .context("creating a Kafka consumer")
}

fn count_share(
    brokers: &str,
    topic: &str,
    group: &str,
    share: &[(i32, i64)],
) -> anyhow::Result<Counts> {
    let consumer = consumer(brokers, group)?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    for &(partition, end) in share {
        if end > 0 {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .context("assigning a partition")?;
            remaining.insert(partition, end);
        }
    }
    consumer
        .assign(&assignment)
        .context("assigning partitions")?;
    let mut counts = Counts::default();
    while !remaining.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.context("reading the orders")?;
        if let Some(payload) = message.payload() {
            counts.add(payload);
        }
        if remaining
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            remaining.remove(&message.partition());
        }
    }
    Ok(counts)
}

fn write_windows(brokers: &str, prefix: &str, windows: &Windows) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .create()
        .context("creating the windows' producer")?;
    let counts_topic = format!("{prefix}.order-counts");
    for (start, counts) in &windows.order_counts {
        let key = start.to_string();
        let value = serde_json::json!({
            "window_start": start, "orders": counts.orders, "failed": counts.failed
        })
        .to_string();
        crate::preload::send(
            &producer,
            BaseRecord::to(&counts_topic).key(&key).payload(&value),
        )
        .context("writing a window")?;
    }
    let demand_topic = format!("{prefix}.item-demand");
    for ((start, item), quantity) in &windows.item_demand {
        let key = format!("{start}/{item}");
        let value = serde_json::json!({
            "window_start": start, "item_id": item, "quantity": quantity
        })
        .to_string();
        crate::preload::send(
            &producer,
            BaseRecord::to(&demand_topic).key(&key).payload(&value),
        )
        .context("writing a window")?;
    }
    producer
        .flush(Duration::from_secs(60))
        .context("waiting for the windows to be acknowledged")
}
