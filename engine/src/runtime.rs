//! Running a topology: topic set-up, state, timely workers, the watermark monitor and the
//! HTTP API, started together and stopped cleanly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use sluice_state::StateDb;
use timely::CommunicationConfig;
use timely::WorkerConfig;
use tracing::{info, warn};

use crate::checkpoint::restore::restore;
use crate::checkpoint::{Checkpoint, Checkpointer, fingerprint};
use crate::dsl::{Topology, TopologyFn};
use crate::epoch::Time;
use crate::error::EngineError;
use crate::kafka::admin::{ensure_topics, offsets_at_time, partition_counts};
use crate::kafka::event_producer::{EventPublisher, KafkaEventProducer};
use crate::kafka::missing_offsets::{OffsetGap, OffsetReset, OnMissingOffsets, gaps_at_start};
use crate::kafka::monitor::spawn_watermark_monitor;
use crate::kafka::quiet_errors::QuietErrors;
use crate::kafka::{KafkaSettings, OutputProducer, TransactionalOutput};
use crate::monitoring::{Reporter, report_until_shutdown};
use crate::output::{OnOutputError, OutputSink};
use crate::plan::{Plan, describe};
use crate::query::access::ApiAccess;
use crate::query::admission::{Admission, HttpLimits};
use crate::query::gate::Gate;
use crate::query::server::HttpServer;
use crate::query::{QueryState, router};
use crate::readiness::Phase;
use crate::render::idle::IdleBoard;
use crate::render::reader::MemoryInput;
use crate::render::worker_consumer::WorkerConsumer;
use crate::replay::{
    ReplayFrom, ReplayOptions, ReplayOutput, ReplaySink, has_pending_outbox, previous_checkpoint,
    versioned_topic,
};
use crate::status::EngineStatus;

/// How to run a topology.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Kafka connection and client settings.
    pub kafka: KafkaSettings,
    /// Where RocksDB keeps the views.
    pub state_dir: PathBuf,
    /// Where to serve the HTTP API; `None` serves nothing.
    pub http_addr: Option<SocketAddr>,
    /// Whether the API needs a token, for writes or for everything.
    pub api_access: ApiAccess,
    /// Limits on request bodies, connections and live streams.
    pub http_limits: HttpLimits,
    /// Timely worker threads.
    pub workers: usize,
    /// Granularity of timely times, in milliseconds of event time. Coarser ticks mean
    /// larger bundles and higher throughput; windows close up to one tick later.
    pub tick_ms: i64,
    /// How long to keep retrying an unreachable broker at start.
    pub broker_timeout: Duration,
    /// Create missing topics at start. Off only for brokers that cannot (rdkafka's mock
    /// cluster does not answer CreateTopics), whose topics are made beforehand.
    pub create_topics: bool,
    /// How often to checkpoint offsets and state; views change at this pace.
    pub checkpoint_interval: Duration,
    /// A checkpoint also opens as soon as the sources catch up after reading behind for at
    /// least this long (see `checkpoint::catch_up`), so that the end of a replay or
    /// backlog shows in the views at once.
    pub catch_up_stretch: Duration,
    /// Replay instead of continuing: wipe the state and reprocess (the caller confirms).
    pub replay: Option<ReplayOptions>,
    /// Output through a transaction per checkpoint (see `kafka::transactional`) instead
    /// of at least once.
    pub exactly_once: bool,
    /// What to do with an output record the broker refuses for good.
    pub on_output_error: OnOutputError,
    /// What to do with a source partition whose next offset the log no longer holds.
    pub on_missing_offsets: OnMissingOffsets,
    /// The name processing reports give the engine, e.g. the topology binary's.
    pub component: String,
    /// How often to publish processing reports to `monitoring-events`.
    pub report_interval: Duration,
    /// Overrides every source's idle timeout (see [`crate::dsl::Source::idle_timeout`]):
    /// how long a silent partition may hold the watermark back. Idleness moves event time
    /// by the wall clock, so a run that must decide alike whatever its timing (a test, an
    /// audit replay) sets it longer than the run.
    pub idle_timeout: Option<Duration>,
}

