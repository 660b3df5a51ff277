//! `--on-output-error dead-letter`: an output record the broker refuses for good goes to
//! `<topic>.dlq`, with the broker's answer in `sluice-error` beside the record's own headers
//! (`sluice-id` among them), and the engine goes on. Kafka Streams' production exception
//! handler can only log and drop such a record (`CONTINUE`) or stop; here it is kept.
//!
//! The dead letter counts in the same generation of acknowledgements as the record it
//! stands for, so the checkpoint that takes the record's input waits for the dead letter
//! too: nothing is checkpointed past a record that went nowhere. A dead letter that is
//! refused in turn stops the engine.

use std::collections::HashMap;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::producer::{ERROR_HEADER, OutputProducer};
use super::quiet_errors::QuietErrors;
use crate::output::OutputRecord;
use crate::status::EngineStatus;

/// The dead-letter topics of the output topics, and the producer that writes to them.
pub struct OutputDeadLetters {
    producer: OutputProducer,
    /// Output topic (as written) to its dead-letter topic.
    topics: HashMap<String, String>,
    log: QuietErrors,
}

impl OutputDeadLetters {
    /// Dead letters through `producer`, for the `(output topic, dead-letter topic)` pairs.
    pub fn new(producer: OutputProducer, topics: Vec<(String, String)>) -> Self {
        OutputDeadLetters {
            producer,
            topics: topics.into_iter().collect(),
            log: QuietErrors::default(),
        }
    }

    /// The dead-letter topic of a record to `topic` refused with `error`, if it takes it:
    /// only a refusal of the record itself does. A timeout (the user set
    /// `message.timeout.ms`), a broker out of reach, a producer that failed or is closing
    /// would refuse the dead letter too, and stop the engine as any refusal does.
    pub fn taking(&self, topic: &str, error: &KafkaError) -> Option<(&Self, &str)> {
        let dead_letter_topic = self.topics.get(topic)?;
        let passing = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::MessageTimedOut
                    | RDKafkaErrorCode::PurgeQueue
                    | RDKafkaErrorCode::PurgeInflight
                    | RDKafkaErrorCode::Fatal
                    | RDKafkaErrorCode::BrokerDestroy
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::BrokerTransportFailure
            )
        );
        (!passing).then_some((self, dead_letter_topic.as_str()))
    }

    /// Sends `refused` to `topic`, counted in `generation`. Called before the refused
    /// record's own count is settled, so the generation cannot have been waited out.
    pub fn send(
        &self,
        topic: &str,
        refused: &OutputRecord<'_>,
        error: &KafkaError,
        generation: u64,
    ) {
        let reason = error.to_string();
        // Refusals come in runs (a whole batch, a topic denied): one line per kind.
        self.log.warn(
            &format!("{} {reason}", refused.topic),
            format_args!(
                "the broker refused an output record to {}: {reason}; it goes to {topic}",
                refused.topic
            ),
        );
        let mut headers: Vec<(&str, &[u8])> = refused
            .headers
            .iter()
            .filter(|(name, _)| *name != ERROR_HEADER)
            .copied()
            .collect();
        headers.push((ERROR_HEADER, reason.as_bytes()));
        let dead_letter = OutputRecord {
            topic,
            key: refused.key,
            payload: refused.payload,
            headers: &headers,
            origin: refused.origin,
            epoch: refused.epoch,
        };
        let status = self.producer.status();
        EngineStatus::add(&status.dead_lettered, 1);
        status.count_out(topic, 1);
        self.producer.deliveries().queued_in(generation);
        self.producer.send_in(&dead_letter, generation);
    }
}
