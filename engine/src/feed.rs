//! The change feed behind the live streams: every change a checkpoint makes to a view,
//! published when that checkpoint commits, so a subscriber sees exactly what a read right
//! after the commit would see, in commit order.
//!
//! View operators stage their changes as they hand their part of a checkpoint in; the
//! commit publishes what was staged for the epochs it takes. The channel is bounded: a
//! subscriber that falls more than [`CAPACITY`] commits behind is told it lagged, and starts
//! again from the current state rather than holding memory for it.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use crate::checkpoint::Checkpoint;

/// Commits a subscriber may fall behind before it has to start again.
pub const CAPACITY: usize = 256;

/// What happened to one window or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A window's new value.
    Window {
        start: i64,
        end: i64,
        is_final: bool,
        value_json: Vec<u8>,
    },
    /// A window that is gone: a session merged into another, or moved its start.
    WindowRemoved { start: i64 },
    /// A table key's new value.
    Value { value_json: Vec<u8> },
    /// A table key that was deleted.
    Deleted,
}

/// A change of one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewChange {
    pub view: String,
    pub key: String,
    pub change: Change,
}

impl ViewChange {
    /// Where the change sorts within a commit: by view, key and window start.
    fn position(&self) -> (&str, &str, i64) {
        let start = match self.change {
            Change::Window { start, .. } | Change::WindowRemoved { start } => start,
            Change::Value { .. } | Change::Deleted => 0,
        };
        (&self.view, &self.key, start)
    }
}

/// The changes one checkpoint made visible.
#[derive(Debug)]
pub struct Committed {
    pub checkpoint: Checkpoint,
    /// In (view, key, window start) order.
    pub changes: Vec<ViewChange>,
}

/// Staged changes and the channel that publishes them.
#[derive(Debug)]
pub struct ChangeFeed {
    /// `(epoch of the checkpoint request they were handed in to, changes)`, in staging
    /// order.
    staged: Mutex<Vec<(u64, Vec<ViewChange>)>>,
    sender: broadcast::Sender<Arc<Committed>>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed {
            staged: Mutex::new(Vec::new()),
            sender: broadcast::Sender::new(CAPACITY),
        }
    }
}

impl ChangeFeed {
    /// Stages the changes a view operator handed in to the checkpoint request of `epoch`.
    pub fn stage(&self, epoch: u64, changes: Vec<ViewChange>) {
        if changes.is_empty() {
            return;
        }
        self.staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((epoch, changes));
    }

    /// Publishes what `checkpoint`, now committed, made visible.
    pub fn publish(&self, checkpoint: &Checkpoint) {
        let mut changes: Vec<ViewChange> = {
            let mut staged = self.staged.lock().unwrap_or_else(PoisonError::into_inner);
            let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut *staged)
                .into_iter()
                // A checkpoint carries the epoch of its request: what was handed in to it, and
                // to any earlier request, is in it.
                .partition(|(epoch, _)| checkpoint.is_final || *epoch <= checkpoint.epoch);
            *staged = kept;
            taken.into_iter().flat_map(|(_, changes)| changes).collect()
        };
        if changes.is_empty() {
            return;
        }
        // Stable: a key handed in twice to one checkpoint keeps its later change last.
        changes.sort_by(|a, b| a.position().cmp(&b.position()));
        // No subscriber is not an error: the changes are in the views either way.
        let _ = self.sender.send(Arc::new(Committed {
            checkpoint: checkpoint.clone(),
            changes,
        }));
    }

    /// A receiver of every commit published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(id: u64, epoch: u64) -> Checkpoint {
        Checkpoint {
            id,
            epoch,
            is_final: false,
            positions: Vec::new(),
            watermark: 0,
            committed_at: 0,
            duration_ms: 0,
            fingerprint: String::new(),
        }
    }

    fn value(view: &str, key: &str, json: &str) -> ViewChange {
        ViewChange {
            view: view.into(),
            key: key.into(),
            change: Change::Value {
                value_json: json.as_bytes().to_vec(),
            },
        }
    }

    #[test]
    fn a_commit_publishes_the_changes_of_the_epochs_it_takes_in_order() {
        let feed = ChangeFeed::default();
        let mut receiver = feed.subscribe();
        feed.stage(3, vec![value("v", "b", "1"), value("v", "a", "1")]);
        feed.stage(4, vec![value("v", "b", "2")]);
        feed.stage(5, vec![value("v", "c", "1")]);
        // The checkpoint of request 4 holds what was handed in to requests 3 and 4.
        feed.publish(&checkpoint(7, 4));
        let committed = receiver.try_recv().unwrap();
        assert_eq!(committed.checkpoint.id, 7);
        assert_eq!(
            committed.changes,
            vec![
                value("v", "a", "1"),
                value("v", "b", "1"),
                value("v", "b", "2")
            ]
        );
        // Then the next one.
        feed.publish(&checkpoint(8, 5));
        assert_eq!(
            receiver.try_recv().unwrap().changes,
            vec![value("v", "c", "1")]
        );
        // A commit with no changes publishes nothing.
        feed.publish(&checkpoint(9, 6));
        assert!(receiver.try_recv().is_err());
    }
}
