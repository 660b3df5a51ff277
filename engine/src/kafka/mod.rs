//! Kafka I/O through rdkafka: client settings and the user's own client properties
//! (security above all) and what the brokers said when they refused them, client errors
//! logged without flooding while a broker is away, topic set-up, the output producer (the
//! acknowledgements it waits for at checkpoints, and where refused records may go), the
//! transactional producer of exactly-once output and its outbox, the monitor that fetches
//! high watermarks and watches for partitions added while running, the dedupe helper that
//! reads output exactly once, the producer of the HTTP event API, a reader of input
//! headers that does not trust their names to be UTF-8, and what to do when the offsets
//! the state needs are gone from the log.

pub mod admin;
pub mod broker_errors;
pub mod client_properties;
pub mod dedupe;
pub mod deliveries;
pub mod event_producer;
pub mod headers;
pub mod missing_offsets;
pub mod monitor;
pub mod outbox;
pub mod output_dead_letters;
pub mod partition_watch;
pub mod producer;
pub mod quiet_errors;
pub mod settings;
pub mod transactional;

pub use producer::OutputProducer;
pub use settings::KafkaSettings;
pub use transactional::TransactionalOutput;
