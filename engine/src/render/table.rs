//! Tables derived from windowed views, on differential dataflow.
//!
//! Each window change becomes a retraction of the window's old value and an insertion of
//! its new one, so the collection always holds each key's current windows. A `reduce` over
//! that collection folds a key's windows into one value; differential re-runs the fold only
//! for keys whose windows changed, and retracts the previous output itself.

use std::fmt::Debug;

use differential_dataflow::AsCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::window::WindowChange;
use crate::record::{Data, Record};
use crate::window::WindowBounds;

/// Table updates: `(key, value)` with a timely time and a multiplicity change.
pub(crate) type TableUpdates<'scope, B> = Stream<'scope, u64, Vec<((String, B), u64, isize)>>;

/// Folds each key's current windows into one value.
pub(crate) fn summarize_windows<'scope, A, B, I, F>(
    changes: Stream<'scope, u64, Vec<Record<WindowChange<A>>>>,
    init: I,
    fold: F,
) -> TableUpdates<'scope, B>
where
    A: Data + Ord + Debug,
    B: Data + Ord + Debug,
    I: Fn() -> B + 'static,
    F: Fn(&mut B, WindowBounds, &A) + 'static,
{
    type Update<A> = ((String, (WindowBounds, A)), u64, isize);
    let updates = changes.unary::<CapacityContainerBuilder<Vec<Update<A>>>, _, _, _>(
        Pipeline,
        "WindowsAsCollection",
        |_capability, _info| {
            move |input, output| {
                input.for_each(|stamp, records| {
                    let Some(&time) = stamp.least() else { return };
                    let mut session = output.session(&stamp);
                    for record in records.drain(..) {
                        let change = record.value;
                        if let Some(old) = change.old {
                            session.give(((record.key.clone(), (change.window, old)), time, -1));
                        }
                        session.give(((record.key, (change.window, change.new)), time, 1));
                    }
                });
            }
        },
    );
    updates
        .as_collection()
        .reduce(move |_key, windows, output| {
            let mut summary = init();
            for ((window, aggregate), multiplicity) in windows {
                if *multiplicity > 0 {
                    fold(&mut summary, *window, aggregate);
                }
            }
            output.push((summary, 1));
        })
        .inner
}
