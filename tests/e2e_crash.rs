//! Crashes at random points against Tansu with SQLite storage, with `shop` as a separate
//! process: 200,000 orders, `shop run` killed with SIGKILL five times at random moments
//! and restarted on the same state each time. Afterwards:
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
use std::time::{Duration, Instant};

use harness::orders::{add_sentinels, assert_views, expected, produce_orders};
use harness::{
    DEADLINE, ShopPlace, ShopProcess, Tansu, checkpointed, free_port, order_partitions,
    orders_processed, shop_binary, wait_for, wait_for_within,
};
use serde_json::Value;
use sluice::kafka::KafkaSettings;
use sluice::kafka::dedupe::{DedupeReport, read_deduplicated};
use sluice_topologies::events::OrderEvent;

const EVENTS: u64 = 200_000;
const SEED: u64 = 31;
const KILLS: usize = 5;

/// How far the run has read: the sum of its partitions' next offsets.
fn read_position(status: &Value) -> i64 {
    order_partitions(status)
        .iter()
        .map(|partition| partition["offset"].as_i64().unwrap_or(0))
        .sum()
}

/// A small deterministic generator for the kill points (xorshift64*).
struct KillPoints(u64);

impl KillPoints {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
    }
}

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
fn five_kills_lose_nothing_and_the_dedupe_helper_reads_exactly_once() {
    let seed = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64 | 1)
        });
    eprintln!("kill points from SLUICE_CRASH_SEED={seed}");
    let mut kill_points = KillPoints(seed);

    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    let shop = shop_binary();
    produce_orders(&shop, &brokers, EVENTS, SEED);
    let state = tempfile::tempdir().expect("state dir");
    let state_dir = state.path().display().to_string();
    let http = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{http}");
    let args = ShopPlace {
        brokers: &brokers,
        state_dir: &state_dir,
        http: &http,
    }
    .args("run", 2);

    let mut kills = Vec::new();
    for kill in 0..KILLS {
        let mut run = ShopProcess::spawn(&shop, &args);
        // Each run gets past a checkpoint beyond where it started, so the crashes make
        // progress, then reads on for a random number of records and dies mid-stride.
        let slice = EVENTS / (KILLS as u64 + 1);
        let target = slice * kill as u64 + kill_points.next(slice);
        let status = wait_for(&mut run, &base, "/status", |status| {
            checkpointed(status) >= target as i64 && status["processed"].as_u64().is_some()
        });
        let read_before = orders_processed(&status);
        let more = kill_points.next(5_000);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (_, status) = harness::get_json(&base, "/status");
            let processed = orders_processed(&status);
            if processed >= read_before + more
                || read_position(&status) >= EVENTS as i64
                || Instant::now() >= deadline
            {
                kills.push((checkpointed(&status), processed));
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        run.kill_hard();
    }
    eprintln!("killed at (checkpointed, read by that run): {kills:?}");

    let mut last = ShopProcess::spawn(&shop, &args);
    let mut want = expected(EVENTS, SEED);
    // The last run may have most of a partition to read (the broker serves partitions in
    // turn, so the killed runs can leave one far behind), through the debug build.
    wait_for_within(&mut last, &base, "/status", 3 * DEADLINE, |status| {
        checkpointed(status) == EVENTS as i64
    });
    add_sentinels(&brokers, &mut want);
    assert_views(&mut last, &base, &want);
    wait_for(&mut last, &base, "/status", |status| {
        checkpointed(status) == EVENTS as i64 + 4
    });
    last.interrupt_and_wait();

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
        "inventory-events after {KILLS} kills: {} records, {} duplicates, {} unique",
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
