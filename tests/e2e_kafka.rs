//! End to end against Apache Kafka itself (KRaft, started by `scripts/local-kafka.sh`):
//! `shop produce` publishes 10,000 orders, `shop run` runs as its own process, and every
//! view, the output topic and the metrics are checked against an independent computation
//! from the same deterministic generator. Kafka's own consumer-group tool, run from the
//! broker's jars, must see the shop as any consumer application: its group's lag on
//! `order-events` reaches 0 once it has caught up. Ctrl-C must then stop `shop run`
//! cleanly.

mod harness;

use std::time::Instant;

use harness::kafka::Kafka;
use harness::shop_run::shop_matches_an_independent_computation;
use harness::{DEADLINE, get_json, order_partitions};

const EVENTS: u64 = 10_000;
const SEED: u64 = 23;

#[test]
fn shop_on_apache_kafka_matches_an_independent_computation_and_kafka_tools_see_its_lag() {
    let kafka = Kafka::start();
    let brokers = kafka.brokers();
    let mut checked = shop_matches_an_independent_computation(&brokers, EVENTS, SEED);

    // The group's committed offsets follow the checkpoints (they are for tools like this
    // one; the state's own offsets are what a restart uses), so the lag the tool prints
    // reaches 0 a commit interval after the shop caught up. Its log end must be the
    // topic's real end, as the shop's /status reports it.
    let deadline = Instant::now() + DEADLINE;
    let rows = loop {
        checked.run.assert_running();
        let rows: Vec<_> = kafka
            .group_lag("shop")
            .into_iter()
            .filter(|row| row.topic == "order-events")
            .collect();
        if rows.len() == 4 && rows.iter().all(|row| row.lag == Some(0)) {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer-group tool never showed lag 0 on order-events: {rows:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let status = get_json(&checked.base, "/status").1;
    for row in &rows {
        let partition = order_partitions(&status)
            .into_iter()
            .find(|partition| partition["partition"] == row.partition)
            .unwrap_or_else(|| panic!("partition {} in /status: {status}", row.partition));
        assert_eq!(
            partition["high_watermark"].as_i64(),
            Some(row.log_end),
            "{row:?} {partition}"
        );
        assert_eq!(row.committed, Some(row.log_end), "{row:?}");
    }
    let total: i64 = rows.iter().map(|row| row.log_end).sum();
    // The generated orders and the four sentinels the view check added.
    assert_eq!(total, EVENTS as i64 + 4);
    checked.run.interrupt_and_wait();
}
