//! The catalog topology: `product-updates` as the `catalog` view, the latest record per
//! product (upserted by record key; a tombstone removes the product).

use sluice::dsl::{Source, Topology};

use crate::events::ProductUpdated;
use crate::topics::PRODUCT_UPDATES;

/// Declares the catalog topology.
pub fn catalog(topology: &mut Topology<'_>) {
    topology
        .table(
            "product_id",
            Source::<ProductUpdated>::topic(PRODUCT_UPDATES)
                .event_time(|product| product.timestamp.millis())
                .record_key(|product| product.product_id.clone())
                .check(ProductUpdated::validate),
        )
        .materialize("catalog");
}
