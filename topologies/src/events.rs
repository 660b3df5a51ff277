//! The shop's event shapes, exactly as the contract writes them in JSON.

use serde::{Deserialize, Serialize};
use sluice::dsl::EventTime;

/// A record of `order-events`, told apart by its `event_type`.
///
/// It is read through [`OrderEventFields`] rather than serde's internally tagged enums,
/// which buffer every record into an untyped tree before reading it (twice the
/// allocations, on the hottest path of the shop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", try_from = "OrderEventFields")]
pub enum OrderEvent {
    /// An order was placed (and may have failed).
    OrderPlaced(OrderPlaced),
    /// An order was cancelled.
    OrderCancelled(OrderCancelled),
}

impl OrderEvent {
    /// The order it is about, which keys the topic's records.
    pub fn order_id(&self) -> &str {
        match self {
            OrderEvent::OrderPlaced(order) => &order.order_id,
            OrderEvent::OrderCancelled(cancel) => &cancel.order_id,
        }
    }

    /// When the event happened.
    pub fn timestamp(&self) -> EventTime {
        match self {
            OrderEvent::OrderPlaced(order) => order.timestamp,
            OrderEvent::OrderCancelled(cancel) => cancel.timestamp,
        }
    }
}

/// The kinds of `order-events` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum OrderEventKind {
    OrderPlaced,
    OrderCancelled,
}

/// Every field an `order-events` record may have, read in one pass; which ones must be
/// there depends on `event_type`.
#[derive(Deserialize)]
struct OrderEventFields {
    event_type: OrderEventKind,
    order_id: String,
    user_id: Option<String>,
    items: Option<Vec<OrderLine>>,
    total_amount: Option<f64>,
    status: Option<OrderStatus>,
    timestamp: EventTime,
}

impl TryFrom<OrderEventFields> for OrderEvent {
    type Error = String;

    fn try_from(fields: OrderEventFields) -> Result<Self, Self::Error> {
        fn required<T>(value: Option<T>, field: &str) -> Result<T, String> {
            value.ok_or_else(|| format!("missing field `{field}` of an OrderPlaced event"))
        }
        Ok(match fields.event_type {
            OrderEventKind::OrderPlaced => OrderEvent::OrderPlaced(OrderPlaced {
                order_id: fields.order_id,
                user_id: required(fields.user_id, "user_id")?,
                items: required(fields.items, "items")?,
                total_amount: required(fields.total_amount, "total_amount")?,
                status: required(fields.status, "status")?,
                timestamp: fields.timestamp,
            }),
            OrderEventKind::OrderCancelled => OrderEvent::OrderCancelled(OrderCancelled {
                order_id: fields.order_id,
                timestamp: fields.timestamp,
            }),
        })
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

/// The `event_type` of an [`InventoryEvent`]: always `"InventoryEvent"`, so it needs no
/// string of its own in every event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryEventType {
    /// The only value.
    #[default]
    InventoryEvent,
}

/// A record of `inventory-events`: one order line's effect on stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryEvent {
    /// Always `InventoryEvent`.
    pub event_type: InventoryEventType,
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

/// The `event_type` of a [`ProductUpdated`]: always `"ProductUpdated"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductEventType {
    /// The only value.
    #[default]
    ProductUpdated,
}

/// A record of `product-updates`: the latest record of a product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductUpdated {
    /// Always `ProductUpdated`.
    pub event_type: ProductEventType,
    /// The product; an order line's `item_id` names it.
    pub product_id: String,
    /// Its name.
    pub name: String,
    /// Its current unit price.
    pub price: f64,
    /// Units in stock. Signed, so that a negative count is refused with a reason of its
    /// own rather than as a decoding error.
    pub stock: i64,
    /// Below this level the stock counts as low.
    pub threshold: i64,
    /// When the record was published.
    pub timestamp: EventTime,
}

impl ProductUpdated {
    /// Refuses records no product can have: they go to the dead-letter topic with the
    /// reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.product_id.is_empty() {
            return Err("product_id is empty".into());
        }
        if !(self.price.is_finite() && self.price >= 0.0) {
            return Err(format!("price {} is not a non-negative amount", self.price));
        }
        if self.stock < 0 {
            return Err(format!("stock {} is negative", self.stock));
        }
        if self.threshold < 0 {
            return Err(format!("threshold {} is negative", self.threshold));
        }
        Ok(())
    }
}

