//! The flags of a topology binary, parsed with clap, and the dispatch to each command.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use super::Application;
use super::choice::TopologyArg;
use super::generator::GeneratorOptions;
use super::produce::{ProduceOptions, produce};
use crate::kafka::KafkaSettings;
use crate::kafka::client_properties::PropertyError;
use crate::kafka::missing_offsets::OnMissingOffsets;
use crate::output::OnOutputError;
use crate::plan::describe;
use crate::query::access::{ApiAccess, ApiToken, TokenError};
use crate::query::admission::HttpLimits;
use crate::runtime::{EngineConfig, RunningEngine, plan_of, start};
use crate::time::parse_timestamp;

#[derive(Parser)]
#[command(
    version,
    about = "A Sluice topology binary: run it, feed it, benchmark it."
)]
struct Cli {
    /// Log filter, e.g. `info` or `sluice=debug`.
    #[arg(long, global = true, default_value = "info", env = "SLUICE_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the topology against a Kafka cluster and serve its views over HTTP, continuing
    /// from the last checkpoint in the state directory.
    Run(RunArgs),
    /// Wipe the state and reprocess every source from the beginning (or a timestamp).
    Replay(ReplayArgs),
    /// Publish deterministic generated events.
    Produce(ProduceArgs),
    /// Run everything in one process on rdkafka's in-memory mock broker (development only).
    Demo(DemoArgs),
    /// Preload events, then measure consuming them all from offset zero.
    Bench(BenchArgs),
    /// Print the topology's graph.
    Describe(DescribeArgs),
    /// Read an output topic to its end, dropping records whose `sluice-id` was seen
    /// (at-least-once output read exactly once).
    Dedupe(DedupeArgs),
}

#[derive(Args, Clone)]
pub(crate) struct KafkaArgs {
    /// Bootstrap servers, e.g. 127.0.0.1:9092.
    #[arg(long, env = "SLUICE_BROKERS")]
    pub brokers: String,
    /// Longest time the broker may hold a fetch; keep it low for Tansu.
    #[arg(long, default_value_t = 10)]
    pub fetch_wait_max_ms: u32,
    /// Partitions of the topics this command creates when they are missing.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub partitions: i32,
    /// Seconds to keep retrying, with backoff, a broker that does not answer at start.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub broker_timeout_secs: u64,
    /// Consumer group for offsets (monitoring) and, under `--exactly-once`, the
    /// transactional id `<group>-output` (default: the application's name).
    #[arg(long)]
    pub group: Option<String>,
    /// A file of librdkafka properties for every Kafka client (KEY=VALUE lines, `#`
    /// comments): security.protocol, sasl.*, ssl.* and tuning. Secret values are never
    /// logged or shown.
    #[arg(long, value_name = "FILE", env = "SLUICE_KAFKA_CONFIG")]
    pub kafka_config: Option<PathBuf>,
    /// One librdkafka property for every Kafka client, as kcat takes it; repeatable, and
    /// applied after --kafka-config.
    #[arg(short = 'X', value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub property: Vec<String>,
}

impl KafkaArgs {
    /// The client settings these flags make; a malformed, reserved or unknown client
    /// property is refused with its place.
    pub(crate) fn settings(&self, default_group: &str) -> Result<KafkaSettings, PropertyError> {
        let mut settings = KafkaSettings::new(&self.brokers);
        settings.group_id = self
            .group
            .clone()
            .unwrap_or_else(|| default_group.to_string());
        settings.fetch_wait_max_ms = self.fetch_wait_max_ms;
        settings.partitions = self.partitions;
        if let Some(path) = &self.kafka_config {
            settings.properties.add_file(path)?;
        }
        for flag in &self.property {
            settings.properties.add_flag(flag)?;
        }
        settings.properties.validate()?;
        Ok(settings)
    }

    pub(crate) fn broker_timeout(&self) -> Duration {
        Duration::from_secs(self.broker_timeout_secs)
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    topology: TopologyArg,
    /// Where RocksDB keeps the views.
    #[arg(long, default_value = "sluice-state")]
    state_dir: PathBuf,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("start").required(true).args(["from_beginning", "from_timestamp"])))]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub topology: TopologyArg,
    /// The state directory to wipe and rebuild.
    #[arg(long, default_value = "sluice-state")]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Rewind every source partition to offset zero.
    #[arg(long)]
    pub from_beginning: bool,
    /// Rewind every source partition to its first record at or after this time (RFC 3339
    /// or epoch ms).
    #[arg(long, value_parser = timestamp)]
    pub from_timestamp: Option<i64>,
    /// Do not ask before wiping the state.
    #[arg(long)]
    pub yes: bool,
    /// Write all output again, to `<topic>.<VERSION>` topics, instead of skipping what the
    /// previous run already wrote.
    #[arg(long, value_name = "VERSION", value_parser = topic_suffix)]
    pub versioned_output: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The HTTP query API: where it listens, who may use it, and how much at once.
