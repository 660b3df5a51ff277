//! The checkpoint coordinator, shared by every worker of a process.
//!
//! Participants (sources and stateful operators, on every worker) register while the
//! dataflow is built. The coordinator opens an epoch at each interval; each participant
//! hands in its part once it has seen every record of the older epochs, and the last part
//! commits the whole batch. Only one checkpoint is in flight at a time.
//!
//! The commit waits for the output of the records it takes to be acknowledged, then
//! writes the batch. It does so on a thread of its own, without holding the coordinator's
//! lock, which every operator takes on every activation: every worker goes on processing
//! meanwhile, the one that happened to hand in last too (it was often the busiest, whose
//! operator is slowest to reach the cut). The next checkpoint opens only once the commit
//! is written, so batches are written in order, and the workers, once their dataflow has
//! ended, join the commit thread before they stop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sluice_state::{StateDb, WriteBatch};
use tracing::{debug, error, trace};

use super::catch_up::{CatchUp, DEFAULT_MIN_STRETCH};
use super::output_wait::{OutputWait, STOPPING_WAIT};
use super::record::{Checkpoint, SourcePosition, least_watermark};
use crate::kafka::outbox::OUTBOX_KEY;
use crate::output::OutputSink;
use crate::readiness::Phase;
use crate::status::EngineStatus;

/// Identifies a participant across all workers.
pub type ParticipantId = usize;

/// A checkpoint in flight, as participants see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The epoch it opened; it takes every record of the epochs before.
    pub epoch: u64,
    /// Whether the sources are stopping: the checkpoint takes every record read.
    pub is_final: bool,
}

impl Request {
    /// Whether a record or change at epoch `epoch` belongs to this checkpoint.
    pub fn includes(&self, epoch: u64) -> bool {
        self.is_final || epoch < self.epoch
    }

    /// Whether an operator whose input frontier is `frontier` has seen everything this
    /// checkpoint takes.
    pub fn is_complete_for(&self, frontier: &[crate::epoch::Time]) -> bool {
        if self.is_final {
            frontier.is_empty()
        } else {
            crate::epoch::epochs_done_before(frontier, self.epoch)
        }
    }
}

/// Gathers contributions and commits checkpoints.
pub struct Checkpointer {
    db: Arc<StateDb>,
    status: Arc<EngineStatus>,
    shutdown: Arc<AtomicBool>,
    fingerprint: String,
    interval: Duration,
    workers: usize,
    /// Flushed before each commit, so that no checkpoint gets ahead of output that was not
    /// acknowledged (what makes output at least once across crashes).
    output: Option<Arc<dyn OutputSink>>,
    progress: Mutex<Progress>,
}

struct Progress {
    participants: usize,
    sources: BTreeSet<ParticipantId>,
    ready_workers: usize,
    /// The latest epoch opened.
    epoch: u64,
    in_flight: Option<InFlight>,
    /// A checkpoint whose parts are all in is being written (by the commit thread, which
    /// ends when this turns false).
    committing: bool,
    /// The last commit thread, joined at the end: a run ends once its last checkpoint is
    /// written and the state the thread holds is let go (a test driver opens the same
    /// state directory again at once).
    commit_thread: Option<std::thread::JoinHandle<()>>,
    /// Sources that stopped; they count as contributors from now.
    retired: BTreeSet<ParticipantId>,
    /// Where the partitions of stopped sources stopped. A source may stop after its cut for
    /// the checkpoint in flight: that checkpoint takes the cut, every later one this.
    stopped_at: BTreeMap<(String, i32), SourcePosition>,
    /// The positions of the last commit, carried into the next.
    positions: BTreeMap<(String, i32), SourcePosition>,
    last_id: u64,
    last_started: Instant,
    /// Opens a checkpoint as soon as the sources finish catching up.
    catch_up: CatchUp,
    finished: bool,
}

impl Progress {
    /// Whether every source of every worker (all `workers` built) has stopped.
    fn all_sources_stopped(&self, workers: usize) -> bool {
        self.ready_workers >= workers && self.sources.iter().all(|id| self.retired.contains(id))
    }
}

