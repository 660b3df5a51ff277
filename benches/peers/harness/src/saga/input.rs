//! The saga benchmark's input: the shop generator's orders and catalog records, as
//! `shop bench` preloads them, then closing records that move every input partition's
//! event time past the last order.

use anyhow::Context;
use rdkafka::producer::BaseRecord;
use sluice::dsl::EventTime;
use sluice_topologies::events::{OrderEvent, OrderLine, OrderPlaced, OrderStatus, ProductUpdated};
use sluice_topologies::generator::{OrderGenerator, ShopEvent};

use crate::preload::{PARTITIONS, generator_options, send};

/// How far after the last order the closing records lie.
const CLOSING_AFTER_MS: i64 = 10 * 60 * 1000;

/// The topic of the orders.
pub const ORDERS: &str = "order-events";
/// The topic of the catalog.
pub const PRODUCTS: &str = "product-updates";

/// One input record, with the partition it must go to (closing records) or none (by key).
#[derive(Debug, Clone)]
pub enum ShopRecord {
    /// An order, for [`ORDERS`].
    Order(Option<i32>, OrderPlaced),
    /// A catalog record, for [`PRODUCTS`].
    Product(Option<i32>, ProductUpdated),
}

impl ShopRecord {
    /// Its event time.
    pub fn event_time(&self) -> i64 {
        match self {
            ShopRecord::Order(_, order) => order.timestamp.millis(),
            ShopRecord::Product(_, product) => product.timestamp.millis(),
        }
    }

    /// A closing record, which no result is compared for.
    pub fn is_closing(&self) -> bool {
        match self {
            ShopRecord::Order(partition, _) | ShopRecord::Product(partition, _) => {
                partition.is_some()
            }
        }
    }
}

/// Whether an order or item is one of the closing records'.
pub fn is_closing_id(id: &str) -> bool {
    id.starts_with("closing")
}

/// The generated records up to the `count`th order, in the order generated, then the
/// closing ones: an order per partition whose one line names an item the catalog does not
/// have (so it changes no level), and a product per partition that no order names.
pub fn records(count: u64) -> Vec<ShopRecord> {
    let options = generator_options(count);
    let start_ms = options.start_ms;
    let mut generator = OrderGenerator::new(options);
    let mut records = Vec::new();
    let mut orders = 0;
    let mut last = start_ms;
    while orders < count {
        match generator.next_shop_event() {
            ShopEvent::Order(order) => {
                orders += 1;
                last = order.timestamp.millis();
                records.push(ShopRecord::Order(None, order));
            }
            ShopEvent::Product(product) => records.push(ShopRecord::Product(None, product)),
        }
    }
    let at = EventTime(last + CLOSING_AFTER_MS);
    for partition in 0..PARTITIONS {
        records.push(ShopRecord::Order(
            Some(partition),
            OrderPlaced {
                order_id: format!("closing_{partition}"),
                user_id: "closing".into(),
                items: vec![OrderLine {
                    item_id: "closing".into(),
                    quantity: 1,
                    price: 1.0,
                }],
                total_amount: 1.0,
                status: OrderStatus::Placed,
                timestamp: at,
            },
        ));
        records.push(ShopRecord::Product(
            Some(partition),
            ProductUpdated {
                product_id: format!("closing_{partition}"),
                name: "Closing".into(),
                price: 1.0,
                stock: 1000,
                threshold: 10,
                timestamp: at,
                ..ProductUpdated::default()
            },
        ));
    }
    records
}

/// Publishes the records to [`ORDERS`] and [`PRODUCTS`], keyed by order and product id.
pub fn publish(brokers: &str, records: &[ShopRecord]) -> anyhow::Result<()> {
    let producer = crate::preload::producer(brokers)?;
    for record in records {
        let (topic, key, partition, payload) = match record {
            ShopRecord::Order(partition, order) => (
                ORDERS,
                &order.order_id,
                partition,
                serde_json::to_vec(&OrderEvent::OrderPlaced(order.clone()))
                    .context("encoding an order")?,
            ),
            ShopRecord::Product(partition, product) => (
                PRODUCTS,
                &product.product_id,
                partition,
                serde_json::to_vec(product).context("encoding a product")?,
            ),
        };
        let mut base = BaseRecord::to(topic).key(key).payload(&payload);
        if let Some(partition) = partition {
            base = base.partition(*partition);
        }
        send(&producer, base).context("publishing a record")?;
    }
    crate::preload::settle(&producer, records.len())
}