#[derive(Args, Clone)]
pub(crate) struct HttpArgs {
    /// Address of the HTTP query API. It stays on localhost unless told otherwise: put a
    /// token on it (--api-token) before opening it to a network.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on `POST /events`, and with
    /// --api-token-reads on every other route but /healthz, /readyz and the dashboard's
    /// files (the dashboard asks for it: open `/#token=TOKEN`). At least 16 characters.
    /// Prefer the environment variable, which `ps` does not show.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,
    /// Require the API token on reads too: views, streams, status, metrics.
    #[arg(long, requires = "api_token")]
    pub api_token_reads: bool,
    /// The largest request body accepted, in bytes; a larger one is answered 413.
    #[arg(long, default_value_t = HttpLimits::default().max_body_bytes as u64,
        value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub max_body_bytes: u64,
    /// Open HTTP connections at most; one more is answered 503 and closed.
    #[arg(long, default_value_t = HttpLimits::default().max_connections as u64,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Live streams (Server-Sent Events) at most; one more is answered 503.
    #[arg(long, default_value_t = HttpLimits::default().max_streams as u64,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_streams: u64,
    /// Seconds a connection may stay silent (no request, no answer, no keep-alive) before
    /// it is closed, so that idle connections cannot hold every place.
    #[arg(long, default_value_t = HttpLimits::default().idle_timeout.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub http_idle_timeout_secs: u64,
}

impl HttpArgs {
    /// Sets the address, the token and the limits. The token is checked here rather than
    /// by clap, whose error would repeat the rejected value, a secret, on the terminal.
    pub(crate) fn apply(&self, config: &mut EngineConfig) -> Result<(), TokenError> {
        config.http_addr = Some(self.http);
        config.api_access = ApiAccess {
            token: self.api_token.as_deref().map(ApiToken::new).transpose()?,
            protect_reads: self.api_token_reads,
        };
        let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        config.http_limits = HttpLimits {
            max_body_bytes: size(self.max_body_bytes),
            max_connections: size(self.max_connections),
            max_streams: size(self.max_streams),
            idle_timeout: Duration::from_secs(self.http_idle_timeout_secs),
        };
        Ok(())
    }
}

#[derive(Args, Clone)]
pub(crate) struct EngineArgs {
    /// Timely worker threads (default: the number of cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Granularity of timely times in milliseconds of event time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=3_600_000))]
    pub tick_ms: i64,
    /// How often to checkpoint offsets and state, in milliseconds; views change at this pace.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub checkpoint_interval_ms: u64,
    /// Write output through a Kafka transaction that commits at each checkpoint, with the
    /// checkpoint's offsets, so that `read_committed` consumers see each record once across
    /// crashes. Needs a broker with transactions (Apache Kafka; not Tansu 0.6).
    #[arg(long)]
    pub exactly_once: bool,
    /// What to do with an output record the broker refuses for good (too large, not
    /// authorized, an unknown topic): stop the engine, naming the record, or send it to
    /// `<topic>.dlq` with the broker's answer and go on (not with --exactly-once).
    #[arg(long, value_enum, default_value_t = OnOutputError::Stop)]
    pub on_output_error: OnOutputError,
    /// What to do with a source partition whose next offset the log no longer holds
    /// (deleted by retention, or a recreated topic), at start or while running: stop and
    /// name it (`fail`; `replay --from-beginning` rebuilds the state), or read on from the
    /// log's start (`earliest`) or end (`latest`), accepting the gap. Shown in /status.
    #[arg(long, value_enum, default_value_t = OnMissingOffsets::Fail)]
    pub on_missing_offsets: OnMissingOffsets,
    /// How often to publish processing reports to `monitoring-events`, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub report_interval_ms: u64,
    /// How long a silent partition may hold the watermark back, in milliseconds, for every
    /// source (default: each source's own, 10 s unless the topology says otherwise). After
    /// it the partition follows the others' event time, which depends on the wall clock.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=31_536_000_000))]
    pub idle_timeout_ms: Option<u64>,
}

