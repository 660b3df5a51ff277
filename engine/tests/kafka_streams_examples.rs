//! The windowing examples of Kafka Streams' documentation (the Javadoc of `TimeWindows`,
//! `SlidingWindows` and `SessionWindows`), reproduced through the test driver: each test
//! pipes the example's records and asserts the windows the documentation lists.
//!
//! Kafka Streams writes sliding and session windows with an inclusive end; Sluice's bounds
//! are half-open, so its `end` is the documentation's end plus one.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice::dsl::{
    HoppingWindows, SessionWindows, SlidingWindows, Source, TopologyFn, TumblingWindows, Windowing,
};
use sluice::testkit::TopologyTestDriver;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    key: String,
    value: u64,
    at: i64,
}

/// The values of a window, in order: a set, which folds and merges in any order.
fn values() -> Vec<u64> {
    Vec::new()
}

fn add(values: &mut Vec<u64>, reading: &Reading) {
    values.push(reading.value);
    values.sort_unstable();
}

fn merge(values: &mut Vec<u64>, other: &Vec<u64>) {
    values.extend(other);
    values.sort_unstable();
}

/// A topology that collects the values of each window of `windows`: into the view
/// `windows` and the topic `changes` on every update, and into the topic `finals` once each
/// window closes. It also keeps each built-in aggregation of the values in a view of its
/// name (`count`, `sum`, `min`, `max`, `avg`).
fn collecting<W: Windowing + Copy + Send + Sync + 'static>(windows: W) -> TopologyFn {
    Arc::new(move |topology| {
        let windowed = topology
            .source(source())
            .key_by("key", |reading| reading.key.clone())
            .window(windows);
        let number = |reading: &Reading| reading.value as f64;
        windowed.count().materialize("count");
        windowed.sum(number).materialize("sum");
        windowed.min(number).materialize("min");
        windowed.max(number).materialize("max");
        windowed.avg(number).materialize("avg");
        let updated = windowed.aggregate_with_merge(values, add, merge);
        updated.materialize("windows");
        updated.changes().to("changes");
        windowed
            .emit_final()
            .aggregate_with_merge(values, add, merge)
            .changes()
            .to("finals");
    })
}

/// The late record at `at` was written once, as it was read, naming every aggregation:
/// the seven of [`collecting`] share their windows, so it is late for all or none.
fn assert_late_once_for_every_aggregation(driver: &mut TopologyTestDriver, at: i64) {
    let late = driver.read_output("readings.late").expect("late");
    assert_eq!(late.len(), 1, "the input record once: {late:?}");
    assert_eq!(late[0].value["at"], at);
    let views: Vec<&str> = late[0].headers["sluice-late-views"].split(',').collect();
    assert_eq!(views.len(), AGGREGATIONS, "{views:?}");
    for view in ["count", "sum", "min", "max", "avg", "windows"] {
        assert!(views.contains(&view), "{view} in {views:?}");
    }
}

fn source() -> Source<Reading> {
    // A grace of 10 ms, so that the examples' records may come in their documented order.
    Source::<Reading>::topic("readings")
        .event_time(|reading| reading.at)
        .grace(Duration::from_millis(10))
}

fn pipe(driver: &mut TopologyTestDriver, key: &str, value: u64, at: i64) {
    let reading = Reading {
        key: key.to_string(),
        value,
        at,
    };
    driver
        .pipe_input("readings", key, &reading, at)
        .expect("piped");
}

/// Each window of a view as `(key, start, end, final, values)`.
fn windows(view: &Value) -> Vec<(String, i64, i64, bool, Vec<u64>)> {
    view.as_array()
        .expect("a windowed view")
        .iter()
        .map(|window| {
            (
                window["key"].as_str().unwrap_or_default().to_string(),
                window["start"].as_i64().unwrap_or(i64::MIN),
                window["end"].as_i64().unwrap_or(i64::MIN),
                window["final"].as_bool().unwrap_or(false),
                serde_json::from_value(window["value"].clone()).unwrap_or_default(),
            )
        })
        .collect()
}

