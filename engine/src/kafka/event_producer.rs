//! The producer behind `POST /events/{topic}`: idempotent, and an event counts as published
//! only once every in-sync replica has it (`acks=all`), so nothing is acknowledged to the
//! caller that a broker failure could still lose.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::quiet_errors::QuietErrors;
use super::settings::KafkaSettings;
use crate::error::EngineError;

/// An event to publish.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingEvent<'a> {
    pub topic: &'a str,
    pub key: Option<&'a str>,
    pub payload: &'a [u8],
    /// The record timestamp, epoch milliseconds (the broker's clock when absent).
    pub timestamp: Option<i64>,
}

/// Where the broker wrote an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub partition: i32,
    pub offset: i64,
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The broker could not be reached, or did not acknowledge in time: try again later.
    #[error("the broker did not acknowledge the event: {0}")]
    Unavailable(String),
    /// The broker refused the record itself (too large, malformed): retrying cannot help.
    #[error("the broker refused the event: {0}")]
    Refused(String),
}

/// The future of one publication.
pub type Publication<'a> =
    Pin<Box<dyn Future<Output = Result<Published, PublishError>> + Send + 'a>>;

/// Publishes events and waits for their acknowledgement.
pub trait EventPublisher: Send + Sync {
    /// Publishes `event`; resolves once the broker has acknowledged it durably, or with why
    /// it did not.
    fn publish<'a>(&'a self, event: OutgoingEvent<'a>) -> Publication<'a>;
}

/// [`EventPublisher`] on an rdkafka producer.
pub struct KafkaEventProducer {
    producer: FutureProducer<QuietErrors>,
    timeout: Duration,
}

impl KafkaEventProducer {
    /// A producer that gives up on an event after `timeout`, so that callers hear of a
    /// broker outage within it.
    pub fn new(settings: &KafkaSettings, timeout: Duration) -> Result<Self, EngineError> {
        let mut config = settings.producer_config("sluice-http-producer");
        config
            // One event per request: nothing to batch, so no waiting for a batch to fill.
            .set("linger.ms", "0")
            .set("message.timeout.ms", timeout.as_millis().to_string());
        let producer = config
            .create_with_context(QuietErrors::default())
            .map_err(|error| EngineError::kafka("creating the HTTP event producer", error))?;
        Ok(KafkaEventProducer { producer, timeout })
    }
}

impl EventPublisher for KafkaEventProducer {
    fn publish<'a>(&'a self, event: OutgoingEvent<'a>) -> Publication<'a> {
        Box::pin(async move {
            let mut record = FutureRecord::<str, [u8]>::to(event.topic).payload(event.payload);
            if let Some(key) = event.key {
                record = record.key(key);
            }
            if let Some(timestamp) = event.timestamp {
                record = record.timestamp(timestamp);
            }
            match self
                .producer
                .send(record, Timeout::After(self.timeout))
                .await
            {
                Ok(delivery) => Ok(Published {
                    partition: delivery.partition,
                    offset: delivery.offset,
                }),
                Err((error, _)) => Err(classify(error)),
            }
        })
    }
}

/// Whether a failed delivery is the record's fault or the broker's.
fn classify(error: KafkaError) -> PublishError {
    let refused = matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidTimestamp
        )
    );
    if refused {
        PublishError::Refused(error.to_string())
    } else {
        PublishError::Unavailable(error.to_string())
    }
}
