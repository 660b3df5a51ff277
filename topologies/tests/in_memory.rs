//! The orders topology run to completion over in-memory input (no broker): the table
//! `order_totals` must agree exactly with the windows of `orders_per_minute`, a run
//! resumed from a checkpoint must leave exactly the state of an uninterrupted one, and the
//! tick must change no result.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use sluice::app::{Application, GeneratorOptions};
use sluice::dsl::EventTime;
use sluice::monitoring::{MONITORING_TOPIC, ProcessingReport};
use sluice::plan::Plan;
use sluice::testkit::{
    MemoryInput, resume_to_completion, resume_with_checkpoints, run_to_completion,
};
use sluice_state::StateDb;
use sluice_topologies::Shop;
use sluice_topologies::events::{ProductEventType, ProductUpdated};
use sluice_topologies::generator::generated_input;
use sluice_topologies::inventory::StockLevel;
use sluice_topologies::product_stock::ProductStock;
use sluice_topologies::topics::{ORDER_EVENTS, PRODUCT_UPDATES};

/// The items the order generator sells.
const ITEMS: [&str; 10] = [
    "burger", "coffee", "fries", "icecream", "pizza", "salad", "soda", "soup", "taco", "wrap",
];

const START_MS: i64 = 1_705_314_600_000;
const INTERVAL_MS: i64 = 100;

/// `events` generated orders on `partitions` partitions, and beside them on
/// `monitoring-events` the processing reports of [`reports`].
fn generated(events: usize, partitions: u64) -> sluice::testkit::MemoryInput {
    let options = GeneratorOptions {
        seed: 3,
        failure_rate: 0.05,
        start_ms: START_MS,
        interval_ms: INTERVAL_MS,
    };
    let mut input = generated_input(options, events, partitions);
    // Product records through the run: every item three times, and one deleted.
    let span = events as i64 * INTERVAL_MS;
    for round in 0..3i64 {
        for (index, item) in ITEMS.iter().enumerate() {
            let at = START_MS + (round * ITEMS.len() as i64 + index as i64) * span / 31;
            let product = ProductUpdated {
                event_type: ProductEventType::ProductUpdated,
                product_id: item.to_string(),
                name: item.to_uppercase(),
                price: 1.0 + round as f64,
                stock: 10 * (round + 1),
                threshold: 3,
                timestamp: EventTime(at),
            };
            let payload = if round == 2 && *item == "soda" {
                Vec::new() // a tombstone
            } else {
                serde_json::to_vec(&product).expect("encodes")
            };
            input.push(
                PRODUCT_UPDATES,
                (sluice::record::key_hash(item) % 2) as usize,
                sluice::testkit::MemoryRecord {
                    key: item.as_bytes().to_vec(),
                    payload,
                    timestamp: at,
                    watermark_only: false,
                    headers: Vec::new(),
                },
            );
        }
    }
    for report in reports(events) {
        let partition = (sluice::record::key_hash(&report.component) % 2) as usize;
        input.push(
            MONITORING_TOPIC,
            partition,
            sluice::testkit::MemoryRecord {
                key: report.component.clone().into_bytes(),
                payload: serde_json::to_vec(&report).expect("encodes"),
                timestamp: 0,
                watermark_only: false,
                headers: Vec::new(),
            },
        );
    }
    input
}

/// Reports of two components every 10 s over as long as `events` orders take, but an hour
/// before them: the two sources' watermarks are far apart, and each topology's windows
/// must close by its own.
fn reports(events: usize) -> Vec<ProcessingReport> {
    let span = events as i64 * INTERVAL_MS;
    let first_end = START_MS - 3_600_000 + 10_000;
    (0..span / 10_000)
        .flat_map(|n| {
            let end = first_end + n * 10_000;
            ["shop", "http-producer"].map(|component| {
                let processed = (n as u64 * 7 + component.len() as u64) % 50;
                ProcessingReport::new(
                    component,
                    "order-events",
                    0,
                    (end - 10_000, end),
                    (processed, processed * 2, processed % 3),
                )
            })
        })
        .collect()
}

