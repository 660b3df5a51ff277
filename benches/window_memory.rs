//! Memory per open window and key: the same 1,000,000 readings counted in one 1-hour
//! tumbling window, first all of one key (one open window), then each of its own key
//! (1,000,000 open windows), in one process. The peak resident memory (`VmHWM`) after each
//! run, and the growth per extra open window, are printed. The windows stay open: the
//! readings span 1 s of event time.
//!
//! `cargo bench --bench window_memory`

use std::sync::Arc;
use std::time::Duration;

/// The allocator the `shop` binary uses, so that the figures match.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde::{Deserialize, Serialize};
use sluice::dsl::{Source, TopologyFn, TumblingWindows};
use sluice::testkit::{MemoryInput, MemoryRecord, run_to_completion};

/// Readings measured under `cargo bench`; `cargo test` runs the same code on a few, as a
/// check that it works.
const BENCH_READINGS: usize = 1_000_000;
const TEST_READINGS: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    key: String,
    at: i64,
}

fn input(readings: usize, keys: usize) -> MemoryInput {
    let mut input = MemoryInput::default();
    for index in 0..readings {
        let reading = Reading {
            key: format!("key_{:07}", index % keys),
            at: (index / 1_000) as i64,
        };
        input.push(
            "readings",
            index % 4,
            MemoryRecord {
                key: Vec::new(),
                payload: serde_json::to_vec(&reading).expect("encodes"),
                timestamp: reading.at,
                watermark_only: false,
                headers: Vec::new(),
            },
        );
    }
    input
}

fn topology() -> TopologyFn {
    Arc::new(|topology| {
        topology
            .source(Source::<Reading>::topic("readings").event_time(|reading| reading.at))
            .key_by("key", |reading| reading.key.clone())
            .window(TumblingWindows::of(Duration::from_secs(3_600)))
            .count()
            .materialize("counts");
    })
}

/// The process's peak resident memory so far, in bytes.
fn peak_resident() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` does not.
    let readings = if std::env::args().any(|arg| arg == "--bench") {
        BENCH_READINGS
    } else {
        TEST_READINGS
    };
    let mut peaks = Vec::new();
    for keys in [1, readings] {
        let input = input(readings, keys);
        let dir = tempfile::tempdir().expect("temporary state directory");
        let run = run_to_completion(topology(), input, dir.path(), 2, 100).expect("run");
        let mut open = 0;
        run.state
            .window_store("counts")
            .expect("view")
            .for_each(|_, window| {
                assert!(!window.is_final);
                open += 1;
            })
            .expect("windows");
        assert_eq!(open, keys, "one open window per key");
        drop(run);
        let peak = peak_resident();
        println!(
            "{keys:>9} open windows: peak resident {:.1} MiB",
            peak as f64 / 1_048_576.0
        );
        peaks.push((keys, peak));
    }
    let ((few, low), (many, high)) = (peaks[0], peaks[1]);
    println!(
        "growth per open window and key: {:.0} bytes",
        (high.saturating_sub(low)) as f64 / (many - few) as f64
    );
}
