//! Rendering: the timely and differential operators the DSL compiles into.
//!
//! - [`source`]: the source operator with per-partition watermarks; [`reader`] feeds it
//!   from Kafka or from memory.
//! - [`window`]: tumbling-window aggregation with lateness.
//! - [`table`]: tables derived from windows, on differential arrangements.
//! - [`materialize`]: writers of view state into RocksDB.
//! - [`sink`]: writers of output and late records to Kafka.

pub(crate) mod materialize;
pub mod reader;
pub mod sink;
pub(crate) mod source;
pub(crate) mod table;
pub mod window;
