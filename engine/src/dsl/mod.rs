//! The user API: declare a topology the way Kafka Streams does, without timely types.
//!
//! ```no_run
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use sluice::dsl::{Source, Topology, TumblingWindows};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct Click { page: String, at: i64 }
//!
//! fn clicks(topology: &mut Topology<'_>) {
//!     topology
//!         .source(Source::<Click>::topic("clicks").event_time(|click| click.at))
//!         .key_by("page", |click| click.page.clone())
//!         .window(TumblingWindows::of(Duration::from_secs(60)))
//!         .count()
//!         .materialize("clicks_per_minute");
//! }
//! ```
//!
//! - [`topology`]: [`Topology`] and [`Source`], where streams and topic tables start.
//! - [`stream`]: [`Stream`] and its stateless operators and sinks.
//! - [`windowed`]: windowed aggregation and windowed views.
//! - [`exact_sum`]: the order-independent float sum behind `sum`.
//! - [`accumulators`]: minimum, maximum and average, also order-independent.
//! - [`table`]: tables: read from a topic (upserts), or derived from windowed views.
//! - [`table_join`]: table-table joins by key, on differential arrangements.
//! - [`sequenced`]: two streams applied together in event-time order, to state of their
//!   own (sagas, joins as of event time).
//! - [`temporal_join`]: stream-table joins as of each record's event time.

pub mod accumulators;
pub mod exact_sum;
pub mod sequenced;
pub mod stream;
pub mod table;
pub mod table_join;
pub mod temporal_join;
pub mod topology;
pub mod windowed;

pub use crate::record::Data;
pub use crate::render::table::TableChange;
pub use crate::time::EventTime;
pub use crate::window::{
    HoppingWindows, LatePolicy, SessionWindows, SlidingWindows, TumblingWindows, WindowBounds,
};
pub use sequenced::{Arrival, Either, EventTimeOrdered, StateMap};
pub use stream::Stream;
pub use table::{GroupedTable, Table};
pub use topology::{Source, Topology, TopologyFn};
pub use windowed::{Merging, TimeAligned, WindowedStream, WindowedTable, Windowing};

#[cfg(test)]
mod table_aggregate_tests;
#[cfg(test)]
mod table_join_tests;
#[cfg(test)]
mod tests;
