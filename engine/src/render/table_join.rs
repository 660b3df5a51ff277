//! Table-table joins by key on differential arrangements, like Kafka Streams'
//! `KTable#join`, `leftJoin` and `outerJoin`: the joined table is, at every epoch's end,
//! the join of the two tables as they stand then.
//!
//! Each side's rows are arranged once by key; the matched rows and, for the outer sides,
//! the rows without a partner come from the same two arrangements (a side's unmatched rows
//! are its rows minus those that met a row of the other side, which holds at most one row
//! per key).

use std::rc::Rc;

use super::arranged::{Row, Rows, rows_table, table_rows};
use super::state::OperatorState;
use super::table::TableUpdates;
use crate::record::Data;

/// Which sides keep their rows that have no partner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unmatched {
    pub left: bool,
    pub right: bool,
}

/// The stores of a join: each side's rows, and the joined table as emitted.
pub(crate) struct JoinStates {
    pub left: Option<OperatorState>,
    pub right: Option<OperatorState>,
    pub joined: Option<OperatorState>,
}

/// Joins `left` and `right` by key: `joiner` makes a key's joined value from its two rows
/// (a missing one is `None` when `unmatched` keeps that side), or drops the key.
pub(crate) fn join_tables<'scope, A, B, O>(
    left: TableUpdates<'scope, A>,
    right: TableUpdates<'scope, B>,
    states: JoinStates,
    unmatched: Unmatched,
    joiner: impl Fn(Option<&A>, Option<&B>) -> Option<O> + 'static,
) -> TableUpdates<'scope, O>
where
    A: Data,
    B: Data,
    O: Data,
{
    let left_rows = table_rows(left, states.left);
    let right_rows = table_rows(right, states.right);
    let join = Rc::new(JoinRows {
        joiner,
        state: states.joined.clone(),
        sides: std::marker::PhantomData,
    });
    let left_arranged = left_rows.clone().arrange_by_key();
    let right_arranged = right_rows.clone().arrange_by_key();
    let mut joined = {
        let join = Rc::clone(&join);
        left_arranged
            .clone()
            .join_core(right_arranged.clone(), move |key, left, right| {
                join.row(key, Some(left), Some(right))
            })
    };
    if unmatched.left {
        let met = left_arranged
            .clone()
            .join_core(right_arranged.clone(), |key: &String, left: &Row, _| {
                Some((key.clone(), left.clone()))
            });
        let join = Rc::clone(&join);
        let alone =
            without(left_rows, met).flat_map(move |(key, left)| join.row(&key, Some(&left), None));
        joined = joined.concat(alone);
    }
    if unmatched.right {
        let met = right_arranged.join_core(left_arranged, |key: &String, right: &Row, _| {
            Some((key.clone(), right.clone()))
        });
        let join = Rc::clone(&join);
        let alone = without(right_rows, met)
            .flat_map(move |(key, right)| join.row(&key, None, Some(&right)));
        joined = joined.concat(alone);
    }
    rows_table(joined, states.joined)
}

/// The rows of `all` that are not in `some` (a part of it).
fn without<'scope>(all: Rows<'scope>, some: Rows<'scope>) -> Rows<'scope> {
    all.concat(some.negate())
}

/// Makes joined rows from the rows of the two sides.
struct JoinRows<A, B, F> {
    joiner: F,
    /// Where a row that cannot be read or written stops the engine.
    state: Option<OperatorState>,
    sides: std::marker::PhantomData<(A, B)>,
}

impl<A: Data, B: Data, O: Data, F: Fn(Option<&A>, Option<&B>) -> Option<O>> JoinRows<A, B, F> {
    /// The joined row of `key` from its rows `left` and `right`, if the joiner keeps one.
    fn row(&self, key: &str, left: Option<&Row>, right: Option<&Row>) -> Option<(String, Row)> {
        match self.joined(left, right) {
            Ok(row) => row.map(|row| (key.to_string(), row)),
            Err(error) => {
                if let Some(state) = &self.state {
                    state.fail(&format!("cannot join the rows of {key}: {error}"));
                }
                None
            }
        }
    }

    fn joined(&self, left: Option<&Row>, right: Option<&Row>) -> Result<Option<Row>, String> {
        let left_value = left.map(Row::decode::<A>).transpose()?;
        let right_value = right.map(Row::decode::<B>).transpose()?;
        match (self.joiner)(left_value.as_ref(), right_value.as_ref()) {
            Some(value) => Row::joined(left, right, &value).map(Some),
            None => Ok(None),
        }
    }
}
