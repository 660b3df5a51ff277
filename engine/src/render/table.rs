//! Tables folded from windowed views, like a Kafka Streams `KGroupedTable::aggregate`: when a
//! window changes, its old value is subtracted from the key's summary and its new one added.
//!
//! The summary is the only state: it does not grow with the number of windows a key ever
//! had, so a restore reads one value per key whatever the length of the history.

// Keys come from the input: a seeded hasher, but a fast one (SipHash showed in profiles).
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{ParallelizationContract, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use super::state::{CheckpointGate, OperatorState};
use super::window::WindowChange;
use crate::epoch::{Time, stamp_time};
use crate::record::{Data, Record, worker_of};
use crate::window::WindowBounds;

/// A change to one key of a table: `new` is `None` when the key was deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableChange<B> {
    /// The previous value, if the key had one.
    pub old: Option<B>,
    /// The value now, if the key still has one.
    pub new: Option<B>,
}

/// A table's changes, keyed.
pub(crate) type TableUpdates<'scope, B> = Stream<'scope, Time, Vec<Record<TableChange<B>>>>;

/// How window values fold into a summary that can take them out again.
pub(crate) struct AddSubtract<I, F, G> {
    pub init: I,
    pub add: F,
    pub subtract: G,
}

/// Folds each key's windows into one summary, updated as windows change.
pub(crate) fn summarize_windows<'scope, A, B, I, F, G>(
    changes: Stream<'scope, Time, Vec<Record<WindowChange<A>>>>,
    state: Option<OperatorState>,
    summarizer: AddSubtract<I, F, G>,
) -> TableUpdates<'scope, B>
where
    A: Data,
    B: Data,
    I: Fn() -> B + 'static,
    F: Fn(&mut B, WindowBounds, &A) + 'static,
    G: Fn(&mut B, WindowBounds, &A) + 'static,
{
    // Window changes arrive on the worker of their key already.
    keyed_changes(
        changes,
        Pipeline,
        "Summarize",
        state,
        None,
        move |record, summaries, emit| {
            let summary = summaries
                .entry(record.key.clone())
                .or_insert_with(&summarizer.init);
            let old = summary.clone();
            let change = &record.value;
            if let Some(previous) = &change.old {
                (summarizer.subtract)(summary, change.window, previous);
            }
            // A removed window (a merged session) leaves the summary.
            if !change.removed {
                (summarizer.add)(summary, change.window, &change.new);
            }
            let new = Some(summary.clone());
            emit(record.map_value(|_| TableChange {
                old: Some(old),
                new,
            }));
        },
    )
}

/// Makes the change a restored value is emitted again as, with the value's key.
pub(super) type Replay<B> = fn(&str, &B) -> Record<TableChange<B>>;

/// An operator that keeps one value per key and emits the changes `step` makes to it:
/// restored from `state` at start, gated at checkpoints, and writing the keys it changed
/// to `state` at each one. `step` changes the values of a record's key and emits the
/// change, if any; each key it emits for is written at the next checkpoint. With
/// `replay_restored`, the restored values are emitted again, before anything else (for
/// operators downstream that keep no state of their own); without, restoring is silent.
pub(super) fn keyed_changes<'scope, I, B, P>(
    input: Stream<'scope, Time, Vec<Record<I>>>,
    pact: P,
    name: &str,
    state: Option<OperatorState>,
    replay_restored: Option<Replay<B>>,
    mut step: impl FnMut(Record<I>, &mut HashMap<String, B>, &mut dyn FnMut(Record<TableChange<B>>))
    + 'static,
) -> TableUpdates<'scope, B>
where
    I: Data,
    B: Data,
    P: ParallelizationContract<Time, Vec<Record<I>>>,
{
    let scope = input.scope();
    let (worker, peers) = (scope.index(), scope.peers());
    input.unary_frontier::<CapacityContainerBuilder<Vec<Record<TableChange<B>>>>, _, _, _>(
        pact,
        name,
        move |capability, _info| {
            let mut values: HashMap<String, B> = HashMap::new();
            if let Some(state) = &state {
                restore_values(state, worker, peers, &mut values);
            }
            let mut replay = replay_restored
                .filter(|_| !values.is_empty())
                .map(|replay| (capability, replay));
            let mut dirty: HashSet<String> = HashSet::new();
            type Batch<I> = (Capability<Time>, Vec<Record<I>>);
            let mut gate: CheckpointGate<Batch<I>> = CheckpointGate::new(state.as_ref());

            move |(input, frontier), output| {
                if let Some((capability, replay)) = replay.take() {
                    let mut session = output.session(&capability);
                    for (key, value) in &values {
                        session.give(replay(key, value));
                    }
                }
                let owed = gate.owed(state.as_ref());
                let mut apply = |(capability, records): Batch<I>,
                                 values: &mut HashMap<String, B>,
                                 dirty: &mut HashSet<String>| {
                    let mut session = output.session(&capability);
                    for record in records {
                        step(record, values, &mut |change| {
                            dirty.insert(change.key.clone());
                            session.give(change);
                        });
                    }
                };
                for batch in gate.release(owed) {
                    apply(batch, &mut values, &mut dirty);
                }
                input.for_each(|stamp, batch| {
                    let Some(time) = stamp_time(stamp.stamp()) else {
                        return;
                    };
                    let batch = (stamp.delayed(&time, 0), std::mem::take(batch));
                    if let Some(batch) = gate.admit(owed, time, batch) {
                        apply(batch, &mut values, &mut dirty);
                    }
                });
                let handed_in = gate.try_hand_in(
                    state.as_ref(),
                    owed,
                    &frontier.frontier()[..],
                    |db, batch| write_values(db, state.as_ref(), &values, &dirty, batch),
                );
                if handed_in {
                    dirty.clear();
                    for batch in gate.release(None) {
                        apply(batch, &mut values, &mut dirty);
                    }
                }
            }
        },
    )
}

/// Writes the `dirty` keys of a keyed state to its table store: their values, or a delete
/// for those that have none any more.
pub(super) fn write_values<B: Data>(
    db: &sluice_state::StateDb,
    state: Option<&OperatorState>,
    summaries: &HashMap<String, B>,
    dirty: &HashSet<String>,
    batch: &mut sluice_state::WriteBatch,
) -> Result<(), String> {
    let Some(state) = state else {
        return Ok(());
    };
    let store = db
        .table_store(&state.store)
        .map_err(|error| error.to_string())?;
    for key in dirty {
        match summaries.get(key) {
            Some(summary) => {
                let json = serde_json::to_vec(summary).map_err(|error| error.to_string())?;
                store.put_into(batch, key.as_bytes(), &json);
            }
            None => store.delete_into(batch, key.as_bytes()),
        }
    }
    Ok(())
}

/// Reads back the keys of a keyed state that belong to `worker` of `peers`.
pub(super) fn restore_values<B: Data>(
    state: &OperatorState,
    worker: usize,
    peers: usize,
    summaries: &mut HashMap<String, B>,
) {
    let outcome = state.db().table_store(&state.store).and_then(|store| {
        store.for_each(|key, json| {
            let Ok(key) = String::from_utf8(key.to_vec()) else {
                return;
            };
            if worker_of(&key, peers) != worker {
                return;
            }
            match serde_json::from_slice::<B>(&json) {
                Ok(summary) => {
                    summaries.insert(key, summary);
                }
                Err(error) => state.fail(&format!(
                    "cannot restore a value of {}: {error}",
                    state.store
                )),
            }
        })
    });
    if let Err(error) = outcome {
        state.fail(&format!("cannot restore {}: {error}", state.store));
    }
}
