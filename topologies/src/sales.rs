//! Orders enriched with the catalog: each line of a placed order joined with its product as
//! the catalog stood at the order's event time (a stream-table join), then per minute:
//!
//! - `item_demand_enriched` (per `item_id`): `item_demand`'s quantity with the product's
//!   name and price, and the revenue at catalog prices;
//! - `revenue_per_minute` (key `all`): the shop's revenue at catalog prices.
//!
//! Revenue is kept in whole cents, each line's `quantity × price` rounded once, so that
//! the sum is exact and the same in whatever order the lines reach a window. A line whose
//! item the catalog did not know at that time counts in `unpriced_quantity`.

use serde::{Deserialize, Serialize};
use sluice::dsl::{EventTime, Stream, Table, TumblingWindows};

use crate::events::{OrderEvent, OrderLine, OrderStatus, ProductUpdated};
use crate::orders::{ALL, MINUTE};

/// A line of a placed order with its product as of the order's event time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PricedLine {
    /// The item.
    pub item_id: String,
    /// How many.
    pub quantity: u32,
    /// The product's name, if the catalog had the item then.
    pub name: Option<String>,
    /// The product's unit price then.
    pub price: Option<f64>,
    /// The order's event time.
    pub at: EventTime,
}

impl PricedLine {
    fn new(line: OrderLine, at: EventTime, product: Option<&ProductUpdated>) -> Self {
        PricedLine {
            item_id: line.item_id,
            quantity: line.quantity,
            name: product.map(|product| product.name.clone()),
            price: product.map(|product| product.price),
            at,
        }
    }

    /// `quantity × price` in whole cents, if the line has a price.
    pub fn revenue_cents(&self) -> Option<i64> {
        self.price
            .map(|price| (f64::from(self.quantity) * price * 100.0).round() as i64)
    }
}

/// What lines sold, at catalog prices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Takings {
    /// Units sold by placed orders.
    pub quantity: u64,
    /// Revenue at catalog prices, in cents: exact.
    pub revenue_cents: i64,
    /// The same in currency units.
    pub revenue: f64,
    /// Units of lines the catalog had no price for.
    pub unpriced_quantity: u64,
}

impl Takings {
    /// Adds one line.
    pub fn add(&mut self, line: &PricedLine) {
        self.quantity += u64::from(line.quantity);
        match line.revenue_cents() {
            Some(cents) => self.revenue_cents += cents,
            None => self.unpriced_quantity += u64::from(line.quantity),
        }
        self.revenue = self.revenue_cents as f64 / 100.0;
    }
}

/// A row of `item_demand_enriched`: a minute of one item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemDemandEnriched {
    /// Quantity (as `item_demand` counts it) and revenue.
    #[serde(flatten)]
    pub takings: Takings,
    /// The product's name, as of the minute's latest order.
    pub name: Option<String>,
    /// The product's catalog price, as of the minute's latest order.
    pub price: Option<f64>,
    /// When that order was placed.
    pub price_as_of: Option<EventTime>,
}

impl ItemDemandEnriched {
    /// Adds one line.
    pub fn add(&mut self, line: &PricedLine) {
        self.takings.add(line);
        // The latest order's view of the product; orders of the same instant saw the same
        // catalog, so which of them comes last does not matter.
        if self.price_as_of.is_none_or(|seen| line.at >= seen) {
            self.price_as_of = Some(line.at);
            self.name = line.name.clone();
            self.price = line.price;
        }
    }
}

/// Declares the enriched views over `orders` and `catalog`.
pub fn sales(orders: &Stream<'_, OrderEvent>, catalog: &Table<'_, ProductUpdated>) {
    let priced = orders
        .flat_map(|event| match event {
            OrderEvent::OrderPlaced(order) if order.status == OrderStatus::Placed => {
                let at = order.timestamp;
                order.items.into_iter().map(|line| (line, at)).collect()
            }
            _ => Vec::new(),
        })
        .key_by("item_id", |(line, _)| line.item_id.clone())
        .left_join_table(catalog, "catalog as of the order", |(line, at), product| {
            PricedLine::new(line, at, product)
        });
    priced
        .window(TumblingWindows::of(MINUTE))
        .aggregate(ItemDemandEnriched::default, ItemDemandEnriched::add)
        .materialize("item_demand_enriched");
    priced
        .key_by(ALL, |_| ALL.to_string())
        .window(TumblingWindows::of(MINUTE))
        .aggregate(Takings::default, Takings::add)
        .materialize("revenue_per_minute");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(quantity: u32, price: Option<f64>, at: i64) -> PricedLine {
        PricedLine {
            item_id: "taco".into(),
            quantity,
            name: price.map(|_| "Taco".to_string()),
            price,
            at: EventTime(at),
        }
    }

    #[test]
    fn revenue_is_whole_cents_and_the_latest_order_names_the_price() {
        let mut minute = ItemDemandEnriched::default();
        minute.add(&line(3, Some(3.25), 2_000));
        minute.add(&line(1, Some(3.5), 1_000)); // older: it does not set the price
        minute.add(&line(2, None, 1_500));
        assert_eq!(minute.takings.quantity, 6);
        assert_eq!(minute.takings.revenue_cents, 975 + 350);
        assert_eq!(minute.takings.revenue, 13.25);
        assert_eq!(minute.takings.unpriced_quantity, 2);
        assert_eq!(minute.price, Some(3.25));
        assert_eq!(minute.price_as_of, Some(EventTime(2_000)));

        let mut total = Takings::default();
        for priced in [line(3, Some(0.1), 0), line(7, Some(0.2), 0)] {
            total.add(&priced);
        }
        // 0.3 + 1.4 in floats is 1.7000000000000002; in cents it is exact.
        assert_eq!(total.revenue_cents, 170);
        assert_eq!(total.revenue, 1.7);
    }
}
