//! What every window kind shares: state per key, a schedule of when each key next has a
//! window to close, and the keys to write at the next checkpoint.
//!
//! A kind ([`WindowKind`]) says how one key's records make windows; [`Keyed`] runs it over
//! all the keys of an operator instance and is the operator's [`Keeper`].

use std::collections::BTreeSet;

// Keys come from the input: a seeded hasher, but a fast one (SipHash showed in profiles).
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use sluice_state::{WindowEntry, WindowStore, WriteBatch};

use super::clock::Closed;
use super::sorted::Sorted;
use super::{Keeper, Lateness, Produced, TimedChange, late_record};
use crate::epoch::Time;
use crate::record::{Data, Record};

/// How the records of one key make windows of one kind.
pub(super) trait WindowKind<T, A> {
    /// What the kind keeps per key.
    type Key;

    /// The state of a key seen for the first time, once windows have closed up to
    /// `closed_up_to`.
    fn new_key(&self, closed_up_to: i64) -> Self::Key;

    /// Folds a record that some window takes. `fresh` says it is the key's first record in
    /// this batch.
    fn fold(
        &self,
        key: &mut Self::Key,
        record: &Record<T>,
        fresh: bool,
        time: Time,
        closed_up_to: i64,
    );

    /// The changes of the key's windows that the batch of `time` made.
    fn changes(
        &self,
        name: &str,
        key: &mut Self::Key,
        time: Time,
        changes: &mut Vec<TimedChange<A>>,
    );

    /// Closes the key's windows that close by `watermark` and forgets what no window needs
    /// any more; returns whether the key's state changed.
    fn close(
        &self,
        name: &str,
        key: &mut Self::Key,
        watermark: i64,
        closing: Time,
        changes: &mut Vec<TimedChange<A>>,
    ) -> bool;

    /// When the key next has a window to close or state to forget.
    fn next_wakeup(&self, key: &Self::Key) -> Option<i64>;

    /// Writes what changed in the key since the last checkpoint.
    fn write(
        &self,
        name: &str,
        key: &Self::Key,
        store: &WindowStore<'_>,
        batch: &mut WriteBatch,
    ) -> Result<(), String>;

    /// Forgets what was written.
    fn written(&self, key: &mut Self::Key);

    /// Takes back one stored entry of the key.
    fn restore(&self, key: &mut Self::Key, entry: WindowEntry) -> Result<(), String>;

    /// Whether the key holds nothing.
    fn is_empty(&self, key: &Self::Key) -> bool;
}

/// A key's state with its place in the schedule.
struct Slot<K> {
    state: K,
    /// When the key is scheduled to wake up.
    wakeup: Option<i64>,
    /// The last batch that folded a record of the key.
    touched_in: u64,
}

/// The windows of every key of one operator instance, of one kind.
pub(super) struct Keyed<W: WindowKind<T, A>, T, A> {
    kind: W,
    lateness: Lateness,
    keys: HashMap<String, Slot<W::Key>>,
    /// Keys by the time they next have something to close or forget.
    wakeups: BTreeSet<(i64, String)>,
    /// Keys changed since the last checkpoint.
    dirty_keys: HashSet<String>,
    /// The watermark up to which windows have been closed.
    closed_up_to: i64,
    batches: u64,
    marker: std::marker::PhantomData<(T, A)>,
}

impl<W: WindowKind<T, A>, T, A> Keyed<W, T, A> {
    /// `lateness` tells late records.
    pub(super) fn new(kind: W, lateness: Lateness) -> Self {
        Keyed {
            kind,
            lateness,
            keys: HashMap::new(),
            wakeups: BTreeSet::new(),
            dirty_keys: HashSet::new(),
            closed_up_to: i64::MIN,
            batches: 0,
            marker: std::marker::PhantomData,
        }
    }

    fn reschedule(&mut self, name: &str) {
        let Some(slot) = self.keys.get_mut(name) else {
            return;
        };
        let wakeup = self.kind.next_wakeup(&slot.state);
        if wakeup == slot.wakeup {
            return;
        }
        if let Some(old) = slot.wakeup {
            self.wakeups.remove(&(old, name.to_string()));
        }
        if let Some(new) = wakeup {
            self.wakeups.insert((new, name.to_string()));
        }
        slot.wakeup = wakeup;
    }
}

