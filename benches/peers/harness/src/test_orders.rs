//! Hand-made orders for the harness's unit tests.

use sluice::dsl::EventTime;
use sluice_topologies::events::{OrderLine, OrderPlaced, OrderStatus};

/// Order `id` at event time `at`, with one line of `quantity` per `(item, quantity)`.
pub fn order(id: &str, at: i64, status: OrderStatus, lines: &[(&str, u32)]) -> OrderPlaced {
    OrderPlaced {
        order_id: id.into(),
        user_id: "u".into(),
        items: lines
            .iter()
            .map(|(item, quantity)| OrderLine {
                item_id: item.to_string(),
                quantity: *quantity,
                price: 1.0,
            })
            .collect(),
        total_amount: 1.0,
        status,
        timestamp: EventTime(at),
    }
}
