//! The tumbling-window aggregation operator.
//!
//! Records are exchanged by key, assigned to their window by event time and folded into
//! the window's aggregate. A record whose window has ended at its own watermark (its
//! partition's watermark when it was read) is late: it goes to the second output instead.
//! After each input batch the operator emits one change per updated window; when the input
//! frontier's watermark passes a window's end it emits the final value and forgets the
//! window, unless late records may update it (an allowed lateness): then it keeps the
//! window until the watermark passes its end plus that lateness, and each batch of late
//! records for it emits a correction of its final value.
//!
//! A window's changes travel at non-decreasing times: the join of the times of the records
//! folded in so far, so that every change's value is made of records up to its time.
//!
//! Open windows are operator state: they are checkpointed into the operator's own store
//! and restored from it (see [`crate::checkpoint`]). While a checkpoint is in flight,
//! records of its new epoch are held back until the operator has handed in its state.

use std::collections::BTreeSet;

// Keys come from the input: a seeded hasher, but a fast one (SipHash showed in profiles).
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use serde::{Deserialize, Serialize};
use sluice_state::WindowEntry;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{OutputBuilder, OutputBuilderSession};
use timely::dataflow::operators::{Capability, CapabilitySet};

use super::state::{CheckpointGate, OperatorState};
use crate::epoch::{Time, join, stamp_time, watermark_of};
use crate::record::{Data, Origin, Record, key_hash, worker_of};
use crate::window::{TumblingWindows, WindowBounds, is_late};

/// A change to one window's aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowChange<A> {
    /// The window.
    pub window: WindowBounds,
    /// The value last emitted for this window, if any.
    pub old: Option<A>,
    /// The new value.
    pub new: A,
    /// Whether this is the window's final value.
    pub is_final: bool,
    /// Whether this corrects a final value sent before: a late record arrived within the
    /// allowed lateness of [`crate::window::LatePolicy::Update`].
    #[serde(default)]
    pub correction: bool,
}

/// How records are assigned to windows, and how long closed windows take corrections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowRule {
    pub windows: TumblingWindows,
    /// 0 unless late records update closed windows.
    pub allowed_lateness_ms: i64,
}

/// A record that arrived after its window closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LateRecord {
    /// The record's key.
    pub key: String,
    /// Where it came from.
    pub origin: Origin,
    /// Its event time.
    pub event_time: i64,
    /// The window it belonged to.
    pub window: WindowBounds,
    /// Its partition's watermark when it was read.
    pub watermark: u64,
    /// The record as JSON.
    pub payload: String,
    /// The view it was late for.
    pub view: String,
}

/// A window's state: an open one, or a closed one kept for corrections.
struct WindowState<A> {
    end: i64,
    aggregate: A,
    last_emitted: Option<A>,
    /// The time the last change of this window travelled at.
    emitted_at: Time,
    /// The largest watermark among the records folded in: what its changes carry.
    watermark: u64,
    /// The last batch that updated it, so that each batch emits one change per window
    /// without sorting what it touched.
    touched_in: u64,
}

type Streams<'scope, A> = (
    Stream<'scope, Time, Vec<Record<WindowChange<A>>>>,
    Stream<'scope, Time, Vec<LateRecord>>,
);

type ChangesOutput<'a, A> =
    OutputBuilderSession<'a, Time, CapacityContainerBuilder<Vec<Record<WindowChange<A>>>>>;
type LateOutput<'a> = OutputBuilderSession<'a, Time, CapacityContainerBuilder<Vec<LateRecord>>>;

/// The windows one operator instance holds, and what changed since its last checkpoint.
struct Windows<A> {
    open: HashMap<(String, i64), WindowState<A>>,
    /// Open windows ordered by end, to close them as the frontier passes.
    by_end: BTreeSet<(i64, String, i64)>,
    /// Closed windows kept for corrections (allowed lateness), and by expiry. Their
    /// `last_emitted` is the final value last sent.
    retained: HashMap<(String, i64), WindowState<A>>,
    retained_by_expiry: BTreeSet<(i64, String, i64)>,
    /// Windows updated or closed since the last checkpoint.
    dirty: HashSet<(String, i64)>,
    /// Counts the batches applied.
    batches: u64,
    /// The watermark up to which windows have been closed: a window that ends by then and
    /// is not open is closed, whether or not it was kept.
    closed_up_to: i64,
}

