//! The window aggregation operator, for every window kind.
//!
//! Records are exchanged by key and handed to the kind's keeper ([`fixed`] for tumbling and
//! hopping windows, [`sliding`] and [`session`]), which folds them into its state and says
//! which windows changed. A record that no window takes any more, by its own watermark
//! (its partition's watermark when it was read), is late and dropped. Its source has
//! judged it by the same rule and written it to its late topic once, for every view it
//! misses ([`crate::late`]); only records the topology derived (from windows or tables)
//! are judged here alone, and go to the second output.
//! After each input batch the operator emits the changes the batch made (with emit on
//! update); when the input frontier's watermark passes a window's end plus its grace, it
//! emits the window's final value. With an allowed lateness ([`LatePolicy::Update`]), closed
//! windows are kept that much longer, and late records for them emit corrections.
//!
//! A window's changes travel at non-decreasing times: the join of the times of the records
//! folded in so far, so that every change's value is made of records up to its time.
//!
//! The keeper's state is checkpointed into the operator's own store and restored from it
//! (see [`crate::checkpoint`]). While a checkpoint is in flight, records of its new epoch
//! are held back until the operator has handed in its state.
//!
//! [`LatePolicy::Update`]: crate::window::LatePolicy::Update

mod clock;
mod fixed;
mod keyed;
mod session;
mod sliding;
mod sorted;

use serde::{Deserialize, Serialize};
use sluice_state::{WindowEntry, WindowStore, WriteBatch};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{OutputBuilder, OutputBuilderSession};
use timely::dataflow::operators::{Capability, CapabilitySet};

use clock::{Closed, WatermarkClock};
use keyed::Keyed;

use super::state::{CheckpointGate, OperatorState};
use crate::epoch::{Time, join, stamp_time, watermark_of};
use crate::record::{CarriedHeaders, Data, Origin, Record, key_hash, worker_of};
use crate::window::{WindowBounds, WindowSpec};

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
    /// Whether the window is gone: a session that merged into another, or moved its start.
    /// `new` then repeats `old`, the value that was last emitted for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// How a window operator tells a late record, and whether its source already did.
pub(super) struct Lateness {
    windows: WindowSpec,
    allowed_lateness_ms: i64,
    judged_at_source: Vec<u32>,
}

impl Lateness {
    fn of<T, A>(aggregation: &Aggregation<T, A>) -> Self {
        Lateness {
            windows: aggregation.windows,
            allowed_lateness_ms: aggregation.allowed_lateness_ms,
            judged_at_source: aggregation.judged_at_source.clone(),
        }
    }

    /// The window to name when no window takes `record` any more, by the one rule
    /// ([`WindowSpec::late_window`]) at the record's own watermark.
    pub(super) fn late_window<T>(&self, record: &Record<T>) -> Option<WindowBounds> {
        self.windows.late_window(
            record.event_time,
            as_event_time(record.watermark),
            self.allowed_lateness_ms,
        )
    }

    /// Whether `record`'s source judged it, and wrote it to the late topic if late.
    pub(super) fn was_judged_at_source<T>(&self, record: &Record<T>) -> bool {
        self.judged_at_source.contains(&record.origin.source)
    }
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
    /// The window it belonged to (the last one, when several held it).
    pub window: WindowBounds,
    /// Its partition's watermark when it was read.
    pub watermark: u64,
    /// The record as JSON.
    pub payload: String,
}

/// How records fold into aggregates, and what the operator emits.
pub(crate) struct Aggregation<T, A> {
    /// The window kind.
    pub windows: WindowSpec,
    /// How long closed windows take late records, 0 unless late records update them.
    pub allowed_lateness_ms: i64,
    /// Whether every change is emitted (emit on update) or only final values.
    pub emit_updates: bool,
    /// The aggregation's name in the dataflow (`window #n`).
    pub view: String,
    /// The source topics upstream: their partitions' watermarks close its windows when the
    /// sources stop.
    pub sources: Vec<String>,
    /// The sources (by index) whose records reach the operator as they were read, with
    /// the event time and watermark they had then: those sources judge lateness for it
    /// (see [`crate::late`]).
    pub judged_at_source: Vec<u32>,
    pub init: Box<dyn Fn() -> A>,
    pub fold: Fold<T, A>,
    /// Combines two aggregates of disjoint records, when the aggregation can.
    pub merge: Option<Merge<A>>,
}

