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
use crate::render::upsert::upsert;

impl<'scope, T: Data + PartialEq + Default> Stream<'scope, Option<T>> {
    /// The table of these upserts (`None` deletes the key), keyed by record key.
    pub(crate) fn upsert(&self, key_name: &str) -> Table<'scope, T> {
        let (node, state) = self
            .context
            .add_stateful("upsert by record key", self.node, "upsert");
        Table::new(
            upsert(self.inner.clone(), state),
            node,
            key_name.to_string(),
            shape_of(&T::default()),
            Rc::clone(&self.context),
        )
    }
}

/// A table: the latest value per key, as a stream of changes.
pub struct Table<'scope, B: Data> {
    updates: TableUpdates<'scope, B>,
    node: NodeId,
    key_name: String,
    value_shape: serde_json::Value,
    context: Rc<BuildContext>,
}

impl<'scope, B: Data> Table<'scope, B> {
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
            "changes",
            self.node,
            self.updates.clone(),
            self.key_name.clone(),
        )
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
