//! Operators that keep views in RocksDB. A view changes only at checkpoints, in the same
//! atomic batch as the source offsets, so what the HTTP API serves is always the result of
//! exactly the records before the checkpoint's offsets.
//!
//! Between checkpoints a view operator keeps the latest change of each window or key; at a
//! checkpoint it writes them, and deletes the final windows whose retention has passed.
//! It also stages those changes in the [change feed](crate::feed), which publishes them to
//! live streams when the checkpoint commits.

use std::collections::BTreeSet;

// Keys come from the input: a seeded hasher, but a fast one (SipHash showed in profiles).
use foldhash::{HashMap, HashMapExt};
use std::time::Duration;

use sluice_state::WindowEntry;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::state::{CheckpointGate, OperatorState};
use super::table::{TableChange, TableUpdates};
use super::window::WindowChange;
use crate::epoch::{Time, watermark_of};
use crate::feed::{Change, ViewChange};
use crate::record::{Data, Record, worker_of};

/// Keeps window changes in the window store `state.store`, deleting final windows
/// `retention` of event time after they end.
pub(crate) fn materialize_windows<A: Data>(
    changes: Stream<'_, Time, Vec<Record<WindowChange<A>>>>,
    state: OperatorState,
    retention: Duration,
) {
    let scope = changes.scope();
    let (worker, peers) = (scope.index(), scope.peers());
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    // The latest change of each window; `None` for a window that is gone.
    let mut pending: HashMap<(String, i64), Option<WindowEntry>> = HashMap::new();
    let mut expiring: BTreeSet<(i64, String, i64)> = restore_expiring(&state, worker, peers);
    let mut gate: CheckpointGate<Vec<Record<WindowChange<A>>>> = CheckpointGate::new(Some(&state));
    let mut watermark: u64 = 0;
    let name = format!("Materialize({})", state.store);
    changes.sink(Pipeline, &name, move |(input, frontier)| {
        let owed = gate.owed(Some(&state));
        let keep = |records: Vec<Record<WindowChange<A>>>,
                    pending: &mut HashMap<(String, i64), Option<WindowEntry>>| {
            for record in records {
                let change = record.value;
                if change.removed {
                    pending.insert((record.key, change.window.start), None);
                    continue;
                }
                let value_json = match serde_json::to_vec(&change.new) {
                    Ok(json) => json,
                    Err(error) => return state.fail(&format!("cannot encode a window: {error}")),
                };
                pending.insert(
                    (record.key, change.window.start),
                    Some(WindowEntry {
                        start: change.window.start,
                        end: change.window.end,
                        is_final: change.is_final,
                        value_json,
                    }),
                );
            }
        };
        gate.take_input(owed, input, |records| keep(records, &mut pending));
        let frontier = frontier.frontier();
        if let Some(reached) = watermark_of(&frontier[..]) {
            let reached = gate
                .held_back_watermark()
                .map_or(reached, |held| held.min(reached));
            watermark = watermark.max(reached);
        }
        let expire_before = i64::try_from(watermark)
            .unwrap_or(i64::MAX)
            .saturating_sub(retention_ms);
        let handed_in = gate.try_hand_in(Some(&state), owed, &frontier[..], |db, batch| {
            write_windows(db, &state.store, &pending, &expiring, expire_before, batch)?;
            if let Some(request) = owed {
                let changes = window_changes(&state.store, &pending);
                state.status().changes.stage(request.epoch, changes);
            }
            Ok(())
        });
        if handed_in {
            for ((key, start), entry) in pending.drain() {
                if let Some(entry) = entry.filter(|entry| entry.is_final) {
                    expiring.insert((entry.end, key, start));
                }
            }
            while expiring
                .first()
                .is_some_and(|(end, _, _)| *end <= expire_before)
            {
                expiring.pop_first();
            }
            for records in gate.release(None) {
                keep(records, &mut pending);
            }
        }
    });
}

