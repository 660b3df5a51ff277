//! Exactly-once output (`shop run --exactly-once`) proven on Apache Kafka (KRaft, started
//! by `scripts/local-kafka.sh`), the broker that hides aborted transactions from
//! `read_committed` consumers, which rdkafka's mock cluster and Tansu cannot:
//!
//! - `shop run --exactly-once` is killed with SIGKILL five times at random points while it
//!   catches up on 60,000 orders, and restarted on the same state each time. Afterwards a
//!   `read_committed` consumer, with no deduplication of any kind, sees every expected
//!   inventory event exactly once: one per order line and each of the saga's results.
//! - A `read_uncommitted` consumer of the same topic sees more: the records of the
//!   transactions the kills left open, which the broker aborted when the next instance
//!   took over the transactional id. They were written, and hidden.
//! - A late record and a dead letter are committed once, like any output.
//! - A second instance with the same group (so the same transactional id) fences the
//!   first, which stops with an error that says so and names the transactional id.
//!
//! The kill points come from a seed printed at the start (`SLUICE_CRASH_SEED` replays it).

mod harness;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::crashes::{KillPoints, crash_scale, finish_and_check_views, kill_while_catching_up};
use harness::kafka::Kafka;
use harness::orders::produce_orders;
use harness::{
    DEADLINE, PreloadedRun, ShopPlace, ShopProcess, assign_from_beginning, checkpointed, free_port,
    shop_binary, wait_for,
};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use serde_json::Value;

const EVENTS: u64 = 60_000;
const SEED: u64 = 41;
const KILLS: usize = 5;

/// Each test runs a broker of its own; two JVMs and two engines at once would only slow
/// each other down on a small machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How many times each `sluice-id` occurs on `topic`, read from the beginning to the end
/// of every partition at `isolation` (`read_committed` or `read_uncommitted`). A
/// committed reader's end is the last stable offset, which is the log's end once no
/// transaction is open.
fn ids_read(brokers: &str, topic: &str, isolation: &str) -> BTreeMap<String, usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("e2e-{isolation}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut open: std::collections::BTreeSet<i32> = assign_from_beginning(&consumer, topic)
        .into_iter()
        .collect();
    let mut counts = BTreeMap::new();
    let deadline = Instant::now() + DEADLINE;
    while !open.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{topic} at {isolation}: partitions {open:?} never reached their end"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Ok(message)) => {
                let id = message
                    .headers()
                    .and_then(|headers| {
                        headers
                            .iter()
                            .find(|header| header.key == "sluice-id")
                            .and_then(|header| header.value)
                            .map(|value| String::from_utf8_lossy(value).into_owned())
                    })
                    .unwrap_or_default();
                *counts.entry(id).or_insert(0) += 1;
            }
            _ => {}
        }
    }
    counts
}

/// The order-line events among the ids read: the saga writes second to
/// `inventory-events`, so its ids end in `@1`.
fn split_ids(ids: &BTreeMap<String, usize>) -> (usize, usize) {
    let saga = ids.keys().filter(|id| id.ends_with("@1")).count();
    (ids.len() - saga, saga)
}

#[test]
fn kills_during_catch_up_and_a_committed_reader_sees_every_event_exactly_once() {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|held| held.into_inner());
    let mut kill_points = KillPoints::from_env();
    let (events, kills) = crash_scale(EVENTS, KILLS);
    let kafka = Kafka::start();
    let brokers = kafka.brokers();
    let PreloadedRun {
        shop,
        state: _state,
        base,
        mut args,
    } = PreloadedRun::prepare(&brokers, events, SEED);
    args.push("--exactly-once".to_string());

    // Past a checkpoint beyond where the last run died, then on for a random number of
    // records, and dead mid-transaction.
    kill_while_catching_up(
        &shop,
        &args,
        &base,
        (events, kills, 3_000),
        &mut kill_points,
    );

    let want = finish_and_check_views(&shop, &args, (&base, &brokers), (events, SEED));

    // Exactly once, with nothing but the broker's isolation: every order line and every
    // saga result once, and nothing else.
    let committed = ids_read(&brokers, "inventory-events", "read_committed");
    let twice: Vec<(&String, &usize)> = committed.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "ids read more than once: {twice:?}");
    let (lines, saga) = split_ids(&committed);
    assert_eq!(lines, want.lines, "order-line events");
    assert_eq!(saga, want.saga.event_count(), "the saga's results");
    assert!(!committed.contains_key(""), "every output record has an id");

    // The kills left transactions open; the broker aborted them when the next instance
    // took the transactional id over. Their records are in the log, hidden from the
    // committed reader above, visible to an uncommitted one.
    let uncommitted = ids_read(&brokers, "inventory-events", "read_uncommitted");
    let written: usize = uncommitted.values().sum();
    let kept: usize = committed.values().sum();
    assert!(
        written > kept,
        "aborted records are in the log: {written} read uncommitted, {kept} committed"
    );
    assert!(committed.keys().all(|id| uncommitted.contains_key(id)));
    eprintln!(
        "inventory-events after {kills} kills: {kept} committed, {} aborted",
        written - kept
    );
}

