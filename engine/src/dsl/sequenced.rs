//! [`EventTimeOrdered`]: two streams applied together in event-time order, to state of
//! their own, like a Flink process function over connected streams: the decisions of a
//! saga, or a join with a table as of each record's event time.

use std::rc::Rc;
use std::sync::Arc;

use super::stream::Stream;
use crate::plan::NodeId;
use crate::record::Data;
pub use crate::render::sequence::{Arrival, Either, StateMap};
use crate::render::sequence::{Routing, Sequencing, sequence};
use crate::render::state::OperatorState;

/// What a step function does with one record: read and change the state, and emit
/// outputs, each with its key.
type Step<L, R, S, O> =
    Box<dyn FnMut(&mut StateMap<S>, Arrival<Either<L, R>>, &mut Vec<(String, O)>)>;

/// What a record emits as soon as it arrives, before its turn comes.
type OnArrival<L, R, O> = Box<dyn FnMut(&Either<L, R>, &mut Vec<(String, O)>)>;

impl<'scope, L: Data> Stream<'scope, L> {
    /// This stream and `other` together, to be applied in event-time order: each record
    /// waits until the watermarks of both streams have passed its event time. Records of
    /// the same event time go in the order of their sources, partitions and offsets, so
    /// every replay applies them alike.
    pub fn in_event_time_with<R: Data>(
        &self,
        other: &Stream<'scope, R>,
    ) -> EventTimeOrdered<'scope, L, R> {
        EventTimeOrdered {
            left: self.clone(),
            right: other.clone(),
        }
    }
}

/// Two streams to apply together in event-time order; see [`Stream::in_event_time_with`].
pub struct EventTimeOrdered<'scope, L: Data, R: Data> {
    left: Stream<'scope, L>,
    right: Stream<'scope, R>,
}

impl<'scope, L: Data, R: Data> EventTimeOrdered<'scope, L, R> {
    /// Applies the records one at a time, in event-time order, to one state for every key:
    /// `step` may read and change any key's state, as a saga whose orders span items must.
    /// All records go through one worker. Outputs keep the event time of the record that
    /// made them; `key_name` says what their keys are.
    pub fn process_together<S: Data, O: Data>(
        &self,
        name: &str,
        key_name: &str,
        step: impl FnMut(&mut StateMap<S>, Arrival<Either<L, R>>, &mut Vec<(String, O)>) + 'static,
    ) -> Stream<'scope, O> {
        self.process(Routing::Together, name, key_name, Box::new(step), None)
    }

    /// As [`EventTimeOrdered::process_together`], and `on_arrival` emits outputs for each
    /// record as soon as it arrives (that an order was received, say), ahead of its turn.
    pub fn process_together_announcing<S: Data, O: Data>(
        &self,
        name: &str,
        key_name: &str,
        on_arrival: impl FnMut(&Either<L, R>, &mut Vec<(String, O)>) + 'static,
        step: impl FnMut(&mut StateMap<S>, Arrival<Either<L, R>>, &mut Vec<(String, O)>) + 'static,
    ) -> Stream<'scope, O> {
        self.process(
            Routing::Together,
            name,
            key_name,
            Box::new(step),
            Some(Box::new(on_arrival)),
        )
    }

    /// Applies the records one at a time, in event-time order per key: `step` sees the
    /// state of the record's key only (the map holds the keys of this worker). Records are
    /// spread over the workers by key.
    pub fn process_by_key<S: Data, O: Data>(
        &self,
        name: &str,
        key_name: &str,
        step: impl FnMut(&mut StateMap<S>, Arrival<Either<L, R>>, &mut Vec<(String, O)>) + 'static,
    ) -> Stream<'scope, O> {
        self.process(Routing::ByKey, name, key_name, Box::new(step), None)
    }

    fn process<S: Data, O: Data>(
        &self,
        routing: Routing,
        name: &str,
        key_name: &str,
        step: Step<L, R, S, O>,
        on_arrival: Option<OnArrival<L, R, O>>,
    ) -> Stream<'scope, O> {
        let context = &self.left.context;
        let (node, store, topics, sources): (NodeId, String, [Vec<String>; 2], [Vec<usize>; 2]) = {
            let mut plan = context.plan.borrow_mut();
            let node = plan.add_node(
                format!("{name} (in event-time order)"),
                vec![self.left.node, self.right.node],
            );
            let store = format!("state.sequence#{node}");
            plan.state_stores.push(store.clone());
            let topics = [
                plan.upstream_topics(self.left.node),
                plan.upstream_topics(self.right.node),
            ];
            let sources = [
                plan.upstream_sources(self.left.node),
                plan.upstream_sources(self.right.node),
            ];
            (node, store, topics, sources)
        };
        let inner = match &context.env {
            Some(env) => {
                let peers = self.left.inner.scope().peers();
                let idle = sources.map(|indexes| {
                    indexes
                        .into_iter()
                        .map(|index| env.idle_board(index as u32, peers))
                        .collect()
                });
                // Idleness is a wall-clock rule for live input (see `Sequencing`).
                let live_input = !matches!(env.input, crate::runtime::InputMode::Memory(_));
                sequence(
                    (self.left.inner.clone(), self.right.inner.clone()),
                    name,
                    Some(OperatorState::new(Arc::clone(env), store)),
                    Sequencing {
                        routing,
                        topics,
                        idle,
                        live_input,
                        step,
                        on_arrival,
                    },
                )
            }
            None => timely::dataflow::operators::generic::operator::empty(self.left.inner.scope()),
        };
        // An output keeps the envelope of the record whose turn made it, from either side.
        // When one side is derived, its outputs' envelopes are not as any source read them,
        // and may still name a source: the windows downstream then judge every record
        // themselves.
        let lineage = match (self.left.lineage.is_empty(), self.right.lineage.is_empty()) {
            (false, false) => {
                let mut lineage = self.left.lineage.clone();
                lineage.extend(self.right.lineage.iter().copied());
                lineage.sort_unstable();
                lineage.dedup();
                lineage
            }
            _ => Vec::new(),
        };
        Stream::new(
            inner,
            node,
            key_name.to_string(),
            Rc::clone(context),
            lineage,
        )
    }
}
