//! Session windows: per key, sessions that grow with each record within the inactivity gap
//! and merge when a record bridges two of them.
//!
//! A session holding records from `first` to `last` has the bounds `[first, last + 1)` and
//! closes once the watermark reaches `last + 1 + gap + grace`: then no record on time can
//! reach it. A record is on time when its own instant, `[t, t + 1)`, has not closed by its
//! watermark (less the allowed lateness): that keeps the sessions the same however the
//! partitions interleave, since an on-time record can never reach a closed session. A
//! record within the allowed lateness may merge into closed sessions kept for corrections.
//!
//! When sessions merge, the one that starts first keeps its identity if the merged session
//! starts where it did; the others are removed, and a removal is emitted for each one that
//! had been sent. A record earlier than its session's start moves the start: the session
//! under the old start is removed.

use serde::{Deserialize, Serialize};
use sluice_state::{WindowEntry, WindowStore, WriteBatch};

use super::keyed::{Persisted, Persistence, WindowKind, write_key};
use super::sorted::Sorted;
use super::{Aggregation, Merged, TimedChange, WindowChange, change_record, merge_into};
use crate::epoch::{Time, join};
use crate::record::{Data, Record};
use crate::window::WindowBounds;

/// One session of a key.
struct Session<A> {
    last: i64,
    aggregate: A,
    /// The value last emitted for the session, if any.
    emitted: Option<A>,
    /// Whether a final value was sent.
    final_sent: bool,
    /// Whether it is closed (and kept for corrections).
    closed: bool,
    watermark: u64,
    time: Time,
    persistence: Persistence,
}

impl<A> Persisted for Session<A> {
    fn persistence(&mut self) -> &mut Persistence {
        &mut self.persistence
    }
}

/// A session as it is stored (with `&A` when written); its start and end are the entry's.
#[derive(Serialize, Deserialize)]
struct StoredSession<V> {
    aggregate: V,
    emitted: Option<V>,
    final_sent: bool,
}

impl<A: Data> Merged<A> {
    fn of(session: &Session<A>) -> Self {
        Merged {
            aggregate: session.aggregate.clone(),
            watermark: session.watermark,
            time: session.time,
        }
    }
}

/// A session removed by a batch, to emit its removal.
struct Removed<A> {
    bounds: WindowBounds,
    emitted: Option<A>,
    closed: bool,
    /// The session's watermark: the watermark its removal carries downstream, which
    /// depends on its records only, not on when the operator ran.
    watermark: u64,
}

/// The sessions of one key.
pub(super) struct KeySessions<A> {
    sessions: Sorted<Session<A>>,
    /// Starts of sessions dropped since the last checkpoint.
    removed: Vec<i64>,
    /// Starts of sessions the batch changed, and the sessions it removed.
    touched: Vec<i64>,
    gone: Vec<Removed<A>>,
}

/// Session windows.
pub(super) struct SessionKind<T, A> {
    gap_ms: i64,
    grace_ms: i64,
    aggregation: Aggregation<T, A>,
}

/// When a session whose last record is at `last` closes.
fn session_closes_at(last: i64, gap: i64, grace: i64) -> i64 {
    last.saturating_add(1)
        .saturating_add(gap)
        .saturating_add(grace)
}

fn bounds(start: i64, last: i64) -> WindowBounds {
    WindowBounds {
        start,
        end: last.saturating_add(1),
    }
}

impl<T: Data, A: Data> SessionKind<T, A> {
    pub(super) fn new(gap_ms: i64, grace_ms: i64, aggregation: Aggregation<T, A>) -> Self {
        SessionKind {
            gap_ms,
            grace_ms,
            aggregation,
        }
    }

    fn closes_at(&self, last: i64) -> i64 {
        session_closes_at(last, self.gap_ms, self.grace_ms)
    }

    /// Takes the sessions within a gap of `t` out of `key`, merged into the first of them
    /// (which keeps its identity), and notes the others as removed.
    fn take_reached(&self, key: &mut KeySessions<A>, t: i64) -> Option<(i64, Session<A>)> {
        let gap = self.gap_ms;
        // Sessions are more than a gap apart, so those within a gap of `t` are neighbours.
        let reached: Vec<i64> = key
            .sessions
            .range(..=t.saturating_add(gap))
            .rev()
            .take_while(|(_, session)| session.last.saturating_add(gap) >= t)
            .map(|(start, _)| *start)
            .collect();
        let mut merged: Option<(i64, Session<A>)> = None;
        for start in reached.into_iter().rev() {
            let Some(session) = key.sessions.remove(&start) else {
                continue;
            };
            match &mut merged {
                None => merged = Some((start, session)),
                Some((_, into)) => {
                    merge_into(
                        self.aggregation.merge.as_deref(),
                        &mut into.aggregate,
                        &session.aggregate,
                    );
                    into.last = into.last.max(session.last);
                    into.watermark = into.watermark.max(session.watermark);
                    into.time = join(&into.time, &session.time);
                    key.gone.push(Removed {
                        bounds: bounds(start, session.last),
                        emitted: session.emitted,
                        closed: session.closed,
                        watermark: session.watermark,
                    });
                    if session.persistence.stored {
                        key.removed.push(start);
                    }
                }
            }
        }
        merged
    }
}

impl<T: Data, A: Data> WindowKind<T, A> for SessionKind<T, A> {
    type Key = KeySessions<A>;

    fn new_key(&self, _closed_up_to: i64) -> KeySessions<A> {
        KeySessions {
            sessions: Sorted::default(),
            removed: Vec::new(),
            touched: Vec::new(),
            gone: Vec::new(),
        }
    }

