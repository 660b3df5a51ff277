//! The orders topology on rdkafka's in-process mock cluster (a development broker, used
//! here for speed): a scripted set of events with out-of-order records within grace, one
//! late record, a malformed record and a cancellation. Every view is checked over HTTP
//! against an independent computation written below.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};
use sluice::app::Application;
use sluice::runtime::start;
use sluice_topologies::Shop;

mod common;

const BASE: i64 = 1_705_314_600_000; // 2024-01-15T10:30:00Z, a minute boundary
const GRACE_MS: i64 = 5_000;
const TICK_MS: i64 = 100;
const MINUTE_MS: i64 = 60_000;
/// When the catalog's records are published, after every order: on each partition of
/// `product-updates`, so that the saga's watermark over the catalog rests on records, not
/// on idleness.
const CATALOG_AT_SECONDS: i64 = 200;

/// One scripted input record.
struct Scripted {
    partition: i32,
    key: String,
    payload: String,
}

/// A trace header every scripted record carries: late and dead-lettered records must keep
/// it, as they came.
const TRACE_HEADER: &str = "traceparent";

fn trace_of(key: &str) -> String {
    format!("00-{key:0>32}-00f067aa0ba902b7-01")
}

struct Order {
    partition: i32,
    id: &'static str,
    at_seconds: i64,
    failed: bool,
    lines: Vec<(&'static str, u32)>,
}

fn order(
    partition: i32,
    id: &'static str,
    at_seconds: i64,
    failed: bool,
    lines: &[(&'static str, u32)],
) -> Order {
    Order {
        partition,
        id,
        at_seconds,
        failed,
        lines: lines.to_vec(),
    }
}

fn script() -> (Vec<Order>, Vec<Scripted>) {
    let orders = vec![
        order(0, "o1", 1, false, &[("burger", 2), ("fries", 1)]),
        order(0, "o2", 30, true, &[("pizza", 1)]),
        order(0, "o3", 25, false, &[("burger", 1)]), // out of order, within grace
        order(0, "o4", 70, false, &[("soda", 3)]),
        order(0, "o5", 62, false, &[("burger", 1)]), // out of order, within grace
        order(0, "o6", 150, false, &[("fries", 2)]),
        order(0, "o7", 50, false, &[("pizza", 2)]), // late: [0, 60) closed at 145 s
        order(1, "o8", 10, false, &[("salad", 1), ("soda", 1)]),
        order(1, "o9", 61, true, &[("burger", 4)]),
        order(1, "o10", 125, false, &[("coffee", 2)]),
        order(1, "o11", 121, false, &[("coffee", 1)]), // out of order, within grace
    ];
    let mut records: Vec<Scripted> = orders
        .iter()
        .map(|o| Scripted {
            partition: o.partition,
            key: o.id.to_string(),
            payload: json!({
                "event_type": "OrderPlaced",
                "order_id": o.id,
                "user_id": "user_1",
                "items": o.lines.iter().map(|(item, quantity)| json!({"item_id": item, "quantity": quantity, "price": 1.5})).collect::<Vec<_>>(),
                "total_amount": 1.5 * o.lines.iter().map(|(_, q)| f64::from(*q)).sum::<f64>(),
                "status": if o.failed { "failed" } else { "placed" },
                "timestamp": BASE + o.at_seconds * 1000,
            })
            .to_string(),
        })
        .collect();
    // Partition 0 continues with a malformed record and a cancellation.
    let tail = records.split_off(7);
    records.push(Scripted {
        partition: 0,
        key: "bad".into(),
        payload: "not json".into(),
    });
    records.push(Scripted {
        partition: 0,
        key: "o1".into(),
        payload: json!({"event_type": "OrderCancelled", "order_id": "o1", "timestamp": "2024-01-15T10:32:31"}).to_string(),
    });
    records.extend(tail);
    (orders, records)
}

/// What the views must hold, computed from the script with the lateness rule of the design:
/// late when the window's end is at or before the partition's watermark after the record.
struct Expected {
    late: Vec<&'static str>,
    per_minute: BTreeMap<i64, (u64, u64)>,
    demand: BTreeMap<(String, i64), u64>,
    closed_up_to: i64,
    inventory_events: usize,
    /// The orders the saga refuses (`ReservationFailed`, `unknown_item`): the catalog comes
    /// only after every order, so the placed orders it decides are refused, and it decides
    /// those placed before the watermarks of both topics' partitions, by their own records.
    refused: Vec<&'static str>,
    /// The placed orders it leaves waiting.
    undecided: Vec<&'static str>,
}

fn expected(orders: &[Order]) -> Expected {
    let mut max_seen: BTreeMap<i32, i64> = BTreeMap::new();
    let mut late = Vec::new();
    let mut per_minute: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let mut demand: BTreeMap<(String, i64), u64> = BTreeMap::new();
    // Where the saga places each placed order: at its event time, or at its partition's
    // watermark when it came behind it.
    let mut saga_places = Vec::new();
    for o in orders {
        let at = BASE + o.at_seconds * 1000;
        let max = max_seen.entry(o.partition).or_insert(at);
        *max = (*max).max(at);
        // A record is late by its partition's exact watermark after it.
        let watermark = (*max - GRACE_MS).max(0);
        if !o.failed {
            saga_places.push((at.max(watermark), o.id));
        }
        let start = at - at.rem_euclid(MINUTE_MS);
        if start + MINUTE_MS <= watermark {
            late.push(o.id);
            continue;
        }
        let counts = per_minute.entry(start).or_default();
        counts.0 += 1;
        if o.failed {
            counts.1 += 1;
        } else {
            for (item, quantity) in &o.lines {
                *demand.entry((item.to_string(), start)).or_default() += u64::from(*quantity);
            }
        }
    }
    let closed_up_to = max_seen
        .values()
        // Windows close when the frontier, which follows watermarks floored to the tick,
        // passes their end.
        .map(|max| ((max - GRACE_MS) / TICK_MS) * TICK_MS)
        .min()
        .unwrap_or(0);
    let inventory_events = orders.iter().map(|o| o.lines.len()).sum();
    let stopped_watermark = max_seen
        .values()
        .chain([&(BASE + CATALOG_AT_SECONDS * 1000)])
        .map(|max| max - GRACE_MS)
        .min()
        .unwrap_or(0);
    let (refused, undecided): (Vec<_>, Vec<_>) = saga_places
        .into_iter()
        .partition(|(place, _): &(i64, &str)| *place < stopped_watermark);
    Expected {
        late,
        per_minute,
        demand,
        closed_up_to,
        inventory_events,
        refused: refused.into_iter().map(|(_, id)| id).collect(),
        undecided: undecided.into_iter().map(|(_, id)| id).collect(),
    }
}

fn rfc3339(millis: i64) -> String {
    sluice::time::format_millis(millis)
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("HTTP request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `path` until its JSON satisfies `done`, or fails with the last answer.
async fn wait_for(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(client, base, path).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never reached the expected value; last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A record read back: key, value and headers.
type ReadRecord = (Option<String>, Vec<u8>, BTreeMap<String, String>);

fn read_topic(brokers: &str, topic: &str, want: usize) -> Vec<ReadRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = Vec::new();
    while found.len() < want && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let mut headers = BTreeMap::new();
            if let Some(all) = message.headers() {
                for header in all.iter() {
                    headers.insert(
                        header.key.to_string(),
                        String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            let key = message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned());
            found.push((key, message.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_matches_an_independent_computation() {
    let cluster = common::mock_cluster_with_shop_topics(2);
    let brokers = cluster.bootstrap_servers();

    let (orders, records) = script();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    for record in &records {
        let trace = trace_of(&record.key);
        producer
            .send(
                BaseRecord::to("order-events")
                    .partition(record.partition)
                    .key(&record.key)
                    .payload(&record.payload)
                    .headers(rdkafka::message::OwnedHeaders::new().insert(
                        rdkafka::message::Header {
                            key: TRACE_HEADER,
                            value: Some(&trace),
                        },
                    )),
            )
            .expect("queue");
    }
    for (partition, product) in [(0, "coffee"), (1, "salad")] {
        let payload = json!({"event_type": "ProductUpdated", "product_id": product,
            "name": product, "price": 3.0, "stock": 100, "threshold": 10,
            "timestamp": BASE + CATALOG_AT_SECONDS * 1000});
        producer
            .send(
                BaseRecord::to("product-updates")
                    .partition(partition)
                    .key(product)
                    .payload(&payload.to_string()),
            )
            .expect("queue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    let state = tempfile::tempdir().expect("state dir");
    let mut config = common::shop_config(&brokers, 2, state.path());
    config.workers = 2;
    config.tick_ms = TICK_MS;
    // Idle partitions follow the others' event time after the idle timeout, by the wall
    // clock: the saga would then decide more orders on a slow run than on a fast one (seen:
    // 3 more refusals on a loaded machine). Nothing here goes idle within the test.
    config.idle_timeout = Some(Duration::from_secs(3600));
    let engine = start(config, Shop.topology()).await.expect("engine starts");
    let base = format!("http://{}", engine.http_addr().expect("http"));
    let client = reqwest::Client::new();
    let want = expected(&orders);
    assert_eq!(
        want.late,
        vec!["o7"],
        "the script has exactly one late record"
    );

    let expected_windows: Vec<Value> = want
        .per_minute
        .iter()
        .map(|(start, (count, failed))| {
            json!({"start": rfc3339(*start), "end": rfc3339(start + MINUTE_MS),
                   "value": {"count": count, "failed": failed}, "final": start + MINUTE_MS <= want.closed_up_to})
        })
        .collect();
    wait_for(&client, &base, "/views/orders_per_minute/all", |body| {
        body["windows"] == json!(expected_windows)
    })
    .await;

    let expected_rates: Vec<Value> = want
        .per_minute
        .iter()
        .map(|(_, (total, failed))| {
            json!({"total": total, "failed": failed, "failure_rate_pct": 100.0 * *failed as f64 / *total as f64})
        })
        .collect();
    wait_for(&client, &base, "/views/failure_rate/all", |body| {
        body["windows"].as_array().is_some_and(|windows| {
            windows
                .iter()
                .map(|w| w["value"].clone())
                .collect::<Vec<_>>()
                == expected_rates
        })
    })
    .await;

    // order_totals folds every window, open or final, and changes with them at checkpoints.
    let total: u64 = want.per_minute.values().map(|(count, _)| count).sum();
    let failed: u64 = want.per_minute.values().map(|(_, failed)| failed).sum();
    let (latest_start, (latest_count, _)) = want.per_minute.iter().next_back().expect("windows");
    let totals = wait_for(&client, &base, "/views/order_totals/all", |body| {
        body["value"]["total_orders"] == json!(total)
    })
    .await;
    assert_eq!(totals["value"]["failed_orders"], json!(failed));
    assert_eq!(
        totals["value"]["current_orders_per_minute"],
        json!(latest_count)
    );
    assert_eq!(
        totals["value"]["current_window"]["start"],
        json!(latest_start)
    );
    assert_eq!(
        totals["value"]["avg_orders_per_minute"],
        json!(total as f64 / want.per_minute.len() as f64)
    );
    assert_eq!(
        totals["value"]["failure_rate_pct"],
        json!(100.0 * failed as f64 / total as f64)
    );

    let mut items: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for ((item, start), quantity) in &want.demand {
        items.entry(item.clone()).or_default().push(json!({
            "start": rfc3339(*start), "end": rfc3339(start + MINUTE_MS), "value": quantity,
            "final": start + MINUTE_MS <= want.closed_up_to}));
    }
    for (item, windows) in &items {
        wait_for(
            &client,
            &base,
            &format!("/views/item_demand/{item}"),
            |body| body["windows"] == json!(windows),
        )
        .await;
    }
    let (status, _) = get(&client, &base, "/views/item_demand/pizza").await;
    assert_eq!(
        status, 404,
        "pizza was only in a failed order and a late one"
    );

    // o7 is late for every windowed view of order-events (all of minutes): it is judged
    // once, by the one rule, where it is read, and counted once, and once per view.
    let (_, views) = get(&client, &base, "/views").await;
    let mut minute_views: Vec<String> = views["views"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|view| {
            view["kind"] == "tumbling"
                && view["sources"]
                    .as_array()
                    .is_some_and(|sources| sources.contains(&json!("order-events")))
        })
        .filter_map(|view| view["name"].as_str().map(str::to_string))
        .collect();
    minute_views.sort();
    // The analytics' three, and the two the catalog join feeds with the orders' lines.
    assert_eq!(
        minute_views,
        [
            "failure_rate",
            "item_demand",
            "item_demand_enriched",
            "orders_per_minute",
            "revenue_per_minute"
        ],
        "{views}"
    );
    let status = wait_for(&client, &base, "/status", |body| {
        body["late"] == json!(1) && body["dlq"] == json!(1)
    })
    .await;
    let mut late_views: Vec<String> = status["late_by"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|count| {
            assert_eq!(count["count"], json!(1), "{count}");
            assert_eq!(
                (&count["topic"], &count["partition"]),
                (&json!("order-events"), &json!(0))
            );
            count["view"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    late_views.sort();
    assert_eq!(late_views, minute_views, "{status}");
    let orders_read = common::orders_processed(&status);
    assert_eq!(orders_read, records.len() as u64 - 1, "{status}");

    // The saga decides what both topics' watermarks have passed; the rest waits.
    for order_id in &want.refused {
        wait_for(
            &client,
            &base,
            &format!("/views/order_status/{order_id}"),
            |body| body["value"]["status"] == "failed",
        )
        .await;
    }
    for order_id in &want.undecided {
        let (_, body) = get(&client, &base, &format!("/views/order_status/{order_id}")).await;
        assert_eq!(body["value"]["status"], "placed", "{order_id}: {body}");
    }

    // Stopping flushes every output, after which the topics hold exactly what was written.
    let counters = std::sync::Arc::clone(engine.status());
    engine.join().await.expect("clean shutdown");
    // The delivery reports counted, per output partition, exactly what the broker holds.
    for topic in ["inventory-events", "order-events.late", "order-events.dlq"] {
        let delivered: Vec<(i32, i64)> = counters
            .records_delivered()
            .into_iter()
            .filter(|(delivered_to, _, _)| delivered_to == topic)
            .map(|(_, partition, count)| (partition, count as i64))
            .collect();
        let held: Vec<(i32, i64)> = partition_sizes(&brokers, topic)
            .into_iter()
            .enumerate()
            .filter(|(_, size)| *size > 0)
            .map(|(partition, size)| (partition as i32, size))
            .collect();
        assert_eq!(delivered, held, "{topic}");
    }
    assert_eq!(topic_size(&brokers, "order-events.late"), 1);
    assert_eq!(topic_size(&brokers, "order-events.dlq"), 1);
    assert_eq!(
        topic_size(&brokers, "inventory-events"),
        (want.inventory_events + want.refused.len()) as i64,
        "one inventory event per order line, and the saga's refusals"
    );

    // The late record is o7 as it was read (offset 6 of partition 0): its key, payload and
    // headers, with the views it missed and the reason beside them.
    let late = read_topic(&brokers, "order-events.late", 1);
    let o7 = &records[6];
    assert_eq!(o7.key, "o7");
    let (key, payload, headers) = &late[0];
    assert_eq!(key.as_deref(), Some("o7"));
    assert_eq!(payload, o7.payload.as_bytes());
    assert_eq!(headers[TRACE_HEADER], trace_of("o7"));
    assert_eq!(headers["sluice-id"], "order-events/0/6/0");
    assert_eq!(headers["sluice-source"], "order-events/0/6");
    let mut missed: Vec<String> = headers["sluice-late-views"]
        .split(',')
        .map(str::to_string)
        .collect();
    missed.sort();
    assert_eq!(missed, minute_views);
    assert!(
        headers["sluice-error"].contains("late for views")
            && headers["sluice-error"]
                .contains("window [2024-01-15T10:30:00.000Z, 2024-01-15T10:31:00.000Z)"),
        "{headers:?}"
    );
    let dead = read_topic(&brokers, "order-events.dlq", 1);
    assert_eq!(dead[0].1, b"not json");
    assert!(dead[0].2["sluice-error"].contains("cannot decode"));
    assert_eq!(dead[0].2[TRACE_HEADER], trace_of("bad"));

    let written = want.inventory_events + want.refused.len();
    let inventory = read_topic(&brokers, "inventory-events", written);
    let ids: std::collections::BTreeSet<&String> = inventory
        .iter()
        .map(|(_, _, headers)| &headers["sluice-id"])
        .collect();
    assert_eq!(ids.len(), written, "record ids are unique");
    // The saga writes second to the topic, so its ids end in `@1`.
    let (saga, lines): (Vec<&ReadRecord>, Vec<&ReadRecord>) = inventory
        .iter()
        .partition(|(_, _, headers)| headers["sluice-id"].ends_with("@1"));
    assert_eq!(lines.len(), want.inventory_events);
    assert_eq!(saga.len(), want.refused.len());
    for (_, payload, _) in saga {
        let refusal: Value = serde_json::from_slice(payload).expect("JSON");
        assert_eq!(refusal["event_type"], "ReservationFailed", "{refusal}");
        assert_eq!(refusal["reason"], "unknown_item", "{refusal}");
    }
}

fn topic_size(brokers: &str, topic: &str) -> i64 {
    partition_sizes(brokers, topic).iter().sum()
}

/// How many records each partition of `topic` holds.
fn partition_sizes(brokers: &str, topic: &str) -> Vec<i64> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("client");
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    (0..partitions as i32)
        .map(|partition| {
            let (low, high) = client
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .expect("watermarks");
            high - low
        })
        .collect()
}
