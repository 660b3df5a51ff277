//! [`Stream`]: a stream of keyed, event-timed values, with stateless operators and sinks.

use std::rc::Rc;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::topology::BuildContext;
use super::windowed::{WindowedStream, Windowing};
use crate::plan::NodeId;
use crate::record::{Data, Record};
use crate::render::sink::to_topic;

pub(crate) type Inner<'scope, T> =
    timely::dataflow::Stream<'scope, crate::epoch::Time, Vec<Record<T>>>;

/// A stream of values of type `T`, each with a key and an event time.
pub struct Stream<'scope, T: Data> {
    pub(crate) inner: Inner<'scope, T>,
    pub(crate) node: NodeId,
    pub(crate) key_name: String,
    pub(crate) context: Rc<BuildContext>,
    /// The sources (by index) whose records travel in this stream as they were read, with
    /// the event time and watermark they had then: the sources that judge lateness for the
    /// windows downstream (see [`crate::late`]). Empty for derived records.
    pub(crate) lineage: Vec<u32>,
}

impl<'scope, T: Data> Stream<'scope, T> {
    pub(crate) fn new(
        inner: Inner<'scope, T>,
        node: NodeId,
        key_name: String,
        context: Rc<BuildContext>,
        lineage: Vec<u32>,
    ) -> Self {
        Stream {
            inner,
            node,
            key_name,
            context,
            lineage,
        }
    }

    /// The stream `label` makes of the output of plan node `input`, recorded in the plan:
    /// records the topology derived (window results, table changes), or records as read
    /// from the sources of `lineage`.
    pub(crate) fn derived_from(
        context: &Rc<BuildContext>,
        (label, input): (&str, NodeId),
        inner: Inner<'scope, T>,
        key_name: String,
        lineage: Vec<u32>,
    ) -> Self {
        let node = context.plan.borrow_mut().add_node(label, vec![input]);
        Stream::new(inner, node, key_name, Rc::clone(context), lineage)
    }

