//! Tables as differential collections and back: a table's changes become updates (the old
//! row with -1, the new one with +1) that differential arranges and joins, and a
//! collection of keyed rows becomes a table's changes again.
//!
//! Differential needs ordered data, and values need not be (prices are floats), so a row
//! travels as its envelope and its value in canonical JSON ([`Row`]). Both conversions
//! keep their rows in checkpointed state, so that a restored run rebuilds its
//! arrangements without emitting anything again.

// Keys come from the input: a seeded hasher, but a fast one (SipHash showed in profiles).
use foldhash::{HashMap, HashMapExt, HashSet};

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use super::state::{CheckpointGate, OperatorState};
use super::table::{TableChange, TableUpdates, keyed_changes, restore_values, write_values};
use crate::checkpoint::Request;
use crate::epoch::{Time, join, stamp_time};
use crate::record::{CarriedHeaders, Data, Origin, Record, key_hash};

/// A table's row as differential holds it: the envelope of the change that set it and its
/// value as canonical JSON (object fields sorted), so that equal values are equal rows
/// whichever process encoded them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Row {
    pub event_time: i64,
    pub watermark: u64,
    pub origin: Origin,
    pub value: String,
}

impl Row {
    /// The row of `value`, set by a change with `record`'s envelope.
    pub(crate) fn of<B: Serialize, E>(record: &Record<E>, value: &B) -> Result<Row, String> {
        Ok(Row {
            event_time: record.event_time,
            watermark: record.watermark,
            origin: record.origin,
            value: canonical_json(value)?,
        })
    }

    /// The row of `value` made from the rows `left` and `right` (either may be missing,
    /// not both): it carries the envelope of the later of the two.
    pub(crate) fn joined<B: Serialize>(
        left: Option<&Row>,
        right: Option<&Row>,
        value: &B,
    ) -> Result<Row, String> {
        let later = match (left, right) {
            (Some(left), Some(right)) if right.event_time > left.event_time => right,
            (Some(left), _) => left,
            (None, Some(right)) => right,
            (None, None) => return Err("a joined row needs a row from either side".into()),
        };
        Ok(Row {
            event_time: later.event_time,
            watermark: left
                .map_or(0, |row| row.watermark)
                .max(right.map_or(0, |row| row.watermark)),
            origin: later.origin,
            value: canonical_json(value)?,
        })
    }

    /// A row with this row's envelope around `value`.
    pub(crate) fn with_value<B: Serialize>(&self, value: &B) -> Result<Row, String> {
        Ok(Row {
            event_time: self.event_time,
            watermark: self.watermark,
            origin: self.origin,
            value: canonical_json(value)?,
        })
    }

    /// The row's value.
    pub(crate) fn decode<B: Data>(&self) -> Result<B, String> {
        serde_json::from_str(&self.value).map_err(|error| error.to_string())
    }

    /// A record with this row's envelope around `value`.
    fn record<B>(&self, key: String, value: B) -> Record<B> {
        Record {
            key,
            event_time: self.event_time,
            watermark: self.watermark,
            origin: self.origin,
            // A row is state that many records made; it carries none's headers.
            headers: CarriedHeaders::NONE,
            value,
        }
    }
}

/// JSON with the fields of every object in sorted order (`serde_json::Value` keeps its
/// objects in a sorted map): a map-valued field encodes the same whatever its iteration
/// order, so a retraction always meets the row it retracts.
fn canonical_json<B: Serialize>(value: &B) -> Result<String, String> {
    serde_json::to_value(value)
        .and_then(|value| serde_json::to_string(&value))
        .map_err(|error| error.to_string())
}

/// A keyed collection of rows at the engine's times.
pub(crate) type Rows<'scope> = VecCollection<'scope, Time, (String, Row), isize>;

