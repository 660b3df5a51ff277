//! Preloading the input: N generated orders on `order-events`, then one closing order per
//! partition (benches/peers/README.md), with the reference computed from the same orders.

use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use sluice::app::GeneratorOptions;
use sluice_topologies::events::{OrderEvent, OrderLine, OrderPlaced, OrderStatus};
use sluice_topologies::generator::{MENU, OrderGenerator};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::job::{Reference, WINDOW_MS, window_start};

/// How far after the last order the closing orders lie: past its window and the grace.
const CLOSING_AFTER_MS: i64 = 10 * WINDOW_MS;

/// Partitions of every topic the benchmark makes.
pub const PARTITIONS: i32 = 4;

/// The most event time the orders may span. Sluice's window views keep a window for a
/// day of event time after it ends (Kafka Streams' default retention of a window store),
/// so a longer input would leave its first windows out of the views that are compared.
const SPAN_MS: i64 = 20 * 60 * 60 * 1000;

/// The generator's settings: `shop produce`'s defaults, with the orders closer together
/// than its 100 ms where `count` orders would span more than [`SPAN_MS`].
pub fn generator_options(count: u64) -> GeneratorOptions {
    let count = i64::try_from(count.max(1)).unwrap_or(i64::MAX);
    GeneratorOptions {
        seed: 42,
        failure_rate: 0.05,
        start_ms: 1_705_314_600_000,
        interval_ms: (SPAN_MS / count).clamp(1, 100),
    }
}

/// The orders to preload, in order: `count` generated, then the closing ones.
pub fn orders(count: u64) -> Vec<(Option<i32>, OrderPlaced)> {
    let options = generator_options(count);
    let start_ms = options.start_ms;
    let mut generator = OrderGenerator::new(options);
    let mut orders: Vec<(Option<i32>, OrderPlaced)> =
        (0..count).map(|_| (None, generator.next_order())).collect();
    let last = orders
        .last()
        .map_or(start_ms, |(_, order)| order.timestamp.millis());
    for partition in 0..PARTITIONS {
        orders.push((
            Some(partition),
            closing_order(partition, last + CLOSING_AFTER_MS),
        ));
    }
    orders
}

/// A placed order with one line of every menu item, so that it moves every key's and
/// every item's event time past the last window.
fn closing_order(partition: i32, at: i64) -> OrderPlaced {
    OrderPlaced {
        order_id: format!("closing_{partition}"),
        user_id: "closing".into(),
        items: MENU
            .iter()
            .map(|item| OrderLine {
                item_id: item.id.to_string(),
                quantity: 1,
                price: item.price,
            })
            .collect(),
        total_amount: MENU.iter().map(|item| item.price).sum(),
        status: OrderStatus::Placed,
        timestamp: sluice::dsl::EventTime(at),
    }
}

/// The reference of the given orders.
pub fn reference(orders: &[(Option<i32>, OrderPlaced)]) -> Reference {
    let mut reference = Reference::default();
    let mut first_closing = i64::MAX;
    for (partition, order) in orders {
        reference.windows.add(order);
        reference.order_lines += order.items.len() as u64;
        reference.orders += 1;
        if partition.is_some() {
            first_closing = first_closing.min(window_start(order.timestamp.millis()));
        }
    }
    reference.compared_before = first_closing;
    reference
}

/// Creates `topics` with [`PARTITIONS`] partitions each; a topic that exists is an error,
/// as the benchmark needs them fresh.
pub fn create_topics(brokers: &str, topics: &[String]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating a Kafka admin client")?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime for the admin client")?
        .block_on(admin.create_topics(&new, &options))
        .context("creating the benchmark's topics")?;
    for result in results {
        if let Err((topic, code)) = result {
            bail!("cannot create topic {topic}: {code}");
        }
    }
    Ok(())
}

/// Publishes the orders to `topic`, keyed by `order_id`; a closing order goes to its own
/// partition. Fails if the broker refuses any.
pub fn publish(
    brokers: &str,
    topic: &str,
    orders: &[(Option<i32>, OrderPlaced)],
) -> anyhow::Result<()> {
    let producer = producer(brokers)?;
    for (partition, order) in orders {
        let payload = serde_json::to_vec(&OrderEvent::OrderPlaced(order.clone()))
            .context("encoding an order")?;
        let mut record = BaseRecord::to(topic).key(&order.order_id).payload(&payload);
        if let Some(partition) = partition {
            record = record.partition(*partition);
        }
        send(&producer, record).context("publishing an order")?;
    }
    settle(&producer, orders.len())
}

/// The preload's producer, which counts what the broker refuses.
pub fn producer(brokers: &str) -> anyhow::Result<ThreadedProducer<CountFailures>> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // Keeps each partition in the order sent: without it a batch that the new topic's
        // leader refused at first is retried after later ones, and the orders of a
        // partition are then minutes out of event-time order (seen: 255 records).
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(CountFailures::default())
        .context("creating the preload producer")
}

/// Waits until the broker has acknowledged or refused every record sent; fails if it
/// refused any of the `sent`.
pub fn settle(producer: &ThreadedProducer<CountFailures>, sent: usize) -> anyhow::Result<()> {
    producer
        .flush(Duration::from_secs(120))
        .context("waiting for the broker to acknowledge the records")?;
    let failed = producer.context().failed();
    if failed > 0 {
        bail!("the broker refused {failed} of the {sent} records");
    }
    Ok(())
}

/// Sends one record, waiting while the producer's queue is full.
pub fn send<
    C: ProducerContext,
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
>(
    producer: &ThreadedProducer<C>,
    record: BaseRecord<'_, K, P, C::DeliveryOpaque>,
) -> Result<(), rdkafka::error::KafkaError> {
    let mut pending = record;
    loop {
        match producer.send(pending) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                pending = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// Counts deliveries the broker refused: a preload that lost orders must fail.
#[derive(Default)]
pub struct CountFailures {
    failed: AtomicU64,
}

impl CountFailures {
    /// Deliveries refused so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

impl ClientContext for CountFailures {}

impl ProducerContext for CountFailures {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
