//! Operators that write view changes into RocksDB, one write batch per input batch.
//!
//! A write error (a full disk, a permission problem) stops the engine with the error in
//! `/status`, instead of serving views that silently fell behind.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sluice_state::WindowEntry;
use sluice_state::WriteBatch;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use tracing::error;

use super::window::WindowChange;
use crate::record::{Data, Record};
use crate::runtime::RunEnv;

/// Writes window changes into the window store `view`.
pub(crate) fn materialize_windows<A: Data>(
    changes: Stream<'_, u64, Vec<Record<WindowChange<A>>>>,
    env: Arc<RunEnv>,
    view: String,
) -> Stream<'_, u64, Vec<Record<WindowChange<A>>>> {
    let output = changes.clone();
    changes.sink(
        Pipeline,
        &format!("Materialize({view})"),
        move |(input, _frontier)| {
            let store = match env.db.window_store(&view) {
                Ok(store) => store,
                Err(error) => return fail(&env, &view, &error),
            };
            let mut batch = WriteBatch::default();
            input.for_each(|_, records| {
                for record in records.iter() {
                    let change = &record.value;
                    let value_json = match serde_json::to_vec(&change.new) {
                        Ok(json) => json,
                        Err(error) => return fail(&env, &view, &error),
                    };
                    let entry = WindowEntry {
                        start: change.window.start,
                        end: change.window.end,
                        is_final: change.is_final,
                        value_json,
                    };
                    store.put_into(&mut batch, record.key.as_bytes(), &entry);
                }
            });
            if !batch.is_empty()
                && let Err(error) = env.db.write(batch)
            {
                fail(&env, &view, &error);
            }
        },
    );
    output
}

/// Writes table updates `(key, value, diff)` into the table store `view`: a key whose last
/// update in a batch is an insertion is upserted, one left with only retractions is deleted.
pub(crate) fn materialize_table<B: Data>(
    updates: super::table::TableUpdates<'_, B>,
    env: Arc<RunEnv>,
    view: String,
) {
    updates.sink(
        Pipeline,
        &format!("Materialize({view})"),
        move |(input, _frontier)| {
            let store = match env.db.table_store(&view) {
                Ok(store) => store,
                Err(error) => return fail(&env, &view, &error),
            };
            let mut updates: Vec<((String, B), u64, isize)> = Vec::new();
            input.for_each(|_, batch| updates.append(batch));
            if updates.is_empty() {
                return;
            }
            // Apply in time order; at one time, retractions before insertions.
            updates.sort_by_key(|a| (a.1, a.2 > 0));
            let mut batch = WriteBatch::default();
            let mut latest: std::collections::BTreeMap<String, Option<&B>> = Default::default();
            for ((key, value), _, diff) in &updates {
                if *diff > 0 {
                    latest.insert(key.clone(), Some(value));
                } else {
                    latest.entry(key.clone()).or_insert(None);
                }
            }
            for (key, value) in latest {
                match value {
                    Some(value) => match serde_json::to_vec(value) {
                        Ok(json) => store.put_into(&mut batch, key.as_bytes(), &json),
                        Err(error) => return fail(&env, &view, &error),
                    },
                    None => store.delete_into(&mut batch, key.as_bytes()),
                }
            }
            if let Err(error) = env.db.write(batch) {
                fail(&env, &view, &error);
            }
        },
    );
}

fn fail(env: &RunEnv, view: &str, error: &dyn std::fmt::Display) {
    error!(%error, view, "cannot write view state; stopping");
    env.status
        .set_fatal(format!("cannot write the state of view {view}: {error}"));
    env.shutdown.store(true, Ordering::Relaxed);
}