#[test]
fn a_second_instance_with_the_same_group_fences_the_first() {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|held| held.into_inner());
    let kafka = Kafka::start();
    let brokers = kafka.brokers();
    let shop = shop_binary();
    produce_orders(&shop, &brokers, 2_000, SEED);
    let spawn = |state: &tempfile::TempDir, http: &str, log: &std::path::Path| {
        let mut args = ShopPlace {
            brokers: &brokers,
            state_dir: &state.path().display().to_string(),
            http,
        }
        .args("run", 1);
        args.push("--exactly-once".to_string());
        ShopProcess::spawn_logging(&shop, &args, log)
    };
    let logs = tempfile::tempdir().expect("log dir");
    let (first_state, second_state) = (
        tempfile::tempdir().expect("state dir"),
        tempfile::tempdir().expect("state dir"),
    );
    let first_http = format!("127.0.0.1:{}", free_port());
    let first_base = format!("http://{first_http}");
    let first_log = logs.path().join("first.log");
    let mut first = spawn(&first_state, &first_http, &first_log);
    let caught_up = wait_for(&mut first, &first_base, "/status", |status| {
        checkpointed(status) == 2_000
            && status["transactions"]["committed"].as_u64().unwrap_or(0) >= 1
    });
    assert!(caught_up["error"].is_null(), "{caught_up}");

    // A record no one can read and one that comes an hour late: their dead letter and late
    // record go through the transaction like any output, each committed once.
    harness::produce_to_partitions(&brokers, "order-events", 2, |partition| match partition {
        0 => "not json".to_string(),
        _ => serde_json::json!({"event_type": "OrderCancelled", "order_id": "late_1",
            "timestamp": harness::orders::START_MS})
        .to_string(),
    });
    let settled = wait_for(&mut first, &first_base, "/status", |status| {
        checkpointed(status) == 2_002 && status["late"] == 1 && status["dlq"] == 1
    });
    assert!(settled["error"].is_null(), "{settled}");
    let late = ids_read(&brokers, "order-events.late", "read_committed");
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(
        late.iter()
            .all(|(id, count)| id.starts_with("order-events/1/") && *count == 1),
        "{late:?}"
    );
    let dead = ids_read(&brokers, "order-events.dlq", "read_committed");
    // Dead letters carry where they were read, not an output id.
    assert_eq!(dead.values().sum::<usize>(), 1, "{dead:?}");

    // The second instance initializes the same transactional id: the broker bumps its
    // epoch, and the first's next transactional request is refused as fenced. New orders
    // make the first write again.
    let second_http = format!("127.0.0.1:{}", free_port());
    let second_base = format!("http://{second_http}");
    let mut second = spawn(&second_state, &second_http, &logs.path().join("second.log"));
    wait_for(&mut second, &second_base, "/status", |status| {
        status["transactions"]["committed"].as_u64().unwrap_or(0) >= 1
    });
    harness::produce_to_partitions(&brokers, "order-events", 4, |partition| {
        serde_json::json!({"event_type": "OrderPlaced", "order_id": format!("after_{partition}"),
            "user_id": "user_0", "items": [{"item_id": "soda", "quantity": 1, "price": 2.0}],
            "total_amount": 2.0, "status": "placed",
            "timestamp": harness::orders::START_MS + 86_400_000})
        .to_string()
    });
    let status = first.wait_for_exit(DEADLINE);
    assert!(!status.success(), "a fenced instance stops with an error");
    let log = std::fs::read_to_string(&first_log).unwrap_or_default();
    assert!(
        log.contains("fenced") && log.contains("shop-output"),
        "the error says the instance was fenced and names the transactional id:\n{log}"
    );
    // The newer instance goes on.
    let newer: Value = wait_for(&mut second, &second_base, "/status", |status| {
        checkpointed(status) == 2_006
    });
    assert!(newer["error"].is_null(), "{newer}");
    second.interrupt_and_wait();
}
