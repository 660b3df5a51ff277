//! Topic set-up: create every topic a topology reads or writes, as Kafka Streams does for
//! its internal topics, because brokers such as Tansu do not create topics on first use.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::broker_errors::BrokerErrors;
use super::settings::KafkaSettings;
use crate::error::EngineError;

/// Creates the missing topics among `topics` with `settings.partitions` partitions, retrying
/// with backoff until `deadline` while the broker is unreachable.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[String],
    deadline: Duration,
) -> Result<(), EngineError> {
    let reaching = settings.clone();
    tokio::task::spawn_blocking(move || reach_brokers(&reaching, deadline))
        .await
        .map_err(|error| EngineError::Topology(format!("reaching the brokers: {error}")))??;
    // The brokers answered the probe, so a refusal would have been reported already; the
    // admin client's own events are never served (nothing polls its main queue).
    let admin: AdminClient<DefaultClientContext> = settings
        .base_config()
        .create()
        .map_err(|error| EngineError::kafka("creating the admin client", error))?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, settings.partitions, TopicReplication::Fixed(1)))
        .collect();
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        // Each attempt gets a third of the budget (at most 10 s, and never more than is
        // left), so that an unreachable broker is retried a few times and reported on time
        // rather than after the client's own long timeout.
        let attempt = (deadline / 3)
            .min(Duration::from_secs(10))
            .min(deadline.saturating_sub(started.elapsed()))
            .max(Duration::from_millis(500));
        let options = AdminOptions::new()
            .operation_timeout(Some(attempt))
            .request_timeout(Some(attempt));
        let outcome = admin.create_topics(&new_topics, &options).await;
        match outcome {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(topic) => {
                            info!(%topic, partitions = settings.partitions, "created topic")
                        }
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((topic, code)) => {
                            return Err(EngineError::kafka(
                                format!("creating topic {topic}"),
                                KafkaError::AdminOp(code),
                            ));
                        }
                    }
                }
                return Ok(());
            }
            Err(error) if started.elapsed() < deadline => {
                warn!(%error, retry_in = ?backoff, "cannot create topics yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                return Err(EngineError::Unreachable {
                    brokers: settings.brokers.clone(),
                    detail: error.to_string(),
                });
            }
        }
    }
}

