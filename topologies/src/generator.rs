//! A deterministic generator of `OrderPlaced` events: the same seed gives the same orders.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sluice::app::{EventGenerator, GeneratedEvent, GeneratorOptions};
use sluice::dsl::EventTime;

use sluice::record::key_hash;
use sluice::testkit::{MemoryInput, MemoryRecord};

use crate::events::{OrderEvent, OrderLine, OrderPlaced, OrderStatus};
use crate::topics::ORDER_EVENTS;

/// The menu orders are drawn from: item id and unit price.
pub const MENU: [(&str, f64); 10] = [
    ("burger", 10.0),
    ("fries", 3.5),
    ("pizza", 12.0),
    ("salad", 8.0),
    ("soda", 2.0),
    ("coffee", 3.0),
    ("icecream", 4.5),
    ("wrap", 7.5),
    ("soup", 6.0),
    ("taco", 3.25),
];

/// How many distinct users place orders.
const USERS: u32 = 1000;

/// Generates orders one after another.
pub struct OrderGenerator {
    options: GeneratorOptions,
    rng: SmallRng,
    next_index: u64,
}

impl OrderGenerator {
    /// A generator with the given options.
    pub fn new(options: GeneratorOptions) -> Self {
        let rng = SmallRng::seed_from_u64(options.seed);
        OrderGenerator {
            options,
            rng,
            next_index: 0,
        }
    }

    /// The next order as a typed event.
    pub fn next_order(&mut self) -> OrderPlaced {
        self.next_index += 1;
        let line_count = self.rng.random_range(1..=3usize);
        let mut items: Vec<OrderLine> = Vec::with_capacity(line_count);
        while items.len() < line_count {
            let (item_id, price) = MENU[self.rng.random_range(0..MENU.len())];
            if items.iter().any(|line| line.item_id == item_id) {
                continue;
            }
            items.push(OrderLine {
                item_id: item_id.to_string(),
                quantity: self.rng.random_range(1..=3),
                price,
            });
        }
        let total_cents: f64 = items
            .iter()
            .map(|line| f64::from(line.quantity) * line.price * 100.0)
            .sum();
        let failed = self
            .rng
            .random_bool(self.options.failure_rate.clamp(0.0, 1.0));
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
    fn next_event(&mut self) -> GeneratedEvent {
        let order = self.next_order();
        let key = order.order_id.clone();
        // Serializing plain data with string keys cannot fail.
        let payload = serde_json::to_vec(&OrderEvent::OrderPlaced(order)).unwrap_or_default();
        GeneratedEvent { key, payload }
    }
}

/// `events` generated orders spread over `partitions` in-memory partitions of
/// `order-events` by key, as a broker's partitioner would: input for the test kit and the
/// in-process benchmark.
pub fn generated_input(options: GeneratorOptions, events: usize, partitions: u64) -> MemoryInput {
    let mut generator = OrderGenerator::new(options);
    let mut input = MemoryInput::default();
    for _ in 0..events {
        let event = generator.next_event();
        let partition = (key_hash(&event.key) % partitions.max(1)) as usize;
        let record = MemoryRecord {
            key: event.key.into_bytes(),
            payload: event.payload,
            timestamp: 0,
            watermark_only: false,
        };
        input.push(ORDER_EVENTS, partition, record);
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