impl EngineConfig {
    /// Defaults: one worker per core, 100 ms ticks, checkpoints every second, no HTTP.
    pub fn new(kafka: KafkaSettings, state_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            kafka,
            state_dir: state_dir.into(),
            http_addr: None,
            api_access: ApiAccess::default(),
            http_limits: HttpLimits::default(),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            tick_ms: 100,
            broker_timeout: Duration::from_secs(60),
            create_topics: true,
            checkpoint_interval: Duration::from_secs(1),
            catch_up_stretch: crate::checkpoint::catch_up::DEFAULT_MIN_STRETCH,
            component: "sluice".into(),
            report_interval: Duration::from_secs(10),
            replay: None,
            exactly_once: false,
            on_output_error: OnOutputError::Stop,
            on_missing_offsets: OnMissingOffsets::Fail,
            idle_timeout: None,
        }
    }
}

/// Where sources read from.
pub(crate) enum InputMode {
    /// Kafka, through the settings in [`RunEnv`].
    Kafka,
    /// Records held in memory; the sources end when they are read.
    Memory(MemoryInput),
}

/// What every worker shares while running.
pub(crate) struct RunEnv {
    pub settings: KafkaSettings,
    pub input: InputMode,
    pub partitions: BTreeMap<String, i32>,
    pub db: Arc<StateDb>,
    pub output: Arc<dyn OutputSink>,
    pub status: Arc<EngineStatus>,
    pub shutdown: Arc<AtomicBool>,
    pub tick_ms: i64,
    pub checkpointer: Arc<Checkpointer>,
    /// The checkpoint the run continues from, if any.
    pub restored: Option<Checkpoint>,
    /// Where partitions without a restored position start (a replay from a timestamp);
    /// offset zero otherwise.
    pub start_offsets: BTreeMap<(String, i32), i64>,
    /// Partitions whose restored offset the log no longer holds, and where
    /// `--on-missing-offsets` moved them; these start there instead.
    pub moved_offsets: BTreeMap<(String, i32), i64>,
    /// What sources do when a partition's next offset leaves the log while running.
    pub on_missing_offsets: OnMissingOffsets,
    /// Whether output is transactional; the offsets then reach the consumer group through
    /// the transactions, and sources commit none of their own.
    pub exactly_once: bool,
    /// The idle timeout that overrides every source's, if any.
    pub idle_timeout: Option<Duration>,
    /// Per source: where its partitions stand on every worker, for idle partitions.
    pub idle_boards: Mutex<BTreeMap<u32, Arc<IdleBoard>>>,
    /// Per worker, the Kafka consumer its sources share, while one of them reads.
    pub worker_consumers: Mutex<BTreeMap<i32, Weak<WorkerConsumer>>>,
}

impl RunEnv {
    /// The idle board of source `source`, shared by its `workers` workers.
    pub(crate) fn idle_board(&self, source: u32, workers: usize) -> Arc<IdleBoard> {
        let mut boards = self
            .idle_boards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(
            boards
                .entry(source)
                .or_insert_with(|| Arc::new(IdleBoard::new(workers))),
        )
    }

    /// The Kafka consumer of worker `worker`, created by its first source. Held by the
    /// sources alone, so that it closes when the last of them stops.
    pub(crate) fn worker_consumer(&self, worker: i32) -> Result<Arc<WorkerConsumer>, String> {
        let mut consumers = self
            .worker_consumers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(shared) = consumers.get(&worker).and_then(Weak::upgrade) {
            return Ok(shared);
        }
        let consumer = self
            .settings
            .consumer_config(&format!("sluice-w{worker}"))
            // An offset the log no longer holds is an error the sources handle as
            // --on-missing-offsets says (`render::reader`), never a silent reset.
            .set("auto.offset.reset", "error")
            .create_with_context(QuietErrors::default())
            .map_err(|error| format!("cannot create the consumer of worker {worker}: {error}"))?;
        let shared = Arc::new(WorkerConsumer::new(consumer));
        consumers.insert(worker, Arc::downgrade(&shared));
        Ok(shared)
    }
}

