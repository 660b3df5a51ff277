//! Tables regrouped by another key and aggregated with add and subtract, like Kafka
//! Streams' `KTable::groupBy(...).aggregate(...)`: when a row changes, its old value is
//! subtracted from the aggregate of its old group and its new value added to its new one.

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;

use super::state::OperatorState;
use super::table::{AddSubtract, TableChange, TableUpdates, keyed_changes};
use crate::epoch::Time;
use crate::record::{Data, Record, key_hash};

/// A row's part in its group: its value comes in, or goes out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum GroupChange<V> {
    /// The row joined the group, or has this value in it now.
    Add(V),
    /// The row left the group, or had this value in it before.
    Subtract(V),
}

/// Each change of a row as what it does to its groups, keyed by group: the old value
/// leaves the old group first, then the new one joins the new group.
pub(crate) fn regroup<'scope, B, V>(
    updates: TableUpdates<'scope, B>,
    select: impl Fn(&str, &B) -> (String, V) + 'static,
) -> Stream<'scope, Time, Vec<Record<GroupChange<V>>>>
where
    B: Data,
    V: Data,
{
    updates.unary::<CapacityContainerBuilder<Vec<Record<GroupChange<V>>>>, _, _, _>(
        Pipeline,
        "Regroup",
        move |_capability, _info| {
            move |input, output| {
                input.for_each(|stamp, records| {
                    let mut session = output.session(&stamp);
                    for record in records.drain(..) {
                        let TableChange { old, new } = &record.value;
                        let parts = [
                            old.as_ref().map(|old| (select(&record.key, old), false)),
                            new.as_ref().map(|new| (select(&record.key, new), true)),
                        ];
                        for ((group, value), joins) in parts.into_iter().flatten() {
                            let change = if joins {
                                GroupChange::Add(value)
                            } else {
                                GroupChange::Subtract(value)
                            };
                            session.give(Record {
                                key: group,
                                event_time: record.event_time,
                                watermark: record.watermark,
                                origin: record.origin,
                                value: change,
                            });
                        }
                    }
                });
            }
        },
    )
}

/// Folds the group changes into one aggregate per group, and emits each change of it.
pub(crate) fn aggregate_groups<'scope, V, A, I, F, G>(
    changes: Stream<'scope, Time, Vec<Record<GroupChange<V>>>>,
    state: Option<OperatorState>,
    aggregator: AddSubtract<I, F, G>,
) -> TableUpdates<'scope, A>
where
    V: Data,
    A: Data,
    I: Fn() -> A + 'static,
    F: Fn(&mut A, &V) + 'static,
    G: Fn(&mut A, &V) + 'static,
{
    keyed_changes(
        changes,
        Exchange::new(|record: &Record<GroupChange<V>>| key_hash(&record.key)),
        "AggregateGroups",
        state,
        None,
        move |record, aggregates, emit| {
            let aggregate = aggregates
                .entry(record.key.clone())
                .or_insert_with(&aggregator.init);
            let old = aggregate.clone();
            match &record.value {
                GroupChange::Add(value) => (aggregator.add)(aggregate, value),
                GroupChange::Subtract(value) => (aggregator.subtract)(aggregate, value),
            }
            let new = Some(aggregate.clone());
            emit(record.map_value(|_| TableChange {
                old: Some(old),
                new,
            }));
        },
    )
}
