//! Where a topology starts: [`Topology`] hands out source streams.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use timely::dataflow::Scope;

use super::stream::Stream;
use super::table::Table;
use crate::epoch::Time;
use crate::late::LateRules;
use crate::plan::{CheckedEvent, EventTimeKind, EventType, NodeId, Plan, SourcePlan};
use crate::record::Data;
use crate::render::source::{
    EventTimeExtractor, PayloadTime, RecordCheck, SourceConfig, Tombstone, decode_payload,
    kafka_source,
};
use crate::render::state::OperatorState;
use crate::runtime::RunEnv;

/// A topology definition: called once per worker to build that worker's dataflow, and once
/// without brokers to describe it. It must declare the same graph every time.
pub type TopologyFn = Arc<dyn for<'scope> Fn(&mut Topology<'scope>) + Send + Sync>;

/// Shared by every handle the DSL gives out while one worker builds its dataflow.
pub(crate) struct BuildContext {
    pub plan: RefCell<Plan>,
    /// `None` when only describing: nothing reads Kafka or writes state.
    pub env: Option<Arc<RunEnv>>,
    /// What the windowed aggregations ask the sources to judge; the sources read it once
    /// the whole topology is built.
    pub late_rules: Rc<RefCell<LateRules>>,
}

impl BuildContext {
    /// Adds the node of an operator with state of its own, kept in the store
    /// `state.{kind}#{node}`, and the handle it checkpoints that state with (none when only
    /// describing).
    pub(crate) fn add_stateful(
        &self,
        label: &str,
        input: NodeId,
        kind: &str,
    ) -> (NodeId, Option<OperatorState>) {
        let (node, [state]) = self.add_with_stores(label, vec![input], [kind]);
        (node, state)
    }

    /// Adds the node of an operator made of parts with state of their own, each kept in the
    /// store `state.{part}#{node}`, and their handles (none when only describing).
    pub(crate) fn add_with_stores<const N: usize>(
        &self,
        label: &str,
        inputs: Vec<NodeId>,
        parts: [&str; N],
    ) -> (NodeId, [Option<OperatorState>; N]) {
        let (node, stores) = {
            let mut plan = self.plan.borrow_mut();
            let node = plan.add_node(label, inputs);
            let stores = parts.map(|part| {
                let store = format!("state.{part}#{node}");
                plan.state_stores.push(store.clone());
                store
            });
            (node, stores)
        };
        let states = stores.map(|store| {
            self.env
                .as_ref()
                .map(|env| OperatorState::new(Arc::clone(env), store))
        });
        (node, states)
    }
}

/// The builder a topology function receives.
pub struct Topology<'scope> {
    scope: Scope<'scope, Time>,
    context: Rc<BuildContext>,
}

impl<'scope> Topology<'scope> {
    pub(crate) fn new(scope: Scope<'scope, Time>, env: Option<Arc<RunEnv>>) -> Self {
        let context = BuildContext {
            plan: RefCell::new(Plan::default()),
            env,
            late_rules: Rc::default(),
        };
        Topology {
            scope,
            context: Rc::new(context),
        }
    }

    /// The plan recorded so far.
    pub(crate) fn finish(self) -> Plan {
        self.context.plan.borrow().clone()
    }

    /// A stream of the JSON records of a topic, decoded into `T`.
    pub fn source<T: Data>(&mut self, source: Source<T>) -> Stream<'scope, T> {
        self.source_with_tombstones(source, None)
    }

    /// A table of a topic's records, upserted by record key, like a Kafka Streams
    /// `KTable`: each record replaces its key's value, and a record without a value (a
    /// tombstone) deletes the key. The key is the Kafka record key; records of one key
    /// come from one partition, so they apply in offset order, on every replay alike.
    /// `key_name` says what the key is, in `describe` and `/views`.
    pub fn table<T: Data + PartialEq + Default>(
        &mut self,
        key_name: &str,
        source: Source<T>,
    ) -> Table<'scope, T> {
        let upserts = self.source_with_tombstones(source.into_upserts(), Some(Arc::new(|| None)));
        upserts.upsert(key_name)
    }

    fn source_with_tombstones<T: Data>(
        &mut self,
        source: Source<T>,
        tombstone: Option<Tombstone<T>>,
    ) -> Stream<'scope, T> {
        let (index, node) = {
            let mut plan = self.context.plan.borrow_mut();
            let index = plan.sources.len() as u32;
            plan.event_types
                .insert(source.topic.clone(), source.event_type());
            plan.sources.push(SourcePlan {
                topic: source.topic.clone(),
                event_time: match source.event_time {
                    EventTimeExtractor::Payload(_) => EventTimeKind::Payload,
                    EventTimeExtractor::RecordTimestamp => EventTimeKind::RecordTimestamp,
                },
                grace_ms: source.grace.as_millis() as i64,
                idle_timeout_ms: source.idle_timeout.as_millis() as u64,
                wall_clock_advance: source.wall_clock_advance,
            });
            let node = plan.add_source_node(format!("source {}", source.topic), index as usize);
            (index, node)
        };
        let inner = match &self.context.env {
            Some(env) => kafka_source(
                self.scope,
                Arc::clone(env),
                SourceConfig {
                    index,
                    topic: source.topic,
                    grace_ms: source.grace.as_millis() as i64,
                    idle_timeout: env.idle_timeout.unwrap_or(source.idle_timeout),
                    wall_clock_advance: source.wall_clock_advance,
                    event_time: source.event_time,
                    check: source.check,
                    tombstone,
                    late_rules: Rc::clone(&self.context.late_rules),
                },
            ),
            None => timely::dataflow::operators::generic::operator::empty(self.scope),
        };
        Stream::new(
            inner,
            node,
            "record key".to_string(),
            Rc::clone(&self.context),
            vec![index],
        )
    }
}