/// Where `policy` moves each partition of `gaps`, recorded in the status; or the refusal
/// that names them.
fn move_past(
    gaps: &[OffsetGap],
    policy: OnMissingOffsets,
    status: &EngineStatus,
) -> Result<BTreeMap<(String, i32), i64>, EngineError> {
    let mut moved = BTreeMap::new();
    for gap in gaps {
        let Some(to) = gap.moved_to(policy) else {
            let mut refusal = gap.refusal(&crate::checkpoint::restore::program_name());
            if gaps.len() > 1 {
                let others: Vec<String> = gaps[1..]
                    .iter()
                    .map(|other| {
                        format!("{}/{} from {}", other.topic, other.partition, other.needed)
                    })
                    .collect();
                refusal.push_str(&format!(" (also: {})", others.join(", ")));
            }
            return Err(EngineError::MissingOffsets(refusal));
        };
        warn!(
            topic = %gap.topic,
            partition = gap.partition,
            needed = gap.needed,
            moved_to = to,
            "{}; reading on from {to} as --on-missing-offsets says",
            gap.cause()
        );
        status.record_offset_reset(OffsetReset::of(gap, to, "start"));
        moved.insert((gap.topic.clone(), gap.partition), to);
    }
    Ok(moved)
}

/// Builds a topology without brokers, to learn its graph, topics and views.
pub fn plan_of(topology: &TopologyFn) -> Plan {
    let topology = Arc::clone(topology);
    timely::execute_directly(move |worker| {
        worker.dataflow::<u64, _, _>(|outer| {
            outer.scoped::<Time, _, _>("topology", |scope| {
                let mut builder = Topology::new(scope, None);
                topology(&mut builder);
                builder.finish()
            })
        })
    })
}

/// How long `POST /events` waits for the broker's acknowledgement before answering 503.
pub const EVENT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// A started engine.
pub struct RunningEngine {
    plan: Arc<Plan>,
    replay_target: Option<Checkpoint>,
    env: Arc<RunEnv>,
    workers: Option<timely::communication::WorkerGuards<()>>,
    monitor: Option<JoinHandle<()>>,
    /// Publishes processing reports; its last report follows the workers' last records.
    reporter: Option<tokio::task::JoinHandle<()>>,
    http: Option<HttpServer>,
}