/// Records where partitions stood, replacing what was known of them.
fn keep_positions(
    known: &mut BTreeMap<(String, i32), SourcePosition>,
    positions: Vec<SourcePosition>,
) {
    for position in positions {
        known.insert((position.topic.clone(), position.partition), position);
    }
}

struct InFlight {
    request: Request,
    batch: WriteBatch,
    contributed: BTreeSet<ParticipantId>,
    positions: BTreeMap<(String, i32), SourcePosition>,
    started: Instant,
}

impl Checkpointer {
    /// A coordinator for `workers` workers that continues after `restored`, if any.
    pub fn new(
        db: Arc<StateDb>,
        status: Arc<EngineStatus>,
        shutdown: Arc<AtomicBool>,
        fingerprint: String,
        interval: Duration,
        workers: usize,
        restored: Option<&Checkpoint>,
    ) -> Self {
        let mut positions = BTreeMap::new();
        if let Some(checkpoint) = restored {
            keep_positions(&mut positions, checkpoint.positions.clone());
        }
        Checkpointer {
            db,
            status,
            shutdown,
            fingerprint,
            interval,
            workers: workers.max(1),
            output: None,
            progress: Mutex::new(Progress {
                participants: 0,
                sources: BTreeSet::new(),
                ready_workers: 0,
                epoch: restored.map_or(0, |checkpoint| checkpoint.epoch),
                in_flight: None,
                committing: false,
                commit_thread: None,
                retired: BTreeSet::new(),
                stopped_at: BTreeMap::new(),
                positions,
                last_id: restored.map_or(0, |checkpoint| checkpoint.id),
                last_started: Instant::now(),
                catch_up: CatchUp::new(DEFAULT_MIN_STRETCH),
                finished: false,
            }),
        }
    }

    /// Flushes `output` before every commit.
    pub fn with_output(mut self, output: Arc<dyn OutputSink>) -> Self {
        self.output = Some(output);
        self
    }

