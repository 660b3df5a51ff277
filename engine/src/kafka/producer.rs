//! The output producer shared by every worker: output topics, dead letters and late records;
//! and what becomes of a record the broker refuses.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use tracing::warn;

use super::deliveries::Deliveries;
use super::output_dead_letters::OutputDeadLetters;
use super::quiet_errors::QuietErrors;
use super::settings::KafkaSettings;
use crate::error::EngineError;
use crate::output::{OutputRecord, OutputSink, Patience};
use crate::status::EngineStatus;

/// The header that names an output record deterministically: `topic/partition/offset/index`
/// of the input record it was derived from, so duplicates are detectable anywhere.
pub const RECORD_ID_HEADER: &str = "sluice-id";
/// The header that says why a record went to a dead-letter or late topic.
pub const ERROR_HEADER: &str = "sluice-error";

/// The header of a late record that lists the views it misses, comma-separated.
pub const LATE_VIEWS_HEADER: &str = "sluice-late-views";

/// The header of a late or dead-lettered record that says where it was read:
/// `topic/partition/offset`.
pub const SOURCE_HEADER: &str = "sluice-source";

/// Settles every delivery, and counts those the broker refused, so that at-least-once
/// output is never silently lossy.
pub struct DeliveryCounter {
    status: Arc<EngineStatus>,
    deliveries: Arc<Deliveries>,
    errors: QuietErrors,
    /// Where refused records go under `--on-output-error dead-letter`.
    dead_letters: Option<OutputDeadLetters>,
}

impl ClientContext for DeliveryCounter {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.error(error, reason);
    }
}

impl ProducerContext for DeliveryCounter {
    /// The generation of [`Deliveries`] the record was queued in.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, generation: usize) {
        if let Err((error, message)) = result {
            let dead_letters = self
                .dead_letters
                .as_ref()
                .and_then(|dead_letters| dead_letters.taking(message.topic(), error));
            match dead_letters {
                Some((dead_letters, topic)) => {
                    let headers: Vec<(&str, &[u8])> = message
                        .headers()
                        .map(|headers| {
                            headers
                                .iter()
                                .map(|header| (header.key, header.value.unwrap_or_default()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let refused = OutputRecord {
                        topic: message.topic(),
                        key: message.key().unwrap_or_default(),
                        payload: message.payload().unwrap_or_default(),
                        headers: &headers,
                        origin: None,
                        epoch: 0,
                    };
                    dead_letters.send(topic, &refused, error, generation as u64);
                }
                None => {
                    let described = describe_refused(message, error);
                    warn!(record = %described, "output record was not delivered");
                    self.deliveries.refused(described);
                }
            }
        }
        count_delivery(&self.status, result);
        self.deliveries.settled(generation as u64);
    }
}

/// A refused record as the error that stops the engine names it: topic, partition (or
/// `any` before one was chosen), `sluice-id` and the broker's answer.
fn describe_refused(message: &impl Message, error: &KafkaError) -> String {
    let id = message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|header| header.key == RECORD_ID_HEADER)
            .and_then(|header| header.value)
    });
    let partition = Some(message.partition()).filter(|partition| *partition >= 0);
    describe_record(message.topic(), partition, id, error)
}

/// The same for a record that never left the engine.
fn describe_unqueued(record: &OutputRecord<'_>, error: &KafkaError) -> String {
    let id = record
        .headers
        .iter()
        .find(|(name, _)| *name == RECORD_ID_HEADER)
        .map(|(_, value)| *value);
    describe_record(record.topic, None, id, error)
}

fn describe_record(
    topic: &str,
    partition: Option<i32>,
    id: Option<&[u8]>,
    error: &KafkaError,
) -> String {
    let id = id.map_or_else(
        || "none".to_string(),
        |id| String::from_utf8_lossy(id).into_owned(),
    );
    let partition = partition.map_or_else(|| "any".to_string(), |p| p.to_string());
    format!("{topic}/{partition} (sluice-id {id}): {error}")
}

/// Counts a delivery report: acknowledged per topic and partition, or refused. Returns the
/// error of a refused record.
pub(crate) fn count_delivery<'a>(
    status: &EngineStatus,
    result: &'a DeliveryResult<'_>,
) -> Option<&'a KafkaError> {
    match result {
        Ok(message) => {
            status.count_delivered(message.topic(), message.partition());
            None
        }
        Err((error, _)) => {
            EngineStatus::add(&status.delivery_failures, 1);
            Some(error)
        }
    }
}

/// An idempotent producer with its own polling thread.
pub struct OutputProducer {
    producer: ThreadedProducer<DeliveryCounter>,
    status: Arc<EngineStatus>,
    deliveries: Arc<Deliveries>,
}

