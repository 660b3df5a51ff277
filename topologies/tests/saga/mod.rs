//! The inventory saga's scripted story, shared by the driver test and the mock-cluster
//! test: restocks, orders that fit, one that does not (and holds nothing), an unknown item,
//! a cancellation, and the burger's level crossing its threshold down and back up.

#![allow(dead_code)]

pub mod model;

use serde_json::{Value, json};
use sluice::dsl::EventTime;
use sluice_topologies::events::{
    OrderCancelled, OrderEvent, OrderLine, OrderPlaced, OrderStatus, ProductEventType,
    ProductUpdated,
};

pub const BASE: i64 = 1_705_314_600_000;

pub fn product(id: &str, stock: i64, threshold: i64, at: i64) -> ProductUpdated {
    ProductUpdated {
        event_type: ProductEventType::ProductUpdated,
        product_id: id.to_string(),
        name: id.to_uppercase(),
        price: 5.0,
        stock,
        threshold,
        timestamp: EventTime(BASE + at),
    }
}

pub fn order(id: &str, lines: &[(&str, u32)], at: i64) -> OrderEvent {
    OrderEvent::OrderPlaced(OrderPlaced {
        order_id: id.to_string(),
        user_id: "user_1".into(),
        items: lines
            .iter()
            .map(|(item, quantity)| OrderLine {
                item_id: item.to_string(),
                quantity: *quantity,
                price: 5.0,
            })
            .collect(),
        total_amount: 5.0,
        status: OrderStatus::Placed,
        timestamp: EventTime(BASE + at),
    })
}

pub fn cancel(id: &str, at: i64) -> OrderEvent {
    OrderEvent::OrderCancelled(OrderCancelled {
        order_id: id.to_string(),
        timestamp: EventTime(BASE + at),
    })
}

/// The catalog's records, in the order the product system publishes them. The burger's
/// second restock comes last.
pub fn products() -> Vec<ProductUpdated> {
    vec![
        product("burger", 10, 3, 0),
        product("fries", 5, 2, 0),
        product("burger", 20, 3, 7_000),
    ]
}

/// The orders, in event-time order.
pub fn orders() -> Vec<OrderEvent> {
    vec![
        order("o1", &[("burger", 4)], 1_000),
        // Fries are short: the burger line is not held either.
        order("o2", &[("burger", 2), ("fries", 6)], 2_000),
        order("o3", &[("burger", 4)], 3_000),
        order("o4", &[("burger", 1), ("burger", 1)], 4_000),
        cancel("o3", 5_000),
        order("o5", &[("shake", 1)], 6_000),
    ]
}

fn at(offset: i64) -> Value {
    json!(EventTime(BASE + offset))
}

/// Every record the saga writes to `inventory-events`, in order.
pub fn expected_events() -> Vec<Value> {
    vec![
        json!({"event_type": "StockReserved", "order_id": "o1", "item_id": "burger",
               "quantity": 4, "level": 6, "timestamp": at(1_000)}),
        json!({"event_type": "ReservationFailed", "order_id": "o2", "item_id": "fries",
               "requested": 6, "available": 5, "reason": "insufficient_stock",
               "timestamp": at(2_000)}),
        json!({"event_type": "StockReserved", "order_id": "o3", "item_id": "burger",
               "quantity": 4, "level": 2, "timestamp": at(3_000)}),
        json!({"event_type": "StockLevelWarning", "item_id": "burger", "level": 2,
               "threshold": 3, "timestamp": at(3_000)}),
        json!({"event_type": "StockReserved", "order_id": "o4", "item_id": "burger",
               "quantity": 1, "level": 1, "timestamp": at(4_000)}),
        json!({"event_type": "StockReserved", "order_id": "o4", "item_id": "burger",
               "quantity": 1, "level": 0, "timestamp": at(4_000)}),
        json!({"event_type": "StockDepleted", "item_id": "burger", "level": 0,
               "threshold": 3, "timestamp": at(4_000)}),
        json!({"event_type": "InventoryEvent", "order_id": "o3", "item_id": "burger",
               "quantity": 4, "action": "release", "timestamp": at(5_000)}),
        json!({"event_type": "StockLevelNormalized", "item_id": "burger", "level": 4,
               "threshold": 3, "timestamp": at(5_000)}),
        json!({"event_type": "ReservationFailed", "order_id": "o5", "item_id": "shake",
               "requested": 1, "available": 0, "reason": "unknown_item",
               "timestamp": at(6_000)}),
    ]
}

/// `stock_levels` at the end: the burger restocked to 20 with 6 held (o1 and o4).
pub fn expected_levels() -> Value {
    json!({
        "burger": {"level": 14, "threshold": 3, "state": "normal", "stock": 20, "reserved": 6},
        "fries": {"level": 5, "threshold": 2, "state": "normal", "stock": 5, "reserved": 0},
    })
}

/// `order_status` at the end.
pub fn expected_statuses() -> Value {
    json!({
        "o1": {"status": "confirmed"},
        "o2": {"status": "failed", "reason": "insufficient_stock", "item_id": "fries"},
        "o3": {"status": "cancelled"},
        "o4": {"status": "confirmed"},
        "o5": {"status": "failed", "reason": "unknown_item", "item_id": "shake"},
    })
}