/// A source topic with its event-time settings.
pub struct Source<T> {
    topic: String,
    event_time: EventTimeExtractor<T>,
    grace: Duration,
    idle_timeout: Duration,
    wall_clock_advance: bool,
    record_key: Option<RecordKey<T>>,
    check: Option<RecordCheck<T>>,
}

/// The key producers give a topic's records.
type RecordKey<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

impl<T: Data> Source<T> {
    /// Reads `topic`, with event time from the Kafka record timestamp until
    /// [`Source::event_time`] says otherwise, a grace of 5 s and an idle timeout of 10 s.
    pub fn topic(topic: impl Into<String>) -> Self {
        Source {
            topic: topic.into(),
            event_time: EventTimeExtractor::RecordTimestamp,
            grace: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            wall_clock_advance: false,
            record_key: None,
            check: None,
        }
    }

    /// Sends records for which `check` fails to the dead-letter topic, with the reason it
    /// gives, as a record that cannot be decoded goes. `POST /events` refuses them alike.
    pub fn check(
        mut self,
        check: impl Fn(&T) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Arc::new(check));
        self
    }

    /// The same topic read as upserts: a value, or `None` for a tombstone.
    fn into_upserts(self) -> Source<Option<T>> {
        let event_time = match self.event_time {
            EventTimeExtractor::Payload(extract) => {
                EventTimeExtractor::Payload(Arc::new(move |value: &Option<T>| {
                    value.as_ref().and_then(|value| extract(value))
                }) as PayloadTime<Option<T>>)
            }
            EventTimeExtractor::RecordTimestamp => EventTimeExtractor::RecordTimestamp,
        };
        let record_key = self.record_key.map(|key| {
            Arc::new(move |value: &Option<T>| {
                value.as_ref().map(|value| key(value)).unwrap_or_default()
            }) as RecordKey<Option<T>>
        });
        // Only a record without a value is a tombstone: a payload of JSON `null` is a
        // mistake, not a deletion.
        let check = self.check;
        let check = Arc::new(move |value: &Option<T>| match value {
            None => Err("a null value is not a record; a tombstone has no value".to_string()),
            Some(value) => check.as_ref().map_or(Ok(()), |check| check(value)),
        }) as RecordCheck<Option<T>>;
        Source {
            topic: self.topic,
            event_time,
            grace: self.grace,
            idle_timeout: self.idle_timeout,
            wall_clock_advance: self.wall_clock_advance,
            record_key,
            check: Some(check),
        }
    }

    /// The key the topic's records carry, from the event, as its producers set it: the
    /// HTTP event producer (`POST /events/{topic}`) keys the events it publishes with it.
    pub fn record_key(mut self, key: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.record_key = Some(Arc::new(key));
        self
    }

    /// How the topic's records are checked by producers outside the dataflow: decoded as
    /// the source decodes them, with the event time the source reads.
    fn event_type(&self) -> EventType {
        let event_time = match &self.event_time {
            EventTimeExtractor::Payload(extract) => Some(Arc::clone(extract)),
            EventTimeExtractor::RecordTimestamp => None,
        };
        let record_key = self.record_key.clone();
        let check = self.check.clone();
        EventType::new(std::any::type_name::<T>(), move |payload| {
            let event: T = decode_payload(payload)?;
            if let Some(check) = &check {
                check(&event)?;
            }
            let event_time = match &event_time {
                Some(extract) => Some(
                    extract(&event).ok_or_else(|| "record has no valid event time".to_string())?,
                ),
                None => None,
            };
            Ok(CheckedEvent {
                key: record_key.as_ref().map(|key| key(&event)),
                event_time,
            })
        })
    }

    /// Takes event time (epoch milliseconds) from the payload.
    pub fn event_time(mut self, extract: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        self.event_time = EventTimeExtractor::Payload(Arc::new(move |value| Some(extract(value))));
        self
    }

    /// Takes event time (epoch milliseconds) from the payload where it has one: a record for
    /// which `extract` gives `None` (a missing or unparsable time) goes to the dead-letter
    /// topic with the reason, like a record that cannot be decoded.
    pub fn try_event_time(
        mut self,
        extract: impl Fn(&T) -> Option<i64> + Send + Sync + 'static,
    ) -> Self {
        self.event_time = EventTimeExtractor::Payload(Arc::new(extract));
        self
    }

    /// Takes event time from the Kafka record timestamp.
    pub fn record_timestamp(mut self) -> Self {
        self.event_time = EventTimeExtractor::RecordTimestamp;
        self
    }

    /// How far out of order records may arrive and still count.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long a silent partition may hold back the watermark. After that it follows
    /// the slowest partition of the source that still has data, on whichever worker.
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Once every partition of the source has been idle for the idle timeout, moves event
    /// time on with the wall clock, from the greatest watermark then, so that the last
    /// windows of a stream that stopped close. Off by default: it makes results depend on
    /// when the quiet spell happened, which a replay cannot repeat.
    pub fn advance_with_wall_clock(mut self) -> Self {
        self.wall_clock_advance = true;
        self
    }
}
