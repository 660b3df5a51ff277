//! The shop's views computed independently from the deterministic generator, and the
//! checks of every view over HTTP against them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};
use sluice::app::GeneratorOptions;
use sluice_topologies::events::OrderStatus;
use sluice_topologies::generator::OrderGenerator;

use super::{ShopProcess, get_json, wait_for};

pub const START_MS: i64 = 1_705_314_600_000;
pub const INTERVAL_MS: i64 = 100;
pub const MINUTE_MS: i64 = 60_000;

/// The views as the generator's events make them.
#[derive(Clone)]
pub struct Expected {
    /// Orders and failed orders per minute.
    pub per_minute: BTreeMap<i64, (u64, u64)>,
    /// Reserved quantity per item and minute.
    pub demand: BTreeMap<String, BTreeMap<i64, u64>>,
    /// Order lines, one inventory event each.
    pub lines: usize,
    pub last_event_ms: i64,
    /// The window of the sentinels, once added: the one window left open.
    pub sentinel_start: Option<i64>,
}

/// Recomputes the views from `events` generated with `seed`: events are in event-time
/// order, so none is late.
pub fn expected(events: u64, seed: u64) -> Expected {
    let mut generator = OrderGenerator::new(GeneratorOptions {
        seed,
        failure_rate: 0.05,
        start_ms: START_MS,
        interval_ms: INTERVAL_MS,
    });
    let mut want = Expected {
        per_minute: BTreeMap::new(),
        demand: BTreeMap::new(),
        lines: 0,
        last_event_ms: 0,
        sentinel_start: None,
    };
    for _ in 0..events {
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

/// Publishes `events` generated orders with `shop produce` over 4 partitions.
pub fn produce_orders(shop: &Path, brokers: &str, events: u64, seed: u64) {
    let produced = std::process::Command::new(shop)
        .args(["produce", "--brokers", brokers])
        .args(["--count", &events.to_string(), "--seed", &seed.to_string()])
        .args(["--failure-rate", "0.05", "--partitions", "4"])
        .args(["--interval-ms", &INTERVAL_MS.to_string()])
        .output()
        .expect("shop produce runs");
    assert!(
        produced.status.success(),
        "shop produce failed: {}",
        String::from_utf8_lossy(&produced.stderr)
    );
}

/// Event time stops with the input, so the last windows would stay open. One order an hour
/// later on every partition moves the watermark past them, as later traffic would.
pub fn add_sentinels(brokers: &str, want: &mut Expected) {
    let sentinel_ms = want.last_event_ms + 3_600_000;
    super::produce_to_partitions(brokers, "order-events", 4, |partition| {
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
    want.sentinel_start = Some(sentinel_start);
}

/// Waits until `orders_per_minute` shows every expected window, final except the
/// sentinels', then checks every other view, which changed in the same checkpoint.
pub fn assert_views(run: &mut ShopProcess, base: &str, want: &Expected) {
    let expected_counts: Vec<Value> = want
        .per_minute
        .values()
        .map(|(count, failed)| json!({"count": count, "failed": failed}))
        .collect();
    let sentinel_start = want.sentinel_start;
    let finality_holds = move |windows: &[Value]| {
        windows.iter().all(|window| {
            let start = sluice::time::parse_timestamp(window["start"].as_str().unwrap_or(""))
                .unwrap_or(i64::MAX);
            window["final"] == json!(Some(start) != sentinel_start)
        })
    };
    let windows = wait_for(run, base, "/views/orders_per_minute/all", |body| {
        body["windows"].as_array().is_some_and(|w| {
            w.iter().map(|w| w["value"].clone()).collect::<Vec<_>>() == expected_counts
                && finality_holds(w)
        })
    });
    let starts: Vec<String> = want
        .per_minute
        .keys()
        .map(|start| sluice::time::format_millis(*start))
        .collect();
    let got_starts: Vec<String> = windows["windows"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|w| w["start"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(got_starts, starts);

    let rates = get_json(base, "/views/failure_rate/all").1;
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

    // order_totals folds every window; all views change together at checkpoints, so it
    // already agrees with the windows read above.
    let total: u64 = want.per_minute.values().map(|c| c.0).sum();
    let failed: u64 = want.per_minute.values().map(|c| c.1).sum();
    let totals = get_json(base, "/views/order_totals/all").1;
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
    assert_eq!(
        totals["value"]["current_orders_per_minute"],
        json!(want.per_minute.values().next_back().map(|c| c.0))
    );
    assert_eq!(
        totals["value"]["failure_rate_pct"],
        json!(100.0 * failed as f64 / total as f64)
    );
    assert!(totals["checkpoint"]["id"].as_u64().is_some(), "{totals}");

    for (item, minutes) in &want.demand {
        let body = get_json(base, &format!("/views/item_demand/{item}")).1;
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
}

/// Every entry of every view of the input, as served: what a replay must reproduce
/// exactly.
pub fn all_views(base: &str) -> BTreeMap<String, Value> {
    let listed = get_json(base, "/views").1;
    let mut views = BTreeMap::new();
    // The monitoring views hold the running engines' own processing reports, which every
    // run, replays included, adds to: they are the one thing a replay does not repeat.
    let of_input = |view: &Value| {
        !view["sources"]
            .as_array()
            .is_some_and(|sources| sources.contains(&Value::from("monitoring-events")))
    };
    for view in listed["views"].as_array().cloned().unwrap_or_default() {
        if !of_input(&view) {
            continue;
        }
        let name = view["name"].as_str().unwrap_or("").to_string();
        let body = get_json(base, &format!("/views/{name}?limit=1000")).1;
        views.insert(name, body["entries"].clone());
    }
    views
}

/// Polls every view until they equal `want` (a checkpoint can take the last records
/// before the windows they close have closed: the next one shows them), failing with the
/// difference at the deadline.
pub fn wait_for_views(base: &str, want: &BTreeMap<String, Value>) {
    let deadline = std::time::Instant::now() + super::DEADLINE;
    loop {
        let views = all_views(base);
        if &views == want {
            return;
        }
        if std::time::Instant::now() >= deadline {
            assert_eq!(
                &views, want,
                "the views never came to equal the expected ones"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The distinct `sluice-id`s of `headers`.
pub fn distinct_ids(headers: &[BTreeMap<String, String>]) -> BTreeSet<String> {
    headers
        .iter()
        .filter_map(|headers| headers.get("sluice-id").cloned())
        .collect()
}
