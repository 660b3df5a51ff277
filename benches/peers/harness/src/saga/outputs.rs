//! Reading a run's saga results from its inventory events, as they grow, from where the
//! topic ended when the run started.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Deserialize;

use super::reference::{Decision, SagaResults};
pub use crate::outputs::ends;
use crate::outputs::{drain, note_unreadable, reader};

/// The fields of the saga's events that are compared; the events of the orders
/// analytics (`InventoryEvent`) are read past.
#[derive(Deserialize)]
struct SagaEvent {
    event_type: String,
    item_id: String,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    level: Option<i64>,
    #[serde(default)]
    requested: Option<u32>,
    #[serde(default)]
    available: Option<i64>,
    #[serde(default)]
    reason: Option<String>,
}

/// A `read_committed` reader of one inventory-events topic.
pub struct SagaReader {
    consumer: BaseConsumer,
    topic: String,
    from: BTreeMap<i32, i64>,
    /// What the run has written so far.
    pub results: SagaResults,
    /// Saga events read, duplicates included.
    pub events: u64,
    /// Records that were not events of the contract's shape.
    pub unreadable: Vec<String>,
}

impl SagaReader {
    /// Reads `topic` from `from` (partition → offset).
    pub fn new(brokers: &str, topic: &str, from: &BTreeMap<i32, i64>) -> anyhow::Result<Self> {
        let consumer = reader(brokers)?;
        let mut assignment = TopicPartitionList::new();
        for (&partition, &offset) in from {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(offset))
                .context("assigning an inventory-events partition")?;
        }
        consumer
            .assign(&assignment)
            .context("assigning the inventory events")?;
        Ok(SagaReader {
            consumer,
            topic: topic.to_string(),
            from: from.clone(),
            results: SagaResults::default(),
            events: 0,
            unreadable: Vec::new(),
        })
    }

    /// Takes in what has arrived, waiting up to `wait` for the first record. Sluice makes
    /// its topic only when it first writes, so an unknown topic is read as empty.
    pub fn poll(&mut self, wait: Duration) -> anyhow::Result<()> {
        let SagaReader {
            consumer,
            topic,
            results,
            events,
            unreadable,
            ..
        } = self;
        drain(
            consumer,
            wait,
            topic,
            |_, payload| match serde_json::from_slice::<SagaEvent>(payload) {
                Ok(event) => {
                    if take(results, event) {
                        *events += 1;
                    }
                }
                Err(error) => note_unreadable(unreadable, payload, &error),
            },
        )
    }

    /// The sum of the partitions' next offsets to read.
    pub fn position(&self) -> anyhow::Result<u64> {
        let positions = self
            .consumer
            .position()
            .context("reading the reader's position")?;
        let mut total = 0;
        for (&partition, &from) in &self.from {
            let next = match positions
                .find_partition(&self.topic, partition)
                .map(|element| element.offset())
            {
                Some(Offset::Offset(offset)) => offset,
                _ => from,
            };
            total += next.max(0) as u64;
        }
        Ok(total)
    }
}

/// Adds a saga event to `results`; whether it was one of the saga's events.
fn take(results: &mut SagaResults, event: SagaEvent) -> bool {
    match (event.event_type.as_str(), event.order_id) {
        ("StockReserved", Some(order_id)) => {
            let entry = results
                .decisions
                .entry(order_id)
                .or_insert_with(|| Decision::Confirmed(Vec::new()));
            let line = (
                event.item_id,
                event.quantity.unwrap_or(0),
                event.level.unwrap_or(i64::MIN),
            );
            match entry {
                Decision::Confirmed(lines) => {
                    // Kept sorted, as the model's are: an order has at most a few lines.
                    let at = lines.partition_point(|held| *held <= line);
                    lines.insert(at, line);
                }
                // Both a reservation and a failure: keep the failure, which the
                // comparison shows wrong either way, and count the event.
                Decision::Failed { .. } => {}
            }
            true
        }
        ("ReservationFailed", Some(order_id)) => {
            results.decisions.insert(
                order_id,
                Decision::Failed {
                    item_id: event.item_id,
                    requested: event.requested.unwrap_or(0),
                    available: event.available.unwrap_or(i64::MIN),
                    reason: event.reason.unwrap_or_default(),
                },
            );
            true
        }
        ("StockLevelWarning" | "StockDepleted" | "StockLevelNormalized", _) => {
            results
                .transitions
                .entry(event.item_id)
                .or_default()
                .push((event.event_type, event.level.unwrap_or(i64::MIN)));
            true
        }
        _ => false,
    }
}
