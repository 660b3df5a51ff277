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
//! A side whose every partition is idle (see [`crate::render::idle`]) does not hold the
//! other back, as Flink's idle inputs do not: product updates that stopped would otherwise
//! stop the orders. A record that then arrives with an older event time than what was
//! applied is applied at once, after it.

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
use crate::epoch::{Time, stamp_time, watermark_of};
use crate::record::{Data, Origin, Record, key_hash, worker_of};

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

fn sequence_of<T>(record: &Record<T>) -> Sequence {
    let Origin {
        source,
        partition,
        offset,
        index,
    } = record.origin;
    (record.event_time, source, partition, offset, index)
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
    /// Each side's sources' idle boards: a side idle everywhere holds nothing back.
    pub idle: [Vec<Arc<IdleBoard>>; 2],
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
            self.pending_dirty.insert(sequence);
            let Record {
                key,
                event_time,
                watermark,
                origin,
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
            outputs.extend(stamp_outputs(&mut emitted, event_time, watermark, origin));
        }
    }
}

/// Outputs of one input record as records: its event time and origin, each with its own
/// position, so that every output has its own deterministic id.
fn stamp_outputs<O>(
    emitted: &mut Vec<(String, O)>,
    event_time: i64,
    watermark: u64,
    origin: Origin,
) -> impl Iterator<Item = Record<O>> + '_ {
    emitted
        .drain(..)
        .enumerate()
        .map(move |(index, (key, value))| Record {
            key,
            event_time,
            watermark,
            origin: Origin {
                index: index as u32,
                ..origin
            },
            value,
        })
}

/// The watermark of one side: `None` when it holds nothing back (stopped, empty, or idle
/// on every partition).
fn side_watermark(frontier: &[Time], idle: &[Arc<IdleBoard>]) -> Option<u64> {
    if side_is_quiet(idle) {
        return None;
    }
    watermark_of(frontier)
}

/// Whether every source of a side is idle on every partition.
fn side_is_quiet(idle: &[Arc<IdleBoard>]) -> bool {
    !idle.is_empty() && idle.iter().all(|board| board.is_quiet())
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
    A: FnMut(&Arrival<Either<L, R>>, &mut Vec<(String, O)>) + 'static,
{
    let scope = left.scope();
    let (worker, peers) = (scope.index(), scope.peers());
    let Sequencing {
        routing,
        topics,
        idle,
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
                        let arrival = Arrival {
                            key: record.key.clone(),
                            event_time: record.event_time,
                            value: record.value.clone(),
                        };
                        announce(&arrival, &mut emitted);
                        arrived.extend(stamp_outputs(
                            &mut emitted,
                            record.event_time,
                            record.watermark,
                            record.origin,
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
                // The sources stopped: apply what each side's stopped watermark allows,
                // as windows close at the end of a run; the rest waits for the next run.
                for records in gate.release(None) {
                    admit(&mut sequencer, records);
                }
                let side = |side: usize| {
                    if side_is_quiet(&idle[side]) {
                        return None;
                    }
                    state
                        .as_ref()
                        .and_then(|state| state.stopped_watermark(&topics[side]))
                };
                side(0).into_iter().chain(side(1)).min()
            } else {
                if hand_in(&mut sequencer, &mut gate) {
                    for records in gate.release(None) {
                        admit(&mut sequencer, records);
                    }
                }
                held.downgrade(frontier.iter());
                let watermark = side_watermark(&left_frontier, &idle[0])
                    .into_iter()
                    .chain(side_watermark(&right_frontier, &idle[1]))
                    .min();
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