/// Builds the operator. `view` names the aggregation in late records; `state`, absent when
/// the topology is only described, is where open windows are checkpointed.
pub(crate) fn tumbling_aggregate<'scope, T, A, I, F>(
    input: Stream<'scope, Time, Vec<Record<T>>>,
    rule: WindowRule,
    view: String,
    state: Option<OperatorState>,
    init: I,
    fold: F,
) -> Streams<'scope, A>
where
    T: Data,
    A: Data,
    I: Fn() -> A + 'static,
    F: Fn(&mut A, &T) + 'static,
{
    let scope = input.scope();
    let (worker, peers) = (scope.index(), scope.peers());
    let mut builder = OperatorBuilder::new(format!("Window({view})"), scope);
    let mut records = builder.new_input(
        input,
        Exchange::new(|record: &Record<T>| key_hash(&record.key)),
    );
    let (changes_output, changes) = builder.new_output();
    let (late_output, late) = builder.new_output();
    let mut changes_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(changes_output);
    let mut late_output = OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(late_output);

    builder.build(move |mut capabilities| {
        let mut state_windows = Windows {
            open: HashMap::new(),
            by_end: BTreeSet::new(),
            retained: HashMap::new(),
            retained_by_expiry: BTreeSet::new(),
            closed_up_to: i64::MIN,
            dirty: HashSet::new(),
            batches: 0,
        };
        if let Some(state) = &state {
            restore(
                state,
                (worker, peers),
                rule.allowed_lateness_ms,
                &mut state_windows,
            );
        }
        // Held at the input frontier, to emit final values when windows close.
        let mut held: CapabilitySet<Time> = CapabilitySet::new();
        if let Some(capability) = capabilities.drain(..).next() {
            held.insert(capability);
        }
        let mut gate: CheckpointGate<HeldBack<T>> = CheckpointGate::new(state.as_ref());

        move |frontiers| {
            let mut changes_handle = changes_output.activate();
            let mut late_handle = late_output.activate();
            let owed = gate.owed(state.as_ref());
            let mut outputs = Outputs {
                changes: &mut changes_handle,
                late: &mut late_handle,
            };
            let aggregation = Aggregation {
                windows: rule.windows,
                allowed_lateness_ms: rule.allowed_lateness_ms,
                view: &view,
                init: &init,
                fold: &fold,
            };
            for batch in gate.release(owed) {
                apply_batch(&mut state_windows, &aggregation, batch, &mut outputs);
            }
            records.for_each_stamp(|stamp, batches| {
                let Some(time) = stamp_time(stamp.stamp()) else {
                    return;
                };
                let batch = HeldBack {
                    changes_capability: stamp.delayed(&time, 0),
                    late_capability: stamp.delayed(&time, 1),
                    // The received containers themselves: no record is moved to hold them.
                    records: batches.map(std::mem::take).collect(),
                };
                if let Some(batch) = gate.admit(owed, time, batch) {
                    apply_batch(&mut state_windows, &aggregation, batch, &mut outputs);
                }
            });

            let frontier = frontiers[0].frontier();
            if frontier.is_empty() {
                // The sources stopped and everything is in. Windows that the stream watermark
                // had passed close now (the frontier may have gone from that watermark to
                // empty between two activations); the others stay open, because the end of a
                // run is not the end of event time. Then the final checkpoint takes it all.
                for batch in gate.release(None) {
                    apply_batch(&mut state_windows, &aggregation, batch, &mut outputs);
                }
                let stopped = state.as_ref().and_then(OperatorState::stopped_watermark);
                if let (Some(stopped), Some(closing)) = (stopped, oldest(&held)) {
                    close_windows(
                        &mut state_windows,
                        (stopped, rule.allowed_lateness_ms),
                        closing,
                        outputs.changes,
                    );
                }
                if gate.try_hand_in(state.as_ref(), owed, &frontier[..], |db, batch| {
                    write_windows(db, state.as_ref(), &state_windows, batch)
                }) {
                    state_windows.dirty.clear();
                }
                held = CapabilitySet::new();
                return;
            }
            let handed_in = gate.try_hand_in(state.as_ref(), owed, &frontier[..], |db, batch| {
                write_windows(db, state.as_ref(), &state_windows, batch)
            });
            if handed_in {
                state_windows.dirty.clear();
                for batch in gate.release(None) {
                    apply_batch(&mut state_windows, &aggregation, batch, &mut outputs);
                }
            }

            // Close every window whose end the frontier's watermark has passed, but not past
            // held-back records: the frontier has moved beyond them, their windows have not.
            held.downgrade(frontier.iter());
            let Some(watermark) = watermark_of(&frontier[..]) else {
                return;
            };
            let watermark = gate
                .held_back_watermark()
                .map_or(watermark, |held_back| held_back.min(watermark));
            if let Some(closing) = oldest(&held) {
                close_windows(
                    &mut state_windows,
                    (watermark, rule.allowed_lateness_ms),
                    closing,
                    outputs.changes,
                );
            }
        }
    });
    (changes, late)
}

