//! The saga's rules applied one record at a time, in event-time order, with plain maps: the
//! reference the saga's views and event counts are checked against. It is written apart
//! from `topologies/src/inventory.rs` and shares none of its code.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_topologies::events::{OrderEvent, OrderStatus, ProductUpdated};

#[derive(Clone, Default)]
pub struct Model {
    /// Per item: catalog stock, threshold, units held.
    items: BTreeMap<String, (i64, i64, i64)>,
    /// Per order: status, reason and item, and the lines it holds.
    orders: BTreeMap<String, (Value, Vec<(String, i64)>)>,
    /// How many records of each `event_type` the saga writes to `inventory-events`.
    pub events: BTreeMap<&'static str, usize>,
}

impl Model {
    pub fn state(level: i64, threshold: i64) -> &'static str {
        if level <= 0 {
            "depleted"
        } else if level < threshold {
            "warning"
        } else {
            "normal"
        }
    }

    fn count(&mut self, event_type: &'static str) {
        *self.events.entry(event_type).or_default() += 1;
    }

    /// Changes an item, counting the transition event its state change makes, if any. An
    /// item new to the catalog counts as `normal` before.
    fn change_item(&mut self, item: &str, change: impl FnOnce(&mut (i64, i64, i64))) {
        let before = self
            .items
            .get(item)
            .map_or("normal", |(stock, threshold, held)| {
                Model::state(stock - held, *threshold)
            });
        let entry = self.items.entry(item.to_string()).or_default();
        change(entry);
        let after = Model::state(entry.0 - entry.2, entry.1);
        if after != before {
            self.count(match after {
                "normal" => "StockLevelNormalized",
                "warning" => "StockLevelWarning",
                _ => "StockDepleted",
            });
        }
    }

    pub fn restock(&mut self, product: &ProductUpdated) {
        self.change_item(&product.product_id, |entry| {
            entry.0 = product.stock;
            entry.1 = product.threshold;
        });
    }

    pub fn order(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPlaced(placed) => {
                if self.orders.contains_key(&placed.order_id) {
                    return;
                }
                if placed.status == OrderStatus::Failed {
                    self.orders.insert(
                        placed.order_id.clone(),
                        (
                            json!({"status": "failed", "reason": "order_failed"}),
                            vec![],
                        ),
                    );
                    return;
                }
                let mut wanted: Vec<(String, i64)> = Vec::new();
                for line in &placed.items {
                    match wanted.iter_mut().find(|(item, _)| *item == line.item_id) {
                        Some((_, quantity)) => *quantity += i64::from(line.quantity),
                        None => wanted.push((line.item_id.clone(), i64::from(line.quantity))),
                    }
                }
                for (item, quantity) in &wanted {
                    let reason = match self.items.get(item) {
                        None => Some("unknown_item"),
                        Some((stock, _, held)) if stock - held < *quantity => {
                            Some("insufficient_stock")
                        }
                        Some(_) => None,
                    };
                    if let Some(reason) = reason {
                        self.count("ReservationFailed");
                        self.orders.insert(
                            placed.order_id.clone(),
                            (
                                json!({"status": "failed", "reason": reason, "item_id": item}),
                                vec![],
                            ),
                        );
                        return;
                    }
                }
                // Line by line, as each line's reservation is its own event.
                let mut held = Vec::new();
                for line in &placed.items {
                    let quantity = i64::from(line.quantity);
                    self.count("StockReserved");
                    self.change_item(&line.item_id, |entry| entry.2 += quantity);
                    held.push((line.item_id.clone(), quantity));
                }
                self.orders.insert(
                    placed.order_id.clone(),
                    (json!({"status": "confirmed"}), held),
                );
            }
            OrderEvent::OrderCancelled(cancelled) => {
                let held = match self.orders.get(&cancelled.order_id) {
                    Some((status, _)) if status["status"] != "confirmed" => return,
                    Some((_, held)) => held.clone(),
                    None => vec![],
                };
                for (item, quantity) in held {
                    self.count("InventoryEvent");
                    self.change_item(&item, |entry| entry.2 -= quantity);
                }
                self.orders.insert(
                    cancelled.order_id.clone(),
                    (json!({"status": "cancelled"}), vec![]),
                );
            }
        }
    }

    /// Every saga output on `inventory-events`.
    pub fn event_count(&self) -> usize {
        self.events.values().sum()
    }

    pub fn levels(&self) -> Value {
        let rows: serde_json::Map<String, Value> = self
            .items
            .iter()
            .map(|(item, (stock, threshold, held))| {
                let level = stock - held;
                (
                    item.clone(),
                    json!({"level": level, "threshold": threshold,
                           "state": Model::state(level, *threshold),
                           "stock": stock, "reserved": held}),
                )
            })
            .collect();
        Value::Object(rows)
    }

    pub fn statuses(&self) -> Value {
        Value::Object(
            self.orders
                .iter()
                .map(|(order, (status, _))| (order.clone(), status.clone()))
                .collect(),
        )
    }
}
