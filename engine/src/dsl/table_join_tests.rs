//! Table-table joins against a reference: random upserts and deletes on two tables, over
//! several workers, checkpoints and a restore; the joined views must be the joins of the
//! final tables, and the joined table's changes must chain from nothing to the view.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Source, TopologyFn};
use crate::output::OwnedRecord;
use crate::testkit::{CompletedRun, MemoryInput, MemoryRecord};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Stock {
    quantity: i64,
    at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Name {
    name: String,
    at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Labeled {
    name: Option<String>,
    quantity: Option<i64>,
}

const ITEMS: u64 = 12;
const PARTITIONS: u64 = 3;

fn joins() -> TopologyFn {
    Arc::new(|topology| {
        let stock = topology.table(
            "item",
            Source::<Stock>::topic("stock").event_time(|stock| stock.at),
        );
        let names = topology.table(
            "item",
            Source::<Name>::topic("names").event_time(|name| name.at),
        );
        let inner = stock.join(&names, |stock, name| Labeled {
            name: Some(name.name.clone()),
            quantity: Some(stock.quantity),
        });
        inner.materialize("inner");
        inner
            .changes()
            .map(|change| (change.old, change.new))
            .to("inner-changes");
        stock
            .left_join(&names, |stock, name| Labeled {
                name: name.map(|name| name.name.clone()),
                quantity: Some(stock.quantity),
            })
            .materialize("left");
        stock
            .outer_join(&names, |stock, name| Labeled {
                name: name.map(|name| name.name.clone()),
                quantity: stock.map(|stock| stock.quantity),
            })
            .materialize("outer");
    })
}

/// One change to either table: `None` deletes the item.
#[derive(Debug, Clone)]
enum Change {
    Stock(String, Option<i64>),
    Name(String, Option<String>),
}

/// `count` random changes; an item's records always go to the same partition of a topic,
/// so that they apply in the order they were made.
fn script(count: usize, seed: u64) -> Vec<Change> {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let item = format!("item-{}", next() % ITEMS);
            let delete = next() % 5 == 0;
            if next() % 2 == 0 {
                Change::Stock(item, (!delete).then(|| (next() % 40) as i64))
            } else {
                let name = format!("name-{}", next() % 7);
                Change::Name(item, (!delete).then_some(name))
            }
        })
        .collect()
}

fn input_of(changes: &[Change]) -> MemoryInput {
    let mut input = MemoryInput::default();
    for topic in ["stock", "names"] {
        input
            .topics
            .entry(topic.to_string())
            .or_default()
            .resize_with(PARTITIONS as usize, Default::default);
    }
    for (index, change) in changes.iter().enumerate() {
        let at = 1_000 + 10 * index as i64;
        let (topic, item, payload) = match change {
            Change::Stock(item, quantity) => (
                "stock",
                item,
                quantity.map(|quantity| serde_json::to_vec(&Stock { quantity, at })),
            ),
            Change::Name(item, name) => (
                "names",
                item,
                name.as_ref().map(|name| {
                    serde_json::to_vec(&Name {
                        name: name.clone(),
                        at,
                    })
                }),
            ),
        };
        let partition = crate::record::key_hash(item) % PARTITIONS;
        input.push(
            topic,
            partition as usize,
            MemoryRecord {
                key: item.as_bytes().to_vec(),
                payload: payload
                    .map(|json| json.expect("encodes"))
                    .unwrap_or_default(),
                timestamp: at,
                watermark_only: false,
                headers: Vec::new(),
            },
        );
    }
    input
}

/// The two tables after `changes`, applied in order.
fn tables(changes: &[Change]) -> (BTreeMap<String, i64>, BTreeMap<String, String>) {
    let (mut stock, mut names) = (BTreeMap::new(), BTreeMap::new());
    for change in changes {
        match change {
            Change::Stock(item, Some(quantity)) => {
                stock.insert(item.clone(), *quantity);
            }
            Change::Stock(item, None) => {
                stock.remove(item);
            }
            Change::Name(item, Some(name)) => {
                names.insert(item.clone(), name.clone());
            }
            Change::Name(item, None) => {
                names.remove(item);
            }
        }
    }
    (stock, names)
}

