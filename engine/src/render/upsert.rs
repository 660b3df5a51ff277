//! Tables read from a topic: each record replaces its key's value and a tombstone deletes
//! it, like a Kafka Streams `KTable` built from a topic.
//!
//! Records are exchanged by key, and the records of a key come from one partition through
//! one worker, so they arrive in offset order and apply in that order on every replay. The
//! latest value per key is the operator's state, checkpointed to its own store.

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;

use super::state::OperatorState;
use super::table::{TableChange, TableUpdates, keyed_changes};
use crate::epoch::Time;
use crate::record::{Data, Record, key_hash};

/// Upserts `records` (`None` for a tombstone) into a table, and emits each change of it:
/// nothing for a record that leaves its key as it was.
pub(crate) fn upsert<'scope, T: Data + PartialEq>(
    records: Stream<'scope, Time, Vec<Record<Option<T>>>>,
    state: Option<OperatorState>,
) -> TableUpdates<'scope, T> {
    keyed_changes(
        records,
        Exchange::new(|record: &Record<Option<T>>| key_hash(&record.key)),
        "Upsert",
        state,
        None,
        |record, values, emit| {
            if values.get(&record.key) == record.value.as_ref() {
                return;
            }
            let old = match &record.value {
                Some(value) => values.insert(record.key.clone(), value.clone()),
                None => values.remove(&record.key),
            };
            emit(record.map_value(|new| TableChange { old, new }));
        },
    )
}
