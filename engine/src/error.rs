//! The engine's typed errors.

use thiserror::Error;

/// What can stop the engine from starting or running.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A Kafka client could not be created or an admin call failed.
    #[error("Kafka error while {context}: {source}")]
    Kafka {
        /// What the engine was doing.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The brokers did not answer within the retry budget.
    #[error(
        "cannot reach Kafka at {brokers} ({detail}); is the broker running and is --brokers right?"
    )]
    Unreachable {
        /// The bootstrap servers that were tried.
        brokers: String,
        /// The last error seen.
        detail: String,
    },
    /// A broker refused the client: authentication failed or its certificate was not
    /// trusted. Retrying cannot help.
    #[error(
        "Kafka at {brokers} refused the connection: {cause}; check the security settings (--kafka-config, -X)"
    )]
    Refused {
        /// The bootstrap servers that were tried.
        brokers: String,
        /// librdkafka's account, naming the broker.
        cause: String,
    },
    /// The broker refused an output record for good (too large, not authorized, unknown
    /// topic, or retries ran out): checkpointing past it would lose it.
    #[error("the broker refused output record {record}; stopping without checkpointing past it")]
    OutputRefused {
        /// The record's topic, partition and `sluice-id`, and the broker's answer.
        record: String,
    },
    /// The state directory could not be opened or written.
    #[error("state error: {0}")]
    State(#[from] sluice_state::StateError),
    /// A source partition is to be read from an offset its log no longer holds.
    #[error("{0}")]
    MissingOffsets(String),
    /// Settings that cannot go together.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A topology that cannot run as declared.
    #[error("invalid topology: {0}")]
    Topology(String),
    /// The HTTP listener could not be bound.
    #[error("cannot serve HTTP on {addr}: {source}")]
    Http {
        /// The address that was asked for.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The state directory was written by a topology with different operators, windows or
    /// settings; using it would mix results of two topologies.
    #[error(
        "the state in {state_dir} was written by a different topology (fingerprint {stored}, \
         this one is {current}); rebuild it from the input with `{program} replay --from-beginning`, \
         or point --state-dir elsewhere"
    )]
    TopologyChanged {
        /// The state directory.
        state_dir: String,
        /// The fingerprint stored with the state.
        stored: String,
        /// The running topology's fingerprint.
        current: String,
        /// The binary, to name its replay command.
        program: String,
    },
    /// Another instance began transactions with the same transactional id: this one is a
    /// zombie and must stop, leaving the output to the newer one.
    #[error(
        "fenced: another instance started with transactional.id {transactional_id} and took \
         over the output; this one stops without committing"
    )]
    Fenced {
        /// The transactional id both instances use.
        transactional_id: String,
    },
    /// The checkpoint metadata cannot be read.
    #[error("cannot read the checkpoint: {0}")]
    CorruptCheckpoint(String),
    /// The dataflow workers could not start or stopped abnormally.
    #[error("dataflow error: {0}")]
    Dataflow(String),
    /// Any other I/O error.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the engine was doing.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// A Kafka error with what the engine was doing.
    pub fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        EngineError::Kafka {
            context: context.into(),
            source,
        }
    }

    /// An I/O error with what the engine was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }
}
