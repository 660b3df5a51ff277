//! A reference-model property test of tumbling windows, through the
//! `TopologyTestDriver` as a user would test a topology: random streams of readings over
//! several keys and partitions, out of order within the grace and some of them late,
//! piped in random chunks (each chunk a step that ends at a checkpoint). The driver's
//! views, its emit-final output and its late records must equal a small reference
//! implementation of the rules, written below:
//! - a partition's watermark is the largest event time it has seen minus the grace;
//! - a record is late when its window ends at or before its partition's watermark after
//!   it: it is counted nowhere and written once to `<topic>.late`, naming the views it
//!   missed (`updated` among them only past its allowed lateness);
//! - a window is final once every partition's watermark has reached its end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice::dsl::{Source, TopologyFn, TumblingWindows};
use sluice::testkit::TopologyTestDriver;
use sluice::window::LatePolicy;

const WINDOW_MS: i64 = 1_000;
const GRACE_MS: i64 = 300;
const PARTITIONS: usize = 3;
/// The windowed aggregations of [`topology`] that drop every late record.
const AGGREGATIONS: usize = 3;

/// A late record as the reference writes it: sensor, event time, how many views it
/// missed, and whether `updated` is among them.
type LateRecord = (String, i64, usize, bool);
/// How long the `updated` aggregation keeps closed windows for late records.
const ALLOWED_LATENESS_MS: i64 = 400;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    at: i64,
    value: i64,
}

fn topology() -> TopologyFn {
    Arc::new(|topology| {
        let windowed = topology
            .source(
                Source::<Reading>::topic("readings")
                    .event_time(|reading| reading.at)
                    .grace(Duration::from_millis(GRACE_MS as u64)),
            )
            .key_by("sensor", |reading| reading.sensor.clone())
            .window(TumblingWindows::of(Duration::from_millis(WINDOW_MS as u64)));
        windowed.count().materialize("counts");
        windowed
            .max(|reading| reading.value as f64)
            .materialize("peaks");
        windowed.count().emit_final().changes().to("final-counts");
        windowed
            .on_late(LatePolicy::Update {
                allowed_lateness: Duration::from_millis(ALLOWED_LATENESS_MS as u64),
            })
            .count()
            .materialize("updated");
    })
}

/// One piped reading: its partition, sensor, and event time.
#[derive(Debug, Clone)]
struct Piped {
    partition: usize,
    sensor: usize,
    at: i64,
    value: i64,
}

/// Readings whose times drift forward with jitter of up to twice the grace backwards, so
/// that some are out of order within the grace and some are late, and with each partition
/// behind the others by its own lag, so that a record can be late on its partition while
/// its window is still open on another.
fn stream() -> impl Strategy<Value = (Vec<Piped>, Vec<usize>)> {
    let reading = (
        0..PARTITIONS,
        0..4_usize,
        0..200_i64,
        -600..0_i64,
        -50..50_i64,
    );
    (
        proptest::collection::vec(reading, 1..120),
        proptest::collection::vec(1..40_usize, 1..8),
        proptest::collection::vec(0..900_i64, PARTITIONS),
    )
        .prop_map(|(raw, chunks, lags)| {
            let mut clock = 0;
            let readings = raw
                .into_iter()
                .map(|(partition, sensor, step, jitter, value)| {
                    clock += step;
                    Piped {
                        partition,
                        sensor,
                        at: (clock + jitter - lags[partition]).max(0),
                        value,
                    }
                })
                .collect();
            (readings, chunks)
        })
}

/// What the rules say: per (sensor, window start) the count and maximum of the records
/// that were not late, whether the window is final, and the late records.
struct Reference {
    windows: BTreeMap<(String, i64), (u64, i64, bool)>,
    /// The `updated` aggregation: counts including late records within the allowed
    /// lateness.
    updated: BTreeMap<(String, i64), u64>,
    late: Vec<LateRecord>,
}

