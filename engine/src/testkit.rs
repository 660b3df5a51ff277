//! Runs a topology to completion over in-memory input, without a broker: for the in-process
//! benchmark and for tests of topologies.
//!
//! The sources read the given records and end, which takes a final checkpoint: the views
//! are then in the state directory and every output record in a [`MemoryOutput`]. Windows
//! that the input's watermark did not pass stay open, as they would in a running engine.
//! [`resume_to_completion`] continues from a state directory's last checkpoint, reading
//! each partition from its checkpointed offset, as a restarted engine does.
//! [`TopologyTestDriver`] builds on it to step a topology through a test.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sluice_state::StateDb;

use crate::checkpoint::{Checkpoint, Checkpointer, fingerprint};
use crate::dsl::TopologyFn;
use crate::error::EngineError;
use crate::kafka::KafkaSettings;
use crate::output::MemoryOutput;
use crate::plan::Plan;
use crate::runtime::{InputMode, RunEnv, open_state, plan_of, spawn_workers};
use crate::status::EngineStatus;

pub use crate::render::reader::{MemoryInput, MemoryRecord};
pub use crate::test_driver::{OutputEvent, TopologyTestDriver};

/// What a completed run left behind.
pub struct CompletedRun {
    /// The topology's plan.
    pub plan: Plan,
    /// The views.
    pub state: Arc<StateDb>,
    /// Every record written to a topic.
    pub output: Arc<MemoryOutput>,
    /// Counters: processed, late, dead-lettered, emitted.
    pub status: Arc<EngineStatus>,
    /// The final checkpoint the run committed.
    pub checkpoint: Option<Checkpoint>,
}

/// Runs `topology` over `input` with `workers` threads and ticks of `tick_ms`, keeping its
/// views in `state_dir` (which is wiped first).
pub fn run_to_completion(
    topology: TopologyFn,
    input: MemoryInput,
    state_dir: &Path,
    workers: usize,
    tick_ms: i64,
) -> Result<CompletedRun, EngineError> {
    StateDb::destroy(state_dir)?;
    resume_to_completion(topology, input, state_dir, workers, tick_ms)
}

/// Like [`run_to_completion`], but continues from the last checkpoint in `state_dir`:
/// each partition of `input` is read from its checkpointed offset on.
pub fn resume_to_completion(
    topology: TopologyFn,
    input: MemoryInput,
    state_dir: &Path,
    workers: usize,
    tick_ms: i64,
) -> Result<CompletedRun, EngineError> {
    // Only the final checkpoint: a run to completion has no crash to survive.
    resume_with_checkpoints(topology, input, state_dir, workers, tick_ms, Duration::MAX)
}

/// Like [`resume_to_completion`], taking a checkpoint every `interval` on the way, as a
/// running engine does: for tests that the checkpoints change no result.
pub fn resume_with_checkpoints(
    topology: TopologyFn,
    input: MemoryInput,
    state_dir: &Path,
    workers: usize,
    tick_ms: i64,
    interval: Duration,
) -> Result<CompletedRun, EngineError> {
    let plan = plan_of(&topology);
    let tick_ms = tick_ms.max(1);
    let (state, restored) = open_state(state_dir, &plan)?;
    let output = Arc::new(MemoryOutput::default());
    let status = Arc::new(EngineStatus::new());
    let shutdown = Arc::new(AtomicBool::new(false));
    let workers = workers.max(1);
    let checkpointer = Arc::new(Checkpointer::new(
        Arc::clone(&state),
        Arc::clone(&status),
        Arc::clone(&shutdown),
        fingerprint(&plan),
        interval,
        workers,
        restored.as_ref(),
    ));
    let env = Arc::new(RunEnv {
        settings: KafkaSettings::new("in-memory"),
        partitions: input.partition_counts(),
        input: InputMode::Memory(input),
        db: Arc::clone(&state),
        output: Arc::clone(&output) as Arc<dyn crate::output::OutputSink>,
        status: Arc::clone(&status),
        shutdown,
        tick_ms,
        checkpointer,
        restored,
        start_offsets: Default::default(),
        moved_offsets: Default::default(),
        on_missing_offsets: Default::default(),
        exactly_once: false,
        idle_timeout: None,
        idle_boards: Default::default(),
        worker_consumers: Default::default(),
    });
    let guards = spawn_workers(workers, env, topology)?;
    for result in guards.join() {
        result.map_err(|panic| EngineError::Dataflow(format!("a worker failed: {panic}")))?;
    }
    if let Some(fatal) = status.fatal() {
        return Err(EngineError::Dataflow(fatal));
    }
    Ok(CompletedRun {
        checkpoint: status.checkpoint(),
        plan,
        state,
        output,
        status,
    })
}
