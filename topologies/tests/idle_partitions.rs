//! Idle partitions on rdkafka's in-process mock cluster (a development broker, used here
//! for speed), with two partitions read by two workers, one each:
//! - one partition goes quiet while the other goes on: after the idle timeout the quiet
//!   one stops holding the watermark back, and the windows close;
//! - with an idle timeout longer than the test, the quiet partition holds them open;
//! - both go quiet: they catch up with the greater watermark, and then event time stands
//!   still, unless the source moves on with the wall clock, which closes the last windows.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::Value;
use sluice::dsl::{Source, TopologyFn, TumblingWindows};
use sluice::runtime::{RunningEngine, start};

use common::readings::{
    Reading, produce_readings, readings_cluster, readings_engine_config, windows_by_start,
};
use common::{get, wait_for, wait_until_settled};

const WINDOW_MS: i64 = 10_000;
const GRACE_MS: u64 = 1_000;

fn topology(idle_timeout: Duration, wall_clock: bool) -> TopologyFn {
    Arc::new(move |topology| {
        let mut source = Source::<Reading>::topic("readings")
            .event_time(|reading| reading.at)
            .grace(Duration::from_millis(GRACE_MS))
            .idle_timeout(idle_timeout);
        if wall_clock {
            source = source.advance_with_wall_clock();
        }
        topology
            .source(source)
            .key_by("sensor", |_| "all".to_string())
            .window(TumblingWindows::of(Duration::from_millis(WINDOW_MS as u64)))
            .count()
            .materialize("counts");
    })
}

async fn start_engine(brokers: &str, topology: TopologyFn) -> (RunningEngine, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("state dir");
    let mut config = readings_engine_config(brokers, 2, state.path());
    config.checkpoint_interval = Duration::from_millis(50);
    let engine = start(config, topology).await.expect("engine starts");
    (engine, state)
}

/// Window start → (count, final) of the `counts` view.
fn windows(view: &Value) -> BTreeMap<i64, (u64, bool)> {
    windows_by_start(view)
        .into_iter()
        .filter_map(|(start, window)| {
            Some((
                start,
                (window["value"].as_u64()?, window["final"].as_bool()?),
            ))
        })
        .collect()
}

/// The windows `counts` (start, count) as the view must show them once the watermark is
/// `watermark`: final when they end at or before it.
fn closed_up_to(watermark: i64, counts: &[(i64, u64)]) -> BTreeMap<i64, (u64, bool)> {
    counts
        .iter()
        .map(|&(start, count)| (start, (count, start + WINDOW_MS <= watermark)))
        .collect()
}

/// Window start and count when both partitions read until 20 s, then only partition 0
/// until 60 s.
const ONE_PARTITION_GOES_ON: [(i64, u64); 6] = [
    (0, 20),
    (10_000, 20),
    (20_000, 10),
    (30_000, 10),
    (40_000, 10),
    (50_000, 10),
];

/// Both partitions until 20 s, then only partition 0 until 60 s, read by an engine whose
/// source has `idle_timeout`.
async fn one_partition_goes_on(
    idle_timeout: Duration,
) -> (
    MockCluster<'static, DefaultProducerContext>,
    RunningEngine,
    tempfile::TempDir,
) {
    let cluster = readings_cluster(2);
    let brokers = cluster.bootstrap_servers();
    produce_readings(&brokers, 0, 0, 60);
    produce_readings(&brokers, 1, 0, 20);
    let (engine, state) = start_engine(&brokers, topology(idle_timeout, false)).await;
    (cluster, engine, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_partition_stops_holding_windows_open_after_the_idle_timeout() {
    let (_cluster, engine, _state) = one_partition_goes_on(Duration::from_millis(300)).await;
    // Partition 0's watermark is 59 s - grace: every window ending by 58 s closes.
    let want = closed_up_to(59_000 - GRACE_MS as i64, &ONE_PARTITION_GOES_ON);
    let view = wait_for(&engine, "/views/counts/all", |view| windows(view) == want).await;
    assert_eq!(windows(&view), want);
    engine.shutdown();
    engine.join().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_idle_timeout_a_quiet_partition_holds_the_watermark() {
    let (_cluster, engine, _state) = one_partition_goes_on(Duration::from_secs(3_600)).await;
    // Everything read and checkpointed, and twenty more checkpoints on top.
    wait_until_settled(&engine, 80, 20).await;
    // Partition 1 stopped at 19 s: only the window ending by 18 s is closed.
    let want = closed_up_to(19_000 - GRACE_MS as i64, &ONE_PARTITION_GOES_ON);
    assert_eq!(windows(&get(&engine, "/views/counts/all").await), want);
    engine.shutdown();
    engine.join().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_partition_is_quiet_only_the_wall_clock_closes_the_last_windows() {
    // Partition 0 until 20 s, partition 1 only until 8 s.
    let counts = [(0, 18), (10_000, 10)];
    for wall_clock in [false, true] {
        let cluster = readings_cluster(2);
        let brokers = cluster.bootstrap_servers();
        produce_readings(&brokers, 0, 0, 20);
        produce_readings(&brokers, 1, 0, 8);
        let (engine, _state) =
            start_engine(&brokers, topology(Duration::from_millis(300), wall_clock)).await;
        if wall_clock {
            // From 19 s - grace, a second of wall time takes the watermark past 20 s.
            let want = closed_up_to(i64::MAX, &counts);
            wait_for(&engine, "/views/counts/all", |view| windows(view) == want).await;
        } else {
            // Forty checkpoints of 50 ms: well past the idle timeout. Partition 1 caught
            // up with partition 0's 19 s - grace, and there event time stopped.
            wait_until_settled(&engine, 28, 40).await;
            let want = closed_up_to(19_000 - GRACE_MS as i64, &counts);
            assert_eq!(windows(&get(&engine, "/views/counts/all").await), want);
        }
        engine.shutdown();
        engine.join().await.expect("a clean stop");
    }
}
