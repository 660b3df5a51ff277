//! Tables regrouped by another key and aggregated on differential arrangements, like
//! Kafka Streams' `KTable::groupBy(...).aggregate(...)` and SQL's `GROUP BY`: each row's
//! value is arranged under its group, and a group's aggregate is the fold of the values
//! its rows hold, made again whenever they change.
//!
//! Folding the group's values, instead of adding and subtracting the one that changed,
//! costs a pass over the group per change, and buys any fold: a maximum or a distinct
//! count (which cannot take a value back out) as well as a sum, the same on every replay
//! whatever order the rows' changes came in.

use super::arranged::{Row, Rows, rows_table, table_rows};
use super::state::OperatorState;
use super::table::TableUpdates;
use crate::record::Data;

/// The stores of an aggregate: the regrouped table's rows, and the aggregates as emitted.
pub(crate) struct AggregateStates {
    pub rows: Option<OperatorState>,
    pub aggregates: Option<OperatorState>,
}

/// How a group's values fold into its aggregate.
pub(crate) struct Fold<I, F> {
    pub init: I,
    pub add: F,
}

/// The table of one aggregate per group: `select` gives each row of `table` its group and
/// the value it brings there, and `fold` folds a group's values (in the order of the rows
/// that hold them: event time, then where they were read). A group without rows has no
/// aggregate.
pub(crate) fn aggregate_groups<'scope, B, V, A, I, F>(
    table: TableUpdates<'scope, B>,
    states: AggregateStates,
    select: impl Fn(&str, &B) -> (String, V) + 'static,
    fold: Fold<I, F>,
) -> TableUpdates<'scope, A>
where
    B: Data,
    V: Data,
    A: Data,
    I: Fn() -> A + 'static,
    F: Fn(&mut A, &V) + 'static,
{
    let failures = states.aggregates.clone();
    let fail = move |what: &str, error: String| {
        if let Some(state) = &failures {
            state.fail(&format!("cannot {what}: {error}"));
        }
    };
    let regroup_fail = fail.clone();
    let grouped: Rows<'scope> = table_rows(table, states.rows).flat_map(move |(key, row)| {
        let regrouped = row
            .decode::<B>()
            .and_then(|value| {
                let (group, value) = select(&key, &value);
                Ok((group, row.with_value(&value)?))
            })
            .map_err(|error| regroup_fail(&format!("regroup the row of {key}"), error));
        regrouped.ok()
    });
    let aggregates =
        grouped.reduce_named(
            "AggregateGroups",
            move |group: &String, values: &[(&Row, isize)], output: &mut Vec<(Row, isize)>| {
                match folded(values, &fold) {
                    Ok(Some(row)) => output.push((row, 1)),
                    Ok(None) => {}
                    Err(error) => fail(&format!("aggregate the group {group}"), error),
                }
            },
        );
    rows_table(aggregates, states.aggregates)
}

/// The aggregate of a group's `values` (in row order), each folded as many times as it is
/// held, in the envelope of the latest of them; `None` for a group that holds none.
fn folded<V, A, I, F>(values: &[(&Row, isize)], fold: &Fold<I, F>) -> Result<Option<Row>, String>
where
    V: Data,
    A: Data,
    I: Fn() -> A,
    F: Fn(&mut A, &V),
{
    let mut aggregate = (fold.init)();
    let mut latest: Option<&Row> = None;
    for (row, count) in values {
        if *count <= 0 {
            continue;
        }
        let value = row.decode::<V>()?;
        for _ in 0..*count {
            (fold.add)(&mut aggregate, &value);
        }
        // Differential hands the values over in order, and rows order by event time first.
        latest = Some(row);
    }
    let Some(latest) = latest else {
        return Ok(None);
    };
    let watermark = values
        .iter()
        .map(|(row, _)| row.watermark)
        .max()
        .unwrap_or(latest.watermark);
    let mut row = latest.with_value(&aggregate)?;
    row.watermark = watermark;
    Ok(Some(row))
}
