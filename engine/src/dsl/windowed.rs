//! Windowed aggregation: [`WindowedStream`] aggregates, [`WindowedTable`] holds the result.

use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::accumulators::{Average, keep_max, keep_min, merge_kept};
pub use super::exact_sum::ExactSum;

use super::stream::Stream;
use super::table::Table;
use super::topology::BuildContext;
use crate::epoch::Time;
use crate::late::LateRule;
use crate::plan::{NodeId, ViewKind, ViewSpec, shape_of};
use crate::record::{Data, Record};
use crate::render::materialize::materialize_windows;
use crate::render::sink::late_to_topics;
use crate::render::state::OperatorState;
use crate::render::table::{AddSubtract, summarize_windows};
use crate::render::window::{Aggregation, Merge, WindowChange, window_aggregate};
use crate::window::{
    HoppingWindows, LatePolicy, SessionWindows, SlidingWindows, TumblingWindows, WindowBounds,
    WindowSpec,
};

/// The kind of windows whose bounds depend on time alone (tumbling and hopping): any fold
/// can aggregate them.
pub enum TimeAligned {}

/// The kind of windows that are merged from parts (sliding and session windows): their
/// aggregations must say how two aggregates combine.
pub enum Merging {}

/// Window kinds a stream can be grouped into with [`Stream::window`].
pub trait Windowing: Into<WindowSpec> {
    /// [`TimeAligned`] or [`Merging`].
    type Kind;
}

impl Windowing for TumblingWindows {
    type Kind = TimeAligned;
}

impl Windowing for HoppingWindows {
    type Kind = TimeAligned;
}

impl Windowing for SlidingWindows {
    type Kind = Merging;
}

impl Windowing for SessionWindows {
    type Kind = Merging;
}

/// A keyed stream grouped into windows, waiting for an aggregation.
pub struct WindowedStream<'scope, T: Data, K = TimeAligned> {
    stream: Stream<'scope, T>,
    windows: WindowSpec,
    late: LatePolicy,
    emit_updates: bool,
    kind: PhantomData<K>,
}

impl<'scope, T: Data, K> WindowedStream<'scope, T, K> {
    pub(crate) fn new(stream: &Stream<'scope, T>, windows: WindowSpec) -> Self {
        WindowedStream {
            stream: stream.clone(),
            windows,
            late: LatePolicy::Drop,
            emit_updates: true,
            kind: PhantomData,
        }
    }

    fn with(&self, late: LatePolicy, emit_updates: bool) -> Self {
        WindowedStream {
            stream: self.stream.clone(),
            windows: self.windows,
            late,
            emit_updates,
            kind: PhantomData,
        }
    }

    /// The same windows with `policy` for records that arrive after their window closed
    /// (default: [`LatePolicy::Drop`], to `<source topic>.late`).
    pub fn on_late(&self, policy: LatePolicy) -> Self {
        self.with(policy, self.emit_updates)
    }

    /// Emit mode `final`, like Kafka Streams' `emitStrategy(onWindowClose())`: the
    /// aggregation sends each window once, when it closes, and no update before; a
    /// correction (see [`LatePolicy::Update`]) is sent as it is made. Since nothing was sent
    /// for the window before, its final change has no old value. This costs less than
    /// emitting every update and filtering them with [`WindowedTable::emit_final`]: open
    /// windows are merged only once, when they close.
    pub fn emit_final(&self) -> Self {
        self.with(self.late.clone(), false)
    }