/// Orders 100 ms apart whose timestamps are pushed back by up to 9 s: with a grace of 5 s,
/// some arrive late, so lateness is exercised.
fn disordered(events: usize, partitions: u64) -> MemoryInput {
    let mut generator = sluice_topologies::generator::OrderGenerator::new(GeneratorOptions {
        seed: 11,
        failure_rate: 0.05,
        start_ms: 1_705_314_600_000,
        interval_ms: 100,
    });
    let mut input = MemoryInput::default();
    let mut jitter: u64 = 7;
    for _ in 0..events {
        let mut order = generator.next_order();
        jitter = jitter
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.timestamp.0 -= ((jitter >> 33) % 9_000) as i64;
        let key = order.order_id.clone();
        let payload =
            serde_json::to_vec(&sluice_topologies::events::OrderEvent::OrderPlaced(order))
                .expect("encodes");
        let partition = (sluice::record::key_hash(&key) % partitions) as usize;
        input.push(
            sluice_topologies::topics::ORDER_EVENTS,
            partition,
            sluice::testkit::MemoryRecord {
                key: key.into_bytes(),
                payload,
                timestamp: 0,
                watermark_only: false,
                headers: Vec::new(),
            },
        );
    }
    input
}

#[test]
fn no_result_depends_on_the_tick() {
    let input = disordered(6_000, 4);
    let mut results = Vec::new();
    for tick_ms in [1, 100, 60_000] {
        let dir = tempfile::tempdir().expect("state dir");
        let run =
            run_to_completion(Shop.topology(), input.clone(), dir.path(), 2, tick_ms).expect("run");
        // Each late record's id and the views it missed.
        let header = |record: &sluice::output::OwnedRecord, wanted: &str| {
            record
                .headers
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
                .unwrap_or_default()
        };
        let mut late: Vec<(String, String)> = run
            .output
            .records("order-events.late")
            .iter()
            .map(|record| {
                (
                    header(record, "sluice-id"),
                    header(record, "sluice-late-views"),
                )
            })
            .collect();
        late.sort();
        let inventory = run.output.records("inventory-events").len();
        results.push((tick_ms, dump(&run.state, &run.plan), late, inventory));
    }
    let (_, views, late, inventory) = &results[0];
    assert!(!late.is_empty(), "the input has late records");
    assert!(*inventory > 6_000);
    for (tick_ms, other_views, other_late, other_inventory) in &results[1..] {
        assert_eq!(other_late, late, "late records with a {tick_ms} ms tick");
        assert_eq!(
            other_inventory, inventory,
            "inventory events with a {tick_ms} ms tick"
        );
        assert!(
            other_views == views,
            "the state differs with a {tick_ms} ms tick"
        );
    }
}

