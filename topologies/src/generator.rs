//! A deterministic generator of the shop's input: `OrderPlaced` events on `order-events`,
//! and the catalog with its restocks on `product-updates`. The same seed gives the same
//! events.
//!
//! The catalog comes first, just before the first order's event time. Every
//! [`RESTOCK_EVERY`] orders the product system restocks each product towards a random
//! level around twice its threshold, judging by what was ordered since (it cannot know
//! which orders the saga refused), so items drift into `warning`, sometimes `depleted`,
//! and back.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sluice::app::{EventGenerator, GeneratedEvent, GeneratorOptions};
use sluice::dsl::EventTime;

use sluice::record::key_hash;
use sluice::testkit::{MemoryInput, MemoryRecord};

use crate::events::{OrderEvent, OrderLine, OrderPlaced, OrderStatus, ProductUpdated};
use crate::topics::{ORDER_EVENTS, PRODUCT_UPDATES};

/// A product of the menu orders are drawn from.
#[derive(Debug, Clone, Copy)]
pub struct MenuItem {
    /// Its `product_id`, which order lines name as `item_id`.
    pub id: &'static str,
    /// Its display name.
    pub name: &'static str,
    /// Its unit price.
    pub price: f64,
}

const fn item(id: &'static str, name: &'static str, price: f64) -> MenuItem {
    MenuItem { id, name, price }
}

/// The menu orders are drawn from.
pub const MENU: [MenuItem; 10] = [
    item("burger", "Burger", 10.0),
    item("fries", "Fries", 3.5),
    item("pizza", "Pizza", 12.0),
    item("salad", "Salad", 8.0),
    item("soda", "Soda", 2.0),
    item("coffee", "Coffee", 3.0),
    item("icecream", "Ice cream", 4.5),
    item("wrap", "Wrap", 7.5),
    item("soup", "Soup", 6.0),
    item("taco", "Taco", 3.25),
];

/// How many distinct users place orders.
const USERS: u32 = 1000;

/// Orders between two restocks of the whole catalog.
pub const RESTOCK_EVERY: u64 = 50;

/// Every product's low-stock threshold.
pub const THRESHOLD: i64 = 10;

/// One generated input event, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum ShopEvent {
    /// An order, for `order-events`.
    Order(OrderPlaced),
    /// A catalog record, for `product-updates`.
    Product(ProductUpdated),
}

/// Generates the catalog, orders and restocks, one event after another.
pub struct OrderGenerator {
    options: GeneratorOptions,
    rng: SmallRng,
    // Its own stream of randomness, so the orders are the same with or without restocks.
    restock_rng: SmallRng,
    next_index: u64,
    /// Per menu item: the catalog stock published last, and what placed orders asked of
    /// it since the start.
    stock: [i64; MENU.len()],
    ordered: [i64; MENU.len()],
    /// Catalog records due before the next order.
    pending: VecDeque<ProductUpdated>,
}

impl OrderGenerator {
    /// A generator with the given options.
    pub fn new(options: GeneratorOptions) -> Self {
        let rng = SmallRng::seed_from_u64(options.seed);
        let restock_rng = SmallRng::seed_from_u64(options.seed ^ 0x5eed_5afe);
        let mut generator = OrderGenerator {
            options,
            rng,
            restock_rng,
            next_index: 0,
            stock: [0; MENU.len()],
            ordered: [0; MENU.len()],
            pending: VecDeque::new(),
        };
        // Just before the first order, so the saga knows every product when orders come.
        let catalog_time = EventTime(generator.options.start_ms - 1);
        generator.restock(catalog_time);
        generator
    }

    /// The next event: a catalog record when one is due, an order otherwise.
    pub fn next_shop_event(&mut self) -> ShopEvent {
        match self.pending.pop_front() {
            Some(product) => ShopEvent::Product(product),
            None => {
                let order = self.next_order();
                if self.next_index.is_multiple_of(RESTOCK_EVERY) {
                    self.restock(order.timestamp);
                }
                ShopEvent::Order(order)
            }
        }
    }

    /// Queues one catalog record per product, each restocked towards a fresh target.
    fn restock(&mut self, at: EventTime) {
        for (index, item) in MENU.iter().enumerate() {
            let target = self.restock_rng.random_range(THRESHOLD..=3 * THRESHOLD);
            let expected_level = self.stock[index] - self.ordered[index];
            self.stock[index] += (target - expected_level).max(0);
            self.pending.push_back(ProductUpdated {
                product_id: item.id.to_string(),
                name: item.name.to_string(),
                price: item.price,
                stock: self.stock[index],
                threshold: THRESHOLD,
                timestamp: at,
                ..ProductUpdated::default()
            });
        }
    }

