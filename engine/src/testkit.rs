//! Runs a topology to completion over in-memory input, without a broker: for the in-process
//! benchmark and for tests of topologies.
//!
//! The sources read the given records and end; the views are then in the state directory
//! and every output record in a [`MemoryOutput`]. Windows that the input's watermark did not
//! pass stay open, as they would in a running engine.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sluice_state::StateDb;

use crate::dsl::TopologyFn;
use crate::error::EngineError;
use crate::kafka::KafkaSettings;
use crate::output::MemoryOutput;
use crate::plan::Plan;
use crate::runtime::{InputMode, RunEnv, plan_of, spawn_workers};
use crate::status::EngineStatus;

pub use crate::render::reader::{MemoryInput, MemoryRecord};

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
    let plan = plan_of(&topology);
    StateDb::destroy(state_dir)?;
    let state = Arc::new(StateDb::open(
        state_dir,
        plan.views.iter().map(|view| view.name.as_str()),
    )?);
    let output = Arc::new(MemoryOutput::default());
    let status = Arc::new(EngineStatus::new());
    let env = Arc::new(RunEnv {
        settings: KafkaSettings::new("in-memory"),
        partitions: input.partition_counts(),
        input: InputMode::Memory(input),
        db: Arc::clone(&state),
        output: Arc::clone(&output) as Arc<dyn crate::output::OutputSink>,
        status: Arc::clone(&status),
        shutdown: Arc::new(AtomicBool::new(false)),
        tick_ms: tick_ms.max(1),
    });
    let guards = spawn_workers(workers.max(1), env, topology)?;
    for result in guards.join() {
        result.map_err(|panic| EngineError::Dataflow(format!("a worker failed: {panic}")))?;
    }
    if let Some(fatal) = status.fatal() {
        return Err(EngineError::Dataflow(fatal));
    }
    Ok(CompletedRun {
        plan,
        state,
        output,
        status,
    })
}
