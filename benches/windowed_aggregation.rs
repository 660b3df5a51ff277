//! The orders topology in process, from JSON bytes to updated windows in RocksDB, in
//! events per second. No broker: records are read from memory and outputs kept in memory.
//!
//! `cargo bench --bench windowed_aggregation`

use std::time::Duration;

/// The allocator the `shop` binary uses, so that the figures match.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice::app::{Application, GeneratorOptions};
use sluice::testkit::{MemoryInput, run_to_completion};
use sluice_topologies::Shop;
use sluice_topologies::generator::generated_input;

const EVENTS: usize = 200_000;
const PARTITIONS: u64 = 4;

fn input(events: usize) -> MemoryInput {
    let options = GeneratorOptions {
        seed: 1,
        failure_rate: 0.05,
        start_ms: 1_705_314_600_000,
        interval_ms: 10,
    };
    generated_input(options, events, PARTITIONS)
}

fn windowed_aggregation(c: &mut Criterion) {
    let input = input(EVENTS);
    let dir = tempfile::tempdir().expect("temporary state directory");

    // The work is real: every event reaches the views.
    let run = run_to_completion(Shop.topology(), input.clone(), dir.path(), 2, 100).expect("run");
    let counted: u64 = run
        .state
        .window_store("orders_per_minute")
        .expect("view")
        .windows(b"all", i64::MIN, i64::MAX)
        .expect("windows")
        .iter()
        .map(|window| {
            serde_json::from_slice::<serde_json::Value>(&window.value_json).expect("json")["count"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(counted, EVENTS as u64);
    drop(run);

    let mut group = c.benchmark_group("orders_topology");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for workers in [1, 2] {
        group.bench_with_input(
            BenchmarkId::new("workers", workers),
            &workers,
            |b, &workers| {
                b.iter(|| {
                    run_to_completion(Shop.topology(), input.clone(), dir.path(), workers, 100)
                        .expect("run")
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, windowed_aggregation);
criterion_main!(benches);
