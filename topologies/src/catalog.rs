//! The catalog topology: `product-updates` as the `catalog` view, the latest record per
//! product (upserted by record key; a tombstone removes the product).

use sluice::dsl::{Source, Table, Topology};

use crate::events::ProductUpdated;
use crate::topics::PRODUCT_UPDATES;

/// Declares the catalog topology.
pub fn catalog(topology: &mut Topology<'_>) {
    catalog_table(topology);
}

/// The `catalog` view, and the table behind it, for the topologies that read the catalog.
pub fn catalog_table<'scope>(topology: &mut Topology<'scope>) -> Table<'scope, ProductUpdated> {
    let table = topology.table(
        "product_id",
        Source::<ProductUpdated>::topic(PRODUCT_UPDATES)
            .event_time(|product| product.timestamp.millis())
            .record_key(|product| product.product_id.clone())
            .check(ProductUpdated::validate),
    );
    table.materialize("catalog");
    table
}