impl<W: WindowKind<T, A>, T: Data, A: Data> Keeper<T, A> for Keyed<W, T, A> {
    fn apply(&mut self, records: Vec<Vec<Record<T>>>, time: Time, produced: &mut Produced<A>) {
        self.batches += 1;
        let this_batch = self.batches;
        let mut touched: Vec<String> = Vec::new();
        for record in records.into_iter().flatten() {
            if let Some(window) = self.lateness.late_window(&record) {
                // A record as its source read it was judged there, by the same rule, and
                // written once to its late topic for every view it misses.
                if !self.lateness.was_judged_at_source(&record) {
                    produced.late.push(late_record(record, window));
                }
                continue;
            }
            if !self.keys.contains_key(&record.key) {
                let state = self.kind.new_key(self.closed_up_to);
                self.keys.insert(
                    record.key.clone(),
                    Slot {
                        state,
                        wakeup: None,
                        touched_in: 0,
                    },
                );
            }
            let Some(slot) = self.keys.get_mut(&record.key) else {
                continue;
            };
            let fresh = slot.touched_in != this_batch;
            if fresh {
                slot.touched_in = this_batch;
                touched.push(record.key.clone());
            }
            self.kind
                .fold(&mut slot.state, &record, fresh, time, self.closed_up_to);
        }
        for name in touched {
            if let Some(slot) = self.keys.get_mut(&name) {
                self.kind
                    .changes(&name, &mut slot.state, time, &mut produced.changes);
            }
            self.reschedule(&name);
            self.dirty_keys.insert(name);
        }
    }

    fn close(
        &mut self,
        watermark: i64,
        closing: Time,
        changes: &mut Vec<TimedChange<A>>,
        closes: &mut Vec<Closed>,
    ) {
        self.closed_up_to = self.closed_up_to.max(watermark);
        while let Some((at, name)) = self.wakeups.first().cloned() {
            if at > watermark {
                break;
            }
            self.wakeups.pop_first();
            let Some(slot) = self.keys.get_mut(&name) else {
                continue;
            };
            slot.wakeup = None;
            let before = changes.len();
            if self
                .kind
                .close(&name, &mut slot.state, watermark, closing, changes)
            {
                self.dirty_keys.insert(name.clone());
            }
            // The windows closed here could close once the watermark reached `at` (a later
            // close point of the same key would have woken it separately, unless the
            // watermark jumped past both at once).
            for (time, record) in &changes[before..] {
                let change = &record.value;
                if change.is_final && !change.correction && !change.removed {
                    Closed::add(closes, at, time.outer, 1);
                }
            }
            self.reschedule(&name);
        }
    }

    fn write(&self, store: &WindowStore<'_>, batch: &mut WriteBatch) -> Result<(), String> {
        for name in &self.dirty_keys {
            if let Some(slot) = self.keys.get(name) {
                self.kind.write(name, &slot.state, store, batch)?;
            }
        }
        Ok(())
    }

    fn written(&mut self) {
        for name in std::mem::take(&mut self.dirty_keys) {
            let Some(slot) = self.keys.get_mut(&name) else {
                continue;
            };
            self.kind.written(&mut slot.state);
            if slot.wakeup.is_none() && self.kind.is_empty(&slot.state) {
                self.keys.remove(&name);
            }
        }
    }

    fn restore_entry(&mut self, name: String, entry: WindowEntry) -> Result<(), String> {
        if !self.keys.contains_key(&name) {
            let state = self.kind.new_key(i64::MIN);
            self.keys.insert(
                name.clone(),
                Slot {
                    state,
                    wakeup: None,
                    touched_in: 0,
                },
            );
        }
        match self.keys.get_mut(&name) {
            Some(slot) => self.kind.restore(&mut slot.state, entry),
            None => Ok(()),
        }
    }

    fn restored(&mut self) {
        let names: Vec<String> = self.keys.keys().cloned().collect();
        for name in names {
            self.reschedule(&name);
        }
    }
}

/// One stored entry of a key: its start, end, whether it is final, and its value.
pub(super) type Entry<V> = (i64, i64, bool, V);

/// Writes a key's changes: deletes each start in `removed` that `holds` nothing at now,
/// and puts every entry of `changed`.
pub(super) fn write_key<V: serde::Serialize>(
    name: &str,
    (removed, holds): (&[i64], impl Fn(&i64) -> bool),
    changed: impl Iterator<Item = Entry<V>>,
    store: &WindowStore<'_>,
    batch: &mut WriteBatch,
) -> Result<(), String> {
    for start in removed.iter().filter(|start| !holds(start)) {
        store.delete_into(batch, name.as_bytes(), *start);
    }
    for (start, end, is_final, value) in changed {
        let value_json = serde_json::to_vec(&value).map_err(|error| error.to_string())?;
        let entry = WindowEntry {
            start,
            end,
            is_final,
            value_json,
        };
        store.put_into(batch, name.as_bytes(), &entry);
    }
    Ok(())
}

