//! One Kafka consumer per worker, shared by the worker's sources: librdkafka then sends one
//! fetch request per broker for every partition the worker reads, not one per source, and
//! each source reads its own partitions from their own queues (librdkafka's partition
//! queues), so no record is copied to reach its source.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tracing::debug;

use crate::kafka::quiet_errors::{QuietConsumer, QuietErrors};

/// How long a worker waits for its topics' metadata before it assigns them anyway.
const METADATA_WAIT: Duration = Duration::from_secs(2);

/// A partition's own queue of fetched records.
pub(crate) type Queue = PartitionQueue<QuietErrors>;

/// The consumer of one worker, and which of its sources' partitions it reads.
pub(crate) struct WorkerConsumer {
    consumer: Arc<QuietConsumer>,
    assignment: Mutex<Assignment>,
}

/// A source's share of the consumer, as it takes it at its first read.
pub(crate) struct SourceShare {
    /// Its partitions' queues.
    pub queues: Vec<PartitionShare>,
    /// Records fetched before the queues were split off, in the order they came.
    pub fetched_early: VecDeque<OwnedMessage>,
}

/// One partition of a source's share.
pub(crate) struct PartitionShare {
    pub partition: i32,
    pub queue: Queue,
    /// The next offset to read: where it was assigned, then past each record handed on.
    /// An offset the log no longer holds is reported at this one.
    pub next_offset: i64,
}

#[derive(Default)]
struct Assignment {
    /// Each source's partitions and where they start, until the first read assigns them.
    wanted: Vec<(String, i32, i64)>,
    /// Whether the wanted partitions are assigned (once, all together).
    assigned: bool,
    /// Per topic, the queues and early records no source has taken yet.
    shares: BTreeMap<String, SourceShare>,
}

impl WorkerConsumer {
    /// Shares `consumer`, which has nothing assigned yet.
    pub(crate) fn new(consumer: QuietConsumer) -> Self {
        WorkerConsumer {
            consumer: Arc::new(consumer),
            assignment: Mutex::new(Assignment::default()),
        }
    }

    /// The consumer itself, for what is not reading: offsets, watermarks.
    pub(crate) fn consumer(&self) -> &QuietConsumer {
        &self.consumer
    }

    fn lock(&self) -> MutexGuard<'_, Assignment> {
        self.assignment
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a source's partitions, each with the offset it starts at. Every source is
    /// built before any reads, so all of them are assigned together at the first read.
    pub(crate) fn want(&self, topic: &str, start_offsets: &[(i32, i64)]) {
        let mut assignment = self.lock();
        assignment.wanted.extend(
            start_offsets
                .iter()
                .map(|&(partition, offset)| (topic.to_string(), partition, offset)),
        );
    }

    /// `topic`'s share, taken once by its source. The first call assigns every wanted
    /// partition and splits off each one's queue: librdkafka deactivates queues split before
    /// an assignment, so there is one assignment, made after all sources are known.
    pub(crate) fn take(&self, topic: &str) -> Result<SourceShare, String> {
        let mut assignment = self.lock();
        if !assignment.assigned {
            assignment.assigned = true;
            self.assign_all(&mut assignment)?;
        }
        assignment
            .shares
            .remove(topic)
            .ok_or_else(|| format!("{topic} was not assigned to this worker's consumer"))
    }

    fn assign_all(&self, assignment: &mut Assignment) -> Result<(), String> {
        self.learn_leaders(assignment);
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in &assignment.wanted {
            let offset = if *offset > 0 {
                Offset::Offset(*offset)
            } else {
                Offset::Beginning
            };
            list.add_partition_offset(topic, *partition, offset)
                .map_err(|error| format!("cannot assign {topic}/{partition}: {error}"))?;
        }
        self.consumer
            .assign(&list)
            .map_err(|error| format!("cannot assign the worker's partitions: {error}"))?;
        for (topic, partition, offset) in &assignment.wanted {
            let queue = self
                .consumer
                .split_partition_queue(topic, *partition)
                .ok_or_else(|| format!("cannot give {topic}/{partition} its own queue"))?;
            assignment
                .shares
                .entry(topic.clone())
                .or_insert_with(|| SourceShare {
                    queues: Vec::new(),
                    fetched_early: VecDeque::new(),
                })
                .queues
                .push(PartitionShare {
                    partition: *partition,
                    queue,
                    next_offset: *offset,
                });
        }
        // Records fetched between the assignment and the split went to the consumer's own
        // queue; they come before anything in the partitions' queues.
        while let Some(polled) = self.consumer.poll(Duration::ZERO) {
            match polled {
                Ok(message) => {
                    let message = message.detach();
                    if let Some(share) = assignment.shares.get_mut(message.topic()) {
                        share.fetched_early.push_back(message);
                    }
                }
                Err(error) => self.consumer.context().consumer_error(&error),
            }
        }
        Ok(())
    }