/// The held capability of the oldest epoch, so that a window closed before a checkpoint is
/// handed in travels in an epoch that checkpoint takes.
fn oldest(held: &CapabilitySet<Time>) -> Option<&Capability<Time>> {
    held.iter()
        .min_by_key(|capability| (capability.time().outer, capability.time().inner))
}

/// Closes every open window that ends at or before `watermark`, emitting its final value;
/// with an allowed lateness, keeps it for corrections until `watermark` passes its end plus
/// that lateness.
fn close_windows<A: Data>(
    windows: &mut Windows<A>,
    (watermark, allowed_lateness_ms): (u64, i64),
    closing: &Capability<Time>,
    output: &mut ChangesOutput<'_, A>,
) {
    let closing_up_to = i64::try_from(watermark).unwrap_or(i64::MAX);
    windows.closed_up_to = windows.closed_up_to.max(closing_up_to);
    let mut closed: Vec<(Time, Record<WindowChange<A>>)> = Vec::new();
    while let Some((end, key, start)) = windows.by_end.first().cloned() {
        if end > closing_up_to {
            break;
        }
        windows.by_end.pop_first();
        let slot = (key, start);
        if let Some(entry) = windows.open.remove(&slot) {
            let (key, start) = slot;
            windows.dirty.insert((key.clone(), start));
            // A final value is final from the window's end on, whenever the frontier
            // happened to show it.
            let watermark = entry.watermark.max(u64::try_from(end).unwrap_or(0));
            let emitted_at = join(&entry.emitted_at, closing.time());
            if allowed_lateness_ms > 0 {
                windows.retained_by_expiry.insert((
                    end.saturating_add(allowed_lateness_ms),
                    key.clone(),
                    start,
                ));
                windows.retained.insert(
                    (key.clone(), start),
                    WindowState {
                        end,
                        aggregate: entry.aggregate.clone(),
                        last_emitted: Some(entry.aggregate.clone()),
                        emitted_at,
                        watermark,
                        touched_in: 0,
                    },
                );
            }
            closed.push((
                emitted_at,
                change_record(
                    key,
                    watermark,
                    WindowChange {
                        window: WindowBounds { start, end },
                        old: entry.last_emitted,
                        new: entry.aggregate,
                        is_final: true,
                        correction: false,
                    },
                ),
            ));
        }
    }
    // Closed windows past their allowed lateness take no more records.
    while let Some((expiry, key, start)) = windows.retained_by_expiry.first().cloned() {
        if expiry > closing_up_to {
            break;
        }
        windows.retained_by_expiry.pop_first();
        if windows.retained.remove(&(key.clone(), start)).is_some() {
            windows.dirty.insert((key, start));
        }
    }
    give_in_time_order(output, closing, closed);
}

/// A batch of records of one time, with capabilities to emit its changes and late records.
struct HeldBack<T> {
    changes_capability: Capability<Time>,
    late_capability: Capability<Time>,
    records: Vec<Vec<Record<T>>>,
}

struct Outputs<'h, 'a, A: Data> {
    changes: &'h mut ChangesOutput<'a, A>,
    late: &'h mut LateOutput<'a>,
}

/// What the operator computes: the windows, and how records fold into an aggregate.
struct Aggregation<'a, T, A> {
    windows: TumblingWindows,
    allowed_lateness_ms: i64,
    view: &'a str,
    init: &'a dyn Fn() -> A,
    fold: &'a dyn Fn(&mut A, &T),
}

