//! `bench`: preload a broker, then measure consuming everything from offset zero through
//! the whole topology: events/s, CPU seconds and peak RSS.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::Application;
use super::cli::BenchArgs;
use super::procstats::{cpu_seconds, peak_rss_bytes};
use super::produce::{ProduceOptions, produce};
use crate::kafka::KafkaSettings;
use crate::kafka::admin::ensure_topics;
use crate::runtime::{EngineConfig, plan_of, start};
use crate::status::EngineStatus;

/// The longest a measurement may take before the bench gives up.
const MEASURE_DEADLINE: Duration = Duration::from_secs(1800);

/// Runs the benchmark and prints its report.
pub(crate) async fn bench(
    application: Arc<dyn Application>,
    args: BenchArgs,
) -> anyhow::Result<()> {
    let chosen = args.topology.choose(application.as_ref())?;
    let settings = args
        .kafka
        .settings(&format!("{}-bench", chosen.component))?;
    let topic = application.input_topic().to_string();
    let mut generator = application.generator(&args.generator.options());
    let mut topics = vec![topic.clone()];
    topics.extend(generator.topics().iter().skip(1).map(|t| t.to_string()));
    ensure_topics(&settings, &topics, args.kafka.broker_timeout()).await?;
    // The events measured are those of the generator's topics that the topology reads: a
    // part of the application (`--topology orders`) leaves the catalog unread.
    let read = plan_of(&chosen.topology).sources;
    let topics: Vec<String> = topics
        .into_iter()
        .filter(|topic| read.iter().any(|source| &source.topic == topic))
        .collect();
    anyhow::ensure!(
        !topics.is_empty(),
        "{} reads none of the generated topics",
        chosen.component
    );
    let before = total_size(&settings, &topics).await?;

    let mut preloaded = 0;
    if !args.no_preload {
        let options = ProduceOptions {
            topic: topic.clone(),
            count: Some(args.events),
            rate: 0.0,
            progress: true,
        };
        let producer_settings = settings.clone();
        let report = tokio::task::spawn_blocking(move || {
            produce(
                &producer_settings,
                generator.as_mut(),
                &options,
                &AtomicBool::new(false),
            )
        })
        .await
        .context("the preload thread failed")??;
        anyhow::ensure!(
            report.failed == 0,
            "{} preloaded events were not acknowledged",
            report.failed
        );
        preloaded = report
            .sent
            .iter()
            .filter(|(sent_to, _)| topics.contains(sent_to))
            .map(|(_, count)| count)
            .sum();
        println!(
            "preloaded {} in {:.2} s ({:.0} events/s)",
            report.describe_sent(),
            report.elapsed.as_secs_f64(),
            report.delivered as f64 / report.elapsed.as_secs_f64().max(1e-9)
        );
    }
    // Some brokers (Tansu) report a high watermark below the true end, so trust what was
    // just published over what the broker reports.
    let target = total_size(&settings, &topics)
        .await?
        .max(before + preloaded);
    anyhow::ensure!(
        target > 0,
        "topic {topic} is empty; run without --no-preload"
    );

    let state_dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
    let mut config = EngineConfig::new(settings, &state_dir);
    config.broker_timeout = args.kafka.broker_timeout();
    args.engine.apply(&mut config);
    config.component = chosen.component.clone();
    let workers = config.workers;
    let cpu_before = cpu_seconds().unwrap_or(0.0);
    let started = Instant::now();
    let engine = start(config, chosen.topology).await?;
    let status = Arc::clone(engine.status());
    let consumed = |status: &EngineStatus| {
        EngineStatus::count(&status.processed) + EngineStatus::count(&status.dead_lettered)
    };
    wait_until(&status, started, target, "consumed", consumed).await?;
    let elapsed = started.elapsed();
    let events = consumed(&status);
    // Read is not done: the events count once a checkpoint holds them all, which means
    // their output was acknowledged and their state written. A clean stop takes that
    // checkpoint at once, whatever the checkpoint interval.
    let stopped = engine.join().await;
    let committed = started.elapsed();
    let _ = std::fs::remove_dir_all(&state_dir);
    stopped.context("stopping after the measurement")?;
    anyhow::ensure!(
        checkpointed(&status) >= target,
        "the final checkpoint holds {} of {target} events",
        checkpointed(&status)
    );
    let cpu = cpu_seconds().unwrap_or(0.0) - cpu_before;
    let rate = events as f64 / elapsed.as_secs_f64().max(1e-9);
    let committed_rate = events as f64 / committed.as_secs_f64().max(1e-9);
    let peak_mib = peak_rss_bytes().map(|bytes| bytes as f64 / (1024.0 * 1024.0));
    println!(
        "consumed {events} events with {workers} workers in {:.2} s: {rate:.0} events/s; \
         stopped with all of them checkpointed (output acknowledged, state written) after {:.2} s: \
         {committed_rate:.0} events/s; {cpu:.2} CPU s, peak RSS {}",
        elapsed.as_secs_f64(),
        committed.as_secs_f64(),
        peak_mib.map_or("unknown".to_string(), |mib| format!("{mib:.0} MiB"))
    );
    println!(
        "{}",
        serde_json::json!({
            "events": events,
            "workers": workers,
            "seconds": elapsed.as_secs_f64(),
            "events_per_second": rate,
            "checkpointed_seconds": committed.as_secs_f64(),
            "checkpointed_events_per_second": committed_rate,
            "cpu_seconds": cpu,
            "peak_rss_mib": peak_mib,
        })
    );
    Ok(())
}

/// Polls until `count` reaches `target`, failing if the engine stops or the deadline passes.
async fn wait_until(
    status: &EngineStatus,
    started: Instant,
    target: u64,
    what: &str,
    count: impl Fn(&EngineStatus) -> u64,
) -> anyhow::Result<()> {
    while count(status) < target {
        if let Some(fatal) = status.fatal() {
            anyhow::bail!("the engine stopped: {fatal}");
        }
        anyhow::ensure!(
            started.elapsed() < MEASURE_DEADLINE,
            "only {} of {target} events {what} after {:?}",
            count(status),
            MEASURE_DEADLINE
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// The records the last checkpoint holds: the sum of its offsets.
fn checkpointed(status: &EngineStatus) -> u64 {
    status.checkpoint().map_or(0, |checkpoint| {
        checkpoint
            .positions
            .iter()
            .map(|position| position.offset.max(0) as u64)
            .sum()
    })
}

/// How many records `topics` hold together.
async fn total_size(settings: &KafkaSettings, topics: &[String]) -> anyhow::Result<u64> {
    let mut total = 0;
    for topic in topics {
        total += topic_size(settings, topic).await?;
    }
    Ok(total)
}

/// The number of records in a topic: the sum of its partitions' high watermarks.
async fn topic_size(settings: &KafkaSettings, topic: &str) -> anyhow::Result<u64> {
    let settings = settings.clone();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let client: BaseConsumer = settings.base_config().create()?;
        let metadata = client.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let mut total = 0u64;
        for found in metadata
            .topics()
            .iter()
            .filter(|found| found.name() == topic)
        {
            for partition in found.partitions() {
                let (low, high) =
                    client.fetch_watermarks(&topic, partition.id(), Duration::from_secs(10))?;
                total += (high - low).max(0) as u64;
            }
        }
        Ok(total)
    })
    .await
    .context("the metadata thread failed")?
}
