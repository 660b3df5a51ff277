//! The orders topology: analytics over `order-events` and one inventory event per line.
//!
//! Views (all keyed as the contract says):
//! - `orders_per_minute`: 1-minute tumbling windows of `count` and `failed` orders, key `all`;
//! - `failure_rate`: the same windows as `total`, `failed` and `failure_rate_pct`;
//! - `order_totals`: a table folded from the `orders_per_minute` windows (each window's old
//!   value subtracted and its new one added), so it agrees with them exactly (late records
//!   are in neither);
//! - `item_demand`: 1-minute tumbling windows of the quantity reserved per `item_id`.
//!
//! Every line of a placed order becomes a `reserve` event on `inventory-events`, and every
//! line of a failed order a `release` event. An `OrderCancelled` carries no lines; releasing
//! a cancelled order's stock needs the order's lines, which is the inventory saga's work.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice::dsl::{Source, Stream, Topology, TumblingWindows, WindowBounds};

use crate::events::{InventoryAction, InventoryEvent, InventoryEventType, OrderEvent, OrderStatus};
use crate::topics::{INVENTORY_EVENTS, ORDER_EVENTS};

/// Out-of-orderness allowed on `order-events`.
pub const GRACE: Duration = Duration::from_secs(5);
/// The analytics window.
pub const MINUTE: Duration = Duration::from_secs(60);
/// The key of the shop-wide views.
pub const ALL: &str = "all";

/// Declares the orders topology.
pub fn orders(topology: &mut Topology<'_>) {
    analytics(&order_events(topology));
}

/// The `order-events` source, keyed by `order_id`, in event time with a grace of
/// [`GRACE`].
pub fn order_events<'scope>(topology: &mut Topology<'scope>) -> Stream<'scope, OrderEvent> {
    topology.source(
        Source::<OrderEvent>::topic(ORDER_EVENTS)
            .event_time(|event| event.timestamp().millis())
            .record_key(|event| event.order_id().to_string())
            .grace(GRACE),
    )
}

/// The analytics views of the orders, and one inventory event per order line.
pub fn analytics(events: &Stream<'_, OrderEvent>) {
    events
        .flat_map(inventory_events)
        .key_by("item_id", |event| event.item_id.clone())
        .to(INVENTORY_EVENTS);

    let placed = events.flat_map(|event| match event {
        OrderEvent::OrderPlaced(order) => Some(order),
        OrderEvent::OrderCancelled(_) => None,
    });
    // The shop-wide windows need only each order's outcome; windowing it instead of the
    // whole order keeps the copies timely makes for each consumer small.
    let shop_wide = placed
        .map(|order| order.status)
        .key_by(ALL, |_| ALL.to_string())
        .window(TumblingWindows::of(MINUTE));

    let per_minute = shop_wide.aggregate(OrderCounts::default, OrderCounts::add);
    per_minute.materialize("orders_per_minute");
    per_minute
        .summarize(
            OrderTotals::default,
            OrderTotals::add_window,
            OrderTotals::subtract_window,
        )
        .materialize("order_totals");

    shop_wide
        .aggregate(FailureRate::default, FailureRate::add)
        .materialize("failure_rate");

    placed
        .filter(|order| order.status == OrderStatus::Placed)
        .flat_map(|order| order.items)
        .key_by("item_id", |line| line.item_id.clone())
        .window(TumblingWindows::of(MINUTE))
        .aggregate(
            || 0u64,
            |reserved, line| *reserved += u64::from(line.quantity),
        )
        .materialize("item_demand");
}

/// One inventory event per order line: `reserve` for a placed order, `release` for a
/// failed one.
pub fn inventory_events(event: OrderEvent) -> Vec<InventoryEvent> {
    let OrderEvent::OrderPlaced(order) = event else {
        return Vec::new();
    };
    let action = match order.status {
        OrderStatus::Placed => InventoryAction::Reserve,
        OrderStatus::Failed => InventoryAction::Release,
    };
    order
        .items
        .into_iter()
        .map(|line| InventoryEvent {
            event_type: InventoryEventType::InventoryEvent,
            order_id: order.order_id.clone(),
            item_id: line.item_id,
            quantity: line.quantity,
            action,
            timestamp: order.timestamp,
        })
        .collect()
}

/// `orders_per_minute`: orders placed in a window, and how many of them failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrderCounts {
    /// Orders placed (including failed ones).
    pub count: u64,
    /// Orders that failed.
    pub failed: u64,
}

impl OrderCounts {
    /// Counts one order by its outcome.
    pub fn add(&mut self, status: &OrderStatus) {
        self.count += 1;
        if *status == OrderStatus::Failed {
            self.failed += 1;
        }
    }
}