/// Folds a record into an aggregate.
pub(crate) type Fold<T, A> = Box<dyn Fn(&mut A, &T)>;

/// Combines an aggregate with another of disjoint records.
pub(crate) type Merge<A> = Box<dyn Fn(&mut A, &A)>;

/// An aggregation's merge, borrowed.
pub(super) type MergeRef<'a, A> = Option<&'a dyn Fn(&mut A, &A)>;

/// A change the operator emits, at its time.
pub(super) type TimedChange<A> = (Time, Record<WindowChange<A>>);

/// What a batch produced: changes, each at its time, and late records.
pub(super) struct Produced<A> {
    pub changes: Vec<TimedChange<A>>,
    pub late: Vec<LateRecord>,
}

/// What a window kind keeps, per operator instance: the windows of the keys routed to it.
pub(super) trait Keeper<T, A> {
    /// Folds a batch of records, all of time `time`.
    fn apply(&mut self, records: Vec<Vec<Record<T>>>, time: Time, produced: &mut Produced<A>);
    /// Closes every window that closes by `watermark`, emitting final values at or after
    /// `closing`, and forgets closed windows past their allowed lateness. Each window
    /// closed is counted in `closes`, by close point and epoch.
    fn close(
        &mut self,
        watermark: i64,
        closing: Time,
        changes: &mut Vec<TimedChange<A>>,
        closes: &mut Vec<Closed>,
    );
    /// Writes what changed since the last checkpoint.
    fn write(&self, store: &WindowStore<'_>, batch: &mut WriteBatch) -> Result<(), String>;
    /// Forgets what was written: the checkpoint took it.
    fn written(&mut self);
    /// Takes back one stored entry of a key this operator instance holds.
    fn restore_entry(&mut self, key: String, entry: WindowEntry) -> Result<(), String>;
    /// Called once every stored entry is back.
    fn restored(&mut self);
}

type Streams<'scope, A> = (
    Stream<'scope, Time, Vec<Record<WindowChange<A>>>>,
    Stream<'scope, Time, Vec<LateRecord>>,
);

type ChangesOutput<'a, A> =
    OutputBuilderSession<'a, Time, CapacityContainerBuilder<Vec<Record<WindowChange<A>>>>>;

