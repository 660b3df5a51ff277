//! Source offsets the log no longer holds, on Apache Kafka. Records the state has not read
//! are deleted (`DeleteRecords`, as retention would), at two moments:
//! - while the engine is stopped: the next start refuses, naming the partition, the
//!   offsets and the replay; with `--on-missing-offsets earliest` it reads on from the
//!   log's start, and says so in `/status`;
//! - while it runs behind (a broker quota slows its consumers to a crawl, as a lagging
//!   engine would be): by default it stops with the same refusal; with `earliest` it moves
//!   the partition and goes on.
//!
//! Each run's counts are checked against the broker's offsets: every record the log still
//! holds is read once, and nothing deleted is claimed.

mod harness;

use std::process::Output;

use harness::kafka::Kafka;
use harness::orders::produce_orders_through;
use harness::{
    DEADLINE, PreloadedRun, ShopPlace, ShopProcess, checkpointed, free_port, orders_processed,
    shop_binary, wait_for, wait_while_progressing,
};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

const EVENTS: u64 = 2_000;
const SEED: u64 = 47;
const TOPIC: &str = "order-events";

/// Deletes `partition`'s records below `before`, as retention would.
fn delete_records(brokers: &str, partition: i32, before: i64) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(TOPIC, partition, Offset::Offset(before))
        .expect("offset");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let deleted = runtime
        .block_on(admin.delete_records(
            &offsets,
            &AdminOptions::new().operation_timeout(Some(DEADLINE)),
        ))
        .expect("the records are deleted");
    for element in deleted.elements() {
        assert!(element.error().is_ok(), "{element:?}");
    }
}

/// A partition's log start and end.
fn bounds(brokers: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer");
    consumer
        .fetch_watermarks(TOPIC, partition, DEADLINE)
        .expect("watermarks")
}

/// Records the logs of `order-events` hold now, over its four partitions.
fn held(brokers: &str) -> i64 {
    (0..4)
        .map(|partition| {
            let (start, end) = bounds(brokers, partition);
            end - start
        })
        .sum()
}

/// The next offset the engine reads on `partition`, from a `/status` answer.
fn offset_of(status: &Value, partition: i32) -> i64 {
    status["partitions"]
        .as_array()
        .and_then(|partitions| {
            partitions
                .iter()
                .find(|p| p["topic"] == TOPIC && p["partition"] == partition)
        })
        .and_then(|p| p["offset"].as_i64())
        .unwrap_or(-1)
}

