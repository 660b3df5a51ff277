//! The shop's views computed independently from the deterministic generator, and the
//! checks of every view over HTTP against them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};
use sluice::app::GeneratorOptions;
use sluice_topologies::events::{OrderEvent, OrderStatus};
use sluice_topologies::generator::{MENU, OrderGenerator, ShopEvent};

use super::{ShopProcess, get_json, wait_for};

/// The inventory saga's reference model, shared with the topology crate's saga tests.
#[path = "../../topologies/tests/saga/model.rs"]
pub mod saga_model;
use saga_model::Model;

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
    /// Per item and minute of the generated orders (the sentinels' wait in the join):
    /// quantity, revenue in cents at the catalog's price (which the generator never
    /// changes), and the latest order's event time.
    pub enriched: BTreeMap<String, BTreeMap<i64, (u64, i64, i64)>>,
    /// Order lines, one inventory event each.
    pub lines: usize,
    /// The inventory saga over the generated orders and catalog records.
    pub saga: Model,
    /// Orders the saga has seen arrive but not decided: the sentinels, whose event time
    /// no watermark passes.
    pub undecided: Vec<String>,
    pub last_event_ms: i64,
    /// The window of the sentinels, once added: the one window left open.
    pub sentinel_start: Option<i64>,
}

/// Recomputes the views from `events` generated orders with `seed` (and the catalog
/// records among them): events are in event-time order, so none is late.
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
        enriched: BTreeMap::new(),
        lines: 0,
        saga: Model::default(),
        undecided: Vec::new(),
        last_event_ms: 0,
        sentinel_start: None,
    };
    let mut orders = 0;
    while orders < events {
        let order = match generator.next_shop_event() {
            ShopEvent::Product(product) => {
                want.saga.restock(&product);
                continue;
            }
            ShopEvent::Order(order) => order,
        };
        orders += 1;
        let order = OrderEvent::OrderPlaced(order);
        want.saga.order(&order);
        let OrderEvent::OrderPlaced(order) = order else {
            continue;
        };
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
                let price = MENU
                    .iter()
                    .find(|item| item.id == line.item_id)
                    .map_or(0.0, |item| item.price);
                let minute = want
                    .enriched
                    .entry(line.item_id.clone())
                    .or_default()
                    .entry(start)
                    .or_default();
                minute.0 += u64::from(line.quantity);
                minute.1 += (f64::from(line.quantity) * price * 100.0).round() as i64;
                minute.2 = minute.2.max(at);
            }
        }
    }
    want
}

/// Publishes `events` generated orders with `shop produce` over 4 partitions.
pub fn produce_orders(shop: &Path, brokers: &str, events: u64, seed: u64) {
    produce_orders_through(shop, brokers, &[], events, seed);
}

/// The same, with `flags` for a secured listener (`--kafka-config FILE`).
pub fn produce_orders_through(shop: &Path, brokers: &str, flags: &[&str], events: u64, seed: u64) {
    let produced = std::process::Command::new(shop)
        .args(["produce", "--brokers", brokers])
        .args(flags)
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
    want.undecided = (0..4)
        .map(|partition| format!("sentinel_{partition}"))
        .collect();
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
    assert_enriched_views(base, want);
    assert_saga_views(base, want);
}