/// The collection of `table`'s rows. Its state is the rows it holds (`state`); a restored
/// run emits them again at its start, for the arrangements downstream to rebuild from.
pub(crate) fn table_rows<'scope, B: Data>(
    table: TableUpdates<'scope, B>,
    state: Option<OperatorState>,
) -> Rows<'scope> {
    let failures = state.clone();
    let rows = keyed_changes(
        table,
        Exchange::new(|record: &Record<TableChange<B>>| key_hash(&record.key)),
        "TableRows",
        state,
        Some(|key: &str, row: &Row| {
            row.record(
                key.to_string(),
                TableChange {
                    old: None,
                    new: Some(row.clone()),
                },
            )
        }),
        move |record, rows: &mut HashMap<String, Row>, emit| {
            let new = match record
                .value
                .new
                .as_ref()
                .map(|value| Row::of(&record, value))
            {
                Some(Ok(row)) => Some(row),
                Some(Err(error)) => {
                    if let Some(state) = &failures {
                        state.fail(&format!("cannot encode a table row: {error}"));
                    }
                    return;
                }
                None => None,
            };
            let old = match &new {
                Some(row) => rows.insert(record.key.clone(), row.clone()),
                None => rows.remove(&record.key),
            };
            if old != new {
                emit(record.with_value(TableChange { old, new }));
            }
        },
    );
    rows.unary::<CapacityContainerBuilder<Vec<((String, Row), Time, isize)>>, _, _, _>(
        Pipeline,
        "RowUpdates",
        |_capability, _info| {
            move |input, output| {
                input.for_each(|stamp, batch| {
                    let Some(time) = stamp_time(stamp.stamp()) else {
                        return;
                    };
                    let capability = stamp.delayed(&time, 0);
                    let mut session = output.session(&capability);
                    for record in batch.drain(..) {
                        let change = record.value;
                        if let Some(old) = change.old {
                            session.give(((record.key.clone(), old), time, -1));
                        }
                        if let Some(new) = change.new {
                            session.give(((record.key, new), time, 1));
                        }
                    }
                });
            }
        },
    )
    .as_collection()
}

/// Updates waiting for their epoch to close, by time, each time under a capability for
/// it. A message's capability can be of an older epoch than its updates (a join sends at
/// the join of two times under the earlier one), so holding it would hold back a
/// checkpoint that the updates are waiting for.
type Waiting = HashMap<Time, (Capability<Time>, Vec<((String, Row), isize)>)>;

/// Changes to send under a capability.
type Sending<B> = (Capability<Time>, Vec<Record<TableChange<B>>>);

/// The table of a collection that holds at most one row per key, as its changes.
///
/// Times are `(epoch, watermark)` products, and a collection is consistent only at a time:
/// updates complete in some other downward-closed set (epoch 5 up to watermark 100, and
/// epoch 4 up to 200) can add up to two rows for a key before differential's correction
/// at their join arrives. So updates apply a whole epoch at once, when no update of it can
/// still come: the table then stands as of the end of that epoch. A key's changes go out
/// at times that only grow, so downstream never sees them reordered.
///
/// Its state is the table as it last settled (`state`); a restored run compares the rows
/// its arrangements rebuild against it, and emits only what differs.
pub(crate) fn rows_table<'scope, B: Data>(
    rows: Rows<'scope>,
    state: Option<OperatorState>,
) -> TableUpdates<'scope, B> {
    let scope = rows.inner.scope();
    let (worker, peers) = (scope.index(), scope.peers());
    rows.inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Record<TableChange<B>>>>, _, _, _>(
            Exchange::new(|((key, _), _, _): &((String, Row), Time, isize)| key_hash(key)),
            "RowsTable",
            move |_capability, _info| {
                let mut table = SettledTable::default();
                if let Some(state) = &state {
                    restore_values(state, worker, peers, &mut table.emitted);
                }
                let mut waiting: Waiting = HashMap::new();
                let mut gate: CheckpointGate<()> = CheckpointGate::new(state.as_ref());

                move |(input, frontier), output| {
                    input.for_each(|stamp, batch| {
                        if let Some(time) = stamp_time(stamp.stamp()) {
                            for (row, at, diff) in batch.drain(..) {
                                waiting
                                    .entry(at)
                                    .or_insert_with(|| {
                                        (stamp.delayed(&join(&time, &at), 0), Vec::new())
                                    })
                                    .1
                                    .push((row, diff));
                            }
                        }
                    });
                    let owed = gate.owed(state.as_ref());
                    let frontier = frontier.frontier().to_vec();
                    // An epoch is closed when every time still to come is of a later one;
                    // one a checkpoint owes its part for waits until it is handed in.
                    let first_open_epoch = frontier.iter().map(|time| time.outer).min();
                    let closed = |owed: Option<Request>| {
                        move |time: &Time| {
                            first_open_epoch.is_none_or(|open| time.outer < open)
                                && owed.is_none_or(|request| request.includes(time.outer))
                        }
                    };
                    let mut give = |sessions: Vec<Sending<B>>| {
                        for (capability, changes) in sessions {
                            let mut session = output.session(&capability);
                            for change in changes {
                                session.give(change);
                            }
                        }
                    };
                    give(table.settle(&mut waiting, closed(owed), state.as_ref()));
                    let handed_in =
                        gate.try_hand_in(state.as_ref(), owed, &frontier, |db, batch| {
                            write_values(db, state.as_ref(), &table.emitted, &table.dirty, batch)
                        });
                    if handed_in {
                        table.dirty.clear();
                        give(table.settle(&mut waiting, closed(None), state.as_ref()));
                    }
                }
            },
        )
}