    /// The next order as a typed event. Called directly, it skips the catalog records.
    pub fn next_order(&mut self) -> OrderPlaced {
        self.next_index += 1;
        let line_count = self.rng.random_range(1..=3usize);
        let mut items: Vec<OrderLine> = Vec::with_capacity(line_count);
        while items.len() < line_count {
            let index = self.rng.random_range(0..MENU.len());
            let menu_item = MENU[index];
            if items.iter().any(|line| line.item_id == menu_item.id) {
                continue;
            }
            items.push(OrderLine {
                item_id: menu_item.id.to_string(),
                quantity: self.rng.random_range(1..=3),
                price: menu_item.price,
            });
        }
        let total_cents: f64 = items
            .iter()
            .map(|line| f64::from(line.quantity) * line.price * 100.0)
            .sum();
        let failed = self
            .rng
            .random_bool(self.options.failure_rate.clamp(0.0, 1.0));
        if !failed {
            for line in &items {
                if let Some(index) = MENU.iter().position(|menu| menu.id == line.item_id) {
                    self.ordered[index] += i64::from(line.quantity);
                }
            }
        }
        let offset = (self.next_index - 1) as i64 * self.options.interval_ms;
        OrderPlaced {
            order_id: format!("order_{:06}", self.next_index),
            user_id: format!("user_{}", self.rng.random_range(1..=USERS)),
            items,
            total_amount: total_cents.round() / 100.0,
            status: if failed {
                OrderStatus::Failed
            } else {
                OrderStatus::Placed
            },
            timestamp: EventTime(self.options.start_ms + offset),
        }
    }
}

impl EventGenerator for OrderGenerator {
    fn topics(&self) -> Vec<&'static str> {
        vec![ORDER_EVENTS, PRODUCT_UPDATES]
    }

    fn next_event(&mut self) -> GeneratedEvent {
        // Serializing plain data with string keys cannot fail.
        match self.next_shop_event() {
            ShopEvent::Order(order) => GeneratedEvent {
                topic: ORDER_EVENTS,
                key: order.order_id.clone(),
                payload: serde_json::to_vec(&OrderEvent::OrderPlaced(order)).unwrap_or_default(),
            },
            ShopEvent::Product(product) => GeneratedEvent {
                topic: PRODUCT_UPDATES,
                key: product.product_id.clone(),
                payload: serde_json::to_vec(&product).unwrap_or_default(),
            },
        }
    }
}

/// The events of the first `orders` generated orders (with the catalog records among
/// them) spread over `partitions` in-memory partitions of their topics by key, as a
/// broker's partitioner would: input for the test kit and the in-process benchmark.
pub fn generated_input(options: GeneratorOptions, orders: usize, partitions: u64) -> MemoryInput {
    let mut generator = OrderGenerator::new(options);
    let mut input = MemoryInput::default();
    let mut generated_orders = 0;
    while generated_orders < orders {
        let event = generator.next_event();
        if event.topic == ORDER_EVENTS {
            generated_orders += 1;
        }
        let partition = (key_hash(&event.key) % partitions.max(1)) as usize;
        let record = MemoryRecord {
            key: event.key.into_bytes(),
            payload: event.payload,
            timestamp: 0,
            watermark_only: false,
            headers: Vec::new(),
        };
        input.push(event.topic, partition, record);
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(seed: u64) -> GeneratorOptions {
        GeneratorOptions {
            seed,
            failure_rate: 0.05,
            start_ms: 1_705_314_600_000,
            interval_ms: 100,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let mut a = OrderGenerator::new(options(7));
        let mut b = OrderGenerator::new(options(7));
        let mut c = OrderGenerator::new(options(8));
        let first: Vec<_> = (0..100).map(|_| a.next_event()).collect();
        let second: Vec<_> = (0..100).map(|_| b.next_event()).collect();
        let other: Vec<_> = (0..100).map(|_| c.next_event()).collect();
        assert_eq!(first, second);
        assert_ne!(first, other);
    }

    #[test]
    fn orders_are_realistic_and_about_five_percent_fail() {
        let mut generator = OrderGenerator::new(options(1));
        let orders: Vec<OrderPlaced> = (0..10_000).map(|_| generator.next_order()).collect();
        let failed = orders
            .iter()
            .filter(|o| o.status == OrderStatus::Failed)
            .count();
        assert!((350..=650).contains(&failed), "{failed} of 10000 failed");
        for (index, order) in orders.iter().enumerate() {
            assert!((1..=3).contains(&order.items.len()));
            let total: f64 = order
                .items
                .iter()
                .map(|l| f64::from(l.quantity) * l.price)
                .sum();
            assert!((total - order.total_amount).abs() < 0.005);
            assert_eq!(
                order.timestamp.millis(),
                1_705_314_600_000 + index as i64 * 100
            );
            let parsed: OrderEvent = serde_json::from_slice(
                &serde_json::to_vec(&OrderEvent::OrderPlaced(order.clone())).unwrap(),
            )
            .unwrap();
            assert_eq!(parsed, OrderEvent::OrderPlaced(order.clone()));
        }
        assert_eq!(orders[0].order_id, "order_000001");
    }
}
