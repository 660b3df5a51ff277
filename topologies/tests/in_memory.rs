//! The orders topology run to completion over in-memory input (no broker): the table
//! `order_totals` must agree exactly with the windows of `orders_per_minute`.

use serde_json::Value;
use sluice::app::{Application, GeneratorOptions};
use sluice::testkit::run_to_completion;
use sluice_topologies::Shop;
use sluice_topologies::generator::generated_input;

fn generated(events: usize, partitions: u64) -> sluice::testkit::MemoryInput {
    let options = GeneratorOptions {
        seed: 3,
        failure_rate: 0.05,
        start_ms: 1_705_314_600_000,
        interval_ms: 100,
    };
    generated_input(options, events, partitions)
}

#[test]
fn order_totals_agree_with_the_windows_for_any_worker_count() {
    for workers in [1, 2, 3] {
        let dir = tempfile::tempdir().expect("state dir");
        let run = run_to_completion(
            Shop.topology(),
            generated(10_000, 4),
            dir.path(),
            workers,
            100,
        )
        .expect("run");
        let windows = run
            .state
            .window_store("orders_per_minute")
            .expect("view")
            .windows(b"all", i64::MIN, i64::MAX)
            .expect("read");
        let counts: Vec<u64> = windows
            .iter()
            .map(|w| {
                serde_json::from_slice::<Value>(&w.value_json).expect("json")["count"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), 10_000, "workers {workers}");
        let totals: Value = serde_json::from_slice(
            &run.state
                .table_store("order_totals")
                .expect("view")
                .get(b"all")
                .expect("read")
                .expect("a value"),
        )
        .expect("json");
        assert_eq!(
            totals["total_orders"], 10_000,
            "workers {workers}: {totals}"
        );
        assert_eq!(
            totals["minutes_with_orders"],
            counts.len(),
            "workers {workers}: {totals}"
        );
        assert_eq!(
            totals["current_orders_per_minute"],
            counts.last().copied().unwrap_or(0),
            "workers {workers}"
        );
        assert_eq!(
            run.output.records("inventory-events").len() as u64,
            run.status
                .emitted
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}
