//! Shared by the in-process engine tests: the shop on rdkafka's in-process mock cluster,
//! HTTP polling with a deadline against a running engine, and reading checkpoint progress
//! from `/status`; [`readings`], a small windowed input for tests that need no shop.

#![allow(dead_code)]

pub mod readings;

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::Value;
use sluice::app::Application;
use sluice::kafka::KafkaSettings;
use sluice::runtime::{EngineConfig, RunningEngine};
use sluice_topologies::Shop;

/// rdkafka's in-process MOCK cluster (a development broker, for fast tests only) with every
/// topic of the shop, `partitions` each. It does not answer CreateTopics, so the topics are
/// made here.
pub fn mock_cluster_with_shop_topics(
    partitions: i32,
) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    for topic in sluice::runtime::plan_of(&Shop.topology()).topics() {
        cluster.create_topic(&topic, partitions, 1).expect("topic");
    }
    cluster
}

/// The settings of a shop engine on `brokers`: HTTP on a free port, and no topic creation
/// (the mock cluster cannot).
pub fn shop_config(brokers: &str, partitions: i32, state_dir: &Path) -> EngineConfig {
    let mut settings = KafkaSettings::new(brokers);
    settings.partitions = partitions;
    let mut config = EngineConfig::new(settings, state_dir);
    config.http_addr = Some("127.0.0.1:0".parse().expect("addr"));
    config.create_topics = false;
    config
}

/// The JSON answer of `path` on the engine's HTTP API (`Null` if there is none yet).
pub async fn get(engine: &RunningEngine, path: &str) -> Value {
    let url = format!("http://{}{path}", engine.http_addr().expect("http"));
    match reqwest::get(url).await {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Polls `path` until `done`, failing with the last answer after a minute.
pub async fn wait_for(engine: &RunningEngine, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = get(engine, path).await;
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never reached the expected state; last answer: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sum of the offsets of the last checkpoint in a `/status` answer, over the input
/// topics: how many input records it holds. (`monitoring-events` is left out: it grows by
/// itself, with every processing report.)
pub fn checkpointed(status: &Value) -> i64 {
    status["checkpoint"]["offsets"]
        .as_array()
        .map(|offsets| {
            offsets
                .iter()
                .filter(|offset| offset["topic"] != "monitoring-events")
                .filter_map(|offset| offset["offset"].as_i64())
                .sum()
        })
        .unwrap_or(0)
}

/// Records of `order-events` this run read and decoded, from a `/status` answer.
pub fn orders_processed(status: &Value) -> u64 {
    status["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|partition| partition["topic"] == "order-events")
        .filter_map(|partition| partition["processed"].as_u64())
        .sum()
}

/// Waits until checkpoints hold `records` records, then for `more` checkpoints after that
/// one: what "nothing is left to happen" looks like from outside.
pub async fn wait_until_settled(engine: &RunningEngine, records: i64, more: u64) -> Value {
    let read = wait_for(engine, "/status", |status| checkpointed(status) == records).await;
    let id = read["checkpoint"]["id"].as_u64().unwrap_or(0);
    wait_for(engine, "/status", |status| {
        status["checkpoint"]["id"].as_u64().unwrap_or(0) >= id + more
    })
    .await
}
