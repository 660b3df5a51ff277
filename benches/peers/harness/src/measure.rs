//! One peer's run: started on the preloaded input, watched until its last window is
//! written, measured, stopped, and its output compared with the reference.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::job::{Reference, Windows, differences};
use crate::outputs::{WindowReader, count_committed};
use crate::process::{Peer, Usage};
use crate::sluice_views::SluiceApi;

/// How a peer delivers its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Window topics and inventory events under its prefix.
    Peer,
    /// Window topics only: the hand-written ceiling.
    Ceiling,
    /// Sluice: views over HTTP, and inventory events on `inventory-events`.
    Sluice,
}

/// A peer to run. Its command line has `{brokers}`, `{input}`, `{prefix}`, `{group}`,
/// `{http}` and `{state}` to fill in.
pub type PeerRun = crate::plan::Run<Kind>;

/// What one peer's run gave.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The peer.
    pub name: String,
    /// `agrees`, `differs`, `failed` or `unavailable`.
    pub verdict: &'static str,
    /// Why, when it did not agree; the windows that differ.
    pub detail: Vec<String>,
    /// From start to its last window written.
    pub seconds: f64,
    /// Orders read per second over that time.
    pub events_per_second: f64,
    /// CPU seconds the process used up to then.
    pub cpu_seconds: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
}

impl Outcome {
    /// A peer that could not be built or started.
    pub fn unavailable(name: &str, reason: &str) -> Outcome {
        Outcome {
            name: name.to_string(),
            verdict: "unavailable",
            detail: vec![reason.to_string()],
            seconds: 0.0,
            events_per_second: 0.0,
            cpu_seconds: 0.0,
            peak_rss_mib: 0.0,
        }
    }
}

/// Where and how long to run.
pub struct Setting<'a> {
    /// Bootstrap servers.
    pub brokers: &'a str,
    /// The preloaded topic.
    pub input: &'a str,
    /// Its partitions' end offsets.
    pub input_ends: &'a BTreeMap<i32, i64>,
    /// What the input must give.
    pub reference: &'a Reference,
    /// Where logs and state go.
    pub work_dir: &'a Path,
    /// The longest a peer may take.
    pub deadline: Duration,
    /// How long written windows may stay unchanged before a wrong result is final.
    pub settle: Duration,
}

/// Runs one peer and judges it.
pub fn run(peer: &PeerRun, setting: &Setting<'_>) -> Outcome {
    match run_inner(peer, setting) {
        Ok(outcome) => outcome,
        Err(error) => Outcome {
            verdict: "failed",
            detail: vec![format!("{error:#}")],
            ..Outcome::unavailable(&peer.name, "")
        },
    }
}

fn run_inner(peer: &PeerRun, setting: &Setting<'_>) -> anyhow::Result<Outcome> {
    let prefix = format!("peers.{}", peer.name);
    if peer.kind != Kind::Sluice {
        crate::preload::create_topics(
            setting.brokers,
            &["order-counts", "item-demand", "inventory-events"]
                .map(|suffix| format!("{prefix}.{suffix}")),
        )?;
    }
    let http = free_loopback_address()?;
    let state = setting.work_dir.join(format!("{}-state", peer.name));
    let command: Vec<String> = peer
        .command
        .split_whitespace()
        .map(|part| {
            part.replace("{brokers}", setting.brokers)
                .replace("{input}", setting.input)
                .replace("{prefix}", &prefix)
                .replace("{group}", &format!("peers-{}", peer.name))
                .replace("{http}", &http)
                .replace("{state}", &state.display().to_string())
        })
        .collect();
    // Every Sluice run writes the fixed `inventory-events`: count only what this one adds.
    let inventory_topic = match peer.kind {
        Kind::Sluice => "inventory-events".to_string(),
        _ => format!("{prefix}.inventory-events"),
    };
    let inventory_before = match peer.kind {
        Kind::Sluice => {
            count_committed(
                setting.brokers,
                &inventory_topic,
                Instant::now() + Duration::from_secs(120),
            )?
            .0
        }
        _ => 0,
    };
    let log = setting.work_dir.join(format!("{}.log", peer.name));
    let mut process = Peer::start(&command, &log)?;
    let expected = setting.reference.compared();
    let watched = match peer.kind {
        Kind::Sluice => watch_sluice(&mut process, setting, &http)?,
        Kind::Peer | Kind::Ceiling => {
            watch_topics(&mut process, peer.kind, setting, &prefix, &expected)?
        }
    };
    let Watched {
        finished,
        usage,
        windows,
        mut detail,
    } = watched;
    process.stop(Duration::from_secs(30));
    let mut verdict = "agrees";
    let Some(finished) = finished else {
        let tail = log_tail(&log);
        detail.extend(tail);
        let mut lines = vec![format!(
            "did not write its last window within {} s",
            setting.deadline.as_secs()
        )];
        lines.extend(differences(
            &expected,
            &windows.before(setting.reference.compared_before),
            20,
        ));
        lines.extend(detail);
        return Ok(Outcome {
            verdict: "failed",
            detail: lines,
            ..Outcome::unavailable(&peer.name, "")
        });
    };
    let differ = differences(
        &expected,
        &windows.before(setting.reference.compared_before),
        20,
    );
    if !differ.is_empty() {
        verdict = "differs";
        detail.extend(differ);
    }
    if peer.kind != Kind::Ceiling {
        let topic = &inventory_topic;
        let (total, complete) = count_committed(
            setting.brokers,
            topic,
            Instant::now() + Duration::from_secs(120),
        )?;
        let count = total.saturating_sub(inventory_before);
        if count != setting.reference.order_lines || !complete {
            verdict = "differs";
            detail.push(format!(
                "{topic}: {count} inventory events{}, expected {}",
                if complete { "" } else { " by the deadline" },
                setting.reference.order_lines
            ));
        }
    }
    let seconds = finished.as_secs_f64();
    Ok(Outcome {
        name: peer.name.clone(),
        verdict,
        detail,
        seconds,
        events_per_second: setting.reference.orders as f64 / seconds.max(1e-9),
        cpu_seconds: usage.cpu_seconds,
        peak_rss_mib: usage.peak_rss_bytes as f64 / (1024.0 * 1024.0),
    })
}

