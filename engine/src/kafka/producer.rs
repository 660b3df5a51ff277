//! The output producer shared by every worker: output topics, dead letters and late records.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use tracing::warn;

use super::settings::KafkaSettings;
use crate::error::EngineError;
use crate::output::{OutputRecord, OutputSink};
use crate::status::EngineStatus;

/// The header that names an output record deterministically: `topic/partition/offset/index`
/// of the input record it was derived from, so duplicates are detectable anywhere.
pub const RECORD_ID_HEADER: &str = "sluice-id";
/// The header that says why a record went to a dead-letter or late topic.
pub const ERROR_HEADER: &str = "sluice-error";

/// Counts deliveries the broker refused, so that at-least-once output is never silently lossy.
pub struct DeliveryCounter {
    status: Arc<EngineStatus>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            EngineStatus::add(&self.status.delivery_failures, 1);
            warn!(%error, "output record was not delivered");
        }
    }
}

/// An idempotent producer with its own polling thread.
pub struct OutputProducer {
    producer: ThreadedProducer<DeliveryCounter>,
    status: Arc<EngineStatus>,
}

impl OutputProducer {
    /// Creates the producer.
    pub fn new(settings: &KafkaSettings, status: Arc<EngineStatus>) -> Result<Self, EngineError> {
        let producer = settings
            .producer_config("sluice-output")
            .create_with_context(DeliveryCounter {
                status: Arc::clone(&status),
            })
            .map_err(|error| EngineError::kafka("creating the output producer", error))?;
        Ok(OutputProducer { producer, status })
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
        let mut pending = BaseRecord::to(record.topic)
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
                    return;
                }
            }
        }
    }

    fn flush(&self, timeout: Duration) -> Result<(), EngineError> {
        self.producer
            .flush(timeout)
            .map_err(|error| EngineError::kafka("flushing output", error))
    }
}