/// What [`rows_table`] keeps: the table as it last settled, and the collection's counts
/// it comes from.
#[derive(Default)]
struct SettledTable {
    /// The row of each key as the table last settled, its value as last emitted
    /// (checkpointed).
    emitted: HashMap<String, Row>,
    /// The time of each key's last change: the next one goes out at or after it.
    emitted_at: HashMap<String, Time>,
    /// The accumulated count of each row of each key.
    counts: HashMap<String, Vec<(Row, isize)>>,
    /// The keys emitted since the last checkpoint.
    dirty: HashSet<String>,
}

impl SettledTable {
    /// Applies the updates of closed epochs from `waiting`, and returns the changes they
    /// make to the table, with the capabilities to send them under.
    fn settle<B: Data>(
        &mut self,
        waiting: &mut Waiting,
        closed: impl Fn(&Time) -> bool,
        state: Option<&OperatorState>,
    ) -> Vec<Sending<B>> {
        let touched = settle_closed(waiting, &mut self.counts, closed);
        let mut sessions: HashMap<Time, Sending<B>> = HashMap::new();
        for (key, (time, capability)) in touched {
            let now = current_row(self.counts.get(&key)).cloned();
            if now.is_none() {
                self.counts.remove(&key);
            }
            let before = self.emitted.get(&key);
            if before == now.as_ref() {
                continue;
            }
            // A row whose value stays and whose envelope changes is kept, not emitted: the
            // state then holds the collection's own rows, whatever epochs it settled in.
            if before.map(|row| &row.value) != now.as_ref().map(|row| &row.value) {
                let change = match table_change::<B>(&key, before, now.as_ref()) {
                    Ok(change) => change,
                    Err(error) => {
                        if let Some(state) = state {
                            state.fail(&format!("cannot decode a table row: {error}"));
                        }
                        continue;
                    }
                };
                let time = match self.emitted_at.get(&key) {
                    Some(earlier) => join(earlier, &time),
                    None => time,
                };
                self.emitted_at.insert(key.clone(), time);
                sessions
                    .entry(time)
                    .or_insert_with(|| (capability.delayed(&time), Vec::new()))
                    .1
                    .push(change);
            }
            match now {
                Some(row) => self.emitted.insert(key.clone(), row),
                None => self.emitted.remove(&key),
            };
            self.dirty.insert(key);
        }
        sessions.into_values().collect()
    }
}

/// Adds the updates of closed epochs to `counts` and drops them from `waiting`. Returns
/// each key they touched, with the join of its updates' times and a capability at or
/// before it.
fn settle_closed(
    waiting: &mut Waiting,
    counts: &mut HashMap<String, Vec<(Row, isize)>>,
    closed: impl Fn(&Time) -> bool,
) -> HashMap<String, (Time, Capability<Time>)> {
    let mut touched: HashMap<String, (Time, Capability<Time>)> = HashMap::new();
    waiting.retain(|time, (capability, updates)| {
        if !closed(time) {
            return true;
        }
        for ((key, row), diff) in updates.drain(..) {
            let rows = counts.entry(key.clone()).or_default();
            match rows.iter_mut().find(|(held, _)| *held == row) {
                Some((_, count)) => *count += diff,
                None => rows.push((row, diff)),
            }
            rows.retain(|(_, count)| *count != 0);
            touched
                .entry(key)
                .and_modify(|(latest, _)| *latest = join(latest, time))
                .or_insert_with(|| (*time, capability.clone()));
        }
        false
    });
    touched
}

/// The row a key holds: the one row with a positive count. With one row per key, the
/// counts of a closed epoch hold one row with count 1 or none; should they hold more, the
/// greatest stands, so that the choice is the same on every replay.
fn current_row(rows: Option<&Vec<(Row, isize)>>) -> Option<&Row> {
    rows?
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(row, _)| row)
        .max()
}

/// The change from `before` to `now` of `key`, in the envelope of the row that made it
/// (the removed row, for a delete).
fn table_change<B: Data>(
    key: &str,
    before: Option<&Row>,
    now: Option<&Row>,
) -> Result<Record<TableChange<B>>, String> {
    let old = before.map(Row::decode).transpose()?;
    let new = now.map(Row::decode).transpose()?;
    let envelope = now
        .or(before)
        .ok_or("a change needs a row before or after")?;
    Ok(envelope.record(key.to_string(), TableChange { old, new }))
}
