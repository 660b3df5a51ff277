//! An output record the broker refuses for good is never counted as delivered, on rdkafka's
//! in-process MOCK cluster (a development broker, used here for speed, whose produce
//! requests can be made to fail): the engine stops with an error that names the record's
//! topic, partition and `sluice-id`, and no checkpoint passes the input it came from.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use sluice::dsl::{Source, TopologyFn};
use sluice::runtime::start;

use common::readings::{Reading, produce_readings, readings_cluster, readings_engine_config};
use common::{checkpointed, wait_for};

const PARTITIONS: i32 = 2;
const SECONDS: i64 = 50;

fn topology() -> TopologyFn {
    Arc::new(|topology| {
        topology
            .source(Source::<Reading>::topic("readings").event_time(|reading| reading.at))
            .to("copies");
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_output_record_stops_the_engine_before_its_input_is_checkpointed() {
    let cluster = readings_cluster(PARTITIONS);
    cluster
        .create_topic("copies", PARTITIONS, 1)
        .expect("topic");
    let brokers = cluster.bootstrap_servers();
    for partition in 0..PARTITIONS {
        produce_readings(&brokers, partition, 0, SECONDS);
    }
    // From now on every produce request is refused for good: a record too large.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; 64],
    );

    let state = tempfile::tempdir().expect("state dir");
    let mut config = readings_engine_config(&brokers, PARTITIONS, state.path());
    config.checkpoint_interval = Duration::from_millis(50);
    let engine = start(config, topology()).await.expect("engine starts");

    let status = wait_for(&engine, "/status", |status| status["error"].is_string()).await;
    let error = status["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("the broker refused output record copies/"),
        "{error}"
    );
    assert!(error.contains("(sluice-id readings/"), "{error}");
    assert!(error.contains("too large"), "{error}");
    // Every produce request failed, so no record read was delivered and no checkpoint may
    // hold any of them.
    assert_eq!(checkpointed(&status), 0, "{status}");
    // The engine stopped itself; joining it returns.
    let _ = engine.join().await;
}