/// The changes of `pending` as the live streams publish them. (Final windows deleted for
/// retention are not changes of the view's content, and are not in the feed.)
fn window_changes(
    view: &str,
    pending: &HashMap<(String, i64), Option<WindowEntry>>,
) -> Vec<ViewChange> {
    pending
        .iter()
        .map(|((key, start), entry)| ViewChange {
            view: view.to_string(),
            key: key.clone(),
            change: match entry {
                Some(entry) => Change::Window {
                    start: entry.start,
                    end: entry.end,
                    is_final: entry.is_final,
                    value_json: entry.value_json.clone(),
                },
                None => Change::WindowRemoved { start: *start },
            },
        })
        .collect()
}

/// Puts the windows changed since the last checkpoint and deletes the final windows, kept
/// or changed now, that ended before `expire_before`.
fn write_windows(
    db: &sluice_state::StateDb,
    store: &str,
    pending: &HashMap<(String, i64), Option<WindowEntry>>,
    expiring: &BTreeSet<(i64, String, i64)>,
    expire_before: i64,
    batch: &mut sluice_state::WriteBatch,
) -> Result<(), String> {
    let store = db.window_store(store).map_err(|error| error.to_string())?;
    for ((key, start), entry) in pending {
        match entry {
            Some(entry) if !(entry.is_final && entry.end <= expire_before) => {
                store.put_into(batch, key.as_bytes(), entry);
            }
            _ => store.delete_into(batch, key.as_bytes(), *start),
        }
    }
    for (_, key, start) in expiring
        .iter()
        .take_while(|(end, _, _)| *end <= expire_before)
    {
        store.delete_into(batch, key.as_bytes(), *start);
    }
    Ok(())
}

/// The final windows of this worker's keys already in the view, to expire them later.
fn restore_expiring(
    state: &OperatorState,
    worker: usize,
    peers: usize,
) -> BTreeSet<(i64, String, i64)> {
    let mut expiring = BTreeSet::new();
    let outcome = state.db().window_store(&state.store).and_then(|store| {
        store.for_each(|key, entry| {
            let Ok(key) = String::from_utf8(key.to_vec()) else {
                return;
            };
            if entry.is_final && worker_of(&key, peers) == worker {
                expiring.insert((entry.end, key, entry.start));
            }
        })
    });
    if let Err(error) = outcome {
        state.fail(&format!("cannot restore {}: {error}", state.store));
    }
    expiring
}

/// Keeps table changes in the table store `state.store`: the latest value per key, or no
/// entry for a deleted key.
pub(crate) fn materialize_table<B: Data>(updates: TableUpdates<'_, B>, state: OperatorState) {
    let mut pending: HashMap<String, Option<B>> = HashMap::new();
    let mut gate: CheckpointGate<Vec<Record<TableChange<B>>>> = CheckpointGate::new(Some(&state));
    let name = format!("Materialize({})", state.store);
    updates.sink(Pipeline, &name, move |(input, frontier)| {
        let owed = gate.owed(Some(&state));
        let keep = |records: Vec<Record<TableChange<B>>>,
                    pending: &mut HashMap<String, Option<B>>| {
            for record in records {
                pending.insert(record.key, record.value.new);
            }
        };
        gate.take_input(owed, input, |records| keep(records, &mut pending));
        let handed_in =
            gate.try_hand_in(Some(&state), owed, &frontier.frontier()[..], |db, batch| {
                let store = db
                    .table_store(&state.store)
                    .map_err(|error| error.to_string())?;
                let mut changes = Vec::with_capacity(pending.len());
                for (key, value) in &pending {
                    let change = match value {
                        Some(value) => {
                            let json =
                                serde_json::to_vec(value).map_err(|error| error.to_string())?;
                            store.put_into(batch, key.as_bytes(), &json);
                            Change::Value { value_json: json }
                        }
                        None => {
                            store.delete_into(batch, key.as_bytes());
                            Change::Deleted
                        }
                    };
                    changes.push(ViewChange {
                        view: state.store.clone(),
                        key: key.clone(),
                        change,
                    });
                }
                if let Some(request) = owed {
                    state.status().changes.stage(request.epoch, changes);
                }
                Ok(())
            });
        if handed_in {
            pending.clear();
            for records in gate.release(None) {
                keep(records, &mut pending);
            }
        }
    });
}
