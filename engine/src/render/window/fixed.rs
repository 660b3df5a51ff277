//! Tumbling and hopping windows, kept as panes that windows are merged from.
//!
//! A hopping window of size `s` that advances by `a` is made of slices of `gcd(s, a)`, and
//! each slice is shared by the `s / a` windows that hold it (Flink's and Arroyo's slice
//! sharing). A record is folded once, into its slice; a window's value is merged from its
//! slices when it is emitted; a slice is dropped when the last window holding it closes.
//! Tumbling windows are the case of one slice per window. An aggregation without a merge
//! cannot share slices, so its hopping windows are panes of their own, and each record is
//! folded into every window that holds it, as Kafka Streams does; so are those that emit
//! on update, which merge every window a batch touches at once (see `FixedKind::new`).
//!
//! Lateness is judged per window by the record's own watermark, so that the same input
//! gives the same windows however it interleaves: a record counts in the windows that had
//! not closed by its watermark (or that take corrections) and not in the others, even when
//! they share its slice. A slice therefore keeps its records in parts, by the first window
//! that takes them; nearly always there is one part.

use serde::{Deserialize, Serialize};
use sluice_state::{WindowEntry, WindowStore, WriteBatch};

use super::keyed::{KeyPanes, Persisted, Persistence, WindowKind, write_key};
use super::sorted::Sorted;
use super::{Aggregation, MergeRef, Merged, TimedChange, as_event_time};
use crate::epoch::{Time, join};
use crate::record::{Data, Record};
use crate::window::{FixedWindows, WindowBounds};

/// How a key's records are split into panes.
#[derive(Debug, Clone, Copy)]
enum PaneLayout {
    /// Slices of this many milliseconds, shared by the windows that hold them.
    Slices(i64),
    /// One pane per window.
    Windows,
}

/// Records of one slice (or window) of a key.
pub(super) struct Pane<A> {
    /// Aggregates by the start of the first window that takes their records, in order.
    parts: Vec<(i64, A)>,
    /// The largest watermark among the records folded in.
    watermark: u64,
    /// The join of the times of the batches folded in.
    time: Time,
    persistence: Persistence,
}

impl<A> Persisted for Pane<A> {
    fn persistence(&mut self) -> &mut Persistence {
        &mut self.persistence
    }
}

/// A pane as it is stored (with borrowed parts when written).
#[derive(Serialize, Deserialize)]
struct StoredPane<P> {
    parts: P,
}

/// Tumbling or hopping windows.
pub(super) struct FixedKind<T, A> {
    windows: FixedWindows,
    layout: PaneLayout,
    aggregation: Aggregation<T, A>,
}

impl<T: Data, A: Data> FixedKind<T, A> {
    pub(super) fn new(windows: FixedWindows, aggregation: Aggregation<T, A>) -> Self {
        // Slices pay off when windows are merged only as they close. With emit on update
        // every window a batch touches is merged at once, before and after the batch, which
        // cost more than folding each record into each of its windows (window_kinds bench:
        // 161,200 against 182,720 events/s).
        let share = aggregation.merge.is_some() && !aggregation.emit_updates;
        let layout = if windows.is_tumbling() || share {
            PaneLayout::Slices(gcd(windows.size_ms, windows.advance_ms))
        } else {
            PaneLayout::Windows
        };
        FixedKind {
            windows,
            layout,
            aggregation,
        }
    }

    fn pane_size(&self) -> i64 {
        match self.layout {
            PaneLayout::Slices(slice) => slice,
            PaneLayout::Windows => self.windows.size_ms,
        }
    }

    /// The first and last start of the windows that hold the pane starting at `pane`.
    fn windows_of_pane(&self, pane: i64) -> (i64, i64) {
        match self.layout {
            PaneLayout::Slices(_) => (
                self.windows.first_start_holding(pane),
                self.windows.last_start_holding(pane),
            ),
            PaneLayout::Windows => (pane, pane),
        }
    }