fn reference(readings: &[Piped], final_watermark_floor: i64) -> Reference {
    let mut max_seen: BTreeMap<usize, i64> = BTreeMap::new();
    let mut windows: BTreeMap<(String, i64), (u64, i64, bool)> = BTreeMap::new();
    let mut updated: BTreeMap<(String, i64), u64> = BTreeMap::new();
    let mut late = Vec::new();
    for reading in readings {
        let seen = max_seen.entry(reading.partition).or_insert(reading.at);
        *seen = (*seen).max(reading.at);
        let watermark = (*seen - GRACE_MS).max(0);
        let start = reading.at - reading.at.rem_euclid(WINDOW_MS);
        let sensor = format!("sensor_{}", reading.sensor);
        let past_allowed_lateness = start + WINDOW_MS + ALLOWED_LATENESS_MS <= watermark;
        if !past_allowed_lateness {
            *updated.entry((sensor.clone(), start)).or_default() += 1;
        }
        if start + WINDOW_MS <= watermark {
            // Written once, naming every view it missed.
            let missed = AGGREGATIONS + usize::from(past_allowed_lateness);
            late.push((sensor.clone(), reading.at, missed, past_allowed_lateness));
            continue;
        }
        let entry = windows
            .entry((sensor, start))
            .or_insert((0, i64::MIN, false));
        entry.0 += 1;
        entry.1 = entry.1.max(reading.value);
    }
    // Partitions that saw nothing stand at the floor the test advanced every partition to.
    let stream_watermark = (0..PARTITIONS)
        .map(|partition| {
            max_seen
                .get(&partition)
                .map_or(0, |seen| (seen - GRACE_MS).max(0))
                .max(final_watermark_floor)
        })
        .min()
        .unwrap_or(0);
    for ((_, start), entry) in windows.iter_mut() {
        entry.2 = start + WINDOW_MS <= stream_watermark;
    }
    late.sort();
    Reference {
        windows,
        updated,
        late,
    }
}

fn view_windows(view: &Value) -> BTreeMap<(String, i64), (Value, bool)> {
    view.as_array()
        .into_iter()
        .flatten()
        .map(|window| {
            (
                (
                    window["key"].as_str().unwrap_or("").to_string(),
                    window["start"].as_i64().unwrap_or(-1),
                ),
                (
                    window["value"].clone(),
                    window["final"].as_bool().unwrap_or(false),
                ),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn the_driver_agrees_with_the_reference((readings, chunks) in stream(), floor in 0..20_000_i64) {
        let mut driver = TopologyTestDriver::new(topology())
            .expect("driver")
            .with_partitions("readings", PARTITIONS);
        let mut late = Vec::new();
        let mut finals: BTreeMap<(String, i64), u64> = BTreeMap::new();
        let mut next = 0;
        for chunk in chunks.iter().cycle() {
            if next >= readings.len() {
                break;
            }
            for reading in &readings[next..(next + chunk).min(readings.len())] {
                let piped = Reading {
                    sensor: format!("sensor_{}", reading.sensor),
                    at: reading.at,
                    value: reading.value,
                };
                driver
                    .pipe_input_to("readings", reading.partition, &piped.sensor, &piped, piped.at)
                    .expect("piped");
            }
            next += chunk;
            // Each chunk is a step: its output is read now.
            for event in driver.read_output("readings.late").expect("late") {
                let views: Vec<&str> = event.headers["sluice-late-views"].split(',').collect();
                late.push((
                    event.value["sensor"].as_str().unwrap_or("").to_string(),
                    event.value["at"].as_i64().unwrap_or(-1),
                    views.len(),
                    views.contains(&"updated"),
                ));
            }
            for event in driver.read_output("final-counts").expect("finals") {
                let start = event.value["window"]["start"].as_i64().unwrap_or(-1);
                let previous = finals.insert((event.key, start), event.value["new"].as_u64().unwrap_or(0));
                prop_assert!(previous.is_none(), "a window was sent final twice");
            }
        }
        driver.advance_watermark(floor);
        for event in driver.read_output("final-counts").expect("finals") {
            let start = event.value["window"]["start"].as_i64().unwrap_or(-1);
            let previous = finals.insert((event.key, start), event.value["new"].as_u64().unwrap_or(0));
            prop_assert!(previous.is_none(), "a window was sent final twice");
        }
        late.sort();

        let want = reference(&readings, floor);
        let counts = view_windows(&driver.view("counts").expect("view"));
        let peaks = view_windows(&driver.view("peaks").expect("view"));
        let want_counts: BTreeMap<(String, i64), (Value, bool)> = want
            .windows
            .iter()
            .map(|(window, (count, _, is_final))| (window.clone(), (Value::from(*count), *is_final)))
            .collect();
        let want_peaks: BTreeMap<(String, i64), (Value, bool)> = want
            .windows
            .iter()
            .map(|(window, (_, peak, is_final))| (window.clone(), (Value::from(*peak as f64), *is_final)))
            .collect();
        prop_assert_eq!(counts, want_counts);
        let updated: BTreeMap<(String, i64), u64> = view_windows(&driver.view("updated").expect("view"))
            .into_iter()
            .map(|(window, (count, _))| (window, count.as_u64().unwrap_or(0)))
            .collect();
        prop_assert_eq!(updated, want.updated.clone());
        prop_assert_eq!(peaks, want_peaks);
        prop_assert_eq!(late, want.late);
        let want_finals: BTreeMap<(String, i64), u64> = want
            .windows
            .iter()
            .filter(|(_, (_, _, is_final))| *is_final)
            .map(|(window, (count, _, _))| (window.clone(), *count))
            .collect();
        prop_assert_eq!(finals, want_finals);
    }
}