/// Why an order's stock could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationFailure {
    /// The catalog has no such product.
    UnknownItem,
    /// The item's level is below what the order asks for.
    InsufficientStock,
}

/// A result of the inventory saga, on `inventory-events`, keyed by `item_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type")]
pub enum StockEvent {
    /// Every line of an order fitted: this line's quantity is held for it.
    StockReserved {
        /// The order.
        order_id: String,
        /// The item.
        item_id: String,
        /// Units held.
        quantity: u32,
        /// The item's level after the reservation.
        level: i64,
        /// The order's event time.
        timestamp: EventTime,
    },
    /// A line of an order did not fit, so none of its lines is held.
    ReservationFailed {
        /// The order.
        order_id: String,
        /// The first item that did not fit.
        item_id: String,
        /// Units the order asked for of the item, over all its lines.
        requested: u32,
        /// The item's level then (0 for an unknown item).
        available: i64,
        /// Why.
        reason: ReservationFailure,
        /// The order's event time.
        timestamp: EventTime,
    },
    /// The level fell below the item's threshold (but above 0).
    StockLevelWarning(StockLevelChange),
    /// The level reached 0.
    StockDepleted(StockLevelChange),
    /// The level is back at or above the threshold.
    StockLevelNormalized(StockLevelChange),
}

/// An item's level when its stock state changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockLevelChange {
    /// The item.
    pub item_id: String,
    /// Its level now.
    pub level: i64,
    /// Its threshold.
    pub threshold: i64,
    /// When: the event time of the record that changed it.
    pub timestamp: EventTime,
}

impl StockEvent {
    /// The item the event is about, which keys it on `inventory-events`.
    pub fn item_id(&self) -> &str {
        match self {
            StockEvent::StockReserved { item_id, .. }
            | StockEvent::ReservationFailed { item_id, .. } => item_id,
            StockEvent::StockLevelWarning(change)
            | StockEvent::StockDepleted(change)
            | StockEvent::StockLevelNormalized(change) => &change.item_id,
        }
    }
}

/// Any record of `inventory-events`: an order line's effect, or a saga result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InventoryRecord {
    /// One order line's reserve or release.
    Line(InventoryEvent),
    /// A result of the saga.
    Stock(StockEvent),
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
    fn writes_what_it_reads() {
        let order = OrderEvent::OrderPlaced(OrderPlaced {
            order_id: "order_000001".into(),
            user_id: "user_123".into(),
            items: vec![OrderLine {
                item_id: "burger".into(),
                quantity: 2,
                price: 10.0,
            }],
            total_amount: 20.0,
            status: OrderStatus::Failed,
            timestamp: EventTime(1_705_314_600_000),
        });
        let json = serde_json::to_value(&order).unwrap();
        assert_eq!(json["event_type"], "OrderPlaced");
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), order);
    }

    #[test]
    fn inventory_events_say_what_they_are() {
        let event = InventoryEvent {
            event_type: InventoryEventType::InventoryEvent,
            order_id: "o".into(),
            item_id: "burger".into(),
            quantity: 2,
            action: InventoryAction::Reserve,
            timestamp: EventTime(0),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event_type"], "InventoryEvent");
        assert_eq!(json["action"], "reserve");
        assert_eq!(
            serde_json::from_value::<InventoryEvent>(json).unwrap(),
            event
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let error = serde_json::from_str::<OrderEvent>(
            r#"{"event_type":"OrderPlaced","order_id":"o","user_id":"u","items":[],"status":"placed","timestamp":1}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("total_amount"), "{error}");
    }

    #[test]
    fn refuses_bad_records() {
        for bad in [
            "not json",
            r#"{"event_type":"OrderPlaced","order_id":"o"}"#,
            r#"{"event_type":"OrderPlaced","order_id":"o","user_id":"u","items":[{"item_id":"x","quantity":-1,"price":1}],"total_amount":1,"status":"placed","timestamp":"2024-01-15T10:30:00"}"#,
            r#"{"event_type":"OrderPlaced","order_id":"o","user_id":"u","items":[],"total_amount":"x","status":"placed","timestamp":"2024-01-15T10:30:00"}"#,
            r#"{"event_type":"OrderShipped","order_id":"o","timestamp":1}"#,
            r#"{"order_id":"o","timestamp":1}"#,
            r#"{"event_type":"OrderCancelled","timestamp":1}"#,
        ] {
            assert!(
                serde_json::from_str::<OrderEvent>(bad).is_err(),
                "accepted {bad}"
            );
        }
    }
}