    /// The starts of the panes a record at `time` goes into.
    fn panes_holding(&self, time: i64) -> impl Iterator<Item = i64> {
        let (first, last, step) = match self.layout {
            PaneLayout::Slices(slice) => {
                let start = time - time.rem_euclid(slice);
                (start, start, 1)
            }
            PaneLayout::Windows => (
                self.windows.first_start_holding(time),
                self.windows.last_start_holding(time),
                self.windows.advance_ms,
            ),
        };
        starts(first, last, step)
    }

    fn bounds(&self, start: i64) -> WindowBounds {
        WindowBounds {
            start,
            end: start.saturating_add(self.windows.size_ms),
        }
    }
}

/// `first, first + step, ...` up to `last`.
fn starts(first: i64, last: i64, step: i64) -> impl Iterator<Item = i64> {
    std::iter::successors(Some(first), move |start| start.checked_add(step))
        .take_while(move |start| *start <= last)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// What a window holds now, or nothing when no record is in it.
fn window_value<A: Data>(
    panes: &Sorted<Pane<A>>,
    layout: PaneLayout,
    bounds: WindowBounds,
    merge: MergeRef<'_, A>,
) -> Option<Merged<A>> {
    let range = match layout {
        PaneLayout::Slices(_) => bounds.start..bounds.end,
        PaneLayout::Windows => bounds.start..bounds.start.saturating_add(1),
    };
    let mut value = None;
    for pane in panes.range(range).map(|(_, pane)| pane) {
        for (_, part) in pane.parts.iter().filter(|(from, _)| *from <= bounds.start) {
            Merged::absorb(&mut value, part, (pane.watermark, pane.time), merge);
        }
    }
    value
}

impl<T: Data, A: Data> FixedKind<T, A> {
    /// The earliest window, from `closed_before` on, that holds a record of `panes`.
    fn earliest_pending(&self, panes: &Sorted<Pane<A>>, closed_before: i64) -> Option<i64> {
        let mut earliest: Option<i64> = None;
        // A pane has a window from `closed_before` on exactly when it starts there or later.
        for (start, pane) in panes.range(closed_before..) {
            let first = self.windows_of_pane(*start).0;
            if earliest.is_some_and(|earliest| earliest <= first) {
                // Later panes' windows start later still.
                break;
            }
            if let Some((from, _)) = pane.parts.first() {
                let candidate = (*from).max(closed_before);
                earliest = Some(earliest.map_or(candidate, |earliest| earliest.min(candidate)));
            }
        }
        earliest
    }

    /// The panes a record goes into, each with the first and last window of it that take
    /// the record: those that close after the record's watermark, less the allowed lateness.
    fn taken_by(&self, record: &Record<T>) -> impl Iterator<Item = (i64, i64, i64)> + '_ {
        let taken_from = self.windows.first_open_start(
            as_event_time(record.watermark).saturating_sub(self.aggregation.allowed_lateness_ms),
        );
        self.panes_holding(record.event_time)
            .map(move |pane| {
                let (first, last) = self.windows_of_pane(pane);
                (pane, first.max(taken_from), last)
            })
            .filter(|(_, from, last)| from <= last)
    }

    fn value_of(&self, key: &KeyPanes<Pane<A>, A>, start: i64) -> Option<Merged<A>> {
        window_value(
            &key.panes,
            self.layout,
            self.bounds(start),
            self.aggregation.merge.as_deref(),
        )
    }
}

impl<T: Data, A: Data> WindowKind<T, A> for FixedKind<T, A> {
    type Key = KeyPanes<Pane<A>, A>;

