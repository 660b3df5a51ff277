//! The logical graph of a topology: what `describe()` prints and what the HTTP API lists.
//!
//! The DSL records a node here for every operator it adds, so the plan always matches the
//! dataflow that runs. The plan is also built on its own, without brokers, for `describe`
//! and to learn which topics and stores a topology needs before it starts.

mod describe;
pub mod event_types;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::window::WindowSpec;

pub use describe::{describe, to_dot};
pub use event_types::{CheckedEvent, EventType, EventTypes};

/// Identifies a node of the plan.
pub type NodeId = usize;

/// One operator of the logical graph.
#[derive(Debug, Clone, Serialize)]
pub struct PlanNode {
    /// Position in the plan.
    pub id: NodeId,
    /// What the operator does, e.g. `source order-events`.
    pub label: String,
    /// The nodes it reads from.
    pub inputs: Vec<NodeId>,
    /// For a source node, the index of its source in [`Plan::sources`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<usize>,
}

/// How a source reads event time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTimeKind {
    /// From a field of the payload.
    Payload,
    /// From the Kafka record timestamp.
    RecordTimestamp,
}

/// A source topic and its event-time settings.
#[derive(Debug, Clone, Serialize)]
pub struct SourcePlan {
    /// The topic.
    pub topic: String,
    /// Where event time comes from.
    pub event_time: EventTimeKind,
    /// Allowed out-of-orderness, in milliseconds.
    pub grace_ms: i64,
    /// How long a silent partition may hold back the watermark, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Whether the wall clock moves event time on once every partition is idle.
    pub wall_clock_advance: bool,
}

impl SourcePlan {
    /// Where records that cannot be read go.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dlq", self.topic)
    }

    /// Where records that arrive after their window closed go.
    pub fn late_topic(&self) -> String {
        format!("{}.late", self.topic)
    }
}

/// The kind of a materialized view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ViewKind {
    /// Tumbling windows of `size_ms` per key.
    Tumbling {
        /// Window size in milliseconds.
        size_ms: i64,
    },
    /// Hopping windows of `size_ms` starting every `advance_ms`, per key.
    Hopping {
        /// Window size in milliseconds.
        size_ms: i64,
        /// Distance between window starts in milliseconds.
        advance_ms: i64,
    },
    /// Sliding windows of records at most `difference_ms` apart, per key.
    Sliding {
        /// The greatest time difference within a window, in milliseconds.
        difference_ms: i64,
    },
    /// Sessions per key that end after `gap_ms` without a record.
    Session {
        /// The inactivity gap in milliseconds.
        gap_ms: i64,
    },
    /// One value per key.
    Table,
}

impl ViewKind {
    /// The kind of a view of `windows`.
    pub fn of_windows(windows: &WindowSpec) -> Self {
        match *windows {
            WindowSpec::Fixed(fixed) if fixed.is_tumbling() => ViewKind::Tumbling {
                size_ms: fixed.size_ms,
            },
            WindowSpec::Fixed(fixed) => ViewKind::Hopping {
                size_ms: fixed.size_ms,
                advance_ms: fixed.advance_ms,
            },
            WindowSpec::Sliding { difference_ms, .. } => ViewKind::Sliding { difference_ms },
            WindowSpec::Session { gap_ms, .. } => ViewKind::Session { gap_ms },
        }
    }

    /// How `describe` names the kind.
    pub fn label(&self) -> String {
        match self {
            ViewKind::Tumbling { size_ms } => format!("tumbling {size_ms} ms"),
            ViewKind::Hopping {
                size_ms,
                advance_ms,
            } => format!("hopping {size_ms} ms every {advance_ms} ms"),
            ViewKind::Sliding { difference_ms } => format!("sliding {difference_ms} ms"),
            ViewKind::Session { gap_ms } => format!("session gap {gap_ms} ms"),
            ViewKind::Table => "table".to_string(),
        }
    }
}

/// A materialized view: a RocksDB store served over HTTP.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ViewSpec {
    /// The name in URLs and the store's column family.
    pub name: String,
    /// Window or table.
    #[serde(flatten)]
    pub kind: ViewKind,

    /// What the key is, e.g. `item_id`.
    pub key: String,
    /// The JSON shape of a value: field names with their JSON types, or one JSON type.
    pub value: serde_json::Value,
    /// The source topics its values are computed from: the partitions whose watermarks
    /// its answers' freshness reports.
    pub sources: Vec<String>,
}

