//! The end of a catch-up opens a checkpoint, on rdkafka's in-process MOCK cluster (a
//! development broker, used here for speed): an engine whose checkpoint interval is an hour
//! shows every preloaded record in its views as soon as it has read them, and counts them
//! as an independent count of what was produced says. Its start-up goes through every
//! phase in order, and the catch-up's end ends it.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sluice::dsl::{Source, TopologyFn, TumblingWindows};
use sluice::runtime::start;

use common::readings::{
    Reading, produce_readings, readings_cluster, readings_engine_config, windows_by_start,
};
use common::{checkpointed, wait_for};

const WINDOW_MS: i64 = 10_000;
const PARTITIONS: i32 = 2;
/// Readings per partition, one a second of event time.
const SECONDS: i64 = 300;

fn topology() -> TopologyFn {
    Arc::new(|topology| {
        topology
            .source(
                Source::<Reading>::topic("readings")
                    .event_time(|reading| reading.at)
                    .grace(Duration::from_secs(1)),
            )
            .key_by("sensor", |_| "all".to_string())
            .window(TumblingWindows::of(Duration::from_millis(WINDOW_MS as u64)))
            .count()
            .materialize("counts");
    })
}

/// Window start → count of the `counts` view.
fn counts(view: &Value) -> BTreeMap<i64, u64> {
    windows_by_start(view)
        .into_iter()
        .filter_map(|(start, window)| Some((start, window["value"].as_u64()?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preloaded_topic_is_checkpointed_once_read_without_waiting_for_the_interval() {
    let cluster = readings_cluster(PARTITIONS);
    let brokers = cluster.bootstrap_servers();
    let mut want = BTreeMap::new();
    for partition in 0..PARTITIONS {
        produce_readings(&brokers, partition, 0, SECONDS);
        for second in 0..SECONDS {
            *want
                .entry(second * 1_000 / WINDOW_MS * WINDOW_MS)
                .or_insert(0) += 1;
        }
    }

    let state = tempfile::tempdir().expect("state dir");
    let mut config = readings_engine_config(&brokers, PARTITIONS, state.path());
    // No interval checkpoint comes within the test: only the end of the catch-up opens
    // one. Any lag counts as a catch-up, so that a fast read still makes one.
    config.checkpoint_interval = Duration::from_secs(3_600);
    config.catch_up_stretch = Duration::ZERO;
    let engine = start(config, topology()).await.expect("engine starts");

    let produced = i64::from(PARTITIONS) * SECONDS;
    let status = wait_for(&engine, "/status", |status| {
        checkpointed(status) == produced
    })
    .await;
    // The start-up went through every phase, in order, and ended with the catch-up.
    let phases: Vec<&str> = status["phases"]
        .as_array()
        .map(|phases| {
            phases
                .iter()
                .filter_map(|entered| entered["phase"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        phases,
        [
            "opening_state",
            "connecting",
            "restoring",
            "catching_up",
            "running"
        ],
        "{status}"
    );
    let view = wait_for(&engine, "/views/counts/all", |view| {
        !counts(view).is_empty()
    })
    .await;
    assert_eq!(counts(&view), want);
    engine.shutdown();
    engine.join().await.expect("a clean stop");
}