    /// Opens a checkpoint early when the sources catch up after reading behind for at least
    /// `min_stretch` (see [`super::catch_up`]); `Duration::ZERO` after any lag at all.
    pub fn with_catch_up_stretch(self, min_stretch: Duration) -> Self {
        self.lock().catch_up = CatchUp::new(min_stretch);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        // A participant that panicked while holding the lock left its part unwritten, not
        // the structure broken; the worker's panic stops the engine anyway.
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The epoch a (restored) dataflow starts in.
    pub fn current_epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Registers a participant; `is_source` for sources, which stop and retire.
    pub fn register(&self, is_source: bool) -> ParticipantId {
        let mut progress = self.lock();
        let id = progress.participants;
        progress.participants += 1;
        if is_source {
            progress.sources.insert(id);
            progress.catch_up.source_registered(id, Instant::now());
        }
        id
    }

    /// Says that a worker has built its dataflow, with all its participants registered.
    pub fn worker_ready(self: &Arc<Self>) {
        let mut progress = self.lock();
        progress.ready_workers += 1;
        if progress.ready_workers == self.workers {
            // Every operator has loaded its state: the start-up moves on to catching up,
            // or past it if the sources already found themselves at the ends.
            self.status.readiness.enter(Phase::CatchingUp);
            if progress.catch_up.all_caught_up() {
                self.status.readiness.enter(Phase::Running);
            }
        }
        // Sources that stopped before every worker was built (no partitions, or input
        // that ran out at once) could not begin the final checkpoint; the last worker does.
        self.begin_final_if_stopped(&mut progress);
        self.commit_if_complete(progress);
    }

    /// The checkpoint in flight, if any.
    pub fn request(&self) -> Option<Request> {
        self.lock().in_flight.as_ref().map(|flight| flight.request)
    }

    /// Whether every source of every worker has stopped, so that they may all let go of
    /// their partitions' watermarks.
    pub fn all_sources_stopped(&self) -> bool {
        self.lock().all_sources_stopped(self.workers)
    }

    /// Once every source has stopped, the least watermark among the partitions of `topics`
    /// where they stopped: how far the stream of an operator that reads those topics had
    /// got. Partitions that never read a record do not count; `None` when none did.
    pub fn stopped_watermark(&self, topics: &[String]) -> Option<u64> {
        let progress = self.lock();
        if !progress.all_sources_stopped(self.workers) {
            return None;
        }
        least_watermark(
            progress
                .stopped_at
                .values()
                .filter(|position| topics.contains(&position.topic)),
        )
    }

    /// Opens the next epoch if the interval has passed, or the sources have just caught
    /// up, and no checkpoint is in flight.
    pub fn maybe_begin(&self) {
        let mut progress = self.lock();
        self.begin_if_due(&mut progress);
    }

    fn begin_if_due(&self, progress: &mut Progress) {
        if progress.in_flight.is_some()
            || progress.committing
            || progress.finished
            || progress.ready_workers < self.workers
            || progress.all_sources_stopped(self.workers)
            || (progress.last_started.elapsed() < self.interval && !progress.catch_up.has_ended())
        {
            return;
        }
        open(progress, false, self.output.as_deref());
    }

    /// Says whether source `participant` has read everything its partitions are known to
    /// hold; called when that changes. The end of a catch-up opens a checkpoint at once.
    pub fn report_caught_up(&self, participant: ParticipantId, caught_up: bool) {
        let mut progress = self.lock();
        progress
            .catch_up
            .report(participant, caught_up, Instant::now());
        if caught_up {
            // The first catch-up after every worker was built ends the start-up.
            if progress.ready_workers == self.workers && progress.catch_up.all_caught_up() {
                self.status.readiness.enter(Phase::Running);
            }
            self.begin_if_due(&mut progress);
        }
    }

    /// Hands in a participant's part of the checkpoint `request`: `positions` for a source,
    /// and whatever `write` adds to the batch. Returns whether it was taken: a part for a
    /// checkpoint no longer in flight (it became final meanwhile) is not, and the
    /// participant keeps its changes for the next one.
    pub fn contribute(
        self: &Arc<Self>,
        participant: ParticipantId,
        request: Request,
        positions: Vec<SourcePosition>,
        write: impl FnOnce(&mut WriteBatch) -> Result<(), String>,
    ) -> bool {
        let mut progress = self.lock();
        if progress.finished {
            return false;
        }
        let Some(flight) = progress.in_flight.as_mut() else {
            return false;
        };
        if flight.request != request {
            return false;
        }
        if let Err(reason) = write(&mut flight.batch) {
            stop_checkpointing(&mut progress);
            drop(progress);
            self.fail(&reason);
            return false;
        }
        keep_positions(&mut flight.positions, positions);
        flight.contributed.insert(participant);
        // When each part came in: the last one decides how long the checkpoint gathers
        // (scripts/checkpoint-parts.py reads these, with the `checkpoint participant` lines).
        trace!(
            participant,
            epoch = request.epoch,
            since_open_us = flight.started.elapsed().as_micros() as u64,
            "checkpoint part in"
        );
        self.commit_if_complete(progress);
        true
    }

    /// Says that a source has stopped for good after handing in `positions`: it counts as a
    /// contributor to every later checkpoint. When the last source stops, the final
    /// checkpoint begins (or the one in flight becomes final).
    pub fn retire(self: &Arc<Self>, participant: ParticipantId, positions: Vec<SourcePosition>) {
        let mut progress = self.lock();
        progress.retired.insert(participant);
        progress.catch_up.report(participant, true, Instant::now());
        keep_positions(&mut progress.stopped_at, positions.clone());
        keep_positions(&mut progress.positions, positions);
        self.begin_final_if_stopped(&mut progress);
        self.commit_if_complete(progress);
    }

    /// Begins the final checkpoint, or makes the one in flight final, once every source of
    /// every worker has stopped.
    fn begin_final_if_stopped(&self, progress: &mut Progress) {
        if progress.finished || !progress.all_sources_stopped(self.workers) {
            return;
        }
        let retired = progress.retired.clone();
        match progress.in_flight.as_mut() {
            None => open(progress, true, self.output.as_deref()),
            Some(flight) if !flight.request.is_final => {
                // Everyone hands in again, up to everything: what was handed in so far stays in
                // the batch, and later parts overwrite it where they overlap.
                flight.request.is_final = true;
                if let Some(output) = &self.output {
                    output.cut(u64::MAX);
                }
                flight.contributed = retired;
                // The stopped sources' final positions, kept by `retire`, replace the cut.
                flight.positions.clear();
            }
            Some(_) => {}
        }
    }

    /// Commits the checkpoint in flight if every part is in, on a thread of its own that
    /// then commits any checkpoint that completed while it was being written (a final one).
    fn commit_if_complete(self: &Arc<Self>, mut progress: MutexGuard<'_, Progress>) {
        let Some(complete) = self.take_complete(&mut progress) else {
            return;
        };
        progress.committing = true;
        drop(progress);
        let checkpointer = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("sluice-commit".to_string())
            .spawn(move || checkpointer.commit_in_turn(complete));
        let mut progress = self.lock();
        match spawned {
            Ok(thread) => {
                // The one before has written its last commit: it only has its exit left.
                if let Some(before) = progress.commit_thread.replace(thread) {
                    drop(progress);
                    if before.join().is_err() {
                        error!("the commit thread panicked");
                    }
                }
            }
            Err(error) => {
                progress.committing = false;
                stop_checkpointing(&mut progress);
                drop(progress);
                self.fail(&format!("cannot start the commit thread: {error}"));
            }
        }
    }

    /// Writes `complete`, then each checkpoint that completed meanwhile, in order.
    fn commit_in_turn(&self, complete: (Checkpoint, WriteBatch, Instant)) {
        let mut next = Some(complete);
        while let Some((mut checkpoint, batch, started)) = next.take() {
            let written = self.write(&mut checkpoint, batch, started);
            let mut progress = self.lock();
            progress.committing = false;
            match written {
                Ok(()) => {
                    debug!(
                        id = checkpoint.id,
                        epoch = checkpoint.epoch,
                        ms = checkpoint.duration_ms,
                        "checkpoint committed"
                    );
                    progress.last_id = checkpoint.id;
                    progress.finished = checkpoint.is_final;
                    self.status.checkpoint_committed(checkpoint);
                    next = self.take_complete(&mut progress);
                    progress.committing = next.is_some();
                }
                Err(reason) => {
                    // Before the lock is let go: nothing may open or complete after this.
                    stop_checkpointing(&mut progress);
                    drop(progress);
                    self.fail(&reason);
                }
            }
        }
    }

    /// Joins the last commit thread, which ends once no checkpoint is left to write. Every
    /// worker whose dataflow has ended calls it; the one that started that thread stored
    /// it before, so one of them waits for it, and the run (which joins all workers) ends
    /// only once its last checkpoint is written or has failed.
    pub fn wait_for_commit(&self) {
        let thread = self.lock().commit_thread.take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            error!("the commit thread panicked");
        }
    }

