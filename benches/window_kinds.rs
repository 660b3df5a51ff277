//! Windowed aggregation by window kind, in process: 200,000 readings over 10,000 keys and
//! 4 in-memory partitions, counted per key, from JSON bytes to views in RocksDB, in events
//! per second: tumbling windows of 60 s, hopping windows of 60 s every 10 s (each record in
//! 6 windows) and sessions with a 30 s gap, each with emit on update and emit final; and
//! the hopping windows once more with a fold that has no merge, which cannot share slices.
//!
//! `cargo bench --bench window_kinds`

use std::sync::Arc;
use std::time::Duration;

/// The allocator the `shop` binary uses, so that the figures match.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use sluice::dsl::{
    HoppingWindows, SessionWindows, Source, Topology, TopologyFn, TumblingWindows, WindowedStream,
    Windowing,
};
use sluice::testkit::{MemoryInput, MemoryRecord, run_to_completion};

const EVENTS: usize = 200_000;
const KEYS: usize = 10_000;
const PARTITIONS: usize = 4;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    key: String,
    at: i64,
}

/// Readings `per_ms` to a millisecond, keys in turn: with one, each key gets a reading
/// every 10 s of event time; with ten, one every second.
fn input(per_ms: usize) -> MemoryInput {
    let mut input = MemoryInput::default();
    for index in 0..EVENTS {
        let reading = Reading {
            key: format!("key_{}", index % KEYS),
            at: (index / per_ms) as i64,
        };
        input.push(
            "readings",
            index % PARTITIONS,
            MemoryRecord {
                key: reading.key.clone().into_bytes(),
                payload: serde_json::to_vec(&reading).expect("encodes"),
                timestamp: reading.at,
                watermark_only: false,
                headers: Vec::new(),
            },
        );
    }
    input
}

/// Counts per key in `windows` into the view `counts`, emitting final values only when
/// `emit_final`.
fn counting<W: Windowing + Copy + Send + Sync + 'static>(
    windows: W,
    emit_final: bool,
) -> TopologyFn {
    Arc::new(move |topology: &mut Topology<'_>| {
        windowed(topology, windows, emit_final)
            .count()
            .materialize("counts");
    })
}

/// Counts like [`counting`] with a fold that has no merge, so that hopping windows cannot
/// share slices: each record is folded into each of its windows, as Kafka Streams does.
fn counting_without_merge(windows: HoppingWindows, emit_final: bool) -> TopologyFn {
    Arc::new(move |topology: &mut Topology<'_>| {
        windowed(topology, windows, emit_final)
            .aggregate(|| 0_u64, |count, _| *count += 1)
            .materialize("counts");
    })
}

fn windowed<'scope, W: Windowing>(
    topology: &mut Topology<'scope>,
    windows: W,
    emit_final: bool,
) -> WindowedStream<'scope, Reading, W::Kind> {
    let windowed = topology
        .source(Source::<Reading>::topic("readings").event_time(|reading| reading.at))
        .key_by("key", |reading| reading.key.clone())
        .window(windows);
    if emit_final {
        windowed.emit_final()
    } else {
        windowed
    }
}

/// The kinds measured, each with how many times the view counts every reading and how
/// many windows it ends with.
fn kinds() -> Vec<(&'static str, TopologyFn, TopologyFn, u64, usize)> {
    let tumbling = TumblingWindows::of(Duration::from_secs(60));
    let hopping = HoppingWindows::of(Duration::from_secs(60)).advance_by(Duration::from_secs(10));
    let session = SessionWindows::with_inactivity_gap(Duration::from_secs(30));
    // The readings span 200 s of event time; each key has one every 10 s.
    vec![
        (
            "tumbling",
            counting(tumbling, false),
            counting(tumbling, true),
            1,
            4 * KEYS,
        ),
        // Windows start every 10 s from -50 s to 190 s.
        (
            "hopping",
            counting(hopping, false),
            counting(hopping, true),
            6,
            25 * KEYS,
        ),
        (
            "hopping without slices",
            counting_without_merge(hopping, false),
            counting_without_merge(hopping, true),
            6,
            25 * KEYS,
        ),
        // One session per key: its readings are 10 s apart.
        (
            "session",
            counting(session, false),
            counting(session, true),
            1,
            KEYS,
        ),
    ]
}

fn window_kinds(c: &mut Criterion) {
    let input = input(1);
    let dir = tempfile::tempdir().expect("temporary state directory");

    let mut group = c.benchmark_group("window_kinds_10k_keys");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (kind, on_update, on_final, times_counted, windows) in kinds() {
        for (mode, topology) in [("emit on update", on_update), ("emit final", on_final)] {
            // The work is real: every reading is counted in each of its windows.
            let run = run_to_completion(Arc::clone(&topology), input.clone(), dir.path(), 2, 100)
                .expect("run");
            let (mut counted, mut seen) = (0, 0);
            run.state
                .window_store("counts")
                .expect("view")
                .for_each(|_, window| {
                    counted += serde_json::from_slice::<u64>(&window.value_json).expect("a count");
                    seen += 1;
                })
                .expect("windows");
            drop(run);
            // With emit final, the view holds the windows that closed by the end (no session
            // has: the stream stops within the gap).
            if mode == "emit on update" {
                assert_eq!(counted, EVENTS as u64 * times_counted, "{kind}");
                assert_eq!(seen, windows, "{kind}");
            } else {
                assert!(
                    counted <= EVENTS as u64 * times_counted && seen <= windows,
                    "{kind} {mode}"
                );
            }
            group.bench_with_input(BenchmarkId::new(kind, mode), &2, |b, &workers| {
                b.iter(|| {
                    run_to_completion(
                        Arc::clone(&topology),
                        input.clone(),
                        dir.path(),
                        workers,
                        100,
                    )
                    .expect("run")
                });
            });
        }
    }
    group.finish();
}

/// The same readings ten times as dense in event time (20 s of it, a reading per key and
/// second), with emit final: each window holds more readings, and fewer close, so that
/// the cost of folding shows rather than that of writing closed windows.
fn dense_window_kinds(c: &mut Criterion) {
    let input = input(10);
    let dir = tempfile::tempdir().expect("temporary state directory");
    let hopping = HoppingWindows::of(Duration::from_secs(60)).advance_by(Duration::from_secs(10));
    let measured = [
        (
            "tumbling",
            counting(TumblingWindows::of(Duration::from_secs(60)), true),
        ),
        ("hopping", counting(hopping, true)),
        (
            "hopping without slices",
            counting_without_merge(hopping, true),
        ),
    ];
    let mut group = c.benchmark_group("window_kinds_dense_10k_keys");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (kind, topology) in measured {
        group.bench_function(BenchmarkId::new(kind, "emit final"), |b| {
            b.iter(|| {
                run_to_completion(Arc::clone(&topology), input.clone(), dir.path(), 2, 100)
                    .expect("run")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, window_kinds, dense_window_kinds);
criterion_main!(benches);