/// The final windows written to `finals`, as `(key, start, end, values)`.
fn finals(driver: &mut TopologyTestDriver) -> Vec<(String, i64, i64, Vec<u64>)> {
    driver
        .read_output("finals")
        .expect("output")
        .into_iter()
        .map(|event| {
            (
                event.key,
                event.value["window"]["start"].as_i64().unwrap_or(i64::MIN),
                event.value["window"]["end"].as_i64().unwrap_or(i64::MIN),
                serde_json::from_value(event.value["new"].clone()).unwrap_or_default(),
            )
        })
        .collect()
}

/// An aggregation of a window's values, computed directly.
type Rule = fn(&[u64]) -> f64;

/// How many windowed aggregations [`collecting`] makes.
const AGGREGATIONS: usize = 7;

/// Each built-in aggregation's view holds, for every window, that aggregation of the
/// window's values.
fn assert_built_ins_agree(driver: &mut TopologyTestDriver) {
    let collected = windows(&driver.view("windows").expect("view"));
    assert!(!collected.is_empty());
    let rules: [(&str, Rule); 5] = [
        ("count", |values| values.len() as f64),
        ("sum", |values| values.iter().sum::<u64>() as f64),
        ("min", |values| {
            values.iter().copied().min().unwrap_or(0) as f64
        }),
        ("max", |values| {
            values.iter().copied().max().unwrap_or(0) as f64
        }),
        ("avg", |values| {
            values.iter().sum::<u64>() as f64 / values.len() as f64
        }),
    ];
    for (name, rule) in rules {
        let view: Value = driver.view(name).expect("view");
        let got: Vec<(String, i64, i64, bool, f64)> = view
            .as_array()
            .expect("a windowed view")
            .iter()
            .map(|window| {
                (
                    window["key"].as_str().unwrap_or_default().to_string(),
                    window["start"].as_i64().unwrap_or(i64::MIN),
                    window["end"].as_i64().unwrap_or(i64::MIN),
                    window["final"].as_bool().unwrap_or(false),
                    window["value"].as_f64().unwrap_or(f64::NAN),
                )
            })
            .collect();
        let want: Vec<(String, i64, i64, bool, f64)> = collected
            .iter()
            .map(|(key, start, end, is_final, values)| {
                (key.clone(), *start, *end, *is_final, rule(values))
            })
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

fn window(
    key: &str,
    start: i64,
    end: i64,
    is_final: bool,
    values: &[u64],
) -> (String, i64, i64, bool, Vec<u64>) {
    (key.to_string(), start, end, is_final, values.to_vec())
}

fn final_window(key: &str, start: i64, end: i64, values: &[u64]) -> (String, i64, i64, Vec<u64>) {
    (key.to_string(), start, end, values.to_vec())
}

/// `TimeWindows`: "hopping windows with size of 5000ms and advance of 3000ms, have window
/// boundaries [0;5000),[3000;8000),...". A record at 4000 is in the first two.
#[test]
fn hopping_windows_have_the_documented_boundaries() {
    let topology = collecting(
        HoppingWindows::of(Duration::from_millis(5_000)).advance_by(Duration::from_millis(3_000)),
    );
    let mut driver = TopologyTestDriver::new(topology).expect("driver");
    pipe(&mut driver, "A", 1, 4_000);
    pipe(&mut driver, "A", 2, 6_500);
    // The watermark is 6,490 (the source's grace is 10 ms): the first window has closed.
    assert_eq!(
        windows(&driver.view("windows").expect("view")),
        vec![
            window("A", 0, 5_000, true, &[1]),
            window("A", 3_000, 8_000, false, &[1, 2]),
            window("A", 6_000, 11_000, false, &[2]),
        ]
    );
    assert_eq!(finals(&mut driver), vec![final_window("A", 0, 5_000, &[1])]);
    driver.advance_watermark(8_000);
    assert_eq!(
        finals(&mut driver),
        vec![final_window("A", 3_000, 8_000, &[1, 2])]
    );
    driver.advance_watermark(11_000);
    assert_eq!(
        finals(&mut driver),
        vec![final_window("A", 6_000, 11_000, &[2])]
    );
    assert_built_ins_agree(&mut driver);
}

/// `TimeWindows` with the advance equal to the size: tumbling windows, one per record.
#[test]
fn tumbling_windows_hold_each_record_once() {
    let topology = collecting(TumblingWindows::of(Duration::from_millis(5_000)));
    let mut driver = TopologyTestDriver::new(topology).expect("driver");
    for (value, at) in [(1, 0), (2, 4_999), (3, 5_000), (4, 12_000)] {
        pipe(&mut driver, "A", value, at);
    }
    driver.advance_watermark(15_000);
    assert_eq!(
        windows(&driver.view("windows").expect("view")),
        vec![
            window("A", 0, 5_000, true, &[1, 2]),
            window("A", 5_000, 10_000, true, &[3]),
            window("A", 10_000, 15_000, true, &[4]),
        ]
    );
    assert_built_ins_agree(&mut driver);
}

/// `SlidingWindows`: "if we have a time difference of 5000ms and the following data
/// arrives: A 1 8000, A 2 9200, A 3 12400, we'd have the following 5 windows: [3000;8000]
/// contains [1], [4200;9200] contains [1,2], [7400;12400] contains [1,2,3], [8001;13001]
/// contains [2,3], [9201;14201] contains [3]".
#[test]
fn sliding_windows_are_the_five_documented_ones() {
    let topology = collecting(SlidingWindows::with_time_difference(Duration::from_millis(
        5_000,
    )));
    let mut driver = TopologyTestDriver::new(topology).expect("driver");
    for (value, at) in [(1, 8_000), (2, 9_200), (3, 12_400)] {
        pipe(&mut driver, "A", value, at);
    }
    let documented = [
        (3_000, 8_000, vec![1]),
        (4_200, 9_200, vec![1, 2]),
        (7_400, 12_400, vec![1, 2, 3]),
        (8_001, 13_001, vec![2, 3]),
        (9_201, 14_201, vec![3]),
    ];
    // The watermark is 12,390: the windows that end by then have closed.
    assert_eq!(
        windows(&driver.view("windows").expect("view")),
        documented
            .iter()
            .map(|(start, end, values)| window("A", *start, end + 1, *end < 12_390, values))
            .collect::<Vec<_>>()
    );
    driver.advance_watermark(20_000);
    assert_eq!(
        finals(&mut driver),
        documented
            .iter()
            .map(|(start, end, values)| final_window("A", *start, end + 1, values))
            .collect::<Vec<_>>()
    );
    assert_built_ins_agree(&mut driver);
}

/// `SessionWindows`: "if we have a session gap of 5 and the following data arrives: A 1
/// 10, A 2 12, A 3 20, we'd have 2 sessions for key A: one starting from time 10 and
/// ending at time 12 and another starting and ending at time 20. If we then received
/// another record: A 4 16, the previous 2 sessions would be merged into a single session
/// with start time 10 and end time 20."
#[test]
fn sessions_merge_as_documented() {
    let topology = collecting(SessionWindows::with_inactivity_gap(Duration::from_millis(
        5,
    )));
    let mut driver = TopologyTestDriver::new(topology).expect("driver");
    for (value, at) in [(1, 10), (2, 12), (3, 20)] {
        pipe(&mut driver, "A", value, at);
    }
    assert_eq!(
        windows(&driver.view("windows").expect("view")),
        vec![
            window("A", 10, 13, false, &[1, 2]),
            window("A", 20, 21, false, &[3]),
        ]
    );
    driver.read_output("changes").expect("output");
    pipe(&mut driver, "A", 4, 16);
    assert_eq!(
        windows(&driver.view("windows").expect("view")),
        vec![window("A", 10, 21, false, &[1, 2, 3, 4])]
    );
    // The session at 20 is removed, and the one at 10 grows.
    let changes: Vec<(i64, i64, bool, Vec<u64>)> = driver
        .read_output("changes")
        .expect("output")
        .into_iter()
        .map(|event| {
            (
                event.value["window"]["start"].as_i64().unwrap_or_default(),
                event.value["window"]["end"].as_i64().unwrap_or_default(),
                event.value["removed"].as_bool().unwrap_or(false),
                serde_json::from_value(event.value["new"].clone()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![(20, 21, true, vec![3]), (10, 21, false, vec![1, 2, 3, 4])]
    );
    assert!(finals(&mut driver).is_empty(), "the session is open");
    // It closes once the watermark passes its last record plus the gap.
    driver.advance_watermark(25);
    assert!(
        finals(&mut driver).is_empty(),
        "20 + 5 is still within the gap"
    );
    driver.advance_watermark(26);
    assert_eq!(
        finals(&mut driver),
        vec![final_window("A", 10, 21, &[1, 2, 3, 4])]
    );
    assert_built_ins_agree(&mut driver);
}

/// `TimeWindows.ofSizeAndGrace`: "records that come after set grace period will be
/// ignored, i.e., a window is closed when stream-time > window-end + grace-period". Here a
/// window of 10 s with a grace of 5 s, on a source with a grace of its own of 10 ms.
#[test]
fn a_window_takes_records_until_its_grace_has_passed() {
    let topology =
        collecting(TumblingWindows::of(Duration::from_secs(10)).grace(Duration::from_secs(5)));
    let mut driver = TopologyTestDriver::new(topology).expect("driver");
    pipe(&mut driver, "A", 1, 1_000);
    pipe(&mut driver, "A", 2, 12_000);
    // 10 s past the window's end, within its grace: it still counts.
    pipe(&mut driver, "A", 3, 2_000);
    assert!(finals(&mut driver).is_empty());
    pipe(&mut driver, "A", 4, 15_010);
    // The watermark is now 15,000, the window's end plus its grace: it has closed.
    pipe(&mut driver, "A", 5, 3_000);
    assert_eq!(
        finals(&mut driver),
        vec![final_window("A", 0, 10_000, &[1, 3])]
    );
    assert_late_once_for_every_aggregation(&mut driver, 3_000);
    assert_eq!(
        windows(&driver.view("windows").expect("view")),
        vec![
            window("A", 0, 10_000, true, &[1, 3]),
            window("A", 10_000, 20_000, false, &[2, 4]),
        ]
    );
    assert_built_ins_agree(&mut driver);
}

/// `SessionWindows.ofInactivityGapAndGrace`: a session stays open for its grace after the
/// gap has passed.
#[test]
fn a_session_takes_records_until_its_grace_has_passed() {
    let topology = collecting(
        SessionWindows::with_inactivity_gap(Duration::from_millis(5))
            .grace(Duration::from_millis(20)),
    );
    let mut driver = TopologyTestDriver::new(topology).expect("driver");
    pipe(&mut driver, "A", 1, 10);
    pipe(&mut driver, "A", 2, 50);
    // The watermark is 40, and the session at 10 closes at 10 + 1 + 5 + 20 = 36.
    assert_eq!(finals(&mut driver), vec![final_window("A", 10, 11, &[1])]);
    // A record is on time while its instant plus the grace has not passed: 22 and 20 are
    // (20 + 1 + 20 > 40) and make one session; 19 is late.
    pipe(&mut driver, "A", 3, 22);
    pipe(&mut driver, "A", 4, 20);
    pipe(&mut driver, "A", 5, 19);
    driver.advance_watermark(100);
    assert_eq!(
        finals(&mut driver),
        vec![
            final_window("A", 20, 23, &[3, 4]),
            final_window("A", 50, 51, &[2]),
        ]
    );
    assert_late_once_for_every_aggregation(&mut driver, 19);
    assert_built_ins_agree(&mut driver);
}
