//! One run of the saga benchmark: started on the preloaded input, watched until its
//! inventory events hold every decision and change of state, measured, stopped, and its
//! results compared with the model's. `shop bench` runs to its own end instead, and its
//! report is taken as it prints it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

use super::outputs::{SagaReader, ends};
use super::reference::{SagaResults, differences};
use crate::measure::Outcome;
use crate::process::Peer;

/// Where every engine publishes its processing reports (engine/src/monitoring.rs).
const MONITORING_TOPIC: &str = "monitoring-events";

/// How a run delivers its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaKind {
    /// Sluice: `inventory-events`.
    Sluice,
    /// A peer: `<prefix>.inventory-events`.
    Peer,
    /// `shop bench --no-preload`: its own report, read from its output.
    Bench,
}

/// A run to make. Its command line has `{brokers}`, `{orders}`, `{products}`, `{prefix}`,
/// `{group}`, `{http}` and `{state}` to fill in.
pub type SagaRun = crate::plan::Run<SagaKind>;

/// Where and how long to run.
pub struct SagaSetting<'a> {
    /// Bootstrap servers.
    pub brokers: &'a str,
    /// Records in the input topics.
    pub inputs: u64,
    /// What a run must write (the closing records' left out).
    pub expected: &'a SagaResults,
    /// Where logs and state go.
    pub work_dir: &'a Path,
    /// The longest a run may take.
    pub deadline: Duration,
    /// How long its output may stay unchanged before what it wrote is final.
    pub settle: Duration,
}

/// Runs one and judges it.
pub fn run(planned: &SagaRun, setting: &SagaSetting<'_>) -> Outcome {
    match run_inner(planned, setting) {
        Ok(outcome) => outcome,
        Err(error) => Outcome {
            verdict: "failed",
            detail: vec![format!("{error:#}")],
            ..Outcome::unavailable(&planned.name, "")
        },
    }
}

fn run_inner(planned: &SagaRun, setting: &SagaSetting<'_>) -> anyhow::Result<Outcome> {
    let prefix = format!("saga.{}", planned.name);
    let topic = match planned.kind {
        SagaKind::Peer => {
            let topic = format!("{prefix}.inventory-events");
            crate::preload::create_topics(setting.brokers, std::slice::from_ref(&topic))?;
            topic
        }
        SagaKind::Sluice | SagaKind::Bench => "inventory-events".to_string(),
    };
    let http = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .to_string();
    let state = setting.work_dir.join(format!("{}-state", planned.name));
    let command: Vec<String> = planned
        .command
        .split_whitespace()
        .map(|part| {
            part.replace("{brokers}", setting.brokers)
                .replace("{orders}", super::input::ORDERS)
                .replace("{products}", super::input::PRODUCTS)
                .replace("{prefix}", &prefix)
                .replace("{group}", &format!("saga-{}", planned.name))
                .replace("{http}", &http)
                .replace("{state}", &state.display().to_string())
        })
        .collect();
    let log = setting.work_dir.join(format!("{}.log", planned.name));
    // Every Sluice run writes the same topic: read only what this one adds.
    let from = ends(setting.brokers, &topic)?;
    let mut process = Peer::start(&command, &log)?;
    if planned.kind == SagaKind::Bench {
        return bench_report(planned, process, &log, setting);
    }
    let mut reader = SagaReader::new(setting.brokers, &topic, &from)?;
    let wanted = setting.expected.events();
    let mut last_change = Instant::now();
    let mut detail = Vec::new();
    let (finished, usage) = loop {
        let before = reader.events;
        reader.poll(Duration::from_millis(200))?;
        let now = Instant::now();
        if reader.events != before {
            last_change = now;
        }
        if reader.events >= wanted {
            break (Some(now - process.started()), process.usage());
        }
        let exited = process.exited();
        if now - last_change >= setting.settle && (exited.is_some() || reader.events > 0) {
            if let Some((code, _, _)) = exited {
                detail.push(format!("exited with code {code}"));
            }
            detail.push(format!(
                "judged on the {} of {wanted} events it had written when nothing changed for {} s",
                reader.events,
                setting.settle.as_secs()
            ));
            break (Some(last_change - process.started()), process.usage());
        }
        if now - process.started() >= setting.deadline {
            detail.push(format!(
                "wrote {} of {wanted} events within {} s",
                reader.events,
                setting.deadline.as_secs()
            ));
            break (None, process.usage());
        }
    };
    process.stop(Duration::from_secs(30));
    // Whatever it wrote before it stopped counts too: a duplicate shows as a difference.
    drain(&mut reader, setting.brokers, &topic)?;
    detail.extend(
        reader
            .unreadable
            .iter()
            .map(|line| format!("unreadable: {line}")),
    );
    let differ = differences(setting.expected, &reader.results.without_closing(), 20);
    let verdict = match finished {
        None => "failed",
        Some(_) if !differ.is_empty() => "differs",
        Some(_) => "agrees",
    };
    detail.extend(differ);
    let seconds = finished.unwrap_or_default().as_secs_f64();
    Ok(Outcome {
        name: planned.name.clone(),
        verdict,
        detail,
        seconds,
        events_per_second: if seconds > 0.0 {
            setting.inputs as f64 / seconds
        } else {
            0.0
        },
        cpu_seconds: usage.cpu_seconds,
        peak_rss_mib: usage.peak_rss_bytes as f64 / (1024.0 * 1024.0),
    })
}