impl ViewSpec {
    /// Whether the view holds windows.
    pub fn is_windowed(&self) -> bool {
        !matches!(self.kind, ViewKind::Table)
    }
}

/// The whole logical graph.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// Operators in the order they were declared.
    pub nodes: Vec<PlanNode>,
    /// Sources, indexed by [`crate::record::Origin::source`].
    pub sources: Vec<SourcePlan>,
    /// Materialized views.
    pub views: Vec<ViewSpec>,
    /// Topics the topology writes to.
    pub sink_topics: Vec<String>,
    /// Operator state stores (open windows, summaries), checkpointed beside the views.
    pub state_stores: Vec<String>,
    /// How each source topic decodes its records, for producers outside the dataflow.
    #[serde(skip)]
    pub event_types: EventTypes,
}

impl Plan {
    /// Adds a node and returns its id.
    pub fn add_node(&mut self, label: impl Into<String>, inputs: Vec<NodeId>) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(PlanNode {
            id,
            label: label.into(),
            inputs,
            source: None,
        });
        id
    }

    /// Adds the node of the source at `index` in [`Plan::sources`] and returns its id.
    pub fn add_source_node(&mut self, label: impl Into<String>, index: usize) -> NodeId {
        let id = self.add_node(label, Vec::new());
        self.nodes[id].source = Some(index);
        id
    }

    /// The topics of the sources `node` reads from, directly or through other operators,
    /// in the order the sources were declared. An operator's watermark is the least over
    /// these sources only: another source of the topology neither holds it back nor moves
    /// it on.
    pub fn upstream_topics(&self, node: NodeId) -> Vec<String> {
        self.upstream_sources(node)
            .into_iter()
            .filter_map(|index| self.sources.get(index))
            .map(|source| source.topic.clone())
            .collect()
    }

    /// The indexes in [`Plan::sources`] of the sources `node` reads from, directly or
    /// through other operators, in the order they were declared.
    pub fn upstream_sources(&self, node: NodeId) -> Vec<usize> {
        let mut seen = vec![false; self.nodes.len()];
        let mut sources = BTreeSet::new();
        let mut stack = vec![node];
        while let Some(id) = stack.pop() {
            let Some(visited) = seen.get_mut(id) else {
                continue;
            };
            if std::mem::replace(visited, true) {
                continue;
            }
            let current = &self.nodes[id];
            sources.extend(current.source);
            stack.extend(current.inputs.iter().copied());
        }
        sources.into_iter().collect()
    }

    /// Every topic the topology reads or writes, including dead-letter and late topics.
    pub fn topics(&self) -> Vec<String> {
        let mut topics = Vec::new();
        for source in &self.sources {
            topics.push(source.topic.clone());
            topics.push(source.dead_letter_topic());
            topics.push(source.late_topic());
        }
        topics.extend(self.sink_topics.iter().cloned());
        // Every engine reports on it, whatever its topology.
        topics.push(crate::monitoring::MONITORING_TOPIC.to_string());
        topics.sort();
        topics.dedup();
        topics
    }

    /// Every RocksDB store the topology needs: its views and its operators' state.
    pub fn stores(&self) -> Vec<String> {
        self.views
            .iter()
            .map(|view| view.name.clone())
            .chain(self.state_stores.iter().cloned())
            .collect()
    }

    /// The view of the given name.
    pub fn view(&self, name: &str) -> Option<&ViewSpec> {
        self.views.iter().find(|view| view.name == name)
    }
}

/// Describes the JSON shape of a value by example: the field names and JSON types of a
/// freshly initialised aggregate.
pub fn shape_of<A: Serialize>(example: &A) -> serde_json::Value {
    fn shape(value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, field)| (name.clone(), shape(field)))
                    .collect(),
            ),
            Value::Array(_) => Value::String("array".into()),
            Value::String(_) => Value::String("string".into()),
            Value::Number(_) => Value::String("number".into()),
            Value::Bool(_) => Value::String("boolean".into()),
            Value::Null => Value::String("null".into()),
        }
    }
    match serde_json::to_value(example) {
        Ok(value) => shape(&value),
        Err(_) => serde_json::Value::String("unknown".into()),
    }
}
