//! Partitions added to a source topic while `shop run` runs, on Apache Kafka: the engine
//! cannot hand them to its running sources, so it stops within a few seconds, writing its
//! final checkpoint, with a message that names the topic and the way on, instead of
//! leaving them unread. The next `shop run` on the same state reads them from their
//! beginning and the rest from where it stopped.

mod harness;

use harness::kafka::Kafka;
use harness::orders::produce_orders;
use harness::{
    DEADLINE, ShopPlace, ShopProcess, checkpointed, free_port, produce_to_partitions, shop_binary,
    wait_for, wait_while_progressing,
};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use serde_json::json;

const EVENTS: u64 = 2_000;
const SEED: u64 = 43;

/// Grows `topic` to `partitions` partitions with the admin API.
fn add_partitions(brokers: &str, topic: &str, partitions: usize) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime
        .block_on(admin.create_partitions(
            &[NewPartitions::new(topic, partitions)],
            &AdminOptions::new().operation_timeout(Some(DEADLINE)),
        ))
        .expect("the request is answered");
    for result in results {
        result.expect("the partitions are added");
    }
}

#[test]
fn partitions_added_while_running_stop_the_engine_and_the_next_run_reads_them() {
    let kafka = Kafka::start();
    let brokers = kafka.brokers();
    let shop = shop_binary();
    produce_orders(&shop, &brokers, EVENTS, SEED);
    let state = tempfile::tempdir().expect("state dir");
    let state_dir = state.path().join("state").display().to_string();
    let http = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{http}");
    let mut args = ShopPlace {
        brokers: &brokers,
        state_dir: &state_dir,
        http: &http,
    }
    .args("run", 2);
    args.extend(["--topology".to_string(), "orders".to_string()]);

    let log = state.path().join("first.log");
    let mut first = ShopProcess::spawn_logging(&shop, &args, &log);
    wait_while_progressing(&mut first, &base, |status| {
        checkpointed(status) == EVENTS as i64
    });
    add_partitions(&brokers, "order-events", 6);
    // One more order on every partition, the new ones too.
    produce_to_partitions(&brokers, "order-events", 6, |partition| {
        json!({"event_type": "OrderPlaced", "order_id": format!("late_{partition}"),
               "user_id": "user_0", "items": [{"item_id": "soda", "quantity": 1, "price": 2.0}],
               "total_amount": 2.0, "status": "placed", "timestamp": 1_705_400_000_000_i64})
        .to_string()
    });
    let exit = first.wait_for_exit(DEADLINE);
    let stderr = std::fs::read_to_string(&log).expect("log");
    assert!(!exit.success(), "{stderr}");
    assert!(
        stderr.contains("order-events has 6 partitions, 2 more than the 4 this run reads"),
        "{stderr}"
    );
    assert!(stderr.contains("`shop run` on the same state"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let mut second = ShopProcess::spawn(&shop, &args);
    let status = wait_for(&mut second, &base, "/status", |status| {
        checkpointed(status) == EVENTS as i64 + 6
    });
    let offsets = status["checkpoint"]["offsets"].as_array().expect("offsets");
    for partition in [4, 5] {
        let position = offsets
            .iter()
            .find(|offset| offset["topic"] == "order-events" && offset["partition"] == partition)
            .unwrap_or_else(|| panic!("partition {partition} in the checkpoint: {status}"));
        assert_eq!(position["offset"], 1, "{position}");
    }
    second.interrupt_and_wait();
}