fn moved(status: &Value) -> Vec<Value> {
    status["missing_offsets"]["moved"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The orders topology alone, with `flags`.
fn args_with(run: &PreloadedRun, flags: &[&str]) -> Vec<String> {
    let mut args = run.args.clone();
    args.extend(["--topology", "orders"].map(str::to_string));
    args.extend(flags.iter().map(|flag| flag.to_string()));
    args
}

#[test]
fn records_deleted_while_stopped_are_refused_or_skipped_as_told() {
    let kafka = Kafka::start();
    let brokers = kafka.brokers();
    let run = PreloadedRun::prepare(&brokers, EVENTS, SEED);
    let args = args_with(&run, &[]);
    let mut first = ShopProcess::spawn(&run.shop, &args);
    let status = wait_while_progressing(&mut first, &run.base, |status| {
        checkpointed(status) == EVENTS as i64
    });
    first.interrupt_and_wait();
    // All read and checkpointed: the state reads on from the log's end.
    let read_up_to = bounds(&brokers, 0).1;
    assert_eq!(offset_of(&status, 0), read_up_to, "{status}");

    // More orders, then the first half of partition 0's new ones deleted before any run
    // read them.
    harness::orders::produce_orders(&run.shop, &brokers, EVENTS, SEED + 1);
    let (_, end) = bounds(&brokers, 0);
    assert!(
        end - read_up_to > 20,
        "partition 0 got new records: {read_up_to}..{end}"
    );
    let deleted_up_to = read_up_to + (end - read_up_to) / 2;
    delete_records(&brokers, 0, deleted_up_to);

    let refused = std::process::Command::new(&run.shop)
        .args(&args)
        .output()
        .expect("shop runs");
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    for needle in [
        format!("source partition {TOPIC}/0 is to be read from offset {read_up_to}"),
        format!("records {read_up_to}..{deleted_up_to} were deleted"),
        "shop replay --from-beginning".to_string(),
        "--on-missing-offsets earliest".to_string(),
    ] {
        assert!(stderr.contains(&needle), "{needle}: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");

    let mut second = ShopProcess::spawn(
        &run.shop,
        &args_with(&run, &["--on-missing-offsets", "earliest"]),
    );
    let total_end: i64 = (0..4).map(|partition| bounds(&brokers, partition).1).sum();
    let status = wait_while_progressing(&mut second, &run.base, |status| {
        checkpointed(status) == total_end
    });
    // Everything the logs hold that the first run had not read, once; nothing deleted.
    let expected = total_end - EVENTS as i64 - (deleted_up_to - read_up_to);
    assert_eq!(orders_processed(&status) as i64, expected, "{status}");
    assert_eq!(status["missing_offsets"]["policy"], "earliest");
    let moved = moved(&status);
    assert_eq!(moved.len(), 1, "{status}");
    let reset = &moved[0];
    assert_eq!(
        (
            reset["partition"].as_i64(),
            reset["needed"].as_i64(),
            reset["moved_to"].as_i64(),
            reset["found"].as_str()
        ),
        (
            Some(0),
            Some(read_up_to),
            Some(deleted_up_to),
            Some("start")
        ),
        "{reset}"
    );
    second.interrupt_and_wait();
}

/// Sets (or with `None` removes) a fetch quota on the engine's worker consumers.
fn throttle_workers(kafka: &Kafka, bytes_per_second: Option<u32>) {
    let brokers = kafka.brokers();
    for worker in ["sluice-w0", "sluice-w1"] {
        let change = match bytes_per_second {
            Some(rate) => [
                "--add-config".to_string(),
                format!("consumer_byte_rate={rate}"),
            ],
            None => [
                "--delete-config".to_string(),
                "consumer_byte_rate".to_string(),
            ],
        };
        let output = kafka.tool(
            "org.apache.kafka.tools.ConfigCommand",
            &[
                "--bootstrap-server",
                &brokers,
                "--alter",
                &change[0],
                &change[1],
                "--entity-type",
                "clients",
                "--entity-name",
                worker,
            ],
        );
        assert!(output.status.success(), "{}", stderr_of(&output));
    }
}

/// The consumers fetch little at a time, so that a quota holds them back (librdkafka wants
/// `fetch.max.bytes` at least `message.max.bytes`, whose least is 1000).
const SMALL_FETCHES: [&str; 8] = [
    "-X",
    "message.max.bytes=1000",
    "-X",
    "fetch.max.bytes=1024",
    "-X",
    "fetch.message.max.bytes=1024",
    "-X",
    "queued.max.messages.kbytes=16",
];

#[test]
fn records_deleted_ahead_of_a_lagging_engine_stop_it_or_are_skipped_as_told() {
    let kafka = Kafka::start();
    let brokers = kafka.brokers();
    let shop = shop_binary();
    // Small batches, so that a fetch brings a few records, not a partition's worth.
    produce_orders_through(
        &shop,
        &brokers,
        &["-X", "batch.num.messages=5"],
        EVENTS,
        SEED,
    );
    throttle_workers(&kafka, Some(512));
    let http = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{http}");
    let run_on = |state_dir: &str, flags: &[&str]| {
        let mut args = ShopPlace {
            brokers: &brokers,
            state_dir,
            http: &http,
        }
        .args("run", 2);
        args.extend(["--topology", "orders"].map(str::to_string));
        args.extend(
            SMALL_FETCHES
                .iter()
                .chain(flags)
                .map(|flag| flag.to_string()),
        );
        args
    };

    // By default: the run stops, naming the partition.
    let first_state = tempfile::tempdir().expect("state dir");
    let log = first_state.path().join("refused.log");
    let mut refusing = ShopProcess::spawn_logging(
        &shop,
        &run_on(&first_state.path().join("state").display().to_string(), &[]),
        &log,
    );
    let status = wait_for(&mut refusing, &base, "/status", |status| {
        offset_of(status, 0) > 0
    });
    let behind = offset_of(&status, 0);
    let (_, end) = bounds(&brokers, 0);
    assert!(
        end - behind > 100,
        "the engine is behind: {behind} of {end}"
    );
    delete_records(&brokers, 0, end - 50);
    let exit = refusing.wait_for_exit(DEADLINE);
    let stderr = std::fs::read_to_string(&log).expect("log");
    assert!(!exit.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "source partition {TOPIC}/0 is to be read from offset"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("shop replay --from-beginning"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // With `earliest`, on a fresh state (which reads partition 0 from its log start, as a
    // new application does): partition 1 moves on while running.
    let second_state = tempfile::tempdir().expect("state dir");
    let mut moving = ShopProcess::spawn(
        &shop,
        &run_on(
            &second_state.path().join("state").display().to_string(),
            &["--on-missing-offsets", "earliest"],
        ),
    );
    let status = wait_for(&mut moving, &base, "/status", |status| {
        offset_of(status, 1) > 0
    });
    let behind = offset_of(&status, 1);
    let (_, end) = bounds(&brokers, 1);
    assert!(
        end - behind > 100,
        "the engine is behind: {behind} of {end}"
    );
    delete_records(&brokers, 1, end - 50);
    let status = wait_for(&mut moving, &base, "/status", |status| {
        !moved(status).is_empty()
    });
    let resets = moved(&status);
    assert_eq!(resets.len(), 1, "{status}");
    let reset = &resets[0];
    assert_eq!(
        (
            reset["partition"].as_i64(),
            reset["moved_to"].as_i64(),
            reset["found"].as_str()
        ),
        (Some(1), Some(end - 50), Some("running")),
        "{reset}"
    );
    let needed = reset["needed"].as_i64().expect("needed");
    assert!(needed >= behind && needed < end - 50, "{reset}");
    throttle_workers(&kafka, None);
    let ends: Vec<(i64, i64)> = (0..4)
        .map(|partition| bounds(&brokers, partition))
        .collect();
    let total_end: i64 = ends.iter().map(|(_, end)| end).sum();
    let status = wait_while_progressing(&mut moving, &base, |status| {
        checkpointed(status) == total_end
    });
    // Every record the logs hold, once, and of partition 1 also those read before the
    // gap: nothing the gap deleted, nothing twice.
    let expected = held(&brokers) + needed;
    assert_eq!(orders_processed(&status) as i64, expected, "{status}");
    moving.interrupt_and_wait();
}
