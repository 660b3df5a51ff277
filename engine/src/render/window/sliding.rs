//! Sliding windows (Kafka Streams' `SlidingWindows`): windows of a fixed size whose bounds
//! follow the records of a key.
//!
//! With a time difference `d`, the windows of a key are, for each of its record times `r`,
//! the window that ends at the record, `[r - d, r + 1)`, and the window that starts just
//! after it, `[r + 1, r + d + 2)`, if a record is in it. Each distinct set of records whose
//! times are at most `d` apart is so one window. A key keeps one pane per distinct record
//! time, and a window is merged from the panes it holds when it is emitted.
//!
//! A record is on time when the window ending at it has not closed by its watermark (less
//! the allowed lateness); that window closes first of those that hold the record, so the
//! others take it too. Windows close in the order they start.

use serde::{Deserialize, Serialize};
use sluice_state::{WindowEntry, WindowStore, WriteBatch};

use super::keyed::{KeyPanes, Persisted, Persistence, WindowKind, write_key};
use super::sorted::Sorted;
use super::{Aggregation, Merged, TimedChange};
use crate::epoch::{Time, join};
use crate::record::{Data, Record};
use crate::window::WindowBounds;

/// The records of one key at one time.
pub(super) struct Pane<A> {
    aggregate: A,
    watermark: u64,
    time: Time,
    persistence: Persistence,
}

impl<A> Persisted for Pane<A> {
    fn persistence(&mut self) -> &mut Persistence {
        &mut self.persistence
    }
}

/// Sliding windows.
pub(super) struct SlidingKind<T, A> {
    difference_ms: i64,
    grace_ms: i64,
    aggregation: Aggregation<T, A>,
}

impl<T: Data, A: Data> SlidingKind<T, A> {
    pub(super) fn new(difference_ms: i64, grace_ms: i64, aggregation: Aggregation<T, A>) -> Self {
        SlidingKind {
            difference_ms: difference_ms.max(0),
            grace_ms,
            aggregation,
        }
    }

    fn bounds(&self, start: i64) -> WindowBounds {
        WindowBounds {
            start,
            end: start.saturating_add(self.difference_ms).saturating_add(1),
        }
    }

    /// When the window starting at `start` closes.
    fn closes_at(&self, start: i64) -> i64 {
        self.bounds(start).end.saturating_add(self.grace_ms)
    }

    /// The first window start that has not closed once the watermark is `watermark`.
    fn first_open_start(&self, watermark: i64) -> i64 {
        if watermark == i64::MIN {
            return i64::MIN;
        }
        // closes_at(start) > watermark  <=>  start > watermark - d - 1 - grace.
        watermark
            .saturating_sub(self.difference_ms)
            .saturating_sub(1)
            .saturating_sub(self.grace_ms)
            .saturating_add(1)
    }

    /// Whether the window starting at `start` is one of the key's windows.
    fn exists(&self, panes: &Sorted<Pane<A>>, start: i64) -> bool {
        let end = self.bounds(start).end;
        // It ends at a record, or it starts just after one and holds one.
        panes.contains_key(&(end - 1))
            || (panes.contains_key(&start.saturating_sub(1))
                && panes.range(start..end).next().is_some())
    }

    fn value(&self, panes: &Sorted<Pane<A>>, start: i64) -> Option<Merged<A>> {
        let merge = self.aggregation.merge.as_deref();
        let mut merged = None;
        for pane in panes
            .range(start..self.bounds(start).end)
            .map(|(_, pane)| pane)
        {
            Merged::absorb(
                &mut merged,
                &pane.aggregate,
                (pane.watermark, pane.time),
                merge,
            );
        }
        merged
    }

    /// The earliest of the key's windows that starts at `from` or later.
    fn earliest_window(&self, panes: &Sorted<Pane<A>>, from: i64) -> Option<i64> {
        let d = self.difference_ms;
        // The first window ending at a record.
        let ending = panes
            .range(from.saturating_add(d)..)
            .next()
            .map(|(time, _)| time - d);
        // Windows starting just after a record, up to that one.
        let mut starting = None;
        for (time, _) in panes.range(from.saturating_sub(1)..) {
            let start = time.saturating_add(1);
            if ending.is_some_and(|ending| start >= ending) {
                break;
            }
            if panes.range(start..self.bounds(start).end).next().is_some() {
                starting = Some(start);
                break;
            }
        }
        ending.into_iter().chain(starting).min()
    }

    /// The starts of the windows a record at `time` changes: those that hold it, and the
    /// window just after it when the record is the first at its time.
    fn windows_changed_by(&self, panes: &Sorted<Pane<A>>, time: i64) -> Vec<i64> {
        let d = self.difference_ms;
        let is_new = !panes.contains_key(&time);
        let mut starts: Vec<i64> = panes
            .range(time..=time.saturating_add(d))
            .map(|(later, _)| later - d)
            .chain(std::iter::once(time.saturating_sub(d)))
            .chain(
                panes
                    .range(time.saturating_sub(d).saturating_sub(1)..time)
                    .map(|(earlier, _)| earlier + 1),
            )
            .collect();
        let after = time.saturating_add(1);
        if is_new && panes.range(after..self.bounds(after).end).next().is_some() {
            starts.push(after);
        }
        starts.sort_unstable();
        starts.dedup();
        starts
    }
}

/// A pane as it is stored (borrowed when written).
#[derive(Serialize, Deserialize)]
struct StoredPane<V> {
    aggregate: V,
}