    /// Counts the records of each window.
    pub fn count(&self) -> WindowedTable<'scope, u64> {
        self.build(
            "count",
            || 0,
            |count: &mut u64, _| *count += 1,
            Some(Box::new(|count: &mut u64, other: &u64| *count += other)),
        )
    }

    /// Sums a number taken from each record. The sum is exact and rounded once (see
    /// [`ExactSum`]), so it is the same whatever order the records arrive in.
    pub fn sum(&self, number: impl Fn(&T) -> f64 + 'static) -> WindowedTable<'scope, f64> {
        self.build(
            "exact sum",
            ExactSum::default,
            move |total: &mut ExactSum, value| total.add(number(value)),
            Some(Box::new(ExactSum::merge)),
        )
        .read_as(0.0, ExactSum::value)
    }

    /// The least of a number taken from each record (in IEEE 754's total order, so that
    /// `-0.0` and NaN give the same answer in any order).
    pub fn min(&self, number: impl Fn(&T) -> f64 + 'static) -> WindowedTable<'scope, f64> {
        self.build(
            "min",
            || None,
            move |least: &mut Option<f64>, value| keep_min(least, number(value)),
            Some(Box::new(|least: &mut Option<f64>, other: &Option<f64>| {
                merge_kept(least, other, keep_min)
            })),
        )
        // A window exists only once a record is in it, so it always has a minimum.
        .read_as(0.0, |least| least.unwrap_or(f64::NAN))
    }

    /// The greatest of a number taken from each record, in the order [`Self::min`] uses.
    pub fn max(&self, number: impl Fn(&T) -> f64 + 'static) -> WindowedTable<'scope, f64> {
        self.build(
            "max",
            || None,
            move |most: &mut Option<f64>, value| keep_max(most, number(value)),
            Some(Box::new(|most: &mut Option<f64>, other: &Option<f64>| {
                merge_kept(most, other, keep_max)
            })),
        )
        .read_as(0.0, |most| most.unwrap_or(f64::NAN))
    }

    /// The mean of a number taken from each record, from an exact sum.
    pub fn avg(&self, number: impl Fn(&T) -> f64 + 'static) -> WindowedTable<'scope, f64> {
        self.build(
            "avg",
            Average::default,
            move |average: &mut Average, value| average.add(number(value)),
            Some(Box::new(Average::merge)),
        )
        .read_as(0.0, Average::value)
    }

    /// Folds each window's records into an aggregate that starts at `init()`, and combines
    /// two aggregates of disjoint sets of records with `merge` (Kafka Streams' `Merger`).
    /// Hopping windows then share the fold of each slice of time, sliding windows are
    /// merged from the records' times, and sessions merge when a record bridges them.
    ///
    /// For a replay to reproduce every window bit for bit, `fold` and `merge` must give
    /// the same result in any order, as counts, integer sums, minimums, maximums and sets
    /// do; [`ExactSum`] does it for floats.
    pub fn aggregate_with_merge<A: Data>(
        &self,
        init: impl Fn() -> A + 'static,
        fold: impl Fn(&mut A, &T) + 'static,
        merge: impl Fn(&mut A, &A) + 'static,
    ) -> WindowedTable<'scope, A> {
        self.build("aggregate with merge", init, fold, Some(Box::new(merge)))
    }

    fn build<A: Data>(
        &self,
        what: &str,
        init: impl Fn() -> A + 'static,
        fold: impl Fn(&mut A, &T) + 'static,
        merge: Option<Merge<A>>,
    ) -> WindowedTable<'scope, A> {
        let context = Rc::clone(&self.stream.context);
        let value_shape = shape_of(&init());
        let (node, source_topics, upstream, store) = {
            let mut plan = context.plan.borrow_mut();
            let emit = if self.emit_updates {
                ""
            } else {
                ", emit final"
            };
            let label = format!(
                "window {}, {what}{emit}{}",
                self.windows.label(),
                self.late.label()
            );
            let node = plan.add_node(label, vec![self.stream.node]);
            if let Some(topic) = self.late.side_output() {
                plan.sink_topics.push(topic.to_string());
            }
            let store = format!("state.window#{node}");
            plan.state_stores.push(store.clone());
            (
                node,
                plan.sources
                    .iter()
                    .map(|source| source.topic.clone())
                    .collect::<Vec<_>>(),
                plan.upstream_topics(node),
                store,
            )
        };
        let state = context
            .env
            .as_ref()
            .map(|env| OperatorState::new(Arc::clone(env), store));
        let lineage = self.stream.lineage.clone();
        context.late_rules.borrow_mut().add(LateRule {
            node,
            sources: lineage.clone(),
            windows: self.windows,
            allowed_lateness_ms: self.late.allowed_lateness_ms(),
            destination: self.late.side_output().map(str::to_string),
            views: Vec::new(),
        });
        let aggregation = Aggregation {
            windows: self.windows,
            allowed_lateness_ms: self.late.allowed_lateness_ms(),
            emit_updates: self.emit_updates,
            view: format!("window #{node}"),
            sources: upstream,
            judged_at_source: lineage,
            init: Box::new(init),
            fold: Box::new(fold),
            merge,
        };
        let (changes, late) = window_aggregate(self.stream.inner.clone(), aggregation, state);
        if let Some(env) = &context.env {
            let destination = self.late.side_output().map(str::to_string);
            let rules = Rc::clone(&context.late_rules);
            let names = Box::new(move || rules.borrow().views_of(node).join(","));
            late_to_topics(late, Arc::clone(env), source_topics, (destination, names));
        }
        WindowedTable {
            changes,
            node,
            aggregate_node: node,
            windows: self.windows,
            key_name: self.stream.key_name.clone(),
            value_shape,
            context,
        }
    }
}

impl<'scope, T: Data> WindowedStream<'scope, T, TimeAligned> {
    /// Folds each window's records into an aggregate that starts at `init()`. Without a
    /// merge, each record is folded into every hopping window that holds it; prefer
    /// [`Self::aggregate_with_merge`] for hopping windows.
    ///
    /// Records of one key reach its window in an order that can change between runs
    /// (they come from several partitions and workers). For a replay to reproduce the
    /// window bit for bit, `fold` must give the same result in any order, as counts,
    /// integer sums, minimums, maximums and sets do; [`ExactSum`] does it for floats.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + 'static,
        fold: impl Fn(&mut A, &T) + 'static,
    ) -> WindowedTable<'scope, A> {
        self.build("aggregate", init, fold, None)
    }
}

