//! The DSL records the graph it builds: the plan lists every operator, view and topic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Source, TopologyFn, TumblingWindows};
use crate::plan::{EventTimeKind, ViewKind};
use crate::runtime::plan_of;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Click {
    page: String,
    at: i64,
    ms: u32,
}

fn topology() -> TopologyFn {
    Arc::new(|topology| {
        let clicks = topology.source(
            Source::<Click>::topic("clicks")
                .event_time(|click| click.at)
                .grace(Duration::from_secs(2)),
        );
        let by_page = clicks
            .filter(|click| click.ms > 0)
            .key_by("page", |click| click.page.clone());
        let windows = by_page.window(TumblingWindows::of(Duration::from_secs(10)));
        windows.count().materialize("clicks");
        windows
            .sum(|click| f64::from(click.ms))
            .materialize("time_on_page");
        clicks.map(|click| click.page).to("pages");
    })
}

#[test]
fn the_plan_lists_operators_views_and_topics() {
    let plan = plan_of(&topology());
    let labels: Vec<&str> = plan.nodes.iter().map(|node| node.label.as_str()).collect();
    assert_eq!(
        labels,
        vec![
            "source clicks",
            "filter",
            "key_by page",
            "window tumbling 10000 ms, count",
            "materialize clicks",
            "window tumbling 10000 ms, exact sum",
            "materialize time_on_page",
            "map",
            "to pages",
        ]
    );
    assert_eq!(plan.nodes[2].inputs, vec![1]);
    assert_eq!(plan.nodes[7].inputs, vec![0]);
    assert_eq!(plan.sources[0].event_time, EventTimeKind::Payload);
    assert_eq!(plan.sources[0].grace_ms, 2_000);
    assert_eq!(plan.views[0].kind, ViewKind::Tumbling { size_ms: 10_000 });
    assert_eq!(plan.views[0].key, "page");
    assert_eq!(plan.views[1].value, serde_json::json!("number"));
    assert_eq!(
        plan.topics(),
        vec!["clicks", "clicks.dlq", "clicks.late", "pages"]
    );
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payment {
    account: String,
    at: i64,
    amount: f64,
}

/// Payments of wildly different sizes, whose plain `f64` total depends on the order of
/// addition, for three accounts over four partitions.
fn payments() -> (crate::testkit::MemoryInput, BTreeMap<String, i128>) {
    let mut input = crate::testkit::MemoryInput::default();
    let mut exact: BTreeMap<String, i128> = BTreeMap::new();
    let mut state: u64 = 99;
    for index in 0..2_000_i64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Multiples of 2^-10 up to 2^52 in size: an i128 of 2^-10 units sums them exactly.
        let magnitude = 1_i64 << (state % 62);
        let units = (state as i64 >> 2) % magnitude;
        let amount = units as f64 / 1024.0;
        let account = format!("account_{}", index % 3);
        *exact.entry(account.clone()).or_default() += (amount * 1024.0) as i128;
        let payment = Payment {
            account,
            at: 1_000 * index,
            amount,
        };
        input.push(
            "payments",
            (state % 4) as usize,
            crate::testkit::MemoryRecord {
                key: Vec::new(),
                payload: serde_json::to_vec(&payment).expect("encodes"),
                timestamp: payment.at,
            },
        );
    }
    (input, exact)
}

fn totals_of(run: &crate::testkit::CompletedRun) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    let store = run.state.window_store("totals").expect("view");
    store
        .for_each(|key, entry| {
            let value: f64 = serde_json::from_slice(&entry.value_json).expect("a number");
            let key = String::from_utf8_lossy(key).into_owned();
            assert!(
                totals.insert(key, value.to_bits()).is_none(),
                "one window per key"
            );
        })
        .expect("read");
    totals
}

#[test]
fn a_float_sum_is_exact_and_the_same_for_every_worker_count_and_tick() {
    let topology: TopologyFn = Arc::new(|topology| {
        topology
            .source(Source::<Payment>::topic("payments").event_time(|payment| payment.at))
            .key_by("account", |payment| payment.account.clone())
            .window(TumblingWindows::of(Duration::from_secs(86_400)))
            .sum(|payment| payment.amount)
            .materialize("totals");
    });
    let (input, exact) = payments();
    let want: BTreeMap<String, u64> = exact
        .iter()
        .map(|(account, units)| (account.clone(), (*units as f64 / 1024.0).to_bits()))
        .collect();
    for (workers, tick_ms) in [(1, 1), (2, 100), (3, 60_000)] {
        let dir = tempfile::tempdir().expect("state dir");
        let run = crate::testkit::run_to_completion(
            Arc::clone(&topology),
            input.clone(),
            dir.path(),
            workers,
            tick_ms,
        )
        .expect("run");
        assert_eq!(
            totals_of(&run),
            want,
            "{workers} workers, {tick_ms} ms ticks"
        );
    }
}
