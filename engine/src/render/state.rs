//! What a stateful operator needs to take part in checkpoints: its store, the coordinator,
//! and a way to stop the engine when its state cannot be read or written.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sluice_state::{StateDb, WriteBatch};
use timely::communication::Pull;
use timely::dataflow::channels::Message;
use timely::dataflow::operators::generic::InputHandleCore;
use tracing::{error, trace};

use crate::checkpoint::{ParticipantId, Request};
use crate::runtime::RunEnv;

/// A stateful operator's handle on the engine's state.
#[derive(Clone)]
pub(crate) struct OperatorState {
    env: Arc<RunEnv>,
    /// The column family the operator checkpoints into.
    pub store: String,
}

impl OperatorState {
    pub(crate) fn new(env: Arc<RunEnv>, store: String) -> Self {
        OperatorState { env, store }
    }

    /// Registers the operator as a checkpoint participant.
    pub(crate) fn register(&self) -> ParticipantId {
        let participant = self.env.checkpointer.register(false);
        let thread = std::thread::current();
        trace!(participant, store = %self.store, thread = thread.name().unwrap_or("?"), "checkpoint participant");
        participant
    }

    /// The checkpoint in flight, if any.
    pub(crate) fn request(&self) -> Option<Request> {
        self.env.checkpointer.request()
    }

    /// Hands the operator's part in to `request`; returns whether it was taken.
    pub(crate) fn contribute(
        &self,
        participant: ParticipantId,
        request: Request,
        write: impl FnOnce(&StateDb, &mut WriteBatch) -> Result<(), String>,
    ) -> bool {
        let db = &self.env.db;
        self.env
            .checkpointer
            .contribute(participant, request, Vec::new(), |batch| {
                let (entries, bytes) = (batch.len(), batch.size_in_bytes());
                write(db, batch)?;
                // Which operator's state makes a checkpoint large.
                trace!(
                    store = %self.store,
                    entries = batch.len() - entries,
                    bytes = batch.size_in_bytes() - bytes,
                    "checkpoint part"
                );
                Ok(())
            })
    }

    /// Once every source has stopped, the least watermark among the partitions of
    /// `topics` (the operator's own sources): how far its stream had got.
    pub(crate) fn stopped_watermark(&self, topics: &[String]) -> Option<u64> {
        self.env.checkpointer.stopped_watermark(topics)
    }

    /// Whether every source has stopped, so that the input frontiers are on their way to
    /// empty. They leave worker by worker, and a frontier half gone shows the watermark of
    /// the partitions whose worker let go last, which is no partition's own: nothing may be
    /// decided on it, only on the stopped watermarks once the frontier is empty.
    pub(crate) fn sources_stopping(&self) -> bool {
        self.env.checkpointer.all_sources_stopped()
    }

    /// The engine's live status.
    pub(crate) fn status(&self) -> &crate::status::EngineStatus {
        &self.env.status
    }

    /// The state database.
    pub(crate) fn db(&self) -> &StateDb {
        &self.env.db
    }

    /// Stops the engine: state that cannot be read or written must not be served stale.
    pub(crate) fn fail(&self, reason: &str) {
        error!(reason, store = %self.store, "state error; stopping");
        self.env.status.set_fatal(reason.to_string());
        self.env.shutdown.store(true, Ordering::Relaxed);
    }
}

/// Holds back input of a checkpoint's new epoch until the operator has handed in its state
/// for that checkpoint, so that the state it hands in is made of exactly the older epochs.
pub(crate) struct CheckpointGate<B> {
    participant: Option<ParticipantId>,
    handed_in: Option<Request>,
    held_back: Vec<(crate::epoch::Time, B)>,
}

impl<B> CheckpointGate<B> {
    /// A gate for an operator with `state`; without state (a described topology) nothing is
    /// ever held back.
    pub(crate) fn new(state: Option<&OperatorState>) -> Self {
        CheckpointGate {
            participant: state.map(OperatorState::register),
            handed_in: None,
            held_back: Vec::new(),
        }
    }

    /// The checkpoint this operator still owes a part to, if any.
    pub(crate) fn owed(&self, state: Option<&OperatorState>) -> Option<Request> {
        state
            .and_then(OperatorState::request)
            .filter(|request| self.handed_in != Some(*request))
    }

    /// Takes a batch of time `time`: returns it to apply now, or holds it back.
    pub(crate) fn admit(
        &mut self,
        owed: Option<Request>,
        time: crate::epoch::Time,
        batch: B,
    ) -> Option<B> {
        match owed {
            Some(request) if !request.includes(time.outer) => {
                self.held_back.push((time, batch));
                None
            }
            _ => Some(batch),
        }
    }

    /// The least watermark among held-back batches. The input frontier has moved past
    /// them, since they were received; an operator that acts on the watermark (closing
    /// windows) must not act beyond this until they are applied.
    pub(crate) fn held_back_watermark(&self) -> Option<u64> {
        self.held_back.iter().map(|(time, _)| time.inner).min()
    }

    /// The held-back batches that `owed` (or, with nothing owed, no checkpoint) no longer
    /// holds back, in arrival order.
    pub(crate) fn release(&mut self, owed: Option<Request>) -> Vec<B> {
        let (released, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held_back)
            .into_iter()
            .partition(|(time, _)| owed.is_none_or(|request| request.includes(time.outer)));
        self.held_back = kept;
        released.into_iter().map(|(_, batch)| batch).collect()
    }

    /// Hands in the operator's part if `frontier` shows it has seen everything `owed`
    /// takes; `write` adds the part to the batch. Returns whether it was handed in, in which
    /// case the operator forgets what it wrote and applies [`CheckpointGate::release`]`(None)`.
    pub(crate) fn try_hand_in(
        &mut self,
        state: Option<&OperatorState>,
        owed: Option<Request>,
        frontier: &[crate::epoch::Time],
        write: impl FnOnce(&StateDb, &mut WriteBatch) -> Result<(), String>,
    ) -> bool {
        let (Some(state), Some(participant), Some(request)) = (state, self.participant, owed)
        else {
            return false;
        };
        if !request.is_complete_for(frontier) {
            return false;
        }
        // A part for a checkpoint that became final meanwhile is refused; the operator keeps
        // its changes and hands them in to the final one.
        if state.contribute(participant, request, write) {
            self.handed_in = Some(request);
            true
        } else {
            false
        }
    }
}

impl<D> CheckpointGate<Vec<D>> {
    /// For operators without outputs (views): hands `keep` every container to apply now,
    /// held-back ones first, and holds back the rest.
    pub(crate) fn take_input<P>(
        &mut self,
        owed: Option<Request>,
        input: &mut InputHandleCore<crate::epoch::Time, Vec<D>, P>,
        mut keep: impl FnMut(Vec<D>),
    ) where
        P: Pull<Message<crate::epoch::Time, Vec<D>>>,
    {
        for records in self.release(owed) {
            keep(records);
        }
        input.for_each(|stamp, batch| {
            let Some(time) = crate::epoch::stamp_time(stamp.stamp()) else {
                return;
            };
            if let Some(records) = self.admit(owed, time, std::mem::take(batch)) {
                keep(records);
            }
        });
    }
}