/// The windows of each key with their aggregates, updated on every record.
pub struct WindowedTable<'scope, A: Data> {
    changes: timely::dataflow::Stream<'scope, Time, Vec<Record<WindowChange<A>>>>,
    node: NodeId,
    /// The node of the aggregation the windows come from, which late records name.
    aggregate_node: NodeId,
    windows: WindowSpec,
    key_name: String,
    value_shape: serde_json::Value,
    context: Rc<BuildContext>,
}

impl<'scope, A: Data> WindowedTable<'scope, A> {
    /// The same windows with each aggregate read through `read` (an accumulator shown as
    /// its value); `example` gives the value's shape for `/views`.
    fn read_as<B: Data>(
        self,
        example: B,
        read: impl Fn(&A) -> B + 'static,
    ) -> WindowedTable<'scope, B> {
        let changes = self
            .changes
            .unary::<CapacityContainerBuilder<Vec<Record<WindowChange<B>>>>, _, _, _>(
                Pipeline,
                "ReadAggregate",
                move |_capability, _info| {
                    move |input, output| {
                        input.for_each(|stamp, records| {
                            let mut session = output.session(&stamp);
                            for record in records.drain(..) {
                                session.give(record.map_value(|change| WindowChange {
                                    window: change.window,
                                    old: change.old.as_ref().map(&read),
                                    new: read(&change.new),
                                    is_final: change.is_final,
                                    correction: change.correction,
                                    removed: change.removed,
                                }));
                            }
                        });
                    }
                },
            );
        WindowedTable {
            changes,
            node: self.node,
            aggregate_node: self.aggregate_node,
            windows: self.windows,
            key_name: self.key_name,
            value_shape: shape_of(&example),
            context: self.context,
        }
    }

    /// Emit mode `final`, like Kafka Streams' `suppress(untilWindowCloses)`: each window
    /// is sent downstream and to its view once, when it closes, instead of on every
    /// update. Since nothing was sent for the window before, its change has no old value.
    /// The default, without this, is emit on update, like a KTable.
    pub fn emit_final(&self) -> WindowedTable<'scope, A> {
        let node = self
            .context
            .plan
            .borrow_mut()
            .add_node("emit final", vec![self.node]);
        let changes = self
            .changes
            .clone()
            .unary::<CapacityContainerBuilder<Vec<Record<WindowChange<A>>>>, _, _, _>(
                Pipeline,
                "EmitFinal",
                |_capability, _info| {
                    |input, output| {
                        input.for_each(|stamp, records| {
                            let mut session = output.session(&stamp);
                            for record in records.drain(..).filter(|r| r.value.is_final) {
                                // A correction's old value was sent: keep it.
                                session.give(record.map_value(|change| WindowChange {
                                    old: change.old.filter(|_| change.correction),
                                    ..change
                                }));
                            }
                        });
                    }
                },
            );
        WindowedTable {
            changes,
            node,
            aggregate_node: self.aggregate_node,
            windows: self.windows,
            key_name: self.key_name.clone(),
            value_shape: self.value_shape.clone(),
            context: Rc::clone(&self.context),
        }
    }

    /// Stores the windows in RocksDB as the view `name`, served at `/views/{name}`, keeping
    /// final windows for [`DEFAULT_RETENTION`] of event time. Open windows are visible with
    /// `"final": false`; the view changes at every checkpoint.
    pub fn materialize(&self, name: &str) -> &Self {
        self.materialize_with_retention(name, DEFAULT_RETENTION)
    }

    /// Like [`WindowedTable::materialize`], keeping final windows for `retention` of event
    /// time after they end (Kafka Streams' `retention` of a windowed store).
    pub fn materialize_with_retention(&self, name: &str, retention: Duration) -> &Self {
        {
            let mut plan = self.context.plan.borrow_mut();
            plan.add_node(format!("materialize {name}"), vec![self.node]);
            let sources = plan.upstream_topics(self.node);
            plan.views.push(ViewSpec {
                name: name.to_string(),
                kind: ViewKind::of_windows(&self.windows),
                key: self.key_name.clone(),
                value: self.value_shape.clone(),
                sources,
            });
        }
        self.context
            .late_rules
            .borrow_mut()
            .materialized_as(self.aggregate_node, name);
        if let Some(env) = &self.context.env {
            let state = OperatorState::new(Arc::clone(env), name.to_string());
            materialize_windows(self.changes.clone(), state, retention);
        }
        self
    }

    /// The changes of the windows as a stream: one value per update, and the final value
    /// when a window closes.
    pub fn changes(&self) -> Stream<'scope, WindowChange<A>> {
        Stream::derived_from(
            &self.context,
            ("changes", self.node),
            self.changes.clone(),
            self.key_name.clone(),
            Vec::new(),
        )
    }

    /// A table with one value per key, folded from every window the key has had, like a
    /// Kafka Streams table aggregate: when a window changes, `subtract` takes its old value
    /// out of the key's summary and `add` puts the new one in. The summary is the only
    /// state, so it does not grow with the number of windows.
    pub fn summarize<B: Data>(
        &self,
        init: impl Fn() -> B + 'static,
        add: impl Fn(&mut B, WindowBounds, &A) + 'static,
        subtract: impl Fn(&mut B, WindowBounds, &A) + 'static,
    ) -> Table<'scope, B> {
        let example = init();
        Table::stateful(
            &self.context,
            ("summarize windows (add, subtract)", "summarize"),
            (self.node, &self.key_name),
            &example,
            |state| {
                let summarizer = AddSubtract {
                    init,
                    add,
                    subtract,
                };
                summarize_windows(self.changes.clone(), state, summarizer)
            },
        )
    }
}

/// How long a window view keeps final windows unless told otherwise: 24 hours of event
/// time, Kafka Streams' default retention for windowed stores.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
