//! Sensor readings on the mock cluster, for the engine tests that need a small windowed
//! topology rather than the shop: the topics, a producer, an engine's settings, and the
//! windows of a view.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice::kafka::KafkaSettings;
use sluice::runtime::EngineConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reading {
    pub sensor: String,
    pub at: i64,
}

/// rdkafka's in-process MOCK cluster (a development broker, for fast tests only) with the
/// `readings` topic and its dead-letter and late topics, `partitions` each. It does not
/// answer CreateTopics, so the topics are made here.
pub fn readings_cluster(partitions: i32) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    for topic in ["readings", "readings.dlq", "readings.late"] {
        cluster.create_topic(topic, partitions, 1).expect("topic");
    }
    cluster
}

/// An engine on `brokers` for topics of `partitions` partitions, with two workers, HTTP on a
/// free port and no topic creation (the mock cluster cannot), keeping its state in
/// `state_dir`.
pub fn readings_engine_config(
    brokers: &str,
    partitions: i32,
    state_dir: &std::path::Path,
) -> EngineConfig {
    let mut settings = KafkaSettings::new(brokers);
    settings.partitions = partitions;
    let mut config = EngineConfig::new(settings, state_dir);
    config.http_addr = Some("127.0.0.1:0".parse().expect("addr"));
    config.workers = 2;
    config.create_topics = false;
    config
}

/// One reading a second on `partition`, from `from_s` to `to_s` seconds (exclusive), from
/// sensor `s<partition>`.
pub fn produce_readings(brokers: &str, partition: i32, from_s: i64, to_s: i64) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for second in from_s..to_s {
        let payload = serde_json::to_string(&Reading {
            sensor: format!("s{partition}"),
            at: second * 1_000,
        })
        .expect("encodes");
        producer
            .send(
                BaseRecord::to("readings")
                    .partition(partition)
                    .key("r")
                    .payload(&payload),
            )
            .expect("queue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

/// Window start (ms) → the window, of a windowed view's answer.
pub fn windows_by_start(view: &Value) -> BTreeMap<i64, &Value> {
    view["windows"]
        .as_array()
        .map(|windows| {
            windows
                .iter()
                .filter_map(|window| {
                    let start = chrono::DateTime::parse_from_rfc3339(window["start"].as_str()?)
                        .ok()?
                        .timestamp_millis();
                    Some((start, window))
                })
                .collect()
        })
        .unwrap_or_default()
}