/// Reads `topic` up to where it ends now.
fn drain(reader: &mut SagaReader, brokers: &str, topic: &str) -> anyhow::Result<()> {
    let end: u64 = ends(brokers, topic)?.values().map(|&end| end as u64).sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && reader.position()? < end {
        reader.poll(Duration::from_millis(200))?;
    }
    Ok(())
}

/// The figures `shop bench` prints as its last line.
#[derive(Deserialize)]
struct BenchReport {
    events: u64,
    checkpointed_seconds: f64,
}

/// Waits for `shop bench` to end and takes its report: the time until a checkpoint held
/// every input record, its output acknowledged.
fn bench_report(
    planned: &SagaRun,
    mut process: Peer,
    log: &Path,
    setting: &SagaSetting<'_>,
) -> anyhow::Result<Outcome> {
    let (code, usage) = loop {
        if let Some((code, usage, _)) = process.exited() {
            break (code, usage);
        }
        if process.started().elapsed() >= setting.deadline {
            process.stop(Duration::from_secs(30));
            anyhow::bail!("did not end within {} s", setting.deadline.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    anyhow::ensure!(code == 0, "exited with code {code}: {}", tail(&text));
    let report: BenchReport = text
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .with_context(|| format!("no report in its output: {}", tail(&text)))?;
    // The whole shop also reads `monitoring-events`, where every engine (the earlier runs
    // and this one) publishes its processing reports; those count among what it consumed.
    let reports: u64 = ends(setting.brokers, MONITORING_TOPIC)?
        .values()
        .map(|&end| end.max(0) as u64)
        .sum();
    let mut detail = Vec::new();
    let beyond_input = report.events.saturating_sub(setting.inputs);
    if report.events < setting.inputs || beyond_input > reports {
        detail.push(format!(
            "consumed {} records: not the {} of the input and at most the {reports} processing reports on {MONITORING_TOPIC}",
            report.events, setting.inputs
        ));
    } else if beyond_input > 0 {
        detail.push(format!(
            "consumed the {} input records and {beyond_input} processing reports from {MONITORING_TOPIC}",
            setting.inputs
        ));
    }
    Ok(Outcome {
        name: planned.name.clone(),
        verdict: if report.events >= setting.inputs && beyond_input <= reports {
            "measured"
        } else {
            "differs"
        },
        detail,
        seconds: report.checkpointed_seconds,
        events_per_second: report.events as f64 / report.checkpointed_seconds.max(1e-9),
        cpu_seconds: usage.cpu_seconds,
        peak_rss_mib: usage.peak_rss_bytes as f64 / (1024.0 * 1024.0),
    })
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" / ")
}
