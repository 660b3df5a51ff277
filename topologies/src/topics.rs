//! Topic names of the shop contract.

/// Orders placed, failed and cancelled; the input, keyed by `order_id`.
pub const ORDER_EVENTS: &str = "order-events";
/// Reserve and release events per order line, keyed by `item_id`.
pub const INVENTORY_EVENTS: &str = "inventory-events";
/// The product information system's latest product records, keyed by `product_id`.
pub const PRODUCT_UPDATES: &str = "product-updates";
