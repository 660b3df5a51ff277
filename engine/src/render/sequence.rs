//! Two streams applied together in event-time order: records of both wait in a buffer
//! until the watermark of both passes their event time, then a step function applies them
//! one by one, in the order of their event times (ties broken by source, partition, offset
//! and position), to state kept per key. Like a Flink event-time temporal join or a
//! process function over a connected stream: the decisions depend only on the records,
//! never on how the two topics' reads interleaved, so every replay makes the same ones.
//!
//! The buffer and the state are checkpointed into the operator's store (`p/…` entries for
//! buffered records, `s/{key}` for state), so a restore resumes with what was read but not
//! applied yet. Records are routed by key, or all to one worker when a decision needs the
//! state of many keys at once (a saga whose orders span items).
//!
//! A record behind its partition's watermark takes its place at that watermark. With live
//! input, a side whose every partition is idle (see [`crate::render::idle`]) does not hold
//! the other back, as Flink's idle inputs do not: product updates that stopped would
//! otherwise stop the orders. A record that then arrives older than what was applied is
//! applied after it. Input held in memory is never treated so (see [`Sequencing`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::CapabilitySet;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use super::idle::IdleBoard;
use super::state::{CheckpointGate, OperatorState};
use crate::epoch::{NO_WATERMARK, Time, at, stamp_time, watermark_of};
use crate::record::{CarriedHeaders, Data, Origin, Record, key_hash, worker_of};

/// A record of the first stream or of the second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Either<L, R> {
    /// From the stream the operator was called on.
    Left(L),
    /// From the other stream.
    Right(R),
}

/// A record as the step function sees it.
#[derive(Debug, Clone)]
pub struct Arrival<V> {
    /// The record key.
    pub key: String,
    /// Its event time, in epoch milliseconds.
    pub event_time: i64,
    /// The value.
    pub value: V,
}

/// Where the records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routing {
    /// To the worker of their key: the step reads and writes only that key's state.
    ByKey,
    /// All to one worker: the step may read and write the state of any key.
    Together,
}

impl Routing {
    fn route(self, key: &str) -> u64 {
        match self {
            Routing::ByKey => key_hash(key),
            Routing::Together => 0,
        }
    }

    fn worker(self, key: &str, peers: usize) -> usize {
        match self {
            Routing::ByKey => worker_of(key, peers),
            Routing::Together => 0,
        }
    }
}

/// State per key, as a step function reads and changes it. What it changes is written at
/// the next checkpoint.
#[derive(Debug)]
pub struct StateMap<S> {
    values: HashMap<String, S>,
    dirty: HashSet<String>,
}

impl<S> StateMap<S> {
    fn new() -> Self {
        StateMap {
            values: HashMap::new(),
            dirty: HashSet::new(),
        }
    }