/// `failure_rate`: a window's orders, failures and failure percentage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailureRate {
    /// Orders placed.
    pub total: u64,
    /// Orders that failed.
    pub failed: u64,
    /// `100 * failed / total`.
    pub failure_rate_pct: f64,
}

impl FailureRate {
    /// Counts one order by its outcome.
    pub fn add(&mut self, status: &OrderStatus) {
        self.total += 1;
        if *status == OrderStatus::Failed {
            self.failed += 1;
        }
        self.failure_rate_pct = percentage(self.failed, self.total);
    }
}

/// `order_totals`: shop-wide totals folded from the per-minute windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderTotals {
    /// Orders over all windows.
    pub total_orders: u64,
    /// Failed orders over all windows.
    pub failed_orders: u64,
    /// `100 * failed_orders / total_orders`.
    pub failure_rate_pct: f64,
    /// Orders per minute, averaged over the minutes that had orders.
    pub avg_orders_per_minute: f64,
    /// Orders in the latest window.
    pub current_orders_per_minute: u64,
    /// Minutes that had orders.
    pub minutes_with_orders: u64,
    /// The latest window, if any.
    pub current_window: Option<WindowBounds>,
}

impl OrderTotals {
    /// Adds one window's counts to the totals.
    pub fn add_window(&mut self, window: WindowBounds, counts: &OrderCounts) {
        self.total_orders += counts.count;
        self.failed_orders += counts.failed;
        if counts.count > 0 {
            self.minutes_with_orders += 1;
        }
        if self
            .current_window
            .is_none_or(|current| window.start >= current.start)
        {
            self.current_window = Some(window);
            self.current_orders_per_minute = counts.count;
        }
        self.derive();
    }

    /// Takes a window's previous counts out of the totals, before its new counts are added.
    pub fn subtract_window(&mut self, window: WindowBounds, counts: &OrderCounts) {
        self.total_orders = self.total_orders.saturating_sub(counts.count);
        self.failed_orders = self.failed_orders.saturating_sub(counts.failed);
        if counts.count > 0 {
            self.minutes_with_orders = self.minutes_with_orders.saturating_sub(1);
        }
        if self.current_window == Some(window) {
            self.current_orders_per_minute = 0;
        }
        self.derive();
    }

    fn derive(&mut self) {
        self.failure_rate_pct = percentage(self.failed_orders, self.total_orders);
        self.avg_orders_per_minute = if self.minutes_with_orders == 0 {
            0.0
        } else {
            self.total_orders as f64 / self.minutes_with_orders as f64
        };
    }
}

fn percentage(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{OrderLine, OrderPlaced};
    use sluice::dsl::EventTime;

    fn order(status: OrderStatus, lines: &[(&str, u32)]) -> OrderPlaced {
        OrderPlaced {
            order_id: "o1".into(),
            user_id: "u".into(),
            items: lines
                .iter()
                .map(|(item, quantity)| OrderLine {
                    item_id: item.to_string(),
                    quantity: *quantity,
                    price: 1.0,
                })
                .collect(),
            total_amount: 0.0,
            status,
            timestamp: EventTime(0),
        }
    }

    #[test]
    fn each_line_becomes_one_inventory_event() {
        let placed = inventory_events(OrderEvent::OrderPlaced(order(
            OrderStatus::Placed,
            &[("a", 1), ("b", 2)],
        )));
        assert_eq!(placed.len(), 2);
        assert!(
            placed
                .iter()
                .all(|event| event.action == InventoryAction::Reserve)
        );
        assert_eq!(placed[1].quantity, 2);
        let failed = inventory_events(OrderEvent::OrderPlaced(order(
            OrderStatus::Failed,
            &[("a", 1)],
        )));
        assert_eq!(failed[0].action, InventoryAction::Release);
    }

    #[test]
    fn totals_fold_windows() {
        let mut totals = OrderTotals::default();
        totals.add_window(
            WindowBounds {
                start: 0,
                end: 60_000,
            },
            &OrderCounts {
                count: 3,
                failed: 1,
            },
        );
        totals.add_window(
            WindowBounds {
                start: 60_000,
                end: 120_000,
            },
            &OrderCounts {
                count: 5,
                failed: 0,
            },
        );
        assert_eq!(totals.total_orders, 8);
        assert_eq!(totals.current_orders_per_minute, 5);
        assert_eq!(totals.avg_orders_per_minute, 4.0);
        assert_eq!(totals.failure_rate_pct, 12.5);
    }
}