    /// Takes the checkpoint in flight once every participant has handed in, with the
    /// batch to write: what it records and where every partition stood.
    fn take_complete(&self, progress: &mut Progress) -> Option<(Checkpoint, WriteBatch, Instant)> {
        let complete = progress.ready_workers >= self.workers
            && !progress.committing
            && !progress.finished
            && progress
                .in_flight
                .as_ref()
                .is_some_and(|flight| flight.contributed.len() >= progress.participants);
        if !complete {
            return None;
        }
        let flight = progress.in_flight.take()?;
        let mut positions = std::mem::take(&mut progress.positions);
        positions.extend(flight.positions);
        let checkpoint = Checkpoint {
            id: progress.last_id + 1,
            epoch: flight.request.epoch,
            is_final: flight.request.is_final,
            watermark: least_watermark(positions.values()).unwrap_or(0),
            positions: positions.values().cloned().collect(),
            // Set when it is written.
            committed_at: 0,
            duration_ms: 0,
            fingerprint: self.fingerprint.clone(),
        };
        // Sources that stopped after their cut for this checkpoint stand where they stopped
        // in every later one: they read nothing more, and what they read after the cut
        // belongs to the next checkpoint.
        positions.extend(progress.stopped_at.clone());
        progress.positions = positions;
        Some((checkpoint, flight.batch, flight.started))
    }

