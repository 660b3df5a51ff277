//! Where a source's records come from: Kafka partitions, or records held in memory (for the
//! in-process benchmark and tests without a broker).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use tracing::{error, warn};

use super::worker_consumer::{SourceShare, WorkerConsumer};

use crate::carried_headers::CarriedHeaders;
use crate::kafka::headers::read_all;
use crate::kafka::missing_offsets::{OnMissingOffsets, is_offset_gone, move_while_running};
use crate::status::EngineStatus;

/// A record as read from a partition, borrowed from its reader.
pub(crate) struct RawRecord<'a> {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub timestamp: Option<i64>,
    /// Not a record: it only moves the partition's event time to `timestamp` (the test
    /// driver's `advance_watermark`).
    pub watermark_only: bool,
    /// Its headers, read only for the rare record that is written on as it came (late or
    /// dead-lettered).
    pub headers: RawHeaders<'a>,
}

/// A raw record's headers, where its reader keeps them.
#[derive(Clone, Copy)]
pub(crate) enum RawHeaders<'a> {
    /// A message's as librdkafka handed it over, if it has any.
    Borrowed(Option<&'a rdkafka::message::BorrowedHeaders>),
    /// A message's kept since it was fetched.
    Owned(Option<&'a rdkafka::message::OwnedHeaders>),
    /// A record held in memory.
    Memory(&'a [(String, Vec<u8>)]),
}

impl RawHeaders<'_> {
    /// The headers its derived records carry; nothing is read or allocated when there are
    /// none, as for most records.
    pub(crate) fn carried(self) -> CarriedHeaders {
        let none = match self {
            RawHeaders::Borrowed(headers) => headers.is_none(),
            RawHeaders::Owned(headers) => headers.is_none(),
            RawHeaders::Memory(headers) => headers.is_empty(),
        };
        if none {
            CarriedHeaders::NONE
        } else {
            CarriedHeaders::of(self.to_vec())
        }
    }

    /// The headers, name and value (a header without a value has an empty one).
    pub(crate) fn to_vec(self) -> Vec<(String, Vec<u8>)> {
        match self {
            RawHeaders::Borrowed(headers) => headers.map(read_all).unwrap_or_default(),
            RawHeaders::Owned(headers) => headers
                .map(|headers| read_all(headers.as_borrowed()))
                .unwrap_or_default(),
            RawHeaders::Memory(headers) => headers.to_vec(),
        }
    }
}

/// What one read found.
pub(crate) enum ReadOutcome {
    /// This many records (possibly none; more may come).
    Read(usize),
    /// The input has ended (in-memory input only; Kafka never ends).
    Exhausted,
}

/// Reads a worker's share of one topic.
pub(crate) trait RecordReader {
    /// Hands records to `handle` until `budget` records were read or `deadline` passed.
    fn read(
        &mut self,
        budget: usize,
        deadline: Instant,
        handle: &mut dyn FnMut(RawRecord<'_>),
    ) -> ReadOutcome;

    /// Publishes checkpointed `(partition, offset)`s where monitoring tools look for them.
    fn commit(&self, _offsets: &[(i32, i64)]) {}

    /// Whether `partition` has nothing more to read at `next_offset` as far as is known. A
    /// silent partition counts as idle only when it is caught up: one whose records simply
    /// have not been fetched yet must keep holding the watermark.
    fn is_caught_up(&self, partition: i32, next_offset: i64) -> bool;

    /// Asks the broker where `partition` ends if that is not known yet, so that
    /// [`RecordReader::is_caught_up`] can answer. For a source that stops: a partition that
    /// read nothing and is not known to be empty holds back every operator that waits on
    /// it, so the end of a run must not depend on whether the watermark monitor happened
    /// to get an answer in time. (Input in memory always knows.)
    fn learn_where_unknown_partition_ends(&self, _partition: i32) {}
}

/// Reads a source's partitions from their queues of the worker's shared consumer.
pub(crate) struct KafkaReader {
    pub shared: Arc<WorkerConsumer>,
    pub topic: String,
    /// Where the watermark monitor keeps high watermarks.
    pub status: Arc<EngineStatus>,
    /// Stops the engine when the partitions cannot be read.
    pub shutdown: Arc<AtomicBool>,
    /// What to do when a partition's next offset leaves the log.
    pub on_missing_offsets: OnMissingOffsets,
    /// The source's queues, taken at its first read, once every source has said what it
    /// reads; and the records fetched before they were split off.
    share: Option<SourceShare>,
    /// The queue the next read starts with, so that every partition gets its turn.
    next_queue: usize,
}

impl KafkaReader {
    /// Reads `topic`'s partitions that the source asked `shared` for.
    pub(crate) fn new(
        shared: Arc<WorkerConsumer>,
        topic: String,
        status: Arc<EngineStatus>,
        shutdown: Arc<AtomicBool>,
        on_missing_offsets: OnMissingOffsets,
    ) -> Self {
        KafkaReader {
            shared,
            topic,
            status,
            shutdown,
            on_missing_offsets,
            share: None,
            next_queue: 0,
        }
    }

    fn fail(&self, reason: String) {
        error!(%reason, topic = %self.topic, "cannot read the source's partitions");
        self.status.set_fatal(reason);
        self.shutdown.store(true, Ordering::Relaxed);
    }
}

fn raw_of<'a, M: Message>(message: &'a M, headers: RawHeaders<'a>) -> RawRecord<'a> {
    RawRecord {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key(),
        payload: message.payload(),
        timestamp: message.timestamp().to_millis(),
        watermark_only: false,
        headers,
    }
}

impl RecordReader for KafkaReader {
    fn read(
        &mut self,
        budget: usize,
        deadline: Instant,
        handle: &mut dyn FnMut(RawRecord<'_>),
    ) -> ReadOutcome {
        if let Err(reason) = self.shared.serve_events() {
            self.fail(reason);
            return ReadOutcome::Read(0);
        }
        if self.share.is_none() {
            match self.shared.take(&self.topic) {
                Ok(share) => self.share = Some(share),
                Err(reason) => {
                    self.fail(reason);
                    return ReadOutcome::Read(0);
                }
            }
        }
        let Some(SourceShare {
            queues,
            fetched_early,
        }) = self.share.as_mut()
        else {
            return ReadOutcome::Read(0);
        };
        let mut read = 0;
        while read < budget {
            let Some(message) = fetched_early.pop_front() else {
                break;
            };
            read += 1;
            if let Some(share) = queues
                .iter_mut()
                .find(|s| s.partition == message.partition())
            {
                share.next_offset = message.offset() + 1;
            }
            handle(raw_of(&message, RawHeaders::Owned(message.headers())));
        }
        let count = queues.len();
        // Every partition that reported a gap in this read: librdkafka reports it once and
        // stops fetching the partition, so one left unhandled would stall for good.
        let mut gone: Vec<(i32, i64)> = Vec::new();
        for turn in 0..count {
            let share = &mut queues[(self.next_queue + turn) % count];
            while read < budget {
                // Reading the clock for every record showed in profiles; every 64 is enough.
                if read % 64 == 0 && Instant::now() >= deadline {
                    break;
                }
                match share.queue.poll(Duration::ZERO) {
                    None => break,
                    Some(Ok(message)) => {
                        read += 1;
                        share.next_offset = message.offset() + 1;
                        handle(raw_of(&message, RawHeaders::Borrowed(message.headers())));
                    }
                    Some(Err(error)) if is_offset_gone(&error) => {
                        gone.push((share.partition, share.next_offset));
                        break;
                    }
                    Some(Err(error)) => {
                        self.shared.consumer().context().consumer_error(&error);
                        break;
                    }
                }
            }
        }
        if count > 0 {
            self.next_queue = (self.next_queue + 1) % count;
        }
        for (partition, needed) in gone {
            let moved = move_while_running(
                self.shared.consumer(),
                &self.topic,
                partition,
                needed,
                self.on_missing_offsets,
                &self.status,
            );
            if let Err(refusal) = moved {
                self.fail(refusal);
                break;
            }
        }
        ReadOutcome::Read(read)
    }

    fn commit(&self, offsets: &[(i32, i64)]) {
        super::source::commit_to_group(self.shared.consumer(), &self.topic, offsets);
    }

    fn is_caught_up(&self, partition: i32, next_offset: i64) -> bool {
        self.status
            .high_watermark(&self.topic, partition)
            .is_some_and(|high| next_offset >= high)
    }

    fn learn_where_unknown_partition_ends(&self, partition: i32) {
        if self.status.high_watermark(&self.topic, partition).is_some() {
            return;
        }
        match self.shared.consumer().fetch_watermarks(
            &self.topic,
            partition,
            STOP_WATERMARK_TIMEOUT,
        ) {
            Ok((_, high)) => self.status.set_high_watermark(&self.topic, partition, high),
            Err(error) => {
                warn!(%error, topic = %self.topic, partition, "cannot tell whether a partition that read nothing is empty: it holds back what waits on it")
            }
        }
    }
}

/// How long a stopping source waits for the broker to say where a partition ends.
const STOP_WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// A record held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRecord {
    /// Record key.
    pub key: Vec<u8>,
    /// Record value. An empty one stands for Kafka's null value (a tombstone), which an
    /// empty JSON document could not be anyway.
    pub payload: Vec<u8>,
    /// Record timestamp, epoch milliseconds.
    pub timestamp: i64,
    /// Not a record: it only moves the partition's event time to `timestamp`, as if a
    /// record of that time had been read (see [`crate::testkit::TopologyTestDriver`]).
    pub watermark_only: bool,
    /// The record's headers, name and value.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Input held in memory: for each topic, the records of each partition in offset order.
/// Partitions are shared, so cloning the input or handing partitions to workers copies
/// no records.
#[derive(Debug, Clone, Default)]
pub struct MemoryInput {
    /// Records per topic, per partition.
    pub topics: BTreeMap<String, Vec<Arc<Vec<MemoryRecord>>>>,
}

impl MemoryInput {
    /// Appends a record to a partition of a topic, creating them as needed.
    pub fn push(&mut self, topic: &str, partition: usize, record: MemoryRecord) {
        let partitions = self.topics.entry(topic.to_string()).or_default();
        if partitions.len() <= partition {
            partitions.resize_with(partition + 1, Default::default);
        }
        Arc::make_mut(&mut partitions[partition]).push(record);
    }

    /// The number of partitions of each topic.
    pub fn partition_counts(&self) -> BTreeMap<String, i32> {
        self.topics
            .iter()
            .map(|(topic, partitions)| (topic.clone(), partitions.len() as i32))
            .collect()
    }
}

/// Reads a worker's partitions of an in-memory topic, one partition after another in
/// rounds, so that partitions interleave as they would from a broker.
pub(crate) struct MemoryReader {
    partitions: Vec<(i32, Arc<Vec<MemoryRecord>>, usize)>,
}

impl MemoryReader {
    /// Reads `topic`'s partitions `start`, each from its `(partition, offset)`.
    pub(crate) fn new(input: &MemoryInput, topic: &str, start: &[(i32, i64)]) -> Self {
        let partitions = start
            .iter()
            .map(|&(partition, offset)| {
                let records = input
                    .topics
                    .get(topic)
                    .and_then(|partitions| partitions.get(partition as usize))
                    .map(Arc::clone)
                    .unwrap_or_default();
                (partition, records, usize::try_from(offset).unwrap_or(0))
            })
            .collect();
        MemoryReader { partitions }
    }
}

/// Records taken from each partition in one read: partitions interleave in small rounds,
/// as fetches from a broker do, so that checkpoints fall between them.
const MEMORY_ROUND: usize = 256;

impl RecordReader for MemoryReader {
    fn read(
        &mut self,
        budget: usize,
        _deadline: Instant,
        handle: &mut dyn FnMut(RawRecord<'_>),
    ) -> ReadOutcome {
        // One round per read, at most `budget` records in all.
        let round = MEMORY_ROUND
            .min(budget / self.partitions.len().max(1))
            .max(1);
        let mut read = 0;
        for (partition, records, position) in &mut self.partitions {
            let end = (*position + round).min(records.len());
            for (offset, record) in records.iter().enumerate().take(end).skip(*position) {
                handle(RawRecord {
                    partition: *partition,
                    offset: offset as i64,
                    key: Some(&record.key),
                    payload: (!record.payload.is_empty()).then_some(&record.payload[..]),
                    timestamp: Some(record.timestamp),
                    watermark_only: record.watermark_only,
                    headers: RawHeaders::Memory(&record.headers),
                });
            }
            read += end - *position;
            *position = end;
        }
        if read == 0 {
            ReadOutcome::Exhausted
        } else {
            ReadOutcome::Read(read)
        }
    }

    fn is_caught_up(&self, partition: i32, next_offset: i64) -> bool {
        self.partitions
            .iter()
            .find(|(candidate, _, _)| *candidate == partition)
            .is_none_or(|(_, records, _)| next_offset >= records.len() as i64)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use super::*;

    /// A reader of `topic` on rdkafka's in-process MOCK cluster (a development broker),
    /// whose status has heard nothing from a watermark monitor.
    fn reader_without_monitor(
        cluster: &MockCluster<'_, impl rdkafka::ClientContext>,
    ) -> KafkaReader {
        let status = Arc::new(EngineStatus::new());
        for partition in 0..2 {
            status.register_partition("t", partition);
        }
        let consumer: crate::kafka::quiet_errors::QuietConsumer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("group.id", "reader-test")
            .create_with_context(Default::default())
            .expect("consumer");
        KafkaReader::new(
            Arc::new(WorkerConsumer::new(consumer)),
            "t".into(),
            status,
            Arc::new(AtomicBool::new(false)),
            Default::default(),
        )
    }

    #[test]
    fn a_stopping_reader_asks_the_broker_where_an_unknown_partition_ends() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("t", 2, 1).expect("topic");
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .expect("producer");
        producer
            .send(BaseRecord::to("t").partition(1).key("k").payload("v"))
            .expect("queued");
        producer.flush(Duration::from_secs(10)).expect("flushed");
        let reader = reader_without_monitor(&cluster);

        // Without a high watermark nothing is known to be caught up, not even the empty
        // partition.
        assert!(!reader.is_caught_up(0, 0));
        // Asked, the broker says partition 0 is empty and partition 1 holds one record.
        reader.learn_where_unknown_partition_ends(0);
        reader.learn_where_unknown_partition_ends(1);
        assert!(reader.is_caught_up(0, 0));
        assert!(!reader.is_caught_up(1, 0));
        assert!(reader.is_caught_up(1, 1));
        assert_eq!(reader.status.high_watermark("t", 1), Some(1));
    }
}
