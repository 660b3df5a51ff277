//! The output producer shared by every worker: output topics, dead letters and late records.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use tracing::warn;

use super::deliveries::Deliveries;
use super::settings::KafkaSettings;
use crate::error::EngineError;
use crate::output::{OutputRecord, OutputSink};
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
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    /// The generation of [`Deliveries`] the record was queued in.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, generation: usize) {
        if let Err((error, message)) = result {
            let described = describe_refused(message, error);
            warn!(record = %described, "output record was not delivered");
            self.deliveries.refused(described);
        }
        count_delivery(&self.status, result);
        self.deliveries.settled(generation as u64);
    }
}

/// A refused record as the error that stops the engine names it: topic, partition (or
/// `any` before one was chosen), `sluice-id` and the broker's answer.
fn describe_refused(message: &impl Message, error: &KafkaError) -> String {
    let id = message
        .headers()
        .and_then(|headers| {
            headers
                .iter()
                .find(|header| header.key == RECORD_ID_HEADER)
                .and_then(|header| header.value)
        })
        .map_or_else(
            || "none".to_string(),
            |id| String::from_utf8_lossy(id).into_owned(),
        );
    let partition = match message.partition() {
        partition if partition >= 0 => partition.to_string(),
        _ => "any".to_string(),
    };
    format!("{}/{partition} (sluice-id {id}): {error}", message.topic())
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
    /// Creates the producer.
    pub fn new(settings: &KafkaSettings, status: Arc<EngineStatus>) -> Result<Self, EngineError> {
        let deliveries = Arc::new(Deliveries::default());
        let producer = settings
            .producer_config("sluice-output")
            .create_with_context(DeliveryCounter {
                status: Arc::clone(&status),
                deliveries: Arc::clone(&deliveries),
            })
            .map_err(|error| EngineError::kafka("creating the output producer", error))?;
        Ok(OutputProducer {
            producer,
            status,
            deliveries,
        })
    }
}

impl OutputSink for OutputProducer {
    /// Queues a record. When librdkafka's queue is full this waits for it to drain, which
    /// is the backpressure that keeps a slow broker from growing memory without bound.
    fn send(&self, record: &OutputRecord<'_>) {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(*value),
            });
        }
        let generation = self.deliveries.queued();
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
                    EngineStatus::add(&self.status.delivery_failures, 1);
                    warn!(%error, topic = record.topic, "cannot queue output record");
                    self.deliveries.settled(generation);
                    return;
                }
            }
        }
    }

    /// Waits for the acknowledgement of every record queued before the call. Unlike
    /// librdkafka's flush, records that other workers queue meanwhile do not hold it up.
    fn flush(&self, timeout: Duration) -> Result<(), EngineError> {
        let settled = self.deliveries.wait_for_queued(timeout);
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