#[test]
fn order_totals_agree_with_the_windows_for_any_worker_count() {
    for workers in [1, 2, 3] {
        let dir = tempfile::tempdir().expect("state dir");
        let input = generated(10_000, 4);
        let run = run_to_completion(Shop.topology(), input.clone(), dir.path(), workers, 100)
            .expect("run");
        let windows = run
            .state
            .window_store("orders_per_minute")
            .expect("view")
            .windows(b"all", i64::MIN, i64::MAX)
            .expect("read");
        let counts: Vec<u64> = windows
            .iter()
            .map(|w| {
                serde_json::from_slice::<Value>(&w.value_json).expect("json")["count"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), 10_000, "workers {workers}");
        let totals: Value = serde_json::from_slice(
            &run.state
                .table_store("order_totals")
                .expect("view")
                .get(b"all")
                .expect("read")
                .expect("a value"),
        )
        .expect("json");
        assert_eq!(
            totals["total_orders"], 10_000,
            "workers {workers}: {totals}"
        );
        assert_eq!(
            totals["minutes_with_orders"],
            counts.len(),
            "workers {workers}: {totals}"
        );
        assert_eq!(
            totals["current_orders_per_minute"],
            counts.last().copied().unwrap_or(0),
            "workers {workers}"
        );
        assert_eq!(
            run.output.records("inventory-events").len() as u64,
            run.status
                .emitted
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        // The per-topic and per-partition counts of /metrics add up to the totals.
        let records_out: u64 = run
            .status
            .records_out()
            .iter()
            .map(|(_, count)| count)
            .sum();
        assert_eq!(
            records_out,
            run.status
                .emitted
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        // Every window that closed was timed to the checkpoint that made it visible: as
        // many as the window views hold final windows (none is past its retention yet).
        // Each topology's windows closed by its own source's watermark where the input ran
        // out, however far behind the other source was.
        for (view, topic) in [
            ("orders_per_minute", ORDER_EVENTS),
            ("component_throughput", MONITORING_TOPIC),
        ] {
            let closed_by = stopped_watermark(&input, topic);
            let mut windows = 0;
            run.state
                .window_store(view)
                .expect("view")
                .for_each(|key, window| {
                    windows += 1;
                    assert_eq!(
                        window.is_final,
                        window.end <= closed_by,
                        "{view} {key:?} [{}, {}) with {topic} stopped at {closed_by}",
                        window.start,
                        window.end
                    );
                })
                .expect("read");
            assert!(windows > 1, "{view} with {workers} workers");
        }
        // The catalog holds each product's last record; soda's last was a tombstone.
        let mut catalog = BTreeMap::new();
        run.state
            .table_store("catalog")
            .expect("view")
            .for_each(|key, json| {
                let product: ProductUpdated = serde_json::from_slice(&json).expect("a product");
                catalog.insert(String::from_utf8_lossy(key).into_owned(), product);
            })
            .expect("read");
        let kept: Vec<&str> = ITEMS
            .iter()
            .copied()
            .filter(|item| *item != "soda")
            .collect();
        assert_eq!(catalog.keys().map(String::as_str).collect::<Vec<_>>(), kept);
        assert!(
            catalog
                .values()
                .all(|product| product.price == 3.0 && product.stock == 30),
            "{catalog:?}"
        );
        // product_stock is the catalog left-joined with stock_levels, key by key.
        let levels: BTreeMap<String, StockLevel> = table_of(&run.state, "stock_levels");
        let want: BTreeMap<String, ProductStock> = catalog
            .iter()
            .map(|(id, product)| (id.clone(), ProductStock::of(product, levels.get(id))))
            .collect();
        assert!(want.values().any(|row| row.level.is_some()), "{want:?}");
        assert_eq!(
            table_of::<ProductStock>(&run.state, "product_stock"),
            want,
            "workers {workers}"
        );
        // The monitoring topology summed every report of each component.
        for component in ["shop", "http-producer"] {
            let health: Value = serde_json::from_slice(
                &run.state
                    .table_store("component_health")
                    .expect("view")
                    .get(component.as_bytes())
                    .expect("read")
                    .expect("a value"),
            )
            .expect("json");
            let of_component = || {
                reports(10_000)
                    .into_iter()
                    .filter(move |report| report.component == component)
            };
            let processed: u64 = of_component().map(|report| report.processed).sum();
            let failed: u64 = of_component().map(|report| report.failed).sum();
            assert_eq!(health["processed"], processed, "{component}: {health}");
            assert_eq!(health["failed"], failed, "{component}: {health}");
        }
        let finals: usize = [
            "orders_per_minute",
            "failure_rate",
            "item_demand",
            "item_demand_enriched",
            "revenue_per_minute",
            "component_throughput",
        ]
        .iter()
        .map(|view| {
            let mut finals = 0;
            run.state
                .window_store(view)
                .expect("view")
                .for_each(|_, window| finals += usize::from(window.is_final))
                .expect("read");
            finals
        })
        .sum();
        assert!(finals > 0);
        assert_eq!(
            run.status.window_close.visible(),
            finals as u64,
            "workers {workers}"
        );
        assert_eq!(run.status.window_close.pending(), 0);
        let records_in: u64 = run
            .status
            .partitions()
            .iter()
            .map(|(_, _, progress)| progress.records_in)
            .sum();
        assert_eq!(
            records_in,
            run.status
                .processed
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}

/// Where the watermark of `topic` stood when the input ran out: per partition the greatest
/// event time minus the grace of 5 s, the least over the partitions that have records.
fn stopped_watermark(input: &MemoryInput, topic: &str) -> i64 {
    input.topics[topic]
        .iter()
        .filter(|records| !records.is_empty())
        .map(|records| {
            let greatest = records
                .iter()
                .map(|record| {
                    let event: Value = serde_json::from_slice(&record.payload).expect("json");
                    let time = event["timestamp"].as_str().expect("a timestamp");
                    sluice::time::parse_timestamp(time).expect("a valid timestamp")
                })
                .max()
                .expect("records");
            greatest - 5_000
        })
        .min()
        .expect("partitions with records")
}

/// Fails with the stores that differ and their first differing entries, rather than with
/// two dumps of every store.
fn assert_same_state(got: &BTreeMap<String, Vec<String>>, want: &BTreeMap<String, Vec<String>>) {
    let differing: Vec<String> = want
        .iter()
        .filter(|(store, entries)| got.get(*store) != Some(entries))
        .map(|(store, entries)| {
            let got = got.get(store).cloned().unwrap_or_default();
            let first = entries
                .iter()
                .zip(&got)
                .find(|(want, got)| want != got)
                .map(|(want, got)| format!("want {want}\n  got {got}"))
                .unwrap_or_else(|| format!("{} entries, got {}", entries.len(), got.len()));
            format!("{store}: {first}")
        })
        .collect();
    assert!(
        differing.is_empty() && got.len() == want.len(),
        "the state differs:\n{}",
        differing.join("\n")
    );
}

/// Every row of the table view `view`.
fn table_of<T: serde::de::DeserializeOwned>(db: &StateDb, view: &str) -> BTreeMap<String, T> {
    let mut rows = BTreeMap::new();
    db.table_store(view)
        .expect("view")
        .for_each(|key, json| {
            let row = serde_json::from_slice(&json).expect("a row");
            rows.insert(String::from_utf8_lossy(key).into_owned(), row);
        })
        .expect("read");
    rows
}

/// Every entry of every store of the topology (views and operator state), as bytes.
fn dump(db: &StateDb, plan: &Plan) -> BTreeMap<String, Vec<String>> {
    let mut all = BTreeMap::new();
    for store in plan.stores() {
        let mut entries = Vec::new();
        let is_table = plan.view(&store).is_some_and(|view| !view.is_windowed());
        let is_keyed_state = [
            "state.summarize",
            "state.upsert",
            "state.sequence",
            "state.join",
        ]
        .iter()
        .any(|prefix| store.starts_with(prefix));
        if is_keyed_state || is_table {
            db.table_store(&store)
                .expect("store")
                .for_each(|key, value| {
                    entries.push(format!(
                        "{} = {}",
                        String::from_utf8_lossy(key),
                        String::from_utf8_lossy(&value)
                    ))
                })
                .expect("read");
        } else {
            db.window_store(&store)
                .expect("store")
                .for_each(|key, window| {
                    entries.push(format!(
                        "{} [{}, {}) final={} {}",
                        String::from_utf8_lossy(key),
                        window.start,
                        window.end,
                        window.is_final,
                        String::from_utf8_lossy(&window.value_json)
                    ))
                })
                .expect("read");
        }
        all.insert(store, entries);
    }
    all
}

/// The first `fraction` of every partition of `input`.
fn prefix(input: &MemoryInput, numerator: usize, denominator: usize) -> MemoryInput {
    let mut cut = input.clone();
    for partitions in cut.topics.values_mut() {
        for records in partitions.iter_mut() {
            let keep = records.len() * numerator / denominator;
            *records = Arc::new(records[..keep].to_vec());
        }
    }
    cut
}

#[test]
fn a_resumed_run_leaves_the_state_of_an_uninterrupted_run() {
    let input = generated(12_000, 4);
    let whole_dir = tempfile::tempdir().expect("state dir");
    let whole = run_to_completion(Shop.topology(), input.clone(), whole_dir.path(), 2, 100)
        .expect("uninterrupted run");
    let plan = whole.plan.clone();
    let expected = dump(&whole.state, &plan);
    assert!(expected.values().all(|entries| !entries.is_empty()));

    // Stop after a third, then after two thirds, changing the worker count each time, so
    // that restored state is split among workers differently than it was written.
    let dir = tempfile::tempdir().expect("state dir");
    let first = run_to_completion(Shop.topology(), prefix(&input, 1, 3), dir.path(), 1, 100)
        .expect("first third");
    let first_checkpoint = first.checkpoint.clone().expect("a final checkpoint");
    assert!(first_checkpoint.is_final);
    drop(first);
    let second = resume_to_completion(Shop.topology(), prefix(&input, 2, 3), dir.path(), 3, 100)
        .expect("second third");
    let second_checkpoint = second.checkpoint.clone().expect("a final checkpoint");
    assert!(second_checkpoint.id > first_checkpoint.id);
    let second_processed = second
        .status
        .processed
        .load(std::sync::atomic::Ordering::Relaxed);
    drop(second);
    let last = resume_to_completion(Shop.topology(), input.clone(), dir.path(), 2, 100)
        .expect("last third");
    let last_processed = last
        .status
        .processed
        .load(std::sync::atomic::Ordering::Relaxed);

    // Each resumed run read only what the checkpoint did not hold.
    let total: usize = input.topics.values().flatten().map(|p| p.len()).sum();
    let offsets = |checkpoint: &sluice::checkpoint::Checkpoint| -> u64 {
        checkpoint.positions.iter().map(|p| p.offset as u64).sum()
    };
    assert_eq!(
        second_processed,
        offsets(&second_checkpoint) - offsets(&first_checkpoint)
    );
    assert_eq!(last_processed, total as u64 - offsets(&second_checkpoint));
    assert_eq!(
        last.checkpoint.as_ref().map(offsets),
        Some(total as u64),
        "the last checkpoint holds the whole input"
    );

    assert_same_state(&dump(&last.state, &plan), &expected);
}

#[test]
fn frequent_checkpoints_change_no_result() {
    // Enough input that checkpoints fall inside it even when the other tests of this file
    // load both cores and a worker gets little time.
    let input = generated(40_000, 4);
    let plain_dir = tempfile::tempdir().expect("state dir");
    let plain =
        run_to_completion(Shop.topology(), input.clone(), plain_dir.path(), 2, 100).expect("run");
    let plan = plain.plan.clone();
    let dir = tempfile::tempdir().expect("state dir");
    let checkpointed = resume_with_checkpoints(
        Shop.topology(),
        input,
        dir.path(),
        2,
        100,
        std::time::Duration::from_millis(1),
    )
    .expect("run with checkpoints");
    let checkpoints = checkpointed.checkpoint.as_ref().map_or(0, |c| c.id);
    assert!(checkpoints > 2, "only {checkpoints} checkpoints were taken");
    assert_same_state(
        &dump(&checkpointed.state, &plan),
        &dump(&plain.state, &plan),
    );
}

/// Minute counts of all orders, kept as long as the default retention in one view and for
/// five minutes of event time in another.
fn counts_with_short_retention(topology: &mut sluice::dsl::Topology<'_>) {
    use sluice::dsl::{Source, TumblingWindows};
    use sluice_topologies::events::OrderEvent;
    let minute = std::time::Duration::from_secs(60);
    let counts = topology
        .source(
            Source::<OrderEvent>::topic(sluice_topologies::topics::ORDER_EVENTS)
                .event_time(|event| event.timestamp().millis()),
        )
        .key_by("all", |_| "all".to_string())
        .window(TumblingWindows::of(minute))
        .count();
    counts.materialize("all_minutes");
    counts.materialize_with_retention("recent_minutes", 5 * minute);
}

#[test]
fn final_windows_past_their_retention_are_deleted() {
    let dir = tempfile::tempdir().expect("state dir");
    let run = run_to_completion(
        Arc::new(counts_with_short_retention),
        generated(12_000, 4),
        dir.path(),
        2,
        100,
    )
    .expect("run");
    let read = |view: &str| {
        run.state
            .window_store(view)
            .expect("view")
            .windows(b"all", i64::MIN, i64::MAX)
            .expect("read")
    };
    let all = read("all_minutes");
    let recent = read("recent_minutes");
    assert_eq!(all.len(), 20, "12,000 orders 100 ms apart span 20 minutes");
    let watermark = run.checkpoint.as_ref().expect("checkpoint").watermark as i64;
    // What is kept is unchanged; what is gone was final and ended at least five minutes of
    // event time before the watermark; windows still open are all kept.
    for window in &recent {
        assert!(all.contains(window), "{window:?}");
    }
    let deleted: Vec<_> = all.iter().filter(|w| !recent.contains(w)).collect();
    assert!(!deleted.is_empty(), "nothing was old enough to delete");
    for window in &deleted {
        assert!(window.is_final, "{window:?}");
        assert!(
            window.end <= watermark - 300_000,
            "{window:?} (watermark {watermark})"
        );
    }
    assert!(
        all.iter()
            .filter(|w| !w.is_final)
            .all(|w| recent.contains(w))
    );
}
