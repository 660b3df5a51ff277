//! Kafka I/O through rdkafka: client settings, topic set-up, the output producer (and the
//! acknowledgements it waits for at checkpoints) and the monitor that fetches high
//! watermarks.

pub mod admin;
pub mod deliveries;
pub mod monitor;
pub mod producer;
pub mod settings;

pub use producer::OutputProducer;
pub use settings::KafkaSettings;
