//! The `product_stock` view: each catalog product with its live stock, a table-table join
//! of the catalog with the saga's `stock_levels` (Kafka Streams' `KTable#leftJoin`).
//!
//! Its row follows both tables: a new price or name, and every reservation or release
//! that moves the level, change it. A product the saga has not seen yet has no level.

use serde::{Deserialize, Serialize};
use sluice::dsl::Table;

use crate::events::ProductUpdated;
use crate::inventory::{StockLevel, StockState};

/// A row of `product_stock`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductStock {
    /// The catalog's name for the product.
    pub name: String,
    /// Its catalog price.
    pub price: f64,
    /// Its latest catalog stock.
    pub stock: i64,
    /// Its catalog threshold.
    pub threshold: i64,
    /// The saga's level: the stock minus what confirmed orders hold.
    pub level: Option<i64>,
    /// Units that confirmed orders hold.
    pub reserved: Option<i64>,
    /// `normal`, `warning` or `depleted`.
    pub state: Option<StockState>,
}

impl ProductStock {
    /// The row of `product` with its `level`, if the saga has one.
    pub fn of(product: &ProductUpdated, level: Option<&StockLevel>) -> Self {
        ProductStock {
            name: product.name.clone(),
            price: product.price,
            stock: product.stock,
            threshold: product.threshold,
            level: level.map(|level| level.level),
            reserved: level.map(|level| level.reserved),
            state: level.map(|level| level.state),
        }
    }
}

/// Declares `product_stock` over the catalog and the stock levels.
pub fn product_stock(catalog: &Table<'_, ProductUpdated>, levels: &Table<'_, StockLevel>) {
    catalog
        .left_join(levels, ProductStock::of)
        .materialize("product_stock");
}
