//! The shop topologies of Sluice and the `shop` binary.
//!
//! A tour of the modules:
//! - [`topics`]: the contract's topic names.
//! - [`events`]: the contract's event shapes, as serde types.
//! - [`orders`]: the orders topology: orders per minute, failure rate, order totals, item
//!   demand, and one inventory event per order line.
//! - [`catalog`]: the catalog topology: the latest product record per product.
//! - [`inventory`]: the inventory saga: stock levels, reservations and their
//!   compensation, in event-time order across orders and catalog.
//! - [`sales`]: order lines joined with the catalog as of their event time: demand with
//!   names and prices, and revenue per minute.
//! - [`product_stock`]: each catalog product with its live stock level (a table-table
//!   join).
//! - [`monitoring`]: the monitoring topology: processing reports as throughput and health
//!   views per component.
//! - [`generator`]: the deterministic order generator behind `shop produce`.
//! - [`shop`]: all of them in one dataflow; [`Shop`]: the [`Application`] the `shop`
//!   binary runs, the whole by default, or one part with `--topology orders`, `catalog`,
//!   `inventory` or `monitoring`.

// Input and I/O reach nearly every path: a failure is a typed error, never a panic (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)
)]

pub mod catalog;
pub mod events;
pub mod generator;
pub mod inventory;
pub mod monitoring;
pub mod orders;
pub mod product_stock;
pub mod sales;
pub mod topics;

use std::sync::Arc;

use sluice::app::{Application, EventGenerator, GeneratorOptions, NamedTopology};
use sluice::dsl::{Topology, TopologyFn};

/// Every topology of the shop, in one dataflow: orders and their analytics, the product
/// catalog, the inventory saga over both, the orders enriched with the catalog, and the
/// monitoring of every engine's processing reports (its own included).
pub fn shop(topology: &mut Topology<'_>) {
    let orders = orders::order_events(topology);
    orders::analytics(&orders);
    let catalog = catalog::catalog_table(topology);
    let levels = inventory::inventory_saga(&orders, &catalog);
    product_stock::product_stock(&catalog, &levels);
    sales::sales(&orders, &catalog);
    monitoring::monitoring(topology);
}

/// The inventory saga on its own: the orders and the catalog it reads, without their
/// analytics.
pub fn inventory(topology: &mut Topology<'_>) {
    let orders = orders::order_events(topology);
    let catalog = catalog::catalog_table(topology);
    inventory::inventory_saga(&orders, &catalog);
}

/// The shop: its topologies and its order generator.
pub struct Shop;

impl Application for Shop {
    fn name(&self) -> &'static str {
        "shop"
    }

    fn topology(&self) -> TopologyFn {
        Arc::new(shop)
    }

    fn topologies(&self) -> Vec<NamedTopology> {
        vec![
            NamedTopology {
                name: "orders",
                about: "order analytics and the inventory events of order lines",
                topology: Arc::new(orders::orders),
            },
            NamedTopology {
                name: "catalog",
                about: "the latest product record per product",
                topology: Arc::new(catalog::catalog),
            },
            NamedTopology {
                name: "inventory",
                about: "the inventory saga over orders and the catalog",
                topology: Arc::new(inventory),
            },
            NamedTopology {
                name: "monitoring",
                about: "throughput and health views of processing reports",
                topology: Arc::new(monitoring::monitoring),
            },
        ]
    }

    fn input_topic(&self) -> &'static str {
        topics::ORDER_EVENTS
    }

    fn generator(&self, options: &GeneratorOptions) -> Box<dyn EventGenerator> {
        Box::new(generator::OrderGenerator::new(options.clone()))
    }
}
