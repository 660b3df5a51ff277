//! Windowed aggregation by window kind, in process: 200,000 readings over 10,000 keys and
//! 4 in-memory partitions, counted per key in 60 s windows, from JSON bytes to views in
//! RocksDB, in events per second. (Tumbling only for now: hopping and session windows
//! come with their issue.)
//!
//! `cargo bench --bench window_kinds`

use std::sync::Arc;
use std::time::Duration;

/// The allocator the `shop` binary uses, so that the figures match.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use sluice::dsl::{Source, TopologyFn, TumblingWindows};
use sluice::testkit::{MemoryInput, MemoryRecord, run_to_completion};

const EVENTS: usize = 200_000;
const KEYS: usize = 10_000;
const PARTITIONS: usize = 4;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    key: String,
    at: i64,
}

/// Readings 1 ms apart, keys in turn: each key gets a reading every 10 s of event time.
fn input() -> MemoryInput {
    let mut input = MemoryInput::default();
    for index in 0..EVENTS {
        let reading = Reading {
            key: format!("key_{}", index % KEYS),
            at: index as i64,
        };
        input.push(
            "readings",
            index % PARTITIONS,
            MemoryRecord {
                key: reading.key.clone().into_bytes(),
                payload: serde_json::to_vec(&reading).expect("encodes"),
                timestamp: reading.at,
                watermark_only: false,
            },
        );
    }
    input
}

fn tumbling() -> TopologyFn {
    Arc::new(|topology| {
        topology
            .source(Source::<Reading>::topic("readings").event_time(|reading| reading.at))
            .key_by("key", |reading| reading.key.clone())
            .window(TumblingWindows::of(Duration::from_secs(60)))
            .count()
            .materialize("counts");
    })
}

fn window_kinds(c: &mut Criterion) {
    let input = input();
    let dir = tempfile::tempdir().expect("temporary state directory");

    // The work is real: every reading is counted in the view.
    let run = run_to_completion(tumbling(), input.clone(), dir.path(), 2, 100).expect("run");
    let mut counted = 0;
    run.state
        .window_store("counts")
        .expect("view")
        .for_each(|_, window| {
            counted += serde_json::from_slice::<u64>(&window.value_json).expect("a count");
        })
        .expect("windows");
    assert_eq!(counted, EVENTS as u64);
    drop(run);

    let mut group = c.benchmark_group("window_kinds_10k_keys");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_with_input(
        BenchmarkId::new("tumbling", "2 workers"),
        &2,
        |b, &workers| {
            b.iter(|| {
                run_to_completion(tumbling(), input.clone(), dir.path(), workers, 100).expect("run")
            });
        },
    );
    group.finish();
}

criterion_group!(benches, window_kinds);
criterion_main!(benches);
