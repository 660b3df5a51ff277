//! Output the broker refuses for good, on Apache Kafka with its own authorizer: the shop's
//! SCRAM user may do anything but write to `inventory-events` (a DENY ACL made with Kafka's
//! own `kafka-acls` tool), so the broker answers every inventory event with
//! TOPIC_AUTHORIZATION_FAILED.
//! - With `--on-output-error dead-letter`, `shop run` goes on: every view equals the
//!   independent computation, `inventory-events` stays empty, and `inventory-events.dlq`
//!   holds every expected event once, by `sluice-id`, with the broker's answer in
//!   `sluice-error`.
//! - By default, `shop run` stops with an error naming the topic, the partition, the
//!   record's `sluice-id` and the cause, and checkpoints none of the orders.

mod harness;

use harness::kafka::Kafka;
use harness::orders::{
    add_sentinels, assert_views, distinct_ids, expected, order_line_ids, produce_orders,
};
use harness::{
    DEADLINE, ShopProcess, checkpointed, free_port, get_json, read_topic_until, shop_binary,
    topic_size, wait_for, wait_while_progressing,
};

const EVENTS: u64 = 2_000;
const SEED: u64 = 41;
const USER: &str = "shop";
const PASSWORD: &str = "shop-scram-secret";

/// A broker with a SASL_PLAINTEXT listener for the shop's SCRAM user beside PLAINTEXT,
/// whose anonymous principal (the broker itself, the test's tools) is a super user, and
/// the standard authorizer, which allows what no ACL mentions.
fn authorizing_kafka() -> Kafka {
    let properties = [
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=true",
        "super.users=User:ANONYMOUS",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
    ];
    Kafka::start_with(vec![
        ("KAFKA_EXTRA_LISTENERS".into(), "SASL_PLAINTEXT".into()),
        ("KAFKA_EXTRA_PROPERTIES".into(), properties.join("\n")),
        (
            "KAFKA_SCRAM_CREDENTIALS".into(),
            format!("SCRAM-SHA-512=[name={USER},password={PASSWORD}]"),
        ),
    ])
}

/// Denies the shop's user writes to `topic`, with `kafka-acls`.
fn deny_writes(kafka: &Kafka, topic: &str) {
    let output = kafka.tool(
        "org.apache.kafka.tools.AclCommand",
        &[
            "--bootstrap-server",
            &kafka.brokers(),
            "--add",
            "--deny-principal",
            &format!("User:{USER}"),
            "--operation",
            "Write",
            "--topic",
            topic,
        ],
    );
    assert!(
        output.status.success(),
        "kafka-acls: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn shop_run_args(sasl: &str, group: &str, state_dir: &str, http: &str) -> Vec<String> {
    [
        "run",
        "--brokers",
        sasl,
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanism=SCRAM-SHA-512",
        "-X",
        &format!("sasl.username={USER}"),
        "-X",
        &format!("sasl.password={PASSWORD}"),
        "--group",
        group,
        "--state-dir",
        state_dir,
        "--http",
        http,
        "--workers",
        "2",
        "--partitions",
        "4",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect()
}

#[test]
fn refused_output_goes_to_its_dead_letter_topic_or_stops_the_engine() {
    let kafka = authorizing_kafka();
    let brokers = kafka.brokers();
    let sasl = kafka.listener("SASL_PLAINTEXT");
    let shop = shop_binary();
    produce_orders(&shop, &brokers, EVENTS, SEED);
    deny_writes(&kafka, "inventory-events");

    // By default: stop, naming the record, before any checkpoint takes its order.
    let state = tempfile::tempdir().expect("state dir");
    let http = format!("127.0.0.1:{}", free_port());
    let log = state.path().join("shop.log");
    let args = shop_run_args(
        &sasl,
        "shop-stops",
        &state.path().join("state").display().to_string(),
        &http,
    );
    let exit = ShopProcess::spawn_logging(&shop, &args, &log).wait_for_exit(DEADLINE);
    let stderr = std::fs::read_to_string(&log).expect("log");
    assert!(!exit.success(), "{stderr}");
    assert!(
        stderr.contains("the broker refused output record inventory-events/"),
        "{stderr}"
    );
    assert!(stderr.contains("(sluice-id order-events/"), "{stderr}");
    assert!(stderr.contains("uthoriz"), "the cause is named: {stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");

    // With dead letters: every inventory event lands beside its topic, and the views are
    // those of the orders.
    let state = tempfile::tempdir().expect("state dir");
    let state_dir = state.path().display().to_string();
    let http = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{http}");
    let mut args = shop_run_args(&sasl, "shop-dead-letters", &state_dir, &http);
    args.extend(["--on-output-error".into(), "dead-letter".into()]);
    let mut run = ShopProcess::spawn(&shop, &args);
    wait_while_progressing(&mut run, &base, |status| {
        checkpointed(status) == EVENTS as i64
    });
    let mut want = expected(EVENTS, SEED);
    add_sentinels(&brokers, &mut want);
    assert_views(&mut run, &base, &want);

    let written = want.lines + want.saga.event_count();
    let dead_letters = read_topic_until(&brokers, "inventory-events.dlq", |found| {
        found.len() >= written
    });
    assert_eq!(order_line_ids(&dead_letters).len(), want.lines);
    assert_eq!(distinct_ids(&dead_letters).len(), written);
    assert_eq!(dead_letters.len(), written, "each dead letter once");
    for headers in &dead_letters {
        let error = headers.get("sluice-error").map(String::as_str);
        assert!(
            error.is_some_and(|error| error.contains("uthoriz")),
            "{headers:?}"
        );
    }
    assert_eq!(topic_size(&brokers, "inventory-events", 4), 0);
    let status = wait_for(&mut run, &base, "/status", |status| {
        checkpointed(status) == EVENTS as i64 + 4
    });
    assert!(status["error"].is_null(), "{status}");
    let (code, ready) = get_json(&base, "/readyz");
    assert_eq!(code, 200, "{ready}");
    run.interrupt_and_wait();
}