impl<T: Data, A: Data> WindowKind<T, A> for SlidingKind<T, A> {
    type Key = KeyPanes<Pane<A>, A>;

    fn new_key(&self, closed_up_to: i64) -> KeyPanes<Pane<A>, A> {
        KeyPanes::new(self.first_open_start(closed_up_to))
    }

    fn fold(
        &self,
        key: &mut KeyPanes<Pane<A>, A>,
        record: &Record<T>,
        fresh: bool,
        time: Time,
        closed_up_to: i64,
    ) {
        if fresh {
            key.touched.clear();
            // Windows the frontier closed without a record of this key are closed too.
            key.progress.advance(self.first_open_start(closed_up_to));
        }
        let t = record.event_time;
        for start in self.windows_changed_by(&key.panes, t) {
            let closed = start < key.progress.closed_before;
            // A correction's window is closed: the store must say so for a restore.
            key.progress.dirty |= closed;
            let noted = key.touched.iter().any(|(touched, _, _)| *touched == start);
            if (closed || self.aggregation.emit_updates) && !noted {
                // Its value before the batch, if it was a window of the key then.
                let before = self
                    .exists(&key.panes, start)
                    .then(|| self.value(&key.panes, start))
                    .flatten()
                    .map(|value| value.aggregate);
                key.touched.push((start, before, closed));
            }
        }
        let pane = key.panes.or_insert_with(t, || Pane {
            aggregate: (self.aggregation.init)(),
            watermark: record.watermark,
            time,
            persistence: Persistence::new(),
        });
        (self.aggregation.fold)(&mut pane.aggregate, &record.value);
        pane.watermark = pane.watermark.max(record.watermark);
        pane.time = join(&pane.time, &time);
        pane.persistence.dirty = true;
    }

    fn changes(
        &self,
        name: &str,
        key: &mut KeyPanes<Pane<A>, A>,
        time: Time,
        changes: &mut Vec<TimedChange<A>>,
    ) {
        for (start, old, correction) in std::mem::take(&mut key.touched) {
            if let Some(now) = self.value(&key.panes, start) {
                changes.push(now.updated(name, self.bounds(start), old, correction, time));
            }
        }
    }

    fn close(
        &self,
        name: &str,
        key: &mut KeyPanes<Pane<A>, A>,
        watermark: i64,
        closing: Time,
        changes: &mut Vec<TimedChange<A>>,
    ) -> bool {
        let mut closed_before = key.progress.closed_before;
        while let Some(start) = self.earliest_window(&key.panes, closed_before) {
            if self.closes_at(start) > watermark {
                break;
            }
            if let Some(value) = self.value(&key.panes, start) {
                let old = self
                    .aggregation
                    .emit_updates
                    .then(|| value.aggregate.clone());
                changes.push(value.closed(name, self.bounds(start), old, false, closing));
            }
            closed_before = start.saturating_add(1);
        }
        // A pane is kept until the window just after it has closed and its lateness passed.
        let lateness = self.aggregation.allowed_lateness_ms;
        let forget: Vec<i64> = key
            .panes
            .keys()
            .copied()
            .take_while(|time| {
                let after = time.saturating_add(1);
                after < closed_before && self.closes_at(after).saturating_add(lateness) <= watermark
            })
            .collect();
        let moved = closed_before != key.progress.closed_before || !forget.is_empty();
        key.progress.advance(closed_before);
        for time in forget {
            key.forget(time);
        }
        moved
    }

    fn next_wakeup(&self, key: &KeyPanes<Pane<A>, A>) -> Option<i64> {
        let closing = self
            .earliest_window(&key.panes, key.progress.closed_before)
            .map(|start| self.closes_at(start));
        let forgetting = key
            .panes
            .keys()
            .next()
            .map(|time| time.saturating_add(1))
            .filter(|after| *after < key.progress.closed_before)
            .map(|after| {
                self.closes_at(after)
                    .saturating_add(self.aggregation.allowed_lateness_ms)
            });
        closing.into_iter().chain(forgetting).min()
    }

    fn write(
        &self,
        name: &str,
        key: &KeyPanes<Pane<A>, A>,
        store: &WindowStore<'_>,
        batch: &mut WriteBatch,
    ) -> Result<(), String> {
        let changed = key
            .panes
            .iter()
            .filter(|(_, pane)| pane.persistence.dirty)
            .map(|(time, pane)| {
                let stored = StoredPane {
                    aggregate: &pane.aggregate,
                };
                (*time, time.saturating_add(1), false, stored)
            });
        let holds = |time: &i64| key.panes.contains_key(time);
        write_key(name, (&key.removed, holds), changed, store, batch)?;
        key.progress.write(name, key.panes.is_empty(), store, batch);
        Ok(())
    }

    fn written(&self, key: &mut KeyPanes<Pane<A>, A>) {
        key.written();
    }

    fn restore(&self, key: &mut KeyPanes<Pane<A>, A>, entry: WindowEntry) -> Result<(), String> {
        let Some(entry) = key.progress.restore(entry) else {
            return Ok(());
        };
        let stored: StoredPane<A> =
            serde_json::from_slice(&entry.value_json).map_err(|error| error.to_string())?;
        key.panes.insert(
            entry.start,
            Pane {
                aggregate: stored.aggregate,
                watermark: 0,
                time: Time::default(),
                persistence: Persistence::restored(),
            },
        );
        Ok(())
    }

    fn is_empty(&self, key: &KeyPanes<Pane<A>, A>) -> bool {
        key.panes.is_empty()
    }
}
