//! Hostile records on `order-events`, through the whole shop on rdkafka's in-process mock
//! cluster (a development broker, used here for speed): garbage bytes, an empty value,
//! UTF-16, invalid UTF-8, a record nested 200,000 levels deep and one that never closes
//! its brackets. Each goes to `order-events.dlq` as it came, with the reason, and the
//! partition moves on: the valid orders around them are read, and the checkpoint passes
//! them all. (The nesting used to overflow the decoding worker's stack and abort the
//! process at every restart.)

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;
use sluice::app::Application;
use sluice::runtime::start;
use sluice_topologies::Shop;

use common::{mock_cluster_with_shop_topics, orders_processed, shop_config, wait_for};

fn order(order_id: &str, at_ms: i64) -> Vec<u8> {
    json!({"event_type": "OrderPlaced", "order_id": order_id, "user_id": "user_1",
           "items": [{"item_id": "soda", "quantity": 1, "price": 2.0}],
           "total_amount": 2.0, "status": "placed", "timestamp": at_ms})
    .to_string()
    .into_bytes()
}

fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in String::from_utf8_lossy(&order("u16", 1_705_314_600_000)).encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    let mut deep = "[".repeat(200_000);
    deep.push_str(&"]".repeat(200_000));
    vec![
        ("garbage", vec![0, 159, 146, 150, 255, 1, 2, 3]),
        ("empty", Vec::new()),
        ("UTF-16", utf16),
        (
            "invalid UTF-8",
            b"{\"event_type\":\"OrderPlaced\",\"order_id\":\"\xff\xfe\"}".to_vec(),
        ),
        ("nested 200,000 deep", deep.into_bytes()),
        ("never closed", "{\"a\":".repeat(100_000).into_bytes()),
    ]
}

/// Every record of partition 0 of `topic`: payload and headers.
fn read_all(brokers: &str, topic: &str, want: usize) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "hostile-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = Vec::new();
    while found.len() < want && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let headers = message
                .headers()
                .map(|all| {
                    all.iter()
                        .map(|header| {
                            let value = header.value.unwrap_or_default();
                            (
                                header.key.to_string(),
                                String::from_utf8_lossy(value).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            found.push((message.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_are_dead_lettered_and_the_partition_moves_on() {
    let cluster = mock_cluster_with_shop_topics(1);
    let brokers = cluster.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let start_ms = 1_705_314_600_000;
    let hostile = hostile();
    let mut sent = vec![order("before", start_ms)];
    sent.extend(hostile.iter().map(|(_, payload)| payload.clone()));
    sent.push(order("after", start_ms + 1_000));
    for payload in &sent {
        producer
            .send(BaseRecord::<(), _>::to("order-events").payload(payload))
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");

    let state = tempfile::tempdir().expect("state dir");
    let engine = start(shop_config(&brokers, 1, state.path()), Shop.topology())
        .await
        .expect("engine starts");
    let status = wait_for(&engine, "/status", |status| {
        let offset = status["checkpoint"]["offsets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|offset| offset["topic"] == "order-events")
            .and_then(|offset| offset["offset"].as_i64());
        offset == Some(sent.len() as i64) && status["dlq"] == json!(hostile.len())
    })
    .await;
    assert_eq!(
        orders_processed(&status),
        2,
        "the orders before and after: {status}"
    );
    for order_id in ["before", "after"] {
        wait_for(
            &engine,
            &format!("/views/order_status/{order_id}"),
            |body| body["value"]["status"].is_string(),
        )
        .await;
    }
    engine.shutdown();
    engine.join().await.expect("a clean stop");

    let dead = read_all(&brokers, "order-events.dlq", hostile.len());
    assert_eq!(dead.len(), hostile.len());
    for ((what, payload), (written, headers)) in hostile.iter().zip(&dead) {
        assert!(
            written == payload,
            "{what}: the dead letter is the record as it came"
        );
        let error = &headers["sluice-error"];
        assert!(
            error.contains("cannot decode") || error.contains("no value"),
            "{what}: {error}"
        );
    }
}