/// Folds one batch of records, all of one time, and emits a change per updated window.
fn apply_batch<T: Data, A: Data>(
    state: &mut Windows<A>,
    aggregation: &Aggregation<'_, T, A>,
    batch: HeldBack<T>,
    outputs: &mut Outputs<'_, '_, A>,
) {
    let Aggregation {
        windows,
        allowed_lateness_ms,
        view,
        ..
    } = aggregation;
    let time = *batch.changes_capability.time();
    state.batches += 1;
    let this_batch = state.batches;
    let mut touched: Vec<(String, i64)> = Vec::new();
    let mut corrected: Vec<(String, i64)> = Vec::new();
    let mut late_records: Vec<LateRecord> = Vec::new();
    for record in batch.records.into_iter().flatten() {
        let window = windows.assign(record.event_time);
        let within_lateness = *allowed_lateness_ms > 0
            && u64::try_from(window.end.saturating_add(*allowed_lateness_ms))
                .is_ok_and(|expiry| expiry > record.watermark);
        // Late by its own watermark, within the allowed lateness, for a window the frontier
        // has closed: a correction. A window not closed yet (other partitions are behind)
        // takes it as any record, whether or not it has state yet.
        let slot_closed = || {
            let slot = (record.key.clone(), window.start);
            !state.open.contains_key(&slot)
                && (state.retained.contains_key(&slot) || window.end <= state.closed_up_to)
        };
        if is_late(window, record.watermark) && within_lateness && slot_closed() {
            let expiry = window.end.saturating_add(*allowed_lateness_ms);
            let target = Target {
                windows: &mut state.retained,
                order: &mut state.retained_by_expiry,
                touched: &mut corrected,
            };
            fold_into(
                target,
                expiry,
                window,
                record,
                (time, this_batch),
                aggregation,
            );
            continue;
        }
        if is_late(window, record.watermark) && !within_lateness {
            late_records.push(LateRecord {
                payload: serde_json::to_string(&record.value).unwrap_or_default(),
                key: record.key,
                origin: record.origin,
                event_time: record.event_time,
                window,
                watermark: record.watermark,
                view: view.to_string(),
            });
            continue;
        }
        let target = Target {
            windows: &mut state.open,
            order: &mut state.by_end,
            touched: &mut touched,
        };
        fold_into(
            target,
            window.end,
            window,
            record,
            (time, this_batch),
            aggregation,
        );
    }
    if !late_records.is_empty() {
        outputs
            .late
            .session(&batch.late_capability)
            .give_iterator(late_records.into_iter());
    }
    if touched.is_empty() && corrected.is_empty() {
        return;
    }
    let mut changes: Vec<(Time, Record<WindowChange<A>>)> =
        Vec::with_capacity(touched.len() + corrected.len());
    for (slot, correction) in corrected
        .into_iter()
        .map(|slot| (slot, true))
        .chain(touched.into_iter().map(|slot| (slot, false)))
    {
        let windows = if correction {
            &mut state.retained
        } else {
            &mut state.open
        };
        if let Some(entry) = windows.get_mut(&slot) {
            changes.push(change_of(entry, slot.0.clone(), slot.1, time, correction));
            state.dirty.insert(slot);
        }
    }
    give_in_time_order(outputs.changes, &batch.changes_capability, changes);
}

/// Where a record is folded: open windows, or closed ones kept for corrections, with the
/// order they leave in and the windows this batch touched.
struct Target<'s, A> {
    windows: &'s mut HashMap<(String, i64), WindowState<A>>,
    order: &'s mut BTreeSet<(i64, String, i64)>,
    touched: &'s mut Vec<(String, i64)>,
}

/// Folds `record` into its window in `target`, creating the window (to leave at `leaves`)
/// if it is new, and notes the window as touched once per batch.
fn fold_into<T: Data, A: Data>(
    target: Target<'_, A>,
    leaves: i64,
    window: WindowBounds,
    record: Record<T>,
    (time, this_batch): (Time, u64),
    aggregation: &Aggregation<'_, T, A>,
) {
    let slot = (record.key, window.start);
    let entry = match target.windows.get_mut(&slot) {
        Some(entry) => entry,
        None => {
            target.order.insert((leaves, slot.0.clone(), window.start));
            target.windows.entry(slot.clone()).or_insert(WindowState {
                end: window.end,
                aggregate: (aggregation.init)(),
                last_emitted: None,
                emitted_at: time,
                watermark: record.watermark,
                touched_in: 0,
            })
        }
    };
    (aggregation.fold)(&mut entry.aggregate, &record.value);
    entry.watermark = entry.watermark.max(record.watermark);
    if entry.touched_in != this_batch {
        entry.touched_in = this_batch;
        target.touched.push(slot);
    }
}