/// The start of the entry that stores how far a key's windows have closed: a start no
/// window has. It saves rewriting every entry of the key each time a window closes.
const PROGRESS: i64 = i64::MIN;

/// How far a key's windows have closed, as kept for the key's progress entry.
pub(super) struct Progress {
    /// Every window of the key that starts before this has closed.
    pub closed_before: i64,
    /// Whether it changed since the last checkpoint.
    pub dirty: bool,
    /// Whether the store holds it.
    stored: bool,
}

impl Progress {
    pub(super) fn new(closed_before: i64) -> Self {
        Progress {
            closed_before,
            dirty: false,
            stored: false,
        }
    }

    /// Moves it on to `closed_before`, if that is further.
    pub(super) fn advance(&mut self, closed_before: i64) {
        if closed_before > self.closed_before {
            self.closed_before = closed_before;
            self.dirty = true;
        }
    }

    /// Writes the progress entry of `name` (deletes it when the key holds nothing).
    pub(super) fn write(
        &self,
        name: &str,
        key_is_empty: bool,
        store: &WindowStore<'_>,
        batch: &mut WriteBatch,
    ) {
        if key_is_empty {
            if self.stored {
                store.delete_into(batch, name.as_bytes(), PROGRESS);
            }
        } else if self.dirty {
            let entry = WindowEntry {
                start: PROGRESS,
                end: self.closed_before,
                is_final: true,
                value_json: b"null".to_vec(),
            };
            store.put_into(batch, name.as_bytes(), &entry);
        }
    }

    /// Notes that the checkpoint took what [`Self::write`] wrote.
    pub(super) fn written(&mut self, key_is_empty: bool) {
        self.stored = !key_is_empty && (self.stored || self.dirty);
        self.dirty = false;
    }

    /// Takes back `entry` if it is the progress entry; gives it back otherwise.
    pub(super) fn restore(&mut self, entry: WindowEntry) -> Option<WindowEntry> {
        if entry.start != PROGRESS {
            return Some(entry);
        }
        self.closed_before = self.closed_before.max(entry.end);
        self.stored = true;
        None
    }
}

/// Whether an entry (a slice, pane or session) changed since the last checkpoint, and
/// whether the store holds it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Persistence {
    pub dirty: bool,
    /// An entry dropped before any checkpoint took it needs no delete.
    pub stored: bool,
}

impl Persistence {
    /// A new entry, for the next checkpoint to write.
    pub(super) fn new() -> Self {
        Persistence {
            dirty: true,
            stored: false,
        }
    }

    /// An entry read back from the store.
    pub(super) fn restored() -> Self {
        Persistence {
            dirty: false,
            stored: true,
        }
    }
}

/// Entries that know their [`Persistence`].
pub(super) trait Persisted {
    fn persistence(&mut self) -> &mut Persistence;
}

impl<P: Persisted> Sorted<P> {
    /// Drops the entry at `start`, noting in `removed` the delete the store needs.
    pub(super) fn forget(&mut self, start: i64, removed: &mut Vec<i64>) {
        if let Some(mut entry) = self.remove(&start)
            && entry.persistence().stored
        {
            removed.push(start);
        }
    }

    /// Notes that a checkpoint took every entry.
    pub(super) fn written(&mut self) {
        for entry in self.values_mut() {
            *entry.persistence() = Persistence::restored();
        }
    }
}

/// The panes of one key (slices of fixed windows, or the record times of sliding ones),
/// and what a batch and a checkpoint need to know of them.
pub(super) struct KeyPanes<P, A> {
    pub panes: Sorted<P>,
    /// How far the key's windows have closed.
    pub progress: Progress,
    /// Panes dropped since the last checkpoint.
    pub removed: Vec<i64>,
    /// The windows the batch changed, each with its value before the batch and whether it
    /// was closed.
    pub touched: Vec<(i64, Option<A>, bool)>,
}

impl<P: Persisted, A> KeyPanes<P, A> {
    pub(super) fn new(closed_before: i64) -> Self {
        KeyPanes {
            panes: Sorted::default(),
            progress: Progress::new(closed_before),
            removed: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Drops the pane at `start`.
    pub(super) fn forget(&mut self, start: i64) {
        self.panes.forget(start, &mut self.removed);
    }

    /// Notes that a checkpoint took what [`WindowKind::write`] wrote.
    pub(super) fn written(&mut self) {
        self.removed.clear();
        self.progress.written(self.panes.is_empty());
        self.panes.written();
    }
}
