//! The command line a topology binary gets: `run`, `replay`, `produce`, `demo`, `bench`,
//! `describe`, `dedupe`.
//!
//! A binary describes itself with an [`Application`] (its topology and its event generator)
//! and hands it to [`main`].
//!
//! - [`cli`]: the flags, parsed with clap.
//! - [`choice`]: `--topology NAME`, one named part of an application run alone.
//! - [`generator`]: the [`EventGenerator`] an application supplies for `produce`.
//! - [`produce`]: publishes generated events at a steady rate, with a progress bar.
//! - [`replay`]: wipes the state and reprocesses, with progress until caught up.
//! - [`demo`]: everything in one process on rdkafka's in-memory mock broker.
//! - [`bench`]: preloads a broker and measures end-to-end throughput.
//! - [`procstats`]: CPU time and peak memory of this process, for `bench`.

pub mod bench;
pub mod choice;
pub mod cli;
pub mod demo;
pub mod generator;
pub mod procstats;
pub mod produce;
pub mod replay;

use std::process::ExitCode;

use crate::dsl::TopologyFn;

pub use choice::NamedTopology;
pub use generator::{EventGenerator, GeneratedEvent, GeneratorOptions};

/// A deployable topology binary.
pub trait Application: Send + Sync + 'static {
    /// The binary's name, used for the consumer group and in messages.
    fn name(&self) -> &'static str;
    /// The topology to run: the whole application.
    fn topology(&self) -> TopologyFn;
    /// Parts of the application that `--topology NAME` runs on their own (none by
    /// default).
    fn topologies(&self) -> Vec<NamedTopology> {
        Vec::new()
    }
    /// The topic generated events are published to.
    fn input_topic(&self) -> &'static str;
    /// A deterministic generator of input events.
    fn generator(&self, options: &GeneratorOptions) -> Box<dyn EventGenerator>;
}

/// Parses the command line, runs the command and turns errors into a message and a
/// non-zero exit code.
pub fn main(application: impl Application) -> ExitCode {
    cli::run(application)
}