/// The three joins of the final tables, by nested loops over the items.
fn reference(changes: &[Change]) -> BTreeMap<&'static str, BTreeMap<String, Labeled>> {
    let (stock, names) = tables(changes);
    let mut views: BTreeMap<&'static str, BTreeMap<String, Labeled>> = BTreeMap::new();
    for index in 0..ITEMS {
        let item = format!("item-{index}");
        let quantity = stock.get(&item).copied();
        let name = names.get(&item).cloned();
        let row = Labeled {
            name: name.clone(),
            quantity,
        };
        let mut put = |view| {
            views
                .entry(view)
                .or_default()
                .insert(item.clone(), row.clone());
        };
        if quantity.is_some() && name.is_some() {
            put("inner");
        }
        if quantity.is_some() {
            put("left");
        }
        if quantity.is_some() || name.is_some() {
            put("outer");
        }
    }
    views
}

fn view(run: &CompletedRun, name: &str) -> BTreeMap<String, Labeled> {
    let mut rows = BTreeMap::new();
    run.state
        .table_store(name)
        .expect("view")
        .for_each(|key, json| {
            let row: Labeled = serde_json::from_slice(&json).expect("a joined row");
            rows.insert(String::from_utf8_lossy(key).into_owned(), row);
        })
        .expect("read");
    rows
}

fn assert_views(run: &CompletedRun, changes: &[Change], case: &str) {
    let want = reference(changes);
    for name in ["inner", "left", "outer"] {
        assert_eq!(
            view(run, name),
            want.get(name).cloned().unwrap_or_default(),
            "view {name}, {case}"
        );
    }
}

/// Checks that each key's changes chain: each starts from the value the one before left,
/// the first from nothing, none changes nothing, and the last leaves the view's value.
/// Shared with the aggregate tests, whose tables chain alike.
pub(super) fn assert_changes_chain<V>(
    changes: &[OwnedRecord],
    view: BTreeMap<String, V>,
    case: &str,
) where
    V: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut values: BTreeMap<String, V> = BTreeMap::new();
    for record in changes {
        let key = String::from_utf8_lossy(&record.key).into_owned();
        let (old, new): (Option<V>, Option<V>) =
            serde_json::from_slice(&record.payload).expect("a change");
        assert_ne!(old, new, "{key} changed nothing, {case}");
        assert_eq!(values.get(&key), old.as_ref(), "{key}'s old value, {case}");
        match new {
            Some(new) => values.insert(key, new),
            None => values.remove(&key),
        };
    }
    assert_eq!(values, view, "changes end at the view, {case}");
}

#[test]
fn joined_tables_are_the_joins_of_their_tables_for_every_worker_count_and_checkpoint_rate() {
    let changes = script(600, 7);
    let want = reference(&changes);
    assert!(
        want.get("inner").is_some_and(|rows| rows.len() >= 3)
            && want["outer"].len() > want["left"].len()
            && want["left"].len() > want["inner"].len(),
        "the script leaves keys of every kind: {want:?}"
    );
    let input = input_of(&changes);
    for (workers, interval_ms) in [(1, u64::MAX), (2, 1), (3, 5)] {
        let dir = tempfile::tempdir().expect("state dir");
        let case = format!("{workers} workers, checkpoints every {interval_ms} ms");
        let run = crate::testkit::resume_with_checkpoints(
            joins(),
            input.clone(),
            dir.path(),
            workers,
            1,
            Duration::from_millis(interval_ms),
        )
        .expect("run");
        assert_views(&run, &changes, &case);
        assert_changes_chain(
            &run.output.records("inner-changes"),
            view(&run, "inner"),
            &case,
        );
    }
}

#[test]
fn a_restored_join_emits_only_what_changed_after_the_restore() {
    let changes = script(400, 11);
    let (first, _) = changes.split_at(250);
    let dir = tempfile::tempdir().expect("state dir");
    let before = crate::testkit::run_to_completion(joins(), input_of(first), dir.path(), 2, 1)
        .expect("first run");
    assert_views(&before, first, "before the restore");
    let mut changes_sent = before.output.records("inner-changes");
    drop(before);
    // The second run reads each partition from its checkpointed offset on.
    let after = crate::testkit::resume_to_completion(joins(), input_of(&changes), dir.path(), 2, 1)
        .expect("second run");
    assert_views(&after, &changes, "after the restore");
    changes_sent.extend(after.output.records("inner-changes"));
    // Had the restore emitted the joined rows again, the chain would break here.
    assert_changes_chain(&changes_sent, view(&after, "inner"), "across a restore");
    drop(after);
    // A resumed run with nothing new emits nothing at all.
    let idle = crate::testkit::resume_to_completion(joins(), input_of(&changes), dir.path(), 2, 1)
        .expect("third run");
    assert!(idle.output.records("inner-changes").is_empty());
    assert_views(&idle, &changes, "after a restore with nothing new");
}