/// Waits, with backoff, until the brokers answer, so that the first contact says what went
/// wrong: a refusal (a wrong password, an untrusted certificate) stops at once, naming the
/// broker and the cause; brokers that never answer are reported at `deadline` with what
/// librdkafka last said of them.
pub fn reach_brokers(settings: &KafkaSettings, deadline: Duration) -> Result<(), EngineError> {
    let errors = BrokerErrors::default();
    // Without a group, the consumer's poll serves the client's main queue, where librdkafka
    // leaves its log and error events.
    let probe: BaseConsumer<BrokerErrors> = settings
        .base_config()
        .create_with_context(errors.clone())
        .map_err(|error| EngineError::kafka("creating the metadata client", error))?;
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    let mut next_retry_log = Duration::ZERO;
    loop {
        // Short attempts, so that a refusal logged meanwhile is seen within a second.
        let attempt = Duration::from_secs(1)
            .min(deadline.saturating_sub(started.elapsed()))
            .max(Duration::from_millis(200));
        let outcome = probe.fetch_metadata(None, attempt);
        while probe.poll(Duration::ZERO).is_some() {}
        match outcome {
            Ok(_) => return Ok(()),
            Err(_) if errors.refusal().is_some() => return Err(refused(settings, &errors)),
            Err(error) if started.elapsed() < deadline => {
                if started.elapsed() >= next_retry_log {
                    warn!(%error, retry_in = ?backoff, "cannot reach the brokers yet; retrying");
                    next_retry_log = started.elapsed() + backoff;
                }
                std::thread::sleep(backoff.min(deadline.saturating_sub(started.elapsed())));
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(unreachable(settings, &errors, error)),
        }
    }
}

/// The error of a broker that refused the client (see [`BrokerErrors::refusal`]).
fn refused(settings: &KafkaSettings, errors: &BrokerErrors) -> EngineError {
    EngineError::Refused {
        brokers: settings.brokers.clone(),
        cause: errors.refusal().unwrap_or_default(),
    }
}

/// The error of brokers that did not answer in time, with what librdkafka last said.
fn unreachable(settings: &KafkaSettings, errors: &BrokerErrors, error: KafkaError) -> EngineError {
    let detail = match errors.last() {
        Some(last) => format!("{error}; last: {last}"),
        None => error.to_string(),
    };
    EngineError::Unreachable {
        brokers: settings.brokers.clone(),
        detail,
    }
}

/// The ids of `topic`'s partitions in `metadata`; none when the broker does not know it.
pub fn partition_ids(metadata: &Metadata, topic: &str) -> Vec<i32> {
    metadata
        .topics()
        .iter()
        .filter(|found| found.name() == topic && found.error().is_none())
        .flat_map(|found| found.partitions().iter().map(|partition| partition.id()))
        .collect()
}

/// The partition count of each topic, read from the broker's metadata.
pub fn partition_counts(
    settings: &KafkaSettings,
    topics: &[String],
    deadline: Duration,
) -> Result<BTreeMap<String, i32>, EngineError> {
    let errors = BrokerErrors::default();
    let consumer: BaseConsumer<BrokerErrors> = settings
        .base_config()
        .create_with_context(errors.clone())
        .map_err(|error| EngineError::kafka("creating the metadata client", error))?;
    let started = Instant::now();
    let mut counts = BTreeMap::new();
    for topic in topics {
        loop {
            let remaining = deadline
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(500));
            let outcome = consumer.fetch_metadata(Some(topic), remaining);
            while consumer.poll(Duration::ZERO).is_some() {}
            match outcome {
                Ok(metadata) => {
                    let partitions = metadata
                        .topics()
                        .iter()
                        .find(|found| found.name() == topic)
                        .map(|found| found.partitions().len())
                        .unwrap_or(0);
                    if partitions > 0 {
                        counts.insert(topic.clone(), partitions as i32);
                        break;
                    }
                    if started.elapsed() >= deadline {
                        return Err(EngineError::Topology(format!(
                            "topic {topic} has no partitions on {}",
                            settings.brokers
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(_) if errors.refusal().is_some() => {
                    return Err(refused(settings, &errors));
                }
                Err(error) if started.elapsed() < deadline => {
                    warn!(%error, %topic, "cannot read topic metadata yet; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => return Err(unreachable(settings, &errors, error)),
            }
        }
    }
    Ok(counts)
}

/// For every partition of `partitions`, the offset of its first record with a timestamp at
/// or after `timestamp` (epoch ms), or its end when there is none.
pub fn offsets_at_time(
    settings: &KafkaSettings,
    partitions: &BTreeMap<String, i32>,
    timestamp: i64,
    deadline: Duration,
) -> Result<BTreeMap<(String, i32), i64>, EngineError> {
    let consumer: BaseConsumer = settings
        .base_config()
        .create()
        .map_err(|error| EngineError::kafka("creating the offset client", error))?;
    let mut query = TopicPartitionList::new();
    for (topic, count) in partitions {
        for partition in 0..*count {
            query
                .add_partition_offset(topic, partition, Offset::Offset(timestamp))
                .map_err(|error| EngineError::kafka("building the offset query", error))?;
        }
    }
    let found = consumer
        .offsets_for_times(query, deadline)
        .map_err(|error| EngineError::Unreachable {
            brokers: settings.brokers.clone(),
            detail: format!("looking up offsets for a timestamp: {error}"),
        })?;
    let mut offsets = BTreeMap::new();
    for element in found.elements() {
        let topic = element.topic().to_string();
        let partition = element.partition();
        let offset = match element.offset() {
            Offset::Offset(offset) => offset,
            // No record at or after the timestamp: start at the end.
            _ => {
                consumer
                    .fetch_watermarks(&topic, partition, deadline)
                    .map_err(|error| EngineError::Unreachable {
                        brokers: settings.brokers.clone(),
                        detail: format!("reading the end of {topic}/{partition}: {error}"),
                    })?
                    .1
            }
        };
        offsets.insert((topic, partition), offset);
    }
    Ok(offsets)
}
