//! Table-table joins by key: Kafka Streams' `KTable#join`, `leftJoin` and `outerJoin`,
//! on differential arrangements.
//!
//! The joined table follows its two tables: whenever either changes, the keys it touches
//! are joined again, and the old joined value is retracted. It settles once per checkpoint
//! epoch: at each epoch's end it is the join of the two tables as they stand then, the
//! same on every replay, whatever order the sides' changes arrived in within the epoch.

use std::rc::Rc;

use super::table::Table;
use crate::plan::shape_of;
use crate::record::Data;
use crate::render::table_join::{JoinStates, Unmatched, join_tables};

impl<'scope, A: Data> Table<'scope, A> {
    /// The table of the keys both tables have, like Kafka Streams' `KTable#join`:
    /// `joiner` makes a key's value from its two rows. The joined table keeps this table's
    /// key.
    pub fn join<B: Data, O: Data + Default>(
        &self,
        other: &Table<'scope, B>,
        joiner: impl Fn(&A, &B) -> O + 'static,
    ) -> Table<'scope, O> {
        let unmatched = Unmatched {
            left: false,
            right: false,
        };
        self.join_with(other, "join", unmatched, move |left, right| {
            Some(joiner(left?, right?))
        })
    }

    /// As [`Table::join`], but every key of this table is kept, like Kafka Streams'
    /// `KTable#leftJoin`: `joiner` gets `None` when `other` has no row for the key.
    pub fn left_join<B: Data, O: Data + Default>(
        &self,
        other: &Table<'scope, B>,
        joiner: impl Fn(&A, Option<&B>) -> O + 'static,
    ) -> Table<'scope, O> {
        let unmatched = Unmatched {
            left: true,
            right: false,
        };
        self.join_with(other, "left join", unmatched, move |left, right| {
            Some(joiner(left?, right))
        })
    }

    /// The table of the keys either table has, like Kafka Streams' `KTable#outerJoin`:
    /// `joiner` gets `None` for the side without a row (never both).
    pub fn outer_join<B: Data, O: Data + Default>(
        &self,
        other: &Table<'scope, B>,
        joiner: impl Fn(Option<&A>, Option<&B>) -> O + 'static,
    ) -> Table<'scope, O> {
        let unmatched = Unmatched {
            left: true,
            right: true,
        };
        self.join_with(other, "outer join", unmatched, move |left, right| {
            Some(joiner(left, right))
        })
    }

    fn join_with<B: Data, O: Data + Default>(
        &self,
        other: &Table<'scope, B>,
        kind: &str,
        unmatched: Unmatched,
        joiner: impl Fn(Option<&A>, Option<&B>) -> Option<O> + 'static,
    ) -> Table<'scope, O> {
        let (node, [left, right, joined]) = self.context.add_with_stores(
            &format!("{kind} tables by {}", self.key_name),
            vec![self.node, other.node],
            ["join_left", "join_right", "join"],
        );
        let updates = join_tables(
            self.updates.clone(),
            other.updates.clone(),
            JoinStates {
                left,
                right,
                joined,
            },
            unmatched,
            joiner,
        );
        Table::new(
            updates,
            node,
            self.key_name.clone(),
            shape_of(&O::default()),
            Rc::clone(&self.context),
        )
    }
}
