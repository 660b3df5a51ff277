//! Typed Kafka client settings, each librdkafka property with the reason it is set.

use rdkafka::ClientConfig;

use super::client_properties::ClientProperties;

/// How the engine talks to Kafka.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Consumer group id. Offsets are committed to it only so that lag shows in standard
    /// Kafka tools; the engine never reads them back.
    pub group_id: String,
    /// How long the broker may hold a fetch waiting for data. librdkafka's default of
    /// 500 ms is fine for Apache Kafka, which answers early when data is waiting; Tansu
    /// holds every fetch for the full wait, so a low value is needed there.
    pub fetch_wait_max_ms: u32,
    /// Partitions given to topics the engine creates.
    pub partitions: i32,
    /// The user's librdkafka properties (security, tuning), set on every client over the
    /// engine's own choices; the properties the engine's guarantees rest on are refused
    /// when they are given (see [`ClientProperties`]).
    pub properties: ClientProperties,
}

impl KafkaSettings {
    /// Settings for the given brokers, with defaults that suit a local broker.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            group_id: "sluice".to_string(),
            fetch_wait_max_ms: 10,
            partitions: 4,
            properties: ClientProperties::default(),
        }
    }

    /// Configuration shared by every client.
    pub fn base_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            // Reconnect quickly but back off to a second when a broker stays away, so an
            // unreachable broker is retried without flooding the log.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "1000")
            .set("log_level", "3");
        self.properties.apply(&mut config);
        config
    }

    /// The transactional id of exactly-once output: one per consumer group, so that a new
    /// instance of the same application fences the old one.
    pub fn transactional_id(&self) -> String {
        format!("{}-output", self.group_id)
    }

    /// A consumer that reads assigned partitions from offsets the engine chooses.
    pub fn consumer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set("group.id", &self.group_id)
            .set("client.id", client_id)
            // The engine decides where to read from; automatic commits would make the
            // group's offsets look authoritative, which they are not.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            // Large prefetch queues keep the worker busy between fetches.
            .set("queued.min.messages", "200000")
            .set("fetch.message.max.bytes", "4194304")
            .set("enable.partition.eof", "false");
        self.properties.apply(&mut config);
        config
    }

    /// An idempotent producer: retries cannot duplicate or reorder within a partition.
    pub fn producer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set("client.id", client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Batch for throughput; a few milliseconds of latency is invisible next to
            // window sizes.
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("compression.type", "lz4");
        self.properties.apply(&mut config);
        config
    }
}