struct Watched {
    /// From start to the last window written, if it got there.
    finished: Option<Duration>,
    usage: Usage,
    windows: Windows,
    detail: Vec<String>,
}

/// Polls the peer's window topics until they equal the reference (and, for a peer, its
/// inventory events are all written), it fails, or it settles on something else.
fn watch_topics(
    process: &mut Peer,
    kind: Kind,
    setting: &Setting<'_>,
    prefix: &str,
    expected: &Windows,
) -> anyhow::Result<Watched> {
    let mut reader = WindowReader::new(setting.brokers, prefix)?;
    let inventory = format!("{prefix}.inventory-events");
    let mut last_change = Instant::now();
    let mut detail = Vec::new();
    loop {
        let before = reader.windows.clone();
        reader.poll(Duration::from_millis(200))?;
        let now = Instant::now();
        if reader.windows != before {
            last_change = now;
        }
        let compared = reader.windows.before(setting.reference.compared_before);
        // Checked only once the windows agree: the windows come last in every peer.
        if compared == *expected
            && (kind == Kind::Ceiling
                || reader.written(&inventory)? >= setting.reference.order_lines)
        {
            let finished = process.exited().map_or(now, |(_, _, at)| at.min(now));
            return Ok(Watched {
                finished: Some(finished - process.started()),
                usage: process.usage(),
                windows: reader.windows,
                detail,
            });
        }
        let covers_all = expected
            .order_counts
            .keys()
            .all(|start| compared.order_counts.contains_key(start));
        let exited = process.exited();
        let settled = now - last_change >= setting.settle;
        if settled && (covers_all || exited.is_some()) {
            if let Some((code, _, _)) = exited {
                detail.push(format!("exited with code {code}"));
            }
            detail.push(format!(
                "judged on what it had written when nothing changed for {} s",
                setting.settle.as_secs()
            ));
            let finished = exited.map_or(last_change, |(_, _, at)| at);
            return Ok(Watched {
                finished: Some(finished - process.started()),
                usage: process.usage(),
                windows: reader.windows,
                detail,
            });
        }
        if now - process.started() >= setting.deadline {
            detail.extend(
                reader
                    .unreadable
                    .iter()
                    .map(|line| format!("unreadable: {line}")),
            );
            return Ok(Watched {
                finished: None,
                usage: process.usage(),
                windows: reader.windows,
                detail,
            });
        }
    }
}

/// Polls Sluice's `/status` until a checkpoint holds the whole input, then reads its views.
fn watch_sluice(process: &mut Peer, setting: &Setting<'_>, http: &str) -> anyhow::Result<Watched> {
    let api = SluiceApi::new(http)?;
    loop {
        if api.checkpointed(setting.input, setting.input_ends) {
            let finished = process.started().elapsed();
            let usage = process.usage();
            return Ok(Watched {
                finished: Some(finished),
                usage,
                windows: api.windows()?,
                detail: Vec::new(),
            });
        }
        if let Some((code, _, _)) = process.exited() {
            return Ok(Watched {
                finished: None,
                usage: process.usage(),
                windows: Windows::default(),
                detail: vec![format!(
                    "exited with code {code} before its checkpoint held the input"
                )],
            });
        }
        if process.started().elapsed() >= setting.deadline {
            return Ok(Watched {
                finished: None,
                usage: process.usage(),
                windows: api.windows().unwrap_or_default(),
                detail: Vec::new(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_loopback_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

fn log_tail(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..]
        .iter()
        .map(|line| format!("log: {line}"))
        .collect()
}