impl OutputProducer {
    /// Creates the producer. A record the broker refuses for good to one of the topics of
    /// `dead_letters` (output topic, dead-letter topic) goes to its dead-letter topic
    /// (`--on-output-error dead-letter`); any other stops the engine.
    pub fn new(
        settings: &KafkaSettings,
        status: Arc<EngineStatus>,
        dead_letters: Vec<(String, String)>,
    ) -> Result<Self, EngineError> {
        let deliveries = Arc::new(Deliveries::default());
        let dead_letters = if dead_letters.is_empty() {
            None
        } else {
            // A producer of its own: the output producer's delivery reports, where refusals
            // are heard of, come on the thread that drains its queue, which must never
            // wait for that queue to have room.
            let producer = Self::create(
                settings,
                "sluice-output-dead-letters",
                Arc::clone(&status),
                Arc::clone(&deliveries),
                None,
            )?;
            Some(OutputDeadLetters::new(producer, dead_letters))
        };
        Self::create(settings, "sluice-output", status, deliveries, dead_letters)
    }

    fn create(
        settings: &KafkaSettings,
        client_id: &str,
        status: Arc<EngineStatus>,
        deliveries: Arc<Deliveries>,
        dead_letters: Option<OutputDeadLetters>,
    ) -> Result<Self, EngineError> {
        let mut config = settings.producer_config(client_id);
        if config.get("message.timeout.ms").is_none() {
            // A record the broker could take later (it is away, it has no leader for the
            // partition yet) is retried for as long as that takes, and the checkpoint waits
            // for it: librdkafka's default would give up after five minutes, and the record
            // would be lost to a checkpoint that moved on. 0 is librdkafka's "no limit".
            config.set("message.timeout.ms", "0");
        }
        let producer = config
            .create_with_context(DeliveryCounter {
                status: Arc::clone(&status),
                deliveries: Arc::clone(&deliveries),
                errors: QuietErrors::default(),
                dead_letters,
            })
            .map_err(|error| EngineError::kafka("creating the output producer", error))?;
        Ok(OutputProducer {
            producer,
            status,
            deliveries,
        })
    }

    /// Queues `record` as part of `generation` of [`Deliveries`], which counts it already.
    pub(super) fn send_in(&self, record: &OutputRecord<'_>, generation: u64) {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(*value),
            });
        }
        let mut pending = BaseRecord::with_opaque_to(record.topic, generation as usize)
            .key(record.key)
            .payload(record.payload)
            .headers(headers);
        loop {
            match self.producer.send(pending) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    pending = returned;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => {
                    // Refused before it was queued (too large for `message.max.bytes`, an
                    // unknown topic): as good as refused by the broker.
                    EngineStatus::add(&self.status.delivery_failures, 1);
                    let dead_letters = self
                        .producer
                        .context()
                        .dead_letters
                        .as_ref()
                        .and_then(|dead_letters| dead_letters.taking(record.topic, &error));
                    match dead_letters {
                        Some((dead_letters, topic)) => {
                            dead_letters.send(topic, record, &error, generation);
                        }
                        None => {
                            let described = describe_unqueued(record, &error);
                            warn!(record = %described, "cannot queue output record");
                            self.deliveries.refused(described);
                        }
                    }
                    self.deliveries.settled(generation);
                    return;
                }
            }
        }
    }

    /// The status its deliveries are counted in.
    pub(super) fn status(&self) -> Arc<EngineStatus> {
        Arc::clone(&self.status)
    }

    /// The acknowledgements this producer's records are counted in.
    pub(super) fn deliveries(&self) -> &Deliveries {
        &self.deliveries
    }
}

impl OutputSink for OutputProducer {
    /// Queues a record. When librdkafka's queue is full this waits for it to drain, which
    /// is the backpressure that keeps a slow broker from growing memory without bound.
    fn send(&self, record: &OutputRecord<'_>) {
        let generation = self.deliveries.queued();
        self.send_in(record, generation);
    }

    /// Waits for the acknowledgement of every record queued before the call. Unlike
    /// librdkafka's flush, records that other workers queue meanwhile do not hold it up.
    fn flush(&self, patience: &dyn Patience) -> Result<(), EngineError> {
        let settled = self.deliveries.wait_for_queued(patience);
        // A refused record was settled, not delivered: nothing may be checkpointed past it.
        if let Some(record) = self.deliveries.refusal() {
            return Err(EngineError::OutputRefused { record });
        }
        if settled {
            Ok(())
        } else {
            Err(EngineError::kafka(
                "flushing output",
                KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut),
            ))
        }
    }
}
