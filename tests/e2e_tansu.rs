//! End to end against a real Kafka-protocol broker: Tansu with SQLite storage on a free
//! loopback port. `shop produce` publishes 10,000 orders, `shop run` runs as its own
//! process, and every view is checked over HTTP against an independent computation from the
//! same deterministic generator. Ctrl-C must then stop `shop run` cleanly.

mod harness;

use std::collections::{BTreeMap, BTreeSet};

use harness::{ShopProcess, Tansu, free_port, get_json, read_topic, shop_binary, wait_for};
use serde_json::{Value, json};
use sluice::app::GeneratorOptions;
use sluice_topologies::events::OrderStatus;
use sluice_topologies::generator::OrderGenerator;

const EVENTS: u64 = 10_000;
const SEED: u64 = 11;
const START_MS: i64 = 1_705_314_600_000;
const INTERVAL_MS: i64 = 100;
const MINUTE_MS: i64 = 60_000;

#[derive(Clone)]
struct Expected {
    per_minute: BTreeMap<i64, (u64, u64)>,
    demand: BTreeMap<String, BTreeMap<i64, u64>>,
    lines: usize,
    last_event_ms: i64,
}

/// Recomputes the views from the generator's events: events are in event-time order, so
/// none is late.
fn expected() -> Expected {
    let mut generator = OrderGenerator::new(GeneratorOptions {
        seed: SEED,
        failure_rate: 0.05,
        start_ms: START_MS,
        interval_ms: INTERVAL_MS,
    });
    let mut want = Expected {
        per_minute: BTreeMap::new(),
        demand: BTreeMap::new(),
        lines: 0,
        last_event_ms: 0,
    };
    for _ in 0..EVENTS {
        let order = generator.next_order();
        let at = order.timestamp.millis();
        let start = at - at.rem_euclid(MINUTE_MS);
        let counts = want.per_minute.entry(start).or_default();
        counts.0 += 1;
        want.lines += order.items.len();
        want.last_event_ms = at;
        if order.status == OrderStatus::Failed {
            counts.1 += 1;
        } else {
            for line in &order.items {
                *want
                    .demand
                    .entry(line.item_id.clone())
                    .or_default()
                    .entry(start)
                    .or_default() += u64::from(line.quantity);
            }
        }
    }
    want
}

