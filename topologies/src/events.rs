//! The shop's event shapes, exactly as the contract writes them in JSON.

use serde::{Deserialize, Serialize};
use sluice::dsl::EventTime;

/// A record of `order-events`, told apart by its `event_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type")]
pub enum OrderEvent {
    /// An order was placed (and may have failed).
    OrderPlaced(OrderPlaced),
    /// An order was cancelled.
    OrderCancelled(OrderCancelled),
}

impl OrderEvent {
    /// When the event happened.
    pub fn timestamp(&self) -> EventTime {
        match self {
            OrderEvent::OrderPlaced(order) => order.timestamp,
            OrderEvent::OrderCancelled(cancel) => cancel.timestamp,
        }
    }
}

/// Whether an order went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Accepted.
    Placed,
    /// Failed, for example at payment.
    Failed,
}

/// `OrderPlaced`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// The order.
    pub order_id: String,
    /// Who ordered.
    pub user_id: String,
    /// One line per item.
    pub items: Vec<OrderLine>,
    /// What the order costs.
    pub total_amount: f64,
    /// `placed` or `failed`.
    pub status: OrderStatus,
    /// When it was placed.
    pub timestamp: EventTime,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    /// A catalog `product_id`.
    pub item_id: String,
    /// How many; negative quantities are refused at decoding.
    pub quantity: u32,
    /// Unit price.
    pub price: f64,
}

/// `OrderCancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// The cancelled order.
    pub order_id: String,
    /// When it was cancelled.
    pub timestamp: EventTime,
}

/// Whether an inventory event holds or frees stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InventoryAction {
    /// Hold stock for a placed order.
    Reserve,
    /// Free stock of a failed or cancelled order.
    Release,
}

/// A record of `inventory-events`: one order line's effect on stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryEvent {
    /// Always `InventoryEvent`.
    pub event_type: String,
    /// The order the line belongs to.
    pub order_id: String,
    /// The item.
    pub item_id: String,
    /// How many.
    pub quantity: u32,
    /// Reserve or release.
    pub action: InventoryAction,
    /// The order's event time.
    pub timestamp: EventTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_contract_example() {
        let json = r#"{"event_type":"OrderPlaced","order_id":"order_000001","user_id":"user_123",
            "items":[{"item_id":"burger","quantity":2,"price":10.0}],
            "total_amount":20.0,"status":"placed","timestamp":"2024-01-15T10:30:00"}"#;
        let OrderEvent::OrderPlaced(order) = serde_json::from_str(json).unwrap() else {
            panic!("not an OrderPlaced");
        };
        assert_eq!(order.items[0].quantity, 2);
        assert_eq!(order.timestamp.millis(), 1_705_314_600_000);
        let cancel: OrderEvent =
            serde_json::from_str(r#"{"event_type":"OrderCancelled","order_id":"o","timestamp":1}"#)
                .unwrap();
        assert_eq!(cancel.timestamp().millis(), 1);
    }

    #[test]
    fn refuses_bad_records() {
        for bad in [
            "not json",
            r#"{"event_type":"OrderPlaced","order_id":"o"}"#,
            r#"{"event_type":"OrderPlaced","order_id":"o","user_id":"u","items":[{"item_id":"x","quantity":-1,"price":1}],"total_amount":1,"status":"placed","timestamp":"2024-01-15T10:30:00"}"#,
            r#"{"event_type":"OrderPlaced","order_id":"o","user_id":"u","items":[],"total_amount":"x","status":"placed","timestamp":"2024-01-15T10:30:00"}"#,
            r#"{"event_type":"OrderShipped","order_id":"o","timestamp":1}"#,
        ] {
            assert!(
                serde_json::from_str::<OrderEvent>(bad).is_err(),
                "accepted {bad}"
            );
        }
    }
}
