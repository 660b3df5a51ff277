//! Crashes at random points against Apache Kafka (KRaft, `scripts/local-kafka.sh`), with
//! `shop` as a separate process: 200,000 orders, `shop run` killed with SIGKILL five times
//! at random moments and restarted on the same state each time. Afterwards:
//! - every view equals the independent computation from the generator (nothing counted
//!   twice, nothing lost);
//! - the at-least-once `inventory-events` holds every expected event, and the duplicates
//!   the crashes caused are counted and reported;
//! - read through the dedupe helper, it holds exactly the expected events: one per order
//!   line and the saga's results, each id exactly once.
//!
//! The kill points come from a seed printed at the start, so a failure can be replayed
//! with `SLUICE_CRASH_SEED`.

mod harness;

use std::collections::BTreeSet;

use harness::crashes::{KillPoints, crash_scale, finish_and_check_views, kill_while_catching_up};
use harness::kafka::Kafka;
use harness::{DEADLINE, PreloadedRun};
use serde_json::Value;
use sluice::kafka::KafkaSettings;
use sluice::kafka::dedupe::{DedupeReport, read_deduplicated};
use sluice_topologies::events::OrderEvent;

const EVENTS: u64 = 200_000;
const SEED: u64 = 31;
const KILLS: usize = 5;

/// The `sluice-id` of every inventory event the orders on `order-events` must produce: one
/// per line, named by the order's partition, offset and line.
fn expected_ids(settings: &KafkaSettings) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    read_deduplicated(settings, "order-events", DEADLINE, |record| {
        if let Ok(OrderEvent::OrderPlaced(order)) = serde_json::from_str(&record.value) {
            for line in 0..order.items.len() {
                ids.insert(format!(
                    "order-events/{}/{}/{line}",
                    record.partition, record.offset
                ));
            }
        }
    })
    .expect("order-events reads to its end");
    ids
}

#[test]
fn kills_lose_nothing_and_the_dedupe_helper_reads_exactly_once() {
    let mut kill_points = KillPoints::from_env();
    let (events, kills) = crash_scale(EVENTS, KILLS);

    let kafka = Kafka::start();
    let brokers = kafka.brokers();
    let PreloadedRun {
        shop,
        state: _state,
        base,
        args,
    } = PreloadedRun::prepare(&brokers, events, SEED);

    kill_while_catching_up(
        &shop,
        &args,
        &base,
        (events, kills, 5_000),
        &mut kill_points,
    );

    let want = finish_and_check_views(&shop, &args, (&base, &brokers), (events, SEED));

    let settings = KafkaSettings::new(&brokers);
    let want_ids = expected_ids(&settings);
    assert_eq!(want_ids.len(), want.lines);
    let mut kept_ids = BTreeSet::new();
    let report: DedupeReport =
        read_deduplicated(&settings, "inventory-events", DEADLINE, |record| {
            if let Some(id) = record.id {
                kept_ids.insert(id);
            }
        })
        .expect("inventory-events reads to its end");
    eprintln!(
        "inventory-events after {kills} kills: {} records, {} duplicates, {} unique",
        report.records, report.duplicates, report.kept
    );
    // At least once: every expected event is there, duplicates or not.
    assert_eq!(report.without_id, 0);
    assert_eq!(report.records, report.kept + report.duplicates);
    // Exactly once through the helper: each expected id once, nothing else. The order-line
    // ids are known in advance; the saga's (its second writer's, ending in `@1`) are as
    // many as the model's results.
    let saga_events = want.saga.event_count();
    assert_eq!(report.kept as usize, want.lines + saga_events);
    let (saga_ids, line_ids): (BTreeSet<String>, BTreeSet<String>) =
        kept_ids.into_iter().partition(|id| id.ends_with("@1"));
    assert!(
        line_ids == want_ids,
        "the kept order-line ids differ from the expected ones"
    );
    assert_eq!(saga_ids.len(), saga_events);

    // The command-line helper agrees.
    let output = std::process::Command::new(&shop)
        .args([
            "dedupe",
            "--brokers",
            &brokers,
            "--topic",
            "inventory-events",
        ])
        .output()
        .expect("shop dedupe runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).expect("a JSON summary");
    assert_eq!(summary["kept"], Value::from(want.lines + saga_events));
    assert_eq!(summary["duplicates"], Value::from(report.duplicates));
}