#[test]
fn shop_on_tansu_matches_an_independent_computation() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    let shop = shop_binary();

    let produced = std::process::Command::new(&shop)
        .args([
            "produce",
            "--brokers",
            &brokers,
            "--count",
            &EVENTS.to_string(),
            "--seed",
            &SEED.to_string(),
        ])
        .args([
            "--failure-rate",
            "0.05",
            "--partitions",
            "4",
            "--interval-ms",
            &INTERVAL_MS.to_string(),
        ])
        .output()
        .expect("shop produce runs");
    assert!(
        produced.status.success(),
        "shop produce failed: {}",
        String::from_utf8_lossy(&produced.stderr)
    );

    let http_port = free_port();
    let state = tempfile::tempdir().expect("state dir");
    let mut run = ShopProcess::spawn(
        &shop,
        &[
            "run",
            "--brokers",
            &brokers,
            "--state-dir",
            &state.path().display().to_string(),
            "--http",
            &format!("127.0.0.1:{http_port}"),
            "--workers",
            "2",
            "--partitions",
            "4",
        ],
    );
    let base = format!("http://127.0.0.1:{http_port}");

    // Lag 0 on every partition, and every event read (Tansu's high watermark can read low,
    // so the processed count is what proves the input was consumed).
    wait_for(&mut run, &base, "/status", |status| {
        let partitions = status["partitions"].as_array().cloned().unwrap_or_default();
        partitions.len() == 4
            && partitions.iter().all(|p| p["lag"] == json!(0))
            && status["processed"] == json!(EVENTS)
    });
    let mut want = expected();

    // Event time stops with the input, so the last windows would stay open. One order an
    // hour later on every partition moves the watermark past them, as later traffic would.
    let sentinel_ms = want.last_event_ms + 3_600_000;
    harness::produce_to_partitions(&brokers, "order-events", 4, |partition| {
        json!({"event_type": "OrderPlaced", "order_id": format!("sentinel_{partition}"), "user_id": "user_0",
               "items": [{"item_id": "soda", "quantity": 1, "price": 2.0}], "total_amount": 2.0,
               "status": "placed", "timestamp": sentinel_ms})
        .to_string()
    });
    let sentinel_start = sentinel_ms - sentinel_ms.rem_euclid(MINUTE_MS);
    want.per_minute.insert(sentinel_start, (4, 0));
    want.demand
        .entry("soda".into())
        .or_default()
        .insert(sentinel_start, 4);
    want.lines += 4;

    let expected_counts: Vec<Value> = want
        .per_minute
        .values()
        .map(|(count, failed)| json!({"count": count, "failed": failed}))
        .collect();
    // Every window but the sentinels' closes.
    let finality_holds = move |windows: &[Value]| {
        windows.iter().all(|window| {
            let start = sluice::time::parse_timestamp(window["start"].as_str().unwrap_or(""))
                .unwrap_or(i64::MAX);
            window["final"] == json!(start != sentinel_start)
        })
    };
    let windows = wait_for(&mut run, &base, "/views/orders_per_minute/all", |body| {
        body["windows"].as_array().is_some_and(|w| {
            w.iter().map(|w| w["value"].clone()).collect::<Vec<_>>() == expected_counts
                && finality_holds(w)
        })
    });
    let windows = windows["windows"].as_array().cloned().unwrap_or_default();
    let starts: Vec<String> = want
        .per_minute
        .keys()
        .map(|start| sluice::time::format_millis(*start))
        .collect();
    assert_eq!(
        windows
            .iter()
            .map(|w| w["start"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>(),
        starts
    );

    let rates = get_json(&base, "/views/failure_rate/all").1;
    let expected_rates: Vec<Value> = want
        .per_minute
        .values()
        .map(|(total, failed)| json!({"total": total, "failed": failed, "failure_rate_pct": 100.0 * *failed as f64 / *total as f64}))
        .collect();
    assert_eq!(
        rates["windows"]
            .as_array()
            .map(|w| w.iter().map(|w| w["value"].clone()).collect::<Vec<_>>()),
        Some(expected_rates)
    );

    // order_totals folds every window, the sentinels' too; all views change together at
    // checkpoints, so it already agrees with the windows read above.
    let total: u64 = want.per_minute.values().map(|c| c.0).sum();
    let failed: u64 = want.per_minute.values().map(|c| c.1).sum();
    let totals = get_json(&base, "/views/order_totals/all").1;
    assert_eq!(total, EVENTS + 4);
    assert_eq!(totals["value"]["total_orders"], json!(total), "{totals}");
    assert_eq!(totals["value"]["failed_orders"], json!(failed));
    assert_eq!(
        totals["value"]["minutes_with_orders"],
        json!(want.per_minute.len())
    );
    assert_eq!(
        totals["value"]["avg_orders_per_minute"],
        json!(total as f64 / want.per_minute.len() as f64)
    );
    assert_eq!(totals["value"]["current_orders_per_minute"], json!(4));
    assert_eq!(
        totals["value"]["failure_rate_pct"],
        json!(100.0 * failed as f64 / total as f64)
    );
    assert!(totals["checkpoint"]["id"].as_u64().is_some(), "{totals}");

    for (item, minutes) in &want.demand {
        let body = get_json(&base, &format!("/views/item_demand/{item}")).1;
        let got: BTreeMap<String, u64> = body["windows"]
            .as_array()
            .map(|w| {
                w.iter()
                    .map(|w| {
                        (
                            w["start"].as_str().unwrap_or("").to_string(),
                            w["value"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let wanted: BTreeMap<String, u64> = minutes
            .iter()
            .map(|(start, quantity)| (sluice::time::format_millis(*start), *quantity))
            .collect();
        assert_eq!(got, wanted, "item_demand/{item}");
    }
    let views = get_json(&base, "/views").1;
    assert_eq!(views["views"].as_array().map(Vec::len), Some(4));
    let (code, missing) = get_json(&base, "/views/nope/x");
    assert_eq!(code, 404, "{missing}");

    // One inventory event per order line, each with a unique deterministic id.
    let inventory = read_topic(&brokers, "inventory-events", want.lines);
    let ids: BTreeSet<String> = inventory
        .iter()
        .filter_map(|headers| headers.get("sluice-id").cloned())
        .collect();
    assert_eq!(ids.len(), want.lines);

    run.interrupt_and_wait();
}