    /// Waits for the output of the checkpoint's records, then writes its batch.
    fn write(
        &self,
        checkpoint: &mut Checkpoint,
        batch: WriteBatch,
        started: Instant,
    ) -> Result<(), String> {
        let parts_in = started.elapsed();
        // Every participant, sinks included, has handed its output to the producer; once it
        // is acknowledged, the offsets may move past the records it came from.
        let outbox = match &self.output {
            Some(output) => {
                let wait = OutputWait::new(&self.status, &self.shutdown, checkpoint.is_final);
                match output.prepare(&wait) {
                    Ok(outbox) => outbox,
                    Err(error) => {
                        output.abort();
                        return Err(match wait.gave_up_with() {
                            Some(unacknowledged) => format!(
                                "the engine was asked to stop, and the broker did not acknowledge {unacknowledged} output records within {} s; the next run writes them again from checkpoint {}",
                                STOPPING_WAIT.as_secs(),
                                checkpoint.id - 1
                            ),
                            None => format!("output was not acknowledged: {error}"),
                        });
                    }
                }
            }
            None => None,
        };
        let acknowledged = started.elapsed();
        checkpoint.committed_at = chrono::Utc::now().timestamp_millis();
        checkpoint.duration_ms = started.elapsed().as_millis() as u64;
        let (entries, bytes) = (batch.len(), batch.size_in_bytes());
        let written = self.write_batch(checkpoint, batch, outbox.as_deref());
        // Where a checkpoint's time goes: gathering the parts, the broker's acknowledgement
        // of the output, and the batch write, with the batch's size.
        debug!(
            id = checkpoint.id,
            parts_ms = parts_in.as_millis() as u64,
            acknowledged_ms = (acknowledged - parts_in).as_millis() as u64,
            written_ms = (started.elapsed() - acknowledged).as_millis() as u64,
            entries,
            bytes,
            "checkpoint written"
        );
        let Some(output) = &self.output else {
            return written;
        };
        if let Err(reason) = written {
            output.abort();
            return Err(reason);
        }
        // Exactly-once output becomes visible only now, after the state that matches it.
        if let Err(error) = output.commit(checkpoint) {
            output.abort();
            return Err(format!("output transaction did not commit: {error}"));
        }
        if outbox.is_some() {
            // The transaction committed: a restart must not write its output again.
            let meta = self.db.meta().map_err(|error| error.to_string())?;
            let mut done = WriteBatch::default();
            meta.delete_into(&mut done, OUTBOX_KEY);
            self.db.write(done).map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    /// Writes the batch with the checkpoint record and, under exactly-once output, the
    /// outbox of its transaction.
    fn write_batch(
        &self,
        checkpoint: &Checkpoint,
        mut batch: WriteBatch,
        outbox: Option<&[u8]>,
    ) -> Result<(), String> {
        let json = serde_json::to_vec(checkpoint).map_err(|error| error.to_string())?;
        let meta = self.db.meta().map_err(|error| error.to_string())?;
        meta.put_into(&mut batch, Checkpoint::KEY, &json);
        let Some(outbox) = outbox else {
            // At-least-once output may be written again; a batch lost to a power loss
            // only means that.
            return self.db.write(batch).map_err(|error| error.to_string());
        };
        meta.put_into(&mut batch, OUTBOX_KEY, outbox);
        // Synced: the transaction commits right after, and its output must never be ahead
        // of a batch that a power loss could still take back.
        self.db
            .write_durably(batch)
            .map_err(|error| error.to_string())
    }

    fn fail(&self, reason: &str) {
        error!(reason, "cannot write a checkpoint; stopping");
        stop_checkpointing(&mut self.lock());
        self.status
            .set_fatal(format!("cannot write a checkpoint: {reason}"));
        self.shutdown.store(true, Ordering::Relaxed);
    }
}

/// After a failed checkpoint, no later one may be written: under exactly-once output it
/// would replace the outbox of a transaction that did not commit, or take records whose
/// output was never sent. The engine stops; a restart continues from what was written.
fn stop_checkpointing(progress: &mut Progress) {
    progress.finished = true;
    progress.in_flight = None;
}

fn open(progress: &mut Progress, is_final: bool, output: Option<&dyn OutputSink>) {
    progress.epoch += 1;
    // Under the lock, before any source can see the new epoch.
    if let Some(output) = output
        && !is_final
    {
        output.cut(progress.epoch);
    }
    progress.last_started = Instant::now();
    progress.catch_up.checkpoint_opened();
    progress.in_flight = Some(InFlight {
        request: Request {
            epoch: progress.epoch,
            is_final,
        },
        batch: WriteBatch::default(),
        contributed: progress.retired.clone(),
        positions: BTreeMap::new(),
        started: Instant::now(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(partition: i32, offset: i64) -> SourcePosition {
        SourcePosition {
            topic: "t".to_string(),
            partition,
            offset,
            max_event_time: Some(offset * 1000),
            watermark: offset as u64 * 1000,
            unread: false,
        }
    }

    fn coordinator(dir: &std::path::Path) -> Arc<Checkpointer> {
        Arc::new(unshared_coordinator(dir))
    }

    fn unshared_coordinator(dir: &std::path::Path) -> Checkpointer {
        coordinator_every(dir, Duration::ZERO)
    }

    fn coordinator_every(dir: &std::path::Path, interval: Duration) -> Checkpointer {
        let db = Arc::new(StateDb::open(dir, []).expect("state opens"));
        Checkpointer::new(
            db,
            Arc::new(EngineStatus::new()),
            Arc::new(AtomicBool::new(false)),
            "fingerprint".to_string(),
            interval,
            1,
            None,
        )
    }

    #[test]
    fn sources_that_catch_up_open_a_checkpoint_long_before_the_interval() {
        let dir = tempfile::tempdir().expect("dir");
        let checkpointer = Arc::new(
            coordinator_every(dir.path(), Duration::from_secs(3_600))
                .with_catch_up_stretch(Duration::ZERO),
        );
        let first = checkpointer.register(true);
        let second = checkpointer.register(true);
        checkpointer.worker_ready();
        checkpointer.maybe_begin();
        assert_eq!(checkpointer.request(), None, "the interval has not passed");
        checkpointer.report_caught_up(first, true);
        assert_eq!(checkpointer.request(), None, "the second source is behind");
        checkpointer.report_caught_up(second, true);
        let request = checkpointer.request().expect("the catch-up ended");
        assert!(checkpointer.contribute(first, request, vec![position(0, 7)], |_| Ok(())));
        assert!(checkpointer.contribute(second, request, vec![position(1, 9)], |_| Ok(())));
        checkpointer.wait_for_commit();
        assert_eq!(checkpointer.status.checkpoint().map(|c| c.id), Some(1));
        // Caught up and staying so, the sources wait for the interval again.
        checkpointer.maybe_begin();
        assert_eq!(checkpointer.request(), None);
    }

    fn offsets(checkpoint: &Checkpoint) -> Vec<(i32, i64)> {
        checkpoint
            .positions
            .iter()
            .map(|position| (position.partition, position.offset))
            .collect()
    }

    #[test]
    fn a_source_that_stops_after_its_cut_stands_where_it_stopped_afterwards() {
        let dir = tempfile::tempdir().expect("dir");
        let checkpointer = coordinator(dir.path());
        let early = checkpointer.register(true);
        let late = checkpointer.register(true);
        let window = checkpointer.register(false);
        checkpointer.worker_ready();
        checkpointer.maybe_begin();
        let request = checkpointer.request().expect("a checkpoint began");
        assert!(checkpointer.contribute(early, request, vec![position(0, 10)], |_| Ok(())));
        assert!(checkpointer.contribute(late, request, vec![position(1, 20)], |_| Ok(())));
        // The source reads on after its cut, then stops before the checkpoint completes.
        checkpointer.retire(late, vec![position(1, 35)]);
        assert!(checkpointer.contribute(window, request, Vec::new(), |_| Ok(())));
        checkpointer.wait_for_commit();
        let status = &checkpointer.status;
        let first = status.checkpoint().expect("committed");
        // The checkpoint takes the cut: what was read after it is not in its state.
        assert_eq!(offsets(&first), vec![(0, 10), (1, 20)]);

        checkpointer.retire(early, vec![position(0, 12)]);
        assert_eq!(checkpointer.stopped_watermark(&["t".into()]), Some(12_000));
        // Another topic's operators do not close windows by this topic's watermark.
        assert_eq!(checkpointer.stopped_watermark(&["other".into()]), None);
        let last = checkpointer.request().expect("the final checkpoint began");
        assert!(last.is_final);
        assert!(checkpointer.contribute(window, last, Vec::new(), |_| Ok(())));
        checkpointer.wait_for_commit();
        let final_checkpoint = status.checkpoint().expect("committed");
        assert!(final_checkpoint.is_final);
        assert_eq!(offsets(&final_checkpoint), vec![(0, 12), (1, 35)]);
    }

    /// Output whose acknowledgement waits until the test lets it go.
    struct HeldAcknowledgement {
        released: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl OutputSink for HeldAcknowledgement {
        fn send(&self, _record: &crate::output::OutputRecord<'_>) {}

        fn flush(
            &self,
            _patience: &dyn crate::output::Patience,
        ) -> Result<(), crate::error::EngineError> {
            Ok(())
        }

        fn prepare(
            &self,
            _patience: &dyn crate::output::Patience,
        ) -> Result<Option<Vec<u8>>, crate::error::EngineError> {
            self.released
                .lock()
                .map_err(|error| crate::error::EngineError::Dataflow(error.to_string()))?
                .recv_timeout(Duration::from_secs(30))
                .map_err(|error| crate::error::EngineError::Dataflow(error.to_string()))?;
            Ok(None)
        }
    }

    #[test]
    fn the_last_part_in_does_not_wait_for_the_broker_and_a_stopping_worker_does() {
        let dir = tempfile::tempdir().expect("dir");
        let (release, released) = std::sync::mpsc::channel();
        let checkpointer = Arc::new(unshared_coordinator(dir.path()).with_output(Arc::new(
            HeldAcknowledgement {
                released: Mutex::new(released),
            },
        )));
        let source = checkpointer.register(true);
        checkpointer.worker_ready();
        checkpointer.maybe_begin();
        let first = checkpointer.request().expect("began");
        // The part is taken and the worker goes on while the output is unacknowledged.
        assert!(checkpointer.contribute(source, first, vec![position(0, 5)], |_| Ok(())));
        assert!(checkpointer.status.checkpoint().is_none());
        assert!(checkpointer.lock().committing);
        // No checkpoint opens before this one is written.
        checkpointer.maybe_begin();
        assert_eq!(checkpointer.request(), None);

        let waiter = {
            let checkpointer = Arc::clone(&checkpointer);
            std::thread::spawn(move || {
                checkpointer.wait_for_commit();
                checkpointer
                    .status
                    .checkpoint()
                    .map(|checkpoint| checkpoint.id)
            })
        };
        release.send(()).expect("the commit thread waits");
        // The stopping worker returns only once the commit is written.
        assert_eq!(waiter.join().expect("no panic"), Some(1));
        checkpointer.maybe_begin();
        assert!(
            checkpointer
                .request()
                .is_some_and(|next| next.epoch > first.epoch)
        );
    }

    #[test]
    fn the_next_checkpoint_waits_for_the_commit_before_it() {
        let dir = tempfile::tempdir().expect("dir");
        let checkpointer = coordinator(dir.path());
        let source = checkpointer.register(true);
        checkpointer.worker_ready();
        checkpointer.maybe_begin();
        let first = checkpointer.request().expect("began");
        checkpointer.lock().committing = true;
        assert!(checkpointer.contribute(source, first, vec![position(0, 5)], |_| Ok(())));
        // All parts are in, but a commit is being written: this one waits its turn.
        assert!(checkpointer.status.checkpoint().is_none());
        checkpointer.maybe_begin();
        assert_eq!(checkpointer.request(), Some(first));
        let mut progress = checkpointer.lock();
        progress.committing = false;
        checkpointer.commit_if_complete(progress);
        checkpointer.wait_for_commit();
        assert_eq!(
            checkpointer
                .status
                .checkpoint()
                .map(|checkpoint| checkpoint.id),
            Some(1)
        );
    }
}
