//! The saga benchmark (benches/peers/README.md, "The inventory saga"): the shop's input
//! as `shop bench` preloads it, Sluice and Kafka Streams' inventory saga run on it one
//! after another, each one's decisions checked against a model of the contract's rules.
//!
//! - [`input`]: the generated orders and catalog, and the closing records.
//! - [`reference`]: the model, and the comparison with it.
//! - [`outputs`]: a run's inventory events, read back.
//! - [`measure`]: one run, from start to its last event, judged.

mod input;
mod measure;
mod outputs;
mod reference;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

pub use measure::SagaKind;

/// A planned saga run, or one reported as unavailable.
pub type PlannedSaga = crate::plan::Planned<SagaKind>;

/// Parses `KIND:NAME=COMMAND`, KIND one of `sluice`, `peer`, `bench` or `unavailable`.
pub fn planned(text: &str) -> Result<PlannedSaga, String> {
    crate::plan::parse(
        text,
        &[
            ("sluice", SagaKind::Sluice),
            ("peer", SagaKind::Peer),
            ("bench", SagaKind::Bench),
        ],
    )
}

/// Publishes the input for `events` orders to fresh topics.
pub fn preload(brokers: &str, events: u64) -> anyhow::Result<()> {
    let records = input::records(events);
    crate::preload::create_topics(
        brokers,
        &[input::ORDERS, input::PRODUCTS, "inventory-events"].map(String::from),
    )?;
    input::publish(brokers, &records)?;
    let expected = reference::expected(&records);
    let confirmed = expected
        .decisions
        .values()
        .filter(|decision| matches!(decision, reference::Decision::Confirmed(_)))
        .count();
    println!(
        "preloaded {} records ({events} orders, the catalog and 8 closing records): \
         {confirmed} orders confirmed, {} refused, {} changes of stock state expected",
        records.len(),
        expected.decisions.len() - confirmed,
        expected.transitions.values().map(Vec::len).sum::<usize>()
    );
    Ok(())
}

/// Runs each planned run on the preloaded input, one after another, and writes the table
/// and the results to `out`.
pub fn compare(
    brokers: &str,
    events: u64,
    runs: &[PlannedSaga],
    work_dir: &Path,
    out: &Path,
    deadline: Duration,
    settle: Duration,
) -> anyhow::Result<ExitCode> {
    let records = input::records(events);
    let held = crate::outputs::ends(brokers, input::ORDERS)?
        .values()
        .chain(crate::outputs::ends(brokers, input::PRODUCTS)?.values())
        .sum::<i64>();
    anyhow::ensure!(
        held as usize == records.len(),
        "the input topics hold {held} records, not the {} of a saga preload of {events}: preload fresh topics",
        records.len()
    );
    let expected = reference::expected(&records).without_closing();
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let setting = measure::SagaSetting {
        brokers,
        inputs: records.len() as u64,
        expected: &expected,
        work_dir,
        deadline,
        settle,
    };
    let outcomes = crate::plan::run_each("saga", runs, |run| measure::run(run, &setting));
    let table = crate::report::table(&outcomes, records.len() as u64);
    print!("{table}");
    std::fs::write(out.join("saga.md"), &table).context("writing the table")?;
    std::fs::write(
        out.join("saga.json"),
        serde_json::to_string_pretty(&outcomes).context("encoding the results")?,
    )
    .context("writing the results")?;
    let wrong: Vec<&str> = outcomes
        .iter()
        .filter(|outcome| !matches!(outcome.verdict, "agrees" | "measured"))
        .map(|outcome| outcome.name.as_str())
        .collect();
    if wrong.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("saga: FAILED: {}", wrong.join(", "));
        Ok(ExitCode::FAILURE)
    }
}
