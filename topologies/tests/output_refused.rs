//! An output record the broker refuses for good is never counted as delivered, on rdkafka's
//! in-process MOCK cluster (a development broker, used here for speed, whose produce
//! requests can be made to fail): the engine stops with an error that names the record's
//! topic, partition and `sluice-id`, and no checkpoint passes the input it came from; or,
//! with `--on-output-error dead-letter`, the record goes to `<topic>.dlq` with the broker's
//! answer and the engine goes on.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sluice::dsl::{Source, TopologyFn};
use sluice::output::OnOutputError;
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

/// A record read back: its headers by name, and its value.
struct ReadBack {
    headers: BTreeMap<String, String>,
    payload: String,
}

/// Every record of `topic` (`PARTITIONS` partitions) on the mock cluster, read to its end.
fn read_topic(brokers: &str, topic: &str) -> Vec<ReadBack> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "output-refused-check")
        .create()
        .expect("consumer");
    let mut ends = 0;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .expect("watermarks");
        ends += high;
        partitions
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&partitions).expect("assign");
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (read.len() as i64) < ends {
        assert!(
            Instant::now() < deadline,
            "read {} of {ends} on {topic}",
            read.len()
        );
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = polled.expect("record");
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        let value = String::from_utf8_lossy(header.value.unwrap_or_default());
                        (header.key.to_string(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let payload = String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
        read.push(ReadBack { headers, payload });
    }
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dead_letters_a_refused_output_record_goes_to_its_dlq_and_the_engine_goes_on() {
    let cluster = readings_cluster(PARTITIONS);
    for topic in ["copies", "copies.dlq"] {
        cluster.create_topic(topic, PARTITIONS, 1).expect("topic");
    }
    let brokers = cluster.bootstrap_servers();
    for partition in 0..PARTITIONS {
        produce_readings(&brokers, partition, 0, SECONDS);
    }
    // The first produce request is refused for good (a record too large); the output is
    // the only producer (processing reports wait an hour), so the refused records are
    // copies, whose dead letters come after.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );

    let state = tempfile::tempdir().expect("state dir");
    let mut config = readings_engine_config(&brokers, PARTITIONS, state.path());
    config.checkpoint_interval = Duration::from_millis(50);
    config.report_interval = Duration::from_secs(3600);
    config.on_output_error = OnOutputError::DeadLetter;
    let engine = start(config, topology()).await.expect("engine starts");

    let readings = PARTITIONS as i64 * SECONDS;
    let status = wait_for(&engine, "/status", |status| {
        checkpointed(status) == readings || status["error"].is_string()
    })
    .await;
    assert!(status["error"].is_null(), "{status}");

    // Every reading was copied once: to `copies`, or, refused, to `copies.dlq` with the
    // broker's answer and the same `sluice-id` and value.
    let copies = read_topic(&brokers, "copies");
    let dead_letters = read_topic(&brokers, "copies.dlq");
    assert!(
        !dead_letters.is_empty(),
        "the first produce request was refused"
    );
    let mut ids: Vec<&str> = copies
        .iter()
        .chain(&dead_letters)
        .map(|record| record.headers["sluice-id"].as_str())
        .collect();
    ids.sort_unstable();
    let want: Vec<String> = {
        let mut want: Vec<String> = (0..PARTITIONS)
            .flat_map(|partition| {
                (0..SECONDS).map(move |offset| format!("readings/{partition}/{offset}/0"))
            })
            .collect();
        want.sort_unstable();
        want
    };
    assert_eq!(ids, want);
    for record in &dead_letters {
        let error = &record.headers["sluice-error"];
        assert!(error.contains("too large"), "{error}");
        let reading: Reading = serde_json::from_str(&record.payload).expect("a reading");
        let id = &record.headers["sluice-id"];
        let offset: i64 = id
            .split('/')
            .nth(2)
            .and_then(|o| o.parse().ok())
            .expect("offset");
        assert_eq!(reading.at, offset * 1_000, "{id}: {}", record.payload);
    }
    assert_eq!(
        status["dlq"],
        serde_json::json!(dead_letters.len()),
        "{status}"
    );
    assert_eq!(
        status["delivery_failures"],
        serde_json::json!(dead_letters.len()),
        "{status}"
    );
    engine.shutdown();
    engine.join().await.expect("a clean stop");
}