/// Starts `topology`: creates its topics, opens its state and restores the last checkpoint
/// (refusing state written by a different topology), starts the workers and serves the HTTP
/// API. Without a checkpoint, the sources start at offset zero.
pub async fn start(
    config: EngineConfig,
    topology: TopologyFn,
) -> Result<RunningEngine, EngineError> {
    if config.exactly_once && config.on_output_error == OnOutputError::DeadLetter {
        return Err(EngineError::Config(
            "--on-output-error dead-letter cannot go with --exactly-once: a record the broker refuses aborts the whole transaction it is in, so there is no transaction left to send its dead letter in; use --on-output-error stop".into(),
        ));
    }
    let plan = Arc::new(plan_of(&topology));
    if plan.sources.is_empty() {
        return Err(EngineError::Topology("the topology reads no source".into()));
    }
    let status = Arc::new(EngineStatus::new());
    status.readiness.starting();
    // The HTTP server comes first, so that a restart answers from its first moment: 503
    // with the phase until there is state to serve (`query::gate`).
    let admission = Admission::new(config.api_access.clone(), config.http_limits);
    let gate = Gate::new(Arc::clone(&status), Arc::clone(&admission));
    let http = match config.http_addr {
        Some(addr) => Some(HttpServer::start(addr, gate.service(), Arc::clone(&admission)).await?),
        None => None,
    };
    let tick_ms = config.tick_ms.max(1);
    let replay_target = match &config.replay {
        Some(_) => {
            if has_pending_outbox(&config.state_dir)? {
                return Err(EngineError::Topology(format!(
                    "the state in {} holds an exactly-once transaction that may not have \
                     committed; run `{} run --exactly-once` on it once to settle it, then replay",
                    config.state_dir.display(),
                    crate::checkpoint::restore::program_name()
                )));
            }
            let previous = previous_checkpoint(&config.state_dir)?;
            StateDb::destroy(&config.state_dir)?;
            info!(
                state_dir = %config.state_dir.display(),
                "replaying: the state was wiped and every source rewinds"
            );
            previous
        }
        None => None,
    };
    std::fs::create_dir_all(&config.state_dir).map_err(|error| {
        let what = if config.state_dir.is_file() {
            format!(
                "creating the state directory {}, which is a file",
                config.state_dir.display()
            )
        } else {
            format!(
                "creating the state directory {}",
                config.state_dir.display()
            )
        };
        EngineError::io(what, error)
    })?;
    let (db, restored) = {
        let (state_dir, plan) = (config.state_dir.clone(), Arc::clone(&plan));
        tokio::task::spawn_blocking(move || open_state(&state_dir, &plan))
            .await
            .map_err(|error| EngineError::Dataflow(error.to_string()))??
    };
    if let Some(checkpoint) = &restored {
        info!(
            id = checkpoint.id,
            watermark = checkpoint.watermark,
            "restored the last checkpoint"
        );
        status.set_checkpoint(checkpoint.clone());
    }
    // One producer for the HTTP event API and the processing reports: both wait for the
    // broker's acknowledgement of each event. Made now (it needs no broker yet), so that
    // the API can go behind the gate.
    let publisher: Arc<dyn EventPublisher> = Arc::new(KafkaEventProducer::new(
        &config.kafka,
        EVENT_PUBLISH_TIMEOUT,
    )?);
    gate.open(router(
        QueryState::new(Arc::clone(&plan), Arc::clone(&db), Arc::clone(&status))
            .with_publisher(Arc::clone(&publisher))
            .with_admission(admission),
    ));
    status.readiness.enter(Phase::Connecting);
    let versioned = match &config.replay {
        Some(ReplayOptions {
            output: ReplayOutput::Versioned(version),
            ..
        }) => Some(version.clone()),
        _ => None,
    };
    let versioned_name = |topic: &String| match &versioned {
        Some(version) if !plan.sources.iter().any(|source| &source.topic == topic) => {
            versioned_topic(topic, version)
        }
        _ => topic.clone(),
    };
    // Where refused output goes under `--on-output-error dead-letter`: beside each output
    // topic as it is written (versioned in a versioned replay).
    let output_dead_letters: Vec<(String, String)> = match config.on_output_error {
        OnOutputError::Stop => Vec::new(),
        OnOutputError::DeadLetter => plan
            .sink_topics
            .iter()
            .map(|topic| {
                let written = versioned_name(topic);
                let dead_letters = format!("{written}.dlq");
                (written, dead_letters)
            })
            .collect(),
    };
    let mut topics: Vec<String> = plan.topics().iter().map(versioned_name).collect();
    topics.extend(output_dead_letters.iter().map(|(_, dlq)| dlq.clone()));
    topics.sort();
    topics.dedup();
    if config.create_topics {
        ensure_topics(&config.kafka, &topics, config.broker_timeout).await?;
    }
    let source_topics: Vec<String> = plan
        .sources
        .iter()
        .map(|source| source.topic.clone())
        .collect();
    let partitions = {
        let settings = config.kafka.clone();
        let timeout = config.broker_timeout;
        tokio::task::spawn_blocking(move || partition_counts(&settings, &source_topics, timeout))
            .await
            .map_err(|error| EngineError::Dataflow(error.to_string()))??
    };
    let start_offsets = match &config.replay {
        Some(ReplayOptions {
            from: ReplayFrom::Timestamp(timestamp),
            ..
        }) => {
            let settings = config.kafka.clone();
            let timeout = config.broker_timeout;
            let partitions = partitions.clone();
            let timestamp = *timestamp;
            tokio::task::spawn_blocking(move || {
                offsets_at_time(&settings, &partitions, timestamp, timeout)
            })
            .await
            .map_err(|error| EngineError::Dataflow(error.to_string()))??
        }
        _ => BTreeMap::new(),
    };
    status.set_missing_offsets_policy(config.on_missing_offsets);
    let moved_offsets = match &restored {
        Some(checkpoint) => {
            let needed: BTreeMap<(String, i32), i64> = partitions
                .iter()
                .flat_map(|(topic, count)| (0..*count).map(move |partition| (topic, partition)))
                .filter_map(|(topic, partition)| {
                    let position = checkpoint.position(topic, partition)?;
                    Some(((topic.clone(), partition), position.offset))
                })
                .collect();
            let settings = config.kafka.clone();
            let timeout = config.broker_timeout;
            let gaps =
                tokio::task::spawn_blocking(move || gaps_at_start(&settings, &needed, timeout))
                    .await
                    .map_err(|error| EngineError::Dataflow(error.to_string()))??;
            move_past(&gaps, config.on_missing_offsets, &status)?
        }
        None => BTreeMap::new(),
    };

    let producer: Arc<dyn OutputSink> = if config.exactly_once {
        let settings = config.kafka.clone();
        let status = Arc::clone(&status);
        let db = Arc::clone(&db);
        let restored = restored.clone();
        let transactional = tokio::task::spawn_blocking(move || {
            let output = TransactionalOutput::new(&settings, status)?;
            output.recover(&db, restored.as_ref())?;
            Ok::<_, EngineError>(output)
        })
        .await
        .map_err(|error| EngineError::Dataflow(error.to_string()))??;
        info!(
            transactional_id = %config.kafka.transactional_id(),
            "exactly-once output: one transaction per checkpoint"
        );
        Arc::new(transactional)
    } else {
        Arc::new(OutputProducer::new(
            &config.kafka,
            Arc::clone(&status),
            output_dead_letters,
        )?)
    };
    let output: Arc<dyn OutputSink> = match &config.replay {
        Some(replay) => Arc::new(ReplaySink::new(
            producer,
            &replay.output,
            replay_target.as_ref(),
            Arc::clone(&status),
        )),
        None => producer,
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    let workers = config.workers.max(1);
    let checkpointer = Arc::new(
        Checkpointer::new(
            Arc::clone(&db),
            Arc::clone(&status),
            Arc::clone(&shutdown),
            fingerprint(&plan),
            config.checkpoint_interval,
            workers,
            restored.as_ref(),
        )
        .with_output(Arc::clone(&output))
        .with_catch_up_stretch(config.catch_up_stretch),
    );
    let env = Arc::new(RunEnv {
        settings: config.kafka.clone(),
        input: InputMode::Kafka,
        partitions: partitions.clone(),
        db: Arc::clone(&db),
        output,
        status: Arc::clone(&status),
        shutdown: Arc::clone(&shutdown),
        tick_ms,
        checkpointer,
        restored,
        start_offsets,
        moved_offsets,
        on_missing_offsets: config.on_missing_offsets,
        exactly_once: config.exactly_once,
        idle_timeout: config.idle_timeout,
        idle_boards: Default::default(),
        worker_consumers: Default::default(),
    });

    for (topic, count) in &partitions {
        for partition in 0..*count {
            status.register_partition(topic, partition);
        }
    }
    let monitor = spawn_watermark_monitor(
        &config.kafka,
        partitions.clone(),
        Arc::clone(&status),
        Arc::clone(&shutdown),
    )?;

    // The workers build the dataflow, each operator loading its state; the last one ready
    // moves the phase on (`Checkpointer::worker_ready`).
    status.readiness.enter(Phase::Restoring);
    let workers = spawn_workers(workers, Arc::clone(&env), topology)?;

    let reporter = tokio::spawn(report_until_shutdown(
        Reporter::new(&config.component, chrono::Utc::now().timestamp_millis()),
        Arc::clone(&status),
        Arc::clone(&publisher),
        config.report_interval,
        Arc::clone(&shutdown),
    ));

    Ok(RunningEngine {
        plan,
        replay_target,
        env,
        workers: Some(workers),
        monitor: Some(monitor),
        reporter: Some(reporter),
        http,
    })
}

/// Opens the state directory with every store of `plan` and restores its last checkpoint,
/// refusing state that a different topology wrote.
pub(crate) fn open_state(
    state_dir: &Path,
    plan: &Plan,
) -> Result<(Arc<StateDb>, Option<Checkpoint>), EngineError> {
    let stores = plan.stores();
    let db = Arc::new(StateDb::open(state_dir, stores.iter().map(String::as_str))?);
    let restored = restore(&db, state_dir, &fingerprint(plan), &describe(plan))?;
    Ok((db, restored))
}

pub(crate) fn spawn_workers(
    workers: usize,
    env: Arc<RunEnv>,
    topology: TopologyFn,
) -> Result<timely::communication::WorkerGuards<()>, EngineError> {
    let config = timely::Config {
        communication: CommunicationConfig::Process(workers),
        worker: WorkerConfig::default(),
    };
    timely::execute(config, move |worker| {
        let index = worker.index();
        // Root timestamps must be totally ordered; the topology runs in a child scope with
        // the (epoch, watermark) product time.
        worker.dataflow::<u64, _, _>(|outer| {
            outer.scoped::<Time, _, _>("topology", |scope| {
                let mut builder = Topology::new(scope, Some(Arc::clone(&env)));
                topology(&mut builder);
            })
        });
        env.checkpointer.worker_ready();
        // Until the dataflow is gone: view and sink operators still hand in the final
        // checkpoint after their input is complete.
        while worker.has_dataflows() {
            worker.step_or_park(Some(Duration::from_millis(20)));
            if index == 0 {
                env.checkpointer.maybe_begin();
            }
        }
        env.checkpointer.wait_for_commit();
    })
    .map_err(EngineError::Dataflow)
}

impl Drop for RunningEngine {
    /// An engine dropped without [`RunningEngine::join`] (say, by a panic) still stops its
    /// workers, so that dropping their guards, which joins them, cannot hang.
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl RunningEngine {
    /// Where the HTTP API listens, if it does.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::addr)
    }

    /// Live progress.
    pub fn status(&self) -> &Arc<EngineStatus> {
        &self.env.status
    }

    /// For a replay, where the previous run had got to: the replay has caught up when every
    /// partition is read past these offsets.
    pub fn replay_target(&self) -> Option<&Checkpoint> {
        self.replay_target.as_ref()
    }

    /// The running topology's plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The state the views are served from.
    pub fn state(&self) -> &Arc<StateDb> {
        &self.env.db
    }

    /// Asks every part to stop; [`RunningEngine::join`] waits for them.
    pub fn shutdown(&self) {
        self.env.shutdown.store(true, Ordering::Relaxed);
    }

    /// Whether a shutdown was asked for, by a caller or by a fatal error.
    pub fn is_stopping(&self) -> bool {
        self.env.shutdown.load(Ordering::Relaxed)
    }

    /// Stops everything, waits for the workers, flushes output and returns the fatal error
    /// that stopped the engine, if one did.
    pub async fn join(mut self) -> Result<(), EngineError> {
        self.shutdown();
        let workers = self.workers.take();
        let outcome = tokio::task::spawn_blocking(move || workers.map(|guards| guards.join()))
            .await
            .map_err(|error| EngineError::Dataflow(error.to_string()))?;
        if let Some(monitor) = self.monitor.take() {
            monitor.thread().unpark();
            let _ = monitor.join();
        }
        if let Some(reporter) = self.reporter.take() {
            let _ = reporter.await;
        }
        let output = Arc::clone(&self.env.output);
        let flushed = tokio::task::spawn_blocking(move || output.flush(&Duration::from_secs(10)))
            .await
            .map_err(|error| EngineError::Dataflow(error.to_string()))?;
        if let Some(http) = self.http.take() {
            http.stop().await;
        }
        for result in outcome.unwrap_or_default() {
            if let Err(panic) = result {
                return Err(EngineError::Dataflow(format!("a worker failed: {panic}")));
            }
        }
        if let Some(fatal) = self.env.status.fatal() {
            return Err(EngineError::Dataflow(fatal));
        }
        flushed
    }
}
