//! The end-to-end check both brokers go through: `shop produce` publishes generated
//! orders, `shop run` runs as its own process, and every view, the output topic and the
//! metrics are checked against an independent computation from the same generator.

use serde_json::{Value, json};

use super::orders::{
    Expected, add_sentinels, assert_views, distinct_ids, expected, order_line_ids,
    produce_orders_through,
};
use super::{
    DEADLINE, ShopProcess, free_port, get_json, get_text, metric_sum, order_partitions,
    orders_processed, read_topic_until, shop_binary, wait_for,
};

/// A `shop run` that has read every generated order and whose views matched.
pub struct CheckedRun {
    pub run: ShopProcess,
    pub base: String,
    pub want: Expected,
    /// Records on `inventory-events`: one per order line, and the saga's results.
    pub written: usize,
    pub state: tempfile::TempDir,
}

/// How `shop` reaches the broker: a listener and the client flags it needs there (a
/// secured listener takes `--kafka-config`), and the group it commits to.
pub struct ShopAccess<'a> {
    pub brokers: &'a str,
    pub flags: &'a [&'a str],
    pub group: &'a str,
}

/// Runs the shop on `brokers` over `events` generated orders (4 partitions, 2 workers)
/// and checks everything it answers; the run is left running for more checks.
pub fn shop_matches_an_independent_computation(
    brokers: &str,
    events: u64,
    seed: u64,
) -> CheckedRun {
    let access = ShopAccess {
        brokers,
        flags: &[],
        group: "shop",
    };
    shop_matches_through(&access, brokers, events, seed)
}

/// The same check with `shop produce` and `shop run` going through `access`, while the
/// test's own clients read and write through `plaintext`.
pub fn shop_matches_through(
    access: &ShopAccess<'_>,
    plaintext: &str,
    events: u64,
    seed: u64,
) -> CheckedRun {
    let brokers = plaintext;
    let shop = shop_binary();
    produce_orders_through(&shop, access.brokers, access.flags, events, seed);

    let http_port = free_port();
    let state = tempfile::tempdir().expect("state dir");
    let state_dir = state.path().display().to_string();
    let http = format!("127.0.0.1:{http_port}");
    let mut args = vec![
        "run",
        "--brokers",
        access.brokers,
        "--group",
        access.group,
        "--state-dir",
        &state_dir,
        "--http",
        &http,
        "--workers",
        "2",
        "--partitions",
        "4",
        "--report-interval-ms",
        "200",
    ];
    args.extend_from_slice(access.flags);
    let mut run = ShopProcess::spawn(&shop, &args);
    let base = format!("http://127.0.0.1:{http_port}");

    // Lag 0 on every partition, and every event read (Tansu's high watermark can read low,
    // so the processed count is what proves the input was consumed).
    wait_for(&mut run, &base, "/status", |status| {
        let partitions = order_partitions(status);
        partitions.len() == 4
            && partitions.iter().all(|p| p["lag"] == json!(0))
            && orders_processed(status) == events
    });
    let mut want = expected(events, seed);
    add_sentinels(brokers, &mut want);
    assert_views(&mut run, &base, &want);

    let views = get_json(&base, "/views").1;
    assert_eq!(views["views"].as_array().map(Vec::len), Some(12), "{views}");
    let (code, missing) = get_json(&base, "/views/nope/x");
    assert_eq!(code, 404, "{missing}");

    // On inventory-events: one event per order line and every saga result the model
    // counts (its views agreed above), each with a unique deterministic id.
    let saga_events = want.saga.event_count();
    let written = want.lines + saga_events;
    let inventory = read_topic_until(brokers, "inventory-events", |found| found.len() >= written);
    assert_eq!(order_line_ids(&inventory).len(), want.lines);
    assert_eq!(distinct_ids(&inventory).len(), written);

    // The metrics count what was read and written. Delivery reports reach the producer a
    // moment after the broker has the records that a reader saw: wait for them.
    // (Orders only: processing reports keep arriving on monitoring-events.)
    let delivered = |metrics: &str| {
        metric_sum(
            metrics,
            "sluice_records_delivered_total{topic=\"inventory-events\"",
        )
    };
    let deadline = std::time::Instant::now() + DEADLINE;
    let metrics = loop {
        let (code, metrics) = get_text(&base, "/metrics");
        assert_eq!(code, 200, "{metrics}");
        if delivered(&metrics) >= written as f64 || std::time::Instant::now() >= deadline {
            break metrics;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let processed = orders_processed(&get_json(&base, "/status").1);
    assert_eq!(
        metric_sum(&metrics, "sluice_records_in_total{topic=\"order-events\""),
        processed as f64,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "sluice_records_out_total{topic=\"inventory-events\"}"
        ),
        written as f64,
        "{metrics}"
    );
    // And the broker acknowledged each of them, counted per partition by delivery reports.
    assert_eq!(delivered(&metrics), written as f64, "{metrics}");
    assert_eq!(
        metric_sum(&metrics, "sluice_consumer_lag{topic=\"order-events\""),
        0.0,
        "{metrics}"
    );
    // The views showed final windows, so a committed checkpoint made them visible, and
    // each was timed from its close point to that commit.
    assert!(
        metric_sum(&metrics, "sluice_window_close_latency_seconds_count") >= 1.0,
        "{metrics}"
    );

    // The shop reads its own processing reports from the broker: its health view shows
    // exactly the inventory events it emitted, and no failure.
    let health: Value = wait_for(&mut run, &base, "/views/component_health/shop", |body| {
        body["value"]["emitted"] == json!(written)
            && body["value"]["processed"].as_u64() >= Some(events)
    });
    assert_eq!(health["value"]["failed"], json!(0), "{health}");
    assert!(health["value"]["last_seen"].is_string(), "{health}");

    CheckedRun {
        run,
        base,
        want,
        written,
        state,
    }
}
