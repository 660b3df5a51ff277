//! Table aggregates against a reference: random upserts and deletes of order lines that
//! move between items, over several workers, checkpoints and a restore; the aggregates
//! must be those of the final table, made by folds that cannot take a value back out (a
//! maximum) or that depend on the order of the rows (the first line), and their changes
//! must chain from nothing to the view.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::table_join_tests::assert_changes_chain;
use super::{Source, TopologyFn};
use crate::testkit::{CompletedRun, MemoryInput, MemoryRecord};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Line {
    item: String,
    quantity: u32,
    at: i64,
}

/// What an item's lines add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ItemLines {
    lines: u32,
    quantity: u32,
    largest: u32,
    /// The order of the line folded first: the one set earliest in event time.
    first_order: Option<String>,
}

impl ItemLines {
    fn add(&mut self, (order, quantity): &(String, u32)) {
        self.lines += 1;
        self.quantity += quantity;
        self.largest = self.largest.max(*quantity);
        self.first_order.get_or_insert_with(|| order.clone());
    }
}

const ORDERS: u64 = 30;
const ITEMS: u64 = 5;
const PARTITIONS: u64 = 3;

fn lines_per_item() -> TopologyFn {
    Arc::new(|topology| {
        let per_item = topology
            .table(
                "order_id",
                Source::<Line>::topic("lines").event_time(|line| line.at),
            )
            .group_by("item", |order, line| {
                (line.item.clone(), (order.to_string(), line.quantity))
            })
            .aggregate(ItemLines::default, ItemLines::add);
        per_item.materialize("lines_per_item");
        per_item
            .changes()
            .map(|change| (change.old, change.new))
            .to("item-changes");
    })
}

/// `count` random changes: `None` deletes the order's line.
fn script(count: usize, seed: u64) -> Vec<(String, Option<(String, u32)>)> {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let order = format!("o{}", next() % ORDERS);
            let line = (next() % 6 != 0)
                .then(|| (format!("item-{}", next() % ITEMS), 1 + (next() % 9) as u32));
            (order, line)
        })
        .collect()
}

fn at(index: usize) -> i64 {
    1_000 + 10 * index as i64
}

/// The changes as records, an order's records always on the same partition, so that
/// they apply in the order they were made.
fn input_of(changes: &[(String, Option<(String, u32)>)]) -> MemoryInput {
    let mut input = MemoryInput::default();
    input
        .topics
        .entry("lines".to_string())
        .or_default()
        .resize_with(PARTITIONS as usize, Default::default);
    for (index, (order, line)) in changes.iter().enumerate() {
        let payload = line.as_ref().map(|(item, quantity)| {
            serde_json::to_vec(&Line {
                item: item.clone(),
                quantity: *quantity,
                at: at(index),
            })
            .expect("encodes")
        });
        let partition = crate::record::key_hash(order) % PARTITIONS;
        input.push(
            "lines",
            partition as usize,
            MemoryRecord {
                key: order.as_bytes().to_vec(),
                payload: payload.unwrap_or_default(),
                timestamp: at(index),
                watermark_only: false,
                headers: Vec::new(),
            },
        );
    }
    input
}

/// The aggregates of the final table, by a scan of its rows per item in the order of
/// the changes that set them.
fn reference(changes: &[(String, Option<(String, u32)>)]) -> BTreeMap<String, ItemLines> {
    let mut table: BTreeMap<&str, (usize, &str, u32)> = BTreeMap::new();
    for (index, (order, line)) in changes.iter().enumerate() {
        match line {
            Some((item, quantity)) => {
                table.insert(order, (index, item, *quantity));
            }
            None => {
                table.remove(order.as_str());
            }
        }
    }
    let mut rows: Vec<(usize, &str, &str, u32)> = table
        .iter()
        .map(|(order, (index, item, quantity))| (*index, *order, *item, *quantity))
        .collect();
    rows.sort();
    let mut aggregates: BTreeMap<String, ItemLines> = BTreeMap::new();
    for (_, order, item, quantity) in rows {
        let aggregate = aggregates.entry(item.to_string()).or_default();
        aggregate.lines += 1;
        aggregate.quantity += quantity;
        aggregate.largest = aggregate.largest.max(quantity);
        if aggregate.first_order.is_none() {
            aggregate.first_order = Some(order.to_string());
        }
    }
    aggregates
}

fn view(run: &CompletedRun) -> BTreeMap<String, ItemLines> {
    let mut rows = BTreeMap::new();
    run.state
        .table_store("lines_per_item")
        .expect("view")
        .for_each(|key, json| {
            let row: ItemLines = serde_json::from_slice(&json).expect("an aggregate");
            rows.insert(String::from_utf8_lossy(key).into_owned(), row);
        })
        .expect("read");
    rows
}

#[test]
fn aggregates_are_those_of_the_final_table_for_every_worker_count_and_checkpoint_rate() {
    let changes = script(500, 3);
    let want = reference(&changes);
    assert!(
        want.len() as u64 == ITEMS && want.values().any(|item| item.lines >= 3),
        "every item keeps lines, some several: {want:?}"
    );
    let input = input_of(&changes);
    for (workers, interval_ms) in [(1, u64::MAX), (2, 1), (3, 5)] {
        let dir = tempfile::tempdir().expect("state dir");
        let case = format!("{workers} workers, checkpoints every {interval_ms} ms");
        let run = crate::testkit::resume_with_checkpoints(
            lines_per_item(),
            input.clone(),
            dir.path(),
            workers,
            1,
            Duration::from_millis(interval_ms),
        )
        .expect("run");
        assert_eq!(view(&run), want, "{case}");
        assert_changes_chain(&run.output.records("item-changes"), view(&run), &case);
    }
}

#[test]
fn a_group_whose_rows_all_leave_is_deleted_and_a_restore_emits_only_what_changed() {
    let mut changes = script(300, 19);
    // Every line of item-0 leaves at the end: its group goes with them.
    let item_0_orders: Vec<String> = changes
        .iter()
        .filter(|(_, line)| line.as_ref().is_some_and(|(item, _)| item == "item-0"))
        .map(|(order, _)| order.clone())
        .collect();
    for order in item_0_orders {
        changes.push((order, Some(("item-1".to_string(), 1))));
    }
    let want = reference(&changes);
    assert!(!want.contains_key("item-0") && want.contains_key("item-1"));
    let (first, _) = changes.split_at(200);
    assert!(reference(first).contains_key("item-0"));
    let dir = tempfile::tempdir().expect("state dir");
    let before =
        crate::testkit::run_to_completion(lines_per_item(), input_of(first), dir.path(), 2, 1)
            .expect("first run");
    assert_eq!(view(&before), reference(first), "before the restore");
    let mut changes_sent = before.output.records("item-changes");
    drop(before);
    let after = crate::testkit::resume_to_completion(
        lines_per_item(),
        input_of(&changes),
        dir.path(),
        2,
        1,
    )
    .expect("second run");
    assert_eq!(view(&after), want, "after the restore");
    changes_sent.extend(after.output.records("item-changes"));
    // Had the restore emitted the aggregates again, the chain would break here.
    assert_changes_chain(&changes_sent, view(&after), "across a restore");
    drop(after);
    let idle = crate::testkit::resume_to_completion(
        lines_per_item(),
        input_of(&changes),
        dir.path(),
        2,
        1,
    )
    .expect("third run");
    assert!(idle.output.records("item-changes").is_empty());
    assert_eq!(view(&idle), want, "after a restore with nothing new");
}