impl EngineArgs {
    pub(crate) fn apply(&self, config: &mut EngineConfig) {
        config.report_interval = Duration::from_millis(self.report_interval_ms);
        if let Some(workers) = self.workers {
            config.workers = usize::from(workers);
        }
        config.tick_ms = self.tick_ms;
        config.checkpoint_interval = Duration::from_millis(self.checkpoint_interval_ms);
        config.exactly_once = self.exactly_once;
        config.on_output_error = self.on_output_error;
        config.on_missing_offsets = self.on_missing_offsets;
        if let Some(idle_timeout_ms) = self.idle_timeout_ms {
            config.idle_timeout = Some(Duration::from_millis(idle_timeout_ms));
        }
    }
}

#[derive(Args, Clone)]
pub(crate) struct GeneratorArgs {
    /// Fraction of generated orders that fail, from 0 to 1.
    #[arg(long, default_value_t = 0.05, value_parser = fraction)]
    pub failure_rate: f64,
    /// Random seed: the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Event time of the first event (RFC 3339 or epoch ms).
    #[arg(long, default_value = "2024-01-15T10:30:00Z", value_parser = timestamp)]
    pub start_time: i64,
    /// Event time between consecutive events, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(0..=86_400_000))]
    pub interval_ms: i64,
}

impl GeneratorArgs {
    pub(crate) fn options(&self) -> GeneratorOptions {
        GeneratorOptions {
            seed: self.seed,
            failure_rate: self.failure_rate,
            start_ms: self.start_time,
            interval_ms: self.interval_ms,
        }
    }
}

#[derive(Args)]
struct ProduceArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// How many events of the main stream (the orders) to publish; the reference data they
    /// need (the catalog) comes on top.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Main-stream events per second of wall time; 0 publishes as fast as the broker takes
    /// them.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    rate: f64,
    #[command(flatten)]
    generator: GeneratorArgs,
    /// Destination of the main stream, the orders (default: the application's input
    /// topic). The reference data that comes along (the catalog) keeps its own topic.
    #[arg(long)]
    topic: Option<String>,
}

#[derive(Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Generated events per second.
    #[arg(long, default_value_t = 20.0, value_parser = positive)]
    pub rate: f64,
    /// Fraction of generated orders that fail, from 0 to 1.
    #[arg(long, default_value_t = 0.05, value_parser = fraction)]
    pub failure_rate: f64,
    /// Where RocksDB keeps the views (default: a temporary directory).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub topology: TopologyArg,
    /// Events to preload before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Measure what the topic already holds instead of preloading.
    #[arg(long)]
    pub no_preload: bool,
    #[command(flatten)]
    pub generator: GeneratorArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args)]
pub(crate) struct DedupeArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The topic to read.
    #[arg(long)]
    pub topic: String,
    /// Print every kept record as a JSON line (`id`, `partition`, `offset`, `key`,
    /// `value`) before the summary.
    #[arg(long)]
    pub print: bool,
    /// Longest time to read before giving up, in seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_secs: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum DescribeFormat {
    Text,
    Dot,
    Json,
}

#[derive(Args)]
struct DescribeArgs {
    #[command(flatten)]
    topology: TopologyArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: DescribeFormat,
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("`{text}` is not a fraction from 0 to 1")),
    }
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value >= 0.0 && value.is_finite() => Ok(value),
        _ => Err(format!(
            "`{text}` is not a number of events per second (0 or more)"
        )),
    }
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value > 0.0 && value.is_finite() => Ok(value),
        _ => Err(format!(
            "`{text}` is not a positive number of events per second"
        )),
    }
}