/// Builds the operator. `state`, absent when the topology is only described, is where the
/// windows are checkpointed.
pub(crate) fn window_aggregate<'scope, T, A>(
    input: Stream<'scope, Time, Vec<Record<T>>>,
    aggregation: Aggregation<T, A>,
    state: Option<OperatorState>,
) -> Streams<'scope, A>
where
    T: Data,
    A: Data,
{
    let scope = input.scope();
    let (worker, peers) = (scope.index(), scope.peers());
    let mut builder = OperatorBuilder::new(format!("Window({})", aggregation.view), scope);
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
        let sources = aggregation.sources.clone();
        let lateness = Lateness::of(&aggregation);
        let mut keeper: Box<dyn Keeper<T, A>> = match aggregation.windows {
            WindowSpec::Fixed(windows) => Box::new(Keyed::new(
                fixed::FixedKind::new(windows, aggregation),
                lateness,
            )),
            WindowSpec::Sliding {
                difference_ms,
                grace_ms,
            } => Box::new(Keyed::new(
                sliding::SlidingKind::new(difference_ms, grace_ms, aggregation),
                lateness,
            )),
            WindowSpec::Session { gap_ms, grace_ms } => Box::new(Keyed::new(
                session::SessionKind::new(gap_ms, grace_ms, aggregation),
                lateness,
            )),
        };
        if let Some(state) = &state {
            restore(state, (worker, peers), keeper.as_mut());
        }
        // Held at the input frontier, to emit final values when windows close.
        let mut held: CapabilitySet<Time> = CapabilitySet::new();
        if let Some(capability) = capabilities.drain(..).next() {
            held.insert(capability);
        }
        let mut gate: CheckpointGate<HeldBack<T>> = CheckpointGate::new(state.as_ref());
        let mut clock = WatermarkClock::default();
        let mut closes = Vec::new();

        move |frontiers| {
            let mut changes_handle = changes_output.activate();
            let mut late_handle = late_output.activate();
            let owed = gate.owed(state.as_ref());
            let mut apply = |keeper: &mut Box<dyn Keeper<T, A>>, batch: HeldBack<T>| {
                let time = *batch.changes_capability.time();
                let mut produced = Produced {
                    changes: Vec::new(),
                    late: Vec::new(),
                };
                keeper.apply(batch.records, time, &mut produced);
                if !produced.late.is_empty() {
                    late_handle
                        .session(&batch.late_capability)
                        .give_iterator(produced.late.into_iter());
                }
                give_in_time_order(
                    &mut changes_handle,
                    &batch.changes_capability,
                    produced.changes,
                );
            };
            for batch in gate.release(owed) {
                apply(&mut keeper, batch);
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
                    apply(&mut keeper, batch);
                }
            });

            let frontier = frontiers[0].frontier();
            let hand_in = |keeper: &mut Box<dyn Keeper<T, A>>, gate: &mut CheckpointGate<_>| {
                let handed_in =
                    gate.try_hand_in(state.as_ref(), owed, &frontier[..], |db, batch| {
                        let Some(state) = state.as_ref() else {
                            return Ok(());
                        };
                        let store = db
                            .window_store(&state.store)
                            .map_err(|error| error.to_string())?;
                        keeper.write(&store, batch)
                    });
                if handed_in {
                    keeper.written();
                }
                handed_in
            };
            if frontier.is_empty() {
                // The sources stopped and everything is in. Windows that the stream watermark
                // had passed close now (the frontier may have gone from that watermark to
                // empty between two activations); the others stay open, because the end of a
                // run is not the end of event time. Then the final checkpoint takes it all.
                for batch in gate.release(None) {
                    apply(&mut keeper, batch);
                }
                let stopped = state
                    .as_ref()
                    .and_then(|state| state.stopped_watermark(&sources));
                if let (Some(stopped), Some(closing)) = (stopped, oldest(&held)) {
                    let stopped = as_event_time(stopped);
                    clock.saw(stopped, std::time::Instant::now());
                    let mut finals = Vec::new();
                    keeper.close(stopped, *closing.time(), &mut finals, &mut closes);
                    give_in_time_order(&mut changes_handle, closing, finals);
                    if let Some(state) = &state {
                        clock.report(&closes, stopped, state.status());
                    }
                    closes.clear();
                }
                hand_in(&mut keeper, &mut gate);
                held = CapabilitySet::new();
                return;
            }
            if hand_in(&mut keeper, &mut gate) {
                for batch in gate.release(None) {
                    apply(&mut keeper, batch);
                }
            }

            // While the sources stop, no further than where they stopped.
            let stopped = match &state {
                Some(state) if state.sources_stopping() => Some(state.stopped_watermark(&sources)),
                _ => None,
            };
            if let Some(None) = stopped {
                return;
            }
            // Close every window the frontier's watermark has passed, but not past held-back
            // records: the frontier has moved beyond them, their windows have not.
            held.downgrade(frontier.iter());
            let Some(watermark) = watermark_of(&frontier[..]) else {
                return;
            };
            let watermark = stopped.flatten().map_or(watermark, |at| at.min(watermark));
            // The frontier's watermark, not the held-back one: a close delayed by a
            // checkpoint in flight is latency too.
            clock.saw(as_event_time(watermark), std::time::Instant::now());
            let watermark = as_event_time(
                gate.held_back_watermark()
                    .map_or(watermark, |held_back| held_back.min(watermark)),
            );
            if let Some(closing) = oldest(&held) {
                let mut finals = Vec::new();
                keeper.close(watermark, *closing.time(), &mut finals, &mut closes);
                give_in_time_order(&mut changes_handle, closing, finals);
                if let Some(state) = &state
                    && !closes.is_empty()
                {
                    clock.report(&closes, watermark, state.status());
                }
                closes.clear();
            }
        }
    });
    (changes, late)
}

/// A watermark as an event time.
pub(super) fn as_event_time(watermark: u64) -> i64 {
    i64::try_from(watermark).unwrap_or(i64::MAX)
}

/// The held capability of the oldest epoch, so that a window closed before a checkpoint is
/// handed in travels in an epoch that checkpoint takes.
fn oldest(held: &CapabilitySet<Time>) -> Option<&Capability<Time>> {
    held.iter()
        .min_by_key(|capability| (capability.time().outer, capability.time().inner))
}

/// A batch of records of one time, with capabilities to emit its changes and late records.
struct HeldBack<T> {
    changes_capability: Capability<Time>,
    late_capability: Capability<Time>,
    records: Vec<Vec<Record<T>>>,
}