    fn derive<U: Data>(
        &self,
        label: &str,
        inner: Inner<'scope, U>,
        key_name: String,
    ) -> Stream<'scope, U> {
        let node = self
            .context
            .plan
            .borrow_mut()
            .add_node(label, vec![self.node]);
        Stream::new(
            inner,
            node,
            key_name,
            Rc::clone(&self.context),
            self.lineage.clone(),
        )
    }

    fn flat_map_records<U: Data>(
        &self,
        name: &str,
        mut logic: impl FnMut(Record<T>, &mut dyn FnMut(Record<U>)) + 'static,
    ) -> Inner<'scope, U> {
        self.inner
            .clone()
            .unary::<CapacityContainerBuilder<Vec<Record<U>>>, _, _, _>(
                Pipeline,
                name,
                move |_capability, _info| {
                    move |input, output| {
                        input.for_each(|stamp, records| {
                            let mut session = output.session(&stamp);
                            for record in records.drain(..) {
                                logic(record, &mut |out| session.give(out));
                            }
                        });
                    }
                },
            )
    }

    /// Every value transformed, keeping its key and event time, without a plan node.
    pub(crate) fn map_inner<U: Data>(
        &self,
        transform: impl Fn(T) -> U + 'static,
    ) -> Inner<'scope, U> {
        self.flat_map_records("Map", move |record, emit| {
            emit(record.map_value(&transform));
        })
    }

    /// Keeps the values for which `predicate` holds.
    pub fn filter(&self, predicate: impl Fn(&T) -> bool + 'static) -> Stream<'scope, T> {
        let inner = self.flat_map_records("Filter", move |record, emit| {
            if predicate(&record.value) {
                emit(record);
            }
        });
        self.derive("filter", inner, self.key_name.clone())
    }

    /// Transforms every value, keeping its key and event time.
    pub fn map<U: Data>(&self, transform: impl Fn(T) -> U + 'static) -> Stream<'scope, U> {
        let inner = self.map_inner(transform);
        self.derive("map", inner, self.key_name.clone())
    }

    /// Transforms every value into zero or one value, keeping its key, event time and
    /// position: the id of what comes out is the id of what went in, as with
    /// [`Stream::map`] and [`Stream::filter`].
    pub fn filter_map<U: Data>(
        &self,
        transform: impl Fn(T) -> Option<U> + 'static,
    ) -> Stream<'scope, U> {
        let inner = self.flat_map_records("FilterMap", move |record, emit| {
            if let Some(record) = record.filter_map_value(&transform) {
                emit(record);
            }
        });
        self.derive("filter_map", inner, self.key_name.clone())
    }

    /// Turns every value into zero or more values, keeping its key and event time. Each
    /// output remembers its position, which makes its output id unique: straight from a
    /// source the position is the output's place in the expansion; after an earlier
    /// expansion it combines the two (see [`expanded_position`]).
    pub fn flat_map<U: Data, I>(&self, expand: impl Fn(T) -> I + 'static) -> Stream<'scope, U>
    where
        I: IntoIterator<Item = U>,
    {
        let inner = self.flat_map_records("FlatMap", move |record, emit| {
            let Record {
                key,
                event_time,
                watermark,
                origin,
                headers,
                value,
            } = record;
            let mut key = Some(key);
            let mut values = expand(value).into_iter().enumerate().peekable();
            while let Some((index, value)) = values.next() {
                let mut origin = origin;
                origin.index = expanded_position(origin.index, index as u32);
                // The last output takes the key; only the others need a copy.
                let key = match values.peek() {
                    Some(_) => key.clone().unwrap_or_default(),
                    None => key.take().unwrap_or_default(),
                };
                emit(Record {
                    key,
                    event_time,
                    watermark,
                    origin,
                    headers: headers.clone(),
                    value,
                });
            }
        });
        self.derive("flat_map", inner, self.key_name.clone())
    }

    /// Sets every record's key; `key_name` says what the key is in `describe` and `/views`.
    pub fn key_by(
        &self,
        key_name: &str,
        key: impl Fn(&T) -> String + 'static,
    ) -> Stream<'scope, T> {
        let inner = self.flat_map_records("KeyBy", move |mut record, emit| {
            record.key = key(&record.value);
            emit(record);
        });
        self.derive(&format!("key_by {key_name}"), inner, key_name.to_string())
    }

    /// Groups the stream into event-time windows, per key: [`TumblingWindows`],
    /// [`HoppingWindows`], [`SlidingWindows`] or [`SessionWindows`].
    ///
    /// [`TumblingWindows`]: crate::window::TumblingWindows
    /// [`HoppingWindows`]: crate::window::HoppingWindows
    /// [`SlidingWindows`]: crate::window::SlidingWindows
    /// [`SessionWindows`]: crate::window::SessionWindows
    pub fn window<W: Windowing>(&self, windows: W) -> WindowedStream<'scope, T, W::Kind> {
        WindowedStream::new(self, windows.into())
    }

    /// Writes every value as JSON to `topic`, keyed by the record key. Each record carries a
    /// deterministic id header, so a consumer can drop the duplicates of at-least-once output.
    /// Several streams may write to one topic; the ids of the second and later writers end
    /// in `@1`, `@2`, … in the order they were declared.
    pub fn to(&self, topic: &str) {
        let (source_topics, writer) = {
            let mut plan = self.context.plan.borrow_mut();
            plan.add_node(format!("to {topic}"), vec![self.node]);
            let writer = plan
                .sink_topics
                .iter()
                .filter(|sink| *sink == topic)
                .count();
            plan.sink_topics.push(topic.to_string());
            let source_topics = plan
                .sources
                .iter()
                .map(|source| source.topic.clone())
                .collect();
            (source_topics, writer)
        };
        if let Some(env) = &self.context.env {
            to_topic(
                self.inner.clone(),
                Arc::clone(env),
                topic.to_string(),
                source_topics,
                writer,
            );
        }
    }
}

impl<T: Data> Clone for Stream<'_, T> {
    fn clone(&self) -> Self {
        Stream::new(
            self.inner.clone(),
            self.node,
            self.key_name.clone(),
            Rc::clone(&self.context),
            self.lineage.clone(),
        )
    }
}

/// The position of the `index`-th output of a record at position `upstream`, unique
/// among the outputs of one input record: `index` itself for a record straight from its
/// source (position 0), as the ids of one expansion read; otherwise a pairing of the two
/// (Szudzik's) above 2^31, where no single expansion reaches. Unique while both are below
/// 46,340.
pub fn expanded_position(upstream: u32, index: u32) -> u32 {
    if upstream == 0 {
        return index;
    }
    let (a, b) = (u64::from(upstream - 1), u64::from(index));
    let paired = if a >= b { a * a + a + b } else { b * b + a };
    let above = (1u64 << 31).saturating_add(paired);
    u32::try_from(above).unwrap_or(u32::MAX)
}
