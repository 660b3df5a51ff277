//! The monitoring topology through the test driver: processing reports of two components,
//! over two minutes and two partitions, in the throughput and health views, against sums
//! computed here from the same reports.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sluice::monitoring::{MONITORING_TOPIC, ProcessingReport};
use sluice::testkit::TopologyTestDriver;
use sluice::time::format_millis;
use sluice_topologies::monitoring::monitoring;

const BASE: i64 = 1_705_314_600_000; // 2024-01-15T10:30:00Z, a minute boundary
const MINUTE: i64 = 60_000;

/// `(component, partition, interval end in seconds after BASE, processed, emitted, failed)`.
const REPORTS: [(&str, i32, i64, u64, u64, u64); 7] = [
    ("shop", 0, 10, 100, 120, 1),
    ("shop", 1, 10, 80, 90, 0),
    ("http-producer", 0, 15, 1, 1, 0),
    ("shop", 0, 20, 50, 55, 2),
    ("shop", 1, 70, 30, 31, 0),
    ("http-producer", 1, 75, 1, 1, 0),
    ("shop", 0, 80, 10, 10, 0),
];

fn report(
    &(component, partition, end, processed, emitted, failed): &(&str, i32, i64, u64, u64, u64),
) -> ProcessingReport {
    let end = BASE + end * 1000;
    ProcessingReport::new(
        component,
        "order-events",
        partition,
        (end - 10_000, end),
        (processed, emitted, failed),
    )
}

/// Processed, emitted, failed, reports, and the latest interval end.
type WindowSums = (u64, u64, u64, u64, i64);

#[test]
fn reports_become_throughput_windows_and_component_health() {
    let mut driver = TopologyTestDriver::new(Arc::new(monitoring))
        .expect("driver")
        .with_partitions(MONITORING_TOPIC, 2);
    for entry in &REPORTS {
        let report = report(entry);
        let at = BASE + entry.2 * 1000;
        driver
            .pipe_input_to(MONITORING_TOPIC, entry.1 as usize, entry.0, &report, at)
            .expect("pipe");
    }

    // The windows: per component and minute, sums of the reports that ended in it.
    let mut windows: BTreeMap<(String, i64), WindowSums> = BTreeMap::new();
    let mut health: BTreeMap<String, (u64, u64, u64, i64)> = BTreeMap::new();
    for &(component, _, end, processed, emitted, failed) in &REPORTS {
        let end = BASE + end * 1000;
        let start = end - end.rem_euclid(MINUTE);
        let window = windows.entry((component.to_string(), start)).or_default();
        window.0 += processed;
        window.1 += emitted;
        window.2 += failed;
        window.3 += 1;
        window.4 = window.4.max(end);
        let component = health.entry(component.to_string()).or_default();
        component.0 += processed;
        component.1 += emitted;
        component.2 += failed;
        component.3 = component.3.max(end);
    }
    let view = driver.view("component_throughput").expect("view");
    let found: Vec<(String, i64, Value)> = view
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| {
            (
                w["key"].as_str().expect("key").to_string(),
                w["start"].as_i64().expect("start"),
                w["value"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, i64, Value)> = windows
        .iter()
        .map(
            |((component, start), (processed, emitted, failed, reports, last))| {
                (
                    component.clone(),
                    *start,
                    json!({"processed": processed, "emitted": emitted, "failed": failed,
                       "reports": reports, "last_report_ms": last}),
                )
            },
        )
        .collect();
    assert_eq!(found, expected);

    let table = driver.view("component_health").expect("view");
    for (component, (processed, emitted, failed, last)) in &health {
        let value = &table[component];
        assert_eq!(value["processed"], *processed, "{component}: {value}");
        assert_eq!(value["emitted"], *emitted);
        assert_eq!(value["failed"], *failed);
        assert_eq!(value["last_seen"], format_millis(*last));
        assert_eq!(
            value["error_rate_pct"],
            100.0 * *failed as f64 / *processed as f64
        );
    }
    assert_eq!(table.as_object().expect("table").len(), health.len());
}

#[test]
fn a_report_that_cannot_be_read_goes_to_the_dead_letter_topic() {
    let mut driver = TopologyTestDriver::new(Arc::new(monitoring)).expect("driver");
    driver.pipe_raw(
        MONITORING_TOPIC,
        0,
        b"{\"event_type\":\"ProcessingReport\"}",
        BASE,
    );
    let dead = driver
        .read_output(&format!("{MONITORING_TOPIC}.dlq"))
        .expect("read");
    assert_eq!(dead.len(), 1);
    assert_eq!(driver.view("component_health").expect("view"), json!({}));
}
