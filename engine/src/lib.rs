//! Sluice: a Kafka-Streams-style stream processor on timely dataflow.
//!
//! A topology is declared with the [`dsl`], compiled into a timely dataflow by [`render`],
//! and run by [`runtime`]: it consumes Kafka topics, keeps event-time windows and tables in
//! RocksDB, writes derived events back to Kafka, and serves every view over HTTP ([`query`]).
//!
//! A tour of the modules:
//! - [`dsl`]: the user API, with no timely types in it.
//! - [`plan`]: the logical graph, `describe()`, and the views a topology declares.
//! - [`render`]: the timely operators the DSL compiles into.
//! - [`epoch`]: the timely timestamp, a checkpoint epoch and a watermark.
//! - [`checkpoint`]: atomic checkpoints of offsets and state, and their restore;
//!   [`replay`] reprocesses the input into fresh state without doubling the output.
//! - [`kafka`]: client settings, topic set-up, the output producer, the watermark monitor.
//! - [`output`]: where output records go (Kafka, or memory); [`monitoring`]: the processing
//!   reports published to `monitoring-events`.
//! - [`runtime`]: starts and stops an engine: state, workers, HTTP; [`testkit`] runs a
//!   topology to completion over in-memory input, without a broker, and its
//!   [`TopologyTestDriver`](testkit::TopologyTestDriver) steps one through a test.
//! - [`query`]: the axum HTTP API.
//! - [`status`]: live progress shared by workers and the API; [`readiness`]: what holds a
//!   running engine back (a broker away, output unacknowledged), for `/readyz`; [`window_latency`] times
//!   each window from its close point to the checkpoint that makes it visible; [`feed`]
//!   publishes each checkpoint's view changes to the live streams as it commits.
//! - [`record`]: the envelope of every value, with the input headers it carries
//!   ([`carried_headers`]).
//! - [`time`], [`window`], [`watermark`]: event time, window assignment, partition clocks;
//!   `late` (private): the one lateness rule, judged by the source that reads a record.
//! - [`app`]: the command line (`run`, `replay`, `produce`, `demo`, `bench`, `describe`,
//!   `dedupe`) a topology binary gets by calling [`app::main`].

// Input and I/O reach nearly every path: a failure is a typed error, never a panic (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)
)]

pub mod app;
pub mod carried_headers;
pub mod checkpoint;
pub mod dsl;
pub mod epoch;
pub mod error;
pub mod feed;
pub mod kafka;
mod late;
pub mod monitoring;
pub mod output;
pub mod plan;
pub mod query;
pub mod readiness;
pub mod record;
pub mod render;
pub mod replay;
pub mod runtime;
pub mod status;
mod test_driver;
pub mod testkit;
pub mod time;
pub mod watermark;
pub mod window;
pub mod window_latency;

pub use error::EngineError;