    /// Fills the consumer's metadata cache with the leaders of the partitions read from
    /// their beginning. librdkafka looks a beginning offset up only once it knows the
    /// partition's leader, and a consumer that does not know it yet (a new one never does)
    /// asks again after a fixed 500 ms: half a second lost at every fresh start, a tenth of
    /// a run over a million records. A topic the broker cannot describe in time is assigned
    /// all the same, and librdkafka's own retry reads it.
    fn learn_leaders(&self, assignment: &Assignment) {
        let mut from_beginning: Vec<&str> = assignment
            .wanted
            .iter()
            .filter(|(_, _, offset)| *offset <= 0)
            .map(|(topic, _, _)| topic.as_str())
            .collect();
        from_beginning.sort_unstable();
        from_beginning.dedup();
        for topic in from_beginning {
            if let Err(error) = self.consumer.fetch_metadata(Some(topic), METADATA_WAIT) {
                debug!(%error, topic, "no metadata before the assignment; librdkafka retries");
            }
        }
    }

    /// Serves the consumer's own queue, which librdkafka needs polled for its events. Every
    /// assigned partition has a queue of its own, so no record comes here after the split;
    /// one that did could not reach its source in order, and is an error, not a loss.
    pub(crate) fn serve_events(&self) -> Result<(), String> {
        while let Some(polled) = self.consumer.poll(Duration::ZERO) {
            match polled {
                Ok(message) => {
                    return Err(format!(
                        "a record of {}/{} at offset {} came on the consumer's own queue after \
                         its partitions were split off",
                        message.topic(),
                        message.partition(),
                        message.offset()
                    ));
                }
                Err(error) => self.consumer.context().consumer_error(&error),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use rdkafka::ClientConfig;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use super::WorkerConsumer;
    use crate::render::reader::{KafkaReader, RecordReader};
    use crate::status::EngineStatus;

    /// Every `(partition, offset, payload)` a reader reads before `deadline`, until it has
    /// `expected` of them.
    fn read_all(
        reader: &mut KafkaReader,
        expected: usize,
        deadline: Instant,
    ) -> Vec<(i32, i64, String)> {
        let mut read = Vec::new();
        while read.len() < expected && Instant::now() < deadline {
            reader.read(
                1000,
                Instant::now() + Duration::from_millis(50),
                &mut |raw| {
                    let payload = String::from_utf8_lossy(raw.payload.unwrap_or_default());
                    read.push((raw.partition, raw.offset, payload.into_owned()));
                },
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        read
    }

    #[test]
    fn sources_sharing_a_consumer_each_read_their_own_partitions_in_order() {
        // rdkafka's in-process MOCK cluster (a development broker, for fast tests).
        let cluster = MockCluster::new(1).expect("mock cluster");
        for topic in ["orders", "updates"] {
            cluster.create_topic(topic, 2, 1).expect("topic");
        }
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .expect("producer");
        let mut sent: BTreeMap<&str, Vec<(i32, i64, String)>> = BTreeMap::new();
        for topic in ["orders", "updates"] {
            for partition in 0..2 {
                for offset in 0..50 {
                    let payload = format!("{topic}-{partition}-{offset}");
                    producer
                        .send(
                            BaseRecord::<(), _>::to(topic)
                                .partition(partition)
                                .payload(&payload),
                        )
                        .expect("queued");
                    sent.entry(topic)
                        .or_default()
                        .push((partition, offset, payload));
                }
            }
        }
        producer.flush(Duration::from_secs(10)).expect("flushed");

        let consumer: crate::kafka::quiet_errors::QuietConsumer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("group.id", "shared-test")
            .set("enable.auto.commit", "false")
            .create_with_context(Default::default())
            .expect("consumer");
        let shared = Arc::new(WorkerConsumer::new(consumer));
        let status = Arc::new(EngineStatus::new());
        let shutdown = Arc::new(AtomicBool::new(false));
        // `orders` starts at offset 10 of partition 1, as a restored source would.
        shared.want("orders", &[(0, 0), (1, 10)]);
        shared.want("updates", &[(0, 0), (1, 0)]);
        let mut orders = KafkaReader::new(
            Arc::clone(&shared),
            "orders".into(),
            Arc::clone(&status),
            Arc::clone(&shutdown),
            Default::default(),
        );
        let mut updates = KafkaReader::new(
            shared,
            "updates".into(),
            status,
            Arc::clone(&shutdown),
            Default::default(),
        );

        let deadline = Instant::now() + Duration::from_secs(20);
        let mut read_orders = read_all(&mut orders, 90, deadline);
        let mut read_updates = read_all(&mut updates, 100, deadline);
        assert!(!shutdown.load(std::sync::atomic::Ordering::Relaxed));

        // Each partition in offset order, nothing of the other topic, nothing twice.
        for read in [&read_orders, &read_updates] {
            for partition in 0..2 {
                let offsets: Vec<i64> = read
                    .iter()
                    .filter(|(p, _, _)| *p == partition)
                    .map(|(_, offset, _)| *offset)
                    .collect();
                assert!(
                    offsets.windows(2).all(|pair| pair[0] < pair[1]),
                    "{offsets:?}"
                );
            }
        }
        read_orders.sort();
        read_updates.sort();
        let expected_orders: Vec<_> = sent["orders"]
            .iter()
            .filter(|(partition, offset, _)| *partition == 0 || *offset >= 10)
            .cloned()
            .collect();
        assert_eq!(read_orders, expected_orders);
        assert_eq!(read_updates, sent["updates"]);
    }
}