/// The change a batch made to a window: an update of an open one, or a correction of a
/// closed one's final value.
fn change_of<A: Data>(
    entry: &mut WindowState<A>,
    key: String,
    start: i64,
    time: Time,
    correction: bool,
) -> (Time, Record<WindowChange<A>>) {
    entry.emitted_at = join(&entry.emitted_at, &time);
    let change = WindowChange {
        window: WindowBounds {
            start,
            end: entry.end,
        },
        old: entry.last_emitted.replace(entry.aggregate.clone()),
        new: entry.aggregate.clone(),
        is_final: correction,
        correction,
    };
    (
        entry.emitted_at,
        change_record(key, entry.watermark, change),
    )
}

/// Writes the windows changed since the last checkpoint: open windows are put, closed ones
/// deleted.
fn write_windows<A: Data>(
    db: &sluice_state::StateDb,
    state: Option<&OperatorState>,
    windows: &Windows<A>,
    batch: &mut sluice_state::WriteBatch,
) -> Result<(), String> {
    let Some(state) = state else {
        return Ok(());
    };
    let store = db
        .window_store(&state.store)
        .map_err(|error| error.to_string())?;
    for (key, start) in &windows.dirty {
        let slot = (key.clone(), *start);
        // Open windows are stored as not final, closed ones kept for corrections as final.
        let (end, aggregate, is_final) =
            match (windows.open.get(&slot), windows.retained.get(&slot)) {
                (Some(open), _) => (open.end, &open.aggregate, false),
                (None, Some(closed)) => (closed.end, &closed.aggregate, true),
                (None, None) => {
                    store.delete_into(batch, key.as_bytes(), *start);
                    continue;
                }
            };
        let value_json = serde_json::to_vec(aggregate).map_err(|error| error.to_string())?;
        let stored = WindowEntry {
            start: *start,
            end,
            is_final,
            value_json,
        };
        store.put_into(batch, key.as_bytes(), &stored);
    }
    Ok(())
}

/// Loads the open windows of this worker's keys from the operator's store, and the closed
/// ones still taking corrections.
fn restore<A: Data>(
    state: &OperatorState,
    (worker, peers): (usize, usize),
    allowed_lateness_ms: i64,
    windows: &mut Windows<A>,
) {
    let outcome = state.db().window_store(&state.store).and_then(|store| {
        store.for_each(|key, entry| {
            let Ok(key) = String::from_utf8(key.to_vec()) else {
                return;
            };
            if worker_of(&key, peers) != worker {
                return;
            }
            match serde_json::from_slice::<A>(&entry.value_json) {
                Ok(aggregate) => {
                    // Final entries are closed windows kept for corrections.
                    let (windows_of_kind, order, leaves) = if entry.is_final {
                        (
                            &mut windows.retained,
                            &mut windows.retained_by_expiry,
                            entry.end.saturating_add(allowed_lateness_ms),
                        )
                    } else {
                        (&mut windows.open, &mut windows.by_end, entry.end)
                    };
                    order.insert((leaves, key.clone(), entry.start));
                    windows_of_kind.insert(
                        (key, entry.start),
                        WindowState {
                            end: entry.end,
                            last_emitted: Some(aggregate.clone()),
                            aggregate,
                            emitted_at: Time::default(),
                            watermark: 0,
                            touched_in: 0,
                        },
                    );
                }
                Err(error) => state.fail(&format!(
                    "cannot restore a window of {}: {error}",
                    state.store
                )),
            }
        })
    });
    if let Err(error) = outcome {
        state.fail(&format!("cannot restore {}: {error}", state.store));
    }
}

fn change_record<A>(
    key: String,
    watermark: u64,
    change: WindowChange<A>,
) -> Record<WindowChange<A>> {
    Record {
        key,
        event_time: change.window.start,
        watermark,
        origin: NO_ORIGIN,
        value: change,
    }
}

/// Sends changes, each at its own time (at or after `base`), one session per distinct time.
fn give_in_time_order<A: Data>(
    output: &mut ChangesOutput<'_, A>,
    base: &Capability<Time>,
    mut changes: Vec<(Time, Record<WindowChange<A>>)>,
) {
    changes.sort_by_key(|(time, _)| (time.outer, time.inner));
    let mut changes = changes.into_iter().peekable();
    while let Some((time, first)) = changes.next() {
        let capability = base.delayed(&time);
        let mut session = output.session(&capability);
        session.give(first);
        while let Some((_, change)) = changes.next_if(|(next, _)| *next == time) {
            session.give(change);
        }
    }
}

/// Window changes are derived from many records; they name no single input.
const NO_ORIGIN: Origin = Origin {
    source: u32::MAX,
    partition: -1,
    offset: -1,
    index: 0,
};
