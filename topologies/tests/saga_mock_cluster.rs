//! The inventory saga's scripted story (`saga/mod.rs`) through the whole `shop` on rdkafka's
//! in-process mock cluster (a development broker, used here for speed), across a restart:
//! the exact sequence of the saga's results on `inventory-events`, and both final views
//! over HTTP. Every order is published with a `traceparent` header, which each inventory
//! event that names the order carries.

mod common;
mod saga;

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use sluice::app::Application;
use sluice::runtime::start;
use sluice_topologies::Shop;
use sluice_topologies::events::{OrderEvent, ProductUpdated};
use sluice_topologies::topics::{INVENTORY_EVENTS, ORDER_EVENTS, PRODUCT_UPDATES};

use common::{mock_cluster_with_shop_topics, shop_config, wait_for};
use saga::{order, product};

/// The trace an order is published with.
fn trace_of(order_id: &str) -> String {
    format!("00-trace-of-{order_id}-00f067aa0ba902b7-01")
}

fn publish(producer: &BaseProducer, orders: &[OrderEvent], products: &[ProductUpdated]) {
    for event in orders {
        let payload = serde_json::to_string(event).expect("encodes");
        let trace = trace_of(event.order_id());
        producer
            .send(
                BaseRecord::to(ORDER_EVENTS)
                    .key(event.order_id())
                    .payload(&payload)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "traceparent",
                        value: Some(trace.as_str()),
                    })),
            )
            .expect("queue");
    }
    for update in products {
        let payload = serde_json::to_string(update).expect("encodes");
        producer
            .send(
                BaseRecord::to(PRODUCT_UPDATES)
                    .key(&update.product_id)
                    .payload(&payload),
            )
            .expect("queue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

/// A view's listing as an object from key to value.
fn entries(body: &Value) -> Value {
    Value::Object(
        body["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| {
                (
                    entry["key"].as_str().unwrap_or("").to_string(),
                    entry["value"].clone(),
                )
            })
            .collect(),
    )
}

/// Every record of the one partition of `topic`, in order: its `sluice-id` and value.
fn read_all(brokers: &str, topic: &str) -> Vec<(String, Value)> {
    read_traced(brokers, topic)
        .into_iter()
        .map(|(id, value, _)| (id, value))
        .collect()
}

/// As [`read_all`], with each record's `traceparent`, if it has one.
fn read_traced(brokers: &str, topic: &str) -> Vec<(String, Value, Option<String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "saga-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = Vec::new();
    while (found.len() as i64) < high && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let header = |name: &str| {
                message
                    .headers()
                    .and_then(|headers| headers.iter().find(|header| header.key == name))
                    .and_then(|header| header.value)
                    .map(|value| String::from_utf8_lossy(value).into_owned())
            };
            let id = header("sluice-id").unwrap_or_default();
            let value = serde_json::from_slice(message.payload().unwrap_or_default())
                .unwrap_or(Value::Null);
            found.push((id, value, header("traceparent")));
        }
    }
    assert_eq!(found.len() as i64, high, "{topic} read to its end");
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripted_saga_runs_on_the_shop_across_a_restart() {
    // One partition per topic, so that `inventory-events` has one order to check.
    let cluster = mock_cluster_with_shop_topics(1);
    let brokers = cluster.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let state = tempfile::tempdir().expect("state dir");
    let orders = saga::orders();
    let products = saga::products();

    // First run: three orders, then the first catalog records, all before the run starts.
    // No watermark passes any of them, idle or not, so nothing is decided: the orders are
    // `placed`.
    publish(&producer, &orders[..3], &products[..2]);
    let config = shop_config(&brokers, 1, state.path());
    let engine = start(config, Shop.topology()).await.expect("engine starts");
    let placed = json!({"status": "placed"});
    for id in ["o1", "o2", "o3"] {
        wait_for(&engine, &format!("/views/order_status/{id}"), |body| {
            body["value"] == placed
        })
        .await;
    }
    engine.shutdown();
    engine.join().await.expect("a clean stop");
    let saga_results = |records: &[(String, Value)]| -> Vec<Value> {
        records
            .iter()
            .filter(|(id, _)| id.ends_with("@1"))
            .map(|(_, value)| value.clone())
            .collect()
    };
    assert_eq!(
        saga_results(&read_all(&brokers, INVENTORY_EVENTS)),
        Vec::<Value>::new(),
        "nothing decided before the catalog's watermark passed the orders"
    );

    // Second run, restored: the burger's restock, the other orders, and one record ten
    // minutes later on each topic, which moves both watermarks past the story (and waits
    // itself).
    let later = 600_000;
    let mut rest: Vec<OrderEvent> = orders[3..].to_vec();
    rest.push(order("sentinel", &[("burger", 1)], later));
    publish(
        &producer,
        &rest,
        &[products[2].clone(), product("sentinel", 1, 1, later)],
    );
    let config = shop_config(&brokers, 1, state.path());
    let engine = start(config, Shop.topology())
        .await
        .expect("engine restarts");
    let levels = saga::expected_levels();
    wait_for(&engine, "/views/stock_levels", |body| {
        entries(body) == levels
    })
    .await;
    let statuses = wait_for(&engine, "/views/order_status", |body| {
        body["entries"].as_array().map(Vec::len) == Some(6)
    })
    .await;
    let mut want = saga::expected_statuses();
    want["sentinel"] = placed;
    assert_eq!(entries(&statuses), want);
    engine.shutdown();
    engine.join().await.expect("a clean stop");

    let traced = read_traced(&brokers, INVENTORY_EVENTS);
    // Each event that names its order carries that order's trace; the others (a level
    // that a catalog record moved, say) carry none.
    let mut named = 0;
    for (id, value, trace) in &traced {
        match value["order_id"].as_str() {
            Some(order_id) => {
                named += 1;
                assert_eq!(trace.as_deref(), Some(trace_of(order_id).as_str()), "{id}");
            }
            None if trace.is_some() => {
                let caused_by_an_order = orders
                    .iter()
                    .chain(&rest)
                    .any(|event| trace.as_deref() == Some(trace_of(event.order_id()).as_str()));
                assert!(caused_by_an_order, "{id}: {value} carries {trace:?}");
            }
            None => {}
        }
    }
    assert!(named > 0, "no event names its order: {traced:?}");
    let written = read_all(&brokers, INVENTORY_EVENTS);
    // Exactly the story's results, in order, each once, keyed by item.
    assert_eq!(saga_results(&written), saga::expected_events());
    // Beside them, the orders topology's one event per order line, the sentinel's too.
    let lines: usize = orders
        .iter()
        .chain(&rest[rest.len() - 1..])
        .map(|event| match event {
            OrderEvent::OrderPlaced(placed) => placed.items.len(),
            OrderEvent::OrderCancelled(_) => 0,
        })
        .sum();
    let order_lines: Vec<&Value> = written
        .iter()
        .filter(|(id, _)| !id.contains('@'))
        .map(|(_, value)| value)
        .collect();
    assert_eq!(order_lines.len(), lines);
    assert!(
        order_lines
            .iter()
            .all(|line| line["event_type"] == "InventoryEvent"),
        "{order_lines:?}"
    );
}