    /// The value of `key`, if it has one.
    pub fn get(&self, key: &str) -> Option<&S> {
        self.values.get(key)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut S> {
        let value = self.values.get_mut(key)?;
        if !self.dirty.contains(key) {
            self.dirty.insert(key.to_string());
        }
        Some(value)
    }

    /// Sets the value of `key`.
    pub fn insert(&mut self, key: &str, value: S) {
        self.dirty.insert(key.to_string());
        self.values.insert(key.to_string(), value);
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<S> {
        self.dirty.insert(key.to_string());
        self.values.remove(key)
    }

    /// Keeps the keys for which `keep` says so and removes the others, as
    /// [`StateMap::remove`] would each: a sweep for state that has outlived its use.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &S) -> bool) {
        let dirty = &mut self.dirty;
        self.values.retain(|key, value| {
            let kept = keep(key, value);
            if !kept {
                dirty.insert(key.clone());
            }
            kept
        });
    }

    /// How many keys have a value.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The place of a record in event-time order: its event time, then where it was read.
type Sequence = (i64, u32, i32, i64, u32);

/// A record behind its partition's watermark (late) takes its place at that watermark:
/// when it arrives, records up to there may have been applied already, and its place must
/// not depend on how soon it came. The partition's watermark after the record is a
/// function of the partition's data, so the order is the same on every run.
fn sequence_of<T>(record: &Record<T>) -> Sequence {
    let Origin {
        source,
        partition,
        offset,
        index,
    } = record.origin;
    let place = match i64::try_from(record.watermark) {
        Ok(watermark) if record.watermark != NO_WATERMARK => record.event_time.max(watermark),
        _ => record.event_time,
    };
    (place, source, partition, offset, index)
}

const PENDING: &[u8] = b"p/";
const STATE: &[u8] = b"s/";

fn pending_key(sequence: Sequence) -> Vec<u8> {
    let (event_time, source, partition, offset, index) = sequence;
    let mut key = PENDING.to_vec();
    // Sign-flipped big-endian integers sort as the numbers do.
    key.extend_from_slice(&((event_time as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&source.to_be_bytes());
    key.extend_from_slice(&((partition as u32) ^ (1 << 31)).to_be_bytes());
    key.extend_from_slice(&((offset as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn state_key(key: &str) -> Vec<u8> {
    [STATE, key.as_bytes()].concat()
}

/// What the operator is given besides its inputs.
pub(crate) struct Sequencing<F, A> {
    pub routing: Routing,
    /// The source topics of each side, whose stopped watermarks end a run.
    pub topics: [Vec<String>; 2],
    /// Each side's sources' idle boards.
    pub idle: [Vec<Arc<IdleBoard>>; 2],
    /// Live input (a broker): a side idle everywhere holds nothing back, and idle
    /// partitions' time counts, as for windows; both depend on wall time. Input held in
    /// memory is all there from the start: no side is skipped, and no side's watermark is
    /// taken past what its partitions reached by their own records, so what a run makes
    /// depends on the input alone.
    pub live_input: bool,
    /// Applies one record, in event-time order, emitting keyed outputs.
    pub step: F,
    /// Emits outputs for a record as soon as it arrives, before it is applied.
    pub on_arrival: Option<A>,
}

/// The buffer of records not yet applied, and the state they are applied to.
struct Sequencer<L, R, S> {
    pending: BTreeMap<Sequence, Record<Either<L, R>>>,
    /// Buffered records added or applied since the last checkpoint.
    pending_dirty: BTreeSet<Sequence>,
    state: StateMap<S>,
}

impl<L: Data, R: Data, S: Data> Sequencer<L, R, S> {
    fn write(
        &self,
        store: &sluice_state::TableStore<'_>,
        batch: &mut sluice_state::WriteBatch,
    ) -> Result<(), String> {
        for sequence in &self.pending_dirty {
            let key = pending_key(*sequence);
            match self.pending.get(sequence) {
                Some(record) => {
                    let json = serde_json::to_vec(record).map_err(|error| error.to_string())?;
                    store.put_into(batch, &key, &json);
                }
                None => store.delete_into(batch, &key),
            }
        }
        for key in &self.state.dirty {
            let stored = state_key(key);
            match self.state.values.get(key) {
                Some(value) => {
                    let json = serde_json::to_vec(value).map_err(|error| error.to_string())?;
                    store.put_into(batch, &stored, &json);
                }
                None => store.delete_into(batch, &stored),
            }
        }
        Ok(())
    }

    fn written(&mut self) {
        self.pending_dirty.clear();
        self.state.dirty.clear();
    }

    fn restore(
        &mut self,
        state: &OperatorState,
        routing: Routing,
        (worker, peers): (usize, usize),
    ) {
        fn decode<V: DeserializeOwned>(state: &OperatorState, json: &[u8]) -> Option<V> {
            match serde_json::from_slice(json) {
                Ok(value) => Some(value),
                Err(error) => {
                    state.fail(&format!("cannot restore {}: {error}", state.store));
                    None
                }
            }
        }
        let outcome = state.db().table_store(&state.store).and_then(|store| {
            store.for_each(|key, json| {
                if key.starts_with(PENDING) {
                    if let Some(record) = decode::<Record<Either<L, R>>>(state, &json)
                        && routing.worker(&record.key, peers) == worker
                    {
                        self.pending.insert(sequence_of(&record), record);
                    }
                } else if let Some(key) = key.strip_prefix(STATE)
                    && let Ok(key) = std::str::from_utf8(key)
                    && routing.worker(key, peers) == worker
                    && let Some(value) = decode::<S>(state, &json)
                {
                    self.state.values.insert(key.to_string(), value);
                }
            })
        });
        if let Err(error) = outcome {
            state.fail(&format!("cannot restore {}: {error}", state.store));
        }
    }

    /// Applies, in order, the buffered records with event times before `watermark`.
    fn apply_before<O>(
        &mut self,
        watermark: i64,
        step: &mut impl FnMut(&mut StateMap<S>, Arrival<Either<L, R>>, &mut Vec<(String, O)>),
        outputs: &mut Vec<Record<O>>,
    ) {
        let mut emitted = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 >= watermark {
                break;
            }
            let (sequence, record) = entry.remove_entry();
            // A record that came since the last checkpoint was never written: forgetting
            // it is enough. One written before must be deleted.
            if !self.pending_dirty.remove(&sequence) {
                self.pending_dirty.insert(sequence);
            }
            let Record {
                key,
                event_time,
                watermark,
                origin,
                headers,
                value,
            } = record;
            step(
                &mut self.state,
                Arrival {
                    key,
                    event_time,
                    value,
                },
                &mut emitted,
            );
            outputs.extend(stamp_outputs(
                &mut emitted,
                event_time,
                watermark,
                origin,
                &headers,
            ));
        }
    }
}

/// Outputs of one input record as records: its event time, origin and headers, each with
/// its own position (combined with the record's own, as an expansion does), so that every
/// output has its own deterministic id.
fn stamp_outputs<'a, O>(
    emitted: &'a mut Vec<(String, O)>,
    event_time: i64,
    watermark: u64,
    origin: Origin,
    headers: &'a CarriedHeaders,
) -> impl Iterator<Item = Record<O>> + 'a {
    emitted
        .drain(..)
        .enumerate()
        .map(move |(index, (key, value))| Record {
            key,
            event_time,
            watermark,
            origin: Origin {
                index: crate::dsl::stream::expanded_position(origin.index, index as u32),
                ..origin
            },
            headers: headers.clone(),
            value,
        })
}

/// The watermark both sides allow, from each side's watermark and whether it is quiet (idle
/// on every partition). A quiet side holds nothing back, so the others decide. When every
/// side is quiet, the highest watermark decides, as in Flink's watermark valve: nothing
/// older can come, and without it the records below the last watermark would wait for the
/// next record forever.
fn combined_watermark(sides: [(Option<u64>, bool); 2]) -> Option<u64> {
    let active = sides.iter().filter(|(_, quiet)| !quiet);
    if sides.iter().all(|(_, quiet)| *quiet) {
        sides.iter().filter_map(|(watermark, _)| *watermark).max()
    } else {
        active.filter_map(|(watermark, _)| *watermark).min()
    }
}

/// A side's watermark: its input frontier's, but no further than its partitions reached by
/// their own records. Idle partitions follow the others' time (see `render::idle`), which
/// depends on wall time: records must not be applied on the strength of it, or a run would
/// apply what a slower or faster one would not.
fn own_watermark(frontier: &[Time], idle: &[Arc<IdleBoard>]) -> Option<u64> {
    let reached = idle
        .iter()
        .filter_map(|board| board.least_own_watermark())
        .min();
    match (watermark_of(frontier), reached) {
        (Some(watermark), Some(reached)) => Some(watermark.min(reached)),
        // A side whose sources are done (or hold only their epoch) stands where its
        // partitions stopped.
        (None, reached) => reached,
        (watermark, None) => watermark,
    }
}

/// Whether every source of a side is idle on every partition, and every record they sent
/// has reached `frontier`, this side's input: a record still on its way may be older
/// than the other side's records.
fn side_is_quiet(idle: &[Arc<IdleBoard>], frontier: &[Time]) -> bool {
    !idle.is_empty()
        && idle
            .iter()
            .all(|board| board.is_quiet() && board.delivered_by(frontier))
}

/// A stream of keyed records.
type Records<'scope, T> = Stream<'scope, Time, Vec<Record<T>>>;

/// Builds the operator over `left` and `right`.
pub(crate) fn sequence<'scope, L, R, S, O, F, A>(
    (left, right): (Records<'scope, L>, Records<'scope, R>),
    name: &str,
    state: Option<OperatorState>,
    sequencing: Sequencing<F, A>,
) -> Stream<'scope, Time, Vec<Record<O>>>
where
    L: Data,
    R: Data,
    S: Data,
    O: Data,
    F: FnMut(&mut StateMap<S>, Arrival<Either<L, R>>, &mut Vec<(String, O)>) + 'static,
    A: FnMut(&Either<L, R>, &mut Vec<(String, O)>) + 'static,
{
    let scope = left.scope();
    let (worker, peers) = (scope.index(), scope.peers());
    let Sequencing {
        routing,
        topics,
        idle,
        live_input,
        mut step,
        mut on_arrival,
    } = sequencing;
    let mut builder = OperatorBuilder::new(name.to_string(), scope);
    let mut left_input = builder.new_input(
        left,
        Exchange::new(move |record: &Record<L>| routing.route(&record.key)),
    );
    let mut right_input = builder.new_input(
        right,
        Exchange::new(move |record: &Record<R>| routing.route(&record.key)),
    );
    let (output, stream) = builder.new_output();
    let mut output = OutputBuilder::<_, CapacityContainerBuilder<Vec<Record<O>>>>::from(output);

    builder.build(move |mut capabilities| {
        let mut sequencer: Sequencer<L, R, S> = Sequencer {
            pending: BTreeMap::new(),
            pending_dirty: BTreeSet::new(),
            state: StateMap::new(),
        };
        if let Some(state) = &state {
            sequencer.restore(state, routing, (worker, peers));
        }
        // Held at the input frontier: records are applied long after they arrived.
        let mut held: CapabilitySet<Time> = CapabilitySet::new();
        if let Some(capability) = capabilities.drain(..).next() {
            held.insert(capability);
        }
        let mut gate: CheckpointGate<Vec<Record<Either<L, R>>>> =
            CheckpointGate::new(state.as_ref());
        let mut arrived: Vec<Record<O>> = Vec::new();
        let mut emitted = Vec::new();

        move |frontiers| {
            let mut handle = output.activate();
            let owed = gate.owed(state.as_ref());
            let mut admit = |sequencer: &mut Sequencer<L, R, S>,
                             records: Vec<Record<Either<L, R>>>| {
                for record in records {
                    if let Some(announce) = on_arrival.as_mut() {
                        announce(&record.value, &mut emitted);
                        arrived.extend(stamp_outputs(
                            &mut emitted,
                            record.event_time,
                            record.watermark,
                            record.origin,
                            &record.headers,
                        ));
                    }
                    let sequence = sequence_of(&record);
                    sequencer.pending_dirty.insert(sequence);
                    sequencer.pending.insert(sequence, record);
                }
            };
            for records in gate.release(owed) {
                admit(&mut sequencer, records);
            }
            left_input.for_each(|stamp, batch| {
                let Some(time) = stamp_time(stamp.stamp()) else {
                    return;
                };
                let records = batch
                    .drain(..)
                    .map(|record| record.map_value(Either::Left))
                    .collect();
                if let Some(records) = gate.admit(owed, time, records) {
                    admit(&mut sequencer, records);
                }
            });
            right_input.for_each(|stamp, batch| {
                let Some(time) = stamp_time(stamp.stamp()) else {
                    return;
                };
                let records = batch
                    .drain(..)
                    .map(|record| record.map_value(Either::Right))
                    .collect();
                if let Some(records) = gate.admit(owed, time, records) {
                    admit(&mut sequencer, records);
                }
            });

            let left_frontier = frontiers[0].frontier().to_vec();
            let right_frontier = frontiers[1].frontier().to_vec();
            let frontier: Vec<Time> = left_frontier
                .iter()
                .chain(right_frontier.iter())
                .copied()
                .collect();
            let hand_in = |sequencer: &mut Sequencer<L, R, S>, gate: &mut CheckpointGate<_>| {
                let handed_in = gate.try_hand_in(state.as_ref(), owed, &frontier, |db, batch| {
                    let Some(state) = state.as_ref() else {
                        return Ok(());
                    };
                    let store = db
                        .table_store(&state.store)
                        .map_err(|error| error.to_string())?;
                    sequencer.write(&store, batch)
                });
                if handed_in {
                    sequencer.written();
                }
                handed_in
            };

            let stopped = frontier.is_empty();
            let watermark = if stopped {
                // The sources stopped: apply what both sides' stopped watermarks allow, as
                // windows close at the end of a run; the rest waits, checkpointed, for the
                // next run, which may bring older records on the lagging side. Idleness, a
                // matter of wall time, has no say here, so the end of a run does not depend
                // on its speed. A side that never read anything has no watermark and holds
                // nothing back.
                for records in gate.release(None) {
                    admit(&mut sequencer, records);
                }
                let side = |side: usize| {
                    let watermark = state
                        .as_ref()
                        .and_then(|state| state.stopped_watermark(&topics[side]));
                    (watermark, false)
                };
                combined_watermark([side(0), side(1)])
            } else {
                if hand_in(&mut sequencer, &mut gate) {
                    for records in gate.release(None) {
                        admit(&mut sequencer, records);
                    }
                }
                // Held at the input frontier, but not past the oldest waiting record: its
                // outputs must travel at a time no later than its place, or windows
                // downstream would close before it comes.
                let oldest_waiting = sequencer
                    .pending
                    .first_key_value()
                    .map(|(sequence, _)| u64::try_from(sequence.0).unwrap_or(0));
                let hold_at: Vec<Time> = frontier
                    .iter()
                    .map(|time| match oldest_waiting {
                        Some(place) => at(time.outer, time.inner.min(place)),
                        None => *time,
                    })
                    .collect();
                held.downgrade(hold_at.iter());
                let side = |side: usize, frontier: &[Time]| match live_input {
                    true => (watermark_of(frontier), side_is_quiet(&idle[side], frontier)),
                    false => (own_watermark(frontier, &idle[side]), false),
                };
                let watermark = match &state {
                    // While the sources stop, no further than where they stopped, nor than
                    // records still on their way.
                    Some(state) if state.sources_stopping() => {
                        let stopped = |side: usize| (state.stopped_watermark(&topics[side]), false);
                        let on_the_way =
                            [watermark_of(&left_frontier), watermark_of(&right_frontier)]
                                .into_iter()
                                .flatten()
                                .min();
                        match (combined_watermark([stopped(0), stopped(1)]), on_the_way) {
                            (Some(stopped), Some(on_the_way)) => Some(stopped.min(on_the_way)),
                            (stopped, _) => stopped,
                        }
                    }
                    _ => combined_watermark([side(0, &left_frontier), side(1, &right_frontier)]),
                };
                // Not past held-back records: they are not in the buffer yet.
                match (watermark, gate.held_back_watermark()) {
                    (Some(watermark), Some(held_back)) => Some(watermark.min(held_back)),
                    (watermark, _) => watermark,
                }
            };

            let mut outputs = std::mem::take(&mut arrived);
            if let Some(watermark) = watermark {
                let watermark = i64::try_from(watermark).unwrap_or(i64::MAX);
                sequencer.apply_before(watermark, &mut step, &mut outputs);
            }
            if let Some(capability) = held
                .iter()
                .min_by_key(|capability| (capability.time().outer, capability.time().inner))
                && !outputs.is_empty()
            {
                handle
                    .session(capability)
                    .give_iterator(outputs.into_iter());
            }
            if stopped {
                hand_in(&mut sequencer, &mut gate);
                held = CapabilitySet::new();
            }
        }
    });
    stream
}

#[cfg(test)]
mod tests {
    use super::{StateMap, combined_watermark};

    #[test]
    fn a_retain_removes_what_it_does_not_keep_and_marks_it_for_deletion() {
        let mut state = StateMap::new();
        for (key, value) in [("a", 1), ("b", 2), ("c", 3)] {
            state.insert(key, value);
        }
        state.dirty.clear();
        state.retain(|key, value| key == "a" || *value == 3);
        assert_eq!(
            (state.get("a"), state.get("b"), state.get("c")),
            (Some(&1), None, Some(&3))
        );
        // Only the removed key is written (as a delete) at the next checkpoint.
        assert_eq!(state.dirty.iter().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn a_quiet_side_holds_nothing_back_unless_every_side_is_quiet() {
        // Both active: the slower decides.
        assert_eq!(
            combined_watermark([(Some(5), false), (Some(9), false)]),
            Some(5)
        );
        // One quiet: the active one decides, even when it is ahead.
        assert_eq!(
            combined_watermark([(Some(5), true), (Some(9), false)]),
            Some(9)
        );
        assert_eq!(
            combined_watermark([(Some(9), false), (Some(5), true)]),
            Some(9)
        );
        // Both quiet: the highest, so the records below it are not left waiting.
        assert_eq!(
            combined_watermark([(Some(5), true), (Some(9), true)]),
            Some(9)
        );
        assert_eq!(combined_watermark([(None, true), (Some(9), true)]), Some(9));
        // An active side with no watermark yet lets nothing through.
        assert_eq!(combined_watermark([(None, false), (Some(9), true)]), None);
    }
}
