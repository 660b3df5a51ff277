//! Rendering: the timely operators the DSL compiles into.
//!
//! - [`source`]: the source operator with per-partition watermarks and checkpoint cuts;
//!   [`reader`] feeds it from Kafka or from memory, [`worker_consumer`] is the one Kafka
//!   consumer a worker's sources share, and [`idle`] lets quiet partitions stop holding
//!   the watermark back; [`nesting`] refuses records nested too deep to decode safely.
//! - [`window`]: tumbling-window aggregation with lateness.
//! - [`table`]: tables folded from windows with add and subtract.
//! - [`upsert`]: tables read from a topic, one value per record key.
//! - [`arranged`]: tables as differential collections of rows, and back;
//!   [`table_join`] joins two of them by key on their arrangements.
//! - [`table_aggregate`]: tables regrouped by another key and aggregated on an
//!   arrangement of each group's values.
//! - [`sequence`]: two streams applied together in event-time order, to state per key.
//! - [`materialize`]: view state in RocksDB, written at checkpoints.
//! - [`state`]: what stateful operators share to take part in checkpoints.
//! - [`sink`]: writers of output and late records to Kafka.

pub(crate) mod arranged;
pub(crate) mod idle;
pub(crate) mod materialize;
pub(crate) mod nesting;
pub mod reader;
pub(crate) mod sequence;
pub mod sink;
pub(crate) mod source;
pub(crate) mod state;
pub(crate) mod table;
pub(crate) mod table_aggregate;
pub(crate) mod table_join;
pub(crate) mod upsert;
pub mod window;
pub(crate) mod worker_consumer;