    fn fold(
        &self,
        key: &mut KeySessions<A>,
        record: &Record<T>,
        fresh: bool,
        time: Time,
        closed_up_to: i64,
    ) {
        if fresh {
            key.touched.clear();
            key.gone.clear();
        }
        let t = record.event_time;
        let (mut start, mut session) = self.take_reached(key, t).unwrap_or_else(|| {
            (
                t,
                Session {
                    last: t,
                    aggregate: (self.aggregation.init)(),
                    emitted: None,
                    final_sent: false,
                    closed: false,
                    watermark: record.watermark,
                    time,
                    persistence: Persistence::new(),
                },
            )
        });
        if t < start {
            // The session starts earlier now: it is a new one in the views.
            key.gone.push(Removed {
                bounds: bounds(start, session.last),
                emitted: session.emitted.take(),
                closed: session.closed,
                watermark: session.watermark,
            });
            if session.persistence.stored {
                key.removed.push(start);
            }
            session.final_sent = false;
            session.persistence.stored = false;
            start = t;
        }
        (self.aggregation.fold)(&mut session.aggregate, &record.value);
        session.last = session.last.max(t);
        session.watermark = session.watermark.max(record.watermark);
        session.time = join(&session.time, &time);
        session.closed = self.closes_at(session.last) <= closed_up_to;
        session.persistence.dirty = true;
        key.sessions.insert(start, session);
        if !key.touched.contains(&start) {
            key.touched.push(start);
        }
    }

    fn changes(
        &self,
        name: &str,
        key: &mut KeySessions<A>,
        time: Time,
        changes: &mut Vec<TimedChange<A>>,
    ) {
        for gone in key.gone.drain(..) {
            // A session nobody was shown needs no removal.
            let Some(emitted) = gone.emitted else {
                continue;
            };
            changes.push((
                time,
                change_record(
                    name.to_string(),
                    gone.watermark,
                    WindowChange {
                        window: gone.bounds,
                        old: Some(emitted.clone()),
                        new: emitted,
                        is_final: gone.closed,
                        correction: gone.closed,
                        removed: true,
                    },
                ),
            ));
        }
        for start in key.touched.drain(..) {
            let Some(session) = key.sessions.get_mut(&start) else {
                continue;
            };
            if !session.closed && !self.aggregation.emit_updates {
                continue;
            }
            let old = session.emitted.replace(session.aggregate.clone());
            let correction = session.closed;
            session.final_sent |= correction;
            changes.push(Merged::of(session).updated(
                name,
                bounds(start, session.last),
                old,
                correction,
                time,
            ));
        }
    }

    fn close(
        &self,
        name: &str,
        key: &mut KeySessions<A>,
        watermark: i64,
        closing: Time,
        changes: &mut Vec<TimedChange<A>>,
    ) -> bool {
        let lateness = self.aggregation.allowed_lateness_ms;
        let mut moved = false;
        let mut forget = Vec::new();
        for (start, session) in key.sessions.iter_mut() {
            let at = self.closes_at(session.last);
            if !session.closed && at <= watermark {
                // A session re-opened by a late merge corrects the final value sent before.
                let correction = session.final_sent;
                let old = session.emitted.replace(session.aggregate.clone());
                session.closed = true;
                session.final_sent = true;
                session.persistence.dirty = true;
                moved = true;
                let window = bounds(*start, session.last);
                // Final from the moment it closed, whenever the frontier showed it.
                let mut value = Merged::of(session);
                value.watermark = value.watermark.max(u64::try_from(at).unwrap_or(0));
                changes.push(value.closed(name, window, old, correction, closing));
            }
            if session.closed && at.saturating_add(lateness) <= watermark {
                forget.push(*start);
            }
        }
        for start in forget {
            key.sessions.forget(start, &mut key.removed);
            moved = true;
        }
        moved
    }

    fn next_wakeup(&self, key: &KeySessions<A>) -> Option<i64> {
        let lateness = self.aggregation.allowed_lateness_ms;
        key.sessions
            .values()
            .map(|session| {
                let closes_at = self.closes_at(session.last);
                if session.closed {
                    closes_at.saturating_add(lateness)
                } else {
                    closes_at
                }
            })
            .min()
    }

    fn write(
        &self,
        name: &str,
        key: &KeySessions<A>,
        store: &WindowStore<'_>,
        batch: &mut WriteBatch,
    ) -> Result<(), String> {
        let changed = key
            .sessions
            .iter()
            .filter(|(_, session)| session.persistence.dirty)
            .map(|(start, session)| {
                let stored = StoredSession {
                    aggregate: &session.aggregate,
                    emitted: session.emitted.as_ref(),
                    final_sent: session.final_sent,
                };
                let end = session.last.saturating_add(1);
                (*start, end, session.closed, stored)
            });
        let holds = |start: &i64| key.sessions.contains_key(start);
        write_key(name, (&key.removed, holds), changed, store, batch)
    }

    fn written(&self, key: &mut KeySessions<A>) {
        key.removed.clear();
        key.sessions.written();
    }

    fn restore(&self, key: &mut KeySessions<A>, entry: WindowEntry) -> Result<(), String> {
        let stored: StoredSession<A> =
            serde_json::from_slice(&entry.value_json).map_err(|error| error.to_string())?;
        key.sessions.insert(
            entry.start,
            Session {
                last: entry.end.saturating_sub(1),
                aggregate: stored.aggregate,
                emitted: stored.emitted,
                final_sent: stored.final_sent,
                closed: entry.is_final,
                watermark: 0,
                time: Time::default(),
                persistence: Persistence::restored(),
            },
        );
        Ok(())
    }

    fn is_empty(&self, key: &KeySessions<A>) -> bool {
        key.sessions.is_empty()
    }
}
