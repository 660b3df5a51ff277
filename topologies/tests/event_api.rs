//! `POST /events/{topic}` end to end, on rdkafka's in-process mock cluster (a development
//! broker, used here for speed): posted orders are published keyed by order id, flow
//! through the topology into the views, and are reported on `monitoring-events`, by the
//! HTTP producer and by the engine's own processing reports; a bad event publishes
//! nothing; a broker that cannot be reached is an "unavailable" error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};
use serde_json::{Value, json};
use sluice::app::Application;
use sluice::kafka::KafkaSettings;
use sluice::kafka::event_producer::{
    EventPublisher, KafkaEventProducer, OutgoingEvent, PublishError,
};
use sluice::monitoring::{MONITORING_TOPIC, ProcessingReport};
use sluice::runtime::start;
use sluice_topologies::Shop;

mod common;

const BASE: i64 = 1_705_314_600_000; // 2024-01-15T10:30:00Z

fn order(id: &str, seconds: i64) -> String {
    json!({
        "event_type": "OrderPlaced", "order_id": id, "user_id": "user_1",
        "items": [{"item_id": "fries", "quantity": 1, "price": 3.0}],
        "total_amount": 3.0, "status": "placed", "timestamp": BASE + seconds * 1000,
    })
    .to_string()
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A record read back: partition, offset, key and payload.
type Read = (i32, i64, Option<String>, Value);

/// Reads `topic` from the start until `done` holds for what was read, or the deadline.
fn read_until(brokers: &str, topic: &str, done: impl Fn(&[Read]) -> bool) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("read-{topic}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = Vec::new();
    while !done(&found) {
        assert!(
            Instant::now() < deadline,
            "{topic} never had what was expected: {found:?}"
        );
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            found.push((
                message.partition(),
                message.offset(),
                message
                    .key()
                    .map(|key| String::from_utf8_lossy(key).into_owned()),
                serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON"),
            ));
        }
    }
    found
}

/// How many records `topic` holds: its partitions' high watermarks, which count every
/// acknowledged record.
fn written(brokers: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer");
    (0..2)
        .map(|partition| {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(5))
                .expect("watermarks");
            high - low
        })
        .sum()
}

/// The processing reports of `component` among `records`.
fn reports_of(records: &[Read], component: &str) -> Vec<ProcessingReport> {
    records
        .iter()
        .filter(|(_, _, key, _)| key.as_deref() == Some(component))
        .map(|(_, _, _, payload)| serde_json::from_value(payload.clone()).expect("a report"))
        .collect()
}

/// The sum of a figure over reports about `topic`.
fn total(reports: &[ProcessingReport], topic: &str, figure: fn(&ProcessingReport) -> u64) -> u64 {
    reports
        .iter()
        .filter(|r| r.topic == topic)
        .map(figure)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_events_are_published_processed_and_reported() {
    let cluster = common::mock_cluster_with_shop_topics(2);
    let brokers = cluster.bootstrap_servers();
    let state = tempfile::tempdir().expect("state dir");
    let mut config = common::shop_config(&brokers, 2, state.path());
    config.checkpoint_interval = Duration::from_millis(100);
    config.component = "shop".into();
    config.report_interval = Duration::from_millis(200);
    let engine = start(config, Shop.topology()).await.expect("engine starts");
    let base = format!("http://{}", engine.http_addr().expect("http"));
    let client = reqwest::Client::new();
    let url = format!("{base}/events/order-events");

    let mut answers = BTreeMap::new();
    for (index, id) in ["p1", "p2", "p3"].into_iter().enumerate() {
        let (status, answer) = post(&client, &url, order(id, index as i64)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["key"], id);
        answers.insert(id.to_string(), answer);
    }
    let (status, answer) = post(&client, &url, r#"{"event_type":"OrderPlaced"}"#.into()).await;
    assert_eq!(status, 400, "{answer}");

    // Exactly the three orders are on the topic, keyed by order id, where the answers said.
    let records = read_until(&brokers, "order-events", |read| read.len() >= 3);
    assert_eq!(
        written(&brokers, "order-events"),
        3,
        "the bad event was not written"
    );
    for (partition, offset, key, payload) in &records {
        let key = key.clone().expect("a key");
        let answer = &answers[&key];
        assert_eq!(
            (answer["partition"].as_i64(), answer["offset"].as_i64()),
            (Some(i64::from(*partition)), Some(*offset))
        );
        assert_eq!(payload["order_id"], json!(key));
    }
    // They went through the topology.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view: Value = client
            .get(format!("{base}/views/orders_per_minute/all"))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .unwrap_or(Value::Null);
        if view["windows"][0]["value"]["count"] == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the posted orders never showed: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each was reported by the HTTP producer, and the engine reports what it did with
    // them: three orders read, three inventory events (one line each) out, none failed.
    let records = read_until(&brokers, MONITORING_TOPIC, |read| {
        let engine = reports_of(read, "shop");
        reports_of(read, "http-producer").len() >= 3
            && total(&engine, "order-events", |r| r.processed) >= 3
            && total(&engine, "order-events", |r| r.emitted) >= 3
    });
    let posted = reports_of(&records, "http-producer");
    let mut reported: Vec<(String, i32)> = posted
        .iter()
        .map(|report| {
            assert_eq!((report.processed, report.emitted, report.failed), (1, 1, 0));
            (report.topic.clone(), report.partition)
        })
        .collect();
    reported.sort();
    let mut expected: Vec<(String, i32)> = answers
        .values()
        .map(|answer| {
            let partition = answer["partition"].as_i64().unwrap_or(-1) as i32;
            ("order-events".to_string(), partition)
        })
        .collect();
    expected.sort();
    assert_eq!(reported, expected);
    let engine_reports = reports_of(&records, "shop");
    assert_eq!(total(&engine_reports, "order-events", |r| r.processed), 3);
    assert_eq!(total(&engine_reports, "order-events", |r| r.emitted), 3);
    assert_eq!(total(&engine_reports, "order-events", |r| r.failed), 0);

    engine.shutdown();
    engine.join().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_broker_that_cannot_be_reached_is_unavailable() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a port")
        .port();
    let settings = KafkaSettings::new(format!("127.0.0.1:{port}"));
    let producer = KafkaEventProducer::new(&settings, Duration::from_secs(1)).expect("producer");
    let outcome = producer
        .publish(OutgoingEvent {
            topic: "order-events",
            key: Some("k"),
            payload: b"{}",
            timestamp: None,
        })
        .await;
    assert!(
        matches!(outcome, Err(PublishError::Unavailable(_))),
        "{outcome:?}"
    );
}
