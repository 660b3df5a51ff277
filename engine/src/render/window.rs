//! The tumbling-window aggregation operator.
//!
//! Records are exchanged by key, assigned to their window by event time and folded into
//! the window's aggregate. A record whose window has ended at its own timely time (its
//! partition's watermark when it was read) is late: it goes to the second output instead.
//! After each input batch the operator emits one change per updated window; when the input
//! frontier passes a window's end it emits the final value and forgets the window.
//!
//! A window's changes travel at non-decreasing times: the latest time of the records folded
//! in so far. Records of different partitions arrive out of time order, so an aggregate can
//! already hold a record of a later time when an earlier one arrives; stamping the change
//! with the later time keeps every change's value within the records up to its time, which
//! is what makes the change stream a valid differential collection for derived tables.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{OutputBuilder, OutputBuilderSession};

use crate::record::{Data, Origin, Record, key_hash};
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

struct OpenWindow<A> {
    end: i64,
    aggregate: A,
    last_emitted: Option<A>,
    /// The time the last change of this window travelled at.
    emitted_at: u64,
}

type Streams<'scope, A> = (
    Stream<'scope, u64, Vec<Record<WindowChange<A>>>>,
    Stream<'scope, u64, Vec<LateRecord>>,
);

/// Builds the operator. `view` names the aggregation in late records.
pub(crate) fn tumbling_aggregate<'scope, T, A, I, F>(
    input: Stream<'scope, u64, Vec<Record<T>>>,
    windows: TumblingWindows,
    view: String,
    init: I,
    fold: F,
) -> Streams<'scope, A>
where
    T: Data,
    A: Data,
    I: Fn() -> A + 'static,
    F: Fn(&mut A, &T) + 'static,
{
    let mut builder = OperatorBuilder::new(format!("Window({view})"), input.scope());
    let mut records = builder.new_input(
        input,
        Exchange::new(|record: &Record<T>| key_hash(&record.key)),
    );
    let (changes_output, changes) = builder.new_output();
    let (late_output, late) = builder.new_output();
    let mut changes_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(changes_output);
    let mut late_output = OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(late_output);

    builder.build(move |capabilities| {
        drop(capabilities);
        let mut open: HashMap<(String, i64), OpenWindow<A>> = HashMap::new();
        // Open windows ordered by end, to close them as the frontier passes.
        let mut by_end: BTreeSet<(i64, String, i64)> = BTreeSet::new();
        // Held at the input frontier while windows are open, to emit final values.
        let mut held: Option<Capability<u64>> = None;
        let mut touched: Vec<(String, i64)> = Vec::new();

        move |frontiers| {
            let mut changes_handle = changes_output.activate();
            let mut late_handle = late_output.activate();
            records.for_each_stamp(|stamp, batches| {
                let Some(&time) = stamp.least() else { return };
                for batch in batches {
                    for record in batch.drain(..) {
                        let window = windows.assign(record.event_time);
                        if is_late(window, time) {
                            let payload = serde_json::to_string(&record.value).unwrap_or_default();
                            let late = LateRecord {
                                key: record.key,
                                origin: record.origin,
                                event_time: record.event_time,
                                window,
                                watermark: time,
                                payload,
                                view: view.clone(),
                            };
                            let capability = stamp.delayed(&time, 1);
                            late_handle.session(&capability).give(late);
                            continue;
                        }
                        let slot = (record.key, window.start);
                        let entry = match open.get_mut(&slot) {
                            Some(entry) => entry,
                            None => {
                                by_end.insert((window.end, slot.0.clone(), window.start));
                                open.entry(slot.clone()).or_insert(OpenWindow {
                                    end: window.end,
                                    aggregate: init(),
                                    last_emitted: None,
                                    emitted_at: time,
                                })
                            }
                        };
                        fold(&mut entry.aggregate, &record.value);
                        touched.push(slot);
                    }
                }
                if touched.is_empty() {
                    return;
                }
                let capability = stamp.delayed(&time, 0);
                if held.as_ref().is_none_or(|held| held.time() > &time) {
                    held = Some(capability.clone());
                }
                touched.sort_unstable();
                touched.dedup();
                let mut changes: Vec<(u64, Record<WindowChange<A>>)> =
                    Vec::with_capacity(touched.len());
                for (key, start) in touched.drain(..) {
                    if let Some(entry) = open.get_mut(&(key.clone(), start)) {
                        entry.emitted_at = entry.emitted_at.max(time);
                        let change = WindowChange {
                            window: WindowBounds {
                                start,
                                end: entry.end,
                            },
                            old: entry.last_emitted.replace(entry.aggregate.clone()),
                            new: entry.aggregate.clone(),
                            is_final: false,
                        };
                        changes.push((
                            entry.emitted_at,
                            Record {
                                key,
                                event_time: start,
                                origin: NO_ORIGIN,
                                value: change,
                            },
                        ));
                    }
                }
                give_in_time_order(&mut changes_handle, &capability, changes);
            });

            // Close every window whose end the frontier has passed. An empty frontier means
            // the sources stopped (a shutdown), not that event time ended: open windows stay
            // open rather than being declared final.
            let Some(frontier) = frontiers[0].frontier().iter().next().copied() else {
                held = None;
                return;
            };
            if let Some(capability) = held.as_mut() {
                let closing_up_to = i64::try_from(frontier).unwrap_or(i64::MAX);
                if frontier > *capability.time() {
                    capability.downgrade(&frontier);
                }
                let mut changes: Vec<(u64, Record<WindowChange<A>>)> = Vec::new();
                while let Some((end, key, start)) = by_end.first().cloned() {
                    if end > closing_up_to {
                        break;
                    }
                    by_end.pop_first();
                    if let Some(entry) = open.remove(&(key.clone(), start)) {
                        let change = WindowChange {
                            window: WindowBounds { start, end },
                            old: entry.last_emitted,
                            new: entry.aggregate,
                            is_final: true,
                        };
                        let time = entry.emitted_at.max(frontier);
                        changes.push((
                            time,
                            Record {
                                key,
                                event_time: start,
                                origin: NO_ORIGIN,
                                value: change,
                            },
                        ));
                    }
                }
                give_in_time_order(&mut changes_handle, &*capability, changes);
            }
            if open.is_empty() {
                held = None;
            }
        }
    });
    (changes, late)
}

/// Sends changes, each at its own time (at or after `base`), one session per distinct time.
fn give_in_time_order<A: Data>(
    output: &mut OutputBuilderSession<
        '_,
        u64,
        CapacityContainerBuilder<Vec<Record<WindowChange<A>>>>,
    >,
    base: &Capability<u64>,
    mut changes: Vec<(u64, Record<WindowChange<A>>)>,
) {
    changes.sort_by_key(|(time, _)| *time);
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
