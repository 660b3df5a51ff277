//! `sluice-peers`: the peers benchmark of benches/peers/README.md.
//!
//! - [`job`]: the job's windows, the reference, and the comparison.
//! - [`preload`]: the generated orders and the closing orders, published once.
//! - [`ceiling`]: the hand-written Rust consumer, the ceiling of one process.
//! - [`process`]: a peer's process, its CPU time and peak memory.
//! - [`outputs`]: a peer's window topics and inventory events, read back.
//! - [`sluice_views`]: Sluice's windows, read from its HTTP views.
//! - [`measure`]: one peer's run, from start to its last window, judged.
//! - [`plan`]: the `KIND:NAME=COMMAND` arguments that plan the runs.
//! - [`report`]: the Markdown table and the SVG chart.
//! - [`saga`]: the inventory saga, Sluice's against Kafka Streams', on the shop's input.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)
)]

mod ceiling;
mod job;
mod measure;
mod outputs;
mod plan;
mod preload;
mod process;
mod report;
mod saga;
mod sluice_views;
#[cfg(test)]
mod test_orders;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use measure::{Kind, Setting};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "The peers benchmark: Sluice and its peers on the same preloaded orders.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish N generated orders and the closing orders to a fresh topic.
    Preload {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        events: u64,
        #[arg(long, default_value = "order-events")]
        topic: String,
    },
    /// The hand-written ceiling: read, parse and count, then write the windows.
    Ceiling {
        brokers: String,
        input: String,
        prefix: String,
        group: String,
    },
    /// Run each peer on the preloaded topic, one after another, and compare them.
    Compare {
        #[arg(long)]
        brokers: String,
        /// The N the topic was preloaded with.
        #[arg(long)]
        events: u64,
        #[arg(long, default_value = "order-events")]
        topic: String,
        /// `KIND:NAME=COMMAND`, KIND one of `peer`, `ceiling`, `sluice` or `unavailable`
        /// (then COMMAND is the reason); run in the order given.
        #[arg(long = "run", value_parser = peer_run, required = true)]
        runs: Vec<Planned>,
        /// Logs and state go here.
        #[arg(long)]
        work_dir: PathBuf,
        /// The table, the chart and the JSON results go here.
        #[arg(long)]
        out: PathBuf,
        /// The longest one peer may take, in seconds.
        #[arg(long, default_value_t = 1800)]
        deadline_secs: u64,
        /// How long wrong windows must stay unchanged to be a peer's final answer.
        #[arg(long, default_value_t = 30)]
        settle_secs: u64,
    },
    /// Publish the shop's input for N orders (orders, catalog, closing records).
    SagaPreload {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        events: u64,
    },
    /// Run each saga on the preloaded shop input, one after another, and compare them.
    SagaCompare {
        #[arg(long)]
        brokers: String,
        /// The N the topics were preloaded with.
        #[arg(long)]
        events: u64,
        /// `KIND:NAME=COMMAND`, KIND one of `sluice`, `peer`, `bench` or `unavailable`.
        #[arg(long = "run", value_parser = saga::planned, required = true)]
        runs: Vec<saga::PlannedSaga>,
        #[arg(long)]
        work_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1800)]
        deadline_secs: u64,
        /// How long a run's output must stay unchanged to be its final answer.
        #[arg(long, default_value_t = 30)]
        settle_secs: u64,
    },
}

type Planned = plan::Planned<Kind>;

fn peer_run(text: &str) -> Result<Planned, String> {
    plan::parse(
        text,
        &[
            ("peer", Kind::Peer),
            ("ceiling", Kind::Ceiling),
            ("sluice", Kind::Sluice),
        ],
    )
}

fn main() -> ExitCode {
    match dispatch(Cli::parse().command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Preload {
            brokers,
            events,
            topic,
        } => {
            let orders = preload::orders(events);
            preload::create_topics(&brokers, std::slice::from_ref(&topic))?;
            preload::publish(&brokers, &topic, &orders)?;
            let reference = preload::reference(&orders);
            println!(
                "preloaded {} orders ({} closing) with {} lines to {topic}: {} order windows, {} item windows compared",
                reference.orders,
                preload::PARTITIONS,
                reference.order_lines,
                reference.compared().order_counts.len(),
                reference.compared().item_demand.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ceiling {
            brokers,
            input,
            prefix,
            group,
        } => {
            ceiling::run(&brokers, &input, &prefix, &group)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare {
            brokers,
            events,
            topic,
            runs,
            work_dir,
            out,
            deadline_secs,
            settle_secs,
        } => compare(
            &brokers,
            events,
            &topic,
            &runs,
            &work_dir,
            &out,
            deadline_secs,
            settle_secs,
        ),
        Command::SagaPreload { brokers, events } => {
            saga::preload(&brokers, events)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::SagaCompare {
            brokers,
            events,
            runs,
            work_dir,
            out,
            deadline_secs,
            settle_secs,
        } => saga::compare(
            &brokers,
            events,
            &runs,
            &work_dir,
            &out,
            Duration::from_secs(deadline_secs),
            Duration::from_secs(settle_secs),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn compare(
    brokers: &str,
    events: u64,
    topic: &str,
    runs: &[Planned],
    work_dir: &std::path::Path,
    out: &std::path::Path,
    deadline_secs: u64,
    settle_secs: u64,
) -> anyhow::Result<ExitCode> {
    let reference = preload::reference(&preload::orders(events));
    let input_ends = outputs::ends(brokers, topic)?;
    let held: i64 = input_ends.values().sum();
    if held as u64 != reference.orders {
        bail!(
            "{topic} holds {held} records, not the {} of a preload of {events}: preload a fresh topic",
            reference.orders
        );
    }
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let setting = Setting {
        brokers,
        input: topic,
        input_ends: &input_ends,
        reference: &reference,
        work_dir,
        deadline: Duration::from_secs(deadline_secs),
        settle: Duration::from_secs(settle_secs),
    };
    let outcomes = plan::run_each("peers", runs, |peer| measure::run(peer, &setting));
    let table = report::table(&outcomes, reference.orders);
    print!("{table}");
    std::fs::write(out.join("peers.md"), &table).context("writing the table")?;
    std::fs::write(
        out.join("peers.svg"),
        report::chart(&outcomes, reference.orders),
    )
    .context("writing the chart")?;
    std::fs::write(
        out.join("peers.json"),
        serde_json::to_string_pretty(&outcomes).context("encoding the results")?,
    )
    .context("writing the results")?;
    let wrong: Vec<&str> = outcomes
        .iter()
        .filter(|outcome| outcome.verdict != "agrees")
        .map(|outcome| outcome.name.as_str())
        .collect();
    if wrong.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "peers: FAILED: {} did not agree with the reference",
            wrong.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}
