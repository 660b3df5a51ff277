//! [`Table`]: one value per key, as a stream of changes.

use std::rc::Rc;
use std::sync::Arc;

use super::stream::Stream;
use super::topology::BuildContext;
use crate::plan::shape_of;
use crate::plan::{NodeId, ViewKind, ViewSpec};
use crate::record::Data;
use crate::render::materialize::materialize_table;
use crate::render::state::OperatorState;
use crate::render::table::{TableChange, TableUpdates};
use crate::render::table_aggregate::{AggregateStates, Fold, aggregate_groups};
use crate::render::upsert::upsert;

impl<'scope, T: Data + PartialEq + Default> Stream<'scope, Option<T>> {
    /// The table of these upserts (`None` deletes the key), keyed by record key.
    pub(crate) fn upsert(&self, key_name: &str) -> Table<'scope, T> {
        let mut table = Table::stateful(
            &self.context,
            ("upsert by record key", "upsert"),
            (self.node, key_name),
            &T::default(),
            |state| upsert(self.inner.clone(), state),
        );
        // Each change carries the envelope of the record that made it.
        table.lineage = self.lineage.clone();
        table
    }
}

impl<'scope, T: Data + PartialEq + Default> Stream<'scope, T> {
    /// The table of the latest value per key of this stream, like Kafka Streams'
    /// `KStream::toTable`: each record replaces its key's value. Records of a key apply in
    /// the order they reach the table, so the stream should come from one place per key
    /// (one partition, or one operator).
    pub fn to_table(&self, key_name: &str) -> Table<'scope, T> {
        let node = self
            .context
            .plan
            .borrow_mut()
            .add_node("to_table", vec![self.node]);
        let upserts = Stream::new(
            self.map_inner(Some),
            node,
            self.key_name.clone(),
            Rc::clone(&self.context),
            self.lineage.clone(),
        );
        upserts.upsert(key_name)
    }
}

/// A table: the latest value per key, as a stream of changes.
pub struct Table<'scope, B: Data> {
    pub(super) updates: TableUpdates<'scope, B>,
    pub(super) node: NodeId,
    pub(super) key_name: String,
    value_shape: serde_json::Value,
    pub(super) context: Rc<BuildContext>,
    /// The sources whose records' envelopes the table's changes carry as read: those of an
    /// upserted stream; none for tables derived by joins and aggregates.
    pub(super) lineage: Vec<u32>,
}

impl<'scope, B: Data> Table<'scope, B> {
    /// The table an operator with state of its own (`kind`, see
    /// [`BuildContext::add_stateful`]) makes of node `input`, whose values look like
    /// `example`.
    pub(crate) fn stateful(
        context: &Rc<BuildContext>,
        (label, kind): (&str, &str),
        (input, key_name): (NodeId, &str),
        example: &B,
        build: impl FnOnce(Option<OperatorState>) -> TableUpdates<'scope, B>,
    ) -> Self {
        let (node, state) = context.add_stateful(label, input, kind);
        Table::new(
            build(state),
            node,
            key_name.to_string(),
            shape_of(example),
            Rc::clone(context),
        )
    }

    pub(crate) fn new(
        updates: TableUpdates<'scope, B>,
        node: NodeId,
        key_name: String,
        value_shape: serde_json::Value,
        context: Rc<BuildContext>,
    ) -> Self {
        Table {
            updates,
            node,
            key_name,
            value_shape,
            context,
            lineage: Vec::new(),
        }
    }

    /// The table's changes as a stream, like Kafka Streams' `KTable::toStream`, with the
    /// value before each change beside the value after: `new` is `None` when the key was
    /// deleted; `old` is `None` when a table read from a topic gains a key (a summary's
    /// first `old` is its initial value). A change is sent in the epoch of the record that
    /// made it, keyed by the table's key.
    pub fn changes(&self) -> Stream<'scope, TableChange<B>> {
        Stream::derived_from(
            &self.context,
            ("changes", self.node),
            self.updates.clone(),
            self.key_name.clone(),
            self.lineage.clone(),
        )
    }

    /// Regroups the rows by another key, like Kafka Streams' `KTable::groupBy`: `select`
    /// gives each row (its key and value) a group and the value it brings there, which
    /// [`GroupedTable::aggregate`] folds. `key_name` says what the group key is.
    pub fn group_by<V: Data>(
        &self,
        key_name: &str,
        select: impl Fn(&str, &B) -> (String, V) + 'static,
    ) -> GroupedTable<'scope, B, V> {
        let node = self
            .context
            .plan
            .borrow_mut()
            .add_node(format!("group_by {key_name}"), vec![self.node]);
        GroupedTable {
            rows: self.updates.clone(),
            select: Rc::new(select),
            node,
            key_name: key_name.to_string(),
            context: Rc::clone(&self.context),
        }
    }

    /// Stores the table in RocksDB as the view `name`, served at `/views/{name}`.
    pub fn materialize(&self, name: &str) -> &Self {
        {
            let mut plan = self.context.plan.borrow_mut();
            plan.add_node(format!("materialize {name}"), vec![self.node]);
            let sources = plan.upstream_topics(self.node);
            plan.views.push(ViewSpec {
                name: name.to_string(),
                kind: ViewKind::Table,
                key: self.key_name.clone(),
                value: self.value_shape.clone(),
                sources,
            });
        }
        if let Some(env) = &self.context.env {
            materialize_table(
                self.updates.clone(),
                OperatorState::new(Arc::clone(env), name.to_string()),
            );
        }
        self
    }
}

/// Gives a row (its key and value) its group and the value it brings there.
type Selector<B, V> = Rc<dyn Fn(&str, &B) -> (String, V)>;

/// A table's rows regrouped by another key, ready to aggregate.
pub struct GroupedTable<'scope, B: Data, V: Data> {
    rows: TableUpdates<'scope, B>,
    select: Selector<B, V>,
    node: NodeId,
    key_name: String,
    context: Rc<BuildContext>,
}

impl<'scope, B: Data, V: Data> GroupedTable<'scope, B, V> {
    /// One aggregate per group, like Kafka Streams' `KGroupedTable::aggregate` and SQL's
    /// `GROUP BY`: `add` folds the values of a group's rows into `init()`, in the order of
    /// the rows (by the event time of the change that set them, then where it was read),
    /// and the group's aggregate is made again whenever its rows change. No subtractor is
    /// needed, so any fold works: a maximum or a distinct count as well as a sum. A group
    /// whose rows all left has no aggregate: its key is deleted. Like a table-table join,
    /// the aggregates settle once per checkpoint epoch.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + 'static,
        add: impl Fn(&mut A, &V) + 'static,
    ) -> Table<'scope, A> {
        let example = init();
        let (node, [rows, aggregates]) = self.context.add_with_stores(
            "aggregate groups (fold)",
            vec![self.node],
            ["aggregate_rows", "aggregate"],
        );
        let select = Rc::clone(&self.select);
        let updates = aggregate_groups(
            self.rows.clone(),
            AggregateStates { rows, aggregates },
            move |key: &str, row: &B| select(key, row),
            Fold { init, add },
        );
        Table::new(
            updates,
            node,
            self.key_name.clone(),
            shape_of(&example),
            Rc::clone(&self.context),
        )
    }
}