/// Loads the windows of this worker's keys from the operator's store.
fn restore<T, A>(
    state: &OperatorState,
    (worker, peers): (usize, usize),
    keeper: &mut dyn Keeper<T, A>,
) {
    let mut failure = None;
    let outcome = state.db().window_store(&state.store).and_then(|store| {
        store.for_each(|key, entry| {
            let Ok(key) = String::from_utf8(key.to_vec()) else {
                return;
            };
            if worker_of(&key, peers) != worker || failure.is_some() {
                return;
            }
            if let Err(error) = keeper.restore_entry(key, entry) {
                failure = Some(error);
            }
        })
    });
    match (outcome, failure) {
        (Err(error), _) => state.fail(&format!("cannot restore {}: {error}", state.store)),
        (Ok(()), Some(error)) => state.fail(&format!(
            "cannot restore a window of {}: {error}",
            state.store
        )),
        (Ok(()), None) => keeper.restored(),
    }
}

/// A change record of `key`'s window.
pub(super) fn change_record<A>(
    key: String,
    watermark: u64,
    change: WindowChange<A>,
) -> Record<WindowChange<A>> {
    Record {
        key,
        event_time: change.window.start,
        watermark,
        origin: NO_ORIGIN,
        headers: CarriedHeaders::NONE,
        value: change,
    }
}

/// The late record for `record`, whose last window was `window`.
pub(super) fn late_record<T: Data>(record: Record<T>, window: WindowBounds) -> LateRecord {
    LateRecord {
        payload: serde_json::to_string(&record.value).unwrap_or_default(),
        key: record.key,
        origin: record.origin,
        event_time: record.event_time,
        window,
        watermark: record.watermark,
    }
}

/// A window's value merged from its parts, with their largest watermark and the join of
/// their times.
pub(super) struct Merged<A> {
    pub aggregate: A,
    pub watermark: u64,
    pub time: Time,
}

impl<A: Data> Merged<A> {
    /// Adds a part to `merged`, which starts as the first part.
    pub(super) fn absorb(
        merged: &mut Option<Merged<A>>,
        part: &A,
        (watermark, time): (u64, Time),
        merge: MergeRef<'_, A>,
    ) {
        match merged {
            None => {
                *merged = Some(Merged {
                    aggregate: part.clone(),
                    watermark,
                    time,
                })
            }
            Some(merged) => {
                merge_into(merge, &mut merged.aggregate, part);
                merged.watermark = merged.watermark.max(watermark);
                merged.time = join(&merged.time, &time);
            }
        }
    }

    /// The change of `name`'s `window`, which now holds this value, made by the batch of
    /// `time`: an update, or the correction of a closed window.
    pub(super) fn updated(
        self,
        name: &str,
        window: WindowBounds,
        old: Option<A>,
        correction: bool,
        time: Time,
    ) -> TimedChange<A> {
        (
            join(&self.time, &time),
            change_record(
                name.to_string(),
                self.watermark,
                WindowChange {
                    window,
                    old,
                    new: self.aggregate,
                    is_final: correction,
                    correction,
                    removed: false,
                },
            ),
        )
    }

    /// The final change of `name`'s `window`, closed at `closing`.
    pub(super) fn closed(
        self,
        name: &str,
        window: WindowBounds,
        old: Option<A>,
        correction: bool,
        closing: Time,
    ) -> TimedChange<A> {
        // A final value is final from the window's end on, whenever the frontier happened
        // to show it.
        let watermark = self.watermark.max(u64::try_from(window.end).unwrap_or(0));
        (
            join(&self.time, &closing),
            change_record(
                name.to_string(),
                watermark,
                WindowChange {
                    window,
                    old,
                    new: self.aggregate,
                    is_final: true,
                    correction,
                    removed: false,
                },
            ),
        )
    }
}

/// Folds `from` into `into` with the aggregation's merge, which the keepers that need it
/// are only built with.
pub(super) fn merge_into<A>(merge: MergeRef<'_, A>, into: &mut A, from: &A) {
    if let Some(merge) = merge {
        merge(into, from);
    }
}

/// Sends changes, each at its own time (at or after `base`), one session per distinct time.
fn give_in_time_order<A: Data>(
    output: &mut ChangesOutput<'_, A>,
    base: &Capability<Time>,
    mut changes: Vec<TimedChange<A>>,
) {
    if changes.is_empty() {
        return;
    }
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