/// Polls until `item_demand_enriched` and `revenue_per_minute` hold every minute of the
/// generated orders at the catalog's names and prices.
pub fn assert_enriched_views(base: &str, want: &Expected) {
    let mut items = serde_json::Map::new();
    let mut revenue: BTreeMap<i64, (i64, u64)> = BTreeMap::new();
    for (item, minutes) in &want.enriched {
        let menu = MENU.iter().find(|menu| menu.id == item);
        let windows: Vec<Value> = minutes
            .iter()
            .map(|(start, (quantity, cents, latest))| {
                let total = revenue.entry(*start).or_default();
                total.0 += cents;
                total.1 += quantity;
                json!({"start": sluice::time::format_millis(*start), "value": {
                    "quantity": quantity, "name": menu.map(|m| m.name), "price": menu.map(|m| m.price),
                    "price_as_of": sluice::time::format_millis(*latest), "revenue_cents": cents,
                    "revenue": *cents as f64 / 100.0, "unpriced_quantity": 0}})
            })
            .collect();
        items.insert(item.clone(), Value::Array(windows));
    }
    let revenue: Vec<Value> = revenue
        .iter()
        .map(|(start, (cents, quantity))| {
            json!({"start": sluice::time::format_millis(*start), "value": {
                "revenue_cents": cents, "revenue": *cents as f64 / 100.0,
                "quantity": quantity, "unpriced_quantity": 0}})
        })
        .collect();
    let windows_of = |entry: &Value| -> Value {
        Value::Array(
            entry["windows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|window| json!({"start": window["start"], "value": window["value"]}))
                .collect(),
        )
    };
    let want = (Value::Object(items), Value::Array(revenue));
    let deadline = std::time::Instant::now() + super::DEADLINE;
    loop {
        let got_items: serde_json::Map<String, Value> = all_entries(base, "item_demand_enriched")
            .iter()
            .map(|entry| {
                (
                    entry["key"].as_str().unwrap_or("").to_string(),
                    windows_of(entry),
                )
            })
            .collect();
        let got_revenue = all_entries(base, "revenue_per_minute")
            .first()
            .map_or(Value::Array(Vec::new()), windows_of);
        let got = (Value::Object(got_items), got_revenue);
        if got == want {
            return;
        }
        if std::time::Instant::now() >= deadline {
            assert_eq!(
                got.0, want.0,
                "item_demand_enriched never came to equal the generator's"
            );
            assert_eq!(
                got.1, want.1,
                "revenue_per_minute never came to equal the generator's"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Polls until `stock_levels` and `order_status` equal the saga model's: its decisions,
/// and `placed` for the orders still waiting for their turn.
pub fn assert_saga_views(base: &str, want: &Expected) {
    let levels = want.saga.levels();
    let Value::Object(mut statuses) = want.saga.statuses() else {
        unreachable!("the model's statuses are an object")
    };
    for order in &want.undecided {
        statuses.insert(order.clone(), json!({"status": "placed"}));
    }
    let statuses = Value::Object(statuses);
    let products = product_stock(&levels);
    let deadline = std::time::Instant::now() + super::DEADLINE;
    loop {
        let got = (
            view_entries(base, "stock_levels"),
            view_entries(base, "order_status"),
            view_entries(base, "product_stock"),
        );
        if got.0 == levels && got.1 == statuses && got.2 == products {
            return;
        }
        if std::time::Instant::now() >= deadline {
            assert_eq!(
                got.0, levels,
                "stock_levels never came to equal the model's"
            );
            assert_eq!(
                got.1, statuses,
                "order_status never came to equal the model's"
            );
            assert_eq!(
                got.2, products,
                "product_stock never came to equal the menu joined with the model's levels"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// `product_stock` as the generator's menu joined with the model's `levels`.
fn product_stock(levels: &Value) -> Value {
    let rows = MENU
        .iter()
        .map(|item| {
            let level = &levels[item.id];
            let row = json!({
                "name": item.name, "price": item.price,
                "stock": level["stock"], "threshold": level["threshold"],
                "level": level["level"], "reserved": level["reserved"], "state": level["state"],
            });
            (item.id.to_string(), row)
        })
        .collect();
    Value::Object(rows)
}

/// Every entry of a key-value view, as an object from key to value.
pub fn view_entries(base: &str, view: &str) -> Value {
    let entries = all_entries(base, view)
        .into_iter()
        .map(|entry| {
            let key = entry["key"].as_str().unwrap_or("").to_string();
            (key, entry["value"].clone())
        })
        .collect();
    Value::Object(entries)
}

/// Every entry of a view, page by page.
pub fn all_entries(base: &str, view: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => format!("/views/{view}?limit=1000&after={after}"),
            None => format!("/views/{view}?limit=1000"),
        };
        let (code, body) = get_json(base, &path);
        assert_eq!(code, 200, "{path}: {body}");
        entries.extend(body["entries"].as_array().cloned().unwrap_or_default());
        match body["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return entries,
        }
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
        let entries = all_entries(base, &name);
        views.insert(name, Value::Array(entries));
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

/// The distinct `sluice-id`s of the order-line events among `headers` of
/// `inventory-events`. The saga, the topic's second writer, has ids ending in `@1`.
pub fn order_line_ids(headers: &[BTreeMap<String, String>]) -> BTreeSet<String> {
    distinct_ids(headers)
        .into_iter()
        .filter(|id| !id.contains('@'))
        .collect()
}

/// The distinct `sluice-id`s of `headers`.
pub fn distinct_ids(headers: &[BTreeMap<String, String>]) -> BTreeSet<String> {
    headers
        .iter()
        .filter_map(|headers| headers.get("sluice-id").cloned())
        .collect()
}