    fn new_key(&self, closed_up_to: i64) -> KeyPanes<Pane<A>, A> {
        KeyPanes::new(self.windows.first_open_start(closed_up_to))
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
            key.progress
                .advance(self.windows.first_open_start(closed_up_to));
        }
        for (pane_start, from, last) in self.taken_by(record) {
            // Note each window's value before the batch changes it, for its change's `old`.
            for start in starts(from, last, self.windows.advance_ms) {
                let closed = start < key.progress.closed_before;
                // A correction's window is closed: the store must say so for a restore.
                key.progress.dirty |= closed;
                if (closed || self.aggregation.emit_updates)
                    && !key.touched.iter().any(|(touched, _, _)| *touched == start)
                {
                    let before = self.value_of(key, start).map(|value| value.aggregate);
                    key.touched.push((start, before, closed));
                }
            }
            let pane = key.panes.or_insert_with(pane_start, || Pane {
                parts: Vec::new(),
                watermark: record.watermark,
                time,
                persistence: Persistence::new(),
            });
            let part = match pane.parts.iter().position(|(start, _)| *start >= from) {
                Some(index) if pane.parts[index].0 == from => index,
                found => {
                    let index = found.unwrap_or(pane.parts.len());
                    // Nearly every pane has one part: room for just that.
                    pane.parts.reserve_exact(1);
                    pane.parts.insert(index, (from, (self.aggregation.init)()));
                    index
                }
            };
            (self.aggregation.fold)(&mut pane.parts[part].1, &record.value);
            pane.watermark = pane.watermark.max(record.watermark);
            pane.time = join(&pane.time, &time);
            pane.persistence.dirty = true;
        }
    }

    fn changes(
        &self,
        name: &str,
        key: &mut KeyPanes<Pane<A>, A>,
        time: Time,
        changes: &mut Vec<TimedChange<A>>,
    ) {
        for (start, old, correction) in std::mem::take(&mut key.touched) {
            if let Some(now) = self.value_of(key, start) {
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
        while let Some(start) = self.earliest_pending(&key.panes, closed_before) {
            if self.windows.closes_at(start) > watermark {
                break;
            }
            if let Some(value) = self.value_of(key, start) {
                // With emit on update, the value was sent as it was made.
                let old = self
                    .aggregation
                    .emit_updates
                    .then(|| value.aggregate.clone());
                changes.push(value.closed(name, self.bounds(start), old, false, closing));
            }
            closed_before = start.saturating_add(self.windows.advance_ms);
        }
        let moved = closed_before != key.progress.closed_before;
        key.progress.advance(closed_before);
        // The panes whose windows have all closed start before `closed_before`.
        let lateness = self.aggregation.allowed_lateness_ms;
        let forget: Vec<i64> = key
            .panes
            .range(..closed_before)
            .map(|(pane, _)| *pane)
            .filter(|pane| {
                let last = self.windows_of_pane(*pane).1;
                self.windows.closes_at(last).saturating_add(lateness) <= watermark
            })
            .collect();
        let moved = moved || !forget.is_empty();
        for start in forget {
            key.forget(start);
        }
        moved
    }

    fn next_wakeup(&self, key: &KeyPanes<Pane<A>, A>) -> Option<i64> {
        let closed_before = key.progress.closed_before;
        let closing = self
            .earliest_pending(&key.panes, closed_before)
            .map(|start| self.windows.closes_at(start));
        // The first pane whose windows have all closed is the first to be forgotten.
        let forgetting = key.panes.range(..closed_before).next().map(|(pane, _)| {
            let last = self.windows_of_pane(*pane).1;
            self.windows
                .closes_at(last)
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
            .map(|(start, pane)| {
                let stored = StoredPane { parts: &pane.parts };
                (
                    *start,
                    start.saturating_add(self.pane_size()),
                    false,
                    stored,
                )
            });
        let holds = |start: &i64| key.panes.contains_key(start);
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
        let stored: StoredPane<Vec<(i64, A)>> =
            serde_json::from_slice(&entry.value_json).map_err(|error| error.to_string())?;
        key.panes.insert(
            entry.start,
            Pane {
                parts: stored.parts,
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