fn topic_suffix(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` is not a topic suffix (1 to 32 letters, digits, `-` or `_`)"
        ))
    }
}

fn timestamp(text: &str) -> Result<i64, String> {
    if text == "now" {
        return Ok(chrono::Utc::now().timestamp_millis());
    }
    parse_timestamp(text)
}

/// Parses the command line and runs the command.
pub fn run(application: impl Application) -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let application: Arc<dyn Application> = Arc::new(application);
    match runtime.block_on(dispatch(cli.command, application)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe_error(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message
/// before it already shows (the engine's errors name their source in their message).
fn describe_error(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

async fn dispatch(command: Command, application: Arc<dyn Application>) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => {
            let chosen = args.topology.choose(application.as_ref())?;
            let mut config =
                EngineConfig::new(args.kafka.settings(&chosen.component)?, args.state_dir);
            args.http.apply(&mut config)?;
            config.broker_timeout = args.kafka.broker_timeout();
            args.engine.apply(&mut config);
            config.component = chosen.component.clone();
            let engine = start(config, chosen.topology).await?;
            if let Some(addr) = engine.http_addr() {
                println!(
                    "{} is running; views at http://{addr}/views, status at http://{addr}/status",
                    chosen.component
                );
            }
            run_until_stopped(engine).await
        }
        Command::Replay(args) => super::replay::replay(application, args).await,
        Command::Produce(args) => {
            let settings = args.kafka.settings(application.name())?;
            let generator = application.generator(&args.generator.options());
            let topic = args
                .topic
                .unwrap_or_else(|| application.input_topic().to_string());
            let mut topics = vec![topic.clone()];
            topics.extend(generator.topics().iter().skip(1).map(|t| t.to_string()));
            crate::kafka::admin::ensure_topics(&settings, &topics, args.kafka.broker_timeout())
                .await?;
            let options = ProduceOptions {
                topic,
                count: Some(args.count),
                rate: args.rate,
                progress: true,
            };
            let report = tokio::task::spawn_blocking(move || {
                let mut generator = generator;
                produce(
                    &settings,
                    generator.as_mut(),
                    &options,
                    &AtomicBool::new(false),
                )
            })
            .await
            .context("the producer thread failed")??;
            println!(
                "published {} in {:.2} s ({:.0} events/s), {} failed",
                report.describe_sent(),
                report.elapsed.as_secs_f64(),
                report.delivered as f64 / report.elapsed.as_secs_f64().max(1e-9),
                report.failed
            );
            anyhow::ensure!(
                report.failed == 0,
                "{} events were not acknowledged by the broker",
                report.failed
            );
            Ok(())
        }
        Command::Demo(args) => super::demo::demo(application, args).await,
        Command::Bench(args) => super::bench::bench(application, args).await,
        Command::Dedupe(args) => {
            let settings = args
                .kafka
                .settings(&format!("{}-dedupe", application.name()))?;
            let report = tokio::task::spawn_blocking(move || {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                let mut failed: Option<std::io::Error> = None;
                let report = crate::kafka::dedupe::read_deduplicated(
                    &settings,
                    &args.topic,
                    Duration::from_secs(args.timeout_secs),
                    |record| {
                        if args.print && failed.is_none() {
                            let line = serde_json::to_string(&record).unwrap_or_default();
                            if let Err(error) = writeln!(out, "{line}") {
                                failed = Some(error);
                            }
                        }
                    },
                )?;
                if let Some(error) = failed {
                    return Err(anyhow::Error::from(error).context("writing records"));
                }
                out.flush().context("writing records")?;
                Ok::<_, anyhow::Error>(report)
            })
            .await
            .context("the dedupe thread failed")??;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Describe(args) => {
            let plan = plan_of(&args.topology.choose(application.as_ref())?.topology);
            match args.format {
                DescribeFormat::Text => print!("{}", describe(&plan)),
                DescribeFormat::Dot => print!("{}", crate::plan::to_dot(&plan)),
                DescribeFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
            }
            Ok(())
        }
    }
}

/// Waits for Ctrl-C (or a fatal error), then stops the engine cleanly.
pub(crate) async fn run_until_stopped(engine: RunningEngine) -> anyhow::Result<()> {
    // One listener for the whole wait: a listener sees only signals that arrive after it
    // exists, so one made afresh on every turn of the loop could miss a Ctrl-C that came
    // between two turns, and the process, whose handler is installed, would not stop.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            signal = &mut ctrl_c => {
                signal.context("cannot listen for Ctrl-C")?;
                eprintln!("stopping: waiting for the workers and flushing output");
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if engine.is_stopping() {
                    break;
                }
            }
        }
    }
    engine.join().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_each_cause_once() {
        let io = std::io::Error::other("disk full");
        let error = anyhow::Error::from(crate::error::EngineError::io("writing state", io))
            .context("running the topology");
        assert_eq!(
            describe_error(&error),
            "running the topology: I/O error while writing state: disk full"
        );
    }
}
